//! Revision hashes: the pod-template hash (ReplicaSet names and the `rollouts-pod-template-hash`
//! label) and the step hash (`status.currentStepHash`), computed by `rollouts-hash` over the
//! same bytes Go's `encoding/json` writes, so that ReplicaSets created by Argo are recognised.
//!
//! A template or step list that Go itself could not decode has no Argo hash; such values fall
//! back to a hash of `serde_json`'s rendering (the Rollout is then new to both controllers).

use rollouts_api::{CanaryStep, PodTemplateSpec};

pub use rollouts_hash::hash_bytes;

/// The pod-template hash of a Rollout's `spec.template` with its collision count.
pub fn pod_template_hash(
    template: Option<&PodTemplateSpec>,
    collision_count: Option<i32>,
) -> String {
    let value = template
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    rollouts_hash::pod_template_hash(&value, collision_count)
        .unwrap_or_else(|_| hash_bytes(value.to_string().as_bytes(), collision_count))
}

/// The step hash of a canary step list (Go hashes `null` when there are no steps).
pub fn step_hash(steps: Option<&Vec<CanaryStep>>) -> String {
    let value = steps
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(serde_json::Value::Null);
    rollouts_hash::step_hash(&value)
        .unwrap_or_else(|_| hash_bytes(value.to_string().as_bytes(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden vectors from Argo (`argo-core.md` §2.2): the empty template.
    #[test]
    fn empty_template_matches_argo() {
        let empty = PodTemplateSpec::default();
        assert_eq!(pod_template_hash(Some(&empty), None), "658c46c486");
        assert_eq!(pod_template_hash(Some(&empty), Some(1)), "6746d5bbc");
    }

    #[test]
    fn step_hash_changes_with_steps() {
        let a = vec![CanaryStep {
            set_weight: Some(10),
            ..Default::default()
        }];
        let b = vec![CanaryStep {
            set_weight: Some(20),
            ..Default::default()
        }];
        assert_ne!(step_hash(Some(&a)), step_hash(Some(&b)));
        assert_eq!(step_hash(None), hash_bytes(b"null", None));
    }
}
