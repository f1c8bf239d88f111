//! DestinationRule transformation (subset-level routing) and the availability check that gates
//! it. Pure functions over JSON, like [`crate::routes`].

use rollouts_api::{IstioDestinationRule, Rollout, WeightDestination, labels};
use serde_json::{Map, Value, json};

use crate::IstioError;

/// Sets `key` to `hash` in a subset's `labels` (removes it when `hash` is empty).
fn label_subset(subset: &mut Value, hash: &str) {
    if hash.is_empty() {
        if let Some(l) = subset.get_mut("labels").and_then(Value::as_object_mut) {
            l.remove(labels::POD_TEMPLATE_HASH);
        }
        return;
    }
    if !subset["labels"].is_object() {
        subset["labels"] = json!({});
    }
    subset["labels"][labels::POD_TEMPLATE_HASH] = json!(hash);
}

/// Whether a subset has exactly the shape this router gives the subsets it adds for experiment
/// services: a name and a `labels` map holding only the pod-template hash.
fn is_added_experiment_subset(subset: &Value) -> bool {
    let Some(fields) = subset.as_object() else {
        return false;
    };
    let only_hash = subset["labels"]
        .as_object()
        .is_some_and(|l| l.len() == 1 && l.contains_key(labels::POD_TEMPLATE_HASH));
    only_hash && fields.keys().all(|k| k == "name" || k == "labels")
}

/// Points the subsets of the DestinationRule `object` at the pod-template hashes (Argo's
/// `UpdateHash`): the managed-by annotation names the Rollout; the canary and stable subsets get
/// `rollouts-pod-template-hash` = their hash (removed when the hash is empty); subsets named after
/// experiment services get the experiment's hash, and are added (sorted by name) when missing.
/// Subsets this router added for experiments that have ended are removed; every other subset
/// (`additionalSubsetNames`, the user's) and every other field is kept. Returns whether the
/// object changed.
pub fn update_subsets(
    rule: &IstioDestinationRule,
    rollout: &str,
    object: &mut Value,
    canary_hash: &str,
    stable_hash: &str,
    additional: &[WeightDestination],
) -> Result<bool, IstioError> {
    let before = object.clone();
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    if !object["metadata"]["annotations"].is_object() {
        object["metadata"]["annotations"] = json!({});
    }
    object["metadata"]["annotations"][labels::MANAGED_BY_ROLLOUTS] = json!(rollout);

    let mut experiments: Vec<&WeightDestination> = additional
        .iter()
        .filter(|d| d.service_name.as_deref().is_some_and(|s| !s.is_empty()))
        .collect();
    let extra = rule.additional_subset_names.as_deref().unwrap_or_default();
    let subsets = match object["spec"].get("subsets") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(_) => return Err(IstioError::Shape("spec.subsets is not a list".into())),
    };
    let had_subsets = !subsets.is_empty();
    let mut kept = Vec::with_capacity(subsets.len());
    for mut subset in subsets {
        let name = subset["name"].as_str().unwrap_or_default().to_string();
        if name == rule.canary_subset_name {
            label_subset(&mut subset, canary_hash);
        } else if name == rule.stable_subset_name {
            label_subset(&mut subset, stable_hash);
        } else if let Some(pos) = experiments
            .iter()
            .position(|d| d.service_name.as_deref() == Some(name.as_str()))
        {
            let dest = experiments.remove(pos);
            label_subset(
                &mut subset,
                dest.pod_template_hash.as_deref().unwrap_or_default(),
            );
        } else if !extra.contains(&name) && is_added_experiment_subset(&subset) {
            continue;
        }
        kept.push(subset);
    }
    experiments.sort_by(|a, b| a.service_name.cmp(&b.service_name));
    for dest in experiments {
        let mut subset = json!({"name": dest.service_name});
        label_subset(
            &mut subset,
            dest.pod_template_hash.as_deref().unwrap_or_default(),
        );
        kept.push(subset);
    }
    if had_subsets || !kept.is_empty() {
        if !object["spec"].is_object() {
            object["spec"] = Value::Object(Map::new());
        }
        object["spec"]["subsets"] = Value::Array(kept);
    }
    Ok(*object != before)
}

fn replicas(rs: &Value) -> i64 {
    // The API server defaults `spec.replicas` to 1.
    rs["spec"]["replicas"].as_i64().unwrap_or(1)
}

fn available(rs: &Value) -> i64 {
    rs["status"]["availableReplicas"].as_i64().unwrap_or(0)
}

fn hash_of(rs: &Value) -> &str {
    rs["metadata"]["labels"][labels::POD_TEMPLATE_HASH]
        .as_str()
        .unwrap_or_default()
}

/// Argo's `AbortOrDynamicRollbackToStable`: aborted, or fully promoted with `dynamicStableScale`
/// while traffic still goes to an older canary and the stable ReplicaSet is not yet at full size.
fn abort_or_dynamic_rollback(rollout: &Rollout, replica_sets: &[Value], stable_hash: &str) -> bool {
    let status = rollout.status.as_ref();
    if status.and_then(|s| s.abort) == Some(true) {
        return true;
    }
    let Some(stable_rs) = replica_sets.iter().find(|rs| hash_of(rs) == stable_hash) else {
        return false;
    };
    let canary = rollout
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.canary.as_ref());
    let dynamic =
        canary.is_some_and(|c| c.dynamic_stable_scale == Some(true) && c.traffic_routing.is_some());
    let fully_promoted = status.is_some_and(|s| s.stable_rs == s.current_pod_hash);
    let routed_hash = status
        .and_then(|s| s.canary.as_ref())
        .and_then(|c| c.weights.as_ref())
        .map(|w| w.canary.pod_template_hash.clone().unwrap_or_default());
    let (true, true, Some(routed)) = (dynamic, fully_promoted, routed_hash) else {
        return false;
    };
    routed != hash_of(stable_rs)
        && available(stable_rs) < i64::from(rollout.spec.replicas.unwrap_or(1))
}

/// With subset-level routing and no canary/stable Services, the DestinationRule must not point a
/// subset at a ReplicaSet whose pods are not all available yet (Argo issue 2507): returns the
/// first such ReplicaSet among `replica_sets` (the Rollout's) that has replicas and the canary or
/// stable hash. The canary is not waited for while aborting or dynamically rolling back.
pub fn unavailable_replica_set(
    rollout: &Rollout,
    replica_sets: &[Value],
    canary_hash: &str,
    stable_hash: &str,
) -> Option<String> {
    let skip_canary = abort_or_dynamic_rollback(rollout, replica_sets, stable_hash);
    replica_sets
        .iter()
        .filter(|rs| replicas(rs) > 0)
        .filter(|rs| {
            let hash = hash_of(rs);
            !hash.is_empty() && (hash == stable_hash || hash == canary_hash)
        })
        .filter(|rs| !(skip_canary && hash_of(rs) == canary_hash))
        .find(|rs| {
            let (want, have) = (replicas(rs), available(rs));
            !(want != 0 && have != 0 && want <= have)
        })
        .map(|rs| {
            rs["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(extra: &[&str]) -> IstioDestinationRule {
        IstioDestinationRule {
            name: "ratings".into(),
            canary_subset_name: "canary".into(),
            stable_subset_name: "stable".into(),
            additional_subset_names: (!extra.is_empty())
                .then(|| extra.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn exp(service: &str, hash: &str) -> WeightDestination {
        WeightDestination {
            weight: 5,
            service_name: Some(service.into()),
            pod_template_hash: Some(hash.into()),
        }
    }

    fn dr(subsets: Value) -> Value {
        json!({
            "apiVersion": "networking.istio.io/v1alpha3",
            "kind": "DestinationRule",
            "metadata": {"name": "ratings", "namespace": "shop", "resourceVersion": "7",
                         "labels": {"team": "r"}},
            "spec": {"host": "ratings", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
                     "subsets": subsets}
        })
    }

    #[test]
    fn canary_and_stable_subsets_get_the_hashes_and_keep_their_fields() {
        let mut object = dr(json!([
            {"name": "stable", "labels": {"app": "ratings"}},
            {"name": "canary", "labels": {"app": "ratings"},
             "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}}},
            {"name": "legacy", "labels": {"version": "v0"}},
            {"name": "extra", "labels": {"rollouts-pod-template-hash": "x1"}}
        ]));
        let changed =
            update_subsets(&rule(&["extra"]), "ratings", &mut object, "c2", "s1", &[]).unwrap();
        assert!(changed);
        assert_eq!(
            object,
            json!({
                "apiVersion": "networking.istio.io/v1alpha3",
                "kind": "DestinationRule",
                "metadata": {"name": "ratings", "namespace": "shop", "resourceVersion": "7",
                             "labels": {"team": "r"},
                             "annotations": {"argo-rollouts.argoproj.io/managed-by-rollouts": "ratings"}},
                "spec": {"host": "ratings", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
                         "subsets": [
                    {"name": "stable", "labels": {"app": "ratings", "rollouts-pod-template-hash": "s1"}},
                    {"name": "canary", "labels": {"app": "ratings", "rollouts-pod-template-hash": "c2"},
                     "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}}},
                    {"name": "legacy", "labels": {"version": "v0"}},
                    {"name": "extra", "labels": {"rollouts-pod-template-hash": "x1"}}
                ]}
            })
        );
        // Again: nothing changes (no write, no event), even with the extra subset fields.
        assert!(
            !update_subsets(&rule(&["extra"]), "ratings", &mut object, "c2", "s1", &[]).unwrap()
        );
    }

    #[test]
    fn an_empty_hash_removes_the_label() {
        let mut object = dr(json!([
            {"name": "stable", "labels": {"rollouts-pod-template-hash": "s1"}},
            {"name": "canary", "labels": {"app": "x", "rollouts-pod-template-hash": "c1"}}
        ]));
        update_subsets(&rule(&[]), "ratings", &mut object, "", "s1", &[]).unwrap();
        assert_eq!(
            object["spec"]["subsets"][1],
            json!({"name": "canary", "labels": {"app": "x"}})
        );
    }

    #[test]
    fn experiment_subsets_are_added_updated_and_cleaned_up() {
        let mut object = dr(json!([
            {"name": "stable", "labels": {}},
            {"name": "canary"},
            {"name": "exp-b", "labels": {"rollouts-pod-template-hash": "old"}}
        ]));
        update_subsets(
            &rule(&[]),
            "ratings",
            &mut object,
            "c1",
            "s1",
            &[exp("exp-c", "h3"), exp("exp-b", "h2"), exp("exp-a", "h1")],
        )
        .unwrap();
        assert_eq!(
            object["spec"]["subsets"],
            json!([
                {"name": "stable", "labels": {"rollouts-pod-template-hash": "s1"}},
                {"name": "canary", "labels": {"rollouts-pod-template-hash": "c1"}},
                {"name": "exp-b", "labels": {"rollouts-pod-template-hash": "h2"}},
                {"name": "exp-a", "labels": {"rollouts-pod-template-hash": "h1"}},
                {"name": "exp-c", "labels": {"rollouts-pod-template-hash": "h3"}}
            ])
        );
        // The experiment ends: its subsets (only a hash label) go, the others stay.
        update_subsets(&rule(&[]), "ratings", &mut object, "c1", "s1", &[]).unwrap();
        assert_eq!(
            object["spec"]["subsets"],
            json!([
                {"name": "stable", "labels": {"rollouts-pod-template-hash": "s1"}},
                {"name": "canary", "labels": {"rollouts-pod-template-hash": "c1"}}
            ])
        );
    }

    #[test]
    fn a_rule_without_subsets_gets_only_the_annotation() {
        let mut object = json!({"metadata": {"name": "r"}, "spec": {"host": "ratings"}});
        assert!(update_subsets(&rule(&[]), "ro", &mut object, "c", "s", &[]).unwrap());
        assert_eq!(
            object,
            json!({"metadata": {"name": "r", "annotations": {
                "argo-rollouts.argoproj.io/managed-by-rollouts": "ro"}},
                "spec": {"host": "ratings"}})
        );
        let mut bad = json!({"metadata": {}, "spec": {"subsets": {}}});
        assert_eq!(
            update_subsets(&rule(&[]), "ro", &mut bad, "c", "s", &[])
                .unwrap_err()
                .to_string(),
            "malformed object: spec.subsets is not a list"
        );
    }

    fn rs(name: &str, hash: &str, replicas: i64, available: i64) -> Value {
        json!({"metadata": {"name": name, "labels": {"rollouts-pod-template-hash": hash}},
               "spec": {"replicas": replicas}, "status": {"availableReplicas": available}})
    }

    fn rollout(status: Value, dynamic: bool) -> Rollout {
        serde_json::from_value(json!({
            "metadata": {"name": "ratings"},
            "spec": {"replicas": 4, "selector": {}, "strategy": {"canary": {
                "dynamicStableScale": dynamic,
                "trafficRouting": {"istio": {"virtualService": {"name": "vs"}}}
            }}},
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn the_switch_waits_for_fully_available_replica_sets() {
        let ro = rollout(json!({}), false);
        let sets = [
            rs("ratings-s1", "s1", 4, 4),
            rs("ratings-c1", "c1", 2, 1),
            rs("ratings-old", "o1", 3, 0),
            rs("ratings-zero", "c1", 0, 0),
        ];
        assert_eq!(
            unavailable_replica_set(&ro, &sets, "c1", "s1").as_deref(),
            Some("ratings-c1")
        );
        assert_eq!(unavailable_replica_set(&ro, &sets[..1], "c1", "s1"), None);
        // A stable set with no available pod blocks too.
        let sets = [rs("ratings-s1", "s1", 4, 0)];
        assert_eq!(
            unavailable_replica_set(&ro, &sets, "c1", "s1").as_deref(),
            Some("ratings-s1")
        );
    }

    #[test]
    fn aborts_and_dynamic_rollbacks_do_not_wait_for_the_canary() {
        let sets = [rs("ratings-s1", "s1", 4, 2), rs("ratings-c1", "c1", 2, 1)];
        let aborted = rollout(json!({"abort": true}), false);
        assert_eq!(
            unavailable_replica_set(&aborted, &sets, "c1", "s1").as_deref(),
            Some("ratings-s1")
        );
        let sets = [rs("ratings-s1", "s1", 4, 4), rs("ratings-c1", "c1", 2, 1)];
        assert_eq!(unavailable_replica_set(&aborted, &sets, "c1", "s1"), None);
        // Fully promoted back to s1 with dynamicStableScale, traffic still on c1, s1 not full.
        let rolling_back = rollout(
            json!({"stableRS": "s1", "currentPodHash": "s1", "canary": {"weights": {
                "canary": {"weight": 50, "podTemplateHash": "c1"},
                "stable": {"weight": 50, "podTemplateHash": "s1"}}}}),
            true,
        );
        let sets = [rs("ratings-s1", "s1", 4, 3), rs("ratings-c1", "c1", 2, 1)];
        assert_eq!(
            unavailable_replica_set(&rolling_back, &sets, "c1", "s1").as_deref(),
            Some("ratings-s1")
        );
        let not_dynamic = rollout(
            rolling_back
                .status
                .clone()
                .map(serde_json::to_value)
                .unwrap()
                .unwrap(),
            false,
        );
        assert_eq!(
            unavailable_replica_set(&not_dynamic, &sets, "c1", "s1").as_deref(),
            Some("ratings-s1")
        );
        // The stable set is available (3 of 3) but smaller than the Rollout (4): still rolling
        // back, the canary is not waited for; without dynamicStableScale it is.
        let sets = [rs("ratings-s1", "s1", 3, 3), rs("ratings-c1", "c1", 2, 1)];
        assert_eq!(
            unavailable_replica_set(&rolling_back, &sets, "c1", "s1"),
            None
        );
        assert_eq!(
            unavailable_replica_set(&not_dynamic, &sets, "c1", "s1").as_deref(),
            Some("ratings-c1")
        );
        // Once the stable set has every replica, the rollback is over and the canary counts.
        let sets = [rs("ratings-s1", "s1", 4, 4), rs("ratings-c1", "c1", 2, 1)];
        assert_eq!(
            unavailable_replica_set(&rolling_back, &sets, "c1", "s1").as_deref(),
            Some("ratings-c1")
        );
    }
}
