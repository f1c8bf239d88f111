//! Property tests over random specs, step lists and readiness sequences, driven through the
//! simulator. Invariants checked after every pass:
//!
//! 1. basic canary: available pods never drop below `replicas - maxUnavailable` because of a
//!    scale-down the engine planned, and the pods never exceed `replicas + maxSurge`;
//! 2. traffic routing: no weight is ever sent to a canary with no available pod;
//! 3. after an abort the canary weight is 0, and with traffic routing the canary is only scaled
//!    down once the stable ReplicaSet is fully available;
//! 4. with the clock and the pods frozen, planning again converges to a plan with no effect and
//!    an unchanged status (a fixpoint);
//! 5. the step index moves one step at a time, except for a reset to 0 (new revision, abort) or
//!    a jump to the end (promotion, full promotion, fast-track rollback).

use std::time::Duration;

use proptest::prelude::*;
use rollouts_engine::{Effect, Plan, TrafficOp};
use rollouts_test_support::fixtures::RolloutBuilder;
use rollouts_test_support::sim::World;
use serde_json::{Value, json};

#[derive(Clone, Debug)]
enum Action {
    Tick,
    Promote,
    Abort,
    Retry,
    PromoteFull,
}

fn step_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0..=100i32).prop_map(|w| json!({"setWeight": w})),
        (1..=3i32).prop_map(|d| json!({"pause": {"duration": format!("{d}s")}})),
        Just(json!({"pause": {}})),
    ]
}

fn fencepost() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(0)),
        Just(json!(1)),
        Just(json!(2)),
        Just(json!("25%")),
        Just(json!("50%")),
    ]
}

fn actions() -> impl Strategy<Value = Vec<Action>> {
    prop::collection::vec(
        prop_oneof![
            8 => Just(Action::Tick),
            2 => Just(Action::Promote),
            1 => Just(Action::Abort),
            1 => Just(Action::Retry),
            1 => Just(Action::PromoteFull),
        ],
        20..80,
    )
}

fn resolve(v: &Value, replicas: i32, round_up: bool) -> i32 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0) as i32,
        Value::String(s) => {
            let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
            let x = pct * f64::from(replicas) / 100.0;
            (if round_up { x.ceil() } else { x.floor() }) as i32
        }
        _ => 0,
    }
}

struct Checker {
    replicas: i32,
    max_surge: i32,
    max_unavailable: i32,
    traffic: bool,
    steps: i32,
}

impl Checker {
    fn check_plan(&self, before: &World, plan: &Plan, after: &World) -> Result<(), TestCaseError> {
        let status = &plan.status;
        let new_hash = status.current_pod_hash.clone().unwrap_or_default();
        // An abort counts once the engine has acted on it (the Progressing condition says so);
        // the pass right after the user's patch may only record pause conditions.
        let aborted = status.abort == Some(true)
            && status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Progressing" && c.reason == "RolloutAborted");
        // 2. No weight to a canary without available pods.
        for e in &plan.effects {
            if let Effect::Traffic {
                op: TrafficOp::SetWeight { weight, .. },
                ..
            } = e
                && *weight > 0
            {
                let canary_available = before
                    .replica_sets
                    .iter()
                    .filter(|r| r.hash() == new_hash)
                    .map(|r| r.available_replicas)
                    .sum::<i32>();
                let stable = status.stable_rs.clone().unwrap_or_default();
                prop_assert!(
                    canary_available > 0 || stable == new_hash,
                    "weight {weight} sent to a canary with no available pod"
                );
            }
        }
        // 3. Abort: weight 0; traffic-routed canary scaled down only once stable is available.
        if aborted && self.traffic && status.stable_rs.as_deref() != Some(new_hash.as_str()) {
            if let Some(w) = status.canary.as_ref().and_then(|c| c.weights.as_ref()) {
                prop_assert_eq!(
                    w.canary.weight,
                    0,
                    "aborted rollout still weights the canary"
                );
            }
            let stable_hash = status.stable_rs.clone().unwrap_or_default();
            let stable_available = before
                .replica_sets
                .iter()
                .filter(|r| r.hash() == stable_hash)
                .map(|r| r.available_replicas)
                .sum::<i32>();
            for e in &plan.effects {
                if let Effect::ScaleReplicaSet { name, replicas, .. } = e {
                    let rs = before.replica_sets.iter().find(|r| &r.name == name);
                    if let Some(rs) = rs
                        && rs.hash() == new_hash
                        && *replicas < rs.spec_replicas
                    {
                        prop_assert!(
                            stable_available >= self.replicas,
                            "canary scaled down on abort before stable was available ({stable_available}/{})",
                            self.replicas
                        );
                    }
                }
            }
        }
        // 1. Basic canary: availability and surge bounds.
        if !self.traffic {
            let before_available = before.available();
            let floor = (self.replicas - self.max_unavailable).min(before_available);
            prop_assert!(
                after.available() >= floor,
                "available fell from {before_available} to {} (floor {floor})",
                after.available()
            );
            let spec_total: i32 = after.replica_sets.iter().map(|r| r.spec_replicas).sum();
            let before_total: i32 = before.replica_sets.iter().map(|r| r.spec_replicas).sum();
            let ceiling = (self.replicas + self.max_surge).max(before_total);
            prop_assert!(
                spec_total <= ceiling,
                "pods {spec_total} above replicas + maxSurge ({ceiling})"
            );
        }
        // 5. Step index moves one at a time.
        let old = before.status().current_step_index;
        let new = status.current_step_index;
        if let (Some(o), Some(n)) = (old, new) {
            prop_assert!(
                n == o || n == o + 1 || n == 0 || n == self.steps,
                "step index jumped from {o} to {n}"
            );
        }
        Ok(())
    }

    /// 4. Fixpoint: with time and pods frozen, re-planning stops changing anything.
    fn check_fixpoint(&self, world: &World) -> Result<(), TestCaseError> {
        let mut w = world.clone();
        let mut quiet = false;
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
                quiet = true;
                break;
            }
        }
        prop_assert!(quiet, "no fixpoint within 12 passes");
        Ok(())
    }
}

fn run(
    traffic: bool,
    replicas: i32,
    surge: Value,
    unavailable: Value,
    steps: Vec<Value>,
    ready_per_tick: usize,
    script: Vec<Action>,
) -> Result<(), TestCaseError> {
    let s = resolve(&surge, replicas, true);
    let u = resolve(&unavailable, replicas, false);
    prop_assume!(!(s == 0 && u == 0 && surge == json!(0) && unavailable == json!(0)));
    let max_unavailable = if s == 0 && u == 0 { 1 } else { u.min(replicas) };
    let mut builder = RolloutBuilder::canary("p")
        .replicas(replicas)
        .canary_field("maxSurge", surge)
        .canary_field("maxUnavailable", unavailable)
        .steps(Value::Array(steps.clone()));
    if traffic {
        builder = builder.traffic_routed();
    }
    let mut w = World::new(builder.build());
    prop_assert!(
        w.run_until(40, Duration::from_secs(1), |w| w.phase() == "Healthy"),
        "initial deploy: {:?}",
        w.status()
    );
    w.knobs.ready_per_tick = Some(ready_per_tick);
    let checker = Checker {
        replicas,
        max_surge: s,
        max_unavailable,
        traffic,
        steps: steps.len() as i32,
    };
    w.set_image("nginx:2");
    for action in script {
        match action {
            Action::Tick => {}
            Action::Promote => w.promote(),
            Action::Abort => w.abort(),
            Action::Retry => w.retry(),
            Action::PromoteFull => w.promote_full(),
        }
        let before = w.clone();
        let plan = rollouts_engine::plan(&w.snapshot());
        w.apply(&plan);
        checker.check_plan(&before, &plan, &w)?;
        w.tick(Duration::from_secs(1));
    }
    checker.check_fixpoint(&w)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn basic_canary_invariants(
        replicas in 1..=10i32,
        surge in fencepost(),
        unavailable in fencepost(),
        steps in prop::collection::vec(step_strategy(), 0..5),
        ready in 1..4usize,
        script in actions(),
    ) {
        run(false, replicas, surge, unavailable, steps, ready, script)?;
    }

    #[test]
    fn traffic_routed_invariants(
        replicas in 1..=10i32,
        steps in prop::collection::vec(step_strategy(), 0..5),
        ready in 1..4usize,
        script in actions(),
    ) {
        run(true, replicas, json!("25%"), json!("25%"), steps, ready, script)?;
    }
}
