//! Go `encoding/json` output conventions: string escaping, number formatting, and the compact
//! form of raw JSON values.
//!
//! Everything here reproduces what Go writes with `json.Marshal` (HTML escaping on), and what
//! the Kubernetes API server therefore serves: object keys sorted by bytes, integers that fit
//! `int64` printed as integers, every other number as a Go `float64`.

use serde_json::{Number, Value};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a Go JSON string literal (quotes included).
///
/// Go escapes `"` and `\`, writes `\b \f \n \r \t` short, other control characters as
/// `\u00XX`, and (HTML-safe mode, the `json.Marshal` default) `<`, `>`, `&`, U+2028 and U+2029
/// as `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`. DEL (0x7f) and all other characters are
/// written as they are.
pub(crate) fn push_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    push_string_body(out, s);
    out.push(b'"');
}

/// Like [`push_string`] without the surrounding quotes.
pub(crate) fn push_string_body(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape: Option<&[u8]> = match c {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            '\u{8}' => Some(b"\\b"),
            '\u{c}' => Some(b"\\f"),
            '\n' => Some(b"\\n"),
            '\r' => Some(b"\\r"),
            '\t' => Some(b"\\t"),
            '\u{2028}' => Some(b"\\u2028"),
            '\u{2029}' => Some(b"\\u2029"),
            _ => None,
        };
        let needs_hex = escape.is_none() && ((c as u32) < 0x20 || matches!(c, '<' | '>' | '&'));
        if escape.is_none() && !needs_hex {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => {
                let b = c as u32 as u8;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        start = i + c.len_utf8();
    }
    out.extend_from_slice(&bytes[start..]);
}

/// The text Go writes for a JSON number once it has been through the API server: an integer
/// that fits `int64` as an integer, anything else as a Go `float64`.
pub(crate) fn number_text(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    // A u64 above i64::MAX, or a float: the API server decodes both as float64.
    let f = n.as_f64().unwrap_or(f64::NAN);
    format_float(f, 64)
}

/// Formats a float the way `encoding/json` does: shortest round-trip digits, plain decimal
/// notation for 1e-6 <= |f| < 1e21, exponent notation (`1e+21`, `1.5e-7`) otherwise.
pub(crate) fn format_float(f: f64, bits: u32) -> String {
    if !f.is_finite() {
        // serde_json never produces these; Go would fail to marshal them.
        return "null".to_owned();
    }
    // Shortest digits that round-trip at the requested precision.
    let sci = if bits == 32 {
        #[allow(clippy::cast_possible_truncation)]
        let g = f as f32;
        format!("{g:e}")
    } else {
        format!("{f:e}")
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let abs = f.abs();
    let use_exp = abs != 0.0
        && if bits == 32 {
            #[allow(clippy::cast_possible_truncation)]
            let a = abs as f32;
            !(1e-6..1e21).contains(&a)
        } else {
            !(1e-6..1e21).contains(&abs)
        };
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if digits == "0" {
        out.push('0');
        return out;
    }
    if use_exp {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        if exp < 0 {
            // Go writes at least two exponent digits, then encoding/json turns e-07 into e-7.
            out.push('-');
            out.push_str(&(-exp).to_string());
        } else {
            out.push('+');
            out.push_str(&format!("{exp:02}"));
        }
        return out;
    }
    // Plain notation: the point sits after digit number exp+1.
    let len = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    if exp >= len - 1 {
        out.push_str(&digits);
        for _ in 0..(exp - (len - 1)) {
            out.push('0');
        }
    } else if exp >= 0 {
        let point = usize::try_from(exp + 1).unwrap_or(0);
        out.push_str(&digits[..point]);
        out.push('.');
        out.push_str(&digits[point..]);
    } else {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    }
    out
}

/// Appends the compact Go form of an arbitrary JSON value, as the API server serves it and as
/// Go re-emits a `json.RawMessage` holding it: keys sorted by bytes, Go string escaping, Go
/// number formatting.
pub(crate) fn push_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(number_text(n).as_bytes()),
        Value::String(s) => push_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_string(out, k);
                out.push(b':');
                push_value(out, item);
            }
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut out = Vec::new();
        push_string(&mut out, s);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn escapes_like_go() {
        assert_eq!(esc("a<b>&c"), r#""a\u003cb\u003e\u0026c""#);
        assert_eq!(esc("q\"b\\"), r#""q\"b\\""#);
        assert_eq!(
            esc("\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f}"),
            "\"\\b\\f\\n\\r\\t\\u0001\\u001f\u{7f}\""
        );
        assert_eq!(esc("x\u{2028}y\u{2029}"), r#""x\u2028y\u2029""#);
        assert_eq!(esc("é🚀/"), "\"é🚀/\"");
    }

    #[test]
    fn floats_like_go() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (0.5, "0.5"),
            (1e3, "1000"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e-7, "1.5e-7"),
            (1e-6, "0.000001"),
            (1.2345678901234568e29, "1.2345678901234568e+29"),
            (123.456, "123.456"),
            (-2.5e-10, "-2.5e-10"),
            (1.8446744073709552e19, "18446744073709552000"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
        ];
        for (f, want) in cases {
            assert_eq!(format_float(*f, 64), *want, "{f:e}");
        }
        assert_eq!(format_float(0.1, 32), "0.1");
        assert_eq!(format_float(1e22, 32), "1e+22");
    }

    #[test]
    fn raw_values_are_sorted_and_compact() {
        let v: Value = serde_json::json!({"b": [1, 2.0, "<"], "a": {"z": null, "A": true}});
        let mut out = Vec::new();
        push_value(&mut out, &v);
        assert_eq!(
            String::from_utf8(out).unwrap_or_default(),
            r#"{"a":{"A":true,"z":null},"b":[1,2,"\u003c"]}"#
        );
    }
}
