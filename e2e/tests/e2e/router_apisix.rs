//! The `apisix` router against the real API server: backend weights of an ApisixRoute (our
//! minimal CRD, see `router_crds`) through a canary's steps, header routes created, updated and
//! removed as owned copies, a weight edited behind its back, an abort, a header route it does not
//! own and the error cases; and the real controller walking a canary through it.

use anyhow::{Context, Result, bail, ensure};
use e2e::{Test, TestContext};
use futures::future::BoxFuture;
use rollouts_api::{HeaderRoutingMatch, Rollout, SetHeaderRoute, StringMatch};
use rollouts_plugin::{TrafficRouter, WeightVerification};
use rollouts_router_apisix::{ApisixRouter, weight_of};
use serde_json::{Value, json};

use crate::{
    router_crds as crds,
    router_support::{self as support, expect_json},
};

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(route_weights_and_header_routes_follow_the_steps),
        e2e::test!(foreign_header_route_and_errors),
        e2e::test!(controller_walks_a_canary_through_the_apisix_route),
    ]
}

/// APISIX's `apisix.apache.org/v2` ApisixRoute: rule names and priorities, match expressions,
/// backends (service name, port, weight).
fn apisix_crds() -> Vec<Value> {
    let expr = crds::open(json!({
        "subject": crds::open(json!({"scope": crds::string(), "name": crds::string()})),
        "op": crds::string(),
        "value": crds::string()
    }));
    let backend = crds::open(json!({
        "serviceName": crds::string(),
        "servicePort": {"x-kubernetes-int-or-string": true},
        "weight": crds::integer()
    }));
    vec![crds::crd(
        "apisix.apache.org",
        "ApisixRoute",
        "apisixroutes",
        &["v2"],
        crds::open(json!({
            "ingressClassName": crds::string(),
            "http": crds::list_of(crds::open(json!({
                "name": crds::string(),
                "priority": crds::integer(),
                "match": crds::open(json!({
                    "paths": crds::list_of(crds::string()),
                    "hosts": crds::list_of(crds::string()),
                    "exprs": crds::list_of(expr)
                })),
                "backends": crds::list_of(backend)
            })))
        })),
    )]
}

static INSTALLED: crds::Installed = crds::Installed::const_new();

/// Installs the APISIX CRDs (once per run) and waits until they are served.
pub(crate) async fn install(ctx: &TestContext) -> Result<()> {
    crds::install_once(&INSTALLED, ctx, "APISIX", apisix_crds).await
}

fn routes(ctx: &TestContext) -> kube::Api<kube::api::DynamicObject> {
    support::api(
        ctx,
        "apisix.apache.org",
        "v2",
        "ApisixRoute",
        "apisixroutes",
    )
}

fn backends(prefix: &str, stable: Option<i64>, canary: Option<i64>) -> Value {
    let entry = |name: String, w: Option<i64>| {
        let mut b = json!({"serviceName": name, "servicePort": 80});
        if let Some(w) = w {
            b["weight"] = json!(w);
        }
        b
    };
    json!([
        entry(format!("{prefix}-stable"), stable),
        entry(format!("{prefix}-canary"), canary)
    ])
}

pub(crate) fn main_route(name: &str, prefix: &str) -> Value {
    json!({
        "apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
        "metadata": {"name": name, "labels": {"team": prefix}},
        "spec": {
            "ingressClassName": "apisix",
            "http": [
                {
                    "name": format!("{prefix}-rule"),
                    "priority": 2,
                    "match": {"hosts": [format!("{prefix}.example.com")], "paths": ["/*"]},
                    "plugins": [{"name": "cors", "enable": true}],
                    "backends": backends(prefix, None, Some(0))
                },
                {
                    "name": "static",
                    "match": {"paths": ["/static/*"]},
                    "backends": [{"serviceName": "cdn", "servicePort": 80}]
                }
            ]
        }
    })
}

async fn rollout(ctx: &TestContext, rules: Value) -> Result<Rollout> {
    support::stored_rollout(
        ctx,
        "profile",
        json!({
            "canaryService": "profile-canary",
            "stableService": "profile-stable",
            "trafficRouting": {
                "managedRoutes": [{"name": "staff"}, {"name": "testers"}],
                "apisix": {"route": {"name": "profile-route", "rules": rules}}
            },
            "steps": [{"setWeight": 20}, {"pause": {}}]
        }),
    )
    .await
}

fn header_step(name: &str, header: &str, value: StringMatch) -> SetHeaderRoute {
    SetHeaderRoute {
        name: Some(name.into()),
        r#match: Some(vec![HeaderRoutingMatch {
            header_name: header.into(),
            header_value: value,
        }]),
    }
}

fn exact(s: &str) -> StringMatch {
    StringMatch {
        exact: Some(s.into()),
        ..Default::default()
    }
}

async fn verified(router: &ApisixRouter, weight: i32) -> Result<()> {
    let got = router.verify_weight(weight, &[]).await?;
    ensure!(
        got == WeightVerification::Verified,
        "weight {weight} should verify, got {got:?}"
    );
    Ok(())
}

async fn route_weights_and_header_routes_follow_the_steps(ctx: TestContext) -> Result<()> {
    install(&ctx).await?;
    let api = routes(&ctx);
    support::create(&api, main_route("profile-route", "profile")).await?;
    let ro = rollout(&ctx, json!(["profile-rule"])).await?;
    let uid = ro.metadata.uid.clone().context("uid")?;
    let events = support::recorder();
    let router = ApisixRouter::new(support::init(&ctx, &ro, &events))?;
    ensure!(
        router.capabilities().header_routes && !router.capabilities().mirror_routes,
        "capabilities"
    );

    router.update_hash("c1", "s1", &[]).await?;
    router.set_weight(0, &[]).await?;
    verified(&router, 0).await?;
    router.set_weight(20, &[]).await?;
    verified(&router, 20).await?;
    let main = support::get(&api, "profile-route").await?;
    expect_json(
        "main rule backends at 20",
        &main["spec"]["http"][0]["backends"],
        &backends("profile", Some(80), Some(20)),
    )?;

    // setHeaderRoute: an owned copy of the main route, everything to the canary.
    router
        .set_header_route(&header_step("staff", "x-staff", exact("yes")))
        .await?;
    let staff = support::get(&api, "staff").await?;
    expect_json(
        "header route owner",
        &staff["metadata"]["ownerReferences"],
        &json!([{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "profile",
                 "uid": uid, "controller": true, "blockOwnerDeletion": true}]),
    )?;
    expect_json(
        "header rule",
        &staff["spec"]["http"][0],
        &json!({
            "name": "profile-rule",
            "priority": 3,
            "match": {"hosts": ["profile.example.com"], "paths": ["/*"], "exprs": [
                {"subject": {"scope": "Header", "name": "x-staff"}, "op": "Equal", "value": "yes"}
            ]},
            "plugins": [{"name": "cors", "enable": true}],
            "backends": [{"serviceName": "profile-canary", "servicePort": 80, "weight": 100}]
        }),
    )?;
    expect_json(
        "copied labels",
        &staff["metadata"]["labels"],
        &json!({"team": "profile"}),
    )?;
    // The same step again changes nothing; another match updates the expressions only.
    router
        .set_header_route(&header_step("staff", "x-staff", exact("yes")))
        .await?;
    let again = support::get(&api, "staff").await?;
    ensure!(
        again["metadata"]["resourceVersion"] == staff["metadata"]["resourceVersion"],
        "an unchanged header route was written"
    );
    let prefix = StringMatch {
        prefix: Some("v2.".into()),
        ..Default::default()
    };
    router
        .set_header_route(&header_step("staff", "x-version", prefix))
        .await?;
    let staff = support::get(&api, "staff").await?;
    expect_json(
        "updated header rule",
        &json!([
            staff["spec"]["http"][0]["priority"],
            staff["spec"]["http"][0]["match"]["exprs"]
        ]),
        &json!([3, [{"subject": {"scope": "Header", "name": "x-version"}, "op": "RegexMatch",
                     "value": "^v2\\..*"}]]),
    )?;
    router
        .set_header_route(&header_step("testers", "x-tester", exact("1")))
        .await?;
    ensure!(
        api.get_opt("testers").await?.is_some(),
        "second header route"
    );
    // Header routes do not disturb the main route's weight.
    verified(&router, 20).await?;

    // A weight edited behind the router's back is seen and repaired.
    let mut edited = main_route("profile-route", "profile")["spec"]["http"].clone();
    edited[0]["backends"] = backends("profile", Some(45), Some(55));
    support::merge_patch(&api, "profile-route", json!({"spec": {"http": edited}})).await?;
    let tampered = router.verify_weight(20, &[]).await?;
    ensure!(
        tampered
            == WeightVerification::Mismatch {
                observed: Some(55),
                detail: "ApisixRoute `profile-route` rule `profile-rule` gives backend `profile-canary` weight 55, want 20".into()
            },
        "{tampered:?}"
    );
    router.set_weight(20, &[]).await?;
    verified(&router, 20).await?;

    // A step without match removes its route; the end of the rollout removes the others.
    router
        .set_header_route(&SetHeaderRoute {
            name: Some("staff".into()),
            r#match: None,
        })
        .await?;
    ensure!(
        api.get_opt("staff").await?.is_none(),
        "staff was not removed"
    );
    router
        .set_header_route(&SetHeaderRoute {
            name: Some("staff".into()),
            r#match: None,
        })
        .await?;
    router.set_weight(100, &[]).await?;
    verified(&router, 100).await?;
    router.remove_managed_routes().await?;
    ensure!(
        api.get_opt("testers").await?.is_none(),
        "testers was not removed"
    );
    router.remove_managed_routes().await?;

    // Abort: back to 0, with what others own untouched.
    router.set_weight(0, &[]).await?;
    verified(&router, 0).await?;
    let main = support::get(&api, "profile-route").await?;
    let mut want = main_route("profile-route", "profile")["spec"].clone();
    want["http"][0]["backends"] = backends("profile", Some(100), Some(0));
    expect_json("main route after the abort", &main["spec"], &want)?;
    router.set_weight(0, &[]).await?;
    ensure!(
        support::get(&api, "profile-route").await?["metadata"]["resourceVersion"]
            == main["metadata"]["resourceVersion"],
        "an unchanged weight was written"
    );
    ensure!(support::drained(&events).is_empty(), "no events expected");
    Ok(())
}

async fn foreign_header_route_and_errors(ctx: TestContext) -> Result<()> {
    install(&ctx).await?;
    let api = routes(&ctx);
    support::create(&api, main_route("profile-route", "profile")).await?;
    support::create(&api, main_route("staff", "profile")).await?;
    let ro = rollout(&ctx, json!(["profile-rule"])).await?;
    let events = support::recorder();
    let router = ApisixRouter::new(support::init(&ctx, &ro, &events))?;

    let err = router
        .set_header_route(&header_step("staff", "x-staff", exact("yes")))
        .await
        .expect_err("a route the Rollout does not own");
    ensure!(
        err.to_string() == "apisix: duplicate ApisixRoute [staff] already exists",
        "{err}"
    );
    let err = router
        .set_header_route(&SetHeaderRoute {
            name: Some("staff".into()),
            r#match: None,
        })
        .await
        .expect_err("removing a route the Rollout does not own");
    ensure!(
        err.to_string() == "apisix: duplicate ApisixRoute [staff] already exists",
        "{err}"
    );
    router.remove_managed_routes().await?;
    ensure!(
        api.get_opt("staff").await?.is_some(),
        "a foreign route was deleted"
    );

    // A rule that is not there, and a route that is not there.
    let mut other = ro.clone();
    other
        .spec
        .strategy
        .as_mut()
        .and_then(|s| s.canary.as_mut())
        .and_then(|c| c.traffic_routing.as_mut())
        .and_then(|t| t.apisix.as_mut())
        .and_then(|a| a.route.as_mut())
        .context("apisix block")?
        .rules = Some(vec!["nope".into()]);
    let router = ApisixRouter::new(support::init(&ctx, &other, &events))?;
    let err = router.set_weight(10, &[]).await.expect_err("missing rule");
    ensure!(
        err.to_string() == "apisix: Apisix http route rule nope not found",
        "{err}"
    );
    api.delete("profile-route", &Default::default()).await?;
    let err = router.set_weight(10, &[]).await.expect_err("missing route");
    ensure!(
        err.to_string() == "apisix: ApisixRoute `profile-route` not found",
        "{err}"
    );
    ensure!(support::drained(&events).is_empty(), "no events expected");
    Ok(())
}

/// The canary weight of `avatar-route`'s rule (checking that the stable backend has the rest).
fn avatar_weight(ctx: TestContext) -> BoxFuture<'static, Result<Option<i32>>> {
    Box::pin(async move {
        let route = serde_json::to_value(routes(&ctx).get("avatar-route").await?)?;
        let weight = |name: &str| {
            route["spec"]["http"][0]["backends"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|b| b["serviceName"] == name)
                .and_then(|b| weight_of(&b["weight"]))
        };
        match (weight("avatar-canary"), weight("avatar-stable")) {
            (Some(c), Some(s)) => {
                ensure!(c + s == 100, "weights do not add up: {}", route["spec"]);
                Ok(Some(i32::try_from(c)?))
            }
            (Some(0), None) => Ok(None),
            _ => bail!("unexpected backends: {}", route["spec"]),
        }
    })
}

async fn controller_walks_a_canary_through_the_apisix_route(ctx: TestContext) -> Result<()> {
    install(&ctx).await?;
    support::controller_walks_a_canary(
        &ctx,
        "avatar",
        json!({"apisix": {"route": {"name": "avatar-route", "rules": ["avatar-rule"]}}}),
        vec![main_route("avatar-route", "avatar")],
        avatar_weight,
    )
    .await
}
