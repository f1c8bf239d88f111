//! The canary strategy (Argo's `rollout/canary.go`, `argo-core.md` §2.3–2.5).
//!
//! One pass follows Argo's order: status reset on a template or step change → pod restarts →
//! ephemeral metadata → revision history → ping/pong and stable/canary Services → traffic
//! routing → experiments → analysis runs → ReplicaSet scaling (stable, then new, then older;
//! one kind per pass) → pause step → status (step progression, promotion, abort).

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::SignedDuration;
use rollouts_api::{
    CanaryStrategy, Experiment, ExperimentAnalysisTemplateRef, ExperimentSpec,
    RolloutAnalysisRunStatus, RolloutStatus, TemplateService, TemplateSpec, TrafficWeights,
    WeightDestination, labels,
};

use crate::analysis::{self, build_args, free_name, is_completed, run_labels};
use crate::conditions::reason;
use crate::context::{Ctx, Flow, Halt, has_pause};
use crate::pause::reason as pause_reason;
use crate::plan::{AnalysisRunKind, AnalysisRunRequest, Effect, Event, TrafficOp};
use crate::replicas::{
    AtDesiredInput, BasicCanaryInput, StableCounts, TrafficRoutedInput, at_desired_counts,
    basic_canary_counts, dynamic_abort_weight, progress_threshold_met, traffic_routed_counts,
};
use crate::snapshot::{AnalysisRunView, ExperimentView};
use crate::steps;

/// Reconciles a canary Rollout whose spec is valid and whose new ReplicaSet exists.
pub(crate) fn reconcile(ctx: &mut Ctx<'_>) -> Flow {
    let canary = ctx.ro.spec.canary().expect("canary strategy").clone();
    if template_or_steps_changed(ctx) {
        return sync_status(ctx, &canary);
    }
    if crate::restart::reconcile(ctx) > 0 {
        // Availability counts no longer account for the evicted pods: stop here.
        let status = ctx.old.clone();
        return ctx.halt_with(status);
    }
    ctx.reconcile_ephemeral();
    let (other_runs, other_exps) = (other_runs(ctx), other_experiments(ctx));
    ctx.reconcile_revision_history(&other_runs, &other_exps);
    reconcile_ping_pong_service(ctx, &canary);
    reconcile_services(ctx, &canary);
    reconcile_traffic(ctx, &canary)?;
    reconcile_experiments(ctx, &canary);
    reconcile_analysis(ctx, &canary);
    if ctx.pause.has_add_pause() {
        return sync_status(ctx, &canary);
    }
    if reconcile_replica_sets(ctx, &canary) {
        return sync_status(ctx, &canary);
    }
    if reconcile_pause(ctx) {
        return sync_status(ctx, &canary);
    }
    reconcile_plugin_step(ctx);
    sync_status(ctx, &canary)
}

/// Argo's `syncReplicasOnly` for a canary: a `spec.replicas` change (HPA) is applied to the
/// ReplicaSets without any step progression.
pub(crate) fn sync_replicas_only(ctx: &mut Ctx<'_>) -> Flow {
    let canary = ctx.ro.spec.canary().expect("canary strategy").clone();
    let mut ns = ctx.old.clone();
    reconcile_replica_sets(ctx, &canary);
    ns.available_replicas = Some(ctx.sum(|r| r.available_replicas));
    ns.hpa_replicas = Some(ctx.sum(|r| r.replicas));
    ctx.persist(ns)
}

fn max_weight(canary: &CanaryStrategy) -> i32 {
    canary
        .traffic_routing
        .as_ref()
        .map_or(rollouts_api::defaults::MAX_TRAFFIC_WEIGHT, |t| {
            t.max_traffic_weight_or_default()
        })
}

fn template_or_steps_changed(ctx: &Ctx<'_>) -> bool {
    let step_hash = &ctx.step_hash;
    let old_step_hash = ctx.old.current_step_hash.as_deref().unwrap_or("");
    if old_step_hash.is_empty() || old_step_hash != step_hash.as_str() {
        return true;
    }
    let old_current = ctx.old_current();
    !old_current.is_empty() && old_current != ctx.new_hash()
}

pub(crate) fn other_runs(ctx: &Ctx<'_>) -> Vec<usize> {
    let current = current_run_names(&ctx.old);
    (0..ctx.snap.analysis_runs.len())
        .filter(|&i| !current.contains(&ctx.snap.analysis_runs[i].name))
        .collect()
}

pub(crate) fn other_experiments(ctx: &Ctx<'_>) -> Vec<usize> {
    let current = current_experiment_name(&ctx.old);
    (0..ctx.snap.experiments.len())
        .filter(|&i| Some(&ctx.snap.experiments[i].name) != current.as_ref())
        .collect()
}

fn current_run_names(status: &RolloutStatus) -> Vec<String> {
    let c = status.canary.as_ref();
    let b = status.blue_green.as_ref();
    [
        c.and_then(|c| c.current_step_analysis_run_status.as_ref()),
        c.and_then(|c| c.current_background_analysis_run_status.as_ref()),
        b.and_then(|b| b.pre_promotion_analysis_run_status.as_ref()),
        b.and_then(|b| b.post_promotion_analysis_run_status.as_ref()),
    ]
    .into_iter()
    .flatten()
    .map(|s| s.name.clone())
    .collect()
}

fn current_experiment_name(status: &RolloutStatus) -> Option<String> {
    status
        .canary
        .as_ref()
        .and_then(|c| c.current_experiment.clone())
        .filter(|n| !n.is_empty())
}

// -------------------------------------------------------------------------------------------
// Replica counts.

fn basic_input(ctx: &Ctx<'_>, canary: &CanaryStrategy, weight: i32) -> BasicCanaryInput {
    let f = fenceposts(ctx, canary);
    BasicCanaryInput {
        replicas: ctx.replicas(),
        weight,
        max_weight: max_weight(canary),
        max_surge: f.max_surge,
        max_unavailable: f.max_unavailable,
        new_rs: ctx.counts(ctx.new_rs),
        stable_rs: if ctx.stable_distinct() {
            ctx.counts(ctx.stable_rs)
        } else {
            None
        },
        other_spec: ctx.others.iter().map(|&i| ctx.rs[i].spec_replicas).sum(),
    }
}

pub(crate) fn fenceposts(ctx: &Ctx<'_>, canary: &CanaryStrategy) -> crate::intstr::Fenceposts {
    crate::intstr::canary_fenceposts(
        &steps::int_or_str(&canary.max_surge_or_default()),
        &steps::int_or_str(&canary.max_unavailable_or_default()),
        ctx.replicas(),
    )
}

/// Argo's `GetCanaryReplicasOrWeight`: (setCanaryScale replicas, weight).
fn replicas_or_weight(ctx: &Ctx<'_>, canary: &CanaryStrategy) -> (Option<i32>, i32) {
    let max = max_weight(canary);
    let stable = ctx.old_stable();
    if ctx.old.promote_full == Some(true) || stable.is_empty() || ctx.old_current() == stable {
        return (None, max);
    }
    let aborted = ctx.old.abort == Some(true);
    let keeps_canary = ctx.abort_scale_down_delay().0.is_none();
    if let Some(scale) = steps::set_canary_scale_in_effect(ctx.ro, aborted, keeps_canary) {
        if let Some(r) = scale.replicas {
            return (Some(r), 0);
        } else if let Some(w) = scale.weight {
            return (None, w);
        }
    }
    (None, desired_canary_weight(ctx, canary))
}

/// Argo's `GetDesiredCanaryWeight`.
fn desired_canary_weight(ctx: &Ctx<'_>, canary: &CanaryStrategy) -> i32 {
    let aborted = ctx.old.abort == Some(true);
    if aborted
        && canary.dynamic_stable_scale == Some(true)
        && let (Some(n), Some(s)) = (ctx.new_rs, ctx.stable_rs)
    {
        let weights: Vec<i32> = canary.steps().iter().filter_map(|s| s.set_weight).collect();
        let explicit = canary
            .abort_scale_down_delay_seconds
            .is_some_and(|d| d != 0);
        return dynamic_abort_weight(
            ctx.replicas(),
            max_weight(canary),
            &weights,
            ctx.rs[s].available_replicas,
            ctx.rs[n].available_replicas,
            explicit,
        );
    }
    steps::current_set_weight(ctx.ro, aborted, max_weight(canary))
}

fn weights_pair(w: Option<&TrafficWeights>) -> Option<(i32, i32)> {
    w.map(|w| (w.canary.weight, w.stable.weight))
}

/// Desired (new, stable) counts; `weights` are the traffic weights to factor in.
fn desired_counts(
    ctx: &Ctx<'_>,
    canary: &CanaryStrategy,
    weights: Option<&TrafficWeights>,
) -> (i32, i32) {
    let (scale, weight) = replicas_or_weight(ctx, canary);
    if canary.traffic_routing.is_none() {
        return basic_canary_counts(&basic_input(ctx, canary, weight));
    }
    traffic_routed_counts(&TrafficRoutedInput {
        replicas: ctx.replicas(),
        weight,
        scale_replicas: scale,
        max_weight: max_weight(canary),
        dynamic_stable_scale: canary.dynamic_stable_scale == Some(true),
        aborted: ctx.old.abort == Some(true),
        weights: weights_pair(weights),
        min_pods: canary.min_pods_per_replica_set,
    })
}

/// Argo's `AtDesiredReplicaCountsForCanary`.
fn at_desired(ctx: &Ctx<'_>, canary: &CanaryStrategy, weights: Option<&TrafficWeights>) -> bool {
    let (desired_new, desired_stable) = desired_counts(ctx, canary, weights);
    let input = AtDesiredInput {
        new_rs: ctx.counts(ctx.new_rs),
        stable_rs: ctx.stable_rs.map(|i| StableCounts {
            spec: ctx.rs[i].spec_replicas,
            created: ctx.rs[i].replicas,
        }),
        traffic_routing: canary.traffic_routing.is_some(),
        dynamic_stable_scale: canary.dynamic_stable_scale == Some(true),
        other_available: ctx
            .others
            .iter()
            .map(|&i| ctx.rs[i].available_replicas)
            .sum(),
        threshold: ctx.threshold(),
    };
    at_desired_counts(&input, desired_new, desired_stable)
}

fn halted(ctx: &Ctx<'_>) -> bool {
    ctx.ro.spec.paused == Some(true) || has_pause(&ctx.old, pause_reason::INCONCLUSIVE_ANALYSIS)
}

/// Argo's `reconcileCanaryReplicaSets`; returns whether anything was scaled.
fn reconcile_replica_sets(ctx: &mut Ctx<'_>, canary: &CanaryStrategy) -> bool {
    if halted(ctx) {
        return false;
    }
    ctx.remove_scale_down_deadlines();
    // Stable first: with traffic routing it follows the *previous* status weights, so it lags
    // one reconciliation behind a weight change.
    if ctx.stable_distinct() {
        let old_weights = ctx.old.canary.as_ref().and_then(|c| c.weights.clone());
        let (_, desired) = desired_counts(ctx, canary, old_weights.as_ref());
        let s = ctx.stable_rs.expect("stable exists");
        if ctx.scale(s, desired) {
            return true;
        }
    }
    if reconcile_new_rs(ctx, canary) {
        return true;
    }
    reconcile_others(ctx, canary)
}

fn reconcile_new_rs(ctx: &mut Ctx<'_>, canary: &CanaryStrategy) -> bool {
    let Some(n) = ctx.new_rs else { return false };
    let new_weights = ctx
        .new_status
        .canary
        .as_ref()
        .and_then(|c| c.weights.clone());
    let (count, _) = desired_counts(ctx, canary, new_weights.as_ref());
    scale_new_rs(ctx, n, count)
}

/// The strategy-independent part of Argo's `reconcileNewReplicaSet`: scales the new ReplicaSet
/// to `count`, unless an abort delays its scale-down; then the progressive `workloadRef`
/// scale-down.
pub(crate) fn scale_new_rs(ctx: &mut Ctx<'_>, n: usize, mut count: i32) -> bool {
    if ctx.should_delay_scale_down_on_abort() {
        let (delay, _) = ctx.abort_scale_down_delay();
        if ctx.rs[n]
            .annotations
            .contains_key(labels::SCALE_DOWN_DEADLINE)
        {
            match ctx.time_until_deadline(n) {
                Some(left) if left > Duration::ZERO && left < ctx.snap.config.resync_period => {
                    ctx.requeue_after(left);
                    sync_new_rs_annotation(ctx, n);
                    return false;
                }
                Some(left) if left > Duration::ZERO => {}
                Some(_) => count = 0,
                None => {}
            }
        } else if let Some(delay) = delay {
            sync_new_rs_annotation(ctx, n);
            if let Some(s) = ctx.stable_rs
                && ctx.rs[s].available_replicas >= ctx.replicas()
            {
                ctx.add_scale_down_delay(n, delay);
            }
            return false;
        }
    }
    let scaled = ctx.scale(n, count);
    progressive_workload_scale_down(ctx, n, count);
    scaled
}

fn sync_new_rs_annotation(ctx: &mut Ctx<'_>, n: usize) {
    let replicas = ctx.rs[n].spec_replicas;
    ctx.scale(n, replicas);
}

/// `workloadRef.scaleDown: progressively` (revision 1 only).
fn progressive_workload_scale_down(ctx: &mut Ctx<'_>, n: usize, new_count: i32) {
    let Some(wr) = ctx.ro.spec.workload_ref.as_ref() else {
        return;
    };
    if wr.scale_down.as_deref() != Some("progressively") || ctx.rs_revision(n) != 1 {
        return;
    }
    let target = if ctx.old.phase.as_deref() == Some(crate::phase::phase::HEALTHY) {
        Some(0)
    } else {
        let ready = ctx.old.ready_replicas.unwrap_or(0);
        let old_scale = ctx.rs[n].spec_replicas;
        (ctx.ro.spec.replicas.is_some() && (ready > 0 || old_scale > new_count))
            .then(|| ctx.replicas() - ready)
    };
    if let Some(replicas) = target {
        ctx.emit(Effect::ScaleWorkload {
            api_version: wr.api_version.clone().unwrap_or_default(),
            kind: wr.kind.clone().unwrap_or_default(),
            name: wr.name.clone().unwrap_or_default(),
            replicas,
        });
    }
}

/// Argo's `reconcileOtherReplicaSets` + `scaleDownOldReplicaSetsForCanary`.
fn reconcile_others(ctx: &mut Ctx<'_>, canary: &CanaryStrategy) -> bool {
    let active: Vec<usize> = ctx
        .others
        .iter()
        .copied()
        .filter(|&i| ctx.rs[i].spec_replicas > 0)
        .collect();
    if active.iter().map(|&i| ctx.rs[i].spec_replicas).sum::<i32>() == 0 {
        return false;
    }
    ctx.cleanup_unhealthy(&active);
    let available = ctx.sum(|r| r.available_replicas);
    let min_available = ctx.replicas() - fenceposts(ctx, canary).max_unavailable;
    let mut max_scale_down = available - min_available;
    if max_scale_down <= 0 {
        return false;
    }
    let mut order = active;
    order.sort_by(|&a, &b| {
        let ra = ctx.rs[a].revision();
        let rb = ctx.rs[b].revision();
        rb.cmp(&ra).then(ctx.rs[b].created.cmp(&ctx.rs[a].created))
    });
    let routed = canary.traffic_routing.is_some();
    let dynamic = canary.dynamic_stable_scale == Some(true);
    let mut annotated = 0;
    let mut total = 0;
    for i in order {
        if routed && ctx.is_referenced(i) {
            continue;
        }
        if max_scale_down <= 0 {
            break;
        }
        let spec = ctx.rs[i].spec_replicas;
        if spec == 0 {
            continue;
        }
        let mut desired = 0;
        if !routed {
            if spec > max_scale_down {
                desired = spec - max_scale_down;
            }
        } else if (ctx.fully_promoted() || ctx.has_deadline(i)) && !dynamic {
            let (a, d) = ctx.scale_down_delay_helper(i, annotated, spec);
            annotated = a;
            desired = d;
        }
        if spec == desired {
            continue;
        }
        ctx.scale(i, desired);
        max_scale_down -= spec - desired;
        total += spec - desired;
    }
    total > 0
}

// -------------------------------------------------------------------------------------------
// Services and traffic.

fn ping_pong_canary_service(ctx: &Ctx<'_>, canary: &CanaryStrategy) -> Option<String> {
    let pp = canary.ping_pong.as_ref()?;
    let stable_is_ping = ctx
        .old
        .canary
        .as_ref()
        .and_then(|c| c.stable_ping_pong.as_deref())
        != Some("pong");
    Some(if stable_is_ping {
        pp.pong_service.clone()
    } else {
        pp.ping_service.clone()
    })
}

fn reconcile_ping_pong_service(ctx: &mut Ctx<'_>, canary: &CanaryStrategy) {
    if !ctx.fully_promoted()
        && let Some(svc) = ping_pong_canary_service(ctx, canary)
    {
        ctx.ensure_service_targets(&svc, ctx.new_rs, false);
    }
}

/// Argo's `IsDynamicallyRollingBackToStable`: (rolling back, previous canary hash).
fn dynamic_rollback(ctx: &Ctx<'_>, canary: &CanaryStrategy) -> Option<String> {
    if !ctx.fully_promoted()
        || canary.traffic_routing.is_none()
        || canary.dynamic_stable_scale != Some(true)
    {
        return None;
    }
    let weights = ctx.old.canary.as_ref()?.weights.as_ref()?;
    let current = weights.canary.pod_template_hash.clone().unwrap_or_default();
    let n = ctx.new_rs?;
    if current == ctx.rs[n].hash() || ctx.rs[n].available_replicas >= ctx.replicas() {
        return None;
    }
    Some(current)
}

fn reconcile_services(ctx: &mut Ctx<'_>, canary: &CanaryStrategy) {
    let stable_svc = canary.stable_service.clone().unwrap_or_default();
    let canary_svc = canary.canary_service.clone().unwrap_or_default();
    ctx.ensure_service_targets(&stable_svc, ctx.stable_rs, true);
    if ctx.pause.is_aborted() {
        if canary.traffic_routing.is_none() {
            ctx.ensure_service_targets(&canary_svc, ctx.stable_rs, true);
        }
        // With traffic routing the traffic step points the canary Service back at the stable
        // ReplicaSet. Argo also points it at the new ReplicaSet here first, so that on every
        // pass of an abort the selector flips twice; here it is left alone.
        return;
    }
    if dynamic_rollback(ctx, canary).is_some() {
        return;
    }
    ctx.ensure_service_targets(&canary_svc, ctx.new_rs, true);
}

/// The routers configured, in Argo's order.
fn routers(canary: &CanaryStrategy) -> Vec<String> {
    let Some(tr) = &canary.traffic_routing else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let fixed = [
        ("istio", tr.istio.is_some()),
        ("nginx", tr.nginx.is_some()),
        ("alb", tr.alb.is_some()),
        ("smi", tr.smi.is_some()),
        ("ambassador", tr.ambassador.is_some()),
        ("appMesh", tr.app_mesh.is_some()),
        ("traefik", tr.traefik.is_some()),
        ("apisix", tr.apisix.is_some()),
    ];
    out.extend(
        fixed
            .iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| n.to_string()),
    );
    out.extend(tr.plugins.iter().flatten().map(|(k, _)| k.clone()));
    out
}

/// Argo's `calculateDesiredWeightOnAbortOrStableRollback`.
fn abort_weight(ctx: &Ctx<'_>, canary: &CanaryStrategy) -> i32 {
    let (Some(n), Some(s)) = (ctx.new_rs, ctx.stable_rs) else {
        return 0;
    };
    let _ = n;
    let replicas = ctx.replicas();
    if canary.dynamic_stable_scale != Some(true) || ctx.ro.spec.replicas.is_none() || replicas == 0
    {
        return 0;
    }
    let max = max_weight(canary);
    let desired = desired_canary_weight(ctx, canary);
    let stable_available = ctx.rs[s].available_replicas;
    let stable_weight = max * stable_available / replicas;
    let expected = 0.max(max - stable_weight);
    let Some(current) = ctx
        .old
        .canary
        .as_ref()
        .and_then(|c| c.weights.as_ref())
        .map(|w| w.canary.weight)
    else {
        return expected.max(desired);
    };
    if desired <= 0 {
        return expected.min(current);
    }
    if stable_weight < max - desired {
        return current;
    }
    desired.min(current)
}

fn experiment_destinations(ctx: &Ctx<'_>) -> Vec<WeightDestination> {
    let Some(step) = steps::current_experiment_step(ctx.ro) else {
        return Vec::new();
    };
    let Some(ex) = current_experiment(ctx) else {
        return Vec::new();
    };
    if ex.phase != analysis::phase::RUNNING {
        return Vec::new();
    }
    ex.templates
        .iter()
        .filter_map(|t| {
            let weight = step.templates.iter().find(|s| s.name == t.name)?.weight?;
            Some(WeightDestination {
                weight,
                service_name: Some(t.service_name.clone()),
                pod_template_hash: Some(t.pod_template_hash.clone()),
            })
        })
        .collect()
}

fn current_experiment<'s>(ctx: &Ctx<'s>) -> Option<&'s ExperimentView> {
    let name = current_experiment_name(&ctx.old)?;
    ctx.snap.experiments.iter().find(|e| e.name == name)
}

/// Argo's `checkReplicasAvailable` for the stable side.
fn stable_can_take(ctx: &Ctx<'_>, canary: &CanaryStrategy, weight: i32) -> bool {
    let Some(s) = ctx.stable_rs else { return false };
    let available = ctx.rs[s].available_replicas;
    let desired = weight * ctx.replicas() / max_weight(canary);
    available >= desired || progress_threshold_met(ctx.threshold(), ctx.counts(Some(s)), desired)
}

/// Argo's `reconcileTrafficRouting`. Calls that would not change what the routers were last
/// told (the weights recorded in the status) are skipped unless
/// [`crate::EngineConfig::reassert_traffic`] is set.
fn reconcile_traffic(ctx: &mut Ctx<'_>, canary: &CanaryStrategy) -> Flow {
    let routers = routers(canary);
    let canary_status = ctx.new_status.canary.get_or_insert_with(Default::default);
    canary_status.weights = ctx.old.canary.as_ref().and_then(|c| c.weights.clone());
    if routers.is_empty() {
        ctx.new_status
            .canary
            .get_or_insert_with(Default::default)
            .weights = None;
        return Ok(());
    }
    let max = max_weight(canary);
    let (step, index) = steps::current_step(ctx.ro);
    let step = step.cloned();
    let old_weights = ctx.old.canary.as_ref().and_then(|c| c.weights.clone());
    let mut canary_hash = ctx.hash_of(ctx.new_rs);
    let stable_hash = ctx.hash_of(ctx.stable_rs);
    let mut desired = 0;
    let mut additional = Vec::new();
    let mut remove_routes = false;
    let new_available = ctx.new_rs.map_or(0, |n| ctx.rs[n].available_replicas);
    if let Some(prev) = dynamic_rollback(ctx, canary) {
        desired = abort_weight(ctx, canary);
        canary_hash = prev;
    } else if ctx.fully_promoted() {
        remove_routes = true;
    } else if ctx.pause.is_aborted() {
        desired = abort_weight(ctx, canary);
        if canary.dynamic_stable_scale != Some(true) || desired == 0 {
            let svc = canary.canary_service.clone().unwrap_or_default();
            ctx.ensure_service_targets(&svc, ctx.stable_rs, false);
        }
        remove_routes = true;
    } else if ctx.new_rs.is_none() || new_available == 0 {
        additional = experiment_destinations(ctx);
        remove_routes = true;
    } else if ctx.old.promote_full == Some(true) {
        if canary.dynamic_stable_scale == Some(true) {
            desired = max * new_available / ctx.replicas().max(1);
        } else if let Some(w) = &old_weights {
            desired = w.canary.weight;
        }
        remove_routes = true;
    } else if let Some(index) = index {
        if !at_desired(ctx, canary, None) {
            let all = steps::steps(ctx.ro);
            desired = all[..(index.max(0) as usize).min(all.len())]
                .iter()
                .rev()
                .find_map(|s| s.set_weight)
                .unwrap_or(0);
            additional = experiment_destinations(ctx);
        } else if index as usize != steps::steps(ctx.ro).len() {
            desired = steps::current_set_weight(ctx.ro, ctx.old.abort == Some(true), max);
            additional = experiment_destinations(ctx);
        } else {
            desired = max;
        }
    }
    if !stable_can_take(ctx, canary, max - desired) {
        return Ok(());
    }
    let new_weights = weight_status(
        canary,
        &canary_hash,
        &stable_hash,
        desired,
        &additional,
        max,
    );
    let changed = old_weights
        .as_ref()
        .is_none_or(|w| !same_weights(w, &new_weights));
    let reassert = ctx.snap.config.reassert_traffic || changed;
    let has_managed_routes = canary
        .traffic_routing
        .as_ref()
        .and_then(|t| t.managed_routes.as_ref())
        .is_some_and(|r| !r.is_empty());
    let revision_ok = ctx.revision() > 1;
    for router in &routers {
        if remove_routes && has_managed_routes && reassert {
            ctx.emit(Effect::Traffic {
                router: router.clone(),
                op: TrafficOp::RemoveManagedRoutes,
            });
        }
        if let Some(step) = &step
            && revision_ok
        {
            if let Some(h) = &step.set_header_route {
                ctx.emit(Effect::Traffic {
                    router: router.clone(),
                    op: TrafficOp::SetHeaderRoute(h.clone()),
                });
            }
            if let Some(m) = &step.set_mirror_route {
                ctx.emit(Effect::Traffic {
                    router: router.clone(),
                    op: TrafficOp::SetMirrorRoute(m.clone()),
                });
            }
        }
        if !reassert {
            continue;
        }
        if (ctx.new_rs.is_none() || new_available == 0)
            && old_weights.as_ref().is_some_and(|w| w.canary.weight > 0)
        {
            ctx.emit(Effect::Traffic {
                router: router.clone(),
                op: TrafficOp::SetWeight {
                    weight: desired,
                    additional: additional.clone(),
                },
            });
        }
        ctx.emit(Effect::Traffic {
            router: router.clone(),
            op: TrafficOp::UpdateHash {
                canary_hash: canary_hash.clone(),
                stable_hash: stable_hash.clone(),
                additional: additional.clone(),
            },
        });
        ctx.emit(Effect::Traffic {
            router: router.clone(),
            op: TrafficOp::SetWeight {
                weight: desired,
                additional: additional.clone(),
            },
        });
    }
    let mut weights = old_weights.clone().unwrap_or_else(|| new_weights.clone());
    if changed {
        let mut details = Vec::new();
        match &old_weights {
            None => details.push(format!("to {desired}")),
            Some(prev) if prev.canary.weight != desired => {
                details.push(format!("from {} to {desired}", prev.canary.weight))
            }
            _ => {}
        }
        if let Some(prev) = &old_weights
            && prev.additional != new_weights.additional
        {
            let list: Vec<String> = new_weights
                .additional
                .iter()
                .flatten()
                .map(|d| {
                    format!(
                        "{{{} {} {}}}",
                        d.weight,
                        d.service_name.as_deref().unwrap_or(""),
                        d.pod_template_hash.as_deref().unwrap_or("")
                    )
                })
                .collect();
            details.push(format!("additional: [{}]", list.join(" ")));
        }
        ctx.event(Event::normal(
            reason::TRAFFIC_WEIGHT_UPDATED,
            format!("Traffic weight updated {}", details.join(", ")),
        ));
        weights = new_weights;
    }
    // Weight verification: the answer arrives in the next snapshot.
    let mut verified: Option<bool> = None;
    for router in &routers {
        let report = ctx.snap.routers.iter().find(|r| &r.router == router);
        let Some(report) = report.filter(|r| r.verifies_weight) else {
            continue;
        };
        let this = match &report.last {
            Some(v) if v.weight == desired => v.verified,
            _ => false,
        };
        if !this {
            ctx.emit(Effect::Traffic {
                router: router.clone(),
                op: TrafficOp::VerifyWeight {
                    weight: desired,
                    additional: additional.clone(),
                },
            });
        }
        verified = Some(verified.unwrap_or(true) && this);
    }
    weights.verified = verified;
    ctx.new_status
        .canary
        .get_or_insert_with(Default::default)
        .weights = Some(weights);
    if verified == Some(false) {
        let retry = ctx.snap.config.verify_retry_interval;
        ctx.requeue_after(retry);
        let index_now = ctx.old.current_step_index.unwrap_or(0);
        if desired == max && steps::steps(ctx.ro).len() as i32 >= index_now {
            // Argo fails the sync here so that nothing is scaled down before the final weight
            // is verified: the status is left as it was.
            let status = ctx.old.clone();
            ctx.status_out = Some(status);
            return Err(Halt);
        }
    }
    Ok(())
}

fn same_weights(a: &TrafficWeights, b: &TrafficWeights) -> bool {
    a.canary == b.canary && a.stable == b.stable && a.additional == b.additional
}

/// Argo's `calculateWeightStatus`.
fn weight_status(
    canary: &CanaryStrategy,
    canary_hash: &str,
    stable_hash: &str,
    desired: i32,
    additional: &[WeightDestination],
    max: i32,
) -> TrafficWeights {
    let stable_weight = max - desired - additional.iter().map(|d| d.weight).sum::<i32>();
    TrafficWeights {
        canary: WeightDestination {
            weight: desired,
            service_name: canary.canary_service.clone().filter(|s| !s.is_empty()),
            pod_template_hash: Some(canary_hash.to_string()).filter(|s| !s.is_empty()),
        },
        stable: WeightDestination {
            weight: stable_weight,
            service_name: canary.stable_service.clone().filter(|s| !s.is_empty()),
            pod_template_hash: Some(stable_hash.to_string()).filter(|s| !s.is_empty()),
        },
        additional: (!additional.is_empty()).then(|| additional.to_vec()),
        verified: None,
    }
}

// -------------------------------------------------------------------------------------------
// Experiments.

fn reconcile_experiments(ctx: &mut Ctx<'_>, canary: &CanaryStrategy) {
    let others = other_experiments(ctx);
    let current = current_experiment(ctx).cloned();
    if ctx.pause.is_aborted() || ctx.old.promote_full == Some(true) {
        let all: Vec<ExperimentView> = others
            .iter()
            .map(|&i| ctx.snap.experiments[i].clone())
            .chain(current)
            .collect();
        terminate_experiments(ctx, &all);
        return;
    }
    if has_pause(&ctx.old, pause_reason::INCONCLUSIVE_ANALYSIS) {
        return;
    }
    let (step, index) = steps::current_step(ctx.ro);
    let step_experiment = step.and_then(|s| s.experiment.clone());
    let mut current = current;
    if let Some(ex_step) = &step_experiment {
        if current.is_none() {
            if ctx.stable_rs.is_none() {
                return;
            }
            let Some(created) = build_experiment(ctx, canary, ex_step, index.unwrap_or(0)) else {
                return;
            };
            current = Some(created);
        }
        let ex = current.clone().expect("set above");
        match ex.phase.as_str() {
            analysis::phase::INCONCLUSIVE => {
                ctx.pause.add_pause(pause_reason::INCONCLUSIVE_EXPERIMENT)
            }
            analysis::phase::ERROR | analysis::phase::FAILED => {
                let mut msg = "Experiment analysis phase is error/failed".to_string();
                if !ex.message.is_empty() {
                    msg = format!("{msg}: {}", ex.message);
                }
                ctx.pause.add_abort(msg);
            }
            analysis::phase::SUCCESSFUL => {}
            _ => {
                ctx.new_status
                    .canary
                    .get_or_insert_with(Default::default)
                    .current_experiment = Some(ex.name.clone())
            }
        }
    }
    let mut to_cancel: Vec<ExperimentView> = others
        .iter()
        .map(|&i| ctx.snap.experiments[i].clone())
        .collect();
    if let Some(ex) = current
        && step_experiment.is_none()
    {
        to_cancel.push(ex);
    }
    terminate_experiments(ctx, &to_cancel);
    let hashes = rs_hashes(ctx);
    let limits = history_limits(ctx);
    let deletions = analysis::runs_to_delete(
        to_cancel.iter().map(|e| {
            (
                e.name.as_str(),
                &e.labels,
                e.phase.as_str(),
                e.created,
                e.deleting,
            )
        }),
        &hashes,
        limits.0,
        limits.1,
    );
    for name in deletions {
        ctx.emit(Effect::DeleteExperiment { name });
    }
}

fn terminate_experiments(ctx: &mut Ctx<'_>, exs: &[ExperimentView]) {
    for ex in exs {
        if !ex.terminate && !is_completed(&ex.phase) {
            ctx.emit(Effect::TerminateExperiment {
                name: ex.name.clone(),
            });
        }
    }
}

pub(crate) fn rs_hashes(ctx: &Ctx<'_>) -> BTreeMap<String, bool> {
    ctx.rs
        .iter()
        .filter(|r| !r.hash().is_empty())
        .map(|r| (r.hash().to_string(), r.deleting))
        .collect()
}

pub(crate) fn history_limits(ctx: &Ctx<'_>) -> (i32, i32) {
    match &ctx.ro.spec.analysis {
        Some(a) => (
            a.successful_run_history_limit_or_default(),
            a.unsuccessful_run_history_limit_or_default(),
        ),
        None => (
            rollouts_api::defaults::SUCCESSFUL_RUN_HISTORY_LIMIT,
            rollouts_api::defaults::UNSUCCESSFUL_RUN_HISTORY_LIMIT,
        ),
    }
}

/// Argo's `GetExperimentFromTemplate` + create with collision handling.
fn build_experiment(
    ctx: &mut Ctx<'_>,
    _canary: &CanaryStrategy,
    step: &rollouts_api::RolloutExperimentStep,
    index: i32,
) -> Option<ExperimentView> {
    let pod_hash = ctx.desired_hash.clone();
    let revision = ctx
        .annotations
        .get(labels::REVISION)
        .cloned()
        .unwrap_or_default();
    let base = format!("{}-{}-{}-{}", ctx.name(), pod_hash, revision, index);
    let mut name = base.clone();
    let mut counter = 1;
    while let Some(existing) = ctx.snap.experiments.iter().find(|e| e.name == name) {
        if !is_completed(&existing.phase) && !existing.terminate {
            return Some(existing.clone());
        }
        name = format!("{base}-{counter}");
        counter += 1;
    }
    let mut ex_labels: BTreeMap<String, String> =
        ctx.ro.metadata.labels.clone().unwrap_or_default();
    ex_labels.insert(labels::POD_TEMPLATE_HASH.to_string(), pod_hash.clone());
    if !ctx.snap.config.instance_id.is_empty() {
        ex_labels.insert(
            labels::CONTROLLER_INSTANCE_ID.to_string(),
            ctx.snap.config.instance_id.clone(),
        );
    }
    let mut templates = Vec::new();
    for t in &step.templates {
        let source = if t.spec_ref == "canary" {
            ctx.new_rs
        } else {
            ctx.stable_rs
        };
        let src = source?;
        let rs = &ctx.rs[src];
        let mut template: rollouts_api::PodTemplateSpec =
            ctx.template(src).cloned().unwrap_or_default().into();
        let mut selector = t.selector.clone().unwrap_or_else(|| {
            k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                match_labels: Some(rs.labels.clone()).filter(|_| false).or_else(|| {
                    let mut m = ctx
                        .ro
                        .spec
                        .selector
                        .clone()
                        .and_then(|s| s.match_labels)
                        .unwrap_or_default();
                    m.insert(labels::POD_TEMPLATE_HASH.to_string(), rs.hash().to_string());
                    Some(m)
                }),
                match_expressions: None,
            }
        });
        if let Some(md) = &t.metadata {
            let meta = template.metadata.get_or_insert_with(Default::default);
            for (k, v) in md.labels.iter().flatten() {
                meta.labels
                    .get_or_insert_with(Default::default)
                    .insert(k.clone(), v.clone());
                selector
                    .match_labels
                    .get_or_insert_with(Default::default)
                    .insert(k.clone(), v.clone());
            }
            for (k, v) in md.annotations.iter().flatten() {
                meta.annotations
                    .get_or_insert_with(Default::default)
                    .insert(k.clone(), v.clone());
            }
        }
        templates.push(TemplateSpec {
            name: t.name.clone(),
            replicas: t.replicas,
            min_ready_seconds: Some(rs.min_ready_seconds).filter(|m| *m != 0),
            selector,
            template,
            service: (t.weight.is_some() || t.service.is_some()).then(|| TemplateService {
                name: t
                    .service
                    .as_ref()
                    .and_then(|s| s.name.clone())
                    .filter(|n| !n.is_empty()),
            }),
        });
    }
    let stable_hash = ctx.hash_of(ctx.stable_rs);
    let latest_hash = ctx.hash_of(ctx.new_rs);
    let analyses: Vec<ExperimentAnalysisTemplateRef> = step
        .analyses
        .iter()
        .flatten()
        .map(|a| ExperimentAnalysisTemplateRef {
            name: a.name.clone(),
            template_name: a.template_name.clone(),
            cluster_scope: a.cluster_scope,
            args: Some(build_args(
                a.args.as_deref().unwrap_or(&[]),
                &stable_hash,
                &latest_hash,
                ctx.ro,
            ))
            .filter(|v| !v.is_empty()),
            required_for_completion: a.required_for_completion,
        })
        .collect();
    let mut ex = Experiment::new(
        &name,
        ExperimentSpec {
            templates,
            duration: step.duration.clone(),
            progress_deadline_seconds: ctx.ro.spec.progress_deadline_seconds,
            analyses: (!analyses.is_empty()).then_some(analyses),
            scale_down_delay_seconds: step.scale_down_delay_seconds,
            dry_run: step.dry_run.clone(),
            analysis_run_metadata: step.analysis_run_metadata.clone(),
            ..Default::default()
        },
    );
    ex.metadata.namespace = ctx.ro.metadata.namespace.clone();
    ex.metadata.labels = Some(ex_labels.clone());
    ex.metadata.annotations = Some(BTreeMap::from([(labels::REVISION.to_string(), revision)]));
    ex.metadata.owner_references = Some(vec![ctx.owner_reference()]);
    ctx.emit(Effect::CreateExperiment(Box::new(ex)));
    ctx.event(Event::normal(
        "ExperimentCreated",
        format!("Created Experiment '{name}'"),
    ));
    Some(ExperimentView {
        name,
        labels: ex_labels,
        created: ctx.now,
        ..Default::default()
    })
}

// -------------------------------------------------------------------------------------------
// Analysis.

pub(crate) fn find_run<'s>(
    ctx: &Ctx<'s>,
    status: Option<&RolloutAnalysisRunStatus>,
) -> Option<&'s AnalysisRunView> {
    let name = &status?.name;
    ctx.snap.analysis_runs.iter().find(|r| &r.name == name)
}

pub(crate) fn run_status(run: &AnalysisRunView) -> RolloutAnalysisRunStatus {
    RolloutAnalysisRunStatus {
        name: run.name.clone(),
        status: run.phase.clone(),
        message: Some(run.message.clone()).filter(|m| !m.is_empty()),
    }
}

pub(crate) fn terminate_run(ctx: &mut Ctx<'_>, run: Option<&AnalysisRunView>) {
    if let Some(run) = run
        && !run.terminate
        && !is_completed(&run.phase)
    {
        ctx.emit(Effect::TerminateAnalysisRun {
            name: run.name.clone(),
        });
    }
}

/// Argo's `isRollback`/`isFastRollback`/`isRollbackWithinWindow`.
pub(crate) fn rollback_within_window(ctx: &Ctx<'_>) -> bool {
    let (Some(n), Some(s)) = (ctx.new_rs, ctx.stable_rs) else {
        return false;
    };
    let (new_created, stable_created) = (ctx.rs[n].created, ctx.rs[s].created);
    if new_created >= stable_created {
        return false;
    }
    let Some(window) = ctx
        .ro
        .spec
        .rollback_window
        .as_ref()
        .and_then(|w| w.revisions)
    else {
        return false;
    };
    if window <= 0 {
        return false;
    }
    let size = ctx
        .rs
        .iter()
        .filter(|r| {
            r.annotations
                .get(labels::EXPERIMENT_NAME)
                .is_none_or(|v| v.is_empty())
        })
        .filter(|r| r.created < stable_created && new_created < r.created)
        .count() as i32;
    size < window
}

pub(crate) fn fast_rollback(ctx: &Ctx<'_>) -> bool {
    let (Some(n), Some(_)) = (ctx.new_rs, ctx.stable_rs) else {
        return false;
    };
    let hash = ctx.rs[n].hash();
    let to_stable = ctx.old_stable() == hash;
    let within_delay = ctx.new_rs_within_delay && ctx.ro.spec.blue_green().is_some();
    let is_rollback =
        to_stable || ctx.rs[n].created < ctx.rs[ctx.stable_rs.expect("checked")].created;
    is_rollback && (rollback_within_window(ctx) || within_delay || to_stable)
}

pub(crate) fn needs_new_run(ctx: &Ctx<'_>, current: Option<&AnalysisRunView>) -> bool {
    let Some(current) = current else { return true };
    if ctx.old.controller_pause == Some(true)
        && !has_pause(&ctx.old, pause_reason::CANARY_PAUSE_STEP)
        && !has_pause(&ctx.old, pause_reason::BLUE_GREEN_PAUSE)
    {
        return current.phase == analysis::phase::INCONCLUSIVE;
    }
    ctx.old.aborted_at.is_some()
}

pub(crate) fn create_run(
    ctx: &mut Ctx<'_>,
    analysis_spec: &rollouts_api::RolloutAnalysis,
    kind: AnalysisRunKind,
) -> Option<AnalysisRunView> {
    let pod_hash = ctx.hash_of(ctx.new_rs);
    if pod_hash.is_empty() {
        return None;
    }
    let revision = ctx
        .annotations
        .get(labels::REVISION)
        .cloned()
        .unwrap_or_default();
    let mut base = format!("{}-{}-{}", ctx.name(), pod_hash, revision);
    match kind {
        AnalysisRunKind::Step(i) => base = format!("{base}-{i}"),
        AnalysisRunKind::PrePromotion => base = format!("{base}-pre"),
        AnalysisRunKind::PostPromotion => base = format!("{base}-post"),
        AnalysisRunKind::Background => {}
    }
    let name = match free_name(&base, &ctx.snap.analysis_runs, ".") {
        Ok(n) => n,
        Err(existing) => {
            return ctx
                .snap
                .analysis_runs
                .iter()
                .find(|r| r.name == existing)
                .cloned();
        }
    };
    let mut run_labels_ = run_labels(kind, &pod_hash, &ctx.snap.config.instance_id);
    if let Some(md) = &analysis_spec.analysis_run_metadata {
        run_labels_.extend(md.labels.clone().unwrap_or_default());
    }
    run_labels_.extend(
        ctx.ro
            .spec
            .selector
            .clone()
            .and_then(|s| s.match_labels)
            .unwrap_or_default(),
    );
    let mut annotations = BTreeMap::from([(labels::REVISION.to_string(), revision)]);
    if let Some(md) = &analysis_spec.analysis_run_metadata {
        annotations.extend(md.annotations.clone().unwrap_or_default());
    }
    let stable_hash = ctx.hash_of(ctx.stable_rs);
    let args = build_args(
        analysis_spec.args.as_deref().unwrap_or(&[]),
        &stable_hash,
        &pod_hash,
        ctx.ro,
    );
    ctx.emit(Effect::CreateAnalysisRun(Box::new(AnalysisRunRequest {
        name: name.clone(),
        kind,
        labels: run_labels_.clone(),
        annotations,
        analysis: analysis_spec.clone(),
        args,
        owner_name: ctx.name().to_string(),
        owner_uid: ctx.ro.metadata.uid.clone().unwrap_or_default(),
    })));
    Some(AnalysisRunView {
        name,
        labels: run_labels_,
        created: ctx.now,
        ..Default::default()
    })
}

fn evaluate_run(ctx: &mut Ctx<'_>, run: &AnalysisRunView, what: &str) {
    match run.phase.as_str() {
        analysis::phase::INCONCLUSIVE => ctx.pause.add_pause(pause_reason::INCONCLUSIVE_ANALYSIS),
        analysis::phase::ERROR | analysis::phase::FAILED => {
            let mut msg = format!("{what} analysis phase error/failed");
            if !run.message.is_empty() {
                msg = format!("{msg}: {}", run.message);
            }
            ctx.pause.add_abort(msg);
        }
        _ => {}
    }
}

fn reconcile_step_run(
    ctx: &mut Ctx<'_>,
    current: Option<AnalysisRunView>,
) -> Option<AnalysisRunView> {
    let (step, index) = steps::current_step(ctx.ro);
    if ctx
        .old
        .pause_conditions
        .as_ref()
        .is_some_and(|p| !p.is_empty())
        || ctx.old.abort == Some(true)
    {
        return current;
    }
    let analysis_step = step.and_then(|s| s.analysis.clone());
    let from_previous = analysis_step.is_some()
        && current.as_ref().is_some_and(|r| {
            r.labels.get(labels::STEP_INDEX).map(String::as_str)
                != index.map(|i| i.to_string()).as_deref()
        });
    let has_templates = analysis_step
        .as_ref()
        .is_some_and(|a| a.templates.as_ref().is_some_and(|t| !t.is_empty()));
    if !has_templates || index.is_none() || from_previous {
        terminate_run(ctx, current.as_ref());
        return None;
    }
    let (analysis_step, index) = (analysis_step.expect("checked"), index.expect("checked"));
    if needs_new_run(ctx, current.as_ref()) {
        return create_run(ctx, &analysis_step, AnalysisRunKind::Step(index));
    }
    let current = current.expect("needs_new_run is true without a run");
    evaluate_run(ctx, &current, "Step-based");
    Some(current)
}

fn reconcile_background_run(
    ctx: &mut Ctx<'_>,
    canary: &CanaryStrategy,
    current: Option<AnalysisRunView>,
) -> Option<AnalysisRunView> {
    let Some(bg) = canary
        .analysis
        .as_ref()
        .filter(|a| a.templates.as_ref().is_some_and(|t| !t.is_empty()))
    else {
        terminate_run(ctx, current.as_ref());
        return None;
    };
    let before_start = bg.starting_step.is_some_and(
        |start| matches!(steps::current_step(ctx.ro), (Some(_), Some(i)) if i < start),
    );
    if ctx.fully_promoted()
        || ctx.old_stable().is_empty()
        || ctx.old_current().is_empty()
        || before_start
    {
        return None;
    }
    if has_pause(&ctx.old, pause_reason::INCONCLUSIVE_ANALYSIS) {
        return current;
    }
    if needs_new_run(ctx, current.as_ref()) {
        return create_run(ctx, &bg.analysis(), AnalysisRunKind::Background);
    }
    let current = current.expect("needs_new_run is true without a run");
    evaluate_run(ctx, &current, "Background");
    Some(current)
}

/// Argo's `reconcileAnalysisRuns` for a canary.
fn reconcile_analysis(ctx: &mut Ctx<'_>, canary: &CanaryStrategy) {
    let old_canary = ctx.old.canary.clone().unwrap_or_default();
    let step_run = find_run(ctx, old_canary.current_step_analysis_run_status.as_ref()).cloned();
    let bg_run = find_run(
        ctx,
        old_canary.current_background_analysis_run_status.as_ref(),
    )
    .cloned();
    let cancel = ctx.fully_promoted()
        || ctx.pause.is_aborted()
        || ctx.old.promote_full == Some(true)
        || fast_rollback(ctx)
        || ctx.old_stable().is_empty();
    let (new_step, new_bg) = if cancel {
        terminate_run(ctx, step_run.as_ref());
        terminate_run(ctx, bg_run.as_ref());
        (None, None)
    } else {
        let s = reconcile_step_run(ctx, step_run);
        let b = reconcile_background_run(ctx, canary, bg_run);
        (s, b)
    };
    let cs = ctx.new_status.canary.get_or_insert_with(Default::default);
    cs.current_step_analysis_run_status = new_step.as_ref().map(run_status);
    cs.current_background_analysis_run_status = new_bg.as_ref().map(run_status);
    let current_names: Vec<&str> = [new_step.as_ref(), new_bg.as_ref()]
        .into_iter()
        .flatten()
        .map(|r| r.name.as_str())
        .collect();
    let others: Vec<AnalysisRunView> = other_runs(ctx)
        .into_iter()
        .map(|i| ctx.snap.analysis_runs[i].clone())
        .filter(|r| !current_names.contains(&r.name.as_str()))
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
        old_canary.current_step_analysis_run_status.as_ref(),
        new_step.as_ref(),
        "Step",
    );
    emit_run_event(
        ctx,
        old_canary.current_background_analysis_run_status.as_ref(),
        new_bg.as_ref(),
        "Background",
    );
}

/// Argo's `emitAnalysisRunStatusChanges`.
pub(crate) fn emit_run_event(
    ctx: &mut Ctx<'_>,
    prev: Option<&RolloutAnalysisRunStatus>,
    run: Option<&AnalysisRunView>,
    kind: &str,
) {
    let Some(run) = run else { return };
    if run.phase.is_empty() {
        return;
    }
    let changed = match prev {
        None => true,
        Some(p) => p.name == run.name && p.status != run.phase,
    };
    if !changed {
        return;
    }
    let prev_str = prev.map_or("NoPreviousStatus".to_string(), |p| p.status.clone());
    let msg = format!(
        "{kind} Analysis Run '{}' Status New: '{}' Previous: '{prev_str}'",
        run.name, run.phase
    );
    let reason_ = format!("AnalysisRun{}", run.phase);
    ctx.event(
        if matches!(
            run.phase.as_str(),
            analysis::phase::FAILED | analysis::phase::ERROR
        ) {
            Event::warning(reason_, msg)
        } else {
            Event::normal(reason_, msg)
        },
    );
}

// -------------------------------------------------------------------------------------------
// Pause and plugin steps.

/// Argo's `reconcileCanaryPause`; returns whether the rollout waits on a pause step.
fn reconcile_pause(ctx: &mut Ctx<'_>) -> bool {
    if ctx.ro.spec.paused == Some(true) || ctx.old.promote_full == Some(true) {
        return false;
    }
    let (step, _) = steps::current_step(ctx.ro);
    let Some(pause) = step.and_then(|s| s.pause.as_ref()) else {
        return false;
    };
    let Some(cond) = crate::pause::condition(&ctx.old, pause_reason::CANARY_PAUSE_STEP).cloned()
    else {
        if ctx.old.controller_pause != Some(true) {
            ctx.pause.add_pause(pause_reason::CANARY_PAUSE_STEP);
        }
        return true;
    };
    if pause.duration.is_none() {
        return true;
    }
    let secs = steps::pause_duration_seconds(pause.duration.as_ref());
    ctx.requeue_at(cond.start_time.0 + SignedDuration::from_secs(secs));
    true
}

/// Step plugins are not part of this build: a plugin step aborts the rollout with a message
/// that says so, rather than waiting forever.
fn reconcile_plugin_step(ctx: &mut Ctx<'_>) {
    let (step, index) = steps::current_step(ctx.ro);
    if let Some(p) = step.and_then(|s| s.plugin.as_ref())
        && ctx.ro.spec.paused != Some(true)
        && !ctx.pause.is_aborted()
    {
        ctx.pause.add_abort(format!(
            "Step plugin {} (step {}) is not supported in this build",
            p.name,
            index.unwrap_or(0)
        ));
    }
}

/// Argo's `completedCurrentCanaryStep`.
fn completed_current_step(ctx: &Ctx<'_>, canary: &CanaryStrategy) -> bool {
    if ctx.ro.spec.paused == Some(true) {
        return false;
    }
    let (step, _) = steps::current_step(ctx.ro);
    let Some(step) = step else { return false };
    let weights = ctx
        .new_status
        .canary
        .as_ref()
        .and_then(|c| c.weights.clone());
    if let Some(pause) = &step.pause {
        let cond = crate::pause::condition(&ctx.old, pause_reason::CANARY_PAUSE_STEP);
        if ctx.old.controller_pause == Some(true) && cond.is_none() {
            return true;
        }
        if let (Some(_), Some(cond)) = (&pause.duration, cond) {
            let secs = steps::pause_duration_seconds(pause.duration.as_ref());
            return ctx.now > cond.start_time.0 + SignedDuration::from_secs(secs);
        }
        return false;
    }
    if step.set_canary_scale.is_some() {
        return at_desired(ctx, canary, weights.as_ref());
    }
    if step.set_weight.is_some() {
        return at_desired(ctx, canary, weights.as_ref())
            && weights.as_ref().and_then(|w| w.verified) != Some(false);
    }
    if step.experiment.is_some() {
        return current_experiment(ctx).is_some_and(|e| e.phase == analysis::phase::SUCCESSFUL);
    }
    if step.analysis.is_some() {
        let run = find_run(
            ctx,
            ctx.old
                .canary
                .as_ref()
                .and_then(|c| c.current_step_analysis_run_status.as_ref()),
        );
        return run.is_some_and(|r| r.phase == analysis::phase::SUCCESSFUL);
    }
    step.set_header_route.is_some() || step.set_mirror_route.is_some()
}

// -------------------------------------------------------------------------------------------
// Status.

/// Argo's `shouldFullPromote` for a canary.
fn should_full_promote(ctx: &Ctx<'_>, canary: &CanaryStrategy) -> Option<String> {
    if ctx.stable_rs.is_none() {
        return Some("Initial deploy".to_string());
    }
    if ctx.pause.is_aborted() {
        return None;
    }
    let n = ctx.new_rs?;
    let replicas = ctx.replicas();
    if ctx.rs[n].available_replicas < replicas
        && !progress_threshold_met(ctx.threshold(), ctx.counts(Some(n)), replicas)
    {
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
    let count = canary.steps().len() as i32;
    let (_, index) = steps::current_step(ctx.ro);
    (count == 0 || index == Some(count)).then(|| format!("Completed all {count} canary steps"))
}

/// Argo's `promoteStable`.
fn promote_stable(
    ctx: &mut Ctx<'_>,
    ns: &mut RolloutStatus,
    canary: &CanaryStrategy,
    reason_: &str,
) {
    ctx.pause.clear_pauses();
    ctx.pause.remove_abort();
    ns.promote_full = None;
    let count = canary.steps().len() as i32;
    ns.current_step_index = (count > 0).then_some(count);
    let revision = ctx.revision();
    if ns.stable_rs != ns.current_pod_hash {
        if canary.ping_pong.is_some() {
            let stable_is_ping = ctx
                .old
                .canary
                .as_ref()
                .and_then(|c| c.stable_ping_pong.as_deref())
                != Some("pong");
            ns.canary
                .get_or_insert_with(Default::default)
                .stable_ping_pong = Some(if stable_is_ping { "pong" } else { "ping" }.to_string());
        }
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

/// Argo's `resetRolloutStatus`.
fn reset_status(ctx: &mut Ctx<'_>, ns: &mut RolloutStatus) {
    ctx.pause.clear_pauses();
    ctx.pause.remove_abort();
    ns.restarted_at = ctx.ro.spec.restart_at.clone();
    ns.promote_full = None;
    ns.blue_green = None;
    let cs = ns.canary.get_or_insert_with(Default::default);
    cs.current_step_analysis_run_status = None;
    cs.current_background_analysis_run_status = None;
    cs.step_plugin_statuses = None;
    ns.current_step_index = (!steps::steps(ctx.ro).is_empty()).then_some(0);
}

/// Argo's `syncRolloutStatusCanary`.
fn sync_status(ctx: &mut Ctx<'_>, canary: &CanaryStrategy) -> Flow {
    let mut ns = ctx.base_status();
    ns.available_replicas = Some(ctx.sum(|r| r.available_replicas));
    ns.hpa_replicas = Some(ctx.sum(|r| r.replicas));
    ns.selector = Some(crate::context::format_label_selector(
        ctx.ro.spec.selector.as_ref(),
    ));
    let old_canary = ctx.old.canary.clone().unwrap_or_default();
    {
        let cs = ns.canary.get_or_insert_with(Default::default);
        cs.stable_ping_pong = old_canary.stable_ping_pong.clone();
        cs.step_plugin_statuses = old_canary.step_plugin_statuses.clone();
    }
    let (step, index) = steps::current_step(ctx.ro);
    let step = step.cloned();
    let mut index = index;
    ns.stable_rs = ctx.old.stable_rs.clone();
    ns.current_step_hash = Some(ctx.step_hash.clone());
    let count = canary.steps().len() as i32;

    if template_or_steps_changed(ctx) {
        reset_status(ctx, &mut ns);
        if let Some(n) = ctx.new_rs
            && count > 0
        {
            if ctx.old_stable() == ctx.rs[n].hash() {
                ctx.event(Event::normal("SkipSteps", "Rollback to stable ReplicaSets"));
                ns.current_step_index = Some(count);
            } else if rollback_within_window(ctx) && ctx.rs[n].spec_replicas > 0 {
                ctx.event(Event::normal(
                    "SkipSteps",
                    "Rollback to active ReplicaSets within RollbackWindow",
                ));
                ns.current_step_index = Some(count);
            }
        }
        return ctx.persist(ns);
    }

    if ctx.old.promote_full == Some(true) || rollback_within_window(ctx) {
        ctx.pause.clear_pauses();
        ctx.pause.remove_abort();
        if count > 0 {
            index = Some(count);
        }
    }

    if let Some(reason_) = should_full_promote(ctx, canary) {
        promote_stable(ctx, &mut ns, canary, &reason_);
        return ctx.persist(ns);
    }

    if ctx.pause.is_aborted() {
        if count > 0 {
            ns.current_step_index = Some(if ns.stable_rs == ns.current_pod_hash {
                count
            } else {
                0
            });
        }
        return ctx.persist(ns);
    }

    // Argo increments the index even after the full-promotion branch above set it to the step
    // count, leaving `len + 1` for a pass; the index is capped at the step count here.
    if let Some(step) = step
        && index != Some(count)
        && completed_current_step(ctx, canary)
    {
        let next = index.unwrap_or(0) + 1;
        index = Some(next);
        ns.canary
            .get_or_insert_with(Default::default)
            .current_step_analysis_run_status = None;
        ctx.event(Event::normal(
            reason::ROLLOUT_STEP_COMPLETED,
            format!(
                "Rollout step {next}/{count} completed ({})",
                steps::describe(&step)
            ),
        ));
        ctx.pause.remove_pause(pause_reason::CANARY_PAUSE_STEP);
    }
    ns.current_step_index = index;
    ctx.persist(ns)
}
