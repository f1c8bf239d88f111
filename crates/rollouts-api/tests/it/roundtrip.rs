//! Objects as the controller writes them (with status) survive a decode and encode unchanged,
//! and zero values stay as written.

use rollouts_api::{AnalysisRun, Experiment, Rollout, decode};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

fn assert_round_trip<T: Serialize + DeserializeOwned>(doc: Value) -> T {
    let typed: T = decode(&doc).unwrap_or_else(|err| panic!("{err}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(back, doc, "the object changed on a decode and encode");
    typed
}

#[test]
fn rollout_with_full_status() {
    let ro: Rollout = assert_round_trip(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": { "name": "web", "namespace": "shop", "generation": 4 },
        "spec": {
            "replicas": 0,
            "paused": false,
            "selector": { "matchLabels": { "app": "web" } },
            "template": { "metadata": { "labels": { "app": "web" } },
                          "spec": { "containers": [{ "name": "web", "image": "web:2" }] } },
            "restartAt": "2026-01-02T03:04:05Z",
            "strategy": { "canary": { "steps": [], "maxSurge": "25%", "maxUnavailable": 0 } }
        },
        "status": {
            "abort": true,
            "pauseConditions": [{ "reason": "CanaryPauseStep", "startTime": "2026-01-02T03:04:05Z" }],
            "controllerPause": true,
            "abortedAt": "2026-01-02T03:05:00Z",
            "currentPodHash": "7d9f8c6b5",
            "currentStepHash": "5f7b9c",
            "replicas": 5,
            "updatedReplicas": 1,
            "readyReplicas": 5,
            "availableReplicas": 5,
            "currentStepIndex": 1,
            "collisionCount": 0,
            "observedGeneration": "4",
            "conditions": [{
                "type": "Progressing", "status": "True",
                "lastUpdateTime": "2026-01-02T03:04:05Z", "lastTransitionTime": "2026-01-02T03:04:05Z",
                "reason": "ReplicaSetUpdated", "message": "ReplicaSet \"web-7d9f8c6b5\" is progressing."
            }],
            "canary": {
                "currentStepAnalysisRunStatus": { "name": "web-7d9f8c6b5-4-1", "status": "Running" },
                "currentBackgroundAnalysisRunStatus": { "name": "web-bg", "status": "Successful", "message": "" },
                "currentExperiment": "web-exp",
                "weights": {
                    "canary": { "weight": 20, "serviceName": "web-canary", "podTemplateHash": "7d9f8c6b5" },
                    "stable": { "weight": 80, "serviceName": "web-stable", "podTemplateHash": "6c8d7b5a4" },
                    "additional": [{ "weight": 0 }],
                    "verified": false
                },
                "stablePingPong": "ping",
                "stepPluginStatuses": [{
                    "index": 2, "name": "example.com/step", "operation": "Run", "phase": "Running",
                    "message": "waiting", "startedAt": "2026-01-02T03:04:05Z",
                    "updatedAt": "2026-01-02T03:04:06Z", "backoff": "30s", "executions": 3,
                    "disabled": false, "status": { "attempt": 3, "ids": ["a", "b"] }
                }]
            },
            "blueGreen": {},
            "HPAReplicas": 5,
            "selector": "app=web",
            "stableRS": "6c8d7b5a4",
            "restartedAt": "2026-01-02T03:04:05Z",
            "promoteFull": false,
            "phase": "Paused",
            "message": "CanaryPauseStep",
            "workloadObservedGeneration": "2",
            "alb": {
                "loadBalancer": { "name": "lb", "arn": "arn:lb", "fullName": "app/lb/1" },
                "canaryTargetGroup": { "name": "tg-c", "arn": "arn:tg-c" },
                "stableTargetGroup": { "name": "tg-s", "arn": "arn:tg-s" },
                "ingress": "web"
            },
            "albs": [],
            "duration": {
                "rolloutStartedAt": "2026-01-02T03:00:00Z",
                "manualPauseStartedAt": "2026-01-02T03:04:05Z",
                "totalManualPauseDurationSeconds": 120,
                "finishedAt": "2026-01-02T04:00:00Z",
                "completionStatus": "Aborted"
            }
        }
    }));
    let status = ro.status.expect("status");
    assert_eq!(status.hpa_replicas, Some(5));
    assert_eq!(status.stable_rs.as_deref(), Some("6c8d7b5a4"));
    assert_eq!(
        ro.spec.replicas_or_default(),
        0,
        "an explicit 0 is not replaced by the default"
    );
}

#[test]
fn analysis_run_with_status() {
    assert_round_trip::<AnalysisRun>(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": { "name": "web-7d9f8c6b5-4-1" },
        "spec": {
            "metrics": [{ "name": "success", "provider": { "web": { "url": "http://x", "jsonBody": { "k": [1, 2] } } } }],
            "args": [{ "name": "a", "value": "" }],
            "terminate": false
        },
        "status": {
            "phase": "Running",
            "message": "",
            "startedAt": "2026-01-02T03:04:05Z",
            "runSummary": { "count": 1, "successful": 1 },
            "dryRunSummary": {},
            "completedAt": "2026-01-02T03:09:05Z",
            "metricResults": [{
                "name": "success", "phase": "Successful", "count": 1, "successful": 1,
                "failed": 0, "inconclusive": 0, "error": 0, "consecutiveError": 0,
                "consecutiveSuccess": 1, "dryRun": false, "metadata": { "query": "q" },
                "message": "ok",
                "measurements": [{
                    "phase": "Successful", "startedAt": "2026-01-02T03:04:05Z",
                    "finishedAt": "2026-01-02T03:04:06Z", "value": "[0.99]",
                    "metadata": { "job-name": "j" }, "resumeAt": "2026-01-02T03:05:06Z",
                    "message": ""
                }]
            }]
        }
    }));
}

#[test]
fn experiment_with_status() {
    assert_round_trip::<Experiment>(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Experiment",
        "metadata": { "name": "exp" },
        "spec": {
            "templates": [{
                "name": "a",
                "selector": { "matchLabels": { "app": "a" } },
                "template": { "metadata": { "labels": { "app": "a" } }, "spec": { "containers": [] } }
            }]
        },
        "status": {
            "phase": "Running",
            "availableAt": "2026-01-02T03:04:05Z",
            "templateStatuses": [{
                "name": "a", "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1,
                "availableReplicas": 1, "collisionCount": 0, "status": "Running",
                "lastTransitionTime": "2026-01-02T03:04:05Z", "serviceName": "exp-a",
                "podTemplateHash": "abc"
            }],
            "conditions": [{
                "type": "Progressing", "status": "True",
                "lastUpdateTime": "2026-01-02T03:04:05Z", "lastTransitionTime": "2026-01-02T03:04:05Z",
                "reason": "NewReplicaSetAvailable", "message": "Experiment \"exp\" is running."
            }],
            "analysisRuns": [{ "name": "cmp", "analysisRun": "exp-cmp", "phase": "Pending" }]
        }
    }));
}
