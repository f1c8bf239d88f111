//! `status.duration`: start, manual pauses, end and completion status of each update attempt.

use std::time::Duration;

use rollouts_api::RolloutDuration;
use rollouts_test_support::fixtures::RolloutBuilder;
use rollouts_test_support::sim::World;
use serde_json::json;

const TICK: Duration = Duration::from_secs(1);

fn duration(w: &World) -> RolloutDuration {
    w.status().duration.expect("status.duration")
}

fn healthy(w: &World) -> bool {
    let s = w.status();
    w.phase() == "Healthy"
        && s.observed_generation == w.rollout.metadata.generation.map(|g| g.to_string())
        && s.stable_rs == s.current_pod_hash
}

fn finished(w: &World) -> bool {
    w.status().duration.is_some_and(|d| d.finished_at.is_some())
}

fn steps() -> RolloutBuilder {
    RolloutBuilder::canary("web").replicas(4).steps(
        json!([{"setWeight": 50}, {"pause": {}}, {"setWeight": 75}, {"pause": {"duration": 10}}]),
    )
}

fn deployed(b: RolloutBuilder) -> World {
    let mut w = World::new(b.build());
    assert!(
        w.run_until(40, TICK, |w| healthy(w) && finished(w)),
        "{:?}",
        w.status()
    );
    w
}

fn secs(d: &RolloutDuration) -> i64 {
    d.finished_at.as_ref().unwrap().0.as_second()
        - d.rollout_started_at.as_ref().unwrap().0.as_second()
}

#[test]
fn first_revision_is_promoted() {
    let w = deployed(steps());
    let d = duration(&w);
    assert_eq!(d.completion_status.as_deref(), Some("Promoted"));
    assert_eq!(d.total_manual_pause_duration_seconds, Some(0));
    assert_eq!(d.manual_pause_started_at, None);
    assert!(secs(&d) >= 0);
}

#[test]
fn update_counts_manual_pauses_but_not_timed_ones() {
    let mut w = deployed(steps());
    w.set_image("nginx:2");
    w.reconcile();
    w.reconcile();
    let d = duration(&w);
    assert_eq!(d.finished_at, None, "a new attempt started");
    assert_eq!(d.completion_status, None);
    let started = d.rollout_started_at.clone().unwrap().0;
    assert!(w.run_until(30, TICK, |w| w.phase() == "Paused"));
    assert!(duration(&w).manual_pause_started_at.is_some());
    for _ in 0..60 {
        w.reconcile();
        w.tick(TICK);
    }
    w.promote();
    assert!(
        w.run_until(60, TICK, |w| healthy(w) && finished(w)),
        "{:?}",
        w.status()
    );
    let d = duration(&w);
    assert_eq!(d.rollout_started_at.as_ref().unwrap().0, started);
    assert_eq!(d.completion_status.as_deref(), Some("Promoted"));
    let paused = d.total_manual_pause_duration_seconds.unwrap();
    assert!((60..=63).contains(&paused), "manual pause {paused}s");
    // The 10 s timed pause counts in the total but not as a manual pause.
    assert!(secs(&d) >= paused + 10, "{} s in total", secs(&d));
    // Converged: nothing changes any more.
    let before = w.status();
    w.tick(Duration::from_secs(100));
    let plan = w.reconcile();
    assert_eq!(plan.status.duration, before.duration);
}

#[test]
fn full_promotion_is_fast_promoted() {
    let mut w = deployed(steps());
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, |w| w.phase() == "Paused"));
    w.promote_full();
    assert!(w.run_until(30, TICK, |w| healthy(w) && finished(w)));
    assert_eq!(
        duration(&w).completion_status.as_deref(),
        Some("FastPromoted")
    );
}

#[test]
fn abort_ends_the_attempt_and_retry_starts_a_new_one() {
    let mut w = deployed(steps());
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, |w| w.phase() == "Paused"));
    w.abort();
    assert!(w.run_until(10, TICK, finished));
    let d = duration(&w);
    assert_eq!(d.completion_status.as_deref(), Some("Aborted"));
    let aborted_at = d.finished_at.clone().unwrap();
    for _ in 0..5 {
        w.reconcile();
        w.tick(TICK);
    }
    assert_eq!(
        duration(&w).finished_at,
        Some(aborted_at.clone()),
        "the end is kept"
    );
    w.retry();
    assert!(w.run_until(10, TICK, |w| !finished(w)));
    let d = duration(&w);
    assert!(d.rollout_started_at.unwrap().0 > aborted_at.0);
    assert_eq!(d.completion_status, None);
}

#[test]
fn going_back_to_stable_is_a_fast_rollback() {
    let mut w = deployed(steps());
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, |w| w.phase() == "Paused"));
    w.set_image("nginx:1");
    assert!(
        w.run_until(30, TICK, |w| healthy(w) && finished(w)),
        "{:?}",
        w.status()
    );
    assert_eq!(
        duration(&w).completion_status.as_deref(),
        Some("FastRolledBack")
    );
}

#[test]
fn undo_through_the_steps_is_a_rollback() {
    let mut w = deployed(steps());
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, |w| w.phase() == "Paused"));
    w.promote_full();
    assert!(w.run_until(30, TICK, |w| healthy(w) && finished(w)));
    w.undo_to_revision(1);
    assert!(w.run_until(30, TICK, |w| w.phase() == "Paused"));
    w.promote_full();
    assert!(w.run_until(30, TICK, |w| healthy(w) && finished(w)));
    assert_eq!(
        duration(&w).completion_status.as_deref(),
        Some("RolledBack")
    );
}

#[test]
fn blue_green_undo_within_delay_is_a_fast_rollback() {
    let mut w = deployed(
        RolloutBuilder::blue_green("web")
            .replicas(2)
            .blue_green_field("scaleDownDelaySeconds", json!(300)),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, |w| healthy(w) && finished(w)));
    assert_eq!(duration(&w).completion_status.as_deref(), Some("Promoted"));
    for _ in 0..3 {
        w.reconcile();
        w.tick(TICK);
    }
    w.undo_to_revision(1);
    assert!(
        w.run_until(30, TICK, |w| healthy(w) && finished(w)),
        "{:?}",
        w.status()
    );
    assert_eq!(
        duration(&w).completion_status.as_deref(),
        Some("FastRolledBack")
    );
}

#[test]
fn a_new_revision_mid_update_supersedes_the_attempt() {
    let mut w = deployed(steps());
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, |w| w.phase() == "Paused"));
    let first = duration(&w).rollout_started_at.unwrap();
    w.tick(Duration::from_secs(30));
    w.set_image("nginx:3");
    w.reconcile();
    w.reconcile();
    let d = duration(&w);
    assert!(d.rollout_started_at.unwrap().0 > first.0);
    assert_eq!(d.finished_at, None);
    assert_eq!(d.total_manual_pause_duration_seconds, Some(0));
    assert_eq!(d.manual_pause_started_at, None);
}

#[test]
fn user_pause_is_manual() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(2)
            .steps(json!([{"setWeight": 50}, {"pause": {"duration": 5}}])),
    );
    w.set_image("nginx:2");
    w.reconcile();
    w.set_paused(true);
    for _ in 0..20 {
        w.reconcile();
        w.tick(TICK);
    }
    w.set_paused(false);
    assert!(w.run_until(30, TICK, |w| healthy(w) && finished(w)));
    let paused = duration(&w).total_manual_pause_duration_seconds.unwrap();
    assert!((19..=21).contains(&paused), "{paused}");
}
