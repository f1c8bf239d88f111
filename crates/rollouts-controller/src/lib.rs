//! The rollouts-rs controller: drives Argo Rollouts objects (`argoproj.io/v1alpha1`) on a
//! cluster with the pure strategy engine, as a drop-in replacement for Argo's
//! `rollouts-controller`.
//!
//! [`run`] is the whole process behind the thin `rollouts-controller` binary:
//!
//! 1. the HTTP servers start: `/metrics` ([`metrics`], [`server`]) and `/healthz`;
//! 2. with `--leader-elect` (the default), the process waits until it holds Argo's Lease
//!    ([`leader`]), so that an Argo controller and ours never both lead;
//! 3. the Rollout controller runs ([`controller`]): shared reflectors fill the caches, each
//!    reconciliation builds a snapshot ([`snapshot`]), asks the engine for a plan, executes
//!    its effects ([`executor`]), writes the status ([`status`]) and records Events
//!    ([`events`]), then sleeps until the next scheduled transition; next to it the
//!    AnalysisRun controller ([`analysis_run`]) measures metrics through the providers
//!    ([`measure`]) and decides each run's phase (`--controllers=analysis` runs only that one),
//!    and the Experiment controller ([`experiment`]) runs the ReplicaSets, Services and
//!    AnalysisRuns of Experiments;
//! 4. on SIGTERM or SIGINT the controller drains, the Lease is released and the servers stop;
//!    if the Lease is lost, the process stops with an error (a supervisor restarts it as a
//!    candidate).
//!
//! Modules: [`flags`] (Argo-compatible command line), [`client`] (kubeconfig, throttling,
//! request metrics), [`context`] (what reconciliations share), [`expectations`] (stale-cache
//! guard), [`objects`] (slim watched kinds), [`analysis`] (AnalysisRuns from templates),
//! [`analysis_run`] and [`measure`] (the AnalysisRun controller),
//! [`workload`] (`workloadRef`), [`telemetry`] (logging).

pub mod analysis;
pub mod analysis_run;
pub mod client;
pub mod context;
pub mod controller;
pub mod error;
pub mod events;
pub mod executor;
pub mod expectations;
pub mod experiment;
pub mod flags;
pub mod leader;
pub mod measure;
pub mod metrics;
pub mod objects;
pub mod server;
pub mod snapshot;
pub mod status;
pub mod telemetry;
pub mod workload;

use std::time::Duration;

use futures::FutureExt;
use tokio::sync::watch;

// Unit tests exercise the plugin machinery with the in-memory router.
#[cfg(test)]
use rollouts_fake_plugins as _;

pub use error::{Error, Result};
pub use flags::Flags;

/// The version reported by `--version` and `argo_rollouts_controller_info`.
pub fn version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

/// `ROLLOUT_VERIFY_RETRY_INTERVAL`: a Go duration or a number of seconds (default 10 s).
///
/// Argo's code reads this variable the wrong way round (a number is ignored, anything else sets
/// the interval to zero); we read it as documented.
pub fn verify_retry_interval() -> Duration {
    let default = Duration::from_secs(10);
    let Ok(v) = std::env::var("ROLLOUT_VERIFY_RETRY_INTERVAL") else {
        return default;
    };
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Duration::from_secs(secs);
    }
    match rollouts_engine::duration::parse_go_duration(v) {
        Ok(d) if d.as_nanos() >= 0 => Duration::from_nanos(d.as_nanos() as u64),
        _ => {
            tracing::warn!(
                value = v,
                "ROLLOUT_VERIFY_RETRY_INTERVAL is not a duration; using 10s."
            );
            default
        }
    }
}

/// A future that completes on SIGTERM or SIGINT.
async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(err) => {
                tracing::warn!(
                    error = &err as &dyn std::error::Error,
                    "Cannot listen for SIGTERM."
                );
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the controller process until a termination signal (or a fatal error).
pub async fn run(flags: Flags) -> Result<()> {
    let version = version();
    let registry = rollouts_plugins::registry()?;
    tracing::info!(%version, "rollouts-rs controller starting.");
    for line in registry.describe().lines() {
        tracing::info!("Plugins in this build: {line}");
    }
    // Prometheus `rangeQuery` times are expressions of the condition language.
    let _ = rollouts_plugin::install_time_evaluator(rollouts_engine::analysis_run::evaluate_time);
    if rollouts_plugin::install_router_settings(flags.router_settings()).is_err() {
        tracing::warn!("Router settings were installed before; keeping the first ones.");
    }
    for note in flags.inert() {
        tracing::warn!("{note}");
    }
    if let (_, Some(note)) = flags.log_format() {
        tracing::info!("{note}");
    }
    let analysis_only = flags.analysis_only()?;
    let resync = flags.resync()?;
    let timing = flags.lease_timing()?;

    let metrics = metrics::Metrics::new(&version)?;
    let config = client::load_config(&flags).await?;
    let watch_namespace = flags.namespaced.then(|| config.default_namespace.clone());
    if let Some(ns) = &watch_namespace {
        tracing::info!(namespace = %ns, "Using namespace {ns}.");
    }
    let client = client::build(config, metrics.k8s_requests.clone(), flags.qps, flags.burst)?;

    // Shutdown: the first SIGTERM/SIGINT flips this.
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tokio::spawn(async move {
        termination_signal().await;
        tracing::info!("Termination signal received: shutting down.");
        let _ = shutdown_tx.send(true);
    });
    let stopped = {
        let mut rx = shutdown_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
        .shared()
    };

    // The servers start before leader election: a standby is live and scrapeable.
    let health_addr = format!("{}:{}", flags.bind_address, flags.healthz_port);
    let metrics_addr = format!("{}:{}", flags.bind_address, flags.metrics_port);
    let health = server::bind("healthz", &health_addr).await?;
    let metric = server::bind("metrics", &metrics_addr).await?;
    let servers = [
        tokio::spawn(server::serve(
            "healthz",
            health,
            server::healthz_router(),
            stopped.clone(),
        )),
        tokio::spawn(server::serve(
            "metrics",
            metric,
            server::metrics_router(metrics.clone()),
            stopped.clone(),
        )),
    ];

    let result = {
        let host = hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        let ctx_config = context::Config {
            instance_id: flags.instance_id.clone(),
            resync,
            verify_retry_interval: verify_retry_interval(),
            ephemeral_metadata_threads: flags.ephemeral_metadata_threads,
            namespace: watch_namespace.clone(),
        };
        let experiment_config = experiment::Config {
            instance_id: flags.instance_id.clone(),
            resync,
            namespace: watch_namespace.clone(),
        };
        let analysis_config = analysis_run::Config {
            instance_id: flags.instance_id.clone(),
            resync,
            namespace: watch_namespace,
        };
        let provider_init = rollouts_plugin::ProviderInit {
            client: Some(client.clone()),
            controller_namespace: client::controller_namespace(),
        };
        if analysis_only {
            tracing::info!("--controllers=analysis: running the AnalysisRun controller only.");
        }
        let controllers = |stop: watch::Receiver<bool>| {
            let rollouts = (!analysis_only).then(|| {
                controller::run(
                    client.clone(),
                    ctx_config.clone(),
                    registry.clone(),
                    events::Recorder::new(client.clone(), host.clone(), metrics.events.clone()),
                    metrics.clone(),
                    flags.rollout_threads,
                    stop.clone(),
                )
            });
            let experiments = (!analysis_only).then(|| {
                experiment::run(
                    client.clone(),
                    experiment_config.clone(),
                    events::Recorder::new(client.clone(), host.clone(), metrics.events.clone()),
                    metrics.clone(),
                    flags.experiment_threads,
                    stop.clone(),
                )
            });
            let analysis = analysis_run::run(
                client.clone(),
                analysis_config.clone(),
                measure::Providers::new(registry.clone(), provider_init.clone()),
                events::Recorder::new(client.clone(), host.clone(), metrics.events.clone()),
                metrics.clone(),
                flags.analysis_threads,
                stop,
            );
            async move {
                match (rollouts, experiments) {
                    (Some(rollouts), Some(experiments)) => {
                        tokio::try_join!(rollouts, experiments, analysis).map(|_| ())
                    }
                    _ => analysis.await,
                }
            }
        };
        if flags.leader_elect {
            let namespace = if flags.leader_election_namespace.is_empty() {
                client::controller_namespace()
            } else {
                flags.leader_election_namespace.clone()
            };
            let mut lock = leader::LeaseLock::new(
                client.clone(),
                &namespace,
                &flags.lease_name(),
                leader::identity(),
                timing,
            );
            tracing::info!(identity = %lock.identity(), lease = %flags.lease_name(), %namespace, "Leader election: waiting for the lease.");
            let mut rx = shutdown_rx.clone();
            if lock.acquire(&mut rx).await {
                let (stop_tx, stop_rx) = watch::channel(false);
                let running = controllers(stop_rx);
                tokio::pin!(running);
                let outcome = tokio::select! {
                    r = &mut running => r,
                    held = lock.hold(&mut rx) => {
                        let _ = stop_tx.send(true);
                        let drained = running.await;
                        held.and(drained)
                    }
                };
                if !matches!(outcome, Err(Error::Leader(_)))
                    && let Err(err) = lock.release().await
                {
                    tracing::warn!(
                        error = &err as &dyn std::error::Error,
                        "Releasing the lease failed."
                    );
                }
                outcome
            } else {
                Ok(())
            }
        } else {
            tracing::info!("Leader election is turned off. Running in single-instance mode.");
            controllers(shutdown_rx.clone()).await
        }
    };

    // Whatever ended the controllers, stop the servers too.
    for s in servers {
        s.abort();
    }
    tracing::info!("rollouts-rs controller stopped.");
    result
}
