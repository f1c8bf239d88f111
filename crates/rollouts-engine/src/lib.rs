//! The pure strategy engine of rollouts-rs.
//!
//! [`plan()`] turns a [`Snapshot`] (the Rollout, the objects it owns or names, what the traffic
//! routers reported, and `now`) into a [`Plan`] (ordered idempotent [`Effect`]s, the complete
//! desired `RolloutStatus`, Kubernetes [`Event`]s, and when to look again). It does no I/O,
//! reads no clock and draws no random number: the same snapshot always gives the same plan.
//!
//! # How a reconciliation maps onto Argo's
//!
//! One call of [`plan()`] is one pass of Argo's `syncHandler` for one Rollout. Argo writes to the
//! API server while it reconciles and sometimes returns early after a write; here each write is
//! an [`Effect`] and an early return simply ends the plan. What Go reads back mid-reconcile (the
//! result of verifying a traffic weight, the phase of an AnalysisRun it just created) is read
//! from the next snapshot instead. The controller:
//!
//! 1. builds a [`Snapshot`] from its caches;
//! 2. executes [`Plan::effects`] in order, stopping at the first error (and then writes no
//!    status: the next pass plans again);
//! 3. writes [`Plan::status`] through the status subresource when it differs from the current
//!    status, records [`Plan::events`], and requeues after [`Plan::requeue_after`].
//!
//! # Layout
//!
//! - [`replicas`]: the replica math as pure functions over integers (basic canary, traffic
//!   routed, dynamic stable scale, progress thresholds), with Argo's tables as tests;
//! - [`intstr`], [`duration`]: `maxSurge`/`maxUnavailable` resolution and Go's
//!   `time.ParseDuration`;
//! - [`steps`]: the current step, the weight in effect, pause durations, step descriptions;
//! - [`conditions`], [`phase`], [`pause`]: conditions and their rules, `status.phase`, the
//!   pause model;
//! - [`validation`]: spec and reference validation (also used by `kubectl argo rollouts lint`);
//! - `context`: the state shared by the strategies (ReplicaSet bookkeeping, scaling, scale-down
//!   deadlines, Services, status conditions, progress deadline);
//! - `canary` and `bluegreen`: the strategies;
//! - [`analysis`]: AnalysisRun naming, labels and arguments;
//! - [`analysis_run`]: the AnalysisRun controller's decisions (measurements, metric and run
//!   phases, limits, dry-run, retention, requeue);
//! - [`experiment`]: the Experiment controller's decisions (template ReplicaSets and Services,
//!   availability, duration, analyses, phase, scale-down);
//! - [`sim`]: an in-memory world (API server, ReplicaSet controller, kubelet, run controllers)
//!   that applies plans and advances a clock;
//! - [`simulate()`]: a whole rollout played in that world under stated assumptions, as a
//!   [`Timeline`] (`kubectl argo rollouts plan`);
//! - [`explain()`]: which gate holds a rollout now, as a [`Blocker`] (`kubectl argo rollouts
//!   why`);
//! - [`observe`]: a [`Snapshot`] built from raw objects as a client lists them (`why`,
//!   `plan --from live`).
//!
//! Deliberate differences from Argo (each is listed in `docs/compatibility.md`): a zero
//! `scaleDownDelaySeconds` scales old ReplicaSets down at once (Argo keeps them up, upstream
//! #1992); validation paths name the strategy (`spec.strategy.canary.steps[0]`); traffic
//! routers are only called when the weights change unless [`EngineConfig::reassert_traffic`].

pub mod analysis;
pub mod analysis_run;
pub mod conditions;
pub mod duration;
pub mod duration_status;
pub mod error;
pub mod experiment;
pub mod explain;
pub mod hash;
pub mod intstr;
pub mod observe;
pub mod pause;
pub mod phase;
pub mod plan;
pub mod replicas;
pub mod sim;
pub mod simulate;
pub mod snapshot;
pub mod steps;
pub mod validation;

mod affinity;
mod bluegreen;
mod canary;
mod context;
mod ephemeral;
mod k8s_defaults;
mod restart;

use std::time::Duration;

pub use context::{format_label_selector, format_rfc3339};
pub use error::Error;
pub use explain::{Blocker, Gate, explain};
pub use plan::{
    AnalysisRunKind, AnalysisRunRequest, Effect, Event, EventType, Plan, ReplicaSetUpdate,
    TrafficOp,
};
pub use simulate::{Assumptions, Outcome, Timeline, TimelineEntry, simulate};
pub use snapshot::{
    AnalysisRunView, EngineConfig, ExperimentTemplateView, ExperimentView, MeasurementView,
    MetricView, PodView, ReplicaSetFailure, ReplicaSetView, RouterReport, ServiceView, Snapshot,
    WeightVerification, WorkloadView,
};
pub use validation::{
    FieldError, FieldErrorKind, validate, validate_references, validate_resolved,
};

use context::{Ctx, Flow};

/// Requeue after an invalid spec (Argo retries with the work queue's backoff, capped at 10 s).
const INVALID_SPEC_REQUEUE: Duration = Duration::from_secs(10);
/// Requeue after a `workloadRef` that cannot be resolved (Argo: 20 s).
const WORKLOAD_REF_REQUEUE: Duration = Duration::from_secs(20);

/// Plans one reconciliation of one Rollout.
pub fn plan(snapshot: &Snapshot) -> Plan {
    let mut ctx = Ctx::new(snapshot);
    let _ = run(&mut ctx);
    ctx.into_plan()
}

/// What to record when executing [`Effect::CreateReplicaSet`] failed for a reason other than a
/// name collision (Argo's `createDesiredReplicaSet` error path): a `Warning` event
/// `ReplicaSetCreateError` and the condition Progressing=False with the same message. The plan
/// has no effect; the controller writes its status and requeues with backoff.
pub fn replica_set_create_failed(snapshot: &Snapshot, replica_set: &str, error: &str) -> Plan {
    let mut ctx = Ctx::new(snapshot);
    let _ = ctx.replica_set_create_failed(replica_set, error);
    ctx.into_plan()
}

fn run(ctx: &mut Ctx<'_>) -> Flow {
    if let Some(WorkloadView::Error(msg)) = &ctx.snap.workload {
        let err = FieldError {
            field: "spec.workloadRef".into(),
            kind: FieldErrorKind::Invalid(
                serde_json::to_string(&ctx.ro.spec.workload_ref).unwrap_or_default(),
            ),
            detail: msg.clone(),
        };
        return ctx.invalid_spec(&err.to_string(), WORKLOAD_REF_REQUEUE);
    }
    let resolved = matches!(ctx.snap.workload, Some(WorkloadView::Resolved { .. }));
    let mut errors = validate_resolved(ctx.ro, resolved);
    if errors.is_empty() {
        errors = validate_references(ctx.ro, &ctx.snap.services);
    }
    if let Some(first) = errors.first() {
        return ctx.invalid_spec(&first.to_string(), INVALID_SPEC_REQUEUE);
    }
    if ctx.new_rs.is_none() {
        return ctx.create_replica_set();
    }
    if ctx.fully_promoted() && ctx.pause.is_aborted() {
        ctx.pause.remove_abort();
    }
    if ctx.ro.spec.replicas.is_none() {
        ctx.emit(Effect::UpdateRollout {
            replicas: Some(rollouts_api::defaults::REPLICAS),
            annotations: Default::default(),
        });
        let status = ctx.old.clone();
        return ctx.halt_with(status);
    }
    ctx.check_paused_conditions()?;
    ctx.sync_revision();
    let blue_green = ctx.ro.spec.blue_green().is_some();
    if ctx.is_scaling_event() {
        return if blue_green {
            bluegreen::sync_replicas_only(ctx)
        } else {
            canary::sync_replicas_only(ctx)
        };
    }
    if blue_green {
        bluegreen::reconcile(ctx)
    } else {
        canary::reconcile(ctx)
    }
}
