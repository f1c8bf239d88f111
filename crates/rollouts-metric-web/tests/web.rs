//! The web provider against a real HTTP server on 127.0.0.1 (wiremock): every outcome Argo
//! distinguishes, with Argo's messages.

use std::{collections::BTreeMap, time::Duration};

use rollouts_api::{AnalysisRun, Metric};
use rollouts_plugin::{MeasureRequest, MetricProvider, Observation, ProviderInit, Registry};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_json, body_string, header, method, path},
};

use rollouts_metric_web as web;

fn provider() -> Box<dyn MetricProvider> {
    let registry = Registry::collect().expect("no duplicate registrations");
    let plugin = registry.provider(web::NAME).expect("web is registered");
    (plugin.build)(&ProviderInit {
        client: None,
        controller_namespace: "argo-rollouts".into(),
    })
    .expect("the web provider builds without a cluster")
}

fn metric(web: Value) -> Metric {
    serde_json::from_value(json!({"name": "m", "provider": {"web": web}})).expect("metric decodes")
}

async fn measure(web: Value) -> Observation {
    let run = AnalysisRun::default();
    let metric = metric(web);
    provider()
        .run(MeasureRequest {
            run: &run,
            metric: &metric,
            now: jiff::Timestamp::now(),
        })
        .await
}

fn value(result: Value, value: &str) -> Observation {
    Observation::Value {
        result,
        value: value.to_string(),
        metadata: BTreeMap::new(),
    }
}

async fn serve(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/metric"))
        .respond_with(response)
        .expect(1)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn the_value_at_the_json_path_is_the_result() {
    let server = serve(
        ResponseTemplate::new(200)
            .set_body_json(json!({"data": {"ok": true, "rate": 0.99, "n": 3}})),
    )
    .await;
    let url = format!("{}/metric", server.uri());
    assert_eq!(
        measure(json!({"url": url, "jsonPath": "{$.data.rate}"})).await,
        value(json!(0.99), "0.99")
    );
    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": {"ok": true, "n": 3}})),
        )
        .mount(&server)
        .await;
    assert_eq!(
        measure(json!({"url": url, "jsonPath": "{.data.ok}"})).await,
        value(json!(true), "true")
    );
    // The default path is the whole document, rendered as Go renders it (keys sorted, floats).
    assert_eq!(
        measure(json!({"url": url})).await,
        value(
            json!({"data": {"n": 3.0, "ok": true}}),
            r#"{"data":{"n":3,"ok":true}}"#
        )
    );
}

#[tokio::test]
async fn a_path_that_finds_nothing_is_an_error_worded_as_argo_words_it() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"items": []}})))
        .mount(&server)
        .await;
    let url = server.uri();
    assert_eq!(
        measure(json!({"url": url, "jsonPath": "{$.data.rate}"})).await,
        Observation::error("Could not find JSONPath in body: rate is not found")
    );
    assert_eq!(
        measure(json!({"url": url, "jsonPath": "{$.data.items[*]}"})).await,
        Observation::error("result of web metric produced no value")
    );
}

#[tokio::test]
async fn a_bad_json_path_is_an_error_and_sends_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    assert_eq!(
        measure(json!({"url": server.uri(), "jsonPath": "{.data[0"})).await,
        Observation::error("unterminated array")
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_the_value_itself() {
    let server = serve(ResponseTemplate::new(200).set_body_string("all good\n")).await;
    assert_eq!(
        measure(json!({"url": format!("{}/metric", server.uri()), "jsonPath": "{$.x}"})).await,
        value(json!("all good\n"), "all good\n")
    );
    let empty = serve(ResponseTemplate::new(204)).await;
    assert_eq!(
        measure(json!({"url": format!("{}/metric", empty.uri())})).await,
        value(json!(""), "")
    );
}

#[tokio::test]
async fn a_slow_server_times_out_after_timeout_seconds() {
    let server = serve(
        ResponseTemplate::new(200)
            .set_delay(Duration::from_secs(3))
            .set_body_json(json!(1)),
    )
    .await;
    let url = format!("{}/metric", server.uri());
    let started = std::time::Instant::now();
    let observed = measure(json!({"url": url, "timeoutSeconds": 1})).await;
    let took = started.elapsed();
    assert_eq!(
        observed,
        Observation::error(format!(
            "Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        ))
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "took {took:?}"
    );
}

#[tokio::test]
async fn non_2xx_responses_are_errors() {
    for code in [500, 404, 302] {
        let server = serve(ResponseTemplate::new(code).set_body_json(json!({"ok": true}))).await;
        assert_eq!(
            measure(json!({"url": format!("{}/metric", server.uri())})).await,
            Observation::error(format!("received non 2xx response code: {code}"))
        );
    }
}

#[tokio::test]
async fn post_with_json_body_sets_the_content_type_over_the_users() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/query"))
        .and(header("content-type", "application/json"))
        .and(header("x-team", "checkout"))
        .and(body_json(json!({"service": "checkout", "window": 5})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"score": 97})))
        .expect(1)
        .mount(&server)
        .await;
    let observed = measure(json!({
        "url": format!("{}/query", server.uri()),
        "method": "POST",
        "headers": [
            {"key": "Content-Type", "value": "text/plain"},
            {"key": "X-Team", "value": "payments"},
            {"key": "X-Team", "value": "checkout"}
        ],
        "jsonBody": {"service": "checkout", "window": 5},
        "jsonPath": "{.score}"
    }))
    .await;
    assert_eq!(observed, value(json!(97.0), "97"));
}

#[tokio::test]
async fn put_with_a_text_body_and_headers() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/check"))
        .and(header("authorization", "Bearer abc"))
        .and(body_string("ping"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"status": "up"})))
        .expect(1)
        .mount(&server)
        .await;
    let observed = measure(json!({
        "url": format!("{}/check", server.uri()),
        "method": "PUT",
        "headers": [{"key": "Authorization", "value": "Bearer abc"}],
        "body": "ping",
        "jsonPath": "{.status}"
    }))
    .await;
    assert_eq!(observed, value(json!("up"), r#""up""#));
}

#[tokio::test]
async fn bodies_are_checked_before_anything_is_sent() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let url = server.uri();
    assert_eq!(
        measure(json!({"url": url, "body": "x"})).await,
        Observation::error(
            "Body/JSONBody can only be used with POST or PUT WebMetric Method types"
        )
    );
    assert_eq!(
        measure(json!({"url": url, "method": "POST", "body": "x", "jsonBody": {"a": 1}})).await,
        Observation::error("use either Body or JSONBody; both cannot exists for WebMetric payload")
    );
    assert_eq!(
        measure(
            json!({"url": url, "authentication": {"oauth2": {"tokenUrl": url, "clientId": "c"}}})
        )
        .await,
        Observation::error("missing mandatory parameter in metric for OAuth2 setup")
    );
}

#[tokio::test]
async fn oauth2_client_credentials_fetch_a_bearer_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        // Basic auth of "client:s3cret".
        .and(header("authorization", "Basic Y2xpZW50OnMzY3JldA=="))
        .and(body_string(
            "grant_type=client_credentials&scope=read+write",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "tok-1", "token_type": "bearer", "expires_in": 60}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/metric"))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"v": 1.5})))
        .expect(1)
        .mount(&server)
        .await;
    let observed = measure(json!({
        "url": format!("{}/metric", server.uri()),
        "jsonPath": "{.v}",
        "authentication": {"oauth2": {
            "tokenUrl": format!("{}/token", server.uri()),
            "clientId": "client",
            "clientSecret": "s3cret",
            "scopes": ["read", "write"]
        }}
    }))
    .await;
    assert_eq!(observed, value(json!(1.5), "1.5"));
}

#[tokio::test]
async fn a_rejected_token_request_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(401).set_body_string("no"))
        .expect(2) // header auth, then credentials in the form, as x/oauth2 auto-detects
        .mount(&server)
        .await;
    let url = format!("{}/metric", server.uri());
    let observed = measure(json!({
        "url": url,
        "authentication": {"oauth2": {
            "tokenUrl": format!("{}/token", server.uri()),
            "clientId": "client",
            "clientSecret": "wrong"
        }}
    }))
    .await;
    assert_eq!(
        observed,
        Observation::error(format!(
            "Get {url:?}: oauth2: cannot fetch token: 401 Unauthorized\nResponse: no"
        ))
    );
}

#[tokio::test]
async fn an_unreachable_server_is_an_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/metric");
    assert_eq!(
        measure(json!({"url": url})).await,
        Observation::error(format!(
            "Get {url:?}: dial tcp 127.0.0.1:{port}: connect: connection refused"
        ))
    );
}

#[tokio::test]
async fn a_metric_without_a_web_block_is_an_error() {
    let run = AnalysisRun::default();
    let metric: Metric =
        serde_json::from_value(json!({"name": "m", "provider": {"prometheus": {}}})).unwrap();
    let observed = provider()
        .run(MeasureRequest {
            run: &run,
            metric: &metric,
            now: jiff::Timestamp::now(),
        })
        .await;
    assert_eq!(
        observed,
        Observation::error(r#"metric "m" has no provider.web block"#)
    );
}
