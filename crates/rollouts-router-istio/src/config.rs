//! What the router reads from the Rollout, resolved once when it is built.

use rollouts_api::{IstioDestinationRule, IstioVirtualService, Rollout, ping_pong};

use crate::IstioError;

/// The Istio block of a Rollout and the fields around it that the router uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IstioConfig {
    /// The Rollout's namespace (VirtualServices without a namespace and the DestinationRule live
    /// there).
    pub namespace: String,
    /// The Rollout's name (the DestinationRule's managed-by annotation).
    pub rollout: String,
    /// The stable Service: `stableService`, or with ping-pong and no services the current stable
    /// one of `ping`/`pong`. Empty with subset-level routing.
    pub stable_service: String,
    /// The canary Service, resolved like [`IstioConfig::stable_service`].
    pub canary_service: String,
    /// `istio.destinationRule`: subset-level routing.
    pub destination_rule: Option<IstioDestinationRule>,
    /// `istio.virtualServices`, else `[istio.virtualService]`.
    pub virtual_services: Vec<IstioVirtualService>,
    /// `trafficRouting.managedRoutes` names, in order (their order is their priority).
    pub managed_routes: Vec<String>,
    /// Names of the routes the steps' `setHeaderRoute` and `setMirrorRoute` create.
    pub step_routes: Vec<String>,
}

impl IstioConfig {
    /// Reads `spec.strategy.canary` of `rollout`.
    pub fn from_rollout(rollout: &Rollout) -> Result<Self, IstioError> {
        let canary = rollout
            .spec
            .strategy
            .as_ref()
            .and_then(|s| s.canary.as_ref())
            .ok_or(IstioError::Config("spec.strategy.canary is required"))?;
        let routing = canary.traffic_routing.as_ref().ok_or(IstioError::Config(
            "spec.strategy.canary.trafficRouting is required",
        ))?;
        let istio = routing.istio.as_ref().ok_or(IstioError::Config(
            "spec.strategy.canary.trafficRouting.istio is required",
        ))?;
        let virtual_services = match (&istio.virtual_services, &istio.virtual_service) {
            (Some(list), _) => list.clone(),
            (None, Some(one)) => vec![one.clone()],
            (None, None) => {
                return Err(IstioError::Config(
                    "spec.strategy.canary.trafficRouting.istio.virtualService or virtualServices is required",
                ));
            }
        };
        if virtual_services.iter().any(|vs| vs.name.is_empty()) {
            return Err(IstioError::Config(
                "spec.strategy.canary.trafficRouting.istio.virtualService(s).name is required",
            ));
        }
        let mut stable_service = canary.stable_service.clone().unwrap_or_default();
        let mut canary_service = canary.canary_service.clone().unwrap_or_default();
        // Argo's GetStableAndCanaryServices without ping-pong preference: ping/pong only when
        // neither service is set.
        if stable_service.is_empty()
            && canary_service.is_empty()
            && let Some(pp) = &canary.ping_pong
        {
            let stable_is_ping = rollout
                .status
                .as_ref()
                .and_then(|s| s.canary.as_ref())
                .and_then(|c| c.stable_ping_pong.as_deref())
                == Some(ping_pong::PING);
            (stable_service, canary_service) = if stable_is_ping {
                (pp.ping_service.clone(), pp.pong_service.clone())
            } else {
                (pp.pong_service.clone(), pp.ping_service.clone())
            };
        }
        let step_routes = canary
            .steps
            .iter()
            .flatten()
            .flat_map(|s| {
                [
                    s.set_header_route.as_ref().and_then(|h| h.name.clone()),
                    s.set_mirror_route.as_ref().map(|m| m.name.clone()),
                ]
            })
            .flatten()
            .filter(|n| !n.is_empty())
            .collect();
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
                .ok_or(IstioError::Config("the Rollout has no metadata.name"))?,
            stable_service,
            canary_service,
            destination_rule: istio.destination_rule.clone(),
            virtual_services,
            managed_routes: routing
                .managed_routes
                .iter()
                .flatten()
                .map(|r| r.name.clone())
                .collect(),
            step_routes,
        })
    }

    /// Whether `name` is one of `managedRoutes`.
    pub fn is_managed(&self, name: &str) -> bool {
        self.managed_routes.iter().any(|m| m == name)
    }

    /// The canary subset name (empty without a DestinationRule).
    pub fn canary_subset(&self) -> &str {
        self.destination_rule
            .as_ref()
            .map_or("", |d| d.canary_subset_name.as_str())
    }

    /// The stable subset name (empty without a DestinationRule).
    pub fn stable_subset(&self) -> &str {
        self.destination_rule
            .as_ref()
            .map_or("", |d| d.stable_subset_name.as_str())
    }

    /// `additionalSubsetNames` of the DestinationRule.
    pub fn additional_subsets(&self) -> &[String] {
        self.destination_rule
            .as_ref()
            .and_then(|d| d.additional_subset_names.as_deref())
            .unwrap_or_default()
    }
}

/// The namespace and name of a VirtualService reference: `name`, or Istio's `name.namespace`
/// shorthand (optionally followed by `.cluster.local`; the last dot-separated segment is the
/// namespace, as in Argo 1.10). `None` namespace means the Rollout's.
pub fn virtual_service_location(reference: &str) -> (Option<&str>, &str) {
    let reference = reference
        .strip_suffix(".cluster.local")
        .unwrap_or(reference);
    match reference.rsplit_once('.') {
        Some((name, namespace)) => (Some(namespace), name),
        None => (None, reference),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn rollout(canary: Value, status: Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "reviews", "namespace": "shop"},
            "spec": {
                "selector": {"matchLabels": {"app": "reviews"}},
                "strategy": {"canary": canary}
            },
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn a_single_virtual_service_and_the_services() {
        let c = IstioConfig::from_rollout(&rollout(
            json!({
                "canaryService": "c", "stableService": "s",
                "trafficRouting": {
                    "managedRoutes": [{"name": "h"}, {"name": "m"}],
                    "istio": {"virtualService": {"name": "vs", "routes": ["primary"]}}
                },
                "steps": [
                    {"setHeaderRoute": {"name": "h", "match": []}},
                    {"setMirrorRoute": {"name": "m"}},
                    {"setWeight": 10},
                    {"setHeaderRoute": {"name": "h"}}
                ]
            }),
            json!({}),
        ))
        .unwrap();
        assert_eq!(c.namespace, "shop");
        assert_eq!(
            (c.stable_service.as_str(), c.canary_service.as_str()),
            ("s", "c")
        );
        assert_eq!(c.virtual_services.len(), 1);
        assert_eq!(c.virtual_services[0].name, "vs");
        assert_eq!(c.managed_routes, ["h", "m"]);
        assert_eq!(c.step_routes, ["h", "m", "h"]);
        assert!(c.is_managed("m") && !c.is_managed("primary"));
        assert_eq!((c.canary_subset(), c.stable_subset()), ("", ""));
    }

    #[test]
    fn virtual_services_win_and_a_destination_rule_gives_subsets() {
        let c = IstioConfig::from_rollout(&rollout(
            json!({"trafficRouting": {"istio": {
                "virtualService": {"name": "ignored"},
                "virtualServices": [{"name": "a"}, {"name": "b.other"}],
                "destinationRule": {"name": "dr", "canarySubsetName": "canary",
                    "stableSubsetName": "stable", "additionalSubsetNames": ["extra"]}
            }}}),
            json!({}),
        ))
        .unwrap();
        let names: Vec<&str> = c.virtual_services.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["a", "b.other"]);
        assert_eq!((c.canary_subset(), c.stable_subset()), ("canary", "stable"));
        assert_eq!(c.additional_subsets(), ["extra"]);
        assert_eq!(
            (c.stable_service.as_str(), c.canary_service.as_str()),
            ("", "")
        );
    }

    #[test]
    fn ping_pong_services_are_used_only_without_stable_and_canary_services() {
        let spec = json!({
            "pingPong": {"pingService": "ping", "pongService": "pong"},
            "trafficRouting": {"istio": {"virtualService": {"name": "vs"}}}
        });
        let stable_ping = json!({"canary": {"stablePingPong": "ping"}});
        let c = IstioConfig::from_rollout(&rollout(spec.clone(), stable_ping.clone())).unwrap();
        assert_eq!(
            (c.stable_service.as_str(), c.canary_service.as_str()),
            ("ping", "pong")
        );
        let c = IstioConfig::from_rollout(&rollout(spec.clone(), json!({}))).unwrap();
        assert_eq!(
            (c.stable_service.as_str(), c.canary_service.as_str()),
            ("pong", "ping")
        );
        let mut with_services = spec;
        with_services["stableService"] = json!("s");
        with_services["canaryService"] = json!("c");
        let c = IstioConfig::from_rollout(&rollout(with_services, stable_ping)).unwrap();
        assert_eq!(
            (c.stable_service.as_str(), c.canary_service.as_str()),
            ("s", "c")
        );
    }

    #[test]
    fn a_virtual_service_is_required() {
        let err = IstioConfig::from_rollout(&rollout(
            json!({"trafficRouting": {"istio": {}}}),
            json!({}),
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.strategy.canary.trafficRouting.istio.virtualService or virtualServices is required"
        );
    }

    #[test]
    fn virtual_service_references() {
        assert_eq!(virtual_service_location("vs"), (None, "vs"));
        assert_eq!(virtual_service_location("vs.mesh"), (Some("mesh"), "vs"));
        assert_eq!(
            virtual_service_location("vs.mesh.cluster.local"),
            (Some("mesh"), "vs")
        );
        assert_eq!(
            virtual_service_location("vs.v2.mesh"),
            (Some("mesh"), "vs.v2")
        );
    }
}
