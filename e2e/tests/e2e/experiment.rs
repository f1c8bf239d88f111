//! Experiments end to end: our `rollouts-controller` (its Experiment, Rollout and AnalysisRun
//! controllers) on the test cluster, KWOK making the pods Ready.
//!
//! A standalone Experiment with two templates and `duration: 5s` gets its ReplicaSets
//! `<experiment>-<template>` (hash label and selector, experiment annotations, owner), a
//! template Service, becomes Running then Successful, and its ReplicaSets are scaled to zero
//! after `scaleDownDelaySeconds` (the Service deleted); without `duration`, a `requiredForCompletion`
//! analysis that succeeds ends it Successful, and `spec.terminate` ends it and scales it down; a canary Rollout with an `experiment`
//! step (canary and stable templates, a `web` analysis against a local HTTP server) finishes the
//! experiment and continues to the end; a failing experiment analysis aborts the Rollout.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use e2e::{
    Test, TestContext,
    controller::{Controller, Options},
    rollouts::{self as ro},
    servers::HttpServer,
    wait,
};
use k8s_openapi::api::{
    apps::v1::ReplicaSet,
    core::v1::{Event, Service},
};
use kube::{
    Api,
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams},
};
use serde_json::{Value, json};

use crate::canary::{healthy_canary, with_log};

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(standalone_experiment_runs_for_its_duration_then_scales_down),
        e2e::test!(required_analysis_completes_an_experiment_without_duration),
        e2e::test!(terminate_ends_an_experiment_and_scales_it_down),
        e2e::test!(rollout_experiment_step_completes_and_the_rollout_continues),
        e2e::test!(failing_experiment_analysis_aborts_the_rollout),
    ]
}

const T: Duration = Duration::from_secs(60);
const HASH: &str = "rollouts-pod-template-hash";

fn experiments(ctx: &TestContext) -> Api<DynamicObject> {
    Api::namespaced_with(
        ctx.client.clone(),
        &ctx.namespace,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Experiment"),
            "experiments",
        ),
    )
}

fn runs(ctx: &TestContext) -> Api<DynamicObject> {
    Api::namespaced_with(
        ctx.client.clone(),
        &ctx.namespace,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "AnalysisRun"),
            "analysisruns",
        ),
    )
}

fn summary(ex: &Value) -> String {
    format!(
        "{} phase={} message={:?} templateStatuses={} analysisRuns={}",
        ex["metadata"]["name"].as_str().unwrap_or("?"),
        ex["status"]["phase"],
        ex["status"]["message"],
        ex["status"]["templateStatuses"],
        ex["status"]["analysisRuns"]
    )
}

/// Waits until one of the namespace's Experiments satisfies `check`.
async fn wait_experiment(
    ctx: &TestContext,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let last = std::sync::Mutex::new(Vec::<Value>::new());
    let (last_ref, check) = (&last, &check);
    let result = wait::until(T, what, || async move {
        let list = experiments(ctx).list(&ListParams::default()).await?;
        let all: Vec<Value> = list
            .items
            .into_iter()
            .map(serde_json::to_value)
            .collect::<std::result::Result<_, _>>()?;
        let found = all.iter().find(|e| check(e)).cloned();
        *last_ref.lock().unwrap_or_else(|p| p.into_inner()) = all;
        Ok::<_, anyhow::Error>(found)
    })
    .await;
    let last = last.into_inner().unwrap_or_else(|p| p.into_inner());
    result.with_context(|| {
        format!(
            "experiments: [{}]",
            last.iter().map(summary).collect::<Vec<_>>().join("; ")
        )
    })
}

fn phase(ex: &Value) -> &str {
    ex["status"]["phase"].as_str().unwrap_or("")
}

async fn replica_set(ctx: &TestContext, name: &str) -> Result<ReplicaSet> {
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.get(name)
        .await
        .with_context(|| format!("reading ReplicaSet {name}"))
}

/// The reasons of the Events recorded on an object of `kind`, in no particular order.
async fn event_reasons(ctx: &TestContext, kind: &str, name: &str) -> Result<Vec<String>> {
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some(kind)
                && e.involved_object.name.as_deref() == Some(name)
        })
        .map(|e| e.reason.unwrap_or_default())
        .collect())
}

fn template(name: &str, replicas: i32, service: bool) -> Value {
    let mut t = json!({
        "name": name, "replicas": replicas,
        "selector": {"matchLabels": {"app": "exp", "variant": name}},
        "template": {"metadata": {"labels": {"app": "exp", "variant": name}},
            "spec": {"containers": [{"name": "app", "image": format!("registry.invalid/{name}:1"),
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]}}
    });
    if service {
        t["service"] = json!({});
    }
    t
}

async fn standalone_experiment_runs_for_its_duration_then_scales_down(
    ctx: TestContext,
) -> Result<()> {
    let ctx = &ctx;
    ctx.install_crds().await?;
    let ctl = Controller::start(ctx, Options::default()).await?;
    with_log(&ctl, async {
        let start = Instant::now();
        ro::apply(
            ctx,
            json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
                "metadata": {"name": "ex"},
                "spec": {"duration": "5s", "scaleDownDelaySeconds": 3,
                    "templates": [template("baseline", 1, false), template("canary", 2, true)]}
            }),
        )
        .await?;
        let running = wait_experiment(ctx, "the experiment to be Running", |e| {
            phase(e) == "Running" && !e["status"]["availableAt"].is_null()
        })
        .await?;
        let uid = running["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for (t, replicas) in [("baseline", 1), ("canary", 2)] {
            let rs = replica_set(ctx, &format!("ex-{t}")).await?;
            let labels = rs.metadata.labels.clone().unwrap_or_default();
            let hash = labels.get(HASH).cloned().unwrap_or_default();
            ensure!(!hash.is_empty(), "{t}: no hash label: {labels:?}");
            let sel = rs.spec.selector.match_labels.clone().unwrap_or_default();
            ensure!(
                sel.get(HASH) == Some(&hash) && sel.get("variant").map(String::as_str) == Some(t),
                "{t}: selector {sel:?}"
            );
            let ann = rs.metadata.annotations.clone().unwrap_or_default();
            ensure!(
                ann.get("experiment.argoproj.io/name").map(String::as_str) == Some("ex")
                    && ann
                        .get("experiment.argoproj.io/template-name")
                        .map(String::as_str)
                        == Some(t),
                "{t}: annotations {ann:?}"
            );
            let owner = &rs.metadata.owner_references.clone().unwrap_or_default()[0];
            ensure!(
                owner.kind == "Experiment" && owner.uid == uid && owner.controller == Some(true),
                "{t}: owner {owner:?}"
            );
            ensure!(
                rs.spec.replicas == Some(replicas),
                "{t}: {:?}",
                rs.spec.replicas
            );
            let st = running["status"]["templateStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["name"] == t)
                .cloned()
                .unwrap_or_default();
            ensure!(
                st["status"] == "Running" && st["availableReplicas"] == replicas,
                "{t}: {st}"
            );
        }
        // The canary template's Service selects its pods.
        let svc_api: Api<Service> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
        let svc = wait::until(T, "the canary template's Service", || async {
            Ok::<_, anyhow::Error>(svc_api.get_opt("ex-canary").await?)
        })
        .await?;
        let canary_hash = replica_set(ctx, "ex-canary")
            .await?
            .metadata
            .labels
            .unwrap_or_default()[HASH]
            .clone();
        let selector = svc
            .spec
            .clone()
            .and_then(|s| s.selector)
            .unwrap_or_default();
        ensure!(selector.get(HASH) == Some(&canary_hash), "{selector:?}");
        ensure!(
            svc.spec.and_then(|s| s.ports).unwrap_or_default()[0].port == 8080,
            "service port"
        );

        let done = wait_experiment(ctx, "the experiment to succeed", |e| {
            phase(e) == "Successful"
        })
        .await?;
        let took = start.elapsed();
        // `duration` counts from `availableAt` (whole seconds, as stored).
        let available_at: jiff::Timestamp = done["status"]["availableAt"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .context("status.availableAt")?;
        let end = available_at + jiff::SignedDuration::from_secs(5);
        ensure!(
            jiff::Timestamp::now() >= end,
            "Successful before availableAt + 5s ({end}): {}",
            summary(&done)
        );
        let cond = done["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Progressing")
            .cloned()
            .unwrap_or_default();
        ensure!(
            cond["status"] == "False" && cond["reason"] == "ExperimentCompleted",
            "{cond}"
        );
        // Scaled down after the delay, with the deadline annotation written first.
        let deadline = wait::until(T, "the scale-down deadline", || async {
            let rs = replica_set(ctx, "ex-canary").await?;
            Ok::<_, anyhow::Error>(
                rs.metadata
                    .annotations
                    .unwrap_or_default()
                    .get("scale-down-deadline")
                    .cloned(),
            )
        })
        .await?;
        ensure!(
            deadline.parse::<jiff::Timestamp>().is_ok(),
            "deadline {deadline}"
        );
        for t in ["baseline", "canary"] {
            wait::until(T, &format!("ex-{t} to be scaled to 0"), || async {
                let rs = replica_set(ctx, &format!("ex-{t}")).await?;
                Ok::<_, anyhow::Error>((rs.spec.replicas == Some(0)).then_some(()))
            })
            .await?;
        }
        wait::until(T, "the template Service to be deleted", || async {
            Ok::<_, anyhow::Error>(svc_api.get_opt("ex-canary").await?.is_none().then_some(()))
        })
        .await?;
        let reasons = event_reasons(ctx, "Experiment", "ex").await?;
        for r in [
            "TemplateProgressing",
            "TemplateRunning",
            "TemplateSuccessful",
            "ExperimentPending",
            "ExperimentRunning",
            "ExperimentSuccessful",
            "ScalingReplicaSet",
        ] {
            ensure!(reasons.iter().any(|x| x == r), "no {r} event: {reasons:?}");
        }
        eprintln!("experiment: Successful {took:?} after creation");
        Ok(())
    })
    .await
}

/// The `web-health` AnalysisTemplate: a web metric against `server`.
async fn health_template(ctx: &TestContext, server: &HttpServer) -> Result<()> {
    ro::apply(
        ctx,
        json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": "web-health"},
            "spec": {"args": [{"name": "service-name"}, {"name": "canary-hash"}],
                "metrics": [{"name": "health", "successCondition": "result >= 0.95",
                    "provider": {"web": {"url": server.url("/health/{{args.service-name}}"),
                        "jsonPath": "{$.data.rate}"}}}]}
        }),
    )
    .await?;
    Ok(())
}

fn experiment_steps() -> Value {
    json!([
        {"setWeight": 34},
        {"experiment": {
            "duration": "5s",
            "scaleDownDelaySeconds": 2,
            "templates": [
                {"name": "canary", "specRef": "canary"},
                {"name": "baseline", "specRef": "stable"}
            ],
            "analyses": [{"name": "health", "templateName": "web-health",
                "args": [{"name": "service-name", "value": "web-canary"},
                         {"name": "canary-hash", "value": "{{templates.canary.podTemplateHash}}"}]}]
        }},
        {"setWeight": 67}
    ])
}

/// Sets image 2 and returns the new revision's hash.
async fn update(ctx: &TestContext, v1: &str) -> Result<String> {
    ro::set_image(ctx, "web", "registry.invalid/web:2").await?;
    let r = ro::wait_for(ctx, "web", T, "the new revision", |r| {
        r["status"]["currentPodHash"]
            .as_str()
            .is_some_and(|h| h != v1)
    })
    .await?;
    Ok(r["status"]["currentPodHash"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

async fn rollout_experiment_step_completes_and_the_rollout_continues(
    ctx: TestContext,
) -> Result<()> {
    let server = HttpServer::start().await?;
    let ctx = &ctx;
    ctx.install_crds().await?;
    health_template(ctx, &server).await?;
    server.set(
        "/health/web-canary",
        200,
        "application/json",
        r#"{"data": {"rate": 0.99}}"#,
    );
    let (ctl, v1) = healthy_canary(ctx, 3, experiment_steps()).await?;
    with_log(&ctl, async {
        let start = Instant::now();
        let v2 = update(ctx, &v1).await?;
        let name = format!("web-{v2}-2-1");
        let ex = wait_experiment(ctx, "the step's experiment to be Running", |e| {
            e["metadata"]["name"] == name.as_str() && phase(e) == "Running"
        })
        .await?;
        ensure!(
            ex["metadata"]["ownerReferences"][0]["kind"] == "Rollout",
            "{ex}"
        );
        // The canary template runs the new revision's pods, the baseline the stable ones.
        let canary_rs = replica_set(ctx, &format!("{name}-canary")).await?;
        let image = |rs: &ReplicaSet| {
            rs.spec
                .template
                .as_ref()
                .and_then(|t| t.spec.as_ref())
                .map(|s| s.containers[0].image.clone().unwrap_or_default())
                .unwrap_or_default()
        };
        ensure!(image(&canary_rs) == "registry.invalid/web:2");
        let baseline_rs = replica_set(ctx, &format!("{name}-baseline")).await?;
        ensure!(image(&baseline_rs) == "registry.invalid/web:1");
        let canary_hash = canary_rs.metadata.labels.clone().unwrap_or_default()[HASH].clone();
        ensure!(canary_hash != v2, "the template's pods get their own hash");
        let done = wait_experiment(ctx, "the experiment to succeed", |e| {
            e["metadata"]["name"] == name.as_str() && phase(e) == "Successful"
        })
        .await?;
        let run_name = done["status"]["analysisRuns"][0]["analysisRun"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        ensure!(run_name == format!("{name}-health"), "{}", summary(&done));
        let run = serde_json::to_value(runs(ctx).get(&run_name).await?)?;
        ensure!(run["status"]["phase"] == "Successful", "{}", run["status"]);
        ensure!(run["metadata"]["ownerReferences"][0]["kind"] == "Experiment");
        // `{{templates.canary.podTemplateHash}}` resolved to the template's ReplicaSet.
        let arg = run["spec"]["args"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["name"] == "canary-hash")
            .cloned()
            .unwrap_or_default();
        ensure!(arg["value"] == canary_hash.as_str(), "{arg}");
        ensure!(
            server.requests().iter().any(|r| r == "/health/web-canary"),
            "{:?}",
            server.requests()
        );
        // The rollout goes on past the experiment to the end.
        ro::wait_for(ctx, "web", T, "the rollout to be promoted", |r| {
            ro::healthy(r) && r["status"]["stableRS"] == v2.as_str()
        })
        .await?;
        ro::wait_sizes(ctx, &[(&v2, 3)], T).await?;
        for t in ["canary", "baseline"] {
            wait::until(T, &format!("the {t} template scaled to 0"), || async {
                let rs = replica_set(ctx, &format!("{name}-{t}")).await?;
                Ok::<_, anyhow::Error>((rs.spec.replicas == Some(0)).then_some(()))
            })
            .await?;
        }
        let reasons = ro::event_reasons(ctx, "web").await?;
        ensure!(
            reasons.iter().any(|r| r == "ExperimentCreated"),
            "{reasons:?}"
        );
        eprintln!(
            "experiment step: rollout promoted {:?} after the update",
            start.elapsed()
        );
        Ok(())
    })
    .await
}

async fn failing_experiment_analysis_aborts_the_rollout(ctx: TestContext) -> Result<()> {
    let server = HttpServer::start().await?;
    let ctx = &ctx;
    ctx.install_crds().await?;
    health_template(ctx, &server).await?;
    server.set(
        "/health/web-canary",
        200,
        "application/json",
        r#"{"data": {"rate": 0.5}}"#,
    );
    let (ctl, v1) = healthy_canary(ctx, 3, experiment_steps()).await?;
    with_log(&ctl, async {
        let v2 = update(ctx, &v1).await?;
        let name = format!("web-{v2}-2-1");
        let failed = wait_experiment(ctx, "the experiment to fail", |e| {
            e["metadata"]["name"] == name.as_str() && phase(e) == "Failed"
        })
        .await?;
        ensure!(
            failed["status"]["analysisRuns"][0]["phase"] == "Failed",
            "{}",
            summary(&failed)
        );
        let r = ro::wait_for(ctx, "web", T, "the rollout to abort", |r| {
            r["status"]["abort"] == true
                && ro::phase(r) == "Degraded"
                && r["status"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Experiment analysis phase is error/failed"))
        })
        .await?;
        ensure!(
            r["status"]["stableRS"] == v1.as_str(),
            "{}",
            ro::summary(&r)
        );
        ro::wait_sizes(ctx, &[(&v1, 3)], T).await?;
        for t in ["canary", "baseline"] {
            wait::until(T, &format!("the {t} template scaled to 0"), || async {
                let rs = replica_set(ctx, &format!("{name}-{t}")).await?;
                Ok::<_, anyhow::Error>((rs.spec.replicas == Some(0)).then_some(()))
            })
            .await?;
        }
        let reasons = event_reasons(ctx, "Experiment", &name).await?;
        ensure!(
            reasons.iter().any(|r| r == "AnalysisRunFailed")
                && reasons.iter().any(|r| r == "ExperimentFailed"),
            "{reasons:?}"
        );
        Ok(())
    })
    .await
}

async fn required_analysis_completes_an_experiment_without_duration(
    ctx: TestContext,
) -> Result<()> {
    let server = HttpServer::start().await?;
    server.set(
        "/health/ex-baseline",
        200,
        "application/json",
        r#"{"data": {"rate": 0.99}}"#,
    );
    let ctx = &ctx;
    ctx.install_crds().await?;
    health_template(ctx, &server).await?;
    let ctl = Controller::start(ctx, Options::default()).await?;
    with_log(&ctl, async {
        ro::apply(
            ctx,
            json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
                "metadata": {"name": "ex"},
                "spec": {"scaleDownDelaySeconds": 0,
                    "templates": [template("baseline", 1, false)],
                    "analyses": [{"name": "health", "templateName": "web-health", "requiredForCompletion": true,
                        "args": [{"name": "service-name", "value": "{{templates.baseline.replicaset.name}}"},
                                 {"name": "canary-hash", "value": "{{templates.baseline.podTemplateHash}}"}]}]}
            }),
        )
        .await?;
        let done = wait_experiment(ctx, "the experiment to succeed", |e| {
            phase(e) == "Successful"
        })
        .await?;
        ensure!(
            done["status"]["message"] == "Required AnalysisRuns completed",
            "{}",
            summary(&done)
        );
        ensure!(
            done["status"]["analysisRuns"][0]["analysisRun"] == "ex-health"
                && done["status"]["analysisRuns"][0]["phase"] == "Successful",
            "{}",
            summary(&done)
        );
        ensure!(
            server.requests().iter().any(|r| r == "/health/ex-baseline"),
            "{:?}",
            server.requests()
        );
        wait::until(T, "ex-baseline to be scaled to 0", || async {
            let rs = replica_set(ctx, "ex-baseline").await?;
            Ok::<_, anyhow::Error>((rs.spec.replicas == Some(0)).then_some(()))
        })
        .await?;
        Ok(())
    })
    .await
}

async fn terminate_ends_an_experiment_and_scales_it_down(ctx: TestContext) -> Result<()> {
    let ctx = &ctx;
    ctx.install_crds().await?;
    let ctl = Controller::start(ctx, Options::default()).await?;
    with_log(&ctl, async {
        ro::apply(
            ctx,
            json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
                "metadata": {"name": "ex"},
                "spec": {"scaleDownDelaySeconds": 0, "templates": [template("canary", 2, true)]}
            }),
        )
        .await?;
        wait_experiment(ctx, "the experiment to be Running", |e| {
            phase(e) == "Running"
        })
        .await?;
        // Without a duration it keeps running.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let still = serde_json::to_value(experiments(ctx).get("ex").await?)?;
        ensure!(phase(&still) == "Running", "{}", summary(&still));
        experiments(ctx)
            .patch(
                "ex",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"spec": {"terminate": true}})),
            )
            .await?;
        let done = wait_experiment(ctx, "the terminated experiment to succeed", |e| {
            phase(e) == "Successful"
        })
        .await?;
        ensure!(
            done["status"]["templateStatuses"][0]["status"] == "Successful",
            "{}",
            summary(&done)
        );
        wait::until(T, "ex-canary to be scaled to 0", || async {
            let rs = replica_set(ctx, "ex-canary").await?;
            Ok::<_, anyhow::Error>((rs.spec.replicas == Some(0)).then_some(()))
        })
        .await?;
        let svc_api: Api<Service> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
        wait::until(T, "the template Service to be deleted", || async {
            Ok::<_, anyhow::Error>(svc_api.get_opt("ex-canary").await?.is_none().then_some(()))
        })
        .await?;
        Ok(())
    })
    .await
}
