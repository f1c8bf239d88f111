//! The fallback of Argo's `FindNewReplicaSet`: a ReplicaSet created from the same template
//! under another hash (an older hashing, a template the API server defaulted) is adopted
//! instead of redeployed.

use std::time::Duration;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use rollouts_api::labels;
use rollouts_engine::Effect;
use rollouts_test_support::fixtures::RolloutBuilder;
use rollouts_test_support::sim::World;
use serde_json::json;

const TICK: Duration = Duration::from_secs(1);

/// A deployed rollout whose only ReplicaSet carries hash `legacy` and a template as the API
/// server stores it (defaults filled in, `creationTimestamp: null` of older clients dropped).
fn legacy_world(builder: RolloutBuilder) -> World {
    let mut w = World::new(builder.build());
    assert!(w.run_until(30, TICK, |w| w.phase() == "Healthy"));
    let rs = &mut w.replica_sets[0];
    rs.labels
        .insert(labels::POD_TEMPLATE_HASH.into(), "legacy".into());
    let mut t = serde_json::to_value(rs.template.clone().unwrap()).unwrap();
    t["metadata"]["labels"][labels::POD_TEMPLATE_HASH] = json!("legacy");
    t["spec"]["restartPolicy"] = json!("Always");
    t["spec"]["dnsPolicy"] = json!("ClusterFirst");
    t["spec"]["schedulerName"] = json!("default-scheduler");
    t["spec"]["securityContext"] = json!({});
    t["spec"]["terminationGracePeriodSeconds"] = json!(30);
    let c = &mut t["spec"]["containers"][0];
    c["imagePullPolicy"] = json!("IfNotPresent");
    c["terminationMessagePath"] = json!("/dev/termination-log");
    c["terminationMessagePolicy"] = json!("File");
    c["resources"] = json!({});
    rs.template = Some(serde_json::from_value::<PodTemplateSpec>(t).unwrap());
    for s in &mut w.services {
        s.selector
            .insert(labels::POD_TEMPLATE_HASH.into(), "legacy".into());
    }
    let status = w.rollout.status.as_mut().unwrap();
    status.stable_rs = Some("legacy".into());
    status.current_pod_hash = Some("legacy".into());
    if let Some(b) = status.blue_green.as_mut() {
        b.active_selector = Some("legacy".into());
        b.preview_selector = Some("legacy".into());
    }
    w
}

fn creates(w: &mut World) -> bool {
    (0..5).any(|_| {
        let plan = w.reconcile();
        w.tick(TICK);
        plan.effects
            .iter()
            .any(|e| matches!(e, Effect::CreateReplicaSet { .. }))
    })
}

#[test]
fn defaulted_template_under_an_old_hash_is_adopted() {
    let mut w = legacy_world(RolloutBuilder::canary("web").replicas(2));
    assert!(!creates(&mut w), "redeployed an equal template");
    let s = w.status();
    assert_eq!(s.current_pod_hash.as_deref(), Some("legacy"));
    assert_eq!(s.stable_rs.as_deref(), Some("legacy"));
    assert_eq!(w.phase(), "Healthy");
    assert_eq!(w.replica_sets.len(), 1);
}

#[test]
fn blue_green_adopts_too() {
    let mut w = legacy_world(RolloutBuilder::blue_green("web").replicas(2));
    assert!(!creates(&mut w), "redeployed an equal template");
    assert_eq!(w.phase(), "Healthy");
}

#[test]
fn injected_metadata_and_anti_affinity_are_ignored() {
    let mut w = legacy_world(
        RolloutBuilder::canary("web")
            .replicas(2)
            .canary_field("stableMetadata", json!({"labels": {"role": "stable"}})),
    );
    assert!(!creates(&mut w));
}

#[test]
fn a_real_change_still_creates_a_replica_set() {
    let mut w = legacy_world(RolloutBuilder::canary("web").replicas(2));
    w.set_image("nginx:2");
    assert!(creates(&mut w));
    let mut w = legacy_world(RolloutBuilder::canary("web").replicas(2));
    // An explicit value that differs from the default is a change.
    w.rollout
        .spec
        .template
        .as_mut()
        .and_then(|t| t.spec.as_mut())
        .unwrap()
        .termination_grace_period_seconds = Some(5);
    w.bump_generation();
    assert!(creates(&mut w));
}
