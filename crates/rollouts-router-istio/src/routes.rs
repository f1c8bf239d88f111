//! VirtualService transformations: weights, header and mirror routes, managed-route removal and
//! ordering. Pure functions over the VirtualService as JSON (`serde_json::Value`, the whole object
//! as read): only the fields named here change; everything else, including fields this crate
//! does not know, is kept as it was.

use std::collections::BTreeSet;

use rollouts_api::{IstioVirtualService, SetHeaderRoute, SetMirrorRoute, TcpRoute, TlsRoute};
use rollouts_api::{StringMatch, WeightDestination};
use serde_json::{Map, Value, json};

use crate::{IstioConfig, IstioError};

/// The kind of a VirtualService route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    /// `spec.http[]`.
    Http,
    /// `spec.tls[]`.
    Tls,
    /// `spec.tcp[]`.
    Tcp,
}

impl RouteKind {
    /// The key under `spec`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Tls => "tls",
            Self::Tcp => "tcp",
        }
    }
}

/// The routes a weight applies to, by index in `spec.http`, `spec.tls` and `spec.tcp`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// HTTP routes: the weighted ones, then the managed mirror routes.
    pub http: Vec<usize>,
    /// TLS routes.
    pub tls: Vec<usize>,
    /// TCP routes.
    pub tcp: Vec<usize>,
}

impl Selection {
    fn each(&self) -> impl Iterator<Item = (RouteKind, usize)> + '_ {
        let http = self.http.iter().map(|i| (RouteKind::Http, *i));
        let tls = self.tls.iter().map(|i| (RouteKind::Tls, *i));
        let tcp = self.tcp.iter().map(|i| (RouteKind::Tcp, *i));
        http.chain(tls).chain(tcp)
    }
}

/// One weight the router changes (or would change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The route's kind.
    pub kind: RouteKind,
    /// The route: its name, or `#<index>`.
    pub route: String,
    /// The destination: its host, and subset if any.
    pub destination: String,
    /// The weight before (`None`: the destination is added).
    pub from: Option<i64>,
    /// The weight after (`None`: the destination is removed).
    pub to: Option<i64>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} route {} destination {}: ",
            self.kind.key(),
            self.route,
            self.destination
        )?;
        match (self.from, self.to) {
            (Some(from), Some(to)) => write!(f, "weight {from}, want {to}"),
            (None, Some(to)) => write!(f, "missing, want weight {to}"),
            (Some(from), None) => write!(f, "weight {from}, want it removed"),
            (None, None) => write!(f, "unchanged"),
        }
    }
}

fn name_of(route: &Value) -> Option<&str> {
    route["name"].as_str()
}

fn label(route: &Value, index: usize) -> String {
    name_of(route).map_or_else(|| format!("#{index}"), |n| format!("'{n}'"))
}

/// Argo's host short name: the text before the first `.` (empty when the host starts with one).
fn short_host(destination: &Value) -> &str {
    let host = destination["destination"]["host"]
        .as_str()
        .unwrap_or_default();
    host.split('.').next().unwrap_or_default()
}

fn subset_of(destination: &Value) -> &str {
    destination["destination"]["subset"]
        .as_str()
        .unwrap_or_default()
}

fn weight_of(destination: &Value) -> i64 {
    destination["weight"].as_i64().unwrap_or_else(|| {
        destination["weight"]
            .as_f64()
            .map_or(0, |f| f.round() as i64)
    })
}

fn describe(destination: &Value) -> String {
    let host = destination["destination"]["host"].as_str().unwrap_or("");
    match subset_of(destination) {
        "" => format!("`{host}`"),
        subset => format!("`{host}` subset `{subset}`"),
    }
}

fn routes(spec: &Value, kind: RouteKind) -> Option<&Vec<Value>> {
    spec.get(kind.key()).and_then(Value::as_array)
}

/// The weighted HTTP routes: the ones named in `routes`, else the only route that is not a
/// managed route (none when there is no such route; an error when there are several).
pub fn weighted_http_routes(
    cfg: &IstioConfig,
    names: &[String],
    http: &[Value],
) -> Result<Vec<usize>, IstioError> {
    if !names.is_empty() {
        return names
            .iter()
            .map(|name| {
                http.iter()
                    .position(|r| name_of(r) == Some(name.as_str()))
                    .ok_or_else(|| IstioError::HttpRouteNotFound(name.clone()))
            })
            .collect();
    }
    let unmanaged: Vec<usize> = http
        .iter()
        .enumerate()
        .filter(|(_, r)| !name_of(r).is_some_and(|n| cfg.is_managed(n)))
        .map(|(i, _)| i)
        .collect();
    if unmanaged.len() > 1 {
        return Err(IstioError::HttpRoutesAmbiguous);
    }
    Ok(unmanaged)
}

/// The union of the ports and SNI hosts of a TLS/TCP route's match blocks: `None` when the blocks
/// name more than one port (such a route never matches), port 0 when none.
fn match_port_and_hosts(route: &Value) -> Option<(i64, BTreeSet<&str>)> {
    let mut ports = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    for m in route["match"].as_array().into_iter().flatten() {
        ports.insert(m["port"].as_i64().unwrap_or(0));
        for h in m["sniHosts"].as_array().into_iter().flatten() {
            if let Some(h) = h.as_str() {
                hosts.insert(h);
            }
        }
    }
    match ports.len() {
        0 => Some((0, hosts)),
        1 => ports.first().map(|p| (*p, hosts)),
        _ => None,
    }
}

fn tls_routes(wanted: &[TlsRoute], tls: &[Value]) -> Result<Vec<usize>, IstioError> {
    if wanted.is_empty() {
        return match tls.len() {
            0 => Ok(Vec::new()),
            1 => Ok(vec![0]),
            _ => Err(IstioError::TlsRoutesAmbiguous),
        };
    }
    let mut out = Vec::new();
    for want in wanted {
        let port = want.port.unwrap_or(0);
        let hosts: BTreeSet<&str> = want
            .sni_hosts
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let found: Vec<usize> = tls
            .iter()
            .enumerate()
            .filter(|(_, r)| match_port_and_hosts(r).is_some_and(|(p, h)| p == port && h == hosts))
            .map(|(i, _)| i)
            .collect();
        if found.is_empty() {
            return Err(IstioError::TlsRouteNotFound);
        }
        out.extend(
            found
                .into_iter()
                .filter(|i| !out.contains(i))
                .collect::<Vec<_>>(),
        );
    }
    Ok(out)
}

fn tcp_routes(wanted: &[TcpRoute], tcp: &[Value]) -> Result<Vec<usize>, IstioError> {
    if wanted.is_empty() {
        return match tcp.len() {
            0 => Ok(Vec::new()),
            1 => Ok(vec![0]),
            _ => Err(IstioError::TcpRoutesAmbiguous),
        };
    }
    let mut out = Vec::new();
    for want in wanted {
        let port = want.port.unwrap_or(0);
        let found: Vec<usize> = tcp
            .iter()
            .enumerate()
            .filter(|(_, r)| match_port_and_hosts(r).is_some_and(|(p, _)| p == port))
            .map(|(i, _)| i)
            .collect();
        if found.is_empty() {
            return Err(IstioError::TcpRouteNotFound);
        }
        out.extend(
            found
                .into_iter()
                .filter(|i| !out.contains(i))
                .collect::<Vec<_>>(),
        );
    }
    Ok(out)
}

/// Checks that a weighted route has both the canary and the stable destination: by subset with a
/// DestinationRule, else by Service (host short name).
fn validate_destinations(cfg: &IstioConfig, route: &Value) -> Result<(), IstioError> {
    let dests = route["route"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if let Some(dr) = &cfg.destination_rule {
        let has = |subset: &str| !subset.is_empty() && dests.iter().any(|d| subset_of(d) == subset);
        if !has(&dr.canary_subset_name) {
            return Err(IstioError::CanarySubsetNotInRoute(
                dr.canary_subset_name.clone(),
            ));
        }
        if !has(&dr.stable_subset_name) {
            return Err(IstioError::StableSubsetNotInRoute(
                dr.stable_subset_name.clone(),
            ));
        }
    } else {
        let has = |svc: &str| !svc.is_empty() && dests.iter().any(|d| short_host(d) == svc);
        if !has(&cfg.canary_service) {
            return Err(IstioError::CanaryServiceNotInRoute(
                cfg.canary_service.clone(),
            ));
        }
        if !has(&cfg.stable_service) {
            return Err(IstioError::StableServiceNotInRoute(
                cfg.stable_service.clone(),
            ));
        }
    }
    Ok(())
}

/// The routes of `vs` (the Rollout's reference) in the VirtualService `spec` that a weight applies
/// to, checked as Argo checks them: named routes must exist, an unnamed selection must be
/// unambiguous, and each weighted route must have the canary and stable destinations. HTTP
/// routes named in `managedRoutes` that mirror (the routes of `setMirrorRoute`) are added: they
/// carry a copy of the weighted destinations.
pub fn select(
    cfg: &IstioConfig,
    vs: &IstioVirtualService,
    spec: &Value,
) -> Result<Selection, IstioError> {
    let mut selection = Selection::default();
    if let Some(http) = routes(spec, RouteKind::Http) {
        let names = vs.routes.clone().unwrap_or_default();
        selection.http = weighted_http_routes(cfg, &names, http)?;
        for &i in &selection.http {
            validate_destinations(cfg, &http[i])?;
        }
        for (i, route) in http.iter().enumerate() {
            let managed_mirror =
                !route["mirror"].is_null() && name_of(route).is_some_and(|n| cfg.is_managed(n));
            if managed_mirror && !selection.http.contains(&i) {
                selection.http.push(i);
            }
        }
    }
    if let Some(tls) = routes(spec, RouteKind::Tls) {
        selection.tls = tls_routes(vs.tls_routes.as_deref().unwrap_or_default(), tls)?;
        for &i in &selection.tls {
            validate_destinations(cfg, &tls[i])?;
        }
    }
    if let Some(tcp) = routes(spec, RouteKind::Tcp) {
        selection.tcp = tcp_routes(vs.tcp_routes.as_deref().unwrap_or_default(), tcp)?;
        for &i in &selection.tcp {
            validate_destinations(cfg, &tcp[i])?;
        }
    }
    Ok(selection)
}

/// Sets the weights of one route's destinations (`route[]`): the canary gets `weight`, each
/// experiment Service its weight (added at the end, by name, when missing and non-zero),
/// destinations of `additionalSubsetNames` keep theirs, the stable gets the rest
/// (`100 − weight − Σ experiments − Σ additional subsets`, at least 0), and any other destination
/// with a non-zero weight is removed. Returns what changed.
fn reweigh(
    cfg: &IstioConfig,
    kind: RouteKind,
    route_label: &str,
    destinations: &mut Vec<Value>,
    weight: i32,
    additional: &[WeightDestination],
) -> Vec<Change> {
    let canary_subset = cfg.canary_subset();
    let stable_subset = cfg.stable_subset();
    let extra_subsets = cfg.additional_subsets();
    let is_extra = |d: &Value| {
        let s = subset_of(d);
        !s.is_empty() && extra_subsets.iter().any(|e| e == s)
    };
    let mut stable = 100 - i64::from(weight);
    stable -= additional.iter().map(|d| i64::from(d.weight)).sum::<i64>();
    stable -= destinations
        .iter()
        .filter(|d| is_extra(d))
        .map(weight_of)
        .sum::<i64>();
    let stable = stable.max(0);

    let mut experiments: Vec<&WeightDestination> = Vec::new();
    for d in additional {
        let name = d.service_name.as_deref().unwrap_or_default();
        if !name.is_empty() && !experiments.iter().any(|e| e.service_name == d.service_name) {
            experiments.push(d);
        }
    }
    let mut changes = Vec::new();
    let mut kept = Vec::with_capacity(destinations.len());
    for mut dest in std::mem::take(destinations) {
        let host = short_host(&dest).to_string();
        if host.is_empty() {
            kept.push(dest);
            continue;
        }
        let subset = subset_of(&dest);
        let current = weight_of(&dest);
        let want = if host == cfg.canary_service || (!subset.is_empty() && subset == canary_subset)
        {
            Some(i64::from(weight))
        } else if host == cfg.stable_service || (!subset.is_empty() && subset == stable_subset) {
            Some(stable)
        } else if is_extra(&dest) {
            Some(current)
        } else if let Some(pos) = experiments
            .iter()
            .position(|e| e.service_name.as_deref() == Some(host.as_str()))
        {
            Some(i64::from(experiments.remove(pos).weight))
        } else if current != 0 {
            None
        } else {
            Some(0)
        };
        match want {
            Some(w) if w == current => kept.push(dest),
            Some(w) => {
                changes.push(Change {
                    kind,
                    route: route_label.to_string(),
                    destination: describe(&dest),
                    from: Some(current),
                    to: Some(w),
                });
                dest["weight"] = json!(w);
                kept.push(dest);
            }
            None => changes.push(Change {
                kind,
                route: route_label.to_string(),
                destination: describe(&dest),
                from: Some(current),
                to: None,
            }),
        }
    }
    experiments.sort_by(|a, b| a.service_name.cmp(&b.service_name));
    for e in experiments.into_iter().filter(|e| e.weight != 0) {
        let host = e.service_name.clone().unwrap_or_default();
        changes.push(Change {
            kind,
            route: route_label.to_string(),
            destination: format!("`{host}`"),
            from: None,
            to: Some(i64::from(e.weight)),
        });
        kept.push(json!({"destination": {"host": host}, "weight": e.weight}));
    }
    *destinations = kept;
    changes
}

/// Sets `weight` (and the experiment destinations' weights) in the selected routes of the
/// VirtualService `object`, and orders its HTTP routes when anything changed. Returns the changes;
/// the object is unchanged when there are none.
pub fn set_weight(
    cfg: &IstioConfig,
    vs: &IstioVirtualService,
    object: &mut Value,
    weight: i32,
    additional: &[WeightDestination],
) -> Result<Vec<Change>, IstioError> {
    let selection = select(cfg, vs, &object["spec"])?;
    let mut changes = Vec::new();
    for (kind, index) in selection.each() {
        let route = &mut object["spec"][kind.key()][index];
        let route_label = label(route, index);
        let mut destinations = match route.get("route") {
            Some(Value::Array(list)) => list.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(_) => {
                return Err(IstioError::Shape(format!(
                    "spec.{}[{index}].route is not a list",
                    kind.key()
                )));
            }
        };
        let found = reweigh(
            cfg,
            kind,
            &route_label,
            &mut destinations,
            weight,
            additional,
        );
        if !found.is_empty() {
            route["route"] = Value::Array(destinations);
            changes.extend(found);
        }
    }
    if !changes.is_empty() {
        order_routes(cfg, object);
    }
    Ok(changes)
}

/// The canary weight the first weighted route holds (for verification reports).
pub fn canary_weight(cfg: &IstioConfig, vs: &IstioVirtualService, object: &Value) -> Option<i32> {
    let selection = select(cfg, vs, &object["spec"]).ok()?;
    let (kind, index) = selection.each().next()?;
    object["spec"][kind.key()][index]["route"]
        .as_array()?
        .iter()
        .find(|d| {
            let subset = subset_of(d);
            short_host(d) == cfg.canary_service
                || (!subset.is_empty() && subset == cfg.canary_subset())
        })
        .and_then(|d| i32::try_from(weight_of(d)).ok())
}

/// Puts the HTTP routes named in `managedRoutes` first, in that order, then the others in their
/// order. Each route appears once (Argo's re-emission by name duplicates routes that share a name
/// and unnamed routes).
pub fn order_routes(cfg: &IstioConfig, object: &mut Value) {
    if cfg.managed_routes.is_empty() {
        return;
    }
    let Some(http) = object["spec"].get_mut("http").and_then(Value::as_array_mut) else {
        return;
    };
    let mut rest: Vec<Option<Value>> = std::mem::take(http).into_iter().map(Some).collect();
    let mut ordered = Vec::with_capacity(rest.len());
    for managed in &cfg.managed_routes {
        for slot in rest.iter_mut() {
            if slot
                .as_ref()
                .is_some_and(|r| name_of(r) == Some(managed.as_str()))
            {
                ordered.extend(slot.take());
            }
        }
    }
    ordered.extend(rest.into_iter().flatten());
    *http = ordered;
}

fn http_mut<'v>(object: &'v mut Value, vs: &str) -> Result<&'v mut Vec<Value>, IstioError> {
    object["spec"]
        .get_mut("http")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| IstioError::NoHttpRoutes(vs.to_string()))
}

fn remove_named(http: &mut Vec<Value>, name: &str) {
    http.retain(|r| name_of(r) != Some(name));
}

/// The destination a header or mirror route sends to: `host` (the DestinationRule's host with
/// subset-level routing, else the canary Service), the canary subset, and `port`.
fn canary_destination(cfg: &IstioConfig, host: &str, port: Option<i64>) -> Value {
    let mut dest = Map::new();
    dest.insert("host".into(), json!(host));
    if let Some(port) = port.filter(|p| *p > 0) {
        dest.insert("port".into(), json!({ "number": port }));
    }
    if !cfg.canary_subset().is_empty() {
        dest.insert("subset".into(), json!(cfg.canary_subset()));
    }
    Value::Object(dest)
}

fn first_weighted(cfg: &IstioConfig, vs: &IstioVirtualService, http: &[Value]) -> Option<usize> {
    weighted_http_routes(cfg, vs.routes.as_deref().unwrap_or_default(), http)
        .ok()?
        .first()
        .copied()
}

fn first_port(route: &Value) -> Option<i64> {
    route["route"][0]["destination"]["port"]["number"].as_i64()
}

fn string_match(m: &StringMatch) -> Value {
    let mut out = Map::new();
    for (key, value) in [
        ("exact", &m.exact),
        ("regex", &m.regex),
        ("prefix", &m.prefix),
    ] {
        if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
            out.insert(key.into(), json!(v));
        }
    }
    Value::Object(out)
}

/// Adds (or with no `match`, removes) the header route of a `setHeaderRoute` step in the
/// VirtualService `object` named `vs_name`: any route of that name is removed, then
/// `{name, match: [{headers: {<name>: <match>}}, ...], route: [{destination, weight: 100}]}` is
/// appended (one match block per header: any of them routes to the canary, as in Argo), and the
/// routes are ordered. Returns whether the object changed.
pub fn set_header_route(
    cfg: &IstioConfig,
    vs: &IstioVirtualService,
    vs_name: &str,
    object: &mut Value,
    route: &SetHeaderRoute,
    host: &str,
) -> Result<bool, IstioError> {
    let name = route
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or(IstioError::Config("setHeaderRoute.name is required"))?;
    let before = object.clone();
    let http = http_mut(object, vs_name)?;
    remove_named(http, name);
    let matches = route.r#match.as_deref().unwrap_or_default();
    if !matches.is_empty() {
        let port = first_weighted(cfg, vs, http).and_then(|i| first_port(&http[i]));
        let blocks: Vec<Value> = matches
            .iter()
            .map(|m| json!({"headers": {m.header_name.clone(): string_match(&m.header_value)}}))
            .collect();
        http.push(json!({
            "name": name,
            "match": blocks,
            "route": [{"destination": canary_destination(cfg, host, port), "weight": 100}],
        }));
    }
    order_routes(cfg, object);
    Ok(*object != before)
}

/// Adds (or with no `match`, removes) the mirror route of a `setMirrorRoute` step: any route of
/// that name is removed, then a route with the step's matches, a copy of the weighted route's
/// destinations (so it keeps splitting as the weighted route does), `mirror` to the canary and
/// `mirrorPercentage` (default 100) is put first, and the routes are ordered. Returns whether the
/// object changed.
pub fn set_mirror_route(
    cfg: &IstioConfig,
    vs: &IstioVirtualService,
    vs_name: &str,
    object: &mut Value,
    route: &SetMirrorRoute,
    host: &str,
) -> Result<bool, IstioError> {
    if route.name.is_empty() {
        return Err(IstioError::Config("setMirrorRoute.name is required"));
    }
    let before = object.clone();
    let http = http_mut(object, vs_name)?;
    remove_named(http, &route.name);
    let matches = route.r#match.as_deref().unwrap_or_default();
    if !matches.is_empty() {
        let weighted = first_weighted(cfg, vs, http)
            .ok_or_else(|| IstioError::NoRouteToMirror(vs_name.to_string()))?;
        let destinations = http[weighted]["route"].clone();
        let port = first_port(&http[weighted]);
        let blocks: Vec<Value> = matches
            .iter()
            .map(|m| {
                let mut block = Map::new();
                if let Some(method) = &m.method {
                    block.insert("method".into(), string_match(method));
                }
                if let Some(path) = &m.path {
                    block.insert("uri".into(), string_match(path));
                }
                if let Some(headers) = m.headers.as_ref().filter(|h| !h.is_empty()) {
                    let headers: Map<String, Value> = headers
                        .iter()
                        .map(|(k, v)| (k.clone(), string_match(v)))
                        .collect();
                    block.insert("headers".into(), Value::Object(headers));
                }
                Value::Object(block)
            })
            .collect();
        http.insert(
            0,
            json!({
                "name": route.name,
                "match": blocks,
                "route": destinations,
                "mirror": canary_destination(cfg, host, port),
                "mirrorPercentage": {"value": route.percentage.unwrap_or(100)},
            }),
        );
    }
    order_routes(cfg, object);
    Ok(*object != before)
}

/// Removes the HTTP routes the Rollout manages: those named in `managedRoutes` and those of its
/// `setHeaderRoute`/`setMirrorRoute` steps. Returns whether any was removed (a VirtualService
/// without HTTP routes has none).
pub fn remove_managed_routes(cfg: &IstioConfig, object: &mut Value) -> bool {
    let Some(http) = object["spec"].get_mut("http").and_then(Value::as_array_mut) else {
        return false;
    };
    let before = http.len();
    http.retain(|r| {
        !name_of(r).is_some_and(|n| cfg.is_managed(n) || cfg.step_routes.iter().any(|s| s == n))
    });
    http.len() != before
}

#[cfg(test)]
mod tests;
