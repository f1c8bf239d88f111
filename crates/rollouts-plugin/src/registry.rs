//! The registry: which routers and providers this build contains.

use std::collections::BTreeMap;

use crate::{MetricProviderPlugin, PluginError, PluginKind, TrafficRouterPlugin};

/// The plugins linked into the running binary, by name.
#[derive(Debug, Clone)]
pub struct Registry {
    routers: BTreeMap<&'static str, &'static TrafficRouterPlugin>,
    providers: BTreeMap<&'static str, &'static MetricProviderPlugin>,
}

impl Registry {
    /// Collects every registration linked into this binary. Fails when two plugins claim the same
    /// name, which is a broken build rather than a runtime condition.
    pub fn collect() -> Result<Self, PluginError> {
        Self::from_plugins(
            inventory::iter::<TrafficRouterPlugin>(),
            inventory::iter::<MetricProviderPlugin>(),
        )
    }

    /// Builds a registry from explicit registrations (what [`Registry::collect`] does with the
    /// linked ones).
    pub fn from_plugins(
        routers: impl IntoIterator<Item = &'static TrafficRouterPlugin>,
        providers: impl IntoIterator<Item = &'static MetricProviderPlugin>,
    ) -> Result<Self, PluginError> {
        let mut registry = Self {
            routers: BTreeMap::new(),
            providers: BTreeMap::new(),
        };
        for router in routers {
            if registry.routers.insert(router.name, router).is_some() {
                return Err(PluginError::Duplicate {
                    kind: PluginKind::TrafficRouter,
                    name: router.name,
                });
            }
        }
        for provider in providers {
            if registry.providers.insert(provider.name, provider).is_some() {
                return Err(PluginError::Duplicate {
                    kind: PluginKind::MetricProvider,
                    name: provider.name,
                });
            }
        }
        Ok(registry)
    }

    /// The router registered as `name`, or [`PluginError::NotCompiled`].
    pub fn router(&self, name: &str) -> Result<&'static TrafficRouterPlugin, PluginError> {
        self.routers
            .get(name)
            .copied()
            .ok_or_else(|| PluginError::NotCompiled {
                kind: PluginKind::TrafficRouter,
                name: name.to_string(),
            })
    }

    /// The provider registered as `name`, or [`PluginError::NotCompiled`].
    pub fn provider(&self, name: &str) -> Result<&'static MetricProviderPlugin, PluginError> {
        self.providers
            .get(name)
            .copied()
            .ok_or_else(|| PluginError::NotCompiled {
                kind: PluginKind::MetricProvider,
                name: name.to_string(),
            })
    }

    /// Router names, sorted.
    pub fn router_names(&self) -> Vec<&'static str> {
        self.routers.keys().copied().collect()
    }

    /// Provider names, sorted.
    pub fn provider_names(&self) -> Vec<&'static str> {
        self.providers.keys().copied().collect()
    }

    /// One line per kind, for the startup log and `--version`:
    /// `traffic routers: istio, nginx` / `metric providers: (none)`.
    pub fn describe(&self) -> String {
        fn list(names: Vec<&'static str>) -> String {
            if names.is_empty() {
                "(none)".to_string()
            } else {
                names.join(", ")
            }
        }
        format!(
            "traffic routers: {}\nmetric providers: {}",
            list(self.router_names()),
            list(self.provider_names())
        )
    }
}
