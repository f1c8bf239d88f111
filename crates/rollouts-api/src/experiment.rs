//! The `Experiment` kind: ReplicaSets run side by side for a while, with analyses.
//!
//! Struct fields are declared in the order of Argo's Go structs.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    analysis::{Argument, DryRun, MeasurementRetention},
    rollout::AnalysisRunMetadata,
    template::PodTemplateSpec,
};

/// Desired state of an Experiment.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "Experiment",
    namespaced,
    status = "ExperimentStatus",
    shortname = "exp",
    derive = "Default",
    derive = "PartialEq",
    doc = "An Experiment runs one or more ReplicaSets for a limited time, with optional analyses, and records the outcome.",
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.phase",
        description = "Experiment status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time since resource was created"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentSpec {
    /// The ReplicaSets to run.
    pub templates: Vec<TemplateSpec>,
    /// How long to run (Go duration); empty runs until the analyses end or it is terminated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Seconds without progress after which the experiment fails (default 600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,
    /// Stops the experiment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminate: Option<bool>,
    /// Analyses to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analyses: Option<Vec<ExperimentAnalysisTemplateRef>>,
    /// Seconds before the ReplicaSets are scaled down once the experiment ends (default 30).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
    /// Metrics whose failures do not fail the analyses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Vec<DryRun>>,
    /// How many measurements to keep per metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
    /// Metadata of the AnalysisRuns the experiment creates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis_run_metadata: Option<AnalysisRunMetadata>,
}

/// A ReplicaSet of an experiment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateSpec {
    /// Name of the template, unique within the experiment.
    pub name: String,
    /// Number of pods (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Seconds a new pod must be ready to count as available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    /// Label selector of the pods; must not select everything.
    pub selector: LabelSelector,
    /// Template of the pods.
    pub template: PodTemplateSpec,
    /// Creates a Service for these pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<TemplateService>,
}

/// A Service created for an experiment's template.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateService {
    /// Name of the Service (default: generated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Values of [`TemplateStatus::status`].
pub mod template_status {
    /// Pods are being created.
    pub const PROGRESSING: &str = "Progressing";
    /// All pods are available.
    pub const RUNNING: &str = "Running";
    /// Finished successfully.
    pub const SUCCESSFUL: &str = "Successful";
    /// Failed.
    pub const FAILED: &str = "Failed";
    /// Could not run.
    pub const ERROR: &str = "Error";

    /// Whether a template status is final.
    pub fn is_completed(status: &str) -> bool {
        matches!(status, SUCCESSFUL | FAILED | ERROR)
    }
}

/// State of one experiment template.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateStatus {
    /// Name of the template.
    pub name: String,
    /// Pods.
    pub replicas: i32,
    /// Pods of the current template.
    pub updated_replicas: i32,
    /// Ready pods.
    pub ready_replicas: i32,
    /// Available pods.
    pub available_replicas: i32,
    /// Counts pod template hash collisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
    /// `Progressing`, `Running`, `Successful`, `Failed` or `Error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Explains the state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the state last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Name of the Service created for the template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Pod template hash of the template's ReplicaSet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_template_hash: Option<String>,
}

/// Observed state of an Experiment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentStatus {
    /// Phase: `Pending`, `Running`, `Successful`, `Failed`, `Error` or `Inconclusive`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Explains the phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// State of each template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_statuses: Option<Vec<TemplateStatus>>,
    /// When all templates became available (the duration counts from here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_at: Option<Time>,
    /// Conditions of the experiment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<ExperimentCondition>>,
    /// State of each analysis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis_runs: Option<Vec<ExperimentAnalysisRunStatus>>,
}

/// Values of [`ExperimentCondition::type_`].
pub mod experiment_condition_type {
    /// The spec is invalid.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The experiment finished.
    pub const COMPLETED: &str = "Completed";
    /// The experiment progresses (or timed out).
    pub const PROGRESSING: &str = "Progressing";
    /// All templates run.
    pub const RUNNING: &str = "Running";
    /// Pods could not be created.
    pub const REPLICA_FAILURE: &str = "ReplicaFailure";
}

/// A condition of an Experiment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentCondition {
    /// `Progressing`, `Running`, `Completed`, `ReplicaFailure` or `InvalidSpec`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Last time the condition was updated.
    pub last_update_time: Time,
    /// Last time the status changed.
    pub last_transition_time: Time,
    /// Machine-readable reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

/// An analysis run by an experiment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentAnalysisTemplateRef {
    /// Name of the analysis within the experiment.
    pub name: String,
    /// The template to run.
    pub template_name: String,
    /// True when the template is a ClusterAnalysisTemplate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_scope: Option<bool>,
    /// Arguments of the template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Argument>>,
    /// The experiment does not finish before this analysis does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_for_completion: Option<bool>,
}

/// State of one analysis of an experiment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentAnalysisRunStatus {
    /// Name of the analysis.
    pub name: String,
    /// Name of its AnalysisRun.
    pub analysis_run: String,
    /// Phase of the AnalysisRun.
    pub phase: String,
    /// Its message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
