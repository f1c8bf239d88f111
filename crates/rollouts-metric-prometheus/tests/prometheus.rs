//! The Prometheus provider against a real Prometheus (Debian's package, started by the test on
//! 127.0.0.1) scraping a target the test controls, and against a scripted server (wiremock) for
//! what a real Prometheus does not do on demand: authentication, the GET fallback, server errors,
//! warnings and timeouts.
//!
//! Prometheus must be installed: `cargo xtask prometheus` installs it (apt-get) and prints where
//! it is. The tests fail, and say so, when it is missing.

use std::{
    collections::BTreeMap,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Once,
    time::{Duration, Instant},
};

use jiff::Timestamp;
use rollouts_api::{AnalysisRun, Metric};
use rollouts_metric_prometheus::{PrometheusProvider, RESOLVED_QUERY_KEY};
use rollouts_plugin::{
    FloatResult, MeasureRequest, MetricProvider, Observation, ProviderInit, Registry,
};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string, body_string_contains, header, method, path, query_param},
};

fn install_time_evaluator() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rollouts_plugin::install_time_evaluator(|text, now| {
            rollouts_expr::evaluate_time(text, now).map_err(|e| e.to_string())
        });
    });
}

fn metric(prometheus: Value) -> Metric {
    serde_json::from_value(json!({"name": "success-rate", "provider": {"prometheus": prometheus}}))
        .expect("metric decodes")
}

async fn measure_at(prometheus: Value, now: Timestamp) -> Observation {
    install_time_evaluator();
    let run = AnalysisRun::default();
    let metric = metric(prometheus);
    PrometheusProvider::new(None)
        .run(MeasureRequest {
            run: &run,
            metric: &metric,
            now,
        })
        .await
}

async fn measure(prometheus: Value) -> Observation {
    measure_at(prometheus, Timestamp::now()).await
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// The Prometheus binary: `$ROLLOUTS_RS_PROMETHEUS`, else `prometheus` on the PATH, else Debian's
/// `/usr/bin/prometheus`.
fn prometheus_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ROLLOUTS_RS_PROMETHEUS") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("prometheus"))
        .chain([PathBuf::from("/usr/bin/prometheus")])
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "Prometheus is not installed, and these tests need a real one: run `cargo xtask prometheus` \
             (it installs Debian's prometheus package with apt-get), or point ROLLOUTS_RS_PROMETHEUS at a binary"
        )
    })
}

/// A Prometheus server of the test's own: 127.0.0.1 only, a temporary data directory, scraping
/// `target` every second; killed and cleaned up on drop.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Prometheus {
    async fn start(target: &str) -> Self {
        let binary = prometheus_binary();
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("rollouts-prometheus-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).expect("temporary directory");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("config file");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
        let child = Command::new(&binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let server = Prometheus {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let client = rollouts_plugin::http::client(false, Some(Duration::from_secs(2)))
            .expect("an HTTP client");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = client.get(format!("{}/-/ready", self.url)).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "Prometheus did not become ready in 30 s; its log:\n{}",
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The scrape target: an application that served 95 good and 5 bad requests.
async fn application() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/metrics"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/plain; version=0.0.4")
                .set_body_string(
                    "# TYPE http_requests_total counter\n\
             http_requests_total{code=\"200\"} 95\n\
             http_requests_total{code=\"500\"} 5\n",
                ),
        )
        .mount(&server)
        .await;
    server
}

const SUCCESS_RATE: &str = "sum(http_requests_total{code=\"200\"}) / sum(http_requests_total)";

/// Waits until Prometheus has scraped the target `samples` times.
async fn wait_for_samples(prometheus: &Prometheus, samples: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let observed = measure(json!({
            "address": prometheus.url,
            "query": format!("count_over_time(http_requests_total{{code=\"200\"}}[1m])")
        }))
        .await;
        if let Observation::Float {
            result: FloatResult::Vector(v),
            ..
        } = &observed
            && v.first().is_some_and(|n| *n >= samples as f64)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not scrape the target {samples} times in 30 s (last answer {observed:?}); its log:\n{}",
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn a_real_prometheus_answers_vector_scalar_and_matrix_queries() {
    let app = application().await;
    let target = app.address().to_string();
    let prometheus = Prometheus::start(&target).await;
    wait_for_samples(&prometheus, 3).await;

    // Vector: one sample, labels dropped.
    assert_eq!(
        measure(json!({"address": prometheus.url, "query": SUCCESS_RATE})).await,
        Observation::Float {
            result: FloatResult::Vector(vec![0.95]),
            value: "[0.95]".into(),
            metadata: BTreeMap::new(),
        }
    );
    // A vector of two series keeps one value per sample (order as Prometheus returns them).
    let Observation::Float {
        result: FloatResult::Vector(mut both),
        value,
        ..
    } = measure(json!({"address": prometheus.url, "query": "http_requests_total"})).await
    else {
        panic!("a vector")
    };
    both.sort_by(f64::total_cmp);
    assert_eq!(both, vec![5.0, 95.0]);
    assert!(value == "[95,5]" || value == "[5,95]", "{value}");

    // Scalar.
    assert_eq!(
        measure(json!({"address": prometheus.url, "query": format!("scalar({SUCCESS_RATE})")}))
            .await,
        Observation::Float {
            result: FloatResult::Scalar(0.95),
            value: "0.95".into(),
            metadata: BTreeMap::new(),
        }
    );
    // An empty vector is a value too (the conditions then see an empty list).
    assert_eq!(
        measure(json!({"address": prometheus.url, "query": "http_requests_total{code=\"404\"}"}))
            .await,
        Observation::Float {
            result: FloatResult::Vector(vec![]),
            value: "[]".into(),
            metadata: BTreeMap::new(),
        }
    );

    // Matrix: a range query over the last few seconds, every point of every series flattened.
    let observed = measure(json!({
        "address": prometheus.url,
        "query": SUCCESS_RATE,
        "rangeQuery": {"start": "now() - duration(\"2s\")", "end": "now()", "step": "1s"}
    }))
    .await;
    let Observation::Float {
        result: FloatResult::Vector(points),
        value,
        ..
    } = observed
    else {
        panic!("a range query gives a matrix: {observed:?}")
    };
    assert_eq!(points, vec![0.95; 3], "three points, at -2s, -1s and now");
    assert_eq!(value, "[0.95,0.95,0.95]");
}

#[tokio::test]
async fn a_real_prometheus_rejects_a_bad_query() {
    let app = application().await;
    let prometheus = Prometheus::start(&app.address().to_string()).await;
    let observed =
        measure(json!({"address": prometheus.url, "query": "sum(http_requests_total"})).await;
    let Observation::Error { message, .. } = &observed else {
        panic!("a bad query is an Error: {observed:?}")
    };
    assert!(message.starts_with("bad_data: "), "{message}");
    assert!(message.contains("parse error"), "{message}");
    // A range query whose start is not a time never reaches the server.
    let observed = measure(json!({
        "address": prometheus.url,
        "query": "up",
        "rangeQuery": {"start": "1 + 1", "end": "now()", "step": "1s"}
    }))
    .await;
    assert_eq!(
        observed,
        Observation::error(
            "failed to parse rangeQuery.start as time: expected time.Time, but got int"
        )
    );
}

#[tokio::test]
async fn an_unreachable_prometheus_is_an_error() {
    let port = free_port();
    let address = format!("http://127.0.0.1:{port}");
    assert_eq!(
        measure(json!({"address": address, "query": "up"})).await,
        Observation::error(format!(
            "Post \"{address}/api/v1/query\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        ))
    );
}

// --- A scripted server: the exact requests client_golang sends, and the answers a real server
// gives only in special set-ups. ---

fn success(data: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"status": "success", "data": data}))
}

#[tokio::test]
async fn instant_queries_post_the_query_and_the_time() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/prom/api/v1/query"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(header("x-scope-orgid", "team-a"))
        .and(body_string("query=up&time=1700000000.25"))
        .respond_with(success(
            json!({"resultType": "scalar", "result": [1700000000.25, "1"]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let now = Timestamp::new(1_700_000_000, 250_000_000).unwrap();
    let observed = measure_at(
        json!({
            "address": format!("{}/prom/", server.uri()),
            "query": "up",
            "headers": [{"key": "X-Scope-OrgID", "value": "team-a"}]
        }),
        now,
    )
    .await;
    assert_eq!(
        observed,
        Observation::Float {
            result: FloatResult::Scalar(1.0),
            value: "1".into(),
            metadata: BTreeMap::new()
        }
    );
}

#[tokio::test]
async fn range_queries_send_start_end_and_step() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/query_range"))
        .and(body_string(
            "end=1700000000&query=up&start=1699999700&step=60",
        ))
        .respond_with(success(json!({"resultType": "matrix", "result": [
            {"metric": {}, "values": [[1699999700, "1"], [1699999760, "NaN"]]}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let now = Timestamp::from_second(1_700_000_000).unwrap();
    let observed = measure_at(
        json!({
            "address": server.uri(),
            "query": "up",
            "rangeQuery": {"start": "now() - duration(\"5m\")", "end": "now()", "step": "1m"}
        }),
        now,
    )
    .await;
    let Observation::Float {
        result: FloatResult::Vector(v),
        value,
        ..
    } = observed
    else {
        panic!("a matrix: {observed:?}")
    };
    assert_eq!(value, "[1,NaN]");
    assert!(v[0] == 1.0 && v[1].is_nan());
    assert_eq!(
        measure_at(
            json!({"address": server.uri(), "query": "up", "rangeQuery": {"start": "now()", "end": "now()", "step": "5"}}),
            now
        )
        .await,
        Observation::error("failed to parse rangeQuery.step as duration: time: missing unit in duration \"5\"")
    );
}

#[tokio::test]
async fn a_refused_post_is_retried_as_a_get() {
    for refusal in [405, 501, 403] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(refusal))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/query"))
            .and(query_param("query", "up"))
            .and(query_param("time", "1700000000"))
            .respond_with(success(json!({"resultType": "vector", "result": [
                {"metric": {"job": "a"}, "value": [1700000000, "3"]}
            ]})))
            .expect(1)
            .mount(&server)
            .await;
        let observed = measure_at(
            json!({"address": server.uri(), "query": "up"}),
            Timestamp::from_second(1_700_000_000).unwrap(),
        )
        .await;
        assert_eq!(
            observed,
            Observation::Float {
                result: FloatResult::Vector(vec![3.0]),
                value: "[3]".into(),
                metadata: BTreeMap::new()
            },
            "after a {refusal}"
        );
    }
}

#[tokio::test]
async fn basic_auth_and_oauth2_authenticate_the_query() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/query"))
        // "reader:pa55"
        .and(header("authorization", "Basic cmVhZGVyOnBhNTU="))
        .respond_with(success(json!({"resultType": "scalar", "result": [1, "2"]})))
        .expect(1)
        .mount(&server)
        .await;
    let observed = measure(json!({
        "address": server.uri(),
        "query": "up",
        "authentication": {"basicAuth": {"username": "reader", "password": "pa55"}}
    }))
    .await;
    assert!(
        matches!(
            observed,
            Observation::Float {
                result: FloatResult::Scalar(2.0),
                ..
            }
        ),
        "{observed:?}"
    );

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "t0k", "token_type": "Bearer"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/query"))
        .and(header("authorization", "Bearer t0k"))
        .respond_with(success(json!({"resultType": "scalar", "result": [1, "3"]})))
        .expect(1)
        .mount(&server)
        .await;
    let observed = measure(json!({
        "address": server.uri(),
        "query": "up",
        "authentication": {"oauth2": {"tokenUrl": format!("{}/token", server.uri()), "clientId": "c", "clientSecret": "s"}}
    }))
    .await;
    assert!(
        matches!(
            observed,
            Observation::Float {
                result: FloatResult::Scalar(3.0),
                ..
            }
        ),
        "{observed:?}"
    );
}

#[tokio::test]
async fn errors_are_worded_as_client_golang_words_them() {
    let cases = [
        (ResponseTemplate::new(503), "server_error: server error: 503"),
        (ResponseTemplate::new(404), "client_error: client error: 404"),
        (
            ResponseTemplate::new(200).set_body_string("<html>"),
            "bad_response: invalid character '<' looking for beginning of value",
        ),
        (
            ResponseTemplate::new(400).set_body_json(json!({"status": "error", "errorType": "bad_data", "error": "parse error at char 4"})),
            "bad_data: parse error at char 4",
        ),
        (
            ResponseTemplate::new(422).set_body_json(json!({"status": "success", "data": {}})),
            "bad_response: inconsistent body for response code",
        ),
        (
            success(json!({"resultType": "string", "result": [1, "x"]})),
            "unexpected value type \"string\"",
        ),
    ];
    for (response, want) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(response)
            .mount(&server)
            .await;
        assert_eq!(
            measure(json!({"address": server.uri(), "query": "up"})).await,
            Observation::error(want)
        );
    }
}

#[tokio::test]
async fn warnings_go_to_the_measurement_metadata() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "success",
            "data": {"resultType": "vector", "result": []},
            "warnings": ["w1", "w2"]
        })))
        .mount(&server)
        .await;
    assert_eq!(
        measure(json!({"address": server.uri(), "query": "up"})).await,
        Observation::Float {
            result: FloatResult::Vector(vec![]),
            value: "[]".into(),
            metadata: BTreeMap::from([("warnings".into(), "\"w1\", \"w2\"".into())]),
        }
    );
}

#[tokio::test]
async fn the_timeout_bounds_the_query() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            success(json!({"resultType": "scalar", "result": [1, "1"]}))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let started = Instant::now();
    let observed = measure(json!({"address": server.uri(), "query": "up", "timeout": 1})).await;
    assert_eq!(
        observed,
        Observation::error(format!(
            "Post \"{}/api/v1/query\": context deadline exceeded",
            server.uri()
        ))
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "took {took:?}"
    );
}

#[test]
fn the_registry_has_prometheus_and_it_records_the_query() {
    let registry = Registry::collect().unwrap();
    let plugin = registry.provider("prometheus").unwrap();
    let provider = (plugin.build)(&ProviderInit {
        client: None,
        controller_namespace: "argo-rollouts".into(),
    })
    .unwrap();
    assert_eq!(provider.name(), "prometheus");
    assert_eq!(
        provider.metadata(&metric(json!({"query": "up"}))),
        BTreeMap::from([(RESOLVED_QUERY_KEY.to_string(), "up".to_string())])
    );
}
