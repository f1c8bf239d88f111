//! The `prometheus` metric provider: a PromQL query whose result the conditions judge.
//!
//! ```yaml
//! provider:
//!   prometheus:
//!     address: http://prometheus.monitoring:9090   # else $ARGO_ROLLOUTS_PROMETHEUS_ADDRESS
//!     query: sum(rate(http_requests_total{code!~"5.."}[5m])) / sum(rate(http_requests_total[5m]))
//!     timeout: 30                                   # seconds, the default; not negative
//!     insecure: false                               # skip TLS verification
//!     headers: [{key: X-Scope-OrgID, value: team-a}]
//!     rangeQuery: {start: 'now() - duration("10m")', end: 'now()', step: 1m}
//!     authentication:
//!       basicAuth: {username: ..., password: ...}
//!       oauth2: {tokenUrl: ..., clientId: ..., clientSecret: ..., scopes: [...]}
//! ```
//!
//! The provider speaks Prometheus' HTTP API as Argo's client (client_golang) does: an instant
//! query is `POST /api/v1/query` with the form `query=...&time=<now>`, a range query
//! `POST /api/v1/query_range` with `start`, `end` and `step`, and a 403, 405 or 501 answer is
//! retried once as a GET with the same parameters in the URL.
//!
//! What the conditions see (`result`) and what the measurement records (`value`), as in Argo:
//!
//! | result type | `result` | `value` |
//! |---|---|---|
//! | scalar | the float | `0.98`, `NaN`, `+Inf` |
//! | vector | one float per sample, labels dropped | `[0.98,0.5]` |
//! | matrix (range query) | every point of every series, flattened | `[1,2,NaN]` |
//!
//! Errors carry client_golang's and Argo's wording: `bad_data: parse error ...`,
//! `server_error: server error: 503`, `Post "http://...": dial tcp ...: connection refused`,
//! `prometheus address is not configured`. Server warnings are kept in the measurement metadata
//! (`warnings: "w1", "w2"`), and the metric result records the query
//! (`ResolvedPrometheusQuery`).
//!
//! SigV4 (Amazon Managed Prometheus, an `aps-workspaces` address with an `authentication.sigv4`
//! block) is not supported in this build: such a measurement is an Error that says so.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use jiff::Timestamp;
use rollouts_api::{Metric, PrometheusMetric};
use rollouts_plugin::{
    FloatResult, MeasureRequest, MetricProvider, MetricProviderPlugin, Observation, PluginError,
    ProviderInit, go, http,
};
use serde_json::Value;

/// The registry name: the JSON key of the provider block.
pub const NAME: &str = "prometheus";

/// The environment variable that gives the address when a metric has none.
pub const ADDRESS_ENV: &str = "ARGO_ROLLOUTS_PROMETHEUS_ADDRESS";

/// The metric-result metadata key holding the query.
pub const RESOLVED_QUERY_KEY: &str = "ResolvedPrometheusQuery";

/// What can go wrong with a Prometheus measurement; each message is the one Argo records.
#[derive(Debug, thiserror::Error)]
enum PromError {
    #[error("metric {0:?} has no provider.prometheus block")]
    NoBlock(String),
    #[error("prometheus address is not is url format")]
    AddressFormat,
    #[error("prometheus address is not configured")]
    NoAddress,
    #[error("sigv4 authentication (Amazon Managed Prometheus) is not supported in this build")]
    Sigv4,
    #[error("missing mandatory parameter in metric for OAuth2 setup")]
    OAuth2Incomplete,
    #[error("missing mandatory parameter in metric for BasicAuth setup")]
    BasicAuthIncomplete,
    #[error("prometheus timeout should not be negative")]
    NegativeTimeout,
    #[error("failed to parse rangeQuery.{field} as time: {message}")]
    RangeTime {
        field: &'static str,
        message: String,
    },
    #[error("failed to parse rangeQuery.step as duration: {0}")]
    RangeStep(String),
    #[error("{0}")]
    Client(String),
    /// A failed exchange or an API error, already worded as client_golang words it.
    #[error("{0}")]
    Api(String),
}

/// The Prometheus provider.
#[derive(Debug, Default)]
pub struct PrometheusProvider {
    /// The address used when a metric has none (`$ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`).
    default_address: Option<String>,
}

impl PrometheusProvider {
    /// A provider whose default address is `default_address` (what the registration reads from
    /// `ARGO_ROLLOUTS_PROMETHEUS_ADDRESS` when the controller starts).
    pub fn new(default_address: Option<String>) -> Self {
        Self {
            default_address: default_address.filter(|a| !a.is_empty()),
        }
    }
}

fn is_url(text: &str) -> bool {
    reqwest::Url::parse(text)
        .is_ok_and(|u| !u.scheme().is_empty() && u.host_str().is_some_and(|h| !h.is_empty()))
}

/// Everything a measurement needs, validated in Argo's order (address, authentication, timeout).
struct Query<'a> {
    base: reqwest::Url,
    spec: &'a PrometheusMetric,
    timeout: Duration,
    basic: Option<(&'a str, &'a str)>,
    oauth2: Option<http::ClientCredentials<'a>>,
}

impl PrometheusProvider {
    fn prepare<'a>(&self, spec: &'a PrometheusMetric) -> Result<Query<'a>, PromError> {
        let address = match spec.address.as_deref().filter(|a| !a.is_empty()) {
            Some(address) => address,
            None => self
                .default_address
                .as_deref()
                .ok_or(PromError::NoAddress)?,
        };
        if !is_url(address) {
            return Err(PromError::AddressFormat);
        }
        let base = reqwest::Url::parse(address).map_err(|_| PromError::AddressFormat)?;
        let auth = spec.authentication.as_ref();
        let sigv4 = auth.and_then(|a| a.sigv4.as_ref()).filter(|s| {
            s.region.as_deref().is_some_and(|v| !v.is_empty())
                || s.profile.as_deref().is_some_and(|v| !v.is_empty())
                || s.role_arn.as_deref().is_some_and(|v| !v.is_empty())
        });
        if address.contains("aps-workspaces") && sigv4.is_some() {
            return Err(PromError::Sigv4);
        }
        let oauth2 = match auth
            .and_then(|a| a.oauth2.as_ref())
            .filter(|o| !o.token_url.as_deref().unwrap_or_default().is_empty())
        {
            Some(o) => {
                let client_id = o.client_id.as_deref().unwrap_or_default();
                let client_secret = o.client_secret.as_deref().unwrap_or_default();
                if client_id.is_empty() || client_secret.is_empty() {
                    return Err(PromError::OAuth2Incomplete);
                }
                Some(http::ClientCredentials {
                    token_url: o.token_url.as_deref().unwrap_or_default(),
                    client_id,
                    client_secret,
                    scopes: o.scopes.as_deref().unwrap_or_default(),
                })
            }
            None => None,
        };
        let basic = match auth.and_then(|a| a.basic_auth.as_ref()) {
            Some(b) => {
                let user = b.username.as_deref().unwrap_or_default();
                let password = b.password.as_deref().unwrap_or_default();
                match (user.is_empty(), password.is_empty()) {
                    (true, true) => None,
                    (false, false) => Some((user, password)),
                    _ => return Err(PromError::BasicAuthIncomplete),
                }
            }
            None => None,
        };
        let timeout = match spec.timeout {
            None => Duration::from_secs(30),
            Some(seconds) if seconds < 0 => return Err(PromError::NegativeTimeout),
            Some(seconds) => Duration::from_secs(seconds.unsigned_abs()),
        };
        Ok(Query {
            base,
            spec,
            timeout,
            basic,
            oauth2,
        })
    }
}

/// client_golang's `formatTime`: Unix seconds with the fraction, Go's shortest float text.
fn format_time(t: Timestamp) -> String {
    go::format_float(t.as_second() as f64 + f64::from(t.subsec_nanosecond()) / 1e9)
}

/// The endpoint URL: the address' path (without trailing slashes) joined with `endpoint`.
fn endpoint(base: &reqwest::Url, endpoint: &str) -> reqwest::Url {
    let mut url = base.clone();
    let joined = format!("{}/{endpoint}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url
}

/// The body form: Go's `url.Values.Encode`, keys sorted.
fn encode(mut pairs: Vec<(&str, String)>) -> String {
    pairs.sort_by_key(|(k, _)| *k);
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", http::query_escape(k), http::query_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Go's `encoding/json` wording for the commonest decoding failures.
fn json_error(body: &[u8], error: &serde_json::Error) -> String {
    let trimmed = body.trim_ascii();
    match trimmed.first() {
        None => "unexpected end of JSON input".to_string(),
        Some(&c) if !b"{[\"-0123456789tfn".contains(&c) => {
            format!(
                "invalid character {:?} looking for beginning of value",
                char::from(c)
            )
        }
        _ => error.to_string(),
    }
}

/// A sample value (`"0.98"`, `"NaN"`, `"+Inf"`) as Go's `strconv.ParseFloat` reads it.
fn sample_value(v: &Value) -> Result<f64, String> {
    let text = v
        .as_str()
        .ok_or_else(|| format!("sample value {v} is not a string"))?;
    text.parse::<f64>()
        .map_err(|_| format!("strconv.ParseFloat: parsing {text:?}: invalid syntax"))
}

/// `[timestamp, "value"]` → the value.
fn pair_value(pair: &Value) -> Result<f64, String> {
    match pair.as_array().map(Vec::as_slice) {
        Some([_, value]) => sample_value(value),
        _ => Err(format!("sample pair {pair} is not [timestamp, \"value\"]")),
    }
}

/// Decodes `data` into the provider's result, as client_golang's `queryResult` and Argo's
/// `processResponse` do.
fn decode(data: &Value) -> Result<(FloatResult, String), String> {
    let kind = data
        .get("resultType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let result = data.get("result").unwrap_or(&Value::Null);
    let list = |what: &str| {
        result.as_array().ok_or_else(|| {
            format!("json: cannot unmarshal {result} into Go value of type model.{what}")
        })
    };
    let render = |values: &[f64]| {
        let parts: Vec<String> = values.iter().map(|v| go::format_float(*v)).collect();
        format!("[{}]", parts.join(","))
    };
    match kind {
        "scalar" => {
            let value = pair_value(result)?;
            Ok((FloatResult::Scalar(value), go::format_float(value)))
        }
        "vector" => {
            let mut values = Vec::new();
            for sample in list("Vector")? {
                // A native-histogram sample has no float value; Argo reads it as 0.
                values.push(match sample.get("value") {
                    Some(pair) => pair_value(pair)?,
                    None => 0.0,
                });
            }
            let text = render(&values);
            Ok((FloatResult::Vector(values), text))
        }
        "matrix" => {
            let mut values = Vec::new();
            for series in list("Matrix")? {
                for pair in series
                    .get("values")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    values.push(pair_value(pair)?);
                }
            }
            let text = render(&values);
            Ok((FloatResult::Vector(values), text))
        }
        other => Err(format!("unexpected value type {other:?}")),
    }
}

/// The `warnings` metadata: `"w1", "w2"`.
fn warnings_metadata(envelope: &Value) -> BTreeMap<String, String> {
    let warnings: Vec<String> = envelope
        .get("warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|w| {
            format!(
                "\"{}\"",
                w.as_str().map_or_else(|| w.to_string(), str::to_string)
            )
        })
        .collect();
    if warnings.is_empty() {
        BTreeMap::new()
    } else {
        BTreeMap::from([("warnings".to_string(), warnings.join(", "))])
    }
}

impl Query<'_> {
    /// The form for this query at `now`.
    fn form(&self, now: Timestamp) -> Result<(&'static str, String), PromError> {
        let query = self.spec.query.clone().unwrap_or_default();
        let Some(range) = &self.spec.range_query else {
            return Ok((
                "api/v1/query",
                encode(vec![("query", query), ("time", format_time(now))]),
            ));
        };
        let time = |field: &'static str, text: &Option<String>| {
            rollouts_plugin::evaluate_time(text.as_deref().unwrap_or_default(), now)
                .map_err(|message| PromError::RangeTime { field, message })
        };
        let start = time("start", &range.start)?;
        let end = time("end", &range.end)?;
        let step = go::parse_duration(range.step.as_deref().unwrap_or_default())
            .map_err(PromError::RangeStep)?;
        Ok((
            "api/v1/query_range",
            encode(vec![
                ("query", query),
                ("start", format_time(start)),
                ("end", format_time(end)),
                ("step", go::format_float(step.seconds())),
            ]),
        ))
    }

    async fn run(&self, now: Timestamp) -> Result<Observation, PromError> {
        let (path, form) = self.form(now)?;
        let deadline = Instant::now() + self.timeout;
        let client =
            http::client(self.spec.insecure.unwrap_or(false), None).map_err(PromError::Client)?;
        let url = endpoint(&self.base, path);
        let authorization = match self.oauth2 {
            Some(credentials) => Some(
                tokio::time::timeout_at(deadline.into(), http::fetch_token(&client, credentials))
                    .await
                    .unwrap_or_else(|_| Err("context deadline exceeded".to_string()))
                    .map_err(|e| PromError::Api(format!("Post {:?}: {e}", url.as_str())))?,
            ),
            None => None,
        };
        let send = |method: reqwest::Method| {
            let mut target = url.clone();
            let mut request = if method == reqwest::Method::GET {
                target.set_query(Some(&form));
                client.get(target.clone())
            } else {
                client
                    .post(target.clone())
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(form.clone())
            };
            if let Some((user, password)) = self.basic {
                request = request.basic_auth(user, Some(password));
            }
            if let Some(value) = &authorization {
                request = request.header("Authorization", value);
            }
            for header in self.spec.headers.iter().flatten() {
                request = request.header(header.key.as_str(), header.value.as_str());
            }
            let op = if method == reqwest::Method::GET {
                "GET"
            } else {
                "POST"
            };
            async move {
                match tokio::time::timeout_at(deadline.into(), request.send()).await {
                    Ok(Ok(response)) => Ok(response),
                    Ok(Err(e)) => Err(PromError::Api(http::transport_error(
                        op,
                        target.as_str(),
                        &e,
                        "context deadline exceeded",
                    ))),
                    Err(_) => Err(PromError::Api(format!(
                        "{} {:?}: context deadline exceeded",
                        if op == "GET" { "Get" } else { "Post" },
                        target.as_str()
                    ))),
                }
            }
        };
        let mut response = send(reqwest::Method::POST).await?;
        if matches!(response.status().as_u16(), 403 | 405 | 501) {
            response = send(reqwest::Method::GET).await?;
        }
        let code = response.status().as_u16();
        let api_error = code == 400 || code == 422;
        if code / 100 != 2 && !api_error {
            return Err(PromError::Api(match code / 100 {
                4 => format!("client_error: client error: {code}"),
                5 => format!("server_error: server error: {code}"),
                _ => format!("bad_response: bad response code {code}"),
            }));
        }
        let body = match tokio::time::timeout_at(deadline.into(), response.bytes()).await {
            Ok(Ok(body)) => body,
            Ok(Err(e)) => {
                return Err(PromError::Api(http::reason(
                    &e,
                    "context deadline exceeded",
                )));
            }
            Err(_) => return Err(PromError::Api("context deadline exceeded".into())),
        };
        let envelope: Value = if code == 204 {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .map_err(|e| PromError::Api(format!("bad_response: {}", json_error(&body, &e))))?
        };
        let status = envelope
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if status == "error" {
            let text = |key: &str| {
                envelope
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            return Err(PromError::Api(format!(
                "{}: {}",
                text("errorType"),
                text("error")
            )));
        }
        if api_error && status == "success" {
            return Err(PromError::Api(
                "bad_response: inconsistent body for response code".into(),
            ));
        }
        let data = match envelope.get("data") {
            Some(data) if !data.is_null() => data,
            _ => return Err(PromError::Api("unexpected end of JSON input".into())),
        };
        let (result, value) = decode(data).map_err(PromError::Api)?;
        Ok(Observation::Float {
            result,
            value,
            metadata: warnings_metadata(&envelope),
        })
    }
}

#[async_trait]
impl MetricProvider for PrometheusProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn run(&self, request: MeasureRequest<'_>) -> Observation {
        let outcome = match request.metric.provider.prometheus.as_ref() {
            None => Err(PromError::NoBlock(request.metric.name.clone())),
            Some(spec) => match self.prepare(spec) {
                Ok(query) => query.run(request.now).await,
                Err(e) => Err(e),
            },
        };
        outcome.unwrap_or_else(|err| {
            tracing::debug!(metric = %request.metric.name, error = %err, "prometheus measurement failed");
            Observation::error(err.to_string())
        })
    }

    fn metadata(&self, metric: &Metric) -> BTreeMap<String, String> {
        metric
            .provider
            .prometheus
            .as_ref()
            .and_then(|p| p.query.clone())
            .filter(|q| !q.is_empty())
            .map(|q| BTreeMap::from([(RESOLVED_QUERY_KEY.to_string(), q)]))
            .unwrap_or_default()
    }
}

fn build(_init: &ProviderInit) -> Result<Box<dyn MetricProvider>, PluginError> {
    Ok(Box::new(PrometheusProvider::new(
        std::env::var(ADDRESS_ENV).ok(),
    )))
}

rollouts_plugin::register_metric_provider!(MetricProviderPlugin {
    name: NAME,
    summary: "a PromQL instant or range query (Argo's prometheus provider)",
    build,
});

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn results_decode_and_render_as_argo_does() {
        let scalar = json!({"resultType": "scalar", "result": [1700000000.123, "0.98"]});
        assert_eq!(
            decode(&scalar).unwrap(),
            (FloatResult::Scalar(0.98), "0.98".into())
        );
        let vector = json!({"resultType": "vector", "result": [
            {"metric": {"pod": "a"}, "value": [1700000000, "10"]},
            {"metric": {"pod": "b"}, "value": [1700000000, "+Inf"]}
        ]});
        let (result, text) = decode(&vector).unwrap();
        assert_eq!(text, "[10,+Inf]");
        assert_eq!(result, FloatResult::Vector(vec![10.0, f64::INFINITY]));
        let matrix = json!({"resultType": "matrix", "result": [
            {"metric": {}, "values": [[1700000000, "1"], [1700000060, "NaN"]]},
            {"metric": {}, "values": [[1700000000, "2.5"]]}
        ]});
        let (result, text) = decode(&matrix).unwrap();
        assert_eq!(text, "[1,NaN,2.5]");
        let FloatResult::Vector(values) = result else {
            panic!("a matrix is a list")
        };
        assert_eq!(values.len(), 3);
        assert!(values[1].is_nan());
        assert_eq!(
            decode(&json!({"resultType": "vector", "result": []})).unwrap(),
            (FloatResult::Vector(vec![]), "[]".into())
        );
        assert_eq!(
            decode(&json!({"resultType": "string", "result": [1, "x"]})).unwrap_err(),
            r#"unexpected value type "string""#
        );
        assert_eq!(
            decode(&json!({"resultType": "scalar", "result": [1, "x"]})).unwrap_err(),
            r#"strconv.ParseFloat: parsing "x": invalid syntax"#
        );
    }

    #[test]
    fn times_forms_and_urls_follow_client_golang() {
        let t = Timestamp::new(1_700_000_000, 500_000_000).unwrap();
        assert_eq!(format_time(t), "1700000000.5");
        assert_eq!(
            format_time(Timestamp::from_second(1_700_000_000).unwrap()),
            "1700000000"
        );
        assert_eq!(
            encode(vec![
                ("time", "1.5".into()),
                ("query", "sum(up{job=\"a b\"})".into())
            ]),
            "query=sum%28up%7Bjob%3D%22a+b%22%7D%29&time=1.5"
        );
        let base = reqwest::Url::parse("http://127.0.0.1:9090/prom/").unwrap();
        assert_eq!(
            endpoint(&base, "api/v1/query").as_str(),
            "http://127.0.0.1:9090/prom/api/v1/query"
        );
        let bare = reqwest::Url::parse("http://127.0.0.1:9090").unwrap();
        assert_eq!(
            endpoint(&bare, "api/v1/query").as_str(),
            "http://127.0.0.1:9090/api/v1/query"
        );
    }

    #[test]
    fn json_errors_read_like_go() {
        let err = serde_json::from_slice::<Value>(b"<html>").unwrap_err();
        assert_eq!(
            json_error(b"<html>", &err),
            "invalid character '<' looking for beginning of value"
        );
        let err = serde_json::from_slice::<Value>(b"  ").unwrap_err();
        assert_eq!(json_error(b"  ", &err), "unexpected end of JSON input");
    }

    #[test]
    fn warnings_are_quoted_and_joined() {
        let envelope = json!({"warnings": ["w1", "w2"]});
        assert_eq!(warnings_metadata(&envelope)["warnings"], r#""w1", "w2""#);
        assert!(warnings_metadata(&json!({})).is_empty());
    }

    #[test]
    fn addresses_and_settings_are_checked_in_argos_order() {
        let spec = |v: Value| -> PrometheusMetric { serde_json::from_value(v).unwrap() };
        let none = PrometheusProvider::new(None);
        let err = |p: &PrometheusProvider, v: Value| {
            p.prepare(&spec(v)).map(|_| ()).unwrap_err().to_string()
        };
        assert_eq!(
            err(&none, json!({"query": "up"})),
            "prometheus address is not configured"
        );
        assert_eq!(
            err(&none, json!({"address": "localhost:9090"})),
            "prometheus address is not is url format"
        );
        let env = PrometheusProvider::new(Some("not a url".into()));
        assert_eq!(
            err(&env, json!({})),
            "prometheus address is not is url format"
        );
        let env = PrometheusProvider::new(Some("http://127.0.0.1:9090".into()));
        assert!(env.prepare(&spec(json!({}))).is_ok());
        assert_eq!(
            err(&env, json!({"timeout": -1})),
            "prometheus timeout should not be negative"
        );
        assert_eq!(
            err(
                &env,
                json!({"authentication": {"oauth2": {"tokenUrl": "http://t", "clientSecret": "s"}}})
            ),
            "missing mandatory parameter in metric for OAuth2 setup"
        );
        assert_eq!(
            err(
                &env,
                json!({"authentication": {"basicAuth": {"username": "u"}}})
            ),
            "missing mandatory parameter in metric for BasicAuth setup"
        );
        assert_eq!(
            err(
                &none,
                json!({
                    "address": "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1",
                    "authentication": {"sigv4": {"region": "eu-west-1"}}
                })
            ),
            "sigv4 authentication (Amazon Managed Prometheus) is not supported in this build"
        );
        // An empty sigv4 block is ignored, as in Argo.
        assert!(
            none.prepare(&spec(json!({
                "address": "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1",
                "authentication": {"sigv4": {}}
            })))
            .is_ok()
        );
        assert_eq!(
            none.prepare(&spec(json!({"address": "http://a"})))
                .unwrap()
                .timeout,
            Duration::from_secs(30)
        );
    }
}
