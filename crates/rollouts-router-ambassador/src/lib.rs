//! The `ambassador` traffic router: a weighted `<mapping>-canary` copy of each
//! [Emissary-ingress (Ambassador) Mapping](https://www.getambassador.io/docs/emissary/latest/topics/using/canary)
//! listed by the Rollout, pointing at the canary Service.
//!
//! ```yaml
//! strategy:
//!   canary:
//!     canaryService: search-canary
//!     stableService: search-stable
//!     trafficRouting:
//!       ambassador:
//!         mappings: [search, search-api]   # base Mappings, in the Rollout's namespace
//! ```
//!
//! As in Argo, [`TrafficRouter::set_weight`] emits `CanaryMappingWeightUpdate`, then for each base
//! Mapping: with no canary Mapping and a weight of 0 it does nothing; with no canary Mapping and
//! a weight above 0 it reads the base (Warning `AmbassadorMappingNotFound` if it is missing;
//! `AmbassadorMappingConfigError` and an error if it sets a non-zero `weight`) and creates
//! `<base>-canary`: its spec with the first occurrence of the stable Service's name in `service`
//! replaced by the canary Service's, and `weight: w` (Warning `CanaryMappingCreationError` on
//! failure); with a canary Mapping it sets its `weight` (Warning `CanaryMappingUpdateError`), and
//! at weight 0 deletes it after 5 s (Warning `CanaryMappingCleanupError`). Errors of several
//! Mappings are joined as `N errors found: [e1][e2]`. The Mapping API comes from the
//! [`keys::AMBASSADOR_API_VERSION`] setting (`getambassador.io/v2`; `x.getambassador.io/<v>`
//! selects `ambassadormappings`).
//!
//! Unlike Argo, the 5 s wait before the deletion does not block the controller: it runs as a
//! task, and the deletion carries the `resourceVersion` of the zeroed Mapping as a precondition,
//! so a canary Mapping given weight again in between is kept. The canary Mapping is controlled by
//! the Rollout (garbage-collected with it), its weight is written only when it differs (a merge
//! patch of `spec.weight`), and [`TrafficRouter::verify_weight`] reads the canary Mappings back.
//! See `docs/routers/ambassador.md`.

mod mapping;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use kube::{
    Api,
    api::{
        ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions,
    },
};
use rollouts_api::WeightDestination;
use rollouts_plugin::{
    EventSink, PluginError, PluginEvent, RouterInit, TrafficRouter, TrafficRouterPlugin,
    WeightVerification,
    objects::{self, controller_reference},
    settings::keys,
};
use serde_json::Value;

pub use mapping::{
    AmbassadorConfig, CANARY_SUFFIX, DEFAULT_API_VERSION, GROUP, MappingApi, X_GROUP,
    canary_mapping_name, canary_service_of, join_errors, mapping_weight, mismatch,
    new_canary_mapping, weight_patch,
};

/// The registry name: the JSON key of the router block.
pub const NAME: &str = "ambassador";
/// How long a canary Mapping stays at weight 0 before it is deleted (Argo's propagation wait).
pub const DELETE_DELAY: Duration = Duration::from_secs(5);

/// What can go wrong, with Argo's messages where Argo has one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AmbassadorError {
    /// The Rollout lacks something the router needs.
    #[error("{0}")]
    Config(&'static str),
    /// `--ambassador-api-version` does not name an API.
    #[error("invalid Ambassador API version `{0}`: want <group>/<version>")]
    Api(String),
    /// The base Mapping sets a weight of its own.
    #[error("Ambassador mapping \"{0}\" can not define weight")]
    BaseWeight(String),
    /// The base Mapping has no `spec.service`.
    #[error("Ambassador mapping \"{0}\" has no spec.service")]
    NoService(String),
}

impl AmbassadorError {
    fn into_plugin(self) -> PluginError {
        match self {
            Self::Config(_) | Self::Api(_) => PluginError::Config {
                plugin: NAME,
                message: self.to_string(),
            },
            Self::BaseWeight(_) | Self::NoService(_) => PluginError::Other {
                plugin: NAME,
                message: self.to_string(),
            },
        }
    }
}

rollouts_plugin::register_traffic_router!(TrafficRouterPlugin {
    name: NAME,
    summary: "Emissary-ingress (Ambassador) weighted canary Mappings (getambassador.io/v2 by default)",
    build: |init| {
        let version = init
            .settings()
            .get_or(keys::AMBASSADOR_API_VERSION, DEFAULT_API_VERSION)
            .to_string();
        Ok(Box::new(AmbassadorRouter::new(init, &version)?))
    },
});

/// The Ambassador router for one Rollout.
pub struct AmbassadorRouter {
    client: kube::Client,
    events: Arc<dyn EventSink>,
    config: AmbassadorConfig,
    owner: Option<Value>,
    delete_delay: Duration,
}

impl std::fmt::Debug for AmbassadorRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmbassadorRouter")
            .field("config", &self.config)
            .field("delete_delay", &self.delete_delay)
            .finish_non_exhaustive()
    }
}

fn kube_error(action: String, source: kube::Error) -> PluginError {
    PluginError::Kube {
        plugin: NAME,
        action,
        source,
    }
}

impl AmbassadorRouter {
    /// A router for `init.rollout` writing Mappings of `api_version` (the
    /// `--ambassador-api-version` value).
    pub fn new(init: RouterInit<'_>, api_version: &str) -> Result<Self, PluginError> {
        let api = MappingApi::parse(api_version).map_err(AmbassadorError::into_plugin)?;
        let config = AmbassadorConfig::from_rollout(init.rollout, api)
            .map_err(AmbassadorError::into_plugin)?;
        Ok(Self {
            client: init.client,
            events: init.events,
            owner: controller_reference(init.rollout),
            config,
            delete_delay: DELETE_DELAY,
        })
    }

    /// The same router waiting `delay` (instead of [`DELETE_DELAY`]) before deleting a canary
    /// Mapping at weight 0.
    pub fn with_delete_delay(mut self, delay: Duration) -> Self {
        self.delete_delay = delay;
        self
    }

    /// What the router resolved from the Rollout and the settings.
    pub fn config(&self) -> &AmbassadorConfig {
        &self.config
    }

    fn api(&self) -> Api<DynamicObject> {
        let a = &self.config.api;
        let resource = ApiResource {
            group: a.group.clone(),
            version: a.version.clone(),
            api_version: a.api_version(),
            kind: a.kind.clone(),
            plural: a.plural.clone(),
        };
        Api::namespaced_with(self.client.clone(), &self.config.namespace, &resource)
    }

    async fn get(&self, name: &str) -> Result<Option<Value>, PluginError> {
        let found = self
            .api()
            .get_opt(name)
            .await
            .map_err(|e| kube_error(format!("getting Mapping `{name}`"), e))?;
        found
            .map(|o| {
                serde_json::to_value(o).map_err(|e| PluginError::Other {
                    plugin: NAME,
                    message: format!("encoding a Mapping as JSON: {e}"),
                })
            })
            .transpose()
    }

    fn warn(&self, reason: &str, message: String) {
        self.events.emit(PluginEvent::warning(reason, message));
    }

    /// Brings the canary Mapping of `base` to `weight`.
    async fn handle(&self, base: &str, weight: i32) -> Result<(), PluginError> {
        let name = canary_mapping_name(base);
        let canary = match self.get(&name).await? {
            Some(canary) => canary,
            None if weight == 0 => return Ok(()),
            None => match self.create(base, &name, weight).await? {
                None => return Ok(()),
                // Created meanwhile (an earlier reconcile whose answer was lost): update it.
                Some(existing) => existing,
            },
        };
        let mut version = canary["metadata"]["resourceVersion"]
            .as_str()
            .map(String::from);
        if let Some(patch) = weight_patch(&canary, weight) {
            tracing::info!(namespace = %self.config.namespace, mapping = %name, weight, "Updating canary Mapping weight.");
            match self
                .api()
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(updated) => version = updated.metadata.resource_version,
                Err(e) => {
                    self.warn(
                        "CanaryMappingUpdateError",
                        format!(
                            "Error updating canary mapping {name:?}: {}",
                            objects::error_message(&e)
                        ),
                    );
                    return Err(kube_error(format!("updating Mapping `{name}`"), e));
                }
            }
        }
        if weight == 0 {
            self.schedule_delete(name, version);
        }
        Ok(())
    }

    /// Creates the canary Mapping `name` from `base`. `Some(existing)` when it already exists.
    async fn create(
        &self,
        base: &str,
        name: &str,
        weight: i32,
    ) -> Result<Option<Value>, PluginError> {
        let Some(base_mapping) = self.get(base).await? else {
            self.warn(
                "AmbassadorMappingNotFound",
                format!("Ambassador mapping {base:?} not found"),
            );
            return Err(PluginError::NotFound {
                plugin: NAME,
                object: format!("Ambassador mapping {base:?}"),
            });
        };
        let mapping = new_canary_mapping(
            &self.config,
            base,
            &base_mapping,
            weight,
            self.owner.clone(),
        )
        .map_err(|e| {
            self.warn("AmbassadorMappingConfigError", e.to_string());
            e.into_plugin()
        })?;
        let object: DynamicObject =
            serde_json::from_value(mapping).map_err(|e| PluginError::Other {
                plugin: NAME,
                message: format!("building Mapping `{name}`: {e}"),
            })?;
        tracing::info!(namespace = %self.config.namespace, mapping = name, base, weight, "Creating canary Mapping.");
        match self.api().create(&PostParams::default(), &object).await {
            Ok(_) => Ok(None),
            Err(e) if objects::status_code(&e) == Some(409) => match self.get(name).await? {
                Some(existing) => Ok(Some(existing)),
                None => Err(kube_error(format!("creating Mapping `{name}`"), e)),
            },
            Err(e) => {
                self.warn(
                    "CanaryMappingCreationError",
                    format!(
                        "Error creating canary mapping: {}",
                        objects::error_message(&e)
                    ),
                );
                Err(kube_error(format!("creating Mapping `{name}`"), e))
            }
        }
    }

    /// Deletes the canary Mapping `name` after the delay, if it is still the version we zeroed.
    /// Without a Tokio runtime (a host that is not async) nothing is scheduled: the next
    /// `set_weight(0)` tries again.
    fn schedule_delete(&self, name: String, version: Option<String>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(mapping = %name, "No async runtime: the canary Mapping is left at weight 0.");
            return;
        };
        let api = self.api();
        let events = self.events.clone();
        let delay = self.delete_delay;
        let namespace = self.config.namespace.clone();
        runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: version,
                    uid: None,
                }),
                ..DeleteParams::default()
            };
            match api.delete(&name, &params).await {
                Ok(_) => {
                    tracing::info!(%namespace, mapping = %name, "Deleted canary Mapping at weight 0.");
                }
                Err(e) if objects::status_code(&e) == Some(404) => {}
                Err(e) if objects::status_code(&e) == Some(409) => {
                    tracing::info!(%namespace, mapping = %name, "Canary Mapping changed since it was zeroed; kept.");
                }
                Err(e) => {
                    tracing::warn!(%namespace, mapping = %name, error = %objects::error_message(&e), "Deleting the canary Mapping failed.");
                    events.emit(PluginEvent::warning(
                        "CanaryMappingCleanupError",
                        format!(
                            "Error deleting canary mapping {name:?}: {}",
                            objects::error_message(&e)
                        ),
                    ));
                }
            }
        });
    }
}

#[async_trait]
impl TrafficRouter for AmbassadorRouter {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn set_weight(
        &self,
        desired_weight: i32,
        _additional: &[WeightDestination],
    ) -> Result<(), PluginError> {
        self.events.emit(PluginEvent::normal(
            "CanaryMappingWeightUpdate",
            format!("Set canary mapping weight to {desired_weight}"),
        ));
        let mut errors = Vec::new();
        for base in &self.config.mappings {
            if let Err(e) = self.handle(base, desired_weight).await {
                errors.push(e);
            }
        }
        if errors.len() <= 1 {
            return errors.pop().map_or(Ok(()), Err);
        }
        let prefix = format!("{NAME}: ");
        let messages: Vec<String> = errors
            .iter()
            .map(|e| {
                let text = e.to_string();
                text.strip_prefix(&prefix)
                    .map_or(text.clone(), String::from)
            })
            .collect();
        Err(PluginError::Other {
            plugin: NAME,
            message: join_errors(&messages).unwrap_or_default(),
        })
    }

    async fn verify_weight(
        &self,
        desired_weight: i32,
        _additional: &[WeightDestination],
    ) -> Result<WeightVerification, PluginError> {
        for base in &self.config.mappings {
            let canary = self.get(&canary_mapping_name(base)).await?;
            if let Some((observed, detail)) =
                mismatch(&self.config, base, canary.as_ref(), desired_weight)
            {
                return Ok(WeightVerification::Mismatch { observed, detail });
            }
        }
        Ok(WeightVerification::Verified)
    }
}
