//! `cargo xtask`: the project's development tasks, in Rust so that they run the same everywhere.
//!
//! Every task that needs an outside tool (Go for the cluster binaries, Prometheus for the metric
//! tests) installs or builds it itself and says what it is doing.

use std::{path::PathBuf, process::ExitCode};

mod bench;
mod ci;
mod cluster;
mod codegen;
mod crds;
mod demo;
mod helm;
mod prometheus;
mod tidy;
mod util;

const USAGE: &str = "\
usage: cargo xtask <task> [args]

tasks:
  bench [engine|controller]
                         benchmarks against the speed and memory goals (engine plan time;
                         release controller on a local cluster); not part of ci
  ci                     format check, clippy -D warnings, unit tests, then e2e tests on a local cluster
  demo [--keep]          a canary rollout, live, step by step, on a local cluster (start here)
  crds [--check]         write the CRD manifests to charts/rollouts/crds/ (--check: fail if they are stale)
  codegen plugins [--check]
                         generate the plugin facade crates/rollouts-plugins from the plugin crates
  prometheus             install Prometheus (Debian package) for the prometheus provider's tests
  cluster up|down|status|env
                         a local Kubernetes control plane (kube-apiserver, etcd, KCM, scheduler, KWOK)
  helm build|lint|template|exec
                         Helm (built from the Go module proxy on first use) for charts/rollouts
  tidy                   check the architecture rules (dependency direction, lints, module docs)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match task.as_str() {
        "bench" => bench::run(rest),
        "ci" => ci::run(rest),
        "crds" => crds::run(rest),
        "codegen" => codegen::run(rest),
        "prometheus" => prometheus::run(rest),
        "demo" => demo::run(rest),
        "cluster" => cluster::run(rest),
        "helm" => helm::run(rest),
        "tidy" => tidy::run(rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("xtask: unknown task `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask {task}: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of `xtask/`).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}
