//! The weights the router wants in a weighted TraefikService, and how they compare with the
//! object in the cluster.
//!
//! Everything here is pure: the router's I/O (`lib.rs`) reads the TraefikService, asks these
//! functions what to patch, and sends that.

use rollouts_api::Rollout;
use serde_json::{Value, json};

use crate::TraefikError;

/// The API group used when the host sets none (Argo's `--traefik-api-group` default).
pub const DEFAULT_API_GROUP: &str = "traefik.io";
/// The API version used when the host sets none (Argo's `--traefik-api-version` default).
pub const DEFAULT_API_VERSION: &str = "traefik.io/v1alpha1";

/// What the router needs from the Rollout and the settings, resolved once when it is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraefikConfig {
    /// The Rollout's namespace (the TraefikService lives there).
    pub namespace: String,
    /// `weightedTraefikServiceName`: the TraefikService whose weights change.
    pub service: String,
    /// `canaryService`: the entry of `spec.weighted.services` that gets the canary weight.
    pub canary_service: String,
    /// `stableService`: the entry that gets the rest.
    pub stable_service: String,
    /// The API group (`traefik.io`; Traefik v2 users set `traefik.containo.us`).
    pub group: String,
    /// The API version (`v1alpha1`).
    pub version: String,
}

impl TraefikConfig {
    /// Reads `spec.strategy.canary` of `rollout`. `group` is the `--traefik-api-group` setting and
    /// `api_version` the `--traefik-api-version` one (`traefik.io/v1alpha1`; as in Argo, only the
    /// part after the last `/` is used, the group comes from `group`).
    pub fn from_rollout(
        rollout: &Rollout,
        group: &str,
        api_version: &str,
    ) -> Result<Self, TraefikError> {
        let canary = rollout
            .spec
            .strategy
            .as_ref()
            .and_then(|s| s.canary.as_ref())
            .ok_or(TraefikError::Config("spec.strategy.canary is required"))?;
        let traefik = canary
            .traffic_routing
            .as_ref()
            .and_then(|t| t.traefik.as_ref())
            .ok_or(TraefikError::Config(
                "spec.strategy.canary.trafficRouting.traefik is required",
            ))?;
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        if traefik.weighted_traefik_service_name.is_empty() {
            return Err(TraefikError::Config(
                "spec.strategy.canary.trafficRouting.traefik.weightedTraefikServiceName is required",
            ));
        }
        let version = api_version.rsplit('/').next().unwrap_or_default();
        if group.is_empty() || version.is_empty() {
            return Err(TraefikError::Api(format!("{group}/{api_version}")));
        }
        Ok(Self {
            namespace: rollout
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_string()),
            service: traefik.weighted_traefik_service_name.clone(),
            canary_service: non_empty(&canary.canary_service).ok_or(TraefikError::Config(
                "spec.strategy.canary.canaryService is required with Traefik",
            ))?,
            stable_service: non_empty(&canary.stable_service).ok_or(TraefikError::Config(
                "spec.strategy.canary.stableService is required with Traefik",
            ))?,
            group: group.to_string(),
            version: version.to_string(),
        })
    }

    /// `<group>/<version>`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }
}

/// A weight as a number, whether it is stored as an integer or as an integral float.
pub fn weight_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        _ => None,
    }
}

/// `spec.weighted.services` of a TraefikService, or Argo's error when it is missing.
fn services(current: &Value) -> Result<&Vec<Value>, TraefikError> {
    current["spec"]["weighted"]["services"]
        .as_array()
        .ok_or(TraefikError::NoWeightedServices)
}

/// The index of the entry named `name`, searching in order as Argo does: an entry without a
/// string `name` met before the one searched for is an error.
fn index_of(services: &[Value], name: &str) -> Result<Option<usize>, TraefikError> {
    for (i, entry) in services.iter().enumerate() {
        if !entry.is_object() {
            return Err(TraefikError::Malformed(format!(
                "spec.weighted.services[{i}] is not an object"
            )));
        }
        match entry["name"].as_str() {
            None => return Err(TraefikError::NoName),
            Some(n) if n == name => return Ok(Some(i)),
            Some(_) => {}
        }
    }
    Ok(None)
}

/// The indexes of the canary and stable entries, with Argo's errors when one is missing.
fn entries(cfg: &TraefikConfig, services: &[Value]) -> Result<(usize, usize), TraefikError> {
    let canary = index_of(services, &cfg.canary_service)?.ok_or(TraefikError::NoCanary)?;
    let stable = index_of(services, &cfg.stable_service)?.ok_or(TraefikError::NoStable)?;
    Ok((canary, stable))
}

/// `spec.weighted.services` of `current` with the canary entry at `weight` and the stable entry
/// at `100 − weight` (Argo ignores `maxTrafficWeight` here; so does this router). Every other
/// entry and every other field of the two entries is kept as it is.
pub fn desired_services(
    cfg: &TraefikConfig,
    current: &Value,
    weight: i32,
) -> Result<Vec<Value>, TraefikError> {
    let mut list = services(current)?.clone();
    let (canary, stable) = entries(cfg, &list)?;
    list[canary]["weight"] = json!(weight);
    list[stable]["weight"] = json!(100 - i64::from(weight));
    Ok(list)
}

/// The JSON merge patch that brings `current` to `weight`, or `None` when both weights already
/// are what they should be. The patch replaces `spec.weighted.services` with the list read (so
/// entries and fields the router does not manage are sent back unchanged) and carries the
/// object's `resourceVersion`, so that the API server refuses it (409) if someone changed the
/// TraefikService in between, instead of overwriting their change.
pub fn weight_patch(
    cfg: &TraefikConfig,
    current: &Value,
    weight: i32,
) -> Result<Option<Value>, TraefikError> {
    let want = desired_services(cfg, current, weight)?;
    let have = services(current)?;
    let same = want
        .iter()
        .zip(have)
        .all(|(w, h)| weight_of(&w["weight"]) == weight_of(&h["weight"]));
    if same {
        return Ok(None);
    }
    let mut patch = json!({"spec": {"weighted": {"services": want}}});
    if let Some(rv) = current["metadata"]["resourceVersion"].as_str() {
        patch["metadata"] = json!({ "resourceVersion": rv });
    }
    Ok(Some(patch))
}

/// Why `current` (`None` if the TraefikService does not exist) does not send `weight` to the
/// canary, or `None` when it does: the canary weight found and a description.
pub fn mismatch(
    cfg: &TraefikConfig,
    current: Option<&Value>,
    weight: i32,
) -> Option<(Option<i32>, String)> {
    let Some(current) = current else {
        return Some((
            None,
            format!("TraefikService `{}` does not exist", cfg.service),
        ));
    };
    let list = match services(current) {
        Ok(list) => list,
        Err(e) => return Some((None, format!("TraefikService `{}`: {e}", cfg.service))),
    };
    let (canary, stable) = match entries(cfg, list) {
        Ok(found) => found,
        Err(e) => return Some((None, format!("TraefikService `{}`: {e}", cfg.service))),
    };
    let got_canary = weight_of(&list[canary]["weight"]);
    let observed = got_canary.and_then(|w| i32::try_from(w).ok());
    let show = |w: Option<i64>| w.map_or("(unset)".to_string(), |w| w.to_string());
    if got_canary != Some(i64::from(weight)) {
        return Some((
            observed,
            format!(
                "TraefikService `{}` gives service `{}` weight {}, want {weight}",
                cfg.service,
                cfg.canary_service,
                show(got_canary)
            ),
        ));
    }
    let got_stable = weight_of(&list[stable]["weight"]);
    let want_stable = 100 - i64::from(weight);
    if got_stable != Some(want_stable) {
        return Some((
            observed,
            format!(
                "TraefikService `{}` gives service `{}` weight {}, want {want_stable}",
                cfg.service,
                cfg.stable_service,
                show(got_stable)
            ),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(traefik: Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "accounts", "namespace": "bank", "uid": "uid-1"},
            "spec": {
                "selector": {"matchLabels": {"app": "accounts"}},
                "strategy": {"canary": {
                    "canaryService": "accounts-canary",
                    "stableService": "accounts-stable",
                    "trafficRouting": {"traefik": traefik}
                }}
            }
        }))
        .unwrap()
    }

    fn cfg() -> TraefikConfig {
        TraefikConfig::from_rollout(
            &rollout(json!({"weightedTraefikServiceName": "accounts-weighted"})),
            DEFAULT_API_GROUP,
            DEFAULT_API_VERSION,
        )
        .unwrap()
    }

    /// A weighted TraefikService with the stable entry first, an unrelated entry, sticky
    /// sessions and a mirroring section (both user-owned).
    fn service() -> Value {
        json!({
            "apiVersion": "traefik.io/v1alpha1",
            "kind": "TraefikService",
            "metadata": {"name": "accounts-weighted", "resourceVersion": "41"},
            "spec": {
                "weighted": {
                    "sticky": {"cookie": {"name": "lvl"}},
                    "services": [
                        {"name": "accounts-stable", "port": 80},
                        {"name": "accounts-canary", "port": 80, "weight": 0},
                        {"name": "legacy", "port": 8080, "weight": 3, "kind": "Service"}
                    ]
                },
                "mirroring": {"name": "shadow", "port": 80}
            }
        })
    }

    #[test]
    fn settings_choose_the_group_and_version() {
        let c = cfg();
        assert_eq!(c.api_version(), "traefik.io/v1alpha1");
        assert_eq!(c.namespace, "bank");
        assert_eq!(c.service, "accounts-weighted");
        let v2 = TraefikConfig::from_rollout(
            &rollout(json!({"weightedTraefikServiceName": "w"})),
            "traefik.containo.us",
            "traefik.containo.us/v1alpha1",
        )
        .unwrap();
        assert_eq!(v2.api_version(), "traefik.containo.us/v1alpha1");
        // As in Argo: the version flag's group part is not used.
        let mixed = TraefikConfig::from_rollout(
            &rollout(json!({"weightedTraefikServiceName": "w"})),
            "traefik.containo.us",
            "v1alpha1",
        )
        .unwrap();
        assert_eq!(mixed.api_version(), "traefik.containo.us/v1alpha1");
        assert_eq!(
            TraefikConfig::from_rollout(
                &rollout(json!({"weightedTraefikServiceName": "w"})),
                "traefik.io",
                "traefik.io/"
            )
            .unwrap_err()
            .to_string(),
            "invalid Traefik API `traefik.io/traefik.io/`: want a group and a version"
        );
    }

    #[test]
    fn configuration_errors_name_the_field() {
        let err = TraefikConfig::from_rollout(
            &rollout(json!({"weightedTraefikServiceName": ""})),
            DEFAULT_API_GROUP,
            DEFAULT_API_VERSION,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.strategy.canary.trafficRouting.traefik.weightedTraefikServiceName is required"
        );
        let mut ro = rollout(json!({"weightedTraefikServiceName": "w"}));
        ro.spec
            .strategy
            .as_mut()
            .unwrap()
            .canary
            .as_mut()
            .unwrap()
            .canary_service = None;
        assert_eq!(
            TraefikConfig::from_rollout(&ro, DEFAULT_API_GROUP, DEFAULT_API_VERSION)
                .unwrap_err()
                .to_string(),
            "spec.strategy.canary.canaryService is required with Traefik"
        );
    }

    #[test]
    fn weights_go_to_the_two_entries_and_nothing_else_changes() {
        let c = cfg();
        let patch = weight_patch(&c, &service(), 20).unwrap().unwrap();
        assert_eq!(
            patch,
            json!({
                "metadata": {"resourceVersion": "41"},
                "spec": {"weighted": {"services": [
                    {"name": "accounts-stable", "port": 80, "weight": 80},
                    {"name": "accounts-canary", "port": 80, "weight": 20},
                    {"name": "legacy", "port": 8080, "weight": 3, "kind": "Service"}
                ]}}
            })
        );
        // The patch sends neither `sticky` nor `mirroring`: a merge patch leaves them alone.
        assert!(patch["spec"].get("mirroring").is_none());
        assert!(patch["spec"]["weighted"].get("sticky").is_none());
    }

    #[test]
    fn no_patch_when_the_weights_are_already_there() {
        let c = cfg();
        let mut svc = service();
        svc["spec"]["weighted"]["services"] = json!([
            {"name": "accounts-stable", "port": 80, "weight": 60.0},
            {"name": "accounts-canary", "port": 80, "weight": 40}
        ]);
        assert_eq!(weight_patch(&c, &svc, 40).unwrap(), None);
        assert!(weight_patch(&c, &svc, 41).unwrap().is_some());
    }

    #[test]
    fn argos_errors_for_malformed_services() {
        let c = cfg();
        let mut svc = service();
        svc["spec"] = json!({"mirroring": {}});
        assert_eq!(
            weight_patch(&c, &svc, 10).unwrap_err().to_string(),
            "spec.weighted.services was not found in traefik service manifest"
        );
        svc["spec"] = json!({"weighted": {"services": [{"port": 80}]}});
        assert_eq!(
            weight_patch(&c, &svc, 10).unwrap_err().to_string(),
            "name field was not found in service"
        );
        svc["spec"] = json!({"weighted": {"services": [{"name": "accounts-stable"}]}});
        assert_eq!(
            weight_patch(&c, &svc, 10).unwrap_err().to_string(),
            "traefik canary service was not found"
        );
        svc["spec"] = json!({"weighted": {"services": [{"name": "accounts-canary"}]}});
        assert_eq!(
            weight_patch(&c, &svc, 10).unwrap_err().to_string(),
            "traefik stable service was not found"
        );
        svc["spec"] = json!({"weighted": {"services": ["accounts-canary"]}});
        assert_eq!(
            weight_patch(&c, &svc, 10).unwrap_err().to_string(),
            "spec.weighted.services[0] is not an object"
        );
        // A nameless entry after the one searched for is not looked at (as in Argo).
        svc["spec"] = json!({"weighted": {"services": [
            {"name": "accounts-canary"}, {"name": "accounts-stable"}, {"port": 1}
        ]}});
        assert!(weight_patch(&c, &svc, 10).is_ok());
    }

    #[test]
    fn mismatch_reports_the_stored_weight() {
        let c = cfg();
        assert_eq!(
            mismatch(&c, None, 0),
            Some((
                None,
                "TraefikService `accounts-weighted` does not exist".into()
            ))
        );
        let mut svc = service();
        assert_eq!(
            mismatch(&c, Some(&svc), 0),
            Some((
                Some(0),
                "TraefikService `accounts-weighted` gives service `accounts-stable` weight (unset), want 100"
                    .into()
            ))
        );
        svc["spec"]["weighted"]["services"] = json!(desired_services(&c, &svc, 30).unwrap());
        assert_eq!(mismatch(&c, Some(&svc), 30), None);
        assert_eq!(
            mismatch(&c, Some(&svc), 40),
            Some((
                Some(30),
                "TraefikService `accounts-weighted` gives service `accounts-canary` weight 30, want 40"
                    .into()
            ))
        );
        svc["spec"] = json!({});
        assert_eq!(
            mismatch(&c, Some(&svc), 40),
            Some((
                None,
                "TraefikService `accounts-weighted`: spec.weighted.services was not found in traefik service manifest"
                    .into()
            ))
        );
    }
}
