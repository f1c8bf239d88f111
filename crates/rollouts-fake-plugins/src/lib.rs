//! Dev-only plugins: a traffic router and a metric provider that live in memory.
//!
//! They register through the same [`rollouts_plugin`] registry as the real plugin crates, under
//! names that no real plugin uses, so tests of the registry, the controller and the CLI can exercise
//! the plugin machinery end to end without a mesh or a metrics server:
//!
//! - traffic router `rollouts-rs/fake`, configured in a Rollout as
//!   `trafficRouting: {plugins: {rollouts-rs/fake: {}}}`. It keeps the weights it was given in a
//!   process-wide table (see [`stored_weight`]); [`tamper_weight`] changes a stored weight behind the
//!   controller's back, and verification then reports the mismatch.
//! - metric provider `rollouts-rs/fake`, configured in a metric as
//!   `provider: {plugin: {rollouts-rs/fake: {values: [0.99, 0.5]}}}`. Measurement *n* returns
//!   `values[n]` (the last value repeats); a string value `"error: <text>"` produces an Error
//!   measurement with that text.
//!
//! Nobody but tests links this crate.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{LazyLock, Mutex},
};

use async_trait::async_trait;
use rollouts_api::{AnalysisRun, Rollout, SetHeaderRoute, SetMirrorRoute, WeightDestination};
use rollouts_plugin::{
    MeasureRequest, MetricProvider, MetricProviderPlugin, Observation, PluginError,
    RouterCapabilities, RouterInit, TrafficRouter, TrafficRouterPlugin, WeightVerification,
};

/// Registry name of both fakes.
pub const NAME: &str = "rollouts-rs/fake";

/// Everything the fake router was asked to do, per rollout (`namespace/name`), in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouterCall {
    /// `update_hash(canary, stable)`.
    UpdateHash {
        /// Canary pod-template hash.
        canary: String,
        /// Stable pod-template hash.
        stable: String,
    },
    /// `set_weight(weight)`.
    SetWeight(i32),
    /// `set_header_route(name)`.
    SetHeaderRoute(String),
    /// `set_mirror_route(name)`.
    SetMirrorRoute(String),
    /// `remove_managed_routes()`.
    RemoveManagedRoutes,
}

#[derive(Default)]
struct RouterState {
    weight: HashMap<String, i32>,
    calls: HashMap<String, Vec<RouterCall>>,
}

static ROUTER: LazyLock<Mutex<RouterState>> = LazyLock::new(Mutex::default);

fn router_state() -> std::sync::MutexGuard<'static, RouterState> {
    ROUTER.lock().unwrap_or_else(|p| p.into_inner())
}

/// The canary weight the fake router currently stores for `namespace/name`.
pub fn stored_weight(key: &str) -> Option<i32> {
    router_state().weight.get(key).copied()
}

/// Overwrites the stored weight, as someone editing the router's object by hand would.
pub fn tamper_weight(key: &str, weight: i32) {
    router_state().weight.insert(key.to_string(), weight);
}

/// The calls made on the fake router for `namespace/name`, oldest first.
pub fn router_calls(key: &str) -> Vec<RouterCall> {
    router_state().calls.get(key).cloned().unwrap_or_default()
}

fn key_of(rollout: &Rollout) -> String {
    format!(
        "{}/{}",
        rollout.metadata.namespace.as_deref().unwrap_or("default"),
        rollout.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The fake traffic router (see the crate docs).
#[derive(Debug)]
pub struct FakeRouter {
    key: String,
}

impl FakeRouter {
    fn record(&self, call: RouterCall) {
        router_state()
            .calls
            .entry(self.key.clone())
            .or_default()
            .push(call);
    }
}

#[async_trait]
impl TrafficRouter for FakeRouter {
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
        _additional: &[WeightDestination],
    ) -> Result<(), PluginError> {
        self.record(RouterCall::UpdateHash {
            canary: canary_hash.to_string(),
            stable: stable_hash.to_string(),
        });
        Ok(())
    }

    async fn set_weight(
        &self,
        desired_weight: i32,
        _additional: &[WeightDestination],
    ) -> Result<(), PluginError> {
        self.record(RouterCall::SetWeight(desired_weight));
        router_state()
            .weight
            .insert(self.key.clone(), desired_weight);
        Ok(())
    }

    async fn verify_weight(
        &self,
        desired_weight: i32,
        _additional: &[WeightDestination],
    ) -> Result<WeightVerification, PluginError> {
        match stored_weight(&self.key) {
            Some(w) if w == desired_weight => Ok(WeightVerification::Verified),
            observed => Ok(WeightVerification::Mismatch {
                observed,
                detail: format!(
                    "fake router holds {} for {}, want {desired_weight}",
                    observed.map_or("nothing".to_string(), |w| w.to_string()),
                    self.key
                ),
            }),
        }
    }

    async fn set_header_route(&self, route: &SetHeaderRoute) -> Result<(), PluginError> {
        self.record(RouterCall::SetHeaderRoute(
            route.name.clone().unwrap_or_default(),
        ));
        Ok(())
    }

    async fn set_mirror_route(&self, route: &SetMirrorRoute) -> Result<(), PluginError> {
        self.record(RouterCall::SetMirrorRoute(route.name.clone()));
        Ok(())
    }

    async fn remove_managed_routes(&self) -> Result<(), PluginError> {
        self.record(RouterCall::RemoveManagedRoutes);
        Ok(())
    }
}

fn build_router(init: RouterInit<'_>) -> Result<Box<dyn TrafficRouter>, PluginError> {
    let configured = init
        .rollout
        .spec
        .canary()
        .and_then(|c| c.traffic_routing.as_ref())
        .and_then(|t| t.plugins.as_ref())
        .is_some_and(|p| p.contains_key(NAME));
    if !configured {
        return Err(PluginError::Config {
            plugin: NAME,
            message: format!("spec.strategy.canary.trafficRouting.plugins.{NAME} is not set"),
        });
    }
    Ok(Box::new(FakeRouter {
        key: key_of(init.rollout),
    }))
}

rollouts_plugin::register_traffic_router!(TrafficRouterPlugin {
    name: NAME,
    summary: "in-memory router for tests",
    build: build_router,
});

/// The fake metric provider (see the crate docs).
#[derive(Debug)]
pub struct FakeProvider;

fn measurements_taken(run: &AnalysisRun, metric: &str) -> usize {
    run.status
        .as_ref()
        .and_then(|s| s.metric_results.as_ref())
        .and_then(|results| results.iter().find(|r| r.name == metric))
        .and_then(|r| r.measurements.as_ref())
        .map_or(0, Vec::len)
}

#[async_trait]
impl MetricProvider for FakeProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn run(&self, request: MeasureRequest<'_>) -> Observation {
        let config = request
            .metric
            .provider
            .plugin
            .as_ref()
            .and_then(|p| p.get(NAME));
        let Some(values) = config
            .and_then(|c| c.get("values"))
            .and_then(serde_json::Value::as_array)
            .filter(|v| !v.is_empty())
        else {
            return Observation::error(format!(
                "provider.plugin.{NAME}.values must be a non-empty list"
            ));
        };
        let n = measurements_taken(request.run, &request.metric.name);
        let value = values[n.min(values.len() - 1)].clone();
        if let Some(message) = value.as_str().and_then(|s| s.strip_prefix("error: ")) {
            return Observation::error(message);
        }
        Observation::Value {
            value: value.to_string(),
            result: value,
            metadata: BTreeMap::new(),
        }
    }
}

rollouts_plugin::register_metric_provider!(MetricProviderPlugin {
    name: NAME,
    summary: "scripted values for tests",
    build: |_init| Ok(Box::new(FakeProvider)),
});
