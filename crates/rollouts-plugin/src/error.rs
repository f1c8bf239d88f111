//! The one error type of the plugin contract.

use std::fmt;

/// Which kind of plugin an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PluginKind {
    /// A traffic router (`spec.strategy.canary.trafficRouting.<name>`).
    TrafficRouter,
    /// A metric provider (`spec.metrics[].provider.<name>`).
    MetricProvider,
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TrafficRouter => "traffic router",
            Self::MetricProvider => "metric provider",
        })
    }
}

/// Everything a router, a provider or the registry can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The spec names a plugin this build does not contain.
    #[error("{kind} `{name}` is not compiled into this build")]
    NotCompiled {
        /// Router or provider.
        kind: PluginKind,
        /// The name as written in the spec.
        name: String,
    },
    /// Two plugins registered the same name; the build is broken.
    #[error("{kind} `{name}` is registered twice: two crates claim the same name")]
    Duplicate {
        /// Router or provider.
        kind: PluginKind,
        /// The duplicated name.
        name: &'static str,
    },
    /// The plugin does not implement this operation (see [`crate::RouterCapabilities`]).
    #[error("{plugin} does not support {operation}")]
    Unsupported {
        /// Registry name of the plugin.
        plugin: &'static str,
        /// What was asked, in words (`header routes`, `mirror routes`, ...).
        operation: &'static str,
    },
    /// The plugin's block in the spec is missing or wrong.
    #[error("{plugin}: invalid configuration: {message}")]
    Config {
        /// Registry name of the plugin.
        plugin: &'static str,
        /// What is wrong, naming the field.
        message: String,
    },
    /// An object the plugin works on does not exist.
    #[error("{plugin}: {object} not found")]
    NotFound {
        /// Registry name of the plugin.
        plugin: &'static str,
        /// The object, e.g. `VirtualService "default/web"`.
        object: String,
    },
    /// A Kubernetes API call failed. Shown with the API server's message when there is one
    /// (`virtualservices.networking.istio.io "web" not found`), else the client error.
    #[error("{plugin}: {action}: {}", crate::objects::error_message(.source))]
    Kube {
        /// Registry name of the plugin.
        plugin: &'static str,
        /// What the plugin was doing, e.g. `patching VirtualService "web"`.
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Anything else, described for a person.
    #[error("{plugin}: {message}")]
    Other {
        /// Registry name of the plugin.
        plugin: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl PluginError {
    /// A stable, low-cardinality label for metrics and Event reasons.
    pub fn category(&self) -> &'static str {
        match self {
            Self::NotCompiled { .. } => "not_compiled",
            Self::Duplicate { .. } => "duplicate",
            Self::Unsupported { .. } => "unsupported",
            Self::Config { .. } => "config",
            Self::NotFound { .. } => "not_found",
            Self::Kube { .. } => "kube",
            Self::Other { .. } => "other",
        }
    }
}
