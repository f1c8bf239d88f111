//! The errors of the plugin, worded for the person at the terminal: what is wrong and what to do,
//! in one line, with an exit code a script can use (see [`Error::exit_code`] and `docs/cli.md`).
//!
//! Kubernetes API failures are classified by [`Error::from_kube`]: an object that does not
//! exist, a resource type the cluster does not serve (the Argo Rollouts CRDs are not
//! installed), a cluster that cannot be reached, credentials that are rejected, and RBAC
//! denials each get their own message.

use std::path::PathBuf;

/// Exit code: the rollout ended Degraded (aborted, invalid, progress deadline exceeded), or a
/// command failed for a reason not listed below.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: the command line is wrong (unknown flag, missing argument).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: a `--timeout` passed before the rollout finished.
pub const EXIT_TIMEOUT: u8 = 3;
/// Exit code: the cluster could not be used: unreachable, credentials rejected, access denied,
/// the object or the Argo Rollouts CRDs missing.
pub const EXIT_CLUSTER: u8 = 4;

/// What a Kubernetes request was about, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Kind in lower case as kubectl prints it (`rollout`, `analysisrun`, `replicaset`).
    pub kind: &'static str,
    /// Object name (empty for lists).
    pub name: String,
    /// Namespace (empty for cluster-scoped objects or all namespaces).
    pub namespace: String,
}

impl Target {
    /// A named object in a namespace.
    pub fn new(kind: &'static str, name: &str, namespace: &str) -> Self {
        Self {
            kind,
            name: name.to_string(),
            namespace: namespace.to_string(),
        }
    }

    fn list_command(&self) -> Option<&'static str> {
        match self.kind {
            "rollout" => Some("kubectl argo rollouts list rollouts"),
            "experiment" => Some("kubectl argo rollouts list experiments"),
            "analysisrun" => Some("kubectl get analysisruns"),
            "analysistemplate" => Some("kubectl get analysistemplates"),
            "clusteranalysistemplate" => Some("kubectl get clusteranalysistemplates"),
            _ => None,
        }
    }

    fn crd(&self) -> Option<&'static str> {
        match self.kind {
            "rollout" => Some("rollouts.argoproj.io"),
            "experiment" => Some("experiments.argoproj.io"),
            "analysisrun" => Some("analysisruns.argoproj.io"),
            "analysistemplate" => Some("analysistemplates.argoproj.io"),
            "clusteranalysistemplate" => Some("clusteranalysistemplates.argoproj.io"),
            _ => None,
        }
    }

    fn where_(&self) -> String {
        if self.namespace.is_empty() {
            String::new()
        } else {
            format!(" in namespace {:?}", self.namespace)
        }
    }
}

/// Errors of the plugin.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The named object does not exist.
    #[error("{kind} {name:?} not found{where_}{hint}")]
    NotFound {
        /// Kind.
        kind: &'static str,
        /// Name.
        name: String,
        /// ` in namespace "x"`, or empty.
        where_: String,
        /// What to run to see what exists.
        hint: String,
    },
    /// The cluster does not serve the resource type.
    #[error(
        "the cluster does not serve {resource}: the Argo Rollouts CRDs are not installed \
         (install them, e.g. `kubectl apply -k charts/rollouts/crds` or with the Helm chart)"
    )]
    CrdMissing {
        /// `rollouts.argoproj.io`, …
        resource: String,
    },
    /// The API server could not be reached.
    #[error(
        "cannot reach the Kubernetes API server{at}: {reason} \
         (check that the cluster is running, and --kubeconfig/--context)"
    )]
    Unreachable {
        /// ` at https://…`, or empty.
        at: String,
        /// The cause, one line.
        reason: String,
    },
    /// The credentials were rejected (401).
    #[error("the API server rejected the credentials: {message} (refresh them in your kubeconfig)")]
    Unauthorized {
        /// Server message.
        message: String,
    },
    /// RBAC denied the request (403).
    #[error("permission denied: {message} (ask a cluster administrator for access)")]
    Forbidden {
        /// Server message (names user, verb, resource and namespace).
        message: String,
    },
    /// Any other answer of the API server.
    #[error("{action}: {message}")]
    Api {
        /// What was being done, e.g. `patching rollout "web"`.
        action: String,
        /// Server message.
        message: String,
        /// HTTP status.
        code: u16,
    },
    /// The kubeconfig could not be loaded.
    #[error(
        "cannot load the Kubernetes configuration: {0} (check --kubeconfig, $KUBECONFIG and --context)"
    )]
    Kubeconfig(String),
    /// Wrong arguments (beyond what clap checks): a malformed value or a missing option.
    #[error("{0}")]
    Usage(String),
    /// The request cannot be carried out on these objects (no such revision, no such
    /// container, an argument without a value).
    #[error("{0}")]
    Refused(String),
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A manifest is not valid YAML/JSON.
    #[error("{file}:{line}: {message}")]
    Yaml {
        /// File name.
        file: String,
        /// 1-based line (0 when unknown).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A manifest does not fit its kind (unknown field, wrong type, invalid spec).
    #[error("{file}:{line}: {message}")]
    Manifest {
        /// File name.
        file: String,
        /// 1-based line.
        line: u64,
        /// What is wrong, starting with the field path.
        message: String,
    },
    /// `lint` found problems (each was printed already).
    #[error("{file}: {count} error(s) found")]
    Lint {
        /// File name.
        file: String,
        /// Number of problems.
        count: usize,
    },
    /// The rollout ended Degraded.
    #[error("The rollout is in a degraded state with message: {message}")]
    Degraded {
        /// Status message.
        message: String,
    },
    /// A watch ran out of time.
    #[error("{what} exceeded timeout")]
    Timeout {
        /// What was being watched, e.g. `Rollout status watch`.
        what: String,
    },
    /// Writing the output failed (closed pipe).
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
    /// A value could not be (de)serialized; a bug or a cluster returning unexpected objects.
    #[error("{0}")]
    Encoding(String),
    /// The rollout needs something the engine cannot give yet.
    #[error("{0}")]
    Unsupported(String),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::NotFound { .. }
            | Error::CrdMissing { .. }
            | Error::Unreachable { .. }
            | Error::Unauthorized { .. }
            | Error::Forbidden { .. }
            | Error::Kubeconfig(_) => EXIT_CLUSTER,
            Error::Usage(_) => EXIT_USAGE,
            Error::Timeout { .. } => EXIT_TIMEOUT,
            _ => EXIT_FAILURE,
        }
    }

    /// Classifies a kube error about `target`; `action` words what was being done
    /// (`patching`, `listing`) and `server` is the API server URL for connection errors.
    pub fn from_kube(err: kube::Error, action: &str, target: &Target, server: &str) -> Self {
        match err {
            kube::Error::Api(status) => {
                let message = status.message.clone();
                match status.code {
                    404 if is_missing_resource_type(&status) => match target.crd() {
                        Some(crd) => Error::CrdMissing {
                            resource: crd.to_string(),
                        },
                        None => Error::Api {
                            action: describe(action, target),
                            message,
                            code: 404,
                        },
                    },
                    404 if !target.name.is_empty() => Error::NotFound {
                        kind: target.kind,
                        name: target.name.clone(),
                        where_: target.where_(),
                        hint: target
                            .list_command()
                            .map(|c| format!(" (see `{c}`)"))
                            .unwrap_or_default(),
                    },
                    401 => Error::Unauthorized { message },
                    403 => Error::Forbidden { message },
                    code => Error::Api {
                        action: describe(action, target),
                        message: if message.is_empty() {
                            status.reason.clone()
                        } else {
                            message
                        },
                        code,
                    },
                }
            }
            kube::Error::HyperError(e) => unreachable_error(server, &e),
            kube::Error::Service(e) => unreachable_error(server, e.as_ref()),
            kube::Error::SerdeError(e) => Error::Encoding(format!(
                "{}: the API server's answer could not be decoded: {e}",
                describe(action, target)
            )),
            kube::Error::Auth(e) => Error::Unauthorized {
                message: one_line(&e),
            },
            other => Error::Api {
                action: describe(action, target),
                message: one_line(&other),
                code: 0,
            },
        }
    }
}

/// Whether a 404 means "no such resource type" rather than "no such object".
fn is_missing_resource_type(status: &kube::core::Status) -> bool {
    let named = status.details.as_ref().is_some_and(|d| !d.name.is_empty());
    // An object that does not exist: `rollouts.argoproj.io "web" not found`, with details.
    // A type the server does not serve: `the server could not find the requested resource`.
    !named && !status.message.ends_with(" not found")
}

fn describe(action: &str, target: &Target) -> String {
    if target.name.is_empty() {
        format!("{action} {}s{}", target.kind, target.where_())
    } else {
        format!(
            "{action} {} {:?}{}",
            target.kind,
            target.name,
            target.where_()
        )
    }
}

/// The error and its sources on one line, without repeating a source its parent already shows.
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out.replace('\n', " ")
}

fn unreachable_error(server: &str, err: &(dyn std::error::Error + 'static)) -> Error {
    Error::Unreachable {
        at: if server.is_empty() {
            String::new()
        } else {
            format!(" at {server}")
        },
        reason: one_line(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, reason: &str, message: &str, name: Option<&str>) -> kube::Error {
        let mut s = kube::core::Status::failure(message, reason).with_code(code);
        if let Some(n) = name {
            s = s.with_details(kube::core::response::StatusDetails {
                name: n.to_string(),
                group: "argoproj.io".into(),
                kind: "rollouts".into(),
                uid: String::new(),
                causes: Vec::new(),
                retry_after_seconds: 0,
            });
        }
        kube::Error::Api(Box::new(s))
    }

    #[test]
    fn missing_objects_and_missing_crds_differ() {
        let t = Target::new("rollout", "web", "prod");
        let e = Error::from_kube(
            status(
                404,
                "NotFound",
                "rollouts.argoproj.io \"web\" not found",
                Some("web"),
            ),
            "getting",
            &t,
            "",
        );
        assert_eq!(
            e.to_string(),
            "rollout \"web\" not found in namespace \"prod\" (see `kubectl argo rollouts list rollouts`)"
        );
        assert_eq!(e.exit_code(), EXIT_CLUSTER);
        let e = Error::from_kube(
            status(
                404,
                "NotFound",
                "the server could not find the requested resource",
                None,
            ),
            "getting",
            &t,
            "",
        );
        assert!(matches!(e, Error::CrdMissing { .. }), "{e:?}");
        assert!(e.to_string().contains("CRDs are not installed"));
    }

    #[test]
    fn rbac_and_other_codes() {
        let t = Target::new("rollout", "web", "prod");
        let e = Error::from_kube(
            status(
                403,
                "Forbidden",
                "rollouts.argoproj.io \"web\" is forbidden: User \"bob\" cannot patch resource \"rollouts/status\"",
                None,
            ),
            "patching",
            &t,
            "",
        );
        assert!(e.to_string().starts_with(
            "permission denied: rollouts.argoproj.io \"web\" is forbidden: User \"bob\""
        ));
        let e = Error::from_kube(
            status(409, "Conflict", "the object has been modified", None),
            "updating",
            &t,
            "",
        );
        assert_eq!(
            e.to_string(),
            "updating rollout \"web\" in namespace \"prod\": the object has been modified"
        );
        assert_eq!(e.exit_code(), EXIT_FAILURE);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(
            Error::Degraded {
                message: "x".into()
            }
            .exit_code(),
            EXIT_FAILURE
        );
        assert_eq!(
            Error::Timeout { what: "x".into() }.exit_code(),
            EXIT_TIMEOUT
        );
        assert_eq!(Error::Usage("x".into()).exit_code(), EXIT_USAGE);
        assert_eq!(Error::Refused("x".into()).exit_code(), EXIT_FAILURE);
    }
}
