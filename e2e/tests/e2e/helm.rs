//! The Helm chart's RBAC against the real API server: `charts/rollouts` rendered with
//! `cargo xtask helm template` for the test namespace with `clusterInstall=false`, its
//! ServiceAccount, Roles and RoleBindings applied, and our real `rollouts-controller` running
//! **as that ServiceAccount** (a kubeconfig holding a token from the TokenRequest API) through a
//! canary with a pause and a `web` analysis step against a local HTTP server, with leader
//! election on the chart's Lease Role. A SelfSubjectAccessReview per permission the controller
//! needs shows each one is granted, and that a verb taken out of the Role is noticed.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};
use e2e::{
    Test, TestContext,
    controller::{Controller, Options},
    manifests::{self, Document, Mode},
    rollouts::{self as ro, in_order},
    servers::HttpServer,
    wait,
};
use k8s_openapi::api::{
    authentication::v1::TokenRequest, authorization::v1::SelfSubjectAccessReview,
    coordination::v1::Lease, core::v1::ServiceAccount, rbac::v1::Role,
};
use kube::{
    Api, Client, Config,
    api::{ListParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use serde_json::{Value, json};

use crate::canary::with_log;

pub fn tests() -> Vec<Test> {
    vec![e2e::test!(
        the_namespaced_chart_rbac_runs_a_canary_with_analysis
    )]
}

const T: Duration = Duration::from_secs(60);

/// The chart's release name: the objects are named `rollouts` and `rollouts-leader-election`.
const RELEASE: &str = "rollouts";

/// One permission the controller needs in its namespace: group, resource, subresource, verb.
type Permission = (&'static str, &'static str, &'static str, &'static str);

/// What the controller does in its namespace (crates/rollouts-controller, its metric providers
/// and its traffic routers), asked of the API server one by one.
const NEEDED: &[Permission] = &[
    ("argoproj.io", "rollouts", "", "get"),
    ("argoproj.io", "rollouts", "", "list"),
    ("argoproj.io", "rollouts", "", "watch"),
    ("argoproj.io", "rollouts", "", "patch"),
    ("argoproj.io", "rollouts", "status", "patch"),
    ("argoproj.io", "analysisruns", "", "list"),
    ("argoproj.io", "analysisruns", "", "watch"),
    ("argoproj.io", "analysisruns", "", "get"),
    ("argoproj.io", "analysisruns", "", "create"),
    ("argoproj.io", "analysisruns", "", "patch"),
    ("argoproj.io", "analysisruns", "", "delete"),
    ("argoproj.io", "experiments", "", "list"),
    ("argoproj.io", "experiments", "", "watch"),
    ("argoproj.io", "experiments", "", "create"),
    ("argoproj.io", "experiments", "", "patch"),
    ("argoproj.io", "analysistemplates", "", "get"),
    ("apps", "replicasets", "", "list"),
    ("apps", "replicasets", "", "watch"),
    ("apps", "replicasets", "", "get"),
    ("apps", "replicasets", "", "create"),
    ("apps", "replicasets", "", "patch"),
    ("apps", "replicasets", "", "delete"),
    ("apps", "deployments", "", "list"),
    ("apps", "deployments", "", "watch"),
    ("apps", "deployments", "", "get"),
    ("apps", "deployments", "", "patch"),
    ("", "services", "", "list"),
    ("", "services", "", "watch"),
    ("", "services", "", "patch"),
    ("", "pods", "", "list"),
    ("", "pods", "", "patch"),
    ("", "pods", "eviction", "create"),
    ("", "events", "", "create"),
    ("", "events", "", "patch"),
    ("", "secrets", "", "get"),
    ("batch", "jobs", "", "list"),
    ("batch", "jobs", "", "watch"),
    ("batch", "jobs", "", "create"),
    ("batch", "jobs", "", "delete"),
    ("networking.k8s.io", "ingresses", "", "get"),
    ("networking.k8s.io", "ingresses", "", "create"),
    ("networking.k8s.io", "ingresses", "", "patch"),
    ("coordination.k8s.io", "leases", "", "get"),
    ("coordination.k8s.io", "leases", "", "create"),
    ("coordination.k8s.io", "leases", "", "patch"),
    ("networking.istio.io", "virtualservices", "", "update"),
    ("networking.istio.io", "destinationrules", "", "update"),
    ("split.smi-spec.io", "trafficsplits", "", "create"),
    ("getambassador.io", "mappings", "", "delete"),
    ("traefik.io", "traefikservices", "", "patch"),
    ("apisix.apache.org", "apisixroutes", "", "create"),
    ("gateway.networking.k8s.io", "httproutes", "", "patch"),
    ("gateway.networking.k8s.io", "grpcroutes", "", "patch"),
];

/// What the controller never does: the chart must not grant it (and a review that says yes to
/// everything would be caught here).
const NOT_NEEDED: &[Permission] = &[
    ("", "secrets", "", "list"),
    ("", "secrets", "", "create"),
    ("", "configmaps", "", "get"),
    ("argoproj.io", "rollouts", "", "delete"),
    ("rbac.authorization.k8s.io", "roles", "", "patch"),
];

/// `cargo xtask helm template rollouts -n <ns> --set clusterInstall=false ...`, parsed.
fn render_chart(root: &Path, namespace: &str) -> Result<Vec<Value>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .current_dir(root)
        .args([
            "xtask",
            "helm",
            "template",
            RELEASE,
            "--namespace",
            namespace,
        ])
        .args(["--set", "clusterInstall=false"])
        // Cluster-scoped objects would be shared by every test namespace.
        .args(["--set", "createClusterAggregateRoles=false"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {cargo} xtask helm template"))?;
    if !out.status.success() {
        bail!("cargo xtask helm template failed ({})", out.status);
    }
    let text = String::from_utf8(out.stdout).context("helm template printed non-UTF-8")?;
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&text).context("helm template printed invalid YAML")?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn kind_of(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn name_of(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

/// A kubeconfig for the test cluster that authenticates with `token` (the cluster entry of the
/// admin kubeconfig, a token user, the namespace as default).
fn token_kubeconfig(admin: &Path, token: &str, namespace: &str, out: &Path) -> Result<()> {
    let text = fs::read_to_string(admin).with_context(|| format!("reading {}", admin.display()))?;
    let config: Value = serde_saphyr::from_str(&text)
        .with_context(|| format!("{} is not valid YAML", admin.display()))?;
    let current = config["current-context"].as_str().unwrap_or_default();
    let context = config["contexts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == current)
        .with_context(|| format!("{}: no context {current:?}", admin.display()))?;
    let cluster_name = &context["context"]["cluster"];
    let cluster = config["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| &c["name"] == cluster_name)
        .with_context(|| format!("{}: no cluster {cluster_name}", admin.display()))?;
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "controller", "user": {"token": token}}],
        "contexts": [{"name": "controller", "context": {
            "cluster": cluster_name, "user": "controller", "namespace": namespace
        }}],
        "current-context": "controller",
    });
    // JSON is YAML.
    fs::write(out, serde_json::to_vec_pretty(&kubeconfig)?)
        .with_context(|| format!("writing {}", out.display()))
}

async fn client_for(kubeconfig: &Path) -> Result<Client> {
    let config = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config = Config::from_custom_kubeconfig(config, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// Asks the API server, as the client's user, whether it may do each of `permissions` in
/// `namespace`; returns those it may not.
async fn denied(
    client: &Client,
    namespace: &str,
    permissions: &[Permission],
) -> Result<Vec<Permission>> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut out = Vec::new();
    for &(group, resource, subresource, verb) in permissions {
        let review: SelfSubjectAccessReview = serde_json::from_value(json!({
            "spec": {"resourceAttributes": {
                "namespace": namespace, "group": group, "resource": resource,
                "subresource": subresource, "verb": verb
            }}
        }))?;
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .with_context(|| format!("reviewing {verb} {group}/{resource}/{subresource}"))?;
        if !answer.status.is_some_and(|s| s.allowed) {
            out.push((group, resource, subresource, verb));
        }
    }
    Ok(out)
}

async fn the_namespaced_chart_rbac_runs_a_canary_with_analysis(ctx: TestContext) -> Result<()> {
    let ctx = &ctx;
    let ns = ctx.namespace.as_str();
    ctx.install_crds().await?;

    // The chart, rendered for this namespace in namespaced mode.
    let docs = render_chart(ctx.project_root(), ns)?;
    let kinds: Vec<(&str, &str)> = docs.iter().map(|d| (kind_of(d), name_of(d))).collect();
    for cluster_kind in ["ClusterRole", "ClusterRoleBinding"] {
        ensure!(
            !kinds.iter().any(|(k, _)| *k == cluster_kind),
            "clusterInstall=false rendered a {cluster_kind}: {kinds:?}"
        );
    }
    let deployment = docs
        .iter()
        .find(|d| kind_of(d) == "Deployment")
        .context("no Deployment rendered")?;
    let args = &deployment["spec"]["template"]["spec"]["containers"][0]["args"];
    ensure!(
        args.as_array()
            .is_some_and(|a| a.iter().any(|v| v == "--namespaced")),
        "the Deployment's args lack --namespaced: {args}"
    );
    let service_account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        .as_str()
        .context("the Deployment names no ServiceAccount")?
        .to_string();

    // Its RBAC objects, applied as the chart renders them.
    let mut applied = Vec::new();
    for (index, value) in docs.iter().enumerate() {
        if !["ServiceAccount", "Role", "RoleBinding"].contains(&kind_of(value)) {
            continue;
        }
        ensure!(
            value["metadata"]["namespace"] == ns,
            "{} {} is not in the release namespace",
            kind_of(value),
            name_of(value)
        );
        let doc = Document {
            file: PathBuf::from("helm-template"),
            index,
            value: value.clone(),
        };
        manifests::apply(&ctx.client, ns, &doc, Mode::Apply).await?;
        applied.push(format!("{}/{}", kind_of(value), name_of(value)));
    }
    applied.sort();
    ensure!(
        applied
            == [
                "Role/rollouts",
                "Role/rollouts-leader-election",
                "RoleBinding/rollouts",
                "RoleBinding/rollouts-leader-election",
                "ServiceAccount/rollouts",
            ],
        "{applied:?}"
    );

    // A token of that ServiceAccount, and a kubeconfig with it.
    let sas: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), ns);
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}}))?;
    let token = sas
        .create_token_request(&service_account, &PostParams::default(), &request)
        .await?
        .status
        .and_then(|s| s.token)
        .context("the TokenRequest returned no token")?;
    let dir = std::env::temp_dir().join("rollouts-e2e-logs");
    fs::create_dir_all(&dir)?;
    let kubeconfig = dir.join(format!("{ns}-controller.kubeconfig"));
    token_kubeconfig(ctx.kubeconfig(), &token, ns, &kubeconfig)?;
    let as_controller = client_for(&kubeconfig).await?;

    // Every permission the controller needs is granted (RBAC reaches the authorizer's cache
    // shortly after the apply), and nothing beyond.
    let in_effect = wait::until(T, "the chart's Roles to be in effect", || async {
        let missing = denied(&as_controller, ns, NEEDED).await?;
        Ok::<_, anyhow::Error>(missing.is_empty().then_some(()))
    })
    .await;
    if in_effect.is_err() {
        let still = denied(&as_controller, ns, NEEDED).await?;
        bail!("the ServiceAccount {service_account} may not: {still:?}");
    }
    let granted: Vec<Permission> = {
        let refused = denied(&as_controller, ns, NOT_NEEDED).await?;
        NOT_NEEDED
            .iter()
            .filter(|p| !refused.contains(p))
            .copied()
            .collect()
    };
    ensure!(
        granted.is_empty(),
        "the chart grants more than needed: {granted:?}"
    );

    // The controller, as the ServiceAccount, through a canary with an analysis step.
    let server = HttpServer::start().await?;
    server.set(
        "/health/web-canary",
        200,
        "application/json",
        r#"{"data": {"rate": 0.99}}"#,
    );
    ro::apply(
        ctx,
        json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": "web-health"},
            "spec": {
                "args": [{"name": "service-name"}],
                "metrics": [{
                    "name": "health",
                    "successCondition": "result >= 0.95",
                    "provider": {"web": {
                        "url": server.url("/health/{{args.service-name}}"),
                        "jsonPath": "{$.data.rate}"
                    }}
                }]
            }
        }),
    )
    .await?;
    let ctl = Controller::start(
        ctx,
        Options {
            kubeconfig: Some(kubeconfig.clone()),
            name: "helm-sa".into(),
            ..Options::default()
        },
    )
    .await?;
    with_log(&ctl, async {
        ro::apply(ctx, ro::service("web-stable", "web")).await?;
        ro::apply(ctx, ro::service("web-canary", "web")).await?;
        let steps = json!([
            {"setWeight": 34},
            {"pause": {}},
            {"analysis": {
                "templates": [{"templateName": "web-health"}],
                "args": [{"name": "service-name", "value": "web-canary"}]
            }},
            {"setWeight": 67},
            {"pause": {"duration": "1s"}}
        ]);
        let strategy = json!({
            "stableService": "web-stable", "canaryService": "web-canary", "steps": steps
        });
        ro::apply(
            ctx,
            ro::canary_rollout("web", 3, "registry.invalid/web:1", strategy),
        )
        .await?;
        let r = ro::wait_for(
            ctx,
            "web",
            T,
            "the initial deploy to be Healthy",
            ro::healthy,
        )
        .await?;
        let v1 = r["status"]["stableRS"]
            .as_str()
            .unwrap_or_default()
            .to_string();

        // The Lease of the chart's leader-election Role, held by this controller.
        let leases: Api<Lease> = Api::namespaced(ctx.client.clone(), ns);
        let lease = leases.get("argo-rollouts-controller-lock").await?;
        let holder = lease
            .spec
            .and_then(|s| s.holder_identity)
            .unwrap_or_default();
        ensure!(!holder.is_empty(), "the Lease has no holder");

        ro::set_image(ctx, "web", "registry.invalid/web:2").await?;
        let r = ro::wait_for(ctx, "web", T, "the pause at step 1", |r| {
            ro::paused_at(r, 1)
        })
        .await?;
        let v2 = r["status"]["currentPodHash"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        ensure!(!v2.is_empty() && v2 != v1, "{}", ro::summary(&r));
        ensure!(
            r["status"]["stableRS"] == v1.as_str(),
            "{}",
            ro::summary(&r)
        );
        ensure!(ro::selector_hash(ctx, "web-canary").await?.as_deref() == Some(v2.as_str()));
        let sets = ro::replica_sets(ctx).await?;
        ensure!(
            sets.iter().any(|s| s.hash == v2 && s.replicas > 0),
            "the canary ReplicaSet is scaled up: {sets:?}"
        );

        // Promoted: the analysis step measures the local server, then the last steps.
        ro::promote(ctx, "web").await?;
        let runs: Api<kube::api::DynamicObject> = Api::namespaced_with(
            ctx.client.clone(),
            ns,
            &kube::api::ApiResource::from_gvk_with_plural(
                &kube::api::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "AnalysisRun"),
                "analysisruns",
            ),
        );
        let run = wait::until(T, "the web analysis to succeed", || async {
            let list = runs.list(&ListParams::default()).await?;
            let found = list
                .items
                .into_iter()
                .map(serde_json::to_value)
                .collect::<std::result::Result<Vec<Value>, _>>()?
                .into_iter()
                .find(|r| r["status"]["phase"] == "Successful");
            Ok::<_, anyhow::Error>(found)
        })
        .await?;
        let measurement = &run["status"]["metricResults"][0]["measurements"][0];
        ensure!(
            measurement["value"] == "0.99" && measurement["phase"] == "Successful",
            "{measurement}"
        );
        ensure!(
            server.requests().iter().any(|r| r == "/health/web-canary"),
            "{:?}",
            server.requests()
        );
        let r = ro::wait_for(ctx, "web", T, "the rollout to be promoted", |r| {
            ro::healthy(r) && r["status"]["stableRS"] == v2.as_str()
        })
        .await?;
        ensure!(ro::step(&r) == 5, "{}", ro::summary(&r));
        ro::wait_sizes(ctx, &[(v2.as_str(), 3)], T).await?;
        ensure!(ro::selector_hash(ctx, "web-stable").await?.as_deref() == Some(v2.as_str()));
        // Events are written too (create/patch events).
        let reasons = ro::event_reasons(ctx, "web").await?;
        in_order(
            &reasons,
            &[
                "RolloutStepCompleted",
                "RolloutPaused",
                "AnalysisRunSuccessful",
                "RolloutStepCompleted",
                "RolloutCompleted",
            ],
        )
        .with_context(|| format!("events: {reasons:?}"))?;
        // Not one request of the controller was refused.
        let log = e2e::controller::strip_ansi(&ctl.log()).to_lowercase();
        ensure!(
            !log.contains("forbidden"),
            "the controller was refused something:\n{}",
            log.lines()
                .filter(|l| l.contains("forbidden"))
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
        Ok(())
    })
    .await?;
    drop(ctl);

    // A verb taken out of the Role is noticed: drop pods/eviction from the chart's Role.
    let roles: Api<Role> = Api::namespaced(ctx.client.clone(), ns);
    let role = roles.get(RELEASE).await?;
    let rules: Vec<_> = role
        .rules
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            !r.resources
                .as_ref()
                .is_some_and(|rs| rs.iter().any(|x| x == "pods/eviction"))
        })
        .collect();
    roles
        .patch(
            RELEASE,
            &PatchParams::default(),
            &Patch::Merge(json!({"rules": rules})),
        )
        .await?;
    let noticed = wait::until(T, "the missing verb to be reported", || async {
        let missing = denied(&as_controller, ns, NEEDED).await?;
        Ok::<_, anyhow::Error>((!missing.is_empty()).then_some(missing))
    })
    .await?;
    ensure!(
        noticed == [("", "pods", "eviction", "create")],
        "reported as missing: {noticed:?}"
    );
    Ok(())
}
