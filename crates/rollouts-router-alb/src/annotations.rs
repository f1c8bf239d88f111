//! The Ingress annotations (and header-route paths) the router wants, as JSON, and the merge
//! patches that bring a user's Ingress there.
//!
//! Everything here is pure: the router's I/O (`lib.rs`) reads each Ingress, asks these functions
//! what to patch, and sends that. A patch only ever names the annotations the router manages
//! (and, for header routes, `spec.rules`); everything else on the Ingress is left alone.

use std::collections::BTreeMap;

use rollouts_api::{SetHeaderRoute, WeightDestination};
use rollouts_plugin::go::marshal_json;
use serde_json::{Map, Value, json};

use crate::{AlbError, config::AlbConfig};

/// Bookkeeping annotation: JSON `{"<rollout>": ["<annotation key>", ...]}` naming the
/// annotations each Rollout manages on this Ingress.
pub const MANAGED_ANNOTATIONS: &str = "rollouts.argoproj.io/managed-alb-annotations";
/// Argo's older bookkeeping annotation (`ro:key,ro2:key2`); the router never writes it.
pub const LEGACY_MANAGED_ACTIONS: &str = "rollouts.argoproj.io/managed-alb-actions";
/// The backend port name that tells the AWS Load Balancer Controller to read the action from the
/// annotation.
pub const USE_ANNOTATION: &str = "use-annotation";

/// A JSON string as Go's `encoding/json` writes it (`<`, `>`, `&` escaped).
fn go_string(s: &str) -> String {
    marshal_json(&Value::String(s.to_string()))
}

/// One target group of a forward action, in Argo's field order; `ServiceName` is left out when
/// empty (Go's `omitempty`).
fn target_group(service: &str, port: &str, weight: i64) -> String {
    let mut out = String::from("{");
    if !service.is_empty() {
        out.push_str(&format!("\"ServiceName\":{},", go_string(service)));
    }
    out.push_str(&format!(
        "\"ServicePort\":{},\"Weight\":{weight}}}",
        go_string(port)
    ));
    out
}

fn forward(cfg: &AlbConfig, groups: &[String]) -> String {
    let mut out = format!(
        "{{\"Type\":\"forward\",\"ForwardConfig\":{{\"TargetGroups\":[{}]",
        groups.join(",")
    );
    if let Some(seconds) = cfg.stickiness_seconds {
        out.push_str(&format!(
            ",\"TargetGroupStickinessConfig\":{{\"Enabled\":true,\"DurationSeconds\":{seconds}}}"
        ));
    }
    out.push_str("}}");
    out
}

/// The weighted forward action, exactly as Argo writes it: compact JSON, canary first, then each
/// additional (experiment) destination, then stable with `100 − weight − Σ additional`; the port
/// is a string; `TargetGroupStickinessConfig` only with stickiness enabled.
///
/// ```text
/// {"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"c","ServicePort":"80","Weight":10},
///  {"ServiceName":"s","ServicePort":"80","Weight":90}]}}
/// ```
pub fn forward_action(cfg: &AlbConfig, weight: i32, additional: &[WeightDestination]) -> String {
    let port = cfg.service_port.to_string();
    let mut stable = 100 - i64::from(weight);
    let mut groups = vec![target_group(&cfg.canary_service, &port, i64::from(weight))];
    for dest in additional {
        groups.push(target_group(
            dest.service_name.as_deref().unwrap_or_default(),
            &port,
            i64::from(dest.weight),
        ));
        stable -= i64::from(dest.weight);
    }
    groups.push(target_group(&cfg.stable_service, &port, stable));
    forward(cfg, &groups)
}

/// A header route's action: everything to the canary (weight 100), with stickiness when enabled.
pub fn header_action(cfg: &AlbConfig) -> String {
    let port = cfg.service_port.to_string();
    forward(cfg, &[target_group(&cfg.canary_service, &port, 100)])
}

/// A header route's conditions: one `http-header` condition per header name, with the exact
/// values of every match on that name merged in order:
/// `[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"H","values":["v1","v2"]}}]`.
/// The ALB only matches exact values; a `prefix` or `regex` match is an error.
pub fn header_conditions(route: &SetHeaderRoute) -> Result<String, AlbError> {
    let name = route.name.as_deref().unwrap_or_default();
    let matches = route.r#match.as_deref().unwrap_or_default();
    if matches.is_empty() {
        return Err(AlbError::HeaderRoute(format!(
            "setHeaderRoute `{name}` has an empty match (omit `match` to remove the route)"
        )));
    }
    let mut conditions: Vec<(String, Vec<String>)> = Vec::new();
    for (i, m) in matches.iter().enumerate() {
        let Some(exact) = m.header_value.exact.clone() else {
            return Err(AlbError::HeaderRoute(format!(
                "setHeaderRoute `{name}`: match[{i}].headerValue: ALB supports only `exact` header values"
            )));
        };
        match conditions.iter_mut().find(|(h, _)| *h == m.header_name) {
            Some((_, values)) => values.push(exact),
            None => conditions.push((m.header_name.clone(), vec![exact])),
        }
    }
    let items: Vec<String> = conditions
        .iter()
        .map(|(header, values)| {
            format!(
                "{{\"field\":\"http-header\",\"httpHeaderConfig\":{{\"httpHeaderName\":{},\"values\":[{}]}}}}",
                go_string(header),
                values
                    .iter()
                    .map(|v| go_string(v))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
        .collect();
    Ok(format!("[{}]", items.join(",")))
}

/// Whether some path of some rule of `ingress` has `service` as its backend.
pub fn has_rule_with_service(ingress: &Value, service: &str) -> bool {
    paths(ingress).any(|p| p["backend"]["service"]["name"] == service)
}

fn paths(ingress: &Value) -> impl Iterator<Item = &Value> {
    ingress["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["http"]["paths"].as_array().into_iter().flatten())
}

/// The annotations of an Ingress as strings (non-string values, which the API server never
/// returns, are skipped).
pub fn annotations(ingress: &Value) -> BTreeMap<String, String> {
    ingress["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// Adds `keys` to (or removes them from) `rollout`'s entry of the managed-annotations
/// bookkeeping in `annotations`; other Rollouts' entries are kept as they are. The entry stays
/// (possibly empty), as in Argo.
fn update_managed(
    annotations: &mut BTreeMap<String, String>,
    ingress: &str,
    rollout: &str,
    add: bool,
    keys: &[String],
) -> Result<(), AlbError> {
    let mut map: Map<String, Value> = match annotations.get(MANAGED_ANNOTATIONS) {
        None => Map::new(),
        Some(text) if text.is_empty() => Map::new(),
        Some(text) => {
            let parsed: Value = serde_json::from_str(text).map_err(|e| AlbError::Managed {
                ingress: ingress.to_string(),
                message: e.to_string(),
            })?;
            let valid = parsed.as_object().is_some_and(|m| {
                m.values().all(|v| {
                    v.is_null() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
                })
            });
            if !valid {
                return Err(AlbError::Managed {
                    ingress: ingress.to_string(),
                    message: "want an object of string lists".into(),
                });
            }
            parsed.as_object().cloned().unwrap_or_default()
        }
    };
    let mut mine: Vec<String> = map
        .get(rollout)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    for key in keys {
        if add {
            if !mine.contains(key) {
                mine.push(key.clone());
            }
        } else {
            mine.retain(|k| k != key);
        }
    }
    map.insert(rollout.to_string(), json!(mine));
    annotations.insert(
        MANAGED_ANNOTATIONS.to_string(),
        marshal_json(&Value::Object(map)),
    );
    Ok(())
}

/// The merge patch of annotations from `current` to `desired` (changed keys set, removed keys
/// `null`), or `None` when they are equal.
fn annotations_patch(
    current: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    for (k, v) in desired {
        if current.get(k) != Some(v) {
            out.insert(k.clone(), Value::String(v.clone()));
        }
    }
    for k in current.keys() {
        if !desired.contains_key(k) {
            out.insert(k.clone(), Value::Null);
        }
    }
    (!out.is_empty()).then_some(out)
}

fn patch_of(annotations: Option<Map<String, Value>>, rules: Option<Value>) -> Option<Value> {
    let mut patch = Map::new();
    if let Some(a) = annotations {
        patch.insert("metadata".into(), json!({ "annotations": a }));
    }
    if let Some(rules) = rules {
        patch.insert("spec".into(), json!({ "rules": rules }));
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// The merge patch that sets the weighted action of `ingress` (named `name`) to `weight` and
/// records the key in the managed-annotations bookkeeping, or `None` when the Ingress already
/// holds exactly that. The Ingress must route to the action Service in some rule
/// (Argo: "ingress does not have service `S` in rules").
pub fn weight_patch(
    cfg: &AlbConfig,
    name: &str,
    ingress: &Value,
    weight: i32,
    additional: &[WeightDestination],
) -> Result<Option<Value>, AlbError> {
    if !has_rule_with_service(ingress, &cfg.action_service) {
        return Err(AlbError::NoRule {
            ingress: name.to_string(),
            service: cfg.action_service.clone(),
        });
    }
    let current = annotations(ingress);
    let mut desired = current.clone();
    let key = cfg.weight_action_key();
    desired.insert(key.clone(), forward_action(cfg, weight, additional));
    update_managed(&mut desired, name, &cfg.rollout, true, &[key])?;
    Ok(patch_of(annotations_patch(&current, &desired), None))
}

/// `ingress`'s rules with `edit` applied to each rule's `http.paths` (rules without `http` are
/// left as they are), or `None` when nothing changes.
fn edit_paths(ingress: &Value, mut edit: impl FnMut(&mut Vec<Value>)) -> Option<Value> {
    let current = ingress["spec"]["rules"].as_array()?;
    let mut rules = current.clone();
    for rule in &mut rules {
        if let Some(paths) = rule
            .get_mut("http")
            .and_then(|h| h.get_mut("paths"))
            .and_then(Value::as_array_mut)
        {
            edit(paths);
        }
    }
    (&rules != current).then_some(Value::Array(rules))
}

/// Moves the paths of managed routes to the top of each rule, in `managedRoutes` order; other
/// paths keep their order after them (Argo's stable sort by route index, unlisted last).
fn sort_paths(paths: &mut [Value], managed_routes: &[String]) {
    let rank = |p: &Value| {
        let service = p["backend"]["service"]["name"].as_str().unwrap_or_default();
        managed_routes
            .iter()
            .position(|r| r == service)
            .unwrap_or(managed_routes.len())
    };
    paths.sort_by_key(rank);
}

/// The path a header route adds to each rule: `/*`, `ImplementationSpecific`, backend the route
/// name with port name `use-annotation`.
pub fn route_path(route: &str) -> Value {
    json!({
        "path": "/*",
        "pathType": "ImplementationSpecific",
        "backend": {"service": {"name": route, "port": {"name": USE_ANNOTATION}}}
    })
}

/// Removes the first path of each rule whose backend is `route`.
fn remove_route_path(paths: &mut Vec<Value>, route: &str) {
    if let Some(i) = paths
        .iter()
        .position(|p| p["backend"]["service"]["name"] == route)
    {
        paths.remove(i);
    }
}

/// The merge patch for a `setHeaderRoute` step on `ingress`: with `match`, the route's action
/// (all to the canary) and conditions annotations, and a `/*` path to the route at the top of
/// every rule (unless one exists); without, both annotations and the path removed. The paths of
/// managed routes are then ordered as `managedRoutes` lists them, and the bookkeeping updated.
pub fn header_route_patch(
    cfg: &AlbConfig,
    name: &str,
    ingress: &Value,
    route: &SetHeaderRoute,
) -> Result<Option<Value>, AlbError> {
    let route_name = route
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| AlbError::HeaderRoute("setHeaderRoute.name is required".into()))?;
    let action_key = cfg.action_key(route_name);
    let condition_key = cfg.condition_key(route_name);
    let current = annotations(ingress);
    let mut desired = current.clone();
    let add = route.r#match.is_some();
    if add {
        desired.insert(action_key.clone(), header_action(cfg));
        desired.insert(condition_key.clone(), header_conditions(route)?);
    } else {
        desired.remove(&action_key);
        desired.remove(&condition_key);
    }
    update_managed(
        &mut desired,
        name,
        &cfg.rollout,
        add,
        &[action_key, condition_key],
    )?;
    let has_rule = has_rule_with_service(ingress, route_name);
    let rules = edit_paths(ingress, |paths| {
        if add && !has_rule {
            paths.insert(0, route_path(route_name));
        }
        if !add && has_rule {
            remove_route_path(paths, route_name);
        }
        sort_paths(paths, &cfg.managed_routes);
    });
    Ok(patch_of(annotations_patch(&current, &desired), rules))
}

/// The merge patch that removes every managed route of `trafficRouting.managedRoutes` from
/// `ingress`: their action and condition annotations, their bookkeeping and their paths.
/// `None` when there is nothing to remove (or no managed routes).
pub fn remove_routes_patch(
    cfg: &AlbConfig,
    name: &str,
    ingress: &Value,
) -> Result<Option<Value>, AlbError> {
    if cfg.managed_routes.is_empty() {
        return Ok(None);
    }
    let current = annotations(ingress);
    let mut desired = current.clone();
    let mut keys = Vec::new();
    for route in &cfg.managed_routes {
        for key in [cfg.action_key(route), cfg.condition_key(route)] {
            desired.remove(&key);
            keys.push(key);
        }
    }
    update_managed(&mut desired, name, &cfg.rollout, false, &keys)?;
    let rules = edit_paths(ingress, |paths| {
        for route in &cfg.managed_routes {
            remove_route_path(paths, route);
        }
    });
    Ok(patch_of(annotations_patch(&current, &desired), rules))
}

/// `(service, port, weight)` of each target group of a forward action as JSON.
fn groups(action: &Value) -> Vec<(String, String, Option<i64>)> {
    action["ForwardConfig"]["TargetGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            (
                g["ServiceName"].as_str().unwrap_or_default().to_string(),
                match &g["ServicePort"] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => String::new(),
                },
                g["Weight"].as_i64(),
            )
        })
        .collect()
}

/// Why `ingress` (named `name`; `None` if it does not exist) does not hold the weighted action
/// for `weight` and `additional`, or `None` when it does: the canary weight found (if any) and
/// the first difference, in words.
pub fn mismatch(
    cfg: &AlbConfig,
    name: &str,
    ingress: Option<&Value>,
    weight: i32,
    additional: &[WeightDestination],
) -> Option<(Option<i32>, String)> {
    let Some(ingress) = ingress else {
        return Some((None, format!("Ingress `{name}` does not exist")));
    };
    let key = cfg.weight_action_key();
    let Some(text) = ingress["metadata"]["annotations"][&key].as_str() else {
        return Some((None, format!("Ingress `{name}` has no annotation {key}")));
    };
    let Ok(found) = serde_json::from_str::<Value>(text) else {
        return Some((
            None,
            format!("Ingress `{name}` has annotation {key} that is not JSON: {text:?}"),
        ));
    };
    let want_text = forward_action(cfg, weight, additional);
    let want: Value = serde_json::from_str(&want_text).unwrap_or(Value::Null);
    let have = groups(&found);
    let observed = have
        .iter()
        .find(|(s, _, _)| *s == cfg.canary_service)
        .and_then(|(_, _, w)| *w)
        .and_then(|w| i32::try_from(w).ok());
    if found == want {
        return None;
    }
    let at = format!("Ingress `{name}` annotation {key}");
    if found["Type"] != "forward" {
        return Some((
            observed,
            format!("{at} has Type {}, want \"forward\"", found["Type"]),
        ));
    }
    let wanted = groups(&want);
    for (service, port, w) in &wanted {
        let w = w.unwrap_or_default();
        match have.iter().find(|(s, _, _)| s == service) {
            None => {
                return Some((
                    observed,
                    format!("{at} has no target group for `{service}`"),
                ));
            }
            Some((_, p, got)) if *got != Some(w) => {
                let got = got.map_or("none".to_string(), |g| g.to_string());
                return Some((
                    observed,
                    format!(
                        "{at} sends weight {got} to `{service}`, want {w}{}",
                        if p == port { "" } else { " (and another port)" }
                    ),
                ));
            }
            Some((_, p, _)) if p != port => {
                return Some((
                    observed,
                    format!("{at} uses port {p:?} for `{service}`, want {port:?}"),
                ));
            }
            Some(_) => {}
        }
    }
    if let Some((service, _, w)) = have
        .iter()
        .find(|(s, _, w)| w.is_some_and(|w| w != 0) && !wanted.iter().any(|(ws, _, _)| ws == s))
    {
        return Some((
            observed,
            format!(
                "{at} also sends weight {} to `{service}`",
                w.unwrap_or_default()
            ),
        ));
    }
    let stickiness = |v: &Value| v["ForwardConfig"]["TargetGroupStickinessConfig"].clone();
    if stickiness(&found) != stickiness(&want) {
        return Some((
            observed,
            format!(
                "{at} has TargetGroupStickinessConfig {}, want {}",
                stickiness(&found),
                stickiness(&want)
            ),
        ));
    }
    Some((observed, format!("{at} is {text}, want {want_text}")))
}

#[cfg(test)]
mod tests;
