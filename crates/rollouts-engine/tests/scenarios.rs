//! Scenario tests: Rollouts driven through the in-memory simulator from creation through every
//! step, and through abort, retry, full promotion, undo, restart and scaling.

use std::time::Duration;

use rollouts_engine::Effect;
use rollouts_test_support::fixtures::RolloutBuilder;
use rollouts_test_support::sim::World;
use serde_json::json;

const TICK: Duration = Duration::from_secs(1);

/// Healthy, and the engine has seen the current spec and revision.
fn healthy(w: &World) -> bool {
    let s = w.status();
    w.phase() == "Healthy"
        && s.observed_generation == w.rollout.metadata.generation.map(|g| g.to_string())
        && s.current_pod_hash.is_some()
        && s.current_pod_hash == s.stable_rs
        && w.replica_sets
            .iter()
            .max_by_key(|r| r.revision())
            .map(|r| r.hash().to_string())
            == s.stable_rs
}

fn paused(w: &World) -> bool {
    w.phase() == "Paused"
}

fn step_index(w: &World) -> Option<i32> {
    w.status().current_step_index
}

/// A Rollout with no previous revision goes straight to its first revision.
fn deployed(builder: RolloutBuilder) -> World {
    let mut w = World::new(builder.build());
    assert!(
        w.run_until(30, TICK, healthy),
        "initial deploy did not become healthy: {:?}",
        w.status()
    );
    w
}

#[test]
fn initial_deploy_creates_replica_set_and_becomes_healthy() {
    let w = deployed(
        RolloutBuilder::canary("web")
            .replicas(3)
            .steps(json!([{"setWeight": 50}, {"pause": {}}])),
    );
    let s = w.status();
    assert_eq!(w.replica_sets.len(), 1);
    let rs = &w.replica_sets[0];
    assert_eq!(rs.name, format!("web-{}", rs.hash()));
    assert_eq!(rs.spec_replicas, 3);
    assert_eq!(s.stable_rs.as_deref(), Some(rs.hash()));
    assert_eq!(s.current_pod_hash.as_deref(), Some(rs.hash()));
    assert_eq!(s.current_step_index, Some(2));
    assert_eq!(s.observed_generation.as_deref(), Some("1"));
    assert_eq!(s.available_replicas, Some(3));
    assert_eq!(s.selector.as_deref(), Some("app=web"));
    let reasons = w.event_reasons();
    assert_eq!(
        reasons[..3],
        [
            "RolloutUpdated",
            "NewReplicaSetCreated",
            "RolloutNotCompleted"
        ]
    );
    assert!(reasons.contains(&"RolloutCompleted".to_string()));
    for (kind, status) in [
        ("Available", "True"),
        ("Completed", "True"),
        ("Healthy", "True"),
        ("Progressing", "True"),
    ] {
        let c = s
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == kind)
            .unwrap_or_else(|| panic!("{kind} condition"));
        assert_eq!(c.status, status, "{kind}");
    }
    let progressing = s
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(progressing.reason, "NewReplicaSetAvailable");
    assert_eq!(
        progressing.message,
        format!("ReplicaSet \"{}\" has successfully progressed.", rs.name)
    );
}

#[test]
fn missing_replicas_is_defaulted_first() {
    let mut w = World::new(RolloutBuilder::canary("web").no_replicas().build());
    let first = w.reconcile();
    assert!(matches!(first.effects[0], Effect::CreateReplicaSet { .. }));
    let second = w.reconcile();
    assert_eq!(
        second.effects,
        vec![Effect::UpdateRollout {
            replicas: Some(1),
            annotations: Default::default()
        }]
    );
    assert!(w.run_until(20, TICK, healthy));
}

#[test]
fn basic_canary_walks_every_step_to_completion() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(10)
            .steps(json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "30s"}}])),
    );
    w.set_image("nginx:2");
    // Step 0 (setWeight 20): 2 canary pods, 8 stable.
    assert!(
        w.run_until(40, TICK, paused),
        "did not pause: {:?}",
        w.status()
    );
    assert_eq!(step_index(&w), Some(1));
    assert_eq!(w.counts(2), (2, 2));
    assert_eq!(w.counts(1), (8, 8));
    let pause = w.status().pause_conditions.unwrap();
    assert_eq!(pause[0].reason, "CanaryPauseStep");
    assert_eq!(w.status().message.as_deref(), Some("CanaryPauseStep"));
    // Stays paused until promoted.
    for _ in 0..5 {
        w.reconcile();
        w.tick(TICK);
    }
    assert!(paused(&w));
    w.promote();
    // Step 2 (setWeight 50) then the timed pause.
    assert!(
        w.run_until(40, TICK, |w| step_index(w) == Some(3) && paused(w)),
        "{:?}",
        w.status()
    );
    assert_eq!(w.counts(2), (5, 5));
    assert_eq!(w.counts(1), (5, 5));
    // The pass after the pause records the Paused conditions; the next one waits for the timer.
    w.reconcile();
    let plan = w.reconcile();
    assert!(
        plan.requeue_after
            .is_some_and(|d| d <= Duration::from_secs(30)),
        "{:?}",
        plan.requeue_after
    );
    // The timed pause ends by itself.
    assert!(
        w.run_until(80, Duration::from_secs(5), healthy),
        "{:?}",
        w.status()
    );
    assert_eq!(w.counts(2), (10, 10));
    assert_eq!(w.counts(1), (0, 0));
    let s = w.status();
    assert_eq!(s.stable_rs, s.current_pod_hash);
    assert_eq!(s.current_step_index, Some(4));
    let reasons = w.event_reasons();
    let completed: Vec<_> = w
        .events
        .iter()
        .filter(|e| e.reason == "RolloutStepCompleted")
        .map(|e| e.message.clone())
        .collect();
    assert_eq!(
        completed,
        [
            "Rollout step 1/4 completed (setWeight: 20)",
            "Rollout step 2/4 completed (pause)",
            "Rollout step 3/4 completed (setWeight: 50)",
            "Rollout step 4/4 completed (pause: 30s)",
        ]
    );
    assert!(reasons.contains(&"RolloutPaused".to_string()));
    assert!(reasons.contains(&"RolloutResumed".to_string()));
    assert!(reasons.iter().filter(|r| *r == "RolloutCompleted").count() >= 2);
}

#[test]
fn abort_scales_back_to_stable_and_retry_restarts_from_step_zero() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(4)
            .steps(json!([{"setWeight": 50}, {"pause": {}}])),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, paused));
    assert_eq!(w.counts(2), (2, 2));
    w.abort();
    assert!(
        w.run_until(40, TICK, |w| w.counts(2) == (0, 0) && w.counts(1) == (4, 4)),
        "{:?}",
        w.status()
    );
    let s = w.status();
    assert_eq!(w.phase(), "Degraded");
    assert_eq!(s.abort, Some(true));
    assert!(s.aborted_at.is_some());
    assert_eq!(s.current_step_index, Some(0));
    let prog = s
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(prog.reason, "RolloutAborted");
    assert_eq!(prog.status, "False");
    assert_eq!(prog.message, "Rollout aborted update to revision 2");
    assert_eq!(
        s.message.as_deref(),
        Some("RolloutAborted: Rollout aborted update to revision 2")
    );
    assert!(w.event_reasons().contains(&"RolloutAborted".to_string()));

    w.retry();
    assert!(w.run_until(40, TICK, paused), "{:?}", w.status());
    assert_eq!(w.counts(2), (2, 2));
    assert_eq!(w.status().abort, None);
    w.promote();
    assert!(w.run_until(40, TICK, healthy));
    assert_eq!(w.counts(2), (4, 4));
}

#[test]
fn full_promotion_skips_remaining_steps() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(5)
            .steps(json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 40}, {"pause": {}}])),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, paused));
    w.promote_full();
    assert!(w.run_until(40, TICK, healthy), "{:?}", w.status());
    assert_eq!(w.counts(2), (5, 5));
    assert_eq!(w.counts(1), (0, 0));
    assert_eq!(w.status().current_step_index, Some(4));
    assert_eq!(w.status().promote_full, None);
    assert!(
        w.events
            .iter()
            .any(|e| e.message.ends_with("Full promotion requested"))
    );
}

#[test]
fn undo_to_stable_mid_update_is_a_fast_rollback() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(4)
            .steps(json!([{"setWeight": 25}, {"pause": {}}])),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, paused));
    w.undo_to_revision(1);
    assert!(w.run_until(40, TICK, healthy), "{:?}", w.status());
    assert!(
        w.events
            .iter()
            .any(|e| e.reason == "SkipSteps" && e.message == "Rollback to stable ReplicaSets")
    );
    // The old stable ReplicaSet is reused with a new revision.
    let stable = w
        .replica_sets
        .iter()
        .find(|r| r.spec_replicas == 4)
        .unwrap();
    assert_eq!(stable.revision(), Some(3));
    assert_eq!(
        stable
            .annotations
            .get("rollout.argoproj.io/revision-history")
            .map(String::as_str),
        Some("1")
    );
}

#[test]
fn rollback_window_fast_tracks_recent_revisions() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(2)
            .spec_field("rollbackWindow", json!({"revisions": 2}))
            .steps(json!([{"setWeight": 50}, {"pause": {}}])),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, paused));
    w.promote();
    assert!(w.run_until(40, TICK, healthy));
    // Back to revision 1, created before the stable revision 2: within the window.
    let steps_before = w
        .events
        .iter()
        .filter(|e| e.reason == "RolloutStepCompleted")
        .count();
    w.undo_to_revision(1);
    assert!(w.run_until(40, TICK, healthy), "{:?}", w.status());
    assert!(
        w.events.iter().any(
            |e| e.reason == "RolloutCompleted" && e.message.ends_with("Rollback within window")
        )
    );
    // No step ran again.
    assert_eq!(
        w.events
            .iter()
            .filter(|e| e.reason == "RolloutStepCompleted")
            .count(),
        steps_before
    );
    assert_eq!(w.counts(3), (2, 2));
}

#[test]
fn spec_paused_halts_and_resumes() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(4)
            .steps(json!([{"setWeight": 50}])),
    );
    w.set_paused(true);
    w.set_image("nginx:2");
    for _ in 0..10 {
        w.reconcile();
        w.tick(TICK);
    }
    assert_eq!(w.phase(), "Paused");
    assert_eq!(w.status().message.as_deref(), Some("manually paused"));
    assert_eq!(w.counts(2), (0, 0));
    let paused_cond = w
        .status()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Paused")
        .unwrap();
    assert_eq!(paused_cond.status, "True");
    w.set_paused(false);
    assert!(w.run_until(40, TICK, healthy), "{:?}", w.status());
}

#[test]
fn hpa_scaling_does_not_advance_steps() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(4)
            .steps(json!([{"setWeight": 50}, {"pause": {}}, {"setWeight": 75}])),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, paused));
    assert_eq!(step_index(&w), Some(1));
    w.set_replicas(8);
    for _ in 0..20 {
        w.reconcile();
        w.tick(TICK);
    }
    assert_eq!(step_index(&w), Some(1));
    assert_eq!(w.counts(2), (4, 4));
    assert_eq!(w.counts(1), (4, 4));
}

#[test]
fn restart_evicts_old_pods_within_max_unavailable() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(4)
            .canary_field("maxUnavailable", json!(1)),
    );
    w.tick(Duration::from_secs(10));
    w.restart();
    w.tick(TICK);
    let plan = w.reconcile();
    let evictions = plan
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::EvictPod { .. }))
        .count();
    assert_eq!(evictions, 1);
    assert!(
        w.run_until(60, TICK, |w| w.status().restarted_at.is_some()),
        "{:?}",
        w.status()
    );
    assert!(
        w.pods
            .iter()
            .all(|p| p.created >= w.rollout.spec.restart_at.as_ref().unwrap().0)
    );
    assert!(w.run_until(10, TICK, healthy));
}

#[test]
fn invalid_spec_plans_no_effect() {
    let mut w = World::new(
        RolloutBuilder::canary("web")
            .steps(json!([{"pause": {}}, {"pause": {}}, {"setWeight": 200}]))
            .build(),
    );
    let plan = w.reconcile();
    assert!(plan.effects.is_empty());
    let cond = plan
        .status
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "InvalidSpec")
        .unwrap();
    assert_eq!(
        cond.message,
        "The Rollout \"web\" is invalid: spec.strategy.canary.steps[2].setWeight: Invalid value: 200: SetWeight needs to be between 0 and 100"
    );
    assert_eq!(plan.status.phase.as_deref(), Some("Degraded"));
    assert_eq!(plan.status.observed_generation.as_deref(), Some("1"));
    // Unchanged message and generation: nothing new to write.
    let again = w.reconcile();
    assert_eq!(again.status, plan.status);
}

/// The event sequence Argo's end-to-end test `TestRolloutAbortRetryPromote` asserts (minus
/// `RolloutAddedToInformer`, which the controller's informer emits).
#[test]
fn abort_retry_promote_event_sequence_matches_argo() {
    let mut w = World::new(
        RolloutBuilder::canary("abort-retry-promote")
            .no_replicas()
            .steps(json!([{"setWeight": 50}, {"pause": {"duration": "3s"}}]))
            .build(),
    );
    assert!(w.run_until(30, TICK, healthy));
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, paused));
    assert_eq!((w.counts(1).0, w.counts(2).0), (1, 1));
    w.abort();
    assert!(w.run_until(30, TICK, |w| w.phase() == "Degraded"));
    w.retry();
    assert!(w.run_until(30, TICK, paused), "{:?}", w.status());
    assert_eq!((w.counts(1).0, w.counts(2).0), (1, 1));
    assert!(w.run_until(30, TICK, healthy), "{:?}", w.status());
    assert_eq!((w.counts(1).0, w.counts(2).0), (0, 1));
    let reasons: Vec<String> = w
        .event_reasons()
        .into_iter()
        .filter(|r| r != "SwitchService")
        .collect();
    assert_eq!(
        reasons,
        [
            "RolloutUpdated",
            "NewReplicaSetCreated",
            "RolloutNotCompleted",
            "ScalingReplicaSet",
            "RolloutCompleted",
            "RolloutUpdated",
            "NewReplicaSetCreated",
            "RolloutNotCompleted",
            "ScalingReplicaSet",
            "RolloutStepCompleted",
            "RolloutPaused",
            "ScalingReplicaSet",
            "RolloutAborted",
            "ScalingReplicaSet",
            "RolloutStepCompleted",
            "RolloutPaused",
            "RolloutStepCompleted",
            "RolloutResumed",
            "ScalingReplicaSet",
            "RolloutCompleted",
        ]
    );
}

#[test]
fn replica_set_create_failure_is_reported() {
    let w = World::new(RolloutBuilder::canary("web").build());
    let plan =
        rollouts_engine::replica_set_create_failed(&w.snapshot(), "web-abc", "quota exceeded");
    assert!(plan.effects.is_empty());
    assert_eq!(plan.events[0].reason, "ReplicaSetCreateError");
    assert_eq!(
        plan.events[0].message,
        "Failed to create new replica set \"web-abc\": quota exceeded"
    );
    let cond = plan
        .status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_str()),
        ("False", "ReplicaSetCreateError")
    );
}

#[test]
fn scale_down_delay_revision_limit_keeps_only_the_newest_old_revisions() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(2)
            .traffic_routed()
            .canary_field("scaleDownDelaySeconds", json!(600))
            .canary_field("scaleDownDelayRevisionLimit", json!(1))
            .steps(json!([{"setWeight": 50}])),
    );
    for v in 2..=3 {
        w.set_image(&format!("nginx:{v}"));
        assert!(w.run_until(60, TICK, healthy), "{:?}", w.status());
        for _ in 0..3 {
            w.reconcile();
            w.tick(TICK);
        }
    }
    // Revision 2 (the previous stable) is kept during its delay; revision 1 is beyond the limit.
    assert_eq!(w.counts(2).0, 2);
    assert!(
        w.rs_by_revision(2)
            .unwrap()
            .annotations
            .contains_key("scale-down-deadline")
    );
    assert_eq!(w.counts(1).0, 0);
}

#[test]
fn min_pods_per_replica_set_raises_small_canaries() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(10)
            .traffic_routed()
            .canary_field("minPodsPerReplicaSet", json!(2))
            .steps(json!([{"setWeight": 5}, {"pause": {}}])),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, paused));
    assert_eq!(w.counts(2), (2, 2));
}
