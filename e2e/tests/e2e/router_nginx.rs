//! The `nginx` router against the real API server: canary Ingresses created, patched and verified
//! as the controller would drive them through a canary's steps, for two stable Ingresses, with a
//! weight edited behind the router's back, an abort, and the error cases.

use anyhow::{Context, Result, bail, ensure};
use e2e::{Test, TestContext};
use futures::future::BoxFuture;
use kube::api::DynamicObject;
use rollouts_api::Rollout;
use rollouts_plugin::{TrafficRouter, WeightVerification};
use rollouts_router_nginx::NginxRouter;
use serde_json::{Value, json};

use crate::router_support::{self as support, expect_json};

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(canary_ingresses_follow_the_steps_for_two_stable_ingresses),
        e2e::test!(foreign_canary_ingress_missing_stable_ingress_and_no_rules_are_errors),
        e2e::test!(controller_walks_a_canary_through_the_canary_ingress),
    ]
}

fn ingresses(ctx: &TestContext) -> kube::Api<DynamicObject> {
    support::api(ctx, "networking.k8s.io", "v1", "Ingress", "ingresses")
}

fn path(p: &str, service: &str) -> Value {
    json!({"path": p, "pathType": "Prefix",
           "backend": {"service": {"name": service, "port": {"number": 80}}}})
}

fn public_ingress() -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "public", "annotations": {"nginx.ingress.kubernetes.io/ssl-redirect": "true"}},
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
            "rules": [
                {"host": "shop.example.com", "http": {"paths": [
                    path("/", "storefront-stable"), path("/static", "cdn")
                ]}},
                {"host": "api.example.com", "http": {"paths": [path("/", "api")]}}
            ]
        }
    })
}

fn internal_ingress() -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "internal", "annotations": {"kubernetes.io/ingress.class": "nginx-internal"}},
        "spec": {"rules": [{"host": "shop.internal", "http": {"paths": [path("/", "storefront-stable")]}}]}
    })
}

async fn rollout(ctx: &TestContext, routing: Value) -> Result<Rollout> {
    support::stored_rollout(
        ctx,
        "storefront",
        json!({
            "canaryService": "storefront-canary",
            "stableService": "storefront-stable",
            "trafficRouting": routing,
            "steps": [{"setWeight": 100}, {"pause": {}}, {"setWeight": 500}, {"pause": {}}]
        }),
    )
    .await
}

async fn verified(router: &NginxRouter, weight: i32) -> Result<()> {
    let got = router.verify_weight(weight, &[]).await?;
    ensure!(
        got == WeightVerification::Verified,
        "weight {weight} should verify, got {got:?}"
    );
    Ok(())
}

async fn canary_ingresses_follow_the_steps_for_two_stable_ingresses(
    ctx: TestContext,
) -> Result<()> {
    let api = ingresses(&ctx);
    support::create(&api, public_ingress()).await?;
    support::create(&api, internal_ingress()).await?;
    let ro = rollout(
        &ctx,
        json!({
            "maxTrafficWeight": 1000,
            "nginx": {
                "stableIngresses": ["public", "internal"],
                "additionalIngressAnnotations": {"canary-by-header": "x-canary"},
                "canaryIngressAnnotations": {"example.com/owner": "storefront-team"}
            }
        }),
    )
    .await?;
    let uid = ro.metadata.uid.clone().context("uid")?;
    let events = support::recorder();
    let router = NginxRouter::new(support::init(&ctx, &ro, &events))?;
    let stable_versions: Vec<Value> = vec![
        support::get(&api, "public").await?["metadata"]["resourceVersion"].clone(),
        support::get(&api, "internal").await?["metadata"]["resourceVersion"].clone(),
    ];

    let missing = router.verify_weight(0, &[]).await?;
    ensure!(
        missing
            == WeightVerification::Mismatch {
                observed: None,
                detail: "canary Ingress `storefront-public-canary` does not exist".into()
            },
        "{missing:?}"
    );
    router.update_hash("c1", "s1", &[]).await?;
    router.set_weight(0, &[]).await?;
    ensure!(
        support::drained(&events)
            == [
                "CreatingCanaryIngress: Creating canary ingress `storefront-public-canary` with weight `0`",
                "CreatingCanaryIngress: Creating canary ingress `storefront-internal-canary` with weight `0`",
            ],
        "creation events"
    );
    let public = support::get(&api, "storefront-public-canary").await?;
    expect_json(
        "public canary metadata",
        &json!({
            "ownerReferences": public["metadata"]["ownerReferences"],
            "annotations": public["metadata"]["annotations"],
            "labels": public["metadata"]["labels"]
        }),
        &json!({
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                "name": "storefront", "uid": uid, "controller": true, "blockOwnerDeletion": true}],
            "annotations": {
                "example.com/owner": "storefront-team",
                "nginx.ingress.kubernetes.io/canary": "true",
                "nginx.ingress.kubernetes.io/canary-by-header": "x-canary",
                "nginx.ingress.kubernetes.io/canary-weight": "0",
                "nginx.ingress.kubernetes.io/canary-weight-total": "1000"
            },
            "labels": null
        }),
    )?;
    expect_json(
        "public canary spec",
        &public["spec"],
        &json!({
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
            "rules": [{"host": "shop.example.com", "http": {"paths": [
                path("/", "storefront-canary"), path("/static", "cdn")
            ]}}]
        }),
    )?;
    let internal = support::get(&api, "storefront-internal-canary").await?;
    ensure!(
        internal["metadata"]["annotations"]["kubernetes.io/ingress.class"] == "nginx-internal",
        "the class annotation is copied: {}",
        internal["metadata"]
    );
    verified(&router, 0).await?;

    // Others label and annotate the canary Ingress, and give it a default backend.
    support::merge_patch(
        &api,
        "storefront-public-canary",
        json!({
            "metadata": {"labels": {"policy": "audited"}, "annotations": {"monitoring.example.com/scrape": "true"}},
            "spec": {"defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}}}
        }),
    )
    .await?;

    for weight in [100, 500, 1000] {
        router.update_hash("c1", "s1", &[]).await?;
        router.set_weight(weight, &[]).await?;
        for name in ["storefront-public-canary", "storefront-internal-canary"] {
            let canary = support::get(&api, name).await?;
            ensure!(
                canary["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"]
                    .as_str()
                    == Some(weight.to_string().as_str()),
                "{name} at {weight}: {}",
                canary["metadata"]["annotations"]
            );
        }
        verified(&router, weight).await?;
        ensure!(
            support::drained(&events)
                == [
                    format!(
                        "PatchingCanaryIngress: Updating Ingress `storefront-public-canary` to desiredWeight '{weight}'"
                    ),
                    format!(
                        "PatchingCanaryIngress: Updating Ingress `storefront-internal-canary` to desiredWeight '{weight}'"
                    ),
                ],
            "patch events at {weight}"
        );
    }

    // A weight edited behind the router's back is seen, and repaired.
    support::merge_patch(
        &api,
        "storefront-internal-canary",
        json!({"metadata": {"annotations": {"nginx.ingress.kubernetes.io/canary-weight": "7"}}}),
    )
    .await?;
    let tampered = router.verify_weight(1000, &[]).await?;
    ensure!(
        tampered
            == WeightVerification::Mismatch {
                observed: Some(7),
                detail: "canary Ingress `storefront-internal-canary` has \
                         nginx.ingress.kubernetes.io/canary-weight \"7\", want \"1000\""
                    .into()
            },
        "{tampered:?}"
    );
    router.set_weight(1000, &[]).await?;
    verified(&router, 1000).await?;

    // Abort: back to 0; then nothing changes, nothing is written.
    router.set_weight(0, &[]).await?;
    verified(&router, 0).await?;
    let public = support::get(&api, "storefront-public-canary").await?;
    expect_json(
        "what others added",
        &json!({
            "labels": public["metadata"]["labels"],
            "scrape": public["metadata"]["annotations"]["monitoring.example.com/scrape"],
            "defaultBackend": public["spec"]["defaultBackend"]
        }),
        &json!({
            "labels": {"policy": "audited"},
            "scrape": "true",
            "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}}
        }),
    )?;
    support::drained(&events);
    router.set_weight(0, &[]).await?;
    ensure!(
        support::drained(&events).is_empty(),
        "an unchanged weight emitted events"
    );
    let again = support::get(&api, "storefront-public-canary").await?;
    ensure!(
        again["metadata"]["resourceVersion"] == public["metadata"]["resourceVersion"],
        "an unchanged weight was written"
    );
    for (name, version) in ["public", "internal"].iter().zip(&stable_versions) {
        let stable = support::get(&api, name).await?;
        ensure!(
            &stable["metadata"]["resourceVersion"] == version,
            "the stable Ingress {name} was modified"
        );
    }
    Ok(())
}

async fn foreign_canary_ingress_missing_stable_ingress_and_no_rules_are_errors(
    ctx: TestContext,
) -> Result<()> {
    let api = ingresses(&ctx);
    support::create(&api, public_ingress()).await?;
    support::create(
        &api,
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "unrelated"},
            "spec": {"rules": [{"http": {"paths": [path("/", "other")]}}]}
        }),
    )
    .await?;
    let mut foreign = public_ingress();
    foreign["metadata"] = json!({"name": "storefront-public-canary"});
    support::create(&api, foreign).await?;
    let ro = rollout(
        &ctx,
        json!({"nginx": {"stableIngresses": ["public", "missing", "unrelated"]}}),
    )
    .await?;
    let events = support::recorder();

    let router = NginxRouter::new(support::init(&ctx, &ro, &events))?;
    let err = router
        .set_weight(10, &[])
        .await
        .expect_err("foreign canary");
    ensure!(
        err.to_string()
            == "nginx: canary ingress `storefront-public-canary` controlled by different object",
        "{err}"
    );
    let untouched = support::get(&api, "storefront-public-canary").await?;
    ensure!(
        untouched["metadata"]["annotations"].is_null(),
        "the foreign Ingress was changed: {}",
        untouched["metadata"]
    );

    // The other two stable Ingresses, one at a time.
    let mut only_missing = ro.clone();
    set_stable_ingresses(&mut only_missing, &["missing"])?;
    let router = NginxRouter::new(support::init(&ctx, &only_missing, &events))?;
    let err = router.set_weight(10, &[]).await.expect_err("missing");
    ensure!(
        err.to_string() == "nginx: stableIngress `missing` not found",
        "{err}"
    );
    let mut only_unrelated = ro.clone();
    set_stable_ingresses(&mut only_unrelated, &["unrelated"])?;
    let router = NginxRouter::new(support::init(&ctx, &only_unrelated, &events))?;
    let err = router.set_weight(10, &[]).await.expect_err("no rules");
    ensure!(
        err.to_string()
            == "nginx: ingress `unrelated` has no rules using service storefront-stable backend",
        "{err}"
    );
    ensure!(
        api.get_opt("storefront-unrelated-canary").await?.is_none(),
        "a canary Ingress was created without rules"
    );
    ensure!(support::drained(&events).is_empty(), "no events expected");
    Ok(())
}

fn set_stable_ingresses(ro: &mut Rollout, names: &[&str]) -> Result<()> {
    let nginx = ro
        .spec
        .strategy
        .as_mut()
        .and_then(|s| s.canary.as_mut())
        .and_then(|c| c.traffic_routing.as_mut())
        .and_then(|t| t.nginx.as_mut())
        .context("nginx block")?;
    nginx.stable_ingresses = Some(names.iter().map(|s| s.to_string()).collect());
    Ok(())
}

/// The canary weight of `checkout`'s canary Ingress.
fn checkout_weight(ctx: TestContext) -> BoxFuture<'static, Result<Option<i32>>> {
    Box::pin(async move {
        let Some(canary) = ingresses(&ctx).get_opt("checkout-checkout-canary").await? else {
            return Ok(None);
        };
        let canary = serde_json::to_value(canary)?;
        let annotations = &canary["metadata"]["annotations"];
        ensure!(
            annotations["nginx.ingress.kubernetes.io/canary"] == "true",
            "{annotations}"
        );
        let Some(weight) = annotations["nginx.ingress.kubernetes.io/canary-weight"].as_str() else {
            bail!("no canary-weight: {annotations}");
        };
        Ok(Some(weight.parse()?))
    })
}

/// An NGINX Ingress `name` sending `<name>.example.com` to the Service `<name>-stable`.
pub(crate) fn stable_ingress(name: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": format!("{name}.example.com"),
                       "http": {"paths": [path("/", &format!("{name}-stable"))]}}]
        }
    })
}

async fn controller_walks_a_canary_through_the_canary_ingress(ctx: TestContext) -> Result<()> {
    support::controller_walks_a_canary(
        &ctx,
        "checkout",
        json!({"nginx": {"stableIngress": "checkout"}}),
        vec![stable_ingress("checkout")],
        checkout_weight,
    )
    .await
}
