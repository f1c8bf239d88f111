//! The `job` metric provider: a Kubernetes `batch/v1` Job whose outcome is the measurement.
//!
//! ```yaml
//! provider:
//!   job:
//!     metadata: {labels: {team: checkout}, annotations: {note: smoke}}
//!     spec:                       # a batch/v1 JobSpec
//!       backoffLimit: 0
//!       template:
//!         spec:
//!           restartPolicy: Never
//!           containers: [{name: smoke, image: curlimages/curl, args: [http://checkout/health]}]
//! ```
//!
//! As in Argo:
//!
//! - **run** creates the Job `<run uid>.<metric>.<n>` (n = measurements so far + 1; the metric
//!   name is shortened when the name would exceed 63 characters) in the run's namespace, labelled
//!   `analysisrun.argoproj.io/uid` (the pods too), annotated with the run's name, namespace and
//!   metric, and owned by the AnalysisRun. The measurement is in progress, with the Job's name and
//!   namespace in its metadata (`job-name`, `job-namespace`), and is resumed at once.
//! - **resume** reads the Job: a `Complete` condition makes the measurement Successful, `Failed`
//!   makes it Failed; a pod stuck on `ErrImagePull`, `ImagePullBackOff` or `InvalidImageName`
//!   makes it Inconclusive; otherwise it looks again after √(2·elapsed seconds).
//! - **terminate** deletes the Job (foreground) and ends the measurement Inconclusive.
//! - **garbage collection** deletes the run's oldest Jobs beyond the limit.
//!
//! `ARGO_ROLLOUTS_ANALYSIS_JOB_NAMESPACE` puts the Jobs in another namespace, and
//! `ARGO_ROLLOUTS_ANALYSIS_JOB_KUBECONFIG` (`in-cluster` or a kubeconfig path) in another cluster;
//! then the Jobs have no owner reference (an owner must live in the same namespace and cluster).

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use jiff::Timestamp;
use k8s_openapi::{
    api::{batch::v1::Job, core::v1::Pod},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use kube::{
    Api,
    api::{DeleteParams, ListParams, PostParams, PropagationPolicy},
};
use rollouts_api::{AnalysisRun, Measurement, Metric, labels};
use rollouts_plugin::{
    MeasureRequest, MetricProvider, MetricProviderPlugin, Observation, PluginError, ProviderInit,
    Verdict,
};
use tokio::sync::OnceCell;

/// The registry name: the JSON key of the provider block.
pub const NAME: &str = "job";
/// Measurement metadata key of the Job's name.
pub const JOB_NAME_KEY: &str = "job-name";
/// Measurement metadata key of the Job's namespace.
pub const JOB_NAMESPACE_KEY: &str = "job-namespace";
/// Environment variable: the namespace to create analysis Jobs in.
pub const NAMESPACE_ENV: &str = "ARGO_ROLLOUTS_ANALYSIS_JOB_NAMESPACE";
/// Environment variable: `in-cluster` or the path of a kubeconfig for the cluster of the Jobs.
pub const KUBECONFIG_ENV: &str = "ARGO_ROLLOUTS_ANALYSIS_JOB_KUBECONFIG";
/// Longest Job name Kubernetes accepts (it becomes a label value).
const NAME_LIMIT: usize = 63;
/// Container waiting reasons that a Job never recovers from on its own.
const TERMINAL_REASONS: [&str; 3] = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"];

/// What can go wrong with a Job measurement; each message is the one Argo records.
#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error("metric {0:?} has no provider.job block")]
    NoBlock(String),
    #[error("job metadata reference missing")]
    MetadataMissing,
    #[error("{0}")]
    Kube(String),
    #[error("loading {KUBECONFIG_ENV}={path}: {message}")]
    Kubeconfig { path: String, message: String },
}

/// The text Argo shows for an API error: the Status message (`jobs.batch "x" not found`).
fn kube_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

/// The name of measurement number `id` of `metric` in the run with `uid`, shortened as Argo does.
pub fn job_name(uid: &str, metric: &str, id: i64) -> String {
    let name = format!("{uid}.{metric}.{id}");
    if name.len() <= NAME_LIMIT {
        return name;
    }
    let over = name.len() - NAME_LIMIT;
    let mut keep = metric.len().saturating_sub(over);
    while !metric.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{uid}.{}.{id}", &metric[..keep])
}

/// Measurements ever taken of `metric` + 1: the suffix of the next Job's name.
fn next_id(run: &AnalysisRun, metric: &str) -> i64 {
    run.status
        .as_ref()
        .and_then(|s| s.metric_results.as_ref())
        .and_then(|results| results.iter().find(|r| r.name == metric))
        .map_or(1, |r| {
            i64::from(r.count.unwrap_or(0)) + i64::from(r.error.unwrap_or(0)) + 1
        })
}

/// Builds the Job for a measurement of `metric` (Argo's `newMetricJob`). `namespace` overrides the
/// run's namespace; with another namespace or `custom_cluster`, the Job has no owner reference.
pub fn new_job(
    run: &AnalysisRun,
    metric: &Metric,
    namespace: Option<&str>,
    custom_cluster: bool,
) -> Result<Job, String> {
    let spec = metric
        .provider
        .job
        .as_ref()
        .ok_or_else(|| JobError::NoBlock(metric.name.clone()).to_string())?;
    let run_name = run.metadata.name.clone().unwrap_or_default();
    let run_namespace = run.metadata.namespace.clone().unwrap_or_default();
    let uid = run.metadata.uid.clone().unwrap_or_default();
    let job_namespace = namespace
        .filter(|n| !n.is_empty())
        .unwrap_or(&run_namespace)
        .to_string();

    let meta = spec.metadata.clone().unwrap_or_default();
    let mut job_labels = meta.labels.unwrap_or_default();
    job_labels.insert(labels::ANALYSIS_RUN_UID.to_string(), uid.clone());
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(labels::ANALYSIS_RUN_NAME.to_string(), run_name.clone());
    annotations.insert(
        labels::ANALYSIS_RUN_NAMESPACE.to_string(),
        run_namespace.clone(),
    );
    annotations.insert(
        labels::ANALYSIS_RUN_METRIC_NAME.to_string(),
        metric.name.clone(),
    );

    let mut job_spec = spec.spec.clone();
    let pod_meta = job_spec
        .template
        .metadata
        .get_or_insert_with(ObjectMeta::default);
    pod_meta
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(labels::ANALYSIS_RUN_UID.to_string(), uid.clone());

    let owner = (job_namespace == run_namespace && !custom_cluster).then(|| {
        vec![OwnerReference {
            api_version: rollouts_api::API_VERSION.to_string(),
            kind: "AnalysisRun".to_string(),
            name: run_name,
            uid: uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]
    });
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(job_name(&uid, &metric.name, next_id(run, &metric.name))),
            namespace: Some(job_namespace),
            labels: Some(job_labels),
            annotations: Some(annotations),
            owner_references: owner,
            ..ObjectMeta::default()
        },
        spec: Some(job_spec),
        status: None,
    })
}

/// Where the Jobs' client comes from.
enum Cluster {
    /// The controller's cluster.
    Own(kube::Client),
    /// `ARGO_ROLLOUTS_ANALYSIS_JOB_KUBECONFIG`: built on first use.
    Custom {
        kubeconfig: String,
        client: OnceCell<kube::Client>,
    },
}

/// The Job provider.
pub struct JobProvider {
    cluster: Cluster,
    namespace: Option<String>,
}

impl std::fmt::Debug for JobProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobProvider")
            .field(
                "custom_cluster",
                &matches!(self.cluster, Cluster::Custom { .. }),
            )
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl JobProvider {
    /// A provider that creates Jobs with `client`, in the run's namespace or in `namespace`.
    pub fn new(client: kube::Client, namespace: Option<String>) -> Self {
        Self {
            cluster: Cluster::Own(client),
            namespace: namespace.filter(|n| !n.is_empty()),
        }
    }

    fn custom_cluster(&self) -> bool {
        matches!(self.cluster, Cluster::Custom { .. })
    }

    async fn client(&self) -> Result<kube::Client, JobError> {
        match &self.cluster {
            Cluster::Own(client) => Ok(client.clone()),
            Cluster::Custom { kubeconfig, client } => client
                .get_or_try_init(|| async {
                    let fail = |message: String| JobError::Kubeconfig {
                        path: kubeconfig.clone(),
                        message,
                    };
                    let config = if kubeconfig == "in-cluster" {
                        kube::Config::incluster().map_err(|e| fail(e.to_string()))?
                    } else {
                        let file = kube::config::Kubeconfig::read_from(kubeconfig)
                            .map_err(|e| fail(e.to_string()))?;
                        kube::Config::from_custom_kubeconfig(file, &Default::default())
                            .await
                            .map_err(|e| fail(e.to_string()))?
                    };
                    kube::Client::try_from(config).map_err(|e| fail(e.to_string()))
                })
                .await
                .cloned(),
        }
    }

    async fn start(
        &self,
        run: &AnalysisRun,
        metric: &Metric,
        now: Timestamp,
    ) -> Result<Observation, JobError> {
        let job = new_job(
            run,
            metric,
            self.namespace.as_deref(),
            self.custom_cluster(),
        )
        .map_err(JobError::Kube)?;
        let namespace = job.metadata.namespace.clone().unwrap_or_default();
        let name = job.metadata.name.clone().unwrap_or_default();
        let jobs: Api<Job> = Api::namespaced(self.client().await?, &namespace);
        let created = match jobs.create(&PostParams::default(), &job).await {
            Ok(created) => created,
            Err(kube::Error::Api(status)) if status.is_already_exists() => {
                let create_message = status.message.clone();
                let existing = jobs
                    .get(&name)
                    .await
                    .map_err(|_| JobError::Kube(create_message.clone()))?;
                let run_uid = run.metadata.uid.clone().unwrap_or_default();
                let owner_uid = if job.metadata.owner_references.is_none() {
                    // No owner reference (other namespace or cluster): Argo reads the label of
                    // the Job it wanted to create, so any existing Job of that name is adopted.
                    job.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(labels::ANALYSIS_RUN_UID).cloned())
                        .unwrap_or_default()
                } else {
                    existing
                        .metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .find(|o| o.controller == Some(true))
                        .map(|o| o.uid.clone())
                        .unwrap_or_default()
                };
                if owner_uid != run_uid {
                    return Err(JobError::Kube(create_message));
                }
                tracing::info!(job = %name, "duplicate job create detected");
                existing
            }
            Err(err) => return Err(JobError::Kube(kube_message(&err))),
        };
        tracing::info!(namespace = %namespace, job = %name, "analysis job created");
        Ok(Observation::InProgress {
            resume_at: Some(now),
            metadata: BTreeMap::from([
                (
                    JOB_NAME_KEY.to_string(),
                    created.metadata.name.unwrap_or(name),
                ),
                (
                    JOB_NAMESPACE_KEY.to_string(),
                    created.metadata.namespace.unwrap_or(namespace),
                ),
            ]),
        })
    }

    async fn check(
        &self,
        run: &AnalysisRun,
        measurement: &Measurement,
        now: Timestamp,
    ) -> Result<Observation, JobError> {
        let (namespace, name) = job_reference(measurement, run)?;
        let client = self.client().await?;
        let job = Api::<Job>::namespaced(client.clone(), &namespace)
            .get(&name)
            .await
            .map_err(|e| JobError::Kube(kube_message(&e)))?;
        let mut verdict = None;
        for condition in job
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
        {
            match condition.type_.as_str() {
                "Complete" => verdict = Some(Verdict::Successful),
                "Failed" => verdict = Some(Verdict::Failed),
                _ => {}
            }
        }
        let metadata = measurement.metadata.clone().unwrap_or_default();
        if let Some(verdict) = verdict {
            tracing::info!(namespace = %namespace, job = %name, ?verdict, "analysis job completed");
            return Ok(Observation::Decided {
                verdict,
                value: None,
                message: None,
                metadata,
            });
        }
        let selector = job
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|s| s.match_labels.as_ref())
            .map(|labels| {
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_else(|| format!("job-name={name}"));
        let pods = Api::<Pod>::namespaced(client, &namespace)
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| JobError::Kube(kube_message(&e)))?;
        if let Some(message) = terminal_pod_error(&pods.items) {
            return Ok(Observation::Decided {
                verdict: Verdict::Inconclusive,
                value: None,
                message: Some(message),
                metadata,
            });
        }
        let started = measurement
            .started_at
            .as_ref()
            .and_then(|t| Timestamp::from_second(t.0.as_second()).ok())
            .unwrap_or(now);
        let elapsed = now.duration_since(started).as_secs_f64().max(0.0);
        let delay = Duration::from_secs_f64((2.0 * elapsed).sqrt());
        Ok(Observation::InProgress {
            resume_at: Some(now.checked_add(delay).unwrap_or(now)),
            metadata,
        })
    }

    async fn stop(
        &self,
        run: &AnalysisRun,
        measurement: &Measurement,
    ) -> Result<Observation, JobError> {
        let (namespace, name) = job_reference(measurement, run)?;
        self.delete(&namespace, &name).await?;
        tracing::info!(namespace = %namespace, job = %name, "analysis job terminated");
        Ok(Observation::Decided {
            verdict: Verdict::Inconclusive,
            value: None,
            message: Some("Metric Terminated".to_string()),
            metadata: measurement.metadata.clone().unwrap_or_default(),
        })
    }

    async fn delete(&self, namespace: &str, name: &str) -> Result<(), JobError> {
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            ..DeleteParams::default()
        };
        match Api::<Job>::namespaced(self.client().await?, namespace)
            .delete(name, &params)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
            Err(err) => Err(JobError::Kube(kube_message(&err))),
        }
    }
}

/// Argo's message for the first container that cannot start, with its trailing newline.
fn terminal_pod_error(pods: &[Pod]) -> Option<String> {
    pods.iter().find_map(|pod| {
        let status = pod.status.as_ref()?;
        status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten())
            .find_map(|c| {
                let waiting = c.state.as_ref()?.waiting.as_ref()?;
                let reason = waiting.reason.as_deref()?;
                TERMINAL_REASONS.contains(&reason).then(|| {
                    format!(
                        "Pod {}, container {} has terminal error ({reason}): {}\n",
                        pod.metadata.name.as_deref().unwrap_or_default(),
                        c.name,
                        waiting.message.as_deref().unwrap_or_default()
                    )
                })
            })
    })
}

/// The Job a measurement refers to: its metadata, the namespace defaulting to the run's.
fn job_reference(
    measurement: &Measurement,
    run: &AnalysisRun,
) -> Result<(String, String), JobError> {
    let metadata = measurement
        .metadata
        .as_ref()
        .ok_or(JobError::MetadataMissing)?;
    let name = metadata
        .get(JOB_NAME_KEY)
        .filter(|n| !n.is_empty())
        .ok_or(JobError::MetadataMissing)?;
    let namespace = metadata
        .get(JOB_NAMESPACE_KEY)
        .filter(|n| !n.is_empty())
        .cloned()
        .or_else(|| run.metadata.namespace.clone())
        .unwrap_or_default();
    Ok((namespace, name.clone()))
}

fn or_error(outcome: Result<Observation, JobError>, what: &str) -> Observation {
    outcome.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "analysis job {what} failed");
        Observation::error(err.to_string())
    })
}

#[async_trait]
impl MetricProvider for JobProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn run(&self, request: MeasureRequest<'_>) -> Observation {
        or_error(
            self.start(request.run, request.metric, request.now).await,
            "create",
        )
    }

    async fn resume(&self, request: MeasureRequest<'_>, in_flight: &Measurement) -> Observation {
        or_error(
            self.check(request.run, in_flight, request.now).await,
            "check",
        )
    }

    async fn terminate(&self, request: MeasureRequest<'_>, in_flight: &Measurement) -> Observation {
        or_error(self.stop(request.run, in_flight).await, "termination")
    }

    async fn garbage_collect(
        &self,
        run: &AnalysisRun,
        _metric: &Metric,
        limit: usize,
    ) -> Result<(), PluginError> {
        let kube = |action: String| {
            move |source| PluginError::Kube {
                plugin: NAME,
                action,
                source,
            }
        };
        let client = self.client().await.map_err(|e| PluginError::Other {
            plugin: NAME,
            message: e.to_string(),
        })?;
        let namespace = self
            .namespace
            .clone()
            .or_else(|| run.metadata.namespace.clone())
            .unwrap_or_default();
        let uid = run.metadata.uid.clone().unwrap_or_default();
        let selector = format!("{}={uid}", labels::ANALYSIS_RUN_UID);
        let mut jobs = Api::<Job>::namespaced(client, &namespace)
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(kube(format!("listing the jobs of analysis run {uid}")))?
            .items;
        if jobs.len() <= limit {
            return Ok(());
        }
        jobs.sort_by_key(|j| j.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let excess = jobs.len() - limit;
        for job in jobs.into_iter().take(excess) {
            let name = job.metadata.name.unwrap_or_default();
            self.delete(&namespace, &name)
                .await
                .map_err(|e| PluginError::Other {
                    plugin: NAME,
                    message: e.to_string(),
                })?;
        }
        Ok(())
    }
}

fn build(init: &ProviderInit) -> Result<Box<dyn MetricProvider>, PluginError> {
    let namespace = std::env::var(NAMESPACE_ENV).ok().filter(|n| !n.is_empty());
    if let Some(kubeconfig) = std::env::var(KUBECONFIG_ENV).ok().filter(|k| !k.is_empty()) {
        return Ok(Box::new(JobProvider {
            cluster: Cluster::Custom {
                kubeconfig,
                client: OnceCell::new(),
            },
            namespace,
        }));
    }
    let client = init.client.clone().ok_or_else(|| PluginError::Config {
        plugin: NAME,
        message: "the job provider needs a Kubernetes client".to_string(),
    })?;
    Ok(Box::new(JobProvider::new(client, namespace)))
}

rollouts_plugin::register_metric_provider!(MetricProviderPlugin {
    name: NAME,
    summary: "a Kubernetes Job; its success or failure is the measurement (Argo's job provider)",
    build,
});

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const UID: &str = "7d2c1f0e-5b7a-4e2b-9a43-0c1d2e3f4a5b";

    fn run(results: serde_json::Value) -> AnalysisRun {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisRun",
            "metadata": {"name": "checkout-abc-2", "namespace": "shop", "uid": UID},
            "spec": {"metrics": []},
            "status": {"phase": "Running", "metricResults": results}
        }))
        .unwrap()
    }

    fn metric(name: &str) -> Metric {
        serde_json::from_value(json!({
            "name": name,
            "provider": {"job": {
                "metadata": {"labels": {"team": "checkout"}, "annotations": {"note": "smoke"}},
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"labels": {"app": "smoke"}},
                        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
                    }
                }
            }}
        }))
        .unwrap()
    }

    #[test]
    fn the_job_carries_argos_name_labels_annotations_and_owner() {
        let run = run(json!([{"name": "smoke", "phase": "Running", "count": 2, "error": 1}]));
        let job = new_job(&run, &metric("smoke"), None, false).unwrap();
        let value = serde_json::to_value(&job).unwrap();
        assert_eq!(
            value["metadata"],
            json!({
                "name": format!("{UID}.smoke.4"),
                "namespace": "shop",
                "labels": {"team": "checkout", "analysisrun.argoproj.io/uid": UID},
                "annotations": {
                    "note": "smoke",
                    "analysisrun.argoproj.io/name": "checkout-abc-2",
                    "analysisrun.argoproj.io/namespace": "shop",
                    "analysisrun.argoproj.io/metric-name": "smoke"
                },
                "ownerReferences": [{
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "AnalysisRun",
                    "name": "checkout-abc-2",
                    "uid": UID,
                    "controller": true,
                    "blockOwnerDeletion": true
                }]
            })
        );
        assert_eq!(
            value["spec"]["template"]["metadata"]["labels"],
            json!({"app": "smoke", "analysisrun.argoproj.io/uid": UID})
        );
        assert_eq!(value["spec"]["backoffLimit"], json!(0));
    }

    #[test]
    fn another_namespace_or_cluster_means_no_owner() {
        let run = run(json!([]));
        let elsewhere = new_job(&run, &metric("smoke"), Some("jobs"), false).unwrap();
        assert_eq!(elsewhere.metadata.namespace.as_deref(), Some("jobs"));
        assert_eq!(elsewhere.metadata.owner_references, None);
        assert_eq!(
            elsewhere.metadata.name.as_deref(),
            Some(format!("{UID}.smoke.1").as_str())
        );
        let custom = new_job(&run, &metric("smoke"), None, true).unwrap();
        assert_eq!(custom.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(custom.metadata.owner_references, None);
    }

    #[test]
    fn long_metric_names_are_shortened_to_fit_63_characters() {
        let long = "a-very-long-metric-name-that-does-not-fit";
        let name = job_name(UID, long, 12);
        assert_eq!(name.len(), 63);
        assert_eq!(name, format!("{UID}.a-very-long-metric-name.12"));
        assert_eq!(job_name(UID, "ok", 1), format!("{UID}.ok.1"));
        // Never cut inside a character.
        let name = job_name(UID, "ééééééééééééééééééééééééé", 1);
        assert!(name.len() <= 63, "{name}");
    }

    #[test]
    fn a_metric_without_a_job_block_is_an_error() {
        let mut m = metric("smoke");
        m.provider.job = None;
        assert_eq!(
            new_job(&run(json!([])), &m, None, false).unwrap_err(),
            r#"metric "smoke" has no provider.job block"#
        );
    }

    #[test]
    fn measurements_refer_to_their_job() {
        let run = run(json!([]));
        let m = |metadata: serde_json::Value| -> Measurement {
            serde_json::from_value(json!({"phase": "Running", "metadata": metadata})).unwrap()
        };
        assert_eq!(
            job_reference(&m(json!({"job-name": "j", "job-namespace": "jobs"})), &run).unwrap(),
            ("jobs".into(), "j".into())
        );
        assert_eq!(
            job_reference(&m(json!({"job-name": "j"})), &run).unwrap(),
            ("shop".into(), "j".into())
        );
        let missing = job_reference(&m(json!({})), &run).unwrap_err();
        assert_eq!(missing.to_string(), "job metadata reference missing");
        let none: Measurement = serde_json::from_value(json!({"phase": "Running"})).unwrap();
        assert!(job_reference(&none, &run).is_err());
    }

    #[test]
    fn pods_that_cannot_pull_their_image_are_terminal() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p1"},
            "status": {"containerStatuses": [{
                "name": "c", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}
            }]}
        }))
        .unwrap();
        assert_eq!(
            terminal_pod_error(&[pod]).as_deref(),
            Some(
                "Pod p1, container c has terminal error (ImagePullBackOff): Back-off pulling image\n"
            )
        );
        let waiting: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p2"},
            "status": {"containerStatuses": [{
                "name": "c", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}
            }]}
        }))
        .unwrap();
        assert_eq!(terminal_pod_error(&[waiting]), None);
    }
}
