//! `IntOrString` arithmetic as Argo does it (`maxSurge`, `maxUnavailable`).
//!
//! Argo resolves these with the deprecated Kubernetes `GetValueFromIntOrPercent`: an integer is
//! used as is, and **any** string is a percentage after every `%` is removed, so `"25"` means
//! 25 %. Surge rounds up and unavailability rounds down. A string that is not a number makes the
//! resolution fail, which Argo turns into zero for both values.

/// An integer or a string, mirroring `k8s_openapi`'s `IntOrString` without depending on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntOrStr {
    /// A plain integer.
    Int(i32),
    /// A string: a percentage for the fields this module resolves.
    Str(String),
}

impl IntOrStr {
    /// Go's `IntOrString.IntValue()`: the integer, or the string parsed with `strconv.Atoi`
    /// (0 when it does not parse).
    pub fn int_value(&self) -> i64 {
        match self {
            IntOrStr::Int(i) => i64::from(*i),
            IntOrStr::Str(s) => go_atoi(s).unwrap_or(0),
        }
    }
}

/// Go's `strconv.Atoi` for 64-bit `int`: optional sign, ASCII digits, nothing else.
pub fn go_atoi(s: &str) -> Option<i64> {
    let bytes = s.as_bytes();
    let (neg, digits) = match bytes.first() {
        Some(b'+') => (false, &bytes[1..]),
        Some(b'-') => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?;
        let d = i64::from(d - b'0');
        v = if neg {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    Some(v)
}

/// Kubernetes `GetValueFromIntOrPercent` (the deprecated variant Argo calls).
///
/// Returns `None` when a string value is not a number once `%` signs are removed.
pub fn value_from_int_or_percent(value: &IntOrStr, total: i32, round_up: bool) -> Option<i64> {
    match value {
        IntOrStr::Int(i) => Some(i64::from(*i)),
        IntOrStr::Str(s) => {
            let stripped = s.replace('%', "");
            let pct = go_atoi(&stripped)?;
            let scaled = pct as f64 * f64::from(total) / 100.0;
            Some(if round_up {
                scaled.ceil() as i64
            } else {
                scaled.floor() as i64
            })
        }
    }
}

/// Resolved `maxSurge` / `maxUnavailable` pod counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fenceposts {
    /// Extra pods allowed above `spec.replicas`.
    pub max_surge: i32,
    /// Pods allowed to be unavailable.
    pub max_unavailable: i32,
}

/// Argo's canary `MaxSurge`/`MaxUnavailable` (`utils/replicaset/replicaset.go`).
///
/// Surge rounds up, unavailability rounds down; when both resolve to zero, unavailability
/// becomes 1. Only `max_unavailable` is capped at `replicas` (and is 0 when `replicas` is 0). A
/// value that does not parse makes both zero before the both-zero rule, as in Argo.
pub fn canary_fenceposts(
    max_surge: &IntOrStr,
    max_unavailable: &IntOrStr,
    replicas: i32,
) -> Fenceposts {
    let (surge, unavailable) = match (
        value_from_int_or_percent(max_surge, replicas, true),
        value_from_int_or_percent(max_unavailable, replicas, false),
    ) {
        (Some(s), Some(u)) => {
            let u = if s == 0 && u == 0 { 1 } else { u };
            (s as i32, u as i32)
        }
        _ => (0, 0),
    };
    let max_unavailable = if replicas == 0 {
        0
    } else {
        unavailable.min(replicas)
    };
    Fenceposts {
        max_surge: surge,
        max_unavailable,
    }
}

/// Argo's blue-green `MaxUnavailable`: resolved alone (no both-zero rule), capped at `replicas`.
pub fn bluegreen_max_unavailable(max_unavailable: &IntOrStr, replicas: i32) -> i32 {
    if replicas == 0 {
        return 0;
    }
    let u = value_from_int_or_percent(max_unavailable, replicas, false).unwrap_or(0) as i32;
    u.min(replicas)
}

/// The value Argo's validation compares to zero for the both-zero rule: a valid `N%` string
/// gives `N`, anything else `IntValue()`.
pub fn validation_value(value: &IntOrStr) -> i64 {
    if let IntOrStr::Str(s) = value
        && let Some(num) = s.strip_suffix('%')
        && !num.is_empty()
        && num.bytes().all(|b| b.is_ascii_digit())
    {
        return go_atoi(num).unwrap_or(0);
    }
    value.int_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> IntOrStr {
        IntOrStr::Str(v.to_string())
    }

    #[test]
    fn strings_without_percent_are_percentages() {
        assert_eq!(value_from_int_or_percent(&s("25"), 10, true), Some(3));
        assert_eq!(value_from_int_or_percent(&s("25%"), 10, false), Some(2));
        assert_eq!(
            value_from_int_or_percent(&IntOrStr::Int(3), 10, false),
            Some(3)
        );
        assert_eq!(value_from_int_or_percent(&s("x"), 10, false), None);
    }

    #[test]
    fn fencepost_table() {
        // (maxSurge, maxUnavailable, replicas) -> (surge, unavailable)
        let cases = [
            (s("25%"), s("25%"), 10, 3, 2),
            (s("25"), s("25"), 10, 3, 2),
            (s("25%"), s("25%"), 1, 1, 0),
            (IntOrStr::Int(0), s("1%"), 2, 0, 1),
            (s("1%"), s("25%"), 2, 1, 0),
            (IntOrStr::Int(0), s("0%"), 10, 0, 1),
            (IntOrStr::Int(20), IntOrStr::Int(20), 10, 20, 10),
            (s("25%"), s("25%"), 0, 0, 0),
            (s("bad"), IntOrStr::Int(1), 10, 0, 0),
        ];
        for (surge, unavail, replicas, want_s, want_u) in cases {
            let f = canary_fenceposts(&surge, &unavail, replicas);
            assert_eq!(
                (f.max_surge, f.max_unavailable),
                (want_s, want_u),
                "surge {surge:?} unavailable {unavail:?} replicas {replicas}"
            );
        }
    }

    #[test]
    fn validation_value_rules() {
        assert_eq!(validation_value(&s("0%")), 0);
        assert_eq!(validation_value(&s("0")), 0);
        assert_eq!(validation_value(&s("abc")), 0);
        assert_eq!(validation_value(&s("10%")), 10);
        assert_eq!(validation_value(&IntOrStr::Int(0)), 0);
    }

    #[test]
    fn atoi_like_go() {
        assert_eq!(go_atoi("+5"), Some(5));
        assert_eq!(go_atoi("-5"), Some(-5));
        assert_eq!(go_atoi(" 5"), None);
        assert_eq!(go_atoi(""), None);
        assert_eq!(go_atoi("9223372036854775808"), None);
    }
}
