//! The Gateway API router (`argoproj-labs/gatewayAPI`) against the real API server: HTTPRoute and
//! GRPCRoute backend weights (our minimal CRDs, see `router_crds`) through a canary's steps, the
//! in-progress label, header and mirror rules added and removed, an experiment's backendRef, a
//! weight edited behind its back, an abort, several routes and the error cases; and the real
//! controller walking a canary configured exactly as for Argo's Gateway API plugin.

use anyhow::{Result, bail, ensure};
use e2e::{Test, TestContext};
use futures::future::BoxFuture;
use rollouts_api::{
    HeaderRoutingMatch, Rollout, RouteMatch, SetHeaderRoute, SetMirrorRoute, StringMatch,
    WeightDestination,
};
use rollouts_plugin::{TrafficRouter, WeightVerification};
use rollouts_router_gatewayapi::{GatewayRouter, weight_of};
use serde_json::{Value, json};

use crate::{
    router_crds as crds,
    router_support::{self as support, expect_json},
};

const LABEL: &str = "rollouts.argoproj.io/gatewayapi-canary";

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(http_route_weights_header_and_mirror_rules),
        e2e::test!(several_routes_grpc_experiments_and_errors),
        e2e::test!(controller_walks_a_canary_through_the_http_route),
    ]
}

/// Gateway API's HTTPRoute and GRPCRoute in `gateway.networking.k8s.io/v1`: rule names,
/// matches, filters (the RequestMirror filter typed), backendRefs (group, kind, name, port,
/// weight).
fn gateway_api_crds() -> Vec<Value> {
    let backend = crds::open(json!({
        "group": crds::string(),
        "kind": crds::string(),
        "name": crds::string(),
        "namespace": crds::string(),
        "port": crds::integer(),
        "weight": crds::integer()
    }));
    let rules = crds::list_of(crds::open(json!({
        "name": crds::string(),
        "matches": crds::list_of(crds::open(json!({}))),
        "filters": crds::list_of(crds::open(json!({
            "type": crds::string(),
            "requestMirror": crds::open(json!({"backendRef": backend.clone(), "percent": crds::integer()}))
        }))),
        "backendRefs": crds::list_of(backend)
    })));
    let spec = crds::open(json!({
        "parentRefs": crds::list_of(crds::open(json!({}))),
        "hostnames": crds::list_of(crds::string()),
        "rules": rules
    }));
    // `*.k8s.io` groups need the API approval annotation; ours says it is a test CRD.
    let approved = |mut crd: Value| {
        crd["metadata"]["annotations"] = json!({"api-approved.kubernetes.io": "unapproved, test CRD of the rollouts-rs e2e tests"});
        crd
    };
    vec![
        approved(crds::crd(
            "gateway.networking.k8s.io",
            "HTTPRoute",
            "httproutes",
            &["v1"],
            spec.clone(),
        )),
        approved(crds::crd(
            "gateway.networking.k8s.io",
            "GRPCRoute",
            "grpcroutes",
            &["v1"],
            spec,
        )),
    ]
}

static INSTALLED: crds::Installed = crds::Installed::const_new();

/// Installs the Gateway API CRDs (once per run) and waits until they are served.
pub(crate) async fn install(ctx: &TestContext) -> Result<()> {
    crds::install_once(&INSTALLED, ctx, "Gateway API", gateway_api_crds).await
}

fn http_routes(ctx: &TestContext) -> kube::Api<kube::api::DynamicObject> {
    support::api(
        ctx,
        "gateway.networking.k8s.io",
        "v1",
        "HTTPRoute",
        "httproutes",
    )
}

fn grpc_routes(ctx: &TestContext) -> kube::Api<kube::api::DynamicObject> {
    support::api(
        ctx,
        "gateway.networking.k8s.io",
        "v1",
        "GRPCRoute",
        "grpcroutes",
    )
}

fn backend(name: &str, weight: Option<i64>) -> Value {
    let mut b = json!({"group": "", "kind": "Service", "name": name, "port": 80});
    if let Some(w) = weight {
        b["weight"] = json!(w);
    }
    b
}

pub(crate) fn pair(prefix: &str, stable: Option<i64>, canary: Option<i64>) -> Value {
    json!([
        backend(&format!("{prefix}-stable"), stable),
        backend(&format!("{prefix}-canary"), canary)
    ])
}

/// An HTTPRoute with two weighted rules (one with a filter) and a rule for another Service.
fn http_route(name: &str, prefix: &str) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name, "labels": {"team": prefix}},
        "spec": {
            "parentRefs": [{"name": "eg"}],
            "hostnames": [format!("{prefix}.example.com")],
            "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/products"}}],
                 "backendRefs": pair(prefix, Some(100), Some(0))},
                {"name": "orders",
                 "matches": [{"path": {"type": "PathPrefix", "value": "/orders"}}],
                 "filters": [{"type": "RequestHeaderModifier",
                              "requestHeaderModifier": {"add": [{"name": "x-via", "value": "gw"}]}}],
                 "backendRefs": pair(prefix, Some(100), Some(0))},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                 "backendRefs": [backend("cdn", None)]}
            ]
        }
    })
}

async fn rollout(ctx: &TestContext, name: &str, block: Value) -> Result<Rollout> {
    support::stored_rollout(
        ctx,
        name,
        json!({
            "canaryService": format!("{name}-canary"),
            "stableService": format!("{name}-stable"),
            "trafficRouting": {
                "managedRoutes": [{"name": "beta"}, {"name": "shadow"}],
                "plugins": {"argoproj-labs/gatewayAPI": block}
            },
            "steps": [{"setWeight": 30}, {"pause": {}}]
        }),
    )
    .await
}

async fn verified(
    router: &GatewayRouter,
    weight: i32,
    additional: &[WeightDestination],
) -> Result<()> {
    let got = router.verify_weight(weight, additional).await?;
    ensure!(
        got == WeightVerification::Verified,
        "weight {weight} should verify, got {got:?}"
    );
    Ok(())
}

fn beta(header: &str) -> SetHeaderRoute {
    SetHeaderRoute {
        name: Some("beta".into()),
        r#match: Some(vec![HeaderRoutingMatch {
            header_name: header.into(),
            header_value: StringMatch {
                exact: Some("1".into()),
                ..Default::default()
            },
        }]),
    }
}

fn names(route: &Value) -> Vec<Value> {
    route["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["name"].clone())
        .collect()
}

async fn http_route_weights_header_and_mirror_rules(ctx: TestContext) -> Result<()> {
    install(&ctx).await?;
    let api = http_routes(&ctx);
    support::create(&api, http_route("shop", "shop")).await?;
    let ro = rollout(
        &ctx,
        "shop",
        json!({"httpRoute": "shop", "namespace": ctx.namespace}),
    )
    .await?;
    let events = support::recorder();
    let router = GatewayRouter::new(support::init(&ctx, &ro, &events))?;
    ensure!(router.name() == "argoproj-labs/gatewayAPI", "registry name");

    router.update_hash("c1", "s1", &[]).await?;
    router.set_weight(0, &[]).await?;
    verified(&router, 0, &[]).await?;
    let route = support::get(&api, "shop").await?;
    expect_json(
        "labels at 0",
        &route["metadata"]["labels"],
        &json!({"team": "shop"}),
    )?;

    router.set_weight(30, &[]).await?;
    verified(&router, 30, &[]).await?;
    let route = support::get(&api, "shop").await?;
    expect_json(
        "labels at 30",
        &route["metadata"]["labels"],
        &json!({"team": "shop", LABEL: "in-progress"}),
    )?;
    for i in 0..2 {
        expect_json(
            &format!("rule {i} at 30"),
            &route["spec"]["rules"][i]["backendRefs"],
            &pair("shop", Some(70), Some(30)),
        )?;
    }

    // Header rules: one per weighted rule, canary only; weights stay verified.
    router.set_header_route(&beta("x-beta")).await?;
    let route = support::get(&api, "shop").await?;
    expect_json(
        "rule names",
        &json!(names(&route)),
        &json!([null, "orders", null, "beta", "beta-1"]),
    )?;
    expect_json(
        "beta-1",
        &route["spec"]["rules"][4],
        &json!({
            "name": "beta-1",
            "matches": [{"path": {"type": "PathPrefix", "value": "/orders"},
                         "headers": [{"name": "x-beta", "type": "Exact", "value": "1"}]}],
            "filters": [{"type": "RequestHeaderModifier",
                         "requestHeaderModifier": {"add": [{"name": "x-via", "value": "gw"}]}}],
            "backendRefs": [backend("shop-canary", None)]
        }),
    )?;
    verified(&router, 30, &[]).await?;
    // Again with another header: replaced, not added.
    router.set_header_route(&beta("x-tester")).await?;
    let route = support::get(&api, "shop").await?;
    expect_json(
        "rule names after the update",
        &json!(names(&route)),
        &json!([null, "orders", null, "beta", "beta-1"]),
    )?;
    ensure!(
        route["spec"]["rules"][3]["matches"][0]["headers"][0]["name"] == "x-tester",
        "{}",
        route["spec"]["rules"][3]
    );

    // A mirror rule: RequestMirror to the canary, kept in step with the weights.
    router
        .set_mirror_route(&SetMirrorRoute {
            name: "shadow".into(),
            r#match: Some(vec![RouteMatch {
                method: Some(StringMatch {
                    exact: Some("GET".into()),
                    ..Default::default()
                }),
                path: Some(StringMatch {
                    prefix: Some("/products".into()),
                    ..Default::default()
                }),
                headers: None,
            }]),
            percentage: Some(50),
        })
        .await?;
    router.set_weight(60, &[]).await?;
    verified(&router, 60, &[]).await?;
    let route = support::get(&api, "shop").await?;
    expect_json(
        "mirror rule",
        &route["spec"]["rules"][5],
        &json!({
            "name": "shadow",
            "matches": [{"method": "GET", "path": {"type": "PathPrefix", "value": "/products"}}],
            "filters": [{"type": "RequestMirror",
                         "requestMirror": {"backendRef": backend("shop-canary", None), "percent": 50}}],
            "backendRefs": pair("shop", Some(40), Some(60))
        }),
    )?;

    // Edited behind the router's back: seen, then repaired.
    let mut rules = route["spec"]["rules"].clone();
    rules[1]["backendRefs"] = pair("shop", Some(45), Some(55));
    support::merge_patch(&api, "shop", json!({"spec": {"rules": rules}})).await?;
    let tampered = router.verify_weight(60, &[]).await?;
    ensure!(
        tampered == WeightVerification::Mismatch {
            observed: Some(55),
            detail:
                "HTTPRoute `shop` rule `orders` gives backendRef `shop-canary` weight 55, want 60"
                    .into()
        },
        "{tampered:?}"
    );
    router.set_weight(60, &[]).await?;
    verified(&router, 60, &[]).await?;

    // The header step without match removes its rules; the end removes the rest.
    router
        .set_header_route(&SetHeaderRoute {
            name: Some("beta".into()),
            r#match: None,
        })
        .await?;
    let route = support::get(&api, "shop").await?;
    expect_json(
        "after removing beta",
        &json!(names(&route)),
        &json!([null, "orders", null, "shadow"]),
    )?;
    router.remove_managed_routes().await?;
    router.set_weight(0, &[]).await?;
    verified(&router, 0, &[]).await?;
    let route = support::get(&api, "shop").await?;
    let mut want = http_route("shop", "shop");
    want["spec"]["rules"][0]["backendRefs"] = pair("shop", Some(100), Some(0));
    want["spec"]["rules"][1]["backendRefs"] = pair("shop", Some(100), Some(0));
    expect_json("route after the abort", &route["spec"], &want["spec"])?;
    expect_json(
        "labels after the abort",
        &route["metadata"]["labels"],
        &json!({"team": "shop"}),
    )?;

    // Idempotent: nothing is written when everything holds.
    router.set_weight(0, &[]).await?;
    router.remove_managed_routes().await?;
    ensure!(
        support::get(&api, "shop").await?["metadata"]["resourceVersion"]
            == route["metadata"]["resourceVersion"],
        "an unchanged route was written"
    );
    ensure!(support::drained(&events).is_empty(), "no events expected");
    Ok(())
}

async fn several_routes_grpc_experiments_and_errors(ctx: TestContext) -> Result<()> {
    install(&ctx).await?;
    let http = http_routes(&ctx);
    let grpc = grpc_routes(&ctx);
    support::create(&http, http_route("web", "cart")).await?;
    support::create(&http, http_route("api", "cart")).await?;
    support::create(
        &grpc,
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
            "metadata": {"name": "cart-rpc"},
            "spec": {"rules": [{
                "matches": [{"method": {"service": "cart.Cart", "method": "Add"}}],
                "backendRefs": pair("cart", None, None)
            }]}
        }),
    )
    .await?;
    let ro = rollout(
        &ctx,
        "cart",
        json!({
            "httpRoutes": [{"name": "web", "useHeaderRoutes": true}, {"name": "api"}],
            "grpcRoute": "cart-rpc",
            "disableInProgressLabel": true,
            "configMap": "argo-gatewayapi-configmap"
        }),
    )
    .await?;
    let events = support::recorder();
    let router = GatewayRouter::new(support::init(&ctx, &ro, &events))?;
    let exp = [WeightDestination {
        weight: 10,
        service_name: Some("cart-exp".into()),
        pod_template_hash: Some("e1".into()),
    }];
    router.set_weight(20, &exp).await?;
    verified(&router, 20, &exp).await?;
    for name in ["web", "api"] {
        let route = support::get(&http, name).await?;
        let mut want = pair("cart", Some(70), Some(20));
        if let Some(list) = want.as_array_mut() {
            list.push(backend("cart-exp", Some(10)));
        }
        expect_json(
            &format!("{name} with the experiment"),
            &route["spec"]["rules"][0]["backendRefs"],
            &want,
        )?;
        ensure!(
            route["metadata"]["labels"].get(LABEL).is_none(),
            "label disabled"
        );
    }
    let rpc = support::get(&grpc, "cart-rpc").await?;
    let mut want = pair("cart", Some(70), Some(20));
    if let Some(list) = want.as_array_mut() {
        list.push(backend("cart-exp", Some(10)));
    }
    expect_json("GRPCRoute", &rpc["spec"]["rules"][0]["backendRefs"], &want)?;
    ensure!(
        router.verify_weight(20, &[]).await? != WeightVerification::Verified,
        "the experiment's share must not verify as a plain 20"
    );

    // Header rules go to the routes with useHeaderRoutes only (and the single grpcRoute).
    router.set_header_route(&beta("x-beta")).await?;
    ensure!(
        names(&support::get(&http, "web").await?).len() == 5,
        "web has header rules"
    );
    ensure!(
        names(&support::get(&http, "api").await?).len() == 3,
        "api has none"
    );
    let rpc = support::get(&grpc, "cart-rpc").await?;
    expect_json(
        "GRPC header rule",
        &rpc["spec"]["rules"][1],
        &json!({"name": "beta",
                "matches": [{"method": {"service": "cart.Cart", "method": "Add"},
                             "headers": [{"name": "x-beta", "type": "Exact", "value": "1"}]}],
                "backendRefs": [backend("cart-canary", None)]}),
    )?;
    router.remove_managed_routes().await?;
    ensure!(
        names(&support::get(&grpc, "cart-rpc").await?).len() == 1,
        "GRPC header rule removed"
    );

    // Errors: a route that is not there; a route without both backends.
    let mut missing = ro.clone();
    set_block(&mut missing, json!({"httpRoute": "nope"}))?;
    let router = GatewayRouter::new(support::init(&ctx, &missing, &events))?;
    let err = router.set_weight(10, &[]).await.expect_err("missing route");
    ensure!(
        err.to_string() == "argoproj-labs/gatewayAPI: HTTPRoute `nope` not found",
        "{err}"
    );
    support::create(
        &http,
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
               "metadata": {"name": "other"},
               "spec": {"rules": [{"backendRefs": [backend("cart-stable", None)]}]}}),
    )
    .await?;
    let mut other = ro.clone();
    set_block(&mut other, json!({"httpRoute": "other"}))?;
    let router = GatewayRouter::new(support::init(&ctx, &other, &events))?;
    let err = router
        .set_weight(10, &[])
        .await
        .expect_err("no canary backend");
    ensure!(
        err.to_string()
            == "argoproj-labs/gatewayAPI: HTTPRoute `other` has no rule with backendRefs to both `cart-canary` and `cart-stable`",
        "{err}"
    );
    let mut unsupported = ro;
    set_block(&mut unsupported, json!({"tcpRoute": "t"}))?;
    let err = GatewayRouter::new(support::init(&ctx, &unsupported, &events)).expect_err("tcpRoute");
    ensure!(
        err.to_string().contains("tcpRoute is not supported"),
        "{err}"
    );
    Ok(())
}

fn set_block(ro: &mut Rollout, block: Value) -> Result<()> {
    let Some(plugins) = ro
        .spec
        .strategy
        .as_mut()
        .and_then(|s| s.canary.as_mut())
        .and_then(|c| c.traffic_routing.as_mut())
        .and_then(|t| t.plugins.as_mut())
    else {
        bail!("no plugins block");
    };
    plugins.insert("argoproj-labs/gatewayAPI".into(), block);
    Ok(())
}

/// The canary weight of the `checkout` HTTPRoute's first rule (checking the stable one).
fn checkout_weight(ctx: TestContext) -> BoxFuture<'static, Result<Option<i32>>> {
    Box::pin(async move {
        let route = serde_json::to_value(http_routes(&ctx).get("checkout").await?)?;
        let weight = |name: &str| {
            route["spec"]["rules"][0]["backendRefs"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|b| b["name"] == name)
                .and_then(|b| weight_of(&b["weight"]))
        };
        match (weight("checkout-canary"), weight("checkout-stable")) {
            (Some(c), Some(s)) => {
                ensure!(c + s == 100, "weights do not add up: {}", route["spec"]);
                let labelled = route["metadata"]["labels"][LABEL] == "in-progress";
                ensure!(
                    labelled == (c > 0),
                    "in-progress label {} at {c}",
                    route["metadata"]
                );
                Ok(Some(i32::try_from(c)?))
            }
            (None, None) => Ok(None),
            _ => bail!("one weight without the other: {}", route["spec"]),
        }
    })
}

async fn controller_walks_a_canary_through_the_http_route(ctx: TestContext) -> Result<()> {
    install(&ctx).await?;
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "checkout"},
        "spec": {
            "parentRefs": [{"name": "eg"}],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                       "backendRefs": pair("checkout", None, None)}]
        }
    });
    support::controller_walks_a_canary(
        &ctx,
        "checkout",
        json!({"plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "checkout", "namespace": ctx.namespace}}}),
        vec![route],
        checkout_weight,
    )
    .await
}
