//! The `job` metric provider against the test cluster: a real AnalysisRun owns a real Job that
//! the provider creates, follows to completion (Successful) or failure (Failed, through the KWOK
//! fail label), terminates and garbage-collects.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, Result, bail, ensure};
use e2e::{FAIL_LABEL, Test, TestContext, wait};
use k8s_openapi::api::batch::v1::Job;
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use rollouts_api::{AnalysisRun, Measurement, Metric};
use rollouts_metric_job::{JOB_NAME_KEY, JOB_NAMESPACE_KEY, JobProvider};
use rollouts_plugin::{MeasureRequest, MetricProvider, Observation, Verdict};
use serde_json::json;

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(a_job_that_completes_is_successful),
        e2e::test!(a_job_that_fails_is_failed_and_is_collected),
    ]
}

fn metric(name: &str, fail: bool) -> Result<Metric> {
    let mut pod_labels = json!({"app": "analysis"});
    if fail {
        pod_labels[FAIL_LABEL] = json!("true");
    }
    serde_json::from_value(json!({
        "name": name,
        "provider": {"job": {
            "metadata": {"labels": {"team": "e2e"}},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"labels": pod_labels},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "check", "image": "registry.invalid/check:1"}]
                    }
                }
            }
        }}
    }))
    .context("metric")
}

/// A real AnalysisRun (the Job's owner must exist, or the garbage collector deletes the Job).
async fn analysis_run(ctx: &TestContext, metric: &Metric) -> Result<AnalysisRun> {
    ctx.install_crds().await?;
    let run: AnalysisRun = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "job-analysis", "namespace": ctx.namespace},
        "spec": {"metrics": [metric]}
    }))?;
    Ok(
        Api::<AnalysisRun>::namespaced(ctx.client.clone(), &ctx.namespace)
            .create(&PostParams::default(), &run)
            .await?,
    )
}

/// Runs the measurement and resumes it until the provider decides.
async fn measure_to_the_end(
    provider: &JobProvider,
    run: &AnalysisRun,
    metric: &Metric,
) -> Result<(Measurement, Observation)> {
    let request = MeasureRequest {
        run,
        metric,
        now: jiff::Timestamp::now(),
    };
    let started = provider.run(request).await;
    let Observation::InProgress { metadata, .. } = &started else {
        bail!("run should leave the measurement in progress, got {started:?}");
    };
    let measurement = Measurement {
        phase: "Running".into(),
        started_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            request.now,
        )),
        metadata: Some(metadata.clone()),
        ..Measurement::default()
    };
    let outcome = wait::until(Duration::from_secs(90), "the job to finish", || {
        let measurement = measurement.clone();
        async move {
            let request = MeasureRequest {
                run,
                metric,
                now: jiff::Timestamp::now(),
            };
            match provider.resume(request, &measurement).await {
                Observation::InProgress { .. } => Ok::<_, String>(None),
                Observation::Error { message, .. } => Err(message),
                decided => Ok(Some(decided)),
            }
        }
    })
    .await?;
    Ok((measurement, outcome))
}

async fn a_job_that_completes_is_successful(ctx: TestContext) -> Result<()> {
    let metric = metric("smoke", false)?;
    let run = analysis_run(&ctx, &metric).await?;
    let uid = run.metadata.uid.clone().context("the run has a uid")?;
    let provider = JobProvider::new(ctx.client.clone(), None);
    let (measurement, outcome) = measure_to_the_end(&provider, &run, &metric).await?;
    let metadata = measurement.metadata.clone().unwrap_or_default();
    ensure!(
        matches!(
            outcome,
            Observation::Decided {
                verdict: Verdict::Successful,
                ..
            }
        ),
        "a completed Job is a Successful measurement, got {outcome:?}"
    );
    let name = format!("{uid}.smoke.1");
    ensure!(
        metadata
            == BTreeMap::from([
                (JOB_NAME_KEY.to_string(), name.clone()),
                (JOB_NAMESPACE_KEY.to_string(), ctx.namespace.clone()),
            ]),
        "measurement metadata {metadata:?}"
    );
    let job = Api::<Job>::namespaced(ctx.client.clone(), &ctx.namespace)
        .get(&name)
        .await?;
    let labels = job.metadata.labels.clone().unwrap_or_default();
    ensure!(
        labels.get("analysisrun.argoproj.io/uid") == Some(&uid),
        "labels {labels:?}"
    );
    ensure!(
        labels.get("team").map(String::as_str) == Some("e2e"),
        "labels {labels:?}"
    );
    let annotations = job.metadata.annotations.clone().unwrap_or_default();
    ensure!(
        annotations
            .get("analysisrun.argoproj.io/name")
            .map(String::as_str)
            == Some("job-analysis")
            && annotations
                .get("analysisrun.argoproj.io/metric-name")
                .map(String::as_str)
                == Some("smoke"),
        "annotations {annotations:?}"
    );
    let owner = job
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .context("the Job has a controller owner")?;
    ensure!(
        owner.kind == "AnalysisRun" && owner.uid == uid,
        "owner {owner:?}"
    );

    // Running the same measurement again adopts the Job it already created.
    let again = provider
        .run(MeasureRequest {
            run: &run,
            metric: &metric,
            now: jiff::Timestamp::now(),
        })
        .await;
    ensure!(
        matches!(&again, Observation::InProgress { metadata: m, .. } if m.get(JOB_NAME_KEY) == Some(&name)),
        "a second run adopts the run's own Job, got {again:?}"
    );
    Ok(())
}

async fn a_job_that_fails_is_failed_and_is_collected(ctx: TestContext) -> Result<()> {
    let metric = metric("failing", true)?;
    let run = analysis_run(&ctx, &metric).await?;
    let provider = JobProvider::new(ctx.client.clone(), None);
    let (measurement, outcome) = measure_to_the_end(&provider, &run, &metric).await?;
    ensure!(
        matches!(
            outcome,
            Observation::Decided {
                verdict: Verdict::Failed,
                ..
            }
        ),
        "a failed Job is a Failed measurement, got {outcome:?}"
    );

    // Terminating deletes the Job; the measurement ends Inconclusive.
    let terminated = provider
        .terminate(
            MeasureRequest {
                run: &run,
                metric: &metric,
                now: jiff::Timestamp::now(),
            },
            &measurement,
        )
        .await;
    ensure!(
        matches!(
            terminated,
            Observation::Decided {
                verdict: Verdict::Inconclusive,
                ..
            }
        ),
        "terminate ends the measurement Inconclusive, got {terminated:?}"
    );
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let selector = format!(
        "analysisrun.argoproj.io/uid={}",
        run.metadata.uid.clone().unwrap_or_default()
    );
    wait::until(
        Duration::from_secs(60),
        "the terminated Job to be deleted",
        || {
            let jobs = jobs.clone();
            let selector = selector.clone();
            async move {
                let left = jobs.list(&ListParams::default().labels(&selector)).await?;
                Ok::<_, kube::Error>(left.items.is_empty().then_some(()))
            }
        },
    )
    .await?;

    // Garbage collection keeps the newest `limit` Jobs of the run.
    let second = provider
        .run(MeasureRequest {
            run: &run,
            metric: &metric,
            now: jiff::Timestamp::now(),
        })
        .await;
    ensure!(
        matches!(second, Observation::InProgress { .. }),
        "{second:?}"
    );
    provider
        .garbage_collect(&run, &metric, 1)
        .await
        .context("garbage collection with room for one Job")?;
    let left = jobs.list(&ListParams::default().labels(&selector)).await?;
    ensure!(
        left.items.len() == 1,
        "one Job is kept, found {}",
        left.items.len()
    );
    provider.garbage_collect(&run, &metric, 0).await?;
    wait::until(
        Duration::from_secs(60),
        "the collected Job to be deleted",
        || {
            let jobs = jobs.clone();
            let selector = selector.clone();
            async move {
                let left = jobs.list(&ListParams::default().labels(&selector)).await?;
                Ok::<_, kube::Error>(left.items.is_empty().then_some(()))
            }
        },
    )
    .await?;
    Ok(())
}
