//! The New Relic provider against a NerdGraph test double (wiremock on 127.0.0.1) that also plays
//! the Kubernetes API server for the profile Secret. The double checks the GraphQL request (method,
//! path, `API-Key` header, document and variables) and answers with NerdGraph's documented bodies,
//! including its errors; the tests check the observation and the phase the metric's conditions
//! give it.

use std::{collections::BTreeMap, time::Duration};

use jiff::Timestamp;
use k8s_openapi::{ByteString, api::core::v1::Secret};
use rollouts_api::{AnalysisRun, Metric};
use rollouts_expr::{Outcome, ResultValue, evaluate_conditions};
use rollouts_metric_newrelic::{NAME, NewRelicProvider, RESOLVED_QUERY_KEY, Retry};
use rollouts_plugin::{MeasureRequest, MetricProvider, Observation, Registry};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{body_partial_json, header, method, path},
};

const CONTROLLER_NS: &str = "argo-rollouts";
const QUERY: &str = "SELECT count(*) FROM Transaction WHERE appName = 'shop'";

fn metric(new_relic: Value, success: Option<&str>) -> Metric {
    let mut m = json!({"name": "errors", "provider": {"newRelic": new_relic}});
    if let Some(s) = success {
        m["successCondition"] = json!(s);
    }
    serde_json::from_value(m).expect("metric decodes")
}

fn kube_client(server: &MockServer) -> kube::Client {
    let config = kube::Config::new(server.uri().parse().expect("server URL"));
    kube::Client::try_from(config).expect("kube client")
}

async fn serve_secret(server: &MockServer, name: &str, data: &[(&str, &str)]) {
    let secret = Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
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
            "/api/v1/namespaces/{CONTROLLER_NS}/secrets/{name}"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

/// A double with the `newrelic` profile pointing NerdGraph at itself.
async fn double() -> MockServer {
    let server = MockServer::start().await;
    let graphql = format!("{}/graphql", server.uri());
    serve_secret(
        &server,
        "newrelic",
        &[
            ("personal-api-key", "NRAK-123"),
            ("account-id", "12345"),
            ("base-url-nerdgraph", &graphql),
        ],
    )
    .await;
    server
}

fn provider(server: &MockServer) -> NewRelicProvider {
    NewRelicProvider::new(Some(kube_client(server)), CONTROLLER_NS).with_retry(Retry {
        max: 3,
        wait_min: Duration::from_millis(10),
        wait_max: Duration::from_millis(40),
    })
}

/// The GraphQL request the provider must send for `query` with `timeout`.
fn nrql_request(query: &str, timeout: i64) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(header("API-Key", "NRAK-123"))
        .and(header("Content-Type", "application/json"))
        .and(body_partial_json(json!({
            "variables": {"accountId": 12345, "query": query, "timeout": timeout}
        })))
        .and(|request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
            let document = body["query"].as_str().unwrap_or_default();
            [
                "$query: Nrql!",
                "$accountId: Int!",
                "$timeout: Seconds!",
                "account(id: $accountId)",
                "nrql(query: $query, timeout: $timeout)",
                "results",
            ]
            .iter()
            .all(|part| document.contains(part))
        })
}

fn results(rows: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"data": {"actor": {"account": {"nrql": {"results": rows}}}}}))
}

async fn measure(provider: &NewRelicProvider, metric: &Metric) -> Observation {
    provider
        .run(MeasureRequest {
            run: &AnalysisRun::default(),
            metric,
            now: Timestamp::now(),
        })
        .await
}

fn value(o: &Observation) -> (&str, ResultValue) {
    match o {
        Observation::Value { value, result, .. } => (value, ResultValue::from(result)),
        other => panic!("expected a value, got {other:?}"),
    }
}

fn error_of(o: &Observation) -> &str {
    match o {
        Observation::Error { message, .. } => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn one_row_is_a_map_the_conditions_read() {
    let server = double().await;
    nrql_request(QUERY, 5)
        .respond_with(results(json!([{"count": 10, "average.duration": 12.3}])))
        .expect(2)
        .mount(&server)
        .await;
    let provider = provider(&server);
    for (condition, expected) in [
        ("result.count < 20", Outcome::Successful),
        ("result['average.duration'] < 10", Outcome::Failed),
    ] {
        let m = metric(json!({"query": QUERY}), Some(condition));
        let o = measure(&provider, &m).await;
        let (text, result) = value(&o);
        assert_eq!(text, r#"{"average.duration":12.3,"count":10}"#);
        assert_eq!(
            evaluate_conditions(Some(condition), None, &result),
            expected
        );
    }
    let m = metric(json!({"query": QUERY}), None);
    assert_eq!(
        provider.metadata(&m),
        BTreeMap::from([(RESOLVED_QUERY_KEY.to_string(), QUERY.to_string())])
    );
}

#[tokio::test]
async fn several_rows_are_a_list_and_the_profile_and_timeout_are_used() {
    let server = MockServer::start().await;
    serve_secret(
        &server,
        "newrelic-shop",
        &[
            ("personal-api-key", "NRAK-123"),
            ("account-id", "12345"),
            ("region", "eu"),
            ("base-url-nerdgraph", &format!("{}/graphql", server.uri())),
        ],
    )
    .await;
    nrql_request("SELECT count(*) FROM Transaction FACET host", 30)
        .respond_with(results(json!([
            {"facet": "h1", "count": 3},
            {"facet": "h2", "count": 7}
        ])))
        .expect(1)
        .mount(&server)
        .await;
    let provider = provider(&server);
    let condition = "all(result, {#.count < 10})";
    let m = metric(
        json!({"profile": "newrelic-shop", "timeout": 30, "query": "SELECT count(*) FROM Transaction FACET host"}),
        Some(condition),
    );
    let o = measure(&provider, &m).await;
    let (text, result) = value(&o);
    assert_eq!(
        text,
        r#"[{"count":3,"facet":"h1"},{"count":7,"facet":"h2"}]"#
    );
    assert_eq!(
        evaluate_conditions(Some(condition), None, &result),
        Outcome::Successful
    );
    assert_eq!(
        evaluate_conditions(Some("result[1].count < 5"), None, &result),
        Outcome::Failed
    );
}

#[tokio::test]
async fn no_rows_and_graphql_errors_are_errors() {
    let server = double().await;
    nrql_request("SELECT none", 5)
        .respond_with(results(json!([])))
        .mount(&server)
        .await;
    nrql_request("SELECT empty", 5)
        .respond_with(results(json!([{}])))
        .mount(&server)
        .await;
    nrql_request("SELEC typo", 5)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": {"actor": {"account": {"nrql": null}}},
            "errors": [{
                "message": "NRQL Syntax Error: Error at line 1 position 1, unexpected 'SELEC'",
                "path": ["actor", "account", "nrql"],
                "extensions": {"errorClass": "INVALID_INPUT"}
            }]
        })))
        .expect(1)
        .mount(&server)
        .await;
    nrql_request("SELECT junk", 5)
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>gateway</html>"))
        .mount(&server)
        .await;
    let provider = provider(&server);
    for (query, expected) in [
        ("SELECT none", "no results returned from NRQL query"),
        ("SELECT empty", "no results returned from NRQL query"),
        (
            "SELEC typo",
            "NRQL Syntax Error: Error at line 1 position 1, unexpected 'SELEC'",
        ),
        (
            "SELECT junk",
            "invalid character '<' looking for beginning of value",
        ),
    ] {
        let m = metric(json!({"query": query}), Some("result.count > 0"));
        assert_eq!(error_of(&measure(&provider, &m).await), expected, "{query}");
    }
}

#[tokio::test]
async fn http_errors_read_as_new_relics_client_words_them() {
    let server = double().await;
    nrql_request("q401", 5)
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "errors": [{"message": "Invalid API key", "extensions": {"errorClass": "UNAUTHORIZED", "errorCode": "BAD_API_KEY"}}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    nrql_request("q403", 5)
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "errors": [{"message": "Access denied to account 12345", "extensions": {"errorClass": "FORBIDDEN"}}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    nrql_request("q500", 5)
        .respond_with(ResponseTemplate::new(500).set_body_string("internal"))
        .expect(4)
        .mount(&server)
        .await;
    nrql_request("q429", 5)
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "0")
                .set_body_json(json!({"errors": [{"message": "rate limited"}]})),
        )
        .expect(4)
        .mount(&server)
        .await;
    nrql_request("qslow", 5)
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"errors": [{"message": "NRDB query timed out", "extensions": {"errorClass": "TIMEOUT"}}]})),
        )
        .expect(4)
        .mount(&server)
        .await;
    let provider = provider(&server);
    let url = format!("{}/graphql", server.uri());
    for (query, expected) in [
        (
            "q401",
            "401 response returned: Invalid credentials provided. Missing API key or an invalid API key was provided."
                .to_string(),
        ),
        (
            "q403",
            "403 response returned: Access denied to account 12345".to_string(),
        ),
        ("q500", format!("POST {url} giving up after 4 attempt(s)")),
        ("q429", format!("POST {url} giving up after 4 attempt(s)")),
        (
            "qslow",
            "maximum retries reached: NRDB query timed out".to_string(),
        ),
    ] {
        let m = metric(json!({"query": query}), None);
        assert_eq!(error_of(&measure(&provider, &m).await), expected, "{query}");
    }
}

#[tokio::test]
async fn a_slow_server_hits_the_deadline_on_every_attempt() {
    let server = double().await;
    nrql_request(QUERY, 5)
        .respond_with(results(json!([{"count": 1}])).set_delay(Duration::from_secs(3)))
        .expect(2)
        .mount(&server)
        .await;
    let provider = NewRelicProvider::new(Some(kube_client(&server)), CONTROLLER_NS)
        .with_retry(Retry {
            max: 1,
            wait_min: Duration::from_millis(10),
            wait_max: Duration::from_millis(10),
        })
        .with_http_timeout(Duration::from_millis(200));
    let m = metric(json!({"query": QUERY}), None);
    let started = std::time::Instant::now();
    let o = measure(&provider, &m).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let url = format!("{}/graphql", server.uri());
    assert_eq!(
        error_of(&o),
        format!(
            "POST {url} giving up after 2 attempt(s): Post \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )
    );
}

#[tokio::test]
async fn profile_problems_are_errors_before_any_query() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/argo-rollouts/secrets/newrelic"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "secrets \"newrelic\" not found", "reason": "NotFound", "code": 404
        })))
        .mount(&server)
        .await;
    serve_secret(&server, "no-key", &[("account-id", "12345")]).await;
    serve_secret(
        &server,
        "ok",
        &[
            ("personal-api-key", "NRAK-123"),
            ("account-id", "12345"),
            ("base-url-nerdgraph", &format!("{}/graphql", server.uri())),
        ],
    )
    .await;
    // Nothing may reach NerdGraph.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let provider = provider(&server);
    for (new_relic, expected) in [
        (json!({"query": QUERY}), r#"secrets "newrelic" not found"#),
        (
            json!({"query": QUERY, "profile": "no-key"}),
            "account ID or personal API key not found",
        ),
        (
            json!({"query": QUERY, "profile": "ok", "timeout": -1}),
            "timeout value needs to be a positive value",
        ),
    ] {
        let m = metric(new_relic, None);
        assert_eq!(error_of(&measure(&provider, &m).await), expected);
    }
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
    assert_eq!(provider.name(), "newRelic");
}
