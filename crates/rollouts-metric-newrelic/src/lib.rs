//! The `newRelic` metric provider: an NRQL query through New Relic's NerdGraph (GraphQL) API.
//!
//! ```yaml
//! provider:
//!   newRelic:
//!     profile: newrelic-shop    # the Secret with the account (default `newrelic`)
//!     timeout: 10               # NRQL timeout in seconds (default 5; not negative)
//!     query: SELECT apdex(duration, t:0.3) FROM Transaction SINCE 5 minutes ago
//! ```
//!
//! The profile Secret lives in the controller's namespace and holds `personal-api-key`,
//! `account-id` (a number), and optionally `region` (`us`, the default, `eu`, `jp`, `gov`, ...)
//! and `base-url-nerdgraph` (overrides the region's `https://api.newrelic.com/graphql`).
//!
//! Each measurement is one `POST` of a GraphQL query with the variables `accountId`, `query` and
//! `timeout`, authenticated by the `API-Key` header. The NRQL rows are the result, as in Argo:
//! one row is a map (`result.count`), several rows a list of maps (`result[0].count`), and the
//! measurement value is their JSON (`{"count":10}`). No rows, or one empty row, is an Error
//! (`no results returned from NRQL query`).
//!
//! Transport as New Relic's Go client does it: a 30 s HTTP deadline, up to 3 retries with
//! exponential back-off on connection errors, 429, 500 and 502+ answers and retryable GraphQL
//! errors (`TIMEOUT`, `INTERNAL_SERVER_ERROR`, `SERVER_ERROR`), and its error wording:
//! `401 response returned: Invalid credentials provided. ...`, `403 response returned: <GraphQL
//! messages>`, `POST <url> giving up after 4 attempt(s)`, the GraphQL `errors` messages joined
//! with `, `.

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use rollouts_api::Metric;
use rollouts_plugin::{
    MeasureRequest, MetricProvider, MetricProviderPlugin, Observation, PluginError, ProviderInit,
    go, http,
};
use serde_json::{Value, json};

/// The registry name: the JSON key of the provider block.
pub const NAME: &str = "newRelic";

/// The Secret read when a metric names no `profile`.
pub const DEFAULT_PROFILE: &str = "newrelic";

/// The metric-result metadata key holding the query.
pub const RESOLVED_QUERY_KEY: &str = "ResolvedNewRelicQuery";

/// The NRQL timeout when the metric sets none, in seconds.
const DEFAULT_NRQL_TIMEOUT: i64 = 5;

/// The GraphQL document: one NRQL query on one account.
const NRQL_DOCUMENT: &str = "query ($query: Nrql!, $accountId: Int!, $timeout: Seconds!) { actor { account(id: $accountId) { nrql(query: $query, timeout: $timeout) { results } } } }";

/// Go's `http.Client.Timeout` error text.
const CLIENT_TIMEOUT: &str =
    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";

/// What New Relic's client says for a 401 with GraphQL errors (or a `BAD_API_KEY` error).
const UNAUTHORIZED: &str =
    "Invalid credentials provided. Missing API key or an invalid API key was provided.";

/// What can go wrong with a New Relic measurement; each message is the one Argo records.
#[derive(Debug, thiserror::Error)]
enum NewRelicError {
    #[error("metric {0:?} has no provider.newRelic block")]
    NoBlock(String),
    /// Reading the profile Secret failed (`secrets "newrelic" not found`).
    #[error("{0}")]
    Secret(String),
    #[error("account ID or personal API key not found")]
    NoKey,
    #[error("could not parse account ID: strconv.Atoi: parsing {0:?}: invalid syntax")]
    AccountId(String),
    #[error("timeout value needs to be a positive value")]
    NegativeTimeout,
    #[error("{0}")]
    Client(String),
    /// A failed exchange or an API error, worded as New Relic's Go client words it.
    #[error("{0}")]
    Api(String),
    #[error("no results returned from NRQL query")]
    NoResults,
}

/// Retries as go-retryablehttp does them for New Relic's client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Retries after the first attempt (New Relic's client: 3).
    pub max: u32,
    /// The first back-off; it doubles on each retry (1 s).
    pub wait_min: Duration,
    /// The longest back-off (30 s).
    pub wait_max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            max: 3,
            wait_min: Duration::from_secs(1),
            wait_max: Duration::from_secs(30),
        }
    }
}

impl Retry {
    /// The wait before retry number `attempt` (0-based); a 429 or 503 with `Retry-After` (in
    /// seconds) waits that long instead.
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait;
        }
        let factor = 2u32.saturating_pow(attempt);
        self.wait_min.saturating_mul(factor).min(self.wait_max)
    }
}

/// The New Relic provider.
pub struct NewRelicProvider {
    client: Option<kube::Client>,
    controller_namespace: String,
    retry: Retry,
    http_timeout: Duration,
}

impl std::fmt::Debug for NewRelicProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRelicProvider")
            .field("client", &self.client.is_some())
            .field("controller_namespace", &self.controller_namespace)
            .field("retry", &self.retry)
            .field("http_timeout", &self.http_timeout)
            .finish()
    }
}

/// The account settings of a profile Secret.
struct Profile {
    api_key: String,
    account_id: i64,
    url: String,
}

/// The NerdGraph URL of a region, as New Relic's client knows them; an unknown region is `us`.
fn region_url(region: &str) -> &'static str {
    match region.to_ascii_lowercase().as_str() {
        "eu" => "https://api.eu.newrelic.com/graphql",
        "jp" => "https://api.jp.newrelic.com/graphql",
        "gov" | "fedramp" => "https://gov-api.newrelic.com/graphql",
        "staging" => "https://staging-api.newrelic.com/graphql",
        "local" => "http://localhost:3000/graphql",
        _ => "https://api.newrelic.com/graphql",
    }
}

/// Go's `strconv.Atoi`.
fn atoi(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl Profile {
    fn from_secret(secret: &Secret) -> Result<Self, NewRelicError> {
        let data = secret.data.clone().unwrap_or_default();
        let text = |key: &str| {
            data.get(key)
                .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        };
        let api_key = text("personal-api-key").unwrap_or_default();
        let account = text("account-id").unwrap_or_default();
        if api_key.is_empty() || account.is_empty() {
            return Err(NewRelicError::NoKey);
        }
        let account_id = atoi(&account).ok_or(NewRelicError::AccountId(account))?;
        let url = match text("base-url-nerdgraph").filter(|u| !u.is_empty()) {
            Some(url) => url,
            None => region_url(text("region").as_deref().unwrap_or("us")).to_string(),
        };
        Ok(Self {
            api_key,
            account_id,
            url,
        })
    }
}

/// GraphQL `errors`, as New Relic's client reads them.
#[derive(Default)]
struct GraphQlErrors {
    messages: Vec<String>,
    retryable: bool,
    bad_api_key: bool,
    deprecated: bool,
}

impl GraphQlErrors {
    fn read(body: &Value) -> Self {
        let mut out = Self::default();
        for e in body
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let message = e.get("message").and_then(Value::as_str).unwrap_or_default();
            let extensions = e.get("extensions");
            let class = extensions
                .and_then(|x| x.get("errorClass"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let code = extensions
                .and_then(|x| x.get("errorCode"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            out.retryable |= matches!(class, "TIMEOUT" | "INTERNAL_SERVER_ERROR" | "SERVER_ERROR");
            out.bad_api_key |= code == "BAD_API_KEY";
            out.deprecated |= message.starts_with("This field is deprecated!");
            if !message.is_empty() {
                out.messages.push(message.to_string());
            }
        }
        out
    }

    fn any(&self) -> bool {
        !self.messages.is_empty() || self.retryable || self.bad_api_key
    }

    fn text(&self) -> String {
        self.messages.join(", ")
    }
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

/// The rows as the conditions see them and as the measurement records them.
fn observe(results: Vec<Value>) -> Result<Observation, NewRelicError> {
    let result = match results.len() {
        0 => return Err(NewRelicError::NoResults),
        1 => {
            let row = results.into_iter().next().unwrap_or_default();
            if row.as_object().is_none_or(|m| m.is_empty()) {
                return Err(NewRelicError::NoResults);
            }
            row
        }
        _ => Value::Array(results),
    };
    let result = as_go_floats(result);
    Ok(Observation::Value {
        value: go::marshal_json(&result),
        result,
        metadata: BTreeMap::new(),
    })
}

impl NewRelicProvider {
    /// A provider that reads profile Secrets from `controller_namespace` with `client` (none:
    /// every measurement fails for want of a Secret), with New Relic's client's retries and 30 s
    /// HTTP deadline.
    pub fn new(client: Option<kube::Client>, controller_namespace: impl Into<String>) -> Self {
        Self {
            client,
            controller_namespace: controller_namespace.into(),
            retry: Retry::default(),
            http_timeout: Duration::from_secs(30),
        }
    }

    /// This provider with other retries (tests use short waits).
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// This provider with another HTTP deadline per attempt.
    pub fn with_http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    async fn profile(&self, name: &str) -> Result<Profile, NewRelicError> {
        let secret = rollouts_plugin::objects::read_secret(
            self.client.as_ref(),
            &self.controller_namespace,
            name,
        )
        .await
        .map_err(NewRelicError::Secret)?;
        Profile::from_secret(&secret)
    }

    async fn query(&self, metric: &Metric) -> Result<Observation, NewRelicError> {
        let spec = metric
            .provider
            .new_relic
            .as_ref()
            .ok_or_else(|| NewRelicError::NoBlock(metric.name.clone()))?;
        let profile_name = spec
            .profile
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_PROFILE);
        let profile = self.profile(profile_name).await?;
        let timeout = spec.timeout.unwrap_or(DEFAULT_NRQL_TIMEOUT);
        if timeout < 0 {
            return Err(NewRelicError::NegativeTimeout);
        }
        let body = json!({
            "query": NRQL_DOCUMENT,
            "variables": {"accountId": profile.account_id, "query": spec.query, "timeout": timeout},
        });
        let data = self.post(&profile, body.to_string()).await?;
        let results = data
            .pointer("/data/actor/account/nrql/results")
            .cloned()
            .unwrap_or(Value::Null);
        let rows = match results {
            Value::Null => Vec::new(),
            Value::Array(rows) => rows,
            other => {
                return Err(NewRelicError::Api(format!(
                    "json: cannot unmarshal {} into Go struct field NRDBResultContainer.results of type []nrdb.NRDBResult",
                    if other.is_object() { "object" } else { "value" }
                )));
            }
        };
        observe(rows)
    }

    /// One GraphQL exchange with New Relic's client's retries; the decoded body on success.
    async fn post(&self, profile: &Profile, body: String) -> Result<Value, NewRelicError> {
        let client = http::client(false, Some(self.http_timeout)).map_err(NewRelicError::Client)?;
        let url = profile.url.as_str();
        let attempts = self.retry.max + 1;
        let mut attempt = 0;
        loop {
            let sent = client
                .post(url)
                .header("Content-Type", "application/json")
                .header("Api-Key", &profile.api_key)
                .header(
                    "User-Agent",
                    concat!("rollouts-rs/", env!("CARGO_PKG_VERSION")),
                )
                .header("NewRelic-Requesting-Services", "rollouts-rs")
                .header("X-Query-Source-Component-Id", "rollouts-rs")
                .body(body.clone())
                .send()
                .await;
            let last = attempt + 1 >= attempts;
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    let reason = http::transport_error("POST", url, &e, CLIENT_TIMEOUT);
                    if last {
                        return Err(NewRelicError::Api(format!(
                            "POST {url} giving up after {attempts} attempt(s): {reason}"
                        )));
                    }
                    tracing::debug!(url, error = %reason, attempt, "retrying the NerdGraph request");
                    tokio::time::sleep(self.retry.backoff(attempt, None)).await;
                    attempt += 1;
                    continue;
                }
            };
            let code = response.status().as_u16();
            if code == 429 || code == 500 || code >= 502 || code == 0 {
                let retry_after = (code == 429 || code == 503)
                    .then(|| response.headers().get("retry-after"))
                    .flatten()
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                if last {
                    return Err(NewRelicError::Api(format!(
                        "POST {url} giving up after {attempts} attempt(s)"
                    )));
                }
                tracing::debug!(url, code, attempt, "retrying the NerdGraph request");
                tokio::time::sleep(self.retry.backoff(attempt, retry_after)).await;
                attempt += 1;
                continue;
            }
            if code == 404 {
                return Err(NewRelicError::Api("resource not found".into()));
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|e| NewRelicError::Api(http::reason(&e, CLIENT_TIMEOUT)))?;
            let decoded: Result<Value, _> = serde_json::from_slice(&bytes);
            let errors = decoded
                .as_ref()
                .map(GraphQlErrors::read)
                .unwrap_or_default();
            if !(200..=299).contains(&code) {
                if errors.any() && (code == 401 || errors.bad_api_key) {
                    return Err(NewRelicError::Api(format!(
                        "401 response returned: {UNAUTHORIZED}"
                    )));
                }
                if code == 402 {
                    return Err(NewRelicError::Api(
                        "402 response returned: Payment Required".into(),
                    ));
                }
                let text = errors.text();
                return Err(NewRelicError::Api(if text.is_empty() {
                    format!("{code} response returned")
                } else {
                    format!("{code} response returned: {text}")
                }));
            }
            if errors.retryable {
                if last {
                    return Err(NewRelicError::Api(format!(
                        "maximum retries reached: {}",
                        errors.text()
                    )));
                }
                tracing::debug!(url, errors = %errors.text(), attempt, "retrying the NerdGraph query");
                tokio::time::sleep(self.retry.backoff(attempt, None)).await;
                attempt += 1;
                continue;
            }
            if !errors.deprecated && !errors.text().is_empty() {
                return Err(NewRelicError::Api(errors.text()));
            }
            return decoded.map_err(|e| NewRelicError::Api(json_error(&bytes, &e)));
        }
    }
}

#[async_trait]
impl MetricProvider for NewRelicProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn run(&self, request: MeasureRequest<'_>) -> Observation {
        self.query(request.metric).await.unwrap_or_else(|err| {
            tracing::debug!(metric = %request.metric.name, error = %err, "newRelic measurement failed");
            Observation::error(err.to_string())
        })
    }

    fn metadata(&self, metric: &Metric) -> BTreeMap<String, String> {
        metric
            .provider
            .new_relic
            .as_ref()
            .map(|n| n.query.clone())
            .filter(|q| !q.is_empty())
            .map(|q| BTreeMap::from([(RESOLVED_QUERY_KEY.to_string(), q)]))
            .unwrap_or_default()
    }
}

fn build(init: &ProviderInit) -> Result<Box<dyn MetricProvider>, PluginError> {
    Ok(Box::new(NewRelicProvider::new(
        init.client.clone(),
        init.controller_namespace.clone(),
    )))
}

rollouts_plugin::register_metric_provider!(MetricProviderPlugin {
    name: NAME,
    summary: "an NRQL query through NerdGraph (Argo's newRelic provider)",
    build,
});

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;

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

    fn profile_error(pairs: &[(&str, &str)]) -> String {
        Profile::from_secret(&secret(pairs))
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn profiles_read_as_argo_reads_them() {
        assert_eq!(
            profile_error(&[("personal-api-key", "k")]),
            "account ID or personal API key not found"
        );
        assert_eq!(
            profile_error(&[("personal-api-key", "k"), ("account-id", "12a")]),
            r#"could not parse account ID: strconv.Atoi: parsing "12a": invalid syntax"#
        );
        let p = Profile::from_secret(&secret(&[
            ("personal-api-key", "k"),
            ("account-id", "12345"),
        ]))
        .unwrap();
        assert_eq!(
            (p.account_id, p.url.as_str()),
            (12345, "https://api.newrelic.com/graphql")
        );
        let p = Profile::from_secret(&secret(&[
            ("personal-api-key", "k"),
            ("account-id", "1"),
            ("region", "EU"),
        ]))
        .unwrap();
        assert_eq!(p.url, "https://api.eu.newrelic.com/graphql");
        let p = Profile::from_secret(&secret(&[
            ("personal-api-key", "k"),
            ("account-id", "1"),
            ("region", "eu"),
            ("base-url-nerdgraph", "http://127.0.0.1:1/graphql"),
        ]))
        .unwrap();
        assert_eq!(p.url, "http://127.0.0.1:1/graphql");
        assert_eq!(region_url("mars"), "https://api.newrelic.com/graphql");
    }

    #[test]
    fn rows_become_a_map_or_a_list() {
        let Observation::Value { result, value, .. } =
            observe(vec![json!({"count": 10, "average.duration": 12.3})]).unwrap()
        else {
            panic!("a value")
        };
        assert_eq!(value, r#"{"average.duration":12.3,"count":10}"#);
        assert_eq!(result["count"], json!(10.0));
        let Observation::Value { value, .. } =
            observe(vec![json!({"n": 1}), json!({"n": 2})]).unwrap()
        else {
            panic!("a value")
        };
        assert_eq!(value, r#"[{"n":1},{"n":2}]"#);
        for empty in [vec![], vec![json!({})]] {
            assert_eq!(
                observe(empty).unwrap_err().to_string(),
                "no results returned from NRQL query"
            );
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let r = Retry::default();
        assert_eq!(r.backoff(0, None), Duration::from_secs(1));
        assert_eq!(r.backoff(2, None), Duration::from_secs(4));
        assert_eq!(r.backoff(10, None), Duration::from_secs(30));
        assert_eq!(
            r.backoff(0, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn graphql_errors_are_classified() {
        let e = GraphQlErrors::read(&json!({"errors": [
            {"message": "NRQL Syntax error", "extensions": {"errorClass": "INVALID_INPUT"}},
            {"message": "second"}
        ]}));
        assert_eq!(e.text(), "NRQL Syntax error, second");
        assert!(!e.retryable && !e.bad_api_key);
        let e = GraphQlErrors::read(&json!({"errors": [
            {"message": "slow", "extensions": {"errorClass": "TIMEOUT"}}
        ]}));
        assert!(e.retryable);
    }
}
