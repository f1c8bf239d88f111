//! Property tests for blue-green over random specs (preview count, auto-promotion, delays,
//! analysis outcomes), readiness paces and user actions, driven through the simulator.
//! Invariants checked after every pass:
//!
//! 1. the active Service is only pointed at a ReplicaSet whose pods are all available
//!    (`spec.replicas` of them), except on the initial deploy (the Service selected no revision)
//!    and on an abort (back to the stable ReplicaSet), as Argo does;
//! 2. the ReplicaSet the active Service selects is never scaled down while it stays active;
//! 3. with the clock and the pods frozen, planning again converges to a plan with no effect and
//!    an unchanged status (a fixpoint).

use std::time::Duration;

use proptest::prelude::*;
use rollouts_engine::{Effect, Plan};
use rollouts_test_support::fixtures::RolloutBuilder;
use rollouts_test_support::sim::World;
use serde_json::json;

#[derive(Clone, Debug)]
enum Action {
    Tick,
    Promote,
    Abort,
    Retry,
    PromoteFull,
    NewImage,
    UndoToFirst,
}

fn actions() -> impl Strategy<Value = Vec<Action>> {
    prop::collection::vec(
        prop_oneof![
            10 => Just(Action::Tick),
            2 => Just(Action::Promote),
            1 => Just(Action::Abort),
            1 => Just(Action::Retry),
            1 => Just(Action::PromoteFull),
            1 => Just(Action::NewImage),
            1 => Just(Action::UndoToFirst),
        ],
        20..80,
    )
}

#[derive(Clone, Debug)]
struct Spec {
    replicas: i32,
    preview_replica_count: Option<i32>,
    auto_promotion_enabled: Option<bool>,
    auto_promotion_seconds: Option<i32>,
    scale_down_delay_seconds: Option<i32>,
    abort_scale_down_delay_seconds: Option<i32>,
    pre: bool,
    post: bool,
    outcome: Option<&'static str>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (1..=6i32)
        .prop_flat_map(|replicas| {
            (
                Just(replicas),
                prop::option::of(0..=replicas),
                prop::option::of(any::<bool>()),
                prop::option::of(0..=3i32),
                prop::option::of(0..=5i32),
                prop::option::of(0..=3i32),
                any::<bool>(),
                any::<bool>(),
                prop::option::of(prop_oneof![
                    4 => Just("Successful"),
                    1 => Just("Failed"),
                    1 => Just("Inconclusive"),
                ]),
            )
        })
        .prop_map(
            |(replicas, prc, ape, aps, sdd, asdd, pre, post, outcome)| Spec {
                replicas,
                preview_replica_count: prc,
                auto_promotion_enabled: ape,
                auto_promotion_seconds: aps,
                scale_down_delay_seconds: sdd,
                abort_scale_down_delay_seconds: asdd,
                pre,
                post,
                outcome,
            },
        )
}

fn build(spec: &Spec) -> RolloutBuilder {
    let mut b = RolloutBuilder::blue_green("p").replicas(spec.replicas);
    if let Some(v) = spec.preview_replica_count {
        b = b.blue_green_field("previewReplicaCount", json!(v));
    }
    if let Some(v) = spec.auto_promotion_enabled {
        b = b.blue_green_field("autoPromotionEnabled", json!(v));
    }
    if let Some(v) = spec.auto_promotion_seconds {
        b = b.blue_green_field("autoPromotionSeconds", json!(v));
    }
    if let Some(v) = spec.scale_down_delay_seconds {
        b = b.blue_green_field("scaleDownDelaySeconds", json!(v));
    }
    if let Some(v) = spec.abort_scale_down_delay_seconds {
        b = b.blue_green_field("abortScaleDownDelaySeconds", json!(v));
    }
    let analysis = json!({"templates": [{"templateName": "t"}]});
    if spec.pre {
        b = b.blue_green_field("prePromotionAnalysis", analysis.clone());
    }
    if spec.post {
        b = b.blue_green_field("postPromotionAnalysis", analysis);
    }
    b
}

fn active(w: &World) -> String {
    w.services
        .iter()
        .find(|s| s.name == "p-active")
        .map(|s| s.selected_hash().to_string())
        .unwrap_or_default()
}

fn check_plan(
    replicas: i32,
    before: &World,
    plan: &Plan,
    after: &World,
) -> Result<(), TestCaseError> {
    let active_before = active(before);
    let stable_before = before.status().stable_rs.unwrap_or_default();
    for e in &plan.effects {
        // 1. Active switches.
        if let Effect::SwitchServiceSelector { service, hash, .. } = e
            && service == "p-active"
            && !active_before.is_empty()
            && hash != &stable_before
        {
            let available = before
                .replica_sets
                .iter()
                .filter(|r| r.hash() == hash)
                .map(|r| r.available_replicas)
                .sum::<i32>();
            prop_assert!(
                available >= replicas,
                "active switched to {hash} with {available}/{replicas} pods available"
            );
        }
        // 2. The active ReplicaSet is not scaled down while active.
        if let Effect::ScaleReplicaSet {
            name, replicas: to, ..
        } = e
            && let Some(rs) = before.replica_sets.iter().find(|r| &r.name == name)
            && rs.hash() == active_before
            && active(after) == active_before
        {
            prop_assert!(
                *to >= rs.spec_replicas,
                "active ReplicaSet {name} scaled down from {} to {to}",
                rs.spec_replicas
            );
        }
    }
    Ok(())
}

/// 3. Fixpoint: with time and pods frozen, re-planning stops changing anything.
fn check_fixpoint(world: &World) -> Result<(), TestCaseError> {
    let mut w = world.clone();
    for _ in 0..12 {
        let before = w.status();
        let plan = w.reconcile();
        if plan.effects.is_empty() && plan.status == before {
            let again = w.reconcile();
            prop_assert!(
                again.effects.is_empty(),
                "effects after a quiet pass: {:?}",
                again.effects
            );
            prop_assert_eq!(
                &again.status,
                &plan.status,
                "status changed after a quiet pass"
            );
            return Ok(());
        }
    }
    prop_assert!(false, "no fixpoint within 12 passes");
    Ok(())
}

fn run(spec: Spec, ready_per_tick: usize, script: Vec<Action>) -> Result<(), TestCaseError> {
    let mut w = World::new(build(&spec).build());
    prop_assert!(
        w.run_until(40, Duration::from_secs(1), |w| w.phase() == "Healthy"),
        "initial deploy: {:?}",
        w.status()
    );
    w.knobs.ready_per_tick = Some(ready_per_tick);
    w.knobs.analysis_outcome = spec.outcome.map(str::to_string);
    let mut image = 2;
    w.set_image("nginx:2");
    for action in script {
        match action {
            Action::Tick => {}
            Action::Promote => w.promote(),
            Action::Abort => w.abort(),
            Action::Retry => w.retry(),
            Action::PromoteFull => w.promote_full(),
            Action::NewImage => {
                image += 1;
                w.set_image(&format!("nginx:{image}"));
            }
            Action::UndoToFirst => {
                let first = w.replica_sets.iter().filter_map(|r| r.revision()).min();
                if let Some(rev) = first {
                    w.undo_to_revision(rev);
                }
            }
        }
        let before = w.clone();
        let plan = rollouts_engine::plan(&w.snapshot());
        w.apply(&plan);
        check_plan(spec.replicas, &before, &plan, &w)?;
        w.tick(Duration::from_secs(1));
    }
    check_fixpoint(&w)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn blue_green_invariants(spec in spec(), ready in 1..4usize, script in actions()) {
        run(spec, ready, script)?;
    }
}
