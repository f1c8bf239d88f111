//! The Experiment controller's decisions, as a pure function (Argo's `experiments/*.go`,
//! `argo-core.md` §1.11 and §2.18): from an [`ExperimentSnapshot`] (the Experiment, the
//! ReplicaSets, Services and AnalysisRuns it owns, the analysis templates it names, and `now`)
//! to an [`ExperimentPlan`] (effects, the complete new status, Events, when to look again).
//!
//! One pass, in Argo's order:
//!
//! 1. the spec is checked (selector present and not select-all, `minReadySeconds` within
//!    `progressDeadlineSeconds`, template names non-empty and unique); an invalid spec only sets
//!    the `InvalidSpec` condition;
//! 2. every template gets its ReplicaSet `<experiment>-<template>` (created with 0 replicas,
//!    hash label and selector, `experiment.argoproj.io/name|template-name` annotations,
//!    controller owner reference), scaled to `replicas` (1) while the experiment runs and to 0
//!    once it is terminating, after `scaleDownDelaySeconds` (30) recorded in the
//!    `scale-down-deadline` annotation; a template with `service` gets a Service selecting its
//!    pods, deleted when the template is scaled down; replica counts are copied into
//!    `status.templateStatuses[]` and the template status moves Progressing → Running →
//!    Successful, or Failed after `progressDeadlineSeconds` without progress;
//! 3. once every template is available (`status.availableAt`), one AnalysisRun per
//!    `analyses[]` is built from its templates and created as `<experiment>-<analysis>`; its
//!    phase is copied into `status.analysisRuns[]`; runs are terminated when the experiment
//!    terminates;
//! 4. the phase: Pending on the first pass; then the worst template status, unless analyses
//!    decide: a Failed, Error or Inconclusive run ends the experiment with that phase, required
//!    runs all Successful end it Successful ("Required AnalysisRuns completed"), and after
//!    `duration` the analyses' worst phase decides;
//! 5. the Progressing condition (ReplicaSetUpdated / NewReplicaSetAvailable /
//!    ExperimentCompleted), Events `Template<Status>`, `AnalysisRun<Phase>` (also for the
//!    owning Rollout), `AnalysisRunTerminating`, `ScalingReplicaSet` and `Experiment<Phase>`.
//!
//! A terminating experiment (`spec.terminate`, a completed phase, a Failed/Error template, a
//! Failed/Error/Inconclusive run, or all required runs Successful) creates nothing, scales its
//! templates to 0 and terminates its runs.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rollouts_api::{
    AnalysisRun, AnalysisTemplate, AnalysisTemplateRef, Argument, ClusterAnalysisTemplate,
    Experiment, ExperimentAnalysisRunStatus, ExperimentAnalysisTemplateRef, ExperimentCondition,
    ExperimentStatus, RolloutAnalysis, TemplateSpec, TemplateStatus, labels, template_status,
};

use crate::analysis::{is_completed, phase};
use crate::duration::parse_go_duration;
use crate::plan::{AnalysisRunKind, AnalysisRunRequest, Event, EventType};
use crate::snapshot::AnalysisRunView;

#[cfg(test)]
mod tests;

/// Message of an experiment whose required runs all succeeded.
pub const REQUIRED_ANALYSIS_COMPLETED: &str = "Required AnalysisRuns completed";
/// `status.conditions[].type` of an invalid spec.
pub const INVALID_SPEC: &str = "InvalidSpec";
/// `status.conditions[].type` of progress.
pub const PROGRESSING: &str = "Progressing";
/// Reason of Progressing=True while replica counts change.
pub const REPLICA_SET_UPDATED: &str = "ReplicaSetUpdated";
/// Reason of Progressing=True once every template is available.
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
/// Reason of Progressing=False once the experiment succeeded.
pub const EXPERIMENT_COMPLETED: &str = "ExperimentCompleted";

/// Everything one pass looks at.
#[derive(Clone, Debug)]
pub struct ExperimentSnapshot {
    /// The Experiment.
    pub experiment: Experiment,
    /// ReplicaSets in its namespace (those it controls are picked by owner and annotations).
    pub replica_sets: Vec<ReplicaSet>,
    /// Services in its namespace (likewise).
    pub services: Vec<Service>,
    /// AnalysisRuns in its namespace.
    pub analysis_runs: Vec<AnalysisRunView>,
    /// The AnalysisTemplates its analyses name (with those they reference).
    pub analysis_templates: Vec<AnalysisTemplate>,
    /// The ClusterAnalysisTemplates its analyses name (with those they reference).
    pub cluster_analysis_templates: Vec<ClusterAnalysisTemplate>,
    /// The time of the pass.
    pub now: Timestamp,
}

/// One idempotent change to the cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum ExperimentEffect {
    /// Create a template's ReplicaSet (0 replicas). `AlreadyExists` for a ReplicaSet this
    /// experiment controls with the same template annotations is success (a stale cache).
    CreateReplicaSet(Box<ReplicaSet>),
    /// Set (`Some`) or remove (`None`) the `scale-down-deadline` annotation of a ReplicaSet.
    SetScaleDownDeadline {
        /// ReplicaSet name.
        name: String,
        /// RFC 3339 deadline.
        deadline: Option<String>,
    },
    /// Set `spec.replicas` of a ReplicaSet.
    ScaleReplicaSet {
        /// ReplicaSet name.
        name: String,
        /// New `spec.replicas`.
        replicas: i32,
    },
    /// Create a template's Service. `AlreadyExists` for a Service this experiment controls
    /// for the same template is success; any other is an error.
    CreateService(Box<Service>),
    /// Delete a template's Service (NotFound is success).
    DeleteService {
        /// Service name.
        name: String,
    },
    /// Create an AnalysisRun. On `AlreadyExists` for a run that is not this one, the name gets
    /// `.1`, `.2`, ... (Argo's `CreateWithCollisionCounter`); the controller then writes the
    /// name used into `status.analysisRuns[]` of this analysis.
    CreateAnalysisRun {
        /// The analysis (`spec.analyses[].name`).
        analysis: String,
        /// The complete run.
        run: Box<AnalysisRun>,
    },
    /// Set `spec.terminate: true` on an AnalysisRun.
    TerminateAnalysisRun {
        /// Name.
        name: String,
    },
}

/// The result of one pass.
#[derive(Clone, Debug, PartialEq)]
pub struct ExperimentPlan {
    /// Effects, in order.
    pub effects: Vec<ExperimentEffect>,
    /// The complete new status (write it when it differs).
    pub status: ExperimentStatus,
    /// Events on the Experiment.
    pub events: Vec<Event>,
    /// Events on the owning Rollout (Argo mirrors `AnalysisRun<Phase>` there), with its name.
    pub rollout_events: Vec<(String, Event)>,
    /// When to look again (end of `duration`, a progress deadline, a scale-down deadline).
    pub requeue_after: Option<Duration>,
}

/// Time as it reads back from the API server (whole seconds).
fn time(t: Timestamp) -> Time {
    Time(Timestamp::from_second(t.as_second()).unwrap_or(t))
}

fn ts_status(ts: &TemplateStatus) -> &str {
    ts.status.as_deref().unwrap_or_default()
}

/// Whether the experiment is terminating (Argo's `IsTerminating`), judged on `status`.
pub fn is_terminating(ex: &Experiment, status: &ExperimentStatus) -> bool {
    if ex.spec.terminate == Some(true) || is_completed(status.phase.as_deref().unwrap_or("")) {
        return true;
    }
    let template_failed = status.template_statuses.iter().flatten().any(|t| {
        matches!(
            ts_status(t),
            template_status::FAILED | template_status::ERROR
        )
    });
    let run_failed = status.analysis_runs.iter().flatten().any(|r| {
        matches!(
            r.phase.as_str(),
            phase::FAILED | phase::ERROR | phase::INCONCLUSIVE
        )
    });
    template_failed || run_failed || required_runs_successful(ex, status)
}

/// Whether at least one analysis is `requiredForCompletion` and all of those are Successful.
pub fn required_runs_successful(ex: &Experiment, status: &ExperimentStatus) -> bool {
    let required: Vec<&ExperimentAnalysisTemplateRef> = analyses(ex)
        .iter()
        .filter(|a| a.required_for_completion == Some(true))
        .collect();
    !required.is_empty()
        && required
            .iter()
            .all(|a| run_status(status, &a.name).is_some_and(|r| r.phase == phase::SUCCESSFUL))
}

fn has_required_runs(ex: &Experiment) -> bool {
    analyses(ex)
        .iter()
        .any(|a| a.required_for_completion == Some(true))
}

fn analyses(ex: &Experiment) -> &[ExperimentAnalysisTemplateRef] {
    ex.spec.analyses.as_deref().unwrap_or(&[])
}

fn template_status_of<'a>(status: &'a ExperimentStatus, name: &str) -> Option<&'a TemplateStatus> {
    status
        .template_statuses
        .iter()
        .flatten()
        .find(|t| t.name == name)
}

fn run_status<'a>(
    status: &'a ExperimentStatus,
    name: &str,
) -> Option<&'a ExperimentAnalysisRunStatus> {
    status
        .analysis_runs
        .iter()
        .flatten()
        .find(|r| r.name == name)
}

fn set_template_status(status: &mut ExperimentStatus, ts: TemplateStatus) {
    let list = status.template_statuses.get_or_insert_with(Vec::new);
    match list.iter_mut().find(|t| t.name == ts.name) {
        Some(slot) => *slot = ts,
        None => list.push(ts),
    }
}

fn set_run_status(status: &mut ExperimentStatus, rs: ExperimentAnalysisRunStatus) {
    let list = status.analysis_runs.get_or_insert_with(Vec::new);
    match list.iter_mut().find(|r| r.name == rs.name) {
        Some(slot) => *slot = rs,
        None => list.push(rs),
    }
}

/// `spec.duration` as a duration (`None` when unset or unparsable, as Argo ignores it then).
fn duration_of(ex: &Experiment) -> Option<SignedDuration> {
    let d = ex.spec.duration.as_deref().filter(|d| !d.is_empty())?;
    let parsed = parse_go_duration(d).ok()?;
    Some(SignedDuration::from_nanos(parsed.as_nanos()))
}

/// Argo's `PassedDurations`: whether `availableAt + duration` is past, and the time left.
pub fn passed_duration(
    ex: &Experiment,
    status: &ExperimentStatus,
    now: Timestamp,
) -> (bool, Option<SignedDuration>) {
    let (Some(d), Some(at)) = (duration_of(ex), status.available_at.as_ref()) else {
        return (false, None);
    };
    let Ok(end) = at.0.checked_add(d) else {
        return (false, None);
    };
    (now > end, Some(end.duration_since(now)))
}

/// Argo's `CalculateTemplateReplicasCount`: 0 once terminating or the template completed.
fn desired_replicas(ex: &Experiment, terminating: bool, template: &TemplateSpec) -> i32 {
    if terminating {
        return 0;
    }
    if template_status_of(
        ex.status.as_ref().unwrap_or(&ExperimentStatus::default()),
        &template.name,
    )
    .is_some_and(|t| template_status::is_completed(ts_status(t)))
    {
        return 0;
    }
    template.replicas_or_default()
}

/// The spec check (Argo's `VerifyExperimentSpec`): the first problem, as a message.
pub fn verify_spec(ex: &Experiment) -> Option<String> {
    let name = ex.metadata.name.as_deref().unwrap_or_default();
    let deadline = ex.spec.progress_deadline_seconds_or_default();
    let mut seen = std::collections::BTreeSet::new();
    for (i, t) in ex.spec.templates.iter().enumerate() {
        let sel = &t.selector;
        let empty = sel.match_labels.is_none() && sel.match_expressions.is_none();
        if empty {
            return Some(format!(
                "This experiment is selecting all pods at index {i}. A non-empty selector is required."
            ));
        }
        if t.min_ready_seconds.unwrap_or(0) > deadline {
            return Some(format!(
                "MinReadySeconds cannot be longer than ProgressDeadlineSeconds. Check template index {i}"
            ));
        }
        if t.name.is_empty() {
            return Some(format!(
                "Experiment {name} has empty template name at index {i}"
            ));
        }
        if !seen.insert(t.name.as_str()) {
            return Some(format!(
                "Experiment {name} has repeated template name '{}' in templates",
                t.name
            ));
        }
    }
    None
}

fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

/// The object of `list` this experiment controls for each template (Argo's
/// `getReplicaSetsForExperiment` / `getServicesForExperiment`): controller owner, the
/// experiment-name annotation, and a template-name annotation naming one of its templates.
fn claim<'a, T: k8s_openapi::Metadata<Ty = ObjectMeta>>(
    ex: &Experiment,
    list: &'a [T],
    kind: &'static str,
) -> Result<BTreeMap<String, &'a T>, crate::Error> {
    let uid = ex.metadata.uid.as_deref().unwrap_or_default();
    let name = ex.metadata.name.as_deref().unwrap_or_default();
    let mut out = BTreeMap::new();
    for obj in list {
        let meta = obj.metadata();
        let ann = meta.annotations.clone().unwrap_or_default();
        if !controlled_by(meta, uid)
            || ann.get(labels::EXPERIMENT_NAME).map(String::as_str) != Some(name)
        {
            continue;
        }
        let Some(template) = ann
            .get(labels::EXPERIMENT_TEMPLATE_NAME)
            .filter(|t| !t.is_empty())
        else {
            continue;
        };
        if out.contains_key(template) {
            return Err(crate::Error::AmbiguousTemplate {
                kind,
                template: template.clone(),
            });
        }
        if ex.spec.templates.iter().any(|t| &t.name == template) {
            out.insert(template.clone(), obj);
        }
    }
    Ok(out)
}

/// The controller owner reference to the experiment.
pub fn owner_reference(ex: &Experiment) -> OwnerReference {
    OwnerReference {
        api_version: rollouts_api::API_VERSION.to_string(),
        kind: "Experiment".to_string(),
        name: ex.metadata.name.clone().unwrap_or_default(),
        uid: ex.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn template_annotations(ex: &Experiment, template: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            labels::EXPERIMENT_NAME.to_string(),
            ex.metadata.name.clone().unwrap_or_default(),
        ),
        (
            labels::EXPERIMENT_TEMPLATE_NAME.to_string(),
            template.to_string(),
        ),
    ])
}

/// The ReplicaSet of a template (Argo's `newReplicaSetFromTemplate`), with 0 replicas: the
/// hash is computed over the pod template without any hash label it carries.
pub fn replica_set_for(
    ex: &Experiment,
    template: &TemplateSpec,
    collision_count: Option<i32>,
) -> ReplicaSet {
    let mut pod = template.template.clone();
    if let Some(l) = pod.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        l.remove(labels::POD_TEMPLATE_HASH);
    }
    let hash = crate::hash::pod_template_hash(Some(&pod), collision_count);
    pod.metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default)
        .insert(labels::POD_TEMPLATE_HASH.to_string(), hash.clone());
    let mut selector: LabelSelector = template.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(labels::POD_TEMPLATE_HASH.to_string(), hash.clone());
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}-{}",
                ex.metadata.name.as_deref().unwrap_or_default(),
                template.name
            )),
            namespace: ex.metadata.namespace.clone(),
            labels: Some(BTreeMap::from([(
                labels::POD_TEMPLATE_HASH.to_string(),
                hash,
            )])),
            annotations: Some(template_annotations(ex, &template.name)),
            owner_references: Some(vec![owner_reference(ex)]),
            ..Default::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: template.min_ready_seconds.filter(|m| *m != 0),
            selector,
            template: Some(pod.into()),
        },
        status: None,
    }
}

/// The Service of a template (Argo's `CreateService`): the ReplicaSet's labels as selector, a
/// port per container port. `None` when the pods expose no port (Argo creates nothing then).
pub fn service_for(ex: &Experiment, template: &TemplateSpec, rs: &ReplicaSet) -> Option<Service> {
    let ports: Vec<ServicePort> = rs
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .map(|p| ServicePort {
                    name: p.name.clone().filter(|n| !n.is_empty()),
                    protocol: p.protocol.clone(),
                    port: p.container_port,
                    target_port: Some(IntOrString::Int(p.container_port)),
                    ..Default::default()
                })
                .collect()
        })
        .unwrap_or_default();
    if ports.is_empty() {
        return None;
    }
    let rs_name = rs.metadata.name.clone().unwrap_or_default();
    let name = template
        .service
        .as_ref()
        .and_then(|s| s.name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or(rs_name);
    Some(Service {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: ex.metadata.namespace.clone(),
            annotations: Some(template_annotations(ex, &template.name)),
            owner_references: Some(vec![owner_reference(ex)]),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: rs.metadata.labels.clone(),
            ports: Some(ports),
            ..Default::default()
        }),
        status: None,
    })
}

/// Resolves `{{templates.<t>.podTemplateHash}}`, `{{templates.<t>.replicaset.name}}`,
/// `{{experiment.availableAt}}` and `{{experiment.finishedAt}}` in an analysis argument
/// (Argo's `ResolveExperimentArgsValue`); an unknown tag is an error.
pub fn resolve_arg(
    value: &str,
    ex: &Experiment,
    status: &ExperimentStatus,
    replica_sets: &BTreeMap<String, ReplicaSet>,
) -> Result<String, String> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    if let Some(at) = &status.available_at {
        vars.insert("experiment.availableAt".into(), crate::format_rfc3339(at.0));
        if ex.spec.duration.as_deref().is_some_and(|d| !d.is_empty()) {
            let d = duration_of(ex).ok_or_else(|| {
                format!(
                    "time: invalid duration {:?}",
                    ex.spec.duration.as_deref().unwrap_or_default()
                )
            })?;
            if let Ok(end) = at.0.checked_add(d) {
                vars.insert("experiment.finishedAt".into(), crate::format_rfc3339(end));
            }
        }
    }
    for t in &ex.spec.templates {
        if let Some(rs) = replica_sets.get(&t.name) {
            let hash = rs
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::POD_TEMPLATE_HASH))
                .cloned()
                .unwrap_or_default();
            vars.insert(format!("templates.{}.podTemplateHash", t.name), hash);
            vars.insert(
                format!("templates.{}.replicaset.name", t.name),
                rs.metadata.name.clone().unwrap_or_default(),
            );
        }
    }
    let mut out = String::new();
    let mut rest = value;
    let mut error = None;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let tag = &after[..close];
        match vars.get(tag.trim()) {
            Some(v) => out.push_str(v),
            None => error = Some(format!("failed to resolve {{{{{tag}}}}}")),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Builds the AnalysisRun of one analysis (Argo's `newAnalysisRun`): `<experiment>-<analysis>`,
/// the experiment's instance id and `analysisRunMetadata` as labels and annotations, the
/// experiment's `dryRun` and `measurementRetention`, controller owner reference.
pub fn build_analysis_run(
    snap: &ExperimentSnapshot,
    status: &ExperimentStatus,
    analysis: &ExperimentAnalysisTemplateRef,
    replica_sets: &BTreeMap<String, ReplicaSet>,
) -> Result<AnalysisRun, String> {
    let ex = &snap.experiment;
    let mut args = Vec::new();
    for arg in analysis.args.iter().flatten() {
        let mut resolved = Argument {
            name: arg.name.clone(),
            ..Default::default()
        };
        if let Some(v) = &arg.value {
            resolved.value = Some(resolve_arg(v, ex, status, replica_sets)?);
        }
        args.push(resolved);
    }
    let mut run_labels = BTreeMap::new();
    if let Some(id) = ex
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::CONTROLLER_INSTANCE_ID))
        .filter(|v| !v.is_empty())
    {
        run_labels.insert(labels::CONTROLLER_INSTANCE_ID.to_string(), id.clone());
    }
    let mut run_annotations = BTreeMap::new();
    if let Some(md) = &ex.spec.analysis_run_metadata {
        run_labels.extend(md.labels.clone().unwrap_or_default());
        run_annotations.extend(md.annotations.clone().unwrap_or_default());
    }
    let request = AnalysisRunRequest {
        name: format!(
            "{}-{}",
            ex.metadata.name.as_deref().unwrap_or_default(),
            analysis.name
        ),
        kind: AnalysisRunKind::Background,
        labels: run_labels,
        annotations: run_annotations,
        analysis: RolloutAnalysis {
            templates: Some(vec![AnalysisTemplateRef {
                template_name: Some(analysis.template_name.clone()),
                cluster_scope: analysis.cluster_scope,
            }]),
            dry_run: ex.spec.dry_run.clone(),
            measurement_retention: ex.spec.measurement_retention.clone(),
            ..Default::default()
        },
        args,
        owner_name: ex.metadata.name.clone().unwrap_or_default(),
        owner_uid: ex.metadata.uid.clone().unwrap_or_default(),
    };
    let mut run = crate::analysis::build_run(
        &request,
        ex.metadata.namespace.as_deref(),
        &snap.analysis_templates,
        &snap.cluster_analysis_templates,
    )
    .map_err(|e| e.to_string())?;
    run.metadata.owner_references = Some(vec![owner_reference(ex)]);
    Ok(run)
}

/// Position in Argo's template status order (best first).
fn template_rank(s: &str) -> usize {
    match s {
        template_status::RUNNING => 1,
        template_status::PROGRESSING => 2,
        template_status::ERROR => 3,
        template_status::FAILED => 4,
        _ => 0,
    }
}

/// Position in Argo's analysis phase order (best first; `""` ranks as Successful).
fn run_rank(s: &str) -> usize {
    match s {
        phase::RUNNING => 1,
        phase::PENDING => 2,
        phase::INCONCLUSIVE => 3,
        phase::ERROR => 4,
        phase::FAILED => 5,
        _ => 0,
    }
}

struct Pass<'a> {
    snap: &'a ExperimentSnapshot,
    ex: &'a Experiment,
    old: ExperimentStatus,
    new: ExperimentStatus,
    terminating: bool,
    now: Timestamp,
    effects: Vec<ExperimentEffect>,
    events: Vec<Event>,
    rollout_events: Vec<(String, Event)>,
    requeue: Option<Duration>,
}

impl Pass<'_> {
    fn requeue_in(&mut self, d: SignedDuration) {
        let d = Duration::from_millis(d.as_millis().max(0) as u64);
        self.requeue = Some(self.requeue.map_or(d, |r| r.min(d)));
    }
}

/// Plans one pass over one Experiment (see the module documentation).
pub fn plan(snap: &ExperimentSnapshot) -> Result<ExperimentPlan, crate::Error> {
    let ex = &snap.experiment;
    let old = ex.status.clone().unwrap_or_default();
    let now = snap.now;
    if let Some(message) = verify_spec(ex) {
        let mut new = old.clone();
        let prev = condition(&old, INVALID_SPEC).cloned();
        if prev.as_ref().is_some_and(|c| c.message != message) {
            remove_condition(&mut new, INVALID_SPEC);
        }
        set_condition(
            &mut new,
            new_condition(INVALID_SPEC, "True", "InvalidSpec", &message, now),
        );
        return Ok(ExperimentPlan {
            effects: Vec::new(),
            status: new,
            events: Vec::new(),
            rollout_events: Vec::new(),
            requeue_after: None,
        });
    }
    let mut replica_sets: BTreeMap<String, ReplicaSet> =
        claim(ex, &snap.replica_sets, "ReplicaSets")?
            .into_iter()
            .map(|(k, v)| (k, v.clone()))
            .collect();
    let mut services: BTreeMap<String, Service> = claim(ex, &snap.services, "Services")?
        .into_iter()
        .map(|(k, v)| (k, v.clone()))
        .collect();
    let mut pass = Pass {
        snap,
        ex,
        terminating: is_terminating(ex, &old),
        new: old.clone(),
        old,
        now,
        effects: Vec::new(),
        events: Vec::new(),
        rollout_events: Vec::new(),
        requeue: None,
    };
    for template in &ex.spec.templates {
        reconcile_template(&mut pass, template, &mut replica_sets, &mut services);
    }
    for analysis in analyses(ex) {
        reconcile_analysis(&mut pass, analysis, &replica_sets);
    }
    calculate_status(&mut pass);
    if let Some(d) = enqueue_after(ex, &pass.new, now) {
        pass.requeue_in(d);
    }
    if pass.old.phase != pass.new.phase {
        let to = pass.new.phase.clone().unwrap_or_default();
        let text = format!(
            "Experiment transitioned from {} -> {to}",
            pass.old.phase.as_deref().unwrap_or_default()
        );
        let reason = format!("Experiment{to}");
        pass.events.push(
            if matches!(
                to.as_str(),
                phase::ERROR | phase::FAILED | phase::INCONCLUSIVE
            ) {
                Event::warning(reason, text)
            } else {
                Event::normal(reason, text)
            },
        );
    }
    Ok(ExperimentPlan {
        effects: pass.effects,
        status: pass.new,
        events: pass.events,
        rollout_events: pass.rollout_events,
        requeue_after: pass.requeue,
    })
}

fn scale_down_deadline(rs: &ReplicaSet) -> Option<&str> {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::SCALE_DOWN_DEADLINE))
        .map(String::as_str)
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(1)
}

fn reconcile_template(
    pass: &mut Pass<'_>,
    template: &TemplateSpec,
    replica_sets: &mut BTreeMap<String, ReplicaSet>,
    services: &mut BTreeMap<String, Service>,
) {
    let ex = pass.ex;
    let now = pass.now;
    let mut ts = template_status_of(&pass.old, &template.name)
        .cloned()
        .unwrap_or_else(|| TemplateStatus {
            name: template.name.clone(),
            ..Default::default()
        });
    let prev = ts.clone();
    let desired = desired_replicas(ex, pass.terminating, template);
    match replica_sets.get_mut(&template.name) {
        None => {
            let rs = replica_set_for(ex, template, ts.collision_count);
            pass.effects
                .push(ExperimentEffect::CreateReplicaSet(Box::new(rs.clone())));
            replica_sets.insert(template.name.clone(), rs);
            ts.last_transition_time = Some(time(now));
        }
        Some(rs) => {
            let rs_name = rs.metadata.name.clone().unwrap_or_default();
            if template.service.is_some() {
                if desired != 0 {
                    match services.get(&template.name) {
                        Some(svc) => {
                            ts.service_name = svc.metadata.name.clone();
                            ts.pod_template_hash = rs
                                .metadata
                                .labels
                                .as_ref()
                                .and_then(|l| l.get(labels::POD_TEMPLATE_HASH))
                                .cloned();
                        }
                        None => {
                            if let Some(svc) = service_for(ex, template, rs) {
                                ts.service_name = svc.metadata.name.clone();
                                ts.pod_template_hash = rs
                                    .metadata
                                    .labels
                                    .as_ref()
                                    .and_then(|l| l.get(labels::POD_TEMPLATE_HASH))
                                    .cloned();
                                pass.effects
                                    .push(ExperimentEffect::CreateService(Box::new(svc.clone())));
                                services.insert(template.name.clone(), svc);
                            }
                        }
                    }
                }
            } else if let Some(svc) = services.remove(&template.name) {
                pass.effects.push(ExperimentEffect::DeleteService {
                    name: svc.metadata.name.clone().unwrap_or_default(),
                });
                ts.service_name = None;
                ts.pod_template_hash = None;
            }
            let delay = ex.spec.scale_down_delay_seconds_or_default();
            if desired == 0 {
                let has_deadline = scale_down_deadline(rs).is_some();
                if delay == 0 && has_deadline {
                    pass.effects.push(ExperimentEffect::SetScaleDownDeadline {
                        name: rs_name.clone(),
                        deadline: None,
                    });
                    if let Some(a) = rs.metadata.annotations.as_mut() {
                        a.remove(labels::SCALE_DOWN_DEADLINE);
                    }
                } else if delay != 0 && !has_deadline && rs_replicas(rs) != 0 {
                    let deadline = crate::format_rfc3339(
                        now.checked_add(SignedDuration::from_secs(i64::from(delay)))
                            .unwrap_or(now),
                    );
                    pass.effects.push(ExperimentEffect::SetScaleDownDeadline {
                        name: rs_name.clone(),
                        deadline: Some(deadline.clone()),
                    });
                    rs.metadata
                        .annotations
                        .get_or_insert_with(Default::default)
                        .insert(labels::SCALE_DOWN_DEADLINE.to_string(), deadline);
                }
            }
            let current = rs_replicas(rs);
            if current != desired {
                let mut target = desired;
                if desired == 0
                    && let Some(deadline) = scale_down_deadline(rs)
                    && let Ok(at) = deadline.parse::<Timestamp>()
                    && at > now
                {
                    pass.requeue_in(at.duration_since(now));
                    target = template.replicas_or_default();
                }
                if target != current {
                    pass.effects.push(ExperimentEffect::ScaleReplicaSet {
                        name: rs_name.clone(),
                        replicas: target,
                    });
                    let op = if current < target { "up" } else { "down" };
                    pass.events.push(Event::normal(
                        "ScalingReplicaSet",
                        format!("Scaled {op} ReplicaSet {rs_name} from {current} to {target}"),
                    ));
                    rs.spec.replicas = Some(target);
                    ts.last_transition_time = Some(time(now));
                    if target == 0
                        && template.service.is_some()
                        && let Some(svc) = services.remove(&template.name)
                    {
                        pass.effects.push(ExperimentEffect::DeleteService {
                            name: svc.metadata.name.clone().unwrap_or_default(),
                        });
                        ts.service_name = None;
                        ts.pod_template_hash = None;
                    }
                }
            }
        }
    }
    let rs_status = replica_sets
        .get(&template.name)
        .and_then(|rs| rs.status.clone())
        .unwrap_or_default();
    ts.replicas = rs_status.replicas;
    ts.updated_replicas = rs_status.replicas;
    ts.ready_replicas = rs_status.ready_replicas.unwrap_or(0);
    ts.available_replicas = rs_status.available_replicas.unwrap_or(0);
    if (
        prev.replicas,
        prev.updated_replicas,
        prev.ready_replicas,
        prev.available_replicas,
    ) != (
        ts.replicas,
        ts.updated_replicas,
        ts.ready_replicas,
        ts.available_replicas,
    ) {
        ts.last_transition_time = Some(time(now));
    }
    if !template_status::is_completed(ts_status(&ts)) {
        let next = if desired == ts.available_replicas {
            if passed_duration(ex, &pass.old, now).0 || pass.terminating {
                template_status::SUCCESSFUL
            } else {
                template_status::RUNNING
            }
        } else {
            let from = ts.last_transition_time.as_ref().map_or(now, |t| t.0);
            let pds = ex.spec.progress_deadline_seconds_or_default();
            let deadline = from
                .checked_add(SignedDuration::from_secs(i64::from(pds)))
                .unwrap_or(from);
            if now > deadline {
                ts.message = Some(format!(
                    "Template '{}' exceeded its progressDeadlineSeconds ({pds})",
                    template.name
                ));
                template_status::FAILED
            } else if pass.terminating {
                template_status::SUCCESSFUL
            } else {
                template_status::PROGRESSING
            }
        };
        ts.status = Some(next.to_string());
    }
    if prev.status != ts.status {
        let mut msg = format!(
            "Template '{}' transitioned from {} -> {}",
            template.name,
            ts_status(&prev),
            ts_status(&ts)
        );
        if let Some(m) = ts.message.as_deref().filter(|m| !m.is_empty()) {
            msg = format!("{msg}: {m}");
        }
        let reason = format!("Template{}", ts_status(&ts));
        pass.events.push(
            if matches!(
                ts_status(&ts),
                template_status::FAILED | template_status::ERROR
            ) {
                Event::warning(reason, msg)
            } else {
                Event::normal(reason, msg)
            },
        );
    }
    set_template_status(&mut pass.new, ts);
}

fn rollout_owner(ex: &Experiment) -> Option<String> {
    ex.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "Rollout")
        .map(|o| o.name.clone())
}

fn template_exists(snap: &ExperimentSnapshot, analysis: &ExperimentAnalysisTemplateRef) -> bool {
    if analysis.cluster_scope == Some(true) {
        snap.cluster_analysis_templates
            .iter()
            .any(|t| t.metadata.name.as_deref() == Some(analysis.template_name.as_str()))
    } else {
        snap.analysis_templates
            .iter()
            .any(|t| t.metadata.name.as_deref() == Some(analysis.template_name.as_str()))
    }
}

fn reconcile_analysis(
    pass: &mut Pass<'_>,
    analysis: &ExperimentAnalysisTemplateRef,
    replica_sets: &BTreeMap<String, ReplicaSet>,
) {
    let prev = run_status(&pass.old, &analysis.name)
        .cloned()
        .unwrap_or_else(|| ExperimentAnalysisRunStatus {
            name: analysis.name.clone(),
            ..Default::default()
        });
    let mut new = prev.clone();
    decide_analysis(pass, analysis, replica_sets, &prev, &mut new);
    if prev.phase != new.phase && !new.phase.is_empty() {
        let mut msg = format!(
            "AnalysisRun '{}' transitioned from {} -> {}",
            analysis.name, prev.phase, new.phase
        );
        if let Some(m) = new.message.as_deref().filter(|m| !m.is_empty()) {
            msg = format!("{msg}: {m}");
        }
        let reason = format!("AnalysisRun{}", new.phase);
        let warning = matches!(
            new.phase.as_str(),
            phase::FAILED | phase::ERROR | phase::INCONCLUSIVE
        );
        pass.events.push(if warning {
            Event::warning(reason.clone(), msg.clone())
        } else {
            Event::normal(reason.clone(), msg.clone())
        });
        if let Some(rollout) = rollout_owner(pass.ex) {
            // Argo records these on the Rollout as Warnings whatever the phase.
            pass.rollout_events.push((
                rollout,
                Event {
                    type_: EventType::Warning,
                    reason,
                    message: msg,
                },
            ));
        }
    }
    set_run_status(&mut pass.new, new);
}

fn decide_analysis(
    pass: &mut Pass<'_>,
    analysis: &ExperimentAnalysisTemplateRef,
    replica_sets: &BTreeMap<String, ReplicaSet>,
    prev: &ExperimentAnalysisRunStatus,
    new: &mut ExperimentAnalysisRunStatus,
) {
    if pass.old.available_at.is_none() {
        if !template_exists(pass.snap, analysis) {
            let (label, kind) = if analysis.cluster_scope == Some(true) {
                ("ClusterAnalysisTemplate", "clusteranalysistemplate")
            } else {
                ("AnalysisTemplate", "analysistemplate")
            };
            new.phase = phase::ERROR.to_string();
            new.message = Some(format!(
                "{label} verification failed for analysis '{}': {}",
                analysis.name,
                crate::Error::TemplateNotFound {
                    kind,
                    name: analysis.template_name.clone()
                }
            ));
        }
        return;
    }
    if prev.analysis_run.is_empty() {
        if pass.terminating {
            return;
        }
        match build_analysis_run(pass.snap, &pass.old, analysis, replica_sets) {
            Ok(run) => {
                new.phase = phase::PENDING.to_string();
                new.analysis_run = run.metadata.name.clone().unwrap_or_default();
                pass.effects.push(ExperimentEffect::CreateAnalysisRun {
                    analysis: analysis.name.clone(),
                    run: Box::new(run),
                });
            }
            Err(e) => {
                new.phase = phase::ERROR.to_string();
                new.message = Some(format!(
                    "Failed to create AnalysisRun for analysis '{}': {e}",
                    analysis.name
                ));
            }
        }
        return;
    }
    if is_completed(&prev.phase) {
        return;
    }
    let Some(run) = pass
        .snap
        .analysis_runs
        .iter()
        .find(|r| r.name == prev.analysis_run)
    else {
        new.phase = phase::ERROR.to_string();
        new.message = Some(format!(
            "analysisrun.argoproj.io \"{}\" not found",
            prev.analysis_run
        ));
        return;
    };
    if pass.terminating {
        if !is_completed(&run.phase) && !run.terminate {
            pass.events.push(Event::normal(
                "AnalysisRunTerminating",
                format!("Terminating {} ({})", analysis.name, run.name),
            ));
            pass.effects.push(ExperimentEffect::TerminateAnalysisRun {
                name: run.name.clone(),
            });
        }
        return;
    }
    new.phase = run.phase.clone();
    new.message = Some(run.message.clone()).filter(|m| !m.is_empty());
}

fn assess_templates(pass: &Pass<'_>) -> (&'static str, String) {
    let mut worst = template_status::SUCCESSFUL.to_string();
    let mut message = String::new();
    for t in &pass.ex.spec.templates {
        match template_status_of(&pass.new, &t.name) {
            None => {
                if template_rank(template_status::PROGRESSING) > template_rank(&worst) {
                    worst = template_status::PROGRESSING.to_string();
                }
            }
            Some(ts) => {
                if template_rank(ts_status(ts)) > template_rank(&worst) {
                    worst = ts_status(ts).to_string();
                    message = ts.message.clone().unwrap_or_default();
                }
            }
        }
    }
    let phase = match worst.as_str() {
        template_status::PROGRESSING => phase::PENDING,
        template_status::FAILED => phase::FAILED,
        template_status::ERROR => phase::ERROR,
        template_status::SUCCESSFUL => phase::SUCCESSFUL,
        _ => phase::RUNNING,
    };
    (phase, message)
}

fn assess_runs(pass: &Pass<'_>) -> (String, String) {
    let mut worst = phase::SUCCESSFUL.to_string();
    let mut message = String::new();
    for a in analyses(pass.ex) {
        let (p, m) = run_status(&pass.new, &a.name)
            .map(|r| (r.phase.clone(), r.message.clone().unwrap_or_default()))
            .unwrap_or_default();
        if run_rank(&p) > run_rank(&worst) {
            worst = p;
            message = m;
        }
    }
    if required_runs_successful(pass.ex, &pass.new) && run_rank(phase::RUNNING) > run_rank(&worst) {
        return (
            phase::SUCCESSFUL.to_string(),
            REQUIRED_ANALYSIS_COMPLETED.to_string(),
        );
    }
    if worst == phase::PENDING {
        worst = phase::RUNNING.to_string();
    }
    (worst, message)
}

fn calculate_status(pass: &mut Pass<'_>) {
    match pass.new.phase.as_deref().unwrap_or_default() {
        "" => pass.new.phase = Some(phase::PENDING.to_string()),
        phase::PENDING | phase::RUNNING => {
            let (t_phase, t_msg) = assess_templates(pass);
            let (a_phase, a_msg) = assess_runs(pass);
            if t_phase == phase::RUNNING && pass.new.available_at.is_none() {
                pass.new.available_at = Some(time(pass.now));
            }
            let (p, m) = if is_completed(t_phase) {
                let defer = is_completed(&a_phase) || has_required_runs(pass.ex);
                if t_phase == phase::SUCCESSFUL && defer {
                    (a_phase, a_msg)
                } else {
                    (t_phase.to_string(), t_msg)
                }
            } else if (is_completed(&a_phase) && a_phase != phase::SUCCESSFUL)
                || required_runs_successful(pass.ex, &pass.new)
            {
                (a_phase, a_msg)
            } else {
                (t_phase.to_string(), t_msg)
            };
            pass.new.phase = Some(p);
            pass.new.message = Some(m).filter(|m| !m.is_empty());
        }
        _ => {}
    }
    calculate_conditions(pass);
}

fn condition<'a>(status: &'a ExperimentStatus, type_: &str) -> Option<&'a ExperimentCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
}

fn remove_condition(status: &mut ExperimentStatus, type_: &str) {
    if let Some(list) = status.conditions.as_mut() {
        list.retain(|c| c.type_ != type_);
        if list.is_empty() {
            status.conditions = None;
        }
    }
}

fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> ExperimentCondition {
    ExperimentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        last_update_time: time(now),
        last_transition_time: time(now),
        reason: reason.to_string(),
        message: message.to_string(),
    }
}

/// Argo's `SetExperimentCondition`: unchanged status and reason keep the condition as is.
fn set_condition(status: &mut ExperimentStatus, mut c: ExperimentCondition) {
    if let Some(cur) = condition(status, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    let list = status.conditions.get_or_insert_with(Vec::new);
    list.retain(|x| x.type_ != c.type_);
    list.push(c);
}

fn counts_changed(old: &ExperimentStatus, new: &ExperimentStatus) -> bool {
    let old_n = old.template_statuses.as_ref().map_or(0, Vec::len);
    let new_n = new.template_statuses.as_ref().map_or(0, Vec::len);
    if old_n < new_n {
        return true;
    }
    old.template_statuses.iter().flatten().any(|o| {
        template_status_of(new, &o.name).is_some_and(|n| {
            (
                o.replicas,
                o.updated_replicas,
                o.ready_replicas,
                o.available_replicas,
            ) != (
                n.replicas,
                n.updated_replicas,
                n.ready_replicas,
                n.available_replicas,
            )
        })
    })
}

fn calculate_conditions(pass: &mut Pass<'_>) {
    let name = pass.ex.metadata.name.as_deref().unwrap_or_default();
    let now = pass.now;
    if condition(&pass.old, INVALID_SPEC).is_some() {
        remove_condition(&mut pass.new, INVALID_SPEC);
    }
    let phase_now = pass.new.phase.clone().unwrap_or_default();
    if phase_now == phase::SUCCESSFUL {
        set_condition(
            &mut pass.new,
            new_condition(
                PROGRESSING,
                "False",
                EXPERIMENT_COMPLETED,
                &format!("Experiment \"{name}\" has successfully ran and completed."),
                now,
            ),
        );
    } else if counts_changed(&pass.old, &pass.new) {
        let mut c = new_condition(
            PROGRESSING,
            "True",
            REPLICA_SET_UPDATED,
            &format!("Experiment \"{name}\" is progressing."),
            now,
        );
        if let Some(cur) = condition(&pass.old, PROGRESSING) {
            if cur.status == "True" {
                c.last_transition_time = cur.last_transition_time.clone();
            }
            remove_condition(&mut pass.new, PROGRESSING);
        }
        set_condition(&mut pass.new, c);
    } else if pass.old.available_at.is_some() && !passed_duration(pass.ex, &pass.old, now).0 {
        set_condition(
            &mut pass.new,
            new_condition(
                PROGRESSING,
                "True",
                NEW_RS_AVAILABLE,
                &format!("Experiment \"{name}\" is running."),
                now,
            ),
        );
    }
}

/// Argo's `calculateEnqueueDuration`: the end of `duration`, or the earliest progress deadline
/// of a template short of its replicas; nothing once terminating.
fn enqueue_after(
    ex: &Experiment,
    status: &ExperimentStatus,
    now: Timestamp,
) -> Option<SignedDuration> {
    if is_terminating(ex, status) {
        return None;
    }
    let mut best: Option<SignedDuration> = None;
    let (passed, left) = passed_duration(ex, status, now);
    if !passed {
        best = left;
    }
    let pds = SignedDuration::from_secs(i64::from(ex.spec.progress_deadline_seconds_or_default()));
    for t in &ex.spec.templates {
        let Some(ts) = template_status_of(status, &t.name) else {
            continue;
        };
        if !matches!(
            ts_status(ts),
            template_status::PROGRESSING | template_status::RUNNING
        ) {
            continue;
        }
        let desired = if template_status::is_completed(ts_status(ts)) {
            0
        } else {
            t.replicas_or_default()
        };
        if ts.available_replicas != desired
            && let Some(at) = &ts.last_transition_time
            && let Ok(deadline) = at.0.checked_add(pds)
        {
            let d = deadline.duration_since(now);
            best = Some(best.map_or(d, |b| b.min(d)));
        }
    }
    best
}
