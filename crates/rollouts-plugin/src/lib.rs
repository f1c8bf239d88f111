//! The contract between rollouts-rs and its plugins: traffic routers and metric providers.
//!
//! A router or provider is a crate of its own (`rollouts-router-<name>`, `rollouts-metric-<name>`)
//! that depends on this crate and on `rollouts-api`, and on nothing else of ours. It implements
//! [`TrafficRouter`] or [`MetricProvider`] and registers a constructor with
//! [`register_traffic_router!`] or [`register_metric_provider!`]:
//!
//! ```
//! use async_trait::async_trait;
//! use rollouts_api::WeightDestination;
//! use rollouts_plugin::{PluginError, TrafficRouter, TrafficRouterPlugin, WeightVerification};
//!
//! struct Echo;
//!
//! #[async_trait]
//! impl TrafficRouter for Echo {
//!     fn name(&self) -> &'static str { "example.com/echo" }
//!     async fn update_hash(&self, _: &str, _: &str, _: &[WeightDestination]) -> Result<(), PluginError> {
//!         Ok(())
//!     }
//!     async fn set_weight(&self, _: i32, _: &[WeightDestination]) -> Result<(), PluginError> {
//!         Ok(())
//!     }
//!     async fn verify_weight(&self, _: i32, _: &[WeightDestination]) -> Result<WeightVerification, PluginError> {
//!         Ok(WeightVerification::Verified)
//!     }
//! }
//!
//! rollouts_plugin::register_traffic_router!(TrafficRouterPlugin {
//!     name: "example.com/echo",
//!     summary: "accepts every weight",
//!     build: |_init| Ok(Box::new(Echo)),
//! });
//!
//! fn main() {
//!     let registry = rollouts_plugin::Registry::collect().unwrap();
//!     assert_eq!(registry.router_names(), ["example.com/echo"]);
//! }
//! ```
//!
//! A Rust router registered under a plugin-style name (`org/name`) is what a Rollout selects with
//! `trafficRouting.plugins.<name>`, the same manifest that selects an RPC plugin in Argo; built-in
//! routers register under the JSON key of their block (`istio`, `nginx`, ...).
//!
//! The registrations are collected at link time with [`inventory`]; [`Registry::collect`] sorts them,
//! rejects duplicate names and answers "is `istio` in this build?". Which plugins a build contains is
//! decided by the Cargo features of the `rollouts-plugins` facade crate, which links each enabled
//! plugin crate (a crate nobody references is never linked, so its registration would vanish).
//!
//! Routers and providers know nothing of the controller: they receive what they need (a kube client,
//! the rollout or analysis run, an event sink) and return data. Measurements are returned as values,
//! and the strategy engine evaluates `successCondition`/`failureCondition`, so that logic exists once.

mod error;
mod events;
pub mod go;
#[cfg(feature = "http")]
pub mod http;
pub mod objects;
mod provider;
mod registry;
mod router;
pub mod settings;
mod time;

pub use error::{PluginError, PluginKind};
pub use events::{DiscardEvents, EventKind, EventSink, PluginEvent, RecordedEvents};
/// Re-exported so that the registration macros work without a direct `inventory` dependency.
pub use inventory;
pub use provider::{
    FloatResult, MeasureRequest, MetricProvider, MetricProviderPlugin, Observation, ProviderInit,
    Verdict,
};
pub use registry::Registry;
pub use router::{
    RouterCapabilities, RouterInit, TrafficRouter, TrafficRouterPlugin, WeightVerification,
};
pub use settings::{RouterSettings, install_router_settings, router_settings};
pub use time::{TimeEvaluator, evaluate_time, install_time_evaluator};

/// Registers a [`TrafficRouterPlugin`] with the registry of every binary that links this crate.
#[macro_export]
macro_rules! register_traffic_router {
    ($plugin:expr $(,)?) => {
        $crate::inventory::submit! { $plugin }
    };
}

/// Registers a [`MetricProviderPlugin`] with the registry of every binary that links this crate.
#[macro_export]
macro_rules! register_metric_provider {
    ($plugin:expr $(,)?) => {
        $crate::inventory::submit! { $plugin }
    };
}
