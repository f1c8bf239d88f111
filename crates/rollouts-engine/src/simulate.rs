//! `simulate`: what a Rollout will do, step by step, before it is applied (beyond Argo; the
//! engine of `kubectl argo rollouts plan`).
//!
//! [`simulate()`] runs the engine against the in-memory world of [`crate::sim`] under stated
//! [`Assumptions`] (how long pods take to become available, how analyses and experiments end,
//! whether and when indefinite pauses are promoted), from a fresh Rollout or from a live
//! [`Snapshot`] with a new template. Time advances from one event to the next (a pod becoming
//! available, a run finishing, the plan's `requeue_after`), so hour-long pauses cost nothing.
//! The result is a [`Timeline`]: every observable change (pods per ReplicaSet and their role,
//! weights per router, pauses, analyses, experiments, Service selectors, phase) with the
//! simulated elapsed time and the events of the passes that led to it, the outcome, and the
//! worst-case duration of the strategy computed from the spec (progress deadlines, pause
//! durations, analysis `initialDelay + interval × (count − 1)`, scale-down delays).
//!
//! Like [`crate::plan()`], the simulation is pure. The Timeline is plain data (serde
//! `Serialize` for `-o json`); rendering it is the CLI's business.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rollouts_api::{
    AnalysisTemplate, AnalysisTemplateSpec, ClusterAnalysisTemplate, Rollout, RolloutAnalysis,
    RolloutStatus, labels,
};
use serde::Serialize;

use crate::conditions::kind;
use crate::duration::parse_go_duration;
use crate::pause::reason as pause_reason;
use crate::sim::World;
use crate::snapshot::Snapshot;

/// Most passes one simulation may plan (a guard against a Rollout that never settles).
const MAX_PASSES: usize = 20_000;
/// Most assumed promotions (an analysis that is always inconclusive would loop forever).
const MAX_PROMOTIONS: usize = 50;
/// Nesting limit when resolving analysis templates that reference other templates.
const MAX_TEMPLATE_DEPTH: usize = 10;

/// What the simulation takes for granted.
#[derive(Clone, Debug)]
pub struct Assumptions {
    /// How long after its creation a pod becomes available (`Duration::ZERO`: at once).
    pub pods_ready_after: Duration,
    /// The phase every AnalysisRun ends with (`Successful`, `Failed`, `Error`,
    /// `Inconclusive`), once its templates' measurements are done.
    pub analysis_outcome: String,
    /// The phase every Experiment ends with, once its `duration` passed.
    pub experiment_outcome: String,
    /// Indefinite pauses (a `pause: {}` step, a manual blue-green promotion, an inconclusive
    /// analysis, `spec.paused`) are promoted this long after they start; `None`: the
    /// simulation stops there and reports that the rollout waits for promotion.
    pub promote_after: Option<Duration>,
    /// Start from this live state (the Rollout's status, its ReplicaSets, Services and runs)
    /// with the simulated Rollout's spec as the new spec; `None`: a fresh Rollout.
    pub live: Option<Snapshot>,
    /// AnalysisTemplates the Rollout references (for analysis durations).
    pub analysis_templates: Vec<AnalysisTemplate>,
    /// ClusterAnalysisTemplates the Rollout references.
    pub cluster_analysis_templates: Vec<ClusterAnalysisTemplate>,
    /// Simulated time after which the simulation gives up.
    pub horizon: Duration,
}

impl Default for Assumptions {
    fn default() -> Self {
        Self {
            pods_ready_after: Duration::ZERO,
            analysis_outcome: "Successful".to_string(),
            experiment_outcome: "Successful".to_string(),
            promote_after: None,
            live: None,
            analysis_templates: Vec::new(),
            cluster_analysis_templates: Vec::new(),
            horizon: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The simulated course of a rollout.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    /// Rollout name.
    pub rollout: String,
    /// `canary` or `blueGreen`.
    pub strategy: String,
    /// Whether the simulation started from a live state.
    pub from_live: bool,
    /// Every observable change, in order.
    pub entries: Vec<TimelineEntry>,
    /// How the simulation ended.
    pub outcome: Outcome,
    /// Simulated seconds from the start to the end of the simulation.
    pub elapsed_seconds: u64,
    /// What the strategy may take at worst, part by part.
    pub worst_case: Vec<Budget>,
    /// The sum of [`Timeline::worst_case`] (`None`: unbounded, e.g. an indefinite pause).
    pub worst_case_seconds: Option<u64>,
}

/// One observable state of the rollout, with what led to it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// Simulated seconds since the start.
    pub elapsed_seconds: u64,
    /// The canary step index (`None` for blue-green or without steps).
    pub step_index: Option<i32>,
    /// The current step, described as Argo does (`setWeight: 20`, `pause: 1m`, ...).
    pub step: Option<String>,
    /// `status.phase`.
    pub phase: String,
    /// `status.message`.
    pub message: String,
    /// Pods per ReplicaSet (ReplicaSets with neither desired nor existing pods are left out).
    pub replica_sets: Vec<ReplicaSetPods>,
    /// The weight last sent to each traffic router.
    pub weights: Vec<RouterWeight>,
    /// The pause in effect.
    pub pause: Option<PauseInfo>,
    /// AnalysisRuns that exist.
    pub analyses: Vec<RunInfo>,
    /// Experiments that exist.
    pub experiments: Vec<RunInfo>,
    /// The revision (pod-template hash) each Service of the strategy selects.
    pub services: Vec<ServiceSelection>,
    /// The events of the passes that led to this state.
    pub events: Vec<TimelineEvent>,
    /// What the simulator assumed here (a promotion), if anything.
    pub assumed: Vec<String>,
}

/// The pods of one ReplicaSet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSetPods {
    /// ReplicaSet name.
    pub name: String,
    /// `rollout.argoproj.io/revision`.
    pub revision: i64,
    /// Pod-template hash.
    pub hash: String,
    /// Role of the ReplicaSet now.
    pub role: Role,
    /// `spec.replicas`.
    pub desired: i32,
    /// Pods that exist.
    pub pods: i32,
    /// Pods that are available.
    pub available: i32,
}

/// The role of a ReplicaSet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// The stable revision (canary).
    Stable,
    /// The revision being rolled out (canary).
    Canary,
    /// The revision the active Service selects (blue-green).
    Active,
    /// The revision being rolled out, behind the preview Service (blue-green).
    Preview,
    /// An older revision.
    Other,
}

/// The weight a router was told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterWeight {
    /// Router key.
    pub router: String,
    /// Canary weight.
    pub weight: i32,
}

/// A pause in effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PauseInfo {
    /// The pause reason (`CanaryPauseStep`, `BlueGreenPause`, `InconclusiveAnalysisRun`,
    /// `InconclusiveExperiment`), or `Paused` for `spec.paused`.
    pub reason: String,
    /// Simulated seconds at which it started.
    pub since_seconds: u64,
    /// How long it lasts (`None` with `until_promoted`).
    pub duration_seconds: Option<u64>,
    /// Whether only a promotion ends it.
    pub until_promoted: bool,
}

/// An AnalysisRun or Experiment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInfo {
    /// Name.
    pub name: String,
    /// Role (`Step`, `Background`, `PrePromotion`, `PostPromotion`; `Experiment`).
    pub kind: String,
    /// Phase (`""` while pending or running).
    pub phase: String,
}

/// The revision a Service selects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSelection {
    /// Service name.
    pub service: String,
    /// Selected pod-template hash (`""`: none).
    pub hash: String,
}

/// An event the engine recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEvent {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Reason.
    pub reason: String,
    /// Message.
    pub message: String,
}

/// How the simulation ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "type"
)]
pub enum Outcome {
    /// The new revision is stable and nothing is left to do.
    Completed,
    /// An indefinite pause holds the rollout and no promotion was assumed.
    WaitsForPromotion {
        /// The pause reason.
        reason: String,
        /// The canary step index, if any.
        step_index: Option<i32>,
    },
    /// The rollout was aborted (a failed analysis or experiment, a progress-deadline abort).
    Aborted {
        /// The `Progressing` condition message.
        message: String,
    },
    /// The rollout is degraded without an abort (progress deadline exceeded).
    Degraded {
        /// The phase message.
        message: String,
    },
    /// The spec is invalid.
    InvalidSpec {
        /// The condition message.
        message: String,
    },
    /// Nothing is pending, yet the rollout is not done.
    Stuck {
        /// `status.phase`.
        phase: String,
        /// `status.message`.
        message: String,
    },
    /// The simulated time passed [`Assumptions::horizon`] (or the pass limit was reached).
    HorizonReached,
}

/// One part of the worst-case duration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// What waits (`step 0 (setWeight: 20): pods available`, `pause: 1h`, ...).
    pub label: String,
    /// Its longest wait in seconds (`None`: unbounded).
    pub seconds: Option<u64>,
}

/// Simulates `rollout` under `assumptions`.
pub fn simulate(rollout: &Rollout, assumptions: &Assumptions) -> Timeline {
    let durations = template_durations(assumptions);
    let mut w = world(rollout, assumptions, &durations);
    let start = w.now;
    let mut entries: Vec<TimelineEntry> = Vec::new();
    let mut events: Vec<TimelineEvent> = Vec::new();
    let mut assumed: Vec<String> = Vec::new();
    let mut last: Option<Observed> = None;
    let mut promotions = 0;
    let horizon = later(start, signed(assumptions.horizon));
    let mut outcome = Outcome::HorizonReached;
    for _ in 0..MAX_PASSES {
        let before = w.status();
        let plan = w.reconcile();
        events.extend(plan.events.iter().map(|e| TimelineEvent {
            type_: e.type_.as_str().to_string(),
            reason: e.reason.clone(),
            message: e.message.clone(),
        }));
        let settled = w.settle();
        let observed = observe(&w, start);
        if last.as_ref() != Some(&observed) || !assumed.is_empty() {
            entries.push(observed.clone().entry(
                seconds_between(start, w.now),
                std::mem::take(&mut events),
                std::mem::take(&mut assumed),
            ));
            last = Some(observed);
        }
        let quiet = plan.effects.is_empty() && plan.status == before && !settled;
        if !quiet {
            continue;
        }
        let status = w.status();
        if let Some(c) = condition(&status, kind::INVALID_SPEC) {
            outcome = Outcome::InvalidSpec { message: c };
            break;
        }
        let mut next = w.next_change();
        if let Some(r) = plan.requeue_after {
            // Timed waits end strictly after their deadline (`now > start + duration`): look
            // a millisecond after the requeue time, as a real clock would.
            let at = later(w.now, signed(r + Duration::from_millis(1)));
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        if next.is_none()
            && let Some((reason, since)) = indefinite_pause(&w)
        {
            match assumptions.promote_after {
                Some(d) if promotions < MAX_PROMOTIONS => {
                    promotions += 1;
                    let at = later(since, signed(d)).max(w.now);
                    if at > horizon {
                        break;
                    }
                    w.now = at;
                    w.promote();
                    assumed.push(format!(
                        "promoted {} after the {reason} pause started (assumed)",
                        human(d)
                    ));
                    continue;
                }
                Some(_) => break,
                None => {
                    outcome = Outcome::WaitsForPromotion {
                        reason,
                        step_index: status.current_step_index,
                    };
                    break;
                }
            }
        }
        let Some(next) = next else {
            outcome = final_outcome(&w, &status);
            break;
        };
        if next > horizon {
            break;
        }
        w.now = next;
    }
    if !events.is_empty()
        && let Some(last) = entries.last_mut()
    {
        last.events.append(&mut events);
    }
    let (worst_case, worst_case_seconds) = worst_case(rollout, &durations);
    Timeline {
        rollout: rollout.metadata.name.clone().unwrap_or_default(),
        strategy: if rollout.spec.blue_green().is_some() {
            "blueGreen"
        } else {
            "canary"
        }
        .to_string(),
        from_live: assumptions.live.is_some(),
        entries,
        outcome,
        elapsed_seconds: seconds_between(start, w.now),
        worst_case,
        worst_case_seconds,
    }
}

/// The world to simulate in.
fn world(
    rollout: &Rollout,
    assumptions: &Assumptions,
    durations: &BTreeMap<String, TemplateDuration>,
) -> World {
    let mut w = match &assumptions.live {
        Some(snap) => {
            let mut w = World::from_snapshot(snap);
            w.rollout.spec = rollout.spec.clone();
            w.bump_generation();
            w
        }
        None => {
            let mut ro = rollout.clone();
            ro.status = None;
            if ro.metadata.generation.is_none() {
                ro.metadata.generation = Some(1);
            }
            if let Some(a) = ro.metadata.annotations.as_mut() {
                a.remove(labels::REVISION);
            }
            World::new(ro)
        }
    };
    // Every timed wait gets a requeue, however long.
    w.config.resync_period = Duration::from_secs(u64::from(u32::MAX));
    w.knobs.ready_after = Some(assumptions.pods_ready_after);
    w.knobs.analysis_outcome = Some(assumptions.analysis_outcome.clone());
    w.knobs.experiment_outcome = Some(assumptions.experiment_outcome.clone());
    w.knobs.experiment_durations = true;
    w.knobs.analysis_durations = durations
        .iter()
        .filter_map(|(name, d)| match d {
            TemplateDuration::Bounded(d) => Some((name.clone(), *d)),
            TemplateDuration::Unbounded(_) => None,
        })
        .collect();
    w
}

/// The indefinite pause holding the rollout, with its start.
fn indefinite_pause(w: &World) -> Option<(String, Timestamp)> {
    let status = w.status();
    if w.rollout.spec.paused == Some(true) {
        return Some(("Paused".to_string(), w.now));
    }
    let first = status.pause_conditions.as_ref()?.first()?.clone();
    Some((first.reason, first.start_time.0))
}

fn final_outcome(w: &World, status: &RolloutStatus) -> Outcome {
    let phase = status.phase.clone().unwrap_or_default();
    let message = status.message.clone().unwrap_or_default();
    if status.abort == Some(true) {
        let message = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == kind::PROGRESSING)
            .map(|c| c.message.clone())
            .unwrap_or(message);
        return Outcome::Aborted { message };
    }
    if phase == crate::phase::phase::DEGRADED {
        return Outcome::Degraded { message };
    }
    let current = status.current_pod_hash.as_deref().unwrap_or("");
    if phase == crate::phase::phase::HEALTHY
        && !current.is_empty()
        && status.stable_rs.as_deref() == Some(current)
        && w.rollout.metadata.generation.map(|g| g.to_string()) == status.observed_generation
    {
        return Outcome::Completed;
    }
    Outcome::Stuck { phase, message }
}

fn condition(status: &RolloutStatus, kind_: &str) -> Option<String> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == kind_)
        .map(|c| c.message.clone())
}

// -------------------------------------------------------------------------------------------
// Observation.

/// What a timeline entry shows, without the time and the events (to detect changes).
#[derive(Clone, Debug, PartialEq)]
struct Observed {
    step_index: Option<i32>,
    step: Option<String>,
    phase: String,
    message: String,
    replica_sets: Vec<ReplicaSetPods>,
    weights: Vec<RouterWeight>,
    pause: Option<PauseInfo>,
    analyses: Vec<RunInfo>,
    experiments: Vec<RunInfo>,
    services: Vec<ServiceSelection>,
}

impl Observed {
    fn entry(
        self,
        elapsed_seconds: u64,
        events: Vec<TimelineEvent>,
        assumed: Vec<String>,
    ) -> TimelineEntry {
        TimelineEntry {
            elapsed_seconds,
            step_index: self.step_index,
            step: self.step,
            phase: self.phase,
            message: self.message,
            replica_sets: self.replica_sets,
            weights: self.weights,
            pause: self.pause,
            analyses: self.analyses,
            experiments: self.experiments,
            services: self.services,
            events,
            assumed,
        }
    }
}

fn observe(w: &World, start: Timestamp) -> Observed {
    let status = w.status();
    let current = status.current_pod_hash.clone().unwrap_or_default();
    let stable = status.stable_rs.clone().unwrap_or_default();
    let blue_green = w.rollout.spec.blue_green();
    let active = status
        .blue_green
        .as_ref()
        .and_then(|b| b.active_selector.clone())
        .unwrap_or_default();
    let mut replica_sets: Vec<ReplicaSetPods> = w
        .replica_sets
        .iter()
        .filter(|r| r.spec_replicas > 0 || r.replicas > 0)
        .map(|r| {
            let hash = r.hash().to_string();
            let role = if blue_green.is_some() {
                if !active.is_empty() && hash == active {
                    Role::Active
                } else if hash == current {
                    Role::Preview
                } else {
                    Role::Other
                }
            } else if hash == stable {
                Role::Stable
            } else if hash == current {
                Role::Canary
            } else {
                Role::Other
            };
            ReplicaSetPods {
                name: r.name.clone(),
                revision: r.revision().unwrap_or(0),
                hash,
                role,
                desired: r.spec_replicas,
                pods: r.replicas,
                available: r.available_replicas,
            }
        })
        .collect();
    replica_sets.sort_by(|a, b| b.revision.cmp(&a.revision).then(a.name.cmp(&b.name)));
    let (step, step_index) = crate::steps::current_step(&w.rollout);
    let pause = pause_info(w, &status, start);
    Observed {
        step_index,
        step: step.map(crate::steps::describe),
        phase: status.phase.clone().unwrap_or_default(),
        message: status.message.clone().unwrap_or_default(),
        replica_sets,
        weights: w
            .router_weights
            .iter()
            .map(|(router, weight)| RouterWeight {
                router: router.clone(),
                weight: *weight,
            })
            .collect(),
        pause,
        analyses: w
            .analysis_runs
            .iter()
            .map(|r| RunInfo {
                name: r.name.clone(),
                kind: r
                    .labels
                    .get(labels::ROLLOUT_TYPE)
                    .cloned()
                    .unwrap_or_default(),
                phase: r.phase.clone(),
            })
            .collect(),
        experiments: w
            .experiments
            .iter()
            .map(|e| RunInfo {
                name: e.name.clone(),
                kind: "Experiment".to_string(),
                phase: e.phase.clone(),
            })
            .collect(),
        services: w
            .services
            .iter()
            .map(|s| ServiceSelection {
                service: s.name.clone(),
                hash: s.selected_hash().to_string(),
            })
            .collect(),
    }
}

fn pause_info(w: &World, status: &RolloutStatus, start: Timestamp) -> Option<PauseInfo> {
    if w.rollout.spec.paused == Some(true) {
        return Some(PauseInfo {
            reason: "Paused".to_string(),
            since_seconds: seconds_between(start, w.now),
            duration_seconds: None,
            until_promoted: true,
        });
    }
    let cond = status.pause_conditions.as_ref()?.first()?;
    let duration = match cond.reason.as_str() {
        pause_reason::CANARY_PAUSE_STEP => crate::steps::current_step(&w.rollout)
            .0
            .and_then(|s| s.pause.as_ref())
            .and_then(|p| p.duration.as_ref())
            .map(|d| crate::steps::pause_duration_seconds(Some(d)).max(0) as u64),
        pause_reason::BLUE_GREEN_PAUSE => w.rollout.spec.blue_green().and_then(|b| {
            (b.auto_promotion_enabled != Some(false))
                .then_some(b.auto_promotion_seconds)
                .flatten()
                .filter(|s| *s > 0)
                .map(|s| s as u64)
        }),
        _ => None,
    };
    Some(PauseInfo {
        reason: cond.reason.clone(),
        since_seconds: seconds_between(start, cond.start_time.0),
        duration_seconds: duration,
        until_promoted: duration.is_none(),
    })
}

// -------------------------------------------------------------------------------------------
// Durations.

/// How long a template's measurements take.
#[derive(Clone, Debug, PartialEq, Eq)]
enum TemplateDuration {
    Bounded(Duration),
    /// Runs until terminated or failed (a metric with an interval and no count), or cannot be
    /// known (a count from an argument); the reason says which.
    Unbounded(String),
}

fn go_duration(s: Option<&str>) -> Option<Duration> {
    let d = parse_go_duration(s?).ok()?;
    Some(Duration::from_nanos(d.as_nanos().max(0).unsigned_abs()))
}

/// `initialDelay + interval × (count − 1)` over the metrics, the longest one.
fn spec_duration(
    spec: &AnalysisTemplateSpec,
    assumptions: &Assumptions,
    depth: usize,
) -> TemplateDuration {
    let mut longest = Duration::ZERO;
    for m in spec.metrics.iter().flatten() {
        let delay = go_duration(m.initial_delay.as_deref()).unwrap_or(Duration::ZERO);
        let interval = go_duration(m.interval.as_deref());
        let count = match &m.count {
            None => None,
            Some(IntOrString::Int(i)) => Some(i64::from(*i)),
            Some(IntOrString::String(s)) => match crate::intstr::go_atoi(s) {
                Some(v) => Some(v),
                None => {
                    return TemplateDuration::Unbounded(format!(
                        "metric {} takes its count from {s}",
                        m.name
                    ));
                }
            },
        };
        let took = match (count, interval) {
            (None | Some(0), Some(_)) => {
                return TemplateDuration::Unbounded(format!(
                    "metric {} has an interval and no count: it runs until stopped",
                    m.name
                ));
            }
            (Some(c), Some(i)) if c > 1 => {
                delay + i.saturating_mul(u32::try_from(c - 1).unwrap_or(u32::MAX))
            }
            _ => delay,
        };
        longest = longest.max(took);
    }
    for t in spec.templates.iter().flatten() {
        match ref_duration(
            t.template_name.as_deref().unwrap_or(""),
            t.cluster_scope == Some(true),
            assumptions,
            depth + 1,
        ) {
            TemplateDuration::Bounded(d) => longest = longest.max(d),
            u => return u,
        }
    }
    TemplateDuration::Bounded(longest)
}

fn ref_duration(
    name: &str,
    cluster: bool,
    assumptions: &Assumptions,
    depth: usize,
) -> TemplateDuration {
    if depth > MAX_TEMPLATE_DEPTH {
        return TemplateDuration::Unbounded(format!("template {name} nests too deep"));
    }
    let spec = if cluster {
        assumptions
            .cluster_analysis_templates
            .iter()
            .find(|t| t.metadata.name.as_deref() == Some(name))
            .map(|t| &t.spec)
    } else {
        assumptions
            .analysis_templates
            .iter()
            .find(|t| t.metadata.name.as_deref() == Some(name))
            .map(|t| &t.spec)
    };
    match spec {
        Some(spec) => spec_duration(spec, assumptions, depth),
        // An unknown template is assumed to answer at once.
        None => TemplateDuration::Bounded(Duration::ZERO),
    }
}

/// Durations of every known template, by name (cluster templates too: names are looked up in
/// both lists as the simulator only sees names).
fn template_durations(assumptions: &Assumptions) -> BTreeMap<String, TemplateDuration> {
    let mut out = BTreeMap::new();
    for t in &assumptions.cluster_analysis_templates {
        let name = t.metadata.name.clone().unwrap_or_default();
        out.insert(name.clone(), ref_duration(&name, true, assumptions, 0));
    }
    for t in &assumptions.analysis_templates {
        let name = t.metadata.name.clone().unwrap_or_default();
        out.insert(name.clone(), ref_duration(&name, false, assumptions, 0));
    }
    out
}

/// The longest wait of a Rollout-level analysis (its templates run in parallel).
fn analysis_budget(
    analysis: &RolloutAnalysis,
    durations: &BTreeMap<String, TemplateDuration>,
) -> Option<u64> {
    let mut longest = 0;
    for t in analysis.templates.iter().flatten() {
        match t.template_name.as_deref().and_then(|n| durations.get(n)) {
            Some(TemplateDuration::Bounded(d)) => longest = longest.max(d.as_secs()),
            Some(TemplateDuration::Unbounded(_)) => return None,
            None => {}
        }
    }
    Some(longest)
}

fn analysis_label(analysis: &RolloutAnalysis) -> String {
    let names: Vec<&str> = analysis
        .templates
        .iter()
        .flatten()
        .filter_map(|t| t.template_name.as_deref())
        .collect();
    names.join(", ")
}

/// The worst case, part by part, and its sum (`None` if any part is unbounded).
fn worst_case(
    rollout: &Rollout,
    durations: &BTreeMap<String, TemplateDuration>,
) -> (Vec<Budget>, Option<u64>) {
    let deadline = u64::try_from(rollout.spec.progress_deadline_seconds_or_default()).unwrap_or(0);
    let mut parts = Vec::new();
    let pods = |label: String| Budget {
        label,
        seconds: Some(deadline),
    };
    if let Some(bg) = rollout.spec.blue_green() {
        parts.push(pods(
            "new ReplicaSet available (progressDeadlineSeconds)".into(),
        ));
        if let Some(a) = &bg.pre_promotion_analysis {
            parts.push(Budget {
                label: format!("pre-promotion analysis ({})", analysis_label(a)),
                seconds: analysis_budget(a, durations),
            });
        }
        if bg.auto_promotion_enabled == Some(false) {
            parts.push(Budget {
                label: "BlueGreenPause until promoted".into(),
                seconds: None,
            });
        } else if let Some(s) = bg.auto_promotion_seconds.filter(|s| *s > 0) {
            parts.push(Budget {
                label: format!("BlueGreenPause (autoPromotionSeconds: {s})"),
                seconds: Some(s as u64),
            });
        }
        if bg.preview_replica_count.is_some() {
            parts.push(pods(
                "preview scaled to full size (progressDeadlineSeconds)".into(),
            ));
        }
        if let Some(a) = &bg.post_promotion_analysis {
            parts.push(Budget {
                label: format!("post-promotion analysis ({})", analysis_label(a)),
                seconds: analysis_budget(a, durations),
            });
        }
        parts.push(Budget {
            label: "old ReplicaSet scale-down delay (scaleDownDelaySeconds)".into(),
            seconds: Some(bg.scale_down_delay_seconds_or_default().max(0) as u64),
        });
    } else if let Some(c) = rollout.spec.canary() {
        for (i, step) in c.steps().iter().enumerate() {
            let what = format!("step {i} ({})", crate::steps::describe(step));
            if step.set_weight.is_some() || step.set_canary_scale.is_some() {
                parts.push(pods(format!(
                    "{what}: pods available (progressDeadlineSeconds)"
                )));
            } else if let Some(p) = &step.pause {
                parts.push(Budget {
                    label: if p.duration.is_some() {
                        what
                    } else {
                        format!("{what}: until promoted")
                    },
                    seconds: p
                        .duration
                        .as_ref()
                        .map(|d| crate::steps::pause_duration_seconds(Some(d)).max(0) as u64),
                });
            } else if let Some(a) = &step.analysis {
                parts.push(Budget {
                    label: format!("{what}: {}", analysis_label(a)),
                    seconds: analysis_budget(a, durations),
                });
            } else if let Some(e) = &step.experiment {
                let mut secs = go_duration(e.duration.as_deref()).map(|d| d.as_secs());
                for a in e.analyses.iter().flatten() {
                    secs = match (secs, durations.get(&a.template_name)) {
                        (_, Some(TemplateDuration::Unbounded(_))) if e.duration.is_none() => None,
                        (s, Some(TemplateDuration::Bounded(d))) => {
                            Some(s.unwrap_or(0).max(d.as_secs()))
                        }
                        (s, _) => s,
                    };
                }
                parts.push(Budget {
                    label: what,
                    seconds: secs.or(Some(deadline)),
                });
            }
        }
        parts.push(pods(
            "new revision at full size (progressDeadlineSeconds)".into(),
        ));
        if c.traffic_routing.is_some() {
            parts.push(Budget {
                label: "old ReplicaSet scale-down delay (scaleDownDelaySeconds)".into(),
                seconds: Some(c.scale_down_delay_seconds_or_default().max(0) as u64),
            });
        }
    }
    let total = parts
        .iter()
        .try_fold(0u64, |acc, b| b.seconds.map(|s| acc.saturating_add(s)));
    (parts, total)
}

// -------------------------------------------------------------------------------------------
// Time helpers.

fn later(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

fn seconds_between(start: Timestamp, t: Timestamp) -> u64 {
    u64::try_from(t.duration_since(start).as_secs()).unwrap_or(0)
}

/// `90s`, `5m`, `1h30m`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, 0) => format!("{h}h{m}m"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}
