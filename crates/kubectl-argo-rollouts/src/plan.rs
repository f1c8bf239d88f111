//! `plan -f FILE [--from live]`: simulate a rollout before applying it.
//!
//! The simulation itself belongs to the engine (`rollouts_engine::simulate`), which does not
//! exist yet; until it does, the command says so instead of guessing.

use std::io::Write;
use std::path::Path;

use crate::client::Kube;
use crate::error::Error;

const NEEDS: &str = "plan needs the engine's simulator (rollouts_engine::simulate), which this build does not have yet";

/// `plan -f FILE` from scratch.
pub fn plan_file(_path: &Path, _live: Option<()>, _out: &mut dyn Write) -> Result<(), Error> {
    Err(Error::Unsupported(NEEDS.into()))
}

/// `plan -f FILE --from live`.
pub async fn plan_live(_kube: &Kube, _path: &Path, _out: &mut dyn Write) -> Result<(), Error> {
    Err(Error::Unsupported(NEEDS.into()))
}
