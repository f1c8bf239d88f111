//! Rollout conditions: types, reasons, messages, and Argo's update rules.
//!
//! `set` follows Argo's `SetRolloutCondition`: it does nothing when a condition of the same type
//! already has the same status and reason, keeps `lastTransitionTime` when only the reason
//! changes, and moves the condition to the end of the list otherwise.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rollouts_api::{RolloutCondition, RolloutStatus};

/// Condition types.
pub mod kind {
    pub use rollouts_api::rollout_condition_type::*;
}

/// `True`.
pub const TRUE: &str = "True";
/// `False`.
pub const FALSE: &str = "False";
/// `Unknown`.
pub const UNKNOWN: &str = "Unknown";

/// Reasons and message formats (Argo's `utils/conditions/conditions.go`).
pub mod reason {
    /// Invalid spec.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// Available condition reason.
    pub const AVAILABLE: &str = "AvailableReason";
    /// A ReplicaSet is progressing.
    pub const REPLICA_SET_UPDATED: &str = "ReplicaSetUpdated";
    /// Creating the ReplicaSet failed.
    pub const REPLICA_SET_CREATE_ERROR: &str = "ReplicaSetCreateError";
    /// A new ReplicaSet was created.
    pub const NEW_REPLICA_SET_CREATED: &str = "NewReplicaSetCreated";
    /// An existing ReplicaSet was found for the template.
    pub const FOUND_NEW_REPLICA_SET: &str = "FoundNewReplicaSet";
    /// The new ReplicaSet is available.
    pub const NEW_REPLICA_SET_AVAILABLE: &str = "NewReplicaSetAvailable";
    /// A fully promoted rollout lost availability.
    pub const REPLICA_SET_NOT_AVAILABLE: &str = "ReplicaSetNotAvailable";
    /// No progress within the deadline.
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
    /// Aborted.
    pub const ROLLOUT_ABORTED: &str = "RolloutAborted";
    /// Paused.
    pub const ROLLOUT_PAUSED: &str = "RolloutPaused";
    /// Resumed.
    pub const ROLLOUT_RESUMED: &str = "RolloutResumed";
    /// Retried after an abort.
    pub const ROLLOUT_RETRY: &str = "RolloutRetry";
    /// Completed.
    pub const ROLLOUT_COMPLETED: &str = "RolloutCompleted";
    /// Not completed (event only).
    pub const ROLLOUT_NOT_COMPLETED: &str = "RolloutNotCompleted";
    /// Healthy.
    pub const ROLLOUT_HEALTHY: &str = "RolloutHealthy";
    /// Rollout spec updated (event).
    pub const ROLLOUT_UPDATED: &str = "RolloutUpdated";
    /// Step completed (event).
    pub const ROLLOUT_STEP_COMPLETED: &str = "RolloutStepCompleted";
    /// Scaling a ReplicaSet (event).
    pub const SCALING_REPLICA_SET: &str = "ScalingReplicaSet";
    /// Traffic weight changed (event).
    pub const TRAFFIC_WEIGHT_UPDATED: &str = "TrafficWeightUpdated";
}

/// Message texts.
pub mod message {
    /// Available.
    pub const AVAILABLE: &str = "Rollout has minimum availability";
    /// Not available.
    pub const NOT_AVAILABLE: &str = "Rollout does not have minimum availability";
    /// Paused (both the Progressing and the Paused condition).
    pub const PAUSED: &str = "Rollout is paused";
    /// Resumed.
    pub const RESUMED: &str = "Rollout is resumed";
    /// Retry.
    pub const RETRY: &str = "Retrying Rollout after abort";
    /// Healthy.
    pub const HEALTHY: &str = "Rollout is healthy";
    /// Not healthy.
    pub const NOT_HEALTHY: &str = "Rollout is not healthy";
}

/// Builds a condition stamped with `now`.
pub fn new_condition(
    kind: &str,
    status: &str,
    reason: &str,
    message: impl Into<String>,
    now: Timestamp,
) -> RolloutCondition {
    RolloutCondition {
        type_: kind.to_string(),
        status: status.to_string(),
        last_update_time: Time(now),
        last_transition_time: Time(now),
        reason: reason.to_string(),
        message: message.into(),
    }
}

/// The condition of the given type.
pub fn get<'a>(status: &'a RolloutStatus, kind: &str) -> Option<&'a RolloutCondition> {
    status.conditions.as_ref()?.iter().find(|c| c.type_ == kind)
}

/// Argo's `SetRolloutCondition`; returns whether anything changed.
pub fn set(status: &mut RolloutStatus, mut condition: RolloutCondition) -> bool {
    if let Some(current) = get(status, &condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return false;
        }
        if current.status == condition.status {
            condition.last_transition_time = current.last_transition_time.clone();
        }
    }
    let list = status.conditions.get_or_insert_with(Vec::new);
    list.retain(|c| c.type_ != condition.type_);
    list.push(condition);
    true
}

/// Removes the condition of the given type.
pub fn remove(status: &mut RolloutStatus, kind: &str) {
    if let Some(list) = status.conditions.as_mut() {
        list.retain(|c| c.type_ != kind);
        if list.is_empty() {
            status.conditions = None;
        }
    }
}

/// `Rollout "<name>" is invalid: <error>` — the InvalidSpec message.
pub fn invalid_spec_message(rollout_name: &str, error: &str) -> String {
    format!("The Rollout \"{rollout_name}\" is invalid: {error}")
}

/// Go's `%q` for the plain names used in condition messages.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn set_keeps_transition_time_when_only_reason_changes() {
        let mut status = RolloutStatus::default();
        assert!(set(
            &mut status,
            new_condition(kind::PROGRESSING, TRUE, "A", "a", ts(1))
        ));
        assert!(!set(
            &mut status,
            new_condition(kind::PROGRESSING, TRUE, "A", "other", ts(2))
        ));
        assert!(set(
            &mut status,
            new_condition(kind::PROGRESSING, TRUE, "B", "b", ts(3))
        ));
        let c = get(&status, kind::PROGRESSING).unwrap();
        assert_eq!(c.last_transition_time, Time(ts(1)));
        assert_eq!(c.last_update_time, Time(ts(3)));
        assert!(set(
            &mut status,
            new_condition(kind::PROGRESSING, FALSE, "B", "b", ts(4))
        ));
        assert_eq!(
            get(&status, kind::PROGRESSING)
                .unwrap()
                .last_transition_time,
            Time(ts(4))
        );
    }

    #[test]
    fn set_moves_condition_to_the_end() {
        let mut status = RolloutStatus::default();
        set(
            &mut status,
            new_condition(kind::PROGRESSING, TRUE, "A", "a", ts(1)),
        );
        set(
            &mut status,
            new_condition(kind::AVAILABLE, TRUE, "A", "a", ts(1)),
        );
        set(
            &mut status,
            new_condition(kind::PROGRESSING, FALSE, "A", "a", ts(1)),
        );
        let kinds: Vec<_> = status
            .conditions
            .unwrap()
            .into_iter()
            .map(|c| c.type_)
            .collect();
        assert_eq!(kinds, [kind::AVAILABLE, kind::PROGRESSING]);
    }
}
