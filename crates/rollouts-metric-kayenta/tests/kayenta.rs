//! The Kayenta provider against a Kayenta test double (wiremock on 127.0.0.1). The double checks
//! the config lookup, the judgement request (query parameters, scopes with their window,
//! thresholds) and the execution lookups, and answers with Kayenta's bodies; the tests walk a
//! measurement through run → in progress → resume → verdict, and through its errors.

use std::{collections::BTreeMap, time::Duration};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rollouts_api::{AnalysisRun, AnalysisRunStatus, Measurement, Metric};
use rollouts_metric_kayenta::{EXECUTION_ID_KEY, KayentaProvider, NAME};
use rollouts_plugin::{MeasureRequest, MetricProvider, Observation, Registry, Verdict};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_json, header, method, path, query_param},
};

fn now() -> Timestamp {
    "2026-08-17T11:10:42Z".parse().expect("timestamp")
}

fn kayenta(address: &str) -> Value {
    json!({
        "address": address,
        "application": "shop",
        "canaryConfigName": "shop-latency",
        "metricsAccountName": "prom-account",
        "configurationAccountName": "config-account",
        "storageAccountName": "storage-account",
        "threshold": {"pass": 90, "marginal": 75},
        "scopes": [{
            "name": "default",
            "controlScope": {"scope": "app=shop-stable", "region": "eu-west-1", "step": 60},
            "experimentScope": {"scope": "app=shop-canary", "region": "eu-west-1", "step": 60}
        }]
    })
}

fn metric(block: Value) -> Metric {
    serde_json::from_value(json!({
        "name": "judgement", "interval": "30m", "provider": {"kayenta": block}
    }))
    .expect("metric decodes")
}

/// The config list, with the wanted config second.
async fn serve_configs(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/canaryConfig"))
        .and(query_param("application", "shop"))
        // Argo looks configs up in the storage account.
        .and(query_param("configurationAccountName", "storage-account"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": "cfg-0", "name": "other", "applications": ["shop"]},
            {"id": "cfg-1", "name": "shop-latency", "updatedTimestamp": 1700000000000_i64,
             "updatedTimestampIso": "2023-11-14T22:13:20Z", "applications": ["shop"]}
        ])))
        .mount(server)
        .await;
}

/// The judgement request for `scope_window` (start, end) of the default scope.
fn judgement(start: &str, end: &str) -> wiremock::MockBuilder {
    let side = |scope: &str| json!({"scope": scope, "location": "eu-west-1", "step": 60, "start": start, "end": end});
    Mock::given(method("POST"))
        .and(path("/canary/cfg-1"))
        .and(query_param("application", "shop"))
        .and(query_param("metricsAccountName", "prom-account"))
        .and(query_param("configurationAccountName", "config-account"))
        .and(query_param("storageAccountName", "storage-account"))
        .and(header("Content-Type", "application/json"))
        .and(body_json(json!({
            "scopes": {"default": {
                "controlScope": side("app=shop-stable"),
                "experimentScope": side("app=shop-canary")
            }},
            "thresholds": {"pass": 90, "marginal": 75}
        })))
}

fn request<'a>(run: &'a AnalysisRun, metric: &'a Metric, now: Timestamp) -> MeasureRequest<'a> {
    MeasureRequest { run, metric, now }
}

fn in_flight(metadata: &BTreeMap<String, String>) -> Measurement {
    Measurement {
        phase: "Running".into(),
        metadata: Some(metadata.clone()),
        ..Default::default()
    }
}

fn error_of(o: &Observation) -> &str {
    match o {
        Observation::Error { message, .. } => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

async fn execution(server: &MockServer, id: &str, body: Value) {
    Mock::given(method("GET"))
        .and(path(format!("/canary/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_judgement_runs_then_completes_with_its_score() {
    let server = MockServer::start().await;
    serve_configs(&server).await;
    judgement("2026-08-17T10:40:42Z", "2026-08-17T11:10:42Z")
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"canaryExecutionId": "01ABC"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    // The first look finds it running, the second finds it done.
    Mock::given(method("GET"))
        .and(path("/canary/01ABC"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"complete": false})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/canary/01ABC"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "complete": true,
            "status": "succeeded",
            "result": {"judgeResult": {"judgeName": "NetflixACAJudge-v1.0", "score": {"score": 87.5, "classification": "Marginal"}}}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let provider = KayentaProvider::new();
    let run = AnalysisRun::default();
    let m = metric(kayenta(&server.uri()));
    let started = provider.run(request(&run, &m, now())).await;
    let expected_metadata = BTreeMap::from([(EXECUTION_ID_KEY.to_string(), "01ABC".to_string())]);
    assert_eq!(
        started,
        Observation::InProgress {
            resume_at: Some("2026-08-17T11:10:57Z".parse().expect("timestamp")),
            metadata: expected_metadata.clone(),
        }
    );
    let later: Timestamp = "2026-08-17T11:11:00Z".parse().expect("timestamp");
    let running = provider
        .resume(request(&run, &m, later), &in_flight(&expected_metadata))
        .await;
    assert_eq!(
        running,
        Observation::InProgress {
            resume_at: Some("2026-08-17T11:11:15Z".parse().expect("timestamp")),
            metadata: expected_metadata.clone(),
        }
    );
    let done = provider
        .resume(request(&run, &m, later), &in_flight(&expected_metadata))
        .await;
    assert_eq!(
        done,
        Observation::Decided {
            verdict: Verdict::Inconclusive,
            value: Some("87".into()),
            message: None,
            metadata: expected_metadata,
        }
    );
}

#[tokio::test]
async fn scores_are_judged_against_pass_and_marginal() {
    let server = MockServer::start().await;
    for (id, score) in [("hi", 95.0), ("pass", 90.9), ("low", 74.99)] {
        execution(
            &server,
            id,
            json!({"complete": true, "result": {"judgeResult": {"score": {"score": score}}}}),
        )
        .await;
    }
    let provider = KayentaProvider::new();
    let run = AnalysisRun::default();
    let m = metric(kayenta(&server.uri()));
    for (id, verdict, value) in [
        ("hi", Verdict::Successful, "95"),
        ("pass", Verdict::Successful, "90"),
        ("low", Verdict::Failed, "74"),
    ] {
        let metadata = BTreeMap::from([(EXECUTION_ID_KEY.to_string(), id.to_string())]);
        let o = provider
            .resume(request(&run, &m, now()), &in_flight(&metadata))
            .await;
        let Observation::Decided {
            verdict: got,
            value: Some(got_value),
            ..
        } = o
        else {
            panic!("{id}: expected a verdict, got {o:?}")
        };
        assert_eq!((got, got_value.as_str()), (verdict, value), "{id}");
    }
}

#[tokio::test]
async fn lookback_starts_the_window_at_the_run_start_and_set_windows_are_kept() {
    let server = MockServer::start().await;
    serve_configs(&server).await;
    judgement("2026-08-17T09:00:00Z", "2026-08-17T11:10:42Z")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"canaryExecutionId": "LB"})))
        .expect(1)
        .mount(&server)
        .await;
    judgement("2026-08-01T00:00:00Z", "2026-08-02T00:00:00Z")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"canaryExecutionId": "FIX"})))
        .expect(1)
        .mount(&server)
        .await;
    let provider = KayentaProvider::new();
    let run = AnalysisRun {
        status: Some(AnalysisRunStatus {
            started_at: Some(Time("2026-08-17T09:00:00Z".parse().expect("timestamp"))),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut block = kayenta(&server.uri());
    block["lookback"] = json!(true);
    let o = provider.run(request(&run, &metric(block), now())).await;
    assert!(
        matches!(&o, Observation::InProgress { metadata, .. } if metadata[EXECUTION_ID_KEY] == "LB"),
        "{o:?}"
    );
    let mut block = kayenta(&server.uri());
    for side in ["controlScope", "experimentScope"] {
        block["scopes"][0][side]["start"] = json!("2026-08-01T00:00:00Z");
        block["scopes"][0][side]["end"] = json!("2026-08-02T00:00:00Z");
    }
    let o = provider.run(request(&run, &metric(block), now())).await;
    assert!(
        matches!(&o, Observation::InProgress { metadata, .. } if metadata[EXECUTION_ID_KEY] == "FIX"),
        "{o:?}"
    );
}

#[tokio::test]
async fn config_lookup_problems_are_errors_before_any_judgement() {
    let provider = KayentaProvider::new();
    let run = AnalysisRun::default();
    let cases = [
        (
            ResponseTemplate::new(404).set_body_json(json!({"error": "Not Found", "status": 404})),
            "Invalid Response: HTTP 404",
        ),
        (
            ResponseTemplate::new(500).set_body_string("boom"),
            "Invalid Response: HTTP 500",
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!([{"id": "cfg-0", "name": "other"}])),
            "Canary config not found",
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!([])),
            "Canary config not found",
        ),
        (
            ResponseTemplate::new(200).set_body_string("<html>"),
            "invalid character '<' looking for beginning of value",
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!({"id": "cfg-1"})),
            "json: cannot unmarshal object into Go value of type []kayenta.canaryConfig",
        ),
    ];
    for (response, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/canaryConfig"))
            .respond_with(response)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let o = provider
            .run(request(&run, &metric(kayenta(&server.uri())), now()))
            .await;
        assert_eq!(error_of(&o), expected);
    }
}

#[tokio::test]
async fn judgement_start_problems_are_errors() {
    let server = MockServer::start().await;
    serve_configs(&server).await;
    let provider = KayentaProvider::new();
    let run = AnalysisRun::default();
    let m = metric(kayenta(&server.uri()));
    let window = ("2026-08-17T10:40:42Z", "2026-08-17T11:10:42Z");
    let cases = [
        (
            ResponseTemplate::new(400).set_body_json(json!({
                "error": "Bad Request", "message": "Canary config 'cfg-1' does not exist", "status": 400
            })),
            "Invalid Response",
        ),
        (ResponseTemplate::new(500), "Invalid Response"),
        (
            ResponseTemplate::new(200).set_body_json(json!({"other": 1})),
            "Invalid canaryExecutionId",
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!({"canaryExecutionId": ""})),
            "Invalid canaryExecutionId",
        ),
        (
            ResponseTemplate::new(200).set_body_string("Internal error"),
            "invalid character 'I' looking for beginning of value",
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!(["01ABC"])),
            "json: cannot unmarshal array into Go value of type map[string]interface {}",
        ),
        (
            ResponseTemplate::new(200),
            "unexpected end of JSON input",
        ),
    ];
    for (response, expected) in cases {
        let mock = judgement(window.0, window.1)
            .respond_with(response)
            .expect(1)
            .mount_as_scoped(&server)
            .await;
        let o = provider.run(request(&run, &m, now())).await;
        assert_eq!(error_of(&o), expected);
        drop(mock);
    }
}

#[tokio::test]
async fn scope_and_interval_problems_are_errors_before_the_judgement() {
    let server = MockServer::start().await;
    serve_configs(&server).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"canaryExecutionId": "x"})))
        .expect(0)
        .mount(&server)
        .await;
    let provider = KayentaProvider::new();
    let run = AnalysisRun::default();
    let mut half = kayenta(&server.uri());
    half["scopes"][0]["controlScope"]["end"] = json!("2026-08-17T11:00:00Z");
    let no_interval: Metric = serde_json::from_value(
        json!({"name": "judgement", "provider": {"kayenta": kayenta(&server.uri())}}),
    )
    .expect("metric decodes");
    let mut lookback = kayenta(&server.uri());
    lookback["lookback"] = json!(true);
    for (m, expected) in [
        (
            metric(half),
            "controlScope.end and experimentScope.end must both be set or be empty",
        ),
        (
            no_interval,
            r#"Invalid duration "": time: invalid duration """#,
        ),
        (
            metric(lookback),
            "lookback needs the AnalysisRun's status.startedAt",
        ),
    ] {
        assert_eq!(
            error_of(&provider.run(request(&run, &m, now())).await),
            expected
        );
    }
}

#[tokio::test]
async fn execution_lookup_problems_are_errors_that_keep_the_execution_id() {
    let server = MockServer::start().await;
    execution(&server, "nocomplete", json!({"status": "running"})).await;
    execution(
        &server,
        "noscore",
        json!({"complete": true, "result": {"judgeResult": {}}}),
    )
    .await;
    execution(&server, "badcomplete", json!({"complete": "true"})).await;
    execution(
        &server,
        "badscore",
        json!({"complete": true, "result": {"judgeResult": {"score": {"score": "87"}}}}),
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/canary/gone"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "error": "Not Found", "message": "Unable to find execution gone", "status": 404
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/canary/html"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>"))
        .mount(&server)
        .await;
    let provider = KayentaProvider::new();
    let run = AnalysisRun::default();
    let m = metric(kayenta(&server.uri()));
    for (id, expected) in [
        ("nocomplete", "Missing Complete Status"),
        ("noscore", "Missing Score"),
        (
            "badcomplete",
            ".complete accessor error: true is of the type string, expected bool",
        ),
        (
            "badscore",
            ".result.judgeResult.score.score accessor error: 87 is of the type string, expected float64",
        ),
        ("gone", "Invalid Response"),
        (
            "html",
            "invalid character '<' looking for beginning of value",
        ),
    ] {
        let metadata = BTreeMap::from([(EXECUTION_ID_KEY.to_string(), id.to_string())]);
        let o = provider
            .resume(request(&run, &m, now()), &in_flight(&metadata))
            .await;
        assert_eq!(
            o,
            Observation::Error {
                message: expected.to_string(),
                metadata
            },
            "{id}"
        );
    }
    let o = provider
        .resume(request(&run, &m, now()), &in_flight(&BTreeMap::new()))
        .await;
    assert_eq!(
        error_of(&o),
        "the measurement has no canaryExecutionId in its metadata"
    );
}

#[tokio::test]
async fn a_slow_server_hits_the_deadline() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/canaryConfig"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([]))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let provider = KayentaProvider::new().with_timeout(Duration::from_millis(200));
    let run = AnalysisRun::default();
    let started = std::time::Instant::now();
    let o = provider
        .run(request(&run, &metric(kayenta(&server.uri())), now()))
        .await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        error_of(&o),
        format!(
            "Get \"{}/canaryConfig?application=shop&configurationAccountName=storage-account\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            server.uri()
        )
    );
}

#[tokio::test]
async fn terminate_ends_the_measurement_and_calls_nothing() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let provider = KayentaProvider::new();
    let run = AnalysisRun::default();
    let m = metric(kayenta(&server.uri()));
    let metadata = BTreeMap::from([(EXECUTION_ID_KEY.to_string(), "01ABC".to_string())]);
    let o = provider
        .terminate(request(&run, &m, now()), &in_flight(&metadata))
        .await;
    assert_eq!(
        o,
        Observation::Decided {
            verdict: Verdict::Successful,
            value: None,
            message: Some("Metric Terminated".into()),
            metadata,
        }
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
    assert_eq!(provider.name(), "kayenta");
}
