//! `plan -f FILE [--from live]`: what a Rollout will do before it is applied, simulated by the
//! engine ([`rollouts_engine::simulate()`]) under stated assumptions.
//!
//! Without `--from live` the file's Rollout is planned as an update of an existing Rollout: a
//! previous revision (the same spec with another pod template) is deployed first in the
//! simulator, then the file's spec is rolled out over it. A new Rollout deploys its first
//! revision at once, without steps, so this is the course every later update follows. With
//! `--from live` the simulation starts from the live Rollout of the same name (its status,
//! ReplicaSets, Services, AnalysisRuns and Experiments) with the file's spec as the new spec: a
//! new image mid-rollout, a changed step list, or the same spec to see what is left to do.
//!
//! [`PlanReport`] is what the command computed; [`render_text`] is the table a person reads
//! (one row per moment and step, pods per revision, weight per router, notes), and `-o json`
//! or `-o yaml` print the engine's [`Timeline`] unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Service;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use rollouts_api::{AnalysisTemplate, ClusterAnalysisTemplate, Rollout};
use rollouts_engine::observe;
use rollouts_engine::sim::World;
use rollouts_engine::simulate::{Outcome, PauseInfo, Role, RunInfo, Timeline, TimelineEntry};
use rollouts_engine::{Assumptions, Snapshot, WorkloadView, simulate};
use serde_json::Value;

use crate::cli::{OutputFormat, PlanArgs, RunOutcome};
use crate::client::Kube;
use crate::commands::create::{first_problem, read_documents};
use crate::commands::view::Objects;
use crate::error::Error;
use crate::lint::decode_strict;
use crate::tree::Style;
use crate::yaml::Document;

/// The pod-template annotation that tells the simulated previous revision from the file's.
const PREVIOUS_MARK: &str = "plan.rollouts-rs.io/revision";

/// What `plan` reads from its files.
#[derive(Clone, Debug)]
pub struct PlanInput {
    /// The file the Rollout comes from (for messages).
    pub file: String,
    /// The Rollout's document (for line numbers).
    pub document: Document,
    /// The first Rollout of the files.
    pub rollout: Rollout,
    /// AnalysisTemplates of the files (for analysis durations).
    pub analysis_templates: Vec<AnalysisTemplate>,
    /// ClusterAnalysisTemplates of the files.
    pub cluster_analysis_templates: Vec<ClusterAnalysisTemplate>,
}

/// The assumptions of a plan, from the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How long a pod takes to become ready after it is created (`--pod-ready-delay`); the
    /// Rollout's `minReadySeconds` is added to it.
    pub pod_ready_delay: Duration,
    /// The phase every AnalysisRun ends with.
    pub analysis: RunOutcome,
    /// The phase every Experiment ends with.
    pub experiment: RunOutcome,
    /// Indefinite pauses are promoted this long after they start (`None`: the plan stops there).
    pub promote_after: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            pod_ready_delay: Duration::ZERO,
            analysis: RunOutcome::Success,
            experiment: RunOutcome::Success,
            promote_after: None,
        }
    }
}

/// A duration flag: a Go duration (`30s`, `5m`, `1h30m`) or a number of seconds.
pub fn parse_duration_flag(flag: &str, value: &str) -> Result<Duration, Error> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let d = rollouts_engine::duration::parse_go_duration(value).map_err(|e| {
        Error::Usage(format!(
            "{flag} {value:?}: {e} (use a unit, e.g. 30s, 5m, 1h)"
        ))
    })?;
    if d.as_nanos() < 0 {
        return Err(Error::Usage(format!(
            "{flag} {value:?}: must not be negative"
        )));
    }
    Ok(Duration::from_nanos(
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
    ))
}

impl Settings {
    /// The settings of `plan`'s flags.
    pub fn from_args(args: &PlanArgs) -> Result<Self, Error> {
        Ok(Self {
            pod_ready_delay: parse_duration_flag("--pod-ready-delay", &args.pod_ready_delay)?,
            analysis: args.analysis,
            experiment: args.experiment,
            promote_after: args
                .promote_after
                .as_deref()
                .map(|v| parse_duration_flag("--promote-after", v))
                .transpose()?,
        })
    }
}

/// Where the simulation started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// A previous revision of the same Rollout, fully available.
    PreviousRevision,
    /// A new Rollout (the previous revision could not be deployed in the simulator, e.g. the
    /// spec is paused).
    NewRollout,
    /// The live Rollout in the cluster.
    Live {
        /// Its status line (`Paused - CanaryPauseStep`).
        status: String,
        /// Whether the file's pod template differs from the live revision being rolled out.
        new_template: bool,
    },
}

/// What `plan` computed.
#[derive(Clone, Debug)]
pub struct PlanReport {
    /// The Rollout's namespace (from the file, or the command's).
    pub namespace: String,
    /// `spec.replicas`.
    pub replicas: i32,
    /// Where the simulation started.
    pub start: Start,
    /// The assumptions.
    pub settings: Settings,
    /// `spec.minReadySeconds`.
    pub min_ready_seconds: i32,
    /// What the reader should know (templates that were not found, ...).
    pub notes: Vec<String>,
    /// The simulation.
    pub timeline: Timeline,
}

// -------------------------------------------------------------------------------------------
// Input.

/// Reads the Rollout (the first of the files) and the analysis templates of `paths`; every
/// document of a kind plan uses is decoded strictly.
pub fn read_input(paths: &[PathBuf]) -> Result<PlanInput, Error> {
    let mut files = Vec::new();
    for path in paths {
        files.push(read_documents(path)?);
    }
    input_from_documents(&files).map_err(|e| match e {
        Error::Refused(m) if paths.len() == 1 => {
            Error::Refused(format!("{}: {m}", paths[0].display()))
        }
        other => other,
    })
}

/// [`read_input`] over parsed files (`(file name, documents)`).
pub fn input_from_documents(files: &[(String, Vec<Document>)]) -> Result<PlanInput, Error> {
    let mut rollout: Option<(String, Document, Rollout)> = None;
    let mut analysis_templates = Vec::new();
    let mut cluster_analysis_templates = Vec::new();
    for (file, docs) in files {
        for doc in docs {
            let (api_version, kind) = doc.type_meta();
            if api_version.rsplit_once('/').map(|(g, _)| g) != Some(rollouts_api::GROUP) {
                continue;
            }
            match kind {
                "Rollout" if rollout.is_none() => {
                    let ro: Rollout = decode_strict(doc).map_err(|p| first_problem(file, p))?;
                    rollout = Some((file.clone(), doc.clone(), ro));
                }
                "AnalysisTemplate" => {
                    analysis_templates.push(decode_strict(doc).map_err(|p| first_problem(file, p))?)
                }
                "ClusterAnalysisTemplate" => cluster_analysis_templates
                    .push(decode_strict(doc).map_err(|p| first_problem(file, p))?),
                _ => {}
            }
        }
    }
    let Some((file, document, rollout)) = rollout else {
        return Err(Error::Refused(
            "no Rollout to plan (the file needs a document of kind Rollout, apiVersion argoproj.io/v1alpha1)"
                .into(),
        ));
    };
    if rollout.metadata.name.as_deref().unwrap_or("").is_empty() {
        return Err(Error::Manifest {
            line: document.line_of("metadata.name"),
            file,
            message: "metadata.name: Required value: plan needs the Rollout's name".into(),
        });
    }
    Ok(PlanInput {
        file,
        document,
        rollout,
        analysis_templates,
        cluster_analysis_templates,
    })
}

/// Template names (and whether cluster-scoped) that `value` references (`templateName`
/// anywhere in it: step, background, blue-green and experiment analyses, nested templates).
fn referenced_templates(value: &Value, out: &mut BTreeSet<(String, bool)>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(name)) = map.get("templateName") {
                let cluster = map.get("clusterScope") == Some(&Value::Bool(true));
                out.insert((name.clone(), cluster));
            }
            for v in map.values() {
                referenced_templates(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| referenced_templates(v, out)),
        _ => {}
    }
}

fn template_refs(input: &PlanInput) -> BTreeSet<(String, bool)> {
    let mut refs = BTreeSet::new();
    if let Ok(spec) = serde_json::to_value(&input.rollout.spec) {
        referenced_templates(&spec, &mut refs);
    }
    for t in &input.analysis_templates {
        if let Ok(spec) = serde_json::to_value(&t.spec) {
            referenced_templates(&spec, &mut refs);
        }
    }
    for t in &input.cluster_analysis_templates {
        if let Ok(spec) = serde_json::to_value(&t.spec) {
            referenced_templates(&spec, &mut refs);
        }
    }
    refs
}

fn has_template(input: &PlanInput, name: &str, cluster: bool) -> bool {
    if cluster {
        input
            .cluster_analysis_templates
            .iter()
            .any(|t| t.metadata.name.as_deref() == Some(name))
    } else {
        input
            .analysis_templates
            .iter()
            .any(|t| t.metadata.name.as_deref() == Some(name))
    }
}

fn missing_templates(input: &PlanInput) -> Vec<(String, bool)> {
    template_refs(input)
        .into_iter()
        .filter(|(n, c)| !has_template(input, n, *c))
        .collect()
}

fn missing_note(name: &str, cluster: bool, place: &str) -> String {
    let kind = if cluster {
        "ClusterAnalysisTemplate"
    } else {
        "AnalysisTemplate"
    };
    format!("{kind} {name} is not {place}: its runs are assumed to end at once")
}

// -------------------------------------------------------------------------------------------
// Simulation.

fn validate(input: &PlanInput, rollout: &Rollout, resolved: bool) -> Result<(), Error> {
    let errors = rollouts_engine::validate_resolved(rollout, resolved);
    match errors.first() {
        None => Ok(()),
        Some(e) => Err(Error::Manifest {
            file: input.file.clone(),
            line: input.document.line_of(&e.field),
            message: format!("the Rollout is invalid: {e}"),
        }),
    }
}

fn assumptions(
    input: &PlanInput,
    rollout: &Rollout,
    settings: &Settings,
    live: Option<Snapshot>,
) -> Assumptions {
    let min_ready = u64::try_from(rollout.spec.min_ready_seconds.unwrap_or(0)).unwrap_or(0);
    Assumptions {
        pods_ready_after: settings.pod_ready_delay + Duration::from_secs(min_ready),
        analysis_outcome: settings.analysis.phase().to_string(),
        experiment_outcome: settings.experiment.phase().to_string(),
        promote_after: settings.promote_after,
        live,
        analysis_templates: input.analysis_templates.clone(),
        cluster_analysis_templates: input.cluster_analysis_templates.clone(),
        ..Assumptions::default()
    }
}

/// The snapshot of a previous revision of `rollout`, deployed and fully available in the
/// simulator (`None` when it does not get there, e.g. a paused spec).
pub fn previous_revision(rollout: &Rollout) -> Option<Snapshot> {
    let mut prev = rollout.clone();
    prev.status = None;
    prev.metadata.generation = Some(1);
    prev.metadata.uid.get_or_insert_with(|| "plan-uid".into());
    if let Some(a) = prev.metadata.annotations.as_mut() {
        a.remove(rollouts_api::labels::REVISION);
    }
    prev.spec
        .template
        .get_or_insert_with(Default::default)
        .metadata
        .get_or_insert_with(Default::default)
        .annotations
        .get_or_insert_with(Default::default)
        .insert(PREVIOUS_MARK.into(), "previous".into());
    let mut w = World::new(prev);
    let tick = Duration::from_secs(1);
    let done = |w: &World| {
        let s = w.status();
        w.phase() == "Healthy" && s.current_pod_hash.is_some() && s.stable_rs == s.current_pod_hash
    };
    if !w.run_until(200, tick, done) {
        return None;
    }
    // A few quiet passes: nothing is left for the controller to do.
    for _ in 0..3 {
        w.reconcile();
        w.tick(tick);
    }
    done(&w).then(|| w.snapshot())
}

/// Plans the file's Rollout as an update of an existing Rollout (no cluster needed).
pub fn plan_new(input: &PlanInput, settings: &Settings) -> Result<PlanReport, Error> {
    let rollout = &input.rollout;
    if rollout.spec.workload_ref.is_some() {
        return Err(Error::Refused(format!(
            "{}: the Rollout takes its pod template from spec.workloadRef; plan it with --from live (the workload is read from the cluster)",
            input.file
        )));
    }
    validate(input, rollout, false)?;
    let previous = previous_revision(rollout);
    let start = if previous.is_some() {
        Start::PreviousRevision
    } else {
        Start::NewRollout
    };
    let timeline = simulate(rollout, &assumptions(input, rollout, settings, previous));
    let notes = missing_templates(input)
        .into_iter()
        .map(|(n, c)| missing_note(&n, c, "in the file"))
        .collect();
    report(input, rollout, settings, start, notes, timeline)
}

fn report(
    input: &PlanInput,
    rollout: &Rollout,
    settings: &Settings,
    start: Start,
    notes: Vec<String>,
    timeline: Timeline,
) -> Result<PlanReport, Error> {
    if let Outcome::InvalidSpec { message } = &timeline.outcome {
        return Err(Error::Manifest {
            file: input.file.clone(),
            line: input.document.line,
            message: format!("the Rollout is invalid: {message}"),
        });
    }
    Ok(PlanReport {
        namespace: rollout
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        replicas: rollout.spec.replicas_or_default(),
        start,
        settings: settings.clone(),
        min_ready_seconds: rollout.spec.min_ready_seconds.unwrap_or(0),
        notes,
        timeline,
    })
}

/// Plans the file's Rollout from a live snapshot of the Rollout of the same name. `rollout`
/// is the file's Rollout, resolved (`workloadRef`) like the live one.
pub fn plan_from_snapshot(
    input: &PlanInput,
    rollout: &Rollout,
    settings: &Settings,
    live: Snapshot,
    notes: Vec<String>,
) -> Result<PlanReport, Error> {
    validate(input, rollout, rollout.spec.workload_ref.is_some())?;
    let (status, message) = rollouts_engine::phase::for_client(&live.rollout);
    let current = live
        .rollout
        .status
        .as_ref()
        .and_then(|s| s.current_pod_hash.clone())
        .unwrap_or_default();
    let collisions = live.rollout.status.as_ref().and_then(|s| s.collision_count);
    let new_template =
        rollouts_engine::hash::pod_template_hash(rollout.spec.template.as_ref(), collisions)
            != current;
    let start = Start::Live {
        status: crate::commands::view::status_line(&status, &message),
        new_template,
    };
    let mut rollout = rollout.clone();
    rollout.metadata.namespace = live.rollout.metadata.namespace.clone();
    let timeline = simulate(
        &rollout,
        &assumptions(input, &rollout, settings, Some(live)),
    );
    report(input, &rollout, settings, start, notes, timeline)
}

async fn get_opt<K>(kube: &Kube, kind: &'static str, name: &str) -> Result<Option<K>, Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    kube.api::<K>()
        .get_opt(name)
        .await
        .map_err(|e| kube.err(e, "getting", &kube.target(kind, name)))
}

/// The Services the strategy names that exist.
pub async fn services(kube: &Kube, rollout: &Rollout) -> Result<Vec<Service>, Error> {
    let mut out = Vec::new();
    for name in observe::service_names(rollout) {
        if let Some(svc) = get_opt::<Service>(kube, "service", &name).await? {
            out.push(svc);
        }
    }
    Ok(out)
}

/// Reads the workload a `workloadRef` names (`None`: no reference, or it does not exist).
pub async fn workload(kube: &Kube, rollout: &Rollout) -> Result<Option<Value>, Error> {
    let Some(reference) = &rollout.spec.workload_ref else {
        return Ok(None);
    };
    let api_version = reference.api_version.clone().unwrap_or_default();
    let kind = reference.kind.clone().unwrap_or_default();
    let name = reference.name.clone().unwrap_or_default();
    let Some(info) = observe::workload_kind(&api_version, &kind) else {
        return Ok(None);
    };
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, &kind),
        info.plural,
    );
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(kube.client.clone(), &kube.namespace, &resource);
    let obj = api
        .get_opt(&name)
        .await
        .map_err(|e| kube.err(e, "getting", &kube.target("workload", &name)))?;
    obj.map(|o| serde_json::to_value(o).map_err(|e| Error::Encoding(e.to_string())))
        .transpose()
}

/// The live snapshot of the Rollout `name` in the command's namespace.
pub async fn live_snapshot(kube: &Kube, name: &str) -> Result<Snapshot, Error> {
    let mut rollout: Rollout = kube.get("rollout", name).await?;
    let (objects, services, workload) = tokio::try_join!(
        Objects::load(kube),
        services(kube, &rollout),
        workload(kube, &rollout),
    )?;
    let workload = observe::resolve_workload(&mut rollout, workload.as_ref());
    let objects = observe::Objects {
        replica_sets: objects.replica_sets,
        services,
        analysis_runs: objects.analysis_runs,
        experiments: objects.experiments,
        pods: objects.pods,
    };
    Ok(observe::snapshot(
        rollout,
        &objects,
        workload,
        Timestamp::now(),
    ))
}

/// Completes the file's templates with the ones the Rollout references from the cluster;
/// returns notes about templates found nowhere.
async fn cluster_templates(kube: &Kube, input: &mut PlanInput) -> Result<Vec<String>, Error> {
    let mut notes = Vec::new();
    let mut tried = BTreeSet::new();
    // Templates may reference templates: a few rounds reach the nested ones.
    for _ in 0..5 {
        let missing: Vec<(String, bool)> = missing_templates(input)
            .into_iter()
            .filter(|m| !tried.contains(m))
            .collect();
        if missing.is_empty() {
            break;
        }
        for (name, cluster) in missing {
            tried.insert((name.clone(), cluster));
            if cluster {
                let api: kube::Api<ClusterAnalysisTemplate> = kube::Api::all(kube.client.clone());
                let t = api.get_opt(&name).await.map_err(|e| {
                    kube.err(
                        e,
                        "getting",
                        &crate::error::Target::new("clusteranalysistemplate", &name, ""),
                    )
                })?;
                match t {
                    Some(t) => input.cluster_analysis_templates.push(t),
                    None => notes.push(missing_note(&name, true, "in the file or the cluster")),
                }
            } else {
                match get_opt::<AnalysisTemplate>(kube, "analysistemplate", &name).await? {
                    Some(t) => input.analysis_templates.push(t),
                    None => notes.push(missing_note(&name, false, "in the file or the cluster")),
                }
            }
        }
    }
    Ok(notes)
}

/// `plan --from live`: the live Rollout of the file's Rollout's name (in the file's namespace,
/// else the command's), with the file's spec.
pub async fn plan_live(
    kube: &Kube,
    mut input: PlanInput,
    settings: &Settings,
) -> Result<PlanReport, Error> {
    let mut kube = kube.clone();
    if let Some(ns) = input.rollout.metadata.namespace.clone() {
        kube.namespace = ns;
    }
    let name = input.rollout.metadata.name.clone().unwrap_or_default();
    let live = live_snapshot(&kube, &name).await?;
    let mut rollout = input.rollout.clone();
    if rollout.spec.workload_ref.is_some() {
        let object = workload(&kube, &rollout).await?;
        if let Some(WorkloadView::Error(m)) =
            observe::resolve_workload(&mut rollout, object.as_ref())
        {
            return Err(Error::Refused(format!(
                "{}: spec.workloadRef: {m}",
                input.file
            )));
        }
    }
    let notes = cluster_templates(&kube, &mut input).await?;
    plan_from_snapshot(&input, &rollout, settings, live, notes)
}

// -------------------------------------------------------------------------------------------
// Rendering.

/// `-o json` / `-o yaml`: the engine's Timeline.
pub fn render_data(report: &PlanReport, format: OutputFormat) -> Result<String, Error> {
    match format {
        OutputFormat::Json => serde_json::to_string_pretty(&report.timeline)
            .map(|s| s + "\n")
            .map_err(|e| Error::Encoding(e.to_string())),
        OutputFormat::Yaml => {
            serde_saphyr::to_string(&report.timeline).map_err(|e| Error::Encoding(e.to_string()))
        }
        OutputFormat::Text => Ok(render_text(report, Style::PLAIN)),
    }
}

/// `90s` → `1m30s`; `0` → `0s`.
pub fn clock(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

fn role_word(role: Role) -> &'static str {
    match role {
        Role::Stable => "stable",
        Role::Canary => "canary",
        Role::Active => "active",
        Role::Preview => "preview",
        Role::Other => "old",
    }
}

fn run_label(kind: &str) -> String {
    match kind {
        "Step" => "step analysis".into(),
        "Background" => "background analysis".into(),
        "PrePromotion" => "pre-promotion analysis".into(),
        "PostPromotion" => "post-promotion analysis".into(),
        "Experiment" => "experiment".into(),
        "" => "analysis".into(),
        other => format!("{other} analysis"),
    }
}

/// The newest revision of an entry.
fn newest(entry: &TimelineEntry) -> Option<i64> {
    entry.replica_sets.iter().map(|r| r.revision).max()
}

/// What a row is about: the canary step, or the blue-green stage (`target`: the revision
/// being rolled out).
fn stage(entry: &TimelineEntry, blue_green: bool, step_count: usize, target: i64) -> String {
    if entry.phase == "Degraded" {
        // Argo goes back to step 0 on an abort: the step would mislead.
        return if entry.message.starts_with("RolloutAborted") {
            "aborted".into()
        } else {
            "degraded".into()
        };
    }
    if blue_green {
        let running = |kind: &str| {
            entry
                .analyses
                .iter()
                .any(|a| a.kind == kind && a.phase.is_empty())
        };
        let promoted = entry
            .replica_sets
            .iter()
            .any(|r| r.role == Role::Active && r.revision == target);
        return if entry
            .pause
            .as_ref()
            .is_some_and(|p| p.reason == "BlueGreenPause")
        {
            "pause".into()
        } else if promoted && running("PostPromotion") {
            "post-promotion analysis".into()
        } else if promoted {
            "promoted".into()
        } else if running("PrePromotion") {
            "pre-promotion analysis".into()
        } else {
            "preview".into()
        };
    }
    match (&entry.step, entry.step_index) {
        (Some(step), Some(i)) => format!("{i} {step}"),
        (None, Some(i)) if step_count > 0 && i as usize >= step_count => "done".into(),
        _ => "-".into(),
    }
}

/// One row: entries of the same moment and stage, shown as the last one.
struct Row<'a> {
    stage: String,
    entries: Vec<&'a TimelineEntry>,
}

impl Row<'_> {
    fn last(&self) -> &TimelineEntry {
        self.entries[self.entries.len() - 1]
    }
}

fn rows<'a>(timeline: &'a Timeline, blue_green: bool, step_count: usize) -> Vec<Row<'a>> {
    let target = timeline
        .entries
        .iter()
        .filter_map(newest)
        .max()
        .unwrap_or(0);
    let mut out: Vec<Row<'a>> = Vec::new();
    let mut paused = false;
    for (i, e) in timeline.entries.iter().enumerate() {
        let mut stage = if i == 0 {
            "start".to_string()
        } else {
            stage(e, blue_green, step_count, target)
        };
        // After the blue-green pause, the preview grows to full size before the switch.
        paused |= blue_green && stage == "pause";
        if paused && stage == "preview" {
            stage = "promoting".into();
        }
        match out.last_mut() {
            Some(row)
                if i > 0
                    && row.stage == stage
                    && row.last().elapsed_seconds == e.elapsed_seconds =>
            {
                row.entries.push(e)
            }
            _ => out.push(Row {
                stage,
                entries: vec![e],
            }),
        }
    }
    out
}

fn pause_note(p: &PauseInfo, rollout: &str) -> String {
    let promote = format!("`kubectl argo rollouts promote {rollout}`");
    match (p.reason.as_str(), p.duration_seconds) {
        ("BlueGreenPause", Some(d)) => format!(
            "auto-promotion after {} (at {})",
            clock(d),
            clock(p.since_seconds + d)
        ),
        ("BlueGreenPause", None) => format!("waits for {promote} to switch the active Service"),
        ("Paused", _) => format!("paused by spec.paused: waits for {promote}"),
        ("InconclusiveAnalysisRun", _) => format!("analysis inconclusive: waits for {promote}"),
        ("InconclusiveExperiment", _) => format!("experiment inconclusive: waits for {promote}"),
        (_, Some(d)) => format!(
            "paused for {} (until {})",
            clock(d),
            clock(p.since_seconds + d)
        ),
        (_, None) => format!("waits for {promote}"),
    }
}

fn run_notes(before: &[RunInfo], after: &[RunInfo], notes: &mut Vec<String>) {
    for run in after {
        let prev = before.iter().find(|r| r.name == run.name);
        let label = run_label(&run.kind);
        match (prev, run.phase.as_str()) {
            (None, "") => notes.push(format!("{label} {} started", run.name)),
            (None, phase) => notes.push(format!("{label} {}: {phase}", run.name)),
            (Some(p), phase) if p.phase != phase && !phase.is_empty() => {
                notes.push(format!("{label} {}: {phase}", run.name))
            }
            _ => {}
        }
    }
}

fn row_notes(
    row: &Row<'_>,
    before: Option<&TimelineEntry>,
    revisions: &BTreeMap<String, i64>,
    rollout: &str,
) -> Vec<String> {
    let now = row.last();
    let mut notes: Vec<String> = row
        .entries
        .iter()
        .flat_map(|e| e.assumed.iter().cloned())
        .collect();
    if let Some(before) = before {
        for svc in &now.services {
            let old = before.services.iter().find(|s| s.service == svc.service);
            if old.is_some_and(|o| o.hash != svc.hash) {
                let to = revisions
                    .get(&svc.hash)
                    .map_or_else(|| svc.hash.clone(), |r| format!("rev {r}"));
                notes.push(format!("{} → {to}", svc.service));
            }
        }
        run_notes(&before.analyses, &now.analyses, &mut notes);
        run_notes(&before.experiments, &now.experiments, &mut notes);
    }
    if let Some(p) = &now.pause
        && before.is_none_or(|b| b.pause.as_ref() != Some(p))
    {
        notes.push(pause_note(p, rollout));
    }
    for e in row.entries.iter().flat_map(|e| &e.events) {
        let keep = e.type_ == "Warning" || e.reason == "RolloutAborted";
        if keep && !notes.contains(&e.message) {
            notes.push(e.message.clone());
        }
    }
    notes
}

fn header(report: &PlanReport) -> Vec<String> {
    let t = &report.timeline;
    let strategy = if t.strategy == "blueGreen" {
        "blue-green"
    } else {
        "canary"
    };
    let routers: BTreeSet<&str> = t
        .entries
        .iter()
        .flat_map(|e| e.weights.iter().map(|w| w.router.as_str()))
        .collect();
    let traffic = if t.strategy == "blueGreen" {
        String::new()
    } else if routers.is_empty() {
        ", no traffic router (traffic follows the pods)".to_string()
    } else {
        format!(
            ", traffic by {}",
            routers.into_iter().collect::<Vec<_>>().join(", ")
        )
    };
    let mut lines = vec![format!(
        "Plan:         rollout {} in {}: {strategy}, {} replicas{traffic}",
        t.rollout, report.namespace, report.replicas
    )];
    let newest = t.entries.iter().filter_map(newest).max().unwrap_or(0);
    let stable = if t.strategy == "blueGreen" {
        "active"
    } else {
        "stable"
    };
    match &report.start {
        Start::PreviousRevision => {
            lines.push(format!(
                "From:         an update: rev {} (any previous pod template) is {stable} and available; rev {newest} is this file's",
                newest - 1
            ));
            lines.push(
                "              (a new Rollout starts all its pods at once, without steps)".into(),
            );
        }
        Start::NewRollout => lines.push(
            "From:         a new Rollout (the first revision starts all its pods at once)".into(),
        ),
        Start::Live {
            status,
            new_template: true,
        } => lines.push(format!(
            "From:         the live rollout ({status}), updated to this file's pod template (rev {newest})"
        )),
        Start::Live {
            status,
            new_template: false,
        } => lines.push(format!(
            "From:         the live rollout ({status}), with this file's spec (the same pod template)"
        )),
    }
    let s = &report.settings;
    let mut ready = if s.pod_ready_delay.is_zero() {
        "pods ready at once".to_string()
    } else {
        format!(
            "pods ready {} after they start",
            clock(s.pod_ready_delay.as_secs())
        )
    };
    if report.min_ready_seconds > 0 {
        ready.push_str(&format!(
            ", available {}s later (minReadySeconds)",
            report.min_ready_seconds
        ));
    }
    let promote = match s.promote_after {
        Some(d) => format!("indefinite pauses promoted after {}", clock(d.as_secs())),
        None => "indefinite pauses wait for a promotion".into(),
    };
    lines.push(format!(
        "Assumptions:  {ready}; analyses {}; experiments {}; {promote}",
        s.analysis.phase(),
        s.experiment.phase()
    ));
    for n in &report.notes {
        lines.push(format!("Note:         {n}"));
    }
    lines
}

fn outcome_line(report: &PlanReport) -> String {
    let t = &report.timeline;
    let at = clock(t.elapsed_seconds);
    let promote = format!("`kubectl argo rollouts promote {}`", t.rollout);
    match &t.outcome {
        Outcome::Completed => {
            let rev = t
                .entries
                .last()
                .and_then(|e| {
                    e.replica_sets
                        .iter()
                        .find(|r| matches!(r.role, Role::Stable | Role::Active))
                })
                .map(|r| format!(": rev {} is {}", r.revision, role_word(r.role)))
                .unwrap_or_default();
            format!("completed after {at}{rev}")
        }
        Outcome::WaitsForPromotion { reason, step_index } => {
            let where_ = match (step_index, t.strategy.as_str()) {
                (_, "blueGreen") => String::new(),
                (Some(i), _) => format!(" at step {i}"),
                (None, _) => String::new(),
            };
            format!(
                "waits{where_} ({reason}) for {promote}, reached after {at} (--promote-after simulates the promotion)"
            )
        }
        Outcome::Aborted { message } => format!("aborted after {at}: {message}"),
        Outcome::Degraded { message } => format!("degraded after {at}: {message}"),
        Outcome::InvalidSpec { message } => format!("invalid spec: {message}"),
        Outcome::Stuck { phase, message } => {
            if message.is_empty() {
                format!("stuck after {at} ({phase})")
            } else {
                format!("stuck after {at} ({phase}: {message})")
            }
        }
        Outcome::HorizonReached => format!("not finished after {at} of simulated time"),
    }
}

/// The weights a router went through within a row (`100→0`), or `-` before it had one.
fn weight_cell(row: &Row<'_>, before: Option<&TimelineEntry>, router: &str) -> String {
    let of = |e: &TimelineEntry| {
        e.weights
            .iter()
            .find(|w| w.router == router)
            .map(|w| w.weight)
    };
    let mut seen: Vec<i32> = Vec::new();
    for w in row.entries.iter().filter_map(|e| of(e)) {
        if seen.last() != Some(&w) {
            seen.push(w);
        }
    }
    if seen.len() > 1 && before.and_then(of) == seen.first().copied() {
        seen.remove(0);
    }
    if seen.is_empty() {
        return "-".into();
    }
    seen.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join("→")
}

/// Without the spaces that padding leaves at the ends of lines.
fn trim_lines(text: &str) -> String {
    text.lines()
        .map(|l| format!("{}\n", l.trim_end()))
        .collect()
}

fn phase_icon(phase: &str) -> &'static str {
    crate::info::rollout_icon(phase)
}

/// The table of a plan, with its header, outcome and worst case.
pub fn render_text(report: &PlanReport, style: Style) -> String {
    let t = &report.timeline;
    let blue_green = t.strategy == "blueGreen";
    let step_count = t
        .worst_case
        .iter()
        .filter(|b| b.label.starts_with("step "))
        .count();
    let mut revisions: BTreeMap<String, i64> = BTreeMap::new();
    let mut columns: BTreeSet<i64> = BTreeSet::new();
    let mut routers: BTreeSet<String> = BTreeSet::new();
    for e in &t.entries {
        for r in &e.replica_sets {
            revisions.insert(r.hash.clone(), r.revision);
            columns.insert(r.revision);
        }
        for w in &e.weights {
            routers.insert(w.router.clone());
        }
    }
    let mut out = header(report).join("\n");
    out.push_str("\n\n");
    let mut table = String::from("TIME\tSTEP");
    if blue_green {
        table = String::from("TIME\tSTAGE");
    }
    for c in &columns {
        table.push_str(&format!("\tREV {c}"));
    }
    for r in &routers {
        table.push_str(&format!("\t{}", r.to_uppercase()));
    }
    table.push_str("\tPHASE\tNOTES\n");
    let rows = rows(t, blue_green, step_count);
    let mut before: Option<&TimelineEntry> = None;
    for row in &rows {
        let e = row.last();
        let mut line = format!("{}\t{}", clock(e.elapsed_seconds), row.stage);
        for c in &columns {
            let cell = e
                .replica_sets
                .iter()
                .find(|r| r.revision == *c)
                .map(|r| {
                    let role = role_word(r.role);
                    format!(
                        "{}/{} {}",
                        r.available,
                        r.desired,
                        style.paint_as(role, if role == "old" { "" } else { role })
                    )
                })
                .unwrap_or_else(|| "-".into());
            line.push('\t');
            line.push_str(&cell);
        }
        for r in &routers {
            line.push('\t');
            line.push_str(&weight_cell(row, before, r));
        }
        let icon = phase_icon(&e.phase);
        line.push('\t');
        line.push_str(&style.paint_as(&format!("{icon} {}", e.phase), icon));
        line.push('\t');
        line.push_str(&row_notes(row, before, &revisions, &t.rollout).join("; "));
        table.push_str(&line);
        table.push('\n');
        before = Some(e);
    }
    out.push_str(&trim_lines(&crate::tree::align(&table)));
    out.push('\n');
    out.push_str(&format!("Outcome:      {}\n", outcome_line(report)));
    let worst = match t.worst_case_seconds {
        Some(s) => clock(s),
        None => {
            let unbounded: Vec<&str> = t
                .worst_case
                .iter()
                .filter(|b| b.seconds.is_none())
                .map(|b| b.label.as_str())
                .collect();
            format!("unbounded ({})", unbounded.join("; "))
        }
    };
    out.push_str(&format!("Worst case:   {worst}\n"));
    let mut budget = String::new();
    for b in &t.worst_case {
        let secs = b.seconds.map_or_else(|| "unbounded".to_string(), clock);
        budget.push_str(&format!("  {secs}\t{}\n", b.label));
    }
    out.push_str(&trim_lines(&crate::tree::align(&budget)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks() {
        assert_eq!(clock(0), "0s");
        assert_eq!(clock(59), "59s");
        assert_eq!(clock(60), "1m");
        assert_eq!(clock(70), "1m10s");
        assert_eq!(clock(3600), "1h");
        assert_eq!(clock(3723), "1h2m3s");
    }

    #[test]
    fn duration_flags() {
        assert_eq!(
            parse_duration_flag("--x", "90").unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(
            parse_duration_flag("--x", "1m30s").unwrap(),
            Duration::from_secs(90)
        );
        let e = parse_duration_flag("--x", "soon").unwrap_err();
        assert!(matches!(e, Error::Usage(_)), "{e:?}");
        assert!(parse_duration_flag("--x", "-1s").is_err());
    }

    #[test]
    fn templates_are_found_anywhere_in_the_spec() {
        let v = serde_json::json!({"strategy": {"canary": {
            "analysis": {"templates": [{"templateName": "bg"}]},
            "steps": [{"analysis": {"templates": [{"templateName": "a"}, {"templateName": "c", "clusterScope": true}]}},
                      {"experiment": {"analyses": [{"name": "x", "templateName": "e"}]}}]}}});
        let mut refs = BTreeSet::new();
        referenced_templates(&v, &mut refs);
        let refs: Vec<(String, bool)> = refs.into_iter().collect();
        assert_eq!(
            refs,
            [
                ("a".to_string(), false),
                ("bg".to_string(), false),
                ("c".to_string(), true),
                ("e".to_string(), false)
            ]
        );
    }
}
