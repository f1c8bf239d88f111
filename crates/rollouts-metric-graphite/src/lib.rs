//! The `graphite` metric provider: one query of Graphite's render API per measurement.
//!
//! ```yaml
//! provider:
//!   graphite:
//!     address: http://graphite.monitoring:8080
//!     query: target=summarize(asPercent(errors.{{args.service}},requests.{{args.service}}),'5min','sum')&from=-5min
//! ```
//!
//! As in Argo, `query` is itself a URL query string: every whitespace character is removed, the
//! pairs are parsed, `format=json` is set, and the pairs are re-encoded with their keys sorted, so
//! the request is `GET <address>/render?format=json&from=-5min&target=...` (the address' path is
//! kept: `http://host/graphite` queries `/graphite/render`). There is no authentication and the
//! HTTP deadline is 10 s.
//!
//! Only the first target of the answer counts. Its non-null datapoint values (numbers, or strings
//! that parse as floats) are the result, a list of floats (`result[0]`, `all(result, {# < 5})`),
//! and the measurement value is Go's `%f` rendering, `[12.000000,13.500000]`. No target or no
//! datapoint at all is an Error (`no values found`); datapoints that are all `null` give an empty
//! list, which the conditions judge (and report as "no data"). A status of 400 or more is an Error
//! `error response: <body>`.

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use reqwest::Url;
use rollouts_api::Metric;
use rollouts_plugin::{
    FloatResult, MeasureRequest, MetricProvider, MetricProviderPlugin, Observation, PluginError,
    ProviderInit, http,
};
use serde_json::Value;

/// The registry name: the JSON key of the provider block.
pub const NAME: &str = "graphite";

/// Argo's HTTP deadline for a render request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Go's `http.Client.Timeout` error text while waiting for the answer.
const CLIENT_TIMEOUT: &str =
    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";

/// Go's `http.Client.Timeout` error text while reading the body.
const BODY_TIMEOUT: &str =
    "context deadline exceeded (Client.Timeout or context cancellation while reading body)";

/// What can go wrong with a Graphite measurement; each message is the one Argo records.
#[derive(Debug, thiserror::Error)]
enum GraphiteError {
    #[error("metric {0:?} has no provider.graphite block")]
    NoBlock(String),
    #[error("Graphite address {0} is not a valid URL")]
    Address(String),
    #[error("{0}")]
    Client(String),
    /// The exchange failed (`Get "<url>": <reason>`).
    #[error("{0}")]
    Transport(String),
    #[error("error response: {0}")]
    Status(String),
    /// The body is not a render answer, worded as Go's decoder words it.
    #[error("{0}")]
    Decode(String),
    #[error("no values found")]
    NoValues,
}

/// The Graphite provider.
#[derive(Debug, Clone)]
pub struct GraphiteProvider {
    timeout: Duration,
}

impl Default for GraphiteProvider {
    fn default() -> Self {
        Self::new()
    }
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; a malformed escape is an error.
fn query_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let text = std::str::from_utf8(hex).ok()?;
                if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(text, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// The render query string Argo sends for `query`: whitespace removed, parsed as Go's
/// `url.ParseQuery` does (pairs with `;` or bad escapes dropped), `format=json` set, and encoded
/// as Go's `url.Values.Encode` does (keys sorted, values in their order).
pub fn render_query(query: &str) -> String {
    let compact: String = query
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c'))
        .collect();
    // Go parses `./render?<query>` as a URL: a `#` starts the fragment.
    let raw = compact.split('#').next().unwrap_or_default();
    let mut pairs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for part in raw.split('&') {
        if part.is_empty() || part.contains(';') {
            continue;
        }
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let (Some(key), Some(value)) = (query_unescape(key), query_unescape(value)) else {
            continue;
        };
        pairs.entry(key).or_default().push(value);
    }
    pairs.insert("format".into(), vec!["json".into()]);
    let mut out = String::new();
    for (key, values) in &pairs {
        for value in values {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(&http::query_escape(key));
            out.push('=');
            out.push_str(&http::query_escape(value));
        }
    }
    out
}

/// The render URL for `address` and `query`.
fn render_url(address: &str, query: &str) -> Result<Url, GraphiteError> {
    let invalid = || GraphiteError::Address(address.to_string());
    if address.is_empty() {
        return Err(invalid());
    }
    let mut url = Url::parse(address).map_err(|_| invalid())?;
    if url.cannot_be_a_base() {
        return Err(invalid());
    }
    let path = format!("{}/render", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(Some(&render_query(query)));
    url.set_fragment(None);
    Ok(url)
}

/// Go's `%g`-like `%v` rendering of a float (`1`, `0.5`, `1e+21`).
fn go_float_v(f: f64) -> String {
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
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        format!("{f}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// Go's `%v` of a decoded JSON value (`<nil>`, `true`, `[1 2]`, `map[a:1]`).
fn go_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_float_v(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            format!("[{}]", items.iter().map(go_v).collect::<Vec<_>>().join(" "))
        }
        Value::Object(map) => {
            let mut keys: Vec<_> = map.iter().collect();
            keys.sort_by(|a, b| a.0.cmp(b.0));
            format!(
                "map[{}]",
                keys.iter()
                    .map(|(k, v)| format!("{k}:{}", go_v(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
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

/// Go's `strconv.ParseFloat` (no hex floats or digit separators).
fn parse_go_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    let named = matches!(body, "inf" | "infinity" | "nan");
    let numeric = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'));
    if !(named || numeric) || (body == "nan" && lower != "nan") {
        return None;
    }
    s.parse().ok()
}

/// One datapoint `[value, timestamp]` as Argo decodes it: the value, if not null.
fn datapoint(point: &Value) -> Result<Option<f64>, GraphiteError> {
    let Value::Array(pair) = point else {
        return Err(GraphiteError::Decode(format!(
            "json: cannot unmarshal {} into Go value of type []interface {{}}",
            json_kind(point)
        )));
    };
    if pair.len() != 2 {
        return Err(GraphiteError::Decode(format!(
            "error unmarshaling data point: {}",
            go_v(point)
        )));
    }
    let value = match &pair[0] {
        Value::Null => None,
        Value::Number(n) => n.as_f64(),
        Value::String(s) => Some(parse_go_float(s).ok_or_else(|| {
            GraphiteError::Decode(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"))
        })?),
        other => {
            return Err(GraphiteError::Decode(format!(
                "error unmarshaling value: {}",
                go_v(other)
            )));
        }
    };
    match &pair[1] {
        Value::Null | Value::Number(_) => {}
        Value::String(s) => {
            let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(GraphiteError::Decode(format!(
                    "strconv.ParseInt: parsing {s:?}: invalid syntax"
                )));
            }
        }
        // Argo names the value here, not the timestamp.
        _ => {
            return Err(GraphiteError::Decode(format!(
                "error unmarshaling timestamp: {}",
                go_v(&pair[0])
            )));
        }
    }
    Ok(value)
}

/// The datapoint values of the first target of a render answer (`None` for null values); all
/// targets are decoded, as Go decodes the whole answer.
fn first_target(body: &[u8]) -> Result<Vec<Option<f64>>, GraphiteError> {
    let decoded: Value = serde_json::from_slice(body).map_err(|e| {
        GraphiteError::Decode(match body.trim_ascii().first() {
            None => "unexpected end of JSON input".to_string(),
            Some(&c) if !b"{[\"-0123456789tfn".contains(&c) => format!(
                "invalid character {:?} looking for beginning of value",
                char::from(c)
            ),
            _ => e.to_string(),
        })
    })?;
    let targets = match decoded {
        Value::Null => return Ok(Vec::new()),
        Value::Array(targets) => targets,
        other => {
            return Err(GraphiteError::Decode(format!(
                "json: cannot unmarshal {} into Go value of type graphite.graphiteResponse",
                json_kind(&other)
            )));
        }
    };
    let mut first = None;
    for target in &targets {
        let points = match target {
            Value::Object(fields) => match fields.get("datapoints") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(points)) => points
                    .iter()
                    .map(datapoint)
                    .collect::<Result<Vec<_>, _>>()?,
                Some(other) => {
                    return Err(GraphiteError::Decode(format!(
                        "json: cannot unmarshal {} into Go struct field graphiteTargetResp.datapoints of type []graphite.dataPoint",
                        json_kind(other)
                    )));
                }
            },
            Value::Null => Vec::new(),
            other => {
                return Err(GraphiteError::Decode(format!(
                    "json: cannot unmarshal {} into Go value of type graphite.graphiteTargetResp",
                    json_kind(other)
                )));
            }
        };
        first.get_or_insert(points);
    }
    Ok(first.unwrap_or_default())
}

/// Go's `%f`: six decimals, `NaN`, `+Inf`, `-Inf`.
fn go_f(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{f:.6}")
    }
}

/// The observation for the first target's datapoints.
fn observe(points: Vec<Option<f64>>) -> Result<Observation, GraphiteError> {
    if points.is_empty() {
        return Err(GraphiteError::NoValues);
    }
    let values: Vec<f64> = points.into_iter().flatten().collect();
    let value = format!(
        "[{}]",
        values
            .iter()
            .map(|v| go_f(*v))
            .collect::<Vec<_>>()
            .join(",")
    );
    Ok(Observation::Float {
        result: FloatResult::Vector(values),
        value,
        metadata: BTreeMap::new(),
    })
}

impl GraphiteProvider {
    /// A provider with Argo's 10 s HTTP deadline.
    pub fn new() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// This provider with another HTTP deadline (tests use a short one).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn query(&self, metric: &Metric) -> Result<Observation, GraphiteError> {
        let spec = metric
            .provider
            .graphite
            .as_ref()
            .ok_or_else(|| GraphiteError::NoBlock(metric.name.clone()))?;
        let url = render_url(
            spec.address.as_deref().unwrap_or_default(),
            spec.query.as_deref().unwrap_or_default(),
        )?;
        let client = http::client(false, Some(self.timeout)).map_err(GraphiteError::Client)?;
        let text = url.to_string();
        tracing::debug!(url = %text, "querying Graphite");
        let response = client.get(url).send().await.map_err(|e| {
            GraphiteError::Transport(http::transport_error("GET", &text, &e, CLIENT_TIMEOUT))
        })?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| GraphiteError::Transport(http::reason(&e, BODY_TIMEOUT)))?;
        if status >= 400 {
            return Err(GraphiteError::Status(
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        observe(first_target(&body)?)
    }
}

#[async_trait]
impl MetricProvider for GraphiteProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn run(&self, request: MeasureRequest<'_>) -> Observation {
        self.query(request.metric).await.unwrap_or_else(|err| {
            tracing::debug!(metric = %request.metric.name, error = %err, "graphite measurement failed");
            Observation::error(err.to_string())
        })
    }
}

fn build(_init: &ProviderInit) -> Result<Box<dyn MetricProvider>, PluginError> {
    Ok(Box::new(GraphiteProvider::new()))
}

rollouts_plugin::register_metric_provider!(MetricProviderPlugin {
    name: NAME,
    summary: "a Graphite render API query (Argo's graphite provider)",
    build,
});

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_query_is_reencoded_as_go_does_it() {
        assert_eq!(
            render_query("target=summarize(errors, '5min', 'sum')&from=-5min"),
            "format=json&from=-5min&target=summarize%28errors%2C%275min%27%2C%27sum%27%29"
        );
        // `format` is replaced, keys are sorted, repeated keys keep their order, bad pairs go.
        assert_eq!(
            render_query("target=b&format=raw&target=a&x=%zz&y;z=1&until=now"),
            "format=json&target=b&target=a&until=now"
        );
        assert_eq!(render_query(""), "format=json");
        assert_eq!(render_query("target=a+b#frag"), "format=json&target=a+b");
    }

    #[test]
    fn the_render_path_follows_the_address() {
        let url = |a: &str| render_url(a, "target=x").map(|u| u.to_string());
        assert_eq!(
            url("http://g:8080").unwrap(),
            "http://g:8080/render?format=json&target=x"
        );
        assert_eq!(
            url("https://g/graphite/").unwrap(),
            "https://g/graphite/render?format=json&target=x"
        );
        for bad in ["", "not a url", "mailto:x@y"] {
            assert_eq!(
                url(bad).unwrap_err().to_string(),
                format!("Graphite address {bad} is not a valid URL")
            );
        }
    }

    #[test]
    fn datapoints_decode_as_argo_decodes_them() {
        assert_eq!(datapoint(&json!([1.5, 1700000000])).unwrap(), Some(1.5));
        assert_eq!(datapoint(&json!([null, 1700000000])).unwrap(), None);
        assert_eq!(
            datapoint(&json!(["2.25", "1700000000"])).unwrap(),
            Some(2.25)
        );
        assert!(datapoint(&json!(["NaN", null])).unwrap().unwrap().is_nan());
        let err = |v: Value| datapoint(&v).unwrap_err().to_string();
        assert_eq!(
            err(json!([1, 2, 3])),
            "error unmarshaling data point: [1 2 3]"
        );
        assert_eq!(
            err(json!(["abc", 1])),
            r#"strconv.ParseFloat: parsing "abc": invalid syntax"#
        );
        assert_eq!(err(json!([true, 1])), "error unmarshaling value: true");
        assert_eq!(
            err(json!([1, "x"])),
            r#"strconv.ParseInt: parsing "x": invalid syntax"#
        );
        assert_eq!(err(json!([2.5, true])), "error unmarshaling timestamp: 2.5");
        assert_eq!(
            err(json!({"v": 1})),
            "json: cannot unmarshal object into Go value of type []interface {}"
        );
    }

    #[test]
    fn values_render_with_go_percent_f() {
        let Observation::Float { result, value, .. } =
            observe(vec![Some(12.0), None, Some(13.5), Some(f64::INFINITY)]).unwrap()
        else {
            panic!("a float observation")
        };
        assert_eq!(value, "[12.000000,13.500000,+Inf]");
        assert_eq!(result, FloatResult::Vector(vec![12.0, 13.5, f64::INFINITY]));
        let Observation::Float { value, result, .. } = observe(vec![None, None]).unwrap() else {
            panic!("a float observation")
        };
        assert_eq!(
            (value.as_str(), result),
            ("[]", FloatResult::Vector(vec![]))
        );
        assert_eq!(observe(vec![]).unwrap_err().to_string(), "no values found");
        assert_eq!(go_float_v(1e21), "1e+21");
        assert_eq!(go_float_v(1234567.0), "1.234567e+06");
        assert_eq!(go_float_v(0.00001), "1e-05");
        assert_eq!(go_float_v(123456.0), "123456");
    }
}
