//! Argo Rollouts' pod-template hash and canary step hash, byte-identical to Argo's.
//!
//! # What the hash is
//!
//! Every ReplicaSet a Rollout owns is named `<rollout>-<hash>` and labelled
//! `rollouts-pod-template-hash: <hash>`, where `<hash>` is computed from the Rollout's pod
//! template (Argo Rollouts `utils/hash.ComputePodTemplateHash`):
//!
//! 1. the template is decoded into the Go type `k8s.io/api/core/v1.PodTemplateSpec`
//!    (k8s.io/api v0.34.x, the version Argo vendors) and written back with Go's
//!    `json.Marshal`;
//! 2. those bytes go through FNV-1a (32 bit); when the Rollout has a `status.collisionCount`,
//!    eight more bytes follow: the count as a little-endian `uint32`, padded with four zeros;
//! 3. the decimal form of the 32-bit sum is mapped character by character through Kubernetes'
//!    `rand.SafeEncodeString` (alphabet `bcdfghjklmnpqrstvwxz2456789`, index = byte % 27).
//!
//! `status.currentStepHash` is the same FNV-1a/SafeEncode over `json.Marshal` of the Go
//! `[]v1alpha1.CanaryStep` (Argo's own types), without collision bytes.
//!
//! # Why byte identity matters
//!
//! Replacing Argo's controller with ours must not touch running applications. If our hash of a
//! template differed from Argo's by a single byte of JSON, we would not recognise Argo's
//! ReplicaSets as the current revision and would roll out every application again. So the JSON
//! must be exactly what Go writes: struct fields in Go declaration order, `omitempty` and
//! `omitzero` as tagged, `null` for nil slices, sorted map keys, Go's string escaping
//! (`<`, `>`, `&`, U+2028, U+2029 as `\u…`), `resource.Quantity` in the form Go prints it
//! (see [`quantity`]), `IntOrString` as number or string, `metav1.Time` as RFC 3339 UTC seconds;
//! and fields that k8s.io/api v0.34 does not know (a Kubernetes 1.35+ field) are dropped,
//! because Argo's typed decoding drops them.
//!
//! # The Go type table
//!
//! `src/gotypes.rs` (private, generated) lists every Go type `encoding/json` visits
//! from the two roots, with each struct's JSON fields in declaration order and their
//! `omitempty`/`omitzero` flags. It is produced by a small Go program that reflects over the
//! real Go types, `xtask/go/gotypes` (a dev tool, not run by tests or CI). When Argo Rollouts
//! moves to a newer Kubernetes, update the versions in `xtask/go/gotypes/go.mod` (copy Argo's
//! `replace` block) and regenerate:
//!
//! ```text
//! cd xtask/go/gotypes && go run . > ../../../crates/rollouts-hash/src/gotypes.rs
//! go run ./golden -out ../../../crates/rollouts-hash/tests/fixtures   # golden fixtures
//! ```
//!
//! The generator refuses types the encoder does not model (new custom JSON codecs,
//! interfaces, …), so a regeneration that succeeds is safe to use.
//!
//! # Decoding rules (input side)
//!
//! The input is the template as the API server serves it to a controller (a
//! `serde_json::Value`). Field names match case-sensitively, as in client-go's decoder
//! (`sigs.k8s.io/json`); Go's standard library would also accept `"Containers"`, client-go does
//! not, and neither do we: a key that differs from the Go JSON name only in case is dropped. A
//! value of the wrong JSON type (a string where Go has an `int32`, a fraction for an integer, an
//! invalid quantity or time) makes Argo fail to decode the whole Rollout; here it is a
//! [`HashError`] naming the field. Nothing panics on any input.
//!
//! # Limits
//!
//! * Raw JSON fields (`metadata.managedFields[].fieldsV1`, a step plugin's `config`) are
//!   re-emitted by Go byte for byte as they were received. A `serde_json::Value` has lost the
//!   original key order and number spelling, so we emit what the API server serves: keys sorted,
//!   numbers in Go's notation. That is what Argo receives from the API server, so the hashes
//!   agree for objects read from a cluster.
//! * Go merges duplicate keys of a JSON object into one struct; a `serde_json::Value` keeps the
//!   last one. The API server never serves duplicate keys.

mod encoder;
mod gojson;
mod gotypes;
pub mod quantity;
mod table;
mod time;

pub use quantity::{Quantity, QuantityError};
use serde_json::Value;

/// Why a template or step list cannot be hashed: Argo's Go decoder would reject it too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// A JSON value of the wrong type for the Go field (Go: "cannot unmarshal X into Go ...").
    #[error("{path}: cannot decode a JSON {found} into Go type {go_type}")]
    WrongType {
        /// Where in the input, e.g. `template.spec.containers[0].name`.
        path: String,
        /// The JSON type found (`string`, `number`, `object`, ...).
        found: &'static str,
        /// The Go type expected there.
        go_type: String,
    },
    /// A number that is not an integer of the Go field's size (Go reads `1.5`, `1e+21` or
    /// `2147483648` into an `int32` as an error).
    #[error("{path}: number {value} does not fit Go type {go_type}")]
    NumberOutOfRange {
        /// Where in the input.
        path: String,
        /// The number as the API server would serve it.
        value: String,
        /// The Go type expected there.
        go_type: String,
    },
    /// A string that `resource.ParseQuantity` rejects.
    #[error("{path}: invalid quantity {value:?}: {source}")]
    InvalidQuantity {
        /// Where in the input.
        path: String,
        /// The offending value.
        value: String,
        /// Go's parse error.
        #[source]
        source: QuantityError,
    },
    /// A string that Go's `time.Parse(time.RFC3339, …)` rejects.
    #[error("{path}: invalid RFC 3339 time {value:?}")]
    InvalidTime {
        /// Where in the input.
        path: String,
        /// The offending value.
        value: String,
    },
    /// The generated type table is inconsistent (a bug in this crate, never the input's fault).
    #[error("internal error: Go type table entry {index} is inconsistent")]
    Table {
        /// The table index involved.
        index: usize,
    },
}

const SAFE_ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-1a 32 over `bytes` (then the collision count, if any, as 8 bytes: little-endian `uint32`
/// and four zero bytes), the decimal sum mapped through `rand.SafeEncodeString`.
///
/// This is the last step of both hashes; [`pod_template_hash`] and [`step_hash`] call it on the
/// Go JSON. Negative collision counts are converted to `uint32` as Go does (`-1` → `0xffffffff`).
pub fn hash_bytes(bytes: &[u8], collision_count: Option<i32>) -> String {
    const OFFSET: u32 = 2_166_136_261;
    const PRIME: u32 = 16_777_619;
    let mut h = OFFSET;
    let mut write = |data: &[u8]| {
        for &b in data {
            h ^= u32::from(b);
            h = h.wrapping_mul(PRIME);
        }
    };
    write(bytes);
    if let Some(count) = collision_count {
        let mut extra = [0u8; 8];
        extra[..4].copy_from_slice(&count.cast_unsigned().to_le_bytes());
        write(&extra);
    }
    h.to_string()
        .bytes()
        .map(|d| char::from(SAFE_ALPHABET[usize::from(d) % SAFE_ALPHABET.len()]))
        .collect()
}

/// The bytes Go's `json.Marshal` writes for `template` decoded as a k8s.io/api v0.34
/// `core/v1.PodTemplateSpec` (the input of the pod-template hash).
pub fn go_json_pod_template(template: &Value) -> Result<Vec<u8>, HashError> {
    encoder::go_json(gotypes::POD_TEMPLATE_SPEC, "template", template)
}

/// Argo's pod-template hash of `template` (`spec.template` of a Rollout, or the resolved
/// template of a `workloadRef`), with the Rollout's `status.collisionCount`.
///
/// The template must be the one from the API server, before the controller adds anything (the
/// hash label, injected anti-affinity, ephemeral metadata).
pub fn pod_template_hash(
    template: &Value,
    collision_count: Option<i32>,
) -> Result<String, HashError> {
    Ok(hash_bytes(
        &go_json_pod_template(template)?,
        collision_count,
    ))
}

/// The bytes Go's `json.Marshal` writes for `steps` decoded as Argo's
/// `[]v1alpha1.CanaryStep` (`null` for an absent or null step list).
pub fn go_json_canary_steps(steps: &Value) -> Result<Vec<u8>, HashError> {
    encoder::go_json(gotypes::CANARY_STEPS, "steps", steps)
}

/// Argo's canary step hash (`status.currentStepHash`) of `spec.strategy.canary.steps`.
///
/// Pass `Value::Null` when the canary strategy has no `steps` (Go hashes the JSON `null`).
/// Argo uses `""` instead of a hash for blue-green rollouts; that choice is the caller's.
pub fn step_hash(steps: &Value) -> Result<String, HashError> {
    Ok(hash_bytes(&go_json_canary_steps(steps)?, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_vectors_from_argo() {
        let post = br#"{"metadata":{},"spec":{"containers":null}}"#;
        assert_eq!(hash_bytes(post, None), "658c46c486");
        assert_eq!(hash_bytes(post, Some(1)), "6746d5bbc");
        let pre = br#"{"metadata":{"creationTimestamp":null},"spec":{"containers":null}}"#;
        assert_eq!(hash_bytes(pre, None), "76bbb58f74");
        assert_eq!(hash_bytes(pre, Some(1)), "688c48b575");
        assert_eq!(hash_bytes(b"", None), "65bb57b6b5");
        assert_eq!(hash_bytes(b"", Some(1)), "548d9d4bcb");
        assert_eq!(hash_bytes(b"null", None), "5ffbfbbd64");
        assert_eq!(hash_bytes(b"null", Some(1)), "6d54c4bc9c");
    }

    #[test]
    fn empty_template_encodes_like_go() {
        let bytes = go_json_pod_template(&serde_json::json!({})).unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            r#"{"metadata":{},"spec":{"containers":null}}"#
        );
        assert_eq!(
            pod_template_hash(&Value::Null, None),
            Ok("658c46c486".to_owned())
        );
    }

    #[test]
    fn errors_name_the_field() {
        let err = pod_template_hash(
            &serde_json::json!({"spec": {"containers": [{"name": 5}]}}),
            None,
        );
        assert_eq!(
            err.map_err(|e| e.to_string()),
            Err(
                "template.spec.containers[0].name: cannot decode a JSON number into Go type string"
                    .to_owned()
            )
        );
        let err = pod_template_hash(
            &serde_json::json!({"spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "x"}}}]}}),
            None,
        );
        assert!(
            matches!(&err, Err(HashError::InvalidQuantity { path, .. }) if path == r#"template.spec.containers[0].resources.limits["nvidia.com/gpu"]"#),
            "{err:?}"
        );
        let err = step_hash(&serde_json::json!([{"setWeight": 1.5}]));
        assert!(
            matches!(&err, Err(HashError::NumberOutOfRange { path, .. }) if path == "steps[0].setWeight"),
            "{err:?}"
        );
    }
}
