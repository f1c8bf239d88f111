//! From caches to the engine's [`Snapshot`].
//!
//! The Rollout's ReplicaSets, AnalysisRuns and Experiments are the cached objects it controls
//! (controller owner reference with its UID). ReplicaSets that match the Rollout's selector but
//! have no controller are adopted first, as Argo's `ClaimReplicaSets` does (see
//! [`orphans_to_adopt`]). Services are the ones the strategy names. Pods are listed only while
//! a `restartAt` is pending, since only the restart logic needs them.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{
    api::{
        apps::v1::ReplicaSet,
        core::v1::{Pod, Service},
    },
    apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta},
};
use kube::runtime::reflector::{ObjectRef, Store};
use rollouts_api::Rollout;
use rollouts_engine::{
    AnalysisRunView, EngineConfig, ExperimentTemplateView, ExperimentView, PodView,
    ReplicaSetFailure, ReplicaSetView, RouterReport, ServiceView, Snapshot, WorkloadView,
};

use crate::{
    context::Context,
    objects::{AnalysisRunSummary, ExperimentSummary},
};

/// Whether `meta` is controlled by the object with `uid`.
pub fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_uid(meta) == Some(uid)
}

/// The UID of the controller owner of `meta`.
pub fn controller_uid(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

/// Whether `labels` match a LabelSelector (an empty selector matches nothing, as for workloads).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let mut any = false;
    for (k, v) in selector.match_labels.iter().flatten() {
        any = true;
        if labels.get(k) != Some(v) {
            return false;
        }
    }
    for expr in selector.match_expressions.iter().flatten() {
        any = true;
        let value = labels.get(&expr.key);
        let values = expr.values.as_deref().unwrap_or_default();
        let ok = match expr.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    any
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
        created: meta
            .creation_timestamp
            .as_ref()
            .map_or(Timestamp::UNIX_EPOCH, |t| t.0),
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

fn created(meta: &ObjectMeta) -> Timestamp {
    meta.creation_timestamp
        .as_ref()
        .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
}

/// The engine's view of an AnalysisRun.
pub fn analysis_run_view(run: &AnalysisRunSummary) -> AnalysisRunView {
    AnalysisRunView {
        name: run.metadata.name.clone().unwrap_or_default(),
        labels: run.metadata.labels.clone().unwrap_or_default(),
        phase: run.status.phase.clone().unwrap_or_default(),
        message: run.status.message.clone().unwrap_or_default(),
        terminate: run.spec.terminate == Some(true),
        created: created(&run.metadata),
        deleting: run.metadata.deletion_timestamp.is_some(),
        ..Default::default()
    }
}

/// The engine's view of an Experiment.
pub fn experiment_view(ex: &ExperimentSummary) -> ExperimentView {
    ExperimentView {
        name: ex.metadata.name.clone().unwrap_or_default(),
        labels: ex.metadata.labels.clone().unwrap_or_default(),
        phase: ex.status.phase.clone().unwrap_or_default(),
        message: ex.status.message.clone().unwrap_or_default(),
        terminate: ex.spec.terminate == Some(true),
        created: created(&ex.metadata),
        deleting: ex.metadata.deletion_timestamp.is_some(),
        templates: ex
            .status
            .template_statuses
            .iter()
            .map(|t| ExperimentTemplateView {
                name: t.name.clone().unwrap_or_default(),
                service_name: t.service_name.clone().unwrap_or_default(),
                pod_template_hash: t.pod_template_hash.clone().unwrap_or_default(),
            })
            .collect(),
    }
}

/// The engine's view of a pod: available when Ready for `minReadySeconds`.
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
            || since + SignedDuration::from_secs(i64::from(min_ready_seconds)) <= now
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

/// The Services the strategy names (each at most once, in a stable order).
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

/// Whether the Rollout needs its pods in the snapshot (a restart is pending).
pub fn needs_pods(rollout: &Rollout, now: Timestamp) -> bool {
    let Some(restart_at) = &rollout.spec.restart_at else {
        return false;
    };
    let done = rollout
        .status
        .as_ref()
        .and_then(|s| s.restarted_at.as_ref())
        == Some(restart_at);
    !done && restart_at.0 <= now
}

fn owned<K>(store: &Store<K>, namespace: &str, uid: &str) -> Vec<std::sync::Arc<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    store.state_filter(|o| {
        o.meta().namespace.as_deref() == Some(namespace) && controlled_by(o.meta(), uid)
    })
}

/// ReplicaSets with no controller that match the Rollout's selector (to adopt).
pub fn orphans_to_adopt(store: &Store<ReplicaSet>, rollout: &Rollout) -> Vec<String> {
    let (Some(ns), Some(selector)) = (
        rollout.metadata.namespace.as_deref(),
        rollout.spec.selector.as_ref(),
    ) else {
        return Vec::new();
    };
    if rollout.metadata.deletion_timestamp.is_some() {
        return Vec::new();
    }
    store
        .state_filter(|rs| {
            rs.metadata.namespace.as_deref() == Some(ns)
                && rs.metadata.deletion_timestamp.is_none()
                && controller_uid(&rs.metadata).is_none()
                && selector_matches(
                    selector,
                    rs.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
                )
        })
        .iter()
        .filter_map(|rs| rs.metadata.name.clone())
        .collect()
}

/// Everything but the pods and routers, from the caches.
pub fn build(
    ctx: &Context,
    rollout: Rollout,
    workload: Option<WorkloadView>,
    pods: Vec<PodView>,
    routers: Vec<RouterReport>,
    now: Timestamp,
    reassert_traffic: bool,
) -> Snapshot {
    let ns = rollout.metadata.namespace.clone().unwrap_or_default();
    let uid = rollout.metadata.uid.clone().unwrap_or_default();
    let stores = &ctx.stores;
    let mut replica_sets: Vec<ReplicaSetView> = owned(&stores.replica_sets, &ns, &uid)
        .iter()
        .map(|rs| replica_set_view(rs))
        .collect();
    replica_sets.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
    let services = service_names(&rollout)
        .iter()
        .filter_map(|name| stores.services.get(&ObjectRef::new(name).within(&ns)))
        .map(|svc| service_view(&svc))
        .collect();
    let mut analysis_runs: Vec<AnalysisRunView> = owned(&stores.analysis_runs, &ns, &uid)
        .iter()
        .map(|r| analysis_run_view(r))
        .collect();
    analysis_runs.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
    let mut experiments: Vec<ExperimentView> = owned(&stores.experiments, &ns, &uid)
        .iter()
        .map(|e| experiment_view(e))
        .collect();
    experiments.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
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
        config: EngineConfig {
            verify_retry_interval: ctx.config.verify_retry_interval,
            resync_period: ctx.config.resync,
            instance_id: ctx.config.instance_id.clone(),
            reassert_traffic,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, Time};
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_match_like_kubernetes() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["front".into(), "edge".into()]),
                },
                LabelSelectorRequirement {
                    key: "legacy".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert!(selector_matches(
            &sel,
            &labels(&[("app", "web"), ("tier", "edge")])
        ));
        assert!(!selector_matches(
            &sel,
            &labels(&[("app", "web"), ("tier", "back")])
        ));
        assert!(!selector_matches(
            &sel,
            &labels(&[("app", "web"), ("tier", "edge"), ("legacy", "1")])
        ));
        assert!(!selector_matches(&sel, &labels(&[("tier", "edge")])));
        assert!(!selector_matches(
            &LabelSelector::default(),
            &labels(&[("a", "b")])
        ));
    }

    #[test]
    fn replica_set_views_carry_what_the_engine_reads() {
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {
                "name": "web-abc", "uid": "rs-1", "generation": 3,
                "creationTimestamp": "2024-05-01T10:00:00Z",
                "labels": {"rollouts-pod-template-hash": "abc"},
                "annotations": {"rollout.argoproj.io/revision": "2"},
                "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "web", "uid": "ro-1", "controller": true}]
            },
            "spec": {"replicas": 3, "minReadySeconds": 5, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"replicas": 3, "readyReplicas": 2, "availableReplicas": 1, "observedGeneration": 3,
                       "conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "quota"}]}
        }))
        .unwrap();
        let v = replica_set_view(&rs);
        assert_eq!(v.name, "web-abc");
        assert_eq!(v.hash(), "abc");
        assert_eq!(v.revision(), Some(2));
        assert_eq!(
            (
                v.spec_replicas,
                v.replicas,
                v.ready_replicas,
                v.available_replicas
            ),
            (3, 3, 2, 1)
        );
        assert_eq!(
            (v.generation, v.observed_generation, v.min_ready_seconds),
            (3, 3, 5)
        );
        assert_eq!(
            v.created,
            "2024-05-01T10:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(v.replica_failure.unwrap().reason, "FailedCreate");
        assert!(v.template.is_some());
        assert!(controlled_by(&rs.metadata, "ro-1"));
        assert!(!controlled_by(&rs.metadata, "ro-2"));
    }

    #[test]
    fn pods_are_available_after_min_ready_seconds() {
        let now: Timestamp = "2024-05-01T10:00:10Z".parse().unwrap();
        let pod = |ready_at: &str| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": "p", "creationTimestamp": "2024-05-01T09:00:00Z",
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-1", "controller": true}]},
                "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ready_at}]}
            }))
            .unwrap()
        };
        let p = pod_view(&pod("2024-05-01T10:00:00Z"), 5, now);
        assert!(p.available);
        assert_eq!(p.owner_uid, "rs-1");
        assert!(!pod_view(&pod("2024-05-01T10:00:08Z"), 5, now).available);
        assert!(pod_view(&pod("2024-05-01T10:00:08Z"), 0, now).available);
        let mut unready = pod("2024-05-01T10:00:00Z");
        unready.status = None;
        assert!(!pod_view(&unready, 0, now).available);
    }

    #[test]
    fn services_named_by_the_strategy() {
        let ro: Rollout = rollouts_api::decode(&json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "web"},
            "spec": {"strategy": {"canary": {"canaryService": "web-canary", "stableService": "web-stable",
                "trafficRouting": {"alb": {"ingress": "i", "servicePort": 80, "rootService": "web-root"}}}}}
        }))
        .unwrap();
        assert_eq!(service_names(&ro), ["web-canary", "web-stable", "web-root"]);
        let bg: Rollout = rollouts_api::decode(&json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "web"},
            "spec": {"strategy": {"blueGreen": {"activeService": "a", "previewService": "a"}}}
        }))
        .unwrap();
        assert_eq!(service_names(&bg), ["a"]);
    }

    #[test]
    fn pods_are_needed_only_while_a_restart_is_due() {
        let now: Timestamp = "2024-05-01T10:00:00Z".parse().unwrap();
        let mut ro = Rollout::default();
        assert!(!needs_pods(&ro, now));
        ro.spec.restart_at = Some(Time("2024-05-01T09:59:00Z".parse().unwrap()));
        assert!(needs_pods(&ro, now));
        ro.status = Some(rollouts_api::RolloutStatus {
            restarted_at: ro.spec.restart_at.clone(),
            ..Default::default()
        });
        assert!(!needs_pods(&ro, now));
        ro.spec.restart_at = Some(Time("2024-05-01T10:05:00Z".parse().unwrap()));
        assert!(!needs_pods(&ro, now), "not due yet");
    }
}
