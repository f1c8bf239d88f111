//! The `appMesh` traffic router: the weighted targets of an
//! [AWS App Mesh](https://aws.github.io/aws-app-mesh-controller-for-k8s/) VirtualRouter and the
//! pod selectors of the canary and stable VirtualNodes.
//!
//! ```yaml
//! strategy:
//!   canary:
//!     canaryService: catalog-canary
//!     stableService: catalog-stable
//!     trafficRouting:
//!       appMesh:
//!         virtualService:
//!           name: catalog
//!           routes: [http-primary]        # default: every route of the router
//!         virtualNodeGroup:
//!           canaryVirtualNodeRef: {name: catalog-canary}
//!           stableVirtualNodeRef: {name: catalog-stable}
//! ```
//!
//! As in Argo (objects of `appmesh.k8s.aws/<version>`, `v1beta2` unless the host set
//! [`keys::APPMESH_CRD_VERSION`]):
//! - [`TrafficRouter::update_hash`] sets `spec.podSelector.matchLabels[rollouts-pod-template-hash]`
//!   of the stable VirtualNode (`stable-hash` while there is no stable hash), then of the canary
//!   one (`canary-hash` when its hash is empty or the stable one), and the managed-by annotation;
//!   a missing VirtualNode is the Warning `VirtualNodeNotFound` and "Virtual-node is missing".
//! - [`TrafficRouter::set_weight`] reads the VirtualService (Warning `VirtualServiceNotFound`,
//!   "Virtual-service is missing"), follows `spec.provider.virtualRouter.virtualRouterRef` to
//!   the VirtualRouter (Warning `VirtualRouterNotFound`, "Virtual-router is missing") and, in
//!   each of its routes (those named in `virtualService.routes`, or all), gives the weighted
//!   targets of the canary VirtualNode `w` and those of the stable one `100 − w`, whichever of
//!   `httpRoute`, `tcpRoute`, `http2Route`, `grpcRoute` the route is; malformed pieces give
//!   Argo's field errors.
//! - Header and mirror routes are accepted and do nothing (Argo's App Mesh router returns
//!   success without acting; validation refuses such steps with App Mesh anyway); there are no
//!   managed routes; experiment destinations are ignored.
//!
//! Unlike Argo, the router writes only what differs, as merge patches guarded by the objects'
//! `resourceVersion` (Argo updates whole objects, the VirtualNodes on every reconcile); a route
//! named in `virtualService.routes` that the VirtualRouter lacks is an error (Argo ignores it);
//! and [`TrafficRouter::verify_weight`] reads the VirtualRouter back. See `docs/routers/appmesh.md`.

mod mesh;

use std::sync::Arc;

use async_trait::async_trait;
use kube::{
    Api,
    api::{ApiResource, DynamicObject, Patch, PatchParams},
};
use rollouts_api::{SetHeaderRoute, SetMirrorRoute, WeightDestination};
use rollouts_plugin::{
    EventSink, PluginError, PluginEvent, RouterInit, TrafficRouter, TrafficRouterPlugin,
    WeightVerification, settings::keys,
};
use serde_json::Value;

pub use mesh::{
    AppMeshConfig, DEFAULT_CANARY_HASH, DEFAULT_STABLE_HASH, DEFAULT_VERSION, GROUP,
    NOT_WELL_FORMED, ROUTE_TYPES, desired_routes, hash_patch, mismatch, node_hashes, router_ref,
    weight_of, weight_patch,
};

/// The registry name: the JSON key of the router block.
pub const NAME: &str = "appMesh";
/// Warning event: the VirtualService is missing (Argo's reason).
pub const VIRTUAL_SERVICE_NOT_FOUND: &str = "VirtualServiceNotFound";
/// Warning event: the VirtualRouter is missing (Argo's reason).
pub const VIRTUAL_ROUTER_NOT_FOUND: &str = "VirtualRouterNotFound";
/// Warning event: a VirtualNode is missing (Argo's reason).
pub const VIRTUAL_NODE_NOT_FOUND: &str = "VirtualNodeNotFound";

/// What can go wrong, with Argo's messages where Argo has one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AppMeshError {
    /// The Rollout lacks something the router needs.
    #[error("{0}")]
    Config(&'static str),
    /// The `--appmesh-crd-version` setting is not a version.
    #[error("invalid App Mesh CRD version `{0}`: want a version such as v1beta2")]
    Version(String),
    /// The VirtualService does not exist.
    #[error("Virtual-service is missing")]
    VirtualServiceMissing,
    /// The VirtualService's provider is not a VirtualRouter.
    #[error("Virtual-service is not associated with virtual-router")]
    NotUsingVirtualRouter,
    /// The VirtualRouter the VirtualService points at does not exist.
    #[error("Virtual-router is missing")]
    VirtualRouterMissing,
    /// A VirtualNode of `virtualNodeGroup` does not exist.
    #[error("Virtual-node is missing")]
    VirtualNodeMissing,
    /// A piece of an App Mesh object is missing or of the wrong type (Kubernetes' field error
    /// format, as Argo reports it).
    #[error("{field}: Invalid value: {object:?}: {detail}")]
    Invalid {
        /// The field path in the object, e.g. `spec.routes[0].httpRoute.action.weightedTargets`.
        field: String,
        /// The object's name.
        object: String,
        /// What is wrong (`not well-formed`, `No routes found`).
        detail: String,
    },
    /// A route named in `virtualService.routes` is not in the VirtualRouter.
    #[error(
        "route `{route}` named in spec.strategy.canary.trafficRouting.appMesh.virtualService.routes is not in VirtualRouter `{router}`"
    )]
    NoSuchRoute {
        /// The route name.
        route: String,
        /// The VirtualRouter's name.
        router: String,
    },
}

impl AppMeshError {
    fn into_plugin(self) -> PluginError {
        match self {
            Self::Config(_) | Self::Version(_) => PluginError::Config {
                plugin: NAME,
                message: self.to_string(),
            },
            _ => PluginError::Other {
                plugin: NAME,
                message: self.to_string(),
            },
        }
    }
}

rollouts_plugin::register_traffic_router!(TrafficRouterPlugin {
    name: NAME,
    summary: "AWS App Mesh VirtualRouter weights and VirtualNode pod selectors (appmesh.k8s.aws/v1beta2 by default)",
    build: |init| {
        let version = init
            .settings()
            .get_or(keys::APPMESH_CRD_VERSION, DEFAULT_VERSION)
            .to_string();
        Ok(Box::new(AppMeshRouter::new(init, &version)?))
    },
});

/// The App Mesh router for one Rollout.
pub struct AppMeshRouter {
    client: kube::Client,
    events: Arc<dyn EventSink>,
    config: AppMeshConfig,
}

impl std::fmt::Debug for AppMeshRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppMeshRouter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A VirtualRouter found through the VirtualService, or why it was not.
enum Lookup {
    Found(Value),
    Missing(AppMeshError, String),
}

impl AppMeshRouter {
    /// A router for `init.rollout` using App Mesh objects of `version` (the
    /// `--appmesh-crd-version` value).
    pub fn new(init: RouterInit<'_>, version: &str) -> Result<Self, PluginError> {
        let config = AppMeshConfig::from_rollout(init.rollout, version)
            .map_err(AppMeshError::into_plugin)?;
        Ok(Self {
            client: init.client,
            events: init.events,
            config,
        })
    }

    /// What the router resolved from the Rollout.
    pub fn config(&self) -> &AppMeshConfig {
        &self.config
    }

    fn api(&self, kind: &str, plural: &str, namespace: &str) -> Api<DynamicObject> {
        let resource = ApiResource {
            group: GROUP.into(),
            version: self.config.version.clone(),
            api_version: self.config.api_version(),
            kind: kind.into(),
            plural: plural.into(),
        };
        Api::namespaced_with(self.client.clone(), namespace, &resource)
    }

    async fn get(
        &self,
        kind: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, PluginError> {
        let found = self
            .api(kind, plural, namespace)
            .get_opt(name)
            .await
            .map_err(|source| PluginError::Kube {
                plugin: NAME,
                action: format!("getting {kind} `{namespace}/{name}`"),
                source,
            })?;
        found
            .map(|o| {
                serde_json::to_value(o).map_err(|e| PluginError::Other {
                    plugin: NAME,
                    message: format!("encoding a {kind} as JSON: {e}"),
                })
            })
            .transpose()
    }

    async fn patch(
        &self,
        kind: &str,
        plural: &str,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<(), PluginError> {
        self.api(kind, plural, namespace)
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|source| PluginError::Kube {
                plugin: NAME,
                action: format!("updating {kind} `{namespace}/{name}`"),
                source,
            })?;
        Ok(())
    }

    /// The VirtualRouter of the VirtualService, or what is missing (with the Warning event Argo
    /// emits for it, not sent here).
    async fn virtual_router(&self) -> Result<Lookup, PluginError> {
        let cfg = &self.config;
        let Some(service) = self
            .get(
                "VirtualService",
                "virtualservices",
                &cfg.namespace,
                &cfg.virtual_service,
            )
            .await?
        else {
            return Ok(Lookup::Missing(
                AppMeshError::VirtualServiceMissing,
                format!(
                    "VirtualService `{}` not found in namespace `{}`",
                    cfg.virtual_service, cfg.namespace
                ),
            ));
        };
        let (namespace, name) = router_ref(&service).map_err(AppMeshError::into_plugin)?;
        match self
            .get("VirtualRouter", "virtualrouters", &namespace, &name)
            .await?
        {
            Some(router) => Ok(Lookup::Found(router)),
            None => Ok(Lookup::Missing(
                AppMeshError::VirtualRouterMissing,
                format!(
                    "VirtualRouter for `{}` not found in namespace `{}`",
                    cfg.virtual_service, cfg.namespace
                ),
            )),
        }
    }

    async fn update_node(&self, node: &str, hash: &str) -> Result<(), PluginError> {
        let cfg = &self.config;
        let Some(current) = self
            .get("VirtualNode", "virtualnodes", &cfg.namespace, node)
            .await?
        else {
            self.events.emit(PluginEvent::warning(
                VIRTUAL_NODE_NOT_FOUND,
                format!(
                    "VirtualNode `{node}` not found in namespace `{}`",
                    cfg.namespace
                ),
            ));
            return Err(AppMeshError::VirtualNodeMissing.into_plugin());
        };
        let Some(patch) = hash_patch(cfg, &current, hash).map_err(AppMeshError::into_plugin)?
        else {
            tracing::debug!(namespace = %cfg.namespace, virtualnode = node, hash, "VirtualNode already selects the hash.");
            return Ok(());
        };
        tracing::info!(namespace = %cfg.namespace, virtualnode = node, hash, "Patching VirtualNode pod selector.");
        self.patch("VirtualNode", "virtualnodes", &cfg.namespace, node, &patch)
            .await
    }
}

#[async_trait]
impl TrafficRouter for AppMeshRouter {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn update_hash(
        &self,
        canary_hash: &str,
        stable_hash: &str,
        _additional: &[WeightDestination],
    ) -> Result<(), PluginError> {
        let (canary, stable) = node_hashes(canary_hash, stable_hash);
        self.update_node(&self.config.stable_node, stable).await?;
        self.update_node(&self.config.canary_node, canary).await
    }

    async fn set_weight(
        &self,
        desired_weight: i32,
        _additional: &[WeightDestination],
    ) -> Result<(), PluginError> {
        let router = match self.virtual_router().await? {
            Lookup::Found(router) => router,
            Lookup::Missing(error, message) => {
                let reason = match error {
                    AppMeshError::VirtualServiceMissing => VIRTUAL_SERVICE_NOT_FOUND,
                    _ => VIRTUAL_ROUTER_NOT_FOUND,
                };
                self.events.emit(PluginEvent::warning(reason, message));
                return Err(error.into_plugin());
            }
        };
        let namespace = router["metadata"]["namespace"]
            .as_str()
            .unwrap_or(&self.config.namespace)
            .to_string();
        let name = router["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some(patch) = weight_patch(&self.config, &router, desired_weight)
            .map_err(AppMeshError::into_plugin)?
        else {
            tracing::debug!(%namespace, virtualrouter = %name, "VirtualRouter already holds the desired weights.");
            return Ok(());
        };
        tracing::info!(%namespace, virtualrouter = %name, weight = desired_weight, "Patching VirtualRouter weights.");
        self.patch("VirtualRouter", "virtualrouters", &namespace, &name, &patch)
            .await
    }

    async fn verify_weight(
        &self,
        desired_weight: i32,
        _additional: &[WeightDestination],
    ) -> Result<WeightVerification, PluginError> {
        let router = match self.virtual_router().await {
            Ok(Lookup::Found(router)) => router,
            Ok(Lookup::Missing(error, message)) => {
                return Ok(WeightVerification::Mismatch {
                    observed: None,
                    detail: format!("{message}: {error}"),
                });
            }
            Err(PluginError::Other { message, .. }) => {
                return Ok(WeightVerification::Mismatch {
                    observed: None,
                    detail: format!(
                        "VirtualService `{}`: {message}",
                        self.config.virtual_service
                    ),
                });
            }
            Err(e) => return Err(e),
        };
        Ok(match mismatch(&self.config, &router, desired_weight) {
            None => WeightVerification::Verified,
            Some((observed, detail)) => WeightVerification::Mismatch { observed, detail },
        })
    }

    /// Argo's App Mesh router accepts header routes and does nothing.
    async fn set_header_route(&self, route: &SetHeaderRoute) -> Result<(), PluginError> {
        tracing::debug!(route = ?route.name, "App Mesh has no header routes: nothing to do.");
        Ok(())
    }

    /// Argo's App Mesh router accepts mirror routes and does nothing.
    async fn set_mirror_route(&self, route: &SetMirrorRoute) -> Result<(), PluginError> {
        tracing::debug!(route = ?route.name, "App Mesh has no mirror routes: nothing to do.");
        Ok(())
    }
}
