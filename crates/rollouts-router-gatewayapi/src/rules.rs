//! What the router wants in an HTTPRoute's or GRPCRoute's `spec.rules`, and how it compares with
//! the route in the cluster.
//!
//! Everything here is pure: the router's I/O (`lib.rs`) reads a route, asks these functions for
//! the patch, and sends it.
//!
//! Rules are recognised by content and by name, never by position, so the router keeps no state
//! of its own (the plugin kept rule indexes in a ConfigMap before v0.13):
//! - a **weighted rule** has backendRefs to both the canary and the stable Service (or is the
//!   rule named by `ruleName`);
//! - a **managed rule** is named after a `managedRoutes` entry (`<name>`, or `<name>-<n>` when
//!   one step produced several rules); header rules (canary backend only) and mirror rules are
//!   managed rules.

use rollouts_api::{
    HeaderRoutingMatch, RouteMatch, SetHeaderRoute, SetMirrorRoute, StringMatch, WeightDestination,
};
use serde_json::{Map, Value, json};

use crate::{
    GatewayError,
    config::{GatewayConfig, RouteRef},
};

/// A weight as a number (an integer, or an integral float).
pub fn weight_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        _ => None,
    }
}

/// Whether a rule called `rule` belongs to the managed route `managed`: `managed` itself or
/// `managed-<n>`.
pub fn is_rule_of(rule: &str, managed: &str) -> bool {
    rule == managed
        || rule
            .strip_prefix(managed)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn rule_name(rule: &Value) -> Option<&str> {
    rule["name"].as_str()
}

fn is_managed(cfg: &GatewayConfig, rule: &Value) -> bool {
    rule_name(rule).is_some_and(|n| cfg.managed_routes.iter().any(|m| is_rule_of(n, m)))
}

fn backend_refs(rule: &Value) -> impl Iterator<Item = &Value> {
    rule["backendRefs"].as_array().into_iter().flatten()
}

fn has_backend(rule: &Value, service: &str) -> bool {
    backend_refs(rule).any(|b| b["name"] == service)
}

fn rules_of<'a>(route_ref: &RouteRef, route: &'a Value) -> Result<&'a Vec<Value>, GatewayError> {
    route["spec"]["rules"]
        .as_array()
        .ok_or_else(|| GatewayError::Route(format!("{} has no spec.rules", route_ref.describe())))
}

/// The indexes of the weighted rules of `route`: the rule named `ruleName` (which must have both
/// backends), or every rule with backendRefs to both the canary and the stable Service.
pub fn weighted_rules(
    cfg: &GatewayConfig,
    route_ref: &RouteRef,
    route: &Value,
) -> Result<Vec<usize>, GatewayError> {
    let rules = rules_of(route_ref, route)?;
    let both =
        |r: &Value| has_backend(r, &cfg.canary_service) && has_backend(r, &cfg.stable_service);
    if let Some(name) = &route_ref.rule_name {
        let i = rules
            .iter()
            .position(|r| rule_name(r) == Some(name.as_str()))
            .ok_or_else(|| {
                GatewayError::Route(format!(
                    "{} has no rule named `{name}`",
                    route_ref.describe()
                ))
            })?;
        if !both(&rules[i]) {
            return Err(GatewayError::Route(format!(
                "rule `{name}` of {} has no backendRefs to both `{}` and `{}`",
                route_ref.describe(),
                cfg.canary_service,
                cfg.stable_service
            )));
        }
        return Ok(vec![i]);
    }
    let found: Vec<usize> = (0..rules.len()).filter(|&i| both(&rules[i])).collect();
    if found.is_empty() {
        return Err(GatewayError::Route(format!(
            "{} has no rule with backendRefs to both `{}` and `{}`",
            route_ref.describe(),
            cfg.canary_service,
            cfg.stable_service
        )));
    }
    Ok(found)
}

/// The rules new header and mirror rules are made from: the weighted rules that are not managed
/// rules themselves.
fn source_rules(
    cfg: &GatewayConfig,
    route_ref: &RouteRef,
    route: &Value,
) -> Result<Vec<Value>, GatewayError> {
    let rules = rules_of(route_ref, route)?;
    let sources: Vec<Value> = weighted_rules(cfg, route_ref, route)?
        .into_iter()
        .map(|i| rules[i].clone())
        .filter(|r| !is_managed(cfg, r))
        .collect();
    if sources.is_empty() {
        return Err(GatewayError::Route(format!(
            "{} has only managed rules with backendRefs to both `{}` and `{}`",
            route_ref.describe(),
            cfg.canary_service,
            cfg.stable_service
        )));
    }
    Ok(sources)
}

/// A backendRef to `service` like `like` (same group, kind and port), with `weight`.
fn backend_like(like: Option<&Value>, service: &str, weight: Option<i64>) -> Value {
    let mut b = Map::new();
    for key in ["group", "kind"] {
        if let Some(v) = like.and_then(|l| l.get(key)).filter(|v| !v.is_null()) {
            b.insert(key.into(), v.clone());
        }
    }
    b.insert("name".into(), json!(service));
    if let Some(port) = like.and_then(|l| l.get("port")).filter(|v| !v.is_null()) {
        b.insert("port".into(), port.clone());
    }
    if let Some(w) = weight {
        b.insert("weight".into(), json!(w));
    }
    Value::Object(b)
}

/// The stable weight: `100 − w − Σ additional` (`maxTrafficWeight` is not used, as in the plugin).
pub fn stable_weight(weight: i32, additional: &[WeightDestination]) -> i64 {
    100 - i64::from(weight) - additional.iter().map(|d| i64::from(d.weight)).sum::<i64>()
}

/// `spec.rules` of `route` with every weighted rule at `weight`: canary `w`, stable
/// `100 − w − Σ additional`, each experiment Service (`additional`) its weight (a backendRef is
/// added, like the canary's, when missing), and the backendRefs of experiment Services that are
/// no longer destinations removed. Everything else is kept as it is.
pub fn weighted(
    cfg: &GatewayConfig,
    route_ref: &RouteRef,
    route: &Value,
    weight: i32,
    additional: &[WeightDestination],
) -> Result<Vec<Value>, GatewayError> {
    let mut rules = rules_of(route_ref, route)?.clone();
    let current: Vec<(&str, i64)> = additional
        .iter()
        .filter_map(|d| d.service_name.as_deref().map(|s| (s, i64::from(d.weight))))
        .collect();
    let stable = stable_weight(weight, additional);
    for i in weighted_rules(cfg, route_ref, route)? {
        let refs = rules[i]["backendRefs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let canary_ref = refs
            .iter()
            .find(|b| b["name"] == cfg.canary_service)
            .cloned();
        let mut out = Vec::with_capacity(refs.len() + current.len());
        for mut b in refs {
            let name = b["name"].as_str().unwrap_or_default().to_string();
            let want = if name == cfg.canary_service {
                Some(i64::from(weight))
            } else if name == cfg.stable_service {
                Some(stable)
            } else if let Some((_, w)) = current.iter().find(|(s, _)| *s == name) {
                Some(*w)
            } else if cfg.previous_additional.contains(&name) {
                continue;
            } else {
                None
            };
            if let Some(w) = want {
                b["weight"] = json!(w);
            }
            out.push(b);
        }
        for (service, w) in &current {
            if !out.iter().any(|b| b["name"] == *service) {
                out.push(backend_like(canary_ref.as_ref(), service, Some(*w)));
            }
        }
        rules[i]["backendRefs"] = Value::Array(out);
    }
    Ok(rules)
}

/// The label patch for the in-progress label at `weight`: set while the canary has weight,
/// removed at 0. `None` when the label is already right (or disabled).
fn label_patch(cfg: &GatewayConfig, route: &Value, weight: i32) -> Option<Value> {
    let (key, value) = cfg.in_progress_label.as_ref()?;
    let have = &route["metadata"]["labels"][key];
    if weight != 0 {
        (have.as_str() != Some(value.as_str())).then(|| json!({ key: value }))
    } else {
        (!have.is_null()).then(|| json!({ key: null }))
    }
}

/// The merge patch that replaces `spec.rules` by `rules` (and sets `labels`), or `None` when
/// there is nothing to change. It carries the route's `resourceVersion`, so that the API server
/// refuses it (409) when someone changed the route since it was read, instead of overwriting
/// their change.
pub fn rules_patch(route: &Value, rules: Vec<Value>, labels: Option<Value>) -> Option<Value> {
    let rules_changed = route["spec"]["rules"] != Value::Array(rules.clone());
    if !rules_changed && labels.is_none() {
        return None;
    }
    let mut patch = json!({"metadata": {}});
    if let Some(rv) = route["metadata"]["resourceVersion"].as_str() {
        patch["metadata"]["resourceVersion"] = json!(rv);
    }
    if let Some(labels) = labels {
        patch["metadata"]["labels"] = labels;
    }
    if rules_changed {
        patch["spec"] = json!({ "rules": rules });
    }
    Some(patch)
}

/// The patch that brings `route` to `weight` (rules and in-progress label), or `None`.
pub fn weight_patch(
    cfg: &GatewayConfig,
    route_ref: &RouteRef,
    route: &Value,
    weight: i32,
    additional: &[WeightDestination],
) -> Result<Option<Value>, GatewayError> {
    let rules = weighted(cfg, route_ref, route, weight, additional)?;
    Ok(rules_patch(route, rules, label_patch(cfg, route, weight)))
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

/// A Gateway API string match (`HTTPHeaderMatch`, `GRPCHeaderMatch`, ...): `Exact`, or
/// `RegularExpression` for `regex` and for `prefix` (`^<escaped prefix>.*`). The first of
/// exact, prefix and regex that is set wins, as in the plugin.
fn value_match(m: &StringMatch, what: &str) -> Result<(&'static str, String), GatewayError> {
    let set = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    if let Some(exact) = set(&m.exact) {
        Ok(("Exact", exact))
    } else if let Some(prefix) = set(&m.prefix) {
        Ok(("RegularExpression", format!("^{}.*", escape_regex(&prefix))))
    } else if let Some(regex) = set(&m.regex) {
        Ok(("RegularExpression", regex))
    } else {
        Err(GatewayError::Step(format!(
            "{what} has no exact, prefix or regex value"
        )))
    }
}

/// The header matches of a `setHeaderRoute` step, as Gateway API header matches.
pub fn header_matches(
    step: &str,
    matches: &[HeaderRoutingMatch],
) -> Result<Vec<Value>, GatewayError> {
    matches
        .iter()
        .map(|m| {
            let (kind, value) = value_match(
                &m.header_value,
                &format!("setHeaderRoute `{step}` header `{}`", m.header_name),
            )?;
            Ok(json!({"name": m.header_name, "type": kind, "value": value}))
        })
        .collect()
}

fn managed_rule_name(name: &str, i: usize) -> String {
    if i == 0 {
        name.to_string()
    } else {
        format!("{name}-{i}")
    }
}

/// `spec.rules` without the rules of the managed route `name`.
fn without(rules: &[Value], name: &str) -> Vec<Value> {
    rules
        .iter()
        .filter(|r| !rule_name(r).is_some_and(|n| is_rule_of(n, name)))
        .cloned()
        .collect()
}

/// `spec.rules` of `route` for a `setHeaderRoute` step: the step's previous rules removed, then
/// (with a `match`) one rule per source rule, named `<name>`, `<name>-1`, ...: the source's
/// matches (each with the step's headers added to its own), its filters, and a single backendRef
/// to the canary Service.
pub fn header_rules(
    cfg: &GatewayConfig,
    route_ref: &RouteRef,
    route: &Value,
    name: &str,
    step: &SetHeaderRoute,
) -> Result<Vec<Value>, GatewayError> {
    let mut rules = without(rules_of(route_ref, route)?, name);
    let Some(matches) = &step.r#match else {
        return Ok(rules);
    };
    let headers = header_matches(name, matches)?;
    for (i, source) in source_rules(cfg, route_ref, route)?.iter().enumerate() {
        let source_matches = source["matches"].as_array().cloned().unwrap_or_default();
        let with_headers = |m: &Value| {
            let mut m = m.clone();
            let mut all = m["headers"].as_array().cloned().unwrap_or_default();
            all.extend(headers.iter().cloned());
            m["headers"] = Value::Array(all);
            m
        };
        let new_matches: Vec<Value> = if source_matches.is_empty() {
            vec![json!({"headers": headers})]
        } else {
            source_matches.iter().map(with_headers).collect()
        };
        let canary = backend_refs(source).find(|b| b["name"] == cfg.canary_service);
        let mut rule = json!({
            "name": managed_rule_name(name, i),
            "matches": new_matches,
            "backendRefs": [backend_like(canary, &cfg.canary_service, None)],
        });
        if let Some(filters) = source.get("filters").filter(|f| !f.is_null()) {
            rule["filters"] = filters.clone();
        }
        rules.push(rule);
    }
    Ok(rules)
}

fn path_match(m: &StringMatch) -> Result<Value, GatewayError> {
    let set = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    if let Some(exact) = set(&m.exact) {
        Ok(json!({"type": "Exact", "value": exact}))
    } else if let Some(prefix) = set(&m.prefix) {
        Ok(json!({"type": "PathPrefix", "value": prefix}))
    } else if let Some(regex) = set(&m.regex) {
        Ok(json!({"type": "RegularExpression", "value": regex}))
    } else {
        Err(GatewayError::Step(
            "setMirrorRoute path has no exact, prefix or regex value".into(),
        ))
    }
}

/// One `setMirrorRoute` match as an `HTTPRouteMatch`: the method (exact only, as Gateway API
/// matches methods), the path (`Exact`, `PathPrefix` or `RegularExpression`) and the headers.
pub fn mirror_match(step: &str, m: &RouteMatch) -> Result<Value, GatewayError> {
    let mut out = Map::new();
    if let Some(method) = &m.method {
        let exact = method
            .exact
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                GatewayError::Step(format!(
                    "setMirrorRoute `{step}`: a method can only match exactly in Gateway API"
                ))
            })?;
        out.insert("method".into(), json!(exact));
    }
    if let Some(path) = &m.path {
        out.insert("path".into(), path_match(path)?);
    }
    if let Some(headers) = &m.headers {
        let mut list = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let (kind, value) =
                value_match(value, &format!("setMirrorRoute `{step}` header `{name}`"))?;
            list.push(json!({"name": name, "type": kind, "value": value}));
        }
        out.insert("headers".into(), Value::Array(list));
    }
    Ok(Value::Object(out))
}

/// `spec.rules` of an HTTPRoute for a `setMirrorRoute` step: the step's previous rule removed,
/// then (with a `match`) a rule named after the step with the step's matches, a `RequestMirror`
/// filter to the canary Service (`percent` from `percentage`, when set) and the backendRefs of
/// the first source rule (so mirrored requests are still answered as the route answers them; the
/// router keeps its weights in step).
pub fn mirror_rules(
    cfg: &GatewayConfig,
    route_ref: &RouteRef,
    route: &Value,
    name: &str,
    step: &SetMirrorRoute,
) -> Result<Vec<Value>, GatewayError> {
    let mut rules = without(rules_of(route_ref, route)?, name);
    let Some(matches) = &step.r#match else {
        return Ok(rules);
    };
    let sources = source_rules(cfg, route_ref, route)?;
    let source = &sources[0];
    let canary = backend_refs(source).find(|b| b["name"] == cfg.canary_service);
    let mut mirror = json!({"backendRef": backend_like(canary, &cfg.canary_service, None)});
    if let Some(p) = step.percentage {
        if !(0..=100).contains(&p) {
            return Err(GatewayError::Step(format!(
                "setMirrorRoute `{name}`: percentage {p} is not between 0 and 100"
            )));
        }
        mirror["percent"] = json!(p);
    }
    let matches = matches
        .iter()
        .map(|m| mirror_match(name, m))
        .collect::<Result<Vec<_>, _>>()?;
    rules.push(json!({
        "name": name,
        "matches": matches,
        "filters": [{"type": "RequestMirror", "requestMirror": mirror}],
        "backendRefs": source["backendRefs"].clone(),
    }));
    Ok(rules)
}

/// `spec.rules` of `route` without any rule of the `managedRoutes`.
pub fn without_managed(
    cfg: &GatewayConfig,
    route_ref: &RouteRef,
    route: &Value,
) -> Result<Vec<Value>, GatewayError> {
    Ok(rules_of(route_ref, route)?
        .iter()
        .filter(|r| !is_managed(cfg, r))
        .cloned()
        .collect())
}

/// Why `route` (`None` if it does not exist) does not hold `weight`, or `None` when it does: the
/// canary weight found and a description.
pub fn mismatch(
    cfg: &GatewayConfig,
    route_ref: &RouteRef,
    route: Option<&Value>,
    weight: i32,
    additional: &[WeightDestination],
) -> Option<(Option<i32>, String)> {
    let Some(route) = route else {
        return Some((None, format!("{} does not exist", route_ref.describe())));
    };
    let indexes = match weighted_rules(cfg, route_ref, route) {
        Ok(found) => found,
        Err(e) => return Some((None, e.to_string())),
    };
    let rules = route["spec"]["rules"].as_array()?;
    let mut want: Vec<(&str, i64)> = vec![
        (&cfg.canary_service, i64::from(weight)),
        (&cfg.stable_service, stable_weight(weight, additional)),
    ];
    want.extend(
        additional
            .iter()
            .filter_map(|d| d.service_name.as_deref().map(|s| (s, i64::from(d.weight)))),
    );
    let mut observed;
    for i in indexes {
        let rule = &rules[i];
        let label = match rule_name(rule) {
            Some(n) => format!("rule `{n}`"),
            None => format!("rule {i}"),
        };
        let read = |service: &str| {
            backend_refs(rule)
                .find(|b| b["name"] == service)
                .map(|b| weight_of(&b["weight"]))
        };
        // The canary weight of the rule being looked at: the one a mismatch is reported for.
        observed = read(&cfg.canary_service)
            .flatten()
            .and_then(|w| i32::try_from(w).ok());
        for (service, w) in &want {
            match read(service) {
                None => {
                    return Some((
                        observed,
                        format!(
                            "{} {label} has no backendRef `{service}`",
                            route_ref.describe()
                        ),
                    ));
                }
                Some(got) if got != Some(*w) => {
                    return Some((
                        observed,
                        format!(
                            "{} {label} gives backendRef `{service}` weight {}, want {w}",
                            route_ref.describe(),
                            got.map_or("(unset)".to_string(), |g| g.to_string())
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(stray) = backend_refs(rule).find(|b| {
            b["name"]
                .as_str()
                .is_some_and(|n| cfg.previous_additional.iter().any(|p| p == n))
                && !want.iter().any(|(s, _)| b["name"] == *s)
        }) {
            return Some((
                observed,
                format!(
                    "{} {label} still routes to the experiment Service `{}`",
                    route_ref.describe(),
                    stray["name"].as_str().unwrap_or_default()
                ),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests;
