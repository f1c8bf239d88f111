//! Manifests as people write them: YAML (or JSON) files with one or more documents, read into
//! `serde_json::Value`s together with the line of every field, so that an error can say
//! `rollout.yaml:14: spec.strategy.canary.steps[0].setWeight: ...`.
//!
//! [`parse_documents`] parses a whole file; each [`Document`] keeps its value, the line it
//! starts on and a [`LineIndex`] from field paths (`spec.template.spec.containers[0].image`,
//! the same syntax as `rollouts_api::decode` and the engine's field errors) to lines.
//! [`unknown_fields`] compares what a document says with what a typed decode kept, and names
//! every field the type does not know (strict decoding, as Argo's `lint` and `create` do).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;

use crate::error::Error;

/// One document of a manifest file.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// The document as JSON.
    pub value: Value,
    /// 1-based line where the document's content starts (0 when unknown).
    pub line: u64,
    /// Lines of the document's fields.
    pub lines: LineIndex,
}

impl Document {
    /// `apiVersion` and `kind` (empty strings when absent).
    pub fn type_meta(&self) -> (&str, &str) {
        (
            self.value["apiVersion"].as_str().unwrap_or(""),
            self.value["kind"].as_str().unwrap_or(""),
        )
    }

    /// `metadata.name` (empty when absent).
    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }

    /// The line of the field at `path`, or of its closest ancestor that has one; the document's
    /// own line as the last resort.
    pub fn line_of(&self, path: &str) -> u64 {
        self.lines.line_of(path).unwrap_or(self.line)
    }
}

/// Field path → line (of the key, for mapping entries; of the item, for sequence items).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineIndex(BTreeMap<String, u64>);

impl LineIndex {
    /// The line of `path`, or of its closest ancestor that has one.
    pub fn line_of(&self, path: &str) -> Option<u64> {
        let mut p = path.trim_start_matches('.').to_string();
        loop {
            if let Some(l) = self.0.get(&p) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '[']).filter(|i| *i > 0)?;
            p.truncate(cut);
        }
    }

    /// Number of indexed paths.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A YAML node with the location of every child.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Number(Number),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        i64::try_from(v)
            .map(|v| Node::Number(v.into()))
            .or_else(|_| u64::try_from(v).map(|v| Node::Number(v.into())))
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        u64::try_from(v)
            .map(|v| Node::Number(v.into()))
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Number::from_f64(v)
            .map(Node::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a number JSON can hold")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Spanned<Node>>()? {
            let v = map.next_value::<Spanned<Node>>()?;
            entries.push((k, v));
        }
        Ok(Node::Map(entries))
    }
}

fn key_string(node: &Node) -> Result<String, String> {
    match node {
        Node::Str(s) => Ok(s.clone()),
        Node::Number(n) => Ok(n.to_string()),
        Node::Bool(b) => Ok(b.to_string()),
        Node::Null => Ok("null".to_string()),
        Node::Seq(_) | Node::Map(_) => Err("a mapping key must be a scalar".to_string()),
    }
}

fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// A problem at a line.
type LineError = (u64, String);

fn convert(node: Node, path: &str, lines: &mut BTreeMap<String, u64>) -> Result<Value, LineError> {
    Ok(match node {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(b),
        Node::Number(n) => Value::Number(n),
        Node::Str(s) => Value::String(s),
        Node::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let p = format!("{path}[{i}]");
                lines.entry(p.clone()).or_insert(item.referenced.line());
                out.push(convert(item.value, &p, lines)?);
            }
            Value::Array(out)
        }
        Node::Map(entries) => {
            let mut out = Map::new();
            for (k, v) in entries {
                let key = key_string(&k.value).map_err(|e| (k.referenced.line(), e))?;
                if out.contains_key(&key) {
                    let within = if path.is_empty() {
                        "the document"
                    } else {
                        path
                    };
                    return Err((
                        k.referenced.line(),
                        format!("duplicate key {key:?} in {within}"),
                    ));
                }
                let p = child_path(path, &key);
                lines.insert(p.clone(), k.referenced.line());
                out.insert(key, convert(v.value, &p, lines)?);
            }
            Value::Object(out)
        }
    })
}

/// Parses a file's text: JSON when it starts with `{`, else YAML with any number of documents
/// (empty documents are skipped). `file` names the file in errors.
pub fn parse_documents(file: &str, text: &str) -> Result<Vec<Document>, Error> {
    let first = text.trim_start().chars().next();
    if first == Some('{') || first == Some('[') {
        // JSON is YAML too, but serde_json gives better messages; lines come from the YAML pass
        // when it succeeds.
        if let Err(e) = serde_json::from_str::<Value>(text) {
            return Err(Error::Yaml {
                file: file.to_string(),
                line: e.line() as u64,
                message: e.to_string(),
            });
        }
    }
    let roots: Vec<Spanned<Node>> =
        serde_saphyr::from_str_multiple(text).map_err(|e| yaml_error(file, &e))?;
    let mut docs = Vec::with_capacity(roots.len());
    for root in roots {
        let mut lines = BTreeMap::new();
        let line = root.referenced.line();
        let value = convert(root.value, "", &mut lines).map_err(|(line, message)| Error::Yaml {
            file: file.to_string(),
            line,
            message,
        })?;
        if value.is_null() {
            continue;
        }
        docs.push(Document {
            value,
            line,
            lines: LineIndex(lines),
        });
    }
    Ok(docs)
}

fn yaml_error(file: &str, e: &serde_saphyr::Error) -> Error {
    let line = e.location().map(|l| l.line()).unwrap_or(0);
    // The first line of saphyr's message is the problem; the rest is a source excerpt. The
    // line is already in front of our message, and parser options are not the user's to set.
    let text = e.to_string();
    let mut message = text.lines().next().unwrap_or("invalid YAML").trim();
    message = message.strip_prefix("error: ").unwrap_or(message);
    if let Some(rest) = message.strip_prefix("line ")
        && let Some((pos, rest)) = rest.split_once(": ")
        && pos
            .split(" column ")
            .all(|n| n.trim().parse::<u64>().is_ok())
    {
        message = rest;
    }
    let message = match message.split_once(", set ") {
        Some((head, tail)) if tail.contains("Options") => head,
        _ => message,
    }
    .to_string();
    Error::Yaml {
        file: file.to_string(),
        line,
        message,
    }
}

/// Every field path present in `given` that `kept` does not have (a typed decode dropped it:
/// the type has no such field). `null` values count as absent, as in Kubernetes. Paths use the
/// field-path syntax of [`LineIndex`].
pub fn unknown_fields(given: &Value, kept: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk_unknown(given, kept, "", &mut out);
    out
}

fn walk_unknown(given: &Value, kept: &Value, path: &str, out: &mut Vec<String>) {
    match (given, kept) {
        (Value::Object(g), Value::Object(k)) => {
            for (key, gv) in g {
                if gv.is_null() {
                    continue;
                }
                let p = child_path(path, key);
                match k.get(key) {
                    Some(kv) => walk_unknown(gv, kv, &p, out),
                    None => out.push(p),
                }
            }
        }
        (Value::Array(g), Value::Array(k)) => {
            for (i, (gv, kv)) in g.iter().zip(k.iter()).enumerate() {
                walk_unknown(gv, kv, &format!("{path}[{i}]"), out);
            }
        }
        // A scalar where the type keeps something else (or an object the type keeps as an
        // opaque value) is fine: the decode accepted it.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_fields_in_several_documents() {
        let text = "\
apiVersion: v1
kind: Service
metadata:
  name: web
---
# a comment
apiVersion: argoproj.io/v1alpha1
kind: Rollout
spec:
  strategy:
    canary:
      steps:
      - setWeight: 20
      - pause: {}
---
";
        let docs = parse_documents("f.yaml", text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].name(), "web");
        assert_eq!(docs[0].line_of("metadata.name"), 4);
        assert_eq!(docs[1].type_meta(), ("argoproj.io/v1alpha1", "Rollout"));
        assert_eq!(
            docs[1].line_of("spec.strategy.canary.steps[0].setWeight"),
            13
        );
        assert_eq!(docs[1].line_of("spec.strategy.canary.steps[1].pause"), 14);
        // Unknown paths fall back to the closest ancestor.
        assert_eq!(
            docs[1].line_of("spec.strategy.canary.steps[1].pause.duration"),
            14
        );
        assert_eq!(docs[1].line_of("spec.strategy.canary.nothing"), 11);
    }

    #[test]
    fn json_documents_and_errors() {
        let docs = parse_documents(
            "f.json",
            "{\"kind\": \"Rollout\",\n \"spec\": {\"replicas\": 3}}",
        )
        .unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].value["spec"]["replicas"], 3);
        assert_eq!(docs[0].line_of("spec.replicas"), 2);
        let err = parse_documents("f.json", "{\"kind\": \n").unwrap_err();
        assert!(matches!(err, Error::Yaml { line: 2, .. }), "{err:?}");
    }

    #[test]
    fn invalid_yaml_names_the_line() {
        let err = parse_documents("bad.yaml", "a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        match err {
            Error::Yaml { file, line, .. } => {
                assert_eq!(file, "bad.yaml");
                assert!(line >= 2, "line {line}");
            }
            other => panic!("{other:?}"),
        }
        let dup = parse_documents("dup.yaml", "a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(dup.to_string(), "dup.yaml:3: duplicate mapping key: a");
    }

    #[test]
    fn unknown_fields_are_named_by_path() {
        let given = serde_json::json!({"spec": {"replicas": 1, "replica": 2, "x": null,
            "steps": [{"setWeight": 1}, {"pase": {}}]}});
        let kept = serde_json::json!({"spec": {"replicas": 1, "steps": [{"setWeight": 1}, {}]}});
        assert_eq!(
            unknown_fields(&given, &kept),
            vec!["spec.replica".to_string(), "spec.steps[1].pase".to_string()]
        );
    }
}
