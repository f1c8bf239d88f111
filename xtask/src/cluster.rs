//! `cargo xtask cluster`: a local Kubernetes control plane for the e2e tests and the demo.
//!
//! The control plane is made of real upstream binaries (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler) plus KWOK, which plays the kubelet for fake nodes so
//! that pods become Running and Ready (with pod IPs) without a container runtime. Every binary is
//! built from the Go module proxy on first use and cached by version (see [`build`]); every
//! process is started by us, by hand, so that we know (and record) each pid (see [`process`]).
//!
//! Everything listens on 127.0.0.1 only, with TLS and RBAC on. Nothing outside the cache
//! directory is touched: the kubeconfig lives in the state directory, never in `~/.kube/config`.
//!
//! Layout of the cache directory (`$ROLLOUTS_RS_CACHE`, default `~/.cache/rollouts-rs`):
//!
//! ```text
//! go/mod, go/build         GOMODCACHE and GOCACHE of our Go builds
//! build/<name>/            the Go wrapper modules we write, and build logs
//! bin/<name>-<version>/    the built binaries, one directory per pinned version
//! cluster/                 the default state directory of `cargo xtask cluster up`
//! ```

pub(crate) mod build;
mod manifests;
mod pki;
mod process;

use std::{
    env, fs,
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use build::Binaries;
use process::{Component, Processes};

use crate::util;

/// Environment variable that overrides the cache directory.
pub const CACHE_ENV: &str = "ROLLOUTS_RS_CACHE";
/// Environment variable that overrides the state directory of `cluster up|down|status|env`.
pub const DIR_ENV: &str = "ROLLOUTS_RS_CLUSTER_DIR";

/// Number of fake (KWOK) nodes.
const NODES: u32 = 2;

const USAGE: &str = "\
usage: cargo xtask cluster <command> [--dir DIR]

commands:
  up       build the binaries if needed (first use: many minutes), start the control plane
  down     stop every process that `up` started and remove the state directory
  status   what runs, where, and the log of each component
  env      print `export KUBECONFIG=...` (use: eval \"$(cargo xtask cluster env)\")

options:
  --dir DIR   state directory (default: $ROLLOUTS_RS_CLUSTER_DIR, else <cache>/cluster)

environment:
  ROLLOUTS_RS_CACHE   cache directory (default: ~/.cache/rollouts-rs)
  ROLLOUTS_RS_GO      the Go command to build with (default: go)
";

/// Entry point of `cargo xtask cluster`.
pub fn run(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        bail!("missing command");
    };
    let mut dir = None;
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--dir" => {
                let value = it.next().context("--dir needs a value")?;
                dir = Some(PathBuf::from(value));
            }
            other => {
                if let Some(value) = other.strip_prefix("--dir=") {
                    dir = Some(PathBuf::from(value));
                } else {
                    bail!("unknown argument `{other}`\n\n{USAGE}");
                }
            }
        }
    }
    let cache = Cache::from_env()?;
    let dir = match dir {
        Some(dir) => absolute(&dir)?,
        None => default_state_dir(&cache),
    };
    let dir_arg = if dir == default_state_dir(&cache) {
        String::new()
    } else {
        format!(" --dir {}", shell_quote(&dir))
    };
    match command.as_str() {
        "up" => {
            let cluster = up(&cache, &dir, Detach::Yes)?;
            eprintln!();
            eprintln!("cluster is up: {}", cluster.server);
            eprintln!("  kubeconfig: {}", cluster.kubeconfig.display());
            eprintln!(
                "  fake nodes: {NODES} (KWOK); pods labelled {}=true fail",
                manifests::FAIL_LABEL
            );
            eprintln!("  use it:     eval \"$(cargo xtask cluster env{dir_arg})\"");
            eprintln!("  stop it:    cargo xtask cluster down{dir_arg}");
            Ok(())
        }
        "down" => down(&dir),
        "status" => status(&cache, &dir),
        "env" => env_cmd(&cache, &dir),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

/// The cache directory: binaries, Go caches and the default cluster state.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// `$ROLLOUTS_RS_CACHE`, else `$XDG_CACHE_HOME/rollouts-rs`, else `~/.cache/rollouts-rs`.
    pub fn from_env() -> Result<Self> {
        let root = if let Some(dir) = env::var_os(CACHE_ENV).filter(|v| !v.is_empty()) {
            absolute(Path::new(&dir))?
        } else if let Some(dir) = env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            PathBuf::from(dir).join("rollouts-rs")
        } else if let Some(home) = env::var_os("HOME").filter(|v| !v.is_empty()) {
            PathBuf::from(home).join(".cache").join("rollouts-rs")
        } else {
            bail!("cannot find a cache directory: set {CACHE_ENV} (or HOME)");
        };
        Ok(Self { root })
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// The state directory used when neither `--dir` nor `$ROLLOUTS_RS_CLUSTER_DIR` says otherwise.
pub fn default_state_dir(cache: &Cache) -> PathBuf {
    match env::var_os(DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => cache.root.join("cluster"),
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("bad path {}", path.display()))
}

/// The kubectl built with the cluster binaries (for tasks that drive the cluster, like `demo`).
pub fn kubectl_path(cache: &Cache) -> PathBuf {
    build::k8s_bin_dir(cache).join("kubectl")
}

/// Whether the processes of the cluster survive the xtask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detach {
    /// Own process group: `cluster up` returns and the cluster keeps running.
    Yes,
    /// The xtask's process group: a Ctrl-C that stops the xtask also stops the cluster
    /// (`cargo xtask ci`, which stops the cluster itself at the end anyway).
    No,
}

/// A running cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub server: String,
}

/// Paths inside a state directory.
struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    fn pki(&self) -> PathBuf {
        self.dir.join("pki")
    }
    fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }
    fn log(&self, component: &str) -> PathBuf {
        self.logs().join(format!("{component}.log"))
    }
    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }
    fn lock_file(&self) -> PathBuf {
        let mut name = self
            .dir
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".lock");
        self.dir.with_file_name(name)
    }
}

/// Holds an exclusive lock on a state directory (so that two `up`/`down` never race).
fn lock_state(state: &StateDir) -> Result<fs::File> {
    let path = state.lock_file();
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    if file.try_lock().is_err() {
        eprintln!(
            "    waiting for another `cluster` command on {} to finish",
            state.dir.display()
        );
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
    }
    Ok(file)
}

/// Builds what is missing, then starts the control plane in `dir` (or reuses the one that
/// already runs there). On failure nothing that was started is left running.
pub fn up(cache: &Cache, dir: &Path, detach: Detach) -> Result<Cluster> {
    let bins = build::ensure(cache)?;
    let state = StateDir {
        dir: dir.to_path_buf(),
    };
    let _lock = lock_state(&state)?;

    if let Some(mut existing) = Processes::load(&state.dir)? {
        let alive = existing.alive_count();
        if alive == existing.len() && alive > 0 {
            let cluster = cluster_of(&state, &existing)?;
            if probe_kubectl(&bins, &cluster.kubeconfig, None, "/readyz") {
                util::step(&format!(
                    "a cluster already runs in {} (kube-apiserver {})",
                    state.dir.display(),
                    cluster.server
                ));
                return Ok(cluster);
            }
        }
        util::step(&format!(
            "removing the remains of an earlier cluster in {} ({alive} of {} processes alive)",
            state.dir.display(),
            existing.len()
        ));
        existing.stop_all();
    }
    if state.dir.exists() {
        fs::remove_dir_all(&state.dir)
            .with_context(|| format!("removing {}", state.dir.display()))?;
    }
    fs::create_dir_all(state.logs())
        .with_context(|| format!("creating {}", state.logs().display()))?;

    util::step(&format!("starting the cluster in {}", state.dir.display()));
    let start = Instant::now();
    let mut procs = Processes::new(&state.dir);
    match start_all(&bins, &state, &mut procs, detach) {
        Ok(cluster) => {
            eprintln!("    cluster ready in {}", util::human(start.elapsed()));
            Ok(cluster)
        }
        Err(err) => {
            eprintln!("    start failed; stopping what was started");
            procs.stop_all();
            Err(err.context(format!(
                "the cluster did not start (logs: {})",
                state.logs().display()
            )))
        }
    }
}

fn cluster_of(state: &StateDir, procs: &Processes) -> Result<Cluster> {
    let port = procs
        .get("kube-apiserver")
        .context("no kube-apiserver in the state file")?
        .port;
    Ok(Cluster {
        kubeconfig: state.kubeconfig(),
        server: format!("https://127.0.0.1:{port}"),
    })
}

/// Free ports on 127.0.0.1, all different (the listeners are held until all are chosen).
fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("choosing free ports on 127.0.0.1")?;
    let mut ports = [0u16; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

fn start_all(
    bins: &Binaries,
    state: &StateDir,
    procs: &mut Processes,
    detach: Detach,
) -> Result<Cluster> {
    let pki_dir = state.pki();
    let pki = pki::generate(&pki_dir)?;
    let [etcd_client, etcd_peer, apiserver, kcm, scheduler, kwok] = free_ports::<6>()?;
    let server = format!("https://127.0.0.1:{apiserver}");
    let kubeconfig = state.kubeconfig();
    fs::write(&kubeconfig, manifests::kubeconfig(&server, &pki))
        .with_context(|| format!("writing {}", kubeconfig.display()))?;
    let kc = kubeconfig.display().to_string();
    let p = |path: &Path| path.display().to_string();

    // etcd
    let etcd_data = state.dir.join("etcd");
    let etcd = Component {
        name: "etcd",
        binary: bins.etcd.clone(),
        port: etcd_client,
        log: state.log("etcd"),
        args: vec![
            "--name=node0".into(),
            format!("--data-dir={}", p(&etcd_data)),
            format!("--listen-client-urls=http://127.0.0.1:{etcd_client}"),
            format!("--advertise-client-urls=http://127.0.0.1:{etcd_client}"),
            format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}"),
            format!("--initial-cluster=node0=http://127.0.0.1:{etcd_peer}"),
            "--auto-compaction-retention=1".into(),
            "--quota-backend-bytes=4294967296".into(),
            // Test data: speed over durability.
            "--unsafe-no-fsync=true".into(),
        ],
    };
    procs.start(&etcd, detach)?;
    wait_ready(procs, &etcd, Duration::from_secs(30), || {
        etcd_healthy(etcd_client)
    })?;

    // kube-apiserver
    let apiserver_c = Component {
        name: "kube-apiserver",
        binary: bins.kube_apiserver.clone(),
        port: apiserver,
        log: state.log("kube-apiserver"),
        args: vec![
            format!("--etcd-servers=http://127.0.0.1:{etcd_client}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={apiserver}"),
            // 127.0.0.1 cannot be an endpoint of the `kubernetes` Service; nobody needs it here.
            "--endpoint-reconciler-type=none".into(),
            format!("--tls-cert-file={}", p(&pki.server_cert)),
            format!("--tls-private-key-file={}", p(&pki.server_key)),
            format!("--client-ca-file={}", p(&pki.ca_cert)),
            "--authorization-mode=Node,RBAC".into(),
            "--allow-privileged=true".into(),
            "--service-cluster-ip-range=10.96.0.0/16".into(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", p(&pki.sa_pub)),
            format!("--service-account-signing-key-file={}", p(&pki.sa_key)),
            format!("--requestheader-client-ca-file={}", p(&pki.ca_cert)),
            "--requestheader-allowed-names=front-proxy-client".into(),
            "--requestheader-username-headers=X-Remote-User".into(),
            "--requestheader-group-headers=X-Remote-Group".into(),
            "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
            format!("--proxy-client-cert-file={}", p(&pki.proxy_cert)),
            format!("--proxy-client-key-file={}", p(&pki.proxy_key)),
        ],
    };
    procs.start(&apiserver_c, detach)?;
    wait_ready(procs, &apiserver_c, Duration::from_secs(120), || {
        probe_kubectl(bins, &kubeconfig, None, "/readyz")
    })?;

    // kube-controller-manager and kube-scheduler: both serve HTTPS with our server certificate,
    // so that the kubeconfig's CA verifies them when we probe /healthz.
    let kcm_c = Component {
        name: "kube-controller-manager",
        binary: bins.kube_controller_manager.clone(),
        port: kcm,
        log: state.log("kube-controller-manager"),
        args: vec![
            format!("--kubeconfig={kc}"),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={kcm}"),
            format!("--tls-cert-file={}", p(&pki.server_cert)),
            format!("--tls-private-key-file={}", p(&pki.server_key)),
            format!("--root-ca-file={}", p(&pki.ca_cert)),
            format!("--service-account-private-key-file={}", p(&pki.sa_key)),
            format!("--cluster-signing-cert-file={}", p(&pki.ca_cert)),
            format!("--cluster-signing-key-file={}", p(&pki.ca_key)),
        ],
    };
    procs.start(&kcm_c, detach)?;
    let scheduler_c = Component {
        name: "kube-scheduler",
        binary: bins.kube_scheduler.clone(),
        port: scheduler,
        log: state.log("kube-scheduler"),
        args: vec![
            format!("--kubeconfig={kc}"),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={scheduler}"),
            format!("--tls-cert-file={}", p(&pki.server_cert)),
            format!("--tls-private-key-file={}", p(&pki.server_key)),
        ],
    };
    procs.start(&scheduler_c, detach)?;

    // KWOK, with our stages (nodes become Ready; pods Running/Ready, Job pods complete, pods
    // labelled `rollouts-e2e/fail: "true"` fail).
    let stages = state.dir.join("kwok-stages.yaml");
    fs::write(&stages, manifests::KWOK_STAGES)
        .with_context(|| format!("writing {}", stages.display()))?;
    let kwok_c = Component {
        name: "kwok",
        binary: bins.kwok.clone(),
        port: kwok,
        log: state.log("kwok"),
        args: vec![
            format!("--kubeconfig={kc}"),
            format!("--config={}", p(&stages)),
            "--manage-all-nodes=true".into(),
            "--node-ip=127.0.0.1".into(),
            format!("--node-port={kwok}"),
            // Without it kwok would serve on 0.0.0.0:<node-port>.
            format!("--server-address=127.0.0.1:{kwok}"),
            format!("--tls-cert-file={}", p(&pki.server_cert)),
            format!("--tls-private-key-file={}", p(&pki.server_key)),
            "--cidr=10.244.0.0/16".into(),
            "--node-lease-duration-seconds=40".into(),
        ],
    };
    procs.start(&kwok_c, detach)?;

    let kcm_url = format!("https://127.0.0.1:{kcm}");
    wait_ready(procs, &kcm_c, Duration::from_secs(60), || {
        probe_kubectl(bins, &kubeconfig, Some(&kcm_url), "/healthz")
    })?;
    let scheduler_url = format!("https://127.0.0.1:{scheduler}");
    wait_ready(procs, &scheduler_c, Duration::from_secs(60), || {
        probe_kubectl(bins, &kubeconfig, Some(&scheduler_url), "/healthz")
    })?;

    // Fake nodes; KWOK marks them Ready.
    let nodes = state.dir.join("nodes.yaml");
    fs::write(&nodes, manifests::nodes(NODES))
        .with_context(|| format!("writing {}", nodes.display()))?;
    kubectl(bins, &kubeconfig, &["apply", "-f", &p(&nodes)]).context("creating the fake nodes")?;
    wait_ready(procs, &kwok_c, Duration::from_secs(60), || {
        kubectl(
            bins,
            &kubeconfig,
            &[
                "get",
                "nodes",
                "-o",
                "jsonpath={range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
            ],
        )
        .map(|out| {
            let ready = out.lines().filter(|l| l.trim() == "True").count();
            ready == NODES as usize
        })
        .unwrap_or(false)
    })?;
    // The service-account controller (in kube-controller-manager) creates `default` in every
    // namespace; pods cannot be created before it exists.
    wait_ready(procs, &kcm_c, Duration::from_secs(60), || {
        kubectl(
            bins,
            &kubeconfig,
            &[
                "get",
                "serviceaccount",
                "default",
                "-n",
                "default",
                "-o",
                "name",
            ],
        )
        .is_ok()
    })?;

    Ok(Cluster { kubeconfig, server })
}

/// Polls `ready` until it says yes; fails early (with the log's tail) if the process exits.
fn wait_ready(
    procs: &mut Processes,
    component: &Component,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if ready() {
            eprintln!(
                "    {:<24} ready ({}, pid {}, port {})",
                component.name,
                util::human(start.elapsed()),
                procs.get(component.name).map_or(0, |p| p.pid),
                component.port
            );
            return Ok(());
        }
        if let Some(status) = procs.exited(component.name) {
            bail!(
                "{} exited ({status}) before it was ready\n{}",
                component.name,
                process::log_tail(&component.log, 40)
            );
        }
        if start.elapsed() > timeout {
            bail!(
                "{} was not ready after {}\n{}",
                component.name,
                util::human(timeout),
                process::log_tail(&component.log, 40)
            );
        }
        thread::sleep(Duration::from_millis(500));
    }
}

/// `GET /health` on etcd's client port (plain HTTP on 127.0.0.1).
fn etcd_healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}

/// `kubectl get --raw <path>` answers `ok` (against `server` if given, else the API server).
fn probe_kubectl(bins: &Binaries, kubeconfig: &Path, server: Option<&str>, path: &str) -> bool {
    let mut args = vec!["get", "--raw", path];
    if let Some(server) = server {
        args.extend(["--server", server]);
    }
    kubectl(bins, kubeconfig, &args).is_ok_and(|out| out.trim() == "ok")
}

/// Runs our kubectl against the cluster; returns its stdout, or fails with its stderr.
fn kubectl(bins: &Binaries, kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(&bins.kubectl)
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg("--request-timeout=5s")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", bins.kubectl.display()))?;
    if !out.status.success() {
        bail!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Stops every process recorded in `dir` and removes the directory.
pub fn down(dir: &Path) -> Result<()> {
    let state = StateDir {
        dir: dir.to_path_buf(),
    };
    let lock = lock_state(&state)?;
    match Processes::load(&state.dir)? {
        Some(mut procs) => {
            util::step(&format!("stopping the cluster in {}", state.dir.display()));
            procs.stop_all();
            let left = procs.alive_count();
            if left > 0 {
                bail!(
                    "{left} process(es) of the cluster in {} did not stop",
                    state.dir.display()
                );
            }
        }
        None => util::step(&format!("no cluster in {}", state.dir.display())),
    }
    if state.dir.exists() {
        fs::remove_dir_all(&state.dir)
            .with_context(|| format!("removing {}", state.dir.display()))?;
    }
    drop(lock);
    let _ = fs::remove_file(state.lock_file());
    Ok(())
}

/// Prints the tail of every component's log in `dir` (for a CI failure).
pub fn print_log_tails(dir: &Path, lines: usize) {
    let state = StateDir {
        dir: dir.to_path_buf(),
    };
    if let Ok(Some(procs)) = Processes::load(&state.dir) {
        for proc in procs.iter() {
            eprintln!("{}", process::log_tail(&proc.log, lines));
        }
    }
}

fn status(cache: &Cache, dir: &Path) -> Result<()> {
    println!("cache:      {}", cache.root.display());
    for (what, version, path) in build::cached(cache) {
        let state = if path.exists() { "built" } else { "not built" };
        println!("  {what:<10} {version:<9} {state:<10} {}", path.display());
    }
    println!("state dir:  {}", dir.display());
    let state = StateDir {
        dir: dir.to_path_buf(),
    };
    let Some(procs) = Processes::load(dir)? else {
        println!("no cluster (run `cargo xtask cluster up`)");
        return Ok(());
    };
    let cluster = cluster_of(&state, &procs)?;
    println!("server:     {}", cluster.server);
    println!("kubeconfig: {}", cluster.kubeconfig.display());
    println!();
    println!(
        "{:<24} {:>8} {:>6}  {:<8} log",
        "component", "pid", "port", "state"
    );
    for proc in procs.iter() {
        let running = if process::alive(proc.pid, &proc.binary) {
            "running"
        } else {
            "stopped"
        };
        println!(
            "{:<24} {:>8} {:>6}  {:<8} {}",
            proc.name,
            proc.pid,
            proc.port,
            running,
            proc.log.display()
        );
    }
    let alive = procs.alive_count();
    if alive != procs.len() {
        println!();
        println!(
            "{alive} of {} processes run: `cargo xtask cluster down` cleans up, then `up` again",
            procs.len()
        );
    }
    Ok(())
}

fn env_cmd(cache: &Cache, dir: &Path) -> Result<()> {
    let state = StateDir {
        dir: dir.to_path_buf(),
    };
    if Processes::load(dir)?.is_none() {
        bail!(
            "no cluster in {} (run `cargo xtask cluster up` first)",
            dir.display()
        );
    }
    println!("export KUBECONFIG={}", shell_quote(&state.kubeconfig()));
    let bin = build::k8s_bin_dir(cache);
    println!("export PATH={}:\"$PATH\"", shell_quote(&bin));
    Ok(())
}

fn shell_quote(path: &Path) -> String {
    let s = path.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_nonzero() {
        let ports = free_ports::<6>().unwrap();
        for (i, a) in ports.iter().enumerate() {
            assert_ne!(*a, 0);
            for b in &ports[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn shell_quote_quotes_only_when_needed() {
        assert_eq!(shell_quote(Path::new("/a/b-c.d")), "/a/b-c.d");
        assert_eq!(shell_quote(Path::new("/a b/it's")), "'/a b/it'\\''s'");
    }

    #[test]
    fn lock_file_is_a_sibling_of_the_state_dir() {
        let state = StateDir {
            dir: PathBuf::from("/x/cache/cluster"),
        };
        assert_eq!(state.lock_file(), PathBuf::from("/x/cache/cluster.lock"));
    }
}
