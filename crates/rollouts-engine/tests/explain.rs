//! `explain`: one row per gate. Each row drives a Rollout through the simulator to the state
//! the gate describes, then checks the gate, its data, the release and the sentence.

use std::time::Duration;

use rollouts_api::WeightDestination;
use rollouts_engine::explain::MetricGate;
use rollouts_engine::{
    Gate, MeasurementView, MetricView, RouterReport, Snapshot, WeightVerification, explain,
};
use rollouts_test_support::fixtures::RolloutBuilder;
use rollouts_test_support::sim::World;
use serde_json::json;

const TICK: Duration = Duration::from_secs(1);

fn healthy(w: &World) -> bool {
    w.phase() == "Healthy"
}

fn deployed(builder: RolloutBuilder) -> World {
    let mut w = World::new(builder.build());
    assert!(w.run_until(40, TICK, healthy), "{:?}", w.status());
    for _ in 0..3 {
        w.reconcile();
        w.tick(TICK);
    }
    w
}

fn canary(steps: serde_json::Value) -> RolloutBuilder {
    RolloutBuilder::canary("web").replicas(4).steps(steps)
}

fn analysis_step() -> serde_json::Value {
    json!([{"setWeight": 25}, {"analysis": {"templates": [{"templateName": "rate"}]}}])
}

fn until(w: &mut World, f: impl Fn(&World) -> bool) {
    assert!(
        w.run_until(60, TICK, f),
        "condition not reached: {:?}",
        w.status()
    );
}

// --- one function per gate --------------------------------------------------------------------

fn healthy_rollout() -> Snapshot {
    deployed(canary(json!([{"setWeight": 50}]))).snapshot()
}

fn invalid_spec() -> Snapshot {
    let mut w = World::new(canary(json!([{"setWeight": 200}])).build());
    w.reconcile();
    w.snapshot()
}

fn spec_not_observed() -> Snapshot {
    let mut w = deployed(canary(json!([{"setWeight": 50}])));
    w.set_image("nginx:2");
    w.snapshot()
}

fn aborted() -> Snapshot {
    let mut w = deployed(canary(json!([{"setWeight": 50}, {"pause": {}}])));
    w.set_image("nginx:2");
    until(&mut w, |w| w.phase() == "Paused");
    w.abort();
    until(&mut w, |w| w.phase() == "Degraded");
    w.snapshot()
}

fn deadline_exceeded() -> Snapshot {
    let mut w = deployed(
        canary(json!([{"setWeight": 50}])).spec_field("progressDeadlineSeconds", json!(5)),
    );
    w.set_image("nginx:2");
    w.reconcile();
    w.reconcile();
    let broken = w.status().current_pod_hash.unwrap();
    w.knobs.broken_hashes.insert(broken);
    until(&mut w, |w| w.phase() == "Degraded");
    w.snapshot()
}

fn paused_by_user() -> Snapshot {
    let mut w = deployed(canary(json!([{"setWeight": 50}])));
    w.set_paused(true);
    w.reconcile();
    w.reconcile();
    w.snapshot()
}

fn paused_indefinitely() -> Snapshot {
    let mut w = deployed(canary(json!([{"setWeight": 50}, {"pause": {}}])));
    w.set_image("nginx:2");
    until(&mut w, |w| w.phase() == "Paused");
    w.snapshot()
}

fn paused_timed() -> Snapshot {
    let mut w = deployed(canary(
        json!([{"setWeight": 50}, {"pause": {"duration": "1h"}}]),
    ));
    w.set_image("nginx:2");
    until(&mut w, |w| w.phase() == "Paused");
    w.snapshot()
}

fn blue_green_manual() -> Snapshot {
    let mut w = deployed(
        RolloutBuilder::blue_green("web").blue_green_field("autoPromotionEnabled", json!(false)),
    );
    w.set_image("nginx:2");
    until(&mut w, |w| w.phase() == "Paused");
    w.snapshot()
}

fn blue_green_auto() -> Snapshot {
    let mut w = deployed(
        RolloutBuilder::blue_green("web").blue_green_field("autoPromotionSeconds", json!(120)),
    );
    w.set_image("nginx:2");
    until(&mut w, |w| w.phase() == "Paused");
    w.snapshot()
}

fn inconclusive_analysis() -> Snapshot {
    let mut w = deployed(RolloutBuilder::blue_green("web").blue_green_field(
        "prePromotionAnalysis",
        json!({"templates": [{"templateName": "rate"}]}),
    ));
    w.knobs.analysis_outcome = Some("Inconclusive".into());
    w.set_image("nginx:2");
    until(&mut w, |w| w.phase() == "Paused");
    w.snapshot()
}

fn inconclusive_experiment() -> Snapshot {
    let mut w = deployed(canary(json!([
        {"setWeight": 25},
        {"experiment": {"templates": [{"name": "c", "specRef": "canary"}]}}
    ])));
    w.knobs.experiment_outcome = Some("Inconclusive".into());
    w.set_image("nginx:2");
    until(&mut w, |w| w.phase() == "Paused");
    w.snapshot()
}

fn running_analysis() -> Snapshot {
    let mut w = deployed(canary(analysis_step()));
    w.set_image("nginx:2");
    until(&mut w, |w| !w.analysis_runs.is_empty());
    let mut snap = w.snapshot();
    snap.analysis_runs[0].phase = "Running".into();
    snap.analysis_runs[0].metrics = vec![
        MetricView {
            name: "errors".into(),
            phase: "Successful".into(),
            success_condition: "result == 0".into(),
            count: 1,
            ..Default::default()
        },
        MetricView {
            name: "latency".into(),
            phase: "Running".into(),
            success_condition: "result[0] < 0.3".into(),
            failure_condition: "result[0] > 1".into(),
            count: 2,
            failed: 0,
            last: Some(MeasurementView {
                value: "[0.42]".into(),
                phase: "Inconclusive".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    snap
}

fn blue_green_analysis(field: &str) -> Snapshot {
    let mut w = deployed(
        RolloutBuilder::blue_green("web")
            .blue_green_field(field, json!({"templates": [{"templateName": "rate"}]})),
    );
    w.set_image("nginx:2");
    until(&mut w, |w| !w.analysis_runs.is_empty());
    w.reconcile();
    w.snapshot()
}

fn pre_promotion_running() -> Snapshot {
    blue_green_analysis("prePromotionAnalysis")
}

fn post_promotion_running() -> Snapshot {
    blue_green_analysis("postPromotionAnalysis")
}

fn running_experiment() -> Snapshot {
    let mut w = deployed(canary(json!([
        {"setWeight": 25},
        {"experiment": {"duration": "10m", "templates": [{"name": "c", "specRef": "canary"}]}}
    ])));
    w.set_image("nginx:2");
    until(&mut w, |w| !w.experiments.is_empty());
    for _ in 0..3 {
        w.reconcile();
        w.tick(TICK);
    }
    w.snapshot()
}

fn weight_unverified() -> Snapshot {
    let mut w = deployed(canary(json!([{"setWeight": 50}, {"pause": {}}])).traffic_routed());
    w.set_image("nginx:2");
    until(&mut w, |w| {
        w.status()
            .canary
            .and_then(|c| c.weights)
            .is_some_and(|x| x.canary.weight == 50)
    });
    let mut snap = w.snapshot();
    let status = snap.rollout.status.as_mut().unwrap();
    let weights = status.canary.as_mut().unwrap().weights.as_mut().unwrap();
    weights.verified = Some(false);
    weights.canary = WeightDestination {
        weight: 50,
        ..weights.canary.clone()
    };
    status.pause_conditions = None;
    snap.routers = vec![RouterReport {
        router: "fake".into(),
        verifies_weight: true,
        last: Some(WeightVerification {
            weight: 20,
            verified: true,
        }),
    }];
    snap
}

fn pods_not_available() -> Snapshot {
    let mut w = deployed(canary(json!([{"setWeight": 100}])).replicas(6));
    w.knobs.ready_per_tick = Some(1);
    w.set_image("nginx:2");
    until(&mut w, |w| w.counts(2).0 > 0 && w.counts(2).1 == 1);
    w.reconcile();
    w.snapshot()
}

fn scale_down_delay() -> Snapshot {
    let mut w = deployed(
        RolloutBuilder::blue_green("web").blue_green_field("scaleDownDelaySeconds", json!(300)),
    );
    w.set_image("nginx:2");
    until(&mut w, |w| {
        w.rs_by_revision(1)
            .is_some_and(|r| r.annotations.contains_key("scale-down-deadline"))
    });
    w.reconcile();
    w.snapshot()
}

// --- the table ----------------------------------------------------------------------------------

struct Row {
    name: &'static str,
    snapshot: fn() -> Snapshot,
    gate: &'static str,
    sentence: &'static str,
    release: &'static str,
    has_since: bool,
}

#[test]
fn each_gate() {
    let rows = [
        Row {
            name: "healthy",
            snapshot: healthy_rollout,
            gate: "none",
            sentence: "Nothing holds the rollout: it is healthy.",
            release: "",
            has_since: false,
        },
        Row {
            name: "invalid",
            snapshot: invalid_spec,
            gate: "invalidSpec",
            sentence: "The spec is invalid: spec.strategy.canary.steps[0].setWeight: Invalid value: 200",
            release: "a corrected spec",
            has_since: true,
        },
        Row {
            name: "not observed",
            snapshot: spec_not_observed,
            gate: "specNotObserved",
            sentence: "has not yet observed generation 2",
            release: "next reconciliation",
            has_since: false,
        },
        Row {
            name: "aborted",
            snapshot: aborted,
            gate: "aborted",
            sentence: "The rollout was aborted: Rollout aborted update to revision 2.",
            release: "`kubectl argo rollouts retry rollout web`, or a new revision",
            has_since: true,
        },
        Row {
            name: "deadline",
            snapshot: deadline_exceeded,
            gate: "progressDeadlineExceeded",
            sentence: "has timed out progressing.",
            release: "`kubectl argo rollouts abort web`",
            has_since: true,
        },
        Row {
            name: "user pause",
            snapshot: paused_by_user,
            gate: "pausedByUser",
            sentence: "paused by the user (spec.paused)",
            release: "`kubectl argo rollouts promote web`",
            has_since: true,
        },
        Row {
            name: "indefinite pause",
            snapshot: paused_indefinitely,
            gate: "pausedAtStep",
            sentence: "The rollout is paused at step 1 (pause) until promoted: run `kubectl argo rollouts promote web`.",
            release: "`kubectl argo rollouts promote web`",
            has_since: true,
        },
        Row {
            name: "timed pause",
            snapshot: paused_timed,
            gate: "pausedAtStep",
            sentence: "paused at step 1 (pause: 1h) until 2023-",
            release: "the end of the pause at 2023-",
            has_since: true,
        },
        Row {
            name: "blue-green manual",
            snapshot: blue_green_manual,
            gate: "blueGreenPromotion",
            sentence: "waits for promotion before the active Service switches: run `kubectl argo rollouts promote web`.",
            release: "`kubectl argo rollouts promote web`",
            has_since: true,
        },
        Row {
            name: "blue-green auto",
            snapshot: blue_green_auto,
            gate: "blueGreenPromotion",
            sentence: "the active Service switches at 2023-",
            release: "auto-promotion at 2023-",
            has_since: true,
        },
        Row {
            name: "inconclusive analysis",
            snapshot: inconclusive_analysis,
            gate: "inconclusiveAnalysis",
            sentence: "-pre was inconclusive",
            release: "`kubectl argo rollouts promote web`",
            has_since: true,
        },
        Row {
            name: "inconclusive experiment",
            snapshot: inconclusive_experiment,
            gate: "inconclusiveExperiment",
            sentence: "Experiment web-779d85787c-2-1 was inconclusive",
            release: "`kubectl argo rollouts promote web`",
            has_since: true,
        },
        Row {
            name: "analysis",
            snapshot: running_analysis,
            gate: "analysis",
            sentence: "metric latency (success when result[0] < 0.3), last measured [0.42] (Inconclusive) after 2 measurements.",
            release: "completing successfully",
            has_since: true,
        },
        Row {
            name: "pre-promotion",
            snapshot: pre_promotion_running,
            gate: "analysis",
            sentence: "Waiting for the pre-promotion analysis web-779d85787c-2-pre",
            release: "completing successfully",
            has_since: true,
        },
        Row {
            name: "post-promotion",
            snapshot: post_promotion_running,
            gate: "analysis",
            sentence: "Waiting for the post-promotion analysis web-779d85787c-2-post",
            release: "completing successfully",
            has_since: true,
        },
        Row {
            name: "experiment",
            snapshot: running_experiment,
            gate: "experiment",
            sentence: "Waiting for experiment web-",
            release: "completing successfully",
            has_since: true,
        },
        Row {
            name: "weight verification",
            snapshot: weight_unverified,
            gate: "trafficWeightVerification",
            sentence: "Waiting for router fake to confirm the canary weight 50 (last verified: 20).",
            release: "router fake confirming weight 50",
            has_since: true,
        },
        Row {
            name: "pods",
            snapshot: pods_not_available,
            gate: "replicaSetAvailability",
            sentence: "(canary): 1 of 3 pods available",
            release: "3 pods of web-",
            has_since: true,
        },
        Row {
            name: "scale-down delay",
            snapshot: scale_down_delay,
            gate: "scaleDownDelay",
            sentence: "keeps its 1 pod until",
            release: "the scale-down deadline at",
            has_since: false,
        },
    ];
    for row in rows {
        let snap = (row.snapshot)();
        let b = explain(&snap);
        assert_eq!(b.gate.name(), row.gate, "{}: {b:?}", row.name);
        assert!(
            b.sentence.contains(row.sentence),
            "{}: sentence {:?}",
            row.name,
            b.sentence
        );
        assert!(
            b.release.contains(row.release),
            "{}: release {:?}",
            row.name,
            b.release
        );
        if row.release.is_empty() {
            assert!(
                b.release.is_empty(),
                "{}: release {:?}",
                row.name,
                b.release
            );
        }
        assert_eq!(
            b.since.is_some(),
            row.has_since,
            "{}: since {:?}",
            row.name,
            b.since
        );
        // Every blocker serializes with its gate tag.
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["gate"]["gate"], row.gate, "{}", row.name);
    }
}

#[test]
fn gate_data() {
    match explain(&running_analysis()).gate {
        Gate::Analysis {
            run,
            kind,
            phase,
            metric,
        } => {
            assert!(run.ends_with("-2-1"), "{run}");
            assert_eq!(kind, "Step");
            assert_eq!(phase, "Running");
            assert_eq!(
                metric,
                Some(MetricGate {
                    name: "latency".into(),
                    phase: "Running".into(),
                    success_condition: "result[0] < 0.3".into(),
                    failure_condition: "result[0] > 1".into(),
                    count: 2,
                    last_value: Some("[0.42]".into()),
                    last_phase: Some("Inconclusive".into()),
                })
            );
        }
        other => panic!("{other:?}"),
    }
    match explain(&pods_not_available()).gate {
        Gate::ReplicaSetAvailability {
            available,
            desired,
            role,
            deadline,
            ..
        } => {
            // The basic canary surges 25 % at a time: 3 pods wanted now.
            assert_eq!((available, desired), (1, 3));
            assert_eq!(role, "canary");
            assert!(deadline.is_some());
        }
        other => panic!("{other:?}"),
    }
    let snap = paused_timed();
    let start = snap
        .rollout
        .status
        .as_ref()
        .unwrap()
        .pause_conditions
        .as_ref()
        .unwrap()[0]
        .start_time
        .0;
    match explain(&snap).gate {
        Gate::PausedAtStep {
            step_index,
            step,
            until,
        } => {
            assert_eq!(step_index, 1);
            assert_eq!(step, "pause: 1h");
            assert_eq!(until, Some(start + jiff::SignedDuration::from_hours(1)));
        }
        other => panic!("{other:?}"),
    }
    let snap = blue_green_auto();
    let b = explain(&snap);
    let start = snap
        .rollout
        .status
        .as_ref()
        .unwrap()
        .pause_conditions
        .as_ref()
        .unwrap()[0]
        .start_time
        .0;
    assert_eq!(b.since, Some(start));
    assert_eq!(
        b.gate,
        Gate::BlueGreenPromotion {
            auto_promotion_at: Some(start + jiff::SignedDuration::from_secs(120))
        }
    );
}

#[test]
fn analysis_run_view_from_an_analysis_run() {
    let run: rollouts_api::AnalysisRun = rollouts_api::decode(&json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "r", "namespace": "default", "labels": {"rollout-type": "Step"},
                     "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"metrics": [
            {"name": "m", "successCondition": "result > 1", "provider": {"web": {"url": "http://x"}}}
        ]},
        "status": {"phase": "Running", "metricResults": [
            {"name": "m", "phase": "Running", "count": 3, "failed": 1, "measurements": [
                {"phase": "Successful", "value": "2"},
                {"phase": "Failed", "value": "0", "finishedAt": "2024-01-01T00:01:00Z"}
            ]}
        ]}
    }))
    .expect("run decodes");
    let view = rollouts_engine::AnalysisRunView::from_run(&run);
    assert_eq!(view.phase, "Running");
    assert_eq!(view.labels["rollout-type"], "Step");
    let m = &view.metrics[0];
    assert_eq!((m.count, m.failed), (3, 1));
    assert_eq!(m.success_condition, "result > 1");
    let last = m.last.as_ref().unwrap();
    assert_eq!((last.value.as_str(), last.phase.as_str()), ("0", "Failed"));
    assert!(last.finished.is_some());
}
