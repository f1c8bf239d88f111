//! What the traffic router tests share: the third-party CRDs they install, a stored Rollout to
//! own objects, JSON access to any kind, and the events a router emitted.
//!
//! The CRDs are our own minimal structural definitions (not the projects' published ones): the
//! fields a router reads or writes are typed (weights are integers, names strings, so a router
//! writing the wrong JSON type is rejected like it would be by the real CRD), and everything
//! else is kept with `x-kubernetes-preserve-unknown-fields`, so user-owned fields survive and the
//! tests can check that they do. Every version a router may be configured with is served, with
//! no conversion (the schemas are the same).
//!
//! CRDs are cluster-wide: they are installed once per run (server-side apply, so a second run on
//! the same cluster finds them in place) and left installed.

use std::{sync::Arc, time::Duration};

use anyhow::{Context, Result, anyhow, bail, ensure};
use e2e::{
    TestContext,
    controller::{Controller, Options},
    manifests, rollouts, wait,
};
use futures::future::BoxFuture;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams},
};
use rollouts_api::Rollout;
use rollouts_plugin::{PluginEvent, RecordedEvents, RouterInit};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

const FIELD_MANAGER: &str = "rollouts-e2e-routers";

/// An object schema that keeps unknown fields, with some typed `properties`.
fn open(properties: Value) -> Value {
    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": properties})
}

fn list_of(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

fn crd(group: &str, kind: &str, plural: &str, versions: &[&str], spec: Value) -> Value {
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

/// Istio's `networking.istio.io` VirtualService and DestinationRule: the route destinations
/// (host, subset, port, weight), the match blocks a router reads (TLS/TCP ports and SNI hosts),
/// `mirror`/`mirrorPercentage`, and the DestinationRule's host and subsets are typed.
pub fn istio_crds() -> Vec<Value> {
    let destination = open(json!({
        "host": {"type": "string"},
        "subset": {"type": "string"},
        "port": open(json!({"number": {"type": "integer"}}))
    }));
    let weighted = list_of(open(json!({
        "destination": destination.clone(),
        "weight": {"type": "integer"}
    })));
    let http = list_of(open(json!({
        "name": {"type": "string"},
        "match": list_of(open(json!({}))),
        "route": weighted.clone(),
        "mirror": destination,
        "mirrorPercentage": open(json!({"value": {"type": "number"}}))
    })));
    let tls = list_of(open(json!({
        "match": list_of(open(json!({
            "port": {"type": "integer"},
            "sniHosts": list_of(json!({"type": "string"}))
        }))),
        "route": weighted.clone()
    })));
    let tcp = list_of(open(json!({
        "match": list_of(open(json!({"port": {"type": "integer"}}))),
        "route": weighted
    })));
    let versions = ["v1alpha3", "v1beta1", "v1"];
    vec![
        crd(
            "networking.istio.io",
            "VirtualService",
            "virtualservices",
            &versions,
            open(json!({
                "hosts": list_of(json!({"type": "string"})),
                "http": http, "tls": tls, "tcp": tcp
            })),
        ),
        crd(
            "networking.istio.io",
            "DestinationRule",
            "destinationrules",
            &versions,
            open(json!({
                "host": {"type": "string"},
                "subsets": list_of(open(json!({
                    "name": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}}
                })))
            })),
        ),
    ]
}

/// SMI's `split.smi-spec.io` TrafficSplit, served as v1alpha1 (stored), v1alpha2 and v1alpha3.
/// A backend weight is an integer or a string (v1alpha1 writes quantities such as `"10"`).
pub fn smi_crds() -> Vec<Value> {
    vec![crd(
        "split.smi-spec.io",
        "TrafficSplit",
        "trafficsplits",
        &["v1alpha1", "v1alpha2", "v1alpha3"],
        open(json!({
            "service": {"type": "string"},
            "backends": list_of(open(json!({
                "service": {"type": "string"},
                "weight": {"x-kubernetes-int-or-string": true}
            }))),
            "matches": list_of(open(json!({})))
        })),
    )]
}

static ISTIO: OnceCell<std::result::Result<(), String>> = OnceCell::const_new();
static SMI: OnceCell<std::result::Result<(), String>> = OnceCell::const_new();

/// Installs the Istio CRDs (once per run) and waits until they are served.
pub async fn install_istio(ctx: &TestContext) -> Result<()> {
    ISTIO
        .get_or_init(|| async {
            install(ctx, istio_crds())
                .await
                .map_err(|e| format!("{e:#}"))
        })
        .await
        .clone()
        .map_err(|e| anyhow!("installing the Istio CRDs failed: {e}"))
}

/// Installs the SMI CRD (once per run) and waits until it is served.
pub async fn install_smi(ctx: &TestContext) -> Result<()> {
    SMI.get_or_init(|| async { install(ctx, smi_crds()).await.map_err(|e| format!("{e:#}")) })
        .await
        .clone()
        .map_err(|e| anyhow!("installing the SMI CRD failed: {e}"))
}

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

/// The API of `group/version` `kind` (plural `plural`) in the test's namespace, as JSON objects.
pub fn api(
    ctx: &TestContext,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    Api::namespaced_with(ctx.client.clone(), &ctx.namespace, &resource)
}

/// Creates `object` (JSON with apiVersion and kind) through `api`.
pub async fn create(api: &Api<DynamicObject>, object: Value) -> Result<Value> {
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    let object: DynamicObject = serde_json::from_value(object)?;
    let created = api
        .create(&PostParams::default(), &object)
        .await
        .with_context(|| format!("creating {name}"))?;
    Ok(serde_json::to_value(created)?)
}

/// The object `name` as JSON.
pub async fn get(api: &Api<DynamicObject>, name: &str) -> Result<Value> {
    let got = api
        .get(name)
        .await
        .with_context(|| format!("reading {name}"))?;
    Ok(serde_json::to_value(got)?)
}

/// Applies a JSON merge patch to `name`, as a user editing the object would.
pub async fn merge_patch(api: &Api<DynamicObject>, name: &str, patch: Value) -> Result<Value> {
    let got = api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("patching {name}"))?;
    Ok(serde_json::to_value(got)?)
}

/// Creates a canary Rollout named `name` with `canary` as its strategy block and returns it as
/// stored (with its uid, which owner references need: an object owned by a uid that does not
/// exist would be garbage-collected). No controller runs, so nothing acts on it.
pub async fn stored_rollout(ctx: &TestContext, name: &str, canary: Value) -> Result<Rollout> {
    ctx.install_crds().await?;
    let manifest = rollouts::canary_rollout(name, 2, "registry.invalid/app:1", canary);
    let api: Api<Rollout> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let rollout: Rollout = serde_json::from_value(manifest)?;
    api.create(&PostParams::default(), &rollout)
        .await
        .with_context(|| format!("creating Rollout {name}"))
}

/// The events a router emits, recorded.
pub fn recorder() -> Arc<RecordedEvents> {
    Arc::new(RecordedEvents::default())
}

/// What a router is built from.
pub fn init<'a>(
    ctx: &TestContext,
    rollout: &'a Rollout,
    events: &Arc<RecordedEvents>,
) -> RouterInit<'a> {
    RouterInit {
        client: ctx.client.clone(),
        rollout,
        events: events.clone(),
    }
}

/// `reason: message` of each event, oldest first, taking them out of the recorder.
pub fn drained(events: &RecordedEvents) -> Vec<String> {
    events
        .drain()
        .into_iter()
        .map(|e: PluginEvent| format!("{}: {}", e.reason, e.message))
        .collect()
}

/// Fails unless `value` equals `want` (both JSON), naming `what`.
pub fn expect_json(what: &str, value: &Value, want: &Value) -> Result<()> {
    if value != want {
        bail!(
            "{what}:\n  got  {}\n  want {}",
            serde_json::to_string(value)?,
            serde_json::to_string(want)?
        );
    }
    Ok(())
}

/// Reads the canary weight a router's object holds now (`None`: no object yet).
pub type Observe = fn(TestContext) -> BoxFuture<'static, Result<Option<i32>>>;

const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits until `observe` reads `weight`.
async fn wait_weight(ctx: &TestContext, observe: Observe, weight: i32, when: &str) -> Result<()> {
    let last = std::sync::Mutex::new(None);
    let got = wait::until(
        STEP_TIMEOUT,
        &format!("the router's object to hold canary weight {weight} {when}"),
        || async {
            let seen = observe(ctx.clone()).await?;
            *last.lock().unwrap_or_else(|p| p.into_inner()) = seen;
            Ok::<_, anyhow::Error>((seen == Some(weight)).then_some(()))
        },
    )
    .await;
    got.with_context(|| {
        format!(
            "last weight read: {:?}",
            last.lock().unwrap_or_else(|p| p.into_inner())
        )
    })
}

/// Waits until the Rollout's status records `weight` for the canary, verified by the routers.
async fn wait_verified(ctx: &TestContext, name: &str, weight: i32) -> Result<Value> {
    rollouts::wait_for(
        ctx,
        name,
        STEP_TIMEOUT,
        &format!("status weights canary {weight}, verified"),
        |r| {
            let w = &r["status"]["canary"]["weights"];
            w["canary"]["weight"] == weight && w["verified"] == true
        },
    )
    .await
}

/// A real controller walks a canary through a router: the Rollout `name` (5 replicas, Services
/// `<name>-stable` and `<name>-canary`) with `traffic_routing` and the steps
/// `setWeight: 20, pause, setWeight: 60, pause`. After the initial deploy, at each pause (promoted
/// by the test) and once the new revision is stable, `observe` must read the expected weight from
/// the router's object (0, 20, 60, 0), and the status must say the routers verified it.
pub async fn controller_walks_a_canary(
    ctx: &TestContext,
    name: &str,
    traffic_routing: Value,
    before: Vec<Value>,
    observe: Observe,
) -> Result<()> {
    ctx.install_crds().await?;
    let ctl = Controller::start(ctx, Options::default()).await?;
    let result = async {
        let stable = format!("{name}-stable");
        let canary = format!("{name}-canary");
        rollouts::apply(ctx, rollouts::service(&stable, name)).await?;
        rollouts::apply(ctx, rollouts::service(&canary, name)).await?;
        for object in before {
            rollouts::apply(ctx, object).await?;
        }
        rollouts::apply(
            ctx,
            rollouts::canary_rollout(
                name,
                5,
                "registry.invalid/app:1",
                json!({
                    "stableService": stable, "canaryService": canary,
                    "trafficRouting": traffic_routing,
                    "steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]
                }),
            ),
        )
        .await?;
        let first = rollouts::wait_for(ctx, name, STEP_TIMEOUT, "the initial deploy", |r| {
            rollouts::healthy(r)
        })
        .await?;
        let v1 = first["status"]["stableRS"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        wait_weight(ctx, observe, 0, "after the initial deploy").await?;
        wait_verified(ctx, name, 0).await?;

        rollouts::set_image(ctx, name, "registry.invalid/app:2").await?;
        rollouts::wait_for(ctx, name, STEP_TIMEOUT, "the pause at step 1", |r| {
            rollouts::paused_at(r, 1)
        })
        .await?;
        wait_weight(ctx, observe, 20, "at the first pause").await?;
        let r = wait_verified(ctx, name, 20).await?;
        ensure!(
            r["status"]["stableRS"] == v1.as_str(),
            "{}",
            rollouts::summary(&r)
        );

        rollouts::promote(ctx, name).await?;
        rollouts::wait_for(ctx, name, STEP_TIMEOUT, "the pause at step 3", |r| {
            rollouts::paused_at(r, 3)
        })
        .await?;
        wait_weight(ctx, observe, 60, "at the second pause").await?;
        wait_verified(ctx, name, 60).await?;

        rollouts::promote(ctx, name).await?;
        let done = rollouts::wait_for(ctx, name, STEP_TIMEOUT, "Healthy on revision 2", |r| {
            rollouts::healthy(r) && r["status"]["stableRS"] != v1.as_str()
        })
        .await?;
        let v2 = done["status"]["stableRS"].as_str().unwrap_or_default();
        wait_weight(ctx, observe, 0, "once the new revision is stable").await?;
        wait_verified(ctx, name, 0).await?;
        ensure!(
            rollouts::selector_hash(ctx, &stable).await?.as_deref() == Some(v2),
            "the stable Service does not select the new revision"
        );
        Ok::<_, anyhow::Error>(())
    }
    .await;
    result.map_err(|e| {
        anyhow!(
            "{e:#}\n--- controller log (last 60 lines) ---\n{}",
            ctl.log_tail(60)
        )
    })
}
