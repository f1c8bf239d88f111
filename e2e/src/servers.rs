//! Servers a test starts for metric providers to talk to: a small HTTP server whose answers the
//! test sets ([`HttpServer`], a scrape target for Prometheus or a `web` metric's endpoint), and
//! a real Prometheus ([`Prometheus`], Debian's package installed by `cargo xtask prometheus`)
//! scraping it every second. Both listen on 127.0.0.1 only and stop when dropped, so they never
//! outlive their test.

use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

use crate::{controller::free_port, wait};

/// One canned answer.
#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

#[derive(Default)]
struct Shared {
    answers: HashMap<String, Answer>,
    requests: Vec<String>,
}

/// A tiny HTTP/1.1 server on 127.0.0.1: `GET <path>` answers what [`HttpServer::set`] gave
/// for that path (query strings are ignored when matching), `404` otherwise. Every request
/// line is recorded. The server stops when the value is dropped.
#[derive(Debug)]
pub struct HttpServer {
    port: u16,
    shared: Arc<Mutex<Shared>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("paths", &self.answers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl HttpServer {
    /// Starts the server on a free port.
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding 127.0.0.1")?;
        let port = listener.local_addr()?.port();
        let shared: Arc<Mutex<Shared>> = Arc::default();
        let state = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, state).await;
                });
            }
        });
        Ok(Self { port, shared, task })
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers `GET path` with `status` and `body` of `content_type` from now on.
    pub fn set(&self, path: &str, status: u16, content_type: &str, body: &str) {
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .answers
            .insert(
                path.to_string(),
                Answer {
                    status,
                    content_type: content_type.to_string(),
                    body: body.to_string(),
                },
            );
    }

    /// The request targets (`/path?query`) received so far.
    pub fn requests(&self) -> Vec<String> {
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .requests
            .clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<Shared>>) -> Result<()> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    // Read the request head (bodies are not used).
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await??;
        if n == 0 {
            return Ok(());
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.len() > 1 << 20 {
            bail!("request head too large");
        }
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let target = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_string();
    let path = target.split('?').next().unwrap_or("/").to_string();
    let answer = {
        let mut shared = state.lock().unwrap_or_else(|p| p.into_inner());
        shared.requests.push(target);
        shared.answers.get(&path).cloned()
    };
    let answer = answer.unwrap_or(Answer {
        status: 404,
        content_type: "text/plain".into(),
        body: "not found".into(),
    });
    let reason = match answer.status {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let response = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        answer.status,
        answer.content_type,
        answer.body.len(),
        answer.body
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}

/// A scrape target for Prometheus: an [`HttpServer`] serving gauges in the text exposition
/// format on `/metrics`.
#[derive(Debug)]
pub struct Target {
    server: HttpServer,
    gauges: Mutex<Vec<(String, f64)>>,
}

impl Target {
    /// Starts a target with no samples.
    pub async fn start() -> Result<Self> {
        let target = Self {
            server: HttpServer::start().await?,
            gauges: Mutex::default(),
        };
        target.publish();
        Ok(target)
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        self.server.address()
    }

    /// Sets a gauge sample, e.g. `set("app_success_rate{service=\"web\"}", 0.99)`.
    pub fn set(&self, series: &str, value: f64) {
        {
            let mut g = self.gauges.lock().unwrap_or_else(|p| p.into_inner());
            match g.iter_mut().find(|(s, _)| s == series) {
                Some(e) => e.1 = value,
                None => g.push((series.to_string(), value)),
            }
        }
        self.publish();
    }

    fn publish(&self) {
        let g = self.gauges.lock().unwrap_or_else(|p| p.into_inner());
        let mut body = String::new();
        let mut typed = Vec::new();
        for (series, value) in g.iter() {
            let name = series.split('{').next().unwrap_or(series).to_string();
            if !typed.contains(&name) {
                body.push_str(&format!("# TYPE {name} gauge\n"));
                typed.push(name);
            }
            body.push_str(&format!("{series} {value}\n"));
        }
        self.server
            .set("/metrics", 200, "text/plain; version=0.0.4", &body);
    }
}

/// The Prometheus binary: `$ROLLOUTS_RS_PROMETHEUS`, `prometheus` on the `PATH`, or Debian's
/// `/usr/bin/prometheus` (what `cargo xtask prometheus` installs).
pub fn prometheus_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("ROLLOUTS_RS_PROMETHEUS") {
        return Ok(PathBuf::from(path));
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("prometheus"))
        .chain([PathBuf::from("/usr/bin/prometheus")])
        .find(|p| p.is_file())
        .context(
            "Prometheus is not installed, and this test needs a real one: run `cargo xtask \
             prometheus` (Debian's prometheus package), or point ROLLOUTS_RS_PROMETHEUS at a binary",
        )
}

/// A Prometheus server of the test's own: 127.0.0.1, a temporary data directory, scraping one
/// target every second. Killed (and its directory removed) on drop.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`host:port`) and waits until it is ready.
    pub async fn start(target: &str) -> Result<Self> {
        let binary = prometheus_binary()?;
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!(
            "rollouts-e2e-prometheus-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("data"))?;
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )?;
        let log = std::fs::File::create(dir.join("prometheus.log"))?;
        let child = Command::new(&binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let server = Self { child, dir, port };
        let ready = wait::until(
            Duration::from_secs(30),
            "Prometheus to be ready",
            || async {
                Ok::<_, anyhow::Error>(
                    crate::controller::http_get(port, "/-/ready")
                        .await
                        .ok()
                        .map(|_| ()),
                )
            },
        )
        .await;
        if let Err(e) = ready {
            bail!("{e:#}\nPrometheus log:\n{}", server.log());
        }
        Ok(server)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Prometheus' own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// The first value of an instant query, if there is one.
    pub async fn query(&self, promql: &str) -> Result<Option<f64>> {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        let body = crate::controller::http_get(self.port, &path).await?;
        let v: serde_json::Value = serde_json::from_str(&body)?;
        Ok(v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok()))
    }

    /// Waits until `promql` returns `value` (the target was scraped since it changed).
    pub async fn wait_for(&self, promql: &str, value: f64) -> Result<()> {
        wait::until(
            Duration::from_secs(30),
            &format!("Prometheus to answer {promql} = {value}"),
            || async {
                Ok::<_, anyhow::Error>((self.query(promql).await? == Some(value)).then_some(()))
            },
        )
        .await
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Percent-encodes a query parameter value.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_http_server_answers_what_it_was_given() {
        let server = HttpServer::start().await.unwrap();
        server.set("/rate", 200, "application/json", "{\"rate\":0.99}");
        let body = crate::controller::http_get(server.port(), "/rate?x=1")
            .await
            .unwrap();
        assert_eq!(body, "{\"rate\":0.99}");
        assert!(
            crate::controller::http_get(server.port(), "/other")
                .await
                .is_err()
        );
        assert_eq!(server.requests(), ["/rate?x=1", "/other"]);
        let port = server.port();
        drop(server);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            TcpStream::connect(("127.0.0.1", port)).await.is_err(),
            "the server stops when dropped"
        );
    }

    #[tokio::test]
    async fn targets_publish_gauges_in_the_text_format() {
        let target = Target::start().await.unwrap();
        target.set("app_success_rate{service=\"web\"}", 0.5);
        target.set("app_success_rate{service=\"api\"}", 1.0);
        target.set("app_success_rate{service=\"web\"}", 0.99);
        let port: u16 = target
            .address()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let body = crate::controller::http_get(port, "/metrics").await.unwrap();
        assert_eq!(
            body,
            "# TYPE app_success_rate gauge\napp_success_rate{service=\"web\"} 0.99\napp_success_rate{service=\"api\"} 1\n"
        );
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            percent_encode("a{b=\"c\"} >= 1"),
            "a%7Bb%3D%22c%22%7D%20%3E%3D%201"
        );
    }
}
