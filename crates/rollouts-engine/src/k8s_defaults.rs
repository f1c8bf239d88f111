//! Semantic equality of pod templates the way Kubernetes sees them: the API server's defaults
//! applied to the desired template (`SetDefaults_PodSpec`, `SetDefaults_Container`, probes,
//! ports, volumes, field selectors), and unset fields equal to empty ones (the forked
//! `reflect.DeepEqual` behind `apiequality.Semantic`). Used by the fallback of Argo's
//! `FindNewReplicaSet`, so that a ReplicaSet created from the same template under an older
//! hash is adopted instead of redeployed.

use serde_json::{Map, Value, json};

/// Applies the defaults the API server sets on a ReplicaSet's pod template.
pub(crate) fn apply_pod_template_defaults(template: &mut Value) {
    let Some(spec) = template.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default_str(spec, "schedulerName", "default-scheduler");
    spec.entry("securityContext").or_insert_with(|| json!({}));
    spec.entry("terminationGracePeriodSeconds")
        .or_insert_with(|| json!(30));
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        if let Some(list) = spec.get_mut(key).and_then(Value::as_array_mut) {
            for c in list.iter_mut().filter_map(Value::as_object_mut) {
                container_defaults(c);
            }
        }
    }
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in volumes.iter_mut().filter_map(Value::as_object_mut) {
            volume_defaults(v);
        }
    }
}

fn default_str(obj: &mut Map<String, Value>, key: &str, value: &str) {
    let empty = obj
        .get(key)
        .is_none_or(|v| v.is_null() || v.as_str() == Some(""));
    if empty {
        obj.insert(key.to_string(), json!(value));
    }
}

fn default_value(obj: &mut Map<String, Value>, key: &str, value: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj.insert(key.to_string(), value);
    }
}

/// `SetDefaults_Container`, its ports, probes and environment.
fn container_defaults(c: &mut Map<String, Value>) {
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    let pull = if image_tag_is_latest(image) {
        "Always"
    } else {
        "IfNotPresent"
    };
    default_str(c, "imagePullPolicy", pull);
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            default_str(p, "protocol", "TCP");
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            default_value(p, "timeoutSeconds", json!(1));
            default_value(p, "periodSeconds", json!(10));
            default_value(p, "successThreshold", json!(1));
            default_value(p, "failureThreshold", json!(3));
            if let Some(h) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
                default_str(h, "path", "/");
                default_str(h, "scheme", "HTTP");
            }
        }
    }
    if let Some(env) = c.get_mut("env").and_then(Value::as_array_mut) {
        for e in env.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(f) = e
                .get_mut("valueFrom")
                .and_then(|v| v.get_mut("fieldRef"))
                .and_then(Value::as_object_mut)
            {
                default_str(f, "apiVersion", "v1");
            }
        }
    }
}

/// Kubernetes pulls `:latest` and untagged images always (a digest is not a tag).
fn image_tag_is_latest(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

/// `SetDefaults_Volume` and the default modes of projected sources.
fn volume_defaults(v: &mut Map<String, Value>) {
    const SOURCES: &[&str] = &[
        "hostPath",
        "emptyDir",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "secret",
        "nfs",
        "iscsi",
        "glusterfs",
        "persistentVolumeClaim",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "downwardAPI",
        "fc",
        "azureFile",
        "configMap",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "projected",
        "portworxVolume",
        "scaleIO",
        "storageos",
        "csi",
        "ephemeral",
        "image",
    ];
    if !SOURCES
        .iter()
        .any(|s| v.get(*s).is_some_and(|x| !x.is_null()))
    {
        v.insert("emptyDir".into(), json!({}));
    }
    for (key, mode) in [
        ("secret", 420),
        ("configMap", 420),
        ("downwardAPI", 420),
        ("projected", 420),
    ] {
        if let Some(src) = v.get_mut(key).and_then(Value::as_object_mut) {
            default_value(src, "defaultMode", json!(mode));
        }
    }
    if let Some(h) = v.get_mut("hostPath").and_then(Value::as_object_mut) {
        default_value(h, "type", json!(""));
    }
}

/// Drops nulls, empty arrays and empty objects, recursively (unset equals empty).
pub(crate) fn normalize(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for x in m.values_mut() {
                normalize(x);
            }
            m.retain(|_, x| !is_empty(x));
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                normalize(x);
            }
        }
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_what_the_api_server_stores() {
        let mut t = json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{
                    "name": "app", "image": "nginx:1",
                    "ports": [{"containerPort": 80}],
                    "readinessProbe": {"httpGet": {"port": 80}},
                    "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
                }, {"name": "side", "image": "busybox"}],
                "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "x"}}]
            }
        });
        apply_pod_template_defaults(&mut t);
        let spec = &t["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["securityContext"], json!({}));
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        let probe = &c["readinessProbe"];
        assert_eq!(
            (
                probe["timeoutSeconds"].clone(),
                probe["periodSeconds"].clone()
            ),
            (json!(1), json!(10))
        );
        assert_eq!(probe["httpGet"]["path"], "/");
        assert_eq!(probe["httpGet"]["scheme"], "HTTP");
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(spec["containers"][1]["imagePullPolicy"], "Always");
        assert_eq!(spec["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(spec["volumes"][1]["secret"]["defaultMode"], 420);
    }

    #[test]
    fn explicit_values_are_kept() {
        let mut t = json!({"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 5,
            "containers": [{"name": "a", "image": "x:latest", "imagePullPolicy": "Never"}]}});
        apply_pod_template_defaults(&mut t);
        assert_eq!(t["spec"]["restartPolicy"], "Never");
        assert_eq!(t["spec"]["terminationGracePeriodSeconds"], 5);
        assert_eq!(t["spec"]["containers"][0]["imagePullPolicy"], "Never");
    }

    #[test]
    fn latest_tag_rules() {
        assert!(image_tag_is_latest("nginx"));
        assert!(image_tag_is_latest("nginx:latest"));
        assert!(image_tag_is_latest("registry:5000/nginx"));
        assert!(!image_tag_is_latest("registry:5000/nginx:1"));
        assert!(!image_tag_is_latest("nginx@sha256:abc"));
    }

    #[test]
    fn unset_equals_empty() {
        let mut a = json!({"metadata": {"labels": {}}, "spec": {"volumes": [], "x": null, "c": [{"env": []}]}});
        normalize(&mut a);
        assert_eq!(a, json!({"spec": {"c": [{}]}}));
    }
}
