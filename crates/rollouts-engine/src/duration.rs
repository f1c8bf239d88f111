//! Go `time.ParseDuration`-compatible duration parsing.
//!
//! Argo reads durations (pause steps, analysis intervals, experiment durations) with Go's
//! `time.ParseDuration`, so manifests contain strings such as `30s`, `1h30m`, `1.5h`, `-2m3.4s`
//! or `12µs`. This module accepts exactly the same language and produces the same number of
//! nanoseconds, including the overflow limits and the float rounding Go applies to fractions.
//!
//! Grammar: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or a lone `0` (with an optional sign); units are
//! `ns`, `us`, `µs` (U+00B5), `μs` (U+03BC), `ms`, `s`, `m`, `h`.

use std::fmt;

/// A signed duration in nanoseconds, the representation of Go's `time.Duration`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoDuration(pub i64);

/// One nanosecond.
pub const NANOSECOND: i64 = 1;
/// One microsecond in nanoseconds.
pub const MICROSECOND: i64 = 1_000;
/// One millisecond in nanoseconds.
pub const MILLISECOND: i64 = 1_000_000;
/// One second in nanoseconds.
pub const SECOND: i64 = 1_000_000_000;
/// One minute in nanoseconds.
pub const MINUTE: i64 = 60 * SECOND;
/// One hour in nanoseconds.
pub const HOUR: i64 = 60 * MINUTE;

impl GoDuration {
    /// The duration in nanoseconds.
    pub fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds, truncated toward zero (Go's `int64(d.Seconds())` for in-range values).
    pub fn whole_seconds(self) -> i64 {
        self.0 / SECOND
    }

    /// Go's `d.Seconds()`: the duration as floating-point seconds.
    pub fn seconds_f64(self) -> f64 {
        let sec = self.0 / SECOND;
        let nsec = self.0 % SECOND;
        sec as f64 + nsec as f64 / 1e9
    }
}

/// Why a duration string was rejected; the messages are Go's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string does not follow the duration grammar, or overflows an `i64` of nanoseconds.
    #[error("time: invalid duration {0}")]
    Invalid(String),
    /// A number is not followed by a unit.
    #[error("time: missing unit in duration {0}")]
    MissingUnit(String),
    /// The unit is not one of `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`.
    #[error("time: unknown unit {unit} in duration {input}")]
    UnknownUnit {
        /// The unit, quoted as Go quotes it.
        unit: String,
        /// The whole input, quoted as Go quotes it.
        input: String,
    },
}

const LIMIT: u64 = 1 << 63;

/// Parses a duration exactly like Go's `time.ParseDuration`.
pub fn parse_go_duration(input: &str) -> Result<GoDuration, DurationError> {
    let invalid = || DurationError::Invalid(go_quote(input.as_bytes()));
    let mut s = input.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
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
        let before = s.len();
        let (mut v, rest) = leading_int(s).ok_or_else(invalid)?;
        s = rest;
        let pre = before != s.len();

        let mut post = false;
        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let before = s.len();
            let (f, sc, rest) = leading_fraction(s);
            frac = f;
            scale = sc;
            s = rest;
            post = before != s.len();
        }
        if !pre && !post {
            return Err(invalid());
        }

        let unit_len = s
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(DurationError::MissingUnit(go_quote(input.as_bytes())));
        }
        let (unit_bytes, rest) = s.split_at(unit_len);
        s = rest;
        let unit = unit_nanos(unit_bytes).ok_or_else(|| DurationError::UnknownUnit {
            unit: go_quote(unit_bytes),
            input: go_quote(input.as_bytes()),
        })?;
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if frac > 0 {
            // Go computes this in float64 to stay nanosecond-accurate for fractions of hours.
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total += v;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok(GoDuration((total as i64).wrapping_neg()));
    }
    if total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(GoDuration(total as i64))
}

fn unit_nanos(unit: &[u8]) -> Option<u64> {
    Some(match unit {
        b"ns" => NANOSECOND as u64,
        b"us" => MICROSECOND as u64,
        // U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU, each followed by `s`.
        [0xC2, 0xB5, b's'] | [0xCE, 0xBC, b's'] => MICROSECOND as u64,
        b"ms" => MILLISECOND as u64,
        b"s" => SECOND as u64,
        b"m" => MINUTE as u64,
        b"h" => HOUR as u64,
        _ => return None,
    })
}

/// Consumes leading ASCII digits; `None` on overflow past 2^63.
fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if x > LIMIT / 10 {
            return None;
        }
        x = x * 10 + u64::from(s[i] - b'0');
        if x > LIMIT {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

/// Consumes leading ASCII digits of a fraction; stops accumulating precision on overflow.
fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8]) {
    let mut x: u64 = 0;
    let mut scale = 1.0f64;
    let mut overflow = false;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        let c = s[i];
        i += 1;
        if overflow {
            continue;
        }
        if x > (LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(c - b'0');
        if y > LIMIT {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[i..])
}

/// Quotes bytes the way Go's `time` package does in its errors: valid UTF-8 is kept (with `"`
/// and `\` escaped), anything else becomes `\xNN`.
fn go_quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                push_escaped(&mut out, valid);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // `valid` is valid UTF-8 by construction of `valid_up_to`.
                push_escaped(&mut out, &String::from_utf8_lossy(valid));
                let bad = e.error_len().unwrap_or(after.len()).max(1);
                for b in &after[..bad] {
                    out.push_str(&format!("\\x{b:02x}"));
                }
                rest = &after[bad..];
            }
        }
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // Go quotes U+FFFD (the replacement character) as its UTF-8 bytes.
            '\u{FFFD}' => out.push_str("\\xef\\xbf\\xbd"),
            c => out.push(c),
        }
    }
}

impl fmt::Display for GoDuration {
    /// Seconds with a unit, as Argo prints durations in messages (`30s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.seconds_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's `parseDurationTests` table (src/time/time_test.go).
    #[test]
    fn go_parse_duration_table() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5 * SECOND),
            ("30s", 30 * SECOND),
            ("1478s", 1478 * SECOND),
            ("-5s", -5 * SECOND),
            ("+5s", 5 * SECOND),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * SECOND),
            ("5.6s", 5 * SECOND + 600 * MILLISECOND),
            ("5.s", 5 * SECOND),
            (".5s", 500 * MILLISECOND),
            ("1.0s", SECOND),
            ("1.00s", SECOND),
            ("1.004s", SECOND + 4 * MILLISECOND),
            ("1.0040s", SECOND + 4 * MILLISECOND),
            ("100.00100s", 100 * SECOND + MILLISECOND),
            ("10ns", 10),
            ("11us", 11 * MICROSECOND),
            ("12µs", 12 * MICROSECOND),
            ("12μs", 12 * MICROSECOND),
            ("13ms", 13 * MILLISECOND),
            ("14s", 14 * SECOND),
            ("15m", 15 * MINUTE),
            ("16h", 16 * HOUR),
            ("3h30m", 3 * HOUR + 30 * MINUTE),
            ("10.5s4m", 4 * MINUTE + 10 * SECOND + 500 * MILLISECOND),
            ("-2m3.4s", -(2 * MINUTE + 3 * SECOND + 400 * MILLISECOND)),
            (
                "1h2m3s4ms5us6ns",
                HOUR + 2 * MINUTE + 3 * SECOND + 4 * MILLISECOND + 5 * MICROSECOND + 6,
            ),
            (
                "39h9m14.425s",
                39 * HOUR + 9 * MINUTE + 14 * SECOND + 425 * MILLISECOND,
            ),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * MINUTE),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * MINUTE),
            (
                "0.830103483285477580700h",
                49 * MINUTE + 48 * SECOND + 372_539_827,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_go_duration(input),
                Ok(GoDuration(*want)),
                "input {input:?}"
            );
        }
    }

    /// Go's `parseDurationErrorTests` table: each input is rejected and quoted like Go.
    #[test]
    fn go_parse_duration_error_table() {
        let cases: &[(&[u8], &str)] = &[
            (b"", r#""""#),
            (b"3", r#""3""#),
            (b"-", r#""-""#),
            (b"s", r#""s""#),
            (b".", r#"".""#),
            (b"-.", r#""-.""#),
            (b".s", r#"".s""#),
            (b"+.s", r#""+.s""#),
            (b"1d", r#""1d""#),
            (b"9223372036854775810ns", r#""9223372036854775810ns""#),
            (b"9223372036854775808ns", r#""9223372036854775808ns""#),
            (b"-9223372036854775809ns", r#""-9223372036854775809ns""#),
            (b"9223372036854776us", r#""9223372036854776us""#),
            (b"3000000h", r#""3000000h""#),
            (b"9223372036854775.808us", r#""9223372036854775.808us""#),
            (
                b"9223372036854ms775us808ns",
                r#""9223372036854ms775us808ns""#,
            ),
        ];
        for (input, quoted) in cases {
            let input = std::str::from_utf8(input).expect("ascii test input");
            let err = parse_go_duration(input).expect_err(input);
            assert!(err.to_string().contains(quoted), "{input:?}: {err}");
        }
        // Invalid UTF-8 cannot reach a &str; the quoting helper is checked directly.
        assert_eq!(go_quote(b"\x85\x85"), r#""\x85\x85""#);
        assert_eq!(go_quote(b"hello \xffff world"), r#""hello \xffff world""#);
        assert_eq!(go_quote("\u{FFFD}".as_bytes()), r#""\xef\xbf\xbd""#);
    }

    #[test]
    fn error_messages_match_go() {
        assert_eq!(
            parse_go_duration("1d").unwrap_err().to_string(),
            r#"time: unknown unit "d" in duration "1d""#
        );
        assert_eq!(
            parse_go_duration("3").unwrap_err().to_string(),
            r#"time: missing unit in duration "3""#
        );
        assert_eq!(
            parse_go_duration("abc").unwrap_err().to_string(),
            r#"time: invalid duration "abc""#
        );
    }

    #[test]
    fn seconds_truncate_toward_zero() {
        assert_eq!(parse_go_duration("1.9s").unwrap().whole_seconds(), 1);
        assert_eq!(parse_go_duration("-1.9s").unwrap().whole_seconds(), -1);
        assert_eq!(parse_go_duration("1h").unwrap().whole_seconds(), 3600);
    }
}
