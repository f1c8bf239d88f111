//! AnalysisRuns from the Rollout's side: naming, labels, argument resolution, and which runs
//! are current (`argo-core.md` §2.15). Whether a run is created, evaluated or terminated is
//! decided by the strategy modules; the run's metrics are evaluated by the AnalysisRun
//! controller.

use std::collections::BTreeMap;

use rollouts_api::{AnalysisRunArgument, Argument, Rollout, labels};

use crate::snapshot::AnalysisRunView;

/// AnalysisRun phases.
pub mod phase {
    /// Pending.
    pub const PENDING: &str = "Pending";
    /// Running.
    pub const RUNNING: &str = "Running";
    /// Successful.
    pub const SUCCESSFUL: &str = "Successful";
    /// Failed.
    pub const FAILED: &str = "Failed";
    /// Error.
    pub const ERROR: &str = "Error";
    /// Inconclusive.
    pub const INCONCLUSIVE: &str = "Inconclusive";
}

/// Whether a phase is terminal (Argo's `AnalysisPhase.Completed()`).
pub fn is_completed(phase: &str) -> bool {
    matches!(
        phase,
        phase::SUCCESSFUL | phase::FAILED | phase::ERROR | phase::INCONCLUSIVE
    )
}

/// Resolves a downward-API style `metadata.*` field path on the Rollout (Kubernetes'
/// `ExtractFieldPathAsString`); `None` for an unsupported path.
pub fn metadata_field(rollout: &Rollout, path: &str) -> Option<String> {
    let meta = &rollout.metadata;
    let format_map = |m: Option<&BTreeMap<String, String>>| {
        m.map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}\n", crate::conditions::quote(v)))
                .collect::<String>()
        })
        .unwrap_or_default()
        .trim_end_matches('\n')
        .to_string()
    };
    if let Some(rest) = path.strip_suffix("']") {
        for (prefix, map) in [
            ("metadata.annotations['", meta.annotations.as_ref()),
            ("metadata.labels['", meta.labels.as_ref()),
        ] {
            if let Some(key) = rest.strip_prefix(prefix) {
                return Some(map.and_then(|m| m.get(key)).cloned().unwrap_or_default());
            }
        }
        return None;
    }
    match path {
        "metadata.annotations" => Some(format_map(meta.annotations.as_ref())),
        "metadata.labels" => Some(format_map(meta.labels.as_ref())),
        "metadata.name" => Some(meta.name.clone().unwrap_or_default()),
        "metadata.namespace" => Some(meta.namespace.clone().unwrap_or_default()),
        "metadata.uid" => Some(meta.uid.clone().unwrap_or_default()),
        _ => None,
    }
}

/// Resolves a dotted/indexed path (`spec.template.spec.containers[0].image`) in the Rollout's
/// JSON; the value must be a primitive.
fn json_field(rollout: &Rollout, path: &str) -> Option<String> {
    let mut value = serde_json::to_value(rollout).ok()?;
    for part in path.split('.') {
        let (key, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            value = value.get(key)?.clone();
        }
        for idx in indexes.split('[').filter(|s| !s.is_empty()) {
            let n: usize = idx.trim_end_matches(']').parse().ok()?;
            value = value.get(n)?.clone();
        }
    }
    match value {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Argo's `BuildArgumentsForRolloutAnalysisRun`: literal values, pod-template hashes of the
/// stable or latest ReplicaSet, and field references into the Rollout. An argument that cannot
/// be resolved is passed without a value (the run then reports it as unresolved).
pub fn build_args(
    args: &[AnalysisRunArgument],
    stable_hash: &str,
    latest_hash: &str,
    rollout: &Rollout,
) -> Vec<Argument> {
    args.iter()
        .map(|arg| {
            let value = match (&arg.value, &arg.value_from) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(from)) => {
                    if let Some(which) = &from.pod_template_hash_value {
                        Some(
                            if which == "Stable" {
                                stable_hash
                            } else {
                                latest_hash
                            }
                            .to_string(),
                        )
                    } else if let Some(field) = &from.field_ref {
                        if field.field_path.starts_with("metadata") {
                            metadata_field(rollout, &field.field_path)
                        } else {
                            json_field(rollout, &field.field_path)
                        }
                    } else {
                        None
                    }
                }
                (None, None) => None,
            };
            Argument {
                name: arg.name.clone(),
                value,
                ..Default::default()
            }
        })
        .collect()
}

/// Labels of a run: `rollouts-pod-template-hash`, `rollout-type`, `step-index` for steps, and
/// the controller instance id when set.
pub fn run_labels(
    kind: crate::plan::AnalysisRunKind,
    pod_hash: &str,
    instance_id: &str,
) -> BTreeMap<String, String> {
    use crate::plan::AnalysisRunKind;
    let mut out = BTreeMap::new();
    out.insert(labels::POD_TEMPLATE_HASH.to_string(), pod_hash.to_string());
    let kind_label = match kind {
        AnalysisRunKind::Step(i) => {
            out.insert(labels::STEP_INDEX.to_string(), i.to_string());
            labels::rollout_type::STEP
        }
        AnalysisRunKind::Background => labels::rollout_type::BACKGROUND,
        AnalysisRunKind::PrePromotion => labels::rollout_type::PRE_PROMOTION,
        AnalysisRunKind::PostPromotion => labels::rollout_type::POST_PROMOTION,
    };
    out.insert(labels::ROLLOUT_TYPE.to_string(), kind_label.to_string());
    if !instance_id.is_empty() {
        out.insert(
            labels::CONTROLLER_INSTANCE_ID.to_string(),
            instance_id.to_string(),
        );
    }
    out
}

/// A free name for a new run: `base`, or `base.1`, `base.2`, ... when taken. An existing run
/// with the base name that is still running is reused (returned as `Err(name)`), as Argo does
/// after a stale-cache create.
pub fn free_name(base: &str, runs: &[AnalysisRunView], separator: &str) -> Result<String, String> {
    let taken = |n: &str| runs.iter().find(|r| r.name == n);
    let mut candidate = base.to_string();
    let mut counter = 1;
    while let Some(existing) = taken(&candidate) {
        if !is_completed(&existing.phase) && !existing.terminate {
            return Err(candidate);
        }
        candidate = format!("{base}{separator}{counter}");
        counter += 1;
    }
    Ok(candidate)
}

/// Argo's `FilterAnalysisRunsToDelete` (also used for Experiments): runs without a hash label,
/// or whose ReplicaSet is gone or being deleted, plus the oldest beyond the history limits.
pub fn runs_to_delete<'a>(
    runs: impl IntoIterator<
        Item = (
            &'a str,
            &'a BTreeMap<String, String>,
            &'a str,
            jiff::Timestamp,
            bool,
        ),
    >,
    rs_hashes: &BTreeMap<String, bool>,
    limit_successful: i32,
    limit_unsuccessful: i32,
) -> Vec<String> {
    let mut runs: Vec<_> = runs.into_iter().filter(|r| !r.4).collect();
    runs.sort_by_key(|r| std::cmp::Reverse(r.3));
    let (mut ok, mut bad) = (0, 0);
    let mut out = Vec::new();
    for (name, labels_, phase_, _, _) in runs {
        let Some(hash) = labels_.get(labels::POD_TEMPLATE_HASH) else {
            out.push(name.to_string());
            continue;
        };
        match rs_hashes.get(hash) {
            None | Some(true) => {
                out.push(name.to_string());
                continue;
            }
            Some(false) => {}
        }
        if phase_ == phase::SUCCESSFUL {
            if ok < limit_successful {
                ok += 1;
            } else {
                out.push(name.to_string());
            }
        } else if matches!(phase_, phase::FAILED | phase::ERROR | phase::INCONCLUSIVE) {
            if bad < limit_unsuccessful {
                bad += 1;
            } else {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// How deep template references may nest.
const MAX_TEMPLATE_DEPTH: usize = 10;

/// Collects the templates `refs` names, following nested `templates` references (Argo's
/// `getAnalysisTemplatesFromRefs`), then keeps the first of each name.
fn resolve_templates<'t>(
    refs: &[rollouts_api::AnalysisTemplateRef],
    templates: &'t [rollouts_api::AnalysisTemplate],
    cluster: &'t [rollouts_api::ClusterAnalysisTemplate],
    depth: usize,
    out_t: &mut Vec<&'t rollouts_api::AnalysisTemplate>,
    out_c: &mut Vec<&'t rollouts_api::ClusterAnalysisTemplate>,
) -> Result<(), crate::Error> {
    if depth > MAX_TEMPLATE_DEPTH {
        return Err(crate::Error::TemplateNesting(MAX_TEMPLATE_DEPTH));
    }
    for r in refs {
        let name = r.template_name.clone().unwrap_or_default();
        if r.cluster_scope == Some(true) {
            let t = cluster
                .iter()
                .find(|t| t.metadata.name.as_deref() == Some(name.as_str()))
                .ok_or(crate::Error::TemplateNotFound {
                    kind: "clusteranalysistemplate",
                    name,
                })?;
            out_c.push(t);
            if let Some(inner) = &t.spec.templates {
                resolve_templates(inner, templates, cluster, depth + 1, out_t, out_c)?;
            }
        } else {
            let t = templates
                .iter()
                .find(|t| t.metadata.name.as_deref() == Some(name.as_str()))
                .ok_or(crate::Error::TemplateNotFound {
                    kind: "analysistemplate",
                    name,
                })?;
            out_t.push(t);
            if let Some(inner) = &t.spec.templates {
                resolve_templates(inner, templates, cluster, depth + 1, out_t, out_c)?;
            }
        }
    }
    Ok(())
}

/// Builds the AnalysisRun a [`crate::AnalysisRunRequest`] asks for from the templates it names
/// (Argo's `NewAnalysisRunFromTemplates`): metrics of the namespaced templates then the
/// cluster-scoped ones (duplicate names are an error), template arguments merged (conflicting
/// values are an error) and overridden by the Rollout's, dry-run and retention rules of the
/// Rollout first, then of the templates.
pub fn build_run(
    request: &crate::AnalysisRunRequest,
    namespace: Option<&str>,
    templates: &[rollouts_api::AnalysisTemplate],
    cluster: &[rollouts_api::ClusterAnalysisTemplate],
) -> Result<rollouts_api::AnalysisRun, crate::Error> {
    use crate::Error;
    let mut ts = Vec::new();
    let mut cs = Vec::new();
    let refs = request.analysis.templates.clone().unwrap_or_default();
    resolve_templates(&refs, templates, cluster, 0, &mut ts, &mut cs)?;
    let mut seen = std::collections::BTreeSet::new();
    ts.retain(|t| seen.insert(t.metadata.name.clone()));
    let mut seen = std::collections::BTreeSet::new();
    cs.retain(|t| seen.insert(t.metadata.name.clone()));
    let specs: Vec<&rollouts_api::AnalysisTemplateSpec> = ts
        .iter()
        .map(|t| &t.spec)
        .chain(cs.iter().map(|t| &t.spec))
        .collect();

    let metrics: Vec<rollouts_api::Metric> = specs
        .iter()
        .flat_map(|s| s.metrics.iter().flatten().cloned())
        .collect();
    let mut names = std::collections::BTreeSet::new();
    for m in &metrics {
        if !names.insert(m.name.clone()) {
            return Err(Error::DuplicateMetric(m.name.clone()));
        }
    }

    let mut args: Vec<Argument> = Vec::new();
    for arg in specs.iter().flat_map(|s| s.args.iter().flatten()) {
        match args.iter_mut().find(|a| a.name == arg.name) {
            Some(prev) => {
                if let (Some(a), Some(b)) = (&prev.value, &arg.value)
                    && a != b
                {
                    return Err(Error::ConflictingArgument {
                        name: arg.name.clone(),
                        first: a.clone(),
                        second: b.clone(),
                    });
                }
                if prev.value.is_none() {
                    *prev = arg.clone();
                }
            }
            None => args.push(arg.clone()),
        }
    }
    for incoming in &request.args {
        if let Some(a) = args.iter_mut().find(|a| a.name == incoming.name) {
            if incoming.value.is_some() {
                a.value = incoming.value.clone();
            } else if incoming.value_from.is_some() {
                a.value_from = incoming.value_from.clone();
            }
        }
    }
    if let Some(a) = args
        .iter()
        .find(|a| a.value.is_none() && a.value_from.is_none())
    {
        return Err(Error::UnresolvedArgument(a.name.clone()));
    }

    let template_dry: Vec<_> = specs
        .iter()
        .flat_map(|s| s.dry_run.iter().flatten().cloned())
        .collect();
    let template_retention: Vec<_> = specs
        .iter()
        .flat_map(|s| s.measurement_retention.iter().flatten().cloned())
        .collect();
    let check_dupes = |names: Vec<String>, err: fn(String) -> Error| -> Result<(), Error> {
        let mut seen = std::collections::BTreeSet::new();
        for n in names {
            if !seen.insert(n.clone()) {
                return Err(err(n));
            }
        }
        Ok(())
    };
    check_dupes(
        template_dry.iter().map(|d| d.metric_name.clone()).collect(),
        Error::DuplicateDryRun,
    )?;
    check_dupes(
        template_retention
            .iter()
            .map(|d| d.metric_name.clone())
            .collect(),
        Error::DuplicateRetention,
    )?;
    let dry_run: Vec<_> = request
        .analysis
        .dry_run
        .iter()
        .flatten()
        .cloned()
        .chain(template_dry)
        .collect();
    let retention: Vec<_> = request
        .analysis
        .measurement_retention
        .iter()
        .flatten()
        .cloned()
        .chain(template_retention)
        .collect();
    check_dupes(
        dry_run.iter().map(|d| d.metric_name.clone()).collect(),
        Error::DuplicateDryRun,
    )?;
    check_dupes(
        retention.iter().map(|d| d.metric_name.clone()).collect(),
        Error::DuplicateRetention,
    )?;

    let mut run = rollouts_api::AnalysisRun::new(
        &request.name,
        rollouts_api::AnalysisRunSpec {
            metrics,
            args: (!args.is_empty()).then_some(args),
            dry_run: (!dry_run.is_empty()).then_some(dry_run),
            measurement_retention: (!retention.is_empty()).then_some(retention),
            ..Default::default()
        },
    );
    run.metadata.namespace = namespace.map(str::to_string);
    run.metadata.labels = Some(request.labels.clone());
    run.metadata.annotations = Some(request.annotations.clone());
    run.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: rollouts_api::API_VERSION.to_string(),
            kind: "Rollout".to_string(),
            name: request.owner_name.clone(),
            uid: request.owner_uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        },
    ]);
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AnalysisRunKind, AnalysisRunRequest};
    use serde_json::json;

    fn template(name: &str, spec: serde_json::Value) -> rollouts_api::AnalysisTemplate {
        rollouts_api::decode(&json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": name}, "spec": spec
        }))
        .expect("template")
    }

    fn request(templates: serde_json::Value, args: Vec<Argument>) -> AnalysisRunRequest {
        AnalysisRunRequest {
            name: "web-abc-2-1".into(),
            kind: AnalysisRunKind::Step(1),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            analysis: serde_json::from_value(
                json!({"templates": templates, "dryRun": [{"metricName": "a"}]}),
            )
            .expect("analysis"),
            args,
            owner_name: "web".into(),
            owner_uid: "uid".into(),
        }
    }

    fn metric(name: &str) -> serde_json::Value {
        json!({"name": name, "provider": {"web": {"url": "http://x"}}})
    }

    #[test]
    fn merges_templates_args_and_rules() {
        let ts = [
            template(
                "a",
                json!({"metrics": [metric("a")], "args": [{"name": "svc"}], "templates": [{"templateName": "b"}]}),
            ),
            template(
                "b",
                json!({"metrics": [metric("b")], "args": [{"name": "svc"}, {"name": "ns", "value": "default"}], "dryRun": [{"metricName": "b"}]}),
            ),
        ];
        let args = vec![Argument {
            name: "svc".into(),
            value: Some("web".into()),
            value_from: None,
        }];
        let run = build_run(
            &request(json!([{"templateName": "a"}]), args),
            Some("ns1"),
            &ts,
            &[],
        )
        .unwrap();
        let names: Vec<_> = run.spec.metrics.iter().map(|m| m.name.clone()).collect();
        assert_eq!(names, ["a", "b"]);
        let args: Vec<_> = run
            .spec
            .args
            .unwrap()
            .into_iter()
            .map(|a| (a.name, a.value))
            .collect();
        assert_eq!(
            args,
            [
                ("svc".into(), Some("web".into())),
                ("ns".into(), Some("default".into()))
            ]
        );
        let dry: Vec<_> = run
            .spec
            .dry_run
            .unwrap()
            .into_iter()
            .map(|d| d.metric_name)
            .collect();
        assert_eq!(dry, ["a", "b"]);
        assert_eq!(run.metadata.namespace.as_deref(), Some("ns1"));
        assert_eq!(run.metadata.owner_references.unwrap()[0].name, "web");
    }

    #[test]
    fn reports_argo_errors() {
        let ts = [
            template(
                "a",
                json!({"metrics": [metric("m")], "args": [{"name": "x", "value": "1"}]}),
            ),
            template("b", json!({"metrics": [metric("m")]})),
            template(
                "c",
                json!({"metrics": [metric("c")], "args": [{"name": "x", "value": "2"}]}),
            ),
            template(
                "d",
                json!({"metrics": [metric("d")], "args": [{"name": "y"}]}),
            ),
            template("loop", json!({"templates": [{"templateName": "loop"}]})),
        ];
        let err = |refs| {
            build_run(&request(refs, vec![]), None, &ts, &[])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(json!([{"templateName": "a"}, {"templateName": "b"}])),
            "two metrics have the same name 'm'"
        );
        assert_eq!(
            err(json!([{"templateName": "a"}, {"templateName": "c"}])),
            "Argument `x` specified multiple times with different values: '1', '2'"
        );
        assert_eq!(
            err(json!([{"templateName": "d"}])),
            "args.y was not resolved"
        );
        assert_eq!(
            err(json!([{"templateName": "zz"}])),
            "analysistemplate.argoproj.io \"zz\" not found"
        );
        assert_eq!(
            err(json!([{"templateName": "zz", "clusterScope": true}])),
            "clusteranalysistemplate.argoproj.io \"zz\" not found"
        );
        assert_eq!(
            err(json!([{"templateName": "loop"}])),
            "analysis templates nest more than 10 levels deep"
        );
    }
}
