//! The engine's input: everything one reconciliation of one Rollout may look at.
//!
//! A [`Snapshot`] is built by the controller from its caches. It holds the Rollout exactly as
//! read from the API server (spec, status, metadata), views of the objects the Rollout owns or
//! names, what the traffic routers last reported, and `now`. The engine never reads anything
//! else, so the same snapshot always yields the same plan.
//!
//! Views keep only what the engine needs. Fields that Argo reads mid-reconcile in Go (the result
//! of verifying a weight, the phase of an AnalysisRun it just created) are read here on the next
//! pass.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::PodTemplateSpec as K8sPodTemplateSpec;
use rollouts_api::Rollout;

/// One reconciliation's worth of input.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The Rollout as read (after resolving `workloadRef` into `spec.template`, if any).
    pub rollout: Rollout,
    /// The ReplicaSets the Rollout owns (claimed by selector and owner reference).
    pub replica_sets: Vec<ReplicaSetView>,
    /// The Services the strategy names that exist (missing ones are absent).
    pub services: Vec<ServiceView>,
    /// AnalysisRuns owned by the Rollout.
    pub analysis_runs: Vec<AnalysisRunView>,
    /// Experiments owned by the Rollout.
    pub experiments: Vec<ExperimentView>,
    /// What each configured traffic router last reported about weight verification.
    pub routers: Vec<RouterReport>,
    /// Pod-template hashes still referenced by router-managed objects (e.g. Istio
    /// DestinationRule subsets); ReplicaSets with these hashes are not scaled down.
    pub router_referenced_hashes: BTreeSet<String>,
    /// The Rollout's pods; only needed while a `restartAt` is pending (may be empty otherwise).
    pub pods: Vec<PodView>,
    /// The `workloadRef` resolution, when the Rollout uses one.
    pub workload: Option<WorkloadView>,
    /// The current time.
    pub now: Timestamp,
    /// Controller settings that influence decisions.
    pub config: EngineConfig,
}

/// Controller settings the engine needs (Argo's flags and environment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Requeue interval while a traffic weight is not yet verified (`ROLLOUT_VERIFY_RETRY_INTERVAL`).
    pub verify_retry_interval: Duration,
    /// Informer resync period; timed waits longer than this are left to the resync.
    pub resync_period: Duration,
    /// `--instance-id`, copied as a label onto AnalysisRuns and Experiments when non-empty.
    pub instance_id: String,
    /// Re-send the traffic weight and hashes to the routers on every pass, as Argo does. When
    /// false (the default), routers are only called when the weights recorded in the status
    /// change, so a converged Rollout plans no effect; the controller sets this on its periodic
    /// resync to repair drift in router objects.
    pub reassert_traffic: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            verify_retry_interval: Duration::from_secs(10),
            resync_period: Duration::from_secs(15 * 60),
            instance_id: String::new(),
            reassert_traffic: false,
        }
    }
}

/// A ReplicaSet as the engine sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaSetView {
    /// Name.
    pub name: String,
    /// UID (for owner references of pods in the restart logic).
    pub uid: String,
    /// Labels (the `rollouts-pod-template-hash` label identifies the revision).
    pub labels: BTreeMap<String, String>,
    /// Annotations (revision, revision-history, desired-replicas, scale-down-deadline,
    /// ephemeral-metadata, experiment name, ...).
    pub annotations: BTreeMap<String, String>,
    /// `spec.replicas` (Kubernetes defaults it to 1).
    pub spec_replicas: i32,
    /// `spec.minReadySeconds`.
    pub min_ready_seconds: i32,
    /// `status.replicas`.
    pub replicas: i32,
    /// `status.readyReplicas`.
    pub ready_replicas: i32,
    /// `status.availableReplicas`.
    pub available_replicas: i32,
    /// `metadata.generation`.
    pub generation: i64,
    /// `status.observedGeneration`.
    pub observed_generation: i64,
    /// `metadata.creationTimestamp`.
    pub created: Timestamp,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// The pod template (for template comparison, anti-affinity and ephemeral metadata).
    pub template: Option<K8sPodTemplateSpec>,
    /// The ReplicaSet's `ReplicaFailure` condition, if any.
    pub replica_failure: Option<ReplicaSetFailure>,
}

/// A `ReplicaFailure` condition of a ReplicaSet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaSetFailure {
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Reason.
    pub reason: String,
    /// Message.
    pub message: String,
    /// Last transition time.
    pub last_transition_time: Timestamp,
}

impl ReplicaSetView {
    /// The `rollouts-pod-template-hash` label, or `""`.
    pub fn hash(&self) -> &str {
        self.labels
            .get(rollouts_api::labels::POD_TEMPLATE_HASH)
            .map_or("", String::as_str)
    }

    /// The `rollout.argoproj.io/revision` annotation as a number (0 when missing; `None` when
    /// it does not parse).
    pub fn revision(&self) -> Option<i64> {
        match self.annotations.get(rollouts_api::labels::REVISION) {
            None => Some(0),
            Some(v) => crate::intstr::go_atoi(v),
        }
    }
}

/// A Service named by the strategy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceView {
    /// Name.
    pub name: String,
    /// `spec.selector`.
    pub selector: BTreeMap<String, String>,
    /// Annotations (`argo-rollouts.argoproj.io/managed-by-rollouts`).
    pub annotations: BTreeMap<String, String>,
}

impl ServiceView {
    /// The Rollout that manages this Service, from its annotation.
    pub fn managed_by(&self) -> Option<&str> {
        self.annotations
            .get(rollouts_api::labels::MANAGED_BY_ROLLOUTS)
            .map(String::as_str)
    }

    /// The pod-template hash in the selector, or `""`.
    pub fn selected_hash(&self) -> &str {
        self.selector
            .get(rollouts_api::labels::POD_TEMPLATE_HASH)
            .map_or("", String::as_str)
    }
}

/// An AnalysisRun owned by the Rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnalysisRunView {
    /// Name.
    pub name: String,
    /// Labels (`rollout-type`, `step-index`, `rollouts-pod-template-hash`).
    pub labels: BTreeMap<String, String>,
    /// `status.phase` (`""` when not yet set).
    pub phase: String,
    /// `status.message`.
    pub message: String,
    /// `spec.terminate`.
    pub terminate: bool,
    /// `metadata.creationTimestamp`.
    pub created: Timestamp,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// Per-metric results (only [`crate::explain()`] reads them; may be empty otherwise).
    pub metrics: Vec<MetricView>,
}

/// One metric of an AnalysisRun: its conditions and where its measurements stand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricView {
    /// Metric name.
    pub name: String,
    /// `status.metricResults[].phase` (`""` before the first measurement).
    pub phase: String,
    /// `spec.metrics[].successCondition`.
    pub success_condition: String,
    /// `spec.metrics[].failureCondition`.
    pub failure_condition: String,
    /// Measurements taken.
    pub count: i32,
    /// Failed measurements.
    pub failed: i32,
    /// Inconclusive measurements.
    pub inconclusive: i32,
    /// Errored measurements.
    pub error: i32,
    /// The last measurement: value, phase, message, when it finished.
    pub last: Option<MeasurementView>,
}

/// One measurement of a metric.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeasurementView {
    /// The measured value as the provider reported it.
    pub value: String,
    /// `Successful`, `Failed`, `Inconclusive`, `Error`, `Running`.
    pub phase: String,
    /// Message (errors).
    pub message: String,
    /// When it finished.
    pub finished: Option<Timestamp>,
}

impl AnalysisRunView {
    /// The view of an AnalysisRun object, metric results included.
    pub fn from_run(run: &rollouts_api::AnalysisRun) -> Self {
        let status = run.status.clone().unwrap_or_default();
        let metrics = run
            .spec
            .metrics
            .iter()
            .map(|m| {
                let result = status
                    .metric_results
                    .iter()
                    .flatten()
                    .find(|r| r.name == m.name);
                MetricView {
                    name: m.name.clone(),
                    phase: result.map(|r| r.phase.clone()).unwrap_or_default(),
                    success_condition: m.success_condition.clone().unwrap_or_default(),
                    failure_condition: m.failure_condition.clone().unwrap_or_default(),
                    count: result.and_then(|r| r.count).unwrap_or(0),
                    failed: result.and_then(|r| r.failed).unwrap_or(0),
                    inconclusive: result.and_then(|r| r.inconclusive).unwrap_or(0),
                    error: result.and_then(|r| r.error).unwrap_or(0),
                    last: result
                        .and_then(|r| r.measurements.as_ref())
                        .and_then(|ms| ms.last())
                        .map(|ms| MeasurementView {
                            value: ms.value.clone().unwrap_or_default(),
                            phase: ms.phase.clone(),
                            message: ms.message.clone().unwrap_or_default(),
                            finished: ms.finished_at.as_ref().map(|t| t.0),
                        }),
                }
            })
            .collect();
        Self {
            name: run.metadata.name.clone().unwrap_or_default(),
            labels: run.metadata.labels.clone().unwrap_or_default(),
            phase: status.phase.clone(),
            message: status.message.clone().unwrap_or_default(),
            terminate: run.spec.terminate == Some(true),
            created: run
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0),
            deleting: run.metadata.deletion_timestamp.is_some(),
            metrics,
        }
    }
}

/// An Experiment owned by the Rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExperimentView {
    /// Name.
    pub name: String,
    /// Labels (`rollouts-pod-template-hash`).
    pub labels: BTreeMap<String, String>,
    /// `status.phase` (`""` when not yet set).
    pub phase: String,
    /// `status.message`.
    pub message: String,
    /// `spec.terminate`.
    pub terminate: bool,
    /// `metadata.creationTimestamp`.
    pub created: Timestamp,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// Per-template status: (template name, service name, pod-template hash).
    pub templates: Vec<ExperimentTemplateView>,
}

/// One template's status within an Experiment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExperimentTemplateView {
    /// Template name.
    pub name: String,
    /// The Service created for it (`status.templateStatuses[].serviceName`).
    pub service_name: String,
    /// Its pod-template hash.
    pub pod_template_hash: String,
}

/// What a traffic router last reported when asked to verify a weight.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouterReport {
    /// Router key (`istio`, `nginx`, `alb`, ..., or a plugin name).
    pub router: String,
    /// Whether this router verifies weights at all (ALB with target-group verification, some
    /// plugins). A router without a report is taken as not verifying.
    pub verifies_weight: bool,
    /// The last verification: the canary weight it was about and whether it was verified.
    pub last: Option<WeightVerification>,
}

/// Result of one weight verification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeightVerification {
    /// The canary weight verified.
    pub weight: i32,
    /// Whether the router confirmed it.
    pub verified: bool,
}

/// A pod of the Rollout (for `restartAt`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodView {
    /// Name.
    pub name: String,
    /// UID of the owning ReplicaSet.
    pub owner_uid: String,
    /// `metadata.creationTimestamp`.
    pub created: Timestamp,
    /// Whether the pod is available (ready for `minReadySeconds`).
    pub available: bool,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

/// The state of a `workloadRef` resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkloadView {
    /// The referenced workload was found and its template (and, when the Rollout has none, its
    /// selector) copied into the Rollout; `workloadRef` stays set. The template is then
    /// validated like an inline one.
    Resolved {
        /// The workload's `metadata.generation`.
        generation: i64,
    },
    /// The reference could not be resolved; the message names the problem.
    Error(String),
}
