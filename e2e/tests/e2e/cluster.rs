//! The test cluster itself: API server version, Deployments that become Ready, Jobs that
//! complete, and Jobs that fail through the `rollouts-e2e/fail` label.

use std::{collections::BTreeSet, time::Duration};

use anyhow::{Context, Result, bail, ensure};
use e2e::{FAIL_LABEL, Test, TestContext, wait};
use k8s_openapi::api::{
    apps::v1::Deployment,
    batch::v1::Job,
    core::v1::{Node, Pod},
};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use serde_json::json;

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(api_server_is_ready_and_reports_1_34),
        e2e::test!(nodes_are_ready),
        e2e::test!(deployment_reaches_three_ready_pods_with_ips),
        e2e::test!(job_completes),
        e2e::test!(job_with_fail_label_fails),
    ]
}

async fn api_server_is_ready_and_reports_1_34(ctx: TestContext) -> Result<()> {
    let readyz = ctx
        .client
        .request_text(
            http::Request::get("/readyz")
                .body(Vec::new())
                .context("building the request")?,
        )
        .await
        .context("GET /readyz")?;
    ensure!(readyz.trim() == "ok", "/readyz says {readyz:?}");
    let version = ctx.client.apiserver_version().await?;
    ensure!(
        version.git_version.starts_with("v1.34."),
        "the API server reports {} (expected v1.34.x)",
        version.git_version
    );
    ensure!(
        (version.major.as_str(), version.minor.as_str()) == ("1", "34"),
        "/version says major {:?} minor {:?}",
        version.major,
        version.minor
    );
    Ok(())
}

async fn nodes_are_ready(ctx: TestContext) -> Result<()> {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let list = nodes.list(&ListParams::default()).await?;
    ensure!(!list.items.is_empty(), "the cluster has no nodes");
    for node in &list.items {
        let name = node.metadata.name.as_deref().unwrap_or("?");
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.as_str());
        ensure!(ready == Some("True"), "node {name} is not Ready: {ready:?}");
    }
    Ok(())
}

fn deployment(name: &str, replicas: i32) -> Result<Deployment> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]}
            }
        }
    }))?)
}

async fn deployment_reaches_three_ready_pods_with_ips(ctx: TestContext) -> Result<()> {
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.create(&PostParams::default(), &deployment("web", 3)?)
        .await?;
    wait::until(
        Duration::from_secs(90),
        "Deployment web to have 3/3 ready replicas",
        || async {
            let d = api.get("web").await?;
            let status = d.status.unwrap_or_default();
            Ok::<_, kube::Error>(
                (status.ready_replicas == Some(3) && status.available_replicas == Some(3))
                    .then_some(()),
            )
        },
    )
    .await?;

    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let list = pods.list(&ListParams::default().labels("app=web")).await?;
    ensure!(
        list.items.len() == 3,
        "expected 3 pods, found {}",
        list.items.len()
    );
    let mut ips = BTreeSet::new();
    for pod in &list.items {
        let name = pod.metadata.name.as_deref().unwrap_or("?");
        let status = pod.status.as_ref().context("pod without status")?;
        ensure!(
            status.phase.as_deref() == Some("Running"),
            "pod {name} is {:?}",
            status.phase
        );
        let ready = status
            .conditions
            .as_ref()
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.as_str());
        ensure!(ready == Some("True"), "pod {name} is not Ready: {ready:?}");
        let ip = status
            .pod_ip
            .as_deref()
            .filter(|ip| !ip.is_empty())
            .with_context(|| format!("pod {name} has no pod IP"))?;
        ensure!(
            ip.parse::<std::net::IpAddr>().is_ok(),
            "pod {name} has pod IP {ip:?}"
        );
        ensure!(
            pod.spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some(),
            "pod {name} is not scheduled"
        );
        ips.insert(ip.to_string());
    }
    ensure!(ips.len() == 3, "pod IPs are not distinct: {ips:?}");
    Ok(())
}

fn job(name: &str, fail: bool) -> Result<Job> {
    let mut labels = json!({"job": name});
    if fail {
        labels[FAIL_LABEL] = json!("true");
    }
    Ok(serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "registry.invalid/job:1"}]
                }
            }
        }
    }))?)
}

/// Waits until the Job has condition `Complete` or `Failed` set to True, and returns which.
async fn job_outcome(api: &Api<Job>, name: &str) -> Result<String> {
    wait::until(
        Duration::from_secs(90),
        &format!("Job {name} to finish"),
        || async {
            let job = api.get(name).await?;
            let finished = job
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .into_iter()
                .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
                .map(|c| c.type_);
            Ok::<_, kube::Error>(finished)
        },
    )
    .await
}

async fn job_completes(ctx: TestContext) -> Result<()> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.create(&PostParams::default(), &job("ok", false)?)
        .await?;
    let outcome = job_outcome(&api, "ok").await?;
    ensure!(outcome == "Complete", "Job ok ended {outcome}");
    let status = api.get("ok").await?.status.unwrap_or_default();
    ensure!(
        status.succeeded == Some(1),
        "succeeded = {:?}",
        status.succeeded
    );
    Ok(())
}

async fn job_with_fail_label_fails(ctx: TestContext) -> Result<()> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.create(&PostParams::default(), &job("doomed", true)?)
        .await?;
    let outcome = job_outcome(&api, "doomed").await?;
    ensure!(outcome == "Failed", "Job doomed ended {outcome}");

    // The pod failed the way a container that exits 1 does.
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let list = pods
        .list(&ListParams::default().labels("job=doomed"))
        .await?;
    let Some(pod) = list.items.first() else {
        bail!("the failed Job has no pod left to inspect");
    };
    let status = pod.status.as_ref().context("pod without status")?;
    ensure!(
        status.phase.as_deref() == Some("Failed"),
        "pod phase {:?}",
        status.phase
    );
    let exit_code = status
        .container_statuses
        .as_ref()
        .and_then(|cs| cs.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .map(|t| t.exit_code);
    ensure!(exit_code == Some(1), "container exit code {exit_code:?}");
    Ok(())
}
