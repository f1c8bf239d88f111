//! The `appMesh` router against the real API server: the weighted targets of a VirtualRouter
//! (every route kind, all routes or named ones) and the pod selectors of the canary and stable
//! VirtualNodes (our minimal App Mesh CRDs, see `router_crds`) through a canary's steps, a weight
//! edited behind its back, an abort and the error cases; and the real controller walking a
//! canary through it (its restoring of an edited weight is tested with every router's in
//! `router_verify`).

use anyhow::{Result, ensure};
use e2e::{Test, TestContext};
use futures::future::BoxFuture;
use rollouts_api::Rollout;
use rollouts_plugin::{TrafficRouter, WeightVerification};
use rollouts_router_appmesh::{AppMeshRouter, DEFAULT_VERSION};
use serde_json::{Value, json};

use crate::{
    router_crds as crds,
    router_support::{self as support, expect_json},
};

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(virtual_router_and_nodes_follow_the_steps_and_an_abort),
        e2e::test!(named_routes_and_errors),
        e2e::test!(controller_walks_a_canary_through_the_virtual_router),
    ]
}

const GROUP: &str = "appmesh.k8s.aws";
const ROUTE_KINDS: [&str; 4] = ["httpRoute", "tcpRoute", "http2Route", "grpcRoute"];

/// App Mesh's VirtualService, VirtualRouter and VirtualNode (`appmesh.k8s.aws/v1beta2`): the
/// router reference, the routes' weighted targets and the pod selector are typed.
fn appmesh_crds() -> Vec<Value> {
    let node_ref = crds::open(json!({"name": crds::string(), "namespace": crds::string()}));
    let rule = crds::open(json!({
        "action": crds::open(json!({
            "weightedTargets": crds::list_of(crds::open(json!({
                "virtualNodeRef": node_ref,
                "weight": crds::integer(),
                "port": crds::integer()
            })))
        }))
    }));
    let mut route = serde_json::Map::new();
    route.insert("name".into(), crds::string());
    for kind in ROUTE_KINDS {
        route.insert(kind.into(), rule.clone());
    }
    vec![
        crds::crd(
            GROUP,
            "VirtualService",
            "virtualservices",
            &["v1beta2"],
            crds::open(json!({
                "provider": crds::open(json!({
                    "virtualRouter": crds::open(json!({
                        "virtualRouterRef": crds::open(json!({
                            "name": crds::string(), "namespace": crds::string()
                        }))
                    }))
                }))
            })),
        ),
        crds::crd(
            GROUP,
            "VirtualRouter",
            "virtualrouters",
            &["v1beta2"],
            crds::open(json!({"routes": crds::list_of(crds::open(Value::Object(route)))})),
        ),
        crds::crd(
            GROUP,
            "VirtualNode",
            "virtualnodes",
            &["v1beta2"],
            crds::open(json!({
                "podSelector": crds::open(json!({
                    "matchLabels": {"type": "object", "additionalProperties": crds::string()}
                }))
            })),
        ),
    ]
}

static INSTALLED: crds::Installed = crds::Installed::const_new();

/// Installs the App Mesh CRDs (once per run) and waits until they are served.
pub(crate) async fn install(ctx: &TestContext) -> Result<()> {
    crds::install_once(&INSTALLED, ctx, "App Mesh", appmesh_crds).await
}

fn api(ctx: &TestContext, kind: &str, plural: &str) -> kube::Api<kube::api::DynamicObject> {
    support::api(ctx, GROUP, "v1beta2", kind, plural)
}

fn routers(ctx: &TestContext) -> kube::Api<kube::api::DynamicObject> {
    api(ctx, "VirtualRouter", "virtualrouters")
}

fn nodes(ctx: &TestContext) -> kube::Api<kube::api::DynamicObject> {
    api(ctx, "VirtualNode", "virtualnodes")
}

/// The weighted targets of a route: the stable and canary VirtualNodes `<prefix>-stable` and
/// `<prefix>-canary` (`None`: no weight yet) and an unrelated node the user weighs.
fn targets(prefix: &str, stable: Option<i64>, canary: Option<i64>) -> Value {
    let target = |name: String, weight: Option<i64>| {
        let mut t = json!({"virtualNodeRef": {"name": name}, "port": 8080});
        if let Some(w) = weight {
            t["weight"] = json!(w);
        }
        t
    };
    json!([
        target(format!("{prefix}-stable"), stable),
        target(format!("{prefix}-canary"), canary),
        {"virtualNodeRef": {"name": "legacy"}, "weight": 5}
    ])
}

/// The VirtualService `name` (provider: the VirtualRouter `<name>-router`).
pub(crate) fn virtual_service(name: &str) -> Value {
    json!({
        "apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {
            "awsName": format!("{name}.mesh.local"),
            "provider": {"virtualRouter": {"virtualRouterRef": {"name": format!("{name}-router")}}}
        }
    })
}

/// The VirtualRouter `<prefix>-router` with one route of each of `kinds`, named after the kind,
/// sending everything to `<prefix>-stable`, plus a listener and route matches (user-owned).
pub(crate) fn virtual_router(prefix: &str, kinds: &[&str]) -> Value {
    let routes: Vec<Value> = kinds
        .iter()
        .map(|kind| {
            json!({
                "name": kind.to_lowercase(),
                *kind: {
                    "match": {"prefix": "/"},
                    "action": {"weightedTargets": targets(prefix, Some(100), Some(0))},
                    "timeout": {"perRequest": {"unit": "s", "value": 15}}
                }
            })
        })
        .collect();
    json!({
        "apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualRouter",
        "metadata": {"name": format!("{prefix}-router")},
        "spec": {
            "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
            "routes": routes
        }
    })
}

/// The VirtualNode `name` selecting `app: <app>` pods, with a listener (user-owned).
pub(crate) fn virtual_node(name: &str, app: &str) -> Value {
    json!({
        "apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualNode",
        "metadata": {"name": name},
        "spec": {
            "podSelector": {"matchLabels": {"app": app}},
            "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
            "serviceDiscovery": {"dns": {"hostname": format!("{name}.svc.cluster.local")}}
        }
    })
}

/// The objects of an App Mesh canary `name`: the VirtualService, its router with `kinds`
/// routes, and the two VirtualNodes.
pub(crate) fn objects(name: &str, kinds: &[&str]) -> Vec<Value> {
    vec![
        virtual_service(name),
        virtual_router(name, kinds),
        virtual_node(&format!("{name}-canary"), name),
        virtual_node(&format!("{name}-stable"), name),
    ]
}

/// The `trafficRouting` block for `name` (routes: `None` for all).
pub(crate) fn traffic_routing(name: &str, routes: Option<&[&str]>) -> Value {
    let mut service = json!({"name": name});
    if let Some(r) = routes {
        service["routes"] = json!(r);
    }
    json!({"appMesh": {
        "virtualService": service,
        "virtualNodeGroup": {
            "canaryVirtualNodeRef": {"name": format!("{name}-canary")},
            "stableVirtualNodeRef": {"name": format!("{name}-stable")}
        }
    }})
}

async fn create_all(ctx: &TestContext, objects: Vec<Value>) -> Result<()> {
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let plural = format!("{}s", kind.to_lowercase());
        support::create(&api(ctx, &kind, &plural), object).await?;
    }
    Ok(())
}

async fn rollout(ctx: &TestContext, name: &str, routes: Option<&[&str]>) -> Result<Rollout> {
    let mut canary = json!({
        "canaryService": format!("{name}-canary"),
        "stableService": format!("{name}-stable"),
        "steps": [{"setWeight": 20}, {"pause": {}}]
    });
    canary["trafficRouting"] = traffic_routing(name, routes);
    support::stored_rollout(ctx, name, canary).await
}

async fn verified(router: &AppMeshRouter, weight: i32) -> Result<()> {
    let got = router.verify_weight(weight, &[]).await?;
    ensure!(
        got == WeightVerification::Verified,
        "weight {weight} should verify, got {got:?}"
    );
    Ok(())
}

/// The weights of route `index` (of `kind`) in the VirtualRouter `object`.
fn route_weights(object: &Value, index: usize, kind: &str) -> Value {
    let list = &object["spec"]["routes"][index][kind]["action"]["weightedTargets"];
    json!(
        list.as_array()
            .into_iter()
            .flatten()
            .map(|t| t["weight"].clone())
            .collect::<Vec<_>>()
    )
}

async fn expect_selector(ctx: &TestContext, node: &str, app: &str, hash: &str) -> Result<()> {
    let got = support::get(&nodes(ctx), node).await?;
    expect_json(
        &format!("{node} pod selector"),
        &got["spec"]["podSelector"],
        &json!({"matchLabels": {"app": app, "rollouts-pod-template-hash": hash}}),
    )?;
    expect_json(
        &format!("{node} managed-by annotation"),
        &got["metadata"]["annotations"]["argo-rollouts.argoproj.io/managed-by-rollouts"],
        &json!(app),
    )?;
    ensure!(
        got["spec"]["listeners"] == json!([{"portMapping": {"port": 8080, "protocol": "http"}}]),
        "{node}: listeners changed: {}",
        got["spec"]
    );
    Ok(())
}

async fn virtual_router_and_nodes_follow_the_steps_and_an_abort(ctx: TestContext) -> Result<()> {
    install(&ctx).await?;
    let name = "catalog";
    create_all(&ctx, objects(name, &ROUTE_KINDS)).await?;
    let ro = rollout(&ctx, name, None).await?;
    let events = support::recorder();
    let router = AppMeshRouter::new(support::init(&ctx, &ro, &events), DEFAULT_VERSION)?;
    let router_name = "catalog-router";

    // Hashes: the stable node first, each node keeps its own labels.
    router.update_hash("", "s1", &[]).await?;
    expect_selector(&ctx, "catalog-stable", name, "s1").await?;
    expect_selector(&ctx, "catalog-canary", name, "canary-hash").await?;
    router.update_hash("c2", "s1", &[]).await?;
    expect_selector(&ctx, "catalog-canary", name, "c2").await?;
    expect_selector(&ctx, "catalog-stable", name, "s1").await?;
    // Unchanged hashes are not written again.
    let before = support::get(&nodes(&ctx), "catalog-canary").await?;
    router.update_hash("c2", "s1", &[]).await?;
    let after = support::get(&nodes(&ctx), "catalog-canary").await?;
    ensure!(
        before["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"],
        "an unchanged hash was written"
    );

    router.set_weight(0, &[]).await?;
    verified(&router, 0).await?;

    // Someone labels the VirtualRouter: that is theirs.
    support::merge_patch(
        &routers(&ctx),
        router_name,
        json!({"metadata": {"labels": {"team": "catalog"}}}),
    )
    .await?;

    for weight in [20, 60, 100] {
        router.set_weight(weight, &[]).await?;
        let vr = support::get(&routers(&ctx), router_name).await?;
        let w = i64::from(weight);
        for (i, kind) in ROUTE_KINDS.iter().enumerate() {
            expect_json(
                &format!("{kind} weights at {weight}"),
                &route_weights(&vr, i, kind),
                &json!([100 - w, w, 5]),
            )?;
        }
        verified(&router, weight).await?;
    }

    // Edited behind the router's back (the gRPC route): seen by verify_weight, repaired.
    let mut vr = support::get(&routers(&ctx), router_name).await?;
    vr["spec"]["routes"][3]["grpcRoute"]["action"]["weightedTargets"][1]["weight"] = json!(55);
    vr["spec"]["routes"][3]["grpcRoute"]["action"]["weightedTargets"][0]["weight"] = json!(45);
    support::merge_patch(
        &routers(&ctx),
        router_name,
        json!({"spec": {"routes": vr["spec"]["routes"]}}),
    )
    .await?;
    let tampered = router.verify_weight(100, &[]).await?;
    ensure!(
        tampered
            == WeightVerification::Mismatch {
                observed: Some(55),
                detail: "VirtualRouter `catalog-router` route `grpcroute` (grpcRoute) gives virtual node `catalog-stable` weight 45, want 0".into()
            },
        "{tampered:?}"
    );
    router.set_weight(100, &[]).await?;
    verified(&router, 100).await?;

    // Abort: back to 0. What others own is still there.
    router.set_weight(0, &[]).await?;
    verified(&router, 0).await?;
    let vr = support::get(&routers(&ctx), router_name).await?;
    let mut want = virtual_router(name, &ROUTE_KINDS);
    for (i, kind) in ROUTE_KINDS.iter().enumerate() {
        want["spec"]["routes"][i][kind]["action"]["weightedTargets"] =
            targets(name, Some(100), Some(0));
    }
    expect_json("router spec after the abort", &vr["spec"], &want["spec"])?;
    expect_json(
        "labels",
        &vr["metadata"]["labels"],
        &json!({"team": "catalog"}),
    )?;

    // Idempotent: nothing is written when the weights hold.
    router.set_weight(0, &[]).await?;
    let again = support::get(&routers(&ctx), router_name).await?;
    ensure!(
        again["metadata"]["resourceVersion"] == vr["metadata"]["resourceVersion"],
        "an unchanged weight was written"
    );
    // Header and mirror steps do nothing, as in Argo.
    router
        .set_header_route(&serde_json::from_value(
            json!({"name": "hdr", "match": [{"headerName": "x", "headerValue": {"exact": "y"}}]}),
        )?)
        .await?;
    router.remove_managed_routes().await?;
    let still = support::get(&routers(&ctx), router_name).await?;
    ensure!(
        still["metadata"]["resourceVersion"] == vr["metadata"]["resourceVersion"],
        "a header route changed the VirtualRouter"
    );
    ensure!(support::drained(&events).is_empty(), "no events expected");
    Ok(())
}

async fn named_routes_and_errors(ctx: TestContext) -> Result<()> {
    install(&ctx).await?;
    let name = "ledger";
    let events = support::recorder();

    // Nothing exists yet: Argo's errors and events, and verify_weight says why.
    let ro = rollout(&ctx, name, Some(&["tcproute", "http2route"])).await?;
    let router = AppMeshRouter::new(support::init(&ctx, &ro, &events), DEFAULT_VERSION)?;
    let err = router
        .set_weight(10, &[])
        .await
        .expect_err("no VirtualService");
    ensure!(
        err.to_string() == "appMesh: Virtual-service is missing",
        "{err}"
    );
    let missing = router.verify_weight(10, &[]).await?;
    ensure!(
        missing
            == WeightVerification::Mismatch {
                observed: None,
                detail: "VirtualService `ledger` not found in namespace `".to_string()
                    + &ctx.namespace
                    + "`: Virtual-service is missing"
            },
        "{missing:?}"
    );
    let err = router
        .update_hash("c1", "s1", &[])
        .await
        .expect_err("no VirtualNode");
    ensure!(
        err.to_string() == "appMesh: Virtual-node is missing",
        "{err}"
    );
    let ns = &ctx.namespace;
    expect_json(
        "events",
        &json!(support::drained(&events)),
        &json!([
            format!(
                "VirtualServiceNotFound: VirtualService `ledger` not found in namespace `{ns}`"
            ),
            format!(
                "VirtualNodeNotFound: VirtualNode `ledger-stable` not found in namespace `{ns}`"
            ),
        ]),
    )?;

    // The VirtualService without its VirtualRouter.
    support::create(
        &api(&ctx, "VirtualService", "virtualservices"),
        virtual_service(name),
    )
    .await?;
    let err = router
        .set_weight(10, &[])
        .await
        .expect_err("no VirtualRouter");
    ensure!(
        err.to_string() == "appMesh: Virtual-router is missing",
        "{err}"
    );
    expect_json(
        "events",
        &json!(support::drained(&events)),
        &json!([format!(
            "VirtualRouterNotFound: VirtualRouter for `ledger` not found in namespace `{ns}`"
        )]),
    )?;

    // Only the named routes change.
    support::create(&routers(&ctx), virtual_router(name, &ROUTE_KINDS)).await?;
    router.set_weight(30, &[]).await?;
    let vr = support::get(&routers(&ctx), "ledger-router").await?;
    for (i, kind, want) in [
        (0, "httpRoute", json!([100, 0, 5])),
        (1, "tcpRoute", json!([70, 30, 5])),
        (2, "http2Route", json!([70, 30, 5])),
        (3, "grpcRoute", json!([100, 0, 5])),
    ] {
        expect_json(
            &format!("{kind} weights"),
            &route_weights(&vr, i, kind),
            &want,
        )?;
    }
    verified(&router, 30).await?;

    // A named route the VirtualRouter does not have: an error naming it, nothing written.
    let mut routing = traffic_routing(name, Some(&["httproute", "shadow"]));
    routing["appMesh"]["virtualService"]["name"] = json!(name);
    let ro2 = support::stored_rollout(
        &ctx,
        "ledger2",
        json!({"canaryService": "ledger-canary", "stableService": "ledger-stable",
               "trafficRouting": routing, "steps": [{"setWeight": 20}]}),
    )
    .await?;
    let named = AppMeshRouter::new(support::init(&ctx, &ro2, &events), DEFAULT_VERSION)?;
    let err = named
        .set_weight(50, &[])
        .await
        .expect_err("no route `shadow`");
    ensure!(
        err.to_string()
            == "appMesh: route `shadow` named in spec.strategy.canary.trafficRouting.appMesh.virtualService.routes is not in VirtualRouter `ledger-router`",
        "{err}"
    );
    let unchanged = support::get(&routers(&ctx), "ledger-router").await?;
    ensure!(
        unchanged["metadata"]["resourceVersion"] == vr["metadata"]["resourceVersion"],
        "the VirtualRouter was written despite the error"
    );

    // A route without weighted targets: Argo's field error.
    support::merge_patch(
        &routers(&ctx),
        "ledger-router",
        json!({"spec": {"routes": [{"name": "tcproute", "tcpRoute": {"action": {}}}]}}),
    )
    .await?;
    let err = router
        .set_weight(40, &[])
        .await
        .expect_err("malformed route");
    ensure!(
        err.to_string()
            == "appMesh: spec.routes[0].tcpRoute.action.weightedTargets: Invalid value: \"ledger-router\": not well-formed",
        "{err}"
    );
    ensure!(
        support::drained(&events).is_empty(),
        "no more events expected"
    );
    Ok(())
}

/// The canary weight of `orders-router`'s HTTP route (checking the stable target has the rest).
fn orders_weight(ctx: TestContext) -> BoxFuture<'static, Result<Option<i32>>> {
    Box::pin(async move {
        let Some(vr) = routers(&ctx).get_opt("orders-router").await? else {
            return Ok(None);
        };
        let vr = serde_json::to_value(vr)?;
        let weights = route_weights(&vr, 0, "httpRoute");
        let (stable, canary) = (weights[0].as_i64(), weights[1].as_i64());
        match (canary, stable) {
            (Some(c), Some(s)) => {
                ensure!(c + s == 100, "weights do not add up: {}", vr["spec"]);
                Ok(Some(i32::try_from(c)?))
            }
            _ => Ok(None),
        }
    })
}

async fn controller_walks_a_canary_through_the_virtual_router(ctx: TestContext) -> Result<()> {
    install(&ctx).await?;
    let name = "orders";
    support::controller_walks_a_canary(
        &ctx,
        name,
        traffic_routing(name, None),
        objects(name, &["httpRoute"]),
        orders_weight,
    )
    .await?;
    // The VirtualNodes select the canary and stable ReplicaSets' hashes.
    let ro = e2e::rollouts::wait_for(
        &ctx,
        name,
        std::time::Duration::from_secs(10),
        "the final status",
        e2e::rollouts::healthy,
    )
    .await?;
    let stable = ro["status"]["stableRS"].as_str().unwrap_or_default();
    expect_selector(&ctx, "orders-stable", name, stable).await?;
    expect_selector(&ctx, "orders-canary", name, "canary-hash").await?;
    Ok(())
}
