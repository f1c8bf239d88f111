//! Builds the cluster's binaries from the Go module proxy, at pinned versions, and caches them.
//!
//! * Kubernetes (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl): module
//!   `k8s.io/kubernetes` cannot be `go install`ed (its `go.mod` replaces every staging module
//!   with a local directory), so we write a wrapper module that requires it and replaces each
//!   staging module `k8s.io/X` with the published `k8s.io/X v0.<minor>.<patch>`. The list of
//!   staging modules is read from the upstream `go.mod`, so it follows the pinned version.
//! * etcd: same problem (`server/go.mod` has `replace` lines); a wrapper module with a one-line
//!   `main` that calls `etcdmain.Main`.
//! * KWOK: `go install sigs.k8s.io/kwok/cmd/kwok@<version>` works as is.
//!
//! Binaries go to `<cache>/bin/<name>-<version>/`; a directory there is complete by
//! construction (we build into `<dir>.partial` and rename), so a second `up` builds nothing.
//! Go's own caches live in `<cache>/go/{mod,build}`, so a rebuild after a version bump reuses
//! what it can.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::{Cache, process::log_tail};
use crate::util;

/// Kubernetes version of kube-apiserver, kube-controller-manager, kube-scheduler and kubectl.
///
/// 1.34.4 rather than 1.34.5: the Go module proxy does not serve several `k8s.io/*` staging
/// modules at v0.34.5 (`403 This module version is not available`); every module needed by the
/// four binaries is served at v0.34.4.
pub const KUBERNETES_VERSION: &str = "v1.34.4";
/// etcd: 3.5.x with `RequestWatchProgress` (>= 3.5.13), which kube-apiserver's watch cache
/// needs for consistent reads and watch-list requests.
pub const ETCD_VERSION: &str = "v3.5.21";
/// KWOK (fake nodes and pod lifecycle); v0.8.0 needs Go >= 1.26.
pub const KWOK_VERSION: &str = "v0.8.0";
/// The oldest Go that builds all of the above.
pub(crate) const MIN_GO: (u32, u32) = (1, 26);

const K8S_COMMANDS: [&str; 4] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
];

/// Paths of the cached binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
    pub kube_scheduler: PathBuf,
    pub kubectl: PathBuf,
    pub kwok: PathBuf,
}

pub(crate) fn bin_dir(cache: &Cache, name: &str, version: &str) -> PathBuf {
    cache.root.join("bin").join(format!("{name}-{version}"))
}

/// Where kubectl and the Kubernetes servers are cached.
pub fn k8s_bin_dir(cache: &Cache) -> PathBuf {
    bin_dir(cache, "k8s", KUBERNETES_VERSION)
}

fn etcd_bin_dir(cache: &Cache) -> PathBuf {
    bin_dir(cache, "etcd", ETCD_VERSION)
}

fn kwok_bin_dir(cache: &Cache) -> PathBuf {
    bin_dir(cache, "kwok", KWOK_VERSION)
}

fn binaries(cache: &Cache) -> Binaries {
    let k8s = k8s_bin_dir(cache);
    Binaries {
        etcd: etcd_bin_dir(cache).join("etcd"),
        kube_apiserver: k8s.join("kube-apiserver"),
        kube_controller_manager: k8s.join("kube-controller-manager"),
        kube_scheduler: k8s.join("kube-scheduler"),
        kubectl: k8s.join("kubectl"),
        kwok: kwok_bin_dir(cache).join("kwok"),
    }
}

/// `(what, version, directory)` of each cached build, for `status`.
pub fn cached(cache: &Cache) -> Vec<(&'static str, &'static str, PathBuf)> {
    vec![
        ("kubernetes", KUBERNETES_VERSION, k8s_bin_dir(cache)),
        ("etcd", ETCD_VERSION, etcd_bin_dir(cache)),
        ("kwok", KWOK_VERSION, kwok_bin_dir(cache)),
    ]
}

/// Returns the binaries, building the missing ones first.
pub fn ensure(cache: &Cache) -> Result<Binaries> {
    let bins = binaries(cache);
    let jobs: [(&str, PathBuf, BuildFn); 3] = [
        (
            "kube-apiserver, kube-controller-manager, kube-scheduler, kubectl",
            k8s_bin_dir(cache),
            build_kubernetes,
        ),
        ("etcd", etcd_bin_dir(cache), build_etcd),
        ("kwok", kwok_bin_dir(cache), build_kwok),
    ];
    if jobs.iter().all(|(_, dir, _)| dir.is_dir()) {
        return Ok(bins);
    }

    fs::create_dir_all(cache.root.join("build"))
        .with_context(|| format!("creating {}", cache.root.join("build").display()))?;
    // One build at a time per cache (two `up`s at once would otherwise build twice).
    let lock_path = cache.root.join("build").join(".lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        eprintln!("    waiting for another build of the cluster binaries to finish");
        lock.lock()
            .with_context(|| format!("locking {}", lock_path.display()))?;
    }

    let go = Go::find(cache)?;
    util::step(&format!(
        "building the cluster binaries with {} (first use only; cached in {})",
        go.version,
        cache.root.join("bin").display()
    ));
    for (what, dir, build) in jobs {
        if dir.is_dir() {
            eprintln!("    {what}: cached");
            continue;
        }
        let partial = dir.with_extension("partial");
        if partial.exists() {
            fs::remove_dir_all(&partial)
                .with_context(|| format!("removing {}", partial.display()))?;
        }
        fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
        let start = Instant::now();
        build(&go, cache, &partial).with_context(|| format!("building {what}"))?;
        fs::rename(&partial, &dir)
            .with_context(|| format!("renaming {} to {}", partial.display(), dir.display()))?;
        eprintln!("    {what}: built in {}", util::human(start.elapsed()));
    }
    drop(lock);
    Ok(bins)
}

type BuildFn = fn(&Go, &Cache, &Path) -> Result<()>;

/// The Go toolchain we build with (also used by `cargo xtask helm`).
pub(crate) struct Go {
    command: PathBuf,
    pub(crate) version: String,
    gomodcache: PathBuf,
    gocache: PathBuf,
}

impl Go {
    /// `$ROLLOUTS_RS_GO` or `go`, checked to be new enough.
    fn find(cache: &Cache) -> Result<Self> {
        Self::find_for(
            cache,
            &format!(
                "building the cluster binaries (Kubernetes {KUBERNETES_VERSION}, etcd {ETCD_VERSION}, \
                 KWOK {KWOK_VERSION})"
            ),
        )
    }

    /// `$ROLLOUTS_RS_GO` or `go`, checked to be new enough for `what` (named in the errors).
    pub(crate) fn find_for(cache: &Cache, what: &str) -> Result<Self> {
        let command = env::var_os("ROLLOUTS_RS_GO")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from("go"), PathBuf::from);
        let need = format!(
            "{what} needs Go >= {}.{} and the Go module proxy",
            MIN_GO.0, MIN_GO.1
        );
        let out = Command::new(&command)
            .args(["env", "GOVERSION"])
            .env("GOTOOLCHAIN", "local")
            .stdin(Stdio::null())
            .output();
        let out = match out {
            Ok(out) if out.status.success() => out,
            Ok(out) => bail!(
                "`{} env GOVERSION` failed: {}\n{need}",
                command.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(err) => bail!(
                "Go was not found (`{}`: {err}).\n{need}: install it (https://go.dev/dl/) \
                 or set ROLLOUTS_RS_GO to the `go` command",
                command.display()
            ),
        };
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        match parse_go_version(&version) {
            Some(v) if v >= MIN_GO => {}
            Some(_) => bail!("found {version} ({}); {need}", command.display()),
            None => bail!(
                "cannot read the Go version `{version}` of {}; {need}",
                command.display()
            ),
        }
        Ok(Self {
            command,
            version,
            gomodcache: cache.root.join("go").join("mod"),
            gocache: cache.root.join("go").join("build"),
        })
    }

    /// A `go` command with our environment: local toolchain only, no cgo, our caches, no
    /// checksum database (sum.golang.org is not reachable here; versions are pinned and the
    /// wrapper modules record the sums they saw in their go.sum).
    pub(crate) fn cmd(&self, dir: &Path) -> Command {
        let mut cmd = Command::new(&self.command);
        cmd.current_dir(dir)
            .env("GOTOOLCHAIN", "local")
            .env("CGO_ENABLED", "0")
            .env("GOFLAGS", "-buildvcs=false")
            .env("GOSUMDB", "off")
            .env("GOWORK", "off")
            .env("GOMODCACHE", &self.gomodcache)
            .env("GOCACHE", &self.gocache)
            .stdin(Stdio::null());
        cmd
    }
}

/// `go1.26.8` → `(1, 26)`.
fn parse_go_version(v: &str) -> Option<(u32, u32)> {
    let rest = v.strip_prefix("go")?;
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Runs a (long) command with its output in `log`, printing a line every minute so that a cold
/// build visibly makes progress; on failure the error shows the end of the log.
pub(crate) fn run_logged(cmd: &mut Command, log: &Path, what: &str) -> Result<()> {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    writeln!(file, "$ {cmd:?}")?;
    let shown = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("could not start {shown}"))?;
    let start = Instant::now();
    let mut next_report = Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() >= next_report {
            eprintln!(
                "      {what}: still running ({})",
                util::human(start.elapsed())
            );
            next_report += Duration::from_secs(60);
        }
        thread::sleep(Duration::from_millis(250));
    };
    if !status.success() {
        bail!("{what} failed ({status})\n{}", log_tail(log, 40));
    }
    Ok(())
}

/// Creates (fresh) the wrapper-module directory `<cache>/build/<name>` and its log path.
pub(crate) fn wrapper_dir(cache: &Cache, name: &str) -> Result<(PathBuf, PathBuf)> {
    let dir = cache.root.join("build").join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = cache.root.join("build").join(format!("{name}.log"));
    let _ = fs::remove_file(&log);
    eprintln!("    {name}: building (log: {})", log.display());
    Ok((dir, log))
}

/// The staging modules that upstream `go.mod` replaces with `./staging/src/...` directories.
fn staging_modules(upstream_go_mod: &str) -> Vec<String> {
    upstream_go_mod
        .lines()
        .map(str::trim)
        .map(|l| l.strip_prefix("replace ").unwrap_or(l).trim())
        .filter_map(|l| {
            let (module, target) = l.split_once("=>")?;
            let module = module.trim();
            target
                .trim()
                .starts_with("./staging/src/")
                .then(|| module.to_string())
        })
        .collect()
}

/// `v1.34.4` → `v0.34.4` (the version of the published staging modules).
fn staging_version(kubernetes: &str) -> Result<String> {
    kubernetes
        .strip_prefix("v1.")
        .map(|rest| format!("v0.{rest}"))
        .with_context(|| format!("unexpected Kubernetes version {kubernetes}"))
}

/// The value of `"key": "value"` in `go mod download -json` output.
pub(crate) fn json_string(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = json[start..].trim_start().strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(rest[..end].replace("\\\\", "\\"))
}

fn build_kubernetes(go: &Go, cache: &Cache, out: &Path) -> Result<()> {
    let name = format!("k8s-{KUBERNETES_VERSION}");
    let (dir, log) = wrapper_dir(cache, &name)?;
    let staging = staging_version(KUBERNETES_VERSION)?;

    // The upstream go.mod, for the list of staging modules.
    let downloaded = go
        .cmd(&dir)
        .args([
            "mod",
            "download",
            "-json",
            &format!("k8s.io/kubernetes@{KUBERNETES_VERSION}"),
        ])
        .output()
        .context("running go mod download")?;
    let json = String::from_utf8_lossy(&downloaded.stdout);
    if !downloaded.status.success() {
        bail!(
            "go mod download k8s.io/kubernetes@{KUBERNETES_VERSION} failed: {}{}",
            json.trim(),
            String::from_utf8_lossy(&downloaded.stderr).trim()
        );
    }
    let go_mod_path = json_string(&json, "GoMod")
        .with_context(|| format!("no GoMod in the output of go mod download: {json}"))?;
    let upstream = fs::read_to_string(&go_mod_path)
        .with_context(|| format!("reading the upstream go.mod {go_mod_path}"))?;
    let modules = staging_modules(&upstream);
    if modules.len() < 20 {
        bail!(
            "found only {} staging modules in {go_mod_path}; its format may have changed",
            modules.len()
        );
    }

    let mut go_mod = String::from(
        "// Written by `cargo xtask cluster`: builds Kubernetes binaries from the module proxy.\n\
         module example.invalid/rollouts-rs/k8s-binaries\n\ngo 1.24.0\n\n\
         godebug default=go1.24\n\n",
    );
    go_mod.push_str(&format!(
        "require k8s.io/kubernetes {KUBERNETES_VERSION}\n\nreplace (\n"
    ));
    for module in &modules {
        go_mod.push_str(&format!("\t{module} => {module} {staging}\n"));
    }
    go_mod.push_str(")\n");
    fs::write(dir.join("go.mod"), go_mod)?;

    let packages: Vec<String> = K8S_COMMANDS
        .iter()
        .map(|c| format!("k8s.io/kubernetes/cmd/{c}"))
        .collect();
    let mut get = go.cmd(&dir);
    get.arg("get")
        .args(packages.iter().map(|p| format!("{p}@{KUBERNETES_VERSION}")));
    run_logged(&mut get, &log, "downloading modules")?;

    // Version stamping, as upstream's build does, so that /version reports the real version.
    let minor = KUBERNETES_VERSION
        .split('.')
        .nth(1)
        .context("Kubernetes version without a minor")?;
    let mut ldflags = String::from("-s -w");
    for pkg in [
        "k8s.io/component-base/version",
        "k8s.io/client-go/pkg/version",
    ] {
        ldflags.push_str(&format!(
            " -X {pkg}.gitVersion={KUBERNETES_VERSION} -X {pkg}.gitMajor=1 \
             -X {pkg}.gitMinor={minor} -X {pkg}.gitTreeState=clean"
        ));
    }
    let mut build = go.cmd(&dir);
    build
        .args([
            "build",
            "-mod=mod",
            "-trimpath",
            "-tags",
            "selinux,notest",
            "-ldflags",
            &ldflags,
            "-o",
        ])
        .arg(format!("{}/", out.display()))
        .args(&packages);
    run_logged(
        &mut build,
        &log,
        "compiling (a cold build takes 10-20 min on 2 cores)",
    )?;
    for command in K8S_COMMANDS {
        let args: &[&str] = if command == "kubectl" {
            &["version", "--client"]
        } else {
            &["--version"]
        };
        check_version(&out.join(command), args, KUBERNETES_VERSION)?;
    }
    Ok(())
}

fn build_etcd(go: &Go, cache: &Cache, out: &Path) -> Result<()> {
    let name = format!("etcd-{ETCD_VERSION}");
    let (dir, log) = wrapper_dir(cache, &name)?;
    fs::write(
        dir.join("go.mod"),
        "// Written by `cargo xtask cluster`: builds etcd from the module proxy.\n\
         module example.invalid/rollouts-rs/etcd-binary\n\ngo 1.24.0\n",
    )?;
    fs::create_dir_all(dir.join("cmd").join("etcd"))?;
    fs::write(
        dir.join("cmd").join("etcd").join("main.go"),
        "// Written by `cargo xtask cluster`: the etcd server, as a program of our own module.\n\
         package main\n\n\
         import (\n\t\"os\"\n\n\t\"go.etcd.io/etcd/server/v3/etcdmain\"\n)\n\n\
         func main() { etcdmain.Main(os.Args) }\n",
    )?;
    let mut get = go.cmd(&dir);
    get.args([
        "get",
        &format!("go.etcd.io/etcd/server/v3/etcdmain@{ETCD_VERSION}"),
    ]);
    run_logged(&mut get, &log, "downloading modules")?;
    let mut tidy = go.cmd(&dir);
    tidy.args(["mod", "tidy"]);
    run_logged(&mut tidy, &log, "go mod tidy")?;
    let mut build = go.cmd(&dir);
    build
        .args(["build", "-trimpath", "-ldflags", "-s -w", "-o"])
        .arg(out.join("etcd"))
        .arg("./cmd/etcd");
    run_logged(&mut build, &log, "compiling")?;
    check_version(
        &out.join("etcd"),
        &["--version"],
        ETCD_VERSION.trim_start_matches('v'),
    )
}

fn build_kwok(go: &Go, cache: &Cache, out: &Path) -> Result<()> {
    let name = format!("kwok-{KWOK_VERSION}");
    let (dir, log) = wrapper_dir(cache, &name)?;
    let mut install = go.cmd(&dir);
    install
        .env("GOBIN", out)
        .args(["install", "-trimpath", "-ldflags", "-s -w"])
        .arg(format!("sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}"));
    run_logged(&mut install, &log, "go install")?;
    check_version(
        &out.join("kwok"),
        &["--version"],
        KWOK_VERSION.trim_start_matches('v'),
    )
}

/// Runs `binary args` and checks that the output names `version`.
pub(crate) fn check_version(binary: &Path, args: &[&str], version: &str) -> Result<()> {
    let out = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() || !text.contains(version) {
        bail!(
            "{} {} did not report version {version}: {}",
            binary.display(),
            args.join(" "),
            text.trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_version_is_parsed() {
        assert_eq!(parse_go_version("go1.26.8"), Some((1, 26)));
        assert_eq!(parse_go_version("go1.27rc1"), Some((1, 27)));
        assert_eq!(parse_go_version("devel"), None);
        assert!(parse_go_version("go1.25.3").unwrap() < MIN_GO);
    }

    #[test]
    fn staging_modules_come_from_directory_replaces_only() {
        let go_mod = "module k8s.io/kubernetes\n\nrequire (\n\tk8s.io/api v0.0.0\n)\n\n\
                      replace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n\
                      \tk8s.io/kubectl => ./staging/src/k8s.io/kubectl\n\
                      \tgithub.com/x/y => github.com/x/y v1.2.3\n)\n\
                      replace k8s.io/kms => ./staging/src/k8s.io/kms\n";
        assert_eq!(
            staging_modules(go_mod),
            vec!["k8s.io/api", "k8s.io/kubectl", "k8s.io/kms"]
        );
    }

    #[test]
    fn staging_version_maps_v1_to_v0() {
        assert_eq!(staging_version("v1.34.4").unwrap(), "v0.34.4");
        assert!(staging_version("v2.0.0").is_err());
    }

    #[test]
    fn json_string_reads_a_field() {
        let json = "{\n\t\"Path\": \"k8s.io/kubernetes\",\n\t\"GoMod\": \"/c/go/mod/x.mod\",\n}";
        assert_eq!(
            json_string(json, "GoMod").as_deref(),
            Some("/c/go/mod/x.mod")
        );
        assert_eq!(json_string(json, "Zip"), None);
    }
}
