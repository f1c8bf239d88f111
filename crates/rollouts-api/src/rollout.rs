//! The `Rollout` kind: spec (strategies, canary steps, traffic routing) and status.
//!
//! Struct fields are declared in the order of Argo's Go structs, so that `serde_json` writes
//! keys in the same order as Go's `encoding/json` (see [`CanaryStep`]).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::{
    apis::meta::v1::{LabelSelector, Time},
    util::intstr::IntOrString,
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    analysis::{AnalysisTemplateRef, DryRun, MeasurementRetention},
    schema,
    template::{PodTemplateMetadata, PodTemplateSpec},
};

/// Desired state of a Rollout: the pods to run and how to move from one revision to the next.
// clippy mistakes the repeated `type_` of the printer columns for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "Rollout",
    namespaced,
    status = "RolloutStatus",
    shortname = "ro",
    derive = "Default",
    derive = "PartialEq",
    doc = "A Rollout runs pods like a Deployment and replaces them with a canary or blue-green strategy.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.HPAReplicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Desired",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "Number of desired pods"
    ),
    printcolumn(
        name = "Current",
        type_ = "integer",
        json_path = ".status.replicas",
        description = "Total number of non-terminated pods targeted by this rollout"
    ),
    printcolumn(
        name = "Up-to-date",
        type_ = "integer",
        json_path = ".status.updatedReplicas",
        description = "Total number of non-terminated pods targeted by this rollout that have the desired template spec"
    ),
    printcolumn(
        name = "Available",
        type_ = "integer",
        json_path = ".status.availableReplicas",
        description = "Total number of available pods (ready for at least minReadySeconds) targeted by this rollout"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time since resource was created"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Number of pods wanted. The controller writes 1 back when it is unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Label selector of the pods. Required unless `workloadRef` is set; cannot change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Template of the pods. Must be empty when `workloadRef` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplateSpec>,
    /// Takes the pod template (and selector) from another workload instead of `template`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_ref: Option<ObjectRef>,
    /// Seconds a new pod must be ready, with no container crashing, to count as available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    /// Window within which going back to an older revision skips the steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_window: Option<RollbackWindowSpec>,
    /// How a new revision replaces the current one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RolloutStrategy>,
    /// Number of old ReplicaSets kept for rollback (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i32>,
    /// Pauses the rollout: no scaling and no service switching while true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Seconds without progress after which the rollout is reported as failed (default 600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,
    /// Aborts the update when the progress deadline is exceeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_deadline_abort: Option<bool>,
    /// Pods created before this time are restarted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_at: Option<Time>,
    /// How many finished AnalysisRuns and Experiments to keep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisRunStrategy>,
}

/// A reference to the workload whose pod template a Rollout uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// API version of the workload, e.g. `apps/v1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the workload: `Deployment`, `ReplicaSet` or `PodTemplate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the workload, in the Rollout's namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What to do with a referenced Deployment: `never`, `onsuccess` or `progressively`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<String>,
}

/// Values of [`ObjectRef::scale_down`].
pub mod scale_down {
    /// Never scale the referenced Deployment down (the default).
    pub const NEVER: &str = "never";
    /// Scale the referenced Deployment to zero once the Rollout is healthy.
    pub const ON_SUCCESS: &str = "onsuccess";
    /// Scale the referenced Deployment down as the Rollout's pods become available.
    pub const PROGRESSIVELY: &str = "progressively";
}

/// The update strategy: exactly one of `blueGreen` or `canary`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    /// Run the new revision next to the old one and switch a service over at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenStrategy>,
    /// Move to the new revision in steps, shifting replicas or traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStrategy>,
}

/// Blue-green: an active and an optional preview service, switched on promotion.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStrategy {
    /// Service that sends production traffic; switched to the new revision on promotion.
    pub active_service: String,
    /// Service that points at the new revision before promotion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_service: Option<String>,
    /// Replicas of the new revision before promotion (default: all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_replica_count: Option<i32>,
    /// Promote without waiting for a manual promotion (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_promotion_enabled: Option<bool>,
    /// Promote automatically this many seconds after the pause starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_promotion_seconds: Option<i32>,
    /// Pods that may be unavailable during a restart (number or percent, default 25%).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// Seconds before the old revision is scaled down after the switch (default 30).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
    /// Old ReplicaSets that may stay scaled up while their delay runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_revision_limit: Option<i32>,
    /// Analysis that must pass before the active service is switched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_promotion_analysis: Option<RolloutAnalysis>,
    /// Spreads new pods away from the nodes of the old revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anti_affinity: Option<AntiAffinity>,
    /// Analysis run after the switch; a failure switches back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis: Option<RolloutAnalysis>,
    /// Metadata added to pods while they are the preview.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_metadata: Option<PodTemplateMetadata>,
    /// Metadata added to pods while they are active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_metadata: Option<PodTemplateMetadata>,
    /// Seconds before the preview is scaled down after an abort (default 30; 0 keeps it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_scale_down_delay_seconds: Option<i32>,
}

/// Pod anti-affinity against the previous revision: set exactly one of the two.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AntiAffinity {
    /// A soft rule with the given weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_during_scheduling_ignored_during_execution:
        Option<PreferredDuringSchedulingIgnoredDuringExecution>,
    /// A hard rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_during_scheduling_ignored_during_execution:
        Option<RequiredDuringSchedulingIgnoredDuringExecution>,
}

/// Soft anti-affinity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreferredDuringSchedulingIgnoredDuringExecution {
    /// Weight of the rule, 1 to 100.
    pub weight: i32,
}

/// Hard anti-affinity (no settings).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RequiredDuringSchedulingIgnoredDuringExecution {}

/// When a canary step counts as done: enough available pods, as a percent or a count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaProgressThreshold {
    /// `Percent` or `Pods`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The threshold value.
    pub value: i32,
}

/// Values of [`ReplicaProgressThreshold::type_`].
pub mod progress_type {
    /// The value is a percentage of the desired replicas.
    pub const PERCENT: &str = "Percent";
    /// The value is a number of pods.
    pub const PODS: &str = "Pods";
}

/// Canary: move to the new revision through a list of steps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStrategy {
    /// Service that selects only the canary pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_service: Option<String>,
    /// Service that selects only the stable pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_service: Option<String>,
    /// The steps, run in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<CanaryStep>>,
    /// Shift traffic with a router instead of by replica counts alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<RolloutTrafficRouting>,
    /// Pods that may be unavailable during the update (number or percent, default 25%).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// Pods that may exist above the desired count (number or percent, default 25%).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,
    /// Analysis that runs in the background during the steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<RolloutAnalysisBackground>,
    /// Spreads new pods away from the nodes of the old revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anti_affinity: Option<AntiAffinity>,
    /// Metadata added to canary pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_metadata: Option<PodTemplateMetadata>,
    /// Metadata added to stable pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_metadata: Option<PodTemplateMetadata>,
    /// With traffic routing: seconds before the old revision is scaled down (default 30).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
    /// Old ReplicaSets that may stay scaled up while their delay runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_revision_limit: Option<i32>,
    /// With traffic routing: seconds before the canary is scaled down after an abort.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_scale_down_delay_seconds: Option<i32>,
    /// With traffic routing: scale the stable pods down as traffic moves to the canary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_stable_scale: Option<bool>,
    /// Alternate two services between stable and canary instead of changing selectors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_pong: Option<PingPongSpec>,
    /// With traffic routing: the least pods a non-empty stable or canary set may have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_pods_per_replica_set: Option<i32>,
    /// How many canary pods must be available for a step to complete (default 100%).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_progress_threshold: Option<ReplicaProgressThreshold>,
}

/// The two services of the ping-pong mode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PingPongSpec {
    /// The "ping" service.
    pub ping_service: String,
    /// The "pong" service.
    pub pong_service: String,
}

/// How many finished AnalysisRuns and Experiments of a Rollout to keep.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStrategy {
    /// Successful runs to keep (default 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub successful_run_history_limit: Option<i32>,
    /// Failed, errored or inconclusive runs to keep (default 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsuccessful_run_history_limit: Option<i32>,
}

/// AWS Application Load Balancer routing through an Ingress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlbTrafficRouting {
    /// The Ingress to change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<String>,
    /// Service port the Ingress routes to.
    pub service_port: i32,
    /// Service named in the Ingress action (default: the stable service).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_service: Option<String>,
    /// Annotation prefix of the ALB controller (default `alb.ingress.kubernetes.io`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation_prefix: Option<String>,
    /// Target group stickiness.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stickiness_config: Option<StickinessConfig>,
    /// Several Ingresses to change, instead of `ingress`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingresses: Option<Vec<String>>,
}

/// ALB target group stickiness.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StickinessConfig {
    /// Turns stickiness on.
    pub enabled: bool,
    /// How long a client sticks to a target group, in seconds.
    pub duration_seconds: i64,
}

/// Traffic routers: set one (or several plugins) to shift traffic by weight.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutTrafficRouting {
    /// Istio VirtualService (and DestinationRule) routing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istio: Option<IstioTrafficRouting>,
    /// NGINX Ingress canary routing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nginx: Option<NginxTrafficRouting>,
    /// AWS ALB Ingress routing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alb: Option<AlbTrafficRouting>,
    /// SMI TrafficSplit routing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smi: Option<SmiTrafficRouting>,
    /// Ambassador Mapping routing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ambassador: Option<AmbassadorTrafficRouting>,
    /// AWS App Mesh routing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_mesh: Option<AppMeshTrafficRouting>,
    /// Traefik weighted service routing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traefik: Option<TraefikTrafficRouting>,
    /// Routes the controller creates and removes (header and mirror routes), in priority order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_routes: Option<Vec<ManagedRoutes>>,
    /// Apache APISIX route routing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apisix: Option<ApisixTrafficRouting>,
    /// Router plugins: plugin name to its configuration.
    // `default` tells schemars the field is optional despite the custom schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::preserve_unknown_object")]
    pub plugins: Option<BTreeMap<String, serde_json::Value>>,
    /// The total weight traffic is split into (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_traffic_weight: Option<i32>,
}

/// A route managed by the controller.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedRoutes {
    /// Name of the route, as used by `setHeaderRoute` and `setMirrorRoute` steps.
    pub name: String,
}

/// Traefik routing through a weighted TraefikService.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TraefikTrafficRouting {
    /// Name of the weighted TraefikService.
    pub weighted_traefik_service_name: String,
}

/// APISIX routing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApisixTrafficRouting {
    /// The ApisixRoute to change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<ApisixRoute>,
}

/// An ApisixRoute and the rules in it to change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApisixRoute {
    /// Name of the ApisixRoute.
    pub name: String,
    /// Names of the HTTP rules to change (default: the only one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<String>>,
}

/// Ambassador routing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AmbassadorTrafficRouting {
    /// Mappings that get a weighted canary copy.
    pub mappings: Vec<String>,
}

/// SMI routing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmiTrafficRouting {
    /// Root service of the TrafficSplit (default: the stable service).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_service: Option<String>,
    /// Name of the TrafficSplit (default: the Rollout's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_split_name: Option<String>,
}

/// NGINX Ingress routing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NginxTrafficRouting {
    /// Annotation prefix of the ingress controller (default `nginx.ingress.kubernetes.io`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation_prefix: Option<String>,
    /// The stable Ingress; a canary copy of it is managed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_ingress: Option<String>,
    /// Extra canary annotations, written with the annotation prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_ingress_annotations: Option<BTreeMap<String, String>>,
    /// Several stable Ingresses, instead of `stableIngress`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_ingresses: Option<Vec<String>>,
    /// Annotations set on the canary Ingress as given (full keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_ingress_annotations: Option<BTreeMap<String, String>>,
}

/// Istio routing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioTrafficRouting {
    /// The VirtualService to change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_service: Option<IstioVirtualService>,
    /// Route by subsets of this DestinationRule instead of by services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_rule: Option<IstioDestinationRule>,
    /// Several VirtualServices, instead of `virtualService`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_services: Option<Vec<IstioVirtualService>>,
}

/// An Istio VirtualService and the routes in it to change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioVirtualService {
    /// Name of the VirtualService (`name` or `namespace/name`).
    pub name: String,
    /// Names of the HTTP routes to change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<String>>,
    /// TLS routes to change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_routes: Option<Vec<TlsRoute>>,
    /// TCP routes to change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_routes: Option<Vec<TcpRoute>>,
}

/// A TLS route, identified by port and SNI hosts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsRoute {
    /// Port of the route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// SNI hosts of the route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni_hosts: Option<Vec<String>>,
}

/// A TCP route, identified by port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TcpRoute {
    /// Port of the route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
}

/// An Istio DestinationRule whose subsets select stable and canary pods.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioDestinationRule {
    /// Name of the DestinationRule.
    pub name: String,
    /// Subset for the canary pods.
    pub canary_subset_name: String,
    /// Subset for the stable pods.
    pub stable_subset_name: String,
    /// Further subsets (e.g. of experiments) to label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_subset_names: Option<Vec<String>>,
}

/// AWS App Mesh routing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMeshTrafficRouting {
    /// The App Mesh virtual service whose router is changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_service: Option<AppMeshVirtualService>,
    /// The virtual nodes of the canary and stable pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_node_group: Option<AppMeshVirtualNodeGroup>,
}

/// An App Mesh virtual service and routes of its router.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMeshVirtualService {
    /// Name of the virtual service.
    pub name: String,
    /// Routes to change (default: all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<String>>,
}

/// The canary and stable App Mesh virtual nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMeshVirtualNodeGroup {
    /// Virtual node of the canary pods.
    pub canary_virtual_node_ref: AppMeshVirtualNodeReference,
    /// Virtual node of the stable pods.
    pub stable_virtual_node_ref: AppMeshVirtualNodeReference,
}

/// A reference to an App Mesh virtual node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMeshVirtualNodeReference {
    /// Name of the virtual node.
    pub name: String,
}

/// An experiment step: run extra ReplicaSets (and analyses) for a while.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentStep {
    /// ReplicaSets to run, each from the canary or the stable pod template.
    pub templates: Vec<RolloutExperimentTemplate>,
    /// How long the experiment runs (Go duration or seconds); empty runs until its analyses end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Analyses run during the experiment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analyses: Option<Vec<RolloutExperimentStepAnalysisTemplateRef>>,
    /// Metrics whose failures do not fail the analysis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Vec<DryRun>>,
    /// Metadata of the AnalysisRuns the experiment creates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis_run_metadata: Option<AnalysisRunMetadata>,
    /// Seconds before the experiment's ReplicaSets are scaled down once it ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
}

/// An analysis run by an experiment step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentStepAnalysisTemplateRef {
    /// Name of the analysis within the experiment.
    pub name: String,
    /// The template to run.
    pub template_name: String,
    /// True when the template is a ClusterAnalysisTemplate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_scope: Option<bool>,
    /// Arguments of the template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<AnalysisRunArgument>>,
    /// The experiment does not finish before this analysis does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_for_completion: Option<bool>,
}

/// A ReplicaSet run by an experiment step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentTemplate {
    /// Name of the template within the experiment.
    pub name: String,
    /// Which pod template to copy: `canary` or `stable`.
    pub spec_ref: String,
    /// Number of pods (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Metadata added to the pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PodTemplateMetadata>,
    /// Selector of the pods (default: the Rollout's plus a hash).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Traffic weight sent to these pods (needs traffic routing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// Creates a Service for these pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<crate::experiment::TemplateService>,
}

/// Values of [`RolloutExperimentTemplate::spec_ref`].
pub mod spec_ref {
    /// Copy the canary (new) pod template.
    pub const CANARY: &str = "canary";
    /// Copy the stable pod template.
    pub const STABLE: &str = "stable";
}

/// Labels and annotations for AnalysisRuns the controller creates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunMetadata {
    /// Labels to set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations to set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// One canary step. Exactly one field is set.
///
/// The fields are declared in the order of Argo's Go struct (and so are those of every type a
/// step contains), so `serde_json::to_vec` of a step list gives the bytes Go's `json.Marshal`
/// gives for steps as users write them. Argo hashes those bytes (FNV) into
/// `status.currentStepHash`. Go differs where it writes or drops values by its own rules:
/// explicit zero values of `omitempty` fields (`matchTrafficWeight: false`, `dryRun: []`) are
/// dropped by Go and kept here; struct-valued fields are always written by Go (an experiment
/// step's `analysisRunMetadata`, its templates' `metadata`, as `{}`); a `LabelSelector` is
/// written `matchLabels` first by Go and `matchExpressions` first by k8s-openapi. The
/// controller therefore hashes with the `rollouts-hash` crate, which encodes exactly as Go.
///
/// Unknown keys are rejected: in a step, a key we do not know is a typo (`setWieght`), and an
/// error naming it helps more than an empty step. (The API server prunes such keys from stored
/// objects, so only manifests read from files or CRDs newer than ours can carry one.)
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(description = "One canary step: set exactly one field.")]
pub struct CanaryStep {
    /// Send this percentage of traffic (or of replicas, without routing) to the canary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_weight: Option<i32>,
    /// Pause, for a duration or until promoted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<RolloutPause>,
    /// Run an experiment and wait for it to succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment: Option<RolloutExperimentStep>,
    /// Run an analysis and wait for it to succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<RolloutAnalysis>,
    /// Scale the canary independently of its traffic weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_canary_scale: Option<SetCanaryScale>,
    /// Route requests with matching headers to the canary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_header_route: Option<SetHeaderRoute>,
    /// Mirror matching requests to the canary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_mirror_route: Option<SetMirrorRoute>,
    /// Run a step plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginStep>,
}

/// A step carried out by a step plugin.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginStep {
    /// Name of the plugin.
    pub name: String,
    /// Configuration passed to the plugin.
    // `default` tells schemars the field is optional despite the custom schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::preserve_unknown_object")]
    pub config: Option<serde_json::Value>,
}

/// Mirrors a share of the matching requests to the canary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetMirrorRoute {
    /// Name of the managed route; a step without `match` removes it.
    pub name: String,
    /// Requests to mirror: any entry matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#match: Option<Vec<RouteMatch>>,
    /// Percentage of the matching requests to mirror (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentage: Option<i32>,
}

/// Matches a request by method, path and headers (all that are set must match).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteMatch {
    /// HTTP method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    /// URI path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<StringMatch>,
    /// Header name to value match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, StringMatch>>,
}

/// Matches a string: set exactly one of `exact`, `prefix` and `regex`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StringMatch {
    /// Equal to this string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// Starts with this string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Matches this regular expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// Routes requests with matching headers to the canary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetHeaderRoute {
    /// Name of the managed route; a step without `match` removes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Headers to match: all entries must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#match: Option<Vec<HeaderRoutingMatch>>,
}

/// A header and how its value must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderRoutingMatch {
    /// Header name.
    pub header_name: String,
    /// How the header value must match.
    pub header_value: StringMatch,
}

/// Scales the canary apart from the traffic weight: set one field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetCanaryScale {
    /// Canary replicas as a percentage of `spec.replicas`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// Canary replicas as a number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Go back to scaling the canary with the traffic weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_traffic_weight: Option<bool>,
}

/// Background analysis of a canary: a [`RolloutAnalysis`] and the step it starts at.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysisBackground {
    /// Templates to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templates: Option<Vec<AnalysisTemplateRef>>,
    /// Arguments of the templates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<AnalysisRunArgument>>,
    /// Metrics whose failures do not fail the analysis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Vec<DryRun>>,
    /// How many measurements to keep per metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
    /// Metadata of the AnalysisRun.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis_run_metadata: Option<AnalysisRunMetadata>,
    /// Index of the step at which the analysis starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starting_step: Option<i32>,
}

impl RolloutAnalysisBackground {
    /// The analysis part, without `startingStep`.
    pub fn analysis(&self) -> RolloutAnalysis {
        RolloutAnalysis {
            templates: self.templates.clone(),
            args: self.args.clone(),
            dry_run: self.dry_run.clone(),
            measurement_retention: self.measurement_retention.clone(),
            analysis_run_metadata: self.analysis_run_metadata.clone(),
        }
    }
}

/// An analysis the Rollout runs: templates and their arguments.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysis {
    /// Templates to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templates: Option<Vec<AnalysisTemplateRef>>,
    /// Arguments of the templates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<AnalysisRunArgument>>,
    /// Metrics whose failures do not fail the analysis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Vec<DryRun>>,
    /// How many measurements to keep per metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
    /// Metadata of the AnalysisRun.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis_run_metadata: Option<AnalysisRunMetadata>,
}

/// An argument the Rollout passes to an analysis template.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunArgument {
    /// Name of the argument.
    pub name: String,
    /// A literal value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Where to take the value from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ArgumentValueFrom>,
}

/// Sources of a Rollout analysis argument: set one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArgumentValueFrom {
    /// The pod template hash of the `Stable` or `Latest` revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_template_hash_value: Option<String>,
    /// A field of the Rollout, e.g. `metadata.labels['app']`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
}

/// Values of [`ArgumentValueFrom::pod_template_hash_value`].
pub mod pod_template_hash_value {
    /// The stable revision's hash.
    pub const STABLE: &str = "Stable";
    /// The newest revision's hash.
    pub const LATEST: &str = "Latest";
}

/// A path to a field of the object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldRef {
    /// Path of the field, e.g. `metadata.name`.
    pub field_path: String,
}

/// A pause step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutPause {
    /// Seconds (a number or a numeric string) or a Go duration (`30s`, `5m`, `1h`);
    /// unset pauses until promoted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<IntOrString>,
}

/// Why the controller paused a Rollout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PauseCondition {
    /// `CanaryPauseStep`, `BlueGreenPause`, `InconclusiveAnalysisRun` or
    /// `InconclusiveExperiment` (see `pause_reason`).
    pub reason: String,
    /// When the pause began.
    pub start_time: Time,
}

/// Values of [`PauseCondition::reason`].
pub mod pause_reason {
    /// An AnalysisRun ended inconclusive.
    pub const INCONCLUSIVE_ANALYSIS: &str = "InconclusiveAnalysisRun";
    /// An Experiment ended inconclusive.
    pub const INCONCLUSIVE_EXPERIMENT: &str = "InconclusiveExperiment";
    /// A canary pause step.
    pub const CANARY_PAUSE_STEP: &str = "CanaryPauseStep";
    /// A blue-green rollout waits for promotion.
    pub const BLUE_GREEN_PAUSE: &str = "BlueGreenPause";
}

/// Values of [`RolloutStatus::phase`].
pub mod rollout_phase {
    /// Fully promoted and available.
    pub const HEALTHY: &str = "Healthy";
    /// Invalid, aborted or past its progress deadline.
    pub const DEGRADED: &str = "Degraded";
    /// An update is under way.
    pub const PROGRESSING: &str = "Progressing";
    /// Paused by a user or a step.
    pub const PAUSED: &str = "Paused";
}

/// Observed state of a Rollout, written by the controller.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The update was aborted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort: Option<bool>,
    /// Why the controller paused the rollout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause_conditions: Option<Vec<PauseCondition>>,
    /// The controller paused the rollout (cleared by a promotion).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller_pause: Option<bool>,
    /// When the update was aborted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted_at: Option<Time>,
    /// Hash of the current pod template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_pod_hash: Option<String>,
    /// Hash of the canary steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_step_hash: Option<String>,
    /// Pods of all revisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Pods of the current revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_replicas: Option<i32>,
    /// Ready pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Available pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    /// Index of the current canary step; equals the step count when all are done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_step_index: Option<i32>,
    /// Counts pod template hash collisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
    /// The `metadata.generation` the controller has seen, as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<String>,
    /// Conditions of the rollout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<RolloutCondition>>,
    /// Canary state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStatus>,
    /// Blue-green state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenStatus>,
    /// Replica count for the scale subresource (HPA).
    #[serde(rename = "HPAReplicas", skip_serializing_if = "Option::is_none")]
    pub hpa_replicas: Option<i32>,
    /// Pod selector for the scale subresource, as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Pod template hash of the stable revision.
    #[serde(rename = "stableRS", skip_serializing_if = "Option::is_none")]
    pub stable_rs: Option<String>,
    /// The `spec.restartAt` of the last finished restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarted_at: Option<Time>,
    /// A full promotion was requested: skip the remaining steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promote_full: Option<bool>,
    /// Summary phase: `Healthy`, `Progressing`, `Paused` or `Degraded` (see `rollout_phase`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Explains the phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The generation of the referenced workload the controller has seen, as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_observed_generation: Option<String>,
    /// Load balancer of the ALB router.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alb: Option<AlbStatus>,
    /// Load balancers of the ALB router, one per Ingress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub albs: Option<Vec<AlbStatus>>,
    /// Timing of the current update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<RolloutDuration>,
}

/// Timing of the current update attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutDuration {
    /// When the attempt began.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_started_at: Option<Time>,
    /// When the current manual pause began, if paused by hand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manual_pause_started_at: Option<Time>,
    /// Seconds spent in manual pauses so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_manual_pause_duration_seconds: Option<i64>,
    /// When the attempt ended; unset while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// Outcome: `Promoted`, `FastPromoted`, `Aborted`, `Superseded`, `RolledBack` or
    /// `FastRolledBack`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_status: Option<String>,
}

/// Blue-green state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStatus {
    /// Pod template hash the preview service selects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_selector: Option<String>,
    /// Pod template hash the active service selects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_selector: Option<String>,
    /// The preview was scaled up to full size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_up_preview_check_point: Option<bool>,
    /// The pre-promotion AnalysisRun.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_promotion_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// The post-promotion AnalysisRun.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis_run_status: Option<RolloutAnalysisRunStatus>,
}

/// Canary state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// The AnalysisRun of the current analysis step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_step_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// The background AnalysisRun.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_background_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    /// Name of the Experiment of the current step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_experiment: Option<String>,
    /// Traffic weights as last set on the router.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<TrafficWeights>,
    /// Which ping-pong service is stable: `ping` or `pong`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_ping_pong: Option<String>,
    /// State of the step plugins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_plugin_statuses: Option<Vec<StepPluginStatus>>,
}

/// Values of [`CanaryStatus::stable_ping_pong`].
pub mod ping_pong {
    /// The ping service is stable.
    pub const PING: &str = "ping";
    /// The pong service is stable.
    pub const PONG: &str = "pong";
}

/// Traffic weights of stable, canary and other destinations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficWeights {
    /// The canary destination.
    pub canary: WeightDestination,
    /// The stable destination.
    pub stable: WeightDestination,
    /// Other destinations, e.g. experiments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional: Option<Vec<WeightDestination>>,
    /// Whether the weights were verified on the load balancer (unset: not checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

/// A traffic destination and its weight.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WeightDestination {
    /// Weight of the destination.
    pub weight: i32,
    /// Service of the destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Pod template hash of the destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_template_hash: Option<String>,
}

/// An AnalysisRun the Rollout waits on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysisRunStatus {
    /// Name of the AnalysisRun.
    pub name: String,
    /// Its phase (`Pending`, `Running`, `Successful`, `Failed`, `Error`, `Inconclusive`).
    pub status: String,
    /// Its message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// State of one step plugin operation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepPluginStatus {
    /// Index of the step.
    pub index: i32,
    /// Name of the plugin.
    pub name: String,
    /// `Run`, `Terminate` or `Abort`.
    pub operation: String,
    /// `Running`, `Successful`, `Failed` or `Error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Message from the plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the operation started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the status last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Time>,
    /// When the operation finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// Wait before the plugin is called again (Go duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<String>,
    /// How many times the operation ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executions: Option<i32>,
    /// The plugin is turned off in the controller configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// State the plugin keeps between calls.
    // `default` tells schemars the field is optional despite the custom schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::preserve_unknown_object")]
    pub status: Option<serde_json::Value>,
}

/// Values of [`StepPluginStatus::phase`].
pub mod step_plugin_phase {
    /// Still running.
    pub const RUNNING: &str = "Running";
    /// Finished successfully.
    pub const SUCCESSFUL: &str = "Successful";
    /// Finished with a failure.
    pub const FAILED: &str = "Failed";
    /// Could not run.
    pub const ERROR: &str = "Error";
}

/// Values of [`StepPluginStatus::operation`].
pub mod step_plugin_operation {
    /// Run the step.
    pub const RUN: &str = "Run";
    /// Stop a running step.
    pub const TERMINATE: &str = "Terminate";
    /// Undo a step after an abort.
    pub const ABORT: &str = "Abort";
}

/// AWS load balancer resources of the ALB router.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlbStatus {
    /// The load balancer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<AwsResourceRef>,
    /// The canary target group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_target_group: Option<AwsResourceRef>,
    /// The stable target group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_target_group: Option<AwsResourceRef>,
    /// The Ingress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<String>,
}

/// An AWS resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsResourceRef {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Full name (as used in CloudWatch dimensions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
}

/// Values of [`RolloutCondition::type_`].
pub mod rollout_condition_type {
    /// The spec is invalid.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// Enough pods are available.
    pub const AVAILABLE: &str = "Available";
    /// The update progresses (or timed out).
    pub const PROGRESSING: &str = "Progressing";
    /// Pods could not be created.
    pub const REPLICA_FAILURE: &str = "ReplicaFailure";
    /// The rollout is paused.
    pub const PAUSED: &str = "Paused";
    /// The current revision is stable.
    pub const COMPLETED: &str = "Completed";
    /// The rollout is healthy.
    pub const HEALTHY: &str = "Healthy";
}

/// A condition of a Rollout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutCondition {
    /// `Available`, `Progressing`, `Paused`, `Completed`, `Healthy`, `ReplicaFailure` or
    /// `InvalidSpec` (see `rollout_condition_type`).
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

/// Fast-track rollback window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackWindowSpec {
    /// Rolling back to one of this many previous revisions skips the steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revisions: Option<i32>,
}
