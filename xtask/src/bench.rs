//! `cargo xtask bench`: the benchmarks that check the project's speed and memory goals.
//!
//! Two suites, each compared with its goals (a missed goal fails the task):
//!
//! - **engine**: `cargo bench -p rollouts-engine --bench plan` (divan); the median of every case
//!   must be under [`ENGINE_GOAL_NS`].
//! - **controller**: the release build of `rollouts-controller`, cluster-wide, against a local
//!   cluster started for the occasion in `<cache>/clusters/bench` (and always stopped at the end):
//!   the reaction to an image change (seen through watches), the peak resident memory idle and
//!   with 200 Healthy Rollouts, and how long those 200 take to become Healthy.
//!
//! Results are printed as a table and written as JSON to `target/bench/<suite>.json` so that runs
//! can be compared over time. Benchmarks are not tests: `cargo xtask ci` does not run them.

use std::{
    collections::{BTreeMap, BTreeSet},
    env, fs,
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{
    cluster::{self, Cache, Detach},
    project_root, util,
};

/// Goal: median time of one engine `plan` call (and of every other case of the bench), in ns.
pub const ENGINE_GOAL_NS: f64 = 20_000.0;
/// Goal: median of image change → canary ReplicaSet seen, in ms.
pub const REACTION_GOAL_MS: f64 = 250.0;
/// Goal: the controller's peak resident memory with the fleet of Rollouts Healthy, in MiB.
pub const MEMORY_GOAL_MIB: f64 = 64.0;

const NAMESPACE: &str = "rollouts-bench";
const REACTION_NAME: &str = "reaction";
const FLEET_LABEL: &str = "rollouts-bench/fleet";
const TIMEOUT: Duration = Duration::from_secs(300);

const USAGE: &str = "\
usage: cargo xtask bench [engine|controller] [--changes N] [--rollouts N]

Runs the benchmarks and checks their goals (exit status 1 when one is missed). Without a suite,
both run. Results: a table, and target/bench/<suite>.json.

suites:
  engine       cargo bench -p rollouts-engine --bench plan; every median under 20 µs
  controller   release rollouts-controller (cluster-wide) on a local cluster (<cache>/clusters/bench):
               image change -> canary ReplicaSet (median under 250 ms), peak memory with the
               fleet of Rollouts Healthy (under 64 MiB), time for the fleet to become Healthy

options:
  --changes N    image changes measured by the controller suite (default 10)
  --rollouts N   Rollouts of 2 replicas in the fleet (default 200)
";

/// Entry point of `cargo xtask bench`.
pub fn run(args: &[String]) -> Result<()> {
    let mut suites = Vec::new();
    let mut changes = 10usize;
    let mut rollouts = 200usize;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "engine" | "controller" => suites.push(arg.clone()),
            "--changes" => {
                changes = parse_count(it.next(), "--changes")?;
            }
            "--rollouts" => {
                rollouts = parse_count(it.next(), "--rollouts")?;
            }
            "-h" | "--help" | "help" => {
                print!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    if suites.is_empty() {
        suites = vec!["engine".into(), "controller".into()];
    }
    let out_dir = project_root().join("target").join("bench");
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    let mut missed = Vec::new();
    for suite in &suites {
        let checks = if suite == "engine" {
            engine(&out_dir)?
        } else {
            controller(&out_dir, changes, rollouts)?
        };
        missed.extend(missed_goals(&checks));
    }
    if !missed.is_empty() {
        bail!(
            "{} goal(s) missed:\n  {}",
            missed.len(),
            missed.join("\n  ")
        );
    }
    println!("\nevery goal is met");
    Ok(())
}

fn parse_count(value: Option<&String>, flag: &str) -> Result<usize> {
    let value = value.with_context(|| format!("{flag} needs a value"))?;
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("{flag}: `{value}` is not a positive whole number"),
    }
}

// ---------------------------------------------------------------------------------------------
// Goals

/// One measured value and its goal (an upper bound).
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What was measured.
    pub name: String,
    /// The measured value, in `unit`.
    pub measured: f64,
    /// The goal: `measured` must be below it; `None`: reported only.
    pub goal: Option<f64>,
    /// `ms`, `MiB`, ...
    pub unit: &'static str,
}

impl Check {
    fn met(&self) -> Option<bool> {
        self.goal.map(|goal| self.measured < goal)
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "measured": round3(self.measured),
            "goal": self.goal,
            "unit": self.unit,
            "met": self.met(),
        })
    }
}

/// A message for every check above its goal.
pub fn missed_goals(checks: &[Check]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c.met() == Some(false))
        .map(|c| {
            format!(
                "{}: {} {} is not under the goal of {} {}",
                c.name,
                fmt_num(c.measured),
                c.unit,
                fmt_num(c.goal.unwrap_or_default()),
                c.unit
            )
        })
        .collect()
}

fn print_table(title: &str, checks: &[Check]) {
    println!("\n{title}");
    let width = checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    println!(
        "  {:<width$}  {:>12}  {:>12}  result",
        "what", "measured", "goal"
    );
    for c in checks {
        let measured = format!("{} {}", fmt_num(c.measured), c.unit);
        let (goal, result) = match (c.goal, c.met()) {
            (Some(g), Some(true)) => (format!("< {} {}", fmt_num(g), c.unit), "ok"),
            (Some(g), _) => (format!("< {} {}", fmt_num(g), c.unit), "MISSED"),
            (None, _) => ("-".to_string(), "(report only)"),
        };
        println!("  {:<width$}  {measured:>12}  {goal:>12}  {result}", c.name);
    }
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The median of `values` (the mean of the two middle ones for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Date, commit and machine load, recorded with every result.
fn run_info() -> Value {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let commit = Command::new("git")
        .current_dir(project_root())
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    json!({
        "date": utc_date(secs),
        "unix_time": secs,
        "commit": commit,
        "cpus": thread::available_parallelism().map_or(0, |n| n.get()),
        "load_average": load_average(),
    })
}

/// `/proc/loadavg`'s 1, 5 and 15 minute load averages.
fn load_average() -> Option<String> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// `2026-03-01T12:34:56Z` from seconds since the epoch (proleptic Gregorian calendar).
fn utc_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    println!("  written: {}", path.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Engine

/// One case of a divan table.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchCase {
    /// The case's name (`group/case` when nested).
    pub name: String,
    /// Its median time, in nanoseconds.
    pub median_ns: f64,
}

fn engine(out_dir: &Path) -> Result<Vec<Check>> {
    util::step("cargo bench -p rollouts-engine --bench plan");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(&cargo)
        .current_dir(project_root())
        .args(["bench", "-p", "rollouts-engine", "--bench", "plan"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("running {cargo} bench"))?;
    let mut output = String::new();
    let stdout = child.stdout.take().context("cargo bench's stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo bench's output")?;
        println!("{line}");
        output.push_str(&line);
        output.push('\n');
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("cargo bench -p rollouts-engine --bench plan failed ({status})");
    }
    let cases = parse_divan(&output)?;
    let checks: Vec<Check> = cases
        .iter()
        .map(|c| Check {
            name: format!("engine {} (median)", c.name),
            measured: c.median_ns / 1000.0,
            goal: Some(ENGINE_GOAL_NS / 1000.0),
            unit: "µs",
        })
        .collect();
    print_table("engine: median per call vs goal", &checks);
    write_json(
        &out_dir.join("engine.json"),
        &json!({
            "suite": "engine",
            "run": run_info(),
            "command": "cargo bench -p rollouts-engine --bench plan",
            "cases": cases.iter().map(|c| json!({"name": c.name, "median_ns": round3(c.median_ns)})).collect::<Vec<_>>(),
            "checks": checks.iter().map(Check::to_json).collect::<Vec<_>>(),
        }),
    )?;
    Ok(checks)
}

/// Reads the medians out of divan's table (the `median` column, found by its heading).
pub fn parse_divan(output: &str) -> Result<Vec<BenchCase>> {
    let mut median_col = None;
    let mut stack: Vec<String> = Vec::new();
    let mut cases = Vec::new();
    for line in output.lines() {
        if !line.contains('│') {
            continue;
        }
        // The tree's prefix (`│  ├─ `) comes first: its `│` are not column separators.
        let label_start = line
            .char_indices()
            .find(|(_, c)| !matches!(c, '│' | '├' | '╰' | '─' | ' '))
            .map_or(line.len(), |(i, _)| i);
        let depth = line[..label_start].chars().count() / 3;
        let fields: Vec<&str> = line[label_start..].split('│').collect();
        if let Some(col) = fields.iter().position(|f| {
            let t = f.trim_end();
            t.ends_with(" median") || t == "median"
        }) {
            median_col = Some(col);
            stack.clear();
            continue;
        }
        let Some(col) = median_col else {
            continue;
        };
        let label = fields[0]
            .split("  ")
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if label.is_empty() || depth == 0 {
            continue;
        }
        stack.truncate(depth - 1);
        let value = fields.get(col).map_or("", |f| f.trim());
        if value.is_empty() {
            // A group: its cases follow, one level deeper.
            stack.push(label);
            continue;
        }
        if label.ends_with(':') {
            // A counter row (`alloc:` ...) under a case.
            continue;
        }
        let median_ns = parse_duration_ns(value)
            .with_context(|| format!("the median of `{label}` is `{value}`"))?;
        let mut name = stack.join("/");
        if !name.is_empty() {
            name.push('/');
        }
        name.push_str(&label);
        cases.push(BenchCase { name, median_ns });
    }
    if median_col.is_none() {
        bail!("no divan table (no `median` column) in the benchmark's output");
    }
    if cases.is_empty() {
        bail!("the divan table has no cases");
    }
    Ok(cases)
}

/// `5.02 µs` → 5020.0 (nanoseconds); units ps, ns, µs (or us), ms, s.
pub fn parse_duration_ns(text: &str) -> Result<f64> {
    let mut parts = text.split_whitespace();
    let (Some(number), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        bail!("`{text}` is not a number and a unit");
    };
    let number: f64 = number
        .parse()
        .with_context(|| format!("`{number}` is not a number"))?;
    let scale = match unit {
        "ps" => 0.001,
        "ns" => 1.0,
        "µs" | "us" => 1_000.0,
        "ms" => 1_000_000.0,
        "s" => 1_000_000_000.0,
        other => bail!("unknown time unit `{other}` in `{text}`"),
    };
    Ok(number * scale)
}

// ---------------------------------------------------------------------------------------------
// Controller

fn controller(out_dir: &Path, changes: usize, rollouts: usize) -> Result<Vec<Check>> {
    let cache = Cache::from_env()?;
    let dir = cache.root().join("clusters").join("bench");

    util::step("building rollouts-controller (release)");
    let bin = build_release_controller()?;

    // An interrupted earlier run may have left its cluster behind.
    if dir.exists() {
        cluster::down(&dir)?;
    }
    util::step("starting a local cluster for the benchmark");
    let load_before = load_average();
    let started = cluster::up(&cache, &dir, Detach::No)?;
    let mut bench = Bench {
        kubectl: cluster::kubectl_path(&cache),
        kubeconfig: started.kubeconfig,
        dir: dir.clone(),
        controller: None,
        metrics_port: 0,
    };
    let result = bench.measure(&bin, changes, rollouts);
    if let Err(err) = &result {
        eprintln!("\nthe controller benchmark failed: {err:#}");
        if let Some(log) = bench.controller_log_tail(30) {
            eprintln!("--- the end of the controller's log ---\n{log}");
        }
    }
    let load_after = load_average();
    if let Some(mut child) = bench.controller.take() {
        util::step("stopping rollouts-controller");
        let _ = child.kill();
        let _ = child.wait();
    }
    let down = cluster::down(&dir);
    let measured = result?;
    down?;

    let checks = measured.checks(rollouts);
    print_table("controller (release build, cluster-wide) vs goals", &checks);
    let mut info = run_info();
    info["load_average_before"] = json!(load_before);
    info["load_average_after"] = json!(load_after);
    write_json(
        &out_dir.join("controller.json"),
        &json!({
            "suite": "controller",
            "run": info,
            "controller": "release build, cluster-wide (no --namespaced), --qps/--burst defaults",
            "reaction_ms": stats_json(&measured.reaction_ms),
            "reaction_from_patch_ms": stats_json(&measured.from_patch_ms),
            "memory_mib": {
                "idle_peak": round3(measured.idle_peak_mib),
                "fleet_peak": round3(measured.fleet_peak_mib),
                "fleet_rss": round3(measured.fleet_rss_mib),
            },
            "fleet": {
                "rollouts": rollouts,
                "replicas_each": 2,
                "seconds_to_all_healthy": round3(measured.fleet_seconds),
                "controller_api_requests": measured.fleet_requests,
            },
            "checks": checks.iter().map(Check::to_json).collect::<Vec<_>>(),
        }),
    )?;
    Ok(checks)
}

fn stats_json(samples: &[f64]) -> Value {
    json!({
        "samples": samples.iter().map(|v| round3(*v)).collect::<Vec<_>>(),
        "min": samples.iter().copied().reduce(f64::min).map(round3),
        "median": median(samples).map(round3),
        "max": samples.iter().copied().reduce(f64::max).map(round3),
    })
}

/// What the controller suite measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerResults {
    /// Per image change: the Rollout's new generation seen on a watch → its canary ReplicaSet
    /// seen on a watch, in ms.
    pub reaction_ms: Vec<f64>,
    /// Per image change: just before `kubectl patch` starts → the canary ReplicaSet seen, in ms.
    pub from_patch_ms: Vec<f64>,
    /// VmHWM a few seconds after the controller is up, in MiB.
    pub idle_peak_mib: f64,
    /// VmHWM once the fleet is Healthy, in MiB.
    pub fleet_peak_mib: f64,
    /// VmRSS at the same moment, in MiB.
    pub fleet_rss_mib: f64,
    /// Creating the fleet → every Rollout of it Healthy, in seconds.
    pub fleet_seconds: f64,
    /// The controller's API requests (`controller_clientset_k8s_request_total`) meanwhile.
    pub fleet_requests: f64,
}

impl ControllerResults {
    /// The table: what has a goal, and what is reported only.
    pub fn checks(&self, rollouts: usize) -> Vec<Check> {
        let ms = |name: &str, v: Option<f64>, goal: Option<f64>| Check {
            name: name.to_string(),
            measured: v.unwrap_or(f64::NAN),
            goal,
            unit: "ms",
        };
        let min = |s: &[f64]| s.iter().copied().reduce(f64::min);
        let max = |s: &[f64]| s.iter().copied().reduce(f64::max);
        let n = self.reaction_ms.len();
        let mut checks = vec![
            ms(
                &format!("image change -> canary RS, median of {n}"),
                median(&self.reaction_ms),
                Some(REACTION_GOAL_MS),
            ),
            ms(
                "image change -> canary RS, min",
                min(&self.reaction_ms),
                None,
            ),
            ms(
                "image change -> canary RS, max",
                max(&self.reaction_ms),
                None,
            ),
            ms(
                "kubectl patch started -> canary RS, median",
                median(&self.from_patch_ms),
                None,
            ),
            Check {
                name: "peak RSS, idle after start".into(),
                measured: self.idle_peak_mib,
                goal: None,
                unit: "MiB",
            },
            Check {
                name: format!("peak RSS, {rollouts} Rollouts Healthy"),
                measured: self.fleet_peak_mib,
                goal: Some(MEMORY_GOAL_MIB),
                unit: "MiB",
            },
            Check {
                name: format!("{rollouts} Rollouts created -> all Healthy"),
                measured: self.fleet_seconds,
                goal: None,
                unit: "s",
            },
        ];
        if self.fleet_seconds > 0.0 {
            checks.push(Check {
                name: "  = Rollouts Healthy per second".into(),
                measured: rollouts as f64 / self.fleet_seconds,
                goal: None,
                unit: "/s",
            });
            checks.push(Check {
                name: "  controller API requests per second meanwhile".into(),
                measured: self.fleet_requests / self.fleet_seconds,
                goal: None,
                unit: "/s",
            });
        }
        checks
    }
}

/// `VmHWM:` (or another `kB` field) of a `/proc/<pid>/status` text, in bytes.
pub fn proc_status_bytes(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.trim();
        let kb = rest.strip_suffix("kB")?.trim().parse::<u64>().ok()?;
        Some(kb * 1024)
    })
}

/// `cargo build --release -p rollouts-controller`; returns the executable.
fn build_release_controller() -> Result<PathBuf> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .current_dir(project_root())
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
            "-p",
            "rollouts-controller",
            "--bin",
            "rollouts-controller",
        ])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {cargo} build"))?;
    if !out.status.success() {
        bail!(
            "cargo build --release -p rollouts-controller failed ({})",
            out.status
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find_map(|msg| {
            (msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "rollouts-controller")
                .then(|| msg["executable"].as_str().map(PathBuf::from))
                .flatten()
        })
        .context("cargo build did not report the rollouts-controller executable")
}

/// An event from one of our `kubectl get --watch` processes.
struct Seen {
    at: Instant,
    kind: &'static str,
    event: Value,
}

/// A `kubectl get --watch --output-watch-events -o json` process whose events are sent, with
/// the moment each was read, to a channel.
struct Watch {
    child: Child,
}

impl Watch {
    fn start(
        bench: &Bench,
        kind: &'static str,
        args: &[&str],
        tx: mpsc::Sender<Seen>,
    ) -> Result<Self> {
        let mut child = Command::new(&bench.kubectl)
            .arg(format!("--kubeconfig={}", bench.kubeconfig.display()))
            .args(["-n", NAMESPACE, "get"])
            .args(args)
            .args(["--watch", "--output-watch-events", "-o", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("running {}", bench.kubectl.display()))?;
        let stdout = child.stdout.take().context("kubectl's stdout")?;
        thread::spawn(move || {
            let stream =
                serde_json::Deserializer::from_reader(BufReader::new(stdout)).into_iter::<Value>();
            for event in stream {
                let Ok(event) = event else { break };
                let seen = Seen {
                    at: Instant::now(),
                    kind,
                    event,
                };
                if tx.send(seen).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Bench {
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    dir: PathBuf,
    controller: Option<Child>,
    metrics_port: u16,
}

impl Bench {
    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd
            .spawn()
            .with_context(|| format!("running {}", self.kubectl.display()))?;
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .context("kubectl's stdin")?
                .write_all(input.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "kubectl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("rollouts-controller.log")
    }

    fn controller_log_tail(&self, n: usize) -> Option<String> {
        let text = fs::read_to_string(self.log_path()).ok()?;
        let lines: Vec<&str> = text.lines().collect();
        Some(lines[lines.len().saturating_sub(n)..].join("\n"))
    }

    /// How many API requests the controller has made (from its `/metrics`).
    fn api_requests(&self) -> Result<f64> {
        let text = http_get(self.metrics_port, "/metrics")
            .context("the controller's /metrics did not answer")?;
        metric_sum(&text, "controller_clientset_k8s_request_total")
            .context("no controller_clientset_k8s_request_total in the controller's /metrics")
    }

    fn check_controller(&mut self) -> Result<()> {
        if let Some(child) = self.controller.as_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!("rollouts-controller exited ({status})");
        }
        Ok(())
    }

    fn controller_status(&self) -> Result<String> {
        let pid = self
            .controller
            .as_ref()
            .context("the controller is not running")?
            .id();
        fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))
    }

    fn memory_mib(&self, field: &str) -> Result<f64> {
        let status = self.controller_status()?;
        let bytes = proc_status_bytes(&status, field)
            .with_context(|| format!("no `{field}` in the controller's /proc status"))?;
        Ok(bytes as f64 / 1_048_576.0)
    }

    fn measure(
        &mut self,
        bin: &Path,
        changes: usize,
        rollouts: usize,
    ) -> Result<ControllerResults> {
        util::step("installing the CRDs (charts/rollouts/crds/)");
        let crds = project_root().join("charts").join("rollouts").join("crds");
        self.kubectl(
            &["apply", "--server-side", "-f", &crds.display().to_string()],
            None,
        )?;
        let start = Instant::now();
        while self.kubectl(&["get", "rollouts", "-A"], None).is_err() {
            if start.elapsed() > Duration::from_secs(60) {
                bail!("the Rollout CRD is not served after 60s");
            }
            thread::sleep(Duration::from_millis(300));
        }
        self.kubectl(&["create", "namespace", NAMESPACE], None)?;

        util::step("starting the release rollouts-controller (cluster-wide)");
        self.start_controller(bin)?;
        // Idle: up, caches filled, nothing to do.
        thread::sleep(Duration::from_secs(5));
        self.check_controller()?;
        let idle_peak_mib = self.memory_mib("VmHWM:")?;
        eprintln!("    idle peak RSS: {idle_peak_mib:.1} MiB");

        util::step(&format!(
            "reaction: {changes} image changes of a canary Rollout (setWeight 20, pause), each promoted full"
        ));
        let (reaction_ms, from_patch_ms) = self.reaction(changes)?;

        util::step(&format!(
            "memory and throughput: {rollouts} Rollouts of 2 replicas until all are Healthy"
        ));
        let requests_before = self.api_requests()?;
        let fleet_seconds = self.fleet(rollouts)?;
        let fleet_requests = self.api_requests()? - requests_before;
        eprintln!(
            "    all {rollouts} Healthy after {fleet_seconds:.1}s, {fleet_requests:.0} API requests by the controller; settling 5s"
        );
        thread::sleep(Duration::from_secs(5));
        self.check_controller()?;
        let fleet_peak_mib = self.memory_mib("VmHWM:")?;
        let fleet_rss_mib = self.memory_mib("VmRSS:")?;
        Ok(ControllerResults {
            reaction_ms,
            from_patch_ms,
            idle_peak_mib,
            fleet_peak_mib,
            fleet_rss_mib,
            fleet_seconds,
            fleet_requests,
        })
    }

    fn start_controller(&mut self, bin: &Path) -> Result<()> {
        let metrics = free_port()?;
        self.metrics_port = metrics;
        let health = free_port()?;
        let log = self.log_path();
        let file = fs::File::create(&log)?;
        let child = Command::new(bin)
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg("--leader-elect=false")
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--metricsport={metrics}"))
            .arg(format!("--healthzPort={health}"))
            .env("POD_NAMESPACE", NAMESPACE)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        eprintln!("    pid {}, log {}", child.id(), log.display());
        self.controller = Some(child);
        let start = Instant::now();
        while !http_ok(health, "/healthz") {
            self.check_controller()?;
            if start.elapsed() > Duration::from_secs(60) {
                bail!("rollouts-controller's /healthz did not answer ok within 60s");
            }
            thread::sleep(Duration::from_millis(100));
        }
        eprintln!("    /healthz ok after {}", util::human(start.elapsed()));
        Ok(())
    }

    /// Waits for the next watch event, failing on timeout or when the controller exits.
    fn next(&mut self, rx: &mpsc::Receiver<Seen>, deadline: Instant, what: &str) -> Result<Seen> {
        loop {
            self.check_controller()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("timed out waiting for {what}");
            }
            match rx.recv_timeout(left.min(Duration::from_secs(1))) {
                Ok(seen) => return Ok(seen),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("the kubectl watches stopped while waiting for {what}")
                }
            }
        }
    }

    /// Image changes, each timed from the patch to the canary ReplicaSet, both seen through
    /// watches; each change is then promoted full and waited for until Healthy.
    fn reaction(&mut self, changes: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        let image = |n: usize| format!("registry.invalid/bench/app:{n}");
        self.kubectl(
            &["-n", NAMESPACE, "apply", "-f", "-"],
            Some(&reaction_rollout(&image(0))),
        )?;
        let (tx, rx) = mpsc::channel();
        let _rollout_watch =
            Watch::start(self, "Rollout", &["rollout", REACTION_NAME], tx.clone())?;
        let _rs_watch = Watch::start(
            self,
            "ReplicaSet",
            &["replicasets", "-l", &format!("app={REACTION_NAME}")],
            tx,
        )?;
        // Healthy on the first image, and both watches established (each has listed what exists).
        let deadline = Instant::now() + TIMEOUT;
        let mut rollout = Value::Null;
        let mut hashes = BTreeSet::new();
        while !healthy(&rollout) || hashes.is_empty() {
            let seen = self.next(&rx, deadline, "the reaction Rollout to be Healthy")?;
            match seen.kind {
                "Rollout" => rollout = seen.event["object"].clone(),
                _ => {
                    hashes.insert(pod_template_hash(&seen.event["object"]));
                }
            }
        }
        let mut reaction = Vec::new();
        let mut from_patch = Vec::new();
        for n in 1..=changes {
            let generation = rollout["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image(n)}]}}}});
            let sent = Instant::now();
            self.kubectl(
                &[
                    "-n",
                    NAMESPACE,
                    "patch",
                    "rollout",
                    REACTION_NAME,
                    "--type=merge",
                    "-p",
                    &patch.to_string(),
                ],
                None,
            )?;
            let deadline = Instant::now() + TIMEOUT;
            let mut changed_at = None;
            let mut created_at = None;
            let mut new_hash = String::new();
            while changed_at.is_none() || created_at.is_none() {
                let seen = self.next(
                    &rx,
                    deadline,
                    &format!("the canary ReplicaSet of image change {n}"),
                )?;
                let obj = &seen.event["object"];
                if seen.kind == "Rollout" {
                    rollout = obj.clone();
                    if changed_at.is_none()
                        && obj["metadata"]["generation"].as_i64() >= Some(generation)
                    {
                        changed_at = Some(seen.at);
                    }
                } else if seen.event["type"] == "ADDED" {
                    let hash = pod_template_hash(obj);
                    if created_at.is_none() && hashes.insert(hash.clone()) {
                        created_at = Some(seen.at);
                        new_hash = hash;
                    }
                }
            }
            let (Some(changed), Some(created)) = (changed_at, created_at) else {
                unreachable!("the loop ends when both are set");
            };
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            reaction.push(ms(created.saturating_duration_since(changed)));
            from_patch.push(ms(created.saturating_duration_since(sent)));
            eprintln!(
                "    change {n:>2}: canary ReplicaSet {REACTION_NAME}-{new_hash} {:.0} ms after the new generation was seen ({:.0} ms after kubectl patch started)",
                reaction[reaction.len() - 1],
                from_patch[from_patch.len() - 1]
            );
            // At the indefinite pause: promote full (what `kubectl argo rollouts promote --full`
            // does), then wait until the new revision is the stable one.
            while !(rollout["status"]["phase"] == "Paused"
                && rollout["status"]["currentPodHash"] == new_hash.as_str())
            {
                rollout = self
                    .rollout_event(&rx, deadline, "the pause")?
                    .unwrap_or(rollout);
            }
            self.kubectl(
                &[
                    "-n",
                    NAMESPACE,
                    "patch",
                    "rollout",
                    REACTION_NAME,
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    r#"{"status":{"promoteFull":true}}"#,
                ],
                None,
            )?;
            while !(healthy(&rollout) && rollout["status"]["stableRS"] == new_hash.as_str()) {
                rollout = self
                    .rollout_event(&rx, deadline, "the promoted revision to be Healthy")?
                    .unwrap_or(rollout);
            }
        }
        Ok((reaction, from_patch))
    }

    /// The next Rollout object seen (`None` for a ReplicaSet event).
    fn rollout_event(
        &mut self,
        rx: &mpsc::Receiver<Seen>,
        deadline: Instant,
        what: &str,
    ) -> Result<Option<Value>> {
        let seen = self.next(rx, deadline, what)?;
        Ok((seen.kind == "Rollout").then(|| seen.event["object"].clone()))
    }

    /// Creates `count` Rollouts at once; returns the seconds until the watch has seen every one
    /// of them Healthy.
    fn fleet(&mut self, count: usize) -> Result<f64> {
        let (tx, rx) = mpsc::channel();
        let _watch = Watch::start(self, "Rollout", &["rollouts", "-l", FLEET_LABEL], tx)?;
        let list = json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": (0..count).map(fleet_rollout).collect::<Vec<_>>(),
        });
        let start = Instant::now();
        self.kubectl(
            &["-n", NAMESPACE, "create", "-f", "-"],
            Some(&list.to_string()),
        )?;
        eprintln!(
            "    created in {} (one kubectl create)",
            util::human(start.elapsed())
        );
        let deadline = start + TIMEOUT;
        let mut state: BTreeMap<String, bool> = BTreeMap::new();
        let mut last_report = Instant::now();
        loop {
            let healthy_now = state.values().filter(|h| **h).count();
            if healthy_now == count {
                return Ok(start.elapsed().as_secs_f64());
            }
            if last_report.elapsed() > Duration::from_secs(10) {
                eprintln!(
                    "    {healthy_now} of {count} Healthy after {}",
                    util::human(start.elapsed())
                );
                last_report = Instant::now();
            }
            let what = format!("{count} Rollouts to be Healthy ({healthy_now} are)");
            let seen = self.next(&rx, deadline, &what)?;
            let obj = &seen.event["object"];
            let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
            state.insert(name, healthy(obj));
        }
    }
}

fn pod_template_hash(rs: &Value) -> String {
    rs["metadata"]["labels"]["rollouts-pod-template-hash"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Healthy on the generation it shows, the stable revision being the current one.
fn healthy(ro: &Value) -> bool {
    let generation = ro["metadata"]["generation"].as_i64();
    let observed = ro["status"]["observedGeneration"]
        .as_str()
        .and_then(|g| g.parse::<i64>().ok())
        .or_else(|| ro["status"]["observedGeneration"].as_i64());
    generation.is_some()
        && observed == generation
        && ro["status"]["phase"] == "Healthy"
        && ro["status"]["stableRS"].is_string()
        && ro["status"]["stableRS"] == ro["status"]["currentPodHash"]
}

fn reaction_rollout(image: &str) -> String {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": REACTION_NAME},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": REACTION_NAME}},
            "template": {
                "metadata": {"labels": {"app": REACTION_NAME}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            },
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}
        }
    })
    .to_string()
}

fn fleet_rollout(i: usize) -> Value {
    let name = format!("fleet-{i:03}");
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "labels": {FLEET_LABEL: "true"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/bench/fleet:1"}]}
            },
            "strategy": {"canary": {}}
        }
    })
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// `GET path` on 127.0.0.1:`port` answers 200.
fn http_ok(port: u16, path: &str) -> bool {
    http_get(port, path).is_some()
}

/// The body of `GET path` on 127.0.0.1:`port` when it answers 200.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    if !(response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200")) {
        return None;
    }
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

/// The sum of every series of the metric `name` in a Prometheus text exposition.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = false;
    let mut sum = 0.0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        let value = rest.rsplit(' ').next()?.parse::<f64>().ok()?;
        sum += value;
        found = true;
    }
    found.then_some(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `cargo bench -p rollouts-engine --bench plan` printed (divan 0.1.21), with one
    /// case changed to milliseconds and a nested group added to cover those forms.
    const DIVAN_SAMPLE: &str = "\
Timer precision: 20 ns
plan                                         fastest       │ slowest       │ median        │ mean          │ samples │ iters
├─ plan_basic_canary_1000_replicas_10_old    4.481 µs      │ 31.2 µs       │ 5.02 µs       │ 5.313 µs      │ 100     │ 1600
├─ plan_blue_green_1000_replicas_10_old      9.1 µs        │ 40.5 µs       │ 21.3 µs       │ 22 µs         │ 100     │ 800
├─ plan_traffic_routed_1000_replicas_10_old  1.2 ms        │ 1.9 ms        │ 1.31 ms       │ 1.4 ms        │ 100     │ 100
├─ pod_template_hash_only                    780.5 ns      │ 2.1 µs        │ 812 ns        │ 830 ns        │ 100     │ 6400
├─ sized                                                   │               │               │               │         │
│  ├─ 10                                     90 ns         │ 120 ns        │ 95.5 ns       │ 97 ns         │ 100     │ 51200
│  ╰─ 100                                    900 ns        │ 1.2 µs        │ 950 ns        │ 960 ns        │ 100     │ 6400
╰─ step_hash_only                            120.3 ns      │ 400 ns        │ 130.1 ns      │ 140 ns        │ 100     │ 25600
";

    #[test]
    fn divan_medians_are_read_in_every_unit() {
        let cases = parse_divan(DIVAN_SAMPLE).unwrap();
        let got: Vec<(&str, f64)> = cases
            .iter()
            .map(|c| (c.name.as_str(), c.median_ns))
            .collect();
        let want = [
            ("plan_basic_canary_1000_replicas_10_old", 5020.0),
            ("plan_blue_green_1000_replicas_10_old", 21300.0),
            ("plan_traffic_routed_1000_replicas_10_old", 1_310_000.0),
            ("pod_template_hash_only", 812.0),
            ("sized/10", 95.5),
            ("sized/100", 950.0),
            ("step_hash_only", 130.1),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for ((name, ns), (want_name, want_ns)) in got.iter().zip(want) {
            assert_eq!(*name, want_name);
            assert!((ns - want_ns).abs() < 1e-6, "{name}: {ns} != {want_ns}");
        }
    }

    #[test]
    fn durations_need_a_known_unit() {
        assert_eq!(parse_duration_ns("800 ps").unwrap(), 0.8);
        assert_eq!(parse_duration_ns("3 us").unwrap(), 3000.0);
        assert_eq!(parse_duration_ns("2 s").unwrap(), 2e9);
        let err = parse_duration_ns("5 fortnights").unwrap_err().to_string();
        assert!(err.contains("fortnights"), "{err}");
        assert!(parse_duration_ns("fast").is_err());
        assert!(parse_duration_ns("1.2.3 ns").is_err());
    }

    #[test]
    fn output_without_a_table_or_with_a_bad_median_is_an_error() {
        let err = parse_divan("error: no benchmarks\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no divan table"), "{err}");
        let bad = "plan  fastest │ slowest │ median │ mean\n╰─ x  1 ns │ 2 ns │ soon │ 1 ns\n";
        let err = format!("{:#}", parse_divan(bad).unwrap_err());
        assert!(err.contains("`x`") && err.contains("soon"), "{err}");
    }

    #[test]
    fn engine_goal_is_checked_per_case_with_the_median_and_the_goal_named() {
        let cases = parse_divan(DIVAN_SAMPLE).unwrap();
        let checks: Vec<Check> = cases
            .iter()
            .map(|c| Check {
                name: format!("engine {} (median)", c.name),
                measured: c.median_ns / 1000.0,
                goal: Some(ENGINE_GOAL_NS / 1000.0),
                unit: "µs",
            })
            .collect();
        let missed = missed_goals(&checks);
        assert_eq!(missed.len(), 2, "{missed:?}");
        assert_eq!(
            missed[0],
            "engine plan_blue_green_1000_replicas_10_old (median): 21.3 µs is not under the goal of 20.0 µs"
        );
        assert!(missed[1].contains("plan_traffic_routed") && missed[1].contains("1310 µs"));
    }

    #[test]
    fn controller_goals_reaction_median_and_fleet_memory() {
        let mut r = ControllerResults {
            reaction_ms: vec![30.0, 400.0, 20.0, 25.0, 500.0],
            from_patch_ms: vec![80.0; 5],
            idle_peak_mib: 12.0,
            fleet_peak_mib: 40.0,
            fleet_rss_mib: 35.0,
            fleet_seconds: 20.0,
            fleet_requests: 1000.0,
        };
        let checks = r.checks(200);
        // Two slow changes out of five do not move the median (30 ms).
        assert!(
            missed_goals(&checks).is_empty(),
            "{:?}",
            missed_goals(&checks)
        );
        assert_eq!(checks[0].measured, 30.0);
        assert_eq!(checks[1].measured, 20.0);
        assert_eq!(checks[2].measured, 500.0);
        assert!(checks.iter().any(|c| c.unit == "/s" && c.measured == 10.0));
        assert!(
            checks
                .iter()
                .any(|c| c.name.contains("API requests") && c.measured == 50.0)
        );
        r.reaction_ms = vec![300.0, 260.0, 10.0];
        r.fleet_peak_mib = 64.0;
        let missed = missed_goals(&r.checks(200));
        assert_eq!(missed.len(), 2, "{missed:?}");
        assert!(
            missed[0].contains("median of 3") && missed[0].contains("260 ms"),
            "{}",
            missed[0]
        );
        assert!(
            missed[1].contains("200 Rollouts") && missed[1].contains("64.0 MiB"),
            "{}",
            missed[1]
        );
    }

    #[test]
    fn report_only_values_never_fail() {
        let c = Check {
            name: "x".into(),
            measured: 1e9,
            goal: None,
            unit: "s",
        };
        assert!(missed_goals(&[c]).is_empty());
    }

    #[test]
    fn request_counts_are_summed_over_every_series() {
        let text = "# HELP controller_clientset_k8s_request_total Number of requests\n\
# TYPE controller_clientset_k8s_request_total counter\n\
controller_clientset_k8s_request_total{kind=\"Rollout\",verb=\"List\",status_code=\"200\"} 3\n\
controller_clientset_k8s_request_total{kind=\"ReplicaSet\",verb=\"Create\",status_code=\"201\"} 200\n\
controller_clientset_k8s_request_total_other 7\n\
rollout_info{name=\"a\"} 1\n";
        assert_eq!(
            metric_sum(text, "controller_clientset_k8s_request_total"),
            Some(203.0)
        );
        assert_eq!(metric_sum(text, "rollout_reconcile"), None);
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn proc_status_fields_are_read_in_bytes() {
        let status = "Name:\trollouts-contro\nVmPeak:\t  900000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   18432 kB\n";
        assert_eq!(proc_status_bytes(status, "VmHWM:"), Some(20480 * 1024));
        assert_eq!(proc_status_bytes(status, "VmRSS:"), Some(18432 * 1024));
        assert_eq!(proc_status_bytes(status, "VmSwap:"), None);
    }

    #[test]
    fn dates_are_utc_iso() {
        assert_eq!(utc_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_date(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_date(1_772_366_096), "2026-03-01T11:54:56Z");
    }

    #[test]
    fn the_healthy_check_needs_the_observed_generation() {
        let mut ro = json!({
            "metadata": {"generation": 3},
            "status": {"observedGeneration": "3", "phase": "Healthy", "stableRS": "abc", "currentPodHash": "abc"}
        });
        assert!(healthy(&ro));
        ro["status"]["observedGeneration"] = json!("2");
        assert!(!healthy(&ro));
        ro["status"]["observedGeneration"] = json!("3");
        ro["status"]["currentPodHash"] = json!("def");
        assert!(!healthy(&ro));
    }

    #[test]
    fn fleet_rollouts_are_labelled_and_distinct() {
        let a = fleet_rollout(1);
        let b = fleet_rollout(199);
        assert_eq!(a["metadata"]["name"], "fleet-001");
        assert_eq!(b["metadata"]["labels"][FLEET_LABEL], "true");
        assert_ne!(a["spec"]["selector"], b["spec"]["selector"]);
        assert_eq!(a["spec"]["replicas"], 2);
    }
}
