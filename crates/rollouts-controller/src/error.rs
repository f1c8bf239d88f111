//! The one error type of the controller library.
//!
//! Every fallible function of this crate returns [`Error`]. Each variant names what was being done
//! and keeps its source, and [`Error::category`] gives a stable, low-cardinality label for metrics
//! and logs.

use std::time::Duration;

/// Everything the controller can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag has a value we cannot use.
    #[error("flag --{flag}: {message}")]
    Flag {
        /// The flag, without dashes.
        flag: &'static str,
        /// What is wrong with its value.
        message: String,
    },
    /// The kubeconfig (or in-cluster configuration) cannot be loaded.
    #[error("client configuration: {0}")]
    ClientConfig(String),
    /// A Kubernetes API call failed.
    #[error("{action}: {source}")]
    Kube {
        /// What we were doing, e.g. `creating ReplicaSet "web-6d4f8c"`.
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Our CustomResourceDefinitions are not installed in the cluster.
    #[error(
        "the {kind} CustomResourceDefinition is not installed (argoproj.io/v1alpha1 {plural}): \
         install charts/rollouts/crds/ first ({source})"
    )]
    CrdMissing {
        /// Kind, e.g. `Rollout`.
        kind: &'static str,
        /// Plural resource name.
        plural: &'static str,
        /// The error of the probe request.
        #[source]
        source: kube::Error,
    },
    /// A traffic router or metric provider failed, or is not part of this build.
    #[error("{0}")]
    Plugin(#[from] rollouts_plugin::PluginError),
    /// An AnalysisRun could not be built from the templates a Rollout names.
    #[error("creating AnalysisRun {run}: {message}")]
    Analysis {
        /// Name of the run.
        run: String,
        /// What is wrong (a missing template, conflicting arguments, ...).
        message: String,
    },
    /// An Experiment cannot be reconciled (two objects claim one template, a name taken by an
    /// object it does not own).
    #[error("experiment {experiment}: {message}")]
    Experiment {
        /// `namespace/name` of the Experiment.
        experiment: String,
        /// What is wrong.
        message: String,
    },
    /// A `workloadRef` cannot be resolved.
    #[error("spec.workloadRef: {0}")]
    Workload(String),
    /// An object read from the API server has a shape we cannot use.
    #[error("{what}: {message}")]
    Decode {
        /// The object.
        what: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The cache is older than an object we wrote: look again shortly.
    #[error("the cache of {object} is older than what we wrote (resourceVersion {expected})")]
    StaleCache {
        /// The object, e.g. `ReplicaSet web-6d4f8c`.
        object: String,
        /// The resourceVersion we wrote.
        expected: String,
    },
    /// Leader election failed or leadership was lost.
    #[error("leader election: {0}")]
    Leader(String),
    /// The HTTP servers (metrics, healthz) could not start or failed.
    #[error("{server} server on {address}: {source}")]
    Server {
        /// `metrics` or `healthz`.
        server: &'static str,
        /// The address.
        address: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Registering or rendering metrics failed.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A JSON document could not be built.
    #[error("{what}: {source}")]
    Json {
        /// What was being encoded or decoded.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// A watch stream ended or failed in a way we cannot recover from.
    #[error("watching {0} stopped")]
    Watch(String),
    /// An operation took longer than allowed.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was being done.
        what: String,
        /// The limit.
        after: Duration,
    },
}

impl Error {
    /// A stable label for metrics and logs.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Flag { .. } => "flag",
            Error::ClientConfig(_) => "client_config",
            Error::Kube { .. } => "kube",
            Error::CrdMissing { .. } => "crd_missing",
            Error::Plugin(_) => "plugin",
            Error::Analysis { .. } => "analysis",
            Error::Experiment { .. } => "experiment",
            Error::Workload(_) => "workload",
            Error::Decode { .. } => "decode",
            Error::StaleCache { .. } => "stale_cache",
            Error::Leader(_) => "leader",
            Error::Server { .. } => "server",
            Error::Metrics(_) => "metrics",
            Error::Json { .. } => "json",
            Error::Watch(_) => "watch",
            Error::Timeout { .. } => "timeout",
        }
    }

    /// A Kubernetes API error while doing `action`.
    pub fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube {
            action: action.into(),
            source,
        }
    }

    /// The HTTP status code of a Kubernetes API error, if that is what this is.
    pub fn api_code(&self) -> Option<u16> {
        match self {
            Error::Kube {
                source: kube::Error::Api(status),
                ..
            } => Some(status.code),
            _ => None,
        }
    }
}

/// The HTTP status code of an API error.
pub(crate) fn code_of(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_stable_labels() {
        let err = Error::Workload("Deployment \"web\" not found".into());
        assert_eq!(err.category(), "workload");
        assert_eq!(
            err.to_string(),
            "spec.workloadRef: Deployment \"web\" not found"
        );
        let status = kube::core::Status::failure("nope", "NotFound").with_code(404);
        let err = Error::kube(
            "getting ReplicaSet \"x\"",
            kube::Error::Api(Box::new(status)),
        );
        assert_eq!(err.category(), "kube");
        assert_eq!(err.api_code(), Some(404));
        assert!(err.to_string().starts_with("getting ReplicaSet \"x\": "));
    }
}
