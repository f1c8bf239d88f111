//! The condition language of AnalysisTemplate `successCondition` / `failureCondition` and of
//! Prometheus `rangeQuery.start` / `end`, evaluated as Argo Rollouts evaluates them with Go
//! expr-lang/expr v1.17.
//!
//! Source text is parsed here with Go expr's grammar, precedence and syntax error messages,
//! checked for unknown names, and lowered to a canonical program for the `expr-lang` crate,
//! which evaluates it with its builtins plus Argo's functions. See `docs/conditions.md` for the
//! language, Argo's semantics and every known deviation from Go.
//!
//! ```
//! use rollouts_expr::{Condition, Outcome, ResultValue, evaluate_conditions};
//!
//! let c = Condition::compile("len(result) > 0 && result[0] < 5").unwrap();
//! assert!(c.evaluate(&ResultValue::Floats(vec![3.0])).unwrap());
//! assert!(!c.evaluate(&ResultValue::Floats(vec![])).unwrap());
//!
//! let result = ResultValue::from(serde_json::json!({"ok": true}));
//! assert_eq!(evaluate_conditions(Some("result.ok"), None, &result), Outcome::Successful);
//! ```

mod check;
mod condition;
mod env;
mod error;
mod lexer;
mod lower;
mod outcome;
mod parser;
mod program;
mod time;
mod value;

pub use condition::Condition;
pub use error::ExprError;
pub use outcome::{Outcome, condition_error_message, evaluate_conditions, evaluate_conditions_at};
pub use time::{TimeExpr, evaluate_time};
pub use value::ResultValue;
