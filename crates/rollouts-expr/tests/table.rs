//! The condition language against a table: expression, `result`, expected value or error message.
//!
//! Every row was checked against Go expr-lang/expr v1.17.8 in Argo's environment with the oracle in
//! `crates/rollouts-expr/oracle/`. To check again, build it (`cd crates/rollouts-expr/oracle &&
//! go build -o /tmp/expr-oracle .`) and run `ROLLOUTS_EXPR_GO_ORACLE=/tmp/expr-oracle cargo test -p
//! rollouts-expr --test table`: rows then also have to agree with Go, except those marked as a
//! known deviation (`Go::Message`: Go errors too, with other words; `Go::Differs`: documented in
//! `docs/conditions.md`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use rollouts_expr::{
    Condition, ExprError, Outcome, ResultValue, evaluate_conditions, evaluate_conditions_at,
    evaluate_time,
};

#[derive(Debug, Clone, PartialEq)]
enum Want {
    T,
    F,
    /// An error with this exact message.
    E(&'static str),
}
use Want::{E, F, T};

/// How Go answers the same row.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Go {
    Same,
    /// Go also fails, with another message.
    Message,
    /// Go answers differently (a documented deviation).
    Differs,
}

struct Row {
    expr: &'static str,
    input: ResultValue,
    want: Want,
    go: Go,
}

fn r(expr: &'static str, input: ResultValue, want: Want) -> Row {
    Row {
        expr,
        input,
        want,
        go: Go::Same,
    }
}

impl Row {
    fn msg(mut self) -> Self {
        self.go = Go::Message;
        self
    }
    fn differs(mut self) -> Self {
        self.go = Go::Differs;
        self
    }
}

fn j(json: &str) -> ResultValue {
    ResultValue::from(serde_json::from_str::<serde_json::Value>(json).expect("row JSON"))
}
fn fl(v: &[f64]) -> ResultValue {
    ResultValue::Floats(v.to_vec())
}
fn f(v: f64) -> ResultValue {
    ResultValue::Float(v)
}
fn s(v: &str) -> ResultValue {
    ResultValue::String(v.to_string())
}
const NIL: ResultValue = ResultValue::Nil;
const NAN: f64 = f64::NAN;
const INF: f64 = f64::INFINITY;

#[rustfmt::skip]
fn table() -> Vec<Row> {
    vec![
        // --- conditions Argo users write (Prometheus, Datadog, New Relic, Web, CloudWatch, Job-less) ---
        r("result[0] >= 0.95",                                   fl(&[0.97]),             T),
        r("result[0] >= 0.99",                                   fl(&[0.97]),             F),
        r("result[0] <= 0.01",                                   fl(&[0.0]),              T),
        r("len(result) > 0 && result[0] < 5",                     fl(&[3.0]),              T),
        r("len(result) > 0 && result[0] < 5",                     fl(&[]),                 F),
        r("len(result) == 0 || result[0] < 0.5",                  fl(&[]),                 T),
        r("result >= 0.95",                                      f(0.97),                 T),
        r("result < 0.0001",                                     f(0.5),                  F),
        r("result > 0.5 && result < 2",                           f(1.0),                  T),
        r("isNaN(result) || result >= 0.95",                      f(NAN),                  T),
        r("!isNaN(result) && result >= 0.95",                     f(NAN),                  F),
        r("default(result, 0) >= 0.9",                           NIL,                     F),
        r("default(result, 1) >= 0.9",                           NIL,                     T),
        r("default(result, 0) < 0.05",                           f(0.01),                 T),
        r("isNil(result) || result <= 0.05",                      NIL,                     E("invalid operation: <= (mismatched types unknown and float64)")),
        r("isNil(result) || result <= 0.05",                      f(0.01),                 T),
        r("result == nil || result < 5",                          f(7.0),                  F),
        r("result == 'It worked!'",                              s("It worked!"),         T),
        r("result == \"true\"",                                  s("true"),               T),
        r("result.ok && result.n == 3",                           j(r#"{"ok":true,"n":3}"#), T),
        r("result[\"ok\"]",                                      j(r#"{"ok":true}"#),     T),
        r("result.count > 100",                                  j(r#"{"count":10}"#),    F),
        r("result.status == \"OK\"",                             j(r#"{"status":"OK"}"#), T),
        r("result.data.ok == true",                              j(r#"{"data":{"ok":true}}"#), T),
        r("asInt(result) >= 3",                                  s("42"),                 T),
        r("asInt(result) == 42",                                 f(42.9),                 T),
        r("asFloat(result) < 0.2",                               s("0.1"),                T),
        r("asFloat(result) > 4",                                 s("4.5"),                T),
        r("all(result, {# >= 0.9})",                             fl(&[0.95, 0.99]),       T),
        r("all(result, # >= 0.9)",                               fl(&[0.95, 0.5]),        F),
        r("any(result, {# < 0.9})",                              fl(&[0.95, 0.5]),        T),
        r("len(result[0].Values) >= 5 and all(result[0].Values, {# <= 0.01})", j(r#"[{"Values":[0,0,0.01,0,0]}]"#), T),
        r("all(result.Values, # < 0.5)",                         j(r#"{"Values":[0.1,0.2]}"#), T),
        r("sum(result) / len(result) > 1",                       fl(&[1.0, 2.0, 3.0]),    T),
        r("mean(result) >= 2",                                   fl(&[1.0, 2.0, 3.0]),    T),
        r("max(result) < 5",                                     fl(&[1.0, 4.0]),         T),
        r("min(result) > 0",                                     fl(&[1.0, 0.0]),         F),
        r("result[len(result) - 1] > 10",                        fl(&[1.0, 11.0]),        T),
        r("result[-1] > 10",                                     fl(&[1.0, 11.0]),        T),
        r("result.rows[0].error_rate < 0.05",                    j(r#"{"rows":[{"error_rate":0.01}]}"#), T),
        r("result in 5..10",                                     j("7"),                  T),
        // --- literals and arithmetic ---
        r("1 + 2 * 3 == 7",                                      NIL,                     T),
        r("(1 + 2) * 3 == 9",                                    NIL,                     T),
        r("7 / 2 == 3.5",                                        NIL,                     T),
        r("7 % 3 == 1",                                          NIL,                     T),
        r("-7 % 3 == -1",                                        NIL,                     T),
        r("2 ** 10 == 1024",                                     NIL,                     T),
        r("2 ^ 3 ^ 2 == 512",                                    NIL,                     T),
        r("-2 ** 2 == -4",                                       NIL,                     T),
        r("- -1 == 1",                                           NIL,                     T),
        r("0x1F == 31 && 0o17 == 15 && 0b101 == 5",              NIL,                     T),
        r("1_000_000 == 1e6",                                    NIL,                     T),
        r(".5 == 0.5 && 1. == 1",                                NIL,                     T),
        r("1 / 0 > 1e308",                                       NIL,                     T),
        r("0.1 + 0.2 == 0.3",                                    NIL,                     F),
        r("9223372036854775807 + 1 < 0",                         NIL,                     T),
        r("1 % 0 == 0",                                          NIL,                     E("integer divide by zero")),
        r("result % 2 == 1",                                     f(5.0),                  E("invalid operation: % (mismatched types float64 and int)")),
        r("result[0] % 2 == 1",                                  j("[5]"),                E("Invalid operands for operator %")).msg(),
        r("\"a\" + \"b\" == \"ab\"",                             NIL,                     T),
        // --- comparisons, NaN, Inf ---
        r("1 == 1.0",                                            NIL,                     T),
        r("1 < 2 < 3",                                           NIL,                     T),
        r("3 > 2 > 2",                                           NIL,                     F),
        r("result > 0",                                          f(NAN),                  F),
        r("result <= 0",                                         f(NAN),                  F),
        r("result == result",                                    f(NAN),                  F),
        r("result != result",                                    f(NAN),                  T),
        r("isNaN(result)",                                       f(NAN),                  T),
        r("isNaN(result)",                                       f(0.5),                  F),
        r("isInf(result)",                                       f(INF),                  T),
        r("isInf(result)",                                       f(-INF),                 T),
        r("isInf(result)",                                       f(1.0),                  F),
        r("result > 1e308",                                      f(INF),                  T),
        r("isNaN(result[0]) || result[0] < 1",                   fl(&[NAN]),              T),
        r("\"abc\" < \"abd\"",                                   NIL,                     T),
        r("nil == nil",                                          NIL,                     T),
        r("[1, 2] == [1.0, 2.0]",                                NIL,                     T),
        // --- logic ---
        r("true && false || true",                               NIL,                     T),
        r("true and false or true",                              NIL,                     T),
        r("not (result > 10)",                                   f(5.0),                  T),
        r("!!true",                                              NIL,                     T),
        r("not not true",                                        NIL,                     T),
        r("false && result.x.y",                                 j("{}"),                 F),
        r("true || result.x.y",                                  j("{}"),                 T),
        r("1 && true",                                           NIL,                     E("invalid operation: && (mismatched types int and bool)")),
        r("false && nil",                                        NIL,                     E("invalid operation: && (mismatched types bool and unknown)")),
        // --- ternary, ??, if ---
        r("result > 3 ? true : false",                           f(5.0),                  T),
        r("(result > 3 ? 1 : 2) == 1",                           f(5.0),                  T),
        r("true ?: false",                                       NIL,                     T),
        r("(result ?? 3) == 3",                                  NIL,                     T),
        r("(result.missing ?? 3) == 3",                          j("{}"),                 T),
        r("result ?? 1 > 0",                                     NIL,                     E("Operator (>) and coalesce expressions (??) cannot be mixed. Wrap either by parentheses.")),
        r("if result > 1 { true } else { false }",               f(2.0),                  T),
        r("let x = result * 2; x == 10",                         f(5.0),                  T),
        r("1; result == 5",                                      f(5.0),                  T),
        // --- members and indexing ---
        r("result.a.b == 1",                                     j(r#"{"a":{"b":1}}"#),   T),
        r("result.missing == nil",                               j(r#"{"a":1}"#),         T),
        r("result?.a == nil",                                    NIL,                     E("type nil has no field a")),
        r("result.a?.b == nil",                                  j(r#"{"a":null}"#),      T),
        r("result.a?.b.c == nil",                                j(r#"{"a":null}"#),      T),
        r("result.a.b == 1",                                     j(r#"{"a":null}"#),      E("cannot fetch b from <nil>")),
        r("result.a.b == 2",                                     j(r#"{"a":5}"#),         E("cannot fetch b from float64")),
        r("result.foo == 1",                                     f(5.0),                  E("type float64 has no field foo")),
        r("result[1] == 5",                                      fl(&[0.97]),             E("index out of range: 1 (array length is 1)")),
        r("result[-2] == 5",                                     fl(&[0.97]),             E("index out of range: -1 (array length is 1)")),
        r("result[0] < 5",                                       fl(&[]),                 E("index out of range: 0 (array length is 0)")),
        r("result.a[1.0] == 2",                                  j(r#"{"a":[1,2]}"#),     T),
        r("result.a[\"x\"] == 1",                                j(r#"{"a":[1,2]}"#),     E("invalid operation: int(string)")),
        r("result[1:] == [2, 3]",                                j("[1,2,3]"),            T),
        r("result[:1] == [1]",                                   j("[1,2,3]"),            T),
        r("[1, 2, 3][5:] == []",                                 NIL,                     T),
        r("result.a[0] == 120",                                  j(r#"{"a":"xyz"}"#),     T),
        // --- in, contains, strings ---
        r("1 in [1, 2]",                                         NIL,                     T),
        r("3 not in [1, 2]",                                     NIL,                     T),
        r("\"ok\" in result",                                    j(r#"{"ok":1}"#),        T),
        r("\"x\" in result",                                     j(r#"{"ok":1}"#),        F),
        r("result contains \"err\"",                             s("fine"),               F),
        r("result contains \"err\"",                             s("some error"),         T),
        r("result not contains \"err\"",                         s("fine"),               T),
        r("result startsWith \"a\"",                             s("abc"),                T),
        r("result endsWith \"bc\"",                              s("abc"),                T),
        r("result matches \"^[0-9]+$\"",                         s("123"),                T),
        r("result matches \"^\\\\d+$\"",                         s("123"),                T),
        r("result not matches \"ok$\"",                          s("not ok"),             F),
        r("lower(result) == \"abc\"",                            s("ABC"),                T),
        r("upper(result) == \"ABC\"",                            s("abc"),                T),
        r("trim(result) == \"a\"",                               s("  a  "),              T),
        r("trim(result, \"x\") == \"a\"",                        s("xxaxx"),              T),
        r("len(result) == 5",                                    s("héllo"),              T),
        r("'it\\'s' == \"it's\"",                                NIL,                     T),
        r("\"a\\u0041\\x41\\101\" == \"aAAA\"",                  NIL,                     T),
        r("\"a\\\\nb\" == `a\\nb`",                              NIL,                     T),
        r("\"a`b\" == 'a' + '`' + 'b'",                          NIL,                     T),
        r("split(result, \",\")[1] == \"b\"",                    s("a,b"),                T),
        r("\"abc\" matches \"[\"",                               NIL,                     E("error parsing regexp: unclosed character class")).msg(),
        // --- closures and collection builtins ---
        r("all(result, # > 0)",                                  j("[]"),                 T),
        r("any(result, # > 0)",                                  j("[]"),                 F),
        r("none(result, # > 2)",                                 fl(&[1.0, 2.0]),         T),
        r("one(result, # > 1.5)",                                fl(&[1.0, 2.0]),         T),
        r("one(result, # > 0)",                                  fl(&[1.0, 2.0]),         F),
        r("len(filter(result, # > 1)) == 1",                     fl(&[1.0, 2.0]),         T),
        r("map(result, # * 2) == [2, 4]",                        fl(&[1.0, 2.0]),         T),
        r("map(result, {# * 2})[1] == 4",                        fl(&[1.0, 2.0]),         T),
        r("count(result, # > 0) == 2",                           fl(&[1.0, 2.0]),         T),
        r("sum(result, # * 2) == 6",                             fl(&[1.0, 2.0]),         T),
        r("all(result, .a > 0)",                                 j(r#"[{"a":1},{"a":2}]"#), T),
        r("all(result, {.a > 0})",                               j(r#"[{"a":1},{"a":0}]"#), F),
        r("any(result, #.status == \"error\")",                  j(r#"[{"status":"ok"},{"status":"error"}]"#), T),
        r("find(result, # > 1) == 2",                            fl(&[1.0, 2.0, 3.0]),    T),
        r("reduce(result, #acc + #, 0) == 6",                    fl(&[1.0, 2.0, 3.0]),    T),
        r("map(result, #index) == [0, 1]",                       fl(&[5.0, 6.0]),         T),
        r("result | filter(# > 1) | len() == 2",                 fl(&[1.0, 2.0, 3.0]),    T),
        r("all(result, {all(#, # > 0)})",                        j("[[1,2],[3]]"),        T),
        r("all(result, # > 0)",                                  j(r#"[1,"a"]"#),         E("Invalid operands for operator >")).msg(),
        r("first(result) == 1 && last(result) == 3",             fl(&[1.0, 2.0, 3.0]),    T),
        r("{a: 1 + 2}.a == 3",                                   NIL,                     T),
        r("{\"k\": [1, 2]}.k[1] == 2",                           NIL,                     T),
        r("{1: 2}[\"1\"] == 2",                                  NIL,                     T),
        r("len({a: 1, b: 2}) == 2",                              NIL,                     T),
        r("keys(result) == [\"a\"]",                             j(r#"{"a":1}"#),         T),
        // --- math ---
        r("abs(result) == 2",                                    f(-2.0),                 T),
        r("ceil(1.2) == 2 && floor(1.8) == 1",                   NIL,                     T),
        r("round(2.5) == 3 && round(-2.5) == -3",                NIL,                     T),
        r("max(1, 5, 3) == 5 && min(4, 2) == 2",                 NIL,                     T),
        r("sum([]) == 0 && mean([]) == 0",                       NIL,                     T),
        r("median([1, 3, 2]) == 2",                              NIL,                     T),
        r("int(\"5\") + float(\"1.5\") == 6.5",                  NIL,                     T),
        r("string(result) == \"10\"",                            f(10.0),                 T),
        // --- Argo's functions ---
        r("asInt(result) == 5",                                  s("+5"),                 T),
        r("asInt(result) == 5",                                  s("5.0"),                E("strconv.ParseInt: parsing \"5.0\": invalid syntax")),
        r("asInt(result) == 0",                                  s("x"),                  E("strconv.ParseInt: parsing \"x\": invalid syntax")),
        r("asInt(result) == 0",                                  s("99999999999999999999"), E("strconv.ParseInt: parsing \"99999999999999999999\": value out of range")),
        r("asInt(result) == 1",                                  j(r#"{"a":1}"#),         E("asInt() not supported on map[string]interface {} map[a:1]")),
        r("asFloat(result) == 5",                                s("5"),                  T),
        r("asFloat(result) > 0",                                 s("1e999"),              E("strconv.ParseFloat: parsing \"1e999\": value out of range")),
        r("asFloat(result) == 5",                                j("true"),               E("asFloat() not supported on bool true")),
        r("asFloat(result) == 5",                                j("[1,2]"),              E("asFloat() not supported on []interface {} [1 2]")),
        r("asFloat(result) == 5",                                NIL,                     E("asFloat() not supported on <nil> <nil>")),
        r("isNaN(asFloat(result))",                              s("NaN"),                T),
        r("isNil(result)",                                       NIL,                     T),
        r("isNil(result)",                                       f(0.0),                  F),
        r("isNil(42)",                                           NIL,                     T),
        r("isNil(nil)",                                          f(1.0),                  F),
        r("isNil(result)",                                       j("[]"),                 F),
        r("default(123, 5) == 5",                                NIL,                     T),
        r("default(nil, 5) == 7",                                f(7.0),                  T),
        r("default(result, 5) == 7",                             f(7.0),                  T),
        r("isNaN()",                                             NIL,                     E("not enough arguments to call isNaN")),
        r("isNaN(1, 2)",                                         NIL,                     E("too many arguments to call isNaN")),
        r("isNaN(result.a)",                                     j(r#"{"a":"x"}"#),       E("interface conversion: interface {} is string, not float64")),
        r("default(1)",                                          NIL,                     E("not enough arguments to call default")),
        // --- non-boolean results ---
        r("result",                                              f(1.0),                  E("expected bool, but got float64")),
        r("result",                                              s("x"),                  E("expected bool, but got string")),
        r("result",                                              j("[1]"),                E("expected bool, but got []interface {}")),
        r("result",                                              fl(&[1.0]),              E("expected bool, but got []float64")),
        r("result",                                              j("{}"),                 E("expected bool, but got map[string]interface {}")),
        r("result",                                              NIL,                     E("expected bool, but got <nil>")),
        r("1",                                                   NIL,                     E("expected bool, but got int")),
        r("result[0]",                                           fl(&[1.0]),              E("expected bool, but got float64")),
        r("duration(\"1h\")",                                    NIL,                     E("expected bool, but got time.Duration")),
        // --- syntax and name errors ---
        r("result ==",                                           NIL,                     E("unexpected token EOF")),
        r("",                                                    NIL,                     E("unexpected token EOF")),
        r("(1",                                                  NIL,                     E("unexpected token EOF")),
        r("1 +* 2",                                              NIL,                     E("unexpected token Operator(\"*\")")),
        r("1 === 1",                                             NIL,                     E("unexpected token Operator(\"=\")")),
        r("1 not 2",                                             NIL,                     E("unexpected token Number(\"2\")")),
        r("\"abc",                                               NIL,                     E("literal not terminated")),
        r("\"\\q\"",                                             NIL,                     E("invalid char escape")),
        r("1a",                                                  NIL,                     E("bad number syntax: \"1a\"")),
        r("result @ 1",                                          NIL,                     E("unrecognized character: U+0040 '@'")),
        r("/* x",                                                NIL,                     E("unclosed comment")),
        r("# > 1",                                               NIL,                     E("unexpected token Operator(\"#\")")),
        r("all([1], # > 0, 3)",                                  NIL,                     E("unexpected token Number(\"3\")")),
        r("foo == 1",                                            NIL,                     E("unknown name foo")),
        r("foo(1)",                                              NIL,                     E("unknown name foo")),
        r("9223372036854775808 > 0",                             NIL,                     E("invalid integer literal: strconv.ParseInt: parsing \"9223372036854775808\": value out of range")),
        r("1e999 > 0",                                           NIL,                     E("invalid float literal: strconv.ParseFloat: parsing \"1e999\": value out of range")),
        r("1 == 1 // comment",                                   NIL,                     T),
        r("1 == /* c */ 1",                                      NIL,                     T),
        // --- Go's compile-time checks against the result's type ---
        r("result > 1",                                          NIL,                     E("invalid operation: > (mismatched types unknown and int)")),
        r("false && result > 1",                                 NIL,                     E("invalid operation: > (mismatched types unknown and int)")),
        r("result == 1",                                         NIL,                     F),
        r("result in [1]",                                       NIL,                     F),
        r("(result ?? 1) > 0",                                   NIL,                     T),
        r("string(result) == \"<nil>\"",                          NIL,                     T),
        r("len(result) > 1",                                     NIL,                     E("invalid argument for len (type %!s(<nil>))")),
        r("all(result, # > 1)",                                  NIL,                     E("builtin all takes only array (got unknown)")),
        r("-result > 0",                                         NIL,                     E("invalid operation: - (mismatched type unknown)")),
        r("!result",                                             NIL,                     E("invalid operation: ! (mismatched type unknown)")),
        r("result ? true : false",                               NIL,                     E("non-bool expression (type unknown) used as condition")),
        r("result[0] > 1",                                       NIL,                     E("type unknown[int] is undefined")),
        r("isNaN(result)",                                       NIL,                     E("cannot use nil as argument (type float64) to call isNaN")),
        r("result == \"ok\" || result > 0.5",                     s("ok"),                 E("invalid operation: > (mismatched types string and float64)")),
        r("result == \"ok\"",                                     f(1.0),                  E("invalid operation: == (mismatched types float64 and string)")),
        r("\"1\" == 1",                                           NIL,                     E("invalid operation: == (mismatched types string and int)")),
        r("true == 1",                                           NIL,                     E("invalid operation: == (mismatched types bool and int)")),
        r("result + \"x\" == \"1x\"",                             f(1.0),                  E("invalid operation: + (mismatched types float64 and string)")),
        r("result[0] + \"x\" == \"1x\"",                          fl(&[1.0]),              E("invalid operation: + (mismatched types float64 and string)")),
        r("result[0] == \"x\"",                                   j("[1]"),                F),
        r("result.a == \"x\"",                                    j(r#"{"a":1}"#),         F),
        r("result.a > \"x\"",                                     j(r#"{"a":1}"#),         E("Invalid operands for operator >")).msg(),
        r("len(result) > 0",                                     f(1.0),                  E("invalid argument for len (type float64)")),
        r("all(result, # > 0)",                                  f(1.0),                  E("builtin all takes only array (got float64)")),
        r("isNaN(result)",                                       s("x"),                  E("cannot use string as argument (type float64) to call isNaN ")),
        r("result > 0 ? 1 : 0",                                  f(1.0),                  E("expected bool, but got int")),
        r("all(result, #.a > 0)",                                fl(&[1.0]),              E("type float64 has no field a")),
        r("[1, 2] contains 1",                                   NIL,                     E("invalid operation: contains (mismatched types []interface {} and int)")),
        r("result startsWith 1",                                 s("1"),                  E("invalid operation: startsWith (mismatched types string and int)")),
        r("result > 0",                                          j("true"),               E("invalid operation: > (mismatched types bool and int)")),
        r("result == true",                                      j("true"),               T),
        r("result",                                              j("true"),               T),
        r("now() - duration(\"1h\") < now()",                     NIL,                     T),
        r("asInt(result) % 2 == 0",                              s("4"),                  T),
        r("result.x.y ?? 0 == 0",                                j("{}"),                 E("Operator (==) and coalesce expressions (??) cannot be mixed. Wrap either by parentheses.")),
        // --- found by differential fuzzing against Go (oracle/diff.py) ---
        r("result[1] == \"2\"",                                   s("42"),                 E("type string[int] is undefined")),
        r("\"x\" in [1, 2]",                                      NIL,                     E("cannot use string as type int in array")),
        r("result in result",                                    fl(&[1.0]),              E("cannot use []float64 as type float64 in array")),
        r("one(result, \"a\")",                                   fl(&[1.0]),              E("predicate should return boolean (got string)")),
        r("result.b == 1",                                       j("[]"),                 E("array elements can only be selected using an integer (got string)")),
        r("0.1 != []",                                           NIL,                     E("invalid operation: != (mismatched types float64 and []interface {})")),
        r("isNil(1) and int(-1)",                                NIL,                     E("invalid operation: and (mismatched types bool and int)")),
        // --- Go's optimizer folds boolean literals ---
        r("result[1] > 0 && false",                              j("[]"),                 F),
        r("result[1] > 0 || true",                               j("[1]"),                T),
        r("result.a || false",                                   j(r#"{"a":true}"#),      T),
        r("result[1] > 0 && 1 > 2",                              j("[]"),                 E("index out of range: 1 (array length is 0)")),
        // --- time in conditions (now() is 2026-01-02T03:04:05Z here and in the oracle) ---
        r("now().Year() == 2026 && now().Hour() == 3",           NIL,                     T),
        r("now() - duration(\"1h\") < now()",                     NIL,                     T),
        r("date(\"2024-01-02\").Year() == 2024",                  NIL,                     T),
        r("(now() - date(\"2026-01-01\")).Hours() > 24",          NIL,                     T),
        r("now().Local().Hour() == 3",                           NIL,                     T),
        r("date(\"2024-01-02 10:00:00\", \"2006-01-02 15:04:05\", \"Local\").Hour() == 10", NIL, T),
        // --- known deviations (docs/conditions.md) ---
        r("toJSON(1) == \"1\"",                                   NIL,                     E("toJSON() requires expr-lang's `json` feature")).differs(),
        // --- regression rows from fuzzing ---
        r("all(result.Values, #$ < 0.5)",                        j(r#"{"Values":[]}"#),   E("unknown pointer #$")),
        r("all([1], #foo > 0)",                                  NIL,                     E("unknown pointer #foo")),
        r("map([1], #acc) == [nil]",                             NIL,                     E("unknown pointer #acc")),
        r("let é = 1; let a$b = 2; é + a$b == 3",                NIL,                     T),
        r("now().Foo() == 1",                                    NIL,                     E("type time.Time has no method Foo")),
    ]
}

fn check(row: &Row) -> Result<(), String> {
    // The oracle's `now()` is this instant too.
    let now: jiff::Timestamp = "2026-01-02T03:04:05Z".parse().expect("timestamp");
    let got = Condition::compile(row.expr).and_then(|c| c.evaluate_at(&row.input, now));
    let ok = match (&row.want, &got) {
        (T, Ok(true)) | (F, Ok(false)) => true,
        (E(msg), Err(e)) => e.to_string() == *msg,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{:?} with result {:?}: want {:?}, got {:?}",
            row.expr, row.input, row.want, got
        ))
    }
}

#[test]
fn condition_table() {
    let rows = table();
    assert!(rows.len() >= 200, "the table has {} rows", rows.len());
    let failures: Vec<String> = rows.iter().filter_map(|r| check(r).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn nan_result_with_both_conditions_is_inconclusive() {
    let nan = f(NAN);
    assert_eq!(
        evaluate_conditions(Some("result >= 0.95"), None, &nan),
        Outcome::Failed
    );
    assert_eq!(
        evaluate_conditions(Some("result >= 0.95"), Some("result < 0.5"), &nan),
        Outcome::Inconclusive
    );
}

#[test]
fn decision_table() {
    let one = f(1.0);
    let cases: Vec<(Option<&str>, Option<&str>, Outcome)> =
        vec![
        (None, None, Outcome::Successful),
        (Some(""), Some(""), Outcome::Successful),
        (Some("result == 1"), None, Outcome::Successful),
        (Some("result == 2"), None, Outcome::Failed),
        (None, Some("result == 1"), Outcome::Failed),
        (None, Some("result == 2"), Outcome::Successful),
        (Some("result == 1"), Some("result == 1"), Outcome::Failed),
        (Some("result == 1"), Some("result == 2"), Outcome::Successful),
        (Some("result == 2"), Some("result == 2"), Outcome::Inconclusive),
        (Some("result == 2"), Some("result == 1"), Outcome::Failed),
        (
            Some("result.x"),
            Some("result =="),
            Outcome::Error(
                "could not evaluate successCondition \"result.x\": type float64 has no field x"
                    .into(),
            ),
        ),
        (
            Some("result == 1"),
            Some("result =="),
            Outcome::Error(
                "could not evaluate failureCondition \"result ==\": unexpected token EOF".into(),
            ),
        ),
        (
            Some("result"),
            None,
            Outcome::Error(
                "could not evaluate successCondition \"result\": expected bool, but got float64"
                    .into(),
            ),
        ),
    ];
    for (success, failure, want) in cases {
        assert_eq!(
            evaluate_conditions(success, failure, &one),
            want,
            "{success:?} / {failure:?}"
        );
    }
}

#[test]
fn empty_and_nil_results_reword_errors_only() {
    let empty = fl(&[]);
    let nil_or_empty = |kind: &str, e: &str| {
        Outcome::Error(format!(
            "could not evaluate {kind} \"{e}\": metric result is nil or empty: no data returned from the metric provider"
        ))
    };
    assert_eq!(
        evaluate_conditions(Some("result[0] < 5"), None, &empty),
        nil_or_empty("successCondition", "result[0] < 5")
    );
    assert_eq!(
        evaluate_conditions(None, Some("result[0] > 5"), &j("[]")),
        nil_or_empty("failureCondition", "result[0] > 5")
    );
    assert_eq!(
        evaluate_conditions(Some("result > 1"), None, &NIL),
        nil_or_empty("successCondition", "result > 1")
    );
    // A syntax error on an empty result is reworded too, as in Argo.
    assert_eq!(
        evaluate_conditions(Some("result =="), None, &NIL),
        nil_or_empty("successCondition", "result ==")
    );
    // Guarded conditions evaluate normally.
    assert_eq!(
        evaluate_conditions(Some("len(result) > 0 && result[0] < 5"), None, &empty),
        Outcome::Failed
    );
    assert_eq!(
        evaluate_conditions(Some("all(result, # < 5)"), None, &empty),
        Outcome::Successful
    );
    assert_eq!(
        evaluate_conditions(Some("default(result, 0) < 5"), None, &NIL),
        Outcome::Successful
    );
    // An empty map is not "nil or empty".
    assert_eq!(
        evaluate_conditions(Some("result.x > 1"), None, &j("{}")),
        Outcome::Error(
            "could not evaluate successCondition \"result.x > 1\": Invalid operands for operator >"
                .into()
        )
    );
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().expect("timestamp")
}

#[test]
fn time_expressions() {
    let now = ts("2026-01-02T03:04:05Z");
    let ok = |e: &str, want: &str| {
        assert_eq!(evaluate_time(e, now), Ok(ts(want)), "{e}");
    };
    ok("now()", "2026-01-02T03:04:05Z");
    ok("now() - duration(\"5m\")", "2026-01-02T02:59:05Z");
    ok("now() - duration(\"1h30m\")", "2026-01-02T01:34:05Z");
    ok("now() + duration(\"-5m\")", "2026-01-02T02:59:05Z");
    ok("now() - duration(\"1m\") * 2", "2026-01-02T03:02:05Z");
    ok("date(\"2024-01-02T03:04:05Z\")", "2024-01-02T03:04:05Z");
    ok(
        "isNaN(1) ? now() : now() - duration(\"1h\")",
        "2026-01-02T02:04:05Z",
    );
    let now_ns = ts("2026-01-02T03:04:05.123456789Z");
    assert_eq!(evaluate_time("now()", now_ns), Ok(now_ns));
    let err = |e: &str, want: &str| {
        assert_eq!(
            evaluate_time(e, now).map_err(|e| e.to_string()),
            Err(want.to_string()),
            "{e}"
        );
    };
    err("1", "expected time.Time, but got int");
    err(
        "duration(\"5m\")",
        "expected time.Time, but got time.Duration",
    );
    err("result", "unknown name result");
    err("now() -", "unexpected token EOF");
    assert!(matches!(
        evaluate_time("now() - duration(\"5x\")", now),
        Err(ExprError::Eval(_))
    ));
}

#[test]
fn now_in_conditions_is_injected() {
    let now = ts("2026-01-02T03:04:05Z");
    let c = Condition::compile("now() > date(\"2026-01-01\")").expect("compiles");
    assert_eq!(c.evaluate_at(&NIL, now), Ok(true));
    assert!(matches!(c.evaluate(&NIL), Err(ExprError::Eval(_))));
    assert_eq!(
        evaluate_conditions_at(Some("now() > date(\"2027-01-01\")"), None, &f(1.0), now),
        Outcome::Failed
    );
}

#[test]
fn compile_reports_errors_up_front() {
    assert_eq!(
        Condition::compile("result >").unwrap_err(),
        ExprError::Compile("unexpected token EOF".into())
    );
    assert!(matches!(
        Condition::compile("result matches \"(\""),
        Err(ExprError::Compile(m)) if m.starts_with("error parsing regexp:")
    ));
    let c = Condition::compile("result > 1").expect("compiles");
    assert_eq!(c.source(), "result > 1");
}

/// With `ROLLOUTS_EXPR_GO_ORACLE` set, every row must also agree with Go expr (see the module doc).
#[test]
fn rows_agree_with_go_when_the_oracle_is_available() {
    let Ok(oracle) = std::env::var("ROLLOUTS_EXPR_GO_ORACLE") else {
        return;
    };
    let mut child = Command::new(oracle)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the oracle");
    let rows = table();
    let mut input = String::new();
    for row in &rows {
        let (rtype, result) = oracle_input(&row.input);
        let req = serde_json::json!({"expr": row.expr, "rtype": rtype, "result": result});
        input.push_str(&req.to_string());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut disagreements = Vec::new();
    for (row, line) in rows.iter().zip(out.lines()) {
        let resp: serde_json::Value = serde_json::from_str(&line.expect("line")).expect("json");
        let go = match (&resp["value"], resp["error"].as_str()) {
            (_, Some(e)) => E(Box::leak(e.to_string().into_boxed_str())),
            (serde_json::Value::Bool(true), _) => T,
            _ => F,
        };
        let agrees = match (row.go, &row.want, &go) {
            (Go::Same, want, go) => want == go,
            (Go::Message, E(_), E(_)) => true,
            (Go::Message, _, _) => false,
            (Go::Differs, want, go) => want != go,
        };
        if !agrees {
            disagreements.push(format!(
                "{:?} ({:?}): ours {:?}, Go {:?}",
                row.expr, row.go, row.want, go
            ));
        }
    }
    let status = child.wait().expect("oracle exit");
    assert!(status.success(), "the oracle failed: {status}");
    assert!(
        disagreements.is_empty(),
        "{} rows disagree with Go:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

fn oracle_input(v: &ResultValue) -> (&'static str, serde_json::Value) {
    fn num(f: f64) -> serde_json::Value {
        if f.is_nan() {
            "NaN".into()
        } else if f.is_infinite() {
            if f > 0.0 {
                "+Inf".into()
            } else {
                "-Inf".into()
            }
        } else {
            f.into()
        }
    }
    fn json(v: &ResultValue) -> serde_json::Value {
        match v {
            ResultValue::Nil => serde_json::Value::Null,
            ResultValue::Bool(b) => (*b).into(),
            ResultValue::Int(i) => (*i).into(),
            ResultValue::Float(f) => num(*f),
            ResultValue::String(s) => s.clone().into(),
            ResultValue::Floats(v) => v.iter().map(|f| num(*f)).collect(),
            ResultValue::List(v) => v.iter().map(json).collect(),
            ResultValue::Map(m) => m.iter().map(|(k, v)| (k.clone(), json(v))).collect(),
        }
    }
    match v {
        ResultValue::Nil => ("nil", serde_json::Value::Null),
        ResultValue::Float(f) => ("float", num(*f)),
        ResultValue::Floats(_) => ("floats", json(v)),
        other => ("json", json(other)),
    }
}
