//! Golden tests of `plan`: the table printed for fixed manifests (`tests/plan/*.yaml`) under
//! fixed assumptions, from an update of an existing Rollout and from a fixed live snapshot
//! (`tests/plan/live-web.yaml`, read as the cluster returns it). Snapshots are committed under
//! `tests/snapshots/`; review a difference with `cargo insta review`.

use std::path::PathBuf;
use std::time::Duration;

use kubectl_argo_rollouts::Error;
use kubectl_argo_rollouts::cli::{OutputFormat, RunOutcome};
use kubectl_argo_rollouts::plan::{
    PlanReport, Settings, input_from_documents, plan_from_snapshot, plan_new, read_input,
    render_data, render_text,
};
use kubectl_argo_rollouts::tree::Style;
use kubectl_argo_rollouts::yaml::parse_documents;
use rollouts_api::Rollout;
use rollouts_engine::simulate::{Outcome, Role};
use rollouts_engine::{Snapshot, observe};

fn path(name: &str) -> PathBuf {
    PathBuf::from(format!("{}/tests/plan/{name}", env!("CARGO_MANIFEST_DIR")))
}

fn plan(name: &str, settings: &Settings) -> PlanReport {
    let input = read_input(&[path(name)]).unwrap_or_else(|e| panic!("{name}: {e}"));
    plan_new(&input, settings).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn text(name: &str, settings: &Settings) -> String {
    render_text(&plan(name, settings), Style::PLAIN)
}

fn ready_after(secs: u64) -> Settings {
    Settings {
        pod_ready_delay: Duration::from_secs(secs),
        ..Settings::default()
    }
}

/// The live snapshot of `live-web.yaml` at 2025-06-01T12:00:00Z.
fn live_snapshot() -> Snapshot {
    let file = path("live-web.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut rollout: Option<Rollout> = None;
    let mut objects = observe::Objects::default();
    for doc in parse_documents("live-web.yaml", &text).unwrap() {
        let v = doc.value.clone();
        match doc.type_meta().1 {
            "Rollout" => rollout = Some(serde_json::from_value(v).unwrap()),
            "ReplicaSet" => objects
                .replica_sets
                .push(serde_json::from_value(v).unwrap()),
            other => panic!("unexpected kind {other}"),
        }
    }
    observe::snapshot(
        rollout.unwrap(),
        &objects,
        None,
        "2025-06-01T12:00:00Z".parse().unwrap(),
    )
}

#[test]
fn plan_canary_basic() {
    let out = text("canary-basic.yaml", &Settings::default());
    insta::assert_snapshot!(out);
}

#[test]
fn plan_canary_basic_with_pod_delay_and_promotion() {
    let settings = Settings {
        promote_after: Some(Duration::from_secs(300)),
        ..ready_after(10)
    };
    let report = plan("canary-basic.yaml", &settings);
    assert_eq!(report.timeline.outcome, Outcome::Completed);
    insta::assert_snapshot!(render_text(&report, Style::PLAIN));
}

#[test]
fn plan_canary_traffic_routed() {
    let report = plan("canary-traffic.yaml", &ready_after(10));
    // The router's weights go through every step, then to 100 and back to 0.
    let weights: Vec<i32> = report
        .timeline
        .entries
        .iter()
        .filter_map(|e| e.weights.first().map(|w| w.weight))
        .fold(Vec::new(), |mut v, w| {
            if v.last() != Some(&w) {
                v.push(w);
            }
            v
        });
    assert_eq!(weights, [0, 10, 50, 100, 0]);
    assert_eq!(report.timeline.worst_case_seconds, Some(33 * 60 + 30));
    insta::assert_snapshot!(render_text(&report, Style::PLAIN));
}

#[test]
fn plan_canary_analysis_step() {
    let out = text("canary-analysis.yaml", &Settings::default());
    // The template's measurements: 30 s delay + 2 intervals of 1 m.
    assert!(
        out.contains("2m30s      step 1 (analysis): error-rate"),
        "{out}"
    );
    insta::assert_snapshot!(out);
}

#[test]
fn plan_canary_analysis_failing() {
    let settings = Settings {
        analysis: RunOutcome::Failure,
        ..Settings::default()
    };
    let report = plan("canary-analysis.yaml", &settings);
    assert!(
        matches!(&report.timeline.outcome, Outcome::Aborted { message } if message.contains("Step-based analysis phase error/failed")),
        "{:?}",
        report.timeline.outcome
    );
    insta::assert_snapshot!(render_text(&report, Style::PLAIN));
}

#[test]
fn plan_bluegreen_preview_and_auto_promotion() {
    let report = plan("bluegreen.yaml", &ready_after(10));
    assert_eq!(report.timeline.outcome, Outcome::Completed);
    assert_eq!(
        report.timeline.worst_case_seconds,
        Some(600 + 120 + 600 + 45)
    );
    insta::assert_snapshot!(render_text(&report, Style::PLAIN));
}

#[test]
fn plan_bluegreen_manual_promotion() {
    let waits = plan("bluegreen-manual.yaml", &Settings::default());
    assert!(
        matches!(&waits.timeline.outcome, Outcome::WaitsForPromotion { reason, .. } if reason == "BlueGreenPause"),
        "{:?}",
        waits.timeline.outcome
    );
    insta::assert_snapshot!(
        "plan_bluegreen_manual_waits",
        render_text(&waits, Style::PLAIN)
    );
    let settings = Settings {
        promote_after: Some(Duration::from_secs(600)),
        ..ready_after(5)
    };
    let promoted = plan("bluegreen-manual.yaml", &settings);
    assert_eq!(promoted.timeline.outcome, Outcome::Completed);
    insta::assert_snapshot!(
        "plan_bluegreen_manual_promoted",
        render_text(&promoted, Style::PLAIN)
    );
}

#[test]
fn plan_from_live_with_a_new_image() {
    let input = read_input(&[path("live-update.yaml")]).unwrap();
    let settings = Settings {
        promote_after: Some(Duration::from_secs(120)),
        ..ready_after(10)
    };
    let report =
        plan_from_snapshot(&input, &input.rollout, &settings, live_snapshot(), vec![]).unwrap();
    assert!(report.timeline.from_live);
    // Revision 3 replaces revision 2 as the canary; revision 1 stays stable until the end.
    let first = &report.timeline.entries[0];
    assert!(
        first
            .replica_sets
            .iter()
            .any(|r| r.revision == 2 && r.role == Role::Canary && r.available == 2)
    );
    let last = report.timeline.entries.last().unwrap();
    assert_eq!(last.replica_sets.len(), 1);
    assert_eq!(
        (last.replica_sets[0].revision, last.replica_sets[0].role),
        (3, Role::Stable)
    );
    insta::assert_snapshot!(render_text(&report, Style::PLAIN));
}

#[test]
fn plan_from_live_with_the_same_spec_shows_what_is_left() {
    let snap = live_snapshot();
    let input = read_input(&[path("live-update.yaml")]).unwrap();
    let same = snap.rollout.clone();
    let settings = Settings {
        promote_after: Some(Duration::from_secs(60)),
        ..Settings::default()
    };
    let report = plan_from_snapshot(&input, &same, &settings, snap, vec![]).unwrap();
    let revisions: std::collections::BTreeSet<i64> = report
        .timeline
        .entries
        .iter()
        .flat_map(|e| e.replica_sets.iter().map(|r| r.revision))
        .collect();
    assert_eq!(revisions.into_iter().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(report.timeline.outcome, Outcome::Completed);
    insta::assert_snapshot!(render_text(&report, Style::PLAIN));
}

#[test]
fn json_and_yaml_are_the_timeline() {
    let report = plan("canary-traffic.yaml", &ready_after(10));
    let want = serde_json::to_value(&report.timeline).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&render_data(&report, OutputFormat::Json).unwrap()).unwrap();
    assert_eq!(json, want);
    assert_eq!(json["strategy"], "canary");
    assert_eq!(json["outcome"]["type"], "completed");
    let yaml = render_data(&report, OutputFormat::Yaml).unwrap();
    let back: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(back, want);
    // Field names are camelCase throughout, the outcome's too.
    let waits = plan("canary-basic.yaml", &Settings::default());
    let json: serde_json::Value =
        serde_json::from_str(&render_data(&waits, OutputFormat::Json).unwrap()).unwrap();
    assert_eq!(json["outcome"]["type"], "waitsForPromotion");
    assert_eq!(json["outcome"]["stepIndex"], 3);
    let pause = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| !e["pause"].is_null())
        .unwrap();
    assert_eq!(pause["pause"]["durationSeconds"], 60);
    assert_eq!(pause["pause"]["untilPromoted"], false);
}

#[test]
fn invalid_rollouts_are_refused_with_their_line() {
    let input = read_input(&[path("invalid.yaml")]).unwrap();
    let err = plan_new(&input, &Settings::default()).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    let msg = err.to_string();
    assert!(msg.contains("invalid.yaml:20: the Rollout is invalid: spec.strategy.canary.steps[1].setWeight: Invalid value: 120"), "{msg}");
}

#[test]
fn files_without_a_rollout_and_workload_references_are_refused() {
    let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n";
    let docs = parse_documents("svc.yaml", text).unwrap();
    let err = input_from_documents(&[("svc.yaml".to_string(), docs)]).unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err:?}");
    assert!(err.to_string().contains("no Rollout to plan"), "{err}");
    let input = read_input(&[path("workload-ref.yaml")]).unwrap();
    let err = plan_new(&input, &Settings::default()).unwrap_err();
    assert!(
        err.to_string().contains("plan it with --from live"),
        "{err}"
    );
    let err = read_input(&[path("missing.yaml")]).unwrap_err();
    assert!(err.to_string().starts_with("cannot read "), "{err}");
}
