//! The anti-affinity term injected into a new ReplicaSet while an update is in progress
//! (`argo-core.md` §2.14): it keeps canary pods off the nodes of the stable pods.

use k8s_openapi::api::core::v1::{
    Affinity, PodAffinityTerm, PodAntiAffinity, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use rollouts_api::{AntiAffinity, Rollout, labels};

use k8s_openapi::api::core::v1::PodTemplateSpec as K8sPodTemplateSpec;

fn strategy(rollout: &Rollout) -> Option<&AntiAffinity> {
    let aa = rollout
        .spec
        .canary()
        .and_then(|c| c.anti_affinity.as_ref())
        .or_else(|| {
            rollout
                .spec
                .blue_green()
                .and_then(|b| b.anti_affinity.as_ref())
        })?;
    (aa.preferred_during_scheduling_ignored_during_execution
        .is_some()
        || aa
            .required_during_scheduling_ignored_during_execution
            .is_some())
    .then_some(aa)
}

fn stable(rollout: &Rollout) -> &str {
    rollout
        .status
        .as_ref()
        .and_then(|s| s.stable_rs.as_deref())
        .unwrap_or("")
}

fn injected_term(rollout: &Rollout) -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: labels::POD_TEMPLATE_HASH.to_string(),
                operator: "In".to_string(),
                values: Some(vec![stable(rollout).to_string()]),
            }]),
            match_labels: None,
        }),
        namespaces: Some(vec![rollout.metadata.namespace.clone().unwrap_or_default()]),
        topology_key: "kubernetes.io/hostname".to_string(),
        ..Default::default()
    }
}

/// Argo's `GenerateReplicaSetAffinity`: the template's affinity plus the injected term while
/// the stable revision differs from `current_hash`.
pub fn generate(rollout: &Rollout, current_hash: &str) -> Option<Affinity> {
    let mut affinity = rollout
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.affinity.clone());
    let Some(aa) = strategy(rollout) else {
        return affinity;
    };
    let stable = stable(rollout);
    if stable.is_empty() || stable == current_hash {
        return affinity;
    }
    let term = injected_term(rollout);
    let anti = affinity
        .get_or_insert_with(Affinity::default)
        .pod_anti_affinity
        .get_or_insert_with(PodAntiAffinity::default);
    if let Some(p) = &aa.preferred_during_scheduling_ignored_during_execution {
        anti.preferred_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(WeightedPodAffinityTerm {
                weight: p.weight,
                pod_affinity_term: term,
            });
    } else {
        anti.required_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(term);
    }
    affinity
}

fn is_injected(term: &PodAffinityTerm) -> bool {
    term.label_selector
        .as_ref()
        .and_then(|s| s.match_expressions.as_ref())
        .is_some_and(|e| e.iter().any(|r| r.key == labels::POD_TEMPLATE_HASH))
}

/// Argo's `RemoveInjectedAntiAffinityRule`.
pub fn remove_injected(affinity: Option<Affinity>, rollout: &Rollout) -> Option<Affinity> {
    let aa = strategy(rollout)?;
    let mut affinity = affinity?;
    if let Some(anti) = affinity.pod_anti_affinity.as_mut() {
        if aa
            .preferred_during_scheduling_ignored_during_execution
            .is_some()
        {
            if let Some(list) = anti
                .preferred_during_scheduling_ignored_during_execution
                .as_mut()
                && let Some(i) = list.iter().position(|t| is_injected(&t.pod_affinity_term))
            {
                list.remove(i);
            }
        } else if let Some(list) = anti
            .required_during_scheduling_ignored_during_execution
            .as_mut()
            && let Some(i) = list.iter().position(is_injected)
        {
            list.remove(i);
        }
        if anti
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .is_some_and(Vec::is_empty)
        {
            anti.required_during_scheduling_ignored_during_execution = None;
        }
        if anti
            .preferred_during_scheduling_ignored_during_execution
            .as_ref()
            .is_some_and(Vec::is_empty)
        {
            anti.preferred_during_scheduling_ignored_during_execution = None;
        }
        if anti
            .required_during_scheduling_ignored_during_execution
            .is_none()
            && anti
                .preferred_during_scheduling_ignored_during_execution
                .is_none()
        {
            affinity.pod_anti_affinity = None;
        }
    }
    if affinity.pod_anti_affinity.is_none()
        && affinity.pod_affinity.is_none()
        && affinity.node_affinity.is_none()
    {
        return None;
    }
    Some(affinity)
}

/// Argo's `IfInjectedAntiAffinityRuleNeedsUpdate`: the injected term names an old stable hash.
pub fn needs_update(
    template: Option<&K8sPodTemplateSpec>,
    rollout: &Rollout,
    current_hash: &str,
) -> bool {
    let Some(aa) = strategy(rollout) else {
        return false;
    };
    let stable = stable(rollout);
    if stable == current_hash {
        return false;
    }
    let Some(anti) = template
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_anti_affinity.as_ref())
    else {
        return false;
    };
    let term = if aa
        .preferred_during_scheduling_ignored_during_execution
        .is_some()
    {
        anti.preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .map(|t| &t.pod_affinity_term)
            .find(|t| is_injected(t))
    } else {
        anti.required_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .find(|t| is_injected(t))
    };
    term.and_then(|t| t.label_selector.as_ref())
        .and_then(|s| s.match_expressions.as_ref())
        .into_iter()
        .flatten()
        .any(|r| {
            r.key == labels::POD_TEMPLATE_HASH
                && r.values
                    .as_ref()
                    .and_then(|v| v.first())
                    .is_some_and(|v| v != stable)
        })
}
