//! From [`Effect`]s to API calls.
//!
//! Effects are executed in the order the plan lists them; the first error stops the plan (the
//! reconciliation is retried with backoff and plans again from fresh caches). Every write is a
//! patch (JSON merge or strategic merge) or a create, never a GET + PUT of a typed object, so
//! fields our types do not know are never dropped. Each successful write of a cached object is
//! recorded as an [expectation](crate::expectations), so the next plan waits for the cache to
//! show it.
//!
//! How each effect lands, as Argo makes it:
//!
//! | effect | call |
//! |---|---|
//! | `CreateReplicaSet` | create; on `AlreadyExists`, the existing set is ours when it is controlled by this Rollout and carries the same hash, otherwise `status.collisionCount` is raised and the error returned |
//! | `UpdateReplicaSet`, `ScaleReplicaSet` | merge patch (annotations removed with `null`) |
//! | `DeleteReplicaSet`, `DeleteAnalysisRun`, `DeleteExperiment` | delete (already gone is fine) |
//! | `SwitchServiceSelector` | strategic merge patch of `spec.selector.rollouts-pod-template-hash` (+ managed-by annotation) |
//! | `UpdateRollout` | merge patch of `spec.replicas` and annotations |
//! | `Traffic` | the router registered under that name ([`rollouts_plugin::Registry`]); verification results go to the next snapshot |
//! | `CreateAnalysisRun` | templates fetched and merged ([`crate::analysis`]), create with collision suffixes |
//! | `TerminateAnalysisRun`, `TerminateExperiment` | merge patch `spec.terminate: true` |
//! | `CreateExperiment` | create (an existing one owned by this Rollout is ours) |
//! | `EvictPod` | Eviction API; 429 (a disruption budget) and 404 are not errors |
//! | `SyncPodMetadata` | merge patch of each pod of the ReplicaSet, `--ephemeral-metadata-threads` at a time |
//! | `ScaleWorkload` | merge patch of the workload's `spec.replicas` ([`crate::workload::scale`]) |

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::{
    apps::v1::ReplicaSet,
    core::v1::{Pod, Service},
};
use kube::{
    Api,
    api::{
        ApiResource, DeleteParams, DynamicObject, EvictParams, ListParams, Patch, PatchParams,
        PostParams,
    },
    runtime::reflector::ObjectRef,
};
use rollouts_api::{PodTemplateMetadata, Rollout, labels};
use rollouts_engine::{Effect, ReplicaSetUpdate, RouterReport, TrafficOp, WeightVerification};
use rollouts_plugin::{EventKind, RecordedEvents, RouterInit, TrafficRouter};
use serde_json::{Map, Value, json};

use crate::{
    context::Context,
    error::{Error, Result, code_of},
    events::{EventType, rollout_reference},
    expectations::Kind,
    snapshot::controlled_by,
    status::merge_diff,
};

/// Executes the effects of one plan for one Rollout.
pub struct Executor<'a> {
    ctx: &'a Context,
    rollout: &'a Rollout,
    namespace: String,
    key: String,
    routers: HashMap<String, Box<dyn TrafficRouter>>,
    plugin_events: Arc<RecordedEvents>,
    /// Whether a router's verification result changed (look again soon).
    pub verification_changed: bool,
}

impl std::fmt::Debug for Executor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("rollout", &self.key)
            .finish_non_exhaustive()
    }
}

fn merge() -> PatchParams {
    PatchParams::default()
}

impl<'a> Executor<'a> {
    /// An executor for `rollout` (as planned: with its `workloadRef` resolved).
    pub fn new(ctx: &'a Context, rollout: &'a Rollout) -> Self {
        let namespace = rollout.metadata.namespace.clone().unwrap_or_default();
        let key = format!(
            "{namespace}/{}",
            rollout.metadata.name.as_deref().unwrap_or_default()
        );
        Self {
            ctx,
            rollout,
            namespace,
            key,
            routers: HashMap::new(),
            plugin_events: Arc::new(RecordedEvents::default()),
            verification_changed: false,
        }
    }

    fn expect(&self, kind: Kind, name: &str, rv: Option<String>) {
        self.ctx
            .expectations
            .expect(&self.key, kind, name, rv.as_deref());
    }

    /// Executes `effects` in order; stops at the first error.
    pub async fn run(&mut self, effects: &[Effect]) -> Result<()> {
        for effect in effects {
            tracing::debug!(rollout = %self.key, ?effect, "Executing effect.");
            let result = self.apply(effect).await;
            self.publish_plugin_events().await;
            result?;
        }
        Ok(())
    }

    async fn apply(&mut self, effect: &Effect) -> Result<()> {
        match effect {
            Effect::CreateReplicaSet {
                replica_set,
                collision_count_on_conflict,
            } => {
                self.create_replica_set(replica_set, *collision_count_on_conflict)
                    .await
            }
            Effect::UpdateReplicaSet { name, update } => {
                self.update_replica_set(name, update).await
            }
            Effect::ScaleReplicaSet {
                name,
                replicas,
                desired_replicas,
                remove_scale_down_deadline,
            } => {
                let mut annotations = Map::new();
                annotations.insert(
                    labels::DESIRED_REPLICAS.into(),
                    json!(desired_replicas.to_string()),
                );
                if *remove_scale_down_deadline {
                    annotations.insert(labels::SCALE_DOWN_DEADLINE.into(), Value::Null);
                }
                let patch = json!({
                    "metadata": {"annotations": annotations},
                    "spec": {"replicas": replicas},
                });
                let rs = self
                    .replica_sets()
                    .patch(name, &merge(), &Patch::Merge(&patch))
                    .await
                    .map_err(|e| {
                        Error::kube(format!("scaling ReplicaSet {name:?} to {replicas}"), e)
                    })?;
                self.expect(Kind::ReplicaSet, name, rs.metadata.resource_version);
                Ok(())
            }
            Effect::DeleteReplicaSet { name } => {
                let api = self.replica_sets();
                delete(&api, name, "ReplicaSet").await
            }
            Effect::SwitchServiceSelector {
                service,
                hash,
                managed_by,
            } => {
                let mut patch = json!({"spec": {"selector": {labels::POD_TEMPLATE_HASH: hash}}});
                if let Some(owner) = managed_by {
                    patch["metadata"] =
                        json!({"annotations": {labels::MANAGED_BY_ROLLOUTS: owner}});
                }
                let api: Api<Service> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
                let svc = api
                    .patch(service, &merge(), &Patch::Strategic(&patch))
                    .await
                    .map_err(|e| {
                        Error::kube(
                            format!("switching the selector of Service {service:?} to {hash:?}"),
                            e,
                        )
                    })?;
                self.expect(Kind::Service, service, svc.metadata.resource_version);
                Ok(())
            }
            Effect::UpdateRollout {
                replicas,
                annotations,
            } => {
                let mut patch = json!({});
                if !annotations.is_empty() {
                    patch["metadata"] = json!({"annotations": annotations});
                }
                if let Some(r) = replicas {
                    patch["spec"] = json!({"replicas": r});
                }
                let name = self.rollout.metadata.name.clone().unwrap_or_default();
                let updated = self
                    .rollouts()
                    .patch(&name, &merge(), &Patch::Merge(&patch))
                    .await
                    .map_err(|e| Error::kube(format!("updating Rollout {name:?}"), e))?;
                self.expect(Kind::Rollout, &name, updated.metadata.resource_version);
                Ok(())
            }
            Effect::Traffic { router, op } => self.traffic(router, op).await,
            Effect::CreateAnalysisRun(request) => {
                let run =
                    crate::analysis::build_run(&self.ctx.client, &self.namespace, request).await?;
                let (name, rv) = crate::analysis::create_run(
                    &self.ctx.client,
                    &self.namespace,
                    run,
                    &request.owner_uid,
                )
                .await?;
                self.expect(Kind::AnalysisRun, &name, rv);
                Ok(())
            }
            Effect::TerminateAnalysisRun { name } => {
                let api = self.analysis_runs();
                self.terminate(&api, name, Kind::AnalysisRun).await
            }
            Effect::DeleteAnalysisRun { name } => {
                let api = self.analysis_runs();
                delete(&api, name, "AnalysisRun").await
            }
            Effect::CreateExperiment(ex) => self.create_experiment(ex).await,
            Effect::TerminateExperiment { name } => {
                let api = self.experiments();
                self.terminate(&api, name, Kind::Experiment).await
            }
            Effect::DeleteExperiment { name } => {
                let api = self.experiments();
                delete(&api, name, "Experiment").await
            }
            Effect::EvictPod { name } => self.evict(name).await,
            Effect::SyncPodMetadata {
                replica_set,
                previous,
                desired,
            } => {
                self.sync_pod_metadata(replica_set, previous.as_ref(), desired.as_ref())
                    .await
            }
            Effect::ScaleWorkload {
                api_version,
                kind,
                name,
                replicas,
            } => {
                crate::workload::scale(
                    &self.ctx.client,
                    &self.namespace,
                    api_version,
                    kind,
                    name,
                    *replicas,
                )
                .await
            }
        }
    }

    fn replica_sets(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    fn rollouts(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.ctx.client.clone(),
            &self.namespace,
            &ApiResource::erase::<Rollout>(&()),
        )
    }

    fn analysis_runs(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.ctx.client.clone(),
            &self.namespace,
            &ApiResource::erase::<rollouts_api::AnalysisRun>(&()),
        )
    }

    fn experiments(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.ctx.client.clone(),
            &self.namespace,
            &ApiResource::erase::<rollouts_api::Experiment>(&()),
        )
    }

    async fn create_replica_set(&mut self, rs: &ReplicaSet, collision_count: i32) -> Result<()> {
        let name = rs.metadata.name.clone().unwrap_or_default();
        let api = self.replica_sets();
        let err = match api.create(&PostParams::default(), rs).await {
            Ok(created) => {
                self.expect(Kind::ReplicaSet, &name, created.metadata.resource_version);
                return Ok(());
            }
            Err(e) if code_of(&e) == Some(409) => e,
            Err(e) => return Err(Error::kube(format!("creating ReplicaSet {name:?}"), e)),
        };
        // AlreadyExists: ours (seen through a stale cache), or a hash collision.
        let existing = api
            .get(&name)
            .await
            .map_err(|e| Error::kube(format!("reading ReplicaSet {name:?}"), e))?;
        let uid = self.rollout.metadata.uid.as_deref().unwrap_or_default();
        let hash = |r: &ReplicaSet| {
            r.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::POD_TEMPLATE_HASH).cloned())
        };
        if controlled_by(&existing.metadata, uid) && hash(&existing) == hash(rs) {
            tracing::info!(rollout = %self.key, replica_set = %name, "The ReplicaSet exists already and is ours.");
            self.expect(Kind::ReplicaSet, &name, existing.metadata.resource_version);
            return Ok(());
        }
        let ro_name = self.rollout.metadata.name.clone().unwrap_or_default();
        tracing::warn!(rollout = %self.key, replica_set = %name, collision_count, "Pod template hash collision.");
        let patch = json!({"status": {"collisionCount": collision_count}});
        let updated = self
            .rollouts()
            .patch_status(&ro_name, &merge(), &Patch::Merge(&patch))
            .await
            .map_err(|e| {
                Error::kube(
                    format!("raising the collision count of Rollout {ro_name:?}"),
                    e,
                )
            })?;
        self.expect(Kind::Rollout, &ro_name, updated.metadata.resource_version);
        Err(Error::kube(format!("creating ReplicaSet {name:?}"), err))
    }

    async fn update_replica_set(&mut self, name: &str, update: &ReplicaSetUpdate) -> Result<()> {
        let current = self
            .ctx
            .stores
            .replica_sets
            .get(&ObjectRef::new(name).within(&self.namespace));
        let patch = replica_set_patch(current.as_deref(), update);
        let rs = self
            .replica_sets()
            .patch(name, &merge(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::kube(format!("updating ReplicaSet {name:?}"), e))?;
        self.expect(Kind::ReplicaSet, name, rs.metadata.resource_version);
        Ok(())
    }

    async fn terminate(&mut self, api: &Api<DynamicObject>, name: &str, kind: Kind) -> Result<()> {
        match api
            .patch(
                name,
                &merge(),
                &Patch::Merge(json!({"spec": {"terminate": true}})),
            )
            .await
        {
            Ok(obj) => {
                self.expect(kind, name, obj.metadata.resource_version);
                Ok(())
            }
            Err(e) if code_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(Error::kube(format!("terminating {kind} {name:?}"), e)),
        }
    }

    async fn create_experiment(&mut self, ex: &rollouts_api::Experiment) -> Result<()> {
        let name = ex.metadata.name.clone().unwrap_or_default();
        let api = self.experiments();
        let mut obj: DynamicObject = serde_json::to_value(ex)
            .and_then(serde_json::from_value)
            .map_err(|source| Error::Json {
                what: format!("building Experiment {name:?}"),
                source,
            })?;
        obj.metadata.namespace = Some(self.namespace.clone());
        match api.create(&PostParams::default(), &obj).await {
            Ok(created) => {
                self.expect(Kind::Experiment, &name, created.metadata.resource_version);
                Ok(())
            }
            Err(e) if code_of(&e) == Some(409) => {
                let existing = api
                    .get(&name)
                    .await
                    .map_err(|e| Error::kube(format!("reading Experiment {name:?}"), e))?;
                let uid = self.rollout.metadata.uid.as_deref().unwrap_or_default();
                if controlled_by(&existing.metadata, uid) {
                    self.expect(Kind::Experiment, &name, existing.metadata.resource_version);
                    Ok(())
                } else {
                    Err(Error::kube(format!("creating Experiment {name:?}"), e))
                }
            }
            Err(e) => Err(Error::kube(format!("creating Experiment {name:?}"), e)),
        }
    }

    async fn evict(&mut self, name: &str) -> Result<()> {
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        match api.evict(name, &EvictParams::default()).await {
            Ok(_) => {
                tracing::info!(rollout = %self.key, pod = %name, "Evicted pod for the restart.");
                Ok(())
            }
            Err(e) if code_of(&e) == Some(429) => {
                tracing::info!(rollout = %self.key, pod = %name, "A disruption budget refused the eviction; retrying later.");
                Ok(())
            }
            Err(e) if code_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(Error::kube(format!("evicting pod {name:?}"), e)),
        }
    }

    async fn sync_pod_metadata(
        &mut self,
        replica_set: &str,
        previous: Option<&PodTemplateMetadata>,
        desired: Option<&PodTemplateMetadata>,
    ) -> Result<()> {
        let Some(rs) = self
            .ctx
            .stores
            .replica_sets
            .get(&ObjectRef::new(replica_set).within(&self.namespace))
        else {
            return Ok(());
        };
        let rs_uid = rs.metadata.uid.clone().unwrap_or_default();
        let selector = rollouts_engine::format_label_selector(Some(&rs.spec.selector));
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let pods = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| {
                Error::kube(format!("listing the pods of ReplicaSet {replica_set:?}"), e)
            })?;
        let patches: Vec<(String, Value)> = pods
            .items
            .iter()
            .filter(|p| {
                controlled_by(&p.metadata, &rs_uid) && p.metadata.deletion_timestamp.is_none()
            })
            .filter_map(|p| {
                let patch = pod_metadata_patch(
                    p.metadata.labels.as_ref(),
                    p.metadata.annotations.as_ref(),
                    previous,
                    desired,
                )?;
                Some((p.metadata.name.clone()?, patch))
            })
            .collect();
        let threads = self.ctx.config.ephemeral_metadata_threads.max(1);
        futures::stream::iter(patches)
            .map(|(name, patch)| {
                let api = api.clone();
                async move {
                    match api.patch(&name, &merge(), &Patch::Merge(&patch)).await {
                        Ok(_) => Ok(()),
                        Err(e) if code_of(&e) == Some(404) => Ok(()),
                        Err(e) => Err(Error::kube(
                            format!("updating the metadata of pod {name:?}"),
                            e,
                        )),
                    }
                }
            })
            .buffer_unordered(threads)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Builds the router registered as `name` (once per reconciliation).
    fn ensure_router(&mut self, name: &str) -> Result<()> {
        if !self.routers.contains_key(name) {
            let plugin = self.ctx.registry.router(name)?;
            let router = (plugin.build)(RouterInit {
                client: self.ctx.client.clone(),
                rollout: self.rollout,
                events: self.plugin_events.clone(),
            })?;
            self.routers.insert(name.to_string(), router);
        }
        Ok(())
    }

    async fn traffic(&mut self, router_name: &str, op: &TrafficOp) -> Result<()> {
        self.ensure_router(router_name)?;
        let router = self.routers[router_name].as_ref();
        match op {
            TrafficOp::UpdateHash {
                canary_hash,
                stable_hash,
                additional,
            } => {
                router
                    .update_hash(canary_hash, stable_hash, additional)
                    .await?
            }
            TrafficOp::SetWeight { weight, additional } => {
                router.set_weight(*weight, additional).await?
            }
            TrafficOp::SetHeaderRoute(route) => router.set_header_route(route).await?,
            TrafficOp::SetMirrorRoute(route) => router.set_mirror_route(route).await?,
            TrafficOp::RemoveManagedRoutes => router.remove_managed_routes().await?,
            TrafficOp::VerifyWeight { weight, additional } => {
                let result = router.verify_weight(*weight, additional).await?;
                let verified = matches!(result, rollouts_plugin::WeightVerification::Verified);
                if let rollouts_plugin::WeightVerification::Mismatch { detail, .. } = &result {
                    tracing::info!(rollout = %self.key, router = router_name, weight, %detail, "Traffic weight not verified yet.");
                }
                let report = RouterReport {
                    router: router_name.to_string(),
                    verifies_weight: true,
                    last: Some(WeightVerification {
                        weight: *weight,
                        verified,
                    }),
                };
                if self.ctx.set_router_report(&self.key, report) {
                    self.verification_changed = true;
                }
            }
        }
        Ok(())
    }

    /// Publishes the events plugins asked for, on the Rollout.
    async fn publish_plugin_events(&self) {
        let events = self.plugin_events.drain();
        if events.is_empty() {
            return;
        }
        let reference = rollout_reference(&self.rollout.metadata);
        for ev in events {
            let type_ = match ev.kind {
                EventKind::Normal => EventType::Normal,
                EventKind::Warning => EventType::Warning,
            };
            self.ctx
                .recorder
                .publish(&reference, type_, &ev.reason, &ev.message)
                .await;
        }
    }
}

async fn delete(
    api: &Api<impl kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug>,
    name: &str,
    kind: &str,
) -> Result<()> {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(e) if code_of(&e) == Some(404) => Ok(()),
        Err(e) => Err(Error::kube(format!("deleting {kind} {name:?}"), e)),
    }
}

/// Keys of `previous` missing from `desired` become `null`; keys of `desired` that differ from
/// `current` are set.
fn map_patch(
    current: Option<&BTreeMap<String, String>>,
    previous: Option<&BTreeMap<String, String>>,
    desired: Option<&BTreeMap<String, String>>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for k in previous.iter().flat_map(|m| m.keys()) {
        if desired.is_none_or(|d| !d.contains_key(k)) && current.is_some_and(|c| c.contains_key(k))
        {
            out.insert(k.clone(), Value::Null);
        }
    }
    for (k, v) in desired.iter().flat_map(|m| m.iter()) {
        if current.and_then(|c| c.get(k)) != Some(v) {
            out.insert(k.clone(), Value::String(v.clone()));
        }
    }
    out
}

/// The merge patch that brings a pod's labels and annotations in line with the injected
/// metadata, or `None` when it already is.
pub fn pod_metadata_patch(
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
    previous: Option<&PodTemplateMetadata>,
    desired: Option<&PodTemplateMetadata>,
) -> Option<Value> {
    let l = map_patch(
        labels,
        previous.and_then(|p| p.labels.as_ref()),
        desired.and_then(|d| d.labels.as_ref()),
    );
    let a = map_patch(
        annotations,
        previous.and_then(|p| p.annotations.as_ref()),
        desired.and_then(|d| d.annotations.as_ref()),
    );
    if l.is_empty() && a.is_empty() {
        return None;
    }
    let mut meta = Map::new();
    if !l.is_empty() {
        meta.insert("labels".into(), Value::Object(l));
    }
    if !a.is_empty() {
        meta.insert("annotations".into(), Value::Object(a));
    }
    Some(json!({ "metadata": meta }))
}

/// The merge patch of a ReplicaSet update. Removals of template labels, annotations and
/// affinity fields are computed against the cached object.
pub fn replica_set_patch(current: Option<&ReplicaSet>, update: &ReplicaSetUpdate) -> Value {
    let mut patch = json!({});
    let mut annotations = Map::new();
    for (k, v) in &update.set_annotations {
        annotations.insert(k.clone(), Value::String(v.clone()));
    }
    for k in &update.remove_annotations {
        annotations.insert(k.clone(), Value::Null);
    }
    if !annotations.is_empty() {
        patch["metadata"] = json!({ "annotations": annotations });
    }
    let template = current.and_then(|rs| rs.spec.template.as_ref());
    let mut spec = Map::new();
    if let Some(m) = update.min_ready_seconds {
        spec.insert("minReadySeconds".into(), json!(m));
    }
    let mut template_patch = Map::new();
    if let Some(affinity) = &update.affinity {
        let current_affinity = template
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.affinity.as_ref())
            .map(|a| serde_json::to_value(a).unwrap_or(Value::Null));
        let value = match (affinity, current_affinity) {
            (None, _) => Some(Value::Null),
            (Some(new), Some(old)) => {
                let new = serde_json::to_value(new).unwrap_or(Value::Null);
                merge_diff(&old, &new)
            }
            (Some(new), None) => Some(serde_json::to_value(new).unwrap_or(Value::Null)),
        };
        if let Some(v) = value {
            template_patch.insert("spec".into(), json!({ "affinity": v }));
        }
    }
    if let Some(md) = &update.template_metadata {
        let current_meta = template.and_then(|t| t.metadata.as_ref());
        let diff = |cur: Option<&BTreeMap<String, String>>,
                    new: Option<&BTreeMap<String, String>>| {
            let mut out = Map::new();
            for k in cur.iter().flat_map(|m| m.keys()) {
                if new.is_none_or(|n| !n.contains_key(k)) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            for (k, v) in new.iter().flat_map(|m| m.iter()) {
                if cur.and_then(|c| c.get(k)) != Some(v) {
                    out.insert(k.clone(), Value::String(v.clone()));
                }
            }
            out
        };
        let l = diff(
            current_meta.and_then(|m| m.labels.as_ref()),
            md.labels.as_ref(),
        );
        let a = diff(
            current_meta.and_then(|m| m.annotations.as_ref()),
            md.annotations.as_ref(),
        );
        let mut meta = Map::new();
        if !l.is_empty() {
            meta.insert("labels".into(), Value::Object(l));
        }
        if !a.is_empty() {
            meta.insert("annotations".into(), Value::Object(a));
        }
        if !meta.is_empty() {
            template_patch.insert("metadata".into(), Value::Object(meta));
        }
    }
    if !template_patch.is_empty() {
        spec.insert("template".into(), Value::Object(template_patch));
    }
    if !spec.is_empty() {
        patch["spec"] = Value::Object(spec);
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::testing::{Exchange, context, scripted, status};
    use http::Method;
    use std::time::Duration;

    fn rollout(spec: Value) -> Rollout {
        rollouts_api::decode(&json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "team", "uid": "ro-uid"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn replica_set(owner: &str, hash: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": format!("web-{hash}"), "namespace": "team", "resourceVersion": "77",
                "labels": {"rollouts-pod-template-hash": hash},
                "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "web", "uid": owner, "controller": true}]},
            "spec": {"selector": {"matchLabels": {"rollouts-pod-template-hash": hash}}}
        }))
        .unwrap()
    }

    async fn finish(server: tokio::task::JoinHandle<()>) {
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the API conversation finished")
            .expect("the API server script held");
    }

    #[tokio::test]
    async fn traffic_goes_to_the_registered_router_and_verification_is_remembered() {
        let (client, server) = scripted(vec![]);
        let ctx = context(client);
        let ro = rollout(
            json!({"strategy": {"canary": {"trafficRouting": {"plugins": {"rollouts-rs/fake": {}}}}}}),
        );
        let mut ex = Executor::new(&ctx, &ro);
        let op = |op| Effect::Traffic {
            router: "rollouts-rs/fake".into(),
            op,
        };
        ex.run(&[
            op(TrafficOp::SetWeight {
                weight: 30,
                additional: vec![],
            }),
            op(TrafficOp::VerifyWeight {
                weight: 30,
                additional: vec![],
            }),
        ])
        .await
        .unwrap();
        assert_eq!(rollouts_fake_plugins::stored_weight("team/web"), Some(30));
        assert!(ex.verification_changed);
        let reports = ctx.router_reports("team/web");
        assert_eq!(
            reports,
            vec![RouterReport {
                router: "rollouts-rs/fake".into(),
                verifies_weight: true,
                last: Some(WeightVerification {
                    weight: 30,
                    verified: true
                }),
            }]
        );
        // The same answer again is no news.
        let mut again = Executor::new(&ctx, &ro);
        again
            .run(&[op(TrafficOp::VerifyWeight {
                weight: 30,
                additional: vec![],
            })])
            .await
            .unwrap();
        assert!(!again.verification_changed);
        // Someone edits the router's object: the next verification says so.
        rollouts_fake_plugins::tamper_weight("team/web", 10);
        let mut tampered = Executor::new(&ctx, &ro);
        tampered
            .run(&[op(TrafficOp::VerifyWeight {
                weight: 30,
                additional: vec![],
            })])
            .await
            .unwrap();
        assert_eq!(
            ctx.router_reports("team/web")[0].last,
            Some(WeightVerification {
                weight: 30,
                verified: false
            })
        );
        finish(server).await;
    }

    #[tokio::test]
    async fn a_router_not_in_the_build_is_a_clear_error_and_stops_the_plan() {
        let (client, server) = scripted(vec![]);
        let ctx = context(client);
        let ro = rollout(json!({}));
        let err = Executor::new(&ctx, &ro)
            .run(&[
                Effect::Traffic {
                    router: "example.com/not-built".into(),
                    op: TrafficOp::SetWeight {
                        weight: 5,
                        additional: vec![],
                    },
                },
                Effect::DeleteReplicaSet {
                    name: "never-reached".into(),
                },
            ])
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "traffic router `example.com/not-built` is not compiled into this build"
        );
        assert_eq!(err.category(), "plugin");
        finish(server).await;
    }

    #[tokio::test]
    async fn an_existing_replica_set_of_ours_is_taken_on_conflict() {
        let (client, server) = scripted(vec![
            Exchange::new(
                Method::POST,
                "/apis/apps/v1/namespaces/team/replicasets",
                409,
                status(409, "AlreadyExists"),
            ),
            Exchange::new(
                Method::GET,
                "/apis/apps/v1/namespaces/team/replicasets/web-abc",
                200,
                serde_json::to_value(replica_set("ro-uid", "abc")).unwrap(),
            ),
        ]);
        let ctx = context(client);
        let ro = rollout(json!({}));
        Executor::new(&ctx, &ro)
            .run(&[Effect::CreateReplicaSet {
                replica_set: Box::new(replica_set("ro-uid", "abc")),
                collision_count_on_conflict: 1,
            }])
            .await
            .unwrap();
        // The cache must show it before the next plan.
        let stale = ctx.expectations.check("team/web", |_, _| None).unwrap();
        assert_eq!(stale.object, "ReplicaSet web-abc");
        assert_eq!(stale.expected, "77");
        finish(server).await;
    }

    #[tokio::test]
    async fn a_hash_collision_raises_the_collision_count_and_fails_the_pass() {
        let (client, server) = scripted(vec![
            Exchange::new(Method::POST, "/apis/apps/v1/namespaces/team/replicasets", 409, status(409, "AlreadyExists")),
            Exchange::new(
                Method::GET,
                "/apis/apps/v1/namespaces/team/replicasets/web-abc",
                200,
                serde_json::to_value(replica_set("someone-else", "abc")).unwrap(),
            ),
            Exchange::new(
                Method::PATCH,
                "/apis/argoproj.io/v1alpha1/namespaces/team/rollouts/web/status",
                200,
                json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "web", "resourceVersion": "90"}}),
            )
            .checking(|body| assert_eq!(body, &json!({"status": {"collisionCount": 3}}))),
        ]);
        let ctx = context(client);
        let ro = rollout(json!({}));
        let err = Executor::new(&ctx, &ro)
            .run(&[Effect::CreateReplicaSet {
                replica_set: Box::new(replica_set("ro-uid", "abc")),
                collision_count_on_conflict: 3,
            }])
            .await
            .unwrap_err();
        assert_eq!(err.api_code(), Some(409));
        assert!(
            err.to_string()
                .starts_with("creating ReplicaSet \"web-abc\""),
            "{err}"
        );
        finish(server).await;
    }

    #[tokio::test]
    async fn scaling_sets_replicas_and_the_desired_replicas_annotation() {
        let (client, server) = scripted(vec![Exchange::new(
            Method::PATCH,
            "/apis/apps/v1/namespaces/team/replicasets/web-abc",
            200,
            serde_json::to_value(replica_set("ro-uid", "abc")).unwrap(),
        )
        .checking(|body| {
            assert_eq!(
                body,
                &json!({"metadata": {"annotations": {"rollout.argoproj.io/desired-replicas": "5", "scale-down-deadline": null}},
                        "spec": {"replicas": 2}})
            )
        })]);
        let ctx = context(client);
        let ro = rollout(json!({}));
        Executor::new(&ctx, &ro)
            .run(&[Effect::ScaleReplicaSet {
                name: "web-abc".into(),
                replicas: 2,
                desired_replicas: 5,
                remove_scale_down_deadline: true,
            }])
            .await
            .unwrap();
        finish(server).await;
    }

    #[tokio::test]
    async fn services_are_switched_with_a_strategic_merge_patch() {
        let (client, server) = scripted(vec![Exchange::new(
            Method::PATCH,
            "/api/v1/namespaces/team/services/web-stable",
            200,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-stable", "resourceVersion": "5"}}),
        )
        .checking(|body| {
            assert_eq!(
                body,
                &json!({"spec": {"selector": {"rollouts-pod-template-hash": "abc"}},
                        "metadata": {"annotations": {"argo-rollouts.argoproj.io/managed-by-rollouts": "web"}}})
            )
        })]);
        let ctx = context(client);
        let ro = rollout(json!({}));
        Executor::new(&ctx, &ro)
            .run(&[Effect::SwitchServiceSelector {
                service: "web-stable".into(),
                hash: "abc".into(),
                managed_by: Some("web".into()),
            }])
            .await
            .unwrap();
        finish(server).await;
    }

    #[tokio::test]
    async fn evictions_refused_by_a_disruption_budget_are_retried_later_not_errors() {
        let (client, server) = scripted(vec![
            Exchange::new(
                Method::POST,
                "/api/v1/namespaces/team/pods/web-1/eviction",
                429,
                status(429, "TooManyRequests"),
            )
            .checking(|body| assert_eq!(body["metadata"]["name"], "web-1")),
            Exchange::new(
                Method::POST,
                "/api/v1/namespaces/team/pods/web-2/eviction",
                404,
                status(404, "NotFound"),
            ),
            Exchange::new(
                Method::POST,
                "/api/v1/namespaces/team/pods/web-3/eviction",
                500,
                status(500, "InternalError"),
            ),
        ]);
        let ctx = context(client);
        let ro = rollout(json!({}));
        let err = Executor::new(&ctx, &ro)
            .run(&[
                Effect::EvictPod {
                    name: "web-1".into(),
                },
                Effect::EvictPod {
                    name: "web-2".into(),
                },
                Effect::EvictPod {
                    name: "web-3".into(),
                },
            ])
            .await
            .unwrap_err();
        assert!(
            err.to_string().starts_with("evicting pod \"web-3\""),
            "{err}"
        );
        finish(server).await;
    }

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pod_metadata_removes_what_was_injected_before_and_sets_what_is_wanted() {
        let previous = PodTemplateMetadata {
            labels: Some(m(&[("role", "canary"), ("old", "x")])),
            annotations: None,
        };
        let desired = PodTemplateMetadata {
            labels: Some(m(&[("role", "stable")])),
            annotations: Some(m(&[("note", "hi")])),
        };
        let labels = m(&[("app", "web"), ("role", "canary"), ("old", "x")]);
        let patch =
            pod_metadata_patch(Some(&labels), None, Some(&previous), Some(&desired)).unwrap();
        assert_eq!(
            patch,
            json!({"metadata": {"labels": {"old": null, "role": "stable"}, "annotations": {"note": "hi"}}})
        );
        // Already in line: nothing to do.
        let done = m(&[("app", "web"), ("role", "stable")]);
        let notes = m(&[("note", "hi")]);
        assert_eq!(
            pod_metadata_patch(Some(&done), Some(&notes), Some(&previous), Some(&desired)),
            None
        );
        // Removing everything that was injected; the user's labels stay.
        let patch = pod_metadata_patch(Some(&labels), None, Some(&previous), None).unwrap();
        assert_eq!(
            patch,
            json!({"metadata": {"labels": {"old": null, "role": null}}})
        );
    }

    #[test]
    fn replica_set_updates_become_merge_patches_against_the_cached_object() {
        let current: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "web-abc", "annotations": {"a": "1", "scale-down-deadline": "x"}},
            "spec": {"selector": {}, "template": {
                "metadata": {"labels": {"app": "web", "role": "canary"}},
                "spec": {"containers": [], "affinity": {"podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname"}]}}}
            }}
        }))
        .unwrap();
        let update = ReplicaSetUpdate {
            set_annotations: m(&[("rollout.argoproj.io/revision", "3")]),
            remove_annotations: vec!["scale-down-deadline".into()],
            min_ready_seconds: Some(10),
            affinity: Some(Some(
                serde_json::from_value(json!({"podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}]}}))
                .unwrap(),
            )),
            template_metadata: Some(PodTemplateMetadata {
                labels: Some(m(&[("app", "web"), ("role", "stable")])),
                annotations: None,
            }),
        };
        let patch = replica_set_patch(Some(&current), &update);
        assert_eq!(
            patch,
            json!({
                "metadata": {"annotations": {"rollout.argoproj.io/revision": "3", "scale-down-deadline": null}},
                "spec": {
                    "minReadySeconds": 10,
                    "template": {
                        "spec": {"affinity": {"podAntiAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}],
                            "requiredDuringSchedulingIgnoredDuringExecution": null}}},
                        "metadata": {"labels": {"role": "stable"}}
                    }
                }
            })
        );
        let remove = ReplicaSetUpdate {
            affinity: Some(None),
            ..ReplicaSetUpdate::default()
        };
        assert_eq!(
            replica_set_patch(Some(&current), &remove),
            json!({"spec": {"template": {"spec": {"affinity": null}}}})
        );
        assert_eq!(
            replica_set_patch(None, &ReplicaSetUpdate::default()),
            json!({})
        );
    }
}
