//! Reading Datadog's answers: the v1 timeseries (`series[].pointlist`) and the v2 scalar columns,
//! into what the conditions see and what the measurement records, as Argo shapes them.

use std::collections::BTreeMap;

use rollouts_plugin::{FloatResult, Observation, go};
use serde_json::Value;

use crate::{GROUPS_KEY, GROUPS_TRUNCATED_KEY, float_observation, nil_observation};

/// How many groups the `groups` metadata keeps at most (the lowest and highest half each).
const GROUP_CAP: usize = 100;

/// Go's `encoding/json` wording for a body that is not JSON.
fn syntax_error(body: &[u8], error: &serde_json::Error) -> String {
    let trimmed = body.trim_ascii();
    match trimmed.first() {
        None => "unexpected end of JSON input".to_string(),
        Some(&c) if !b"{[\"-0123456789tfn".contains(&c) => format!(
            "invalid character {:?} looking for beginning of value",
            char::from(c)
        ),
        _ => error.to_string(),
    }
}

/// Go's name for a JSON value's kind in unmarshal errors.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn mismatch(v: &Value, field: &str, go_type: &str) -> String {
    format!(
        "Could not parse JSON body: json: cannot unmarshal {} into Go {field} of type {go_type}",
        kind(v)
    )
}

fn parse(body: &[u8], type_name: &str) -> Result<Value, String> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| format!("Could not parse JSON body: {}", syntax_error(body, &e)))?;
    match doc {
        Value::Object(_) | Value::Null => Ok(doc),
        other => Err(mismatch(&other, "value", type_name)),
    }
}

/// A struct field as Go's decoder finds it: exact name first, else case-insensitively.
fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    let object = v.as_object()?;
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// A number where Go decodes into `float64`: `null` leaves the zero value.
fn float(v: &Value, field_path: &str) -> Result<f64, String> {
    match v {
        Value::Null => Ok(0.0),
        Value::Number(n) => n.as_f64().ok_or_else(|| mismatch(v, field_path, "float64")),
        other => Err(mismatch(other, field_path, "float64")),
    }
}

/// A v1 series as Argo re-encodes it for an empty result: only `pointlist`.
fn series_json(series: &[Option<Vec<Vec<f64>>>]) -> Value {
    Value::Array(
        series
            .iter()
            .map(|points| {
                let list = match points {
                    None => Value::Null,
                    Some(points) => Value::Array(
                        points
                            .iter()
                            .map(|p| Value::Array(p.iter().map(|f| Value::from(*f)).collect()))
                            .collect(),
                    ),
                };
                serde_json::json!({ "pointlist": list })
            })
            .collect(),
    )
}

/// A v1 response: the last point of the first series; no series or no points is nil, recorded as
/// the JSON of the series (`[]`, `null`, `[{"pointlist":[]}]`).
pub(crate) fn v1(body: &[u8]) -> Result<Observation, String> {
    const FIELD: &str = "struct field .Series.Pointlist";
    let doc = parse(body, "datadog.datadogResponseV1")?;
    let series = match field(&doc, "series") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => {
            let mut decoded = Vec::with_capacity(list.len());
            for item in list {
                if !(item.is_object() || item.is_null()) {
                    return Err(mismatch(item, "struct field .Series", "struct"));
                }
                let points = match field(item, "pointlist") {
                    None | Some(Value::Null) => None,
                    Some(Value::Array(points)) => {
                        let mut out = Vec::with_capacity(points.len());
                        for point in points {
                            match point {
                                Value::Null => out.push(Vec::new()),
                                Value::Array(pair) => out.push(
                                    pair.iter()
                                        .map(|v| float(v, FIELD))
                                        .collect::<Result<_, _>>()?,
                                ),
                                other => return Err(mismatch(other, FIELD, "[]float64")),
                            }
                        }
                        Some(out)
                    }
                    Some(other) => return Err(mismatch(other, FIELD, "[][]float64")),
                };
                decoded.push(points);
            }
            Some(decoded)
        }
        Some(other) => return Err(mismatch(other, "struct field .Series", "[]struct")),
    };
    let first_points = series
        .as_ref()
        .and_then(|s| s.first())
        .and_then(|p| p.as_ref())
        .filter(|p| !p.is_empty());
    let Some(points) = first_points else {
        let rendered = match &series {
            None => "null".to_string(),
            Some(series) => go::marshal_json(&series_json(series)),
        };
        return Ok(nil_observation(rendered));
    };
    let last = points.last().map(Vec::as_slice).unwrap_or_default();
    if last.len() != 2 {
        return Err("Datapoint does not have 2 values".to_string());
    }
    Ok(float_observation(last[1]))
}

/// A v2 column: its type and values.
struct Column<'a> {
    kind: &'a str,
    values: &'a [Value],
    raw: &'a Value,
}

fn columns(attributes: Option<&Value>) -> Result<Option<Vec<Column<'_>>>, String> {
    const FIELD: &str = "struct field .Data.Attributes.Columns";
    let Some(list) = attributes.and_then(|a| field(a, "columns")) else {
        return Ok(None);
    };
    let list = match list {
        Value::Null => return Ok(None),
        Value::Array(list) => list,
        other => return Err(mismatch(other, FIELD, "[]struct")),
    };
    let mut out = Vec::with_capacity(list.len());
    for raw in list {
        let kind = match field(raw, "type") {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) => s.as_str(),
            Some(other) => return Err(mismatch(other, "struct field .Columns.Type", "string")),
        };
        let values = match field(raw, "values") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(v)) => v.as_slice(),
            Some(other) => return Err(mismatch(other, "struct field .Columns.Values", "[]")),
        };
        out.push(Column { kind, values, raw });
    }
    Ok(Some(out))
}

/// A value of a number column: `None` for `null`.
fn number(v: &Value) -> Result<Option<f64>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        other => Err(mismatch(
            other,
            "struct field .Data.Attributes.Columns.Values",
            "float64",
        )),
    }
}

/// One row's label in a group column: its tag values joined with `,`.
fn group_label(v: Option<&Value>) -> String {
    match v {
        Some(Value::Array(tags)) => tags
            .iter()
            .map(|t| t.as_str().map_or_else(|| t.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The `groups` metadata, capped (see [`crate::GROUPS_KEY`]).
fn groups_metadata(mut groups: Vec<(String, f64)>) -> BTreeMap<String, String> {
    let mut metadata = BTreeMap::new();
    if groups.len() > GROUP_CAP {
        groups.sort_by(|a, b| a.1.total_cmp(&b.1));
        let high = groups.split_off(groups.len() - GROUP_CAP / 2);
        groups.truncate(GROUP_CAP / 2);
        groups.extend(high);
        metadata.insert(GROUPS_TRUNCATED_KEY.to_string(), "true".to_string());
    }
    let list: Vec<String> = groups
        .iter()
        .map(|(name, value)| {
            format!(
                r#"{{"name":{},"value":{}}}"#,
                go::marshal_json(&Value::String(name.clone())),
                go::marshal_json(&Value::from(*value))
            )
        })
        .collect();
    metadata.insert(GROUPS_KEY.to_string(), format!("[{}]", list.join(",")));
    metadata
}

/// A v2 response. Ungrouped: the first non-null number of the first number column (nil when
/// there is none). Grouped (`type: group` columns present): every non-null number, one per
/// group, and the groups in the metadata.
pub(crate) fn v2(body: &[u8]) -> Result<Observation, String> {
    let doc = parse(body, "datadog.datadogResponseV2")?;
    let data = field(&doc, "data").filter(|d| !d.is_null());
    match data {
        Some(d) if !d.is_object() => return Err(mismatch(d, "struct field .Data", "struct")),
        _ => {}
    }
    match data.and_then(|d| field(d, "errors")) {
        None | Some(Value::Null) => {}
        Some(Value::String(e)) if e.is_empty() => {}
        Some(Value::String(e)) => return Err(format!("There were errors in your query: {e}")),
        Some(other) => return Err(mismatch(other, "struct field .Data.Errors", "string")),
    }
    let attributes = data
        .and_then(|d| field(d, "attributes"))
        .filter(|a| !a.is_null());
    let columns = columns(attributes)?;
    let all = columns.as_deref().unwrap_or_default();
    let number_column = all.iter().find(|c| c.kind.is_empty() || c.kind == "number");
    let groups: Vec<&Column<'_>> = all.iter().filter(|c| c.kind == "group").collect();
    let Some(numbers) = number_column else {
        // Nothing to read: Argo renders the attributes as Go encodes its struct.
        let rendered = match &columns {
            None => r#"{"Columns":null}"#.to_string(),
            Some(cols) => format!(
                r#"{{"Columns":[{}]}}"#,
                cols.iter()
                    .map(|c| go::marshal_json(c.raw))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        return Ok(nil_observation(rendered));
    };
    if groups.is_empty() {
        for v in numbers.values {
            if let Some(value) = number(v)? {
                return Ok(float_observation(value));
            }
        }
        return Ok(nil_observation(go::marshal_json(&Value::Array(
            numbers.values.to_vec(),
        ))));
    }
    let mut values = Vec::new();
    let mut named = Vec::new();
    for (row, v) in numbers.values.iter().enumerate() {
        let Some(value) = number(v)? else { continue };
        let label = groups
            .iter()
            .map(|g| group_label(g.values.get(row)))
            .collect::<Vec<_>>()
            .join(",");
        values.push(value);
        named.push((label, value));
    }
    let rendered = go::marshal_json(&Value::Array(
        values.iter().map(|f| Value::from(*f)).collect(),
    ));
    Ok(Observation::Float {
        result: FloatResult::Vector(values),
        value: rendered,
        metadata: if named.is_empty() {
            BTreeMap::new()
        } else {
            groups_metadata(named)
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scalar(o: Observation) -> (f64, String) {
        match o {
            Observation::Float {
                result: FloatResult::Scalar(f),
                value,
                ..
            } => (f, value),
            other => panic!("expected a scalar, got {other:?}"),
        }
    }

    fn nil(o: Observation) -> String {
        match o {
            Observation::Value {
                result: Value::Null,
                value,
                ..
            } => value,
            other => panic!("expected nil, got {other:?}"),
        }
    }

    #[test]
    fn v1_takes_the_last_point_of_the_first_series() {
        let body = br#"{"series":[{"pointlist":[[1599076135000,0.5],[1599076195000,0.6]]},{"pointlist":[[1,9]]}]}"#;
        assert_eq!(scalar(v1(body).unwrap()), (0.6, "0.6".into()));
        // A null point value decodes to 0, as Go's decoder leaves it.
        assert_eq!(
            scalar(v1(br#"{"series":[{"pointlist":[[1,null]]}]}"#).unwrap()),
            (0.0, "0".into())
        );
        assert_eq!(nil(v1(br#"{"series":[]}"#).unwrap()), "[]");
        assert_eq!(nil(v1(br#"{}"#).unwrap()), "null");
        assert_eq!(
            nil(v1(br#"{"series":[{"pointlist":[]}]}"#).unwrap()),
            r#"[{"pointlist":[]}]"#
        );
        assert_eq!(
            v1(br#"{"series":[{"pointlist":[[1]]}]}"#).unwrap_err(),
            "Datapoint does not have 2 values"
        );
        assert_eq!(
            v1(br#"{"series":[{"pointlist":[[1,"x"]]}]}"#).unwrap_err(),
            "Could not parse JSON body: json: cannot unmarshal string into Go struct field .Series.Pointlist of type float64"
        );
        assert_eq!(
            v1(b"<html>").unwrap_err(),
            "Could not parse JSON body: invalid character '<' looking for beginning of value"
        );
    }

    #[test]
    fn v2_ungrouped_takes_the_first_number() {
        let body = br#"{"data":{"attributes":{"columns":[{"name":"a","type":"number","values":[0.0006]}]}}}"#;
        assert_eq!(scalar(v2(body).unwrap()), (0.0006, "0.0006".into()));
        let body = br#"{"data":{"attributes":{"columns":[{"name":"a","values":[null,2]}]}}}"#;
        assert_eq!(scalar(v2(body).unwrap()), (2.0, "2".into()));
        assert_eq!(
            nil(v2(br#"{"data":{"attributes":{"columns":[{"name":"a","type":"number","values":[]}]}}}"#).unwrap()),
            "[]"
        );
        assert_eq!(nil(v2(br#"{"data":{}}"#).unwrap()), r#"{"Columns":null}"#);
        assert_eq!(
            v2(br#"{"data":{"errors":"some error text"}}"#).unwrap_err(),
            "There were errors in your query: some error text"
        );
        assert_eq!(
            v2(br#"{"data":{"attributes":{"columns":[{"type":"number","values":["x"]}]}}}"#)
                .unwrap_err(),
            "Could not parse JSON body: json: cannot unmarshal string into Go struct field .Data.Attributes.Columns.Values of type float64"
        );
    }

    #[test]
    fn v2_grouped_lists_values_and_groups() {
        let body = json!({"data":{"attributes":{"columns":[
            {"name":"region","type":"group","values":[["us"],["eu"],["ap"]]},
            {"name":"host","type":"group","values":[["h1"],["h2"],["h3"]]},
            {"name":"query1","type":"number","values":[1.5,null,3]}
        ]}}});
        let Observation::Float {
            result,
            value,
            metadata,
        } = v2(body.to_string().as_bytes()).unwrap()
        else {
            panic!("grouped results are a vector")
        };
        assert_eq!(result, FloatResult::Vector(vec![1.5, 3.0]));
        assert_eq!(value, "[1.5,3]");
        assert_eq!(
            metadata[GROUPS_KEY],
            r#"[{"name":"us,h1","value":1.5},{"name":"ap,h3","value":3}]"#
        );
        assert!(!metadata.contains_key(GROUPS_TRUNCATED_KEY));
    }

    #[test]
    fn more_than_a_hundred_groups_keep_the_extremes() {
        let n = 150;
        let groups: Vec<Value> = (0..n).map(|i| json!([format!("g{i}")])).collect();
        // Values out of order: 149, 148, ..., 0.
        let values: Vec<Value> = (0..n).map(|i| json!((n - 1 - i) as f64)).collect();
        let body = json!({"data":{"attributes":{"columns":[
            {"name":"g","type":"group","values":groups},
            {"name":"q","type":"number","values":values}
        ]}}});
        let Observation::Float {
            result: FloatResult::Vector(all),
            metadata,
            ..
        } = v2(body.to_string().as_bytes()).unwrap()
        else {
            panic!("grouped results are a vector")
        };
        assert_eq!(all.len(), n);
        assert_eq!(metadata[GROUPS_TRUNCATED_KEY], "true");
        let kept: Vec<Value> = serde_json::from_str(&metadata[GROUPS_KEY]).unwrap();
        assert_eq!(kept.len(), 100);
        let values: Vec<f64> = kept.iter().map(|g| g["value"].as_f64().unwrap()).collect();
        assert_eq!(values[0], 0.0);
        assert_eq!(values[49], 49.0);
        assert_eq!(values[50], 100.0);
        assert_eq!(values[99], 149.0);
        assert_eq!(kept[0]["name"], "g149");
    }
}
