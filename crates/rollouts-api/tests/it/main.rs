//! Integration tests of `rollouts-api`, in one test binary (each binary links kube).

#![recursion_limit = "256"]

mod crds;
mod decode;
mod examples;
mod roundtrip;
mod step_json;

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}
