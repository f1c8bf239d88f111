//! The AnalysisRun controller's decisions, as pure functions (Argo's `analysis/analysis.go`,
//! `argo-core.md` §2.16): which measurements a run needs now, how a provider's observation
//! becomes a measurement, how measurements decide a metric and metrics decide the run, how many
//! measurements to keep, and when to look again. The controller does the I/O around them:
//!
//! 1. [`plan()`] looks at the run: a completed run only waits for its TTL
//!    ([`RunPlan::Completed`]); a run whose arguments do not resolve or whose metrics, `dryRun`
//!    or `measurementRetention` rules are invalid ends in `Error` ([`RunPlan::Invalid`]);
//!    otherwise it lists the [`Task`]s due now (run a new measurement, resume one in flight,
//!    terminate one because the run is terminating) in a [`Measure`].
//! 2. For each task the controller resolves the metric's `{{args.*}}` with the secret values
//!    ([`resolve_metric`]), calls the provider, turns its answer into a measurement with
//!    [`apply_observation`] (which evaluates `successCondition`/`failureCondition` with
//!    `rollouts-expr`), and [`redact`]s the secret values out of it.
//! 3. [`finish()`] records the measurements, assesses every metric and the run, and returns the
//!    new status, the Events (`Metric<Phase>`, `AnalysisRun<Phase>`), the metrics whose old
//!    measurements are to be garbage-collected, and when to look again.
//!
//! Times written into the status are whole seconds, as they read back from the API server, so
//! that a decision taken before and after a round trip is the same.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::{apis::meta::v1::Time, util::intstr::IntOrString};
use rollouts_api::{
    AnalysisRun, AnalysisRunStatus, Argument, Measurement, Metric, MetricResult, RunSummary,
};

use crate::analysis::phase;
use crate::duration::parse_go_duration;
use crate::plan::Event;

pub use rollouts_expr::ResultValue;

#[cfg(test)]
mod tests;

/// Measurements kept per metric unless `measurementRetention` says otherwise (Argo's
/// `DefaultMeasurementHistoryLimit`).
pub const DEFAULT_MEASUREMENT_HISTORY_LIMIT: usize = 10;
/// Wait after an `Error` measurement before the next one (Argo's `DefaultErrorRetryInterval`).
pub const ERROR_RETRY_INTERVAL: Duration = Duration::from_secs(10);
/// `consecutiveErrorLimit` when the metric does not set one.
pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: i64 = 4;
/// What secret values are replaced with in messages.
pub const REDACTED: &str = "*****";
/// The run message when `spec.terminate` stopped it.
pub const RUN_TERMINATED: &str = "Run Terminated";
/// The message of a measurement a provider stopped because the run was terminating.
pub const METRIC_TERMINATED: &str = "Metric Terminated";
/// Stand-in value of secret (and field reference) arguments while the run is validated: the
/// real values are read only just before measuring.
const PLACEHOLDER: &str = "temp-for-secret";

/// What to ask a provider for one metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    /// Start a new measurement.
    Run,
    /// Check on the measurement in flight (the metric's last one).
    Resume,
    /// Stop the measurement in flight: the run is terminating.
    Terminate,
}

/// One provider call of this reconciliation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Task {
    /// Index of the metric in `spec.metrics` (and in [`Measure::metrics`]).
    pub index: usize,
    /// What to do.
    pub kind: TaskKind,
}

/// A run that is measuring: what it needs now.
#[derive(Clone, Debug, PartialEq)]
pub struct Measure {
    /// `spec.metrics` with the arguments resolved, secret and field-reference arguments replaced
    /// by a stand-in value (enough to schedule and validate; never sent to a provider).
    pub metrics: Vec<Metric>,
    /// The provider calls due now, in metric order.
    pub tasks: Vec<Task>,
    /// Metrics in dry-run mode (`spec.dryRun` rules are unanchored regular expressions).
    pub dry_run: BTreeSet<String>,
    /// Measurements to keep per metric (the last matching `measurementRetention` rule with a
    /// limit above zero; [`DEFAULT_MEASUREMENT_HISTORY_LIMIT`] otherwise).
    pub retention: BTreeMap<String, usize>,
    /// Whether the run is terminating (`spec.terminate`, or a metric that is not in dry-run
    /// mode already Failed, Errored or is Inconclusive): no new measurement is started, and
    /// measurements in flight are terminated.
    pub terminating: bool,
}

/// What one reconciliation of a run has to do.
#[derive(Clone, Debug, PartialEq)]
pub enum RunPlan {
    /// The run is complete; only its `ttlStrategy` matters.
    Completed {
        /// The TTL has passed: delete the run.
        delete: bool,
        /// When the TTL will pass, if it is set and has not yet.
        requeue_after: Option<Duration>,
    },
    /// The run cannot be measured (unresolvable arguments, an invalid metric, a `dryRun` or
    /// `measurementRetention` rule that matches nothing): it ends in `Error` with this outcome.
    Invalid(Outcome),
    /// The run is measuring.
    Measure(Measure),
}

/// The result of a reconciliation: what to write and record.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The new status (write it when it differs from the old one).
    pub status: AnalysisRunStatus,
    /// Events to record on the AnalysisRun.
    pub events: Vec<Event>,
    /// When to look again (the earliest next measurement, end of an initial delay, `resumeAt`,
    /// or the TTL of a completed run); `None`: only on a change.
    pub requeue_after: Option<Duration>,
    /// Metrics with more measurements than they keep, and how many they keep: call the
    /// provider's garbage collection, then [`trim_measurements`].
    pub garbage: Vec<(String, usize)>,
}

/// A phase a provider decided itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Successful.
    Successful,
    /// Failed.
    Failed,
    /// Inconclusive.
    Inconclusive,
}

/// What a provider observed (the engine's mirror of `rollouts_plugin::Observation`).
#[derive(Clone, Debug, PartialEq)]
pub enum Observed {
    /// A value for the conditions.
    Value {
        /// Bound to `result` in the conditions.
        result: ResultValue,
        /// Rendered value for `measurement.value`.
        value: String,
        /// Measurement metadata.
        metadata: BTreeMap<String, String>,
    },
    /// The provider decided the phase.
    Decided {
        /// The phase.
        verdict: Verdict,
        /// Rendered value.
        value: Option<String>,
        /// Message.
        message: Option<String>,
        /// Measurement metadata.
        metadata: BTreeMap<String, String>,
    },
    /// Still running.
    InProgress {
        /// When to resume.
        resume_at: Option<Timestamp>,
        /// Measurement metadata (provider state).
        metadata: BTreeMap<String, String>,
    },
    /// The measurement could not be taken.
    Error {
        /// Why.
        message: String,
        /// Measurement metadata.
        metadata: BTreeMap<String, String>,
    },
}

/// The outcome of one task, for [`finish()`].
#[derive(Clone, Debug, PartialEq)]
pub struct TaskResult {
    /// The task.
    pub task: Task,
    /// The measurement (new, or the in-flight one updated).
    pub measurement: Measurement,
    /// The provider's metadata for the metric (`metricResults[].metadata`), recorded when the
    /// metric gets its first result; `None` when the provider could not be built.
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Evaluates a time expression of the condition language (`now() - duration("5m")`), the
/// evaluator a host installs for providers with `rollouts_plugin::install_time_evaluator`.
pub fn evaluate_time(expression: &str, now: Timestamp) -> Result<Timestamp, String> {
    rollouts_expr::evaluate_time(expression, now).map_err(|e| e.to_string())
}

// -------------------------------------------------------------------------------------------
// Small helpers.

/// `now` as the API server stores it: whole seconds.
pub fn whole_seconds(now: Timestamp) -> Timestamp {
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

fn time(now: Timestamp) -> Time {
    Time(whole_seconds(now))
}

/// Go's `IntOrString.IntValue()`: the number, or a string parsed as a decimal integer (0 when it
/// is not one).
pub fn int_value(v: Option<&IntOrString>) -> Option<i64> {
    v.map(|v| match v {
        IntOrString::Int(i) => i64::from(*i),
        IntOrString::String(s) => s.parse::<i64>().unwrap_or(0),
    })
}

/// Argo's `EffectiveCount`: `count` when set and not 0; else 1 without an interval, and
/// unbounded (`None`) with one.
pub fn effective_count(metric: &Metric) -> Option<i64> {
    match int_value(metric.count.as_ref()) {
        Some(c) if c != 0 => Some(c),
        _ if non_empty(&metric.interval).is_none() => Some(1),
        _ => None,
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = parse_go_duration(text).map_err(|e| e.to_string())?;
    Ok(Duration::from_nanos(d.as_nanos().max(0) as u64))
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

fn until(now: Timestamp, at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}

fn status_of(run: &AnalysisRun) -> AnalysisRunStatus {
    run.status.clone().unwrap_or_default()
}

fn result_of<'a>(status: &'a AnalysisRunStatus, name: &str) -> Option<&'a MetricResult> {
    status
        .metric_results
        .iter()
        .flatten()
        .find(|r| r.name == name)
}

fn result_mut<'a>(status: &'a mut AnalysisRunStatus, name: &str) -> Option<&'a mut MetricResult> {
    status
        .metric_results
        .iter_mut()
        .flatten()
        .find(|r| r.name == name)
}

fn last_measurement<'a>(status: &'a AnalysisRunStatus, name: &str) -> Option<&'a Measurement> {
    result_of(status, name)?.measurements.as_ref()?.last()
}

fn count(v: Option<i32>) -> i32 {
    v.unwrap_or(0)
}

/// Go's `omitempty` for counters: zero is absent.
fn omit_zero(v: i32) -> Option<i32> {
    (v != 0).then_some(v)
}

/// Whether a phase is final.
pub fn is_completed(p: &str) -> bool {
    crate::analysis::is_completed(p)
}

/// Argo's `IsWorse` over Successful < Running < Pending < Inconclusive < Error < Failed.
pub fn is_worse(current: &str, new: &str) -> bool {
    const ORDER: [&str; 6] = [
        phase::SUCCESSFUL,
        phase::RUNNING,
        phase::PENDING,
        phase::INCONCLUSIVE,
        phase::ERROR,
        phase::FAILED,
    ];
    let rank = |p: &str| ORDER.iter().position(|o| *o == p).unwrap_or(0);
    rank(new) > rank(current)
}

// -------------------------------------------------------------------------------------------
// Providers of a metric.

/// The registry name of the metric's provider: the JSON key of the first provider block set,
/// in Argo's order (prometheus, job, kayenta, web, datadog, wavefront, newRelic, cloudWatch,
/// graphite, influxdb, skywalking), else the name of its plugin.
pub fn provider_name(metric: &Metric) -> Option<String> {
    let p = &metric.provider;
    let builtin = [
        ("prometheus", p.prometheus.is_some()),
        ("job", p.job.is_some()),
        ("kayenta", p.kayenta.is_some()),
        ("web", p.web.is_some()),
        ("datadog", p.datadog.is_some()),
        ("wavefront", p.wavefront.is_some()),
        ("newRelic", p.new_relic.is_some()),
        ("cloudWatch", p.cloud_watch.is_some()),
        ("graphite", p.graphite.is_some()),
        ("influxdb", p.influxdb.is_some()),
        ("skywalking", p.sky_walking.is_some()),
    ];
    if let Some((name, _)) = builtin.iter().find(|(_, set)| *set) {
        return Some((*name).to_string());
    }
    p.plugin.as_ref()?.keys().next().cloned()
}

/// Argo's provider type of a metric, the `type` label of the `analysis_run_metric_*` metrics.
pub fn provider_type(metric: &Metric) -> &'static str {
    match provider_name(metric).as_deref() {
        Some("prometheus") => "Prometheus",
        Some("job") => "Job",
        Some("kayenta") => "Kayenta",
        Some("web") => "Web",
        Some("datadog") => "Datadog",
        Some("wavefront") => "Wavefront",
        Some("newRelic") => "NewRelic",
        Some("cloudWatch") => "CloudWatch",
        Some("graphite") => "Graphite",
        Some("influxdb") => "Influxdb",
        Some("skywalking") => "skywalking",
        Some(_) => "RPCPlugin",
        None if metric.provider.plugin.is_some() => "RPCPlugin",
        None => "Unknown Provider",
    }
}

// -------------------------------------------------------------------------------------------
// Arguments.

/// Go's `strconv.Quote` without the surrounding quotes, the escaping Argo applies to argument
/// values before substituting them into the JSON of a metric. Printable characters stay as they
/// are; `\a`, `\b`, `\f`, `\n`, `\r`, `\t`, `\v`, `\\`, `\"` are escaped, and the other ASCII
/// control characters become `\xNN` (which JSON does not accept, so Argo fails to decode such a
/// metric; so do we). Non-ASCII characters that Go does not consider printable are escaped as
/// `\uNNNN`, which decodes back to the same character.
pub fn go_quote_inner(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if !go_printable(c) => {
                let n = c as u32;
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// An approximation of Go's `unicode.IsPrint` for non-ASCII characters: control and format
/// characters, separators other than the ASCII space, private-use characters and
/// noncharacters are not printable.
fn go_printable(c: char) -> bool {
    let n = c as u32;
    if c.is_ascii() {
        return !c.is_ascii_control();
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let format = matches!(n,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2 | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff
        | 0xfff9..=0xfffb | 0x110bd | 0x110cd | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f);
    let private = matches!(n, 0xe000..=0xf8ff | 0xf0000..=0xffffd | 0x100000..=0x10fffd);
    let nonchar = (0xfdd0..=0xfdef).contains(&n) || n & 0xfffe == 0xfffe;
    !(format || private || nonchar)
}

/// Substitutes `{{...}}` tags in `template` (fasttemplate's scan, Argo's `resolve`): a tag whose
/// whitespace-trimmed text is a key of `values` becomes its value; any other tag becomes empty
/// and makes the result an error `failed to resolve {{<tag>}}` naming the last such tag.
fn substitute(template: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    let mut unresolved = None;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!(
                "cannot find end tag=\"}}}}\" in the template={template:?} starting from {:?}",
                after
            ));
        };
        let tag = &after[..end];
        match values.get(tag.trim()) {
            Some(v) => out.push_str(v),
            None => unresolved = Some(format!("failed to resolve {{{{{tag}}}}}")),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    match unresolved {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Resolves `{{args.<name>}}` in a metric as Argo does (`ResolveMetricArgs`): the whole metric
/// is encoded as JSON, every tag is replaced by the argument's value escaped like Go's
/// `strconv.Quote` (without the quotes), and the JSON is decoded again. Every argument must have
/// a value (`argument "x" was not supplied`); a tag that names no argument is an error
/// (`failed to resolve {{x}}`).
pub fn resolve_metric(metric: &Metric, args: &[Argument]) -> Result<Metric, String> {
    let mut values = BTreeMap::new();
    for arg in args {
        let Some(v) = &arg.value else {
            return Err(format!("argument \"{}\" was not supplied", arg.name));
        };
        values.insert(format!("args.{}", arg.name), go_quote_inner(v));
    }
    let text = serde_json::to_string(metric).map_err(|e| e.to_string())?;
    let resolved = substitute(&text, &values)?;
    serde_json::from_str(&resolved).map_err(|e| go_json_error(&resolved, &e))
}

/// A JSON decoding error in the words of Go's `encoding/json` for the case Argo users meet, an
/// argument value with a control character that Go's quoting turns into an escape JSON does not
/// have (`invalid character 'x' in string escape code`); other errors as `serde_json` words them.
fn go_json_error(text: &str, err: &serde_json::Error) -> String {
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'\\' {
            match bytes.next() {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' | b'u') => {}
                Some(c) => {
                    return format!(
                        "invalid character {:?} in string escape code",
                        char::from(c)
                    );
                }
                None => break,
            }
        }
    }
    err.to_string()
}

/// The arguments with secret and field-reference values replaced by a stand-in (Argo's
/// `getResolvedMetricsWithoutSecrets`).
fn args_without_secrets(args: &[Argument]) -> Vec<Argument> {
    args.iter()
        .map(|a| {
            let mut a = a.clone();
            if a.value_from
                .as_ref()
                .is_some_and(|f| f.secret_key_ref.is_some() || f.field_ref.is_some())
            {
                a.value_from = None;
                a.value = Some(PLACEHOLDER.to_string());
            }
            a
        })
        .collect()
}

/// Every metric of the run with its arguments resolved, secret values stood in for.
pub fn resolve_without_secrets(run: &AnalysisRun) -> Result<Vec<Metric>, String> {
    let args = args_without_secrets(run.spec.args.as_deref().unwrap_or_default());
    run.spec
        .metrics
        .iter()
        .map(|m| resolve_metric(m, &args))
        .collect()
}

/// Replaces every secret value in the measurement's message, value and metadata with
/// [`REDACTED`]. (Argo redacts messages; values and metadata, such as a resolved query, can
/// carry a secret as well.)
pub fn redact(measurement: &mut Measurement, secrets: &[String]) {
    let scrub = |s: &mut String| {
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            if s.contains(secret.as_str()) {
                *s = s.replace(secret.as_str(), REDACTED);
            }
        }
    };
    if let Some(m) = measurement.message.as_mut() {
        scrub(m);
    }
    if let Some(v) = measurement.value.as_mut() {
        scrub(v);
    }
    if let Some(md) = measurement.metadata.as_mut() {
        md.values_mut().for_each(scrub);
    }
}

/// [`redact`] for a map (the metric result's provider metadata).
pub fn redact_map(map: &mut BTreeMap<String, String>, secrets: &[String]) {
    for v in map.values_mut() {
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            if v.contains(secret.as_str()) {
                *v = v.replace(secret.as_str(), REDACTED);
            }
        }
    }
}

/// [`redact`] for any text (messages and log lines).
pub fn redact_text(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret.as_str(), REDACTED);
    }
    out
}

// -------------------------------------------------------------------------------------------
// Validation (Argo's `ValidateMetrics`, `GetDryRunMetrics`, `GetMeasurementRetentionMetrics`).

/// Argo's `ValidateMetric`.
pub fn validate_metric(metric: &Metric) -> Result<(), String> {
    let count = int_value(metric.count.as_ref()).unwrap_or(0);
    let failure_limit = int_value(metric.failure_limit.as_ref()).unwrap_or(0);
    let success_limit = int_value(metric.consecutive_success_limit.as_ref()).unwrap_or(0);
    let inconclusive_limit = int_value(metric.inconclusive_limit.as_ref()).unwrap_or(0);
    if success_limit < 0 {
        return Err("consecutiveSuccessLimit must be >= 0".into());
    }
    if failure_limit < -1 {
        return Err("failureLimit must be >= 0, or -1 to be disabled".into());
    }
    if success_limit == 0 && failure_limit == -1 {
        return Err("failureLimit and consecutiveSuccessLimit cannot both be disabled".into());
    }
    if inconclusive_limit < 0 {
        return Err("inconclusiveLimit must be >= 0".into());
    }
    if int_value(metric.consecutive_error_limit.as_ref()).is_some_and(|l| l < 0) {
        return Err("consecutiveErrorLimit must be >= 0".into());
    }
    if count > 0 {
        if failure_limit >= 0 {
            if count < failure_limit + success_limit {
                return Err(format!(
                    "count ({count}) must be >= failureLimit + consecutiveSuccessLimit ({failure_limit} + {success_limit}) if both >= 0"
                ));
            }
        } else if count < success_limit {
            return Err("count must be >= consecutiveSuccessLimit".into());
        }
        if count < inconclusive_limit {
            return Err("count must be >= inconclusiveLimit".into());
        }
    }
    if count > 1 && non_empty(&metric.interval).is_none() {
        return Err("interval must be specified when count > 1".into());
    }
    if let Some(interval) = non_empty(&metric.interval)
        && let Err(e) = parse_duration(interval)
    {
        return Err(format!("invalid interval string: {e}"));
    }
    if let Some(delay) = non_empty(&metric.initial_delay)
        && let Err(e) = parse_duration(delay)
    {
        return Err(format!("invalid startDelay string: {e}"));
    }
    let p = &metric.provider;
    let providers = [
        p.prometheus.is_some(),
        p.job.is_some(),
        p.web.is_some(),
        p.wavefront.is_some(),
        p.kayenta.is_some(),
        p.datadog.is_some(),
        p.new_relic.is_some(),
        p.cloud_watch.is_some(),
        p.graphite.is_some(),
        p.influxdb.is_some(),
        p.sky_walking.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count()
        + p.plugin.as_ref().map_or(0, BTreeMap::len);
    match providers {
        0 => Err("no provider specified".into()),
        1 => Ok(()),
        _ => Err("multiple providers specified".into()),
    }
}

/// Argo's `ValidateMetrics`: at least one metric, unique names, each metric valid.
pub fn validate_metrics(metrics: &[Metric]) -> Result<(), String> {
    if metrics.is_empty() {
        return Err("no metrics specified".into());
    }
    let mut names = BTreeSet::new();
    for (i, m) in metrics.iter().enumerate() {
        if !names.insert(m.name.as_str()) {
            return Err(format!("metrics[{i}]: duplicate name '{}'", m.name));
        }
        validate_metric(m).map_err(|e| format!("metrics[{i}]: {e}"))?;
    }
    Ok(())
}

/// Go's `regexp.MatchString`: an unanchored match; a pattern that does not compile matches
/// nothing.
fn matches(pattern: &str, name: &str) -> bool {
    regex::Regex::new(pattern).is_ok_and(|re| re.is_match(name))
}

/// The metrics in dry-run mode; a rule that matches no metric is an error.
pub fn dry_run_metrics(run: &AnalysisRun, metrics: &[Metric]) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for (i, rule) in run.spec.dry_run.iter().flatten().enumerate() {
        let mut matched = 0;
        for m in metrics
            .iter()
            .filter(|m| matches(&rule.metric_name, &m.name))
        {
            out.insert(m.name.clone());
            matched += 1;
        }
        if matched == 0 {
            return Err(format!("dryRun[{i}]: Rule didn't match any metric name(s)"));
        }
    }
    Ok(out)
}

/// Measurements to keep per metric; a rule that matches no metric is an error. The last rule
/// that matches a metric decides; a limit of 0 or less keeps the default.
pub fn retention_limits(
    run: &AnalysisRun,
    metrics: &[Metric],
) -> Result<BTreeMap<String, usize>, String> {
    let mut rules: BTreeMap<String, i32> = BTreeMap::new();
    for (i, rule) in run.spec.measurement_retention.iter().flatten().enumerate() {
        let mut matched = 0;
        for m in metrics
            .iter()
            .filter(|m| matches(&rule.metric_name, &m.name))
        {
            rules.insert(m.name.clone(), rule.limit);
            matched += 1;
        }
        if matched == 0 {
            return Err(format!(
                "measurementRetention[{i}]: Rule didn't match any metric name(s)"
            ));
        }
    }
    Ok(metrics
        .iter()
        .map(|m| {
            let limit = rules
                .get(&m.name)
                .filter(|l| **l > 0)
                .map_or(DEFAULT_MEASUREMENT_HISTORY_LIMIT, |l| *l as usize);
            (m.name.clone(), limit)
        })
        .collect())
}

// -------------------------------------------------------------------------------------------
// Planning.

/// Whether the run is terminating: `spec.terminate`, or a metric outside dry-run mode already
/// Failed, Errored or is Inconclusive (Argo's `IsTerminating`).
pub fn is_terminating(run: &AnalysisRun, status: &AnalysisRunStatus) -> bool {
    run.spec.terminate == Some(true)
        || status.metric_results.iter().flatten().any(|r| {
            r.dry_run != Some(true)
                && matches!(
                    r.phase.as_str(),
                    phase::FAILED | phase::ERROR | phase::INCONCLUSIVE
                )
        })
}

/// The TTL of a completed run: `Some(expires)` when one applies (Argo's
/// `isAnalysisRunTtlExceeded` compares whole elapsed seconds with `>`, so the run is deleted
/// once a full second past the TTL).
pub fn ttl_expiry(run: &AnalysisRun) -> Option<Timestamp> {
    let status = run.status.as_ref()?;
    if !is_completed(&status.phase) {
        return None;
    }
    let ttl = run.spec.ttl_strategy.as_ref()?;
    let completed = status.completed_at.as_ref()?.0;
    let seconds = match status.phase.as_str() {
        phase::SUCCESSFUL if ttl.seconds_after_success.is_some() => ttl.seconds_after_success,
        phase::FAILED if ttl.seconds_after_failure.is_some() => ttl.seconds_after_failure,
        _ => ttl.seconds_after_completion,
    }?;
    completed
        .checked_add(jiff::SignedDuration::from_secs(i64::from(seconds) + 1))
        .ok()
}

/// Plans one reconciliation of a run (see the module documentation).
pub fn plan(run: &AnalysisRun, now: Timestamp) -> RunPlan {
    let status = status_of(run);
    if is_completed(&status.phase) {
        return match ttl_expiry(run) {
            Some(at) if now >= at => RunPlan::Completed {
                delete: true,
                requeue_after: None,
            },
            Some(at) => RunPlan::Completed {
                delete: false,
                requeue_after: Some(until(now, at)),
            },
            None => RunPlan::Completed {
                delete: false,
                requeue_after: None,
            },
        };
    }
    let metrics = match resolve_without_secrets(run) {
        Ok(m) => m,
        Err(e) => {
            return RunPlan::Invalid(errored(
                run,
                &format!("Unable to resolve metric arguments: {e}"),
            ));
        }
    };
    let invalid =
        |e: String| RunPlan::Invalid(errored(run, &format!("Analysis spec invalid: {e}")));
    if let Err(e) = validate_metrics(&metrics) {
        return invalid(e);
    }
    let dry_run = match dry_run_metrics(run, &metrics) {
        Ok(d) => d,
        Err(e) => return invalid(e),
    };
    let retention = match retention_limits(run, &metrics) {
        Ok(r) => r,
        Err(e) => return invalid(e),
    };
    let terminating = is_terminating(run, &status);
    let tasks = tasks(&status, &metrics, terminating, now);
    RunPlan::Measure(Measure {
        metrics,
        tasks,
        dry_run,
        retention,
        terminating,
    })
}

/// The run ended in `Error` before measuring: phase, message and the completion Event (Argo
/// sets neither `startedAt` nor `completedAt` on this path).
pub fn errored(run: &AnalysisRun, message: &str) -> Outcome {
    let mut status = status_of(run);
    status.phase = phase::ERROR.to_string();
    status.message = Some(message.to_string());
    Outcome {
        status,
        events: vec![completion_event(phase::ERROR)],
        requeue_after: None,
        garbage: Vec::new(),
    }
}

fn completion_event(p: &str) -> Event {
    let reason = format!("AnalysisRun{p}");
    let message = format!("Analysis Completed. Result: {p}");
    if matches!(p, phase::ERROR | phase::FAILED) {
        Event::warning(reason, message)
    } else {
        Event::normal(reason, message)
    }
}

/// Argo's `generateMetricTasks`.
fn tasks(
    status: &AnalysisRunStatus,
    metrics: &[Metric],
    terminating: bool,
    now: Timestamp,
) -> Vec<Task> {
    let mut out = Vec::new();
    for (index, metric) in metrics.iter().enumerate() {
        let result = result_of(status, &metric.name);
        if result.is_some_and(|r| is_completed(&r.phase)) {
            continue;
        }
        let last = last_measurement(status, &metric.name);
        if let Some(last) = last
            && last.finished_at.is_none()
        {
            let later = last.resume_at.as_ref().is_some_and(|t| t.0 > now);
            if !terminating && later {
                continue;
            }
            let kind = if terminating {
                TaskKind::Terminate
            } else {
                TaskKind::Resume
            };
            out.push(Task { index, kind });
            continue;
        }
        if terminating {
            continue;
        }
        let Some(last) = last else {
            if let Some(delay) = non_empty(&metric.initial_delay) {
                let Some(started) = status.started_at.as_ref() else {
                    continue;
                };
                let Ok(delay) = parse_duration(delay) else {
                    continue;
                };
                if add(started.0, delay) > now {
                    continue;
                }
            }
            out.push(Task {
                index,
                kind: TaskKind::Run,
            });
            continue;
        };
        if let Some(c) = effective_count(metric)
            && i64::from(count(result.and_then(|r| r.count))) >= c
        {
            continue;
        }
        let Some(interval) = next_interval(metric, last) else {
            continue;
        };
        let finished = last.finished_at.as_ref().map_or(now, |t| t.0);
        if now > add(finished, interval) {
            out.push(Task {
                index,
                kind: TaskKind::Run,
            });
        }
    }
    out
}

/// The wait after `last` before the next measurement: 10 s after an error, else the interval
/// (10 s when unset; `None` when the interval does not parse).
fn next_interval(metric: &Metric, last: &Measurement) -> Option<Duration> {
    if last.phase == phase::ERROR {
        return Some(ERROR_RETRY_INTERVAL);
    }
    match non_empty(&metric.interval) {
        Some(i) => parse_duration(i).ok(),
        None => Some(ERROR_RETRY_INTERVAL),
    }
}

// -------------------------------------------------------------------------------------------
// Measurements.

/// Turns a provider's observation into the measurement to record. `base` is the in-flight
/// measurement for [`TaskKind::Resume`] and [`TaskKind::Terminate`]; a new measurement starts
/// `now`. A value is judged by the metric's `successCondition` and `failureCondition` with
/// Argo's decision table; an evaluation error makes an `Error` measurement without a value. A
/// terminated measurement that ends Successful or Inconclusive says `Metric Terminated`.
pub fn apply_observation(
    metric: &Metric,
    kind: TaskKind,
    base: Option<&Measurement>,
    observed: Observed,
    now: Timestamp,
) -> Measurement {
    let mut m = match (kind, base) {
        (TaskKind::Run, _) | (_, None) => Measurement {
            started_at: Some(time(now)),
            ..Measurement::default()
        },
        (_, Some(b)) => b.clone(),
    };
    let mut merge = |md: BTreeMap<String, String>| {
        if md.is_empty() {
            return;
        }
        m.metadata.get_or_insert_with(BTreeMap::new).extend(md);
    };
    let (new_phase, value, message) = match observed {
        Observed::Value {
            result,
            value,
            metadata,
        } => {
            merge(metadata);
            let outcome = rollouts_expr::evaluate_conditions_at(
                metric.success_condition.as_deref(),
                metric.failure_condition.as_deref(),
                &result,
                now,
            );
            match outcome {
                rollouts_expr::Outcome::Successful => (phase::SUCCESSFUL, Some(value), None),
                rollouts_expr::Outcome::Failed => (phase::FAILED, Some(value), None),
                rollouts_expr::Outcome::Inconclusive => (phase::INCONCLUSIVE, Some(value), None),
                rollouts_expr::Outcome::Error(e) => (phase::ERROR, None, Some(e)),
            }
        }
        Observed::Decided {
            verdict,
            value,
            message,
            metadata,
        } => {
            merge(metadata);
            let p = match verdict {
                Verdict::Successful => phase::SUCCESSFUL,
                Verdict::Failed => phase::FAILED,
                Verdict::Inconclusive => phase::INCONCLUSIVE,
            };
            (p, value, message)
        }
        Observed::InProgress {
            resume_at,
            metadata,
        } => {
            merge(metadata);
            m.resume_at = resume_at.map(time);
            (phase::RUNNING, None, None)
        }
        Observed::Error { message, metadata } => {
            merge(metadata);
            (phase::ERROR, None, Some(message))
        }
    };
    m.phase = new_phase.to_string();
    if value.is_some() {
        m.value = value;
    }
    if message.is_some() {
        m.message = message;
    }
    if kind == TaskKind::Terminate && matches!(new_phase, phase::SUCCESSFUL | phase::INCONCLUSIVE) {
        m.message = Some(METRIC_TERMINATED.to_string());
    }
    if is_completed(new_phase) {
        m.resume_at = None;
        if m.finished_at.is_none() {
            m.finished_at = Some(time(now));
        }
    }
    m
}

/// An `Error` measurement for a metric whose provider cannot be built (not compiled in, a bad
/// configuration): the in-flight measurement when there is one, else a new one.
pub fn provider_error(base: Option<&Measurement>, message: &str, now: Timestamp) -> Measurement {
    let mut m = base.cloned().unwrap_or_else(|| Measurement {
        started_at: Some(time(now)),
        ..Measurement::default()
    });
    m.phase = phase::ERROR.to_string();
    m.message = Some(message.to_string());
    m.resume_at = None;
    if m.finished_at.is_none() {
        m.finished_at = Some(time(now));
    }
    m
}

// -------------------------------------------------------------------------------------------
// Assessment.

/// Records the results of this reconciliation's tasks and assesses the run (Argo's
/// `runMeasurements` bookkeeping, `assessRunStatus`, `garbageCollectMeasurements` and
/// `calculateNextReconcileTime`).
pub fn finish(
    run: &AnalysisRun,
    measure: &Measure,
    mut results: Vec<TaskResult>,
    now: Timestamp,
) -> Outcome {
    let mut status = status_of(run);
    results.sort_by_key(|r| r.task.index);
    for r in results {
        let Some(metric) = measure.metrics.get(r.task.index) else {
            continue;
        };
        record(&mut status, metric, measure, r);
    }
    let mut events = Vec::new();
    let (new_phase, message) = assess(run, &mut status, measure, now, &mut events);
    if new_phase != status.phase {
        status.phase = new_phase.to_string();
        status.message = Some(message).filter(|m| !m.is_empty());
        if is_completed(new_phase) {
            events.push(completion_event(new_phase));
            if status.completed_at.is_none() {
                status.completed_at = Some(time(now));
            }
        }
    }
    let garbage = status
        .metric_results
        .iter()
        .flatten()
        .filter_map(|r| {
            let limit = measure
                .retention
                .get(&r.name)
                .copied()
                .unwrap_or(DEFAULT_MEASUREMENT_HISTORY_LIMIT);
            let n = r.measurements.as_ref().map_or(0, Vec::len);
            (n > limit && measure.metrics.iter().any(|m| m.name == r.name))
                .then(|| (r.name.clone(), limit))
        })
        .collect();
    let mut requeue_after = next_reconcile(&status, &measure.metrics, now);
    if is_completed(&status.phase) {
        let mut done = run.clone();
        done.status = Some(status.clone());
        requeue_after = ttl_expiry(&done).map(|at| until(now, at));
    }
    Outcome {
        status,
        events,
        requeue_after,
        garbage,
    }
}

/// Keeps the last `limit` measurements of a metric.
pub fn trim_measurements(status: &mut AnalysisRunStatus, metric: &str, limit: usize) {
    if let Some(ms) = result_mut(status, metric).and_then(|r| r.measurements.as_mut())
        && ms.len() > limit
    {
        ms.drain(..ms.len() - limit);
    }
}

fn record(status: &mut AnalysisRunStatus, metric: &Metric, measure: &Measure, r: TaskResult) {
    if result_of(status, &metric.name).is_none() {
        status
            .metric_results
            .get_or_insert_with(Vec::new)
            .push(MetricResult {
                name: metric.name.clone(),
                phase: phase::RUNNING.to_string(),
                dry_run: measure.dry_run.contains(&metric.name).then_some(true),
                metadata: r.metadata.filter(|m| !m.is_empty()),
                ..MetricResult::default()
            });
    }
    let Some(result) = result_mut(status, &metric.name) else {
        return;
    };
    let m = r.measurement;
    let bump = |v: &mut Option<i32>| *v = omit_zero(count(*v).saturating_add(1));
    match m.phase.as_str() {
        phase::SUCCESSFUL => {
            bump(&mut result.successful);
            bump(&mut result.count);
            result.consecutive_error = None;
            bump(&mut result.consecutive_success);
        }
        phase::FAILED => {
            bump(&mut result.failed);
            bump(&mut result.count);
            result.consecutive_error = None;
            result.consecutive_success = None;
        }
        phase::INCONCLUSIVE => {
            bump(&mut result.inconclusive);
            bump(&mut result.count);
            result.consecutive_error = None;
            result.consecutive_success = None;
        }
        phase::ERROR => {
            bump(&mut result.error);
            bump(&mut result.consecutive_error);
            result.consecutive_success = None;
        }
        _ => {}
    }
    let list = result.measurements.get_or_insert_with(Vec::new);
    match (r.task.kind, list.last_mut()) {
        (TaskKind::Run, _) | (_, None) => list.push(m),
        (_, Some(last)) => *last = m,
    }
}

/// Argo's `assessRunStatus`: updates each metric's phase (recording `Metric<Phase>` Events),
/// the summaries and `startedAt`; returns the run's phase and message.
fn assess(
    run: &AnalysisRun,
    status: &mut AnalysisRunStatus,
    measure: &Measure,
    now: Timestamp,
    events: &mut Vec<Event>,
) -> (&'static str, String) {
    let terminating = is_terminating(run, status);
    if status.started_at.is_none() {
        status.started_at = Some(time(now));
    }
    let mut worst: Option<&'static str> = None;
    let mut worst_message = if run.spec.terminate == Some(true) {
        RUN_TERMINATED.to_string()
    } else {
        String::new()
    };
    let mut everything_completed = true;
    let mut summary = [0i32; 5];
    let mut dry_summary = [0i32; 5];
    for metric in &measure.metrics {
        let dry = measure.dry_run.contains(&metric.name);
        if dry {
            dry_summary[0] += 1;
        } else {
            summary[0] += 1;
        }
        let Some(result) = result_mut(status, &metric.name) else {
            everything_completed = false;
            continue;
        };
        let metric_phase = assess_metric(metric, result, terminating);
        if result.phase != metric_phase {
            if is_completed(metric_phase) {
                let reason = format!("Metric{metric_phase}");
                let message = format!("Metric '{}' Completed. Result: {metric_phase}", metric.name);
                events.push(if matches!(metric_phase, phase::ERROR | phase::FAILED) {
                    Event::warning(reason, message)
                } else {
                    Event::normal(reason, message)
                });
            }
            if let Some(last) = result.measurements.as_ref().and_then(|m| m.last()) {
                result.message = last.message.clone().filter(|m| !m.is_empty());
            }
            result.phase = metric_phase.to_string();
        }
        if !is_completed(metric_phase) {
            everything_completed = false;
            continue;
        }
        let (limit_phase, limit_message) = limit_breach(metric, result);
        let slot = match limit_phase {
            Some(phase::ERROR) => 4,
            Some(phase::FAILED) => 2,
            Some(phase::INCONCLUSIVE) => 3,
            _ => 1,
        };
        if !dry {
            if worst.is_none_or(|w| is_worse(w, metric_phase)) {
                worst = Some(metric_phase);
                if let Some(why) = &limit_message {
                    worst_message = format!(
                        "Metric \"{}\" assessed {metric_phase} due to {why}",
                        metric.name
                    );
                    if let Some(m) = result.message.as_deref().filter(|m| !m.is_empty()) {
                        worst_message.push_str(&format!(": \"Error Message: {m}\""));
                    }
                }
            }
            summary[slot] += 1;
        } else {
            if worst.is_none() {
                worst = Some(phase::SUCCESSFUL);
            }
            if let Some(why) = &limit_message {
                result.message = Some(format!("Metric assessed {metric_phase} due to {why}"));
            }
            dry_summary[slot] += 1;
        }
    }
    let worst_message = worst_message.trim().to_string();
    let to_summary = |s: [i32; 5]| RunSummary {
        count: omit_zero(s[0]),
        successful: omit_zero(s[1]),
        failed: omit_zero(s[2]),
        inconclusive: omit_zero(s[3]),
        error: omit_zero(s[4]),
    };
    status.run_summary = Some(to_summary(summary));
    status.dry_run_summary = Some(to_summary(dry_summary));
    if terminating {
        return (worst.unwrap_or(phase::SUCCESSFUL), worst_message);
    }
    match worst {
        Some(w) if everything_completed => (w, worst_message),
        _ => (phase::RUNNING, String::new()),
    }
}

/// Argo's `assessMetricStatus`.
fn assess_metric(metric: &Metric, result: &MetricResult, terminating: bool) -> &'static str {
    if is_completed(&result.phase) {
        return static_phase(&result.phase);
    }
    let Some(last) = result.measurements.as_ref().and_then(|m| m.last()) else {
        return if terminating {
            phase::SUCCESSFUL
        } else {
            phase::PENDING
        };
    };
    if !is_completed(&last.phase) {
        return phase::RUNNING;
    }
    if let (Some(p), _) = limit_breach(metric, result) {
        return p;
    }
    let success_limit = int_value(metric.consecutive_success_limit.as_ref()).unwrap_or(0);
    if success_limit > 0 && i64::from(count(result.consecutive_success)) >= success_limit {
        return phase::SUCCESSFUL;
    }
    if let Some(c) = effective_count(metric)
        && i64::from(count(result.count)) >= c
    {
        let failure_limit = int_value(metric.failure_limit.as_ref());
        let failure_applicable = failure_limit.is_none_or(|l| l >= 0);
        let success_applicable = success_limit > 0;
        return match (failure_applicable, success_applicable) {
            (true, true) => phase::INCONCLUSIVE,
            (false, true) => phase::FAILED,
            _ => phase::SUCCESSFUL,
        };
    }
    if terminating {
        phase::SUCCESSFUL
    } else {
        phase::RUNNING
    }
}

fn static_phase(p: &str) -> &'static str {
    match p {
        phase::SUCCESSFUL => phase::SUCCESSFUL,
        phase::FAILED => phase::FAILED,
        phase::ERROR => phase::ERROR,
        phase::INCONCLUSIVE => phase::INCONCLUSIVE,
        phase::RUNNING => phase::RUNNING,
        _ => phase::PENDING,
    }
}

/// Argo's `assessMetricFailureInconclusiveOrError`: the limit a metric broke, and why. Later
/// checks win: failures, then inconclusive results, then consecutive errors. Every comparison is
/// a strict `>`: `failureLimit: 1` tolerates one failed measurement.
pub fn limit_breach(
    metric: &Metric,
    result: &MetricResult,
) -> (Option<&'static str>, Option<String>) {
    let mut out = (None, None);
    let failure_limit = int_value(metric.failure_limit.as_ref()).unwrap_or(0);
    let failed = i64::from(count(result.failed));
    if failure_limit >= 0 && failed > failure_limit {
        out = (
            Some(phase::FAILED),
            Some(format!(
                "failed ({failed}) > failureLimit ({failure_limit})"
            )),
        );
    }
    let inconclusive_limit = int_value(metric.inconclusive_limit.as_ref()).unwrap_or(0);
    let inconclusive = i64::from(count(result.inconclusive));
    if inconclusive > inconclusive_limit {
        out = (
            Some(phase::INCONCLUSIVE),
            Some(format!(
                "inconclusive ({inconclusive}) > inconclusiveLimit ({inconclusive_limit})"
            )),
        );
    }
    let error_limit = int_value(metric.consecutive_error_limit.as_ref())
        .unwrap_or(DEFAULT_CONSECUTIVE_ERROR_LIMIT);
    let errors = i64::from(count(result.consecutive_error));
    if errors > error_limit {
        out = (
            Some(phase::ERROR),
            Some(format!(
                "consecutiveErrors ({errors}) > consecutiveErrorLimit ({error_limit})"
            )),
        );
    }
    out
}

/// Argo's `calculateNextReconcileTime`, as a wait from `now`.
fn next_reconcile(
    status: &AnalysisRunStatus,
    metrics: &[Metric],
    now: Timestamp,
) -> Option<Duration> {
    let mut earliest: Option<Timestamp> = None;
    let mut consider = |t: Timestamp| {
        if earliest.is_none_or(|e| t < e) {
            earliest = Some(t);
        }
    };
    for metric in metrics {
        let result = result_of(status, &metric.name);
        if result.is_some_and(|r| is_completed(&r.phase)) {
            continue;
        }
        let Some(last) = last_measurement(status, &metric.name) else {
            if let Some(delay) = non_empty(&metric.initial_delay)
                && let Ok(delay) = parse_duration(delay)
            {
                let start = status.started_at.as_ref().map_or(now, |t| t.0);
                consider(add(start, delay));
            }
            continue;
        };
        let Some(finished) = last.finished_at.as_ref() else {
            if let Some(at) = &last.resume_at {
                consider(at.0);
            }
            continue;
        };
        if let Some(c) = effective_count(metric)
            && i64::from(count(result.and_then(|r| r.count))) >= c
        {
            continue;
        }
        let interval = if last.phase == phase::ERROR {
            Some(ERROR_RETRY_INTERVAL)
        } else {
            non_empty(&metric.interval).and_then(|i| parse_duration(i).ok())
        };
        if let Some(interval) = interval {
            consider(add(finished.0, interval));
        }
    }
    earliest.map(|at| until(now, at))
}

// -------------------------------------------------------------------------------------------
// Field references.

/// The value of a `valueFrom.fieldRef.fieldPath` in an object (as JSON): `metadata.*` paths by
/// the downward API's rules (`metadata.name`, `metadata.namespace`, `metadata.uid`,
/// `metadata.labels['k']`, `metadata.annotations['k']`, and the whole `metadata.labels` or
/// `metadata.annotations` as `k="v"` lines), any other path as a dotted and indexed path
/// (`spec.template.spec.containers[0].image`) that must end in a primitive, with Argo's
/// messages.
pub fn field_value(object: &serde_json::Value, path: &str) -> Result<String, String> {
    use serde_json::Value;
    if path.starts_with("metadata") {
        let meta = &object["metadata"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let map = |field: &str| -> String {
            let mut lines: Vec<String> = meta[field]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}=\"{}\"", go_quote_inner(v.as_str().unwrap_or_default())))
                .collect();
            lines.sort();
            lines.join("\n")
        };
        if let Some(rest) = path.strip_suffix("']") {
            for field in ["annotations", "labels"] {
                if let Some(key) = rest.strip_prefix(&format!("metadata.{field}['")) {
                    return Ok(text(&meta[field][key]));
                }
            }
        }
        return match path {
            "metadata.name" | "metadata.namespace" | "metadata.uid" => {
                Ok(text(&meta[&path["metadata.".len()..]]))
            }
            "metadata.labels" => Ok(map("labels")),
            "metadata.annotations" => Ok(map("annotations")),
            _ => Err(format!("unsupported fieldPath: {path}")),
        };
    }
    let mut current = object;
    for section in path.split(['.', '[', ']']).filter(|s| !s.is_empty()) {
        current = match current {
            Value::Array(items) => {
                let i: usize = section
                    .parse()
                    .map_err(|_| format!("invalid index '{section}'"))?;
                items
                    .get(i)
                    .ok_or_else(|| format!("index {i} out of range"))?
            }
            Value::Object(map) => map.get(section).unwrap_or(&Value::Null),
            _ => return Err(format!("invalid path {path} in rollout")),
        };
    }
    match current {
        Value::Null => Err(format!("invalid path {path} in rollout")),
        Value::Array(_) | Value::Object(_) => Err(format!(
            "path {path} in rollout must terminate in a primitive value"
        )),
        Value::String(s) => Ok(s.clone()),
        other => Ok(other.to_string()),
    }
}
