//! Rollout status writes: a JSON merge patch of the `/status` subresource, computed as a two-way
//! diff between the status read and the status planned, as Argo writes it. Nothing is written
//! when nothing changed.
//!
//! The diff is taken over the typed status, so fields this build does not know are never
//! touched, and a field the plan drops is removed with `null`.
//!
//! Also here: the `InvalidSpec` condition for Rollouts the engine cannot look at (an object that
//! does not decode, or one naming a traffic router that is not compiled in), written the way the
//! engine writes it for an invalid spec.

use jiff::Timestamp;
use rollouts_api::{RolloutSpec, RolloutStatus};
use rollouts_engine::conditions;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The JSON merge patch (RFC 7386) that turns `old` into `new`, or `None` when they are equal.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(d) = merge_diff(ov, nv) {
                            patch.insert(k.clone(), d);
                        }
                    }
                    None => {
                        patch.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        // An object that becomes something else, or any other change: replace it whole.
        _ if old == new => None,
        _ => Some(new.clone()),
    }
}

/// The `/status` merge patch from `old` to `new` (`{"status": {...}}`), or `None`.
pub fn status_patch(old: Option<&RolloutStatus>, new: &RolloutStatus) -> Result<Option<Value>> {
    let encode = |s: &RolloutStatus| {
        serde_json::to_value(s).map_err(|source| Error::Json {
            what: "encoding the Rollout status".into(),
            source,
        })
    };
    let old = match old {
        Some(s) => encode(s)?,
        None => Value::Object(Map::new()),
    };
    let new = encode(new)?;
    Ok(merge_diff(&old, &new).map(|diff| serde_json::json!({ "status": diff })))
}

/// The status of a Rollout that is invalid for a reason the engine does not see: the
/// `InvalidSpec` condition (replaced when its message changes), the observed generation, and
/// the phase the condition implies. `None` when the status already says so.
pub fn invalid_spec(
    rollout_name: &str,
    generation: i64,
    spec: &RolloutSpec,
    old: &RolloutStatus,
    error: &str,
    now: Timestamp,
) -> Option<RolloutStatus> {
    let msg = conditions::invalid_spec_message(rollout_name, error);
    let generation = generation.to_string();
    let prev = conditions::get(old, conditions::kind::INVALID_SPEC);
    let changed = prev.is_none_or(|p| p.message != msg);
    if !changed && old.observed_generation.as_deref() == Some(generation.as_str()) {
        return None;
    }
    let mut status = old.clone();
    if changed {
        conditions::remove(&mut status, conditions::kind::INVALID_SPEC);
        conditions::set(
            &mut status,
            conditions::new_condition(
                conditions::kind::INVALID_SPEC,
                conditions::TRUE,
                conditions::reason::INVALID_SPEC,
                msg,
                now,
            ),
        );
    }
    status.observed_generation = Some(generation);
    let (phase, message) = rollouts_engine::phase::calculate(spec, &status);
    status.phase = Some(phase.to_string());
    status.message = Some(message);
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_diffs_touch_only_what_changed() {
        let old = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2], "gone": true});
        let new = json!({"a": 1, "b": {"c": 2, "d": 4}, "e": [1, 2, 3], "f": "x"});
        assert_eq!(
            merge_diff(&old, &new),
            Some(json!({"b": {"d": 4}, "e": [1, 2, 3], "f": "x", "gone": null}))
        );
        assert_eq!(merge_diff(&old, &old), None);
        assert_eq!(
            merge_diff(&json!({"a": {"b": 1}}), &json!({"a": 5})),
            Some(json!({"a": 5}))
        );
    }

    #[test]
    fn applying_the_diff_gives_the_new_document() {
        fn apply(target: &mut Value, patch: &Value) {
            if let (Value::Object(t), Value::Object(p)) = (&mut *target, patch) {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        apply(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            } else {
                *target = patch.clone();
            }
        }
        let cases = [
            (json!({}), json!({"x": {"y": [1]}})),
            (json!({"x": {"y": 1, "z": 2}}), json!({"x": {"z": 3}})),
            (json!({"x": 1}), json!({})),
            (
                json!({"x": {"deep": {"er": 1}}}),
                json!({"x": {"deep": {"est": 2}}}),
            ),
        ];
        for (old, new) in cases {
            let mut doc = old.clone();
            if let Some(p) = merge_diff(&old, &new) {
                apply(&mut doc, &p);
            }
            assert_eq!(doc, new, "from {old} to {new}");
        }
    }

    #[test]
    fn status_patches_are_nested_under_status() {
        let old = RolloutStatus {
            current_step_index: Some(1),
            phase: Some("Paused".into()),
            ..RolloutStatus::default()
        };
        let new = RolloutStatus {
            current_step_index: Some(2),
            phase: Some("Progressing".into()),
            ..RolloutStatus::default()
        };
        assert_eq!(
            status_patch(Some(&old), &new).unwrap(),
            Some(json!({"status": {"currentStepIndex": 2, "phase": "Progressing"}}))
        );
        assert_eq!(status_patch(Some(&new), &new).unwrap(), None);
        let patch = status_patch(None, &new).unwrap().unwrap();
        assert_eq!(patch["status"]["currentStepIndex"], 2);
        let cleared = RolloutStatus {
            phase: Some("Progressing".into()),
            ..RolloutStatus::default()
        };
        assert_eq!(
            status_patch(Some(&new), &cleared).unwrap(),
            Some(json!({"status": {"currentStepIndex": null}}))
        );
    }

    #[test]
    fn invalid_spec_is_written_once_per_message_and_generation() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let spec = RolloutSpec::default();
        let msg = "traffic router `istio` is not compiled into this build";
        let first = invalid_spec("web", 3, &spec, &RolloutStatus::default(), msg, now).unwrap();
        let cond = conditions::get(&first, "InvalidSpec").unwrap();
        assert_eq!(cond.status, "True");
        assert_eq!(cond.reason, "InvalidSpec");
        assert!(cond.message.contains(msg), "{}", cond.message);
        assert_eq!(first.observed_generation.as_deref(), Some("3"));
        assert_eq!(first.phase.as_deref(), Some("Degraded"));
        assert!(
            first
                .message
                .as_deref()
                .unwrap_or("")
                .contains("InvalidSpec"),
            "{:?}",
            first.message
        );
        // Nothing new: no write.
        let later = Timestamp::from_second(1_700_000_100).unwrap();
        assert_eq!(invalid_spec("web", 3, &spec, &first, msg, later), None);
        // A new generation with the same problem: the generation moves, the condition stays.
        let next = invalid_spec("web", 4, &spec, &first, msg, later).unwrap();
        assert_eq!(next.observed_generation.as_deref(), Some("4"));
        assert_eq!(
            conditions::get(&next, "InvalidSpec")
                .unwrap()
                .last_transition_time,
            cond.last_transition_time
        );
        // Another problem: the condition is replaced.
        let other = invalid_spec("web", 4, &spec, &next, "something else", later).unwrap();
        assert!(
            conditions::get(&other, "InvalidSpec")
                .unwrap()
                .message
                .contains("something else")
        );
    }
}
