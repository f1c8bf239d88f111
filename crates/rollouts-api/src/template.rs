//! Pod template types shared by Rollouts and Experiments.
//!
//! Argo's schema for an embedded pod template keeps only `labels` and `annotations` of its
//! metadata, so these types carry exactly that instead of a full `ObjectMeta`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Labels and annotations of a pod template, or of pods and runs created by the controller.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateMetadata {
    /// Labels to set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations to set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A pod template: the metadata subset Argo keeps plus a full Kubernetes pod spec.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateSpec {
    /// Labels and annotations of the pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PodTemplateMetadata>,
    /// The pod specification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<PodSpec>,
}

impl PodTemplateSpec {
    /// The template's labels (empty when none are set).
    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref())
            .unwrap_or(&EMPTY)
    }

    /// The template's annotations (empty when none are set).
    pub fn annotations(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .unwrap_or(&EMPTY)
    }
}

impl From<PodTemplateSpec> for k8s_openapi::api::core::v1::PodTemplateSpec {
    fn from(t: PodTemplateSpec) -> Self {
        let metadata =
            t.metadata.map(
                |m| k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    labels: m.labels,
                    annotations: m.annotations,
                    ..Default::default()
                },
            );
        Self {
            metadata,
            spec: t.spec,
        }
    }
}

impl From<k8s_openapi::api::core::v1::PodTemplateSpec> for PodTemplateSpec {
    /// Keeps labels and annotations of the metadata; other metadata fields are dropped, as the
    /// API server would prune them from a Rollout or Experiment.
    fn from(t: k8s_openapi::api::core::v1::PodTemplateSpec) -> Self {
        Self {
            metadata: t.metadata.map(|m| PodTemplateMetadata {
                labels: m.labels,
                annotations: m.annotations,
            }),
            spec: t.spec,
        }
    }
}
