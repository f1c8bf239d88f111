//! Unit tests of the ApisixRoute transformations: route JSON + Rollout in, patch or new route out.

use rollouts_api::StringMatch;

use super::*;

fn rollout(apisix: Value, managed: &[&str]) -> Rollout {
    let managed: Vec<Value> = managed.iter().map(|n| json!({"name": n})).collect();
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "profile", "namespace": "people", "uid": "uid-1"},
        "spec": {
            "selector": {"matchLabels": {"app": "profile"}},
            "strategy": {"canary": {
                "canaryService": "profile-canary",
                "stableService": "profile-stable",
                "trafficRouting": {"apisix": apisix, "managedRoutes": managed}
            }}
        }
    }))
    .unwrap()
}

fn cfg() -> ApisixConfig {
    ApisixConfig::from_rollout(&rollout(
        json!({"route": {"name": "profile-route", "rules": ["profile-rule"]}}),
        &["staff"],
    ))
    .unwrap()
}

fn owner() -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "profile",
           "uid": "uid-1", "controller": true, "blockOwnerDeletion": true})
}

/// A main route with the managed rule (plus an unrelated backend and plugins) and another rule.
fn main_route() -> Value {
    json!({
        "apiVersion": "apisix.apache.org/v2",
        "kind": "ApisixRoute",
        "metadata": {
            "name": "profile-route", "namespace": "people", "resourceVersion": "7",
            "uid": "main-uid", "labels": {"team": "people"}, "annotations": {"note": "x"},
            "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 3
        },
        "spec": {
            "ingressClassName": "apisix",
            "http": [
                {
                    "name": "profile-rule",
                    "priority": 2,
                    "match": {"hosts": ["profile.example.com"], "paths": ["/*"]},
                    "plugins": [{"name": "cors", "enable": true}],
                    "backends": [
                        {"serviceName": "profile-stable", "servicePort": 80},
                        {"serviceName": "profile-canary", "servicePort": 80, "weight": 0},
                        {"serviceName": "audit", "servicePort": 80, "weight": 1}
                    ]
                },
                {
                    "name": "other",
                    "match": {"paths": ["/other"]},
                    "backends": [{"serviceName": "other", "servicePort": 80}]
                }
            ]
        },
        "status": {"conditions": []}
    })
}

fn header(name: &str, value: StringMatch) -> HeaderRoutingMatch {
    HeaderRoutingMatch {
        header_name: name.into(),
        header_value: value,
    }
}

fn exact(s: &str) -> StringMatch {
    StringMatch {
        exact: Some(s.into()),
        ..Default::default()
    }
}

#[test]
fn rules_default_to_the_route_name() {
    let c = ApisixConfig::from_rollout(&rollout(json!({"route": {"name": "r"}}), &[])).unwrap();
    assert_eq!(c.rules, ["r"]);
    assert_eq!(c.namespace, "people");
    assert!(c.managed_routes.is_empty());
    let c = ApisixConfig::from_rollout(&rollout(json!({"route": {"name": "r", "rules": []}}), &[]))
        .unwrap();
    assert_eq!(c.rules, ["r"]);
    let c = cfg();
    assert_eq!(c.rules, ["profile-rule"]);
    assert_eq!(c.managed_routes, ["staff"]);
    assert_eq!(
        ApisixConfig::from_rollout(&rollout(json!({}), &[]))
            .unwrap_err()
            .to_string(),
        "spec.strategy.canary.trafficRouting.apisix.route.name is required"
    );
}

#[test]
fn set_weight_changes_the_two_backends_of_the_named_rules() {
    let c = cfg();
    let patch = weight_patch(&c, &main_route(), 30).unwrap().unwrap();
    assert_eq!(patch["metadata"], json!({"resourceVersion": "7"}));
    let rules = patch["spec"]["http"].as_array().unwrap();
    assert_eq!(
        rules[0]["backends"],
        json!([
            {"serviceName": "profile-stable", "servicePort": 80, "weight": 70},
            {"serviceName": "profile-canary", "servicePort": 80, "weight": 30},
            {"serviceName": "audit", "servicePort": 80, "weight": 1}
        ])
    );
    // Everything else is sent back as it was read.
    let mut rest = main_route()["spec"]["http"].clone();
    rest[0]["backends"] = rules[0]["backends"].clone();
    assert_eq!(patch["spec"]["http"], rest);
    assert!(patch["spec"].get("ingressClassName").is_none());
}

#[test]
fn no_patch_when_the_weights_hold() {
    let c = cfg();
    let mut route = main_route();
    route["spec"]["http"] = json!(weighted_http(&c, &route, 50).unwrap());
    assert_eq!(weight_patch(&c, &route, 50).unwrap(), None);
    assert_eq!(mismatch(&c, Some(&route), 50), None);
    assert_eq!(
        mismatch(&c, Some(&route), 60),
        Some((
            Some(50),
            "ApisixRoute `profile-route` rule `profile-rule` gives backend `profile-canary` weight 50, want 60"
                .into()
        ))
    );
}

#[test]
fn argos_errors_for_malformed_routes() {
    let c = cfg();
    let with_http = |http: Value| {
        let mut r = main_route();
        r["spec"] = json!({ "http": http });
        r
    };
    let mut no_http = main_route();
    no_http["spec"] = json!({});
    let cases = [
        (no_http, "spec.http was not found in Apisix Route manifest"),
        (
            with_http(json!([{"backends": []}])),
            "Apisix http route rule name field not found",
        ),
        (
            with_http(json!([{"name": "x", "backends": []}])),
            "Apisix http route rule profile-rule not found",
        ),
        (
            with_http(json!([{"name": "profile-rule"}])),
            "Apisix http route backends not found",
        ),
        (
            with_http(json!([{"name": "profile-rule", "backends": [{"servicePort": 80}]}])),
            "serviceName field was not found in backend",
        ),
        (
            with_http(
                json!([{"name": "profile-rule", "backends": [{"serviceName": "profile-stable"}]}]),
            ),
            "apisix route profile-canary backend was not found",
        ),
        (
            with_http(
                json!([{"name": "profile-rule", "backends": [{"serviceName": "profile-canary"}]}]),
            ),
            "apisix route profile-stable backend was not found",
        ),
        (
            with_http(json!(["x"])),
            "Failed type assertion for Apisix http route",
        ),
    ];
    for (route, want) in cases {
        assert_eq!(weight_patch(&c, &route, 10).unwrap_err().to_string(), want);
    }
    assert_eq!(
        mismatch(&c, None, 0),
        Some((None, "ApisixRoute `profile-route` does not exist".into()))
    );
}

#[test]
fn header_expressions_follow_argo_with_the_prefix_escaped() {
    let both = StringMatch {
        exact: Some("a".into()),
        regex: Some("b+".into()),
        prefix: Some("v1.2".into()),
    };
    assert_eq!(
        header_exprs(&[header("x-staff", exact("yes")), header("x-ver", both)]),
        json!([
            {"subject": {"scope": "Header", "name": "x-staff"}, "op": "Equal", "value": "yes"},
            {"subject": {"scope": "Header", "name": "x-ver"}, "op": "Equal", "value": "a"},
            {"subject": {"scope": "Header", "name": "x-ver"}, "op": "RegexMatch", "value": "b+"},
            {"subject": {"scope": "Header", "name": "x-ver"}, "op": "RegexMatch", "value": "^v1\\.2.*"}
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    assert_eq!(
        escape_regex("a.b*c(d)[e]{f}|g^$?+\\"),
        "a\\.b\\*c\\(d\\)\\[e\\]\\{f\\}\\|g\\^\\$\\?\\+\\\\"
    );
}

#[test]
fn a_new_header_route_is_an_owned_copy_sending_everything_to_the_canary() {
    let c = cfg();
    let step = SetHeaderRoute {
        name: Some("staff".into()),
        r#match: Some(vec![header("x-staff", exact("yes"))]),
    };
    let route = new_header_route(&c, &main_route(), "staff", &step, Some(owner())).unwrap();
    assert_eq!(
        route["metadata"],
        json!({"name": "staff", "namespace": "people", "labels": {"team": "people"},
               "annotations": {"note": "x"}, "ownerReferences": [owner()]})
    );
    assert!(route.get("status").is_none());
    assert_eq!(route["spec"]["ingressClassName"], "apisix");
    let rule = &route["spec"]["http"][0];
    assert_eq!(rule["priority"], 3);
    assert_eq!(
        rule["backends"],
        json!([
            {"serviceName": "profile-canary", "servicePort": 80, "weight": 100},
            {"serviceName": "audit", "servicePort": 80, "weight": 1}
        ])
    );
    assert_eq!(
        rule["match"],
        json!({"hosts": ["profile.example.com"], "paths": ["/*"], "exprs": [
            {"subject": {"scope": "Header", "name": "x-staff"}, "op": "Equal", "value": "yes"}
        ]})
    );
    // The other rule is copied unchanged.
    assert_eq!(route["spec"]["http"][1], main_route()["spec"]["http"][1]);
    // A rule without priority starts at 1.
    let mut main = main_route();
    main["spec"]["http"][0]
        .as_object_mut()
        .unwrap()
        .remove("priority");
    let route = new_header_route(&c, &main, "staff", &step, None).unwrap();
    assert_eq!(route["spec"]["http"][0]["priority"], 1);
    assert!(route["metadata"].get("ownerReferences").is_none());
}

#[test]
fn an_existing_header_route_only_gets_new_expressions() {
    let c = cfg();
    let first = SetHeaderRoute {
        name: Some("staff".into()),
        r#match: Some(vec![header("x-staff", exact("yes"))]),
    };
    let mut existing = new_header_route(&c, &main_route(), "staff", &first, Some(owner())).unwrap();
    existing["metadata"]["resourceVersion"] = json!("12");
    assert_eq!(header_patch(&c, &existing, &first).unwrap(), None);
    let second = SetHeaderRoute {
        name: Some("staff".into()),
        r#match: Some(vec![header("x-team", exact("web"))]),
    };
    let patch = header_patch(&c, &existing, &second).unwrap().unwrap();
    assert_eq!(patch["metadata"], json!({"resourceVersion": "12"}));
    let rule = &patch["spec"]["http"][0];
    // The priority is not raised again.
    assert_eq!(rule["priority"], 3);
    assert_eq!(
        rule["match"]["exprs"],
        json!([{"subject": {"scope": "Header", "name": "x-team"}, "op": "Equal", "value": "web"}])
    );
}
