//! Rollouts on the test cluster: manifests, the user operations of `kubectl argo rollouts`
//! (promote, abort, retry, set image, restart, undo), and what the tests read back (status,
//! ReplicaSets, Service selectors, Events).

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::{
    apps::v1::ReplicaSet,
    core::v1::{Event, Pod, Service},
};
use kube::{
    Api,
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams},
};
use serde_json::{Value, json};

use crate::{
    TestContext,
    manifests::{self, Document, Mode},
    wait,
};

/// The pod-template hash label.
pub const HASH: &str = "rollouts-pod-template-hash";

fn rollout_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"),
        "rollouts",
    )
}

/// The Rollouts of the test's namespace.
pub fn rollouts(ctx: &TestContext) -> Api<DynamicObject> {
    Api::namespaced_with(ctx.client.clone(), &ctx.namespace, &rollout_resource())
}

/// Server-side applies one object into the test's namespace.
pub async fn apply(ctx: &TestContext, value: Value) -> Result<DynamicObject> {
    let doc = Document {
        file: PathBuf::from("<test>"),
        index: 0,
        value,
    };
    manifests::apply(&ctx.client, &ctx.namespace, &doc, Mode::Apply).await
}

/// A Service selecting `app: <app>`.
pub fn service(name: &str, app: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}
    })
}

/// A canary Rollout: `replicas` pods of `image`, labelled `app: <name>`, with `canary` as its
/// strategy block.
pub fn canary_rollout(name: &str, replicas: i32, image: &str, canary: Value) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            },
            "strategy": {"canary": canary}
        }
    })
}

/// The Rollout as JSON.
pub async fn get(ctx: &TestContext, name: &str) -> Result<Value> {
    let ro = rollouts(ctx)
        .get(name)
        .await
        .with_context(|| format!("reading Rollout {name}"))?;
    Ok(serde_json::to_value(ro)?)
}

/// A one-line summary of a Rollout's status (for error messages).
pub fn summary(ro: &Value) -> String {
    let s = &ro["status"];
    let conds: Vec<String> = s["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}={}/{}",
                c["type"].as_str().unwrap_or("?"),
                c["status"].as_str().unwrap_or("?"),
                c["reason"].as_str().unwrap_or("?")
            )
        })
        .collect();
    format!(
        "phase={} message={:?} step={} stableRS={} currentPodHash={} abort={} pauseConditions={} conditions=[{}]",
        s["phase"],
        s["message"],
        s["currentStepIndex"],
        s["stableRS"],
        s["currentPodHash"],
        s["abort"],
        s["pauseConditions"],
        conds.join(" ")
    )
}

/// Waits until the Rollout satisfies `check`; the error shows the last status.
pub async fn wait_for(
    ctx: &TestContext,
    name: &str,
    timeout: Duration,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let last = std::sync::Mutex::new(Value::Null);
    let (last_ref, check) = (&last, &check);
    let result = wait::until(timeout, what, || async move {
        let ro = get(ctx, name).await?;
        let ok = check(&ro);
        *last_ref.lock().unwrap_or_else(|p| p.into_inner()) = ro.clone();
        Ok::<_, anyhow::Error>(ok.then_some(ro))
    })
    .await;
    let last = last.into_inner().unwrap_or_else(|p| p.into_inner());
    result.with_context(|| format!("Rollout {name}: {}", summary(&last)))
}

/// `status.phase`.
pub fn phase(ro: &Value) -> &str {
    ro["status"]["phase"].as_str().unwrap_or("")
}

/// `status.currentStepIndex` (-1 when unset).
pub fn step(ro: &Value) -> i64 {
    ro["status"]["currentStepIndex"].as_i64().unwrap_or(-1)
}

/// Whether the controller has seen the current generation.
pub fn observed(ro: &Value) -> bool {
    let generation = ro["metadata"]["generation"].as_i64().unwrap_or(0);
    ro["status"]["observedGeneration"].as_str() == Some(generation.to_string().as_str())
}

/// The condition of `type_`: (status, reason, message).
pub fn condition(ro: &Value, type_: &str) -> Option<(String, String, String)> {
    ro["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or("").to_string(),
                c["reason"].as_str().unwrap_or("").to_string(),
                c["message"].as_str().unwrap_or("").to_string(),
            )
        })
}

/// Healthy, fully observed, on the current pod hash.
pub fn healthy(ro: &Value) -> bool {
    observed(ro)
        && phase(ro) == "Healthy"
        && ro["status"]["stableRS"] == ro["status"]["currentPodHash"]
        && !ro["status"]["stableRS"].is_null()
}

/// Paused at step `index` (a pause step of the canary).
pub fn paused_at(ro: &Value, index: i64) -> bool {
    observed(ro) && phase(ro) == "Paused" && step(ro) == index
}

/// Merge-patches the Rollout (`spec`, `metadata`).
pub async fn patch(ctx: &TestContext, name: &str, patch: Value) -> Result<()> {
    rollouts(ctx)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("patching Rollout {name} with {patch}"))?;
    Ok(())
}

/// Merge-patches the Rollout's status subresource (what `kubectl argo rollouts` does).
pub async fn patch_status(ctx: &TestContext, name: &str, patch: Value) -> Result<()> {
    rollouts(ctx)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("patching the status of Rollout {name} with {patch}"))?;
    Ok(())
}

/// `kubectl argo rollouts set image <name> app=<image>` (one container named `app`).
pub async fn set_image(ctx: &TestContext, name: &str, image: &str) -> Result<()> {
    patch(
        ctx,
        name,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}),
    )
    .await
}

/// `kubectl argo rollouts promote <name>`: clears the pause conditions.
pub async fn promote(ctx: &TestContext, name: &str) -> Result<()> {
    patch_status(ctx, name, json!({"status": {"pauseConditions": null}})).await
}

/// `kubectl argo rollouts promote --full <name>`.
pub async fn promote_full(ctx: &TestContext, name: &str) -> Result<()> {
    patch_status(ctx, name, json!({"status": {"promoteFull": true}})).await
}

/// `kubectl argo rollouts abort <name>`.
pub async fn abort(ctx: &TestContext, name: &str) -> Result<()> {
    patch_status(ctx, name, json!({"status": {"abort": true}})).await
}

/// `kubectl argo rollouts retry rollout <name>`.
pub async fn retry(ctx: &TestContext, name: &str) -> Result<()> {
    patch_status(ctx, name, json!({"status": {"abort": false}})).await
}

/// `kubectl argo rollouts undo <name> [--to-revision N]`: the template of that revision's
/// ReplicaSet (hash label removed) replaces the Rollout's.
pub async fn undo(ctx: &TestContext, name: &str, to_revision: u32) -> Result<()> {
    let sets = replica_sets(ctx).await?;
    let rs = sets
        .iter()
        .find(|r| r.revision == to_revision)
        .with_context(|| format!("no ReplicaSet of revision {to_revision} in {sets:?}"))?;
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let full = api.get(&rs.name).await?;
    let mut template = serde_json::to_value(full.spec.template.context("no template")?)?;
    if let Some(l) = template["metadata"]["labels"].as_object_mut() {
        l.remove(HASH);
    }
    // `kubectl argo rollouts undo` replaces the template with a JSON patch; a merge patch
    // gives the same result here, where revisions differ only in their images.
    rollouts(ctx)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": template}})),
        )
        .await
        .with_context(|| format!("undoing Rollout {name} to revision {to_revision}"))?;
    Ok(())
}

/// A ReplicaSet of the Rollout, as the tests look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rs {
    /// Name.
    pub name: String,
    /// Pod-template hash.
    pub hash: String,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.availableReplicas`.
    pub available: i32,
    /// `rollout.argoproj.io/revision`.
    pub revision: u32,
    /// The `scale-down-deadline` annotation.
    pub deadline: Option<String>,
}

/// The test namespace's ReplicaSets with a pod-template hash, oldest revision first.
pub async fn replica_sets(ctx: &TestContext) -> Result<Vec<Rs>> {
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let list = api.list(&ListParams::default().labels(HASH)).await?;
    let mut out: Vec<Rs> = list
        .items
        .iter()
        .map(|rs| {
            let ann = rs.metadata.annotations.clone().unwrap_or_default();
            Rs {
                name: rs.metadata.name.clone().unwrap_or_default(),
                hash: rs
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(HASH).cloned())
                    .unwrap_or_default(),
                replicas: rs.spec.replicas.unwrap_or(1),
                available: rs
                    .status
                    .as_ref()
                    .and_then(|s| s.available_replicas)
                    .unwrap_or(0),
                revision: ann
                    .get("rollout.argoproj.io/revision")
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(0),
                deadline: ann.get("scale-down-deadline").cloned(),
            }
        })
        .collect();
    out.sort_by_key(|r| r.revision);
    Ok(out)
}

/// `hash -> spec.replicas` of every ReplicaSet.
pub async fn sizes(ctx: &TestContext) -> Result<BTreeMap<String, i32>> {
    Ok(replica_sets(ctx)
        .await?
        .into_iter()
        .map(|r| (r.hash, r.replicas))
        .collect())
}

/// Waits until the ReplicaSets have these sizes (and as many pods available).
pub async fn wait_sizes(
    ctx: &TestContext,
    expected: &[(&str, i32)],
    timeout: Duration,
) -> Result<Vec<Rs>> {
    let want: BTreeMap<String, i32> = expected.iter().map(|(h, n)| (h.to_string(), *n)).collect();
    let what = format!("ReplicaSet sizes {want:?}");
    wait::until(timeout, &what, || async {
        let sets = replica_sets(ctx).await?;
        let got: BTreeMap<String, i32> = sets
            .iter()
            .filter(|r| r.replicas > 0 || want.contains_key(&r.hash))
            .map(|r| (r.hash.clone(), r.replicas))
            .collect();
        let available = sets
            .iter()
            .all(|r| want.get(&r.hash).is_none_or(|n| r.available == *n));
        Ok::<_, anyhow::Error>((got == want && available).then_some(sets))
    })
    .await
}

/// The pod-template hash a Service selects, if any.
pub async fn selector_hash(ctx: &TestContext, service: &str) -> Result<Option<String>> {
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let svc = api.get(service).await?;
    Ok(svc
        .spec
        .and_then(|s| s.selector)
        .and_then(|s| s.get(HASH).cloned()))
}

/// The Events our controller recorded on a Rollout, oldest first: (reason, message, count).
pub async fn events(ctx: &TestContext, rollout: &str) -> Result<Vec<(String, String, i32)>> {
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let list = api.list(&ListParams::default()).await?;
    let mut ours: Vec<(u128, String, String, i32)> = list
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some("Rollout")
                && e.involved_object.name.as_deref() == Some(rollout)
                && e.source.as_ref().and_then(|s| s.component.as_deref())
                    == Some("rollouts-controller")
        })
        .map(|e| {
            // Our event names end in the creation time in hex nanoseconds.
            let order = e
                .metadata
                .name
                .as_deref()
                .and_then(|n| n.rsplit_once('.'))
                .and_then(|(_, hex)| u128::from_str_radix(hex, 16).ok())
                .unwrap_or(0);
            (
                order,
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
                e.count.unwrap_or(1),
            )
        })
        .collect();
    ours.sort();
    Ok(ours.into_iter().map(|(_, r, m, c)| (r, m, c)).collect())
}

/// The reasons of [`events`], in order.
pub async fn event_reasons(ctx: &TestContext, rollout: &str) -> Result<Vec<String>> {
    Ok(events(ctx, rollout)
        .await?
        .into_iter()
        .map(|e| e.0)
        .collect())
}

/// Waits until an event with `reason` whose message contains `text` exists.
pub async fn wait_event(
    ctx: &TestContext,
    rollout: &str,
    reason: &str,
    text: &str,
    timeout: Duration,
) -> Result<()> {
    wait::until(
        timeout,
        &format!("a {reason} event with {text:?}"),
        || async {
            let evs = events(ctx, rollout).await?;
            Ok::<_, anyhow::Error>(
                evs.iter()
                    .any(|(r, m, _)| r == reason && m.contains(text))
                    .then_some(()),
            )
        },
    )
    .await
}

/// The pods of the namespace labelled `app=<app>` that are not terminating.
pub async fn live_pods(ctx: &TestContext, app: &str) -> Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let list = api
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect())
}

/// Checks that `subsequence` appears in `list` in this order (other items may sit between).
pub fn in_order(list: &[String], subsequence: &[&str]) -> Result<()> {
    let mut it = list.iter();
    for want in subsequence {
        if !it.any(|x| x == want) {
            bail!("{subsequence:?} is not a subsequence of {list:?} (missing {want} in order)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsequences() {
        let list: Vec<String> = ["a", "b", "c", "b"].iter().map(|s| s.to_string()).collect();
        assert!(in_order(&list, &["a", "c", "b"]).is_ok());
        assert!(in_order(&list, &["c", "a"]).is_err());
    }

    #[test]
    fn health_needs_the_current_generation() {
        let ro = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": "2", "phase": "Healthy", "stableRS": "a", "currentPodHash": "a"}});
        assert!(healthy(&ro));
        let stale = json!({"metadata": {"generation": 3}, "status": {"observedGeneration": "2", "phase": "Healthy", "stableRS": "a", "currentPodHash": "a"}});
        assert!(!healthy(&stale));
    }
}
