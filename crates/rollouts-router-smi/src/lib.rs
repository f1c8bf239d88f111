//! The `smi` traffic router: a Service Mesh Interface TrafficSplit between the stable and canary
//! Services.
//!
//! ```yaml
//! strategy:
//!   canary:
//!     canaryService: inventory-canary
//!     stableService: inventory-stable
//!     trafficRouting:
//!       smi:
//!         rootService: inventory          # default: the stable Service
//!         trafficSplitName: inventory     # default: the Rollout's name
//! ```
//!
//! As in Argo, [`TrafficRouter::set_weight`] creates the TrafficSplit
//! (`split.smi-spec.io/<version>`, `v1alpha1` unless the host set
//! [`keys::TRAFFIC_SPLIT_API_VERSION`]) in the Rollout's namespace, controlled by the Rollout, if
//! it is missing (Event `TrafficSplitCreated`, or `TrafficSplitNotCreated` on failure); refuses a
//! split the Rollout does not control ("Rollout does not own TrafficSplit `X`"); and otherwise
//! merge-patches `spec.service` and `spec.backends` when they differ. Backends are the canary
//! (`w`), each experiment service, then the stable Service (`100 − w − Σ experiments`).
//! Header and mirror routes are not supported; hashes are not used.
//!
//! Unlike Argo, [`TrafficRouter::verify_weight`] reads the split back and reports whether it
//! holds the desired backends, and the patch never removes fields it does not manage (Argo's
//! patch drops a v1alpha3 split's `spec.matches`). See `docs/routers/smi.md`.

mod split;

use std::sync::Arc;

use async_trait::async_trait;
use kube::{
    Api,
    api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams},
};
use rollouts_api::WeightDestination;
use rollouts_plugin::{
    EventSink, PluginError, PluginEvent, RouterInit, TrafficRouter, TrafficRouterPlugin,
    WeightVerification,
    objects::{self, controller_reference, is_controlled_by},
    settings::keys,
};
use serde_json::Value;

pub use split::{
    GROUP, SplitConfig, SplitVersion, backends, desired, mismatch, spec_patch, weight_of,
};

/// The registry name: the JSON key of the router block.
pub const NAME: &str = "smi";
/// The TrafficSplit version used when the host sets none (Argo's flag default).
pub const DEFAULT_API_VERSION: &str = "v1alpha1";

/// What can go wrong, with Argo's messages where Argo has one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SmiError {
    /// `--traffic-split-api-version` names a version this router cannot write.
    #[error("Unsupported TrafficSplit API version `{0}`")]
    UnsupportedVersion(String),
    /// The Rollout lacks something the router needs.
    #[error("{0}")]
    Config(&'static str),
    /// The TrafficSplit exists and is controlled by something else (or by nothing).
    #[error("Rollout does not own TrafficSplit `{0}`")]
    NotOwned(String),
}

impl SmiError {
    fn into_plugin(self) -> PluginError {
        match self {
            Self::UnsupportedVersion(_) | Self::Config(_) => PluginError::Config {
                plugin: NAME,
                message: self.to_string(),
            },
            Self::NotOwned(_) => PluginError::Other {
                plugin: NAME,
                message: self.to_string(),
            },
        }
    }
}

rollouts_plugin::register_traffic_router!(TrafficRouterPlugin {
    name: NAME,
    summary: "SMI TrafficSplit (split.smi-spec.io v1alpha1/v1alpha2/v1alpha3)",
    build: |init| {
        let version = init
            .settings()
            .get_or(keys::TRAFFIC_SPLIT_API_VERSION, DEFAULT_API_VERSION);
        Ok(Box::new(SmiRouter::new(init, version)?))
    },
});

/// The SMI router for one Rollout.
pub struct SmiRouter {
    client: kube::Client,
    events: Arc<dyn EventSink>,
    config: SplitConfig,
    owner: Option<Value>,
}

impl std::fmt::Debug for SmiRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmiRouter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SmiRouter {
    /// A router for `init.rollout` writing TrafficSplits of `api_version` (`v1alpha1`,
    /// `v1alpha2` or `v1alpha3`).
    pub fn new(init: RouterInit<'_>, api_version: &str) -> Result<Self, PluginError> {
        let version = SplitVersion::parse(api_version).map_err(SmiError::into_plugin)?;
        let config =
            SplitConfig::from_rollout(init.rollout, version).map_err(SmiError::into_plugin)?;
        Ok(Self {
            client: init.client,
            events: init.events,
            owner: controller_reference(init.rollout),
            config,
        })
    }

    /// What the router resolved from the Rollout.
    pub fn config(&self) -> &SplitConfig {
        &self.config
    }

    fn api(&self) -> Api<DynamicObject> {
        let resource = ApiResource {
            group: GROUP.to_string(),
            version: self.config.version.as_str().to_string(),
            api_version: self.config.api_version(),
            kind: "TrafficSplit".to_string(),
            plural: "trafficsplits".to_string(),
        };
        Api::namespaced_with(self.client.clone(), &self.config.namespace, &resource)
    }

    fn kube_error(&self, action: &str, source: kube::Error) -> PluginError {
        PluginError::Kube {
            plugin: NAME,
            action: format!("{action} TrafficSplit `{}`", self.config.name),
            source,
        }
    }

    async fn get(&self) -> Result<Option<Value>, PluginError> {
        let found = self
            .api()
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.kube_error("getting", e))?;
        found.map(to_json).transpose()
    }
}

fn to_json(object: DynamicObject) -> Result<Value, PluginError> {
    serde_json::to_value(object).map_err(|e| PluginError::Other {
        plugin: NAME,
        message: format!("encoding a TrafficSplit as JSON: {e}"),
    })
}

#[async_trait]
impl TrafficRouter for SmiRouter {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn set_weight(
        &self,
        desired_weight: i32,
        additional: &[WeightDestination],
    ) -> Result<(), PluginError> {
        let cfg = &self.config;
        let want = desired(cfg, self.owner.clone(), desired_weight, additional);
        let current = match self.get().await? {
            Some(current) => current,
            None => {
                let object: DynamicObject =
                    serde_json::from_value(want.clone()).map_err(|e| PluginError::Other {
                        plugin: NAME,
                        message: format!("building TrafficSplit `{}`: {e}", cfg.name),
                    })?;
                match self.api().create(&PostParams::default(), &object).await {
                    Ok(_) => {
                        tracing::info!(namespace = %cfg.namespace, trafficsplit = %cfg.name, weight = desired_weight, "Created TrafficSplit.");
                        self.events.emit(PluginEvent::normal(
                            "TrafficSplitCreated",
                            format!("TrafficSplit `{}` created", cfg.name),
                        ));
                        return Ok(());
                    }
                    // Created meanwhile (by an earlier reconcile whose answer was lost): update it.
                    Err(e) if objects::status_code(&e) == Some(409) => self
                        .get()
                        .await?
                        .ok_or_else(|| self.kube_error("creating", e))?,
                    Err(e) => {
                        self.events.emit(PluginEvent::normal(
                            "TrafficSplitNotCreated",
                            format!(
                                "TrafficSplit `{}` failed creation: {}",
                                cfg.name,
                                objects::error_message(&e)
                            ),
                        ));
                        return Err(self.kube_error("creating", e));
                    }
                }
            }
        };
        let owned = cfg
            .rollout_uid
            .as_deref()
            .is_some_and(|uid| is_controlled_by(&current, uid));
        if !owned {
            return Err(SmiError::NotOwned(cfg.name.clone()).into_plugin());
        }
        let Some(patch) = spec_patch(&current, &want) else {
            tracing::debug!(namespace = %cfg.namespace, trafficsplit = %cfg.name, "TrafficSplit already holds the desired weights.");
            return Ok(());
        };
        tracing::info!(namespace = %cfg.namespace, trafficsplit = %cfg.name, weight = desired_weight, %patch, "Patching TrafficSplit.");
        self.api()
            .patch(&cfg.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| self.kube_error("patching", e))?;
        Ok(())
    }

    async fn verify_weight(
        &self,
        desired_weight: i32,
        additional: &[WeightDestination],
    ) -> Result<WeightVerification, PluginError> {
        let current = self.get().await?;
        Ok(
            match mismatch(&self.config, current.as_ref(), desired_weight, additional) {
                None => WeightVerification::Verified,
                Some((observed, detail)) => WeightVerification::Mismatch { observed, detail },
            },
        )
    }
}
