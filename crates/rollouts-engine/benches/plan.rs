//! `plan` for a Rollout with 1,000 replicas and 10 old ReplicaSets, mid-update (canary paused
//! at 20 %, blue-green paused before promotion with its preview at full size).
//!
//! Run with `cargo bench -p rollouts-engine`. Target: under 20 µs per call.

use std::time::Duration;

use rollouts_engine::Snapshot;
use rollouts_test_support::fixtures::RolloutBuilder;
use rollouts_test_support::sim::World;
use serde_json::json;

fn main() {
    divan::main();
}

/// Builds the world through the simulator: 11 revisions rolled out one after the other (the
/// 10 older ones scaled down and kept by the revision history), then a 12th paused at 20 %.
fn snapshot(traffic: bool) -> Snapshot {
    let mut builder = RolloutBuilder::canary("bench")
        .replicas(1000)
        .canary_field("maxSurge", json!("10%"))
        .steps(json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]));
    if traffic {
        builder = builder.traffic_routed();
    }
    let mut w = World::new(builder.build());
    let tick = Duration::from_secs(1);
    w.run_until(50, tick, |w| w.phase() == "Healthy");
    for v in 2..=12 {
        w.set_image(&format!("nginx:{v}"));
        w.run_until(200, tick, |w| w.phase() == "Paused");
        if v < 12 {
            w.promote_full();
            w.run_until(200, tick, |w| {
                w.phase() == "Healthy" && w.status().promote_full.is_none()
            });
            for _ in 0..5 {
                w.reconcile();
                w.tick(Duration::from_secs(60));
            }
        }
    }
    assert_eq!(
        w.replica_sets.len(),
        12,
        "{:?}",
        w.replica_sets
            .iter()
            .map(|r| (&r.name, r.spec_replicas))
            .collect::<Vec<_>>()
    );
    w.reconcile();
    w.tick(tick);
    w.snapshot()
}

/// The blue-green counterpart: 11 revisions promoted one after the other (the 10 older ones
/// scaled down after their delay and kept by the revision history), then a 12th waiting in its
/// `BlueGreenPause` with pre-promotion analysis done.
fn blue_green_snapshot() -> Snapshot {
    let builder = RolloutBuilder::blue_green("bench")
        .replicas(1000)
        .blue_green_field("autoPromotionEnabled", json!(false))
        .blue_green_field(
            "prePromotionAnalysis",
            json!({"templates": [{"templateName": "check"}]}),
        );
    let mut w = World::new(builder.build());
    w.knobs.analysis_outcome = Some("Successful".into());
    let tick = Duration::from_secs(1);
    w.run_until(50, tick, |w| w.phase() == "Healthy");
    for v in 2..=12 {
        w.set_image(&format!("nginx:{v}"));
        w.run_until(200, tick, |w| w.phase() == "Paused");
        if v < 12 {
            w.promote();
            w.run_until(200, tick, |w| w.phase() == "Healthy");
            for _ in 0..5 {
                w.reconcile();
                w.tick(Duration::from_secs(60));
            }
        }
    }
    assert_eq!(w.replica_sets.len(), 12);
    w.reconcile();
    w.tick(tick);
    w.snapshot()
}

#[divan::bench]
fn plan_blue_green_1000_replicas_10_old(bencher: divan::Bencher) {
    let snap = blue_green_snapshot();
    bencher.bench(|| rollouts_engine::plan(divan::black_box(&snap)));
}

#[divan::bench]
fn plan_basic_canary_1000_replicas_10_old(bencher: divan::Bencher) {
    let snap = snapshot(false);
    bencher.bench(|| rollouts_engine::plan(divan::black_box(&snap)));
}

#[divan::bench]
fn plan_traffic_routed_1000_replicas_10_old(bencher: divan::Bencher) {
    let snap = snapshot(true);
    bencher.bench(|| rollouts_engine::plan(divan::black_box(&snap)));
}

/// The pod-template hash alone (Go JSON encoding + FNV), part of every `plan`.
#[divan::bench]
fn pod_template_hash_only(bencher: divan::Bencher) {
    let snap = snapshot(false);
    let t = snap.rollout.spec.template.clone();
    bencher.bench(|| rollouts_engine::hash::pod_template_hash(divan::black_box(t.as_ref()), None));
}

/// The step hash alone, part of every canary `plan`.
#[divan::bench]
fn step_hash_only(bencher: divan::Bencher) {
    let snap = snapshot(false);
    let s = snap.rollout.spec.canary().and_then(|c| c.steps.clone());
    bencher.bench(|| rollouts_engine::hash::step_hash(divan::black_box(s.as_ref())));
}
