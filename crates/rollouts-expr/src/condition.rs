//! `Condition`: a compiled `successCondition` / `failureCondition`, evaluated against a metric
//! result in Argo's environment.

use expr::{Program, Value};

use crate::check::check;
use crate::env::context;
use crate::error::ExprError;
use crate::lower::CONDITION_NAMES;
use crate::parser::Node;
use crate::program::{compile, run};
use crate::value::{ResultValue, go_type_name};

/// A compiled condition. Compile once (this validates the text), evaluate many times.
#[derive(Debug, Clone)]
pub struct Condition {
    source: String,
    node: Node,
    program: Program,
}

impl Condition {
    /// Compiles a condition; a syntax error, an unknown name or an invalid literal regex is an
    /// error here, as Go expr reports them when Argo compiles the condition.
    pub fn compile(source: &str) -> Result<Self, ExprError> {
        let (node, program) = compile(source, CONDITION_NAMES)?;
        Ok(Self {
            source: source.to_string(),
            node,
            program,
        })
    }

    /// The text the condition was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the condition with `result` bound to the metric result. `now()` is an error
    /// (the library has no clock): use [`Condition::evaluate_at`] to give the time.
    pub fn evaluate(&self, result: &ResultValue) -> Result<bool, ExprError> {
        self.eval(result, None)
    }

    /// Evaluates the condition; `now()` returns `now`.
    pub fn evaluate_at(
        &self,
        result: &ResultValue,
        now: jiff::Timestamp,
    ) -> Result<bool, ExprError> {
        self.eval(result, Some(now))
    }

    fn eval(&self, result: &ResultValue, now: Option<jiff::Timestamp>) -> Result<bool, ExprError> {
        // Go checks the expression against the result's type before running it.
        check(&self.node, Some(result)).map_err(ExprError::Compile)?;
        let input = result.to_expr();
        let ctx = context(Some(input.clone()), now);
        match run(&self.program, &ctx)? {
            Value::Bool(b) => Ok(b),
            // Argo prints Go's dynamic type. A bare `result` that is a Prometheus vector is a
            // `[]float64` there; everything the evaluator builds is an `[]interface {}`.
            out @ Value::Array(_) if out == input && matches!(result, ResultValue::Floats(_)) => {
                Err(ExprError::NotBool("[]float64"))
            }
            out if out == input && matches!(result, ResultValue::Int(_)) => {
                Err(ExprError::NotBool("int64"))
            }
            out => Err(ExprError::NotBool(go_type_name(&out))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_expressions_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync + Clone>() {}
        shareable::<Condition>();
        shareable::<crate::TimeExpr>();
        let c = Condition::compile("result > 1").expect("compiles");
        let handle = std::thread::spawn(move || c.evaluate(&ResultValue::Float(2.0)));
        assert_eq!(handle.join().expect("thread"), Ok(true));
    }
}
