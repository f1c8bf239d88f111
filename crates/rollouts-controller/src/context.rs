//! The state shared by every reconciliation: client, caches, plugin registry, event recorder,
//! metrics, configuration, and the little memory the controller keeps between passes (write
//! expectations, router reports, error backoff).

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::{Duration, Instant},
};

use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Service};
use kube::{
    Client,
    core::DeserializeGuard,
    runtime::reflector::{ObjectRef, Store},
};
use rollouts_api::Rollout;
use rollouts_engine::RouterReport;
use rollouts_plugin::Registry;

use crate::{
    events::Recorder,
    expectations::{Expectations, Kind},
    metrics::Metrics,
    objects::{AnalysisRunSummary, ExperimentSummary},
};

/// Settings of the Rollout controller (from the flags).
#[derive(Clone, Debug)]
pub struct Config {
    /// `--instance-id`.
    pub instance_id: String,
    /// `--rollout-resync`: the safety-net requeue of every Rollout.
    pub resync: Duration,
    /// Requeue while a traffic weight is not verified (`ROLLOUT_VERIFY_RETRY_INTERVAL`).
    pub verify_retry_interval: Duration,
    /// `--ephemeral-metadata-threads`: pods patched in parallel.
    pub ephemeral_metadata_threads: usize,
    /// `--namespaced`: the one namespace watched, or `None` for all.
    pub namespace: Option<String>,
}

/// The caches the snapshot is built from.
#[derive(Clone)]
pub struct Stores {
    /// Rollouts (undecodable ones included, as errors).
    pub rollouts: Store<DeserializeGuard<Rollout>>,
    /// ReplicaSets with a `rollouts-pod-template-hash` label.
    pub replica_sets: Store<ReplicaSet>,
    /// Services.
    pub services: Store<Service>,
    /// AnalysisRuns (slim).
    pub analysis_runs: Store<AnalysisRunSummary>,
    /// Experiments (slim).
    pub experiments: Store<ExperimentSummary>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores")
            .field("rollouts", &self.rollouts.len())
            .field("replica_sets", &self.replica_sets.len())
            .field("services", &self.services.len())
            .finish_non_exhaustive()
    }
}

impl Stores {
    /// The cached resourceVersion of `kind` `namespace/name`.
    pub fn resource_version(&self, kind: Kind, namespace: &str, name: &str) -> Option<String> {
        fn rv<K: kube::Resource<DynamicType = ()> + Clone>(
            store: &Store<K>,
            ns: &str,
            name: &str,
        ) -> Option<String> {
            store
                .get(&ObjectRef::new(name).within(ns))
                .and_then(|o| o.meta().resource_version.clone())
        }
        match kind {
            Kind::Rollout => rv(&self.rollouts, namespace, name),
            Kind::ReplicaSet => rv(&self.replica_sets, namespace, name),
            Kind::Service => rv(&self.services, namespace, name),
            Kind::AnalysisRun => rv(&self.analysis_runs, namespace, name),
            Kind::Experiment => rv(&self.experiments, namespace, name),
        }
    }
}

/// Everything a reconciliation needs.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Settings.
    pub config: Config,
    /// The caches.
    pub stores: Stores,
    /// The plugins of this build.
    pub registry: Registry,
    /// Kubernetes Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Metrics,
    /// What we wrote and wait to see in the caches.
    pub expectations: Expectations,
    memory: Mutex<Memory>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What the controller remembers per Rollout (`namespace/name`) between reconciliations.
#[derive(Default)]
struct Memory {
    /// The last weight verification of each router.
    routers: HashMap<String, Vec<RouterReport>>,
    /// Consecutive failed reconciliations (for the backoff).
    failures: HashMap<String, u32>,
    /// The last error reported as an event (not repeated while it stays the same).
    last_error: HashMap<String, String>,
    /// Rollouts seen since this process started leading.
    seen: HashSet<String>,
    /// When traffic was last re-asserted to the routers.
    reasserted: HashMap<String, Instant>,
}

/// Per-item backoff after a failed reconciliation: 1 ms doubling up to 10 s (Argo's work
/// queue rate limiter).
pub fn backoff(failures: u32) -> Duration {
    let ms = 1u64.checked_shl(failures.min(20)).unwrap_or(u64::MAX);
    Duration::from_millis(ms).min(Duration::from_secs(10))
}

impl Context {
    /// Assembles a context.
    pub fn new(
        client: Client,
        config: Config,
        stores: Stores,
        registry: Registry,
        recorder: Recorder,
        metrics: Metrics,
    ) -> Self {
        Self {
            client,
            config,
            stores,
            registry,
            recorder,
            metrics,
            expectations: Expectations::default(),
            memory: Mutex::default(),
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The routers' last reports for a Rollout.
    pub fn router_reports(&self, key: &str) -> Vec<RouterReport> {
        self.memory().routers.get(key).cloned().unwrap_or_default()
    }

    /// Stores a router's report; returns whether it changed.
    pub fn set_router_report(&self, key: &str, report: RouterReport) -> bool {
        let mut m = self.memory();
        let list = m.routers.entry(key.to_string()).or_default();
        match list.iter_mut().find(|r| r.router == report.router) {
            Some(r) if *r == report => false,
            Some(r) => {
                *r = report;
                true
            }
            None => {
                list.push(report);
                true
            }
        }
    }

    /// Whether this is the first time this process looks at the Rollout.
    pub fn first_sight(&self, key: &str) -> bool {
        self.memory().seen.insert(key.to_string())
    }

    /// Whether traffic should be re-sent to the routers now (once per resync period).
    pub fn reassert_due(&self, key: &str) -> bool {
        let mut m = self.memory();
        let due = m
            .reasserted
            .get(key)
            .is_none_or(|at| at.elapsed() >= self.config.resync);
        if due {
            m.reasserted.insert(key.to_string(), Instant::now());
        }
        due
    }

    /// Records a failure; returns how long to wait before the next attempt.
    pub fn failed(&self, key: &str) -> Duration {
        let mut m = self.memory();
        let n = m.failures.entry(key.to_string()).or_default();
        let wait = backoff(*n);
        *n = n.saturating_add(1);
        wait
    }

    /// Records a success (resets the backoff and the last error).
    pub fn succeeded(&self, key: &str) {
        let mut m = self.memory();
        m.failures.remove(key);
        m.last_error.remove(key);
    }

    /// Whether `error` differs from the last error reported for the Rollout (and remembers it).
    pub fn new_error(&self, key: &str, error: &str) -> bool {
        let mut m = self.memory();
        if m.last_error.get(key).map(String::as_str) == Some(error) {
            return false;
        }
        m.last_error.insert(key.to_string(), error.to_string());
        true
    }

    /// Forgets a deleted Rollout.
    pub fn forget(&self, key: &str) {
        let mut m = self.memory();
        m.routers.remove(key);
        m.failures.remove(key);
        m.last_error.remove(key);
        m.seen.remove(key);
        m.reasserted.remove(key);
        drop(m);
        self.expectations.forget(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_millisecond_to_ten_seconds() {
        assert_eq!(backoff(0), Duration::from_millis(1));
        assert_eq!(backoff(1), Duration::from_millis(2));
        assert_eq!(backoff(10), Duration::from_millis(1024));
        assert_eq!(backoff(14), Duration::from_secs(10));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(10));
    }
}
