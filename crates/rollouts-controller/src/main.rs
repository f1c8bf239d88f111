//! `rollouts-controller`: the process entry point. Everything else lives in the library
//! ([`rollouts_controller::run`]).

use std::process::ExitCode;

fn main() -> ExitCode {
    // One TLS crypto provider for the whole process, before any client exists.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let flags = rollouts_controller::Flags::from_env();
    if flags.version {
        println!("rollouts-controller {}", rollouts_controller::version());
        match rollouts_plugins::registry() {
            Ok(registry) => println!("{}", registry.describe()),
            Err(err) => eprintln!("plugin registry: {err}"),
        }
        return ExitCode::SUCCESS;
    }
    match run(flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Our errors already name their cause: print the top one only.
            tracing::error!("{err}");
            eprintln!("rollouts-controller: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(flags: rollouts_controller::Flags) -> anyhow::Result<()> {
    let level = flags.log_level()?;
    let (format, _) = flags.log_format();
    rollouts_controller::telemetry::init(level, format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(rollouts_controller::run(flags))?;
    Ok(())
}
