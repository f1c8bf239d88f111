//! The plugin registry, exercised through real `inventory` registrations from a separate crate.

use std::sync::Arc;

use rollouts_api::Rollout;
use rollouts_plugin::{
    DiscardEvents, MeasureRequest, MetricProviderPlugin, Observation, PluginError, PluginKind,
    ProviderInit, Registry, RouterInit, TrafficRouterPlugin, WeightVerification,
};
// Linking the crate is what makes its registrations visible: this line is the whole mechanism.
use rollouts_fake_plugins as fakes;

fn offline_client() -> kube::Client {
    let service = tower::service_fn(|_request: http::Request<kube::client::Body>| async {
        Err::<http::Response<kube::client::Body>, _>(std::io::Error::other(
            "these tests make no API calls",
        ))
    });
    kube::Client::new(service, "default")
}

fn rollout(json: serde_json::Value) -> Rollout {
    rollouts_api::decode(&json).expect("test rollout decodes")
}

fn fake_routed_rollout(name: &str) -> Rollout {
    rollout(serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": { "name": name, "namespace": "shop" },
        "spec": { "strategy": { "canary": {
            "trafficRouting": { "plugins": { "rollouts-rs/fake": {} } },
            "steps": [{ "setWeight": 20 }]
        } } }
    }))
}

#[test]
fn registrations_from_a_linked_crate_are_found() {
    let registry = Registry::collect().expect("no duplicate names");
    assert_eq!(registry.router_names(), vec![fakes::NAME]);
    assert_eq!(registry.provider_names(), vec![fakes::NAME]);
    assert_eq!(
        registry.describe(),
        "traffic routers: rollouts-rs/fake\nmetric providers: rollouts-rs/fake"
    );
}

#[test]
fn a_missing_plugin_is_an_error_that_says_so() {
    let registry = Registry::collect().unwrap();
    let err = registry.router("istio").unwrap_err();
    assert!(matches!(
        &err,
        PluginError::NotCompiled { kind: PluginKind::TrafficRouter, name } if name == "istio"
    ));
    assert_eq!(
        err.to_string(),
        "traffic router `istio` is not compiled into this build"
    );
    assert_eq!(
        registry.provider("datadog").unwrap_err().to_string(),
        "metric provider `datadog` is not compiled into this build"
    );
}

static ROUTER_A: TrafficRouterPlugin = TrafficRouterPlugin {
    name: "same",
    summary: "first",
    build: |_| {
        Err(PluginError::Other {
            plugin: "same",
            message: "not built in this test".into(),
        })
    },
};
static ROUTER_B: TrafficRouterPlugin = TrafficRouterPlugin {
    name: "same",
    summary: "second",
    build: |_| {
        Err(PluginError::Other {
            plugin: "same",
            message: "not built in this test".into(),
        })
    },
};
static PROVIDER_Z: MetricProviderPlugin = MetricProviderPlugin {
    name: "zeta",
    summary: "z",
    build: |_| {
        Err(PluginError::Other {
            plugin: "zeta",
            message: "not built in this test".into(),
        })
    },
};
static PROVIDER_A: MetricProviderPlugin = MetricProviderPlugin {
    name: "alpha",
    summary: "a",
    build: |_| {
        Err(PluginError::Other {
            plugin: "alpha",
            message: "not built in this test".into(),
        })
    },
};

#[test]
fn duplicate_names_are_rejected_and_names_are_sorted() {
    let err = Registry::from_plugins([&ROUTER_A, &ROUTER_B], []).unwrap_err();
    assert_eq!(
        err.to_string(),
        "traffic router `same` is registered twice: two crates claim the same name"
    );
    let registry = Registry::from_plugins([&ROUTER_A], [&PROVIDER_Z, &PROVIDER_A]).unwrap();
    assert_eq!(registry.provider_names(), vec!["alpha", "zeta"]);
    assert_eq!(
        registry.describe(),
        "traffic routers: same\nmetric providers: alpha, zeta"
    );
}

#[tokio::test]
async fn the_fake_router_is_built_from_the_registry_and_verifies_what_it_stores() {
    let registry = Registry::collect().unwrap();
    let ro = fake_routed_rollout("verify");
    let router = (registry.router(fakes::NAME).unwrap().build)(RouterInit {
        client: offline_client(),
        rollout: &ro,
        events: Arc::new(DiscardEvents),
    })
    .expect("configured rollout builds a router");
    router.update_hash("abc", "def", &[]).await.unwrap();
    router.set_weight(20, &[]).await.unwrap();
    assert_eq!(
        router.verify_weight(20, &[]).await.unwrap(),
        WeightVerification::Verified
    );
    fakes::tamper_weight("shop/verify", 55);
    assert_eq!(
        router.verify_weight(20, &[]).await.unwrap(),
        WeightVerification::Mismatch {
            observed: Some(55),
            detail: "fake router holds 55 for shop/verify, want 20".into()
        }
    );
    assert_eq!(
        fakes::router_calls("shop/verify"),
        vec![
            fakes::RouterCall::UpdateHash {
                canary: "abc".into(),
                stable: "def".into()
            },
            fakes::RouterCall::SetWeight(20),
        ]
    );
}

#[tokio::test]
async fn a_router_without_its_block_is_a_config_error_naming_the_field() {
    let registry = Registry::collect().unwrap();
    let ro = rollout(serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": { "name": "plain" },
        "spec": { "strategy": { "canary": {} } }
    }));
    let err = match (registry.router(fakes::NAME).unwrap().build)(RouterInit {
        client: offline_client(),
        rollout: &ro,
        events: Arc::new(DiscardEvents),
    }) {
        Ok(_) => panic!("a rollout without the plugin block must not build a router"),
        Err(err) => err,
    };
    assert_eq!(
        err.to_string(),
        "rollouts-rs/fake: invalid configuration: spec.strategy.canary.trafficRouting.plugins.rollouts-rs/fake is not set"
    );
}

#[tokio::test]
async fn the_fake_provider_returns_scripted_values_as_data() {
    let registry = Registry::collect().unwrap();
    let provider = (registry.provider(fakes::NAME).unwrap().build)(&ProviderInit {
        client: None,
        controller_namespace: "argo-rollouts".into(),
    })
    .unwrap();
    let run: rollouts_api::AnalysisRun = rollouts_api::decode(&serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": { "name": "run", "namespace": "shop" },
        "spec": { "metrics": [
            { "name": "ok", "provider": { "plugin": { "rollouts-rs/fake": { "values": [0.99] } } } },
            { "name": "broken", "provider": { "plugin": { "rollouts-rs/fake": { "values": ["error: boom"] } } } },
            { "name": "empty", "provider": { "plugin": { "rollouts-rs/fake": {} } } }
        ] }
    }))
    .unwrap();
    let metrics = &run.spec.metrics;
    let measure = |i: usize| MeasureRequest {
        run: &run,
        metric: &metrics[i],
        now: "2026-11-21T12:00:00Z".parse().unwrap(),
    };
    assert_eq!(
        provider.run(measure(0)).await,
        Observation::Value {
            result: serde_json::json!(0.99),
            value: "0.99".into(),
            metadata: Default::default()
        }
    );
    assert_eq!(provider.run(measure(1)).await, Observation::error("boom"));
    assert_eq!(
        provider.run(measure(2)).await,
        Observation::error("provider.plugin.rollouts-rs/fake.values must be a non-empty list")
    );
}
