//! The `traefik` traffic router: the weights of the canary and stable Services in a
//! [weighted TraefikService](https://doc.traefik.io/traefik/routing/providers/kubernetes-crd/#weighted-round-robin).
//!
//! ```yaml
//! strategy:
//!   canary:
//!     canaryService: accounts-canary
//!     stableService: accounts-stable
//!     trafficRouting:
//!       traefik:
//!         weightedTraefikServiceName: accounts-weighted
//! ```
//!
//! As in Argo, [`TrafficRouter::set_weight`] reads the TraefikService
//! (`<group>/<version>` `traefikservices`, `traefik.io/v1alpha1` unless the host set
//! [`keys::TRAEFIK_API_GROUP`] / [`keys::TRAEFIK_API_VERSION`]) in the Rollout's namespace and
//! gives the `spec.weighted.services[]` entry named after the canary Service the weight `w` and
//! the one named after the stable Service `100 − w`, with Argo's errors when an entry or the list
//! is missing and the Warning event `TraefikServiceUpdateError` when the write fails. Nothing
//! else: no header or mirror routes, no hashes, experiment destinations are ignored.
//!
//! Unlike Argo, the router writes only when a weight differs, as a merge patch of the list it
//! read guarded by the object's `resourceVersion` (Argo sends an update of the whole object),
//! and [`TrafficRouter::verify_weight`] reads the weights back. See `docs/routers/traefik.md`.

mod weights;

use std::sync::Arc;

use async_trait::async_trait;
use kube::{
    Api,
    api::{ApiResource, DynamicObject, Patch, PatchParams},
};
use rollouts_api::WeightDestination;
use rollouts_plugin::{
    EventSink, PluginError, PluginEvent, RouterInit, TrafficRouter, TrafficRouterPlugin,
    WeightVerification, objects, settings::keys,
};
use serde_json::Value;

pub use weights::{
    DEFAULT_API_GROUP, DEFAULT_API_VERSION, TraefikConfig, desired_services, mismatch, weight_of,
    weight_patch,
};

/// The registry name: the JSON key of the router block.
pub const NAME: &str = "traefik";
/// The Warning event of a failed write (Argo's reason).
pub const UPDATE_ERROR: &str = "TraefikServiceUpdateError";

/// What can go wrong, with Argo's messages where Argo has one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TraefikError {
    /// The Rollout lacks something the router needs.
    #[error("{0}")]
    Config(&'static str),
    /// The group/version settings do not name an API.
    #[error("invalid Traefik API `{0}`: want a group and a version")]
    Api(String),
    /// The TraefikService has no `spec.weighted.services`.
    #[error("spec.weighted.services was not found in traefik service manifest")]
    NoWeightedServices,
    /// An entry of `spec.weighted.services` has no `name`.
    #[error("name field was not found in service")]
    NoName,
    /// No entry is named after the canary Service.
    #[error("traefik canary service was not found")]
    NoCanary,
    /// No entry is named after the stable Service.
    #[error("traefik stable service was not found")]
    NoStable,
    /// The list holds something that is not a service entry.
    #[error("{0}")]
    Malformed(String),
}

impl TraefikError {
    fn into_plugin(self) -> PluginError {
        match self {
            Self::Config(_) | Self::Api(_) => PluginError::Config {
                plugin: NAME,
                message: self.to_string(),
            },
            _ => PluginError::Other {
                plugin: NAME,
                message: self.to_string(),
            },
        }
    }
}

rollouts_plugin::register_traffic_router!(TrafficRouterPlugin {
    name: NAME,
    summary: "Traefik weighted TraefikService (traefik.io/v1alpha1 by default)",
    build: |init| {
        let settings = init.settings();
        let group = settings
            .get_or(keys::TRAEFIK_API_GROUP, DEFAULT_API_GROUP)
            .to_string();
        let version = settings
            .get_or(keys::TRAEFIK_API_VERSION, DEFAULT_API_VERSION)
            .to_string();
        Ok(Box::new(TraefikRouter::new(init, &group, &version)?))
    },
});

/// The Traefik router for one Rollout.
pub struct TraefikRouter {
    client: kube::Client,
    events: Arc<dyn EventSink>,
    config: TraefikConfig,
}

impl std::fmt::Debug for TraefikRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraefikRouter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TraefikRouter {
    /// A router for `init.rollout` writing TraefikServices of `group` and `api_version` (the
    /// `--traefik-api-group` and `--traefik-api-version` values).
    pub fn new(init: RouterInit<'_>, group: &str, api_version: &str) -> Result<Self, PluginError> {
        let config = TraefikConfig::from_rollout(init.rollout, group, api_version)
            .map_err(TraefikError::into_plugin)?;
        Ok(Self {
            client: init.client,
            events: init.events,
            config,
        })
    }

    /// What the router resolved from the Rollout.
    pub fn config(&self) -> &TraefikConfig {
        &self.config
    }

    fn api(&self) -> Api<DynamicObject> {
        let resource = ApiResource {
            group: self.config.group.clone(),
            version: self.config.version.clone(),
            api_version: self.config.api_version(),
            kind: "TraefikService".into(),
            plural: "traefikservices".into(),
        };
        Api::namespaced_with(self.client.clone(), &self.config.namespace, &resource)
    }

    fn kube_error(&self, action: &str, source: kube::Error) -> PluginError {
        PluginError::Kube {
            plugin: NAME,
            action: format!("{action} TraefikService `{}`", self.config.service),
            source,
        }
    }

    async fn get(&self) -> Result<Option<Value>, PluginError> {
        let found = self
            .api()
            .get_opt(&self.config.service)
            .await
            .map_err(|e| self.kube_error("getting", e))?;
        found
            .map(|o| {
                serde_json::to_value(o).map_err(|e| PluginError::Other {
                    plugin: NAME,
                    message: format!("encoding a TraefikService as JSON: {e}"),
                })
            })
            .transpose()
    }
}

#[async_trait]
impl TrafficRouter for TraefikRouter {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn set_weight(
        &self,
        desired_weight: i32,
        _additional: &[WeightDestination],
    ) -> Result<(), PluginError> {
        let cfg = &self.config;
        let current = self.get().await?.ok_or_else(|| PluginError::NotFound {
            plugin: NAME,
            object: format!("TraefikService `{}`", cfg.service),
        })?;
        let Some(patch) =
            weight_patch(cfg, &current, desired_weight).map_err(TraefikError::into_plugin)?
        else {
            tracing::debug!(namespace = %cfg.namespace, traefikservice = %cfg.service, "TraefikService already holds the desired weights.");
            return Ok(());
        };
        tracing::info!(namespace = %cfg.namespace, traefikservice = %cfg.service, weight = desired_weight, "Patching TraefikService weights.");
        if let Err(e) = self
            .api()
            .patch(&cfg.service, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            self.events.emit(PluginEvent::warning(
                UPDATE_ERROR,
                format!(
                    "Error updating traefik service {:?}: {}",
                    cfg.service,
                    objects::error_message(&e)
                ),
            ));
            return Err(self.kube_error("updating", e));
        }
        Ok(())
    }

    async fn verify_weight(
        &self,
        desired_weight: i32,
        _additional: &[WeightDestination],
    ) -> Result<WeightVerification, PluginError> {
        let current = self.get().await?;
        Ok(
            match mismatch(&self.config, current.as_ref(), desired_weight) {
                None => WeightVerification::Verified,
                Some((observed, detail)) => WeightVerification::Mismatch { observed, detail },
            },
        )
    }
}
