//! The `skywalking` metric provider: a GraphQL query against an Apache SkyWalking OAP server.
//!
//! ```yaml
//! provider:
//!   skywalking:
//!     address: http://skywalking-oap.skywalking:12800
//!     interval: 5m          # the window, ending now (a Go duration; required)
//!     query: 'query queryData($duration: Duration!) { service_apdex: readMetricsValues(
//!       condition: { name: "service_apdex", entity: { scope: Service, serviceName: "shop", normal: true } },
//!       duration: $duration) { label values { values { value } } } }'
//! ```
//!
//! Each measurement is one `POST <address>/graphql` (no authentication) with the body
//! `{"query": <query>, "variables": {"duration": {"start", "end", "step": "MINUTE"}}}`, where
//! `start` is now − `interval` and `end` is now, both in the controller's local time as
//! `YYYY-MM-DD HHmm`. The GraphQL `data` object is the result the conditions see
//! (`result.service_apdex.values.values`) and its JSON is the measurement value, as in Argo.
//!
//! As Argo's GraphQL client does it: the HTTP status is not checked, a body that is not JSON is
//! `decoding response: <reason>`, GraphQL `errors` are `graphql: <first message>`, and no `data`
//! is `no results returned from SkyWalking query`. Each query has a 30 s deadline.

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use rollouts_api::Metric;
use rollouts_plugin::{
    MeasureRequest, MetricProvider, MetricProviderPlugin, Observation, PluginError, ProviderInit,
    go, http,
};
use serde_json::{Value, json};

/// The registry name: the JSON key of the provider block.
pub const NAME: &str = "skywalking";

/// The deadline of one query, as Argo sets it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The time format of the `duration` variable (SkyWalking's minute step).
const MINUTE_FORMAT: &str = "%Y-%m-%d %H%M";

/// Go's context deadline error text.
const DEADLINE: &str = "context deadline exceeded";

/// What can go wrong with a SkyWalking measurement; each message is the one Argo records.
#[derive(Debug, thiserror::Error)]
enum SkyWalkingError {
    #[error("metric {0:?} has no provider.skywalking block")]
    NoBlock(String),
    /// `interval` is not a Go duration (`time: invalid duration ""` when it is missing).
    #[error("{0}")]
    Interval(String),
    #[error("skywalking interval {0:?} puts the window start out of range")]
    Window(String),
    #[error("{0}")]
    Client(String),
    /// The exchange failed (`Post "<url>": context deadline exceeded`).
    #[error("{0}")]
    Transport(String),
    #[error("reading body: {0}")]
    Body(String),
    #[error("decoding response: {0}")]
    Decode(String),
    #[error("graphql: {0}")]
    GraphQl(String),
    #[error("no results returned from SkyWalking query")]
    NoResults,
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

/// Numbers as Go decodes them into `interface{}`: all `float64`.
fn as_go_floats(v: Value) -> Value {
    match v {
        Value::Number(n) => n.as_f64().map_or(Value::Number(n), Value::from),
        Value::Array(items) => Value::Array(items.into_iter().map(as_go_floats).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, as_go_floats(v))).collect())
        }
        other => other,
    }
}

/// The `duration` variable for a window of `interval` ending at `now`, in `zone`.
fn duration_variable(now: Timestamp, interval: SignedDuration, zone: &TimeZone) -> Option<Value> {
    let start = now.checked_sub(interval).ok()?;
    let format = |t: Timestamp| t.to_zoned(zone.clone()).strftime(MINUTE_FORMAT).to_string();
    Some(json!({"start": format(start), "end": format(now), "step": "MINUTE"}))
}

/// Reads a GraphQL reply as Argo's client does: errors first, then `data`.
fn read_reply(body: &[u8]) -> Result<Observation, SkyWalkingError> {
    let reply: Value =
        serde_json::from_slice(body).map_err(|e| SkyWalkingError::Decode(json_error(body, &e)))?;
    let Some(reply) = reply.as_object() else {
        return Err(SkyWalkingError::Decode(format!(
            "json: cannot unmarshal {} into Go value of type graphql.graphResponse",
            match reply {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            }
        )));
    };
    if let Some(first) = reply
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        let message = first.get("message").and_then(Value::as_str).unwrap_or("");
        return Err(SkyWalkingError::GraphQl(message.to_string()));
    }
    let data = reply.get("data").cloned().unwrap_or(Value::Null);
    if data.is_null() {
        return Err(SkyWalkingError::NoResults);
    }
    let result = as_go_floats(data);
    Ok(Observation::Value {
        value: go::marshal_json(&result),
        result,
        metadata: BTreeMap::new(),
    })
}

/// The SkyWalking provider.
#[derive(Clone, Debug)]
pub struct SkyWalkingProvider {
    timeout: Duration,
    zone: TimeZone,
}

impl Default for SkyWalkingProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl SkyWalkingProvider {
    /// A provider with Argo's 30 s deadline that formats the window in the system's time zone.
    pub fn new() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            zone: TimeZone::system(),
        }
    }

    /// This provider with another deadline per query (tests use short ones).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// This provider formatting the window in `zone` instead of the system's time zone.
    pub fn with_time_zone(mut self, zone: TimeZone) -> Self {
        self.zone = zone;
        self
    }

    async fn query(&self, metric: &Metric, now: Timestamp) -> Result<Observation, SkyWalkingError> {
        let spec = metric
            .provider
            .sky_walking
            .as_ref()
            .ok_or_else(|| SkyWalkingError::NoBlock(metric.name.clone()))?;
        let interval_text = spec.interval.as_deref().unwrap_or("");
        let interval = go::parse_duration(interval_text).map_err(SkyWalkingError::Interval)?;
        let duration = duration_variable(now, SignedDuration::from_nanos(interval.0), &self.zone)
            .ok_or_else(|| SkyWalkingError::Window(interval_text.to_string()))?;
        let url = format!("{}/graphql", spec.address.as_deref().unwrap_or(""));
        let body = json!({
            "query": spec.query.as_deref().unwrap_or(""),
            "variables": {"duration": duration},
        });
        let client = http::client(false, Some(self.timeout)).map_err(SkyWalkingError::Client)?;
        let response = client
            .post(&url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("Accept", "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| {
                SkyWalkingError::Transport(http::transport_error("POST", &url, &e, DEADLINE))
            })?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| SkyWalkingError::Body(http::reason(&e, DEADLINE)))?;
        tracing::debug!(url, status, bytes = bytes.len(), "skywalking reply");
        read_reply(&bytes)
    }
}

#[async_trait]
impl MetricProvider for SkyWalkingProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn run(&self, request: MeasureRequest<'_>) -> Observation {
        self.query(request.metric, request.now)
            .await
            .unwrap_or_else(|err| {
                tracing::debug!(metric = %request.metric.name, error = %err, "skywalking measurement failed");
                Observation::error(err.to_string())
            })
    }
}

fn build(_init: &ProviderInit) -> Result<Box<dyn MetricProvider>, PluginError> {
    Ok(Box::new(SkyWalkingProvider::new()))
}

rollouts_plugin::register_metric_provider!(MetricProviderPlugin {
    name: NAME,
    summary: "a GraphQL query against the SkyWalking OAP (Argo's skywalking provider)",
    build,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_minutes_in_the_given_zone() {
        let now: Timestamp = "2026-08-17T11:10:42Z".parse().unwrap();
        let utc = duration_variable(now, SignedDuration::from_mins(5), &TimeZone::UTC).unwrap();
        assert_eq!(
            utc,
            json!({"start": "2026-08-17 1105", "end": "2026-08-17 1110", "step": "MINUTE"})
        );
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap_or(TimeZone::fixed(jiff::tz::offset(9)));
        let local = duration_variable(now, SignedDuration::from_hours(12), &tokyo).unwrap();
        assert_eq!(
            local,
            json!({"start": "2026-08-17 0810", "end": "2026-08-17 2010", "step": "MINUTE"})
        );
    }

    fn error(body: &str) -> String {
        read_reply(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn replies_read_as_argos_client_reads_them() {
        let Observation::Value { result, value, .. } =
            read_reply(br#"{"data":{"apdex":{"values":{"values":[{"value":9950}]}}}}"#).unwrap()
        else {
            panic!("a value")
        };
        assert_eq!(value, r#"{"apdex":{"values":{"values":[{"value":9950}]}}}"#);
        assert_eq!(
            result["apdex"]["values"]["values"][0]["value"],
            json!(9950.0)
        );
        assert_eq!(
            error(r#"{"data":null,"errors":[{"message":"first"},{"message":"second"}]}"#),
            "graphql: first"
        );
        assert_eq!(
            error(r#"{"data":null}"#),
            "no results returned from SkyWalking query"
        );
        assert_eq!(error("{}"), "no results returned from SkyWalking query");
        assert_eq!(
            error("<html>"),
            "decoding response: invalid character '<' looking for beginning of value"
        );
        assert_eq!(error(""), "decoding response: EOF");
        assert_eq!(
            error("[1]"),
            "decoding response: json: cannot unmarshal array into Go value of type graphql.graphResponse"
        );
    }
}
