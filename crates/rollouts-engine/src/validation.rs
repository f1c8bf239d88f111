//! Rollout validation (Argo's `pkg/apis/rollouts/validation`, `argo-core.md` §1.2–1.5, §1.14).
//!
//! [`validate`] checks the spec alone and is what `kubectl argo rollouts lint` reuses;
//! [`validate_references`] checks the Services the strategy names. Errors render exactly like
//! Kubernetes field errors (`spec.strategy.canary.steps[2].setWeight: Invalid value: 200:
//! SetWeight needs to be between 0 and 100`), and the controller reports the first one in the
//! `InvalidSpec` condition as `The Rollout "<name>" is invalid: <error>`.
//!
//! One deliberate difference: Argo builds strategy paths without the strategy segment
//! (`spec.strategy.steps[2].setWeight`, `spec.strategy.strategy`); here every path names the
//! field a user has to edit (`spec.strategy.canary.steps[2].setWeight`, `spec.strategy`).

use std::fmt;

use rollouts_api::{CanaryStrategy, Rollout, StringMatch};

use crate::intstr::validation_value;
use crate::snapshot::ServiceView;
use crate::steps::{int_or_str, pause_duration_seconds};

/// The kind of a field error, with Kubernetes' wording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// `Invalid value: <value>`; the value is already rendered as Kubernetes renders it.
    Invalid(String),
    /// `Required value`.
    Required,
    /// `Internal error`.
    Internal,
    /// `Duplicate value: <value>`; the value is already rendered.
    Duplicate(String),
    /// `Unsupported value: <value>`; the detail lists the supported values.
    NotSupported(String),
}

/// One validation error on a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Field path, e.g. `spec.strategy.canary.steps[2].setWeight`.
    pub field: String,
    /// What is wrong.
    pub kind: FieldErrorKind,
    /// Detail message.
    pub detail: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.field)?;
        match &self.kind {
            FieldErrorKind::Invalid(v) => write!(f, "Invalid value: {v}")?,
            FieldErrorKind::Required => write!(f, "Required value")?,
            FieldErrorKind::Internal => write!(f, "Internal error")?,
            FieldErrorKind::Duplicate(v) => write!(f, "Duplicate value: {v}")?,
            FieldErrorKind::NotSupported(v) => write!(f, "Unsupported value: {v}")?,
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldError {}

fn invalid(
    field: impl Into<String>,
    value: impl Into<String>,
    detail: impl Into<String>,
) -> FieldError {
    FieldError {
        field: field.into(),
        kind: FieldErrorKind::Invalid(value.into()),
        detail: detail.into(),
    }
}

fn required(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        kind: FieldErrorKind::Required,
        detail: detail.into(),
    }
}

/// Renders a string value as Kubernetes does (`%q`).
fn q(s: &str) -> String {
    crate::conditions::quote(s)
}

/// Renders a value as JSON (Kubernetes' fallback for structured values).
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_string())
}

const MISSING_FIELD: &str = "Rollout has missing field";
const INVALID_SET_WEIGHT: &str = "SetWeight needs to be between 0 and";
const INVALID_DURATION: &str = "Duration needs to be greater than 0";
const INVALID_STEP: &str = "Step must have one of the following set: experiment, setWeight, setCanaryScale, plugin or pause";
const DUPLICATED_SERVICES_CANARY: &str = "This rollout uses the same service for the stable and canary services, but two different services are required.";
const DUPLICATED_SERVICES_BLUE_GREEN: &str = "This rollout uses the same service for the active and preview services, but two different services are required.";
const INVALID_TRAFFIC_ROUTING: &str =
    "Canary service and Stable service must to be set to use Traffic Routing";

/// Validates the spec of a Rollout as written (what `lint` checks); an empty list means valid.
pub fn validate(rollout: &Rollout) -> Vec<FieldError> {
    validate_resolved(rollout, false)
}

/// Validates a Rollout whose `spec.template` (and possibly selector) the controller may have
/// filled in from its `workloadRef` (`template_resolved_from_ref`, Argo's
/// `TemplateResolvedFromRef`): the template is then validated like an inline one instead of
/// having to be empty.
pub fn validate_resolved(rollout: &Rollout, template_resolved_from_ref: bool) -> Vec<FieldError> {
    let spec = &rollout.spec;
    let mut errs = Vec::new();
    let replicas = spec.replicas_or_default();
    if replicas < 0 {
        errs.push(invalid(
            "spec.replicas",
            replicas.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    if spec.workload_ref.is_none() || template_resolved_from_ref {
        match &spec.selector {
            None => errs.push(required(
                "spec.selector",
                format!("{MISSING_FIELD} '.spec.selector'"),
            )),
            Some(sel) => {
                let empty = sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
                    && sel.match_expressions.as_ref().is_none_or(|e| e.is_empty());
                if empty {
                    errs.push(invalid(
                        "spec.selector",
                        json(sel),
                        "empty selector is invalid for deployment",
                    ));
                }
            }
        }
        errs.extend(validate_template(rollout));
    } else if spec
        .template
        .as_ref()
        .is_some_and(|t| !t.labels().is_empty() || !t.annotations().is_empty())
    {
        errs.push(FieldError {
            field: "spec.template".into(),
            kind: FieldErrorKind::Internal,
            detail: "template must be empty for workload reference rollout".into(),
        });
    }
    let min_ready = spec.min_ready_seconds_or_default();
    if min_ready < 0 {
        errs.push(invalid(
            "spec.minReadySeconds",
            min_ready.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    let history = spec.revision_history_limit_or_default();
    if history < 0 {
        errs.push(invalid(
            "spec.revisionHistoryLimit",
            history.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    let deadline = spec.progress_deadline_seconds_or_default();
    if deadline < 0 {
        errs.push(invalid(
            "spec.progressDeadlineSeconds",
            deadline.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    if deadline <= min_ready {
        errs.push(invalid(
            "spec.progressDeadlineSeconds",
            deadline.to_string(),
            "must be greater than minReadySeconds",
        ));
    }
    match spec
        .strategy
        .as_ref()
        .map(|s| (s.canary.as_ref(), s.blue_green.as_ref()))
    {
        None | Some((None, None)) => errs.push(required(
            "spec.strategy",
            format!("{MISSING_FIELD} '.spec.strategy.canary or .spec.strategy.blueGreen'"),
        )),
        Some((Some(_), Some(_))) => errs.push(invalid(
            "spec.strategy",
            q("blueGreen: true canary: true"),
            "Multiple Strategies can not be listed",
        )),
        Some((None, Some(bg))) => {
            if Some(bg.active_service.as_str()) == bg.preview_service.as_deref().or(Some("")) {
                errs.push(invalid(
                    "spec.strategy.blueGreen.activeService",
                    q(&bg.active_service),
                    DUPLICATED_SERVICES_BLUE_GREEN,
                ));
            }
            if let Some(limit) = bg.scale_down_delay_revision_limit
                && history < limit
            {
                errs.push(invalid(
                    "spec.strategy.blueGreen.scaleDownDelayRevisionLimit",
                    limit.to_string(),
                    "This rollout's revision history limit can not be smaller than the rollout's scale down limit",
                ));
            }
            errs.extend(validate_anti_affinity(
                bg.anti_affinity.as_ref(),
                "spec.strategy.blueGreen.antiAffinity",
            ));
        }
        Some((Some(canary), None)) => errs.extend(validate_canary(rollout, canary)),
    }
    errs
}

fn validate_template(rollout: &Rollout) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(template) = rollout.spec.template.as_ref() else {
        errs.push(required("spec.template.spec.containers", ""));
        return errs;
    };
    // The selector must select the template's labels (ValidatePodTemplateSpecForReplicaSet).
    if let Some(sel) = &rollout.spec.selector {
        let labels = template.labels();
        let mut matches = true;
        for (k, v) in sel.match_labels.iter().flatten() {
            if labels.get(k) != Some(v) {
                matches = false;
            }
        }
        for expr in sel.match_expressions.iter().flatten() {
            let values = expr.values.clone().unwrap_or_default();
            let ok = match expr.operator.as_str() {
                "In" => labels.get(&expr.key).is_some_and(|v| values.contains(v)),
                "NotIn" => labels.get(&expr.key).is_none_or(|v| !values.contains(v)),
                "Exists" => labels.contains_key(&expr.key),
                "DoesNotExist" => !labels.contains_key(&expr.key),
                _ => false,
            };
            if !ok {
                matches = false;
            }
        }
        if !matches {
            errs.push(invalid(
                "spec.template.metadata.labels",
                json(labels),
                "`selector` does not match template `labels`",
            ));
        }
    }
    let containers = template
        .spec
        .as_ref()
        .map(|s| s.containers.len())
        .unwrap_or(0);
    if containers == 0 {
        errs.push(required("spec.template.spec.containers", ""));
    }
    if let Some(spec) = template.spec.as_ref() {
        errs.extend(validate_containers(spec));
    }
    if let Some(policy) = template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        && policy != "Always"
    {
        errs.push(FieldError {
            field: "spec.template.spec.restartPolicy".into(),
            kind: FieldErrorKind::NotSupported(q(policy)),
            detail: "supported values: \"Always\"".into(),
        });
    }
    errs
}

/// Kubernetes' `IsDNS1123Label` message.
const DNS1123_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(ok)
        && b.last().is_some_and(ok)
        && b.iter().all(|c| ok(c) || *c == b'-')
}

/// The cheap part of Kubernetes' container validation (`validateInitContainers`,
/// `validateContainers`): names present, RFC 1123 labels and unique across init and regular
/// containers; images present.
fn validate_containers(spec: &k8s_openapi::api::core::v1::PodSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let groups = [
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or(&[]),
        ),
        ("containers", spec.containers.as_slice()),
    ];
    for (key, list) in groups {
        for (i, c) in list.iter().enumerate() {
            let path = format!("spec.template.spec.{key}[{i}]");
            if c.name.is_empty() {
                errs.push(required(format!("{path}.name"), ""));
            } else if !is_dns1123_label(&c.name) {
                errs.push(invalid(format!("{path}.name"), q(&c.name), DNS1123_LABEL));
            } else if seen.contains(&c.name.as_str()) {
                errs.push(FieldError {
                    field: format!("{path}.name"),
                    kind: FieldErrorKind::Duplicate(q(&c.name)),
                    detail: String::new(),
                });
            } else {
                seen.push(&c.name);
            }
            if c.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
                errs.push(required(format!("{path}.image"), ""));
            }
        }
    }
    errs
}

fn validate_anti_affinity(aa: Option<&rollouts_api::AntiAffinity>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(aa) = aa else { return errs };
    let preferred = aa
        .preferred_during_scheduling_ignored_during_execution
        .as_ref();
    let required_ = aa
        .required_during_scheduling_ignored_during_execution
        .as_ref();
    if preferred.is_none() == required_.is_none() {
        errs.push(invalid(
            path,
            q(&format!(
                "antiAffinity.PreferredDuringSchedulingIgnoredDuringExecution: {} antiAffinity.RequiredDuringSchedulingIgnoredDuringExecution: {}",
                preferred.is_some(),
                required_.is_some()
            )),
            "AntiAffinity must have exactly one strategy listed",
        ));
    }
    if let Some(p) = preferred
        && !(1..=100).contains(&p.weight)
    {
        errs.push(invalid(
            format!("{path}.weight"),
            p.weight.to_string(),
            "AntiAffinity weight must be between 1-100",
        ));
    }
    errs
}

fn requires_canary_stable_services(canary: &CanaryStrategy) -> bool {
    let Some(tr) = &canary.traffic_routing else {
        return false;
    };
    (tr.alb.is_some() && canary.ping_pong.is_none())
        || (tr
            .istio
            .as_ref()
            .is_some_and(|i| i.destination_rule.is_none())
            && canary.ping_pong.is_none())
        || tr.smi.is_some()
        || tr.apisix.is_some()
        || tr.ambassador.is_some()
        || tr.nginx.is_some()
        || tr.app_mesh.is_some()
        || tr.traefik.is_some()
}

fn validate_string_match(m: &StringMatch, path: &str, alb: bool) -> Option<FieldError> {
    let set = [&m.exact, &m.regex, &m.prefix]
        .iter()
        .filter(|v| v.as_deref().is_some_and(|s| !s.is_empty()))
        .count();
    if alb {
        let exact = m.exact.as_deref().is_some_and(|s| !s.is_empty());
        if !exact || set != 1 {
            return Some(invalid(
                path,
                json(m),
                "SetHeaderRoute match value invalid. ALB supports 'exact' value only",
            ));
        }
        return None;
    }
    if set > 1 {
        return Some(invalid(
            path,
            json(m),
            "StringMatch match value must have exactly one of the following: exact, regex, prefix",
        ));
    }
    if set == 0 {
        return Some(invalid(
            path,
            json(m),
            "StringMatch value missed, match value must have one of the following: exact, regex, prefix",
        ));
    }
    None
}

fn validate_canary(rollout: &Rollout, canary: &CanaryStrategy) -> Vec<FieldError> {
    let base = "spec.strategy.canary";
    let mut errs = Vec::new();
    let surge = int_or_str(&canary.max_surge_or_default());
    let unavailable = int_or_str(&canary.max_unavailable_or_default());
    if validation_value(&surge) == 0 && validation_value(&unavailable) == 0 {
        errs.push(invalid(
            format!("{base}.maxSurge"),
            json(&canary.max_surge_or_default()),
            "MaxSurge and MaxUnavailable both can not be zero",
        ));
    }
    let canary_svc = canary.canary_service.as_deref().unwrap_or("");
    let stable_svc = canary.stable_service.as_deref().unwrap_or("");
    if !canary_svc.is_empty() && !stable_svc.is_empty() && canary_svc == stable_svc {
        errs.push(invalid(
            format!("{base}.stableService"),
            q(stable_svc),
            DUPLICATED_SERVICES_CANARY,
        ));
    }
    let tr = canary.traffic_routing.as_ref();
    if let Some(pp) = &canary.ping_pong {
        if let Some(tr) = tr
            && tr.alb.is_none()
            && tr.istio.is_none()
            && tr.plugins.as_ref().is_none_or(|p| p.is_empty())
        {
            errs.push(invalid(
                format!("{base}.trafficRouting.alb"),
                "null",
                "Ping-pong feature works with the ALB, Istio, and plugin-based traffic routers only",
            ));
        }
        let msg = "Ping service and Pong service must to be set to use Ping-Pong feature";
        if pp.ping_service.is_empty() {
            errs.push(invalid(format!("{base}.pingPong.pingService"), q(""), msg));
        }
        if pp.pong_service.is_empty() {
            errs.push(invalid(format!("{base}.pingPong.pongService"), q(""), msg));
        }
        if pp.ping_service == pp.pong_service {
            errs.push(invalid(
                format!("{base}.pingPong.pingService"),
                q(&pp.ping_service),
                "This rollout uses the same service for the ping and pong services, but two different services are required.",
            ));
        }
        if let Some(alb) = tr.and_then(|t| t.alb.as_ref())
            && alb.root_service.as_deref().unwrap_or("").is_empty()
        {
            errs.push(invalid(
                format!("{base}.trafficRouting.alb.rootService"),
                q(""),
                "Root service field is required for the configuration with ALB and ping-pong feature enabled",
            ));
        }
    }
    if requires_canary_stable_services(canary) {
        if stable_svc.is_empty() {
            errs.push(invalid(
                format!("{base}.stableService"),
                q(stable_svc),
                INVALID_TRAFFIC_ROUTING,
            ));
        }
        if canary_svc.is_empty() {
            errs.push(invalid(
                format!("{base}.canaryService"),
                q(canary_svc),
                INVALID_TRAFFIC_ROUTING,
            ));
        }
    }
    let dynamic = canary.dynamic_stable_scale == Some(true);
    match tr {
        None => {
            if let Some(d) = canary.scale_down_delay_seconds {
                errs.push(invalid(
                    format!("{base}.scaleDownDelaySeconds"),
                    d.to_string(),
                    "Canary scaleDownDelaySeconds can only be used with traffic routing",
                ));
            }
            if dynamic {
                errs.push(invalid(
                    format!("{base}.dynamicStableScale"),
                    "true",
                    "Canary dynamicStableScale can only be used with traffic routing",
                ));
            }
        }
        Some(tr) => {
            if canary.scale_down_delay_seconds.is_some() && dynamic {
                errs.push(invalid(
                    format!("{base}.dynamicStableScale"),
                    "true",
                    "Canary dynamicStableScale cannot be used with scaleDownDelaySeconds",
                ));
            }
            if let Some(max) = tr.max_traffic_weight
                && tr.nginx.is_none()
                && tr.plugins.as_ref().is_none_or(|p| p.is_empty())
            {
                errs.push(invalid(
                    format!("{base}.trafficRouting.maxTrafficWeight"),
                    max.to_string(),
                    "Canary maxTrafficWeight in traffic routing only supported in Nginx and Plugins",
                ));
            }
        }
    }
    let max_weight = tr.map_or(100, |t| t.max_traffic_weight_or_default());
    let has_plugins = tr.is_some_and(|t| t.plugins.as_ref().is_some_and(|p| !p.is_empty()));
    for (i, step) in canary.steps().iter().enumerate() {
        let sp = format!("{base}.steps[{i}]");
        let exclusive = [
            step.set_weight.is_some(),
            step.pause.is_some(),
            step.experiment.is_some(),
            step.analysis.is_some(),
        ];
        if exclusive.iter().filter(|b| **b).count() > 1 {
            errs.push(invalid(
                sp.clone(),
                q(&format!(
                    "step.Experiment: {} step.Pause: {} step.SetWeight: {} step.Analysis: {}",
                    step.experiment.is_some(),
                    step.pause.is_some(),
                    step.set_weight.is_some(),
                    step.analysis.is_some()
                )),
                INVALID_STEP,
            ));
        }
        let none = step.experiment.is_none()
            && step.pause.is_none()
            && step.set_weight.is_none()
            && step.analysis.is_none()
            && step.set_canary_scale.is_none()
            && step.set_header_route.is_none()
            && step.set_mirror_route.is_none()
            && step.plugin.is_none();
        if none {
            errs.push(invalid(
                sp.clone(),
                q("step.Experiment: true step.Pause: true step.SetWeight: true step.Analysis: true step.SetCanaryScale: true step.SetHeaderRoute: true step.SetMirrorRoute: true step.Plugin: true"),
                INVALID_STEP,
            ));
        }
        if let Some(w) = step.set_weight
            && !(0..=max_weight).contains(&w)
        {
            errs.push(invalid(
                format!("{sp}.setWeight"),
                w.to_string(),
                format!("{INVALID_SET_WEIGHT} {max_weight}"),
            ));
        }
        if let Some(p) = &step.pause {
            let secs = pause_duration_seconds(p.duration.as_ref());
            if secs < 0 {
                errs.push(invalid(
                    format!("{sp}.pause.duration"),
                    secs.to_string(),
                    INVALID_DURATION,
                ));
            }
        }
        if step.set_canary_scale.is_some() && tr.is_none() {
            errs.push(required(
                format!("{base}.trafficRouting"),
                "SetCanaryScale requires TrafficRouting to be set",
            ));
        }
        if let Some(h) = &step.set_header_route {
            let supported = tr
                .is_some_and(|t| t.istio.is_some() || t.alb.is_some() || t.apisix.is_some())
                || has_plugins;
            if !supported {
                errs.push(invalid(
                    format!("{sp}.setHeaderRoute"),
                    json(h),
                    "SetHeaderRoute requires TrafficRouting, supports Istio and ALB and Apisix",
                ));
            } else {
                let alb = tr.is_some_and(|t| t.alb.is_some());
                for (j, m) in h.r#match.iter().flatten().enumerate() {
                    let path = format!("{sp}.setHeaderRoute.match[{j}]");
                    errs.extend(validate_string_match(&m.header_value, &path, alb));
                }
            }
        }
        if let Some(m) = &step.set_mirror_route {
            let supported = tr.is_some_and(|t| t.istio.is_some()) || has_plugins;
            if !supported {
                errs.push(invalid(
                    format!("{sp}.setMirrorRoute"),
                    json(m),
                    "SetMirrorRoute requires TrafficRouting, supports Istio and Plugins",
                ));
            }
            for (j, rm) in m.r#match.iter().flatten().enumerate() {
                let path = format!("{sp}.setMirrorRoute.match[{j}]");
                for sm in [rm.method.as_ref(), rm.path.as_ref()].into_iter().flatten() {
                    errs.extend(validate_string_match(sm, &path, false));
                }
            }
        }
        if let Some(tr) = tr
            && (step.set_header_route.is_some() || step.set_mirror_route.is_some())
        {
            match &tr.managed_routes {
                None => errs.push(required(
                    format!("{base}.trafficRouting.managedRoutes"),
                    format!("{MISSING_FIELD} 'spec.strategy.canary.trafficRouting.managedRoutes'"),
                )),
                Some(routes) => {
                    let names: Vec<(&str, String)> = step
                        .set_header_route
                        .iter()
                        .map(|h| {
                            (
                                h.name.as_deref().unwrap_or(""),
                                format!("{sp}.setHeaderRoute"),
                            )
                        })
                        .chain(
                            step.set_mirror_route
                                .iter()
                                .map(|m| (m.name.as_str(), format!("{sp}.setMirrorRoute"))),
                        )
                        .collect();
                    for (name, path) in names {
                        if !routes.iter().any(|r| r.name == name) {
                            errs.push(invalid(
                                path,
                                q(name),
                                "Steps define a route that does not exist in spec.strategy.canary.trafficRouting.managedRoutes",
                            ));
                        }
                    }
                }
            }
        }
        if let Some(ex) = &step.experiment {
            for (t, template) in ex.templates.iter().enumerate() {
                if let Some(w) = template.weight {
                    let path = format!("{sp}.experiment.templates[{t}].weight");
                    match tr {
                        None => errs.push(invalid(
                            path,
                            w.to_string(),
                            "Experiment template weight cannot be set unless TrafficRouting is enabled",
                        )),
                        Some(t) if t.alb.is_none() && t.smi.is_none() && t.istio.is_none() && !has_plugins => {
                            errs.push(invalid(
                                path,
                                w.to_string(),
                                "Experiment template weight is only available for TrafficRouting with SMI, ALB, Istio and Plugins at this time",
                            ))
                        }
                        _ => {}
                    }
                }
            }
        }
        let args = step
            .analysis
            .iter()
            .flat_map(|a| a.args.iter().flatten())
            .chain(
                step.experiment
                    .iter()
                    .flat_map(|e| e.analyses.iter().flatten())
                    .flat_map(|a| a.args.iter().flatten()),
            );
        for arg in args {
            if let Some(path) = arg
                .value_from
                .as_ref()
                .and_then(|v| v.field_ref.as_ref())
                .map(|f| f.field_path.as_str())
                && path.starts_with("metadata")
                && crate::analysis::metadata_field(rollout, path).is_none()
            {
                errs.push(invalid(
                    format!("{sp}.analyses"),
                    "[]",
                    "Analyses arguments must refer to valid object metadata supported by downwardAPI",
                ));
            }
        }
    }
    errs.extend(validate_anti_affinity(
        canary.anti_affinity.as_ref(),
        &format!("{base}.antiAffinity"),
    ));
    errs
}

/// The Services a strategy names, with the field that names them.
pub fn referenced_services(rollout: &Rollout) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut push = |field: &'static str, name: Option<&str>| {
        if let Some(n) = name
            && !n.is_empty()
        {
            out.push((field, n.to_string()));
        }
    };
    if let Some(bg) = rollout.spec.blue_green() {
        push(
            "spec.strategy.blueGreen.activeService",
            Some(&bg.active_service),
        );
        push(
            "spec.strategy.blueGreen.previewService",
            bg.preview_service.as_deref(),
        );
    } else if let Some(c) = rollout.spec.canary() {
        push(
            "spec.strategy.canary.stableService",
            c.stable_service.as_deref(),
        );
        push(
            "spec.strategy.canary.canaryService",
            c.canary_service.as_deref(),
        );
        if let Some(pp) = &c.ping_pong {
            push(
                "spec.strategy.canary.pingPong.pingService",
                Some(&pp.ping_service),
            );
            push(
                "spec.strategy.canary.pingPong.pongService",
                Some(&pp.pong_service),
            );
        }
    }
    out
}

/// Validates the Services a Rollout names: they exist, their selectors only use labels of the
/// pod template, and no other Rollout manages them.
pub fn validate_references(rollout: &Rollout, services: &[ServiceView]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = rollout.metadata.name.as_deref().unwrap_or("");
    let template_labels = rollout
        .spec
        .template
        .as_ref()
        .map(|t| t.labels().clone())
        .unwrap_or_default();
    for (field, svc_name) in referenced_services(rollout) {
        let Some(svc) = services.iter().find(|s| s.name == svc_name) else {
            errs.push(invalid(
                field,
                q(&svc_name),
                format!("service {} not found", q(&svc_name)),
            ));
            return errs;
        };
        for (k, v) in &svc.selector {
            if k == rollouts_api::labels::POD_TEMPLATE_HASH {
                continue;
            }
            if template_labels.get(k) != Some(v) {
                errs.push(invalid(
                    field,
                    q(&svc_name),
                    format!(
                        "Service {} has unmatch label {} in rollout",
                        q(&svc_name),
                        q(k)
                    ),
                ));
            }
        }
        if let Some(owner) = svc.managed_by()
            && owner != name
        {
            errs.push(invalid(
                field,
                q(&svc_name),
                format!("Service {} is managed by another Rollout", q(&svc_name)),
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests;
