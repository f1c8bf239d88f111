//! The `datadog` metric provider: a Datadog metrics query whose value the conditions judge.
//!
//! ```yaml
//! provider:
//!   datadog:
//!     apiVersion: v2                 # v1 (the CRD's default) or v2
//!     interval: 5m                   # look-back window ending now (default 5m)
//!     query: avg:trace.http.request.errors{service:checkout}.as_count()
//!     # or, v2 only, named queries and a formula:
//!     # queries: {a: "sum:errors{*}.as_count()", b: "sum:hits{*}.as_count()"}
//!     # formula: a / b
//!     aggregator: last               # v2: avg|min|max|sum|last|percentile|mean|l2norm|area
//!     requestTimeout: 10s            # HTTP deadline (default 10s)
//!     secretRef: {name: dd-keys, namespaced: true}
//! ```
//!
//! As in Argo, the provider speaks Datadog's HTTP API directly:
//!
//! - v1: `GET <address>/api/v1/query?from=<now-interval>&query=<q>&to=<now>` (Unix seconds); the
//!   value is the last point of the first series.
//! - v2: `POST <address>/api/v2/query/scalar` with a `scalar_request` (milliseconds, the queries
//!   with their aggregator, the formula); the value is the first number of the first number
//!   column, or, when the query is grouped (`by {tag}`), one number per group, with the groups in
//!   the measurement metadata (`groups`, capped at 100: see [`GROUPS_KEY`]).
//!
//! Both send `DD-API-KEY` and `DD-APPLICATION-KEY`. The keys (and optionally the address, default
//! `https://api.datadoghq.com`) come from `secretRef.name` (in the run's namespace when
//! `namespaced`, else the controller's), else from the environment (`DD_API_KEY`, `DD_APP_KEY`,
//! `DD_ADDRESS`, all three set), else from the Secret `datadog` in the controller's namespace;
//! Secret keys are `api-key`, `app-key` and `address`.
//!
//! Every failure is an Error measurement with Argo's message: `received authentication error
//! response code: 403 {"errors":["Forbidden"]}`, `received non 2xx response code: 500 ...`,
//! `Could not parse JSON body: ...`, `There were errors in your query: ...`, `failed to find the
//! credentials for datadog metrics provider`, `Get "https://...": context deadline exceeded
//! (Client.Timeout exceeded while awaiting headers)`. A 429 also says what Datadog's rate-limit
//! headers said (limit, period, remaining, reset), which Argo leaves out.

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use rollouts_api::{AnalysisRun, DatadogMetric};
use rollouts_plugin::{
    FloatResult, MeasureRequest, MetricProvider, MetricProviderPlugin, Observation, PluginError,
    ProviderInit, go, http,
};
use serde_json::Value;

mod response;

/// The registry name: the JSON key of the provider block.
pub const NAME: &str = "datadog";

/// The Secret read when a metric names none and the environment has no keys.
pub const DEFAULT_SECRET: &str = "datadog";

/// The measurement metadata key holding the groups of a grouped v2 query: a JSON list of
/// `{"name": "<tag values joined with ,>", "value": <number>}`. More than 100 groups are sorted
/// by value and only the 50 lowest and 50 highest kept, and [`GROUPS_TRUNCATED_KEY`] is set.
pub const GROUPS_KEY: &str = "groups";

/// Set to `"true"` when [`GROUPS_KEY`] holds only the 50 lowest and 50 highest groups.
pub const GROUPS_TRUNCATED_KEY: &str = "groups_truncated";

/// The address used when neither the Secret nor the environment gives one.
pub const DEFAULT_ADDRESS: &str = "https://api.datadoghq.com";

/// Go's `http.Client.Timeout` error text.
const CLIENT_TIMEOUT: &str =
    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";

/// What can go wrong with a Datadog measurement; each message is the one Argo records.
#[derive(Debug, thiserror::Error)]
enum DatadogError {
    #[error("metric {0:?} has no provider.datadog block")]
    NoBlock(String),
    #[error("secret name is required for namespaced credentials")]
    NamespacedWithoutName,
    #[error("failed to find the credentials for datadog metrics provider")]
    NoCredentials,
    #[error("Must have either a query or queries. Please review the Analysis Template.")]
    NoQuery,
    #[error("Cannot have both a query and queries. Please review the Analysis Template.")]
    QueryAndQueries,
    #[error(
        "Query is empty. API Version v1 only supports using the query parameter in your Analysis Template."
    )]
    V1WithoutQuery,
    #[error("Formula are only valid when queries are set. Please review the Analysis Template.")]
    FormulaWithoutQueries,
    #[error("When multiple queries are provided you must include a formula.")]
    QueriesWithoutFormula,
    #[error("Aggregator is not supported in v1. Please review the Analysis Template.")]
    V1Aggregator,
    #[error("Could not parse the request timeout: {0}. Please review the Analysis Template.")]
    TimeoutSyntax(String),
    #[error(
        "Request timeout must be a positive duration (e.g. 30s). Please review the Analysis Template."
    )]
    TimeoutNotPositive,
    #[error("apiVersion {0:?} is not supported: use v1 or v2")]
    ApiVersion(String),
    #[error("parse {url:?}: {reason}")]
    Address { url: String, reason: String },
    /// The interval did not parse (Go's `time: invalid duration "x"`).
    #[error("{0}")]
    Interval(String),
    #[error("{0}")]
    Client(String),
    /// A failed exchange, worded as Go's `net/http` words it.
    #[error("{0}")]
    Transport(String),
    #[error("Received no bytes in response: {0}")]
    Body(String),
    #[error("received authentication error response code: {code} {body}")]
    Authentication { code: u16, body: String },
    #[error("received non 2xx response code: {code} {body}{rate_limit}")]
    Status {
        code: u16,
        body: String,
        /// For a 429: what the rate-limit headers said, starting with a space; else empty.
        rate_limit: String,
    },
    /// The body is not what the API documents (`Could not parse JSON body: ...`,
    /// `There were errors in your query: ...`, `Datapoint does not have 2 values`).
    #[error("{0}")]
    Response(String),
}

/// Datadog credentials: the two keys and the address (empty: [`DEFAULT_ADDRESS`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The API base URL, e.g. `https://api.datadoghq.eu`; empty for the default.
    pub address: String,
    /// The API key (`DD-API-KEY`).
    pub api_key: String,
    /// The application key (`DD-APPLICATION-KEY`).
    pub app_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys are secrets: never in logs.
        f.debug_struct("Credentials")
            .field("address", &self.address)
            .field("api_key", &"*****")
            .field("app_key", &"*****")
            .finish()
    }
}

impl Credentials {
    /// The credentials the environment gives, as Argo reads them: `DD_API_KEY`, `DD_APP_KEY` and
    /// `DD_ADDRESS` must all be set (the address may be empty), and both keys non-empty.
    pub fn from_env() -> Option<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Credentials::from_env`] over any lookup (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let credentials = Self {
            api_key: lookup("DD_API_KEY")?,
            app_key: lookup("DD_APP_KEY")?,
            address: lookup("DD_ADDRESS")?,
        };
        credentials.complete().then_some(credentials)
    }

    fn complete(&self) -> bool {
        !self.api_key.is_empty() && !self.app_key.is_empty()
    }

    fn from_secret(secret: &Secret) -> Option<Self> {
        let data = secret.data.as_ref()?;
        let text = |key: &str| {
            data.get(key)
                .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        };
        let credentials = Self {
            api_key: text("api-key").unwrap_or_default(),
            app_key: text("app-key").unwrap_or_default(),
            address: text("address").unwrap_or_default(),
        };
        credentials.complete().then_some(credentials)
    }
}

/// The Datadog provider.
pub struct DatadogProvider {
    client: Option<kube::Client>,
    controller_namespace: String,
    env: Option<Credentials>,
}

impl std::fmt::Debug for DatadogProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatadogProvider")
            .field("client", &self.client.is_some())
            .field("controller_namespace", &self.controller_namespace)
            .field("env", &self.env)
            .finish()
    }
}

impl DatadogProvider {
    /// A provider that reads Secrets with `client` (none: every Secret counts as missing), looks
    /// for the default `datadog` Secret in `controller_namespace`, and uses `env` (what
    /// [`Credentials::from_env`] found when the controller started) before that Secret.
    pub fn new(
        client: Option<kube::Client>,
        controller_namespace: impl Into<String>,
        env: Option<Credentials>,
    ) -> Self {
        Self {
            client,
            controller_namespace: controller_namespace.into(),
            env: env.filter(Credentials::complete),
        }
    }

    async fn secret(&self, namespace: &str, name: &str) -> Option<Credentials> {
        let Some(client) = &self.client else {
            tracing::debug!(
                namespace,
                name,
                "no Kubernetes client to read the Datadog secret"
            );
            return None;
        };
        let api = kube::Api::<Secret>::namespaced(client.clone(), namespace);
        match api.get(name).await {
            Ok(secret) => {
                let found = Credentials::from_secret(&secret);
                if found.is_none() {
                    tracing::debug!(namespace, name, "credentials missing in the Datadog secret");
                }
                found
            }
            Err(e) => {
                tracing::debug!(namespace, name, error = %rollouts_plugin::objects::error_message(&e), "reading the Datadog secret");
                None
            }
        }
    }

    /// Argo's credential search (`findCredentials`).
    async fn credentials(
        &self,
        run: &AnalysisRun,
        spec: &DatadogMetric,
    ) -> Result<Credentials, DatadogError> {
        let secret_ref = spec.secret_ref.as_ref();
        let name = secret_ref
            .and_then(|r| r.name.as_deref())
            .filter(|n| !n.is_empty());
        let namespaced = secret_ref.and_then(|r| r.namespaced).unwrap_or(false);
        let found = if namespaced {
            let name = name.ok_or(DatadogError::NamespacedWithoutName)?;
            let namespace = run.metadata.namespace.as_deref().unwrap_or_default();
            self.secret(namespace, name).await
        } else if let Some(name) = name {
            self.secret(&self.controller_namespace, name).await
        } else if let Some(env) = &self.env {
            Some(env.clone())
        } else {
            self.secret(&self.controller_namespace, DEFAULT_SECRET)
                .await
        };
        found.ok_or(DatadogError::NoCredentials)
    }
}

/// The API version of a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// A validated metric: Argo's `validateIncomingProps`.
struct Query<'a> {
    version: Version,
    /// v1: the query; v2: the named queries (a lone `query` is named `query`).
    queries: Vec<(&'a str, &'a str)>,
    formula: Option<&'a str>,
    aggregator: &'a str,
    interval_seconds: i64,
    timeout: Duration,
}

fn validate(spec: &DatadogMetric) -> Result<Query<'_>, DatadogError> {
    let version = match spec.api_version.as_deref().unwrap_or_default() {
        // The CRD defaults apiVersion to v1; an empty value is read the same way.
        "" | "v1" => Version::V1,
        "v2" => Version::V2,
        other => return Err(DatadogError::ApiVersion(other.to_string())),
    };
    let query = spec.query.as_deref().filter(|q| !q.is_empty());
    let queries = spec.queries.as_ref().filter(|q| !q.is_empty());
    let formula = spec.formula.as_deref().filter(|f| !f.is_empty());
    let aggregator = spec.aggregator.as_deref().filter(|a| !a.is_empty());
    if query.is_none() && queries.is_none() {
        return Err(DatadogError::NoQuery);
    }
    if query.is_some() && queries.is_some() {
        return Err(DatadogError::QueryAndQueries);
    }
    if version == Version::V1 && query.is_none() {
        return Err(DatadogError::V1WithoutQuery);
    }
    if formula.is_some() && queries.is_none() {
        return Err(DatadogError::FormulaWithoutQueries);
    }
    if formula.is_none() && queries.is_some_and(|q| q.len() > 1) {
        return Err(DatadogError::QueriesWithoutFormula);
    }
    if version == Version::V1 && aggregator.is_some() {
        return Err(DatadogError::V1Aggregator);
    }
    let timeout = match spec.request_timeout.as_deref().filter(|t| !t.is_empty()) {
        None => Duration::from_secs(10),
        Some(text) => go::parse_duration(text)
            .map_err(DatadogError::TimeoutSyntax)?
            .to_std()
            .filter(|d| !d.is_zero())
            .ok_or(DatadogError::TimeoutNotPositive)?,
    };
    let interval = go::parse_duration(spec.interval.as_deref().unwrap_or("5m"))
        .map_err(DatadogError::Interval)?;
    let queries = match (query, queries) {
        (Some(q), _) => vec![("query", q)],
        (None, Some(map)) => map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        (None, None) => Vec::new(),
    };
    Ok(Query {
        version,
        queries,
        formula,
        aggregator: aggregator.unwrap_or("last"),
        // Go's int64(d.Seconds()): truncated towards zero.
        interval_seconds: interval.seconds() as i64,
        timeout,
    })
}

impl Query<'_> {
    /// The v2 request body, fields in the order Argo's client emits them.
    fn v2_body(&self, now: i64) -> String {
        let text = |s: &str| Value::String(s.to_string()).to_string();
        let queries: Vec<String> = self
            .queries
            .iter()
            .map(|(name, query)| {
                format!(
                    r#"{{"aggregator":{},"data_source":"metrics","name":{},"query":{}}}"#,
                    text(self.aggregator),
                    text(name),
                    text(query)
                )
            })
            .collect();
        let formulas = match self.formula {
            Some(f) => format!(r#"[{{"formula":{}}}]"#, text(f)),
            None => "[]".to_string(),
        };
        format!(
            r#"{{"data":{{"attributes":{{"from":{},"to":{},"queries":[{}],"formulas":{formulas}}},"type":"scalar_request"}}}}"#,
            (now - self.interval_seconds) * 1000,
            now * 1000,
            queries.join(","),
        )
    }

    async fn run(&self, credentials: &Credentials, now: i64) -> Result<Observation, DatadogError> {
        let address = if credentials.address.is_empty() {
            DEFAULT_ADDRESS
        } else {
            credentials.address.as_str()
        };
        let route = match self.version {
            Version::V1 => "/api/v1/query",
            Version::V2 => "/api/v2/query/scalar",
        };
        let target = format!("{address}{route}");
        let mut url = reqwest::Url::parse(&target).map_err(|e| DatadogError::Address {
            url: target.clone(),
            reason: e.to_string(),
        })?;
        let client = http::client(false, Some(self.timeout)).map_err(DatadogError::Client)?;
        let (method, request) = match self.version {
            Version::V1 => {
                let query = self.queries.first().map(|(_, q)| *q).unwrap_or_default();
                // Go's url.Values.Encode: keys sorted.
                url.set_query(Some(&format!(
                    "from={}&query={}&to={now}",
                    now - self.interval_seconds,
                    http::query_escape(query),
                )));
                ("GET", client.get(url.clone()))
            }
            Version::V2 => ("POST", client.post(url.clone()).body(self.v2_body(now))),
        };
        let response = request
            .header("Content-Type", "application/json")
            .header("DD-API-KEY", &credentials.api_key)
            .header("DD-APPLICATION-KEY", &credentials.app_key)
            .send()
            .await
            .map_err(|e| {
                DatadogError::Transport(http::transport_error(
                    method,
                    url.as_str(),
                    &e,
                    CLIENT_TIMEOUT,
                ))
            })?;
        let code = response.status().as_u16();
        let rate_limit = if code == 429 {
            rate_limit_note(response.headers())
        } else {
            String::new()
        };
        let body = response.bytes().await.map_err(|e| {
            DatadogError::Body(http::reason(
                &e,
                "context deadline exceeded (Client.Timeout or context cancellation while reading body)",
            ))
        })?;
        let body_text = String::from_utf8_lossy(&body).into_owned();
        match code {
            200 => {}
            401 | 403 => {
                return Err(DatadogError::Authentication {
                    code,
                    body: body_text,
                });
            }
            _ => {
                return Err(DatadogError::Status {
                    code,
                    body: body_text,
                    rate_limit,
                });
            }
        }
        match self.version {
            Version::V1 => response::v1(&body),
            Version::V2 => response::v2(&body),
        }
        .map_err(DatadogError::Response)
    }
}

/// What Datadog's rate-limit headers say about a 429, e.g. ` (rate limited: limit 100 per 10s,
/// remaining 0, reset in 7s)`; empty when there are none.
fn rate_limit_note(headers: &reqwest::header::HeaderMap) -> String {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut parts = Vec::new();
    if let Some(name) = get("x-ratelimit-name") {
        parts.push(format!("name {name}"));
    }
    match (get("x-ratelimit-limit"), get("x-ratelimit-period")) {
        (Some(limit), Some(period)) => parts.push(format!("limit {limit} per {period}s")),
        (Some(limit), None) => parts.push(format!("limit {limit}")),
        _ => {}
    }
    if let Some(remaining) = get("x-ratelimit-remaining") {
        parts.push(format!("remaining {remaining}"));
    }
    if let Some(reset) = get("x-ratelimit-reset") {
        parts.push(format!("reset in {reset}s"));
    }
    if parts.is_empty() {
        " (rate limited)".to_string()
    } else {
        format!(" (rate limited: {})", parts.join(", "))
    }
}

#[async_trait]
impl MetricProvider for DatadogProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn run(&self, request: MeasureRequest<'_>) -> Observation {
        let outcome = async {
            let spec = request
                .metric
                .provider
                .datadog
                .as_ref()
                .ok_or_else(|| DatadogError::NoBlock(request.metric.name.clone()))?;
            // Argo looks for the credentials before it validates the metric.
            let credentials = self.credentials(request.run, spec).await?;
            let query = validate(spec)?;
            if query.version == Version::V1 {
                tracing::debug!(metric = %request.metric.name, "Datadog API v1 is deprecated by Datadog; consider apiVersion v2");
            }
            query.run(&credentials, request.now.as_second()).await
        }
        .await;
        outcome.unwrap_or_else(|err| {
            tracing::debug!(metric = %request.metric.name, error = %err, "datadog measurement failed");
            Observation::error(err.to_string())
        })
    }
}

fn build(init: &ProviderInit) -> Result<Box<dyn MetricProvider>, PluginError> {
    Ok(Box::new(DatadogProvider::new(
        init.client.clone(),
        init.controller_namespace.clone(),
        Credentials::from_env(),
    )))
}

rollouts_plugin::register_metric_provider!(MetricProviderPlugin {
    name: NAME,
    summary: "a Datadog metrics query, API v1 or v2 (Argo's datadog provider)",
    build,
});

/// The value as the conditions see it and as the measurement records it.
fn float_observation(value: f64) -> Observation {
    Observation::Float {
        result: FloatResult::Scalar(value),
        value: go::format_float(value),
        metadata: BTreeMap::new(),
    }
}

/// No data: `result` is nil, `value` the JSON Argo renders for the empty response.
fn nil_observation(value: String) -> Observation {
    Observation::Value {
        result: Value::Null,
        value,
        metadata: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(v: Value) -> DatadogMetric {
        serde_json::from_value(v).unwrap()
    }

    fn err(v: Value) -> String {
        validate(&spec(v)).map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn metrics_are_validated_as_argo_does() {
        assert_eq!(
            err(json!({})),
            "Must have either a query or queries. Please review the Analysis Template."
        );
        assert_eq!(
            err(json!({"query": "a", "queries": {"a": "x"}})),
            "Cannot have both a query and queries. Please review the Analysis Template."
        );
        assert_eq!(
            err(json!({"apiVersion": "v1", "queries": {"a": "x"}})),
            "Query is empty. API Version v1 only supports using the query parameter in your Analysis Template."
        );
        assert_eq!(
            err(json!({"apiVersion": "v2", "query": "x", "formula": "a"})),
            "Formula are only valid when queries are set. Please review the Analysis Template."
        );
        assert_eq!(
            err(json!({"apiVersion": "v2", "queries": {"a": "x", "b": "y"}})),
            "When multiple queries are provided you must include a formula."
        );
        assert_eq!(
            err(json!({"query": "x", "aggregator": "avg"})),
            "Aggregator is not supported in v1. Please review the Analysis Template."
        );
        assert_eq!(
            err(json!({"query": "x", "requestTimeout": "soon"})),
            r#"Could not parse the request timeout: time: invalid duration "soon". Please review the Analysis Template."#
        );
        assert_eq!(
            err(json!({"query": "x", "requestTimeout": "-1s"})),
            "Request timeout must be a positive duration (e.g. 30s). Please review the Analysis Template."
        );
        assert_eq!(
            err(json!({"query": "x", "interval": "5"})),
            r#"time: missing unit in duration "5""#
        );
        assert_eq!(
            err(json!({"query": "x", "apiVersion": "v3"})),
            r#"apiVersion "v3" is not supported: use v1 or v2"#
        );
        let plain = spec(json!({"query": "x"}));
        let q = validate(&plain).unwrap();
        assert_eq!(q.version, Version::V1);
        assert_eq!(q.interval_seconds, 300);
        assert_eq!(q.timeout, Duration::from_secs(10));
        let tuned = spec(json!({"query": "x", "interval": "90s", "requestTimeout": "1.5s"}));
        let q = validate(&tuned).unwrap();
        assert_eq!(q.interval_seconds, 90);
        assert_eq!(q.timeout, Duration::from_millis(1500));
    }

    #[test]
    fn v2_bodies_keep_argos_field_order() {
        let metric = spec(json!({
            "apiVersion": "v2",
            "queries": {"b": "sum:hits{*}", "a": "sum:errors{service:\"x\"}"},
            "formula": "a/b",
            "aggregator": "avg",
            "interval": "5m",
        }));
        let q = validate(&metric).unwrap();
        assert_eq!(
            q.v2_body(1_599_076_435),
            r#"{"data":{"attributes":{"from":1599076135000,"to":1599076435000,"queries":[{"aggregator":"avg","data_source":"metrics","name":"a","query":"sum:errors{service:\"x\"}"},{"aggregator":"avg","data_source":"metrics","name":"b","query":"sum:hits{*}"}],"formulas":[{"formula":"a/b"}]},"type":"scalar_request"}}"#
        );
        let single = spec(json!({"apiVersion": "v2", "query": "avg:errors{*}"}));
        assert_eq!(
            validate(&single).unwrap().v2_body(1_599_076_435),
            r#"{"data":{"attributes":{"from":1599076135000,"to":1599076435000,"queries":[{"aggregator":"last","data_source":"metrics","name":"query","query":"avg:errors{*}"}],"formulas":[]},"type":"scalar_request"}}"#
        );
    }

    #[test]
    fn credentials_come_from_a_complete_environment_only() {
        let env = |pairs: &[(&str, &str)]| {
            let map: BTreeMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Credentials::from_lookup(move |k| map.get(k).cloned())
        };
        assert_eq!(
            env(&[("DD_API_KEY", "a"), ("DD_APP_KEY", "b"), ("DD_ADDRESS", "")]),
            Some(Credentials {
                address: String::new(),
                api_key: "a".into(),
                app_key: "b".into()
            })
        );
        assert_eq!(env(&[("DD_API_KEY", "a"), ("DD_APP_KEY", "b")]), None);
        assert_eq!(
            env(&[("DD_API_KEY", ""), ("DD_APP_KEY", "b"), ("DD_ADDRESS", "")]),
            None
        );
        let shown = format!(
            "{:?}",
            env(&[
                ("DD_API_KEY", "sekrit"),
                ("DD_APP_KEY", "b"),
                ("DD_ADDRESS", "")
            ])
        );
        assert!(!shown.contains("sekrit"), "{shown}");
    }

    #[test]
    fn rate_limit_headers_are_summarised() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(rate_limit_note(&headers), " (rate limited)");
        headers.insert("X-RateLimit-Limit", "100".parse().unwrap());
        headers.insert("X-RateLimit-Period", "10".parse().unwrap());
        headers.insert("X-RateLimit-Remaining", "0".parse().unwrap());
        headers.insert("X-RateLimit-Reset", "7".parse().unwrap());
        assert_eq!(
            rate_limit_note(&headers),
            " (rate limited: limit 100 per 10s, remaining 0, reset in 7s)"
        );
    }
}
