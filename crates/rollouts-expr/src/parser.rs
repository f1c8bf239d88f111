//! Parser for the expr language with Go expr v1.17's grammar, precedence table and syntax error
//! messages. It produces our own syntax tree, which `lower` hands to the evaluator as a canonical
//! program: the `expr-lang` crate's own grammar differs from Go's in several places (escapes,
//! `.field` in closures, `;` sequences, chained comparisons, `!!x`, map literals, `??` mixing),
//! so user text never reaches it directly.

use crate::lexer::{Kind, Token, lex};

/// Go expr's limit on the number of nodes of one expression.
pub(crate) const MAX_NODES: usize = 10_000;
/// Our limit on nesting (the evaluator recurses once per level; Go has no such limit).
pub(crate) const MAX_DEPTH: usize = 100;

/// The syntax tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    /// A variable (`result`, a `let` name, `$env`).
    Ident(String),
    /// `#`, `#index`, `#acc` (the name without `#`) inside a closure.
    Pointer(String),
    Unary(UnaryOp, Box<Node>),
    Binary(String, Box<Node>, Box<Node>),
    /// `a.b`, `a[b]`, `a?.b`, `a?.[b]`.
    Member {
        node: Box<Node>,
        property: Box<Node>,
        optional: bool,
    },
    Slice {
        node: Box<Node>,
        from: Option<Box<Node>>,
        to: Option<Box<Node>>,
    },
    /// A function call; closures appear as `Node::Closure` arguments.
    Call(String, Vec<Node>),
    Closure(Box<Node>),
    Method {
        node: Box<Node>,
        name: String,
        args: Vec<Node>,
    },
    Conditional(Box<Node>, Box<Node>, Box<Node>),
    Array(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Let(String, Box<Node>, Box<Node>),
    Sequence(Vec<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnaryOp {
    Not,
    Neg,
    Pos,
}

/// Builtins whose second argument is a closure, with their argument shapes (Go's `predicates`).
fn predicate_shape(name: &str) -> Option<&'static [Arg]> {
    use Arg::*;
    Some(match name {
        "all" | "none" | "any" | "one" | "filter" | "map" | "find" | "findIndex" | "findLast"
        | "findLastIndex" | "groupBy" => &[Expr, Pred],
        "count" | "sum" => &[Expr, OptPred],
        "sortBy" | "reduce" => &[Expr, Pred, OptExpr],
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    Expr,
    Pred,
    OptPred,
    OptExpr,
}

fn binary_precedence(op: &str) -> Option<(u8, bool)> {
    // (precedence, right associative)
    Some(match op {
        "|" => (0, false),
        "or" | "||" => (10, false),
        "and" | "&&" => (15, false),
        "==" | "!=" | "<" | ">" | ">=" | "<=" | "in" | "matches" | "contains" | "startsWith"
        | "endsWith" => (20, false),
        ".." => (25, false),
        "+" | "-" => (30, false),
        "*" | "/" | "%" => (60, false),
        "**" | "^" => (100, true),
        "??" => (200, false),
        _ => return None,
    })
}

fn unary_precedence(op: &str) -> Option<u8> {
    match op {
        "not" | "!" => Some(50),
        "-" | "+" => Some(90),
        _ => None,
    }
}

fn is_comparison(op: &str) -> bool {
    matches!(op, "<" | ">" | ">=" | "<=")
}

fn allowed_negate_suffix(op: &str) -> bool {
    matches!(
        op,
        "contains" | "matches" | "startsWith" | "endsWith" | "in"
    )
}

/// Go's `utils.IsValidIdentifier`: operators spelled as words may be property names.
fn is_word(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    err: Option<String>,
    /// Closure nesting (Go's `depth`): `#` and `.field` are only valid inside a closure.
    closure_depth: usize,
    /// Recursion depth, bounded by `MAX_DEPTH`.
    depth: usize,
    nodes: usize,
}

/// Parses `source`, returning the tree or the one-line message Go expr would give.
pub(crate) fn parse(source: &str) -> Result<Node, String> {
    let tokens = lex(source)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        err: None,
        closure_depth: 0,
        depth: 0,
        nodes: 0,
    };
    let node = p.parse_sequence();
    if p.err.is_none() && p.current().kind != Kind::Eof {
        p.error(format!("unexpected token {}", p.current()));
    }
    match p.err {
        Some(e) => Err(e),
        None if exceeds_depth(&node, MAX_DEPTH) => Err(format!(
            "expression is nested too deeply (more than {MAX_DEPTH} levels)"
        )),
        None => Ok(node),
    }
}

/// Whether the tree is deeper than `limit` (recursion stops at the limit, so it is bounded too).
fn exceeds_depth(node: &Node, limit: usize) -> bool {
    if limit == 0 {
        return true;
    }
    let l = limit - 1;
    let opt = |n: &Option<Box<Node>>| n.as_deref().is_some_and(|n| exceeds_depth(n, l));
    match node {
        Node::Nil
        | Node::Bool(_)
        | Node::Int(_)
        | Node::Float(_)
        | Node::Str(_)
        | Node::Bytes(_)
        | Node::Ident(_)
        | Node::Pointer(_) => false,
        Node::Unary(_, n) | Node::Closure(n) => exceeds_depth(n, l),
        Node::Binary(_, a, b) | Node::Let(_, a, b) => exceeds_depth(a, l) || exceeds_depth(b, l),
        Node::Member { node, property, .. } => exceeds_depth(node, l) || exceeds_depth(property, l),
        Node::Slice { node, from, to } => exceeds_depth(node, l) || opt(from) || opt(to),
        Node::Call(_, args) | Node::Array(args) | Node::Sequence(args) => {
            args.iter().any(|a| exceeds_depth(a, l))
        }
        Node::Method { node, args, .. } => {
            exceeds_depth(node, l) || args.iter().any(|a| exceeds_depth(a, l))
        }
        Node::Conditional(a, b, c) => {
            exceeds_depth(a, l) || exceeds_depth(b, l) || exceeds_depth(c, l)
        }
        Node::Map(pairs) => pairs
            .iter()
            .any(|(k, v)| exceeds_depth(k, l) || exceeds_depth(v, l)),
    }
}

impl Parser {
    fn current(&self) -> &Token {
        // The token list always ends with EOF and `pos` never passes it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) {
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
    }

    fn error(&mut self, msg: String) {
        if self.err.is_none() {
            self.err = Some(msg);
        }
    }

    fn node(&mut self, n: Node) -> Node {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            self.error("compilation failed: expression exceeds maximum allowed nodes".into());
        }
        n
    }

    fn expect_op(&mut self, value: &str) {
        if self.current().is_op(value) {
            self.next();
        } else {
            let t = self.current().to_string();
            self.error(format!("unexpected token {t}"));
        }
    }

    fn expect_bracket(&mut self, value: &str) {
        if self.current().is_bracket(value) {
            self.next();
        } else {
            let t = self.current().to_string();
            self.error(format!("unexpected token {t}"));
        }
    }

    fn expect_ident(&mut self) -> String {
        if self.current().kind == Kind::Identifier {
            let v = self.current().value.clone();
            self.next();
            v
        } else {
            let t = self.current().to_string();
            self.error(format!("unexpected token {t}"));
            String::new()
        }
    }

    fn enter(&mut self) -> bool {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.error(format!(
                "expression is nested too deeply (more than {MAX_DEPTH} levels)"
            ));
            return false;
        }
        true
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn parse_sequence(&mut self) -> Node {
        let mut nodes = vec![self.parse_expression(0)];
        while self.err.is_none() && self.current().is_op(";") {
            self.next();
            if self.current().kind == Kind::Eof {
                break;
            }
            nodes.push(self.parse_expression(0));
        }
        if nodes.len() == 1 {
            nodes.pop().unwrap_or(Node::Nil)
        } else {
            self.node(Node::Sequence(nodes))
        }
    }

    fn parse_expression(&mut self, precedence: u8) -> Node {
        if self.err.is_some() || !self.enter() {
            return Node::Nil;
        }
        let n = self.parse_expression_inner(precedence);
        self.leave();
        n
    }

    fn parse_expression_inner(&mut self, precedence: u8) -> Node {
        if precedence == 0 && self.current().is_op("let") {
            return self.parse_let();
        }
        if precedence == 0 && self.current().is_op("if") {
            return self.parse_if();
        }
        let mut left = self.parse_primary();
        let mut prev_op = String::new();
        loop {
            if self.err.is_some() || self.current().kind != Kind::Operator {
                break;
            }
            let mut op_token = self.current().clone();
            let negate = op_token.is_op("not");
            if negate {
                let backup = self.pos;
                self.next();
                let suffix = self.current().clone();
                if suffix.kind == Kind::Operator && allowed_negate_suffix(&suffix.value) {
                    match binary_precedence(&suffix.value) {
                        Some((p, _)) if p >= precedence => op_token = suffix,
                        _ => {
                            self.pos = backup;
                            break;
                        }
                    }
                } else {
                    self.error(format!("unexpected token {suffix}"));
                    break;
                }
            }
            let Some((op_prec, right_assoc)) = binary_precedence(&op_token.value) else {
                break;
            };
            if op_prec < precedence {
                break;
            }
            self.next();
            let op = op_token.value.clone();
            if op == "|" {
                let name = self.current().clone();
                if name.kind != Kind::Identifier {
                    self.error(format!("unexpected token {name}"));
                    break;
                }
                self.next();
                left = self.parse_call(&name.value, vec![left]);
                prev_op = op;
                continue;
            }
            if prev_op == "??" && op != "??" {
                self.error(format!(
                    "Operator ({op}) and coalesce expressions (??) cannot be mixed. Wrap either by parentheses."
                ));
                break;
            }
            if is_comparison(&op) {
                left = self.parse_comparison(left, op.clone(), op_prec);
                prev_op = op;
                continue;
            }
            let right = if right_assoc {
                self.parse_expression(op_prec)
            } else {
                self.parse_expression(op_prec + 1)
            };
            left = self.node(Node::Binary(op.clone(), Box::new(left), Box::new(right)));
            if negate {
                left = self.node(Node::Unary(UnaryOp::Not, Box::new(left)));
            }
            prev_op = op;
        }
        if precedence == 0 {
            left = self.parse_conditional(left);
        }
        left
    }

    fn parse_comparison(&mut self, mut left: Node, mut op: String, precedence: u8) -> Node {
        let mut root: Option<Node> = None;
        loop {
            let right = self.parse_expression(precedence + 1);
            let cmp = self.node(Node::Binary(
                op.clone(),
                Box::new(left),
                Box::new(right.clone()),
            ));
            root = Some(match root {
                None => cmp,
                Some(r) => self.node(Node::Binary("&&".into(), Box::new(r), Box::new(cmp))),
            });
            left = right;
            let t = self.current();
            if !(t.kind == Kind::Operator && is_comparison(&t.value) && self.err.is_none()) {
                break;
            }
            op = t.value.clone();
            self.next();
        }
        root.unwrap_or(Node::Nil)
    }

    fn parse_let(&mut self) -> Node {
        self.expect_op("let");
        let name = self.expect_ident();
        self.expect_op("=");
        let value = self.parse_expression(0);
        self.expect_op(";");
        let body = self.parse_sequence();
        self.node(Node::Let(name, Box::new(value), Box::new(body)))
    }

    fn parse_if(&mut self) -> Node {
        self.next();
        let cond = self.parse_expression(0);
        self.expect_bracket("{");
        let then = self.parse_sequence();
        self.expect_bracket("}");
        self.expect_op("else");
        let otherwise = if self.current().is_op("if") {
            if self.enter() {
                let n = self.parse_if();
                self.leave();
                n
            } else {
                Node::Nil
            }
        } else {
            self.expect_bracket("{");
            let n = self.parse_sequence();
            self.expect_bracket("}");
            n
        };
        self.node(Node::Conditional(
            Box::new(cond),
            Box::new(then),
            Box::new(otherwise),
        ))
    }

    fn parse_conditional(&mut self, mut node: Node) -> Node {
        while self.err.is_none() && self.current().is_op("?") {
            self.next();
            let (a, b) = if !self.current().is_op(":") {
                let a = self.parse_expression(0);
                self.expect_op(":");
                let b = self.parse_expression(0);
                (a, b)
            } else {
                self.next();
                (node.clone(), self.parse_expression(0))
            };
            node = self.node(Node::Conditional(Box::new(node), Box::new(a), Box::new(b)));
        }
        node
    }

    fn parse_primary(&mut self) -> Node {
        if self.err.is_some() || !self.enter() {
            return Node::Nil;
        }
        let n = self.parse_primary_inner();
        self.leave();
        n
    }

    fn parse_primary_inner(&mut self) -> Node {
        let token = self.current().clone();
        if token.kind == Kind::Operator
            && let Some(p) = unary_precedence(&token.value)
        {
            self.next();
            let inner = self.parse_expression(p);
            let op = match token.value.as_str() {
                "-" => UnaryOp::Neg,
                "+" => UnaryOp::Pos,
                _ => UnaryOp::Not,
            };
            let n = self.node(Node::Unary(op, Box::new(inner)));
            return self.parse_postfix(n);
        }
        if token.is_bracket("(") {
            self.next();
            let inner = self.parse_sequence();
            self.expect_bracket(")");
            return self.parse_postfix(inner);
        }
        if self.closure_depth > 0 && (token.is_op("#") || token.is_op(".")) {
            let mut name = String::new();
            if token.is_op("#") {
                self.next();
                if self.current().kind == Kind::Identifier {
                    name = self.current().value.clone();
                    self.next();
                }
            }
            // `.field` is `#.field`: the pointer is followed by the member postfix.
            let n = self.node(Node::Pointer(name));
            return self.parse_postfix(n);
        }
        if token.is_op("::") {
            self.next();
            let name = self.expect_ident();
            let call = self.parse_call(&name, Vec::new());
            return self.parse_postfix(call);
        }
        self.parse_secondary()
    }

    fn parse_secondary(&mut self) -> Node {
        let token = self.current().clone();
        let node = match token.kind {
            Kind::Identifier => {
                self.next();
                match token.value.as_str() {
                    "true" => return self.node(Node::Bool(true)),
                    "false" => return self.node(Node::Bool(false)),
                    "nil" => return self.node(Node::Nil),
                    _ => {
                        if self.current().is_bracket("(") {
                            self.parse_call(&token.value, Vec::new())
                        } else {
                            self.node(Node::Ident(token.value.clone()))
                        }
                    }
                }
            }
            Kind::Number => {
                self.next();
                let n = self.number(&token.value);
                return self.node(n);
            }
            Kind::String => {
                self.next();
                self.node(Node::Str(token.value.clone()))
            }
            Kind::Bytes => {
                self.next();
                self.node(Node::Bytes(token.bytes.clone()))
            }
            _ if token.is_bracket("[") => self.parse_array(),
            _ if token.is_bracket("{") => self.parse_map(),
            _ => {
                self.error(format!("unexpected token {token}"));
                Node::Nil
            }
        };
        self.parse_postfix(node)
    }

    fn number(&mut self, text: &str) -> Node {
        let value = text.replace('_', "");
        let lower = value.to_ascii_lowercase();
        let int = |digits: &str, radix: u32| i64::from_str_radix(digits, radix);
        let go_parse_int = |s: &str| -> String {
            format!("strconv.ParseInt: parsing {}: ", crate::lexer::go_quote(s))
        };
        if let Some(d) = lower.strip_prefix("0x") {
            match int(d, 16) {
                Ok(v) => return Node::Int(v),
                Err(e) => {
                    let m = go_parse_int(&value) + &int_error(&e);
                    self.error(format!("invalid hex literal: {m}"));
                }
            }
        } else if lower.contains('.') || lower.contains('e') {
            match value.parse::<f64>() {
                Ok(v) if v.is_finite() => return Node::Float(v),
                Ok(_) => self.error(format!(
                    "invalid float literal: strconv.ParseFloat: parsing {}: value out of range",
                    crate::lexer::go_quote(&value)
                )),
                Err(_) => self.error(format!(
                    "invalid float literal: strconv.ParseFloat: parsing {}: invalid syntax",
                    crate::lexer::go_quote(&value)
                )),
            }
        } else if let Some(d) = lower.strip_prefix("0b") {
            match int(d, 2) {
                Ok(v) => return Node::Int(v),
                Err(e) => {
                    let m = go_parse_int(&value) + &int_error(&e);
                    self.error(format!("invalid binary literal: {m}"));
                }
            }
        } else if let Some(d) = lower.strip_prefix("0o") {
            match int(d, 8) {
                Ok(v) => return Node::Int(v),
                Err(e) => {
                    let m = go_parse_int(&value) + &int_error(&e);
                    self.error(format!("invalid octal literal: {m}"));
                }
            }
        } else {
            match int(&value, 10) {
                Ok(v) => return Node::Int(v),
                Err(e) => {
                    let m = go_parse_int(&value) + &int_error(&e);
                    self.error(format!("invalid integer literal: {m}"));
                }
            }
        }
        Node::Nil
    }

    fn parse_call(&mut self, name: &str, mut args: Vec<Node>) -> Node {
        if let Some(shape) = predicate_shape(name) {
            self.expect_bracket("(");
            let offset = args.len();
            let shape = &shape[offset.min(shape.len())..];
            for (i, arg) in shape.iter().enumerate() {
                let optional = matches!(arg, Arg::OptPred | Arg::OptExpr);
                if self.current().is_bracket(")") {
                    if optional {
                        break;
                    }
                    self.error(format!("expected at least {} arguments", shape.len()));
                }
                if i > 0 {
                    self.expect_op(",");
                }
                let n = match arg {
                    Arg::Expr | Arg::OptExpr => self.parse_expression(0),
                    Arg::Pred | Arg::OptPred => self.parse_closure(),
                };
                args.push(n);
                if self.err.is_some() {
                    break;
                }
            }
            if self.current().is_op(",") {
                self.next();
            }
            self.expect_bracket(")");
            return self.node(Node::Call(name.to_string(), args));
        }
        let args = self.parse_arguments(args);
        self.node(Node::Call(name.to_string(), args))
    }

    fn parse_arguments(&mut self, mut args: Vec<Node>) -> Vec<Node> {
        let offset = args.len();
        self.expect_bracket("(");
        while self.err.is_none() && !self.current().is_bracket(")") {
            if args.len() > offset {
                self.expect_op(",");
            }
            if self.current().is_bracket(")") {
                break;
            }
            let n = self.parse_expression(0);
            args.push(n);
        }
        self.expect_bracket(")");
        args
    }

    fn parse_closure(&mut self) -> Node {
        let braces = self.current().is_bracket("{");
        if braces {
            self.next();
        }
        self.closure_depth += 1;
        let body = if braces {
            self.parse_sequence()
        } else {
            let n = self.parse_expression(0);
            if self.current().is_op(";") {
                self.error("wrap predicate with brackets { and }".into());
            }
            n
        };
        self.closure_depth -= 1;
        if braces {
            self.expect_bracket("}");
        }
        self.node(Node::Closure(Box::new(body)))
    }

    fn parse_array(&mut self) -> Node {
        self.expect_bracket("[");
        let mut items = Vec::new();
        while self.err.is_none() && !self.current().is_bracket("]") {
            if !items.is_empty() {
                self.expect_op(",");
                if self.current().is_bracket("]") {
                    break;
                }
            }
            items.push(self.parse_expression(0));
        }
        self.expect_bracket("]");
        self.node(Node::Array(items))
    }

    fn parse_map(&mut self) -> Node {
        self.expect_bracket("{");
        let mut pairs = Vec::new();
        while self.err.is_none() && !self.current().is_bracket("}") {
            if !pairs.is_empty() {
                self.expect_op(",");
                if self.current().is_bracket("}") {
                    break;
                }
                if self.current().is_op(",") {
                    let t = self.current().to_string();
                    self.error(format!("unexpected token {t}"));
                }
            }
            let t = self.current().clone();
            let key = if matches!(t.kind, Kind::Number | Kind::String | Kind::Identifier) {
                self.next();
                self.node(Node::Str(t.value.clone()))
            } else if t.is_bracket("(") {
                self.parse_expression(0)
            } else {
                self.error(format!("a map key must be a quoted string, a number, a identifier, or an expression enclosed in parentheses (unexpected token {t})"));
                Node::Nil
            };
            self.expect_op(":");
            let value = self.parse_expression(0);
            pairs.push((key, value));
        }
        self.expect_bracket("}");
        self.node(Node::Map(pairs))
    }

    fn parse_postfix(&mut self, mut node: Node) -> Node {
        // After an optional member (`?.`) the rest of the chain is nil-safe too, as Go's
        // ChainNode makes the whole chain nil when the optional receiver is nil.
        let mut in_chain = false;
        loop {
            if self.err.is_some() {
                break;
            }
            let t = self.current().clone();
            if !(t.kind == Kind::Operator || t.kind == Kind::Bracket) {
                break;
            }
            let mut optional = t.value == "?.";
            if t.value == "." || t.value == "?." {
                self.next();
                let prop = self.current().clone();
                if optional && prop.is_bracket("[") {
                    // `a?.[b]`
                    self.next();
                    let index = self.parse_expression(0);
                    self.expect_bracket("]");
                    in_chain = true;
                    node = self.node(Node::Member {
                        node: Box::new(node),
                        property: Box::new(index),
                        optional: true,
                    });
                    continue;
                }
                self.next();
                if prop.kind != Kind::Identifier
                    && (prop.kind != Kind::Operator || !is_word(&prop.value))
                {
                    self.error("expected name".into());
                    break;
                }
                optional |= in_chain;
                in_chain |= optional;
                if self.current().is_bracket("(") {
                    let args = self.parse_arguments(Vec::new());
                    node = self.node(Node::Method {
                        node: Box::new(node),
                        name: prop.value.clone(),
                        args,
                    });
                } else {
                    node = self.node(Node::Member {
                        node: Box::new(node),
                        property: Box::new(Node::Str(prop.value.clone())),
                        optional,
                    });
                }
            } else if t.value == "[" {
                self.next();
                if self.current().is_op(":") {
                    self.next();
                    let to = if self.current().is_bracket("]") {
                        None
                    } else {
                        Some(Box::new(self.parse_expression(0)))
                    };
                    node = self.node(Node::Slice {
                        node: Box::new(node),
                        from: None,
                        to,
                    });
                    self.expect_bracket("]");
                } else {
                    let from = self.parse_expression(0);
                    if self.current().is_op(":") {
                        self.next();
                        let to = if self.current().is_bracket("]") {
                            None
                        } else {
                            Some(Box::new(self.parse_expression(0)))
                        };
                        node = self.node(Node::Slice {
                            node: Box::new(node),
                            from: Some(Box::new(from)),
                            to,
                        });
                    } else {
                        node = self.node(Node::Member {
                            node: Box::new(node),
                            property: Box::new(from),
                            optional: in_chain,
                        });
                    }
                    self.expect_bracket("]");
                }
            } else {
                break;
            }
        }
        node
    }
}

fn int_error(e: &std::num::ParseIntError) -> String {
    use std::num::IntErrorKind;
    match e.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => "value out of range".into(),
        _ => "invalid syntax".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_chaining() {
        let n = parse("1 < 2 < 3").unwrap();
        assert!(matches!(n, Node::Binary(ref op, _, _) if op == "&&"));
        let n = parse("a ?? b ?? c").unwrap();
        assert!(matches!(n, Node::Binary(ref op, _, _) if op == "??"));
        assert_eq!(
            parse("a ?? b > 1").unwrap_err(),
            "Operator (>) and coalesce expressions (??) cannot be mixed. Wrap either by parentheses."
        );
    }

    #[test]
    fn syntax_errors_read_like_go() {
        assert_eq!(parse("result ==").unwrap_err(), "unexpected token EOF");
        assert_eq!(
            parse("1 +* 2").unwrap_err(),
            "unexpected token Operator(\"*\")"
        );
        assert_eq!(
            parse("# > 1").unwrap_err(),
            "unexpected token Operator(\"#\")"
        );
        assert_eq!(parse("").unwrap_err(), "unexpected token EOF");
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "(".repeat(500) + "1" + &")".repeat(500);
        assert!(parse(&deep).unwrap_err().contains("nested too deeply"));
        let unary = "!".repeat(5000) + "true";
        assert!(parse(&unary).unwrap_err().contains("nested too deeply"));
    }
}
