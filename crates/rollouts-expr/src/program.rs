//! Compiling source text to an evaluator program (parse with Go's grammar, check names, lower,
//! hand to `expr-lang`) and running it, with panics of the evaluator caught.

use std::panic::{AssertUnwindSafe, catch_unwind};

use expr::{Context, Program, Value};

use crate::env::{ENV, one_line, regex_message};
use crate::error::ExprError;
use crate::lower::{Names, lower};
use crate::parser::{Node, parse};

/// Runs `f`, turning a panic into `ExprError::Internal`.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, ExprError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string());
        ExprError::Internal(msg.lines().next().unwrap_or_default().to_string())
    })
}

/// Compiles `source` for an environment that knows `names`.
pub(crate) fn compile(source: &str, names: Names) -> Result<(Node, Program), ExprError> {
    let node = parse(source).map_err(ExprError::Compile)?;
    if names.variables.is_empty() {
        // No `result`: the types are known now (conditions are checked against each result).
        crate::check::check(&node, None).map_err(ExprError::Compile)?;
    }
    let lowered = lower(&node, names).map_err(ExprError::Compile)?;
    // Go compiles literal patterns when the expression is compiled.
    for pattern in &lowered.regexes {
        check_regex(pattern)?;
    }
    match guarded(|| expr::compile(&lowered.program))? {
        Ok(program) => Ok((node, program)),
        // Our printer produced something the crate does not parse: report it, do not guess.
        Err(e) => Err(ExprError::Internal(format!(
            "cannot compile the lowered program: {}",
            one_line(&e)
        ))),
    }
}

fn check_regex(pattern: &str) -> Result<(), ExprError> {
    let probe = Node::Binary(
        "matches".into(),
        Box::new(Node::Str(String::new())),
        Box::new(Node::Str(pattern.to_string())),
    );
    let lowered = lower(&probe, crate::lower::TIME_NAMES).map_err(ExprError::Compile)?;
    match guarded(|| ENV.eval(&lowered.program, &Context::default()))? {
        Ok(_) => Ok(()),
        Err(expr::Error::RegexError(e)) => Err(ExprError::Compile(regex_message(&e.to_string()))),
        Err(e) => Err(ExprError::Compile(one_line(&e))),
    }
}

/// Runs a compiled program.
pub(crate) fn run(program: &Program, ctx: &Context) -> Result<Value, ExprError> {
    match guarded(|| ENV.run(program, ctx))? {
        Ok(v) => Ok(v),
        Err(e) => Err(ExprError::Eval(one_line(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_of_the_evaluator_becomes_an_internal_error() {
        // The expr-lang crate panics (`unreachable!`) on a map literal holding a list; our lowering
        // never prints one, but the guard must hold if a panic is ever reached.
        let out = guarded(|| expr::compile("{\"a\": [1, 2]}"));
        assert!(
            matches!(&out, Err(ExprError::Internal(m)) if m.contains("Unexpected rule")),
            "{out:?}"
        );
        // The same literal through our front end evaluates.
        let c = crate::Condition::compile("{\"a\": [1, 2]}.a[1] == 2").expect("compiles");
        assert_eq!(c.evaluate(&crate::ResultValue::Nil), Ok(true));
    }

    #[test]
    fn panics_with_a_string_payload_keep_their_first_line() {
        let out: Result<(), ExprError> = guarded(|| panic!("{}", String::from("boom\nmore")));
        assert_eq!(out, Err(ExprError::Internal("boom".into())));
    }
}
