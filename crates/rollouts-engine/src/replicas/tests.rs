//! Table tests ported from Argo's `utils/replicaset/canary_test.go`.

use super::*;

/// `TestApproximateWeightedNewStableReplicaCounts`: (replicas, weight, maxSurge) -> (canary, stable),
/// max weight 100.
#[test]
fn approximate_weighted_counts_table() {
    #[rustfmt::skip]
    let rows: &[(i32, i32, i32, i32, i32)] = &[
        (0, 0, 0, 0, 0), (0, 50, 0, 0, 0), (0, 100, 0, 0, 0),
        (0, 0, 1, 0, 0), (0, 50, 1, 0, 0), (0, 100, 1, 0, 0),
        (1, 0, 0, 0, 1), (1, 1, 0, 0, 1), (1, 49, 0, 0, 1), (1, 50, 0, 1, 0), (1, 99, 0, 1, 0), (1, 100, 0, 1, 0),
        (1, 0, 1, 0, 1), (1, 1, 1, 1, 1), (1, 49, 1, 1, 1), (1, 50, 1, 1, 1), (1, 99, 1, 1, 1), (1, 100, 1, 1, 0),
        (2, 0, 0, 0, 2), (2, 1, 0, 1, 1), (2, 50, 0, 1, 1), (2, 99, 0, 1, 1), (2, 100, 0, 2, 0),
        (2, 0, 1, 0, 2), (2, 1, 1, 1, 2), (2, 50, 1, 1, 1), (2, 99, 1, 2, 1), (2, 100, 1, 2, 0),
        (3, 10, 0, 1, 2), (3, 25, 0, 1, 2), (3, 33, 0, 1, 2), (3, 34, 0, 1, 2), (3, 49, 0, 1, 2), (3, 50, 0, 2, 1),
        (3, 10, 1, 1, 3), (3, 25, 1, 1, 3), (3, 33, 1, 1, 2), (3, 34, 1, 1, 2), (3, 49, 1, 2, 2), (3, 50, 1, 2, 2),
        (10, 0, 1, 0, 10), (10, 1, 0, 1, 9), (10, 14, 0, 1, 9), (10, 15, 0, 2, 8), (10, 16, 0, 2, 8),
        (10, 99, 0, 9, 1), (10, 100, 1, 10, 0),
        (10, 0, 1, 0, 10), (10, 1, 1, 1, 10), (10, 18, 1, 2, 9), (10, 19, 1, 2, 9), (10, 20, 1, 2, 8),
        (10, 23, 1, 2, 8), (10, 24, 1, 3, 8), (10, 25, 1, 3, 8), (10, 99, 1, 10, 1), (10, 100, 1, 10, 0),
    ];
    assert_eq!(rows.len(), 57);
    for &(replicas, weight, surge, canary, stable) in rows {
        assert_eq!(
            approximate_weighted_counts(replicas, weight, 100, surge),
            (canary, stable),
            "replicas {replicas} weight {weight} surge {surge}"
        );
    }
}

/// One row of `TestCalculateReplicaCountsForCanary` (basic canary rows).
struct BasicRow {
    name: &'static str,
    replicas: i32,
    weight: i32,
    surge: i32,
    unavailable: i32,
    stable: (i32, i32),
    canary: (i32, i32),
    older: Option<(i32, i32)>,
    expect_stable: i32,
    expect_canary: i32,
}

#[allow(clippy::too_many_arguments)]
const fn row(
    name: &'static str,
    replicas: i32,
    weight: i32,
    surge: i32,
    unavailable: i32,
    stable: (i32, i32),
    canary: (i32, i32),
    older: Option<(i32, i32)>,
    expect_stable: i32,
    expect_canary: i32,
) -> BasicRow {
    BasicRow {
        name,
        replicas,
        weight,
        surge,
        unavailable,
        stable,
        canary,
        older,
        expect_stable,
        expect_canary,
    }
}

/// The basic-canary rows of `TestCalculateReplicaCountsForCanary`. Percent fenceposts are given
/// already resolved against `replicas` (20% of 10 = 2; "0%"/"0%" resolves to unavailable 1), and a
/// full promotion is weight 100. Stable and canary are `(spec, available)`.
#[test]
fn basic_canary_table() {
    #[rustfmt::skip]
    let rows = [
        row("extra RSs not counted when spec < available", 10, 100, 3, 0, (7, 8), (6, 3), None, 7, 6),
        row("max surge int scales up canary", 10, 20, 2, 0, (10, 10), (0, 0), None, 10, 2),
        row("max surge percentage scales up canary", 10, 20, 2, 0, (10, 10), (0, 0), None, 10, 2),
        row("scale down extra stable replicas", 10, 20, 2, 0, (10, 10), (2, 2), None, 8, 2),
        row("do not go past max surge", 10, 30, 2, 0, (10, 10), (0, 0), None, 10, 2),
        row("max unavailable int scales down stable", 10, 20, 0, 2, (10, 10), (0, 0), None, 8, 0),
        row("max unavailable percentage scales down stable", 10, 20, 0, 2, (10, 10), (0, 0), None, 8, 0),
        row("do not go past max unavailable", 10, 30, 0, 2, (10, 10), (0, 0), None, 8, 0),
        row("max surge and max unavailable", 10, 50, 2, 1, (10, 10), (0, 0), None, 9, 2),
        row("canary to zero at weight 0", 10, 0, 1, 1, (10, 10), (1, 1), None, 10, 0),
        row("stable to zero at weight 100", 10, 100, 1, 1, (1, 1), (10, 10), None, 0, 10),
        row("canary not zero on non-zero weight", 1, 20, 1, 0, (1, 1), (0, 0), None, 1, 1),
        row("canary not zero on non-100 weight", 1, 90, 1, 0, (1, 1), (0, 0), None, 1, 1),
        row("canary zero below 50 without surge", 1, 49, 0, 1, (1, 1), (0, 0), None, 1, 0),
        row("stable zero at >=50 without surge", 1, 51, 0, 1, (1, 1), (0, 0), None, 0, 0),
        row("canary one at >=50 without surge or stable pods", 1, 51, 0, 1, (0, 0), (0, 0), None, 0, 1),
        row("scale up stable before canary", 10, 30, 1, 0, (1, 1), (0, 0), Some((3, 3)), 7, 1),
        row("scale down canary and stable", 10, 30, 0, 3, (8, 5), (4, 4), None, 7, 3),
        row("scale down stable and canary available", 10, 100, 1, 0, (10, 2), (10, 8), None, 2, 9),
        row("older RS count >= scale down count", 10, 30, 0, 1, (8, 6), (4, 2), Some((3, 3)), 8, 4),
        row("uneven divisor does not round past surge", 10, 5, 0, 1, (10, 10), (0, 0), None, 9, 0),
        row("uneven divisor does not round past surge (2)", 10, 5, 0, 1, (9, 9), (0, 0), None, 9, 1),
        row("both 0% resolve to unavailable 1", 10, 10, 0, 1, (10, 10), (0, 0), None, 9, 0),
        row("matchTrafficWeight ignores setCanaryScale", 10, 20, 2, 0, (10, 10), (0, 0), None, 10, 2),
        row("setCanaryScale ignored without traffic routing", 10, 20, 2, 0, (10, 10), (0, 0), None, 10, 2),
        row("honor surge when stable unavailable", 4, 100, 1, 0, (4, 1), (0, 0), None, 4, 1),
        row("scale down to unavailable without exceeding surge", 3, 99, 0, 2, (3, 3), (0, 0), None, 1, 0),
        row("scale down to unavailable without exceeding surge (2)", 3, 99, 0, 2, (1, 1), (0, 0), None, 1, 2),
        row("honor unavailable scaling down unavailable stable", 4, 100, 1, 0, (4, 1), (1, 1), None, 3, 1),
        row("abort part 1: surge stable before canary shrinks", 4, 0, 1, 0, (0, 0), (4, 4), None, 1, 4),
        row("abort part 2: stable not available yet", 4, 0, 1, 0, (1, 0), (4, 4), None, 1, 4),
        row("abort part 3: reduce canary by one", 4, 0, 1, 0, (1, 1), (4, 4), None, 1, 3),
        row("promote full ignores weight", 4, 100, 4, 4, (4, 4), (0, 0), None, 0, 4),
        row("promote full honours surge and unavailable", 4, 100, 3, 0, (4, 4), (0, 0), None, 4, 3),
    ];
    for r in &rows {
        let input = BasicCanaryInput {
            replicas: r.replicas,
            weight: r.weight,
            max_weight: 100,
            max_surge: r.surge,
            max_unavailable: r.unavailable,
            new_rs: Some(RsCounts::new(r.canary.0, r.canary.1)),
            stable_rs: Some(RsCounts::new(r.stable.0, r.stable.1)),
            other_spec: r.older.map_or(0, |o| o.0),
        };
        assert_eq!(
            basic_canary_counts(&input),
            (r.expect_canary, r.expect_stable),
            "{}",
            r.name
        );
    }
}

/// Examples from the comment on Argo's `CalculateReplicaCountsForBasicCanary` (its fourth
/// example, weight 5 with surge 1, is stale in Argo: the code gives 1/10, as the 57-row table
/// implies, so it is not repeated here).
#[test]
fn basic_canary_doc_examples() {
    let case = |replicas, weight, surge, unavailable| {
        basic_canary_counts(&BasicCanaryInput {
            replicas,
            weight,
            max_weight: 100,
            max_surge: surge,
            max_unavailable: unavailable,
            new_rs: Some(RsCounts::new(0, 0)),
            stable_rs: Some(RsCounts::new(replicas, replicas)),
            other_spec: 0,
        })
    };
    assert_eq!(case(10, 10, 1, 1), (1, 9));
    assert_eq!(case(10, 30, 3, 0), (3, 10));
    assert_eq!(case(10, 30, 0, 5), (0, 7));
    assert_eq!(case(1, 5, 1, 0), (1, 1));
    assert_eq!(case(1, 95, 1, 0), (1, 1));
}

/// `TestCalculateReplicaCountsForNewDeployment`: new and stable are the same ReplicaSet.
#[test]
fn basic_canary_without_distinct_stable_goes_to_full() {
    let input = BasicCanaryInput {
        replicas: 10,
        weight: 10,
        max_weight: 100,
        max_surge: 0,
        max_unavailable: 1,
        new_rs: Some(RsCounts::new(10, 0)),
        stable_rs: None,
        other_spec: 0,
    };
    assert_eq!(basic_canary_counts(&input), (10, 0));
}

fn routed(replicas: i32, weight: i32) -> TrafficRoutedInput {
    TrafficRoutedInput {
        replicas,
        weight,
        scale_replicas: None,
        max_weight: 100,
        dynamic_stable_scale: false,
        aborted: false,
        weights: None,
        min_pods: None,
    }
}

/// The traffic-routed rows of `TestCalculateReplicaCountsForCanary` and
/// `TestCalculateReplicaCountsForCanaryTrafficRouting`.
#[test]
fn traffic_routed_table() {
    // setCanaryScale.replicas 9 with 1 replica: used as is.
    assert_eq!(
        traffic_routed_counts(&TrafficRoutedInput {
            scale_replicas: Some(9),
            ..routed(1, 0)
        }),
        (9, 1)
    );
    // setCanaryScale.weight 200 with 4 replicas: not capped.
    assert_eq!(traffic_routed_counts(&routed(4, 200)), (8, 4));
    // matchTrafficWeight: the setWeight applies.
    assert_eq!(traffic_routed_counts(&routed(10, 20)), (2, 10));
    // aborted with abortScaleDownDelaySeconds 0: setCanaryScale.replicas 1 still applies.
    assert_eq!(
        traffic_routed_counts(&TrafficRoutedInput {
            scale_replicas: Some(1),
            aborted: true,
            ..routed(1, 0)
        }),
        (1, 1)
    );
    // aborted with a delay: setCanaryScale ignored, abort weight 0.
    assert_eq!(
        traffic_routed_counts(&TrafficRoutedInput {
            aborted: true,
            ..routed(1, 0)
        }),
        (0, 1)
    );
    // minPodsPerReplicaSet 2, 10 replicas, weight 5.
    assert_eq!(
        traffic_routed_counts(&TrafficRoutedInput {
            min_pods: Some(2),
            ..routed(10, 5)
        }),
        (2, 10)
    );
    // minPodsPerReplicaSet 2 capped at 1 replica, full promotion.
    assert_eq!(
        traffic_routed_counts(&TrafficRoutedInput {
            min_pods: Some(2),
            ..routed(1, 100)
        }),
        (1, 1)
    );
    // TestCalculateReplicaCountsForCanaryTrafficRouting: 10 replicas at weight 10.
    assert_eq!(traffic_routed_counts(&routed(10, 10)), (1, 10));
}

/// `TestCalculateReplicaCountsForCanaryTrafficRoutingDynamicScale`. The rollout's steps are
/// `[setWeight: first]` plus the row's extra steps; the current step is the first one.
#[test]
fn traffic_routed_dynamic_table() {
    struct Dyn {
        name: &'static str,
        replicas: i32,
        first_weight: i32,
        extra_steps: &'static [i32],
        abort: bool,
        weights: (i32, i32),
        canary_rs: Option<(i32, i32)>,
        stable_rs: Option<(i32, i32)>,
        expect: (i32, i32),
    }
    let rows = [
        Dyn {
            name: "stable up to next canary step on abort",
            replicas: 10,
            first_weight: 20,
            extra_steps: &[60],
            abort: true,
            weights: (60, 40),
            canary_rs: Some((6, 6)),
            stable_rs: Some((4, 4)),
            expect: (6, 8),
        },
        Dyn {
            name: "stable up from available canary on abort",
            replicas: 10,
            first_weight: 20,
            extra_steps: &[60],
            abort: true,
            weights: (60, 40),
            canary_rs: Some((1, 1)),
            stable_rs: Some((4, 4)),
            expect: (6, 8),
        },
        Dyn {
            name: "stable up from available stable on abort",
            replicas: 10,
            first_weight: 20,
            extra_steps: &[60],
            abort: true,
            weights: (60, 40),
            canary_rs: Some((2, 2)),
            stable_rs: Some((8, 4)),
            expect: (6, 8),
        },
        Dyn {
            name: "no ReplicaSets known on abort",
            replicas: 10,
            first_weight: 20,
            extra_steps: &[60],
            abort: true,
            weights: (60, 40),
            canary_rs: None,
            stable_rs: None,
            expect: (6, 10),
        },
        Dyn {
            name: "scale down stable",
            replicas: 10,
            first_weight: 10,
            extra_steps: &[],
            abort: false,
            weights: (10, 90),
            canary_rs: None,
            stable_rs: None,
            expect: (1, 9),
        },
        Dyn {
            name: "max of desired and actual canary",
            replicas: 10,
            first_weight: 20,
            extra_steps: &[],
            abort: false,
            weights: (10, 90),
            canary_rs: None,
            stable_rs: None,
            expect: (2, 9),
        },
        Dyn {
            name: "canary kept while traffic remains on abort",
            replicas: 10,
            first_weight: 20,
            extra_steps: &[],
            abort: true,
            weights: (20, 80),
            canary_rs: None,
            stable_rs: None,
            expect: (2, 10),
        },
        Dyn {
            name: "canary reduced with traffic on abort",
            replicas: 10,
            first_weight: 20,
            extra_steps: &[],
            abort: true,
            weights: (10, 90),
            canary_rs: None,
            stable_rs: None,
            expect: (1, 10),
        },
    ];
    for r in &rows {
        let mut steps = vec![r.first_weight];
        steps.extend_from_slice(r.extra_steps);
        let weight = match (r.abort, r.canary_rs, r.stable_rs) {
            // In Argo's test the canary RS reports spec replicas as available.
            (true, Some(canary), Some(stable)) => {
                dynamic_abort_weight(r.replicas, 100, &steps, stable.1, canary.0, false)
            }
            (true, _, _) => 0,
            (false, _, _) => r.first_weight,
        };
        let input = TrafficRoutedInput {
            dynamic_stable_scale: true,
            aborted: r.abort,
            weights: Some(r.weights),
            ..routed(r.replicas, weight)
        };
        assert_eq!(traffic_routed_counts(&input), r.expect, "{}", r.name);
    }
}

/// `TestGetDesiredCanaryWeightOnAbortWithScaleDownDelay` (R 10, steps [10, 50], canary 5 available).
#[test]
fn dynamic_abort_weight_with_delay() {
    assert_eq!(dynamic_abort_weight(10, 100, &[10, 50], 9, 5, false), 10);
    assert_eq!(dynamic_abort_weight(10, 100, &[10, 50], 5, 5, true), 10);
    assert_eq!(dynamic_abort_weight(10, 100, &[10, 50], 9, 5, true), 0);
    // abortScaleDownDelaySeconds: 0 is not an explicit non-zero delay.
    assert_eq!(dynamic_abort_weight(10, 100, &[10, 50], 9, 5, false), 10);
}

/// `TestAllReplicaProgressThresholdMet` style cases.
#[test]
fn progress_threshold_table() {
    use ProgressThreshold::{Percent, Pods};
    let rs = |spec, available| Some(RsCounts::new(spec, available));
    let cases: &[(Option<ProgressThreshold>, Option<RsCounts>, i32, bool)] = &[
        (None, rs(10, 10), 10, true),
        (None, rs(10, 9), 10, false),
        (None, rs(9, 9), 10, false),
        (None, None, 10, false),
        (Some(Percent(70)), rs(10, 7), 10, true),
        (Some(Percent(70)), rs(10, 6), 10, false),
        (Some(Percent(70)), None, 10, false),
        (Some(Percent(50)), rs(0, 0), 0, true),
        (Some(Percent(-1)), rs(10, 9), 10, false),
        (Some(Percent(-1)), rs(10, 10), 10, true),
        (Some(Pods(3)), rs(10, 3), 10, true),
        (Some(Pods(3)), rs(10, 2), 10, false),
        (Some(Percent(33)), rs(3, 1), 3, true),
    ];
    for &(threshold, rs, desired, want) in cases {
        assert_eq!(
            progress_threshold_met(threshold, rs, desired),
            want,
            "{threshold:?} {rs:?} {desired}"
        );
    }
}

/// `TestAtDesiredReplicaCountsForCanary` style cases.
#[test]
fn at_desired_counts_table() {
    let base = AtDesiredInput {
        new_rs: Some(RsCounts::new(2, 2)),
        stable_rs: Some(StableCounts {
            spec: 8,
            created: 8,
        }),
        traffic_routing: false,
        dynamic_stable_scale: false,
        other_available: 0,
        threshold: None,
    };
    assert!(at_desired_counts(&base, 2, 8));
    assert!(!at_desired_counts(&base, 3, 7));
    assert!(!at_desired_counts(
        &AtDesiredInput {
            other_available: 1,
            ..base
        },
        2,
        8
    ));
    // Traffic routing tolerates older pods.
    assert!(at_desired_counts(
        &AtDesiredInput {
            other_available: 1,
            traffic_routing: true,
            ..base
        },
        2,
        8
    ));
    // Stable must have created its pods (availability is not checked).
    assert!(!at_desired_counts(
        &AtDesiredInput {
            stable_rs: Some(StableCounts {
                spec: 8,
                created: 7
            }),
            ..base
        },
        2,
        8
    ));
    // Dynamic stable scale skips the stable check.
    assert!(at_desired_counts(
        &AtDesiredInput {
            stable_rs: None,
            traffic_routing: true,
            dynamic_stable_scale: true,
            ..base
        },
        2,
        8
    ));
    // No stable at all.
    assert!(!at_desired_counts(
        &AtDesiredInput {
            stable_rs: None,
            ..base
        },
        2,
        8
    ));
}

#[test]
fn min_pods_rules() {
    assert_eq!(apply_min_pods(0, Some(2), 10), 0);
    assert_eq!(apply_min_pods(1, Some(2), 10), 2);
    assert_eq!(apply_min_pods(1, Some(5), 3), 3);
    assert_eq!(apply_min_pods(4, Some(2), 10), 4);
    assert_eq!(apply_min_pods(1, None, 10), 1);
}
