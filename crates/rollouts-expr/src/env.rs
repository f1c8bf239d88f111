//! The evaluation environment: the `expr-lang` builtins, Argo's functions (`asInt`, `asFloat`,
//! `isNaN`, `isInf`, `isNil`, `default`), an injected `now()`, and the helpers the lowered program
//! calls (`__fetch`, `__fetch_opt`, `__map`, `__seq`).
//!
//! The environment is built once; per-evaluation data lives in the context under reserved keys:
//! the original result (Argo's `isNil`/`default` close over it and ignore their argument) and
//! the evaluation time.

use std::sync::LazyLock;

use expr::{Context, Environment, Value};

use crate::value::{go_sprint, go_type_name};

/// Context key of the result as the provider gave it.
pub(crate) const RESULT_KEY: &str = "__argo_result";
/// Context key of the evaluation time (RFC 3339 text), when given.
pub(crate) const NOW_KEY: &str = "__argo_now";

type CallResult = expr::Result<Value>;

fn fail(msg: impl Into<String>) -> CallResult {
    Err(expr::Error::ExprError(msg.into()))
}

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), expr::Error> {
    use std::cmp::Ordering;
    match args.len().cmp(&n) {
        Ordering::Less => Err(expr::Error::ExprError(format!(
            "not enough arguments to call {name}"
        ))),
        Ordering::Greater => Err(expr::Error::ExprError(format!(
            "too many arguments to call {name}"
        ))),
        Ordering::Equal => Ok(()),
    }
}

/// A float argument of Argo's `isNaN(float64)` / `isInf(float64)`.
fn float_arg(v: &Value) -> Result<f64, expr::Error> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Integer(i) => Ok(*i as f64),
        // Go's message when the argument comes from the result (an `interface {}`).
        Value::Nil => Err(expr::Error::ExprError(
            "interface conversion: interface {} is nil, not float64".into(),
        )),
        other => Err(expr::Error::ExprError(format!(
            "interface conversion: interface {{}} is {}, not float64",
            go_type_name(other)
        ))),
    }
}

/// Go's `int64(f)` on amd64: truncation, and the "integer indefinite" value when out of range.
fn go_float_to_int(f: f64) -> i64 {
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
        i64::MIN
    } else {
        f.trunc() as i64
    }
}

fn quote(s: &str) -> String {
    crate::lexer::go_quote(s)
}

/// Argo's `asInt`: numbers (floats truncate) and base-10 integer strings, else an error.
fn as_int(args: Vec<Value>) -> CallResult {
    arity("asInt", &args, 1)?;
    match &args[0] {
        Value::Integer(i) => Ok(Value::Integer(*i)),
        Value::Float(f) => Ok(Value::Integer(go_float_to_int(*f))),
        Value::String(s) => match s.parse::<i64>() {
            Ok(i) if !s.starts_with('+') || s.len() > 1 => Ok(Value::Integer(i)),
            Ok(_) => fail(format!(
                "strconv.ParseInt: parsing {}: invalid syntax",
                quote(s)
            )),
            Err(e) => {
                use std::num::IntErrorKind;
                let why = match e.kind() {
                    IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => "value out of range",
                    _ => "invalid syntax",
                };
                fail(format!("strconv.ParseInt: parsing {}: {why}", quote(s)))
            }
        },
        other => fail(format!(
            "asInt() not supported on {} {}",
            go_type_name(other),
            go_sprint(other)
        )),
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for the forms Argo users write.
fn parse_go_float(s: &str) -> Result<f64, String> {
    let invalid = || format!("strconv.ParseFloat: parsing {}: invalid syntax", quote(s));
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return s.parse::<f64>().map_err(|_| invalid());
    }
    // Rust also accepts these spellings; Go does not.
    if body.is_empty()
        || !body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        return Err(invalid());
    }
    let f = s.parse::<f64>().map_err(|_| invalid())?;
    if f.is_infinite() {
        return Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            quote(s)
        ));
    }
    Ok(f)
}

/// Argo's `asFloat`: numbers and float strings, else an error.
fn as_float(args: Vec<Value>) -> CallResult {
    arity("asFloat", &args, 1)?;
    match &args[0] {
        Value::Integer(i) => Ok(Value::Float(*i as f64)),
        Value::Float(f) => Ok(Value::Float(*f)),
        Value::String(s) => parse_go_float(s).map(Value::Float).or_else(fail),
        other => fail(format!(
            "asFloat() not supported on {} {}",
            go_type_name(other),
            go_sprint(other)
        )),
    }
}

/// Go expr's `runtime.Fetch`: `from[key]` / `from.key`.
fn fetch(args: Vec<Value>, optional: bool) -> CallResult {
    let [from, key]: [Value; 2] = args
        .try_into()
        .map_err(|_| expr::Error::ExprError("internal: __fetch takes two arguments".into()))?;
    let key_text = || go_sprint(&key);
    match &from {
        Value::Nil if optional => Ok(Value::Nil),
        Value::Nil => fail(format!("cannot fetch {} from <nil>", key_text())),
        Value::Map(m) => match &key {
            Value::String(k) => Ok(m.get(k).cloned().unwrap_or(Value::Nil)),
            other => fail(format!(
                "reflect.Value.MapIndex: value of type {} is not assignable to type string",
                go_type_name(other)
            )),
        },
        Value::KeyedMap(m) => Ok(m
            .iter()
            .find(|(k, _)| k == &key)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Nil)),
        Value::Array(_) | Value::Bytes(_) | Value::String(_) => {
            let index = match &key {
                Value::Integer(i) => *i,
                Value::Float(f) => go_float_to_int(*f),
                other => {
                    return fail(format!("invalid operation: int({})", go_type_name(other)));
                }
            };
            let len = match &from {
                Value::Array(a) => a.len(),
                Value::Bytes(b) => b.len(),
                Value::String(s) => s.len(),
                _ => 0,
            } as i64;
            let i = if index < 0 {
                index.wrapping_add(len)
            } else {
                index
            };
            if i < 0 || i >= len {
                return fail(format!("index out of range: {i} (array length is {len})"));
            }
            let i = i as usize;
            Ok(match &from {
                Value::Array(a) => a[i].clone(),
                Value::Bytes(b) => Value::Integer(b[i].into()),
                Value::String(s) => Value::Integer(s.as_bytes()[i].into()),
                _ => Value::Nil,
            })
        }
        other => fail(format!(
            "cannot fetch {} from {}",
            key_text(),
            go_type_name(other)
        )),
    }
}

fn make_map(args: Vec<Value>) -> CallResult {
    let mut map = expr::__private::IndexMap::new();
    let mut it = args.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        match k {
            Value::String(k) => {
                map.insert(k, v);
            }
            other => {
                return fail(format!(
                    "interface conversion: interface {{}} is {}, not string",
                    go_type_name(&other)
                ));
            }
        }
    }
    Ok(Value::Map(map))
}

fn original_result(ctx: &dyn expr::ContextProvider) -> Value {
    ctx.get(RESULT_KEY).cloned().unwrap_or(Value::Nil)
}

/// The crate's own builtins, for the ones we wrap.
static BUILTINS: LazyLock<Environment<'static>> = LazyLock::new(Environment::new);

/// The process's local time zone would be read from `TZ` or `/etc/localtime` (I/O); Argo's
/// controller runs in UTC, so "Local" is UTC here.
fn no_local(args: Vec<Value>) -> Vec<Value> {
    args.into_iter()
        .map(|a| match a {
            Value::String(s) if s == "Local" => Value::String("UTC".into()),
            other => other,
        })
        .collect()
}

fn build() -> Environment<'static> {
    let mut env = Environment::new();
    env.add_function("timezone", |c| {
        BUILTINS.eval_func(c.ctx, "timezone", no_local(c.args), None)
    });
    env.add_function("date", |c| {
        let mut args = c.args;
        if args.len() == 3 {
            args = no_local(args);
        }
        BUILTINS.eval_func(c.ctx, "date", args, None)
    });
    env.add_function("__fetch", |c| fetch(c.args, false));
    env.add_function("__fetch_opt", |c| fetch(c.args, true));
    env.add_function("__map", |c| make_map(c.args));
    env.add_function("__seq", |c| {
        Ok(c.args.into_iter().last().unwrap_or(Value::Nil))
    });
    env.add_function("asInt", |c| as_int(c.args));
    env.add_function("asFloat", |c| as_float(c.args));
    env.add_function("isNaN", |c| {
        arity("isNaN", &c.args, 1)?;
        Ok(Value::Bool(float_arg(&c.args[0])?.is_nan()))
    });
    env.add_function("isInf", |c| {
        arity("isInf", &c.args, 1)?;
        Ok(Value::Bool(float_arg(&c.args[0])?.is_infinite()))
    });
    env.add_function("isNil", |c| {
        arity("isNil", &c.args, 1)?;
        Ok(Value::Bool(original_result(c.ctx).is_nil()))
    });
    env.add_function("default", |c| {
        arity("default", &c.args, 2)?;
        let result = original_result(c.ctx);
        if result.is_nil() {
            Ok(c.args.into_iter().nth(1).unwrap_or(Value::Nil))
        } else {
            Ok(result)
        }
    });
    env.add_function("now", |c| {
        if !c.args.is_empty() {
            return fail("too many arguments to call now");
        }
        match c.ctx.get(NOW_KEY) {
            Some(Value::String(ts)) => {
                c.env
                    .eval_func(c.ctx, "date", vec![Value::String(ts.clone())], None)
            }
            _ => fail("now() is not available here: no evaluation time was given"),
        }
    });
    env
}

pub(crate) static ENV: LazyLock<Environment<'static>> = LazyLock::new(build);

/// The context of one evaluation.
pub(crate) fn context(result: Option<Value>, now: Option<jiff::Timestamp>) -> Context {
    let mut ctx = Context::default();
    if let Some(result) = result {
        ctx.insert(RESULT_KEY, result.clone());
        ctx.insert("result", result);
    }
    if let Some(now) = now {
        // Nanosecond precision, UTC, as chrono's RFC 3339 parser reads it.
        ctx.insert(
            NOW_KEY,
            Value::String(format!("{}", now.strftime("%Y-%m-%dT%H:%M:%S%.9fZ"))),
        );
    }
    ctx
}

/// One-line form of an evaluator error message, in Go's words where the crate's differ.
pub(crate) fn one_line(e: &expr::Error) -> String {
    match e {
        expr::Error::RegexError(re) => regex_message(&re.to_string()),
        other => {
            let s = other.to_string();
            let s = s
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            go_words(s)
        }
    }
}

/// Rewrites crate messages that print Rust debug output (`type DateTime(DateTimeValue { .. })
/// has no method Foo()`) into Go's (`type time.Time has no method Foo`).
fn go_words(s: String) -> String {
    if let Some(rest) = s.strip_prefix("type ")
        && let Some((value, method)) = rest.rsplit_once(" has no method ")
    {
        let ty = match value.split(['(', ' ']).next().unwrap_or_default() {
            "DateTime" => "time.Time",
            "Duration" => "time.Duration",
            "Integer" => "int",
            "Float" => "float64",
            "String" => "string",
            "Bool" => "bool",
            "Nil" => "<nil>",
            "Array" => "[]interface {}",
            "Map" => "map[string]interface {}",
            "Timezone" => "*time.Location",
            "Month" => "time.Month",
            "Weekday" => "time.Weekday",
            _ => "interface {}",
        };
        return format!("type {ty} has no method {}", method.trim_end_matches("()"));
    }
    s
}

/// `error parsing regexp: <reason>` from the multi-line message of the `regex` crate.
pub(crate) fn regex_message(text: &str) -> String {
    let reason = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.lines().map(str::trim).collect::<Vec<_>>().join(" "));
    format!("error parsing regexp: {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_conversions() {
        assert_eq!(go_float_to_int(2.9), 2);
        assert_eq!(go_float_to_int(-2.9), -2);
        assert_eq!(go_float_to_int(f64::NAN), i64::MIN);
        assert_eq!(parse_go_float("1.5"), Ok(1.5));
        assert!(
            parse_go_float("1e999")
                .unwrap_err()
                .ends_with("value out of range")
        );
        assert!(parse_go_float("0x10").is_err());
        assert!(parse_go_float("NaN").unwrap().is_nan());
        assert_eq!(
            parse_go_float(" 1").unwrap_err(),
            "strconv.ParseFloat: parsing \" 1\": invalid syntax"
        );
    }
}
