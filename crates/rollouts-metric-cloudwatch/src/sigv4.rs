//! AWS Signature Version 4, as far as this provider needs it: a request with a path, an
//! optional canonical query string, headers and a body, signed with static credentials.
//!
//! The steps are AWS's: a canonical request (method, path, query, lower-cased sorted headers with
//! trimmed values, the signed header names, the body's SHA-256), a string to sign naming the
//! credential scope (`<date>/<region>/<service>/aws4_request`), a key derived from the secret by
//! chained HMAC-SHA256 over date, region, service and `aws4_request`, and the hex signature in
//! the `Authorization` header.

use ring::{digest, hmac};

/// Static AWS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN` (temporary credentials), sent as `X-Amz-Security-Token`.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// What is signed.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `POST`, `GET`.
    pub method: &'a str,
    /// The path, already URI-encoded (`/`).
    pub path: &'a str,
    /// The canonical query string (sorted, encoded; empty for none).
    pub query: &'a str,
    /// Every header to sign, `Host` and `X-Amz-Date` included.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub body: &'a [u8],
    /// The request time, `YYYYMMDDTHHMMSSZ` (the `X-Amz-Date` value).
    pub amz_date: &'a str,
    /// The region (`us-east-1`).
    pub region: &'a str,
    /// The service (`monitoring` for CloudWatch).
    pub service: &'a str,
}

/// `X-Amz-Date` of a time.
pub fn amz_date(at: jiff::Timestamp) -> String {
    at.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

/// The canonical request and the signed header names (`content-type;host;x-amz-date`).
pub fn canonical_request(request: &Request<'_>) -> (String, String) {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| {
            let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
            (name.to_ascii_lowercase(), value)
        })
        .collect();
    // Stable: repeated names keep their order.
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    // Repeated names: one line, the values joined with commas in their order.
    let mut merged: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        match merged.last_mut() {
            Some((last, values)) if *last == name => {
                values.push(',');
                values.push_str(&value);
            }
            _ => merged.push((name, value)),
        }
    }
    let canonical_headers: String = merged.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed: Vec<&str> = merged.iter().map(|(n, _)| n.as_str()).collect();
    let signed = signed.join(";");
    let creq = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{}",
        request.method,
        request.path,
        request.query,
        sha256_hex(request.body)
    );
    (creq, signed)
}

/// `<date>/<region>/<service>/aws4_request`.
pub fn credential_scope(request: &Request<'_>) -> String {
    let date = request.amz_date.get(..8).unwrap_or(request.amz_date);
    format!("{date}/{}/{}/aws4_request", request.region, request.service)
}

/// The string to sign for a canonical request.
pub fn string_to_sign(request: &Request<'_>, canonical_request: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{}\n{}\n{}",
        request.amz_date,
        credential_scope(request),
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The signing key: HMAC chained over date, region, service and `aws4_request`.
pub fn signing_key(secret_access_key: &str, request: &Request<'_>) -> Vec<u8> {
    let date = request.amz_date.get(..8).unwrap_or(request.amz_date);
    let k_date = hmac_sha256(
        format!("AWS4{secret_access_key}").as_bytes(),
        date.as_bytes(),
    );
    let k_region = hmac_sha256(&k_date, request.region.as_bytes());
    let k_service = hmac_sha256(&k_region, request.service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// The `Authorization` header value.
pub fn authorization(credentials: &Credentials, request: &Request<'_>) -> String {
    let (creq, signed) = canonical_request(request);
    let key = signing_key(&credentials.secret_access_key, request);
    let signature = hex(&hmac_sha256(
        &key,
        string_to_sign(request, &creq).as_bytes(),
    ));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={signed}, Signature={signature}",
        credentials.access_key_id,
        credential_scope(request)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The credentials of AWS's published SigV4 test suite.
    fn example(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(str::to_string),
        }
    }

    fn request<'a>(
        headers: &'a [(&'a str, &'a str)],
        body: &'a [u8],
        service: &'a str,
    ) -> Request<'a> {
        Request {
            method: "POST",
            path: "/",
            query: "",
            headers,
            body,
            amz_date: "20150830T123600Z",
            region: "us-east-1",
            service,
        }
    }

    /// `post-x-www-form-urlencoded` of AWS's SigV4 test suite: a POST with a body.
    #[test]
    fn the_published_post_vector_signs_as_aws_does() {
        let headers = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        let r = request(&headers, b"Param1=value1", "service");
        let (creq, signed) = canonical_request(&r);
        assert_eq!(
            creq,
            "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n\
             x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n\
             9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
        );
        assert_eq!(
            sha256_hex(creq.as_bytes()),
            "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"
        );
        assert_eq!(signed, "content-type;host;x-amz-date");
        assert_eq!(
            authorization(&example(None), &r),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        );
    }

    /// The signing key example of AWS's SigV4 documentation (IAM, us-east-1, 2015-08-30).
    #[test]
    fn the_signing_key_is_the_documented_derivation() {
        let r = request(&[], b"", "iam");
        assert_eq!(
            hex(&signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", &r)),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    /// A CloudWatch JSON 1.0 `GetMetricData` request with the suite's credentials, with and without
    /// a session token. The expected signatures were computed with botocore 1.43's `SigV4Auth`
    /// (an independent implementation) for the same request, time and credentials.
    #[test]
    fn a_json_get_metric_data_request_signs_as_botocore_does() {
        let body = br#"{"EndTime":1440938160,"MetricDataQueries":[{"Id":"q1","MetricStat":{"Metric":{"MetricName":"RequestCount","Namespace":"AWS/ApplicationELB"},"Period":60,"Stat":"Sum"}}],"StartTime":1440937860}"#;
        assert_eq!(
            sha256_hex(body),
            "1e5b3ff603b4750ea844d74058abf54d3d4181ab7b8482a17563fa8e3d12bb6f"
        );
        let base = [
            ("Content-Type", "application/x-amz-json-1.0"),
            (
                "X-Amz-Target",
                "GraniteServiceVersion20100801.GetMetricData",
            ),
            ("Host", "monitoring.us-east-1.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        let signed = authorization(&example(None), &request(&base, body, "monitoring"));
        assert!(
            signed.ends_with(
                "SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
                 Signature=d5444f3e43be509e3776a4707109fd6c23d0421b6dcccdd9b5181857c94399e9"
            ),
            "{signed}"
        );
        let mut with_token = base.to_vec();
        with_token.push(("X-Amz-Security-Token", "session-token-example"));
        let signed = authorization(
            &example(Some("session-token-example")),
            &request(&with_token, body, "monitoring"),
        );
        assert_eq!(
            signed,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/monitoring/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, \
             Signature=8e35d07b35977053fbbb6543c2bc3cfd53e776e072156f977d3bc2a648326baa"
        );
    }

    #[test]
    fn header_values_are_trimmed_and_repeats_merged() {
        let headers = [("X-B", "  a   b "), ("x-a", "2"), ("X-A", "1")];
        let (creq, signed) = canonical_request(&request(&headers, b"", "s"));
        assert!(creq.contains("x-a:2,1\nx-b:a b\n"), "{creq}");
        assert_eq!(signed, "x-a;x-b");
        let debug = format!("{:?}", example(Some("t")));
        assert!(!debug.contains("EXAMPLEKEY") && debug.contains("AKIDEXAMPLE"));
    }
}
