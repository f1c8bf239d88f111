//! Logging: `tracing` with the level of `--loglevel` and the format of `--logformat` (`text` or
//! `json`, one object per line). `RUST_LOG` overrides the level filter when set.
//!
//! Secret values that AnalysisRun arguments read from Secrets are registered with
//! [`redact_in_logs`] and replaced by `*****` in every log line, whoever logs it (our code, a
//! metric provider, a client library), as Argo's log redactor does.

use std::{
    io::{self, Write},
    sync::RwLock,
};

use tracing_subscriber::{EnvFilter, fmt, fmt::MakeWriter, prelude::*};

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
                    .with_current_span(false)
                    .with_writer(RedactingStdout),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(fmt::layer().with_target(false).with_writer(RedactingStdout))
            .try_init(),
    };
}

/// The secret values to keep out of the log (as written, and as JSON escapes them).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// At most this many secret values are remembered (the oldest are forgotten first).
const MAX_SECRETS: usize = 10_000;

/// Keeps `secret` out of every later log line.
pub fn redact_in_logs(secret: &str) {
    if secret.is_empty() {
        return;
    }
    let escaped = serde_json::to_string(secret).unwrap_or_default();
    let escaped = escaped
        .strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(secret)
        .to_string();
    let mut secrets = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    for form in [secret.to_string(), escaped] {
        if !secrets.contains(&form) {
            if secrets.len() >= MAX_SECRETS {
                secrets.remove(0);
            }
            secrets.push(form);
        }
    }
    // Longer values first, so that a value containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every registered secret replaced by `*****`, or `None` when it holds none.
pub fn redacted(text: &str) -> Option<String> {
    let secrets = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    if !secrets.iter().any(|s| text.contains(s.as_str())) {
        return None;
    }
    let mut out = text.to_string();
    for s in secrets.iter() {
        out = out.replace(s.as_str(), "*****");
    }
    Some(out)
}

/// Standard output, with secrets redacted from each formatted event (the formatter writes an
/// event in one call).
struct RedactingStdout;

impl<'a> MakeWriter<'a> for RedactingStdout {
    type Writer = Redacting<io::Stdout>;

    fn make_writer(&'a self) -> Self::Writer {
        Redacting(io::stdout())
    }
}

/// A writer that redacts registered secrets from what passes through it.
#[derive(Debug)]
pub struct Redacting<W>(pub W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match redacted(&String::from_utf8_lossy(buf)) {
            Some(clean) => {
                self.0.write_all(clean.as_bytes())?;
                Ok(buf.len())
            }
            None => self.0.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_never_reach_the_log() {
        redact_in_logs("pa\"ss-0f-the-test");
        redact_in_logs("");
        let mut out = Redacting(Vec::new());
        write!(out, "GET /?token=pa\"ss-0f-the-test failed").unwrap();
        write!(out, " {{\"msg\":\"token=pa\\\"ss-0f-the-test\"}}").unwrap();
        write!(out, " plain").unwrap();
        let text = String::from_utf8(out.0).unwrap();
        assert_eq!(
            text,
            "GET /?token=***** failed {\"msg\":\"token=*****\"} plain"
        );
        assert_eq!(redacted("nothing here"), None);
    }
}
