//! `lint -f FILE`: offline validation of manifests with the controller's own validation code.
//!
//! Every document of the file is read strictly: a field the kind does not have is an error
//! (Argo rejects unknown fields too), and so is a value of the wrong type. Rollouts are then
//! validated with [`rollouts_engine::validate`] (what the controller reports as `InvalidSpec`)
//! and against the objects of the same file they name: Services ([`rollouts_engine::
//! validate_references`]: selectors, another Rollout's managed-by annotation), Ingresses (the
//! NGINX stable Ingress or ALB Ingress must route to the stable or root Service) and Istio
//! VirtualServices (the named routes exist and send traffic to both the stable and canary
//! Services, or DestinationRule subsets). A Service, Ingress or VirtualService that is not in
//! the file is not checked. AnalysisTemplates, ClusterAnalysisTemplates, AnalysisRuns and
//! Experiments are checked for unknown fields and types.
//!
//! Each problem names the file, the line and the field: `rollout.yaml:14: spec.strategy.
//! canary.steps[0].setWeight: Invalid value: 120: SetWeight needs to be between 0 and 100`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use rollouts_api::{
    AnalysisRun, AnalysisTemplate, CanaryStrategy, ClusterAnalysisTemplate, Experiment, Rollout,
    labels,
};
use rollouts_engine::{FieldError, ServiceView};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Error;
use crate::yaml::{Document, parse_documents, unknown_fields};

/// One problem found in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line.
    pub line: u64,
    /// The field path and what is wrong there.
    pub message: String,
}

/// `ObjectMeta` fields that Argo's types accept in a pod template's metadata (the API server
/// prunes them): not unknown, only useless.
const TEMPLATE_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

fn tolerated(path: &str) -> bool {
    for prefix in ["spec.template.metadata.", "template.metadata."] {
        if let Some(idx) = path.find(prefix) {
            let rest = &path[idx + prefix.len()..];
            let head = rest.split(['.', '[']).next().unwrap_or("");
            if TEMPLATE_META_FIELDS.contains(&head) {
                return true;
            }
        }
    }
    false
}

/// Decodes `doc` strictly into `T`: type errors and unknown fields become problems.
pub fn decode_strict<T>(doc: &Document) -> Result<T, Vec<Problem>>
where
    T: DeserializeOwned + Serialize,
{
    let typed: T = rollouts_api::decode(&doc.value).map_err(|e| match e {
        rollouts_api::Error::Decode { path, message } => vec![Problem {
            line: doc.line_of(&path),
            message: format!("{path}: {message}"),
        }],
        other => vec![Problem {
            line: doc.line,
            message: other.to_string(),
        }],
    })?;
    let kept = serde_json::to_value(&typed).map_err(|e| {
        vec![Problem {
            line: doc.line,
            message: e.to_string(),
        }]
    })?;
    let unknown: Vec<Problem> = unknown_fields(&doc.value, &kept)
        .into_iter()
        .filter(|p| !tolerated(p))
        .map(|p| Problem {
            line: doc.line_of(&p),
            message: format!(
                "{p}: unknown field {:?}",
                p.rsplit('.').next().unwrap_or(&p)
            ),
        })
        .collect();
    if unknown.is_empty() {
        Ok(typed)
    } else {
        Err(unknown)
    }
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

fn field_problem(doc: &Document, err: &FieldError) -> Problem {
    Problem {
        line: doc.line_of(&err.field),
        message: err.to_string(),
    }
}

/// The objects of a file that Rollouts may name.
#[derive(Default)]
struct References<'a> {
    services: Vec<(ServiceView, &'a Document)>,
    ingresses: BTreeMap<String, Ingress>,
    virtual_services: BTreeMap<String, &'a Value>,
}

/// Lints the text of `file`; an error only when it is not YAML at all.
pub fn lint_text(file: &str, text: &str) -> Result<Vec<Problem>, Error> {
    let docs = parse_documents(file, text)?;
    let mut problems = Vec::new();
    let mut rollouts: Vec<(Rollout, &Document)> = Vec::new();
    let mut refs = References::default();
    for doc in &docs {
        if !doc.value.is_object() {
            problems.push(Problem {
                line: doc.line,
                message: "a manifest must be a mapping".into(),
            });
            continue;
        }
        let (api_version, kind) = doc.type_meta();
        let group = group_of(api_version);
        let result: Result<(), Vec<Problem>> = match (group, kind) {
            ("argoproj.io", "Rollout") => {
                decode_strict::<Rollout>(doc).map(|r| rollouts.push((r, doc)))
            }
            ("argoproj.io", "AnalysisTemplate") => decode_strict::<AnalysisTemplate>(doc).map(drop),
            ("argoproj.io", "ClusterAnalysisTemplate") => {
                decode_strict::<ClusterAnalysisTemplate>(doc).map(drop)
            }
            ("argoproj.io", "AnalysisRun") => decode_strict::<AnalysisRun>(doc).map(drop),
            ("argoproj.io", "Experiment") => decode_strict::<Experiment>(doc).map(drop),
            ("", "Service") => decode_strict::<Service>(doc).map(|svc| {
                refs.services.push((
                    ServiceView {
                        name: svc.metadata.name.clone().unwrap_or_default(),
                        selector: svc.spec.and_then(|s| s.selector).unwrap_or_default(),
                        annotations: svc.metadata.annotations.unwrap_or_default(),
                    },
                    doc,
                ))
            }),
            ("networking.k8s.io", "Ingress") if api_version.ends_with("/v1") => {
                decode_strict::<Ingress>(doc).map(|ing| {
                    refs.ingresses
                        .insert(ing.metadata.name.clone().unwrap_or_default(), ing);
                })
            }
            ("networking.istio.io", "VirtualService") => {
                refs.virtual_services
                    .insert(doc.name().to_string(), &doc.value);
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(mut p) = result {
            problems.append(&mut p);
        }
    }
    let rollout_names: BTreeSet<&str> = rollouts
        .iter()
        .filter_map(|(r, _)| r.metadata.name.as_deref())
        .collect();
    for (ro, doc) in &rollouts {
        let errs = rollouts_engine::validate(ro);
        problems.extend(errs.iter().map(|e| field_problem(doc, e)));
        if !errs.is_empty() {
            continue;
        }
        problems.extend(reference_problems(ro, doc, &refs, &rollout_names));
    }
    problems.sort_by_key(|p| p.line);
    Ok(problems)
}

fn reference_problems(
    ro: &Rollout,
    doc: &Document,
    refs: &References<'_>,
    rollout_names: &BTreeSet<&str>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    // Services: those of the file; a Service not in the file is not checked (placeholder with
    // no selector and no owner). A Service another Rollout of the file names is managed by it.
    let name = ro.metadata.name.as_deref().unwrap_or("");
    let mut views: Vec<ServiceView> = Vec::new();
    for (field, svc) in rollouts_engine::validation::referenced_services(ro) {
        let _ = field;
        match refs.services.iter().find(|(s, _)| s.name == svc) {
            Some((view, _)) => {
                let mut v = view.clone();
                // In a file, a Service is only "managed by another Rollout" if that Rollout is
                // in the file too and names it.
                if v.managed_by()
                    .is_some_and(|o| o != name && !rollout_names.contains(o))
                {
                    v.annotations.remove(labels::MANAGED_BY_ROLLOUTS);
                }
                views.push(v);
            }
            None => views.push(ServiceView {
                name: svc,
                ..ServiceView::default()
            }),
        }
    }
    out.extend(
        rollouts_engine::validate_references(ro, &views)
            .iter()
            .map(|e| field_problem(doc, e)),
    );
    if let Some(canary) = ro.spec.canary() {
        out.extend(ingress_problems(canary, doc, refs));
        out.extend(virtual_service_problems(canary, doc, refs));
    }
    out
}

fn ingress_routes_to(ing: &Ingress, service: &str) -> bool {
    ing.spec
        .iter()
        .flat_map(|s| s.rules.iter().flatten())
        .filter_map(|r| r.http.as_ref())
        .flat_map(|h| h.paths.iter())
        .any(|p| {
            p.backend
                .service
                .as_ref()
                .is_some_and(|s| s.name == service)
        })
}

fn ingress_problems(
    canary: &CanaryStrategy,
    doc: &Document,
    refs: &References<'_>,
) -> Vec<Problem> {
    let Some(tr) = &canary.traffic_routing else {
        return Vec::new();
    };
    let stable = canary.stable_service.clone().unwrap_or_default();
    let mut checks: Vec<(String, String, String)> = Vec::new();
    let base = "spec.strategy.canary.trafficRouting";
    if let Some(nginx) = &tr.nginx {
        if let Some(list) = &nginx.stable_ingresses {
            for (i, n) in list.iter().enumerate() {
                checks.push((
                    format!("{base}.nginx.stableIngresses[{i}]"),
                    n.clone(),
                    stable.clone(),
                ));
            }
        } else if let Some(n) = &nginx.stable_ingress {
            checks.push((
                format!("{base}.nginx.stableIngress"),
                n.clone(),
                stable.clone(),
            ));
        }
    } else if let Some(alb) = &tr.alb {
        let svc = alb
            .root_service
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| stable.clone());
        if let Some(list) = &alb.ingresses {
            for (i, n) in list.iter().enumerate() {
                checks.push((format!("{base}.alb.ingresses[{i}]"), n.clone(), svc.clone()));
            }
        } else if let Some(n) = &alb.ingress {
            checks.push((format!("{base}.alb.ingress"), n.clone(), svc.clone()));
        }
    }
    let mut out = Vec::new();
    for (field, ingress, service) in checks {
        if let Some(ing) = refs.ingresses.get(&ingress)
            && !ingress_routes_to(ing, &service)
        {
            out.push(Problem {
                line: doc.line_of(&field),
                message: format!(
                    "{field}: Invalid value: {ingress:?}: ingress `{ingress}` has no rules using service {service} backend"
                ),
            });
        }
    }
    out
}

/// The hosts and subsets a VirtualService route sends traffic to.
fn destinations(route: &Value) -> Vec<(String, String)> {
    route["route"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let host = d["destination"]["host"].as_str().unwrap_or("");
            let host = match host.find('.') {
                Some(i) if i > 0 => &host[..i],
                Some(_) => "",
                None => host,
            };
            (
                host.to_string(),
                d["destination"]["subset"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

fn check_destinations(
    route: &Value,
    stable: &str,
    canary: &str,
    rule: Option<&rollouts_api::IstioDestinationRule>,
) -> Result<(), String> {
    let dests = destinations(route);
    if let Some(dr) = rule {
        if !dests
            .iter()
            .any(|(_, s)| !dr.canary_subset_name.is_empty() && *s == dr.canary_subset_name)
        {
            return Err(format!(
                "Canary DestinationRule subset '{}' not found in route",
                dr.canary_subset_name
            ));
        }
        if !dests
            .iter()
            .any(|(_, s)| !dr.stable_subset_name.is_empty() && *s == dr.stable_subset_name)
        {
            return Err(format!(
                "Stable DestinationRule subset '{}' not found in route",
                dr.stable_subset_name
            ));
        }
    } else {
        if !dests.iter().any(|(h, _)| !canary.is_empty() && h == canary) {
            return Err(format!("Canary Service '{canary}' not found in route"));
        }
        if !dests.iter().any(|(h, _)| !stable.is_empty() && h == stable) {
            return Err(format!("Stable Service '{stable}' not found in route"));
        }
    }
    Ok(())
}

fn route_ports(route: &Value) -> BTreeSet<i64> {
    route["match"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["port"].as_i64().unwrap_or(0))
        .collect()
}

fn virtual_service_problems(
    canary: &CanaryStrategy,
    doc: &Document,
    refs: &References<'_>,
) -> Vec<Problem> {
    let Some(istio) = canary
        .traffic_routing
        .as_ref()
        .and_then(|t| t.istio.as_ref())
    else {
        return Vec::new();
    };
    let (field, services) = match (&istio.virtual_services, &istio.virtual_service) {
        (Some(list), _) if !list.is_empty() => (
            "spec.strategy.canary.trafficRouting.istio.virtualServices",
            list.clone(),
        ),
        (_, Some(one)) => (
            "spec.strategy.canary.trafficRouting.istio.virtualService",
            vec![one.clone()],
        ),
        _ => return Vec::new(),
    };
    let stable = canary.stable_service.clone().unwrap_or_default();
    let canary_svc = canary.canary_service.clone().unwrap_or_default();
    let managed: BTreeSet<String> = canary
        .traffic_routing
        .as_ref()
        .and_then(|t| t.managed_routes.as_ref())
        .into_iter()
        .flatten()
        .map(|m| m.name.clone())
        .collect();
    let rule = istio.destination_rule.as_ref();
    let mut out = Vec::new();
    for (i, vs) in services.iter().enumerate() {
        let vs_name = vs.name.split('.').next().unwrap_or(&vs.name);
        let Some(obj) = refs.virtual_services.get(vs_name) else {
            continue;
        };
        let fld = if field.ends_with('s') {
            format!("{field}[{i}].name")
        } else {
            format!("{field}.name")
        };
        let mut errs = Vec::new();
        let http = obj["spec"]["http"].as_array();
        let tls = obj["spec"]["tls"].as_array();
        let tcp = obj["spec"]["tcp"].as_array();
        if http.is_none() && tls.is_none() && tcp.is_none() {
            errs.push(
                "Unable to get any of the HTTP, TCP or TLS routes for the Istio VirtualService"
                    .to_string(),
            );
        }
        if let Some(routes) = http {
            let names: Vec<String> = vs.routes.clone().unwrap_or_default();
            let result = (|| -> Result<(), String> {
                let mut indexes = Vec::new();
                if names.is_empty() {
                    if routes.len() == 1 {
                        indexes.push(0);
                    } else if let Some(i) = routes
                        .iter()
                        .position(|r| r["name"].as_str().unwrap_or("").is_empty())
                    {
                        indexes.push(i);
                    }
                }
                for n in &names {
                    match routes.iter().position(|r| r["name"].as_str() == Some(n)) {
                        Some(i) => indexes.push(i),
                        None => {
                            return Err(format!(
                                "HTTP Route '{n}' is not found in the defined Virtual Service."
                            ));
                        }
                    }
                }
                for i in indexes {
                    check_destinations(&routes[i], &stable, &canary_svc, rule)?;
                }
                let unmanaged = routes
                    .iter()
                    .filter(|r| !managed.contains(r["name"].as_str().unwrap_or("")))
                    .count();
                if names.is_empty() && unmanaged > 1 {
                    return Err("spec.http[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.routes".into());
                }
                Ok(())
            })();
            if let Err(e) = result {
                errs.push(format!(
                    "Istio VirtualService has invalid HTTP routes. Error: {e}"
                ));
            }
        }
        if let Some(routes) = tls {
            let wanted = vs.tls_routes.clone().unwrap_or_default();
            let result = (|| -> Result<(), String> {
                let mut indexes = Vec::new();
                if wanted.is_empty() {
                    if !routes.is_empty() {
                        indexes.push(0);
                    }
                } else {
                    for w in &wanted {
                        let port = w.port.unwrap_or(0);
                        let sni: BTreeSet<String> = w
                            .sni_hosts
                            .clone()
                            .unwrap_or_default()
                            .into_iter()
                            .collect();
                        let found: Vec<usize> = routes
                            .iter()
                            .enumerate()
                            .filter(|(_, r)| {
                                let ports = route_ports(r);
                                let hosts: BTreeSet<String> = r["match"]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .flat_map(|m| m["sniHosts"].as_array().into_iter().flatten())
                                    .filter_map(|h| h.as_str().map(str::to_string))
                                    .collect();
                                ports.len() <= 1
                                    && ports.iter().next().copied().unwrap_or(0) == port
                                    && sni.is_subset(&hosts)
                            })
                            .map(|(i, _)| i)
                            .collect();
                        if found.is_empty() {
                            return Err(
                                "No matching TLS routes found in the defined Virtual Service."
                                    .into(),
                            );
                        }
                        indexes.extend(found);
                    }
                }
                for i in indexes {
                    check_destinations(&routes[i], &stable, &canary_svc, rule)?;
                }
                if wanted.is_empty() && routes.len() > 1 {
                    return Err("spec.tls[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.tlsRoutes".into());
                }
                Ok(())
            })();
            if let Err(e) = result {
                errs.push(format!(
                    "Istio VirtualService has invalid TLS routes. Error: {e}"
                ));
            }
        }
        if let Some(routes) = tcp {
            let wanted = vs.tcp_routes.clone().unwrap_or_default();
            let result = (|| -> Result<(), String> {
                let mut indexes = Vec::new();
                if wanted.is_empty() {
                    if !routes.is_empty() {
                        indexes.push(0);
                    }
                } else {
                    for w in &wanted {
                        let port = w.port.unwrap_or(0);
                        let found: Vec<usize> = routes
                            .iter()
                            .enumerate()
                            .filter(|(_, r)| {
                                let ports = route_ports(r);
                                ports.len() <= 1
                                    && ports.iter().next().copied().unwrap_or(0) == port
                            })
                            .map(|(i, _)| i)
                            .collect();
                        if found.is_empty() {
                            return Err(
                                "No matching TCP routes found in the defined Virtual Service."
                                    .into(),
                            );
                        }
                        indexes.extend(found);
                    }
                }
                for i in indexes {
                    check_destinations(&routes[i], &stable, &canary_svc, rule)?;
                }
                if wanted.is_empty() && routes.len() > 1 {
                    return Err("spec.tcp[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.tcpRoutes".into());
                }
                Ok(())
            })();
            if let Err(e) = result {
                errs.push(format!(
                    "Istio VirtualService has invalid TCP routes. Error: {e}"
                ));
            }
        }
        for e in errs {
            out.push(Problem {
                line: doc.line_of(&fld),
                message: format!("{fld}: Invalid value: {:?}: {e}", vs_name),
            });
        }
    }
    out
}

/// Renders problems as `file:line: message` lines.
pub fn render(file: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{file}:{}: {}\n", p.line, p.message))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint(text: &str) -> Vec<String> {
        lint_text("t.yaml", text)
            .unwrap()
            .into_iter()
            .map(|p| format!("{}: {}", p.line, p.message))
            .collect()
    }

    const GOOD: &str = "\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
      creationTimestamp: null
    spec:
      containers:
      - name: app
        image: nginx
        resources:
          limits: {cpu: 1}
  strategy:
    canary:
      steps:
      - setWeight: 20
      - pause: {duration: 10}
";

    #[test]
    fn a_good_rollout_has_no_problems() {
        assert_eq!(lint(GOOD), Vec::<String>::new());
    }

    #[test]
    fn unknown_fields_name_field_and_line() {
        // A step is decoded strictly by the API types themselves (their message lists the
        // step kinds) ...
        let bad = GOOD.replace("      - setWeight: 20", "      - setWeigth: 20");
        let got = lint(&bad);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("22: spec.strategy.canary.steps[0].setWeigth: unknown field `setWeigth`, expected one of `setWeight`"),
            "{got:?}"
        );
        // ... other fields by comparing what the types kept.
        let bad = GOOD.replace("  replicas: 2", "  replica: 2");
        assert_eq!(
            lint(&bad),
            vec!["6: spec.replica: unknown field \"replica\""]
        );
        let bad = GOOD.replace(
            "        image: nginx",
            "        image: nginx\n        imagePolicy: Always",
        );
        assert_eq!(
            lint(&bad),
            vec!["17: spec.template.spec.containers[0].imagePolicy: unknown field \"imagePolicy\""]
        );
    }

    #[test]
    fn object_meta_fields_in_a_pod_template_are_accepted_as_argo_does() {
        let with_name = GOOD.replace(
            "      creationTimestamp: null",
            "      creationTimestamp: null\n      name: ignored-by-the-api-server",
        );
        assert_eq!(lint(&with_name), Vec::<String>::new());
        let typo = GOOD.replace("      creationTimestamp: null", "      lables: {a: b}");
        assert_eq!(
            lint(&typo),
            vec!["12: spec.template.metadata.lables: unknown field \"lables\""]
        );
    }

    #[test]
    fn validation_errors_name_field_and_line() {
        let bad = GOOD.replace("setWeight: 20", "setWeight: 120");
        assert_eq!(
            lint(&bad),
            vec![
                "22: spec.strategy.canary.steps[0].setWeight: Invalid value: 120: SetWeight needs to be between 0 and 100"
            ]
        );
    }
}
