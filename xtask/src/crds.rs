//! `cargo xtask crds [--check]`: writes the CRD manifests generated from `rollouts-api` to
//! `charts/rollouts/crds/`, one file per kind; `--check` only compares and fails when a
//! committed file is missing, different or left over.

use std::{collections::BTreeSet, fs, path::Path};

use anyhow::{Context, Result, bail};

use crate::{project_root, util};

/// Where the generated files live, relative to the workspace root.
pub const DIR: &str = "charts/rollouts/crds";

pub fn run(args: &[String]) -> Result<()> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        other => bail!("unexpected arguments {other:?}; usage: cargo xtask crds [--check]"),
    };
    let dir = project_root().join(DIR);
    let files = rollouts_api::crds::files().context("rendering the CRDs")?;
    if check {
        let stale = stale_files(&dir, &files)?;
        if !stale.is_empty() {
            bail!(
                "{DIR} is out of date ({}); run `cargo xtask crds`",
                stale.join(", ")
            );
        }
        util::step(&format!("{DIR}: {} files up to date", files.len()));
        return Ok(());
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, yaml) in &files {
        let path = dir.join(name);
        fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
    }
    for name in leftovers(&dir, &files)? {
        let path = dir.join(&name);
        fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    util::step(&format!("wrote {} files to {DIR}", files.len()));
    Ok(())
}

/// Names of the files that differ from what would be generated, are missing, or are extra.
fn stale_files(dir: &Path, files: &[(String, String)]) -> Result<Vec<String>> {
    let mut stale = Vec::new();
    for (name, yaml) in files {
        let path = dir.join(name);
        match fs::read_to_string(&path) {
            Ok(text) if text == *yaml => {}
            Ok(_) => stale.push(format!("{name} differs")),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                stale.push(format!("{name} missing"));
            }
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }
    stale.extend(
        leftovers(dir, files)?
            .into_iter()
            .map(|n| format!("{n} not generated")),
    );
    Ok(stale)
}

/// YAML files in `dir` that the generator does not produce.
fn leftovers(dir: &Path, files: &[(String, String)]) -> Result<Vec<String>> {
    let wanted: BTreeSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let mut extra = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(extra),
        Err(err) => return Err(err).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && !wanted.contains(name.as_str()) {
            extra.push(name);
        }
    }
    extra.sort();
    Ok(extra)
}
