//! Golden tests of what `get rollout`, `get experiment` and `list` print for fixed objects
//! (`tests/fixtures/*.yaml`) at a fixed time. Snapshots are committed under
//! `tests/snapshots/`; a difference fails the test (review with `cargo insta review`).

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kubectl_argo_rollouts::info::{ExperimentInfo, RolloutInfo};
use kubectl_argo_rollouts::list::{self, Columns};
use kubectl_argo_rollouts::tree::{self, Style};
use kubectl_argo_rollouts::yaml::parse_documents;
use rollouts_api::{AnalysisRun, Experiment, Rollout};
use serde::de::DeserializeOwned;

#[derive(Default)]
struct Objects {
    rollouts: Vec<Rollout>,
    replica_sets: Vec<ReplicaSet>,
    pods: Vec<Pod>,
    experiments: Vec<Experiment>,
    runs: Vec<AnalysisRun>,
}

fn decode<T: DeserializeOwned>(v: &serde_json::Value) -> T {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"))
}

fn load(name: &str) -> Objects {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut o = Objects::default();
    for doc in parse_documents(&path, &text).unwrap() {
        match doc.type_meta().1 {
            "Rollout" => o.rollouts.push(decode(&doc.value)),
            "ReplicaSet" => o.replica_sets.push(decode(&doc.value)),
            "Pod" => o.pods.push(decode(&doc.value)),
            "Experiment" => o.experiments.push(decode(&doc.value)),
            "AnalysisRun" => o.runs.push(decode(&doc.value)),
            other => panic!("unexpected kind {other}"),
        }
    }
    o
}

fn now() -> Timestamp {
    "2025-06-01T12:00:10Z".parse().unwrap()
}

fn rollout_text(fixture: &str, style: Style) -> String {
    let o = load(fixture);
    let info = RolloutInfo::new(
        &o.rollouts[0],
        &o.replica_sets,
        &o.pods,
        &o.experiments,
        &o.runs,
    );
    tree::render_rollout(&info, now(), style)
}

#[test]
fn get_rollout_canary() {
    insta::assert_snapshot!(rollout_text("canary.yaml", Style::PLAIN));
}

#[test]
fn get_rollout_canary_in_colour() {
    // Escapes are shown as `ESC` so that the snapshot stays readable.
    let text = rollout_text("canary.yaml", Style::COLOR).replace('\x1b', "ESC");
    insta::assert_snapshot!(text);
}

#[test]
fn get_rollout_bluegreen_degraded() {
    insta::assert_snapshot!(rollout_text("bluegreen.yaml", Style::PLAIN));
}

#[test]
fn get_experiment() {
    let o = load("canary.yaml");
    let info = ExperimentInfo::new(&o.experiments[0], &o.replica_sets, &o.runs, &o.pods);
    insta::assert_snapshot!(tree::render_experiment(&info, now(), Style::PLAIN));
}

#[test]
fn list_rollouts() {
    let o = load("list.yaml");
    insta::assert_snapshot!(list::rollout_table(&o.rollouts, Columns::default(), now()));
}

#[test]
fn list_rollouts_all_namespaces_with_timestamps() {
    let o = load("list.yaml");
    let columns = Columns {
        namespace: true,
        timestamp: true,
    };
    insta::assert_snapshot!(list::rollout_table(&o.rollouts, columns, now()));
}

#[test]
fn list_experiments() {
    let o = load("list.yaml");
    insta::assert_snapshot!(list::experiment_table(&o.experiments, true, now()));
}
