//! The AnalysisRun controller: measures the metrics of every AnalysisRun, decides its phase,
//! and writes its status, as Argo's analysis controller does (`argo-core.md` §2.16).
//!
//! One reflector watches the full AnalysisRuns of this instance (tolerant of objects that do not
//! decode); a second watches the Jobs labelled `analysisrun.argoproj.io/uid`, and a Job that
//! completed or failed wakes its run at once. One reconciliation ([`reconcile`]):
//!
//! 1. waits until the cache shows the status it wrote last (as the Rollout controller does);
//! 2. asks the engine for a plan ([`rollouts_engine::analysis_run::plan`]): a completed run is
//!    only deleted when its `ttlStrategy` says so; a run that cannot be measured ends in `Error`;
//! 3. resolves the arguments of the metrics due (Secrets and field references are read now,
//!    never stored), calls the providers concurrently ([`crate::measure`]), and lets the engine
//!    record and assess the measurements;
//! 4. garbage-collects old measurements through their providers (Jobs) and trims the status;
//! 5. writes the status as a JSON merge patch of the main resource (AnalysisRun has no status
//!    subresource), records the `Metric<Phase>` and `AnalysisRun<Phase>` Events on the run;
//! 6. sleeps until the next measurement is due (interval, initial delay, `resumeAt`, TTL), at
//!    most `--rollout-resync`.
//!
//! Secret values never reach the status, the Events or the log: measurements are redacted
//! before they are recorded, and resolved metrics are never logged.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::{batch::v1::Job, core::v1::ObjectReference};
use kube::{
    Api, Client, Resource,
    api::{ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams},
    core::{DeserializeGuard, error_boundary::InvalidObject},
    runtime::{
        Controller, WatchStreamExt,
        controller::{Action, Config as ControllerConfig},
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use rollouts_api::{AnalysisRun, AnalysisRunStatus, labels};
use rollouts_engine::{
    EventType,
    analysis_run::{self as engine, RunPlan},
};
use serde_json::json;
use tokio::sync::watch;

use crate::{
    context::backoff,
    controller::{instance_selector, scoped, shared_reflector},
    error::{Error, Result, code_of},
    events::Recorder,
    expectations::{Expectations, Kind, STALE_REQUEUE},
    measure::{Providers, resolve_args, take_measurements},
    metrics::Metrics,
    status::merge_diff,
};

type Guarded = DeserializeGuard<AnalysisRun>;

/// Settings of the AnalysisRun controller (from the flags).
#[derive(Clone, Debug)]
pub struct Config {
    /// `--instance-id`.
    pub instance_id: String,
    /// `--rollout-resync`: the longest a run sleeps between two looks.
    pub resync: Duration,
    /// `--namespaced`: the one namespace watched, or `None` for all.
    pub namespace: Option<String>,
}

/// What reconciliations of AnalysisRuns share.
pub struct AnalysisContext {
    /// The API client.
    pub client: Client,
    /// Settings.
    pub config: Config,
    /// The cached AnalysisRuns.
    pub runs: Store<Guarded>,
    /// The metric providers.
    pub providers: Providers,
    /// Kubernetes Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Metrics,
    /// Status writes the cache has to show before the next reconciliation.
    pub expectations: Expectations,
    failures: Mutex<HashMap<String, u32>>,
}

impl std::fmt::Debug for AnalysisContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalysisContext")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AnalysisContext {
    /// Assembles a context.
    pub fn new(
        client: Client,
        config: Config,
        runs: Store<Guarded>,
        providers: Providers,
        recorder: Recorder,
        metrics: Metrics,
    ) -> Self {
        Self {
            client,
            config,
            runs,
            providers,
            recorder,
            metrics,
            expectations: Expectations::default(),
            failures: Mutex::default(),
        }
    }

    fn failed(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = f.entry(key.to_string()).or_default();
        let wait = backoff(*n);
        *n = n.saturating_add(1);
        wait
    }

    fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    fn cached_resource_version(&self, namespace: &str, name: &str) -> Option<String> {
        self.runs
            .get(&ObjectRef::new(name).within(namespace))
            .and_then(|r| r.meta().resource_version.clone())
    }
}

/// `namespace/name`.
fn key_of(meta: &kube::api::ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// An `ObjectReference` to an AnalysisRun, for its Events.
pub fn run_reference(meta: &kube::api::ObjectMeta) -> ObjectReference {
    ObjectReference {
        api_version: Some(rollouts_api::API_VERSION.to_string()),
        kind: Some("AnalysisRun".to_string()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..ObjectReference::default()
    }
}

fn runs_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::erase::<AnalysisRun>(&()),
    )
}

/// Reconciles one AnalysisRun (see the module documentation).
#[tracing::instrument(skip_all, fields(analysisrun = %key_of(obj.meta())))]
pub async fn reconcile(obj: Arc<Guarded>, ctx: Arc<AnalysisContext>) -> Result<Action> {
    let meta = obj.meta().clone();
    let key = key_of(&meta);
    let started = Instant::now();
    let result = match &obj.0 {
        Ok(run) => reconcile_run(run, &ctx, &key).await,
        Err(invalid) => reconcile_undecodable(invalid, &ctx).await,
    };
    let elapsed = started.elapsed();
    ctx.metrics
        .analysis_reconcile
        .with_label_values(&[
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
        ])
        .observe(elapsed.as_secs_f64());
    if result.is_ok() {
        ctx.succeeded(&key);
        tracing::debug!(
            time_ms = elapsed.as_secs_f64() * 1e3,
            "Reconciliation completed."
        );
    }
    result
}

/// What happens after a failed reconciliation: count it, retry with per-run backoff.
pub fn error_policy(obj: Arc<Guarded>, err: &Error, ctx: Arc<AnalysisContext>) -> Action {
    let meta = obj.meta();
    let key = key_of(meta);
    ctx.metrics
        .analysis_reconcile_error
        .with_label_values(&[
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
        ])
        .inc();
    let wait = ctx.failed(&key);
    tracing::warn!(
        analysisrun = %key,
        category = err.category(),
        error = err as &dyn std::error::Error,
        retry_in_ms = wait.as_millis() as u64,
        "Reconciliation failed."
    );
    Action::requeue(wait)
}

async fn reconcile_run(run: &AnalysisRun, ctx: &AnalysisContext, key: &str) -> Result<Action> {
    if run.metadata.deletion_timestamp.is_some() {
        ctx.expectations.forget(key);
        return Ok(Action::await_change());
    }
    let ns = run.metadata.namespace.clone().unwrap_or_default();
    let name = run.metadata.name.clone().unwrap_or_default();
    if let Some(stale) = ctx
        .expectations
        .check(key, |_, n| ctx.cached_resource_version(&ns, n))
    {
        tracing::debug!(expected = %stale.expected, "Cache is older than our last write; looking again shortly.");
        return Ok(Action::requeue(STALE_REQUEUE));
    }
    let resync = ctx.config.resync;
    let now = Timestamp::now();
    let outcome = match engine::plan(run, now) {
        RunPlan::Completed { delete: true, .. } => {
            tracing::info!("Deleting the analysis run: its TTL has passed.");
            match runs_api(&ctx.client, &ns)
                .delete(&name, &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(e) if code_of(&e) == Some(404) => {}
                Err(e) => return Err(Error::kube(format!("deleting AnalysisRun {name:?}"), e)),
            }
            return Ok(Action::await_change());
        }
        RunPlan::Completed { requeue_after, .. } => {
            return Ok(
                requeue_after.map_or(Action::await_change(), |d| Action::requeue(d.min(resync)))
            );
        }
        RunPlan::Invalid(outcome) => {
            tracing::warn!(
                message = outcome.status.message.as_deref().unwrap_or_default(),
                "The analysis run cannot be measured."
            );
            outcome
        }
        RunPlan::Measure(measure) => {
            let results = if measure.tasks.is_empty() {
                Ok(Vec::new())
            } else {
                tracing::info!(count = measure.tasks.len(), "Taking measurements.");
                match resolve_args(&ctx.client, run).await {
                    Ok(args) => take_measurements(&ctx.providers, run, &measure, &args).await,
                    Err(e) => Err(e),
                }
            };
            match results {
                Err(message) => {
                    let message = format!("Unable to resolve metric arguments: {message}");
                    tracing::warn!(%message, "The analysis run cannot be measured.");
                    engine::errored(run, &message)
                }
                Ok(results) => {
                    let mut outcome = engine::finish(run, &measure, results, Timestamp::now());
                    collect_garbage(ctx, run, &measure, &mut outcome).await;
                    outcome
                }
            }
        }
    };
    let old = run.status.clone();
    write_status(ctx, run, key, old.as_ref(), &outcome.status).await?;
    if outcome.status.phase != old.as_ref().map(|s| s.phase.clone()).unwrap_or_default() {
        tracing::info!(phase = %outcome.status.phase, message = outcome.status.message.as_deref().unwrap_or_default(), "Analysis run phase changed.");
    }
    let reference = run_reference(&run.metadata);
    for ev in &outcome.events {
        ctx.recorder
            .publish(&reference, ev.type_, &ev.reason, &ev.message)
            .await;
    }
    let next = outcome.requeue_after.unwrap_or(resync).min(resync);
    Ok(Action::requeue(next))
}

/// Garbage collection of measurements beyond the retention limit: the provider deletes what it
/// keeps outside (Jobs), then the status keeps the newest ones. A provider error leaves that
/// metric's measurements for the next pass.
async fn collect_garbage(
    ctx: &AnalysisContext,
    run: &AnalysisRun,
    measure: &engine::Measure,
    outcome: &mut engine::Outcome,
) {
    for (metric_name, limit) in std::mem::take(&mut outcome.garbage) {
        let Some(metric) = measure.metrics.iter().find(|m| m.name == metric_name) else {
            continue;
        };
        let collected = match ctx.providers.for_metric(metric) {
            Ok(p) => p
                .garbage_collect(run, metric, limit)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match collected {
            Ok(()) => engine::trim_measurements(&mut outcome.status, &metric_name, limit),
            Err(error) => {
                tracing::warn!(metric = %metric_name, %error, "Failed to garbage collect measurements.")
            }
        }
    }
}

/// Writes `new` as a merge patch of `{"status": ...}` on the run when it differs from `old`.
async fn write_status(
    ctx: &AnalysisContext,
    run: &AnalysisRun,
    key: &str,
    old: Option<&AnalysisRunStatus>,
    new: &AnalysisRunStatus,
) -> Result<()> {
    let encode = |s: &AnalysisRunStatus| {
        serde_json::to_value(s).map_err(|source| Error::Json {
            what: "encoding the AnalysisRun status".into(),
            source,
        })
    };
    let old = match old {
        Some(s) => encode(s)?,
        None => json!({}),
    };
    let Some(diff) = merge_diff(&old, &encode(new)?) else {
        return Ok(());
    };
    let ns = run.metadata.namespace.clone().unwrap_or_default();
    let name = run.metadata.name.clone().unwrap_or_default();
    let patch = json!({ "status": diff });
    tracing::debug!(%patch, "Patching the AnalysisRun status.");
    match runs_api(&ctx.client, &ns)
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(updated) => {
            ctx.expectations.expect(
                key,
                Kind::AnalysisRun,
                &name,
                updated.metadata.resource_version.as_deref(),
            );
            Ok(())
        }
        // Deleted meanwhile: nothing left to write.
        Err(e) if code_of(&e) == Some(404) => Ok(()),
        Err(e) => Err(Error::kube(
            format!("patching the status of AnalysisRun {name:?}"),
            e,
        )),
    }
}

/// A run that does not decode: it ends in `Error`, with the decoder's message naming the field.
async fn reconcile_undecodable(invalid: &InvalidObject, ctx: &AnalysisContext) -> Result<Action> {
    let meta = &invalid.metadata;
    let ns = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    let api = runs_api(&ctx.client, &ns);
    let Some(raw) = api
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube(format!("reading AnalysisRun {name:?}"), e))?
    else {
        return Ok(Action::await_change());
    };
    let value = serde_json::to_value(&raw).map_err(|source| Error::Json {
        what: format!("reading AnalysisRun {name:?}"),
        source,
    })?;
    if rollouts_engine::analysis::is_completed(value["status"]["phase"].as_str().unwrap_or("")) {
        return Ok(Action::await_change());
    }
    let error = match rollouts_api::decode::<AnalysisRun>(&value) {
        Err(e) => e.to_string(),
        Ok(_) => invalid.error.clone(),
    };
    let message = format!("Analysis spec invalid: {error}");
    tracing::warn!(%message, "The analysis run cannot be decoded.");
    let patch = json!({"status": {"phase": "Error", "message": message}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::kube(format!("patching the status of AnalysisRun {name:?}"), e))?;
    ctx.recorder
        .publish(
            &run_reference(meta),
            EventType::Warning,
            "AnalysisRunError",
            "Analysis Completed. Result: Error",
        )
        .await;
    Ok(Action::await_change())
}

/// The AnalysisRun a finished Job belongs to (Argo's `enqueueJobIfCompleted`): its controller
/// owner reference, or the run's uid label and name/namespace annotations when the Job lives
/// elsewhere. Jobs still running wake nothing.
pub fn run_for_job(job: &Job) -> Option<ObjectRef<Guarded>> {
    let done = job
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .any(|c| matches!(c.type_.as_str(), "Complete" | "Failed"));
    if !done {
        return None;
    }
    let annotations = job.metadata.annotations.clone().unwrap_or_default();
    let namespace = annotations
        .get(labels::ANALYSIS_RUN_NAMESPACE)
        .filter(|n| !n.is_empty())
        .cloned()
        .or_else(|| job.metadata.namespace.clone())
        .unwrap_or_default();
    let owner = job
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    let name = match owner {
        Some(o) if o.kind == "AnalysisRun" => o.name.clone(),
        Some(_) => return None,
        None => {
            let has_uid = job.metadata.labels.as_ref().is_some_and(|l| {
                l.get(labels::ANALYSIS_RUN_UID)
                    .is_some_and(|u| !u.is_empty())
            });
            if !has_uid {
                return None;
            }
            annotations.get(labels::ANALYSIS_RUN_NAME)?.clone()
        }
    };
    Some(ObjectRef::new(&name).within(&namespace))
}

/// Runs the AnalysisRun controller until `stop` turns true (then drains in-flight
/// reconciliations and returns).
pub async fn run(
    client: Client,
    config: Config,
    providers: Providers,
    recorder: Recorder,
    metrics: Metrics,
    threads: u16,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let ns = config.namespace.clone();
    let instance = instance_selector(&config.instance_id);
    let (runs, run_events, run_task) = shared_reflector(
        scoped::<Guarded>(&client, ns.as_deref()),
        watcher::Config::default().labels(&instance),
        "AnalysisRun",
    );
    if let Err(err) = probe_crd(&client, ns.as_deref()).await {
        run_task.abort();
        return Err(err);
    }
    tokio::select! {
        _ = runs.wait_until_ready() => {}
        _ = stop.wait_for(|s| *s) => {
            run_task.abort();
            return Ok(());
        }
    }
    tracing::info!(
        analysis_runs = runs.len(),
        "Caches are ready; starting the AnalysisRun controller."
    );
    metrics.set_analysis_run_store(runs.clone());
    let jobs = watcher(
        scoped::<Job>(&client, ns.as_deref()),
        watcher::Config::default().labels(labels::ANALYSIS_RUN_UID),
    )
    .default_backoff()
    .touched_objects();
    let ctx = Arc::new(AnalysisContext::new(
        client,
        config,
        runs.clone(),
        providers,
        recorder,
        metrics.clone(),
    ));
    let mut shutdown = stop.clone();
    Controller::for_shared_stream(run_events, runs)
        .watches_stream(jobs, |job: Job| run_for_job(&job))
        .with_config(ControllerConfig::default().concurrency(threads.max(1)))
        .graceful_shutdown_on(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(error = &err as &dyn std::error::Error, "Controller event.");
            }
        })
        .await;
    metrics.clear_analysis_run_store();
    run_task.abort();
    tracing::info!("The AnalysisRun controller stopped.");
    Ok(())
}

/// Checks that the AnalysisRun CRD is served.
async fn probe_crd(client: &Client, ns: Option<&str>) -> Result<()> {
    let resource = ApiResource::erase::<AnalysisRun>(&());
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(source) if code_of(&source) == Some(404) => Err(Error::CrdMissing {
            kind: "AnalysisRun",
            plural: "analysisruns",
            source,
        }),
        Err(err) => {
            tracing::warn!(
                error = &err as &dyn std::error::Error,
                "Could not check that the AnalysisRun CRD is installed."
            );
            Ok(())
        }
    }
}

/// The JSON of a status write, for tests.
#[cfg(test)]
fn status_patch(
    old: Option<&AnalysisRunStatus>,
    new: &AnalysisRunStatus,
) -> Option<serde_json::Value> {
    let old = old.map_or(json!({}), |s| serde_json::to_value(s).unwrap_or_default());
    merge_diff(&old, &serde_json::to_value(new).unwrap_or_default()).map(|d| json!({"status": d}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(value: serde_json::Value) -> Job {
        serde_json::from_value(value).expect("job decodes")
    }

    #[test]
    fn finished_jobs_wake_their_run() {
        let owned = job(json!({
            "metadata": {"name": "u.m.1", "namespace": "team",
                "labels": {"analysisrun.argoproj.io/uid": "u"},
                "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun", "name": "web-abc-2", "uid": "u", "controller": true}]},
            "status": {"conditions": [{"type": "Complete", "status": "True"}]}
        }));
        let r = run_for_job(&owned).expect("wakes");
        assert_eq!(
            (r.name.as_str(), r.namespace.as_deref()),
            ("web-abc-2", Some("team"))
        );
        let mut running = owned.clone();
        running.status = None;
        assert!(
            run_for_job(&running).is_none(),
            "a running Job wakes nothing"
        );
        let elsewhere = job(json!({
            "metadata": {"name": "u.m.1", "namespace": "jobs",
                "labels": {"analysisrun.argoproj.io/uid": "u"},
                "annotations": {"analysisrun.argoproj.io/name": "web-abc-2", "analysisrun.argoproj.io/namespace": "team"}},
            "status": {"conditions": [{"type": "Failed", "status": "True"}]}
        }));
        let r = run_for_job(&elsewhere).expect("wakes");
        assert_eq!(
            (r.name.as_str(), r.namespace.as_deref()),
            ("web-abc-2", Some("team"))
        );
        let foreign = job(json!({
            "metadata": {"name": "x", "namespace": "team",
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "c", "uid": "c", "controller": true}]},
            "status": {"conditions": [{"type": "Complete", "status": "True"}]}
        }));
        assert!(run_for_job(&foreign).is_none());
    }

    #[test]
    fn status_writes_are_merge_patches_of_what_changed() {
        let old: AnalysisRunStatus = serde_json::from_value(json!({
            "phase": "Running", "startedAt": "2024-01-01T00:00:00Z",
            "metricResults": [{"name": "m", "phase": "Running", "count": 1, "successful": 1,
                "measurements": [{"phase": "Successful", "value": "1"}]}]
        }))
        .expect("status");
        assert_eq!(status_patch(Some(&old), &old), None);
        let mut new = old.clone();
        new.phase = "Successful".into();
        new.completed_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Timestamp::from_second(1_704_067_260).expect("valid"),
        ));
        assert_eq!(
            status_patch(Some(&old), &new),
            Some(json!({"status": {"phase": "Successful", "completedAt": "2024-01-01T00:01:00Z"}}))
        );
        assert_eq!(
            status_patch(None, &new)
                .and_then(|p| p["status"]["metricResults"][0]["count"].as_i64()),
            Some(1)
        );
    }

    #[test]
    fn run_events_refer_to_the_analysis_run() {
        let meta = kube::api::ObjectMeta {
            name: Some("r".into()),
            namespace: Some("team".into()),
            uid: Some("u".into()),
            ..Default::default()
        };
        let r = run_reference(&meta);
        assert_eq!(r.kind.as_deref(), Some("AnalysisRun"));
        assert_eq!(r.api_version.as_deref(), Some("argoproj.io/v1alpha1"));
        assert_eq!(r.uid.as_deref(), Some("u"));
    }

    #[tokio::test]
    async fn a_measurement_reads_the_secret_and_redacts_it_everywhere() {
        use crate::context::testing::{Exchange, scripted};
        use http::Method;
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "team"},
            "data": {"token": "aHVudGVyMg=="}});
        let run_path = "/apis/argoproj.io/v1alpha1/namespaces/team/analysisruns/r";
        let event_check = |reason: &'static str| {
            move |body: &serde_json::Value| {
                assert_eq!(body["reason"], reason);
                assert_eq!(body["involvedObject"]["kind"], "AnalysisRun");
                assert!(!body.to_string().contains("hunter2"), "{body}");
            }
        };
        let (client, server) = scripted(vec![
            Exchange::new(
                Method::GET,
                "/api/v1/namespaces/team/secrets/creds",
                200,
                secret,
            ),
            Exchange::new(
                Method::PATCH,
                run_path,
                200,
                json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
                    "metadata": {"name": "r", "namespace": "team", "resourceVersion": "7"},
                    "spec": {"metrics": []}}),
            )
            .checking(|body| {
                let status = &body["status"];
                assert_eq!(status["phase"], "Error", "{body}");
                let text = body.to_string();
                assert!(!text.contains("hunter2"), "the secret leaked: {text}");
                let message = status["metricResults"][0]["measurements"][0]["message"]
                    .as_str()
                    .unwrap_or_default();
                assert_eq!(message, "denied for *****");
                assert_eq!(
                    status["message"],
                    "Metric \"m\" assessed Error due to consecutiveErrors (1) > consecutiveErrorLimit (0): \"Error Message: denied for *****\""
                );
            }),
            Exchange::new(Method::POST, "/api/v1/namespaces/team/events", 201, json!({}))
                .checking(event_check("MetricError")),
            Exchange::new(Method::POST, "/api/v1/namespaces/team/events", 201, json!({}))
                .checking(event_check("AnalysisRunError")),
        ]);
        let metrics = Metrics::new("test").unwrap();
        let ctx = AnalysisContext::new(
            client.clone(),
            Config {
                instance_id: String::new(),
                resync: Duration::from_secs(900),
                namespace: None,
            },
            kube::runtime::reflector::store().0,
            Providers::new(
                rollouts_plugin::Registry::collect().unwrap(),
                rollouts_plugin::ProviderInit {
                    client: None,
                    controller_namespace: "argo-rollouts".into(),
                },
            ),
            Recorder::new(client, "test".into(), metrics.events.clone()),
            metrics,
        );
        let run: AnalysisRun = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
            "metadata": {"name": "r", "namespace": "team", "uid": "u"},
            "spec": {
                "args": [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
                "metrics": [{"name": "m", "consecutiveErrorLimit": 0,
                    "provider": {"plugin": {"rollouts-rs/fake": {"values": ["error: denied for {{args.token}}"]}}}}]
            }
        }))
        .unwrap();
        let action = reconcile_run(&run, &ctx, "team/r").await.unwrap();
        assert_eq!(action, Action::requeue(Duration::from_secs(900)));
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        // The next pass waits for the cache to show resourceVersion 7.
        let again = reconcile_run(&run, &ctx, "team/r").await.unwrap();
        assert_eq!(again, Action::requeue(STALE_REQUEUE));
    }
}
