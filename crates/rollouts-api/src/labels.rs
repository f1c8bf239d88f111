//! Well-known label and annotation keys that Argo Rollouts writes and reads.
//!
//! They are part of the compatibility contract: tools and users select objects with them, and
//! a controller taking over from Argo must find what Argo left behind.

/// Label on ReplicaSets, pods, Services' selectors, AnalysisRuns, Experiments and Istio
/// DestinationRule subsets: the pod template hash that identifies a revision.
pub const POD_TEMPLATE_HASH: &str = "rollouts-pod-template-hash";

/// Annotation on Rollouts, ReplicaSets, AnalysisRuns and Experiments: the revision number.
pub const REVISION: &str = "rollout.argoproj.io/revision";

/// Annotation on a reused ReplicaSet: comma-separated list of its earlier revisions.
pub const REVISION_HISTORY: &str = "rollout.argoproj.io/revision-history";

/// Annotation on ReplicaSets: `spec.replicas` of the Rollout when the set was last scaled.
pub const DESIRED_REPLICAS: &str = "rollout.argoproj.io/desired-replicas";

/// Annotation on Rollouts with a `workloadRef`: generation of the referenced workload.
pub const WORKLOAD_GENERATION: &str = "rollout.argoproj.io/workload-generation";

/// Annotation on ReplicaSets: JSON of the ephemeral pod metadata injected into their pods.
pub const EPHEMERAL_METADATA: &str = "rollout.argoproj.io/ephemeral-metadata";

/// Annotation on ReplicaSets: RFC 3339 UTC time after which the set may be scaled to zero.
pub const SCALE_DOWN_DEADLINE: &str = "scale-down-deadline";

/// Annotation on Services, Ingresses, DestinationRules and virtual nodes: name of the Rollout
/// that manages the object.
pub const MANAGED_BY_ROLLOUTS: &str = "argo-rollouts.argoproj.io/managed-by-rollouts";

/// Annotation on ReplicaSets: restart time of the Rollout that their pods have seen.
pub const RESTARTED_AFTER: &str = "argo-rollouts.argoproj.io/restarted-after";

/// Label on any Argo object: the controller instance that handles it.
pub const CONTROLLER_INSTANCE_ID: &str = "argo-rollouts.argoproj.io/controller-instance-id";

/// Label on AnalysisRuns: the role of the run (see [`rollout_type`]).
pub const ROLLOUT_TYPE: &str = "rollout-type";

/// Label on step AnalysisRuns: index of the canary step.
pub const STEP_INDEX: &str = "step-index";

/// Values of the [`ROLLOUT_TYPE`] label.
pub mod rollout_type {
    /// Created by a canary analysis step.
    pub const STEP: &str = "Step";
    /// Background analysis of a canary.
    pub const BACKGROUND: &str = "Background";
    /// Blue-green pre-promotion analysis.
    pub const PRE_PROMOTION: &str = "PrePromotion";
    /// Blue-green post-promotion analysis.
    pub const POST_PROMOTION: &str = "PostPromotion";
}

/// Annotation on an Experiment's ReplicaSets: name of the Experiment.
pub const EXPERIMENT_NAME: &str = "experiment.argoproj.io/name";

/// Annotation on an Experiment's ReplicaSets: name of the experiment template.
pub const EXPERIMENT_TEMPLATE_NAME: &str = "experiment.argoproj.io/template-name";

/// Label on Jobs of the job metric provider: UID of the AnalysisRun.
pub const ANALYSIS_RUN_UID: &str = "analysisrun.argoproj.io/uid";

/// Annotation on Jobs of the job metric provider: name of the AnalysisRun.
pub const ANALYSIS_RUN_NAME: &str = "analysisrun.argoproj.io/name";

/// Annotation on Jobs of the job metric provider: namespace of the AnalysisRun.
pub const ANALYSIS_RUN_NAMESPACE: &str = "analysisrun.argoproj.io/namespace";

/// Annotation on Jobs of the job metric provider: name of the metric.
pub const ANALYSIS_RUN_METRIC_NAME: &str = "analysisrun.argoproj.io/metric-name";

/// Annotation on Rollouts: state of the notifications engine (not copied to ReplicaSets).
pub const NOTIFIED: &str = "notified.notifications.argoproj.io";

/// Prefix of notification subscription annotations:
/// `notifications.argoproj.io/subscribe.<trigger>.<service>`.
pub const NOTIFICATION_SUBSCRIBE_PREFIX: &str = "notifications.argoproj.io/subscribe.";

/// Label on a Secret holding the kubeconfig of an Istio primary cluster (value `true`).
pub const ISTIO_PRIMARY_CLUSTER: &str = "istio.argoproj.io/primary-cluster";

/// Annotation that client-side `kubectl apply` writes; never copied to ReplicaSets.
pub const LAST_APPLIED_CONFIGURATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
