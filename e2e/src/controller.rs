//! The `rollouts-controller` binary as a child process of a test.
//!
//! [`Controller::start`] builds the binary once per run (`cargo build -p rollouts-controller`,
//! or takes `ROLLOUTS_CONTROLLER_BIN`), then starts it against the test cluster, confined to
//! the test's namespace (`--namespaced`), with its Lease in that namespace and its metrics and
//! health servers on free 127.0.0.1 ports. Its log goes to a file that [`Controller::log`]
//! reads (and that is printed when a test fails through [`Controller::log_tail`]). The process
//! is killed when the value is dropped, so it never outlives its test.

use std::{
    env, fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{TestContext, wait};

/// Environment variable naming a prebuilt controller binary (skips the build).
pub const BIN_ENV: &str = "ROLLOUTS_CONTROLLER_BIN";

static BINARY: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();

/// The controller binary: `$ROLLOUTS_CONTROLLER_BIN`, or built with cargo (once per run).
pub fn binary() -> Result<PathBuf> {
    BINARY
        .get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn build() -> Result<PathBuf> {
    if let Some(path) = env::var_os(BIN_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{BIN_ENV}={} is not a file", path.display());
        }
        return Ok(path);
    }
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the e2e crate has no parent directory")?
        .join("Cargo.toml");
    eprintln!("e2e: building rollouts-controller");
    let out = Command::new(&cargo)
        .args([
            "build",
            "--quiet",
            "--message-format=json",
            "--manifest-path",
        ])
        .arg(&manifest)
        .args(["-p", "rollouts-controller", "--bin", "rollouts-controller"])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {cargo} build"))?;
    if !out.status.success() {
        bail!("cargo build -p rollouts-controller failed ({})", out.status);
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["target"]["name"] == "rollouts-controller"
            && let Some(exe) = msg["executable"].as_str()
        {
            return Ok(PathBuf::from(exe));
        }
    }
    bail!("cargo build did not report the rollouts-controller executable")
}

/// A free TCP port on 127.0.0.1 (bound, then released for the child to take).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// How to start a controller.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--leader-elect` (with the lease flags below).
    pub leader_elect: bool,
    /// `--leader-election-lease-duration`, `--leader-election-renew-deadline`,
    /// `--leader-election-retry-period`.
    pub lease: (String, String, String),
    /// More flags.
    pub extra: Vec<String>,
    /// A name for the log file (several controllers in one test).
    pub name: String,
    /// The kubeconfig the controller uses (default: the test cluster's admin kubeconfig), e.g.
    /// one with a ServiceAccount's token.
    pub kubeconfig: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            leader_elect: true,
            lease: ("4s".into(), "3s".into(), "500ms".into()),
            extra: Vec::new(),
            name: "controller".into(),
            kubeconfig: None,
        }
    }
}

/// A running controller, killed on drop.
#[derive(Debug)]
pub struct Controller {
    child: Child,
    /// Port of `/metrics`.
    pub metrics_port: u16,
    /// Port of `/healthz`.
    pub healthz_port: u16,
    log: PathBuf,
}

impl Controller {
    /// Starts a controller for the test's namespace and waits until `/healthz` answers.
    ///
    /// The ports are picked free just before the start, so another process may take one in
    /// between (outgoing connections use the same port range): a controller that exits because
    /// its port is taken is started again on other ports, up to three times.
    pub async fn start(ctx: &TestContext, options: Options) -> Result<Self> {
        let mut attempt = 1;
        loop {
            match Self::start_once(ctx, &options).await {
                Err(err)
                    if attempt < 3 && format!("{err:#}").contains("Address already in use") =>
                {
                    eprintln!(
                        "e2e: a controller port was taken meanwhile; starting again on others"
                    );
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn start_once(ctx: &TestContext, options: &Options) -> Result<Self> {
        let bin = binary()?;
        let metrics_port = free_port()?;
        let healthz_port = free_port()?;
        let dir = env::temp_dir().join("rollouts-e2e-logs");
        fs::create_dir_all(&dir)?;
        let log = dir.join(format!("{}-{}.log", ctx.namespace, options.name));
        let file = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let kubeconfig = options
            .kubeconfig
            .as_deref()
            .unwrap_or_else(|| ctx.kubeconfig());
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg("--namespaced")
            .arg(format!("--namespace={}", ctx.namespace))
            .arg(format!("--metricsport={metrics_port}"))
            .arg(format!("--healthzPort={healthz_port}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--loglevel=debug")
            .arg(format!("--leader-elect={}", options.leader_elect))
            .arg(format!(
                "--leader-election-lease-duration={}",
                options.lease.0
            ))
            .arg(format!(
                "--leader-election-renew-deadline={}",
                options.lease.1
            ))
            .arg(format!(
                "--leader-election-retry-period={}",
                options.lease.2
            ))
            .args(&options.extra)
            .env("POD_NAMESPACE", &ctx.namespace)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut controller = Self {
            child,
            metrics_port,
            healthz_port,
            log,
        };
        let port = controller.healthz_port;
        let ready = wait::until(
            Duration::from_secs(30),
            "the controller's /healthz",
            || async move {
                http_get(port, "/healthz")
                    .await
                    .map(|b| (b == "ok").then_some(()))
            },
        )
        .await;
        if let Err(err) = ready {
            let tail = controller.log_tail(30);
            controller.kill();
            bail!("{err:#}\ncontroller log:\n{tail}");
        }
        Ok(controller)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for the exit (SIGKILL after `timeout`). Returns the exit code.
    pub async fn terminate(&mut self, timeout: Duration) -> Result<Option<i32>> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            if tokio::time::Instant::now() > deadline {
                self.kill();
                bail!("the controller did not stop within {timeout:?} of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of the log (ANSI colours stripped).
    pub fn log_tail(&self, n: usize) -> String {
        let log = strip_ansi(&self.log());
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// `GET /metrics`.
    pub async fn metrics(&self) -> Result<String> {
        http_get(self.metrics_port, "/metrics").await
    }

    /// Resident memory (VmRSS) in bytes, from `/proc`.
    pub fn rss_bytes(&self) -> Option<u64> {
        self.proc_status("VmRSS:")
    }

    /// Peak resident memory (VmHWM) in bytes, from `/proc`.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        self.proc_status("VmHWM:")
    }

    fn proc_status(&self, field: &str) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if self.running()
            && let Some(peak) = self.peak_rss_bytes()
        {
            eprintln!(
                "e2e-measure: controller {} peak resident memory {:.1} MiB",
                self.log
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                peak as f64 / 1048576.0
            );
        }
        self.kill();
    }
}

/// Removes ANSI colour escapes.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A plain HTTP/1.1 GET on 127.0.0.1; returns the body of a 200 answer.
pub async fn http_get(port: u16, path: &str) -> Result<String> {
    let mut stream = tokio::time::timeout(
        Duration::from_secs(5),
        TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    .context("connecting timed out")??;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .context("reading timed out")??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").context("not an HTTP answer")?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        bail!("GET {path}: {status}");
    }
    // axum answers small bodies without chunking; decode chunks if any.
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = tail[n..].trim_start_matches("\r\n");
        }
        return Ok(out);
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_colours_are_stripped() {
        assert_eq!(strip_ansi("\u{1b}[2mtime\u{1b}[0m INFO x"), "time INFO x");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn free_ports_are_distinct_enough() {
        let a = free_port().unwrap();
        assert!(a > 0);
    }
}
