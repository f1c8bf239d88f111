//! Tests of the AnalysisRun decisions: Argo's assessment rules as tables, and whole runs played
//! against scripted providers on a simulated clock.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

fn t0() -> Timestamp {
    Timestamp::from_second(1_700_000_000).expect("valid")
}

fn secs(n: i64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_secs(n)
}

fn run(spec: Value) -> AnalysisRun {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": "web-abc-2-1", "namespace": "team", "uid": "u-1"},
        "spec": spec,
    }))
    .expect("run decodes")
}

fn metric(v: Value) -> Metric {
    serde_json::from_value(v).expect("metric decodes")
}

fn web_metric(extra: Value) -> Value {
    let mut m =
        json!({"name": "rate", "provider": {"web": {"url": "http://127.0.0.1/{{args.path}}"}}});
    if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
    }
    m
}

fn value(v: f64) -> Observed {
    Observed::Value {
        result: ResultValue::Float(v),
        value: v.to_string(),
        metadata: BTreeMap::new(),
    }
}

fn error(message: &str) -> Observed {
    Observed::Error {
        message: message.into(),
        metadata: BTreeMap::new(),
    }
}

/// A run driven by scripted providers on a simulated clock: each `step` is one reconciliation.
struct Sim {
    run: AnalysisRun,
    now: Timestamp,
    events: Vec<Event>,
    calls: Vec<(String, TaskKind)>,
}

impl Sim {
    fn new(spec: Value) -> Self {
        Self {
            run: run(spec),
            now: t0(),
            events: Vec::new(),
            calls: Vec::new(),
        }
    }

    fn status(&self) -> AnalysisRunStatus {
        self.run.status.clone().unwrap_or_default()
    }

    fn phase(&self) -> String {
        self.status().phase
    }

    fn result(&self, name: &str) -> MetricResult {
        result_of(&self.status(), name)
            .cloned()
            .expect("metric result")
    }

    fn advance(&mut self, s: i64) {
        self.now = self.now.checked_add(secs(s)).expect("in range");
    }

    /// One reconciliation; `observe` answers each provider call. Returns the requeue.
    fn step(&mut self, mut observe: impl FnMut(&Metric, TaskKind) -> Observed) -> Option<Duration> {
        match plan(&self.run, self.now) {
            RunPlan::Completed { requeue_after, .. } => requeue_after,
            RunPlan::Invalid(outcome) => {
                self.events.extend(outcome.events);
                self.run.status = Some(outcome.status);
                None
            }
            RunPlan::Measure(measure) => {
                let status = self.status();
                let results = measure
                    .tasks
                    .iter()
                    .map(|task| {
                        let m = &measure.metrics[task.index];
                        self.calls.push((m.name.clone(), task.kind));
                        let base = last_measurement(&status, &m.name).cloned();
                        let observed = observe(m, task.kind);
                        TaskResult {
                            task: *task,
                            measurement: apply_observation(
                                m,
                                task.kind,
                                base.as_ref(),
                                observed,
                                self.now,
                            ),
                            metadata: Some(BTreeMap::new()),
                        }
                    })
                    .collect();
                let mut outcome = finish(&self.run, &measure, results, self.now);
                for (name, limit) in &outcome.garbage {
                    trim_measurements(&mut outcome.status, name, *limit);
                }
                self.events.extend(outcome.events);
                self.run.status = Some(outcome.status);
                outcome.requeue_after
            }
        }
    }

    fn reasons(&self) -> Vec<String> {
        self.events.iter().map(|e| e.reason.clone()).collect()
    }
}

// -------------------------------------------------------------------------------------------
// assessMetricStatus as a table (Argo's cases).

struct Row {
    failure_limit: Option<i32>,
    success_limit: Option<i32>,
    count: Option<i32>,
    failed: i32,
    successful: i32,
    consecutive_success: i32,
    inconclusive: i32,
    consecutive_error: i32,
    inconclusive_limit: Option<i32>,
    running: &'static str,
    terminating: &'static str,
}

#[test]
fn metric_assessment_follows_argos_table() {
    use phase::{FAILED as F, INCONCLUSIVE as I, RUNNING as R, SUCCESSFUL as S};
    let r = |fl, sl, count, failed, successful, cs, running, terminating| Row {
        failure_limit: fl,
        success_limit: sl,
        count,
        failed,
        successful,
        consecutive_success: cs,
        inconclusive: 0,
        consecutive_error: 0,
        inconclusive_limit: None,
        running,
        terminating,
    };
    let rows = [
        // failureLimit 2: three failures fail the metric; failureLimit 3 tolerates them.
        r(Some(2), None, None, 3, 0, 0, F, F),
        r(Some(3), None, None, 3, 0, 0, R, S),
        // failureLimit -1 with consecutiveSuccessLimit, indefinite.
        r(Some(-1), Some(3), None, 3, 4, 3, S, S),
        r(Some(-1), Some(5), None, 3, 4, 3, R, S),
        // ... with a count that is reached: only the success limit applies.
        r(Some(-1), Some(5), Some(7), 3, 4, 3, F, F),
        r(Some(-1), Some(3), Some(7), 3, 4, 3, S, S),
        // ... with a count not yet reached.
        r(Some(-1), Some(3), Some(9), 3, 4, 3, S, S),
        r(Some(-1), Some(5), Some(9), 3, 4, 3, R, S),
        // failureLimit 4 and consecutiveSuccessLimit 4, indefinite.
        r(Some(4), Some(4), None, 3, 4, 3, R, S),
        r(Some(4), Some(4), None, 5, 9, 0, F, F),
        r(Some(4), Some(4), None, 3, 5, 4, S, S),
        r(Some(4), Some(4), None, 5, 5, 4, F, F),
        // ... count 10 reached: both limits apply and neither was reached -> Inconclusive.
        r(Some(4), Some(4), Some(10), 4, 6, 3, I, I),
        r(Some(4), Some(4), Some(10), 5, 5, 3, F, F),
        r(Some(4), Some(4), Some(10), 4, 6, 4, S, S),
        r(Some(4), Some(4), Some(10), 5, 5, 4, F, F),
        // ... count 10 not reached.
        r(Some(4), Some(4), Some(10), 3, 5, 3, R, S),
        r(Some(4), Some(4), Some(10), 5, 3, 3, F, F),
        r(Some(4), Some(4), Some(10), 3, 5, 4, S, S),
        r(Some(4), Some(4), Some(10), 5, 4, 4, F, F),
    ];
    let extra = [
        // inconclusiveLimit 2 / 3 with three inconclusive measurements.
        Row {
            inconclusive: 3,
            inconclusive_limit: Some(2),
            ..r(None, None, None, 0, 0, 0, I, I)
        },
        Row {
            inconclusive: 3,
            inconclusive_limit: Some(3),
            ..r(None, None, None, 0, 0, 0, R, S)
        },
        // consecutiveErrorLimit defaults to 4: five errors in a row are an Error, four are not.
        Row {
            consecutive_error: 5,
            ..r(None, None, None, 0, 0, 0, phase::ERROR, phase::ERROR)
        },
        Row {
            consecutive_error: 4,
            ..r(None, None, None, 0, 0, 0, R, S)
        },
        // count reached with successes only: Successful.
        r(None, None, Some(10), 0, 10, 10, S, S),
    ];
    for (i, row) in rows.iter().chain(&extra).enumerate() {
        let mut m = json!({"name": "m", "interval": "60s", "provider": {"web": {"url": "x"}}});
        if let Some(v) = row.failure_limit {
            m["failureLimit"] = json!(v);
        }
        if let Some(v) = row.success_limit {
            m["consecutiveSuccessLimit"] = json!(v);
        }
        if let Some(v) = row.count {
            m["count"] = json!(v);
        }
        if let Some(v) = row.inconclusive_limit {
            m["inconclusiveLimit"] = json!(v);
        }
        let metric = metric(m);
        let last = if row.consecutive_error > 0 {
            phase::ERROR
        } else if row.inconclusive > 0 {
            phase::INCONCLUSIVE
        } else {
            phase::FAILED
        };
        let result = MetricResult {
            name: "m".into(),
            phase: phase::RUNNING.into(),
            count: Some(row.failed + row.successful + row.inconclusive),
            failed: Some(row.failed),
            successful: Some(row.successful),
            inconclusive: Some(row.inconclusive),
            consecutive_success: Some(row.consecutive_success),
            consecutive_error: Some(row.consecutive_error),
            measurements: Some(vec![Measurement {
                phase: last.into(),
                finished_at: Some(Time(t0())),
                ..Measurement::default()
            }]),
            ..MetricResult::default()
        };
        assert_eq!(
            assess_metric(&metric, &result, false),
            row.running,
            "row {i} (not terminating)"
        );
        assert_eq!(
            assess_metric(&metric, &result, true),
            row.terminating,
            "row {i} (terminating)"
        );
    }
}

#[test]
fn no_measurement_and_in_flight_measurements() {
    let m = metric(json!({"name": "m", "provider": {"web": {"url": "x"}}}));
    let empty = MetricResult::default();
    assert_eq!(assess_metric(&m, &empty, false), phase::PENDING);
    assert_eq!(assess_metric(&m, &empty, true), phase::SUCCESSFUL);
    let in_flight = MetricResult {
        measurements: Some(vec![Measurement {
            phase: phase::RUNNING.into(),
            ..Measurement::default()
        }]),
        ..MetricResult::default()
    };
    assert_eq!(assess_metric(&m, &in_flight, false), phase::RUNNING);
    assert_eq!(assess_metric(&m, &in_flight, true), phase::RUNNING);
}

#[test]
fn limits_are_strict_and_later_checks_win() {
    let m = metric(json!({"name": "m", "failureLimit": 1, "provider": {"web": {"url": "x"}}}));
    let with = |failed, inconclusive, errors| MetricResult {
        failed: Some(failed),
        inconclusive: Some(inconclusive),
        consecutive_error: Some(errors),
        ..MetricResult::default()
    };
    assert_eq!(limit_breach(&m, &with(1, 0, 0)), (None, None));
    assert_eq!(
        limit_breach(&m, &with(2, 0, 0)),
        (
            Some(phase::FAILED),
            Some("failed (2) > failureLimit (1)".into())
        )
    );
    assert_eq!(
        limit_breach(&m, &with(2, 1, 0)),
        (
            Some(phase::INCONCLUSIVE),
            Some("inconclusive (1) > inconclusiveLimit (0)".into())
        )
    );
    assert_eq!(
        limit_breach(&m, &with(2, 1, 5)),
        (
            Some(phase::ERROR),
            Some("consecutiveErrors (5) > consecutiveErrorLimit (4)".into())
        )
    );
    let disabled = metric(
        json!({"name": "m", "failureLimit": -1, "consecutiveSuccessLimit": 1, "provider": {"web": {"url": "x"}}}),
    );
    assert_eq!(limit_breach(&disabled, &with(100, 0, 0)), (None, None));
    let strings = metric(
        json!({"name": "m", "failureLimit": "2", "consecutiveErrorLimit": "0", "provider": {"web": {"url": "x"}}}),
    );
    assert_eq!(limit_breach(&strings, &with(2, 0, 0)), (None, None));
    assert_eq!(limit_breach(&strings, &with(0, 0, 1)).0, Some(phase::ERROR));
}

#[test]
fn worse_order() {
    assert!(is_worse(phase::SUCCESSFUL, phase::FAILED));
    assert!(is_worse(phase::INCONCLUSIVE, phase::ERROR));
    assert!(is_worse(phase::ERROR, phase::FAILED));
    assert!(!is_worse(phase::FAILED, phase::ERROR));
    assert!(!is_worse(phase::FAILED, phase::FAILED));
    assert!(is_worse(phase::RUNNING, phase::PENDING));
}

// -------------------------------------------------------------------------------------------
// Whole runs.

#[test]
fn a_good_metric_measures_count_times_at_its_interval_then_succeeds() {
    let mut sim = Sim::new(json!({
        "args": [{"name": "path", "value": "rate"}],
        "metrics": [web_metric(json!({"count": 3, "interval": "10s", "successCondition": "result >= 0.95"}))]
    }));
    let requeue = sim.step(|m, k| {
        assert_eq!(k, TaskKind::Run);
        assert_eq!(
            m.provider.web.as_ref().map(|w| w.url.as_str()),
            Some("http://127.0.0.1/rate")
        );
        value(0.99)
    });
    assert_eq!(sim.phase(), phase::RUNNING);
    assert_eq!(requeue, Some(Duration::from_secs(10)));
    assert_eq!(sim.status().started_at, Some(Time(t0())));
    // Nothing is due before the interval passed (strictly).
    sim.advance(10);
    assert_eq!(sim.step(|_, _| panic!("not due")), Some(Duration::ZERO));
    sim.advance(1);
    sim.step(|_, _| value(0.97));
    sim.advance(11);
    assert_eq!(sim.step(|_, _| value(0.96)), None);
    assert_eq!(sim.phase(), phase::SUCCESSFUL);
    let r = sim.result("rate");
    assert_eq!(
        (r.count, r.successful, r.consecutive_success, r.failed),
        (Some(3), Some(3), Some(3), None)
    );
    assert_eq!(r.phase, phase::SUCCESSFUL);
    let ms = r.measurements.expect("measurements");
    assert_eq!(ms.len(), 3);
    assert_eq!(ms[2].value.as_deref(), Some("0.96"));
    assert_eq!(ms[2].finished_at, Some(Time(t0() + secs(22))));
    assert_eq!(sim.status().completed_at, Some(Time(t0() + secs(22))));
    assert_eq!(sim.status().message, None);
    assert_eq!(
        sim.status().run_summary,
        Some(RunSummary {
            count: Some(1),
            successful: Some(1),
            ..RunSummary::default()
        })
    );
    assert_eq!(sim.reasons(), ["MetricSuccessful", "AnalysisRunSuccessful"]);
    assert_eq!(
        sim.events[1].message,
        "Analysis Completed. Result: Successful"
    );
    assert_eq!(
        sim.events[0].message,
        "Metric 'rate' Completed. Result: Successful"
    );
    // A completed run is left alone.
    assert_eq!(
        plan(&sim.run, sim.now),
        RunPlan::Completed {
            delete: false,
            requeue_after: None
        }
    );
}

#[test]
fn failure_limit_one_tolerates_one_failure_and_the_second_fails_the_run() {
    let spec = |limit: i32| {
        json!({
            "args": [{"name": "path", "value": "x"}],
            "metrics": [web_metric(json!({"count": 4, "interval": "5s", "failureLimit": limit,
                "successCondition": "result >= 0.95"}))]
        })
    };
    let mut sim = Sim::new(spec(1));
    let values = [0.5, 0.99, 0.4, 0.99];
    for (i, v) in values.iter().enumerate() {
        sim.step(|_, _| value(*v));
        if i < 2 {
            assert_eq!(sim.phase(), phase::RUNNING, "after measurement {i}");
        }
        sim.advance(6);
    }
    assert_eq!(sim.phase(), phase::FAILED);
    assert_eq!(
        sim.status().message.as_deref(),
        Some(r#"Metric "rate" assessed Failed due to failed (2) > failureLimit (1)"#)
    );
    assert_eq!(sim.calls.len(), 3, "no measurement after the metric failed");
    let events: Vec<_> = sim
        .events
        .iter()
        .map(|e| (e.type_, e.reason.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            (crate::EventType::Warning, "MetricFailed"),
            (crate::EventType::Warning, "AnalysisRunFailed")
        ]
    );
    // failureLimit 0: the first failure ends it.
    let mut strict = Sim::new(spec(0));
    strict.step(|_, _| value(0.5));
    assert_eq!(strict.phase(), phase::FAILED);
    assert_eq!(
        strict.status().message.as_deref(),
        Some(r#"Metric "rate" assessed Failed due to failed (1) > failureLimit (0)"#)
    );
}

#[test]
fn both_conditions_and_neither_true_is_inconclusive() {
    let mut sim = Sim::new(json!({
        "args": [{"name": "path", "value": "x"}],
        "metrics": [web_metric(json!({"successCondition": "result > 0.9", "failureCondition": "result < 0.5"}))]
    }));
    sim.step(|_, _| value(0.7));
    assert_eq!(sim.phase(), phase::INCONCLUSIVE);
    assert_eq!(
        sim.status().message.as_deref(),
        Some(
            r#"Metric "rate" assessed Inconclusive due to inconclusive (1) > inconclusiveLimit (0)"#
        )
    );
    assert_eq!(
        sim.reasons(),
        ["MetricInconclusive", "AnalysisRunInconclusive"]
    );
    assert_eq!(sim.events[1].type_, crate::EventType::Normal);
}

#[test]
fn errors_retry_after_ten_seconds_and_five_in_a_row_error_the_run() {
    let mut sim = Sim::new(json!({
        "args": [{"name": "path", "value": "x"}],
        "metrics": [web_metric(json!({"interval": "1m", "successCondition": "result > 0"}))]
    }));
    for i in 0..5 {
        let requeue = sim.step(|_, _| error("Post \"http://x\": connection refused"));
        if i < 4 {
            assert_eq!(sim.phase(), phase::RUNNING);
            assert_eq!(
                requeue,
                Some(Duration::from_secs(10)),
                "retry after an error"
            );
        }
        sim.advance(11);
    }
    assert_eq!(sim.phase(), phase::ERROR);
    let r = sim.result("rate");
    assert_eq!(
        (r.error, r.consecutive_error, r.count),
        (Some(5), Some(5), None)
    );
    assert_eq!(
        sim.status().message.as_deref(),
        Some(
            r#"Metric "rate" assessed Error due to consecutiveErrors (5) > consecutiveErrorLimit (4): "Error Message: Post "http://x": connection refused""#
        )
    );
    assert_eq!(
        sim.status().run_summary.and_then(|s| s.error),
        Some(1),
        "the summary counts the limit that broke"
    );
}

#[test]
fn a_success_resets_the_consecutive_error_counter() {
    let mut sim = Sim::new(json!({
        "args": [{"name": "path", "value": "x"}],
        "metrics": [web_metric(json!({"interval": "10s", "count": 10, "consecutiveErrorLimit": 1}))]
    }));
    sim.step(|_, _| error("boom"));
    sim.advance(11);
    sim.step(|_, _| value(1.0));
    let r = sim.result("rate");
    assert_eq!(
        (r.error, r.consecutive_error, r.consecutive_success),
        (Some(1), None, Some(1))
    );
    sim.advance(11);
    sim.step(|_, _| error("boom"));
    assert_eq!(sim.phase(), phase::RUNNING);
    sim.advance(11);
    sim.step(|_, _| error("boom"));
    assert_eq!(sim.phase(), phase::ERROR);
}

#[test]
fn initial_delay_waits_from_started_at() {
    let mut sim = Sim::new(json!({
        "args": [{"name": "path", "value": "x"}],
        "metrics": [web_metric(json!({"initialDelay": "30s"}))]
    }));
    let requeue = sim.step(|_, _| panic!("not before the delay"));
    assert_eq!(requeue, Some(Duration::from_secs(30)));
    assert_eq!(sim.phase(), phase::RUNNING);
    sim.advance(20);
    assert_eq!(
        sim.step(|_, _| panic!("not yet")),
        Some(Duration::from_secs(10))
    );
    sim.advance(10);
    sim.step(|_, _| value(1.0));
    assert_eq!(sim.phase(), phase::SUCCESSFUL);
}

#[test]
fn asynchronous_measurements_resume_at_resume_at() {
    let mut sim = Sim::new(json!({
        "metrics": [{"name": "smoke", "provider": {"job": {"spec": {"template": {"spec": {"containers": []}}}}}}]
    }));
    let in_progress = |at: Timestamp| Observed::InProgress {
        resume_at: Some(at),
        metadata: BTreeMap::from([("job-name".to_string(), "u-1.smoke.1".to_string())]),
    };
    let first = sim.now + secs(5);
    let requeue = sim.step(|_, k| {
        assert_eq!(k, TaskKind::Run);
        in_progress(first)
    });
    assert_eq!(requeue, Some(Duration::from_secs(5)));
    assert_eq!(sim.result("smoke").phase, phase::RUNNING);
    sim.advance(2);
    assert_eq!(
        sim.step(|_, _| panic!("resumeAt not reached")),
        Some(Duration::from_secs(3))
    );
    sim.advance(3);
    sim.step(|_, k| {
        assert_eq!(k, TaskKind::Resume);
        Observed::Decided {
            verdict: Verdict::Successful,
            value: None,
            message: None,
            metadata: BTreeMap::new(),
        }
    });
    assert_eq!(sim.phase(), phase::SUCCESSFUL);
    let ms = sim.result("smoke").measurements.expect("measurements");
    assert_eq!(
        ms.len(),
        1,
        "the in-flight measurement was completed in place"
    );
    assert_eq!(ms[0].started_at, Some(Time(t0())));
    assert_eq!(ms[0].finished_at, Some(Time(t0() + secs(5))));
    assert_eq!(ms[0].resume_at, None);
    assert_eq!(
        ms[0]
            .metadata
            .as_ref()
            .and_then(|m| m.get("job-name"))
            .map(String::as_str),
        Some("u-1.smoke.1")
    );
}

#[test]
fn a_failed_metric_terminates_its_siblings_on_the_next_pass() {
    let mut sim = Sim::new(json!({
        "metrics": [
            {"name": "smoke", "provider": {"job": {"spec": {"template": {"spec": {"containers": []}}}}}},
            {"name": "rate", "successCondition": "result > 0.9", "provider": {"web": {"url": "x"}}}
        ]
    }));
    sim.step(|m, _| {
        if m.name == "smoke" {
            Observed::InProgress {
                resume_at: Some(t0() + secs(60)),
                metadata: BTreeMap::new(),
            }
        } else {
            value(0.1)
        }
    });
    assert_eq!(sim.result("rate").phase, phase::FAILED);
    assert_eq!(sim.phase(), phase::RUNNING, "the job is still running");
    // The next pass (the status write wakes the run) terminates the job without waiting for
    // its resumeAt, and ends the run Failed.
    sim.advance(1);
    sim.step(|m, k| {
        assert_eq!((m.name.as_str(), k), ("smoke", TaskKind::Terminate));
        Observed::Decided {
            verdict: Verdict::Inconclusive,
            value: None,
            message: Some("Metric Terminated".into()),
            metadata: BTreeMap::new(),
        }
    });
    assert_eq!(sim.phase(), phase::FAILED);
    assert_eq!(
        sim.status().message.as_deref(),
        Some(r#"Metric "rate" assessed Failed due to failed (1) > failureLimit (0)"#)
    );
    let smoke = sim.result("smoke");
    assert_eq!(
        smoke.measurements.expect("one")[0].message.as_deref(),
        Some("Metric Terminated")
    );
}

#[test]
fn terminate_ends_the_run_successfully_with_run_terminated() {
    let mut sim = Sim::new(json!({
        "args": [{"name": "path", "value": "x"}],
        "metrics": [web_metric(json!({"interval": "10s"}))]
    }));
    sim.step(|_, _| value(1.0));
    assert_eq!(sim.phase(), phase::RUNNING);
    sim.run.spec.terminate = Some(true);
    sim.advance(30);
    sim.step(|_, _| panic!("nothing new is measured while terminating"));
    assert_eq!(sim.phase(), phase::SUCCESSFUL);
    assert_eq!(sim.status().message.as_deref(), Some(RUN_TERMINATED));
    assert_eq!(sim.result("rate").phase, phase::SUCCESSFUL);
    // A run terminated before its first measurement.
    let mut early = Sim::new(
        json!({"terminate": true, "args": [{"name": "path", "value": "x"}],
        "metrics": [web_metric(json!({"initialDelay": "1h"}))]}),
    );
    early.step(|_, _| panic!("terminated"));
    assert_eq!(early.phase(), phase::SUCCESSFUL);
    assert_eq!(early.status().message.as_deref(), Some(RUN_TERMINATED));
}

#[test]
fn a_synchronous_measurement_terminated_in_flight_says_metric_terminated() {
    let m = metric(json!({"name": "m", "provider": {"web": {"url": "x"}}}));
    let base = Measurement {
        phase: phase::RUNNING.into(),
        started_at: Some(Time(t0())),
        ..Measurement::default()
    };
    let done = apply_observation(
        &m,
        TaskKind::Terminate,
        Some(&base),
        Observed::Decided {
            verdict: Verdict::Successful,
            value: None,
            message: None,
            metadata: BTreeMap::new(),
        },
        t0() + secs(3),
    );
    assert_eq!(done.phase, phase::SUCCESSFUL);
    assert_eq!(done.message.as_deref(), Some(METRIC_TERMINATED));
    assert_eq!(done.started_at, Some(Time(t0())));
    assert_eq!(done.finished_at, Some(Time(t0() + secs(3))));
}

#[test]
fn dry_run_metrics_do_not_decide_the_run() {
    let mut sim = Sim::new(json!({
        "dryRun": [{"metricName": "lat"}],
        "metrics": [
            {"name": "rate", "successCondition": "result > 0.9", "provider": {"web": {"url": "x"}}},
            {"name": "latency", "successCondition": "result < 100", "provider": {"web": {"url": "y"}}}
        ]
    }));
    sim.step(|m, _| {
        if m.name == "rate" {
            value(0.99)
        } else {
            value(500.0)
        }
    });
    assert_eq!(sim.phase(), phase::SUCCESSFUL);
    assert_eq!(sim.status().message, None);
    let latency = sim.result("latency");
    assert_eq!(latency.dry_run, Some(true));
    assert_eq!(latency.phase, phase::FAILED);
    assert_eq!(
        latency.message.as_deref(),
        Some("Metric assessed Failed due to failed (1) > failureLimit (0)")
    );
    assert_eq!(
        sim.status().dry_run_summary,
        Some(RunSummary {
            count: Some(1),
            failed: Some(1),
            ..RunSummary::default()
        })
    );
    assert_eq!(
        sim.status().run_summary,
        Some(RunSummary {
            count: Some(1),
            successful: Some(1),
            ..RunSummary::default()
        })
    );
    // `.*` puts every metric in dry-run mode: the run succeeds whatever they measure.
    let mut all = Sim::new(json!({
        "dryRun": [{"metricName": ".*"}],
        "metrics": [{"name": "rate", "successCondition": "result > 0.9", "provider": {"web": {"url": "x"}}}]
    }));
    all.step(|_, _| value(0.0));
    assert_eq!(all.phase(), phase::SUCCESSFUL);
}

#[test]
fn measurement_retention_keeps_ten_by_default_and_the_last_matching_rule_wins() {
    let spec = json!({
        "measurementRetention": [{"metricName": ".*", "limit": 3}, {"metricName": "^lat", "limit": 2}],
        "metrics": [
            {"name": "rate", "interval": "1s", "provider": {"web": {"url": "x"}}},
            {"name": "latency", "interval": "1s", "provider": {"web": {"url": "y"}}},
        ]
    });
    let RunPlan::Measure(m) = plan(&run(spec.clone()), t0()) else {
        panic!("measures")
    };
    assert_eq!(
        m.retention,
        BTreeMap::from([("latency".to_string(), 2), ("rate".to_string(), 3)])
    );
    let mut sim = Sim::new(spec);
    let mut garbage = Vec::new();
    for _ in 0..4 {
        sim.step(|_, _| value(1.0));
        sim.advance(2);
    }
    for name in ["rate", "latency"] {
        let ms = sim.result(name).measurements.expect("some");
        let expected = if name == "rate" { 3 } else { 2 };
        assert_eq!(ms.len(), expected, "{name}");
        assert_eq!(
            ms.last().and_then(|m| m.finished_at.clone()),
            Some(Time(t0() + secs(6)))
        );
        assert_eq!(sim.result(name).count, Some(4), "counters are not trimmed");
    }
    // The outcome names what to collect.
    let RunPlan::Measure(m) = plan(&sim.run, sim.now) else {
        panic!("measures")
    };
    let results = m
        .tasks
        .iter()
        .map(|t| TaskResult {
            task: *t,
            measurement: apply_observation(&m.metrics[t.index], t.kind, None, value(1.0), sim.now),
            metadata: None,
        })
        .collect();
    garbage.extend(finish(&sim.run, &m, results, sim.now).garbage);
    assert_eq!(
        garbage,
        [("rate".to_string(), 3), ("latency".to_string(), 2)]
    );
    // Without rules: ten.
    let mut plain = Sim::new(
        json!({"metrics": [{"name": "rate", "interval": "1s", "provider": {"web": {"url": "x"}}}]}),
    );
    for _ in 0..12 {
        plain.step(|_, _| value(1.0));
        plain.advance(2);
    }
    assert_eq!(plain.result("rate").measurements.map(|m| m.len()), Some(10));
}

#[test]
fn consecutive_success_limit_ends_an_indefinite_metric() {
    let mut sim = Sim::new(json!({
        "metrics": [{"name": "rate", "interval": "1s", "failureLimit": -1, "consecutiveSuccessLimit": 2,
            "successCondition": "result > 0.5", "provider": {"web": {"url": "x"}}}]
    }));
    for v in [1.0, 0.0, 1.0] {
        sim.step(|_, _| value(v));
        assert_eq!(sim.phase(), phase::RUNNING);
        sim.advance(2);
    }
    sim.step(|_, _| value(1.0));
    assert_eq!(sim.phase(), phase::SUCCESSFUL);
    assert_eq!(sim.result("rate").failed, Some(1));
}

#[test]
fn invalid_runs_end_in_error_with_argos_messages() {
    let cases = [
        (
            json!({"metrics": [web_metric(json!({}))]}),
            "Unable to resolve metric arguments: failed to resolve {{args.path}}",
        ),
        (
            json!({"args": [{"name": "path"}], "metrics": [web_metric(json!({}))]}),
            "Unable to resolve metric arguments: argument \"path\" was not supplied",
        ),
        (
            json!({"metrics": []}),
            "Analysis spec invalid: no metrics specified",
        ),
        (
            json!({"metrics": [{"name": "m", "provider": {}}]}),
            "Analysis spec invalid: metrics[0]: no provider specified",
        ),
        (
            json!({"metrics": [{"name": "m", "provider": {"web": {"url": "x"}, "prometheus": {}}}]}),
            "Analysis spec invalid: metrics[0]: multiple providers specified",
        ),
        (
            json!({"metrics": [{"name": "m", "count": 2, "provider": {"web": {"url": "x"}}}]}),
            "Analysis spec invalid: metrics[0]: interval must be specified when count > 1",
        ),
        (
            json!({"metrics": [{"name": "m", "count": 3, "interval": "1m", "failureLimit": 2,
                "consecutiveSuccessLimit": 2, "provider": {"web": {"url": "x"}}}]}),
            "Analysis spec invalid: metrics[0]: count (3) must be >= failureLimit + consecutiveSuccessLimit (2 + 2) if both >= 0",
        ),
        (
            json!({"metrics": [{"name": "m", "failureLimit": -1, "provider": {"web": {"url": "x"}}}]}),
            "Analysis spec invalid: metrics[0]: failureLimit and consecutiveSuccessLimit cannot both be disabled",
        ),
        (
            json!({"metrics": [{"name": "m", "interval": "soon", "provider": {"web": {"url": "x"}}}]}),
            "Analysis spec invalid: metrics[0]: invalid interval string: time: invalid duration \"soon\"",
        ),
        (
            json!({"metrics": [{"name": "m", "provider": {"web": {"url": "x"}}}, {"name": "m", "provider": {"web": {"url": "x"}}}]}),
            "Analysis spec invalid: metrics[1]: duplicate name 'm'",
        ),
        (
            json!({"dryRun": [{"metricName": "m"}, {"metricName": "nope"}], "metrics": [{"name": "m", "provider": {"web": {"url": "x"}}}]}),
            "Analysis spec invalid: dryRun[1]: Rule didn't match any metric name(s)",
        ),
        (
            json!({"measurementRetention": [{"metricName": "(", "limit": 2}], "metrics": [{"name": "m", "provider": {"web": {"url": "x"}}}]}),
            "Analysis spec invalid: measurementRetention[0]: Rule didn't match any metric name(s)",
        ),
    ];
    for (spec, message) in cases {
        let mut sim = Sim::new(spec);
        sim.step(|_, _| panic!("an invalid run measures nothing"));
        assert_eq!(sim.phase(), phase::ERROR, "{message}");
        assert_eq!(sim.status().message.as_deref(), Some(message));
        assert_eq!(sim.reasons(), ["AnalysisRunError"]);
        assert_eq!(sim.events[0].type_, crate::EventType::Warning);
        assert_eq!(
            sim.status().completed_at,
            None,
            "Argo sets no completedAt here"
        );
    }
}

#[test]
fn arguments_are_escaped_like_go_strconv_quote() {
    let m = metric(
        json!({"name": "m", "successCondition": "result == '{{ args.want }}'",
        "provider": {"web": {"url": "http://x/{{args.path}}", "headers": [{"key": "A", "value": "{{args.token}}"}]}}}),
    );
    let arg = |name: &str, v: &str| Argument {
        name: name.into(),
        value: Some(v.into()),
        ..Argument::default()
    };
    let resolved = resolve_metric(
        &m,
        &[
            arg("path", "a\"b\\c\nd\té"),
            arg("want", "ok"),
            arg("token", "s3cr3t"),
        ],
    )
    .expect("resolves");
    let web = resolved.provider.web.expect("web");
    assert_eq!(
        web.url, "http://x/a\"b\\c\nd\té",
        "quoted, then decoded back"
    );
    assert_eq!(
        resolved.success_condition.as_deref(),
        Some("result == 'ok'")
    );
    assert_eq!(web.headers.expect("headers")[0].value, "s3cr3t");
    // The escaping itself.
    assert_eq!(
        go_quote_inner("a\"b\\c\nd\te\u{7}\u{b}\u{1}\u{7f}"),
        "a\\\"b\\\\c\\nd\\te\\a\\v\\x01\\x7f"
    );
    assert_eq!(
        go_quote_inner("héllo ✓ \u{200b}\u{a0}"),
        "héllo ✓ \\u200b\\u00a0"
    );
    assert_eq!(go_quote_inner("\u{10ffff}"), "\\U0010ffff");
    // Control characters Go escapes as \a, \v or \xNN are not JSON: the metric does not decode,
    // as in Argo, with Go's message.
    assert_eq!(
        resolve_metric(
            &m,
            &[arg("path", "x\u{1}"), arg("want", ""), arg("token", "")]
        )
        .unwrap_err(),
        "invalid character 'x' in string escape code"
    );
    assert_eq!(
        resolve_metric(
            &m,
            &[arg("path", "\u{7}"), arg("want", ""), arg("token", "")]
        )
        .unwrap_err(),
        "invalid character 'a' in string escape code"
    );
    // Unresolved tags: the last one is named, untrimmed.
    let two = metric(json!({"name": "m", "provider": {"web": {"url": "{{args.a}}/{{ args.b }}"}}}));
    assert_eq!(
        resolve_metric(&two, &[]).unwrap_err(),
        "failed to resolve {{ args.b }}"
    );
    // An unclosed tag runs to the closing braces of the JSON, as in Argo.
    let unclosed = metric(json!({"name": "m", "provider": {"web": {"url": "{{args.a"}}}));
    assert_eq!(
        resolve_metric(&unclosed, &[arg("a", "1")]).unwrap_err(),
        "failed to resolve {{args.a\"}}"
    );
    assert!(
        substitute("x {{a", &BTreeMap::new())
            .unwrap_err()
            .starts_with("cannot find end tag=\"}}\"")
    );
    // A count taken from an argument is a number again.
    let counted = metric(
        json!({"name": "m", "count": "{{args.n}}", "interval": "1s", "provider": {"web": {"url": "x"}}}),
    );
    let resolved = resolve_metric(&counted, &[arg("n", "3")]).expect("resolves");
    assert_eq!(effective_count(&resolved), Some(3));
}

#[test]
fn secret_arguments_are_stood_in_for_until_measuring() {
    let r = run(json!({
        "args": [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                 {"name": "path", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "metrics": [web_metric(json!({"count": "1"}))]
    }));
    let RunPlan::Measure(m) = plan(&r, t0()) else {
        panic!("measures")
    };
    assert_eq!(
        m.metrics[0].provider.web.as_ref().map(|w| w.url.as_str()),
        Some("http://127.0.0.1/temp-for-secret")
    );
    assert_eq!(
        m.tasks,
        [Task {
            index: 0,
            kind: TaskKind::Run
        }]
    );
}

#[test]
fn redaction_replaces_every_secret_value() {
    let mut m = Measurement {
        phase: phase::ERROR.into(),
        message: Some("GET http://x/?token=hunter2: 401 (hunter2)".into()),
        value: Some("hunter2".into()),
        metadata: Some(BTreeMap::from([("q".into(), "up{t=\"hunter2\"}".into())])),
        ..Measurement::default()
    };
    redact(&mut m, &["hunter2".into(), String::new()]);
    assert_eq!(
        m.message.as_deref(),
        Some("GET http://x/?token=*****: 401 (*****)")
    );
    assert_eq!(m.value.as_deref(), Some("*****"));
    assert_eq!(
        m.metadata
            .as_ref()
            .and_then(|md| md.get("q"))
            .map(String::as_str),
        Some("up{t=\"*****\"}")
    );
    assert_eq!(redact_text("a hunter2 b", &["hunter2".into()]), "a ***** b");
}

#[test]
fn observations_are_judged_by_the_conditions() {
    let m = |s: Option<&str>, f: Option<&str>| {
        let mut v = json!({"name": "m", "provider": {"web": {"url": "x"}}});
        if let Some(s) = s {
            v["successCondition"] = json!(s);
        }
        if let Some(f) = f {
            v["failureCondition"] = json!(f);
        }
        metric(v)
    };
    let judge = |metric: &Metric, observed: Observed| {
        apply_observation(metric, TaskKind::Run, None, observed, t0())
    };
    let vector = |v: Vec<f64>| Observed::Value {
        result: ResultValue::Floats(v),
        value: "[0.99]".into(),
        metadata: BTreeMap::from([("ResolvedPrometheusQuery".into(), "q".into())]),
    };
    let ok = judge(&m(Some("result[0] >= 0.95"), None), vector(vec![0.99]));
    assert_eq!(ok.phase, phase::SUCCESSFUL);
    assert_eq!(ok.value.as_deref(), Some("[0.99]"));
    assert_eq!(ok.started_at, Some(Time(t0())));
    assert_eq!(ok.finished_at, Some(Time(t0())));
    assert_eq!(
        ok.metadata
            .as_ref()
            .and_then(|md| md.get("ResolvedPrometheusQuery"))
            .map(String::as_str),
        Some("q")
    );
    assert_eq!(
        judge(&m(Some("result[0] >= 0.95"), None), vector(vec![0.5])).phase,
        phase::FAILED
    );
    assert_eq!(
        judge(&m(None, Some("result[0] < 0.9")), vector(vec![0.5])).phase,
        phase::FAILED
    );
    assert_eq!(
        judge(&m(None, None), vector(vec![0.5])).phase,
        phase::SUCCESSFUL
    );
    // NaN compares false: only a success condition fails; with both it is inconclusive.
    assert_eq!(
        judge(&m(Some("result >= 1"), None), value(f64::NAN)).phase,
        phase::FAILED
    );
    assert_eq!(
        judge(&m(Some("result >= 1"), Some("result < 1")), value(f64::NAN)).phase,
        phase::INCONCLUSIVE
    );
    let empty = judge(&m(Some("result[0] >= 0.95"), None), vector(vec![]));
    assert_eq!(empty.phase, phase::ERROR);
    assert_eq!(
        empty.message.as_deref(),
        Some(
            "could not evaluate successCondition \"result[0] >= 0.95\": metric result is nil or empty: no data returned from the metric provider"
        )
    );
    assert_eq!(
        empty.value, None,
        "no value on an evaluation error, as Argo's providers"
    );
    let failed = judge(
        &m(None, None),
        Observed::Decided {
            verdict: Verdict::Failed,
            value: Some("3".into()),
            message: Some("score 3".into()),
            metadata: BTreeMap::new(),
        },
    );
    assert_eq!(
        (failed.phase.as_str(), failed.value.as_deref()),
        (phase::FAILED, Some("3"))
    );
    let err = provider_error(
        None,
        "metric provider `datadog` is not compiled into this build",
        t0(),
    );
    assert_eq!(err.phase, phase::ERROR);
    assert_eq!(err.finished_at, Some(Time(t0())));
}

#[test]
fn ttl_deletes_completed_runs_once_a_full_second_past() {
    let mut r = run(
        json!({"ttlStrategy": {"secondsAfterCompletion": 60, "secondsAfterFailure": 10},
        "metrics": [{"name": "m", "provider": {"web": {"url": "x"}}}]}),
    );
    r.status = Some(AnalysisRunStatus {
        phase: phase::SUCCESSFUL.into(),
        completed_at: Some(Time(t0())),
        ..AnalysisRunStatus::default()
    });
    assert_eq!(
        plan(&r, t0() + secs(60)),
        RunPlan::Completed {
            delete: false,
            requeue_after: Some(Duration::from_secs(1))
        }
    );
    assert_eq!(
        plan(&r, t0() + secs(61)),
        RunPlan::Completed {
            delete: true,
            requeue_after: None
        }
    );
    if let Some(s) = r.status.as_mut() {
        s.phase = phase::FAILED.into();
    }
    assert!(matches!(
        plan(&r, t0() + secs(11)),
        RunPlan::Completed { delete: true, .. }
    ));
    // No TTL strategy, or no completedAt: kept.
    r.spec.ttl_strategy = None;
    assert!(matches!(
        plan(&r, t0() + secs(1000)),
        RunPlan::Completed {
            delete: false,
            requeue_after: None
        }
    ));
}

#[test]
fn provider_names_follow_argos_order() {
    let m = |p: Value| metric(json!({"name": "m", "provider": p}));
    assert_eq!(
        provider_name(&m(json!({"prometheus": {}}))).as_deref(),
        Some("prometheus")
    );
    assert_eq!(
        provider_type(&m(json!({"newRelic": {"query": "q"}}))),
        "NewRelic"
    );
    assert_eq!(provider_type(&m(json!({"skywalking": {}}))), "skywalking");
    assert_eq!(
        provider_name(&m(json!({"plugin": {"argoproj-labs/sample": {}}}))).as_deref(),
        Some("argoproj-labs/sample")
    );
    assert_eq!(
        provider_type(&m(json!({"plugin": {"argoproj-labs/sample": {}}}))),
        "RPCPlugin"
    );
    assert_eq!(provider_type(&m(json!({}))), "Unknown Provider");
}

#[test]
fn field_references_follow_the_downward_api_and_argos_paths() {
    let owner = json!({
        "metadata": {"name": "web", "namespace": "team", "uid": "u-9",
            "labels": {"app": "web", "tier": "front"}, "annotations": {"note": "a \"b\""}},
        "spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "app", "image": "web:2"}]}}}
    });
    let ok = |p: &str| field_value(&owner, p).expect(p);
    assert_eq!(ok("metadata.name"), "web");
    assert_eq!(ok("metadata.uid"), "u-9");
    assert_eq!(ok("metadata.labels['tier']"), "front");
    assert_eq!(ok("metadata.labels['missing']"), "");
    assert_eq!(ok("metadata.labels"), "app=\"web\"\ntier=\"front\"");
    assert_eq!(ok("metadata.annotations"), "note=\"a \\\"b\\\"\"");
    assert_eq!(ok("spec.template.spec.containers[0].image"), "web:2");
    assert_eq!(ok("spec.replicas"), "5");
    let err = |p: &str| field_value(&owner, p).unwrap_err();
    assert_eq!(
        err("metadata.generation"),
        "unsupported fieldPath: metadata.generation"
    );
    assert_eq!(
        err("spec.template.spec.containers[3].image"),
        "index 3 out of range"
    );
    assert_eq!(err("spec.template.spec.containers[x]"), "invalid index 'x'");
    assert_eq!(err("spec.nothing"), "invalid path spec.nothing in rollout");
    assert_eq!(
        err("spec.template"),
        "path spec.template in rollout must terminate in a primitive value"
    );
}
