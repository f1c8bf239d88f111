//! The canary Mappings the router wants, as JSON, and how they compare with the ones in the
//! cluster.
//!
//! Everything here is pure: the router's I/O (`lib.rs`) reads the Mappings, asks these functions
//! what to create, patch or delete, and sends that.

use rollouts_api::Rollout;
use serde_json::{Value, json};

use crate::AmbassadorError;

/// The Mapping API used when the host sets none (Argo's `--ambassador-api-version` default).
pub const DEFAULT_API_VERSION: &str = "getambassador.io/v2";
/// The group of Emissary's `Mapping`s.
pub const GROUP: &str = "getambassador.io";
/// The group of `AmbassadorMapping`s (Emissary 3's `x.getambassador.io`).
pub const X_GROUP: &str = "x.getambassador.io";
/// Suffix of canary Mapping names.
pub const CANARY_SUFFIX: &str = "-canary";
/// Longest base name kept before the suffix (Argo's cut, so that the name fits 253 bytes).
const BASE_LIMIT: usize = 246;

/// The Mapping resource the router reads and writes, from `--ambassador-api-version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingApi {
    /// `getambassador.io` or `x.getambassador.io` (or whatever group the setting names).
    pub group: String,
    /// `v2`, `v3alpha1`, ...
    pub version: String,
    /// `mappings`, or `ambassadormappings` in `x.getambassador.io`.
    pub plural: String,
    /// `Mapping`, or `AmbassadorMapping` in `x.getambassador.io`.
    pub kind: String,
}

impl MappingApi {
    /// As Argo reads the flag: `group/version`, or a bare version in `getambassador.io`; the
    /// resource is `ambassadormappings` in `x.getambassador.io` and `mappings` in any other group.
    pub fn parse(api_version: &str) -> Result<Self, AmbassadorError> {
        let (group, version) = match api_version.rsplit_once('/') {
            Some((group, version)) => (group.split('/').next().unwrap_or(group), version),
            None => (GROUP, api_version),
        };
        if group.is_empty() || version.is_empty() {
            return Err(AmbassadorError::Api(api_version.to_string()));
        }
        let (plural, kind) = if group == X_GROUP {
            ("ambassadormappings", "AmbassadorMapping")
        } else {
            ("mappings", "Mapping")
        };
        Ok(Self {
            group: group.to_string(),
            version: version.to_string(),
            plural: plural.to_string(),
            kind: kind.to_string(),
        })
    }

    /// `<group>/<version>`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }
}

/// What the router needs from the Rollout and the settings, resolved once when it is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmbassadorConfig {
    /// The Rollout's namespace (the Mappings live there).
    pub namespace: String,
    /// `ambassador.mappings`: the base Mappings, each getting a canary copy.
    pub mappings: Vec<String>,
    /// `canaryService`.
    pub canary_service: String,
    /// `stableService`.
    pub stable_service: String,
    /// The Mapping resource.
    pub api: MappingApi,
}

impl AmbassadorConfig {
    /// Reads `spec.strategy.canary` of `rollout`.
    pub fn from_rollout(rollout: &Rollout, api: MappingApi) -> Result<Self, AmbassadorError> {
        let canary = rollout
            .spec
            .strategy
            .as_ref()
            .and_then(|s| s.canary.as_ref())
            .ok_or(AmbassadorError::Config("spec.strategy.canary is required"))?;
        let ambassador = canary
            .traffic_routing
            .as_ref()
            .and_then(|t| t.ambassador.as_ref())
            .ok_or(AmbassadorError::Config(
                "spec.strategy.canary.trafficRouting.ambassador is required",
            ))?;
        if ambassador.mappings.is_empty() {
            return Err(AmbassadorError::Config(
                "spec.strategy.canary.trafficRouting.ambassador.mappings must list at least one Mapping",
            ));
        }
        if ambassador.mappings.iter().any(String::is_empty) {
            return Err(AmbassadorError::Config(
                "spec.strategy.canary.trafficRouting.ambassador.mappings has an empty name",
            ));
        }
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        Ok(Self {
            namespace: rollout
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_string()),
            mappings: ambassador.mappings.clone(),
            canary_service: non_empty(&canary.canary_service).ok_or(AmbassadorError::Config(
                "spec.strategy.canary.canaryService is required with Ambassador",
            ))?,
            stable_service: non_empty(&canary.stable_service).ok_or(AmbassadorError::Config(
                "spec.strategy.canary.stableService is required with Ambassador",
            ))?,
            api,
        })
    }
}

/// `<base>-canary`, the base cut to 246 bytes (at a character boundary) so that the name fits
/// Kubernetes' 253 (Argo's `buildCanaryMappingName`).
pub fn canary_mapping_name(base: &str) -> String {
    let mut cut = base.len().min(BASE_LIMIT);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{CANARY_SUFFIX}", &base[..cut])
}

/// `spec.weight` of a Mapping as Argo reads it: an integer, else 0 (absent or not a number).
pub fn mapping_weight(mapping: &Value) -> i64 {
    let w = &mapping["spec"]["weight"];
    w.as_i64()
        .or_else(|| w.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        .unwrap_or(0)
}

/// The canary Mapping's `spec.service`: the base's with the first occurrence of the stable
/// Service's name replaced by the canary Service's (`web-stable.shop:8080` →
/// `web-canary.shop:8080`), as Argo does.
pub fn canary_service_of(cfg: &AmbassadorConfig, base_service: &str) -> String {
    base_service.replacen(&cfg.stable_service, &cfg.canary_service, 1)
}

/// The canary Mapping to create from the base Mapping `base` at `weight`: a copy of its `spec`
/// (and `apiVersion`/`kind`) with `service` pointed at the canary and `weight` set. Of the
/// metadata only the name and namespace are set, as in Argo (the base's labels and annotations
/// are not copied), plus, unlike Argo, the controller reference to the Rollout (`owner`), so that
/// the canary Mapping goes away with the Rollout.
///
/// Errors: the base sets a non-zero `weight` (Argo's "can not define weight"), or has no
/// `service` (Argo would create a canary Mapping routing nowhere).
pub fn new_canary_mapping(
    cfg: &AmbassadorConfig,
    base_name: &str,
    base: &Value,
    weight: i32,
    owner: Option<Value>,
) -> Result<Value, AmbassadorError> {
    if mapping_weight(base) != 0 {
        return Err(AmbassadorError::BaseWeight(base_name.to_string()));
    }
    let service = base["spec"]["service"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AmbassadorError::NoService(base_name.to_string()))?;
    let mut spec = base["spec"].clone();
    spec["service"] = json!(canary_service_of(cfg, service));
    spec["weight"] = json!(weight);
    let mut metadata = json!({
        "name": canary_mapping_name(base_name),
        "namespace": base["metadata"]["namespace"].as_str().unwrap_or(&cfg.namespace),
    });
    if let Some(owner) = owner {
        metadata["ownerReferences"] = json!([owner]);
    }
    Ok(json!({
        "apiVersion": base["apiVersion"].as_str().map_or_else(|| cfg.api.api_version(), String::from),
        "kind": base["kind"].as_str().unwrap_or(&cfg.api.kind),
        "metadata": metadata,
        "spec": spec,
    }))
}

/// The merge patch that sets the canary Mapping's weight, or `None` when it already has it.
/// Only `spec.weight` is sent: everything else in the Mapping stays as it is.
pub fn weight_patch(canary: &Value, weight: i32) -> Option<Value> {
    let stored = &canary["spec"]["weight"];
    let same = stored.as_i64() == Some(i64::from(weight)) || (weight == 0 && stored.is_null());
    (!same).then(|| json!({"spec": {"weight": weight}}))
}

/// Why the canary Mapping of `base` (`canary`, `None` if it does not exist) does not send
/// `weight` to the canary, or `None` when it does. At weight 0 a missing canary Mapping, or one
/// at weight 0 waiting for its deletion, is right.
pub fn mismatch(
    cfg: &AmbassadorConfig,
    base: &str,
    canary: Option<&Value>,
    weight: i32,
) -> Option<(Option<i32>, String)> {
    let name = canary_mapping_name(base);
    let Some(canary) = canary else {
        return (weight != 0).then(|| {
            (
                Some(0),
                format!("canary Mapping `{name}` does not exist (want weight {weight})"),
            )
        });
    };
    let stored = mapping_weight(canary);
    let observed = i32::try_from(stored).ok();
    if stored != i64::from(weight) {
        return Some((
            observed,
            format!("canary Mapping `{name}` has weight {stored}, want {weight}"),
        ));
    }
    let service = canary["spec"]["service"].as_str().unwrap_or_default();
    if weight != 0 && !service.contains(&cfg.canary_service) {
        return Some((
            observed,
            format!(
                "canary Mapping `{name}` routes to `{service}`, not to the canary Service `{}`",
                cfg.canary_service
            ),
        ));
    }
    None
}

/// Argo's joined error for several Mappings: `N errors found: [e1][e2]` (a single error as is).
pub fn join_errors(errors: &[String]) -> Option<String> {
    match errors {
        [] => None,
        [one] => Some(one.clone()),
        many => Some(format!(
            "{} errors found: {}",
            many.len(),
            many.iter().map(|e| format!("[{e}]")).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(mappings: Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "search", "namespace": "web", "uid": "uid-1"},
            "spec": {
                "selector": {"matchLabels": {"app": "search"}},
                "strategy": {"canary": {
                    "canaryService": "search-canary",
                    "stableService": "search-stable",
                    "trafficRouting": {"ambassador": {"mappings": mappings}}
                }}
            }
        }))
        .unwrap()
    }

    fn cfg() -> AmbassadorConfig {
        AmbassadorConfig::from_rollout(
            &rollout(json!(["search", "search-api"])),
            MappingApi::parse(DEFAULT_API_VERSION).unwrap(),
        )
        .unwrap()
    }

    fn owner() -> Value {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "search",
               "uid": "uid-1", "controller": true, "blockOwnerDeletion": true})
    }

    fn base() -> Value {
        json!({
            "apiVersion": "getambassador.io/v2",
            "kind": "Mapping",
            "metadata": {
                "name": "search", "namespace": "web", "resourceVersion": "5", "uid": "b-1",
                "labels": {"team": "search"}, "annotations": {"note": "base"}
            },
            "spec": {"prefix": "/search/", "service": "search-stable.web:8080", "timeout_ms": 3000},
            "status": {"state": "Running"}
        })
    }

    #[test]
    fn the_api_setting_chooses_group_version_and_resource() {
        assert_eq!(
            MappingApi::parse("getambassador.io/v2").unwrap(),
            MappingApi {
                group: "getambassador.io".into(),
                version: "v2".into(),
                plural: "mappings".into(),
                kind: "Mapping".into()
            }
        );
        let x = MappingApi::parse("x.getambassador.io/v3alpha1").unwrap();
        assert_eq!(
            (x.plural.as_str(), x.kind.as_str(), x.api_version().as_str()),
            (
                "ambassadormappings",
                "AmbassadorMapping",
                "x.getambassador.io/v3alpha1"
            )
        );
        // A bare version is in getambassador.io; an unknown group keeps `mappings`.
        assert_eq!(
            MappingApi::parse("v3alpha1").unwrap().api_version(),
            "getambassador.io/v3alpha1"
        );
        assert_eq!(
            MappingApi::parse("example.com/v1").unwrap().plural,
            "mappings"
        );
        assert_eq!(
            MappingApi::parse("getambassador.io/")
                .unwrap_err()
                .to_string(),
            "invalid Ambassador API version `getambassador.io/`: want <group>/<version>"
        );
    }

    #[test]
    fn configuration_errors_name_the_field() {
        let api = MappingApi::parse(DEFAULT_API_VERSION).unwrap();
        assert_eq!(
            AmbassadorConfig::from_rollout(&rollout(json!([])), api.clone())
                .unwrap_err()
                .to_string(),
            "spec.strategy.canary.trafficRouting.ambassador.mappings must list at least one Mapping"
        );
        assert_eq!(
            AmbassadorConfig::from_rollout(&rollout(json!(["a", ""])), api)
                .unwrap_err()
                .to_string(),
            "spec.strategy.canary.trafficRouting.ambassador.mappings has an empty name"
        );
        assert_eq!(cfg().mappings, ["search", "search-api"]);
    }

    #[test]
    fn canary_names_fit_253_bytes() {
        assert_eq!(canary_mapping_name("search"), "search-canary");
        let long = "m".repeat(300);
        assert_eq!(canary_mapping_name(&long).len(), 253);
        // A multi-byte character straddling the cut is not split.
        let tricky = format!("{}é", "m".repeat(245));
        assert_eq!(
            canary_mapping_name(&tricky),
            format!("{}-canary", "m".repeat(245))
        );
    }

    #[test]
    fn the_canary_mapping_copies_the_spec_only() {
        let c = cfg();
        let m = new_canary_mapping(&c, "search", &base(), 20, Some(owner())).unwrap();
        assert_eq!(
            m,
            json!({
                "apiVersion": "getambassador.io/v2",
                "kind": "Mapping",
                "metadata": {"name": "search-canary", "namespace": "web", "ownerReferences": [owner()]},
                "spec": {"prefix": "/search/", "service": "search-canary.web:8080",
                         "timeout_ms": 3000, "weight": 20}
            })
        );
        // Only the first occurrence of the stable name changes.
        assert_eq!(
            canary_service_of(&c, "search-stable:80/search-stable"),
            "search-canary:80/search-stable"
        );
    }

    #[test]
    fn a_weighted_or_serviceless_base_is_refused() {
        let c = cfg();
        let mut weighted = base();
        weighted["spec"]["weight"] = json!(10);
        assert_eq!(
            new_canary_mapping(&c, "search", &weighted, 20, None)
                .unwrap_err()
                .to_string(),
            "Ambassador mapping \"search\" can not define weight"
        );
        // Weight 0 is allowed, as in Argo.
        weighted["spec"]["weight"] = json!(0);
        assert!(new_canary_mapping(&c, "search", &weighted, 20, None).is_ok());
        let mut bare = base();
        bare["spec"].as_object_mut().unwrap().remove("service");
        assert_eq!(
            new_canary_mapping(&c, "search", &bare, 20, None)
                .unwrap_err()
                .to_string(),
            "Ambassador mapping \"search\" has no spec.service"
        );
    }

    #[test]
    fn weight_patches_and_verification() {
        let c = cfg();
        let canary = new_canary_mapping(&c, "search", &base(), 20, None).unwrap();
        assert_eq!(weight_patch(&canary, 20), None);
        assert_eq!(
            weight_patch(&canary, 0),
            Some(json!({"spec": {"weight": 0}}))
        );
        assert_eq!(mismatch(&c, "search", Some(&canary), 20), None);
        assert_eq!(
            mismatch(&c, "search", Some(&canary), 50),
            Some((
                Some(20),
                "canary Mapping `search-canary` has weight 20, want 50".into()
            ))
        );
        assert_eq!(mismatch(&c, "search", None, 0), None);
        assert_eq!(
            mismatch(&c, "search", None, 5),
            Some((
                Some(0),
                "canary Mapping `search-canary` does not exist (want weight 5)".into()
            ))
        );
        let mut zero = canary.clone();
        zero["spec"]["weight"] = json!(0);
        assert_eq!(mismatch(&c, "search", Some(&zero), 0), None);
        let mut elsewhere = canary;
        elsewhere["spec"]["service"] = json!("search-stable.web:8080");
        assert_eq!(
            mismatch(&c, "search", Some(&elsewhere), 20),
            Some((
                Some(20),
                "canary Mapping `search-canary` routes to `search-stable.web:8080`, not to the canary Service `search-canary`"
                    .into()
            ))
        );
    }

    #[test]
    fn errors_join_as_in_argo() {
        assert_eq!(join_errors(&[]), None);
        assert_eq!(join_errors(&["a".into()]), Some("a".into()));
        assert_eq!(
            join_errors(&["a".into(), "b".into()]),
            Some("2 errors found: [a][b]".into())
        );
    }
}
