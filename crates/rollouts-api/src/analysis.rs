//! The analysis kinds: `AnalysisTemplate`, `ClusterAnalysisTemplate` and `AnalysisRun`, with
//! metrics and their providers.
//!
//! Struct fields are declared in the order of Argo's Go structs.

use std::{borrow::Cow, collections::BTreeMap};

use k8s_openapi::{
    api::batch::v1::JobSpec,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::{
        apis::meta::v1::{ObjectMeta, Time},
        util::intstr::IntOrString,
    },
};
use kube::{
    CustomResource, CustomResourceExt, Resource,
    core::{ClusterResourceScope, object::HasSpec},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{rollout::FieldRef, schema};

/// A reusable analysis: metrics, their arguments and how to judge them.
///
/// AnalysisTemplate and ClusterAnalysisTemplate share this spec.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "AnalysisTemplate",
    namespaced,
    shortname = "at",
    derive = "Default",
    derive = "PartialEq",
    doc = "An AnalysisTemplate describes metrics to measure and how to judge them; Rollouts and Experiments run it as an AnalysisRun.",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time since resource was created"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateSpec {
    /// The metrics to measure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<Metric>>,
    /// Arguments the metrics use as `{{args.<name>}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Argument>>,
    /// Metrics whose failures do not fail the analysis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Vec<DryRun>>,
    /// How many measurements to keep per metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
    /// Other templates whose metrics and arguments are merged into this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templates: Option<Vec<AnalysisTemplateRef>>,
}

/// A cluster-scoped [`AnalysisTemplate`], usable from every namespace.
///
/// Written by hand rather than derived because it shares [`AnalysisTemplateSpec`] with
/// `AnalysisTemplate`; it behaves like a derived custom resource.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAnalysisTemplate {
    /// Standard object metadata.
    #[schemars(skip)]
    pub metadata: ObjectMeta,
    /// The analysis.
    pub spec: AnalysisTemplateSpec,
}

impl ClusterAnalysisTemplate {
    /// A template with the given name and spec.
    pub fn new(name: &str, spec: AnalysisTemplateSpec) -> Self {
        Self {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..Default::default()
            },
            spec,
        }
    }
}

impl Serialize for ClusterAnalysisTemplate {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut obj = ser.serialize_struct("ClusterAnalysisTemplate", 4)?;
        obj.serialize_field("apiVersion", &Self::api_version(&()))?;
        obj.serialize_field("kind", &Self::kind(&()))?;
        obj.serialize_field("metadata", &self.metadata)?;
        obj.serialize_field("spec", &self.spec)?;
        obj.end()
    }
}

impl Resource for ClusterAnalysisTemplate {
    type DynamicType = ();
    type Scope = ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "ClusterAnalysisTemplate".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        crate::GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        crate::VERSION.into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        crate::API_VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "clusteranalysistemplates".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl HasSpec for ClusterAnalysisTemplate {
    type Spec = AnalysisTemplateSpec;
    fn spec(&self) -> &AnalysisTemplateSpec {
        &self.spec
    }
    fn spec_mut(&mut self) -> &mut AnalysisTemplateSpec {
        &mut self.spec
    }
}

impl CustomResourceExt for ClusterAnalysisTemplate {
    /// The AnalysisTemplate definition with cluster scope and its own names.
    fn crd() -> CustomResourceDefinition {
        let mut crd = AnalysisTemplate::crd();
        crd.metadata.name = Some(Self::crd_name().into());
        crd.spec.scope = "Cluster".into();
        let names = &mut crd.spec.names;
        names.kind = "ClusterAnalysisTemplate".into();
        names.plural = "clusteranalysistemplates".into();
        names.singular = Some("clusteranalysistemplate".into());
        names.short_names = Some(Self::shortnames().iter().map(|s| s.to_string()).collect());
        if let Some(schema) = crd
            .spec
            .versions
            .iter_mut()
            .filter_map(|v| v.schema.as_mut())
            .find_map(|s| s.open_api_v3_schema.as_mut())
        {
            schema.description = Some(
                "A ClusterAnalysisTemplate is an AnalysisTemplate that every namespace can use."
                    .into(),
            );
        }
        crd
    }
    fn crd_name() -> &'static str {
        "clusteranalysistemplates.argoproj.io"
    }
    fn api_resource() -> kube::core::ApiResource {
        kube::core::ApiResource::erase::<Self>(&())
    }
    fn shortnames() -> &'static [&'static str] {
        &["cat"]
    }
}

/// One metric: what to query, how often, and when it passes or fails.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    /// Name of the metric, unique within the analysis.
    pub name: String,
    /// Time between measurements (Go duration); unset measures once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Wait before the first measurement (Go duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<String>,
    /// Number of measurements to take; unset or 0 with an interval measures until stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<IntOrString>,
    /// Expression that marks a measurement successful, e.g. `result[0] >= 0.95`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    /// Expression that marks a measurement failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
    /// Failed measurements allowed before the metric fails (default 0; -1: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<IntOrString>,
    /// Inconclusive measurements allowed before the metric is inconclusive (default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inconclusive_limit: Option<IntOrString>,
    /// Errors in a row allowed before the metric errors (default 4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_error_limit: Option<IntOrString>,
    /// Where the measurement comes from: set exactly one provider.
    pub provider: MetricProvider,
    /// Successes in a row after which the metric succeeds early (0: off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_success_limit: Option<IntOrString>,
}

/// A metric excluded from the analysis verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    /// Name of the metric; `.*` selects all.
    pub metric_name: String,
}

/// How many measurements of a metric to keep.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeasurementRetention {
    /// Name of the metric; `.*` selects all.
    pub metric_name: String,
    /// Measurements to keep.
    pub limit: i32,
}

/// When a finished AnalysisRun is deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TtlStrategy {
    /// Seconds after any completion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_after_completion: Option<i32>,
    /// Seconds after a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_after_failure: Option<i32>,
    /// Seconds after a success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_after_success: Option<i32>,
}

/// The source of a metric's measurements: exactly one field is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricProvider {
    /// A Prometheus query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetric>,
    /// A Kayenta canary judgement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kayenta: Option<KayentaMetric>,
    /// An HTTP request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web: Option<WebMetric>,
    /// A Datadog query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datadog: Option<DatadogMetric>,
    /// A Wavefront query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wavefront: Option<WavefrontMetric>,
    /// A New Relic NRQL query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_relic: Option<NewRelicMetric>,
    /// A Kubernetes Job: success or failure of the Job is the measurement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<JobMetric>,
    /// An AWS CloudWatch query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_watch: Option<CloudWatchMetric>,
    /// A Graphite query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graphite: Option<GraphiteMetric>,
    /// An InfluxDB Flux query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub influxdb: Option<InfluxdbMetric>,
    /// An Apache SkyWalking query.
    #[serde(rename = "skywalking", skip_serializing_if = "Option::is_none")]
    pub sky_walking: Option<SkyWalkingMetric>,
    /// Metric plugins: plugin name to its configuration.
    // `default` tells schemars the field is optional despite the custom schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::preserve_unknown_object")]
    pub plugin: Option<BTreeMap<String, serde_json::Value>>,
}

/// Values of AnalysisRun, metric and measurement phases.
pub mod analysis_phase {
    /// Not started.
    pub const PENDING: &str = "Pending";
    /// Measuring.
    pub const RUNNING: &str = "Running";
    /// Passed.
    pub const SUCCESSFUL: &str = "Successful";
    /// Failed.
    pub const FAILED: &str = "Failed";
    /// Could not measure.
    pub const ERROR: &str = "Error";
    /// Neither passed nor failed.
    pub const INCONCLUSIVE: &str = "Inconclusive";

    /// Whether a phase is final (successful, failed, error or inconclusive).
    pub fn is_completed(phase: &str) -> bool {
        matches!(phase, SUCCESSFUL | FAILED | ERROR | INCONCLUSIVE)
    }
}

/// Time range of a Prometheus range query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusRangeQueryArgs {
    /// Start time (an expression such as `now() - duration("5m")`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// End time (an expression such as `now()`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Resolution step (Go duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// A Prometheus query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusMetric {
    /// Base URL of the Prometheus server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// PromQL query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// How to authenticate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    /// Request timeout in seconds (default 30).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Skip TLS certificate verification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Extra HTTP headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<WebMetricHeader>>,
    /// Run a range query over this time range instead of an instant query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range_query: Option<PrometheusRangeQueryArgs>,
}

/// Authentication of a metric request: set one method.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    /// AWS SigV4 signing (Amazon Managed Prometheus).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sigv4: Option<Sigv4Config>,
    /// OAuth2 client credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Config>,
    /// HTTP basic authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
}

/// OAuth2 client-credentials settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Config {
    /// Token endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// Client ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Client secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Scopes to request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

/// AWS SigV4 settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sigv4Config {
    /// AWS region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Credential profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Role to assume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

/// HTTP basic authentication.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// User name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password or access token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A Wavefront query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WavefrontMetric {
    /// Wavefront server address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// A New Relic NRQL query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewRelicMetric {
    /// Name of the secret with the account settings (default `newrelic`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// NRQL query.
    pub query: String,
    /// Query timeout in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

/// A Kubernetes Job whose outcome is the measurement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobMetric {
    /// Labels and annotations of the Job.
    // `default` tells schemars the field is optional despite the custom schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::labels_and_annotations")]
    pub metadata: Option<ObjectMeta>,
    /// The Job spec.
    pub spec: JobSpec,
}

/// A Graphite query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphiteMetric {
    /// Graphite server address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// An InfluxDB Flux query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfluxdbMetric {
    /// Name of the secret with the connection settings (default `influxdb`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Flux query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// An AWS CloudWatch `GetMetricData` query.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetric {
    /// Time range to query, ending now (Go duration, default 5m).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// The queries.
    pub metric_data_queries: Vec<CloudWatchMetricDataQuery>,
}

/// One CloudWatch metric data query.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetricDataQuery {
    /// Query ID, used in expressions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Math expression over other queries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// Label of the result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The metric and statistic to fetch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_stat: Option<CloudWatchMetricStat>,
    /// Period in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<IntOrString>,
    /// Whether this query's values are returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_data: Option<bool>,
}

/// A CloudWatch metric with a statistic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetricStat {
    /// The metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<CloudWatchMetricStatMetric>,
    /// Period in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<IntOrString>,
    /// Statistic, e.g. `Average` or `p99`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stat: Option<String>,
    /// Unit, e.g. `Count`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A CloudWatch metric.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetricStatMetric {
    /// Dimensions of the metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<Vec<CloudWatchMetricStatMetricDimension>>,
    /// Metric name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    /// Metric namespace, e.g. `AWS/ApplicationELB`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A CloudWatch dimension.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetricStatMetricDimension {
    /// Dimension name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Dimension value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The result of an analysis: measurements of metrics from templates and arguments.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "AnalysisRun",
    namespaced,
    status = "AnalysisRunStatus",
    shortname = "ar",
    derive = "Default",
    derive = "PartialEq",
    doc = "An AnalysisRun measures metrics and records a verdict; Rollouts and Experiments create them from templates.",
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.phase",
        description = "AnalysisRun status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time since resource was created"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunSpec {
    /// The metrics to measure.
    pub metrics: Vec<Metric>,
    /// Argument values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Argument>>,
    /// Stops the run; it ends with the results so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminate: Option<bool>,
    /// Metrics whose failures do not fail the analysis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Vec<DryRun>>,
    /// How many measurements to keep per metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
    /// When to delete the run after it ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_strategy: Option<TtlStrategy>,
}

/// An argument of an analysis: a literal value or a reference.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    /// Name of the argument.
    pub name: String,
    /// The value; unset in a template means it must be supplied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Where to take the value from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
}

/// Sources of an analysis argument: set one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    /// A key of a Secret in the run's namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
    /// A field of the object that created the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
}

/// A key of a Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    pub name: String,
    /// Key in the Secret.
    pub key: String,
}

/// Observed state of an AnalysisRun.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStatus {
    /// Phase of the run: `Pending`, `Running`, `Successful`, `Failed`, `Error` or `Inconclusive`.
    pub phase: String,
    /// Explains the phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Results per metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_results: Option<Vec<MetricResult>>,
    /// When the run started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// Counts of metrics by outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_summary: Option<RunSummary>,
    /// Counts of dry-run metrics by outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run_summary: Option<RunSummary>,
    /// When the run ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
}

/// Counts of metrics by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// All metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i32>,
    /// Successful metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub successful: Option<i32>,
    /// Failed metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<i32>,
    /// Inconclusive metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inconclusive: Option<i32>,
    /// Errored metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<i32>,
}

/// Measurements and counters of one metric.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    /// Name of the metric.
    pub name: String,
    /// Phase of the metric (values as for the run).
    pub phase: String,
    /// The latest measurements, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measurements: Option<Vec<Measurement>>,
    /// Explains the phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Measurements taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i32>,
    /// Successful measurements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub successful: Option<i32>,
    /// Failed measurements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<i32>,
    /// Inconclusive measurements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inconclusive: Option<i32>,
    /// Errored measurements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<i32>,
    /// Errors in a row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_error: Option<i32>,
    /// The metric runs in dry-run mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// Provider details, e.g. the resolved query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Successes in a row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_success: Option<i32>,
}

/// One measurement of a metric.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    /// Outcome: `Running`, `Successful`, `Failed`, `Error` or `Inconclusive`.
    pub phase: String,
    /// Explains the outcome, e.g. an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the measurement started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the measurement finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// The measured value, as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Provider details, e.g. a Job name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// When to resume a measurement that is still running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_at: Option<Time>,
}

/// A Kayenta canary judgement.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KayentaMetric {
    /// Kayenta server address.
    pub address: String,
    /// Application name.
    pub application: String,
    /// Canary configuration to use.
    pub canary_config_name: String,
    /// Account of the metrics store.
    pub metrics_account_name: String,
    /// Account of the configuration store.
    pub configuration_account_name: String,
    /// Account of the object store.
    pub storage_account_name: String,
    /// Score thresholds.
    pub threshold: KayentaThreshold,
    /// Control and experiment scopes to compare.
    pub scopes: Vec<KayentaScope>,
    /// Judge the whole lookback window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookback: Option<bool>,
}

/// Kayenta score thresholds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KayentaThreshold {
    /// Score at or above which the canary passes.
    pub pass: i64,
    /// Score below which the canary fails.
    pub marginal: i64,
}

/// A Kayenta scope pair.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KayentaScope {
    /// Name of the scope.
    pub name: String,
    /// The baseline scope.
    pub control_scope: ScopeDetail,
    /// The canary scope.
    pub experiment_scope: ScopeDetail,
}

/// A Kayenta scope.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopeDetail {
    /// Scope expression.
    pub scope: String,
    /// Region.
    pub region: String,
    /// Step in seconds.
    pub step: i64,
    /// Start time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// End time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// An HTTP request whose (JSON) response is the measurement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebMetric {
    /// `GET` (default), `POST` or `PUT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// URL to call.
    pub url: String,
    /// Request headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<WebMetricHeader>>,
    /// Request body as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Request timeout in seconds (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    /// JSONPath selecting the value from the response (default `{$}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
    /// Skip TLS certificate verification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Request body as JSON, instead of `body`.
    // `default` tells schemars the field is optional despite the custom schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::preserve_unknown_object")]
    pub json_body: Option<serde_json::Value>,
    /// How to authenticate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
}

/// An HTTP header.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebMetricHeader {
    /// Header name.
    pub key: String,
    /// Header value.
    pub value: String,
}

/// A Datadog query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatadogMetric {
    /// Time range to query, ending now (Go duration, default 5m).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "5m"))]
    pub interval: Option<String>,
    /// A single query (API v1 or v2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Named queries for a formula (API v2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queries: Option<BTreeMap<String, String>>,
    /// Formula over the named queries (API v2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    /// `v1` (default) or `v2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "v1", "enum" = ["v1", "v2"]))]
    pub api_version: Option<String>,
    /// How v2 points are reduced to one value.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["avg", "min", "max", "sum", "last", "percentile", "mean", "l2norm", "area"]))]
    pub aggregator: Option<String>,
    /// Secret with the API and application keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// Request timeout (Go duration, default 10s).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "10s"))]
    pub request_timeout: Option<String>,
}

/// A Secret holding provider credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Look in the run's namespace instead of the controller's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespaced: Option<bool>,
}

/// An Apache SkyWalking query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkyWalkingMetric {
    /// SkyWalking server address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// GraphQL query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Time range to query, ending now (Go duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

/// A reference to an analysis template.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateRef {
    /// Name of the template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    /// True when the template is a ClusterAnalysisTemplate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_scope: Option<bool>,
}
