//! The Datadog provider against a test double of Datadog's API (wiremock on 127.0.0.1) that also
//! plays the Kubernetes API server for the credential Secrets. The double checks what the provider
//! sends (method, path, query or body, the key headers) and answers with the bodies Datadog
//! documents, including its errors; the tests check the observation and the phase the metric's
//! conditions give it.

use std::{collections::BTreeMap, time::Duration};

use jiff::Timestamp;
use k8s_openapi::{ByteString, api::core::v1::Secret};
use rollouts_api::{AnalysisRun, Metric};
use rollouts_expr::{Outcome, ResultValue, evaluate_conditions};
use rollouts_metric_datadog::{
    Credentials, DatadogProvider, GROUPS_KEY, GROUPS_TRUNCATED_KEY, NAME,
};
use rollouts_plugin::{FloatResult, MeasureRequest, MetricProvider, Observation, Registry};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_json, header, method, path, query_param},
};

const NOW: i64 = 1_599_076_435;
const CONTROLLER_NS: &str = "argo-rollouts";

fn metric(datadog: Value, success: Option<&str>) -> Metric {
    let mut m = json!({"name": "error-rate", "provider": {"datadog": datadog}});
    if let Some(s) = success {
        m["successCondition"] = json!(s);
    }
    serde_json::from_value(m).expect("metric decodes")
}

fn run_in(namespace: &str) -> AnalysisRun {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": "run-1", "namespace": namespace},
        "spec": {"metrics": []}
    }))
    .expect("run decodes")
}

fn env(address: &str) -> Option<Credentials> {
    Some(Credentials {
        address: address.to_string(),
        api_key: "api-123".into(),
        app_key: "app-456".into(),
    })
}

fn kube_client(server: &MockServer) -> kube::Client {
    let config = kube::Config::new(server.uri().parse().expect("server URL"));
    kube::Client::try_from(config).expect("kube client")
}

/// Serves the Secret `namespace/name` with `data` from the double's Kubernetes API.
async fn serve_secret(server: &MockServer, namespace: &str, name: &str, data: &[(&str, &str)]) {
    let secret = Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
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
            "/api/v1/namespaces/{namespace}/secrets/{name}"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1..)
        .mount(server)
        .await;
}

async fn measure(provider: &DatadogProvider, run: &AnalysisRun, metric: &Metric) -> Observation {
    provider
        .run(MeasureRequest {
            run,
            metric,
            now: Timestamp::from_second(NOW).unwrap(),
        })
        .await
}

/// What the conditions see, as the controller binds it.
fn result_of(o: &Observation) -> ResultValue {
    match o {
        Observation::Float {
            result: FloatResult::Scalar(f),
            ..
        } => ResultValue::Float(*f),
        Observation::Float {
            result: FloatResult::Vector(v),
            ..
        } => ResultValue::Floats(v.clone()),
        Observation::Value { result, .. } => ResultValue::from(result),
        other => panic!("no value to judge: {other:?}"),
    }
}

fn value_of(o: &Observation) -> &str {
    match o {
        Observation::Float { value, .. } | Observation::Value { value, .. } => value,
        other => panic!("no value: {other:?}"),
    }
}

fn error_of(o: &Observation) -> &str {
    match o {
        Observation::Error { message, .. } => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The default v1 exchange: GET with from/to/query and the key headers.
fn v1_request(query: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(query_param("query", query))
        .and(query_param("from", (NOW - 300).to_string()))
        .and(query_param("to", NOW.to_string()))
        .and(header("DD-API-KEY", "api-123"))
        .and(header("DD-APPLICATION-KEY", "app-456"))
        .and(header("Content-Type", "application/json"))
}

fn v2_request(body: Value) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/api/v2/query/scalar"))
        .and(header("DD-API-KEY", "api-123"))
        .and(header("DD-APPLICATION-KEY", "app-456"))
        .and(header("Content-Type", "application/json"))
        .and(body_json(body))
}

#[tokio::test]
async fn v1_reads_the_last_point_and_the_conditions_judge_it() {
    let server = MockServer::start().await;
    v1_request("avg:errors{service:checkout}")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "ok", "res_type": "time_series",
            "series": [{"metric": "errors", "pointlist": [[1599076135000.0, 0.5], [1599076195000.0, 0.0025]]}]
        })))
        .expect(2)
        .mount(&server)
        .await;
    let provider = DatadogProvider::new(None, CONTROLLER_NS, env(&server.uri()));
    let run = run_in("default");
    for (condition, expected) in [
        ("result < 0.01", Outcome::Successful),
        ("result >= 0.01", Outcome::Failed),
    ] {
        let m = metric(
            json!({"query": "avg:errors{service:checkout}"}),
            Some(condition),
        );
        let o = measure(&provider, &run, &m).await;
        assert_eq!(value_of(&o), "0.0025");
        assert_eq!(
            evaluate_conditions(m.success_condition.as_deref(), None, &result_of(&o)),
            expected
        );
    }
}

#[tokio::test]
async fn v1_without_data_is_nil_and_the_condition_errors() {
    let server = MockServer::start().await;
    v1_request("avg:none{*}")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"series": []})))
        .mount(&server)
        .await;
    let provider = DatadogProvider::new(None, CONTROLLER_NS, env(&server.uri()));
    let m = metric(json!({"query": "avg:none{*}"}), Some("result < 1"));
    let o = measure(&provider, &run_in("default"), &m).await;
    assert_eq!(value_of(&o), "[]");
    assert_eq!(result_of(&o), ResultValue::Nil);
    assert_eq!(
        evaluate_conditions(m.success_condition.as_deref(), None, &result_of(&o)),
        Outcome::Error(
            r#"could not evaluate successCondition "result < 1": metric result is nil or empty: no data returned from the metric provider"#
                .into()
        )
    );
    // default() sees the nil result.
    assert_eq!(
        evaluate_conditions(Some("default(result, 0) == 0"), None, &result_of(&o)),
        Outcome::Successful
    );
}

#[tokio::test]
async fn v2_sends_the_scalar_request_with_keys_from_the_default_secret() {
    let server = MockServer::start().await;
    serve_secret(
        &server,
        CONTROLLER_NS,
        "datadog",
        &[
            ("api-key", "api-123"),
            ("app-key", "app-456"),
            ("address", &server.uri()),
        ],
    )
    .await;
    v2_request(json!({"data": {"attributes": {
        "from": (NOW - 600) * 1000, "to": NOW * 1000,
        "queries": [
            {"aggregator": "sum", "data_source": "metrics", "name": "a", "query": "sum:errors{*}.as_count()"},
            {"aggregator": "sum", "data_source": "metrics", "name": "b", "query": "sum:hits{*}.as_count()"}
        ],
        "formulas": [{"formula": "a/b"}]
    }, "type": "scalar_request"}}))
    .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"type": "scalar_response", "attributes": {
        "columns": [{"name": "a/b", "type": "number", "values": [0.0006], "meta": {"unit": null}}]
    }}})))
    .expect(1)
    .mount(&server)
    .await;
    let provider = DatadogProvider::new(Some(kube_client(&server)), CONTROLLER_NS, None);
    let m = metric(
        json!({
            "apiVersion": "v2", "interval": "10m", "aggregator": "sum", "formula": "a/b",
            "queries": {"a": "sum:errors{*}.as_count()", "b": "sum:hits{*}.as_count()"}
        }),
        Some("result <= 0.001"),
    );
    let o = measure(&provider, &run_in("default"), &m).await;
    assert_eq!(value_of(&o), "0.0006");
    assert_eq!(
        evaluate_conditions(m.success_condition.as_deref(), None, &result_of(&o)),
        Outcome::Successful
    );
    assert_eq!(provider.metadata(&m), BTreeMap::new());
}

#[tokio::test]
async fn v2_grouped_queries_give_one_value_per_group() {
    let server = MockServer::start().await;
    v2_request(json!({"data": {"attributes": {
        "from": (NOW - 300) * 1000, "to": NOW * 1000,
        "queries": [{"aggregator": "last", "data_source": "metrics", "name": "query", "query": "avg:latency{*} by {region,host}"}],
        "formulas": []
    }, "type": "scalar_request"}}))
    .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"attributes": {"columns": [
        {"name": "region", "type": "group", "values": [["us"], ["eu"]]},
        {"name": "host", "type": "group", "values": [["h1"], ["h2"]]},
        {"name": "query1", "type": "number", "values": [1.5, null]}
    ]}}})))
    .mount(&server)
    .await;
    let provider = DatadogProvider::new(None, CONTROLLER_NS, env(&server.uri()));
    let m = metric(
        json!({"apiVersion": "v2", "query": "avg:latency{*} by {region,host}"}),
        Some("all(result, {# < 2})"),
    );
    let o = measure(&provider, &run_in("default"), &m).await;
    let Observation::Float {
        result, metadata, ..
    } = &o
    else {
        panic!("grouped results are floats: {o:?}")
    };
    assert_eq!(result, &FloatResult::Vector(vec![1.5]));
    assert_eq!(value_of(&o), "[1.5]");
    assert_eq!(metadata[GROUPS_KEY], r#"[{"name":"us,h1","value":1.5}]"#);
    assert!(!metadata.contains_key(GROUPS_TRUNCATED_KEY));
    assert_eq!(
        evaluate_conditions(m.success_condition.as_deref(), None, &result_of(&o)),
        Outcome::Successful
    );
}

#[tokio::test]
async fn a_named_secret_is_read_from_the_run_namespace_when_namespaced() {
    let server = MockServer::start().await;
    serve_secret(
        &server,
        "team-a",
        "dd-keys",
        &[
            ("api-key", "api-123"),
            ("app-key", "app-456"),
            ("address", &server.uri()),
        ],
    )
    .await;
    v1_request("avg:x{*}")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"series": [{"pointlist": [[1.0, 42.0]]}]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    // The environment is ignored when the metric names a Secret.
    let provider = DatadogProvider::new(
        Some(kube_client(&server)),
        CONTROLLER_NS,
        env("http://127.0.0.1:9"),
    );
    let m = metric(
        json!({"query": "avg:x{*}", "secretRef": {"name": "dd-keys", "namespaced": true}}),
        Some("result == 42"),
    );
    let o = measure(&provider, &run_in("team-a"), &m).await;
    assert_eq!(value_of(&o), "42");
    assert_eq!(
        evaluate_conditions(m.success_condition.as_deref(), None, &result_of(&o)),
        Outcome::Successful
    );

    let m = metric(
        json!({"query": "avg:x{*}", "secretRef": {"namespaced": true}}),
        None,
    );
    assert_eq!(
        error_of(&measure(&provider, &run_in("team-a"), &m).await),
        "secret name is required for namespaced credentials"
    );
}

#[tokio::test]
async fn missing_or_incomplete_secrets_mean_no_credentials() {
    let server = MockServer::start().await;
    // `datadog` does not exist (the double answers 404); `half` has no app key.
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/argo-rollouts/secrets/datadog"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "secrets \"datadog\" not found", "reason": "NotFound", "code": 404
        })))
        .expect(1)
        .mount(&server)
        .await;
    serve_secret(&server, CONTROLLER_NS, "half", &[("api-key", "api-123")]).await;
    let provider = DatadogProvider::new(Some(kube_client(&server)), CONTROLLER_NS, None);
    for datadog in [
        json!({"query": "avg:x{*}"}),
        json!({"query": "avg:x{*}", "secretRef": {"name": "half"}}),
    ] {
        let m = metric(datadog, None);
        assert_eq!(
            error_of(&measure(&provider, &run_in("default"), &m).await),
            "failed to find the credentials for datadog metrics provider"
        );
    }
    // Credentials are looked up before the metric is validated, as in Argo.
    let provider = DatadogProvider::new(None, CONTROLLER_NS, env(&server.uri()));
    let m = metric(json!({"apiVersion": "v1", "queries": {"a": "x"}}), None);
    assert_eq!(
        error_of(&measure(&provider, &run_in("default"), &m).await),
        "Query is empty. API Version v1 only supports using the query parameter in your Analysis Template."
    );
}

#[tokio::test]
async fn http_errors_are_error_measurements_with_argos_messages() {
    let server = MockServer::start().await;
    let cases = [
        (
            "q401",
            ResponseTemplate::new(401).set_body_string(r#"{"errors":["Unauthorized"]}"#),
            r#"received authentication error response code: 401 {"errors":["Unauthorized"]}"#
                .to_string(),
        ),
        (
            "q403",
            ResponseTemplate::new(403).set_body_string(r#"{"errors":["Forbidden"]}"#),
            r#"received authentication error response code: 403 {"errors":["Forbidden"]}"#
                .to_string(),
        ),
        (
            "q429",
            ResponseTemplate::new(429)
                .insert_header("X-RateLimit-Limit", "100")
                .insert_header("X-RateLimit-Period", "10")
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-Reset", "7")
                .insert_header("X-RateLimit-Name", "query")
                .set_body_string(r#"{"errors":["Too many requests"]}"#),
            r#"received non 2xx response code: 429 {"errors":["Too many requests"]} (rate limited: name query, limit 100 per 10s, remaining 0, reset in 7s)"#
                .to_string(),
        ),
        (
            "q500",
            ResponseTemplate::new(500).set_body_string(r#"{"errors":["Internal Server Error"]}"#),
            r#"received non 2xx response code: 500 {"errors":["Internal Server Error"]}"#
                .to_string(),
        ),
        (
            "qjunk",
            ResponseTemplate::new(200).set_body_string("<html>oops</html>"),
            "Could not parse JSON body: invalid character '<' looking for beginning of value"
                .to_string(),
        ),
    ];
    for (query, response, _) in &cases {
        v1_request(query)
            .respond_with(response.clone())
            .expect(1)
            .mount(&server)
            .await;
    }
    let provider = DatadogProvider::new(None, CONTROLLER_NS, env(&server.uri()));
    for (query, _, expected) in &cases {
        let m = metric(json!({"query": query}), Some("result < 1"));
        let o = measure(&provider, &run_in("default"), &m).await;
        assert_eq!(error_of(&o), expected, "query {query}");
    }
}

#[tokio::test]
async fn v2_query_errors_and_timeouts_are_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/query/scalar"))
        .and(wiremock::matchers::body_string_contains("bad:query"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"errors": "Error parsing query: bad:query"}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/query/scalar"))
        .and(wiremock::matchers::body_string_contains("slow:query"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(3))
                .set_body_json(json!({"data": {}})),
        )
        .mount(&server)
        .await;
    let provider = DatadogProvider::new(None, CONTROLLER_NS, env(&server.uri()));
    let run = run_in("default");
    let m = metric(json!({"apiVersion": "v2", "query": "bad:query"}), None);
    assert_eq!(
        error_of(&measure(&provider, &run, &m).await),
        "There were errors in your query: Error parsing query: bad:query"
    );
    let m = metric(
        json!({"apiVersion": "v2", "query": "slow:query", "requestTimeout": "300ms"}),
        None,
    );
    let started = std::time::Instant::now();
    let o = measure(&provider, &run, &m).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the deadline held"
    );
    assert_eq!(
        error_of(&o),
        format!(
            "Post \"{}/api/v2/query/scalar\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            server.uri()
        )
    );
}

#[tokio::test]
async fn an_unreachable_address_is_an_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let provider = DatadogProvider::new(
        None,
        CONTROLLER_NS,
        env(&format!("http://127.0.0.1:{port}")),
    );
    let m = metric(json!({"query": "avg:x{*}"}), None);
    let o = measure(&provider, &run_in("default"), &m).await;
    assert_eq!(
        error_of(&o),
        format!(
            "Get \"http://127.0.0.1:{port}/api/v1/query?from={}&query=avg%3Ax%7B%2A%7D&to={NOW}\": dial tcp 127.0.0.1:{port}: connect: connection refused",
            NOW - 300
        )
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
    assert_eq!(provider.name(), "datadog");
}
