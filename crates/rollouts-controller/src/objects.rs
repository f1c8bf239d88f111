//! Slim, tolerant views of the AnalysisRuns and Experiments the Rollout controller watches.
//!
//! The Rollout controller only needs a few fields of these objects (labels, phase, message,
//! `spec.terminate`, owner references), while a full AnalysisRun carries every measurement it
//! took. Watching them through these projections keeps the caches small (the rest of the
//! document is dropped as it is decoded) and makes them tolerant: a field of an unexpected
//! type reads as empty instead of breaking the whole watch, as Argo's tolerant informers do.
//! The AnalysisRun and Experiment controllers will watch the full objects.

use std::borrow::Cow;

use k8s_openapi::{NamespaceResourceScope, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use kube::Resource;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Reads any JSON value and keeps it only if it is a string.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(v.as_str().map(str::to_string))
}

/// Reads any JSON value and keeps it only if it is a boolean.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(v.as_bool())
}

/// Reads a JSON object as the given type; anything else (or an object that does not fit) is the
/// default.
fn lenient<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned + Default>(
    d: D,
) -> Result<T, D::Error> {
    let v = Value::deserialize(d)?;
    if !v.is_object() {
        return Ok(T::default());
    }
    Ok(serde_json::from_value(v).unwrap_or_default())
}

/// Reads a JSON array of objects of the given type, skipping elements that do not fit;
/// anything but an array is empty.
fn lenient_list<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .filter(|e| e.is_object())
        .filter_map(|e| serde_json::from_value(e.clone()).ok())
        .collect())
}

/// `spec.terminate`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TerminateSpec {
    /// Whether the run was asked to stop.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub terminate: Option<bool>,
}

/// `status.phase` and `status.message`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseStatus {
    /// Phase.
    #[serde(default, deserialize_with = "lenient_string")]
    pub phase: Option<String>,
    /// Message.
    #[serde(default, deserialize_with = "lenient_string")]
    pub message: Option<String>,
    /// Experiments only: per-template status.
    #[serde(default, deserialize_with = "lenient_list")]
    pub template_statuses: Vec<TemplateStatusSummary>,
}

/// One `status.templateStatuses[]` entry of an Experiment.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateStatusSummary {
    /// Template name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: Option<String>,
    /// Service created for the template.
    #[serde(default, deserialize_with = "lenient_string")]
    pub service_name: Option<String>,
    /// Pod-template hash of the template.
    #[serde(default, deserialize_with = "lenient_string")]
    pub pod_template_hash: Option<String>,
}

macro_rules! summary {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $plural:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, Deserialize)]
        pub struct $name {
            /// Metadata (labels, owner references, timestamps).
            #[serde(default)]
            pub metadata: ObjectMeta,
            /// `spec.terminate`.
            #[serde(default, deserialize_with = "lenient")]
            pub spec: TerminateSpec,
            /// `status.phase`, `status.message`.
            #[serde(default, deserialize_with = "lenient")]
            pub status: PhaseStatus,
        }

        impl Resource for $name {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(rollouts_api::GROUP)
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(rollouts_api::VERSION)
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

summary!(
    /// What the Rollout controller reads of an AnalysisRun.
    AnalysisRunSummary,
    "AnalysisRun",
    "analysisruns"
);
summary!(
    /// What the Rollout controller reads of an Experiment.
    ExperimentSummary,
    "Experiment",
    "experiments"
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn measurements_are_dropped_and_odd_fields_tolerated() {
        let run: AnalysisRunSummary = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
            "metadata": {"name": "web-abc-2-1", "namespace": "team", "labels": {"rollout-type": "Step"}},
            "spec": {"terminate": true, "metrics": [{"name": "m", "provider": {"web": {"url": "x"}}}]},
            "status": {"phase": "Running", "message": 7, "metricResults": [{"measurements": [1, 2, 3]}]}
        }))
        .unwrap();
        assert_eq!(run.metadata.name.as_deref(), Some("web-abc-2-1"));
        assert_eq!(run.spec.terminate, Some(true));
        assert_eq!(run.status.phase.as_deref(), Some("Running"));
        assert_eq!(run.status.message, None, "a number is not a message");
        assert_eq!(
            <AnalysisRunSummary as Resource>::plural(&()),
            "analysisruns"
        );

        let broken: AnalysisRunSummary = serde_json::from_value(json!({
            "metadata": {"name": "x"}, "spec": "not an object", "status": ["nor", "this"]
        }))
        .unwrap();
        assert_eq!(broken.spec.terminate, None);
        assert_eq!(broken.status.phase, None);
    }

    #[test]
    fn experiment_template_statuses_are_read() {
        let ex: ExperimentSummary = serde_json::from_value(json!({
            "metadata": {"name": "web-exp"},
            "status": {"phase": "Running", "templateStatuses": [
                {"name": "canary", "serviceName": "web-exp-canary", "podTemplateHash": "abc", "replicas": 1}
            ]}
        }))
        .unwrap();
        let t = &ex.status.template_statuses[0];
        assert_eq!(t.name.as_deref(), Some("canary"));
        assert_eq!(t.service_name.as_deref(), Some("web-exp-canary"));
        assert_eq!(t.pod_template_hash.as_deref(), Some("abc"));
        assert_eq!(<ExperimentSummary as Resource>::kind(&()), "Experiment");
    }
}
