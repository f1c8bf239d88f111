//! The ApisixRoutes the router wants, as JSON, and how they compare with the ones in the cluster.
//!
//! Everything here is pure: the router's I/O (`lib.rs`) reads the routes, asks these functions
//! what to create or patch, and sends that.

use rollouts_api::{HeaderRoutingMatch, Rollout, SetHeaderRoute};
use serde_json::{Map, Value, json};

use crate::ApisixError;

/// `apisix.apache.org/v2`, the only version Argo writes.
pub const API_VERSION: &str = "apisix.apache.org/v2";

/// What the router needs from the Rollout, resolved once when it is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApisixConfig {
    /// The Rollout's namespace (the ApisixRoutes live there).
    pub namespace: String,
    /// The Rollout's uid, for the ownership checks; `None` for a rollout that was never stored.
    pub rollout_uid: Option<String>,
    /// `apisix.route.name`: the ApisixRoute whose backend weights change.
    pub route: String,
    /// `apisix.route.rules`: the names of the `spec.http[]` rules to change (default: a single
    /// rule named like the route, as in Argo).
    pub rules: Vec<String>,
    /// `canaryService`.
    pub canary_service: String,
    /// `stableService`.
    pub stable_service: String,
    /// `trafficRouting.managedRoutes[].name`: the header routes `remove_managed_routes` deletes.
    pub managed_routes: Vec<String>,
}

impl ApisixConfig {
    /// Reads `spec.strategy.canary` of `rollout`.
    pub fn from_rollout(rollout: &Rollout) -> Result<Self, ApisixError> {
        let canary = rollout
            .spec
            .strategy
            .as_ref()
            .and_then(|s| s.canary.as_ref())
            .ok_or(ApisixError::Config("spec.strategy.canary is required"))?;
        let routing = canary.traffic_routing.as_ref().ok_or(ApisixError::Config(
            "spec.strategy.canary.trafficRouting is required",
        ))?;
        let route = routing
            .apisix
            .as_ref()
            .and_then(|a| a.route.as_ref())
            .filter(|r| !r.name.is_empty())
            .ok_or(ApisixError::Config(
                "spec.strategy.canary.trafficRouting.apisix.route.name is required",
            ))?;
        let rules = match &route.rules {
            Some(rules) if !rules.is_empty() => rules.clone(),
            _ => vec![route.name.clone()],
        };
        if rules.iter().any(String::is_empty) {
            return Err(ApisixError::Config(
                "spec.strategy.canary.trafficRouting.apisix.route.rules has an empty name",
            ));
        }
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        Ok(Self {
            namespace: rollout
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_string()),
            rollout_uid: rollout.metadata.uid.clone().filter(|u| !u.is_empty()),
            route: route.name.clone(),
            rules,
            canary_service: non_empty(&canary.canary_service).ok_or(ApisixError::Config(
                "spec.strategy.canary.canaryService is required with APISIX",
            ))?,
            stable_service: non_empty(&canary.stable_service).ok_or(ApisixError::Config(
                "spec.strategy.canary.stableService is required with APISIX",
            ))?,
            managed_routes: routing
                .managed_routes
                .iter()
                .flatten()
                .map(|r| r.name.clone())
                .collect(),
        })
    }
}

/// A weight as a number (an integer, or an integral float).
pub fn weight_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        _ => None,
    }
}

fn http(route: &Value) -> Result<&Vec<Value>, ApisixError> {
    route["spec"]["http"].as_array().ok_or(ApisixError::Route(
        "spec.http was not found in Apisix Route manifest".into(),
    ))
}

/// The index of the `spec.http[]` rule named `name`, with Argo's errors.
fn rule_index(rules: &[Value], name: &str) -> Result<usize, ApisixError> {
    for (i, rule) in rules.iter().enumerate() {
        if !rule.is_object() {
            return Err(ApisixError::Route(
                "Failed type assertion for Apisix http route".into(),
            ));
        }
        match rule.get("name") {
            None => {
                return Err(ApisixError::Route(
                    "Apisix http route rule name field not found".into(),
                ));
            }
            Some(Value::String(n)) if n == name => return Ok(i),
            Some(Value::String(_)) => {}
            Some(_) => {
                return Err(ApisixError::Route(
                    "Failed type assertion for Apisix http route rule name".into(),
                ));
            }
        }
    }
    Err(ApisixError::Route(format!(
        "Apisix http route rule {name} not found"
    )))
}

fn backends_mut(rule: &mut Value) -> Result<&mut Vec<Value>, ApisixError> {
    match rule.get_mut("backends") {
        None => Err(ApisixError::Route(
            "Apisix http route backends not found".into(),
        )),
        Some(Value::Array(list)) => Ok(list),
        Some(_) => Err(ApisixError::Route(
            "Failed type assertion for Apisix http route backends".into(),
        )),
    }
}

fn service_name(backend: &Value) -> Result<&str, ApisixError> {
    if !backend.is_object() {
        return Err(ApisixError::Route(
            "Failed type assertion for Apisix http route backends".into(),
        ));
    }
    backend["serviceName"].as_str().ok_or(ApisixError::Route(
        "serviceName field was not found in backend".into(),
    ))
}

/// Sets `weight` on the first backend of `backends` named `service` (Argo's `setBackendWeight`).
fn set_backend_weight(
    backends: &mut [Value],
    service: &str,
    weight: i64,
) -> Result<(), ApisixError> {
    for backend in backends.iter_mut() {
        if service_name(backend)? == service {
            backend["weight"] = json!(weight);
            return Ok(());
        }
    }
    Err(ApisixError::Route(format!(
        "apisix route {service} backend was not found"
    )))
}

/// `spec.http` of the route with, in each configured rule, the canary backend at `weight` and
/// the stable backend at `100 − weight` (Argo ignores `maxTrafficWeight` here; so does this
/// router). Other rules, backends and fields are kept as they are.
pub fn weighted_http(
    cfg: &ApisixConfig,
    route: &Value,
    weight: i32,
) -> Result<Vec<Value>, ApisixError> {
    let mut rules = http(route)?.clone();
    for name in &cfg.rules {
        let i = rule_index(&rules, name)?;
        let backends = backends_mut(&mut rules[i])?;
        set_backend_weight(backends, &cfg.canary_service, i64::from(weight))?;
        set_backend_weight(backends, &cfg.stable_service, 100 - i64::from(weight))?;
    }
    Ok(rules)
}

/// The merge patch of `spec.http` that brings `route` to `desired`, or `None` when they are the
/// same. It carries the route's `resourceVersion`, so that the API server refuses it (409) when
/// someone changed the route since it was read, instead of overwriting their change.
pub fn http_patch(route: &Value, desired: Vec<Value>) -> Option<Value> {
    if route["spec"]["http"] == Value::Array(desired.clone()) {
        return None;
    }
    let mut patch = json!({"spec": {"http": desired}});
    if let Some(rv) = route["metadata"]["resourceVersion"].as_str() {
        patch["metadata"] = json!({ "resourceVersion": rv });
    }
    Some(patch)
}

/// The merge patch that brings the main route to `weight`, or `None` when it already is there.
/// Weights compare as numbers.
pub fn weight_patch(
    cfg: &ApisixConfig,
    route: &Value,
    weight: i32,
) -> Result<Option<Value>, ApisixError> {
    let desired = weighted_http(cfg, route, weight)?;
    if mismatch(cfg, Some(route), weight).is_none() {
        return Ok(None);
    }
    Ok(http_patch(route, desired))
}

/// Escapes the characters that mean something in a regular expression.
pub fn escape_regex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `match.exprs` of a header route: for each header match, `Equal` for `exact`,
/// `RegexMatch` for `regex`, and `RegexMatch` `^<prefix>.*` for `prefix` (the prefix escaped:
/// Argo writes it as it is, so that a `.` in it matches any character). A match with several
/// kinds set gives one expression per kind, as in Argo.
pub fn header_exprs(matches: &[HeaderRoutingMatch]) -> Vec<Value> {
    let mut exprs = Vec::new();
    for m in matches {
        let subject = json!({"scope": "Header", "name": m.header_name});
        let v = &m.header_value;
        if let Some(exact) = v.exact.as_deref().filter(|s| !s.is_empty()) {
            exprs.push(json!({"subject": subject, "op": "Equal", "value": exact}));
        }
        if let Some(regex) = v.regex.as_deref().filter(|s| !s.is_empty()) {
            exprs.push(json!({"subject": subject, "op": "RegexMatch", "value": regex}));
        }
        if let Some(prefix) = v.prefix.as_deref().filter(|s| !s.is_empty()) {
            exprs.push(json!({"subject": subject, "op": "RegexMatch",
                              "value": format!("^{}.*", escape_regex(prefix))}));
        }
    }
    exprs
}

/// `spec.http` of a header route: in each configured rule the canary backend gets weight 100,
/// the stable backend is removed, `match.exprs` are the header expressions, and (for a route
/// being created) `priority` is one more than the main route's so that APISIX tries it first.
pub fn header_http(
    cfg: &ApisixConfig,
    http_rules: &[Value],
    matches: &[HeaderRoutingMatch],
    is_new: bool,
) -> Result<Vec<Value>, ApisixError> {
    let mut rules = http_rules.to_vec();
    let exprs = header_exprs(matches);
    for name in &cfg.rules {
        let i = rule_index(&rules, name)?;
        let rule = &mut rules[i];
        let backends = backends_mut(rule)?;
        set_backend_weight(backends, &cfg.canary_service, 100)?;
        let mut kept = Vec::with_capacity(backends.len());
        for backend in backends.drain(..) {
            if service_name(&backend)? != cfg.stable_service {
                kept.push(backend);
            }
        }
        *backends = kept;
        if is_new {
            let priority = match rule.get("priority") {
                None | Some(Value::Null) => 0,
                Some(p) => weight_of(p).ok_or_else(|| {
                    ApisixError::Route(format!(
                        "priority of Apisix http route rule {name} is not an integer"
                    ))
                })?,
            };
            rule["priority"] = json!(priority + 1);
        }
        if !rule["match"].is_object() {
            rule["match"] = Value::Object(Map::new());
        }
        rule["match"]["exprs"] = Value::Array(exprs.clone());
    }
    Ok(rules)
}

/// The header route `name` to create from the main route `main`: a copy of it (labels and
/// annotations included, as Argo's deep copy) renamed, controlled by the Rollout (`owner`), with
/// [`header_http`] rules; server-set metadata and the status are left out.
pub fn new_header_route(
    cfg: &ApisixConfig,
    main: &Value,
    name: &str,
    route: &SetHeaderRoute,
    owner: Option<Value>,
) -> Result<Value, ApisixError> {
    let matches = route.r#match.as_deref().unwrap_or_default();
    let mut spec = main["spec"].clone();
    spec["http"] = Value::Array(header_http(cfg, http(main)?, matches, true)?);
    let mut metadata = json!({"name": name, "namespace": cfg.namespace});
    for key in ["labels", "annotations"] {
        if let Some(v) = main["metadata"].get(key).filter(|v| !v.is_null()) {
            metadata[key] = v.clone();
        }
    }
    if let Some(owner) = owner {
        metadata["ownerReferences"] = json!([owner]);
    }
    Ok(json!({
        "apiVersion": main["apiVersion"].as_str().unwrap_or(API_VERSION),
        "kind": "ApisixRoute",
        "metadata": metadata,
        "spec": spec,
    }))
}

/// The patch that brings an existing header route (ours) to the new matches, or `None`.
pub fn header_patch(
    cfg: &ApisixConfig,
    existing: &Value,
    route: &SetHeaderRoute,
) -> Result<Option<Value>, ApisixError> {
    let matches = route.r#match.as_deref().unwrap_or_default();
    let desired = header_http(cfg, http(existing)?, matches, false)?;
    Ok(http_patch(existing, desired))
}

/// Why the main route `current` (`None` if it does not exist) does not send `weight` to the
/// canary, or `None` when it does: the canary weight found and a description.
pub fn mismatch(
    cfg: &ApisixConfig,
    current: Option<&Value>,
    weight: i32,
) -> Option<(Option<i32>, String)> {
    let Some(current) = current else {
        return Some((None, format!("ApisixRoute `{}` does not exist", cfg.route)));
    };
    let rules = match http(current) {
        Ok(rules) => rules,
        Err(e) => return Some((None, format!("ApisixRoute `{}`: {e}", cfg.route))),
    };
    let mut observed = None;
    for name in &cfg.rules {
        let rule = match rule_index(rules, name) {
            Ok(i) => &rules[i],
            Err(e) => return Some((observed, format!("ApisixRoute `{}`: {e}", cfg.route))),
        };
        let backend = |service: &str| {
            rule["backends"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|b| b["serviceName"] == service)
        };
        let read = |service: &str| backend(service).map(|b| weight_of(&b["weight"]));
        let canary = read(&cfg.canary_service);
        if observed.is_none() {
            observed = canary.flatten().and_then(|w| i32::try_from(w).ok());
        }
        for (service, want) in [
            (&cfg.canary_service, i64::from(weight)),
            (&cfg.stable_service, 100 - i64::from(weight)),
        ] {
            match read(service) {
                None => {
                    return Some((
                        observed,
                        format!(
                            "ApisixRoute `{}` rule `{name}` has no backend `{service}`",
                            cfg.route
                        ),
                    ));
                }
                Some(got) if got != Some(want) => {
                    return Some((
                        observed,
                        format!(
                            "ApisixRoute `{}` rule `{name}` gives backend `{service}` weight {}, want {want}",
                            cfg.route,
                            got.map_or("(unset)".to_string(), |g| g.to_string())
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
