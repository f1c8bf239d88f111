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
    /// When memory of deleted Rollouts was last dropped.
    pruned: Option<Instant>,
}

/// How often the memory of deleted Rollouts is dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

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

    /// Drops what is remembered about Rollouts that are no longer cached (deleted), at most
    /// once a minute. Deleted Rollouts are never reconciled again, so nothing else would.
    pub fn prune_deleted(&self) {
        let keys: Vec<String> = {
            let mut m = self.memory();
            if m.pruned.is_some_and(|at| at.elapsed() < PRUNE_EVERY) {
                return;
            }
            m.pruned = Some(Instant::now());
            m.seen
                .iter()
                .chain(m.failures.keys())
                .chain(m.routers.keys())
                .chain(m.reasserted.keys())
                .chain(m.last_error.keys())
                .cloned()
                .collect()
        };
        for key in keys {
            let Some((ns, name)) = key.split_once('/') else {
                continue;
            };
            let cached = self
                .stores
                .rollouts
                .get(&ObjectRef::new(name).within(ns))
                .is_some();
            if !cached {
                self.forget(&key);
            }
        }
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

    #[tokio::test]
    async fn memory_of_deleted_rollouts_is_dropped() {
        let (client, _server) = testing::scripted(vec![]);
        let ctx = testing::context(client);
        assert!(ctx.first_sight("team/gone"));
        ctx.failed("team/gone");
        ctx.expectations
            .expect("team/gone", Kind::Rollout, "gone", Some("3"));
        ctx.prune_deleted();
        assert!(
            ctx.first_sight("team/gone"),
            "forgotten, so seen for the first time again"
        );
        assert_eq!(ctx.expectations.pending(), 0);
        // At most once a minute.
        ctx.failed("team/other");
        ctx.prune_deleted();
        assert_eq!(ctx.failed("team/other"), Duration::from_millis(2));
    }

    #[test]
    fn backoff_doubles_from_one_millisecond_to_ten_seconds() {
        assert_eq!(backoff(0), Duration::from_millis(1));
        assert_eq!(backoff(1), Duration::from_millis(2));
        assert_eq!(backoff(10), Duration::from_millis(1024));
        assert_eq!(backoff(14), Duration::from_secs(10));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(10));
    }
}

/// Test support: a context over a scripted API server.
#[cfg(test)]
pub(crate) mod testing {
    use http::{Method, Request, Response};
    use kube::{client::Body, runtime::reflector};
    use serde_json::Value;
    use tokio::task::JoinHandle;

    use super::*;

    /// One request the scripted server expects, and its answer.
    pub(crate) struct Exchange {
        pub method: Method,
        pub path: String,
        /// Checks the request body (JSON).
        pub check: Box<dyn Fn(&Value) + Send>,
        pub status: u16,
        pub reply: Value,
    }

    impl Exchange {
        pub fn new(method: Method, path: &str, status: u16, reply: Value) -> Self {
            Self {
                method,
                path: path.to_string(),
                check: Box::new(|_| {}),
                status,
                reply,
            }
        }

        pub fn checking(mut self, check: impl Fn(&Value) + Send + 'static) -> Self {
            self.check = Box::new(check);
            self
        }
    }

    /// A Kubernetes Status of `code`.
    pub fn status(code: u16, reason: &str) -> Value {
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "reason": reason, "code": code, "message": reason})
    }

    /// A client whose API server answers `script` in order (and fails the test on anything
    /// else), and the task to await at the end.
    pub fn scripted(script: Vec<Exchange>) -> (Client, JoinHandle<()>) {
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(async move {
            for ex in script {
                let (req, send) = handle
                    .next_request()
                    .await
                    .unwrap_or_else(|| panic!("expected {} {}", ex.method, ex.path));
                assert_eq!(req.method(), ex.method, "{}", req.uri());
                assert_eq!(req.uri().path(), ex.path);
                let body = req.into_body().collect_bytes().await.unwrap();
                if !body.is_empty() {
                    let v: Value = serde_json::from_slice(&body).unwrap();
                    (ex.check)(&v);
                }
                send.send_response(
                    Response::builder()
                        .status(ex.status)
                        .body(Body::from(serde_json::to_vec(&ex.reply).unwrap()))
                        .unwrap(),
                );
            }
        });
        (Client::new(svc, "default"), server)
    }

    /// A context with empty caches, the plugins linked into the test binary, and `client`.
    pub fn context(client: Client) -> Context {
        let metrics = Metrics::new("test").unwrap();
        let stores = Stores {
            rollouts: reflector::store().0,
            replica_sets: reflector::store().0,
            services: reflector::store().0,
            analysis_runs: reflector::store().0,
            experiments: reflector::store().0,
        };
        Context::new(
            client.clone(),
            Config {
                instance_id: String::new(),
                resync: Duration::from_secs(900),
                verify_retry_interval: Duration::from_secs(10),
                ephemeral_metadata_threads: 2,
                namespace: None,
            },
            stores,
            Registry::collect().unwrap(),
            Recorder::new(client, "test".into(), metrics.events.clone()),
            metrics,
        )
    }
}
