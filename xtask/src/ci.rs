//! `cargo xtask ci`: everything CI checks, in order.

use std::process::Command;

use anyhow::Result;

use crate::{project_root, util};

pub fn run(_args: &[String]) -> Result<()> {
    let root = project_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    util::step("cargo fmt --check");
    util::timed("fmt", || {
        util::run(
            Command::new(&cargo)
                .current_dir(&root)
                .args(["fmt", "--all", "--", "--check"]),
        )
    })?;
    util::step("cargo clippy --workspace --all-targets -- -D warnings");
    util::timed("clippy", || {
        util::run(Command::new(&cargo).current_dir(&root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    util::step("cargo test --workspace (unit and integration tests)");
    util::timed("tests", || {
        util::run(
            Command::new(&cargo)
                .current_dir(&root)
                .args(["test", "--workspace"]),
        )
    })?;
    Ok(())
}
