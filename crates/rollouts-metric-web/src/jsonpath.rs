//! Kubernetes (client-go) JSONPath templates, as Argo's web provider evaluates them.
//!
//! `jsonPath: "{$.data.rate}"` is not an RFC 9535 JSONPath but a client-go *template*: text outside
//! braces is literal text, and each `{...}` action is a path in client-go's dialect. Argo parses
//! the template once and keeps the first value of the first node that produced any. The semantics
//! that users see in measurement messages are client-go's, so this module implements that dialect
//! itself rather than translating it to an RFC 9535 engine (which cannot report them):
//!
//! - a missing key is an error, `rate is not found`, not an empty result;
//! - an index outside an array is an error, `array index out of bounds: index 3, length 2`;
//! - filters compare with Go template rules: a JSON number is a Go `float64`, so
//!   `[?(@.code==200)]` (an `int` literal) fails with `incompatible types for comparison`, while
//!   `[?(@.code==200.0)]` matches;
//! - `['a.b']` is re-read as the path `.a.b`, as client-go does;
//! - `{range ...}{end}` blocks are supported.
//!
//! Go iterates maps in random order (`{.*}`, `{..x}`); this module uses key order.

use std::fmt::Write as _;

use serde_json::Value;

/// A parsed template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    nodes: Vec<Top>,
}

/// A top-level node: literal text or an action (`{...}`).
#[derive(Clone, Debug, PartialEq)]
enum Top {
    Text(String),
    Action(Vec<Node>),
}

/// A node inside an action.
#[derive(Clone, Debug, PartialEq)]
enum Node {
    Field(String),
    Wildcard,
    Recursive,
    Array([Param; 3]),
    Filter {
        left: Vec<Node>,
        right: Vec<Node>,
        op: String,
    },
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    Union(Vec<Vec<Node>>),
    Identifier(String),
}

/// One of `start:end:step` of an array selection.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Param {
    value: i64,
    known: bool,
    derived: bool,
}

/// Parses a client-go JSONPath template (the messages are client-go's).
pub fn parse(text: &str) -> Result<Template, String> {
    let mut parser = Parser {
        input: text,
        pos: 0,
    };
    let mut nodes = Vec::new();
    loop {
        let rest = &text[parser.pos..];
        match rest.find('{') {
            Some(at) => {
                if at > 0 {
                    nodes.push(Top::Text(rest[..at].to_string()));
                }
                parser.pos += at + 1;
                nodes.push(Top::Action(parser.action()?));
            }
            None => {
                if !rest.is_empty() {
                    nodes.push(Top::Text(rest.to_string()));
                }
                return Ok(Template { nodes });
            }
        }
    }
}

/// Parses the inside of one action, as client-go's `parseAction` does for filters and unions.
fn parse_action(text: &str) -> Result<Vec<Node>, String> {
    let wrapped = format!("{{{text}}}");
    let template = parse(&wrapped)?;
    match template.nodes.into_iter().next() {
        Some(Top::Action(nodes)) => Ok(nodes),
        _ => Ok(Vec::new()),
    }
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

fn is_terminator(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => matches!(
            c,
            ' ' | '\t' | '\r' | '\n' | '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}'
        ),
    }
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.input[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// The nodes of an action, up to and including its closing brace.
    fn action(&mut self) -> Result<Vec<Node>, String> {
        let mut nodes = Vec::new();
        loop {
            let rest = self.rest();
            if rest.starts_with('}') {
                self.pos += 1;
                return Ok(nodes);
            }
            if rest.starts_with("[?(") {
                self.pos += 3;
                nodes.push(self.filter()?);
                continue;
            }
            if rest.starts_with("..") {
                if nodes.last() == Some(&Node::Recursive) {
                    return Err("invalid multiple recursive descent".into());
                }
                self.pos += 2;
                nodes.push(Node::Recursive);
                if self.peek().is_some_and(is_alphanumeric) {
                    nodes.push(self.field());
                }
                continue;
            }
            match self.next() {
                None | Some('\r' | '\n') => return Err("unclosed action".into()),
                Some(' ' | '@' | '$') => {}
                Some('[') => nodes.extend(self.array()?),
                Some(quote @ ('"' | '\'')) => nodes.push(self.quoted(quote)?),
                Some('.') => nodes.push(self.field()),
                Some(c) if c == '+' || c == '-' || c.is_ascii_digit() => {
                    self.pos -= c.len_utf8();
                    nodes.push(self.number()?);
                }
                Some(c) if is_alphanumeric(c) => {
                    self.pos -= c.len_utf8();
                    let start = self.pos;
                    while !is_terminator(self.peek()) {
                        self.next();
                    }
                    let word = &self.input[start..self.pos];
                    nodes.push(match word {
                        "true" => Node::Bool(true),
                        "false" => Node::Bool(false),
                        _ => Node::Identifier(word.to_string()),
                    });
                }
                Some(c) => {
                    return Err(format!(
                        "unrecognized character in action: U+{:04X} '{c}'",
                        u32::from(c)
                    ));
                }
            }
        }
    }

    /// A field name up to the next terminator that is not escaped with a backslash.
    fn field(&mut self) -> Node {
        let start = self.pos;
        loop {
            match self.peek() {
                Some('\\') => {
                    self.next();
                    self.next();
                }
                c if is_terminator(c) => break,
                _ => {
                    self.next();
                }
            }
        }
        let value = &self.input[start..self.pos];
        if value == "*" {
            Node::Wildcard
        } else {
            Node::Field(value.replace('\\', ""))
        }
    }

    fn number(&mut self) -> Result<Node, String> {
        let start = self.pos;
        if matches!(self.peek(), Some('+' | '-')) {
            self.next();
        }
        while self.peek().is_some_and(|c| c == '.' || c.is_ascii_digit()) {
            self.next();
        }
        let text = &self.input[start..self.pos];
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Node::Int(i));
        }
        text.parse::<f64>()
            .map(Node::Float)
            .map_err(|_| format!("cannot parse number {text}"))
    }

    fn quoted(&mut self, quote: char) -> Result<Node, String> {
        let start = self.pos - 1;
        loop {
            match self.next() {
                None | Some('\n') => return Err("unterminated quoted string".into()),
                Some(c) if c == quote && self.input.as_bytes()[self.pos - 2] != b'\\' => break,
                Some(_) => {}
            }
        }
        let raw = &self.input[start..self.pos];
        unquote(raw)
            .map(Node::Text)
            .ok_or_else(|| format!("unquote string {raw} error invalid syntax"))
    }

    /// An array selection after `[`: an index, a slice, a quoted key or a union.
    fn array(&mut self) -> Result<Vec<Node>, String> {
        let start = self.pos;
        loop {
            match self.next() {
                None | Some('\n') => return Err("unterminated array".into()),
                Some(']') => break,
                Some(_) => {}
            }
        }
        let mut text = &self.input[start..self.pos - 1];
        if text == "*" {
            text = ":";
        }
        let parts: Vec<&str> = text.split(',').collect();
        if parts.len() > 1 {
            let mut union = Vec::new();
            for part in parts {
                union.push(parse_action(&format!("[{}]", part.trim_matches(' ')))?);
            }
            return Ok(vec![Node::Union(union)]);
        }
        if let Some(key) = text
            .strip_prefix('\'')
            .and_then(|t| t.strip_suffix('\''))
            .filter(|k| !k.contains('\''))
        {
            return parse_action(&format!(".{key}"));
        }
        slice(text).map(|params| vec![Node::Array(params)])
    }

    /// A filter after `[?(`, up to its `)]`.
    fn filter(&mut self) -> Result<Node, String> {
        let start = self.pos;
        let (mut begin, mut end) = (false, false);
        let mut pair = '"';
        loop {
            match self.next() {
                None | Some('\n') => return Err("unterminated filter".into()),
                Some(q @ ('"' | '\'')) => {
                    if !begin {
                        begin = true;
                        pair = q;
                        continue;
                    }
                    if self.input.as_bytes()[self.pos - 2] != b'\\' && q == pair {
                        end = true;
                    }
                }
                Some(')') if begin == end => break,
                Some(_) => {}
            }
        }
        if self.next() != Some(']') {
            return Err("unclosed array expect ]".into());
        }
        let text = &self.input[start..self.pos - 2];
        let is_op = |c: char| matches!(c, '!' | '<' | '>' | '=');
        let left_len = text.find(is_op).unwrap_or(text.len());
        let op_len = text[left_len..]
            .find(|c: char| !is_op(c))
            .unwrap_or(text.len() - left_len);
        let (left, rest) = text.split_at(left_len);
        let (op, right) = rest.split_at(op_len);
        if left.is_empty() || op.is_empty() || right.is_empty() {
            return Ok(Node::Filter {
                left: parse_action(text)?,
                right: Vec::new(),
                op: "exists".into(),
            });
        }
        Ok(Node::Filter {
            left: parse_action(left)?,
            right: parse_action(right)?,
            op: op.to_string(),
        })
    }
}

/// client-go's slice syntax `^(-?\d*)(:-?\d*)?(:-?\d*)?$` and its parameter rules.
fn slice(text: &str) -> Result<[Param; 3], String> {
    let invalid = || format!("invalid array index {text}");
    let mut groups: [Option<&str>; 3] = [None, None, None];
    let mut rest = text;
    for (i, group) in groups.iter_mut().enumerate() {
        let body_start = if i == 0 {
            0
        } else if rest.starts_with(':') {
            1
        } else {
            break;
        };
        let body = &rest[body_start..];
        let sign = usize::from(body.starts_with('-'));
        let digits = body[sign..].bytes().take_while(u8::is_ascii_digit).count();
        *group = Some(&rest[..body_start + sign + digits]);
        rest = &rest[body_start + sign + digits..];
    }
    if !rest.is_empty() {
        return Err(invalid());
    }
    let mut params = [Param::default(); 3];
    for i in 0..3 {
        let raw = groups[i].unwrap_or("");
        if !raw.is_empty() {
            let value = if i > 0 { &raw[1..] } else { raw };
            if i > 0 && value.is_empty() {
                params[i].known = false;
            } else {
                params[i].known = true;
                params[i].value = value
                    .parse()
                    .map_err(|_| format!("array index {value} is not a number"))?;
            }
        } else if i == 1 {
            params[1] = Param {
                value: params[0].value + 1,
                known: true,
                derived: true,
            };
        }
    }
    Ok(params)
}

/// Go's `strconv.Unquote`, extended to single-quoted strings (client-go's `UnquoteExtend`).
fn unquote(raw: &str) -> Option<String> {
    let quote = raw.chars().next()?;
    let inner = raw.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == quote {
            return None;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = chars.next()?;
        let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Option<u32> {
            let digits: String = chars.by_ref().take(n).collect();
            (digits.len() == n)
                .then(|| u32::from_str_radix(&digits, 16).ok())
                .flatten()
        };
        out.push(match escaped {
            'a' => '\x07',
            'b' => '\x08',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            '\\' => '\\',
            '\'' | '"' if escaped == quote => escaped,
            'x' => char::from_u32(hex(&mut chars, 2)?)?,
            'u' => char::from_u32(hex(&mut chars, 4)?)?,
            'U' => char::from_u32(hex(&mut chars, 8)?)?,
            '0'..='7' => {
                let rest: String = chars.by_ref().take(2).collect();
                let value = u32::from_str_radix(&format!("{escaped}{rest}"), 8).ok()?;
                char::from_u32(value).filter(|_| rest.len() == 2 && value < 256)?
            }
            _ => return None,
        });
    }
    Some(out)
}

/// A value during evaluation: a part of the document, or a literal of the template (client-go
/// keeps Go types apart: a template `int` is not a JSON `float64`).
#[derive(Clone, Debug)]
enum Val<'a> {
    Json(&'a Value),
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    /// A byte of a string that a wildcard iterated (Go's `uint8`).
    Byte(u8),
    /// Go's invalid `reflect.Value` (what `nil` data becomes).
    Nil,
}

impl Val<'_> {
    fn is_nil(&self) -> bool {
        matches!(self, Val::Nil | Val::Json(Value::Null))
    }

    /// The Go type client-go names in its errors.
    fn go_type(&self) -> &'static str {
        match self {
            Val::Json(Value::Object(_)) => "map[string]interface {}",
            Val::Json(Value::Array(_)) => "[]interface {}",
            Val::Json(Value::String(_)) | Val::Text(_) => "string",
            Val::Json(Value::Number(_)) | Val::Float(_) => "float64",
            Val::Json(Value::Bool(_)) | Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Byte(_) => "uint8",
            Val::Json(Value::Null) | Val::Nil => "<nil>",
        }
    }

    /// The value as Go's `encoding/json` would see it: JSON numbers are floats.
    fn to_json(&self) -> Value {
        match self {
            Val::Json(v) => floats(v),
            Val::Int(i) => Value::from(*i),
            Val::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Val::Bool(b) => Value::Bool(*b),
            Val::Text(s) => Value::String(s.clone()),
            Val::Byte(b) => Value::from(*b),
            Val::Nil => Value::Null,
        }
    }
}

/// A copy of `v` whose numbers are all `f64`, as Go decodes JSON numbers into `float64`.
fn floats(v: &Value) -> Value {
    match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Value::Array(items) => Value::Array(items.iter().map(floats).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), floats(v))).collect())
        }
        other => other.clone(),
    }
}

impl Template {
    /// The first value of the first node that produced any (Argo's `getValue`), JSON numbers as
    /// floats; `Ok(None)` when no node produced a value.
    pub fn first_value(&self, data: &Value) -> Result<Option<Value>, String> {
        let (sets, _) = find(&self.nodes, Val::Json(data), false)?;
        Ok(sets
            .into_iter()
            .find_map(|set| set.into_iter().next())
            .map(|v| v.to_json()))
    }
}

type Sets<'a> = Vec<Vec<Val<'a>>>;

fn has_identifier(nodes: &[Node], name: &str) -> bool {
    nodes
        .iter()
        .any(|n| matches!(n, Node::Identifier(i) if i == name))
}

/// client-go's `FindResults` over `nodes` with `data` as the root: one result set per node, and
/// the index of the `{end}` that closed the range being evaluated, if any.
fn find<'a>(
    nodes: &[Top],
    data: Val<'a>,
    in_range: bool,
) -> Result<(Sets<'a>, Option<usize>), String> {
    let mut sets = Vec::new();
    let mut i = 0;
    while i < nodes.len() {
        match &nodes[i] {
            Top::Text(text) => sets.push(vec![Val::Text(text.clone())]),
            Top::Action(action) if has_identifier(action, "end") => {
                if !in_range {
                    return Err("not in range, nothing to end".into());
                }
                eval_list(vec![data.clone()], action)?;
                return Ok((sets, Some(i)));
            }
            Top::Action(action) if has_identifier(action, "range") => {
                let items = eval_list(vec![data.clone()], action)?;
                let body = &nodes[i + 1..];
                let mut end = None;
                if items.is_empty() {
                    end = find(body, Val::Nil, true)?.1;
                }
                for item in items {
                    let (inner, inner_end) = find(body, item, true)?;
                    sets.extend(inner);
                    end = inner_end;
                }
                if let Some(end) = end {
                    i += end + 1;
                }
            }
            Top::Action(action) => sets.push(eval_list(vec![data.clone()], action)?),
        }
        i += 1;
    }
    Ok((sets, None))
}

fn eval_list<'a>(input: Vec<Val<'a>>, nodes: &[Node]) -> Result<Vec<Val<'a>>, String> {
    nodes
        .iter()
        .try_fold(input, |current, node| walk(current, node))
}

fn walk<'a>(input: Vec<Val<'a>>, node: &Node) -> Result<Vec<Val<'a>>, String> {
    match node {
        Node::Text(text) => Ok(vec![Val::Text(text.clone())]),
        Node::Int(i) => Ok(input.iter().map(|_| Val::Int(*i)).collect()),
        Node::Float(f) => Ok(input.iter().map(|_| Val::Float(*f)).collect()),
        Node::Bool(b) => Ok(input.iter().map(|_| Val::Bool(*b)).collect()),
        Node::Field(name) => field(input, name),
        Node::Array(params) => array(input, *params),
        Node::Filter { left, right, op } => filter(input, left, right, op),
        Node::Wildcard => Ok(input.iter().flat_map(children).collect()),
        Node::Recursive => {
            let mut out = Vec::new();
            recursive(input, &mut out);
            Ok(out)
        }
        Node::Union(lists) => {
            let mut out = Vec::new();
            for list in lists {
                out.extend(eval_list(input.clone(), list)?);
            }
            Ok(out)
        }
        Node::Identifier(name) if name == "range" => Ok(input),
        Node::Identifier(name) if name == "end" => Ok(Vec::new()),
        Node::Identifier(name) => Err(format!("unrecognized identifier {name}")),
    }
}

/// The children a wildcard or a recursive descent visits (maps in key order).
fn children<'a>(value: &Val<'a>) -> Vec<Val<'a>> {
    match value {
        Val::Json(json) => match *json {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                keys.into_iter().map(|k| Val::Json(&map[k])).collect()
            }
            Value::Array(items) => items.iter().map(Val::Json).collect(),
            Value::String(s) => s.bytes().map(Val::Byte).collect(),
            _ => Vec::new(),
        },
        Val::Text(s) => s.bytes().map(Val::Byte).collect(),
        _ => Vec::new(),
    }
}

fn field<'a>(input: Vec<Val<'a>>, name: &str) -> Result<Vec<Val<'a>>, String> {
    if input.is_empty() {
        return Ok(Vec::new());
    }
    let found: Vec<Val<'a>> = input
        .into_iter()
        .filter_map(|v| match v {
            Val::Json(Value::Object(map)) => map.get(name).map(Val::Json),
            _ => None,
        })
        .collect();
    if found.is_empty() {
        return Err(format!("{name} is not found"));
    }
    Ok(found)
}

fn array<'a>(input: Vec<Val<'a>>, node_params: [Param; 3]) -> Result<Vec<Val<'a>>, String> {
    let mut out = Vec::new();
    for value in &input {
        if value.is_nil() {
            continue;
        }
        let Val::Json(Value::Array(items)) = value else {
            return Err(format!("{} is not array or slice", value.go_type()));
        };
        let len = items.len() as i64;
        let mut p = node_params;
        if !p[0].known {
            p[0].value = 0;
        }
        if p[0].value < 0 {
            p[0].value += len;
        }
        if !p[1].known {
            p[1].value = len;
        }
        if p[1].value < 0 || (p[1].value == 0 && p[1].derived) {
            p[1].value += len;
        }
        if p[1].value == p[0].value {
            return Ok(out);
        }
        if p[0].value >= len || p[0].value < 0 {
            return Err(format!(
                "array index out of bounds: index {}, length {len}",
                p[0].value
            ));
        }
        if p[1].value > len || p[1].value < 0 {
            return Err(format!(
                "array index out of bounds: index {}, length {len}",
                p[1].value - 1
            ));
        }
        if p[0].value > p[1].value {
            return Err(format!(
                "starting index {} is greater than ending index {}",
                p[0].value, p[1].value
            ));
        }
        let step = if p[2].known {
            if p[2].value <= 0 {
                return Err("step must be > 0".into());
            }
            p[2].value as usize
        } else {
            1
        };
        let selected = &items[p[0].value as usize..p[1].value as usize];
        out.extend(selected.iter().step_by(step).map(Val::Json));
    }
    Ok(out)
}

fn recursive<'a>(input: Vec<Val<'a>>, out: &mut Vec<Val<'a>>) {
    for value in input {
        let inner = children(&value);
        if !inner.is_empty() {
            out.push(value);
            recursive(inner, out);
        }
    }
}

/// Go template comparison kinds.
#[derive(PartialEq)]
enum Kind {
    Bool,
    Int,
    Uint,
    Float,
    Str,
}

fn kind(v: &Val<'_>) -> Result<Kind, String> {
    match v {
        Val::Json(Value::Bool(_)) | Val::Bool(_) => Ok(Kind::Bool),
        Val::Json(Value::Number(_)) | Val::Float(_) => Ok(Kind::Float),
        Val::Json(Value::String(_)) | Val::Text(_) => Ok(Kind::Str),
        Val::Int(_) => Ok(Kind::Int),
        Val::Byte(_) => Ok(Kind::Uint),
        _ => Err("invalid type for comparison".into()),
    }
}

fn as_f64(v: &Val<'_>) -> f64 {
    match v {
        Val::Json(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Val::Float(f) => *f,
        _ => f64::NAN,
    }
}

fn as_int(v: &Val<'_>) -> i128 {
    match v {
        Val::Int(i) => i128::from(*i),
        Val::Byte(b) => i128::from(*b),
        _ => 0,
    }
}

fn as_str<'v>(v: &'v Val<'_>) -> &'v str {
    match v {
        Val::Json(Value::String(s)) | Val::Text(s) => s,
        _ => "",
    }
}

fn as_bool(v: &Val<'_>) -> bool {
    matches!(v, Val::Json(Value::Bool(true)) | Val::Bool(true))
}

/// Go template `eq`.
fn equal(a: &Val<'_>, b: &Val<'_>) -> Result<bool, String> {
    let (ka, kb) = (kind(a)?, kind(b)?);
    if ka != kb {
        return match (ka, kb) {
            (Kind::Int, Kind::Uint) | (Kind::Uint, Kind::Int) => Ok(as_int(a) == as_int(b)),
            _ => Err("incompatible types for comparison".into()),
        };
    }
    Ok(match ka {
        Kind::Bool => as_bool(a) == as_bool(b),
        Kind::Float => as_f64(a) == as_f64(b),
        Kind::Int | Kind::Uint => as_int(a) == as_int(b),
        Kind::Str => as_str(a) == as_str(b),
    })
}

/// Go template `lt`.
fn less(a: &Val<'_>, b: &Val<'_>) -> Result<bool, String> {
    let (ka, kb) = (kind(a)?, kind(b)?);
    if ka != kb {
        return match (ka, kb) {
            (Kind::Int, Kind::Uint) | (Kind::Uint, Kind::Int) => Ok(as_int(a) < as_int(b)),
            _ => Err("incompatible types for comparison".into()),
        };
    }
    match ka {
        Kind::Bool => Err("invalid type for comparison".into()),
        Kind::Float => Ok(as_f64(a) < as_f64(b)),
        Kind::Int | Kind::Uint => Ok(as_int(a) < as_int(b)),
        Kind::Str => Ok(as_str(a) < as_str(b)),
    }
}

fn compare(op: &str, a: &Val<'_>, b: &Val<'_>) -> Result<bool, String> {
    match op {
        "<" => less(a, b),
        ">" => Ok(!(less(a, b)? || equal(a, b)?)),
        "==" => equal(a, b),
        "!=" => equal(a, b).map(|e| !e),
        "<=" => Ok(less(a, b)? || equal(a, b)?),
        ">=" => less(a, b).map(|l| !l),
        other => Err(format!("unrecognized filter operator {other}")),
    }
}

fn filter<'a>(
    input: Vec<Val<'a>>,
    left: &[Node],
    right: &[Node],
    op: &str,
) -> Result<Vec<Val<'a>>, String> {
    let mut out = Vec::new();
    for value in &input {
        let Val::Json(Value::Array(items)) = value else {
            return Err(format!(
                "{} is not array or slice and cannot be filtered",
                go_print(value)
            ));
        };
        for item in items {
            let element = Val::Json(item);
            let lefts = eval_list(vec![element.clone()], left);
            if op == "exists" {
                if lefts.is_ok_and(|l| !l.is_empty()) {
                    out.push(element);
                }
                continue;
            }
            let lefts = lefts?;
            let l = match lefts.as_slice() {
                [] => continue,
                [one] => one.clone(),
                _ => return Err("can only compare one element at a time".into()),
            };
            let rights = eval_list(vec![element.clone()], right)?;
            let r = match rights.as_slice() {
                [] => continue,
                [one] => one.clone(),
                _ => return Err("can only compare one element at a time".into()),
            };
            if compare(op, &l, &r)? {
                out.push(element);
            }
        }
    }
    Ok(out)
}

/// Roughly Go's `%v` of a value, for the one error message that prints one.
fn go_print(v: &Val<'_>) -> String {
    match v {
        Val::Nil | Val::Json(Value::Null) => "<nil>".into(),
        Val::Json(Value::String(s)) | Val::Text(s) => s.clone(),
        Val::Json(Value::Object(map)) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = String::from("map[");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{k}:{}", go_print(&Val::Json(&map[k])));
            }
            out.push(']');
            out
        }
        Val::Json(other) => other.to_string(),
        Val::Int(i) => i.to_string(),
        Val::Float(f) => f.to_string(),
        Val::Bool(b) => b.to_string(),
        Val::Byte(b) => b.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn first(path: &str, data: &Value) -> Result<Option<Value>, String> {
        parse(path)?.first_value(data)
    }

    fn doc() -> Value {
        json!({
            "data": {
                "ok": true,
                "rate": 0.99,
                "count": 7,
                "weird-key": {"a.b": "dotted"},
                "a": {"b": "nested"},
                "items": [
                    {"name": "x", "v": 1, "code": 200},
                    {"name": "y", "v": 2, "code": 500},
                    {"name": "z", "v": 3}
                ],
                "empty": [],
                "nothing": null
            }
        })
    }

    #[test]
    fn fields_indexes_and_slices() {
        let d = doc();
        let cases: &[(&str, Value)] = &[
            ("{$.data.rate}", json!(0.99)),
            ("{.data.rate}", json!(0.99)),
            ("{.data.ok}", json!(true)),
            ("{.data.count}", json!(7.0)),
            ("{$}", floats(&d)),
            ("{.data.items[0].name}", json!("x")),
            ("{.data.items[-1].name}", json!("z")),
            ("{.data.items[1:].name}", json!("y")),
            ("{.data.items[*].v}", json!(1.0)),
            ("{.data.items[::2].name}", json!("x")),
            ("{.data.weird-key}", json!({"a.b": "dotted"})),
            ("{.data['a.b']}", json!("nested")),
            ("{.data['weird-key']}", json!({"a.b": "dotted"})),
            ("{.data.nothing}", Value::Null),
            ("{.data.items[2,0].name}", json!("z")),
            ("{..rate}", json!(0.99)),
            ("{.data.*}", json!({"b": "nested"})),
            ("{ .data.rate }", json!(0.99)),
        ];
        for (path, want) in cases {
            assert_eq!(
                first(path, &d).unwrap_or_else(|e| panic!("{path}: {e}")),
                Some(want.clone()),
                "{path}"
            );
        }
        // An escaped dot is part of the name (which is not in the document).
        assert_eq!(
            first("{.data.weird\\.key}", &d).unwrap_err(),
            "weird.key is not found"
        );
    }

    #[test]
    fn filters_compare_with_go_template_rules() {
        let d = doc();
        assert_eq!(
            first(r#"{.data.items[?(@.name=="y")].v}"#, &d).unwrap(),
            Some(json!(2.0))
        );
        assert_eq!(
            first("{.data.items[?(@.name=='z')].v}", &d).unwrap(),
            Some(json!(3.0))
        );
        assert_eq!(
            first("{.data.items[?(@.v > 1.5)].name}", &d).unwrap(),
            Some(json!("y"))
        );
        assert_eq!(
            first("{.data.items[?(@.code)].name}", &d).unwrap(),
            Some(json!("x"))
        );
        assert_eq!(
            first("{.data.items[?(@.v==1)].name}", &d).unwrap_err(),
            "incompatible types for comparison"
        );
        // An element without the compared field fails the whole path, as in client-go.
        assert_eq!(
            first("{.data.items[?(@.code >= 300.0)].name}", &d).unwrap_err(),
            "code is not found"
        );

        assert_eq!(
            first(r#"{.data.items[?(@.name=="nobody")].v}"#, &d).unwrap(),
            None
        );
        assert_eq!(
            first("{.data.items[?(@.ok == true)].v}", &d).unwrap_err(),
            "ok is not found"
        );
        let flags = json!({"list": [{"on": false, "n": "a"}, {"on": true, "n": "b"}]});
        assert_eq!(
            first("{.list[?(@.on == true)].n}", &flags).unwrap(),
            Some(json!("b"))
        );
        assert_eq!(
            first("{.list[?(@.on < true)].n}", &flags).unwrap_err(),
            "invalid type for comparison"
        );
        assert_eq!(
            first("{.data.a[?(@.b)]}", &d).unwrap_err(),
            "map[b:nested] is not array or slice and cannot be filtered"
        );
    }

    #[test]
    fn missing_and_out_of_range_are_errors_as_in_client_go() {
        let d = doc();
        assert_eq!(
            first("{.data.missing}", &d).unwrap_err(),
            "missing is not found"
        );
        assert_eq!(
            first("{.data.nothing.deeper}", &d).unwrap_err(),
            "deeper is not found"
        );
        assert_eq!(
            first("{.data.items[5]}", &d).unwrap_err(),
            "array index out of bounds: index 5, length 3"
        );
        assert_eq!(
            first("{.data.items[0:9]}", &d).unwrap_err(),
            "array index out of bounds: index 8, length 3"
        );
        assert_eq!(
            first("{.data.items[2:1]}", &d).unwrap_err(),
            "starting index 2 is greater than ending index 1"
        );
        assert_eq!(
            first("{.data.items[::0]}", &d).unwrap_err(),
            "step must be > 0"
        );
        assert_eq!(
            first("{.data.rate[0]}", &d).unwrap_err(),
            "float64 is not array or slice"
        );
        assert_eq!(
            first("{.data.bogus range}", &d).unwrap_err(),
            "bogus is not found"
        );
        assert_eq!(
            first("{.data.rate}{end}", &d).unwrap_err(),
            "not in range, nothing to end"
        );
        assert_eq!(
            first("{nope}", &d).unwrap_err(),
            "unrecognized identifier nope"
        );
        // Nothing selected is not an error: the caller says "produced no value".
        assert_eq!(first("{.data.empty[*]}", &d).unwrap(), None);
        assert_eq!(first("{.data.empty[*].x}", &d).unwrap(), None);
    }

    #[test]
    fn text_outside_braces_is_literal() {
        let d = doc();
        assert_eq!(
            first("$.data.rate", &d).unwrap(),
            Some(json!("$.data.rate"))
        );
        assert_eq!(
            first("rate: {.data.rate}", &d).unwrap(),
            Some(json!("rate: "))
        );
        assert_eq!(
            first("{.data.empty[*]}{.data.rate}", &d).unwrap(),
            Some(json!(0.99))
        );
        assert_eq!(first(r#"{"quoted"}"#, &d).unwrap(), Some(json!("quoted")));
        assert_eq!(first("", &d).unwrap(), None);
    }

    #[test]
    fn ranges_take_the_first_item() {
        let d = doc();
        assert_eq!(
            first("{range .data.items[*]}{.name}{end}", &d).unwrap(),
            Some(json!("x"))
        );
        assert_eq!(
            first("{range .data.empty[*]}{.name}{end}", &d).unwrap_err(),
            "name is not found"
        );
    }

    #[test]
    fn parse_errors_are_client_go_messages() {
        let cases = [
            ("{.data", "unclosed action"),
            ("{.data[0}", "unterminated array"),
            ("{.data[x]}", "invalid array index x"),
            ("{.data[-]}", "array index - is not a number"),
            ("{.data[?(@.a==1}", "unterminated filter"),
            ("{....a}", "invalid multiple recursive descent"),
            ("{#}", "unrecognized character in action: U+0023 '#'"),
            ("{\"abc}", "unterminated quoted string"),
            ("{1.2.3}", "cannot parse number 1.2.3"),
        ];
        for (path, want) in cases {
            let got = parse(path).map(|t| format!("{t:?}")).expect_err(path);
            assert_eq!(got, want, "{path}");
        }
        assert!(parse("{..a}").is_ok());
        assert!(parse("{.a..b}").is_ok());
    }

    #[test]
    fn literals_and_escapes() {
        assert_eq!(unquote(r#""a\n\"b""#).as_deref(), Some("a\n\"b"));
        assert_eq!(unquote(r"'it\'s'").as_deref(), Some("it's"));
        assert_eq!(unquote(r#""\x41\u00e9\101""#).as_deref(), Some("AéA"));
        assert_eq!(unquote(r#""\q""#), None);
        let d = json!({"list": [1, 2]});
        assert_eq!(first("{.list[0]}", &d).unwrap(), Some(json!(1.0)));
    }
}
