//! Scenario tests for traffic-routed canaries, analysis, experiments and deadlines.

use std::time::Duration;

use rollouts_engine::{Effect, TrafficOp};
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

fn deployed(builder: RolloutBuilder) -> World {
    let mut w = World::new(builder.build());
    assert!(
        w.run_until(30, TICK, healthy),
        "initial deploy: {:?}",
        w.status()
    );
    w
}

fn weight(w: &World) -> Option<i32> {
    w.status()
        .canary
        .and_then(|c| c.weights)
        .map(|w| w.canary.weight)
}

#[test]
fn traffic_routed_canary_sets_weights_and_keeps_stable_full() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(10)
            .traffic_routed()
            .steps(json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}])),
    );
    assert_eq!(weight(&w), Some(0));
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, paused), "{:?}", w.status());
    assert_eq!(w.counts(2), (2, 2));
    assert_eq!(
        w.counts(1),
        (10, 10),
        "stable stays at 100% for an instant abort"
    );
    assert_eq!(weight(&w), Some(20));
    assert_eq!(w.router_weights.get("fake"), Some(&20));
    let weights = w.status().canary.unwrap().weights.unwrap();
    assert_eq!(weights.stable.weight, 80);
    assert_eq!(weights.canary.service_name.as_deref(), Some("web-canary"));
    assert!(w.events.iter().any(|e| e.reason == "TrafficWeightUpdated"
        && e.message == "Traffic weight updated from 0 to 20"));
    // The canary Service points at the canary, the stable one at the stable revision.
    let canary_hash = w.rs_by_revision(2).unwrap().hash().to_string();
    let stable_hash = w.rs_by_revision(1).unwrap().hash().to_string();
    let svc = |w: &World, name: &str| {
        w.services
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .selected_hash()
            .to_string()
    };
    assert_eq!(svc(&w, "web-canary"), canary_hash);
    assert_eq!(svc(&w, "web-stable"), stable_hash);
    w.promote();
    assert!(w.run_until(40, TICK, |w| paused(w)
        && w.status().current_step_index == Some(3)));
    assert_eq!(weight(&w), Some(60));
    assert_eq!(w.counts(2), (6, 6));
    w.promote();
    assert!(
        w.run_until(60, TICK, |w| healthy(w) && weight(w) == Some(0)),
        "{:?}",
        w.status()
    );
    // After promotion the stable Service moved and traffic went back to "stable" (the new one).
    assert_eq!(svc(&w, "web-stable"), canary_hash);
    // Once no status field or Service refers to it any more, the previous stable waits for its
    // scale-down deadline (30 s by default).
    for _ in 0..2 {
        w.reconcile();
        w.tick(TICK);
    }
    assert_eq!(w.counts(1).0, 10);
    assert!(
        w.rs_by_revision(1)
            .unwrap()
            .annotations
            .contains_key("scale-down-deadline")
    );
    assert!(
        w.run_until(60, Duration::from_secs(5), |w| w.counts(1).0 == 0),
        "{:?}",
        w.replica_sets
    );
}

#[test]
fn converged_rollout_plans_no_effect() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(3)
            .traffic_routed()
            .steps(json!([{"setWeight": 50}])),
    );
    for _ in 0..3 {
        w.reconcile();
        w.tick(TICK);
    }
    let plan = w.reconcile();
    assert!(plan.effects.is_empty(), "{:?}", plan.effects);
    assert_eq!(plan.status, w.status());
    // With reassert_traffic the routers are told again, as Argo does on every sync.
    w.config.reassert_traffic = true;
    let plan = w.reconcile();
    assert!(
        plan.effects
            .iter()
            .all(|e| matches!(e, Effect::Traffic { .. }))
    );
    assert!(plan.effects.iter().any(|e| matches!(
        e,
        Effect::Traffic {
            op: TrafficOp::SetWeight { weight: 0, .. },
            ..
        }
    )));
}

#[test]
fn abort_with_traffic_routing_keeps_canary_until_stable_is_available() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(4)
            .traffic_routed()
            .canary_field("abortScaleDownDelaySeconds", json!(10))
            .steps(json!([{"setWeight": 50}, {"pause": {}}])),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, paused));
    w.abort();
    assert!(w.run_until(5, Duration::ZERO, |w| weight(w) == Some(0)));
    assert_eq!(w.router_weights.get("fake"), Some(&0));
    assert_eq!(w.counts(2).0, 2, "canary kept during the abort delay");
    assert!(
        w.rs_by_revision(2)
            .unwrap()
            .annotations
            .contains_key("scale-down-deadline")
    );
    assert!(
        w.run_until(30, Duration::from_secs(2), |w| w.counts(2).0 == 0),
        "{:?}",
        w.replica_sets
    );
    assert_eq!(w.phase(), "Degraded");
}

#[test]
fn abort_scale_down_delay_zero_keeps_canary() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(4)
            .traffic_routed()
            .canary_field("abortScaleDownDelaySeconds", json!(0))
            .steps(json!([{"setCanaryScale": {"replicas": 2}}, {"setWeight": 50}, {"pause": {}}])),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, paused));
    w.abort();
    for _ in 0..20 {
        w.reconcile();
        w.tick(Duration::from_secs(10));
    }
    assert_eq!(w.counts(2).0, 2);
    assert_eq!(weight(&w), Some(0));
}

#[test]
fn dynamic_stable_scale_shrinks_stable_and_steps_back_on_abort() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(10)
            .traffic_routed()
            .canary_field("dynamicStableScale", json!(true))
            .steps(json!([{"setWeight": 30}, {"pause": {}}, {"setWeight": 80}, {"pause": {}}])),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, paused));
    w.promote();
    assert!(w.run_until(40, TICK, |w| paused(w)
        && w.status().current_step_index == Some(3)));
    for _ in 0..5 {
        w.reconcile();
        w.tick(TICK);
    }
    assert_eq!(w.counts(2), (8, 8));
    assert_eq!(w.counts(1).0, 2, "stable follows the traffic down");
    w.abort();
    let mut weights_seen = Vec::new();
    for _ in 0..40 {
        w.reconcile();
        w.tick(TICK);
        if let Some(x) = weight(&w)
            && weights_seen.last() != Some(&x)
        {
            weights_seen.push(x);
        }
    }
    assert_eq!(weights_seen.last(), Some(&0));
    assert!(
        weights_seen.contains(&30),
        "stepped back through setWeight 30: {weights_seen:?}"
    );
    assert_eq!(w.counts(1), (10, 10));
    assert_eq!(w.counts(2).0, 0);
}

#[test]
fn analysis_step_success_and_failure() {
    let builder = RolloutBuilder::canary("web").replicas(2).steps(
        json!([{"setWeight": 50}, {"analysis": {"templates": [{"templateName": "success-rate"}]}}]),
    );
    let mut w = deployed(builder.clone());
    w.set_image("nginx:2");
    assert!(
        w.run_until(40, TICK, |w| !w.analysis_runs.is_empty()),
        "{:?}",
        w.status()
    );
    let run = w.analysis_runs[0].clone();
    assert_eq!(
        run.labels.get("rollout-type").map(String::as_str),
        Some("Step")
    );
    assert_eq!(run.labels.get("step-index").map(String::as_str), Some("1"));
    assert_eq!(
        run.name,
        format!("web-{}-2-1", w.rs_by_revision(2).unwrap().hash())
    );
    assert!(
        w.status()
            .canary
            .unwrap()
            .current_step_analysis_run_status
            .is_some()
    );
    w.set_run_phase(&run.name, "Successful", "");
    assert!(w.run_until(40, TICK, healthy), "{:?}", w.status());
    assert!(w.events.iter().any(|e| e.reason == "AnalysisRunSuccessful"));

    let mut w = deployed(builder);
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, |w| !w.analysis_runs.is_empty()));
    let run = w.analysis_runs[0].name.clone();
    w.set_run_phase(&run, "Failed", "Metric \"m\" assessed Failed");
    assert!(
        w.run_until(40, TICK, |w| w.phase() == "Degraded"),
        "{:?}",
        w.status()
    );
    let msg = w.status().message.unwrap();
    assert_eq!(
        msg,
        "RolloutAborted: Rollout aborted update to revision 2: Step-based analysis phase error/failed: Metric \"m\" assessed Failed"
    );
    assert!(w.run_until(40, TICK, |w| w.counts(2).0 == 0));
    assert!(
        w.events
            .iter()
            .any(|e| e.reason == "AnalysisRunFailed"
                && e.type_ == rollouts_engine::EventType::Warning)
    );
}

#[test]
fn inconclusive_analysis_pauses_until_resumed() {
    let mut w =
        deployed(RolloutBuilder::canary("web").replicas(2).steps(
            json!([{"setWeight": 50}, {"analysis": {"templates": [{"templateName": "t"}]}}]),
        ));
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, |w| !w.analysis_runs.is_empty()));
    let run = w.analysis_runs[0].name.clone();
    w.set_run_phase(&run, "Inconclusive", "");
    assert!(w.run_until(10, TICK, paused));
    assert_eq!(
        w.status().message.as_deref(),
        Some("InconclusiveAnalysisRun")
    );
    // Resuming creates a new run.
    w.promote();
    assert!(
        w.run_until(10, TICK, |w| w.analysis_runs.len() == 2),
        "{:?}",
        w.status()
    );
    let second = w.analysis_runs[1].name.clone();
    assert!(second.ends_with(".1") || second != run);
    w.set_run_phase(&second, "Successful", "");
    assert!(w.run_until(40, TICK, healthy), "{:?}", w.status());
}

#[test]
fn background_analysis_starts_at_starting_step_and_is_terminated_on_promotion() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(2)
            .canary_field(
                "analysis",
                json!({"templates": [{"templateName": "bg"}], "startingStep": 1}),
            )
            .steps(json!([{"setWeight": 50}, {"pause": {}}])),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, paused));
    let bg: Vec<_> = w
        .analysis_runs
        .iter()
        .filter(|r| r.labels.get("rollout-type").map(String::as_str) == Some("Background"))
        .collect();
    assert_eq!(bg.len(), 1, "{:?}", w.analysis_runs);
    let name = bg[0].name.clone();
    w.promote();
    assert!(w.run_until(40, TICK, healthy));
    assert!(
        w.analysis_runs
            .iter()
            .find(|r| r.name == name)
            .is_some_and(|r| r.terminate)
    );
}

#[test]
fn background_analysis_failure_aborts() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(2)
            .canary_field("analysis", json!({"templates": [{"templateName": "bg"}]}))
            .steps(json!([{"setWeight": 50}, {"pause": {}}])),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, |w| !w.analysis_runs.is_empty()));
    let name = w.analysis_runs[0].name.clone();
    w.set_run_phase(&name, "Error", "");
    assert!(w.run_until(10, TICK, |w| w.phase() == "Degraded"));
    assert!(
        w.status()
            .message
            .unwrap()
            .ends_with("Background analysis phase error/failed")
    );
}

#[test]
fn experiment_step_runs_and_completes() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(2)
            .steps(json!([{"experiment": {"duration": "1m", "templates": [{"name": "baseline", "specRef": "stable"}, {"name": "canary", "specRef": "canary"}]}}])),
    );
    w.knobs.experiment_outcome = Some("Successful".into());
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, healthy), "{:?}", w.status());
    assert_eq!(w.experiments.len(), 1);
    assert!(w.events.iter().any(|e| e.reason == "ExperimentCreated"));
    assert!(
        w.events
            .iter()
            .any(|e| e.message == "Rollout step 1/1 completed (experiment)")
    );
}

#[test]
fn header_route_step_is_applied_and_removed() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(2)
            .traffic_routed()
            .canary_field("trafficRouting", json!({"plugins": {"fake": {}}, "managedRoutes": [{"name": "hdr"}]}))
            .steps(json!([{"setWeight": 10}, {"setHeaderRoute": {"name": "hdr", "match": [{"headerName": "x", "headerValue": {"exact": "1"}}]}}, {"pause": {}}])),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, paused));
    assert!(w.applied.iter().any(|e| matches!(
        e,
        Effect::Traffic {
            op: TrafficOp::SetHeaderRoute(_),
            ..
        }
    )));
    w.promote();
    assert!(w.run_until(40, TICK, healthy));
    assert!(w.applied.iter().any(|e| matches!(
        e,
        Effect::Traffic {
            op: TrafficOp::RemoveManagedRoutes,
            ..
        }
    )));
}

#[test]
fn unverified_weight_blocks_the_step() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(2)
            .traffic_routed()
            .steps(json!([{"setWeight": 50}, {"pause": {}}])),
    );
    w.knobs.routers_verify = true;
    w.set_image("nginx:2");
    // Verification arrives on the next tick; the step completes after it.
    assert!(w.run_until(40, TICK, paused), "{:?}", w.status());
    assert!(w.applied.iter().any(|e| matches!(
        e,
        Effect::Traffic {
            op: TrafficOp::VerifyWeight { weight: 50, .. },
            ..
        }
    )));
    assert_eq!(
        w.status().canary.unwrap().weights.unwrap().verified,
        Some(true)
    );
}

#[test]
fn progress_deadline_exceeded_marks_degraded_and_abort_option_aborts() {
    let builder = RolloutBuilder::canary("web")
        .replicas(2)
        .spec_field("progressDeadlineSeconds", json!(30))
        .steps(json!([{"setWeight": 50}, {"pause": {}}]));
    let mut w = deployed(builder.clone());
    w.set_image("nginx:2");
    let newest = |w: &World| {
        w.replica_sets
            .iter()
            .max_by_key(|r| r.revision())
            .unwrap()
            .hash()
            .to_string()
    };
    w.reconcile();
    w.knobs.broken_hashes.insert(newest(&w));
    assert!(
        w.run_until(60, Duration::from_secs(5), |w| w.phase() == "Degraded"),
        "{:?}",
        w.status()
    );
    let prog = w
        .status()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(prog.reason, "ProgressDeadlineExceeded");
    assert_eq!(w.status().abort, None);

    let mut w = deployed(builder.spec_field("progressDeadlineAbort", json!(true)));
    w.set_image("nginx:2");
    w.reconcile();
    w.knobs.broken_hashes.insert(newest(&w));
    assert!(
        w.run_until(60, Duration::from_secs(5), |w| w.status().abort
            == Some(true)),
        "{:?}",
        w.status()
    );
    assert!(
        w.status()
            .message
            .unwrap()
            .contains("has timed out progressing")
    );
}

#[test]
fn plugin_step_is_reported_as_unsupported() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(1)
            .steps(json!([{"plugin": {"name": "acme/step"}}])),
    );
    w.set_image("nginx:2");
    assert!(
        w.run_until(20, TICK, |w| w.phase() == "Degraded"),
        "{:?}",
        w.status()
    );
    assert!(
        w.status()
            .message
            .unwrap()
            .contains("Step plugin acme/step (step 0) is not supported in this build")
    );
}

#[test]
fn set_canary_scale_controls_canary_pods() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(10)
            .traffic_routed()
            .steps(json!([{"setCanaryScale": {"replicas": 3}}, {"setWeight": 10}, {"pause": {}}, {"setCanaryScale": {"matchTrafficWeight": true}}, {"pause": {}}])),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, |w| paused(w)
        && w.status().current_step_index == Some(2)));
    assert_eq!(w.counts(2), (3, 3));
    assert_eq!(weight(&w), Some(10));
    w.promote();
    assert!(w.run_until(40, TICK, |w| paused(w)
        && w.status().current_step_index == Some(4)));
    assert_eq!(w.counts(2), (1, 1));
}

#[test]
fn changing_steps_mid_update_resets_the_step_index() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(4)
            .steps(json!([{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}])),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, paused));
    w.promote();
    assert!(w.run_until(40, TICK, |w| paused(w)
        && w.status().current_step_index == Some(3)));
    let old_hash = w.status().current_step_hash.clone();
    if let Some(c) = w
        .rollout
        .spec
        .strategy
        .as_mut()
        .and_then(|s| s.canary.as_mut())
    {
        c.steps = serde_json::from_value(json!([{"setWeight": 75}, {"pause": {}}])).ok();
    }
    w.bump_generation();
    w.reconcile();
    assert_eq!(w.status().current_step_index, Some(0));
    assert_ne!(w.status().current_step_hash, old_hash);
    assert!(w.run_until(40, TICK, |w| paused(w)
        && w.status().current_step_index == Some(1)));
    assert_eq!(w.counts(2), (3, 3));
}

#[test]
fn ping_pong_swaps_roles_on_promotion() {
    let mut w = World::new(
        RolloutBuilder::canary("web")
            .replicas(2)
            .canary_field(
                "pingPong",
                json!({"pingService": "web-ping", "pongService": "web-pong"}),
            )
            .canary_field("trafficRouting", json!({"plugins": {"fake": {}}}))
            .steps(json!([{"setWeight": 50}, {"pause": {}}]))
            .build(),
    );
    for name in ["web-ping", "web-pong"] {
        w.services.push(rollouts_engine::ServiceView {
            name: name.into(),
            selector: [("app".to_string(), "web".to_string())].into(),
            annotations: Default::default(),
        });
    }
    assert!(w.run_until(30, TICK, healthy), "{:?}", w.status());
    // The initial deploy is a promotion too: pong becomes the stable side.
    assert_eq!(
        w.status().canary.unwrap().stable_ping_pong.as_deref(),
        Some("pong")
    );
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, paused));
    let canary_hash = w.rs_by_revision(2).unwrap().hash().to_string();
    let ping = w.services.iter().find(|s| s.name == "web-ping").unwrap();
    assert_eq!(
        ping.selected_hash(),
        canary_hash,
        "ping serves the canary while pong is stable"
    );
    w.promote();
    assert!(w.run_until(40, TICK, healthy));
    assert_eq!(
        w.status().canary.unwrap().stable_ping_pong.as_deref(),
        Some("ping")
    );
}

#[test]
fn experiment_weights_are_added_as_destinations() {
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(2)
            .traffic_routed()
            .steps(json!([{"setWeight": 20}, {"experiment": {"templates": [{"name": "exp", "specRef": "canary", "weight": 5}]}}, {"pause": {}}])),
    );
    w.set_image("nginx:2");
    assert!(
        w.run_until(40, TICK, |w| !w.experiments.is_empty()),
        "{:?}",
        w.status()
    );
    let name = w.experiments[0].name.clone();
    if let Some(e) = w.experiments.iter_mut().find(|e| e.name == name) {
        e.phase = "Running".into();
        e.templates = vec![rollouts_engine::ExperimentTemplateView {
            name: "exp".into(),
            service_name: "exp-svc".into(),
            pod_template_hash: "h".into(),
        }];
    }
    assert!(w.run_until(5, TICK, |w| {
        w.status()
            .canary
            .and_then(|c| c.weights)
            .is_some_and(|wt| wt.additional.is_some())
    }));
    let weights = w.status().canary.unwrap().weights.unwrap();
    assert_eq!(weights.canary.weight, 20);
    assert_eq!(weights.stable.weight, 75);
    assert_eq!(weights.additional.unwrap()[0].weight, 5);
    assert!(
        w.events
            .iter()
            .any(|e| e.message.contains("additional: [{5 exp-svc h}]"))
    );
}

#[test]
fn requeue_follows_deadlines() {
    // A scale-down deadline: look again when it passes.
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(2)
            .traffic_routed()
            .steps(json!([{"setWeight": 50}])),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(40, TICK, healthy));
    let mut requeues = Vec::new();
    for _ in 0..4 {
        let plan = w.reconcile();
        requeues.push(plan.requeue_after);
        w.tick(TICK);
    }
    assert!(
        requeues
            .iter()
            .flatten()
            .any(|d| *d <= Duration::from_secs(30) && *d >= Duration::from_secs(25)),
        "{requeues:?}"
    );

    // A stuck update: look again when the progress deadline passes.
    let mut w = deployed(
        RolloutBuilder::canary("web")
            .replicas(2)
            .spec_field("progressDeadlineSeconds", json!(120)),
    );
    w.set_image("nginx:2");
    w.reconcile();
    let newest = w
        .replica_sets
        .iter()
        .max_by_key(|r| r.revision())
        .unwrap()
        .hash()
        .to_string();
    w.knobs.broken_hashes.insert(newest);
    for _ in 0..5 {
        w.reconcile();
        w.tick(TICK);
    }
    let plan = w.reconcile();
    let after = plan
        .requeue_after
        .expect("requeue at the progress deadline");
    assert!(
        after <= Duration::from_secs(121) && after >= Duration::from_secs(110),
        "{after:?}"
    );
}
