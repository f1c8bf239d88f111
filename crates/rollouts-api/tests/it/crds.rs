//! The generated CustomResourceDefinitions: committed files are current, the YAML reads back
//! as the objects, and the Argo-specific parts of the schemas are there.

use std::{collections::BTreeSet, fs, sync::OnceLock};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use rollouts_api::crds;
use serde_json::{Value, json};

use crate::workspace_root;

const DIR: &str = "charts/rollouts/crds";

/// Generating the schemas takes a while in a debug build: do it once for all tests.
fn generated() -> &'static [CustomResourceDefinition] {
    static CRDS: OnceLock<Vec<CustomResourceDefinition>> = OnceLock::new();
    CRDS.get_or_init(crds::crds)
}

fn files() -> &'static [(String, String)] {
    static FILES: OnceLock<Vec<(String, String)>> = OnceLock::new();
    FILES.get_or_init(|| crds::files().expect("the CRDs render"))
}

#[test]
fn committed_crd_files_are_up_to_date() {
    let dir = workspace_root().join(DIR);
    let files = files();
    let mut problems = Vec::new();
    for (name, yaml) in files {
        match fs::read_to_string(dir.join(name)) {
            Ok(committed) if committed == *yaml => {}
            Ok(_) => problems.push(format!("{DIR}/{name} differs from the types")),
            Err(err) => problems.push(format!("{DIR}/{name} cannot be read ({err})")),
        }
    }
    let generated: BTreeSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for entry in
        fs::read_dir(&dir).unwrap_or_else(|err| panic!("{DIR}: {err}; run `cargo xtask crds`"))
    {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && !generated.contains(name.as_str()) {
            problems.push(format!("{DIR}/{name} is not generated any more"));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\nrun `cargo xtask crds` and commit the result",
        problems.join("\n")
    );
}

#[test]
fn file_names_and_kinds() {
    let names: Vec<&str> = files().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "rollouts.argoproj.io.yaml",
            "analysistemplates.argoproj.io.yaml",
            "clusteranalysistemplates.argoproj.io.yaml",
            "analysisruns.argoproj.io.yaml",
            "experiments.argoproj.io.yaml",
        ]
    );
}

#[test]
fn yaml_reads_back_as_the_crd() {
    for (crd, (_, yaml)) in generated().iter().zip(files()) {
        assert!(yaml.starts_with(crds::HEADER));
        let parsed: Value = serde_saphyr::from_str(yaml)
            .unwrap_or_else(|err| panic!("{:?}: {err}", crd.metadata.name));
        assert_eq!(
            parsed,
            serde_json::to_value(crd).unwrap(),
            "{:?}",
            crd.metadata.name
        );
    }
}

fn crd(kind: &str) -> Value {
    let crd = generated()
        .iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"));
    serde_json::to_value(crd).unwrap()
}

/// The schema at `path` (property names; `[]` steps into array items).
fn schema<'a>(crd: &'a Value, path: &str) -> &'a Value {
    let mut s = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    for step in path.split('.') {
        s = if step == "[]" {
            &s["items"]
        } else {
            &s["properties"][step]
        };
        assert!(!s.is_null(), "no schema at {path} (stopped at {step})");
    }
    s
}

#[test]
fn names_scope_and_subresources_match_argo() {
    let cases = [
        ("Rollout", "rollouts", "ro", "Namespaced"),
        ("AnalysisTemplate", "analysistemplates", "at", "Namespaced"),
        (
            "ClusterAnalysisTemplate",
            "clusteranalysistemplates",
            "cat",
            "Cluster",
        ),
        ("AnalysisRun", "analysisruns", "ar", "Namespaced"),
        ("Experiment", "experiments", "exp", "Namespaced"),
    ];
    for (kind, plural, short, scope) in cases {
        let c = crd(kind);
        assert_eq!(
            c["metadata"]["name"],
            json!(format!("{plural}.argoproj.io"))
        );
        assert_eq!(c["spec"]["group"], "argoproj.io");
        assert_eq!(c["spec"]["scope"], scope, "{kind}");
        let names = &c["spec"]["names"];
        assert_eq!(names["kind"], kind);
        assert_eq!(names["listKind"], json!(format!("{kind}List")));
        assert_eq!(names["plural"], plural);
        assert_eq!(names["singular"], json!(kind.to_lowercase()));
        assert_eq!(names["shortNames"], json!([short]));
        assert!(
            names.get("categories").is_none(),
            "Argo declares no categories"
        );
        let version = &c["spec"]["versions"][0];
        assert_eq!(version["name"], "v1alpha1");
        assert_eq!(version["served"], true);
        assert_eq!(version["storage"], true);
        if kind == "Rollout" {
            assert_eq!(
                version["subresources"],
                json!({
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.HPAReplicas",
                        "labelSelectorPath": ".status.selector"
                    }
                })
            );
        } else {
            assert_eq!(
                version["subresources"],
                json!({}),
                "{kind} has no subresources in Argo"
            );
        }
        let root = &version["schema"]["openAPIV3Schema"];
        assert_eq!(root["required"], json!(["spec"]), "{kind}");
        for field in ["apiVersion", "kind", "metadata", "spec"] {
            assert!(
                root["properties"].get(field).is_some(),
                "{kind} schema lacks {field}"
            );
        }
    }
}

#[test]
fn printer_columns_match_argo() {
    let columns = |kind: &str| -> Vec<(String, String, String)> {
        crd(kind)["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let s = |k: &str| c[k].as_str().unwrap().to_owned();
                (s("name"), s("type"), s("jsonPath"))
            })
            .collect()
    };
    let col = |n: &str, t: &str, p: &str| (n.to_owned(), t.to_owned(), p.to_owned());
    let age = col("Age", "date", ".metadata.creationTimestamp");
    assert_eq!(
        columns("Rollout"),
        [
            col("Desired", "integer", ".spec.replicas"),
            col("Current", "integer", ".status.replicas"),
            col("Up-to-date", "integer", ".status.updatedReplicas"),
            col("Available", "integer", ".status.availableReplicas"),
            age.clone(),
        ]
    );
    for kind in ["AnalysisTemplate", "ClusterAnalysisTemplate"] {
        assert_eq!(columns(kind), std::slice::from_ref(&age));
    }
    for kind in ["AnalysisRun", "Experiment"] {
        assert_eq!(
            columns(kind),
            [col("Status", "string", ".status.phase"), age.clone()]
        );
    }
}

#[test]
fn rollout_selector_is_immutable_and_atomic() {
    let c = crd("Rollout");
    let selector = schema(&c, "spec.selector");
    assert_eq!(
        selector["x-kubernetes-validations"],
        json!([{ "rule": "self == oldSelf", "message": ".spec.selector is immutable" }])
    );
    assert_eq!(selector["x-kubernetes-map-type"], "atomic");
    assert_eq!(
        schema(&c, "spec.selector.matchExpressions")["x-kubernetes-list-type"],
        "atomic"
    );
    let step_selector = schema(
        &c,
        "spec.strategy.canary.steps.[].experiment.templates.[].selector",
    );
    assert_eq!(step_selector["x-kubernetes-map-type"], "atomic");
    assert!(step_selector.get("x-kubernetes-validations").is_none());
}

#[test]
fn free_form_fields_preserve_unknown_fields() {
    let cases = [
        ("Rollout", "spec.strategy.canary.trafficRouting.plugins"),
        ("Rollout", "spec.strategy.canary.steps.[].plugin.config"),
        ("Rollout", "status.canary.stepPluginStatuses.[].status"),
        ("AnalysisTemplate", "spec.metrics.[].provider.plugin"),
        ("AnalysisTemplate", "spec.metrics.[].provider.web.jsonBody"),
        ("ClusterAnalysisTemplate", "spec.metrics.[].provider.plugin"),
        ("AnalysisRun", "spec.metrics.[].provider.plugin"),
        ("AnalysisRun", "spec.metrics.[].provider.web.jsonBody"),
    ];
    for (kind, path) in cases {
        let c = crd(kind);
        let s = schema(&c, path);
        assert_eq!(s["type"], "object", "{kind} {path}");
        assert_eq!(
            s["x-kubernetes-preserve-unknown-fields"], true,
            "{kind} {path}"
        );
        let parent_path = &path[..path.rfind('.').unwrap()];
        let field = &path[path.rfind('.').unwrap() + 1..];
        let parent = schema(&c, parent_path);
        let required = parent["required"].as_array().cloned().unwrap_or_default();
        assert!(
            !required.contains(&json!(field)),
            "{kind} {path} must stay optional"
        );
    }
}

#[test]
fn int_or_string_fields() {
    let cases = [
        ("Rollout", "spec.strategy.canary.maxSurge"),
        ("Rollout", "spec.strategy.canary.maxUnavailable"),
        ("Rollout", "spec.strategy.blueGreen.maxUnavailable"),
        ("Rollout", "spec.strategy.canary.steps.[].pause.duration"),
        ("AnalysisTemplate", "spec.metrics.[].count"),
        ("AnalysisTemplate", "spec.metrics.[].failureLimit"),
        ("AnalysisTemplate", "spec.metrics.[].inconclusiveLimit"),
        ("AnalysisTemplate", "spec.metrics.[].consecutiveErrorLimit"),
        (
            "AnalysisTemplate",
            "spec.metrics.[].consecutiveSuccessLimit",
        ),
        (
            "AnalysisRun",
            "spec.metrics.[].provider.cloudWatch.metricDataQueries.[].period",
        ),
        (
            "AnalysisRun",
            "spec.metrics.[].provider.cloudWatch.metricDataQueries.[].metricStat.period",
        ),
    ];
    for (kind, path) in cases {
        let c = crd(kind);
        let s = schema(&c, path);
        assert_eq!(s["x-kubernetes-int-or-string"], true, "{kind} {path}");
        assert_eq!(
            s["anyOf"],
            json!([{ "type": "integer" }, { "type": "string" }]),
            "{kind} {path}"
        );
    }
    // setWeight and setCanaryScale.weight are plain integers in Argo.
    let c = crd("Rollout");
    assert_eq!(
        schema(&c, "spec.strategy.canary.steps.[].setWeight")["type"],
        "integer"
    );
    assert_eq!(
        schema(&c, "spec.strategy.canary.steps.[].setCanaryScale.weight")["format"],
        "int32"
    );
}

#[test]
fn no_nullable_anywhere() {
    for crd in generated() {
        let text = serde_json::to_string(crd).unwrap();
        assert!(
            !text.contains("\"nullable\""),
            "{:?} has nullable",
            crd.metadata.name
        );
    }
}

#[test]
fn datadog_defaults_and_enums() {
    let c = crd("AnalysisTemplate");
    let dd = schema(&c, "spec.metrics.[].provider.datadog");
    assert_eq!(dd["properties"]["interval"]["default"], "5m");
    assert_eq!(dd["properties"]["requestTimeout"]["default"], "10s");
    assert_eq!(dd["properties"]["apiVersion"]["default"], "v1");
    assert_eq!(dd["properties"]["apiVersion"]["enum"], json!(["v1", "v2"]));
    assert_eq!(
        dd["properties"]["aggregator"]["enum"]
            .as_array()
            .map(Vec::len),
        Some(9)
    );
}

#[test]
fn embedded_template_metadata_has_only_labels_and_annotations() {
    let keys = |s: &Value| -> Vec<String> {
        s["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let expected = ["annotations", "labels"];
    assert_eq!(
        keys(schema(&crd("Rollout"), "spec.template.metadata")),
        expected
    );
    assert_eq!(
        keys(schema(
            &crd("Experiment"),
            "spec.templates.[].template.metadata"
        )),
        expected
    );
    let at = crd("AnalysisTemplate");
    assert_eq!(
        keys(schema(&at, "spec.metrics.[].provider.job.metadata")),
        expected
    );
    assert_eq!(
        keys(schema(
            &at,
            "spec.metrics.[].provider.job.spec.template.metadata"
        )),
        expected
    );
}

#[test]
fn required_fields_follow_argo() {
    let required = |kind: &str, path: &str| -> Vec<String> {
        let c = crd(kind);
        let mut r: Vec<String> = schema(&c, path)["required"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        r.sort();
        r
    };
    assert!(
        required("Rollout", "spec").is_empty(),
        "selector, template and strategy are optional"
    );
    assert_eq!(
        required("Rollout", "spec.strategy.blueGreen"),
        ["activeService"]
    );
    assert_eq!(
        required("Rollout", "spec.strategy.canary.steps.[].experiment"),
        ["templates"]
    );
    assert_eq!(
        required(
            "Rollout",
            "spec.strategy.canary.steps.[].experiment.templates.[]"
        ),
        ["name", "specRef"]
    );
    assert_eq!(
        required(
            "Rollout",
            "spec.strategy.canary.steps.[].setHeaderRoute.match.[]"
        ),
        ["headerName", "headerValue"]
    );
    assert_eq!(
        required("Rollout", "status.canary.weights"),
        ["canary", "stable"]
    );
    assert_eq!(
        required("Rollout", "status.alb.loadBalancer"),
        ["arn", "name"]
    );
    assert_eq!(required("AnalysisRun", "spec"), ["metrics"]);
    assert_eq!(required("AnalysisRun", "status"), ["phase"]);
    assert_eq!(
        required("AnalysisTemplate", "spec.metrics.[]"),
        ["name", "provider"]
    );
    assert!(required("AnalysisTemplate", "spec.metrics.[].provider").is_empty());
    assert_eq!(
        required("AnalysisTemplate", "spec.metrics.[].provider.job"),
        ["spec"]
    );
    assert_eq!(
        required("AnalysisTemplate", "spec.metrics.[].provider.kayenta"),
        [
            "address",
            "application",
            "canaryConfigName",
            "configurationAccountName",
            "metricsAccountName",
            "scopes",
            "storageAccountName",
            "threshold"
        ]
    );
    assert_eq!(
        required("Experiment", "spec.templates.[]"),
        ["name", "selector", "template"]
    );
    assert!(required("Experiment", "status").is_empty());
}

#[test]
fn embedded_pod_specs_get_kubernetes_defaults() {
    for (kind, pod_spec) in [
        ("Rollout", "spec.template.spec"),
        ("Experiment", "spec.templates.[].template.spec"),
        (
            "AnalysisTemplate",
            "spec.metrics.[].provider.job.spec.template.spec",
        ),
    ] {
        let c = crd(kind);
        let container = format!("{pod_spec}.containers.[]");
        let protocol = schema(&c, &format!("{container}.ports.[].protocol"));
        assert_eq!(protocol["default"], "TCP", "{kind}");
        let secret_ref = schema(&c, &format!("{container}.env.[].valueFrom.secretKeyRef"));
        assert_eq!(
            secret_ref["required"],
            json!(["key"]),
            "{kind}: name is optional"
        );
        assert_eq!(secret_ref["properties"]["name"]["default"], "", "{kind}");
        let pull_secret = schema(&c, &format!("{pod_spec}.imagePullSecrets.[]"));
        assert!(pull_secret.get("required").is_none(), "{kind}");
        // Fields that really are required stay so.
        assert_eq!(
            schema(&c, &format!("{pod_spec}.os"))["required"],
            json!(["name"]),
            "{kind}"
        );
        assert_eq!(
            schema(&c, pod_spec)["required"],
            json!(["containers"]),
            "{kind}"
        );
    }
    // Our own secretKeyRef (analysis arguments) keeps both fields required.
    let c = crd("AnalysisRun");
    let mut required: Vec<String> = serde_json::from_value(
        schema(&c, "spec.args.[].valueFrom.secretKeyRef")["required"].clone(),
    )
    .unwrap();
    required.sort();
    assert_eq!(required, ["key", "name"]);
}
