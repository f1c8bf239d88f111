//! `why ROLLOUT [--watch]`: what holds a rollout now, and what would release it.
//!
//! The Rollout and the objects of its namespace are read, turned into the engine's snapshot
//! ([`rollouts_engine::observe::snapshot`]) and explained by the engine
//! ([`rollouts_engine::explain()`]): the gate (an invalid spec, an abort, the progress deadline,
//! a pause, an analysis metric and its last measurement, a traffic weight not yet verified, pods
//! not yet available, a scale-down delay, or nothing), since when, what releases it, and one
//! sentence. [`WhyReport`] is that answer with the Rollout's status; [`render_text`] prints it
//! for a person, `-o json` prints it as data. `why` exits 0 whatever holds the rollout.
//!
//! `--watch` explains again whenever one of the Rollout's objects changes and prints a line
//! each time the gate (or its data) changes, until the rollout is Healthy.

use std::io::Write;
use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::runtime::{WatchStreamExt, watcher};
use rollouts_api::{AnalysisRun, Experiment, Rollout};
use rollouts_engine::{Blocker, Gate, Snapshot, explain};
use serde::Serialize;
use tokio::time::Instant;

use crate::cli::OutputFormat;
use crate::client::Kube;
use crate::error::Error;
use crate::humanize::human_duration;
use crate::info::rollout_icon;
use crate::tree::Style;

/// The answer of `why`: the Rollout, its status, and the engine's [`Blocker`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WhyReport {
    /// Rollout name.
    pub rollout: String,
    /// Namespace.
    pub namespace: String,
    /// `canary` or `blueGreen`.
    pub strategy: String,
    /// The status as `kubectl argo rollouts status` shows it (`Paused`, `Healthy`, ...).
    pub status: String,
    /// Its message.
    pub message: String,
    /// `currentStepIndex/steps` of a canary with steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// What holds the rollout.
    #[serde(flatten)]
    pub blocker: Blocker,
    /// When it was explained.
    #[serde(skip)]
    pub now: Timestamp,
}

/// Explains a snapshot.
pub fn report(snapshot: &Snapshot) -> WhyReport {
    let ro = &snapshot.rollout;
    let (status, message) = rollouts_engine::phase::for_client(ro);
    let step = ro.spec.canary().and_then(|c| {
        let steps = c.steps().len();
        (steps > 0).then(|| {
            let index = ro
                .status
                .as_ref()
                .and_then(|s| s.current_step_index)
                .unwrap_or(0);
            format!("{index}/{steps}")
        })
    });
    WhyReport {
        rollout: ro.metadata.name.clone().unwrap_or_default(),
        namespace: ro.metadata.namespace.clone().unwrap_or_default(),
        strategy: if ro.spec.blue_green().is_some() {
            "blueGreen"
        } else {
            "canary"
        }
        .into(),
        status,
        message,
        step,
        blocker: explain(snapshot),
        now: snapshot.now,
    }
}

fn time(t: Timestamp) -> String {
    rollouts_engine::format_rfc3339(t)
}

/// `12:00:10` of a time (UTC), for watch lines.
fn clock(t: Timestamp) -> String {
    let s = time(t);
    s.get(11..19).unwrap_or(&s).to_string()
}

/// The gate in a few words.
pub fn gate_title(gate: &Gate) -> String {
    match gate {
        Gate::None { phase } => format!("nothing ({phase})"),
        Gate::InvalidSpec { .. } => "invalid spec".into(),
        Gate::SpecNotObserved { .. } => "spec not yet observed by the controller".into(),
        Gate::Aborted { .. } => "aborted".into(),
        Gate::ProgressDeadlineExceeded { .. } => "progress deadline exceeded".into(),
        Gate::PausedByUser => "paused by the user (spec.paused)".into(),
        Gate::PausedAtStep {
            step_index, step, ..
        } => format!("pause at step {step_index} ({step})"),
        Gate::BlueGreenPromotion {
            auto_promotion_at: Some(_),
        } => "blue-green promotion (automatic)".into(),
        Gate::BlueGreenPromotion { .. } => "blue-green promotion (manual)".into(),
        Gate::InconclusiveAnalysis { run } => format!("inconclusive analysis {run}"),
        Gate::InconclusiveExperiment { experiment } => {
            format!("inconclusive experiment {experiment}")
        }
        Gate::TrafficWeightVerification { router, .. } => {
            format!("traffic weight verification ({router})")
        }
        Gate::Analysis { run, kind, .. } => {
            let kind = match kind.as_str() {
                "Step" => "step",
                "Background" => "background",
                "PrePromotion" => "pre-promotion",
                "PostPromotion" => "post-promotion",
                _ => "",
            };
            format!("{kind} analysis {run}").trim_start().to_string()
        }
        Gate::Experiment { experiment, .. } => format!("experiment {experiment}"),
        Gate::ReplicaSetAvailability {
            replica_set, role, ..
        } => format!("pods of {replica_set} ({role}) becoming available"),
        Gate::ScaleDownDelay { replica_set, .. } => format!("scale-down delay of {replica_set}"),
    }
}

/// Lines with the gate's data, beyond the sentence.
fn details(gate: &Gate) -> Vec<(&'static str, String)> {
    let opt = |t: &Option<Timestamp>| t.map(time);
    match gate {
        Gate::InvalidSpec { message } => vec![("Problem:", message.clone())],
        Gate::SpecNotObserved {
            generation,
            observed,
        } => vec![(
            "Generation:",
            format!(
                "{generation} (observed: {})",
                if observed.is_empty() {
                    "none"
                } else {
                    observed
                }
            ),
        )],
        Gate::Aborted { message } | Gate::ProgressDeadlineExceeded { message } => {
            vec![("Reason:", message.clone())]
        }
        Gate::PausedAtStep { until, .. } => {
            opt(until).map(|u| vec![("Until:", u)]).unwrap_or_default()
        }
        Gate::BlueGreenPromotion { auto_promotion_at } => opt(auto_promotion_at)
            .map(|u| vec![("Auto-promotion:", u)])
            .unwrap_or_default(),
        Gate::TrafficWeightVerification {
            router,
            desired_weight,
            observed_weight,
        } => vec![(
            "Weight:",
            format!(
                "{desired_weight} wanted from {router}, last verified: {}",
                observed_weight.map_or("none".to_string(), |w| w.to_string())
            ),
        )],
        Gate::Analysis { phase, metric, .. } => {
            let mut out = vec![(
                "Run phase:",
                if phase.is_empty() {
                    "Pending".into()
                } else {
                    phase.clone()
                },
            )];
            if let Some(m) = metric {
                let mut line = m.name.clone();
                if !m.success_condition.is_empty() {
                    line.push_str(&format!(", success when {}", m.success_condition));
                }
                if !m.failure_condition.is_empty() {
                    line.push_str(&format!(", failure when {}", m.failure_condition));
                }
                out.push(("Metric:", line));
                out.push((
                    "Last value:",
                    match (&m.last_value, &m.last_phase) {
                        (Some(v), Some(p)) => format!(
                            "{v} ({p}), {} measurement{}",
                            m.count,
                            if m.count == 1 { "" } else { "s" }
                        ),
                        _ => "no measurement yet".into(),
                    },
                ));
            }
            out
        }
        Gate::Experiment { phase, .. } => vec![(
            "Phase:",
            if phase.is_empty() {
                "Pending".into()
            } else {
                phase.clone()
            },
        )],
        Gate::ReplicaSetAvailability {
            available,
            desired,
            deadline,
            ..
        } => {
            let mut out = vec![("Pods:", format!("{available} of {desired} available"))];
            if let Some(d) = opt(deadline) {
                out.push(("Deadline:", d));
            }
            out
        }
        Gate::ScaleDownDelay { until, .. } => {
            opt(until).map(|u| vec![("Until:", u)]).unwrap_or_default()
        }
        Gate::None { .. }
        | Gate::PausedByUser
        | Gate::InconclusiveAnalysis { .. }
        | Gate::InconclusiveExperiment { .. } => Vec::new(),
    }
}

fn line(out: &mut String, label: &str, value: &str) {
    out.push_str(&format!("{label:<16}{value}\n"));
}

/// The text of `why`.
pub fn render_text(report: &WhyReport, style: Style) -> String {
    let mut out = String::new();
    let strategy = if report.strategy == "blueGreen" {
        "blue-green"
    } else {
        "canary"
    };
    let step = report
        .step
        .as_ref()
        .map(|s| format!(", step {s}"))
        .unwrap_or_default();
    line(
        &mut out,
        "Rollout:",
        &format!(
            "{} in {} ({strategy}{step})",
            report.rollout, report.namespace
        ),
    );
    let icon = rollout_icon(&report.status);
    let status = crate::commands::view::status_line(&report.status, &report.message);
    line(
        &mut out,
        "Status:",
        &style.paint_as(&format!("{icon} {status}"), icon),
    );
    let b = &report.blocker;
    line(&mut out, "Held by:", &gate_title(&b.gate));
    if let Some(since) = b.since {
        line(
            &mut out,
            "Since:",
            &format!(
                "{} ({} ago)",
                time(since),
                human_duration(report.now.duration_since(since))
            ),
        );
    }
    for (label, value) in details(&b.gate) {
        line(&mut out, label, &value);
    }
    if !b.release.is_empty() {
        line(&mut out, "Released by:", &b.release);
    }
    out.push('\n');
    out.push_str(&b.sentence);
    out.push('\n');
    out
}

/// The report in the chosen format.
pub fn render(report: &WhyReport, format: OutputFormat, style: Style) -> Result<String, Error> {
    match format {
        OutputFormat::Text => Ok(render_text(report, style)),
        OutputFormat::Json => serde_json::to_string_pretty(report)
            .map(|s| s + "\n")
            .map_err(|e| Error::Encoding(e.to_string())),
        OutputFormat::Yaml => {
            serde_saphyr::to_string(report).map_err(|e| Error::Encoding(e.to_string()))
        }
    }
}

/// One line of `why --watch` for a person: the time, the gate and the sentence.
pub fn watch_line(report: &WhyReport) -> String {
    format!(
        "{}  {}: {}\n",
        clock(report.now),
        gate_title(&report.blocker.gate),
        report.blocker.sentence
    )
}

/// `why NAME`.
pub async fn why(
    kube: &Kube,
    name: &str,
    format: OutputFormat,
    style: Style,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let snap = crate::plan::live_snapshot(kube, name).await?;
    write!(out, "{}", render(&report(&snap), format, style)?)?;
    Ok(())
}

/// Whether the watch is over: nothing holds a Healthy rollout.
fn finished(report: &WhyReport) -> bool {
    matches!(&report.blocker.gate, Gate::None { phase } if phase == "Healthy")
}

fn changes<K>(api: kube::Api<K>, config: watcher::Config) -> Pin<Box<dyn Stream<Item = ()> + Send>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    Box::pin(
        watcher(api, config)
            .default_backoff()
            .filter_map(|ev| async move {
                match ev {
                    Ok(_) => Some(()),
                    Err(e) => {
                        tracing::debug!(error = %e, "watch error (retrying)");
                        None
                    }
                }
            }),
    )
}

/// `why NAME --watch`: a line (text) or a JSON document per line (`-o json`) each time the
/// gate changes, until the rollout is Healthy, `timeout` passes, or Ctrl-C.
pub async fn watch(
    kube: &Kube,
    name: &str,
    format: OutputFormat,
    timeout: Option<Duration>,
    style: Style,
    out: &mut dyn Write,
) -> Result<(), Error> {
    // The first answer (or error: no such rollout) comes before any watch starts.
    let snap = crate::plan::live_snapshot(kube, name).await?;
    let first = report(&snap);
    let emit = |r: &WhyReport, out: &mut dyn Write| -> Result<(), Error> {
        let text = match format {
            OutputFormat::Text => {
                let l = watch_line(r);
                if style.color {
                    let icon = rollout_icon(&r.status);
                    style.paint_as(&l, icon)
                } else {
                    l
                }
            }
            OutputFormat::Json => {
                serde_json::to_string(r).map_err(|e| Error::Encoding(e.to_string()))? + "\n"
            }
            OutputFormat::Yaml => format!("---\n{}", render(r, format, style)?),
        };
        write!(out, "{text}")?;
        out.flush()?;
        Ok(())
    };
    let key = |r: &WhyReport| (serde_json::to_value(&r.blocker.gate).ok(), r.blocker.since);
    emit(&first, out)?;
    if finished(&first) {
        return Ok(());
    }
    let mut last = key(&first);
    let by_name = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = futures::stream::select_all(vec![
        changes(kube.api::<Rollout>(), by_name),
        changes(kube.api::<ReplicaSet>(), watcher::Config::default()),
        changes(kube.api::<AnalysisRun>(), watcher::Config::default()),
        changes(kube.api::<Experiment>(), watcher::Config::default()),
    ]);
    let deadline = timeout.map(|t| Instant::now() + t);
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            futures::future::pending::<()>().await;
        }
    };
    tokio::pin!(ctrl_c);
    // Timed gates (a pause that ends, a deadline) change without an object changing.
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        let far = Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            next = stream.next() => if next.is_none() { return Ok(()) },
            _ = tick.tick() => {}
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => return Ok(()),
            _ = &mut ctrl_c => return Ok(()),
        }
        // Let a burst of changes settle before reading everything again.
        tokio::time::sleep(Duration::from_millis(300)).await;
        while let Some(Some(())) = futures::FutureExt::now_or_never(stream.next()) {}
        let snap = match crate::plan::live_snapshot(kube, name).await {
            Ok(s) => s,
            Err(Error::NotFound { .. }) => {
                return Err(Error::Refused(format!(
                    "rollout {name:?} was deleted while watching"
                )));
            }
            Err(e) => return Err(e),
        };
        let r = report(&snap);
        let k = key(&r);
        if k != last {
            emit(&r, out)?;
            last = k;
        }
        if finished(&r) {
            return Ok(());
        }
    }
}
