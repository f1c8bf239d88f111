//! The Experiment controller: runs the ReplicaSets, Services and AnalysisRuns of every
//! Experiment and decides its phase, as Argo's experiment controller does (`argo-core.md`
//! §1.11, §2.18). The decisions are the engine's ([`rollouts_engine::experiment::plan`]); this
//! module does the I/O around them.
//!
//! Reflectors watch the Experiments of this instance (tolerant of objects that do not decode),
//! the ReplicaSets carrying `rollouts-pod-template-hash`, Services and AnalysisRuns; a change
//! to a ReplicaSet, Service or AnalysisRun an Experiment controls wakes that Experiment. One
//! reconciliation ([`reconcile`]):
//!
//! 1. waits until the cache shows the writes of the previous pass;
//! 2. reads the (Cluster)AnalysisTemplates its analyses name, when a run is still to be
//!    verified or created;
//! 3. asks the engine for a plan and executes its effects in order (create ReplicaSets and
//!    Services, annotate `scale-down-deadline`, scale, delete Services, create AnalysisRuns with
//!    Argo's `.1`, `.2` collision names, terminate runs), stopping at the first error;
//! 4. writes the status as a JSON merge patch of the main resource (Experiment has no status
//!    subresource) and records the Events, `AnalysisRun<Phase>` also on the owning Rollout;
//! 5. looks again at the end of `duration`, a progress deadline or a scale-down deadline, at
//!    most after `--rollout-resync`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::{
    apps::v1::ReplicaSet,
    core::v1::{ObjectReference, Service},
};
use kube::{
    Api, Client, Resource,
    api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams},
    core::DeserializeGuard,
    runtime::{
        Controller,
        controller::{Action, Config as ControllerConfig},
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use rollouts_api::{
    AnalysisTemplate, AnalysisTemplateRef, ClusterAnalysisTemplate, Experiment, ExperimentStatus,
    labels,
};
use rollouts_engine::experiment::{self as engine, ExperimentEffect, ExperimentSnapshot};
use serde_json::json;
use tokio::sync::watch;

use crate::{
    context::backoff,
    controller::{instance_selector, scoped, shared_reflector},
    error::{Error, Result, code_of},
    events::Recorder,
    expectations::{Expectations, Kind, STALE_REQUEUE},
    metrics::Metrics,
    objects::AnalysisRunSummary,
    snapshot::{analysis_run_view, controlled_by},
    status::merge_diff,
};

type Guarded = DeserializeGuard<Experiment>;

/// Nested template references deeper than this are taken as a cycle.
const MAX_TEMPLATE_DEPTH: usize = 16;

/// Settings of the Experiment controller (from the flags).
#[derive(Clone, Debug)]
pub struct Config {
    /// `--instance-id`.
    pub instance_id: String,
    /// `--rollout-resync`: the longest an Experiment sleeps between two looks.
    pub resync: Duration,
    /// `--namespaced`: the one namespace watched, or `None` for all.
    pub namespace: Option<String>,
}

/// What reconciliations of Experiments share.
pub struct ExperimentContext {
    /// The API client.
    pub client: Client,
    /// Settings.
    pub config: Config,
    /// The cached Experiments.
    pub experiments: Store<Guarded>,
    /// The cached ReplicaSets (those with the pod-template-hash label).
    pub replica_sets: Store<ReplicaSet>,
    /// The cached Services.
    pub services: Store<Service>,
    /// The cached AnalysisRuns.
    pub runs: Store<AnalysisRunSummary>,
    /// Kubernetes Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Metrics,
    /// Writes the cache has to show before the next reconciliation.
    pub expectations: Expectations,
    failures: Mutex<HashMap<String, u32>>,
}

impl std::fmt::Debug for ExperimentContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExperimentContext")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ExperimentContext {
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

    fn cached_resource_version(&self, kind: Kind, namespace: &str, name: &str) -> Option<String> {
        let r = |m: &kube::api::ObjectMeta| m.resource_version.clone();
        match kind {
            Kind::Experiment => self
                .experiments
                .get(&ObjectRef::new(name).within(namespace))
                .and_then(|o| r(o.meta())),
            Kind::ReplicaSet => self
                .replica_sets
                .get(&ObjectRef::new(name).within(namespace))
                .and_then(|o| r(&o.metadata)),
            Kind::Service => self
                .services
                .get(&ObjectRef::new(name).within(namespace))
                .and_then(|o| r(&o.metadata)),
            Kind::AnalysisRun => self
                .runs
                .get(&ObjectRef::new(name).within(namespace))
                .and_then(|o| r(&o.metadata)),
            Kind::Rollout => None,
        }
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

/// An `ObjectReference` to an Experiment, for its Events.
pub fn experiment_reference(meta: &kube::api::ObjectMeta) -> ObjectReference {
    ObjectReference {
        api_version: Some(rollouts_api::API_VERSION.to_string()),
        kind: Some("Experiment".to_string()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..ObjectReference::default()
    }
}

fn experiments_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::erase::<Experiment>(&()),
    )
}

/// Reconciles one Experiment (see the module documentation).
#[tracing::instrument(skip_all, fields(experiment = %key_of(obj.meta())))]
pub async fn reconcile(obj: Arc<Guarded>, ctx: Arc<ExperimentContext>) -> Result<Action> {
    let meta = obj.meta().clone();
    let key = key_of(&meta);
    let started = Instant::now();
    let result = match &obj.0 {
        Ok(ex) => reconcile_experiment(ex, &ctx, &key).await,
        Err(invalid) => {
            tracing::warn!(error = %invalid.error, "The experiment does not decode; it is left alone.");
            Ok(Action::await_change())
        }
    };
    let elapsed = started.elapsed();
    ctx.metrics
        .experiment_reconcile
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

/// What happens after a failed reconciliation: count it, retry with per-experiment backoff.
pub fn error_policy(obj: Arc<Guarded>, err: &Error, ctx: Arc<ExperimentContext>) -> Action {
    let meta = obj.meta();
    let key = key_of(meta);
    ctx.metrics
        .experiment_reconcile_error
        .with_label_values(&[
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
        ])
        .inc();
    let wait = ctx.failed(&key);
    tracing::warn!(
        experiment = %key,
        category = err.category(),
        error = err as &dyn std::error::Error,
        retry_in_ms = wait.as_millis() as u64,
        "Reconciliation failed."
    );
    Action::requeue(wait)
}

/// Whether the analyses still need their templates (verification before availability, or a
/// run to create).
fn needs_templates(ex: &Experiment) -> bool {
    let status = ex.status.clone().unwrap_or_default();
    ex.spec.analyses.iter().flatten().any(|a| {
        let run = status
            .analysis_runs
            .iter()
            .flatten()
            .find(|r| r.name == a.name);
        run.is_none_or(|r| r.analysis_run.is_empty())
    })
}

/// Reads the templates the analyses name, with the templates they reference. A template that
/// does not exist is left out (the engine reports it).
async fn fetch_templates(
    client: &Client,
    namespace: &str,
    ex: &Experiment,
) -> Result<(Vec<AnalysisTemplate>, Vec<ClusterAnalysisTemplate>)> {
    let at: Api<AnalysisTemplate> = Api::namespaced(client.clone(), namespace);
    let cat: Api<ClusterAnalysisTemplate> = Api::all(client.clone());
    let mut todo: Vec<(AnalysisTemplateRef, usize)> = ex
        .spec
        .analyses
        .iter()
        .flatten()
        .map(|a| {
            (
                AnalysisTemplateRef {
                    template_name: Some(a.template_name.clone()),
                    cluster_scope: a.cluster_scope,
                },
                0,
            )
        })
        .collect();
    let (mut ts, mut cs): (Vec<AnalysisTemplate>, Vec<ClusterAnalysisTemplate>) = (vec![], vec![]);
    while let Some((r, depth)) = todo.pop() {
        let Some(name) = r.template_name.clone().filter(|n| !n.is_empty()) else {
            continue;
        };
        if depth > MAX_TEMPLATE_DEPTH {
            continue;
        }
        let nested = if r.cluster_scope == Some(true) {
            if cs.iter().any(|t| t.metadata.name.as_deref() == Some(&name)) {
                continue;
            }
            match cat.get_opt(&name).await {
                Ok(Some(t)) => {
                    let n = t.spec.templates.clone().unwrap_or_default();
                    cs.push(t);
                    n
                }
                Ok(None) => continue,
                Err(e) => {
                    return Err(Error::kube(
                        format!("reading ClusterAnalysisTemplate {name:?}"),
                        e,
                    ));
                }
            }
        } else {
            if ts.iter().any(|t| t.metadata.name.as_deref() == Some(&name)) {
                continue;
            }
            match at.get_opt(&name).await {
                Ok(Some(t)) => {
                    let n = t.spec.templates.clone().unwrap_or_default();
                    ts.push(t);
                    n
                }
                Ok(None) => continue,
                Err(e) => {
                    return Err(Error::kube(format!("reading AnalysisTemplate {name:?}"), e));
                }
            }
        };
        todo.extend(nested.into_iter().map(|n| (n, depth + 1)));
    }
    Ok((ts, cs))
}

async fn reconcile_experiment(
    ex: &Experiment,
    ctx: &ExperimentContext,
    key: &str,
) -> Result<Action> {
    if ex.metadata.deletion_timestamp.is_some() {
        ctx.expectations.forget(key);
        return Ok(Action::await_change());
    }
    let ns = ex.metadata.namespace.clone().unwrap_or_default();
    let name = ex.metadata.name.clone().unwrap_or_default();
    let uid = ex.metadata.uid.clone().unwrap_or_default();
    if let Some(stale) = ctx
        .expectations
        .check(key, |kind, n| ctx.cached_resource_version(kind, &ns, n))
    {
        tracing::debug!(object = %stale.object, expected = %stale.expected, "Cache is older than our last write; looking again shortly.");
        return Ok(Action::requeue(STALE_REQUEUE));
    }
    let in_ns = |m: &kube::api::ObjectMeta| m.namespace.as_deref() == Some(ns.as_str());
    let replica_sets: Vec<ReplicaSet> = ctx
        .replica_sets
        .state()
        .iter()
        .filter(|r| in_ns(&r.metadata) && controlled_by(&r.metadata, &uid))
        .map(|r| r.as_ref().clone())
        .collect();
    let services: Vec<Service> = ctx
        .services
        .state()
        .iter()
        .filter(|s| in_ns(&s.metadata) && controlled_by(&s.metadata, &uid))
        .map(|s| s.as_ref().clone())
        .collect();
    let analysis_runs = ctx
        .runs
        .state()
        .iter()
        .filter(|r| in_ns(&r.metadata) && controlled_by(&r.metadata, &uid))
        .map(|r| analysis_run_view(r))
        .collect();
    let (analysis_templates, cluster_analysis_templates) = if needs_templates(ex) {
        fetch_templates(&ctx.client, &ns, ex).await?
    } else {
        (Vec::new(), Vec::new())
    };
    let snapshot = ExperimentSnapshot {
        experiment: ex.clone(),
        replica_sets,
        services,
        analysis_runs,
        analysis_templates,
        cluster_analysis_templates,
        now: Timestamp::now(),
    };
    let mut plan = engine::plan(&snapshot).map_err(|e| Error::Experiment {
        experiment: key.to_string(),
        message: e.to_string(),
    })?;
    for effect in &plan.effects {
        execute(ctx, ex, key, effect, &mut plan.status).await?;
    }
    let old = ex.status.clone();
    write_status(ctx, ex, key, old.as_ref(), &plan.status).await?;
    let old_phase = old.and_then(|s| s.phase).unwrap_or_default();
    let new_phase = plan.status.phase.clone().unwrap_or_default();
    if old_phase != new_phase {
        tracing::info!(from = %old_phase, to = %new_phase, message = plan.status.message.as_deref().unwrap_or_default(), "Experiment phase changed.");
    }
    let reference = experiment_reference(&ex.metadata);
    for ev in &plan.events {
        ctx.recorder
            .publish(&reference, ev.type_, &ev.reason, &ev.message)
            .await;
    }
    for (rollout, ev) in &plan.rollout_events {
        let owner = ex
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.kind == "Rollout" && &o.name == rollout);
        let reference = ObjectReference {
            api_version: Some(rollouts_api::API_VERSION.to_string()),
            kind: Some("Rollout".to_string()),
            name: Some(rollout.clone()),
            namespace: Some(ns.clone()),
            uid: owner.map(|o| o.uid.clone()),
            ..ObjectReference::default()
        };
        ctx.recorder
            .publish(&reference, ev.type_, &ev.reason, &ev.message)
            .await;
    }
    let resync = ctx.config.resync;
    let next = plan.requeue_after.unwrap_or(resync).min(resync);
    tracing::debug!(%name, requeue_ms = next.as_millis() as u64, "Experiment reconciled.");
    Ok(Action::requeue(next))
}

/// Whether an existing object is the one this experiment meant for `template`.
fn owned_for(meta: &kube::api::ObjectMeta, ex: &Experiment, template: Option<&String>) -> bool {
    let uid = ex.metadata.uid.as_deref().unwrap_or_default();
    let ann = meta.annotations.clone().unwrap_or_default();
    controlled_by(meta, uid)
        && ann.get(labels::EXPERIMENT_NAME) == ex.metadata.name.as_ref()
        && ann.get(labels::EXPERIMENT_TEMPLATE_NAME) == template
}

async fn execute(
    ctx: &ExperimentContext,
    ex: &Experiment,
    key: &str,
    effect: &ExperimentEffect,
    status: &mut ExperimentStatus,
) -> Result<()> {
    let ns = ex.metadata.namespace.clone().unwrap_or_default();
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    let svc_api: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    let expect = |kind: Kind, name: &str, rv: Option<&str>| {
        ctx.expectations.expect(key, kind, name, rv);
    };
    match effect {
        ExperimentEffect::CreateReplicaSet(rs) => {
            let name = rs.metadata.name.clone().unwrap_or_default();
            match rs_api.create(&PostParams::default(), rs).await {
                Ok(created) => {
                    tracing::info!(replicaset = %name, "Created ReplicaSet.");
                    expect(
                        Kind::ReplicaSet,
                        &name,
                        created.metadata.resource_version.as_deref(),
                    );
                }
                Err(e) if code_of(&e) == Some(409) => {
                    let existing = rs_api
                        .get(&name)
                        .await
                        .map_err(|e| Error::kube(format!("reading ReplicaSet {name:?}"), e))?;
                    let template = rs
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(labels::EXPERIMENT_TEMPLATE_NAME));
                    if !owned_for(&existing.metadata, ex, template) {
                        return Err(Error::Experiment {
                            experiment: key.to_string(),
                            message: format!(
                                "ReplicaSet {name:?} already exists and is not owned by this experiment"
                            ),
                        });
                    }
                    tracing::warn!(replicaset = %name, "Claimed the existing ReplicaSet (stale cache).");
                }
                Err(e) => {
                    let message = format!("Failed to create new replica set {name:?}: {e}");
                    ctx.recorder
                        .publish(
                            &experiment_reference(&ex.metadata),
                            rollouts_engine::EventType::Normal,
                            "ReplicaSetCreateError",
                            &message,
                        )
                        .await;
                    return Err(Error::kube(format!("creating ReplicaSet {name:?}"), e));
                }
            }
        }
        ExperimentEffect::SetScaleDownDeadline { name, deadline } => {
            let patch =
                json!({"metadata": {"annotations": {labels::SCALE_DOWN_DEADLINE: deadline}}});
            let updated = rs_api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| Error::kube(format!("annotating ReplicaSet {name:?}"), e))?;
            tracing::info!(replicaset = %name, deadline = deadline.as_deref().unwrap_or("<removed>"), "Set the scale-down deadline.");
            expect(
                Kind::ReplicaSet,
                name,
                updated.metadata.resource_version.as_deref(),
            );
        }
        ExperimentEffect::ScaleReplicaSet { name, replicas } => {
            let patch = json!({"spec": {"replicas": replicas}});
            match rs_api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(updated) => {
                    tracing::info!(replicaset = %name, replicas, "Scaled ReplicaSet.");
                    expect(
                        Kind::ReplicaSet,
                        name,
                        updated.metadata.resource_version.as_deref(),
                    );
                }
                Err(e) => {
                    ctx.recorder
                        .publish(
                            &experiment_reference(&ex.metadata),
                            rollouts_engine::EventType::Warning,
                            "ReplicaSetUpdateError",
                            &format!("Failed to scale {name} to {replicas}: {e}"),
                        )
                        .await;
                    return Err(Error::kube(format!("scaling ReplicaSet {name:?}"), e));
                }
            }
        }
        ExperimentEffect::CreateService(svc) => {
            let name = svc.metadata.name.clone().unwrap_or_default();
            match svc_api.create(&PostParams::default(), svc).await {
                Ok(created) => {
                    tracing::info!(service = %name, "Created Service.");
                    expect(
                        Kind::Service,
                        &name,
                        created.metadata.resource_version.as_deref(),
                    );
                }
                Err(e) if code_of(&e) == Some(409) => {
                    let existing = svc_api
                        .get(&name)
                        .await
                        .map_err(|e| Error::kube(format!("reading Service {name:?}"), e))?;
                    let template = svc
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(labels::EXPERIMENT_TEMPLATE_NAME));
                    if !owned_for(&existing.metadata, ex, template) {
                        return Err(Error::Experiment {
                            experiment: key.to_string(),
                            message: format!(
                                "service {name} already exists and is not owned by experiment template {}",
                                template.map(String::as_str).unwrap_or_default()
                            ),
                        });
                    }
                }
                Err(e) => return Err(Error::kube(format!("creating Service {name:?}"), e)),
            }
        }
        ExperimentEffect::DeleteService { name } => {
            match svc_api.delete(name, &DeleteParams::default()).await {
                Ok(_) => tracing::info!(service = %name, "Deleted Service."),
                Err(e) if code_of(&e) == Some(404) => {}
                Err(e) => return Err(Error::kube(format!("deleting Service {name:?}"), e)),
            }
        }
        ExperimentEffect::CreateAnalysisRun { analysis, run } => {
            let value = serde_json::to_value(run.as_ref()).map_err(|source| Error::Json {
                what: format!("encoding AnalysisRun for analysis {analysis:?}"),
                source,
            })?;
            let uid = ex.metadata.uid.clone().unwrap_or_default();
            let (name, rv) = crate::analysis::create_run(&ctx.client, &ns, value, &uid).await?;
            tracing::info!(analysisrun = %name, %analysis, "Created AnalysisRun.");
            expect(Kind::AnalysisRun, &name, rv.as_deref());
            if let Some(entry) = status
                .analysis_runs
                .iter_mut()
                .flatten()
                .find(|r| &r.name == analysis)
            {
                entry.analysis_run = name;
            }
        }
        ExperimentEffect::TerminateAnalysisRun { name } => {
            let api: Api<DynamicObject> = Api::namespaced_with(
                ctx.client.clone(),
                &ns,
                &ApiResource::erase::<rollouts_api::AnalysisRun>(&()),
            );
            let patch = json!({"spec": {"terminate": true}});
            match api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(updated) => {
                    tracing::info!(analysisrun = %name, "Terminated AnalysisRun.");
                    expect(
                        Kind::AnalysisRun,
                        name,
                        updated.metadata.resource_version.as_deref(),
                    );
                }
                Err(e) if code_of(&e) == Some(404) => {}
                Err(e) => return Err(Error::kube(format!("terminating AnalysisRun {name:?}"), e)),
            }
        }
    }
    Ok(())
}

/// The merge patch of a status change (`None` when nothing changed).
pub fn status_patch(
    old: Option<&ExperimentStatus>,
    new: &ExperimentStatus,
) -> Result<Option<serde_json::Value>> {
    let encode = |s: &ExperimentStatus| {
        serde_json::to_value(s).map_err(|source| Error::Json {
            what: "encoding the Experiment status".into(),
            source,
        })
    };
    let old = match old {
        Some(s) => encode(s)?,
        None => json!({}),
    };
    Ok(merge_diff(&old, &encode(new)?).map(|d| json!({ "status": d })))
}

async fn write_status(
    ctx: &ExperimentContext,
    ex: &Experiment,
    key: &str,
    old: Option<&ExperimentStatus>,
    new: &ExperimentStatus,
) -> Result<()> {
    let Some(patch) = status_patch(old, new)? else {
        return Ok(());
    };
    let ns = ex.metadata.namespace.clone().unwrap_or_default();
    let name = ex.metadata.name.clone().unwrap_or_default();
    tracing::debug!(%patch, "Patching the Experiment status.");
    match experiments_api(&ctx.client, &ns)
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(updated) => {
            ctx.expectations.expect(
                key,
                Kind::Experiment,
                &name,
                updated.metadata.resource_version.as_deref(),
            );
            Ok(())
        }
        Err(e) if code_of(&e) == Some(404) => Ok(()),
        Err(e) => Err(Error::kube(
            format!("patching the status of Experiment {name:?}"),
            e,
        )),
    }
}

/// The Experiment that controls an object (its controller owner reference).
fn owning_experiment(meta: &kube::api::ObjectMeta) -> Option<ObjectRef<Guarded>> {
    let owner = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true) && o.kind == "Experiment")?;
    Some(ObjectRef::new(&owner.name).within(meta.namespace.as_deref().unwrap_or_default()))
}

/// Runs the Experiment controller until `stop` turns true (then drains in-flight
/// reconciliations and returns).
pub async fn run(
    client: Client,
    config: Config,
    recorder: Recorder,
    metrics: Metrics,
    threads: u16,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let ns = config.namespace.clone();
    let instance = instance_selector(&config.instance_id);
    let (experiments, ex_events, ex_task) = shared_reflector(
        scoped::<Guarded>(&client, ns.as_deref()),
        watcher::Config::default().labels(&instance),
        "Experiment",
    );
    let (replica_sets, rs_events, rs_task) = shared_reflector(
        scoped::<ReplicaSet>(&client, ns.as_deref()),
        watcher::Config::default().labels(labels::POD_TEMPLATE_HASH),
        "ReplicaSet",
    );
    let (services, svc_events, svc_task) = shared_reflector(
        scoped::<Service>(&client, ns.as_deref()),
        watcher::Config::default(),
        "Service",
    );
    let (runs, run_events, run_task) = shared_reflector(
        scoped::<AnalysisRunSummary>(&client, ns.as_deref()),
        watcher::Config::default().labels(&instance),
        "AnalysisRun",
    );
    let tasks = [ex_task, rs_task, svc_task, run_task];
    let stop_tasks = || {
        for t in &tasks {
            t.abort();
        }
    };
    let ready = async {
        let _ = experiments.wait_until_ready().await;
        let _ = replica_sets.wait_until_ready().await;
        let _ = services.wait_until_ready().await;
        let _ = runs.wait_until_ready().await;
    };
    tokio::select! {
        _ = ready => {}
        _ = stop.wait_for(|s| *s) => {
            stop_tasks();
            return Ok(());
        }
    }
    tracing::info!(
        experiments = experiments.len(),
        "Caches are ready; starting the Experiment controller."
    );
    let ctx = Arc::new(ExperimentContext {
        client,
        config,
        experiments: experiments.clone(),
        replica_sets,
        services,
        runs,
        recorder,
        metrics,
        expectations: Expectations::default(),
        failures: Mutex::default(),
    });
    let mut shutdown = stop.clone();
    Controller::for_shared_stream(ex_events, experiments)
        .watches_shared_stream(rs_events, |rs: Arc<ReplicaSet>| {
            owning_experiment(&rs.metadata)
        })
        .watches_shared_stream(svc_events, |svc: Arc<Service>| {
            owning_experiment(&svc.metadata)
        })
        .watches_shared_stream(run_events, |run: Arc<AnalysisRunSummary>| {
            owning_experiment(&run.metadata)
        })
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
    stop_tasks();
    tracing::info!("The Experiment controller stopped.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_objects_wake_their_experiment() {
        let meta: kube::api::ObjectMeta = serde_json::from_value(json!({
            "name": "ex-canary", "namespace": "team",
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
                "name": "ex", "uid": "u", "controller": true}]
        }))
        .expect("meta");
        let r = owning_experiment(&meta).expect("wakes");
        assert_eq!(
            (r.name.as_str(), r.namespace.as_deref()),
            ("ex", Some("team"))
        );
        let rollout_owned: kube::api::ObjectMeta = serde_json::from_value(json!({
            "name": "web-abc", "namespace": "team",
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                "name": "web", "uid": "r", "controller": true}]
        }))
        .expect("meta");
        assert!(owning_experiment(&rollout_owned).is_none());
    }

    #[test]
    fn status_writes_are_merge_patches_of_what_changed() {
        let old: ExperimentStatus = serde_json::from_value(json!({
            "phase": "Running", "availableAt": "2024-01-01T00:00:00Z",
            "templateStatuses": [{"name": "a", "status": "Running", "replicas": 1,
                "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}]
        }))
        .expect("status");
        assert_eq!(status_patch(Some(&old), &old).expect("encodes"), None);
        let mut new = old.clone();
        new.phase = Some("Successful".into());
        assert_eq!(
            status_patch(Some(&old), &new).expect("encodes"),
            Some(json!({"status": {"phase": "Successful"}}))
        );
        let first = status_patch(None, &new).expect("encodes").expect("patch");
        assert_eq!(first["status"]["templateStatuses"][0]["name"], "a");
    }

    #[test]
    fn templates_are_needed_until_every_run_is_created() {
        let ex: Experiment = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
            "metadata": {"name": "ex", "namespace": "team"},
            "spec": {"templates": [], "analyses": [{"name": "a", "templateName": "t"}]},
        }))
        .expect("experiment");
        assert!(needs_templates(&ex));
        let mut created = ex.clone();
        created.status = Some(
            serde_json::from_value(
                json!({"analysisRuns": [{"name": "a", "analysisRun": "ex-a", "phase": "Running"}]}),
            )
            .expect("status"),
        );
        assert!(!needs_templates(&created));
    }

    #[test]
    fn existing_objects_are_ours_only_with_owner_and_annotations() {
        let ex: Experiment = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
            "metadata": {"name": "ex", "namespace": "team", "uid": "u"},
            "spec": {"templates": []},
        }))
        .expect("experiment");
        let meta = |uid: &str, template: &str| -> kube::api::ObjectMeta {
            serde_json::from_value(json!({
                "name": "ex-a",
                "annotations": {"experiment.argoproj.io/name": "ex", "experiment.argoproj.io/template-name": template},
                "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
                    "name": "ex", "uid": uid, "controller": true}]
            }))
            .expect("meta")
        };
        let a = "a".to_string();
        assert!(owned_for(&meta("u", "a"), &ex, Some(&a)));
        assert!(!owned_for(&meta("other", "a"), &ex, Some(&a)));
        assert!(!owned_for(&meta("u", "b"), &ex, Some(&a)));
    }

    #[tokio::test]
    async fn a_new_experiment_gets_its_replica_set_status_and_events() {
        use crate::context::testing::{Exchange, scripted};
        use http::Method;
        let ex: Experiment = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
            "metadata": {"name": "ex", "namespace": "team", "uid": "u", "resourceVersion": "1"},
            "spec": {"templates": [{"name": "canary", "selector": {"matchLabels": {"app": "c"}},
                "template": {"metadata": {"labels": {"app": "c"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}]},
        }))
        .expect("experiment");
        let event = |reason: &'static str| {
            Exchange::new(
                Method::POST,
                "/api/v1/namespaces/team/events",
                201,
                json!({}),
            )
            .checking(move |body| {
                assert_eq!(body["reason"], reason);
                assert_eq!(body["involvedObject"]["kind"], "Experiment");
            })
        };
        let (client, server) = scripted(vec![
            Exchange::new(
                Method::POST,
                "/apis/apps/v1/namespaces/team/replicasets",
                201,
                json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": "ex-canary", "namespace": "team", "resourceVersion": "5"},
                    "spec": {"selector": {}}}),
            )
            .checking(|body| {
                assert_eq!(body["metadata"]["name"], "ex-canary");
                assert_eq!(body["spec"]["replicas"], 0);
                assert_eq!(
                    body["metadata"]["annotations"]["experiment.argoproj.io/template-name"],
                    "canary"
                );
                assert_eq!(body["metadata"]["ownerReferences"][0]["kind"], "Experiment");
            }),
            Exchange::new(
                Method::PATCH,
                "/apis/argoproj.io/v1alpha1/namespaces/team/experiments/ex",
                200,
                json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
                    "metadata": {"name": "ex", "namespace": "team", "resourceVersion": "6"},
                    "spec": {"templates": []}}),
            )
            .checking(|body| {
                assert_eq!(body["status"]["phase"], "Pending", "{body}");
                assert_eq!(
                    body["status"]["templateStatuses"][0]["status"],
                    "Progressing"
                );
            }),
            event("TemplateProgressing"),
            event("ExperimentPending"),
        ]);
        let metrics = Metrics::new("test").unwrap();
        let ctx = ExperimentContext {
            client: client.clone(),
            config: Config {
                instance_id: String::new(),
                resync: Duration::from_secs(900),
                namespace: None,
            },
            experiments: kube::runtime::reflector::store().0,
            replica_sets: kube::runtime::reflector::store().0,
            services: kube::runtime::reflector::store().0,
            runs: kube::runtime::reflector::store().0,
            recorder: Recorder::new(client, "test".into(), metrics.events.clone()),
            metrics,
            expectations: Expectations::default(),
            failures: Mutex::default(),
        };
        let action = reconcile_experiment(&ex, &ctx, "team/ex").await.unwrap();
        // The template's progress deadline (600 s) is the next look.
        assert!(action != Action::await_change());
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        // The next pass waits for the cache to show the ReplicaSet and the status written.
        let again = reconcile_experiment(&ex, &ctx, "team/ex").await.unwrap();
        assert_eq!(again, Action::requeue(STALE_REQUEUE));
    }
}
