//! End-to-end tests against a real control plane: the harness.
//!
//! The tests live in one test binary (`e2e/tests/e2e/`, one module per area) that runs under our
//! own harness ([`run`], built on libtest-mimic, so the usual `cargo test` arguments work: a
//! name filter, `--exact`, `--list`, `--test-threads`). The harness
//!
//! * uses the cluster named by `ROLLOUTS_E2E_KUBECONFIG` if it is set, or else starts one with
//!   `cargo xtask cluster up` in a state directory of its own, once per run, and stops it at the
//!   end (then checks that none of its processes is left);
//! * gives each test its own namespace, deleted when the test ends, whether it passed, failed,
//!   panicked or timed out;
//! * installs our CRDs from `charts/rollouts/crds/` (server-side apply) for the tests that ask.
//!
//! A test is an `async fn(TestContext) -> anyhow::Result<()>`, registered with [`test!`].

mod cluster;
pub mod controller;
mod harness;
pub mod manifests;
pub mod rollouts;
pub mod servers;
pub mod wait;

pub use harness::{Test, TestContext, run};

/// Environment variable naming the kubeconfig of a running cluster to test against.
pub const KUBECONFIG_ENV: &str = "ROLLOUTS_E2E_KUBECONFIG";

/// The pod label that makes the test cluster's KWOK fail a pod (containers exit 1, phase
/// `Failed`); see `docs/development.md`.
pub const FAIL_LABEL: &str = "rollouts-e2e/fail";

/// Registers an `async fn(TestContext) -> anyhow::Result<()>` as a test named
/// `<module>::<function>` (without the crate name).
#[macro_export]
macro_rules! test {
    ($f:path) => {
        $crate::Test::new(
            $crate::test_name(module_path!(), stringify!($f)),
            |ctx| -> ::futures::future::BoxFuture<'static, ::anyhow::Result<()>> {
                ::std::boxed::Box::pin($f(ctx))
            },
        )
    };
}

/// `e2e::cluster` + `version_is_1_34` → `cluster::version_is_1_34`.
#[doc(hidden)]
pub fn test_name(module_path: &str, function: &str) -> String {
    let module = module_path.split_once("::").map_or("", |(_, rest)| rest);
    let function = function.rsplit("::").next().unwrap_or(function).trim();
    if module.is_empty() {
        function.to_string()
    } else {
        format!("{module}::{function}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_names_drop_the_crate_name() {
        assert_eq!(
            test_name("e2e::cluster", "job_completes"),
            "cluster::job_completes"
        );
        assert_eq!(test_name("e2e", "top"), "top");
        assert_eq!(test_name("e2e::a::b", "x :: y"), "a::b::y");
    }
}
