//! The Graphite provider against a render API test double (wiremock on 127.0.0.1). The double
//! checks the request (method, path, the re-encoded query string) and answers with the render
//! API's JSON, including null datapoints, string values and errors; the tests check the
//! observation and the phase the metric's conditions give it.

use std::time::Duration;

use jiff::Timestamp;
use rollouts_api::{AnalysisRun, Metric};
use rollouts_expr::{Outcome, ResultValue, evaluate_conditions};
use rollouts_metric_graphite::{GraphiteProvider, NAME};
use rollouts_plugin::{FloatResult, MeasureRequest, MetricProvider, Observation, Registry};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path},
};

const QUERY: &str =
    "target=summarize(asPercent(errors.shop, requests.shop), '5min', 'sum')&from=-5min";
const ENCODED: &str = "format=json&from=-5min&target=summarize%28asPercent%28errors.shop%2Crequests.shop%29%2C%275min%27%2C%27sum%27%29";

fn metric(address: &str, query: &str) -> Metric {
    serde_json::from_value(json!({
        "name": "error-rate",
        "provider": {"graphite": {"address": address, "query": query}}
    }))
    .expect("metric decodes")
}

/// The render request for the raw query string `encoded` at `render_path`.
fn render(render_path: &str, encoded: &'static str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path(render_path.to_string()))
        .and(move |r: &Request| r.url.query() == Some(encoded))
}

fn answer(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

async fn measure(provider: &GraphiteProvider, metric: &Metric) -> Observation {
    provider
        .run(MeasureRequest {
            run: &AnalysisRun::default(),
            metric,
            now: Timestamp::now(),
        })
        .await
}

fn floats(o: &Observation) -> (&str, Vec<f64>) {
    match o {
        Observation::Float {
            value,
            result: FloatResult::Vector(v),
            ..
        } => (value, v.clone()),
        other => panic!("expected a list of floats, got {other:?}"),
    }
}

fn error_of(o: &Observation) -> &str {
    match o {
        Observation::Error { message, .. } => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_first_targets_values_are_the_result() {
    let server = MockServer::start().await;
    render("/render", ENCODED)
        .respond_with(answer(json!([
            {"target": "errors", "datapoints": [[1.5, 1700000000], [null, 1700000060], ["2.25", 1700000120]]},
            {"target": "other", "datapoints": [[99.0, 1700000000]]}
        ])))
        .expect(3)
        .mount(&server)
        .await;
    let provider = GraphiteProvider::new();
    let m = metric(&server.uri(), QUERY);
    for (success, failure, expected) in [
        (Some("all(result, {# < 5})"), None, Outcome::Successful),
        (Some("result[0] < 1"), None, Outcome::Failed),
        (
            Some("len(result) == 2"),
            Some("result[1] > 2"),
            Outcome::Failed,
        ),
    ] {
        let o = measure(&provider, &m).await;
        let (value, result) = floats(&o);
        assert_eq!(value, "[1.500000,2.250000]");
        assert_eq!(result, vec![1.5, 2.25]);
        assert_eq!(
            evaluate_conditions(success, failure, &ResultValue::from(result)),
            expected
        );
    }
    assert!(provider.metadata(&m).is_empty());
}

#[tokio::test]
async fn the_address_path_is_kept() {
    let server = MockServer::start().await;
    render("/graphite/render", "format=json&from=-1h&target=a.b")
        .respond_with(answer(
            json!([{"target": "a.b", "datapoints": [[90, 1700000000]]}]),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let m = metric(
        &format!("{}/graphite/", server.uri()),
        "target = a.b & from=-1h",
    );
    let o = measure(&GraphiteProvider::new(), &m).await;
    let (value, _) = floats(&o);
    assert_eq!(value, "[90.000000]");
}

#[tokio::test]
async fn only_null_datapoints_leave_the_conditions_without_data() {
    let server = MockServer::start().await;
    render("/render", ENCODED)
        .respond_with(answer(json!([
            {"target": "errors", "datapoints": [[null, 1700000000], [null, 1700000060]]}
        ])))
        .mount(&server)
        .await;
    let o = measure(&GraphiteProvider::new(), &metric(&server.uri(), QUERY)).await;
    let (value, result) = floats(&o);
    assert_eq!((value, result.clone()), ("[]", vec![]));
    let result = ResultValue::from(result);
    assert_eq!(
        evaluate_conditions(Some("result[0] < 5"), None, &result),
        Outcome::Error(
            "could not evaluate successCondition \"result[0] < 5\": metric result is nil or empty: no data returned from the metric provider"
                .into()
        )
    );
    // A condition that holds on an empty list is judged as written.
    assert_eq!(
        evaluate_conditions(Some("len(result) == 0"), None, &result),
        Outcome::Successful
    );
}

#[tokio::test]
async fn empty_and_malformed_answers_are_errors() {
    let server = MockServer::start().await;
    let cases: [(&str, &'static str, ResponseTemplate, &str); 7] = [
        (
            "target=none",
            "format=json&target=none",
            answer(json!([])),
            "no values found",
        ),
        (
            "target=nopoints",
            "format=json&target=nopoints",
            answer(json!([{"target": "x", "datapoints": []}])),
            "no values found",
        ),
        (
            "target=html",
            "format=json&target=html",
            ResponseTemplate::new(200).set_body_string("<html>oops</html>"),
            "invalid character '<' looking for beginning of value",
        ),
        (
            "target=object",
            "format=json&target=object",
            answer(json!({"error": "nope"})),
            "json: cannot unmarshal object into Go value of type graphite.graphiteResponse",
        ),
        (
            "target=triple",
            "format=json&target=triple",
            answer(json!([{"target": "x", "datapoints": [[1, 2, 3]]}])),
            "error unmarshaling data point: [1 2 3]",
        ),
        (
            "target=text",
            "format=json&target=text",
            answer(json!([{"target": "x", "datapoints": [["fast", 1700000000]]}])),
            "strconv.ParseFloat: parsing \"fast\": invalid syntax",
        ),
        (
            "target=second",
            "format=json&target=second",
            answer(json!([
                {"target": "x", "datapoints": [[1, 1700000000]]},
                {"target": "y", "datapoints": [[true, 1700000000]]}
            ])),
            "error unmarshaling value: true",
        ),
    ];
    for (_, encoded, response, _) in &cases {
        render("/render", encoded)
            .respond_with(response.clone())
            .expect(1)
            .mount(&server)
            .await;
    }
    let provider = GraphiteProvider::new();
    for (query, _, _, expected) in &cases {
        let o = measure(&provider, &metric(&server.uri(), query)).await;
        assert_eq!(error_of(&o), *expected, "{query}");
    }
}

#[tokio::test]
async fn http_errors_carry_the_body() {
    let server = MockServer::start().await;
    for (code, body) in [
        (401u16, "Unauthorized"),
        (403, "Forbidden: no access to this target"),
        (500, "Traceback (most recent call last): ValueError"),
    ] {
        let encoded: &'static str =
            Box::leak(format!("format=json&target=s{code}").into_boxed_str());
        render("/render", encoded)
            .respond_with(ResponseTemplate::new(code).set_body_string(body))
            .expect(1)
            .mount(&server)
            .await;
        let o = measure(
            &GraphiteProvider::new(),
            &metric(&server.uri(), &format!("target=s{code}")),
        )
        .await;
        assert_eq!(error_of(&o), format!("error response: {body}"));
    }
}

#[tokio::test]
async fn a_slow_server_hits_the_deadline_and_a_bad_address_sends_nothing() {
    let server = MockServer::start().await;
    render("/render", "format=json&target=slow")
        .respond_with(
            answer(json!([{"target": "x", "datapoints": [[1, 1]]}]))
                .set_delay(Duration::from_secs(3)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let provider = GraphiteProvider::new().with_timeout(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let o = measure(&provider, &metric(&server.uri(), "target=slow")).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        error_of(&o),
        format!(
            "Get \"{}/render?format=json&target=slow\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            server.uri()
        )
    );
    let o = measure(&provider, &metric("::not a url::", "target=x")).await;
    assert_eq!(
        error_of(&o),
        "Graphite address ::not a url:: is not a valid URL"
    );
    let o = measure(&provider, &metric("", "target=x")).await;
    assert_eq!(error_of(&o), "Graphite address  is not a valid URL");
}

#[tokio::test]
async fn a_refused_connection_is_an_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let o = measure(
        &GraphiteProvider::new(),
        &metric(&format!("http://127.0.0.1:{port}"), "target=x"),
    )
    .await;
    assert_eq!(
        error_of(&o),
        format!(
            "Get \"http://127.0.0.1:{port}/render?format=json&target=x\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        )
    );
}

#[test]
fn the_provider_is_registered() {
    let registry = Registry::collect().expect("registry");
    assert!(registry.provider_names().contains(&NAME), "{registry:?}");
    let provider = (registry.provider(NAME).unwrap().build)(&rollouts_plugin::ProviderInit {
        client: None,
        controller_namespace: "argo-rollouts".into(),
    })
    .expect("builds");
    assert_eq!(provider.name(), "graphite");
}
