//! `spec.restartAt`: evicting the pods created before it, a few at a time
//! (Argo's `rollout/restart.go`, `argo-core.md` §2.9).

use std::time::Duration;

use crate::context::Ctx;
use crate::plan::Effect;

/// Evicts what may be evicted now; returns the number of pods evicted. Once no pod older than
/// `restartAt` is left, `status.restartedAt` is set.
pub(crate) fn reconcile(ctx: &mut Ctx<'_>) -> usize {
    let Some(restart_at) = ctx.ro.spec.restart_at.clone() else {
        return 0;
    };
    if ctx.now < restart_at.0 {
        ctx.requeue_at(restart_at.0);
        return 0;
    }
    if ctx.old.restarted_at.as_ref() == Some(&restart_at) || ctx.now <= restart_at.0 {
        return 0;
    }
    let uids: Vec<&str> = ctx
        .rs
        .iter()
        .map(|r| r.uid.as_str())
        .filter(|u| !u.is_empty())
        .collect();
    let pods: Vec<_> = ctx
        .snap
        .pods
        .iter()
        .filter(|p| uids.contains(&p.owner_uid.as_str()))
        .cloned()
        .collect();
    let total: i32 = ctx.rs.iter().map(|r| r.spec_replicas).sum();
    let replicas = ctx.replicas();
    let available = pods.iter().filter(|p| p.available && !p.deleting).count() as i32;
    let max_unavailable = match ctx.ro.spec.canary() {
        Some(c) => crate::canary::fenceposts(ctx, c).max_unavailable,
        None => ctx.ro.spec.blue_green().map_or(0, |b| {
            crate::intstr::bluegreen_max_unavailable(
                &crate::steps::int_or_str(&b.max_unavailable_or_default()),
                replicas,
            )
        }),
    };
    let concurrent = max_unavailable.max(1);
    let mut can_restart = available - (replicas.max(total) - concurrent);
    let mut needs = 0;
    let mut restarted = 0;
    for pod in &pods {
        if pod.created >= restart_at.0 {
            continue;
        }
        needs += 1;
        if can_restart <= 0 || pod.deleting {
            continue;
        }
        ctx.emit(Effect::EvictPod {
            name: pod.name.clone(),
        });
        can_restart -= 1;
        restarted += 1;
    }
    if needs - restarted != 0 {
        ctx.requeue_after(Duration::from_secs(30));
    } else {
        ctx.new_status.restarted_at = Some(restart_at);
    }
    restarted
}
