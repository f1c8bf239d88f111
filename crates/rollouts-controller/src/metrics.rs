//! Prometheus metrics with Argo Rollouts' names and labels (`argo-core.md` §3.2).
//!
//! Rendered in the text exposition format 0.0.4 by the `prometheus` crate, with names exactly as
//! Argo's client_golang writes them (no `_total` added to counters that Argo names without it):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `rollout_info` | gauge (1) | namespace, name, strategy, traffic_router, phase |
//! | `rollout_info_replicas_{available,unavailable,desired,updated}` | gauge | namespace, name |
//! | `rollout_phase` (deprecated) | gauge 0/1 | namespace, name, strategy, phase |
//! | `rollout_reconcile` | histogram (0.01, 0.15, .25, .5, 1) | namespace, name |
//! | `rollout_reconcile_error` | counter | namespace, name |
//! | `rollout_events_total` | counter | namespace, name, type, reason |
//! | `controller_clientset_k8s_request_total` | counter | kind, namespace, name, verb, status_code |
//! | `argo_rollouts_controller_info` | gauge (1) | version |
//! | `analysis_run_info` | gauge (1) | namespace, name, phase |
//! | `analysis_run_phase` (deprecated) | gauge 0/1 | namespace, name, phase |
//! | `analysis_run_metric_type` | gauge (1) | namespace, name, metric, type |
//! | `analysis_run_metric_phase` | gauge 0/1 | namespace, name, metric, type, dry_run, phase |
//! | `analysis_run_reconcile` | histogram (0.01, 0.15, .25, .5, 1) | namespace, name |
//! | `analysis_run_reconcile_error` | counter | namespace, name |
//! | `process_*` | process collector | |
//!
//! The `rollout_info*` and `analysis_run_*` gauges are computed at scrape time from the caches,
//! as Argo's collectors do, so a deleted object disappears from the metrics with its cache entry.

use std::sync::{Arc, RwLock};

use kube::{core::DeserializeGuard, runtime::reflector::Store};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
    core::{Collector, Desc},
    proto::MetricFamily,
};
use rollouts_api::{AnalysisRun, Rollout, RolloutStatus};
use rollouts_engine::analysis_run as analysis;

use crate::error::Result;

/// The controller's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `rollout_reconcile{namespace,name}`: seconds per reconciliation.
    pub reconcile: HistogramVec,
    /// `rollout_reconcile_error{namespace,name}`.
    pub reconcile_error: IntCounterVec,
    /// `rollout_events_total{namespace,name,type,reason}`.
    pub events: IntCounterVec,
    /// `controller_clientset_k8s_request_total{kind,namespace,name,verb,status_code}`.
    pub k8s_requests: IntCounterVec,
    /// `analysis_run_reconcile{namespace,name}`: seconds per reconciliation of an AnalysisRun.
    pub analysis_reconcile: HistogramVec,
    /// `analysis_run_reconcile_error{namespace,name}`.
    pub analysis_reconcile_error: IntCounterVec,
    /// `experiment_reconcile` (seconds, by namespace and name).
    pub experiment_reconcile: HistogramVec,
    /// `experiment_reconcile_error` (by namespace and name).
    pub experiment_reconcile_error: IntCounterVec,
    rollouts: RolloutSource,
    runs: RunSource,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Where the scrape-time collector finds the Rollouts: set once the controller runs (the
/// metrics server starts before leader election, with no cache yet).
type RolloutSource = Arc<RwLock<Option<Store<DeserializeGuard<Rollout>>>>>;

/// Where the scrape-time collector finds the AnalysisRuns (set once that controller runs).
type RunSource = Arc<RwLock<Option<Store<DeserializeGuard<AnalysisRun>>>>>;

impl Metrics {
    /// Registers every metric in a new registry; `version` labels `argo_rollouts_controller_info`.
    pub fn new(version: &str) -> Result<Self> {
        let registry = Registry::new();
        let nn = &["namespace", "name"];
        let reconcile = HistogramVec::new(
            HistogramOpts::new("rollout_reconcile", "Rollout reconciliation performance.")
                .buckets(vec![0.01, 0.15, 0.25, 0.5, 1.0]),
            nn,
        )?;
        let reconcile_error = IntCounterVec::new(
            Opts::new(
                "rollout_reconcile_error",
                "Error occurring during the rollout",
            ),
            nn,
        )?;
        let events = IntCounterVec::new(
            Opts::new("rollout_events_total", "Count of rollout events"),
            &["namespace", "name", "type", "reason"],
        )?;
        let k8s_requests = IntCounterVec::new(
            Opts::new(
                "k8s_request_total",
                "Number of kubernetes requests executed during application reconciliation.",
            )
            .namespace("controller_clientset"),
            &["kind", "namespace", "name", "verb", "status_code"],
        )?;
        let info = IntGauge::with_opts(
            Opts::new(
                "argo_rollouts_controller_info",
                "Running Argo-rollouts version",
            )
            .const_label("version", version),
        )?;
        info.set(1);
        let analysis_reconcile = HistogramVec::new(
            HistogramOpts::new(
                "analysis_run_reconcile",
                "Analysis Run reconciliation performance.",
            )
            .buckets(vec![0.01, 0.15, 0.25, 0.5, 1.0]),
            nn,
        )?;
        let analysis_reconcile_error = IntCounterVec::new(
            Opts::new(
                "analysis_run_reconcile_error",
                "Error occurring during the analysis run",
            ),
            nn,
        )?;
        let experiment_reconcile = HistogramVec::new(
            HistogramOpts::new(
                "experiment_reconcile",
                "Experiments reconciliation performance.",
            )
            .buckets(vec![0.01, 0.15, 0.25, 0.5, 1.0]),
            nn,
        )?;
        let experiment_reconcile_error = IntCounterVec::new(
            Opts::new(
                "experiment_reconcile_error",
                "Error occurring during the experiment",
            ),
            nn,
        )?;
        let rollouts: RolloutSource = Arc::default();
        let runs: RunSource = Arc::default();
        registry.register(Box::new(reconcile.clone()))?;
        registry.register(Box::new(reconcile_error.clone()))?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(k8s_requests.clone()))?;
        registry.register(Box::new(info))?;
        registry.register(Box::new(RolloutCollector::new(rollouts.clone())?))?;
        registry.register(Box::new(analysis_reconcile.clone()))?;
        registry.register(Box::new(analysis_reconcile_error.clone()))?;
        registry.register(Box::new(experiment_reconcile.clone()))?;
        registry.register(Box::new(experiment_reconcile_error.clone()))?;
        registry.register(Box::new(AnalysisRunCollector::new(runs.clone())?))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            registry,
            reconcile,
            reconcile_error,
            events,
            k8s_requests,
            analysis_reconcile,
            analysis_reconcile_error,
            experiment_reconcile,
            experiment_reconcile_error,
            rollouts,
            runs,
        })
    }

    /// Lets the scrape-time collector read the AnalysisRun cache.
    pub fn set_analysis_run_store(&self, store: Store<DeserializeGuard<AnalysisRun>>) {
        *self.runs.write().unwrap_or_else(|p| p.into_inner()) = Some(store);
    }

    /// Forgets the AnalysisRun cache (the controller stopped).
    pub fn clear_analysis_run_store(&self) {
        *self.runs.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Lets the scrape-time collector read the Rollout cache.
    pub fn set_rollout_store(&self, store: Store<DeserializeGuard<Rollout>>) {
        *self.rollouts.write().unwrap_or_else(|p| p.into_inner()) = Some(store);
    }

    /// Forgets the Rollout cache (the controller stopped).
    pub fn clear_rollout_store(&self) {
        *self.rollouts.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Renders every metric in the text format 0.0.4.
    pub fn render(&self) -> Result<String> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// The content type of [`Metrics::render`].
    pub fn content_type() -> &'static str {
        "text/plain; version=0.0.4; charset=utf-8"
    }
}

/// Argo's metric phase of a Rollout, from its Progressing and InvalidSpec conditions.
pub fn metric_phase(status: Option<&RolloutStatus>) -> &'static str {
    let conditions = status
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    if conditions.iter().any(|c| c.type_ == "InvalidSpec") {
        return "InvalidSpec";
    }
    match conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .map(|c| c.reason.as_str())
    {
        Some("NewReplicaSetAvailable") => "Completed",
        Some("RolloutPaused") => "Paused",
        Some("ReplicaSetCreateError") => "Error",
        Some("ProgressDeadlineExceeded") => "Timeout",
        Some("RolloutAborted") => "Abort",
        _ => "Progressing",
    }
}

/// `strategy` and `traffic_router` labels (Argo's order: the last router set wins).
pub fn strategy_labels(rollout: &Rollout) -> (&'static str, &'static str) {
    if rollout.spec.blue_green().is_some() {
        return ("blueGreen", "");
    }
    let Some(canary) = rollout.spec.canary() else {
        return ("none", "");
    };
    let mut router = "";
    if let Some(tr) = &canary.traffic_routing {
        for (set, name) in [
            (tr.alb.is_some(), "ALB"),
            (tr.ambassador.is_some(), "Ambassador"),
            (tr.istio.is_some(), "Istio"),
            (tr.nginx.is_some(), "Nginx"),
            (tr.smi.is_some(), "SMI"),
            (tr.app_mesh.is_some(), "AppMesh"),
        ] {
            if set {
                router = name;
            }
        }
    }
    ("canary", router)
}

/// Builds `rollout_info*` and `rollout_phase` from the cache at scrape time.
struct RolloutCollector {
    source: RolloutSource,
    descs: Vec<Desc>,
}

const INFO_LABELS: &[&str] = &["namespace", "name", "strategy", "traffic_router", "phase"];
const PHASE_LABELS: &[&str] = &["namespace", "name", "strategy", "phase"];
const NN: &[&str] = &["namespace", "name"];
const REPLICA_GAUGES: [(&str, &str); 4] = [
    (
        "rollout_info_replicas_available",
        "The number of available replicas per rollout.",
    ),
    (
        "rollout_info_replicas_unavailable",
        "The number of unavailable replicas per rollout.",
    ),
    (
        "rollout_info_replicas_desired",
        "The number of desired replicas per rollout.",
    ),
    (
        "rollout_info_replicas_updated",
        "The number of updated replicas per rollout.",
    ),
];
const PHASES: [&str; 6] = [
    "Completed",
    "Progressing",
    "Paused",
    "Timeout",
    "Error",
    "Abort",
];

impl RolloutCollector {
    fn new(source: RolloutSource) -> Result<Self> {
        let mut descs = Vec::new();
        for v in Self::vecs()? {
            descs.extend(v.desc().into_iter().cloned());
        }
        Ok(Self { source, descs })
    }

    /// Fresh, empty gauges: info, the four replica gauges, phase.
    fn vecs() -> Result<Vec<GaugeVec>> {
        let mut vecs = vec![GaugeVec::new(
            Opts::new("rollout_info", "Information about rollout."),
            INFO_LABELS,
        )?];
        for (name, help) in REPLICA_GAUGES {
            vecs.push(GaugeVec::new(Opts::new(name, help), NN)?);
        }
        vecs.push(GaugeVec::new(
            Opts::new(
                "rollout_phase",
                "Information on the state of the rollout (DEPRECATED - use rollout_info)",
            ),
            PHASE_LABELS,
        )?);
        Ok(vecs)
    }
}

impl Collector for RolloutCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Ok(vecs) = Self::vecs() else {
            return Vec::new();
        };
        let guard = self.source.read().unwrap_or_else(|p| p.into_inner());
        let Some(store) = guard.as_ref() else {
            return Vec::new();
        };
        for obj in store.state() {
            let meta = kube::Resource::meta(obj.as_ref());
            let ns = meta.namespace.as_deref().unwrap_or("");
            let name = meta.name.as_deref().unwrap_or("");
            let (strategy, router, phase, status, desired) = match &obj.0 {
                Ok(ro) => {
                    let (s, r) = strategy_labels(ro);
                    (
                        s,
                        r,
                        metric_phase(ro.status.as_ref()),
                        ro.status.clone().unwrap_or_default(),
                        ro.spec.replicas_or_default(),
                    )
                }
                Err(_) => ("none", "", "InvalidSpec", RolloutStatus::default(), 1),
            };
            vecs[0]
                .with_label_values(&[ns, name, strategy, router, phase])
                .set(1.0);
            let available = status.available_replicas.unwrap_or(0);
            let values = [
                available,
                status.replicas.unwrap_or(0) - available,
                desired,
                status.updated_replicas.unwrap_or(0),
            ];
            for (i, v) in values.into_iter().enumerate() {
                vecs[1 + i].with_label_values(&[ns, name]).set(f64::from(v));
            }
            for p in PHASES {
                vecs[5]
                    .with_label_values(&[ns, name, strategy, p])
                    .set(if p == phase { 1.0 } else { 0.0 });
            }
        }
        vecs.iter().flat_map(|v| v.collect()).collect()
    }
}

/// Builds the `analysis_run_*` gauges from the AnalysisRun cache at scrape time (Argo's
/// `analysisRunCollector`).
struct AnalysisRunCollector {
    source: RunSource,
    descs: Vec<Desc>,
}

const RUN_PHASES: [&str; 6] = [
    "Pending",
    "Error",
    "Failed",
    "Successful",
    "Running",
    "Inconclusive",
];

impl AnalysisRunCollector {
    fn new(source: RunSource) -> Result<Self> {
        let mut descs = Vec::new();
        for v in Self::vecs()? {
            descs.extend(v.desc().into_iter().cloned());
        }
        Ok(Self { source, descs })
    }

    /// Fresh, empty gauges: info, phase, metric type, metric phase.
    fn vecs() -> Result<Vec<GaugeVec>> {
        Ok(vec![
            GaugeVec::new(
                Opts::new("analysis_run_info", "Information about analysis run."),
                &["namespace", "name", "phase"],
            )?,
            GaugeVec::new(
                Opts::new(
                    "analysis_run_phase",
                    "Information on the state of the Analysis Run (DEPRECATED - use analysis_run_info)",
                ),
                &["namespace", "name", "phase"],
            )?,
            GaugeVec::new(
                Opts::new(
                    "analysis_run_metric_type",
                    "Information on the type of a specific metric in the Analysis Runs",
                ),
                &["namespace", "name", "metric", "type"],
            )?,
            GaugeVec::new(
                Opts::new(
                    "analysis_run_metric_phase",
                    "Information on the duration of a specific metric in the Analysis Run",
                ),
                &["namespace", "name", "metric", "type", "dry_run", "phase"],
            )?,
        ])
    }
}

/// A phase as the gauges count it: unset is Pending.
fn gauge_phase(phase: &str) -> &str {
    if phase.is_empty() { "Pending" } else { phase }
}

impl Collector for AnalysisRunCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Ok(vecs) = Self::vecs() else {
            return Vec::new();
        };
        let guard = self.source.read().unwrap_or_else(|p| p.into_inner());
        let Some(store) = guard.as_ref() else {
            return Vec::new();
        };
        for obj in store.state() {
            let Ok(run) = &obj.0 else { continue };
            let ns = run.metadata.namespace.as_deref().unwrap_or("");
            let name = run.metadata.name.as_deref().unwrap_or("");
            let status = run.status.clone().unwrap_or_default();
            vecs[0]
                .with_label_values(&[ns, name, status.phase.as_str()])
                .set(1.0);
            let phase = gauge_phase(&status.phase);
            for p in RUN_PHASES {
                vecs[1]
                    .with_label_values(&[ns, name, p])
                    .set(if p == phase { 1.0 } else { 0.0 });
            }
            let dry_run = analysis::dry_run_metrics(run, &run.spec.metrics).unwrap_or_default();
            for metric in &run.spec.metrics {
                let kind = analysis::provider_type(metric);
                vecs[2]
                    .with_label_values(&[ns, name, metric.name.as_str(), kind])
                    .set(1.0);
                let metric_phase = status
                    .metric_results
                    .iter()
                    .flatten()
                    .find(|r| r.name == metric.name)
                    .map_or("", |r| r.phase.as_str());
                let metric_phase = gauge_phase(metric_phase);
                let dry = if dry_run.contains(&metric.name) {
                    "true"
                } else {
                    "false"
                };
                for p in RUN_PHASES {
                    vecs[3]
                        .with_label_values(&[ns, name, metric.name.as_str(), kind, dry, p])
                        .set(if p == metric_phase { 1.0 } else { 0.0 });
                }
            }
        }
        vecs.iter().flat_map(|v| v.collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::{reflector, watcher};
    use rollouts_api::RolloutCondition;

    fn rollout(
        ns: &str,
        name: &str,
        spec: serde_json::Value,
        status: serde_json::Value,
    ) -> Rollout {
        rollouts_api::decode(&serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": name, "namespace": ns},
            "spec": spec, "status": status,
        }))
        .unwrap()
    }

    fn cond(type_: &str, reason: &str) -> RolloutCondition {
        let t = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH);
        RolloutCondition {
            type_: type_.into(),
            status: "True".into(),
            reason: reason.into(),
            message: String::new(),
            last_update_time: t.clone(),
            last_transition_time: t,
        }
    }

    #[test]
    fn phases_follow_the_progressing_reason() {
        let mut status = RolloutStatus::default();
        assert_eq!(metric_phase(None), "Progressing");
        status.conditions = Some(vec![cond("Progressing", "NewReplicaSetAvailable")]);
        assert_eq!(metric_phase(Some(&status)), "Completed");
        status.conditions = Some(vec![cond("Progressing", "RolloutAborted")]);
        assert_eq!(metric_phase(Some(&status)), "Abort");
        status.conditions = Some(vec![
            cond("Progressing", "RolloutPaused"),
            cond("InvalidSpec", "InvalidSpec"),
        ]);
        assert_eq!(metric_phase(Some(&status)), "InvalidSpec");
    }

    #[test]
    fn renders_argos_names_from_the_cache() {
        let metrics = Metrics::new("v1.2.3+test").unwrap();
        let (store, mut writer) = reflector::store::<DeserializeGuard<Rollout>>();
        let ro = rollout(
            "team",
            "web",
            serde_json::json!({"replicas": 5, "strategy": {"canary": {"trafficRouting": {"nginx": {"stableIngress": "web"}}}}}),
            serde_json::json!({"replicas": 6, "availableReplicas": 4, "updatedReplicas": 1,
                "conditions": [{"type": "Progressing", "status": "True", "reason": "RolloutPaused", "message": "", "lastUpdateTime": "2024-01-01T00:00:00Z", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}),
        );
        writer.apply_watcher_event(&watcher::Event::Apply(DeserializeGuard(Ok(ro))));
        metrics.set_rollout_store(store);
        metrics
            .reconcile
            .with_label_values(&["team", "web"])
            .observe(0.2);
        metrics
            .events
            .with_label_values(&["team", "web", "Normal", "RolloutUpdated"])
            .inc();
        metrics
            .k8s_requests
            .with_label_values(&["rollouts", "team", "web", "Get", "200"])
            .inc();
        metrics
            .reconcile_error
            .with_label_values(&["team", "web"])
            .inc();
        let text = metrics.render().unwrap();
        for line in [
            r#"rollout_info{name="web",namespace="team",phase="Paused",strategy="canary",traffic_router="Nginx"} 1"#,
            r#"rollout_info_replicas_available{name="web",namespace="team"} 4"#,
            r#"rollout_info_replicas_unavailable{name="web",namespace="team"} 2"#,
            r#"rollout_info_replicas_desired{name="web",namespace="team"} 5"#,
            r#"rollout_info_replicas_updated{name="web",namespace="team"} 1"#,
            r#"rollout_phase{name="web",namespace="team",phase="Paused",strategy="canary"} 1"#,
            r#"rollout_phase{name="web",namespace="team",phase="Completed",strategy="canary"} 0"#,
            r#"rollout_reconcile_bucket{name="web",namespace="team",le="0.25"} 1"#,
            r#"rollout_reconcile_count{name="web",namespace="team"} 1"#,
            r#"rollout_events_total{name="web",namespace="team",reason="RolloutUpdated",type="Normal"} 1"#,
            r#"controller_clientset_k8s_request_total{kind="rollouts",name="web",namespace="team",status_code="200",verb="Get"} 1"#,
            r#"argo_rollouts_controller_info{version="v1.2.3+test"} 1"#,
            "# TYPE rollout_reconcile_error counter",
            r#"rollout_reconcile_error{name="web",namespace="team"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        #[cfg(target_os = "linux")]
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
    }

    #[test]
    fn undecodable_rollouts_are_reported_as_invalid() {
        let metrics = Metrics::new("v").unwrap();
        let (store, mut writer) = reflector::store::<DeserializeGuard<Rollout>>();
        let bad: DeserializeGuard<Rollout> = serde_json::from_value(serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "bad", "namespace": "team"},
            "spec": {"replicas": "three"}
        }))
        .unwrap();
        assert!(bad.0.is_err());
        writer.apply_watcher_event(&watcher::Event::Apply(bad));
        metrics.set_rollout_store(store);
        let text = metrics.render().unwrap();
        assert!(
            text.contains(r#"rollout_info{name="bad",namespace="team",phase="InvalidSpec",strategy="none",traffic_router=""} 1"#),
            "{text}"
        );
        metrics.clear_rollout_store();
        assert!(!metrics.render().unwrap().contains("rollout_info{"));
    }

    #[test]
    fn analysis_runs_are_reported_from_the_cache() {
        let metrics = Metrics::new("v").unwrap();
        let (store, mut writer) = reflector::store::<DeserializeGuard<AnalysisRun>>();
        let run: DeserializeGuard<AnalysisRun> = serde_json::from_value(serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
            "metadata": {"name": "web-abc-2", "namespace": "team"},
            "spec": {"dryRun": [{"metricName": "lat.*"}], "metrics": [
                {"name": "rate", "provider": {"prometheus": {"query": "q"}}},
                {"name": "latency", "provider": {"web": {"url": "http://x"}}}
            ]},
            "status": {"phase": "Running", "metricResults": [{"name": "rate", "phase": "Successful"}]}
        }))
        .unwrap();
        writer.apply_watcher_event(&watcher::Event::Apply(run));
        metrics.set_analysis_run_store(store);
        metrics
            .analysis_reconcile
            .with_label_values(&["team", "web-abc-2"])
            .observe(0.02);
        metrics
            .analysis_reconcile_error
            .with_label_values(&["team", "web-abc-2"])
            .inc();
        let text = metrics.render().unwrap();
        for line in [
            r#"analysis_run_info{name="web-abc-2",namespace="team",phase="Running"} 1"#,
            r#"analysis_run_phase{name="web-abc-2",namespace="team",phase="Running"} 1"#,
            r#"analysis_run_phase{name="web-abc-2",namespace="team",phase="Failed"} 0"#,
            r#"analysis_run_metric_type{metric="rate",name="web-abc-2",namespace="team",type="Prometheus"} 1"#,
            r#"analysis_run_metric_type{metric="latency",name="web-abc-2",namespace="team",type="Web"} 1"#,
            r#"analysis_run_metric_phase{dry_run="false",metric="rate",name="web-abc-2",namespace="team",phase="Successful",type="Prometheus"} 1"#,
            r#"analysis_run_metric_phase{dry_run="true",metric="latency",name="web-abc-2",namespace="team",phase="Pending",type="Web"} 1"#,
            r#"analysis_run_reconcile_count{name="web-abc-2",namespace="team"} 1"#,
            r#"analysis_run_reconcile_error{name="web-abc-2",namespace="team"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        metrics.clear_analysis_run_store();
        assert!(!metrics.render().unwrap().contains("analysis_run_info{"));
    }
}
