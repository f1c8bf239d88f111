//! The facade links exactly the plugins its features enable: the `describe` example is built and
//! run with several feature sets and must list exactly the matching providers.
//!
//! The builds use the workspace's target directory, so they reuse its dependencies: the first run
//! compiles a few crates per feature set (about 3 minutes on a busy 2-core machine); runs with an
//! unchanged tree take a second. (A target directory of its own would cost a second cold build of
//! the whole dependency stack, 12 minutes measured, in every fresh CI clone.)

use std::process::Command;

fn describe(features: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "run",
        "--quiet",
        "-p",
        "rollouts-plugins",
        "--example",
        "describe",
        "--no-default-features",
    ]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let out = cmd.output().expect("running cargo");
    assert!(
        out.status.success(),
        "cargo run with features {features:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn each_feature_set_links_exactly_its_plugins() {
    assert_eq!(
        describe(&["metric-web"]),
        "traffic routers: (none)\nmetric providers: web\n"
    );
    assert_eq!(
        describe(&["metric-prometheus", "metric-job"]),
        "traffic routers: (none)\nmetric providers: job, prometheus\n"
    );
    assert_eq!(
        describe(&["all-metrics"]),
        "traffic routers: (none)\nmetric providers: cloudWatch, datadog, graphite, influxdb, job, kayenta, newRelic, prometheus, skywalking, wavefront, web\n"
    );
    assert_eq!(
        describe(&[]),
        "traffic routers: (none)\nmetric providers: (none)\n"
    );
}

#[test]
fn the_default_build_of_this_test_has_every_provider() {
    // This test binary is built with the default features (all plugins) and references the facade.
    let registry = rollouts_plugins::registry().expect("no duplicate names");
    assert_eq!(
        registry.provider_names(),
        [
            "cloudWatch",
            "datadog",
            "graphite",
            "influxdb",
            "job",
            "kayenta",
            "newRelic",
            "prometheus",
            "skywalking",
            "wavefront",
            "web"
        ]
    );
}
