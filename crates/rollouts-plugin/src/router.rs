//! The traffic router contract.
//!
//! A router moves a share of requests to the canary by editing the objects of a mesh, an ingress
//! controller or a gateway (a VirtualService, a canary Ingress, a TrafficSplit, ...). The controller
//! builds one router per router block set in `spec.strategy.canary.trafficRouting`, on every
//! reconcile, and calls it in Argo's order: header and mirror routes, [`TrafficRouter::update_hash`],
//! [`TrafficRouter::set_weight`], then [`TrafficRouter::verify_weight`].
//!
//! Verification is where rollouts-rs is stricter than Argo: every router reads its objects back and
//! says whether they hold the desired weight, and the controller neither advances a step nor scales
//! the stable ReplicaSet down until all of them do.

use std::sync::Arc;

use async_trait::async_trait;
use rollouts_api::{Rollout, SetHeaderRoute, SetMirrorRoute, WeightDestination};

use crate::{EventSink, PluginError};

/// What a router is given to act for one rollout.
#[derive(Clone)]
pub struct RouterInit<'a> {
    /// A client for the cluster the rollout lives in.
    pub client: kube::Client,
    /// The rollout, as the controller sees it in this reconcile.
    pub rollout: &'a Rollout,
    /// Where to send Events about the objects the router changes.
    pub events: Arc<dyn EventSink>,
}

impl RouterInit<'_> {
    /// The router settings the host installed (controller flags such as `--istio-api-version`);
    /// see [`crate::settings`].
    pub fn settings(&self) -> &'static crate::RouterSettings {
        crate::router_settings()
    }
}

impl std::fmt::Debug for RouterInit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterInit")
            .field("rollout", &self.rollout.metadata.name)
            .finish_non_exhaustive()
    }
}

/// What a router can do beyond weights. Validation and the controller consult this instead of
/// calling an operation and interpreting [`PluginError::Unsupported`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouterCapabilities {
    /// `setHeaderRoute` steps.
    pub header_routes: bool,
    /// `setMirrorRoute` steps.
    pub mirror_routes: bool,
}

/// The outcome of reading a router's objects back after a weight change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeightVerification {
    /// Every object the router manages holds the desired weights.
    Verified,
    /// At least one object holds something else (edited behind our back, not yet reconciled by
    /// the mesh, or rejected). The controller keeps the rollout where it is and retries.
    Mismatch {
        /// The canary weight actually found, when there is a single meaningful number.
        observed: Option<i32>,
        /// Which object and field disagree, for the condition message and `why`.
        detail: String,
    },
}

/// A traffic router. Object-safe and async; every method is idempotent, because the controller
/// calls them again on every reconcile until the result is verified.
#[async_trait]
pub trait TrafficRouter: Send + Sync {
    /// The registry name (the JSON key of the router block), e.g. `istio`.
    fn name(&self) -> &'static str;

    /// Optional operations this router implements.
    fn capabilities(&self) -> RouterCapabilities {
        RouterCapabilities::default()
    }

    /// Points the router's canary and stable destinations at these pod-template hashes (for routers
    /// that select pods by hash, such as Istio DestinationRule subsets). Most routers select by
    /// Service and do nothing here (the default).
    async fn update_hash(
        &self,
        canary_hash: &str,
        stable_hash: &str,
        additional: &[WeightDestination],
    ) -> Result<(), PluginError> {
        let _ = (canary_hash, stable_hash, additional);
        Ok(())
    }

    /// Sends `desired_weight` percent (of `maxTrafficWeight`) to the canary, the `additional`
    /// destinations (experiment services) their weights, and the rest to the stable side.
    async fn set_weight(
        &self,
        desired_weight: i32,
        additional: &[WeightDestination],
    ) -> Result<(), PluginError>;

    /// Reads the router's objects back and reports whether they hold the desired weights.
    async fn verify_weight(
        &self,
        desired_weight: i32,
        additional: &[WeightDestination],
    ) -> Result<WeightVerification, PluginError>;

    /// Adds or (with no matches) removes the managed header route of a `setHeaderRoute` step.
    async fn set_header_route(&self, route: &SetHeaderRoute) -> Result<(), PluginError> {
        let _ = route;
        Err(PluginError::Unsupported {
            plugin: self.name(),
            operation: "header routes (setHeaderRoute)",
        })
    }

    /// Adds or (with no matches) removes the managed mirror route of a `setMirrorRoute` step.
    async fn set_mirror_route(&self, route: &SetMirrorRoute) -> Result<(), PluginError> {
        let _ = route;
        Err(PluginError::Unsupported {
            plugin: self.name(),
            operation: "mirror routes (setMirrorRoute)",
        })
    }

    /// Removes every route listed in `trafficRouting.managedRoutes` that this router added.
    async fn remove_managed_routes(&self) -> Result<(), PluginError> {
        Ok(())
    }

    /// Fields of the Rollout's `status` that this router owns, as a JSON object, read by the
    /// controller after the reconcile's router calls (after [`TrafficRouter::verify_weight`]).
    ///
    /// `None` (the default): the router has nothing to say, and the controller keeps those fields
    /// as they were. `Some({"key": value, ...})`: the controller sets `status.<key>` to `value`
    /// for each key, and removes `status.<key>` when `value` is `null`; keys not named are left
    /// alone. The ALB router uses it for `status.alb` and `status.albs`, which Argo's ALB
    /// reconciler records as it verifies target groups.
    fn router_status(&self) -> Option<serde_json::Value> {
        None
    }
}

/// A router's registration: its name and how to build it.
#[derive(Debug)]
pub struct TrafficRouterPlugin {
    /// The JSON key of the router block in `trafficRouting` (`istio`, `nginx`, ...).
    pub name: &'static str,
    /// One line for `--version` output and the startup log.
    pub summary: &'static str,
    /// Builds a router for one rollout; fails with [`PluginError::Config`] when its block is missing
    /// or invalid.
    pub build: fn(RouterInit<'_>) -> Result<Box<dyn TrafficRouter>, PluginError>,
}

inventory::collect!(TrafficRouterPlugin);
