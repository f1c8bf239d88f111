//! The Rollout controller: shared reflectors, the kube-runtime `Controller`, and the
//! reconciliation of one Rollout.
//!
//! One reflector per kind feeds both the cache the snapshot is built from and the controller's
//! triggers (kube-runtime's shared streams): Rollouts (tolerant of undecodable objects),
//! ReplicaSets that carry the `rollouts-pod-template-hash` label, Services, AnalysisRuns and
//! Experiments (slim views). A change to a ReplicaSet, AnalysisRun or Experiment wakes the
//! Rollout that controls it; a change to a Service wakes the Rollouts that name it; a change to
//! a Deployment wakes the Rollouts whose `workloadRef` points at it.
//!
//! One reconciliation ([`reconcile`]):
//! 1. waits for the caches to show our previous writes ([`crate::expectations`]);
//! 2. adopts orphaned ReplicaSets that match the selector;
//! 3. resolves `workloadRef`, checks that the traffic routers it names are compiled in;
//! 4. builds the [`Snapshot`](rollouts_engine::Snapshot) and calls the engine;
//! 5. executes the plan's effects in order, stopping at the first error;
//! 6. writes the status when it changed, records the events;
//! 7. requeues at the plan's next scheduled transition (pause end, deadlines, ...), or after
//!    the resync period at the latest.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    core::v1::{Pod, Service},
};
use kube::{
    Api, Client, Resource,
    api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams},
    core::{DeserializeGuard, PartialObjectMeta, error_boundary::InvalidObject},
    runtime::{
        Controller, WatchStreamExt,
        controller::{Action, Config as ControllerConfig},
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use rollouts_api::{Rollout, RolloutSpec, RolloutStatus, labels};
use rollouts_engine::{EventType, RouterReport};
use serde::de::DeserializeOwned;
use tokio::{sync::watch, task::JoinHandle};

use crate::{
    context::{Context, Stores},
    error::{Error, Result},
    events::rollout_reference,
    executor::Executor,
    expectations::{Kind, STALE_REQUEUE},
    objects::{AnalysisRunSummary, ExperimentSummary},
    snapshot, status, workload,
};

type Guarded = DeserializeGuard<Rollout>;

/// Capacity of each shared stream (events buffered per subscriber).
const SUBSCRIBER_BUFFER: usize = 1024;

/// How soon to look again after a router's verification result changed.
const VERIFIED_REQUEUE: Duration = Duration::from_millis(100);

/// Requeue of a Rollout that stays invalid (Argo: 20 s for references that may appear later).
const INVALID_REQUEUE: Duration = Duration::from_secs(20);

/// `namespace/name`.
fn key_of(meta: &kube::api::ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// The traffic routers a canary names, in the engine's order (built-in keys, then plugins).
pub fn router_names(rollout: &Rollout) -> Vec<String> {
    let Some(tr) = rollout
        .spec
        .canary()
        .and_then(|c| c.traffic_routing.as_ref())
    else {
        return Vec::new();
    };
    let mut out: Vec<String> = [
        ("istio", tr.istio.is_some()),
        ("nginx", tr.nginx.is_some()),
        ("alb", tr.alb.is_some()),
        ("smi", tr.smi.is_some()),
        ("ambassador", tr.ambassador.is_some()),
        ("appMesh", tr.app_mesh.is_some()),
        ("traefik", tr.traefik.is_some()),
        ("apisix", tr.apisix.is_some()),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(n, _)| n.to_string())
    .collect();
    out.extend(tr.plugins.iter().flatten().map(|(k, _)| k.clone()));
    out
}

/// Reconciles one Rollout (see the module documentation).
#[tracing::instrument(skip_all, fields(rollout = %key_of(obj.meta())))]
pub async fn reconcile(obj: Arc<Guarded>, ctx: Arc<Context>) -> Result<Action> {
    let meta = obj.meta().clone();
    let key = key_of(&meta);
    let started = Instant::now();
    ctx.prune_deleted();
    let result = match &obj.0 {
        Ok(rollout) => reconcile_rollout(rollout, &ctx, &key).await,
        Err(invalid) => reconcile_undecodable(invalid, &ctx).await,
    };
    let ns = meta.namespace.as_deref().unwrap_or_default();
    let name = meta.name.as_deref().unwrap_or_default();
    let elapsed = started.elapsed();
    ctx.metrics
        .reconcile
        .with_label_values(&[ns, name])
        .observe(elapsed.as_secs_f64());
    match &result {
        Ok(action) => {
            ctx.succeeded(&key);
            tracing::debug!(
                time_ms = elapsed.as_secs_f64() * 1e3,
                ?action,
                "Reconciliation completed."
            );
        }
        Err(err) => {
            let message = format!("Reconciliation failed with error: {err}");
            if ctx.new_error(&key, &message) {
                ctx.recorder
                    .publish(
                        &rollout_reference(&meta),
                        EventType::Warning,
                        "ReconciliationError",
                        &message,
                    )
                    .await;
            }
        }
    }
    result
}

/// What happens after a failed reconciliation: count it, retry with per-Rollout backoff.
pub fn error_policy(obj: Arc<Guarded>, err: &Error, ctx: Arc<Context>) -> Action {
    let meta = obj.meta();
    let key = key_of(meta);
    ctx.metrics
        .reconcile_error
        .with_label_values(&[
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
        ])
        .inc();
    let wait = ctx.failed(&key);
    tracing::warn!(
        rollout = %key,
        category = err.category(),
        error = err as &dyn std::error::Error,
        retry_in_ms = wait.as_millis() as u64,
        "Reconciliation failed."
    );
    Action::requeue(wait)
}

async fn reconcile_rollout(rollout: &Rollout, ctx: &Context, key: &str) -> Result<Action> {
    if rollout.metadata.deletion_timestamp.is_some() {
        ctx.forget(key);
        return Ok(Action::await_change());
    }
    let ns = rollout.metadata.namespace.clone().unwrap_or_default();
    let name = rollout.metadata.name.clone().unwrap_or_default();
    if ctx.first_sight(key) {
        ctx.recorder
            .publish(
                &rollout_reference(&rollout.metadata),
                EventType::Normal,
                "RolloutAddedToInformer",
                &format!("Rollout resource added to informer: {ns}/{name}"),
            )
            .await;
    }
    if let Some(stale) = ctx
        .expectations
        .check(key, |kind, n| ctx.stores.resource_version(kind, &ns, n))
    {
        tracing::debug!(object = %stale.object, expected = %stale.expected, "Cache is older than our last write; looking again shortly.");
        return Ok(Action::requeue(STALE_REQUEUE));
    }

    // Adopt ReplicaSets that match the selector but have no controller (Argo's claim).
    let orphans = snapshot::orphans_to_adopt(&ctx.stores.replica_sets, rollout);
    if !orphans.is_empty() {
        adopt(ctx, rollout, key, &orphans).await?;
        return Ok(Action::requeue(STALE_REQUEUE));
    }

    let mut resolved = rollout.clone();
    let workload = workload::resolve(&ctx.client, &mut resolved).await;
    let now = Timestamp::now();

    // A router the build does not contain: the engine cannot plan this Rollout.
    let routers = router_names(&resolved);
    if let Some(missing) = routers.iter().find(|r| ctx.registry.router(r).is_err()) {
        let err = ctx
            .registry
            .router(missing)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        return invalid(ctx, rollout, &err, now).await;
    }
    let mut reports = ctx.router_reports(key);
    for r in &routers {
        if !reports.iter().any(|x| &x.router == r) {
            reports.push(RouterReport {
                router: r.clone(),
                verifies_weight: true,
                last: None,
            });
        }
    }
    reports.retain(|x| routers.contains(&x.router));

    let pods = if snapshot::needs_pods(&resolved, now) {
        list_pods(ctx, &resolved, now).await?
    } else {
        Vec::new()
    };
    let reassert = !routers.is_empty() && ctx.reassert_due(key);
    let mut snap = snapshot::build(
        ctx,
        resolved.clone(),
        workload,
        pods,
        reports,
        now,
        reassert,
    );
    let mut plan = rollouts_engine::plan(&snap);
    if !reassert && !routers.is_empty() && leaves_step(rollout.status.as_ref(), &plan.status) {
        // The routers' last verification may predate an edit of their objects: before the
        // Rollout leaves its step, the weight of that step is written again (as Argo does on
        // every pass), ahead of the status that moves the step index.
        snap.config.reassert_traffic = true;
        plan = rollouts_engine::plan(&snap);
    }
    tracing::debug!(effects = plan.effects.len(), events = plan.events.len(), requeue = ?plan.requeue_after, "Planned.");

    let mut executor = Executor::new(ctx, &resolved);
    executor.run(&plan.effects).await?;

    write_status(ctx, rollout, key, rollout.status.as_ref(), &plan.status).await?;
    let reference = rollout_reference(&rollout.metadata);
    for ev in &plan.events {
        ctx.recorder
            .publish(&reference, ev.type_, &ev.reason, &ev.message)
            .await;
    }

    let mut next = plan
        .requeue_after
        .unwrap_or(ctx.config.resync)
        .min(ctx.config.resync);
    if executor.verification_changed {
        next = next.min(VERIFIED_REQUEUE);
    }
    Ok(Action::requeue(next))
}

/// Whether the planned status moves the step index of a Rollout that has one.
fn leaves_step(old: Option<&RolloutStatus>, new: &RolloutStatus) -> bool {
    let before = old.and_then(|s| s.current_step_index);
    before.is_some() && new.current_step_index != before
}

/// Writes `new` through the status subresource when it differs from `old`.
async fn write_status(
    ctx: &Context,
    rollout: &Rollout,
    key: &str,
    old: Option<&RolloutStatus>,
    new: &RolloutStatus,
) -> Result<()> {
    let Some(patch) = status::status_patch(old, new)? else {
        return Ok(());
    };
    let ns = rollout.metadata.namespace.clone().unwrap_or_default();
    let name = rollout.metadata.name.clone().unwrap_or_default();
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &ns, &ApiResource::erase::<Rollout>(&()));
    tracing::debug!(%patch, "Patching status.");
    let updated = api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::kube(format!("patching the status of Rollout {name:?}"), e))?;
    ctx.expectations.expect(
        key,
        Kind::Rollout,
        &name,
        updated.metadata.resource_version.as_deref(),
    );
    Ok(())
}

/// Writes an `InvalidSpec` condition the engine cannot write (a router not compiled in).
async fn invalid(ctx: &Context, rollout: &Rollout, error: &str, now: Timestamp) -> Result<Action> {
    let key = key_of(&rollout.metadata);
    let old = rollout.status.clone().unwrap_or_default();
    if let Some(new) = status::invalid_spec(
        rollout.metadata.name.as_deref().unwrap_or_default(),
        rollout.metadata.generation.unwrap_or(0),
        &rollout.spec,
        &old,
        error,
        now,
    ) {
        write_status(ctx, rollout, &key, rollout.status.as_ref(), &new).await?;
        tracing::warn!(%error, "The Rollout is invalid.");
    }
    Ok(Action::requeue(INVALID_REQUEUE.min(ctx.config.resync)))
}

/// A Rollout that does not decode: read it raw, name the offending field in an `InvalidSpec`
/// condition, leave everything else alone.
async fn reconcile_undecodable(invalid: &InvalidObject, ctx: &Context) -> Result<Action> {
    let meta = &invalid.metadata;
    let key = key_of(meta);
    let ns = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &ns, &ApiResource::erase::<Rollout>(&()));
    let Some(raw) = api
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube(format!("reading Rollout {name:?}"), e))?
    else {
        return Ok(Action::await_change());
    };
    let value = serde_json::to_value(&raw).map_err(|source| Error::Json {
        what: format!("reading Rollout {name:?}"),
        source,
    })?;
    // The typed decoder names the path of the field; fall back to the watch's message.
    let error = match rollouts_api::decode::<Rollout>(&value) {
        Err(e) => e.to_string(),
        Ok(_) => invalid.error.clone(),
    };
    let old: Option<RolloutStatus> = value
        .get("status")
        .and_then(|s| serde_json::from_value(s.clone()).ok());
    let new = status::invalid_spec(
        &name,
        raw.metadata.generation.unwrap_or(0),
        &RolloutSpec::default(),
        old.as_ref().unwrap_or(&RolloutStatus::default()),
        &error,
        Timestamp::now(),
    );
    if let Some(new) = new {
        let shell = Rollout {
            metadata: raw.metadata.clone(),
            ..Rollout::default()
        };
        write_status(ctx, &shell, &key, old.as_ref(), &new).await?;
        tracing::warn!(%error, "The Rollout cannot be decoded.");
    }
    Ok(Action::requeue(INVALID_REQUEUE.min(ctx.config.resync)))
}

/// Adds our controller reference to orphaned ReplicaSets.
async fn adopt(ctx: &Context, rollout: &Rollout, key: &str, names: &[String]) -> Result<()> {
    let ns = rollout.metadata.namespace.clone().unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    let owner = serde_json::json!({
        "apiVersion": rollouts_api::API_VERSION,
        "kind": "Rollout",
        "name": rollout.metadata.name,
        "uid": rollout.metadata.uid,
        "controller": true,
        "blockOwnerDeletion": true,
    });
    for name in names {
        let Some(rs) = ctx
            .stores
            .replica_sets
            .get(&ObjectRef::new(name).within(&ns))
        else {
            continue;
        };
        let mut refs: Vec<serde_json::Value> = rs
            .metadata
            .owner_references
            .iter()
            .flatten()
            .map(|o| serde_json::to_value(o).unwrap_or_default())
            .collect();
        refs.push(owner.clone());
        let patch = serde_json::json!({
            "metadata": {"ownerReferences": refs, "resourceVersion": rs.metadata.resource_version}
        });
        let updated = api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::kube(format!("adopting ReplicaSet {name:?}"), e))?;
        tracing::info!(replica_set = %name, "Adopted an orphaned ReplicaSet.");
        ctx.expectations.expect(
            key,
            Kind::ReplicaSet,
            name,
            updated.metadata.resource_version.as_deref(),
        );
    }
    Ok(())
}

/// The Rollout's pods (for `restartAt`): selected by its selector, owned by its ReplicaSets.
async fn list_pods(
    ctx: &Context,
    rollout: &Rollout,
    now: Timestamp,
) -> Result<Vec<rollouts_engine::PodView>> {
    let ns = rollout.metadata.namespace.clone().unwrap_or_default();
    let selector = rollouts_engine::format_label_selector(rollout.spec.selector.as_ref());
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pods = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| Error::kube("listing the Rollout's pods", e))?;
    let min_ready = rollout.spec.min_ready_seconds_or_default();
    Ok(pods
        .items
        .iter()
        .map(|p| snapshot::pod_view(p, min_ready, now))
        .collect())
}

/// The Rollouts (cached) that name a Service, or that it says manage it.
fn rollouts_for_service(store: &Store<Guarded>, svc: &Service) -> Vec<ObjectRef<Guarded>> {
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let managed_by = svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::MANAGED_BY_ROLLOUTS).cloned());
    store
        .state()
        .iter()
        .filter(|g| g.meta().namespace.as_deref() == Some(ns.as_str()))
        .filter(|g| match &g.0 {
            Ok(ro) => {
                snapshot::service_names(ro).contains(&name)
                    || managed_by.as_deref() == ro.metadata.name.as_deref()
            }
            Err(_) => false,
        })
        .map(|g| ObjectRef::from_obj(g.as_ref()))
        .collect()
}

/// The Rollouts (cached) whose `workloadRef` names a Deployment.
fn rollouts_for_deployment(
    store: &Store<Guarded>,
    meta: &kube::api::ObjectMeta,
) -> Vec<ObjectRef<Guarded>> {
    let ns = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    store
        .state()
        .iter()
        .filter(|g| g.meta().namespace.as_deref() == Some(ns.as_str()))
        .filter(|g| match &g.0 {
            Ok(ro) => ro.spec.workload_ref.as_ref().is_some_and(|w| {
                w.kind.as_deref() == Some("Deployment") && w.name.as_deref() == Some(name.as_str())
            }),
            Err(_) => false,
        })
        .map(|g| ObjectRef::from_obj(g.as_ref()))
        .collect()
}

/// Remembers what the engine reads of each AnalysisRun (phase, message, `spec.terminate`,
/// labels, deletion) so that only a change of those wakes its Rollout, not every measurement.
#[derive(Default)]
struct RunChanges {
    seen: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl RunChanges {
    fn changed(&self, run: &AnalysisRunSummary, present: bool) -> bool {
        let meta = run.meta();
        let key = format!(
            "{}/{}/{}",
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
            meta.uid.as_deref().unwrap_or_default()
        );
        let fingerprint = format!(
            "{:?}|{:?}|{:?}|{:?}|{}",
            run.status.phase,
            run.status.message,
            run.spec.terminate,
            meta.labels,
            meta.deletion_timestamp.is_some()
        );
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if !present {
            seen.remove(&key);
            return true;
        }
        if seen.len() > 100_000 {
            seen.clear();
        }
        seen.insert(key, fingerprint.clone()).as_deref() != Some(fingerprint.as_str())
    }
}

/// The label selector of the Argo objects this instance handles (`--instance-id`).
pub fn instance_selector(instance_id: &str) -> String {
    if instance_id.is_empty() {
        format!("!{}", labels::CONTROLLER_INSTANCE_ID)
    } else {
        format!("{}={instance_id}", labels::CONTROLLER_INSTANCE_ID)
    }
}

pub(crate) fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Starts a shared reflector for `K`: returns its store, a subscriber stream for the
/// controller, and the task that drives it.
pub(crate) fn shared_reflector<K>(
    api: Api<K>,
    config: watcher::Config,
    what: &'static str,
) -> (
    Store<K>,
    impl Stream<Item = Arc<K>> + Send + 'static,
    JoinHandle<()>,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store_shared::<K>(SUBSCRIBER_BUFFER);
    let subscriber = writer
        .subscribe()
        .expect("a shared store always has a dispatcher");
    let stream = watcher(api, config)
        .default_backoff()
        .modify(|obj: &mut K| {
            // Nothing reads managedFields: keep them out of the cache.
            obj.meta_mut().managed_fields = None;
        })
        .reflect_shared(writer)
        .for_each(move |event| async move {
            if let Err(err) = event {
                tracing::warn!(
                    kind = what,
                    error = &err as &dyn std::error::Error,
                    "Watch error; retrying."
                );
            }
        });
    (store, subscriber, tokio::spawn(stream))
}

/// Runs the Rollout controller until `stop` turns true (then drains in-flight
/// reconciliations and returns).
pub async fn run(
    client: Client,
    config: crate::context::Config,
    registry: rollouts_plugin::Registry,
    recorder: crate::events::Recorder,
    metrics: crate::metrics::Metrics,
    threads: u16,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let ns = config.namespace.as_deref();
    let instance = instance_selector(&config.instance_id);

    let (rollouts, rollout_events, rollout_task) = shared_reflector(
        scoped::<Guarded>(&client, ns),
        watcher::Config::default().labels(&instance),
        "Rollout",
    );
    let (replica_sets, rs_events, rs_task) = shared_reflector(
        scoped::<ReplicaSet>(&client, ns),
        watcher::Config::default().labels(labels::POD_TEMPLATE_HASH),
        "ReplicaSet",
    );
    let (services, svc_events, svc_task) = shared_reflector(
        scoped::<Service>(&client, ns),
        watcher::Config::default(),
        "Service",
    );
    let (analysis_runs, ar_events, ar_task) = shared_reflector(
        scoped::<AnalysisRunSummary>(&client, ns),
        watcher::Config::default().labels(&instance),
        "AnalysisRun",
    );
    let (experiments, ex_events, ex_task) = shared_reflector(
        scoped::<ExperimentSummary>(&client, ns),
        watcher::Config::default().labels(&instance),
        "Experiment",
    );
    let tasks = [rollout_task, rs_task, svc_task, ar_task, ex_task];
    let stop_tasks = || {
        for t in &tasks {
            t.abort();
        }
    };

    // The CRDs must be installed: say so clearly instead of retrying forever.
    if let Err(err) = probe_crd(&client, ns).await {
        stop_tasks();
        return Err(err);
    }

    tracing::info!("Waiting for the caches to fill.");
    let ready = async {
        let _ = rollouts.wait_until_ready().await;
        let _ = replica_sets.wait_until_ready().await;
        let _ = services.wait_until_ready().await;
        let _ = analysis_runs.wait_until_ready().await;
        let _ = experiments.wait_until_ready().await;
    };
    tokio::select! {
        _ = ready => {}
        _ = stop.wait_for(|s| *s) => {
            stop_tasks();
            return Ok(());
        }
    }
    tracing::info!(
        rollouts = rollouts.len(),
        replica_sets = replica_sets.len(),
        services = services.len(),
        "Caches are ready; starting the Rollout controller."
    );
    metrics.set_rollout_store(rollouts.clone());

    let stores = Stores {
        rollouts: rollouts.clone(),
        replica_sets,
        services,
        analysis_runs: analysis_runs.clone(),
        experiments,
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        config.clone(),
        stores,
        registry,
        recorder,
        metrics.clone(),
    ));
    let for_services = rollouts.clone();
    let for_deployments = rollouts.clone();
    let deployments = watcher(
        scoped::<PartialObjectMeta<Deployment>>(&client, ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects();
    let mut shutdown = stop.clone();
    // Measurements change an AnalysisRun often; only what the engine reads wakes its Rollout.
    let ar_changes = RunChanges::default();
    let ar_store = analysis_runs.clone();
    let ar_events = ar_events.filter(move |run| {
        // A run gone from the cache was deleted: that always wakes the Rollout.
        let present = ar_store.get(&ObjectRef::from_obj(run.as_ref())).is_some();
        std::future::ready(ar_changes.changed(run, present))
    });
    let controller = Controller::for_shared_stream(rollout_events, rollouts)
        .owns_shared_stream(rs_events)
        .owns_shared_stream(ar_events)
        .owns_shared_stream(ex_events)
        .watches_shared_stream(svc_events, move |svc: Arc<Service>| {
            rollouts_for_service(&for_services, &svc)
        })
        .watches_stream(deployments, move |d| {
            rollouts_for_deployment(&for_deployments, &d.metadata)
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
        });
    controller.await;
    metrics.clear_rollout_store();
    stop_tasks();
    tracing::info!("The Rollout controller stopped.");
    Ok(())
}

/// Checks that the Rollout CRD is served.
async fn probe_crd(client: &Client, ns: Option<&str>) -> Result<()> {
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ApiResource::erase::<Rollout>(&())),
        None => Api::all_with(client.clone(), &ApiResource::erase::<Rollout>(&())),
    };
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(source) if crate::error::code_of(&source) == Some(404) => Err(Error::CrdMissing {
            kind: "Rollout",
            plural: "rollouts",
            source,
        }),
        // Anything else (RBAC, network) is for the watchers to retry and report.
        Err(err) => {
            tracing::warn!(
                error = &err as &dyn std::error::Error,
                "Could not check that the Rollout CRD is installed."
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::watcher::Event;
    use serde_json::json;

    fn rollout(name: &str, spec: serde_json::Value) -> Guarded {
        DeserializeGuard(Ok(rollouts_api::decode(&json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": name, "namespace": "team"},
            "spec": spec,
        }))
        .unwrap()))
    }

    #[test]
    fn services_and_deployments_wake_the_rollouts_that_use_them() {
        let (store, mut writer) = reflector::store::<Guarded>();
        writer.apply_watcher_event(&Event::Apply(rollout(
            "web",
            json!({"strategy": {"canary": {"canaryService": "web-canary", "stableService": "web-stable"}}}),
        )));
        writer.apply_watcher_event(&Event::Apply(rollout(
            "api",
            json!({"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
                   "strategy": {"blueGreen": {"activeService": "api"}}}),
        )));
        let svc = |name: &str, ns: &str, managed: Option<&str>| Service {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                annotations: managed
                    .map(|m| [(labels::MANAGED_BY_ROLLOUTS.to_string(), m.to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let names = |refs: Vec<ObjectRef<Guarded>>| -> Vec<String> {
            let mut n: Vec<String> = refs.into_iter().map(|r| r.name).collect();
            n.sort();
            n
        };
        assert_eq!(
            names(rollouts_for_service(
                &store,
                &svc("web-canary", "team", None)
            )),
            ["web"]
        );
        assert_eq!(
            names(rollouts_for_service(&store, &svc("api", "team", None))),
            ["api"]
        );
        assert!(rollouts_for_service(&store, &svc("web-canary", "other", None)).is_empty());
        assert_eq!(
            names(rollouts_for_service(
                &store,
                &svc("old", "team", Some("web"))
            )),
            ["web"]
        );
        let d = kube::api::ObjectMeta {
            name: Some("api".into()),
            namespace: Some("team".into()),
            ..Default::default()
        };
        assert_eq!(names(rollouts_for_deployment(&store, &d)), ["api"]);
    }

    #[test]
    fn routers_are_named_by_their_json_keys() {
        let Guarded { 0: Ok(ro) } = rollout(
            "web",
            json!({"strategy": {"canary": {"trafficRouting": {
                "nginx": {"stableIngress": "x"}, "istio": {"virtualService": {"name": "vs"}},
                "plugins": {"rollouts-rs/fake": {}}}}}}),
        ) else {
            panic!("decodes")
        };
        assert_eq!(router_names(&ro), ["istio", "nginx", "rollouts-rs/fake"]);
        let Guarded { 0: Ok(plain) } = rollout("p", json!({"strategy": {"canary": {}}})) else {
            panic!("decodes")
        };
        assert!(router_names(&plain).is_empty());
    }

    #[tokio::test]
    async fn status_is_written_as_a_merge_patch_of_what_changed_and_only_then() {
        use crate::context::testing::{Exchange, context, scripted};
        let (client, server) = scripted(vec![Exchange::new(
            http::Method::PATCH,
            "/apis/argoproj.io/v1alpha1/namespaces/team/rollouts/web/status",
            200,
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                   "metadata": {"name": "web", "namespace": "team", "resourceVersion": "42"}}),
        )
        .checking(|body| {
            assert_eq!(
                body,
                &json!({"status": {"currentStepIndex": 2, "pauseConditions": null, "phase": "Progressing"}})
            )
        })]);
        let ctx = context(client);
        let Guarded { 0: Ok(ro) } = rollout("web", json!({})) else {
            panic!("decodes")
        };
        let old: RolloutStatus = serde_json::from_value(json!({
            "currentStepIndex": 1, "phase": "Paused", "stableRS": "abc",
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2024-01-01T00:00:00Z"}]
        }))
        .unwrap();
        let new: RolloutStatus = serde_json::from_value(json!({
            "currentStepIndex": 2, "phase": "Progressing", "stableRS": "abc"
        }))
        .unwrap();
        // Unchanged: no request at all (the script has only one exchange).
        write_status(&ctx, &ro, "team/web", Some(&old), &old)
            .await
            .unwrap();
        write_status(&ctx, &ro, "team/web", Some(&old), &new)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        // Planning waits until the cache shows resourceVersion 42.
        let stale = ctx.expectations.check("team/web", |_, _| Some("41".into()));
        assert_eq!(stale.map(|s| s.expected).as_deref(), Some("42"));
        assert_eq!(
            ctx.expectations.check("team/web", |_, _| Some("42".into())),
            None
        );
    }

    #[test]
    fn only_what_the_engine_reads_of_a_run_wakes_its_rollout() {
        let run = |phase: &str, rv: &str, terminate: bool| -> AnalysisRunSummary {
            serde_json::from_value(json!({
                "metadata": {"name": "r", "namespace": "team", "uid": "u", "resourceVersion": rv},
                "spec": {"terminate": terminate},
                "status": {"phase": phase, "metricResults": [{"name": "m"}]}
            }))
            .unwrap()
        };
        let changes = RunChanges::default();
        assert!(
            changes.changed(&run("Running", "1", false), true),
            "first sight"
        );
        assert!(
            !changes.changed(&run("Running", "2", false), true),
            "a new measurement"
        );
        assert!(
            changes.changed(&run("Running", "3", true), true),
            "terminated"
        );
        assert!(
            changes.changed(&run("Successful", "4", true), true),
            "phase change"
        );
        assert!(!changes.changed(&run("Successful", "5", true), true));
        assert!(
            changes.changed(&run("Successful", "5", true), false),
            "deleted"
        );
    }

    #[test]
    fn traffic_is_reasserted_only_when_the_step_index_moves() {
        let at = |i: Option<i32>| RolloutStatus {
            current_step_index: i,
            ..Default::default()
        };
        assert!(leaves_step(Some(&at(Some(1))), &at(Some(2))), "next step");
        assert!(leaves_step(Some(&at(Some(3))), &at(Some(0))), "reset");
        assert!(!leaves_step(Some(&at(Some(1))), &at(Some(1))), "held");
        assert!(!leaves_step(Some(&at(None)), &at(Some(0))), "first index");
        assert!(!leaves_step(None, &at(Some(0))), "no status yet");
    }

    #[test]
    fn the_instance_id_selects_argo_objects() {
        assert_eq!(
            instance_selector(""),
            "!argo-rollouts.argoproj.io/controller-instance-id"
        );
        assert_eq!(
            instance_selector("a"),
            "argo-rollouts.argoproj.io/controller-instance-id=a"
        );
    }
}
