//! Golden tests: our Go-JSON encoder and hashes against fixtures produced by the reference
//! implementation (Argo Rollouts' own hash functions over the real Go types, see
//! `xtask/go/gotypes/golden`).
//!
//! Fixture shape (`tests/fixtures/pod-template-hashes.json`):
//! `{"comment": [..], "cases": [{"name", "input", "goJson", "hash", "collisionHashes", "error"}]}`
//! where `goJson` is the exact string Go's `json.Marshal` wrote (null when Go rejected the
//! input, `error` then holds Go's message), `hash` is the hash without a collision count and
//! `collisionHashes` maps a decimal collision count to the hash with it.
//!
//! `tests/fixtures/step-hashes.json` has the same shape without `collisionHashes`: `input` is a
//! `spec.strategy.canary.steps` value, `goJson` the `json.Marshal` of `[]v1alpha1.CanaryStep`
//! and `hash` Argo's `status.currentStepHash`.
//!
//! `tests/fixtures/differential.json` holds machine-made cases (golden inputs with random parts
//! replaced by random JSON) from a differential run against Go: `{"kind": "pod" | "steps",
//! "input", "goJson", "hash"}`, one case per line.

use rollouts_hash::{
    go_json_canary_steps, go_json_pod_template, hash_bytes, pod_template_hash, step_hash,
};
use serde_json::Value;

fn cases(fixture: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(fixture).unwrap_or(Value::Null);
    let cases = doc
        .get("cases")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert!(!cases.is_empty(), "fixture has no cases");
    cases
}

fn str_field<'a>(case: &'a Value, key: &str) -> Option<&'a str> {
    case.get(key).and_then(Value::as_str)
}

#[test]
fn pod_template_go_json_and_hashes_match_go() {
    let cases = cases(include_str!("fixtures/pod-template-hashes.json"));
    assert!(cases.len() >= 40, "only {} golden cases", cases.len());
    let mut failures = Vec::new();
    let mut errors = 0;
    for case in &cases {
        let name = str_field(case, "name").unwrap_or("?");
        let input = case.get("input").unwrap_or(&Value::Null);
        let ours = go_json_pod_template(input);
        match (str_field(case, "goJson"), &ours) {
            (Some(want), Ok(got)) => {
                let got = String::from_utf8_lossy(got);
                if got != want {
                    failures.push(format!(
                        "{name}: Go JSON differs\n  want {want}\n  got  {got}"
                    ));
                    continue;
                }
                let want_hash = str_field(case, "hash").unwrap_or("");
                let got_hash = pod_template_hash(input, None).unwrap_or_default();
                if got_hash != want_hash {
                    failures.push(format!("{name}: hash {got_hash}, want {want_hash}"));
                }
                let collision = case.get("collisionHashes").and_then(Value::as_object);
                assert!(
                    collision.is_some_and(|c| !c.is_empty()),
                    "{name}: no collision hashes"
                );
                for (count, want) in collision.into_iter().flatten() {
                    let count: i32 = count.parse().unwrap_or(i32::MIN);
                    let got = pod_template_hash(input, Some(count)).unwrap_or_default();
                    if Some(got.as_str()) != want.as_str() {
                        failures.push(format!(
                            "{name}: collision {count}: hash {got}, want {want}"
                        ));
                    }
                }
            }
            (None, Err(_)) => errors += 1,
            (None, Ok(got)) => failures.push(format!(
                "{name}: Go rejects the input ({}), we produced {}",
                str_field(case, "error").unwrap_or("?"),
                String::from_utf8_lossy(got)
            )),
            (Some(_), Err(e)) => {
                failures.push(format!("{name}: Go accepts the input, we fail: {e}"))
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        errors >= 10,
        "expected the fixture's error cases to be rejected, saw {errors}"
    );
}

#[test]
fn step_list_go_json_and_hashes_match_go() {
    let cases = cases(include_str!("fixtures/step-hashes.json"));
    assert!(cases.len() >= 15, "only {} step cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = str_field(case, "name").unwrap_or("?");
        let input = case.get("input").unwrap_or(&Value::Null);
        match (str_field(case, "goJson"), go_json_canary_steps(input)) {
            (Some(want), Ok(got)) => {
                let want_hash = str_field(case, "hash").unwrap_or("");
                // The fixture's bytes hash to the fixture's hash (what rollouts-api's typed
                // steps will be checked against) ...
                if hash_bytes(want.as_bytes(), None) != want_hash {
                    failures.push(format!("{name}: hash_bytes(goJson) != {want_hash}"));
                }
                // ... and our own encoder produces the same bytes and hash.
                let got = String::from_utf8_lossy(&got);
                if got != want {
                    failures.push(format!(
                        "{name}: Go JSON differs\n  want {want}\n  got  {got}"
                    ));
                }
                if step_hash(input).unwrap_or_default() != want_hash {
                    failures.push(format!("{name}: step_hash differs"));
                }
            }
            (None, Err(_)) => {}
            (None, Ok(got)) => {
                failures.push(format!(
                    "{name}: Go rejects the input, we produced {}",
                    String::from_utf8_lossy(&got)
                ));
            }
            (Some(_), Err(e)) => {
                failures.push(format!("{name}: Go accepts the input, we fail: {e}"))
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn machine_made_cases_match_go() {
    let cases = cases(include_str!("fixtures/differential.json"));
    assert!(
        cases.len() >= 200,
        "only {} differential cases",
        cases.len()
    );
    let mut failures = Vec::new();
    let (mut accepted, mut rejected) = (0, 0);
    for (i, case) in cases.iter().enumerate() {
        let input = case.get("input").unwrap_or(&Value::Null);
        let pods = str_field(case, "kind") == Some("pod");
        let ours = if pods {
            go_json_pod_template(input)
        } else {
            go_json_canary_steps(input)
        };
        let ours = ours.map(|b| String::from_utf8_lossy(&b).into_owned()).ok();
        let want = str_field(case, "goJson");
        if ours.as_deref() != want {
            failures.push(format!(
                "case {i}: input {input}\n  want {want:?}\n  got  {ours:?}"
            ));
            continue;
        }
        match want {
            Some(json) => {
                accepted += 1;
                let hash = if pods {
                    pod_template_hash(input, None)
                } else {
                    step_hash(input)
                };
                if hash.ok().as_deref() != str_field(case, "hash")
                    || hash_bytes(json.as_bytes(), None) != str_field(case, "hash").unwrap_or("")
                {
                    failures.push(format!("case {i}: hash differs"));
                }
            }
            None => rejected += 1,
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        accepted >= 100 && rejected >= 50,
        "accepted {accepted}, rejected {rejected}"
    );
}
