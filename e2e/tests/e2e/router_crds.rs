//! How the APISIX, Traefik, Ambassador and Gateway API router tests define and install their
//! third-party CRDs (each module defines its own with these helpers and installs it once per run).
//!
//! As in `router_support`, they are our own minimal structural definitions, not the projects'
//! published CRDs: the fields a router reads or writes are typed (weights and priorities are
//! integers, names strings, so a router writing the wrong JSON type is rejected as it would be by
//! the real CRD) and every other field is kept with `x-kubernetes-preserve-unknown-fields`, so
//! user-owned fields survive and the tests can check that they do. The real CRDs' validation
//! rules (CEL) are not reproduced.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use e2e::{TestContext, manifests, wait};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api,
    api::{GroupVersionKind, Patch, PatchParams},
};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

const FIELD_MANAGER: &str = "rollouts-e2e-routers";

/// An object schema that keeps unknown fields, with some typed `properties`.
pub fn open(properties: Value) -> Value {
    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": properties})
}

pub fn list_of(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

pub fn string() -> Value {
    json!({"type": "string"})
}

pub fn integer() -> Value {
    json!({"type": "integer"})
}

/// A namespaced CRD of `group` serving `versions` (the first one stored), all with `spec`.
pub fn crd(group: &str, kind: &str, plural: &str, versions: &[&str], spec: Value) -> Value {
    let schema = json!({"openAPIV3Schema": {
        "type": "object",
        "properties": {
            "spec": spec,
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }
    }});
    let versions: Vec<Value> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({"name": v, "served": true, "storage": i == 0, "schema": schema.clone(),
                   "subresources": {"status": {}}})
        })
        .collect();
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": format!("{kind}List"),
                "plural": plural,
                "singular": kind.to_lowercase()
            },
            "versions": versions
        }
    })
}

/// Installs `crds` once per run (the result is kept in `cell`) and waits until they are served.
pub async fn install_once(
    cell: &'static Installed,
    ctx: &TestContext,
    what: &str,
    crds: fn() -> Vec<Value>,
) -> Result<()> {
    cell.get_or_init(|| async { install(ctx, crds()).await.map_err(|e| format!("{e:#}")) })
        .await
        .clone()
        .map_err(|e| anyhow!("installing the {what} CRDs failed: {e}"))
}

/// Where a module keeps the outcome of its CRD installation.
pub type Installed = OnceCell<std::result::Result<(), String>>;

async fn install(ctx: &TestContext, crds: Vec<Value>) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    for crd in &crds {
        let name = crd["metadata"]["name"].as_str().context("CRD name")?;
        api.patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(crd),
        )
        .await
        .with_context(|| format!("applying CRD {name}"))?;
    }
    for crd in &crds {
        let name = crd["metadata"]["name"].as_str().context("CRD name")?;
        wait::until(
            Duration::from_secs(60),
            &format!("CRD {name} to be Established"),
            || async {
                let got = api.get(name).await?;
                let established = got
                    .status
                    .and_then(|s| s.conditions)
                    .into_iter()
                    .flatten()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                Ok::<_, kube::Error>(established.then_some(()))
            },
        )
        .await?;
        let group = crd["spec"]["group"].as_str().context("group")?;
        let kind = crd["spec"]["names"]["kind"].as_str().context("kind")?;
        for version in crd["spec"]["versions"].as_array().into_iter().flatten() {
            let version = version["name"].as_str().context("version")?;
            let gvk = GroupVersionKind::gvk(group, version, kind);
            wait::until(
                Duration::from_secs(60),
                &format!("{group}/{version} {kind} in discovery"),
                || async {
                    manifests::resolve(&ctx.client, &gvk)
                        .await
                        .map(|r| r.map(|_| ()))
                },
            )
            .await?;
        }
    }
    Ok(())
}
