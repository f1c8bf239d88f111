//! The Gateway API traffic router, registered as `argoproj-labs/gatewayAPI`: backend weights,
//! header rules and mirror rules of [Gateway API](https://gateway-api.sigs.k8s.io/) HTTPRoutes
//! and GRPCRoutes (`gateway.networking.k8s.io/v1`).
//!
//! Argo Rollouts has this router only as an external RPC plugin (argoproj-labs'
//! rollouts-plugin-trafficrouter-gatewayapi); here it is built in, registered under the plugin's
//! name and configured by the plugin's block, so the same manifest selects and configures it:
//!
//! ```yaml
//! strategy:
//!   canary:
//!     canaryService: notifications-canary
//!     stableService: notifications-stable
//!     trafficRouting:
//!       managedRoutes: [{name: beta-testers}, {name: shadow}]
//!       plugins:
//!         argoproj-labs/gatewayAPI:
//!           httpRoute: notifications          # or httpRoutes: [{name, useHeaderRoutes, ruleName}]
//!           grpcRoute: notifications-rpc      # or grpcRoutes: [...]
//!           namespace: messaging              # default: the Rollout's namespace
//! ```
//!
//! - [`TrafficRouter::set_weight`]: in every rule with backendRefs to both Services (or the rule
//!   named by `ruleName`), the canary backendRef gets `w`, the stable one `100 − w − Σ
//!   experiments`, each experiment Service its weight; the label
//!   `rollouts.argoproj.io/gatewayapi-canary: in-progress` marks the route while `w > 0`.
//! - [`TrafficRouter::set_header_route`]: rules named after the step (`<name>`, `<name>-1`, ...)
//!   copying each weighted rule's matches with the step's headers added, routing to the canary
//!   only; removed when the step has no `match`. Only on routes with `useHeaderRoutes`.
//! - [`TrafficRouter::set_mirror_route`]: an HTTPRoute rule named after the step with the step's
//!   matches and a `RequestMirror` filter to the canary Service (`percent` = `percentage`).
//! - [`TrafficRouter::remove_managed_routes`]: removes every rule named after a `managedRoutes`
//!   entry.
//! - [`TrafficRouter::verify_weight`] reads every route back (the plugin always says "verified").
//!
//! Every write is a merge patch of `spec.rules` (and the label) carrying the route's
//! `resourceVersion`, sent only when something differs. See `docs/routers/gatewayapi.md`.

pub mod config;
mod rules;

use std::sync::Arc;

use async_trait::async_trait;
use kube::{
    Api,
    api::{ApiResource, DynamicObject, Patch, PatchParams},
};
use rollouts_api::{SetHeaderRoute, SetMirrorRoute, WeightDestination};
use rollouts_plugin::{
    EventSink, PluginError, RouterCapabilities, RouterInit, TrafficRouter, TrafficRouterPlugin,
    WeightVerification,
};
use serde_json::Value;

pub use config::{GatewayConfig, RouteKind, RouteRef};
pub use rules::{
    escape_regex, header_matches, header_rules, is_rule_of, mirror_match, mirror_rules, mismatch,
    rules_patch, stable_weight, weight_of, weight_patch, weighted, weighted_rules, without_managed,
};

/// The registry name: the plugin name Argo users write under `trafficRouting.plugins`.
pub const NAME: &str = "argoproj-labs/gatewayAPI";
/// The API group of the routes.
pub const GROUP: &str = "gateway.networking.k8s.io";
/// The version of the routes.
pub const VERSION: &str = "v1";

/// What can go wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GatewayError {
    /// The plugin block or the Rollout lacks something, or has a field this router does not
    /// support.
    #[error("{0}")]
    Config(String),
    /// A route lacks the rules or backendRefs the router needs.
    #[error("{0}")]
    Route(String),
    /// A header or mirror step cannot be expressed in Gateway API.
    #[error("{0}")]
    Step(String),
}

impl GatewayError {
    fn into_plugin(self) -> PluginError {
        match self {
            Self::Config(message) | Self::Step(message) => PluginError::Config {
                plugin: NAME,
                message,
            },
            Self::Route(message) => PluginError::Other {
                plugin: NAME,
                message,
            },
        }
    }
}

rollouts_plugin::register_traffic_router!(TrafficRouterPlugin {
    name: NAME,
    summary: "Gateway API HTTPRoute/GRPCRoute weights, header and mirror rules (gateway.networking.k8s.io/v1), built in",
    build: |init| Ok(Box::new(GatewayRouter::new(init)?)),
});

/// The Gateway API router for one Rollout.
pub struct GatewayRouter {
    client: kube::Client,
    // Kept for symmetry with the other routers; the plugin emits no events and neither does this
    // router (errors are returned, changes are logged).
    _events: Arc<dyn EventSink>,
    config: GatewayConfig,
}

impl std::fmt::Debug for GatewayRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayRouter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl GatewayRouter {
    /// A router for `init.rollout`.
    pub fn new(init: RouterInit<'_>) -> Result<Self, PluginError> {
        let config =
            GatewayConfig::from_rollout(init.rollout).map_err(GatewayError::into_plugin)?;
        Ok(Self {
            client: init.client,
            _events: init.events,
            config,
        })
    }

    /// What the router resolved from the Rollout.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    fn api(&self, kind: RouteKind) -> Api<DynamicObject> {
        let resource = ApiResource {
            group: GROUP.into(),
            version: VERSION.into(),
            api_version: format!("{GROUP}/{VERSION}"),
            kind: kind.kind().into(),
            plural: kind.plural().into(),
        };
        Api::namespaced_with(self.client.clone(), &self.config.namespace, &resource)
    }

    async fn get(&self, route: &RouteRef) -> Result<Option<Value>, PluginError> {
        let found = self
            .api(route.kind)
            .get_opt(&route.name)
            .await
            .map_err(|e| PluginError::Kube {
                plugin: NAME,
                action: format!("getting {}", route.describe()),
                source: e,
            })?;
        found
            .map(|o| {
                serde_json::to_value(o).map_err(|e| PluginError::Other {
                    plugin: NAME,
                    message: format!("encoding a route as JSON: {e}"),
                })
            })
            .transpose()
    }

    async fn must_get(&self, route: &RouteRef) -> Result<Value, PluginError> {
        self.get(route).await?.ok_or_else(|| PluginError::NotFound {
            plugin: NAME,
            object: route.describe(),
        })
    }

    async fn send(
        &self,
        route: &RouteRef,
        patch: Option<Value>,
        what: &str,
    ) -> Result<(), PluginError> {
        let Some(patch) = patch else {
            tracing::debug!(namespace = %self.config.namespace, route = %route.name, kind = route.kind.kind(), "Route already as wanted.");
            return Ok(());
        };
        tracing::info!(namespace = %self.config.namespace, route = %route.name, kind = route.kind.kind(), "{what}");
        self.api(route.kind)
            .patch(&route.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| PluginError::Kube {
                plugin: NAME,
                action: format!("updating {}", route.describe()),
                source: e,
            })
    }
}

#[async_trait]
impl TrafficRouter for GatewayRouter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> RouterCapabilities {
        RouterCapabilities {
            header_routes: true,
            mirror_routes: true,
        }
    }

    async fn set_weight(
        &self,
        desired_weight: i32,
        additional: &[WeightDestination],
    ) -> Result<(), PluginError> {
        for route in &self.config.routes {
            let current = self.must_get(route).await?;
            let patch = weight_patch(&self.config, route, &current, desired_weight, additional)
                .map_err(GatewayError::into_plugin)?;
            self.send(
                route,
                patch,
                &format!("Setting canary weight {desired_weight}."),
            )
            .await?;
        }
        Ok(())
    }

    async fn verify_weight(
        &self,
        desired_weight: i32,
        additional: &[WeightDestination],
    ) -> Result<WeightVerification, PluginError> {
        for route in &self.config.routes {
            let current = self.get(route).await?;
            if let Some((observed, detail)) = mismatch(
                &self.config,
                route,
                current.as_ref(),
                desired_weight,
                additional,
            ) {
                return Ok(WeightVerification::Mismatch { observed, detail });
            }
        }
        Ok(WeightVerification::Verified)
    }

    async fn set_header_route(&self, step: &SetHeaderRoute) -> Result<(), PluginError> {
        let name = step
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                GatewayError::Step("setHeaderRoute.name is required".into()).into_plugin()
            })?;
        if step.r#match.as_ref().is_some_and(Vec::is_empty) {
            return Err(GatewayError::Step(format!(
                "setHeaderRoute `{name}` has an empty match list (omit `match` to remove the route)"
            ))
            .into_plugin());
        }
        for route in self.config.routes.iter().filter(|r| r.use_header_routes) {
            let current = self.must_get(route).await?;
            let rules = header_rules(&self.config, route, &current, name, step)
                .map_err(GatewayError::into_plugin)?;
            self.send(
                route,
                rules_patch(&current, rules, None),
                &format!("Setting header rule `{name}`."),
            )
            .await?;
        }
        Ok(())
    }

    async fn set_mirror_route(&self, step: &SetMirrorRoute) -> Result<(), PluginError> {
        let name = step.name.as_str();
        if name.is_empty() {
            return Err(GatewayError::Step("setMirrorRoute.name is required".into()).into_plugin());
        }
        if step.r#match.as_ref().is_some_and(Vec::is_empty) {
            return Err(GatewayError::Step(format!(
                "setMirrorRoute `{name}` has an empty match list (omit `match` to remove the route)"
            ))
            .into_plugin());
        }
        for route in self
            .config
            .routes
            .iter()
            .filter(|r| r.use_header_routes && r.kind == RouteKind::Http)
        {
            let current = self.must_get(route).await?;
            let rules = mirror_rules(&self.config, route, &current, name, step)
                .map_err(GatewayError::into_plugin)?;
            self.send(
                route,
                rules_patch(&current, rules, None),
                &format!("Setting mirror rule `{name}`."),
            )
            .await?;
        }
        Ok(())
    }

    async fn remove_managed_routes(&self) -> Result<(), PluginError> {
        if self.config.managed_routes.is_empty() {
            return Ok(());
        }
        for route in &self.config.routes {
            let Some(current) = self.get(route).await? else {
                continue;
            };
            let rules = without_managed(&self.config, route, &current)
                .map_err(GatewayError::into_plugin)?;
            self.send(
                route,
                rules_patch(&current, rules, None),
                "Removing managed rules.",
            )
            .await?;
        }
        Ok(())
    }
}
