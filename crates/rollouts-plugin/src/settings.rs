//! Router settings: the controller flags that configure built-in routers.
//!
//! Some routers take process-wide options from the controller's command line, as in Argo:
//! `--istio-api-version` (the version of `networking.istio.io` to read and write),
//! `--traffic-split-api-version` (the SMI TrafficSplit version), `--ingress-api-version`, ...
//! Routers depend only on this crate and `rollouts-api`, so they do not see the flags; the binary
//! that hosts them installs the values once at start-up, keyed by the flag's name without the
//! dashes (see [`keys`]), and a router reads them when it is built:
//!
//! ```
//! use rollouts_plugin::{RouterSettings, install_router_settings, router_settings, settings::keys};
//!
//! // In the controller's main, from the parsed flags:
//! let _ = install_router_settings(
//!     RouterSettings::new().with(keys::ISTIO_API_VERSION, "v1beta1"),
//! );
//! // In a router's build function:
//! assert_eq!(router_settings().get_or(keys::ISTIO_API_VERSION, "v1alpha3"), "v1beta1");
//! assert_eq!(router_settings().get(keys::TRAFFIC_SPLIT_API_VERSION), None);
//! ```
//!
//! Without an installation every router uses its default (Argo's flag default). Routers also
//! offer a constructor that takes the values explicitly, which tests use.

use std::{collections::BTreeMap, sync::OnceLock};

/// The setting keys: the controller flag names, without the leading dashes.
pub mod keys {
    /// `--istio-api-version`: version of `networking.istio.io` (default `v1alpha3`).
    pub const ISTIO_API_VERSION: &str = "istio-api-version";
    /// `--traffic-split-api-version`: version of `split.smi-spec.io` (default `v1alpha1`).
    pub const TRAFFIC_SPLIT_API_VERSION: &str = "traffic-split-api-version";
    /// `--ingress-api-version`: the Ingress API (default: detected, i.e. `networking.k8s.io/v1`).
    pub const INGRESS_API_VERSION: &str = "ingress-api-version";
    /// `--nginx-ingress-classes`: comma-separated ingress classes of the NGINX controller.
    pub const NGINX_INGRESS_CLASSES: &str = "nginx-ingress-classes";
    /// `--alb-ingress-classes`: comma-separated ingress classes of the ALB controller.
    pub const ALB_INGRESS_CLASSES: &str = "alb-ingress-classes";
    /// `--ambassador-api-version`: e.g. `getambassador.io/v2`.
    pub const AMBASSADOR_API_VERSION: &str = "ambassador-api-version";
    /// `--traefik-api-group`: e.g. `traefik.io`.
    pub const TRAEFIK_API_GROUP: &str = "traefik-api-group";
    /// `--traefik-api-version`: e.g. `traefik.io/v1alpha1`.
    pub const TRAEFIK_API_VERSION: &str = "traefik-api-version";
    /// `--appmesh-crd-version`: e.g. `v1beta2`.
    pub const APPMESH_CRD_VERSION: &str = "appmesh-crd-version";
    /// `--aws-verify-target-group` (alias `--alb-verify-weight`): `true` to verify ALB target
    /// group weights through the AWS API (default `false`).
    pub const AWS_VERIFY_TARGET_GROUP: &str = "aws-verify-target-group";
    /// `--alb-tag-key-resource-id`: the target group tag naming its Kubernetes resource
    /// (default `ingress.k8s.aws/resource`).
    pub const ALB_TAG_KEY_RESOURCE_ID: &str = "alb-tag-key-resource-id";
}

/// Named string settings for routers (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouterSettings(BTreeMap<String, String>);

impl RouterSettings {
    /// No settings: every router uses its defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// These settings and `key` = `value`.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(key, value);
        self
    }

    /// Sets `key` to `value`.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// The value of `key`, if set (an empty value counts as set).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The value of `key`, or `default` when it is unset or empty (an empty flag means "the
    /// default" for every router flag of Argo).
    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        match self.get(key) {
            Some(v) if !v.is_empty() => v,
            _ => default,
        }
    }

    /// Every setting, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for RouterSettings {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

static SETTINGS: OnceLock<RouterSettings> = OnceLock::new();
static EMPTY: RouterSettings = RouterSettings(BTreeMap::new());

/// Installs the process-wide router settings. The first installation wins; a later one returns
/// its settings back as `Err` (like [`crate::install_time_evaluator`]).
pub fn install_router_settings(settings: RouterSettings) -> Result<(), RouterSettings> {
    SETTINGS.set(settings)
}

/// The installed router settings, or none (every router then uses its defaults).
pub fn router_settings() -> &'static RouterSettings {
    SETTINGS.get().unwrap_or(&EMPTY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_fall_back_to_the_default() {
        let s: RouterSettings = [
            (keys::INGRESS_API_VERSION, ""),
            (keys::ISTIO_API_VERSION, "v1"),
        ]
        .into_iter()
        .collect();
        assert_eq!(s.get(keys::INGRESS_API_VERSION), Some(""));
        assert_eq!(s.get_or(keys::INGRESS_API_VERSION, "auto"), "auto");
        assert_eq!(s.get_or(keys::ISTIO_API_VERSION, "v1alpha3"), "v1");
        assert_eq!(
            s.get_or(keys::TRAFFIC_SPLIT_API_VERSION, "v1alpha1"),
            "v1alpha1"
        );
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [
                (keys::INGRESS_API_VERSION, ""),
                (keys::ISTIO_API_VERSION, "v1")
            ]
        );
    }
}
