//! HTTP helpers for providers that call a metrics server (feature `http`): a client built the way
//! Argo's Go providers build theirs, Go's wording of transport errors, and OAuth2 client
//! credentials as `golang.org/x/oauth2/clientcredentials` fetches them.
//!
//! The base URL always comes from the metric, so tests point providers at a server on 127.0.0.1.

use std::time::Duration;

/// Builds a client: TLS through rustls, certificate checks off when `insecure`, and an overall
/// deadline per request when `timeout` is set.
///
/// reqwest is built without a default crypto provider (see `docs/architecture.md`); every binary
/// installs ring first thing in `main`. Should a host forget, this installs ring here rather than
/// let reqwest panic.
pub fn client(insecure: bool, timeout: Option<Duration>) -> Result<reqwest::Client, String> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one first, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let mut builder = reqwest::Client::builder().danger_accept_invalid_certs(insecure);
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    builder
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

/// Go's `url.Error` operation for a method: `Get`, `Post`, `Put`.
fn go_op(method: &str) -> String {
    let mut chars = method.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// Describes a failed exchange as Go's `net/http` does: `Get "http://host/path": <reason>`.
///
/// `deadline` is what Go says when the deadline passed: `context deadline exceeded` for a context
/// deadline (Prometheus), or `context deadline exceeded (Client.Timeout exceeded while awaiting
/// headers)` for a client timeout (web).
pub fn transport_error(method: &str, url: &str, error: &reqwest::Error, deadline: &str) -> String {
    format!("{} {url:?}: {}", go_op(method), reason(error, deadline))
}

/// The reason part of [`transport_error`].
pub fn reason(error: &reqwest::Error, deadline: &str) -> String {
    if error.is_timeout() {
        return deadline.to_string();
    }
    // The innermost cause says what happened ("connection refused", "invalid certificate").
    let mut innermost = None;
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            let address = error
                .url()
                .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
                .unwrap_or_default();
            return format!("dial tcp {address}: connect: connection refused");
        }
        innermost = Some(cause.to_string());
        source = cause.source();
    }
    innermost.unwrap_or_else(|| error.to_string())
}

/// OAuth2 client-credentials settings (`authentication.oauth2`).
#[derive(Clone, Copy, Debug)]
pub struct ClientCredentials<'a> {
    /// The token endpoint.
    pub token_url: &'a str,
    /// The client id.
    pub client_id: &'a str,
    /// The client secret.
    pub client_secret: &'a str,
    /// Scopes, sent space-separated when there are any.
    pub scopes: &'a [String],
}

/// Fetches a token and returns the `Authorization` header value (`Bearer <token>`).
///
/// Like `golang.org/x/oauth2`, the client authenticates with HTTP basic auth first and, when that
/// fails, again with `client_id`/`client_secret` in the form; errors use its wording
/// (`oauth2: cannot fetch token: 401 Unauthorized\nResponse: ...`).
pub async fn fetch_token(
    client: &reqwest::Client,
    credentials: ClientCredentials<'_>,
) -> Result<String, String> {
    match request_token(client, credentials, true).await {
        Ok(header) => Ok(header),
        Err(first) => request_token(client, credentials, false)
            .await
            .map_err(|_| first),
    }
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&query_escape(key));
        out.push('=');
        out.push_str(&query_escape(value));
    }
    out
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn request_token(
    client: &reqwest::Client,
    c: ClientCredentials<'_>,
    in_header: bool,
) -> Result<String, String> {
    let scope = c.scopes.join(" ");
    let mut pairs = vec![("grant_type", "client_credentials")];
    if !c.scopes.is_empty() {
        pairs.push(("scope", scope.as_str()));
    }
    if !in_header {
        pairs.push(("client_id", c.client_id));
        if !c.client_secret.is_empty() {
            pairs.push(("client_secret", c.client_secret));
        }
    }
    pairs.sort_by_key(|(k, _)| *k);
    let mut request = client
        .post(c.token_url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form_encode(&pairs));
    if in_header {
        request = request.basic_auth(
            query_escape(c.client_id),
            Some(query_escape(c.client_secret)),
        );
    }
    let response = request.send().await.map_err(|e| {
        format!(
            "oauth2: cannot fetch token: {}",
            transport_error("POST", c.token_url, &e, "context deadline exceeded")
        )
    })?;
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("oauth2: cannot fetch token: {e}"))?;
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let form = content_type.starts_with("application/x-www-form-urlencoded")
        || content_type.starts_with("text/plain");
    let field = |name: &str| -> Option<String> {
        if form {
            body_text.split('&').find_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (k == name).then(|| v.replace('+', " "))
            })
        } else {
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()?
                .get(name)?
                .as_str()
                .map(str::to_string)
        }
    };
    if !status.is_success() {
        if let Some(code) = field("error").filter(|c| !c.is_empty()) {
            let mut message = format!("oauth2: {code:?}");
            for extra in ["error_description", "error_uri"] {
                if let Some(text) = field(extra).filter(|t| !t.is_empty()) {
                    message.push_str(&format!(" {text:?}"));
                }
            }
            return Err(message);
        }
        return Err(format!(
            "oauth2: cannot fetch token: {}\nResponse: {body_text}",
            status_text(status)
        ));
    }
    let token = field("access_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "oauth2: server response missing access_token".to_string())?;
    let kind = match field("token_type").unwrap_or_default() {
        t if t.is_empty() || t.eq_ignore_ascii_case("bearer") => "Bearer".to_string(),
        t if t.eq_ignore_ascii_case("mac") => "MAC".to_string(),
        t if t.eq_ignore_ascii_case("basic") => "Basic".to_string(),
        t => t,
    };
    Ok(format!("{kind} {token}"))
}

/// Go's `Response.Status`: `404 Not Found`.
pub fn status_text(status: reqwest::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_and_escapes_follow_go() {
        assert_eq!(go_op("GET"), "Get");
        assert_eq!(go_op("post"), "Post");
        assert_eq!(query_escape("a b&c=d~*"), "a+b%26c%3Dd~%2A");
        assert_eq!(
            form_encode(&[("query", "up == 1"), ("time", "1.5")]),
            "query=up+%3D%3D+1&time=1.5"
        );
        assert_eq!(
            status_text(reqwest::StatusCode::UNAUTHORIZED),
            "401 Unauthorized"
        );
    }

    #[tokio::test]
    async fn refused_connections_read_like_go() {
        let client = client(false, Some(Duration::from_secs(5))).unwrap();
        // Port 9 on loopback: nothing listens there in the test environment (discard service).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("http://127.0.0.1:{port}/x");
        let err = client.get(&url).send().await.unwrap_err();
        assert_eq!(
            transport_error("GET", &url, &err, "context deadline exceeded"),
            format!("Get \"{url}\": dial tcp 127.0.0.1:{port}: connect: connection refused")
        );
    }
}
