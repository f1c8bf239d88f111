//! Golden tests of `why`: what it prints for fixed snapshots, one per gate. Some snapshots are
//! built from objects as the cluster returns them (`tests/plan/live-web.yaml`,
//! `tests/fixtures/*.yaml`, through `rollouts_engine::observe`), the others by driving a Rollout
//! through the engine's simulator (a fixed clock) to the state the gate describes. Snapshots
//! are committed under `tests/snapshots/`.

use std::time::Duration;

use kubectl_argo_rollouts::cli::OutputFormat;
use kubectl_argo_rollouts::tree::Style;
use kubectl_argo_rollouts::why::{WhyReport, render, render_text, report, watch_line};
use kubectl_argo_rollouts::yaml::parse_documents;
use rollouts_api::{Rollout, WeightDestination};
use rollouts_engine::sim::World;
use rollouts_engine::{MeasurementView, MetricView, RouterReport, Snapshot, WeightVerification};
use serde_json::{Value, json};

// --- snapshots from objects -------------------------------------------------------------------

fn from_objects(path: &str, now: &str) -> Snapshot {
    let full = format!("{}/tests/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap();
    let mut rollout: Option<Rollout> = None;
    let mut o = rollouts_engine::observe::Objects::default();
    for doc in parse_documents(path, &text).unwrap() {
        let v = doc.value.clone();
        match doc.type_meta().1 {
            "Rollout" if rollout.is_none() => rollout = Some(serde_json::from_value(v).unwrap()),
            "ReplicaSet" => o.replica_sets.push(serde_json::from_value(v).unwrap()),
            "Pod" => o.pods.push(serde_json::from_value(v).unwrap()),
            "AnalysisRun" => o.analysis_runs.push(serde_json::from_value(v).unwrap()),
            "Experiment" => o.experiments.push(serde_json::from_value(v).unwrap()),
            "Service" => o.services.push(serde_json::from_value(v).unwrap()),
            _ => {}
        }
    }
    rollouts_engine::observe::snapshot(rollout.unwrap(), &o, None, now.parse().unwrap())
}

fn text(snap: &Snapshot) -> String {
    render_text(&report(snap), Style::PLAIN)
}

#[test]
fn why_paused_at_an_indefinite_step() {
    let snap = from_objects("plan/live-web.yaml", "2025-06-01T12:00:00Z");
    let out = text(&snap);
    assert!(
        out.contains("Released by:    `kubectl argo rollouts promote web`"),
        "{out}"
    );
    insta::assert_snapshot!(out);
    let json: Value =
        serde_json::from_str(&render(&report(&snap), OutputFormat::Json, Style::PLAIN).unwrap())
            .unwrap();
    insta::assert_json_snapshot!("why_paused_at_an_indefinite_step_json", json);
}

#[test]
fn why_canary_fixture_with_an_experiment() {
    insta::assert_snapshot!(text(&from_objects(
        "fixtures/canary.yaml",
        "2025-06-01T12:00:10Z"
    )));
}

#[test]
fn why_degraded_blue_green_fixture() {
    let mut snap = from_objects("fixtures/bluegreen.yaml", "2025-06-01T12:00:10Z");
    // Without its Services the spec is invalid (the Services are not part of the fixture).
    let out = text(&snap);
    assert!(
        out.contains("service \"checkout-active\" not found"),
        "{out}"
    );
    let service = |name: &str, hash: &str| {
        rollouts_engine::observe::service_view(
            &serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {"selector": {"app": "checkout", "rollouts-pod-template-hash": hash}}
            }))
            .unwrap(),
        )
    };
    snap.services = vec![
        service("checkout-active", "55d6c4b8a"),
        service("checkout-preview", "77f8b5c9d"),
    ];
    insta::assert_snapshot!(text(&snap));
}

// --- snapshots from the simulator ---------------------------------------------------------------

const TICK: Duration = Duration::from_secs(1);

fn rollout(strategy: Value, replicas: i32) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "app", "image": "web:1"}]}},
            "strategy": strategy
        }
    })
}

fn canary(steps: Value) -> Value {
    rollout(json!({"canary": {"steps": steps}}), 4)
}

fn blue_green(fields: Value) -> Value {
    let mut bg = json!({"activeService": "web-active", "previewService": "web-preview"});
    if let (Some(bg), Some(extra)) = (bg.as_object_mut(), fields.as_object()) {
        bg.extend(extra.clone());
    }
    rollout(json!({"blueGreen": bg}), 2)
}

fn decode(v: Value) -> Rollout {
    rollouts_api::decode(&v).unwrap()
}

fn deployed(v: Value) -> World {
    let mut w = World::new(decode(v));
    assert!(w.run_until(60, TICK, |w| w.phase() == "Healthy"));
    for _ in 0..3 {
        w.reconcile();
        w.tick(TICK);
    }
    w
}

fn until(w: &mut World, f: impl Fn(&World) -> bool) {
    assert!(w.run_until(120, TICK, f), "not reached: {:?}", w.status());
}

fn updated(v: Value) -> World {
    let mut w = deployed(v);
    w.set_image("web:2");
    w
}

fn paused(mut w: World) -> Snapshot {
    until(&mut w, |w| w.phase() == "Paused");
    w.snapshot()
}

fn gates() -> Vec<(&'static str, Snapshot)> {
    let mut out = Vec::new();
    out.push((
        "healthy",
        deployed(canary(json!([{"setWeight": 50}]))).snapshot(),
    ));
    let mut w = World::new(decode(canary(json!([{"setWeight": 200}]))));
    w.reconcile();
    out.push(("invalid_spec", w.snapshot()));
    out.push((
        "spec_not_observed",
        updated(canary(json!([{"setWeight": 50}]))).snapshot(),
    ));
    let mut w = updated(canary(json!([{"setWeight": 50}, {"pause": {}}])));
    until(&mut w, |w| w.phase() == "Paused");
    w.abort();
    until(&mut w, |w| w.phase() == "Degraded");
    out.push(("aborted", w.snapshot()));
    let mut w = deployed({
        let mut v = canary(json!([{"setWeight": 50}]));
        v["spec"]["progressDeadlineSeconds"] = json!(5);
        v
    });
    w.set_image("web:2");
    w.reconcile();
    w.reconcile();
    let broken = w.status().current_pod_hash.unwrap();
    w.knobs.broken_hashes.insert(broken);
    until(&mut w, |w| w.phase() == "Degraded");
    out.push(("progress_deadline_exceeded", w.snapshot()));
    let mut w = deployed(canary(json!([{"setWeight": 50}])));
    w.set_paused(true);
    w.reconcile();
    w.reconcile();
    out.push(("paused_by_user", w.snapshot()));
    out.push((
        "paused_at_a_timed_step",
        paused(updated(canary(
            json!([{"setWeight": 50}, {"pause": {"duration": "1h"}}]),
        ))),
    ));
    out.push((
        "blue_green_manual_promotion",
        paused(updated(blue_green(json!({"autoPromotionEnabled": false})))),
    ));
    out.push((
        "blue_green_auto_promotion",
        paused(updated(blue_green(json!({"autoPromotionSeconds": 120})))),
    ));
    let mut w = updated(blue_green(
        json!({"prePromotionAnalysis": {"templates": [{"templateName": "rate"}]}}),
    ));
    w.knobs.analysis_outcome = Some("Inconclusive".into());
    out.push(("inconclusive_analysis", paused(w)));
    let mut w = updated(canary(json!([
        {"setWeight": 25},
        {"experiment": {"templates": [{"name": "c", "specRef": "canary"}]}}
    ])));
    w.knobs.experiment_outcome = Some("Inconclusive".into());
    out.push(("inconclusive_experiment", paused(w)));
    // A step analysis measuring: one metric passed, the other's last value was inconclusive.
    let mut w = updated(canary(
        json!([{"setWeight": 25}, {"analysis": {"templates": [{"templateName": "rate"}]}}]),
    ));
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
            inconclusive: 1,
            last: Some(MeasurementView {
                value: "[0.42]".into(),
                phase: "Inconclusive".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    out.push(("step_analysis_running", snap));
    let mut w = updated(blue_green(
        json!({"prePromotionAnalysis": {"templates": [{"templateName": "smoke"}]}}),
    ));
    until(&mut w, |w| !w.analysis_runs.is_empty());
    w.reconcile();
    out.push(("pre_promotion_analysis_running", w.snapshot()));
    let mut w = updated(canary(json!([
        {"setWeight": 25},
        {"experiment": {"duration": "10m", "templates": [{"name": "c", "specRef": "canary"}]}}
    ])));
    until(&mut w, |w| !w.experiments.is_empty());
    for _ in 0..3 {
        w.reconcile();
        w.tick(TICK);
    }
    out.push(("experiment_running", w.snapshot()));
    // The router was told 50 but last verified 20.
    let mut routed = canary(json!([{"setWeight": 50}, {"pause": {}}]));
    routed["spec"]["strategy"]["canary"]["canaryService"] = json!("web-canary");
    routed["spec"]["strategy"]["canary"]["stableService"] = json!("web-stable");
    routed["spec"]["strategy"]["canary"]["trafficRouting"] =
        json!({"alb": {"ingress": "web", "servicePort": 80}});
    let mut w = updated(routed);
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
        router: "alb".into(),
        verifies_weight: true,
        last: Some(WeightVerification {
            weight: 20,
            verified: true,
        }),
    }];
    out.push(("traffic_weight_verification", snap));
    let mut w = deployed({
        let mut v = canary(json!([{"setWeight": 100}]));
        v["spec"]["replicas"] = json!(6);
        v
    });
    w.knobs.ready_per_tick = Some(1);
    w.set_image("web:2");
    until(&mut w, |w| w.counts(2).0 > 0 && w.counts(2).1 == 1);
    w.reconcile();
    out.push(("replica_set_availability", w.snapshot()));
    let mut w = updated(blue_green(json!({"scaleDownDelaySeconds": 300})));
    until(&mut w, |w| {
        w.rs_by_revision(1)
            .is_some_and(|r| r.annotations.contains_key("scale-down-deadline"))
    });
    w.reconcile();
    out.push(("scale_down_delay", w.snapshot()));
    out
}

#[test]
fn why_each_gate() {
    let mut seen = std::collections::BTreeSet::new();
    for (name, snap) in gates() {
        let r: WhyReport = report(&snap);
        seen.insert(r.blocker.gate.name());
        insta::assert_snapshot!(format!("why_gate_{name}"), render_text(&r, Style::PLAIN));
    }
    // Every gate of the engine is shown once.
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [
            "aborted",
            "analysis",
            "blueGreenPromotion",
            "experiment",
            "inconclusiveAnalysis",
            "inconclusiveExperiment",
            "invalidSpec",
            "none",
            "pausedAtStep",
            "pausedByUser",
            "progressDeadlineExceeded",
            "replicaSetAvailability",
            "scaleDownDelay",
            "specNotObserved",
            "trafficWeightVerification",
        ]
    );
}

#[test]
fn json_carries_the_gate_and_its_data() {
    let gates = gates();
    let find = |n: &str| &gates.iter().find(|(name, _)| *name == n).unwrap().1;
    let json = |snap: &Snapshot| -> Value {
        serde_json::from_str(&render(&report(snap), OutputFormat::Json, Style::PLAIN).unwrap())
            .unwrap()
    };
    let v = json(find("step_analysis_running"));
    assert_eq!(v["gate"]["gate"], "analysis");
    assert_eq!(v["rollout"], "web");
    assert_eq!(v["namespace"], "shop");
    assert_eq!(v["gate"]["metric"]["name"], "latency");
    assert_eq!(v["gate"]["metric"]["lastValue"], "[0.42]");
    assert!(v["since"].is_string());
    let v = json(find("healthy"));
    assert_eq!(v["gate"]["gate"], "none");
    assert_eq!(v["status"], "Healthy");
    assert_eq!(v["release"], "");
    assert!(v["since"].is_null());
    let v = json(find("blue_green_manual_promotion"));
    assert_eq!(v["gate"]["gate"], "blueGreenPromotion");
    assert!(v["gate"]["autoPromotionAt"].is_null());
    assert_eq!(v["release"], "`kubectl argo rollouts promote web`");
}

#[test]
fn watch_lines_name_the_time_and_the_gate() {
    let snap = from_objects("plan/live-web.yaml", "2025-06-01T12:00:00Z");
    assert_eq!(
        watch_line(&report(&snap)),
        "12:00:00  pause at step 1 (pause): The rollout is paused at step 1 (pause) until promoted: run `kubectl argo rollouts promote web`.\n"
    );
}
