//! Manifests on disk (`charts/rollouts/crds/`, `examples/`) and applying them to the cluster.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams},
    discovery::{self, ApiCapabilities, Scope},
    error::DiscoveryError,
};
use serde_json::Value;

use crate::wait;

/// The field manager of everything the e2e tests apply.
pub const FIELD_MANAGER: &str = "rollouts-e2e";

/// One YAML document of a manifest file.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file it came from.
    pub file: PathBuf,
    /// Its position in the file (0-based, empty documents not counted).
    pub index: usize,
    /// The document, as JSON.
    pub value: Value,
}

impl Document {
    /// `apiVersion` and `kind`.
    pub fn gvk(&self) -> Result<GroupVersionKind> {
        let api_version = self.value["apiVersion"]
            .as_str()
            .with_context(|| format!("{self}: no apiVersion"))?;
        let kind = self.value["kind"]
            .as_str()
            .with_context(|| format!("{self}: no kind"))?;
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        Ok(GroupVersionKind::gvk(group, version, kind))
    }

    /// `metadata.name`, if set.
    pub fn name(&self) -> Option<&str> {
        self.value["metadata"]["name"].as_str()
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (document {})", self.file.display(), self.index + 1)?;
        if let (Some(kind), Some(name)) = (self.value["kind"].as_str(), self.name()) {
            write!(f, " {kind}/{name}")?;
        }
        Ok(())
    }
}

/// The YAML files under `dir` (recursively, `.yaml`/`.yml`), sorted by path.
pub fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Parses every (non-empty) document of a YAML file.
pub fn load_file(file: &Path) -> Result<Vec<Document>> {
    let text = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    parse_documents(file, &text)
}

fn parse_documents(file: &Path, text: &str) -> Result<Vec<Document>> {
    let values: Vec<Value> = serde_saphyr::from_multiple(text)
        .with_context(|| format!("{} is not valid YAML", file.display()))?;
    Ok(values
        .into_iter()
        .filter(|v| !v.is_null())
        .enumerate()
        .map(|(index, value)| Document {
            file: file.to_path_buf(),
            index,
            value,
        })
        .collect())
}

/// Every document of every YAML file under `dir`.
pub fn load_dir(dir: &Path) -> Result<Vec<Document>> {
    let mut docs = Vec::new();
    for file in yaml_files(dir)? {
        docs.extend(load_file(&file)?);
    }
    Ok(docs)
}

/// The API resource of `gvk`, or `None` if the API server does not serve that kind.
pub async fn resolve(
    client: &Client,
    gvk: &GroupVersionKind,
) -> Result<Option<(ApiResource, ApiCapabilities)>> {
    match discovery::pinned_kind(client, gvk).await {
        Ok(found) => Ok(Some(found)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(kube::Error::Discovery(
            DiscoveryError::MissingKind(_) | DiscoveryError::MissingApiGroup(_),
        )) => Ok(None),
        Err(err) => Err(err).with_context(|| format!("discovering {gvk:?}")),
    }
}

/// The `Api` for a document's kind, in `namespace` if the kind is namespaced.
fn dynamic_api(
    client: &Client,
    resource: &ApiResource,
    caps: &ApiCapabilities,
    namespace: &str,
) -> Api<DynamicObject> {
    match caps.scope {
        Scope::Namespaced => Api::namespaced_with(client.clone(), namespace, resource),
        Scope::Cluster => Api::all_with(client.clone(), resource),
    }
}

/// How [`apply`] sends a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Persist it.
    Apply,
    /// Server-side dry run: validated and admitted, not stored.
    DryRun,
}

/// Server-side applies `doc` (in `namespace` if its kind is namespaced; a namespace in the
/// document is replaced). A document with `generateName` and no name is created instead.
/// Fails if the API server does not serve the kind.
pub async fn apply(
    client: &Client,
    namespace: &str,
    doc: &Document,
    mode: Mode,
) -> Result<DynamicObject> {
    let gvk = doc.gvk()?;
    let (resource, caps) = resolve(client, &gvk)
        .await?
        .with_context(|| format!("{doc}: the API server does not serve {gvk:?}"))?;
    let api = dynamic_api(client, &resource, &caps, namespace);
    let mut body = doc.value.clone();
    if let Some(meta) = body["metadata"].as_object_mut() {
        meta.remove("namespace");
    }
    let dry_run = mode == Mode::DryRun;
    let result = match doc.name() {
        Some(name) => {
            let mut params = PatchParams::apply(FIELD_MANAGER).force();
            params.dry_run = dry_run;
            api.patch(name, &params, &Patch::Apply(&body)).await
        }
        None => {
            let object: DynamicObject = serde_json::from_value(body)
                .with_context(|| format!("{doc}: not a Kubernetes object"))?;
            let params = PostParams {
                dry_run,
                field_manager: Some(FIELD_MANAGER.to_string()),
            };
            api.create(&params, &object).await
        }
    };
    result.with_context(|| format!("{doc}: rejected by the API server"))
}

/// Applies every CRD of `charts/rollouts/crds/` and waits until each is Established and its
/// kind is served. Returns the CRD names.
pub async fn install_crds(client: &Client, project_root: &Path) -> Result<Vec<String>> {
    let dir = project_root.join("charts").join("rollouts").join("crds");
    let docs = load_dir(&dir)?;
    if docs.is_empty() {
        bail!(
            "no CRD manifests in {} (they are generated by `cargo xtask crds`)",
            dir.display()
        );
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for doc in &docs {
        let gvk = doc.gvk()?;
        if gvk.kind != "CustomResourceDefinition" {
            bail!("{doc}: {} holds a {}, not a CRD", dir.display(), gvk.kind);
        }
        let obj = apply(client, "default", doc, Mode::Apply).await?;
        names.push(obj.metadata.name.unwrap_or_default());
    }
    for name in &names {
        let crd = wait::until(
            Duration::from_secs(60),
            &format!("CRD {name} to be Established"),
            || async {
                let crd = crds.get(name).await?;
                let established = crd
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    });
                Ok::<_, kube::Error>(established.then_some(crd))
            },
        )
        .await?;
        // Discovery catches up a moment after Established.
        let spec = &crd.spec;
        for version in spec.versions.iter().filter(|v| v.served) {
            let gvk = GroupVersionKind::gvk(&spec.group, &version.name, &spec.names.kind);
            wait::until(
                Duration::from_secs(30),
                &format!(
                    "{}/{} {} in discovery",
                    spec.group, version.name, spec.names.kind
                ),
                || async { resolve(client, &gvk).await },
            )
            .await?;
        }
    }
    Ok(names)
}

/// Where `got` differs from `sent` in a field that `sent` sets: one line per difference, with
/// its JSON path. Extra fields in `got` (defaults, status, metadata) are not differences.
pub fn differences(sent: &Value, got: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_into("", sent, got, &mut out);
    out
}

fn diff_into(path: &str, sent: &Value, got: &Value, out: &mut Vec<String>) {
    match (sent, got) {
        (Value::Object(s), Value::Object(g)) => {
            for (key, sv) in s {
                let p = format!("{path}.{key}");
                match g.get(key) {
                    Some(gv) => diff_into(&p, sv, gv, out),
                    None if sv.is_null() => {}
                    None => out.push(format!("{p}: sent {sv}, missing in what was read back")),
                }
            }
        }
        (Value::Array(s), Value::Array(g)) if s.len() == g.len() => {
            for (i, (sv, gv)) in s.iter().zip(g).enumerate() {
                diff_into(&format!("{path}[{i}]"), sv, gv, out);
            }
        }
        (Value::Number(s), Value::Number(g)) if s.as_f64() == g.as_f64() => {}
        _ if sent == got => {}
        _ => out.push(format!("{path}: sent {sent}, read back {got}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_multi_document_yaml_and_skips_empty_documents() {
        let text = "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\n---\n\
                    apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: b\n";
        let docs = parse_documents(Path::new("x.yaml"), text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].index, 1);
        let gvk = docs[1].gvk().unwrap();
        assert_eq!(
            (gvk.group.as_str(), gvk.version.as_str(), gvk.kind.as_str()),
            ("argoproj.io", "v1alpha1", "Rollout")
        );
        let core = docs[0].gvk().unwrap();
        assert_eq!((core.group.as_str(), core.version.as_str()), ("", "v1"));
        assert_eq!(docs[1].to_string(), "x.yaml (document 2) Rollout/b");
    }

    #[test]
    fn bad_yaml_names_the_file() {
        let err = parse_documents(Path::new("bad.yaml"), "a: [1, 2\n").unwrap_err();
        assert!(format!("{err:#}").contains("bad.yaml"), "{err:#}");
    }

    #[test]
    fn differences_ignore_added_fields_and_report_changed_ones() {
        let sent = json!({"spec": {"replicas": 3, "strategy": {"canary": {"steps": [{"setWeight": 20}]}}}});
        let same = json!({"spec": {"replicas": 3, "extra": true,
            "strategy": {"canary": {"steps": [{"setWeight": 20}], "maxSurge": "25%"}}}, "status": {}});
        assert!(differences(&sent, &same).is_empty());

        let changed = json!({"spec": {"replicas": 2, "strategy": {"canary": {"steps": []}}}});
        let diffs = differences(&sent, &changed);
        assert_eq!(diffs.len(), 2, "{diffs:?}");
        assert!(
            diffs[0].starts_with(".spec.replicas: sent 3, read back 2"),
            "{diffs:?}"
        );
        assert!(
            diffs[1].starts_with(".spec.strategy.canary.steps:"),
            "{diffs:?}"
        );

        let missing = json!({"spec": {}});
        assert_eq!(
            differences(&json!({"spec": {"paused": true}}), &missing),
            vec![".spec.paused: sent true, missing in what was read back"]
        );
        assert!(differences(&json!({"a": 1}), &json!({"a": 1.0})).is_empty());
    }
}
