//! `cargo xtask ci`: everything CI checks, in order.

use std::{path::Path, process::Command, time::Instant};

use anyhow::Result;

use crate::{cluster, helm, project_root, prometheus, util};

/// A cargo command in `root` for CI: without incremental compilation, which only pays off when
/// the same tree is rebuilt many times and would add gigabytes to a fresh clone's target
/// directory (the cargo processes that tests start inherit the setting).
fn cargo_cmd(cargo: &str, root: &Path) -> Command {
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).env("CARGO_INCREMENTAL", "0");
    cmd
}

pub fn run(_args: &[String]) -> Result<()> {
    let root = project_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    util::step("cargo fmt --check");
    util::timed("fmt", || {
        util::run(cargo_cmd(&cargo, &root).args(["fmt", "--all", "--", "--check"]))
    })?;
    util::step("cargo clippy --workspace --all-targets -- -D warnings");
    util::timed("clippy", || {
        util::run(cargo_cmd(&cargo, &root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    // The chart (Helm is built from the Go module proxy on first use, then cached; the chart
    // tests of `cargo test -p xtask` use the same build).
    util::step("helm lint --strict charts/rollouts");
    util::timed("helm lint", || {
        helm::lint(&cluster::Cache::from_env()?, &[])
    })?;
    // The prometheus provider's tests start a real Prometheus.
    prometheus::ensure()?;
    util::step("cargo test --workspace --exclude e2e (unit and integration tests)");
    util::timed("tests", || {
        util::run(cargo_cmd(&cargo, &root).args(["test", "--workspace", "--exclude", "e2e"]))
    })?;
    e2e(&root, &cargo)
}

/// The e2e phase: a local cluster of our own (its own state directory, its processes in our
/// process group), `cargo test -p e2e` against it, and the cluster stopped at the end whatever
/// happened.
fn e2e(root: &Path, cargo: &str) -> Result<()> {
    let cache = cluster::Cache::from_env()?;
    let dir = cache.root().join("clusters").join("ci");
    // A cluster left behind by an earlier, interrupted run.
    cluster::down(&dir)?;
    let started = Instant::now();
    let tests = util::timed("e2e cluster up", || {
        cluster::up(&cache, &dir, cluster::Detach::No)
    })
    .and_then(|c| {
        util::step("cargo test -p e2e (against the local cluster)");
        util::timed("e2e tests", || {
            util::run(
                cargo_cmd(cargo, root)
                    .env("ROLLOUTS_E2E_KUBECONFIG", &c.kubeconfig)
                    .args(["test", "-p", "e2e"]),
            )
        })
    });
    if tests.is_err() {
        cluster::print_log_tails(&dir, 15);
    }
    let stopped = cluster::down(&dir);
    eprintln!("    e2e phase: {}", util::human(started.elapsed()));
    tests?;
    stopped
}
