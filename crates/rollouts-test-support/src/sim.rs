//! The in-memory world lives in the engine (`rollouts_engine::sim`), where `simulate` uses it;
//! it is re-exported here so tests keep importing it from the test-support crate.

pub use rollouts_engine::sim::*;
