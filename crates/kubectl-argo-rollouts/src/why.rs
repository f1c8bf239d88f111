//! `why ROLLOUT`: what holds a rollout now, from the engine's explanation
//! (`rollouts_engine::explain`), which does not exist yet; until it does, the command says so.

use std::io::Write;

use crate::client::Kube;
use crate::error::Error;

/// `why NAME`.
pub async fn why(_kube: &Kube, _name: &str, _out: &mut dyn Write) -> Result<(), Error> {
    Err(Error::Unsupported(
        "why needs the engine's explanation (rollouts_engine::explain), which this build does not have yet".into(),
    ))
}
