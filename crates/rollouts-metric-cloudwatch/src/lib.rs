//! The `cloudWatch` metric provider: one AWS CloudWatch `GetMetricData` call per measurement.
//!
//! ```yaml
//! provider:
//!   cloudWatch:
//!     interval: 10m        # the window, ending now (a Go duration; default 5m)
//!     metricDataQueries:
//!     - id: errors
//!       expression: errors5xx / requests
//!     - id: errors5xx
//!       returnData: false
//!       metricStat:
//!         metric:
//!           namespace: AWS/ApplicationELB
//!           metricName: HTTPCode_Target_5XX_Count
//!           dimensions: [{name: LoadBalancer, value: app/shop/0123456789abcdef}]
//!         period: 60
//!         stat: Sum
//! ```
//!
//! The call uses AWS's JSON 1.0 protocol: `POST /` to `https://monitoring.<region>.amazonaws.com`
//! with `X-Amz-Target: GraniteServiceVersion20100801.GetMetricData`, signed with SigV4 (service
//! `monitoring`) by static credentials from the standard environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; region `AWS_REGION` or
//! `AWS_DEFAULT_REGION`; endpoint override `AWS_ENDPOINT_URL_CLOUDWATCH` or `AWS_ENDPOINT_URL`).
//!
//! As in Argo, the result the conditions see is the list of `MetricDataResults` with the SDK's
//! field names (`result[0].Values`, `result[0].Label`), the measurement value is Go's `%+v` of
//! the values (`[[0.1 0.2] [0.3]]`), and the response `Messages` go to the metadata key
//! `messages`. Errors read as the AWS SDK for Go words them (`operation error CloudWatch:
//! GetMetricData, https response error StatusCode: 400, RequestID: ..., api error
//! InvalidParameterValue: ...`), after its standard retries (3 attempts) on throttling, 5xx and
//! connection errors.

pub mod sigv4;

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rollouts_api::{CloudWatchMetricDataQuery, Metric};
use rollouts_plugin::{
    MeasureRequest, MetricProvider, MetricProviderPlugin, Observation, PluginError, ProviderInit,
    go, http,
};
use serde_json::{Map, Value, json};

pub use sigv4::Credentials;

/// The registry name: the JSON key of the provider block.
pub const NAME: &str = "cloudWatch";

/// The JSON 1.0 operation target of `GetMetricData`.
pub const TARGET: &str = "GraniteServiceVersion20100801.GetMetricData";

/// The SigV4 service name of CloudWatch.
pub const SERVICE: &str = "monitoring";

/// The HTTP deadline per attempt (Argo has none; a stuck connection would stall the metric).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The window when the metric sets no `interval`.
const DEFAULT_INTERVAL: SignedDuration = SignedDuration::from_mins(5);

/// The prefix of every error, as the AWS SDK for Go words an operation error.
const OPERATION: &str = "operation error CloudWatch: GetMetricData";

/// Go's `http.Client` deadline text.
const CLIENT_TIMEOUT: &str =
    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";

/// Error codes the SDK's standard retryer retries.
const THROTTLING: [&str; 14] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// What can go wrong with a CloudWatch measurement.
#[derive(Debug, thiserror::Error)]
enum CloudWatchError {
    #[error("metric {0:?} has no provider.cloudWatch block")]
    NoBlock(String),
    /// `interval` is not a Go duration.
    #[error("{0}")]
    Interval(String),
    #[error("cloudWatch interval {0:?} puts the window start out of range")]
    Window(String),
    #[error(
        "{OPERATION}, failed to resolve service endpoint, an AWS region is required, but was not found"
    )]
    NoRegion,
    #[error(
        "{OPERATION}, failed to sign request: failed to retrieve credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"
    )]
    NoCredentials,
    #[error("{OPERATION}, resolve endpoint: invalid endpoint URL {0:?}")]
    Endpoint(String),
    #[error("{0}")]
    Client(String),
    /// A failed call, worded as the AWS SDK for Go words it (after the `OPERATION, ` prefix).
    #[error("{OPERATION}, {0}")]
    Call(String),
}

/// Where and as whom to call CloudWatch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsConfig {
    /// Static credentials; `None` makes every measurement an Error.
    pub credentials: Option<Credentials>,
    /// The region (`eu-west-1`).
    pub region: Option<String>,
    /// A base URL over the region's endpoint (tests, VPC endpoints, LocalStack).
    pub endpoint: Option<String>,
}

impl AwsConfig {
    /// The configuration of the standard AWS environment variables.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The configuration that `lookup` (an environment) gives; empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let credentials = match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
                access_key_id,
                secret_access_key,
                session_token: get("AWS_SESSION_TOKEN"),
            }),
            _ => None,
        };
        Self {
            credentials,
            region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
            endpoint: get("AWS_ENDPOINT_URL_CLOUDWATCH").or_else(|| get("AWS_ENDPOINT_URL")),
        }
    }

    /// The endpoint for `region`: the override, or the region's public endpoint.
    pub fn endpoint_for(&self, region: &str) -> String {
        match &self.endpoint {
            Some(url) => url.clone(),
            None if region.starts_with("cn-") => {
                format!("https://{SERVICE}.{region}.amazonaws.com.cn")
            }
            None => format!("https://{SERVICE}.{region}.amazonaws.com"),
        }
    }
}

/// The SDK's standard retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all, the first included (the SDK: 3).
    pub max_attempts: u32,
    /// The first back-off; it doubles on each retry.
    pub base: Duration,
    /// The longest back-off (the SDK: 20 s).
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base: Duration::from_secs(1),
            max: Duration::from_secs(20),
        }
    }
}

impl Retry {
    fn backoff(&self, attempt: u32) -> Duration {
        self.base
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.max)
    }
}

/// Go's `IntOrString.IntValue()`: a string that is not a number is 0.
fn int_value(v: &IntOrString) -> i64 {
    match v {
        IntOrString::Int(i) => i64::from(*i),
        IntOrString::String(s) => s.trim().parse::<i32>().map_or(0, i64::from),
    }
}

/// One query in the JSON 1.0 shape, with the fields Argo sets.
fn query_json(q: &CloudWatchMetricDataQuery) -> Value {
    let mut out = Map::new();
    out.insert("Id".into(), json!(q.id.clone().unwrap_or_default()));
    if let Some(e) = &q.expression {
        out.insert("Expression".into(), json!(e));
    }
    if let Some(l) = &q.label {
        out.insert("Label".into(), json!(l));
    }
    if let Some(stat) = &q.metric_stat {
        let metric = stat.metric.clone().unwrap_or_default();
        let mut m = Map::new();
        if let Some(dimensions) = &metric.dimensions {
            let dims: Vec<Value> = dimensions
                .iter()
                .map(|d| {
                    json!({"Name": d.name.clone().unwrap_or_default(),
                           "Value": d.value.clone().unwrap_or_default()})
                })
                .collect();
            m.insert("Dimensions".into(), Value::Array(dims));
        }
        m.insert(
            "MetricName".into(),
            json!(metric.metric_name.unwrap_or_default()),
        );
        if let Some(ns) = metric.namespace {
            m.insert("Namespace".into(), json!(ns));
        }
        let mut s = Map::new();
        s.insert("Metric".into(), Value::Object(m));
        s.insert(
            "Period".into(),
            json!(stat.period.as_ref().map_or(0, int_value)),
        );
        s.insert("Stat".into(), json!(stat.stat.clone().unwrap_or_default()));
        if let Some(unit) = stat.unit.as_ref().filter(|u| !u.is_empty()) {
            s.insert("Unit".into(), json!(unit));
        }
        out.insert("MetricStat".into(), Value::Object(s));
    }
    if let Some(p) = &q.period {
        out.insert("Period".into(), json!(int_value(p)));
    }
    if let Some(r) = q.return_data {
        out.insert("ReturnData".into(), json!(r));
    }
    Value::Object(out)
}

/// Epoch seconds as the JSON protocol sends timestamps (millisecond precision).
fn epoch_seconds(t: Timestamp) -> Value {
    json!(t.as_millisecond() as f64 / 1000.0)
}

/// The `GetMetricData` request body for the window `[start, end]`.
pub fn request_body(
    queries: &[CloudWatchMetricDataQuery],
    start: Timestamp,
    end: Timestamp,
) -> Value {
    json!({
        "StartTime": epoch_seconds(start),
        "EndTime": epoch_seconds(end),
        "MetricDataQueries": queries.iter().map(query_json).collect::<Vec<_>>(),
    })
}

/// Go's `%v` of a `float64`: shortest digits, exponent form below 1e-4 and from 1e6 on.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else {
        format!("{f}")
    }
}

/// Go's `%+v` of `[][]float64`: `[[0.1 0.2] [0.3]]`.
pub fn go_matrix(rows: &[Vec<f64>]) -> String {
    let rows: Vec<String> = rows
        .iter()
        .map(|r| {
            let items: Vec<String> = r.iter().map(|f| go_float(*f)).collect();
            format!("[{}]", items.join(" "))
        })
        .collect();
    format!("[{}]", rows.join(" "))
}

/// `[{Code:X Value:Y}]`, the messages as Go's `%+v` prints them with their strings dereferenced.
fn messages_text(messages: &[Value]) -> String {
    let items: Vec<String> = messages
        .iter()
        .map(|m| {
            let field = |k: &str| {
                m.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("<nil>")
                    .to_string()
            };
            format!("{{Code:{} Value:{}}}", field("Code"), field("Value"))
        })
        .collect();
    format!("[{}]", items.join(" "))
}

/// A decoded `GetMetricDataOutput` as the measurement.
fn observe(output: &Map<String, Value>) -> Result<Observation, String> {
    let results = match output.get("MetricDataResults") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(other) => {
            return Err(format!(
                "failed to decode response body, unexpected JSON type {other}"
            ));
        }
    };
    let mut shaped = Vec::with_capacity(results.len());
    let mut values = Vec::with_capacity(results.len());
    for r in &results {
        let text = |k: &str| {
            r.get(k)
                .and_then(Value::as_str)
                .map_or(Value::Null, |s| json!(s))
        };
        let numbers = |k: &str| -> Vec<f64> {
            r.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        let row = numbers("Values");
        let timestamps: Vec<Value> = numbers("Timestamps")
            .into_iter()
            .map(|s| {
                Timestamp::from_millisecond((s * 1000.0).round() as i64)
                    .map_or(Value::Null, |t| json!(t.to_string()))
            })
            .collect();
        let messages = r.get("Messages").cloned().unwrap_or(json!([]));
        shaped.push(json!({
            "Id": text("Id"),
            "Label": text("Label"),
            "StatusCode": r.get("StatusCode").and_then(Value::as_str).unwrap_or(""),
            "Timestamps": timestamps,
            "Values": row.clone(),
            "Messages": if messages.is_null() { json!([]) } else { messages },
        }));
        values.push(row);
    }
    let mut metadata = BTreeMap::new();
    if let Some(messages) = output
        .get("Messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
    {
        let text = messages_text(messages);
        tracing::warn!(messages = %text, "CloudWatch returned messages");
        metadata.insert("messages".to_string(), text);
    }
    Ok(Observation::Value {
        result: Value::Array(shaped),
        value: go_matrix(&values),
        metadata,
    })
}

/// Go's `encoding/json` wording for a body that is not JSON.
fn json_error(body: &[u8], error: &serde_json::Error) -> String {
    match body.trim_ascii().first() {
        None => "EOF".to_string(),
        Some(&c) if !b"{[\"-0123456789tfn".contains(&c) => format!(
            "invalid character {:?} looking for beginning of value",
            char::from(c)
        ),
        _ => error.to_string(),
    }
}

/// An AWS error answer: the code, the message and whether the SDK retries it.
struct ApiError {
    code: String,
    message: String,
}

impl ApiError {
    fn read(headers: &reqwest::header::HeaderMap, body: &[u8]) -> Self {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let decoded: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let field = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| decoded.get(*n).and_then(Value::as_str))
                .map(str::to_string)
        };
        // `awsQueryCompatible`: the query error code in `x-amzn-query-error` (`Code;Sender`)
        // wins over the JSON type (`com.amazonaws.cloudwatch#InvalidParameterValueException`).
        let clean = |t: String| {
            let t = t.rsplit('#').next().unwrap_or(&t).to_string();
            t.split(':').next().unwrap_or(&t).to_string()
        };
        let code = header("x-amzn-query-error")
            .map(|q| q.split(';').next().unwrap_or_default().to_string())
            .filter(|c| !c.is_empty())
            .or_else(|| field(&["__type", "code", "Code"]).map(clean))
            .or_else(|| header("x-amzn-errortype").map(clean))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "UnknownError".into());
        let message =
            field(&["message", "Message", "errorMessage"]).unwrap_or_else(|| code.clone());
        Self { code, message }
    }

    fn retryable(&self, status: u16) -> bool {
        matches!(status, 429 | 500 | 502 | 503 | 504) || THROTTLING.contains(&self.code.as_str())
    }
}

/// The CloudWatch provider.
#[derive(Clone, Debug)]
pub struct CloudWatchProvider {
    config: AwsConfig,
    timeout: Duration,
    retry: Retry,
}

impl CloudWatchProvider {
    /// A provider calling CloudWatch as `config` says, with the SDK's retries and a 30 s deadline
    /// per attempt.
    pub fn new(config: AwsConfig) -> Self {
        Self {
            config,
            timeout: DEFAULT_TIMEOUT,
            retry: Retry::default(),
        }
    }

    /// This provider with another deadline per attempt.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// This provider with other retries (tests use short waits).
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    async fn query(&self, metric: &Metric, now: Timestamp) -> Result<Observation, CloudWatchError> {
        let spec = metric
            .provider
            .cloud_watch
            .as_ref()
            .ok_or_else(|| CloudWatchError::NoBlock(metric.name.clone()))?;
        let interval = match spec.interval.as_deref().filter(|i| !i.is_empty()) {
            None => DEFAULT_INTERVAL,
            Some(text) => SignedDuration::from_nanos(
                go::parse_duration(text)
                    .map_err(CloudWatchError::Interval)?
                    .0,
            ),
        };
        let start = now
            .checked_sub(interval)
            .map_err(|_| CloudWatchError::Window(spec.interval.clone().unwrap_or_default()))?;
        let region = self
            .config
            .region
            .clone()
            .ok_or(CloudWatchError::NoRegion)?;
        let credentials = self
            .config
            .credentials
            .clone()
            .ok_or(CloudWatchError::NoCredentials)?;
        let endpoint = self.config.endpoint_for(&region);
        let url = reqwest::Url::parse(&endpoint)
            .ok()
            .filter(|u| u.host_str().is_some())
            .ok_or_else(|| CloudWatchError::Endpoint(endpoint.clone()))?;
        let body = request_body(&spec.metric_data_queries, start, now).to_string();
        let (output, prefix) = self
            .call(&url, &region, &credentials, body.as_bytes(), now)
            .await?;
        observe(&output)
            .map_err(|e| CloudWatchError::Call(format!("{prefix}, deserialization failed, {e}")))
    }

    /// One signed `GetMetricData` exchange with the SDK's retries; the decoded output and the
    /// `https response error StatusCode: 200, RequestID: ...` prefix of its errors.
    async fn call(
        &self,
        url: &reqwest::Url,
        region: &str,
        credentials: &Credentials,
        body: &[u8],
        now: Timestamp,
    ) -> Result<(Map<String, Value>, String), CloudWatchError> {
        let client = http::client(false, Some(self.timeout)).map_err(CloudWatchError::Client)?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => String::new(),
        };
        let amz_date = sigv4::amz_date(now);
        let mut headers = vec![
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Host", host.as_str()),
            ("X-Amz-Date", amz_date.as_str()),
            ("X-Amz-Target", TARGET),
        ];
        if let Some(token) = &credentials.session_token {
            headers.push(("X-Amz-Security-Token", token.as_str()));
        }
        let authorization = sigv4::authorization(
            credentials,
            &sigv4::Request {
                method: "POST",
                path: url.path(),
                query: "",
                headers: &headers,
                body,
                amz_date: &amz_date,
                region,
                service: SERVICE,
            },
        );
        let attempts = self.retry.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = client.post(url.clone()).body(body.to_vec());
            for (name, value) in headers.iter().filter(|(n, _)| *n != "Host") {
                request = request.header(*name, *value);
            }
            let sent = request.header("Authorization", &authorization).send().await;
            let (failure, retryable) = match sent {
                Err(e) => (
                    format!(
                        "https response error StatusCode: 0, RequestID: , request send failed, {}",
                        http::transport_error("POST", url.as_str(), &e, CLIENT_TIMEOUT)
                    ),
                    true,
                ),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let request_id = response
                        .headers()
                        .get("x-amzn-requestid")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let headers = response.headers().clone();
                    let prefix = format!(
                        "https response error StatusCode: {status}, RequestID: {request_id}"
                    );
                    match response.bytes().await {
                        Err(e) => (
                            format!(
                                "{prefix}, deserialization failed, failed to read response body, {}",
                                http::reason(&e, CLIENT_TIMEOUT)
                            ),
                            true,
                        ),
                        Ok(bytes) if (200..300).contains(&status) => {
                            if bytes.trim_ascii().is_empty() {
                                return Ok((Map::new(), prefix));
                            }
                            return match serde_json::from_slice::<Value>(&bytes) {
                                Ok(Value::Object(map)) => Ok((map, prefix)),
                                Ok(other) => Err(CloudWatchError::Call(format!(
                                    "{prefix}, deserialization failed, failed to decode response body, unexpected JSON type {other}"
                                ))),
                                Err(e) => Err(CloudWatchError::Call(format!(
                                    "{prefix}, deserialization failed, failed to decode response body, {}",
                                    json_error(&bytes, &e)
                                ))),
                            };
                        }
                        Ok(bytes) => {
                            let error = ApiError::read(&headers, &bytes);
                            (
                                format!("{prefix}, api error {}: {}", error.code, error.message),
                                error.retryable(status),
                            )
                        }
                    }
                }
            };
            if !retryable {
                return Err(CloudWatchError::Call(failure));
            }
            if attempt >= attempts {
                return Err(CloudWatchError::Call(format!(
                    "exceeded maximum number of attempts, {attempts}, {failure}"
                )));
            }
            tracing::debug!(url = %url, attempt, error = %failure, "retrying GetMetricData");
            tokio::time::sleep(self.retry.backoff(attempt - 1)).await;
        }
    }
}

#[async_trait]
impl MetricProvider for CloudWatchProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn run(&self, request: MeasureRequest<'_>) -> Observation {
        self.query(request.metric, request.now)
            .await
            .unwrap_or_else(|err| {
                tracing::debug!(metric = %request.metric.name, error = %err, "cloudWatch measurement failed");
                Observation::error(err.to_string())
            })
    }
}

fn build(_init: &ProviderInit) -> Result<Box<dyn MetricProvider>, PluginError> {
    Ok(Box::new(CloudWatchProvider::new(AwsConfig::from_env())))
}

rollouts_plugin::register_metric_provider!(MetricProviderPlugin {
    name: NAME,
    summary: "AWS CloudWatch GetMetricData queries (Argo's cloudWatch provider)",
    build,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_and_matrices_print_as_go_prints_them() {
        assert_eq!(
            go_matrix(&[
                vec![1e6, 100000.0, 0.0001, 0.00001, 1.5, 123456789.0, 1e21, 0.0],
                vec![]
            ]),
            "[[1e+06 100000 0.0001 1e-05 1.5 1.23456789e+08 1e+21 0] []]"
        );
        assert_eq!(go_matrix(&[]), "[]");
        assert_eq!(go_float(f64::NAN), "NaN");
        assert_eq!(go_float(-2.5), "-2.5");
    }
}
