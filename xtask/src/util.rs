//! Small helpers shared by the tasks: running commands and saying what is being done.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

/// Prints a step header, the way every task announces what it is about to do.
pub fn step(what: &str) {
    eprintln!("==> {what}");
}

/// Runs `cmd`, inheriting stdio, and fails with the command line when it does not succeed.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

/// Runs `f` and prints how long it took.
pub fn timed<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let start = Instant::now();
    let out = f();
    eprintln!("    {what}: {}", human(start.elapsed()));
    out
}

/// `1m 23s`, `4.2s`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
