//! Revision hashes: the pod-template hash (ReplicaSet names and the `rollouts-pod-template-hash`
//! label) and the step hash (`status.currentStepHash`).
//!
//! Both are FNV-1a 32 over JSON bytes, printed in decimal and mapped through Kubernetes'
//! `SafeEncodeString` alphabet; the pod-template hash appends the collision count as 8 bytes.
//! Byte-identical Go JSON is the job of the `rollouts-hash` crate; until the engine is wired to
//! it, this module hashes `serde_json`'s rendering of the typed values, whose key order follows
//! Argo's Go structs (see `rollouts-api`). The functions here are the only place the engine
//! computes a hash, so the switch is local.

use rollouts_api::{CanaryStep, PodTemplateSpec};

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;
const SAFE_ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";

fn fnv1a(state: u32, bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(state, |h, b| (h ^ u32::from(*b)).wrapping_mul(FNV_PRIME))
}

/// Kubernetes `rand.SafeEncodeString` over the decimal digits of `value`.
fn safe_encode(value: u32) -> String {
    value
        .to_string()
        .bytes()
        .map(|b| SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// Hash of raw bytes, with the optional collision count appended as Argo does.
pub fn hash_bytes(bytes: &[u8], collision_count: Option<i32>) -> String {
    let mut h = fnv1a(FNV_OFFSET, bytes);
    if let Some(count) = collision_count {
        let mut extra = [0u8; 8];
        extra[..4].copy_from_slice(&(count as u32).to_le_bytes());
        h = fnv1a(h, &extra);
    }
    safe_encode(h)
}

/// The pod-template hash of a Rollout's template (`None` template hashes as `{}` like an
/// empty Go struct would not; Argo always has a template once validated).
pub fn pod_template_hash(
    template: Option<&PodTemplateSpec>,
    collision_count: Option<i32>,
) -> String {
    let bytes = match template {
        Some(t) => serde_json::to_vec(t).unwrap_or_default(),
        None => b"{}".to_vec(),
    };
    hash_bytes(&bytes, collision_count)
}

/// The step hash of a canary step list (`null` when there are no steps, as Go marshals a nil
/// slice).
pub fn step_hash(steps: Option<&Vec<CanaryStep>>) -> String {
    let bytes = match steps {
        Some(s) => serde_json::to_vec(s).unwrap_or_default(),
        None => b"null".to_vec(),
    };
    hash_bytes(&bytes, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden vectors from Argo (`argo-core.md` §2.2).
    #[test]
    fn golden_vectors() {
        let empty = br#"{"metadata":{},"spec":{"containers":null}}"#;
        assert_eq!(hash_bytes(empty, None), "658c46c486");
        assert_eq!(hash_bytes(empty, Some(1)), "6746d5bbc");
        let old = br#"{"metadata":{"creationTimestamp":null},"spec":{"containers":null}}"#;
        assert_eq!(hash_bytes(old, None), "76bbb58f74");
        assert_eq!(hash_bytes(old, Some(1)), "688c48b575");
    }
}
