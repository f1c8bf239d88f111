//! AnalysisRuns from the templates a Rollout names (Argo's `NewAnalysisRunFromTemplates`,
//! `argo-core.md` §2.15).
//!
//! The engine decides that a run is needed and names it ([`AnalysisRunRequest`]); here the
//! templates are fetched and merged into the run:
//!
//! - templates are collected in the order the Rollout lists them, each followed by the
//!   templates it references itself (`spec.templates`, recursively), then de-duplicated by
//!   name; namespaced AnalysisTemplates come from the Rollout's namespace;
//! - metrics are concatenated, AnalysisTemplates first, then ClusterAnalysisTemplates; two
//!   metrics with the same name are an error;
//! - template arguments are merged by name (a value set twice must be the same value; a set
//!   value is never replaced by an unset one), then the Rollout's arguments fill them in (its
//!   value, else its `valueFrom`); an argument left without either is an error
//!   (`args.<name> was not resolved`); Rollout arguments no template declares are dropped;
//! - `dryRun` and `measurementRetention` are concatenated, the Rollout's first, then the
//!   templates'; duplicate metric names are an error.
//!
//! Metrics are merged as JSON, exactly as stored in the templates, so fields this build does
//! not model reach the run untouched.
//!
//! Creating handles name collisions as Argo's `CreateWithCollisionCounter` does: an existing
//! run with the same spec, owned by the same Rollout and not finished, is ours (seen through a
//! stale cache) and is reused; any other run with that name makes us try `<name>.1`, `<name>.2`.

use std::collections::BTreeSet;

use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, PostParams},
};
use rollouts_api::{AnalysisTemplate, Argument, ClusterAnalysisTemplate, RolloutAnalysis};
use rollouts_engine::AnalysisRunRequest;
use serde_json::{Value, json};

use crate::error::{Error, Result, code_of};

/// Nested template references deeper than this are taken as a cycle.
const MAX_DEPTH: usize = 16;

/// Attempts at a free name before giving up.
const MAX_COLLISIONS: usize = 100;

/// One fetched template.
#[derive(Clone, Debug)]
struct Template {
    name: String,
    spec: Value,
}

/// Fetches the templates `refs` name, with their nested references, de-duplicated.
async fn fetch_templates(
    client: &Client,
    namespace: &str,
    analysis: &RolloutAnalysis,
) -> Result<(Vec<Template>, Vec<Template>)> {
    let at: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::erase::<AnalysisTemplate>(&()),
    );
    let cat: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::erase::<ClusterAnalysisTemplate>(&()),
    );
    let mut templates = Vec::new();
    let mut cluster_templates = Vec::new();
    // Depth-first, as Argo's getAnalysisTemplatesFromRefs: a template, then its nested ones.
    let mut stack: Vec<(Value, usize)> = analysis
        .templates
        .iter()
        .flatten()
        .rev()
        .map(|r| (serde_json::to_value(r).unwrap_or(Value::Null), 0))
        .collect();
    while let Some((reference, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(Error::Analysis {
                run: String::new(),
                message: format!(
                    "analysis templates reference each other more than {MAX_DEPTH} levels deep"
                ),
            });
        }
        let name = reference["templateName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let cluster = reference["clusterScope"].as_bool().unwrap_or(false);
        let (api, kind) = if cluster {
            (&cat, "ClusterAnalysisTemplate")
        } else {
            (&at, "AnalysisTemplate")
        };
        let obj = api
            .get_opt(&name)
            .await
            .map_err(|e| Error::kube(format!("reading {kind} {name:?}"), e))?
            .ok_or_else(|| Error::Analysis {
                run: String::new(),
                message: format!("{kind} {name:?} not found"),
            })?;
        let spec = obj.data.get("spec").cloned().unwrap_or(Value::Null);
        if let Some(nested) = spec.get("templates").and_then(Value::as_array) {
            for r in nested.iter().rev() {
                stack.push((r.clone(), depth + 1));
            }
        }
        let t = Template { name, spec };
        if cluster {
            cluster_templates.push(t);
        } else {
            templates.push(t);
        }
    }
    dedup(&mut templates);
    dedup(&mut cluster_templates);
    Ok((templates, cluster_templates))
}

fn dedup(list: &mut Vec<Template>) {
    let mut seen = BTreeSet::new();
    list.retain(|t| seen.insert(t.name.clone()));
}

fn array<'a>(spec: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    spec.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn metric_names_unique(items: &[Value], key: &str, what: &str) -> std::result::Result<(), String> {
    let mut seen = BTreeSet::new();
    for item in items {
        let name = item.get(key).and_then(Value::as_str).unwrap_or_default();
        if !seen.insert(name.to_string()) {
            return Err(format!("two {what} have the same name '{name}'"));
        }
    }
    Ok(())
}

/// Merges template arguments by name (Argo's `flattenArgs`).
fn flatten_args(all: &[&Template]) -> std::result::Result<Vec<Argument>, String> {
    let mut combined: Vec<Argument> = Vec::new();
    for t in all {
        for raw in array(&t.spec, "args") {
            let arg: Argument = serde_json::from_value(raw.clone())
                .map_err(|e| format!("template {:?}: an argument does not decode: {e}", t.name))?;
            match combined.iter_mut().find(|a| a.name == arg.name) {
                Some(prev) => {
                    if let (Some(a), Some(b)) = (&prev.value, &arg.value)
                        && a != b
                    {
                        return Err(format!(
                            "Argument `{}` specified multiple times with different values: '{a}', '{b}'",
                            arg.name
                        ));
                    }
                    if prev.value.is_none() {
                        *prev = arg;
                    }
                }
                None => combined.push(arg),
            }
        }
    }
    Ok(combined)
}

/// Fills template arguments with the Rollout's (Argo's `MergeArgs`).
fn merge_args(
    incoming: &[Argument],
    template_args: Vec<Argument>,
) -> std::result::Result<Vec<Argument>, String> {
    let mut args = template_args;
    for arg in incoming {
        if let Some(t) = args.iter_mut().find(|a| a.name == arg.name) {
            if arg.value.is_some() {
                t.value = arg.value.clone();
            } else if arg.value_from.is_some() {
                t.value_from = arg.value_from.clone();
            }
        }
    }
    if let Some(missing) = args
        .iter()
        .find(|a| a.value.is_none() && a.value_from.is_none())
    {
        return Err(format!("args.{} was not resolved", missing.name));
    }
    Ok(args)
}

/// The `spec` of the run: the merge of the templates with the Rollout's analysis.
fn merged_spec(
    templates: &[Template],
    cluster_templates: &[Template],
    request: &AnalysisRunRequest,
) -> std::result::Result<Value, String> {
    let all: Vec<&Template> = templates.iter().chain(cluster_templates).collect();
    let metrics: Vec<Value> = all
        .iter()
        .flat_map(|t| array(&t.spec, "metrics"))
        .cloned()
        .collect();
    metric_names_unique(&metrics, "name", "metrics")?;
    let template_dry_run: Vec<Value> = all
        .iter()
        .flat_map(|t| array(&t.spec, "dryRun"))
        .cloned()
        .collect();
    metric_names_unique(&template_dry_run, "metricName", "Dry-Run metric rules")?;
    let template_retention: Vec<Value> = all
        .iter()
        .flat_map(|t| array(&t.spec, "measurementRetention"))
        .cloned()
        .collect();
    metric_names_unique(
        &template_retention,
        "metricName",
        "Measurement Retention metric rules",
    )?;
    let args = merge_args(&request.args, flatten_args(&all)?)?;
    let mut dry_run: Vec<Value> = request
        .analysis
        .dry_run
        .iter()
        .flatten()
        .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
        .collect();
    dry_run.extend(template_dry_run);
    metric_names_unique(&dry_run, "metricName", "Dry-Run metric rules")?;
    let mut retention: Vec<Value> = request
        .analysis
        .measurement_retention
        .iter()
        .flatten()
        .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
        .collect();
    retention.extend(template_retention);
    metric_names_unique(
        &retention,
        "metricName",
        "Measurement Retention metric rules",
    )?;
    let mut spec = json!({ "metrics": metrics });
    if !args.is_empty() {
        spec["args"] = serde_json::to_value(&args).unwrap_or(Value::Null);
    }
    if !dry_run.is_empty() {
        spec["dryRun"] = Value::Array(dry_run);
    }
    if !retention.is_empty() {
        spec["measurementRetention"] = Value::Array(retention);
    }
    Ok(spec)
}

/// The AnalysisRun object for a request (templates fetched and merged).
pub async fn build_run(
    client: &Client,
    namespace: &str,
    request: &AnalysisRunRequest,
) -> Result<Value> {
    let named = |e: Error| match e {
        Error::Analysis { message, .. } => Error::Analysis {
            run: request.name.clone(),
            message,
        },
        other => other,
    };
    let (templates, cluster_templates) = fetch_templates(client, namespace, &request.analysis)
        .await
        .map_err(named)?;
    let spec = merged_spec(&templates, &cluster_templates, request).map_err(|message| {
        Error::Analysis {
            run: request.name.clone(),
            message,
        }
    })?;
    Ok(json!({
        "apiVersion": rollouts_api::API_VERSION,
        "kind": "AnalysisRun",
        "metadata": {
            "name": request.name,
            "namespace": namespace,
            "labels": request.labels,
            "annotations": request.annotations,
            "ownerReferences": [{
                "apiVersion": rollouts_api::API_VERSION,
                "kind": "Rollout",
                "name": request.owner_name,
                "uid": request.owner_uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
    }))
}

/// Whether an existing run is the one we meant to create (same spec, same owner, running).
fn is_ours(existing: &DynamicObject, run: &Value, owner_uid: &str) -> bool {
    let finished = matches!(
        existing.data["status"]["phase"].as_str(),
        Some("Successful" | "Failed" | "Error" | "Inconclusive")
    );
    let owner = existing
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == owner_uid);
    let strip = |spec: &Value| {
        let mut s = spec.clone();
        if let Some(o) = s.as_object_mut() {
            o.remove("terminate");
        }
        s
    };
    !finished && owner && strip(&existing.data["spec"]) == strip(&run["spec"])
}

/// Creates the run, stepping over name collisions. Returns the name and resourceVersion used.
pub async fn create_run(
    client: &Client,
    namespace: &str,
    mut run: Value,
    owner_uid: &str,
) -> Result<(String, Option<String>)> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::erase::<rollouts_api::AnalysisRun>(&()),
    );
    let base = run["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for n in 0..MAX_COLLISIONS {
        let name = if n == 0 {
            base.clone()
        } else {
            format!("{base}.{n}")
        };
        run["metadata"]["name"] = json!(name);
        let obj: DynamicObject =
            serde_json::from_value(run.clone()).map_err(|source| Error::Json {
                what: format!("building AnalysisRun {name:?}"),
                source,
            })?;
        match api.create(&PostParams::default(), &obj).await {
            Ok(created) => return Ok((name, created.metadata.resource_version)),
            Err(e) if code_of(&e) == Some(409) => {
                let existing = api
                    .get(&name)
                    .await
                    .map_err(|e| Error::kube(format!("reading AnalysisRun {name:?}"), e))?;
                if is_ours(&existing, &run, owner_uid) {
                    return Ok((name, existing.metadata.resource_version));
                }
            }
            Err(e) => return Err(Error::kube(format!("creating AnalysisRun {name:?}"), e)),
        }
    }
    Err(Error::Analysis {
        run: base,
        message: format!("no free name after {MAX_COLLISIONS} attempts"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn template(name: &str, _cluster: bool, spec: Value) -> Template {
        Template {
            name: name.into(),
            spec,
        }
    }

    fn request(args: Value, analysis: Value) -> AnalysisRunRequest {
        AnalysisRunRequest {
            name: "web-abc-2-1".into(),
            kind: rollouts_engine::AnalysisRunKind::Step(1),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            analysis: serde_json::from_value(analysis).unwrap(),
            args: serde_json::from_value(args).unwrap(),
            owner_name: "web".into(),
            owner_uid: "uid-1".into(),
        }
    }

    #[test]
    fn templates_merge_as_argo_merges_them() {
        let at = template(
            "success-rate",
            false,
            json!({
                "args": [{"name": "service-name"}, {"name": "threshold", "value": "0.95"}],
                "metrics": [{"name": "success-rate", "interval": "1m", "provider": {"prometheus": {"query": "q"}}, "unknownField": {"kept": true}}],
                "dryRun": [{"metricName": "success-rate"}]
            }),
        );
        let cat = template(
            "latency",
            true,
            json!({
                "args": [{"name": "service-name"}, {"name": "threshold", "value": "0.95"}],
                "metrics": [{"name": "latency", "provider": {"web": {"url": "http://x"}}}],
                "measurementRetention": [{"metricName": "latency", "limit": 20}]
            }),
        );
        let req = request(
            json!([{"name": "service-name", "value": "web-canary"}, {"name": "ignored", "value": "x"}]),
            json!({"dryRun": [{"metricName": "other"}], "measurementRetention": [{"metricName": "success-rate", "limit": 5}]}),
        );
        let spec = merged_spec(&[at], &[cat], &req).unwrap();
        assert_eq!(spec["metrics"][0]["name"], "success-rate");
        assert_eq!(
            spec["metrics"][0]["unknownField"]["kept"], true,
            "unknown fields survive"
        );
        assert_eq!(spec["metrics"][1]["name"], "latency");
        assert_eq!(
            spec["args"],
            json!([{"name": "service-name", "value": "web-canary"}, {"name": "threshold", "value": "0.95"}])
        );
        assert_eq!(
            spec["dryRun"],
            json!([{"metricName": "other"}, {"metricName": "success-rate"}])
        );
        assert_eq!(
            spec["measurementRetention"],
            json!([{"metricName": "success-rate", "limit": 5}, {"metricName": "latency", "limit": 20}])
        );
    }

    #[test]
    fn merge_errors_name_the_problem() {
        let a = template(
            "a",
            false,
            json!({"metrics": [{"name": "m"}], "args": [{"name": "x", "value": "1"}]}),
        );
        let b = template("b", false, json!({"metrics": [{"name": "m"}]}));
        let req = request(json!([]), json!({}));
        assert_eq!(
            merged_spec(&[a.clone(), b], &[], &req).unwrap_err(),
            "two metrics have the same name 'm'"
        );
        let c = template(
            "c",
            true,
            json!({"metrics": [{"name": "n"}], "args": [{"name": "x", "value": "2"}]}),
        );
        assert_eq!(
            merged_spec(std::slice::from_ref(&a), &[c], &req).unwrap_err(),
            "Argument `x` specified multiple times with different values: '1', '2'"
        );
        let d = template(
            "d",
            false,
            json!({"metrics": [{"name": "n"}], "args": [{"name": "needed"}]}),
        );
        assert_eq!(
            merged_spec(std::slice::from_ref(&d), &[], &req).unwrap_err(),
            "args.needed was not resolved"
        );
        let from = request(
            json!([{"name": "needed", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
            json!({}),
        );
        let spec = merged_spec(&[d], &[], &from).unwrap();
        assert_eq!(spec["args"][0]["valueFrom"]["secretKeyRef"]["key"], "k");
        let dup = request(json!([]), json!({"dryRun": [{"metricName": "m"}]}));
        let e = template(
            "e",
            false,
            json!({"metrics": [{"name": "m"}], "dryRun": [{"metricName": "m"}]}),
        );
        assert_eq!(
            merged_spec(&[e], &[], &dup).unwrap_err(),
            "two Dry-Run metric rules have the same name 'm'"
        );
    }

    #[test]
    fn a_set_argument_is_not_replaced_by_an_unset_one() {
        let a = template("a", false, json!({"args": [{"name": "x", "value": "1"}]}));
        let b = template(
            "b",
            false,
            json!({"args": [{"name": "x"}, {"name": "y", "value": "2"}]}),
        );
        let args = flatten_args(&[&a, &b]).unwrap();
        assert_eq!(args[0].value.as_deref(), Some("1"));
        assert_eq!(args[1].name, "y");
        let c = template("c", false, json!({"args": [{"name": "x"}]}));
        let d = template("d", false, json!({"args": [{"name": "x", "value": "3"}]}));
        assert_eq!(
            flatten_args(&[&c, &d]).unwrap()[0].value.as_deref(),
            Some("3")
        );
    }

    #[test]
    fn an_existing_run_is_ours_only_when_running_same_spec_same_owner() {
        let run = json!({"spec": {"metrics": [{"name": "m"}]}});
        let existing = |phase: &str, uid: &str, spec: Value| -> DynamicObject {
            serde_json::from_value(json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
                "metadata": {"name": "r", "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "web", "uid": uid, "controller": true}]},
                "spec": spec, "status": {"phase": phase}
            }))
            .unwrap()
        };
        assert!(is_ours(
            &existing("Running", "u", json!({"metrics": [{"name": "m"}]})),
            &run,
            "u"
        ));
        assert!(is_ours(
            &existing(
                "",
                "u",
                json!({"metrics": [{"name": "m"}], "terminate": true})
            ),
            &run,
            "u"
        ));
        assert!(!is_ours(
            &existing("Successful", "u", json!({"metrics": [{"name": "m"}]})),
            &run,
            "u"
        ));
        assert!(!is_ours(
            &existing("Running", "other", json!({"metrics": [{"name": "m"}]})),
            &run,
            "u"
        ));
        assert!(!is_ours(
            &existing("Running", "u", json!({"metrics": [{"name": "x"}]})),
            &run,
            "u"
        ));
    }

    #[tokio::test]
    async fn runs_are_built_from_fetched_templates_with_owner_and_labels() {
        use http::{Request, Response};
        use kube::client::Body;
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(svc, "default");
        let server = tokio::spawn(async move {
            let (req, send) = handle.next_request().await.unwrap();
            assert_eq!(
                req.uri().path(),
                "/apis/argoproj.io/v1alpha1/namespaces/team/analysistemplates/rate"
            );
            let at = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
                "metadata": {"name": "rate"},
                "spec": {"metrics": [{"name": "rate"}], "templates": [{"templateName": "global", "clusterScope": true}]}});
            send.send_response(Response::new(Body::from(serde_json::to_vec(&at).unwrap())));
            let (req, send) = handle.next_request().await.unwrap();
            assert_eq!(
                req.uri().path(),
                "/apis/argoproj.io/v1alpha1/clusteranalysistemplates/global"
            );
            let cat = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "ClusterAnalysisTemplate",
                "metadata": {"name": "global"}, "spec": {"metrics": [{"name": "global"}]}});
            send.send_response(Response::new(Body::from(serde_json::to_vec(&cat).unwrap())));
        });
        let mut req = request(json!([]), json!({"templates": [{"templateName": "rate"}]}));
        req.labels.insert("rollout-type".into(), "Step".into());
        let run = build_run(&client, "team", &req).await.unwrap();
        server.await.unwrap();
        assert_eq!(run["metadata"]["name"], "web-abc-2-1");
        assert_eq!(run["metadata"]["labels"]["rollout-type"], "Step");
        assert_eq!(run["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(run["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(
            run["spec"]["metrics"],
            json!([{"name": "rate"}, {"name": "global"}])
        );
        assert!(run["spec"].get("args").is_none());
    }

    #[tokio::test]
    async fn a_missing_template_is_a_clear_error() {
        use http::{Request, Response};
        use kube::client::Body;
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(svc, "default");
        let server = tokio::spawn(async move {
            let (_, send) = handle.next_request().await.unwrap();
            let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"});
            send.send_response(
                Response::builder()
                    .status(404)
                    .body(Body::from(serde_json::to_vec(&status).unwrap()))
                    .unwrap(),
            );
        });
        let req = request(json!([]), json!({"templates": [{"templateName": "gone"}]}));
        let err = build_run(&client, "team", &req)
            .await
            .unwrap_err()
            .to_string();
        server.await.unwrap();
        assert_eq!(
            err,
            "creating AnalysisRun web-abc-2-1: AnalysisTemplate \"gone\" not found"
        );
    }
}
