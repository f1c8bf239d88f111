//! The error type of the crate: every failure to compile or evaluate an expression is a value
//! with a one-line message, never a panic.

/// Why an expression could not be compiled or evaluated. `Display` is the one-line message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// The expression does not compile (syntax, unknown name, invalid literal or regex).
    #[error("{0}")]
    Compile(String),
    /// Evaluation failed (type mismatch, index out of range, a function's error, ...).
    #[error("{0}")]
    Eval(String),
    /// A condition produced something other than a boolean; holds Go's name of its type.
    #[error("expected bool, but got {0}")]
    NotBool(&'static str),
    /// A time expression produced something other than a time; holds Go's name of its type.
    #[error("expected time.Time, but got {0}")]
    NotTime(&'static str),
    /// The underlying evaluator panicked; the panic was caught.
    #[error("internal error in the expression evaluator: {0}")]
    Internal(String),
}
