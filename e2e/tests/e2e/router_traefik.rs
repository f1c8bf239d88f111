//! The `traefik` router against the real API server: the weights of a weighted TraefikService (our
//! minimal CRD, see `router_crds`) through a canary's steps, a weight edited behind its back, an
//! abort, the Traefik 2 API group and the error cases; and the real controller walking a canary
//! through it (its restoring of an edited weight is tested with every router's in `router_verify`).

use anyhow::{Result, bail, ensure};
use e2e::{Test, TestContext};
use futures::future::BoxFuture;
use rollouts_api::Rollout;
use rollouts_plugin::{TrafficRouter, WeightVerification};
use rollouts_router_traefik::{DEFAULT_API_GROUP, DEFAULT_API_VERSION, TraefikRouter, weight_of};
use serde_json::{Value, json};

use crate::{
    router_crds as crds,
    router_support::{self as support, expect_json},
};

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(weighted_service_follows_the_steps_and_an_abort),
        e2e::test!(traefik_v2_group_and_errors),
        e2e::test!(controller_walks_a_canary_through_the_traefik_service),
    ]
}

/// Traefik's TraefikService in `traefik.io/v1alpha1` (Traefik 3) and in
/// `traefik.containo.us/v1alpha1` (Traefik 2): the weighted services (name, port, weight).
fn traefik_crds() -> Vec<Value> {
    let spec = crds::open(json!({
        "weighted": crds::open(json!({
            "services": crds::list_of(crds::open(json!({
                "name": crds::string(),
                "port": {"x-kubernetes-int-or-string": true},
                "weight": crds::integer()
            })))
        })),
        "mirroring": crds::open(json!({}))
    }));
    ["traefik.io", "traefik.containo.us"]
        .into_iter()
        .map(|group| {
            crds::crd(
                group,
                "TraefikService",
                "traefikservices",
                &["v1alpha1"],
                spec.clone(),
            )
        })
        .collect()
}

static INSTALLED: crds::Installed = crds::Installed::const_new();

/// Installs the Traefik CRDs (once per run) and waits until they are served.
pub(crate) async fn install(ctx: &TestContext) -> Result<()> {
    crds::install_once(&INSTALLED, ctx, "Traefik", traefik_crds).await
}

fn services(ctx: &TestContext, group: &str) -> kube::Api<kube::api::DynamicObject> {
    support::api(ctx, group, "v1alpha1", "TraefikService", "traefikservices")
}

pub(crate) fn weighted(group: &str, name: &str, prefix: &str) -> Value {
    json!({
        "apiVersion": format!("{group}/v1alpha1"), "kind": "TraefikService",
        "metadata": {"name": name},
        "spec": {
            "weighted": {
                "sticky": {"cookie": {"name": "lvl"}},
                "services": [
                    {"name": format!("{prefix}-stable"), "port": 80},
                    {"name": format!("{prefix}-canary"), "port": 80},
                    {"name": "legacy", "port": 8080, "weight": 3}
                ]
            },
            "mirroring": {"name": "shadow", "port": 80}
        }
    })
}

async fn rollout(ctx: &TestContext, name: &str, service: &str) -> Result<Rollout> {
    support::stored_rollout(
        ctx,
        name,
        json!({
            "canaryService": format!("{name}-canary"),
            "stableService": format!("{name}-stable"),
            "trafficRouting": {"traefik": {"weightedTraefikServiceName": service}},
            "steps": [{"setWeight": 20}, {"pause": {}}]
        }),
    )
    .await
}

fn entries(stable: i64, canary: i64, prefix: &str) -> Value {
    json!([
        {"name": format!("{prefix}-stable"), "port": 80, "weight": stable},
        {"name": format!("{prefix}-canary"), "port": 80, "weight": canary},
        {"name": "legacy", "port": 8080, "weight": 3}
    ])
}

async fn verified(router: &TraefikRouter, weight: i32) -> Result<()> {
    let got = router.verify_weight(weight, &[]).await?;
    ensure!(
        got == WeightVerification::Verified,
        "weight {weight} should verify, got {got:?}"
    );
    Ok(())
}

async fn weighted_service_follows_the_steps_and_an_abort(ctx: TestContext) -> Result<()> {
    install(&ctx).await?;
    let api = services(&ctx, "traefik.io");
    support::create(
        &api,
        weighted("traefik.io", "accounts-weighted", "accounts"),
    )
    .await?;
    let ro = rollout(&ctx, "accounts", "accounts-weighted").await?;
    let events = support::recorder();
    let router = TraefikRouter::new(
        support::init(&ctx, &ro, &events),
        DEFAULT_API_GROUP,
        DEFAULT_API_VERSION,
    )?;

    // Before the first weight, the stable entry has none: not verified.
    let fresh = router.verify_weight(0, &[]).await?;
    ensure!(
        fresh
            == WeightVerification::Mismatch {
                observed: None,
                detail: "TraefikService `accounts-weighted` gives service `accounts-canary` weight (unset), want 0".into()
            },
        "{fresh:?}"
    );
    router.update_hash("c1", "s1", &[]).await?;
    router.set_weight(0, &[]).await?;
    verified(&router, 0).await?;

    // Someone labels the TraefikService: that is theirs.
    support::merge_patch(
        &api,
        "accounts-weighted",
        json!({"metadata": {"labels": {"team": "accounts"}}}),
    )
    .await?;

    for weight in [20, 60, 100] {
        router.set_weight(weight, &[]).await?;
        let svc = support::get(&api, "accounts-weighted").await?;
        expect_json(
            &format!("services at {weight}"),
            &svc["spec"]["weighted"]["services"],
            &entries(100 - i64::from(weight), i64::from(weight), "accounts"),
        )?;
        verified(&router, weight).await?;
    }

    // Edited behind the router's back: seen by verify_weight, repaired by set_weight.
    support::merge_patch(
        &api,
        "accounts-weighted",
        json!({"spec": {"weighted": {"services": entries(45, 55, "accounts")}}}),
    )
    .await?;
    let tampered = router.verify_weight(100, &[]).await?;
    ensure!(
        tampered
            == WeightVerification::Mismatch {
                observed: Some(55),
                detail: "TraefikService `accounts-weighted` gives service `accounts-canary` weight 55, want 100".into()
            },
        "{tampered:?}"
    );
    router.set_weight(100, &[]).await?;
    verified(&router, 100).await?;

    // Abort: back to 0. What others own is still there.
    router.set_weight(0, &[]).await?;
    verified(&router, 0).await?;
    let svc = support::get(&api, "accounts-weighted").await?;
    expect_json(
        "after the abort",
        &svc["spec"],
        &json!({
            "weighted": {"sticky": {"cookie": {"name": "lvl"}}, "services": entries(100, 0, "accounts")},
            "mirroring": {"name": "shadow", "port": 80}
        }),
    )?;
    expect_json(
        "labels",
        &svc["metadata"]["labels"],
        &json!({"team": "accounts"}),
    )?;

    // Idempotent: nothing is written when the weights hold.
    router.set_weight(0, &[]).await?;
    let again = support::get(&api, "accounts-weighted").await?;
    ensure!(
        again["metadata"]["resourceVersion"] == svc["metadata"]["resourceVersion"],
        "an unchanged weight was written"
    );
    ensure!(support::drained(&events).is_empty(), "no events expected");
    Ok(())
}

async fn traefik_v2_group_and_errors(ctx: TestContext) -> Result<()> {
    install(&ctx).await?;
    let v2 = services(&ctx, "traefik.containo.us");
    support::create(
        &v2,
        weighted("traefik.containo.us", "ledger-weighted", "ledger"),
    )
    .await?;
    let ro = rollout(&ctx, "ledger", "ledger-weighted").await?;
    let events = support::recorder();
    let router = TraefikRouter::new(
        support::init(&ctx, &ro, &events),
        "traefik.containo.us",
        "traefik.containo.us/v1alpha1",
    )?;
    router.set_weight(30, &[]).await?;
    let svc = support::get(&v2, "ledger-weighted").await?;
    expect_json(
        "traefik.containo.us services",
        &svc["spec"]["weighted"]["services"],
        &entries(70, 30, "ledger"),
    )?;
    verified(&router, 30).await?;

    // The default group does not have it.
    let v3 = TraefikRouter::new(
        support::init(&ctx, &ro, &events),
        DEFAULT_API_GROUP,
        DEFAULT_API_VERSION,
    )?;
    let err = v3
        .set_weight(30, &[])
        .await
        .expect_err("missing TraefikService");
    ensure!(
        err.to_string() == "traefik: TraefikService `ledger-weighted` not found",
        "{err}"
    );
    let missing = v3.verify_weight(30, &[]).await?;
    ensure!(
        matches!(&missing, WeightVerification::Mismatch { detail, .. } if detail == "TraefikService `ledger-weighted` does not exist"),
        "{missing:?}"
    );

    // A TraefikService without the canary entry: Argo's error, and nothing written.
    let api = services(&ctx, "traefik.io");
    let mut bad = weighted("traefik.io", "ledger-weighted", "ledger");
    bad["spec"]["weighted"]["services"] = json!([{"name": "ledger-stable", "port": 80}]);
    support::create(&api, bad).await?;
    let err = v3.set_weight(30, &[]).await.expect_err("no canary entry");
    ensure!(
        err.to_string() == "traefik: traefik canary service was not found",
        "{err}"
    );
    let untouched = support::get(&api, "ledger-weighted").await?;
    expect_json(
        "untouched",
        &untouched["spec"]["weighted"]["services"],
        &json!([{"name": "ledger-stable", "port": 80}]),
    )?;
    ensure!(support::drained(&events).is_empty(), "no events expected");
    Ok(())
}

/// The canary weight of `payments-weighted` (checking that the stable entry has the rest).
fn payments_weight(ctx: TestContext) -> BoxFuture<'static, Result<Option<i32>>> {
    Box::pin(async move {
        let Some(svc) = services(&ctx, "traefik.io")
            .get_opt("payments-weighted")
            .await?
        else {
            return Ok(None);
        };
        let svc = serde_json::to_value(svc)?;
        let weight = |name: &str| {
            svc["spec"]["weighted"]["services"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["name"] == name)
                .and_then(|s| weight_of(&s["weight"]))
        };
        match (weight("payments-canary"), weight("payments-stable")) {
            (None, None) => Ok(None),
            (Some(c), Some(s)) => {
                ensure!(c + s == 100, "weights do not add up: {}", svc["spec"]);
                Ok(Some(i32::try_from(c)?))
            }
            _ => bail!("one weight without the other: {}", svc["spec"]),
        }
    })
}

async fn controller_walks_a_canary_through_the_traefik_service(ctx: TestContext) -> Result<()> {
    install(&ctx).await?;
    support::controller_walks_a_canary(
        &ctx,
        "payments",
        json!({"traefik": {"weightedTraefikServiceName": "payments-weighted"}}),
        vec![weighted("traefik.io", "payments-weighted", "payments")],
        payments_weight,
    )
    .await
}
