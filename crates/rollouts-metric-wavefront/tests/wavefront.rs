//! The Wavefront provider against a chart API test double (wiremock on 127.0.0.1) that also plays
//! the Kubernetes API server for the `wavefront-api-tokens` Secret. The double checks the request
//! (method, path, every query parameter, the bearer token) and answers with the chart API's JSON
//! and its errors; the tests check the observation, its metadata and the phase the metric's
//! conditions give it.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::{ByteString, api::core::v1::Secret};
use rollouts_api::{AnalysisRun, Metric};
use rollouts_expr::{Outcome, ResultValue, evaluate_conditions};
use rollouts_metric_wavefront::{NAME, TOKENS_SECRET, WavefrontProvider};
use rollouts_plugin::{FloatResult, MeasureRequest, MetricProvider, Observation, Registry};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{header, method, path, query_param},
};

const CONTROLLER_NS: &str = "argo-rollouts";
const QUERY: &str = "sum(rate(ts(http.errors, service=\"shop\")))";
/// The measurement start: 2023-11-14T22:13:20Z.
const START: i64 = 1_700_000_000;

fn metric(address: &str, query: &str) -> Metric {
    serde_json::from_value(json!({
        "name": "errors",
        "provider": {"wavefront": {"address": address, "query": query}}
    }))
    .expect("metric decodes")
}

fn kube_client(server: &MockServer) -> kube::Client {
    let config = kube::Config::new(server.uri().parse().expect("server URL"));
    kube::Client::try_from(config).expect("kube client")
}

async fn serve_tokens(server: &MockServer, data: &[(&str, &str)]) {
    let secret = Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(TOKENS_SECRET.into()),
            namespace: Some(CONTROLLER_NS.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Default::default()
    };
    let mut body = serde_json::to_value(&secret).expect("secret encodes");
    body["apiVersion"] = json!("v1");
    body["kind"] = json!("Secret");
    Mock::given(method("GET"))
        .and(path(format!(
            "/api/v1/namespaces/{CONTROLLER_NS}/secrets/{TOKENS_SECRET}"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

/// The host:port of the double, the address the metrics name.
fn address(server: &MockServer) -> String {
    server.address().to_string()
}

/// A double whose token Secret maps its own address to `wf-token`.
async fn double() -> MockServer {
    let server = MockServer::start().await;
    let own = address(&server);
    serve_tokens(
        &server,
        &[("other.wavefront.com", "nope"), (&own, "wf-token")],
    )
    .await;
    server
}

fn provider(server: &MockServer) -> WavefrontProvider {
    WavefrontProvider::new(Some(kube_client(server)), CONTROLLER_NS).with_plain_http()
}

/// The chart request the provider must send for `query` at [`START`].
fn chart(query: &str) -> wiremock::MockBuilder {
    let millis = (START * 1000).to_string();
    Mock::given(method("GET"))
        .and(path("/api/v2/chart/api"))
        .and(header("Authorization", "Bearer wf-token"))
        .and(header("Accept", "application/json"))
        .and(query_param("q", query))
        .and(query_param("s", millis.as_str()))
        .and(query_param("e", millis.as_str()))
        .and(query_param("g", "s"))
        .and(query_param("p", "1"))
        .and(query_param("i", "true"))
        .and(query_param("autoEvents", "false"))
        .and(query_param("listmode", "false"))
        .and(query_param("strict", "false"))
        .and(query_param("includeObsoleteMetrics", "false"))
}

fn answer(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

async fn measure(provider: &WavefrontProvider, metric: &Metric) -> Observation {
    provider
        .run(MeasureRequest {
            run: &AnalysisRun::default(),
            metric,
            now: Timestamp::from_second(START).expect("timestamp"),
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
async fn one_series_is_a_float_the_conditions_judge() {
    let server = double().await;
    chart(QUERY)
        .respond_with(answer(json!({
            "query": QUERY,
            "name": QUERY,
            "granularity": 1,
            "timeseries": [{
                "label": "http.errors",
                "host": "web-1",
                "tags": {"service": "shop"},
                "data": [[START - 60, 9.0], [START - 2, 3.456], [START + 30, 20.0]]
            }],
            "stats": {"keys": 3, "points": 3},
            "warnings": "query scanned many series"
        })))
        .expect(3)
        .mount(&server)
        .await;
    let provider = provider(&server);
    let m = metric(&address(&server), QUERY);
    for (success, failure, expected) in [
        (Some("result < 5"), None, Outcome::Successful),
        (Some("result < 1"), None, Outcome::Failed),
        (
            Some("result < 1"),
            Some("result > 10"),
            Outcome::Inconclusive,
        ),
    ] {
        let Observation::Float {
            result,
            value,
            metadata,
        } = measure(&provider, &m).await
        else {
            panic!("expected a float observation")
        };
        assert_eq!(result, FloatResult::Scalar(3.456));
        assert_eq!(value, "3.46");
        assert_eq!(metadata["timestamps"], (START - 2).to_string());
        assert_eq!(metadata["drift"], "-2");
        assert_eq!(metadata["warnings"], "query scanned many series");
        assert_eq!(
            evaluate_conditions(success, failure, &ResultValue::from(3.456)),
            expected
        );
    }
}

#[tokio::test]
async fn several_series_are_a_list() {
    let server = double().await;
    chart("ts(cpu)")
        .respond_with(answer(json!({"timeseries": [
            {"label": "cpu", "host": "a", "data": [[START, 1.0]]},
            {"label": "cpu", "host": "b", "data": [[START - 5, 2.0], [START + 1, 7.25]]}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let o = measure(&provider(&server), &metric(&address(&server), "ts(cpu)")).await;
    let Observation::Float {
        result: FloatResult::Vector(values),
        value,
        metadata,
    } = o
    else {
        panic!("expected a list, got {o:?}")
    };
    assert_eq!(values, vec![1.0, 7.25]);
    assert_eq!(value, "[1.00,7.25]");
    assert_eq!(metadata["timestamps"], format!("[{START},{}]", START + 1));
    assert_eq!(metadata["drift"], "[0,1]");
    assert!(!metadata.contains_key("warnings"));
    let result = ResultValue::from(values);
    assert_eq!(
        evaluate_conditions(Some("all(result, {# < 5})"), None, &result),
        Outcome::Failed
    );
    assert_eq!(
        evaluate_conditions(Some("result[0] < 5"), None, &result),
        Outcome::Successful
    );
}

#[tokio::test]
async fn no_series_and_malformed_bodies_are_errors() {
    let server = double().await;
    chart("empty")
        .respond_with(answer(
            json!({"timeseries": [], "warnings": "no metric matches"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    chart("absent")
        .respond_with(answer(json!({"query": "absent"})))
        .mount(&server)
        .await;
    chart("html")
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"))
        .mount(&server)
        .await;
    chart("strings")
        .respond_with(answer(json!({"timeseries": [{"data": [["now", "1"]]}]})))
        .mount(&server)
        .await;
    let provider = provider(&server);
    let own = address(&server);
    let o = measure(&provider, &metric(&own, "empty")).await;
    assert_eq!(
        error_of(&o),
        "No TimeSeries found in response from Wavefront"
    );
    let Observation::Error { metadata, .. } = &o else {
        unreachable!()
    };
    assert_eq!(metadata["warnings"], "no metric matches");
    for (query, expected) in [
        ("absent", "No TimeSeries found in response from Wavefront"),
        (
            "html",
            "invalid character '<' looking for beginning of value",
        ),
        (
            "strings",
            "json: cannot unmarshal string into Go struct field TimeSeries.timeseries.data of type float64",
        ),
    ] {
        let o = measure(&provider, &metric(&own, query)).await;
        assert_eq!(error_of(&o), expected, "{query}");
    }
}

#[tokio::test]
async fn http_errors_read_as_wavefronts_client_words_them() {
    let server = double().await;
    for (code, body) in [
        (
            401u16,
            r#"{"status":{"result":"ERROR","message":"401 Unauthorized","code":401}}"#,
        ),
        (
            403,
            r#"{"status":{"result":"ERROR","message":"Forbidden","code":403}}"#,
        ),
        (500, "internal error"),
        (202, ""),
    ] {
        let query = format!("q{code}");
        chart(&query)
            .respond_with(ResponseTemplate::new(code).set_body_string(body))
            .expect(1)
            .mount(&server)
            .await;
        let o = measure(&provider(&server), &metric(&address(&server), &query)).await;
        let status = match code {
            401 => "401 Unauthorized",
            403 => "403 Forbidden",
            500 => "500 Internal Server Error",
            _ => "202 Accepted",
        };
        assert_eq!(error_of(&o), format!("server returned {status}\n{body}\n"));
        let Observation::Error { metadata, .. } = &o else {
            unreachable!()
        };
        assert!(metadata.is_empty());
    }
}

#[tokio::test]
async fn tokens_are_looked_up_by_exact_address() {
    let server = double().await;
    // Nothing may reach the chart API.
    Mock::given(path("/api/v2/chart/api"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let provider = provider(&server);
    for address in [
        "example.wavefront.com".to_string(),
        format!("http://{}", address(&server)),
        format!("{}/", address(&server)),
        String::new(),
    ] {
        let o = measure(&provider, &metric(&address, QUERY)).await;
        assert_eq!(error_of(&o), "API token not found", "{address}");
    }
}

#[tokio::test]
async fn a_missing_secret_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!(
            "/api/v1/namespaces/{CONTROLLER_NS}/secrets/{TOKENS_SECRET}"
        )))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "secrets \"wavefront-api-tokens\" not found", "reason": "NotFound", "code": 404
        })))
        .mount(&server)
        .await;
    let o = measure(&provider(&server), &metric(&address(&server), QUERY)).await;
    assert_eq!(error_of(&o), r#"secrets "wavefront-api-tokens" not found"#);
    let o = measure(
        &WavefrontProvider::new(None, CONTROLLER_NS),
        &metric("example.wavefront.com", QUERY),
    )
    .await;
    assert!(error_of(&o).contains(TOKENS_SECRET), "{o:?}");
}

#[tokio::test]
async fn a_slow_server_hits_the_deadline() {
    let server = double().await;
    chart("slow")
        .respond_with(
            answer(json!({"timeseries": [{"data": [[START, 1.0]]}]}))
                .set_delay(Duration::from_secs(3)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let provider = provider(&server).with_timeout(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let o = measure(&provider, &metric(&address(&server), "slow")).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let message = error_of(&o);
    assert!(
        message.starts_with(&format!(
            "Get \"http://{}/api/v2/chart/api?",
            address(&server)
        )),
        "{message}"
    );
    assert!(
        message.ends_with(
            "\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        ),
        "{message}"
    );
}

#[test]
fn the_provider_is_registered() {
    let registry = Registry::collect().expect("registry");
    assert!(registry.provider_names().contains(&NAME), "{registry:?}");
    let provider = (registry.provider(NAME).unwrap().build)(&rollouts_plugin::ProviderInit {
        client: None,
        controller_namespace: CONTROLLER_NS.into(),
    })
    .expect("builds");
    assert_eq!(provider.name(), "wavefront");
}
