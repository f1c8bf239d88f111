//! AWS Signature Version 4, as much of it as the ELBv2 Query API needs: a request (method, path,
//! query, headers, body) and credentials in, the `Authorization` header value out.
//!
//! The steps are AWS's: a *canonical request* (method, normalized and URI-encoded path, sorted
//! URI-encoded query, lower-cased sorted headers with trimmed values, signed header list, hex
//! SHA-256 of the body), a *string to sign* (algorithm, `x-amz-date`, credential scope, hex
//! SHA-256 of the canonical request), a *signing key* (HMAC-SHA256 chain over the date, region,
//! service and `aws4_request`, starting from `"AWS4" + secret`), and the hex HMAC of the string to
//! sign with that key. SHA-256 and HMAC come from `ring`, which the TLS stack already builds.
//!
//! The tests check every step against vectors of AWS's published SigV4 test suite (re-typed as
//! our own fixtures).

use ring::{digest, hmac};

/// The algorithm name in the string to sign and the `Authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Static AWS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN`, for temporary credentials; sent (and signed) as
    /// `X-Amz-Security-Token`.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

/// A request to sign. `headers` are the headers to sign, as sent: they must include `host` and
/// `x-amz-date` (and `x-amz-security-token` with temporary credentials). Names are matched
/// case-insensitively; a name given twice has its values joined with `,` in order.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path, as in the request line (`/`).
    pub path: &'a str,
    /// The raw query string without `?` (empty for none).
    pub query: &'a str,
    /// The headers to sign.
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
}

/// Where and when a request is signed.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// `x-amz-date`, e.g. `20150830T123600Z`; its first 8 characters are the scope's date.
    pub amz_date: &'a str,
    /// The region, e.g. `us-east-1`.
    pub region: &'a str,
    /// The signing name of the service, e.g. `elasticloadbalancing`.
    pub service: &'a str,
}

impl Scope<'_> {
    /// `<date>/<region>/<service>/aws4_request`.
    pub fn credential_scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date(),
            self.region,
            self.service
        )
    }

    fn date(&self) -> &str {
        self.amz_date.get(..8).unwrap_or(self.amz_date)
    }
}

/// `x-amz-date` for a moment: `YYYYMMDDTHHMMSSZ` in UTC.
pub fn amz_date(at: jiff::Timestamp) -> String {
    at.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

/// AWS's URI encoding: unreserved characters (`A-Z a-z 0-9 - _ . ~`) as they are, every other
/// byte as `%XX` (upper-case hex); with `keep_slash`, `/` is kept (paths).
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`), leaving bad escapes as
/// they are.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hi = char::from(bytes[i + 1]).to_digit(16);
                let lo = char::from(bytes[i + 2]).to_digit(16);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        // Two hex digits always fit a byte.
                        out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The canonical URI of a path (services other than S3): dot segments resolved, empty segments
/// dropped (a trailing `/` kept), each segment URI-encoded.
pub fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(
        &segments
            .iter()
            .map(|s| uri_encode(s, false))
            .collect::<Vec<_>>()
            .join("/"),
    );
    let trailing = path.len() > 1 && path.ends_with('/') && !segments.is_empty();
    if trailing {
        out.push('/');
    }
    out
}

/// The canonical query string: each `name=value` decoded and re-encoded, sorted by name then
/// value, joined with `&`; a parameter without `=` has an empty value.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k, false), false),
                uri_encode(&percent_decode(v, false), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical headers block (each `name:value\n`) and the signed header list (`a;b;c`).
pub fn canonical_headers(headers: &[(String, String)]) -> (String, String) {
    let mut merged: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in headers {
        let name = name.trim().to_ascii_lowercase();
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => merged.push((name, vec![value])),
        }
    }
    merged.sort_by(|a, b| a.0.cmp(&b.0));
    let block = merged
        .iter()
        .map(|(n, v)| format!("{n}:{}\n", v.join(",")))
        .collect::<String>();
    let signed = merged
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    (block, signed)
}

/// The canonical request, and the signed header list.
pub fn canonical_request(request: &Request<'_>) -> (String, String) {
    let (headers, signed) = canonical_headers(request.headers);
    let creq = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method.to_ascii_uppercase(),
        canonical_uri(request.path),
        canonical_query(request.query),
        headers,
        signed,
        sha256_hex(request.body)
    );
    (creq, signed)
}

/// The string to sign for a canonical request.
pub fn string_to_sign(scope: &Scope<'_>, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        scope.amz_date,
        scope.credential_scope(),
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The signing key of a secret for a scope.
pub fn signing_key(secret_access_key: &str, scope: &Scope<'_>) -> Vec<u8> {
    let k_date = hmac_sha256(
        format!("AWS4{secret_access_key}").as_bytes(),
        scope.date().as_bytes(),
    );
    let k_region = hmac_sha256(&k_date, scope.region.as_bytes());
    let k_service = hmac_sha256(&k_region, scope.service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// The hex signature of a request.
pub fn signature(credentials: &Credentials, scope: &Scope<'_>, request: &Request<'_>) -> String {
    let (creq, _) = canonical_request(request);
    let sts = string_to_sign(scope, &creq);
    hex(&hmac_sha256(
        &signing_key(&credentials.secret_access_key, scope),
        sts.as_bytes(),
    ))
}

/// The `Authorization` header value:
/// `AWS4-HMAC-SHA256 Credential=<key id>/<scope>, SignedHeaders=<list>, Signature=<hex>`.
pub fn authorization(
    credentials: &Credentials,
    scope: &Scope<'_>,
    request: &Request<'_>,
) -> String {
    let (_, signed) = canonical_headers(request.headers);
    format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={signed}, Signature={}",
        credentials.access_key_id,
        scope.credential_scope(),
        signature(credentials, scope, request)
    )
}

#[cfg(test)]
mod tests;
