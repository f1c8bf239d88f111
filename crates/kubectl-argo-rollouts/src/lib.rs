//! `kubectl-argo-rollouts`, the kubectl plugin of rollouts-rs: a drop-in replacement for Argo
//! Rollouts' plugin (same commands, flags, patches and output), plus `plan` and `why`.
//!
//! The library holds everything but process setup:
//! - [`cli`]: the command line (clap);
//! - [`client`]: connecting as kubectl does (kubeconfig, context, namespace, override flags);
//! - [`commands`]: each command as an async function over a [`client::Kube`] and writers;
//! - [`info`], [`tree`], [`list`]: what `get` and `list` show, as pure functions of objects;
//! - [`patches`]: the request bodies of the user operations (Argo's, byte for byte in meaning);
//! - [`yaml`], [`lint`]: manifests with field lines, strict decoding and offline validation;
//! - [`plan`], [`why`]: the simulation and the explanation (beyond Argo);
//! - [`error`]: one-line errors and exit codes.
//!
//! `main.rs` installs the TLS crypto provider, parses the command line, runs it and turns an
//! error into one line on stderr and an exit code.

pub mod cli;
pub mod client;
pub mod commands;
pub mod error;
pub mod humanize;
pub mod info;
pub mod lint;
pub mod list;
pub mod patches;
pub mod plan;
pub mod tree;
pub mod why;
pub mod yaml;

pub use error::Error;
