//! Fuzz target: compile arbitrary text as a condition and as a time expression, and evaluate it
//! against a few fixed results. Any panic (including one the wrapper would catch: the fuzzer's
//! panic hook aborts first), any `ExprError::Internal` (the lowered program did not compile, or
//! the evaluator panicked), a stack overflow or a hang is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollouts_expr::{Condition, ExprError, ResultValue, TimeExpr, evaluate_conditions_at};

fn results() -> Vec<ResultValue> {
    vec![
        ResultValue::Nil,
        ResultValue::Float(1.5),
        ResultValue::Float(f64::NAN),
        ResultValue::Floats(vec![1.0, 2.0, 3.0]),
        ResultValue::Floats(vec![]),
        ResultValue::String("abc".into()),
        ResultValue::from(serde_json::json!({"a": 1, "b": [1, "x", null], "c": {"d": true}})),
    ]
}

fn no_internal<T>(r: &Result<T, ExprError>, text: &str) {
    if let Err(ExprError::Internal(m)) = r {
        panic!("internal error for {text:?}: {m}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now: jiff::Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
    let compiled = Condition::compile(text);
    no_internal(&compiled, text);
    if let Ok(c) = compiled {
        for r in results() {
            let out = c.evaluate_at(&r, now);
            no_internal(&out, text);
            // Errors are one line.
            if let Err(e) = &out {
                assert!(!e.to_string().contains('\n'), "multi-line error for {text:?}: {e}");
            }
        }
        let _ = evaluate_conditions_at(Some(text), Some(text), &ResultValue::Float(1.0), now);
    } else if let Err(e) = &compiled {
        assert!(!e.to_string().contains('\n'), "multi-line error for {text:?}: {e}");
    }
    let t = TimeExpr::compile(text);
    no_internal(&t, text);
    if let Ok(t) = t {
        no_internal(&t.evaluate(now), text);
    }
});
