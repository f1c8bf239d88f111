//! The commands, as async functions over a [`Kube`] client and output writers; [`run`]
//! dispatches a parsed command line.

pub mod actions;
pub mod create;
pub mod view;

use std::io::Write;
use std::time::Duration;

use clap::CommandFactory;
use jiff::Timestamp;

use crate::cli::{
    Cli, Command, CreateCommand, GetCommand, ListCommand, RetryCommand, SetCommand, Shell,
    TerminateCommand,
};
use crate::client::Kube;
use crate::error::Error;
use crate::patches::PromoteMode;

/// The plugin's version line (`kubectl-argo-rollouts: v0.1.0`).
pub fn version_line() -> String {
    format!("kubectl-argo-rollouts: v{}", env!("CARGO_PKG_VERSION"))
}

fn version(short: bool, out: &mut dyn Write) -> Result<(), Error> {
    writeln!(out, "{}", version_line())?;
    if !short {
        writeln!(out, "  Implementation: rollouts-rs (Rust)")?;
        writeln!(
            out,
            "  Platform: {}/{}",
            std::env::consts::OS,
            std::env::consts::ARCH
        )?;
    }
    Ok(())
}

fn completion(shell: Shell, out: &mut dyn Write) -> Result<(), Error> {
    let mut cmd = Cli::command();
    let name = "kubectl-argo-rollouts";
    match shell {
        Shell::Bash => clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, name, out),
        Shell::Zsh => clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, name, out),
        Shell::Fish => clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, name, out),
        Shell::Powershell => {
            clap_complete::generate(clap_complete::Shell::PowerShell, &mut cmd, name, out)
        }
    }
    Ok(())
}

/// `status --timeout`: a Go duration; 0 waits forever.
pub fn parse_timeout(s: &str) -> Result<Option<Duration>, Error> {
    let d = rollouts_engine::duration::parse_go_duration(s).map_err(|e| {
        Error::Usage(format!(
            "--timeout {s:?}: {e} (use a unit, e.g. 30s, 5m, 1h)"
        ))
    })?;
    if d.as_nanos() < 0 {
        return Err(Error::Usage(format!(
            "--timeout {s:?}: must not be negative"
        )));
    }
    Ok((d.as_nanos() > 0).then(|| Duration::from_nanos(d.as_nanos() as u64)))
}

/// Runs a parsed command line, writing results to `out` and notes to `err`.
pub async fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Error> {
    // Offline commands first: they need no cluster.
    match &cli.command {
        Command::Version(v) => return version(v.short, out),
        Command::Completion(c) => return completion(c.shell, out),
        Command::Lint(l) => {
            let (file, text) = read_text(&l.filename)?;
            let problems = crate::lint::lint_text(&file, &text)?;
            write!(out, "{}", crate::lint::render(&file, &problems))?;
            if problems.is_empty() {
                return Ok(());
            }
            return Err(Error::Lint {
                file,
                count: problems.len(),
            });
        }
        Command::Plan(p) => return plan(&cli.global, p, out).await,
        _ => {}
    }
    let kube = Kube::connect(&cli.global).await?;
    match cli.command {
        Command::Get(GetCommand::Rollout(a)) => {
            view::get_rollout(
                &kube,
                &a.name,
                a.watch,
                a.timeout_seconds,
                view::style(a.no_color),
                out,
            )
            .await
        }
        Command::Get(GetCommand::Experiment(a)) => {
            view::get_experiment(&kube, &a.name, a.watch, view::style(a.no_color), out).await
        }
        Command::List(ListCommand::Rollouts(a)) => view::list_rollouts(&kube, &a, out, err).await,
        Command::List(ListCommand::Experiments(a)) => {
            view::list_experiments(&kube, a.all_namespaces, out, err).await
        }
        Command::Promote(a) => {
            if a.skip_current_step && a.skip_all_steps {
                return Err(Error::Usage(
                    "Cannot use skip-current-step and skip-all-steps flags at the same time".into(),
                ));
            }
            if a.skip_current_step {
                writeln!(
                    err,
                    "Flag --skip-current-step has been deprecated, use without the flag instead ex: promote ROLLOUT_NAME"
                )?;
            }
            if a.skip_all_steps {
                writeln!(
                    err,
                    "Flag --skip-all-steps has been deprecated, use --full instead"
                )?;
            }
            let mode = if a.skip_current_step {
                PromoteMode::SkipCurrentStep
            } else if a.skip_all_steps {
                PromoteMode::SkipAllSteps
            } else if a.full {
                PromoteMode::Full
            } else {
                PromoteMode::Step
            };
            actions::promote(&kube, &a.name, mode, out).await
        }
        Command::Abort(a) => actions::abort(&kube, &a.names, out).await,
        Command::Retry(RetryCommand::Rollout(a)) => {
            actions::retry_rollout(&kube, &a.names, out).await
        }
        Command::Retry(RetryCommand::Experiment(a)) => {
            actions::retry_experiment(&kube, &a.names, out).await
        }
        Command::Pause(a) => actions::pause(&kube, &a.names, out).await,
        Command::Restart(a) => {
            actions::restart(&kube, &a.name, a.in_.as_deref(), Timestamp::now(), out).await
        }
        Command::Set(SetCommand::Image(a)) => {
            actions::set_image(&kube, &a.name, &a.container_image, out).await
        }
        Command::Undo(a) => actions::undo(&kube, &a.name, a.to_revision, out).await,
        Command::Status(a) => {
            let timeout = parse_timeout(&a.timeout)?;
            view::status(&kube, &a.name, a.watch, timeout, out).await
        }
        Command::Create(a) => match a.command {
            Some(CreateCommand::Analysisrun(ar)) => {
                create::create_analysis_run(&kube, &ar, out).await.map(drop)
            }
            None => {
                if a.filenames.is_empty() {
                    return Err(Error::Usage(
                        "create needs -f FILE (or the `analysisrun` subcommand)".into(),
                    ));
                }
                if a.filenames.len() > 1 && a.watch {
                    return Err(Error::Usage("Cannot watch multiple resources".into()));
                }
                let created = create::create_files(&kube, &a.filenames, out).await?;
                if a.watch {
                    let style = view::style(a.no_color);
                    match created.as_slice() {
                        [c] if c.kind == "Rollout" => {
                            view::get_rollout(&kube, &c.name, true, 0, style, out).await
                        }
                        [c] if c.kind == "Experiment" => {
                            view::get_experiment(&kube, &c.name, true, style, out).await
                        }
                        _ => Err(Error::Usage(
                            "Can only watch resources of type Rollout or Experiment".into(),
                        )),
                    }
                } else {
                    Ok(())
                }
            }
        },
        Command::Terminate(TerminateCommand::Analysisrun(a)) => {
            actions::terminate_analysis_runs(&kube, &a.names, out).await
        }
        Command::Terminate(TerminateCommand::Experiment(a)) => {
            actions::terminate_experiments(&kube, &a.names, out).await
        }
        Command::Why(w) => {
            let style = view::style(w.no_color);
            if w.watch {
                let timeout =
                    (w.timeout_seconds > 0).then(|| Duration::from_secs(w.timeout_seconds));
                crate::why::watch(&kube, &w.name, w.output, timeout, style, out).await
            } else {
                crate::why::why(&kube, &w.name, w.output, style, out).await
            }
        }
        Command::Version(_) | Command::Completion(_) | Command::Lint(_) | Command::Plan(_) => {
            Ok(())
        }
    }
}

/// `plan`: the files and flags are checked before the cluster is used (`--from live` only).
async fn plan(
    global: &crate::cli::GlobalOptions,
    args: &crate::cli::PlanArgs,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let settings = crate::plan::Settings::from_args(args)?;
    let input = crate::plan::read_input(&args.filenames)?;
    let report = match args.from {
        crate::cli::PlanFrom::New => crate::plan::plan_new(&input, &settings)?,
        crate::cli::PlanFrom::Live => {
            let kube = Kube::connect(global).await?;
            crate::plan::plan_live(&kube, input, &settings).await?
        }
    };
    let text = match args.output {
        crate::cli::OutputFormat::Text => {
            crate::plan::render_text(&report, view::style(args.no_color))
        }
        format => crate::plan::render_data(&report, format)?,
    };
    write!(out, "{text}")?;
    Ok(())
}

/// Reads a file as text, naming it in errors.
pub fn read_text(path: &std::path::Path) -> Result<(String, String), Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((path.display().to_string(), text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("0s").unwrap(), None);
        assert_eq!(parse_timeout("90s").unwrap(), Some(Duration::from_secs(90)));
        assert!(parse_timeout("90").is_err());
        assert!(parse_timeout("-1s").is_err());
    }

    #[test]
    fn completion_scripts_name_the_plugin() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Powershell] {
            let mut out = Vec::new();
            completion(shell, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("kubectl-argo-rollouts"), "{shell:?}");
            assert!(text.contains("promote"), "{shell:?}");
        }
    }
}
