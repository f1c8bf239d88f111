//! Every Argo document in `examples/` decodes into our types and encodes back unchanged, and
//! together the examples show every strategy, step, traffic router and metric provider.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use rollouts_api::{
    API_VERSION, AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment, Rollout,
    decode,
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::workspace_root;

/// An Argo document from an example file.
struct Doc {
    file: String,
    kind: String,
    value: Value,
}

fn example_files() -> Vec<PathBuf> {
    let dir = workspace_root().join("examples");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no example files in {}", dir.display());
    files
}

fn argo_docs() -> Vec<Doc> {
    let mut docs = Vec::new();
    for path in example_files() {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
        let values: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|err| panic!("{file} is not valid YAML: {err}"));
        let before = docs.len();
        for value in values.into_iter().filter(|v| !v.is_null()) {
            if value["apiVersion"] == API_VERSION {
                let kind = value["kind"].as_str().unwrap_or_default().to_owned();
                docs.push(Doc {
                    file: file.clone(),
                    kind,
                    value,
                });
            }
        }
        assert!(
            docs.len() > before,
            "{file} has no argoproj.io/v1alpha1 document"
        );
    }
    docs
}

fn round_trip<T: Serialize + DeserializeOwned>(doc: &Doc) {
    let typed: T = decode(&doc.value)
        .unwrap_or_else(|err| panic!("{}: {} does not decode: {err}", doc.file, doc.kind));
    let back = serde_json::to_value(&typed).unwrap();
    if back != doc.value {
        let mut diffs = Vec::new();
        diff("", &doc.value, &back, &mut diffs);
        panic!(
            "{}: {} changed on a round trip:\n{}",
            doc.file,
            doc.kind,
            diffs.join("\n")
        );
    }
}

fn diff(path: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for key in w.keys().chain(g.keys()).collect::<BTreeSet<_>>() {
                let p = format!("{path}.{key}");
                match (w.get(key), g.get(key)) {
                    (Some(a), Some(b)) => diff(&p, a, b, out),
                    (Some(_), None) => out.push(format!("  lost  {p}")),
                    (None, Some(_)) => out.push(format!("  added {p}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (i, (a, b)) in w.iter().zip(g).enumerate() {
                diff(&format!("{path}[{i}]"), a, b, out);
            }
        }
        _ if want != got => out.push(format!("  {path}: {want} became {got}")),
        _ => {}
    }
}

#[test]
fn every_example_round_trips() {
    let docs = argo_docs();
    for doc in &docs {
        match doc.kind.as_str() {
            "Rollout" => round_trip::<Rollout>(doc),
            "AnalysisTemplate" => round_trip::<AnalysisTemplate>(doc),
            "ClusterAnalysisTemplate" => round_trip::<ClusterAnalysisTemplate>(doc),
            "AnalysisRun" => round_trip::<AnalysisRun>(doc),
            "Experiment" => round_trip::<Experiment>(doc),
            other => panic!("{}: unknown kind {other:?} in {API_VERSION}", doc.file),
        }
    }
}

/// What the examples show, collected from the documents.
#[derive(Default)]
struct Seen(BTreeSet<String>);

impl Seen {
    fn add(&mut self, what: impl Into<String>) {
        self.0.insert(what.into());
    }
    fn keys(&mut self, prefix: &str, v: &Value) {
        for key in v.as_object().into_iter().flat_map(|o| o.keys()) {
            self.add(format!("{prefix}{key}"));
        }
    }
}

fn collect(docs: &[Doc]) -> Seen {
    let mut seen = Seen::default();
    for doc in docs {
        let v = &doc.value;
        seen.add(format!("kind:{}", doc.kind));
        match doc.kind.as_str() {
            "Rollout" => rollout(&mut seen, &v["spec"]),
            "AnalysisTemplate" | "ClusterAnalysisTemplate" | "AnalysisRun" => {
                for metric in v["spec"]["metrics"].as_array().into_iter().flatten() {
                    seen.keys("provider:", &metric["provider"]);
                }
            }
            _ => {}
        }
    }
    seen
}

fn rollout(seen: &mut Seen, spec: &Value) {
    if spec.get("workloadRef").is_some() {
        seen.add("strategy:workloadRef");
    }
    if spec["strategy"].get("blueGreen").is_some() {
        seen.add("strategy:blueGreen");
    }
    let canary = &spec["strategy"]["canary"];
    if canary.is_null() {
        return;
    }
    let routing = &canary["trafficRouting"];
    seen.add(if routing.is_null() {
        "strategy:canary"
    } else {
        "strategy:canary+trafficRouting"
    });
    seen.keys("router:", routing);
    let istio = &routing["istio"];
    if !istio.is_null() {
        if istio.get("destinationRule").is_some() {
            seen.add("istio:subset-level");
        } else {
            seen.add("istio:host-level");
        }
        if istio.get("virtualServices").is_some() {
            seen.add("istio:virtualServices");
        }
    }
    for step in canary["steps"].as_array().into_iter().flatten() {
        seen.keys("step:", step);
        match step["pause"].get("duration") {
            Some(Value::Number(_)) => seen.add("pause:int"),
            Some(Value::String(_)) => seen.add("pause:string"),
            Some(_) => {}
            None if step.get("pause").is_some() => seen.add("pause:indefinite"),
            None => {}
        }
        seen.keys("setCanaryScale:", &step["setCanaryScale"]);
    }
}

#[test]
fn examples_cover_the_whole_api() {
    let seen = collect(&argo_docs());
    let mut wanted = vec![
        "kind:Rollout",
        "kind:AnalysisTemplate",
        "kind:ClusterAnalysisTemplate",
        "kind:AnalysisRun",
        "kind:Experiment",
        "strategy:canary",
        "strategy:canary+trafficRouting",
        "strategy:blueGreen",
        "strategy:workloadRef",
        "pause:indefinite",
        "pause:int",
        "pause:string",
        "setCanaryScale:weight",
        "setCanaryScale:replicas",
        "setCanaryScale:matchTrafficWeight",
        "istio:host-level",
        "istio:subset-level",
        "istio:virtualServices",
    ];
    let steps = [
        "setWeight",
        "pause",
        "experiment",
        "analysis",
        "setCanaryScale",
        "setHeaderRoute",
        "setMirrorRoute",
        "plugin",
    ];
    let routers = [
        "istio",
        "nginx",
        "alb",
        "smi",
        "ambassador",
        "appMesh",
        "traefik",
        "apisix",
        "plugins",
        "managedRoutes",
        "maxTrafficWeight",
    ];
    let providers = [
        "prometheus",
        "kayenta",
        "web",
        "datadog",
        "wavefront",
        "newRelic",
        "job",
        "cloudWatch",
        "graphite",
        "influxdb",
        "skywalking",
        "plugin",
    ];
    let owned: Vec<String> = steps
        .iter()
        .map(|s| format!("step:{s}"))
        .chain(routers.iter().map(|r| format!("router:{r}")))
        .chain(providers.iter().map(|p| format!("provider:{p}")))
        .collect();
    wanted.extend(owned.iter().map(String::as_str));
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|w| !seen.0.contains(*w))
        .collect();
    assert!(
        missing.is_empty(),
        "the examples no longer show: {missing:?}"
    );
}

#[test]
fn coverage_lists_are_complete() {
    // The lists above must name every step, router and provider field of the types: a field
    // added to the API without an example fails here.
    fn fields<T: Default + Serialize>(fill: impl FnOnce(&mut T)) -> BTreeSet<String> {
        let mut t = T::default();
        fill(&mut t);
        serde_json::to_value(&t)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }
    let step = fields::<rollouts_api::CanaryStep>(|s| {
        s.set_weight = Some(1);
        s.pause = Some(Default::default());
        s.experiment = Some(Default::default());
        s.analysis = Some(Default::default());
        s.set_canary_scale = Some(Default::default());
        s.set_header_route = Some(Default::default());
        s.set_mirror_route = Some(Default::default());
        s.plugin = Some(Default::default());
    });
    let seen = collect(&argo_docs());
    for s in step {
        assert!(
            seen.0.contains(&format!("step:{s}")),
            "no example has a {s} step"
        );
    }
    let schema =
        serde_json::to_value(schemars::schema_for!(rollouts_api::RolloutTrafficRouting)).unwrap();
    for r in schema["properties"].as_object().unwrap().keys() {
        assert!(
            seen.0.contains(&format!("router:{r}")),
            "no example uses trafficRouting.{r}"
        );
    }
    let schema = serde_json::to_value(schemars::schema_for!(rollouts_api::MetricProvider)).unwrap();
    for p in schema["properties"].as_object().unwrap().keys() {
        assert!(
            seen.0.contains(&format!("provider:{p}")),
            "no example uses provider {p}"
        );
    }
}

#[test]
fn example_files_are_not_empty_of_argo_objects() {
    // `argo_docs` fails on a file without Argo documents; make sure it looked at all files.
    let files: BTreeSet<String> = argo_docs().into_iter().map(|d| d.file).collect();
    let all: BTreeSet<String> = example_files()
        .iter()
        .map(|p| {
            Path::new(p)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(files, all);
}
