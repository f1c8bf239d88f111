//! Taking measurements for the AnalysisRun controller: arguments resolved just before
//! measuring (Secrets read from the run's namespace, field references from the object that owns
//! the run), providers built once and shared, provider calls made concurrently, and their
//! answers turned into measurements by the engine ([`rollouts_engine::analysis_run`]) with every
//! secret value redacted.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind},
};
use rollouts_api::{AnalysisRun, Argument, Measurement, Metric};
use rollouts_engine::analysis_run::{
    self as engine, Measure, Observed, ResultValue, Task, TaskKind, TaskResult, Verdict,
};
use rollouts_plugin::{
    FloatResult, MeasureRequest, MetricProvider, Observation, ProviderInit, Registry,
};

/// The metric providers of this build, built on first use and shared by every run.
pub struct Providers {
    registry: Registry,
    init: ProviderInit,
    built: Mutex<HashMap<String, Arc<dyn MetricProvider>>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("registry", &self.registry.provider_names())
            .finish_non_exhaustive()
    }
}

impl Providers {
    /// Providers from `registry`, built with `init` when first needed.
    pub fn new(registry: Registry, init: ProviderInit) -> Self {
        Self {
            registry,
            init,
            built: Mutex::default(),
        }
    }

    /// The provider registered as `name`; the error is the measurement message
    /// (``metric provider `x` is not compiled into this build``, or why it cannot be built).
    /// Build failures are not remembered: the next measurement tries again.
    pub fn get(&self, name: &str) -> Result<Arc<dyn MetricProvider>, String> {
        if let Some(p) = self
            .built
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return Ok(p.clone());
        }
        let plugin = self.registry.provider(name).map_err(|e| e.to_string())?;
        let provider: Arc<dyn MetricProvider> =
            Arc::from((plugin.build)(&self.init).map_err(|e| e.to_string())?);
        self.built
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_insert_with(|| provider.clone());
        Ok(provider)
    }

    /// The provider of a metric.
    pub fn for_metric(&self, metric: &Metric) -> Result<Arc<dyn MetricProvider>, String> {
        let name = engine::provider_name(metric)
            .ok_or_else(|| format!("no valid provider in metric '{}'", metric.name))?;
        self.get(&name)
    }
}

/// The run's arguments with every value filled in (secrets, field references), and the secret
/// values to redact.
#[derive(Clone, Debug, Default)]
pub struct ResolvedArgs {
    /// Arguments, each with a value where one could be found.
    pub args: Vec<Argument>,
    /// Secret values (for redaction).
    pub secrets: Vec<String>,
}

/// Reads the values of `valueFrom` arguments: `secretKeyRef` from a Secret in the run's
/// namespace (`key 'k' does not exist in secret 's'` when the key is missing), `fieldRef` from
/// the object that controls the run (its Rollout or Experiment), or the run itself when nothing
/// does. The error is the message for the run (`Unable to resolve metric arguments: ...`).
pub async fn resolve_args(client: &Client, run: &AnalysisRun) -> Result<ResolvedArgs, String> {
    let namespace = run.metadata.namespace.clone().unwrap_or_default();
    let mut out = ResolvedArgs::default();
    let mut owner: Option<serde_json::Value> = None;
    for arg in run.spec.args.iter().flatten() {
        let mut arg = arg.clone();
        let from = arg.value_from.clone().unwrap_or_default();
        if let Some(secret_ref) = &from.secret_key_ref {
            let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
            let secret = secrets
                .get(&secret_ref.name)
                .await
                .map_err(|e| kube_message(&e))?;
            let bytes = secret
                .data
                .as_ref()
                .and_then(|d| d.get(&secret_ref.key))
                .ok_or_else(|| {
                    format!(
                        "key '{}' does not exist in secret '{}'",
                        secret_ref.key, secret_ref.name
                    )
                })?;
            let value = String::from_utf8_lossy(&bytes.0).into_owned();
            if !value.is_empty() && !out.secrets.contains(&value) {
                crate::telemetry::redact_in_logs(&value);
                out.secrets.push(value.clone());
            }
            arg.value = Some(value);
        } else if let Some(field) = &from.field_ref
            && arg.value.is_none()
        {
            if owner.is_none() {
                owner = Some(owner_object(client, run).await?);
            }
            let object = owner.as_ref().unwrap_or(&serde_json::Value::Null);
            arg.value = Some(engine::field_value(object, &field.field_path)?);
        }
        out.args.push(arg);
    }
    Ok(out)
}

/// The object that controls the run, as JSON: its Rollout or Experiment, or the run itself.
async fn owner_object(client: &Client, run: &AnalysisRun) -> Result<serde_json::Value, String> {
    let namespace = run.metadata.namespace.clone().unwrap_or_default();
    let owner = run
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    let plural = match owner.map(|o| (o.api_version.as_str(), o.kind.as_str())) {
        Some((rollouts_api::API_VERSION, "Rollout")) => Some("rollouts"),
        Some((rollouts_api::API_VERSION, "Experiment")) => Some("experiments"),
        _ => None,
    };
    let (Some(owner), Some(plural)) = (owner, plural) else {
        return serde_json::to_value(run).map_err(|e| e.to_string());
    };
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(rollouts_api::GROUP, rollouts_api::VERSION, &owner.kind),
        plural,
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
    let object = api.get(&owner.name).await.map_err(|e| kube_message(&e))?;
    serde_json::to_value(object).map_err(|e| e.to_string())
}

/// An API error as the API server words it (`secrets "x" not found`), else the client's error.
fn kube_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// A provider's observation in the engine's terms.
pub fn observed(observation: Observation) -> Observed {
    match observation {
        Observation::Value {
            result,
            value,
            metadata,
        } => Observed::Value {
            result: ResultValue::from(&result),
            value,
            metadata,
        },
        Observation::Float {
            result,
            value,
            metadata,
        } => Observed::Value {
            result: match result {
                FloatResult::Scalar(f) => ResultValue::Float(f),
                FloatResult::Vector(v) => ResultValue::Floats(v),
            },
            value,
            metadata,
        },
        Observation::Decided {
            verdict,
            value,
            message,
            metadata,
        } => Observed::Decided {
            verdict: match verdict {
                rollouts_plugin::Verdict::Successful => Verdict::Successful,
                rollouts_plugin::Verdict::Failed => Verdict::Failed,
                rollouts_plugin::Verdict::Inconclusive => Verdict::Inconclusive,
            },
            value,
            message,
            metadata,
        },
        Observation::InProgress {
            resume_at,
            metadata,
        } => Observed::InProgress {
            resume_at,
            metadata,
        },
        Observation::Error { message, metadata } => Observed::Error { message, metadata },
    }
}

/// Runs the tasks of `measure` concurrently (each with the metric resolved with `args`), and
/// returns their results with secrets redacted. A metric whose arguments do not resolve makes
/// the whole run fail (the error, redacted, is the run's message).
pub async fn take_measurements(
    providers: &Providers,
    run: &AnalysisRun,
    measure: &Measure,
    args: &ResolvedArgs,
) -> Result<Vec<TaskResult>, String> {
    let status = run.status.clone().unwrap_or_default();
    let mut prepared = Vec::with_capacity(measure.tasks.len());
    for task in &measure.tasks {
        let Some(spec_metric) = run.spec.metrics.get(task.index) else {
            continue;
        };
        let metric = engine::resolve_metric(spec_metric, &args.args)
            .map_err(|e| engine::redact_text(&e, &args.secrets))?;
        let in_flight = status
            .metric_results
            .iter()
            .flatten()
            .find(|r| r.name == metric.name)
            .and_then(|r| r.measurements.as_ref())
            .and_then(|m| m.last())
            .cloned();
        prepared.push((*task, metric, in_flight));
    }
    let calls = prepared.iter().map(|(task, metric, in_flight)| {
        measure_one(
            providers,
            run,
            *task,
            metric,
            in_flight.as_ref(),
            &args.secrets,
        )
    });
    Ok(futures::future::join_all(calls).await)
}

async fn measure_one(
    providers: &Providers,
    run: &AnalysisRun,
    task: Task,
    metric: &Metric,
    in_flight: Option<&Measurement>,
    secrets: &[String],
) -> TaskResult {
    let started = Timestamp::now();
    let provider = providers.for_metric(metric);
    let mut measurement = match &provider {
        Err(message) => {
            tracing::warn!(metric = %metric.name, error = %engine::redact_text(message, secrets), "No metric provider.");
            engine::provider_error(in_flight, message, started)
        }
        Ok(p) => {
            let request = MeasureRequest {
                run,
                metric,
                now: started,
            };
            let observation = match (task.kind, in_flight) {
                (TaskKind::Resume, Some(m)) => p.resume(request, m).await,
                (TaskKind::Terminate, Some(m)) => {
                    tracing::info!(metric = %metric.name, "Terminating the measurement in progress.");
                    p.terminate(request, m).await
                }
                _ => p.run(request).await,
            };
            let finished = Timestamp::now();
            let mut m = engine::apply_observation(
                metric,
                task.kind,
                in_flight,
                observed(observation),
                finished,
            );
            if task.kind == TaskKind::Run {
                m.started_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    engine::whole_seconds(started),
                ));
            }
            m
        }
    };
    engine::redact(&mut measurement, secrets);
    if measurement.phase == rollouts_api::analysis_phase::ERROR {
        tracing::warn!(
            metric = %metric.name,
            message = measurement.message.as_deref().unwrap_or_default(),
            "Measurement had error."
        );
    } else {
        tracing::info!(metric = %metric.name, phase = %measurement.phase, "Measurement taken.");
    }
    let metadata = provider.ok().map(|p| {
        let mut md: BTreeMap<String, String> = p.metadata(metric);
        engine::redact_map(&mut md, secrets);
        md
    });
    TaskResult {
        task,
        measurement,
        metadata,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_map_onto_the_engines_terms() {
        let md = BTreeMap::from([("k".to_string(), "v".to_string())]);
        assert_eq!(
            observed(Observation::Float {
                result: FloatResult::Vector(vec![1.0, f64::INFINITY]),
                value: "[1,+Inf]".into(),
                metadata: md.clone(),
            }),
            Observed::Value {
                result: ResultValue::Floats(vec![1.0, f64::INFINITY]),
                value: "[1,+Inf]".into(),
                metadata: md.clone(),
            }
        );
        assert_eq!(
            observed(Observation::Value {
                result: serde_json::json!({"ok": true}),
                value: "{\"ok\":true}".into(),
                metadata: BTreeMap::new(),
            }),
            Observed::Value {
                result: ResultValue::from(&serde_json::json!({"ok": true})),
                value: "{\"ok\":true}".into(),
                metadata: BTreeMap::new(),
            }
        );
        assert_eq!(
            observed(Observation::error("boom")),
            Observed::Error {
                message: "boom".into(),
                metadata: BTreeMap::new()
            }
        );
    }

    #[test]
    fn a_provider_that_is_not_compiled_in_is_named() {
        let providers = Providers::new(
            Registry::from_plugins([], []).expect("empty registry"),
            ProviderInit {
                client: None,
                controller_namespace: "argo-rollouts".into(),
            },
        );
        let metric: Metric = serde_json::from_value(serde_json::json!({
            "name": "m", "provider": {"datadog": {"query": "q"}}
        }))
        .expect("metric");
        assert_eq!(
            providers.for_metric(&metric).err().as_deref(),
            Some("metric provider `datadog` is not compiled into this build")
        );
    }
}
