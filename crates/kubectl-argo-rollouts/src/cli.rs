//! The command line: Argo's commands, aliases and flags (so that scripts written for
//! `kubectl argo rollouts` keep working), plus `plan` and `why`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Manage Argo Rollouts (rollouts-rs).
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-argo-rollouts",
    bin_name = "kubectl argo rollouts",
    version,
    about = "Manage Argo Rollouts: inspect, promote, abort, retry, lint and plan rollouts",
    long_about = "kubectl argo rollouts is a drop-in replacement for the Argo Rollouts kubectl plugin, \
                  working against the rollouts-rs controller (or Argo's). Beyond Argo it can `plan` a \
                  rollout before applying it and tell `why` a rollout is not progressing.",
    propagate_version = true,
    disable_version_flag = true
)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalOptions,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// kubectl's connection flags and the plugin's log flags.
#[derive(Clone, Debug, Default, Args)]
pub struct GlobalOptions {
    /// Path to the kubeconfig file to use for CLI requests.
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The name of the kubeconfig context to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The name of the kubeconfig cluster to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The name of the kubeconfig user to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// If present, the namespace scope for this CLI request.
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// The address and port of the Kubernetes API server.
    #[arg(short = 's', long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token for authentication to the API server.
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Username to impersonate for the operation.
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Group to impersonate for the operation (repeatable).
    #[arg(long = "as-group", global = true, value_name = "GROUP")]
    pub as_group: Vec<String>,
    /// Path to a cert file for the certificate authority.
    #[arg(long, global = true, value_name = "PATH")]
    pub certificate_authority: Option<PathBuf>,
    /// Path to a client certificate file for TLS.
    #[arg(long, global = true, value_name = "PATH")]
    pub client_certificate: Option<PathBuf>,
    /// Path to a client key file for TLS.
    #[arg(long, global = true, value_name = "PATH")]
    pub client_key: Option<PathBuf>,
    /// If true, the server's certificate will not be checked for validity.
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,
    /// Server name to use for server certificate validation.
    #[arg(long, global = true, value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// The length of time to wait before giving up on a single server request (e.g. 1s, 2m;
    /// 0 means no timeout).
    #[arg(long, global = true, value_name = "DURATION", default_value = "0")]
    pub request_timeout: String,
    /// Log level for the Kubernetes client library (kubectl's -v).
    #[arg(
        short = 'v',
        long = "kloglevel",
        global = true,
        value_name = "N",
        default_value_t = 0
    )]
    pub kloglevel: u8,
    /// Log level for kubectl argo rollouts (error, warn, info, debug, trace).
    #[arg(long, global = true, value_name = "LEVEL", default_value = "info")]
    pub loglevel: String,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Get details about rollouts and experiments.
    #[command(subcommand)]
    Get(GetCommand),
    /// List rollouts or experiments.
    #[command(subcommand)]
    List(ListCommand),
    /// Promote a rollout: release the current pause or step; `--full` skips everything left.
    Promote(PromoteArgs),
    /// Abort a rollout: go back to the stable ReplicaSet (the spec still names the new one).
    Abort(NamesArgs),
    /// Retry an aborted rollout or a failed experiment.
    #[command(subcommand)]
    Retry(RetryCommand),
    /// Pause a rollout (set `spec.paused`).
    Pause(NamesArgs),
    /// Restart the pods of a rollout.
    Restart(RestartArgs),
    /// Update resources of a rollout.
    #[command(subcommand)]
    Set(SetCommand),
    /// Roll back to a previous revision.
    Undo(UndoArgs),
    /// Show the status of a rollout; watch it until it finishes (for CI: see the exit codes).
    Status(StatusArgs),
    /// Lint and validate Rollout manifests offline.
    Lint(LintArgs),
    /// Create a Rollout, Experiment, AnalysisTemplate, ClusterAnalysisTemplate or AnalysisRun.
    Create(CreateArgs),
    /// Terminate an AnalysisRun or an Experiment.
    #[command(subcommand)]
    Terminate(TerminateCommand),
    /// Print version information.
    Version(VersionArgs),
    /// Generate a shell completion script.
    Completion(CompletionArgs),
    /// Simulate a rollout before applying it: steps, pods, traffic, pauses, analyses, duration.
    Plan(PlanArgs),
    /// Explain what holds a rollout now and what would release it.
    Why(WhyArgs),
}

/// `get` subcommands.
#[derive(Debug, Subcommand)]
pub enum GetCommand {
    /// Get details about a rollout.
    #[command(visible_aliases = ["ro", "rollouts"])]
    Rollout(GetRolloutArgs),
    /// Get details about an experiment.
    #[command(visible_aliases = ["exp", "experiments"])]
    Experiment(GetExperimentArgs),
}

/// `get rollout`.
#[derive(Debug, Args)]
pub struct GetRolloutArgs {
    /// The rollout.
    pub name: String,
    /// Watch live updates to the rollout (ends when the rollout finishes an update).
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Do not colorize output.
    #[arg(long)]
    pub no_color: bool,
    /// Timeout after specified seconds (with --watch).
    #[arg(long, default_value_t = 0)]
    pub timeout_seconds: u64,
}

/// `get experiment`.
#[derive(Debug, Args)]
pub struct GetExperimentArgs {
    /// The experiment.
    pub name: String,
    /// Watch live updates to the experiment (ends when the experiment completes).
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Do not colorize output.
    #[arg(long)]
    pub no_color: bool,
}

/// `list` subcommands.
#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// List rollouts.
    #[command(visible_aliases = ["ro", "rollout"])]
    Rollouts(ListRolloutsArgs),
    /// List experiments.
    #[command(visible_aliases = ["exp", "experiment"])]
    Experiments(ListExperimentsArgs),
}

/// `list rollouts`.
#[derive(Debug, Args)]
pub struct ListRolloutsArgs {
    /// Only show rollout with specified name.
    #[arg(long, default_value = "")]
    pub name: String,
    /// Include all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Watch for changes.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Print timestamps on updates.
    #[arg(long)]
    pub timestamps: bool,
}

/// `list experiments`.
#[derive(Debug, Args)]
pub struct ListExperimentsArgs {
    /// Include all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

/// `promote`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The rollout.
    pub name: String,
    /// Perform a full promotion, skipping analysis, pauses, and steps.
    #[arg(long)]
    pub full: bool,
    /// Deprecated: skip the currently running canary step (use without the flag instead).
    #[arg(short = 'c', long, hide = true)]
    pub skip_current_step: bool,
    /// Deprecated: skip the remaining steps (use --full instead).
    #[arg(short = 'a', long, hide = true)]
    pub skip_all_steps: bool,
}

/// Commands over one or more names.
#[derive(Debug, Args)]
pub struct NamesArgs {
    /// Names.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `retry` subcommands.
#[derive(Debug, Subcommand)]
pub enum RetryCommand {
    /// Retry an aborted rollout.
    #[command(visible_aliases = ["ro", "rollouts"])]
    Rollout(NamesArgs),
    /// Retry an experiment.
    #[command(visible_aliases = ["exp", "experiments"])]
    Experiment(NamesArgs),
}

/// `restart`.
#[derive(Debug, Args)]
pub struct RestartArgs {
    /// The rollout.
    pub name: String,
    /// Amount of time before a restart (e.g. 30s, 5m, 1h).
    #[arg(short = 'i', long = "in", value_name = "DURATION")]
    pub in_: Option<String>,
}

/// `set` subcommands.
#[derive(Debug, Subcommand)]
pub enum SetCommand {
    /// Update the image of a rollout (`*` as the container name sets every container).
    Image(SetImageArgs),
}

/// `set image`.
#[derive(Debug, Args)]
pub struct SetImageArgs {
    /// The rollout.
    pub name: String,
    /// `CONTAINER=IMAGE`.
    #[arg(value_name = "CONTAINER=IMAGE")]
    pub container_image: String,
}

/// `undo`.
#[derive(Debug, Args)]
pub struct UndoArgs {
    /// The rollout.
    pub name: String,
    /// The revision to rollback to (0: the previous revision).
    #[arg(long, default_value_t = 0)]
    pub to_revision: i64,
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The rollout.
    pub name: String,
    /// Watch the status of the rollout until it's done (`--watch=false` prints it once).
    #[arg(
        short = 'w',
        long,
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub watch: bool,
    /// How long to watch before giving up (e.g. 1s, 2m, 3h; 0 waits forever).
    #[arg(short = 't', long, default_value = "0s", value_name = "DURATION")]
    pub timeout: String,
}

/// `lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// File to lint.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub filename: PathBuf,
}

/// `create`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CreateArgs {
    /// `create analysisrun`.
    #[command(subcommand)]
    pub command: Option<CreateCommand>,
    /// Files to use to create the resource.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub filenames: Vec<PathBuf>,
    /// Watch live updates to the resource after creating.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Do not colorize output.
    #[arg(long)]
    pub no_color: bool,
}

/// `create` subcommands.
#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Create an AnalysisRun from an AnalysisTemplate or a ClusterAnalysisTemplate.
    #[command(visible_alias = "ar")]
    Analysisrun(CreateAnalysisRunArgs),
}

/// `create analysisrun`.
#[derive(Debug, Args)]
pub struct CreateAnalysisRunArgs {
    /// Use the specified name for the run.
    #[arg(long, default_value = "")]
    pub name: String,
    /// Use the specified generateName for the run.
    #[arg(long, default_value = "")]
    pub generate_name: String,
    /// Instance-ID for the AnalysisRun.
    #[arg(long, default_value = "")]
    pub instance_id: String,
    /// Arguments to the parameter template (`NAME=VALUE`, repeatable).
    #[arg(short = 'a', long = "argument", value_name = "NAME=VALUE")]
    pub arguments: Vec<String>,
    /// Create an AnalysisRun from an AnalysisTemplate or ClusterAnalysisTemplate in the cluster.
    #[arg(long, default_value = "")]
    pub from: String,
    /// Create an AnalysisRun from an AnalysisTemplate or ClusterAnalysisTemplate in a local file.
    #[arg(long, default_value = "")]
    pub from_file: String,
    /// Use a ClusterAnalysisTemplate instead of a AnalysisTemplate.
    #[arg(long)]
    pub global: bool,
}

/// `terminate` subcommands.
#[derive(Debug, Subcommand)]
pub enum TerminateCommand {
    /// Terminate an AnalysisRun.
    #[command(visible_aliases = ["ar", "analysisruns"])]
    Analysisrun(NamesArgs),
    /// Terminate an experiment.
    #[command(visible_aliases = ["exp", "experiments"])]
    Experiment(NamesArgs),
}

/// `version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print just the version number.
    #[arg(long)]
    pub short: bool,
}

/// Shells for `completion`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
    /// PowerShell.
    Powershell,
}

/// `completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Where `plan` starts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum PlanFrom {
    /// As an update of an existing Rollout to the file's spec (a new Rollout deploys its first
    /// revision at once, without steps).
    #[default]
    New,
    /// From the live Rollout of the same name: the file is the update applied to it.
    Live,
}

/// Output formats of `plan` and `why`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For a person: a table (`plan`) or a few lines (`why`).
    #[default]
    Text,
    /// JSON: the engine's Timeline (`plan`) or Blocker (`why`).
    Json,
    /// The same as YAML.
    Yaml,
}

/// How every AnalysisRun (or Experiment) of a plan is assumed to end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum RunOutcome {
    /// `Successful`.
    #[default]
    #[value(alias = "successful")]
    Success,
    /// `Failed`.
    #[value(alias = "failed")]
    Failure,
    /// `Inconclusive`.
    Inconclusive,
    /// `Error`.
    Error,
}

impl RunOutcome {
    /// The run phase.
    pub fn phase(self) -> &'static str {
        match self {
            RunOutcome::Success => "Successful",
            RunOutcome::Failure => "Failed",
            RunOutcome::Inconclusive => "Inconclusive",
            RunOutcome::Error => "Error",
        }
    }
}

/// `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The Rollout manifest (the first Rollout of the files is planned; AnalysisTemplates of the
    /// files give analysis durations). Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    pub filenames: Vec<PathBuf>,
    /// Simulate an update of an existing Rollout (`new`) or start from the live Rollout of that
    /// name with the file's spec (`live`).
    #[arg(long, value_enum, default_value_t = PlanFrom::New)]
    pub from: PlanFrom,
    /// How long a pod takes to become ready once created (the Rollout's minReadySeconds is
    /// added).
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub pod_ready_delay: String,
    /// How every AnalysisRun ends (after its measurements).
    #[arg(long, value_enum, value_name = "OUTCOME", default_value_t = RunOutcome::Success)]
    pub analysis: RunOutcome,
    /// How every Experiment ends (after its duration).
    #[arg(long, value_enum, value_name = "OUTCOME", default_value_t = RunOutcome::Success)]
    pub experiment: RunOutcome,
    /// Promote indefinite pauses (`pause: {}`, blue-green without auto-promotion, inconclusive
    /// runs) this long after they start; without it the plan stops at the first one.
    #[arg(long, value_name = "DURATION")]
    pub promote_after: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Do not colorize output.
    #[arg(long)]
    pub no_color: bool,
}

/// `why`.
#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The rollout.
    pub name: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Explain again each time the gate changes, until the rollout is Healthy.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Stop watching after this many seconds (0: never).
    #[arg(long, default_value_t = 0)]
    pub timeout_seconds: u64,
    /// Do not colorize output.
    #[arg(long)]
    pub no_color: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Cli {
        let mut all = vec!["kubectl-argo-rollouts"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }

    #[test]
    fn argo_spellings_parse() {
        let cli = parse(&[
            "get",
            "ro",
            "web",
            "-w",
            "-n",
            "prod",
            "--timeout-seconds",
            "60",
        ]);
        match cli.command {
            Command::Get(GetCommand::Rollout(a)) => {
                assert_eq!(a.name, "web");
                assert!(a.watch);
                assert_eq!(a.timeout_seconds, 60);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(cli.global.namespace.as_deref(), Some("prod"));
        let cli = parse(&["-n", "x", "list", "ro", "-A", "--name", "web"]);
        assert!(matches!(
            cli.command,
            Command::List(ListCommand::Rollouts(ListRolloutsArgs {
                all_namespaces: true,
                ..
            }))
        ));
        let cli = parse(&["promote", "web", "-a"]);
        assert!(matches!(
            cli.command,
            Command::Promote(PromoteArgs {
                skip_all_steps: true,
                ..
            })
        ));
        let cli = parse(&["status", "web", "--watch=false", "-t", "5m"]);
        assert!(matches!(
            cli.command,
            Command::Status(StatusArgs { watch: false, .. })
        ));
        let cli = parse(&["status", "-w", "web"]);
        assert!(matches!(
            cli.command,
            Command::Status(StatusArgs { watch: true, .. })
        ));
        let cli = parse(&[
            "create",
            "analysisrun",
            "--from",
            "t",
            "-a",
            "x=1",
            "-a",
            "y=2",
        ]);
        match cli.command {
            Command::Create(CreateArgs {
                command: Some(CreateCommand::Analysisrun(a)),
                ..
            }) => {
                assert_eq!(a.arguments, vec!["x=1", "y=2"])
            }
            other => panic!("{other:?}"),
        }
        let cli = parse(&["create", "-f", "a.yaml", "-f", "b.yaml"]);
        assert!(
            matches!(cli.command, Command::Create(CreateArgs { command: None, ref filenames, .. }) if filenames.len() == 2)
        );
        let cli = parse(&[
            "terminate",
            "ar",
            "a",
            "b",
            "--kubeconfig",
            "/k",
            "--context",
            "c",
        ]);
        assert_eq!(cli.global.context.as_deref(), Some("c"));
        assert!(
            matches!(cli.command, Command::Terminate(TerminateCommand::Analysisrun(NamesArgs { ref names })) if names.len() == 2)
        );
        let cli = parse(&[
            "restart",
            "web",
            "--in",
            "10s",
            "-v",
            "6",
            "--loglevel",
            "debug",
        ]);
        assert_eq!(cli.global.kloglevel, 6);
        assert!(matches!(
            cli.command,
            Command::Restart(RestartArgs { in_: Some(_), .. })
        ));
        let cli = parse(&["set", "image", "web", "app=nginx:2"]);
        assert!(matches!(cli.command, Command::Set(SetCommand::Image(_))));
        let cli = parse(&["undo", "web", "--to-revision=3"]);
        assert!(matches!(
            cli.command,
            Command::Undo(UndoArgs { to_revision: 3, .. })
        ));
        let cli = parse(&["plan", "-f", "r.yaml", "--from", "live"]);
        assert!(matches!(
            cli.command,
            Command::Plan(PlanArgs {
                from: PlanFrom::Live,
                ..
            })
        ));
        let cli = parse(&[
            "plan",
            "-f",
            "r.yaml",
            "--analysis",
            "failed",
            "--experiment=inconclusive",
            "--promote-after",
            "5m",
            "-o",
            "json",
        ]);
        match cli.command {
            Command::Plan(p) => {
                assert_eq!(p.analysis, RunOutcome::Failure);
                assert_eq!(p.experiment, RunOutcome::Inconclusive);
                assert_eq!(p.promote_after.as_deref(), Some("5m"));
                assert_eq!(p.output, OutputFormat::Json);
                assert_eq!(p.pod_ready_delay, "0s");
            }
            other => panic!("{other:?}"),
        }
        let cli = parse(&["why", "web", "-w", "-o", "json"]);
        assert!(matches!(
            cli.command,
            Command::Why(WhyArgs {
                watch: true,
                output: OutputFormat::Json,
                ..
            })
        ));
    }

    #[test]
    fn missing_names_are_usage_errors() {
        for args in [
            &["abort"][..],
            &["get", "rollout"],
            &["promote"],
            &["lint"],
            &["plan"],
            &["why"],
            &["plan", "-f", "r.yaml", "--analysis", "maybe"],
        ] {
            let mut all = vec!["kubectl-argo-rollouts"];
            all.extend_from_slice(args);
            assert!(Cli::try_parse_from(all).is_err(), "{args:?}");
        }
    }
}
