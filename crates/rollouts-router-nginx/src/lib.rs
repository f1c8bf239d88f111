//! The `nginx` traffic router: a canary copy of each stable Ingress, weighted with
//! [ingress-nginx's canary annotations](https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/#canary).
//!
//! ```yaml
//! strategy:
//!   canary:
//!     canaryService: storefront-canary
//!     stableService: storefront-stable
//!     trafficRouting:
//!       maxTrafficWeight: 1000                 # optional: written as canary-weight-total
//!       nginx:
//!         stableIngress: storefront            # or stableIngresses: [a, b]
//!         annotationPrefix: nginx.ingress.kubernetes.io
//!         additionalIngressAnnotations: {canary-by-header: x-canary}   # prefixed
//!         canaryIngressAnnotations: {example.com/owner: team}          # as given
//! ```
//!
//! As in Argo, [`TrafficRouter::set_weight`] builds, for each stable Ingress, the canary Ingress
//! `<rollout>-<ingress>-canary` (`networking.k8s.io/v1`, controlled by the Rollout): the stable
//! Ingress's rules that route to the stable Service, pointed at the canary Service, its TLS and
//! class, and the annotations `<prefix>/canary: "true"` and `<prefix>/canary-weight: "<w>"`. It
//! creates the Ingress when missing (Event `CreatingCanaryIngress`), refuses one controlled by
//! another object, and merge-patches the differences otherwise (Event `PatchingCanaryIngress`).
//! Other operations do nothing: ingress-nginx has no header or mirror routes of this kind, and it
//! selects pods through the Services.
//!
//! Unlike Argo, [`TrafficRouter::verify_weight`] reads the canary Ingresses back, the patch never
//! removes the labels or `spec` fields others put on the canary Ingress, and the "no rules" error
//! names the Ingress that has none. See `docs/routers/nginx.md`.

mod canary;

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

pub use canary::{
    CANARY_SUFFIX, DEFAULT_ANNOTATION_PREFIX, INGRESS_CLASS_ANNOTATION, NginxConfig,
    canary_annotations, canary_ingress_name, canary_patch, canary_rules, desired_canary, mismatch,
};

/// The registry name: the JSON key of the router block.
pub const NAME: &str = "nginx";

/// What can go wrong, with Argo's messages where Argo has one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NginxError {
    /// The Rollout lacks something the router needs.
    #[error("{0}")]
    Config(&'static str),
    /// `--ingress-api-version` asks for an API this router does not write.
    #[error(
        "ingress API `{0}` is not supported: Kubernetes serves Ingresses as networking.k8s.io/v1 \
         since 1.19 (extensions/v1beta1 was removed in 1.22)"
    )]
    IngressApi(String),
    /// No rule of the stable Ingress routes to the stable Service.
    #[error("ingress `{ingress}` has no rules using service {service} backend")]
    NoRules {
        /// The stable Ingress.
        ingress: String,
        /// The stable Service.
        service: String,
    },
    /// The canary Ingress exists and is controlled by something else (or by nothing).
    #[error("canary ingress `{0}` controlled by different object")]
    NotOwned(String),
}

impl NginxError {
    fn into_plugin(self) -> PluginError {
        match self {
            Self::Config(_) | Self::IngressApi(_) => PluginError::Config {
                plugin: NAME,
                message: self.to_string(),
            },
            Self::NoRules { .. } | Self::NotOwned(_) => PluginError::Other {
                plugin: NAME,
                message: self.to_string(),
            },
        }
    }
}

/// Checks the `--ingress-api-version` value: empty (detect), `networking/v1` (Argo's spelling) or
/// `networking.k8s.io/v1` mean the one API there is; `extensions/v1beta1` is refused.
pub fn check_ingress_api(value: &str) -> Result<(), NginxError> {
    match value {
        "extensions/v1beta1" => Err(NginxError::IngressApi(value.to_string())),
        // Argo falls back to detection for any other value, and detection finds v1.
        _ => Ok(()),
    }
}

rollouts_plugin::register_traffic_router!(TrafficRouterPlugin {
    name: NAME,
    summary: "NGINX Ingress canary (networking.k8s.io/v1 Ingress with canary-weight annotations)",
    build: |init| {
        check_ingress_api(init.settings().get_or(keys::INGRESS_API_VERSION, ""))
            .map_err(NginxError::into_plugin)?;
        Ok(Box::new(NginxRouter::new(init)?))
    },
});

/// The NGINX router for one Rollout.
pub struct NginxRouter {
    client: kube::Client,
    events: Arc<dyn EventSink>,
    config: NginxConfig,
    owner: Option<Value>,
}

impl std::fmt::Debug for NginxRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NginxRouter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl NginxRouter {
    /// A router for `init.rollout`.
    pub fn new(init: RouterInit<'_>) -> Result<Self, PluginError> {
        let config = NginxConfig::from_rollout(init.rollout).map_err(NginxError::into_plugin)?;
        Ok(Self {
            client: init.client,
            events: init.events,
            owner: controller_reference(init.rollout),
            config,
        })
    }

    /// What the router resolved from the Rollout.
    pub fn config(&self) -> &NginxConfig {
        &self.config
    }

    fn api(&self) -> Api<DynamicObject> {
        let resource = ApiResource {
            group: "networking.k8s.io".into(),
            version: "v1".into(),
            api_version: "networking.k8s.io/v1".into(),
            kind: "Ingress".into(),
            plural: "ingresses".into(),
        };
        Api::namespaced_with(self.client.clone(), &self.config.namespace, &resource)
    }

    async fn get(&self, name: &str, what: &str) -> Result<Option<Value>, PluginError> {
        let found = self
            .api()
            .get_opt(name)
            .await
            .map_err(|e| error(format!("error retrieving {what} `{name}`"), e))?;
        found.map(to_json).transpose()
    }

    /// Brings the canary Ingress of `stable_name` to `weight`.
    async fn set_weight_for(&self, stable_name: &str, weight: i32) -> Result<(), PluginError> {
        let cfg = &self.config;
        let name = canary_ingress_name(&cfg.rollout, stable_name);
        let stable = self
            .get(stable_name, "stableIngress")
            .await?
            .ok_or_else(|| PluginError::NotFound {
                plugin: NAME,
                object: format!("stableIngress `{stable_name}`"),
            })?;
        let desired = desired_canary(cfg, self.owner.clone(), stable_name, &stable, &name, weight)
            .map_err(NginxError::into_plugin)?;
        let current = match self.get(&name, "canary ingress").await? {
            Some(current) => current,
            None => {
                self.events.emit(PluginEvent::normal(
                    "CreatingCanaryIngress",
                    format!("Creating canary ingress `{name}` with weight `{weight}`"),
                ));
                let object: DynamicObject =
                    serde_json::from_value(desired.clone()).map_err(|e| PluginError::Other {
                        plugin: NAME,
                        message: format!("building canary ingress `{name}`: {e}"),
                    })?;
                match self.api().create(&PostParams::default(), &object).await {
                    Ok(_) => {
                        tracing::info!(namespace = %cfg.namespace, ingress = %name, weight, "Created canary Ingress.");
                        return Ok(());
                    }
                    // Created by an earlier reconcile whose answer was lost: read it and patch.
                    Err(e) if objects::status_code(&e) == Some(409) => {
                        self.get(&name, "canary ingress").await?.ok_or_else(|| {
                            error(format!("error creating canary ingress `{name}`"), e)
                        })?
                    }
                    Err(e) => {
                        return Err(error(format!("error creating canary ingress `{name}`"), e));
                    }
                }
            }
        };
        let owned = cfg
            .rollout_uid
            .as_deref()
            .is_some_and(|uid| is_controlled_by(&current, uid));
        if !owned {
            return Err(NginxError::NotOwned(name).into_plugin());
        }
        let Some(patch) = canary_patch(cfg, &current, &desired) else {
            tracing::debug!(namespace = %cfg.namespace, ingress = %name, "No changes to canary Ingress.");
            return Ok(());
        };
        tracing::info!(namespace = %cfg.namespace, ingress = %name, weight, %patch, "Patching canary Ingress.");
        self.events.emit(PluginEvent::normal(
            "PatchingCanaryIngress",
            format!("Updating Ingress `{name}` to desiredWeight '{weight}'"),
        ));
        self.api()
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| error(format!("error patching canary ingress `{name}`"), e))?;
        Ok(())
    }
}

fn error(action: String, source: kube::Error) -> PluginError {
    PluginError::Kube {
        plugin: NAME,
        action,
        source,
    }
}

fn to_json(object: DynamicObject) -> Result<Value, PluginError> {
    serde_json::to_value(object).map_err(|e| PluginError::Other {
        plugin: NAME,
        message: format!("encoding an Ingress as JSON: {e}"),
    })
}

#[async_trait]
impl TrafficRouter for NginxRouter {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn set_weight(
        &self,
        desired_weight: i32,
        _additional: &[WeightDestination],
    ) -> Result<(), PluginError> {
        for stable in &self.config.stable_ingresses {
            self.set_weight_for(stable, desired_weight).await?;
        }
        Ok(())
    }

    async fn verify_weight(
        &self,
        desired_weight: i32,
        _additional: &[WeightDestination],
    ) -> Result<WeightVerification, PluginError> {
        for stable in &self.config.stable_ingresses {
            let name = canary_ingress_name(&self.config.rollout, stable);
            let current = self.get(&name, "canary ingress").await?;
            if let Some((observed, detail)) =
                mismatch(&self.config, &name, current.as_ref(), desired_weight)
            {
                return Ok(WeightVerification::Mismatch { observed, detail });
            }
        }
        Ok(WeightVerification::Verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_removed_extensions_api_is_refused() {
        for ok in ["", "networking/v1", "networking.k8s.io/v1", "anything"] {
            assert_eq!(check_ingress_api(ok), Ok(()), "{ok}");
        }
        let err = check_ingress_api("extensions/v1beta1").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("ingress API `extensions/v1beta1` is not supported")
        );
        assert!(matches!(
            err.into_plugin(),
            PluginError::Config {
                plugin: "nginx",
                ..
            }
        ));
    }
}
