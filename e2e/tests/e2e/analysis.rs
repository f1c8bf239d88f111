//! Analysis end to end: our `rollouts-controller` (the Rollout and the AnalysisRun controllers)
//! measuring real metric sources started by the test on 127.0.0.1, a real Prometheus (Debian's
//! package) scraping a target whose success rate the test sets, an HTTP server for `web`
//! metrics, and Jobs on the cluster (KWOK completes them, or fails them with the fail label).
//!
//! Canary rollouts with an analysis step and with background analysis promote when the metric
//! is good and abort (canary scaled down, the stable Service on the old revision) when it is bad;
//! an inconclusive analysis pauses the rollout until it is promoted; blue-green pre-promotion
//! analysis that fails keeps the active Service on the old revision; secret arguments never show
//! in a run's status, its Events or the controller log; `--controllers=analysis` runs the
//! AnalysisRun controller alone, with its metrics.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use e2e::{
    FAIL_LABEL, Test, TestContext,
    controller::{Controller, Options},
    rollouts::{self as ro},
    servers::{HttpServer, Prometheus, Target},
    wait,
};
use k8s_openapi::api::{batch::v1::Job, core::v1::Event};
use kube::{
    Api,
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams},
};
use serde_json::{Value, json};

use crate::canary::with_log;

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(step_analysis_promotes_when_the_success_rate_is_good),
        e2e::test!(step_analysis_aborts_when_the_success_rate_is_bad),
        e2e::test!(background_analysis_starts_at_its_step_and_promotes),
        e2e::test!(background_analysis_aborts_after_the_tolerated_failure),
        e2e::test!(web_metric_against_a_local_server),
        e2e::test!(job_metric_that_succeeds_promotes),
        e2e::test!(job_metric_that_fails_aborts),
        e2e::test!(inconclusive_analysis_pauses_until_promoted),
        e2e::test!(secret_arguments_are_redacted),
        e2e::test!(blue_green_pre_promotion_failure_keeps_the_active_service),
        e2e::test!(blue_green_post_promotion_analysis_makes_the_new_revision_stable),
        e2e::test!(the_analysis_controller_runs_alone),
    ]
}

const T: Duration = Duration::from_secs(60);

/// The series the Prometheus tests query.
const RATE: &str = r#"app_success_rate{service="web-canary"}"#;

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", kind),
        plural,
    )
}

fn runs_api(ctx: &TestContext) -> Api<DynamicObject> {
    Api::namespaced_with(
        ctx.client.clone(),
        &ctx.namespace,
        &resource("AnalysisRun", "analysisruns"),
    )
}

/// The AnalysisRuns of the namespace as JSON, oldest first.
async fn runs(ctx: &TestContext) -> Result<Vec<Value>> {
    let list = runs_api(ctx).list(&ListParams::default()).await?;
    let mut out: Vec<Value> = list
        .items
        .into_iter()
        .map(serde_json::to_value)
        .collect::<std::result::Result<_, _>>()?;
    out.sort_by_key(|r| {
        r["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    Ok(out)
}

fn run_summary(run: &Value) -> String {
    format!(
        "{} phase={} message={:?} metricResults={}",
        run["metadata"]["name"].as_str().unwrap_or("?"),
        run["status"]["phase"],
        run["status"]["message"],
        run["status"]["metricResults"]
    )
}

/// Waits until an AnalysisRun satisfies `check`; the error lists every run.
async fn wait_run(ctx: &TestContext, what: &str, check: impl Fn(&Value) -> bool) -> Result<Value> {
    let last = std::sync::Mutex::new(Vec::new());
    let (last_ref, check) = (&last, &check);
    let result = wait::until(T, what, || async move {
        let all = runs(ctx).await?;
        let found = all.iter().find(|r| check(r)).cloned();
        *last_ref.lock().unwrap_or_else(|p| p.into_inner()) = all;
        Ok::<_, anyhow::Error>(found)
    })
    .await;
    let last = last.into_inner().unwrap_or_else(|p| p.into_inner());
    result.with_context(|| {
        format!(
            "runs: [{}]",
            last.iter().map(run_summary).collect::<Vec<_>>().join("; ")
        )
    })
}

fn run_phase(run: &Value) -> &str {
    run["status"]["phase"].as_str().unwrap_or("")
}

fn is_type(run: &Value, rollout_type: &str) -> bool {
    run["metadata"]["labels"]["rollout-type"] == rollout_type
}

/// The Events recorded on an AnalysisRun: (reason, message).
async fn run_events(ctx: &TestContext, run: &str) -> Result<Vec<(String, String)>> {
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let mut list: Vec<Event> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some("AnalysisRun")
                && e.involved_object.name.as_deref() == Some(run)
        })
        .collect();
    list.sort_by_key(|e| e.metadata.name.clone());
    Ok(list
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect())
}

/// An AnalysisTemplate with one metric (and the arguments it declares).
async fn template(ctx: &TestContext, name: &str, args: Value, metric: Value) -> Result<()> {
    ro::apply(
        ctx,
        json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": name},
            "spec": {"args": args, "metrics": [metric]}
        }),
    )
    .await?;
    Ok(())
}

/// The `success-rate` template: a Prometheus query of the canary's success rate.
async fn success_rate_template(
    ctx: &TestContext,
    prometheus: &Prometheus,
    extra: Value,
) -> Result<()> {
    let mut metric = json!({
        "name": "success-rate",
        "successCondition": "result[0] >= 0.95",
        "provider": {"prometheus": {
            "address": prometheus.url(),
            "query": "app_success_rate{service=\"{{args.service-name}}\"}"
        }}
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        metric[k] = v.clone();
    }
    template(
        ctx,
        "success-rate",
        json!([{"name": "service-name"}]),
        metric,
    )
    .await
}

fn analysis_ref(template: &str) -> Value {
    json!({
        "templates": [{"templateName": template}],
        "args": [{"name": "service-name", "value": "web-canary"}]
    })
}

/// A Prometheus scraping a target whose success rate is `rate`, ready to answer.
async fn prometheus_with_rate(rate: f64) -> Result<(Target, Prometheus)> {
    let target = Target::start().await?;
    target.set(RATE, rate);
    let prometheus = Prometheus::start(&target.address()).await?;
    prometheus.wait_for(RATE, rate).await?;
    Ok((target, prometheus))
}

/// Starts a controller and a Healthy canary Rollout `web` (3 pods, Services `web-stable` and
/// `web-canary`) with `canary` as its strategy block. Returns the controller and the hash.
async fn healthy(ctx: &TestContext, canary: Value) -> Result<(Controller, String)> {
    ctx.install_crds().await?;
    let ctl = Controller::start(ctx, Options::default()).await?;
    let hash = with_log(&ctl, async {
        ro::apply(ctx, ro::service("web-stable", "web")).await?;
        ro::apply(ctx, ro::service("web-canary", "web")).await?;
        let mut strategy = json!({"stableService": "web-stable", "canaryService": "web-canary"});
        for (k, v) in canary.as_object().into_iter().flatten() {
            strategy[k] = v.clone();
        }
        ro::apply(
            ctx,
            ro::canary_rollout("web", 3, "registry.invalid/web:1", strategy),
        )
        .await?;
        let r = ro::wait_for(
            ctx,
            "web",
            T,
            "the initial deploy to be Healthy",
            ro::healthy,
        )
        .await?;
        let hash = r["status"]["stableRS"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        ensure!(
            runs(ctx).await?.is_empty(),
            "no analysis on the initial deploy"
        );
        Ok(hash)
    })
    .await?;
    Ok((ctl, hash))
}

/// Sets image 2 and returns the new revision's hash once the Rollout reports it.
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

/// Promoted: Healthy on `v2`.
async fn promoted(ctx: &TestContext, v2: &str) -> Result<Value> {
    let r = ro::wait_for(ctx, "web", T, "the rollout to be promoted", |r| {
        ro::healthy(r) && r["status"]["stableRS"] == v2
    })
    .await?;
    ro::wait_sizes(ctx, &[(v2, 3)], T).await?;
    ensure!(ro::selector_hash(ctx, "web-stable").await?.as_deref() == Some(v2));
    Ok(r)
}

/// Aborted with a message containing `why`: the canary scaled to zero, everything back on `v1`.
async fn aborted(ctx: &TestContext, v1: &str, v2: &str, why: &str) -> Result<Value> {
    let r = ro::wait_for(ctx, "web", T, "the rollout to abort", |r| {
        r["status"]["abort"] == true
            && ro::phase(r) == "Degraded"
            && r["status"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(why))
    })
    .await?;
    ensure!(r["status"]["stableRS"] == v1, "{}", ro::summary(&r));
    let sets = ro::wait_sizes(ctx, &[(v1, 3)], T).await?;
    ensure!(
        sets.iter().any(|s| s.hash == v2 && s.replicas == 0),
        "the canary ReplicaSet is scaled down: {sets:?}"
    );
    ensure!(ro::selector_hash(ctx, "web-stable").await?.as_deref() == Some(v1));
    Ok(r)
}

async fn step_analysis_promotes_when_the_success_rate_is_good(ctx: TestContext) -> Result<()> {
    let (_target, prometheus) = prometheus_with_rate(0.99).await?;
    let ctx = &ctx;
    ctx.install_crds().await?;
    success_rate_template(ctx, &prometheus, json!({"count": 2, "interval": "1s"})).await?;
    let steps = json!([{"setWeight": 34}, {"analysis": analysis_ref("success-rate")}]);
    let (ctl, v1) = healthy(ctx, json!({"steps": steps})).await?;
    with_log(&ctl, async {
        let start = Instant::now();
        let v2 = update(ctx, &v1).await?;
        let run = wait_run(ctx, "the step analysis to succeed", |r| {
            is_type(r, "Step") && run_phase(r) == "Successful"
        })
        .await?;
        let analysed = start.elapsed();
        let name = run["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        ensure!(name == format!("web-{v2}-2-1"), "{name}");
        ensure!(run["metadata"]["labels"]["step-index"] == "1");
        ensure!(run["metadata"]["ownerReferences"][0]["kind"] == "Rollout");
        let result = &run["status"]["metricResults"][0];
        ensure!(
            result["count"] == 2 && result["successful"] == 2,
            "{result}"
        );
        ensure!(result["measurements"][1]["value"] == "[0.99]", "{result}");
        ensure!(
            result["metadata"]["ResolvedPrometheusQuery"] == RATE,
            "the argument was substituted: {result}"
        );
        ensure!(run["status"]["runSummary"] == json!({"count": 1, "successful": 1}));
        ensure!(run["status"]["startedAt"].is_string() && run["status"]["completedAt"].is_string());
        promoted(ctx, &v2).await?;
        eprintln!(
            "e2e-measure: image change -> step analysis Successful (2 Prometheus measurements 1s apart) {:.1}s, -> promoted {:.1}s",
            analysed.as_secs_f64(),
            start.elapsed().as_secs_f64()
        );
        let reasons: Vec<String> = run_events(ctx, &name)
            .await?
            .into_iter()
            .map(|e| e.0)
            .collect();
        ro::in_order(&reasons, &["MetricSuccessful", "AnalysisRunSuccessful"])?;
        ro::wait_event(
            ctx,
            "web",
            "AnalysisRunSuccessful",
            &format!("Step Analysis Run '{name}' Status New: 'Successful'"),
            T,
        )
        .await?;
        Ok(())
    })
    .await
}

async fn step_analysis_aborts_when_the_success_rate_is_bad(ctx: TestContext) -> Result<()> {
    let (_target, prometheus) = prometheus_with_rate(0.5).await?;
    let ctx = &ctx;
    ctx.install_crds().await?;
    success_rate_template(ctx, &prometheus, json!({})).await?;
    let steps =
        json!([{"setWeight": 34}, {"analysis": analysis_ref("success-rate")}, {"pause": {}}]);
    let (ctl, v1) = healthy(ctx, json!({"steps": steps})).await?;
    with_log(&ctl, async {
        let v2 = update(ctx, &v1).await?;
        let run = wait_run(ctx, "the step analysis to fail", |r| {
            is_type(r, "Step") && run_phase(r) == "Failed"
        })
        .await?;
        let message =
            r#"Metric "success-rate" assessed Failed due to failed (1) > failureLimit (0)"#;
        ensure!(run["status"]["message"] == message, "{}", run_summary(&run));
        ensure!(run["status"]["metricResults"][0]["measurements"][0]["value"] == "[0.5]");
        aborted(
            ctx,
            &v1,
            &v2,
            &format!("Step-based analysis phase error/failed: {message}"),
        )
        .await?;
        ro::wait_event(ctx, "web", "AnalysisRunFailed", "Status New: 'Failed'", T).await?;
        ro::wait_event(ctx, "web", "RolloutAborted", "", T).await?;
        Ok(())
    })
    .await
}

async fn background_analysis_starts_at_its_step_and_promotes(ctx: TestContext) -> Result<()> {
    let (_target, prometheus) = prometheus_with_rate(0.99).await?;
    let ctx = &ctx;
    ctx.install_crds().await?;
    success_rate_template(ctx, &prometheus, json!({"interval": "1s"})).await?;
    let mut analysis = analysis_ref("success-rate");
    analysis["startingStep"] = json!(2);
    let canary = json!({
        "analysis": analysis,
        "steps": [{"setWeight": 34}, {"pause": {}}, {"setWeight": 67}, {"pause": {"duration": 4}}]
    });
    let (ctl, v1) = healthy(ctx, canary).await?;
    with_log(&ctl, async {
        let v2 = update(ctx, &v1).await?;
        ro::wait_for(ctx, "web", T, "the pause at step 1", |r| {
            ro::paused_at(r, 1)
        })
        .await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        ensure!(
            runs(ctx).await?.is_empty(),
            "no background analysis before startingStep 2"
        );
        ro::promote(ctx, "web").await?;
        let run = wait_run(ctx, "the background analysis to measure", |r| {
            is_type(r, "Background") && r["status"]["metricResults"][0]["count"].as_i64() >= Some(2)
        })
        .await?;
        let name = run["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        ensure!(name == format!("web-{v2}-2"), "{name}");
        promoted(ctx, &v2).await?;
        // Fully promoted: the run is terminated and ends Successful.
        let run = wait_run(ctx, "the background run to end", |r| {
            r["metadata"]["name"] == name.as_str() && run_phase(r) == "Successful"
        })
        .await?;
        ensure!(run["spec"]["terminate"] == true, "{}", run_summary(&run));
        ensure!(
            run["status"]["message"] == "Run Terminated",
            "{}",
            run_summary(&run)
        );
        ensure!(run["status"]["metricResults"][0]["failed"].is_null());
        Ok(())
    })
    .await
}

async fn background_analysis_aborts_after_the_tolerated_failure(ctx: TestContext) -> Result<()> {
    let (_target, prometheus) = prometheus_with_rate(0.5).await?;
    let ctx = &ctx;
    ctx.install_crds().await?;
    success_rate_template(
        ctx,
        &prometheus,
        json!({"interval": "2s", "failureLimit": 1}),
    )
    .await?;
    let canary = json!({
        "analysis": analysis_ref("success-rate"),
        "steps": [{"setWeight": 34}, {"pause": {}}]
    });
    let (ctl, v1) = healthy(ctx, canary).await?;
    with_log(&ctl, async {
        let v2 = update(ctx, &v1).await?;
        // One failed measurement is tolerated: the run keeps running.
        let run = wait_run(ctx, "one failed measurement", |r| {
            is_type(r, "Background") && r["status"]["metricResults"][0]["failed"] == 1
        })
        .await?;
        ensure!(run_phase(&run) == "Running", "{}", run_summary(&run));
        let message =
            r#"Metric "success-rate" assessed Failed due to failed (2) > failureLimit (1)"#;
        let run = wait_run(ctx, "the second failure to fail the run", |r| {
            is_type(r, "Background") && run_phase(r) == "Failed"
        })
        .await?;
        ensure!(run["status"]["message"] == message, "{}", run_summary(&run));
        aborted(
            ctx,
            &v1,
            &v2,
            &format!("Background analysis phase error/failed: {message}"),
        )
        .await?;
        Ok(())
    })
    .await
}

async fn web_metric_against_a_local_server(ctx: TestContext) -> Result<()> {
    let server = HttpServer::start().await?;
    server.set(
        "/health/web-canary",
        200,
        "application/json",
        r#"{"data": {"rate": 0.98, "ok": true}}"#,
    );
    let ctx = &ctx;
    ctx.install_crds().await?;
    template(
        ctx,
        "web-health",
        json!([{"name": "service-name"}]),
        json!({
            "name": "health",
            "successCondition": "result >= 0.95",
            "provider": {"web": {"url": server.url("/health/{{args.service-name}}"), "jsonPath": "{$.data.rate}"}}
        }),
    )
    .await?;
    let steps = json!([{"setWeight": 34}, {"analysis": analysis_ref("web-health")}]);
    let (ctl, v1) = healthy(ctx, json!({"steps": steps})).await?;
    with_log(&ctl, async {
        let v2 = update(ctx, &v1).await?;
        let run = wait_run(ctx, "the web analysis to succeed", |r| {
            run_phase(r) == "Successful"
        })
        .await?;
        let m = &run["status"]["metricResults"][0]["measurements"][0];
        ensure!(m["value"] == "0.98" && m["phase"] == "Successful", "{m}");
        ensure!(
            server.requests().iter().any(|r| r == "/health/web-canary"),
            "{:?}",
            server.requests()
        );
        promoted(ctx, &v2).await?;
        Ok(())
    })
    .await
}

/// The `smoke` template: a Job whose pods fail when `fail` is set (KWOK's fail label).
async fn job_template(ctx: &TestContext, fail: bool) -> Result<()> {
    let mut labels = json!({"app": "smoke"});
    if fail {
        labels[FAIL_LABEL] = json!("true");
    }
    template(
        ctx,
        "smoke",
        json!([{"name": "service-name"}]),
        json!({
            "name": "smoke",
            "provider": {"job": {"spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"restartPolicy": "Never", "containers": [{
                        "name": "smoke", "image": "registry.invalid/curl:1",
                        "args": ["http://{{args.service-name}}/health"]
                    }]}
                }
            }}}
        }),
    )
    .await
}

/// The Jobs created for the namespace's AnalysisRuns.
async fn analysis_jobs(ctx: &TestContext) -> Result<Vec<Job>> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    Ok(api
        .list(&ListParams::default().labels("analysisrun.argoproj.io/uid"))
        .await?
        .items)
}

async fn job_metric_that_succeeds_promotes(ctx: TestContext) -> Result<()> {
    let ctx = &ctx;
    ctx.install_crds().await?;
    job_template(ctx, false).await?;
    let steps = json!([{"setWeight": 34}, {"analysis": analysis_ref("smoke")}]);
    let (ctl, v1) = healthy(ctx, json!({"steps": steps})).await?;
    with_log(&ctl, async {
        let v2 = update(ctx, &v1).await?;
        let run = wait_run(ctx, "the job analysis to succeed", |r| {
            run_phase(r) == "Successful"
        })
        .await?;
        let uid = run["metadata"]["uid"].as_str().unwrap_or_default();
        let jobs = analysis_jobs(ctx).await?;
        ensure!(jobs.len() == 1, "{} jobs", jobs.len());
        ensure!(jobs[0].metadata.name.as_deref() == Some(format!("{uid}.smoke.1").as_str()));
        let args = jobs[0]
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.containers[0].args.clone())
            .unwrap_or_default();
        ensure!(args == ["http://web-canary/health"], "{args:?}");
        let m = &run["status"]["metricResults"][0]["measurements"][0];
        ensure!(
            m["metadata"]["job-name"] == format!("{uid}.smoke.1").as_str(),
            "{m}"
        );
        promoted(ctx, &v2).await?;
        Ok(())
    })
    .await
}

async fn job_metric_that_fails_aborts(ctx: TestContext) -> Result<()> {
    let ctx = &ctx;
    ctx.install_crds().await?;
    job_template(ctx, true).await?;
    let steps = json!([{"setWeight": 34}, {"analysis": analysis_ref("smoke")}, {"pause": {}}]);
    let (ctl, v1) = healthy(ctx, json!({"steps": steps})).await?;
    with_log(&ctl, async {
        let v2 = update(ctx, &v1).await?;
        let run = wait_run(ctx, "the job analysis to fail", |r| {
            run_phase(r) == "Failed"
        })
        .await?;
        let message = r#"Metric "smoke" assessed Failed due to failed (1) > failureLimit (0)"#;
        ensure!(run["status"]["message"] == message, "{}", run_summary(&run));
        let jobs = analysis_jobs(ctx).await?;
        let failed = jobs.iter().any(|j| {
            j.status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten())
                .any(|c| c.type_ == "Failed")
        });
        ensure!(failed, "the analysis Job failed");
        aborted(ctx, &v1, &v2, message).await?;
        Ok(())
    })
    .await
}

async fn inconclusive_analysis_pauses_until_promoted(ctx: TestContext) -> Result<()> {
    let server = HttpServer::start().await?;
    server.set("/rate", 200, "application/json", r#"{"rate": 0.7}"#);
    let ctx = &ctx;
    ctx.install_crds().await?;
    template(
        ctx,
        "gray",
        json!([{"name": "service-name"}]),
        json!({
            "name": "rate",
            "successCondition": "result >= 0.95",
            "failureCondition": "result < 0.5",
            "provider": {"web": {"url": server.url("/rate?service={{args.service-name}}"), "jsonPath": "{$.rate}"}}
        }),
    )
    .await?;
    let steps = json!([{"setWeight": 34}, {"analysis": analysis_ref("gray")}, {"setWeight": 67}]);
    let (ctl, v1) = healthy(ctx, json!({"steps": steps})).await?;
    with_log(&ctl, async {
        let v2 = update(ctx, &v1).await?;
        let run = wait_run(ctx, "the analysis to be inconclusive", |r| run_phase(r) == "Inconclusive").await?;
        ensure!(
            run["status"]["message"]
                == r#"Metric "rate" assessed Inconclusive due to inconclusive (1) > inconclusiveLimit (0)"#,
            "{}",
            run_summary(&run)
        );
        let r = ro::wait_for(ctx, "web", T, "the InconclusiveAnalysisRun pause", |r| {
            ro::phase(r) == "Paused"
                && r["status"]["pauseConditions"][0]["reason"] == "InconclusiveAnalysisRun"
        })
        .await?;
        ensure!(r["status"]["controllerPause"] == true, "{}", ro::summary(&r));
        ensure!(ro::step(&r) == 1, "{}", ro::summary(&r));
        // It stays paused (no new run, no progress) until a person decides.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let r = ro::get(ctx, "web").await?;
        ensure!(ro::phase(&r) == "Paused" && ro::step(&r) == 1, "{}", ro::summary(&r));
        ensure!(runs(ctx).await?.len() == 1, "no second run while paused");
        ro::wait_sizes(ctx, &[(&v1, 2), (&v2, 1)], T).await?;
        // `kubectl argo rollouts promote` on an inconclusive step: clear the pause and the
        // controller pause, and move to the next step (the CLI's patch).
        ro::patch_status(
            ctx,
            "web",
            json!({"status": {"pauseConditions": null, "controllerPause": false, "currentStepIndex": 2}}),
        )
        .await?;
        promoted(ctx, &v2).await?;
        Ok(())
    })
    .await
}

async fn secret_arguments_are_redacted(ctx: TestContext) -> Result<()> {
    const SECRET: &str = "s3cr3t-t0ken-e2e";
    let server = HttpServer::start().await?;
    server.set("/check", 200, "application/json", r#"{"ok": true}"#);
    let closed = e2e::controller::free_port()?;
    let ctx = &ctx;
    ctx.install_crds().await?;
    let ctl = Controller::start(ctx, Options::default()).await?;
    with_log(&ctl, async {
        ro::apply(
            ctx,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                "stringData": {"token": SECRET}}),
        )
        .await?;
        ro::apply(
            ctx,
            json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
                "metadata": {"name": "secret-check"},
                "spec": {
                    "args": [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
                    "metrics": [
                        {"name": "live", "successCondition": "result == true",
                         "provider": {"web": {"url": server.url("/check?token={{args.token}}"), "jsonPath": "{$.ok}"}}},
                        {"name": "dead", "consecutiveErrorLimit": 0,
                         "provider": {"web": {"url": format!("http://127.0.0.1:{closed}/check?token={{{{args.token}}}}")}}}
                    ]
                }
            }),
        )
        .await?;
        let run = wait_run(ctx, "the run to error", |r| run_phase(r) == "Error").await?;
        // The secret was sent to the server...
        ensure!(
            server.requests().iter().any(|r| r == &format!("/check?token={SECRET}")),
            "{:?}",
            server.requests()
        );
        // ... and shows nowhere: status, Events, log.
        let text = run.to_string();
        ensure!(!text.contains(SECRET), "the secret is in the run: {text}");
        let message = run["status"]["message"].as_str().unwrap_or_default();
        ensure!(
            message.starts_with(r#"Metric "dead" assessed Error due to consecutiveErrors (1) > consecutiveErrorLimit (0): "Error Message: Get "http://127.0.0.1:"#)
                && message.contains("/check?token=*****"),
            "{message}"
        );
        let events = run_events(ctx, "secret-check").await?;
        ensure!(
            events.iter().any(|(r, _)| r == "AnalysisRunError"),
            "{events:?}"
        );
        ensure!(!format!("{events:?}").contains(SECRET), "{events:?}");
        ensure!(!ctl.log().contains(SECRET), "the secret is in the controller log");
        Ok(())
    })
    .await
}

async fn blue_green_pre_promotion_failure_keeps_the_active_service(ctx: TestContext) -> Result<()> {
    let server = HttpServer::start().await?;
    server.set("/rate", 200, "application/json", r#"{"rate": 0.2}"#);
    let ctx = &ctx;
    ctx.install_crds().await?;
    template(
        ctx,
        "pre-check",
        json!([{"name": "service-name"}]),
        json!({
            "name": "rate",
            "successCondition": "result >= 0.95",
            "provider": {"web": {"url": server.url("/rate?service={{args.service-name}}"), "jsonPath": "{$.rate}"}}
        }),
    )
    .await?;
    let ctl = Controller::start(ctx, Options::default()).await?;
    with_log(&ctl, async {
        ro::apply(ctx, ro::service("web-active", "web")).await?;
        ro::apply(ctx, ro::service("web-preview", "web")).await?;
        let mut rollout = ro::canary_rollout("web", 2, "registry.invalid/web:1", json!({}));
        rollout["spec"]["strategy"] = json!({"blueGreen": {
            "activeService": "web-active", "previewService": "web-preview", "autoPromotionEnabled": true,
            "prePromotionAnalysis": {"templates": [{"templateName": "pre-check"}],
                "args": [{"name": "service-name", "value": "web-preview"}]}
        }});
        ro::apply(ctx, rollout).await?;
        let r = ro::wait_for(ctx, "web", T, "the initial deploy to be Healthy", ro::healthy).await?;
        let v1 = r["status"]["stableRS"].as_str().unwrap_or_default().to_string();
        ro::set_image(ctx, "web", "registry.invalid/web:2").await?;
        let run = wait_run(ctx, "the pre-promotion analysis to fail", |r| {
            is_type(r, "PrePromotion") && run_phase(r) == "Failed"
        })
        .await?;
        let name = run["metadata"]["name"].as_str().unwrap_or_default();
        ensure!(name.ends_with("-2-pre"), "{name}");
        let r = ro::wait_for(ctx, "web", T, "the rollout to abort", |r| {
            r["status"]["abort"] == true
                && r["status"]["message"].as_str().is_some_and(|m| {
                    m.contains("Blue/green pre-promotion analysis phase error/failed")
                })
        })
        .await?;
        ensure!(r["status"]["stableRS"] == v1.as_str(), "{}", ro::summary(&r));
        ensure!(r["status"]["blueGreen"]["activeSelector"] == v1.as_str(), "{}", r["status"]["blueGreen"]);
        ensure!(
            ro::selector_hash(ctx, "web-active").await?.as_deref() == Some(v1.as_str()),
            "the active Service stays on the old revision"
        );
        // And it stays there.
        tokio::time::sleep(Duration::from_secs(3)).await;
        ensure!(ro::selector_hash(ctx, "web-active").await?.as_deref() == Some(v1.as_str()));
        Ok(())
    })
    .await
}

async fn blue_green_post_promotion_analysis_makes_the_new_revision_stable(
    ctx: TestContext,
) -> Result<()> {
    let server = HttpServer::start().await?;
    server.set("/rate", 200, "application/json", r#"{"rate": 0.99}"#);
    let ctx = &ctx;
    ctx.install_crds().await?;
    template(
        ctx,
        "post-check",
        json!([{"name": "service-name"}]),
        json!({
            "name": "rate", "count": 2, "interval": "1s",
            "successCondition": "result >= 0.95",
            "provider": {"web": {"url": server.url("/rate?service={{args.service-name}}"), "jsonPath": "{$.rate}"}}
        }),
    )
    .await?;
    let ctl = Controller::start(ctx, Options::default()).await?;
    with_log(&ctl, async {
        ro::apply(ctx, ro::service("web-active", "web")).await?;
        ro::apply(ctx, ro::service("web-preview", "web")).await?;
        let mut rollout = ro::canary_rollout("web", 2, "registry.invalid/web:1", json!({}));
        rollout["spec"]["strategy"] = json!({"blueGreen": {
            "activeService": "web-active", "previewService": "web-preview", "autoPromotionEnabled": true,
            "postPromotionAnalysis": {"templates": [{"templateName": "post-check"}],
                "args": [{"name": "service-name", "value": "web-active"}]}
        }});
        ro::apply(ctx, rollout).await?;
        let r = ro::wait_for(ctx, "web", T, "the initial deploy to be Healthy", ro::healthy).await?;
        let v1 = r["status"]["stableRS"].as_str().unwrap_or_default().to_string();
        ro::set_image(ctx, "web", "registry.invalid/web:2").await?;
        let run = wait_run(ctx, "the post-promotion analysis to succeed", |r| {
            is_type(r, "PostPromotion") && run_phase(r) == "Successful"
        })
        .await?;
        let name = run["metadata"]["name"].as_str().unwrap_or_default().to_string();
        ensure!(name.ends_with("-2-post"), "{name}");
        ensure!(
            server.requests().iter().any(|r| r == "/rate?service=web-active"),
            "{:?}",
            server.requests()
        );
        let r = ro::wait_for(ctx, "web", T, "the new revision to become stable", |r| {
            ro::healthy(r) && r["status"]["stableRS"] != v1.as_str()
        })
        .await?;
        let v2 = r["status"]["stableRS"].as_str().unwrap_or_default();
        ensure!(ro::selector_hash(ctx, "web-active").await?.as_deref() == Some(v2));
        ensure!(
            r["status"]["blueGreen"]["postPromotionAnalysisRunStatus"]["status"] == "Successful",
            "{}",
            r["status"]["blueGreen"]
        );
        ro::wait_event(
            ctx,
            "web",
            "AnalysisRunSuccessful",
            &format!("PostPromotion Analysis Run '{name}' Status New: 'Successful'"),
            T,
        )
        .await?;
        Ok(())
    })
    .await
}

async fn the_analysis_controller_runs_alone(ctx: TestContext) -> Result<()> {
    let server = HttpServer::start().await?;
    server.set("/ok", 200, "application/json", "1");
    let ctx = &ctx;
    ctx.install_crds().await?;
    let ctl = Controller::start(
        ctx,
        Options {
            extra: vec!["--controllers=analysis".into()],
            ..Options::default()
        },
    )
    .await?;
    with_log(&ctl, async {
        ro::apply(ctx, ro::canary_rollout("idle", 1, "registry.invalid/web:1", json!({}))).await?;
        ro::apply(
            ctx,
            json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
                "metadata": {"name": "alone"},
                "spec": {"metrics": [{"name": "up", "count": 2, "interval": "1s", "successCondition": "result == 1",
                    "provider": {"web": {"url": server.url("/ok")}}}]}
            }),
        )
        .await?;
        let run = wait_run(ctx, "the run to succeed", |r| run_phase(r) == "Successful").await?;
        ensure!(run["status"]["metricResults"][0]["count"] == 2, "{}", run_summary(&run));
        // The gauges follow the run once the controller's cache has seen its final status,
        // which can be a moment after the API server has it.
        let metrics = wait::until(T, "the run's phase in /metrics", || async {
            let m = ctl.metrics().await?;
            Ok::<_, anyhow::Error>(m.contains(r#"phase="Successful"} 1"#).then_some(m))
        })
        .await?;
        for line in [
            r#"analysis_run_info{name="alone","#,
            r#"analysis_run_metric_type{metric="up",name="alone","#,
            "analysis_run_reconcile_count{",
        ] {
            ensure!(metrics.contains(line), "missing {line} in /metrics");
        }
        ensure!(
            metrics.contains(r#"phase="Successful"} 1"#),
            "the run's phase is reported"
        );
        let idle = ro::get(ctx, "idle").await?;
        if !idle["status"].is_null() {
            bail!("the Rollout controller is not running, yet `idle` has a status: {}", idle["status"]);
        }
        Ok(())
    })
    .await
}
