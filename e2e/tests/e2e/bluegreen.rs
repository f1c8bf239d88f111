//! The blue-green strategy, driven by our `rollouts-controller` binary: a preview Service that
//! follows the new revision while the active one keeps the old, a manual promotion, an
//! automatic promotion after `autoPromotionSeconds`, and the previous revision kept up for
//! `scaleDownDelaySeconds` after the switch.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use e2e::{
    Test, TestContext,
    controller::{Controller, Options},
    rollouts::{self as ro},
    wait,
};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::canary::with_log;

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(manual_promotion_switches_active_after_preview),
        e2e::test!(auto_promotion_after_auto_promotion_seconds),
    ]
}

const T: Duration = Duration::from_secs(60);

fn bluegreen_rollout(replicas: i32, image: &str, strategy: Value) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            },
            "strategy": {"blueGreen": strategy}
        }
    })
}

/// Starts a controller and a Healthy blue-green Rollout `web` with `web-active` and
/// `web-preview` Services; returns the controller and the first hash.
async fn healthy_bluegreen(ctx: &TestContext, strategy: Value) -> Result<(Controller, String)> {
    ctx.install_crds().await?;
    let ctl = Controller::start(ctx, Options::default()).await?;
    let v1 = with_log(&ctl, async {
        ro::apply(ctx, ro::service("web-active", "web")).await?;
        ro::apply(ctx, ro::service("web-preview", "web")).await?;
        ro::apply(
            ctx,
            bluegreen_rollout(2, "registry.invalid/web:1", strategy),
        )
        .await?;
        let r = ro::wait_for(
            ctx,
            "web",
            T,
            "the initial deploy to be Healthy",
            ro::healthy,
        )
        .await?;
        let v1 = r["status"]["stableRS"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        ro::wait_sizes(ctx, &[(&v1, 2)], T).await?;
        ensure!(
            ro::selector_hash(ctx, "web-active").await?.as_deref() == Some(v1.as_str()),
            "the active Service does not select revision 1"
        );
        ensure!(
            r["status"]["blueGreen"]["activeSelector"] == v1.as_str(),
            "{}",
            r["status"]["blueGreen"]
        );
        Ok(v1)
    })
    .await?;
    Ok((ctl, v1))
}

/// Sets the image and waits for the preview of the new revision (paused, preview switched,
/// active untouched). Returns the new hash.
async fn preview(ctx: &TestContext, v1: &str) -> Result<String> {
    ro::set_image(ctx, "web", "registry.invalid/web:2").await?;
    let r = ro::wait_for(ctx, "web", T, "the BlueGreenPause", |r| {
        ro::observed(r)
            && ro::phase(r) == "Paused"
            && r["status"]["pauseConditions"][0]["reason"] == "BlueGreenPause"
    })
    .await?;
    let v2 = r["status"]["currentPodHash"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ensure!(v2 != v1, "{}", ro::summary(&r));
    ensure!(r["status"]["stableRS"] == v1, "{}", ro::summary(&r));
    ensure!(
        r["status"]["blueGreen"]["previewSelector"] == v2.as_str(),
        "{}",
        r["status"]["blueGreen"]
    );
    ensure!(
        r["status"]["blueGreen"]["activeSelector"] == v1,
        "{}",
        r["status"]["blueGreen"]
    );
    ro::wait_sizes(ctx, &[(v1, 2), (&v2, 2)], T).await?;
    ensure!(ro::selector_hash(ctx, "web-preview").await?.as_deref() == Some(v2.as_str()));
    ensure!(ro::selector_hash(ctx, "web-active").await?.as_deref() == Some(v1));
    Ok(v2)
}

async fn manual_promotion_switches_active_after_preview(ctx: TestContext) -> Result<()> {
    let strategy = json!({
        "activeService": "web-active", "previewService": "web-preview",
        "autoPromotionEnabled": false, "scaleDownDelaySeconds": 6
    });
    let (ctl, v1) = healthy_bluegreen(&ctx, strategy).await?;
    with_log(&ctl, async {
        let v2 = preview(&ctx, &v1).await?;
        // Manual promotion only: nothing moves by itself.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let r = ro::get(&ctx, "web").await?;
        ensure!(
            ro::phase(&r) == "Paused",
            "promoted by itself: {}",
            ro::summary(&r)
        );
        ensure!(ro::selector_hash(&ctx, "web-active").await?.as_deref() == Some(v1.as_str()));

        ro::promote(&ctx, "web").await?;
        let promoted = Instant::now();
        let r = ro::wait_for(&ctx, "web", T, "Healthy on revision 2", |r| {
            ro::healthy(r) && r["status"]["stableRS"] == v2.as_str()
        })
        .await?;
        ensure!(
            r["status"]["blueGreen"]["activeSelector"] == v2.as_str(),
            "{}",
            r["status"]["blueGreen"]
        );
        ensure!(ro::selector_hash(&ctx, "web-active").await?.as_deref() == Some(v2.as_str()));
        ensure!(ro::selector_hash(&ctx, "web-preview").await?.as_deref() == Some(v2.as_str()));

        // scaleDownDelaySeconds: the previous revision stays up, with a deadline, then goes.
        let sets = ro::replica_sets(&ctx).await?;
        let old = sets
            .iter()
            .find(|s| s.hash == v1)
            .context("revision 1 is gone")?;
        ensure!(
            old.replicas == 2,
            "revision 1 was scaled down at once: {sets:?}"
        );
        ensure!(
            old.deadline.is_some(),
            "no scale-down-deadline on revision 1: {sets:?}"
        );
        ro::wait_sizes(&ctx, &[(&v2, 2)], Duration::from_secs(30)).await?;
        let waited = promoted.elapsed();
        // The deadline is written in whole seconds: up to one second early.
        ensure!(
            waited >= Duration::from_secs(4),
            "revision 1 went down {waited:?} after the promotion (delay 6 s)"
        );
        eprintln!(
            "e2e-measure: blue-green scale-down 6 s delay observed as {} ms after promotion",
            waited.as_millis()
        );
        let reasons = ro::event_reasons(&ctx, "web").await?;
        ro::in_order(
            &reasons,
            &["RolloutPaused", "SwitchService", "RolloutCompleted"],
        )?;
        Ok(())
    })
    .await
}

async fn auto_promotion_after_auto_promotion_seconds(ctx: TestContext) -> Result<()> {
    let strategy = json!({
        "activeService": "web-active", "previewService": "web-preview",
        "autoPromotionSeconds": 4, "scaleDownDelaySeconds": 2
    });
    let (ctl, v1) = healthy_bluegreen(&ctx, strategy).await?;
    with_log(&ctl, async {
        let v2 = preview(&ctx, &v1).await?;
        let paused = ro::get(&ctx, "web").await?;
        let start: Timestamp = paused["status"]["pauseConditions"][0]["startTime"]
            .as_str()
            .context("no pause start time")?
            .parse()?;
        let r = ro::wait_for(&ctx, "web", T, "the automatic promotion", |r| {
            ro::healthy(r) && r["status"]["stableRS"] == v2.as_str()
        })
        .await?;
        let promoted_after = Timestamp::now().duration_since(start);
        ensure!(
            promoted_after >= SignedDuration::from_secs(4),
            "promoted {promoted_after:?} after the pause started (autoPromotionSeconds 4)"
        );
        eprintln!(
            "e2e-measure: blue-green autoPromotionSeconds 4 -> Healthy {} ms after the pause began",
            promoted_after.as_millis()
        );
        ensure!(
            r["status"]["pauseConditions"].is_null(),
            "{}",
            ro::summary(&r)
        );
        ensure!(ro::selector_hash(&ctx, "web-active").await?.as_deref() == Some(v2.as_str()));
        let found = wait::until(T, "revision 1 scaled down after its delay", || async {
            let sets = ro::replica_sets(&ctx).await?;
            Ok::<_, anyhow::Error>(
                sets.iter()
                    .find(|s| s.hash == v1)
                    .filter(|s| s.replicas == 0)
                    .map(|_| ()),
            )
        })
        .await;
        found?;
        ro::wait_sizes(&ctx, &[(&v2, 2)], T).await?;
        Ok(())
    })
    .await
}
