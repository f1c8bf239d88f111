//! What the router reads from the Rollout and from the controller's settings, resolved once when
//! it is built.

use rollouts_api::{Rollout, defaults::ALB_ANNOTATION_PREFIX};

use crate::AlbError;

/// The tag the AWS Load Balancer Controller puts on target groups to name their Kubernetes
/// resource (`<namespace>/<ingress>-<service>:<port>`).
pub const DEFAULT_RESOURCE_ID_TAG: &str = "ingress.k8s.aws/resource";

/// Longest stickiness duration AWS accepts (7 days), in seconds.
pub const MAX_STICKINESS_SECONDS: i64 = 604_800;

/// What the router needs, resolved from `spec.strategy.canary` and the router settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlbConfig {
    /// The Rollout's namespace (the Ingresses live there).
    pub namespace: String,
    /// The Rollout's name (the key of the managed-annotations bookkeeping).
    pub rollout: String,
    /// The Ingresses (`ingresses` when non-empty, else `[ingress]`).
    pub ingresses: Vec<String>,
    /// `servicePort`, written as a string in the target groups.
    pub service_port: i32,
    /// The Service named in the action annotation (`rootService`, default `stableService`).
    pub action_service: String,
    /// The stable side of the split (`stableService`, or the stable one of ping/pong).
    pub stable_service: String,
    /// The canary side of the split (`canaryService`, or the canary one of ping/pong).
    pub canary_service: String,
    /// `annotationPrefix` (default `alb.ingress.kubernetes.io`).
    pub annotation_prefix: String,
    /// `stickinessConfig.durationSeconds` when `stickinessConfig.enabled`.
    pub stickiness_seconds: Option<i64>,
    /// `trafficRouting.managedRoutes`, in order.
    pub managed_routes: Vec<String>,
    /// `--aws-verify-target-group`: check the load balancer through the AWS API too.
    pub verify_target_groups: bool,
    /// `--alb-tag-key-resource-id`.
    pub resource_id_tag: String,
}

impl AlbConfig {
    /// Reads `rollout`; `verify_target_groups` and `resource_id_tag` come from the settings.
    pub fn from_rollout(
        rollout: &Rollout,
        verify_target_groups: bool,
        resource_id_tag: &str,
    ) -> Result<Self, AlbError> {
        let canary = rollout
            .spec
            .canary()
            .ok_or(AlbError::Config("spec.strategy.canary is required".into()))?;
        let routing = canary.traffic_routing.as_ref().ok_or(AlbError::Config(
            "spec.strategy.canary.trafficRouting is required".into(),
        ))?;
        let alb = routing.alb.as_ref().ok_or(AlbError::Config(
            "spec.strategy.canary.trafficRouting.alb is required".into(),
        ))?;
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let ingresses = match &alb.ingresses {
            Some(list) if !list.is_empty() => list.clone(),
            _ => non_empty(&alb.ingress).into_iter().collect(),
        };
        if ingresses.is_empty() {
            return Err(AlbError::Config(
                "spec.strategy.canary.trafficRouting.alb.ingress or ingresses is required".into(),
            ));
        }
        if ingresses.iter().any(String::is_empty) {
            return Err(AlbError::Config(
                "spec.strategy.canary.trafficRouting.alb.ingresses has an empty name".into(),
            ));
        }
        if alb.service_port <= 0 {
            return Err(AlbError::Config(format!(
                "spec.strategy.canary.trafficRouting.alb.servicePort must be a port number, not {}",
                alb.service_port
            )));
        }
        // Ping-pong wins for ALB (Argo's GetStableAndCanaryServices with ping-pong preferred):
        // the stable side is `ping` while status.canary.stablePingPong is "ping", else `pong`.
        let (stable_service, canary_service) = match &canary.ping_pong {
            Some(pp) => {
                let stable_ping = rollout
                    .status
                    .as_ref()
                    .and_then(|s| s.canary.as_ref())
                    .and_then(|c| c.stable_ping_pong.as_deref())
                    == Some("ping");
                if stable_ping {
                    (pp.ping_service.clone(), pp.pong_service.clone())
                } else {
                    (pp.pong_service.clone(), pp.ping_service.clone())
                }
            }
            None => (
                non_empty(&canary.stable_service).ok_or(AlbError::Config(
                    "spec.strategy.canary.stableService is required with ALB (or pingPong)".into(),
                ))?,
                non_empty(&canary.canary_service).ok_or(AlbError::Config(
                    "spec.strategy.canary.canaryService is required with ALB (or pingPong)".into(),
                ))?,
            ),
        };
        let action_service = match non_empty(&alb.root_service) {
            Some(root) => root,
            None => non_empty(&canary.stable_service).ok_or(AlbError::Config(
                "spec.strategy.canary.trafficRouting.alb.rootService is required with pingPong"
                    .into(),
            ))?,
        };
        let stickiness_seconds = match &alb.stickiness_config {
            Some(s) if s.enabled => {
                if !(1..=MAX_STICKINESS_SECONDS).contains(&s.duration_seconds) {
                    return Err(AlbError::StickinessDuration);
                }
                Some(s.duration_seconds)
            }
            _ => None,
        };
        Ok(Self {
            namespace: rollout
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_string()),
            rollout: rollout
                .metadata
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .ok_or(AlbError::Config("the Rollout has no metadata.name".into()))?,
            ingresses,
            service_port: alb.service_port,
            action_service,
            stable_service,
            canary_service,
            annotation_prefix: non_empty(&alb.annotation_prefix)
                .unwrap_or_else(|| ALB_ANNOTATION_PREFIX.to_string()),
            stickiness_seconds,
            managed_routes: routing
                .managed_routes
                .iter()
                .flatten()
                .map(|r| r.name.clone())
                .collect(),
            verify_target_groups,
            resource_id_tag: if resource_id_tag.is_empty() {
                DEFAULT_RESOURCE_ID_TAG.to_string()
            } else {
                resource_id_tag.to_string()
            },
        })
    }

    /// `<prefix>/actions.<name>`: the weighted action (for the action Service) or a header
    /// route's action.
    pub fn action_key(&self, name: &str) -> String {
        format!("{}/actions.{name}", self.annotation_prefix)
    }

    /// `<prefix>/conditions.<route>`: a header route's conditions.
    pub fn condition_key(&self, route: &str) -> String {
        format!("{}/conditions.{route}", self.annotation_prefix)
    }

    /// The key of the weighted action: `<prefix>/actions.<rootService|stableService>`.
    pub fn weight_action_key(&self) -> String {
        self.action_key(&self.action_service)
    }

    /// The AWS Load Balancer Controller's resource id of the target group for `service` behind
    /// `ingress`: `<namespace>/<ingress>-<service>:<servicePort>`.
    pub fn resource_id(&self, ingress: &str, service: &str) -> String {
        format!(
            "{}/{ingress}-{service}:{}",
            self.namespace, self.service_port
        )
    }
}
