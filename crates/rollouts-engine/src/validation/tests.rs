//! Validation messages.

use super::*;

fn rollout(spec: serde_json::Value) -> Rollout {
    rollouts_api::decode(&serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": spec,
    }))
    .expect("valid test manifest")
}

fn base(strategy: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}},
        "strategy": strategy,
    })
}

fn first_error(strategy: serde_json::Value) -> String {
    validate(&rollout(base(strategy)))
        .first()
        .map(ToString::to_string)
        .unwrap_or_default()
}

#[test]
fn valid_canary_has_no_errors() {
    assert_eq!(
        first_error(
            serde_json::json!({"canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "1h"}}]}})
        ),
        ""
    );
}

#[test]
fn set_weight_out_of_range_names_the_step() {
    assert_eq!(
        first_error(
            serde_json::json!({"canary": {"steps": [{"pause": {}}, {"pause": {}}, {"setWeight": 200}]}})
        ),
        "spec.strategy.canary.steps[2].setWeight: Invalid value: 200: SetWeight needs to be between 0 and 100"
    );
}

#[test]
fn invalid_pause_duration() {
    assert_eq!(
        first_error(serde_json::json!({"canary": {"steps": [{"pause": {"duration": "1d"}}]}})),
        "spec.strategy.canary.steps[0].pause.duration: Invalid value: -1: Duration needs to be greater than 0"
    );
}

#[test]
fn both_fenceposts_zero() {
    assert_eq!(
        first_error(serde_json::json!({"canary": {"maxSurge": 0, "maxUnavailable": "0%"}})),
        "spec.strategy.canary.maxSurge: Invalid value: 0: MaxSurge and MaxUnavailable both can not be zero"
    );
}

#[test]
fn empty_step_and_multiple_types() {
    assert!(
        first_error(serde_json::json!({"canary": {"steps": [{}]}}))
            .starts_with("spec.strategy.canary.steps[0]: Invalid value: \"step.Experiment: true")
    );
    assert!(first_error(serde_json::json!({"canary": {"steps": [{"setWeight": 10, "pause": {}}]}}))
        .ends_with("Step must have one of the following set: experiment, setWeight, setCanaryScale, plugin or pause"));
}

#[test]
fn traffic_routing_rules() {
    assert_eq!(
        first_error(
            serde_json::json!({"canary": {"trafficRouting": {"nginx": {"stableIngress": "i"}}}})
        ),
        "spec.strategy.canary.stableService: Invalid value: \"\": Canary service and Stable service must to be set to use Traffic Routing"
    );
    assert_eq!(
        first_error(serde_json::json!({"canary": {"scaleDownDelaySeconds": 5}})),
        "spec.strategy.canary.scaleDownDelaySeconds: Invalid value: 5: Canary scaleDownDelaySeconds can only be used with traffic routing"
    );
    assert_eq!(
        first_error(
            serde_json::json!({"canary": {"steps": [{"setCanaryScale": {"replicas": 1}}]}})
        ),
        "spec.strategy.canary.trafficRouting: Required value: SetCanaryScale requires TrafficRouting to be set"
    );
    assert_eq!(
        first_error(serde_json::json!({"canary": {"canaryService": "a", "stableService": "a"}})),
        "spec.strategy.canary.stableService: Invalid value: \"a\": This rollout uses the same service for the stable and canary services, but two different services are required."
    );
}

#[test]
fn header_route_requires_managed_route() {
    let err = first_error(serde_json::json!({"canary": {
        "canaryService": "c", "stableService": "s",
        "trafficRouting": {"istio": {"virtualService": {"name": "vs"}}, "managedRoutes": [{"name": "other"}]},
        "steps": [{"setHeaderRoute": {"name": "h", "match": [{"headerName": "x", "headerValue": {"exact": "y"}}]}}]
    }}));
    assert_eq!(
        err,
        "spec.strategy.canary.steps[0].setHeaderRoute: Invalid value: \"h\": Steps define a route that does not exist in spec.strategy.canary.trafficRouting.managedRoutes"
    );
}

#[test]
fn selector_must_match_template() {
    let mut spec = base(serde_json::json!({"canary": {}}));
    spec["selector"] = serde_json::json!({"matchLabels": {"app": "other"}});
    let errs = validate(&rollout(spec));
    assert_eq!(
        errs[0].to_string(),
        "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`"
    );
}

#[test]
fn progress_deadline_must_exceed_min_ready() {
    let mut spec = base(serde_json::json!({"canary": {}}));
    spec["minReadySeconds"] = serde_json::json!(700);
    assert_eq!(
        validate(&rollout(spec))[0].to_string(),
        "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"
    );
}

#[test]
fn missing_strategy() {
    let mut spec = base(serde_json::json!({}));
    spec.as_object_mut().unwrap().remove("strategy");
    assert_eq!(
        validate(&rollout(spec))[0].to_string(),
        "spec.strategy: Required value: Rollout has missing field '.spec.strategy.canary or .spec.strategy.blueGreen'"
    );
}

#[test]
fn service_references() {
    let ro = rollout(base(
        serde_json::json!({"canary": {"canaryService": "c", "stableService": "s"}}),
    ));
    let errs = validate_references(&ro, &[]);
    assert_eq!(
        errs[0].to_string(),
        "spec.strategy.canary.stableService: Invalid value: \"s\": service \"s\" not found"
    );
    let svc = |name: &str, owner: Option<&str>, app: &str| ServiceView {
        name: name.into(),
        selector: [("app".to_string(), app.to_string())].into(),
        annotations: owner
            .map(|o| {
                [(
                    rollouts_api::labels::MANAGED_BY_ROLLOUTS.to_string(),
                    o.to_string(),
                )]
                .into()
            })
            .unwrap_or_default(),
    };
    let errs = validate_references(
        &ro,
        &[svc("s", Some("other"), "web"), svc("c", None, "web")],
    );
    assert_eq!(
        errs[0].to_string(),
        "spec.strategy.canary.stableService: Invalid value: \"s\": Service \"s\" is managed by another Rollout"
    );
    let errs = validate_references(&ro, &[svc("s", None, "web"), svc("c", None, "api")]);
    assert_eq!(
        errs[0].to_string(),
        "spec.strategy.canary.canaryService: Invalid value: \"c\": Service \"c\" has unmatch label \"app\" in rollout"
    );
    assert!(
        validate_references(&ro, &[svc("s", Some("web"), "web"), svc("c", None, "web")]).is_empty()
    );
}

#[test]
fn workload_ref_template_must_be_empty_unless_resolved() {
    let mut spec = base(serde_json::json!({"canary": {}}));
    spec["workloadRef"] =
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"});
    let ro = rollout(spec);
    assert_eq!(
        validate(&ro)[0].to_string(),
        "spec.template: Internal error: template must be empty for workload reference rollout"
    );
    assert!(validate_resolved(&ro, true).is_empty());
}

fn template_errors(pod_spec: serde_json::Value) -> Vec<String> {
    let mut spec = base(serde_json::json!({"canary": {}}));
    spec["template"]["spec"] = pod_spec;
    validate(&rollout(spec))
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn pod_template_containers() {
    assert_eq!(
        template_errors(serde_json::json!({"containers": [
            {"name": "web", "image": "nginx"},
            {"name": "web", "image": "busybox"},
            {"name": "side"},
            {"name": "", "image": "x"},
            {"name": "Bad_Name", "image": "x"}
        ]})),
        [
            "spec.template.spec.containers[1].name: Duplicate value: \"web\"",
            "spec.template.spec.containers[2].image: Required value",
            "spec.template.spec.containers[3].name: Required value",
            "spec.template.spec.containers[4].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ]
    );
}

#[test]
fn init_container_names_count_as_container_names() {
    assert_eq!(
        template_errors(serde_json::json!({
            "initContainers": [{"name": "web", "image": "busybox"}, {"name": "init", "image": " "}],
            "containers": [{"name": "web", "image": "nginx"}]
        })),
        [
            "spec.template.spec.initContainers[1].image: Required value",
            "spec.template.spec.containers[0].name: Duplicate value: \"web\"",
        ]
    );
}

#[test]
fn restart_policy_must_be_always() {
    assert_eq!(
        template_errors(
            serde_json::json!({"restartPolicy": "Never", "containers": [{"name": "web", "image": "nginx"}]})
        ),
        [
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""
        ]
    );
    assert!(
        template_errors(serde_json::json!({"restartPolicy": "Always", "containers": [{"name": "web", "image": "nginx"}]}))
            .is_empty()
    );
}
