//! The data-driven Go JSON round trip: decode a `serde_json::Value` into the Go value that
//! client-go's decoder would build for a table type, then write that Go value the way
//! `json.Marshal` does.
//!
//! Decoding follows `sigs.k8s.io/json` (client-go's non-strict decoder, a fork of
//! `encoding/json`): object keys match struct fields by exact, case-sensitive JSON name; unknown
//! keys are dropped; `null` leaves a value at its Go zero value (nil for pointers, slices and
//! maps, `""`/`0`/`false` otherwise), except for types with their own `UnmarshalJSON`
//! (`null` is a zero `Quantity`, an `IntOrString` of `0`, a zero `Time`, the bytes `null` in a
//! `json.RawMessage`); a value of the wrong JSON type is an error.
//!
//! Numbers are read the way they arrive from the API server: an integer that fits `int64` as
//! an integer, anything else as a `float64` printed in Go's notation. So `30.0` reads as `30`
//! for an integer field (the API server serves it as `30`), while `1.5` or `1e+21` do not fit.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::HashError;
use crate::gojson::{format_float, number_text, push_string, push_value};
use crate::gotypes::TYPES;
use crate::quantity::Quantity;
use crate::table::TypeDef;
use crate::time::Instant;

/// A decoded Go value of some table type.
#[derive(Debug)]
enum GoValue<'a> {
    /// The Go zero value of the type (nil pointer/slice/map, empty struct, `""`, `0`, ...).
    Zero,
    /// A struct: one value per table field.
    Struct(Vec<GoValue<'a>>),
    /// A non-nil pointer.
    Ptr(Box<GoValue<'a>>),
    /// A non-nil slice.
    Slice(Vec<GoValue<'a>>),
    /// A non-nil map (keys sorted by bytes, as Go writes them).
    Map(BTreeMap<&'a str, GoValue<'a>>),
    String(&'a str),
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Quantity(Quantity),
    IntOrStringInt(i32),
    IntOrStringStr(&'a str),
    Time(Instant),
    /// The raw JSON held by a `json.RawMessage` or `metav1.FieldsV1`.
    Raw(&'a Value),
}

/// A path into the input, rendered only for error messages.
#[derive(Debug, Clone, Copy)]
enum Path<'p> {
    Root(&'static str),
    Field(&'p Path<'p>, &'static str),
    Index(&'p Path<'p>, usize),
    Key(&'p Path<'p>, &'p str),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root(name) => (*name).to_owned(),
            Path::Field(parent, name) => format!("{}.{name}", parent.render()),
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
            Path::Key(parent, key) => {
                let mut quoted = Vec::new();
                push_string(&mut quoted, key);
                format!("{}[{}]", parent.render(), String::from_utf8_lossy(&quoted))
            }
        }
    }
}

/// A readable Go spelling of a table type (`[]v1.Container`, `*int32`, ...).
fn go_type_name(ty: usize) -> String {
    match TYPES.get(ty) {
        Some(TypeDef::Struct { name, .. }) => {
            // "k8s.io/api/core/v1.PodSpec" -> "v1.PodSpec"
            name.rsplit('/').next().unwrap_or(name).to_owned()
        }
        Some(TypeDef::Ptr(e)) => format!("*{}", go_type_name(*e)),
        Some(TypeDef::Slice(e)) => format!("[]{}", go_type_name(*e)),
        Some(TypeDef::Map(e)) => format!("map[string]{}", go_type_name(*e)),
        Some(TypeDef::String) => "string".to_owned(),
        Some(TypeDef::Bool) => "bool".to_owned(),
        Some(TypeDef::Int(bits)) => format!("int{bits}"),
        Some(TypeDef::Uint(bits)) => format!("uint{bits}"),
        Some(TypeDef::Float(bits)) => format!("float{bits}"),
        Some(TypeDef::Quantity) => "resource.Quantity".to_owned(),
        Some(TypeDef::IntOrString) => "intstr.IntOrString".to_owned(),
        Some(TypeDef::Time) => "v1.Time".to_owned(),
        Some(TypeDef::FieldsV1) => "v1.FieldsV1".to_owned(),
        Some(TypeDef::RawMessage) => "json.RawMessage".to_owned(),
        None => format!("<type #{ty}>"),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_def(ty: usize) -> Result<&'static TypeDef, HashError> {
    TYPES.get(ty).ok_or(HashError::Table { index: ty })
}

fn wrong_type(ty: usize, v: &Value, path: &Path<'_>) -> HashError {
    HashError::WrongType {
        path: path.render(),
        found: json_kind(v),
        go_type: go_type_name(ty),
    }
}

fn out_of_range(ty: usize, text: String, path: &Path<'_>) -> HashError {
    HashError::NumberOutOfRange {
        path: path.render(),
        value: text,
        go_type: go_type_name(ty),
    }
}

/// Go's integer decoding: `strconv.ParseInt(text, 10, 64)` then a bit-size check.
fn decode_int(ty: usize, bits: u32, v: &Value, path: &Path<'_>) -> Result<i64, HashError> {
    let Value::Number(n) = v else {
        return Err(wrong_type(ty, v, path));
    };
    let text = number_text(n);
    let parsed = text.parse::<i64>().ok().filter(|_| !text.starts_with('+'));
    match parsed {
        Some(i) if bits >= 64 || (i >= -(1i64 << (bits - 1)) && i < (1i64 << (bits - 1))) => Ok(i),
        _ => Err(out_of_range(ty, text, path)),
    }
}

fn decode<'a>(ty: usize, v: &'a Value, path: &Path<'_>) -> Result<GoValue<'a>, HashError> {
    let def = type_def(ty)?;
    // `null` leaves most values at their zero value.
    if v.is_null() {
        return Ok(match def {
            TypeDef::RawMessage => GoValue::Raw(v),
            _ => GoValue::Zero,
        });
    }
    Ok(match *def {
        TypeDef::Struct { fields, .. } => {
            let Value::Object(map) = v else {
                return Err(wrong_type(ty, v, path));
            };
            let mut values = Vec::with_capacity(fields.len());
            for field in fields {
                values.push(match map.get(field.name) {
                    Some(fv) => decode(field.ty, fv, &Path::Field(path, field.name))?,
                    None => GoValue::Zero,
                });
            }
            GoValue::Struct(values)
        }
        TypeDef::Ptr(elem) => GoValue::Ptr(Box::new(decode(elem, v, path)?)),
        TypeDef::Slice(elem) => {
            let Value::Array(items) = v else {
                return Err(wrong_type(ty, v, path));
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(decode(elem, item, &Path::Index(path, i))?);
            }
            GoValue::Slice(out)
        }
        TypeDef::Map(elem) => {
            let Value::Object(map) = v else {
                return Err(wrong_type(ty, v, path));
            };
            let mut out = BTreeMap::new();
            for (key, item) in map {
                out.insert(key.as_str(), decode(elem, item, &Path::Key(path, key))?);
            }
            GoValue::Map(out)
        }
        TypeDef::String => match v {
            Value::String(s) => GoValue::String(s),
            _ => return Err(wrong_type(ty, v, path)),
        },
        TypeDef::Bool => match v {
            Value::Bool(b) => GoValue::Bool(*b),
            _ => return Err(wrong_type(ty, v, path)),
        },
        TypeDef::Int(bits) => GoValue::Int(decode_int(ty, bits, v, path)?),
        TypeDef::Uint(bits) => {
            let Value::Number(n) = v else {
                return Err(wrong_type(ty, v, path));
            };
            let text = number_text(n);
            let parsed = text.parse::<u64>().ok().filter(|_| !text.starts_with('+'));
            match parsed {
                Some(u) if bits >= 64 || u < (1u64 << bits) => GoValue::Uint(u),
                _ => return Err(out_of_range(ty, text, path)),
            }
        }
        TypeDef::Float(bits) => {
            let Value::Number(n) = v else {
                return Err(wrong_type(ty, v, path));
            };
            let text = number_text(n);
            let f: f64 = text
                .parse()
                .map_err(|_| out_of_range(ty, text.clone(), path))?;
            #[allow(clippy::cast_possible_truncation)]
            if bits == 32 && (f as f32).is_infinite() {
                return Err(out_of_range(ty, text, path));
            }
            GoValue::Float(f)
        }
        TypeDef::Quantity => {
            let (parsed, shown) = match v {
                Value::String(s) => (Quantity::from_json_string(s), s.clone()),
                Value::Number(n) => {
                    let text = number_text(n);
                    (Quantity::parse(&text), text)
                }
                // Go hands the raw JSON text to ParseQuantity, which rejects it.
                other => (Err(crate::QuantityError::FormatWrong), other.to_string()),
            };
            GoValue::Quantity(parsed.map_err(|source| HashError::InvalidQuantity {
                path: path.render(),
                value: shown,
                source,
            })?)
        }
        TypeDef::IntOrString => match v {
            Value::String(s) => GoValue::IntOrStringStr(s),
            Value::Number(_) => {
                let i = decode_int(ty, 32, v, path)?;
                GoValue::IntOrStringInt(
                    i32::try_from(i).map_err(|_| out_of_range(ty, i.to_string(), path))?,
                )
            }
            _ => return Err(wrong_type(ty, v, path)),
        },
        TypeDef::Time => {
            match v {
                Value::String(s) => GoValue::Time(Instant::parse_rfc3339(s).ok_or_else(|| {
                    HashError::InvalidTime {
                        path: path.render(),
                        value: s.clone(),
                    }
                })?),
                _ => return Err(wrong_type(ty, v, path)),
            }
        }
        TypeDef::FieldsV1 | TypeDef::RawMessage => GoValue::Raw(v),
    })
}

/// `isEmptyValue` (the `omitempty` test): false, 0, "", nil pointers, empty or nil slices and
/// maps. A struct is never empty.
fn is_empty(def: &TypeDef, v: &GoValue<'_>) -> bool {
    match (def, v) {
        (
            TypeDef::Struct { .. }
            | TypeDef::Quantity
            | TypeDef::IntOrString
            | TypeDef::Time
            | TypeDef::FieldsV1,
            _,
        ) => false,
        (_, GoValue::Zero) => true,
        (TypeDef::Slice(_), GoValue::Slice(items)) => items.is_empty(),
        (TypeDef::Map(_), GoValue::Map(m)) => m.is_empty(),
        (TypeDef::String, GoValue::String(s)) => s.is_empty(),
        (TypeDef::Bool, GoValue::Bool(b)) => !b,
        (TypeDef::Int(_), GoValue::Int(i)) => *i == 0,
        (TypeDef::Uint(_), GoValue::Uint(u)) => *u == 0,
        (TypeDef::Float(_), GoValue::Float(f)) => *f == 0.0,
        // A RawMessage holding a value is never zero-length.
        _ => false,
    }
}

/// The `omitzero` test: the type's `IsZero()` method where it has one (`Time`, `Quantity`,
/// and pointers to them), otherwise `reflect.Value.IsZero`.
fn is_zero(ty: usize, v: &GoValue<'_>) -> bool {
    let Some(def) = TYPES.get(ty) else {
        return false;
    };
    match (def, v) {
        (_, GoValue::Zero) => true,
        (TypeDef::Time, GoValue::Time(t)) => t.is_zero(),
        (TypeDef::Quantity, GoValue::Quantity(q)) => q.is_zero(),
        (TypeDef::Ptr(elem), GoValue::Ptr(inner)) => {
            matches!(TYPES.get(*elem), Some(TypeDef::Time | TypeDef::Quantity))
                && is_zero(*elem, inner)
        }
        (TypeDef::Struct { fields, .. }, GoValue::Struct(values)) => fields
            .iter()
            .zip(values)
            .all(|(f, fv)| is_reflect_zero(f.ty, fv)),
        _ => is_reflect_zero(ty, v),
    }
}

/// `reflect.Value.IsZero` of a decoded value.
fn is_reflect_zero(ty: usize, v: &GoValue<'_>) -> bool {
    match v {
        GoValue::Zero => true,
        GoValue::String(s) => s.is_empty(),
        GoValue::Bool(b) => !b,
        GoValue::Int(i) => *i == 0,
        GoValue::Uint(u) => *u == 0,
        GoValue::Float(f) => f.to_bits() == 0,
        // An IntOrString holding int 0 has Type 0, IntVal 0, StrVal "": all zero.
        GoValue::IntOrStringInt(i) => *i == 0,
        GoValue::Struct(values) => match TYPES.get(ty) {
            Some(TypeDef::Struct { fields, .. }) => fields
                .iter()
                .zip(values)
                .all(|(f, fv)| is_reflect_zero(f.ty, fv)),
            _ => false,
        },
        // Decoded pointers, slices and maps are non-nil; a parsed Quantity or Time has its
        // format or location set; raw JSON is non-empty.
        GoValue::Ptr(_)
        | GoValue::Slice(_)
        | GoValue::Map(_)
        | GoValue::Quantity(_)
        | GoValue::IntOrStringStr(_)
        | GoValue::Time(_)
        | GoValue::Raw(_) => false,
    }
}

fn encode(ty: usize, v: &GoValue<'_>, out: &mut Vec<u8>) -> Result<(), HashError> {
    let def = type_def(ty)?;
    match (def, v) {
        (TypeDef::Struct { fields, .. }, _) => {
            let values = match v {
                GoValue::Struct(values) => values.as_slice(),
                _ => &[],
            };
            out.push(b'{');
            let mut first = true;
            for (i, field) in fields.iter().enumerate() {
                let fv = values.get(i).unwrap_or(&GoValue::Zero);
                let fdef = type_def(field.ty)?;
                if (field.omit_empty && is_empty(fdef, fv))
                    || (field.omit_zero && is_zero(field.ty, fv))
                {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                push_string(out, field.name);
                out.push(b':');
                encode(field.ty, fv, out)?;
            }
            out.push(b'}');
        }
        (TypeDef::Ptr(elem), GoValue::Ptr(inner)) => encode(*elem, inner, out)?,
        (TypeDef::Slice(elem), GoValue::Slice(items)) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                encode(*elem, item, out)?;
            }
            out.push(b']');
        }
        (TypeDef::Map(elem), GoValue::Map(m)) => {
            out.push(b'{');
            for (i, (key, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_string(out, key);
                out.push(b':');
                encode(*elem, item, out)?;
            }
            out.push(b'}');
        }
        (
            TypeDef::Ptr(_)
            | TypeDef::Slice(_)
            | TypeDef::Map(_)
            | TypeDef::FieldsV1
            | TypeDef::RawMessage,
            GoValue::Zero,
        ) => {
            out.extend_from_slice(b"null");
        }
        (TypeDef::String, GoValue::String(s)) => push_string(out, s),
        (TypeDef::String, GoValue::Zero) => out.extend_from_slice(b"\"\""),
        (TypeDef::Bool, GoValue::Bool(true)) => out.extend_from_slice(b"true"),
        (TypeDef::Bool, GoValue::Bool(false) | GoValue::Zero) => out.extend_from_slice(b"false"),
        (TypeDef::Int(_), GoValue::Int(i)) => out.extend_from_slice(i.to_string().as_bytes()),
        (TypeDef::Uint(_), GoValue::Uint(u)) => out.extend_from_slice(u.to_string().as_bytes()),
        (
            TypeDef::Int(_) | TypeDef::Uint(_) | TypeDef::Float(_) | TypeDef::IntOrString,
            GoValue::Zero,
        ) => out.push(b'0'),
        (TypeDef::Float(bits), GoValue::Float(f)) => {
            out.extend_from_slice(format_float(*f, *bits).as_bytes())
        }
        (TypeDef::Quantity, GoValue::Quantity(q)) => {
            out.push(b'"');
            out.extend_from_slice(q.to_string().as_bytes());
            out.push(b'"');
        }
        (TypeDef::Quantity, GoValue::Zero) => out.extend_from_slice(b"\"0\""),
        (TypeDef::IntOrString, GoValue::IntOrStringInt(i)) => {
            out.extend_from_slice(i.to_string().as_bytes())
        }
        (TypeDef::IntOrString, GoValue::IntOrStringStr(s)) => push_string(out, s),
        (TypeDef::Time, GoValue::Time(t)) if !t.is_zero() => {
            out.push(b'"');
            out.extend_from_slice(t.format_rfc3339_utc().as_bytes());
            out.push(b'"');
        }
        (TypeDef::Time, GoValue::Time(_) | GoValue::Zero) => out.extend_from_slice(b"null"),
        (TypeDef::FieldsV1 | TypeDef::RawMessage, GoValue::Raw(raw)) => push_value(out, raw),
        (_, _) => return Err(HashError::Table { index: ty }),
    }
    Ok(())
}

/// Decodes `v` as the Go type at `root` and returns `json.Marshal`'s bytes.
pub(crate) fn go_json(
    root: usize,
    root_name: &'static str,
    v: &Value,
) -> Result<Vec<u8>, HashError> {
    let decoded = decode(root, v, &Path::Root(root_name))?;
    let mut out = Vec::with_capacity(256);
    encode(root, &decoded, &mut out)?;
    Ok(out)
}
