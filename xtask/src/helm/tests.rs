//! Chart tests: `charts/rollouts` rendered with the built Helm (built on first use, then taken
//! from the cache), the objects parsed and checked, and `helm lint --strict`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::*;

/// The namespace every render uses.
const NAMESPACE: &str = "argo-rollouts";

/// One permission the controller needs: API group, resource, verb.
type Permission = (&'static str, &'static str, &'static str);

/// What the controller does with the namespaced kinds (read from crates/rollouts-controller,
/// its metric providers and traffic routers): the role must allow every one of them.
const NAMESPACED_PERMISSIONS: &[Permission] = &[
    ("argoproj.io", "rollouts", "get"),
    ("argoproj.io", "rollouts", "list"),
    ("argoproj.io", "rollouts", "watch"),
    ("argoproj.io", "rollouts", "patch"),
    ("argoproj.io", "rollouts/status", "patch"),
    ("argoproj.io", "analysisruns", "list"),
    ("argoproj.io", "analysisruns", "watch"),
    ("argoproj.io", "analysisruns", "get"),
    ("argoproj.io", "analysisruns", "create"),
    ("argoproj.io", "analysisruns", "patch"),
    ("argoproj.io", "analysisruns", "delete"),
    ("argoproj.io", "experiments", "list"),
    ("argoproj.io", "experiments", "watch"),
    ("argoproj.io", "experiments", "get"),
    ("argoproj.io", "experiments", "create"),
    ("argoproj.io", "experiments", "patch"),
    ("argoproj.io", "analysistemplates", "get"),
    ("apps", "replicasets", "list"),
    ("apps", "replicasets", "watch"),
    ("apps", "replicasets", "get"),
    ("apps", "replicasets", "create"),
    ("apps", "replicasets", "patch"),
    ("apps", "replicasets", "delete"),
    ("apps", "deployments", "list"),
    ("apps", "deployments", "watch"),
    ("apps", "deployments", "get"),
    ("apps", "deployments", "patch"),
    ("", "services", "list"),
    ("", "services", "watch"),
    ("", "services", "patch"),
    ("", "services", "get"),
    ("", "services", "create"),
    ("", "services", "delete"),
    ("", "pods", "list"),
    ("", "pods", "patch"),
    ("", "pods/eviction", "create"),
    ("", "events", "create"),
    ("", "events", "patch"),
    ("", "secrets", "get"),
    ("batch", "jobs", "list"),
    ("batch", "jobs", "watch"),
    ("batch", "jobs", "get"),
    ("batch", "jobs", "create"),
    ("batch", "jobs", "delete"),
    ("networking.k8s.io", "ingresses", "get"),
    ("networking.k8s.io", "ingresses", "create"),
    ("networking.k8s.io", "ingresses", "patch"),
    ("networking.istio.io", "virtualservices", "get"),
    ("networking.istio.io", "virtualservices", "update"),
    ("networking.istio.io", "destinationrules", "get"),
    ("networking.istio.io", "destinationrules", "update"),
    ("split.smi-spec.io", "trafficsplits", "get"),
    ("split.smi-spec.io", "trafficsplits", "create"),
    ("split.smi-spec.io", "trafficsplits", "patch"),
    ("apisix.apache.org", "apisixroutes", "get"),
    ("apisix.apache.org", "apisixroutes", "create"),
    ("apisix.apache.org", "apisixroutes", "patch"),
    ("apisix.apache.org", "apisixroutes", "delete"),
    ("traefik.io", "traefikservices", "get"),
    ("traefik.io", "traefikservices", "patch"),
    ("traefik.containo.us", "traefikservices", "patch"),
    ("appmesh.k8s.aws", "virtualservices", "get"),
    ("appmesh.k8s.aws", "virtualrouters", "get"),
    ("appmesh.k8s.aws", "virtualrouters", "patch"),
    ("appmesh.k8s.aws", "virtualnodes", "get"),
    ("appmesh.k8s.aws", "virtualnodes", "patch"),
    ("getambassador.io", "mappings", "get"),
    ("getambassador.io", "mappings", "create"),
    ("getambassador.io", "mappings", "patch"),
    ("getambassador.io", "mappings", "delete"),
    ("gateway.networking.k8s.io", "httproutes", "get"),
    ("gateway.networking.k8s.io", "httproutes", "patch"),
    ("gateway.networking.k8s.io", "grpcroutes", "get"),
    ("gateway.networking.k8s.io", "grpcroutes", "patch"),
];

/// The leader election Lease, in the controller's namespace.
const LEASE_PERMISSIONS: &[Permission] = &[
    ("coordination.k8s.io", "leases", "get"),
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "patch"),
];

fn helm() -> Result<(Cache, PathBuf)> {
    let cache = Cache::from_env()?;
    let helm = ensure(&cache)?;
    Ok((cache, helm))
}

/// `helm template rollouts charts/rollouts -n argo-rollouts ARGS`: the rendered objects.
fn render(args: &[&str]) -> Result<Vec<Value>> {
    let (cache, helm) = helm()?;
    let chart = chart_dir();
    let chart = chart.to_str().context("the chart path is not UTF-8")?;
    let mut all = vec!["template", DEFAULT_RELEASE, chart, "--namespace", NAMESPACE];
    all.extend_from_slice(args);
    let text = output(&cache, &helm, &all)?;
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&text).context("helm template printed invalid YAML")?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// What Helm prints on its standard error for a render that must fail (only Helm's words: the
/// arguments, which name the values too, are not part of it).
fn render_error(args: &[&str]) -> String {
    let (cache, helm) = helm().expect("Helm is built");
    let out = helm_command(&cache, &helm)
        .args(["template", DEFAULT_RELEASE])
        .arg(chart_dir())
        .args(["--namespace", NAMESPACE])
        .args(args)
        .output()
        .expect("helm runs");
    assert!(
        !out.status.success(),
        "helm template {args:?} succeeded:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn kind_of(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn name_of(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

fn all_of<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| kind_of(d) == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| kind_of(d) == kind && name_of(d) == name)
        .collect();
    match found.as_slice() {
        [doc] => Ok(doc),
        other => bail!("{} {kind} named {name} (want exactly 1)", other.len()),
    }
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether a rule list allows `verb` on `group`/`resource` (with `*` wildcards).
fn allows(rules: &Value, (group, resource, verb): Permission) -> bool {
    rules.as_array().into_iter().flatten().any(|rule| {
        let has = |field: &str, want: &str| {
            strings(&rule[field])
                .iter()
                .any(|v| *v == want || *v == "*")
        };
        has("apiGroups", group) && has("resources", resource) && has("verbs", verb)
    })
}

fn missing<'a>(rules: &Value, wanted: &'a [Permission]) -> Vec<&'a Permission> {
    wanted.iter().filter(|p| !allows(rules, **p)).collect()
}

fn controller_container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn args_of(deployment: &Value) -> Vec<&str> {
    strings(&controller_container(deployment)["args"])
}

#[test]
fn default_values_render_a_cluster_install() -> Result<()> {
    let docs = render(&[])?;
    let sa = one(&docs, "ServiceAccount", "rollouts")?;
    assert_eq!(sa["metadata"]["namespace"], NAMESPACE);

    let deployment = one(&docs, "Deployment", "rollouts")?;
    assert_eq!(deployment["metadata"]["namespace"], NAMESPACE);
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "rollouts");
    let selector = &deployment["spec"]["selector"]["matchLabels"];
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (key, value) in selector.as_object().context("no selector labels")? {
        assert_eq!(&pod_labels[key], value, "pod label {key}");
    }
    let container = controller_container(deployment);
    let app_version = "0.1.0";
    assert_eq!(
        container["image"],
        format!("ghcr.io/rollouts-rs/rollouts-controller:{app_version}")
    );
    let args = args_of(deployment);
    for want in [
        "--healthzPort=8080",
        "--metricsport=8090",
        "--loglevel=info",
        "--logformat=text",
        "--leader-elect=true",
    ] {
        assert!(args.contains(&want), "{want} missing from {args:?}");
    }
    assert!(
        !args.iter().any(|a| a.starts_with("--namespaced")),
        "{args:?}"
    );
    assert!(
        !args.iter().any(|a| a.starts_with("--instance-id")),
        "{args:?}"
    );
    let ports: Vec<(&str, i64)> = container["ports"]
        .as_array()
        .context("no container ports")?
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default(),
                p["containerPort"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(ports, [("metrics", 8090), ("healthz", 8080)]);
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(container[probe]["httpGet"]["path"], "/healthz", "{probe}");
        assert_eq!(container[probe]["httpGet"]["port"], "healthz", "{probe}");
    }
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    let env = &container["env"][0];
    assert_eq!(env["name"], "POD_NAMESPACE");
    assert_eq!(
        env["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );

    // Cluster-wide permissions, bound to the ServiceAccount.
    let role = one(&docs, "ClusterRole", "rollouts")?;
    assert_eq!(
        missing(&role["rules"], NAMESPACED_PERMISSIONS),
        Vec::<&Permission>::new()
    );
    assert!(allows(
        &role["rules"],
        ("argoproj.io", "clusteranalysistemplates", "get")
    ));
    // Nothing the controller does not use.
    for unused in [
        ("", "secrets", "list"),
        ("", "secrets", "create"),
        ("", "configmaps", "get"),
        ("argoproj.io", "rollouts", "delete"),
        ("coordination.k8s.io", "leases", "get"),
    ] {
        assert!(
            !allows(&role["rules"], unused),
            "ClusterRole allows {unused:?}"
        );
    }
    let binding = one(&docs, "ClusterRoleBinding", "rollouts")?;
    assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
    assert_eq!(binding["roleRef"]["name"], "rollouts");
    assert_eq!(binding["subjects"][0]["kind"], "ServiceAccount");
    assert_eq!(binding["subjects"][0]["name"], "rollouts");
    assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
    assert!(
        all_of(&docs, "Role")
            .iter()
            .all(|r| name_of(r) != "rollouts")
    );

    // The aggregated roles.
    for (role, verb) in [("view", "list"), ("edit", "patch"), ("admin", "delete")] {
        let aggregate = one(
            &docs,
            "ClusterRole",
            &format!("rollouts-aggregate-to-{role}"),
        )?;
        let label = format!("rbac.authorization.k8s.io/aggregate-to-{role}");
        assert_eq!(aggregate["metadata"]["labels"][&label], "true");
        assert!(
            allows(&aggregate["rules"], ("argoproj.io", "rollouts", verb)),
            "{role}"
        );
    }
    let view = one(&docs, "ClusterRole", "rollouts-aggregate-to-view")?;
    assert!(!allows(
        &view["rules"],
        ("argoproj.io", "rollouts", "patch")
    ));

    // The metrics Service selects the controller pods.
    let service = one(&docs, "Service", "rollouts-metrics")?;
    assert_eq!(&service["spec"]["selector"], selector);
    assert_eq!(service["spec"]["ports"][0]["port"], 8090);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    assert!(all_of(&docs, "ServiceMonitor").is_empty());
    assert!(all_of(&docs, "PodDisruptionBudget").is_empty());

    // CRDs stay in crds/ (installed by `helm install`), not in the templates.
    assert!(all_of(&docs, "CustomResourceDefinition").is_empty());
    let with_crds = render(&["--include-crds"])?;
    let mut crds: Vec<&str> = all_of(&with_crds, "CustomResourceDefinition")
        .into_iter()
        .map(name_of)
        .collect();
    crds.sort_unstable();
    assert_eq!(
        crds,
        [
            "analysisruns.argoproj.io",
            "analysistemplates.argoproj.io",
            "clusteranalysistemplates.argoproj.io",
            "experiments.argoproj.io",
            "rollouts.argoproj.io",
        ]
    );
    Ok(())
}

#[test]
fn a_namespaced_install_has_a_role_and_the_namespaced_flag() -> Result<()> {
    let docs = render(&["--set", "clusterInstall=false"])?;
    let deployment = one(&docs, "Deployment", "rollouts")?;
    let args = args_of(deployment);
    assert!(args.contains(&"--namespaced"), "{args:?}");

    let role = one(&docs, "Role", "rollouts")?;
    assert_eq!(role["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        missing(&role["rules"], NAMESPACED_PERMISSIONS),
        Vec::<&Permission>::new()
    );
    // A Role cannot grant a cluster-scoped kind.
    assert!(!allows(
        &role["rules"],
        ("argoproj.io", "clusteranalysistemplates", "get")
    ));
    let binding = one(&docs, "RoleBinding", "rollouts")?;
    assert_eq!(binding["metadata"]["namespace"], NAMESPACE);
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["roleRef"]["name"], "rollouts");
    assert_eq!(binding["subjects"][0]["name"], "rollouts");

    // No cluster-wide grant for the controller (only the aggregated user roles remain).
    assert!(all_of(&docs, "ClusterRoleBinding").is_empty());
    let cluster_roles: Vec<&str> = all_of(&docs, "ClusterRole")
        .into_iter()
        .map(name_of)
        .collect();
    assert!(
        cluster_roles
            .iter()
            .all(|n| n.starts_with("rollouts-aggregate-to-")),
        "{cluster_roles:?}"
    );
    let without_aggregates = render(&[
        "--set",
        "clusterInstall=false",
        "--set",
        "createClusterAggregateRoles=false",
    ])?;
    assert!(all_of(&without_aggregates, "ClusterRole").is_empty());
    Ok(())
}

#[test]
fn leader_election_flags_and_lease_role() -> Result<()> {
    let docs = render(&[
        "--set",
        "controller.leaderElection.leaseDuration=30s",
        "--set",
        "controller.leaderElection.retryPeriod=500ms",
        "--set",
        "instanceID=blue",
    ])?;
    let args = args_of(one(&docs, "Deployment", "rollouts")?);
    for want in [
        "--leader-elect=true",
        "--leader-election-lease-duration=30s",
        "--leader-election-retry-period=500ms",
        "--instance-id=blue",
    ] {
        assert!(args.contains(&want), "{want} missing from {args:?}");
    }
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("--leader-election-renew-deadline"))
    );

    // The Lease is granted in the release namespace only, whatever the install mode.
    for cluster_install in ["true", "false"] {
        let docs = render(&["--set", &format!("clusterInstall={cluster_install}")])?;
        let role = one(&docs, "Role", "rollouts-leader-election")?;
        assert_eq!(role["metadata"]["namespace"], NAMESPACE);
        assert_eq!(
            missing(&role["rules"], LEASE_PERMISSIONS),
            Vec::<&Permission>::new()
        );
        let binding = one(&docs, "RoleBinding", "rollouts-leader-election")?;
        assert_eq!(binding["roleRef"]["name"], "rollouts-leader-election");
        assert_eq!(binding["subjects"][0]["name"], "rollouts");
    }

    // One replica may run without leader election; two may not.
    let single = render(&[
        "--set",
        "controller.replicas=1",
        "--set",
        "controller.leaderElection.enabled=false",
    ])?;
    let args = args_of(one(&single, "Deployment", "rollouts")?);
    assert!(args.contains(&"--leader-elect=false"), "{args:?}");
    let err = render_error(&["--set", "controller.leaderElection.enabled=false"]);
    assert!(err.contains("controller.leaderElection.enabled"), "{err}");
    let err = render_error(&[
        "--set-json",
        r#"controller.extraArgs=["--leader-elect=false"]"#,
    ]);
    assert!(err.contains("controller.extraArgs"), "{err}");
    Ok(())
}

#[test]
fn the_values_schema_rejects_bad_values_naming_them() -> Result<()> {
    // Helm names the value by its JSON pointer and says what is wrong with it.
    for (set, field, why) in [
        (
            "controller.logging.level=loud",
            "/controller/logging/level",
            "must be one of",
        ),
        ("controller.replicas=-1", "/controller/replicas", "minimum"),
        (
            "controller.containerPorts.metrics=70000",
            "/controller/containerPorts/metrics",
            "maximum",
        ),
        (
            "controller.leaderElection.leaseDuration=soon",
            "/controller/leaderElection/leaseDuration",
            "does not match pattern",
        ),
        (
            "instanceID=not/valid",
            "/instanceID",
            "does not match pattern",
        ),
    ] {
        let err = render_error(&["--set", set]);
        assert!(
            err.contains("don't meet the specifications of the schema"),
            "{set}: {err}"
        );
        assert!(
            err.contains(&format!("at '{field}'")),
            "{set}: the error does not name {field}: {err}"
        );
        assert!(
            err.contains(why),
            "{set}: the error does not say {why:?}: {err}"
        );
    }
    let err = render_error(&["--set-string", "clusterInstall=yes"]);
    assert!(
        err.contains("at '/clusterInstall'") && err.contains("boolean"),
        "{err}"
    );
    // A valid file passes the same schema.
    render(&[
        "--set",
        "controller.logging.level=debug",
        "--set",
        "instanceID=blue",
    ])?;
    Ok(())
}

#[test]
fn optional_objects_and_value_overrides() -> Result<()> {
    let docs = render(&[
        "--set",
        "controller.metrics.serviceMonitor.enabled=true",
        "--set",
        "controller.metrics.serviceMonitor.interval=15s",
        "--set",
        "controller.pdb.enabled=true",
        "--set",
        "controller.containerPorts.metrics=9100",
        "--set",
        "controller.image.tag=dev",
        "--set",
        "providerRBAC.providers.istio=false",
        "--set-json",
        r#"controller.extraArgs=["--rollout-threads=20"]"#,
        "--set",
        "podLabels.team=a",
        "--set",
        "controller.podLabels.tier=b",
    ])?;
    let monitor = one(&docs, "ServiceMonitor", "rollouts")?;
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["interval"], "15s");
    let pdb = one(&docs, "PodDisruptionBudget", "rollouts")?;
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);

    let deployment = one(&docs, "Deployment", "rollouts")?;
    let container = controller_container(deployment);
    assert_eq!(
        container["image"],
        "ghcr.io/rollouts-rs/rollouts-controller:dev"
    );
    let args = args_of(deployment);
    assert!(args.contains(&"--metricsport=9100"), "{args:?}");
    assert_eq!(args.last(), Some(&"--rollout-threads=20"), "{args:?}");
    assert_eq!(container["ports"][0]["containerPort"], 9100);
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["team"], "a");
    assert_eq!(labels["tier"], "b");

    let role = one(&docs, "ClusterRole", "rollouts")?;
    assert!(!allows(
        &role["rules"],
        ("networking.istio.io", "virtualservices", "get")
    ));
    assert!(allows(
        &role["rules"],
        ("split.smi-spec.io", "trafficsplits", "create")
    ));

    let err = render_error(&[
        "--set",
        "controller.metrics.enabled=false",
        "--set",
        "controller.metrics.serviceMonitor.enabled=true",
    ]);
    assert!(
        err.contains("controller.metrics.serviceMonitor.enabled"),
        "{err}"
    );
    Ok(())
}

#[test]
fn helm_lint_strict_passes() -> Result<()> {
    let (cache, helm) = helm()?;
    let chart = chart_dir();
    let chart = chart.to_str().context("the chart path is not UTF-8")?;
    output(&cache, &helm, &["lint", "--strict", chart])?;
    output(
        &cache,
        &helm,
        &["lint", "--strict", chart, "--set", "clusterInstall=false"],
    )?;
    Ok(())
}

#[test]
fn template_takes_an_optional_release_name() {
    assert_eq!(
        release_and_flags(&["-n", "x"]),
        (DEFAULT_RELEASE, &["-n", "x"][..])
    );
    assert_eq!(
        release_and_flags(&["r", "-n", "x"]),
        ("r", &["-n", "x"][..])
    );
    assert_eq!(release_and_flags(&[]), (DEFAULT_RELEASE, &[][..]));
}

#[test]
fn the_client_go_minor_is_read_from_go_mod() {
    let go_mod = "module helm.sh/helm/v3\n\nrequire (\n\tk8s.io/api v0.35.1\n\tk8s.io/client-go v0.35.1\n)\n";
    assert_eq!(client_go_minor(go_mod), Some(35));
    assert_eq!(
        client_go_minor("require k8s.io/client-go v0.33.0\n"),
        Some(33)
    );
    assert_eq!(client_go_minor("module x\n"), None);
}
