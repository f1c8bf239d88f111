//! The `kubectl-argo-rollouts` binary against real Rollouts driven by our controller: each
//! command is run as a process (as kubectl would run the plugin) and the objects it changed
//! are read back; `status` exit codes on completion, abort and timeout; errors as one line;
//! `create`, `terminate`, `lint`; and `get rollout --watch` in a real terminal (tmux).
//!
//! The binary is built once per run (`cargo build -p kubectl-argo-rollouts`) unless
//! `KUBECTL_ARGO_ROLLOUTS_BIN` names one.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail, ensure};
use e2e::{Test, TestContext, rollouts as ro, wait};
use kube::{
    Api,
    api::{ApiResource, DynamicObject, GroupVersionKind, PostParams},
};
use serde_json::{Value, json};

use crate::canary::{healthy_canary, with_log};

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(set_image_promote_abort_retry_full),
        e2e::test!(undo_pause_restart),
        e2e::test!(status_watch_exits_0_when_healthy),
        e2e::test!(status_watch_exits_1_on_abort),
        e2e::test!(status_timeout_and_errors),
        e2e::test!(create_terminate_retry_and_lint),
        e2e::test!(get_rollout_watch_in_a_terminal),
        e2e::test!(plan_and_why_follow_a_live_rollout),
    ]
}

const T: Duration = Duration::from_secs(60);

/// Environment variable naming a prebuilt plugin binary.
const BIN_ENV: &str = "KUBECTL_ARGO_ROLLOUTS_BIN";

static BINARY: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();

fn binary() -> Result<PathBuf> {
    BINARY
        .get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!("{e}"))
}

fn build() -> Result<PathBuf> {
    if let Some(path) = env::var_os(BIN_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        ensure!(path.is_file(), "{BIN_ENV}={} is not a file", path.display());
        return Ok(path);
    }
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("no workspace root")?
        .join("Cargo.toml");
    eprintln!("e2e: building kubectl-argo-rollouts");
    let out = Command::new(&cargo)
        .args([
            "build",
            "--quiet",
            "--message-format=json",
            "--manifest-path",
        ])
        .arg(&manifest)
        .args([
            "-p",
            "kubectl-argo-rollouts",
            "--bin",
            "kubectl-argo-rollouts",
        ])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {cargo} build"))?;
    ensure!(
        out.status.success(),
        "cargo build -p kubectl-argo-rollouts failed"
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["target"]["name"] == "kubectl-argo-rollouts"
            && let Some(exe) = msg["executable"].as_str()
        {
            return Ok(PathBuf::from(exe));
        }
    }
    bail!("cargo build did not report the kubectl-argo-rollouts executable")
}

/// What a plugin run printed and how it ended.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Result<Run> {
        ensure!(self.code == 0, "exit code {}: {self:?}", self.code);
        Ok(self)
    }
}

/// Runs the plugin with the test's kubeconfig and namespace (on a blocking thread).
async fn plugin(ctx: &TestContext, args: &[&str]) -> Result<Run> {
    let bin = binary()?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--kubeconfig={}", ctx.kubeconfig().display()))
        .arg(format!("--namespace={}", ctx.namespace))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    let shown = format!("kubectl-argo-rollouts {}", args.join(" "));
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await?
        .with_context(|| format!("running {shown}"))?;
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!("e2e: $ {shown} -> {}", run.code);
    Ok(run)
}

fn image(r: &Value) -> &str {
    r["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or("")
}

async fn new_hash(ctx: &TestContext, old: &[&str]) -> Result<String> {
    wait::until(T, "a new ReplicaSet", || async {
        let sets = ro::replica_sets(ctx).await?;
        Ok::<_, anyhow::Error>(
            sets.into_iter()
                .find(|r| !old.contains(&r.hash.as_str()))
                .map(|r| r.hash),
        )
    })
    .await
}

async fn set_image_promote_abort_retry_full(ctx: TestContext) -> Result<()> {
    let steps = json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]);
    let (ctl, v1) = healthy_canary(&ctx, 5, steps).await?;
    with_log(&ctl, async {
        // set image: the template changes, revision 2 starts and pauses at step 1.
        let run = plugin(&ctx, &["set", "image", "web", "app=registry.invalid/web:2"])
            .await?
            .ok()?;
        ensure!(run.stdout == "rollout \"web\" image updated\n", "{run:?}");
        ensure!(image(&ro::get(&ctx, "web").await?) == "registry.invalid/web:2");
        let v2 = new_hash(&ctx, &[&v1]).await?;
        ro::wait_for(&ctx, "web", T, "the pause at step 1", |r| {
            ro::paused_at(r, 1)
        })
        .await?;
        ro::wait_sizes(&ctx, &[(&v1, 4), (&v2, 1)], T).await?;

        // get rollout and list rollouts show it.
        let run = plugin(&ctx, &["get", "rollout", "web", "--no-color"])
            .await?
            .ok()?;
        for want in [
            "Name:            web",
            "Status:          ॥ Paused",
            "Message:         CanaryPauseStep",
            "  Step:          1/4",
            "  SetWeight:     20",
            "  ActualWeight:  20",
            "registry.invalid/web:1 (stable)",
            "registry.invalid/web:2 (canary)",
            "# revision:2",
            "# revision:1",
        ] {
            ensure!(
                run.stdout.contains(want),
                "{want:?} not in:\n{}",
                run.stdout
            );
        }
        for (hash, tag) in [(&v2, "canary"), (&v1, "stable")] {
            let line = run
                .stdout
                .lines()
                .find(|l| l.contains(&format!("⧉ web-{hash} ")))
                .with_context(|| format!("no ReplicaSet line for {hash}:\n{}", run.stdout))?;
            // `│  └──⧉ web-<hash>   ReplicaSet  ✔ Healthy  <age>  <tag>`
            let cols: Vec<&str> = line.split_whitespace().collect();
            let at = cols
                .iter()
                .position(|c| *c == format!("web-{hash}"))
                .context("no name column")?;
            ensure!(
                cols[at + 1..at + 4] == ["ReplicaSet", "✔", "Healthy"] && cols.last() == Some(&tag),
                "{line:?}"
            );
        }
        ensure!(
            !run.stdout.contains('\u{1b}'),
            "colours with NO_COLOR:\n{}",
            run.stdout
        );
        let run = plugin(&ctx, &["list", "rollouts"]).await?.ok()?;
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with("web "))
            .context("no line for web")?;
        let cols: Vec<&str> = line.split_whitespace().collect();
        ensure!(
            cols == ["web", "Canary", "Paused", "1/4", "20", "5/5", "5", "1", "5"],
            "{line:?}"
        );
        let run = plugin(&ctx, &["list", "rollouts", "--name", "nope"])
            .await?
            .ok()?;
        ensure!(run.stderr.contains("No resources found."), "{run:?}");

        // promote: the pause condition goes, step 3 is the next pause.
        let run = plugin(&ctx, &["promote", "web"]).await?.ok()?;
        ensure!(run.stdout == "rollout 'web' promoted\n", "{run:?}");
        ro::wait_for(&ctx, "web", T, "the pause at step 3", |r| {
            ro::paused_at(r, 3)
        })
        .await?;
        ro::wait_sizes(&ctx, &[(&v1, 2), (&v2, 3)], T).await?;

        // abort: status.abort, Degraded, back to the stable ReplicaSet.
        let run = plugin(&ctx, &["abort", "web"]).await?.ok()?;
        ensure!(run.stdout == "rollout 'web' aborted\n", "{run:?}");
        let r = ro::get(&ctx, "web").await?;
        ensure!(r["status"]["abort"] == true, "{}", ro::summary(&r));
        ro::wait_for(&ctx, "web", T, "Degraded after the abort", |r| {
            ro::phase(r) == "Degraded"
        })
        .await?;
        ro::wait_sizes(&ctx, &[(&v1, 5)], T).await?;
        let run = plugin(&ctx, &["status", "web", "--watch=false"]).await?;
        ensure!(run.code == 1 && run.stdout == "Degraded\n", "{run:?}");
        ensure!(
            run.stderr.starts_with(
                "error: The rollout is in a degraded state with message: RolloutAborted: "
            ) && run.stderr.lines().count() == 1,
            "{run:?}"
        );

        // retry: the rollout starts over and pauses at step 1 again.
        let run = plugin(&ctx, &["retry", "rollout", "web"]).await?.ok()?;
        ensure!(run.stdout == "rollout 'web' retried\n", "{run:?}");
        ensure!(ro::get(&ctx, "web").await?["status"]["abort"] == false);
        ro::wait_for(&ctx, "web", T, "the pause at step 1 after the retry", |r| {
            ro::paused_at(r, 1) && r["status"]["abort"] != true
        })
        .await?;

        // promote --full: every step skipped, revision 2 becomes stable.
        let run = plugin(&ctx, &["promote", "web", "--full"]).await?.ok()?;
        ensure!(run.stdout == "rollout 'web' fully promoted\n", "{run:?}");
        ro::wait_for(&ctx, "web", T, "Healthy on revision 2", |r| {
            ro::healthy(r) && r["status"]["stableRS"] == v2.as_str()
        })
        .await?;
        ro::wait_sizes(&ctx, &[(&v2, 5)], T).await?;
        let run = plugin(&ctx, &["status", "web", "--watch=false"])
            .await?
            .ok()?;
        ensure!(run.stdout == "Healthy\n", "{run:?}");
        // --full on a fully promoted rollout changes nothing.
        let before = ro::get(&ctx, "web").await?["metadata"]["resourceVersion"].clone();
        plugin(&ctx, &["promote", "web", "--full"]).await?.ok()?;
        let after = ro::get(&ctx, "web").await?["metadata"]["resourceVersion"].clone();
        ensure!(
            before == after,
            "promote --full patched a fully promoted rollout"
        );
        Ok(())
    })
    .await
}

async fn undo_pause_restart(ctx: TestContext) -> Result<()> {
    let (ctl, v1) = healthy_canary(
        &ctx,
        3,
        json!([{"setWeight": 34}, {"pause": {"duration": 1}}]),
    )
    .await?;
    with_log(&ctl, async {
        plugin(&ctx, &["set", "image", "web", "*=registry.invalid/web:2"])
            .await?
            .ok()?;
        let v2 = new_hash(&ctx, &[&v1]).await?;
        ro::wait_for(&ctx, "web", T, "Healthy on revision 2", |r| {
            ro::healthy(r) && r["status"]["stableRS"] == v2.as_str()
        })
        .await?;
        // undo: back to revision 1's template (a new revision 3 with v1's hash).
        let run = plugin(&ctx, &["undo", "web"]).await?.ok()?;
        ensure!(run.stdout == "rollout 'web' undo\n", "{run:?}");
        let r = ro::get(&ctx, "web").await?;
        ensure!(image(&r) == "registry.invalid/web:1", "{}", image(&r));
        ensure!(
            r["spec"]["template"]["metadata"]["labels"]
                .get(ro::HASH)
                .is_none(),
            "the hash label was copied into the template"
        );
        ro::wait_for(&ctx, "web", T, "Healthy on revision 1's template", |r| {
            ro::healthy(r) && r["status"]["stableRS"] == v1.as_str()
        })
        .await?;
        let sets = ro::replica_sets(&ctx).await?;
        ensure!(
            sets.iter().any(|s| s.hash == v1 && s.revision == 3),
            "revision 1's ReplicaSet was not reused as revision 3: {sets:?}"
        );
        // undo again to the same template: nothing to do.
        let run = plugin(&ctx, &["undo", "web", "--to-revision=3"])
            .await?
            .ok()?;
        ensure!(
            run.stdout == "skipped rollback (current template already matches revision 3)",
            "{run:?}"
        );
        let run = plugin(&ctx, &["undo", "web", "--to-revision=9"]).await?;
        ensure!(
            run.code == 1
                && run.stderr == "error: unable to find specified revision 9 in history\n",
            "{run:?}"
        );
        // undo --to-revision 2.
        plugin(&ctx, &["undo", "web", "--to-revision", "2"])
            .await?
            .ok()?;
        ensure!(image(&ro::get(&ctx, "web").await?) == "registry.invalid/web:2");
        ro::wait_for(&ctx, "web", T, "Healthy on revision 2's template", |r| {
            ro::healthy(r) && r["status"]["stableRS"] == v2.as_str()
        })
        .await?;

        // pause: spec.paused; the phase follows.
        let run = plugin(&ctx, &["pause", "web"]).await?.ok()?;
        ensure!(run.stdout == "rollout 'web' paused\n", "{run:?}");
        let r = ro::wait_for(&ctx, "web", T, "Paused", |r| {
            ro::observed(r) && ro::phase(r) == "Paused"
        })
        .await?;
        ensure!(r["spec"]["paused"] == true);
        ensure!(
            r["status"]["message"] == "manually paused",
            "{}",
            ro::summary(&r)
        );
        // promote unpauses a paused canary (spec.paused=false).
        plugin(&ctx, &["promote", "web"]).await?.ok()?;
        ensure!(ro::get(&ctx, "web").await?["spec"]["paused"] == false);
        ro::wait_for(&ctx, "web", T, "Healthy after the promotion", ro::healthy).await?;

        // restart: spec.restartAt, then the controller evicts the pods and records it. Pods
        // created in the same second as restartAt are not older than it (both are stored in
        // whole seconds, and Argo restarts only older pods), so let a second pass first.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let before = ro::live_pods(&ctx, "web").await?;
        let started = jiff::Timestamp::now();
        let run = plugin(&ctx, &["restart", "web"]).await?.ok()?;
        ensure!(run.stdout == "rollout 'web' restarts in 0s\n", "{run:?}");
        let r = ro::get(&ctx, "web").await?;
        let at: jiff::Timestamp = r["spec"]["restartAt"]
            .as_str()
            .context("no spec.restartAt")?
            .parse()?;
        ensure!(
            at.duration_since(started).abs() < jiff::SignedDuration::from_secs(5),
            "restartAt {at} is not now ({started})"
        );
        ro::wait_for(&ctx, "web", T, "the restart to complete", |r| {
            r["status"]["restartedAt"] == r["spec"]["restartAt"]
        })
        .await?;
        let after = ro::live_pods(&ctx, "web").await?;
        let old: Vec<_> = before
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        ensure!(
            after
                .iter()
                .all(|p| !old.contains(p.metadata.name.as_ref().unwrap_or(&String::new()))),
            "pods were not replaced"
        );
        let run = plugin(&ctx, &["restart", "web", "--in", "1h"])
            .await?
            .ok()?;
        ensure!(run.stdout == "rollout 'web' restarts in 1h\n", "{run:?}");
        let at: jiff::Timestamp = ro::get(&ctx, "web").await?["spec"]["restartAt"]
            .as_str()
            .context("no spec.restartAt")?
            .parse()?;
        ensure!(at > started + jiff::SignedDuration::from_mins(59), "{at}");
        let run = plugin(&ctx, &["restart", "web", "--in", "soon"]).await?;
        ensure!(run.code == 2 && run.stderr.lines().count() == 1, "{run:?}");
        Ok(())
    })
    .await
}

/// Runs `status` on a blocking thread while the test goes on.
fn status_in_background(ctx: &TestContext, args: &[&str]) -> tokio::task::JoinHandle<Result<Run>> {
    let ctx = ctx.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::spawn(async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        plugin(&ctx, &refs).await
    })
}

async fn status_watch_exits_0_when_healthy(ctx: TestContext) -> Result<()> {
    let (ctl, v1) = healthy_canary(
        &ctx,
        2,
        json!([{"setWeight": 50}, {"pause": {"duration": 3}}]),
    )
    .await?;
    with_log(&ctl, async {
        plugin(&ctx, &["set", "image", "web", "app=registry.invalid/web:2"])
            .await?
            .ok()?;
        let started = Instant::now();
        let run = plugin(&ctx, &["status", "web", "--timeout", "90s"]).await?;
        let took = started.elapsed();
        ensure!(run.code == 0, "{run:?}");
        let lines: Vec<&str> = run.stdout.lines().collect();
        ensure!(lines.last() == Some(&"Healthy"), "{run:?}");
        ensure!(
            lines
                .iter()
                .any(|l| l.starts_with("Progressing - ") || l.starts_with("Paused - ")),
            "{run:?}"
        );
        // Each line is printed once per change.
        for w in lines.windows(2) {
            ensure!(w[0] != w[1], "repeated line: {run:?}");
        }
        ensure!(
            took >= Duration::from_secs(2),
            "status returned after {took:?}: {run:?}"
        );
        let r = ro::get(&ctx, "web").await?;
        ensure!(
            ro::healthy(&r) && r["status"]["stableRS"] != v1.as_str(),
            "{}",
            ro::summary(&r)
        );
        eprintln!(
            "e2e-measure: status --watch followed a 2-step canary to Healthy in {} ms",
            took.as_millis()
        );
        Ok(())
    })
    .await
}

async fn status_watch_exits_1_on_abort(ctx: TestContext) -> Result<()> {
    let (ctl, _v1) = healthy_canary(&ctx, 2, json!([{"setWeight": 50}, {"pause": {}}])).await?;
    with_log(&ctl, async {
        plugin(&ctx, &["set", "image", "web", "app=registry.invalid/web:2"])
            .await?
            .ok()?;
        let watching = status_in_background(&ctx, &["status", "web"]);
        ro::wait_for(&ctx, "web", T, "the pause at step 1", |r| {
            ro::paused_at(r, 1)
        })
        .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        ensure!(
            !watching.is_finished(),
            "status returned while the rollout was paused"
        );
        plugin(&ctx, &["abort", "web"]).await?.ok()?;
        let run = tokio::time::timeout(T, watching)
            .await
            .context("status did not return after the abort")???;
        ensure!(run.code == 1, "{run:?}");
        ensure!(
            run.stdout.lines().any(|l| l == "Paused - CanaryPauseStep"),
            "{run:?}"
        );
        ensure!(
            run.stdout.lines().last().is_some_and(|l| l
                .starts_with("Degraded - RolloutAborted: Rollout aborted update to revision 2")),
            "{run:?}"
        );
        ensure!(
            run.stderr.starts_with(
                "error: The rollout is in a degraded state with message: RolloutAborted: "
            ),
            "{run:?}"
        );
        Ok(())
    })
    .await
}

async fn status_timeout_and_errors(ctx: TestContext) -> Result<()> {
    let (ctl, _v1) = healthy_canary(&ctx, 1, json!([{"pause": {}}])).await?;
    with_log(&ctl, async {
        plugin(&ctx, &["set", "image", "web", "app=registry.invalid/web:2"]).await?.ok()?;
        ro::wait_for(&ctx, "web", T, "the pause at step 0", |r| ro::paused_at(r, 0)).await?;
        let started = Instant::now();
        let run = plugin(&ctx, &["status", "web", "--timeout", "2s"]).await?;
        ensure!(run.code == 3, "{run:?}");
        ensure!(run.stdout == "Paused - CanaryPauseStep\n", "{run:?}");
        ensure!(run.stderr == "error: Rollout status watch exceeded timeout\n", "{run:?}");
        ensure!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
        let run = plugin(&ctx, &["status", "web", "--watch=false"]).await?.ok()?;
        ensure!(run.stdout == "Paused - CanaryPauseStep\n", "{run:?}");

        // get rollout --watch ends after --timeout-seconds when nothing finishes; each frame
        // clears the screen first.
        let started = Instant::now();
        let run = plugin(&ctx, &["get", "rollout", "web", "-w", "--timeout-seconds", "3"])
            .await?
            .ok()?;
        let took = started.elapsed();
        ensure!(
            took >= Duration::from_millis(2500) && took < Duration::from_secs(20),
            "get --watch --timeout-seconds 3 took {took:?}"
        );
        ensure!(run.stdout.starts_with("\x1b[H\x1b[2J"), "{run:?}");
        ensure!(run.stdout.contains("Status:          ॥ Paused"), "{run:?}");

        // Errors: one line, what is wrong and what to do, exit code 4.
        let run = plugin(&ctx, &["get", "rollout", "nope"]).await?;
        ensure!(run.code == 4, "{run:?}");
        ensure!(
            run.stderr
                == format!(
                    "error: rollout \"nope\" not found in namespace \"{}\" (see `kubectl argo rollouts list rollouts`)\n",
                    ctx.namespace
                ),
            "{run:?}"
        );
        for args in [&["promote", "nope"][..], &["abort", "nope"], &["set", "image", "nope", "a=b"]] {
            let run = plugin(&ctx, args).await?;
            ensure!(run.code == 4 && run.stderr.lines().count() == 1 && run.stderr.contains("not found"), "{args:?}: {run:?}");
        }
        let run = plugin(&ctx, &["set", "image", "web", "nope=x"]).await?;
        ensure!(run.code == 1 && run.stderr == "error: unable to find container named \"nope\"\n", "{run:?}");

        // No cluster there.
        let port = e2e::controller::free_port()?;
        let run = plugin(&ctx, &["get", "rollout", "web", &format!("--server=https://127.0.0.1:{port}"), "--request-timeout=5s"]).await?;
        ensure!(run.code == 4, "{run:?}");
        ensure!(
            run.stderr.starts_with(&format!("error: cannot reach the Kubernetes API server at https://127.0.0.1:{port}/"))
                && run.stderr.lines().count() == 1,
            "{run:?}"
        );
        // No kubeconfig at that path.
        let run = plugin(&ctx, &["list", "rollouts", "--kubeconfig=/nonexistent/config"]).await?;
        ensure!(run.code == 4 && run.stderr.starts_with("error: cannot load the Kubernetes configuration"), "{run:?}");

        // No permission: a service account without any role.
        let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(ctx.client.clone(), &ctx.namespace);
        sas.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "nobody"}}))?,
        )
        .await?;
        let request: k8s_openapi::api::authentication::v1::TokenRequest =
            serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 600}}))?;
        let token = sas
            .create_token_request("nobody", &PostParams::default(), &request)
            .await?
            .status
            .and_then(|s| s.token)
            .context("no token")?;
        let run = plugin(&ctx, &["abort", "web", &format!("--token={token}")]).await?;
        ensure!(run.code == 4, "{run:?}");
        ensure!(
            run.stderr.starts_with("error: permission denied: ")
                && run.stderr.contains("system:serviceaccount:")
                && run.stderr.trim_end().ends_with("(ask a cluster administrator for access)")
                && run.stderr.lines().count() == 1,
            "{run:?}"
        );
        // Usage errors.
        let run = plugin(&ctx, &["promote"]).await?;
        ensure!(run.code == 2, "{run:?}");
        ensure!(ro::get(&ctx, "web").await?["status"]["abort"].is_null(), "the denied abort went through");

        // list rollouts --watch prints a line whenever the rollout's line changes.
        let mut child = Command::new(binary()?)
            .arg(format!("--kubeconfig={}", ctx.kubeconfig().display()))
            .arg(format!("--namespace={}", ctx.namespace))
            .args(["list", "rollouts", "--watch", "--timestamps"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let rx = std::sync::Mutex::new(rx);
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let next_line = |what: &str, want: &dyn Fn(&str) -> bool| -> Result<String> {
            let deadline = Instant::now() + T;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let got = rx
                    .lock()
                    .map_err(|_| anyhow!("poisoned"))?
                    .recv_timeout(left);
                match got {
                    Ok(l) if want(&l) => return Ok(l),
                    Ok(_) => {}
                    Err(_) => bail!("list rollouts --watch printed no {what}"),
                }
            }
        };
        let watched = async {
            let header = tokio::task::block_in_place(|| {
                next_line("header", &|l| l.starts_with("TIMESTAMP"))
            })?;
            ensure!(header.split_whitespace().nth(2) == Some("STRATEGY"), "{header}");
            tokio::task::block_in_place(|| {
                next_line("paused line", &|l| l.contains(" web ") && l.contains("Paused"))
            })?;
            plugin(&ctx, &["promote", "web"]).await?.ok()?;
            let line = tokio::task::block_in_place(|| {
                next_line("Healthy line", &|l| l.contains(" web ") && l.contains("Healthy"))
            })?;
            let cols: Vec<&str> = line.split_whitespace().collect();
            ensure!(cols.len() == 10 && cols[0].ends_with('Z') && cols[1] == "web", "{line:?}");
            Ok(())
        }
        .await;
        let _ = child.kill();
        let _ = child.wait();
        watched?;
        Ok(())
    })
    .await
}

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", kind),
        plural,
    )
}

async fn create_terminate_retry_and_lint(ctx: TestContext) -> Result<()> {
    ctx.install_crds().await?;
    let dir = env::temp_dir().join(format!("kar-e2e-{}", ctx.namespace));
    fs::create_dir_all(&dir)?;
    let template = dir.join("template.yaml");
    fs::write(
        &template,
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata:\n  name: smoke\n  labels: {team: shop}\nspec:\n  args:\n  - name: url\n  - name: attempts\n    value: \"3\"\n  metrics:\n  - name: up\n    count: 1\n    successCondition: result == true\n    provider:\n      web:\n        url: \"{{args.url}}\"\n",
    )?;
    let run = plugin(
        &ctx,
        &["create", "-f", template.to_str().unwrap_or_default()],
    )
    .await?
    .ok()?;
    ensure!(
        run.stdout == "analysistemplate.argoproj.io/smoke created\n",
        "{run:?}"
    );

    // An AnalysisRun from the template in the cluster, with an argument.
    let run = plugin(
        &ctx,
        &[
            "create",
            "analysisrun",
            "--from",
            "smoke",
            "-a",
            "url=http://web/health",
            "--instance-id",
            "blue",
        ],
    )
    .await?
    .ok()?;
    let name = run
        .stdout
        .strip_prefix("analysisrun.argoproj.io/")
        .and_then(|s| s.strip_suffix(" created\n"))
        .with_context(|| format!("{run:?}"))?
        .to_string();
    ensure!(name.starts_with("smoke-"), "{name}");
    let runs: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &ctx.namespace,
        &resource("AnalysisRun", "analysisruns"),
    );
    let ar = serde_json::to_value(runs.get(&name).await?)?;
    ensure!(
        ar["spec"]["args"]
            == json!([{"name": "url", "value": "http://web/health"}, {"name": "attempts", "value": "3"}]),
        "{ar}"
    );
    ensure!(
        ar["metadata"]["labels"]["argo-rollouts.argoproj.io/controller-instance-id"] == "blue",
        "{ar}"
    );
    ensure!(ar["metadata"]["labels"]["team"] == "shop", "{ar}");
    // A missing argument is refused before anything is created.
    let run = plugin(
        &ctx,
        &[
            "create",
            "analysisrun",
            "--from-file",
            template.to_str().unwrap_or_default(),
            "--name",
            "x",
        ],
    )
    .await?;
    ensure!(
        run.code == 1 && run.stderr == "error: args.url was not resolved\n",
        "{run:?}"
    );

    // terminate analysisrun.
    let run = plugin(&ctx, &["terminate", "ar", &name]).await?.ok()?;
    ensure!(
        run.stdout == format!("analysisRun '{name}' terminated\n"),
        "{run:?}"
    );
    ensure!(serde_json::to_value(runs.get(&name).await?)?["spec"]["terminate"] == true);

    // An Experiment from a file; list, terminate and retry it.
    let exp_file = dir.join("experiment.yaml");
    fs::write(
        &exp_file,
        "apiVersion: argoproj.io/v1alpha1\nkind: Experiment\nmetadata:\n  name: trial\nspec:\n  duration: 1h\n  templates:\n  - name: a\n    replicas: 1\n    selector:\n      matchLabels: {app: trial}\n    template:\n      metadata:\n        labels: {app: trial}\n      spec:\n        containers:\n        - name: a\n          image: registry.invalid/a:1\n",
    )?;
    let run = plugin(
        &ctx,
        &["create", "-f", exp_file.to_str().unwrap_or_default()],
    )
    .await?
    .ok()?;
    ensure!(
        run.stdout == "experiment.argoproj.io/trial created\n",
        "{run:?}"
    );
    let run = plugin(&ctx, &["list", "experiments"]).await?.ok()?;
    ensure!(run.stdout.starts_with("NAME"), "{run:?}");
    ensure!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("trial ") && l.contains("60m")),
        "{run:?}"
    );
    let run = plugin(&ctx, &["get", "experiment", "trial"]).await?.ok()?;
    ensure!(
        run.stdout.contains("Σ trial") && run.stdout.contains("Experiment"),
        "{run:?}"
    );
    let exps: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &ctx.namespace,
        &resource("Experiment", "experiments"),
    );
    plugin(&ctx, &["terminate", "experiment", "trial"])
        .await?
        .ok()?;
    ensure!(serde_json::to_value(exps.get("trial").await?)?["spec"]["terminate"] == true);
    // retry experiment clears the status (set one first: no experiment controller runs here).
    let failed = json!({"status": {"phase": "Failed", "message": "x"}});
    let pp = kube::api::PatchParams::default();
    if exps
        .patch_status("trial", &pp, &kube::api::Patch::Merge(&failed))
        .await
        .is_err()
    {
        exps.patch("trial", &pp, &kube::api::Patch::Merge(&failed))
            .await?;
    }
    ensure!(serde_json::to_value(exps.get("trial").await?)?["status"]["phase"] == "Failed");
    plugin(&ctx, &["retry", "experiment", "trial"])
        .await?
        .ok()?;
    ensure!(serde_json::to_value(exps.get("trial").await?)?["status"].is_null());

    // create refuses an unknown field, naming the line; nothing is created.
    let bad = dir.join("bad.yaml");
    fs::write(
        &bad,
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata:\n  name: bad\nspec:\n  metrics:\n  - name: m\n    sucessCondition: result == true\n    provider: {web: {url: x}}\n",
    )?;
    let run = plugin(&ctx, &["create", "-f", bad.to_str().unwrap_or_default()]).await?;
    ensure!(run.code == 1, "{run:?}");
    ensure!(
        run.stderr
            .contains("bad.yaml:8: spec.metrics[0].sucessCondition: unknown field"),
        "{run:?}"
    );
    let templates: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &ctx.namespace,
        &resource("AnalysisTemplate", "analysistemplates"),
    );
    ensure!(templates.get_opt("bad").await?.is_none(), "bad was created");

    // lint: the repository's examples pass, a broken file fails with its line.
    let example = ctx.project_root().join("examples/canary-basic.yaml");
    plugin(&ctx, &["lint", "-f", example.to_str().unwrap_or_default()])
        .await?
        .ok()?;
    let run = plugin(&ctx, &["lint", "-f", bad.to_str().unwrap_or_default()]).await?;
    ensure!(
        run.code == 1 && run.stdout.contains(":8: spec.metrics[0].sucessCondition"),
        "{run:?}"
    );
    let _ = fs::remove_dir_all(&dir);
    Ok(())
}

/// tmux, installed with apt-get when missing (and allowed).
fn tmux() -> Result<&'static str> {
    let have = |name: &str| {
        Command::new(name)
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if have("tmux") {
        return Ok("tmux");
    }
    eprintln!("e2e: tmux is missing; installing it with apt-get");
    let status = Command::new("apt-get")
        .args(["install", "-y", "-q", "tmux"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    if have("tmux") {
        return Ok("tmux");
    }
    bail!(
        "tmux is needed for this test and could not be installed ({status:?}); install it (apt-get install tmux)"
    )
}

struct Tmux {
    session: String,
}

impl Tmux {
    fn capture(&self) -> Result<String> {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-J", "-t", &self.session])
            .output()?;
        ensure!(
            out.status.success(),
            "tmux capture-pane: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

async fn get_rollout_watch_in_a_terminal(ctx: TestContext) -> Result<()> {
    tmux()?;
    let (ctl, v1) = healthy_canary(&ctx, 2, json!([{"setWeight": 50}, {"pause": {}}])).await?;
    with_log(&ctl, async {
        let bin = binary()?;
        let session = format!("kar-{}", ctx.namespace);
        let cmd = format!(
            "{} get rollout web -w --kubeconfig {} -n {}; echo EXIT=$?; sleep 60",
            bin.display(),
            ctx.kubeconfig().display(),
            ctx.namespace
        );
        let status = Command::new("tmux")
            .args(["new-session", "-d", "-s", &session, "-x", "200", "-y", "60"])
            .arg(&cmd)
            .env_remove("NO_COLOR")
            .env("TERM", "xterm-256color")
            .status()?;
        ensure!(status.success(), "tmux new-session failed");
        let term = Tmux { session };
        let screen_with = |want: &'static str| {
            let term = &term;
            async move {
                wait::until(T, &format!("{want:?} on the screen"), || async {
                    let s = term.capture()?;
                    Ok::<_, anyhow::Error>(s.contains(want).then_some(s))
                })
                .await
            }
        };
        // The healthy rollout is drawn; the watch keeps going.
        let s = screen_with("Status:          ✔ Healthy").await?;
        ensure!(
            s.contains("⟳ web") && s.contains("# revision:1") && s.contains("stable"),
            "{s}"
        );
        // The screen is redrawn in place: one header, whatever happened before.
        plugin(&ctx, &["set", "image", "web", "app=registry.invalid/web:2"])
            .await?
            .ok()?;
        let s = screen_with("Status:          ॥ Paused").await?;
        ensure!(
            s.matches("Name:            web").count() == 1,
            "not redrawn in place:\n{s}"
        );
        ensure!(
            s.contains("# revision:2")
                && s.contains("canary")
                && s.contains("  Step:          1/2"),
            "{s}"
        );
        ensure!(!s.contains("EXIT="), "the watch ended while paused:\n{s}");
        let v2 = new_hash(&ctx, &[&v1]).await?;
        plugin(&ctx, &["promote", "web"]).await?.ok()?;
        // It ends by itself once the update is done, on a Healthy frame.
        let s = screen_with("EXIT=0").await?;
        ensure!(s.contains("Status:          ✔ Healthy"), "{s}");
        ensure!(
            s.contains(&format!("web-{v2}")) && s.contains("  Step:          2/2"),
            "{s}"
        );
        ensure!(s.matches("Name:            web").count() == 1, "{s}");
        Ok(())
    })
    .await
}

/// `why` on a Healthy, a paused and a timed-pause rollout, in text and JSON; `plan --from live`
/// against the live Rollout before the update and while it is paused.
async fn plan_and_why_follow_a_live_rollout(ctx: TestContext) -> Result<()> {
    let steps =
        json!([{"setWeight": 34}, {"pause": {}}, {"setWeight": 67}, {"pause": {"duration": 2}}]);
    let (ctl, v1) = healthy_canary(&ctx, 3, steps.clone()).await?;
    let dir = env::temp_dir().join(format!("kar-e2e-{}", ctx.namespace));
    fs::create_dir_all(&dir)?;
    let result = with_log(&ctl, async {
        // Healthy: nothing holds it, exit code 0.
        let run = plugin(&ctx, &["why", "web", "--no-color"]).await?.ok()?;
        for want in [
            &format!(
                "Rollout:        web in {} (canary, step 4/4)",
                ctx.namespace
            ),
            "Status:         ✔ Healthy",
            "Held by:        nothing (Healthy)",
            "Nothing holds the rollout: it is healthy.",
        ] {
            ensure!(
                run.stdout.contains(want),
                "{want:?} not in:\n{}",
                run.stdout
            );
        }

        // The update as a file, planned against the live Rollout before it is applied.
        let mut update = ro::canary_rollout(
            "web",
            3,
            "registry.invalid/web:2",
            json!({"stableService": "web-stable", "canaryService": "web-canary", "steps": steps}),
        );
        update["metadata"]["namespace"] = json!(ctx.namespace);
        let file = dir.join("web.yaml");
        fs::write(&file, serde_json::to_string_pretty(&update)?)?;
        let file_arg = file.display().to_string();
        let run = plugin(
            &ctx,
            &[
                "plan",
                "-f",
                &file_arg,
                "--from",
                "live",
                "--no-color",
                "--promote-after",
                "1m",
            ],
        )
        .await?
        .ok()?;
        for want in [
            &format!(
                "Plan:         rollout web in {}: canary, 3 replicas",
                ctx.namespace
            ),
            "From:         the live rollout (Healthy)",
            "0 setWeight: 34",
            "1 pause",
            "waits for `kubectl argo rollouts promote web`",
            "2 setWeight: 67",
            "3 pause: 2 ",
            "Outcome:      completed after",
            "Worst case:   unbounded (step 1 (pause): until promoted)",
        ] {
            ensure!(
                run.stdout.contains(want),
                "{want:?} not in:\n{}",
                run.stdout
            );
        }
        // The plan changed nothing on the cluster.
        ensure!(image(&ro::get(&ctx, "web").await?) == "registry.invalid/web:1");
        let json_run = plugin(
            &ctx,
            &["plan", "-f", &file_arg, "--from", "live", "-o", "json"],
        )
        .await?
        .ok()?;
        let timeline: Value = serde_json::from_str(&json_run.stdout)
            .with_context(|| format!("plan -o json:\n{}", json_run.stdout))?;
        ensure!(
            timeline["entries"].as_array().is_some_and(|e| e.len() >= 4),
            "{timeline}"
        );

        // Applied: the rollout pauses at step 1 and `why` says so, with the command.
        ro::apply(&ctx, update.clone()).await?;
        ro::wait_for(&ctx, "web", T, "the pause at step 1", |r| {
            ro::paused_at(r, 1)
        })
        .await?;
        let run = plugin(&ctx, &["why", "web", "--no-color"]).await?.ok()?;
        for want in [
            "Status:         ॥ Paused - CanaryPauseStep",
            "Held by:        pause at step 1 (pause)",
            "Released by:    `kubectl argo rollouts promote web`",
        ] {
            ensure!(
                run.stdout.contains(want),
                "{want:?} not in:\n{}",
                run.stdout
            );
        }
        let run = plugin(&ctx, &["why", "web", "-o", "json"]).await?.ok()?;
        let blocker: Value = serde_json::from_str(&run.stdout)
            .with_context(|| format!("why -o json:\n{}", run.stdout))?;
        ensure!(
            blocker["gate"]["gate"] == "pausedAtStep" && blocker["gate"]["stepIndex"] == 1,
            "{blocker}"
        );
        ensure!(blocker["since"].is_string(), "{blocker}");

        // Planned from the paused state: what is left, from step 1.
        let run = plugin(
            &ctx,
            &["plan", "-f", &file_arg, "--from", "live", "--no-color"],
        )
        .await?
        .ok()?;
        ensure!(
            run.stdout
                .contains("From:         the live rollout (Paused - CanaryPauseStep)")
                && !run.stdout.contains("0 setWeight: 34"),
            "{}",
            run.stdout
        );

        // Promoted: held by the timed pause at step 3, released at a time.
        plugin(&ctx, &["promote", "web"]).await?.ok()?;
        ro::wait_for(&ctx, "web", T, "the timed pause at step 3", |r| {
            ro::paused_at(r, 3)
        })
        .await?;
        let run = plugin(&ctx, &["why", "web", "-o", "json"]).await?.ok()?;
        let blocker: Value = serde_json::from_str(&run.stdout)?;
        // The pause may end between the two reads: then the rollout is finishing.
        ensure!(
            (blocker["gate"]["gate"] == "pausedAtStep" && blocker["gate"]["until"].is_string())
                || blocker["status"] != "Paused",
            "{blocker}"
        );
        ro::wait_for(&ctx, "web", T, "Healthy on revision 2", |r| {
            ro::healthy(r) && r["status"]["stableRS"] != v1.as_str()
        })
        .await?;
        Ok(())
    })
    .await;
    let _ = fs::remove_dir_all(&dir);
    result
}
