//! The blue-green strategy (Argo's `rollout/bluegreen.go`, `argo-core.md` §1.5, §2.6–2.7).
//!
//! One pass follows Argo's order: preview Service → status reset on a template change → pod
//! restarts (the pass goes on) → ReplicaSets (deadlines removed from new and stable, stable at
//! `spec.replicas`, new at `previewReplicaCount` or `spec.replicas`, older ones scaled down
//! after their delay, revision history) → the `BlueGreenPause` → active Service → pre- and
//! post-promotion analysis → ephemeral metadata → status (promotion, the preview checkpoint,
//! counts from the active ReplicaSet).
//!
//! The promotion sequence spans passes: new ReplicaSet created → preview Service switched →
//! new ReplicaSet ready → pre-promotion analysis Successful → `BlueGreenPause` (manual or for
//! `autoPromotionSeconds`) → resumed → preview scaled to full size → active Service switched →
//! post-promotion analysis Successful → `stableRS` set to the new revision → the previous
//! active ReplicaSet scaled down once its `scale-down-deadline` passes.

use jiff::SignedDuration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use rollouts_api::{BlueGreenStatus, BlueGreenStrategy, RolloutStatus, labels};

use crate::analysis;
use crate::canary::{
    create_run, emit_run_event, fast_rollback, find_run, history_limits, other_experiments,
    other_runs, rollback_within_window, rs_hashes, run_status, scale_new_rs, terminate_run,
};
use crate::conditions::reason;
use crate::context::{Ctx, Flow, format_label_selector, has_pause};
use crate::pause::reason as pause_reason;
use crate::plan::{AnalysisRunKind, Effect, Event};
use crate::snapshot::AnalysisRunView;

/// The pre- and post-promotion AnalysisRuns current in this pass (Argo's `currentArs`).
#[derive(Default)]
struct Runs {
    pre: Option<AnalysisRunView>,
    post: Option<AnalysisRunView>,
}

impl Runs {
    /// The runs named in the status as read.
    fn from_status(ctx: &Ctx<'_>) -> Self {
        let b = ctx.old.blue_green.clone().unwrap_or_default();
        Self {
            pre: find_run(ctx, b.pre_promotion_analysis_run_status.as_ref()).cloned(),
            post: find_run(ctx, b.post_promotion_analysis_run_status.as_ref()).cloned(),
        }
    }
}

/// Reconciles a blue-green Rollout whose spec is valid and whose new ReplicaSet exists.
pub(crate) fn reconcile(ctx: &mut Ctx<'_>) -> Flow {
    let bg = ctx
        .ro
        .spec
        .blue_green()
        .expect("blue-green strategy")
        .clone();
    let mut runs = Runs::from_status(ctx);
    reconcile_preview_service(ctx, &bg);
    if pod_spec_changed(ctx) {
        return sync_status(ctx, &bg, &runs);
    }
    // Unlike the canary, blue-green goes on after evicting pods.
    crate::restart::reconcile(ctx);
    reconcile_replica_sets(ctx, &bg, &runs);
    reconcile_pause(ctx, &bg, &runs);
    reconcile_active_service(ctx, &bg, &runs);
    reconcile_analysis(ctx, &bg, &mut runs);
    ctx.reconcile_ephemeral();
    sync_status(ctx, &bg, &runs)
}

/// Argo's `syncReplicasOnly` for blue-green: a `spec.replicas` change (HPA) is applied to the
/// ReplicaSets; the counts come from the active ReplicaSet.
pub(crate) fn sync_replicas_only(ctx: &mut Ctx<'_>) -> Flow {
    let bg = ctx
        .ro
        .spec
        .blue_green()
        .expect("blue-green strategy")
        .clone();
    let runs = Runs::from_status(ctx);
    let mut ns = ctx.old.clone();
    reconcile_replica_sets(ctx, &bg, &runs);
    let active = ns
        .blue_green
        .as_ref()
        .and_then(|b| b.active_selector.clone())
        .unwrap_or_default();
    match active_rs(ctx, &active) {
        Some(i) => {
            ns.hpa_replicas = Some(ctx.rs[i].replicas);
            ns.available_replicas = Some(ctx.rs[i].available_replicas);
        }
        None => {
            ns.hpa_replicas = Some(ctx.sum(|r| r.replicas));
            ns.available_replicas = Some(ctx.sum(|r| r.available_replicas));
        }
    }
    ctx.persist(ns)
}

/// Argo's `CheckPodSpecChange`: the new ReplicaSet is not the revision recorded in the status.
fn pod_spec_changed(ctx: &Ctx<'_>) -> bool {
    let old_current = ctx.old_current();
    !old_current.is_empty() && old_current != ctx.new_hash()
}

/// Argo's `haltProgress`: `spec.paused` or a pause on an inconclusive analysis.
fn halted(ctx: &Ctx<'_>) -> bool {
    ctx.ro.spec.paused == Some(true) || has_pause(&ctx.old, pause_reason::INCONCLUSIVE_ANALYSIS)
}

fn service_index(ctx: &Ctx<'_>, name: &str) -> Option<usize> {
    if name.is_empty() {
        return None;
    }
    ctx.services.iter().position(|s| s.name == name)
}

/// The hash the active Service selects now (this pass's working copy).
fn active_selector(ctx: &Ctx<'_>, bg: &BlueGreenStrategy) -> String {
    service_index(ctx, &bg.active_service)
        .map(|s| ctx.services[s].selected_hash().to_string())
        .unwrap_or_default()
}

fn preview_selector(ctx: &Ctx<'_>, bg: &BlueGreenStrategy) -> String {
    service_index(ctx, bg.preview_service.as_deref().unwrap_or(""))
        .map(|s| ctx.services[s].selected_hash().to_string())
        .unwrap_or_default()
}

/// Argo's `GetReplicaSetByTemplateHash`.
fn active_rs(ctx: &Ctx<'_>, hash: &str) -> Option<usize> {
    if hash.is_empty() {
        return None;
    }
    ctx.rs.iter().position(|r| r.hash() == hash)
}

fn old_active_selector(ctx: &Ctx<'_>) -> String {
    ctx.old
        .blue_green
        .as_ref()
        .and_then(|b| b.active_selector.clone())
        .unwrap_or_default()
}

fn old_checkpoint(ctx: &Ctx<'_>) -> bool {
    ctx.old
        .blue_green
        .as_ref()
        .and_then(|b| b.scale_up_preview_check_point)
        == Some(true)
}

// -------------------------------------------------------------------------------------------
// Services.

/// Argo's `reconcilePreviewService`: the preview Service follows the new ReplicaSet as soon as
/// it exists, without an availability check.
fn reconcile_preview_service(ctx: &mut Ctx<'_>, bg: &BlueGreenStrategy) {
    let Some(s) = service_index(ctx, bg.preview_service.as_deref().unwrap_or("")) else {
        return;
    };
    if halted(ctx) {
        return;
    }
    let hash = ctx.new_hash();
    ctx.switch_service_selector(s, &hash);
}

/// Argo's `reconcileActiveService`.
fn reconcile_active_service(ctx: &mut Ctx<'_>, bg: &BlueGreenStrategy, runs: &Runs) {
    if halted(ctx) {
        return;
    }
    let Some(n) = ctx.new_rs else { return };
    if !ready_for_pause(ctx, bg) || !saturated(ctx, n) {
        return;
    }
    let Some(s) = service_index(ctx, &bg.active_service) else {
        return;
    };
    let new_hash = ctx.rs[n].hash().to_string();
    let mut hash = ctx.services[s].selected_hash().to_string();
    if fast_tracked(ctx, bg) {
        hash = new_hash.clone();
    }
    if completed_pause(ctx, bg) && completed_pre_promotion(bg, runs) {
        hash = new_hash;
    }
    if ctx.old.abort == Some(true) {
        hash = ctx.old_stable().to_string();
    }
    if hash.is_empty() {
        return;
    }
    ctx.switch_service_selector(s, &hash);
}

// -------------------------------------------------------------------------------------------
// ReplicaSets.

/// Argo's `NewRSNewReplicas` for blue-green: `previewReplicaCount` until the promotion (full
/// promotion, or the checkpoint passed while not paused, or the new ReplicaSet is active).
pub(crate) fn new_rs_replicas(ctx: &Ctx<'_>, bg: &BlueGreenStrategy) -> i32 {
    let replicas = ctx.replicas();
    let (Some(preview), Some(n)) = (bg.preview_replica_count, ctx.new_rs) else {
        return replicas;
    };
    match active_rs(ctx, &old_active_selector(ctx)) {
        None => return replicas,
        Some(a) if a == n => return replicas,
        Some(_) => {}
    }
    if ctx.old.promote_full == Some(true) {
        return replicas;
    }
    if ctx.rs[n].hash() != ctx.old_current() {
        return preview;
    }
    let not_paused = ctx.ro.spec.paused != Some(true)
        && ctx
            .old
            .pause_conditions
            .as_ref()
            .is_none_or(|p| p.is_empty());
    if not_paused && old_checkpoint(ctx) {
        return replicas;
    }
    preview
}

/// Argo's `ReadyForPause`: the new ReplicaSet has its target size, all available.
fn ready_for_pause(ctx: &Ctx<'_>, bg: &BlueGreenStrategy) -> bool {
    let Some(n) = ctx.new_rs else { return false };
    let count = new_rs_replicas(ctx, bg);
    ctx.rs[n].spec_replicas == count && ctx.rs[n].available_replicas == count
}

/// Argo's `IsSaturated`: `spec.replicas`, the `desired-replicas` annotation and the available
/// pods all equal the Rollout's `spec.replicas`.
fn saturated(ctx: &Ctx<'_>, i: usize) -> bool {
    let replicas = ctx.replicas();
    let rs = &ctx.rs[i];
    let desired = rs
        .annotations
        .get(labels::DESIRED_REPLICAS)
        .and_then(|v| v.parse::<i32>().ok());
    rs.spec_replicas == replicas && desired == Some(replicas) && rs.available_replicas == replicas
}

/// Argo's `reconcileBlueGreenReplicaSets`.
fn reconcile_replica_sets(ctx: &mut Ctx<'_>, bg: &BlueGreenStrategy, runs: &Runs) {
    ctx.remove_scale_down_deadlines();
    if let Some(s) = ctx.stable_rs {
        let replicas = ctx.replicas();
        ctx.scale(s, replicas);
    }
    if let Some(n) = ctx.new_rs {
        let count = new_rs_replicas(ctx, bg);
        scale_new_rs(ctx, n, count);
    }
    scale_down_others(ctx, bg, runs);
    let (other_runs, other_exps) = (other_runs(ctx), other_experiments(ctx));
    ctx.reconcile_revision_history(&other_runs, &other_exps);
}

/// Argo's `scaleDownOldReplicaSetsForBlueGreen`: older ReplicaSets, newest revision first, are
/// kept at `spec.replicas` until their `scale-down-deadline` (at most
/// `scaleDownDelayRevisionLimit` of them), then scaled to 0. Nothing is scaled down while paused
/// on an inconclusive analysis, nor (post-promotion analysis without an explicit
/// `scaleDownDelaySeconds`) before the post-promotion analysis succeeded.
fn scale_down_others(ctx: &mut Ctx<'_>, bg: &BlueGreenStrategy, runs: &Runs) -> bool {
    let mut order: Vec<usize> = ctx
        .others
        .iter()
        .copied()
        .filter(|&i| ctx.rs[i].spec_replicas > 0)
        .collect();
    if order.is_empty() {
        return false;
    }
    if has_pause(&ctx.old, pause_reason::INCONCLUSIVE_ANALYSIS) {
        return false;
    }
    if bg.post_promotion_analysis.is_some()
        && bg.scale_down_delay_seconds.is_none()
        && !skip_post_promotion(ctx, runs.post.as_ref())
        && runs
            .post
            .as_ref()
            .is_none_or(|r| r.phase != analysis::phase::SUCCESSFUL)
    {
        return false;
    }
    order.sort_by(|&a, &b| {
        let ra = ctx.rs[a].revision().unwrap_or(0);
        let rb = ctx.rs[b].revision().unwrap_or(0);
        rb.cmp(&ra)
            .then(ctx.rs[b].created.cmp(&ctx.rs[a].created))
            .then(ctx.rs[b].name.cmp(&ctx.rs[a].name))
    });
    let replicas = ctx.replicas();
    let mut annotated = 0;
    let mut scaled = false;
    for i in order {
        if ctx.is_referenced(i) || ctx.rs[i].spec_replicas == 0 {
            continue;
        }
        let (a, desired) = ctx.scale_down_delay_helper(i, annotated, replicas);
        annotated = a;
        if ctx.rs[i].spec_replicas == desired {
            continue;
        }
        ctx.scale(i, desired);
        scaled = true;
    }
    scaled
}

// -------------------------------------------------------------------------------------------
// Pause.

/// Argo's `needsBlueGreenControllerPause`.
fn needs_controller_pause(bg: &BlueGreenStrategy) -> bool {
    bg.auto_promotion_enabled == Some(false) || bg.auto_promotion_seconds.unwrap_or(0) > 0
}

/// Argo's `isBlueGreenFastTracked`: a fast rollback, a full promotion, an active Service that
/// selects no revision yet (initial deploy) or already selects the new one.
fn fast_tracked(ctx: &Ctx<'_>, bg: &BlueGreenStrategy) -> bool {
    if fast_rollback(ctx) || ctx.old.promote_full == Some(true) {
        return true;
    }
    let active = active_selector(ctx, bg);
    active.is_empty() || active == ctx.new_hash()
}

/// Argo's `completedPrePromotionAnalysis`.
fn completed_pre_promotion(bg: &BlueGreenStrategy, runs: &Runs) -> bool {
    bg.pre_promotion_analysis.is_none()
        || runs
            .pre
            .as_ref()
            .is_some_and(|r| r.phase == analysis::phase::SUCCESSFUL)
}

/// Argo's `CompletedBlueGreenPause`: the user resumed, or `autoPromotionSeconds` passed.
fn completed_pause(ctx: &Ctx<'_>, bg: &BlueGreenStrategy) -> bool {
    if ctx.pause.has_add_pause() {
        return false;
    }
    if old_checkpoint(ctx) || !needs_controller_pause(bg) {
        return true;
    }
    let cond = crate::pause::condition(&ctx.old, pause_reason::BLUE_GREEN_PAUSE);
    if bg.auto_promotion_enabled != Some(false) {
        let secs = bg.auto_promotion_seconds.unwrap_or(0);
        if secs == 0 {
            return true;
        }
        return cond.is_some_and(|c| {
            c.start_time
                .0
                .checked_add(SignedDuration::from_secs(i64::from(secs)))
                .is_ok_and(|end| ctx.now > end)
        });
    }
    ctx.old.controller_pause == Some(true) && cond.is_none()
}

/// Argo's `reconcileBlueGreenPause`.
fn reconcile_pause(ctx: &mut Ctx<'_>, bg: &BlueGreenStrategy, runs: &Runs) {
    if ctx.old.abort == Some(true) || !ready_for_pause(ctx, bg) || halted(ctx) {
        return;
    }
    let active = active_selector(ctx, bg);
    if fast_tracked(ctx, bg)
        || active == ctx.new_hash()
        || old_checkpoint(ctx)
        || !needs_controller_pause(bg)
    {
        ctx.pause.remove_pause(pause_reason::BLUE_GREEN_PAUSE);
        return;
    }
    if !completed_pre_promotion(bg, runs) {
        return;
    }
    match crate::pause::condition(&ctx.old, pause_reason::BLUE_GREEN_PAUSE).cloned() {
        Some(cond) => {
            if completed_pause(ctx, bg) {
                ctx.pause.remove_pause(pause_reason::BLUE_GREEN_PAUSE);
            } else if bg.auto_promotion_enabled != Some(false)
                && let Some(secs) = bg.auto_promotion_seconds.filter(|s| *s > 0)
                && let Ok(end) = cond
                    .start_time
                    .0
                    .checked_add(SignedDuration::from_secs(i64::from(secs)))
            {
                ctx.requeue_at(end);
            }
        }
        None => {
            if ctx.old.controller_pause != Some(true) {
                ctx.pause.add_pause(pause_reason::BLUE_GREEN_PAUSE);
            }
        }
    }
}

// -------------------------------------------------------------------------------------------
// Analysis.

/// Argo's `skipPrePromotionAnalysisRun`.
fn skip_pre_promotion(
    ctx: &Ctx<'_>,
    bg: &BlueGreenStrategy,
    current: Option<&AnalysisRunView>,
) -> bool {
    let Some(n) = ctx.new_rs else { return true };
    let hash = ctx.rs[n].hash();
    let active = old_active_selector(ctx);
    if ctx.old_stable() == hash || active.is_empty() || active == hash || hash.is_empty() {
        return true;
    }
    if current.is_some() {
        return false;
    }
    if let Some(preview) = bg.preview_replica_count {
        return ctx.rs[n].spec_replicas != preview || ctx.rs[n].available_replicas != preview;
    }
    !saturated(ctx, n)
}

/// Argo's `skipPostPromotionAnalysisRun`.
fn skip_post_promotion(ctx: &Ctx<'_>, current: Option<&AnalysisRunView>) -> bool {
    let Some(n) = ctx.new_rs else { return true };
    let hash = ctx.rs[n].hash();
    if ctx.old_stable() == hash || old_active_selector(ctx) != hash || hash.is_empty() {
        return true;
    }
    if current.is_some() {
        return false;
    }
    !saturated(ctx, n)
}

fn has_templates(a: Option<&rollouts_api::RolloutAnalysis>) -> bool {
    a.is_some_and(|a| a.templates.as_ref().is_some_and(|t| !t.is_empty()))
}

/// Argo's `reconcilePrePromotionAnalysisRun` / `reconcilePostPromotionAnalysisRun`.
fn reconcile_run(
    ctx: &mut Ctx<'_>,
    spec: Option<&rollouts_api::RolloutAnalysis>,
    kind: AnalysisRunKind,
    skip: bool,
    current: Option<AnalysisRunView>,
) -> Option<AnalysisRunView> {
    if !has_templates(spec) {
        terminate_run(ctx, current.as_ref());
        return None;
    }
    if skip {
        terminate_run(ctx, current.as_ref());
        return current;
    }
    if has_pause(&ctx.old, pause_reason::INCONCLUSIVE_ANALYSIS) {
        return current;
    }
    if crate::canary::needs_new_run(ctx, current.as_ref()) {
        return create_run(ctx, spec.expect("checked"), kind);
    }
    current
}

/// Argo's `setPauseOrAbortForBlueGreen`.
fn pause_or_abort(ctx: &mut Ctx<'_>, run: Option<&AnalysisRunView>, post: bool) {
    let Some(run) = run else { return };
    match run.phase.as_str() {
        analysis::phase::INCONCLUSIVE => ctx.pause.add_pause(pause_reason::INCONCLUSIVE_ANALYSIS),
        analysis::phase::ERROR | analysis::phase::FAILED => {
            let mut msg = format!(
                "Blue/green {}-promotion analysis phase error/failed",
                if post { "post" } else { "pre" }
            );
            if !run.message.is_empty() {
                msg = format!("{msg}: {}", run.message);
            }
            ctx.pause.add_abort(msg);
        }
        _ => {}
    }
}

/// Argo's `reconcileAnalysisRuns` for blue-green.
fn reconcile_analysis(ctx: &mut Ctx<'_>, bg: &BlueGreenStrategy, runs: &mut Runs) {
    let cancel = ctx.fully_promoted()
        || ctx.pause.is_aborted()
        || ctx.old.promote_full == Some(true)
        || fast_rollback(ctx)
        || ctx.old_stable().is_empty();
    let (pre, post) = if cancel {
        // Blue-green keeps its current runs in the status once they are cancelled.
        terminate_run(ctx, runs.pre.as_ref());
        terminate_run(ctx, runs.post.as_ref());
        (runs.pre.clone(), runs.post.clone())
    } else {
        let skip = skip_pre_promotion(ctx, bg, runs.pre.as_ref());
        let pre = reconcile_run(
            ctx,
            bg.pre_promotion_analysis.as_ref(),
            AnalysisRunKind::PrePromotion,
            skip,
            runs.pre.clone(),
        );
        pause_or_abort(ctx, pre.as_ref(), false);
        let skip = skip_post_promotion(ctx, runs.post.as_ref());
        let post = reconcile_run(
            ctx,
            bg.post_promotion_analysis.as_ref(),
            AnalysisRunKind::PostPromotion,
            skip,
            runs.post.clone(),
        );
        pause_or_abort(ctx, post.as_ref(), true);
        (pre, post)
    };
    let status = ctx
        .new_status
        .blue_green
        .get_or_insert_with(Default::default);
    status.pre_promotion_analysis_run_status = pre.as_ref().map(run_status);
    status.post_promotion_analysis_run_status = post.as_ref().map(run_status);
    let old = ctx.old.blue_green.clone().unwrap_or_default();
    let current: Vec<String> = [pre.as_ref(), post.as_ref()]
        .into_iter()
        .flatten()
        .map(|r| r.name.clone())
        .collect();
    {
        let others: Vec<AnalysisRunView> = other_runs(ctx)
            .into_iter()
            .map(|i| ctx.snap.analysis_runs[i].clone())
            .filter(|r| !current.contains(&r.name))
            .collect();
        for run in &others {
            terminate_run(ctx, Some(run));
        }
        let limits = history_limits(ctx);
        let deletions = analysis::runs_to_delete(
            others.iter().map(|r| {
                (
                    r.name.as_str(),
                    &r.labels,
                    r.phase.as_str(),
                    r.created,
                    r.deleting,
                )
            }),
            &rs_hashes(ctx),
            limits.0,
            limits.1,
        );
        for name in deletions {
            ctx.emit(Effect::DeleteAnalysisRun { name });
        }
        emit_run_event(
            ctx,
            old.post_promotion_analysis_run_status.as_ref(),
            post.as_ref(),
            "PostPromotion",
        );
        emit_run_event(
            ctx,
            old.pre_promotion_analysis_run_status.as_ref(),
            pre.as_ref(),
            "PrePromotion",
        );
    }
    runs.pre = pre;
    runs.post = post;
}

// -------------------------------------------------------------------------------------------
// Status.

/// Argo's `shouldFullPromote` for blue-green.
fn should_full_promote(
    ctx: &Ctx<'_>,
    bg: &BlueGreenStrategy,
    ns: &RolloutStatus,
    runs: &Runs,
) -> Option<String> {
    if ctx.stable_rs.is_none() {
        return Some("Initial deploy".to_string());
    }
    let active = ns
        .blue_green
        .as_ref()
        .and_then(|b| b.active_selector.as_deref())
        .unwrap_or("");
    if active.is_empty() {
        return Some("Initial deploy".to_string());
    }
    if Some(active) != ns.current_pod_hash.as_deref() {
        return None;
    }
    if ctx.old.promote_full == Some(true) {
        return Some("Full promotion requested".to_string());
    }
    if fast_rollback(ctx) {
        return Some(
            if rollback_within_window(ctx) {
                "Rollback within window"
            } else {
                "Fast rollback"
            }
            .to_string(),
        );
    }
    if ctx.pause.is_aborted() {
        return None;
    }
    if bg.post_promotion_analysis.is_some()
        && runs
            .post
            .as_ref()
            .is_none_or(|r| r.phase != analysis::phase::SUCCESSFUL)
    {
        return None;
    }
    Some("Completed blue-green update".to_string())
}

/// Argo's `promoteStable` for blue-green.
fn promote_stable(ctx: &mut Ctx<'_>, ns: &mut RolloutStatus, reason_: &str) {
    ctx.pause.clear_pauses();
    ctx.pause.remove_abort();
    ns.promote_full = None;
    ns.blue_green
        .get_or_insert_with(Default::default)
        .scale_up_preview_check_point = None;
    let revision = ctx.revision();
    if ns.stable_rs != ns.current_pod_hash {
        ns.stable_rs = ns.current_pod_hash.clone();
        ctx.completion = Some(crate::duration_status::completion_status(ctx, reason_));
        ctx.event(Event::normal(
            reason::ROLLOUT_COMPLETED,
            format!(
                "Rollout completed update to revision {revision} ({}): {reason_}",
                ns.current_pod_hash.as_deref().unwrap_or("")
            ),
        ));
    }
    if revision == 1
        && ctx.old.phase.as_deref() == Some(crate::phase::phase::HEALTHY)
        && let Some(wr) = ctx.ro.spec.workload_ref.as_ref()
        && wr.scale_down.as_deref() == Some("onsuccess")
    {
        ctx.emit(Effect::ScaleWorkload {
            api_version: wr.api_version.clone().unwrap_or_default(),
            kind: wr.kind.clone().unwrap_or_default(),
            name: wr.name.clone().unwrap_or_default(),
            replicas: 0,
        });
    }
}

/// Argo's `calculateScaleUpPreviewCheckPoint`: latches once the pre-promotion analysis
/// succeeded, the pause completed and the preview count is available.
fn checkpoint(ctx: &Ctx<'_>, bg: &BlueGreenStrategy, runs: &Runs) -> bool {
    let Some(preview) = bg.preview_replica_count else {
        return false;
    };
    if old_checkpoint(ctx) {
        return true;
    }
    if !completed_pre_promotion(bg, runs) || !completed_pause(ctx, bg) {
        return false;
    }
    ctx.new_rs
        .is_some_and(|n| ctx.rs[n].available_replicas == preview)
}

/// The selector of a ReplicaSet the Rollout created: the Rollout's selector plus the hash.
fn replica_set_selector(ctx: &Ctx<'_>, hash: &str) -> LabelSelector {
    let mut sel = ctx.ro.spec.selector.clone().unwrap_or_default();
    sel.match_labels
        .get_or_insert_with(Default::default)
        .insert(labels::POD_TEMPLATE_HASH.to_string(), hash.to_string());
    sel
}

/// Argo's `resetRolloutStatus` for blue-green.
fn reset_status(ctx: &mut Ctx<'_>, ns: &mut RolloutStatus) {
    ctx.pause.clear_pauses();
    ctx.pause.remove_abort();
    ns.restarted_at = ctx.ro.spec.restart_at.clone();
    ns.promote_full = None;
    let b = ns.blue_green.get_or_insert_with(Default::default);
    b.pre_promotion_analysis_run_status = None;
    b.post_promotion_analysis_run_status = None;
    b.scale_up_preview_check_point = None;
    ns.canary = None;
    ns.current_step_index = None;
}

/// Argo's `syncRolloutStatusBlueGreen`.
fn sync_status(ctx: &mut Ctx<'_>, bg: &BlueGreenStrategy, runs: &Runs) -> Flow {
    let mut ns = ctx.base_status();
    ns.stable_rs = ctx.old.stable_rs.clone();
    ns.canary = None;
    ns.current_step_hash = None;
    ns.current_step_index = None;
    if pod_spec_changed(ctx) {
        reset_status(ctx, &mut ns);
    }
    if ctx.old.promote_full == Some(true) || rollback_within_window(ctx) {
        ctx.pause.clear_pauses();
        ctx.pause.remove_abort();
    }
    let preview = preview_selector(ctx, bg);
    let active = active_selector(ctx, bg);
    {
        let b = ns.blue_green.get_or_insert_with(BlueGreenStatus::default);
        b.preview_selector = Some(preview).filter(|s| !s.is_empty());
        b.active_selector = Some(active.clone()).filter(|s| !s.is_empty());
    }
    if let Some(reason_) = should_full_promote(ctx, bg, &ns, runs) {
        promote_stable(ctx, &mut ns, &reason_);
    } else {
        let latched = checkpoint(ctx, bg, runs);
        ns.blue_green
            .get_or_insert_with(Default::default)
            .scale_up_preview_check_point = latched.then_some(true);
    }
    match active_rs(ctx, &active) {
        Some(i) => {
            ns.hpa_replicas = Some(ctx.rs[i].replicas);
            ns.selector = Some(format_label_selector(Some(&replica_set_selector(
                ctx, &active,
            ))));
            ns.available_replicas = Some(ctx.rs[i].available_replicas);
            ns.ready_replicas = Some(ctx.rs[i].ready_replicas);
        }
        None => {
            ns.hpa_replicas = Some(ctx.sum(|r| r.replicas));
            ns.selector = Some(format_label_selector(ctx.ro.spec.selector.as_ref()));
            ns.available_replicas = Some(ctx.sum(|r| r.available_replicas));
        }
    }
    ctx.persist(ns)
}
