//! `simulate`: timelines for canary and blue-green rollouts, from a fresh Rollout and from a live
//! state, under different assumptions.

use std::time::Duration;

use rollouts_api::{AnalysisTemplate, Rollout};
use rollouts_engine::simulate::{Outcome, Role, Timeline};
use rollouts_engine::{Assumptions, Snapshot, simulate};
use rollouts_test_support::fixtures::RolloutBuilder;
use rollouts_test_support::sim::World;
use serde_json::json;

/// A live snapshot of `builder` deployed at revision 1, and the same Rollout with a new image.
fn live(builder: RolloutBuilder) -> (Snapshot, Rollout) {
    let mut w = World::new(builder.build());
    assert!(w.run_until(40, Duration::from_secs(1), |w| w.phase() == "Healthy"));
    for _ in 0..3 {
        w.reconcile();
        w.tick(Duration::from_secs(1));
    }
    let snap = w.snapshot();
    let mut next = w.rollout.clone();
    next.status = None;
    next.spec
        .template
        .as_mut()
        .and_then(|t| t.spec.as_mut())
        .expect("template")
        .containers[0]
        .image = Some("nginx:2".into());
    (snap, next)
}

fn template(name: &str, metrics: serde_json::Value) -> AnalysisTemplate {
    rollouts_api::decode(&json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"metrics": metrics}
    }))
    .expect("template decodes")
}

fn canary_steps() -> RolloutBuilder {
    RolloutBuilder::canary("web").replicas(10).steps(
        json!([{"setWeight": 20}, {"pause": {"duration": "1m"}}, {"setWeight": 50}, {"pause": {}}]),
    )
}

/// The first entry where `f` holds.
fn find(
    t: &Timeline,
    f: impl Fn(&rollouts_engine::TimelineEntry) -> bool,
) -> &rollouts_engine::TimelineEntry {
    t.entries
        .iter()
        .find(|e| f(e))
        .unwrap_or_else(|| panic!("no such entry in {:#?}", t.entries))
}

fn pods(e: &rollouts_engine::TimelineEntry, role: Role) -> (i32, i32) {
    e.replica_sets
        .iter()
        .filter(|r| r.role == role)
        .map(|r| (r.desired, r.available))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

#[test]
fn canary_from_live_state_stops_at_the_indefinite_pause() {
    let (snap, next) = live(canary_steps());
    let t = simulate(
        &next,
        &Assumptions {
            pods_ready_after: Duration::from_secs(10),
            live: Some(snap),
            ..Assumptions::default()
        },
    );
    assert!(t.from_live);
    assert_eq!(t.strategy, "canary");
    assert_eq!(
        t.outcome,
        Outcome::WaitsForPromotion {
            reason: "CanaryPauseStep".into(),
            step_index: Some(3)
        }
    );
    // Step 1 (the timed pause) with 2 canary and 8 stable pods.
    let at_pause = find(&t, |e| e.step_index == Some(1) && e.pause.is_some());
    assert_eq!(pods(at_pause, Role::Canary), (2, 2));
    assert_eq!(pods(at_pause, Role::Stable), (8, 8));
    let pause = at_pause.pause.clone().unwrap();
    assert_eq!(pause.reason, "CanaryPauseStep");
    assert_eq!(pause.duration_seconds, Some(60));
    assert!(!pause.until_promoted);
    assert!(at_pause.elapsed_seconds >= 10, "pods take 10 s");
    // At setWeight 50, 5 and 5.
    let half = find(&t, |e| e.step_index == Some(3));
    assert_eq!(pods(half, Role::Canary), (5, 5));
    assert_eq!(pods(half, Role::Stable), (5, 5));
    let last = t.entries.last().unwrap();
    assert!(last.pause.as_ref().is_some_and(|p| p.until_promoted));
    // Two waits for pods of 10 s, and the 60 s pause.
    assert!(t.elapsed_seconds >= 80, "elapsed {}", t.elapsed_seconds);
    assert!(t.elapsed_seconds < 200, "elapsed {}", t.elapsed_seconds);
    // Events tell what happened.
    assert!(
        t.entries
            .iter()
            .flat_map(|e| &e.events)
            .any(|e| e.reason == "RolloutStepCompleted"
                && e.message == "Rollout step 2/4 completed (pause: 1m)")
    );
    // The worst case is unbounded (the indefinite pause) and lists every step.
    assert_eq!(t.worst_case_seconds, None);
    let labels: Vec<&str> = t.worst_case.iter().map(|b| b.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "step 0 (setWeight: 20): pods available (progressDeadlineSeconds)",
            "step 1 (pause: 1m)",
            "step 2 (setWeight: 50): pods available (progressDeadlineSeconds)",
            "step 3 (pause): until promoted",
            "new revision at full size (progressDeadlineSeconds)",
        ]
    );
    assert_eq!(t.worst_case[1].seconds, Some(60));
    assert_eq!(t.worst_case[0].seconds, Some(600));
}

#[test]
fn canary_with_assumed_promotion_completes() {
    let (snap, next) = live(canary_steps());
    let t = simulate(
        &next,
        &Assumptions {
            promote_after: Some(Duration::from_secs(300)),
            live: Some(snap),
            ..Assumptions::default()
        },
    );
    assert_eq!(t.outcome, Outcome::Completed);
    let promoted = find(&t, |e| !e.assumed.is_empty());
    assert_eq!(
        promoted.assumed,
        ["promoted 5m after the CanaryPauseStep pause started (assumed)"]
    );
    let last = t.entries.last().unwrap();
    assert_eq!(last.phase, "Healthy");
    assert_eq!(pods(last, Role::Stable), (10, 10));
    assert_eq!(pods(last, Role::Other), (0, 0));
    assert!(t.elapsed_seconds >= 360, "elapsed {}", t.elapsed_seconds);
}

#[test]
fn traffic_routed_canary_reports_weights_and_scale_down_delay() {
    let (snap, next) = live(canary_steps().traffic_routed());
    let t = simulate(
        &next,
        &Assumptions {
            promote_after: Some(Duration::from_secs(60)),
            live: Some(snap),
            ..Assumptions::default()
        },
    );
    assert_eq!(t.outcome, Outcome::Completed, "{:#?}", t.entries.last());
    let weights: Vec<i32> = t
        .entries
        .iter()
        .filter_map(|e| e.weights.first().map(|w| w.weight))
        .fold(Vec::new(), |mut v, w| {
            if v.last() != Some(&w) {
                v.push(w);
            }
            v
        });
    // 0 until the canary has an available pod, the steps, 100 before the promotion, 0 after.
    assert_eq!(weights, [0, 20, 50, 100, 0], "{weights:?}");
    assert!(
        t.entries
            .iter()
            .all(|e| e.weights.iter().all(|w| w.router == "fake"))
    );
    // The old stable ReplicaSet goes after the 30 s scale-down delay.
    assert_eq!(t.worst_case.last().unwrap().seconds, Some(30));
    let last = t.entries.last().unwrap();
    assert_eq!(pods(last, Role::Other), (0, 0));
}

#[test]
fn fresh_rollout_is_an_initial_deploy() {
    let t = simulate(&canary_steps().build(), &Assumptions::default());
    assert!(!t.from_live);
    assert_eq!(t.outcome, Outcome::Completed);
    let last = t.entries.last().unwrap();
    assert_eq!(pods(last, Role::Stable), (10, 10));
    assert_eq!(last.step_index, Some(4));
    assert_eq!(t.elapsed_seconds, 0, "pods ready at once, no step runs");
}

#[test]
fn blue_green_with_analysis_and_manual_promotion() {
    let builder = RolloutBuilder::blue_green("web")
        .replicas(4)
        .blue_green_field("autoPromotionEnabled", json!(false))
        .blue_green_field(
            "prePromotionAnalysis",
            json!({"templates": [{"templateName": "smoke"}]}),
        );
    let (snap, next) = live(builder);
    let t = simulate(
        &next,
        &Assumptions {
            pods_ready_after: Duration::from_secs(5),
            promote_after: Some(Duration::from_secs(120)),
            live: Some(snap),
            analysis_templates: vec![template(
                "smoke",
                json!([{"name": "ok", "interval": "30s", "count": 3, "initialDelay": "10s",
                        "provider": {"job": {"spec": {"template": {"spec": {"containers": []}}}}}}]),
            )],
            ..Assumptions::default()
        },
    );
    assert_eq!(t.strategy, "blueGreen");
    assert_eq!(t.outcome, Outcome::Completed, "{:#?}", t.entries.last());
    // The preview is up, the analysis runs, then the pause until the (assumed) promotion.
    let preview = find(&t, |e| pods(e, Role::Preview) == (4, 4));
    assert_eq!(pods(preview, Role::Active), (4, 4));
    let run = find(&t, |e| e.analyses.iter().any(|a| a.kind == "PrePromotion"));
    let finished = find(&t, |e| {
        e.analyses
            .iter()
            .any(|a| a.kind == "PrePromotion" && a.phase == "Successful")
    });
    assert_eq!(finished.elapsed_seconds - run.elapsed_seconds, 70);
    let paused = find(&t, |e| {
        e.pause
            .as_ref()
            .is_some_and(|p| p.reason == "BlueGreenPause")
    });
    assert!(paused.pause.as_ref().unwrap().until_promoted);
    assert!(t.elapsed_seconds >= 5 + 70 + 120);
    // The active Service ends on the new revision; the old one is gone after 30 s.
    let last = t.entries.last().unwrap();
    assert_eq!(pods(last, Role::Active), (4, 4));
    assert_eq!(pods(last, Role::Other), (0, 0));
    let active = last
        .services
        .iter()
        .find(|s| s.service == "web-active")
        .unwrap();
    assert_eq!(
        Some(&active.hash),
        last.replica_sets.first().map(|r| &r.hash)
    );
    // Worst case: pods, analysis (70 s), the manual pause (unbounded), scale-down delay.
    let labels: Vec<(&str, Option<u64>)> = t
        .worst_case
        .iter()
        .map(|b| (b.label.as_str(), b.seconds))
        .collect();
    assert_eq!(
        labels,
        [
            (
                "new ReplicaSet available (progressDeadlineSeconds)",
                Some(600)
            ),
            ("pre-promotion analysis (smoke)", Some(70)),
            ("BlueGreenPause until promoted", None),
            (
                "old ReplicaSet scale-down delay (scaleDownDelaySeconds)",
                Some(30)
            ),
        ]
    );
}

#[test]
fn blue_green_auto_promotion_has_a_bounded_worst_case() {
    let builder = RolloutBuilder::blue_green("web")
        .replicas(2)
        .blue_green_field("autoPromotionSeconds", json!(45));
    let (snap, next) = live(builder);
    let t = simulate(
        &next,
        &Assumptions {
            live: Some(snap),
            ..Assumptions::default()
        },
    );
    assert_eq!(t.outcome, Outcome::Completed);
    assert_eq!(t.worst_case_seconds, Some(600 + 45 + 30));
    let paused = find(&t, |e| e.pause.is_some());
    assert_eq!(paused.pause.as_ref().unwrap().duration_seconds, Some(45));
    // 45 s pause, then 30 s scale-down delay.
    assert!(t.elapsed_seconds >= 75, "elapsed {}", t.elapsed_seconds);
}

#[test]
fn failing_analysis_ends_aborted() {
    let builder = RolloutBuilder::canary("web")
        .replicas(4)
        .steps(json!([{"setWeight": 25}, {"analysis": {"templates": [{"templateName": "t"}]}}, {"setWeight": 75}]));
    let (snap, next) = live(builder);
    let t = simulate(
        &next,
        &Assumptions {
            analysis_outcome: "Failed".into(),
            live: Some(snap),
            ..Assumptions::default()
        },
    );
    match &t.outcome {
        Outcome::Aborted { message } => assert!(
            message.starts_with(
                "Rollout aborted update to revision 2: Step-based analysis phase error/failed"
            ),
            "{message}"
        ),
        other => panic!("unexpected outcome {other:?}"),
    }
    let last = t.entries.last().unwrap();
    assert_eq!(last.phase, "Degraded");
    assert_eq!(pods(last, Role::Canary).0, 0, "canary scaled back down");
}

#[test]
fn inconclusive_analysis_waits_for_promotion() {
    let builder = RolloutBuilder::blue_green("web")
        .replicas(2)
        .blue_green_field(
            "prePromotionAnalysis",
            json!({"templates": [{"templateName": "t"}]}),
        );
    let (snap, next) = live(builder);
    let t = simulate(
        &next,
        &Assumptions {
            analysis_outcome: "Inconclusive".into(),
            live: Some(snap),
            ..Assumptions::default()
        },
    );
    assert_eq!(
        t.outcome,
        Outcome::WaitsForPromotion {
            reason: "InconclusiveAnalysisRun".into(),
            step_index: None
        }
    );
}

#[test]
fn an_invalid_spec_is_reported() {
    let ro = RolloutBuilder::canary("web")
        .steps(json!([{"setWeight": 200}]))
        .build();
    let t = simulate(&ro, &Assumptions::default());
    match &t.outcome {
        Outcome::InvalidSpec { message } => assert!(message.contains("SetWeight"), "{message}"),
        other => panic!("unexpected outcome {other:?}"),
    }
}

#[test]
fn timeline_serializes_for_json_output() {
    let (snap, next) = live(canary_steps());
    let t = simulate(
        &next,
        &Assumptions {
            live: Some(snap),
            ..Assumptions::default()
        },
    );
    let v = serde_json::to_value(&t).unwrap();
    assert_eq!(v["strategy"], "canary");
    assert_eq!(v["outcome"]["type"], "waitsForPromotion");
    assert_eq!(v["outcome"]["reason"], "CanaryPauseStep");
    assert_eq!(v["worstCaseSeconds"], serde_json::Value::Null);
    let entry = &v["entries"][1];
    assert!(entry["elapsedSeconds"].is_u64());
    assert!(entry["replicaSets"][0]["role"].is_string());
    assert!(v["entries"].as_array().unwrap().iter().any(|e| {
        e["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|ev| ev["type"] == "Normal")
    }));
}

#[test]
fn simulation_is_deterministic() {
    let (snap, next) = live(canary_steps().traffic_routed());
    let a = Assumptions {
        pods_ready_after: Duration::from_secs(7),
        promote_after: Some(Duration::from_secs(30)),
        live: Some(snap),
        ..Assumptions::default()
    };
    assert_eq!(simulate(&next, &a), simulate(&next, &a));
}
