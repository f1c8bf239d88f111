//! `cargo xtask helm`: Helm for the chart in `charts/rollouts/`, built from the Go module proxy.
//!
//! Helm has no Debian package, and we download no prebuilt binaries: on first use the task builds
//! `helm.sh/helm/v3/cmd/helm` at [`HELM_VERSION`] with the Go toolchain and the caches of the
//! cluster binaries (`GOTOOLCHAIN=local`, `GOSUMDB=off`, `<cache>/go/{mod,build}`; see
//! [`crate::cluster`]), and caches it in `<cache>/bin/helm-<version>/`. The version is stamped as
//! Helm's own release build stamps it, and so is the Kubernetes version Helm assumes for
//! `.Capabilities` and for its deprecation checks (the minor of the `k8s.io/client-go` it is
//! built with, read from Helm's `go.mod`).
//!
//! Helm runs with its own configuration, cache and data directories under `<cache>/helm/`, so the
//! tasks neither read nor change the user's repositories and plugins.
//!
//! The chart tests of this module (`cargo test -p xtask`) render the chart with the built Helm and
//! check the objects; the e2e tests render it through `cargo xtask helm template`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, Result, bail};

use crate::{
    cluster::{
        Cache,
        build::{self, Go},
    },
    project_root, util,
};

/// The Helm version we build (served by the Go module proxy; some versions are refused with 403).
pub const HELM_VERSION: &str = "v3.22.0";
/// Helm's Go module.
const MODULE: &str = "helm.sh/helm/v3";
/// The release name `template` uses when none is given.
pub const DEFAULT_RELEASE: &str = "rollouts";

const USAGE: &str = "\
usage: cargo xtask helm <command> [args]

commands:
  build                     build Helm if needed (first use only) and print its path
  lint [HELM ARGS]          helm lint --strict charts/rollouts [HELM ARGS]
  template [RELEASE] [HELM ARGS]
                            render charts/rollouts to stdout (release `rollouts` unless given), e.g.
                            cargo xtask helm template -n argo-rollouts --set clusterInstall=false
  exec HELM ARGS            any helm command with the built Helm, e.g. `exec show values charts/rollouts`

Helm is built from the Go module proxy at the pinned version on first use (Go >= 1.26 needed) and
cached in <cache>/bin/helm-<version>/ (<cache>: $ROLLOUTS_RS_CACHE, default ~/.cache/rollouts-rs).
";

/// Entry point of `cargo xtask helm`.
pub fn run(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        bail!("missing command");
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let cache = Cache::from_env()?;
    match command.as_str() {
        "build" => {
            if !rest.is_empty() {
                bail!("`build` takes no arguments\n\n{USAGE}");
            }
            let helm = ensure(&cache)?;
            eprintln!("    {}", version(&cache, &helm)?);
            println!("{}", helm.display());
            Ok(())
        }
        "lint" => lint(&cache, &rest),
        "template" => {
            let helm = ensure(&cache)?;
            let (release, flags) = release_and_flags(&rest);
            let mut cmd = helm_command(&cache, &helm);
            cmd.args(["template", release]).arg(chart_dir()).args(flags);
            util::run(&mut cmd)
        }
        "exec" => {
            if rest.is_empty() {
                bail!("`exec` needs the helm command to run\n\n{USAGE}");
            }
            let helm = ensure(&cache)?;
            util::run(helm_command(&cache, &helm).args(&rest))
        }
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

/// `helm lint --strict charts/rollouts EXTRA` with the built Helm (built first if needed); also
/// a step of `cargo xtask ci`.
pub fn lint(cache: &Cache, extra: &[&str]) -> Result<()> {
    let helm = ensure(cache)?;
    let mut cmd = helm_command(cache, &helm);
    cmd.args(["lint", "--strict"]).arg(chart_dir()).args(extra);
    util::run(&mut cmd)
}

/// `template [RELEASE] [FLAGS]`: the release is the first argument unless it is a flag.
fn release_and_flags<'a>(args: &'a [&'a str]) -> (&'a str, &'a [&'a str]) {
    match args.split_first() {
        Some((first, rest)) if !first.starts_with('-') => (first, rest),
        _ => (DEFAULT_RELEASE, args),
    }
}

/// The chart directory.
pub fn chart_dir() -> PathBuf {
    project_root().join("charts").join("rollouts")
}

/// Where the built Helm lives.
fn helm_dir(cache: &Cache) -> PathBuf {
    build::bin_dir(cache, "helm", HELM_VERSION)
}

/// A `helm` command with Helm's configuration, cache and data directories in our cache.
pub fn helm_command(cache: &Cache, helm: &Path) -> Command {
    let home = cache.root().join("helm");
    let mut cmd = Command::new(helm);
    cmd.env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .stdin(Stdio::null());
    cmd
}

/// The built Helm, building it first when it is not cached yet.
pub fn ensure(cache: &Cache) -> Result<PathBuf> {
    let dir = helm_dir(cache);
    let helm = dir.join("helm");
    if helm.is_file() {
        return Ok(helm);
    }
    let build_root = cache.root().join("build");
    fs::create_dir_all(&build_root)
        .with_context(|| format!("creating {}", build_root.display()))?;
    // One build at a time (parallel tests, or two tasks at once, would otherwise build twice).
    let lock_path = build_root.join(".helm.lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        eprintln!("    waiting for another build of Helm {HELM_VERSION} to finish");
        lock.lock()
            .with_context(|| format!("locking {}", lock_path.display()))?;
    }
    if helm.is_file() {
        return Ok(helm);
    }

    let go = Go::find_for(cache, &format!("building Helm {HELM_VERSION}"))?;
    util::step(&format!(
        "building Helm {HELM_VERSION} with {} from the Go module proxy (first use only; cached in {})",
        go.version,
        dir.display()
    ));
    let partial = dir.with_file_name(format!("helm-{HELM_VERSION}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial).with_context(|| format!("removing {}", partial.display()))?;
    }
    fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let start = Instant::now();
    build_helm(&go, cache, &partial).with_context(|| format!("building Helm {HELM_VERSION}"))?;
    fs::rename(&partial, &dir)
        .with_context(|| format!("renaming {} to {}", partial.display(), dir.display()))?;
    eprintln!("    helm: built in {}", util::human(start.elapsed()));
    drop(lock);
    Ok(helm)
}

fn build_helm(go: &Go, cache: &Cache, out: &Path) -> Result<()> {
    let (dir, log) = build::wrapper_dir(cache, &format!("helm-{HELM_VERSION}"))?;

    // Helm's go.mod, for the Kubernetes version it is built against.
    let downloaded = go
        .cmd(&dir)
        .args([
            "mod",
            "download",
            "-json",
            &format!("{MODULE}@{HELM_VERSION}"),
        ])
        .output()
        .context("running go mod download")?;
    let json = String::from_utf8_lossy(&downloaded.stdout);
    if !downloaded.status.success() {
        bail!(
            "go mod download {MODULE}@{HELM_VERSION} failed: {}{}",
            json.trim(),
            String::from_utf8_lossy(&downloaded.stderr).trim()
        );
    }
    let go_mod_path = build::json_string(&json, "GoMod")
        .with_context(|| format!("no GoMod in the output of go mod download: {json}"))?;
    let go_mod = fs::read_to_string(&go_mod_path)
        .with_context(|| format!("reading Helm's go.mod {go_mod_path}"))?;
    let minor = client_go_minor(&go_mod).with_context(|| {
        format!("no k8s.io/client-go v0.<minor>.<patch> requirement in {go_mod_path}")
    })?;

    let mut ldflags = format!("-s -w -X {MODULE}/internal/version.version={HELM_VERSION}");
    ldflags.push_str(&format!(" -X {MODULE}/internal/version.gitTreeState=clean"));
    for pkg in ["pkg/chartutil", "pkg/lint/rules"] {
        ldflags.push_str(&format!(
            " -X {MODULE}/{pkg}.k8sVersionMajor=1 -X {MODULE}/{pkg}.k8sVersionMinor={minor}"
        ));
    }
    let mut install = go.cmd(&dir);
    install
        .env("GOBIN", out)
        .args(["install", "-trimpath", "-ldflags", &ldflags])
        .arg(format!("{MODULE}/cmd/helm@{HELM_VERSION}"));
    build::run_logged(
        &mut install,
        &log,
        "go install (a cold build took 1m 42s on 2 cores with the cluster binaries' modules cached)",
    )?;
    build::check_version(&out.join("helm"), &["version", "--short"], HELM_VERSION)
}

/// The minor of the `k8s.io/client-go v0.<minor>.<patch>` requirement of a go.mod.
fn client_go_minor(go_mod: &str) -> Option<u32> {
    go_mod.lines().find_map(|line| {
        let line = line.trim().strip_prefix("require ").unwrap_or(line.trim());
        let version = line.strip_prefix("k8s.io/client-go ")?.trim();
        let mut parts = version.strip_prefix("v0.")?.split('.');
        parts.next()?.parse().ok()
    })
}

/// `helm version --short`.
fn version(cache: &Cache, helm: &Path) -> Result<String> {
    Ok(output(cache, helm, &["version", "--short"])?
        .trim()
        .to_string())
}

/// Runs `helm args` and returns its standard output; a failure shows Helm's error.
pub fn output(cache: &Cache, helm: &Path, args: &[&str]) -> Result<String> {
    let out = helm_command(cache, helm)
        .args(args)
        .output()
        .with_context(|| format!("running {}", helm.display()))?;
    if !out.status.success() {
        bail!(
            "helm {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests;
