//! The `alb` traffic router: weighted forward actions in the
//! [AWS Load Balancer Controller](https://kubernetes-sigs.github.io/aws-load-balancer-controller/)'s
//! Ingress annotations, and optional target group verification through the AWS ELBv2 API.
//!
//! ```yaml
//! strategy:
//!   canary:
//!     canaryService: web-canary
//!     stableService: web-stable
//!     trafficRouting:
//!       managedRoutes: [{name: beta-testers}]
//!       alb:
//!         ingress: web                   # or ingresses: [a, b]
//!         servicePort: 80
//!         rootService: web-root          # default: the stable Service
//!         annotationPrefix: alb.ingress.kubernetes.io
//!         stickinessConfig: {enabled: true, durationSeconds: 3600}
//! ```
//!
//! As in Argo, the router changes the user's own Ingresses (there is no copy): for each Ingress,
//! [`TrafficRouter::set_weight`] writes the annotation `<prefix>/actions.<rootService>` with a
//! forward action over the canary, experiment and stable target groups (see
//! [`annotations::forward_action`]) and records it in `rollouts.argoproj.io/managed-alb-annotations`;
//! [`TrafficRouter::set_header_route`] adds `<prefix>/actions.<route>` and
//! `<prefix>/conditions.<route>` with a `/*` path to the route on every rule;
//! [`TrafficRouter::remove_managed_routes`] takes them away. Each change is a JSON merge patch of
//! only those annotations (and `spec.rules` for header routes), announced by the Event
//! `PatchingALBIngress`.
//!
//! [`TrafficRouter::verify_weight`] always reads the Ingresses back and checks the action
//! annotation. With the controller setting `aws-verify-target-group` (the flag
//! `--aws-verify-target-group`) it also checks, through the ELBv2 API, that each Ingress's load
//! balancer gives the target groups those weights ([`verify`]), and reports `status.alb` and
//! `status.albs` through [`TrafficRouter::router_status`]. The AWS calls are signed by our own
//! SigV4 signer ([`sigv4`]) and sent by a small Query-protocol client ([`elbv2`]) rather than the
//! AWS SDK, which would add minutes to every build. See `docs/routers/alb.md`.

pub mod annotations;
pub mod config;
pub mod elbv2;
pub mod sigv4;
pub mod verify;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use kube::{
    Api,
    api::{ApiResource, DynamicObject, Patch, PatchParams},
};
use rollouts_api::{AlbStatus, Rollout, SetHeaderRoute, WeightDestination};
use rollouts_plugin::{
    EventSink, PluginError, PluginEvent, RouterCapabilities, RouterInit, TrafficRouter,
    TrafficRouterPlugin, WeightVerification, settings::keys,
};
use serde_json::{Value, json};

pub use config::{AlbConfig, DEFAULT_RESOURCE_ID_TAG};
pub use elbv2::{AwsConfig, AwsError, Elbv2Client};

/// The registry name: the JSON key of the router block.
pub const NAME: &str = "alb";

/// What can go wrong, with Argo's messages where Argo has one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AlbError {
    /// The Rollout lacks something the router needs.
    #[error("{0}")]
    Config(String),
    /// `--ingress-api-version` asks for an API this router does not write.
    #[error(
        "ingress API `{0}` is not supported: Kubernetes serves Ingresses as networking.k8s.io/v1 \
         since 1.19 (extensions/v1beta1 was removed in 1.22)"
    )]
    IngressApi(String),
    /// `stickinessConfig.durationSeconds` is out of AWS's range.
    #[error(
        "TargetGroupStickinessConfig's duration must be between 1 and 604800 seconds (7 days)!"
    )]
    StickinessDuration,
    /// No rule of the Ingress routes to the action Service.
    #[error("ingress `{ingress}` does not have service `{service}` in rules")]
    NoRule {
        /// The Ingress.
        ingress: String,
        /// The action Service (`rootService` or `stableService`).
        service: String,
    },
    /// A `setHeaderRoute` step the ALB cannot express.
    #[error("{0}")]
    HeaderRoute(String),
    /// The managed-annotations bookkeeping of an Ingress cannot be read.
    #[error(
        "ingress `{ingress}` has an unreadable rollouts.argoproj.io/managed-alb-annotations: {message}"
    )]
    Managed {
        /// The Ingress.
        ingress: String,
        /// What is wrong.
        message: String,
    },
    /// The ELBv2 API failed.
    #[error("verifying target groups: {0}")]
    Aws(#[from] AwsError),
}

impl AlbError {
    fn into_plugin(self) -> PluginError {
        match self {
            Self::Config(_) | Self::IngressApi(_) | Self::StickinessDuration => {
                PluginError::Config {
                    plugin: NAME,
                    message: self.to_string(),
                }
            }
            Self::NoRule { .. } | Self::HeaderRoute(_) | Self::Managed { .. } | Self::Aws(_) => {
                PluginError::Other {
                    plugin: NAME,
                    message: self.to_string(),
                }
            }
        }
    }
}

/// Checks the `--ingress-api-version` value: `extensions/v1beta1` is refused; every other value
/// means `networking.k8s.io/v1`, the one Ingress API there is.
pub fn check_ingress_api(value: &str) -> Result<(), AlbError> {
    match value {
        "extensions/v1beta1" => Err(AlbError::IngressApi(value.to_string())),
        _ => Ok(()),
    }
}

/// Reads a boolean router setting as Go's `strconv.ParseBool` would (`true`, `1`, `t`, ...).
fn setting_bool(value: Option<&str>) -> bool {
    matches!(
        value.map(str::trim),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True")
    )
}

rollouts_plugin::register_traffic_router!(TrafficRouterPlugin {
    name: NAME,
    summary: "AWS ALB Ingress annotations (weighted forward actions, header routes; optional ELBv2 target group verification)",
    build: |init| {
        check_ingress_api(init.settings().get_or(keys::INGRESS_API_VERSION, ""))
            .map_err(AlbError::into_plugin)?;
        Ok(Box::new(AlbRouter::new(init)?))
    },
});

/// The ALB router for one Rollout.
pub struct AlbRouter {
    client: kube::Client,
    events: Arc<dyn EventSink>,
    config: AlbConfig,
    rollout: Rollout,
    aws: Option<Elbv2Client>,
    status: Mutex<Option<Value>>,
}

impl std::fmt::Debug for AlbRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlbRouter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AlbRouter {
    /// A router for `init.rollout`, with the installed router settings
    /// ([`keys::AWS_VERIFY_TARGET_GROUP`], [`keys::ALB_TAG_KEY_RESOURCE_ID`]); the AWS client, if
    /// verification is on, is configured from the environment when it is first needed.
    pub fn new(init: RouterInit<'_>) -> Result<Self, PluginError> {
        let settings = init.settings();
        let verify = setting_bool(settings.get(keys::AWS_VERIFY_TARGET_GROUP));
        let tag = settings
            .get_or(keys::ALB_TAG_KEY_RESOURCE_ID, DEFAULT_RESOURCE_ID_TAG)
            .to_string();
        Self::with_settings(init, verify, &tag, None)
    }

    /// A router with explicit settings: target group verification on or off, the resource-id
    /// tag, and (for tests) the ELBv2 client to use instead of one from the environment.
    pub fn with_settings(
        init: RouterInit<'_>,
        verify_target_groups: bool,
        resource_id_tag: &str,
        aws: Option<Elbv2Client>,
    ) -> Result<Self, PluginError> {
        let config = AlbConfig::from_rollout(init.rollout, verify_target_groups, resource_id_tag)
            .map_err(AlbError::into_plugin)?;
        Ok(Self {
            client: init.client,
            events: init.events,
            config,
            rollout: init.rollout.clone(),
            aws,
            status: Mutex::new(None),
        })
    }

    /// What the router resolved from the Rollout.
    pub fn config(&self) -> &AlbConfig {
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

    async fn get(&self, name: &str) -> Result<Option<Value>, PluginError> {
        let found = self
            .api()
            .get_opt(name)
            .await
            .map_err(|e| PluginError::Kube {
                plugin: NAME,
                action: format!("error retrieving ingress `{name}`"),
                source: e,
            })?;
        found
            .map(|o| {
                serde_json::to_value(o).map_err(|e| PluginError::Other {
                    plugin: NAME,
                    message: format!("encoding Ingress `{name}` as JSON: {e}"),
                })
            })
            .transpose()
    }

    async fn get_required(&self, name: &str) -> Result<Value, PluginError> {
        self.get(name).await?.ok_or_else(|| PluginError::NotFound {
            plugin: NAME,
            object: format!("ingress `{name}`"),
        })
    }

    /// For each Ingress: reads it, asks `build` for a patch, and sends it with the Event
    /// `PatchingALBIngress` (`message` describes the change). An Ingress that already holds
    /// what is wanted is skipped, and the next one is still handled (Argo stops at it).
    async fn patch_each(
        &self,
        what: &str,
        message: impl Fn(&str) -> String,
        build: impl Fn(&str, &Value) -> Result<Option<Value>, AlbError>,
    ) -> Result<(), PluginError> {
        for name in &self.config.ingresses {
            let ingress = self.get_required(name).await?;
            let Some(patch) = build(name, &ingress).map_err(AlbError::into_plugin)? else {
                tracing::debug!(namespace = %self.config.namespace, ingress = %name, what, "No changes to the ALB Ingress.");
                continue;
            };
            tracing::info!(namespace = %self.config.namespace, ingress = %name, what, %patch, "Patching the ALB Ingress.");
            self.events
                .emit(PluginEvent::normal("PatchingALBIngress", message(name)));
            self.api()
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| PluginError::Kube {
                    plugin: NAME,
                    action: format!("error patching alb ingress `{name}`"),
                    source: e,
                })?;
        }
        Ok(())
    }

    fn set_status(&self, status: Option<Value>) {
        *self
            .status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = status;
    }

    fn previous_status(&self) -> (Option<AlbStatus>, Option<Vec<AlbStatus>>) {
        let status = self.rollout.status.as_ref();
        (
            status.and_then(|s| s.alb.clone()),
            status.and_then(|s| s.albs.clone()),
        )
    }

    /// The AWS side of [`TrafficRouter::verify_weight`].
    async fn verify_target_groups(
        &self,
        ingresses: Vec<(String, Value)>,
        desired_weight: i32,
        additional: &[WeightDestination],
        observed: Option<i32>,
    ) -> Result<WeightVerification, PluginError> {
        let previous = self.previous_status();
        if !verify::should_verify_weight(&self.rollout, desired_weight)
            && (previous.0.is_some() || previous.1.is_some())
        {
            // Argo calls AWS only at setWeight steps and at the end of an update (and once to
            // fill an empty status): the annotations decide in between.
            return Ok(WeightVerification::Verified);
        }
        let aws = match &self.aws {
            Some(aws) => aws.clone(),
            None => Elbv2Client::from_env().map_err(|e| {
                self.events.emit(PluginEvent::warning(
                    "TargetGroupVerifyError",
                    format!(
                        "Failed to verify Service {} (TargetGroup unknown): {e}",
                        self.config.canary_service
                    ),
                ));
                AlbError::Aws(e).into_plugin()
            })?,
        };
        let report = verify::verify_target_groups(
            &aws,
            &self.config,
            &ingresses,
            desired_weight,
            additional,
            previous,
        )
        .await;
        for event in &report.events {
            self.events.emit(event.clone());
        }
        let albs = serde_json::to_value(&report.albs).unwrap_or(Value::Null);
        let alb = serde_json::to_value(&report.alb).unwrap_or(Value::Null);
        self.set_status(Some(json!({"alb": alb, "albs": albs})));
        if let Some(e) = report.error {
            return Err(AlbError::Aws(e).into_plugin());
        }
        Ok(if report.verified {
            WeightVerification::Verified
        } else {
            WeightVerification::Mismatch {
                observed,
                detail: report.problems.join("; "),
            }
        })
    }
}

#[async_trait]
impl TrafficRouter for AlbRouter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> RouterCapabilities {
        RouterCapabilities {
            header_routes: true,
            mirror_routes: false,
        }
    }

    async fn set_weight(
        &self,
        desired_weight: i32,
        additional: &[WeightDestination],
    ) -> Result<(), PluginError> {
        self.patch_each(
            "weight",
            |name| format!("Updating Ingress `{name}` to desiredWeight '{desired_weight}'"),
            |name, ingress| {
                annotations::weight_patch(&self.config, name, ingress, desired_weight, additional)
            },
        )
        .await
    }

    async fn verify_weight(
        &self,
        desired_weight: i32,
        additional: &[WeightDestination],
    ) -> Result<WeightVerification, PluginError> {
        if !self.config.verify_target_groups {
            // As in Argo: without target group verification, status.alb(s) are cleared.
            self.set_status(Some(json!({"alb": null, "albs": null})));
        }
        let mut ingresses = Vec::new();
        let mut canary = None;
        for name in &self.config.ingresses {
            let ingress = self.get(name).await?;
            if let Some((observed, detail)) = annotations::mismatch(
                &self.config,
                name,
                ingress.as_ref(),
                desired_weight,
                additional,
            ) {
                return Ok(WeightVerification::Mismatch { observed, detail });
            }
            canary = Some(desired_weight);
            if let Some(ingress) = ingress {
                ingresses.push((name.clone(), ingress));
            }
        }
        if !self.config.verify_target_groups {
            return Ok(WeightVerification::Verified);
        }
        self.verify_target_groups(ingresses, desired_weight, additional, canary)
            .await
    }

    async fn set_header_route(&self, route: &SetHeaderRoute) -> Result<(), PluginError> {
        let route_name = route.name.clone().unwrap_or_default();
        self.patch_each(
            "header route",
            |name| format!("Updating Ingress `{name}` to headerRoute '{route_name}'"),
            |name, ingress| annotations::header_route_patch(&self.config, name, ingress, route),
        )
        .await
    }

    async fn remove_managed_routes(&self) -> Result<(), PluginError> {
        if self.config.managed_routes.is_empty() {
            return Ok(());
        }
        self.patch_each(
            "managed routes",
            |name| format!("Updating Ingress `{name}` removing managed routes"),
            |name, ingress| annotations::remove_routes_patch(&self.config, name, ingress),
        )
        .await
    }

    fn router_status(&self) -> Option<Value> {
        self.status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_errors() {
        for yes in ["true", "1", "t", "True", " TRUE "] {
            assert!(setting_bool(Some(yes)), "{yes}");
        }
        for no in ["false", "", "yes", "0"] {
            assert!(!setting_bool(Some(no)), "{no}");
        }
        assert!(!setting_bool(None));
        assert_eq!(check_ingress_api("networking/v1"), Ok(()));
        assert!(matches!(
            check_ingress_api("extensions/v1beta1")
                .unwrap_err()
                .into_plugin(),
            PluginError::Config { plugin: "alb", .. }
        ));
        assert_eq!(
            AlbError::StickinessDuration.into_plugin().to_string(),
            "alb: invalid configuration: TargetGroupStickinessConfig's duration must be between 1 and 604800 seconds (7 days)!"
        );
        assert_eq!(
            AlbError::NoRule {
                ingress: "web".into(),
                service: "web-root".into()
            }
            .into_plugin()
            .to_string(),
            "alb: ingress `web` does not have service `web-root` in rules"
        );
    }
}
