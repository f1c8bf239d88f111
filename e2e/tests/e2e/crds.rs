//! Our CRDs on a real API server: they are accepted, every manifest in `examples/` passes a
//! server-side dry run, examples read back unchanged, and schema validation rejects bad types.

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail, ensure};
use e2e::{
    Test, TestContext,
    manifests::{self, Document, Mode},
};
use kube::{
    Api,
    api::{DynamicObject, PostParams},
};
use serde_json::{Value, json};

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(our_five_crds_are_established),
        e2e::test!(every_example_passes_server_side_dry_run),
        e2e::test!(rollout_examples_read_back_unchanged),
        e2e::test!(argo_examples_keep_every_field_through_the_schema),
        e2e::test!(rollout_with_a_wrong_field_type_is_rejected),
    ]
}

const GROUP: &str = "argoproj.io";

const OUR_CRDS: [&str; 5] = [
    "rollouts.argoproj.io",
    "analysistemplates.argoproj.io",
    "clusteranalysistemplates.argoproj.io",
    "analysisruns.argoproj.io",
    "experiments.argoproj.io",
];

fn examples(ctx: &TestContext) -> Result<Vec<Document>> {
    let dir = ctx.project_root().join("examples");
    let docs = manifests::load_dir(&dir)?;
    ensure!(!docs.is_empty(), "no manifests in {}", dir.display());
    Ok(docs)
}

async fn our_five_crds_are_established(ctx: TestContext) -> Result<()> {
    let installed: BTreeSet<String> = ctx.install_crds().await?.into_iter().collect();
    let missing: Vec<&str> = OUR_CRDS
        .iter()
        .copied()
        .filter(|name| !installed.contains(*name))
        .collect();
    ensure!(
        missing.is_empty(),
        "charts/rollouts/crds/ lacks {missing:?} (it has {installed:?})"
    );
    Ok(())
}

async fn every_example_passes_server_side_dry_run(ctx: TestContext) -> Result<()> {
    ctx.install_crds().await?;
    let docs = examples(&ctx)?;
    let served_groups: BTreeSet<String> = ctx
        .client
        .list_api_groups()
        .await?
        .groups
        .into_iter()
        .map(|g| g.name)
        .collect();
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut not_served = Vec::new();
    for doc in &docs {
        let gvk = doc.gvk()?;
        // API groups of other projects (a service mesh's, an ingress controller's) are not
        // installed in the test cluster. Everything else (ours, the built-in groups) must be
        // served, so a wrong kind or version in an example fails below.
        if !gvk.group.is_empty() && gvk.group != GROUP && !served_groups.contains(&gvk.group) {
            not_served.push(format!("{doc} ({}/{})", gvk.group, gvk.kind));
            continue;
        }
        match manifests::apply(&ctx.client, &ctx.namespace, doc, Mode::DryRun).await {
            Ok(_) => checked += 1,
            Err(err) => failures.push(format!("{err:#}")),
        }
    }
    if !not_served.is_empty() {
        eprintln!(
            "note: {} example document(s) belong to API groups of other projects, which the \
             test cluster does not serve, and were not checked: {}",
            not_served.len(),
            not_served.join("; ")
        );
    }
    ensure!(
        failures.is_empty(),
        "{} of {} example documents were rejected:\n{}",
        failures.len(),
        docs.len(),
        failures.join("\n")
    );
    ensure!(checked > 0, "no example document could be checked");
    Ok(())
}

fn is_ours(doc: &Document, kind: Option<&str>) -> bool {
    doc.gvk()
        .is_ok_and(|gvk| gvk.group == GROUP && kind.is_none_or(|k| gvk.kind == k))
}

/// What we sent, minus the metadata the API server owns or that we changed on purpose.
fn comparable(value: &Value) -> Value {
    let mut v = value.clone();
    if let Some(meta) = v["metadata"].as_object_mut() {
        meta.remove("namespace");
    }
    v
}

async fn rollout_examples_read_back_unchanged(ctx: TestContext) -> Result<()> {
    ctx.install_crds().await?;
    let docs = examples(&ctx)?;
    let rollouts: Vec<&Document> = docs
        .iter()
        .filter(|d| is_ours(d, Some("Rollout")))
        .collect();
    ensure!(!rollouts.is_empty(), "examples/ has no Rollout");
    let mut problems = Vec::new();
    for doc in rollouts {
        // Created for real, then read back with a GET.
        let created = manifests::apply(&ctx.client, &ctx.namespace, doc, Mode::Apply).await?;
        let name = created
            .metadata
            .name
            .clone()
            .context("created without a name")?;
        let (resource, _) = manifests::resolve(&ctx.client, &doc.gvk()?)
            .await?
            .context("Rollout is not served")?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &ctx.namespace, &resource);
        let read = serde_json::to_value(api.get(&name).await?)?;
        for diff in manifests::differences(&comparable(&doc.value), &read) {
            problems.push(format!("{doc}: {diff}"));
        }
    }
    ensure!(
        problems.is_empty(),
        "fields changed between what we sent and what the API server stored:\n{}",
        problems.join("\n")
    );
    Ok(())
}

async fn argo_examples_keep_every_field_through_the_schema(ctx: TestContext) -> Result<()> {
    ctx.install_crds().await?;
    let docs = examples(&ctx)?;
    let ours: Vec<&Document> = docs.iter().filter(|d| is_ours(d, None)).collect();
    ensure!(!ours.is_empty(), "examples/ has no {GROUP} object");
    let mut problems = Vec::new();
    for doc in ours {
        // The dry-run answer is the object as it would be stored: pruned and defaulted.
        let stored = manifests::apply(&ctx.client, &ctx.namespace, doc, Mode::DryRun).await?;
        let stored = serde_json::to_value(stored)?;
        for diff in manifests::differences(&comparable(&doc.value), &stored) {
            problems.push(format!("{doc}: {diff}"));
        }
    }
    ensure!(
        problems.is_empty(),
        "the CRD schemas drop or change fields of the examples:\n{}",
        problems.join("\n")
    );
    Ok(())
}

async fn rollout_with_a_wrong_field_type_is_rejected(ctx: TestContext) -> Result<()> {
    ctx.install_crds().await?;
    let gvk = kube::api::GroupVersionKind::gvk(GROUP, "v1alpha1", "Rollout");
    let (resource, _) = manifests::resolve(&ctx.client, &gvk)
        .await?
        .context("Rollout is not served")?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &ctx.namespace, &resource);
    let valid = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "typed"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "typed"}},
            "template": {
                "metadata": {"labels": {"app": "typed"}},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]}
            },
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}
        }
    });
    // The same object with correct types is accepted, so the rejection below is about the type.
    let object: DynamicObject = serde_json::from_value(valid.clone())?;
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    api.create(&params, &object)
        .await
        .context("the well-typed Rollout was rejected")?;

    for (path, bad) in [
        ("spec.replicas", {
            let mut v = valid.clone();
            v["spec"]["replicas"] = json!("three");
            v
        }),
        ("spec.strategy.canary.steps[0].setWeight", {
            let mut v = valid.clone();
            v["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = json!(["twenty"]);
            v
        }),
    ] {
        let object: DynamicObject = serde_json::from_value(bad)?;
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => bail!("a Rollout with a wrong type at {path} was accepted"),
            Err(kube::Error::Api(status)) => {
                ensure!(
                    status.code == 422,
                    "expected 422 Invalid for {path}, got {}: {}",
                    status.code,
                    status.message
                );
                ensure!(
                    status.message.contains(path),
                    "the rejection does not name {path}: {}",
                    status.message
                );
            }
            Err(err) => bail!("creating the Rollout failed without an API error: {err}"),
        }
    }
    Ok(())
}
