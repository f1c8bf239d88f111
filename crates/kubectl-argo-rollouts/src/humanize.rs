//! Durations and ages the way kubectl prints them (Kubernetes' `HumanDuration`: `45s`, `3m20s`,
//! `2d4h`), so that our columns read like Argo's.

use jiff::{SignedDuration, Timestamp};

/// `d` as kubectl prints an age: seconds below two minutes, then minutes and seconds below ten
/// minutes, minutes below three hours, hours and minutes below eight hours, hours below two
/// days, days and hours below eight days, days below two years, then years (and days below
/// eight years). Up to one second in the future counts as `0s`; more is `<invalid>`.
pub fn human_duration(d: SignedDuration) -> String {
    let secs = d.as_secs();
    if secs < -1 {
        return "<invalid>".to_string();
    }
    if secs < 0 {
        return "0s".to_string();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The age of something created at `created`, seen at `now` (`<unknown>` without a time).
pub fn age(created: Option<Timestamp>, now: Timestamp) -> String {
    match created {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: i64) -> String {
        human_duration(SignedDuration::from_secs(secs))
    }

    #[test]
    fn kubectl_ages() {
        assert_eq!(s(-5), "<invalid>");
        assert_eq!(s(-1), "0s");
        assert_eq!(s(0), "0s");
        assert_eq!(s(119), "119s");
        assert_eq!(s(120), "2m");
        assert_eq!(s(125), "2m5s");
        assert_eq!(s(599), "9m59s");
        assert_eq!(s(600), "10m");
        assert_eq!(s(3 * 3600 - 1), "179m");
        assert_eq!(s(3 * 3600), "3h");
        assert_eq!(s(3 * 3600 + 60), "3h1m");
        assert_eq!(s(8 * 3600), "8h");
        assert_eq!(s(47 * 3600 + 3599), "47h");
        assert_eq!(s(48 * 3600), "2d");
        assert_eq!(s(50 * 3600), "2d2h");
        assert_eq!(s(8 * 86400), "8d");
        assert_eq!(s(729 * 86400), "729d");
        assert_eq!(s(730 * 86400), "2y");
        assert_eq!(s(731 * 86400), "2y1d");
        assert_eq!(s(9 * 365 * 86400), "9y");
    }
}
