//! `lint` over the repository's examples (all valid) and over broken manifests
//! (`tests/lint/*.yaml`), each with the exact problems expected: field path and line.

use std::path::{Path, PathBuf};

use kubectl_argo_rollouts::Error;
use kubectl_argo_rollouts::lint::{lint_text, render};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn lint_file(path: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    lint_text(&name, &text).map(|p| render(&name, &p))
}

#[test]
fn every_example_is_valid() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "examples/ holds {} manifests",
        files.len()
    );
    for f in files {
        let out = lint_file(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(out, "", "{}", f.display());
    }
}

fn expect(file: &str, lines: &[&str]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lint")
        .join(file);
    let out = lint_file(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got, lines, "{file}");
}

#[test]
fn unknown_fields() {
    expect(
        "unknown-fields.yaml",
        &[
            "unknown-fields.yaml:19: spec.template.spec.containers[0].imagePullPolcy: unknown field \"imagePullPolcy\"",
            "unknown-fields.yaml:23: spec.strategy.canary.maxUnavailabe: unknown field \"maxUnavailabe\"",
        ],
    );
}

#[test]
fn wrong_types() {
    expect(
        "wrong-types.yaml",
        &["wrong-types.yaml:6: spec.replicas: invalid type: string \"three\", expected i32"],
    );
}

#[test]
fn invalid_steps() {
    expect(
        "invalid-steps.yaml",
        &[
            "invalid-steps.yaml:23: spec.strategy.canary.steps[1].setWeight: Invalid value: 120: SetWeight needs to be between 0 and 100",
            "invalid-steps.yaml:25: spec.strategy.canary.steps[2].pause.duration: Invalid value: -5: Duration needs to be greater than 0",
            "invalid-steps.yaml:26: spec.strategy.canary.steps[3]: Invalid value: \"step.Experiment: true step.Pause: true step.SetWeight: true step.Analysis: true step.SetCanaryScale: true step.SetHeaderRoute: true step.SetMirrorRoute: true step.Plugin: true\": Step must have one of the following set: experiment, setWeight, setCanaryScale, plugin or pause",
        ],
    );
}

#[test]
fn selector_mismatch() {
    expect(
        "selector-mismatch.yaml",
        &[
            "selector-mismatch.yaml:13: spec.template.metadata.labels: Invalid value: {\"app\":\"website\"}: `selector` does not match template `labels`",
        ],
    );
}

#[test]
fn services_of_the_same_file() {
    expect(
        "services.yaml",
        &[
            "services.yaml:45: spec.strategy.canary.stableService: Invalid value: \"web-stable\": Service \"web-stable\" is managed by another Rollout",
            "services.yaml:46: spec.strategy.canary.canaryService: Invalid value: \"web-canary\": Service \"web-canary\" has unmatch label \"tier\" in rollout",
            "services.yaml:69: spec.strategy.canary.stableService: Invalid value: \"web-stable\": Service \"web-stable\" has unmatch label \"app\" in rollout",
        ],
    );
}

#[test]
fn nginx_stable_ingress_must_route_to_the_stable_service() {
    expect(
        "nginx-ingress.yaml",
        &[
            "nginx-ingress.yaml:43: spec.strategy.canary.trafficRouting.nginx.stableIngress: Invalid value: \"web\": ingress `web` has no rules using service web-stable backend",
        ],
    );
}

#[test]
fn istio_virtual_services() {
    expect(
        "istio.yaml",
        &[
            "istio.yaml:52: spec.strategy.canary.trafficRouting.istio.virtualServices[0].name: Invalid value: \"web\": Istio VirtualService has invalid HTTP routes. Error: HTTP Route 'primary' is not found in the defined Virtual Service.",
            "istio.yaml:54: spec.strategy.canary.trafficRouting.istio.virtualServices[1].name: Invalid value: \"web-internal\": Istio VirtualService has invalid HTTP routes. Error: Canary Service 'web-canary' not found in route",
        ],
    );
}

#[test]
fn traffic_routing_needs_services() {
    expect(
        "traffic-without-services.yaml",
        &[
            "traffic-without-services.yaml:19: spec.strategy.canary.stableService: Invalid value: \"\": Canary service and Stable service must to be set to use Traffic Routing",
            "traffic-without-services.yaml:19: spec.strategy.canary.canaryService: Invalid value: \"\": Canary service and Stable service must to be set to use Traffic Routing",
        ],
    );
}

#[test]
fn other_argo_kinds_are_strict_too() {
    expect(
        "analysis-template.yaml",
        &[
            "analysis-template.yaml:12: spec.metrics[0].sucessCondition: unknown field \"sucessCondition\"",
        ],
    );
}

#[test]
fn yaml_syntax_errors_name_the_line() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lint/not-yaml.yaml");
    match lint_file(&path) {
        Err(Error::Yaml {
            file,
            line,
            message,
        }) => {
            assert_eq!(file, "not-yaml.yaml");
            assert!((6..=7).contains(&line), "line {line}");
            assert!(!message.is_empty());
        }
        other => panic!("{other:?}"),
    }
}
