//! `cargo xtask prometheus`: makes sure a Prometheus server binary is installed for the tests of
//! `rollouts-metric-prometheus`, which start a real Prometheus on 127.0.0.1.
//!
//! The binary is found as the tests find it: `$ROLLOUTS_RS_PROMETHEUS`, `prometheus` on the
//! `PATH`, or Debian's `/usr/bin/prometheus`. When none exists, the task installs Debian's
//! `prometheus` package with `apt-get` (as root, or through `sudo`), saying what it does. On a
//! host with systemd the package also enables a system service on port 9090; the tests do not use
//! it (each starts its own server on a free port).

use std::{path::PathBuf, process::Command};

use anyhow::{Context, Result, bail};

use crate::util;

/// Environment variable naming a Prometheus binary to use instead of searching.
pub const BINARY_ENV: &str = "ROLLOUTS_RS_PROMETHEUS";

pub fn run(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        bail!("unexpected arguments {args:?}; usage: cargo xtask prometheus");
    }
    let binary = ensure()?;
    eprintln!("    {}", version(&binary)?);
    Ok(())
}

/// The Prometheus binary, if one is installed.
pub fn find() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(BINARY_ENV) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("prometheus"))
        .chain([PathBuf::from("/usr/bin/prometheus")])
        .find(|p| p.is_file())
}

/// Finds Prometheus, installing Debian's package when it is missing.
pub fn ensure() -> Result<PathBuf> {
    if let Some(binary) = find() {
        util::step(&format!(
            "Prometheus for the provider tests: {}",
            binary.display()
        ));
        return Ok(binary);
    }
    util::step(
        "Prometheus is not installed: installing Debian's `prometheus` package with apt-get (for the prometheus provider's tests)",
    );
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let apt = |args: &[&str]| {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.args(["-n", "apt-get"]);
            sudo
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    util::timed("apt-get update", || util::run(&mut apt(&["update", "-q"])))?;
    util::timed("apt-get install prometheus", || {
        util::run(&mut apt(&["install", "-y", "-q", "--no-install-recommends", "prometheus"]))
    })
    .context("installing Prometheus failed; install it by hand (Debian/Ubuntu: `apt-get install prometheus`) or set ROLLOUTS_RS_PROMETHEUS")?;
    find().context(
        "apt-get installed prometheus, but no `prometheus` binary is on the PATH or in /usr/bin",
    )
}

fn version(binary: &PathBuf) -> Result<String> {
    let out = Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", binary.display()))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Ok(text.lines().next().unwrap_or_default().to_string())
}
