//! "Verify before advancing", end to end, for every traffic router: the real controller holds a
//! timed pause at weight 30, the router's object is edited by hand (a PUT, as `kubectl edit`
//! or `kubectl replace` would do) to another weight, and the controller must put 30 back before
//! the Rollout reaches its next step (`setWeight: 60`), then walk on.
//!
//! The order is proven from the API server's own history rather than from timing: once the
//! Rollout is at its next pause, the test replays the router object's changes since the edit
//! and the Rollout's changes since the pause began (watches from those resourceVersions) and
//! requires: the edited weight, then 30 again (the repair), then 60; and the first Rollout
//! version with `currentStepIndex >= 2` written after the repair. resourceVersions are compared
//! as numbers: in one etcd they are its revisions, ordered across kinds (our local cluster has
//! one etcd).
//!
//! Each router is described by a [`Case`]: its `trafficRouting` block, the objects to create
//! (built by the router's own test module) and the [`Target`] object holding the weight, with
//! [`Holds`] saying how the weight is read and edited. [`Target`] is also used by the combined
//! NGINX + SMI test in `router_smi`.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use e2e::{
    Test, TestContext,
    controller::{Controller, Options},
    rollouts,
};
use futures::{StreamExt, future::BoxFuture};
use kube::{
    Api,
    api::{DynamicObject, PostParams, WatchEvent, WatchParams},
};
use serde_json::{Value, json};

use crate::router_support as support;

pub fn tests() -> Vec<Test> {
    vec![
        e2e::test!(istio_weight_restored_before_advancing),
        e2e::test!(nginx_weight_restored_before_advancing),
        e2e::test!(smi_weight_restored_before_advancing),
        e2e::test!(alb_weight_restored_before_advancing),
        e2e::test!(apisix_weight_restored_before_advancing),
        e2e::test!(traefik_weight_restored_before_advancing),
        e2e::test!(ambassador_weight_restored_before_advancing),
        e2e::test!(gatewayapi_weight_restored_before_advancing),
        e2e::test!(appmesh_weight_restored_before_advancing),
    ]
}

/// Where an object keeps the canary weight of a Rollout whose Services are `<prefix>-canary`
/// and `<prefix>-stable`.
#[derive(Clone, Copy, Debug)]
pub enum Holds {
    /// A list (JSON pointer `list`) of entries named by the field at pointer `key`, the canary
    /// and the stable one each with a `weight` (an integer or a string).
    Entries {
        list: &'static str,
        key: &'static str,
    },
    /// NGINX's `nginx.ingress.kubernetes.io/canary-weight` annotation.
    NginxAnnotation,
    /// `spec.weight` (Ambassador's canary Mapping).
    SpecWeight,
    /// The ALB action annotation of the `<prefix>-stable` Service: target groups with weights.
    AlbAction,
}

const NGINX_WEIGHT: &str = "nginx.ingress.kubernetes.io/canary-weight";

/// The object holding a router's canary weight.
#[derive(Clone, Debug)]
pub struct Target {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    /// The object's name.
    pub object: String,
    /// The Rollout's Services are `<prefix>-canary` and `<prefix>-stable`.
    pub prefix: String,
    pub holds: Holds,
}

fn integer(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

/// `w` as the same JSON type as `like` (a string weight stays a string).
fn integer_like(like: &Value, w: i64) -> Value {
    if like.is_string() {
        json!(w.to_string())
    } else {
        json!(w)
    }
}

impl Target {
    pub fn api(&self, ctx: &TestContext) -> Api<DynamicObject> {
        support::api(ctx, self.group, self.version, self.kind, self.plural)
    }

    fn alb_annotation(&self) -> String {
        format!("alb.ingress.kubernetes.io/actions.{}-stable", self.prefix)
    }

    /// The canary weight `object` holds (`None`: none yet); fails when the canary and stable
    /// weights do not add up to 100.
    pub fn weight_in(&self, object: &Value) -> Result<Option<i32>> {
        let (canary, stable) = (
            format!("{}-canary", self.prefix),
            format!("{}-stable", self.prefix),
        );
        let pair = |entries: &[Value], key: &str, weight_field: &str| {
            let find = |name: &str| {
                entries
                    .iter()
                    .find(|e| e.pointer(key).and_then(Value::as_str) == Some(name))
                    .and_then(|e| integer(&e[weight_field]))
            };
            match (find(&canary), find(&stable)) {
                (Some(c), Some(s)) => {
                    ensure!(c + s == 100, "weights do not add up: {entries:?}");
                    Ok(Some(c))
                }
                _ => Ok(None),
            }
        };
        let weight = match self.holds {
            Holds::Entries { list, key } => {
                let entries = object
                    .pointer(list)
                    .and_then(Value::as_array)
                    .with_context(|| format!("{list} of {}", self.object))?;
                pair(entries, key, "weight")?
            }
            Holds::NginxAnnotation => object["metadata"]["annotations"][NGINX_WEIGHT]
                .as_str()
                .map(str::parse)
                .transpose()?,
            Holds::SpecWeight => object["spec"]["weight"].as_i64(),
            Holds::AlbAction => {
                let Some(text) = object["metadata"]["annotations"][self.alb_annotation()].as_str()
                else {
                    return Ok(None);
                };
                let action: Value = serde_json::from_str(text)?;
                let groups = action["ForwardConfig"]["TargetGroups"]
                    .as_array()
                    .with_context(|| format!("TargetGroups in {text}"))?;
                pair(groups, "/ServiceName", "Weight")?
            }
        };
        weight.map(i32::try_from).transpose().map_err(Into::into)
    }

    /// `object` with canary weight `w` (and the stable one 100 - w), as a user would edit it.
    pub fn with_weight(&self, object: &Value, w: i64) -> Result<Value> {
        let (canary, stable) = (
            format!("{}-canary", self.prefix),
            format!("{}-stable", self.prefix),
        );
        let set = |entries: &mut Vec<Value>, key: &str, field: &str| -> Result<()> {
            for (name, weight) in [(&canary, w), (&stable, 100 - w)] {
                let entry = entries
                    .iter_mut()
                    .find(|e| e.pointer(key).and_then(Value::as_str) == Some(name.as_str()))
                    .with_context(|| format!("no entry {name}"))?;
                entry[field] = integer_like(&entry[field], weight);
            }
            Ok(())
        };
        let mut edited = object.clone();
        match self.holds {
            Holds::Entries { list, key } => {
                let entries = edited
                    .pointer_mut(list)
                    .and_then(Value::as_array_mut)
                    .with_context(|| format!("{list} of {}", self.object))?;
                set(entries, key, "weight")?;
            }
            Holds::NginxAnnotation => {
                edited["metadata"]["annotations"][NGINX_WEIGHT] = json!(w.to_string());
            }
            Holds::SpecWeight => edited["spec"]["weight"] = json!(w),
            Holds::AlbAction => {
                let key = self.alb_annotation();
                let text = object["metadata"]["annotations"][&key]
                    .as_str()
                    .with_context(|| format!("no {key}"))?;
                let mut action: Value = serde_json::from_str(text)?;
                let groups = action["ForwardConfig"]["TargetGroups"]
                    .as_array_mut()
                    .with_context(|| format!("TargetGroups in {text}"))?;
                set(groups, "/ServiceName", "Weight")?;
                edited["metadata"]["annotations"][&key] = json!(serde_json::to_string(&action)?);
            }
        }
        Ok(edited)
    }

    /// The canary weight the object holds now (`None`: no object or no weight yet).
    pub async fn read(&self, ctx: &TestContext) -> Result<Option<i32>> {
        match self.api(ctx).get_opt(&self.object).await? {
            Some(object) => self.weight_in(&serde_json::to_value(object)?),
            None => Ok(None),
        }
    }

    /// Replaces the object with one holding canary weight `w` (retrying on a conflict);
    /// returns the resourceVersion written.
    pub async fn edit(&self, ctx: &TestContext, w: i64) -> Result<u64> {
        let api = self.api(ctx);
        for _ in 0..5 {
            let current = support::get(&api, &self.object).await?;
            let edited: DynamicObject = serde_json::from_value(self.with_weight(&current, w)?)?;
            match api
                .replace(&self.object, &PostParams::default(), &edited)
                .await
            {
                Ok(written) => return resource_version(&serde_json::to_value(written)?),
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(e).with_context(|| format!("editing {}", self.object)),
            }
        }
        bail!("editing {}: conflicts every time", self.object)
    }
}

/// `metadata.resourceVersion` as a number.
pub fn resource_version(object: &Value) -> Result<u64> {
    let rv = object["metadata"]["resourceVersion"]
        .as_str()
        .context("no resourceVersion")?;
    rv.parse()
        .with_context(|| format!("resourceVersion {rv:?} is not a number"))
}

/// The versions of `name` written after resourceVersion `since`, oldest first, up to the first
/// one `last` accepts (a watch from `since`: the API server replays what happened since).
pub async fn history(
    api: &Api<DynamicObject>,
    name: &str,
    since: u64,
    last: impl Fn(&Value) -> bool,
) -> Result<Vec<(u64, Value)>> {
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(20);
    let mut stream = api.watch(&params, &since.to_string()).await?.boxed();
    let mut seen = Vec::new();
    while let Some(event) = stream.next().await {
        let object = match event? {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => o,
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(e) => bail!("watching {name}: {e:?}"),
        };
        let object = serde_json::to_value(object)?;
        let done = last(&object);
        seen.push((resource_version(&object)?, object));
        if done {
            return Ok(seen);
        }
    }
    bail!(
        "the history of {name} since {since} ended early: {:?}",
        seen.iter().map(|(rv, _)| rv).collect::<Vec<_>>()
    )
}

/// How a router is set up for the test.
pub struct Case {
    /// The Rollout; its Services are `<name>-stable` and `<name>-canary`.
    pub name: &'static str,
    /// Installs the router's CRDs.
    pub install: fn(TestContext) -> BoxFuture<'static, Result<()>>,
    pub traffic_routing: Value,
    /// Created before the Rollout.
    pub objects: Vec<Value>,
    pub target: Target,
}

fn no_crds(_: TestContext) -> BoxFuture<'static, Result<()>> {
    Box::pin(async { Ok(()) })
}

fn entries(list: &'static str, key: &'static str) -> Holds {
    Holds::Entries { list, key }
}

fn target(
    (group, version, kind, plural): (&'static str, &'static str, &'static str, &'static str),
    object: &str,
    prefix: &str,
    holds: Holds,
) -> Target {
    Target {
        group,
        version,
        kind,
        plural,
        object: object.into(),
        prefix: prefix.into(),
        holds,
    }
}

const INGRESS: (&str, &str, &str, &str) = ("networking.k8s.io", "v1", "Ingress", "ingresses");

/// NGINX: the canary Ingress `<name>-<name>-canary` made from the stable Ingress `name`.
pub fn nginx_target(name: &str) -> Target {
    target(
        INGRESS,
        &format!("{name}-{name}-canary"),
        name,
        Holds::NginxAnnotation,
    )
}

/// SMI: the TrafficSplit `name` (v1alpha1) the router creates for the root Service `name`.
pub fn smi_target(name: &str) -> Target {
    target(
        (
            "split.smi-spec.io",
            "v1alpha1",
            "TrafficSplit",
            "trafficsplits",
        ),
        name,
        name,
        entries("/spec/backends", "/service"),
    )
}

/// Runs the scenario for `case` (see the module documentation).
pub async fn restores_before_advancing(ctx: TestContext, case: Case) -> Result<()> {
    (case.install)(ctx.clone()).await?;
    ctx.install_crds().await?;
    let ctl = Controller::start(&ctx, Options::default()).await?;
    let result = scenario(&ctx, &case).await;
    result.with_context(|| {
        format!(
            "--- controller log (last 60 lines) ---\n{}",
            ctl.log_tail(60)
        )
    })
}

/// Whether the status records canary weight `weight`, verified by the routers.
pub fn at_weight(ro: &Value, weight: i64) -> bool {
    let w = &ro["status"]["canary"]["weights"];
    w["canary"]["weight"] == weight && w["verified"] == true
}

async fn scenario(ctx: &TestContext, case: &Case) -> Result<()> {
    let name = case.name;
    let step = Duration::from_secs(60);
    rollouts::apply(ctx, rollouts::service(&format!("{name}-stable"), name)).await?;
    rollouts::apply(ctx, rollouts::service(&format!("{name}-canary"), name)).await?;
    for object in &case.objects {
        rollouts::apply(ctx, object.clone()).await?;
    }
    rollouts::apply(
        ctx,
        rollouts::canary_rollout(
            name,
            2,
            "registry.invalid/app:1",
            json!({
                "stableService": format!("{name}-stable"),
                "canaryService": format!("{name}-canary"),
                "trafficRouting": case.traffic_routing,
                "steps": [{"setWeight": 30}, {"pause": {"duration": 3}},
                          {"setWeight": 60}, {"pause": {}}]
            }),
        ),
    )
    .await?;
    rollouts::wait_for(ctx, name, step, "the initial deploy", rollouts::healthy).await?;
    rollouts::set_image(ctx, name, "registry.invalid/app:2").await?;
    let paused = rollouts::wait_for(ctx, name, step, "the timed pause at weight 30", |r| {
        rollouts::paused_at(r, 1) && at_weight(r, 30)
    })
    .await?;
    let target = &case.target;
    ensure!(
        target.read(ctx).await? == Some(30),
        "weight 30 at the pause"
    );

    let edited = target.edit(ctx, 90).await?;
    let advanced = rollouts::wait_for(ctx, name, step, "the pause at weight 60", |r| {
        rollouts::paused_at(r, 3) && at_weight(r, 60)
    })
    .await?;
    ensure!(
        target.read(ctx).await? == Some(60),
        "weight 60 at the second pause"
    );

    // What the router object went through after the edit: 30 again, then 60.
    let api = target.api(ctx);
    let changes = history(&api, &target.object, edited - 1, |o| {
        target.weight_in(o).ok().flatten() == Some(60)
    })
    .await?;
    let weights: Vec<(u64, Option<i32>)> = changes
        .iter()
        .map(|(rv, o)| Ok((*rv, target.weight_in(o)?)))
        .collect::<Result<_>>()?;
    ensure!(
        weights.first() == Some(&(edited, Some(90))),
        "the history does not start with the edit at {edited}: {weights:?}"
    );
    let Some(&(repaired, _)) = weights.iter().find(|(_, w)| *w == Some(30)) else {
        bail!("the edited weight was never put back to 30: {weights:?}");
    };

    // The Rollout reached step 2 only after the repair.
    let ro_changes = history(
        &rollouts::rollouts(ctx),
        name,
        resource_version(&paused)?,
        |r| rollouts::step(r) >= 2,
    )
    .await?;
    let Some((moved, _)) = ro_changes.last() else {
        bail!("no change of the Rollout after the pause");
    };
    ensure!(
        edited < *moved,
        "the pause was over before the edit (edit {edited}, step 2 at {moved}): the test could not \
         check anything"
    );
    ensure!(
        repaired < *moved,
        "the Rollout moved to step 2 (at {moved}) before weight 30 was put back (at {repaired}); \
         router object history: {weights:?}"
    );
    ensure!(
        rollouts::step(&advanced) == 3,
        "{}",
        rollouts::summary(&advanced)
    );
    Ok(())
}

async fn istio_weight_restored_before_advancing(ctx: TestContext) -> Result<()> {
    let name = "reviews";
    let case = Case {
        name,
        install: |ctx| Box::pin(async move { support::install_istio(&ctx).await }),
        traffic_routing: json!({"istio": {"virtualService": {"name": name, "routes": ["primary"]}}}),
        objects: vec![crate::router_istio::primary_virtual_service(name)],
        target: target(
            (
                "networking.istio.io",
                "v1alpha3",
                "VirtualService",
                "virtualservices",
            ),
            name,
            name,
            entries("/spec/http/0/route", "/destination/host"),
        ),
    };
    restores_before_advancing(ctx, case).await
}

async fn nginx_weight_restored_before_advancing(ctx: TestContext) -> Result<()> {
    let name = "storefront";
    let case = Case {
        name,
        install: no_crds,
        traffic_routing: json!({"nginx": {"stableIngress": name}}),
        objects: vec![crate::router_nginx::stable_ingress(name)],
        target: nginx_target(name),
    };
    restores_before_advancing(ctx, case).await
}

async fn smi_weight_restored_before_advancing(ctx: TestContext) -> Result<()> {
    let name = "inventory";
    let case = Case {
        name,
        install: |ctx| Box::pin(async move { support::install_smi(&ctx).await }),
        traffic_routing: json!({"smi": {"rootService": name}}),
        objects: Vec::new(),
        target: smi_target(name),
    };
    restores_before_advancing(ctx, case).await
}

async fn alb_weight_restored_before_advancing(ctx: TestContext) -> Result<()> {
    let name = "billing";
    let case = Case {
        name,
        install: no_crds,
        traffic_routing: json!({"alb": {"ingress": name, "servicePort": 80}}),
        objects: vec![crate::router_alb::stable_ingress(name)],
        target: target(INGRESS, name, name, Holds::AlbAction),
    };
    restores_before_advancing(ctx, case).await
}

async fn apisix_weight_restored_before_advancing(ctx: TestContext) -> Result<()> {
    let name = "profile";
    let case = Case {
        name,
        install: |ctx| Box::pin(async move { crate::router_apisix::install(&ctx).await }),
        traffic_routing: json!({"apisix": {"route": {"name": "profile-route", "rules": ["profile-rule"]}}}),
        objects: vec![crate::router_apisix::main_route("profile-route", name)],
        target: target(
            ("apisix.apache.org", "v2", "ApisixRoute", "apisixroutes"),
            "profile-route",
            name,
            entries("/spec/http/0/backends", "/serviceName"),
        ),
    };
    restores_before_advancing(ctx, case).await
}

async fn traefik_weight_restored_before_advancing(ctx: TestContext) -> Result<()> {
    let name = "payments";
    let case = Case {
        name,
        install: |ctx| Box::pin(async move { crate::router_traefik::install(&ctx).await }),
        traffic_routing: json!({"traefik": {"weightedTraefikServiceName": "payments-weighted"}}),
        objects: vec![crate::router_traefik::weighted(
            "traefik.io",
            "payments-weighted",
            name,
        )],
        target: target(
            (
                "traefik.io",
                "v1alpha1",
                "TraefikService",
                "traefikservices",
            ),
            "payments-weighted",
            name,
            entries("/spec/weighted/services", "/name"),
        ),
    };
    restores_before_advancing(ctx, case).await
}

async fn ambassador_weight_restored_before_advancing(ctx: TestContext) -> Result<()> {
    let name = "search";
    let case = Case {
        name,
        install: |ctx| Box::pin(async move { crate::router_ambassador::install(&ctx).await }),
        traffic_routing: json!({"ambassador": {"mappings": [name]}}),
        objects: vec![crate::router_ambassador::base(
            "getambassador.io/v2",
            "Mapping",
            name,
            "/search/",
            "search-stable:80",
        )],
        target: target(
            ("getambassador.io", "v2", "Mapping", "mappings"),
            "search-canary",
            name,
            Holds::SpecWeight,
        ),
    };
    restores_before_advancing(ctx, case).await
}

async fn gatewayapi_weight_restored_before_advancing(ctx: TestContext) -> Result<()> {
    let name = "catalog";
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"name": "eg"}],
            "rules": [{"backendRefs": crate::router_gatewayapi::pair(name, Some(100), Some(0))}]
        }
    });
    let case = Case {
        name,
        install: |ctx| Box::pin(async move { crate::router_gatewayapi::install(&ctx).await }),
        traffic_routing: json!({"plugins": {"argoproj-labs/gatewayAPI": {
            "httpRoute": name, "namespace": ctx.namespace
        }}}),
        objects: vec![route],
        target: target(
            ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
            name,
            name,
            entries("/spec/rules/0/backendRefs", "/name"),
        ),
    };
    restores_before_advancing(ctx, case).await
}

async fn appmesh_weight_restored_before_advancing(ctx: TestContext) -> Result<()> {
    let name = "shipping";
    let case = Case {
        name,
        install: |ctx| Box::pin(async move { crate::router_appmesh::install(&ctx).await }),
        traffic_routing: crate::router_appmesh::traffic_routing(name, None),
        objects: crate::router_appmesh::objects(name, &["httpRoute"]),
        target: target(
            (
                "appmesh.k8s.aws",
                "v1beta2",
                "VirtualRouter",
                "virtualrouters",
            ),
            "shipping-router",
            name,
            entries(
                "/spec/routes/0/httpRoute/action/weightedTargets",
                "/virtualNodeRef/name",
            ),
        ),
    };
    restores_before_advancing(ctx, case).await
}
