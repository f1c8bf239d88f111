//! Canary replica math, as pure functions over integers.
//!
//! These functions reproduce Argo's `utils/replicaset/canary.go` exactly (the contract is
//! `argo-core.md` §2.3): the same candidates, the same float rounding, the same order of
//! scale-up and scale-down decisions. They take resolved numbers rather than a Rollout so that
//! the table tests read like Argo's and the property tests can drive them directly; the canary
//! module resolves a Rollout and its ReplicaSets into these inputs.

/// What the math needs to know about one ReplicaSet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RsCounts {
    /// `spec.replicas`.
    pub spec: i32,
    /// `status.availableReplicas`.
    pub available: i32,
}

impl RsCounts {
    /// A ReplicaSet with `spec` replicas of which `available` are available.
    pub const fn new(spec: i32, available: i32) -> Self {
        Self { spec, available }
    }
}

/// `ceil(weight * replicas / max_weight)` computed in float64 as Argo does
/// (`trafficWeightToReplicas`).
pub fn traffic_weight_to_replicas(replicas: i32, weight: i32, max_weight: i32) -> i32 {
    if max_weight == 0 {
        return 0;
    }
    (f64::from(weight) * f64::from(replicas) / f64::from(max_weight)).ceil() as i32
}

/// Argo's `approximateWeightedCanaryStableReplicaCounts`: the (canary, stable) counts whose
/// ratio best approximates `weight / max_weight`, using `replicas` or (when `max_surge > 0`)
/// `replicas + 1` pods in total. For weights strictly between 0 and the maximum, with two or
/// more pods (surge included), neither side is ever zero; ties round up.
pub fn approximate_weighted_counts(
    replicas: i32,
    weight: i32,
    max_weight: i32,
    max_surge: i32,
) -> (i32, i32) {
    if replicas == 0 || max_weight == 0 {
        return (0, 0);
    }
    let product = i64::from(replicas) * i64::from(weight);
    let ceil = (product as f64 / f64::from(max_weight)).ceil() as i32;
    let floor = (product as f64 / f64::from(max_weight)).floor() as i32;
    let tied = floor_ceiling_tied(weight, max_weight, replicas);
    let zero_allowed = weight == max_weight || weight == 0 || (replicas == 1 && max_surge == 0);

    let mut options: [(i32, i32); 4] = [(0, 0); 4];
    let mut n = 0;
    let mut push = |canary: i32, total: i32| {
        options[n] = (canary, total);
        n += 1;
    };
    if ceil < replicas || zero_allowed {
        push(ceil, replicas);
    }
    if !tied && (floor != 0 || zero_allowed) {
        push(floor, replicas);
    }
    if max_surge > 0 {
        push(ceil, replicas + 1);
        let surge_tied = floor_ceiling_tied(weight, max_weight, replicas + 1);
        if !surge_tied && (floor != 0 || zero_allowed) {
            push(floor, replicas + 1);
        }
    }
    if n == 0 {
        return (0, replicas);
    }
    let mut best = options[0];
    let mut best_delta = weight_delta(weight, max_weight, best.0, best.1);
    for &option in &options[1..n] {
        let delta = weight_delta(weight, max_weight, option.0, option.1);
        if delta < best_delta {
            best = option;
            best_delta = delta;
        }
    }
    (best.0, best.1 - best.0)
}

fn floor_ceiling_tied(weight: i32, max_weight: i32, total: i32) -> bool {
    let x = f64::from(total) * (f64::from(weight) / f64::from(max_weight));
    x - x.trunc() == 0.5
}

fn weight_delta(weight: i32, max_weight: i32, canary: i32, total: i32) -> f64 {
    let actual = (i64::from(canary) * i64::from(max_weight)) as f64 / f64::from(total);
    (actual - f64::from(weight)).abs()
}

/// Inputs of [`basic_canary_counts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BasicCanaryInput {
    /// The rollout's `spec.replicas`.
    pub replicas: i32,
    /// Desired canary weight.
    pub weight: i32,
    /// Maximum traffic weight (100 unless `maxTrafficWeight`).
    pub max_weight: i32,
    /// Resolved `maxSurge`.
    pub max_surge: i32,
    /// Resolved `maxUnavailable`.
    pub max_unavailable: i32,
    /// The new (canary) ReplicaSet, when it exists.
    pub new_rs: Option<RsCounts>,
    /// The stable ReplicaSet, only when it exists **and differs from the new one**.
    pub stable_rs: Option<RsCounts>,
    /// Sum of `spec.replicas` over the other (older) ReplicaSets.
    pub other_spec: i32,
}

/// Argo's `CalculateReplicaCountsForBasicCanary`: the (new, stable) replica counts for a canary
/// without traffic routing, honouring `maxSurge` and `maxUnavailable` and draining older
/// ReplicaSets first.
pub fn basic_canary_counts(input: &BasicCanaryInput) -> (i32, i32) {
    let r = input.replicas;
    let (mut desired_new, mut desired_stable) =
        approximate_weighted_counts(r, input.weight, input.max_weight, input.max_surge);

    let mut new_count = input.new_rs.map_or(0, |rs| rs.spec);
    let mut stable_count = 0;
    match input.stable_rs {
        Some(stable) => stable_count = stable.spec,
        None => {
            // Without a distinct stable ReplicaSet the steps do not apply: go to 100 %.
            desired_new = r;
            desired_stable = 0;
        }
    }

    let max_allowed = r + input.max_surge;
    let total_current = input.other_spec
        + input.new_rs.map_or(0, |rs| rs.spec)
        + input.stable_rs.map_or(0, |rs| rs.spec);
    let mut scale_up = max_allowed - total_current;

    if let Some(stable) = input.stable_rs
        && stable.spec < desired_stable
        && scale_up > 0
    {
        if stable.spec + scale_up < desired_stable {
            stable_count = stable.spec + scale_up;
            scale_up = 0;
        } else {
            stable_count = desired_stable;
            scale_up -= desired_stable - stable.spec;
        }
    }
    if let Some(new) = input.new_rs
        && new.spec < desired_new
        && scale_up > 0
    {
        new_count = if new.spec + scale_up < desired_new {
            new.spec + scale_up
        } else {
            desired_new
        };
    }

    if input.other_spec > 0 {
        // Older ReplicaSets are drained first.
        return (new_count, stable_count);
    }

    let min_available = r - input.max_unavailable;
    let increasing = input.new_rs.is_none_or(|new| desired_new >= new.spec);
    let counted = replicas_for_scale_down(input.new_rs, !increasing)
        + replicas_for_scale_down(input.stable_rs, increasing);
    if counted <= min_available {
        return (new_count, stable_count);
    }
    let scale_down = counted - min_available;
    if !increasing {
        new_count = scale_down_count(input.new_rs, desired_new, scale_down, new_count);
        let (d, a) = adjust_within_limits(
            input.new_rs,
            input.stable_rs,
            new_count,
            stable_count,
            max_allowed,
            min_available,
        );
        new_count = d;
        stable_count = a;
    } else if input.stable_rs.is_some() {
        stable_count = scale_down_count(input.stable_rs, desired_stable, scale_down, stable_count);
        let (d, a) = adjust_within_limits(
            input.stable_rs,
            input.new_rs,
            stable_count,
            new_count,
            max_allowed,
            min_available,
        );
        stable_count = d;
        new_count = a;
    }
    (new_count, stable_count)
}

/// Argo's `GetReplicasForScaleDown`.
fn replicas_for_scale_down(rs: Option<RsCounts>, ignore_availability: bool) -> i32 {
    match rs {
        None => 0,
        Some(rs) if rs.spec < rs.available => rs.spec,
        Some(rs) if ignore_availability => rs.spec,
        Some(rs) => rs.available,
    }
}

/// Argo's `calculateScaleDownReplicaCount`.
fn scale_down_count(drain: Option<RsCounts>, desired: i32, scale_down: i32, current: i32) -> i32 {
    match drain {
        Some(rs) if rs.spec > desired => desired.max(rs.spec - scale_down),
        _ => current,
    }
}

/// Argo's `adjustReplicaWithinLimits`: returns (drain, adjust).
fn adjust_within_limits(
    drain: Option<RsCounts>,
    adjust: Option<RsCounts>,
    mut drain_count: i32,
    mut adjust_count: i32,
    max_allowed: i32,
    min_available: i32,
) -> (i32, i32) {
    let mut over = 0.max(adjust_count + drain_count - max_allowed);
    let mut total_available = 0;
    if let Some(d) = drain {
        total_available += d.available.min(drain_count);
    }
    if let Some(a) = adjust {
        adjust_count -= over;
        total_available += a.available.min(adjust_count);
        let extra_available = 0.max(a.available - adjust_count);
        let more_needed = 0.max(min_available - total_available);
        adjust_count += extra_available.min(more_needed);
        over = 0.max(adjust_count + drain_count - max_allowed);
        drain_count -= over;
    }
    (drain_count, adjust_count)
}

/// `minPodsPerReplicaSet` applied to a count (traffic-routed canary only): a non-zero count is
/// raised to the minimum, which is itself capped at `spec.replicas`.
pub fn apply_min_pods(count: i32, min_pods: Option<i32>, replicas: i32) -> i32 {
    match min_pods {
        Some(min) if count != 0 => count.max(min.min(replicas)),
        _ => count,
    }
}

/// Inputs of [`traffic_routed_counts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrafficRoutedInput {
    /// The rollout's `spec.replicas`.
    pub replicas: i32,
    /// Desired canary weight (ignored when `scale_replicas` is set).
    pub weight: i32,
    /// `setCanaryScale.replicas` in effect, used as is.
    pub scale_replicas: Option<i32>,
    /// Maximum traffic weight.
    pub max_weight: i32,
    /// `canary.dynamicStableScale`.
    pub dynamic_stable_scale: bool,
    /// `status.abort`.
    pub aborted: bool,
    /// Weights `(canary, stable)` passed in (the previous status weights for the stable side).
    pub weights: Option<(i32, i32)>,
    /// `canary.minPodsPerReplicaSet`.
    pub min_pods: Option<i32>,
}

/// Argo's `CalculateReplicaCountsForTrafficRoutedCanary`: (canary, stable).
pub fn traffic_routed_counts(input: &TrafficRoutedInput) -> (i32, i32) {
    let r = input.replicas;
    let mut canary = match input.scale_replicas {
        Some(n) => n,
        None => apply_min_pods(
            traffic_weight_to_replicas(r, input.weight, input.max_weight),
            input.min_pods,
            r,
        ),
    };
    if !input.dynamic_stable_scale {
        return (canary, r);
    }
    let mut stable =
        traffic_weight_to_replicas(r, input.max_weight - input.weight, input.max_weight);
    if let Some((canary_weight, stable_weight)) = input.weights {
        stable = stable.max(traffic_weight_to_replicas(
            r,
            stable_weight,
            input.max_weight,
        ));
        if input.aborted {
            canary = canary.max(traffic_weight_to_replicas(
                r,
                canary_weight,
                input.max_weight,
            ));
        }
    }
    (
        apply_min_pods(canary, input.min_pods, r),
        apply_min_pods(stable, input.min_pods, r),
    )
}

/// Argo's `GetDesiredCanaryWeight` for an aborted rollout with `dynamicStableScale` and both a
/// new and a stable ReplicaSet: steps the canary back through the `setWeight` steps in reverse.
///
/// `set_weights` are the `setWeight` values in step order. `explicit_abort_delay` is true when
/// `abortScaleDownDelaySeconds` is set to a non-zero value; then only the stable side's
/// availability counts (so the canary cannot hold the weight up forever, upstream issue #4898).
pub fn dynamic_abort_weight(
    replicas: i32,
    max_weight: i32,
    set_weights: &[i32],
    stable_available: i32,
    new_available: i32,
    explicit_abort_delay: bool,
) -> i32 {
    let expected_canary = replicas - stable_available;
    let canary = if explicit_abort_delay {
        expected_canary
    } else {
        expected_canary.max(new_available)
    };
    for &weight in set_weights.iter().rev() {
        if traffic_weight_to_replicas(replicas, weight, max_weight) < canary {
            return weight;
        }
    }
    0
}

/// The user's `replicaProgressThreshold`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressThreshold {
    /// A percentage of the desired count.
    Percent(i32),
    /// A number of pods.
    Pods(i32),
}

/// Argo's `ReplicaProgressThresholdMet`: whether the ReplicaSet has enough available pods for
/// `desired`. Without a threshold (or with a negative value) every desired pod must exist and be
/// available.
pub fn progress_threshold_met(
    threshold: Option<ProgressThreshold>,
    rs: Option<RsCounts>,
    desired: i32,
) -> bool {
    let all_available =
        |rs: Option<RsCounts>| rs.is_some_and(|rs| rs.spec == desired && rs.available == desired);
    let Some(rs_counts) = rs else {
        return all_available(rs);
    };
    match threshold {
        None => all_available(rs),
        Some(ProgressThreshold::Percent(v)) | Some(ProgressThreshold::Pods(v)) if v < 0 => {
            all_available(rs)
        }
        Some(ProgressThreshold::Percent(v)) => {
            if desired == 0 {
                return true;
            }
            let current = f64::from(rs_counts.available) / f64::from(desired) * 100.0;
            current >= f64::from(v) || (current - f64::from(v)).abs() <= 1e-10
        }
        Some(ProgressThreshold::Pods(v)) => rs_counts.available >= v,
    }
}

/// Inputs of [`at_desired_counts`] besides the desired counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AtDesiredInput {
    /// The new ReplicaSet.
    pub new_rs: Option<RsCounts>,
    /// `status.replicas` of the new ReplicaSet is not needed; the stable one's is.
    pub stable_rs: Option<StableCounts>,
    /// Whether traffic routing is configured.
    pub traffic_routing: bool,
    /// `dynamicStableScale` (only meaningful with traffic routing).
    pub dynamic_stable_scale: bool,
    /// Available pods summed over the other ReplicaSets.
    pub other_available: i32,
    /// The user's threshold.
    pub threshold: Option<ProgressThreshold>,
}

/// The stable ReplicaSet as the "at desired" check sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StableCounts {
    /// `spec.replicas`.
    pub spec: i32,
    /// `status.replicas` (created pods).
    pub created: i32,
}

/// Argo's `AtDesiredReplicaCountsForCanary`, given the desired (new, stable) counts.
pub fn at_desired_counts(input: &AtDesiredInput, desired_new: i32, desired_stable: i32) -> bool {
    if !progress_threshold_met(input.threshold, input.new_rs, desired_new) {
        return false;
    }
    if !input.traffic_routing || !input.dynamic_stable_scale {
        let created = input
            .stable_rs
            .is_some_and(|s| s.spec == desired_stable && s.created == desired_stable);
        if !created {
            return false;
        }
    }
    if !input.traffic_routing && input.other_available != 0 {
        return false;
    }
    true
}

#[cfg(test)]
mod tests;
