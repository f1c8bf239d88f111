//! Unit tests of the annotation JSON and the Ingress patches: Rollout + Ingress JSON in,
//! annotation strings (compared with hand-written expected text) and merge patches out.

use rollouts_api::{HeaderRoutingMatch, Rollout, StringMatch};

use super::*;

fn rollout_with(canary: Value, status: Value) -> Rollout {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop", "uid": "uid-1"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"canary": canary}
        },
        "status": status
    }))
    .unwrap()
}

fn canary(alb: Value, managed: &[&str]) -> Value {
    let mut routing = json!({ "alb": alb });
    if !managed.is_empty() {
        routing["managedRoutes"] = managed.iter().map(|n| json!({"name": n})).collect();
    }
    json!({
        "canaryService": "web-canary",
        "stableService": "web-stable",
        "trafficRouting": routing
    })
}

fn cfg_of(alb: Value, managed: &[&str]) -> AlbConfig {
    AlbConfig::from_rollout(&rollout_with(canary(alb, managed), json!({})), false, "").unwrap()
}

fn cfg(alb: Value) -> AlbConfig {
    cfg_of(alb, &[])
}

fn dest(service: &str, weight: i32) -> WeightDestination {
    WeightDestination {
        weight,
        service_name: Some(service.to_string()),
        pod_template_hash: Some(format!("{service}-hash")),
    }
}

fn path(p: &str, service: &str) -> Value {
    json!({"path": p, "pathType": "Prefix",
           "backend": {"service": {"name": service, "port": {"name": "use-annotation"}}}})
}

/// A user's Ingress routing `/` to the root Service, with annotations and fields of its own.
fn ingress(root: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "labels": {"team": "web"},
            "annotations": {
                "alb.ingress.kubernetes.io/scheme": "internet-facing",
                "alb.ingress.kubernetes.io/target-type": "ip"
            }
        },
        "spec": {
            "ingressClassName": "alb",
            "rules": [
                {"host": "shop.example.com", "http": {"paths": [path("/", root), path("/static", "cdn")]}},
                {"host": "api.example.com", "http": {"paths": [path("/", root)]}}
            ]
        }
    })
}

fn header_route(name: &str, matches: &[(&str, &str)]) -> SetHeaderRoute {
    SetHeaderRoute {
        name: Some(name.to_string()),
        r#match: Some(
            matches
                .iter()
                .map(|(h, v)| HeaderRoutingMatch {
                    header_name: h.to_string(),
                    header_value: StringMatch {
                        exact: Some(v.to_string()),
                        ..Default::default()
                    },
                })
                .collect(),
        ),
    }
}

#[test]
fn configuration_defaults_and_errors() {
    let c = cfg(json!({"ingress": "web", "servicePort": 80}));
    assert_eq!(c.ingresses, ["web"]);
    assert_eq!(c.annotation_prefix, "alb.ingress.kubernetes.io");
    assert_eq!(
        c.action_service, "web-stable",
        "rootService defaults to stable"
    );
    assert_eq!(
        c.weight_action_key(),
        "alb.ingress.kubernetes.io/actions.web-stable"
    );
    assert_eq!(c.resource_id_tag, "ingress.k8s.aws/resource");
    assert_eq!(c.resource_id("web", "web-canary"), "shop/web-web-canary:80");
    let c = cfg(
        json!({"ingress": "a", "ingresses": ["b", "c"], "servicePort": 443,
                       "rootService": "web-root", "annotationPrefix": "custom.alb.io"}),
    );
    assert_eq!(c.ingresses, ["b", "c"]);
    assert_eq!(c.weight_action_key(), "custom.alb.io/actions.web-root");
    assert_eq!(c.condition_key("beta"), "custom.alb.io/conditions.beta");
    let err = |alb: Value| {
        AlbConfig::from_rollout(&rollout_with(canary(alb, &[]), json!({})), false, "")
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(json!({"servicePort": 80})),
        "spec.strategy.canary.trafficRouting.alb.ingress or ingresses is required"
    );
    assert_eq!(
        err(json!({"ingress": "web", "servicePort": 0})),
        "spec.strategy.canary.trafficRouting.alb.servicePort must be a port number, not 0"
    );
    assert_eq!(
        err(json!({"ingress": "web", "servicePort": 80,
                   "stickinessConfig": {"enabled": true, "durationSeconds": 604801}})),
        "TargetGroupStickinessConfig's duration must be between 1 and 604800 seconds (7 days)!"
    );
    // Disabled stickiness is not checked.
    let c = cfg(json!({"ingress": "web", "servicePort": 80,
                       "stickinessConfig": {"enabled": false, "durationSeconds": 0}}));
    assert_eq!(c.stickiness_seconds, None);
}

#[test]
fn ping_pong_services_follow_the_status() {
    let spec = json!({
        "pingPong": {"pingService": "web-ping", "pongService": "web-pong"},
        "trafficRouting": {"alb": {"ingress": "web", "servicePort": 80, "rootService": "web-root"}}
    });
    let c = AlbConfig::from_rollout(&rollout_with(spec.clone(), json!({})), false, "").unwrap();
    // No stablePingPong yet: pong is stable (Argo's IsStablePing is false).
    assert_eq!(
        (c.stable_service.as_str(), c.canary_service.as_str()),
        ("web-pong", "web-ping")
    );
    assert_eq!(c.action_service, "web-root");
    let c = AlbConfig::from_rollout(
        &rollout_with(spec.clone(), json!({"canary": {"stablePingPong": "ping"}})),
        false,
        "",
    )
    .unwrap();
    assert_eq!(
        (c.stable_service.as_str(), c.canary_service.as_str()),
        ("web-ping", "web-pong")
    );
    let mut no_root = spec;
    no_root["trafficRouting"]["alb"]
        .as_object_mut()
        .unwrap()
        .remove("rootService");
    assert_eq!(
        AlbConfig::from_rollout(&rollout_with(no_root, json!({})), false, "")
            .unwrap_err()
            .to_string(),
        "spec.strategy.canary.trafficRouting.alb.rootService is required with pingPong"
    );
}

#[test]
fn forward_action_is_argos_json() {
    let c = cfg(json!({"ingress": "web", "servicePort": 80}));
    assert_eq!(
        forward_action(&c, 10, &[]),
        r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"web-canary","ServicePort":"80","Weight":10},{"ServiceName":"web-stable","ServicePort":"80","Weight":90}]}}"#
    );
    assert_eq!(
        forward_action(&c, 0, &[]),
        r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"web-canary","ServicePort":"80","Weight":0},{"ServiceName":"web-stable","ServicePort":"80","Weight":100}]}}"#
    );
}

#[test]
fn stickiness_and_experiment_destinations() {
    let c = cfg(json!({"ingress": "web", "servicePort": 8080,
                       "stickinessConfig": {"enabled": true, "durationSeconds": 3600}}));
    assert_eq!(
        forward_action(&c, 10, &[dest("web-exp-a", 5), dest("web-exp-b", 15)]),
        r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"web-canary","ServicePort":"8080","Weight":10},{"ServiceName":"web-exp-a","ServicePort":"8080","Weight":5},{"ServiceName":"web-exp-b","ServicePort":"8080","Weight":15},{"ServiceName":"web-stable","ServicePort":"8080","Weight":70}],"TargetGroupStickinessConfig":{"Enabled":true,"DurationSeconds":3600}}}"#
    );
    // A destination without a Service name is written without ServiceName (Go's omitempty).
    let nameless = WeightDestination {
        weight: 5,
        service_name: None,
        pod_template_hash: None,
    };
    assert_eq!(
        forward_action(&c, 0, &[nameless]),
        r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"web-canary","ServicePort":"8080","Weight":0},{"ServicePort":"8080","Weight":5},{"ServiceName":"web-stable","ServicePort":"8080","Weight":95}],"TargetGroupStickinessConfig":{"Enabled":true,"DurationSeconds":3600}}}"#
    );
    assert_eq!(
        header_action(&c),
        r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"web-canary","ServicePort":"8080","Weight":100}],"TargetGroupStickinessConfig":{"Enabled":true,"DurationSeconds":3600}}}"#
    );
}

#[test]
fn header_conditions_merge_values_per_header() {
    let route = header_route(
        "beta",
        &[("X-Beta", "on"), ("X-Team", "web"), ("X-Beta", "yes")],
    );
    assert_eq!(
        header_conditions(&route).unwrap(),
        r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Beta","values":["on","yes"]}},{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Team","values":["web"]}}]"#
    );
    // Go's escaping of < > &.
    assert_eq!(
        header_conditions(&header_route("r", &[("X", "a&b<c>")])).unwrap(),
        r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X","values":["a\u0026b\u003cc\u003e"]}}]"#
    );
    let mut prefix = header_route("beta", &[("X-Beta", "on")]);
    prefix.r#match.as_mut().unwrap()[0].header_value = StringMatch {
        prefix: Some("o".into()),
        ..Default::default()
    };
    assert_eq!(
        header_conditions(&prefix).unwrap_err().to_string(),
        "setHeaderRoute `beta`: match[0].headerValue: ALB supports only `exact` header values"
    );
    let empty = SetHeaderRoute {
        name: Some("beta".into()),
        r#match: Some(vec![]),
    };
    assert!(header_conditions(&empty).is_err());
}

#[test]
fn weight_patch_sets_only_the_action_and_the_bookkeeping() {
    let c = cfg(json!({"ingress": "web", "servicePort": 80, "rootService": "web-root"}));
    let ing = ingress("web-root");
    let patch = weight_patch(&c, "web", &ing, 20, &[]).unwrap().unwrap();
    assert_eq!(
        patch,
        json!({"metadata": {"annotations": {
            "alb.ingress.kubernetes.io/actions.web-root":
                r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"web-canary","ServicePort":"80","Weight":20},{"ServiceName":"web-stable","ServicePort":"80","Weight":80}]}}"#,
            "rollouts.argoproj.io/managed-alb-annotations":
                r#"{"web":["alb.ingress.kubernetes.io/actions.web-root"]}"#
        }}})
    );
    // Applied, the same weight needs no patch; another weight changes the action only.
    let mut applied = ing.clone();
    for (k, v) in patch["metadata"]["annotations"].as_object().unwrap() {
        applied["metadata"]["annotations"][k] = v.clone();
    }
    assert_eq!(weight_patch(&c, "web", &applied, 20, &[]).unwrap(), None);
    let next = weight_patch(&c, "web", &applied, 50, &[]).unwrap().unwrap();
    assert_eq!(
        next["metadata"]["annotations"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["alb.ingress.kubernetes.io/actions.web-root"]
    );
    assert_eq!(mismatch(&c, "web", Some(&applied), 20, &[]), None);
}

#[test]
fn other_rollouts_bookkeeping_is_kept() {
    let c = cfg(json!({"ingress": "web", "servicePort": 80}));
    let mut ing = ingress("web-stable");
    ing["metadata"]["annotations"][MANAGED_ANNOTATIONS] = json!(
        r#"{"other":["alb.ingress.kubernetes.io/actions.other-stable"],"web":["x/conditions.old"]}"#
    );
    let patch = weight_patch(&c, "web", &ing, 0, &[]).unwrap().unwrap();
    assert_eq!(
        patch["metadata"]["annotations"][MANAGED_ANNOTATIONS],
        r#"{"other":["alb.ingress.kubernetes.io/actions.other-stable"],"web":["x/conditions.old","alb.ingress.kubernetes.io/actions.web-stable"]}"#
    );
    ing["metadata"]["annotations"][MANAGED_ANNOTATIONS] = json!("{not json");
    let err = weight_patch(&c, "web", &ing, 0, &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "ingress `web` has an unreadable rollouts.argoproj.io/managed-alb-annotations"
        ),
        "{err}"
    );
}

#[test]
fn an_ingress_without_the_action_service_is_refused() {
    let c = cfg(json!({"ingress": "web", "servicePort": 80, "rootService": "web-root"}));
    assert_eq!(
        weight_patch(&c, "web", &ingress("something-else"), 10, &[])
            .unwrap_err()
            .to_string(),
        "ingress `web` does not have service `web-root` in rules"
    );
    // A rule without `http` is no error, only no match.
    let bare = json!({"spec": {"rules": [{"host": "x"}]}});
    assert!(!has_rule_with_service(&bare, "web-root"));
}

#[test]
fn multiple_ingresses_and_a_custom_prefix() {
    let c = cfg(
        json!({"ingresses": ["web-internal", "web-external"], "servicePort": 80,
                       "annotationPrefix": "custom.alb.ingress.kubernetes.io"}),
    );
    for name in ["web-internal", "web-external"] {
        let patch = weight_patch(&c, name, &ingress("web-stable"), 30, &[dest("web-exp", 10)])
            .unwrap()
            .unwrap();
        assert_eq!(
            patch,
            json!({"metadata": {"annotations": {
                "custom.alb.ingress.kubernetes.io/actions.web-stable":
                    r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"web-canary","ServicePort":"80","Weight":30},{"ServiceName":"web-exp","ServicePort":"80","Weight":10},{"ServiceName":"web-stable","ServicePort":"80","Weight":60}]}}"#,
                "rollouts.argoproj.io/managed-alb-annotations":
                    r#"{"web":["custom.alb.ingress.kubernetes.io/actions.web-stable"]}"#
            }}}),
            "{name}"
        );
    }
}

fn apply(ingress: &Value, patch: &Value) -> Value {
    let mut out = ingress.clone();
    for (k, v) in patch["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if v.is_null() {
            out["metadata"]["annotations"]
                .as_object_mut()
                .unwrap()
                .remove(k);
        } else {
            out["metadata"]["annotations"][k] = v.clone();
        }
    }
    if let Some(rules) = patch["spec"].get("rules") {
        out["spec"]["rules"] = rules.clone();
    }
    out
}

#[test]
fn header_routes_add_annotations_and_a_path_on_every_rule() {
    let c = cfg_of(
        json!({"ingress": "web", "servicePort": 80, "rootService": "web-root"}),
        &["beta", "canary-team"],
    );
    let ing = ingress("web-root");
    let patch = header_route_patch(
        &c,
        "web",
        &ing,
        &header_route("canary-team", &[("X-Team", "web")]),
    )
    .unwrap()
    .unwrap();
    let route = |name: &str| {
        json!({"path": "/*", "pathType": "ImplementationSpecific",
               "backend": {"service": {"name": name, "port": {"name": "use-annotation"}}}})
    };
    assert_eq!(
        patch,
        json!({
            "metadata": {"annotations": {
                "alb.ingress.kubernetes.io/actions.canary-team":
                    r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"web-canary","ServicePort":"80","Weight":100}]}}"#,
                "alb.ingress.kubernetes.io/conditions.canary-team":
                    r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Team","values":["web"]}}]"#,
                "rollouts.argoproj.io/managed-alb-annotations":
                    r#"{"web":["alb.ingress.kubernetes.io/actions.canary-team","alb.ingress.kubernetes.io/conditions.canary-team"]}"#
            }},
            "spec": {"rules": [
                {"host": "shop.example.com", "http": {"paths": [route("canary-team"), path("/", "web-root"), path("/static", "cdn")]}},
                {"host": "api.example.com", "http": {"paths": [route("canary-team"), path("/", "web-root")]}}
            ]}
        })
    );
    // A second route goes above it: managedRoutes lists `beta` first.
    let with_team = apply(&ing, &patch);
    let beta = header_route_patch(
        &c,
        "web",
        &with_team,
        &header_route("beta", &[("X-Beta", "1")]),
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        beta["spec"]["rules"][1]["http"]["paths"],
        json!([route("beta"), route("canary-team"), path("/", "web-root")])
    );
    let both = apply(&with_team, &beta);
    // The same step again changes nothing.
    assert_eq!(
        header_route_patch(&c, "web", &both, &header_route("beta", &[("X-Beta", "1")])).unwrap(),
        None
    );
    // Without match: the route's annotations and paths go, the rest stays.
    let remove = SetHeaderRoute {
        name: Some("canary-team".into()),
        r#match: None,
    };
    let removal = header_route_patch(&c, "web", &both, &remove)
        .unwrap()
        .unwrap();
    assert_eq!(
        removal["metadata"]["annotations"],
        json!({
            "alb.ingress.kubernetes.io/actions.canary-team": null,
            "alb.ingress.kubernetes.io/conditions.canary-team": null,
            "rollouts.argoproj.io/managed-alb-annotations":
                r#"{"web":["alb.ingress.kubernetes.io/actions.beta","alb.ingress.kubernetes.io/conditions.beta"]}"#
        })
    );
    assert_eq!(
        removal["spec"]["rules"][0]["http"]["paths"],
        json!([route("beta"), path("/", "web-root"), path("/static", "cdn")])
    );
    // remove_managed_routes takes every managed route away, back to the user's rules.
    let only_beta = apply(&both, &removal);
    let cleanup = remove_routes_patch(&c, "web", &only_beta).unwrap().unwrap();
    let clean = apply(&only_beta, &cleanup);
    assert_eq!(clean["spec"]["rules"], ing["spec"]["rules"]);
    assert_eq!(
        clean["metadata"]["annotations"],
        json!({
            "alb.ingress.kubernetes.io/scheme": "internet-facing",
            "alb.ingress.kubernetes.io/target-type": "ip",
            "rollouts.argoproj.io/managed-alb-annotations": r#"{"web":[]}"#
        })
    );
    assert_eq!(remove_routes_patch(&c, "web", &clean).unwrap(), None);
    // No managed routes: nothing to remove.
    let plain = cfg(json!({"ingress": "web", "servicePort": 80, "rootService": "web-root"}));
    assert_eq!(remove_routes_patch(&plain, "web", &both).unwrap(), None);
}

#[test]
fn mismatches_name_the_difference() {
    let c = cfg(json!({"ingress": "web", "servicePort": 80}));
    let key = "alb.ingress.kubernetes.io/actions.web-stable";
    let with = |value: &str| {
        let mut i = ingress("web-stable");
        i["metadata"]["annotations"][key] = json!(value);
        i
    };
    assert_eq!(
        mismatch(&c, "web", None, 10, &[]),
        Some((None, "Ingress `web` does not exist".into()))
    );
    assert_eq!(
        mismatch(&c, "web", Some(&ingress("web-stable")), 10, &[]),
        Some((None, format!("Ingress `web` has no annotation {key}")))
    );
    // Same content, other formatting: verified.
    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<Value>(&forward_action(&c, 10, &[])).unwrap(),
    )
    .unwrap();
    assert_eq!(mismatch(&c, "web", Some(&with(&pretty)), 10, &[]), None);
    assert_eq!(
        mismatch(&c, "web", Some(&with(&forward_action(&c, 7, &[]))), 10, &[]),
        Some((
            Some(7),
            format!("Ingress `web` annotation {key} sends weight 7 to `web-canary`, want 10")
        ))
    );
    assert_eq!(
        mismatch(
            &c,
            "web",
            Some(&with(&forward_action(&c, 10, &[dest("exp", 5)]))),
            10,
            &[]
        ),
        Some((
            Some(10),
            format!("Ingress `web` annotation {key} sends weight 85 to `web-stable`, want 90")
        ))
    );
    assert_eq!(
        mismatch(
            &c,
            "web",
            Some(&with(&forward_action(&c, 10, &[]))),
            10,
            &[dest("exp", 5)]
        ),
        Some((
            Some(10),
            format!("Ingress `web` annotation {key} has no target group for `exp`")
        ))
    );
    assert_eq!(
        mismatch(&c, "web", Some(&with("{oops")), 10, &[]),
        Some((
            None,
            format!("Ingress `web` has annotation {key} that is not JSON: \"{{oops\"")
        ))
    );
    let sticky = cfg(json!({"ingress": "web", "servicePort": 80,
                            "stickinessConfig": {"enabled": true, "durationSeconds": 60}}));
    let detail = mismatch(
        &sticky,
        "web",
        Some(&with(&forward_action(&c, 10, &[]))),
        10,
        &[],
    )
    .unwrap()
    .1;
    assert!(
        detail.contains("TargetGroupStickinessConfig null"),
        "{detail}"
    );
    let port = cfg(json!({"ingress": "web", "servicePort": 8080}));
    assert_eq!(
        mismatch(
            &port,
            "web",
            Some(&with(&forward_action(&c, 10, &[]))),
            10,
            &[]
        )
        .unwrap()
        .1,
        format!("Ingress `web` annotation {key} uses port \"80\" for `web-canary`, want \"8080\"")
    );
}
