//! The engine's output: what to do, what the status should be, what to tell, when to look again.
//!
//! A [`Plan`] is the result of one reconciliation. The controller executes its [`Effect`]s in
//! order and stops at the first error (the next reconciliation plans again from fresh caches);
//! if every effect succeeded it writes [`Plan::status`] when it differs from the Rollout's
//! current status, records [`Plan::events`], and requeues after [`Plan::requeue_after`].
//!
//! Every effect is idempotent: it states the desired end state of one object ("ReplicaSet `x`
//! has 3 replicas"), never a delta, so executing a plan twice is the same as executing it once.
//! Where Go returns early in the middle of a reconcile, the plan simply ends.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Affinity;
use rollouts_api::{
    Argument, Experiment, PodTemplateMetadata, RolloutAnalysis, RolloutStatus, SetHeaderRoute,
    SetMirrorRoute, WeightDestination,
};

/// The result of planning one reconciliation.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Effects to execute, in order.
    pub effects: Vec<Effect>,
    /// The complete desired status of the Rollout.
    pub status: RolloutStatus,
    /// Kubernetes Events to record on the Rollout.
    pub events: Vec<Event>,
    /// When to reconcile again at the latest (pause end, scale-down deadline, progress
    /// deadline, verification retry, restart check). `None`: only on the next change.
    pub requeue_after: Option<Duration>,
}

impl Plan {
    /// Whether the plan changes nothing in the cluster (the status may still change).
    pub fn is_noop(&self) -> bool {
        self.effects.is_empty()
    }
}

/// One idempotent change to the cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Create a ReplicaSet (complete object: name, labels, annotations, selector, template with
    /// the hash label, injected metadata and anti-affinity, controller owner reference).
    CreateReplicaSet {
        /// The object to create.
        replica_set: Box<ReplicaSet>,
        /// If the name is already taken by a ReplicaSet that is not this revision of this
        /// Rollout, write this value to `status.collisionCount` (Argo's hash-collision
        /// handling) and requeue.
        collision_count_on_conflict: i32,
    },
    /// Update fields of an existing ReplicaSet.
    UpdateReplicaSet {
        /// ReplicaSet name.
        name: String,
        /// The changes.
        update: ReplicaSetUpdate,
    },
    /// Set `spec.replicas` of a ReplicaSet and its `desired-replicas` annotation.
    ScaleReplicaSet {
        /// ReplicaSet name.
        name: String,
        /// New `spec.replicas`.
        replicas: i32,
        /// Value of the `rollout.argoproj.io/desired-replicas` annotation (the Rollout's
        /// `spec.replicas`).
        desired_replicas: i32,
        /// Also remove the `scale-down-deadline` annotation.
        remove_scale_down_deadline: bool,
    },
    /// Delete a ReplicaSet (revision history).
    DeleteReplicaSet {
        /// ReplicaSet name.
        name: String,
    },
    /// Point a Service at a revision: set `spec.selector.rollouts-pod-template-hash`.
    SwitchServiceSelector {
        /// Service name.
        service: String,
        /// The pod-template hash to select.
        hash: String,
        /// Also set the `managed-by-rollouts` annotation to this Rollout name (first touch).
        managed_by: Option<String>,
    },
    /// Update the Rollout object itself (not its status).
    UpdateRollout {
        /// Set `spec.replicas` (Argo defaults a missing value to 1 for the HPA).
        replicas: Option<i32>,
        /// Annotations to set (`rollout.argoproj.io/revision`).
        annotations: BTreeMap<String, String>,
    },
    /// A call on one traffic router.
    Traffic {
        /// Router key (`istio`, `nginx`, `alb`, `smi`, `ambassador`, `appMesh`, `traefik`,
        /// `apisix`, or a plugin name).
        router: String,
        /// The call.
        op: TrafficOp,
    },
    /// Create an AnalysisRun from the Rollout's analysis templates.
    CreateAnalysisRun(Box<AnalysisRunRequest>),
    /// Set `spec.terminate: true` on an AnalysisRun.
    TerminateAnalysisRun {
        /// Name.
        name: String,
    },
    /// Delete an AnalysisRun (history limits, revision history).
    DeleteAnalysisRun {
        /// Name.
        name: String,
    },
    /// Create an Experiment (complete object).
    CreateExperiment(Box<Experiment>),
    /// Set `spec.terminate: true` on an Experiment.
    TerminateExperiment {
        /// Name.
        name: String,
    },
    /// Delete an Experiment.
    DeleteExperiment {
        /// Name.
        name: String,
    },
    /// Evict a pod through the Eviction API (`restartAt`). A 429 (disruption budget) is not
    /// an error: the pod is retried on a later pass.
    EvictPod {
        /// Pod name.
        name: String,
    },
    /// Bring the pods of a ReplicaSet in line with its injected (ephemeral) metadata: remove
    /// the keys of `previous` that `desired` no longer has, then set `desired`.
    SyncPodMetadata {
        /// The ReplicaSet whose pods to update.
        replica_set: String,
        /// Metadata injected before.
        previous: Option<PodTemplateMetadata>,
        /// Metadata to inject now (`None`: remove all injected metadata).
        desired: Option<PodTemplateMetadata>,
    },
    /// Scale the workload a `workloadRef` points at (scaleDown `onsuccess`/`progressively`).
    ScaleWorkload {
        /// `apiVersion` of the workload.
        api_version: String,
        /// Kind of the workload.
        kind: String,
        /// Name of the workload.
        name: String,
        /// New replica count.
        replicas: i32,
    },
}

/// Changes to an existing ReplicaSet; `None` fields are left alone.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaSetUpdate {
    /// Annotations to set.
    pub set_annotations: BTreeMap<String, String>,
    /// Annotation keys to remove.
    pub remove_annotations: Vec<String>,
    /// New `spec.minReadySeconds`.
    pub min_ready_seconds: Option<i32>,
    /// New `spec.template.spec.affinity` (the inner `None` removes it).
    pub affinity: Option<Option<Affinity>>,
    /// New `spec.template.metadata` labels and annotations (ephemeral metadata).
    pub template_metadata: Option<PodTemplateMetadata>,
}

/// A call on a traffic router (the `TrafficRouter` plugin interface).
#[derive(Clone, Debug, PartialEq)]
pub enum TrafficOp {
    /// Point the router's canary and stable destinations at these revisions.
    UpdateHash {
        /// Canary pod-template hash.
        canary_hash: String,
        /// Stable pod-template hash.
        stable_hash: String,
        /// Extra destinations (experiment templates).
        additional: Vec<WeightDestination>,
    },
    /// Send `weight` to the canary.
    SetWeight {
        /// Canary weight.
        weight: i32,
        /// Extra destinations (experiment templates).
        additional: Vec<WeightDestination>,
    },
    /// Add or update a managed header route.
    SetHeaderRoute(SetHeaderRoute),
    /// Add or update a managed mirror route.
    SetMirrorRoute(SetMirrorRoute),
    /// Remove every managed route.
    RemoveManagedRoutes,
    /// Ask the router whether `weight` is in effect; the answer comes back in the next
    /// snapshot's [`crate::RouterReport`].
    VerifyWeight {
        /// Canary weight.
        weight: i32,
        /// Extra destinations.
        additional: Vec<WeightDestination>,
    },
}

/// The role of an AnalysisRun, recorded in its `rollout-type` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnalysisRunKind {
    /// An analysis step, with its step index.
    Step(i32),
    /// Background analysis (`canary.analysis`).
    Background,
    /// Blue-green pre-promotion analysis.
    PrePromotion,
    /// Blue-green post-promotion analysis.
    PostPromotion,
}

/// Everything needed to build an AnalysisRun: the controller resolves the templates it names
/// and merges them (Argo's `NewAnalysisRunFromTemplates`).
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisRunRequest {
    /// Name (`<rollout>-<hash>-<revision>[-<step>|-pre|-post]`); on an `AlreadyExists` for a
    /// different or finished run, append `.1`, `.2`, ... as Argo does.
    pub name: String,
    /// Role of the run.
    pub kind: AnalysisRunKind,
    /// Labels of the run.
    pub labels: BTreeMap<String, String>,
    /// Annotations of the run (revision and `analysisRunMetadata`).
    pub annotations: BTreeMap<String, String>,
    /// The analysis as written in the Rollout (templates, dry-run, retention).
    pub analysis: RolloutAnalysis,
    /// Arguments resolved from the Rollout (values and `podTemplateHashValue`; `fieldRef`
    /// arguments are resolved against the Rollout object).
    pub args: Vec<Argument>,
    /// Name and UID of the owning Rollout (controller owner reference).
    pub owner_name: String,
    /// UID of the owning Rollout.
    pub owner_uid: String,
}

/// Kubernetes Event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

impl EventType {
    /// The string Kubernetes uses.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// A Kubernetes Event to record on the Rollout (Argo's reasons and messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub type_: EventType,
    /// Reason, e.g. `RolloutStepCompleted`.
    pub reason: String,
    /// Message, e.g. `Rollout step 1/3 completed (setWeight: 20)`.
    pub message: String,
}

impl Event {
    /// A `Normal` event.
    pub fn normal(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            type_: EventType::Normal,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A `Warning` event.
    pub fn warning(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            type_: EventType::Warning,
            reason: reason.into(),
            message: message.into(),
        }
    }
}
