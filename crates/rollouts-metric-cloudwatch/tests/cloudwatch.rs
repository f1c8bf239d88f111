//! The CloudWatch provider against a CloudWatch JSON 1.0 test double (wiremock on 127.0.0.1).
//! The double checks the operation (`POST /`, `X-Amz-Target`, content type, the request body)
//! and the SigV4 signature: it rebuilds the canonical request from what arrived on the wire
//! (the signed headers, the body) with the secret it knows and answers `SignatureDoesNotMatch`
//! when the signatures differ, as AWS does. Answers are CloudWatch's documented bodies,
//! including its errors.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use jiff::Timestamp;
use rollouts_api::{AnalysisRun, Metric};
use rollouts_expr::{Outcome, ResultValue, evaluate_conditions};
use rollouts_metric_cloudwatch::{
    AwsConfig, CloudWatchProvider, Credentials, NAME, Retry, TARGET, sigv4,
};
use rollouts_plugin::{MeasureRequest, MetricProvider, Observation, Registry};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{header, method, path},
};

const KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const REGION: &str = "eu-west-1";

fn now() -> Timestamp {
    "2026-08-17T11:10:42Z".parse().expect("timestamp")
}

/// The double: checks the signature, then answers `ok` (or AWS's 403).
struct Aws {
    secret: &'static str,
    ok: ResponseTemplate,
    /// The bodies of the requests that were signed correctly.
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Aws {
    fn new(ok: ResponseTemplate) -> Self {
        Self {
            secret: SECRET,
            ok,
            seen: Arc::default(),
        }
    }

    /// The signature the request should carry, rebuilt from the wire.
    fn expected_authorization(&self, request: &Request) -> Option<String> {
        let auth = request.headers.get("authorization")?.to_str().ok()?;
        let signed = auth.split("SignedHeaders=").nth(1)?.split(',').next()?;
        let scope = auth.split("Credential=").nth(1)?.split(',').next()?;
        let mut parts = scope.split('/');
        let key_id = parts.next()?;
        let _date = parts.next()?;
        let region = parts.next()?;
        let service = parts.next()?;
        let amz_date = request
            .headers
            .get("x-amz-date")?
            .to_str()
            .ok()?
            .to_string();
        let values: Vec<(String, String)> = signed
            .split(';')
            .map(|name| {
                let value = request
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                (name.to_string(), value.to_string())
            })
            .collect();
        let headers: Vec<(&str, &str)> = values
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let token = request
            .headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Some(sigv4::authorization(
            &Credentials {
                access_key_id: key_id.to_string(),
                secret_access_key: self.secret.to_string(),
                session_token: token,
            },
            &sigv4::Request {
                method: request.method.as_str(),
                path: request.url.path(),
                query: request.url.query().unwrap_or(""),
                headers: &headers,
                body: &request.body,
                amz_date: &amz_date,
                region,
                service,
            },
        ))
    }
}

impl Respond for Aws {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let sent = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let signed = ["content-type", "host", "x-amz-date", "x-amz-target"]
            .iter()
            .all(|h| sent.contains(h));
        if !signed || self.expected_authorization(request).as_deref() != Some(sent) {
            return ResponseTemplate::new(403)
                .insert_header("x-amzn-RequestId", "sig-0001")
                .insert_header("x-amzn-query-error", "SignatureDoesNotMatch;Sender")
                .set_body_json(json!({
                    "__type": "com.amazon.coral.service#SignatureDoesNotMatchException",
                    "message": "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
                }));
        }
        let body = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        self.seen.lock().expect("lock").push(body);
        self.ok.clone()
    }
}

fn config(server: &MockServer, token: Option<&str>) -> AwsConfig {
    AwsConfig {
        credentials: Some(Credentials {
            access_key_id: KEY_ID.into(),
            secret_access_key: SECRET.into(),
            session_token: token.map(str::to_string),
        }),
        region: Some(REGION.into()),
        endpoint: Some(server.uri()),
    }
}

fn provider(server: &MockServer) -> CloudWatchProvider {
    CloudWatchProvider::new(config(server, None)).with_retry(Retry {
        max_attempts: 3,
        base: Duration::from_millis(5),
        max: Duration::from_millis(20),
    })
}

fn get_metric_data() -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header("X-Amz-Target", TARGET))
        .and(header("Content-Type", "application/x-amz-json-1.0"))
        .and(header("X-Amz-Date", "20260817T111042Z"))
}

fn metric(cloud_watch: Value, success: Option<&str>) -> Metric {
    let mut m = json!({"name": "errors", "provider": {"cloudWatch": cloud_watch}});
    if let Some(s) = success {
        m["successCondition"] = json!(s);
    }
    serde_json::from_value(m).expect("metric decodes")
}

fn alb_queries() -> Value {
    json!({
        "interval": "10m",
        "metricDataQueries": [
            {"id": "rate", "expression": "errors / requests", "label": "error rate"},
            {"id": "errors", "returnData": false, "period": "60", "metricStat": {
                "metric": {
                    "namespace": "AWS/ApplicationELB",
                    "metricName": "HTTPCode_Target_5XX_Count",
                    "dimensions": [{"name": "LoadBalancer", "value": "app/shop/0123456789abcdef"}]
                },
                "period": 60, "stat": "Sum", "unit": "Count"
            }}
        ]
    })
}

async fn measure(provider: &CloudWatchProvider, metric: &Metric) -> Observation {
    provider
        .run(MeasureRequest {
            run: &AnalysisRun::default(),
            metric,
            now: now(),
        })
        .await
}

fn error_of(o: &Observation) -> &str {
    match o {
        Observation::Error { message, .. } => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn results_are_the_metric_data_results_the_conditions_read() {
    let server = MockServer::start().await;
    let aws = Aws::new(
        ResponseTemplate::new(200)
            .insert_header("x-amzn-RequestId", "req-1")
            .set_body_json(json!({
                "MetricDataResults": [{
                    "Id": "rate", "Label": "error rate", "StatusCode": "Complete",
                    "Timestamps": [1786965000, 1786964940], "Values": [0.01, 0.0]
                }],
                "Messages": [{"Code": "MaxMetricsExceeded", "Value": "Maximum number of allowed metrics exceeded"}]
            })),
    );
    let seen = aws.seen.clone();
    get_metric_data()
        .respond_with(aws)
        .expect(3)
        .mount(&server)
        .await;
    let p = provider(&server);
    let ok = "len(result[0].Values) >= 2 and all(result[0].Values, {# <= 0.01})";
    for (condition, expected) in [
        (ok, Outcome::Successful),
        ("all(result[0].Values, {# < 0.01})", Outcome::Failed),
        (
            "result[0].Label == 'error rate' and result[0].StatusCode == 'Complete'",
            Outcome::Successful,
        ),
    ] {
        let o = measure(&p, &metric(alb_queries(), Some(condition))).await;
        let Observation::Value {
            result,
            value,
            metadata,
        } = o
        else {
            panic!("expected a value, got {o:?}")
        };
        assert_eq!(value, "[[0.01 0]]");
        assert_eq!(
            metadata.get("messages").map(String::as_str),
            Some("[{Code:MaxMetricsExceeded Value:Maximum number of allowed metrics exceeded}]")
        );
        assert_eq!(result[0]["Timestamps"][0], json!("2026-08-17T11:10:00Z"));
        assert_eq!(
            evaluate_conditions(Some(condition), None, &ResultValue::from(&result)),
            expected,
            "{condition}"
        );
    }
    // The request: the window ends now and starts `interval` before; the queries as Argo sends them.
    let body = seen.lock().expect("lock")[0].clone();
    let end = now().as_second() as f64;
    assert_eq!(body["EndTime"].as_f64(), Some(end));
    assert_eq!(body["StartTime"].as_f64(), Some(end - 600.0));
    assert_eq!(
        body["MetricDataQueries"],
        json!([
            {"Id": "rate", "Expression": "errors / requests", "Label": "error rate"},
            {"Id": "errors", "ReturnData": false, "Period": 60, "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/ApplicationELB",
                    "MetricName": "HTTPCode_Target_5XX_Count",
                    "Dimensions": [{"Name": "LoadBalancer", "Value": "app/shop/0123456789abcdef"}]
                },
                "Period": 60, "Stat": "Sum", "Unit": "Count"
            }}
        ])
    );
}

#[tokio::test]
async fn a_session_token_is_sent_and_signed_and_the_window_defaults_to_five_minutes() {
    let server = MockServer::start().await;
    let aws = Aws::new(ResponseTemplate::new(200).set_body_json(json!({
        "MetricDataResults": [
            {"Id": "a", "StatusCode": "Complete", "Timestamps": [1, 2], "Values": [1000000.0, 2.5]},
            {"Id": "b", "StatusCode": "PartialData", "Timestamps": [], "Values": []}
        ]
    })));
    let seen = aws.seen.clone();
    get_metric_data()
        .and(header("X-Amz-Security-Token", "token-123"))
        .respond_with(aws)
        .expect(1)
        .mount(&server)
        .await;
    let p = CloudWatchProvider::new(config(&server, Some("token-123")));
    let m = metric(
        json!({"metricDataQueries": [{"id": "a", "metricStat": {"metric": {"metricName": "Latency"}, "stat": "p99"}}]}),
        None,
    );
    let o = measure(&p, &m).await;
    let Observation::Value {
        result,
        value,
        metadata,
    } = o
    else {
        panic!("expected a value, got {o:?}")
    };
    assert_eq!(value, "[[1e+06 2.5] []]");
    assert!(metadata.is_empty());
    assert_eq!(result[1]["Id"], json!("b"));
    assert_eq!(result[1]["Label"], Value::Null);
    let body = seen.lock().expect("lock")[0].clone();
    assert_eq!(
        body["EndTime"].as_f64().unwrap_or_default()
            - body["StartTime"].as_f64().unwrap_or_default(),
        300.0
    );
    assert_eq!(
        body["MetricDataQueries"],
        json!([{"Id": "a", "MetricStat": {"Metric": {"MetricName": "Latency"}, "Period": 0, "Stat": "p99"}}])
    );
}

#[tokio::test]
async fn empty_results_are_an_empty_list() {
    let server = MockServer::start().await;
    get_metric_data()
        .respond_with(Aws::new(
            ResponseTemplate::new(200)
                .set_body_json(json!({"MetricDataResults": [], "Messages": []})),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let condition = "all(result[0].Values, {# <= 0.01})";
    let o = measure(&provider(&server), &metric(alb_queries(), Some(condition))).await;
    let Observation::Value {
        result,
        value,
        metadata,
    } = o
    else {
        panic!("expected a value, got {o:?}")
    };
    assert_eq!((value.as_str(), metadata.len()), ("[]", 0));
    assert_eq!(result, json!([]));
    let Outcome::Error(message) =
        evaluate_conditions(Some(condition), None, &ResultValue::from(&result))
    else {
        panic!("an empty result cannot be indexed")
    };
    assert!(
        message.contains("metric result is nil or empty"),
        "{message}"
    );
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_signature_check() {
    let server = MockServer::start().await;
    get_metric_data()
        .respond_with(Aws::new(
            ResponseTemplate::new(200).set_body_json(json!({})),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = config(&server, None);
    cfg.credentials = Some(Credentials {
        access_key_id: KEY_ID.into(),
        secret_access_key: "not-the-secret".into(),
        session_token: None,
    });
    let o = measure(&CloudWatchProvider::new(cfg), &metric(alb_queries(), None)).await;
    assert_eq!(
        error_of(&o),
        "operation error CloudWatch: GetMetricData, https response error StatusCode: 403, RequestID: sig-0001, api error SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );
}

#[tokio::test]
async fn api_errors_read_as_the_aws_sdk_words_them() {
    let p_retry = Retry {
        max_attempts: 3,
        base: Duration::from_millis(5),
        max: Duration::from_millis(20),
    };
    let cases = [
        (
            ResponseTemplate::new(400)
                .insert_header("x-amzn-RequestId", "req-400")
                .insert_header("x-amzn-query-error", "InvalidParameterValue;Sender")
                .set_body_json(json!({
                    "__type": "com.amazonaws.cloudwatch#InvalidParameterValueException",
                    "message": "The value  for parameter MetricDataQueries.member.1.Id is not a valid identifier."
                })),
            1,
            "operation error CloudWatch: GetMetricData, https response error StatusCode: 400, RequestID: req-400, api error InvalidParameterValue: The value  for parameter MetricDataQueries.member.1.Id is not a valid identifier.",
        ),
        (
            ResponseTemplate::new(400)
                .insert_header("x-amzn-RequestId", "req-ak")
                .set_body_json(json!({
                    "__type": "com.amazon.coral.service#UnrecognizedClientException",
                    "message": "The security token included in the request is invalid."
                })),
            1,
            "operation error CloudWatch: GetMetricData, https response error StatusCode: 400, RequestID: req-ak, api error UnrecognizedClientException: The security token included in the request is invalid.",
        ),
        (
            ResponseTemplate::new(400)
                .insert_header("x-amzn-RequestId", "req-thr")
                .insert_header("x-amzn-query-error", "Throttling;Sender")
                .set_body_json(json!({"__type": "com.amazonaws.cloudwatch#ThrottlingException", "message": "Rate exceeded"})),
            3,
            "operation error CloudWatch: GetMetricData, exceeded maximum number of attempts, 3, https response error StatusCode: 400, RequestID: req-thr, api error Throttling: Rate exceeded",
        ),
        (
            ResponseTemplate::new(500)
                .insert_header("x-amzn-RequestId", "req-500")
                .set_body_json(json!({"__type": "com.amazonaws.cloudwatch#InternalServiceFault", "message": "Internal service error"})),
            3,
            "operation error CloudWatch: GetMetricData, exceeded maximum number of attempts, 3, https response error StatusCode: 500, RequestID: req-500, api error InternalServiceFault: Internal service error",
        ),
        (
            ResponseTemplate::new(503).set_body_string("Service Unavailable"),
            3,
            "operation error CloudWatch: GetMetricData, exceeded maximum number of attempts, 3, https response error StatusCode: 503, RequestID: , api error UnknownError: UnknownError",
        ),
    ];
    for (response, calls, expected) in cases {
        let server = MockServer::start().await;
        get_metric_data()
            .respond_with(Aws::new(response))
            .expect(calls)
            .mount(&server)
            .await;
        let p = CloudWatchProvider::new(config(&server, None)).with_retry(p_retry);
        assert_eq!(
            error_of(&measure(&p, &metric(alb_queries(), None)).await),
            expected
        );
    }
}

#[tokio::test]
async fn malformed_bodies_are_deserialization_errors() {
    let server = MockServer::start().await;
    let p = provider(&server);
    for (body, expected) in [
        (
            "<html>oops</html>",
            "invalid character '<' looking for beginning of value",
        ),
        ("[1, 2]", "unexpected JSON type [1,2]"),
        (
            r#"{"MetricDataResults": {"Id": "a"}}"#,
            r#"unexpected JSON type {"Id":"a"}"#,
        ),
    ] {
        let mock = get_metric_data()
            .respond_with(Aws::new(
                ResponseTemplate::new(200)
                    .insert_header("x-amzn-RequestId", "req-bad")
                    .set_body_string(body),
            ))
            .expect(1)
            .mount_as_scoped(&server)
            .await;
        let o = measure(&p, &metric(alb_queries(), None)).await;
        let prefix = "operation error CloudWatch: GetMetricData, https response error StatusCode: 200, RequestID: req-bad, deserialization failed, failed to decode response body, ";
        assert_eq!(error_of(&o), format!("{prefix}{expected}"), "{body}");
        drop(mock);
    }
}

#[tokio::test]
async fn a_slow_server_hits_the_deadline_on_every_attempt() {
    let server = MockServer::start().await;
    get_metric_data()
        .respond_with(Aws::new(
            ResponseTemplate::new(200)
                .set_body_json(json!({"MetricDataResults": []}))
                .set_delay(Duration::from_secs(3)),
        ))
        .expect(2)
        .mount(&server)
        .await;
    let p = CloudWatchProvider::new(config(&server, None))
        .with_timeout(Duration::from_millis(200))
        .with_retry(Retry {
            max_attempts: 2,
            base: Duration::from_millis(5),
            max: Duration::from_millis(5),
        });
    let started = std::time::Instant::now();
    let o = measure(&p, &metric(alb_queries(), None)).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        error_of(&o),
        format!(
            "operation error CloudWatch: GetMetricData, exceeded maximum number of attempts, 2, https response error StatusCode: 0, RequestID: , request send failed, Post \"{}/\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            server.uri()
        )
    );
}

#[tokio::test]
async fn configuration_problems_are_errors_before_any_call() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let full = config(&server, None);
    let no_region = AwsConfig {
        region: None,
        ..full.clone()
    };
    let no_credentials = AwsConfig {
        credentials: None,
        ..full.clone()
    };
    let bad_endpoint = AwsConfig {
        endpoint: Some("not a url".into()),
        ..full.clone()
    };
    let mut bad_interval = alb_queries();
    bad_interval["interval"] = json!("ten minutes");
    for (cfg, m, expected) in [
        (
            no_region,
            metric(alb_queries(), None),
            "operation error CloudWatch: GetMetricData, failed to resolve service endpoint, an AWS region is required, but was not found",
        ),
        (
            no_credentials,
            metric(alb_queries(), None),
            "operation error CloudWatch: GetMetricData, failed to sign request: failed to retrieve credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set",
        ),
        (
            bad_endpoint,
            metric(alb_queries(), None),
            "operation error CloudWatch: GetMetricData, resolve endpoint: invalid endpoint URL \"not a url\"",
        ),
        (
            full,
            metric(bad_interval, None),
            r#"time: invalid duration "ten minutes""#,
        ),
    ] {
        let o = measure(&CloudWatchProvider::new(cfg), &m).await;
        assert_eq!(error_of(&o), expected);
    }
}

#[test]
fn the_environment_gives_credentials_region_and_endpoint() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        AwsConfig::from_lookup(move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    };
    let c = env(&[
        ("AWS_ACCESS_KEY_ID", "AKID"),
        ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
        ("AWS_SESSION_TOKEN", "tok"),
        ("AWS_DEFAULT_REGION", "us-west-2"),
    ]);
    assert_eq!(
        c.credentials,
        Some(Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "s3cr3t".into(),
            session_token: Some("tok".into()),
        })
    );
    assert_eq!(c.region.as_deref(), Some("us-west-2"));
    assert_eq!(
        c.endpoint_for("us-west-2"),
        "https://monitoring.us-west-2.amazonaws.com"
    );
    assert_eq!(
        c.endpoint_for("cn-north-1"),
        "https://monitoring.cn-north-1.amazonaws.com.cn"
    );
    let c = env(&[
        ("AWS_ACCESS_KEY_ID", "AKID"),
        ("AWS_SECRET_ACCESS_KEY", ""),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_DEFAULT_REGION", "us-west-2"),
        ("AWS_ENDPOINT_URL", "http://generic:4566"),
        ("AWS_ENDPOINT_URL_CLOUDWATCH", "http://cloudwatch:4566"),
    ]);
    assert_eq!(c.credentials, None);
    assert_eq!(c.region.as_deref(), Some("eu-west-1"));
    assert_eq!(c.endpoint_for("eu-west-1"), "http://cloudwatch:4566");
}

#[test]
fn the_provider_is_registered() {
    let registry = Registry::collect().expect("registry");
    assert!(registry.provider_names().contains(&NAME), "{registry:?}");
    let provider =
        (registry.provider(NAME).expect("registered").build)(&rollouts_plugin::ProviderInit {
            client: None,
            controller_namespace: "argo-rollouts".into(),
        })
        .expect("builds");
    assert_eq!(provider.name(), "cloudWatch");
}
