//! Default values Argo Rollouts applies to unset fields, and accessors that apply them.
//!
//! Only plain facts of the API live here; anything that computes with them (replica math,
//! validation) belongs to the strategy engine.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::{
    AnalysisRunStrategy, BlueGreenStrategy, CanaryStrategy, ExperimentSpec, Metric, RolloutSpec,
    RolloutTrafficRouting, TemplateSpec,
};

/// `spec.replicas` of a Rollout.
pub const REPLICAS: i32 = 1;
/// `spec.revisionHistoryLimit` of a Rollout.
pub const REVISION_HISTORY_LIMIT: i32 = 10;
/// `spec.progressDeadlineSeconds` of a Rollout or Experiment.
pub const PROGRESS_DEADLINE_SECONDS: i32 = 600;
/// `spec.analysis.successfulRunHistoryLimit` of a Rollout.
pub const SUCCESSFUL_RUN_HISTORY_LIMIT: i32 = 5;
/// `spec.analysis.unsuccessfulRunHistoryLimit` of a Rollout.
pub const UNSUCCESSFUL_RUN_HISTORY_LIMIT: i32 = 5;
/// `maxSurge` of a canary: 25 percent (Argo writes it as the string `"25"`, read as percent).
pub const MAX_SURGE: &str = "25";
/// `maxUnavailable` of a canary or blue-green strategy: 25 percent.
pub const MAX_UNAVAILABLE: &str = "25";
/// `scaleDownDelaySeconds` of blue-green, traffic-routed canary and experiments.
pub const SCALE_DOWN_DELAY_SECONDS: i32 = 30;
/// `abortScaleDownDelaySeconds` of blue-green and traffic-routed canary.
pub const ABORT_SCALE_DOWN_DELAY_SECONDS: i32 = 30;
/// `autoPromotionEnabled` of blue-green.
pub const AUTO_PROMOTION_ENABLED: bool = true;
/// `trafficRouting.maxTrafficWeight`.
pub const MAX_TRAFFIC_WEIGHT: i32 = 100;
/// `consecutiveErrorLimit` of a metric.
pub const CONSECUTIVE_ERROR_LIMIT: i32 = 4;
/// Measurements kept per metric when `measurementRetention` does not say otherwise.
pub const MEASUREMENT_HISTORY_LIMIT: i32 = 10;
/// `replicas` of an experiment template.
pub const EXPERIMENT_TEMPLATE_REPLICAS: i32 = 1;
/// `annotationPrefix` of the NGINX router.
pub const NGINX_ANNOTATION_PREFIX: &str = "nginx.ingress.kubernetes.io";
/// `annotationPrefix` of the ALB router.
pub const ALB_ANNOTATION_PREFIX: &str = "alb.ingress.kubernetes.io";
/// `timeout` (seconds) of a Prometheus metric.
pub const PROMETHEUS_TIMEOUT_SECONDS: i64 = 30;
/// `timeoutSeconds` of a web metric.
pub const WEB_TIMEOUT_SECONDS: i64 = 10;
/// `jsonPath` of a web metric.
pub const WEB_JSON_PATH: &str = "{$}";
/// `interval` of a Datadog metric.
pub const DATADOG_INTERVAL: &str = "5m";
/// `apiVersion` of a Datadog metric.
pub const DATADOG_API_VERSION: &str = "v1";
/// `requestTimeout` of a Datadog metric.
pub const DATADOG_REQUEST_TIMEOUT: &str = "10s";

impl RolloutSpec {
    /// `spec.replicas`, or 1.
    pub fn replicas_or_default(&self) -> i32 {
        self.replicas.unwrap_or(REPLICAS)
    }

    /// `spec.revisionHistoryLimit`, or 10.
    pub fn revision_history_limit_or_default(&self) -> i32 {
        self.revision_history_limit
            .unwrap_or(REVISION_HISTORY_LIMIT)
    }

    /// `spec.progressDeadlineSeconds`, or 600.
    pub fn progress_deadline_seconds_or_default(&self) -> i32 {
        self.progress_deadline_seconds
            .unwrap_or(PROGRESS_DEADLINE_SECONDS)
    }

    /// `spec.minReadySeconds`, or 0.
    pub fn min_ready_seconds_or_default(&self) -> i32 {
        self.min_ready_seconds.unwrap_or(0)
    }

    /// The canary strategy, if that is the strategy.
    pub fn canary(&self) -> Option<&CanaryStrategy> {
        self.strategy.as_ref().and_then(|s| s.canary.as_ref())
    }

    /// The blue-green strategy, if that is the strategy.
    pub fn blue_green(&self) -> Option<&BlueGreenStrategy> {
        self.strategy.as_ref().and_then(|s| s.blue_green.as_ref())
    }
}

impl AnalysisRunStrategy {
    /// `successfulRunHistoryLimit`, or 5.
    pub fn successful_run_history_limit_or_default(&self) -> i32 {
        self.successful_run_history_limit
            .unwrap_or(SUCCESSFUL_RUN_HISTORY_LIMIT)
    }

    /// `unsuccessfulRunHistoryLimit`, or 5.
    pub fn unsuccessful_run_history_limit_or_default(&self) -> i32 {
        self.unsuccessful_run_history_limit
            .unwrap_or(UNSUCCESSFUL_RUN_HISTORY_LIMIT)
    }
}

impl CanaryStrategy {
    /// `maxSurge`, or `"25"` (25 percent).
    pub fn max_surge_or_default(&self) -> IntOrString {
        self.max_surge
            .clone()
            .unwrap_or_else(|| IntOrString::String(MAX_SURGE.into()))
    }

    /// `maxUnavailable`, or `"25"` (25 percent).
    pub fn max_unavailable_or_default(&self) -> IntOrString {
        self.max_unavailable
            .clone()
            .unwrap_or_else(|| IntOrString::String(MAX_UNAVAILABLE.into()))
    }

    /// The canary steps (empty when none are set).
    pub fn steps(&self) -> &[crate::CanaryStep] {
        self.steps.as_deref().unwrap_or_default()
    }

    /// `scaleDownDelaySeconds`, or its default: 30 with traffic routing, 0 without.
    pub fn scale_down_delay_seconds_or_default(&self) -> i32 {
        match (self.scale_down_delay_seconds, &self.traffic_routing) {
            (Some(s), _) => s,
            (None, Some(_)) => SCALE_DOWN_DELAY_SECONDS,
            (None, None) => 0,
        }
    }

    /// `abortScaleDownDelaySeconds`, or its default: 30 with traffic routing, 0 without.
    pub fn abort_scale_down_delay_seconds_or_default(&self) -> i32 {
        match (self.abort_scale_down_delay_seconds, &self.traffic_routing) {
            (Some(s), _) => s,
            (None, Some(_)) => ABORT_SCALE_DOWN_DELAY_SECONDS,
            (None, None) => 0,
        }
    }
}

impl BlueGreenStrategy {
    /// `autoPromotionEnabled`, or true.
    pub fn auto_promotion_enabled_or_default(&self) -> bool {
        self.auto_promotion_enabled
            .unwrap_or(AUTO_PROMOTION_ENABLED)
    }

    /// `maxUnavailable`, or `"25"` (25 percent).
    pub fn max_unavailable_or_default(&self) -> IntOrString {
        self.max_unavailable
            .clone()
            .unwrap_or_else(|| IntOrString::String(MAX_UNAVAILABLE.into()))
    }

    /// `scaleDownDelaySeconds`, or 30.
    pub fn scale_down_delay_seconds_or_default(&self) -> i32 {
        self.scale_down_delay_seconds
            .unwrap_or(SCALE_DOWN_DELAY_SECONDS)
    }

    /// `abortScaleDownDelaySeconds`, or 30.
    pub fn abort_scale_down_delay_seconds_or_default(&self) -> i32 {
        self.abort_scale_down_delay_seconds
            .unwrap_or(ABORT_SCALE_DOWN_DELAY_SECONDS)
    }
}

impl RolloutTrafficRouting {
    /// `maxTrafficWeight`, or 100.
    pub fn max_traffic_weight_or_default(&self) -> i32 {
        self.max_traffic_weight.unwrap_or(MAX_TRAFFIC_WEIGHT)
    }
}

impl Metric {
    /// `consecutiveErrorLimit`, or 4 (a string value is returned as set).
    pub fn consecutive_error_limit_or_default(&self) -> IntOrString {
        self.consecutive_error_limit
            .clone()
            .unwrap_or(IntOrString::Int(CONSECUTIVE_ERROR_LIMIT))
    }
}

impl ExperimentSpec {
    /// `progressDeadlineSeconds`, or 600.
    pub fn progress_deadline_seconds_or_default(&self) -> i32 {
        self.progress_deadline_seconds
            .unwrap_or(PROGRESS_DEADLINE_SECONDS)
    }

    /// `scaleDownDelaySeconds`, or 30.
    pub fn scale_down_delay_seconds_or_default(&self) -> i32 {
        self.scale_down_delay_seconds
            .unwrap_or(SCALE_DOWN_DELAY_SECONDS)
    }
}

impl TemplateSpec {
    /// `replicas`, or 1.
    pub fn replicas_or_default(&self) -> i32 {
        self.replicas.unwrap_or(EXPERIMENT_TEMPLATE_REPLICAS)
    }
}
