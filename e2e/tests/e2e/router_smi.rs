//! The `smi` router against the real API server: it creates and patches a TrafficSplit (our
//! minimal SMI CRD, see `router_support`) as the controller would drive it through a canary's
//! steps, an experiment, a weight edited behind its back, and an abort; the real controller
//! walking a canary through it, and through an NGINX canary Ingress and a TrafficSplit together
//! (steps to the end, then an abort).

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use e2e::{
    Test, TestContext,
    controller::{Controller, Options},
    rollouts, wait,
};
use futures::future::BoxFuture;
use rollouts_api::{Rollout, WeightDestination};
use rollouts_plugin::{TrafficRouter, WeightVerification};
use rollouts_router_smi::{SmiRouter, weight_of};
use serde_json::{Value, json};

use crate::{
    router_support::{self as support, expect_json},
    router_verify::{self as verify, Target, at_weight},
};

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(split_follows_the_steps_an_experiment_and_an_abort),
        e2e::test!(v1alpha3_keeps_matches_and_refuses_a_split_it_does_not_own),
        e2e::test!(v1alpha2_writes_integer_weights),
        e2e::test!(controller_walks_a_canary_through_the_split),
        e2e::test!(controller_walks_nginx_and_smi_together_and_aborts),
    ]
}

fn splits(ctx: &TestContext, version: &str) -> kube::Api<kube::api::DynamicObject> {
    support::api(
        ctx,
        "split.smi-spec.io",
        version,
        "TrafficSplit",
        "trafficsplits",
    )
}

async fn rollout(ctx: &TestContext, smi: Value) -> Result<Rollout> {
    support::stored_rollout(
        ctx,
        "inventory",
        json!({
            "canaryService": "inventory-canary",
            "stableService": "inventory-stable",
            "trafficRouting": {"smi": smi},
            "steps": [{"setWeight": 10}, {"setWeight": 40}, {"pause": {}}]
        }),
    )
    .await
}

fn backends(canary: Value, stable: Value) -> Value {
    json!([
        {"service": "inventory-canary", "weight": canary},
        {"service": "inventory-stable", "weight": stable}
    ])
}

fn experiment(weight: i32) -> WeightDestination {
    WeightDestination {
        weight,
        service_name: Some("inventory-exp".into()),
        pod_template_hash: Some("exp123".into()),
    }
}

async fn verified(router: &SmiRouter, weight: i32, additional: &[WeightDestination]) -> Result<()> {
    let got = router.verify_weight(weight, additional).await?;
    ensure!(
        got == WeightVerification::Verified,
        "weight {weight} should verify, got {got:?}"
    );
    Ok(())
}

async fn split_follows_the_steps_an_experiment_and_an_abort(ctx: TestContext) -> Result<()> {
    support::install_smi(&ctx).await?;
    let ro = rollout(&ctx, json!({"rootService": "inventory"})).await?;
    let uid = ro
        .metadata
        .uid
        .clone()
        .context("stored rollout has a uid")?;
    let events = support::recorder();
    let router = SmiRouter::new(support::init(&ctx, &ro, &events), "v1alpha1")?;
    let api = splits(&ctx, "v1alpha1");

    // Nothing exists yet: the hash is not used by SMI, and verification says what is missing.
    router.update_hash("canary1", "stable1", &[]).await?;
    ensure!(
        api.get_opt("inventory").await?.is_none(),
        "update_hash created something"
    );
    let missing = router.verify_weight(0, &[]).await?;
    ensure!(
        missing
            == WeightVerification::Mismatch {
                observed: None,
                detail: "TrafficSplit `inventory` does not exist".into()
            },
        "{missing:?}"
    );

    // The first set_weight creates the split, controlled by the Rollout.
    router.set_weight(0, &[]).await?;
    let split = support::get(&api, "inventory").await?;
    expect_json(
        "owner",
        &split["metadata"]["ownerReferences"],
        &json!([{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "inventory",
                 "uid": uid, "controller": true, "blockOwnerDeletion": true}]),
    )?;
    expect_json(
        "created spec",
        &split["spec"],
        &json!({"service": "inventory", "backends": backends(json!("0"), json!("100"))}),
    )?;
    ensure!(
        support::drained(&events) == ["TrafficSplitCreated: TrafficSplit `inventory` created"],
        "events"
    );
    verified(&router, 0, &[]).await?;

    // Someone labels and annotates the split: those fields are theirs.
    support::merge_patch(
        &api,
        "inventory",
        json!({"metadata": {"labels": {"team": "shop"}, "annotations": {"note": "mesh-owned"}}}),
    )
    .await?;

    for weight in [10, 40] {
        router.update_hash("canary1", "stable1", &[]).await?;
        router.set_weight(weight, &[]).await?;
        let split = support::get(&api, "inventory").await?;
        expect_json(
            &format!("backends at {weight}"),
            &split["spec"]["backends"],
            &backends(json!(weight.to_string()), json!((100 - weight).to_string())),
        )?;
        verified(&router, weight, &[]).await?;
    }

    // An experiment step takes 10% next to the canary.
    router.set_weight(40, &[experiment(10)]).await?;
    let split = support::get(&api, "inventory").await?;
    expect_json(
        "backends with an experiment",
        &split["spec"]["backends"],
        &json!([
            {"service": "inventory-canary", "weight": "40"},
            {"service": "inventory-exp", "weight": "10"},
            {"service": "inventory-stable", "weight": "50"}
        ]),
    )?;
    verified(&router, 40, &[experiment(10)]).await?;
    ensure!(
        router.verify_weight(40, &[]).await? != WeightVerification::Verified,
        "the experiment's share must not verify as a plain 40"
    );
    router.set_weight(40, &[]).await?;

    // Edited behind the router's back: verification sees the stored weight, set_weight repairs.
    support::merge_patch(
        &api,
        "inventory",
        json!({"spec": {"backends": backends(json!("55"), json!("45"))}}),
    )
    .await?;
    let tampered = router.verify_weight(40, &[]).await?;
    ensure!(
        matches!(
            tampered,
            WeightVerification::Mismatch {
                observed: Some(55),
                ..
            }
        ),
        "{tampered:?}"
    );
    router.set_weight(40, &[]).await?;
    verified(&router, 40, &[]).await?;

    // The end of the steps, then an abort back to 0.
    for weight in [100, 0] {
        router.set_weight(weight, &[]).await?;
        verified(&router, weight, &[]).await?;
    }
    let split = support::get(&api, "inventory").await?;
    expect_json(
        "after the abort",
        &split["spec"],
        &json!({"service": "inventory", "backends": backends(json!("0"), json!("100"))}),
    )?;
    expect_json(
        "user labels",
        &split["metadata"]["labels"],
        &json!({"team": "shop"}),
    )?;
    expect_json(
        "user annotations",
        &split["metadata"]["annotations"],
        &json!({"note": "mesh-owned"}),
    )?;

    // Idempotent: nothing is written when the split already holds the weight.
    let version = split["metadata"]["resourceVersion"].clone();
    router.set_weight(0, &[]).await?;
    let again = support::get(&api, "inventory").await?;
    ensure!(
        again["metadata"]["resourceVersion"] == version,
        "an unchanged weight was written"
    );
    ensure!(
        support::drained(&events).is_empty(),
        "patches emit no events"
    );
    Ok(())
}

async fn v1alpha3_keeps_matches_and_refuses_a_split_it_does_not_own(
    ctx: TestContext,
) -> Result<()> {
    support::install_smi(&ctx).await?;
    let ro = rollout(&ctx, json!({"trafficSplitName": "inventory-split"})).await?;
    let uid = ro.metadata.uid.clone().context("uid")?;
    let events = support::recorder();
    let router = SmiRouter::new(support::init(&ctx, &ro, &events), "v1alpha3")?;
    let api = splits(&ctx, "v1alpha3");
    let foreign = json!({
        "apiVersion": "split.smi-spec.io/v1alpha3", "kind": "TrafficSplit",
        "metadata": {"name": "inventory-split"},
        "spec": {
            "service": "inventory-stable",
            "matches": [{"kind": "HTTPRouteGroup", "name": "api-routes"}],
            "backends": [{"service": "inventory-stable", "weight": 100}]
        }
    });
    support::create(&api, foreign).await?;
    let err = router
        .set_weight(20, &[])
        .await
        .expect_err("a split the Rollout does not control must be refused");
    ensure!(
        err.to_string() == "smi: Rollout does not own TrafficSplit `inventory-split`",
        "{err}"
    );
    let untouched = support::get(&api, "inventory-split").await?;
    expect_json(
        "refused split",
        &untouched["spec"]["backends"],
        &json!([{"service": "inventory-stable", "weight": 100}]),
    )?;

    // Once it is the Rollout's, only service and backends change; matches stay.
    support::merge_patch(
        &api,
        "inventory-split",
        json!({"metadata": {"ownerReferences": [{
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "inventory",
            "uid": uid, "controller": true
        }]}}),
    )
    .await?;
    router.set_weight(20, &[]).await?;
    let split = support::get(&api, "inventory-split").await?;
    expect_json(
        "v1alpha3 spec",
        &split["spec"],
        &json!({
            "service": "inventory-stable",
            "matches": [{"kind": "HTTPRouteGroup", "name": "api-routes"}],
            "backends": backends(json!(20), json!(80))
        }),
    )?;
    verified(&router, 20, &[]).await?;
    ensure!(support::drained(&events).is_empty(), "no creation event");
    Ok(())
}

async fn v1alpha2_writes_integer_weights(ctx: TestContext) -> Result<()> {
    support::install_smi(&ctx).await?;
    let ro = rollout(&ctx, json!({})).await?;
    let events = support::recorder();
    let router = SmiRouter::new(support::init(&ctx, &ro, &events), "v1alpha2")?;
    router.set_weight(10, &[experiment(5)]).await?;
    let split = support::get(&splits(&ctx, "v1alpha2"), "inventory").await?;
    ensure!(
        split["apiVersion"] == "split.smi-spec.io/v1alpha2",
        "{}",
        split["apiVersion"]
    );
    expect_json(
        "v1alpha2 spec",
        &split["spec"],
        &json!({"service": "inventory-stable", "backends": [
            {"service": "inventory-canary", "weight": 10},
            {"service": "inventory-exp", "weight": 5},
            {"service": "inventory-stable", "weight": 85}
        ]}),
    )?;
    verified(&router, 10, &[experiment(5)]).await?;
    ensure!(
        support::drained(&events) == ["TrafficSplitCreated: TrafficSplit `inventory` created"],
        "events"
    );
    Ok(())
}

/// The canary weight of the `ledger` split (checking that the stable backend has the rest).
fn ledger_weight(ctx: TestContext) -> BoxFuture<'static, Result<Option<i32>>> {
    Box::pin(async move {
        let Some(split) = splits(&ctx, "v1alpha1").get_opt("ledger").await? else {
            return Ok(None);
        };
        let split = serde_json::to_value(split)?;
        let weight = |service: &str| {
            split["spec"]["backends"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|b| b["service"] == service)
                .and_then(|b| weight_of(&b["weight"]))
        };
        let (Some(canary), Some(stable)) = (weight("ledger-canary"), weight("ledger-stable"))
        else {
            bail!("split without both backends: {}", split["spec"]);
        };
        ensure!(
            canary + stable == 100,
            "weights do not add up: {}",
            split["spec"]
        );
        ensure!(
            split["spec"]["service"] == "ledger",
            "root service {}",
            split["spec"]
        );
        Ok(Some(i32::try_from(canary)?))
    })
}

async fn controller_walks_a_canary_through_the_split(ctx: TestContext) -> Result<()> {
    support::install_smi(&ctx).await?;
    support::controller_walks_a_canary(
        &ctx,
        "ledger",
        json!({"smi": {"rootService": "ledger"}}),
        Vec::new(),
        ledger_weight,
    )
    .await
}

/// Waits until both the canary Ingress and the TrafficSplit hold canary weight `weight`.
async fn both_at(ctx: &TestContext, routers: &[Target; 2], weight: i32, when: &str) -> Result<()> {
    let seen = std::sync::Mutex::new(Vec::new());
    wait::until(
        Duration::from_secs(60),
        &format!("both routers at weight {weight} {when}"),
        || async {
            let mut got = Vec::new();
            for r in routers {
                got.push(r.read(ctx).await?);
            }
            let ok = got.iter().all(|w| *w == Some(weight));
            *seen.lock().unwrap_or_else(|p| p.into_inner()) = got;
            Ok::<_, anyhow::Error>(ok.then_some(()))
        },
    )
    .await
    .with_context(|| {
        format!(
            "last read (nginx, smi): {:?}",
            seen.lock().unwrap_or_else(|p| p.into_inner())
        )
    })
}

/// One Rollout with both an `nginx` and an `smi` block: the real controller moves the canary
/// Ingress and the TrafficSplit together through `setWeight: 20`, a pause, `setWeight: 60`, a
/// pause, to the end (0 again), checking both objects and the verified status at each step;
/// then a third revision is aborted at its first pause: both weights go back to 0, and the
/// API server's history shows both written before the aborted canary ReplicaSet is scaled down.
async fn controller_walks_nginx_and_smi_together_and_aborts(ctx: TestContext) -> Result<()> {
    support::install_smi(&ctx).await?;
    ctx.install_crds().await?;
    let name = "basket";
    let routers = [verify::nginx_target(name), verify::smi_target(name)];
    let ctl = Controller::start(&ctx, Options::default()).await?;
    let result = async {
        let step = Duration::from_secs(60);
        rollouts::apply(&ctx, rollouts::service("basket-stable", name)).await?;
        rollouts::apply(&ctx, rollouts::service("basket-canary", name)).await?;
        rollouts::apply(&ctx, crate::router_nginx::stable_ingress(name)).await?;
        rollouts::apply(
            &ctx,
            rollouts::canary_rollout(
                name,
                2,
                "registry.invalid/app:1",
                json!({
                    "stableService": "basket-stable", "canaryService": "basket-canary",
                    "abortScaleDownDelaySeconds": 1,
                    "trafficRouting": {"nginx": {"stableIngress": name}, "smi": {"rootService": name}},
                    "steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]
                }),
            ),
        )
        .await?;
        let first = rollouts::wait_for(&ctx, name, step, "the initial deploy", rollouts::healthy).await?;
        both_at(&ctx, &routers, 0, "after the initial deploy").await?;
        let v1 = first["status"]["stableRS"].clone();

        rollouts::set_image(&ctx, name, "registry.invalid/app:2").await?;
        rollouts::wait_for(&ctx, name, step, "the pause at 20", |r| {
            rollouts::paused_at(r, 1) && at_weight(r, 20)
        })
        .await?;
        both_at(&ctx, &routers, 20, "at the first pause").await?;
        rollouts::promote(&ctx, name).await?;
        rollouts::wait_for(&ctx, name, step, "the pause at 60", |r| {
            rollouts::paused_at(r, 3) && at_weight(r, 60)
        })
        .await?;
        both_at(&ctx, &routers, 60, "at the second pause").await?;
        rollouts::promote(&ctx, name).await?;
        rollouts::wait_for(&ctx, name, step, "Healthy on revision 2", |r| {
            rollouts::healthy(r) && r["status"]["stableRS"] != v1 && at_weight(r, 0)
        })
        .await?;
        both_at(&ctx, &routers, 0, "once revision 2 is stable").await?;

        // Revision 3, aborted at its first pause.
        rollouts::set_image(&ctx, name, "registry.invalid/app:3").await?;
        let paused = rollouts::wait_for(&ctx, name, step, "revision 3 at 20", |r| {
            rollouts::paused_at(r, 1) && at_weight(r, 20)
        })
        .await?;
        both_at(&ctx, &routers, 20, "at revision 3's pause").await?;
        let since = verify::resource_version(&paused)?;
        let canary_rs = format!(
            "{name}-{}",
            paused["status"]["currentPodHash"].as_str().context("currentPodHash")?
        );
        rollouts::abort(&ctx, name).await?;
        let replica_sets = support::api(&ctx, "apps", "v1", "ReplicaSet", "replicasets");
        wait::until(step, "the aborted canary to be scaled down", || async {
            let rs = support::get(&replica_sets, &canary_rs).await?;
            Ok::<_, anyhow::Error>((rs["spec"]["replicas"] == 0).then_some(()))
        })
        .await?;
        both_at(&ctx, &routers, 0, "after the abort").await?;

        let scaled = verify::history(&replica_sets, &canary_rs, since, |rs| rs["spec"]["replicas"] == 0)
            .await?
            .last()
            .map(|(rv, _)| *rv)
            .context("no scale-down in the history")?;
        for router in &routers {
            let changes = verify::history(&router.api(&ctx), &router.object, since, |o| {
                router.weight_in(o).ok().flatten() == Some(0)
            })
            .await?;
            let zero = changes.last().map(|(rv, _)| *rv).context("no weight 0")?;
            ensure!(
                zero < scaled,
                "{} went back to 0 (at {zero}) only after the canary was scaled down (at {scaled})",
                router.object
            );
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    result.with_context(|| {
        format!(
            "--- controller log (last 60 lines) ---\n{}",
            ctl.log_tail(60)
        )
    })
}
