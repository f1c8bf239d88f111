//! The reconciliation context shared by the strategies (Argo's `rolloutContext`).
//!
//! [`Ctx`] holds the snapshot, working copies of the ReplicaSets and Services (updated as effects
//! are planned, as Go updates its in-memory objects after each write), the status being built,
//! the pause model, and the accumulated effects, events and requeue time. The strategy modules
//! (`canary`, and `bluegreen` next to it) drive it; everything that does not depend on the
//! strategy lives here: ReplicaSet classification, creation, revision bookkeeping, scaling with
//! the desired-replicas annotation, scale-down deadlines, revision history, Service selectors,
//! status conditions, phase and the progress deadline.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec as K8sPodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};
use rollouts_api::{PodTemplateMetadata, Rollout, RolloutStatus, labels};

use crate::conditions::{self, FALSE, TRUE, UNKNOWN, kind, message, reason};
use crate::pause::{self, PauseContext};
use crate::plan::{Effect, Event, Plan, ReplicaSetUpdate};
use crate::replicas::{ProgressThreshold, RsCounts};
use crate::snapshot::{ReplicaSetView, ServiceView, Snapshot};
use crate::steps;

/// Marker returned when a reconciliation ends early (Go's early `return`); the status to write
/// has been decided already.
#[derive(Debug)]
pub(crate) struct Halt;

/// Result of a reconciliation stage.
pub(crate) type Flow = Result<(), Halt>;

/// Working state of one reconciliation.
pub(crate) struct Ctx<'a> {
    pub snap: &'a Snapshot,
    pub ro: &'a Rollout,
    /// The Rollout's status as read (plus the writes Go makes to it mid-reconcile).
    pub old: RolloutStatus,
    pub now: Timestamp,
    /// Working copies of the owned ReplicaSets.
    pub rs: Vec<ReplicaSetView>,
    pub new_rs: Option<usize>,
    pub stable_rs: Option<usize>,
    pub others: Vec<usize>,
    /// Working copies of the Services.
    pub services: Vec<ServiceView>,
    /// The Rollout's annotations as updated during this reconciliation.
    pub annotations: BTreeMap<String, String>,
    /// The status being built (Go's `c.newStatus`).
    pub new_status: RolloutStatus,
    pub pause: PauseContext,
    pub effects: Vec<Effect>,
    pub events: Vec<Event>,
    pub requeue: Option<Duration>,
    /// The status to write, once decided.
    pub status_out: Option<RolloutStatus>,
    /// The pod-template hash of `spec.template` with the current collision count.
    pub desired_hash: String,
    /// Whether the new ReplicaSet had an unexpired scale-down deadline when read.
    pub new_rs_within_delay: bool,
    /// Pod templates changed during this reconciliation (the working copies in `rs` carry no
    /// template, to keep them cheap; see [`Ctx::template`]).
    pub template_overrides: BTreeMap<usize, K8sPodTemplateSpec>,
    /// The step hash of the current steps.
    pub step_hash: String,
    /// How the new revision became stable in this pass (`status.duration.completionStatus`).
    pub completion: Option<&'static str>,
}

impl<'a> Ctx<'a> {
    pub fn new(snap: &'a Snapshot) -> Self {
        let ro = &snap.rollout;
        let old = ro.status.clone().unwrap_or_default();
        let desired_hash =
            crate::hash::pod_template_hash(ro.spec.template.as_ref(), old.collision_count);
        let mut ctx = Ctx {
            snap,
            ro,
            now: snap.now,
            rs: snap.replica_sets.iter().map(light_copy).collect(),
            template_overrides: BTreeMap::new(),
            step_hash: crate::hash::step_hash(ro.spec.canary().and_then(|c| c.steps.as_ref())),
            completion: None,
            new_rs: None,
            stable_rs: None,
            others: Vec::new(),
            services: snap.services.clone(),
            annotations: ro.metadata.annotations.clone().unwrap_or_default(),
            new_status: RolloutStatus {
                restarted_at: old.restarted_at.clone(),
                alb: old.alb.clone(),
                albs: old.albs.clone(),
                ..Default::default()
            },
            pause: PauseContext::new(old.abort == Some(true)),
            effects: Vec::new(),
            events: Vec::new(),
            requeue: None,
            status_out: None,
            desired_hash,
            new_rs_within_delay: false,
            old,
        };
        ctx.classify();
        if let Some(i) = ctx.new_rs {
            ctx.new_rs_within_delay = ctx
                .time_until_deadline(i)
                .is_some_and(|d| d > Duration::ZERO);
        }
        ctx
    }

    /// Finds the new, stable and other ReplicaSets (Argo's `FindNewReplicaSet`, `GetStableRS`,
    /// `GetOtherRSs`).
    pub fn classify(&mut self) {
        let mut order: Vec<usize> = (0..self.rs.len()).collect();
        order.sort_by_key(|&i| (self.rs[i].created, self.rs[i].name.clone()));
        self.new_rs = order
            .iter()
            .copied()
            .find(|&i| self.rs[i].hash() == self.desired_hash)
            .or_else(|| order.iter().copied().find(|&i| self.template_equal(i)));
        let stable = self.old.stable_rs.clone().unwrap_or_default();
        self.stable_rs = if stable.is_empty() {
            None
        } else if let Some(n) = self.new_rs.filter(|&n| self.rs[n].hash() == stable) {
            Some(n)
        } else {
            (0..self.rs.len()).find(|&i| self.rs[i].hash() == stable)
        };
        self.others = (0..self.rs.len())
            .filter(|i| Some(*i) != self.new_rs && Some(*i) != self.stable_rs)
            .collect();
    }

    /// Argo's semantic-equality fallback: the live template, without the hash label, injected
    /// metadata and the injected anti-affinity term, equals the Rollout's template with the
    /// API server's defaults applied (`serviceAccount` ignored, unset equal to empty).
    fn template_equal(&self, i: usize) -> bool {
        let Some(live) = self.template(i).cloned() else {
            return false;
        };
        let Some(desired) = self.ro.spec.template.clone() else {
            return false;
        };
        let mut live = live;
        let injected = parse_ephemeral(&self.rs[i]);
        if let Some(meta) = live.metadata.as_mut() {
            if let Some(l) = meta.labels.as_mut() {
                l.remove(labels::POD_TEMPLATE_HASH);
                for k in injected
                    .iter()
                    .flat_map(|m| m.labels.iter().flatten())
                    .map(|(k, _)| k)
                {
                    l.remove(k);
                }
                if l.is_empty() {
                    meta.labels = None;
                }
            }
            if let Some(a) = meta.annotations.as_mut() {
                for k in injected
                    .iter()
                    .flat_map(|m| m.annotations.iter().flatten())
                    .map(|(k, _)| k)
                {
                    a.remove(k);
                }
                if a.is_empty() {
                    meta.annotations = None;
                }
            }
        }
        if let Some(spec) = live.spec.as_mut() {
            spec.affinity = crate::affinity::remove_injected(spec.affinity.take(), self.ro);
            spec.service_account = None;
        }
        let mut desired: K8sPodTemplateSpec = desired.into();
        if let Some(spec) = desired.spec.as_mut() {
            spec.service_account = None;
        }
        if let Some(meta) = desired.metadata.as_mut()
            && let Some(l) = meta.labels.as_mut()
        {
            l.remove(labels::POD_TEMPLATE_HASH);
            if l.is_empty() {
                meta.labels = None;
            }
        }
        let (Ok(mut live), Ok(mut desired)) =
            (serde_json::to_value(&live), serde_json::to_value(&desired))
        else {
            return false;
        };
        crate::k8s_defaults::apply_pod_template_defaults(&mut desired);
        // Idempotent on a template the API server stored; it also covers a live template
        // that was written without them.
        crate::k8s_defaults::apply_pod_template_defaults(&mut live);
        crate::k8s_defaults::normalize(&mut live);
        crate::k8s_defaults::normalize(&mut desired);
        live == desired
    }

    /// The pod template of ReplicaSet `i`, as updated during this reconciliation.
    pub fn template(&self, i: usize) -> Option<&K8sPodTemplateSpec> {
        self.template_overrides
            .get(&i)
            .or(self.snap.replica_sets[i].template.as_ref())
    }

    /// A mutable pod template of ReplicaSet `i` (copied on first write).
    pub fn template_mut(&mut self, i: usize) -> Option<&mut K8sPodTemplateSpec> {
        if !self.template_overrides.contains_key(&i) {
            let t = self.snap.replica_sets[i].template.clone()?;
            self.template_overrides.insert(i, t);
        }
        self.template_overrides.get_mut(&i)
    }

    pub fn name(&self) -> &str {
        self.ro.metadata.name.as_deref().unwrap_or("")
    }

    pub fn replicas(&self) -> i32 {
        self.ro.spec.replicas_or_default()
    }

    pub fn hash_of(&self, i: Option<usize>) -> String {
        i.map(|i| self.rs[i].hash().to_string()).unwrap_or_default()
    }

    pub fn new_hash(&self) -> String {
        match self.new_rs {
            Some(i) => self.rs[i].hash().to_string(),
            None => self.desired_hash.clone(),
        }
    }

    pub fn counts(&self, i: Option<usize>) -> Option<RsCounts> {
        i.map(|i| RsCounts::new(self.rs[i].spec_replicas, self.rs[i].available_replicas))
    }

    pub fn old_stable(&self) -> &str {
        self.old.stable_rs.as_deref().unwrap_or("")
    }

    pub fn old_current(&self) -> &str {
        self.old.current_pod_hash.as_deref().unwrap_or("")
    }

    /// Argo's `IsFullyPromoted` on the status as read.
    pub fn fully_promoted(&self) -> bool {
        self.old_stable() == self.old_current()
    }

    pub fn stable_distinct(&self) -> bool {
        match (self.stable_rs, self.new_rs) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(s), Some(n)) => s != n,
        }
    }

    pub fn threshold(&self) -> Option<ProgressThreshold> {
        let t = self.ro.spec.canary()?.replica_progress_threshold.as_ref()?;
        Some(if t.type_ == "Pods" {
            ProgressThreshold::Pods(t.value)
        } else {
            ProgressThreshold::Percent(t.value)
        })
    }

    pub fn revision(&self) -> i64 {
        self.annotations
            .get(labels::REVISION)
            .and_then(|v| crate::intstr::go_atoi(v))
            .unwrap_or(0)
    }

    pub fn rs_revision(&self, i: usize) -> i64 {
        self.rs[i].revision().unwrap_or(0)
    }

    pub fn emit(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    pub fn event(&mut self, event: Event) {
        self.events.push(event);
    }

    pub fn requeue_after(&mut self, after: Duration) {
        self.requeue = Some(match self.requeue {
            Some(r) => r.min(after),
            None => after,
        });
    }

    /// Requeue when a timed wait ends, if it ends within the resync period (Argo's
    /// `checkEnqueueRolloutDuringWait`).
    pub fn requeue_at(&mut self, at: Timestamp) {
        let remaining = at.duration_since(self.now);
        if remaining > SignedDuration::ZERO {
            let remaining = Duration::try_from(remaining).unwrap_or(Duration::ZERO);
            if remaining < self.snap.config.resync_period {
                self.requeue_after(remaining);
            }
        }
    }

    /// Time left before a ReplicaSet's `scale-down-deadline`, `Some(0)` when passed; `None`
    /// without a (parsable) deadline.
    pub fn time_until_deadline(&self, i: usize) -> Option<Duration> {
        let value = self.rs[i].annotations.get(labels::SCALE_DOWN_DEADLINE)?;
        if value.is_empty() {
            return None;
        }
        let at: Timestamp = value.parse().ok()?;
        let left = at.duration_since(self.now);
        Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
    }

    pub fn has_deadline(&self, i: usize) -> bool {
        self.rs[i]
            .annotations
            .get(labels::SCALE_DOWN_DEADLINE)
            .is_some_and(|v| !v.is_empty())
    }

    /// The pass ends with this status.
    pub fn halt_with(&mut self, status: RolloutStatus) -> Flow {
        self.status_out = Some(status);
        Err(Halt)
    }

    pub fn into_plan(self) -> Plan {
        let status = self.status_out.unwrap_or_else(|| self.old.clone());
        Plan {
            effects: self.effects,
            status,
            events: self.events,
            requeue_after: self.requeue,
        }
    }

    // ---------------------------------------------------------------------------------------
    // Validation and the InvalidSpec condition.

    /// Records an InvalidSpec condition (Argo's `createInvalidRolloutCondition`) and ends the
    /// pass.
    pub fn invalid_spec(&mut self, error: &str, requeue: Duration) -> Flow {
        let msg = conditions::invalid_spec_message(self.name(), error);
        let prev = conditions::get(&self.old, kind::INVALID_SPEC).cloned();
        let generation = self.generation();
        self.requeue_after(requeue);
        let changed = prev.as_ref().is_none_or(|p| p.message != msg);
        if self.old.observed_generation.as_deref() != Some(generation.as_str()) || changed {
            let mut status = self.old.clone();
            if changed {
                conditions::remove(&mut status, kind::INVALID_SPEC);
                conditions::set(
                    &mut status,
                    conditions::new_condition(
                        kind::INVALID_SPEC,
                        TRUE,
                        reason::INVALID_SPEC,
                        msg,
                        self.now,
                    ),
                );
            }
            self.patch_condition_status(&mut status);
            return self.halt_with(status);
        }
        self.halt_with(self.old.clone())
    }

    pub fn generation(&self) -> String {
        self.ro.metadata.generation.unwrap_or(0).to_string()
    }

    /// What Argo's `patchCondition` writes besides the conditions.
    fn patch_condition_status(&self, status: &mut RolloutStatus) {
        status.observed_generation = Some(self.generation());
        let (p, m) = crate::phase::calculate(&self.ro.spec, status);
        status.phase = Some(p.to_string());
        status.message = Some(m);
    }

    // ---------------------------------------------------------------------------------------
    // Pause conditions (Argo's `checkPausedConditions`).

    pub fn check_paused_conditions(&mut self) -> Flow {
        if self.old.observed_generation.as_deref() != Some(self.generation().as_str()) {
            return Ok(());
        }
        let prog = conditions::get(&self.old, kind::PROGRESSING);
        let prog_paused = prog.is_some_and(|c| c.reason == reason::ROLLOUT_PAUSED);
        let abort_cond = prog.is_some_and(|c| c.reason == reason::ROLLOUT_ABORTED);
        let is_paused = self
            .old
            .pause_conditions
            .as_ref()
            .is_some_and(|p| !p.is_empty())
            || self.ro.spec.paused == Some(true);
        let completed = completed(&self.old);
        let mut updates = Vec::new();
        if is_paused != prog_paused && !abort_cond && !completed {
            updates.push(if is_paused {
                conditions::new_condition(
                    kind::PROGRESSING,
                    UNKNOWN,
                    reason::ROLLOUT_PAUSED,
                    message::PAUSED,
                    self.now,
                )
            } else {
                conditions::new_condition(
                    kind::PROGRESSING,
                    UNKNOWN,
                    reason::ROLLOUT_RESUMED,
                    message::RESUMED,
                    self.now,
                )
            });
        }
        if self.old.abort != Some(true) && abort_cond {
            updates.push(conditions::new_condition(
                kind::PROGRESSING,
                UNKNOWN,
                reason::ROLLOUT_RETRY,
                message::RETRY,
                self.now,
            ));
        }
        let paused_true =
            conditions::get(&self.old, kind::PAUSED).is_some_and(|c| c.status == TRUE);
        if is_paused != paused_true && !abort_cond {
            updates.push(conditions::new_condition(
                kind::PAUSED,
                if is_paused { TRUE } else { FALSE },
                reason::ROLLOUT_PAUSED,
                message::PAUSED,
                self.now,
            ));
        }
        if updates.is_empty() {
            return Ok(());
        }
        let mut status = self.old.clone();
        for c in updates {
            conditions::set(&mut status, c);
        }
        self.patch_condition_status(&mut status);
        if status == self.old {
            return Ok(());
        }
        self.halt_with(status)
    }

    // ---------------------------------------------------------------------------------------
    // ReplicaSet creation and revisions.

    fn max_old_revision(&self) -> i64 {
        (0..self.rs.len())
            .filter(|i| Some(*i) != self.new_rs)
            .filter_map(|i| self.rs[i].revision())
            .max()
            .unwrap_or(0)
            .max(0)
    }

    /// Annotations copied from the Rollout to its new ReplicaSet.
    fn copied_annotations(&self) -> impl Iterator<Item = (&String, &String)> {
        const SKIP: &[&str] = &[
            labels::LAST_APPLIED_CONFIGURATION,
            labels::REVISION,
            labels::REVISION_HISTORY,
            labels::DESIRED_REPLICAS,
            labels::NOTIFIED,
        ];
        self.ro
            .metadata
            .annotations
            .iter()
            .flatten()
            .filter(|(k, _)| !SKIP.contains(&k.as_str()))
    }

    pub fn owner_reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: rollouts_api::API_VERSION.to_string(),
            kind: "Rollout".to_string(),
            name: self.name().to_string(),
            uid: self.ro.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    /// Creates the ReplicaSet for the current template (Argo's `createDesiredReplicaSet`); the
    /// create path ends the pass.
    pub fn create_replica_set(&mut self) -> Flow {
        let revision = self.max_old_revision() + 1;
        let hash = self.desired_hash.clone();
        let name = format!("{}-{}", self.name(), hash);
        let mut template: K8sPodTemplateSpec =
            self.ro.spec.template.clone().unwrap_or_default().into();
        let affinity = crate::affinity::generate(self.ro, &self.desired_hash);
        template.spec.get_or_insert_with(Default::default).affinity = affinity;
        let meta = template.metadata.get_or_insert_with(Default::default);
        meta.labels
            .get_or_insert_with(BTreeMap::new)
            .insert(labels::POD_TEMPLATE_HASH.to_string(), hash.clone());
        let mut selector: LabelSelector = self.ro.spec.selector.clone().unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(labels::POD_TEMPLATE_HASH.to_string(), hash.clone());
        let mut annotations: BTreeMap<String, String> = self
            .copied_annotations()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        annotations.insert(labels::REVISION.to_string(), revision.to_string());
        annotations.insert(
            labels::DESIRED_REPLICAS.to_string(),
            self.replicas().to_string(),
        );
        let ephemeral = self.ephemeral_for_new(self.stable_rs.is_some());
        if let Some(md) = ephemeral.as_ref() {
            let meta = template.metadata.get_or_insert_with(Default::default);
            let (new_meta, modified) = crate::ephemeral::sync_metadata(meta, None, Some(md));
            if modified {
                *meta = new_meta;
                annotations.insert(
                    labels::EPHEMERAL_METADATA.to_string(),
                    serde_json::to_string(md).unwrap_or_default(),
                );
            }
        }
        let labels_ = template.metadata.as_ref().and_then(|m| m.labels.clone());
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: self.ro.metadata.namespace.clone(),
                owner_references: Some(vec![self.owner_reference()]),
                labels: labels_,
                annotations: Some(annotations),
                ..Default::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: self.ro.spec.min_ready_seconds,
                selector,
                template: Some(template),
            },
            status: None,
        };
        self.emit(Effect::CreateReplicaSet {
            replica_set: Box::new(rs),
            collision_count_on_conflict: self.old.collision_count.unwrap_or(0) + 1,
        });
        self.set_rollout_revision(&revision.to_string());
        self.event(Event::normal(
            reason::NEW_REPLICA_SET_CREATED,
            format!("Created ReplicaSet {name} (revision {revision})"),
        ));
        let mut status = self.old.clone();
        conditions::set(
            &mut status,
            conditions::new_condition(
                kind::PROGRESSING,
                TRUE,
                reason::NEW_REPLICA_SET_CREATED,
                format!("Created new replica set {}", conditions::quote(&name)),
                self.now,
            ),
        );
        self.halt_with(status)
    }

    /// Argo's create-error path: event and Progressing=False `ReplicaSetCreateError`.
    pub fn replica_set_create_failed(&mut self, name: &str, error: &str) -> Flow {
        let msg = format!(
            "Failed to create new replica set {}: {error}",
            conditions::quote(name)
        );
        self.event(Event::warning(
            reason::REPLICA_SET_CREATE_ERROR,
            msg.clone(),
        ));
        let mut status = self.old.clone();
        conditions::set(
            &mut status,
            conditions::new_condition(
                kind::PROGRESSING,
                FALSE,
                reason::REPLICA_SET_CREATE_ERROR,
                msg,
                self.now,
            ),
        );
        self.patch_condition_status(&mut status);
        self.halt_with(status)
    }

    /// The ephemeral metadata a new ReplicaSet gets.
    fn ephemeral_for_new(&self, stable_exists: bool) -> Option<PodTemplateMetadata> {
        if let Some(c) = self.ro.spec.canary() {
            if stable_exists {
                c.canary_metadata.clone()
            } else {
                c.stable_metadata.clone()
            }
        } else if let Some(bg) = self.ro.spec.blue_green() {
            if stable_exists {
                bg.preview_metadata.clone()
            } else {
                bg.active_metadata.clone()
            }
        } else {
            None
        }
    }

    /// Sets the Rollout's revision annotation (Argo's `setRolloutRevision`).
    pub fn set_rollout_revision(&mut self, revision: &str) {
        if self.annotations.get(labels::REVISION).map(String::as_str) == Some(revision) {
            return;
        }
        self.annotations
            .insert(labels::REVISION.to_string(), revision.to_string());
        self.emit(Effect::UpdateRollout {
            replicas: None,
            annotations: BTreeMap::from([(labels::REVISION.to_string(), revision.to_string())]),
        });
        self.event(Event::normal(
            reason::ROLLOUT_UPDATED,
            format!("Rollout updated to revision {revision}"),
        ));
    }

    /// Argo's `syncReplicaSetRevision`: copies the Rollout's annotations to the new ReplicaSet,
    /// raises its revision above the older ones (recording the previous one in
    /// `revision-history`), refreshes `minReadySeconds` and the injected anti-affinity, or else
    /// syncs the Rollout's revision annotation from the ReplicaSet.
    pub fn sync_revision(&mut self) {
        let Some(n) = self.new_rs else { return };
        let new_revision = self.max_old_revision() + 1;
        let mut set = BTreeMap::new();
        let copied: Vec<(String, String)> = self
            .copied_annotations()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in copied {
            if self.rs[n].annotations.get(&k) != Some(&v) {
                set.insert(k, v);
            }
        }
        let old_revision = self.rs[n].annotations.get(labels::REVISION).cloned();
        let old_int = match old_revision.as_deref() {
            None | Some("") => Some(0),
            Some(v) => crate::intstr::go_atoi(v),
        };
        let mut changed = !set.is_empty();
        if let Some(old_int) = old_int {
            if old_int < new_revision {
                set.insert(labels::REVISION.to_string(), new_revision.to_string());
                changed = true;
            }
            if let Some(prev) = old_revision.as_ref()
                && changed
            {
                let history = self.rs[n]
                    .annotations
                    .get(labels::REVISION_HISTORY)
                    .cloned()
                    .unwrap_or_default();
                let value = if history.is_empty() {
                    prev.clone()
                } else {
                    format!("{history},{prev}")
                };
                set.insert(labels::REVISION_HISTORY.to_string(), value);
            }
        }
        let min_ready = self.ro.spec.min_ready_seconds_or_default();
        let min_ready_changed = self.rs[n].min_ready_seconds != min_ready;
        let affinity_changed =
            crate::affinity::needs_update(self.template(n), self.ro, &self.desired_hash);
        if changed || min_ready_changed || affinity_changed {
            for (k, v) in &set {
                self.rs[n].annotations.insert(k.clone(), v.clone());
            }
            self.rs[n].min_ready_seconds = min_ready;
            let affinity = crate::affinity::generate(self.ro, &self.desired_hash);
            if let Some(t) = self.template_mut(n) {
                t.spec.get_or_insert_with(Default::default).affinity = affinity.clone();
            }
            self.emit(Effect::UpdateReplicaSet {
                name: self.rs[n].name.clone(),
                update: ReplicaSetUpdate {
                    set_annotations: set,
                    min_ready_seconds: Some(min_ready),
                    affinity: Some(affinity),
                    ..Default::default()
                },
            });
            return;
        }
        if let Some(rev) = self.rs[n].annotations.get(labels::REVISION).cloned() {
            self.set_rollout_revision(&rev);
        }
        if conditions::get(&self.old, kind::PROGRESSING).is_none() {
            let msg = format!(
                "Found new replica set {}",
                conditions::quote(&self.rs[n].name)
            );
            let cond = conditions::new_condition(
                kind::PROGRESSING,
                TRUE,
                reason::FOUND_NEW_REPLICA_SET,
                msg,
                self.now,
            );
            conditions::set(&mut self.old, cond);
        }
    }

    /// Argo's `isScalingEvent`: the `desired-replicas` annotation of the (scaled-up) new or
    /// stable ReplicaSet differs from `spec.replicas`.
    pub fn is_scaling_event(&self) -> bool {
        let replicas = self.replicas();
        [self.new_rs, self.stable_rs]
            .into_iter()
            .flatten()
            .filter(|&i| self.rs[i].spec_replicas > 0)
            .any(|i| {
                self.rs[i]
                    .annotations
                    .get(labels::DESIRED_REPLICAS)
                    .and_then(|v| crate::intstr::go_atoi(v))
                    .is_some_and(|d| d as i32 != replicas)
            })
    }

    // ---------------------------------------------------------------------------------------
    // Scaling.

    /// Argo's `scaleReplicaSetAndRecordEvent`; returns whether the size changed.
    pub fn scale(&mut self, i: usize, replicas: i32) -> bool {
        let rollout_replicas = self.replicas();
        let rs = &self.rs[i];
        let desired_str = rollout_replicas.to_string();
        let annotation_stale = rs.annotations.get(labels::DESIRED_REPLICAS) != Some(&desired_str)
            || (rollout_replicas == 0 && self.has_deadline(i));
        if rs.spec_replicas == replicas && !annotation_stale {
            return false;
        }
        let old_scale = rs.spec_replicas;
        let remove_deadline =
            replicas == 0 && !self.should_delay_scale_down_on_abort() && self.has_deadline(i);
        let name = rs.name.clone();
        let revision = self.rs_revision(i);
        self.emit(Effect::ScaleReplicaSet {
            name: name.clone(),
            replicas,
            desired_replicas: rollout_replicas,
            remove_scale_down_deadline: remove_deadline,
        });
        let rs = &mut self.rs[i];
        rs.spec_replicas = replicas;
        rs.annotations
            .insert(labels::DESIRED_REPLICAS.to_string(), desired_str);
        if remove_deadline {
            rs.annotations.remove(labels::SCALE_DOWN_DEADLINE);
        }
        if old_scale != replicas {
            let op = if old_scale < replicas { "up" } else { "down" };
            self.event(Event::normal(
                reason::SCALING_REPLICA_SET,
                format!("Scaled {op} ReplicaSet {name} (revision {revision}) from {old_scale} to {replicas}"),
            ));
            return true;
        }
        false
    }

    /// Argo's `shouldDelayScaleDownOnAbort`.
    pub fn should_delay_scale_down_on_abort(&self) -> bool {
        if !self.pause.is_aborted() || self.stable_rs.is_none() {
            return false;
        }
        let (delay, was_set) = self.abort_scale_down_delay();
        if let Some(c) = self.ro.spec.canary() {
            if c.traffic_routing.is_none() {
                return false;
            }
            if delay.is_none() {
                return false;
            }
            if c.dynamic_stable_scale == Some(true) && !was_set {
                return false;
            }
            return true;
        }
        delay.is_some()
    }

    /// Argo's `GetAbortScaleDownDelaySecondsOrDefault`: `None` when explicitly 0 (never scale
    /// down), and whether the value was set.
    pub fn abort_scale_down_delay(&self) -> (Option<i64>, bool) {
        let explicit = if let Some(bg) = self.ro.spec.blue_green() {
            bg.abort_scale_down_delay_seconds
        } else if let Some(c) = self.ro.spec.canary() {
            if c.traffic_routing.is_none() {
                return (Some(0), false);
            }
            c.abort_scale_down_delay_seconds
        } else {
            None
        };
        match explicit {
            Some(0) => (None, true),
            Some(v) => (Some(i64::from(v)), true),
            None => (
                Some(i64::from(
                    rollouts_api::defaults::ABORT_SCALE_DOWN_DELAY_SECONDS,
                )),
                false,
            ),
        }
    }

    /// Sets (or, for a zero delay, removes) the `scale-down-deadline` annotation.
    pub fn add_scale_down_delay(&mut self, i: usize, seconds: i64) {
        if seconds == 0 {
            self.remove_scale_down_delay(i);
            return;
        }
        let deadline = self.now + SignedDuration::from_secs(seconds);
        let value = format_rfc3339(deadline);
        self.rs[i]
            .annotations
            .insert(labels::SCALE_DOWN_DEADLINE.to_string(), value.clone());
        self.emit(Effect::UpdateReplicaSet {
            name: self.rs[i].name.clone(),
            update: ReplicaSetUpdate {
                set_annotations: BTreeMap::from([(labels::SCALE_DOWN_DEADLINE.to_string(), value)]),
                ..Default::default()
            },
        });
    }

    pub fn remove_scale_down_delay(&mut self, i: usize) {
        if !self.has_deadline(i) {
            return;
        }
        self.rs[i].annotations.remove(labels::SCALE_DOWN_DEADLINE);
        self.emit(Effect::UpdateReplicaSet {
            name: self.rs[i].name.clone(),
            update: ReplicaSetUpdate {
                remove_annotations: vec![labels::SCALE_DOWN_DEADLINE.to_string()],
                ..Default::default()
            },
        });
    }

    /// Argo's `removeScaleDownDeadlines` on the new and stable ReplicaSets.
    pub fn remove_scale_down_deadlines(&mut self) {
        let mut targets = Vec::new();
        if let Some(n) = self.new_rs
            && !self.should_delay_scale_down_on_abort()
        {
            targets.push(n);
        }
        if let Some(s) = self.stable_rs
            && !targets.contains(&s)
        {
            targets.push(s);
        }
        for i in targets {
            self.remove_scale_down_delay(i);
        }
    }

    /// The revision limit for ReplicaSets kept up during a scale-down delay.
    pub fn scale_down_revision_limit(&self) -> i32 {
        if let Some(bg) = self.ro.spec.blue_green() {
            return bg.scale_down_delay_revision_limit.unwrap_or(i32::MAX);
        }
        self.ro
            .spec
            .canary()
            .and_then(|c| c.scale_down_delay_revision_limit)
            .unwrap_or(i32::MAX)
    }

    /// `scaleDownDelaySeconds` in effect (0 for a basic canary).
    pub fn scale_down_delay_seconds(&self) -> i64 {
        if let Some(bg) = self.ro.spec.blue_green() {
            return i64::from(bg.scale_down_delay_seconds_or_default());
        }
        match self.ro.spec.canary() {
            Some(c) if c.traffic_routing.is_some() => {
                i64::from(c.scale_down_delay_seconds_or_default())
            }
            _ => 0,
        }
    }

    /// Argo's `scaleDownDelayHelper`: returns the updated count of ReplicaSets kept up and the
    /// replica count for `i`.
    ///
    /// Unlike Argo, a delay of 0 scales the ReplicaSet down now (upstream issue #1992: Argo
    /// keeps it up forever).
    pub fn scale_down_delay_helper(
        &mut self,
        i: usize,
        mut annotated: i32,
        keep_replicas: i32,
    ) -> (i32, i32) {
        let limit = self.scale_down_revision_limit();
        let mut desired = 0;
        if !self.has_deadline(i) && self.rs[i].spec_replicas > 0 {
            if annotated < limit {
                annotated += 1;
                let delay = self.scale_down_delay_seconds();
                if delay > 0 {
                    desired = self.rs[i].spec_replicas;
                    self.add_scale_down_delay(i, delay);
                    self.requeue_after(Duration::from_secs(delay as u64));
                }
            }
        } else if self.has_deadline(i) {
            annotated += 1;
            if annotated <= limit
                && let Some(left) = self.time_until_deadline(i)
                && left > Duration::ZERO
            {
                if left < self.snap.config.resync_period {
                    self.requeue_after(left);
                }
                desired = keep_replicas;
            }
        }
        (annotated, desired)
    }

    /// Argo's `isReplicaSetReferenced`: a ReplicaSet still selected by the status, a Service
    /// or a router object must not be scaled down.
    pub fn is_referenced(&self, i: usize) -> bool {
        let hash = self.rs[i].hash();
        if hash.is_empty() {
            return false;
        }
        let bg = self.old.blue_green.as_ref();
        let mut refs = vec![
            self.old_stable(),
            self.old_current(),
            bg.and_then(|b| b.active_selector.as_deref()).unwrap_or(""),
            bg.and_then(|b| b.preview_selector.as_deref()).unwrap_or(""),
        ];
        if let Some(w) = self.old.canary.as_ref().and_then(|c| c.weights.as_ref()) {
            refs.push(w.canary.pod_template_hash.as_deref().unwrap_or(""));
            refs.push(w.stable.pod_template_hash.as_deref().unwrap_or(""));
        }
        if refs.contains(&hash) {
            return true;
        }
        let names: Vec<Option<&str>> = if let Some(c) = self.ro.spec.canary() {
            vec![c.canary_service.as_deref(), c.stable_service.as_deref()]
        } else if let Some(b) = self.ro.spec.blue_green() {
            vec![
                Some(b.active_service.as_str()),
                b.preview_service.as_deref(),
            ]
        } else {
            vec![]
        };
        for name in names.into_iter().flatten().filter(|n| !n.is_empty()) {
            if self
                .services
                .iter()
                .any(|s| s.name == name && s.selected_hash() == hash)
            {
                return true;
            }
        }
        self.snap.router_referenced_hashes.contains(hash)
    }

    /// Argo's `cleanupUnhealthyReplicas`: scales each old ReplicaSet down to its available pods.
    pub fn cleanup_unhealthy(&mut self, old: &[usize]) -> i32 {
        let mut order = old.to_vec();
        order.sort_by_key(|&i| (self.rs[i].created, self.rs[i].name.clone()));
        let mut total = 0;
        for i in order {
            let spec = self.rs[i].spec_replicas;
            let available = self.rs[i].available_replicas;
            if spec == 0 || spec == available || available > spec {
                continue;
            }
            self.scale(i, available);
            total += spec - available;
        }
        total
    }

    /// Argo's `reconcileRevisionHistoryLimit` over the other ReplicaSets.
    pub fn reconcile_revision_history(&mut self, other_runs: &[usize], other_exps: &[usize]) {
        let limit = self.ro.spec.revision_history_limit_or_default();
        let mut cleanable: Vec<usize> = self
            .others
            .iter()
            .copied()
            .filter(|&i| !self.rs[i].deleting)
            .collect();
        let diff = cleanable.len() as i64 - i64::from(limit);
        if diff <= 0 {
            return;
        }
        cleanable.sort_by_key(|&i| (self.rs[i].created, self.rs[i].name.clone()));
        for &i in cleanable.iter().take(diff as usize) {
            let rs = &self.rs[i];
            if rs.replicas != 0
                || rs.spec_replicas != 0
                || rs.generation > rs.observed_generation
                || rs.deleting
            {
                continue;
            }
            let hash = rs.hash().to_string();
            self.emit(Effect::DeleteReplicaSet {
                name: rs.name.clone(),
            });
            self.rs[i].deleting = true;
            if hash.is_empty() {
                continue;
            }
            for &r in other_runs {
                let run = &self.snap.analysis_runs[r];
                if run.labels.get(labels::POD_TEMPLATE_HASH) == Some(&hash) && !run.deleting {
                    self.emit(Effect::DeleteAnalysisRun {
                        name: run.name.clone(),
                    });
                }
            }
            for &e in other_exps {
                let ex = &self.snap.experiments[e];
                if ex.labels.get(labels::POD_TEMPLATE_HASH) == Some(&hash) && !ex.deleting {
                    self.emit(Effect::DeleteExperiment {
                        name: ex.name.clone(),
                    });
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Services.

    /// Argo's `ensureSVCTargets`: point `service` at ReplicaSet `i` unless that would send
    /// traffic to pods that are not available.
    pub fn ensure_service_targets(
        &mut self,
        service: &str,
        i: Option<usize>,
        check_availability: bool,
    ) {
        let Some(i) = i else { return };
        if service.is_empty() {
            return;
        }
        let Some(s) = self.services.iter().position(|s| s.name == service) else {
            return;
        };
        let current = self.services[s].selected_hash().to_string();
        let desired = self.rs[i].hash().to_string();
        if current == desired {
            return;
        }
        let managed = self.services[s].managed_by().is_some();
        let rs = &self.rs[i];
        if !managed && check_availability {
            let fully = rs.spec_replicas != 0
                && rs.available_replicas != 0
                && rs.spec_replicas <= rs.available_replicas;
            if !fully {
                return;
            }
        }
        if check_availability && rs.available_replicas == 0 {
            return;
        }
        self.switch_service_selector(s, &desired);
    }

    /// Argo's `switchServiceSelector`.
    pub fn switch_service_selector(&mut self, s: usize, hash: &str) {
        let svc = &self.services[s];
        let managed = svc.managed_by().is_some();
        let current = svc.selected_hash().to_string();
        if current == hash && managed {
            return;
        }
        let name = svc.name.clone();
        self.emit(Effect::SwitchServiceSelector {
            service: name.clone(),
            hash: hash.to_string(),
            managed_by: (!managed).then(|| self.name().to_string()),
        });
        self.event(Event::normal(
            "SwitchService",
            format!("Switched selector for service '{name}' from '{current}' to '{hash}'"),
        ));
        let rollout_name = self.name().to_string();
        let svc = &mut self.services[s];
        svc.selector
            .insert(labels::POD_TEMPLATE_HASH.to_string(), hash.to_string());
        if !managed {
            svc.annotations
                .insert(labels::MANAGED_BY_ROLLOUTS.to_string(), rollout_name);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Status.

    /// Sums over all ReplicaSets.
    pub fn sum(&self, f: impl Fn(&ReplicaSetView) -> i32) -> i32 {
        self.rs.iter().filter(|r| !r.deleting).map(f).sum()
    }

    /// Argo's `calculateBaseStatus`.
    pub fn base_status(&self) -> RolloutStatus {
        let mut conds_status = RolloutStatus {
            conditions: self.old.conditions.clone(),
            ..Default::default()
        };
        conditions::remove(&mut conds_status, kind::INVALID_SPEC);
        let mut ns = self.new_status.clone();
        ns.current_pod_hash = Some(self.new_hash());
        ns.replicas = Some(self.sum(|r| r.replicas));
        ns.updated_replicas = Some(self.new_rs.map_or(0, |i| self.rs[i].replicas));
        ns.ready_replicas = Some(self.sum(|r| r.ready_replicas));
        ns.collision_count = self.old.collision_count;
        ns.conditions = conds_status.conditions;
        let promote_full = ns.current_pod_hash.as_deref() != ns.stable_rs.as_deref().or(Some(""))
            && self.old.promote_full == Some(true);
        ns.promote_full = promote_full.then_some(true);
        ns.duration = self.old.duration.clone();
        ns
    }

    /// Argo's `persistRolloutStatus` minus the write: observed generation, progress-deadline
    /// abort, pause fields, conditions, phase, state-change events and the progress-deadline
    /// requeue.
    pub fn persist(&mut self, mut ns: RolloutStatus) -> Flow {
        ns.observed_generation = Some(self.generation());
        ns.workload_observed_generation = match &self.snap.workload {
            Some(crate::snapshot::WorkloadView::Resolved { .. }) => self
                .annotations
                .get(labels::WORKLOAD_GENERATION)
                .cloned()
                .or(self.old.workload_observed_generation.clone()),
            _ => None,
        };
        self.evaluate_progress_deadline_abort(&ns);
        self.pause.apply(&self.old, &mut ns, self.now);
        self.calculate_duration(&mut ns);
        self.calculate_conditions(&mut ns);
        let (p, m) = crate::phase::calculate(&self.ro.spec, &ns);
        ns.phase = Some(p.to_string());
        ns.message = Some(m);
        self.state_change_events(&ns);
        self.requeue_stuck(&ns);
        self.halt_with(ns)
    }

    fn state_change_events(&mut self, ns: &RolloutStatus) {
        let prev = self
            .old
            .pause_conditions
            .as_ref()
            .is_some_and(|p| !p.is_empty());
        let curr = ns.pause_conditions.as_ref().is_some_and(|p| !p.is_empty());
        if prev != curr {
            if curr {
                let first = &ns.pause_conditions.as_ref().expect("non-empty")[0].reason;
                self.event(Event::normal(
                    reason::ROLLOUT_PAUSED,
                    format!("{} ({first})", message::PAUSED),
                ));
            } else if ns.aborted_at.is_none() {
                self.event(Event::normal(reason::ROLLOUT_RESUMED, message::RESUMED));
            }
        }
    }

    /// Whether the current step does not count against the progress deadline.
    pub fn is_indefinite_step(&self) -> bool {
        let (step, _) = steps::current_step(self.ro);
        if let Some(s) = step
            && (s.experiment.is_some() || s.analysis.is_some() || s.pause.is_some())
        {
            return true;
        }
        conditions::get(&self.old, kind::PAUSED).is_some_and(|c| c.status == TRUE)
    }

    pub fn waiting_for_scale_down(&self) -> bool {
        self.others.iter().any(|&i| self.has_deadline(i))
    }

    fn progress_deadline(&self) -> SignedDuration {
        SignedDuration::from_secs(i64::from(
            self.ro.spec.progress_deadline_seconds_or_default(),
        ))
    }

    /// Argo's `RolloutTimedOut` against `status`.
    pub fn timed_out(&self, status: &RolloutStatus) -> bool {
        let Some(c) = conditions::get(status, kind::PROGRESSING) else {
            return false;
        };
        if c.reason == reason::ROLLOUT_ABORTED || c.reason == reason::ROLLOUT_PAUSED {
            return false;
        }
        if c.reason == reason::PROGRESS_DEADLINE_EXCEEDED {
            return true;
        }
        c.last_update_time.0 + self.progress_deadline() < self.now
    }

    /// Argo's `RolloutProgressing`: the new status shows progress over the status as read.
    pub fn progressing(&self, ns: &RolloutStatus) -> bool {
        let old = &self.old;
        let mut strategy = false;
        if self.ro.spec.blue_green().is_some() {
            let ob = old.blue_green.clone().unwrap_or_default();
            let nb = ns.blue_green.clone().unwrap_or_default();
            strategy = ob.active_selector != nb.active_selector
                || ob.preview_selector != nb.preview_selector;
        }
        if self.ro.spec.canary().is_some() {
            let stable_change = ns.stable_rs != old.stable_rs;
            let index_change = match (ns.current_step_index, old.current_step_index) {
                (Some(a), Some(b)) => a != b,
                _ => false,
            };
            let hash_change = ns.current_step_hash != old.current_step_hash;
            strategy = stable_change || index_change || hash_change;
        }
        let z = |v: Option<i32>| v.unwrap_or(0);
        let old_old = z(old.replicas) - z(old.updated_replicas);
        let new_old = z(ns.replicas) - z(ns.updated_replicas);
        z(ns.updated_replicas) != z(old.updated_replicas)
            || new_old < old_old
            || z(ns.ready_replicas) > z(old.ready_replicas)
            || z(ns.available_replicas) > z(old.available_replicas)
            || strategy
    }

    /// Argo's `RolloutHealthy`.
    pub fn healthy(&self, ns: &RolloutStatus) -> bool {
        let replicas = self.replicas();
        let z = |v: Option<i32>| v.unwrap_or(0);
        let mut completed_strategy = true;
        let current = ns.current_pod_hash.as_deref().unwrap_or("");
        if let Some(bg) = self.ro.spec.blue_green() {
            let b = ns.blue_green.clone().unwrap_or_default();
            let active = b.active_selector.as_deref().unwrap_or("") == current;
            let preview = bg.preview_service.as_deref().unwrap_or("").is_empty()
                || b.preview_selector.as_deref().unwrap_or("") == current;
            completed_strategy = active && preview;
        }
        if let Some(c) = self.ro.spec.canary() {
            let count = c.steps().len() as i32;
            let executed = count == 0 || ns.current_step_index.is_none_or(|i| i == count);
            let stable = ns.stable_rs.as_deref().unwrap_or("");
            let current_is_stable = !stable.is_empty() && stable == current;
            completed_strategy = executed && current_is_stable && z(ns.replicas) == replicas;
        }
        z(ns.updated_replicas) == replicas
            && z(ns.available_replicas) == replicas
            && self.old.observed_generation.as_deref() == Some(self.generation().as_str())
            && completed_strategy
    }

    fn new_rs_name(&self) -> Option<String> {
        self.new_rs.map(|i| self.rs[i].name.clone())
    }

    fn timeout_message(&self) -> String {
        match self.new_rs_name() {
            Some(n) => format!(
                "ReplicaSet {} has timed out progressing.",
                conditions::quote(&n)
            ),
            None => format!(
                "Rollout {} has timed out progressing.",
                conditions::quote(self.name())
            ),
        }
    }

    /// Argo's `evaluateProgressDeadlineAbort`.
    fn evaluate_progress_deadline_abort(&mut self, ns: &RolloutStatus) {
        if self.ro.spec.progress_deadline_abort != Some(true) || self.pause.is_aborted() {
            return;
        }
        if completed(ns) || self.progressing(ns) {
            return;
        }
        if self.is_indefinite_step() || self.waiting_for_scale_down() {
            return;
        }
        if !self.timed_out(&self.old) {
            return;
        }
        let msg = self.timeout_message();
        self.pause.add_abort(msg.clone());
        self.event(Event::warning(reason::ROLLOUT_ABORTED, msg));
    }

    /// Argo's `calculateRolloutConditions`.
    fn calculate_conditions(&mut self, ns: &mut RolloutStatus) {
        let now = self.now;
        let is_paused = ns.pause_conditions.as_ref().is_some_and(|p| !p.is_empty())
            || self.ro.spec.paused == Some(true);
        let aborted = self.pause.is_aborted();
        let healthy_cond_exists = conditions::get(&self.old, kind::HEALTHY).is_some();
        let mut became_unhealthy = false;
        if !is_paused && self.healthy(ns) {
            conditions::set(
                ns,
                conditions::new_condition(
                    kind::HEALTHY,
                    TRUE,
                    reason::ROLLOUT_HEALTHY,
                    message::HEALTHY,
                    now,
                ),
            );
        } else if healthy_cond_exists {
            became_unhealthy = conditions::set(
                ns,
                conditions::new_condition(
                    kind::HEALTHY,
                    FALSE,
                    reason::ROLLOUT_HEALTHY,
                    message::NOT_HEALTHY,
                    now,
                ),
            );
        }
        if aborted {
            let mut msg = format!("Rollout aborted update to revision {}", self.revision());
            if !self.pause.abort_message.is_empty() {
                msg = format!("{msg}: {}", self.pause.abort_message);
            }
            let cond = conditions::new_condition(
                kind::PROGRESSING,
                FALSE,
                reason::ROLLOUT_ABORTED,
                msg.clone(),
                now,
            );
            if conditions::set(ns, cond) {
                self.event(Event::warning(reason::ROLLOUT_ABORTED, msg));
            }
        }
        let current = conditions::get(&self.old, kind::PROGRESSING).cloned();
        // A blue-green rollout can be "healthy" (active and preview on the new revision) while
        // paused before completion (an inconclusive post-promotion analysis). Argo then writes
        // `NewReplicaSetAvailable` here and `RolloutPaused` in `checkPausedConditions` on
        // alternate passes; the engine leaves the paused condition in place.
        let paused_incomplete = is_paused && !completed(ns);
        if !aborted {
            if self.healthy(ns) && !paused_incomplete {
                let msg = format!(
                    "ReplicaSet {} has successfully progressed.",
                    conditions::quote(&self.new_rs_name().unwrap_or_default())
                );
                conditions::set(
                    ns,
                    conditions::new_condition(
                        kind::PROGRESSING,
                        TRUE,
                        reason::NEW_REPLICA_SET_AVAILABLE,
                        msg,
                        now,
                    ),
                );
            } else if self.progressing(ns) || became_unhealthy {
                let mut msg = match self.new_rs_name() {
                    Some(n) => format!("ReplicaSet {} is progressing.", conditions::quote(&n)),
                    None => format!("Rollout {} is progressing.", conditions::quote(self.name())),
                };
                let reason_ = if ns.stable_rs == ns.current_pod_hash && became_unhealthy {
                    msg = message::NOT_AVAILABLE.to_string();
                    reason::REPLICA_SET_NOT_AVAILABLE
                } else {
                    reason::REPLICA_SET_UPDATED
                };
                let mut cond =
                    conditions::new_condition(kind::PROGRESSING, TRUE, reason_, msg, now);
                if let Some(c) = &current {
                    if c.status == TRUE {
                        cond.last_transition_time = c.last_transition_time.clone();
                    }
                    conditions::remove(ns, kind::PROGRESSING);
                }
                conditions::set(ns, cond);
            } else if !self.is_indefinite_step()
                && !self.waiting_for_scale_down()
                && self.timed_out(ns)
            {
                let msg = self.timeout_message();
                conditions::set(
                    ns,
                    conditions::new_condition(
                        kind::PROGRESSING,
                        FALSE,
                        reason::PROGRESS_DEADLINE_EXCEEDED,
                        msg,
                        now,
                    ),
                );
            }
        }
        let replicas = self.replicas();
        let available = self.available_condition(ns, replicas);
        conditions::set(ns, available);
        match self.replica_failure() {
            Some(f) => {
                conditions::set(ns, f);
            }
            None => conditions::remove(ns, kind::REPLICA_FAILURE),
        }
        if completed(ns) {
            conditions::set(
                ns,
                conditions::new_condition(
                    kind::COMPLETED,
                    TRUE,
                    reason::ROLLOUT_COMPLETED,
                    reason::ROLLOUT_COMPLETED,
                    now,
                ),
            );
        } else if conditions::set(
            ns,
            conditions::new_condition(
                kind::COMPLETED,
                FALSE,
                reason::ROLLOUT_COMPLETED,
                reason::ROLLOUT_COMPLETED,
                now,
            ),
        ) {
            let msg = format!(
                "Rollout not completed, started update to revision {} ({})",
                self.revision(),
                ns.current_pod_hash.as_deref().unwrap_or("")
            );
            self.event(Event::normal(reason::ROLLOUT_NOT_COMPLETED, msg));
        }
    }

    fn available_condition(
        &self,
        ns: &RolloutStatus,
        replicas: i32,
    ) -> rollouts_api::RolloutCondition {
        let now = self.now;
        let available = if self.ro.spec.blue_green().is_some() {
            let active = ns
                .blue_green
                .as_ref()
                .and_then(|b| b.active_selector.clone())
                .unwrap_or_default();
            self.rs
                .iter()
                .find(|r| !active.is_empty() && r.hash() == active)
                .is_some_and(|r| {
                    r.spec_replicas == replicas
                        && r.annotations
                            .get(labels::DESIRED_REPLICAS)
                            .and_then(|v| crate::intstr::go_atoi(v))
                            == Some(i64::from(replicas))
                        && r.available_replicas == replicas
                })
        } else {
            self.sum(|r| r.available_replicas) >= replicas
        };
        if available {
            conditions::new_condition(
                kind::AVAILABLE,
                TRUE,
                reason::AVAILABLE,
                message::AVAILABLE,
                now,
            )
        } else {
            conditions::new_condition(
                kind::AVAILABLE,
                FALSE,
                reason::AVAILABLE,
                message::NOT_AVAILABLE,
                now,
            )
        }
    }

    fn replica_failure(&self) -> Option<rollouts_api::RolloutCondition> {
        let to_cond = |f: &crate::snapshot::ReplicaSetFailure| rollouts_api::RolloutCondition {
            type_: kind::REPLICA_FAILURE.to_string(),
            status: f.status.clone(),
            last_update_time: Time(f.last_transition_time),
            last_transition_time: Time(f.last_transition_time),
            reason: f.reason.clone(),
            message: f.message.clone(),
        };
        if let Some(f) = self
            .new_rs
            .and_then(|i| self.rs[i].replica_failure.as_ref())
        {
            return Some(to_cond(f));
        }
        self.rs
            .iter()
            .find_map(|r| r.replica_failure.as_ref())
            .map(to_cond)
    }

    /// Argo's `requeueStuckRollout`: look again when the progress deadline passes.
    fn requeue_stuck(&mut self, ns: &RolloutStatus) {
        let Some(current) = conditions::get(&self.old, kind::PROGRESSING).cloned() else {
            return;
        };
        let is_paused = self
            .old
            .pause_conditions
            .as_ref()
            .is_some_and(|p| !p.is_empty())
            || self.ro.spec.paused == Some(true);
        if self.healthy(ns)
            || current.reason == reason::PROGRESS_DEADLINE_EXCEEDED
            || is_paused
            || self.old.abort == Some(true)
            || self.is_indefinite_step()
        {
            return;
        }
        let at = current.last_update_time.0 + self.progress_deadline();
        let left = at.duration_since(self.now);
        let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
        self.requeue_after(left + Duration::from_secs(1));
    }
}

/// A working copy of a ReplicaSet view without its pod template.
fn light_copy(r: &ReplicaSetView) -> ReplicaSetView {
    ReplicaSetView {
        name: r.name.clone(),
        uid: r.uid.clone(),
        labels: r.labels.clone(),
        annotations: r.annotations.clone(),
        spec_replicas: r.spec_replicas,
        min_ready_seconds: r.min_ready_seconds,
        replicas: r.replicas,
        ready_replicas: r.ready_replicas,
        available_replicas: r.available_replicas,
        generation: r.generation,
        observed_generation: r.observed_generation,
        created: r.created,
        deleting: r.deleting,
        template: None,
        replica_failure: r.replica_failure.clone(),
    }
}

/// Argo's `RolloutCompleted`.
pub(crate) fn completed(status: &RolloutStatus) -> bool {
    let stable = status.stable_rs.as_deref().unwrap_or("");
    !stable.is_empty() && Some(stable) == status.current_pod_hash.as_deref()
}

/// The ephemeral metadata recorded on a ReplicaSet.
pub(crate) fn parse_ephemeral(rs: &ReplicaSetView) -> Option<PodTemplateMetadata> {
    rs.annotations
        .get(labels::EPHEMERAL_METADATA)
        .and_then(|v| serde_json::from_str(v).ok())
}

/// RFC 3339 in UTC with whole seconds, as Go's `time.RFC3339` formats a UTC time.
pub fn format_rfc3339(t: Timestamp) -> String {
    let secs = t.as_second();
    Timestamp::from_second(secs)
        .unwrap_or(t)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `metav1.FormatLabelSelector`.
pub fn format_label_selector(sel: Option<&LabelSelector>) -> String {
    let Some(sel) = sel else { return String::new() };
    let mut parts: Vec<String> = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        parts.push(format!("{k}={v}"));
    }
    for e in sel.match_expressions.iter().flatten() {
        let mut values = e.values.clone().unwrap_or_default();
        values.sort();
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({})", e.key, values.join(",")),
            "NotIn" => format!("{} notin ({})", e.key, values.join(",")),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => format!("{} {other} ({})", e.key, values.join(",")),
        });
    }
    let s = parts.join(",");
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s
    }
}

/// Whether the Rollout has a pause condition with this reason (in the status as read).
pub(crate) fn has_pause(status: &RolloutStatus, reason: &str) -> bool {
    pause::condition(status, reason).is_some()
}
