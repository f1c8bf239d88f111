//! The request bodies of the user operations, exactly as Argo's plugin sends them (merge
//! patches unless said otherwise). Pure functions, so that each body is unit-tested against
//! Argo's; [`crate::commands`] sends them.

use jiff::Timestamp;
use rollouts_api::Rollout;
use rollouts_engine::steps;
use serde_json::{Value, json};

/// `abort`: on the status subresource (falling back to the main resource).
pub fn abort() -> Value {
    json!({"status": {"abort": true}})
}

/// `retry rollout`: on the status subresource (falling back to the main resource).
pub fn retry_rollout() -> Value {
    json!({"status": {"abort": false}})
}

/// `retry experiment`: on the main resource (an Experiment has no status subresource).
pub fn retry_experiment() -> Value {
    json!({"status": null})
}

/// `pause`: on the main resource.
pub fn pause() -> Value {
    json!({"spec": {"paused": true}})
}

/// `terminate analysisrun|experiment`: on the main resource.
pub fn terminate() -> Value {
    json!({"spec": {"terminate": true}})
}

/// `restart`: `spec.restartAt` in RFC 3339, UTC, whole seconds.
pub fn restart(at: Timestamp) -> Value {
    json!({"spec": {"restartAt": format_restart_at(at)}})
}

/// RFC 3339 in UTC with whole seconds (`2025-01-02T03:04:05Z`), as Go's `time.RFC3339` prints.
pub fn format_restart_at(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The patches of `promote`: sent in this order, `status` first through the status
/// subresource; if the Rollout has no status subresource (404), `unified` replaces `spec` and
/// goes to the main resource.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PromotePatches {
    /// Status-subresource patch.
    pub status: Option<Value>,
    /// Main-resource patch.
    pub spec: Option<Value>,
    /// Main-resource patch used instead of both when the status subresource is missing.
    pub unified: Option<Value>,
}

/// How to promote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PromoteMode {
    /// Release the current pause (or finish the current step).
    #[default]
    Step,
    /// `--full`: skip all remaining steps, pauses and analysis.
    Full,
    /// Deprecated `--skip-current-step`.
    SkipCurrentStep,
    /// Deprecated `--skip-all-steps`.
    SkipAllSteps,
}

fn next_index(ro: &Rollout) -> Option<i32> {
    let (_, index) = steps::current_step(ro);
    let n = steps::steps(ro).len() as i32;
    index.map(|i| if i < n { i + 1 } else { i })
}

/// What `promote` sends for `ro`. Errors name what cannot be done (skipping steps of a
/// blue-green Rollout or of a canary without steps).
pub fn promote(ro: &Rollout, mode: PromoteMode) -> Result<PromotePatches, String> {
    let st = ro.status.clone().unwrap_or_default();
    let mut p = PromotePatches::default();
    if matches!(
        mode,
        PromoteMode::SkipCurrentStep | PromoteMode::SkipAllSteps
    ) {
        if ro.spec.blue_green().is_some() {
            return Err("Cannot skip steps of a bluegreen rollout. Run without a flags".into());
        }
        if ro.spec.canary().is_some() && steps::steps(ro).is_empty() {
            return Err("Cannot skip steps of a rollout without steps".into());
        }
    }
    match mode {
        PromoteMode::SkipCurrentStep => {
            if let Some(i) = next_index(ro) {
                let v = json!({"status": {"currentStepIndex": i}});
                p.status = Some(v.clone());
                p.unified = Some(v);
            }
        }
        PromoteMode::SkipAllSteps => {
            let v = json!({"status": {"currentStepIndex": steps::steps(ro).len()}});
            p.status = Some(v.clone());
            p.unified = Some(v);
        }
        PromoteMode::Full => {
            if st.current_pod_hash != st.stable_rs {
                p.status = Some(json!({"status": {"promoteFull": true}}));
            }
        }
        PromoteMode::Step => {
            p.unified =
                Some(json!({"spec": {"paused": false}, "status": {"pauseConditions": null}}));
            if ro.spec.paused == Some(true) {
                p.spec = Some(json!({"spec": {"paused": false}}));
            }
            let has_pause_conditions = st.pause_conditions.as_ref().is_some_and(|c| !c.is_empty());
            let inconclusive = ro.spec.canary().is_some()
                && st
                    .canary
                    .as_ref()
                    .and_then(|c| c.current_step_analysis_run_status.as_ref())
                    .is_some_and(|a| a.status == "Inconclusive");
            if inconclusive && has_pause_conditions && st.controller_pause == Some(true) {
                if let Some(i) = next_index(ro) {
                    p.status = Some(json!({"status": {
                        "pauseConditions": null, "controllerPause": false, "currentStepIndex": i
                    }}));
                }
            } else if has_pause_conditions {
                p.status = Some(json!({"status": {"pauseConditions": null}}));
            } else if ro.spec.canary().is_some()
                && let Some(i) = next_index(ro)
            {
                p.status =
                    Some(json!({"status": {"pauseConditions": null, "currentStepIndex": i}}));
                p.unified = Some(json!({
                    "spec": {"paused": false},
                    "status": {"pauseConditions": null, "currentStepIndex": i}
                }));
            }
        }
    }
    Ok(p)
}

/// Sets `image` on every container, init container and ephemeral container of the pod template
/// at `spec.template` of `obj` named `container` (`*`: all). Returns whether any matched.
pub fn set_image(obj: &mut Value, container: &str, image: &str) -> bool {
    let mut found = false;
    let Some(pod_spec) = obj.pointer_mut("/spec/template/spec") else {
        return false;
    };
    for field in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(list) = pod_spec.get_mut(field).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in list {
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            if (name == container || container == "*")
                && let Some(obj) = c.as_object_mut()
            {
                obj.insert("image".into(), Value::String(image.to_string()));
                found = true;
            }
        }
    }
    found
}

/// `undo`: a JSON patch replacing `/spec/template` with `template`.
pub fn undo(template: &Value) -> Value {
    json!([{"op": "replace", "path": "/spec/template", "value": template}])
}

/// Whether `derived` says nothing that `base` contradicts: every non-empty field of `derived`
/// is equal in `base` (Kubernetes' semantic `DeepDerivative`, used by `undo` to skip a rollback
/// to the template already in place; the API server's defaults in `base` are ignored).
pub fn is_derivative(derived: &Value, base: &Value) -> bool {
    match (derived, base) {
        (Value::Null, _) => true,
        (Value::String(s), _) if s.is_empty() => true,
        (Value::Array(a), _) if a.is_empty() => true,
        (Value::Object(a), _) if a.is_empty() => true,
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .all(|(k, v)| is_derivative(v, b.get(k).unwrap_or(&Value::Null))),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| is_derivative(x, y))
        }
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Argo's bodies, as its plugin's source spells them.
    fn argo(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    fn rollout(v: Value) -> Rollout {
        rollouts_api::decode(&v).unwrap()
    }

    fn canary(steps: Value, status: Value) -> Rollout {
        rollout(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web"},
            "spec": {"strategy": {"canary": {"steps": steps}}},
            "status": status,
        }))
    }

    #[test]
    fn simple_bodies_are_argos() {
        assert_eq!(abort(), argo(r#"{"status":{"abort":true}}"#));
        assert_eq!(retry_rollout(), argo(r#"{"status":{"abort":false}}"#));
        assert_eq!(retry_experiment(), argo(r#"{"status":null}"#));
        assert_eq!(pause(), argo(r#"{"spec":{"paused":true}}"#));
        assert_eq!(terminate(), argo(r#"{"spec":{"terminate":true}}"#));
        let at: Timestamp = "2025-03-04T05:06:07.891Z".parse().unwrap();
        assert_eq!(
            restart(at),
            argo("{\n\t\"spec\": {\n\t\t\"restartAt\": \"2025-03-04T05:06:07Z\"\n\t}\n}")
        );
    }

    #[test]
    fn promote_clears_pause_conditions() {
        let ro = canary(
            json!([{"setWeight": 20}, {"pause": {}}]),
            json!({"currentStepIndex": 1, "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2025-01-01T00:00:00Z"}], "controllerPause": true}),
        );
        let p = promote(&ro, PromoteMode::Step).unwrap();
        assert_eq!(
            p.status,
            Some(argo(r#"{"status":{"pauseConditions":null}}"#))
        );
        assert_eq!(p.spec, None);
        assert_eq!(
            p.unified,
            Some(argo(
                r#"{"spec":{"paused":false},"status":{"pauseConditions":null}}"#
            ))
        );
    }

    #[test]
    fn promote_without_pause_condition_skips_the_step() {
        // Mid-analysis (or only spec.paused): the index moves on.
        let mut ro = canary(
            json!([{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "x"}]}}, {"pause": {}}]),
            json!({"currentStepIndex": 1}),
        );
        ro.spec.paused = Some(true);
        let p = promote(&ro, PromoteMode::Step).unwrap();
        assert_eq!(p.spec, Some(argo(r#"{"spec":{"paused":false}}"#)));
        assert_eq!(
            p.status,
            Some(argo(
                r#"{"status":{"pauseConditions":null, "currentStepIndex":2}}"#
            ))
        );
        assert_eq!(
            p.unified,
            Some(argo(
                r#"{"spec":{"paused":false},"status":{"pauseConditions":null, "currentStepIndex":2}}"#
            ))
        );
        // Past the last step the index stays.
        let done = canary(json!([{"setWeight": 20}]), json!({"currentStepIndex": 1}));
        let p = promote(&done, PromoteMode::Step).unwrap();
        assert_eq!(
            p.status,
            Some(argo(
                r#"{"status":{"pauseConditions":null, "currentStepIndex":1}}"#
            ))
        );
    }

    #[test]
    fn promote_an_inconclusive_analysis() {
        let ro = canary(
            json!([{"analysis": {"templates": [{"templateName": "x"}]}}, {"setWeight": 50}]),
            json!({
                "currentStepIndex": 0, "controllerPause": true,
                "pauseConditions": [{"reason": "InconclusiveAnalysisRun", "startTime": "2025-01-01T00:00:00Z"}],
                "canary": {"currentStepAnalysisRunStatus": {"name": "a", "status": "Inconclusive"}}
            }),
        );
        let p = promote(&ro, PromoteMode::Step).unwrap();
        assert_eq!(
            p.status,
            Some(argo(
                r#"{"status":{"pauseConditions":null, "controllerPause":false, "currentStepIndex":1}}"#
            ))
        );
    }

    #[test]
    fn promote_full_only_while_updating() {
        let updating = canary(
            json!([{"pause": {}}]),
            json!({"currentPodHash": "b", "stableRS": "a"}),
        );
        let p = promote(&updating, PromoteMode::Full).unwrap();
        assert_eq!(p.status, Some(argo(r#"{"status":{"promoteFull":true}}"#)));
        assert_eq!((p.spec, p.unified), (None, None));
        let stable = canary(
            json!([{"pause": {}}]),
            json!({"currentPodHash": "a", "stableRS": "a"}),
        );
        assert_eq!(
            promote(&stable, PromoteMode::Full).unwrap(),
            PromotePatches::default()
        );
    }

    #[test]
    fn deprecated_skip_flags() {
        let ro = canary(
            json!([{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}]),
            json!({"currentStepIndex": 1}),
        );
        let p = promote(&ro, PromoteMode::SkipCurrentStep).unwrap();
        assert_eq!(p.status, Some(argo(r#"{"status":{"currentStepIndex":2}}"#)));
        assert_eq!(p.unified, p.status);
        let p = promote(&ro, PromoteMode::SkipAllSteps).unwrap();
        assert_eq!(p.status, Some(argo(r#"{"status":{"currentStepIndex":3}}"#)));
        let no_steps = canary(json!([]), json!({}));
        assert_eq!(
            promote(&no_steps, PromoteMode::SkipAllSteps).unwrap_err(),
            "Cannot skip steps of a rollout without steps"
        );
        let bg = rollout(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "b"},
            "spec": {"strategy": {"blueGreen": {"activeService": "a"}}}
        }));
        assert_eq!(
            promote(&bg, PromoteMode::SkipCurrentStep).unwrap_err(),
            "Cannot skip steps of a bluegreen rollout. Run without a flags"
        );
    }

    #[test]
    fn blue_green_promote_clears_conditions_or_only_unpauses() {
        let bg = rollout(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "b"},
            "spec": {"paused": true, "strategy": {"blueGreen": {"activeService": "a"}}},
            "status": {}
        }));
        let p = promote(&bg, PromoteMode::Step).unwrap();
        assert_eq!(p.status, None);
        assert_eq!(p.spec, Some(argo(r#"{"spec":{"paused":false}}"#)));
    }

    #[test]
    fn set_image_touches_every_container_list() {
        let mut obj = json!({"spec": {"template": {"spec": {
            "initContainers": [{"name": "init", "image": "i:1"}],
            "containers": [{"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1"}],
            "ephemeralContainers": [{"name": "dbg", "image": "d:1"}]
        }}}});
        assert!(set_image(&mut obj, "app", "a:2"));
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"][0]["image"],
            "a:2"
        );
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"][1]["image"],
            "s:1"
        );
        assert!(set_image(&mut obj, "*", "x:9"));
        for f in ["initContainers", "containers", "ephemeralContainers"] {
            for c in obj["spec"]["template"]["spec"][f].as_array().unwrap() {
                assert_eq!(c["image"], "x:9");
            }
        }
        assert!(!set_image(&mut obj, "nope", "y"));
    }

    #[test]
    fn undo_is_a_json_patch_and_derivatives_ignore_defaults() {
        let t = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "a:1"}]}});
        assert_eq!(
            undo(&t),
            argo(
                r#"[{"op":"replace","path":"/spec/template","value":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"a:1"}]}}}]"#
            )
        );
        let from_rs = json!({"metadata": {"labels": {"app": "web"}, "creationTimestamp": null},
            "spec": {"containers": [{"name": "app", "image": "a:1", "imagePullPolicy": "IfNotPresent"}], "restartPolicy": "Always"}});
        assert!(is_derivative(&t, &from_rs));
        let other = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "a:2"}]}});
        assert!(!is_derivative(&other, &from_rs));
    }
}
