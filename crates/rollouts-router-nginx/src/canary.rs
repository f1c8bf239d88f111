//! The canary Ingress the router wants, as JSON, and how it compares with the one in the cluster.
//!
//! Everything here is pure: the router's I/O (`lib.rs`) reads the Ingresses, asks these functions
//! what to create or patch, and sends that.

use std::collections::BTreeMap;

use rollouts_api::Rollout;
use serde_json::{Map, Value, json};

use crate::NginxError;

/// The default annotation prefix of ingress-nginx.
pub const DEFAULT_ANNOTATION_PREFIX: &str = "nginx.ingress.kubernetes.io";
/// The Ingress class annotation copied from the stable Ingress.
pub const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// Suffix of canary Ingress names.
pub const CANARY_SUFFIX: &str = "-canary";
/// Longest object name Kubernetes accepts.
const NAME_LIMIT: usize = 253;

/// What the router needs from the Rollout, resolved once when it is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NginxConfig {
    /// The Rollout's namespace (the Ingresses live there).
    pub namespace: String,
    /// The Rollout's name (the canary Ingresses are named after it).
    pub rollout: String,
    /// The Rollout's uid, for the ownership check; `None` for a rollout that was never stored.
    pub rollout_uid: Option<String>,
    /// The stable Ingresses (`stableIngresses`, else `[stableIngress]`).
    pub stable_ingresses: Vec<String>,
    /// `stableService`: the backend the canary Ingress replaces.
    pub stable_service: String,
    /// `canaryService`: the canary Ingress's backend.
    pub canary_service: String,
    /// `annotationPrefix` (default `nginx.ingress.kubernetes.io`).
    pub annotation_prefix: String,
    /// `additionalIngressAnnotations` (keys get the prefix).
    pub additional_annotations: BTreeMap<String, String>,
    /// `canaryIngressAnnotations` (full keys).
    pub canary_annotations: BTreeMap<String, String>,
    /// `trafficRouting.maxTrafficWeight`.
    pub max_traffic_weight: Option<i32>,
}

impl NginxConfig {
    /// Reads `spec.strategy.canary` of `rollout`.
    pub fn from_rollout(rollout: &Rollout) -> Result<Self, NginxError> {
        let canary = rollout
            .spec
            .strategy
            .as_ref()
            .and_then(|s| s.canary.as_ref())
            .ok_or(NginxError::Config("spec.strategy.canary is required"))?;
        let routing = canary.traffic_routing.as_ref().ok_or(NginxError::Config(
            "spec.strategy.canary.trafficRouting is required",
        ))?;
        let nginx = routing.nginx.as_ref().ok_or(NginxError::Config(
            "spec.strategy.canary.trafficRouting.nginx is required",
        ))?;
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let stable_ingresses = match &nginx.stable_ingresses {
            Some(list) if !list.is_empty() => list.clone(),
            _ => non_empty(&nginx.stable_ingress).into_iter().collect(),
        };
        if stable_ingresses.is_empty() {
            return Err(NginxError::Config(
                "spec.strategy.canary.trafficRouting.nginx.stableIngress or stableIngresses is required",
            ));
        }
        if stable_ingresses.iter().any(String::is_empty) {
            return Err(NginxError::Config(
                "spec.strategy.canary.trafficRouting.nginx.stableIngresses has an empty name",
            ));
        }
        Ok(Self {
            namespace: rollout
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_string()),
            rollout: rollout
                .metadata
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .ok_or(NginxError::Config("the Rollout has no metadata.name"))?,
            rollout_uid: rollout.metadata.uid.clone().filter(|u| !u.is_empty()),
            stable_ingresses,
            stable_service: non_empty(&canary.stable_service).ok_or(NginxError::Config(
                "spec.strategy.canary.stableService is required with NGINX",
            ))?,
            canary_service: non_empty(&canary.canary_service).ok_or(NginxError::Config(
                "spec.strategy.canary.canaryService is required with NGINX",
            ))?,
            annotation_prefix: non_empty(&nginx.annotation_prefix)
                .unwrap_or_else(|| DEFAULT_ANNOTATION_PREFIX.to_string()),
            additional_annotations: nginx
                .additional_ingress_annotations
                .clone()
                .unwrap_or_default(),
            canary_annotations: nginx.canary_ingress_annotations.clone().unwrap_or_default(),
            max_traffic_weight: routing.max_traffic_weight,
        })
    }

    /// `<prefix>/<name>`.
    pub fn annotation(&self, name: &str) -> String {
        format!("{}/{name}", self.annotation_prefix)
    }
}

/// `<rollout>-<stableIngress>-canary`, the first part cut to 246 bytes so that the name fits
/// Kubernetes' 253 (Argo's `GetCanaryIngressName`).
pub fn canary_ingress_name(rollout: &str, stable_ingress: &str) -> String {
    let mut prefix = format!("{rollout}-{stable_ingress}");
    let room = NAME_LIMIT - CANARY_SUFFIX.len();
    if prefix.len() > room {
        let mut cut = room;
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    prefix + CANARY_SUFFIX
}

/// The annotations of the canary Ingress, in Argo's order of precedence: the Ingress class of the
/// stable Ingress, `additionalIngressAnnotations` (prefixed unless the key already starts with
/// the prefix, a plain string test), `canaryIngressAnnotations` (as given), then
/// `<prefix>/canary: "true"`, `<prefix>/canary-weight` and, with `maxTrafficWeight`,
/// `<prefix>/canary-weight-total`.
pub fn canary_annotations(
    cfg: &NginxConfig,
    stable: &Value,
    weight: i32,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(class) = stable["metadata"]["annotations"][INGRESS_CLASS_ANNOTATION].as_str() {
        out.insert(INGRESS_CLASS_ANNOTATION.to_string(), class.to_string());
    }
    for (key, value) in &cfg.additional_annotations {
        let key = if key.starts_with(&cfg.annotation_prefix) {
            key.clone()
        } else {
            cfg.annotation(key)
        };
        out.insert(key, value.clone());
    }
    for (key, value) in &cfg.canary_annotations {
        out.insert(key.clone(), value.clone());
    }
    out.insert(cfg.annotation("canary"), "true".to_string());
    out.insert(cfg.annotation("canary-weight"), weight.to_string());
    if let Some(total) = cfg.max_traffic_weight {
        out.insert(cfg.annotation("canary-weight-total"), total.to_string());
    }
    out
}

/// The rules of the canary Ingress: the stable Ingress's rules that have at least one path whose
/// backend is the stable Service, with every such backend pointed at the canary Service (other
/// paths of those rules are kept as they are). Rules without `http` are skipped.
pub fn canary_rules(cfg: &NginxConfig, stable: &Value) -> Vec<Value> {
    let mut rules = Vec::new();
    for rule in stable["spec"]["rules"].as_array().into_iter().flatten() {
        let mut rule = rule.clone();
        let mut uses_stable = false;
        if let Some(paths) = rule["http"]["paths"].as_array_mut() {
            for path in paths {
                let service = &mut path["backend"]["service"]["name"];
                if service.as_str() == Some(cfg.stable_service.as_str()) {
                    *service = Value::String(cfg.canary_service.clone());
                    uses_stable = true;
                }
            }
        }
        if uses_stable {
            rules.push(rule);
        }
    }
    rules
}

/// The canary Ingress `name` for the stable Ingress `stable` (JSON as read) at `weight`: its
/// rules (see [`canary_rules`]), `spec.tls` and `spec.ingressClassName` copied, its annotations
/// (see [`canary_annotations`]) and, with `owner`, the controller reference to the Rollout.
pub fn desired_canary(
    cfg: &NginxConfig,
    owner: Option<Value>,
    stable_name: &str,
    stable: &Value,
    name: &str,
    weight: i32,
) -> Result<Value, NginxError> {
    let rules = canary_rules(cfg, stable);
    if rules.is_empty() {
        return Err(NginxError::NoRules {
            ingress: stable_name.to_string(),
            service: cfg.stable_service.clone(),
        });
    }
    let mut spec = Map::new();
    spec.insert("rules".into(), Value::Array(rules));
    for key in ["tls", "ingressClassName"] {
        if let Some(v) = stable["spec"].get(key).filter(|v| !v.is_null()) {
            spec.insert(key.into(), v.clone());
        }
    }
    let mut metadata = json!({
        "name": name,
        "namespace": cfg.namespace,
        "annotations": canary_annotations(cfg, stable, weight),
    });
    if let Some(owner) = owner {
        metadata["ownerReferences"] = json!([owner]);
    }
    Ok(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": spec,
    }))
}

/// The JSON merge patch that brings the existing canary Ingress `current` to `desired`, or `None`
/// when nothing differs:
///
/// - annotations of `desired` whose value differs are set; other annotations stay (Argo merges
///   them too: other controllers annotate Ingresses), except that `<prefix>/canary-weight-total`
///   is removed when `maxTrafficWeight` is no longer set, because it would change what the weight
///   means;
/// - `spec.rules`, `spec.tls` and `spec.ingressClassName` are set to the desired ones (removed when
///   the stable Ingress has none);
/// - labels, owner references and any other `spec` field are left alone.
pub fn canary_patch(cfg: &NginxConfig, current: &Value, desired: &Value) -> Option<Value> {
    let mut annotations = Map::new();
    let have = &current["metadata"]["annotations"];
    for (key, value) in desired["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if &have[key] != value {
            annotations.insert(key.clone(), value.clone());
        }
    }
    let total = cfg.annotation("canary-weight-total");
    if cfg.max_traffic_weight.is_none() && have.get(&total).is_some() {
        annotations.insert(total, Value::Null);
    }
    let mut spec = Map::new();
    for key in ["rules", "tls", "ingressClassName"] {
        let want = desired["spec"].get(key).cloned().unwrap_or(Value::Null);
        let got = current["spec"].get(key).cloned().unwrap_or(Value::Null);
        if want != got {
            spec.insert(key.into(), want);
        }
    }
    let mut patch = Map::new();
    if !annotations.is_empty() {
        patch.insert("metadata".into(), json!({ "annotations": annotations }));
    }
    if !spec.is_empty() {
        patch.insert("spec".into(), Value::Object(spec));
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// Why the canary Ingress `name` (`current`, `None` if it does not exist) does not send `weight`
/// to the canary, or `None` when it does: the weight found (if it parses) and a description.
pub fn mismatch(
    cfg: &NginxConfig,
    name: &str,
    current: Option<&Value>,
    weight: i32,
) -> Option<(Option<i32>, String)> {
    let Some(current) = current else {
        return Some((None, format!("canary Ingress `{name}` does not exist")));
    };
    let annotations = &current["metadata"]["annotations"];
    let read = |key: &str| annotations[key].as_str();
    let weight_key = cfg.annotation("canary-weight");
    let observed = read(&weight_key).and_then(|w| w.trim().parse::<i32>().ok());
    let canary_key = cfg.annotation("canary");
    if read(&canary_key) != Some("true") {
        return Some((
            observed,
            format!(
                "canary Ingress `{name}` has {canary_key} {:?}, want \"true\"",
                read(&canary_key).unwrap_or("(unset)")
            ),
        ));
    }
    if observed != Some(weight) {
        return Some((
            observed,
            format!(
                "canary Ingress `{name}` has {weight_key} {:?}, want \"{weight}\"",
                read(&weight_key).unwrap_or("(unset)")
            ),
        ));
    }
    let total_key = cfg.annotation("canary-weight-total");
    let total = read(&total_key);
    let want_total = cfg.max_traffic_weight.map(|m| m.to_string());
    let total_ok = match &want_total {
        Some(want) => total == Some(want.as_str()),
        None => total.is_none_or(|t| t == "100"),
    };
    if !total_ok {
        return Some((
            observed,
            format!(
                "canary Ingress `{name}` has {total_key} {:?}, want {}",
                total.unwrap_or("(unset)"),
                want_total.map_or("it unset".to_string(), |t| format!("\"{t}\""))
            ),
        ));
    }
    let backends_canary = current["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["http"]["paths"].as_array().into_iter().flatten())
        .any(|p| p["backend"]["service"]["name"] == cfg.canary_service.as_str());
    if !backends_canary {
        return Some((
            observed,
            format!(
                "canary Ingress `{name}` has no path to the canary Service `{}`",
                cfg.canary_service
            ),
        ));
    }
    None
}

#[cfg(test)]
mod tests;
