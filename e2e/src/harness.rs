//! The test runner: one cluster per run, one namespace per test, cleanup whatever happens.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, Result, anyhow};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::{
    Api, Client, Config, ResourceExt,
    api::{DeleteParams, ObjectMeta, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use libtest_mimic::{Arguments, Failed, Trial};
use tokio::{runtime::Runtime, sync::OnceCell};

use crate::{cluster::ClusterSource, manifests, wait};

/// How long one test may take before it fails.
const TEST_TIMEOUT: Duration = Duration::from_secs(180);

type Body = Box<dyn Fn(TestContext) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// One e2e test: a name and an async body.
pub struct Test {
    name: String,
    body: Body,
}

impl std::fmt::Debug for Test {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Test").field("name", &self.name).finish()
    }
}

impl Test {
    /// A test named `name` (use the [`crate::test!`] macro, which names it after the function).
    pub fn new(
        name: impl Into<String>,
        body: impl Fn(TestContext) -> BoxFuture<'static, Result<()>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            body: Box::new(body),
        }
    }

    /// The test's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What a test gets: a client, its own namespace, and the run's shared services.
#[derive(Clone)]
pub struct TestContext {
    /// An admin client of the cluster.
    pub client: Client,
    /// The test's own namespace (deleted after the test).
    pub namespace: String,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestContext")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl TestContext {
    /// The kubeconfig of the cluster under test.
    pub fn kubeconfig(&self) -> &Path {
        self.shared.source.kubeconfig()
    }

    /// The workspace root (for `charts/`, `examples/`).
    pub fn project_root(&self) -> &Path {
        &self.shared.project_root
    }

    /// Installs our CRDs (`charts/rollouts/crds/*.yaml`, server-side apply) once per run and
    /// waits until each is Established. Returns the names of the CRDs.
    pub async fn install_crds(&self) -> Result<Vec<String>> {
        let result = self
            .shared
            .crds
            .get_or_init(|| async {
                manifests::install_crds(&self.client, &self.shared.project_root)
                    .await
                    .map_err(|e| format!("{e:#}"))
            })
            .await;
        result
            .clone()
            .map_err(|e| anyhow!("installing our CRDs failed: {e}"))
    }
}

/// What all tests of a run share.
struct Shared {
    source: ClusterSource,
    client: Client,
    project_root: PathBuf,
    crds: OnceCell<std::result::Result<Vec<String>, String>>,
    namespaces: AtomicU32,
}

/// Runs the tests under libtest-mimic (the usual `cargo test` arguments work) and returns the
/// process's exit code. The cluster is obtained on the first test that runs, and stopped at the
/// end if this run started it.
pub fn run(tests: Vec<Test>) -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Arguments::from_args();

    let mut seen = BTreeMap::new();
    for t in &tests {
        if seen.insert(t.name.clone(), ()).is_some() {
            eprintln!("e2e: two tests are named {}", t.name);
            return ExitCode::FAILURE;
        }
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => Arc::new(rt),
        Err(err) => {
            eprintln!("e2e: cannot start a tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let state: Arc<OnceLock<std::result::Result<Arc<Shared>, String>>> = Arc::new(OnceLock::new());

    let trials = tests
        .into_iter()
        .map(|test| {
            let runtime = runtime.clone();
            let state = state.clone();
            let name = test.name.clone();
            Trial::test(name, move || {
                let shared = state
                    .get_or_init(|| setup(&runtime).map(Arc::new).map_err(|e| format!("{e:#}")))
                    .as_ref()
                    .map_err(|e| Failed::from(e.as_str()))?;
                run_one(&runtime, shared, &test).map_err(|e| Failed::from(format!("{e:#}")))
            })
        })
        .collect();

    let conclusion = libtest_mimic::run(&args, trials);

    let mut failed = conclusion.has_failed();
    if let Some(Ok(shared)) = state.get()
        && let Err(err) = shared.source.stop()
    {
        eprintln!("e2e: error: {err:#}");
        failed = true;
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn setup(runtime: &Runtime) -> Result<Shared> {
    let source = ClusterSource::obtain()?;
    let connect = async {
        let kubeconfig = Kubeconfig::read_from(source.kubeconfig())
            .with_context(|| format!("reading {}", source.kubeconfig().display()))?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .context("loading the kubeconfig")?;
        let client = Client::try_from(config).context("creating a client")?;
        // Reachable and serving?
        wait::until(
            Duration::from_secs(60),
            "the API server answers",
            || async { client.apiserver_version().await.map(|_| Some(())) },
        )
        .await?;
        Ok::<_, anyhow::Error>(client)
    };
    match runtime.block_on(connect) {
        Ok(client) => Ok(Shared {
            source,
            client,
            project_root: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .context("no workspace root")?
                .to_path_buf(),
            crds: OnceCell::new(),
            namespaces: AtomicU32::new(0),
        }),
        Err(err) => {
            if let Err(stop) = source.stop() {
                eprintln!("e2e: error: {stop:#}");
            }
            Err(err.context(format!(
                "the cluster of {} is not usable",
                source.kubeconfig().display()
            )))
        }
    }
}

/// Deletes a test's namespace when dropped: after the test, and also when it panics.
struct NamespaceGuard {
    runtime: Arc<Runtime>,
    client: Client,
    name: String,
}

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let name = self.name.clone();
        let deleted = self.runtime.block_on(async move {
            tokio::time::timeout(
                Duration::from_secs(30),
                api.delete(&name, &DeleteParams::background()),
            )
            .await
        });
        match deleted {
            Ok(Ok(_)) => {}
            Ok(Err(kube::Error::Api(s))) if s.code == 404 => {}
            Ok(Err(err)) => eprintln!("e2e: could not delete namespace {}: {err}", self.name),
            Err(_) => eprintln!("e2e: deleting namespace {} timed out", self.name),
        }
    }
}

fn run_one(runtime: &Arc<Runtime>, shared: &Arc<Shared>, test: &Test) -> Result<()> {
    let n = shared.namespaces.fetch_add(1, Ordering::SeqCst);
    let name = namespace_name(&test.name, std::process::id(), n);
    let client = shared.client.clone();
    runtime
        .block_on(create_namespace(&client, &name, &test.name))
        .with_context(|| format!("creating namespace {name}"))?;
    let _guard = NamespaceGuard {
        runtime: runtime.clone(),
        client: client.clone(),
        name: name.clone(),
    };
    let ctx = TestContext {
        client,
        namespace: name.clone(),
        shared: shared.clone(),
    };
    let body = (test.body)(ctx);
    // The timer must be created inside the runtime.
    match runtime.block_on(async { tokio::time::timeout(TEST_TIMEOUT, body).await }) {
        Ok(result) => result.with_context(|| format!("in namespace {name}")),
        Err(_) => Err(anyhow!(
            "timed out after {}s (namespace {name})",
            TEST_TIMEOUT.as_secs()
        )),
    }
}

/// `e2e-<test name, DNS-safe, shortened>-<pid>-<n>` (at most 63 characters).
fn namespace_name(test: &str, pid: u32, n: u32) -> String {
    let suffix = format!("-{pid}-{n}");
    let mut slug: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while slug.contains("--") {
        slug = slug.replace("--", "-");
    }
    let room = 63 - "e2e-".len() - suffix.len();
    slug.truncate(room);
    let slug = slug.trim_matches('-');
    format!("e2e-{slug}{suffix}")
}

async fn create_namespace(client: &Client, name: &str, test: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(
                [("rollouts-e2e/test".to_string(), "true".to_string())]
                    .into_iter()
                    .collect(),
            ),
            annotations: Some(
                [("rollouts-e2e/test-name".to_string(), test.to_string())]
                    .into_iter()
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    api.create(&PostParams::default(), &ns).await?;
    // Pods need the `default` service account, which kube-controller-manager creates.
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
    wait::until(
        Duration::from_secs(30),
        "the namespace's default service account",
        || async {
            sas.get_opt("default")
                .await
                .map(|sa| sa.map(|sa| sa.name_any()))
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_are_dns_labels() {
        let name = namespace_name("cluster::deployment_becomes_ready", 1234, 7);
        assert_eq!(name, "e2e-cluster-deployment-becomes-ready-1234-7");
        let long = namespace_name(&"x".repeat(200), 4_294_967_295, 4_294_967_295);
        assert!(long.len() <= 63, "{long}");
        assert!(long.ends_with("-4294967295-4294967295"));
        let odd = namespace_name("a::_b", 1, 2);
        assert_eq!(odd, "e2e-a-b-1-2");
    }
}
