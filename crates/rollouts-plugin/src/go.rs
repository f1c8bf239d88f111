//! Go's renderings that measurements carry, shared by providers: floats as Go's
//! `strconv.FormatFloat(f, 'f', -1, 64)` prints them, JSON as Go's `encoding/json` marshals it,
//! and durations as Go's `time.ParseDuration` reads them.

use std::{fmt::Write as _, time::Duration};

use serde_json::Value;

/// Formats a float the way Go's `strconv.FormatFloat(f, 'f', -1, 64)` (and Prometheus'
/// `SampleValue.String()`) does: the shortest decimal that reads back as the same float, never in
/// exponent form; `NaN`, `+Inf`, `-Inf`.
///
/// ```
/// use rollouts_plugin::go::format_float;
/// assert_eq!(format_float(10.0), "10");
/// assert_eq!(format_float(0.1 + 0.2), "0.30000000000000004");
/// assert_eq!(format_float(1e21), "1000000000000000000000");
/// assert_eq!(format_float(f64::INFINITY), "+Inf");
/// ```
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        // Rust's Display prints the shortest round-trip digits without an exponent, as 'f', -1.
        format!("{f}")
    }
}

/// Marshals `value` as Go's `json.Marshal` does: compact, object keys sorted (Go maps), floats in
/// Go's notation (`1e+21`, `1e-7`, `0.5`), and `<`, `>`, `&`, U+2028, U+2029 escaped.
///
/// Numbers stored as integers are printed as integers (a Go `int`); numbers a provider decoded
/// from JSON should be `f64` to print as Go prints a decoded `float64`.
///
/// ```
/// use rollouts_plugin::go::marshal_json;
/// let v = serde_json::json!({"b": 1.0, "a": "<x>", "c": [1e21, 1e-7, 0.5]});
/// assert_eq!(marshal_json(&v), r#"{"a":"\u003cx\u003e","b":1,"c":[1e+21,1e-7,0.5]}"#);
/// ```
pub fn marshal_json(value: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, value);
    out
}

fn write_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64().filter(|_| !n.is_f64()) {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64().filter(|_| !n.is_f64()) {
                let _ = write!(out, "{u}");
            } else {
                out.push_str(&json_float(n.as_f64().unwrap_or(f64::NAN)));
            }
        }
        Value::String(s) => write_json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, key);
                out.push(':');
                write_json(out, &map[key]);
            }
            out.push('}');
        }
    }
}

/// Go's `encoding/json` float encoder: `'f'` notation, or `'e'` below 1e-6 and from 1e21 on,
/// with a two-digit positive exponent and no leading zero in a negative one.
fn json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format!("{f:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let exponent: i32 = exponent.parse().unwrap_or(0);
        if exponent < 0 {
            format!("{mantissa}e-{}", -exponent)
        } else {
            format!("{mantissa}e+{exponent:02}")
        }
    } else {
        format_float(f)
    }
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A Go `time.Duration`: signed nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoDuration(pub i64);

impl GoDuration {
    /// Go's `d.Seconds()`.
    pub fn seconds(self) -> f64 {
        (self.0 / 1_000_000_000) as f64 + (self.0 % 1_000_000_000) as f64 / 1e9
    }

    /// The duration as a [`Duration`], or `None` when it is negative.
    pub fn to_std(self) -> Option<Duration> {
        u64::try_from(self.0).ok().map(Duration::from_nanos)
    }
}

/// Parses a duration exactly as Go's `time.ParseDuration` does (`1h30m`, `1.5s`, `-2m`, `300ms`,
/// `0`), with Go's error messages (`time: invalid duration "x"`).
///
/// ```
/// use rollouts_plugin::go::{parse_duration, GoDuration};
/// assert_eq!(parse_duration("1m30s"), Ok(GoDuration(90_000_000_000)));
/// assert_eq!(parse_duration("1.5h"), Ok(GoDuration(5_400_000_000_000)));
/// assert_eq!(parse_duration("5").unwrap_err(), r#"time: missing unit in duration "5""#);
/// ```
pub fn parse_duration(input: &str) -> Result<GoDuration, String> {
    const LIMIT: u64 = 1 << 63;
    let quoted = format!("{input:?}");
    let invalid = || format!("time: invalid duration {quoted}");
    let mut s = input.as_bytes();
    let mut negative = false;
    if let Some(&sign) = s.first()
        && (sign == b'-' || sign == b'+')
    {
        negative = sign == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(GoDuration(0));
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // The integer part.
        let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut whole: u64 = 0;
        for &c in &s[..digits] {
            whole = whole
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .filter(|v| *v <= LIMIT)
                .ok_or_else(invalid)?;
        }
        s = &s[digits..];
        // The fraction, kept as digits and a scale (overflowing digits are dropped, as in Go).
        let mut fraction: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut fraction_digits = 0;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            fraction_digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for &c in &s[..fraction_digits] {
                if overflow {
                    continue;
                }
                match fraction
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(c - b'0')))
                {
                    Some(v) if v <= LIMIT => {
                        fraction = v;
                        scale *= 10.0;
                    }
                    _ => overflow = true,
                }
            }
            s = &s[fraction_digits..];
        }
        if digits == 0 && fraction_digits == 0 {
            return Err(invalid());
        }
        let unit_len = s
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {quoted}"));
        }
        let unit_text = String::from_utf8_lossy(&s[..unit_len]).into_owned();
        s = &s[unit_len..];
        let unit: u64 = match unit_text.as_str() {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {unit_text:?} in duration {quoted}"
                ));
            }
        };
        if whole > LIMIT / unit {
            return Err(invalid());
        }
        let mut v = whole * unit;
        if fraction > 0 {
            v += (fraction as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total = total
            .checked_add(v)
            .filter(|t| *t <= LIMIT)
            .ok_or_else(invalid)?;
    }
    if negative {
        return Ok(GoDuration((total as i128).wrapping_neg() as i64));
    }
    if total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(GoDuration(total as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_go_prints_them() {
        assert_eq!(format_float(0.98), "0.98");
        assert_eq!(format_float(-0.0), "-0");
        assert_eq!(format_float(1e-7), "0.0000001");
        assert_eq!(format_float(123456789.125), "123456789.125");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn json_marshals_as_go_marshals_it() {
        let v = serde_json::json!({
            "z": [true, null, "a\"b\\c\n\u{1}\u{8}\u{2028}é"],
            "n": [0.0, -0.0, 1.5, 123456789.0, 1e20, 1e21, 1.5e-7, 1e-6, 2.5e300, -3e-10],
            "i": 7,
        });
        assert_eq!(
            marshal_json(&v),
            r#"{"i":7,"n":[0,-0,1.5,123456789,100000000000000000000,1e+21,1.5e-7,0.000001,2.5e+300,-3e-10],"z":[true,null,"a\"b\\c\n\u0001\b\u2028é"]}"#
        );
    }

    #[test]
    fn durations_parse_as_go_parses_them() {
        let ok = |s: &str| parse_duration(s).unwrap().0;
        assert_eq!(ok("0"), 0);
        assert_eq!(ok("-0"), 0);
        assert_eq!(ok("60s"), 60_000_000_000);
        assert_eq!(ok("1h2m3s4ms5us6ns"), 3_723_004_005_006);
        assert_eq!(ok("1.5m"), 90_000_000_000);
        assert_eq!(ok(".5s"), 500_000_000);
        assert_eq!(ok("5.s"), 5_000_000_000);
        assert_eq!(ok("-1m"), -60_000_000_000);
        assert_eq!(ok("3\u{b5}s"), 3_000);
        assert_eq!(ok("9223372036854775807ns"), i64::MAX);
        assert_eq!(ok("-9223372036854775808ns"), i64::MIN);
        assert_eq!(
            parse_duration("").unwrap_err(),
            r#"time: invalid duration """#
        );
        assert_eq!(
            parse_duration("x").unwrap_err(),
            r#"time: invalid duration "x""#
        );
        assert_eq!(
            parse_duration(".s").unwrap_err(),
            r#"time: invalid duration ".s""#
        );
        assert_eq!(
            parse_duration("1d").unwrap_err(),
            r#"time: unknown unit "d" in duration "1d""#
        );
        assert_eq!(
            parse_duration("1m5").unwrap_err(),
            r#"time: missing unit in duration "1m5""#
        );
        assert_eq!(
            parse_duration("9223372036854775808ns").unwrap_err(),
            r#"time: invalid duration "9223372036854775808ns""#
        );
        assert_eq!(
            parse_duration("3000000h").unwrap_err(),
            r#"time: invalid duration "3000000h""#
        );
    }

    #[test]
    fn seconds_and_std() {
        assert_eq!(GoDuration(1_500_000_000).seconds(), 1.5);
        assert_eq!(GoDuration(-1).to_std(), None);
        assert_eq!(
            GoDuration(2_000_000_000).to_std(),
            Some(Duration::from_secs(2))
        );
    }
}
