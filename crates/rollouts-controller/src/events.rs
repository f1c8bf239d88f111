//! Kubernetes Events on Rollouts, as Argo records them.
//!
//! Argo uses client-go's event recorder, which writes `core/v1` Events with `source.component`
//! set to the controller's name. Tools (`kubectl describe`, `kubectl argo rollouts get`, the
//! notifications engine) read those, so this recorder writes the same: reporting component
//! `rollouts-controller`, Argo's reasons and messages (the engine chooses them), and client-go's
//! aggregation of repeats (an identical event within ten minutes bumps `count` and
//! `lastTimestamp` of the first instead of creating another). Every event also counts in
//! `rollout_events_total`.
//!
//! Publishing never fails a reconciliation: an error is logged and the event dropped, as
//! client-go does.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use jiff::Timestamp;
use k8s_openapi::{
    api::core::v1::{Event as K8sEvent, EventSource, ObjectReference},
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{
    Api, Client,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
};
use prometheus::IntCounterVec;
use serde_json::json;

/// The reporting component of our events (Argo's).
pub const COMPONENT: &str = "rollouts-controller";

/// How long an event is remembered for aggregation (client-go's default).
const AGGREGATION_WINDOW: Duration = Duration::from_secs(600);

/// Oldest entries are dropped beyond this many.
const CACHE_LIMIT: usize = 4096;

/// `Normal` or `Warning`.
pub use rollouts_engine::EventType;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    object: String,
    type_: &'static str,
    reason: String,
    message: String,
}

#[derive(Clone, Debug)]
struct Seen {
    name: String,
    count: i32,
    at: Instant,
}

/// Writes core/v1 Events.
pub struct Recorder {
    client: Client,
    host: String,
    counter: IntCounterVec,
    seen: Mutex<HashMap<Key, Seen>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder writing with `client`; `host` fills `source.host` and `reportingInstance`.
    pub fn new(client: Client, host: String, counter: IntCounterVec) -> Self {
        Self {
            client,
            host,
            counter,
            seen: Mutex::default(),
        }
    }

    /// Records one event about `object` (never fails; errors are logged).
    pub async fn publish(
        &self,
        object: &ObjectReference,
        type_: EventType,
        reason: &str,
        message: &str,
    ) {
        let namespace = object.namespace.clone().unwrap_or_else(|| "default".into());
        let name = object.name.clone().unwrap_or_default();
        self.counter
            .with_label_values(&[namespace.as_str(), name.as_str(), type_.as_str(), reason])
            .inc();
        tracing::info!(
            namespace = %namespace,
            rollout = %name,
            event_type = type_.as_str(),
            reason,
            "Event: {message}"
        );
        let key = Key {
            object: object
                .uid
                .clone()
                .unwrap_or_else(|| format!("{namespace}/{name}")),
            type_: type_.as_str(),
            reason: reason.to_string(),
            message: message.to_string(),
        };
        let now = Timestamp::now();
        let repeat = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.retain(|_, s| s.at.elapsed() < AGGREGATION_WINDOW);
            seen.get_mut(&key).map(|s| {
                s.count += 1;
                s.at = Instant::now();
                s.clone()
            })
        };
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
        if let Some(s) = repeat {
            let patch = json!({"count": s.count, "lastTimestamp": Time(now)});
            match api
                .patch(&s.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return,
                Err(err) => {
                    tracing::debug!(
                        error = &err as &dyn std::error::Error,
                        "Updating a repeated event failed; creating a new one."
                    );
                }
            }
        }
        let event_name = format!("{}.{:x}", name, now.as_nanosecond());
        let event = K8sEvent {
            metadata: ObjectMeta {
                name: Some(event_name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: object.clone(),
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(type_.as_str().to_string()),
            source: Some(EventSource {
                component: Some(COMPONENT.to_string()),
                host: Some(self.host.clone()),
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            reporting_component: Some(COMPONENT.to_string()),
            reporting_instance: Some(self.host.clone()),
            ..K8sEvent::default()
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                if seen.len() >= CACHE_LIMIT
                    && let Some(oldest) = seen
                        .iter()
                        .min_by_key(|(_, s)| s.at)
                        .map(|(k, _)| k.clone())
                {
                    seen.remove(&oldest);
                }
                seen.insert(
                    key,
                    Seen {
                        name: event_name,
                        count: 1,
                        at: Instant::now(),
                    },
                );
            }
            Err(err) => tracing::warn!(
                error = &err as &dyn std::error::Error,
                reason,
                "Recording an event failed."
            ),
        }
    }
}

/// An `ObjectReference` to a Rollout, as events and owner references need it.
pub fn rollout_reference(meta: &ObjectMeta) -> ObjectReference {
    ObjectReference {
        api_version: Some(rollouts_api::API_VERSION.to_string()),
        kind: Some("Rollout".to_string()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..ObjectReference::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;

    #[tokio::test]
    async fn events_are_core_v1_with_our_component_and_repeats_are_aggregated() {
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(svc, "default");
        let counter = IntCounterVec::new(
            prometheus::Opts::new("rollout_events_total", "x"),
            &["namespace", "name", "type", "reason"],
        )
        .unwrap();
        let recorder = Recorder::new(client, "node-1".into(), counter.clone());
        let server = tokio::spawn(async move {
            let (req, send) = handle.next_request().await.unwrap();
            assert_eq!(req.method(), http::Method::POST);
            assert_eq!(req.uri().path(), "/api/v1/namespaces/team/events");
            let body = req.into_body().collect_bytes().await.unwrap();
            let ev: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(ev["reason"], "RolloutUpdated");
            assert_eq!(ev["message"], "Rollout updated to revision 2");
            assert_eq!(ev["type"], "Normal");
            assert_eq!(ev["count"], 1);
            assert_eq!(ev["source"]["component"], "rollouts-controller");
            assert_eq!(ev["reportingComponent"], "rollouts-controller");
            assert_eq!(ev["involvedObject"]["kind"], "Rollout");
            assert_eq!(ev["involvedObject"]["uid"], "u-1");
            let name = ev["metadata"]["name"].as_str().unwrap().to_string();
            assert!(name.starts_with("web."), "{name}");
            send.send_response(Response::new(Body::from(body.to_vec())));
            // The same event again: a patch of the first one.
            let (req, send) = handle.next_request().await.unwrap();
            assert_eq!(req.method(), http::Method::PATCH);
            assert_eq!(
                req.uri().path(),
                format!("/api/v1/namespaces/team/events/{name}")
            );
            let patch: serde_json::Value =
                serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap()).unwrap();
            assert_eq!(patch["count"], 2);
            send.send_response(Response::new(Body::from(body.to_vec())));
            // A different message: a new event.
            let (req, send) = handle.next_request().await.unwrap();
            assert_eq!(req.method(), http::Method::POST);
            send.send_response(Response::new(Body::from(body.to_vec())));
        });
        let meta = ObjectMeta {
            name: Some("web".into()),
            namespace: Some("team".into()),
            uid: Some("u-1".into()),
            ..ObjectMeta::default()
        };
        let reference = rollout_reference(&meta);
        for message in [
            "Rollout updated to revision 2",
            "Rollout updated to revision 2",
            "Rollout updated to revision 3",
        ] {
            recorder
                .publish(&reference, EventType::Normal, "RolloutUpdated", message)
                .await;
        }
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            counter
                .with_label_values(&["team", "web", "Normal", "RolloutUpdated"])
                .get(),
            3
        );
        let seen = recorder.seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "two distinct events are remembered");
    }
}
