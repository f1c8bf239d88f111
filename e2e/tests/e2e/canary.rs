//! The canary strategy without traffic routing, driven by our `rollouts-controller` binary:
//! every step (an indefinite pause released by a promotion, timed pauses that end by
//! themselves), abort and retry, full promotion, a fast rollback to the stable revision,
//! `restartAt`, a scale change mid-rollout, and invalid Rollouts next to a valid one.
//!
//! Each test starts its own controller (confined to the test's namespace) and checks at each
//! step the ReplicaSet sizes, the Service selectors, the status (phase, currentStepIndex,
//! stableRS, currentPodHash, conditions) and the Events.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail, ensure};
use e2e::{
    Test, TestContext,
    controller::{Controller, Options},
    rollouts::{self as ro, in_order},
    wait,
};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(basic_canary_walks_every_step),
        e2e::test!(abort_then_retry),
        e2e::test!(promote_full_skips_the_remaining_steps),
        e2e::test!(going_back_to_the_stable_revision_is_a_fast_rollback),
        e2e::test!(restart_at_evicts_the_older_pods),
        e2e::test!(scaling_mid_rollout_never_advances_a_step),
        e2e::test!(invalid_rollouts_do_not_stop_a_valid_one),
        e2e::test!(workload_ref_to_a_deployment),
        e2e::test!(ephemeral_metadata_follows_the_role_of_each_pod),
    ]
}

const T: Duration = Duration::from_secs(60);

/// Runs `body`; on failure appends the end of the controller's log.
pub async fn with_log<T>(ctl: &Controller, body: impl Future<Output = Result<T>>) -> Result<T> {
    body.await.map_err(|e| {
        anyhow!(
            "{e:#}\n--- controller log (last 60 lines) ---\n{}",
            ctl.log_tail(60)
        )
    })
}

/// Starts a controller, creates `web-stable`/`web-canary` Services and a canary Rollout
/// `web` with `steps`, and waits until it is Healthy. Returns the controller and the stable
/// pod-template hash.
pub async fn healthy_canary(
    ctx: &TestContext,
    replicas: i32,
    steps: Value,
) -> Result<(Controller, String)> {
    ctx.install_crds().await?;
    let ctl = Controller::start(ctx, Options::default()).await?;
    let hash = with_log(&ctl, async {
        ro::apply(ctx, ro::service("web-stable", "web")).await?;
        ro::apply(ctx, ro::service("web-canary", "web")).await?;
        ro::apply(
            ctx,
            ro::canary_rollout(
                "web",
                replicas,
                "registry.invalid/web:1",
                json!({"stableService": "web-stable", "canaryService": "web-canary", "steps": steps}),
            ),
        )
        .await?;
        let r = ro::wait_for(ctx, "web", T, "the initial deploy to be Healthy", ro::healthy).await?;
        let hash = r["status"]["stableRS"].as_str().unwrap_or_default().to_string();
        ro::wait_sizes(ctx, &[(&hash, replicas)], T).await?;
        ensure!(
            ro::selector_hash(ctx, "web-stable").await?.as_deref() == Some(hash.as_str()),
            "the stable Service does not select the first revision"
        );
        Ok(hash)
    })
    .await?;
    Ok((ctl, hash))
}

/// Sets the image and waits until the new revision's ReplicaSet exists; returns its hash
/// and how long that took.
async fn update(ctx: &TestContext, image: &str) -> Result<(String, Duration)> {
    let before: Vec<String> = ro::replica_sets(ctx)
        .await?
        .into_iter()
        .map(|r| r.hash)
        .collect();
    let start = Instant::now();
    ro::set_image(ctx, "web", image).await?;
    let hash = wait::until(T, "the canary ReplicaSet", || async {
        let sets = ro::replica_sets(ctx).await?;
        Ok::<_, anyhow::Error>(
            sets.into_iter()
                .find(|r| !before.contains(&r.hash))
                .map(|r| r.hash),
        )
    })
    .await?;
    Ok((hash, start.elapsed()))
}

fn pause_reason(r: &Value) -> Option<&str> {
    r["status"]["pauseConditions"][0]["reason"].as_str()
}

async fn basic_canary_walks_every_step(ctx: TestContext) -> Result<()> {
    let steps = json!([
        {"setWeight": 20}, {"pause": {}},
        {"setWeight": 40}, {"pause": {"duration": 3}},
        {"setWeight": 60}, {"pause": {"duration": "3s"}},
        {"setWeight": 80}, {"pause": {"duration": 3}}
    ]);
    let (ctl, v1) = healthy_canary(&ctx, 5, steps).await?;
    with_log(&ctl, async {
        let initial = ro::get(&ctx, "web").await?;
        ensure!(ro::step(&initial) == 8, "initial deploy: step {}", ro::step(&initial));
        ensure!(
            ro::condition(&initial, "Progressing").map(|c| c.1).as_deref()
                == Some("NewReplicaSetAvailable"),
            "initial deploy: {}",
            ro::summary(&initial)
        );
        ensure!(
            ro::condition(&initial, "Available").map(|c| c.0).as_deref() == Some("True"),
            "initial deploy: {}",
            ro::summary(&initial)
        );

        let (v2, latency) = update(&ctx, "registry.invalid/web:2").await?;
        eprintln!(
            "e2e-measure: image change -> canary ReplicaSet created: {} ms",
            latency.as_millis()
        );

        // Step 0 (setWeight 20) then the indefinite pause at step 1.
        let r = ro::wait_for(&ctx, "web", T, "the pause at step 1", |r| ro::paused_at(r, 1)).await?;
        ensure!(pause_reason(&r) == Some("CanaryPauseStep"), "{}", ro::summary(&r));
        ensure!(r["status"]["stableRS"] == v1.as_str(), "{}", ro::summary(&r));
        ensure!(r["status"]["currentPodHash"] == v2.as_str(), "{}", ro::summary(&r));
        ensure!(r["status"]["canary"]["weights"].is_null(), "no traffic routing, no weights");
        ro::wait_sizes(&ctx, &[(&v1, 4), (&v2, 1)], T).await?;
        ensure!(ro::selector_hash(&ctx, "web-stable").await?.as_deref() == Some(v1.as_str()));
        ensure!(ro::selector_hash(&ctx, "web-canary").await?.as_deref() == Some(v2.as_str()));
        let reasons = ro::event_reasons(&ctx, "web").await?;
        in_order(
            &reasons,
            &[
                "RolloutUpdated",
                "NewReplicaSetCreated",
                "RolloutNotCompleted",
                "ScalingReplicaSet",
                "RolloutStepCompleted",
                "RolloutPaused",
            ],
        )?;

        // An indefinite pause stays.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let r = ro::get(&ctx, "web").await?;
        ensure!(ro::paused_at(&r, 1), "the indefinite pause ended by itself: {}", ro::summary(&r));

        // Promotion: 40 %, then the timed pause at step 3 ends by itself.
        ro::promote(&ctx, "web").await?;
        let r = ro::wait_for(&ctx, "web", T, "the pause at step 3", |r| ro::paused_at(r, 3)).await?;
        let started = Instant::now();
        ensure!(pause_reason(&r) == Some("CanaryPauseStep"));
        ro::wait_sizes(&ctx, &[(&v1, 3), (&v2, 2)], T).await?;
        let r = ro::wait_for(&ctx, "web", T, "the pause at step 5", |r| ro::paused_at(r, 5)).await?;
        let waited = started.elapsed();
        ensure!(
            waited >= Duration::from_millis(2000) && waited <= Duration::from_secs(9),
            "the 3 s pause lasted {waited:?}"
        );
        eprintln!("e2e-measure: a 3 s pause step ended after {} ms (observed)", waited.as_millis());
        ensure!(r["status"]["stableRS"] == v1.as_str());
        ro::wait_sizes(&ctx, &[(&v1, 2), (&v2, 3)], T).await?;
        ro::wait_for(&ctx, "web", T, "the pause at step 7", |r| ro::paused_at(r, 7)).await?;
        ro::wait_sizes(&ctx, &[(&v1, 1), (&v2, 4)], T).await?;

        // The last pause ends: fully promoted.
        let r = ro::wait_for(&ctx, "web", T, "Healthy on the new revision", |r| {
            ro::healthy(r) && r["status"]["stableRS"] == v2.as_str()
        })
        .await?;
        ensure!(ro::step(&r) == 8, "{}", ro::summary(&r));
        ensure!(r["status"]["pauseConditions"].is_null(), "{}", ro::summary(&r));
        ensure!(
            ro::condition(&r, "Progressing").map(|c| c.1).as_deref() == Some("NewReplicaSetAvailable"),
            "{}",
            ro::summary(&r)
        );
        ro::wait_sizes(&ctx, &[(&v2, 5)], T).await?;
        ensure!(ro::selector_hash(&ctx, "web-stable").await?.as_deref() == Some(v2.as_str()));
        ensure!(ro::selector_hash(&ctx, "web-canary").await?.as_deref() == Some(v2.as_str()));

        let events = ro::events(&ctx, "web").await?;
        let completed: Vec<&str> = events
            .iter()
            .filter(|e| e.0 == "RolloutStepCompleted")
            .map(|e| e.1.as_str())
            .collect();
        let expected: Vec<String> = [
            "setWeight: 20",
            "pause",
            "setWeight: 40",
            "pause: 3",
            "setWeight: 60",
            "pause: 3s",
            "setWeight: 80",
            "pause: 3",
        ]
        .iter()
        .enumerate()
        .map(|(i, s)| format!("Rollout step {}/8 completed ({s})", i + 1))
        .collect();
        ensure!(
            completed == expected,
            "step events: {completed:#?}\nexpected: {expected:#?}"
        );
        let reasons: Vec<String> = events.iter().map(|e| e.0.clone()).collect();
        in_order(
            &reasons,
            &["RolloutPaused", "RolloutResumed", "RolloutCompleted", "SwitchService"],
        )?;
        ensure!(
            events.iter().any(|e| e.0 == "RolloutCompleted"
                && e.1.contains(&format!("({v2}): Completed all 8 canary steps"))),
            "no completion event for revision 2: {events:#?}"
        );

        // The metrics show the rollout.
        let metrics = ctl.metrics().await?;
        let info = format!(
            "rollout_info{{name=\"web\",namespace=\"{}\",phase=\"Completed\",strategy=\"canary\",traffic_router=\"\"}} 1",
            ctx.namespace
        );
        ensure!(metrics.contains(&info), "{info} not in /metrics:\n{metrics}");
        ensure!(
            metrics.contains(&format!(
                "rollout_info_replicas_available{{name=\"web\",namespace=\"{}\"}} 5",
                ctx.namespace
            )),
            "replica gauges missing:\n{metrics}"
        );
        ensure!(
            metrics.contains("rollout_reconcile_count{name=\"web\""),
            "no reconcile histogram:\n{metrics}"
        );
        ensure!(
            metrics.contains("rollout_events_total{name=\"web\"")
                && metrics.contains("reason=\"RolloutStepCompleted\""),
            "no event counters:\n{metrics}"
        );
        ensure!(
            metrics.contains("controller_clientset_k8s_request_total{kind=\"replicasets\""),
            "no request counters:\n{metrics}"
        );
        if let Some(rss) = ctl.rss_bytes() {
            eprintln!("e2e-measure: controller resident memory {:.1} MiB", rss as f64 / 1048576.0);
        }
        Ok(())
    })
    .await
}

async fn abort_then_retry(ctx: TestContext) -> Result<()> {
    let (ctl, v1) = healthy_canary(&ctx, 5, json!([{"setWeight": 40}, {"pause": {}}])).await?;
    with_log(&ctl, async {
        let (v2, _) = update(&ctx, "registry.invalid/web:2").await?;
        ro::wait_for(&ctx, "web", T, "the pause at step 1", |r| {
            ro::paused_at(r, 1)
        })
        .await?;
        ro::wait_sizes(&ctx, &[(&v1, 3), (&v2, 2)], T).await?;

        ro::abort(&ctx, "web").await?;
        let r = ro::wait_for(&ctx, "web", T, "the abort", |r| {
            ro::phase(r) == "Degraded" && r["status"]["abort"] == true
        })
        .await?;
        let progressing = ro::condition(&r, "Progressing").context("no Progressing condition")?;
        ensure!(
            (progressing.0.as_str(), progressing.1.as_str()) == ("False", "RolloutAborted"),
            "{}",
            ro::summary(&r)
        );
        ensure!(!r["status"]["abortedAt"].is_null(), "{}", ro::summary(&r));
        ensure!(
            r["status"]["pauseConditions"].is_null(),
            "{}",
            ro::summary(&r)
        );
        ensure!(
            r["status"]["stableRS"] == v1.as_str() && r["status"]["currentPodHash"] == v2.as_str()
        );
        ro::wait_sizes(&ctx, &[(&v1, 5)], T).await?;
        let r = ro::wait_for(&ctx, "web", T, "step 0 after the abort", |r| {
            ro::step(r) == 0
        })
        .await?;
        ensure!(ro::phase(&r) == "Degraded", "{}", ro::summary(&r));
        ensure!(ro::selector_hash(&ctx, "web-canary").await?.as_deref() == Some(v1.as_str()));
        ensure!(ro::selector_hash(&ctx, "web-stable").await?.as_deref() == Some(v1.as_str()));
        ro::wait_event(
            &ctx,
            "web",
            "RolloutAborted",
            "Rollout aborted update to revision 2",
            T,
        )
        .await?;

        ro::retry(&ctx, "web").await?;
        let r = ro::wait_for(&ctx, "web", T, "the pause at step 1 after the retry", |r| {
            ro::paused_at(r, 1) && r["status"]["abort"] != true
        })
        .await?;
        ensure!(r["status"]["abortedAt"].is_null(), "{}", ro::summary(&r));
        ro::wait_sizes(&ctx, &[(&v1, 3), (&v2, 2)], T).await?;
        ro::promote(&ctx, "web").await?;
        ro::wait_for(&ctx, "web", T, "Healthy on revision 2", |r| {
            ro::healthy(r) && r["status"]["stableRS"] == v2.as_str()
        })
        .await?;
        ro::wait_sizes(&ctx, &[(&v2, 5)], T).await?;
        let events = ro::events(&ctx, "web").await?;
        let reasons: Vec<String> = events.iter().map(|e| e.0.clone()).collect();
        in_order(
            &reasons,
            &[
                "RolloutPaused",
                "RolloutAborted",
                "RolloutStepCompleted",
                "RolloutCompleted",
            ],
        )?;
        // The second pause repeats the first event (same reason and message): like client-go,
        // the recorder counts it on the first one.
        let paused: i32 = events
            .iter()
            .filter(|e| e.0 == "RolloutPaused")
            .map(|e| e.2)
            .sum();
        ensure!(paused == 2, "paused {paused} times: {events:#?}");
        let step1: i32 = events
            .iter()
            .filter(|e| e.1 == "Rollout step 1/2 completed (setWeight: 40)")
            .map(|e| e.2)
            .sum();
        ensure!(
            step1 == 2,
            "step 1 completed {step1} times (before and after the retry)"
        );
        Ok(())
    })
    .await
}

async fn promote_full_skips_the_remaining_steps(ctx: TestContext) -> Result<()> {
    let steps = json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]);
    let (ctl, v1) = healthy_canary(&ctx, 5, steps).await?;
    with_log(&ctl, async {
        let (v2, _) = update(&ctx, "registry.invalid/web:2").await?;
        ro::wait_for(&ctx, "web", T, "the pause at step 1", |r| {
            ro::paused_at(r, 1)
        })
        .await?;
        ro::wait_sizes(&ctx, &[(&v1, 4), (&v2, 1)], T).await?;
        ro::promote_full(&ctx, "web").await?;
        let r = ro::wait_for(&ctx, "web", T, "Healthy on revision 2", |r| {
            ro::healthy(r) && r["status"]["stableRS"] == v2.as_str()
        })
        .await?;
        ensure!(
            r["status"]["promoteFull"].is_null(),
            "promoteFull stays: {}",
            ro::summary(&r)
        );
        ro::wait_sizes(&ctx, &[(&v2, 5)], T).await?;
        let events = ro::events(&ctx, "web").await?;
        let paused = events
            .iter()
            .filter(|e| e.0 == "RolloutPaused")
            .map(|e| e.2)
            .sum::<i32>();
        ensure!(
            paused == 1,
            "the rollout paused {paused} times: {events:#?}"
        );
        ensure!(
            !events.iter().any(|e| e.1.contains("step 3/4")),
            "the second pause was reached: {events:#?}"
        );
        Ok(())
    })
    .await
}

async fn going_back_to_the_stable_revision_is_a_fast_rollback(ctx: TestContext) -> Result<()> {
    let steps = json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]);
    let (ctl, v1) = healthy_canary(&ctx, 5, steps).await?;
    with_log(&ctl, async {
        let (v2, _) = update(&ctx, "registry.invalid/web:2").await?;
        ro::wait_for(&ctx, "web", T, "the pause at step 1", |r| {
            ro::paused_at(r, 1)
        })
        .await?;
        ro::wait_sizes(&ctx, &[(&v1, 4), (&v2, 1)], T).await?;

        // `kubectl argo rollouts undo web`: back to revision 1's template.
        ro::undo(&ctx, "web", 1).await?;
        let r = ro::wait_for(&ctx, "web", T, "Healthy on revision 1 again", |r| {
            ro::healthy(r) && r["status"]["currentPodHash"] == v1.as_str()
        })
        .await?;
        ensure!(
            r["status"]["stableRS"] == v1.as_str(),
            "{}",
            ro::summary(&r)
        );
        ensure!(
            ro::step(&r) == 4,
            "the steps were not skipped: {}",
            ro::summary(&r)
        );
        ro::wait_sizes(&ctx, &[(&v1, 5)], T).await?;
        let sets = ro::replica_sets(&ctx).await?;
        let old = sets
            .iter()
            .find(|s| s.hash == v1)
            .context("revision 1 is gone")?;
        ensure!(
            old.revision == 3,
            "the reused ReplicaSet has revision {}",
            old.revision
        );
        ensure!(sets.len() == 2, "a new ReplicaSet was created: {sets:?}");
        ro::wait_event(
            &ctx,
            "web",
            "SkipSteps",
            "Rollback to stable ReplicaSets",
            T,
        )
        .await?;
        let events = ro::events(&ctx, "web").await?;
        let paused = events
            .iter()
            .filter(|e| e.0 == "RolloutPaused")
            .map(|e| e.2)
            .sum::<i32>();
        ensure!(paused == 1, "the rollback paused: {events:#?}");
        ensure!(ro::selector_hash(&ctx, "web-canary").await?.as_deref() == Some(v1.as_str()));
        Ok(())
    })
    .await
}

async fn restart_at_evicts_the_older_pods(ctx: TestContext) -> Result<()> {
    let (ctl, v1) = healthy_canary(&ctx, 3, json!([{"setWeight": 50}, {"pause": {}}])).await?;
    with_log(&ctl, async {
        let before: Vec<String> = ro::live_pods(&ctx, "web")
            .await?
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        ensure!(before.len() == 3, "pods before the restart: {before:?}");
        // Creation times have whole seconds: make sure the restart time is after them.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let restart_at = Timestamp::from_second(Timestamp::now().as_second())?.to_string();
        ro::patch(&ctx, "web", json!({"spec": {"restartAt": restart_at}})).await?;
        let r = ro::wait_for(&ctx, "web", T, "status.restartedAt", |r| {
            r["status"]["restartedAt"] == restart_at.as_str()
        })
        .await?;
        ensure!(r["status"]["stableRS"] == v1.as_str());
        let after = wait::until(T, "three new pods, none of the old ones", || async {
            let pods = ro::live_pods(&ctx, "web").await?;
            let names: Vec<String> = pods
                .iter()
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            let fresh = names.len() == 3 && names.iter().all(|n| !before.contains(n));
            Ok::<_, anyhow::Error>(fresh.then_some(names))
        })
        .await?;
        ensure!(after.iter().all(|n| n.starts_with(&format!("web-{v1}-"))));
        ro::wait_for(&ctx, "web", T, "Healthy after the restart", ro::healthy).await?;
        ro::wait_sizes(&ctx, &[(&v1, 3)], T).await?;
        Ok(())
    })
    .await
}

async fn scaling_mid_rollout_never_advances_a_step(ctx: TestContext) -> Result<()> {
    let steps = json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]);
    let (ctl, v1) = healthy_canary(&ctx, 5, steps).await?;
    with_log(&ctl, async {
        let (v2, _) = update(&ctx, "registry.invalid/web:2").await?;
        ro::wait_for(&ctx, "web", T, "the pause at step 1", |r| {
            ro::paused_at(r, 1)
        })
        .await?;
        ro::wait_sizes(&ctx, &[(&v1, 4), (&v2, 1)], T).await?;

        // What an HPA does: the scale subresource.
        ro::rollouts(&ctx)
            .patch_scale(
                "web",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"spec": {"replicas": 10}})),
            )
            .await
            .context("scaling through the scale subresource")?;
        ro::wait_sizes(&ctx, &[(&v1, 8), (&v2, 2)], T).await?;
        let r = ro::wait_for(&ctx, "web", T, "HPAReplicas 10", |r| {
            r["status"]["HPAReplicas"] == 10
        })
        .await?;
        ensure!(
            ro::paused_at(&r, 1),
            "the scale moved the rollout: {}",
            ro::summary(&r)
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        let r = ro::get(&ctx, "web").await?;
        ensure!(
            ro::paused_at(&r, 1),
            "the scale moved the rollout: {}",
            ro::summary(&r)
        );
        ensure!(
            r["status"]["selector"] == "app=web",
            "{}",
            r["status"]["selector"]
        );
        let events = ro::events(&ctx, "web").await?;
        ensure!(
            events
                .iter()
                .filter(|e| e.0 == "RolloutStepCompleted")
                .count()
                == 1,
            "a step completed during the scale: {events:#?}"
        );

        ro::promote(&ctx, "web").await?;
        ro::wait_for(&ctx, "web", T, "the pause at step 3", |r| {
            ro::paused_at(r, 3)
        })
        .await?;
        ro::wait_sizes(&ctx, &[(&v1, 5), (&v2, 5)], T).await?;
        Ok(())
    })
    .await
}

async fn invalid_rollouts_do_not_stop_a_valid_one(ctx: TestContext) -> Result<()> {
    ctx.install_crds().await?;
    let ctl = Controller::start(&ctx, Options::default()).await?;
    with_log(&ctl, async {
        // Valid for the API server, but not a 32-bit number: it cannot be decoded.
        let mut undecodable = ro::canary_rollout("undecodable", 1, "registry.invalid/x:1", json!({"steps": [{"setWeight": 50}]}));
        undecodable["spec"]["progressDeadlineSeconds"] = json!(3_000_000_000u64);
        ro::apply(&ctx, undecodable).await?;
        // Decodes, but the engine's validation rejects the weight.
        let bad_weight =
            ro::canary_rollout("bad-weight", 1, "registry.invalid/x:1", json!({"steps": [{"setWeight": 200}]}));
        ro::apply(&ctx, bad_weight).await?;
        // A router this build does not contain (a plugin name no crate registers).
        let no_router = ro::canary_rollout(
            "no-router",
            1,
            "registry.invalid/x:1",
            json!({"canaryService": "x-canary", "stableService": "x-stable",
                   "trafficRouting": {"plugins": {"example.com/not-built": {"route": "primary"}}},
                   "steps": [{"setWeight": 50}]}),
        );
        ro::apply(&ctx, ro::service("x-canary", "no-router")).await?;
        ro::apply(&ctx, ro::service("x-stable", "no-router")).await?;
        ro::apply(&ctx, no_router).await?;
        ro::apply(&ctx, ro::service("web-stable", "web")).await?;
        ro::apply(
            &ctx,
            ro::canary_rollout(
                "web",
                2,
                "registry.invalid/web:1",
                json!({"stableService": "web-stable", "steps": [{"setWeight": 50}, {"pause": {"duration": 1}}]}),
            ),
        )
        .await?;

        for (name, expect) in [
            ("undecodable", "spec.progressDeadlineSeconds"),
            ("bad-weight", "spec.strategy.canary.steps[0].setWeight"),
            ("no-router", "traffic router `example.com/not-built` is not compiled into this build"),
        ] {
            let r = ro::wait_for(&ctx, name, T, "an InvalidSpec condition", |r| {
                ro::condition(r, "InvalidSpec").is_some()
            })
            .await?;
            let (status, reason, message) = ro::condition(&r, "InvalidSpec").context("no condition")?;
            ensure!(status == "True" && reason == "InvalidSpec", "{name}: {}", ro::summary(&r));
            ensure!(
                message.starts_with(&format!("The Rollout \"{name}\" is invalid: ")) && message.contains(expect),
                "{name}: the message does not name {expect:?}: {message}"
            );
            ensure!(ro::phase(&r) == "Degraded", "{name}: {}", ro::summary(&r));
        }

        // The valid one is deployed and updated as if nothing else existed.
        let r = ro::wait_for(&ctx, "web", T, "web Healthy", ro::healthy).await?;
        let v1 = r["status"]["stableRS"].as_str().unwrap_or_default().to_string();
        ro::set_image(&ctx, "web", "registry.invalid/web:2").await?;
        let r = ro::wait_for(&ctx, "web", T, "web Healthy on revision 2", |r| {
            ro::healthy(r) && r["status"]["stableRS"] != v1.as_str()
        })
        .await?;
        let v2 = r["status"]["stableRS"].as_str().unwrap_or_default().to_string();
        ro::wait_sizes(&ctx, &[(&v2, 2)], T).await?;
        let sets = ro::replica_sets(&ctx).await?;
        if let Some(stray) = sets.iter().find(|s| !s.name.starts_with("web-")) {
            bail!("an invalid Rollout got a ReplicaSet: {stray:?}");
        }
        ensure!(ctl.log().contains("The Rollout cannot be decoded."), "no log of the undecodable Rollout");
        Ok(())
    })
    .await
}

async fn workload_ref_to_a_deployment(ctx: TestContext) -> Result<()> {
    ctx.install_crds().await?;
    let ctl = Controller::start(&ctx, Options::default()).await?;
    with_log(&ctl, async {
        let deployment = |image: &str| {
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "app", "image": image}]}
                    }
                }
            })
        };
        ro::apply(&ctx, deployment("registry.invalid/web:1")).await?;
        ro::apply(&ctx, ro::service("web-stable", "web")).await?;
        // The Rollout has no template and no selector: both come from the Deployment.
        ro::apply(
            &ctx,
            json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                "metadata": {"name": "web"},
                "spec": {
                    "replicas": 2,
                    "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "scaleDown": "onsuccess"},
                    "strategy": {"canary": {"stableService": "web-stable", "steps": [{"setWeight": 50}, {"pause": {}}]}}
                }
            }),
        )
        .await?;
        let r = ro::wait_for(&ctx, "web", T, "the first revision Healthy", ro::healthy).await?;
        let v1 = r["status"]["stableRS"].as_str().unwrap_or_default().to_string();
        ro::wait_sizes(&ctx, &[(&v1, 2)], T).await?;
        let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
            kube::Api::namespaced(ctx.client.clone(), &ctx.namespace);
        // scaleDown: onsuccess — the Deployment is scaled to zero once the Rollout is Healthy.
        let generation = wait::until(T, "the Deployment scaled to 0", || async {
            let d = deployments.get("web").await?;
            Ok::<_, anyhow::Error>(
                (d.spec.replicas == Some(0))
                    .then(|| d.metadata.generation.unwrap_or(0)),
            )
        })
        .await?;
        // The scale-down is a change of the Deployment: the Rollout observes its generation.
        ro::wait_for(&ctx, "web", T, "workloadObservedGeneration to follow the Deployment", |r| {
            r["status"]["workloadObservedGeneration"] == generation.to_string().as_str()
        })
        .await?;
        let sets = ro::replica_sets(&ctx).await?;
        let rs = sets.iter().find(|s| s.hash == v1).context("no ReplicaSet of revision 1")?;
        ensure!(rs.name == format!("web-{v1}"), "{rs:?}");

        // A new image in the Deployment is a new revision of the Rollout.
        ro::apply(&ctx, deployment("registry.invalid/web:2")).await?;
        let r = ro::wait_for(&ctx, "web", T, "the pause at step 1", |r| ro::paused_at(r, 1)).await?;
        let v2 = r["status"]["currentPodHash"].as_str().unwrap_or_default().to_string();
        ensure!(v2 != v1, "{}", ro::summary(&r));
        ro::wait_sizes(&ctx, &[(&v1, 1), (&v2, 1)], T).await?;
        ro::promote(&ctx, "web").await?;
        let r = ro::wait_for(&ctx, "web", T, "Healthy on revision 2", |r| {
            ro::healthy(r) && r["status"]["stableRS"] == v2.as_str()
        })
        .await?;
        let d = deployments.get("web").await?;
        let generation = d.metadata.generation.unwrap_or(0).to_string();
        ro::wait_for(&ctx, "web", T, "workloadObservedGeneration of the new template", |r| {
            r["status"]["workloadObservedGeneration"] == generation.as_str()
        })
        .await
        .with_context(|| ro::summary(&r))?;
        let rollout = ro::get(&ctx, "web").await?;
        ensure!(rollout["spec"]["template"].is_null(), "the template was written into the Rollout");
        ensure!(ro::selector_hash(&ctx, "web-stable").await?.as_deref() == Some(v2.as_str()));
        Ok(())
    })
    .await
}

/// `role` label of each live pod of `web`, by pod-template hash.
async fn roles(ctx: &TestContext) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = ro::live_pods(ctx, "web")
        .await?
        .into_iter()
        .map(|p| {
            let labels = p.metadata.labels.unwrap_or_default();
            (
                labels.get(ro::HASH).cloned().unwrap_or_default(),
                labels.get("role").cloned().unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    Ok(out)
}

async fn ephemeral_metadata_follows_the_role_of_each_pod(ctx: TestContext) -> Result<()> {
    ctx.install_crds().await?;
    let ctl = Controller::start(&ctx, Options::default()).await?;
    with_log(&ctl, async {
        ro::apply(&ctx, ro::service("web-stable", "web")).await?;
        ro::apply(
            &ctx,
            ro::canary_rollout(
                "web",
                3,
                "registry.invalid/web:1",
                json!({"stableService": "web-stable",
                       "canaryMetadata": {"labels": {"role": "canary"}},
                       "stableMetadata": {"labels": {"role": "stable"}, "annotations": {"note": "stable"}},
                       "steps": [{"setWeight": 34}, {"pause": {}}]}),
            ),
        )
        .await?;
        let r = ro::wait_for(&ctx, "web", T, "Healthy", ro::healthy).await?;
        let v1 = r["status"]["stableRS"].as_str().unwrap_or_default().to_string();
        let stable = |h: &str, n: usize| vec![(h.to_string(), "stable".to_string()); n];
        wait::until(T, "three stable pods labelled role=stable", || async {
            Ok::<_, anyhow::Error>((roles(&ctx).await? == stable(&v1, 3)).then_some(()))
        })
        .await?;

        let (v2, _) = update(&ctx, "registry.invalid/web:2").await?;
        ro::wait_for(&ctx, "web", T, "the pause at step 1", |r| ro::paused_at(r, 1)).await?;
        let mut want = vec![(v2.clone(), "canary".to_string())];
        want.extend(stable(&v1, 2));
        want.sort();
        wait::until(T, "the canary pod labelled role=canary", || async {
            Ok::<_, anyhow::Error>((roles(&ctx).await? == want).then_some(()))
        })
        .await
        .with_context(|| "pods do not carry the role of their revision".to_string())?;
        let api: kube::Api<k8s_openapi::api::apps::v1::ReplicaSet> =
            kube::Api::namespaced(ctx.client.clone(), &ctx.namespace);
        let canary_rs = api.get(&format!("web-{v2}")).await?;
        let injected = canary_rs
            .metadata
            .annotations
            .unwrap_or_default()
            .get("rollout.argoproj.io/ephemeral-metadata")
            .cloned()
            .unwrap_or_default();
        ensure!(
            injected == r#"{"labels":{"role":"canary"}}"#,
            "ephemeral-metadata annotation: {injected:?}"
        );

        // Promoted: the canary becomes stable, and its pods say so.
        ro::promote(&ctx, "web").await?;
        ro::wait_for(&ctx, "web", T, "Healthy on revision 2", |r| {
            ro::healthy(r) && r["status"]["stableRS"] == v2.as_str()
        })
        .await?;
        wait::until(T, "three pods of revision 2 labelled role=stable", || async {
            Ok::<_, anyhow::Error>((roles(&ctx).await? == stable(&v2, 3)).then_some(()))
        })
        .await?;
        let pods = ro::live_pods(&ctx, "web").await?;
        ensure!(
            pods.iter().all(|p| p
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("note"))
                .map(String::as_str)
                == Some("stable")),
            "the stable annotation is missing on some pod"
        );
        Ok(())
    })
    .await
}
