//! What `get rollout`, `get experiment`, `status` and `list` show, computed from the objects
//! alone (no I/O, no clock: the caller passes the objects it read).
//!
//! [`RolloutInfo::new`] gathers a Rollout, the ReplicaSets, pods, Experiments and
//! AnalysisRuns it owns (by owner UID, as Argo's plugin does), and works out the status and
//! icon of each, the canary step and weights, the images with their `stable`/`canary` tags,
//! and the replica counts. The tree renderer ([`crate::tree`]) turns the result into text.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use rollouts_api::{AnalysisRun, Experiment, Rollout, labels};
use rollouts_engine::{phase, steps};

/// Icons, as Argo's plugin prints them.
pub mod icon {
    /// Pending.
    pub const WAITING: &str = "◷";
    /// Progressing, running.
    pub const PROGRESSING: &str = "◌";
    /// Error, invalid spec.
    pub const WARNING: &str = "⚠";
    /// Unknown, inconclusive.
    pub const UNKNOWN: &str = "?";
    /// Healthy, successful, running pod.
    pub const OK: &str = "✔";
    /// Degraded, failed.
    pub const BAD: &str = "✖";
    /// Paused.
    pub const PAUSED: &str = "॥";
    /// Scaled down.
    pub const NEUTRAL: &str = "•";
}

/// Tags of ReplicaSets and images.
pub mod tag {
    /// The canary ReplicaSet.
    pub const CANARY: &str = "canary";
    /// The stable ReplicaSet.
    pub const STABLE: &str = "stable";
    /// The ReplicaSet behind the active Service (blue-green).
    pub const ACTIVE: &str = "active";
    /// The ReplicaSet behind the preview Service (blue-green).
    pub const PREVIEW: &str = "preview";
    /// The ReplicaSet behind the ping Service (ping-pong canary).
    pub const PING: &str = "ping";
    /// The ReplicaSet behind the pong Service (ping-pong canary).
    pub const PONG: &str = "pong";
}

/// An image and the tags of the ReplicaSets that run it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// Image reference.
    pub image: String,
    /// Sorted tags (`canary`, `stable`, `Σ:<template>`).
    pub tags: Vec<String>,
}

/// A pod of a ReplicaSet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodInfo {
    /// Name.
    pub name: String,
    /// Creation time.
    pub created: Option<Timestamp>,
    /// kubectl's STATUS column (`Running`, `Pending`, `CrashLoopBackOff`, `Terminating`, …).
    pub status: String,
    /// Icon of the status.
    pub icon: &'static str,
    /// `ready/total` containers.
    pub ready: String,
    /// Container restarts.
    pub restarts: i32,
}

/// A ReplicaSet of a Rollout or Experiment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaSetInfo {
    /// Name.
    pub name: String,
    /// UID (to attach pods).
    pub uid: String,
    /// Creation time.
    pub created: Option<Timestamp>,
    /// `Healthy`, `Progressing`, `ScaledDown` or `ReplicaFailure`.
    pub status: String,
    /// Icon of the status.
    pub icon: &'static str,
    /// The `rollout.argoproj.io/revision` annotation (0 when absent).
    pub revision: i64,
    /// The experiment template that made it (`experiment.argoproj.io/template-name`).
    pub template: String,
    /// The `scale-down-deadline` annotation.
    pub scale_down_deadline: String,
    /// The stable ReplicaSet.
    pub stable: bool,
    /// The canary ReplicaSet.
    pub canary: bool,
    /// Behind the active Service.
    pub active: bool,
    /// Behind the preview Service.
    pub preview: bool,
    /// Behind the ping Service.
    pub ping: bool,
    /// Behind the pong Service.
    pub pong: bool,
    /// `status.replicas`.
    pub replicas: i32,
    /// `status.availableReplicas`.
    pub available: i32,
    /// Container images.
    pub images: Vec<String>,
    /// Pods, oldest first.
    pub pods: Vec<PodInfo>,
}

/// A Job run by an AnalysisRun measurement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobInfo {
    /// Job name.
    pub name: String,
    /// When the measurement started.
    pub created: Option<Timestamp>,
    /// Measurement phase.
    pub status: String,
    /// Icon of the phase.
    pub icon: &'static str,
    /// The metric that ran it.
    pub metric: String,
}

/// An AnalysisRun.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalysisRunInfo {
    /// Name.
    pub name: String,
    /// Creation time.
    pub created: Option<Timestamp>,
    /// Phase (`Pending`, `Running`, `Successful`, …).
    pub status: String,
    /// Icon of the phase.
    pub icon: &'static str,
    /// Revision annotation.
    pub revision: i64,
    /// Successful measurements (all metrics).
    pub successful: i32,
    /// Failed measurements.
    pub failed: i32,
    /// Inconclusive measurements.
    pub inconclusive: i32,
    /// Errored measurements.
    pub error: i32,
    /// Jobs of job metrics, in measurement order.
    pub jobs: Vec<JobInfo>,
}

/// An Experiment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExperimentInfo {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Creation time.
    pub created: Option<Timestamp>,
    /// Phase.
    pub status: String,
    /// Status message.
    pub message: String,
    /// Icon of the phase.
    pub icon: &'static str,
    /// Revision annotation.
    pub revision: i64,
    /// Its ReplicaSets.
    pub replica_sets: Vec<ReplicaSetInfo>,
    /// Its AnalysisRuns.
    pub analysis_runs: Vec<AnalysisRunInfo>,
}

/// Everything `get rollout` shows about a Rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolloutInfo {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Creation time.
    pub created: Option<Timestamp>,
    /// Phase as a client sees it (`Healthy`, `Progressing`, `Paused`, `Degraded`).
    pub status: String,
    /// Status message.
    pub message: String,
    /// Icon of the phase.
    pub icon: &'static str,
    /// `Canary`, `BlueGreen` or empty.
    pub strategy: String,
    /// `i/n` for a canary with steps, else empty.
    pub step: String,
    /// The weight the current step sets (canary).
    pub set_weight: String,
    /// The weight in effect (canary).
    pub actual_weight: String,
    /// `spec.replicas` (default 1).
    pub desired: i32,
    /// `status.replicas`.
    pub current: i32,
    /// `status.updatedReplicas`.
    pub updated: i32,
    /// `status.readyReplicas`.
    pub ready: i32,
    /// `status.availableReplicas`.
    pub available: i32,
    /// ReplicaSets, newest revision first.
    pub replica_sets: Vec<ReplicaSetInfo>,
    /// Experiments, newest revision first.
    pub experiments: Vec<ExperimentInfo>,
    /// AnalysisRuns, newest revision first.
    pub analysis_runs: Vec<AnalysisRunInfo>,
}

fn created(meta: &ObjectMeta) -> Option<Timestamp> {
    meta.creation_timestamp.as_ref().map(|t| t.0)
}

fn owned_by(refs: Option<&Vec<OwnerReference>>, uid: &str) -> bool {
    !uid.is_empty() && refs.is_some_and(|r| r.iter().any(|o| o.uid == uid))
}

fn owning_uid<'a>(refs: Option<&'a Vec<OwnerReference>>, uids: &BTreeSet<&str>) -> Option<&'a str> {
    refs?
        .iter()
        .find(|o| uids.contains(o.uid.as_str()))
        .map(|o| o.uid.as_str())
}

fn revision(meta: &ObjectMeta) -> i64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(labels::REVISION))
        .and_then(|r| r.parse::<i64>().ok())
        .unwrap_or(0)
}

fn annotation(meta: &ObjectMeta, key: &str) -> String {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .cloned()
        .unwrap_or_default()
}

/// The icon of a Rollout phase.
pub fn rollout_icon(status: &str) -> &'static str {
    match status {
        "Progressing" => icon::PROGRESSING,
        "Error" | "InvalidSpec" => icon::WARNING,
        "Paused" => icon::PAUSED,
        "Healthy" => icon::OK,
        "Degraded" => icon::BAD,
        "Unknown" => icon::UNKNOWN,
        "ScaledDown" => icon::NEUTRAL,
        _ => " ",
    }
}

/// The icon of an AnalysisRun, measurement or Experiment phase.
pub fn analysis_icon(status: &str) -> &'static str {
    match status {
        "Successful" => icon::OK,
        "Inconclusive" => icon::UNKNOWN,
        "Failed" => icon::BAD,
        "Error" => icon::WARNING,
        "Running" => icon::PROGRESSING,
        "Pending" => icon::WAITING,
        _ => " ",
    }
}

fn replica_set_icon(status: &str) -> &'static str {
    match status {
        "Progressing" => icon::PROGRESSING,
        "Healthy" => icon::OK,
        "ReplicaFailure" => icon::BAD,
        "ScaledDown" => icon::NEUTRAL,
        _ => " ",
    }
}

fn pod_icon(status: &str) -> &'static str {
    if status.starts_with("Init:") {
        return icon::PROGRESSING;
    }
    if status.starts_with("Signal:") || status.starts_with("ExitCode:") {
        return icon::BAD;
    }
    if status.ends_with("Error") || status.starts_with("Err") {
        return icon::WARNING;
    }
    match status {
        "Pending" | "Terminating" | "ContainerCreating" => icon::PROGRESSING,
        "Running" | "Completed" => icon::OK,
        "Failed" | "InvalidImageName" | "CrashLoopBackOff" => icon::BAD,
        "ImagePullBackOff" | "RegistryUnavailable" => icon::WARNING,
        "Unknown" => icon::UNKNOWN,
        _ => " ",
    }
}

fn replica_set_health(rs: &ReplicaSet) -> String {
    let status = rs.status.clone().unwrap_or_default();
    let spec_replicas = rs.spec.replicas;
    let generation = rs.metadata.generation.unwrap_or(0);
    if generation <= status.observed_generation.unwrap_or(0) {
        let failing = status.conditions.iter().flatten().any(|c| {
            c.type_.as_deref() == Some("ReplicaFailure") && c.status.as_deref() == Some("True")
        });
        if failing {
            return "ReplicaFailure".to_string();
        }
        if let Some(want) = spec_replicas
            && status.available_replicas.unwrap_or(0) < want
        {
            return "Progressing".to_string();
        }
    } else {
        return "Progressing".to_string();
    }
    if spec_replicas == Some(0) {
        return "ScaledDown".to_string();
    }
    "Healthy".to_string()
}

/// kubectl's pod STATUS column and the ready/restart counts.
pub fn pod_info(pod: &Pod) -> PodInfo {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let sidecars: BTreeMap<&str, bool> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            (
                c.name.as_str(),
                c.restart_policy.as_deref() == Some("Always"),
            )
        })
        .collect();
    let total = spec.containers.len();
    let mut ready = 0;
    let mut restarts = 0;
    let mut reason = status.phase.clone().unwrap_or_default();
    if let Some(r) = status.reason.as_ref().filter(|r| !r.is_empty()) {
        reason = r.clone();
    }
    let init_total = spec.init_containers.as_ref().map_or(0, Vec::len);
    let mut initializing = false;
    for (i, c) in status.init_container_statuses.iter().flatten().enumerate() {
        restarts += c.restart_count;
        let state = c.state.clone().unwrap_or_default();
        if let Some(t) = &state.terminated
            && t.exit_code == 0
        {
            continue;
        }
        if let Some(t) = &state.terminated {
            reason = match t.reason.as_deref().filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None if t.signal.unwrap_or(0) != 0 => {
                    format!("Init:Signal:{}", t.signal.unwrap_or(0))
                }
                None => format!("Init:ExitCode:{}", t.exit_code),
            };
            initializing = true;
        } else if sidecars.get(c.name.as_str()) == Some(&true) && c.started == Some(true) {
            if c.ready {
                continue;
            }
        } else if let Some(w) = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{w}");
            initializing = true;
        } else {
            reason = format!("Init:{i}/{init_total}");
            initializing = true;
        }
        break;
    }
    if !initializing {
        restarts = 0;
        let mut has_running = false;
        for c in status.container_statuses.iter().flatten().rev() {
            restarts += c.restart_count;
            let state = c.state.clone().unwrap_or_default();
            let waiting = state.waiting.as_ref().and_then(|w| w.reason.clone());
            let terminated = state.terminated.as_ref();
            if let Some(w) = waiting.filter(|w| !w.is_empty()) {
                reason = w;
            } else if let Some(t) = terminated {
                reason = match t.reason.as_deref().filter(|r| !r.is_empty()) {
                    Some(r) => r.to_string(),
                    None if t.signal.unwrap_or(0) != 0 => {
                        format!("Signal:{}", t.signal.unwrap_or(0))
                    }
                    None => format!("ExitCode:{}", t.exit_code),
                };
            } else if c.ready && state.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = "Running".to_string();
        }
    }
    if pod.metadata.deletion_timestamp.is_some() {
        reason = if status.reason.as_deref() == Some("NodeLost") {
            "Unknown".to_string()
        } else {
            "Terminating".to_string()
        };
    }
    PodInfo {
        name: pod.metadata.name.clone().unwrap_or_default(),
        created: created(&pod.metadata),
        icon: pod_icon(&reason),
        status: reason,
        ready: format!("{ready}/{total}"),
        restarts,
    }
}

fn images(containers: &[Container]) -> Vec<String> {
    containers
        .iter()
        .map(|c| c.image.clone().unwrap_or_default())
        .collect()
}

/// The ReplicaSets owned by `owner_uid`, tagged for `rollout` when given, with their pods;
/// newest revision first, then by name.
pub fn replica_set_infos(
    owner_uid: &str,
    rollout: Option<&Rollout>,
    replica_sets: &[ReplicaSet],
    pods: &[Pod],
) -> Vec<ReplicaSetInfo> {
    let mut out: Vec<ReplicaSetInfo> = Vec::new();
    for rs in replica_sets {
        if !owned_by(rs.metadata.owner_references.as_ref(), owner_uid) {
            continue;
        }
        let status = replica_set_health(rs);
        let rs_status = rs.status.clone().unwrap_or_default();
        let hash = rs
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::POD_TEMPLATE_HASH))
            .cloned()
            .unwrap_or_default();
        let mut info = ReplicaSetInfo {
            name: rs.metadata.name.clone().unwrap_or_default(),
            uid: rs.metadata.uid.clone().unwrap_or_default(),
            created: created(&rs.metadata),
            icon: replica_set_icon(&status),
            status,
            revision: revision(&rs.metadata),
            template: annotation(&rs.metadata, labels::EXPERIMENT_TEMPLATE_NAME),
            scale_down_deadline: annotation(&rs.metadata, labels::SCALE_DOWN_DEADLINE),
            stable: false,
            canary: false,
            active: false,
            preview: false,
            ping: false,
            pong: false,
            replicas: rs_status.replicas,
            available: rs_status.available_replicas.unwrap_or(0),
            images: rs
                .spec
                .template
                .as_ref()
                .and_then(|t| t.spec.as_ref())
                .map(|s| images(&s.containers))
                .unwrap_or_default(),
            pods: Vec::new(),
        };
        if let Some(ro) = rollout {
            let st = ro.status.clone().unwrap_or_default();
            let stable_rs = st.stable_rs.as_deref().unwrap_or("");
            let current = st.current_pod_hash.as_deref().unwrap_or("");
            if let Some(canary) = ro.spec.canary() {
                let ping_pong = canary.ping_pong.is_some();
                let stable_is_ping = st
                    .canary
                    .as_ref()
                    .and_then(|c| c.stable_ping_pong.as_deref())
                    == Some("ping");
                if stable_rs == hash {
                    info.stable = true;
                    if ping_pong {
                        info.ping = stable_is_ping;
                        info.pong = !stable_is_ping;
                    }
                } else if current == hash {
                    info.canary = true;
                    if ping_pong {
                        info.ping = !stable_is_ping;
                        info.pong = stable_is_ping;
                    }
                }
            }
            if ro.spec.blue_green().is_some() {
                if stable_rs == hash {
                    info.stable = true;
                }
                let bg = st.blue_green.clone().unwrap_or_default();
                if bg.active_selector.as_deref().unwrap_or("") == hash {
                    info.active = true;
                } else if bg.preview_selector.as_deref().unwrap_or("") == hash {
                    info.preview = true;
                }
            }
        }
        out.push(info);
    }
    out.sort_by(|a, b| {
        b.revision
            .cmp(&a.revision)
            .then_with(|| a.name.cmp(&b.name))
    });
    let uids: BTreeSet<&str> = out.iter().map(|r| r.uid.as_str()).collect();
    let mut by_uid: BTreeMap<String, Vec<PodInfo>> = BTreeMap::new();
    for pod in pods {
        if let Some(uid) = owning_uid(pod.metadata.owner_references.as_ref(), &uids) {
            by_uid
                .entry(uid.to_string())
                .or_default()
                .push(pod_info(pod));
        }
    }
    for rs in &mut out {
        if let Some(mut pods) = by_uid.remove(&rs.uid) {
            pods.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)));
            rs.pods = pods;
        }
    }
    out
}

/// The AnalysisRuns owned by `owner_uid`; newest revision first, then oldest first.
pub fn analysis_run_infos(owner_uid: &str, runs: &[AnalysisRun]) -> Vec<AnalysisRunInfo> {
    let mut out = Vec::new();
    for run in runs {
        if !owned_by(run.metadata.owner_references.as_ref(), owner_uid) {
            continue;
        }
        let status = run.status.clone().unwrap_or_default();
        let mut info = AnalysisRunInfo {
            name: run.metadata.name.clone().unwrap_or_default(),
            created: created(&run.metadata),
            icon: analysis_icon(&status.phase),
            status: status.phase.clone(),
            revision: revision(&run.metadata),
            successful: 0,
            failed: 0,
            inconclusive: 0,
            error: 0,
            jobs: Vec::new(),
        };
        for mr in status.metric_results.iter().flatten() {
            info.successful += mr.successful.unwrap_or(0);
            info.failed += mr.failed.unwrap_or(0);
            info.inconclusive += mr.inconclusive.unwrap_or(0);
            info.error += mr.error.unwrap_or(0);
            for m in mr.measurements.iter().flatten() {
                if let Some(job) = m.metadata.as_ref().and_then(|md| md.get("job-name")) {
                    info.jobs.push(JobInfo {
                        name: job.clone(),
                        created: m.started_at.as_ref().map(|t| t.0),
                        icon: analysis_icon(&m.phase),
                        status: m.phase.clone(),
                        metric: mr.name.clone(),
                    });
                }
            }
        }
        out.push(info);
    }
    out.sort_by(|a: &AnalysisRunInfo, b| {
        b.revision
            .cmp(&a.revision)
            .then_with(|| a.created.cmp(&b.created))
            .then_with(|| b.name.cmp(&a.name))
    });
    out
}

impl ExperimentInfo {
    /// An Experiment with its ReplicaSets, pods and AnalysisRuns.
    pub fn new(
        exp: &Experiment,
        replica_sets: &[ReplicaSet],
        runs: &[AnalysisRun],
        pods: &[Pod],
    ) -> Self {
        let uid = exp.metadata.uid.clone().unwrap_or_default();
        let status = exp.status.clone().unwrap_or_default();
        let phase = status.phase.clone().unwrap_or_default();
        Self {
            name: exp.metadata.name.clone().unwrap_or_default(),
            namespace: exp.metadata.namespace.clone().unwrap_or_default(),
            created: created(&exp.metadata),
            icon: analysis_icon(&phase),
            status: phase,
            message: status.message.clone().unwrap_or_default(),
            revision: revision(&exp.metadata),
            replica_sets: replica_set_infos(&uid, None, replica_sets, pods),
            analysis_runs: analysis_run_infos(&uid, runs),
        }
    }

    /// The images of the Experiment's running ReplicaSets, tagged `Σ:<template>`.
    pub fn images(&self) -> Vec<ImageInfo> {
        let mut out = Vec::new();
        for rs in &self.replica_sets {
            if rs.replicas <= 0 {
                continue;
            }
            for image in &rs.images {
                let mut tags = Vec::new();
                if !rs.template.is_empty() {
                    tags.push(format!("Σ:{}", rs.template));
                }
                merge_image(&mut out, image, tags);
            }
        }
        out
    }
}

fn merge_image(images: &mut Vec<ImageInfo>, image: &str, tags: Vec<String>) {
    if let Some(existing) = images.iter_mut().find(|i| i.image == image) {
        let mut all: BTreeSet<String> = existing.tags.drain(..).collect();
        all.extend(tags);
        existing.tags = all.into_iter().collect();
    } else {
        let mut tags = tags;
        tags.sort();
        tags.dedup();
        images.push(ImageInfo {
            image: image.to_string(),
            tags,
        });
    }
    images.sort_by(|a, b| a.image.cmp(&b.image));
}

impl RolloutInfo {
    /// Gathers what `get rollout` shows from the objects of the Rollout's namespace (those it
    /// does not own are ignored).
    pub fn new(
        ro: &Rollout,
        replica_sets: &[ReplicaSet],
        pods: &[Pod],
        experiments: &[Experiment],
        runs: &[AnalysisRun],
    ) -> Self {
        let uid = ro.metadata.uid.clone().unwrap_or_default();
        let st = ro.status.clone().unwrap_or_default();
        let rs_infos = replica_set_infos(&uid, Some(ro), replica_sets, pods);
        let mut exp_infos: Vec<ExperimentInfo> = experiments
            .iter()
            .filter(|e| owned_by(e.metadata.owner_references.as_ref(), &uid))
            .map(|e| ExperimentInfo::new(e, replica_sets, runs, pods))
            .collect();
        exp_infos.sort_by(|a, b| {
            b.revision
                .cmp(&a.revision)
                .then_with(|| a.created.cmp(&b.created))
        });
        let (status, message) = phase::for_client(ro);
        let mut info = RolloutInfo {
            name: ro.metadata.name.clone().unwrap_or_default(),
            namespace: ro.metadata.namespace.clone().unwrap_or_default(),
            created: created(&ro.metadata),
            icon: rollout_icon(&status),
            status,
            message,
            strategy: String::new(),
            step: String::new(),
            set_weight: String::new(),
            actual_weight: String::new(),
            desired: ro.spec.replicas_or_default(),
            current: st.replicas.unwrap_or(0),
            updated: st.updated_replicas.unwrap_or(0),
            ready: st.ready_replicas.unwrap_or(0),
            available: st.available_replicas.unwrap_or(0),
            replica_sets: rs_infos,
            experiments: exp_infos,
            analysis_runs: analysis_run_infos(&uid, runs),
        };
        if let Some(canary) = ro.spec.canary() {
            info.strategy = "Canary".to_string();
            let n = canary.steps().len();
            if let Some(i) = st.current_step_index
                && n > 0
            {
                info.step = format!("{i}/{n}");
            }
            let max = max_traffic_weight(ro);
            info.set_weight =
                steps::current_set_weight(ro, st.abort == Some(true), max).to_string();
            let (step, _) = steps::current_step(ro);
            info.actual_weight = "0".to_string();
            if step.is_none() {
                info.actual_weight = max.to_string();
            } else if info.available > 0 {
                if canary.traffic_routing.is_none() {
                    for rs in info.replica_sets.iter().filter(|r| r.canary) {
                        info.actual_weight = ((rs.available * max) / info.available).to_string();
                    }
                } else if let Some(w) = st.canary.as_ref().and_then(|c| c.weights.as_ref()) {
                    info.actual_weight = w.canary.weight.to_string();
                } else {
                    info.actual_weight = info.set_weight.clone();
                }
            }
        } else if ro.spec.blue_green().is_some() {
            info.strategy = "BlueGreen".to_string();
        }
        info
    }

    /// The images of running ReplicaSets with their tags, and those of Experiments; sorted by
    /// image.
    pub fn images(&self) -> Vec<ImageInfo> {
        let mut out = Vec::new();
        for rs in &self.replica_sets {
            if rs.replicas <= 0 {
                continue;
            }
            for image in &rs.images {
                let mut tags = Vec::new();
                for (on, t) in [
                    (rs.canary, tag::CANARY),
                    (rs.stable, tag::STABLE),
                    (rs.active, tag::ACTIVE),
                    (rs.preview, tag::PREVIEW),
                    (rs.ping, tag::PING),
                    (rs.pong, tag::PONG),
                ] {
                    if on {
                        tags.push(t.to_string());
                    }
                }
                merge_image(&mut out, image, tags);
            }
        }
        for exp in &self.experiments {
            for img in exp.images() {
                merge_image(&mut out, &img.image, img.tags);
            }
        }
        out
    }

    /// Revisions present among ReplicaSets, Experiments and AnalysisRuns, newest first.
    pub fn revisions(&self) -> Vec<i64> {
        let mut set = BTreeSet::new();
        set.extend(self.replica_sets.iter().map(|r| r.revision));
        set.extend(self.experiments.iter().map(|e| e.revision));
        set.extend(self.analysis_runs.iter().map(|a| a.revision));
        set.into_iter().rev().collect()
    }

    /// Whether the rollout has reached an end state (`Healthy` or `Degraded`).
    pub fn finished(&self) -> bool {
        matches!(self.status.as_str(), "Healthy" | "Degraded")
    }
}

/// `trafficRouting.maxTrafficWeight`, default 100.
pub fn max_traffic_weight(ro: &Rollout) -> i32 {
    ro.spec
        .canary()
        .and_then(|c| c.traffic_routing.as_ref())
        .and_then(|t| t.max_traffic_weight)
        .unwrap_or(100)
}
