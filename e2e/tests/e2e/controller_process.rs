//! The controller as a process: killed with SIGKILL in the middle of a rollout and started
//! again, and two controllers with leader election (only the leader writes; when it dies the
//! standby takes over within the lease time; a stopped leader releases the lease).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use e2e::{
    Test, TestContext,
    controller::{Controller, Options, strip_ansi},
    rollouts as ro, wait,
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;

use crate::canary::{healthy_canary, with_log};

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(killed_mid_rollout_then_restarted_completes_without_duplicates_or_skips),
        e2e::test!(only_the_leader_writes_and_a_standby_takes_over),
    ]
}

const T: Duration = Duration::from_secs(60);
const LEASE: &str = "argo-rollouts-controller-lock";

/// The identity a controller uses for leader election (from its log).
fn identity(ctl: &Controller) -> Option<String> {
    let log = strip_ansi(&ctl.log());
    let line = log
        .lines()
        .find(|l| l.contains("Leader election: waiting for the lease."))?;
    let rest = line.split("identity=").nth(1)?;
    Some(
        rest.split_whitespace()
            .next()?
            .trim_matches('"')
            .to_string(),
    )
}

async fn lease(ctx: &TestContext) -> Result<Option<Lease>> {
    let api: Api<Lease> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    Ok(api.get_opt(LEASE).await?)
}

fn holder(lease: &Lease) -> String {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default()
}

fn transitions(lease: &Lease) -> i32 {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_transitions)
        .unwrap_or(0)
}

async fn wait_holder(ctx: &TestContext, who: &str, timeout: Duration) -> Result<Lease> {
    wait::until(
        timeout,
        &format!("the lease to be held by {who}"),
        || async { Ok::<_, anyhow::Error>(lease(ctx).await?.filter(|l| holder(l) == who)) },
    )
    .await
}

async fn killed_mid_rollout_then_restarted_completes_without_duplicates_or_skips(
    ctx: TestContext,
) -> Result<()> {
    let steps = json!([
        {"setWeight": 20}, {"pause": {"duration": 4}},
        {"setWeight": 40}, {"pause": {"duration": 4}},
        {"setWeight": 60}, {"pause": {"duration": 4}},
        {"setWeight": 80}, {"pause": {"duration": 4}}
    ]);
    let (mut first, v1) = healthy_canary(&ctx, 5, steps).await?;
    let v2 = with_log(&first, async {
        ro::set_image(&ctx, "web", "registry.invalid/web:2").await?;
        let r = ro::wait_for(&ctx, "web", T, "the pause at step 3", |r| {
            ro::paused_at(r, 3)
        })
        .await?;
        Ok(r["status"]["currentPodHash"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    })
    .await?;
    // SIGKILL in the middle of the rollout: no lease release, no drain.
    first.kill();
    let killed_log = first.log_tail(80);
    drop(first);
    // The pause ends while no controller runs.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let r = ro::get(&ctx, "web").await?;
    ensure!(
        ro::paused_at(&r, 3),
        "something moved the rollout while no controller ran: {}",
        ro::summary(&r)
    );

    let second = Controller::start(
        &ctx,
        Options {
            name: "second".into(),
            ..Options::default()
        },
    )
    .await?;
    with_log(&second, async {
        let r = ro::wait_for(&ctx, "web", T, "Healthy on revision 2", |r| {
            ro::healthy(r) && r["status"]["stableRS"] == v2.as_str()
        })
        .await
        .with_context(|| format!("--- the killed controller's log ---\n{killed_log}"))?;
        ensure!(ro::step(&r) == 8, "{}", ro::summary(&r));
        ro::wait_sizes(&ctx, &[(&v2, 5)], T).await?;
        let sets = ro::replica_sets(&ctx).await?;
        ensure!(
            sets.len() == 2
                && sets.iter().any(|s| s.hash == v1)
                && sets.iter().any(|s| s.hash == v2),
            "duplicate or missing ReplicaSets: {sets:?}"
        );
        let events = ro::events(&ctx, "web").await?;
        for i in 1..=8 {
            let prefix = format!("Rollout step {i}/8 completed");
            let seen: Vec<_> = events.iter().filter(|e| e.1.starts_with(&prefix)).collect();
            ensure!(
                seen.len() == 1 && seen[0].2 == 1,
                "step {i} completed {} times: {events:#?}",
                seen.len()
            );
        }
        Ok(())
    })
    .await
}

async fn only_the_leader_writes_and_a_standby_takes_over(ctx: TestContext) -> Result<()> {
    ctx.install_crds().await?;
    let mut a = Controller::start(
        &ctx,
        Options {
            name: "a".into(),
            ..Options::default()
        },
    )
    .await?;
    let id_a = wait::until(T, "controller a's identity", || async {
        Ok::<_, anyhow::Error>(identity(&a))
    })
    .await?;
    with_log(&a, wait_holder(&ctx, &id_a, T)).await?;
    let mut b = Controller::start(
        &ctx,
        Options {
            name: "b".into(),
            ..Options::default()
        },
    )
    .await?;
    let id_b = wait::until(T, "controller b's identity", || async {
        Ok::<_, anyhow::Error>(identity(&b))
    })
    .await?;
    ensure!(id_a != id_b, "both controllers have the identity {id_a}");

    with_log(&a, async {
        ro::apply(&ctx, ro::service("web-stable", "web")).await?;
        ro::apply(
            &ctx,
            ro::canary_rollout(
                "web",
                3,
                "registry.invalid/web:1",
                json!({"stableService": "web-stable", "steps": [{"setWeight": 34}, {"pause": {}}]}),
            ),
        )
        .await?;
        ro::wait_for(&ctx, "web", T, "Healthy", ro::healthy).await?;
        ro::set_image(&ctx, "web", "registry.invalid/web:2").await?;
        ro::wait_for(&ctx, "web", T, "the pause at step 1", |r| {
            ro::paused_at(r, 1)
        })
        .await?;
        Ok(())
    })
    .await?;

    // The standby only reads and writes its Lease; the leader wrote the rollout.
    let standby = b.metrics().await?;
    let writes: Vec<&str> = standby
        .lines()
        .filter(|l| l.starts_with("controller_clientset_k8s_request_total{"))
        .filter(|l| !l.contains("kind=\"leases\""))
        .collect();
    ensure!(
        writes.is_empty(),
        "the standby talked to the API server about more than its lease: {writes:#?}"
    );
    ensure!(
        !b.log().contains("I am the new leader"),
        "the standby leads too:\n{}",
        b.log_tail(40)
    );
    let leader = a.metrics().await?;
    ensure!(
        leader.contains("kind=\"replicasets\"") && leader.contains("verb=\"Patch\""),
        "the leader did not write:\n{leader}"
    );
    let before = lease(&ctx).await?.context("no lease")?;
    ensure!(
        holder(&before) == id_a,
        "lease held by {:?}",
        holder(&before)
    );

    // Kill the leader: the standby takes over within the lease time.
    a.kill();
    let killed = Instant::now();
    let after = with_log(&b, wait_holder(&ctx, &id_b, Duration::from_secs(20))).await?;
    let takeover = killed.elapsed();
    eprintln!(
        "e2e-measure: leader killed -> standby holds the lease after {} ms",
        takeover.as_millis()
    );
    // Lease 4 s; the standby retries every 0.5 s (plus jitter).
    ensure!(
        takeover <= Duration::from_secs(8),
        "takeover took {takeover:?}"
    );
    ensure!(
        transitions(&after) == transitions(&before) + 1,
        "leaseTransitions {} -> {}",
        transitions(&before),
        transitions(&after)
    );
    let spec = after.spec.clone().unwrap_or_default();
    ensure!(spec.lease_duration_seconds == Some(4), "{spec:?}");
    ensure!(
        spec.acquire_time.is_some() && spec.renew_time.is_some(),
        "{spec:?}"
    );

    with_log(&b, async {
        let r = ro::get(&ctx, "web").await?;
        let v2 = r["status"]["currentPodHash"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        ro::promote(&ctx, "web").await?;
        ro::wait_for(
            &ctx,
            "web",
            T,
            "Healthy on revision 2 under the new leader",
            |r| ro::healthy(r) && r["status"]["stableRS"] == v2.as_str(),
        )
        .await?;
        ro::wait_sizes(&ctx, &[(&v2, 3)], T).await?;
        Ok(())
    })
    .await?;

    // A leader that stops releases the lease.
    let code = b.terminate(Duration::from_secs(20)).await?;
    ensure!(
        code == Some(0),
        "the controller exited with {code:?}:\n{}",
        b.log_tail(30)
    );
    let released = lease(&ctx).await?.context("no lease")?;
    if !holder(&released).is_empty() {
        bail!(
            "the lease is still held by {:?} after a clean stop",
            holder(&released)
        );
    }
    Ok(())
}
