//! The InfluxDB provider against a v2 query API test double (wiremock on 127.0.0.1) that also
//! plays the Kubernetes API server for the profile Secret. The double checks the request (method,
//! path, `org`, the `Token` authorization, the JSON body with the Flux query and dialect) and
//! answers with annotated CSV and InfluxDB's JSON errors; the tests check the observation and the
//! phase the metric's conditions give it.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::{ByteString, api::core::v1::Secret};
use rollouts_api::{AnalysisRun, Metric};
use rollouts_expr::{Outcome, ResultValue, evaluate_conditions};
use rollouts_metric_influxdb::{InfluxdbProvider, NAME};
use rollouts_plugin::{FloatResult, MeasureRequest, MetricProvider, Observation, Registry};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_json, header, method, path, query_param},
};

const CONTROLLER_NS: &str = "argo-rollouts";
const FLUX: &str = "from(bucket: \"app\") |> range(start: -5m) |> filter(fn: (r) => r._measurement == \"errors\") |> mean()";

const ONE_TABLE: &str = "#datatype,string,long,dateTime:RFC3339,double,string\r\n\
#group,false,false,false,false,true\r\n\
#default,_result,,,,\r\n\
,result,table,_time,_value,service\r\n\
,,0,2026-08-17T10:00:00Z,0.004,shop\r\n\
,,0,2026-08-17T10:01:00Z,0.0125,shop\r\n\r\n";

fn metric(influxdb: Value) -> Metric {
    serde_json::from_value(json!({"name": "error-rate", "provider": {"influxdb": influxdb}}))
        .expect("metric decodes")
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

/// A double with the `influxdb` profile pointing at itself (org `shop`, token `influx-token`).
async fn double() -> MockServer {
    let server = MockServer::start().await;
    let address = server.uri();
    serve_secret(
        &server,
        "influxdb",
        &[
            ("authToken", "influx-token"),
            ("org", "shop"),
            ("address", &address),
        ],
    )
    .await;
    server
}

fn provider(server: &MockServer) -> InfluxdbProvider {
    InfluxdbProvider::new(Some(kube_client(server)), CONTROLLER_NS)
}

/// The query request the provider must send for `flux`.
fn flux_request(flux: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/api/v2/query"))
        .and(query_param("org", "shop"))
        .and(header("Authorization", "Token influx-token"))
        .and(header("Content-Type", "application/json"))
        .and(body_json(json!({
            "query": flux,
            "type": "flux",
            "dialect": {"annotations": ["datatype", "group", "default"], "delimiter": ",", "header": true}
        })))
}

fn csv(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.to_string(), "text/csv; charset=utf-8")
}

async fn measure(provider: &InfluxdbProvider, metric: &Metric) -> Observation {
    provider
        .run(MeasureRequest {
            run: &AnalysisRun::default(),
            metric,
            now: Timestamp::now(),
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
async fn the_value_column_is_the_result() {
    let server = double().await;
    flux_request(FLUX)
        .respond_with(csv(ONE_TABLE))
        .expect(3)
        .mount(&server)
        .await;
    let provider = provider(&server);
    let m = metric(json!({"query": FLUX}));
    for (success, failure, expected) in [
        (Some("result[0] < 0.01"), None, Outcome::Successful),
        (Some("all(result, {# < 0.01})"), None, Outcome::Failed),
        (
            Some("result[1] < 0.01"),
            Some("result[1] > 0.05"),
            Outcome::Inconclusive,
        ),
    ] {
        let Observation::Float {
            result: FloatResult::Vector(values),
            value,
            ..
        } = measure(&provider, &m).await
        else {
            panic!("expected a float list")
        };
        assert_eq!(value, "[0.004 0.0125]");
        assert_eq!(values, vec![0.004, 0.0125]);
        assert_eq!(
            evaluate_conditions(success, failure, &ResultValue::from(values)),
            expected
        );
    }
    assert!(provider.metadata(&m).is_empty());
}

#[tokio::test]
async fn tables_of_other_types_and_a_named_profile() {
    let server = MockServer::start().await;
    serve_secret(
        &server,
        "influxdb-shop",
        &[
            ("authToken", "influx-token"),
            ("org", "shop"),
            ("address", &format!("{}/", server.uri())),
        ],
    )
    .await;
    let body = "#datatype,string,long,long,string\n\
#group,false,false,false,true\n\
#default,_result,,,\n\
,result,table,_value,host\n\
,,0,12,a\n\
,,0,,a\n\
\n\
#datatype,string,long,boolean,string\n\
#group,false,false,false,true\n\
#default,_result,,,\n\
,result,table,_value,host\n\
,,1,true,b\n";
    flux_request("count()")
        .respond_with(csv(body))
        .expect(1)
        .mount(&server)
        .await;
    let o = measure(
        &provider(&server),
        &metric(json!({"profile": "influxdb-shop", "query": "count()"})),
    )
    .await;
    let Observation::Value { result, value, .. } = o else {
        panic!("expected a list, got {o:?}")
    };
    assert_eq!(value, "[12 <nil> true]");
    assert_eq!(result, json!([12, null, true]));
    let result = ResultValue::from(&result);
    assert_eq!(
        evaluate_conditions(Some("result[0] > 10 && result[2]"), None, &result),
        Outcome::Successful
    );
    assert_eq!(
        evaluate_conditions(Some("isNil(result[1])"), None, &result),
        Outcome::Failed
    );
}

#[tokio::test]
async fn no_rows_errors_and_broken_csv_end_in_no_results() {
    let server = double().await;
    let header_only = "#datatype,string,long,double\n#group,false,false,false\n#default,_result,,\n,result,table,_value\n";
    let error_table = "#datatype,string,string\n#group,true,true\n#default,,\n,error,reference\n,\"compilation failed: undefined identifier \"\"fromm\"\"\",\n";
    let bad_first_cell = "#datatype,string,long,double\n#group,false,false,false\n#default,_result,,\n,result,table,_value\n,,0,fast\n,,0,1\n";
    let no_annotations = ",result,table,_value\n,,0,1\n";
    for (flux, body) in [
        ("empty", ""),
        ("header", header_only),
        ("error", error_table),
        ("bad", bad_first_cell),
        ("plain", no_annotations),
    ] {
        flux_request(flux)
            .respond_with(csv(body))
            .expect(1)
            .mount(&server)
            .await;
        let o = measure(&provider(&server), &metric(json!({"query": flux}))).await;
        assert_eq!(
            error_of(&o),
            "no results returned from flux query",
            "{flux}"
        );
    }
    // Rows before a problem count; the rest is dropped.
    flux_request("partial")
        .respond_with(csv("#datatype,string,long,double\n#group,false,false,false\n#default,_result,,\n,result,table,_value\n,,0,1.5\n,,0,\"oops\n"))
        .mount(&server)
        .await;
    let o = measure(&provider(&server), &metric(json!({"query": "partial"}))).await;
    let Observation::Float { value, .. } = o else {
        panic!("expected a float list, got {o:?}")
    };
    assert_eq!(value, "[1.5]");
}

#[tokio::test]
async fn http_errors_read_as_the_go_client_words_them() {
    let server = double().await;
    let json_error = |code: u16, body: Value| {
        ResponseTemplate::new(code)
            .insert_header("Content-Type", "application/json; charset=utf-8")
            .set_body_json(body)
    };
    let cases = [
        (
            "q401",
            json_error(
                401,
                json!({"code": "unauthorized", "message": "unauthorized access"}),
            ),
            "unauthorized: unauthorized access",
        ),
        (
            "q403",
            json_error(
                403,
                json!({"code": "forbidden", "message": "insufficient permissions for read:orgs/shop/buckets"}),
            ),
            "forbidden: insufficient permissions for read:orgs/shop/buckets",
        ),
        (
            "q400",
            json_error(
                400,
                json!({"code": "invalid", "message": "compilation failed: error at @1:1-1:6: undefined identifier fromm"}),
            ),
            "invalid: compilation failed: error at @1:1-1:6: undefined identifier fromm",
        ),
        (
            "q500",
            ResponseTemplate::new(500).set_body_string("internal error"),
            "500 Internal Server Error: internal error",
        ),
        (
            "q503",
            json_error(503, json!({})),
            "unavailable: service temporarily unavailable",
        ),
        (
            "q502",
            ResponseTemplate::new(502).set_body_raw("<html>bad gateway</html>", "application/json"),
            "invalid character '<' looking for beginning of value",
        ),
    ];
    for (flux, response, _) in &cases {
        flux_request(flux)
            .respond_with(response.clone())
            .expect(1)
            .mount(&server)
            .await;
    }
    let provider = provider(&server);
    for (flux, _, expected) in &cases {
        let o = measure(&provider, &metric(json!({"query": flux}))).await;
        assert_eq!(error_of(&o), *expected, "{flux}");
    }
}

#[tokio::test]
async fn a_slow_server_hits_the_deadline() {
    let server = double().await;
    flux_request("slow")
        .respond_with(csv(ONE_TABLE).set_delay(Duration::from_secs(3)))
        .expect(1)
        .mount(&server)
        .await;
    let provider = provider(&server).with_timeout(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let o = measure(&provider, &metric(json!({"query": "slow"}))).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        error_of(&o),
        format!(
            "Post \"{}/api/v2/query?org=shop\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            server.uri()
        )
    );
}

#[tokio::test]
async fn profile_problems_are_errors_before_any_query() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/namespaces/argo-rollouts/secrets/influxdb"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "secrets \"influxdb\" not found", "reason": "NotFound", "code": 404
        })))
        .mount(&server)
        .await;
    serve_secret(
        &server,
        "no-org",
        &[("authToken", "t"), ("address", "http://x")],
    )
    .await;
    serve_secret(
        &server,
        "bad-address",
        &[("authToken", "t"), ("org", "o"), ("address", "influx:8086")],
    )
    .await;
    // Nothing may reach the query API.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let provider = provider(&server);
    for (influxdb, expected) in [
        (json!({"query": FLUX}), r#"secrets "influxdb" not found"#),
        (
            json!({"query": FLUX, "profile": "no-org"}),
            "authToken, org, or address not found",
        ),
    ] {
        assert_eq!(
            error_of(&measure(&provider, &metric(influxdb)).await),
            expected
        );
    }
    let o = measure(
        &provider,
        &metric(json!({"query": FLUX, "profile": "bad-address"})),
    )
    .await;
    assert!(
        error_of(&o).starts_with("parse \"influx:8086/api/v2\": "),
        "{o:?}"
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
    assert_eq!(provider.name(), "influxdb");
}
