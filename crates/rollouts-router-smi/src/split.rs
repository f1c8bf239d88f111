//! The TrafficSplit the router wants, as JSON, and how it compares with the one in the cluster.
//!
//! Everything here is pure: the router's I/O (`lib.rs`) reads the object, asks these functions
//! what to create or patch, and sends that.

use rollouts_api::{Rollout, WeightDestination};
use serde_json::{Map, Value, json};

use crate::SmiError;

/// The API group of TrafficSplits.
pub const GROUP: &str = "split.smi-spec.io";

/// A TrafficSplit version the router can write. The versions differ in how a backend's weight
/// is written: a Kubernetes quantity string in `v1alpha1` (`"10"`), an integer afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitVersion {
    /// `split.smi-spec.io/v1alpha1`: weights are quantity strings.
    V1alpha1,
    /// `split.smi-spec.io/v1alpha2`: weights are integers.
    V1alpha2,
    /// `split.smi-spec.io/v1alpha3`: weights are integers; the split may also have `matches`
    /// (user-owned, never touched).
    V1alpha3,
}

impl SplitVersion {
    /// Parses the `--traffic-split-api-version` value (`v1alpha1`, `v1alpha2` or `v1alpha3`);
    /// anything else is Argo's "Unsupported TrafficSplit API version `X`".
    pub fn parse(version: &str) -> Result<Self, SmiError> {
        match version {
            "v1alpha1" => Ok(Self::V1alpha1),
            "v1alpha2" => Ok(Self::V1alpha2),
            "v1alpha3" => Ok(Self::V1alpha3),
            other => Err(SmiError::UnsupportedVersion(other.to_string())),
        }
    }

    /// `v1alpha1`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1alpha1 => "v1alpha1",
            Self::V1alpha2 => "v1alpha2",
            Self::V1alpha3 => "v1alpha3",
        }
    }

    /// A weight as this version writes it.
    pub fn weight(self, weight: i64) -> Value {
        match self {
            Self::V1alpha1 => Value::String(weight.to_string()),
            Self::V1alpha2 | Self::V1alpha3 => json!(weight),
        }
    }
}

/// What the router needs from the Rollout, resolved once when it is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitConfig {
    /// Name of the TrafficSplit (`trafficSplitName`, default the Rollout's name).
    pub name: String,
    /// The Rollout's namespace (the TrafficSplit lives there).
    pub namespace: String,
    /// The Rollout's name.
    pub rollout: String,
    /// The Rollout's uid, for the ownership check; `None` for a rollout that was never stored.
    pub rollout_uid: Option<String>,
    /// `spec.service` of the split (`rootService`, default the stable Service).
    pub root_service: String,
    /// `canaryService`.
    pub canary_service: String,
    /// `stableService`.
    pub stable_service: String,
    /// The version written.
    pub version: SplitVersion,
}

impl SplitConfig {
    /// Reads `spec.strategy.canary` of `rollout`. The canary and stable Services are required (as
    /// Argo's validation requires them with SMI); the `smi` block itself may be empty (`smi: {}`).
    pub fn from_rollout(rollout: &Rollout, version: SplitVersion) -> Result<Self, SmiError> {
        let canary = rollout
            .spec
            .strategy
            .as_ref()
            .and_then(|s| s.canary.as_ref())
            .ok_or(SmiError::Config("spec.strategy.canary is required"))?;
        let smi = canary
            .traffic_routing
            .as_ref()
            .and_then(|t| t.smi.as_ref())
            .ok_or(SmiError::Config(
                "spec.strategy.canary.trafficRouting.smi is required",
            ))?;
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let canary_service = non_empty(&canary.canary_service).ok_or(SmiError::Config(
            "spec.strategy.canary.canaryService is required with SMI",
        ))?;
        let stable_service = non_empty(&canary.stable_service).ok_or(SmiError::Config(
            "spec.strategy.canary.stableService is required with SMI",
        ))?;
        let rollout_name = rollout
            .metadata
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or(SmiError::Config("the Rollout has no metadata.name"))?;
        Ok(Self {
            name: non_empty(&smi.traffic_split_name).unwrap_or_else(|| rollout_name.clone()),
            namespace: rollout
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_string()),
            rollout: rollout_name,
            rollout_uid: rollout.metadata.uid.clone().filter(|u| !u.is_empty()),
            root_service: non_empty(&smi.root_service).unwrap_or_else(|| stable_service.clone()),
            canary_service,
            stable_service,
            version,
        })
    }

    /// `split.smi-spec.io/<version>`.
    pub fn api_version(&self) -> String {
        format!("{GROUP}/{}", self.version.as_str())
    }
}

/// The backends for `weight` percent to the canary: the canary first, then each additional
/// destination (experiment services) with its weight, then the stable Service with
/// `100 - weight - Σ additional` (Argo's order and arithmetic; `maxTrafficWeight` is not used by
/// SMI).
pub fn backends(cfg: &SplitConfig, weight: i32, additional: &[WeightDestination]) -> Vec<Value> {
    let mut stable = 100 - i64::from(weight);
    let mut out = vec![json!({
        "service": cfg.canary_service,
        "weight": cfg.version.weight(i64::from(weight)),
    })];
    for dest in additional {
        out.push(json!({
            "service": dest.service_name.clone().unwrap_or_default(),
            "weight": cfg.version.weight(i64::from(dest.weight)),
        }));
        stable -= i64::from(dest.weight);
    }
    out.push(json!({
        "service": cfg.stable_service,
        "weight": cfg.version.weight(stable),
    }));
    out
}

/// The TrafficSplit to create: named and namespaced, controlled by the Rollout (`owner` is its
/// controller reference), with the root service and the backends.
pub fn desired(
    cfg: &SplitConfig,
    owner: Option<Value>,
    weight: i32,
    additional: &[WeightDestination],
) -> Value {
    let mut metadata = json!({"name": cfg.name, "namespace": cfg.namespace});
    if let Some(owner) = owner {
        metadata["ownerReferences"] = json!([owner]);
    }
    json!({
        "apiVersion": cfg.api_version(),
        "kind": "TrafficSplit",
        "metadata": metadata,
        "spec": {
            "service": cfg.root_service,
            "backends": backends(cfg, weight, additional),
        },
    })
}

/// A weight as a number, whether it is written as an integer, a float or a quantity string
/// (`"10"`, `"10.0"`). Quantities with suffixes (`"1k"`) are not weights anyone writes; they
/// read as `None` and so never compare equal.
pub fn weight_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok().or_else(|| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && f.fract() == 0.0)
                .map(|f| f as i64)
        }),
        _ => None,
    }
}

/// `(service, weight)` of each backend, in order.
fn normalized(backends: &Value) -> Vec<(Option<&str>, Option<i64>)> {
    backends
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| (b["service"].as_str(), weight_of(&b["weight"])))
        .collect()
}

/// The JSON merge patch that makes `current`'s `spec.service` and `spec.backends` those of
/// `desired`, or `None` when they already are (weights compare as numbers, so a `v1alpha1`
/// `"10"` equals a `10`). Only these two fields are sent: anything else in the split (labels,
/// annotations, `spec.matches` of v1alpha3) stays as it is.
pub fn spec_patch(current: &Value, desired: &Value) -> Option<Value> {
    let mut spec = Map::new();
    if current["spec"]["service"] != desired["spec"]["service"] {
        spec.insert("service".into(), desired["spec"]["service"].clone());
    }
    if normalized(&current["spec"]["backends"]) != normalized(&desired["spec"]["backends"]) {
        spec.insert("backends".into(), desired["spec"]["backends"].clone());
    }
    (!spec.is_empty()).then(|| json!({ "spec": spec }))
}

/// Why `current` does not hold the desired split, or `None` when it does: the canary weight
/// found (if any) and a description naming the first difference.
pub fn mismatch(
    cfg: &SplitConfig,
    current: Option<&Value>,
    weight: i32,
    additional: &[WeightDestination],
) -> Option<(Option<i32>, String)> {
    let Some(current) = current else {
        return Some((None, format!("TrafficSplit `{}` does not exist", cfg.name)));
    };
    let found = normalized(&current["spec"]["backends"]);
    let observed = found
        .iter()
        .find(|(service, _)| *service == Some(cfg.canary_service.as_str()))
        .and_then(|(_, w)| *w)
        .and_then(|w| i32::try_from(w).ok());
    let service = current["spec"]["service"].as_str().unwrap_or_default();
    if service != cfg.root_service {
        return Some((
            observed,
            format!(
                "TrafficSplit `{}` splits service `{service}`, not `{}`",
                cfg.name, cfg.root_service
            ),
        ));
    }
    let want_backends = Value::Array(backends(cfg, weight, additional));
    let want = normalized(&want_backends);
    for (service, w) in &want {
        let service = service.unwrap_or_default();
        let got = found
            .iter()
            .find(|(s, _)| *s == Some(service))
            .map(|(_, w)| *w);
        match got {
            None => {
                return Some((
                    observed,
                    format!("TrafficSplit `{}` has no backend `{service}`", cfg.name),
                ));
            }
            Some(got) if got != *w => {
                return Some((
                    observed,
                    format!(
                        "TrafficSplit `{}` gives backend `{service}` weight {}, want {}",
                        cfg.name,
                        got.map_or("(none)".to_string(), |g| g.to_string()),
                        w.unwrap_or_default()
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    if let Some((service, w)) = found
        .iter()
        .find(|(s, w)| w.is_some_and(|w| w != 0) && !want.iter().any(|(ws, _)| ws == s))
    {
        return Some((
            observed,
            format!(
                "TrafficSplit `{}` also sends weight {} to backend `{}`",
                cfg.name,
                w.unwrap_or_default(),
                service.unwrap_or_default()
            ),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(smi: Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "inventory", "namespace": "shop", "uid": "uid-1"},
            "spec": {
                "selector": {"matchLabels": {"app": "inventory"}},
                "strategy": {"canary": {
                    "canaryService": "inventory-canary",
                    "stableService": "inventory-stable",
                    "trafficRouting": {"smi": smi}
                }}
            }
        }))
        .unwrap()
    }

    fn cfg(smi: Value, version: SplitVersion) -> SplitConfig {
        SplitConfig::from_rollout(&rollout(smi), version).unwrap()
    }

    fn dest(service: &str, weight: i32) -> WeightDestination {
        WeightDestination {
            weight,
            service_name: Some(service.to_string()),
            pod_template_hash: Some(format!("{service}-hash")),
        }
    }

    fn owner() -> Value {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "inventory",
               "uid": "uid-1", "controller": true, "blockOwnerDeletion": true})
    }

    #[test]
    fn defaults_are_the_rollout_name_and_the_stable_service() {
        let c = cfg(json!({}), SplitVersion::V1alpha1);
        assert_eq!(c.name, "inventory");
        assert_eq!(c.root_service, "inventory-stable");
        assert_eq!(c.namespace, "shop");
        assert_eq!(c.rollout_uid.as_deref(), Some("uid-1"));
        let c = cfg(
            json!({"rootService": "inventory", "trafficSplitName": "inventory-split"}),
            SplitVersion::V1alpha2,
        );
        assert_eq!(c.name, "inventory-split");
        assert_eq!(c.root_service, "inventory");
        assert_eq!(c.api_version(), "split.smi-spec.io/v1alpha2");
    }

    #[test]
    fn services_are_required() {
        let mut ro = rollout(json!({}));
        let canary = ro.spec.strategy.as_mut().unwrap().canary.as_mut().unwrap();
        canary.canary_service = None;
        let err = SplitConfig::from_rollout(&ro, SplitVersion::V1alpha1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.strategy.canary.canaryService is required with SMI"
        );
    }

    #[test]
    fn unsupported_versions_are_refused_with_argos_message() {
        assert_eq!(SplitVersion::parse("v1alpha3"), Ok(SplitVersion::V1alpha3));
        assert_eq!(
            SplitVersion::parse("v1alpha4").unwrap_err().to_string(),
            "Unsupported TrafficSplit API version `v1alpha4`"
        );
    }

    #[test]
    fn v1alpha1_creates_quantity_weights_owned_by_the_rollout() {
        let c = cfg(json!({"rootService": "inventory"}), SplitVersion::V1alpha1);
        assert_eq!(
            desired(&c, Some(owner()), 10, &[]),
            json!({
                "apiVersion": "split.smi-spec.io/v1alpha1",
                "kind": "TrafficSplit",
                "metadata": {"name": "inventory", "namespace": "shop", "ownerReferences": [owner()]},
                "spec": {"service": "inventory", "backends": [
                    {"service": "inventory-canary", "weight": "10"},
                    {"service": "inventory-stable", "weight": "90"}
                ]}
            })
        );
    }

    #[test]
    fn v1alpha2_and_v1alpha3_write_integers_with_additional_destinations_before_stable() {
        for version in [SplitVersion::V1alpha2, SplitVersion::V1alpha3] {
            let c = cfg(json!({}), version);
            let d = desired(&c, None, 20, &[dest("exp-a", 5), dest("exp-b", 10)]);
            assert_eq!(
                d["spec"]["backends"],
                json!([
                    {"service": "inventory-canary", "weight": 20},
                    {"service": "exp-a", "weight": 5},
                    {"service": "exp-b", "weight": 10},
                    {"service": "inventory-stable", "weight": 65}
                ])
            );
            assert_eq!(
                d["apiVersion"],
                format!("split.smi-spec.io/{}", version.as_str())
            );
            assert!(d["metadata"].get("ownerReferences").is_none());
        }
    }

    #[test]
    fn patch_touches_only_service_and_backends() {
        let c = cfg(json!({}), SplitVersion::V1alpha3);
        let current = json!({
            "metadata": {"name": "inventory", "labels": {"team": "a"}},
            "spec": {
                "service": "inventory-stable",
                "matches": [{"kind": "HTTPRouteGroup", "name": "api"}],
                "backends": [
                    {"service": "inventory-canary", "weight": 0},
                    {"service": "inventory-stable", "weight": 100}
                ]
            }
        });
        let want = desired(&c, Some(owner()), 30, &[]);
        assert_eq!(
            spec_patch(&current, &want),
            Some(json!({"spec": {"backends": [
                {"service": "inventory-canary", "weight": 30},
                {"service": "inventory-stable", "weight": 70}
            ]}}))
        );
        // Already there: no patch.
        assert_eq!(spec_patch(&current, &desired(&c, None, 0, &[])), None);
        // A moved root service is patched alone.
        let c2 = SplitConfig {
            root_service: "inventory".into(),
            ..c
        };
        assert_eq!(
            spec_patch(&current, &desired(&c2, None, 0, &[])),
            Some(json!({"spec": {"service": "inventory"}}))
        );
    }

    #[test]
    fn quantity_and_integer_weights_compare_as_numbers() {
        let c = cfg(json!({}), SplitVersion::V1alpha1);
        let current = json!({"spec": {"service": "inventory-stable", "backends": [
            {"service": "inventory-canary", "weight": 40},
            {"service": "inventory-stable", "weight": "60.0"}
        ]}});
        assert_eq!(spec_patch(&current, &desired(&c, None, 40, &[])), None);
        assert_eq!(weight_of(&json!("1k")), None);
        assert_eq!(weight_of(&json!(12.0)), Some(12));
        assert_eq!(weight_of(&json!(12.5)), None);
        assert_eq!(weight_of(&Value::Null), None);
    }

    #[test]
    fn mismatch_names_the_difference() {
        let c = cfg(json!({}), SplitVersion::V1alpha2);
        let split = desired(&c, None, 25, &[dest("exp", 5)]);
        assert_eq!(mismatch(&c, Some(&split), 25, &[dest("exp", 5)]), None);
        assert_eq!(
            mismatch(&c, None, 25, &[]),
            Some((None, "TrafficSplit `inventory` does not exist".into()))
        );
        assert_eq!(
            mismatch(&c, Some(&split), 30, &[dest("exp", 5)]),
            Some((
                Some(25),
                "TrafficSplit `inventory` gives backend `inventory-canary` weight 25, want 30"
                    .into()
            ))
        );
        // The experiment ended: its backend still has weight.
        assert_eq!(
            mismatch(&c, Some(&split), 25, &[]),
            Some((
                Some(25),
                "TrafficSplit `inventory` gives backend `inventory-stable` weight 70, want 75"
                    .into()
            ))
        );
        let mut extra = desired(&c, None, 25, &[]);
        extra["spec"]["backends"]
            .as_array_mut()
            .unwrap()
            .push(json!({"service": "rogue", "weight": 3}));
        assert_eq!(
            mismatch(&c, Some(&extra), 25, &[]),
            Some((
                Some(25),
                "TrafficSplit `inventory` also sends weight 3 to backend `rogue`".into()
            ))
        );
        let mut moved = split.clone();
        moved["spec"]["service"] = json!("other");
        assert_eq!(
            mismatch(&c, Some(&moved), 25, &[dest("exp", 5)]),
            Some((
                Some(25),
                "TrafficSplit `inventory` splits service `other`, not `inventory-stable`".into()
            ))
        );
        let mut missing = split;
        missing["spec"]["backends"] = json!([{"service": "inventory-stable", "weight": 100}]);
        assert_eq!(
            mismatch(&c, Some(&missing), 0, &[]),
            Some((
                None,
                "TrafficSplit `inventory` has no backend `inventory-canary`".into()
            ))
        );
    }
}
