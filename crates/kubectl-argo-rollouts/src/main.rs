//! The `kubectl-argo-rollouts` binary: process setup around the library.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use kubectl_argo_rollouts::cli::Cli;
use kubectl_argo_rollouts::{commands, error};

fn init_logging(global: &kubectl_argo_rollouts::cli::GlobalOptions) -> anyhow::Result<()> {
    let level = match global.loglevel.to_ascii_lowercase().as_str() {
        "panic" | "fatal" | "error" => "error",
        "warn" | "warning" => "warn",
        "info" => "info",
        "debug" => "debug",
        "trace" => "trace",
        other => anyhow::bail!("--loglevel {other:?}: use error, warn, info, debug or trace"),
    };
    // Our own messages at --loglevel; the client libraries only when -v asks for them (their
    // failures reach the user as our one-line errors already).
    let client = match global.kloglevel {
        0..=1 => "off",
        2..=3 => "warn",
        4..=5 => "info",
        6..=7 => "debug",
        _ => "trace",
    };
    let filter = format!(
        "off,kubectl_argo_rollouts={level},kube={client},kube_client={client},\
         kube_runtime={client},hyper={client},hyper_util={client},rustls={client}"
    );
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn main() -> ExitCode {
    // rustls needs a process-wide crypto provider before any TLS connection.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { error::EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if let Err(e) = init_logging(&cli.global) {
        eprintln!("error: {e}");
        return ExitCode::from(error::EXIT_USAGE);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Not locked for the whole run: the log writer on the runtime's threads needs stderr too.
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let result = runtime.block_on(commands::run(cli, &mut out, &mut err));
    let _ = out.flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error::Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
