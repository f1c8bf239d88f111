//! Table tests of the Experiment controller's rules.

use super::*;
use serde_json::{Value, json};

const NOW: i64 = 1_700_000_000;

fn now() -> Timestamp {
    Timestamp::from_second(NOW).expect("valid")
}

fn at(offset: i64) -> String {
    crate::format_rfc3339(Timestamp::from_second(NOW + offset).expect("valid"))
}

fn experiment(spec: Value, status: Value) -> Experiment {
    let mut v = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
        "metadata": {"name": "ex", "namespace": "team", "uid": "ex-uid"},
        "spec": spec,
    });
    if !status.is_null() {
        v["status"] = status;
    }
    serde_json::from_value(v).expect("experiment decodes")
}

fn template(name: &str, replicas: i32) -> Value {
    json!({
        "name": name, "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}]}]}}
    })
}

fn two_templates() -> Value {
    json!({"templates": [template("canary", 2), template("baseline", 1)]})
}

fn snap(ex: Experiment) -> ExperimentSnapshot {
    ExperimentSnapshot {
        experiment: ex,
        replica_sets: Vec::new(),
        services: Vec::new(),
        analysis_runs: Vec::new(),
        analysis_templates: Vec::new(),
        cluster_analysis_templates: Vec::new(),
        now: now(),
    }
}

/// The ReplicaSet the controller created for a template, with replicas and counts.
fn rs(ex: &Experiment, name: &str, replicas: i32, available: i32) -> ReplicaSet {
    let t = ex
        .spec
        .templates
        .iter()
        .find(|t| t.name == name)
        .expect("template");
    let mut rs = replica_set_for(ex, t, None);
    rs.spec.replicas = Some(replicas);
    rs.status = Some(k8s_openapi::api::apps::v1::ReplicaSetStatus {
        replicas: available,
        ready_replicas: Some(available),
        available_replicas: Some(available),
        ..Default::default()
    });
    rs
}

fn ts(name: &str, status: &str, available: i32, transition: i64) -> Value {
    json!({"name": name, "status": status, "replicas": available, "updatedReplicas": available,
        "readyReplicas": available, "availableReplicas": available, "lastTransitionTime": at(transition)})
}

fn reasons(plan: &ExperimentPlan) -> Vec<String> {
    plan.events.iter().map(|e| e.reason.clone()).collect()
}

fn template_state(plan: &ExperimentPlan, name: &str) -> String {
    template_status_of(&plan.status, name)
        .and_then(|t| t.status.clone())
        .unwrap_or_default()
}

#[test]
fn replica_set_hash_ignores_an_existing_hash_label_golden() {
    // Argo's TestReplicaSetNameFromExperiment vectors: the empty pod template hashes to
    // 658c46c486 (6746d5bbc with collisionCount 1); a hash label in the template is ignored.
    let ex = experiment(
        json!({"templates": [{"name": "t", "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"rollouts-pod-template-hash": "stale"}}}}]}),
        Value::Null,
    );
    let t = &ex.spec.templates[0];
    for (collision, hash) in [(None, "658c46c486"), (Some(1), "6746d5bbc")] {
        let rs = replica_set_for(&ex, t, collision);
        assert_eq!(rs.metadata.name.as_deref(), Some("ex-t"));
        let l = rs.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            l.get(labels::POD_TEMPLATE_HASH).map(String::as_str),
            Some(hash)
        );
        let sel = rs.spec.selector.match_labels.clone().unwrap_or_default();
        assert_eq!(
            sel.get(labels::POD_TEMPLATE_HASH).map(String::as_str),
            Some(hash)
        );
        assert_eq!(sel.get("a").map(String::as_str), Some("b"));
        let pod_labels = rs
            .spec
            .template
            .as_ref()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        assert_eq!(
            pod_labels
                .get(labels::POD_TEMPLATE_HASH)
                .map(String::as_str),
            Some(hash)
        );
    }
}

#[test]
fn first_pass_creates_the_replica_sets_at_zero_and_is_pending() {
    let p = plan(&snap(experiment(two_templates(), Value::Null))).expect("plan");
    assert_eq!(p.status.phase.as_deref(), Some("Pending"));
    let created: Vec<&ReplicaSet> = p
        .effects
        .iter()
        .filter_map(|e| match e {
            ExperimentEffect::CreateReplicaSet(rs) => Some(rs.as_ref()),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 2, "{:?}", p.effects);
    assert_eq!(created[0].metadata.name.as_deref(), Some("ex-canary"));
    assert_eq!(created[1].metadata.name.as_deref(), Some("ex-baseline"));
    let rs = created[0];
    assert_eq!(rs.spec.replicas, Some(0));
    let ann = rs.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(ann[labels::EXPERIMENT_NAME], "ex");
    assert_eq!(ann[labels::EXPERIMENT_TEMPLATE_NAME], "canary");
    let owner = &rs.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("Experiment", "ex-uid", Some(true))
    );
    assert_eq!(template_state(&p, "canary"), "Progressing");
    assert_eq!(
        reasons(&p),
        vec![
            "TemplateProgressing",
            "TemplateProgressing",
            "ExperimentPending"
        ]
    );
    assert_eq!(
        p.events[0].message,
        "Template 'canary' transitioned from  -> Progressing"
    );
}

#[test]
fn existing_replica_sets_are_scaled_to_the_template_replicas() {
    let ex = experiment(
        two_templates(),
        json!({"phase": "Pending", "templateStatuses": [ts("canary", "Progressing", 0, -5), ts("baseline", "Progressing", 0, -5)]}),
    );
    let mut s = snap(ex.clone());
    s.replica_sets = vec![rs(&ex, "canary", 0, 0), rs(&ex, "baseline", 1, 0)];
    let p = plan(&s).expect("plan");
    assert_eq!(
        p.effects,
        vec![ExperimentEffect::ScaleReplicaSet {
            name: "ex-canary".into(),
            replicas: 2
        }]
    );
    assert_eq!(
        p.events[0].message,
        "Scaled up ReplicaSet ex-canary from 0 to 2"
    );
    assert_eq!(p.status.phase.as_deref(), Some("Pending"));
    assert!(p.status.available_at.is_none());
    // Progress deadline of the templates short of their replicas: 600 s after the transition.
    assert!(p.requeue_after.is_some_and(|d| d.as_secs() <= 600));
}

#[test]
fn all_templates_available_sets_available_at_and_running() {
    let ex = experiment(
        json!({"templates": [template("canary", 2), template("baseline", 1)], "duration": "5s"}),
        json!({"phase": "Pending", "templateStatuses": [ts("canary", "Progressing", 0, -5), ts("baseline", "Progressing", 0, -5)]}),
    );
    let mut s = snap(ex.clone());
    s.replica_sets = vec![rs(&ex, "canary", 2, 2), rs(&ex, "baseline", 1, 1)];
    let p = plan(&s).expect("plan");
    assert!(p.effects.is_empty(), "{:?}", p.effects);
    assert_eq!(p.status.phase.as_deref(), Some("Running"));
    assert_eq!(p.status.available_at.as_ref().map(|t| t.0), Some(now()));
    assert_eq!(template_state(&p, "canary"), "Running");
    let c = condition(&p.status, PROGRESSING).expect("condition");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", REPLICA_SET_UPDATED)
    );
    assert_eq!(c.message, "Experiment \"ex\" is progressing.");
    assert!(reasons(&p).contains(&"ExperimentRunning".to_string()));
}

#[test]
fn duration_rules() {
    // (duration, availableAt offset, expected phase, expected requeue)
    let table: [(&str, i64, &str, Option<u64>); 3] = [
        ("5s", -10, "Successful", None),
        ("60s", -10, "Running", Some(50)),
        ("", -1000, "Running", None),
    ];
    for (duration, offset, expected, requeue) in table {
        let mut spec = two_templates();
        if !duration.is_empty() {
            spec["duration"] = json!(duration);
        }
        let ex = experiment(
            spec,
            json!({"phase": "Running", "availableAt": at(offset),
                "templateStatuses": [ts("canary", "Running", 2, offset), ts("baseline", "Running", 1, offset)]}),
        );
        let mut s = snap(ex.clone());
        s.replica_sets = vec![rs(&ex, "canary", 2, 2), rs(&ex, "baseline", 1, 1)];
        let p = plan(&s).expect("plan");
        assert_eq!(
            p.status.phase.as_deref(),
            Some(expected),
            "duration {duration:?}"
        );
        assert_eq!(
            p.requeue_after.map(|d| d.as_secs()),
            requeue,
            "duration {duration:?}"
        );
        if expected == "Successful" {
            assert_eq!(template_state(&p, "canary"), "Successful");
            let c = condition(&p.status, PROGRESSING).expect("condition");
            assert_eq!(
                (c.status.as_str(), c.reason.as_str()),
                ("False", EXPERIMENT_COMPLETED)
            );
            assert!(reasons(&p).contains(&"ExperimentSuccessful".to_string()));
            assert!(reasons(&p).contains(&"TemplateSuccessful".to_string()));
        } else {
            let c = condition(&p.status, PROGRESSING).expect("condition");
            assert_eq!(c.reason, NEW_RS_AVAILABLE);
        }
    }
}

#[test]
fn scale_down_after_the_delay() {
    // (scaleDownDelaySeconds, deadline annotation offset, expected effects, requeue)
    let done = json!({"phase": "Successful", "availableAt": at(-100),
        "templateStatuses": [ts("canary", "Successful", 2, -50)]});
    type Case = (Option<i32>, Option<i64>, Vec<ExperimentEffect>, Option<u64>);
    let cases: Vec<Case> = vec![
        (
            None,
            None,
            vec![ExperimentEffect::SetScaleDownDeadline {
                name: "ex-canary".into(),
                deadline: Some(at(30)),
            }],
            Some(30),
        ),
        (None, Some(10), vec![], Some(10)),
        (
            None,
            Some(-1),
            vec![ExperimentEffect::ScaleReplicaSet {
                name: "ex-canary".into(),
                replicas: 0,
            }],
            None,
        ),
        (
            Some(0),
            None,
            vec![ExperimentEffect::ScaleReplicaSet {
                name: "ex-canary".into(),
                replicas: 0,
            }],
            None,
        ),
        (
            Some(0),
            Some(100),
            vec![
                ExperimentEffect::SetScaleDownDeadline {
                    name: "ex-canary".into(),
                    deadline: None,
                },
                ExperimentEffect::ScaleReplicaSet {
                    name: "ex-canary".into(),
                    replicas: 0,
                },
            ],
            None,
        ),
    ];
    for (delay, deadline, expected, requeue) in cases {
        let mut spec = json!({"templates": [template("canary", 2)]});
        if let Some(d) = delay {
            spec["scaleDownDelaySeconds"] = json!(d);
        }
        let ex = experiment(spec, done.clone());
        let mut s = snap(ex.clone());
        let mut r = rs(&ex, "canary", 2, 2);
        if let Some(off) = deadline {
            r.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(labels::SCALE_DOWN_DEADLINE.into(), at(off));
        }
        s.replica_sets = vec![r];
        let p = plan(&s).expect("plan");
        assert_eq!(p.effects, expected, "delay {delay:?} deadline {deadline:?}");
        assert_eq!(p.requeue_after.map(|d| d.as_secs()), requeue);
        assert_eq!(p.status.phase.as_deref(), Some("Successful"));
    }
}

#[test]
fn terminate_scales_down_and_terminates_runs() {
    let ex = experiment(
        json!({"templates": [template("canary", 1)], "terminate": true, "scaleDownDelaySeconds": 0,
            "analyses": [{"name": "a", "templateName": "t"}]}),
        json!({"phase": "Running", "availableAt": at(-100),
            "templateStatuses": [ts("canary", "Running", 1, -50)],
            "analysisRuns": [{"name": "a", "analysisRun": "ex-a", "phase": "Running"}]}),
    );
    let mut s = snap(ex.clone());
    s.replica_sets = vec![rs(&ex, "canary", 1, 1)];
    s.analysis_runs = vec![AnalysisRunView {
        name: "ex-a".into(),
        phase: "Running".into(),
        ..Default::default()
    }];
    let p = plan(&s).expect("plan");
    assert_eq!(
        p.effects,
        vec![
            ExperimentEffect::ScaleReplicaSet {
                name: "ex-canary".into(),
                replicas: 0
            },
            ExperimentEffect::TerminateAnalysisRun {
                name: "ex-a".into()
            },
        ]
    );
    assert!(reasons(&p).contains(&"AnalysisRunTerminating".to_string()));
    assert_eq!(template_state(&p, "canary"), "Successful");
    // Templates Successful, analyses not completed and none required: the template phase.
    assert_eq!(p.status.phase.as_deref(), Some("Successful"));
}

#[test]
fn progress_deadline_fails_a_template() {
    let ex = experiment(
        json!({"templates": [template("canary", 1)], "progressDeadlineSeconds": 60}),
        json!({"phase": "Pending", "templateStatuses": [ts("canary", "Progressing", 0, -61)]}),
    );
    let mut s = snap(ex.clone());
    s.replica_sets = vec![rs(&ex, "canary", 1, 0)];
    let p = plan(&s).expect("plan");
    assert_eq!(template_state(&p, "canary"), "Failed");
    assert_eq!(p.status.phase.as_deref(), Some("Failed"));
    assert_eq!(
        p.status.message.as_deref(),
        Some("Template 'canary' exceeded its progressDeadlineSeconds (60)")
    );
    let failed = p
        .events
        .iter()
        .find(|e| e.reason == "TemplateFailed")
        .expect("event");
    assert_eq!(failed.type_, EventType::Warning);
    assert!(
        p.events
            .iter()
            .any(|e| e.reason == "ExperimentFailed" && e.type_ == EventType::Warning)
    );
}

fn analysis_template(name: &str) -> AnalysisTemplate {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {"args": [{"name": "hash"}, {"name": "rs"}],
            "metrics": [{"name": "m", "provider": {"web": {"url": "http://x/{{args.hash}}"}}}]}
    }))
    .expect("template")
}

fn analysed(required: bool, run_phase: Option<&str>) -> (ExperimentSnapshot, Experiment) {
    let mut status = json!({"phase": "Running", "availableAt": at(-10),
        "templateStatuses": [ts("canary", "Running", 1, -10)]});
    if let Some(ph) = run_phase {
        status["analysisRuns"] = json!([{"name": "a", "analysisRun": "ex-a", "phase": "Running"}]);
        let _ = ph;
    }
    let ex = experiment(
        json!({"templates": [template("canary", 1)],
            "analyses": [{"name": "a", "templateName": "t", "requiredForCompletion": required,
                "args": [{"name": "hash", "value": "{{templates.canary.podTemplateHash}}"},
                         {"name": "rs", "value": "{{ templates.canary.replicaset.name }}"}]}],
            "analysisRunMetadata": {"labels": {"team": "x"}, "annotations": {"note": "y"}},
            "dryRun": [{"metricName": "m"}]}),
        status,
    );
    let mut s = snap(ex.clone());
    s.replica_sets = vec![rs(&ex, "canary", 1, 1)];
    s.analysis_templates = vec![analysis_template("t")];
    if let Some(ph) = run_phase {
        s.analysis_runs = vec![AnalysisRunView {
            name: "ex-a".into(),
            phase: ph.into(),
            message: "why".into(),
            ..Default::default()
        }];
    }
    (s, ex)
}

#[test]
fn analysis_runs_are_created_once_available() {
    let (s, ex) = analysed(false, None);
    let p = plan(&s).expect("plan");
    let [ExperimentEffect::CreateAnalysisRun { analysis, run }] = p.effects.as_slice() else {
        panic!("expected one run: {:?}", p.effects);
    };
    assert_eq!(analysis, "a");
    assert_eq!(run.metadata.name.as_deref(), Some("ex-a"));
    let hash = replica_set_for(&ex, &ex.spec.templates[0], None)
        .metadata
        .labels
        .unwrap_or_default()[labels::POD_TEMPLATE_HASH]
        .clone();
    let args: BTreeMap<String, Option<String>> = run
        .spec
        .args
        .iter()
        .flatten()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect();
    assert_eq!(args["hash"].as_deref(), Some(hash.as_str()));
    assert_eq!(args["rs"].as_deref(), Some("ex-canary"));
    assert_eq!(run.metadata.labels.clone().unwrap_or_default()["team"], "x");
    assert_eq!(
        run.metadata.annotations.clone().unwrap_or_default()["note"],
        "y"
    );
    assert_eq!(run.spec.dry_run.as_ref().map(Vec::len), Some(1));
    let owner = &run.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Experiment", "ex")
    );
    let st = run_status(&p.status, "a").expect("run status");
    assert_eq!(
        (st.analysis_run.as_str(), st.phase.as_str()),
        ("ex-a", "Pending")
    );
    assert!(reasons(&p).contains(&"AnalysisRunPending".to_string()));
}

#[test]
fn run_phases_decide_the_experiment() {
    // (requiredForCompletion, run phase, experiment phase, message)
    let table = [
        (false, "Running", "Running", None),
        (false, "Successful", "Running", None),
        (false, "Failed", "Failed", Some("why")),
        (false, "Error", "Error", Some("why")),
        (false, "Inconclusive", "Inconclusive", Some("why")),
        (true, "Running", "Running", None),
        (
            true,
            "Successful",
            "Successful",
            Some(REQUIRED_ANALYSIS_COMPLETED),
        ),
        (true, "Failed", "Failed", Some("why")),
    ];
    for (required, run_phase, expected, message) in table {
        let (s, _) = analysed(required, Some(run_phase));
        let p = plan(&s).expect("plan");
        assert_eq!(
            p.status.phase.as_deref(),
            Some(expected),
            "required {required} run {run_phase}"
        );
        assert_eq!(
            p.status.message.as_deref(),
            message,
            "required {required} run {run_phase}"
        );
        let st = run_status(&p.status, "a").expect("run status");
        assert_eq!(st.phase, run_phase);
    }
}

#[test]
fn a_missing_template_errors_the_analysis_before_availability() {
    let ex = experiment(
        json!({"templates": [template("canary", 1)], "analyses": [{"name": "a", "templateName": "nope"}]}),
        json!({"phase": "Pending", "templateStatuses": [ts("canary", "Progressing", 0, -1)]}),
    );
    let mut s = snap(ex.clone());
    s.replica_sets = vec![rs(&ex, "canary", 1, 0)];
    let p = plan(&s).expect("plan");
    let st = run_status(&p.status, "a").expect("status");
    assert_eq!(st.phase, "Error");
    assert_eq!(
        st.message.as_deref(),
        Some(
            "AnalysisTemplate verification failed for analysis 'a': analysistemplate.argoproj.io \"nope\" not found"
        )
    );
    assert_eq!(p.status.phase.as_deref(), Some("Error"));
}

#[test]
fn unresolvable_args_error_the_analysis() {
    let (mut s, _) = analysed(false, None);
    s.experiment.spec.analyses.as_mut().expect("analyses")[0]
        .args
        .as_mut()
        .expect("args")[0]
        .value = Some("{{templates.other.podTemplateHash}}".into());
    let p = plan(&s).expect("plan");
    assert!(p.effects.is_empty());
    let st = run_status(&p.status, "a").expect("status");
    assert_eq!(st.phase, "Error");
    assert_eq!(
        st.message.as_deref(),
        Some(
            "Failed to create AnalysisRun for analysis 'a': failed to resolve {{templates.other.podTemplateHash}}"
        )
    );
}

#[test]
fn run_events_are_mirrored_to_the_owning_rollout() {
    let (mut s, _) = analysed(false, Some("Failed"));
    s.experiment.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "argoproj.io/v1alpha1".into(),
        kind: "Rollout".into(),
        name: "web".into(),
        uid: "ro".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    let p = plan(&s).expect("plan");
    assert_eq!(p.rollout_events.len(), 1);
    assert_eq!(p.rollout_events[0].0, "web");
    assert_eq!(p.rollout_events[0].1.reason, "AnalysisRunFailed");
    assert_eq!(
        p.rollout_events[0].1.message,
        "AnalysisRun 'a' transitioned from Running -> Failed: why"
    );
}

#[test]
fn template_services_are_created_then_deleted() {
    let mut spec = json!({"templates": [template("canary", 1)], "scaleDownDelaySeconds": 0});
    spec["templates"][0]["service"] = json!({"name": "canary-svc"});
    let running = json!({"phase": "Running", "availableAt": at(-10),
        "templateStatuses": [ts("canary", "Running", 1, -10)]});
    let ex = experiment(spec.clone(), running);
    let mut s = snap(ex.clone());
    s.replica_sets = vec![rs(&ex, "canary", 1, 1)];
    let p = plan(&s).expect("plan");
    let [ExperimentEffect::CreateService(svc)] = p.effects.as_slice() else {
        panic!("{:?}", p.effects);
    };
    assert_eq!(svc.metadata.name.as_deref(), Some("canary-svc"));
    let sp = svc.spec.as_ref().expect("spec");
    assert_eq!(sp.selector, s.replica_sets[0].metadata.labels);
    let port = &sp.ports.as_ref().expect("ports")[0];
    assert_eq!((port.port, port.name.as_deref()), (80, Some("http")));
    let st = template_status_of(&p.status, "canary").expect("status");
    assert_eq!(st.service_name.as_deref(), Some("canary-svc"));
    assert!(st.pod_template_hash.is_some());

    let mut done = ex.clone();
    done.spec.terminate = Some(true);
    let mut s2 = snap(done);
    s2.replica_sets = s.replica_sets.clone();
    s2.services = vec![svc.as_ref().clone()];
    let p2 = plan(&s2).expect("plan");
    assert_eq!(
        p2.effects,
        vec![
            ExperimentEffect::ScaleReplicaSet {
                name: "ex-canary".into(),
                replicas: 0
            },
            ExperimentEffect::DeleteService {
                name: "canary-svc".into()
            }
        ]
    );
    assert_eq!(
        template_status_of(&p2.status, "canary").and_then(|t| t.service_name.clone()),
        None
    );
}

#[test]
fn invalid_specs_only_set_the_condition() {
    let table = [
        (
            json!({"templates": [{"name": "a", "selector": {}, "template": {}}]}),
            "This experiment is selecting all pods at index 0. A non-empty selector is required.",
        ),
        (
            json!({"templates": [template("a", 1), template("a", 1)]}),
            "Experiment ex has repeated template name 'a' in templates",
        ),
        (
            json!({"templates": [{"name": "", "selector": {"matchLabels": {"a": "b"}}, "template": {}}]}),
            "Experiment ex has empty template name at index 0",
        ),
        (
            json!({"templates": [{"name": "a", "minReadySeconds": 700, "selector": {"matchLabels": {"a": "b"}}, "template": {}}]}),
            "MinReadySeconds cannot be longer than ProgressDeadlineSeconds. Check template index 0",
        ),
    ];
    for (spec, message) in table {
        let p = plan(&snap(experiment(spec, Value::Null))).expect("plan");
        assert!(p.effects.is_empty());
        let c = condition(&p.status, INVALID_SPEC).expect("condition");
        assert_eq!(c.message, message);
        assert_eq!(c.reason, "InvalidSpec");
        assert_eq!(p.status.phase, None);
    }
}

#[test]
fn two_replica_sets_for_one_template_are_an_error() {
    let ex = experiment(two_templates(), Value::Null);
    let mut s = snap(ex.clone());
    let a = rs(&ex, "canary", 1, 0);
    let mut b = a.clone();
    b.metadata.name = Some("other".into());
    s.replica_sets = vec![a, b];
    assert_eq!(
        plan(&s),
        Err(crate::Error::AmbiguousTemplate {
            kind: "ReplicaSets",
            template: "canary".into()
        })
    );
}

#[test]
fn foreign_replica_sets_are_not_claimed() {
    let ex = experiment(two_templates(), Value::Null);
    let mut s = snap(ex.clone());
    let mut foreign = rs(&ex, "canary", 1, 1);
    foreign.metadata.owner_references.as_mut().expect("owner")[0].uid = "someone-else".into();
    s.replica_sets = vec![foreign];
    let p = plan(&s).expect("plan");
    assert_eq!(
        p.effects
            .iter()
            .filter(|e| matches!(e, ExperimentEffect::CreateReplicaSet(_)))
            .count(),
        2
    );
}

#[test]
fn finished_at_and_available_at_resolve() {
    let ex = experiment(
        json!({"templates": [template("canary", 1)], "duration": "1m"}),
        json!({"availableAt": at(0)}),
    );
    let status = ex.status.clone().unwrap_or_default();
    let out = resolve_arg(
        "{{experiment.availableAt}}..{{experiment.finishedAt}}",
        &ex,
        &status,
        &BTreeMap::new(),
    );
    assert_eq!(out, Ok(format!("{}..{}", at(0), at(60))));
    assert_eq!(
        resolve_arg("{{nope}}", &ex, &status, &BTreeMap::new()),
        Err("failed to resolve {{nope}}".to_string())
    );
}
