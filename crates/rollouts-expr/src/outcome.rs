//! Argo's decision table: from `successCondition`, `failureCondition` and a result to the phase
//! of the measurement.

use std::fmt;

use crate::condition::Condition;
use crate::error::ExprError;
use crate::value::ResultValue;

/// The phase of a measurement decided by its conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Successful,
    Failed,
    Inconclusive,
    /// A condition could not be evaluated; the message is Argo's.
    Error(String),
}

impl Outcome {
    /// Argo's phase name (`Successful`, `Failed`, `Inconclusive`, `Error`).
    pub fn phase(&self) -> &'static str {
        match self {
            Outcome::Successful => "Successful",
            Outcome::Failed => "Failed",
            Outcome::Inconclusive => "Inconclusive",
            Outcome::Error(_) => "Error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Error(m) => write!(f, "Error: {m}"),
            other => f.write_str(other.phase()),
        }
    }
}

/// Argo's message for a condition that failed to evaluate: the error is replaced when the result
/// is nil or an empty list.
pub fn condition_error_message(
    kind: &str,
    source: &str,
    err: &ExprError,
    result: &ResultValue,
) -> String {
    if result.is_nil_or_empty() {
        format!(
            "could not evaluate {kind} \"{source}\": metric result is nil or empty: no data returned from the metric provider"
        )
    } else {
        format!("could not evaluate {kind} \"{source}\": {err}")
    }
}

fn eval(
    kind: &str,
    source: &str,
    result: &ResultValue,
    now: Option<jiff::Timestamp>,
) -> Result<bool, String> {
    let evaluated = Condition::compile(source).and_then(|c| match now {
        Some(now) => c.evaluate_at(result, now),
        None => c.evaluate(result),
    });
    evaluated.map_err(|e| condition_error_message(kind, source, &e, result))
}

/// Decides a measurement as Argo does. An empty string counts as "not set". The success condition
/// is evaluated first and its error stops evaluation. `now()` in a condition is an error.
pub fn evaluate_conditions(
    success: Option<&str>,
    failure: Option<&str>,
    result: &ResultValue,
) -> Outcome {
    decide(success, failure, result, None)
}

/// [`evaluate_conditions`] with `now()` bound to `now`.
pub fn evaluate_conditions_at(
    success: Option<&str>,
    failure: Option<&str>,
    result: &ResultValue,
    now: jiff::Timestamp,
) -> Outcome {
    decide(success, failure, result, Some(now))
}

fn decide(
    success: Option<&str>,
    failure: Option<&str>,
    result: &ResultValue,
    now: Option<jiff::Timestamp>,
) -> Outcome {
    let success = success.filter(|s| !s.is_empty());
    let failure = failure.filter(|s| !s.is_empty());
    let succeeded = match success {
        Some(s) => match eval("successCondition", s, result, now) {
            Ok(b) => b,
            Err(m) => return Outcome::Error(m),
        },
        None => false,
    };
    let failed = match failure {
        Some(f) => match eval("failureCondition", f, result, now) {
            Ok(b) => b,
            Err(m) => return Outcome::Error(m),
        },
        None => false,
    };
    match (success.is_some(), failure.is_some()) {
        (false, false) => Outcome::Successful,
        (true, false) if succeeded => Outcome::Successful,
        (true, false) => Outcome::Failed,
        (false, true) if failed => Outcome::Failed,
        (false, true) => Outcome::Successful,
        (true, true) if failed => Outcome::Failed,
        (true, true) if succeeded => Outcome::Successful,
        (true, true) => Outcome::Inconclusive,
    }
}
