//! `explain`: which gate holds a rollout now (beyond Argo; the engine of
//! `kubectl argo rollouts why`).
//!
//! [`explain()`] reads the same [`Snapshot`] as [`crate::plan()`] and names the one thing the
//! rollout waits for, in the order the controller checks them: an invalid spec, a spec not yet
//! observed, an abort, an exceeded progress deadline, a pause (by the user, at a step, blue-green,
//! inconclusive analysis or experiment), a traffic weight not yet verified, an analysis or
//! experiment still running, pods not yet available, old pods kept during a scale-down delay, or
//! nothing. The answer is a [`Blocker`]: a structured [`Gate`] with the data that matters (which
//! ReplicaSet, how many pods of how many, which metric and its last measurement, until when),
//! since when it holds, what releases it, and one human sentence.

use jiff::{SignedDuration, Timestamp};
use rollouts_api::{BlueGreenStrategy, RolloutStatus, labels};
use serde::{Serialize, Serializer};

use crate::conditions::{kind, reason};
use crate::pause::reason as pause_reason;
use crate::snapshot::{AnalysisRunView, MetricView, ReplicaSetView, Snapshot};
use crate::steps;
use crate::validation::{validate_references, validate_resolved};

/// Why a rollout does not move on.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blocker {
    /// The gate that holds the rollout.
    pub gate: Gate,
    /// Since when it holds (from conditions, pause start times, run creation).
    #[serde(serialize_with = "opt_time")]
    pub since: Option<Timestamp>,
    /// The command or event that releases it (`""` when nothing holds the rollout).
    pub release: String,
    /// One sentence for a person.
    pub sentence: String,
}

/// The gates a rollout can wait at.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "gate"
)]
pub enum Gate {
    /// Nothing holds the rollout: it is healthy (or simply progressing with nothing to wait
    /// for but the next reconciliation).
    None {
        /// `status.phase`.
        phase: String,
    },
    /// The spec is invalid.
    InvalidSpec {
        /// The validation message.
        message: String,
    },
    /// The controller has not yet observed the current spec.
    SpecNotObserved {
        /// `metadata.generation`.
        generation: i64,
        /// `status.observedGeneration`.
        observed: String,
    },
    /// The rollout was aborted.
    Aborted {
        /// Why (the `RolloutAborted` condition message).
        message: String,
    },
    /// The progress deadline was exceeded.
    ProgressDeadlineExceeded {
        /// The `Progressing` condition message.
        message: String,
    },
    /// `spec.paused` is set.
    PausedByUser,
    /// Paused at a canary pause step.
    PausedAtStep {
        /// Step index.
        step_index: i32,
        /// Step description (`pause`, `pause: 1h`).
        step: String,
        /// When a timed pause ends (`None`: until promoted).
        #[serde(serialize_with = "opt_time")]
        until: Option<Timestamp>,
    },
    /// A blue-green rollout waits for promotion before switching the active Service.
    BlueGreenPromotion {
        /// When `autoPromotionSeconds` promotes it (`None`: manual promotion).
        #[serde(serialize_with = "opt_time")]
        auto_promotion_at: Option<Timestamp>,
    },
    /// An AnalysisRun was inconclusive; the rollout waits for a promotion.
    InconclusiveAnalysis {
        /// The run.
        run: String,
    },
    /// An Experiment was inconclusive; the rollout waits for a promotion.
    InconclusiveExperiment {
        /// The experiment.
        experiment: String,
    },
    /// A traffic router has not yet confirmed the weight.
    TrafficWeightVerification {
        /// The router.
        router: String,
        /// The canary weight wanted.
        desired_weight: i32,
        /// The weight the router last verified (`None`: no answer yet).
        observed_weight: Option<i32>,
    },
    /// An AnalysisRun is still running.
    Analysis {
        /// Run name.
        run: String,
        /// `Step`, `Background`, `PrePromotion`, `PostPromotion`.
        kind: String,
        /// Run phase (`""` before the controller picked it up).
        phase: String,
        /// The metric that decides now (the first one not yet successful).
        metric: Option<MetricGate>,
    },
    /// An Experiment of a step is still running.
    Experiment {
        /// Experiment name.
        experiment: String,
        /// Its phase.
        phase: String,
    },
    /// A ReplicaSet does not have its pods available yet.
    ReplicaSetAvailability {
        /// ReplicaSet name.
        replica_set: String,
        /// `canary`, `stable`, `preview`, `active`.
        role: String,
        /// Pods available.
        available: i32,
        /// Pods wanted.
        desired: i32,
        /// When the progress deadline passes.
        #[serde(serialize_with = "opt_time")]
        deadline: Option<Timestamp>,
    },
    /// Older pods are kept until their scale-down deadline.
    ScaleDownDelay {
        /// ReplicaSet name.
        replica_set: String,
        /// When it is scaled down.
        #[serde(serialize_with = "opt_time")]
        until: Option<Timestamp>,
    },
}

/// The metric an analysis waits on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricGate {
    /// Metric name.
    pub name: String,
    /// Metric phase.
    pub phase: String,
    /// Its success condition.
    pub success_condition: String,
    /// Its failure condition.
    pub failure_condition: String,
    /// Measurements taken.
    pub count: i32,
    /// The last measured value.
    pub last_value: Option<String>,
    /// The phase of the last measurement.
    pub last_phase: Option<String>,
}

fn opt_time<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&crate::format_rfc3339(*t)),
        None => s.serialize_none(),
    }
}

impl Gate {
    /// A short name of the gate (`pausedAtStep`, `analysis`, ...), as in its JSON `gate` tag.
    pub fn name(&self) -> &'static str {
        match self {
            Gate::None { .. } => "none",
            Gate::InvalidSpec { .. } => "invalidSpec",
            Gate::SpecNotObserved { .. } => "specNotObserved",
            Gate::Aborted { .. } => "aborted",
            Gate::ProgressDeadlineExceeded { .. } => "progressDeadlineExceeded",
            Gate::PausedByUser => "pausedByUser",
            Gate::PausedAtStep { .. } => "pausedAtStep",
            Gate::BlueGreenPromotion { .. } => "blueGreenPromotion",
            Gate::InconclusiveAnalysis { .. } => "inconclusiveAnalysis",
            Gate::InconclusiveExperiment { .. } => "inconclusiveExperiment",
            Gate::TrafficWeightVerification { .. } => "trafficWeightVerification",
            Gate::Analysis { .. } => "analysis",
            Gate::Experiment { .. } => "experiment",
            Gate::ReplicaSetAvailability { .. } => "replicaSetAvailability",
            Gate::ScaleDownDelay { .. } => "scaleDownDelay",
        }
    }
}

/// Which gate holds the rollout of `snapshot` now.
pub fn explain(snapshot: &Snapshot) -> Blocker {
    Explainer::new(snapshot).explain()
}

struct Explainer<'a> {
    snap: &'a Snapshot,
    status: RolloutStatus,
    name: String,
    promote: String,
}

fn blocker(gate: Gate, since: Option<Timestamp>, release: String, sentence: String) -> Blocker {
    Blocker {
        gate,
        since,
        release,
        sentence,
    }
}

/// `t + secs`, saturating at the ends of time.
fn plus(t: Timestamp, secs: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(secs))
        .unwrap_or(if secs < 0 {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        })
}

fn when(t: Timestamp) -> String {
    crate::format_rfc3339(t)
}

impl<'a> Explainer<'a> {
    fn new(snap: &'a Snapshot) -> Self {
        let name = snap.rollout.metadata.name.clone().unwrap_or_default();
        Self {
            snap,
            status: snap.rollout.status.clone().unwrap_or_default(),
            promote: format!("kubectl argo rollouts promote {name}"),
            name,
        }
    }

    fn condition(&self, kind_: &str) -> Option<&rollouts_api::RolloutCondition> {
        crate::conditions::get(&self.status, kind_)
    }

    fn explain(&self) -> Blocker {
        if let Some(b) = self.invalid() {
            return b;
        }
        let generation = self.snap.rollout.metadata.generation.unwrap_or(0);
        let observed = self.status.observed_generation.clone().unwrap_or_default();
        if observed != generation.to_string() {
            return blocker(
                Gate::SpecNotObserved {
                    generation,
                    observed: observed.clone(),
                },
                None,
                "the controller's next reconciliation".into(),
                format!(
                    "The controller has not yet observed generation {generation} of the spec (last observed: {}).",
                    if observed.is_empty() {
                        "none"
                    } else {
                        &observed
                    }
                ),
            );
        }
        if self.status.abort == Some(true) {
            let message = self
                .condition(kind::PROGRESSING)
                .filter(|c| c.reason == reason::ROLLOUT_ABORTED)
                .map(|c| c.message.clone())
                .unwrap_or_else(|| "Rollout aborted".into());
            return blocker(
                Gate::Aborted {
                    message: message.clone(),
                },
                self.status.aborted_at.as_ref().map(|t| t.0),
                format!(
                    "`kubectl argo rollouts retry rollout {}`, or a new revision",
                    self.name
                ),
                format!("The rollout was aborted: {message}."),
            );
        }
        if let Some(c) = self
            .condition(kind::PROGRESSING)
            .filter(|c| c.reason == reason::PROGRESS_DEADLINE_EXCEEDED)
        {
            return blocker(
                Gate::ProgressDeadlineExceeded {
                    message: c.message.clone(),
                },
                Some(c.last_transition_time.0),
                format!(
                    "the pods becoming available, a new revision, or `kubectl argo rollouts abort {}`",
                    self.name
                ),
                format!("The progress deadline was exceeded: {}", c.message),
            );
        }
        if self.snap.rollout.spec.paused == Some(true) {
            let since = self
                .condition(kind::PAUSED)
                .filter(|c| c.status == crate::conditions::TRUE)
                .map(|c| c.last_transition_time.0);
            return blocker(
                Gate::PausedByUser,
                since,
                format!("`{}`", self.promote),
                "The rollout is paused by the user (spec.paused).".into(),
            );
        }
        if let Some(b) = self.paused() {
            return b;
        }
        let blue_green = self.snap.rollout.spec.blue_green().cloned();
        let found = match &blue_green {
            Some(bg) => self.blue_green(bg),
            None => self.canary(),
        };
        if let Some(b) = found {
            return b;
        }
        if let Some(b) = self.scale_down_delay() {
            return b;
        }
        let phase = self.status.phase.clone().unwrap_or_default();
        let message = self.status.message.clone().unwrap_or_default();
        let sentence = if phase == crate::phase::phase::HEALTHY {
            "Nothing holds the rollout: it is healthy.".to_string()
        } else if message.is_empty() {
            format!("Nothing holds the rollout; it is {phase}.")
        } else {
            format!("Nothing holds the rollout; it is {phase}: {message}.")
        };
        blocker(Gate::None { phase }, None, String::new(), sentence)
    }

    fn invalid(&self) -> Option<Blocker> {
        let resolved = matches!(
            self.snap.workload,
            Some(crate::snapshot::WorkloadView::Resolved { .. })
        );
        let message = if let Some(crate::snapshot::WorkloadView::Error(msg)) = &self.snap.workload {
            Some(msg.clone())
        } else {
            let mut errors = validate_resolved(&self.snap.rollout, resolved);
            if errors.is_empty() {
                errors = validate_references(&self.snap.rollout, &self.snap.services);
            }
            errors.first().map(ToString::to_string)
        }?;
        let since = self
            .condition(kind::INVALID_SPEC)
            .map(|c| c.last_transition_time.0);
        Some(blocker(
            Gate::InvalidSpec {
                message: message.clone(),
            },
            since,
            "a corrected spec".into(),
            format!("The spec is invalid: {message}"),
        ))
    }

    /// Pause conditions, the first one first.
    fn paused(&self) -> Option<Blocker> {
        let cond = self.status.pause_conditions.as_ref()?.first()?.clone();
        let since = Some(cond.start_time.0);
        let promote = format!("`{}`", self.promote);
        Some(match cond.reason.as_str() {
            pause_reason::CANARY_PAUSE_STEP => {
                let (step, index) = steps::current_step(&self.snap.rollout);
                let index = index.unwrap_or(0);
                let duration = step
                    .and_then(|s| s.pause.as_ref())
                    .and_then(|p| p.duration.as_ref());
                let desc = step.map(steps::describe).unwrap_or_else(|| "pause".into());
                let until = duration
                    .map(|d| plus(cond.start_time.0, steps::pause_duration_seconds(Some(d))));
                match until {
                    Some(t) => blocker(
                        Gate::PausedAtStep {
                            step_index: index,
                            step: desc.clone(),
                            until,
                        },
                        since,
                        format!("the end of the pause at {}, or {promote}", when(t)),
                        format!(
                            "The rollout is paused at step {index} ({desc}) until {}.",
                            when(t)
                        ),
                    ),
                    None => blocker(
                        Gate::PausedAtStep {
                            step_index: index,
                            step: desc.clone(),
                            until: None,
                        },
                        since,
                        promote.clone(),
                        format!(
                            "The rollout is paused at step {index} ({desc}) until promoted: run {promote}."
                        ),
                    ),
                }
            }
            pause_reason::BLUE_GREEN_PAUSE => {
                let bg = self.snap.rollout.spec.blue_green();
                let at = bg
                    .filter(|b| b.auto_promotion_enabled != Some(false))
                    .and_then(|b| b.auto_promotion_seconds)
                    .filter(|s| *s > 0)
                    .map(|s| plus(cond.start_time.0, i64::from(s)));
                match at {
                    Some(t) => blocker(
                        Gate::BlueGreenPromotion {
                            auto_promotion_at: at,
                        },
                        since,
                        format!("auto-promotion at {}, or {promote}", when(t)),
                        format!(
                            "The preview is ready; the active Service switches at {} (autoPromotionSeconds).",
                            when(t)
                        ),
                    ),
                    None => blocker(
                        Gate::BlueGreenPromotion {
                            auto_promotion_at: None,
                        },
                        since,
                        promote.clone(),
                        format!(
                            "The preview is ready and waits for promotion before the active Service switches: run {promote}."
                        ),
                    ),
                }
            }
            pause_reason::INCONCLUSIVE_ANALYSIS => {
                let run = self.current_runs().into_iter().find_map(|(run, _)| {
                    (run.phase == crate::analysis::phase::INCONCLUSIVE).then(|| run.name.clone())
                });
                let run = run.unwrap_or_default();
                blocker(
                    Gate::InconclusiveAnalysis { run: run.clone() },
                    since,
                    promote.clone(),
                    format!(
                        "AnalysisRun {run} was inconclusive; the rollout waits for a decision: run {promote} to go on (a new run starts), or abort."
                    ),
                )
            }
            _ => {
                let experiment = self
                    .status
                    .canary
                    .as_ref()
                    .and_then(|c| c.current_experiment.clone())
                    .or_else(|| {
                        self.snap
                            .experiments
                            .iter()
                            .filter(|e| e.phase == crate::analysis::phase::INCONCLUSIVE)
                            .max_by_key(|e| e.created)
                            .map(|e| e.name.clone())
                    })
                    .unwrap_or_default();
                blocker(
                    Gate::InconclusiveExperiment {
                        experiment: experiment.clone(),
                    },
                    since,
                    promote.clone(),
                    format!(
                        "Experiment {experiment} was inconclusive; run {promote} to go on, or abort."
                    ),
                )
            }
        })
    }

    /// The AnalysisRuns named in the status, with their kind.
    fn current_runs(&self) -> Vec<(&'a AnalysisRunView, &'static str)> {
        let c = self.status.canary.as_ref();
        let b = self.status.blue_green.as_ref();
        [
            (
                c.and_then(|c| c.current_step_analysis_run_status.as_ref()),
                "Step",
            ),
            (
                c.and_then(|c| c.current_background_analysis_run_status.as_ref()),
                "Background",
            ),
            (
                b.and_then(|b| b.pre_promotion_analysis_run_status.as_ref()),
                "PrePromotion",
            ),
            (
                b.and_then(|b| b.post_promotion_analysis_run_status.as_ref()),
                "PostPromotion",
            ),
        ]
        .into_iter()
        .filter_map(|(s, k)| {
            let name = &s?.name;
            self.snap
                .analysis_runs
                .iter()
                .find(|r| &r.name == name)
                .map(|r| (r, k))
        })
        .collect()
    }

    fn analysis(&self, run: &AnalysisRunView, kind_: &str) -> Blocker {
        let metric = pick_metric(&run.metrics);
        let mut sentence = format!(
            "Waiting for the {} analysis {}",
            kind_label(kind_),
            run.name
        );
        if let Some(m) = &metric {
            sentence.push_str(&format!(": metric {}", m.name));
            if !m.success_condition.is_empty() {
                sentence.push_str(&format!(" (success when {})", m.success_condition));
            }
            match (&m.last_value, &m.last_phase) {
                (Some(v), Some(p)) => sentence.push_str(&format!(
                    ", last measured {v} ({p}) after {} measurement{}",
                    m.count,
                    if m.count == 1 { "" } else { "s" }
                )),
                _ => sentence.push_str(", no measurement yet"),
            }
        }
        sentence.push('.');
        blocker(
            Gate::Analysis {
                run: run.name.clone(),
                kind: kind_.to_string(),
                phase: run.phase.clone(),
                metric,
            },
            Some(run.created),
            format!("AnalysisRun {} completing successfully", run.name),
            sentence,
        )
    }

    fn rs_gate(&self, rs: &ReplicaSetView, role: &str, desired: i32) -> Blocker {
        let progress = self.condition(kind::PROGRESSING);
        let since = progress.map(|c| c.last_update_time.0);
        let deadline = since.map(|t| {
            plus(
                t,
                i64::from(
                    self.snap
                        .rollout
                        .spec
                        .progress_deadline_seconds_or_default(),
                ),
            )
        });
        let mut sentence = format!(
            "Waiting for ReplicaSet {} ({role}): {} of {desired} pods available",
            rs.name, rs.available_replicas
        );
        if let Some(t) = since {
            let secs = self.snap.now.duration_since(t).as_secs().max(0);
            sentence.push_str(&format!(", no progress for {secs}s"));
        }
        if let Some(d) = deadline {
            sentence.push_str(&format!("; progress deadline at {}", when(d)));
        }
        sentence.push('.');
        blocker(
            Gate::ReplicaSetAvailability {
                replica_set: rs.name.clone(),
                role: role.to_string(),
                available: rs.available_replicas,
                desired,
                deadline,
            },
            since,
            format!("{desired} pods of {} becoming available", rs.name),
            sentence,
        )
    }

    fn rs_by_hash(&self, hash: &str) -> Option<&'a ReplicaSetView> {
        if hash.is_empty() {
            return None;
        }
        self.snap.replica_sets.iter().find(|r| r.hash() == hash)
    }

    fn canary(&self) -> Option<Blocker> {
        // Traffic weight verification.
        if let Some(w) = self
            .status
            .canary
            .as_ref()
            .and_then(|c| c.weights.as_ref())
            .filter(|w| w.verified == Some(false))
        {
            let report = self.snap.routers.iter().find(|r| {
                r.verifies_weight
                    && r.last
                        .as_ref()
                        .is_none_or(|l| !l.verified || l.weight != w.canary.weight)
            });
            let router = report.map(|r| r.router.clone()).unwrap_or_default();
            let observed = report.and_then(|r| r.last.as_ref()).map(|l| l.weight);
            return Some(blocker(
                Gate::TrafficWeightVerification {
                    router: router.clone(),
                    desired_weight: w.canary.weight,
                    observed_weight: observed,
                },
                self.condition(kind::PROGRESSING)
                    .map(|c| c.last_update_time.0),
                format!("router {router} confirming weight {}", w.canary.weight),
                format!(
                    "Waiting for router {router} to confirm the canary weight {} (last verified: {}).",
                    w.canary.weight,
                    observed.map_or("none".to_string(), |o| o.to_string())
                ),
            ));
        }
        let (step, index) = steps::current_step(&self.snap.rollout);
        if let Some(step) = step {
            if step.analysis.is_some()
                && let Some((run, k)) = self
                    .current_runs()
                    .into_iter()
                    .find(|(r, k)| *k == "Step" && !crate::analysis::is_completed(&r.phase))
            {
                return Some(self.analysis(run, k));
            }
            if step.experiment.is_some()
                && let Some(name) = self
                    .status
                    .canary
                    .as_ref()
                    .and_then(|c| c.current_experiment.clone())
                && let Some(ex) = self.snap.experiments.iter().find(|e| e.name == name)
                && ex.phase != crate::analysis::phase::SUCCESSFUL
            {
                return Some(blocker(
                    Gate::Experiment {
                        experiment: ex.name.clone(),
                        phase: ex.phase.clone(),
                    },
                    Some(ex.created),
                    format!("Experiment {} completing successfully", ex.name),
                    format!(
                        "Waiting for experiment {} (step {}, phase {}).",
                        ex.name,
                        index.unwrap_or(0),
                        if ex.phase.is_empty() {
                            "Pending"
                        } else {
                            &ex.phase
                        }
                    ),
                ));
            }
        }
        // Pods: the canary, then the stable side.
        let current = self.status.current_pod_hash.clone().unwrap_or_default();
        let stable = self.status.stable_rs.clone().unwrap_or_default();
        for (hash, role) in [(current.as_str(), "canary"), (stable.as_str(), "stable")] {
            if let Some(rs) = self.rs_by_hash(hash)
                && rs.spec_replicas > rs.available_replicas
            {
                let role = if hash == stable { "stable" } else { role };
                return Some(self.rs_gate(rs, role, rs.spec_replicas));
            }
        }
        None
    }

    fn blue_green(&self, bg: &BlueGreenStrategy) -> Option<Blocker> {
        let current = self.status.current_pod_hash.clone().unwrap_or_default();
        let active = self
            .status
            .blue_green
            .as_ref()
            .and_then(|b| b.active_selector.clone())
            .unwrap_or_default();
        let replicas = self.snap.rollout.spec.replicas_or_default();
        for (run, k) in self.current_runs() {
            if !crate::analysis::is_completed(&run.phase) && !run.terminate {
                return Some(self.analysis(run, k));
            }
        }
        let new_rs = self.rs_by_hash(&current)?;
        let role = if active == current {
            "active"
        } else {
            "preview"
        };
        let desired = if active == current || bg.preview_replica_count.is_none() {
            replicas
        } else {
            new_rs.spec_replicas
        };
        if new_rs.available_replicas < desired || new_rs.spec_replicas > new_rs.available_replicas {
            return Some(self.rs_gate(new_rs, role, desired.max(new_rs.spec_replicas)));
        }
        if let Some(a) = self.rs_by_hash(&active)
            && a.available_replicas < replicas
        {
            return Some(self.rs_gate(a, "active", replicas));
        }
        None
    }

    fn scale_down_delay(&self) -> Option<Blocker> {
        let current = self.status.current_pod_hash.clone().unwrap_or_default();
        let (rs, until) = self
            .snap
            .replica_sets
            .iter()
            .filter(|r| r.hash() != current && r.spec_replicas > 0)
            .filter_map(|r| {
                let at: Timestamp = r
                    .annotations
                    .get(labels::SCALE_DOWN_DEADLINE)?
                    .parse()
                    .ok()?;
                Some((r, at))
            })
            .min_by_key(|(_, at)| *at)?;
        Some(blocker(
            Gate::ScaleDownDelay {
                replica_set: rs.name.clone(),
                until: Some(until),
            },
            None,
            format!("the scale-down deadline at {}", when(until)),
            format!(
                "The update is done; ReplicaSet {} keeps its {} pod{} until {} (scale-down delay).",
                rs.name,
                rs.spec_replicas,
                if rs.spec_replicas == 1 { "" } else { "s" },
                when(until)
            ),
        ))
    }
}

fn kind_label(kind_: &str) -> &'static str {
    match kind_ {
        "Step" => "step",
        "Background" => "background",
        "PrePromotion" => "pre-promotion",
        "PostPromotion" => "post-promotion",
        _ => "",
    }
}

/// The metric that decides now: a failing or inconclusive one first, else the first that is not
/// successful.
fn pick_metric(metrics: &[MetricView]) -> Option<MetricGate> {
    let bad = |m: &&MetricView| {
        matches!(m.phase.as_str(), "Failed" | "Error" | "Inconclusive")
            || m.failed + m.error + m.inconclusive > 0
    };
    let m = metrics
        .iter()
        .find(bad)
        .or_else(|| metrics.iter().find(|m| m.phase != "Successful"))?;
    Some(MetricGate {
        name: m.name.clone(),
        phase: m.phase.clone(),
        success_condition: m.success_condition.clone(),
        failure_condition: m.failure_condition.clone(),
        count: m.count,
        last_value: m.last.as_ref().map(|l| l.value.clone()),
        last_phase: m.last.as_ref().map(|l| l.phase.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_choice_prefers_failing_ones() {
        let ok = MetricView {
            name: "a".into(),
            phase: "Successful".into(),
            ..Default::default()
        };
        let running = MetricView {
            name: "b".into(),
            phase: "Running".into(),
            ..Default::default()
        };
        let failing = MetricView {
            name: "c".into(),
            phase: "Running".into(),
            failed: 1,
            ..Default::default()
        };
        assert_eq!(
            pick_metric(&[ok.clone(), running.clone(), failing])
                .unwrap()
                .name,
            "c"
        );
        assert_eq!(pick_metric(&[ok.clone(), running]).unwrap().name, "b");
        assert_eq!(pick_metric(&[ok]), None);
    }
}
