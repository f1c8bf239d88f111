//! The `apisix` traffic router: backend weights of an
//! [Apache APISIX](https://apisix.apache.org/docs/ingress-controller/concepts/apisix_route/)
//! `ApisixRoute`, and header routes as owned copies of it.
//!
//! ```yaml
//! strategy:
//!   canary:
//!     canaryService: profile-canary
//!     stableService: profile-stable
//!     trafficRouting:
//!       managedRoutes: [{name: staff}]
//!       apisix:
//!         route:
//!           name: profile-route      # the ApisixRoute (apisix.apache.org/v2)
//!           rules: [profile-rule]    # its spec.http[] rules; default: [<route name>]
//! ```
//!
//! As in Argo:
//! - [`TrafficRouter::set_weight`] gives, in each named rule of the route, the canary backend
//!   the weight `w` and the stable backend `100 − w` (Warning `ApisixRouteUpdateError` when the
//!   write fails), with Argo's errors for a missing rule, backend or field;
//! - [`TrafficRouter::set_header_route`] works on a separate ApisixRoute named after the step:
//!   created as a copy of the main route controlled by the Rollout (canary backend at 100, stable
//!   backend removed, priority raised by one, `match.exprs` from the header matches), updated when
//!   it is ours, refused when it is not (``duplicate ApisixRoute [X] already exists``), deleted
//!   when the step has no `match`;
//! - [`TrafficRouter::remove_managed_routes`] deletes each `managedRoutes` ApisixRoute the
//!   Rollout controls.
//!
//! Unlike Argo, writes happen only when something differs and are merge patches of `spec.http`
//! guarded by the route's `resourceVersion` (Argo updates the whole object), a `prefix` header
//! match is escaped before it becomes a regular expression, and
//! [`TrafficRouter::verify_weight`] reads the weights back. See `docs/routers/apisix.md`.

mod route;

use std::sync::Arc;

use async_trait::async_trait;
use kube::{
    Api,
    api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams},
};
use rollouts_api::{SetHeaderRoute, WeightDestination};
use rollouts_plugin::{
    EventSink, PluginError, PluginEvent, RouterCapabilities, RouterInit, TrafficRouter,
    TrafficRouterPlugin, WeightVerification,
    objects::{self, controller_reference, is_controlled_by},
};
use serde_json::Value;

pub use route::{
    API_VERSION, ApisixConfig, escape_regex, header_exprs, header_http, header_patch, http_patch,
    mismatch, new_header_route, weight_of, weight_patch, weighted_http,
};

/// The registry name: the JSON key of the router block.
pub const NAME: &str = "apisix";

/// What can go wrong, with Argo's messages where Argo has one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApisixError {
    /// The Rollout lacks something the router needs.
    #[error("{0}")]
    Config(&'static str),
    /// The ApisixRoute lacks a rule, a backend or a field the router needs.
    #[error("{0}")]
    Route(String),
    /// The header route exists and is not controlled by the Rollout.
    #[error("duplicate ApisixRoute [{0}] already exists")]
    Duplicate(String),
    /// A `setHeaderRoute` step without a name, or with an empty `match` list.
    #[error("{0}")]
    Step(String),
}

impl ApisixError {
    fn into_plugin(self) -> PluginError {
        match self {
            Self::Config(_) | Self::Step(_) => PluginError::Config {
                plugin: NAME,
                message: self.to_string(),
            },
            Self::Route(_) | Self::Duplicate(_) => PluginError::Other {
                plugin: NAME,
                message: self.to_string(),
            },
        }
    }
}

rollouts_plugin::register_traffic_router!(TrafficRouterPlugin {
    name: NAME,
    summary: "Apache APISIX ApisixRoute backend weights and header routes (apisix.apache.org/v2)",
    build: |init| Ok(Box::new(ApisixRouter::new(init)?)),
});

/// The APISIX router for one Rollout.
pub struct ApisixRouter {
    client: kube::Client,
    events: Arc<dyn EventSink>,
    config: ApisixConfig,
    owner: Option<Value>,
}

impl std::fmt::Debug for ApisixRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApisixRouter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn kube_error(action: String, source: kube::Error) -> PluginError {
    PluginError::Kube {
        plugin: NAME,
        action,
        source,
    }
}

fn to_json(object: DynamicObject) -> Result<Value, PluginError> {
    serde_json::to_value(object).map_err(|e| PluginError::Other {
        plugin: NAME,
        message: format!("encoding an ApisixRoute as JSON: {e}"),
    })
}

impl ApisixRouter {
    /// A router for `init.rollout`.
    pub fn new(init: RouterInit<'_>) -> Result<Self, PluginError> {
        let config = ApisixConfig::from_rollout(init.rollout).map_err(ApisixError::into_plugin)?;
        Ok(Self {
            client: init.client,
            events: init.events,
            owner: controller_reference(init.rollout),
            config,
        })
    }

    /// What the router resolved from the Rollout.
    pub fn config(&self) -> &ApisixConfig {
        &self.config
    }

    fn api(&self) -> Api<DynamicObject> {
        let resource = ApiResource {
            group: "apisix.apache.org".into(),
            version: "v2".into(),
            api_version: API_VERSION.into(),
            kind: "ApisixRoute".into(),
            plural: "apisixroutes".into(),
        };
        Api::namespaced_with(self.client.clone(), &self.config.namespace, &resource)
    }

    async fn get(&self, name: &str) -> Result<Option<Value>, PluginError> {
        let found = self
            .api()
            .get_opt(name)
            .await
            .map_err(|e| kube_error(format!("getting ApisixRoute `{name}`"), e))?;
        found.map(to_json).transpose()
    }

    async fn main_route(&self) -> Result<Value, PluginError> {
        self.get(&self.config.route)
            .await?
            .ok_or_else(|| PluginError::NotFound {
                plugin: NAME,
                object: format!("ApisixRoute `{}`", self.config.route),
            })
    }

    fn owned(&self, route: &Value) -> bool {
        self.config
            .rollout_uid
            .as_deref()
            .is_some_and(|uid| is_controlled_by(route, uid))
    }

    async fn patch(&self, name: &str, patch: &Value) -> Result<(), kube::Error> {
        self.api()
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(|_| ())
    }

    async fn delete(&self, name: &str) -> Result<(), kube::Error> {
        match self.api().delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) if objects::status_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn warn(&self, reason: &str, message: String) {
        self.events.emit(PluginEvent::warning(reason, message));
    }
}

#[async_trait]
impl TrafficRouter for ApisixRouter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> RouterCapabilities {
        RouterCapabilities {
            header_routes: true,
            mirror_routes: false,
        }
    }

    async fn set_weight(
        &self,
        desired_weight: i32,
        _additional: &[WeightDestination],
    ) -> Result<(), PluginError> {
        let cfg = &self.config;
        let current = self.main_route().await?;
        let Some(patch) =
            weight_patch(cfg, &current, desired_weight).map_err(ApisixError::into_plugin)?
        else {
            tracing::debug!(namespace = %cfg.namespace, apisixroute = %cfg.route, "ApisixRoute already holds the desired weights.");
            return Ok(());
        };
        tracing::info!(namespace = %cfg.namespace, apisixroute = %cfg.route, weight = desired_weight, "Patching ApisixRoute weights.");
        if let Err(e) = self.patch(&cfg.route, &patch).await {
            self.warn(
                "ApisixRouteUpdateError",
                format!(
                    "Error updating apisix route {:?}: {}",
                    cfg.route,
                    objects::error_message(&e)
                ),
            );
            return Err(kube_error(
                format!("updating ApisixRoute `{}`", cfg.route),
                e,
            ));
        }
        Ok(())
    }

    async fn verify_weight(
        &self,
        desired_weight: i32,
        _additional: &[WeightDestination],
    ) -> Result<WeightVerification, PluginError> {
        let current = self.get(&self.config.route).await?;
        Ok(
            match mismatch(&self.config, current.as_ref(), desired_weight) {
                None => WeightVerification::Verified,
                Some((observed, detail)) => WeightVerification::Mismatch { observed, detail },
            },
        )
    }

    async fn set_header_route(&self, step: &SetHeaderRoute) -> Result<(), PluginError> {
        let cfg = &self.config;
        let name = step
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ApisixError::Step("setHeaderRoute.name is required".into()).into_plugin()
            })?;
        if step.r#match.as_ref().is_some_and(Vec::is_empty) {
            return Err(ApisixError::Step(format!(
                "setHeaderRoute `{name}` has an empty match list (omit `match` to remove the route)"
            ))
            .into_plugin());
        }
        // As in Argo, the main route must exist even to remove a header route.
        let main = self.main_route().await?;
        let existing = self.get(name).await?;
        if let Some(existing) = &existing
            && !self.owned(existing)
        {
            return Err(ApisixError::Duplicate(name.to_string()).into_plugin());
        }
        match (existing, step.r#match.is_some()) {
            (None, false) => Ok(()),
            (Some(_), false) => {
                tracing::info!(namespace = %cfg.namespace, apisixroute = name, "Deleting header route.");
                self.delete(name).await.map_err(|e| {
                    self.warn(
                        "ApisixRouteDeleteError",
                        format!(
                            "Error delete apisix route {name:?}: {}",
                            objects::error_message(&e)
                        ),
                    );
                    kube_error(format!("deleting ApisixRoute `{name}`"), e)
                })
            }
            (None, true) => {
                let route = new_header_route(cfg, &main, name, step, self.owner.clone())
                    .map_err(ApisixError::into_plugin)?;
                let object: DynamicObject =
                    serde_json::from_value(route).map_err(|e| PluginError::Other {
                        plugin: NAME,
                        message: format!("building ApisixRoute `{name}`: {e}"),
                    })?;
                tracing::info!(namespace = %cfg.namespace, apisixroute = name, "Creating header route.");
                match self.api().create(&PostParams::default(), &object).await {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        self.warn(
                            "ApisixRouteCreateError",
                            format!(
                                "Error create apisix route {name:?}: {}",
                                objects::error_message(&e)
                            ),
                        );
                        Err(kube_error(format!("creating ApisixRoute `{name}`"), e))
                    }
                }
            }
            (Some(existing), true) => {
                let Some(patch) =
                    header_patch(cfg, &existing, step).map_err(ApisixError::into_plugin)?
                else {
                    return Ok(());
                };
                tracing::info!(namespace = %cfg.namespace, apisixroute = name, "Updating header route.");
                self.patch(name, &patch).await.map_err(|e| {
                    self.warn(
                        "ApisixRouteUpdateError",
                        format!(
                            "Error update apisix route {name:?}: {}",
                            objects::error_message(&e)
                        ),
                    );
                    kube_error(format!("updating ApisixRoute `{name}`"), e)
                })
            }
        }
    }

    async fn remove_managed_routes(&self) -> Result<(), PluginError> {
        for name in &self.config.managed_routes {
            let Some(route) = self.get(name).await? else {
                continue;
            };
            if !self.owned(&route) {
                continue;
            }
            tracing::info!(namespace = %self.config.namespace, apisixroute = %name, "Deleting managed route.");
            self.delete(name).await.map_err(|e| {
                self.warn(
                    "ApisixRouteDeleteError",
                    format!(
                        "Error deleting apisix route {name:?}: {}",
                        objects::error_message(&e)
                    ),
                );
                kube_error(format!("deleting ApisixRoute `{name}`"), e)
            })?;
        }
        Ok(())
    }
}
