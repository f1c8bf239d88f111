//! The part of Go expr's static type checker that decides outcomes in Argo.
//!
//! Argo compiles each condition against an environment holding the actual result, so Go's
//! checker knows the result's type: a `float64` from Prometheus, a string from the Web provider,
//! nothing at all (`nil`, "unknown") from an empty Datadog query. It rejects mismatched
//! operations at compile time, even in a branch that would never run: with a nil result,
//! `isNil(result) || result <= 0.05` is an error in Argo, not `true`. This module reproduces those
//! checks for the result's type before evaluation. It is deliberately conservative: it reports
//! only mismatches Go is known to reject (checked against Go), and leaves the rest to run time.

use crate::parser::{Node, UnaryOp};
use crate::value::ResultValue;

/// Static types, with Go's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    /// The type of a nil `result`: Go's checker names it `unknown` and rejects most operations.
    Unknown,
    Int,
    Int64,
    Float,
    Str,
    Bool,
    /// `interface {}`: anything, checked at run time.
    Any,
    FloatList,
    AnyList,
    AnyMap,
    Time,
    Duration,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Unknown => "unknown",
            Ty::Int => "int",
            Ty::Int64 => "int64",
            Ty::Float => "float64",
            Ty::Str => "string",
            Ty::Bool => "bool",
            Ty::Any => "interface {}",
            Ty::FloatList => "[]float64",
            Ty::AnyList => "[]interface {}",
            Ty::AnyMap => "map[string]interface {}",
            Ty::Time => "time.Time",
            Ty::Duration => "time.Duration",
        }
    }

    fn is_number(self) -> bool {
        matches!(self, Ty::Int | Ty::Int64 | Ty::Float)
    }

    fn is_integer(self) -> bool {
        matches!(self, Ty::Int | Ty::Int64)
    }

    fn is_list(self) -> bool {
        matches!(self, Ty::FloatList | Ty::AnyList)
    }

    /// A concrete scalar type, for `==` mismatch checks.
    fn scalar_class(self) -> Option<u8> {
        match self {
            Ty::Int | Ty::Int64 | Ty::Float => Some(0),
            Ty::Str => Some(1),
            Ty::Bool => Some(2),
            Ty::Time => Some(3),
            Ty::Duration => Some(4),
            Ty::FloatList | Ty::AnyList => Some(5),
            Ty::AnyMap => Some(6),
            _ => None,
        }
    }

    fn element(self) -> Ty {
        match self {
            Ty::FloatList => Ty::Float,
            _ => Ty::Any,
        }
    }
}

fn result_type(result: &ResultValue) -> Ty {
    match result {
        ResultValue::Nil => Ty::Unknown,
        ResultValue::Bool(_) => Ty::Bool,
        ResultValue::Int(_) => Ty::Int64,
        ResultValue::Float(_) => Ty::Float,
        ResultValue::String(_) => Ty::Str,
        ResultValue::Floats(_) => Ty::FloatList,
        ResultValue::List(_) => Ty::AnyList,
        ResultValue::Map(_) => Ty::AnyMap,
    }
}

struct Checker {
    vars: Vec<(String, Ty)>,
    pointer: Vec<Ty>,
    err: Option<String>,
}

/// Go's compile-time error for `node` when `result` has the type of `result`, if any.
pub(crate) fn check(node: &Node, result: Option<&ResultValue>) -> Result<(), String> {
    let mut c = Checker {
        vars: Vec::new(),
        pointer: Vec::new(),
        err: None,
    };
    if let Some(r) = result {
        c.vars.push(("result".into(), result_type(r)));
    }
    c.ty(node);
    match c.err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

const PREDICATES: &[&str] = &[
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
];

impl Checker {
    fn fail(&mut self, msg: String) -> Ty {
        if self.err.is_none() {
            self.err = Some(msg);
        }
        Ty::Any
    }

    fn mismatch(&mut self, op: &str, l: Ty, r: Ty) -> Ty {
        self.fail(format!(
            "invalid operation: {op} (mismatched types {} and {})",
            l.name(),
            r.name()
        ))
    }

    fn ty(&mut self, node: &Node) -> Ty {
        if self.err.is_some() {
            return Ty::Any;
        }
        match node {
            // Go's checker gives the nil literal the same "unknown" type.
            Node::Nil => Ty::Unknown,
            Node::Bool(_) => Ty::Bool,
            Node::Int(_) => Ty::Int,
            Node::Float(_) => Ty::Float,
            Node::Str(_) => Ty::Str,
            Node::Bytes(_) => Ty::Any,
            Node::Ident(name) => self
                .vars
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map_or(Ty::Any, |(_, t)| *t),
            Node::Pointer(name) => match name.as_str() {
                "" => self.pointer.last().copied().unwrap_or(Ty::Any),
                "index" => Ty::Int,
                _ => Ty::Any,
            },
            Node::Unary(op, inner) => {
                let t = self.ty(inner);
                match op {
                    UnaryOp::Not => {
                        if matches!(t, Ty::Bool | Ty::Any) {
                            Ty::Bool
                        } else {
                            self.fail(format!(
                                "invalid operation: ! (mismatched type {})",
                                t.name()
                            ))
                        }
                    }
                    UnaryOp::Neg | UnaryOp::Pos => {
                        if t.is_number() || matches!(t, Ty::Any | Ty::Duration) {
                            t
                        } else {
                            let op = if *op == UnaryOp::Neg { "-" } else { "+" };
                            self.fail(format!(
                                "invalid operation: {op} (mismatched type {})",
                                t.name()
                            ))
                        }
                    }
                }
            }
            Node::Binary(op, l, r) => self.binary(op, l, r),
            Node::Member { node, property, .. } => {
                let t = self.ty(node);
                let p = self.ty(property);
                match t {
                    Ty::Any => Ty::Any,
                    Ty::AnyMap => {
                        if matches!(p, Ty::Str | Ty::Any) {
                            Ty::Any
                        } else {
                            self.fail(format!(
                                "cannot use {} to get an element from {}",
                                p.name(),
                                t.name()
                            ))
                        }
                    }
                    Ty::FloatList | Ty::AnyList => {
                        if matches!(p, Ty::Str | Ty::Bool | Ty::AnyList | Ty::AnyMap) {
                            self.fail(format!(
                                "array elements can only be selected using an integer (got {})",
                                p.name()
                            ))
                        } else {
                            t.element()
                        }
                    }
                    Ty::Unknown | Ty::Float | Ty::Int | Ty::Int64 | Ty::Bool | Ty::Str => {
                        match property.as_ref() {
                            Node::Str(name) => {
                                let tn = if t == Ty::Unknown { "nil" } else { t.name() };
                                self.fail(format!("type {tn} has no field {name}"))
                            }
                            _ => self.fail(format!("type {}[{}] is undefined", t.name(), p.name())),
                        }
                    }
                    _ => Ty::Any,
                }
            }
            Node::Slice { node, from, to } => {
                let t = self.ty(node);
                if let Some(f) = from {
                    self.ty(f);
                }
                if let Some(x) = to {
                    self.ty(x);
                }
                if t == Ty::Unknown {
                    return self.fail(format!("cannot slice {}", t.name()));
                }
                if t == Ty::Str { Ty::Str } else { Ty::Any }
            }
            Node::Call(name, args) => self.call(name, args),
            Node::Closure(body) => self.ty(body),
            Node::Method { node, args, .. } => {
                self.ty(node);
                for a in args {
                    self.ty(a);
                }
                Ty::Any
            }
            Node::Conditional(c, a, b) => {
                let ct = self.ty(c);
                if !matches!(ct, Ty::Bool | Ty::Any) {
                    return self.fail(format!(
                        "non-bool expression (type {}) used as condition",
                        ct.name()
                    ));
                }
                let at = self.ty(a);
                let bt = self.ty(b);
                if at == bt { at } else { Ty::Any }
            }
            Node::Array(items) => {
                for i in items {
                    self.ty(i);
                }
                Ty::AnyList
            }
            Node::Map(pairs) => {
                for (k, v) in pairs {
                    self.ty(k);
                    self.ty(v);
                }
                Ty::AnyMap
            }
            Node::Let(name, value, body) => {
                let t = self.ty(value);
                self.vars.push((name.clone(), t));
                let out = self.ty(body);
                self.vars.pop();
                out
            }
            Node::Sequence(items) => {
                let mut t = Ty::Unknown;
                for i in items {
                    t = self.ty(i);
                }
                t
            }
        }
    }

    fn binary(&mut self, op: &str, l: &Node, r: &Node) -> Ty {
        let lt = self.ty(l);
        if self.err.is_some() {
            return Ty::Any;
        }
        let rt = self.ty(r);
        if self.err.is_some() {
            return Ty::Any;
        }
        let any = lt == Ty::Any || rt == Ty::Any;
        let unknown = lt == Ty::Unknown || rt == Ty::Unknown;
        match op {
            "==" | "!=" => {
                if let (Some(a), Some(b)) = (lt.scalar_class(), rt.scalar_class())
                    && a != b
                {
                    return self.mismatch(op, lt, rt);
                }
                Ty::Bool
            }
            "in" => {
                // Go types a literal array of one kind of number, and a `[]float64` result.
                let element = match r {
                    Node::Array(items)
                        if !items.is_empty() && items.iter().all(|i| matches!(i, Node::Int(_))) =>
                    {
                        Some(Ty::Int)
                    }
                    Node::Array(items)
                        if !items.is_empty()
                            && items.iter().all(|i| matches!(i, Node::Float(_))) =>
                    {
                        Some(Ty::Float)
                    }
                    _ if rt == Ty::FloatList => Some(Ty::Float),
                    _ => None,
                };
                if let Some(e) = element
                    && matches!(
                        lt,
                        Ty::Str | Ty::Bool | Ty::FloatList | Ty::AnyList | Ty::AnyMap
                    )
                {
                    return self.fail(format!(
                        "cannot use {} as type {} in array",
                        lt.name(),
                        e.name()
                    ));
                }
                Ty::Bool
            }
            "??" => match (lt, rt) {
                (Ty::Unknown, _) => rt,
                _ if lt == rt => lt,
                _ => Ty::Any,
            },
            "<" | ">" | "<=" | ">=" => {
                if unknown {
                    return self.mismatch(op, lt, rt);
                }
                let ok = any
                    || (lt.is_number() && rt.is_number())
                    || (lt == rt && matches!(lt, Ty::Str | Ty::Time | Ty::Duration));
                if ok {
                    Ty::Bool
                } else {
                    self.mismatch(op, lt, rt)
                }
            }
            "and" | "&&" | "or" | "||" => {
                let ok = |t: Ty| matches!(t, Ty::Bool | Ty::Any);
                if ok(lt) && ok(rt) {
                    Ty::Bool
                } else {
                    self.mismatch(op, lt, rt)
                }
            }
            "matches" | "contains" | "startsWith" | "endsWith" => {
                let ok = |t: Ty| matches!(t, Ty::Str | Ty::Any);
                if ok(lt) && ok(rt) {
                    Ty::Bool
                } else {
                    self.mismatch(op, lt, rt)
                }
            }
            ".." => {
                let ok = |t: Ty| t.is_integer() || t == Ty::Any;
                if ok(lt) && ok(rt) {
                    Ty::AnyList
                } else {
                    self.mismatch(op, lt, rt)
                }
            }
            "+" | "-" | "*" | "/" | "%" | "**" | "^" => {
                if unknown {
                    return self.mismatch(op, lt, rt);
                }
                if any {
                    return Ty::Any;
                }
                let numbers = lt.is_number() && rt.is_number();
                let temporal = |t: Ty| matches!(t, Ty::Time | Ty::Duration);
                match op {
                    "+" if lt == Ty::Str && rt == Ty::Str => Ty::Str,
                    "+" | "-" if matches!((lt, rt), (Ty::Time, Ty::Duration)) => Ty::Time,
                    "+" if matches!((lt, rt), (Ty::Duration, Ty::Time)) => Ty::Time,
                    "-" if matches!((lt, rt), (Ty::Time, Ty::Time)) => Ty::Duration,
                    "+" | "-" if lt == Ty::Duration && rt == Ty::Duration => Ty::Duration,
                    "*" if matches!(
                        (lt, rt),
                        (Ty::Duration, Ty::Int) | (Ty::Int, Ty::Duration)
                    ) =>
                    {
                        Ty::Duration
                    }
                    "%" if lt.is_integer() && rt.is_integer() => Ty::Int,
                    "%" => self.mismatch(op, lt, rt),
                    "/" | "**" | "^" if numbers => Ty::Float,
                    _ if numbers => {
                        if lt.is_integer() && rt.is_integer() {
                            Ty::Int
                        } else {
                            Ty::Float
                        }
                    }
                    // Other time arithmetic is left to run time.
                    _ if temporal(lt) || temporal(rt) => Ty::Any,
                    _ => self.mismatch(op, lt, rt),
                }
            }
            _ => Ty::Any,
        }
    }

    fn call(&mut self, name: &str, args: &[Node]) -> Ty {
        if PREDICATES.contains(&name) {
            let coll = args.first().map_or(Ty::Any, |a| self.ty(a));
            if !(coll.is_list() || matches!(coll, Ty::Any | Ty::AnyMap)) && self.err.is_none() {
                return self.fail(format!(
                    "builtin {name} takes only array (got {})",
                    coll.name()
                ));
            }
            self.pointer.push(coll.element());
            for (i, a) in args.iter().enumerate().skip(1) {
                let t = self.ty(a);
                let boolean = matches!(
                    name,
                    "all"
                        | "none"
                        | "any"
                        | "one"
                        | "filter"
                        | "count"
                        | "find"
                        | "findIndex"
                        | "findLast"
                        | "findLastIndex"
                );
                if i == 1 && boolean && !matches!(t, Ty::Bool | Ty::Any) && self.err.is_none() {
                    self.fail(format!(
                        "predicate should return boolean (got {})",
                        t.name()
                    ));
                }
            }
            self.pointer.pop();
            return match name {
                "all" | "none" | "any" | "one" => Ty::Bool,
                "count" | "findIndex" | "findLastIndex" => Ty::Int,
                "filter" | "map" => Ty::AnyList,
                _ => Ty::Any,
            };
        }
        let types: Vec<Ty> = args.iter().map(|a| self.ty(a)).collect();
        if self.err.is_some() {
            return Ty::Any;
        }
        match name {
            "len" => match types.first() {
                Some(Ty::Unknown) => self.fail("invalid argument for len (type %!s(<nil>))".into()),
                Some(t @ (Ty::Int | Ty::Int64 | Ty::Float | Ty::Bool)) => {
                    self.fail(format!("invalid argument for len (type {})", t.name()))
                }
                _ => Ty::Int,
            },
            "isNaN" | "isInf" => {
                match types.first() {
                    Some(Ty::Unknown) => {
                        return self.fail(format!(
                            "cannot use nil as argument (type float64) to call {name}"
                        ));
                    }
                    // Go's message ends with a space here.
                    Some(t @ (Ty::Str | Ty::Bool)) => {
                        return self.fail(format!(
                            "cannot use {} as argument (type float64) to call {name} ",
                            t.name()
                        ));
                    }
                    _ => {}
                }
                Ty::Bool
            }
            "asInt" => Ty::Int64,
            "asFloat" => Ty::Float,
            "isNil" => Ty::Bool,
            "now" | "date" => Ty::Time,
            "duration" => Ty::Duration,
            "string" | "upper" | "lower" | "trim" | "trimPrefix" | "trimSuffix" | "type" => Ty::Str,
            "int" => Ty::Int,
            "float" | "ceil" | "floor" | "round" => Ty::Float,
            _ => Ty::Any,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn err(src: &str, result: ResultValue) -> Option<String> {
        check(&parse(src).expect("parses"), Some(&result)).err()
    }

    #[test]
    fn nil_result_is_unknown() {
        assert_eq!(
            err("isNil(result) || result <= 0.05", ResultValue::Nil).as_deref(),
            Some("invalid operation: <= (mismatched types unknown and float64)")
        );
        assert_eq!(err("result == nil", ResultValue::Nil), None);
        assert_eq!(err("default(result, 0) > 1", ResultValue::Nil), None);
        assert_eq!(err("(result ?? 1) > 0", ResultValue::Nil), None);
    }

    #[test]
    fn concrete_results_are_checked() {
        assert_eq!(
            err(
                "result == \"ok\" || result > 0.5",
                ResultValue::String("ok".into())
            )
            .as_deref(),
            Some("invalid operation: > (mismatched types string and float64)")
        );
        assert_eq!(
            err("result.foo == 1", ResultValue::Float(1.0)).as_deref(),
            Some("type float64 has no field foo")
        );
        assert_eq!(
            err("result.x.y > 1", ResultValue::Map(Default::default())),
            None
        );
    }
}
