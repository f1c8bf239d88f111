//! `create -f FILE` (Rollouts, Experiments, AnalysisTemplates, ClusterAnalysisTemplates,
//! AnalysisRuns; each document strictly checked first) and `create analysisrun` (an
//! AnalysisRun built from a template in the cluster or in a file, with `-a name=value`
//! arguments).

use std::io::Write;
use std::path::Path;

use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use rollouts_api::{
    AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment, Rollout, labels,
};
use serde_json::{Map, Value, json};

use crate::cli::CreateAnalysisRunArgs;
use crate::client::Kube;
use crate::error::{Error, Target};
use crate::lint::{Problem, decode_strict};
use crate::yaml::{Document, parse_documents};

/// What `create -f` made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    /// `Rollout`, `Experiment`, …
    pub kind: String,
    /// Name given by the server.
    pub name: String,
}

/// Reads a file's documents.
pub fn read_documents(path: &Path) -> Result<(String, Vec<Document>), Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file = path.display().to_string();
    let docs = parse_documents(&file, &text)?;
    Ok((file, docs))
}

/// The first problem of a strict decoding, as an error naming the file and line.
pub fn first_problem(file: &str, problems: Vec<Problem>) -> Error {
    let p = problems.into_iter().next().unwrap_or(Problem {
        line: 0,
        message: "invalid manifest".into(),
    });
    Error::Manifest {
        file: file.to_string(),
        line: p.line,
        message: p.message,
    }
}

struct Kind {
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
}

const KINDS: &[Kind] = &[
    Kind {
        kind: "Rollout",
        plural: "rollouts",
        singular: "rollout",
        namespaced: true,
    },
    Kind {
        kind: "Experiment",
        plural: "experiments",
        singular: "experiment",
        namespaced: true,
    },
    Kind {
        kind: "AnalysisTemplate",
        plural: "analysistemplates",
        singular: "analysistemplate",
        namespaced: true,
    },
    Kind {
        kind: "ClusterAnalysisTemplate",
        plural: "clusteranalysistemplates",
        singular: "clusteranalysistemplate",
        namespaced: false,
    },
    Kind {
        kind: "AnalysisRun",
        plural: "analysisruns",
        singular: "analysisrun",
        namespaced: true,
    },
];

fn resource(kind: &Kind) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(rollouts_api::GROUP, rollouts_api::VERSION, kind.kind),
        kind.plural,
    )
}

/// Checks one document strictly against its kind.
fn check(file: &str, doc: &Document) -> Result<&'static Kind, Error> {
    let (api_version, kind) = doc.type_meta();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let Some(k) = KINDS
        .iter()
        .find(|k| group == rollouts_api::GROUP && k.kind == kind)
    else {
        return Err(Error::Manifest {
            file: file.to_string(),
            line: doc.line,
            message: format!("creates of {group}/{kind} unsupported"),
        });
    };
    let checked = match k.kind {
        "Rollout" => decode_strict::<Rollout>(doc).map(drop),
        "Experiment" => decode_strict::<Experiment>(doc).map(drop),
        "AnalysisTemplate" => decode_strict::<AnalysisTemplate>(doc).map(drop),
        "ClusterAnalysisTemplate" => decode_strict::<ClusterAnalysisTemplate>(doc).map(drop),
        _ => decode_strict::<AnalysisRun>(doc).map(drop),
    };
    checked.map_err(|p| first_problem(file, p))?;
    Ok(k)
}

/// `create -f FILE...`: every document of every file is checked before anything is created.
pub async fn create_files(
    kube: &Kube,
    paths: &[std::path::PathBuf],
    out: &mut dyn Write,
) -> Result<Vec<Created>, Error> {
    let mut todo = Vec::new();
    for path in paths {
        let (file, docs) = read_documents(path)?;
        for doc in docs {
            let kind = check(&file, &doc)?;
            todo.push((kind, doc));
        }
    }
    let mut created = Vec::new();
    for (kind, doc) in todo {
        let obj: DynamicObject = serde_json::from_value(doc.value.clone())
            .map_err(|e| Error::Encoding(e.to_string()))?;
        let ar = resource(kind);
        let (api, ns): (Api<DynamicObject>, String) = if kind.namespaced {
            let ns = obj
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| kube.namespace.clone());
            (Api::namespaced_with(kube.client.clone(), &ns, &ar), ns)
        } else {
            (Api::all_with(kube.client.clone(), &ar), String::new())
        };
        let name = obj
            .metadata
            .name
            .clone()
            .or_else(|| obj.metadata.generate_name.clone())
            .unwrap_or_default();
        let made = api
            .create(&PostParams::default(), &obj)
            .await
            .map_err(|e| {
                Error::from_kube(
                    e,
                    "creating",
                    &Target::new(kind.singular, &name, &ns),
                    &kube.server,
                )
            })?;
        let made_name = made.metadata.name.unwrap_or_default();
        writeln!(
            out,
            "{}.{}/{made_name} created",
            kind.singular,
            rollouts_api::GROUP
        )?;
        created.push(Created {
            kind: kind.kind.to_string(),
            name: made_name,
        });
    }
    Ok(created)
}

/// `-a NAME=VALUE` flags as arguments.
pub fn parse_arguments(flags: &[String]) -> Result<Vec<(String, String)>, Error> {
    flags
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .ok_or_else(|| Error::Usage("arguments must be in the form NAME=VALUE".into()))
        })
        .collect()
}

/// Builds the AnalysisRun of `create analysisrun` from a template object (Argo's
/// `NewAnalysisRunFromUnstructured`): the template's spec with the given argument values
/// merged into its declared arguments (values for undeclared arguments are ignored; when the
/// template declares none, the given ones are used), its labels and annotations, and the new
/// name. A declared argument left without a value is an error.
pub fn analysis_run_from_template(
    template: &Value,
    args: &[(String, String)],
    name: &str,
    generate_name: &str,
    namespace: &str,
    instance_id: &str,
) -> Result<Value, Error> {
    let mut spec = template["spec"].as_object().cloned().unwrap_or_default();
    let new_args: Vec<Value> = match spec.get("args").and_then(Value::as_array) {
        None => args
            .iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect(),
        Some(declared) => {
            let mut merged = declared.clone();
            for (n, v) in args {
                if let Some(obj) = merged
                    .iter_mut()
                    .find(|a| a["name"] == n.as_str())
                    .and_then(Value::as_object_mut)
                {
                    obj.insert("value".into(), Value::String(v.clone()));
                }
            }
            for a in &merged {
                if a.get("value").is_none_or(Value::is_null)
                    && a.get("valueFrom").is_none_or(Value::is_null)
                {
                    return Err(Error::Refused(format!(
                        "args.{} was not resolved",
                        a["name"].as_str().unwrap_or("")
                    )));
                }
            }
            merged
        }
    };
    if new_args.is_empty() {
        spec.remove("args");
    } else {
        spec.insert("args".into(), Value::Array(new_args));
    }
    let mut metadata = Map::new();
    if !name.is_empty() {
        metadata.insert("name".into(), Value::String(name.to_string()));
    } else {
        metadata.insert(
            "generateName".into(),
            Value::String(generate_name.to_string()),
        );
    }
    metadata.insert("namespace".into(), Value::String(namespace.to_string()));
    let mut run_labels = template["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if !instance_id.is_empty() {
        run_labels.insert(
            labels::CONTROLLER_INSTANCE_ID.into(),
            Value::String(instance_id.to_string()),
        );
    }
    if !run_labels.is_empty() {
        metadata.insert("labels".into(), Value::Object(run_labels));
    }
    if let Some(a) = template["metadata"]["annotations"]
        .as_object()
        .filter(|a| !a.is_empty())
    {
        let mut a = a.clone();
        a.remove(labels::LAST_APPLIED_CONFIGURATION);
        if !a.is_empty() {
            metadata.insert("annotations".into(), Value::Object(a));
        }
    }
    Ok(json!({
        "apiVersion": rollouts_api::API_VERSION,
        "kind": "AnalysisRun",
        "metadata": metadata,
        "spec": spec,
    }))
}

/// `create analysisrun`.
pub async fn create_analysis_run(
    kube: &Kube,
    a: &CreateAnalysisRunArgs,
    out: &mut dyn Write,
) -> Result<String, Error> {
    if a.from.is_empty() == a.from_file.is_empty() {
        return Err(Error::Usage(
            "one of --from or --from-file must be specified".into(),
        ));
    }
    let args = parse_arguments(&a.arguments)?;
    let (kind, plural, namespaced) = if a.global {
        ("ClusterAnalysisTemplate", "clusteranalysistemplates", false)
    } else {
        ("AnalysisTemplate", "analysistemplates", true)
    };
    let template: Value = if !a.from.is_empty() {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(rollouts_api::GROUP, rollouts_api::VERSION, kind),
            plural,
        );
        let api: Api<DynamicObject> = if namespaced {
            Api::namespaced_with(kube.client.clone(), &kube.namespace, &ar)
        } else {
            Api::all_with(kube.client.clone(), &ar)
        };
        let target = Target::new(
            if a.global {
                "clusteranalysistemplate"
            } else {
                "analysistemplate"
            },
            &a.from,
            if namespaced { &kube.namespace } else { "" },
        );
        let obj = api
            .get(&a.from)
            .await
            .map_err(|e| Error::from_kube(e, "getting", &target, &kube.server))?;
        serde_json::to_value(obj).map_err(|e| Error::Encoding(e.to_string()))?
    } else {
        let (file, docs) = read_documents(Path::new(&a.from_file))?;
        let doc = docs.into_iter().next().ok_or_else(|| Error::Manifest {
            file: file.clone(),
            line: 1,
            message: "the file holds no document".into(),
        })?;
        if a.global {
            decode_strict::<ClusterAnalysisTemplate>(&doc).map_err(|p| first_problem(&file, p))?;
        } else {
            decode_strict::<AnalysisTemplate>(&doc).map_err(|p| first_problem(&file, p))?;
        }
        doc.value
    };
    let template_name = template["metadata"]["name"].as_str().unwrap_or("");
    let generate_name = if a.generate_name.is_empty() {
        format!("{template_name}-")
    } else {
        a.generate_name.clone()
    };
    if a.name.is_empty() && generate_name == "-" {
        return Err(Error::Usage("name is invalid".into()));
    }
    let run = analysis_run_from_template(
        &template,
        &args,
        &a.name,
        &generate_name,
        &kube.namespace,
        &a.instance_id,
    )?;
    let obj: DynamicObject =
        serde_json::from_value(run).map_err(|e| Error::Encoding(e.to_string()))?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(kube.client.clone(), &kube.namespace, &resource(&KINDS[4]));
    let made = api
        .create(&PostParams::default(), &obj)
        .await
        .map_err(|e| kube.err(e, "creating", &kube.target("analysisrun", &a.name)))?;
    let name = made.metadata.name.unwrap_or_default();
    writeln!(out, "analysisrun.argoproj.io/{name} created")?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_runs_from_templates() {
        let t = json!({"metadata": {"name": "rate"}, "spec": {
            "args": [{"name": "svc"}, {"name": "port", "value": "80"}],
            "metrics": [{"name": "m", "provider": {"web": {"url": "http://x"}}}],
            "dryRun": [{"metricName": "m"}]
        }});
        let run = analysis_run_from_template(
            &t,
            &[("svc".into(), "web".into())],
            "",
            "rate-",
            "ns",
            "i1",
        )
        .unwrap();
        assert_eq!(
            run["metadata"],
            json!({"generateName": "rate-", "namespace": "ns",
            "labels": {"argo-rollouts.argoproj.io/controller-instance-id": "i1"}})
        );
        assert_eq!(
            run["spec"]["args"],
            json!([{"name": "svc", "value": "web"}, {"name": "port", "value": "80"}])
        );
        assert_eq!(run["spec"]["dryRun"], json!([{"metricName": "m"}]));
        assert_eq!(run["kind"], "AnalysisRun");
        let unresolved = analysis_run_from_template(&t, &[], "x", "", "ns", "").unwrap_err();
        assert_eq!(unresolved.to_string(), "args.svc was not resolved");
        // Values for undeclared arguments are ignored, as Argo does.
        let run = analysis_run_from_template(
            &t,
            &[("svc".into(), "a".into()), ("nope".into(), "1".into())],
            "x",
            "",
            "ns",
            "",
        )
        .unwrap();
        assert_eq!(run["metadata"], json!({"name": "x", "namespace": "ns"}));
        assert_eq!(run["spec"]["args"].as_array().unwrap().len(), 2);
        // A template without arguments takes the given ones.
        let bare =
            json!({"metadata": {"name": "t", "labels": {"team": "a"}}, "spec": {"metrics": []}});
        let run =
            analysis_run_from_template(&bare, &[("x".into(), "1".into())], "", "t-", "ns", "")
                .unwrap();
        assert_eq!(run["spec"]["args"], json!([{"name": "x", "value": "1"}]));
        assert_eq!(run["metadata"]["labels"], json!({"team": "a"}));
        assert!(
            parse_arguments(&["a=b=c".into()]).unwrap()
                == vec![("a".to_string(), "b=c".to_string())]
        );
        assert!(parse_arguments(&["ab".into()]).is_err());
    }
}
