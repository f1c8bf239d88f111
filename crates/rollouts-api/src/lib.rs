//! Argo Rollouts-compatible API types for `argoproj.io/v1alpha1`.
//!
//! This crate holds the five kinds of the Argo Rollouts API, field for field as Argo's
//! CustomResourceDefinitions declare them:
//!
//! | kind | spec | status | scope |
//! |---|---|---|---|
//! | [`Rollout`] | [`RolloutSpec`] | [`RolloutStatus`] | namespaced |
//! | [`AnalysisTemplate`] | [`AnalysisTemplateSpec`] | — | namespaced |
//! | [`ClusterAnalysisTemplate`] | [`AnalysisTemplateSpec`] | — | cluster |
//! | [`AnalysisRun`] | [`AnalysisRunSpec`] | [`AnalysisRunStatus`] | namespaced |
//! | [`Experiment`] | [`ExperimentSpec`] | [`ExperimentStatus`] | namespaced |
//!
//! Every manifest written for Argo Rollouts deserializes into these types, and serializes back
//! with exactly the fields it had: optional fields are `Option`s that stay absent when absent,
//! and explicit zero values (`0`, `false`, `""`, `[]`) are kept. Fields are declared in the
//! order of Argo's Go structs, so JSON written by `serde_json` has Go's key order.
//!
//! Besides the types the crate offers:
//! - [`labels`]: the well-known label and annotation keys;
//! - [`defaults`]: the defaults Argo applies to unset fields, with `*_or_default` accessors;
//! - [`crds`]: the CustomResourceDefinitions, as objects and as YAML;
//! - [`decode`]: deserialization whose errors name the path of the offending field.
//!
//! The crate does no I/O and has no Cargo features. It depends on `kube` with only the
//! `derive` feature (no client, no TLS, no runtime) and on `k8s-openapi` without a Kubernetes
//! version feature: the final binary picks the version, as k8s-openapi requires. Vendors that
//! build tools on the Argo Rollouts API (dashboards, policy engines, CLIs) can depend on this
//! crate alone and use the types with their own client:
//!
//! ```
//! use rollouts_api::Rollout;
//!
//! let manifest = serde_json::json!({
//!     "apiVersion": "argoproj.io/v1alpha1",
//!     "kind": "Rollout",
//!     "metadata": { "name": "web" },
//!     "spec": { "strategy": { "canary": { "steps": [{ "setWeight": 20 }, { "pause": {} }] } } }
//! });
//! let rollout: Rollout = rollouts_api::decode(&manifest).unwrap();
//! assert_eq!(rollout.spec.replicas_or_default(), 1);
//! assert_eq!(rollout.spec.canary().unwrap().steps().len(), 2);
//! ```

pub mod analysis;
pub mod crds;
pub mod defaults;
pub mod experiment;
pub mod labels;
pub mod rollout;
mod schema;
pub mod template;

pub use analysis::*;
pub use experiment::*;
pub use rollout::*;
pub use template::*;

/// API group of all kinds.
pub const GROUP: &str = "argoproj.io";
/// API version of all kinds.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of all kinds.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A document did not match the type; `path` names the offending field, e.g.
    /// `spec.strategy.canary.steps[0]`.
    #[error("{path}: {message}")]
    Decode {
        /// Path of the field, `.` when the document itself is wrong.
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// A CustomResourceDefinition could not be converted or rendered.
    #[error("rendering CustomResourceDefinition {name}: {message}")]
    Render {
        /// Name of the CustomResourceDefinition.
        name: String,
        /// What went wrong.
        message: String,
    },
}

/// Deserializes `value` into `T`; an error names the path of the field that does not fit.
///
/// ```
/// let doc = serde_json::json!({
///     "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {},
///     "spec": { "replicas": "three" }
/// });
/// let err = rollouts_api::decode::<rollouts_api::Rollout>(&doc).unwrap_err();
/// assert!(err.to_string().starts_with("spec.replicas: invalid type"));
/// ```
pub fn decode<T: serde::de::DeserializeOwned>(value: &serde_json::Value) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|err| Error::Decode {
        path: err.path().to_string(),
        message: err.into_inner().to_string(),
    })
}
