//! The `influxdb` metric provider: one Flux query per measurement through InfluxDB's v2 query API.
//!
//! ```yaml
//! provider:
//!   influxdb:
//!     profile: influxdb-shop   # the Secret with the connection (default `influxdb`)
//!     query: |
//!       from(bucket: "app") |> range(start: -5m) |> filter(fn: (r) => r._measurement == "errors") |> mean()
//! ```
//!
//! The profile Secret lives in the controller's namespace and holds `authToken`, `org` and
//! `address` (all three required, else `authToken, org, or address not found`).
//!
//! Each measurement is `POST <address>/api/v2/query?org=<org>` with `Authorization: Token
//! <authToken>` and the Flux query as JSON asking for annotated CSV, as `influxdb-client-go` (which
//! Argo uses) sends it. The `_value` of every row of every table is the result, a list
//! (`result[0]`), and the measurement value is Go's `fmt.Sprint` of it (`[0.97 1.5]`). No row is
//! an Error `no results returned from flux query`; reading stops silently at the first CSV or
//! typing problem (and at a Flux error table), as in Argo. Non-2xx answers are Errors worded as
//! the Go client words them (`unauthorized: unauthorized access`); the HTTP deadline is the
//! client's 20 s.

mod csv;

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use reqwest::{Url, header::HeaderMap};
use rollouts_api::Metric;
use rollouts_plugin::{
    FloatResult, MeasureRequest, MetricProvider, MetricProviderPlugin, Observation, PluginError,
    ProviderInit, http,
};
use serde_json::{Value, json};

pub use csv::{FluxValue, go_sprint, read_values};

/// The registry name: the JSON key of the provider block.
pub const NAME: &str = "influxdb";

/// The Secret read when a metric names no `profile`.
pub const DEFAULT_PROFILE: &str = "influxdb";

/// The HTTP deadline of `influxdb-client-go` (it fires before Argo's 30 s query context).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Go's `http.Client.Timeout` error text while waiting for the answer.
const CLIENT_TIMEOUT: &str =
    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";

/// Go's `http.Client.Timeout` error text while reading the body.
const BODY_TIMEOUT: &str =
    "context deadline exceeded (Client.Timeout or context cancellation while reading body)";

/// What can go wrong with an InfluxDB measurement; each message is the one Argo records.
#[derive(Debug, thiserror::Error)]
enum InfluxError {
    #[error("metric {0:?} has no provider.influxdb block")]
    NoBlock(String),
    /// Reading the profile Secret failed (`secrets "influxdb" not found`).
    #[error("{0}")]
    Secret(String),
    #[error("authToken, org, or address not found")]
    Incomplete,
    /// The address does not make a URL (`parse "<address>/api/v2": ...`).
    #[error("{0}")]
    Address(String),
    #[error("{0}")]
    Client(String),
    /// The exchange failed (`Post "<url>": <reason>`).
    #[error("{0}")]
    Transport(String),
    /// A non-2xx answer, worded as `influxdb-client-go` words it.
    #[error("{0}")]
    Status(String),
    #[error("no results returned from flux query")]
    NoResults,
}

/// The InfluxDB provider.
pub struct InfluxdbProvider {
    client: Option<kube::Client>,
    controller_namespace: String,
    timeout: Duration,
}

impl std::fmt::Debug for InfluxdbProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxdbProvider")
            .field("client", &self.client.is_some())
            .field("controller_namespace", &self.controller_namespace)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The connection settings of a profile Secret.
struct Profile {
    token: String,
    org: String,
    address: String,
}

impl Profile {
    fn from_secret(secret: &Secret) -> Result<Self, InfluxError> {
        let data = secret.data.clone().unwrap_or_default();
        let text = |key: &str| {
            data.get(key)
                .map(|v| String::from_utf8_lossy(&v.0).into_owned())
                .unwrap_or_default()
        };
        let profile = Self {
            token: text("authToken"),
            org: text("org"),
            address: text("address"),
        };
        if profile.token.is_empty() || profile.org.is_empty() || profile.address.is_empty() {
            return Err(InfluxError::Incomplete);
        }
        Ok(profile)
    }
}

/// The query URL for a server address and org: `<address>/api/v2/query?org=<org>`.
pub fn query_url(address: &str, org: &str) -> Result<Url, String> {
    let mut base = address.to_string();
    if !base.ends_with('/') {
        base.push('/');
    }
    let api = format!("{base}api/v2");
    let mut url = Url::parse(&api).map_err(|e| format!("parse {api:?}: {e}"))?;
    if url.cannot_be_a_base() {
        return Err(format!("parse {api:?}: not an absolute URL"));
    }
    let path = format!("{}/query", url.path().trim_end_matches('/'));
    url.set_path(&path);
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "org")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.push(("org".into(), org.into()));
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let encoded = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", http::query_escape(k), http::query_escape(v)))
        .collect::<Vec<_>>()
        .join("&");
    url.set_query(Some(&encoded));
    Ok(url)
}

/// The request body: the Flux query and the annotated-CSV dialect the Go client asks for.
pub fn query_body(query: &str) -> Value {
    json!({
        "query": query,
        "type": "flux",
        "dialect": {
            "annotations": ["datatype", "group", "default"],
            "delimiter": ",",
            "header": true
        }
    })
}

/// A non-2xx answer as `influxdb-client-go` describes it: `<code>: <message>` from a JSON body,
/// the status line and the body for other bodies, defaults for 429 and 503, else `Unexpected
/// status code <n>`.
fn http_error(status: reqwest::StatusCode, headers: &HeaderMap, body: &[u8]) -> String {
    let code_number = status.as_u16();
    let content_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let (mut code, mut message) = (String::new(), String::new());
    if media == "application/json" {
        // Go's json.Decoder reads the first value only, and matches field names in any case.
        let first = serde_json::Deserializer::from_slice(body)
            .into_iter::<Value>()
            .next();
        let decoded = match first {
            None => return "EOF".to_string(),
            Some(Err(e)) => {
                return match body.trim_ascii().first() {
                    Some(&c) if !b"{[\"-0123456789tfn".contains(&c) => format!(
                        "invalid character {:?} looking for beginning of value",
                        char::from(c)
                    ),
                    _ => e.to_string(),
                };
            }
            Some(Ok(v)) => v,
        };
        if let Value::Object(fields) = &decoded {
            for (key, value) in fields {
                let target = match key.to_ascii_lowercase().as_str() {
                    "code" => &mut code,
                    "message" => &mut message,
                    _ => continue,
                };
                match value {
                    Value::String(s) => *target = s.clone(),
                    Value::Null => {}
                    other => {
                        let kind = match other {
                            Value::Bool(_) => "bool",
                            Value::Number(_) => "number",
                            Value::Array(_) => "array",
                            _ => "object",
                        };
                        let field = if key.eq_ignore_ascii_case("code") {
                            "Code"
                        } else {
                            "Message"
                        };
                        return format!(
                            "json: cannot unmarshal {kind} into Go struct field Error.{field} of type string"
                        );
                    }
                }
            }
        } else if !decoded.is_null() {
            return "json: cannot unmarshal value into Go value of type http.Error".to_string();
        }
    } else {
        code = http::status_text(status);
        message = String::from_utf8_lossy(body).into_owned();
    }
    if code.is_empty() && message.is_empty() {
        match code_number {
            429 => {
                code = "too many requests".into();
                message = "exceeded rate limit".into();
            }
            503 => {
                code = "unavailable".into();
                message = "service temporarily unavailable".into();
            }
            _ => {
                code = http::status_text(status);
                message = headers
                    .get("X-Influxdb-Error")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
            }
        }
    }
    if !code.is_empty() && !message.is_empty() {
        format!("{code}: {message}")
    } else {
        format!("Unexpected status code {code_number}")
    }
}

/// The observation for the values read from an answer.
fn observe(values: Vec<FluxValue>) -> Result<Observation, InfluxError> {
    if values.is_empty() {
        return Err(InfluxError::NoResults);
    }
    let value = go_sprint(&values);
    let floats: Option<Vec<f64>> = values
        .iter()
        .map(|v| match v {
            FluxValue::Float(f) => Some(*f),
            _ => None,
        })
        .collect();
    Ok(match floats {
        // All doubles: a float list, which keeps NaN and ±Inf for the conditions.
        Some(floats) => Observation::Float {
            result: FloatResult::Vector(floats),
            value,
            metadata: BTreeMap::new(),
        },
        None => Observation::Value {
            result: Value::Array(values.iter().map(FluxValue::to_json).collect()),
            value,
            metadata: BTreeMap::new(),
        },
    })
}

impl InfluxdbProvider {
    /// A provider that reads profile Secrets from `controller_namespace` with `client` (none:
    /// every measurement fails for want of a Secret), with the Go client's 20 s HTTP deadline.
    pub fn new(client: Option<kube::Client>, controller_namespace: impl Into<String>) -> Self {
        Self {
            client,
            controller_namespace: controller_namespace.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// This provider with another HTTP deadline (tests use a short one).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn profile(&self, name: &str) -> Result<Profile, InfluxError> {
        let secret = rollouts_plugin::objects::read_secret(
            self.client.as_ref(),
            &self.controller_namespace,
            name,
        )
        .await
        .map_err(InfluxError::Secret)?;
        Profile::from_secret(&secret)
    }

    async fn query(&self, metric: &Metric) -> Result<Observation, InfluxError> {
        let spec = metric
            .provider
            .influxdb
            .as_ref()
            .ok_or_else(|| InfluxError::NoBlock(metric.name.clone()))?;
        let profile_name = spec
            .profile
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_PROFILE);
        let profile = self.profile(profile_name).await?;
        let url = query_url(&profile.address, &profile.org).map_err(InfluxError::Address)?;
        let client = http::client(false, Some(self.timeout)).map_err(InfluxError::Client)?;
        let text = url.to_string();
        tracing::debug!(url = %text, profile = profile_name, "running a Flux query");
        let body = query_body(spec.query.as_deref().unwrap_or_default()).to_string();
        let response = client
            .post(url)
            .header("Authorization", format!("Token {}", profile.token))
            .header("Content-Type", "application/json")
            .header(
                "User-Agent",
                concat!("rollouts-rs/", env!("CARGO_PKG_VERSION")),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| {
                InfluxError::Transport(http::transport_error("POST", &text, &e, CLIENT_TIMEOUT))
            })?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes.to_vec(),
            Err(e) if status.is_success() => {
                // The Go client streams the CSV; a broken stream ends the rows read so far.
                tracing::debug!(url = %text, error = %http::reason(&e, BODY_TIMEOUT), "the Flux answer broke off");
                Vec::new()
            }
            Err(e) => return Err(InfluxError::Transport(http::reason(&e, BODY_TIMEOUT))),
        };
        if !status.is_success() {
            return Err(InfluxError::Status(http_error(status, &headers, &bytes)));
        }
        let (values, problem) = read_values(&String::from_utf8_lossy(&bytes));
        if let Some(problem) = &problem {
            // Argo never looks at the reader's error; it is only logged here.
            tracing::debug!(url = %text, problem, rows = values.len(), "stopped reading the Flux answer");
        }
        observe(values)
    }
}

#[async_trait]
impl MetricProvider for InfluxdbProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn run(&self, request: MeasureRequest<'_>) -> Observation {
        self.query(request.metric).await.unwrap_or_else(|err| {
            tracing::debug!(metric = %request.metric.name, error = %err, "influxdb measurement failed");
            Observation::error(err.to_string())
        })
    }
}

fn build(init: &ProviderInit) -> Result<Box<dyn MetricProvider>, PluginError> {
    Ok(Box::new(InfluxdbProvider::new(
        init.client.clone(),
        init.controller_namespace.clone(),
    )))
}

rollouts_plugin::register_metric_provider!(MetricProviderPlugin {
    name: NAME,
    summary: "a Flux query through the InfluxDB v2 query API (Argo's influxdb provider)",
    build,
});

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;
    use reqwest::{StatusCode, header::HeaderValue};

    use super::*;

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn profiles_need_all_three_keys() {
        for pairs in [
            &[("authToken", "t"), ("org", "o")][..],
            &[("authToken", "t"), ("org", "o"), ("address", "")][..],
            &[("org", "o"), ("address", "http://x")][..],
        ] {
            assert_eq!(
                Profile::from_secret(&secret(pairs))
                    .map(|_| ())
                    .unwrap_err()
                    .to_string(),
                "authToken, org, or address not found"
            );
        }
        let p = Profile::from_secret(&secret(&[
            ("authToken", "t"),
            ("org", "o"),
            ("address", "http://x:8086"),
        ]))
        .unwrap();
        assert_eq!((p.token.as_str(), p.org.as_str()), ("t", "o"));
    }

    #[test]
    fn the_query_url_follows_the_go_client() {
        assert_eq!(
            query_url("http://influx:8086", "my org").unwrap().as_str(),
            "http://influx:8086/api/v2/query?org=my+org"
        );
        assert_eq!(
            query_url("https://h/influx/", "o&x").unwrap().as_str(),
            "https://h/influx/api/v2/query?org=o%26x"
        );
        assert!(query_url("influx:8086", "o").is_err());
        assert!(query_url("not a url", "o").is_err());
    }

    #[test]
    fn the_body_asks_for_annotated_csv() {
        assert_eq!(
            query_body("from(bucket: \"b\")"),
            json!({"query": "from(bucket: \"b\")", "type": "flux", "dialect": {
                "annotations": ["datatype", "group", "default"], "delimiter": ",", "header": true}})
        );
    }

    #[test]
    fn http_errors_are_worded_as_the_go_client_words_them() {
        let json_headers = |extra: Option<(&'static str, &'static str)>| {
            let mut h = HeaderMap::new();
            h.insert(
                reqwest::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            if let Some((k, v)) = extra {
                h.insert(k, HeaderValue::from_static(v));
            }
            h
        };
        let err = |code: u16, headers: &HeaderMap, body: &str| {
            http_error(
                StatusCode::from_u16(code).unwrap(),
                headers,
                body.as_bytes(),
            )
        };
        let h = json_headers(None);
        assert_eq!(
            err(
                401,
                &h,
                r#"{"code":"unauthorized","message":"unauthorized access"}"#
            ),
            "unauthorized: unauthorized access"
        );
        assert_eq!(
            err(500, &h, r#"{"Code":"internal error"}"#),
            "Unexpected status code 500"
        );
        assert_eq!(err(429, &h, "{}"), "too many requests: exceeded rate limit");
        assert_eq!(
            err(503, &h, "{}"),
            "unavailable: service temporarily unavailable"
        );
        assert_eq!(err(500, &h, ""), "EOF");
        assert_eq!(
            err(502, &h, "<html>"),
            "invalid character '<' looking for beginning of value"
        );
        assert_eq!(
            err(400, &h, r#"{"code":3}"#),
            "json: cannot unmarshal number into Go struct field Error.Code of type string"
        );
        let h = json_headers(Some(("X-Influxdb-Error", "engine: shard is read-only")));
        assert_eq!(
            err(500, &h, "{}"),
            "500 Internal Server Error: engine: shard is read-only"
        );
        let plain = HeaderMap::new();
        assert_eq!(err(403, &plain, "forbidden"), "403 Forbidden: forbidden");
        assert_eq!(err(404, &plain, ""), "Unexpected status code 404");
    }

    #[test]
    fn doubles_are_a_float_list_and_other_types_a_list() {
        let Observation::Float { result, value, .. } =
            observe(vec![FluxValue::Float(0.97), FluxValue::Float(f64::NAN)]).unwrap()
        else {
            panic!("a float observation")
        };
        assert_eq!(value, "[0.97 NaN]");
        assert!(matches!(result, FloatResult::Vector(v) if v[0] == 0.97 && v[1].is_nan()));
        let Observation::Value { result, value, .. } = observe(vec![
            FluxValue::Int(3),
            FluxValue::Null,
            FluxValue::Str("ok".into()),
        ])
        .unwrap() else {
            panic!("a value observation")
        };
        assert_eq!(value, "[3 <nil> ok]");
        assert_eq!(result, json!([3, null, "ok"]));
        assert_eq!(
            observe(vec![]).unwrap_err().to_string(),
            "no results returned from flux query"
        );
    }
}
