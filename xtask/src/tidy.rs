//! `cargo xtask tidy`: the architecture rules of `docs/architecture.md`, checked mechanically.
//!
//! The same checks run as unit tests of the xtask crate, so `cargo test --workspace` (and therefore
//! `cargo xtask ci`) fails as soon as a change breaks one of them:
//!
//! - dependency direction between our crates (read from `cargo metadata`);
//! - the pure engine never reaches a kube client, tokio or an HTTP stack, even transitively;
//! - `rollouts-api` has no Cargo features;
//! - library crates do not depend on `anyhow` (binaries, xtask and tests may);
//! - every crate inherits the workspace lints;
//! - no test is skipped with an `ignore` attribute, and every Rust source file starts with a `//!` doc comment.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::project_root;

pub fn run(_args: &[String]) -> Result<()> {
    let problems = check_all()?;
    if problems.is_empty() {
        eprintln!("tidy: all architecture rules hold");
        return Ok(());
    }
    for p in &problems {
        eprintln!("tidy: {p}");
    }
    bail!("{} architecture rule(s) broken", problems.len())
}

/// Runs every check and returns one line per broken rule.
pub fn check_all() -> Result<Vec<String>> {
    let meta = Metadata::load()?;
    let mut problems = Vec::new();
    problems.extend(meta.dependency_rules());
    problems.extend(meta.engine_is_pure()?);
    problems.extend(meta.lints_inherited()?);
    problems.extend(source_rules(&project_root())?);
    Ok(problems)
}

/// What we need from `cargo metadata`: our packages and their declared dependencies.
struct Metadata {
    /// Workspace packages by name.
    packages: BTreeMap<String, Package>,
}

struct Package {
    manifest: PathBuf,
    /// Direct normal (non-dev, non-build) dependencies: name -> optional?
    deps: BTreeMap<String, bool>,
    features: BTreeSet<String>,
    has_bin: bool,
}

/// The kind of a workspace crate, which decides what it may depend on.
#[derive(Debug, PartialEq, Eq)]
enum Role {
    Api,
    Engine,
    Plugin,
    Facade,
    Router,
    Metric,
    Binary,
    Library,
    DevOnly,
}

fn role(name: &str, has_bin: bool) -> Role {
    match name {
        "rollouts-api" => Role::Api,
        "rollouts-engine" => Role::Engine,
        "rollouts-plugin" => Role::Plugin,
        "rollouts-plugins" => Role::Facade,
        "xtask" | "e2e" | "rollouts-test-support" | "rollouts-fake-plugins" => Role::DevOnly,
        n if n.starts_with("rollouts-router-") => Role::Router,
        n if n.starts_with("rollouts-metric-") => Role::Metric,
        _ if has_bin => Role::Binary,
        _ => Role::Library,
    }
}

fn is_plugin_crate(name: &str) -> bool {
    name.starts_with("rollouts-router-") || name.starts_with("rollouts-metric-")
}

impl Metadata {
    fn load() -> Result<Self> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(project_root())
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .context("running cargo metadata")?;
        if !out.status.success() {
            bail!(
                "cargo metadata failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let v: Value = serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
        let members: BTreeSet<&str> = v["workspace_members"]
            .as_array()
            .context("workspace_members")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut packages = BTreeMap::new();
        for p in v["packages"].as_array().context("packages")? {
            let id = p["id"].as_str().unwrap_or_default();
            let name = p["name"].as_str().unwrap_or_default().to_string();
            if !members.contains(id) {
                continue;
            }
            let deps = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["kind"].is_null())
                .map(|d| {
                    (
                        d["name"].as_str().unwrap_or_default().to_string(),
                        d["optional"].as_bool().unwrap_or(false),
                    )
                })
                .collect();
            let features = p["features"]
                .as_object()
                .map(|f| f.keys().cloned().collect())
                .unwrap_or_default();
            let has_bin = p["targets"].as_array().into_iter().flatten().any(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "bin"))
            });
            let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap_or_default());
            packages.insert(
                name,
                Package {
                    manifest,
                    deps,
                    features,
                    has_bin,
                },
            );
        }
        Ok(Self { packages })
    }

    fn dependency_rules(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, pkg) in &self.packages {
            let role = role(name, pkg.has_bin);
            for dep in pkg.deps.keys() {
                let ours = self.packages.contains_key(dep);
                let forbidden = match role {
                    Role::Api => ours,
                    Role::Engine => {
                        ours && !matches!(
                            dep.as_str(),
                            "rollouts-api" | "rollouts-expr" | "rollouts-hash"
                        )
                    }
                    Role::Plugin => ours && dep != "rollouts-api",
                    Role::Router | Role::Metric => {
                        ours && !matches!(dep.as_str(), "rollouts-api" | "rollouts-plugin")
                    }
                    Role::Facade => ours && !is_plugin_crate(dep) && dep != "rollouts-plugin",
                    Role::Library => is_plugin_crate(dep) || dep == "rollouts-test-support",
                    Role::Binary => dep == "rollouts-test-support",
                    Role::DevOnly => false,
                };
                if forbidden {
                    problems.push(format!(
                        "{name} ({role:?}) must not depend on {dep}: see the dependency rules in docs/architecture.md"
                    ));
                }
                if dep == "anyhow" && !matches!(role, Role::Binary | Role::DevOnly) {
                    problems.push(format!(
                        "{name} is a library crate and must not depend on anyhow: give it a thiserror enum"
                    ));
                }
            }
            if role == Role::Api && !pkg.features.is_empty() {
                problems.push(format!(
                    "rollouts-api must have no Cargo features (the schema is the same in every build); found {:?}",
                    pkg.features
                ));
            }
            if role == Role::Facade
                && pkg
                    .deps
                    .iter()
                    .any(|(dep, optional)| !optional && dep != "rollouts-plugin")
            {
                problems.push(
                    "rollouts-plugins may only have optional dependencies (one per plugin feature), besides rollouts-plugin"
                        .to_string(),
                );
            }
        }
        problems
    }

    /// The engine's whole dependency closure stays free of I/O stacks. `cargo metadata`'s resolve
    /// graph unifies features across the workspace (the controller turns on kube's runtime), so
    /// this asks `cargo tree`, which resolves the engine's own features.
    fn engine_is_pure(&self) -> Result<Vec<String>> {
        const IMPURE: &[&str] = &[
            "kube-client",
            "kube-runtime",
            "tokio",
            "hyper",
            "reqwest",
            "mio",
            "rollouts-plugin",
        ];
        if !self.packages.contains_key("rollouts-engine") {
            return Ok(Vec::new());
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(project_root())
            .args([
                "tree",
                "-p",
                "rollouts-engine",
                "-e",
                "normal",
                "--prefix",
                "none",
                "-f",
                "{p}",
            ])
            .output()
            .context("running cargo tree")?;
        if !out.status.success() {
            bail!(
                "cargo tree failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let reached: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect();
        Ok(reached
            .iter()
            .filter(|name| IMPURE.contains(&name.as_str()) || is_plugin_crate(name))
            .map(|name| {
                format!("rollouts-engine must stay pure, but its dependencies reach {name}")
            })
            .collect())
    }

    fn lints_inherited(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        for (name, pkg) in &self.packages {
            let text = fs::read_to_string(&pkg.manifest)
                .with_context(|| format!("reading {}", pkg.manifest.display()))?;
            let inherits = text.split("\n[").any(|section| {
                section.starts_with("lints]") && section.contains("workspace = true")
            });
            if !inherits {
                problems.push(format!(
                    "{name}: Cargo.toml must have `[lints] workspace = true`"
                ));
            }
        }
        Ok(problems)
    }
}

/// Rules over the Rust sources: module docs and no skipped tests.
fn source_rules(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "e2e"] {
        collect_rs(&root.join(dir), &mut files)?;
    }
    // Spelled in two halves so that this file does not trip its own check.
    let ignore_attr = ["#[", "ignore"].concat();
    for file in files {
        let text = fs::read_to_string(&file)?;
        let rel = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        if text
            .lines()
            .any(|l| l.trim_start().starts_with(&ignore_attr))
        {
            problems.push(format!(
                "{rel}: a test is skipped with {ignore_attr}]; a skipped test is not a passing test"
            ));
        }
        let generated = text.starts_with("// @generated") || text.starts_with("// Generated");
        let in_src = rel.contains("/src/");
        if in_src && !generated && !text.trim_start().starts_with("//!") {
            problems.push(format!(
                "{rel}: every module starts with a `//!` comment saying what it is for"
            ));
        }
    }
    Ok(problems)
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                collect_rs(&path, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architecture_rules_hold() {
        let problems = check_all().expect("tidy checks could not run");
        assert!(
            problems.is_empty(),
            "architecture rules broken:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn roles_follow_package_names() {
        assert_eq!(role("rollouts-router-istio", false), Role::Router);
        assert_eq!(role("rollouts-metric-web", false), Role::Metric);
        assert_eq!(role("rollouts-engine", false), Role::Engine);
        assert_eq!(role("rollouts-controller", true), Role::Binary);
        assert_eq!(role("rollouts-expr", false), Role::Library);
    }

    #[test]
    fn source_rules_catch_missing_docs_and_skipped_tests() {
        let dir = std::env::temp_dir().join(format!("tidy-selftest-{}", std::process::id()));
        let src = dir.join("crates/demo/src");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("lib.rs"), "pub fn f() {}\n").unwrap();
        fs::write(
            src.join("ok.rs"),
            format!("//! Fine.\n{}]\nfn t() {{}}\n", ["#[", "ignore"].concat()),
        )
        .unwrap();
        let problems = source_rules(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("lib.rs") && p.contains("//!"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("ok.rs") && p.contains("skipped"))
        );
    }
}
