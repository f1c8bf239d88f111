//! The commands that change a Rollout, AnalysisRun or Experiment: `promote`, `abort`, `retry`,
//! `pause`, `restart`, `set image`, `undo`, `terminate`. Each sends the bodies of
//! [`crate::patches`] to the same endpoints as Argo's plugin and prints Argo's line.

use std::io::Write;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplate;
use kube::Api;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use rollouts_api::{AnalysisRun, Experiment, Rollout, labels};
use rollouts_engine::duration::parse_go_duration;
use serde_json::Value;

use crate::client::Kube;
use crate::error::Error;
use crate::patches::{self, PromoteMode};

/// `promote NAME`; returns after the patches are accepted.
pub async fn promote(
    kube: &Kube,
    name: &str,
    mode: PromoteMode,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let ro: Rollout = kube.get("rollout", name).await?;
    let p = patches::promote(&ro, mode).map_err(Error::Refused)?;
    let mut spec = p.spec.clone();
    if let Some(status) = &p.status {
        match kube
            .api::<Rollout>()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {
                // No status subresource: the unified patch replaces both.
                spec = p.unified.clone();
            }
            Err(e) => {
                return Err(kube.err(e, "patching the status of", &kube.target("rollout", name)));
            }
        }
    }
    if let Some(spec) = &spec {
        kube.merge_patch::<Rollout>("rollout", name, spec).await?;
    }
    if mode == PromoteMode::Full {
        writeln!(out, "rollout '{name}' fully promoted")?;
    } else {
        writeln!(out, "rollout '{name}' promoted")?;
    }
    Ok(())
}

/// `abort NAME...`.
pub async fn abort(kube: &Kube, names: &[String], out: &mut dyn Write) -> Result<(), Error> {
    for name in names {
        kube.merge_patch_status::<Rollout>("rollout", name, &patches::abort(), None)
            .await?;
        writeln!(out, "rollout '{name}' aborted")?;
    }
    Ok(())
}

/// `retry rollout NAME...`.
pub async fn retry_rollout(
    kube: &Kube,
    names: &[String],
    out: &mut dyn Write,
) -> Result<(), Error> {
    for name in names {
        kube.merge_patch_status::<Rollout>("rollout", name, &patches::retry_rollout(), None)
            .await?;
        writeln!(out, "rollout '{name}' retried")?;
    }
    Ok(())
}

/// `retry experiment NAME...`.
pub async fn retry_experiment(
    kube: &Kube,
    names: &[String],
    out: &mut dyn Write,
) -> Result<(), Error> {
    for name in names {
        kube.merge_patch::<Experiment>("experiment", name, &patches::retry_experiment())
            .await?;
        writeln!(out, "experiment '{name}' retried")?;
    }
    Ok(())
}

/// `pause NAME...`.
pub async fn pause(kube: &Kube, names: &[String], out: &mut dyn Write) -> Result<(), Error> {
    for name in names {
        kube.merge_patch::<Rollout>("rollout", name, &patches::pause())
            .await?;
        writeln!(out, "rollout '{name}' paused")?;
    }
    Ok(())
}

/// `terminate analysisrun NAME...`.
pub async fn terminate_analysis_runs(
    kube: &Kube,
    names: &[String],
    out: &mut dyn Write,
) -> Result<(), Error> {
    for name in names {
        kube.merge_patch::<AnalysisRun>("analysisrun", name, &patches::terminate())
            .await?;
        writeln!(out, "analysisRun '{name}' terminated")?;
    }
    Ok(())
}

/// `terminate experiment NAME...`.
pub async fn terminate_experiments(
    kube: &Kube,
    names: &[String],
    out: &mut dyn Write,
) -> Result<(), Error> {
    for name in names {
        kube.merge_patch::<Experiment>("experiment", name, &patches::terminate())
            .await?;
        writeln!(out, "experiment '{name}' terminated")?;
    }
    Ok(())
}

/// `restart NAME [--in DURATION]`.
pub async fn restart(
    kube: &Kube,
    name: &str,
    in_: Option<&str>,
    now: Timestamp,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let (at, shown) = match in_ {
        Some(d) => {
            let parsed = parse_go_duration(d)
                .map_err(|e| Error::Usage(format!("--in {d:?}: {e} (e.g. 30s, 5m, 1h)")))?;
            let at = now
                .checked_add(SignedDuration::from_nanos(parsed.as_nanos()))
                .map_err(|e| Error::Usage(format!("--in {d:?}: {e}")))?;
            (at, d.to_string())
        }
        None => (now, "0s".to_string()),
    };
    kube.merge_patch::<Rollout>("rollout", name, &patches::restart(at))
        .await?;
    writeln!(out, "rollout '{name}' restarts in {shown}")?;
    Ok(())
}

fn rollout_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(rollouts_api::GROUP, rollouts_api::VERSION, "Rollout"),
        "rollouts",
    )
}

/// `set image NAME CONTAINER=IMAGE`: updates the Rollout (or the Deployment its `workloadRef`
/// names) as an untyped object, so that fields this plugin does not know survive; retries on
/// conflicts.
pub async fn set_image(
    kube: &Kube,
    name: &str,
    container_image: &str,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let Some((container, image)) = container_image
        .split_once('=')
        .filter(|(_, i)| !i.contains('='))
    else {
        return Err(Error::Usage(format!(
            "{container_image:?}: expected CONTAINER=IMAGE (`*=IMAGE` for every container)"
        )));
    };
    let rollouts: Api<DynamicObject> =
        Api::namespaced_with(kube.client.clone(), &kube.namespace, &rollout_resource());
    let deployments: Api<DynamicObject> = Api::namespaced_with(
        kube.client.clone(),
        &kube.namespace,
        &ApiResource::erase::<Deployment>(&()),
    );
    const ATTEMPTS: usize = 5;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let ro = rollouts
            .get(name)
            .await
            .map_err(|e| kube.err(e, "getting", &kube.target("rollout", name)))?;
        let workload = ro.data.pointer("/spec/workloadRef").cloned();
        let (api, mut obj, kind, target_kind) = match workload {
            Some(wr) => {
                let dname = wr["name"].as_str().ok_or_else(|| {
                    Error::Refused(format!(
                        "spec.workloadRef.name is not a string: {}",
                        wr["name"]
                    ))
                })?;
                let d = deployments
                    .get(dname)
                    .await
                    .map_err(|e| kube.err(e, "getting", &kube.target("deployment", dname)))?;
                (&deployments, d, "deployment", "deployment")
            }
            None => (&rollouts, ro, "rollout", "rollout"),
        };
        if !patches::set_image(&mut obj.data, container, image) {
            return Err(Error::Refused(format!(
                "unable to find container named {container:?}"
            )));
        }
        let obj_name = obj.metadata.name.clone().unwrap_or_default();
        match api.replace(&obj_name, &PostParams::default(), &obj).await {
            Ok(_) => {
                writeln!(out, "{kind} \"{obj_name}\" image updated")?;
                return Ok(());
            }
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < ATTEMPTS => {
                tracing::debug!(attempt, "conflict updating the image; retrying");
            }
            Err(e) => return Err(kube.err(e, "updating", &kube.target(target_kind, &obj_name))),
        }
    }
}

fn revision_of(rs: &ReplicaSet) -> Option<i64> {
    match rs
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::REVISION))
    {
        None => Some(0),
        Some(v) => v.parse().ok(),
    }
}

/// The ReplicaSet of `to_revision` (0: the one before the newest).
pub fn pick_revision<'a>(
    owned: &'a [ReplicaSet],
    rollout: &str,
    to_revision: i64,
) -> Result<&'a ReplicaSet, Error> {
    let mut latest: Option<(&ReplicaSet, i64)> = None;
    let mut previous: Option<(&ReplicaSet, i64)> = None;
    for rs in owned {
        let Some(v) = revision_of(rs) else { continue };
        if to_revision == 0 {
            if latest.is_none_or(|(_, l)| l < v) {
                previous = latest;
                latest = Some((rs, v));
            } else if previous.is_none_or(|(_, p)| p < v) {
                previous = Some((rs, v));
            }
        } else if v == to_revision {
            return Ok(rs);
        }
    }
    if to_revision > 0 {
        return Err(Error::Refused(format!(
            "unable to find specified revision {to_revision} in history"
        )));
    }
    previous
        .map(|(rs, _)| rs)
        .ok_or_else(|| Error::Refused(format!("no revision found for rollout {rollout:?}")))
}

fn selector_string(ro: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(m) = ro
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
    {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for e in ro
        .pointer("/spec/selector/matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match e["operator"].as_str().unwrap_or_default() {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_string()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    parts.join(",")
}

/// `undo NAME [--to-revision N]`: the template of that revision's ReplicaSet (its hash label
/// removed) replaces the Rollout's (or the referenced workload's) with a JSON patch.
pub async fn undo(
    kube: &Kube,
    name: &str,
    to_revision: i64,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let rollouts: Api<DynamicObject> =
        Api::namespaced_with(kube.client.clone(), &kube.namespace, &rollout_resource());
    let ro = rollouts
        .get(name)
        .await
        .map_err(|e| kube.err(e, "getting", &kube.target("rollout", name)))?;
    let ro_json = serde_json::to_value(&ro).map_err(|e| Error::Encoding(e.to_string()))?;
    let uid = ro.metadata.uid.clone().unwrap_or_default();
    let sets = kube
        .api::<ReplicaSet>()
        .list(&ListParams::default().labels(&selector_string(&ro_json)))
        .await
        .map_err(|e| kube.err(e, "listing", &kube.target("replicaset", "")))?;
    let owned: Vec<ReplicaSet> = sets
        .items
        .into_iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid && o.controller == Some(true))
        })
        .collect();
    let rs = pick_revision(&owned, name, to_revision)?;
    let mut template = serde_json::to_value(rs.spec.template.clone().unwrap_or_default())
        .map_err(|e| Error::Encoding(e.to_string()))?;
    if let Some(l) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove(labels::POD_TEMPLATE_HASH);
    }
    if let Some(mut current) = ro_json.pointer("/spec/template").cloned() {
        if let Some(l) = current
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            l.remove(labels::POD_TEMPLATE_HASH);
        }
        if patches::is_derivative(&current, &template) {
            write!(
                out,
                "skipped rollback (current template already matches revision {to_revision})"
            )?;
            return Ok(());
        }
    }
    let body = patches::undo(&template);
    let patch = Patch::Json::<()>(
        serde_json::from_value(body).map_err(|e| Error::Encoding(e.to_string()))?,
    );
    let pp = PatchParams::default();
    let failed = |e: kube::Error| Error::Api {
        action: format!("failed restoring revision {to_revision}"),
        message: crate::error::one_line(&e),
        code: 0,
    };
    match ro_json.pointer("/spec/workloadRef") {
        Some(wr) => {
            let wname = wr["name"].as_str().unwrap_or_default();
            match wr["kind"].as_str().unwrap_or_default() {
                "Deployment" => {
                    kube.api::<Deployment>()
                        .patch(wname, &pp, &patch)
                        .await
                        .map_err(failed)?;
                }
                "ReplicaSet" => {
                    kube.api::<ReplicaSet>()
                        .patch(wname, &pp, &patch)
                        .await
                        .map_err(failed)?;
                }
                "PodTemplate" => {
                    kube.api::<PodTemplate>()
                        .patch(wname, &pp, &patch)
                        .await
                        .map_err(failed)?;
                }
                other => {
                    return Err(Error::Refused(format!(
                        "workload of type {other} is not supported"
                    )));
                }
            }
        }
        None => {
            rollouts.patch(name, &pp, &patch).await.map_err(failed)?;
        }
    }
    writeln!(out, "rollout '{name}' undo")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn rs(name: &str, rev: Option<&str>) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                annotations: rev.map(|r| [(labels::REVISION.to_string(), r.to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn undo_picks_the_previous_or_the_named_revision() {
        let sets = vec![
            rs("a", Some("1")),
            rs("c", Some("3")),
            rs("b", Some("2")),
            rs("x", Some("junk")),
        ];
        assert_eq!(
            pick_revision(&sets, "web", 0)
                .unwrap()
                .metadata
                .name
                .as_deref(),
            Some("b")
        );
        assert_eq!(
            pick_revision(&sets, "web", 1)
                .unwrap()
                .metadata
                .name
                .as_deref(),
            Some("a")
        );
        assert_eq!(
            pick_revision(&sets, "web", 7).unwrap_err().to_string(),
            "unable to find specified revision 7 in history"
        );
        assert_eq!(
            pick_revision(&sets[..1], "web", 0).unwrap_err().to_string(),
            "no revision found for rollout \"web\""
        );
    }

    #[test]
    fn selectors_render_like_kubectl() {
        let ro = serde_json::json!({"spec": {"selector": {"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "x", "operator": "Exists"}]}}});
        assert_eq!(selector_string(&ro), "app=web,tier in (a,b),x");
    }
}
