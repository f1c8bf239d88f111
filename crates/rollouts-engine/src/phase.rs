//! `status.phase` and `status.message` (Argo's `CalculateRolloutPhase`, `argo-core.md` §1.8),
//! and the client-side variant that also looks at `observedGeneration`.

use rollouts_api::{Rollout, RolloutSpec, RolloutStatus};

use crate::conditions::{kind, reason};

/// Rollout phases.
#[allow(clippy::module_inception)]
pub mod phase {
    /// Healthy.
    pub const HEALTHY: &str = "Healthy";
    /// Progressing.
    pub const PROGRESSING: &str = "Progressing";
    /// Paused.
    pub const PAUSED: &str = "Paused";
    /// Degraded.
    pub const DEGRADED: &str = "Degraded";
}

fn completed(phase: &str) -> bool {
    matches!(phase, "Successful" | "Failed" | "Error" | "Inconclusive")
}

/// The controller-side phase and message; first match wins.
pub fn calculate(spec: &RolloutSpec, status: &RolloutStatus) -> (&'static str, String) {
    for cond in status.conditions.iter().flatten() {
        if cond.type_ == kind::INVALID_SPEC {
            return (
                phase::DEGRADED,
                format!("{}: {}", kind::INVALID_SPEC, cond.message),
            );
        }
        if cond.reason == reason::ROLLOUT_ABORTED
            || cond.reason == reason::PROGRESS_DEADLINE_EXCEEDED
        {
            return (
                phase::DEGRADED,
                format!("{}: {}", cond.reason, cond.message),
            );
        }
    }
    if spec.paused == Some(true) {
        return (phase::PAUSED, "manually paused".to_string());
    }
    if let Some(first) = status.pause_conditions.iter().flatten().next() {
        return (phase::PAUSED, first.reason.clone());
    }
    if let Some(restart_at) = &spec.restart_at
        && status.restarted_at.as_ref() != Some(restart_at)
    {
        return (phase::PROGRESSING, "rollout is restarting".to_string());
    }
    let replicas = spec.replicas_or_default();
    let updated = status.updated_replicas.unwrap_or(0);
    if updated < replicas {
        return (
            phase::PROGRESSING,
            "more replicas need to be updated".to_string(),
        );
    }
    if status.available_replicas.unwrap_or(0) < updated {
        return (
            phase::PROGRESSING,
            "updated replicas are still becoming available".to_string(),
        );
    }
    let stable = status.stable_rs.as_deref().unwrap_or("");
    let current = status.current_pod_hash.as_deref().unwrap_or("");
    let fully_promoted = stable == current;
    if let Some(bg) = spec.blue_green() {
        let active = status
            .blue_green
            .as_ref()
            .and_then(|b| b.active_selector.as_deref())
            .unwrap_or("");
        if active.is_empty() || active != current {
            return (
                phase::PROGRESSING,
                "active service cutover pending".to_string(),
            );
        }
        if stable.is_empty() || !fully_promoted {
            let post_pending = bg.post_promotion_analysis.is_some()
                && status
                    .blue_green
                    .as_ref()
                    .and_then(|b| b.post_promotion_analysis_run_status.as_ref())
                    .is_none_or(|s| !completed(&s.status));
            if post_pending {
                return (
                    phase::PROGRESSING,
                    "waiting for analysis to complete".to_string(),
                );
            }
            return (
                phase::PROGRESSING,
                "waiting for post-promotion verification to complete".to_string(),
            );
        }
    } else if let Some(canary) = spec.canary() {
        if canary.traffic_routing.is_none()
            && status.replicas.unwrap_or(0) > status.updated_replicas.unwrap_or(0)
        {
            return (
                phase::PROGRESSING,
                "old replicas are pending termination".to_string(),
            );
        }
        if stable.is_empty() || !fully_promoted {
            return (
                phase::PROGRESSING,
                "waiting for all steps to complete".to_string(),
            );
        }
    }
    (phase::HEALTHY, String::new())
}

/// The phase a client shows (Argo's `GetRolloutPhase`): like [`calculate`], but first reports
/// a spec change the controller has not observed yet, or a resume it has not acted on.
pub fn for_client(rollout: &Rollout) -> (String, String) {
    let status = rollout.status.clone().unwrap_or_default();
    let generation = rollout.metadata.generation.unwrap_or(0);
    if let Some(observed) = status.observed_generation.as_deref()
        && let Some(observed) = crate::intstr::go_atoi(observed)
        && observed < generation
    {
        return (
            phase::PROGRESSING.to_string(),
            "waiting for rollout spec update to be observed".to_string(),
        );
    }
    if status.controller_pause == Some(true)
        && status.pause_conditions.as_ref().is_none_or(Vec::is_empty)
    {
        return (
            phase::PROGRESSING.to_string(),
            "waiting for rollout to unpause".to_string(),
        );
    }
    if let Some(p) = status.phase.as_deref()
        && !p.is_empty()
    {
        return (p.to_string(), status.message.clone().unwrap_or_default());
    }
    let (p, m) = calculate(&rollout.spec, &status);
    (p.to_string(), m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use rollouts_api::{PauseCondition, RolloutCondition};

    fn spec(extra: serde_json::Value) -> RolloutSpec {
        let mut doc = serde_json::json!({"replicas": 2, "strategy": {"canary": {}}});
        if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                d.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(doc).expect("spec")
    }

    fn cond(type_: &str, reason_: &str, message: &str) -> RolloutCondition {
        let t = Time(jiff::Timestamp::UNIX_EPOCH);
        RolloutCondition {
            type_: type_.into(),
            status: "True".into(),
            last_update_time: t.clone(),
            last_transition_time: t,
            reason: reason_.into(),
            message: message.into(),
        }
    }

    fn done(stable: &str) -> RolloutStatus {
        RolloutStatus {
            replicas: Some(2),
            updated_replicas: Some(2),
            available_replicas: Some(2),
            stable_rs: Some(stable.into()),
            current_pod_hash: Some("abc".into()),
            ..Default::default()
        }
    }

    /// `CalculateRolloutPhase`, first match wins.
    #[test]
    fn phase_table() {
        let healthy = done("abc");
        let cases: Vec<(RolloutSpec, RolloutStatus, &str, &str)> = vec![
            (spec(serde_json::json!({})), healthy.clone(), "Healthy", ""),
            (
                spec(serde_json::json!({})),
                RolloutStatus {
                    conditions: Some(vec![cond("InvalidSpec", "InvalidSpec", "bad")]),
                    ..healthy.clone()
                },
                "Degraded",
                "InvalidSpec: bad",
            ),
            (
                spec(serde_json::json!({"paused": true})),
                RolloutStatus {
                    conditions: Some(vec![cond("Progressing", "RolloutAborted", "aborted")]),
                    ..healthy.clone()
                },
                "Degraded",
                "RolloutAborted: aborted",
            ),
            (
                spec(serde_json::json!({})),
                RolloutStatus {
                    conditions: Some(vec![cond(
                        "Progressing",
                        "ProgressDeadlineExceeded",
                        "slow",
                    )]),
                    ..healthy.clone()
                },
                "Degraded",
                "ProgressDeadlineExceeded: slow",
            ),
            (
                spec(serde_json::json!({"paused": true})),
                healthy.clone(),
                "Paused",
                "manually paused",
            ),
            (
                spec(serde_json::json!({})),
                RolloutStatus {
                    pause_conditions: Some(vec![PauseCondition {
                        reason: "CanaryPauseStep".into(),
                        start_time: Time(jiff::Timestamp::UNIX_EPOCH),
                    }]),
                    ..healthy.clone()
                },
                "Paused",
                "CanaryPauseStep",
            ),
            (
                spec(serde_json::json!({"restartAt": "2024-01-01T00:00:00Z"})),
                healthy.clone(),
                "Progressing",
                "rollout is restarting",
            ),
            (
                spec(serde_json::json!({})),
                RolloutStatus {
                    updated_replicas: Some(1),
                    ..healthy.clone()
                },
                "Progressing",
                "more replicas need to be updated",
            ),
            (
                spec(serde_json::json!({})),
                RolloutStatus {
                    available_replicas: Some(1),
                    ..healthy.clone()
                },
                "Progressing",
                "updated replicas are still becoming available",
            ),
            (
                spec(serde_json::json!({})),
                RolloutStatus {
                    replicas: Some(3),
                    ..healthy.clone()
                },
                "Progressing",
                "old replicas are pending termination",
            ),
            (
                spec(
                    serde_json::json!({"strategy": {"canary": {"trafficRouting": {"plugins": {"x": {}}}}}}),
                ),
                RolloutStatus {
                    replicas: Some(3),
                    ..healthy.clone()
                },
                "Healthy",
                "",
            ),
            (
                spec(serde_json::json!({})),
                done("old"),
                "Progressing",
                "waiting for all steps to complete",
            ),
            (
                spec(serde_json::json!({"strategy": {"blueGreen": {"activeService": "a"}}})),
                healthy.clone(),
                "Progressing",
                "active service cutover pending",
            ),
        ];
        for (spec, status, phase_, message) in cases {
            assert_eq!(
                calculate(&spec, &status),
                (phase_, message.to_string()),
                "{status:?}"
            );
        }
    }
}
