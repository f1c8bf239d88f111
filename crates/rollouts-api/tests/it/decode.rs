//! `rollouts_api::decode` names the path of a malformed field.

use rollouts_api::{Error, Rollout, decode};
use serde_json::json;

fn rollout(spec: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": { "name": "web" },
        "spec": spec,
    })
}

fn decode_error(doc: &serde_json::Value) -> (String, String) {
    match decode::<Rollout>(doc) {
        Err(Error::Decode { path, message }) => (path, message),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[test]
fn wrong_type_names_the_field() {
    let (path, message) = decode_error(&rollout(json!({ "replicas": "three" })));
    assert_eq!(path, "spec.replicas");
    assert_eq!(message, r#"invalid type: string "three", expected i32"#);
}

#[test]
fn wrong_type_deep_in_a_step_names_the_whole_path() {
    let doc = rollout(json!({
        "strategy": { "canary": { "steps": [
            { "setWeight": 10 },
            { "pause": { "duration": [1] } },
        ] } }
    }));
    let (path, _) = decode_error(&doc);
    assert_eq!(path, "spec.strategy.canary.steps[1].pause.duration");
}

#[test]
fn unknown_step_type_is_rejected_with_the_known_ones() {
    let doc = rollout(json!({ "strategy": { "canary": { "steps": [{ "setWieght": 20 }] } } }));
    let err = decode::<Rollout>(&doc).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "spec.strategy.canary.steps[0].setWieght: unknown field `setWieght`, \
             expected one of `setWeight`, `pause`"
        ),
        "{text}"
    );
    assert!(text.contains("`plugin`"), "{text}");
}

#[test]
fn unknown_fields_outside_steps_are_ignored() {
    // Objects written by a newer Argo may carry fields we do not know yet; the API server
    // keeps them only where the schema preserves unknown fields, but the controller must
    // still decode such objects.
    let doc = rollout(json!({
        "replicas": 2,
        "someFutureField": true,
        "strategy": { "blueGreen": { "activeService": "web", "futureOption": 1 } },
    }));
    let ro: Rollout = decode(&doc).expect("unknown fields are ignored");
    assert_eq!(ro.spec.replicas, Some(2));
    assert_eq!(
        ro.spec.blue_green().map(|b| b.active_service.as_str()),
        Some("web")
    );
}

#[test]
fn missing_required_field_is_named() {
    let doc = rollout(json!({ "strategy": { "blueGreen": {} } }));
    let (path, message) = decode_error(&doc);
    assert_eq!(path, "spec.strategy.blueGreen");
    assert_eq!(message, "missing field `activeService`");
}

#[test]
fn error_of_a_whole_document_says_so() {
    let err = decode::<Rollout>(&json!(42)).unwrap_err();
    assert!(
        err.to_string().starts_with(".: invalid type: integer `42`"),
        "{err}"
    );
}
