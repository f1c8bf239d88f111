//! The router's configuration: the `trafficRouting.plugins["argoproj-labs/gatewayAPI"]` block of
//! the Rollout, in the shape the Argo Rollouts Gateway API plugin reads, so that manifests written
//! for the plugin select and configure this router unchanged.

use rollouts_api::Rollout;
use serde_json::{Map, Value};

use crate::{GatewayError, NAME};

/// The label put on a route while a canary has weight, unless disabled (the plugin's default).
pub const DEFAULT_IN_PROGRESS_LABEL_KEY: &str = "rollouts.argoproj.io/gatewayapi-canary";
/// The value of that label.
pub const DEFAULT_IN_PROGRESS_LABEL_VALUE: &str = "in-progress";

/// The kind of a Gateway API route the router changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    /// `HTTPRoute` (`httproutes`).
    Http,
    /// `GRPCRoute` (`grpcroutes`).
    Grpc,
}

impl RouteKind {
    /// `HTTPRoute` or `GRPCRoute`.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Http => "HTTPRoute",
            Self::Grpc => "GRPCRoute",
        }
    }

    /// `httproutes` or `grpcroutes`.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Http => "httproutes",
            Self::Grpc => "grpcroutes",
        }
    }
}

/// One route of the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRef {
    /// HTTPRoute or GRPCRoute.
    pub kind: RouteKind,
    /// The route's name (in [`GatewayConfig::namespace`]).
    pub name: String,
    /// Whether `setHeaderRoute` and `setMirrorRoute` add rules to this route
    /// (`useHeaderRoutes`; always true for the single `httpRoute`/`grpcRoute` form).
    pub use_header_routes: bool,
    /// `ruleName`/`httpRouteRuleName`/`grpcRouteRuleName`: only the rule of this name is weighted.
    pub rule_name: Option<String>,
}

impl RouteRef {
    /// `HTTPRoute `web``, for messages.
    pub fn describe(&self) -> String {
        format!("{} `{}`", self.kind.kind(), self.name)
    }
}

/// What the router needs, resolved once when it is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayConfig {
    /// `namespace` of the block, default the Rollout's.
    pub namespace: String,
    /// The routes, HTTP first, each list before its single form (the plugin's order).
    pub routes: Vec<RouteRef>,
    /// `canaryService`.
    pub canary_service: String,
    /// `stableService`.
    pub stable_service: String,
    /// `trafficRouting.managedRoutes[].name`: the names of header and mirror rules.
    pub managed_routes: Vec<String>,
    /// The in-progress label (`None` with `disableInProgressLabel: true`).
    pub in_progress_label: Option<(String, String)>,
    /// The experiment Services the status says were routed last time
    /// (`status.canary.weights.additional`): their backendRefs are removed once they are no
    /// longer among the destinations.
    pub previous_additional: Vec<String>,
    /// `configMap` of the block: accepted for compatibility and not used (rules are found by
    /// name, so the router keeps no state in a ConfigMap).
    pub config_map: Option<String>,
}

/// The path of a field of the block, for messages.
pub fn field(name: &str) -> String {
    format!("spec.strategy.canary.trafficRouting.plugins[\"{NAME}\"].{name}")
}

fn string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, GatewayError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(GatewayError::Config(format!(
            "{} must be a string",
            field(key)
        ))),
    }
}

fn boolean(obj: &Map<String, Value>, key: &str, path: &str) -> Result<bool, GatewayError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(GatewayError::Config(format!(
            "{path} must be true or false"
        ))),
    }
}

fn route_list(
    obj: &Map<String, Value>,
    key: &str,
    kind: RouteKind,
) -> Result<Vec<RouteRef>, GatewayError> {
    let items = match obj.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(GatewayError::Config(format!(
                "{} must be a list",
                field(key)
            )));
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{}[{i}]", field(key));
        let Some(entry) = item.as_object() else {
            return Err(GatewayError::Config(format!("{path} must be an object")));
        };
        for k in entry.keys() {
            if !["name", "useHeaderRoutes", "ruleName"].contains(&k.as_str()) {
                return Err(GatewayError::Config(format!(
                    "{path}.{k} is not a field of a route (name, useHeaderRoutes, ruleName)"
                )));
            }
        }
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| GatewayError::Config(format!("{path}.name is required")))?;
        let rule_name = match entry.get("ruleName") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(GatewayError::Config(format!(
                    "{path}.ruleName must be a string"
                )));
            }
        };
        out.push(RouteRef {
            kind,
            name: name.to_string(),
            use_header_routes: boolean(
                entry,
                "useHeaderRoutes",
                &format!("{path}.useHeaderRoutes"),
            )?,
            rule_name,
        });
    }
    Ok(out)
}

const SUPPORTED: &[&str] = &[
    "httpRoute",
    "httpRouteRuleName",
    "httpRoutes",
    "grpcRoute",
    "grpcRouteRuleName",
    "grpcRoutes",
    "namespace",
    "configMap",
    "inProgressLabelKey",
    "inProgressLabelValue",
    "disableInProgressLabel",
];

const UNSUPPORTED: &[&str] = &[
    "tcpRoute",
    "tcpRouteRuleName",
    "tcpRoutes",
    "tlsRoute",
    "tlsRouteRuleName",
    "tlsRoutes",
    "httpRouteSelector",
    "grpcRouteSelector",
    "tcpRouteSelector",
    "tlsRouteSelector",
];

impl GatewayConfig {
    /// Reads the plugin block and `spec.strategy.canary` of `rollout`.
    pub fn from_rollout(rollout: &Rollout) -> Result<Self, GatewayError> {
        let canary = rollout
            .spec
            .strategy
            .as_ref()
            .and_then(|s| s.canary.as_ref())
            .ok_or_else(|| GatewayError::Config("spec.strategy.canary is required".into()))?;
        let routing = canary.traffic_routing.as_ref().ok_or_else(|| {
            GatewayError::Config("spec.strategy.canary.trafficRouting is required".into())
        })?;
        let block = routing
            .plugins
            .as_ref()
            .and_then(|p| p.get(NAME))
            .ok_or_else(|| {
                GatewayError::Config(format!(
                    "spec.strategy.canary.trafficRouting.plugins[\"{NAME}\"] is required"
                ))
            })?;
        let empty = Map::new();
        let obj = match block {
            Value::Object(obj) => obj,
            Value::Null => &empty,
            _ => {
                return Err(GatewayError::Config(format!(
                    "spec.strategy.canary.trafficRouting.plugins[\"{NAME}\"] must be an object"
                )));
            }
        };
        for key in obj.keys() {
            if UNSUPPORTED.contains(&key.as_str()) {
                return Err(GatewayError::Config(format!(
                    "{} is not supported by the built-in Gateway API router, which manages HTTPRoutes and GRPCRoutes named in httpRoute(s) and grpcRoute(s)",
                    field(key)
                )));
            }
            if !SUPPORTED.contains(&key.as_str()) {
                return Err(GatewayError::Config(format!(
                    "{} is not a field of the Gateway API router (fields: {})",
                    field(key),
                    SUPPORTED.join(", ")
                )));
            }
        }
        let mut routes = route_list(obj, "httpRoutes", RouteKind::Http)?;
        if let Some(name) = string(obj, "httpRoute")? {
            routes.push(RouteRef {
                kind: RouteKind::Http,
                name,
                use_header_routes: true,
                rule_name: string(obj, "httpRouteRuleName")?,
            });
        }
        routes.extend(route_list(obj, "grpcRoutes", RouteKind::Grpc)?);
        if let Some(name) = string(obj, "grpcRoute")? {
            routes.push(RouteRef {
                kind: RouteKind::Grpc,
                name,
                use_header_routes: true,
                rule_name: string(obj, "grpcRouteRuleName")?,
            });
        }
        if routes.is_empty() {
            return Err(GatewayError::Config(format!(
                "no route to manage: set {}, {}, {} or {}",
                field("httpRoute"),
                field("httpRoutes"),
                field("grpcRoute"),
                field("grpcRoutes")
            )));
        }
        let in_progress_label = if boolean(
            obj,
            "disableInProgressLabel",
            &field("disableInProgressLabel"),
        )? {
            None
        } else {
            Some((
                string(obj, "inProgressLabelKey")?
                    .unwrap_or_else(|| DEFAULT_IN_PROGRESS_LABEL_KEY.to_string()),
                // An explicit empty value is a valid label value; only absence means the default.
                match obj.get("inProgressLabelValue") {
                    Some(Value::String(s)) => s.clone(),
                    _ => string(obj, "inProgressLabelValue")?
                        .unwrap_or_else(|| DEFAULT_IN_PROGRESS_LABEL_VALUE.to_string()),
                },
            ))
        };
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        Ok(Self {
            namespace: string(obj, "namespace")?.unwrap_or_else(|| {
                rollout
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".to_string())
            }),
            routes,
            canary_service: non_empty(&canary.canary_service).ok_or_else(|| {
                GatewayError::Config(
                    "spec.strategy.canary.canaryService is required with the Gateway API router"
                        .into(),
                )
            })?,
            stable_service: non_empty(&canary.stable_service).ok_or_else(|| {
                GatewayError::Config(
                    "spec.strategy.canary.stableService is required with the Gateway API router"
                        .into(),
                )
            })?,
            managed_routes: routing
                .managed_routes
                .iter()
                .flatten()
                .map(|r| r.name.clone())
                .collect(),
            in_progress_label,
            previous_additional: rollout
                .status
                .as_ref()
                .and_then(|s| s.canary.as_ref())
                .and_then(|c| c.weights.as_ref())
                .and_then(|w| w.additional.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|d| d.service_name.clone())
                .collect(),
            config_map: string(obj, "configMap")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rollout(block: Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "notifications", "namespace": "messaging", "uid": "uid-1"},
            "spec": {
                "selector": {"matchLabels": {"app": "notifications"}},
                "strategy": {"canary": {
                    "canaryService": "n-canary",
                    "stableService": "n-stable",
                    "trafficRouting": {
                        "managedRoutes": [{"name": "beta"}, {"name": "shadow"}],
                        "plugins": {NAME: block}
                    }
                }}
            },
            "status": {"canary": {"weights": {
                "canary": {"weight": 10, "serviceName": "n-canary", "podTemplateHash": "a"},
                "stable": {"weight": 80, "serviceName": "n-stable", "podTemplateHash": "b"},
                "additional": [{"weight": 10, "serviceName": "n-exp", "podTemplateHash": "c"}]
            }}}
        }))
        .unwrap()
    }

    fn parse(block: Value) -> Result<GatewayConfig, String> {
        GatewayConfig::from_rollout(&rollout(block)).map_err(|e| e.to_string())
    }

    #[test]
    fn the_single_forms_follow_the_lists_and_use_header_routes() {
        let c = parse(json!({
            "httpRoute": "main", "httpRouteRuleName": "argo",
            "httpRoutes": [{"name": "a", "useHeaderRoutes": true}, {"name": "b", "ruleName": "r"}],
            "grpcRoute": "rpc",
            "configMap": "argo-gatewayapi-configmap"
        }))
        .unwrap();
        let summary: Vec<(RouteKind, &str, bool, Option<&str>)> = c
            .routes
            .iter()
            .map(|r| {
                (
                    r.kind,
                    r.name.as_str(),
                    r.use_header_routes,
                    r.rule_name.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (RouteKind::Http, "a", true, None),
                (RouteKind::Http, "b", false, Some("r")),
                (RouteKind::Http, "main", true, Some("argo")),
                (RouteKind::Grpc, "rpc", true, None),
            ]
        );
        assert_eq!(c.namespace, "messaging");
        assert_eq!(c.managed_routes, ["beta", "shadow"]);
        assert_eq!(c.previous_additional, ["n-exp"]);
        assert_eq!(c.config_map.as_deref(), Some("argo-gatewayapi-configmap"));
        assert_eq!(
            c.in_progress_label,
            Some((
                "rollouts.argoproj.io/gatewayapi-canary".into(),
                "in-progress".into()
            ))
        );
    }

    #[test]
    fn namespace_and_label_settings() {
        let c = parse(json!({"httpRoute": "main", "namespace": "edge",
                             "inProgressLabelKey": "example.com/canary", "inProgressLabelValue": ""}))
        .unwrap();
        assert_eq!(c.namespace, "edge");
        assert_eq!(
            c.in_progress_label,
            Some(("example.com/canary".into(), String::new()))
        );
        let c =
            parse(json!({"grpcRoutes": [{"name": "g"}], "disableInProgressLabel": true})).unwrap();
        assert_eq!(c.in_progress_label, None);
        assert!(!c.routes[0].use_header_routes);
    }

    #[test]
    fn errors_name_the_field() {
        let p = "spec.strategy.canary.trafficRouting.plugins[\"argoproj-labs/gatewayAPI\"]";
        assert_eq!(
            parse(json!({})).unwrap_err(),
            format!(
                "no route to manage: set {p}.httpRoute, {p}.httpRoutes, {p}.grpcRoute or {p}.grpcRoutes"
            )
        );
        assert_eq!(
            parse(json!({"httpRoute": "a", "tcpRoute": "t"})).unwrap_err(),
            format!(
                "{p}.tcpRoute is not supported by the built-in Gateway API router, which manages HTTPRoutes and GRPCRoutes named in httpRoute(s) and grpcRoute(s)"
            )
        );
        assert!(
            parse(json!({"httpRoute": "a", "httpRoutez": []}))
                .unwrap_err()
                .starts_with(&format!(
                    "{p}.httpRoutez is not a field of the Gateway API router (fields: httpRoute, "
                ))
        );
        assert_eq!(
            parse(json!({"httpRoutes": [{"useHeaderRoutes": true}]})).unwrap_err(),
            format!("{p}.httpRoutes[0].name is required")
        );
        assert_eq!(
            parse(json!({"httpRoutes": [{"name": "a", "useHeaderRoute": true}]})).unwrap_err(),
            format!(
                "{p}.httpRoutes[0].useHeaderRoute is not a field of a route (name, useHeaderRoutes, ruleName)"
            )
        );
        assert_eq!(
            parse(json!({"httpRoutes": [{"name": "a", "useHeaderRoutes": "yes"}]})).unwrap_err(),
            format!("{p}.httpRoutes[0].useHeaderRoutes must be true or false")
        );
        assert_eq!(
            parse(json!({"httpRoute": 3})).unwrap_err(),
            format!("{p}.httpRoute must be a string")
        );
        assert_eq!(
            parse(json!("main")).unwrap_err(),
            format!("{p} must be an object")
        );
    }
}
