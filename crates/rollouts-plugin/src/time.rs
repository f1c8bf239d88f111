//! Time expressions of providers, evaluated by the host process.
//!
//! A Prometheus `rangeQuery` gives its `start` and `end` as expressions of the condition language
//! (`now() - duration("5m")`). Providers depend only on this crate and `rollouts-api`, so they do
//! not evaluate the language themselves: the binary that hosts them installs an evaluator once at
//! start-up, the way it installs a TLS crypto provider, and providers call [`evaluate_time`].
//!
//! ```
//! use jiff::Timestamp;
//!
//! fn evaluate(text: &str, now: Timestamp) -> Result<Timestamp, String> {
//!     // The controller passes `rollouts_expr::evaluate_time` here.
//!     if text == "now()" { Ok(now) } else { Err(format!("cannot evaluate {text}")) }
//! }
//!
//! let _ = rollouts_plugin::install_time_evaluator(evaluate);
//! let now = Timestamp::from_second(1_700_000_000).unwrap();
//! assert_eq!(rollouts_plugin::evaluate_time("now()", now), Ok(now));
//! ```

use std::sync::OnceLock;

use jiff::Timestamp;

/// Evaluates a time expression with `now()` returning the given instant; the error is the message
/// a measurement shows.
pub type TimeEvaluator = fn(&str, Timestamp) -> Result<Timestamp, String>;

static EVALUATOR: OnceLock<TimeEvaluator> = OnceLock::new();

/// Installs the process-wide time evaluator. The first installation wins; a later one returns
/// its evaluator back as `Err`, like `rustls`' `install_default`.
pub fn install_time_evaluator(evaluator: TimeEvaluator) -> Result<(), TimeEvaluator> {
    EVALUATOR.set(evaluator)
}

/// Evaluates `expression` with the installed evaluator; without one, an error that says the
/// binary did not install it.
pub fn evaluate_time(expression: &str, now: Timestamp) -> Result<Timestamp, String> {
    match EVALUATOR.get() {
        Some(evaluate) => evaluate(expression, now),
        None => Err(
            "time expressions are not available: this binary did not install an evaluator \
             (rollouts_plugin::install_time_evaluator)"
                .to_string(),
        ),
    }
}
