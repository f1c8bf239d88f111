//! `cargo xtask demo`: a canary rollout, live, on a local cluster, explained as it happens.
//!
//! It starts the local control plane (`cargo xtask cluster`), installs our CRDs, builds and
//! runs `rollouts-controller`, deploys a Rollout of five pods with a Service, changes its
//! image, and narrates each step of the canary: which step runs, how many pods each revision
//! has, how much of the traffic the canary receives. At the indefinite pause it promotes the
//! rollout (what `kubectl argo rollouts promote` does), and it ends when the new revision is
//! the stable one. Whatever happens (success, failure, Ctrl-C), what it started is stopped:
//! the controller and the cluster run in the xtask's process group, and are stopped
//! explicitly on the way out.

use std::{
    collections::BTreeMap,
    env, fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{
    cluster::{self, Cache, Detach},
    project_root, util,
};

const NAMESPACE: &str = "rollouts-demo";
const NAME: &str = "web";
const TIMEOUT: Duration = Duration::from_secs(300);

const USAGE: &str = "\
usage: cargo xtask demo [--dir DIR] [--keep]

Starts a local cluster and our controller, and walks a canary rollout step by step.

options:
  --dir DIR   state directory of the demo cluster (default: <cache>/demo)
  --keep      leave the cluster and the controller running at the end
";

/// Entry point of `cargo xtask demo`.
pub fn run(args: &[String]) -> Result<()> {
    let mut dir = None;
    let mut keep = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--dir" => dir = Some(PathBuf::from(it.next().context("--dir needs a value")?)),
            "--keep" => keep = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    let cache = Cache::from_env()?;
    let dir = match dir {
        Some(d) => std::path::absolute(d)?,
        None => cache.root().join("demo"),
    };

    intro();
    // A demo interrupted earlier may have left its state behind.
    if dir.exists() {
        cluster::down(&dir)?;
    }
    util::step("starting a local Kubernetes cluster (kube-apiserver, etcd, scheduler, KWOK nodes)");
    let started = cluster::up(&cache, &dir, Detach::No)?;
    let mut demo = Demo {
        kubectl: cluster::kubectl_path(&cache),
        kubeconfig: started.kubeconfig.clone(),
        dir: dir.clone(),
        controller: None,
        keep,
    };
    let result = demo.play();
    if let Err(err) = &result {
        eprintln!("\nthe demo failed: {err:#}");
        if let Some(log) = demo.controller_log_tail(30) {
            eprintln!("--- the end of the controller's log ---\n{log}");
        }
    }
    demo.stop();
    result
}

fn intro() {
    println!(
        "\
A canary rollout replaces a running version of an application with a new one a little at a
time. A few pods of the new version (the canary) run next to the stable ones; the share of
canary pods grows step by step, with pauses in between to look at how the new version behaves.
If something is wrong the rollout is aborted and the stable version takes everything back; if
all is well, the canary becomes the new stable version.

This demo runs that on a local cluster with rollouts-rs (a Rust drop-in for Argo Rollouts):
a Rollout of 5 pods whose steps are

    setWeight 20 -> pause (until promoted) -> setWeight 40 -> pause 10s ->
    setWeight 60 -> pause 10s -> setWeight 80 -> pause 10s

Without a service mesh the weight is the share of pods: 20 % of 5 pods is 1 canary pod.
"
    );
}

struct Demo {
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    dir: PathBuf,
    controller: Option<(Child, PathBuf)>,
    keep: bool,
}

impl Demo {
    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        } else {
            cmd.stdin(Stdio::null());
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("running {}", self.kubectl.display()))?;
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .context("kubectl stdin")?
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

    fn json(&self, args: &[&str]) -> Result<Value> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.kubectl(&all, None)?;
        serde_json::from_str(&out).context("kubectl printed something that is not JSON")
    }

    fn controller_log_tail(&self, n: usize) -> Option<String> {
        let (_, log) = self.controller.as_ref()?;
        let text = fs::read_to_string(log).ok()?;
        let lines: Vec<&str> = text.lines().collect();
        Some(lines[lines.len().saturating_sub(n)..].join("\n"))
    }

    fn play(&mut self) -> Result<()> {
        util::step("installing the Argo Rollouts CRDs (charts/rollouts/crds/)");
        let crds = project_root().join("charts").join("rollouts").join("crds");
        self.kubectl(
            &["apply", "--server-side", "-f", &crds.display().to_string()],
            None,
        )?;
        // Served once the CRD is Established (a just-created CRD has no conditions yet, so
        // `kubectl wait` can fail: ask for Rollouts until the API answers).
        let start = Instant::now();
        while self.kubectl(&["get", "rollouts", "-A"], None).is_err() {
            if start.elapsed() > Duration::from_secs(60) {
                bail!("the Rollout CRD is not served after 60s");
            }
            thread::sleep(Duration::from_millis(300));
        }
        self.kubectl(&["create", "namespace", NAMESPACE], None)?;

        util::step("building and starting rollouts-controller");
        let bin = build_controller()?;
        self.start_controller(&bin)?;

        util::step("deploying version 1: a Service and a Rollout of 5 pods");
        let manifest = format!("{}\n---\n{}", service(), rollout("demo/web:1.0"));
        self.kubectl(&["-n", NAMESPACE, "apply", "-f", "-"], Some(&manifest))?;
        let v1 = self.wait("version 1 to be deployed", |ro, _| {
            healthy(ro).then(|| ro["status"]["stableRS"].as_str().unwrap_or("").to_string())
        })?;
        let sets = self.replica_sets()?;
        println!(
            "    version 1 runs: ReplicaSet {NAME}-{v1} with {} pods; the Service selects it.\n",
            sets.get(&v1).map_or(0, |s| s.0)
        );

        util::step(
            "changing the image to demo/web:2.0 (what `kubectl argo rollouts set image` does)",
        );
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "demo/web:2.0"}]}}}});
        self.kubectl(
            &[
                "-n",
                NAMESPACE,
                "patch",
                "rollout",
                NAME,
                "--type=merge",
                "-p",
                &patch.to_string(),
            ],
            None,
        )?;
        self.narrate(&v1)
    }

    fn start_controller(&mut self, bin: &Path) -> Result<()> {
        let metrics = free_port()?;
        let health = free_port()?;
        let log = self.dir.join("rollouts-controller.log");
        let file = fs::File::create(&log)?;
        let child = Command::new(bin)
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg("--namespaced")
            .arg(format!("--namespace={NAMESPACE}"))
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
        println!(
            "    rollouts-controller runs (pid {}); its log: {}\n    metrics: http://127.0.0.1:{metrics}/metrics\n",
            child.id(),
            log.display()
        );
        self.controller = Some((child, log));
        Ok(())
    }

    /// Polls the Rollout until `done` returns a value.
    fn wait<T>(
        &mut self,
        what: &str,
        mut done: impl FnMut(&Value, &BTreeMap<String, (i64, i64)>) -> Option<T>,
    ) -> Result<T> {
        let start = Instant::now();
        loop {
            self.check_controller()?;
            let ro = self.json(&["-n", NAMESPACE, "get", "rollout", NAME])?;
            let sets = self.replica_sets()?;
            if let Some(v) = done(&ro, &sets) {
                return Ok(v);
            }
            if start.elapsed() > TIMEOUT {
                bail!("timed out waiting for {what}: status {}", ro["status"]);
            }
            thread::sleep(Duration::from_millis(500));
        }
    }

    fn check_controller(&mut self) -> Result<()> {
        if let Some((child, _)) = self.controller.as_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!("rollouts-controller exited ({status})");
        }
        Ok(())
    }

    /// `hash -> (spec replicas, available)` of the Rollout's ReplicaSets.
    fn replica_sets(&self) -> Result<BTreeMap<String, (i64, i64)>> {
        let list = self.json(&[
            "-n",
            NAMESPACE,
            "get",
            "replicasets",
            "-l",
            "rollouts-pod-template-hash",
        ])?;
        Ok(list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|rs| {
                (
                    rs["metadata"]["labels"]["rollouts-pod-template-hash"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    (
                        rs["spec"]["replicas"].as_i64().unwrap_or(0),
                        rs["status"]["availableReplicas"].as_i64().unwrap_or(0),
                    ),
                )
            })
            .collect())
    }

    /// Prints a line whenever the step, the phase or the pods change; promotes at the
    /// indefinite pause; returns when version 2 is the stable one.
    fn narrate(&mut self, v1: &str) -> Result<()> {
        let steps = steps();
        let mut last = String::new();
        let mut promoted = false;
        let mut paused_since: Option<Instant> = None;
        let start = Instant::now();
        loop {
            self.check_controller()?;
            let ro = self.json(&["-n", NAMESPACE, "get", "rollout", NAME])?;
            let sets = self.replica_sets()?;
            let s = &ro["status"];
            let v2 = s["currentPodHash"].as_str().unwrap_or("").to_string();
            let index = s["currentStepIndex"].as_i64().unwrap_or(0);
            let phase = s["phase"].as_str().unwrap_or("");
            let (stable_pods, _) = sets.get(v1).copied().unwrap_or((0, 0));
            let (canary_pods, canary_ready) = if v2 == v1 {
                (0, 0)
            } else {
                sets.get(&v2).copied().unwrap_or((0, 0))
            };
            let generation = ro["metadata"]["generation"]
                .as_i64()
                .unwrap_or(0)
                .to_string();
            let observed = s["observedGeneration"] == generation.as_str();
            let line = describe(&steps, index, phase, stable_pods, canary_pods, canary_ready);
            if observed && v2 != v1 && line != last {
                println!("{line}");
                last = line;
            }
            if v2 != v1 && healthy(&ro) && s["stableRS"] == v2.as_str() {
                return self.finish(v1, &v2);
            }
            let indefinite = steps.get(index as usize).is_some_and(|s| s.1.is_none());
            if phase == "Paused" && indefinite && !promoted {
                let since = *paused_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_secs(3) {
                    println!(
                        "\n    This pause has no duration: the rollout waits for a person to look at the\n    canary and decide. We promote it (what `kubectl argo rollouts promote web` does:\n    it clears status.pauseConditions).\n"
                    );
                    self.kubectl(
                        &[
                            "-n",
                            NAMESPACE,
                            "patch",
                            "rollout",
                            NAME,
                            "--subresource=status",
                            "--type=merge",
                            "-p",
                            r#"{"status":{"pauseConditions":null}}"#,
                        ],
                        None,
                    )?;
                    promoted = true;
                }
            }
            if start.elapsed() > TIMEOUT {
                bail!("timed out waiting for version 2 to become stable: status {s}");
            }
            thread::sleep(Duration::from_millis(500));
        }
    }

    fn finish(&mut self, v1: &str, v2: &str) -> Result<()> {
        let sets = self.replica_sets()?;
        let svc = self.json(&["-n", NAMESPACE, "get", "service", NAME])?;
        println!(
            "\nDone: the rollout is Healthy on version 2.\n    ReplicaSet {NAME}-{v2}: {} pods (the new stable version)\n    ReplicaSet {NAME}-{v1}: {} pods (kept, scaled to zero, for a rollback)\n    The Service selects rollouts-pod-template-hash={}",
            sets.get(v2).map_or(0, |s| s.0),
            sets.get(v1).map_or(0, |s| s.0),
            svc["spec"]["selector"]["rollouts-pod-template-hash"]
                .as_str()
                .unwrap_or("?"),
        );
        let events = self.kubectl(
            &[
                "-n",
                NAMESPACE,
                "get",
                "events",
                "--field-selector=involvedObject.kind=Rollout",
                "--sort-by=.metadata.name",
                "-o",
                "custom-columns=REASON:.reason,COUNT:.count,MESSAGE:.message",
            ],
            None,
        )?;
        println!(
            "\nThe Events the controller recorded on the Rollout (`kubectl describe rollout web`;\nCOUNT > 1: the same event happened again later, counted as client-go counts repeats):\n{events}"
        );
        Ok(())
    }

    fn stop(&mut self) {
        if self.keep {
            println!(
                "--keep: the cluster and the controller keep running.\n    export KUBECONFIG={}\n    stop them with: cargo xtask cluster down --dir {} (and kill the controller)",
                self.kubeconfig.display(),
                self.dir.display()
            );
            return;
        }
        if let Some((mut child, _)) = self.controller.take() {
            util::step("stopping rollouts-controller");
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Err(err) = cluster::down(&self.dir) {
            eprintln!("stopping the cluster failed: {err:#}");
        }
    }
}

/// The canary steps: (description, pause seconds if a timed pause; `None` = indefinite pause;
/// weights have `Some(0)`).
fn steps() -> Vec<(String, Option<u32>)> {
    vec![
        ("setWeight: 20".into(), Some(0)),
        ("pause (until promoted)".into(), None),
        ("setWeight: 40".into(), Some(0)),
        ("pause: 10s".into(), Some(10)),
        ("setWeight: 60".into(), Some(0)),
        ("pause: 10s".into(), Some(10)),
        ("setWeight: 80".into(), Some(0)),
        ("pause: 10s".into(), Some(10)),
    ]
}

fn describe(
    steps: &[(String, Option<u32>)],
    index: i64,
    phase: &str,
    stable: i64,
    canary: i64,
    canary_ready: i64,
) -> String {
    let total = (stable + canary).max(1);
    let weight = canary * 100 / total;
    let bar: String = (0..stable)
        .map(|_| 'S')
        .chain((0..canary).map(|_| 'C'))
        .collect();
    let pods = |n: i64| {
        if n == 1 {
            "1 pod ".to_string()
        } else {
            format!("{n} pods")
        }
    };
    let (step, note) = match steps.get(index as usize) {
        Some((s, pause)) => {
            let note = match (phase, pause) {
                ("Paused", None) => "  <- waits until someone promotes it",
                ("Paused", Some(secs)) if *secs > 0 => {
                    "  <- continues by itself when the pause ends"
                }
                _ => "",
            };
            (format!("step {}/{} ({s})", index + 1, steps.len()), note)
        }
        None => (format!("all {} steps done", steps.len()), ""),
    };
    format!(
        "    {step:<34} {phase:<12} [{bar:<6}] stable {}, canary {} ({canary_ready} ready): {weight:>3}% canary{note}",
        pods(stable),
        pods(canary)
    )
}

fn healthy(ro: &Value) -> bool {
    let generation = ro["metadata"]["generation"]
        .as_i64()
        .unwrap_or(0)
        .to_string();
    ro["status"]["observedGeneration"] == generation.as_str()
        && ro["status"]["phase"] == "Healthy"
        && ro["status"]["stableRS"] == ro["status"]["currentPodHash"]
        && !ro["status"]["stableRS"].is_null()
}

fn service() -> String {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": NAME},
        "spec": {"selector": {"app": NAME}, "ports": [{"port": 80, "targetPort": 8080}]}
    })
    .to_string()
}

fn rollout(image: &str) -> String {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": NAME},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": NAME}},
            "template": {
                "metadata": {"labels": {"app": NAME}},
                "spec": {"containers": [{"name": "web", "image": image}]}
            },
            "strategy": {"canary": {
                "stableService": NAME,
                "steps": [
                    {"setWeight": 20}, {"pause": {}},
                    {"setWeight": 40}, {"pause": {"duration": 10}},
                    {"setWeight": 60}, {"pause": {"duration": 10}},
                    {"setWeight": 80}, {"pause": {"duration": 10}}
                ]
            }}
        }
    })
    .to_string()
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// `cargo build -p rollouts-controller`; returns the executable.
fn build_controller() -> Result<PathBuf> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .current_dir(project_root())
        .args([
            "build",
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
        bail!("cargo build -p rollouts-controller failed ({})", out.status);
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_described_for_a_newcomer() {
        let line = describe(&steps(), 0, "Progressing", 4, 1, 1);
        assert!(line.contains("step 1/8 (setWeight: 20)"), "{line}");
        assert!(line.contains("[SSSSC ]"), "{line}");
        assert!(line.contains("stable 4 pods, canary 1 pod "), "{line}");
        assert!(line.contains(" 20% canary"), "{line}");
        let paused = describe(&steps(), 1, "Paused", 4, 1, 1);
        assert!(
            paused.contains("waits until someone promotes it"),
            "{paused}"
        );
        let timed = describe(&steps(), 3, "Paused", 3, 2, 2);
        assert!(timed.contains("continues by itself"), "{timed}");
        let done = describe(&steps(), 8, "Healthy", 0, 5, 5);
        assert!(done.contains("all 8 steps done"), "{done}");
        assert!(done.contains("100% canary"), "{done}");
    }

    #[test]
    fn the_manifests_are_what_the_demo_explains() {
        let ro: Value = serde_json::from_str(&rollout("x")).unwrap();
        assert_eq!(ro["spec"]["replicas"], 5);
        let s = ro["spec"]["strategy"]["canary"]["steps"]
            .as_array()
            .unwrap();
        assert_eq!(s.len(), steps().len());
        assert_eq!(s[1], json!({"pause": {}}));
        assert_eq!(s[3]["pause"]["duration"], 10);
    }
}
