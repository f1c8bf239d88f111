//! Unit tests of the route transformations: route JSON + configuration in, rules or patch out.

use rollouts_api::Rollout;

use super::*;
use crate::config::RouteKind;

fn rollout(block: Value) -> Rollout {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "shop", "namespace": "web", "uid": "uid-1"},
        "spec": {
            "selector": {"matchLabels": {"app": "shop"}},
            "strategy": {"canary": {
                "canaryService": "shop-canary",
                "stableService": "shop-stable",
                "trafficRouting": {
                    "managedRoutes": [{"name": "beta"}, {"name": "shadow"}],
                    "plugins": {"argoproj-labs/gatewayAPI": block}
                }
            }}
        }
    }))
    .unwrap()
}

fn cfg() -> GatewayConfig {
    GatewayConfig::from_rollout(&rollout(json!({"httpRoute": "shop"}))).unwrap()
}

fn http(cfg: &GatewayConfig) -> RouteRef {
    cfg.routes[0].clone()
}

fn backend(name: &str, weight: Option<i64>) -> Value {
    let mut b = json!({"group": "", "kind": "Service", "name": name, "port": 80});
    if let Some(w) = weight {
        b["weight"] = json!(w);
    }
    b
}

/// Two weighted rules (`/products`, `/orders` with a header match and a filter), a rule for
/// another Service, and user labels.
fn route() -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "shop", "namespace": "web", "resourceVersion": "9",
                     "labels": {"team": "shop"}},
        "spec": {
            "parentRefs": [{"name": "eg"}],
            "hostnames": ["shop.example.com"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/products"}}],
                    "backendRefs": [backend("shop-stable", Some(100)), backend("shop-canary", Some(0))]
                },
                {
                    "name": "orders",
                    "matches": [{"path": {"type": "PathPrefix", "value": "/orders"},
                                 "headers": [{"name": "x-tenant", "value": "eu"}]}],
                    "filters": [{"type": "RequestHeaderModifier",
                                 "requestHeaderModifier": {"add": [{"name": "x-via", "value": "gw"}]}}],
                    "backendRefs": [backend("shop-stable", None), backend("shop-canary", None)]
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                    "backendRefs": [backend("cdn", None)]
                }
            ]
        }
    })
}

fn dest(service: &str, weight: i32) -> WeightDestination {
    WeightDestination {
        weight,
        service_name: Some(service.into()),
        pod_template_hash: Some("h".into()),
    }
}

fn exact(s: &str) -> StringMatch {
    StringMatch {
        exact: Some(s.into()),
        ..Default::default()
    }
}

#[test]
fn managed_rule_names() {
    assert!(is_rule_of("beta", "beta"));
    assert!(is_rule_of("beta-1", "beta"));
    assert!(is_rule_of("beta-12", "beta"));
    assert!(!is_rule_of("beta-", "beta"));
    assert!(!is_rule_of("beta-x", "beta"));
    assert!(!is_rule_of("betamax", "beta"));
}

#[test]
fn every_rule_with_both_backends_is_weighted() {
    let c = cfg();
    let r = http(&c);
    assert_eq!(weighted_rules(&c, &r, &route()).unwrap(), [0, 1]);
    let patch = weight_patch(&c, &r, &route(), 30, &[]).unwrap().unwrap();
    assert_eq!(
        patch["metadata"],
        json!({"resourceVersion": "9",
               "labels": {"rollouts.argoproj.io/gatewayapi-canary": "in-progress"}})
    );
    let rules = patch["spec"]["rules"].as_array().unwrap();
    for rule in &rules[..2] {
        assert_eq!(
            rule["backendRefs"],
            json!([
                backend("shop-stable", Some(70)),
                backend("shop-canary", Some(30))
            ])
        );
    }
    // Matches, filters, names and the other rule are sent back as read.
    let mut want = route()["spec"]["rules"].clone();
    want[0]["backendRefs"] = rules[0]["backendRefs"].clone();
    want[1]["backendRefs"] = rules[1]["backendRefs"].clone();
    assert_eq!(patch["spec"]["rules"], want);
    assert!(patch["spec"].get("parentRefs").is_none());
}

#[test]
fn nothing_to_send_when_weights_and_label_hold() {
    let c = cfg();
    let r = http(&c);
    let mut current = route();
    current["spec"]["rules"] = json!(weighted(&c, &r, &current, 0, &[]).unwrap());
    assert_eq!(weight_patch(&c, &r, &current, 0, &[]).unwrap(), None);
    assert_eq!(mismatch(&c, &r, Some(&current), 0, &[]), None);
    // At weight 0 the label goes away.
    current["metadata"]["labels"]["rollouts.argoproj.io/gatewayapi-canary"] = json!("in-progress");
    assert_eq!(
        weight_patch(&c, &r, &current, 0, &[]).unwrap(),
        Some(json!({"metadata": {"resourceVersion": "9",
                                 "labels": {"rollouts.argoproj.io/gatewayapi-canary": null}}}))
    );
    // Disabled: no label at all.
    let off = GatewayConfig::from_rollout(&rollout(
        json!({"httpRoute": "shop", "disableInProgressLabel": true}),
    ))
    .unwrap();
    let patch = weight_patch(&off, &r, &route(), 10, &[]).unwrap().unwrap();
    assert!(patch["metadata"].get("labels").is_none());
}

#[test]
fn rule_name_pins_one_rule() {
    let c = GatewayConfig::from_rollout(&rollout(
        json!({"httpRoute": "shop", "httpRouteRuleName": "orders"}),
    ))
    .unwrap();
    let r = http(&c);
    assert_eq!(weighted_rules(&c, &r, &route()).unwrap(), [1]);
    let rules = weighted(&c, &r, &route(), 40, &[]).unwrap();
    assert_eq!(rules[0], route()["spec"]["rules"][0]);
    assert_eq!(
        rules[1]["backendRefs"],
        json!([
            backend("shop-stable", Some(60)),
            backend("shop-canary", Some(40))
        ])
    );
    let missing = RouteRef {
        rule_name: Some("nope".into()),
        ..r.clone()
    };
    assert_eq!(
        weighted_rules(&c, &missing, &route())
            .unwrap_err()
            .to_string(),
        "HTTPRoute `shop` has no rule named `nope`"
    );
    let mut unnamed = route();
    unnamed["spec"]["rules"][2]["name"] = json!("static");
    let wrong = RouteRef {
        rule_name: Some("static".into()),
        ..r
    };
    assert_eq!(
        weighted_rules(&c, &wrong, &unnamed)
            .unwrap_err()
            .to_string(),
        "rule `static` of HTTPRoute `shop` has no backendRefs to both `shop-canary` and `shop-stable`"
    );
}

#[test]
fn a_route_without_both_backends_is_an_error() {
    let c = cfg();
    let r = http(&c);
    let mut bare = route();
    bare["spec"]["rules"] = json!([route()["spec"]["rules"][2]]);
    assert_eq!(
        weight_patch(&c, &r, &bare, 10, &[])
            .unwrap_err()
            .to_string(),
        "HTTPRoute `shop` has no rule with backendRefs to both `shop-canary` and `shop-stable`"
    );
    bare["spec"] = json!({});
    assert_eq!(
        weight_patch(&c, &r, &bare, 10, &[])
            .unwrap_err()
            .to_string(),
        "HTTPRoute `shop` has no spec.rules"
    );
    assert_eq!(
        mismatch(&c, &r, None, 0, &[]),
        Some((None, "HTTPRoute `shop` does not exist".into()))
    );
}

#[test]
fn experiments_get_backend_refs_and_lose_them_afterwards() {
    let c = cfg();
    let r = http(&c);
    let rules = weighted(&c, &r, &route(), 20, &[dest("shop-exp", 10)]).unwrap();
    assert_eq!(
        rules[0]["backendRefs"],
        json!([
            backend("shop-stable", Some(70)),
            backend("shop-canary", Some(20)),
            backend("shop-exp", Some(10))
        ])
    );
    let mut current = route();
    current["spec"]["rules"] = json!(rules);
    assert_eq!(
        mismatch(&c, &r, Some(&current), 20, &[dest("shop-exp", 10)]),
        None
    );
    // The experiment ended: the status still names its Service, so its backendRef goes.
    let mut after = c.clone();
    after.previous_additional = vec!["shop-exp".into()];
    assert_eq!(
        mismatch(&after, &r, Some(&current), 20, &[]),
        Some((
            Some(20),
            "HTTPRoute `shop` rule 0 gives backendRef `shop-stable` weight 70, want 80".into()
        ))
    );
    let rules = weighted(&after, &r, &current, 20, &[]).unwrap();
    assert_eq!(
        rules[0]["backendRefs"],
        json!([
            backend("shop-stable", Some(80)),
            backend("shop-canary", Some(20))
        ])
    );
    // A backendRef nobody told us about is never removed.
    let mut foreign = current.clone();
    foreign["spec"]["rules"][0]["backendRefs"]
        .as_array_mut()
        .unwrap()
        .push(backend("mirror-svc", Some(0)));
    let rules = weighted(&c, &r, &foreign, 20, &[dest("shop-exp", 10)]).unwrap();
    assert_eq!(rules[0]["backendRefs"].as_array().unwrap().len(), 4);
}

#[test]
fn mismatch_reports_the_stored_weight() {
    let c = cfg();
    let r = http(&c);
    let mut current = route();
    current["spec"]["rules"] = json!(weighted(&c, &r, &current, 30, &[]).unwrap());
    current["spec"]["rules"][1]["backendRefs"][1]["weight"] = json!(55);
    assert_eq!(
        mismatch(&c, &r, Some(&current), 30, &[]),
        Some((
            Some(55),
            "HTTPRoute `shop` rule `orders` gives backendRef `shop-canary` weight 55, want 30"
                .into()
        ))
    );
    assert_eq!(
        mismatch(&c, &r, Some(&route()), 30, &[]),
        Some((
            Some(0),
            "HTTPRoute `shop` rule 0 gives backendRef `shop-canary` weight 0, want 30".into()
        ))
    );
}

#[test]
fn header_rules_copy_each_source_with_the_headers_added() {
    let c = cfg();
    let r = http(&c);
    let step = SetHeaderRoute {
        name: Some("beta".into()),
        r#match: Some(vec![
            HeaderRoutingMatch {
                header_name: "x-beta".into(),
                header_value: exact("1"),
            },
            HeaderRoutingMatch {
                header_name: "x-version".into(),
                header_value: StringMatch {
                    prefix: Some("v2.".into()),
                    ..Default::default()
                },
            },
        ]),
    };
    let rules = header_rules(&c, &r, &route(), "beta", &step).unwrap();
    assert_eq!(rules.len(), 5);
    assert_eq!(rules[..3], route()["spec"]["rules"].as_array().unwrap()[..]);
    assert_eq!(
        rules[3],
        json!({
            "name": "beta",
            "matches": [{"path": {"type": "PathPrefix", "value": "/products"}, "headers": [
                {"name": "x-beta", "type": "Exact", "value": "1"},
                {"name": "x-version", "type": "RegularExpression", "value": "^v2\\..*"}
            ]}],
            "backendRefs": [backend("shop-canary", None)]
        })
    );
    assert_eq!(
        rules[4],
        json!({
            "name": "beta-1",
            "matches": [{"path": {"type": "PathPrefix", "value": "/orders"}, "headers": [
                {"name": "x-tenant", "value": "eu"},
                {"name": "x-beta", "type": "Exact", "value": "1"},
                {"name": "x-version", "type": "RegularExpression", "value": "^v2\\..*"}
            ]}],
            "filters": route()["spec"]["rules"][1]["filters"],
            "backendRefs": [backend("shop-canary", None)]
        })
    );
    // Applying the same step again gives the same rules (the old ones are replaced); a header
    // rule has the canary backend only, so it is never weighted.
    let mut current = route();
    current["spec"]["rules"] = json!(rules.clone());
    assert_eq!(
        header_rules(&c, &r, &current, "beta", &step).unwrap(),
        rules
    );
    assert_eq!(weighted_rules(&c, &r, &current).unwrap(), [0, 1]);
    // Without a match the step's rules go; other managed rules stay.
    let removal = SetHeaderRoute {
        name: Some("beta".into()),
        r#match: None,
    };
    assert_eq!(
        header_rules(&c, &r, &current, "beta", &removal).unwrap(),
        route()["spec"]["rules"].as_array().unwrap().clone()
    );
    assert_eq!(
        without_managed(&c, &r, &current).unwrap(),
        route()["spec"]["rules"].as_array().unwrap().clone()
    );
}

#[test]
fn header_values_need_a_kind() {
    assert_eq!(
        header_matches(
            "beta",
            &[HeaderRoutingMatch {
                header_name: "x".into(),
                header_value: StringMatch::default()
            }]
        )
        .unwrap_err()
        .to_string(),
        "setHeaderRoute `beta` header `x` has no exact, prefix or regex value"
    );
    let regex = StringMatch {
        regex: Some("a|b".into()),
        ..Default::default()
    };
    assert_eq!(
        header_matches(
            "beta",
            &[HeaderRoutingMatch {
                header_name: "x".into(),
                header_value: regex
            }]
        )
        .unwrap(),
        [json!({"name": "x", "type": "RegularExpression", "value": "a|b"})]
    );
}

#[test]
fn mirror_rules_mirror_to_the_canary_and_keep_the_weights() {
    let c = cfg();
    let r = http(&c);
    let mut headers = std::collections::BTreeMap::new();
    headers.insert("x-region".to_string(), exact("eu"));
    let step = SetMirrorRoute {
        name: "shadow".into(),
        r#match: Some(vec![RouteMatch {
            method: Some(exact("GET")),
            path: Some(StringMatch {
                prefix: Some("/api".into()),
                ..Default::default()
            }),
            headers: Some(headers),
        }]),
        percentage: Some(25),
    };
    let mut current = route();
    current["spec"]["rules"] = json!(weighted(&c, &r, &current, 10, &[]).unwrap());
    let rules = mirror_rules(&c, &r, &current, "shadow", &step).unwrap();
    assert_eq!(rules.len(), 4);
    assert_eq!(
        rules[3],
        json!({
            "name": "shadow",
            "matches": [{"method": "GET", "path": {"type": "PathPrefix", "value": "/api"},
                         "headers": [{"name": "x-region", "type": "Exact", "value": "eu"}]}],
            "filters": [{"type": "RequestMirror", "requestMirror": {
                "backendRef": backend("shop-canary", None), "percent": 25
            }}],
            "backendRefs": [backend("shop-stable", Some(90)), backend("shop-canary", Some(10))]
        })
    );
    // The mirror rule has both backends: set_weight keeps it in step.
    current["spec"]["rules"] = json!(rules);
    assert_eq!(weighted_rules(&c, &r, &current).unwrap(), [0, 1, 3]);
    let bad = SetMirrorRoute {
        name: "shadow".into(),
        r#match: Some(vec![RouteMatch {
            method: Some(StringMatch {
                prefix: Some("G".into()),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        percentage: None,
    };
    assert_eq!(
        mirror_rules(&c, &r, &current, "shadow", &bad)
            .unwrap_err()
            .to_string(),
        "setMirrorRoute `shadow`: a method can only match exactly in Gateway API"
    );
    let removal = SetMirrorRoute {
        name: "shadow".into(),
        r#match: None,
        percentage: None,
    };
    assert_eq!(
        mirror_rules(&c, &r, &current, "shadow", &removal)
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn grpc_routes_work_the_same_way() {
    let c = GatewayConfig::from_rollout(&rollout(json!({"grpcRoute": "shop-rpc"}))).unwrap();
    let r = c.routes[0].clone();
    assert_eq!(r.kind, RouteKind::Grpc);
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
        "metadata": {"name": "shop-rpc"},
        "spec": {"rules": [{
            "matches": [{"method": {"service": "shop.Cart", "method": "Add"}}],
            "backendRefs": [backend("shop-stable", None), backend("shop-canary", None)]
        }]}
    });
    let rules = weighted(&c, &r, &route, 5, &[]).unwrap();
    assert_eq!(
        rules[0]["backendRefs"],
        json!([
            backend("shop-stable", Some(95)),
            backend("shop-canary", Some(5))
        ])
    );
    let step = SetHeaderRoute {
        name: Some("beta".into()),
        r#match: Some(vec![HeaderRoutingMatch {
            header_name: "x-beta".into(),
            header_value: exact("1"),
        }]),
    };
    let rules = header_rules(&c, &r, &route, "beta", &step).unwrap();
    assert_eq!(
        rules[1]["matches"],
        json!([{"method": {"service": "shop.Cart", "method": "Add"},
                "headers": [{"name": "x-beta", "type": "Exact", "value": "1"}]}])
    );
}
