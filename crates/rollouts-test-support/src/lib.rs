//! Dev-only helpers for rollouts-rs tests: fixture builders and an in-memory simulator.
//!
//! - [`fixtures`]: builders for canary and blue-green Rollouts
//!   (`RolloutBuilder::canary("web")...`, `RolloutBuilder::blue_green("web")...`);
//! - [`sim`]: a re-export of `rollouts_engine::sim`: a [`sim::World`] that plays the part of the
//!   Kubernetes API server, the ReplicaSet controller, the traffic routers and the
//!   AnalysisRun/Experiment controllers just enough for the engine: it builds snapshots,
//!   applies plans, creates and deletes pods, makes them available at a configurable pace, and
//!   advances a clock. It has no kube client. It lives in the engine because
//!   `rollouts_engine::simulate` (`kubectl argo rollouts plan`) runs on it.

pub mod fixtures;
pub mod sim;
