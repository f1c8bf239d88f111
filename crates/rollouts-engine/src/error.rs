//! Errors of the engine's fallible helpers. [`crate::plan()`] itself never fails: problems with a
//! Rollout become conditions and events in the plan.

use crate::duration::DurationError;

/// Errors of `rollouts-engine`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A referenced (Cluster)AnalysisTemplate does not exist.
    #[error("{kind}.argoproj.io \"{name}\" not found")]
    TemplateNotFound {
        /// `analysistemplate` or `clusteranalysistemplate`.
        kind: &'static str,
        /// Name of the template.
        name: String,
    },
    /// Templates reference each other more deeply than allowed (a cycle).
    #[error("analysis templates nest more than {0} levels deep")]
    TemplateNesting(usize),
    /// Two metrics of the merged templates share a name.
    #[error("two metrics have the same name '{0}'")]
    DuplicateMetric(String),
    /// Two templates give one argument different values.
    #[error(
        "Argument `{name}` specified multiple times with different values: '{first}', '{second}'"
    )]
    ConflictingArgument {
        /// Argument name.
        name: String,
        /// First value.
        first: String,
        /// Second value.
        second: String,
    },
    /// An argument has neither a value nor a source.
    #[error("args.{0} was not resolved")]
    UnresolvedArgument(String),
    /// Two dry-run rules name the same metric.
    #[error("two Dry-Run metric rules have the same name '{0}'")]
    DuplicateDryRun(String),
    /// Two measurement-retention rules name the same metric.
    #[error("two Measurement Retention metric rules have the same name '{0}'")]
    DuplicateRetention(String),
    /// Two objects an Experiment controls claim the same template.
    #[error("multiple {kind} match single experiment template: {template}")]
    AmbiguousTemplate {
        /// `ReplicaSets` or `Services`.
        kind: &'static str,
        /// The template name.
        template: String,
    },
    /// A duration string does not parse.
    #[error(transparent)]
    Duration(#[from] DurationError),
}
