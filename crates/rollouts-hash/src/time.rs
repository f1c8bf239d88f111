//! `metav1.Time` as Go decodes and re-encodes it: `time.Parse(time.RFC3339, s)`, then
//! `MarshalJSON` writes the instant in UTC with whole seconds (`2006-01-02T15:04:05Z`), or
//! `null` for the zero instant (0001-01-01T00:00:00Z).
//!
//! Go's parser for the RFC 3339 layout accepts a little more than RFC 3339 and this module
//! accepts exactly the same: a one-digit hour, `,` as the fraction separator, any number of
//! fraction digits (only nine are read), and offsets up to `±24:60`. Years 0000–9999 only; the
//! UTC result can be year -1 or 10000, which Go prints as `-0001` and `10000`.

/// An instant: seconds since the Unix epoch (UTC) plus nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Instant {
    unix: i64,
    nanos: u32,
}

/// Days from 1970-01-01 to the given proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in(month: u32, year: i64) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digit(b: &[u8], i: usize) -> Option<u32> {
    b.get(i)
        .filter(|c| c.is_ascii_digit())
        .map(|c| u32::from(c - b'0'))
}

/// Go's `getnum`: one or two digits (exactly two when `fixed`).
fn getnum(b: &[u8], fixed: bool) -> Option<(u32, &[u8])> {
    let first = digit(b, 0)?;
    match digit(b, 1) {
        Some(second) => Some((first * 10 + second, &b[2..])),
        None if fixed => None,
        None => Some((first, &b[1..])),
    }
}

impl Instant {
    /// Go's zero `time.Time`: 0001-01-01T00:00:00Z.
    fn zero() -> Instant {
        Instant {
            unix: days_from_civil(1, 1, 1) * 86_400,
            nanos: 0,
        }
    }

    /// Whether this is Go's zero time (`Time.IsZero`).
    pub(crate) fn is_zero(self) -> bool {
        self == Instant::zero()
    }

    /// `time.Parse(time.RFC3339, s)`; `None` where Go returns an error.
    pub(crate) fn parse_rfc3339(s: &str) -> Option<Instant> {
        let b = s.as_bytes();
        if b.len() < 4 || !b[0].is_ascii_digit() || !b[..4].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let year = i64::from(
            b[..4]
                .iter()
                .fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0')),
        );
        let rest = b[4..].strip_prefix(b"-")?;
        let (month, rest) = getnum(rest, true)?;
        if !(1..=12).contains(&month) {
            return None;
        }
        let rest = rest.strip_prefix(b"-")?;
        let (day, rest) = getnum(rest, true)?;
        let rest = rest.strip_prefix(b"T")?;
        let (hour, rest) = getnum(rest, false)?;
        if hour >= 24 {
            return None;
        }
        let rest = rest.strip_prefix(b":")?;
        let (minute, rest) = getnum(rest, true)?;
        if minute >= 60 {
            return None;
        }
        let rest = rest.strip_prefix(b":")?;
        let (second, mut rest) = getnum(rest, true)?;
        if second >= 60 {
            return None;
        }
        let mut nanos = 0u32;
        if rest.len() >= 2 && matches!(rest[0], b'.' | b',') && rest[1].is_ascii_digit() {
            let n = 1 + rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            // Go reads at most nine digits and scales them to nanoseconds.
            let read = &rest[1..n.min(10)];
            for pos in 0..9 {
                nanos = nanos * 10 + read.get(pos).map_or(0, |c| u32::from(c - b'0'));
            }
            rest = &rest[n..];
        }
        let offset_seconds: i64 = if rest.first() == Some(&b'Z') {
            rest = &rest[1..];
            0
        } else {
            if rest.len() < 6 || rest[3] != b':' {
                return None;
            }
            let (hh, _) = getnum(&rest[1..3], true)?;
            let (mm, _) = getnum(&rest[4..6], true)?;
            if hh > 24 || mm > 60 {
                return None;
            }
            let off = i64::from((hh * 60 + mm) * 60);
            let off = match rest[0] {
                b'+' => off,
                b'-' => -off,
                _ => return None,
            };
            rest = &rest[6..];
            off
        };
        if !rest.is_empty() {
            return None;
        }
        if day < 1 || day > days_in(month, year) {
            return None;
        }
        let local = days_from_civil(year, month, day) * 86_400
            + i64::from(hour) * 3600
            + i64::from(minute) * 60
            + i64::from(second);
        Some(Instant {
            unix: local - offset_seconds,
            nanos,
        })
    }

    /// `t.UTC().Format(time.RFC3339)`.
    pub(crate) fn format_rfc3339_utc(self) -> String {
        let days = self.unix.div_euclid(86_400);
        let secs = self.unix.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let year_text = if year < 0 {
            format!("-{:04}", -year)
        } else {
            format!("{year:04}")
        };
        format!(
            "{year_text}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(s: &str) -> Option<String> {
        Instant::parse_rfc3339(s).map(Instant::format_rfc3339_utc)
    }

    #[test]
    fn parses_and_formats_like_go() {
        assert_eq!(
            fmt("2024-02-29T23:30:00.123456789+01:30").as_deref(),
            Some("2024-02-29T22:00:00Z")
        );
        assert_eq!(
            fmt("2024-01-01T1:02:03,5Z").as_deref(),
            Some("2024-01-01T01:02:03Z")
        );
        assert_eq!(
            fmt("2023-12-31T22:00:00+24:00").as_deref(),
            Some("2023-12-30T22:00:00Z")
        );
        assert_eq!(
            fmt("0000-01-01T00:30:00+01:00").as_deref(),
            Some("-0001-12-31T23:30:00Z")
        );
        assert_eq!(
            fmt("9999-12-31T23:59:59-01:00").as_deref(),
            Some("10000-01-01T00:59:59Z")
        );
        assert_eq!(
            fmt("1970-01-01T00:00:00Z").as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        for bad in [
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00+1:00",
            "2024-01-01T00:00:00+25:00",
            "2024-01-01T00:00:00Zx",
            "24-01-01T00:00:00Z",
            "",
        ] {
            assert_eq!(fmt(bad), None, "{bad}");
        }
    }

    #[test]
    fn zero_instant() {
        assert!(Instant::parse_rfc3339("0001-01-01T00:00:00Z").is_some_and(Instant::is_zero));
        assert!(Instant::parse_rfc3339("0001-01-01T01:00:00+01:00").is_some_and(Instant::is_zero));
        assert!(
            !Instant::parse_rfc3339("0001-01-01T00:00:00.000000001Z").is_some_and(Instant::is_zero)
        );
    }
}
