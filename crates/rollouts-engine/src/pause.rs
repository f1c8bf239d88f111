//! The pause model (Argo's `pauseContext`, `argo-core.md` §2.8).
//!
//! During a reconciliation, pause reasons and the abort flag are only *requested*; they are
//! applied once, when the status is computed: adding a reason that is not present sets
//! `controllerPause` and stamps `startTime = now`; existing conditions keep their start time;
//! an abort clears every pause condition and keeps the first `abortedAt`.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rollouts_api::{PauseCondition, RolloutStatus};

/// Pause reasons.
pub mod reason {
    /// A canary pause step.
    pub const CANARY_PAUSE_STEP: &str = "CanaryPauseStep";
    /// The blue-green pause before promotion.
    pub const BLUE_GREEN_PAUSE: &str = "BlueGreenPause";
    /// An AnalysisRun was inconclusive.
    pub const INCONCLUSIVE_ANALYSIS: &str = "InconclusiveAnalysisRun";
    /// An Experiment was inconclusive.
    pub const INCONCLUSIVE_EXPERIMENT: &str = "InconclusiveExperiment";
}

/// Pause and abort requests accumulated during one reconciliation.
#[derive(Clone, Debug, Default)]
pub struct PauseContext {
    add: Vec<&'static str>,
    remove: Vec<&'static str>,
    clear: bool,
    add_abort: bool,
    remove_abort: bool,
    /// Message of a requested abort (appended to the `RolloutAborted` condition message).
    pub abort_message: String,
    /// `status.abort` of the Rollout as read.
    status_abort: bool,
}

impl PauseContext {
    /// A context for a Rollout whose current `status.abort` is `status_abort`.
    pub fn new(status_abort: bool) -> Self {
        Self {
            status_abort,
            ..Self::default()
        }
    }

    /// Whether a pause reason was added during this reconciliation.
    pub fn has_add_pause(&self) -> bool {
        !self.add.is_empty()
    }

    /// Whether the Rollout is (or becomes) aborted.
    pub fn is_aborted(&self) -> bool {
        !self.remove_abort && (self.add_abort || self.status_abort)
    }

    /// Requests an abort with a message.
    pub fn add_abort(&mut self, message: impl Into<String>) {
        self.add_abort = true;
        self.abort_message = message.into();
    }

    /// Requests clearing the abort.
    pub fn remove_abort(&mut self) {
        self.remove_abort = true;
    }

    /// Requests a pause reason.
    pub fn add_pause(&mut self, reason: &'static str) {
        self.add.push(reason);
    }

    /// Requests removing a pause reason.
    pub fn remove_pause(&mut self, reason: &'static str) {
        self.remove.push(reason);
    }

    /// Requests clearing every pause condition.
    pub fn clear_pauses(&mut self) {
        self.clear = true;
    }

    /// Applies the requests to `new_status`, given the status as read (`old`).
    pub fn apply(&self, old: &RolloutStatus, new_status: &mut RolloutStatus, now: Timestamp) {
        if self.add_abort || (!self.remove_abort && old.abort == Some(true)) {
            new_status.abort = Some(true);
            new_status.aborted_at = Some(old.aborted_at.clone().unwrap_or(Time(now)));
            new_status.pause_conditions = None;
            new_status.controller_pause = None;
            return;
        }
        new_status.abort = None;
        new_status.aborted_at = None;
        if self.clear {
            new_status.pause_conditions = None;
            new_status.controller_pause = None;
            return;
        }
        let mut controller_pause = old.controller_pause.unwrap_or(false);
        let mut conditions: Vec<PauseCondition> = Vec::new();
        for cond in old.pause_conditions.iter().flatten() {
            if !self.remove.iter().any(|r| *r == cond.reason) {
                conditions.push(cond.clone());
            }
        }
        for reason in &self.add {
            let exists = old
                .pause_conditions
                .iter()
                .flatten()
                .any(|c| c.reason == *reason)
                || conditions.iter().any(|c| c.reason == *reason);
            if !exists {
                conditions.push(PauseCondition {
                    reason: (*reason).to_string(),
                    start_time: Time(now),
                });
                controller_pause = true;
            }
        }
        if conditions.is_empty() {
            new_status.pause_conditions = None;
            new_status.controller_pause = None;
        } else {
            new_status.pause_conditions = Some(conditions);
            new_status.controller_pause = Some(controller_pause);
        }
    }
}

/// The pause condition with the given reason.
pub fn condition<'a>(status: &'a RolloutStatus, reason: &str) -> Option<&'a PauseCondition> {
    status
        .pause_conditions
        .iter()
        .flatten()
        .find(|c| c.reason == reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn adding_a_reason_sets_controller_pause_and_start_time() {
        let old = RolloutStatus::default();
        let mut ctx = PauseContext::new(false);
        ctx.add_pause(reason::CANARY_PAUSE_STEP);
        let mut new = RolloutStatus::default();
        ctx.apply(&old, &mut new, ts(5));
        assert_eq!(new.controller_pause, Some(true));
        let cond = &new.pause_conditions.unwrap()[0];
        assert_eq!(cond.reason, reason::CANARY_PAUSE_STEP);
        assert_eq!(cond.start_time, Time(ts(5)));
    }

    #[test]
    fn existing_reason_keeps_start_time_and_removal_drops_fields() {
        let old = RolloutStatus {
            pause_conditions: Some(vec![PauseCondition {
                reason: reason::CANARY_PAUSE_STEP.into(),
                start_time: Time(ts(1)),
            }]),
            controller_pause: Some(true),
            ..Default::default()
        };
        let mut ctx = PauseContext::new(false);
        ctx.add_pause(reason::CANARY_PAUSE_STEP);
        let mut new = RolloutStatus::default();
        ctx.apply(&old, &mut new, ts(9));
        assert_eq!(
            new.pause_conditions.as_ref().unwrap()[0].start_time,
            Time(ts(1))
        );

        let mut ctx = PauseContext::new(false);
        ctx.remove_pause(reason::CANARY_PAUSE_STEP);
        let mut new = RolloutStatus::default();
        ctx.apply(&old, &mut new, ts(9));
        assert_eq!(new.pause_conditions, None);
        assert_eq!(new.controller_pause, None);
    }

    #[test]
    fn abort_clears_pauses_and_keeps_first_aborted_at() {
        let old = RolloutStatus {
            abort: Some(true),
            aborted_at: Some(Time(ts(3))),
            pause_conditions: Some(vec![PauseCondition {
                reason: reason::CANARY_PAUSE_STEP.into(),
                start_time: Time(ts(1)),
            }]),
            ..Default::default()
        };
        let ctx = PauseContext::new(true);
        assert!(ctx.is_aborted());
        let mut new = RolloutStatus::default();
        ctx.apply(&old, &mut new, ts(9));
        assert_eq!(new.abort, Some(true));
        assert_eq!(new.aborted_at, Some(Time(ts(3))));
        assert_eq!(new.pause_conditions, None);
    }
}
