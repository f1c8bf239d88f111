//! An in-memory world for driving the engine: snapshot → plan → apply → tick.
//!
//! The world keeps a Rollout, its ReplicaSets (with explicit pods), Services, AnalysisRuns,
//! Experiments and the weights the traffic routers were told. [`World::reconcile`] plans one
//! pass and applies it; [`World::tick`] plays the ReplicaSet controller (creating and deleting
//! pods to match `spec.replicas`), the kubelet (making up to [`Knobs::ready_per_tick`] pods
//! available, each [`Knobs::ready_after`] its creation), the AnalysisRun and Experiment
//! controllers (finishing runs with the chosen outcome, after their duration when
//! [`Knobs::analysis_durations`] or [`Knobs::experiment_durations`] say so), and advances the
//! clock. Like the engine, the world is pure: no I/O, no clock, no randomness. It backs
//! [`crate::simulate()`] and the engine's tests.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::{
    AnalysisRunView, Effect, EngineConfig, Event, ExperimentView, Plan, PodView, ReplicaSetView,
    RouterReport, ServiceView, Snapshot, TrafficOp, WeightVerification,
};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::PodTemplateSpec as K8sPodTemplateSpec;
use rollouts_api::{Rollout, labels};

/// Knobs of the simulation.
#[derive(Clone, Debug, Default)]
pub struct Knobs {
    /// Pods that become available per tick across the world (`None`: all at once).
    pub ready_per_tick: Option<usize>,
    /// Pod-template hashes whose pods never become available (a bad image).
    pub broken_hashes: BTreeSet<String>,
    /// Phase given to every new AnalysisRun on the next tick (`None`: stays pending).
    pub analysis_outcome: Option<String>,
    /// Phase given to every new Experiment on the next tick (`None`: stays pending).
    pub experiment_outcome: Option<String>,
    /// Whether the routers verify weights (and confirm them on the next tick).
    pub routers_verify: bool,
    /// How long after its creation a pod becomes available (`None`: on the next tick).
    pub ready_after: Option<Duration>,
    /// How long an AnalysisRun takes, per template name: a run gets its outcome once the
    /// longest of its templates' durations has passed (templates not listed take no time).
    pub analysis_durations: BTreeMap<String, Duration>,
    /// Whether an Experiment takes its `spec.duration` before getting its outcome.
    pub experiment_durations: bool,
}

/// A pod of the simulation.
#[derive(Clone, Debug)]
pub struct SimPod {
    /// Name.
    pub name: String,
    /// Owning ReplicaSet.
    pub replica_set: String,
    /// Creation time.
    pub created: Timestamp,
    /// Whether it is available.
    pub available: bool,
}

/// The simulated cluster.
#[derive(Clone, Debug)]
pub struct World {
    /// The Rollout (spec, metadata and the status the engine wrote).
    pub rollout: Rollout,
    /// ReplicaSets (status fields derived from pods on each tick).
    pub replica_sets: Vec<ReplicaSetView>,
    /// Pods.
    pub pods: Vec<SimPod>,
    /// Services.
    pub services: Vec<ServiceView>,
    /// AnalysisRuns.
    pub analysis_runs: Vec<AnalysisRunView>,
    /// Experiments.
    pub experiments: Vec<ExperimentView>,
    /// Last weight each router was told.
    pub router_weights: BTreeMap<String, i32>,
    /// Verification reports the routers will give.
    pub reports: Vec<RouterReport>,
    /// Every event recorded, in order.
    pub events: Vec<Event>,
    /// Every effect applied, in order.
    pub applied: Vec<Effect>,
    /// The clock.
    pub now: Timestamp,
    /// Knobs.
    pub knobs: Knobs,
    /// Engine configuration used for snapshots.
    pub config: EngineConfig,
    /// When each timed AnalysisRun or Experiment (by name) finishes.
    due: BTreeMap<String, Timestamp>,
    serial: u64,
}

impl World {
    /// A world holding `rollout` and the Services its strategy names, at a fixed time.
    pub fn new(rollout: Rollout) -> Self {
        let mut services = Vec::new();
        let selector: BTreeMap<String, String> = rollout
            .spec
            .selector
            .as_ref()
            .and_then(|s| s.match_labels.clone())
            .unwrap_or_default();
        let names: Vec<String> = if let Some(c) = rollout.spec.canary() {
            [c.canary_service.clone(), c.stable_service.clone()]
                .into_iter()
                .flatten()
                .collect()
        } else if let Some(b) = rollout.spec.blue_green() {
            std::iter::once(b.active_service.clone())
                .chain(b.preview_service.clone())
                .collect()
        } else {
            Vec::new()
        };
        {
            for name in names.into_iter().filter(|n| !n.is_empty()) {
                services.push(ServiceView {
                    name,
                    selector: selector.clone(),
                    annotations: BTreeMap::new(),
                });
            }
        }
        Self {
            rollout,
            replica_sets: Vec::new(),
            pods: Vec::new(),
            services,
            analysis_runs: Vec::new(),
            experiments: Vec::new(),
            router_weights: BTreeMap::new(),
            reports: Vec::new(),
            events: Vec::new(),
            applied: Vec::new(),
            now: Timestamp::from_second(1_700_000_000).expect("valid time"),
            knobs: Knobs::default(),
            config: EngineConfig::default(),
            due: BTreeMap::new(),
            serial: 0,
        }
    }

    /// A world holding the objects of a live snapshot: its Rollout, ReplicaSets (with as many
    /// pods as they report, that many of them available), Services, AnalysisRuns and
    /// Experiments, at the snapshot's time.
    pub fn from_snapshot(snapshot: &Snapshot) -> Self {
        let mut w = Self::new(snapshot.rollout.clone());
        w.now = snapshot.now;
        w.config = snapshot.config.clone();
        w.replica_sets = snapshot.replica_sets.clone();
        for s in &snapshot.services {
            match w.services.iter_mut().find(|x| x.name == s.name) {
                Some(x) => *x = s.clone(),
                None => w.services.push(s.clone()),
            }
        }
        w.analysis_runs = snapshot.analysis_runs.clone();
        w.experiments = snapshot.experiments.clone();
        for rs in snapshot.replica_sets.clone() {
            let count = rs.replicas.max(rs.spec_replicas).max(0);
            for k in 0..count {
                let serial = w.next_serial();
                w.pods.push(SimPod {
                    name: format!("{}-{serial}", rs.name),
                    replica_set: rs.name.clone(),
                    created: rs.created,
                    available: k < rs.available_replicas,
                });
            }
        }
        w.sync_pods();
        w
    }

    /// The snapshot the controller would build now.
    pub fn snapshot(&self) -> Snapshot {
        let pods = self
            .pods
            .iter()
            .map(|p| PodView {
                name: p.name.clone(),
                owner_uid: self
                    .replica_sets
                    .iter()
                    .find(|r| r.name == p.replica_set)
                    .map(|r| r.uid.clone())
                    .unwrap_or_default(),
                created: p.created,
                available: p.available,
                deleting: false,
            })
            .collect();
        Snapshot {
            rollout: self.rollout.clone(),
            replica_sets: self.replica_sets.clone(),
            services: self.services.clone(),
            analysis_runs: self.analysis_runs.clone(),
            experiments: self.experiments.clone(),
            routers: self.reports.clone(),
            router_referenced_hashes: BTreeSet::new(),
            pods,
            workload: None,
            now: self.now,
            config: self.config.clone(),
        }
    }

    /// Plans one pass and applies it; returns the plan.
    pub fn reconcile(&mut self) -> Plan {
        let plan = crate::plan(&self.snapshot());
        self.apply(&plan);
        plan
    }

    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    /// Applies a plan as the controller would: every effect, then the status and events.
    pub fn apply(&mut self, plan: &Plan) {
        for effect in &plan.effects {
            self.apply_effect(effect);
            self.applied.push(effect.clone());
        }
        self.rollout.status = Some(plan.status.clone());
        self.events.extend(plan.events.iter().cloned());
    }

    fn rs_mut(&mut self, name: &str) -> Option<&mut ReplicaSetView> {
        self.replica_sets.iter_mut().find(|r| r.name == name)
    }

    fn apply_effect(&mut self, effect: &Effect) {
        match effect {
            Effect::CreateReplicaSet { replica_set, .. } => {
                let name = replica_set.metadata.name.clone().unwrap_or_default();
                if self.replica_sets.iter().any(|r| r.name == name) {
                    return;
                }
                let serial = self.next_serial();
                let template: Option<K8sPodTemplateSpec> = replica_set.spec.template.clone();
                self.replica_sets.push(ReplicaSetView {
                    name: name.clone(),
                    uid: format!("rs-uid-{serial}"),
                    labels: replica_set.metadata.labels.clone().unwrap_or_default(),
                    annotations: replica_set.metadata.annotations.clone().unwrap_or_default(),
                    spec_replicas: replica_set.spec.replicas.unwrap_or(1),
                    min_ready_seconds: replica_set.spec.min_ready_seconds.unwrap_or(0),
                    created: later(self.now, SignedDuration::from_millis(serial as i64)),
                    generation: 1,
                    observed_generation: 1,
                    template,
                    ..Default::default()
                });
            }
            Effect::UpdateReplicaSet { name, update } => {
                if let Some(rs) = self.rs_mut(name) {
                    for (k, v) in &update.set_annotations {
                        rs.annotations.insert(k.clone(), v.clone());
                    }
                    for k in &update.remove_annotations {
                        rs.annotations.remove(k);
                    }
                    if let Some(m) = update.min_ready_seconds {
                        rs.min_ready_seconds = m;
                    }
                    if let Some(t) = rs.template.as_mut() {
                        if let Some(a) = &update.affinity {
                            t.spec.get_or_insert_with(Default::default).affinity = a.clone();
                        }
                        if let Some(md) = &update.template_metadata {
                            let meta = t.metadata.get_or_insert_with(Default::default);
                            meta.labels = md.labels.clone();
                            meta.annotations = md.annotations.clone();
                        }
                    }
                }
            }
            Effect::ScaleReplicaSet {
                name,
                replicas,
                desired_replicas,
                remove_scale_down_deadline,
            } => {
                if let Some(rs) = self.rs_mut(name) {
                    rs.spec_replicas = *replicas;
                    rs.annotations.insert(
                        labels::DESIRED_REPLICAS.to_string(),
                        desired_replicas.to_string(),
                    );
                    if *remove_scale_down_deadline {
                        rs.annotations.remove(labels::SCALE_DOWN_DEADLINE);
                    }
                }
                self.sync_pods();
            }
            Effect::DeleteReplicaSet { name } => {
                self.replica_sets.retain(|r| &r.name != name);
                self.pods.retain(|p| &p.replica_set != name);
            }
            Effect::SwitchServiceSelector {
                service,
                hash,
                managed_by,
            } => {
                if let Some(s) = self.services.iter_mut().find(|s| &s.name == service) {
                    s.selector
                        .insert(labels::POD_TEMPLATE_HASH.to_string(), hash.clone());
                    if let Some(m) = managed_by {
                        s.annotations
                            .insert(labels::MANAGED_BY_ROLLOUTS.to_string(), m.clone());
                    }
                }
            }
            Effect::UpdateRollout {
                replicas,
                annotations,
            } => {
                if let Some(r) = replicas {
                    self.rollout.spec.replicas = Some(*r);
                    self.bump_generation();
                }
                let a = self
                    .rollout
                    .metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new);
                for (k, v) in annotations {
                    a.insert(k.clone(), v.clone());
                }
            }
            Effect::Traffic { router, op } => {
                if let TrafficOp::SetWeight { weight, .. } = op {
                    self.router_weights.insert(router.clone(), *weight);
                }
            }
            Effect::CreateAnalysisRun(req) => {
                let took = req
                    .analysis
                    .templates
                    .iter()
                    .flatten()
                    .filter_map(|t| t.template_name.as_ref())
                    .filter_map(|n| self.knobs.analysis_durations.get(n))
                    .max()
                    .copied()
                    .unwrap_or(Duration::ZERO);
                if !took.is_zero() {
                    self.due
                        .insert(req.name.clone(), later(self.now, signed(took)));
                }
                if !self.analysis_runs.iter().any(|r| r.name == req.name) {
                    self.analysis_runs.push(AnalysisRunView {
                        name: req.name.clone(),
                        labels: req.labels.clone(),
                        created: self.now,
                        ..Default::default()
                    });
                }
            }
            Effect::TerminateAnalysisRun { name } => {
                if let Some(r) = self.analysis_runs.iter_mut().find(|r| &r.name == name) {
                    r.terminate = true;
                }
            }
            Effect::DeleteAnalysisRun { name } => self.analysis_runs.retain(|r| &r.name != name),
            Effect::CreateExperiment(ex) => {
                let name = ex.metadata.name.clone().unwrap_or_default();
                if self.knobs.experiment_durations
                    && let Some(d) = ex.spec.duration.as_deref()
                    && let Ok(d) = crate::duration::parse_go_duration(d)
                    && d.as_nanos() > 0
                {
                    let d = Duration::from_nanos(d.as_nanos().unsigned_abs());
                    self.due.insert(name.clone(), later(self.now, signed(d)));
                }
                if !self.experiments.iter().any(|e| e.name == name) {
                    self.experiments.push(ExperimentView {
                        name,
                        labels: ex.metadata.labels.clone().unwrap_or_default(),
                        created: self.now,
                        ..Default::default()
                    });
                }
            }
            Effect::TerminateExperiment { name } => {
                if let Some(e) = self.experiments.iter_mut().find(|e| &e.name == name) {
                    e.terminate = true;
                }
            }
            Effect::DeleteExperiment { name } => self.experiments.retain(|e| &e.name != name),
            Effect::EvictPod { name } => self.pods.retain(|p| &p.name != name),
            Effect::SyncPodMetadata { .. } | Effect::ScaleWorkload { .. } => {}
        }
    }

    /// Increments `metadata.generation` (a spec change).
    pub fn bump_generation(&mut self) {
        let g = self.rollout.metadata.generation.unwrap_or(1);
        self.rollout.metadata.generation = Some(g + 1);
    }

    /// Changes the container image (a new revision).
    pub fn set_image(&mut self, image: &str) {
        if let Some(spec) = self
            .rollout
            .spec
            .template
            .as_mut()
            .and_then(|t| t.spec.as_mut())
        {
            spec.containers[0].image = Some(image.to_string());
        }
        self.bump_generation();
    }

    /// Changes `spec.replicas` (what an HPA does).
    pub fn set_replicas(&mut self, replicas: i32) {
        self.rollout.spec.replicas = Some(replicas);
        self.bump_generation();
    }

    /// The user's `spec.paused`.
    pub fn set_paused(&mut self, paused: bool) {
        self.rollout.spec.paused = Some(paused);
        self.bump_generation();
    }

    /// `kubectl argo rollouts promote`: clears pause conditions, or skips the current step when
    /// not paused at a condition.
    pub fn promote(&mut self) {
        let status = self.rollout.status.get_or_insert_with(Default::default);
        if status
            .pause_conditions
            .as_ref()
            .is_some_and(|p| !p.is_empty())
        {
            status.pause_conditions = None;
        } else if let Some(i) = status.current_step_index {
            status.current_step_index = Some(i + 1);
        }
        if self.rollout.spec.paused == Some(true) {
            self.set_paused(false);
        }
    }

    /// `kubectl argo rollouts promote --full`.
    pub fn promote_full(&mut self) {
        self.rollout
            .status
            .get_or_insert_with(Default::default)
            .promote_full = Some(true);
    }

    /// `kubectl argo rollouts abort`.
    pub fn abort(&mut self) {
        self.rollout
            .status
            .get_or_insert_with(Default::default)
            .abort = Some(true);
    }

    /// `kubectl argo rollouts retry rollout`.
    pub fn retry(&mut self) {
        self.rollout
            .status
            .get_or_insert_with(Default::default)
            .abort = Some(false);
    }

    /// `kubectl argo rollouts restart`: sets `spec.restartAt` to now.
    pub fn restart(&mut self) {
        self.rollout.spec.restart_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            self.now,
        ));
        self.bump_generation();
    }

    /// `kubectl argo rollouts undo`: sets the template back to the one of ReplicaSet `revision`.
    pub fn undo_to_revision(&mut self, revision: i64) {
        let Some(rs) = self
            .replica_sets
            .iter()
            .find(|r| r.revision() == Some(revision))
        else {
            return;
        };
        let Some(mut template) = rs.template.clone() else {
            return;
        };
        if let Some(meta) = template.metadata.as_mut()
            && let Some(l) = meta.labels.as_mut()
        {
            l.remove(labels::POD_TEMPLATE_HASH);
        }
        let injected: Option<rollouts_api::PodTemplateMetadata> = rs
            .annotations
            .get(labels::EPHEMERAL_METADATA)
            .and_then(|v| serde_json::from_str(v).ok());
        if let (Some(meta), Some(md)) = (template.metadata.as_mut(), injected) {
            for k in md.labels.iter().flatten().map(|(k, _)| k) {
                meta.labels.as_mut().map(|l| l.remove(k));
            }
        }
        if let Some(spec) = template.spec.as_mut() {
            spec.affinity = self
                .rollout
                .spec
                .template
                .as_ref()
                .and_then(|t| t.spec.as_ref())
                .and_then(|s| s.affinity.clone());
        }
        self.rollout.spec.template = Some(template.into());
        self.bump_generation();
    }

    /// Plays the ReplicaSet controller and the kubelet, the AnalysisRun and Experiment
    /// controllers and the routers, then advances the clock by `dt`.
    pub fn tick(&mut self, dt: Duration) {
        self.settle();
        self.now = later(self.now, signed(dt));
    }

    /// What [`World::tick`] does before advancing the clock: pods created or deleted, pods
    /// made available, runs and experiments finished, router reports refreshed. Returns whether
    /// anything changed.
    pub fn settle(&mut self) -> bool {
        let before = (
            self.pods.len(),
            self.available(),
            self.analysis_runs.clone(),
            self.experiments.clone(),
        );
        self.sync_pods();
        let mut budget = self.knobs.ready_per_tick.unwrap_or(usize::MAX);
        let broken: Vec<String> = self
            .replica_sets
            .iter()
            .filter(|r| self.knobs.broken_hashes.contains(r.hash()))
            .map(|r| r.name.clone())
            .collect();
        let ready_after = signed(self.knobs.ready_after.unwrap_or(Duration::ZERO));
        let now = self.now;
        for pod in self.pods.iter_mut() {
            if budget == 0 {
                break;
            }
            if !pod.available
                && !broken.contains(&pod.replica_set)
                && later(pod.created, ready_after) <= now
            {
                pod.available = true;
                budget -= 1;
            }
        }
        self.refresh_status();
        let due = |name: &str| self.due.get(name).is_none_or(|t| *t <= now);
        if let Some(outcome) = self.knobs.analysis_outcome.clone() {
            let ready: Vec<bool> = self.analysis_runs.iter().map(|r| due(&r.name)).collect();
            for (r, ready) in self.analysis_runs.iter_mut().zip(ready) {
                if r.phase.is_empty() && !r.terminate && ready {
                    r.phase = outcome.clone();
                }
            }
        }
        if let Some(outcome) = self.knobs.experiment_outcome.clone() {
            let ready: Vec<bool> = self.experiments.iter().map(|e| due(&e.name)).collect();
            for (e, ready) in self.experiments.iter_mut().zip(ready) {
                if e.phase.is_empty() && !e.terminate && ready {
                    e.phase = outcome.clone();
                }
            }
        }
        for r in self
            .analysis_runs
            .iter_mut()
            .filter(|r| r.terminate && !is_done(&r.phase))
        {
            r.phase = "Successful".to_string();
        }
        for e in self
            .experiments
            .iter_mut()
            .filter(|e| e.terminate && !is_done(&e.phase))
        {
            e.phase = "Successful".to_string();
        }
        self.reports = self
            .router_weights
            .iter()
            .map(|(router, weight)| RouterReport {
                router: router.clone(),
                verifies_weight: self.knobs.routers_verify,
                last: Some(WeightVerification {
                    weight: *weight,
                    verified: true,
                }),
            })
            .collect();
        let after = (
            self.pods.len(),
            self.available(),
            self.analysis_runs.clone(),
            self.experiments.clone(),
        );
        before != after
    }

    /// The next moment something changes by itself: a pod becomes available, or a timed
    /// AnalysisRun or Experiment finishes (`None`: nothing is pending).
    pub fn next_change(&self) -> Option<Timestamp> {
        let ready_after = signed(self.knobs.ready_after.unwrap_or(Duration::ZERO));
        let broken: Vec<&str> = self
            .replica_sets
            .iter()
            .filter(|r| self.knobs.broken_hashes.contains(r.hash()))
            .map(|r| r.name.as_str())
            .collect();
        let pods = self
            .pods
            .iter()
            .filter(|p| !p.available && !broken.contains(&p.replica_set.as_str()))
            .map(|p| later(p.created, ready_after));
        let runs = self
            .analysis_runs
            .iter()
            .filter(|r| r.phase.is_empty() && !r.terminate && self.knobs.analysis_outcome.is_some())
            .filter_map(|r| self.due.get(&r.name).copied());
        let exps = self
            .experiments
            .iter()
            .filter(|e| {
                e.phase.is_empty() && !e.terminate && self.knobs.experiment_outcome.is_some()
            })
            .filter_map(|e| self.due.get(&e.name).copied());
        pods.chain(runs).chain(exps).filter(|t| *t > self.now).min()
    }

    /// Creates or deletes pods so that each ReplicaSet has `spec.replicas` pods.
    pub fn sync_pods(&mut self) {
        let targets: Vec<(String, i32)> = self
            .replica_sets
            .iter()
            .map(|r| (r.name.clone(), r.spec_replicas))
            .collect();
        for (rs, want) in targets {
            let have = self.pods.iter().filter(|p| p.replica_set == rs).count() as i32;
            for _ in have..want {
                let serial = self.next_serial();
                self.pods.push(SimPod {
                    name: format!("{rs}-{serial}"),
                    replica_set: rs.clone(),
                    created: self.now,
                    available: false,
                });
            }
            for _ in want..have {
                // Like the ReplicaSet controller: unavailable pods go first, then the newest.
                let victim = self
                    .pods
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.replica_set == rs)
                    .min_by_key(|(_, p)| (p.available, std::cmp::Reverse(p.created)))
                    .map(|(i, _)| i);
                if let Some(i) = victim {
                    self.pods.remove(i);
                }
            }
        }
        self.refresh_status();
    }

    fn refresh_status(&mut self) {
        for rs in self.replica_sets.iter_mut() {
            let pods: Vec<&SimPod> = self
                .pods
                .iter()
                .filter(|p| p.replica_set == rs.name)
                .collect();
            rs.replicas = pods.len() as i32;
            rs.available_replicas = pods.iter().filter(|p| p.available).count() as i32;
            rs.ready_replicas = rs.available_replicas;
        }
    }

    /// Runs `reconcile` then `tick(dt)` (at least once) until `done` holds after a pass, or
    /// `max` passes ran; returns whether `done` held.
    pub fn run_until(&mut self, max: usize, dt: Duration, done: impl Fn(&World) -> bool) -> bool {
        for _ in 0..max {
            self.reconcile();
            self.tick(dt);
            if done(self) {
                return true;
            }
        }
        false
    }

    /// The status as written by the engine.
    pub fn status(&self) -> rollouts_api::RolloutStatus {
        self.rollout.status.clone().unwrap_or_default()
    }

    /// `status.phase`.
    pub fn phase(&self) -> String {
        self.status().phase.unwrap_or_default()
    }

    /// The ReplicaSet with a given revision annotation.
    pub fn rs_by_revision(&self, revision: i64) -> Option<&ReplicaSetView> {
        self.replica_sets
            .iter()
            .find(|r| r.revision() == Some(revision))
    }

    /// `(spec, available)` of the ReplicaSet with revision `revision` (zeros when absent).
    pub fn counts(&self, revision: i64) -> (i32, i32) {
        self.rs_by_revision(revision)
            .map_or((0, 0), |r| (r.spec_replicas, r.available_replicas))
    }

    /// Event reasons recorded so far.
    pub fn event_reasons(&self) -> Vec<String> {
        self.events.iter().map(|e| e.reason.clone()).collect()
    }

    /// Sets the phase of an AnalysisRun.
    pub fn set_run_phase(&mut self, name: &str, phase: &str, message: &str) {
        if let Some(r) = self.analysis_runs.iter_mut().find(|r| r.name == name) {
            r.phase = phase.to_string();
            r.message = message.to_string();
        }
    }

    /// Total available pods.
    pub fn available(&self) -> i32 {
        self.pods.iter().filter(|p| p.available).count() as i32
    }

    /// Total pods.
    pub fn total_pods(&self) -> i32 {
        self.pods.len() as i32
    }
}

/// `t + d`, saturating at the end of time.
fn later(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// A std duration as a signed one (saturating at the largest span).
fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

fn is_done(phase: &str) -> bool {
    matches!(phase, "Successful" | "Failed" | "Error" | "Inconclusive")
}
