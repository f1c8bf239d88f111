//! The `web` metric provider: an HTTP request whose response is the measurement.
//!
//! A metric with `provider.web` sends one request per measurement and hands the value selected by
//! `jsonPath` to the conditions, as Argo's web provider does:
//!
//! ```yaml
//! provider:
//!   web:
//!     url: "http://my-server.default.svc/api/health?service={{args.service}}"
//!     method: POST                       # GET (default), POST or PUT
//!     headers: [{key: Authorization, value: "Bearer {{args.token}}"}]
//!     jsonBody: {service: checkout}      # or body: "text"; not with GET
//!     timeoutSeconds: 20                 # default 10; 0 or less means 10
//!     jsonPath: "{$.data.ok}"            # client-go JSONPath template, default {$}
//!     insecure: false                    # skip TLS verification
//!     authentication:
//!       oauth2: {tokenUrl: ..., clientId: ..., clientSecret: ..., scopes: [...]}
//! ```
//!
//! - A 2xx response whose body is JSON: `result` is the first value `jsonPath` selects, and
//!   `measurement.value` is its Go JSON encoding (`0.99`, `"ok"`, `{"a":1}`).
//! - A 2xx response whose body is not JSON (or is empty): `result` and `value` are the body text.
//! - Anything else is an Error measurement with Argo's message: `received non 2xx response code:
//!   500`, `Could not find JSONPath in body: rate is not found`, `result of web metric produced no
//!   value`, `Get "http://...": context deadline exceeded (Client.Timeout exceeded while awaiting
//!   headers)`, ...
//!
//! The JSONPath dialect is client-go's, implemented by this crate's `jsonpath` module (see its docs).

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use rollouts_api::WebMetric;
use rollouts_plugin::{
    MeasureRequest, MetricProvider, MetricProviderPlugin, Observation, PluginError, ProviderInit,
    go, http,
};

mod jsonpath;

/// The registry name: the JSON key of the provider block.
pub const NAME: &str = "web";

/// What can go wrong with a web measurement; each message is the one Argo records.
#[derive(Debug, thiserror::Error)]
enum WebError {
    #[error("metric {0:?} has no provider.web block")]
    NoBlock(String),
    #[error("{0}")]
    JsonPathSyntax(String),
    #[error("missing mandatory parameter in metric for OAuth2 setup")]
    OAuth2Incomplete,
    #[error("use either Body or JSONBody; both cannot exists for WebMetric payload")]
    TwoBodies,
    #[error("Body/JSONBody can only be used with POST or PUT WebMetric Method types")]
    BodyWithGet,
    #[error("net/http: invalid method {0:?}")]
    Method(String),
    #[error("parse {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("net/http: invalid header field {0}")]
    Header(String),
    #[error("{0}")]
    Client(String),
    #[error("{0}")]
    Transport(String),
    #[error("received non 2xx response code: {0}")]
    Status(u16),
    #[error("Received no bytes in response: {0}")]
    Body(String),
    #[error("Could not find JSONPath in body: {0}")]
    JsonPath(String),
    #[error("result of web metric produced no value")]
    NoValue,
}

/// Go's `http.Client.Timeout` error text.
const CLIENT_TIMEOUT: &str =
    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";

/// The web provider. Stateless: everything comes from the metric of each measurement.
#[derive(Debug, Default)]
pub struct WebProvider;

#[async_trait]
impl MetricProvider for WebProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn run(&self, request: MeasureRequest<'_>) -> Observation {
        let Some(web) = request.metric.provider.web.as_ref() else {
            return Observation::error(WebError::NoBlock(request.metric.name.clone()).to_string());
        };
        match measure(web).await {
            Ok(observation) => observation,
            Err(err) => {
                tracing::debug!(metric = %request.metric.name, error = %err, "web measurement failed");
                Observation::error(err.to_string())
            }
        }
    }
}

async fn measure(web: &WebMetric) -> Result<Observation, WebError> {
    // Provider construction in Argo: the JSONPath template and the HTTP client.
    let template = jsonpath::parse(web.json_path.as_deref().unwrap_or("{$}"))
        .map_err(WebError::JsonPathSyntax)?;
    let timeout = match web.timeout_seconds {
        Some(seconds) if seconds > 0 => Duration::from_secs(seconds.unsigned_abs()),
        _ => Duration::from_secs(10),
    };
    let oauth2 = web
        .authentication
        .as_ref()
        .and_then(|a| a.oauth2.as_ref())
        .filter(|o| !o.token_url.as_deref().unwrap_or_default().is_empty());
    if let Some(o) = oauth2
        && (o.client_id.as_deref().unwrap_or_default().is_empty()
            || o.client_secret.as_deref().unwrap_or_default().is_empty())
    {
        return Err(WebError::OAuth2Incomplete);
    }
    let client =
        http::client(web.insecure.unwrap_or(false), Some(timeout)).map_err(WebError::Client)?;

    // The request.
    let method = match web.method.as_deref() {
        None | Some("") => "GET",
        Some(m) => m,
    };
    let body = web.body.as_deref().unwrap_or_default();
    if !body.is_empty() && web.json_body.is_some() {
        return Err(WebError::TwoBodies);
    }
    if (!body.is_empty() || web.json_body.is_some()) && method == "GET" {
        return Err(WebError::BodyWithGet);
    }
    let http_method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| WebError::Method(method.to_string()))?;
    let url = reqwest::Url::parse(&web.url).map_err(|e| WebError::Url {
        url: web.url.clone(),
        reason: e.to_string(),
    })?;
    let mut headers = reqwest::header::HeaderMap::new();
    for header in web.headers.iter().flatten() {
        let name = reqwest::header::HeaderName::from_bytes(header.key.as_bytes())
            .map_err(|_| WebError::Header(format!("name {:?}", header.key)))?;
        let value = reqwest::header::HeaderValue::from_str(&header.value)
            .map_err(|_| WebError::Header(format!("value for {:?}", header.key)))?;
        headers.insert(name, value);
    }
    let mut builder = client.request(http_method, url);
    if let Some(json) = &web.json_body {
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        builder = builder.body(serde_json::to_vec(json).unwrap_or_default());
    } else if !body.is_empty() {
        builder = builder.body(body.to_string());
    }
    if let Some(o) = oauth2 {
        let credentials = http::ClientCredentials {
            token_url: o.token_url.as_deref().unwrap_or_default(),
            client_id: o.client_id.as_deref().unwrap_or_default(),
            client_secret: o.client_secret.as_deref().unwrap_or_default(),
            scopes: o.scopes.as_deref().unwrap_or_default(),
        };
        let authorization = http::fetch_token(&client, credentials)
            .await
            .map_err(|e| WebError::Transport(format!("{} {:?}: {e}", go_op(method), web.url)))?;
        if let Ok(value) = reqwest::header::HeaderValue::from_str(&authorization) {
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
    }
    let response = builder.headers(headers).send().await.map_err(|e| {
        WebError::Transport(http::transport_error(method, &web.url, &e, CLIENT_TIMEOUT))
    })?;

    let status = response.status();
    if !status.is_success() {
        return Err(WebError::Status(status.as_u16()));
    }
    let bytes = response.bytes().await.map_err(|e| {
        WebError::Body(if e.is_timeout() {
            CLIENT_TIMEOUT.to_string()
        } else {
            http::reason(&e, CLIENT_TIMEOUT)
        })
    })?;

    // The value.
    let Ok(document) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        return Ok(Observation::Value {
            result: serde_json::Value::String(text.clone()),
            value: text,
            metadata: BTreeMap::new(),
        });
    };
    let found = template
        .first_value(&document)
        .map_err(WebError::JsonPath)?
        .ok_or(WebError::NoValue)?;
    Ok(Observation::Value {
        value: go::marshal_json(&found),
        result: found,
        metadata: BTreeMap::new(),
    })
}

/// Go's `url.Error` operation for a method (`Get`, `Post`).
fn go_op(method: &str) -> String {
    let lower = method.to_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn build(_init: &ProviderInit) -> Result<Box<dyn MetricProvider>, PluginError> {
    Ok(Box::new(WebProvider))
}

rollouts_plugin::register_metric_provider!(MetricProviderPlugin {
    name: NAME,
    summary: "an HTTP request; jsonPath selects the value (Argo's web provider)",
    build,
});
