//! Where the tests' cluster comes from: `ROLLOUTS_E2E_KUBECONFIG`, or one we start (and stop)
//! with `cargo xtask cluster up|down --dir <dir>`.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail};

use crate::KUBECONFIG_ENV;

/// The cluster of this run.
#[derive(Debug)]
pub(crate) enum ClusterSource {
    /// Given by the environment; not ours to stop.
    External { kubeconfig: PathBuf },
    /// Started by this run in `dir`.
    Owned { dir: PathBuf, kubeconfig: PathBuf },
}

impl ClusterSource {
    pub(crate) fn kubeconfig(&self) -> &Path {
        match self {
            Self::External { kubeconfig } | Self::Owned { kubeconfig, .. } => kubeconfig,
        }
    }

    /// The cluster named by `ROLLOUTS_E2E_KUBECONFIG`, or a new one started with the xtask.
    pub(crate) fn obtain() -> Result<Self> {
        if let Some(path) = env::var_os(KUBECONFIG_ENV).filter(|v| !v.is_empty()) {
            let kubeconfig = PathBuf::from(path);
            if !kubeconfig.is_file() {
                bail!(
                    "{KUBECONFIG_ENV}={} is not a file (it must name the kubeconfig of a running \
                     cluster, e.g. the one `cargo xtask cluster env` prints)",
                    kubeconfig.display()
                );
            }
            eprintln!("e2e: using the cluster of {}", kubeconfig.display());
            return Ok(Self::External { kubeconfig });
        }
        let dir = cache_dir()?
            .join("clusters")
            .join(format!("e2e-{}", std::process::id()));
        eprintln!(
            "e2e: {KUBECONFIG_ENV} is not set: starting a cluster in {} \
             (cargo xtask cluster up; the first run builds the binaries)",
            dir.display()
        );
        let owned = Self::Owned {
            kubeconfig: dir.join("kubeconfig"),
            dir: dir.clone(),
        };
        if let Err(err) = xtask(&["cluster", "up", "--dir"], &dir) {
            // `up` stops what it started when it fails; make sure, and remove the state.
            let _ = owned.stop();
            return Err(err.context(format!(
                "no cluster for the e2e tests: `cargo xtask cluster up` failed (its output is \
                 above). Fix that, or point {KUBECONFIG_ENV} at the kubeconfig of a running cluster"
            )));
        }
        Ok(owned)
    }

    /// Stops the cluster if this run started it, then checks that none of its processes is
    /// left. Returns what was left (empty if all is well).
    pub(crate) fn stop(&self) -> Result<()> {
        let Self::Owned { dir, .. } = self else {
            return Ok(());
        };
        let recorded = recorded_processes(dir);
        eprintln!("e2e: stopping the cluster in {}", dir.display());
        let down = xtask(&["cluster", "down", "--dir"], dir);
        let mut leftovers: Vec<String> = recorded
            .iter()
            .filter(|(_, pid, binary)| is_running(*pid, binary))
            .map(|(name, pid, _)| format!("{name} (pid {pid})"))
            .collect();
        leftovers.extend(
            processes_mentioning(dir)
                .into_iter()
                .map(|(pid, cmd)| format!("pid {pid}: {cmd}")),
        );
        leftovers.sort();
        leftovers.dedup();
        if !leftovers.is_empty() {
            bail!(
                "the e2e run left processes of its cluster behind: {}",
                leftovers.join(", ")
            );
        }
        if recorded.is_empty() {
            bail!(
                "no process of the cluster in {} was recorded; cannot check that none is left",
                dir.display()
            );
        }
        down.context("cargo xtask cluster down failed")?;
        eprintln!(
            "e2e: cluster stopped; none of its {} processes is left",
            recorded.len()
        );
        Ok(())
    }
}

/// `$ROLLOUTS_RS_CACHE`, else `$XDG_CACHE_HOME/rollouts-rs`, else `~/.cache/rollouts-rs` (the
/// same rule as the xtask).
fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = env::var_os("ROLLOUTS_RS_CACHE").filter(|v| !v.is_empty()) {
        return std::path::absolute(PathBuf::from(dir)).context("ROLLOUTS_RS_CACHE");
    }
    if let Some(dir) = env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir).join("rollouts-rs"));
    }
    match env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("rollouts-rs")),
        None => bail!("cannot find a cache directory: set ROLLOUTS_RS_CACHE (or HOME)"),
    }
}

/// Runs `cargo xtask <args> <dir>` with inherited output (the build progress shows).
fn xtask(args: &[&str], dir: &Path) -> Result<()> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the e2e crate has no parent directory")?
        .join("Cargo.toml");
    let status = Command::new(&cargo)
        .args(["run", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .args(["-p", "xtask", "--"])
        .args(args)
        .arg(dir)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {cargo} run -p xtask"))?;
    if !status.success() {
        bail!(
            "cargo xtask {} {} failed ({status})",
            args.join(" "),
            dir.display()
        );
    }
    Ok(())
}

/// `(name, pid, binary)` from the state file the xtask writes (`<dir>/processes`).
fn recorded_processes(dir: &Path) -> Vec<(String, u32, PathBuf)> {
    let Ok(text) = fs::read_to_string(dir.join("processes")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let name = fields.next()?.to_string();
            let pid = fields.next()?.parse().ok()?;
            let _port = fields.next()?;
            let binary = PathBuf::from(fields.next()?);
            Some((name, pid, binary))
        })
        .collect()
}

/// Whether `pid` runs (not a zombie) and is `binary`.
fn is_running(pid: u32, binary: &Path) -> bool {
    if !is_live(pid) {
        return false;
    }
    fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        cmdline.split(|b| *b == 0).next() == Some(binary.as_os_str().as_encoded_bytes())
    })
}

fn is_live(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

/// Live processes whose command line mentions `dir` (every component gets a path in it).
fn processes_mentioning(dir: &Path) -> Vec<(u32, String)> {
    let needle = dir.as_os_str().as_encoded_bytes();
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me && is_live(*pid))
        .filter_map(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let mentions = cmdline.windows(needle.len()).any(|w| w == needle);
            // Our own `cargo run ... xtask cluster down --dir <dir>` has finished by now.
            mentions.then(|| {
                let shown = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                (pid, shown.chars().take(160).collect())
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_xtask_state_file() {
        let dir = env::temp_dir().join(format!("e2e-state-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("processes"),
            "etcd\t41\t2379\t/c/bin/etcd\t/c/logs/etcd.log\nkwok\t42\t10247\t/c/bin/kwok\t/l\n",
        )
        .unwrap();
        let procs = recorded_processes(&dir);
        assert_eq!(
            procs,
            vec![
                ("etcd".to_string(), 41, PathBuf::from("/c/bin/etcd")),
                ("kwok".to_string(), 42, PathBuf::from("/c/bin/kwok")),
            ]
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn finds_live_processes_by_command_line() {
        let dir = env::temp_dir().join(format!("e2e-marker-{}", std::process::id()));
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg("sleep 60; : \"$0\"")
            .arg(&dir)
            .spawn()
            .unwrap();
        // Right after spawn the child may not have exec'd yet: poll briefly.
        let start = std::time::Instant::now();
        let mut found = processes_mentioning(&dir);
        while !found.iter().any(|(pid, _)| *pid == child.id())
            && start.elapsed() < std::time::Duration::from_secs(5)
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
            found = processes_mentioning(&dir);
        }
        assert!(found.iter().any(|(pid, _)| *pid == child.id()), "{found:?}");
        assert!(is_running(child.id(), Path::new("/bin/sh")));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!is_running(child.id(), Path::new("/bin/sh")));
        assert!(processes_mentioning(&dir).is_empty());
    }
}
