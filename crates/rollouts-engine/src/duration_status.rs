//! `status.duration`: when the current update attempt started and ended, how long it was
//! paused by hand, and how it ended (`argo-core.md` §2.20, a newer Argo feature).
//!
//! An attempt starts when a new revision starts (a template change, or a change of the canary
//! steps), on the first revision of a new Rollout, and on a retry after an abort. It ends when
//! the new revision is stable with `spec.replicas` pods available (`Promoted`, `FastPromoted`
//! after a full promotion, `RolledBack` when an older revision was brought back,
//! `FastRolledBack` when that skipped the steps), or when it is aborted (`Aborted`). An attempt
//! replaced by a newer revision before it ended (`Superseded`) is simply restarted: the status
//! holds one attempt, so the controller observes the superseded one from the status it
//! replaces. Manual pauses (`spec.paused`, an inconclusive analysis or experiment, an
//! indefinite pause step, a blue-green pause without auto-promotion) accumulate in
//! `totalManualPauseDurationSeconds`.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rollouts_api::{RolloutDuration, RolloutStatus};

use crate::context::Ctx;
use crate::pause::reason as pause_reason;

/// Completion statuses.
pub mod status {
    /// Promoted through the strategy.
    pub const PROMOTED: &str = "Promoted";
    /// Promoted with `promote --full`.
    pub const FAST_PROMOTED: &str = "FastPromoted";
    /// Aborted.
    pub const ABORTED: &str = "Aborted";
    /// Replaced by a newer revision before it ended.
    pub const SUPERSEDED: &str = "Superseded";
    /// An older revision brought back through the strategy.
    pub const ROLLED_BACK: &str = "RolledBack";
    /// An older revision brought back without the steps (fast rollback, rollback window,
    /// blue-green scale-down delay).
    pub const FAST_ROLLED_BACK: &str = "FastRolledBack";
}

/// How the new revision became stable, from the promotion reason.
pub(crate) fn completion_status(ctx: &Ctx<'_>, promotion_reason: &str) -> &'static str {
    // Argo's `isRollback`: the new ReplicaSet is older than the stable one.
    let brought_back = match (ctx.new_rs, ctx.stable_rs) {
        (Some(n), Some(s)) => ctx.rs[n].created < ctx.rs[s].created,
        _ => false,
    };
    match promotion_reason {
        "Fast rollback" | "Rollback within window" => status::FAST_ROLLED_BACK,
        _ if brought_back => status::ROLLED_BACK,
        "Full promotion requested" => status::FAST_PROMOTED,
        _ => status::PROMOTED,
    }
}

fn seconds(from: Timestamp, to: Timestamp) -> i64 {
    to.duration_since(from).as_secs().max(0)
}

impl Ctx<'_> {
    /// Whether the rollout is paused by hand in `ns`.
    fn manually_paused(&self, ns: &RolloutStatus) -> bool {
        if self.ro.spec.paused == Some(true) {
            return true;
        }
        ns.pause_conditions
            .iter()
            .flatten()
            .any(|c| match c.reason.as_str() {
                pause_reason::INCONCLUSIVE_ANALYSIS | pause_reason::INCONCLUSIVE_EXPERIMENT => true,
                pause_reason::CANARY_PAUSE_STEP => crate::steps::current_step(self.ro)
                    .0
                    .and_then(|s| s.pause.as_ref())
                    .is_some_and(|p| p.duration.is_none()),
                pause_reason::BLUE_GREEN_PAUSE => self
                    .ro
                    .spec
                    .blue_green()
                    .is_some_and(|b| b.auto_promotion_enabled == Some(false)),
                _ => false,
            })
    }

    /// Whether a new revision (template or canary steps) starts in this pass.
    fn new_revision_started(&self, ns: &RolloutStatus) -> bool {
        let old_current = self.old_current();
        let template =
            !old_current.is_empty() && Some(old_current) != ns.current_pod_hash.as_deref();
        let old_steps = self.old.current_step_hash.as_deref().unwrap_or("");
        let steps = self.ro.spec.canary().is_some()
            && !old_steps.is_empty()
            && Some(old_steps) != ns.current_step_hash.as_deref();
        template || steps
    }

    /// Computes `ns.duration` from the status as read and the new status.
    pub(crate) fn calculate_duration(&self, ns: &mut RolloutStatus) {
        let now = self.now;
        let old = self.old.duration.clone();
        let mut d = old.clone().unwrap_or_default();
        let started = |d: &mut RolloutDuration| {
            *d = RolloutDuration {
                rollout_started_at: Some(Time(now)),
                total_manual_pause_duration_seconds: Some(0),
                ..Default::default()
            };
        };
        let current = ns.current_pod_hash.clone().unwrap_or_default();
        let at_stable = !current.is_empty() && ns.stable_rs.as_deref() == Some(current.as_str());
        if self.new_revision_started(ns) {
            // A rollback straight to the stable revision ends as soon as it starts.
            started(&mut d);
            if at_stable && self.old_stable() == current {
                d.finished_at = Some(Time(now));
                d.completion_status = Some(status::FAST_ROLLED_BACK.to_string());
            }
        } else if old.is_none() && self.old_current().is_empty() {
            // The first revision of a new Rollout.
            started(&mut d);
        } else if d.completion_status.as_deref() == Some(status::ABORTED) && ns.abort != Some(true)
        {
            // Retried after an abort.
            started(&mut d);
        }
        if d.rollout_started_at.is_none() || d.finished_at.is_some() {
            ns.duration = (d != RolloutDuration::default()).then_some(d);
            return;
        }
        // Manual pauses.
        let paused = self.manually_paused(ns);
        match (&d.manual_pause_started_at, paused) {
            (None, true) => d.manual_pause_started_at = Some(Time(now)),
            (Some(since), false) => {
                let total = d.total_manual_pause_duration_seconds.unwrap_or(0);
                d.total_manual_pause_duration_seconds = Some(total + seconds(since.0, now));
                d.manual_pause_started_at = None;
            }
            _ => {}
        }
        // The end of the attempt.
        let replicas = self.replicas();
        let available = self
            .new_rs
            .is_some_and(|n| self.rs[n].available_replicas >= replicas);
        let end = if ns.abort == Some(true) {
            Some(status::ABORTED)
        } else if at_stable && available {
            Some(self.completion.unwrap_or(status::PROMOTED))
        } else {
            None
        };
        if let Some(end) = end {
            if let Some(since) = d.manual_pause_started_at.take() {
                let total = d.total_manual_pause_duration_seconds.unwrap_or(0);
                d.total_manual_pause_duration_seconds = Some(total + seconds(since.0, now));
            }
            d.finished_at = Some(Time(now));
            d.completion_status = Some(end.to_string());
        }
        ns.duration = Some(d);
    }
}
