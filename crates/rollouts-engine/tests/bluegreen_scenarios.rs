//! Blue-green scenario tests: Rollouts driven through the in-memory simulator from creation
//! through an update with preview, manual and automatic promotion, `previewReplicaCount`, pre-
//! and post-promotion analysis, abort/retry, full promotion, fast-track rollback, scale-down
//! delays, HPA scaling and restarts.

use std::time::Duration;

use rollouts_api::labels;
use rollouts_engine::{AnalysisRunKind, Effect};
use rollouts_test_support::fixtures::RolloutBuilder;
use rollouts_test_support::sim::World;
use serde_json::json;

const TICK: Duration = Duration::from_secs(1);

fn selector(w: &World, service: &str) -> String {
    w.services
        .iter()
        .find(|s| s.name == service)
        .map(|s| s.selected_hash().to_string())
        .unwrap_or_default()
}

fn active(w: &World) -> String {
    selector(w, "web-active")
}

fn preview(w: &World) -> String {
    selector(w, "web-preview")
}

fn hash_of(w: &World, revision: i64) -> String {
    w.rs_by_revision(revision)
        .map(|r| r.hash().to_string())
        .unwrap_or_default()
}

/// Healthy, the engine has seen the current spec, and the newest revision is stable and active.
fn healthy(w: &World) -> bool {
    let s = w.status();
    let newest = w
        .replica_sets
        .iter()
        .max_by_key(|r| r.revision())
        .map(|r| r.hash().to_string());
    w.phase() == "Healthy"
        && s.observed_generation == w.rollout.metadata.generation.map(|g| g.to_string())
        && s.current_pod_hash.is_some()
        && s.current_pod_hash == s.stable_rs
        && newest == s.stable_rs
        && Some(active(w)) == s.stable_rs
}

fn paused(w: &World) -> bool {
    w.phase() == "Paused"
}

/// A few more passes and ticks (what follows a promotion: deadlines, metadata).
fn settle(w: &mut World, passes: usize) {
    for _ in 0..passes {
        w.reconcile();
        w.tick(TICK);
    }
}

fn condition(w: &World, kind: &str) -> Option<rollouts_api::RolloutCondition> {
    w.status()
        .conditions
        .into_iter()
        .flatten()
        .find(|c| c.type_ == kind)
}

fn deployed(builder: RolloutBuilder) -> World {
    let mut w = World::new(builder.build());
    assert!(
        w.run_until(30, TICK, healthy),
        "initial deploy did not become healthy: {:?}",
        w.status()
    );
    w
}

fn web() -> RolloutBuilder {
    RolloutBuilder::blue_green("web").replicas(3)
}

fn analysis() -> serde_json::Value {
    json!({"templates": [{"templateName": "check"}]})
}

#[test]
fn initial_deploy_points_both_services_and_becomes_healthy() {
    let w = deployed(web());
    let s = w.status();
    assert_eq!(w.replica_sets.len(), 1);
    let hash = hash_of(&w, 1);
    assert_eq!(active(&w), hash);
    assert_eq!(preview(&w), hash);
    let b = s.blue_green.clone().unwrap();
    assert_eq!(b.active_selector.as_deref(), Some(hash.as_str()));
    assert_eq!(b.preview_selector.as_deref(), Some(hash.as_str()));
    assert_eq!(s.stable_rs.as_deref(), Some(hash.as_str()));
    assert_eq!(s.current_step_index, None);
    assert_eq!(s.available_replicas, Some(3));
    assert_eq!(s.hpa_replicas, Some(3));
    assert_eq!(
        s.selector.as_deref(),
        Some(format!("app=web,rollouts-pod-template-hash={hash}").as_str())
    );
    for (kind, status) in [
        ("Available", "True"),
        ("Completed", "True"),
        ("Healthy", "True"),
        ("Progressing", "True"),
    ] {
        assert_eq!(condition(&w, kind).unwrap().status, status, "{kind}");
    }
    let reasons = w.event_reasons();
    assert!(reasons.contains(&"SwitchService".to_string()));
    assert!(reasons.contains(&"RolloutCompleted".to_string()));
    let completed = w
        .events
        .iter()
        .find(|e| e.reason == "RolloutCompleted")
        .unwrap();
    assert_eq!(
        completed.message,
        format!("Rollout completed update to revision 1 ({hash}): Initial deploy")
    );
    // The services are adopted with the managed-by annotation.
    for s in &w.services {
        assert_eq!(
            s.annotations
                .get(labels::MANAGED_BY_ROLLOUTS)
                .map(String::as_str),
            Some("web")
        );
    }
}

#[test]
fn update_switches_preview_first_then_active_and_scales_old_down_after_delay() {
    let mut w = deployed(web());
    w.set_image("nginx:2");
    // The new ReplicaSet is created and the preview Service points at it before any pod is up.
    w.reconcile();
    w.reconcile();
    let h2 = hash_of(&w, 2);
    assert!(!h2.is_empty());
    assert_eq!(preview(&w), h2);
    assert_eq!(active(&w), hash_of(&w, 1));
    // Until the new pods are all available the active Service stays on revision 1.
    let mut switched_at_available = None;
    for _ in 0..20 {
        w.reconcile();
        if active(&w) == h2 && switched_at_available.is_none() {
            switched_at_available = Some(w.counts(2).1);
        }
        w.tick(TICK);
    }
    assert_eq!(
        switched_at_available,
        Some(3),
        "active switched before saturation"
    );
    let s = w.status();
    assert_eq!(s.stable_rs.as_deref(), Some(h2.as_str()));
    assert!(
        w.events.iter().any(|e| e.reason == "RolloutCompleted"
            && e.message.ends_with("Completed blue-green update"))
    );
    // Revision 1 is kept up with a scale-down deadline 30 s out.
    let old = w.rs_by_revision(1).unwrap();
    assert_eq!(old.spec_replicas, 3);
    assert!(old.annotations.contains_key(labels::SCALE_DOWN_DEADLINE));
    assert!(w.run_until(40, TICK, |w| w.counts(1).0 == 0));
    assert!(healthy(&w));
    assert_eq!(w.counts(2), (3, 3));
}

#[test]
fn scale_down_deadline_requeues_at_the_deadline() {
    let mut w = deployed(web().blue_green_field("scaleDownDelaySeconds", json!(90)));
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, |w| w.status().stable_rs == Some(hash_of(w, 2))));
    let plan = w.reconcile();
    let old = w.rs_by_revision(1).unwrap();
    let deadline: jiff::Timestamp = old.annotations[labels::SCALE_DOWN_DEADLINE]
        .parse()
        .unwrap();
    let left = deadline.duration_since(w.now).as_secs();
    assert!((85..=90).contains(&left), "deadline {left}s out");
    assert!(plan.requeue_after.is_some_and(|r| r.as_secs() <= 90));
    // Still up at 80 s, gone after 90 s.
    w.tick(Duration::from_secs(80));
    w.reconcile();
    assert_eq!(w.counts(1).0, 3);
    w.tick(Duration::from_secs(15));
    w.reconcile();
    assert_eq!(w.counts(1).0, 0);
}

#[test]
fn manual_promotion_waits_in_blue_green_pause() {
    let mut w = deployed(web().blue_green_field("autoPromotionEnabled", json!(false)));
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, paused), "{:?}", w.status());
    let s = w.status();
    assert_eq!(
        s.pause_conditions.as_ref().unwrap()[0].reason,
        "BlueGreenPause"
    );
    assert_eq!(s.controller_pause, Some(true));
    assert_eq!(s.message.as_deref(), Some("BlueGreenPause"));
    let h2 = hash_of(&w, 2);
    assert_eq!(preview(&w), h2);
    assert_eq!(active(&w), hash_of(&w, 1));
    assert_eq!(w.counts(2), (3, 3));
    // Stays paused.
    for _ in 0..10 {
        w.reconcile();
        w.tick(TICK);
    }
    assert!(paused(&w));
    assert_eq!(active(&w), hash_of(&w, 1));
    assert!(w.event_reasons().contains(&"RolloutPaused".to_string()));
    w.promote();
    assert!(w.run_until(20, TICK, healthy), "{:?}", w.status());
    assert_eq!(active(&w), h2);
}

#[test]
fn auto_promotion_after_auto_promotion_seconds() {
    let mut w = deployed(web().blue_green_field("autoPromotionSeconds", json!(30)));
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, paused));
    let start = w.status().pause_conditions.unwrap()[0].start_time.0;
    // The first pass after the pause records the Paused condition; the next arms the timer.
    let requeue = (0..3)
        .find_map(|_| w.reconcile().requeue_after)
        .expect("timer armed")
        .as_secs();
    assert!((25..=30).contains(&requeue), "requeue after {requeue}s");
    w.tick(Duration::from_secs(20));
    w.reconcile();
    assert!(paused(&w));
    assert_eq!(active(&w), hash_of(&w, 1));
    w.tick(Duration::from_secs(11));
    assert!(w.now > start + jiff::SignedDuration::from_secs(30));
    w.reconcile();
    assert_eq!(active(&w), hash_of(&w, 2), "{:?}", w.status());
    assert!(w.run_until(10, TICK, healthy));
}

#[test]
fn preview_replica_count_scales_up_after_the_pause() {
    let mut w = deployed(
        web()
            .replicas(5)
            .blue_green_field("previewReplicaCount", json!(1))
            .blue_green_field("autoPromotionEnabled", json!(false)),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, paused));
    assert_eq!(w.counts(2), (1, 1));
    assert_eq!(w.counts(1), (5, 5));
    assert_ne!(
        w.status().blue_green.unwrap().scale_up_preview_check_point,
        Some(true)
    );
    w.promote();
    // The checkpoint latches, the preview is scaled to full size, then the active switch.
    let mut saw_checkpoint = false;
    let mut active_switched_at = None;
    for _ in 0..30 {
        w.reconcile();
        if w.status().blue_green.unwrap().scale_up_preview_check_point == Some(true) {
            saw_checkpoint = true;
        }
        if active(&w) == hash_of(&w, 2) && active_switched_at.is_none() {
            active_switched_at = Some(w.counts(2));
        }
        w.tick(TICK);
    }
    assert!(saw_checkpoint);
    assert_eq!(active_switched_at, Some((5, 5)));
    assert!(healthy(&w));
    assert_eq!(
        w.status().blue_green.unwrap().scale_up_preview_check_point,
        None,
        "the checkpoint resets on promotion"
    );
}

fn run_names(w: &World) -> Vec<String> {
    w.analysis_runs.iter().map(|r| r.name.clone()).collect()
}

fn created_runs(w: &World) -> Vec<(String, AnalysisRunKind)> {
    w.applied
        .iter()
        .filter_map(|e| match e {
            Effect::CreateAnalysisRun(r) => Some((r.name.clone(), r.kind)),
            _ => None,
        })
        .collect()
}

#[test]
fn pre_promotion_analysis_gates_the_switch() {
    let mut w = deployed(web().blue_green_field("prePromotionAnalysis", analysis()));
    // No analysis on the initial deploy.
    assert!(created_runs(&w).is_empty());
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, |w| !w.analysis_runs.is_empty()));
    let h2 = hash_of(&w, 2);
    let runs = created_runs(&w);
    assert_eq!(
        runs,
        vec![(format!("web-{h2}-2-pre"), AnalysisRunKind::PrePromotion)]
    );
    // The new ReplicaSet is saturated when the run is created.
    assert_eq!(w.counts(2), (3, 3));
    for _ in 0..10 {
        w.reconcile();
        w.tick(TICK);
    }
    assert_eq!(
        active(&w),
        hash_of(&w, 1),
        "switched before the analysis finished"
    );
    assert_eq!(w.phase(), "Progressing");
    assert_eq!(
        w.status().message.as_deref(),
        Some("active service cutover pending")
    );
    let name = run_names(&w)[0].clone();
    w.set_run_phase(&name, "Successful", "");
    assert!(w.run_until(10, TICK, healthy), "{:?}", w.status());
    let s = w.status();
    let pre = s
        .blue_green
        .unwrap()
        .pre_promotion_analysis_run_status
        .unwrap();
    assert_eq!(pre.name, name);
    assert_eq!(pre.status, "Successful");
    assert!(w.events.iter().any(|e| e.reason == "AnalysisRunSuccessful"
        && e.message
            == format!("PrePromotion Analysis Run '{name}' Status New: 'Successful' Previous: 'NoPreviousStatus'")
        || e.message
            == format!("PrePromotion Analysis Run '{name}' Status New: 'Successful' Previous: ''")));
}

#[test]
fn pre_promotion_analysis_then_manual_pause() {
    let mut w = deployed(
        web()
            .blue_green_field("prePromotionAnalysis", analysis())
            .blue_green_field("autoPromotionEnabled", json!(false)),
    );
    w.knobs.analysis_outcome = Some("Successful".into());
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, paused));
    // The pause comes only after the analysis succeeded.
    assert_eq!(
        w.status()
            .blue_green
            .unwrap()
            .pre_promotion_analysis_run_status
            .unwrap()
            .status,
        "Successful"
    );
    w.promote();
    assert!(w.run_until(20, TICK, healthy));
}

#[test]
fn failed_pre_promotion_analysis_aborts() {
    let mut w = deployed(web().blue_green_field("prePromotionAnalysis", analysis()));
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, |w| !w.analysis_runs.is_empty()));
    let name = run_names(&w)[0].clone();
    w.set_run_phase(&name, "Failed", "metric \"x\" assessed Failed");
    assert!(w.run_until(5, TICK, |w| w.phase() == "Degraded"));
    let s = w.status();
    assert_eq!(s.abort, Some(true));
    let c = condition(&w, "Progressing").unwrap();
    assert_eq!(c.reason, "RolloutAborted");
    assert_eq!(
        c.message,
        "Rollout aborted update to revision 2: Blue/green pre-promotion analysis phase error/failed: metric \"x\" assessed Failed"
    );
    assert_eq!(active(&w), hash_of(&w, 1));
    assert!(
        w.events
            .iter()
            .any(|e| e.reason == "AnalysisRunFailed" && e.type_.as_str() == "Warning")
    );
    // The preview ReplicaSet is scaled down after abortScaleDownDelaySeconds (30 s).
    assert_eq!(w.counts(2).0, 3);
    assert!(w.run_until(40, TICK, |w| w.counts(2).0 == 0));
    assert_eq!(w.counts(1), (3, 3));
    assert_eq!(w.phase(), "Degraded");
}

#[test]
fn inconclusive_pre_promotion_analysis_pauses_until_promoted() {
    let mut w = deployed(web().blue_green_field("prePromotionAnalysis", analysis()));
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, |w| !w.analysis_runs.is_empty()));
    let first = run_names(&w)[0].clone();
    w.set_run_phase(&first, "Inconclusive", "");
    assert!(w.run_until(5, TICK, paused));
    assert_eq!(
        w.status().pause_conditions.unwrap()[0].reason,
        "InconclusiveAnalysisRun"
    );
    for _ in 0..5 {
        w.reconcile();
        w.tick(TICK);
    }
    assert_eq!(w.analysis_runs.len(), 1, "no new run while paused");
    assert_eq!(active(&w), hash_of(&w, 1));
    // Promoting starts a new run (the inconclusive one is not reused).
    w.promote();
    assert!(w.run_until(10, TICK, |w| w.analysis_runs.len() == 2));
    let second = run_names(&w).into_iter().find(|n| n != &first).unwrap();
    assert_eq!(second, format!("{first}.1"));
    w.set_run_phase(&second, "Successful", "");
    assert!(w.run_until(10, TICK, healthy), "{:?}", w.status());
}

#[test]
fn post_promotion_analysis_success_completes_and_keeps_old_until_then() {
    let mut w = deployed(web().blue_green_field("postPromotionAnalysis", analysis()));
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, |w| !w.analysis_runs.is_empty()));
    let h2 = hash_of(&w, 2);
    assert_eq!(
        created_runs(&w),
        vec![(format!("web-{h2}-2-post"), AnalysisRunKind::PostPromotion)]
    );
    // Active already switched; stable not yet; the old ReplicaSet is kept up, with no deadline.
    assert_eq!(active(&w), h2);
    for _ in 0..40 {
        w.reconcile();
        w.tick(TICK);
    }
    let s = w.status();
    assert_eq!(s.stable_rs, Some(hash_of(&w, 1)));
    assert_eq!(w.phase(), "Progressing");
    assert_eq!(
        s.message.as_deref(),
        Some("waiting for analysis to complete")
    );
    assert_eq!(w.counts(1).0, 3);
    let name = run_names(&w)[0].clone();
    w.set_run_phase(&name, "Successful", "");
    assert!(w.run_until(10, TICK, healthy));
    assert!(w.run_until(40, TICK, |w| w.counts(1).0 == 0));
}

#[test]
fn failed_post_promotion_analysis_switches_active_back() {
    let mut w = deployed(web().blue_green_field("postPromotionAnalysis", analysis()));
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, |w| !w.analysis_runs.is_empty()));
    assert_eq!(active(&w), hash_of(&w, 2));
    let name = run_names(&w)[0].clone();
    w.set_run_phase(&name, "Error", "");
    assert!(w.run_until(5, TICK, |w| active(w) == hash_of(w, 1)));
    assert_eq!(w.phase(), "Degraded");
    assert_eq!(
        condition(&w, "Progressing").unwrap().message,
        "Rollout aborted update to revision 2: Blue/green post-promotion analysis phase error/failed"
    );
    assert_eq!(w.status().stable_rs, Some(hash_of(&w, 1)));
    assert_eq!(w.counts(1).0, 3);
}

#[test]
fn inconclusive_post_promotion_blocks_old_scale_down() {
    let mut w = deployed(
        web()
            .blue_green_field("postPromotionAnalysis", analysis())
            .blue_green_field("scaleDownDelaySeconds", json!(5)),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, |w| !w.analysis_runs.is_empty()));
    let name = run_names(&w)[0].clone();
    w.set_run_phase(&name, "Inconclusive", "");
    assert!(w.run_until(5, TICK, paused));
    for _ in 0..20 {
        w.reconcile();
        w.tick(TICK);
    }
    assert_eq!(
        w.counts(1).0,
        3,
        "old ReplicaSet scaled down while inconclusive"
    );
    assert!(paused(&w));
}

#[test]
fn abort_points_active_back_and_retry_restarts() {
    let mut w = deployed(web().blue_green_field("autoPromotionEnabled", json!(false)));
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, paused));
    w.abort();
    assert!(w.run_until(5, TICK, |w| w.phase() == "Degraded"));
    let s = w.status();
    assert_eq!(s.pause_conditions, None);
    assert!(s.aborted_at.is_some());
    assert_eq!(active(&w), hash_of(&w, 1));
    assert_eq!(
        condition(&w, "Progressing").unwrap().message,
        "Rollout aborted update to revision 2"
    );
    assert!(w.run_until(40, TICK, |w| w.counts(2).0 == 0));
    w.retry();
    assert!(w.run_until(30, TICK, paused), "{:?}", w.status());
    assert_eq!(w.counts(2), (3, 3));
    w.promote();
    assert!(w.run_until(20, TICK, healthy));
}

#[test]
fn abort_scale_down_delay_zero_keeps_preview() {
    let mut w = deployed(
        web()
            .blue_green_field("autoPromotionEnabled", json!(false))
            .blue_green_field("abortScaleDownDelaySeconds", json!(0)),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, paused));
    w.abort();
    for _ in 0..60 {
        w.reconcile();
        w.tick(TICK);
    }
    assert_eq!(w.phase(), "Degraded");
    assert_eq!(w.counts(2).0, 3);
}

#[test]
fn full_promotion_skips_pause_and_analysis() {
    let mut w = deployed(
        web()
            .blue_green_field("autoPromotionEnabled", json!(false))
            .blue_green_field("prePromotionAnalysis", analysis())
            .blue_green_field("postPromotionAnalysis", analysis()),
    );
    w.knobs.analysis_outcome = Some("Successful".into());
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, paused));
    w.promote_full();
    assert!(w.run_until(20, TICK, healthy), "{:?}", w.status());
    assert!(
        w.events
            .iter()
            .any(|e| e.reason == "RolloutCompleted"
                && e.message.ends_with("Full promotion requested"))
    );
    assert_eq!(w.status().promote_full, None);
    assert!(
        !created_runs(&w)
            .iter()
            .any(|(_, k)| *k == AnalysisRunKind::PostPromotion),
        "post-promotion analysis ran despite the full promotion"
    );
}

#[test]
fn undo_within_scale_down_delay_is_fast_tracked() {
    let mut w = deployed(
        web()
            .blue_green_field("autoPromotionEnabled", json!(false))
            .blue_green_field("scaleDownDelaySeconds", json!(300)),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, paused));
    w.promote();
    assert!(w.run_until(20, TICK, healthy));
    settle(&mut w, 2);
    // Revision 1 is still up, within its delay.
    assert_eq!(w.counts(1), (3, 3));
    let h1 = hash_of(&w, 1);
    w.undo_to_revision(1);
    // No new ReplicaSet, no pause: the active Service goes straight back.
    assert!(
        w.run_until(10, TICK, |w| active(w) == h1 && healthy(w)),
        "{:?}",
        w.status()
    );
    assert_eq!(w.replica_sets.len(), 2);
    assert!(
        w.events
            .iter()
            .any(|e| e.reason == "RolloutCompleted" && e.message.ends_with("Fast rollback"))
    );
    assert!(w.status().pause_conditions.is_none_or(|p| p.is_empty()));
    // The revision number moved up.
    assert_eq!(w.rs_by_revision(3).map(|r| r.hash().to_string()), Some(h1));
}

#[test]
fn undo_after_scale_down_runs_the_full_sequence() {
    let mut w = deployed(
        web()
            .blue_green_field("autoPromotionEnabled", json!(false))
            .blue_green_field("scaleDownDelaySeconds", json!(5)),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, paused));
    w.promote();
    assert!(w.run_until(20, TICK, healthy));
    assert!(w.run_until(20, TICK, |w| w.counts(1).0 == 0));
    w.undo_to_revision(1);
    assert!(
        w.run_until(30, TICK, paused),
        "not paused again: {:?}",
        w.status()
    );
}

#[test]
fn scale_down_delay_revision_limit_keeps_only_the_newest() {
    let mut w = deployed(
        web()
            .blue_green_field("scaleDownDelaySeconds", json!(600))
            .blue_green_field("scaleDownDelayRevisionLimit", json!(1)),
    );
    for v in 2..=4 {
        w.set_image(&format!("nginx:{v}"));
        assert!(w.run_until(30, TICK, healthy), "revision {v}");
        for _ in 0..3 {
            w.reconcile();
            w.tick(TICK);
        }
    }
    // Only revision 3 (the newest old one) is kept up.
    assert_eq!(w.counts(4), (3, 3));
    assert_eq!(w.counts(3).0, 3);
    assert_eq!(w.counts(2).0, 0);
    assert_eq!(w.counts(1).0, 0);
}

#[test]
fn hpa_scaling_resizes_active_and_reports_it() {
    let mut w = deployed(web());
    w.set_replicas(6);
    let plan = w.reconcile();
    assert!(plan.effects.iter().any(|e| matches!(
        e,
        Effect::ScaleReplicaSet {
            replicas: 6,
            desired_replicas: 6,
            ..
        }
    )));
    assert!(w.run_until(10, TICK, healthy));
    settle(&mut w, 1);
    let s = w.status();
    assert_eq!(s.hpa_replicas, Some(6));
    assert_eq!(s.available_replicas, Some(6));
    w.set_replicas(2);
    assert!(w.run_until(10, TICK, |w| healthy(w) && w.counts(1) == (2, 2)));
    settle(&mut w, 1);
    assert_eq!(w.status().hpa_replicas, Some(2));
}

#[test]
fn hpa_scaling_while_paused_scales_both_sides() {
    let mut w = deployed(web().blue_green_field("autoPromotionEnabled", json!(false)));
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, paused));
    w.set_replicas(5);
    assert!(w.run_until(20, TICK, |w| w.counts(1) == (5, 5) && w.counts(2) == (5, 5)));
    settle(&mut w, 2);
    // Counts come from the active (revision 1) ReplicaSet.
    assert_eq!(w.status().hpa_replicas, Some(5));
    assert!(paused(&w));
}

#[test]
fn restart_evicts_pods_and_records_restarted_at() {
    let mut w = deployed(web());
    w.tick(Duration::from_secs(5));
    w.restart();
    w.tick(TICK);
    let mut evicted = 0;
    for _ in 0..30 {
        let plan = w.reconcile();
        evicted += plan
            .effects
            .iter()
            .filter(|e| matches!(e, Effect::EvictPod { .. }))
            .count();
        w.tick(TICK);
        if w.status().restarted_at.is_some() {
            break;
        }
    }
    assert_eq!(evicted, 3);
    assert_eq!(w.status().restarted_at, w.rollout.spec.restart_at);
    assert!(w.run_until(10, TICK, healthy));
}

#[test]
fn paused_by_user_holds_the_active_switch() {
    let mut w = deployed(web());
    w.set_paused(true);
    w.set_image("nginx:2");
    for _ in 0..20 {
        w.reconcile();
        w.tick(TICK);
    }
    assert_eq!(w.phase(), "Paused");
    assert_eq!(w.status().message.as_deref(), Some("manually paused"));
    assert_eq!(active(&w), hash_of(&w, 1));
    w.set_paused(false);
    assert!(w.run_until(20, TICK, healthy));
}

#[test]
fn active_and_preview_metadata_are_injected() {
    let mut w = deployed(
        web()
            .blue_green_field("autoPromotionEnabled", json!(false))
            .blue_green_field("activeMetadata", json!({"labels": {"role": "active"}}))
            .blue_green_field("previewMetadata", json!({"labels": {"role": "preview"}})),
    );
    let label = |w: &World, rev: i64| {
        w.rs_by_revision(rev)
            .and_then(|r| r.template.clone())
            .and_then(|t| t.metadata)
            .and_then(|m| m.labels)
            .and_then(|l| l.get("role").cloned())
    };
    assert_eq!(label(&w, 1).as_deref(), Some("active"));
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, paused));
    assert_eq!(label(&w, 2).as_deref(), Some("preview"));
    assert_eq!(label(&w, 1).as_deref(), Some("active"));
    w.promote();
    assert!(w.run_until(20, TICK, healthy));
    settle(&mut w, 2);
    assert_eq!(label(&w, 2).as_deref(), Some("active"));
    assert_eq!(label(&w, 1), None);
}

#[test]
fn anti_affinity_is_injected_during_the_update() {
    let mut w = deployed(
        web()
            .blue_green_field("autoPromotionEnabled", json!(false))
            .blue_green_field(
                "antiAffinity",
                json!({"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 50}}),
            ),
    );
    w.set_image("nginx:2");
    assert!(w.run_until(30, TICK, paused));
    let h1 = hash_of(&w, 1);
    let rs2 = w.rs_by_revision(2).unwrap();
    let affinity = rs2
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.affinity.clone())
        .expect("anti-affinity injected");
    let text = serde_json::to_string(&affinity).unwrap();
    assert!(text.contains(&h1), "{text}");
}

#[test]
fn converged_rollout_plans_nothing() {
    let mut w = deployed(web());
    for _ in 0..3 {
        w.reconcile();
        w.tick(TICK);
    }
    let before = w.status();
    let plan = w.reconcile();
    assert!(plan.effects.is_empty(), "{:?}", plan.effects);
    assert_eq!(plan.status, before);
}
