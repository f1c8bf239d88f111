//! `observe`: the engine's [`Snapshot`] built from raw Kubernetes objects, as a client reads
//! them from the API server (a Rollout, the namespace's ReplicaSets, Services, AnalysisRuns,
//! Experiments and pods, and the current time).
//!
//! The controller builds its snapshots from its caches; a client that only has what it listed
//! (`kubectl argo rollouts why`, `plan --from live`) builds the same snapshot here: the
//! ReplicaSets, AnalysisRuns and Experiments the Rollout controls (controller owner reference
//! with its UID), the Services its strategy names, the pods of its ReplicaSets, and one
//! [`RouterReport`] per configured traffic router with no verification known yet. Everything
//! is pure: no client, no clock.
//!
//! [`resolve_workload`] does what the controller does with a `workloadRef` once it has read the
//! referenced object: it copies the workload's pod template (and selector, when the Rollout has
//! none) into the Rollout and says how the resolution went.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use rollouts_api::{AnalysisRun, Experiment, PodTemplateSpec, Rollout, labels};
use serde_json::Value;

use crate::snapshot::{
    AnalysisRunView, EngineConfig, ExperimentTemplateView, ExperimentView, PodView,
    ReplicaSetFailure, ReplicaSetView, RouterReport, ServiceView, Snapshot, WorkloadView,
};

/// The objects of a Rollout's namespace a snapshot is built from. They may include objects of
/// other Rollouts: [`snapshot`] keeps what belongs to the Rollout.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    /// ReplicaSets.
    pub replica_sets: Vec<ReplicaSet>,
    /// Services.
    pub services: Vec<Service>,
    /// AnalysisRuns.
    pub analysis_runs: Vec<AnalysisRun>,
    /// Experiments.
    pub experiments: Vec<Experiment>,
    /// Pods.
    pub pods: Vec<Pod>,
}

/// The snapshot of `rollout` (already resolved with [`resolve_workload`] when it has a
/// `workloadRef`, and `workload` the result) among `objects` at `now`, with the default
/// [`EngineConfig`].
pub fn snapshot(
    rollout: Rollout,
    objects: &Objects,
    workload: Option<WorkloadView>,
    now: Timestamp,
) -> Snapshot {
    let uid = rollout.metadata.uid.clone().unwrap_or_default();
    let mine = |meta: &ObjectMeta| !uid.is_empty() && controlled_by(meta, &uid);
    let mut replica_sets: Vec<ReplicaSetView> = objects
        .replica_sets
        .iter()
        .filter(|rs| mine(&rs.metadata))
        .map(replica_set_view)
        .collect();
    replica_sets.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
    let names = service_names(&rollout);
    let services = names
        .iter()
        .filter_map(|n| {
            objects
                .services
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(n.as_str()))
        })
        .map(service_view)
        .collect();
    let mut analysis_runs: Vec<AnalysisRunView> = objects
        .analysis_runs
        .iter()
        .filter(|r| mine(&r.metadata))
        .map(AnalysisRunView::from_run)
        .collect();
    analysis_runs.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
    let mut experiments: Vec<ExperimentView> = objects
        .experiments
        .iter()
        .filter(|e| mine(&e.metadata))
        .map(experiment_view)
        .collect();
    experiments.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
    let min_ready = rollout.spec.min_ready_seconds.unwrap_or(0);
    let pods = objects
        .pods
        .iter()
        .filter(|p| {
            controller_uid(&p.metadata)
                .is_some_and(|owner| replica_sets.iter().any(|rs| rs.uid == owner))
        })
        .map(|p| pod_view(p, min_ready, now))
        .collect();
    let routers = router_names(&rollout)
        .into_iter()
        .map(|router| RouterReport {
            router,
            verifies_weight: true,
            last: None,
        })
        .collect();
    Snapshot {
        rollout,
        replica_sets,
        services,
        analysis_runs,
        experiments,
        routers,
        router_referenced_hashes: Default::default(),
        pods,
        workload,
        now,
        config: EngineConfig::default(),
    }
}

/// The UID of the controller owner of `meta`.
pub fn controller_uid(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

/// Whether `meta` is controlled by the object with `uid`.
pub fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_uid(meta) == Some(uid)
}

fn created(meta: &ObjectMeta) -> Timestamp {
    meta.creation_timestamp
        .as_ref()
        .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
}

/// The engine's view of a ReplicaSet.
pub fn replica_set_view(rs: &ReplicaSet) -> ReplicaSetView {
    let meta = &rs.metadata;
    let spec = Some(&rs.spec);
    let status = rs.status.as_ref();
    let replica_failure = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| {
            c.iter()
                .find(|c| c.type_.as_deref() == Some("ReplicaFailure"))
        })
        .map(|c| ReplicaSetFailure {
            status: c.status.clone().unwrap_or_default(),
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
            last_transition_time: c
                .last_transition_time
                .as_ref()
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0),
        });
    ReplicaSetView {
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        annotations: meta.annotations.clone().unwrap_or_default(),
        spec_replicas: spec.and_then(|s| s.replicas).unwrap_or(1),
        min_ready_seconds: spec.and_then(|s| s.min_ready_seconds).unwrap_or(0),
        replicas: status.map_or(0, |s| s.replicas),
        ready_replicas: status.and_then(|s| s.ready_replicas).unwrap_or(0),
        available_replicas: status.and_then(|s| s.available_replicas).unwrap_or(0),
        generation: meta.generation.unwrap_or(0),
        observed_generation: status.and_then(|s| s.observed_generation).unwrap_or(0),
        created: created(meta),
        deleting: meta.deletion_timestamp.is_some(),
        template: spec.and_then(|s| s.template.clone()),
        replica_failure,
    }
}

/// The engine's view of a Service.
pub fn service_view(svc: &Service) -> ServiceView {
    ServiceView {
        name: svc.metadata.name.clone().unwrap_or_default(),
        selector: svc
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default(),
        annotations: svc.metadata.annotations.clone().unwrap_or_default(),
    }
}

/// The engine's view of an Experiment.
pub fn experiment_view(ex: &Experiment) -> ExperimentView {
    let status = ex.status.clone().unwrap_or_default();
    ExperimentView {
        name: ex.metadata.name.clone().unwrap_or_default(),
        labels: ex.metadata.labels.clone().unwrap_or_default(),
        phase: status.phase.clone().unwrap_or_default(),
        message: status.message.clone().unwrap_or_default(),
        terminate: ex.spec.terminate == Some(true),
        created: created(&ex.metadata),
        deleting: ex.metadata.deletion_timestamp.is_some(),
        templates: status
            .template_statuses
            .iter()
            .flatten()
            .map(|t| ExperimentTemplateView {
                name: t.name.clone(),
                service_name: t.service_name.clone().unwrap_or_default(),
                pod_template_hash: t.pod_template_hash.clone().unwrap_or_default(),
            })
            .collect(),
    }
}

/// The engine's view of a pod: available once Ready for `min_ready_seconds`.
pub fn pod_view(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> PodView {
    let ready_since = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
        .map(|c| {
            c.last_transition_time
                .as_ref()
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
        });
    let available = ready_since.is_some_and(|since| {
        min_ready_seconds <= 0
            || since
                .checked_add(SignedDuration::from_secs(i64::from(min_ready_seconds)))
                .is_ok_and(|t| t <= now)
    });
    PodView {
        name: pod.metadata.name.clone().unwrap_or_default(),
        owner_uid: controller_uid(&pod.metadata)
            .unwrap_or_default()
            .to_string(),
        created: created(&pod.metadata),
        available,
        deleting: pod.metadata.deletion_timestamp.is_some(),
    }
}

/// The Services the strategy names (each once, in a stable order: canary, stable, ping, pong,
/// ALB root; active, preview).
pub fn service_names(rollout: &Rollout) -> Vec<String> {
    let mut names = Vec::new();
    let mut add = |n: Option<&String>| {
        if let Some(n) = n.filter(|n| !n.is_empty())
            && !names.contains(n)
        {
            names.push(n.clone());
        }
    };
    if let Some(c) = rollout.spec.canary() {
        add(c.canary_service.as_ref());
        add(c.stable_service.as_ref());
        if let Some(pp) = &c.ping_pong {
            add(Some(&pp.ping_service));
            add(Some(&pp.pong_service));
        }
        if let Some(alb) = c.traffic_routing.as_ref().and_then(|t| t.alb.as_ref()) {
            add(alb.root_service.as_ref());
        }
    }
    if let Some(bg) = rollout.spec.blue_green() {
        add(Some(&bg.active_service));
        add(bg.preview_service.as_ref());
    }
    names
}

/// The keys of the traffic routers the canary strategy configures (`istio`, `nginx`, `alb`,
/// `smi`, `ambassador`, `appMesh`, `traefik`, `apisix`, then plugin names).
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

/// Where a kind that `workloadRef` may name keeps its pod template and selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkloadKind {
    /// The resource's plural (`deployments`, `replicasets`, `podtemplates`).
    pub plural: &'static str,
    /// The path of the pod template in the object.
    pub template: &'static [&'static str],
    /// The path of the selector in the object, if the kind has one.
    pub selector: Option<&'static [&'static str]>,
}

/// The kinds Argo supports for `workloadRef` (`apps/v1` Deployment and ReplicaSet, `v1`
/// PodTemplate); `None` for any other.
pub fn workload_kind(api_version: &str, kind: &str) -> Option<WorkloadKind> {
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    match (group, kind) {
        ("", "PodTemplate") => Some(WorkloadKind {
            plural: "podtemplates",
            template: &["template"],
            selector: None,
        }),
        ("apps", "Deployment") => Some(WorkloadKind {
            plural: "deployments",
            template: &["spec", "template"],
            selector: Some(&["spec", "selector"]),
        }),
        ("apps", "ReplicaSet") => Some(WorkloadKind {
            plural: "replicasets",
            template: &["spec", "template"],
            selector: Some(&["spec", "selector"]),
        }),
        _ => None,
    }
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, k| v.get(*k))
}

/// Resolves the Rollout's `workloadRef` with the referenced object as read (`None`: it does
/// not exist): the workload's template goes into `spec.template`, its selector into
/// `spec.selector` when the Rollout has none, and its generation into the
/// `rollout.argoproj.io/workload-generation` annotation. `None` when the Rollout has no
/// `workloadRef`; a problem is a [`WorkloadView::Error`] (the engine reports it as
/// `InvalidSpec`).
pub fn resolve_workload(rollout: &mut Rollout, object: Option<&Value>) -> Option<WorkloadView> {
    let reference = rollout.spec.workload_ref.clone()?;
    let kind = reference.kind.clone().unwrap_or_default();
    let name = reference.name.clone().unwrap_or_default();
    let api_version = reference.api_version.clone().unwrap_or_default();
    let has_template = rollout
        .spec
        .template
        .as_ref()
        .is_some_and(|t| serde_json::to_value(t).is_ok_and(|v| v != serde_json::json!({})));
    let error = |m: String| Some(WorkloadView::Error(m));
    if has_template {
        return error("template must be empty for workload reference rollout".into());
    }
    let Some(info) = workload_kind(&api_version, &kind) else {
        let group = api_version.split_once('/').map_or("", |(g, _)| g);
        return error(format!("workload of type {group}/{kind} is not supported"));
    };
    let Some(object) = object else {
        return error(format!("{kind} {name:?} not found"));
    };
    if let Some(template) = at(object, info.template) {
        match rollouts_api::decode::<PodTemplateSpec>(template) {
            Ok(t) => rollout.spec.template = Some(t),
            Err(e) => return error(format!("{kind} {name:?}: template: {e}")),
        }
    }
    if rollout.spec.selector.is_none()
        && let Some(path) = info.selector
        && let Some(selector) = at(object, path)
    {
        match serde_json::from_value::<LabelSelector>(selector.clone()) {
            Ok(s) => rollout.spec.selector = Some(s),
            Err(e) => return error(format!("{kind} {name:?}: selector: {e}")),
        }
    }
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    rollout
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(
            labels::WORKLOAD_GENERATION.to_string(),
            generation.to_string(),
        );
    Some(WorkloadView::Resolved { generation })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("decodes")
    }

    fn owner(uid: &str) -> Value {
        json!([{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "web", "uid": uid, "controller": true}])
    }

    fn rollout() -> Rollout {
        rollouts_api::decode(&json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop", "uid": "ro-1", "generation": 2},
            "spec": {"replicas": 2, "minReadySeconds": 5, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
                "strategy": {"canary": {"stableService": "web-stable", "canaryService": "web-canary",
                    "trafficRouting": {"nginx": {"stableIngress": "web"}, "plugins": {"acme/gw": {}}}}}}
        }))
        .expect("rollout decodes")
    }

    fn rs(name: &str, owner_uid: &str, created: &str) -> ReplicaSet {
        decode(json!({
            "metadata": {"name": name, "uid": format!("uid-{name}"), "creationTimestamp": created,
                "labels": {"rollouts-pod-template-hash": name}, "ownerReferences": owner(owner_uid)},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 2, "availableReplicas": 1,
                "conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "quota"}]}
        }))
    }

    #[test]
    fn keeps_what_the_rollout_controls() {
        let now: Timestamp = "2025-06-01T12:00:10Z".parse().unwrap();
        let objects = Objects {
            replica_sets: vec![
                rs("b", "ro-1", "2025-06-01T11:00:00Z"),
                rs("a", "ro-1", "2025-06-01T10:00:00Z"),
                rs("other", "ro-2", "2025-06-01T10:00:00Z"),
            ],
            services: vec![
                decode(
                    json!({"metadata": {"name": "web-stable"}, "spec": {"selector": {"app": "web", "rollouts-pod-template-hash": "a"}}}),
                ),
                decode(json!({"metadata": {"name": "unrelated"}})),
            ],
            analysis_runs: vec![
                decode(
                    json!({"metadata": {"name": "run", "ownerReferences": owner("ro-1")},
                    "spec": {"metrics": [{"name": "m", "successCondition": "result > 1", "provider": {"web": {"url": "u"}}}]},
                    "status": {"phase": "Running", "metricResults": [{"name": "m", "phase": "Running", "count": 1,
                        "measurements": [{"phase": "Successful", "value": "3", "startedAt": "2025-06-01T12:00:00Z"}]}]}}),
                ),
                decode(
                    json!({"metadata": {"name": "foreign", "ownerReferences": owner("ro-2")}, "spec": {"metrics": []}}),
                ),
            ],
            experiments: vec![decode(
                json!({"metadata": {"name": "exp", "ownerReferences": owner("ro-1")},
                "spec": {"templates": []},
                "status": {"phase": "Running", "templateStatuses": [{"name": "t", "replicas": 1, "updatedReplicas": 1,
                    "readyReplicas": 1, "availableReplicas": 1, "serviceName": "svc", "podTemplateHash": "h"}]}}),
            )],
            pods: vec![
                decode(
                    json!({"metadata": {"name": "p1", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "uid-a", "controller": true}]},
                    "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2025-06-01T12:00:00Z"}]}}),
                ),
                decode(
                    json!({"metadata": {"name": "p2", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": "uid-x", "controller": true}]}}),
                ),
            ],
        };
        let snap = snapshot(rollout(), &objects, None, now);
        let names: Vec<&str> = snap.replica_sets.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"], "owned, oldest first");
        let a = &snap.replica_sets[0];
        assert_eq!(
            (a.spec_replicas, a.replicas, a.available_replicas),
            (2, 2, 1)
        );
        assert_eq!(a.hash(), "a");
        assert_eq!(a.replica_failure.as_ref().unwrap().reason, "FailedCreate");
        assert_eq!(snap.services.len(), 1);
        assert_eq!(snap.services[0].selected_hash(), "a");
        assert_eq!(snap.analysis_runs.len(), 1);
        let m = &snap.analysis_runs[0].metrics[0];
        assert_eq!(m.success_condition, "result > 1");
        assert_eq!(m.last.as_ref().unwrap().value, "3");
        assert_eq!(snap.experiments[0].templates[0].service_name, "svc");
        assert_eq!(snap.pods.len(), 1);
        assert!(snap.pods[0].available, "ready 10s, minReadySeconds 5");
        let routers: Vec<&str> = snap.routers.iter().map(|r| r.router.as_str()).collect();
        assert_eq!(routers, ["nginx", "acme/gw"]);
        assert_eq!(snap.now, now);
    }

    #[test]
    fn pods_wait_for_min_ready_seconds() {
        let now: Timestamp = "2025-06-01T12:00:03Z".parse().unwrap();
        let pod: Pod = decode(json!({"metadata": {"name": "p"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2025-06-01T12:00:00Z"}]}}));
        assert!(!pod_view(&pod, 5, now).available);
        assert!(pod_view(&pod, 0, now).available);
        assert!(!pod_view(&decode(json!({"metadata": {"name": "q"}})), 0, now).available);
    }

    #[test]
    fn workload_references_are_resolved() {
        let mut ro = rollout();
        assert_eq!(resolve_workload(&mut ro, None), None, "no workloadRef");
        ro.spec.template = None;
        ro.spec.selector = None;
        ro.spec.workload_ref = Some(
            rollouts_api::decode(
                &json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}),
            )
            .unwrap(),
        );
        assert_eq!(
            resolve_workload(&mut ro.clone(), None),
            Some(WorkloadView::Error("Deployment \"web\" not found".into()))
        );
        let deployment = json!({"metadata": {"name": "web", "generation": 7},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i:2"}]}}}});
        assert_eq!(
            resolve_workload(&mut ro, Some(&deployment)),
            Some(WorkloadView::Resolved { generation: 7 })
        );
        assert!(ro.spec.template.is_some());
        assert!(ro.spec.selector.is_some());
        assert_eq!(
            ro.metadata.annotations.as_ref().unwrap()[labels::WORKLOAD_GENERATION],
            "7"
        );
        // A template next to the reference, and an unsupported kind.
        assert_eq!(
            resolve_workload(&mut ro.clone(), Some(&deployment)),
            Some(WorkloadView::Error(
                "template must be empty for workload reference rollout".into()
            ))
        );
        let mut sts = rollout();
        sts.spec.template = None;
        sts.spec.workload_ref = Some(
            rollouts_api::decode(
                &json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web"}),
            )
            .unwrap(),
        );
        assert_eq!(
            resolve_workload(&mut sts, Some(&deployment)),
            Some(WorkloadView::Error(
                "workload of type apps/StatefulSet is not supported".into()
            ))
        );
        assert_eq!(
            workload_kind("v1", "PodTemplate").map(|k| k.plural),
            Some("podtemplates")
        );
    }
}
