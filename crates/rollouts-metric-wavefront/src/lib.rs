//! The `wavefront` metric provider: one query of Wavefront's chart API per measurement.
//!
//! ```yaml
//! provider:
//!   wavefront:
//!     address: example.wavefront.com
//!     query: sum(rate(ts(http.errors, service="shop")))
//! ```
//!
//! The API token comes from the Secret `wavefront-api-tokens` in the controller's namespace: each
//! data key is a Wavefront address and its value the token for it; the key must equal `address`
//! exactly, else the measurement is an Error `API token not found`.
//!
//! Each measurement is `GET https://<address>/api/v2/chart/api` with the query for a single
//! instant, the measurement's start (`s` = `e` = start in milliseconds, `g=s`, `p=1`, `i=true`,
//! and `autoEvents`, `listmode`, `strict`, `includeObsoleteMetrics` false), authenticated by
//! `Authorization: Bearer <token>`. In each returned series the datapoint closest to the start is
//! taken: one series gives a float (`result < 5`), several a list of floats (`result[0]`); the
//! value is Go's `%.2f` (`10.00`, `[1.00,2.00]`), and the metadata records the datapoints'
//! `timestamps`, their `drift` from the start (seconds) and Wavefront's `warnings`. No series is an
//! Error `No TimeSeries found in response from Wavefront`; any status other than 200 is an Error
//! `server returned <status>\n<body>\n`, as in Argo's Wavefront client.

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use jiff::Timestamp;
use reqwest::Url;
use rollouts_api::Metric;
use rollouts_plugin::{
    FloatResult, MeasureRequest, MetricProvider, MetricProviderPlugin, Observation, PluginError,
    ProviderInit, http,
};
use serde_json::{Map, Value};

/// The registry name: the JSON key of the provider block.
pub const NAME: &str = "wavefront";

/// The Secret mapping Wavefront addresses to API tokens.
pub const TOKENS_SECRET: &str = "wavefront-api-tokens";

/// The HTTP deadline (Argo sets none; see the docs page).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Go's `http.Client.Timeout` error text while waiting for the answer.
const CLIENT_TIMEOUT: &str =
    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";

/// Go's `http.Client.Timeout` error text while reading the body.
const BODY_TIMEOUT: &str =
    "context deadline exceeded (Client.Timeout or context cancellation while reading body)";

/// What can go wrong with a Wavefront measurement; each message is the one Argo records.
#[derive(Debug, thiserror::Error)]
enum WavefrontError {
    #[error("metric {0:?} has no provider.wavefront block")]
    NoBlock(String),
    /// Reading the tokens Secret failed (`secrets "wavefront-api-tokens" not found`).
    #[error("{0}")]
    Secret(String),
    #[error("API token not found")]
    NoToken,
    #[error("{0}")]
    Client(String),
    /// The exchange failed (`Get "<url>": <reason>`).
    #[error("{0}")]
    Transport(String),
    /// Wavefront's client's wording for a status other than 200.
    #[error("server returned {status}\n{body}\n")]
    Status { status: String, body: String },
    /// The body is not a chart API answer.
    #[error("{0}")]
    Decode(String),
    #[error("timeseries[{series}].data[{point}]: a datapoint needs a timestamp and a value")]
    ShortPoint { series: usize, point: usize },
    #[error("No TimeSeries found in response from Wavefront")]
    NoSeries,
}

/// The Wavefront provider.
pub struct WavefrontProvider {
    client: Option<kube::Client>,
    controller_namespace: String,
    scheme: &'static str,
    timeout: Duration,
}

impl std::fmt::Debug for WavefrontProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavefrontProvider")
            .field("client", &self.client.is_some())
            .field("controller_namespace", &self.controller_namespace)
            .field("scheme", &self.scheme)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// One series: its datapoints `[epoch seconds, value, ...]`.
type Series = Vec<Vec<f64>>;

/// A decoded chart API answer.
#[derive(Debug, Default)]
struct ChartResponse {
    series: Vec<Series>,
    warnings: String,
}

/// Go's JSON type name of a value, for `cannot unmarshal <kind>` messages.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_error(v: &Value, field: &str, go_type: &str) -> WavefrontError {
    WavefrontError::Decode(format!(
        "json: cannot unmarshal {} into Go struct field {field} of type {go_type}",
        json_kind(v)
    ))
}

/// A string field that may be absent or null.
fn string_field(
    object: &Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<String, WavefrontError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(type_error(other, field, "string")),
    }
}

/// The datapoints of one series object.
fn decode_series(series: &Value) -> Result<Series, WavefrontError> {
    let object = match series {
        Value::Null => return Ok(Vec::new()),
        Value::Object(object) => object,
        other => {
            return Err(WavefrontError::Decode(format!(
                "json: cannot unmarshal {} into Go struct field QueryResponse.timeseries of type wavefront.TimeSeries",
                json_kind(other)
            )));
        }
    };
    string_field(object, "label", "TimeSeries.timeseries.label")?;
    string_field(object, "host", "TimeSeries.timeseries.host")?;
    match object.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Object(tags)) => {
            for value in tags.values() {
                if !value.is_string() && !value.is_null() {
                    return Err(type_error(value, "TimeSeries.timeseries.tags", "string"));
                }
            }
        }
        Some(other) => {
            return Err(type_error(
                other,
                "TimeSeries.timeseries.tags",
                "map[string]string",
            ));
        }
    }
    let points = match object.get("data") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(points)) => points,
        Some(other) => {
            return Err(type_error(
                other,
                "TimeSeries.timeseries.data",
                "[]wavefront.DataPoint",
            ));
        }
    };
    points
        .iter()
        .map(|point| match point {
            Value::Null => Ok(Vec::new()),
            Value::Array(numbers) => numbers
                .iter()
                .map(|n| match n {
                    // Go leaves a float64 at zero for a JSON null.
                    Value::Null => Ok(0.0),
                    Value::Number(n) => Ok(n.as_f64().unwrap_or(f64::NAN)),
                    other => Err(type_error(other, "TimeSeries.timeseries.data", "float64")),
                })
                .collect(),
            other => Err(type_error(
                other,
                "TimeSeries.timeseries.data",
                "wavefront.DataPoint",
            )),
        })
        .collect()
}

/// Decodes a chart API answer the way Wavefront's Go client does (the fields the provider uses).
fn decode(body: &[u8]) -> Result<ChartResponse, WavefrontError> {
    let decoded: Value = serde_json::from_slice(body).map_err(|e| {
        WavefrontError::Decode(match body.trim_ascii().first() {
            None => "unexpected end of JSON input".to_string(),
            Some(&c) if !b"{[\"-0123456789tfn".contains(&c) => format!(
                "invalid character {:?} looking for beginning of value",
                char::from(c)
            ),
            _ => e.to_string(),
        })
    })?;
    let object = match decoded {
        Value::Null => return Ok(ChartResponse::default()),
        Value::Object(object) => object,
        other => {
            return Err(WavefrontError::Decode(format!(
                "json: cannot unmarshal {} into Go value of type struct {{ *wavefront.Alias }}",
                json_kind(&other)
            )));
        }
    };
    let warnings = string_field(&object, "warnings", "QueryResponse.warnings")?;
    let series = match object.get("timeseries") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(series)) => series.iter().map(decode_series).collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(type_error(
                other,
                "QueryResponse.timeseries",
                "[]wavefront.TimeSeries",
            ));
        }
    };
    Ok(ChartResponse { series, warnings })
}

/// The datapoint closest to `start` (epoch seconds): its value, timestamp and drift, as Argo
/// picks it. A series without datapoints gives 0, 0 and the drift Go's conversion of an infinite
/// float gives on amd64.
fn closest(series: &Series, start: i64, index: usize) -> Result<(f64, i64, i64), WavefrontError> {
    let start = start as f64;
    let (mut value, mut time, mut delta) = (0.0, 0.0, f64::INFINITY);
    for (point, dp) in series.iter().enumerate() {
        let [ts, v, ..] = dp.as_slice() else {
            return Err(WavefrontError::ShortPoint {
                series: index,
                point,
            });
        };
        let new_delta = ts - start;
        if new_delta.abs() < delta.abs() {
            value = *v;
            time = *ts;
            delta = new_delta;
        }
    }
    let go_int = |f: f64| {
        if f.is_finite() && f.abs() < 9.2e18 {
            f as i64
        } else {
            i64::MIN
        }
    };
    Ok((value, go_int(time), go_int(delta)))
}

/// Go's `%.2f`.
fn two_decimals(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{f:.2}")
    }
}

/// The observation for the series of an answer, measured at `start` (epoch seconds).
fn observe(response: ChartResponse, start: i64) -> Result<Observation, WavefrontError> {
    let mut metadata = BTreeMap::new();
    if !response.warnings.is_empty() {
        metadata.insert("warnings".to_string(), response.warnings);
    }
    let picked = response
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| closest(s, start, i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string());
    let picked = match picked {
        Ok(picked) => picked,
        Err(message) => return Ok(Observation::Error { message, metadata }),
    };
    let (result, value, timestamps, drift) = match picked.as_slice() {
        [] => {
            return Ok(Observation::Error {
                message: WavefrontError::NoSeries.to_string(),
                metadata,
            });
        }
        [(value, time, drift)] => (
            FloatResult::Scalar(*value),
            two_decimals(*value),
            time.to_string(),
            drift.to_string(),
        ),
        several => {
            let list = |f: &dyn Fn(&(f64, i64, i64)) -> String| {
                format!("[{}]", several.iter().map(f).collect::<Vec<_>>().join(","))
            };
            (
                FloatResult::Vector(several.iter().map(|p| p.0).collect()),
                list(&|p| two_decimals(p.0)),
                list(&|p| p.1.to_string()),
                list(&|p| p.2.to_string()),
            )
        }
    };
    metadata.insert("timestamps".to_string(), timestamps);
    metadata.insert("drift".to_string(), drift);
    Ok(Observation::Float {
        result,
        value,
        metadata,
    })
}

/// The chart API URL for `query` at `start` (epoch seconds), parameters sorted as Go encodes them.
pub fn chart_url(scheme: &str, address: &str, query: &str, start: i64) -> Option<Url> {
    if address.is_empty() {
        return None;
    }
    let mut url = Url::parse(&format!("{scheme}://{address}/api/v2/")).ok()?;
    if url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    url.set_path("/api/v2/chart/api");
    let millis = (start * 1000).to_string();
    let mut params: Vec<(&str, &str)> = vec![
        ("autoEvents", "false"),
        ("e", &millis),
        ("g", "s"),
        ("i", "true"),
        ("includeObsoleteMetrics", "false"),
        ("listmode", "false"),
        ("p", "1"),
        ("s", &millis),
        ("strict", "false"),
    ];
    if !query.is_empty() {
        params.push(("q", query));
    }
    params.sort_by_key(|(k, _)| *k);
    let encoded = params
        .iter()
        .map(|(k, v)| format!("{}={}", http::query_escape(k), http::query_escape(v)))
        .collect::<Vec<_>>()
        .join("&");
    url.set_query(Some(&encoded));
    Some(url)
}

impl WavefrontProvider {
    /// A provider that reads the tokens Secret from `controller_namespace` with `client` (none:
    /// every measurement fails for want of the Secret), over HTTPS with a 30 s deadline.
    pub fn new(client: Option<kube::Client>, controller_namespace: impl Into<String>) -> Self {
        Self {
            client,
            controller_namespace: controller_namespace.into(),
            scheme: "https",
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// This provider speaking plain HTTP to the address (tests; Wavefront itself is HTTPS only).
    pub fn with_plain_http(mut self) -> Self {
        self.scheme = "http";
        self
    }

    /// This provider with another HTTP deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn token(&self, address: &str) -> Result<String, WavefrontError> {
        let secret = rollouts_plugin::objects::read_secret(
            self.client.as_ref(),
            &self.controller_namespace,
            TOKENS_SECRET,
        )
        .await
        .map_err(WavefrontError::Secret)?;
        secret
            .data
            .unwrap_or_default()
            .get(address)
            .map(|token| String::from_utf8_lossy(&token.0).into_owned())
            .ok_or(WavefrontError::NoToken)
    }

    async fn measure(
        &self,
        metric: &Metric,
        now: Timestamp,
    ) -> Result<Observation, WavefrontError> {
        let spec = metric
            .provider
            .wavefront
            .as_ref()
            .ok_or_else(|| WavefrontError::NoBlock(metric.name.clone()))?;
        let address = spec.address.as_deref().unwrap_or_default();
        let token = self.token(address).await?;
        let start = now.as_second();
        // Argo drops the client's error for an address that does not make a URL, and then finds
        // no client: the same message as a missing token.
        let url = chart_url(
            self.scheme,
            address,
            spec.query.as_deref().unwrap_or_default(),
            start,
        )
        .ok_or(WavefrontError::NoToken)?;
        let client = http::client(false, Some(self.timeout)).map_err(WavefrontError::Client)?;
        let text = url.to_string();
        tracing::debug!(address, start, "querying the Wavefront chart API");
        let response = client
            .get(url)
            .header("Authorization", format!("Bearer {token}"))
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                WavefrontError::Transport(http::transport_error("GET", &text, &e, CLIENT_TIMEOUT))
            })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| WavefrontError::Transport(http::reason(&e, BODY_TIMEOUT)))?;
        if status.as_u16() != 200 {
            return Err(WavefrontError::Status {
                status: http::status_text(status),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        observe(decode(&body)?, start)
    }
}

#[async_trait]
impl MetricProvider for WavefrontProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn run(&self, request: MeasureRequest<'_>) -> Observation {
        self.measure(request.metric, request.now)
            .await
            .unwrap_or_else(|err| {
                tracing::debug!(metric = %request.metric.name, error = %err, "wavefront measurement failed");
                Observation::error(err.to_string())
            })
    }
}

fn build(init: &ProviderInit) -> Result<Box<dyn MetricProvider>, PluginError> {
    Ok(Box::new(WavefrontProvider::new(
        init.client.clone(),
        init.controller_namespace.clone(),
    )))
}

rollouts_plugin::register_metric_provider!(MetricProviderPlugin {
    name: NAME,
    summary: "a Wavefront chart API query (Argo's wavefront provider)",
    build,
});

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn response(v: Value) -> ChartResponse {
        decode(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn the_url_carries_sorted_parameters_for_one_instant() {
        let url = chart_url(
            "https",
            "example.wavefront.com",
            "ts(cpu, env=\"p\")",
            1700000000,
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://example.wavefront.com/api/v2/chart/api?autoEvents=false&e=1700000000000&g=s&i=true&includeObsoleteMetrics=false&listmode=false&p=1&q=ts%28cpu%2C+env%3D%22p%22%29&s=1700000000000&strict=false"
        );
        let url = chart_url("https", "wf.example.com", "", 1).unwrap();
        assert!(!url.as_str().contains("q="), "{url}");
        assert!(chart_url("https", "", "x", 1).is_none());
        assert!(chart_url("https", "bad host:port:x", "x", 1).is_none());
    }

    #[test]
    fn the_closest_datapoint_is_picked() {
        let series = vec![
            vec![90.0, 1.0],
            vec![101.0, 2.0],
            vec![98.0, 3.0],
            vec![110.0, 4.0],
        ];
        assert_eq!(closest(&series, 100, 0).unwrap(), (2.0, 101, 1));
        assert_eq!(closest(&series, 95, 0).unwrap(), (3.0, 98, 3));
        // Ties keep the first point.
        assert_eq!(
            closest(&vec![vec![99.0, 1.0], vec![101.0, 2.0]], 100, 0).unwrap(),
            (1.0, 99, -1)
        );
        assert_eq!(closest(&vec![], 100, 0).unwrap(), (0.0, 0, i64::MIN));
        assert_eq!(
            closest(&vec![vec![1.0]], 100, 3).unwrap_err().to_string(),
            "timeseries[3].data[0]: a datapoint needs a timestamp and a value"
        );
    }

    #[test]
    fn one_series_is_a_float_and_several_a_list() {
        let o = observe(
            response(json!({"timeseries": [{"label": "x", "data": [[1700000000, 10.0]]}], "warnings": "slow"})),
            1700000002,
        )
        .unwrap();
        let Observation::Float {
            result,
            value,
            metadata,
        } = o
        else {
            panic!("a float observation")
        };
        assert_eq!(
            (result, value.as_str()),
            (FloatResult::Scalar(10.0), "10.00")
        );
        assert_eq!(metadata["timestamps"], "1700000000");
        assert_eq!(metadata["drift"], "-2");
        assert_eq!(metadata["warnings"], "slow");
        let o = observe(
            response(json!({"timeseries": [
                {"data": [[1700000000, 1.005]]},
                {"data": [[1700000001, 2.5], [1700000100, 9.0]]}
            ]})),
            1700000000,
        )
        .unwrap();
        let Observation::Float {
            result,
            value,
            metadata,
        } = o
        else {
            panic!("a float observation")
        };
        assert_eq!(result, FloatResult::Vector(vec![1.005, 2.5]));
        assert_eq!(value, "[1.00,2.50]");
        assert_eq!(metadata["timestamps"], "[1700000000,1700000001]");
        assert_eq!(metadata["drift"], "[0,1]");
        assert!(!metadata.contains_key("warnings"));
    }

    #[test]
    fn no_series_is_an_error_that_keeps_the_warnings() {
        let o = observe(
            response(json!({"timeseries": [], "warnings": "no metrics match"})),
            1,
        )
        .unwrap();
        assert_eq!(
            o,
            Observation::Error {
                message: "No TimeSeries found in response from Wavefront".into(),
                metadata: BTreeMap::from([("warnings".into(), "no metrics match".into())]),
            }
        );
    }

    #[test]
    fn malformed_answers_are_decoder_errors() {
        let err = |body: &str| decode(body.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            err("<html>"),
            "invalid character '<' looking for beginning of value"
        );
        assert_eq!(err(""), "unexpected end of JSON input");
        assert_eq!(
            err("[1]"),
            "json: cannot unmarshal array into Go value of type struct { *wavefront.Alias }"
        );
        assert_eq!(
            err(r#"{"timeseries": [{"data": [["a", 1]]}]}"#),
            "json: cannot unmarshal string into Go struct field TimeSeries.timeseries.data of type float64"
        );
        assert_eq!(
            err(r#"{"warnings": 3}"#),
            "json: cannot unmarshal number into Go struct field QueryResponse.warnings of type string"
        );
        // JSON null is a zero in a Go float.
        assert_eq!(
            response(json!({"timeseries": [{"data": [[1, null]]}]})).series,
            vec![vec![vec![1.0, 0.0]]]
        );
    }
}
