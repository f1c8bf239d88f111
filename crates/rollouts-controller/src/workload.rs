//! `spec.workloadRef`: a Rollout that takes its pod template (and selector) from another
//! workload (Argo's `rollout/templateref.go`, `argo-core.md` §2.13).
//!
//! On every reconciliation the referenced object is read and its template copied into the
//! in-memory Rollout (its selector too when the Rollout has none); the workload's generation is
//! recorded in the `rollout.argoproj.io/workload-generation` annotation of that in-memory copy,
//! which the engine mirrors into `status.workloadObservedGeneration`. The kinds Argo supports
//! are supported: `apps/v1` Deployment and ReplicaSet, and `v1` PodTemplate.
//!
//! The engine scales the workload down (`scaleDown: onsuccess | progressively`) with
//! [`rollouts_engine::Effect::ScaleWorkload`]; [`scale`] carries it out with a merge patch of
//! `spec.replicas`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams},
};
use rollouts_api::{PodTemplateSpec, Rollout, labels};
use rollouts_engine::WorkloadView;
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// Where a supported kind keeps its template and selector.
struct KindInfo {
    plural: &'static str,
    template: &'static [&'static str],
    selector: Option<&'static [&'static str]>,
}

fn kind_info(group: &str, kind: &str) -> Option<KindInfo> {
    match (group, kind) {
        ("", "PodTemplate") => Some(KindInfo {
            plural: "podtemplates",
            template: &["template"],
            selector: None,
        }),
        ("apps", "Deployment") => Some(KindInfo {
            plural: "deployments",
            template: &["spec", "template"],
            selector: Some(&["spec", "selector"]),
        }),
        ("apps", "ReplicaSet") => Some(KindInfo {
            plural: "replicasets",
            template: &["spec", "template"],
            selector: Some(&["spec", "selector"]),
        }),
        _ => None,
    }
}

fn api_for(
    client: &Client,
    namespace: &str,
    api_version: &str,
    kind: &str,
) -> Result<(Api<DynamicObject>, KindInfo)> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let info = kind_info(group, kind).ok_or_else(|| {
        Error::Workload(format!("workload of type {group}/{kind} is not supported"))
    })?;
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, info.plural);
    Ok((
        Api::namespaced_with(client.clone(), namespace, &resource),
        info,
    ))
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, k| v.get(*k))
}

/// Resolves the Rollout's `workloadRef` into its in-memory spec. `None` when it has none;
/// otherwise the resolution as the engine expects it (an error is a [`WorkloadView::Error`],
/// which the engine turns into an `InvalidSpec` condition).
pub async fn resolve(client: &Client, rollout: &mut Rollout) -> Option<WorkloadView> {
    let reference = rollout.spec.workload_ref.clone()?;
    Some(match resolve_inner(client, rollout, &reference).await {
        Ok(generation) => WorkloadView::Resolved { generation },
        Err(Error::Workload(msg)) => WorkloadView::Error(msg),
        Err(other) => WorkloadView::Error(other.to_string()),
    })
}

async fn resolve_inner(
    client: &Client,
    rollout: &mut Rollout,
    reference: &rollouts_api::ObjectRef,
) -> Result<i64> {
    let namespace = rollout.metadata.namespace.clone().unwrap_or_default();
    let kind = reference.kind.clone().unwrap_or_default();
    let name = reference.name.clone().unwrap_or_default();
    let api_version = reference.api_version.clone().unwrap_or_default();
    let has_template = rollout
        .spec
        .template
        .as_ref()
        .is_some_and(|t| serde_json::to_value(t).is_ok_and(|v| v != json!({})));
    if has_template {
        return Err(Error::Workload(
            "template must be empty for workload reference rollout".into(),
        ));
    }
    let (api, info) = api_for(client, &namespace, &api_version, &kind)?;
    let obj = api
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube(format!("reading {kind} {name:?}"), e))?
        .ok_or_else(|| Error::Workload(format!("{kind} {name:?} not found")))?;
    let data = serde_json::to_value(&obj).map_err(|source| Error::Json {
        what: format!("reading {kind} {name:?}"),
        source,
    })?;
    if let Some(template) = at(&data, info.template) {
        let template: PodTemplateSpec = rollouts_api::decode(template)
            .map_err(|e| Error::Workload(format!("{kind} {name:?}: template: {e}")))?;
        rollout.spec.template = Some(template);
    }
    if rollout.spec.selector.is_none()
        && let Some(path) = info.selector
        && let Some(selector) = at(&data, path)
    {
        let selector: LabelSelector = serde_json::from_value(selector.clone())
            .map_err(|e| Error::Workload(format!("{kind} {name:?}: selector: {e}")))?;
        rollout.spec.selector = Some(selector);
    }
    let generation = obj.metadata.generation.unwrap_or(0);
    rollout
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(
            labels::WORKLOAD_GENERATION.to_string(),
            generation.to_string(),
        );
    Ok(generation)
}

/// Sets `spec.replicas` of the workload (negative counts as 0); nothing when it already has it.
pub async fn scale(
    client: &Client,
    namespace: &str,
    api_version: &str,
    kind: &str,
    name: &str,
    replicas: i32,
) -> Result<()> {
    let (api, _) = api_for(client, namespace, api_version, kind)?;
    let replicas = replicas.max(0);
    let current = api
        .get_opt(name)
        .await
        .map_err(|e| Error::kube(format!("reading {kind} {name:?}"), e))?
        .ok_or_else(|| Error::Workload(format!("{kind} {name:?} not found")))?;
    if current.data["spec"]["replicas"].as_i64() == Some(i64::from(replicas)) {
        return Ok(());
    }
    tracing::info!(%kind, %name, replicas, "Scaling the referenced workload.");
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": replicas}})),
    )
    .await
    .map_err(|e| Error::kube(format!("scaling {kind} {name:?} to {replicas}"), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_argos_kinds_are_supported() {
        assert_eq!(
            kind_info("apps", "Deployment").unwrap().plural,
            "deployments"
        );
        assert_eq!(kind_info("", "PodTemplate").unwrap().template, ["template"]);
        assert!(kind_info("", "PodTemplate").unwrap().selector.is_none());
        assert!(kind_info("apps", "StatefulSet").is_none());
        let (svc, _handle) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        let client = Client::new(svc, "default");
        let err = api_for(&client, "ns", "apps/v1", "StatefulSet")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "spec.workloadRef: workload of type apps/StatefulSet is not supported"
        );
    }

    #[tokio::test]
    async fn a_deployment_template_and_selector_are_copied_in() {
        use http::{Request, Response};
        use kube::client::Body;
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(svc, "default");
        let server = tokio::spawn(async move {
            let (req, send) = handle.next_request().await.unwrap();
            assert_eq!(
                req.uri().path(),
                "/apis/apps/v1/namespaces/team/deployments/web"
            );
            let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "generation": 7},
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}});
            send.send_response(Response::new(Body::from(serde_json::to_vec(&d).unwrap())));
        });
        let mut ro: Rollout = rollouts_api::decode(&json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}
        }))
        .unwrap();
        let view = resolve(&client, &mut ro).await;
        server.await.unwrap();
        assert_eq!(view, Some(WorkloadView::Resolved { generation: 7 }));
        let template = serde_json::to_value(ro.spec.template.as_ref().unwrap()).unwrap();
        assert_eq!(template["spec"]["containers"][0]["image"], "nginx:1");
        assert_eq!(
            ro.spec.selector.unwrap().match_labels.unwrap()["app"],
            "web"
        );
        assert_eq!(
            ro.metadata.annotations.unwrap()[labels::WORKLOAD_GENERATION],
            "7"
        );
    }

    #[tokio::test]
    async fn a_missing_workload_is_reported_to_the_engine() {
        use http::{Request, Response};
        use kube::client::Body;
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(svc, "default");
        let server = tokio::spawn(async move {
            let (_, send) = handle.next_request().await.unwrap();
            let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "nope"});
            send.send_response(
                Response::builder()
                    .status(404)
                    .body(Body::from(serde_json::to_vec(&status).unwrap()))
                    .unwrap(),
            );
        });
        let mut ro: Rollout = rollouts_api::decode(&json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gone"}}
        }))
        .unwrap();
        let view = resolve(&client, &mut ro).await;
        server.await.unwrap();
        assert_eq!(
            view,
            Some(WorkloadView::Error("Deployment \"gone\" not found".into()))
        );
    }
}
