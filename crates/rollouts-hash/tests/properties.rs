//! Property tests of the Go-JSON encoder: it never panics on any JSON value, it is
//! deterministic, the key order of the input does not matter, and what it writes is valid JSON
//! that is stable under another decode + marshal round. (Go's first output is not always a fixed
//! point: a non-nil pointer to a zero `Time` marshals as `null`, which decodes to a nil pointer
//! and is then omitted; from the second round on the output no longer changes.)

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rollouts_hash::{HashError, go_json_canary_steps, go_json_pod_template, hash_bytes};
use serde_json::{Map, Number, Value};

/// Keys that reach deep into the Go types, mixed with a few that do not exist.
const KEYS: &[&str] = &[
    "metadata",
    "spec",
    "labels",
    "annotations",
    "creationTimestamp",
    "managedFields",
    "fieldsV1",
    "time",
    "containers",
    "initContainers",
    "name",
    "image",
    "ports",
    "containerPort",
    "resources",
    "limits",
    "requests",
    "cpu",
    "memory",
    "env",
    "value",
    "valueFrom",
    "resourceFieldRef",
    "divisor",
    "livenessProbe",
    "httpGet",
    "port",
    "volumes",
    "emptyDir",
    "sizeLimit",
    "securityContext",
    "runAsUser",
    "tolerations",
    "tolerationSeconds",
    "affinity",
    "nodeSelector",
    "overhead",
    "priority",
    "hostNetwork",
    "setWeight",
    "pause",
    "duration",
    "plugin",
    "config",
    "experiment",
    "templates",
    "analysis",
    "args",
    "Name",
    "unknown",
    "<&>",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        (-3i32..3000).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("1Gi"),
            Just("500m"),
            Just("+01"),
            Just("1e3"),
            Just("0.0001Ki"),
            Just("8Ei"),
            Just("2024-01-02T03:04:05Z"),
            Just("0001-01-01T00:00:00Z"),
            Just("http"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<String, Value>>(),
                )
            }),
        ]
    })
}

/// The valid templates of the golden fixture, as seeds for mutation.
fn fixture_templates() -> Vec<Value> {
    let doc: Value = serde_json::from_str(include_str!("fixtures/pod-template-hashes.json"))
        .unwrap_or(Value::Null);
    doc.get("cases")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("goJson").is_some_and(Value::is_string))
        .filter_map(|c| c.get("input").cloned())
        .collect()
}

/// JSON pointers of every node of `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, item) in map {
                pointers(
                    item,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointers(item, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// A realistic template with a few nodes replaced by random JSON.
fn mutated_template() -> impl Strategy<Value = Value> {
    let seeds = fixture_templates();
    let n = seeds.len().max(1);
    (
        0..n,
        prop::collection::vec((any::<prop::sample::Index>(), json_value()), 0..4),
    )
        .prop_map(move |(i, edits)| {
            let mut v = seeds.get(i).cloned().unwrap_or(Value::Null);
            for (index, replacement) in edits {
                let mut all = Vec::new();
                pointers(&v, String::new(), &mut all);
                let target = index.get(&all).clone();
                if let Some(slot) = v.pointer_mut(&target) {
                    *slot = replacement;
                }
            }
            v
        })
}

type Encode = fn(&Value) -> Result<Vec<u8>, HashError>;

/// Checks that Go JSON output is JSON, and that another decode + marshal round is stable.
fn check_stable(bytes: &[u8], encode: Encode) -> Result<(), TestCaseError> {
    let v: Result<Value, _> = serde_json::from_slice(bytes);
    prop_assert!(v.is_ok(), "not JSON: {}", String::from_utf8_lossy(bytes));
    match encode(&v.unwrap_or(Value::Null)) {
        Ok(once) => {
            let again = serde_json::from_slice::<Value>(&once)
                .map_err(|e| e.to_string())
                .and_then(|v| encode(&v).map_err(|e| e.to_string()));
            prop_assert_eq!(again, Ok(once));
        }
        // Go prints times in years -1 and 10000 (from offsets at the ends of 0000-9999) but
        // cannot parse them back; neither can we.
        Err(HashError::InvalidTime { .. }) => {}
        Err(e) => prop_assert!(false, "output does not decode again: {e}"),
    }
    Ok(())
}

/// Writes `v` as JSON text with every object's keys in reversed order.
fn write_reversed(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            out.push('{');
            let mut entries: Vec<_> = map.iter().collect();
            entries.reverse();
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_reversed(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_reversed(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_and_is_deterministic(template in json_value(), steps in json_value()) {
        let a = go_json_pod_template(&template);
        let b = go_json_pod_template(&template);
        prop_assert_eq!(&a, &b);
        let s = go_json_canary_steps(&steps);
        prop_assert_eq!(&s, &go_json_canary_steps(&steps));
        let wrapped = serde_json::json!({"spec": {"containers": [template.clone()], "volumes": [steps.clone()]}, "metadata": template});
        let _ = go_json_pod_template(&wrapped);
    }

    #[test]
    fn mutated_templates_never_panic(template in mutated_template()) {
        let a = go_json_pod_template(&template);
        prop_assert_eq!(&a, &go_json_pod_template(&template));
        if let Ok(bytes) = a {
            check_stable(&bytes, go_json_pod_template)?;
        }
        let mut text = String::new();
        write_reversed(&template, &mut text);
        let reordered: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        prop_assert_eq!(go_json_pod_template(&template), go_json_pod_template(&reordered));
    }

    #[test]
    fn input_key_order_does_not_matter(template in json_value()) {
        let mut text = String::new();
        write_reversed(&template, &mut text);
        let reordered: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        prop_assert_eq!(go_json_pod_template(&template), go_json_pod_template(&reordered));
        prop_assert_eq!(go_json_canary_steps(&template), go_json_canary_steps(&reordered));
    }

    #[test]
    fn output_is_json_and_stable(template in json_value()) {
        if let Ok(bytes) = go_json_pod_template(&template) {
            check_stable(&bytes, go_json_pod_template)?;
        }
        if let Ok(bytes) = go_json_canary_steps(&template) {
            check_stable(&bytes, go_json_canary_steps)?;
        }
    }

    #[test]
    fn hash_is_safe_encoded(bytes in prop::collection::vec(any::<u8>(), 0..64), count in proptest::option::of(any::<i32>())) {
        let h = hash_bytes(&bytes, count);
        prop_assert!((1..=10).contains(&h.len()));
        prop_assert!(h.bytes().all(|c| b"bcdfghjklmnpqrstvwxz2456789".contains(&c)));
        prop_assert_eq!(h, hash_bytes(&bytes, count));
    }
}
