//! The ELBv2 client and target group verification against a local double of the ELBv2 Query API
//! (`support/elbv2_double.rs`): signed requests in the documented form, the documented XML
//! answers, paging, batching, and errors (load balancer not found, throttling, access denied).

#[path = "support/elbv2_double.rs"]
mod double;

use std::time::Duration;

use double::{Elbv2Double, Failure, REGION, Scenario, web_scenario, web_tg_arn};
use rollouts_api::{AlbStatus, AwsResourceRef, Rollout, WeightDestination};
use rollouts_plugin::EventKind;
use rollouts_router_alb::{
    AlbConfig, AwsConfig, AwsError, Elbv2Client,
    sigv4::Credentials,
    verify::{TargetGroupReport, verify_target_groups},
};
use serde_json::{Value, json};

const DNS: &str = "web-alb-1.us-west-2.elb.amazonaws.com";
const LB_ARN: &str =
    "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/web-alb/50dc6c495c0c9188";

fn client(double: &Elbv2Double, token: Option<&str>) -> Elbv2Client {
    Elbv2Client::new(AwsConfig {
        region: REGION.into(),
        endpoint: double.endpoint.clone(),
        credentials: Credentials {
            access_key_id: double::ACCESS_KEY_ID.into(),
            secret_access_key: double::SECRET_ACCESS_KEY.into(),
            session_token: token.map(String::from),
        },
        max_attempts: 3,
        backoff: Duration::from_millis(5),
        timeout: Duration::from_secs(10),
    })
    .unwrap()
}

fn config(ingresses: &[&str]) -> AlbConfig {
    let rollout: Rollout = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"canary": {
                "canaryService": "web-canary", "stableService": "web-stable",
                "trafficRouting": {"alb": {"ingresses": ingresses, "servicePort": 80}}
            }}
        }
    }))
    .unwrap();
    AlbConfig::from_rollout(&rollout, true, "").unwrap()
}

fn ingress(hosts: &[&str]) -> Value {
    json!({"status": {"loadBalancer": {"ingress":
        hosts.iter().map(|h| json!({"hostname": h})).collect::<Vec<_>>()}}})
}

fn dest(service: &str, weight: i32) -> WeightDestination {
    WeightDestination {
        weight,
        service_name: Some(service.into()),
        pod_template_hash: Some("exp".into()),
    }
}

fn events(report: &TargetGroupReport) -> Vec<String> {
    report
        .events
        .iter()
        .map(|e| {
            let kind = if e.kind == EventKind::Normal {
                "Normal"
            } else {
                "Warning"
            };
            format!("{kind} {}: {}", e.reason, e.message)
        })
        .collect()
}

async fn verify(
    double: &Elbv2Double,
    ingresses: &[(&str, Value)],
    weight: i32,
    additional: &[WeightDestination],
) -> TargetGroupReport {
    let names: Vec<&str> = ingresses.iter().map(|(n, _)| *n).collect();
    let list: Vec<(String, Value)> = ingresses
        .iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    verify_target_groups(
        &client(double, None),
        &config(&names),
        &list,
        weight,
        additional,
        (None, None),
    )
    .await
}

fn web_status() -> AlbStatus {
    AlbStatus {
        load_balancer: Some(AwsResourceRef {
            name: "web-alb".into(),
            arn: LB_ARN.into(),
            full_name: Some("web-alb/50dc6c495c0c9188".into()),
        }),
        canary_target_group: Some(AwsResourceRef {
            name: "k8s-shop-web-canary".into(),
            arn: web_tg_arn("web-canary", 1),
            full_name: Some(format!("k8s-shop-web-canary/{:016x}", 1)),
        }),
        stable_target_group: Some(AwsResourceRef {
            name: "k8s-shop-web-stable".into(),
            arn: web_tg_arn("web-stable", 2),
            full_name: Some(format!("k8s-shop-web-stable/{:016x}", 2)),
        }),
        ingress: Some("web".into()),
    }
}

#[tokio::test]
async fn weights_on_the_load_balancer_verify() {
    // 25 target groups in all: the tags are read in batches of 20.
    let double = Elbv2Double::start(web_scenario(20, &[], 23)).await;
    let report = verify(&double, &[("web", ingress(&[DNS]))], 20, &[]).await;
    assert_eq!(double.problems(), Vec::<String>::new());
    assert!(report.verified, "{report:?}");
    assert_eq!(report.error, None);
    assert_eq!(
        events(&report),
        [format!(
            "Normal TargetGroupVerified: Service web-canary (TargetGroup {}) verified: canary weight 20 set",
            web_tg_arn("web-canary", 1)
        )]
    );
    assert_eq!(report.alb, web_status());
    assert_eq!(report.albs, [web_status()]);
    assert_eq!(
        double.actions(),
        [
            "DescribeLoadBalancers",
            "DescribeLoadBalancers",
            "DescribeTargetGroups",
            "DescribeTags",
            "DescribeTags",
            "DescribeListeners",
            "DescribeRules"
        ]
    );
    let seen = double.seen();
    assert_eq!(
        seen[0].params.get("PageSize").map(String::as_str),
        Some("300")
    );
    assert_eq!(seen[0].params.get("Marker"), None);
    assert_eq!(
        seen[1].params.get("Marker").map(String::as_str),
        Some("page-1")
    );
    assert_eq!(
        seen[2].params.get("LoadBalancerArn").map(String::as_str),
        Some(LB_ARN)
    );
    assert_eq!(seen[3].params.len(), 2 + 20, "Action, Version and 20 ARNs");
    assert_eq!(seen[4].params.len(), 2 + 5);
    assert_eq!(
        seen[3].params.get("ResourceArns.member.1"),
        Some(&web_tg_arn("web-canary", 1))
    );
}

#[tokio::test]
async fn a_weight_not_yet_on_the_load_balancer_is_unverified() {
    let double = Elbv2Double::start(web_scenario(10, &[], 0)).await;
    let report = verify(&double, &[("web", ingress(&[DNS]))], 20, &[]).await;
    assert!(!report.verified);
    assert_eq!(report.error, None);
    let message = format!(
        "Service web-canary (TargetGroup {}) not verified: canary weight 20 not yet set (current: 10)",
        web_tg_arn("web-canary", 1)
    );
    assert_eq!(
        events(&report),
        [format!("Warning TargetGroupUnverified: {message}")]
    );
    assert_eq!(report.problems, [message]);
    // The status is recorded all the same.
    assert_eq!(report.albs, [web_status()]);
    // Once the load balancer catches up: verified.
    double.update(|s| double::set_rule_weight(s, 20));
    assert!(
        verify(&double, &[("web", ingress(&[DNS]))], 20, &[])
            .await
            .verified
    );
    assert_eq!(double.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn experiment_destinations_are_verified_too() {
    let double = Elbv2Double::start(web_scenario(10, &[("web-exp", 5)], 0)).await;
    let report = verify(
        &double,
        &[("web", ingress(&[DNS]))],
        10,
        &[dest("web-exp", 5)],
    )
    .await;
    assert!(report.verified, "{report:?}");
    assert_eq!(events(&report).len(), 2);
    assert!(events(&report)[1].starts_with("Normal TargetGroupVerified: Service web-exp ("));
    let report = verify(
        &double,
        &[("web", ingress(&[DNS]))],
        10,
        &[dest("web-exp", 15)],
    )
    .await;
    assert!(!report.verified);
    assert!(
        report.problems[0].contains("canary weight 15 not yet set (current: 5)"),
        "{:?}",
        report.problems
    );
    // A destination the load balancer has no target group for.
    let report = verify(
        &double,
        &[("web", ingress(&[DNS]))],
        10,
        &[dest("web-gone", 5)],
    )
    .await;
    assert!(!report.verified);
    assert_eq!(
        report.problems,
        [
            "load balancer web-alb has no weighted target group tagged ingress.k8s.aws/resource=shop/web-web-gone:80"
        ]
    );
    assert_eq!(double.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn a_missing_load_balancer_or_hostname_is_not_verified() {
    let double = Elbv2Double::start(web_scenario(20, &[], 0)).await;
    let report = verify(
        &double,
        &[("web", ingress(&["gone.elb.amazonaws.com"]))],
        20,
        &[],
    )
    .await;
    assert!(!report.verified);
    assert_eq!(report.error, None);
    assert_eq!(
        events(&report),
        ["Warning LoadBalancerNotFound: Failed to find load balancer: gone.elb.amazonaws.com"]
    );
    // Every page was searched.
    assert_eq!(
        double.actions(),
        ["DescribeLoadBalancers", "DescribeLoadBalancers"]
    );
    double.clear();
    // No load balancer allocated yet: nothing to ask AWS.
    let report = verify(&double, &[("web", ingress(&[]))], 20, &[]).await;
    assert!(!report.verified);
    assert_eq!(
        report.problems,
        ["Ingress `web` has no load balancer hostname in status.loadBalancer yet"]
    );
    assert_eq!(double.actions(), Vec::<String>::new());
    assert_eq!(report.albs, [AlbStatus::default()]);
}

#[tokio::test]
async fn throttling_is_retried_and_access_denied_is_an_error() {
    let mut scenario = web_scenario(20, &[], 0);
    scenario.failures.push(Failure {
        action: "DescribeRules".into(),
        status: 400,
        code: "Throttling".into(),
        message: "Rate exceeded".into(),
        times: 2,
    });
    let double = Elbv2Double::start(scenario).await;
    let report = verify(&double, &[("web", ingress(&[DNS]))], 20, &[]).await;
    assert!(
        report.verified,
        "two throttled attempts, the third answers: {report:?}"
    );
    assert_eq!(
        double
            .actions()
            .iter()
            .filter(|a| *a == "DescribeRules")
            .count(),
        3
    );

    // Throttled every time: an error after 3 attempts.
    double.update(|s| s.failures[0].times = 10);
    double.clear();
    let report = verify(&double, &[("web", ingress(&[DNS]))], 20, &[]).await;
    assert!(!report.verified);
    let error = report.error.clone().expect("an error");
    assert_eq!(error.code(), Some("Throttling"));
    assert_eq!(
        error.to_string(),
        "DescribeRules: Throttling: Rate exceeded (HTTP 400, request id double-error-1)"
    );
    assert_eq!(
        double
            .actions()
            .iter()
            .filter(|a| *a == "DescribeRules")
            .count(),
        3
    );
    assert_eq!(
        events(&report),
        [
            "Warning TargetGroupVerifyError: Failed to verify Service web-canary (TargetGroup unknown): \
          DescribeRules: Throttling: Rate exceeded (HTTP 400, request id double-error-1)"
        ]
    );

    // Access denied: not retried.
    let mut scenario = web_scenario(20, &[], 0);
    scenario.failures.push(Failure {
        action: "DescribeLoadBalancers".into(),
        status: 403,
        code: "AccessDenied".into(),
        message: "User: arn:aws:iam::123456789012:user/rollouts is not authorized to perform: elasticloadbalancing:DescribeLoadBalancers".into(),
        times: 1,
    });
    let double = Elbv2Double::start(scenario).await;
    let report = verify(&double, &[("web", ingress(&[DNS]))], 20, &[]).await;
    let error = report.error.expect("an error");
    assert!(matches!(&error, AwsError::Api { status: 403, code, .. } if code == "AccessDenied"));
    assert!(!error.retryable());
    assert_eq!(double.actions(), ["DescribeLoadBalancers"]);
    assert_eq!(double.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn load_balancer_not_found_errors_and_refused_connections() {
    let mut scenario = web_scenario(20, &[], 0);
    scenario.failures.push(Failure {
        action: "DescribeTargetGroups".into(),
        status: 400,
        code: "LoadBalancerNotFound".into(),
        message: "One or more load balancers not found".into(),
        times: 1,
    });
    let double = Elbv2Double::start(scenario).await;
    let report = verify(&double, &[("web", ingress(&[DNS]))], 20, &[]).await;
    assert_eq!(
        report.error.map(|e| e.to_string()),
        Some(
            "DescribeTargetGroups: LoadBalancerNotFound: One or more load balancers not found \
             (HTTP 400, request id double-error-1)"
                .to_string()
        )
    );
    // The load balancer was found before the error: its status is kept.
    assert_eq!(report.albs[0].load_balancer, web_status().load_balancer);

    // A server that is not ELBv2 at all.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut cfg = client(&double, None).config().clone();
    cfg.endpoint = format!("http://127.0.0.1:{port}");
    cfg.max_attempts = 2;
    let refused = Elbv2Client::new(cfg).unwrap();
    let err = refused.describe_load_balancers(None).await.unwrap_err();
    assert!(matches!(err, AwsError::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains("connection refused"), "{err}");
}

#[tokio::test]
async fn several_ingresses_and_hostnames() {
    let double = Elbv2Double::start(web_scenario(20, &[], 0)).await;
    // The second Ingress's target groups are tagged for `web`, not `web-internal`: its canary
    // target group is not found, so the whole is not verified (Argo counts verified groups
    // across Ingresses; here each Ingress must verify).
    let report = verify(
        &double,
        &[("web", ingress(&[DNS])), ("web-internal", ingress(&[DNS]))],
        20,
        &[],
    )
    .await;
    assert!(!report.verified);
    assert_eq!(
        report.problems,
        [
            "load balancer web-alb has no weighted target group tagged ingress.k8s.aws/resource=shop/web-internal-web-canary:80"
        ]
    );
    assert_eq!(report.albs.len(), 2);
    assert_eq!(report.albs[0], web_status());
    assert_eq!(report.albs[1].ingress.as_deref(), Some("web-internal"));
    assert_eq!(report.albs[1].canary_target_group, None);
    // status.alb holds the last Ingress with a load balancer.
    assert_eq!(report.alb.ingress.as_deref(), Some("web-internal"));
}

#[tokio::test]
async fn session_tokens_are_sent_and_signed() {
    let mut scenario: Scenario = web_scenario(20, &[], 0);
    scenario.session_token = Some("FQoGZXIvYXdzE//token+with/slashes==".into());
    let double = Elbv2Double::start(scenario).await;
    let client = client(&double, Some("FQoGZXIvYXdzE//token+with/slashes=="));
    let lb = client.find_load_balancer_by_dns_name(DNS).await.unwrap();
    assert_eq!(lb.map(|l| l.name), Some("web-alb".to_string()));
    assert_eq!(double.problems(), Vec::<String>::new());
    // A client with the wrong secret is refused by the double's signature check.
    let mut cfg = client.config().clone();
    cfg.credentials.secret_access_key = "wrong".into();
    let err = Elbv2Client::new(cfg)
        .unwrap()
        .describe_listeners(LB_ARN)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"));
    assert!(
        double.problems()[0].starts_with("SignatureDoesNotMatch"),
        "{:?}",
        double.problems()
    );
}

#[tokio::test]
async fn target_health_reads_ids_ports_and_states() {
    let mut scenario = web_scenario(20, &[], 0);
    scenario.targets.insert(
        web_tg_arn("web-stable", 2),
        vec![
            ("10.0.1.17".into(), 8080, "healthy".into()),
            ("10.0.2.4".into(), 8080, "initial".into()),
        ],
    );
    let double = Elbv2Double::start(scenario).await;
    let health = client(&double, None)
        .describe_target_health(&web_tg_arn("web-stable", 2))
        .await
        .unwrap();
    let got: Vec<(String, Option<i32>, String)> = health
        .into_iter()
        .map(|t| (t.id, t.port, t.state))
        .collect();
    assert_eq!(
        got,
        [
            ("10.0.1.17".to_string(), Some(8080), "healthy".to_string()),
            ("10.0.2.4".to_string(), Some(8080), "initial".to_string())
        ]
    );
    let seen = double.seen();
    assert_eq!(seen[0].action, "DescribeTargetHealth");
    assert_eq!(
        seen[0].params.get("TargetGroupArn"),
        Some(&web_tg_arn("web-stable", 2))
    );
    assert_eq!(double.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn answers_that_are_not_the_expected_xml_are_decode_errors() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A server that answers 200 with `body` to every request, then closes.
    async fn serve(body: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 8192];
                let _ = stream.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        endpoint
    }
    let double = Elbv2Double::start(Scenario::default()).await;
    for (body, want) in [
        ("not xml at all", "DescribeListeners: unreadable response: "),
        (
            "<SomethingElse><Result/></SomethingElse>",
            "DescribeListeners: unreadable response: no DescribeListenersResult element in <SomethingElse>",
        ),
    ] {
        let mut cfg = client(&double, None).config().clone();
        cfg.endpoint = serve(body).await;
        let err = Elbv2Client::new(cfg)
            .unwrap()
            .describe_listeners(LB_ARN)
            .await
            .unwrap_err();
        assert!(matches!(err, AwsError::Decode { .. }), "{err:?}");
        assert!(err.to_string().starts_with(want), "{err}");
    }
}
