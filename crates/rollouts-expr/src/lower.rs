//! Lowers our syntax tree to a canonical program for the `expr-lang` evaluator.
//!
//! The printed program is fully parenthesized and uses only the part of the crate's grammar that
//! it parses faithfully. Everything whose Go semantics the crate does not have is routed through
//! helper functions registered in `env`: member access and indexing (`__fetch`, Go's errors for
//! out-of-range indexes and fields of non-maps), map literals (`__map`), sequences (`__seq`).
//! Unknown names are rejected here, at compile time, with Go's message (`unknown name foo`).

use crate::parser::{Node, UnaryOp};

/// Go expr builtins (the crate implements these, except where `docs/conditions.md` says not).
const BUILTINS: &[&str] = &[
    "all",
    "none",
    "any",
    "one",
    "filter",
    "map",
    "find",
    "findIndex",
    "findLast",
    "findLastIndex",
    "count",
    "sum",
    "groupBy",
    "sortBy",
    "reduce",
    "len",
    "type",
    "abs",
    "ceil",
    "floor",
    "round",
    "int",
    "float",
    "string",
    "trim",
    "trimPrefix",
    "trimSuffix",
    "upper",
    "lower",
    "split",
    "splitAfter",
    "replace",
    "repeat",
    "join",
    "indexOf",
    "lastIndexOf",
    "hasPrefix",
    "hasSuffix",
    "max",
    "min",
    "mean",
    "median",
    "toJSON",
    "fromJSON",
    "toBase64",
    "fromBase64",
    "now",
    "duration",
    "date",
    "timezone",
    "first",
    "last",
    "get",
    "take",
    "keys",
    "values",
    "toPairs",
    "fromPairs",
    "reverse",
    "uniq",
    "concat",
    "flatten",
    "sort",
    "bitand",
    "bitor",
    "bitxor",
    "bitnand",
    "bitshl",
    "bitshr",
    "bitushr",
    "bitnot",
];

/// The names an expression may use besides the builtins.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Names {
    pub variables: &'static [&'static str],
    pub functions: &'static [&'static str],
}

/// Argo's condition environment.
pub(crate) const CONDITION_NAMES: Names = Names {
    variables: &["result"],
    functions: &["asInt", "asFloat", "isNaN", "isInf", "isNil", "default"],
};

/// Argo's environment for Prometheus `rangeQuery.start` / `end`.
pub(crate) const TIME_NAMES: Names = Names {
    variables: &[],
    functions: &["isNaN", "isInf"],
};

/// Literal regular expressions found while lowering (Go compiles them at compile time).
#[derive(Debug)]
pub(crate) struct Lowered {
    pub program: String,
    pub regexes: Vec<String>,
}

/// Upper bound on the printed program (inlined `let`s could otherwise grow it exponentially).
const MAX_PROGRAM_LEN: usize = 1 << 20;

#[derive(Debug, Clone)]
enum Binding {
    Native(String),
    Inlined(String),
}

struct Printer<'a> {
    names: Names,
    out: String,
    /// `let` bindings in scope: the user's name and either the name printed for it (user names
    /// may hold characters the crate's grammar does not) or the inlined value.
    scope: Vec<(String, Binding)>,
    /// Names of the builtins whose closures enclose the current position.
    closures: Vec<String>,
    lets: usize,
    regexes: Vec<String>,
    err: Option<String>,
    _p: std::marker::PhantomData<&'a ()>,
}

/// Go's optimizer folds boolean literals in `&&`/`||` (after type checking): `x && false` is
/// false and `x || true` is true without evaluating `x`, `x && true` and `x || false` are `x`.
fn fold(node: &Node) -> Node {
    let b = |n: &Node| match n {
        Node::Bool(v) => Some(*v),
        _ => None,
    };
    match node {
        Node::Unary(UnaryOp::Not, inner) => match fold(inner) {
            Node::Bool(v) => Node::Bool(!v),
            other => Node::Unary(UnaryOp::Not, Box::new(other)),
        },
        Node::Unary(op, inner) => Node::Unary(*op, Box::new(fold(inner))),
        Node::Binary(op, l, r) => {
            let (l, r) = (fold(l), fold(r));
            match op.as_str() {
                "and" | "&&" => match (b(&l), b(&r)) {
                    (Some(true), _) => r,
                    (_, Some(true)) => l,
                    (Some(false), _) | (_, Some(false)) => Node::Bool(false),
                    _ => Node::Binary(op.clone(), Box::new(l), Box::new(r)),
                },
                "or" | "||" => match (b(&l), b(&r)) {
                    (Some(false), _) => r,
                    (_, Some(false)) => l,
                    (Some(true), _) | (_, Some(true)) => Node::Bool(true),
                    _ => Node::Binary(op.clone(), Box::new(l), Box::new(r)),
                },
                _ => Node::Binary(op.clone(), Box::new(l), Box::new(r)),
            }
        }
        Node::Member {
            node,
            property,
            optional,
        } => Node::Member {
            node: Box::new(fold(node)),
            property: Box::new(fold(property)),
            optional: *optional,
        },
        Node::Slice { node, from, to } => Node::Slice {
            node: Box::new(fold(node)),
            from: from.as_deref().map(|n| Box::new(fold(n))),
            to: to.as_deref().map(|n| Box::new(fold(n))),
        },
        Node::Call(name, args) => Node::Call(name.clone(), args.iter().map(fold).collect()),
        Node::Closure(body) => Node::Closure(Box::new(fold(body))),
        Node::Method { node, name, args } => Node::Method {
            node: Box::new(fold(node)),
            name: name.clone(),
            args: args.iter().map(fold).collect(),
        },
        Node::Conditional(c, a, e) => {
            Node::Conditional(Box::new(fold(c)), Box::new(fold(a)), Box::new(fold(e)))
        }
        Node::Array(items) => Node::Array(items.iter().map(fold).collect()),
        Node::Map(pairs) => Node::Map(pairs.iter().map(|(k, v)| (fold(k), fold(v))).collect()),
        Node::Let(name, value, body) => {
            Node::Let(name.clone(), Box::new(fold(value)), Box::new(fold(body)))
        }
        Node::Sequence(items) => Node::Sequence(items.iter().map(fold).collect()),
        leaf => leaf.clone(),
    }
}

pub(crate) fn lower(node: &Node, names: Names) -> Result<Lowered, String> {
    let node = &fold(node);
    let mut p = Printer {
        names,
        out: String::new(),
        scope: Vec::new(),
        closures: Vec::new(),
        lets: 0,
        regexes: Vec::new(),
        err: None,
        _p: std::marker::PhantomData,
    };
    p.program(node);
    if let Some(e) = p.err {
        return Err(e);
    }
    if p.out.len() > MAX_PROGRAM_LEN {
        return Err("compilation failed: expression is too large".into());
    }
    Ok(Lowered {
        program: p.out,
        regexes: p.regexes,
    })
}

/// Every node prints its own parentheses, except an inlined `let`.
fn is_atomic(node: &Node) -> bool {
    !matches!(node, Node::Let(..))
}

impl Printer<'_> {
    fn push(&mut self, s: &str) {
        if self.out.len() <= MAX_PROGRAM_LEN {
            self.out.push_str(s);
        } else if self.err.is_none() {
            self.err = Some("compilation failed: expression is too large".into());
        }
    }

    /// A position where the crate accepts `let` statements (the root and closure bodies).
    fn program(&mut self, node: &Node) {
        let mut node = node;
        let mut pushed = 0;
        while let Node::Let(name, value, body) = node {
            let alias = format!("__v{}", self.lets);
            self.lets += 1;
            self.push("let ");
            self.push(&alias);
            self.push(" = ");
            self.child(value);
            self.push("; ");
            self.scope.push((name.clone(), Binding::Native(alias)));
            pushed += 1;
            node = body;
        }
        self.expr(node);
        for _ in 0..pushed {
            self.scope.pop();
        }
    }

    fn child(&mut self, node: &Node) {
        if is_atomic(node) {
            self.expr(node);
        } else {
            self.push("(");
            self.expr(node);
            self.push(")");
        }
    }

    fn string(&mut self, s: &str) {
        if !s.contains('`') {
            self.push("`");
            self.push(s);
            self.push("`");
            return;
        }
        // A raw literal cannot hold a backtick: concatenate the pieces with "`" literals.
        self.push("(");
        for (i, part) in s.split('`').enumerate() {
            if i > 0 {
                self.push(" + \"`\" + ");
            }
            self.push("`");
            self.push(part);
            self.push("`");
        }
        self.push(")");
    }

    fn args(&mut self, args: &[Node]) {
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            if let Node::Closure(body) = a {
                self.push("{");
                self.program(body);
                self.push("}");
            } else {
                self.expr(a);
            }
        }
    }

    fn expr(&mut self, node: &Node) {
        if self.err.is_some() {
            return;
        }
        match node {
            Node::Nil => self.push("nil"),
            Node::Bool(b) => self.push(if *b { "true" } else { "false" }),
            Node::Int(i) => self.push(&i.to_string()),
            Node::Float(f) => {
                let mut s = format!("{f:?}");
                if !s.contains(['.', 'e']) {
                    s.push_str(".0");
                }
                self.push(&s);
            }
            Node::Str(s) => self.string(s),
            Node::Bytes(b) => {
                let mut s = String::from("b\"");
                for byte in b {
                    s.push_str(&format!("\\x{byte:02x}"));
                }
                s.push('"');
                self.push(&s);
            }
            Node::Ident(name) => {
                if let Some((_, binding)) = self.scope.iter().rev().find(|(n, _)| n == name) {
                    match binding.clone() {
                        Binding::Native(alias) => self.push(&alias),
                        Binding::Inlined(printed) => {
                            self.push("(");
                            self.push(&printed);
                            self.push(")");
                        }
                    }
                } else if name == "$env" || self.names.variables.contains(&name.as_str()) {
                    self.push(name);
                } else {
                    self.err = Some(format!("unknown name {name}"));
                }
            }
            Node::Pointer(name) => {
                let in_reduce = self.closures.last().is_some_and(|c| c == "reduce");
                match name.as_str() {
                    "" | "index" => {}
                    "acc" if in_reduce => {}
                    _ => {
                        self.err = Some(format!("unknown pointer #{name}"));
                        return;
                    }
                }
                self.push("#");
                self.push(name);
            }
            Node::Unary(op, inner) => {
                self.push(match op {
                    UnaryOp::Not => "(!",
                    UnaryOp::Neg => "(-",
                    UnaryOp::Pos => "(+",
                });
                self.push("(");
                self.expr(inner);
                self.push("))");
            }
            Node::Binary(op, left, right) => {
                let op = match op.as_str() {
                    "and" | "&&" => "&&",
                    "or" | "||" => "||",
                    "^" | "**" => "**",
                    other => other,
                };
                if op == "matches"
                    && let Node::Str(pattern) = right.as_ref()
                {
                    self.regexes.push(pattern.clone());
                }
                self.push("(");
                self.child(left);
                self.push(" ");
                self.push(op);
                self.push(" ");
                self.child(right);
                self.push(")");
            }
            Node::Member {
                node,
                property,
                optional,
            } => {
                self.push(if *optional {
                    "__fetch_opt("
                } else {
                    "__fetch("
                });
                self.expr(node);
                self.push(", ");
                self.expr(property);
                self.push(")");
            }
            Node::Slice { node, from, to } => {
                self.push("(");
                self.child(node);
                self.push("[");
                if let Some(f) = from {
                    self.child(f);
                }
                self.push(":");
                if let Some(t) = to {
                    self.child(t);
                }
                self.push("])");
            }
            Node::Call(name, args) => {
                let known = BUILTINS.contains(&name.as_str())
                    || self.names.functions.contains(&name.as_str());
                if !known {
                    self.err = Some(format!("unknown name {name}"));
                    return;
                }
                self.push(name);
                self.push("(");
                self.closures.push(name.clone());
                self.args(args);
                self.closures.pop();
                self.push(")");
            }
            Node::Closure(body) => {
                // Only reachable as a call argument, which `args` prints.
                self.push("{");
                self.program(body);
                self.push("}");
            }
            Node::Method { node, name, args } => {
                // Methods exist only on time values, and all have ASCII names.
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || name.starts_with(|c: char| c.is_ascii_digit())
                {
                    self.err = Some(format!("unknown method {name}"));
                    return;
                }
                // `.Local()` would read the process's time zone (I/O): Argo's controller runs
                // in UTC, so it is `.UTC()` here.
                let name = if name == "Local" && args.is_empty() {
                    "UTC"
                } else {
                    name.as_str()
                };
                self.push("(");
                self.child(node);
                self.push(".");
                self.push(name);
                self.push("(");
                self.args(args);
                self.push("))");
            }
            Node::Conditional(c, a, b) => {
                self.push("(");
                self.child(c);
                self.push(" ? ");
                self.child(a);
                self.push(" : ");
                self.child(b);
                self.push(")");
            }
            Node::Array(items) => {
                self.push("[");
                self.args(items);
                self.push("]");
            }
            Node::Map(pairs) => {
                self.push("__map(");
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    self.expr(k);
                    self.push(", ");
                    self.expr(v);
                }
                self.push(")");
            }
            Node::Let(name, value, body) => {
                // Not at a program position: inline the value (the language is pure).
                let start = self.out.len();
                self.expr(value);
                let printed = self.out[start..].to_string();
                self.out.truncate(start);
                self.scope.push((name.clone(), Binding::Inlined(printed)));
                self.child(body);
                self.scope.pop();
            }
            Node::Sequence(items) => {
                self.push("__seq(");
                self.args(items);
                self.push(")");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn low(s: &str) -> String {
        lower(&parse(s).unwrap(), CONDITION_NAMES).unwrap().program
    }

    #[test]
    fn prints_canonical_programs() {
        assert_eq!(low("result[0] > 1"), "(__fetch(result, 0) > 1)");
        assert_eq!(low("1 < 2 < 3"), "((1 < 2) && (2 < 3))");
        assert_eq!(
            low("all(result, .a > 0)"),
            "all(result, {(__fetch(#, `a`) > 0)})"
        );
        assert_eq!(low("'it\\'s'"), "`it's`");
        assert_eq!(low("\"a`b\""), "(`a` + \"`\" + `b`)");
        assert_eq!(low("let x = 1; x + 1"), "let __v0 = 1; (__v0 + 1)");
        assert_eq!(low("let é = 1; é + 1"), "let __v0 = 1; (__v0 + 1)");
    }

    #[test]
    fn unknown_names_are_compile_errors() {
        let e = |s: &str| lower(&parse(s).unwrap(), CONDITION_NAMES).unwrap_err();
        assert_eq!(e("foo == 1"), "unknown name foo");
        assert_eq!(e("foo(1)"), "unknown name foo");
        assert_eq!(
            lower(&parse("result").unwrap(), TIME_NAMES).unwrap_err(),
            "unknown name result"
        );
    }
}
