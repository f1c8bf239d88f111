//! Logging: `tracing` with the level of `--loglevel` and the format of `--logformat` (`text` or
//! `json`, one object per line). `RUST_LOG` overrides the level filter when set.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::flags::{LogFormat, LogLevel};

fn directive(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}

/// Installs the global subscriber (once; later calls are ignored).
pub fn init(level: LogLevel, format: LogFormat) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| {
            // Our crates at the chosen level; the libraries one notch quieter unless debugging.
            let libs = match level {
                LogLevel::Trace | LogLevel::Debug => directive(level),
                _ => "warn",
            };
            EnvFilter::new(format!(
                "{libs},rollouts_controller={lvl},rollouts_engine={lvl},rollouts_plugin={lvl}",
                lvl = directive(level)
            ))
        });
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false),
            )
            .try_init(),
        LogFormat::Text => registry.with(fmt::layer().with_target(false)).try_init(),
    };
}
