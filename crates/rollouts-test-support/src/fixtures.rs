//! Builders for test Rollouts (canary and blue-green).

use rollouts_api::Rollout;
use serde_json::{Value, json};

/// Builds a canary Rollout from JSON pieces, so tests read like manifests.
#[derive(Clone, Debug)]
pub struct RolloutBuilder {
    doc: Value,
}

impl RolloutBuilder {
    /// A canary Rollout `name` in namespace `default` with one container running `nginx:1`,
    /// selector `app=<name>`, 1 replica and no steps.
    pub fn canary(name: &str) -> Self {
        Self {
            doc: json!({
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Rollout",
                "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "generation": 1},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}
                    },
                    "strategy": {"canary": {}}
                }
            }),
        }
    }

    /// A blue-green Rollout `name` like [`RolloutBuilder::canary`], with active Service
    /// `<name>-active` and preview Service `<name>-preview`.
    pub fn blue_green(name: &str) -> Self {
        let mut b = Self::canary(name);
        b.doc["spec"]["strategy"] = json!({"blueGreen": {
            "activeService": format!("{name}-active"),
            "previewService": format!("{name}-preview"),
        }});
        b
    }

    /// Sets any field of `spec.strategy.blueGreen`.
    pub fn blue_green_field(mut self, key: &str, value: Value) -> Self {
        self.doc["spec"]["strategy"]["blueGreen"][key] = value;
        self
    }

    /// Removes a field of `spec.strategy.blueGreen`.
    pub fn without_blue_green_field(mut self, key: &str) -> Self {
        if let Some(bg) = self.doc["spec"]["strategy"]["blueGreen"].as_object_mut() {
            bg.remove(key);
        }
        self
    }

    /// Sets `spec.replicas`.
    pub fn replicas(mut self, n: i32) -> Self {
        self.doc["spec"]["replicas"] = json!(n);
        self
    }

    /// Removes `spec.replicas` (the controller defaults it).
    pub fn no_replicas(mut self) -> Self {
        if let Some(spec) = self.doc["spec"].as_object_mut() {
            spec.remove("replicas");
        }
        self
    }

    /// Sets the container image.
    pub fn image(mut self, image: &str) -> Self {
        self.doc["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
        self
    }

    /// Sets the canary steps (JSON array of steps).
    pub fn steps(mut self, steps: Value) -> Self {
        self.doc["spec"]["strategy"]["canary"]["steps"] = steps;
        self
    }

    /// Sets any field of `spec.strategy.canary`.
    pub fn canary_field(mut self, key: &str, value: Value) -> Self {
        self.doc["spec"]["strategy"]["canary"][key] = value;
        self
    }

    /// Sets any field of `spec`.
    pub fn spec_field(mut self, key: &str, value: Value) -> Self {
        self.doc["spec"][key] = value;
        self
    }

    /// Uses traffic routing through a plugin router named `fake` with services `<name>-canary`
    /// and `<name>-stable`.
    pub fn traffic_routed(self) -> Self {
        let name = self.doc["metadata"]["name"]
            .as_str()
            .unwrap_or("ro")
            .to_string();
        self.canary_field("canaryService", json!(format!("{name}-canary")))
            .canary_field("stableService", json!(format!("{name}-stable")))
            .canary_field("trafficRouting", json!({"plugins": {"fake": {}}}))
    }

    /// The Rollout.
    pub fn build(self) -> Rollout {
        rollouts_api::decode(&self.doc).expect("test rollout decodes")
    }
}
