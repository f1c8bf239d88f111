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
