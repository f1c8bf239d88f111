//! InfluxDB's annotated CSV, read as Argo reads it through `influxdb-client-go`: Go's
//! `encoding/csv` records, `#datatype`/`#group`/`#default` annotations starting each table, a
//! header row, and data rows whose `_value` cell is typed by the column's datatype. Like Argo,
//! reading stops silently at the first problem (a CSV syntax error, a row of the wrong width, a
//! cell that does not parse, an error table): the values read so far are the result.

use std::fmt::Write as _;

use jiff::{
    Timestamp,
    tz::{Offset, TimeZone},
};
use rollouts_plugin::go;
use serde_json::Value;

/// One typed cell, as the Go client types it.
#[derive(Clone, Debug, PartialEq)]
pub enum FluxValue {
    /// An empty cell without default.
    Null,
    /// `string`.
    Str(String),
    /// `double`.
    Float(f64),
    /// `long`.
    Int(i64),
    /// `unsignedLong`.
    UInt(u64),
    /// `boolean`: anything but `false` (any case) is true.
    Bool(bool),
    /// `dateTime:RFC3339` / `dateTime:RFC3339Nano`: the text, the instant, and the offset in
    /// seconds it was written with.
    Time(String, Timestamp, i32),
    /// `duration`: Go nanoseconds.
    Duration(i64),
    /// `base64Binary`: the decoded bytes.
    Bytes(Vec<u8>),
}

impl FluxValue {
    /// The value the conditions see (a JSON value; times as their RFC 3339 text, durations as
    /// nanoseconds, bytes as a list of numbers; NaN and ±Inf, which JSON lacks, as null).
    pub fn to_json(&self) -> Value {
        match self {
            FluxValue::Null => Value::Null,
            FluxValue::Str(s) => Value::String(s.clone()),
            FluxValue::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            FluxValue::Int(i) => Value::from(*i),
            FluxValue::UInt(u) => Value::from(*u),
            FluxValue::Bool(b) => Value::Bool(*b),
            FluxValue::Time(text, ..) => Value::String(text.clone()),
            FluxValue::Duration(d) => Value::from(*d),
            FluxValue::Bytes(b) => Value::Array(b.iter().map(|x| Value::from(*x)).collect()),
        }
    }

    /// Go's `%v` of the value (`0.97`, `1e+06`, `<nil>`, `2026-08-17 10:00:00 +0000 UTC`, `1m30s`).
    pub fn go_string(&self) -> String {
        match self {
            FluxValue::Null => "<nil>".into(),
            FluxValue::Str(s) => s.clone(),
            FluxValue::Float(f) => go_float_v(*f),
            FluxValue::Int(i) => i.to_string(),
            FluxValue::UInt(u) => u.to_string(),
            FluxValue::Bool(b) => b.to_string(),
            FluxValue::Time(_, ts, offset) => go_time(*ts, *offset),
            FluxValue::Duration(d) => go_duration(*d),
            FluxValue::Bytes(b) => format!(
                "[{}]",
                b.iter().map(u8::to_string).collect::<Vec<_>>().join(" ")
            ),
        }
    }
}

/// Go's `fmt.Sprint` of a `[]interface{}`: `[1 2 3]`.
pub fn go_sprint(values: &[FluxValue]) -> String {
    format!(
        "[{}]",
        values
            .iter()
            .map(FluxValue::go_string)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// Go's `%v` of a float64 (`%g` with the shortest digits): exponent form below 1e-4 and from
/// 1e6 (`1e+06`, `1e-05`), else plain (`0.97`, `123456`); `NaN`, `+Inf`, `-Inf`.
pub fn go_float_v(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        go::format_float(f)
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// Go's `time.Time.String()` of an instant parsed with `offset`: `2006-01-02 15:04:05.999999999
/// -0700 MST` (a zero offset is UTC; another offset has no zone name and prints it twice).
fn go_time(ts: Timestamp, offset: i32) -> String {
    let zone = Offset::from_seconds(offset).unwrap_or(Offset::UTC);
    let civil = ts.to_zoned(TimeZone::fixed(zone)).datetime();
    let mut out = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        civil.year(),
        civil.month(),
        civil.day(),
        civil.hour(),
        civil.minute(),
        civil.second()
    );
    let nanos = civil.subsec_nanosecond();
    if nanos > 0 {
        let digits = format!("{nanos:09}");
        let _ = write!(out, ".{}", digits.trim_end_matches('0'));
    }
    let sign = if offset < 0 { '-' } else { '+' };
    let minutes = offset.unsigned_abs() / 60;
    let numeric = format!("{sign}{:02}{:02}", minutes / 60, minutes % 60);
    let name = if offset == 0 {
        "UTC".to_string()
    } else {
        numeric.clone()
    };
    let _ = write!(out, " {numeric} {name}");
    out
}

/// Go's `time.Duration.String()`: `1h0m0s`, `1m30s`, `1.5s`, `2ms`, `0s`.
pub fn go_duration(d: i64) -> String {
    fn frac(v: u64, prec: u32) -> (String, u64) {
        let unit = 10u64.pow(prec);
        let (int, rest) = (v / unit, v % unit);
        if rest == 0 {
            return (String::new(), int);
        }
        let digits = format!("{rest:0width$}", width = prec as usize);
        (format!(".{}", digits.trim_end_matches('0')), int)
    }
    let u = d.unsigned_abs();
    let body = if u == 0 {
        return "0s".into();
    } else if u < 1_000_000_000 {
        let (prec, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        let (fraction, int) = frac(u, prec);
        format!("{int}{fraction}{unit}")
    } else {
        let (fraction, secs) = frac(u, 9);
        let mut out = format!("{}{fraction}s", secs % 60);
        let minutes = secs / 60;
        if minutes > 0 {
            out = format!("{}m{out}", minutes % 60);
            let hours = minutes / 60;
            if hours > 0 {
                out = format!("{hours}h{out}");
            }
        }
        out
    };
    if d < 0 { format!("-{body}") } else { body }
}

/// Go's `encoding/csv` reader (comma `,`, no lazy quotes, records of any width): the records up
/// to the first syntax error, and that error.
pub fn records(text: &str) -> (Vec<Vec<String>>, Option<String>) {
    let text = text.replace("\r\n", "\n");
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        if chars[i] == '\n' {
            // Go skips empty lines.
            i += 1;
            line += 1;
            continue;
        }
        let mut record = Vec::new();
        let mut column = 1;
        loop {
            let mut field = String::new();
            if chars.get(i) == Some(&'"') {
                i += 1;
                column += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return (
                                out,
                                Some(format!(
                                    "parse error on line {line}, column {column}: extraneous or missing \" in quoted-field"
                                )),
                            );
                        }
                        Some('"') if chars.get(i + 1) == Some(&'"') => {
                            field.push('"');
                            i += 2;
                            column += 2;
                        }
                        Some('"') => {
                            i += 1;
                            column += 1;
                            if !matches!(chars.get(i), None | Some(',') | Some('\n')) {
                                return (
                                    out,
                                    Some(format!(
                                        "parse error on line {line}, column {column}: extraneous or missing \" in quoted-field"
                                    )),
                                );
                            }
                            break;
                        }
                        Some(&c) => {
                            if c == '\n' {
                                line += 1;
                                column = 0;
                            }
                            field.push(c);
                            i += 1;
                            column += 1;
                        }
                    }
                }
            } else {
                while let Some(&c) = chars.get(i) {
                    if c == ',' || c == '\n' {
                        break;
                    }
                    if c == '"' {
                        return (
                            out,
                            Some(format!(
                                "parse error on line {line}, column {column}: bare \" in non-quoted-field"
                            )),
                        );
                    }
                    field.push(c);
                    i += 1;
                    column += 1;
                }
            }
            record.push(field);
            match chars.get(i) {
                Some(',') => {
                    i += 1;
                    column += 1;
                }
                Some('\n') => {
                    i += 1;
                    line += 1;
                    break;
                }
                _ => break,
            }
        }
        out.push(record);
    }
    (out, None)
}

/// Go's `base64.StdEncoding.DecodeString` (padded).
fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = s.bytes().filter(|b| *b != b'\n' && *b != b'\r').collect();
    let illegal = |at: usize| format!("illegal base64 data at input byte {at}");
    if !bytes.len().is_multiple_of(4) {
        return Err(illegal(bytes.len() / 4 * 4));
    }
    let pad = bytes.iter().rev().take_while(|b| **b == b'=').count();
    if pad > 2 {
        return Err(illegal(bytes.len() - pad));
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for (at, b) in bytes[..bytes.len() - pad].iter().enumerate() {
        let v = ALPHABET
            .iter()
            .position(|a| a == b)
            .ok_or_else(|| illegal(at))?;
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// The offset (seconds) an RFC 3339 text was written with.
fn rfc3339_offset(s: &str) -> Option<i32> {
    if s.ends_with(['Z', 'z']) {
        return Some(0);
    }
    let zone = s.get(s.len().checked_sub(6)?..)?;
    let sign = match zone.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours: i32 = zone.get(1..3)?.parse().ok()?;
    let minutes: i32 = zone.get(4..6)?.parse().ok()?;
    (zone.as_bytes()[3] == b':').then_some(sign * (hours * 3600 + minutes * 60))
}

/// A cell typed by its column's datatype (Go client's `toValue`).
fn typed(s: &str, datatype: &str, name: &str) -> Result<FluxValue, String> {
    if s.is_empty() {
        return Ok(FluxValue::Null);
    }
    Ok(match datatype {
        "string" => FluxValue::Str(s.into()),
        "dateTime:RFC3339" | "dateTime:RFC3339Nano" => {
            let ts: Timestamp = s.parse().map_err(|e| format!("parsing time {s:?}: {e}"))?;
            let offset = rfc3339_offset(s).ok_or_else(|| format!("parsing time {s:?}"))?;
            FluxValue::Time(s.into(), ts, offset)
        }
        "duration" => FluxValue::Duration(go::parse_duration(s)?.0),
        "double" => FluxValue::Float(
            s.parse()
                .map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"))?,
        ),
        "boolean" => FluxValue::Bool(!s.eq_ignore_ascii_case("false")),
        "long" => FluxValue::Int(
            s.parse()
                .map_err(|_| format!("strconv.ParseInt: parsing {s:?}: invalid syntax"))?,
        ),
        "unsignedLong" => FluxValue::UInt(
            s.parse()
                .map_err(|_| format!("strconv.ParseUint: parsing {s:?}: invalid syntax"))?,
        ),
        "base64Binary" => FluxValue::Bytes(base64_decode(s)?),
        other => return Err(format!("{name} has unknown data type {other}")),
    })
}

/// One table's columns.
#[derive(Default)]
struct Column {
    name: String,
    datatype: String,
    default: String,
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Normal,
    Annotation,
    Error,
}

/// The `_value` of every data row of every table, in order, up to the first problem (returned
/// too, for the log; Argo never looks at it).
pub fn read_values(body: &str) -> (Vec<FluxValue>, Option<String>) {
    let (rows, csv_error) = records(body);
    let mut out = Vec::new();
    let mut columns: Option<Vec<Column>> = None;
    let mut rows = rows.into_iter();
    // Each pass of this loop is one `Next()` of the Go client, whose parsing state starts afresh.
    'next: loop {
        let mut state = State::Normal;
        let mut datatype_found = false;
        loop {
            let Some(row) = rows.next() else {
                return (out, csv_error);
            };
            if row.len() <= 1 {
                continue;
            }
            if row[0].starts_with('#') && state == State::Normal {
                columns = Some((1..row.len()).map(|_| Column::default()).collect());
                state = State::Annotation;
            }
            let Some(table) = columns.as_mut() else {
                return (
                    out,
                    Some("parsing error, annotations not found".to_string()),
                );
            };
            if row.len() - 1 != table.len() {
                return (
                    out,
                    Some(format!(
                        "parsing error, row has different number of columns than the table: {} vs {}",
                        row.len() - 1,
                        table.len()
                    )),
                );
            }
            let cells = &row[1..];
            match row[0].as_str() {
                "" => match state {
                    State::Annotation => {
                        if !datatype_found {
                            return (
                                out,
                                Some("parsing error, datatype annotation not found".to_string()),
                            );
                        }
                        if cells[0] == "error" {
                            state = State::Error;
                        } else {
                            for (column, name) in table.iter_mut().zip(cells) {
                                column.name = name.clone();
                            }
                            state = State::Normal;
                        }
                    }
                    State::Error => {
                        let message = if cells[0].is_empty() {
                            "unknown query error"
                        } else {
                            &cells[0]
                        };
                        let reference = cells
                            .get(1)
                            .filter(|r| !r.is_empty())
                            .map(|r| format!(",{r}"))
                            .unwrap_or_default();
                        return (out, Some(format!("{message}{reference}")));
                    }
                    State::Normal => {
                        let mut value = FluxValue::Null;
                        for (column, cell) in table.iter().zip(cells) {
                            let text = if cell.is_empty() {
                                &column.default
                            } else {
                                cell
                            };
                            match typed(text, &column.datatype, &column.name) {
                                Ok(v) if column.name == "_value" => value = v,
                                Ok(_) => {}
                                Err(e) => return (out, Some(e)),
                            }
                        }
                        out.push(value);
                        continue 'next;
                    }
                },
                "#datatype" => {
                    datatype_found = true;
                    for (column, datatype) in table.iter_mut().zip(cells) {
                        column.datatype = datatype.clone();
                    }
                }
                "#default" => {
                    for (column, default) in table.iter_mut().zip(cells) {
                        column.default = default.clone();
                    }
                }
                // `#group` and rows of unknown kind carry nothing the result needs.
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_TABLES: &str = "#datatype,string,long,dateTime:RFC3339,double,string\r\n\
#group,false,false,false,false,true\r\n\
#default,_result,,,,\r\n\
,result,table,_time,_value,host\r\n\
,,0,2026-08-17T10:00:00Z,0.97,a\r\n\
,,0,2026-08-17T10:01:00Z,1.5,a\r\n\
\r\n\
#datatype,string,long,long,string\r\n\
#group,false,false,false,true\r\n\
#default,_result,,7,\r\n\
,result,table,_value,host\r\n\
,,1,3,b\r\n\
,,1,,b\r\n";

    #[test]
    fn every_table_gives_its_values() {
        let (values, error) = read_values(TWO_TABLES);
        assert_eq!(error, None);
        assert_eq!(
            values,
            vec![
                FluxValue::Float(0.97),
                FluxValue::Float(1.5),
                FluxValue::Int(3),
                FluxValue::Int(7)
            ]
        );
        assert_eq!(go_sprint(&values), "[0.97 1.5 3 7]");
    }

    #[test]
    fn reading_stops_at_the_first_problem() {
        let body = "#datatype,string,long,double\n#group,false,false,false\n#default,_result,,\n,result,table,_value\n,,0,1\n,,0,oops\n,,0,3\n";
        let (values, error) = read_values(body);
        assert_eq!(values, vec![FluxValue::Float(1.0)]);
        assert_eq!(
            error.as_deref(),
            Some("strconv.ParseFloat: parsing \"oops\": invalid syntax")
        );
        let (values, error) = read_values(",result,table,_value\n,,0,1\n");
        assert!(values.is_empty());
        assert_eq!(
            error.as_deref(),
            Some("parsing error, annotations not found")
        );
        let (values, error) = read_values("#group,false,false\n,a,b\n,1,2\n");
        assert!(values.is_empty());
        assert_eq!(
            error.as_deref(),
            Some("parsing error, datatype annotation not found")
        );
        let body =
            "#datatype,string,long\n#group,false,false\n#default,,\n,a,_value\n,x,1\n,x,2,3\n";
        let (values, error) = read_values(body);
        assert_eq!(values, vec![FluxValue::Int(1)]);
        assert_eq!(
            error.as_deref(),
            Some("parsing error, row has different number of columns than the table: 3 vs 2")
        );
    }

    #[test]
    fn error_tables_end_the_result() {
        let body = "#datatype,string,string\n#group,true,true\n#default,,\n,error,reference\n,\"error calling function \"\"mean\"\": no column _value\",897\n";
        let (values, error) = read_values(body);
        assert!(values.is_empty());
        assert_eq!(
            error.as_deref(),
            Some("error calling function \"mean\": no column _value,897")
        );
    }

    #[test]
    fn cells_are_typed_as_the_go_client_types_them() {
        let t = |s: &str, d: &str| typed(s, d, "_value").unwrap();
        assert_eq!(t("TRUE", "boolean"), FluxValue::Bool(true));
        assert_eq!(t("False", "boolean"), FluxValue::Bool(false));
        assert_eq!(
            t("18446744073709551615", "unsignedLong"),
            FluxValue::UInt(u64::MAX)
        );
        assert_eq!(t("1h30m", "duration").go_string(), "1h30m0s");
        assert_eq!(t("aGk=", "base64Binary").go_string(), "[104 105]");
        assert_eq!(t("", "double"), FluxValue::Null);
        assert_eq!(
            t("2026-08-17T10:00:00.5Z", "dateTime:RFC3339Nano").go_string(),
            "2026-08-17 10:00:00.5 +0000 UTC"
        );
        assert_eq!(
            t("2026-08-17T12:00:00+02:00", "dateTime:RFC3339").go_string(),
            "2026-08-17 12:00:00 +0200 +0200"
        );
        assert_eq!(
            typed("x", "decimal", "_value").unwrap_err(),
            "_value has unknown data type decimal"
        );
        assert!(base64_decode("a").is_err());
        assert!(base64_decode("a===").is_err());
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
    }

    #[test]
    fn go_renderings() {
        assert_eq!(go_float_v(1e6), "1e+06");
        assert_eq!(go_float_v(123456.0), "123456");
        assert_eq!(go_float_v(0.0001), "0.0001");
        assert_eq!(go_float_v(0.00001), "1e-05");
        assert_eq!(go_float_v(f64::NAN), "NaN");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(1_500_000), "1.5ms");
        assert_eq!(go_duration(-2_000), "-2µs");
        assert_eq!(go_duration(0), "0s");
        assert_eq!(
            go_sprint(&[
                FluxValue::Null,
                FluxValue::Str("a b".into()),
                FluxValue::Bool(true)
            ]),
            "[<nil> a b true]"
        );
    }

    #[test]
    fn csv_follows_go() {
        let (rows, error) = records("a,\"b,c\",\"d\"\"e\"\n\n,x\n");
        assert_eq!(error, None);
        assert_eq!(
            rows,
            vec![
                vec!["a".to_string(), "b,c".into(), "d\"e".into()],
                vec![String::new(), "x".into()]
            ]
        );
        let (rows, error) = records("a,b\nc,d\"e\n");
        assert_eq!(rows.len(), 1);
        assert_eq!(
            error.as_deref(),
            Some("parse error on line 2, column 4: bare \" in non-quoted-field")
        );
    }
}
