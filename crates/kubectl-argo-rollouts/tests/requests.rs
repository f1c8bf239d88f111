//! What the commands send to the API server, checked against a mock server (tower-test): the
//! method, the path (status subresource or main resource), the content type and the body,
//! including the fall-back to the main resource when a CRD has no status subresource.

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use kubectl_argo_rollouts::client::Kube;
use kubectl_argo_rollouts::commands::actions;
use kubectl_argo_rollouts::error::{EXIT_CLUSTER, Error};
use kubectl_argo_rollouts::patches::PromoteMode;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

const BASE: &str = "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts";

fn rollout(status: Value) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
        "spec": {"strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}]}}},
        "status": status,
    })
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

fn status_404(message: &str, name: Option<&str>) -> Value {
    let mut s = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": message});
    if let Some(n) = name {
        s["details"] = json!({"name": n, "group": "argoproj.io", "kind": "rollouts"});
    }
    s
}

/// One expected request: method, path, and (for patches) content type and body.
struct Expect {
    method: &'static str,
    path: String,
    patch: Option<(&'static str, Value)>,
    reply: (u16, Value),
}

type Mock = Handle<Request<Body>, Response<Body>>;

async fn serve(mut handle: Mock, script: Vec<Expect>) {
    for (i, e) in script.into_iter().enumerate() {
        let (req, send): (Request<Body>, SendResponse<Response<Body>>) = handle
            .next_request()
            .await
            .unwrap_or_else(|| panic!("request {i} never came"));
        assert_eq!(req.method().as_str(), e.method, "request {i}");
        assert_eq!(req.uri().path(), e.path, "request {i}");
        if let Some((content_type, body)) = e.patch {
            assert_eq!(
                req.headers().get("content-type").unwrap().to_str().unwrap(),
                content_type,
                "request {i}"
            );
            let bytes = req.into_body().collect_bytes().await.unwrap();
            let sent: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(sent, body, "request {i}");
        }
        send.send_response(json_response(e.reply.0, &e.reply.1));
    }
}

fn kube() -> (Kube, Mock) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Kube::new(Client::new(svc, "shop"), "shop"), handle)
}

const MERGE: &str = "application/merge-patch+json";

#[tokio::test]
async fn promote_patches_the_status_subresource() {
    let (kube, handle) = kube();
    let paused = rollout(json!({"currentStepIndex": 1, "controllerPause": true,
        "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2025-01-01T00:00:00Z"}]}));
    let server = tokio::spawn(serve(
        handle,
        vec![
            Expect {
                method: "GET",
                path: format!("{BASE}/web"),
                patch: None,
                reply: (200, paused.clone()),
            },
            Expect {
                method: "PATCH",
                path: format!("{BASE}/web/status"),
                patch: Some((MERGE, json!({"status": {"pauseConditions": null}}))),
                reply: (200, paused),
            },
        ],
    ));
    let mut out = Vec::new();
    actions::promote(&kube, "web", PromoteMode::Step, &mut out)
        .await
        .unwrap();
    server.await.unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "rollout 'web' promoted\n");
}

#[tokio::test]
async fn promote_falls_back_to_the_main_resource_without_a_status_subresource() {
    let (kube, handle) = kube();
    let mut paused = rollout(json!({"currentStepIndex": 1}));
    paused["spec"]["paused"] = json!(true);
    let server = tokio::spawn(serve(
        handle,
        vec![
            Expect {
                method: "GET",
                path: format!("{BASE}/web"),
                patch: None,
                reply: (200, paused.clone()),
            },
            Expect {
                method: "PATCH",
                path: format!("{BASE}/web/status"),
                patch: Some((
                    MERGE,
                    json!({"status": {"pauseConditions": null, "currentStepIndex": 2}}),
                )),
                reply: (
                    404,
                    status_404("the server could not find the requested resource", None),
                ),
            },
            // The unified patch replaces the spec patch.
            Expect {
                method: "PATCH",
                path: format!("{BASE}/web"),
                patch: Some((
                    MERGE,
                    json!({"spec": {"paused": false}, "status": {"pauseConditions": null, "currentStepIndex": 2}}),
                )),
                reply: (200, paused),
            },
        ],
    ));
    let mut out = Vec::new();
    actions::promote(&kube, "web", PromoteMode::Step, &mut out)
        .await
        .unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn abort_and_retry_fall_back_too() {
    let (kube, handle) = kube();
    let ro = rollout(json!({}));
    let server = tokio::spawn(serve(
        handle,
        vec![
            Expect {
                method: "PATCH",
                path: format!("{BASE}/web/status"),
                patch: Some((MERGE, json!({"status": {"abort": true}}))),
                reply: (
                    404,
                    status_404("the server could not find the requested resource", None),
                ),
            },
            Expect {
                method: "PATCH",
                path: format!("{BASE}/web"),
                patch: Some((MERGE, json!({"status": {"abort": true}}))),
                reply: (200, ro.clone()),
            },
            Expect {
                method: "PATCH",
                path: format!("{BASE}/web/status"),
                patch: Some((MERGE, json!({"status": {"abort": false}}))),
                reply: (200, ro),
            },
        ],
    ));
    let mut out = Vec::new();
    actions::abort(&kube, &["web".into()], &mut out)
        .await
        .unwrap();
    actions::retry_rollout(&kube, &["web".into()], &mut out)
        .await
        .unwrap();
    server.await.unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "rollout 'web' aborted\nrollout 'web' retried\n"
    );
}

#[tokio::test]
async fn a_missing_rollout_is_not_found_on_both_endpoints() {
    let (kube, handle) = kube();
    let gone = status_404("rollouts.argoproj.io \"web\" not found", Some("web"));
    let server = tokio::spawn(serve(
        handle,
        vec![
            Expect {
                method: "PATCH",
                path: format!("{BASE}/web/status"),
                patch: None,
                reply: (404, gone.clone()),
            },
            Expect {
                method: "PATCH",
                path: format!("{BASE}/web"),
                patch: None,
                reply: (404, gone),
            },
        ],
    ));
    let err = actions::abort(&kube, &["web".into()], &mut Vec::new())
        .await
        .unwrap_err();
    server.await.unwrap();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(err.exit_code(), EXIT_CLUSTER);
}

#[tokio::test]
async fn pause_restart_and_terminate_patch_the_main_resource() {
    let (kube, handle) = kube();
    let ro = rollout(json!({}));
    let run = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": "r1", "namespace": "shop"}, "spec": {"metrics": []}});
    let server = tokio::spawn(serve(
        handle,
        vec![
            Expect {
                method: "PATCH",
                path: format!("{BASE}/web"),
                patch: Some((MERGE, json!({"spec": {"paused": true}}))),
                reply: (200, ro.clone()),
            },
            Expect {
                method: "PATCH",
                path: format!("{BASE}/web"),
                patch: Some((
                    MERGE,
                    json!({"spec": {"restartAt": "2025-03-04T05:06:37Z"}}),
                )),
                reply: (200, ro),
            },
            Expect {
                method: "PATCH",
                path: "/apis/argoproj.io/v1alpha1/namespaces/shop/analysisruns/r1".into(),
                patch: Some((MERGE, json!({"spec": {"terminate": true}}))),
                reply: (200, run),
            },
        ],
    ));
    let mut out = Vec::new();
    actions::pause(&kube, &["web".into()], &mut out)
        .await
        .unwrap();
    let now = "2025-03-04T05:06:07.5Z".parse().unwrap();
    actions::restart(&kube, "web", Some("30s"), now, &mut out)
        .await
        .unwrap();
    actions::terminate_analysis_runs(&kube, &["r1".into()], &mut out)
        .await
        .unwrap();
    server.await.unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "rollout 'web' paused\nrollout 'web' restarts in 30s\nanalysisRun 'r1' terminated\n"
    );
}

#[tokio::test]
async fn undo_sends_a_json_patch_of_the_previous_template() {
    let (kube, handle) = kube();
    let mut ro = rollout(json!({}));
    ro["spec"]["selector"] = json!({"matchLabels": {"app": "web"}});
    ro["spec"]["template"] = json!({"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "web:3"}]}});
    let rs = |name: &str, rev: &str, image: &str| {
        json!({"metadata": {"name": name, "namespace": "shop",
            "annotations": {"rollout.argoproj.io/revision": rev},
            "labels": {"app": "web", "rollouts-pod-template-hash": name},
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "web", "uid": "u1", "controller": true}]},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web", "rollouts-pod-template-hash": name}},
                    "spec": {"containers": [{"name": "app", "image": image}]}}}})
    };
    let list = json!({"apiVersion": "apps/v1", "kind": "ReplicaSetList", "metadata": {},
        "items": [rs("h1", "1", "web:1"), rs("h3", "3", "web:3"), rs("h2", "2", "web:2")]});
    let server = tokio::spawn(serve(
        handle,
        vec![
            Expect {
                method: "GET",
                path: format!("{BASE}/web"),
                patch: None,
                reply: (200, ro.clone()),
            },
            Expect {
                method: "GET",
                path: "/apis/apps/v1/namespaces/shop/replicasets".into(),
                patch: None,
                reply: (200, list),
            },
            Expect {
                method: "PATCH",
                path: format!("{BASE}/web"),
                patch: Some((
                    "application/json-patch+json",
                    json!([{"op": "replace", "path": "/spec/template", "value":
                        {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "web:2"}]}}}]),
                )),
                reply: (200, ro),
            },
        ],
    ));
    let mut out = Vec::new();
    actions::undo(&kube, "web", 0, &mut out).await.unwrap();
    server.await.unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "rollout 'web' undo\n");
}
