//! Unit tests of the canary Ingress transformation: stable Ingress JSON + Rollout in, canary
//! Ingress (or patch) JSON out.

use super::*;

fn rollout(nginx: Value, max: Option<i32>) -> Rollout {
    let mut routing = json!({ "nginx": nginx });
    if let Some(max) = max {
        routing["maxTrafficWeight"] = json!(max);
    }
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "storefront", "namespace": "shop", "uid": "uid-1"},
        "spec": {
            "selector": {"matchLabels": {"app": "storefront"}},
            "strategy": {"canary": {
                "canaryService": "storefront-canary",
                "stableService": "storefront-stable",
                "trafficRouting": routing
            }}
        }
    }))
    .unwrap()
}

fn cfg(nginx: Value) -> NginxConfig {
    NginxConfig::from_rollout(&rollout(nginx, None)).unwrap()
}

fn owner() -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "storefront",
           "uid": "uid-1", "controller": true, "blockOwnerDeletion": true})
}

fn path(path: &str, service: &str) -> Value {
    json!({"path": path, "pathType": "Prefix",
           "backend": {"service": {"name": service, "port": {"number": 80}}}})
}

/// A stable Ingress with a rule for the stable Service (plus an unrelated path), a rule for
/// another Service only, a rule without `http`, TLS, a class and unrelated annotations.
fn stable_ingress() -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "storefront",
            "namespace": "shop",
            "labels": {"team": "web"},
            "annotations": {
                "kubernetes.io/ingress.class": "nginx",
                "nginx.ingress.kubernetes.io/rewrite-target": "/"
            }
        },
        "spec": {
            "ingressClassName": "nginx",
            "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}},
            "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
            "rules": [
                {"host": "shop.example.com", "http": {"paths": [
                    path("/", "storefront-stable"),
                    path("/static", "cdn")
                ]}},
                {"host": "admin.example.com", "http": {"paths": [path("/", "admin")]}},
                {"host": "bare.example.com"}
            ]
        }
    })
}

#[test]
fn configuration_defaults_and_precedence() {
    let c = cfg(json!({"stableIngress": "storefront"}));
    assert_eq!(c.stable_ingresses, ["storefront"]);
    assert_eq!(c.annotation_prefix, "nginx.ingress.kubernetes.io");
    assert_eq!(c.namespace, "shop");
    assert_eq!(c.rollout_uid.as_deref(), Some("uid-1"));
    assert_eq!(c.max_traffic_weight, None);
    // stableIngresses wins over stableIngress.
    let c = cfg(json!({"stableIngress": "a", "stableIngresses": ["b", "c"]}));
    assert_eq!(c.stable_ingresses, ["b", "c"]);
    // An empty list falls back to stableIngress.
    let c = cfg(json!({"stableIngress": "a", "stableIngresses": []}));
    assert_eq!(c.stable_ingresses, ["a"]);
    let c = NginxConfig::from_rollout(&rollout(
        json!({"stableIngress": "a", "annotationPrefix": "custom.nginx.org"}),
        Some(1000),
    ))
    .unwrap();
    assert_eq!(c.annotation("canary"), "custom.nginx.org/canary");
    assert_eq!(c.max_traffic_weight, Some(1000));
}

#[test]
fn configuration_errors_name_the_field() {
    let err = NginxConfig::from_rollout(&rollout(json!({}), None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.strategy.canary.trafficRouting.nginx.stableIngress or stableIngresses is required"
    );
    let err = NginxConfig::from_rollout(&rollout(json!({"stableIngresses": ["a", ""]}), None))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.strategy.canary.trafficRouting.nginx.stableIngresses has an empty name"
    );
    let mut ro = rollout(json!({"stableIngress": "a"}), None);
    ro.spec
        .strategy
        .as_mut()
        .unwrap()
        .canary
        .as_mut()
        .unwrap()
        .stable_service = None;
    assert_eq!(
        NginxConfig::from_rollout(&ro).unwrap_err().to_string(),
        "spec.strategy.canary.stableService is required with NGINX"
    );
}

#[test]
fn canary_names_are_cut_to_fit_253_characters() {
    assert_eq!(
        canary_ingress_name("storefront", "storefront"),
        "storefront-storefront-canary"
    );
    let long = "i".repeat(300);
    let name = canary_ingress_name("ro", &long);
    assert_eq!(name.len(), 253);
    assert_eq!(name, format!("ro-{}-canary", "i".repeat(243)));
    // Exactly 246 characters before the suffix: kept whole.
    let exact = "e".repeat(246 - "ro-".len());
    assert_eq!(
        canary_ingress_name("ro", &exact),
        format!("ro-{exact}-canary")
    );
}

#[test]
fn the_canary_ingress_copies_the_stable_services_rules_tls_and_class() {
    let c = cfg(json!({"stableIngress": "storefront"}));
    let canary = desired_canary(
        &c,
        Some(owner()),
        "storefront",
        &stable_ingress(),
        "storefront-storefront-canary",
        20,
    )
    .unwrap();
    assert_eq!(
        canary,
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": "storefront-storefront-canary",
                "namespace": "shop",
                "ownerReferences": [owner()],
                "annotations": {
                    "kubernetes.io/ingress.class": "nginx",
                    "nginx.ingress.kubernetes.io/canary": "true",
                    "nginx.ingress.kubernetes.io/canary-weight": "20"
                }
            },
            "spec": {
                "ingressClassName": "nginx",
                "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
                "rules": [{"host": "shop.example.com", "http": {"paths": [
                    path("/", "storefront-canary"),
                    path("/static", "cdn")
                ]}}]
            }
        })
    );
}

#[test]
fn every_rule_using_the_stable_service_is_copied() {
    let c = cfg(json!({"stableIngress": "storefront"}));
    let stable = json!({"spec": {"rules": [
        {"host": "a.example.com", "http": {"paths": [path("/", "storefront-stable")]}},
        {"host": "b.example.com", "http": {"paths": [path("/x", "other"), path("/y", "storefront-stable")]}}
    ]}});
    let rules = canary_rules(&c, &stable);
    assert_eq!(
        rules,
        [
            json!({"host": "a.example.com", "http": {"paths": [path("/", "storefront-canary")]}}),
            json!({"host": "b.example.com", "http": {"paths": [path("/x", "other"), path("/y", "storefront-canary")]}})
        ]
    );
    // No TLS, no class: none in the canary either.
    let canary = desired_canary(&c, None, "storefront", &stable, "n", 0).unwrap();
    assert_eq!(canary["spec"].get("tls"), None);
    assert_eq!(canary["spec"].get("ingressClassName"), None);
    assert_eq!(canary["metadata"].get("ownerReferences"), None);
}

#[test]
fn no_rule_for_the_stable_service_names_the_ingress_that_lacks_it() {
    let c = cfg(json!({"stableIngresses": ["public", "internal"]}));
    let stable = json!({"spec": {"rules": [{"http": {"paths": [path("/", "other")]}}]}});
    let err = desired_canary(&c, None, "internal", &stable, "n", 10).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ingress `internal` has no rules using service storefront-stable backend"
    );
}

#[test]
fn annotations_follow_argos_precedence_and_prefixing() {
    let c = NginxConfig::from_rollout(&rollout(
        json!({
            "stableIngress": "storefront",
            "additionalIngressAnnotations": {
                "canary-by-header": "x-canary",
                "nginx.ingress.kubernetes.io/canary-by-cookie": "beta",
                "canary-weight": "99",
                "canary": "false"
            },
            "canaryIngressAnnotations": {
                "example.com/owner": "team",
                "nginx.ingress.kubernetes.io/canary-by-header": "x-override"
            }
        }),
        Some(1000),
    ))
    .unwrap();
    assert_eq!(
        serde_json::to_value(canary_annotations(&c, &stable_ingress(), 200)).unwrap(),
        json!({
            "kubernetes.io/ingress.class": "nginx",
            "example.com/owner": "team",
            "nginx.ingress.kubernetes.io/canary": "true",
            "nginx.ingress.kubernetes.io/canary-by-cookie": "beta",
            "nginx.ingress.kubernetes.io/canary-by-header": "x-override",
            "nginx.ingress.kubernetes.io/canary-weight": "200",
            "nginx.ingress.kubernetes.io/canary-weight-total": "1000"
        })
    );
}

#[test]
fn a_custom_prefix_is_a_plain_string_prefix() {
    let c = cfg(json!({
        "stableIngress": "storefront",
        "annotationPrefix": "custom.nginx.org",
        "additionalIngressAnnotations": {
            "custom.nginx.org-extra": "kept-as-is",
            "canary-by-header": "x"
        }
    }));
    let stable = json!({"metadata": {}, "spec": {}});
    assert_eq!(
        serde_json::to_value(canary_annotations(&c, &stable, 5)).unwrap(),
        json!({
            "custom.nginx.org-extra": "kept-as-is",
            "custom.nginx.org/canary": "true",
            "custom.nginx.org/canary-by-header": "x",
            "custom.nginx.org/canary-weight": "5"
        })
    );
}

/// The canary Ingress as the cluster holds it after creation, with what others added: a label,
/// an annotation, a `defaultBackend`, server fields.
fn stored_canary(c: &NginxConfig, weight: i32) -> Value {
    let mut canary = desired_canary(
        c,
        Some(owner()),
        "storefront",
        &stable_ingress(),
        "storefront-storefront-canary",
        weight,
    )
    .unwrap();
    canary["metadata"]["labels"] = json!({"policy": "audited"});
    canary["metadata"]["annotations"]["monitoring.example.com/scrape"] = json!("true");
    canary["metadata"]["resourceVersion"] = json!("42");
    canary["spec"]["defaultBackend"] = json!({"service": {"name": "x", "port": {"number": 1}}});
    canary["status"] = json!({"loadBalancer": {}});
    canary
}

#[test]
fn the_patch_changes_only_the_weight_and_leaves_what_others_added() {
    let c = cfg(json!({"stableIngress": "storefront"}));
    let current = stored_canary(&c, 20);
    let want = desired_canary(&c, Some(owner()), "storefront", &stable_ingress(), "n", 20).unwrap();
    assert_eq!(canary_patch(&c, &current, &want), None);
    let want = desired_canary(&c, Some(owner()), "storefront", &stable_ingress(), "n", 50).unwrap();
    assert_eq!(
        canary_patch(&c, &current, &want),
        Some(json!({"metadata": {"annotations": {
            "nginx.ingress.kubernetes.io/canary-weight": "50"
        }}}))
    );
}

#[test]
fn the_patch_follows_changes_of_the_stable_ingress() {
    let c = cfg(json!({"stableIngress": "storefront"}));
    let current = stored_canary(&c, 20);
    let mut stable = stable_ingress();
    stable["spec"].as_object_mut().unwrap().remove("tls");
    stable["spec"]["ingressClassName"] = json!("nginx-internal");
    stable["spec"]["rules"][0]["http"]["paths"][0]["path"] = json!("/shop");
    let want = desired_canary(&c, Some(owner()), "storefront", &stable, "n", 20).unwrap();
    let mut rule = stable["spec"]["rules"][0].clone();
    rule["http"]["paths"][0]["backend"]["service"]["name"] = json!("storefront-canary");
    assert_eq!(
        canary_patch(&c, &current, &want),
        Some(json!({"spec": {
            "rules": [rule],
            "tls": null,
            "ingressClassName": "nginx-internal"
        }}))
    );
}

#[test]
fn a_weight_total_left_by_an_earlier_max_traffic_weight_is_removed() {
    let with_max =
        NginxConfig::from_rollout(&rollout(json!({"stableIngress": "storefront"}), Some(1000)))
            .unwrap();
    let current = stored_canary(&with_max, 200);
    let c = cfg(json!({"stableIngress": "storefront"}));
    let want = desired_canary(&c, Some(owner()), "storefront", &stable_ingress(), "n", 20).unwrap();
    assert_eq!(
        canary_patch(&c, &current, &want),
        Some(json!({"metadata": {"annotations": {
            "nginx.ingress.kubernetes.io/canary-weight": "20",
            "nginx.ingress.kubernetes.io/canary-weight-total": null
        }}}))
    );
    // Still set: kept and compared.
    let want = desired_canary(
        &with_max,
        Some(owner()),
        "storefront",
        &stable_ingress(),
        "n",
        200,
    )
    .unwrap();
    assert_eq!(canary_patch(&with_max, &current, &want), None);
}

#[test]
fn mismatch_reads_the_stored_annotations() {
    let c = cfg(json!({"stableIngress": "storefront"}));
    let name = "storefront-storefront-canary";
    let current = stored_canary(&c, 20);
    assert_eq!(mismatch(&c, name, Some(&current), 20), None);
    assert_eq!(
        mismatch(&c, name, None, 20),
        Some((None, format!("canary Ingress `{name}` does not exist")))
    );
    assert_eq!(
        mismatch(&c, name, Some(&current), 30),
        Some((
            Some(20),
            format!(
                "canary Ingress `{name}` has nginx.ingress.kubernetes.io/canary-weight \"20\", want \"30\""
            )
        ))
    );
    let mut off = current.clone();
    off["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary"] = json!("false");
    assert_eq!(
        mismatch(&c, name, Some(&off), 20),
        Some((
            Some(20),
            format!(
                "canary Ingress `{name}` has nginx.ingress.kubernetes.io/canary \"false\", want \"true\""
            )
        ))
    );
    let mut garbage = current.clone();
    garbage["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] = json!("x");
    assert_eq!(
        mismatch(&c, name, Some(&garbage), 20).map(|m| m.0),
        Some(None)
    );
    let mut total = current.clone();
    total["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight-total"] =
        json!("1000");
    assert_eq!(
        mismatch(&c, name, Some(&total), 20),
        Some((
            Some(20),
            format!(
                "canary Ingress `{name}` has nginx.ingress.kubernetes.io/canary-weight-total \"1000\", want it unset"
            )
        ))
    );
    let mut moved = current;
    moved["spec"]["rules"] = json!([{"http": {"paths": [path("/", "storefront-stable")]}}]);
    assert_eq!(
        mismatch(&c, name, Some(&moved), 20),
        Some((
            Some(20),
            format!(
                "canary Ingress `{name}` has no path to the canary Service `storefront-canary`"
            )
        ))
    );
}

#[test]
fn mismatch_with_max_traffic_weight_wants_the_total() {
    let c = NginxConfig::from_rollout(&rollout(json!({"stableIngress": "storefront"}), Some(1000)))
        .unwrap();
    let name = "storefront-storefront-canary";
    let current = stored_canary(&c, 200);
    assert_eq!(mismatch(&c, name, Some(&current), 200), None);
    let mut no_total = current;
    no_total["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("nginx.ingress.kubernetes.io/canary-weight-total");
    assert_eq!(
        mismatch(&c, name, Some(&no_total), 200),
        Some((
            Some(200),
            format!(
                "canary Ingress `{name}` has nginx.ingress.kubernetes.io/canary-weight-total \"(unset)\", want \"1000\""
            )
        ))
    );
}
