//! The `istio` traffic router: weights in Istio VirtualServices, DestinationRule subsets, and
//! header and mirror routes.
//!
//! ```yaml
//! strategy:
//!   canary:
//!     canaryService: reviews-canary          # host-level: the destinations are two Services
//!     stableService: reviews-stable
//!     trafficRouting:
//!       managedRoutes: [{name: beta-testers}, {name: mirror-orders}]
//!       istio:
//!         virtualService:                    # or virtualServices: [...]
//!           name: reviews                    # or name.namespace
//!           routes: [primary]                # HTTP routes (default: the only one)
//!           tlsRoutes: [{port: 443, sniHosts: [reviews.example.com]}]
//!           tcpRoutes: [{port: 9090}]
//!         destinationRule:                   # subset-level: the destinations are two subsets
//!           name: reviews
//!           canarySubsetName: canary
//!           stableSubsetName: stable
//! ```
//!
//! As in Argo (`networking.istio.io/v1alpha3` unless the host set [`keys::ISTIO_API_VERSION`]):
//!
//! - [`TrafficRouter::set_weight`] sets the canary and stable destination weights (and experiment
//!   destinations) of the selected HTTP, TLS and TCP routes of each VirtualService; Event
//!   `Updated VirtualService`.
//! - [`TrafficRouter::update_hash`] labels the DestinationRule's canary and stable subsets with
//!   `rollouts-pod-template-hash`; Event `UpdatedDestinationRule`.
//! - [`TrafficRouter::set_header_route`], [`TrafficRouter::set_mirror_route`] and
//!   [`TrafficRouter::remove_managed_routes`] add and remove the managed HTTP routes, kept on top
//!   in `managedRoutes` order.
//!
//! Writes are updates of the object exactly as read, with only the managed fields changed, and
//! its `resourceVersion` (a concurrent change makes the server refuse the update; the router reads
//! again and retries). Nothing is written when nothing changes.
//!
//! Unlike Argo, [`TrafficRouter::verify_weight`] reads the VirtualServices back. The behaviours of
//! Argo that lose user data or traffic (§16 of the integration notes) are fixed; see
//! `docs/routers/istio.md`.

mod config;
pub mod routes;
pub mod subsets;

use std::sync::Arc;

use async_trait::async_trait;
use kube::{
    Api,
    api::{ApiResource, DynamicObject, ListParams, PostParams},
};
use rollouts_api::{
    IstioVirtualService, Rollout, SetHeaderRoute, SetMirrorRoute, WeightDestination, labels,
};
use rollouts_plugin::{
    EventSink, PluginError, PluginEvent, RouterCapabilities, RouterInit, TrafficRouter,
    TrafficRouterPlugin, WeightVerification, objects, settings::keys,
};
use serde_json::Value;

pub use config::{IstioConfig, virtual_service_location};

/// The registry name: the JSON key of the router block.
pub const NAME: &str = "istio";
/// The API group of VirtualServices and DestinationRules.
pub const GROUP: &str = "networking.istio.io";
/// The version used when the host sets none (Argo's flag default).
pub const DEFAULT_API_VERSION: &str = "v1alpha3";
/// How often an update refused because the object changed meanwhile is retried.
const CONFLICT_RETRIES: usize = 5;

/// What can go wrong, with Argo's messages where Argo has one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IstioError {
    /// The Rollout lacks something the router needs.
    #[error("{0}")]
    Config(&'static str),
    /// A route named in `routes` does not exist.
    #[error("HTTP Route '{0}' is not found in the defined Virtual Service.")]
    HttpRouteNotFound(String),
    /// No `routes` and several routes that are not managed.
    #[error(
        "spec.http[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.routes"
    )]
    HttpRoutesAmbiguous,
    /// A `tlsRoutes` entry matches no TLS route.
    #[error("No matching TLS routes found in the defined Virtual Service.")]
    TlsRouteNotFound,
    /// No `tlsRoutes` and several TLS routes.
    #[error(
        "spec.tls[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.tlsRoutes"
    )]
    TlsRoutesAmbiguous,
    /// A `tcpRoutes` entry matches no TCP route.
    #[error("No matching TCP routes found in the defined Virtual Service.")]
    TcpRouteNotFound,
    /// No `tcpRoutes` and several TCP routes.
    #[error(
        "spec.tcp[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.tcpRoutes"
    )]
    TcpRoutesAmbiguous,
    /// A weighted route lacks the canary Service.
    #[error("Canary Service '{0}' not found in route")]
    CanaryServiceNotInRoute(String),
    /// A weighted route lacks the stable Service.
    #[error("Stable Service '{0}' not found in route")]
    StableServiceNotInRoute(String),
    /// A weighted route lacks the canary subset.
    #[error("Canary DestinationRule subset '{0}' not found in route")]
    CanarySubsetNotInRoute(String),
    /// A weighted route lacks the stable subset.
    #[error("Stable DestinationRule subset '{0}' not found in route")]
    StableSubsetNotInRoute(String),
    /// Header and mirror routes need `spec.http`.
    #[error(
        "spec.http not found in VirtualService `{0}`: header and mirror routes are HTTP routes"
    )]
    NoHttpRoutes(String),
    /// A mirror route copies the weighted route, and there is none.
    #[error("VirtualService `{0}` has no weighted HTTP route to copy into the mirror route")]
    NoRouteToMirror(String),
    /// A ReplicaSet the DestinationRule would point at is not fully available yet.
    #[error("delaying destination rule switch: ReplicaSet {0} not fully available")]
    DelayedSwitch(String),
    /// The object does not have the shape of its kind.
    #[error("malformed object: {0}")]
    Shape(String),
}

impl IstioError {
    fn into_plugin(self) -> PluginError {
        match self {
            Self::Config(_) => PluginError::Config {
                plugin: NAME,
                message: self.to_string(),
            },
            other => PluginError::Other {
                plugin: NAME,
                message: other.to_string(),
            },
        }
    }

    /// The error for the VirtualService `vs`, naming it.
    fn in_virtual_service(self, vs: &str) -> PluginError {
        match self {
            Self::Config(_) | Self::NoHttpRoutes(_) | Self::NoRouteToMirror(_) => {
                self.into_plugin()
            }
            other => PluginError::Other {
                plugin: NAME,
                message: format!("VirtualService `{vs}`: {other}"),
            },
        }
    }
}

rollouts_plugin::register_traffic_router!(TrafficRouterPlugin {
    name: NAME,
    summary: "Istio VirtualService and DestinationRule (networking.istio.io)",
    build: |init| {
        let version = init
            .settings()
            .get_or(keys::ISTIO_API_VERSION, DEFAULT_API_VERSION);
        Ok(Box::new(IstioRouter::new(init, version)?))
    },
});

/// The Istio router for one Rollout.
pub struct IstioRouter {
    client: kube::Client,
    events: Arc<dyn EventSink>,
    config: IstioConfig,
    rollout: Rollout,
    api_version: String,
}

impl std::fmt::Debug for IstioRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IstioRouter")
            .field("config", &self.config)
            .field("api_version", &self.api_version)
            .finish_non_exhaustive()
    }
}

/// Whether an update changed the object (and so whether an event is due).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Updated,
    Unchanged,
    Missing,
}

impl IstioRouter {
    /// A router for `init.rollout` on `networking.istio.io/<api_version>`.
    pub fn new(init: RouterInit<'_>, api_version: &str) -> Result<Self, PluginError> {
        if api_version.is_empty() || api_version.contains('/') {
            return Err(PluginError::Config {
                plugin: NAME,
                message: format!(
                    "--istio-api-version must be a version of {GROUP} such as v1alpha3, got {api_version:?}"
                ),
            });
        }
        let config = IstioConfig::from_rollout(init.rollout).map_err(IstioError::into_plugin)?;
        Ok(Self {
            client: init.client,
            events: init.events,
            config,
            rollout: init.rollout.clone(),
            api_version: api_version.to_string(),
        })
    }

    /// What the router resolved from the Rollout.
    pub fn config(&self) -> &IstioConfig {
        &self.config
    }

    fn api(&self, namespace: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
        let resource = ApiResource {
            group: GROUP.to_string(),
            version: self.api_version.clone(),
            api_version: format!("{GROUP}/{}", self.api_version),
            kind: kind.to_string(),
            plural: plural.to_string(),
        };
        Api::namespaced_with(self.client.clone(), namespace, &resource)
    }

    /// The namespace, name and API of a VirtualService reference.
    fn virtual_service(&self, vs: &IstioVirtualService) -> (String, String, Api<DynamicObject>) {
        let (namespace, name) = virtual_service_location(&vs.name);
        let namespace = namespace.unwrap_or(&self.config.namespace).to_string();
        let api = self.api(&namespace, "VirtualService", "virtualservices");
        (namespace, name.to_string(), api)
    }

    fn destination_rule_api(&self) -> Api<DynamicObject> {
        self.api(
            &self.config.namespace,
            "DestinationRule",
            "destinationrules",
        )
    }

    /// Reads, edits and updates one object, retrying when it changed meanwhile. `edit` returns
    /// whether it changed anything; nothing is written otherwise. A missing object is reported
    /// as [`Outcome::Missing`].
    async fn update(
        &self,
        api: &Api<DynamicObject>,
        kind: &str,
        name: &str,
        mut edit: impl FnMut(&mut Value) -> Result<bool, PluginError>,
    ) -> Result<Outcome, PluginError> {
        for _ in 0..CONFLICT_RETRIES {
            let Some(current) = get(api, kind, name).await? else {
                return Ok(Outcome::Missing);
            };
            let mut object = current;
            if !edit(&mut object)? {
                return Ok(Outcome::Unchanged);
            }
            let object: DynamicObject =
                serde_json::from_value(object).map_err(|e| PluginError::Other {
                    plugin: NAME,
                    message: format!("{kind} `{name}` after the change is not an object: {e}"),
                })?;
            match api.replace(name, &PostParams::default(), &object).await {
                Ok(_) => return Ok(Outcome::Updated),
                Err(e) if objects::status_code(&e) == Some(409) => {
                    tracing::debug!(kind, name, "Changed meanwhile; reading it again.");
                }
                Err(e) => {
                    return Err(PluginError::Kube {
                        plugin: NAME,
                        action: format!("updating {kind} `{name}`"),
                        source: e,
                    });
                }
            }
        }
        Err(PluginError::Other {
            plugin: NAME,
            message: format!(
                "{kind} `{name}` kept changing while it was updated ({CONFLICT_RETRIES} conflicts)"
            ),
        })
    }

    fn virtual_service_missing(&self, name: &str) -> PluginError {
        self.events.emit(PluginEvent::warning(
            "VirtualServiceNotFound",
            format!("VirtualService `{name}` not found"),
        ));
        PluginError::NotFound {
            plugin: NAME,
            object: format!("VirtualService `{name}`"),
        }
    }

    /// The host of header and mirror routes: the DestinationRule's `spec.host` with subset-level
    /// routing, else the canary Service.
    async fn canary_host(&self) -> Result<String, PluginError> {
        let Some(rule) = &self.config.destination_rule else {
            return Ok(self.config.canary_service.clone());
        };
        let found = get(&self.destination_rule_api(), "DestinationRule", &rule.name).await?;
        let Some(found) = found else {
            return Err(self.destination_rule_missing(&rule.name));
        };
        Ok(found["spec"]["host"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    fn destination_rule_missing(&self, name: &str) -> PluginError {
        self.events.emit(PluginEvent::warning(
            "DestinationRuleNotFound",
            format!("DestinationRule `{name}` not found"),
        ));
        PluginError::NotFound {
            plugin: NAME,
            object: format!("DestinationRule `{name}`"),
        }
    }

    /// The Rollout's ReplicaSets with one of these hashes (for the availability check).
    async fn replica_sets(&self, hashes: &[&str]) -> Result<Vec<Value>, PluginError> {
        let hashes: Vec<&str> = hashes.iter().copied().filter(|h| !h.is_empty()).collect();
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let resource = ApiResource {
            group: "apps".into(),
            version: "v1".into(),
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            plural: "replicasets".into(),
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &self.config.namespace, &resource);
        let selector = format!("{} in ({})", labels::POD_TEMPLATE_HASH, hashes.join(","));
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| PluginError::Kube {
                plugin: NAME,
                action: "listing the Rollout's ReplicaSets".into(),
                source: e,
            })?;
        let uid = self.rollout.metadata.uid.as_deref();
        list.items
            .into_iter()
            .map(to_json)
            .filter(|rs| match (rs, uid) {
                (Ok(rs), Some(uid)) => objects::is_controlled_by(rs, uid),
                _ => true,
            })
            .collect()
    }

    /// Applies `edit` to every VirtualService; `event` says what to report for each updated one.
    async fn edit_virtual_services(
        &self,
        missing_is_error: bool,
        edit: impl Fn(&IstioVirtualService, &str, &mut Value) -> Result<bool, IstioError>,
        event: impl Fn(&str) -> String,
    ) -> Result<(), PluginError> {
        for vs in &self.config.virtual_services {
            let (namespace, name, api) = self.virtual_service(vs);
            let outcome = self
                .update(&api, "VirtualService", &name, |object| {
                    edit(vs, &name, object).map_err(|e| e.in_virtual_service(&name))
                })
                .await?;
            match outcome {
                Outcome::Updated => {
                    tracing::info!(%namespace, virtualservice = %name, "Updated VirtualService.");
                    self.events
                        .emit(PluginEvent::normal("Updated VirtualService", event(&name)));
                }
                Outcome::Unchanged => {
                    tracing::debug!(%namespace, virtualservice = %name, "VirtualService unchanged.");
                }
                Outcome::Missing if missing_is_error => {
                    return Err(self.virtual_service_missing(&name));
                }
                Outcome::Missing => {
                    self.virtual_service_missing(&name);
                }
            }
        }
        Ok(())
    }
}

async fn get(
    api: &Api<DynamicObject>,
    kind: &str,
    name: &str,
) -> Result<Option<Value>, PluginError> {
    let found = api.get_opt(name).await.map_err(|e| PluginError::Kube {
        plugin: NAME,
        action: format!("getting {kind} `{name}`"),
        source: e,
    })?;
    found.map(to_json).transpose()
}

fn to_json(object: DynamicObject) -> Result<Value, PluginError> {
    serde_json::to_value(object).map_err(|e| PluginError::Other {
        plugin: NAME,
        message: format!("encoding an object as JSON: {e}"),
    })
}

#[async_trait]
impl TrafficRouter for IstioRouter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> RouterCapabilities {
        RouterCapabilities {
            header_routes: true,
            mirror_routes: true,
        }
    }

    async fn update_hash(
        &self,
        canary_hash: &str,
        stable_hash: &str,
        additional: &[WeightDestination],
    ) -> Result<(), PluginError> {
        let Some(rule) = &self.config.destination_rule else {
            return Ok(());
        };
        if self.config.canary_service.is_empty() && self.config.stable_service.is_empty() {
            let sets = self.replica_sets(&[canary_hash, stable_hash]).await?;
            if let Some(rs) =
                subsets::unavailable_replica_set(&self.rollout, &sets, canary_hash, stable_hash)
            {
                tracing::info!(replicaset = %rs, "Delaying the DestinationRule switch.");
                return Err(IstioError::DelayedSwitch(rs).into_plugin());
            }
        }
        let api = self.destination_rule_api();
        let outcome = self
            .update(&api, "DestinationRule", &rule.name, |object| {
                subsets::update_subsets(
                    rule,
                    &self.config.rollout,
                    object,
                    canary_hash,
                    stable_hash,
                    additional,
                )
                .map_err(IstioError::into_plugin)
            })
            .await?;
        match outcome {
            Outcome::Missing => Err(self.destination_rule_missing(&rule.name)),
            Outcome::Unchanged => Ok(()),
            Outcome::Updated => {
                tracing::info!(destinationrule = %rule.name, canary_hash, stable_hash, "Updated DestinationRule subsets.");
                self.events.emit(PluginEvent::normal(
                    "UpdatedDestinationRule",
                    format!(
                        "DestinationRule {} subset updated ({}: {canary_hash}, {}: {stable_hash})",
                        rule.name, rule.canary_subset_name, rule.stable_subset_name
                    ),
                ));
                Ok(())
            }
        }
    }

    async fn set_weight(
        &self,
        desired_weight: i32,
        additional: &[WeightDestination],
    ) -> Result<(), PluginError> {
        self.edit_virtual_services(
            true,
            |vs, _, object| {
                routes::set_weight(&self.config, vs, object, desired_weight, additional)
                    .map(|changes| !changes.is_empty())
            },
            |name| format!("VirtualService `{name}` set to desiredWeight '{desired_weight}'"),
        )
        .await
    }

    async fn verify_weight(
        &self,
        desired_weight: i32,
        additional: &[WeightDestination],
    ) -> Result<WeightVerification, PluginError> {
        for vs in &self.config.virtual_services {
            let (namespace, name, api) = self.virtual_service(vs);
            let Some(object) = get(&api, "VirtualService", &name).await? else {
                return Ok(WeightVerification::Mismatch {
                    observed: None,
                    detail: format!("VirtualService `{namespace}/{name}` does not exist"),
                });
            };
            let observed = routes::canary_weight(&self.config, vs, &object);
            let mut copy = object;
            match routes::set_weight(&self.config, vs, &mut copy, desired_weight, additional) {
                Ok(changes) if changes.is_empty() => {}
                Ok(changes) => {
                    return Ok(WeightVerification::Mismatch {
                        observed,
                        detail: format!("VirtualService `{namespace}/{name}`: {}", changes[0]),
                    });
                }
                Err(e) => {
                    return Ok(WeightVerification::Mismatch {
                        observed,
                        detail: format!("VirtualService `{namespace}/{name}`: {e}"),
                    });
                }
            }
        }
        Ok(WeightVerification::Verified)
    }

    async fn set_header_route(&self, route: &SetHeaderRoute) -> Result<(), PluginError> {
        let host = self.canary_host().await?;
        let route_name = route.name.clone().unwrap_or_default();
        self.edit_virtual_services(
            true,
            |vs, name, object| {
                routes::set_header_route(&self.config, vs, name, object, route, &host)
            },
            |name| format!("VirtualService `{name}` set headerRoute '{route_name}'"),
        )
        .await
    }

    async fn set_mirror_route(&self, route: &SetMirrorRoute) -> Result<(), PluginError> {
        let host = self.canary_host().await?;
        self.edit_virtual_services(
            true,
            |vs, name, object| {
                routes::set_mirror_route(&self.config, vs, name, object, route, &host)
            },
            |name| format!("VirtualService `{name}` set mirrorRoute '{}'", route.name),
        )
        .await
    }

    async fn remove_managed_routes(&self) -> Result<(), PluginError> {
        self.edit_virtual_services(
            false,
            |_, _, object| Ok(routes::remove_managed_routes(&self.config, object)),
            |name| format!("VirtualService `{name}` removed all managed routes."),
        )
        .await
    }
}
