//! Canary step helpers: the current step, the weight and scale in effect, pause durations, and
//! the step description used in events.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rollouts_api::{CanaryStep, Rollout, RolloutExperimentStep, SetCanaryScale};

use crate::duration::parse_go_duration;
use crate::intstr::{IntOrStr, go_atoi};

/// Converts k8s-openapi's `IntOrString`.
pub fn int_or_str(v: &IntOrString) -> IntOrStr {
    match v {
        IntOrString::Int(i) => IntOrStr::Int(*i),
        IntOrString::String(s) => IntOrStr::Str(s.clone()),
    }
}

/// Argo's `RolloutPause.DurationSeconds()`: an integer is seconds; a string is parsed as an
/// integer number of seconds, else as a Go duration (fractions truncated); anything else is
/// `-1` (invalid). No duration is `0`.
pub fn pause_duration_seconds(duration: Option<&IntOrString>) -> i64 {
    match duration {
        None => 0,
        Some(IntOrString::Int(i)) => i64::from(*i),
        Some(IntOrString::String(s)) => match go_atoi(s) {
            Some(v) => i64::from(v as i32),
            None => match parse_go_duration(s) {
                Ok(d) => i64::from(d.whole_seconds() as i32),
                Err(_) => -1,
            },
        },
    }
}

/// The canary steps of a Rollout (empty for blue-green).
pub fn steps(rollout: &Rollout) -> &[CanaryStep] {
    rollout.spec.canary().map_or(&[], |c| c.steps())
}

/// The current step index as Argo reads it (`None` without steps; 0 when unset).
pub fn current_index(rollout: &Rollout) -> Option<i32> {
    if steps(rollout).is_empty() {
        return None;
    }
    Some(
        rollout
            .status
            .as_ref()
            .and_then(|s| s.current_step_index)
            .unwrap_or(0),
    )
}

/// Argo's `GetCurrentCanaryStep`: the step at the current index (`None` past the last step).
pub fn current_step(rollout: &Rollout) -> (Option<&CanaryStep>, Option<i32>) {
    let steps = steps(rollout);
    match current_index(rollout) {
        None => (None, None),
        Some(i) if i < 0 || i as usize >= steps.len() => (None, Some(i)),
        Some(i) => (Some(&steps[i as usize]), Some(i)),
    }
}

/// Argo's `GetCurrentSetWeight`: 0 when aborted; the maximum past the last step; else the last
/// `setWeight` at or before the current step (0 if none).
pub fn current_set_weight(rollout: &Rollout, aborted: bool, max_weight: i32) -> i32 {
    if aborted {
        return 0;
    }
    let (step, index) = current_step(rollout);
    if step.is_none() {
        return max_weight;
    }
    let index = index.unwrap_or(0) as usize;
    steps(rollout)[..=index]
        .iter()
        .rev()
        .find_map(|s| s.set_weight)
        .unwrap_or(0)
}

/// Argo's `UseSetCanaryScale`: the latest `setCanaryScale` at or before the current step, unless
/// `matchTrafficWeight` cancels it, there is no traffic routing, or the rollout is aborted with a
/// scale-down delay.
pub fn set_canary_scale_in_effect(
    rollout: &Rollout,
    aborted: bool,
    abort_delay_keeps_canary: bool,
) -> Option<&SetCanaryScale> {
    let canary = rollout.spec.canary()?;
    canary.traffic_routing.as_ref()?;
    if aborted && !abort_delay_keeps_canary {
        return None;
    }
    let (step, index) = current_step(rollout);
    step?;
    let index = index.unwrap_or(0) as usize;
    for s in steps(rollout)[..=index].iter().rev() {
        if let Some(scale) = &s.set_canary_scale {
            if scale.match_traffic_weight == Some(true) {
                return None;
            }
            return Some(scale);
        }
    }
    None
}

/// Argo's `GetCurrentExperimentStep`: the latest experiment step at or before the current one.
pub fn current_experiment_step(rollout: &Rollout) -> Option<&RolloutExperimentStep> {
    let (step, index) = current_step(rollout);
    step?;
    let index = index.unwrap_or(0) as usize;
    steps(rollout)[..=index]
        .iter()
        .rev()
        .find_map(|s| s.experiment.as_ref())
}

/// Argo's `CanaryStepString`, used in `RolloutStepCompleted` events.
pub fn describe(step: &CanaryStep) -> String {
    if let Some(w) = step.set_weight {
        return format!("setWeight: {w}");
    }
    if let Some(p) = &step.pause {
        return match &p.duration {
            Some(IntOrString::Int(i)) => format!("pause: {i}"),
            Some(IntOrString::String(s)) => format!("pause: {s}"),
            None => "pause".to_string(),
        };
    }
    if step.experiment.is_some() {
        return "experiment".to_string();
    }
    if step.analysis.is_some() {
        return "analysis".to_string();
    }
    if let Some(scale) = &step.set_canary_scale {
        if let Some(w) = scale.weight {
            return format!("setCanaryScale{{weight: {w}}}");
        } else if scale.match_traffic_weight == Some(true) {
            return "setCanaryScale{matchTrafficWeight: true}".to_string();
        } else if let Some(r) = scale.replicas {
            return format!("setCanaryScale{{replicas: {r}}}");
        }
    }
    if let Some(p) = &step.plugin {
        return format!("plugin: {}", p.name);
    }
    if let Some(h) = &step.set_header_route {
        return format!("setHeaderRoute: {}", h.name.as_deref().unwrap_or(""));
    }
    if let Some(m) = &step.set_mirror_route {
        return format!("setMirrorRoute: {}", m.name);
    }
    "invalid".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_duration_forms() {
        let s = |v: &str| IntOrString::String(v.to_string());
        assert_eq!(pause_duration_seconds(None), 0);
        assert_eq!(pause_duration_seconds(Some(&IntOrString::Int(10))), 10);
        assert_eq!(pause_duration_seconds(Some(&s("10"))), 10);
        assert_eq!(pause_duration_seconds(Some(&s("30s"))), 30);
        assert_eq!(pause_duration_seconds(Some(&s("5m"))), 300);
        assert_eq!(pause_duration_seconds(Some(&s("1h"))), 3600);
        assert_eq!(pause_duration_seconds(Some(&s("1.9s"))), 1);
        assert_eq!(pause_duration_seconds(Some(&s("1h30m"))), 5400);
        assert_eq!(pause_duration_seconds(Some(&s("-5s"))), -5);
        assert_eq!(pause_duration_seconds(Some(&s("abc"))), -1);
        assert_eq!(pause_duration_seconds(Some(&s("1d"))), -1);
    }
}
