//! The `alb` router against the real API server: the annotations of users' Ingresses patched and
//! verified as the controller would drive them through a canary's steps (two Ingresses, an
//! experiment, a header route, tampering, an abort), what users own left alone, the error
//! cases, target group verification against a local ELBv2 double, and a controller-driven canary.
//! No AWS Load Balancer Controller is needed: the router only writes annotations.

#[path = "../../../crates/rollouts-router-alb/tests/support/elbv2_double.rs"]
mod elbv2_double;

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use e2e::{Test, TestContext};
use futures::future::BoxFuture;
use kube::api::{DynamicObject, Patch, PatchParams};
use rollouts_api::{HeaderRoutingMatch, Rollout, SetHeaderRoute, StringMatch, WeightDestination};
use rollouts_plugin::{PluginError, TrafficRouter, WeightVerification};
use rollouts_router_alb::{AlbRouter, AwsConfig, Elbv2Client, sigv4::Credentials};
use serde_json::{Value, json};

use crate::router_support::{self as support, expect_json};

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(annotations_follow_the_steps_on_two_ingresses),
        e2e::test!(missing_ingress_missing_root_service_and_prefix_matches_are_errors),
        e2e::test!(target_groups_are_verified_through_the_elbv2_api),
        e2e::test!(controller_walks_a_canary_through_the_alb_ingress),
        e2e::test!(controller_walks_a_canary_through_istio_and_alb_together),
    ]
}

const ACTION: &str = "alb.ingress.kubernetes.io/actions.storefront-root";
const MANAGED: &str = "rollouts.argoproj.io/managed-alb-annotations";

fn ingresses(ctx: &TestContext) -> kube::Api<DynamicObject> {
    support::api(ctx, "networking.k8s.io", "v1", "Ingress", "ingresses")
}

fn path(p: &str, service: &str) -> Value {
    json!({"path": p, "pathType": "Prefix",
           "backend": {"service": {"name": service, "port": {"name": "use-annotation"}}}})
}

fn route_path(route: &str) -> Value {
    json!({"path": "/*", "pathType": "ImplementationSpecific",
           "backend": {"service": {"name": route, "port": {"name": "use-annotation"}}}})
}

/// A user's ALB Ingress: its own annotations, labels, TLS and a default backend.
fn user_ingress(name: &str, host: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {
            "name": name,
            "labels": {"team": "storefront"},
            "annotations": {
                "alb.ingress.kubernetes.io/scheme": "internet-facing",
                "alb.ingress.kubernetes.io/target-type": "ip"
            }
        },
        "spec": {
            "ingressClassName": "alb",
            "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}},
            "tls": [{"hosts": [host]}],
            "rules": [{"host": host, "http": {"paths": [
                path("/", "storefront-root"), path("/static", "cdn")
            ]}}]
        }
    })
}

async fn rollout(ctx: &TestContext, alb: Value) -> Result<Rollout> {
    support::stored_rollout(
        ctx,
        "storefront",
        json!({
            "canaryService": "storefront-canary",
            "stableService": "storefront-stable",
            "trafficRouting": {"managedRoutes": [{"name": "beta-testers"}], "alb": alb},
            "steps": [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
        }),
    )
    .await
}

fn action(canary: i32, experiment: Option<i32>) -> String {
    let (exp, stable) = match experiment {
        Some(w) => (
            format!(r#"{{"ServiceName":"storefront-exp","ServicePort":"80","Weight":{w}}},"#),
            100 - canary - w,
        ),
        None => (String::new(), 100 - canary),
    };
    format!(
        r#"{{"Type":"forward","ForwardConfig":{{"TargetGroups":[{{"ServiceName":"storefront-canary","ServicePort":"80","Weight":{canary}}},{exp}{{"ServiceName":"storefront-stable","ServicePort":"80","Weight":{stable}}}],"TargetGroupStickinessConfig":{{"Enabled":true,"DurationSeconds":300}}}}}}"#
    )
}

fn experiment(weight: i32) -> WeightDestination {
    WeightDestination {
        weight,
        service_name: Some("storefront-exp".into()),
        pod_template_hash: Some("exp123".into()),
    }
}

async fn verified(router: &AlbRouter, weight: i32, additional: &[WeightDestination]) -> Result<()> {
    let got = router.verify_weight(weight, additional).await?;
    ensure!(
        got == WeightVerification::Verified,
        "weight {weight} should verify, got {got:?}"
    );
    Ok(())
}

fn beta_route(matches: bool) -> SetHeaderRoute {
    SetHeaderRoute {
        name: Some("beta-testers".into()),
        r#match: matches.then(|| {
            vec![HeaderRoutingMatch {
                header_name: "X-Beta".into(),
                header_value: StringMatch {
                    exact: Some("yes".into()),
                    ..Default::default()
                },
            }]
        }),
    }
}

async fn annotations_follow_the_steps_on_two_ingresses(ctx: TestContext) -> Result<()> {
    let api = ingresses(&ctx);
    support::create(&api, user_ingress("public", "shop.example.com")).await?;
    support::create(&api, user_ingress("internal", "shop.internal")).await?;
    let ro = rollout(
        &ctx,
        json!({
            "ingresses": ["public", "internal"], "servicePort": 80,
            "rootService": "storefront-root",
            "stickinessConfig": {"enabled": true, "durationSeconds": 300}
        }),
    )
    .await?;
    let events = support::recorder();
    let router = AlbRouter::new(support::init(&ctx, &ro, &events))?;
    ensure!(
        router.capabilities().header_routes,
        "ALB supports header routes"
    );
    let missing = router.verify_weight(0, &[]).await?;
    ensure!(
        missing
            == WeightVerification::Mismatch {
                observed: None,
                detail: format!("Ingress `public` has no annotation {ACTION}")
            },
        "{missing:?}"
    );
    ensure!(
        router.router_status() == Some(json!({"alb": null, "albs": null})),
        "without target group verification status.alb(s) are cleared: {:?}",
        router.router_status()
    );

    router.update_hash("c1", "s1", &[]).await?;
    router.set_weight(0, &[]).await?;
    ensure!(
        support::drained(&events)
            == [
                "PatchingALBIngress: Updating Ingress `public` to desiredWeight '0'",
                "PatchingALBIngress: Updating Ingress `internal` to desiredWeight '0'",
            ],
        "first patch events"
    );
    let public = support::get(&api, "public").await?;
    expect_json(
        "public annotations after the first weight",
        &public["metadata"]["annotations"],
        &json!({
            "alb.ingress.kubernetes.io/scheme": "internet-facing",
            "alb.ingress.kubernetes.io/target-type": "ip",
            ACTION: action(0, None),
            MANAGED: r#"{"storefront":["alb.ingress.kubernetes.io/actions.storefront-root"]}"#
        }),
    )?;
    verified(&router, 0, &[]).await?;

    // The user edits their Ingress meanwhile: another annotation, a label, a rule.
    support::merge_patch(
        &api,
        "public",
        json!({"metadata": {
            "labels": {"owner": "web"},
            "annotations": {"alb.ingress.kubernetes.io/healthcheck-path": "/healthz"}
        }}),
    )
    .await?;

    for (weight, exp) in [(10, None), (20, Some(5)), (50, None), (100, None)] {
        let additional: Vec<WeightDestination> = exp.map(experiment).into_iter().collect();
        router.update_hash("c1", "s1", &additional).await?;
        router.set_weight(weight, &additional).await?;
        for name in ["public", "internal"] {
            let ing = support::get(&api, name).await?;
            ensure!(
                ing["metadata"]["annotations"][ACTION] == action(weight, exp),
                "{name} at {weight}: {}",
                ing["metadata"]["annotations"][ACTION]
            );
        }
        verified(&router, weight, &additional).await?;
        ensure!(
            support::drained(&events)
                == [
                    format!(
                        "PatchingALBIngress: Updating Ingress `public` to desiredWeight '{weight}'"
                    ),
                    format!(
                        "PatchingALBIngress: Updating Ingress `internal` to desiredWeight '{weight}'"
                    ),
                ],
            "patch events at {weight}"
        );
    }
    // The experiment ended but its weight is still asked for: not verified.
    let stale = router.verify_weight(100, &[experiment(5)]).await?;
    ensure!(
        matches!(&stale, WeightVerification::Mismatch { detail, .. }
            if detail.ends_with("has no target group for `storefront-exp`")),
        "{stale:?}"
    );

    // Tampering: an action edited behind the router's back is seen, and repaired.
    support::merge_patch(
        &api,
        "internal",
        json!({"metadata": {"annotations": {ACTION: action(7, None)}}}),
    )
    .await?;
    let tampered = router.verify_weight(100, &[]).await?;
    ensure!(
        tampered
            == WeightVerification::Mismatch {
                observed: Some(7),
                detail: format!(
                    "Ingress `internal` annotation {ACTION} sends weight 7 to `storefront-canary`, want 100"
                )
            },
        "{tampered:?}"
    );
    router.set_weight(100, &[]).await?;
    verified(&router, 100, &[]).await?;
    support::drained(&events);

    // A header route: its action and conditions, and a /* path on top of every rule.
    router.set_header_route(&beta_route(true)).await?;
    let public = support::get(&api, "public").await?;
    let annotations = &public["metadata"]["annotations"];
    expect_json(
        "header route annotations",
        &json!([
            annotations["alb.ingress.kubernetes.io/actions.beta-testers"],
            annotations["alb.ingress.kubernetes.io/conditions.beta-testers"],
            annotations[MANAGED]
        ]),
        &json!([
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"storefront-canary","ServicePort":"80","Weight":100}],"TargetGroupStickinessConfig":{"Enabled":true,"DurationSeconds":300}}}"#,
            r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Beta","values":["yes"]}}]"#,
            r#"{"storefront":["alb.ingress.kubernetes.io/actions.storefront-root","alb.ingress.kubernetes.io/actions.beta-testers","alb.ingress.kubernetes.io/conditions.beta-testers"]}"#
        ]),
    )?;
    expect_json(
        "header route paths",
        &public["spec"]["rules"][0]["http"]["paths"],
        &json!([
            route_path("beta-testers"),
            path("/", "storefront-root"),
            path("/static", "cdn")
        ]),
    )?;
    ensure!(
        support::drained(&events)
            == [
                "PatchingALBIngress: Updating Ingress `public` to headerRoute 'beta-testers'",
                "PatchingALBIngress: Updating Ingress `internal` to headerRoute 'beta-testers'",
            ],
        "header route events"
    );
    // The same step again writes nothing.
    let version = public["metadata"]["resourceVersion"].clone();
    router.set_header_route(&beta_route(true)).await?;
    ensure!(
        support::drained(&events).is_empty(),
        "no-op header route emitted events"
    );
    ensure!(
        support::get(&api, "public").await?["metadata"]["resourceVersion"] == version,
        "a no-op header route was written"
    );

    // Abort: managed routes removed, weight back to 0.
    router.remove_managed_routes().await?;
    router.set_weight(0, &[]).await?;
    verified(&router, 0, &[]).await?;
    ensure!(
        support::drained(&events)
            == [
                "PatchingALBIngress: Updating Ingress `public` removing managed routes",
                "PatchingALBIngress: Updating Ingress `internal` removing managed routes",
                "PatchingALBIngress: Updating Ingress `public` to desiredWeight '0'",
                "PatchingALBIngress: Updating Ingress `internal` to desiredWeight '0'",
            ],
        "abort events"
    );
    let public = support::get(&api, "public").await?;
    let user = user_ingress("public", "shop.example.com");
    expect_json(
        "user's spec after the abort",
        &public["spec"],
        &user["spec"],
    )?;
    expect_json(
        "user's metadata after the abort",
        &json!({
            "labels": public["metadata"]["labels"],
            "annotations": public["metadata"]["annotations"]
        }),
        &json!({
            "labels": {"team": "storefront", "owner": "web"},
            "annotations": {
                "alb.ingress.kubernetes.io/scheme": "internet-facing",
                "alb.ingress.kubernetes.io/target-type": "ip",
                "alb.ingress.kubernetes.io/healthcheck-path": "/healthz",
                ACTION: action(0, None),
                MANAGED: r#"{"storefront":["alb.ingress.kubernetes.io/actions.storefront-root"]}"#
            }
        }),
    )?;
    // Nothing changes, nothing is written.
    router.set_weight(0, &[]).await?;
    router.remove_managed_routes().await?;
    ensure!(
        support::drained(&events).is_empty(),
        "an unchanged weight emitted events"
    );
    ensure!(
        support::get(&api, "public").await?["metadata"]["resourceVersion"]
            == public["metadata"]["resourceVersion"],
        "an unchanged weight was written"
    );
    Ok(())
}

async fn missing_ingress_missing_root_service_and_prefix_matches_are_errors(
    ctx: TestContext,
) -> Result<()> {
    let api = ingresses(&ctx);
    let mut other = user_ingress("other", "other.example.com");
    other["spec"]["rules"][0]["http"]["paths"] = json!([path("/", "something-else")]);
    support::create(&api, other).await?;
    let events = support::recorder();

    let ro = rollout(
        &ctx,
        json!({"ingress": "missing", "servicePort": 80, "rootService": "storefront-root"}),
    )
    .await?;
    let router = AlbRouter::new(support::init(&ctx, &ro, &events))?;
    let err = router.set_weight(10, &[]).await.expect_err("missing");
    ensure!(
        err.to_string() == "alb: ingress `missing` not found",
        "{err}"
    );

    let mut ro = ro;
    set_ingress(&mut ro, "other")?;
    let router = AlbRouter::new(support::init(&ctx, &ro, &events))?;
    let err = router.set_weight(10, &[]).await.expect_err("no rule");
    ensure!(
        err.to_string() == "alb: ingress `other` does not have service `storefront-root` in rules",
        "{err}"
    );
    let mut prefix = beta_route(true);
    prefix.r#match.as_mut().context("match")?[0].header_value = StringMatch {
        prefix: Some("y".into()),
        ..Default::default()
    };
    let err = router.set_header_route(&prefix).await.expect_err("prefix");
    ensure!(
        err.to_string()
            == "alb: setHeaderRoute `beta-testers`: match[0].headerValue: ALB supports only `exact` header values",
        "{err}"
    );
    let untouched = support::get(&api, "other").await?;
    ensure!(
        untouched["metadata"]["annotations"]
            .as_object()
            .map(|a| a.len())
            == Some(2),
        "the Ingress was changed: {}",
        untouched["metadata"]
    );
    ensure!(support::drained(&events).is_empty(), "no events expected");

    // A stickiness duration out of range fails when the router is built.
    let mut sticky = ro.clone();
    alb_block(&mut sticky)?.stickiness_config = Some(rollouts_api::StickinessConfig {
        enabled: true,
        duration_seconds: 0,
    });
    let Err(err) = AlbRouter::new(support::init(&ctx, &sticky, &events)) else {
        bail!("a stickiness of 0 s was accepted");
    };
    ensure!(
        matches!(err, PluginError::Config { plugin: "alb", .. }),
        "{err}"
    );
    Ok(())
}

fn alb_block(ro: &mut Rollout) -> Result<&mut rollouts_api::AlbTrafficRouting> {
    ro.spec
        .strategy
        .as_mut()
        .and_then(|s| s.canary.as_mut())
        .and_then(|c| c.traffic_routing.as_mut())
        .and_then(|t| t.alb.as_mut())
        .context("alb block")
}

fn set_ingress(ro: &mut Rollout, name: &str) -> Result<()> {
    alb_block(ro)?.ingress = Some(name.to_string());
    Ok(())
}

async fn target_groups_are_verified_through_the_elbv2_api(ctx: TestContext) -> Result<()> {
    const DNS: &str = "web-alb-1.us-west-2.elb.amazonaws.com";
    let api = ingresses(&ctx);
    // The double's load balancer serves `web` in namespace `shop`; ours is the test namespace,
    // so the scenario's tags are rewritten to it.
    let mut scenario = elbv2_double::web_scenario(20, &[], 0);
    for groups in scenario.target_groups.values_mut() {
        for tg in groups {
            for (key, value) in &mut tg.tags {
                if key == "ingress.k8s.aws/resource" {
                    *value = value.replace(
                        "shop/web-web-",
                        &format!("{}/web-storefront-", ctx.namespace),
                    );
                }
            }
        }
    }
    let double = elbv2_double::Elbv2Double::start(scenario).await;
    let aws = Elbv2Client::new(AwsConfig {
        region: elbv2_double::REGION.into(),
        endpoint: double.endpoint.clone(),
        credentials: Credentials {
            access_key_id: elbv2_double::ACCESS_KEY_ID.into(),
            secret_access_key: elbv2_double::SECRET_ACCESS_KEY.into(),
            session_token: None,
        },
        max_attempts: 2,
        backoff: Duration::from_millis(5),
        timeout: Duration::from_secs(10),
    })?;
    let mut ing = user_ingress("web", "shop.example.com");
    ing["spec"]["rules"][0]["http"]["paths"] = json!([path("/", "storefront-stable")]);
    support::create(&api, ing).await?;
    // What the AWS Load Balancer Controller would report once the load balancer exists.
    api.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"hostname": DNS}]}}})),
    )
    .await
    .context("setting the Ingress's load balancer status")?;
    let ro = support::stored_rollout(
        &ctx,
        "storefront",
        json!({
            "canaryService": "storefront-canary", "stableService": "storefront-stable",
            "trafficRouting": {"alb": {"ingress": "web", "servicePort": 80}},
            "steps": [{"setWeight": 20}, {"pause": {}}]
        }),
    )
    .await?;
    let events = support::recorder();
    let router = AlbRouter::with_settings(
        support::init(&ctx, &ro, &events),
        true,
        "ingress.k8s.aws/resource",
        Some(aws),
    )?;
    router.set_weight(20, &[]).await?;
    support::drained(&events);
    // status.alb is empty: AWS is asked even outside a setWeight step of an update.
    verified(&router, 20, &[]).await?;
    let canary_arn = elbv2_double::web_tg_arn("web-canary", 1);
    ensure!(
        support::drained(&events)
            == [format!(
                "TargetGroupVerified: Service storefront-canary (TargetGroup {canary_arn}) verified: canary weight 20 set"
            )],
        "verification events"
    );
    let status = router.router_status().context("a status")?;
    let lb = json!({
        "name": "web-alb",
        "arn": "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/web-alb/50dc6c495c0c9188",
        "fullName": "web-alb/50dc6c495c0c9188"
    });
    expect_json(
        "status.albs[0]",
        &status["albs"][0],
        &json!({
            "ingress": "web",
            "loadBalancer": lb,
            "canaryTargetGroup": {"name": "k8s-shop-web-canary", "arn": canary_arn,
                                  "fullName": format!("k8s-shop-web-canary/{:016x}", 1)},
            "stableTargetGroup": {"name": "k8s-shop-web-stable",
                                  "arn": elbv2_double::web_tg_arn("web-stable", 2),
                                  "fullName": format!("k8s-shop-web-stable/{:016x}", 2)}
        }),
    )?;
    ensure!(
        status["alb"] == status["albs"][0],
        "status.alb: {}",
        status["alb"]
    );
    ensure!(double.problems().is_empty(), "{:?}", double.problems());

    // The Ingress says 50, the load balancer still 20: not verified yet.
    router.set_weight(50, &[]).await?;
    let pending = router.verify_weight(50, &[]).await?;
    ensure!(
        matches!(&pending, WeightVerification::Mismatch { observed: Some(50), detail }
            if detail.contains("canary weight 50 not yet set (current: 20)")),
        "{pending:?}"
    );
    double.update(|s| elbv2_double::set_rule_weight(s, 50));
    verified(&router, 50, &[]).await?;

    // AWS refuses: an error, with Argo's event.
    double.update(|s| {
        s.failures.push(elbv2_double::Failure {
            action: "DescribeLoadBalancers".into(),
            status: 403,
            code: "AccessDenied".into(),
            message: "not authorized".into(),
            times: 1,
        })
    });
    support::drained(&events);
    let err = router
        .verify_weight(50, &[])
        .await
        .expect_err("access denied");
    ensure!(
        err.to_string()
            == "alb: verifying target groups: DescribeLoadBalancers: AccessDenied: not authorized \
                (HTTP 403, request id double-error-1)",
        "{err}"
    );
    ensure!(
        support::drained(&events)
            .iter()
            .any(|e| e
                .starts_with("TargetGroupVerifyError: Failed to verify Service storefront-canary")),
        "no TargetGroupVerifyError event"
    );
    Ok(())
}

/// The canary weight in `checkout`'s Ingress action.
fn checkout_weight(ctx: TestContext) -> BoxFuture<'static, Result<Option<i32>>> {
    Box::pin(async move {
        let ing = support::get(&ingresses(&ctx), "checkout").await?;
        let Some(text) =
            ing["metadata"]["annotations"]["alb.ingress.kubernetes.io/actions.checkout-stable"]
                .as_str()
        else {
            return Ok(None);
        };
        let action: Value = serde_json::from_str(text)?;
        let groups = action["ForwardConfig"]["TargetGroups"]
            .as_array()
            .context("TargetGroups")?;
        let weight = |service: &str| {
            groups
                .iter()
                .find(|g| g["ServiceName"] == service)
                .and_then(|g| g["Weight"].as_i64())
        };
        let (Some(canary), Some(stable)) = (weight("checkout-canary"), weight("checkout-stable"))
        else {
            bail!("unexpected action: {text}");
        };
        ensure!(canary + stable == 100, "weights do not add up: {text}");
        Ok(Some(i32::try_from(canary)?))
    })
}

/// An internal ALB Ingress `name` sending `<name>.example.com` to the Service `<name>-stable`.
pub(crate) fn stable_ingress(name: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "annotations": {"alb.ingress.kubernetes.io/scheme": "internal"}},
        "spec": {
            "ingressClassName": "alb",
            "rules": [{"host": format!("{name}.example.com"),
                       "http": {"paths": [path("/", &format!("{name}-stable"))]}}]
        }
    })
}

async fn controller_walks_a_canary_through_the_alb_ingress(ctx: TestContext) -> Result<()> {
    support::controller_walks_a_canary(
        &ctx,
        "checkout",
        json!({"alb": {"ingress": "checkout", "servicePort": 80}}),
        vec![stable_ingress("checkout")],
        checkout_weight,
    )
    .await?;
    // The user's annotation survived the whole rollout.
    let ing = support::get(&ingresses(&ctx), "checkout").await?;
    ensure!(
        ing["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"] == "internal",
        "{}",
        ing["metadata"]
    );
    ensure!(
        ing["metadata"]["annotations"]["alb.ingress.kubernetes.io/actions.checkout-stable"]
            == r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"checkout-canary","ServicePort":"80","Weight":0},{"ServiceName":"checkout-stable","ServicePort":"80","Weight":100}]}}"#,
        "{}",
        ing["metadata"]
    );
    Ok(())
}

/// The canary weight of `mesh`: read from both its ALB Ingress action and its Istio
/// VirtualService route, and only once they agree (the controller moves the routers one after
/// the other, Istio first).
fn mesh_weight(ctx: TestContext) -> BoxFuture<'static, Result<Option<i32>>> {
    Box::pin(async move {
        let ing = support::get(&ingresses(&ctx), "mesh").await?;
        let alb =
            match ing["metadata"]["annotations"]["alb.ingress.kubernetes.io/actions.mesh-root"]
                .as_str()
            {
                Some(text) => {
                    let action: Value = serde_json::from_str(text)?;
                    action["ForwardConfig"]["TargetGroups"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|g| g["ServiceName"] == "mesh-canary")
                        .and_then(|g| g["Weight"].as_i64())
                }
                None => None,
            };
        let vs = support::get(
            &support::api(
                &ctx,
                "networking.istio.io",
                "v1alpha3",
                "VirtualService",
                "virtualservices",
            ),
            "mesh",
        )
        .await?;
        let istio = vs["spec"]["http"][0]["route"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["destination"]["host"] == "mesh-canary")
            .and_then(|d| d["weight"].as_i64());
        match (alb, istio) {
            (Some(a), Some(i)) if a == i => Ok(Some(i32::try_from(a)?)),
            _ => Ok(None),
        }
    })
}

/// Argo's "multiple providers" with Istio and ALB: the ALB forwards to the root Service, the mesh
/// splits behind it; the controller moves both routers through the steps and verifies both.
async fn controller_walks_a_canary_through_istio_and_alb_together(ctx: TestContext) -> Result<()> {
    support::install_istio(&ctx).await?;
    rollouts_service(&ctx, "mesh-root").await?;
    let vs = json!({
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
        "metadata": {"name": "mesh"},
        "spec": {"hosts": ["mesh-root"], "http": [{"name": "primary", "route": [
            {"destination": {"host": "mesh-stable"}, "weight": 100},
            {"destination": {"host": "mesh-canary"}, "weight": 0}
        ]}]}
    });
    let ingress = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "mesh"},
        "spec": {
            "ingressClassName": "alb",
            "rules": [{"host": "mesh.example.com", "http": {"paths": [path("/", "mesh-root")]}}]
        }
    });
    support::controller_walks_a_canary(
        &ctx,
        "mesh",
        json!({
            "istio": {"virtualService": {"name": "mesh", "routes": ["primary"]}},
            "alb": {"ingress": "mesh", "servicePort": 80, "rootService": "mesh-root"}
        }),
        vec![vs, ingress],
        mesh_weight,
    )
    .await
}

/// The root Service the ALB forwards to (selecting every pod of the Rollout).
async fn rollouts_service(ctx: &TestContext, name: &str) -> Result<()> {
    e2e::rollouts::apply(ctx, e2e::rollouts::service(name, "mesh")).await?;
    Ok(())
}
