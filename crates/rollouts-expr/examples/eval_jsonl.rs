//! Developer tool: evaluates requests in the oracle's format (one JSON object per line:
//! `{"mode": "cond"|"decide"|"time", "expr", "success", "failure", "rtype", "result"}`) with this
//! crate and prints answers in the oracle's format, so that `oracle/diff.py` can compare them with
//! Go expr's. `rtype` is `json`, `float`, `floats` or `nil`; floats may be "NaN", "+Inf", "-Inf".

use std::io::{BufRead, Write};

use rollouts_expr::{Condition, ResultValue, evaluate_conditions_at, evaluate_time};

fn float(v: &serde_json::Value) -> f64 {
    match v.as_str() {
        Some("NaN") => f64::NAN,
        Some("+Inf" | "Inf") => f64::INFINITY,
        Some("-Inf") => f64::NEG_INFINITY,
        Some(s) => s.parse().unwrap_or(0.0),
        None => v.as_f64().unwrap_or(0.0),
    }
}

fn result(req: &serde_json::Value) -> ResultValue {
    let r = &req["result"];
    match req["rtype"].as_str().unwrap_or("json") {
        "nil" => ResultValue::Nil,
        "float" => ResultValue::Float(float(r)),
        "floats" => ResultValue::Floats(
            r.as_array()
                .map(|a| a.iter().map(float).collect())
                .unwrap_or_default(),
        ),
        _ => ResultValue::from(r),
    }
}

fn main() {
    let now: jiff::Timestamp = "2026-01-02T03:04:05Z".parse().expect("timestamp");
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(req) = serde_json::from_str::<serde_json::Value>(&line) else {
            let _ = writeln!(out, "{}", serde_json::json!({"error": "bad request"}));
            continue;
        };
        let text = req["expr"].as_str().unwrap_or_default();
        let answer = match req["mode"].as_str().unwrap_or("cond") {
            "decide" => {
                let outcome = evaluate_conditions_at(
                    req["success"].as_str(),
                    req["failure"].as_str(),
                    &result(&req),
                    now,
                );
                match outcome {
                    rollouts_expr::Outcome::Error(m) => {
                        serde_json::json!({"value": "Error", "error": m})
                    }
                    o => serde_json::json!({"value": o.phase()}),
                }
            }
            "time" => match evaluate_time(text, now) {
                Ok(t) => serde_json::json!({"value": t.to_string()}),
                Err(e) => serde_json::json!({"error": e.to_string()}),
            },
            _ => match Condition::compile(text).and_then(|c| c.evaluate_at(&result(&req), now)) {
                Ok(b) => serde_json::json!({"value": b}),
                Err(e) => serde_json::json!({"error": e.to_string()}),
            },
        };
        let _ = writeln!(out, "{answer}");
    }
}
