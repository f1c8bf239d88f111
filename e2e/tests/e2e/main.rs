//! The e2e test binary: every module's tests, run by the harness of the `e2e` crate.
//!
//! Run them all with `cargo test -p e2e`, one with `cargo test -p e2e -- cluster::job_completes`
//! (a name filter, as usual), against a running cluster with
//! `ROLLOUTS_E2E_KUBECONFIG=<kubeconfig> cargo test -p e2e`. See docs/development.md.

use std::process::ExitCode;

mod analysis;
mod bluegreen;
mod canary;
mod cli;
mod cluster;
mod controller_process;
mod crds;
mod experiment;
mod helm;
mod job_provider;
mod router_alb;
mod router_ambassador;
mod router_apisix;
mod router_appmesh;
mod router_crds;
mod router_gatewayapi;
mod router_istio;
mod router_nginx;
mod router_smi;
mod router_support;
mod router_traefik;
mod router_verify;

fn main() -> ExitCode {
    let mut tests = Vec::new();
    tests.extend(cluster::tests());
    tests.extend(crds::tests());
    tests.extend(job_provider::tests());
    tests.extend(router_istio::tests());
    tests.extend(router_nginx::tests());
    tests.extend(router_smi::tests());
    tests.extend(router_alb::tests());
    tests.extend(router_apisix::tests());
    tests.extend(router_traefik::tests());
    tests.extend(router_ambassador::tests());
    tests.extend(router_gatewayapi::tests());
    tests.extend(router_appmesh::tests());
    tests.extend(router_verify::tests());
    tests.extend(canary::tests());
    tests.extend(bluegreen::tests());
    tests.extend(analysis::tests());
    tests.extend(experiment::tests());
    tests.extend(controller_process::tests());
    tests.extend(cli::tests());
    tests.extend(helm::tests());
    e2e::run(tests)
}
