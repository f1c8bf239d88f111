//! The metric provider contract.
//!
//! A provider takes one measurement for one metric of an AnalysisRun: it queries Prometheus, calls
//! a web endpoint, runs a Job, and so on. It returns what it observed as data ([`Observation`]);
//! the strategy engine turns values into measurement phases by evaluating the metric's
//! `successCondition` and `failureCondition`, counts failures against the limits and decides the
//! run's phase. Providers never fail with `Err` for a bad measurement: an unreachable server or a
//! malformed response is [`Observation::Error`], which is what Argo records as an `Error`
//! measurement.

use std::collections::BTreeMap;

use async_trait::async_trait;
use jiff::Timestamp;
use rollouts_api::{AnalysisRun, Measurement, Metric};

use crate::PluginError;

/// What a provider is given when it is built.
#[derive(Clone)]
pub struct ProviderInit {
    /// A client for the cluster the AnalysisRun lives in, for providers that read Secrets or create
    /// Jobs. `None` where no cluster is involved (unit tests of HTTP providers).
    pub client: Option<kube::Client>,
    /// The namespace the controller runs in (where Argo reads provider Secrets such as `datadog`).
    pub controller_namespace: String,
}

impl std::fmt::Debug for ProviderInit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderInit")
            .field("client", &self.client.is_some())
            .field("controller_namespace", &self.controller_namespace)
            .finish()
    }
}

/// One measurement to take.
#[derive(Clone, Copy, Debug)]
pub struct MeasureRequest<'a> {
    /// The run the metric belongs to (name, namespace, uid, owner).
    pub run: &'a AnalysisRun,
    /// The metric, with every `{{args.*}}` already substituted.
    pub metric: &'a Metric,
    /// The controller's clock at the time of the call.
    pub now: Timestamp,
}

/// A phase that a provider decides on its own, without conditions (a Job that completed or
/// failed, a Kayenta score against its thresholds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The measurement passed.
    Successful,
    /// The measurement failed.
    Failed,
    /// Neither: a person has to decide.
    Inconclusive,
}

/// What a provider observed.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// A value for the metric's conditions: `result` is what the conditions see, `value` is what
    /// goes into `measurement.value` (Argo's rendering: a float as Go prints it, a vector as
    /// `[0.5,0.7]`, JSON for the web provider).
    Value {
        /// The value bound to `result` in the condition expressions.
        result: serde_json::Value,
        /// The rendered value stored in the measurement.
        value: String,
        /// Provider metadata stored in `measurement.metadata`.
        metadata: BTreeMap<String, String>,
    },
    /// A numeric value for the metric's conditions, as Go's `float64` or `[]float64`, which may
    /// hold NaN and ±Inf (JSON cannot, so [`Observation::Value`] would lose them). Prometheus
    /// returns its results this way; the controller binds `result` to the float or the list.
    Float {
        /// The value bound to `result` in the condition expressions.
        result: FloatResult,
        /// The rendered value stored in the measurement (`0.98`, `[1,NaN]`).
        value: String,
        /// Provider metadata stored in `measurement.metadata`.
        metadata: BTreeMap<String, String>,
    },
    /// The provider decided the phase itself.
    Decided {
        /// The phase.
        verdict: Verdict,
        /// The rendered value, if any.
        value: Option<String>,
        /// A message for the measurement.
        message: Option<String>,
        /// Provider metadata stored in `measurement.metadata`.
        metadata: BTreeMap<String, String>,
    },
    /// The measurement is still running (asynchronous providers). The controller calls
    /// [`MetricProvider::resume`] again at `resume_at` (or on the next reconcile).
    InProgress {
        /// When to look again.
        resume_at: Option<Timestamp>,
        /// Provider state that `resume` needs, stored in `measurement.metadata` (e.g. a Job name).
        metadata: BTreeMap<String, String>,
    },
    /// The measurement could not be taken: the server was unreachable, the query invalid, the
    /// response malformed. Counts towards `consecutiveErrorLimit`.
    Error {
        /// What went wrong, for `measurement.message`.
        message: String,
        /// Provider metadata stored in `measurement.metadata`.
        metadata: BTreeMap<String, String>,
    },
}

/// A numeric result: Go's `float64` or `[]float64`.
#[derive(Clone, Debug, PartialEq)]
pub enum FloatResult {
    /// One number (a Prometheus scalar).
    Scalar(f64),
    /// A list of numbers (a Prometheus vector or matrix, flattened).
    Vector(Vec<f64>),
}

impl Observation {
    /// An [`Observation::Error`] without metadata.
    pub fn error(message: impl Into<String>) -> Self {
        Self::Error {
            message: message.into(),
            metadata: BTreeMap::new(),
        }
    }
}

/// A metric provider. Object-safe and async.
#[async_trait]
pub trait MetricProvider: Send + Sync {
    /// The registry name (the JSON key of the provider block), e.g. `prometheus`, `newRelic`.
    fn name(&self) -> &'static str;

    /// Starts (and for synchronous providers, finishes) a measurement.
    async fn run(&self, request: MeasureRequest<'_>) -> Observation;

    /// Checks on a measurement that [`MetricProvider::run`] left in progress.
    async fn resume(&self, request: MeasureRequest<'_>, in_flight: &Measurement) -> Observation {
        let _ = (request, in_flight);
        Observation::error(format!(
            "{} measurements complete synchronously and cannot be resumed",
            self.name()
        ))
    }

    /// Stops a measurement in progress because the run is terminating. Synchronous providers have
    /// nothing to stop, and the measurement ends as Successful, as in Argo.
    async fn terminate(&self, request: MeasureRequest<'_>, in_flight: &Measurement) -> Observation {
        let _ = (request, in_flight);
        Observation::Decided {
            verdict: Verdict::Successful,
            value: None,
            message: Some("Metric Terminated".to_string()),
            metadata: BTreeMap::new(),
        }
    }

    /// Deletes provider-side leftovers of old measurements beyond `limit` (e.g. Jobs).
    async fn garbage_collect(
        &self,
        run: &AnalysisRun,
        metric: &Metric,
        limit: usize,
    ) -> Result<(), PluginError> {
        let _ = (run, metric, limit);
        Ok(())
    }

    /// Extra metadata recorded on the metric result (e.g. the resolved query).
    fn metadata(&self, metric: &Metric) -> BTreeMap<String, String> {
        let _ = metric;
        BTreeMap::new()
    }
}

/// A provider's registration: its name and how to build it.
#[derive(Debug)]
pub struct MetricProviderPlugin {
    /// The JSON key of the provider block in `metrics[].provider` (`prometheus`, `newRelic`, ...).
    pub name: &'static str,
    /// One line for `--version` output and the startup log.
    pub summary: &'static str,
    /// Builds the provider.
    pub build: fn(&ProviderInit) -> Result<Box<dyn MetricProvider>, PluginError>,
}

inventory::collect!(MetricProviderPlugin);
