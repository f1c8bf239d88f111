//! The SkyWalking provider against a SkyWalking OAP GraphQL test double (wiremock on 127.0.0.1).
//! The double checks the request (method, path, headers, the query and the `duration` variable)
//! and answers with the OAP's GraphQL bodies, including its errors; the tests check the
//! observation and the phase the metric's conditions give it.

use std::time::Duration;

use jiff::{Timestamp, tz::TimeZone};
use rollouts_api::{AnalysisRun, Metric};
use rollouts_expr::{Outcome, ResultValue, evaluate_conditions};
use rollouts_metric_skywalking::{NAME, SkyWalkingProvider};
use rollouts_plugin::{MeasureRequest, MetricProvider, Observation, Registry};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_json, header, method, path},
};

const QUERY: &str = "query queryData($duration: Duration!) { service_apdex: readMetricsValues(condition: {name: \"service_apdex\", entity: {scope: Service, serviceName: \"shop\", normal: true}}, duration: $duration) { label values { values { value } } } }";

fn now() -> Timestamp {
    "2026-08-17T11:10:42Z".parse().expect("timestamp")
}

fn metric(address: &str, query: &str, interval: Option<&str>, success: Option<&str>) -> Metric {
    let mut block = json!({"address": address, "query": query});
    if let Some(i) = interval {
        block["interval"] = json!(i);
    }
    let mut m = json!({"name": "apdex", "provider": {"skywalking": block}});
    if let Some(s) = success {
        m["successCondition"] = json!(s);
    }
    serde_json::from_value(m).expect("metric decodes")
}

fn provider() -> SkyWalkingProvider {
    SkyWalkingProvider::new().with_time_zone(TimeZone::UTC)
}

/// The request the provider must send for `query` over the last 5 minutes before [`now`].
fn graphql_request(query: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(header("Content-Type", "application/json; charset=utf-8"))
        .and(header("Accept", "application/json; charset=utf-8"))
        .and(body_json(json!({
            "query": query,
            "variables": {"duration": {
                "start": "2026-08-17 1105", "end": "2026-08-17 1110", "step": "MINUTE"
            }}
        })))
}

async fn measure(provider: &SkyWalkingProvider, metric: &Metric) -> Observation {
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

fn apdex(values: &[&str]) -> Value {
    let values: Vec<Value> = values.iter().map(|v| json!({"value": v})).collect();
    json!({"data": {"service_apdex": {"label": null, "values": {"values": values}}}})
}

#[tokio::test]
async fn the_data_object_is_what_the_conditions_read() {
    let server = MockServer::start().await;
    graphql_request(QUERY)
        .respond_with(ResponseTemplate::new(200).set_body_json(apdex(&["9950", "9990"])))
        .expect(1)
        .mount(&server)
        .await;
    let condition = "all(result.service_apdex.values.values, {asFloat(.value) >= 9900})";
    let m = metric(&server.uri(), QUERY, Some("5m"), Some(condition));
    let o = measure(&provider(), &m).await;
    let Observation::Value {
        result,
        value,
        metadata,
    } = o
    else {
        panic!("expected a value, got {o:?}")
    };
    assert_eq!(
        value,
        r#"{"service_apdex":{"label":null,"values":{"values":[{"value":"9950"},{"value":"9990"}]}}}"#
    );
    assert!(metadata.is_empty());
    let result = ResultValue::from(&result);
    assert_eq!(
        evaluate_conditions(Some(condition), None, &result),
        Outcome::Successful
    );
    assert_eq!(
        evaluate_conditions(
            Some("all(result.service_apdex.values.values, {asFloat(.value) >= 9960})"),
            None,
            &result
        ),
        Outcome::Failed
    );
}

#[tokio::test]
async fn numbers_are_floats_and_the_status_is_not_checked() {
    let server = MockServer::start().await;
    // A numeric reply with a 500 status: Argo's client decodes it all the same.
    graphql_request("{ count }")
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"data": {"count": 12}})))
        .expect(1)
        .mount(&server)
        .await;
    let m = metric(&server.uri(), "{ count }", Some("5m"), None);
    let o = measure(&provider(), &m).await;
    let Observation::Value { result, value, .. } = o else {
        panic!("expected a value, got {o:?}")
    };
    assert_eq!(value, r#"{"count":12}"#);
    assert_eq!(
        evaluate_conditions(
            Some("result.count > 10.5"),
            None,
            &ResultValue::from(&result)
        ),
        Outcome::Successful
    );
}

#[tokio::test]
async fn graphql_errors_no_data_and_malformed_bodies_are_errors() {
    let server = MockServer::start().await;
    graphql_request("{ bad }")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": null,
            "errors": [
                {"message": "Validation error of type FieldUndefined: Field 'bad' in type 'Query' is undefined @ 'bad'"},
                {"message": "second"}
            ]
        })))
        .expect(1)
        .mount(&server)
        .await;
    graphql_request("{ none }")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": null})))
        .mount(&server)
        .await;
    graphql_request("{ html }")
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"))
        .mount(&server)
        .await;
    graphql_request("{ empty }")
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    graphql_request("{ cut }")
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"data": {"x": "#))
        .mount(&server)
        .await;
    let p = provider();
    for (query, expected) in [
        (
            "{ bad }",
            "graphql: Validation error of type FieldUndefined: Field 'bad' in type 'Query' is undefined @ 'bad'",
        ),
        ("{ none }", "no results returned from SkyWalking query"),
        (
            "{ html }",
            "decoding response: invalid character '<' looking for beginning of value",
        ),
        ("{ empty }", "decoding response: EOF"),
    ] {
        let m = metric(&server.uri(), query, Some("5m"), Some("true"));
        assert_eq!(error_of(&measure(&p, &m).await), expected, "{query}");
    }
    let m = metric(&server.uri(), "{ cut }", Some("5m"), None);
    let cut = measure(&p, &m).await;
    assert!(
        error_of(&cut).starts_with("decoding response: EOF while parsing"),
        "{cut:?}"
    );
}

#[tokio::test]
async fn a_bad_interval_is_an_error_before_any_query() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(apdex(&["1"])))
        .expect(0)
        .mount(&server)
        .await;
    let p = provider();
    for (interval, expected) in [
        (None, r#"time: invalid duration """#),
        (
            Some("5 minutes"),
            r#"time: unknown unit " minutes" in duration "5 minutes""#,
        ),
    ] {
        let m = metric(&server.uri(), QUERY, interval, None);
        assert_eq!(error_of(&measure(&p, &m).await), expected);
    }
}

#[tokio::test]
async fn a_slow_server_hits_the_deadline() {
    let server = MockServer::start().await;
    graphql_request(QUERY)
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(apdex(&["1"]))
                .set_delay(Duration::from_secs(3)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let p = provider().with_timeout(Duration::from_millis(200));
    let m = metric(&server.uri(), QUERY, Some("5m"), None);
    let started = std::time::Instant::now();
    let o = measure(&p, &m).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        error_of(&o),
        format!(
            "Post \"{}/graphql\": context deadline exceeded",
            server.uri()
        )
    );
}

#[tokio::test]
async fn an_unreachable_server_is_an_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let address = format!("http://127.0.0.1:{port}");
    let m = metric(&address, QUERY, Some("5m"), None);
    assert_eq!(
        error_of(&measure(&provider(), &m).await),
        format!(
            "Post \"{address}/graphql\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        )
    );
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
    assert_eq!(provider.name(), "skywalking");
}
