//! Dev-only helpers for rollouts-rs tests: fixture builders and an in-memory simulator.
//!
//! - [`fixtures`]: builders for canary Rollouts (`RolloutBuilder::canary("web")...`);
//! - [`sim`]: a [`sim::World`] that plays the part of the Kubernetes API server, the ReplicaSet
//!   controller, the traffic routers and the AnalysisRun/Experiment controllers just enough for
//!   the engine: it builds snapshots, applies plans, creates and deletes pods, makes them
//!   available at a configurable pace, and advances a clock. It has no kube client.

pub mod fixtures;
pub mod sim;
