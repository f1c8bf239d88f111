//! Target group verification through the ELBv2 API (`--aws-verify-target-group`): does the load
//! balancer behind each Ingress give the canary's (and each experiment's) target group the
//! desired weight? Also what `status.alb` and `status.albs` record.
//!
//! For each Ingress, each hostname in `status.loadBalancer.ingress[]` is looked up among the
//! load balancers by DNS name; its target groups are read with their tags and weights
//! ([`Elbv2Client::target_group_metadata`]); a target group belongs to a Service when its
//! resource-id tag (`ingress.k8s.aws/resource`) is `<namespace>/<ingress>-<service>:<port>`.

use rollouts_api::{AlbStatus, AwsResourceRef, Rollout, WeightDestination};
use rollouts_plugin::PluginEvent;
use serde_json::Value;

use crate::{
    config::AlbConfig,
    elbv2::{AwsError, Elbv2Client, LoadBalancer, TargetGroupMeta},
};

/// What verifying the target groups found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetGroupReport {
    /// Every Ingress's load balancer gives the canary and every experiment destination their
    /// weights.
    pub verified: bool,
    /// Why not, one line per problem (empty when verified).
    pub problems: Vec<String>,
    /// Argo's events: `TargetGroupVerified`, `TargetGroupUnverified`, `LoadBalancerNotFound`,
    /// `TargetGroupVerifyError`.
    pub events: Vec<PluginEvent>,
    /// `status.alb`: the load balancer and target groups of the last Ingress with one.
    pub alb: AlbStatus,
    /// `status.albs`: one entry per Ingress, in order.
    pub albs: Vec<AlbStatus>,
    /// The AWS error that stopped the verification, if one did.
    pub error: Option<AwsError>,
}

/// Argo's `ShouldVerifyWeight`: the rollout is in an update (a stable ReplicaSet, not fully
/// promoted) and either at a `setWeight` step, or past the last step with the weight at the
/// maximum.
pub fn should_verify_weight(rollout: &Rollout, desired_weight: i32) -> bool {
    let status = rollout.status.as_ref();
    let stable = status
        .and_then(|s| s.stable_rs.as_deref())
        .filter(|s| !s.is_empty());
    let Some(stable) = stable else {
        return false;
    };
    let fully_promoted = status.and_then(|s| s.current_pod_hash.as_deref()) == Some(stable);
    if fully_promoted {
        return false;
    }
    let Some(canary) = rollout.spec.canary() else {
        return false;
    };
    let steps = canary.steps.as_deref().unwrap_or_default();
    let index = status
        .and_then(|s| s.current_step_index)
        .unwrap_or_default();
    let step = usize::try_from(index).ok().and_then(|i| steps.get(i));
    let max = canary
        .traffic_routing
        .as_ref()
        .and_then(|t| t.max_traffic_weight)
        .unwrap_or(100);
    match step {
        Some(step) => step.set_weight.is_some(),
        None => desired_weight == max,
    }
}

fn resource(name: &str, arn: &str, skip: usize) -> AwsResourceRef {
    let parts: Vec<&str> = arn.split('/').collect();
    let full_name = if parts.len() > skip {
        parts[skip..].join("/")
    } else {
        tracing::error!(arn, "Cannot read a full name from this ARN.");
        String::new()
    };
    AwsResourceRef {
        name: name.to_string(),
        arn: arn.to_string(),
        full_name: Some(full_name),
    }
}

/// `{name, arn, fullName}` of a load balancer; the full name is what follows the ARN's second
/// `/` (`<name>/<id>` of `...:loadbalancer/app/<name>/<id>`), as Argo records it.
pub fn load_balancer_ref(lb: &LoadBalancer) -> AwsResourceRef {
    resource(&lb.name, &lb.arn, 2)
}

/// `{name, arn, fullName}` of a target group; the full name is what follows the ARN's first `/`
/// (`<name>/<id>` of `...:targetgroup/<name>/<id>`), as Argo records it.
pub fn target_group_ref(tg: &TargetGroupMeta) -> AwsResourceRef {
    resource(&tg.name, &tg.arn, 1)
}

/// The hostnames in an Ingress's `status.loadBalancer.ingress[]`.
pub fn hostnames(ingress: &Value) -> Vec<String> {
    ingress["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["hostname"].as_str())
        .filter(|h| !h.is_empty())
        .map(String::from)
        .collect()
}

/// Verifies the target groups behind `ingresses` (name and Ingress JSON, in the order of the
/// Rollout) for `weight` and `additional`, starting from the Rollout's current `status.alb` and
/// `status.albs` (`previous`).
pub async fn verify_target_groups(
    aws: &Elbv2Client,
    cfg: &AlbConfig,
    ingresses: &[(String, Value)],
    weight: i32,
    additional: &[WeightDestination],
    previous: (Option<AlbStatus>, Option<Vec<AlbStatus>>),
) -> TargetGroupReport {
    let mut report = TargetGroupReport {
        alb: previous.0.unwrap_or_default(),
        albs: previous
            .1
            .filter(|a| a.len() == ingresses.len())
            .unwrap_or_else(|| vec![AlbStatus::default(); ingresses.len()]),
        ..Default::default()
    };
    let mut all_verified = true;
    for (i, (name, ingress)) in ingresses.iter().enumerate() {
        match verify_ingress(aws, cfg, i, name, ingress, weight, additional, &mut report).await {
            Ok(true) => {}
            Ok(false) => all_verified = false,
            Err(e) => {
                report.events.push(PluginEvent::warning(
                    "TargetGroupVerifyError",
                    format!(
                        "Failed to verify Service {} (TargetGroup unknown): {e}",
                        cfg.canary_service
                    ),
                ));
                report.problems.push(e.to_string());
                report.error = Some(e);
                report.verified = false;
                return report;
            }
        }
    }
    report.verified = all_verified;
    report
}

/// Verifies one Ingress's load balancer(s); `Ok(false)` with the problems recorded when a
/// weight is not (yet) there.
#[allow(clippy::too_many_arguments)]
async fn verify_ingress(
    aws: &Elbv2Client,
    cfg: &AlbConfig,
    index: usize,
    name: &str,
    ingress: &Value,
    weight: i32,
    additional: &[WeightDestination],
    report: &mut TargetGroupReport,
) -> Result<bool, AwsError> {
    let hosts = hostnames(ingress);
    if hosts.is_empty() {
        tracing::info!(ingress = name, "LoadBalancer not yet allocated");
        report.problems.push(format!(
            "Ingress `{name}` has no load balancer hostname in status.loadBalancer yet"
        ));
        return Ok(false);
    }
    let canary_id = cfg.resource_id(name, &cfg.canary_service);
    let stable_id = cfg.resource_id(name, &cfg.stable_service);
    // What must be found with its weight: the canary, then each experiment destination.
    let mut wanted: Vec<(String, String, i32)> =
        vec![(cfg.canary_service.clone(), canary_id.clone(), weight)];
    for dest in additional {
        let service = dest.service_name.clone().unwrap_or_default();
        let id = cfg.resource_id(name, &service);
        wanted.push((service, id, dest.weight));
    }
    let mut verified = true;
    for host in hosts {
        let Some(lb) = aws.find_load_balancer_by_dns_name(&host).await? else {
            report.events.push(PluginEvent::warning(
                "LoadBalancerNotFound",
                format!("Failed to find load balancer: {host}"),
            ));
            report.problems.push(format!(
                "no load balancer has the DNS name {host} (Ingress `{name}`)"
            ));
            return Ok(false);
        };
        let lb_ref = load_balancer_ref(&lb);
        for status in [&mut report.albs[index], &mut report.alb] {
            status.ingress = Some(name.to_string());
            status.load_balancer = Some(lb_ref.clone());
        }
        let groups = aws.target_group_metadata(&lb.arn).await?;
        let tag_of = |tg: &TargetGroupMeta| tg.tags.get(&cfg.resource_id_tag).cloned();
        for tg in &groups {
            let tag = tag_of(tg);
            if tag.as_deref() == Some(canary_id.as_str()) {
                for status in [&mut report.albs[index], &mut report.alb] {
                    status.canary_target_group = Some(target_group_ref(tg));
                }
            } else if tag.as_deref() == Some(stable_id.as_str()) {
                for status in [&mut report.albs[index], &mut report.alb] {
                    status.stable_target_group = Some(target_group_ref(tg));
                }
            }
        }
        for (service, id, want) in &wanted {
            let found = groups
                .iter()
                .find(|tg| tag_of(tg).as_deref() == Some(id.as_str()) && tg.weight.is_some());
            let Some(tg) = found else {
                verified = false;
                report.problems.push(format!(
                    "load balancer {} has no weighted target group tagged {}={id}",
                    lb.name, cfg.resource_id_tag
                ));
                continue;
            };
            let current = tg.weight.unwrap_or_default();
            if current == *want {
                report.events.push(PluginEvent::normal(
                    "TargetGroupVerified",
                    format!(
                        "Service {service} (TargetGroup {}) verified: canary weight {want} set",
                        tg.arn
                    ),
                ));
            } else {
                verified = false;
                let message = format!(
                    "Service {service} (TargetGroup {}) not verified: canary weight {want} not yet set (current: {current})",
                    tg.arn
                );
                report.events.push(PluginEvent::warning(
                    "TargetGroupUnverified",
                    message.clone(),
                ));
                report.problems.push(message);
            }
        }
    }
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(status: Value, steps: Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"canary": {
                    "canaryService": "web-canary", "stableService": "web-stable",
                    "trafficRouting": {"alb": {"ingress": "web", "servicePort": 80}},
                    "steps": steps
                }}
            },
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn weights_are_verified_at_set_weight_steps_and_at_the_end_of_an_update() {
        let steps = json!([{"setWeight": 20}, {"pause": {}}]);
        let updating = |index: Value| json!({"stableRS": "s1", "currentPodHash": "c2", "currentStepIndex": index});
        assert!(should_verify_weight(
            &rollout(updating(json!(0)), steps.clone()),
            20
        ));
        // No index yet: the first step.
        assert!(should_verify_weight(
            &rollout(updating(Value::Null), steps.clone()),
            20
        ));
        assert!(!should_verify_weight(
            &rollout(updating(json!(1)), steps.clone()),
            20
        ));
        // Past the last step: only at the maximum weight.
        assert!(should_verify_weight(
            &rollout(updating(json!(2)), steps.clone()),
            100
        ));
        assert!(!should_verify_weight(
            &rollout(updating(json!(2)), steps.clone()),
            20
        ));
        // Fully promoted, or no stable ReplicaSet: never.
        let promoted = json!({"stableRS": "c2", "currentPodHash": "c2", "currentStepIndex": 0});
        assert!(!should_verify_weight(&rollout(promoted, steps.clone()), 20));
        assert!(!should_verify_weight(
            &rollout(json!({"currentStepIndex": 0}), steps),
            20
        ));
    }

    #[test]
    fn status_references_carry_the_full_names() {
        let lb = LoadBalancer {
            arn: "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/web-alb/50dc6c495c0c9188".into(),
            dns_name: "web-alb-1.us-west-2.elb.amazonaws.com".into(),
            name: "web-alb".into(),
        };
        assert_eq!(
            load_balancer_ref(&lb),
            AwsResourceRef {
                name: "web-alb".into(),
                arn: lb.arn.clone(),
                full_name: Some("web-alb/50dc6c495c0c9188".into()),
            }
        );
        let tg = TargetGroupMeta {
            arn: "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/k8s-shop-webcanar/73e2d6bc24d8a067".into(),
            name: "k8s-shop-webcanar".into(),
            ..Default::default()
        };
        assert_eq!(
            target_group_ref(&tg).full_name.as_deref(),
            Some("k8s-shop-webcanar/73e2d6bc24d8a067")
        );
        let odd = TargetGroupMeta {
            arn: "no-slashes".into(),
            ..Default::default()
        };
        assert_eq!(target_group_ref(&odd).full_name.as_deref(), Some(""));
        assert_eq!(
            hostnames(&json!({"status": {"loadBalancer": {"ingress": [
                {"hostname": "a.elb.amazonaws.com"}, {"ip": "10.0.0.1"}, {"hostname": ""}
            ]}}})),
            ["a.elb.amazonaws.com"]
        );
    }
}
