//! The commands that look: `get rollout`, `get experiment`, `list rollouts`, `list
//! experiments` and `status`, once or with `--watch`.
//!
//! A watch keeps reflectors of the namespace's Rollouts (just the one named), ReplicaSets,
//! pods, Experiments and AnalysisRuns, and redraws the screen when any of them changes (at most
//! every 200 ms, and every second for the ages), as Argo's plugin does.

use std::io::Write;
use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use rollouts_api::{AnalysisRun, Experiment, Rollout};
use rollouts_engine::phase;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::client::Kube;
use crate::error::Error;
use crate::info::{ExperimentInfo, RolloutInfo};
use crate::list::{self, Columns, RolloutLine};
use crate::tree::{self, CLEAR_SCREEN, Style};

/// The objects of a namespace a Rollout's tree is built from.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    /// ReplicaSets.
    pub replica_sets: Vec<ReplicaSet>,
    /// Pods.
    pub pods: Vec<Pod>,
    /// Experiments.
    pub experiments: Vec<Experiment>,
    /// AnalysisRuns.
    pub analysis_runs: Vec<AnalysisRun>,
}

async fn list_all<K>(kube: &Kube, kind: &'static str) -> Result<Vec<K>, Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    <K as Resource>::DynamicType: Default,
{
    Ok(kube
        .api::<K>()
        .list(&ListParams::default())
        .await
        .map_err(|e| kube.err(e, "listing", &kube.target(kind, "")))?
        .items)
}

impl Objects {
    /// Lists them all in the command's namespace.
    pub async fn load(kube: &Kube) -> Result<Self, Error> {
        let (replica_sets, pods, experiments, analysis_runs) = tokio::try_join!(
            list_all::<ReplicaSet>(kube, "replicaset"),
            list_all::<Pod>(kube, "pod"),
            list_all::<Experiment>(kube, "experiment"),
            list_all::<AnalysisRun>(kube, "analysisrun"),
        )?;
        Ok(Self {
            replica_sets,
            pods,
            experiments,
            analysis_runs,
        })
    }
}

/// Whether to colour: not with `--no-color`, `NO_COLOR` or `TERM=dumb`.
pub fn style(no_color: bool) -> Style {
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    Style {
        color: !(no_color || dumb || no_color_env),
    }
}

/// Reflectors over a namespace, and a stream that ticks when anything changes.
struct Watch {
    rollouts: Store<Rollout>,
    replica_sets: Store<ReplicaSet>,
    pods: Store<Pod>,
    experiments: Store<Experiment>,
    analysis_runs: Store<AnalysisRun>,
    changes: Pin<Box<dyn Stream<Item = ()> + Send>>,
}

fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (Store<K>, Pin<Box<dyn Stream<Item = ()> + Send>>)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff()).filter_map(
        |ev| async move {
            match ev {
                Ok(_) => Some(()),
                Err(e) => {
                    tracing::debug!(error = %e, "watch error (retrying)");
                    None
                }
            }
        },
    );
    (reader, Box::pin(stream))
}

impl Watch {
    fn start(kube: &Kube, rollout: Option<&str>) -> Self {
        let ro_config = match rollout {
            Some(name) => watcher::Config::default().fields(&format!("metadata.name={name}")),
            None => watcher::Config::default(),
        };
        let (rollouts, s1) = reflect(kube.api::<Rollout>(), ro_config);
        let (replica_sets, s2) = reflect(kube.api::<ReplicaSet>(), watcher::Config::default());
        let (pods, s3) = reflect(kube.api::<Pod>(), watcher::Config::default());
        let (experiments, s4) = reflect(kube.api::<Experiment>(), watcher::Config::default());
        let (analysis_runs, s5) = reflect(kube.api::<AnalysisRun>(), watcher::Config::default());
        Self {
            rollouts,
            replica_sets,
            pods,
            experiments,
            analysis_runs,
            changes: Box::pin(futures::stream::select_all(vec![s1, s2, s3, s4, s5])),
        }
    }

    /// Whether every store has its initial list (the streams must be polled to get there).
    fn ready(&self) -> bool {
        use futures::FutureExt;
        self.rollouts.wait_until_ready().now_or_never().is_some()
            && self
                .replica_sets
                .wait_until_ready()
                .now_or_never()
                .is_some()
            && self.pods.wait_until_ready().now_or_never().is_some()
            && self.experiments.wait_until_ready().now_or_never().is_some()
            && self
                .analysis_runs
                .wait_until_ready()
                .now_or_never()
                .is_some()
    }

    fn objects(&self) -> Objects {
        fn all<K: Resource + Clone>(s: &Store<K>) -> Vec<K>
        where
            K::DynamicType: Eq + std::hash::Hash + Clone,
        {
            s.state().iter().map(|a| (**a).clone()).collect()
        }
        Objects {
            replica_sets: all(&self.replica_sets),
            pods: all(&self.pods),
            experiments: all(&self.experiments),
            analysis_runs: all(&self.analysis_runs),
        }
    }

    fn rollout(&self, name: &str) -> Option<Rollout> {
        self.rollouts
            .state()
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .map(|r| (**r).clone())
    }

    fn experiment(&self, name: &str) -> Option<Experiment> {
        self.experiments
            .state()
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .map(|r| (**r).clone())
    }
}

/// What ends a watch early: Ctrl-C.
async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        futures::future::pending::<()>().await;
    }
}

/// Redraws `frame()` on changes, at most every 200 ms and at least every second, until
/// `frame()` reports the end, `timeout` passes or Ctrl-C.
async fn watch_loop(
    changes: &mut Pin<Box<dyn Stream<Item = ()> + Send>>,
    timeout: Option<Duration>,
    out: &mut dyn Write,
    mut frame: impl FnMut() -> (Option<String>, bool),
) -> Result<(), Error> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let min_gap = Duration::from_millis(200);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_draw: Option<Instant> = None;
    // A change came in too soon after the last frame: draw it once the gap has passed.
    let mut pending = false;
    let ctrl_c = interrupted();
    tokio::pin!(ctrl_c);
    loop {
        let far = Instant::now() + Duration::from_secs(3600);
        let sleep_until = deadline.unwrap_or(far);
        let redraw_at = last_draw.map_or(far, |t| t + min_gap);
        tokio::select! {
            c = changes.next() => {
                if c.is_none() {
                    return Ok(());
                }
            }
            _ = tick.tick() => {}
            _ = tokio::time::sleep_until(redraw_at), if pending => {}
            _ = tokio::time::sleep_until(sleep_until), if deadline.is_some() => { return Ok(()); }
            _ = &mut ctrl_c => { return Ok(()); }
        }
        if last_draw.is_some_and(|t| t.elapsed() < min_gap) {
            pending = true;
            continue;
        }
        pending = false;
        let (text, done) = frame();
        if let Some(text) = text {
            write!(out, "{CLEAR_SCREEN}{text}")?;
            out.flush()?;
        }
        last_draw = Some(Instant::now());
        if done {
            return Ok(());
        }
    }
}

/// `get rollout NAME [--watch] [--timeout-seconds N]`. A watch ends when the rollout finishes
/// an update it was seen progressing in (it reaches Healthy or Degraded), when the timeout
/// passes, or on Ctrl-C.
pub async fn get_rollout(
    kube: &Kube,
    name: &str,
    watch: bool,
    timeout_seconds: u64,
    style: Style,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let ro: Rollout = kube.get("rollout", name).await?;
    if !watch {
        let objs = Objects::load(kube).await?;
        let info = RolloutInfo::new(
            &ro,
            &objs.replica_sets,
            &objs.pods,
            &objs.experiments,
            &objs.analysis_runs,
        );
        write!(
            out,
            "{}",
            tree::render_rollout(&info, Timestamp::now(), style)
        )?;
        return Ok(());
    }
    // Fail early (permissions, CRDs) rather than inside the watch.
    Objects::load(kube).await?;
    let mut w = Watch::start(kube, Some(name));
    let mut seen_unfinished = false;
    let timeout = (timeout_seconds > 0).then(|| Duration::from_secs(timeout_seconds));
    let Watch { changes, .. } = &mut w;
    let mut changes = std::mem::replace(changes, Box::pin(futures::stream::empty()));
    watch_loop(&mut changes, timeout, out, || {
        if !w.ready() {
            return (None, false);
        }
        let Some(ro) = w.rollout(name) else {
            return (None, false);
        };
        let objs = w.objects();
        let info = RolloutInfo::new(
            &ro,
            &objs.replica_sets,
            &objs.pods,
            &objs.experiments,
            &objs.analysis_runs,
        );
        let done = info.finished() && seen_unfinished;
        seen_unfinished |= !info.finished();
        (
            Some(tree::render_rollout(&info, Timestamp::now(), style)),
            done,
        )
    })
    .await
}

/// `get experiment NAME [--watch]`; a watch ends when the experiment completes.
pub async fn get_experiment(
    kube: &Kube,
    name: &str,
    watch: bool,
    style: Style,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let exp: Experiment = kube.get("experiment", name).await?;
    let objs = Objects::load(kube).await?;
    if !watch {
        let info = ExperimentInfo::new(&exp, &objs.replica_sets, &objs.analysis_runs, &objs.pods);
        write!(
            out,
            "{}",
            tree::render_experiment(&info, Timestamp::now(), style)
        )?;
        return Ok(());
    }
    let mut w = Watch::start(kube, None);
    let mut seen_running = false;
    let Watch { changes, .. } = &mut w;
    let mut changes = std::mem::replace(changes, Box::pin(futures::stream::empty()));
    watch_loop(&mut changes, None, out, || {
        if !w.ready() {
            return (None, false);
        }
        let Some(exp) = w.experiment(name) else {
            return (None, false);
        };
        let objs = w.objects();
        let info = ExperimentInfo::new(&exp, &objs.replica_sets, &objs.analysis_runs, &objs.pods);
        let completed = rollouts_api::analysis_phase::is_completed(&info.status);
        let done = completed && seen_running;
        seen_running |= !completed;
        (
            Some(tree::render_experiment(&info, Timestamp::now(), style)),
            done,
        )
    })
    .await
}

fn rollout_api(kube: &Kube, all_namespaces: bool) -> Api<Rollout> {
    if all_namespaces {
        Api::all(kube.client.clone())
    } else {
        kube.api()
    }
}

/// `list rollouts [--name] [-A] [--watch] [--timestamps]`.
pub async fn list_rollouts(
    kube: &Kube,
    args: &crate::cli::ListRolloutsArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Error> {
    let api = rollout_api(kube, args.all_namespaces);
    let mut lp = ListParams::default();
    if !args.name.is_empty() {
        lp = lp.fields(&format!("metadata.name={}", args.name));
    }
    let target = if args.all_namespaces {
        crate::error::Target::new("rollout", "", "")
    } else {
        kube.target("rollout", "")
    };
    let list = api
        .list(&lp)
        .await
        .map_err(|e| kube.err(e, "listing", &target))?;
    let columns = Columns {
        namespace: args.all_namespaces,
        timestamp: args.timestamps,
    };
    if list.items.is_empty() && !args.watch {
        writeln!(err, "No resources found.")?;
        return Ok(());
    }
    write!(
        out,
        "{}",
        list::rollout_table(&list.items, columns, Timestamp::now())
    )?;
    out.flush()?;
    if !args.watch {
        return Ok(());
    }
    let mut prev: std::collections::BTreeMap<(String, String), RolloutLine> = list
        .items
        .iter()
        .map(|r| {
            let l = RolloutLine::new(r);
            ((l.namespace.clone(), l.name.clone()), l)
        })
        .collect();
    let mut config = watcher::Config::default();
    if !args.name.is_empty() {
        config = config.fields(&format!("metadata.name={}", args.name));
    }
    let stream = watcher(api, config).default_backoff().applied_objects();
    tokio::pin!(stream);
    let ctrl_c = interrupted();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            next = stream.next() => match next {
                None => return Ok(()),
                Some(Err(e)) => tracing::debug!(error = %e, "watch error (retrying)"),
                Some(Ok(ro)) => {
                    let line = RolloutLine::new(&ro);
                    let key = (line.namespace.clone(), line.name.clone());
                    if prev.get(&key) != Some(&line) {
                        write!(out, "{}", list::align(&format!("{}\n", line.render(columns, Timestamp::now()))))?;
                        out.flush()?;
                        prev.insert(key, line);
                    }
                }
            },
            _ = &mut ctrl_c => return Ok(()),
        }
    }
}

/// `list experiments [-A]`.
pub async fn list_experiments(
    kube: &Kube,
    all_namespaces: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Error> {
    let api: Api<Experiment> = if all_namespaces {
        Api::all(kube.client.clone())
    } else {
        kube.api()
    };
    let target = if all_namespaces {
        crate::error::Target::new("experiment", "", "")
    } else {
        kube.target("experiment", "")
    };
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| kube.err(e, "listing", &target))?;
    if list.items.is_empty() {
        writeln!(err, "No resources found.")?;
        return Ok(());
    }
    write!(
        out,
        "{}",
        list::experiment_table(&list.items, all_namespaces, Timestamp::now())
    )?;
    Ok(())
}

/// `Status - Message`, or just the status without a message.
pub fn status_line(status: &str, message: &str) -> String {
    if message.is_empty() {
        status.to_string()
    } else {
        format!("{status} - {message}")
    }
}

/// `status NAME [--watch[=false]] [--timeout D]`: prints the status (on every change while
/// watching) until the rollout is Healthy or Degraded. Errors: Degraded, or the timeout.
pub async fn status(
    kube: &Kube,
    name: &str,
    watch: bool,
    timeout: Option<Duration>,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let ro: Rollout = kube.get("rollout", name).await?;
    let (mut st, mut msg) = phase::for_client(&ro);
    if !watch {
        if st == "Healthy" || st == "Degraded" {
            writeln!(out, "{st}")?;
        } else {
            writeln!(out, "{}", status_line(&st, &msg))?;
        }
    } else {
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let stream = watcher(kube.api::<Rollout>(), config)
            .default_backoff()
            .applied_objects();
        tokio::pin!(stream);
        let deadline = timeout.map(|t| Instant::now() + t);
        let ctrl_c = interrupted();
        tokio::pin!(ctrl_c);
        let mut prev = String::new();
        let mut print = |st: &str, msg: &str, out: &mut dyn Write| -> Result<(), Error> {
            let line = status_line(st, msg);
            if line != prev {
                writeln!(out, "{line}")?;
                out.flush()?;
                prev = line;
            }
            Ok(())
        };
        print(&st, &msg, out)?;
        while st != "Healthy" && st != "Degraded" {
            let sleep_until =
                deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                next = stream.next() => match next {
                    None => break,
                    Some(Err(e)) => tracing::debug!(error = %e, "watch error (retrying)"),
                    Some(Ok(ro)) => {
                        (st, msg) = phase::for_client(&ro);
                        print(&st, &msg, out)?;
                    }
                },
                _ = tokio::time::sleep_until(sleep_until), if deadline.is_some() => break,
                _ = &mut ctrl_c => break,
            }
        }
    }
    if st == "Degraded" {
        return Err(Error::Degraded { message: msg });
    }
    if st != "Healthy" && watch {
        return Err(Error::Timeout {
            what: "Rollout status watch".to_string(),
        });
    }
    Ok(())
}
