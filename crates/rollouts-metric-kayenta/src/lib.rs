//! The `kayenta` metric provider: an asynchronous Kayenta canary judgement.
//!
//! ```yaml
//! provider:
//!   kayenta:
//!     address: http://kayenta.kayenta:8090
//!     application: shop
//!     canaryConfigName: shop-latency
//!     metricsAccountName: prometheus-account
//!     configurationAccountName: config-account
//!     storageAccountName: storage-account
//!     threshold: {pass: 90, marginal: 75}
//!     lookback: false       # true: the window starts when the AnalysisRun started
//!     scopes:
//!     - name: default
//!       controlScope: {scope: app=shop-stable, region: eu-west-1, step: 60}
//!       experimentScope: {scope: app=shop-canary, region: eu-west-1, step: 60}
//! ```
//!
//! As in Argo:
//!
//! - **run** looks the canary config up by name (`GET <address>/canaryConfig?application=<app>&
//!   configurationAccountName=<storageAccountName>`: Argo passes the storage account there), then
//!   starts the judgement (`POST <address>/canary/<configId>?application=&metricsAccountName=&
//!   configurationAccountName=&storageAccountName=` with the scopes and thresholds). Scopes without
//!   `start`/`end` get the window: start = now − the metric's `interval` (or the run's start with
//!   `lookback`), end = now, in RFC 3339. The measurement is in progress with the execution id in
//!   its metadata (`canaryExecutionId`) and is resumed after 15 s.
//! - **resume** reads `GET <address>/canary/<canaryExecutionId>`: not `complete` looks again in
//!   15 s; complete, the integer part of `result.judgeResult.score.score` is the value, Successful
//!   at or above `threshold.pass`, Inconclusive at or above `threshold.marginal`, else Failed.
//! - **terminate** stops nothing on the Kayenta side (Argo calls no API either) and ends the
//!   measurement Successful with `Metric Terminated`, as for the synchronous providers.
//!
//! The HTTP client has a 15 s deadline per request and no authentication. The metric's
//! conditions are not used: Kayenta's score decides.

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use rollouts_api::{AnalysisRun, KayentaMetric, KayentaScope, Measurement, Metric, ScopeDetail};
use rollouts_plugin::{
    MeasureRequest, MetricProvider, MetricProviderPlugin, Observation, PluginError, ProviderInit,
    Verdict, go, http,
};
use serde_json::{Map, Value, json};

/// The registry name: the JSON key of the provider block.
pub const NAME: &str = "kayenta";

/// The measurement metadata key of the canary execution.
pub const EXECUTION_ID_KEY: &str = "canaryExecutionId";

/// How long to wait before looking at a judgement again.
pub const RESUME_DELAY: Duration = Duration::from_secs(15);

/// The HTTP deadline per request, as Argo sets it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Go's `http.Client.Timeout` error text.
const CLIENT_TIMEOUT: &str =
    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";

/// What can go wrong with a Kayenta measurement; each message is the one Argo records.
#[derive(Debug, thiserror::Error)]
enum KayentaError {
    #[error("metric {0:?} has no provider.kayenta block")]
    NoBlock(String),
    #[error("{0}")]
    Client(String),
    /// A failed exchange (`Get "<url>": ...`) or a body that could not be read or decoded.
    #[error("{0}")]
    Http(String),
    #[error("Invalid Response: HTTP {0}")]
    ConfigStatus(u16),
    #[error("Canary config not found")]
    ConfigNotFound,
    #[error("controlScope.start and experimentScope.start must both be set or be empty")]
    StartMismatch,
    #[error("controlScope.end and experimentScope.end must both be set or be empty")]
    EndMismatch,
    #[error("Invalid duration {0:?}: {1}")]
    Interval(String, String),
    #[error("lookback needs the AnalysisRun's status.startedAt")]
    NoRunStart,
    #[error("the window start is out of range")]
    Window,
    #[error("Invalid Response")]
    InvalidResponse,
    #[error("Invalid canaryExecutionId")]
    NoExecutionId,
    #[error("the measurement has no {EXECUTION_ID_KEY} in its metadata")]
    NoExecutionInMetadata,
    #[error("Missing Complete Status")]
    MissingComplete,
    #[error("Missing Score")]
    MissingScore,
    /// A field of the wrong type (`.complete accessor error: ...`).
    #[error("{0}")]
    Accessor(String),
}

/// Go's `encoding/json` wording for a body that is not JSON.
fn json_error(body: &[u8], error: &serde_json::Error) -> String {
    match body.trim_ascii().first() {
        None => "unexpected end of JSON input".to_string(),
        Some(&c) if !b"{[\"-0123456789tfn".contains(&c) => format!(
            "invalid character {:?} looking for beginning of value",
            char::from(c)
        ),
        _ => error.to_string(),
    }
}

/// Go's name of the JSON kind in `json: cannot unmarshal <kind>` and `%T`.
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

/// Go's `%T` of a value decoded into `interface{}`.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's `%v` of a value decoded into `interface{}`, for scalars; JSON for the rest.
fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_f64().map(go::format_float).unwrap_or_default(),
        other => other.to_string(),
    }
}

/// A nested field, read as Kubernetes' `unstructured.NestedFieldNoCopy` reads it: `Ok(None)` when
/// a key is missing, an accessor error when a step is not an object.
fn nested<'a>(
    root: &'a Map<String, Value>,
    fields: &[&str],
) -> Result<Option<&'a Value>, KayentaError> {
    let mut current = root;
    for (i, field) in fields.iter().enumerate() {
        let Some(value) = current.get(*field) else {
            return Ok(None);
        };
        if i + 1 == fields.len() {
            return Ok(Some(value));
        }
        current = value.as_object().ok_or_else(|| {
            KayentaError::Accessor(format!(
                ".{} accessor error: {} is of the type {}, expected map[string]interface{{}}",
                fields[..=i].join("."),
                go_value(value),
                go_type(value)
            ))
        })?;
    }
    Ok(None)
}

/// Like [`nested`], and the field must have the JSON kind Go expects (`bool`, `float64`).
fn nested_typed<'a, T>(
    root: &'a Map<String, Value>,
    fields: &[&str],
    expected: &str,
    read: impl Fn(&'a Value) -> Option<T>,
) -> Result<Option<T>, KayentaError> {
    match nested(root, fields)? {
        None => Ok(None),
        Some(v) => read(v).map(Some).ok_or_else(|| {
            KayentaError::Accessor(format!(
                ".{} accessor error: {} is of the type {}, expected {expected}",
                fields.join("."),
                go_value(v),
                go_type(v)
            ))
        }),
    }
}

/// RFC 3339 with whole seconds in UTC, as Go's `time.RFC3339` prints the controller's clock.
fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// One side of a scope as Kayenta expects it (`region` becomes `location`).
fn scope_detail(detail: &ScopeDetail, start: &str, end: &str) -> Value {
    let mut out = json!({"scope": detail.scope, "location": detail.region, "step": detail.step});
    let start = detail
        .start
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or(start);
    let end = detail
        .end
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or(end);
    if !start.is_empty() {
        out["start"] = json!(start);
    }
    if !end.is_empty() {
        out["end"] = json!(end);
    }
    out
}

/// The window a scope defaults to.
struct Window<'a> {
    run: &'a AnalysisRun,
    metric: &'a Metric,
    lookback: bool,
    now: Timestamp,
}

impl Window<'_> {
    fn start(&self) -> Result<String, KayentaError> {
        if self.lookback {
            let started = self
                .run
                .status
                .as_ref()
                .and_then(|s| s.started_at.as_ref())
                .ok_or(KayentaError::NoRunStart)?;
            let started = Timestamp::from_second(started.0.as_second())
                .map_err(|_| KayentaError::NoRunStart)?;
            return Ok(rfc3339(started));
        }
        let interval = self.metric.interval.clone().unwrap_or_default();
        let d = go::parse_duration(&interval).map_err(|e| KayentaError::Interval(interval, e))?;
        let start = self
            .now
            .checked_sub(SignedDuration::from_nanos(d.0))
            .map_err(|_| KayentaError::Window)?;
        Ok(rfc3339(start))
    }

    /// The request form of `scope`, with the window where both sides leave it out.
    fn scope(&self, scope: &KayentaScope) -> Result<Value, KayentaError> {
        let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        let (control, experiment) = (&scope.control_scope, &scope.experiment_scope);
        if set(&control.start) != set(&experiment.start) {
            return Err(KayentaError::StartMismatch);
        }
        if set(&control.end) != set(&experiment.end) {
            return Err(KayentaError::EndMismatch);
        }
        let start = if set(&control.start) {
            String::new()
        } else {
            self.start()?
        };
        let end = if set(&control.end) {
            String::new()
        } else {
            rfc3339(self.now)
        };
        Ok(json!({
            "controlScope": scope_detail(control, &start, &end),
            "experimentScope": scope_detail(experiment, &start, &end),
        }))
    }
}

/// The judgement request body.
fn judgement_body(spec: &KayentaMetric, window: &Window<'_>) -> Result<Value, KayentaError> {
    let mut scopes = Map::new();
    for scope in &spec.scopes {
        scopes.insert(scope.name.clone(), window.scope(scope)?);
    }
    Ok(json!({
        "scopes": scopes,
        "thresholds": {"pass": spec.threshold.pass, "marginal": spec.threshold.marginal},
    }))
}

/// The phase of a score, as Argo judges it.
pub fn judge(score: i64, pass: i64, marginal: i64) -> Verdict {
    if score >= pass {
        Verdict::Successful
    } else if score >= marginal {
        Verdict::Inconclusive
    } else {
        Verdict::Failed
    }
}

/// The Kayenta provider.
#[derive(Clone, Debug)]
pub struct KayentaProvider {
    timeout: Duration,
}

impl Default for KayentaProvider {
    fn default() -> Self {
        Self::new()
    }
}

fn spec(metric: &Metric) -> Result<&KayentaMetric, KayentaError> {
    metric
        .provider
        .kayenta
        .as_ref()
        .ok_or_else(|| KayentaError::NoBlock(metric.name.clone()))
}

impl KayentaProvider {
    /// A provider with Argo's 15 s HTTP deadline.
    pub fn new() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// This provider with another HTTP deadline (tests use short ones).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn client(&self) -> Result<reqwest::Client, KayentaError> {
        http::client(false, Some(self.timeout)).map_err(KayentaError::Client)
    }

    /// Sends `request`; the status and the body.
    async fn exchange(
        method: &str,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>), KayentaError> {
        let response = request.send().await.map_err(|e| {
            KayentaError::Http(http::transport_error(method, url, &e, CLIENT_TIMEOUT))
        })?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| KayentaError::Http(http::reason(&e, CLIENT_TIMEOUT)))?;
        Ok((status, body.to_vec()))
    }

    /// A JSON object body, or Go's decoding error.
    fn object(body: &[u8]) -> Result<Map<String, Value>, KayentaError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| KayentaError::Http(json_error(body, &e)))?;
        match value {
            Value::Object(map) => Ok(map),
            other => Err(KayentaError::Http(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(&other)
            ))),
        }
    }

    async fn config_id(&self, spec: &KayentaMetric) -> Result<String, KayentaError> {
        let url = format!(
            "{}/canaryConfig?application={}&configurationAccountName={}",
            spec.address, spec.application, spec.storage_account_name
        );
        let (status, body) = Self::exchange("GET", &url, self.client()?.get(&url)).await?;
        if status != 200 {
            return Err(KayentaError::ConfigStatus(status));
        }
        let configs: Value = serde_json::from_slice(&body).map_err(|e| {
            KayentaError::Http(match body.trim_ascii().is_empty() {
                true => "EOF".to_string(),
                false => json_error(&body, &e),
            })
        })?;
        let configs = match configs {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            other => {
                return Err(KayentaError::Http(format!(
                    "json: cannot unmarshal {} into Go value of type []kayenta.canaryConfig",
                    json_kind(&other)
                )));
            }
        };
        // Go matches struct fields case-insensitively: `id`, `name`.
        let field = |config: &Value, name: &str| -> String {
            config
                .as_object()
                .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                .and_then(|(_, v)| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        configs
            .iter()
            .find(|c| field(c, "name") == spec.canary_config_name)
            .map(|c| field(c, "id"))
            .ok_or(KayentaError::ConfigNotFound)
    }

    async fn start(&self, request: MeasureRequest<'_>) -> Result<Observation, KayentaError> {
        let spec = spec(request.metric)?;
        let config_id = self.config_id(spec).await?;
        let window = Window {
            run: request.run,
            metric: request.metric,
            lookback: spec.lookback.unwrap_or(false),
            now: request.now,
        };
        let body = judgement_body(spec, &window)?;
        let url = format!(
            "{}/canary/{}?application={}&metricsAccountName={}&configurationAccountName={}&storageAccountName={}",
            spec.address,
            config_id,
            spec.application,
            spec.metrics_account_name,
            spec.configuration_account_name,
            spec.storage_account_name
        );
        let post = self
            .client()?
            .post(&url)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        let (status, body) = Self::exchange("POST", &url, post).await?;
        if status != 200 {
            tracing::debug!(url, status, "kayenta refused the judgement");
            return Err(KayentaError::InvalidResponse);
        }
        let reply = Self::object(&body)?;
        let id = reply
            .get(EXECUTION_ID_KEY)
            .filter(|v| !v.is_null())
            .map(go_value)
            .filter(|id| !id.is_empty())
            .ok_or(KayentaError::NoExecutionId)?;
        tracing::debug!(metric = %request.metric.name, execution = %id, "kayenta judgement started");
        Ok(Observation::InProgress {
            resume_at: request.now.checked_add(RESUME_DELAY).ok(),
            metadata: BTreeMap::from([(EXECUTION_ID_KEY.to_string(), id)]),
        })
    }

    async fn check(
        &self,
        request: MeasureRequest<'_>,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Observation, KayentaError> {
        let spec = spec(request.metric)?;
        let id = metadata
            .get(EXECUTION_ID_KEY)
            .ok_or(KayentaError::NoExecutionInMetadata)?;
        let url = format!("{}/canary/{id}", spec.address);
        let (status, body) = Self::exchange("GET", &url, self.client()?.get(&url)).await?;
        if status != 200 {
            tracing::debug!(url, status, "kayenta refused the execution lookup");
            return Err(KayentaError::InvalidResponse);
        }
        let reply = Self::object(&body)?;
        let complete = nested_typed(&reply, &["complete"], "bool", Value::as_bool)?
            .ok_or(KayentaError::MissingComplete)?;
        if !complete {
            return Ok(Observation::InProgress {
                resume_at: request.now.checked_add(RESUME_DELAY).ok(),
                metadata: metadata.clone(),
            });
        }
        let score = nested_typed(
            &reply,
            &["result", "judgeResult", "score", "score"],
            "float64",
            Value::as_f64,
        )?
        .ok_or(KayentaError::MissingScore)?;
        // Go's int(float64) truncates toward zero.
        let score = score.trunc() as i64;
        Ok(Observation::Decided {
            verdict: judge(score, spec.threshold.pass, spec.threshold.marginal),
            value: Some(score.to_string()),
            message: None,
            metadata: metadata.clone(),
        })
    }
}

#[async_trait]
impl MetricProvider for KayentaProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn run(&self, request: MeasureRequest<'_>) -> Observation {
        self.start(request).await.unwrap_or_else(|err| {
            tracing::debug!(metric = %request.metric.name, error = %err, "kayenta measurement failed");
            Observation::error(err.to_string())
        })
    }

    async fn resume(&self, request: MeasureRequest<'_>, in_flight: &Measurement) -> Observation {
        let metadata = in_flight.metadata.clone().unwrap_or_default();
        self.check(request, &metadata).await.unwrap_or_else(|err| {
            tracing::debug!(metric = %request.metric.name, error = %err, "kayenta judgement check failed");
            Observation::Error {
                message: err.to_string(),
                metadata,
            }
        })
    }

    async fn terminate(&self, request: MeasureRequest<'_>, in_flight: &Measurement) -> Observation {
        tracing::debug!(metric = %request.metric.name, "kayenta measurement terminated; the judgement is left to finish on its own");
        Observation::Decided {
            verdict: Verdict::Successful,
            value: None,
            message: Some("Metric Terminated".to_string()),
            metadata: in_flight.metadata.clone().unwrap_or_default(),
        }
    }
}

fn build(_init: &ProviderInit) -> Result<Box<dyn MetricProvider>, PluginError> {
    Ok(Box::new(KayentaProvider::new()))
}

rollouts_plugin::register_metric_provider!(MetricProviderPlugin {
    name: NAME,
    summary: "an asynchronous Kayenta canary judgement (Argo's kayenta provider)",
    build,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_judged_against_the_thresholds() {
        assert_eq!(judge(90, 90, 75), Verdict::Successful);
        assert_eq!(judge(89, 90, 75), Verdict::Inconclusive);
        assert_eq!(judge(75, 90, 75), Verdict::Inconclusive);
        assert_eq!(judge(74, 90, 75), Verdict::Failed);
    }

    #[test]
    fn nested_fields_read_as_unstructured_reads_them() {
        let m = |v: Value| v.as_object().cloned().unwrap();
        let reply = m(json!({"complete": "yes", "result": {"judgeResult": 3}}));
        assert_eq!(
            nested_typed(&reply, &["complete"], "bool", Value::as_bool)
                .unwrap_err()
                .to_string(),
            ".complete accessor error: yes is of the type string, expected bool"
        );
        assert_eq!(
            nested_typed(
                &reply,
                &["result", "judgeResult", "score", "score"],
                "float64",
                Value::as_f64
            )
            .unwrap_err()
            .to_string(),
            ".result.judgeResult accessor error: 3 is of the type float64, expected map[string]interface{}"
        );
        assert!(
            nested_typed(&reply, &["result", "x", "y"], "float64", Value::as_f64)
                .unwrap()
                .is_none()
        );
        let reply = m(json!({"result": {"judgeResult": {"score": {"score": 87.5}}}}));
        assert_eq!(
            nested_typed(
                &reply,
                &["result", "judgeResult", "score", "score"],
                "float64",
                Value::as_f64
            )
            .unwrap(),
            Some(87.5)
        );
    }

    #[test]
    fn windows_fill_only_unset_scopes() {
        let metric: Metric = serde_json::from_value(json!({
            "name": "k", "interval": "5m", "provider": {}
        }))
        .unwrap();
        let now: Timestamp = "2026-08-17T11:10:42.5Z".parse().unwrap();
        let run = AnalysisRun::default();
        let window = Window {
            run: &run,
            metric: &metric,
            lookback: false,
            now,
        };
        let scope = |cs: Option<&str>, es: Option<&str>| KayentaScope {
            name: "default".into(),
            control_scope: ScopeDetail {
                scope: "app=stable".into(),
                region: "eu".into(),
                step: 60,
                start: cs.map(str::to_string),
                end: None,
            },
            experiment_scope: ScopeDetail {
                scope: "app=canary".into(),
                region: "eu".into(),
                step: 60,
                start: es.map(str::to_string),
                end: None,
            },
        };
        assert_eq!(
            window.scope(&scope(None, None)).unwrap()["controlScope"],
            json!({"scope": "app=stable", "location": "eu", "step": 60,
                   "start": "2026-08-17T11:05:42Z", "end": "2026-08-17T11:10:42Z"})
        );
        let fixed = window
            .scope(&scope(
                Some("2026-01-01T00:00:00Z"),
                Some("2026-01-01T00:00:00Z"),
            ))
            .unwrap();
        assert_eq!(
            fixed["experimentScope"]["start"],
            json!("2026-01-01T00:00:00Z")
        );
        assert_eq!(
            fixed["experimentScope"]["end"],
            json!("2026-08-17T11:10:42Z")
        );
        assert_eq!(
            window
                .scope(&scope(Some("x"), None))
                .unwrap_err()
                .to_string(),
            "controlScope.start and experimentScope.start must both be set or be empty"
        );
        let lookback = Window {
            run: &run,
            metric: &metric,
            lookback: true,
            now,
        };
        assert_eq!(
            lookback.scope(&scope(None, None)).unwrap_err().to_string(),
            "lookback needs the AnalysisRun's status.startedAt"
        );
    }
}
