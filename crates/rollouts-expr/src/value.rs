//! `ResultValue`: what a metric provider measured, as the condition sees it in `result`.
//!
//! Providers hand results over as `serde_json::Value`, but a Prometheus float may be NaN or ±Inf,
//! which JSON cannot hold; `ResultValue` can. JSON numbers become floats, as Go's `encoding/json`
//! decodes them into `float64` (so `result % 2` is an error and `result` is named `float64`, as
//! in Argo).

use std::collections::BTreeMap;

use expr::Value;

/// A metric result. Build it from JSON (`ResultValue::from(&json)`) or from Rust values.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ResultValue {
    /// No data: Go `nil` (also a nil pointer such as Datadog's empty `*float64`).
    #[default]
    Nil,
    Bool(bool),
    /// A Go `int64`, for providers whose values are integers (InfluxDB `long` columns).
    Int(i64),
    /// A Go `float64`; may be NaN or ±Inf.
    Float(f64),
    String(String),
    /// A Go `[]float64`, as Prometheus vectors and matrices produce.
    Floats(Vec<f64>),
    /// A Go `[]interface {}`.
    List(Vec<ResultValue>),
    /// A Go `map[string]interface {}`.
    Map(BTreeMap<String, ResultValue>),
}

impl ResultValue {
    /// Argo's "metric result is nil or empty": nil, or a list with no element.
    pub fn is_nil_or_empty(&self) -> bool {
        match self {
            ResultValue::Nil => true,
            ResultValue::Floats(v) => v.is_empty(),
            ResultValue::List(v) => v.is_empty(),
            _ => false,
        }
    }

    /// The Go type name Argo would print for this value (`%T`).
    pub fn go_type_name(&self) -> &'static str {
        match self {
            ResultValue::Nil => "<nil>",
            ResultValue::Bool(_) => "bool",
            ResultValue::Int(_) => "int64",
            ResultValue::Float(_) => "float64",
            ResultValue::String(_) => "string",
            ResultValue::Floats(_) => "[]float64",
            ResultValue::List(_) => "[]interface {}",
            ResultValue::Map(_) => "map[string]interface {}",
        }
    }

    pub(crate) fn to_expr(&self) -> Value {
        match self {
            ResultValue::Nil => Value::Nil,
            ResultValue::Bool(b) => Value::Bool(*b),
            ResultValue::Int(i) => Value::Integer(*i),
            ResultValue::Float(f) => Value::Float(*f),
            ResultValue::String(s) => Value::String(s.clone()),
            ResultValue::Floats(v) => Value::Array(v.iter().map(|f| Value::Float(*f)).collect()),
            ResultValue::List(v) => Value::Array(v.iter().map(ResultValue::to_expr).collect()),
            ResultValue::Map(m) => {
                Value::Map(m.iter().map(|(k, v)| (k.clone(), v.to_expr())).collect())
            }
        }
    }
}

impl From<&serde_json::Value> for ResultValue {
    fn from(v: &serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => ResultValue::Nil,
            serde_json::Value::Bool(b) => ResultValue::Bool(*b),
            serde_json::Value::Number(n) => ResultValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => ResultValue::String(s.clone()),
            serde_json::Value::Array(a) => ResultValue::List(a.iter().map(Self::from).collect()),
            serde_json::Value::Object(m) => ResultValue::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), ResultValue::from(v)))
                    .collect(),
            ),
        }
    }
}

impl From<serde_json::Value> for ResultValue {
    fn from(v: serde_json::Value) -> Self {
        ResultValue::from(&v)
    }
}

impl From<f64> for ResultValue {
    fn from(f: f64) -> Self {
        ResultValue::Float(f)
    }
}

impl From<Option<f64>> for ResultValue {
    fn from(f: Option<f64>) -> Self {
        f.map_or(ResultValue::Nil, ResultValue::Float)
    }
}

impl From<Vec<f64>> for ResultValue {
    fn from(v: Vec<f64>) -> Self {
        ResultValue::Floats(v)
    }
}

impl From<&str> for ResultValue {
    fn from(s: &str) -> Self {
        ResultValue::String(s.to_string())
    }
}

impl From<String> for ResultValue {
    fn from(s: String) -> Self {
        ResultValue::String(s)
    }
}

impl From<bool> for ResultValue {
    fn from(b: bool) -> Self {
        ResultValue::Bool(b)
    }
}

/// Go's `%T` of an evaluator value.
pub(crate) fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "<nil>",
        Value::Bool(_) => "bool",
        Value::Integer(_) => "int",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::Bytes(_) => "[]uint8",
        Value::Array(_) => "[]interface {}",
        Value::Map(_) => "map[string]interface {}",
        Value::KeyedMap(_) => "map[interface {}]interface {}",
        Value::DateTime(_) => "time.Time",
        Value::Duration(_) => "time.Duration",
        Value::Timezone(_) => "*time.Location",
        Value::Month(_) => "time.Month",
        Value::Weekday(_) => "time.Weekday",
    }
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)` with Go's exponent form).
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Shortest representation that round-trips, in Go's %g layout: exponent when < -4 or >= 21.
    let exp = f.abs().log10().floor() as i32;
    if (-4..21).contains(&exp) {
        let s = format!("{f}");
        s
    } else {
        let s = format!("{f:e}");
        // Rust: 1e21, 1.5e-7; Go: 1e+21, 1.5e-07.
        let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match e.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', e),
        };
        let digits = if digits.len() < 2 {
            format!("0{digits}")
        } else {
            digits.to_string()
        };
        format!("{mant}e{sign}{digits}")
    }
}

/// Go's `fmt.Sprint` (`%v`) of an evaluator value, for messages.
pub(crate) fn go_sprint(v: &Value) -> String {
    match v {
        Value::Nil => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => go_float(*f),
        Value::String(s) => s.clone(),
        Value::Bytes(b) => format!(
            "[{}]",
            b.iter().map(u8::to_string).collect::<Vec<_>>().join(" ")
        ),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_sprint).collect::<Vec<_>>().join(" ")
        ),
        Value::Map(m) => {
            let mut items: Vec<_> = m.iter().collect();
            items.sort_by(|a, b| a.0.cmp(b.0));
            format!(
                "map[{}]",
                items
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", go_sprint(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(10.0), "10");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1e20), "100000000000000000000");
        assert_eq!(go_float(1.5e-7), "1.5e-07");
        assert_eq!(go_float(f64::NAN), "NaN");
        assert_eq!(go_float(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn json_numbers_are_floats() {
        let v = ResultValue::from(serde_json::json!({"a": [1, "x", null, true]}));
        let ResultValue::Map(m) = &v else {
            panic!("expected a map, got {v:?}");
        };
        assert_eq!(
            m["a"],
            ResultValue::List(vec![
                ResultValue::Float(1.0),
                ResultValue::String("x".into()),
                ResultValue::Nil,
                ResultValue::Bool(true)
            ])
        );
        assert!(ResultValue::from(serde_json::json!([])).is_nil_or_empty());
        assert!(ResultValue::Floats(vec![]).is_nil_or_empty());
        assert!(!ResultValue::Map(BTreeMap::new()).is_nil_or_empty());
    }
}
