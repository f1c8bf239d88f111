//! The `istio` router against the real API server (our minimal Istio CRDs, see
//! `router_support`): VirtualServices and a DestinationRule driven as the controller would drive
//! them through a canary's steps, header and mirror routes, an experiment, weights edited behind
//! the router's back, an abort, and the error cases.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use e2e::{FAIL_LABEL, Test, TestContext, wait};
use futures::future::BoxFuture;
use kube::api::DynamicObject;
use rollouts_api::{
    HeaderRoutingMatch, Rollout, RouteMatch, SetHeaderRoute, SetMirrorRoute, StringMatch,
    WeightDestination,
};
use rollouts_plugin::{PluginEvent, TrafficRouter, WeightVerification};
use rollouts_router_istio::IstioRouter;
use serde_json::{Value, json};

use crate::router_support::{self as support, expect_json};

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(host_level_routes_through_steps_header_and_mirror_routes_and_an_abort),
        e2e::test!(subset_level_destination_rule_and_two_virtual_services),
        e2e::test!(missing_objects_and_wrong_routes_are_reported),
        e2e::test!(controller_walks_a_canary_through_the_virtual_service),
    ]
}

fn virtual_services(ctx: &TestContext, version: &str) -> kube::Api<DynamicObject> {
    support::api(
        ctx,
        "networking.istio.io",
        version,
        "VirtualService",
        "virtualservices",
    )
}

fn destination_rules(ctx: &TestContext) -> kube::Api<DynamicObject> {
    support::api(
        ctx,
        "networking.istio.io",
        "v1alpha3",
        "DestinationRule",
        "destinationrules",
    )
}

fn dest(host: &str, weight: i64) -> Value {
    json!({"destination": {"host": host}, "weight": weight})
}

fn split(stable: i64, canary: i64) -> Value {
    json!([
        dest("reviews-stable", stable),
        dest("reviews-canary", canary)
    ])
}

/// The user's VirtualService: hosts, gateways, a weighted HTTP route with matches, retries and a
/// header rewrite, a second route of their own, a TLS and a TCP route.
fn reviews_spec() -> Value {
    json!({
        "hosts": ["reviews.shop.example.com"],
        "gateways": ["shop-gateway"],
        "http": [
            {"name": "primary",
             "match": [{"uri": {"prefix": "/reviews"}}],
             "retries": {"attempts": 3, "perTryTimeout": "2s"},
             "route": [
                {"destination": {"host": "reviews-stable", "port": {"number": 9080}}, "weight": 100,
                 "headers": {"request": {"set": {"x-role": "stable"}}}},
                {"destination": {"host": "reviews-canary", "port": {"number": 9080}}, "weight": 0}
             ]},
            {"name": "legacy", "route": [{"destination": {"host": "reviews-v1"}}]}
        ],
        "tls": [{"match": [{"port": 443, "sniHosts": ["reviews.shop.example.com"]}], "route": split(100, 0)}],
        "tcp": [{"match": [{"port": 9090}], "route": split(100, 0)}]
    })
}

fn reviews_with(canary: i64) -> Value {
    let mut spec = reviews_spec();
    spec["http"][0]["route"][0]["weight"] = json!(100 - canary);
    spec["http"][0]["route"][1]["weight"] = json!(canary);
    spec["tls"][0]["route"] = split(100 - canary, canary);
    spec["tcp"][0]["route"] = split(100 - canary, canary);
    spec
}

async fn verified(
    router: &IstioRouter,
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

fn names(vs: &Value) -> Vec<String> {
    vs["spec"]["http"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["name"].as_str().unwrap_or("-").to_string())
        .collect()
}

fn exact(v: &str) -> StringMatch {
    StringMatch {
        exact: Some(v.into()),
        ..StringMatch::default()
    }
}

fn header_route(name: &str, on: bool) -> SetHeaderRoute {
    SetHeaderRoute {
        name: Some(name.into()),
        r#match: on.then(|| {
            vec![HeaderRoutingMatch {
                header_name: "x-beta".into(),
                header_value: exact("true"),
            }]
        }),
    }
}

fn mirror_route(on: bool) -> SetMirrorRoute {
    SetMirrorRoute {
        name: "mirror-orders".into(),
        r#match: on.then(|| {
            vec![RouteMatch {
                method: Some(exact("POST")),
                ..RouteMatch::default()
            }]
        }),
        percentage: Some(10),
    }
}

async fn host_level_routes_through_steps_header_and_mirror_routes_and_an_abort(
    ctx: TestContext,
) -> Result<()> {
    support::install_istio(&ctx).await?;
    let api = virtual_services(&ctx, "v1alpha3");
    support::create(
        &api,
        json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
               "metadata": {"name": "reviews"}, "spec": reviews_spec()}),
    )
    .await?;
    let ro = support::stored_rollout(
        &ctx,
        "reviews",
        json!({
            "canaryService": "reviews-canary",
            "stableService": "reviews-stable",
            "trafficRouting": {
                "managedRoutes": [{"name": "beta"}, {"name": "mirror-orders"}],
                "istio": {"virtualService": {
                    "name": "reviews",
                    "routes": ["primary"],
                    "tlsRoutes": [{"port": 443, "sniHosts": ["reviews.shop.example.com"]}],
                    "tcpRoutes": [{"port": 9090}]
                }}
            },
            "steps": [
                {"setHeaderRoute": {"name": "beta", "match": [{"headerName": "x-beta", "headerValue": {"exact": "true"}}]}},
                {"setWeight": 20},
                {"setMirrorRoute": {"name": "mirror-orders", "match": [{"method": {"exact": "POST"}}]}},
                {"setWeight": 50},
                {"pause": {}}
            ]
        }),
    )
    .await?;
    let events = support::recorder();
    let router = IstioRouter::new(support::init(&ctx, &ro, &events), "v1alpha3")?;
    let created = support::get(&api, "reviews").await?;
    let version = created["metadata"]["resourceVersion"].clone();

    // Initial reconcile: no DestinationRule, weight 0 is already there: nothing is written.
    router.update_hash("c1", "s1", &[]).await?;
    router.set_weight(0, &[]).await?;
    verified(&router, 0, &[]).await?;
    ensure!(
        support::get(&api, "reviews").await?["metadata"]["resourceVersion"] == version,
        "nothing to change, yet the VirtualService was written"
    );
    ensure!(support::drained(&events).is_empty(), "no events expected");

    // Someone adds fields the router knows nothing about.
    support::merge_patch(
        &api,
        "reviews",
        json!({"metadata": {"labels": {"team": "reviews"}}, "spec": {"exportTo": ["."]}}),
    )
    .await?;

    // Step 0: header route (top), step 1: 20%.
    router.set_header_route(&header_route("beta", true)).await?;
    router.update_hash("c1", "s1", &[]).await?;
    router.set_weight(20, &[]).await?;
    let vs = support::get(&api, "reviews").await?;
    ensure!(
        names(&vs) == ["beta", "primary", "legacy"],
        "{:?}",
        names(&vs)
    );
    expect_json(
        "header route",
        &vs["spec"]["http"][0],
        &json!({"name": "beta", "match": [{"headers": {"x-beta": {"exact": "true"}}}],
                "route": [{"destination": {"host": "reviews-canary", "port": {"number": 9080}}, "weight": 100}]}),
    )?;
    let mut want = reviews_with(20);
    want["exportTo"] = json!(["."]);
    expect_json(
        "weighted routes at 20",
        &vs["spec"]["http"][1],
        &want["http"][0],
    )?;
    expect_json("tls at 20", &vs["spec"]["tls"], &want["tls"])?;
    expect_json("tcp at 20", &vs["spec"]["tcp"], &want["tcp"])?;
    verified(&router, 20, &[]).await?;
    ensure!(
        support::drained(&events)
            == [
                "Updated VirtualService: VirtualService `reviews` set headerRoute 'beta'",
                "Updated VirtualService: VirtualService `reviews` set to desiredWeight '20'",
            ],
        "events"
    );

    // The controller repeats the step's call on every reconcile: nothing is written.
    let version = vs["metadata"]["resourceVersion"].clone();
    router.set_header_route(&header_route("beta", true)).await?;
    router.set_weight(20, &[]).await?;
    ensure!(
        support::get(&api, "reviews").await?["metadata"]["resourceVersion"] == version,
        "a repeated call wrote the VirtualService"
    );
    ensure!(
        support::drained(&events).is_empty(),
        "repeated calls emit no events"
    );

    // Step 2: mirror route (below the header route, managedRoutes order), step 3: 50%.
    router.set_mirror_route(&mirror_route(true)).await?;
    router.set_weight(50, &[]).await?;
    let vs = support::get(&api, "reviews").await?;
    ensure!(
        names(&vs) == ["beta", "mirror-orders", "primary", "legacy"],
        "{:?}",
        names(&vs)
    );
    expect_json(
        "mirror route",
        &vs["spec"]["http"][1],
        &json!({
            "name": "mirror-orders",
            "match": [{"method": {"exact": "POST"}}],
            "route": reviews_with(50)["http"][0]["route"],
            "mirror": {"host": "reviews-canary", "port": {"number": 9080}},
            "mirrorPercentage": {"value": 10}
        }),
    )?;
    verified(&router, 50, &[]).await?;

    // The TCP weights are edited by hand: verification sees it; set_weight repairs.
    support::merge_patch(
        &api,
        "reviews",
        json!({"spec": {"tcp": [{"match": [{"port": 9090}], "route": split(90, 10)}]}}),
    )
    .await?;
    let tampered = router.verify_weight(50, &[]).await?;
    let WeightVerification::Mismatch { observed, detail } = &tampered else {
        bail!("a hand-edited weight verified");
    };
    ensure!(*observed == Some(50), "{tampered:?}");
    ensure!(
        detail
            == &format!(
                "VirtualService `{}/reviews`: tcp route #0 destination `reviews-stable`: weight 90, want 50",
                ctx.namespace
            ),
        "{detail}"
    );
    router.set_weight(50, &[]).await?;
    verified(&router, 50, &[]).await?;

    // The steps remove their routes; the end of the steps; then an abort back to 0.
    router
        .set_header_route(&header_route("beta", false))
        .await?;
    router.set_mirror_route(&mirror_route(false)).await?;
    router.set_weight(100, &[]).await?;
    verified(&router, 100, &[]).await?;
    router.set_header_route(&header_route("beta", true)).await?;
    support::drained(&events);
    router.remove_managed_routes().await?;
    router.set_weight(0, &[]).await?;
    verified(&router, 0, &[]).await?;
    ensure!(
        support::drained(&events)
            == [
                "Updated VirtualService: VirtualService `reviews` removed all managed routes.",
                "Updated VirtualService: VirtualService `reviews` set to desiredWeight '0'",
            ],
        "events"
    );
    // Nothing left to remove: nothing written.
    router.remove_managed_routes().await?;
    ensure!(
        support::drained(&events).is_empty(),
        "nothing to remove, yet an event"
    );

    // The VirtualService is exactly what its owner wrote (plus their own later edit).
    let vs = support::get(&api, "reviews").await?;
    let mut want = reviews_spec();
    want["exportTo"] = json!(["."]);
    expect_json("the VirtualService after the abort", &vs["spec"], &want)?;
    expect_json(
        "labels",
        &vs["metadata"]["labels"],
        &json!({"team": "reviews"}),
    )?;
    Ok(())
}

fn subset(name: &str, weight: i64) -> Value {
    json!({"destination": {"host": "ratings", "subset": name}, "weight": weight})
}

/// A ReplicaSet of the Rollout (controller owner reference) with `replicas` pods; with `fail`,
/// its pods fail (KWOK) and it never becomes available.
fn replica_set(ro: &Rollout, hash: &str, replicas: i32, fail: bool) -> Value {
    let mut labels = json!({"app": "ratings", "rollouts-pod-template-hash": hash});
    if fail {
        labels[FAIL_LABEL] = json!("true");
    }
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": format!("ratings-{hash}"),
            "labels": {"app": "ratings", "rollouts-pod-template-hash": hash},
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                "name": "ratings", "uid": ro.metadata.uid, "controller": true}]
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "ratings", "rollouts-pod-template-hash": hash}},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "app", "image": "registry.invalid/ratings:1"}]}}
        }
    })
}

fn experiment() -> WeightDestination {
    WeightDestination {
        weight: 10,
        service_name: Some("ratings-exp".into()),
        pod_template_hash: Some("e1".into()),
    }
}

async fn subset_level_destination_rule_and_two_virtual_services(ctx: TestContext) -> Result<()> {
    support::install_istio(&ctx).await?;
    let rules = destination_rules(&ctx);
    let original_rule = json!({
        "host": "ratings",
        "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
        "subsets": [
            {"name": "stable", "labels": {"app": "ratings"}},
            {"name": "canary", "labels": {"app": "ratings"},
             "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}}},
            {"name": "legacy", "labels": {"version": "v0"}}
        ]
    });
    support::create(
        &rules,
        json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "DestinationRule",
               "metadata": {"name": "ratings"}, "spec": original_rule}),
    )
    .await?;
    // The mesh VirtualService is read and written as v1beta1, the public one as v1alpha3: the
    // same objects.
    let vs_api = virtual_services(&ctx, "v1beta1");
    for (name, route) in [("ratings-mesh", "primary"), ("ratings-public", "public")] {
        support::create(
            &vs_api,
            json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
                   "metadata": {"name": name},
                   "spec": {"hosts": [name], "http": [{"name": route, "route": [subset("stable", 100), subset("canary", 0)]}]}}),
        )
        .await?;
    }
    let ro = support::stored_rollout(
        &ctx,
        "ratings",
        json!({
            "trafficRouting": {
                "managedRoutes": [{"name": "beta"}],
                "istio": {
                    "destinationRule": {"name": "ratings", "canarySubsetName": "canary", "stableSubsetName": "stable"},
                    "virtualServices": [
                        {"name": "ratings-mesh", "routes": ["primary"]},
                        // Istio's name.namespace shorthand.
                        {"name": format!("ratings-public.{}", ctx.namespace), "routes": ["public"]}
                    ]
                }
            },
            "steps": [{"setWeight": 30}, {"pause": {}}]
        }),
    )
    .await?;
    let events = support::recorder();
    let router = IstioRouter::new(support::init(&ctx, &ro, &events), "v1beta1")?;

    // The stable ReplicaSet is available, the canary one never is (its pods fail): without
    // Services, the DestinationRule must not switch.
    let sets = support::api(&ctx, "apps", "v1", "ReplicaSet", "replicasets");
    support::create(&sets, replica_set(&ro, "s1", 1, false)).await?;
    support::create(&sets, replica_set(&ro, "c2", 1, true)).await?;
    wait::until(
        Duration::from_secs(60),
        "ReplicaSet ratings-s1 available",
        || async {
            let rs = support::get(&sets, "ratings-s1").await?;
            Ok::<_, anyhow::Error>((rs["status"]["availableReplicas"] == 1).then_some(()))
        },
    )
    .await?;
    let err = router
        .update_hash("c2", "s1", &[])
        .await
        .expect_err("the canary ReplicaSet is not available");
    ensure!(
        err.to_string()
            == "istio: delaying destination rule switch: ReplicaSet ratings-c2 not fully available",
        "{err}"
    );
    let rule = support::get(&rules, "ratings").await?;
    expect_json("the rule before the switch", &rule["spec"], &original_rule)?;

    // Scaled to 0 it does not count: the subsets switch.
    support::merge_patch(&sets, "ratings-c2", json!({"spec": {"replicas": 0}})).await?;
    router.update_hash("c2", "s1", &[]).await?;
    let rule = support::get(&rules, "ratings").await?;
    let mut want = original_rule.clone();
    want["subsets"][0]["labels"]["rollouts-pod-template-hash"] = json!("s1");
    want["subsets"][1]["labels"]["rollouts-pod-template-hash"] = json!("c2");
    expect_json("the switched rule", &rule["spec"], &want)?;
    ensure!(
        rule["metadata"]["annotations"]["argo-rollouts.argoproj.io/managed-by-rollouts"]
            == "ratings",
        "{}",
        rule["metadata"]
    );
    ensure!(
        support::drained(&events)
            == [
                "UpdatedDestinationRule: DestinationRule ratings subset updated (canary: c2, stable: s1)"
            ],
        "events"
    );
    // Again: nothing to write, no event (the canary subset has extra fields; Argo writes here).
    let version = rule["metadata"]["resourceVersion"].clone();
    router.update_hash("c2", "s1", &[]).await?;
    ensure!(
        support::get(&rules, "ratings").await?["metadata"]["resourceVersion"] == version,
        "an unchanged rule was written"
    );
    ensure!(support::drained(&events).is_empty(), "no event expected");

    router.set_weight(30, &[]).await?;
    for name in ["ratings-mesh", "ratings-public"] {
        let vs = support::get(&vs_api, name).await?;
        expect_json(
            &format!("{name} at 30"),
            &vs["spec"]["http"][0]["route"],
            &json!([subset("stable", 70), subset("canary", 30)]),
        )?;
    }
    verified(&router, 30, &[]).await?;
    ensure!(
        support::drained(&events)
            == [
                "Updated VirtualService: VirtualService `ratings-mesh` set to desiredWeight '30'",
                "Updated VirtualService: VirtualService `ratings-public` set to desiredWeight '30'",
            ],
        "events"
    );

    // A header route with subset-level routing goes to the rule's host and the canary subset.
    router.set_header_route(&header_route("beta", true)).await?;
    let public = support::get(&vs_api, "ratings-public").await?;
    expect_json(
        "subset header route",
        &public["spec"]["http"][0]["route"],
        &json!([{"destination": {"host": "ratings", "subset": "canary"}, "weight": 100}]),
    )?;

    // An experiment: its subset and destination are added, then removed when it ends.
    router.update_hash("c2", "s1", &[experiment()]).await?;
    router.set_weight(30, &[experiment()]).await?;
    let rule = support::get(&rules, "ratings").await?;
    expect_json(
        "experiment subset",
        &rule["spec"]["subsets"][3],
        &json!({"name": "ratings-exp", "labels": {"rollouts-pod-template-hash": "e1"}}),
    )?;
    let mesh = support::get(&vs_api, "ratings-mesh").await?;
    expect_json(
        "experiment destination",
        &mesh["spec"]["http"][1]["route"],
        &json!([
            subset("stable", 60),
            subset("canary", 30),
            dest("ratings-exp", 10)
        ]),
    )?;
    verified(&router, 30, &[experiment()]).await?;
    ensure!(
        router.verify_weight(30, &[]).await? != WeightVerification::Verified,
        "the experiment's share must not verify as a plain 30"
    );
    router.update_hash("c2", "s1", &[]).await?;
    router.set_weight(30, &[]).await?;
    verified(&router, 30, &[]).await?;
    let rule = support::get(&rules, "ratings").await?;
    expect_json("the rule after the experiment", &rule["spec"], &want)?;

    // Hand edit of the second VirtualService, seen and repaired.
    support::merge_patch(
        &vs_api,
        "ratings-public",
        json!({"spec": {"http": [{"name": "public", "route": [subset("stable", 100), subset("canary", 0)]}]}}),
    )
    .await?;
    let tampered = router.verify_weight(30, &[]).await?;
    ensure!(
        matches!(
            tampered,
            WeightVerification::Mismatch {
                observed: Some(0),
                ..
            }
        ),
        "{tampered:?}"
    );
    router.set_weight(30, &[]).await?;
    verified(&router, 30, &[]).await?;

    // Abort: managed routes go, weights back to 0, the stable subset keeps its hash.
    router.remove_managed_routes().await?;
    router.update_hash("s1", "s1", &[]).await?;
    router.set_weight(0, &[]).await?;
    verified(&router, 0, &[]).await?;
    for (name, route) in [("ratings-mesh", "primary"), ("ratings-public", "public")] {
        let vs = support::get(&vs_api, name).await?;
        expect_json(
            &format!("{name} after the abort"),
            &vs["spec"],
            &json!({"hosts": [name], "http": [{"name": route, "route": [subset("stable", 100), subset("canary", 0)]}]}),
        )?;
    }
    let rule = support::get(&rules, "ratings").await?;
    ensure!(
        rule["spec"]["subsets"][1]["labels"]["rollouts-pod-template-hash"] == "s1"
            && rule["spec"]["subsets"][2] == json!({"name": "legacy", "labels": {"version": "v0"}}),
        "{}",
        rule["spec"]
    );
    Ok(())
}

async fn missing_objects_and_wrong_routes_are_reported(ctx: TestContext) -> Result<()> {
    support::install_istio(&ctx).await?;
    let ro = support::stored_rollout(
        &ctx,
        "orders",
        json!({
            "canaryService": "orders-canary",
            "stableService": "orders-stable",
            "trafficRouting": {
                "managedRoutes": [{"name": "beta"}],
                "istio": {
                    "virtualService": {"name": "orders", "routes": ["primary"]},
                    "destinationRule": {"name": "orders", "canarySubsetName": "canary", "stableSubsetName": "stable"}
                }
            }
        }),
    )
    .await?;
    let events = support::recorder();
    let router = IstioRouter::new(support::init(&ctx, &ro, &events), "v1")?;
    let reasons = |events: Vec<PluginEvent>| -> Vec<String> {
        events
            .into_iter()
            .map(|e| format!("{:?} {}: {}", e.kind, e.reason, e.message))
            .collect()
    };

    let err = router
        .set_weight(10, &[])
        .await
        .expect_err("no VirtualService");
    ensure!(
        err.to_string() == "istio: VirtualService `orders` not found",
        "{err}"
    );
    router.remove_managed_routes().await?;
    let err = router
        .update_hash("c", "s", &[])
        .await
        .expect_err("no DestinationRule");
    ensure!(
        err.to_string() == "istio: DestinationRule `orders` not found",
        "{err}"
    );
    let err = router
        .set_header_route(&header_route("beta", true))
        .await
        .expect_err("no DestinationRule for the header route's host");
    ensure!(
        err.to_string() == "istio: DestinationRule `orders` not found",
        "{err}"
    );
    ensure!(
        reasons(events.drain())
            == [
                "Warning VirtualServiceNotFound: VirtualService `orders` not found",
                "Warning VirtualServiceNotFound: VirtualService `orders` not found",
                "Warning DestinationRuleNotFound: DestinationRule `orders` not found",
                "Warning DestinationRuleNotFound: DestinationRule `orders` not found",
            ],
        "warnings"
    );
    let mismatch = router.verify_weight(10, &[]).await?;
    ensure!(
        mismatch
            == WeightVerification::Mismatch {
                observed: None,
                detail: format!("VirtualService `{}/orders` does not exist", ctx.namespace)
            },
        "{mismatch:?}"
    );

    // The route named in the Rollout is not in the VirtualService.
    let api = virtual_services(&ctx, "v1");
    support::create(
        &api,
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
               "metadata": {"name": "orders"},
               "spec": {"http": [{"name": "main", "route": [subset("stable", 100), subset("canary", 0)]}]}}),
    )
    .await?;
    let err = router
        .set_weight(10, &[])
        .await
        .expect_err("no route primary");
    ensure!(
        err.to_string()
            == "istio: VirtualService `orders`: HTTP Route 'primary' is not found in the defined Virtual Service.",
        "{err}"
    );
    let mismatch = router.verify_weight(10, &[]).await?;
    ensure!(
        matches!(&mismatch, WeightVerification::Mismatch { observed: None, detail }
            if detail.ends_with("HTTP Route 'primary' is not found in the defined Virtual Service.")),
        "{mismatch:?}"
    );
    // Header routes need HTTP routes.
    support::merge_patch(
        &api,
        "orders",
        json!({"spec": {"http": null,
                        "tcp": [{"route": [subset("stable", 100), subset("canary", 0)]}]}}),
    )
    .await?;
    support::create(
        &destination_rules(&ctx),
        json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "DestinationRule",
               "metadata": {"name": "orders"}, "spec": {"host": "orders"}}),
    )
    .await?;
    let err = router
        .set_header_route(&header_route("beta", true))
        .await
        .expect_err("no spec.http");
    ensure!(
        err.to_string()
            == "istio: spec.http not found in VirtualService `orders`: header and mirror routes are HTTP routes",
        "{err}"
    );
    // Removing managed routes from a VirtualService without HTTP routes is not an error.
    router.remove_managed_routes().await?;
    // TCP-only: the weight goes to the only TCP route.
    router.set_weight(10, &[]).await?;
    verified(&router, 10, &[]).await?;
    Ok(())
}

/// The canary weight of the `checkout` VirtualService's primary route.
fn checkout_weight(ctx: TestContext) -> BoxFuture<'static, Result<Option<i32>>> {
    Box::pin(async move {
        let Some(vs) = virtual_services(&ctx, "v1alpha3")
            .get_opt("checkout")
            .await?
        else {
            return Ok(None);
        };
        let vs = serde_json::to_value(vs)?;
        let route = &vs["spec"]["http"][0]["route"];
        let weight = |host: &str| {
            route
                .as_array()
                .into_iter()
                .flatten()
                .find(|d| d["destination"]["host"] == host)
                .and_then(|d| d["weight"].as_i64())
        };
        let (Some(stable), Some(canary)) = (weight("checkout-stable"), weight("checkout-canary"))
        else {
            bail!("route without both destinations: {route}");
        };
        ensure!(stable + canary == 100, "weights do not add up: {route}");
        Ok(Some(i32::try_from(canary)?))
    })
}

/// A VirtualService `name` whose HTTP route `primary` sends everything to `<name>-stable`.
pub(crate) fn primary_virtual_service(name: &str) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {"hosts": [name], "http": [{"name": "primary", "route": [
            {"destination": {"host": format!("{name}-stable")}, "weight": 100},
            {"destination": {"host": format!("{name}-canary")}, "weight": 0}
        ]}]}
    })
}

async fn controller_walks_a_canary_through_the_virtual_service(ctx: TestContext) -> Result<()> {
    support::install_istio(&ctx).await?;
    support::controller_walks_a_canary(
        &ctx,
        "checkout",
        json!({"istio": {"virtualService": {"name": "checkout", "routes": ["primary"]}}}),
        vec![primary_virtual_service("checkout")],
        checkout_weight,
    )
    .await
}
