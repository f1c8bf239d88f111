//! What the router wants in the App Mesh objects (the VirtualRouter's weighted targets, the
//! VirtualNodes' pod selectors), and how that compares with the objects in the cluster.
//!
//! Everything here is pure: the router's I/O (`lib.rs`) reads the objects, asks these functions
//! what to patch, and sends that. Malformed objects give Argo's field errors
//! (`<field path>: Invalid value: "<object>": not well-formed`), never a panic.

use rollouts_api::{Rollout, labels};
use serde_json::{Map, Value, json};

use crate::AppMeshError;

/// The API group of the App Mesh controller's resources.
pub const GROUP: &str = "appmesh.k8s.aws";
/// The version used when the host sets none (Argo's `--appmesh-crd-version` default).
pub const DEFAULT_VERSION: &str = "v1beta2";
/// The route kinds that carry weighted targets, in the order Argo looks for them.
pub const ROUTE_TYPES: [&str; 4] = ["httpRoute", "tcpRoute", "http2Route", "grpcRoute"];
/// The pod-selector value of the stable VirtualNode before a stable hash is known.
pub const DEFAULT_STABLE_HASH: &str = "stable-hash";
/// The pod-selector value of the canary VirtualNode when there is no canary hash of its own.
pub const DEFAULT_CANARY_HASH: &str = "canary-hash";

/// Argo's detail for a malformed piece of an App Mesh object.
pub const NOT_WELL_FORMED: &str = "not well-formed";

/// What the router needs from the Rollout and the settings, resolved once when it is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppMeshConfig {
    /// The Rollout's name (the value of the managed-by annotation on the VirtualNodes).
    pub rollout: String,
    /// The Rollout's namespace: the VirtualService and VirtualNodes live there.
    pub namespace: String,
    /// `virtualService.name`.
    pub virtual_service: String,
    /// `virtualService.routes`: the routes of the VirtualRouter to change (empty: all).
    pub routes: Vec<String>,
    /// `virtualNodeGroup.canaryVirtualNodeRef.name`.
    pub canary_node: String,
    /// `virtualNodeGroup.stableVirtualNodeRef.name`.
    pub stable_node: String,
    /// The API version of the three kinds (`v1beta2`).
    pub version: String,
}

impl AppMeshConfig {
    /// Reads `spec.strategy.canary.trafficRouting.appMesh` of `rollout`; `version` is the
    /// `--appmesh-crd-version` setting.
    pub fn from_rollout(rollout: &Rollout, version: &str) -> Result<Self, AppMeshError> {
        let mesh = rollout
            .spec
            .strategy
            .as_ref()
            .and_then(|s| s.canary.as_ref())
            .and_then(|c| c.traffic_routing.as_ref())
            .and_then(|t| t.app_mesh.as_ref())
            .ok_or(AppMeshError::Config(
                "spec.strategy.canary.trafficRouting.appMesh is required",
            ))?;
        let service = mesh.virtual_service.as_ref().ok_or(AppMeshError::Config(
            "spec.strategy.canary.trafficRouting.appMesh.virtualService is required",
        ))?;
        if service.name.is_empty() {
            return Err(AppMeshError::Config(
                "spec.strategy.canary.trafficRouting.appMesh.virtualService.name is required",
            ));
        }
        let group = mesh
            .virtual_node_group
            .as_ref()
            .ok_or(AppMeshError::Config(
                "spec.strategy.canary.trafficRouting.appMesh.virtualNodeGroup is required",
            ))?;
        if group.canary_virtual_node_ref.name.is_empty() {
            return Err(AppMeshError::Config(
                "spec.strategy.canary.trafficRouting.appMesh.virtualNodeGroup.canaryVirtualNodeRef.name is required",
            ));
        }
        if group.stable_virtual_node_ref.name.is_empty() {
            return Err(AppMeshError::Config(
                "spec.strategy.canary.trafficRouting.appMesh.virtualNodeGroup.stableVirtualNodeRef.name is required",
            ));
        }
        if version.is_empty() || version.contains('/') {
            return Err(AppMeshError::Version(version.to_string()));
        }
        Ok(Self {
            rollout: rollout.metadata.name.clone().unwrap_or_default(),
            namespace: rollout
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_string()),
            virtual_service: service.name.clone(),
            routes: service.routes.clone().unwrap_or_default(),
            canary_node: group.canary_virtual_node_ref.name.clone(),
            stable_node: group.stable_virtual_node_ref.name.clone(),
            version: version.to_string(),
        })
    }

    /// `appmesh.k8s.aws/<version>`.
    pub fn api_version(&self) -> String {
        format!("{GROUP}/{}", self.version)
    }
}

fn invalid(field: impl Into<String>, object: &Value) -> AppMeshError {
    AppMeshError::Invalid {
        field: field.into(),
        object: object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        detail: NOT_WELL_FORMED.to_string(),
    }
}

/// A string field that may be absent or empty, with a default (Argo's `defaultIfEmpty`).
fn or_default<'a>(value: &'a Value, default: &'a str) -> &'a str {
    value.as_str().filter(|s| !s.is_empty()).unwrap_or(default)
}

/// The namespace and name of the VirtualRouter that the VirtualService `service` points at
/// (`spec.provider.virtualRouter.virtualRouterRef`; the namespace defaults to the service's).
pub fn router_ref(service: &Value) -> Result<(String, String), AppMeshError> {
    let reference = &service["spec"]["provider"]["virtualRouter"]["virtualRouterRef"];
    if reference.is_null() {
        return Err(AppMeshError::NotUsingVirtualRouter);
    }
    const REF: &str = "spec.provider.virtualRouter.virtualRouterRef";
    if !reference.is_object() {
        return Err(invalid(REF, service));
    }
    let name = reference["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid(format!("{REF}.name"), service))?;
    let namespace = or_default(
        &reference["namespace"],
        service["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default(),
    );
    Ok((namespace.to_string(), name.to_string()))
}

/// A weight as Argo reads it: any JSON number (a fraction is cut off, as Go's `int64(f)`).
pub fn weight_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
}

/// Which side of the rollout a weighted target sends traffic to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Canary,
    Stable,
}

/// One weighted target of a selected route, located in `spec.routes`.
#[derive(Debug)]
struct Target {
    route: usize,
    route_name: String,
    kind: &'static str,
    index: usize,
    side: Option<Side>,
    weight: i64,
}

/// The weighted targets of the routes the router manages, with Argo's errors for malformed
/// pieces, plus (a rollouts-rs check) an error for a route named in `virtualService.routes`
/// that the VirtualRouter does not have.
fn targets(cfg: &AppMeshConfig, router: &Value) -> Result<Vec<Target>, AppMeshError> {
    let routes = router["spec"]["routes"]
        .as_array()
        .ok_or_else(|| AppMeshError::Invalid {
            field: "spec.routes".into(),
            object: router["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            detail: "No routes found".into(),
        })?;
    let mut found = Vec::new();
    let mut seen_names = Vec::new();
    for (r, route) in routes.iter().enumerate() {
        let path = format!("spec.routes[{r}]");
        if !route.is_object() {
            return Err(invalid(path, router));
        }
        let name = route["name"]
            .as_str()
            .ok_or_else(|| invalid(format!("{path}.name"), router))?;
        seen_names.push(name);
        if !cfg.routes.is_empty() && !cfg.routes.iter().any(|n| n == name) {
            continue;
        }
        let (kind, rule) = ROUTE_TYPES
            .iter()
            .find_map(|kind| route.get(*kind).map(|rule| (*kind, rule)))
            .ok_or_else(|| invalid(&path, router))?;
        if !rule.is_object() {
            return Err(invalid(&path, router));
        }
        let list_path = format!("{path}.{kind}.action.weightedTargets");
        let list = rule["action"]["weightedTargets"]
            .as_array()
            .ok_or_else(|| invalid(&list_path, router))?;
        for (i, target) in list.iter().enumerate() {
            let target_path = format!("{list_path}[{i}]");
            if !target.is_object() {
                return Err(invalid(target_path, router));
            }
            let node = &target["virtualNodeRef"];
            if !node.is_object() {
                return Err(invalid(format!("{target_path}.virtualNodeRef"), router));
            }
            let weight = weight_of(&target["weight"])
                .ok_or_else(|| invalid(format!("{target_path}.weight"), router))?;
            let node_name = node["name"].as_str().unwrap_or_default();
            let same_namespace = or_default(&node["namespace"], &cfg.namespace) == cfg.namespace;
            let side = match node_name {
                n if same_namespace && n == cfg.stable_node => Some(Side::Stable),
                n if same_namespace && n == cfg.canary_node => Some(Side::Canary),
                _ => None,
            };
            found.push(Target {
                route: r,
                route_name: name.to_string(),
                kind,
                index: i,
                side,
                weight,
            });
        }
    }
    if let Some(missing) = cfg
        .routes
        .iter()
        .find(|n| !seen_names.contains(&n.as_str()))
    {
        return Err(AppMeshError::NoSuchRoute {
            route: missing.clone(),
            router: router["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        });
    }
    Ok(found)
}

fn wanted(side: Side, weight: i32) -> i64 {
    match side {
        Side::Canary => i64::from(weight),
        Side::Stable => 100 - i64::from(weight),
    }
}

/// `spec.routes` of the VirtualRouter `router` with every weighted target of the canary
/// VirtualNode at `weight` and every one of the stable VirtualNode at `100 − weight` (in the
/// selected routes, of whichever of the four route kinds each has), and whether anything
/// changed. Every other field is kept as it is.
pub fn desired_routes(
    cfg: &AppMeshConfig,
    router: &Value,
    weight: i32,
) -> Result<(Vec<Value>, bool), AppMeshError> {
    let found = targets(cfg, router)?;
    let mut routes = router["spec"]["routes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut changed = false;
    for t in &found {
        let Some(side) = t.side else { continue };
        let want = wanted(side, weight);
        if t.weight != want {
            routes[t.route][t.kind]["action"]["weightedTargets"][t.index]["weight"] = json!(want);
            changed = true;
        }
    }
    Ok((routes, changed))
}

/// The JSON merge patch that brings the VirtualRouter `router` to `weight`, or `None` when it
/// already holds it. The patch carries `spec.routes` as read with only the weights changed
/// (a merge patch replaces a list whole), guarded by the object's `resourceVersion` so that a
/// concurrent change is refused (409) rather than overwritten.
pub fn weight_patch(
    cfg: &AppMeshConfig,
    router: &Value,
    weight: i32,
) -> Result<Option<Value>, AppMeshError> {
    let (routes, changed) = desired_routes(cfg, router, weight)?;
    if !changed {
        return Ok(None);
    }
    let mut patch = json!({"spec": {"routes": routes}});
    if let Some(rv) = router["metadata"]["resourceVersion"].as_str() {
        patch["metadata"] = json!({ "resourceVersion": rv });
    }
    Ok(Some(patch))
}

/// Why the VirtualRouter `router` does not hold `weight`, or `None` when it does: the canary
/// weight found and a description of the first target that is off (or of the malformed piece).
pub fn mismatch(cfg: &AppMeshConfig, router: &Value, weight: i32) -> Option<(Option<i32>, String)> {
    let name = router["metadata"]["name"].as_str().unwrap_or_default();
    let found = match targets(cfg, router) {
        Ok(found) => found,
        Err(e) => return Some((None, format!("VirtualRouter `{name}`: {e}"))),
    };
    let (t, side, want) = found.iter().find_map(|t| {
        let side = t.side?;
        let want = wanted(side, weight);
        (t.weight != want).then_some((t, side, want))
    })?;
    let node = match side {
        Side::Canary => &cfg.canary_node,
        Side::Stable => &cfg.stable_node,
    };
    // The canary weight of the route that is off (of the first route with a canary target when
    // that route has none).
    let canary_in = |route: Option<usize>| {
        found
            .iter()
            .find(|c| c.side == Some(Side::Canary) && route.is_none_or(|r| c.route == r))
            .and_then(|c| i32::try_from(c.weight).ok())
    };
    let observed = canary_in(Some(t.route)).or_else(|| canary_in(None));
    Some((
        observed,
        format!(
            "VirtualRouter `{name}` route `{}` ({}) gives virtual node `{node}` weight {}, want {want}",
            t.route_name, t.kind, t.weight
        ),
    ))
}

/// The pod-template hashes the two VirtualNodes select, as Argo picks them: the stable one
/// (`stable-hash` while there is none), then the canary one (`canary-hash` when there is none
/// or it equals the stable one: App Mesh refuses two VirtualNodes with the same selector).
pub fn node_hashes<'a>(canary: &'a str, stable: &'a str) -> (&'a str, &'a str) {
    let stable = if stable.is_empty() {
        DEFAULT_STABLE_HASH
    } else {
        stable
    };
    let canary = if canary.is_empty() || canary == stable {
        DEFAULT_CANARY_HASH
    } else {
        canary
    };
    (canary, stable)
}

/// The JSON merge patch that makes the VirtualNode `node` select pods of `hash`
/// (`spec.podSelector.matchLabels[rollouts-pod-template-hash]`) and carry the managed-by
/// annotation naming the Rollout, or `None` when both already hold. Other labels of the
/// selector and other annotations are left alone; the patch is guarded by `resourceVersion`.
pub fn hash_patch(
    cfg: &AppMeshConfig,
    node: &Value,
    hash: &str,
) -> Result<Option<Value>, AppMeshError> {
    let selector = &node["spec"]["podSelector"];
    if !selector.is_null() && !selector.is_object() {
        return Err(invalid("spec.podSelector", node));
    }
    let labels = &selector["matchLabels"];
    if !labels.is_null() && !labels.is_object() {
        return Err(invalid("spec.podSelector.matchLabels", node));
    }
    let annotations = &node["metadata"]["annotations"];
    let same_hash = labels[labels::POD_TEMPLATE_HASH].as_str() == Some(hash);
    let same_owner = annotations[labels::MANAGED_BY_ROLLOUTS].as_str() == Some(&cfg.rollout);
    if same_hash && same_owner {
        return Ok(None);
    }
    let mut metadata = Map::new();
    metadata.insert(
        "annotations".into(),
        json!({ labels::MANAGED_BY_ROLLOUTS: cfg.rollout }),
    );
    if let Some(rv) = node["metadata"]["resourceVersion"].as_str() {
        metadata.insert("resourceVersion".into(), json!(rv));
    }
    Ok(Some(json!({
        "metadata": metadata,
        "spec": {"podSelector": {"matchLabels": {labels::POD_TEMPLATE_HASH: hash}}}
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(mesh: Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "catalog", "namespace": "shop", "uid": "uid-1"},
            "spec": {
                "selector": {"matchLabels": {"app": "catalog"}},
                "strategy": {"canary": {
                    "canaryService": "catalog-canary",
                    "stableService": "catalog-stable",
                    "trafficRouting": {"appMesh": mesh}
                }}
            }
        }))
        .unwrap()
    }

    fn mesh(routes: Option<Value>) -> Value {
        let mut service = json!({"name": "catalog"});
        if let Some(r) = routes {
            service["routes"] = r;
        }
        json!({
            "virtualService": service,
            "virtualNodeGroup": {
                "canaryVirtualNodeRef": {"name": "catalog-canary"},
                "stableVirtualNodeRef": {"name": "catalog-stable"}
            }
        })
    }

    fn cfg(routes: Option<Value>) -> AppMeshConfig {
        AppMeshConfig::from_rollout(&rollout(mesh(routes)), DEFAULT_VERSION).unwrap()
    }

    fn targets_of(stable: Value, canary: Value) -> Value {
        json!([
            {"virtualNodeRef": {"name": "catalog-stable"}, "weight": stable},
            {"virtualNodeRef": {"name": "catalog-canary", "namespace": "shop"}, "weight": canary},
            {"virtualNodeRef": {"name": "catalog-canary", "namespace": "other"}, "weight": 7},
            {"virtualNodeRef": {"name": "legacy"}, "weight": 3, "port": 8080}
        ])
    }

    /// A VirtualRouter with one route of each kind, a listener and a route match (user-owned).
    fn router() -> Value {
        let route = |name: &str, kind: &str| {
            json!({
                "name": name,
                kind: {
                    "match": {"prefix": "/"},
                    "action": {"weightedTargets": targets_of(json!(100), json!(0))},
                    "retryPolicy": {"maxRetries": 2}
                }
            })
        };
        json!({
            "apiVersion": "appmesh.k8s.aws/v1beta2",
            "kind": "VirtualRouter",
            "metadata": {"name": "catalog-router", "namespace": "shop", "resourceVersion": "12"},
            "spec": {
                "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
                "routes": [
                    route("http-primary", "httpRoute"),
                    route("tcp", "tcpRoute"),
                    route("h2", "http2Route"),
                    route("grpc", "grpcRoute")
                ]
            }
        })
    }

    fn weights(routes: &[Value], r: usize, kind: &str) -> Vec<i64> {
        routes[r][kind]["action"]["weightedTargets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| weight_of(&t["weight"]).unwrap())
            .collect()
    }

    #[test]
    fn config_reads_the_block_and_names_missing_fields() {
        let c = cfg(Some(json!(["http-primary"])));
        assert_eq!(c.namespace, "shop");
        assert_eq!(c.rollout, "catalog");
        assert_eq!(c.routes, vec!["http-primary".to_string()]);
        assert_eq!(c.api_version(), "appmesh.k8s.aws/v1beta2");
        let mut no_group = mesh(None);
        no_group.as_object_mut().unwrap().remove("virtualNodeGroup");
        assert_eq!(
            AppMeshConfig::from_rollout(&rollout(no_group), DEFAULT_VERSION)
                .unwrap_err()
                .to_string(),
            "spec.strategy.canary.trafficRouting.appMesh.virtualNodeGroup is required"
        );
        let mut blank = mesh(None);
        blank["virtualNodeGroup"]["stableVirtualNodeRef"]["name"] = json!("");
        assert_eq!(
            AppMeshConfig::from_rollout(&rollout(blank), DEFAULT_VERSION)
                .unwrap_err()
                .to_string(),
            "spec.strategy.canary.trafficRouting.appMesh.virtualNodeGroup.stableVirtualNodeRef.name is required"
        );
        let mut no_service = mesh(None);
        no_service["virtualService"]["name"] = json!("");
        assert_eq!(
            AppMeshConfig::from_rollout(&rollout(no_service), DEFAULT_VERSION)
                .unwrap_err()
                .to_string(),
            "spec.strategy.canary.trafficRouting.appMesh.virtualService.name is required"
        );
        assert_eq!(
            AppMeshConfig::from_rollout(&rollout(mesh(None)), "appmesh.k8s.aws/v1beta2")
                .unwrap_err()
                .to_string(),
            "invalid App Mesh CRD version `appmesh.k8s.aws/v1beta2`: want a version such as v1beta2"
        );
    }

    #[test]
    fn every_route_kind_gets_the_weights_when_no_route_is_named() {
        let (routes, changed) = desired_routes(&cfg(None), &router(), 30).unwrap();
        assert!(changed);
        for (idx, kind) in [
            (0, "httpRoute"),
            (1, "tcpRoute"),
            (2, "http2Route"),
            (3, "grpcRoute"),
        ] {
            // Stable 70, canary 30; the canary node of another namespace and the unrelated
            // node keep theirs.
            assert_eq!(weights(&routes, idx, kind), vec![70, 30, 7, 3], "{kind}");
            assert_eq!(routes[idx][kind]["retryPolicy"], json!({"maxRetries": 2}));
            assert_eq!(routes[idx][kind]["match"], json!({"prefix": "/"}));
        }
    }

    #[test]
    fn named_routes_only() {
        let c = cfg(Some(json!(["tcp", "grpc"])));
        let (routes, _) = desired_routes(&c, &router(), 40).unwrap();
        assert_eq!(weights(&routes, 0, "httpRoute"), vec![100, 0, 7, 3]);
        assert_eq!(weights(&routes, 1, "tcpRoute"), vec![60, 40, 7, 3]);
        assert_eq!(weights(&routes, 2, "http2Route"), vec![100, 0, 7, 3]);
        assert_eq!(weights(&routes, 3, "grpcRoute"), vec![60, 40, 7, 3]);
    }

    #[test]
    fn the_patch_carries_the_routes_and_the_resource_version_and_nothing_when_in_place() {
        let c = cfg(Some(json!(["http-primary"])));
        let patch = weight_patch(&c, &router(), 20).unwrap().unwrap();
        assert_eq!(patch["metadata"], json!({"resourceVersion": "12"}));
        assert!(patch["spec"].get("listeners").is_none());
        let routes = patch["spec"]["routes"].as_array().unwrap();
        assert_eq!(routes.len(), 4);
        assert_eq!(weights(routes, 0, "httpRoute"), vec![80, 20, 7, 3]);
        let mut applied = router();
        applied["spec"]["routes"] = patch["spec"]["routes"].clone();
        assert_eq!(weight_patch(&c, &applied, 20).unwrap(), None);
        // A float weight that already holds the value is left alone.
        applied["spec"]["routes"][0]["httpRoute"]["action"]["weightedTargets"][0]["weight"] =
            json!(80.0);
        assert_eq!(weight_patch(&c, &applied, 20).unwrap(), None);
        assert!(weight_patch(&c, &applied, 21).unwrap().is_some());
    }

    #[test]
    fn argos_errors_for_malformed_routers() {
        let c = cfg(None);
        let err = |vr: &Value| weight_patch(&c, vr, 10).unwrap_err().to_string();
        let mut vr = router();
        vr["spec"].as_object_mut().unwrap().remove("routes");
        assert_eq!(
            err(&vr),
            "spec.routes: Invalid value: \"catalog-router\": No routes found"
        );
        vr["spec"]["routes"] = json!(["x"]);
        assert_eq!(
            err(&vr),
            "spec.routes[0]: Invalid value: \"catalog-router\": not well-formed"
        );
        vr["spec"]["routes"] = json!([{"httpRoute": {}}]);
        assert_eq!(
            err(&vr),
            "spec.routes[0].name: Invalid value: \"catalog-router\": not well-formed"
        );
        vr["spec"]["routes"] = json!([{"name": "a", "udpRoute": {}}]);
        assert_eq!(
            err(&vr),
            "spec.routes[0]: Invalid value: \"catalog-router\": not well-formed"
        );
        vr["spec"]["routes"] = json!([{"name": "a", "httpRoute": {"action": {}}}]);
        assert_eq!(
            err(&vr),
            "spec.routes[0].httpRoute.action.weightedTargets: Invalid value: \"catalog-router\": not well-formed"
        );
        vr["spec"]["routes"] =
            json!([{"name": "a", "grpcRoute": {"action": {"weightedTargets": [{"weight": 1}]}}}]);
        assert_eq!(
            err(&vr),
            "spec.routes[0].grpcRoute.action.weightedTargets[0].virtualNodeRef: Invalid value: \"catalog-router\": not well-formed"
        );
        vr["spec"]["routes"] = json!([{"name": "a", "tcpRoute": {"action": {"weightedTargets": [
            {"virtualNodeRef": {"name": "catalog-stable"}, "weight": "50"}
        ]}}}]);
        assert_eq!(
            err(&vr),
            "spec.routes[0].tcpRoute.action.weightedTargets[0].weight: Invalid value: \"catalog-router\": not well-formed"
        );
    }

    #[test]
    fn a_named_route_the_router_lacks_is_an_error() {
        let c = cfg(Some(json!(["http-primary", "canary-only"])));
        assert_eq!(
            weight_patch(&c, &router(), 10).unwrap_err().to_string(),
            "route `canary-only` named in spec.strategy.canary.trafficRouting.appMesh.virtualService.routes is not in VirtualRouter `catalog-router`"
        );
    }

    #[test]
    fn router_ref_defaults_the_namespace_and_names_bad_fields() {
        let vs = |reference: Value| {
            json!({"metadata": {"name": "catalog", "namespace": "shop"},
                   "spec": {"provider": {"virtualRouter": {"virtualRouterRef": reference}}}})
        };
        assert_eq!(
            router_ref(&vs(json!({"name": "r"}))).unwrap(),
            ("shop".into(), "r".into())
        );
        assert_eq!(
            router_ref(&vs(json!({"name": "r", "namespace": "mesh"}))).unwrap(),
            ("mesh".into(), "r".into())
        );
        assert_eq!(
            router_ref(&vs(json!({"namespace": "mesh"})))
                .unwrap_err()
                .to_string(),
            "spec.provider.virtualRouter.virtualRouterRef.name: Invalid value: \"catalog\": not well-formed"
        );
        let node_provider = json!({"metadata": {"name": "catalog"},
            "spec": {"provider": {"virtualNode": {"virtualNodeRef": {"name": "n"}}}}});
        assert_eq!(
            router_ref(&node_provider).unwrap_err().to_string(),
            "Virtual-service is not associated with virtual-router"
        );
    }

    #[test]
    fn mismatch_names_the_route_and_node() {
        let c = cfg(None);
        let vr = router();
        assert_eq!(mismatch(&c, &vr, 0), None);
        assert_eq!(
            mismatch(&c, &vr, 25),
            Some((
                Some(0),
                "VirtualRouter `catalog-router` route `http-primary` (httpRoute) gives virtual node `catalog-stable` weight 100, want 75".into()
            ))
        );
        let mut tampered = vr.clone();
        let (routes, _) = desired_routes(&c, &vr, 25).unwrap();
        tampered["spec"]["routes"] = json!(routes);
        assert_eq!(mismatch(&c, &tampered, 25), None);
        tampered["spec"]["routes"][3]["grpcRoute"]["action"]["weightedTargets"][1]["weight"] =
            json!(50);
        assert_eq!(
            mismatch(&c, &tampered, 25),
            Some((
                Some(50),
                "VirtualRouter `catalog-router` route `grpc` (grpcRoute) gives virtual node `catalog-canary` weight 50, want 25".into()
            ))
        );
        // The stable target is off: the canary weight of that route is reported.
        tampered["spec"]["routes"][2]["http2Route"]["action"]["weightedTargets"][0]["weight"] =
            json!(40);
        tampered["spec"]["routes"][2]["http2Route"]["action"]["weightedTargets"][1]["weight"] =
            json!(60);
        assert_eq!(
            mismatch(&c, &tampered, 25),
            Some((
                Some(60),
                "VirtualRouter `catalog-router` route `h2` (http2Route) gives virtual node `catalog-stable` weight 40, want 75".into()
            ))
        );
        tampered["spec"]["routes"] = json!([]);
        assert_eq!(mismatch(&c, &tampered, 25), None);
        tampered["spec"] = json!({});
        assert_eq!(
            mismatch(&c, &tampered, 25),
            Some((
                None,
                "VirtualRouter `catalog-router`: spec.routes: Invalid value: \"catalog-router\": No routes found".into()
            ))
        );
    }

    #[test]
    fn hashes_follow_argos_defaults() {
        assert_eq!(node_hashes("c1", "s1"), ("c1", "s1"));
        assert_eq!(node_hashes("", ""), ("canary-hash", "stable-hash"));
        assert_eq!(node_hashes("s1", "s1"), ("canary-hash", "s1"));
        assert_eq!(node_hashes("", "s1"), ("canary-hash", "s1"));
        assert_eq!(node_hashes("c1", ""), ("c1", "stable-hash"));
    }

    #[test]
    fn hash_patch_sets_the_label_and_annotation_only() {
        let c = cfg(None);
        let node = json!({
            "metadata": {"name": "catalog-canary", "resourceVersion": "5",
                         "annotations": {"team": "shop"}},
            "spec": {"podSelector": {"matchLabels": {"app": "catalog"}},
                     "listeners": [{"portMapping": {"port": 80}}]}
        });
        let patch = hash_patch(&c, &node, "abc123").unwrap().unwrap();
        assert_eq!(
            patch,
            json!({
                "metadata": {"resourceVersion": "5", "annotations": {
                    "argo-rollouts.argoproj.io/managed-by-rollouts": "catalog"}},
                "spec": {"podSelector": {"matchLabels": {"rollouts-pod-template-hash": "abc123"}}}
            })
        );
        let mut done = node.clone();
        done["metadata"]["annotations"]["argo-rollouts.argoproj.io/managed-by-rollouts"] =
            json!("catalog");
        done["spec"]["podSelector"]["matchLabels"]["rollouts-pod-template-hash"] = json!("abc123");
        assert_eq!(hash_patch(&c, &done, "abc123").unwrap(), None);
        assert!(hash_patch(&c, &done, "def456").unwrap().is_some());
        // No selector at all: one is created.
        let bare = json!({"metadata": {"name": "catalog-canary"}, "spec": {}});
        assert!(hash_patch(&c, &bare, "abc123").unwrap().is_some());
        let bad = json!({"metadata": {"name": "catalog-canary"},
                         "spec": {"podSelector": {"matchLabels": ["app"]}}});
        assert_eq!(
            hash_patch(&c, &bad, "abc123").unwrap_err().to_string(),
            "spec.podSelector.matchLabels: Invalid value: \"catalog-canary\": not well-formed"
        );
    }
}
