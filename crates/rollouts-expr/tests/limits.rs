//! Limits: deep or large expressions are rejected with a message or evaluated, never a crash, on a
//! thread with a small stack (tokio workers have 2 MiB).

use rollouts_expr::{Condition, ExprError, ResultValue};

/// Expression shapes at a nesting depth of `n`.
fn shapes(n: usize) -> Vec<String> {
    vec![
        format!("{}result{} > 0", "(".repeat(n), ")".repeat(n)),
        format!("{}true", "!".repeat(n)),
        format!("{}1 > 0", "-".repeat(n)),
        format!("result{} == nil", ".a".repeat(n)),
        format!("{} > 0", vec!["1"; n].join(" + ")),
        format!("{}1{} > 0", "abs(".repeat(n), ")".repeat(n)),
        format!("{}1{}[0] == 1", "[".repeat(n), "]".repeat(n)),
        format!("{}true{}", "true ? ".repeat(n), " : false".repeat(n)),
        format!("{}1 > 0{}", "all([1], {".repeat(n), "})".repeat(n)),
        format!("{}{}", "{a: ".repeat(n), "1}".repeat(n)) + " != nil",
        format!("{}1 == 1", "let x = 1; ".repeat(n)),
    ]
}

fn run_on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no crash");
}

#[test]
fn deep_expressions_evaluate_or_fail_cleanly() {
    run_on_small_stack(|| {
        let result = ResultValue::from(serde_json::json!({"a": null}));
        for n in [1, 10, 50, 99] {
            for s in shapes(n) {
                let c = Condition::compile(&s);
                assert!(
                    !matches!(c, Err(ExprError::Internal(_))),
                    "depth {n}: {s}: {c:?}"
                );
                if let Ok(c) = c {
                    let out = c.evaluate(&result);
                    assert!(!matches!(out, Err(ExprError::Internal(_))), "{s}: {out:?}");
                }
            }
        }
    });
}

#[test]
fn too_deep_expressions_are_rejected() {
    run_on_small_stack(|| {
        for n in [101, 1000, 100_000] {
            for s in shapes(n) {
                let e = Condition::compile(&s).expect_err(&s[..s.len().min(40)]);
                let msg = e.to_string();
                assert!(
                    msg.contains("nested too deeply") || msg.contains("maximum allowed nodes"),
                    "depth {n}: {msg}"
                );
            }
        }
    });
}

#[test]
fn long_flat_expressions_are_fine() {
    // 2000 terms joined by `||` nest the tree, so they are over the depth limit; 90 are not.
    let s = vec!["result == 1"; 90].join(" || ");
    let c = Condition::compile(&s).expect("compiles");
    assert_eq!(c.evaluate(&ResultValue::Float(1.0)), Ok(true));
    let long_string = format!("result == \"{}\"", "x".repeat(100_000));
    let c = Condition::compile(&long_string).expect("compiles");
    assert_eq!(
        c.evaluate(&ResultValue::Float(1.0))
            .map_err(|e| e.to_string()),
        Err("invalid operation: == (mismatched types float64 and string)".into())
    );
}
