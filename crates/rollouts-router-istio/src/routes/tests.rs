//! Unit tests of the VirtualService transformations: VirtualService JSON + Rollout in, JSON out.

use rollouts_api::{HeaderRoutingMatch, Rollout, RouteMatch};
use serde_json::{Value, json};

use super::*;

fn rollout(istio: Value, extra: Value) -> Rollout {
    let mut canary = json!({
        "canaryService": "reviews-canary",
        "stableService": "reviews-stable",
        "trafficRouting": {"istio": istio}
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        if k == "managedRoutes" {
            canary["trafficRouting"]["managedRoutes"] = v.clone();
        } else {
            canary[k] = v.clone();
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "reviews", "namespace": "shop", "uid": "uid-1"},
        "spec": {"selector": {"matchLabels": {"app": "reviews"}}, "strategy": {"canary": canary}}
    }))
    .unwrap()
}

fn setup(istio: Value, extra: Value) -> (IstioConfig, IstioVirtualService) {
    let cfg = IstioConfig::from_rollout(&rollout(istio, extra)).unwrap();
    let vs = cfg.virtual_services[0].clone();
    (cfg, vs)
}

fn host_level(vs: Value) -> (IstioConfig, IstioVirtualService) {
    setup(json!({"virtualService": vs}), json!({}))
}

fn dest(host: &str, weight: i64) -> Value {
    json!({"destination": {"host": host}, "weight": weight})
}

fn split(stable: i64, canary: i64) -> Value {
    json!([
        dest("reviews-stable", stable),
        dest("reviews-canary", canary)
    ])
}

/// A VirtualService with user-owned fields everywhere: hosts, gateways, route matches, retries,
/// timeouts, destination ports and headers, TLS and TCP routes.
fn virtual_service() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "shop", "resourceVersion": "11",
                     "labels": {"team": "reviews"}, "annotations": {"note": "hand-written"}},
        "spec": {
            "hosts": ["reviews.shop.example.com"],
            "gateways": ["shop-gateway"],
            "http": [
                {"name": "primary",
                 "match": [{"uri": {"prefix": "/reviews"}}],
                 "retries": {"attempts": 3, "perTryTimeout": "2s"},
                 "timeout": "10s",
                 "route": [
                    {"destination": {"host": "reviews-stable", "port": {"number": 9080}},
                     "weight": 100, "headers": {"request": {"set": {"x-role": "stable"}}}},
                    {"destination": {"host": "reviews-canary", "port": {"number": 9080}},
                     "weight": 0}
                 ]},
                {"name": "legacy", "route": [{"destination": {"host": "reviews-v1"}}]}
            ],
            "tls": [{
                "match": [{"port": 443, "sniHosts": ["reviews.shop.example.com"]}],
                "route": split(100, 0)
            }],
            "tcp": [{"match": [{"port": 9090}], "route": split(100, 0)}]
        }
    })
}

fn full_reference() -> Value {
    json!({
        "name": "reviews",
        "routes": ["primary"],
        "tlsRoutes": [{"port": 443, "sniHosts": ["reviews.shop.example.com"]}],
        "tcpRoutes": [{"port": 9090}]
    })
}

#[test]
fn set_weight_changes_only_the_weights_of_the_selected_routes() {
    let (cfg, vs) = host_level(full_reference());
    let mut object = virtual_service();
    let changes = set_weight(&cfg, &vs, &mut object, 20, &[]).unwrap();
    let mut want = virtual_service();
    want["spec"]["http"][0]["route"][0]["weight"] = json!(80);
    want["spec"]["http"][0]["route"][1]["weight"] = json!(20);
    want["spec"]["tls"][0]["route"] = split(80, 20);
    want["spec"]["tcp"][0]["route"] = split(80, 20);
    assert_eq!(object, want);
    assert_eq!(changes.len(), 6);
    assert_eq!(
        changes[0].to_string(),
        "http route 'primary' destination `reviews-stable`: weight 100, want 80"
    );
    assert_eq!(
        changes[5].to_string(),
        "tcp route #0 destination `reviews-canary`: weight 0, want 20"
    );
    // Idempotent.
    assert_eq!(set_weight(&cfg, &vs, &mut object, 20, &[]).unwrap(), []);
    assert_eq!(object, want);
    assert_eq!(canary_weight(&cfg, &vs, &object), Some(20));
}

#[test]
fn hosts_compare_by_their_short_name() {
    let (cfg, vs) = host_level(json!({"name": "reviews"}));
    let mut object = json!({"spec": {"http": [{"route": [
        dest("reviews-stable.shop.svc.cluster.local", 100),
        dest("reviews-canary.shop.svc.cluster.local", 0)
    ]}]}});
    set_weight(&cfg, &vs, &mut object, 30, &[]).unwrap();
    assert_eq!(
        object["spec"]["http"][0]["route"],
        json!([
            dest("reviews-stable.shop.svc.cluster.local", 70),
            dest("reviews-canary.shop.svc.cluster.local", 30)
        ])
    );
}

#[test]
fn without_routes_the_only_unmanaged_http_route_is_weighted() {
    let (cfg, vs) = setup(
        json!({"virtualService": {"name": "reviews"}}),
        json!({"managedRoutes": [{"name": "beta"}]}),
    );
    // The only route, named or not.
    let mut object = json!({"spec": {"http": [{"name": "main", "route": split(100, 0)}]}});
    set_weight(&cfg, &vs, &mut object, 10, &[]).unwrap();
    assert_eq!(object["spec"]["http"][0]["route"], split(90, 10));
    // A managed header route next to it does not count.
    let mut object = json!({"spec": {"http": [
        {"name": "beta", "route": [dest("reviews-canary", 100)]},
        {"name": "main", "route": split(100, 0)}
    ]}});
    set_weight(&cfg, &vs, &mut object, 10, &[]).unwrap();
    assert_eq!(object["spec"]["http"][1]["route"], split(90, 10));
    assert_eq!(
        object["spec"]["http"][0]["route"],
        json!([dest("reviews-canary", 100)])
    );
    // Two unmanaged routes: Argo's error.
    let mut object = json!({"spec": {"http": [
        {"route": split(100, 0)}, {"name": "other", "route": split(100, 0)}
    ]}});
    assert_eq!(
        set_weight(&cfg, &vs, &mut object, 10, &[]).unwrap_err(),
        IstioError::HttpRoutesAmbiguous
    );
    // No HTTP routes at all: nothing to do.
    let mut object = json!({"spec": {"http": []}});
    assert_eq!(set_weight(&cfg, &vs, &mut object, 10, &[]).unwrap(), []);
}

#[test]
fn named_routes_must_exist_and_hold_both_services() {
    let (cfg, vs) = host_level(json!({"name": "reviews", "routes": ["primary", "secondary"]}));
    let mut object = virtual_service();
    assert_eq!(
        set_weight(&cfg, &vs, &mut object, 10, &[])
            .unwrap_err()
            .to_string(),
        "HTTP Route 'secondary' is not found in the defined Virtual Service."
    );
    assert_eq!(object, virtual_service(), "nothing changes on error");
    let (cfg, vs) = host_level(json!({"name": "reviews", "routes": ["legacy"]}));
    assert_eq!(
        set_weight(&cfg, &vs, &mut object, 10, &[])
            .unwrap_err()
            .to_string(),
        "Canary Service 'reviews-canary' not found in route"
    );
    let mut stable_missing = json!({"spec": {"http": [{"route": [dest("reviews-canary", 0)]}]}});
    let (cfg, vs) = host_level(json!({"name": "reviews"}));
    assert_eq!(
        set_weight(&cfg, &vs, &mut stable_missing, 10, &[])
            .unwrap_err()
            .to_string(),
        "Stable Service 'reviews-stable' not found in route"
    );
}

#[test]
fn several_named_routes_are_all_weighted() {
    let (cfg, vs) = host_level(json!({"name": "reviews", "routes": ["a", "b"]}));
    let mut object = json!({"spec": {"http": [
        {"name": "b", "route": split(100, 0)},
        {"name": "c", "route": [dest("elsewhere", 100)]},
        {"name": "a", "route": split(100, 0)}
    ]}});
    set_weight(&cfg, &vs, &mut object, 40, &[]).unwrap();
    assert_eq!(object["spec"]["http"][0]["route"], split(60, 40));
    assert_eq!(object["spec"]["http"][2]["route"], split(60, 40));
    assert_eq!(
        object["spec"]["http"][1]["route"],
        json!([dest("elsewhere", 100)])
    );
}

#[test]
fn tls_routes_match_by_port_and_the_union_of_sni_hosts() {
    let (cfg, vs) = host_level(json!({"name": "reviews",
        "tlsRoutes": [{"port": 443, "sniHosts": ["b.example.com", "a.example.com"]}]}));
    let mut object = json!({"spec": {"tls": [
        // Two match blocks, one port, hosts a+b: matches.
        {"match": [{"port": 443, "sniHosts": ["a.example.com"]},
                   {"port": 443, "sniHosts": ["b.example.com"]}],
         "route": split(100, 0)},
        // Hosts a only: no.
        {"match": [{"port": 443, "sniHosts": ["a.example.com"]}], "route": split(100, 0)},
        // Two ports: never matches.
        {"match": [{"port": 443, "sniHosts": ["a.example.com", "b.example.com"]},
                   {"port": 8443}], "route": split(100, 0)},
        // Same port and hosts: also matches (every matching route is weighted).
        {"match": [{"port": 443, "sniHosts": ["a.example.com", "b.example.com"]}],
         "route": split(100, 0)}
    ]}});
    set_weight(&cfg, &vs, &mut object, 25, &[]).unwrap();
    let weights: Vec<Value> = (0..4)
        .map(|i| object["spec"]["tls"][i]["route"].clone())
        .collect();
    assert_eq!(
        weights,
        [split(75, 25), split(100, 0), split(100, 0), split(75, 25)]
    );

    let (cfg, vs) = host_level(json!({"name": "reviews",
        "tlsRoutes": [{"port": 443, "sniHosts": ["c.example.com"]}]}));
    assert_eq!(
        set_weight(&cfg, &vs, &mut object, 25, &[])
            .unwrap_err()
            .to_string(),
        "No matching TLS routes found in the defined Virtual Service."
    );
    // Without tlsRoutes: the only TLS route, or Argo's error.
    let (cfg, vs) = host_level(json!({"name": "reviews"}));
    assert_eq!(
        set_weight(&cfg, &vs, &mut object, 25, &[])
            .unwrap_err()
            .to_string(),
        "spec.tls[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.tlsRoutes"
    );
    let mut single = json!({"spec": {"tls": [{"match": [{"port": 1}], "route": split(100, 0)}]}});
    set_weight(&cfg, &vs, &mut single, 5, &[]).unwrap();
    assert_eq!(single["spec"]["tls"][0]["route"], split(95, 5));
}

#[test]
fn tcp_routes_match_by_port() {
    let (cfg, vs) = host_level(json!({"name": "reviews", "tcpRoutes": [{"port": 9090}]}));
    let mut object = json!({"spec": {"tcp": [
        {"match": [{"port": 9091}], "route": split(100, 0)},
        {"match": [{"port": 9090}, {"port": 9090, "sourceLabels": {"a": "b"}}], "route": split(100, 0)}
    ]}});
    set_weight(&cfg, &vs, &mut object, 50, &[]).unwrap();
    assert_eq!(object["spec"]["tcp"][0]["route"], split(100, 0));
    assert_eq!(object["spec"]["tcp"][1]["route"], split(50, 50));
    let (cfg, vs) = host_level(json!({"name": "reviews", "tcpRoutes": [{"port": 1}]}));
    assert_eq!(
        set_weight(&cfg, &vs, &mut object, 50, &[])
            .unwrap_err()
            .to_string(),
        "No matching TCP routes found in the defined Virtual Service."
    );
    let (cfg, vs) = host_level(json!({"name": "reviews"}));
    assert_eq!(
        set_weight(&cfg, &vs, &mut object, 50, &[])
            .unwrap_err()
            .to_string(),
        "spec.tcp[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.tcpRoutes"
    );
}

fn experiment(service: &str, weight: i32) -> WeightDestination {
    WeightDestination {
        weight,
        service_name: Some(service.into()),
        pod_template_hash: Some(format!("{service}-hash")),
    }
}

#[test]
fn experiment_destinations_are_added_updated_and_removed() {
    let (cfg, vs) = host_level(json!({"name": "reviews"}));
    let mut object = json!({"spec": {"http": [{"route": [
        dest("reviews-stable", 100), dest("reviews-canary", 0),
        dest("exp-b", 3), dest("stray", 0), dest("gone", 7)
    ]}]}});
    let changes = set_weight(
        &cfg,
        &vs,
        &mut object,
        10,
        &[
            experiment("exp-c", 5),
            experiment("exp-b", 5),
            experiment("exp-a", 5),
        ],
    )
    .unwrap();
    assert_eq!(
        object["spec"]["http"][0]["route"],
        json!([
            dest("reviews-stable", 75),
            dest("reviews-canary", 10),
            dest("exp-b", 5),
            dest("stray", 0),
            dest("exp-a", 5),
            dest("exp-c", 5)
        ])
    );
    let described: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert!(
        described
            .contains(&"http route #0 destination `gone`: weight 7, want it removed".to_string()),
        "{described:?}"
    );
    assert!(
        described
            .contains(&"http route #0 destination `exp-a`: missing, want weight 5".to_string()),
        "{described:?}"
    );
    // The experiment ends: its destinations carry weight, so they go.
    set_weight(&cfg, &vs, &mut object, 10, &[]).unwrap();
    assert_eq!(
        object["spec"]["http"][0]["route"],
        json!([
            dest("reviews-stable", 90),
            dest("reviews-canary", 10),
            dest("stray", 0)
        ])
    );
}

fn subset(name: &str, weight: i64) -> Value {
    json!({"destination": {"host": "ratings", "subset": name}, "weight": weight})
}

fn subset_level(extra_subsets: Value) -> (IstioConfig, IstioVirtualService) {
    let mut ro = rollout(
        json!({
            "virtualService": {"name": "ratings"},
            "destinationRule": {"name": "ratings", "canarySubsetName": "canary",
                                "stableSubsetName": "stable", "additionalSubsetNames": extra_subsets}
        }),
        json!({}),
    );
    let canary = ro.spec.strategy.as_mut().unwrap().canary.as_mut().unwrap();
    canary.canary_service = None;
    canary.stable_service = None;
    let cfg = IstioConfig::from_rollout(&ro).unwrap();
    let vs = cfg.virtual_services[0].clone();
    (cfg, vs)
}

#[test]
fn subset_level_routing_weights_subsets_and_keeps_additional_subsets() {
    let (cfg, vs) = subset_level(json!(["shadow"]));
    let mut object = json!({"spec": {"http": [{"route": [
        subset("stable", 90), subset("canary", 0), subset("shadow", 10)
    ]}]}});
    set_weight(&cfg, &vs, &mut object, 30, &[]).unwrap();
    assert_eq!(
        object["spec"]["http"][0]["route"],
        json!([
            subset("stable", 60),
            subset("canary", 30),
            subset("shadow", 10)
        ])
    );
    // The stable weight never goes below 0.
    set_weight(&cfg, &vs, &mut object, 100, &[]).unwrap();
    assert_eq!(
        object["spec"]["http"][0]["route"],
        json!([
            subset("stable", 0),
            subset("canary", 100),
            subset("shadow", 10)
        ])
    );
    let mut missing = json!({"spec": {"http": [{"route": [subset("stable", 100)]}]}});
    assert_eq!(
        set_weight(&cfg, &vs, &mut missing, 30, &[])
            .unwrap_err()
            .to_string(),
        "Canary DestinationRule subset 'canary' not found in route"
    );
    let mut missing = json!({"spec": {"http": [{"route": [subset("canary", 100)]}]}});
    assert_eq!(
        set_weight(&cfg, &vs, &mut missing, 30, &[])
            .unwrap_err()
            .to_string(),
        "Stable DestinationRule subset 'stable' not found in route"
    );
}

fn managed() -> (IstioConfig, IstioVirtualService) {
    setup(
        json!({"virtualService": {"name": "reviews", "routes": ["primary"]}}),
        json!({
            "managedRoutes": [{"name": "beta"}, {"name": "mirror"}, {"name": "canary-only"}],
            "steps": [
                {"setHeaderRoute": {"name": "beta"}},
                {"setMirrorRoute": {"name": "mirror"}},
                {"setHeaderRoute": {"name": "unlisted"}}
            ]
        }),
    )
}

fn header(name: &str, value: StringMatch) -> HeaderRoutingMatch {
    HeaderRoutingMatch {
        header_name: name.into(),
        header_value: value,
    }
}

fn exact(v: &str) -> StringMatch {
    StringMatch {
        exact: Some(v.into()),
        ..StringMatch::default()
    }
}

#[test]
fn a_header_route_goes_on_top_and_points_at_the_canary() {
    let (cfg, vs) = managed();
    let mut object = virtual_service();
    let route = SetHeaderRoute {
        name: Some("beta".into()),
        r#match: Some(vec![
            header("x-beta", exact("true")),
            header(
                "user-agent",
                StringMatch {
                    regex: Some(".*Mobile.*".into()),
                    ..StringMatch::default()
                },
            ),
        ]),
    };
    assert!(set_header_route(&cfg, &vs, "reviews", &mut object, &route, "reviews-canary").unwrap());
    let http = object["spec"]["http"].as_array().unwrap();
    assert_eq!(http.len(), 3);
    assert_eq!(
        http[0],
        json!({
            "name": "beta",
            "match": [{"headers": {"x-beta": {"exact": "true"}}},
                      {"headers": {"user-agent": {"regex": ".*Mobile.*"}}}],
            "route": [{"destination": {"host": "reviews-canary", "port": {"number": 9080}}, "weight": 100}]
        })
    );
    assert_eq!(http[1], virtual_service()["spec"]["http"][0]);
    assert_eq!(http[2], virtual_service()["spec"]["http"][1]);
    // Again: unchanged.
    let before = object.clone();
    assert!(
        !set_header_route(&cfg, &vs, "reviews", &mut object, &route, "reviews-canary").unwrap()
    );
    assert_eq!(object, before);
    // Without match: removed.
    let remove = SetHeaderRoute {
        name: Some("beta".into()),
        r#match: None,
    };
    assert!(
        set_header_route(&cfg, &vs, "reviews", &mut object, &remove, "reviews-canary").unwrap()
    );
    assert_eq!(object, virtual_service());
    // An empty match list removes too (it would otherwise send everything to the canary).
    let empty = SetHeaderRoute {
        name: Some("beta".into()),
        r#match: Some(vec![]),
    };
    assert!(
        !set_header_route(&cfg, &vs, "reviews", &mut object, &empty, "reviews-canary").unwrap()
    );
}

#[test]
fn header_and_mirror_routes_need_http_routes_and_a_name() {
    let (cfg, vs) = managed();
    let mut object = json!({"spec": {"tcp": []}});
    let route = SetHeaderRoute {
        name: Some("beta".into()),
        r#match: Some(vec![header("x", exact("1"))]),
    };
    assert_eq!(
        set_header_route(&cfg, &vs, "reviews", &mut object, &route, "h")
            .unwrap_err()
            .to_string(),
        "spec.http not found in VirtualService `reviews`: header and mirror routes are HTTP routes"
    );
    let nameless = SetHeaderRoute {
        name: None,
        r#match: None,
    };
    assert_eq!(
        set_header_route(&cfg, &vs, "reviews", &mut virtual_service(), &nameless, "h")
            .unwrap_err()
            .to_string(),
        "setHeaderRoute.name is required"
    );
    let mirror = SetMirrorRoute {
        name: "mirror".into(),
        r#match: Some(vec![RouteMatch::default()]),
        percentage: None,
    };
    let mut no_weighted = json!({"spec": {"http": [{"name": "beta", "route": []}]}});
    let (cfg, vs) = setup(
        json!({"virtualService": {"name": "reviews"}}),
        json!({"managedRoutes": [{"name": "beta"}, {"name": "mirror"}]}),
    );
    assert_eq!(
        set_mirror_route(&cfg, &vs, "reviews", &mut no_weighted, &mirror, "h")
            .unwrap_err()
            .to_string(),
        "VirtualService `reviews` has no weighted HTTP route to copy into the mirror route"
    );
}

#[test]
fn a_mirror_route_copies_the_weighted_route_and_follows_its_weights() {
    let (cfg, vs) = managed();
    let mut object = virtual_service();
    set_weight(&cfg, &vs, &mut object, 20, &[]).unwrap();
    let mirror = SetMirrorRoute {
        name: "mirror".into(),
        r#match: Some(vec![RouteMatch {
            method: Some(exact("POST")),
            path: Some(StringMatch {
                prefix: Some("/api/orders".into()),
                ..StringMatch::default()
            }),
            headers: Some([("x-tenant".to_string(), exact("internal"))].into()),
        }]),
        percentage: Some(10),
    };
    assert!(
        set_mirror_route(&cfg, &vs, "reviews", &mut object, &mirror, "reviews-canary").unwrap()
    );
    let weighted = object["spec"]["http"][1]["route"].clone();
    assert_eq!(
        object["spec"]["http"][0],
        json!({
            "name": "mirror",
            "match": [{"method": {"exact": "POST"}, "uri": {"prefix": "/api/orders"},
                       "headers": {"x-tenant": {"exact": "internal"}}}],
            "route": weighted,
            "mirror": {"host": "reviews-canary", "port": {"number": 9080}},
            "mirrorPercentage": {"value": 10}
        })
    );
    // A header route goes before it: managedRoutes order is beta, mirror.
    let beta = SetHeaderRoute {
        name: Some("beta".into()),
        r#match: Some(vec![header("x-beta", exact("true"))]),
    };
    set_header_route(&cfg, &vs, "reviews", &mut object, &beta, "reviews-canary").unwrap();
    let names: Vec<Option<&str>> = object["spec"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            Some("beta"),
            Some("mirror"),
            Some("primary"),
            Some("legacy")
        ]
    );
    // The next weight moves both the weighted route and the mirror route's copy.
    set_weight(&cfg, &vs, &mut object, 50, &[]).unwrap();
    assert_eq!(object["spec"]["http"][2]["route"][0]["weight"], 50);
    assert_eq!(object["spec"]["http"][1]["route"][0]["weight"], 50);
    assert_eq!(object["spec"]["http"][1]["route"][1]["weight"], 50);
    // The header route points at the canary only; weights do not touch it.
    assert_eq!(object["spec"]["http"][0]["route"][0]["weight"], 100);
    // Removing the managed routes leaves the VirtualService as the user wrote it, at 50.
    assert!(remove_managed_routes(&cfg, &mut object));
    let mut want = virtual_service();
    want["spec"]["http"][0]["route"][0]["weight"] = json!(50);
    want["spec"]["http"][0]["route"][1]["weight"] = json!(50);
    assert_eq!(object["spec"]["http"], want["spec"]["http"]);
    assert!(!remove_managed_routes(&cfg, &mut object));
}

#[test]
fn without_routes_the_weighted_route_keeps_moving_while_a_mirror_route_exists() {
    let (cfg, vs) = setup(
        json!({"virtualService": {"name": "reviews"}}),
        json!({"managedRoutes": [{"name": "mirror"}]}),
    );
    let mut object = json!({"spec": {"http": [{"name": "main", "route": split(100, 0)}]}});
    let mirror = SetMirrorRoute {
        name: "mirror".into(),
        r#match: Some(vec![RouteMatch {
            path: Some(exact("/x")),
            ..RouteMatch::default()
        }]),
        percentage: None,
    };
    set_mirror_route(&cfg, &vs, "reviews", &mut object, &mirror, "reviews-canary").unwrap();
    assert_eq!(
        object["spec"]["http"][0]["mirrorPercentage"],
        json!({"value": 100})
    );
    set_weight(&cfg, &vs, &mut object, 30, &[]).unwrap();
    assert_eq!(object["spec"]["http"][0]["route"], split(70, 30));
    assert_eq!(object["spec"]["http"][1]["route"], split(70, 30));
}

#[test]
fn subset_level_header_routes_use_the_rule_host_and_canary_subset() {
    let (cfg, vs) = {
        let (mut cfg, vs) = subset_level(json!([]));
        cfg.managed_routes = vec!["beta".into()];
        (cfg, vs)
    };
    let mut object =
        json!({"spec": {"http": [{"route": [subset("stable", 100), subset("canary", 0)]}]}});
    let route = SetHeaderRoute {
        name: Some("beta".into()),
        r#match: Some(vec![header(
            "x-beta",
            StringMatch {
                prefix: Some("yes".into()),
                ..StringMatch::default()
            },
        )]),
    };
    set_header_route(
        &cfg,
        &vs,
        "ratings",
        &mut object,
        &route,
        "ratings.shop.svc.cluster.local",
    )
    .unwrap();
    assert_eq!(
        object["spec"]["http"][0]["route"],
        json!([{"destination": {"host": "ratings.shop.svc.cluster.local", "subset": "canary"}, "weight": 100}])
    );
}

#[test]
fn ordering_keeps_every_route_once() {
    let (cfg, _) = managed();
    let mut object = json!({"spec": {"http": [
        {"route": []}, {"name": "x", "route": []}, {"name": "mirror", "n": 1},
        {"route": [], "n": 2}, {"name": "beta"}, {"name": "mirror", "n": 3}
    ]}});
    order_routes(&cfg, &mut object);
    assert_eq!(
        object["spec"]["http"],
        json!([
            {"name": "beta"}, {"name": "mirror", "n": 1}, {"name": "mirror", "n": 3},
            {"route": []}, {"name": "x", "route": []}, {"route": [], "n": 2}
        ])
    );
}

#[test]
fn managed_routes_and_step_routes_are_removed() {
    let (cfg, _) = managed();
    let mut object = json!({"spec": {"http": [
        {"name": "unlisted"}, {"name": "beta"}, {"route": []}, {"name": "keep"}, {"name": "canary-only"}
    ]}});
    assert!(remove_managed_routes(&cfg, &mut object));
    assert_eq!(
        object["spec"]["http"],
        json!([{"route": []}, {"name": "keep"}])
    );
    let mut tls_only = json!({"spec": {"tls": []}});
    assert!(!remove_managed_routes(&cfg, &mut tls_only));
    assert_eq!(tls_only, json!({"spec": {"tls": []}}));
}

#[test]
fn a_route_list_of_the_wrong_type_is_an_error_not_a_panic() {
    let (cfg, vs) = host_level(json!({"name": "reviews"}));
    let mut object = json!({"spec": {"http": [{"route": {"oops": true}}]}});
    assert!(set_weight(&cfg, &vs, &mut object, 10, &[]).is_err());
}
