//! Small helpers for plugins that read and write Kubernetes objects as JSON.
//!
//! Routers change objects that users own (a VirtualService, a TrafficSplit, ...) and must never
//! lose a field they do not model, so they handle objects as `serde_json::Value` (through
//! `kube::api::DynamicObject`) rather than typed structs. These helpers cover what every such
//! router needs: the owner reference to the Rollout, the ownership test, and reading a client
//! error; and, for providers, reading a Secret of the controller's namespace.

use k8s_openapi::api::core::v1::Secret;
use rollouts_api::Rollout;
use serde_json::{Value, json};

/// The controller owner reference of an object that belongs to `rollout` (what Argo's
/// `metav1.NewControllerRef` produces): `controller` and `blockOwnerDeletion` are true. `None`
/// when the rollout has no name or uid (it was never stored, so nothing can be owned by it).
pub fn controller_reference(rollout: &Rollout) -> Option<Value> {
    let name = rollout.metadata.name.as_deref().filter(|n| !n.is_empty())?;
    let uid = rollout.metadata.uid.as_deref().filter(|u| !u.is_empty())?;
    Some(json!({
        "apiVersion": rollouts_api::API_VERSION,
        "kind": "Rollout",
        "name": name,
        "uid": uid,
        "controller": true,
        "blockOwnerDeletion": true,
    }))
}

/// Whether `object`'s controller owner reference (the one with `controller: true`) names the
/// object with `uid` (Argo's `metav1.IsControlledBy`).
pub fn is_controlled_by(object: &Value, uid: &str) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["controller"].as_bool() == Some(true))
        .is_some_and(|r| r["uid"].as_str() == Some(uid))
}

/// The HTTP status of an API error (`404`, `409`, ...), if the server answered with one.
pub fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// The text of an API error as Argo shows it: the Status message
/// (`virtualservices.networking.istio.io "web" not found`), or the client error.
pub fn error_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

/// Reads the Secret `name` in `namespace` with `client`. The error is a message for a
/// measurement: that there is no client to read it with, or what the API server answered.
pub async fn read_secret(
    client: Option<&kube::Client>,
    namespace: &str,
    name: &str,
) -> Result<Secret, String> {
    let client = client.cloned().ok_or_else(|| {
        format!("no Kubernetes client to read secret {name:?} in namespace {namespace:?}")
    })?;
    kube::Api::<Secret>::namespaced(client, namespace)
        .get(name)
        .await
        .map_err(|e| error_message(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(name: Option<&str>, uid: Option<&str>) -> Rollout {
        let mut ro = Rollout::default();
        ro.metadata.name = name.map(String::from);
        ro.metadata.uid = uid.map(String::from);
        ro
    }

    #[test]
    fn controller_reference_needs_a_name_and_a_uid() {
        assert_eq!(
            controller_reference(&rollout(Some("web"), Some("u-1"))),
            Some(json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "web",
                "uid": "u-1", "controller": true, "blockOwnerDeletion": true
            }))
        );
        assert_eq!(controller_reference(&rollout(Some("web"), None)), None);
        assert_eq!(controller_reference(&rollout(None, Some("u-1"))), None);
    }

    #[test]
    fn api_errors_read_as_the_servers_message() {
        let status = kube::core::Status {
            code: 404,
            message: r#"virtualservices.networking.istio.io "web" not found"#.into(),
            reason: "NotFound".into(),
            ..Default::default()
        };
        let error = kube::Error::Api(Box::new(status));
        assert_eq!(status_code(&error), Some(404));
        assert_eq!(
            error_message(&error),
            r#"virtualservices.networking.istio.io "web" not found"#
        );
        let wrapped = crate::PluginError::Kube {
            plugin: "istio",
            action: "getting VirtualService `web`".into(),
            source: error,
        };
        assert_eq!(
            wrapped.to_string(),
            r#"istio: getting VirtualService `web`: virtualservices.networking.istio.io "web" not found"#
        );
        let other = kube::Error::LinesCodecMaxLineLengthExceeded;
        assert_eq!(status_code(&other), None);
        assert_eq!(error_message(&other), other.to_string());
    }

    #[test]
    fn only_the_controller_reference_counts() {
        let owned = json!({"metadata": {"ownerReferences": [
            {"uid": "other", "controller": false},
            {"uid": "u-1", "controller": true}
        ]}});
        assert!(is_controlled_by(&owned, "u-1"));
        assert!(!is_controlled_by(&owned, "other"));
        let not_controller = json!({"metadata": {"ownerReferences": [{"uid": "u-1"}]}});
        assert!(!is_controlled_by(&not_controller, "u-1"));
        assert!(!is_controlled_by(&json!({"metadata": {}}), "u-1"));
    }
}
