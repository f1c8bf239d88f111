//! The `ambassador` router against the real API server: canary Mappings (our minimal CRDs, see
//! `router_crds`) created from the base Mappings, weighted through a canary's steps, a weight
//! edited behind its back, deleted some time after going back to 0 (and kept when weighted again
//! in between), the `x.getambassador.io` API and the error cases; and the real controller walking
//! a canary through them.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::{
    Test, TestContext,
    controller::{Controller, Options},
    wait,
};
use futures::future::BoxFuture;
use rollouts_api::Rollout;
use rollouts_plugin::{TrafficRouter, WeightVerification};
use rollouts_router_ambassador::{AmbassadorRouter, DEFAULT_API_VERSION, mapping_weight};
use serde_json::{Value, json};

use crate::{
    router_crds as crds,
    router_support::{self as support, expect_json},
};

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(canary_mappings_follow_the_steps_and_go_at_zero),
        e2e::test!(ambassador_mappings_group_and_errors),
        e2e::test!(controller_walks_a_canary_through_canary_mappings),
    ]
}

/// Emissary's Mapping in `getambassador.io` (v2 stored, v3alpha1 served too, without the
/// conversion webhook of the real CRD: the schemas are the same here) and AmbassadorMapping in
/// `x.getambassador.io/v3alpha1`: prefix, service, weight.
fn ambassador_crds() -> Vec<Value> {
    let spec = crds::open(json!({
        "prefix": crds::string(),
        "service": crds::string(),
        "weight": crds::integer()
    }));
    vec![
        crds::crd(
            "getambassador.io",
            "Mapping",
            "mappings",
            &["v2", "v3alpha1"],
            spec.clone(),
        ),
        crds::crd(
            "x.getambassador.io",
            "AmbassadorMapping",
            "ambassadormappings",
            &["v3alpha1"],
            spec,
        ),
    ]
}

static INSTALLED: crds::Installed = crds::Installed::const_new();

/// Installs the Ambassador CRDs (once per run) and waits until they are served.
pub(crate) async fn install(ctx: &TestContext) -> Result<()> {
    crds::install_once(&INSTALLED, ctx, "Ambassador", ambassador_crds).await
}

fn mappings(
    ctx: &TestContext,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> kube::Api<kube::api::DynamicObject> {
    support::api(ctx, group, version, kind, plural)
}

fn v2(ctx: &TestContext) -> kube::Api<kube::api::DynamicObject> {
    mappings(ctx, "getambassador.io", "v2", "Mapping", "mappings")
}

pub(crate) fn base(
    api_version: &str,
    kind: &str,
    name: &str,
    prefix: &str,
    service: &str,
) -> Value {
    json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": name, "labels": {"team": "search"}},
        "spec": {"prefix": prefix, "service": service, "timeout_ms": 3000}
    })
}

async fn rollout(ctx: &TestContext, name: &str, mappings: &[&str]) -> Result<Rollout> {
    support::stored_rollout(
        ctx,
        name,
        json!({
            "canaryService": format!("{name}-canary"),
            "stableService": format!("{name}-stable"),
            "trafficRouting": {"ambassador": {"mappings": mappings}},
            "steps": [{"setWeight": 20}, {"pause": {}}]
        }),
    )
    .await
}

async fn verified(router: &AmbassadorRouter, weight: i32) -> Result<()> {
    let got = router.verify_weight(weight, &[]).await?;
    ensure!(
        got == WeightVerification::Verified,
        "weight {weight} should verify, got {got:?}"
    );
    Ok(())
}

async fn weight_event(events: &rollouts_plugin::RecordedEvents, weight: i32) -> Result<()> {
    let got = support::drained(events);
    ensure!(
        got == [format!(
            "CanaryMappingWeightUpdate: Set canary mapping weight to {weight}"
        )],
        "events at {weight}: {got:?}"
    );
    Ok(())
}

async fn canary_mappings_follow_the_steps_and_go_at_zero(ctx: TestContext) -> Result<()> {
    install(&ctx).await?;
    let api = v2(&ctx);
    support::create(
        &api,
        base(
            "getambassador.io/v2",
            "Mapping",
            "search",
            "/search/",
            "search-stable.web:8080",
        ),
    )
    .await?;
    support::create(
        &api,
        base(
            "getambassador.io/v2",
            "Mapping",
            "search-api",
            "/api/search/",
            "search-stable:80",
        ),
    )
    .await?;
    let base_version = support::get(&api, "search").await?["metadata"]["resourceVersion"].clone();
    let ro = rollout(&ctx, "search", &["search", "search-api"]).await?;
    let uid = ro.metadata.uid.clone().context("uid")?;
    let events = support::recorder();
    let router = AmbassadorRouter::new(support::init(&ctx, &ro, &events), DEFAULT_API_VERSION)?
        .with_delete_delay(Duration::from_secs(1));

    // Weight 0 with no canary Mapping: nothing to do, and that is verified.
    router.update_hash("c1", "s1", &[]).await?;
    router.set_weight(0, &[]).await?;
    weight_event(&events, 0).await?;
    ensure!(
        api.get_opt("search-canary").await?.is_none(),
        "created at 0"
    );
    verified(&router, 0).await?;
    let missing = router.verify_weight(20, &[]).await?;
    ensure!(
        missing
            == WeightVerification::Mismatch {
                observed: Some(0),
                detail: "canary Mapping `search-canary` does not exist (want weight 20)".into()
            },
        "{missing:?}"
    );

    // The first weight creates a canary Mapping per base, controlled by the Rollout.
    router.set_weight(20, &[]).await?;
    weight_event(&events, 20).await?;
    let canary = support::get(&api, "search-canary").await?;
    expect_json(
        "canary Mapping",
        &json!({"labels": canary["metadata"]["labels"], "owners": canary["metadata"]["ownerReferences"],
                "spec": canary["spec"]}),
        &json!({
            "labels": null,
            "owners": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "search",
                        "uid": uid, "controller": true, "blockOwnerDeletion": true}],
            "spec": {"prefix": "/search/", "service": "search-canary.web:8080", "timeout_ms": 3000, "weight": 20}
        }),
    )?;
    let api_canary = support::get(&api, "search-api-canary").await?;
    ensure!(
        api_canary["spec"]["service"] == "search-canary:80" && api_canary["spec"]["weight"] == 20,
        "{}",
        api_canary["spec"]
    );
    verified(&router, 20).await?;

    // Someone annotates a canary Mapping: that stays.
    support::merge_patch(
        &api,
        "search-canary",
        json!({"metadata": {"annotations": {"note": "watched"}}}),
    )
    .await?;
    router.set_weight(60, &[]).await?;
    weight_event(&events, 60).await?;
    verified(&router, 60).await?;

    // Edited behind the router's back: seen, then repaired.
    support::merge_patch(&api, "search-api-canary", json!({"spec": {"weight": 55}})).await?;
    let tampered = router.verify_weight(60, &[]).await?;
    ensure!(
        tampered
            == WeightVerification::Mismatch {
                observed: Some(55),
                detail: "canary Mapping `search-api-canary` has weight 55, want 60".into()
            },
        "{tampered:?}"
    );
    router.set_weight(60, &[]).await?;
    verified(&router, 60).await?;
    support::drained(&events);

    // Back to 0 (an abort): weight 0 at once, verified, and the canary Mappings go shortly after.
    router.set_weight(0, &[]).await?;
    let zeroed = support::get(&api, "search-canary").await?;
    ensure!(mapping_weight(&zeroed) == 0, "{}", zeroed["spec"]);
    expect_json(
        "annotations kept",
        &zeroed["metadata"]["annotations"],
        &json!({"note": "watched"}),
    )?;
    verified(&router, 0).await?;
    wait::until(
        Duration::from_secs(20),
        "the canary Mappings to be deleted",
        || async {
            let gone = api.get_opt("search-canary").await?.is_none()
                && api.get_opt("search-api-canary").await?.is_none();
            Ok::<_, kube::Error>(gone.then_some(()))
        },
    )
    .await?;
    verified(&router, 0).await?;

    // Weighted again before the delayed deletion runs: the Mapping is kept.
    router.set_weight(30, &[]).await?;
    router.set_weight(0, &[]).await?;
    router.set_weight(30, &[]).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let kept = support::get(&api, "search-canary").await?;
    ensure!(mapping_weight(&kept) == 30, "{}", kept["spec"]);
    verified(&router, 30).await?;

    ensure!(
        support::get(&api, "search").await?["metadata"]["resourceVersion"] == base_version,
        "the base Mapping was modified"
    );
    Ok(())
}

async fn ambassador_mappings_group_and_errors(ctx: TestContext) -> Result<()> {
    install(&ctx).await?;
    let x = mappings(
        &ctx,
        "x.getambassador.io",
        "v3alpha1",
        "AmbassadorMapping",
        "ambassadormappings",
    );
    support::create(
        &x,
        base(
            "x.getambassador.io/v3alpha1",
            "AmbassadorMapping",
            "reports",
            "/reports/",
            "reports-stable",
        ),
    )
    .await?;
    let ro = rollout(&ctx, "reports", &["reports"]).await?;
    let events = support::recorder();
    let router = AmbassadorRouter::new(
        support::init(&ctx, &ro, &events),
        "x.getambassador.io/v3alpha1",
    )?;
    router.set_weight(15, &[]).await?;
    let canary = support::get(&x, "reports-canary").await?;
    ensure!(
        canary["kind"] == "AmbassadorMapping"
            && canary["spec"]["service"] == "reports-canary"
            && canary["spec"]["weight"] == 15,
        "{canary}"
    );
    verified(&router, 15).await?;
    support::drained(&events);

    // A base Mapping that sets a weight, and one that does not exist.
    let api = v2(&ctx);
    let mut weighted = base(
        "getambassador.io/v2",
        "Mapping",
        "billing",
        "/billing/",
        "billing-stable",
    );
    weighted["spec"]["weight"] = json!(10);
    support::create(&api, weighted).await?;
    let ro = rollout(&ctx, "billing", &["billing", "billing-missing"]).await?;
    let router = AmbassadorRouter::new(support::init(&ctx, &ro, &events), DEFAULT_API_VERSION)?;
    let err = router
        .set_weight(10, &[])
        .await
        .expect_err("two broken bases");
    ensure!(
        err.to_string()
            == "ambassador: 2 errors found: [Ambassador mapping \"billing\" can not define weight][Ambassador mapping \"billing-missing\" not found]",
        "{err}"
    );
    let got = support::drained(&events);
    ensure!(
        got == [
            "CanaryMappingWeightUpdate: Set canary mapping weight to 10",
            "AmbassadorMappingConfigError: Ambassador mapping \"billing\" can not define weight",
            "AmbassadorMappingNotFound: Ambassador mapping \"billing-missing\" not found",
        ],
        "{got:?}"
    );
    ensure!(
        api.get_opt("billing-canary").await?.is_none(),
        "created from a weighted base"
    );
    Ok(())
}

/// The canary weight of `catalog`: the canary Mapping's weight, 0 when there is none.
fn catalog_weight(ctx: TestContext) -> BoxFuture<'static, Result<Option<i32>>> {
    Box::pin(async move {
        let Some(canary) = v2(&ctx).get_opt("catalog-canary").await? else {
            return Ok(Some(0));
        };
        let canary = serde_json::to_value(canary)?;
        ensure!(
            canary["spec"]["service"] == "catalog-canary:80",
            "{}",
            canary["spec"]
        );
        Ok(Some(i32::try_from(mapping_weight(&canary))?))
    })
}

async fn controller_walks_a_canary_through_canary_mappings(ctx: TestContext) -> Result<()> {
    install(&ctx).await?;
    support::controller_walks_a_canary(
        &ctx,
        "catalog",
        json!({"ambassador": {"mappings": ["catalog"]}}),
        vec![base(
            "getambassador.io/v2",
            "Mapping",
            "catalog",
            "/catalog/",
            "catalog-stable:80",
        )],
        catalog_weight,
    )
    .await?;
    // The helper stops its controller as soon as weight 0 is seen, before the 5 s wait is over,
    // so the canary Mapping is still there at weight 0. A controller started again re-sends the
    // weights on first sight, and the canary Mapping goes 5 s later.
    let api = v2(&ctx);
    ensure!(
        api.get_opt("catalog-canary").await?.is_some(),
        "the canary Mapping went before its 5 s wait"
    );
    let ctl = Controller::start(&ctx, Options::default()).await?;
    wait::until(
        Duration::from_secs(40),
        "the canary Mapping to be deleted",
        || async {
            Ok::<_, kube::Error>(api.get_opt("catalog-canary").await?.is_none().then_some(()))
        },
    )
    .await
    .with_context(|| {
        format!(
            "--- controller log (last 40 lines) ---\n{}",
            ctl.log_tail(40)
        )
    })?;
    ensure!(
        api.get_opt("catalog").await?.is_some(),
        "the base Mapping went"
    );
    Ok(())
}
