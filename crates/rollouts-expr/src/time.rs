//! Time expressions of Prometheus `rangeQuery.start` / `rangeQuery.end` (`now() - duration("5m")`).
//! The environment has `isNaN` and `isInf` and the expr builtins; `now()` is the time the caller
//! passes in, never read from a clock.

use expr::{Program, Value};

use crate::env::context;
use crate::error::ExprError;
use crate::lower::TIME_NAMES;
use crate::program::{compile, run};
use crate::value::go_type_name;

/// A compiled time expression.
#[derive(Debug, Clone)]
pub struct TimeExpr {
    source: String,
    program: Program,
}

impl TimeExpr {
    /// Compiles a time expression.
    pub fn compile(source: &str) -> Result<Self, ExprError> {
        Ok(Self {
            source: source.to_string(),
            program: compile(source, TIME_NAMES)?.1,
        })
    }

    /// The text the expression was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression with `now()` returning `now`; it must produce a time.
    pub fn evaluate(&self, now: jiff::Timestamp) -> Result<jiff::Timestamp, ExprError> {
        let ctx = context(None, Some(now));
        match run(&self.program, &ctx)? {
            Value::DateTime(t) => {
                let text = Value::DateTime(t).to_string();
                text.parse::<jiff::Timestamp>()
                    .map_err(|e| ExprError::Eval(format!("time out of range: {text}: {e}")))
            }
            other => Err(ExprError::NotTime(go_type_name(&other))),
        }
    }
}

/// Compiles and evaluates a time expression in one step.
pub fn evaluate_time(source: &str, now: jiff::Timestamp) -> Result<jiff::Timestamp, ExprError> {
    TimeExpr::compile(source)?.evaluate(now)
}
