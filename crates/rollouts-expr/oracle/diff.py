#!/usr/bin/env python3
"""Differential fuzzing of rollouts-expr against Go expr (developer tool).

Generates random conditions from a grammar of the constructs Argo users write, evaluates each against
random results with both the Go oracle and `cargo run --example eval_jsonl`, and prints the rows
where the answers differ (a value against an error, or two different values). Error wording is not
compared unless --messages is given.

    go build -o /tmp/expr-oracle .   # in this folder
    cargo build -p rollouts-expr --example eval_jsonl
    python3 diff.py --oracle /tmp/expr-oracle --ours target/debug/examples/eval_jsonl -n 20000
"""
import argparse
import json
import random
import subprocess

RESULTS = [
    ("nil", None),
    ("float", 1.5),
    ("float", 0.0),
    ("float", "NaN"),
    ("float", "+Inf"),
    ("floats", [1, 2, 3]),
    ("floats", []),
    ("floats", ["NaN", 0.5]),
    ("json", "abc"),
    ("json", "42"),
    ("json", True),
    ("json", []),
    ("json", [1, "x", None]),
    ("json", {"a": 1, "b": [1, 2], "c": {"d": True}, "s": "ok"}),
    ("json", [{"a": 1, "status": "ok"}, {"a": 2, "status": "error"}]),
]

LEAVES = ["result", "1", "0", "2.5", "-1", "nil", "true", "false", '"ok"', '"a"', "'x'", "[1, 2]",
          "[]", "{a: 1}", "result.a", "result.b", "result[0]", "result[1]", "result[-1]", "result.s",
          "result.c.d", "result?.a", "#", ".a", "#index", "1e3", "0.1", '"42"']
BINOPS = ["+", "-", "*", "/", "%", "**", "==", "!=", "<", ">", "<=", ">=", "&&", "||", "and", "or",
          "in", "not in", "contains", "startsWith", "endsWith", "matches", "??", ".."]
FUNCS1 = ["len", "abs", "isNaN", "isInf", "isNil", "asInt", "asFloat", "string", "int", "float",
          "lower", "upper", "trim", "first", "last", "max", "min", "sum", "mean", "ceil", "floor",
          "round", "keys", "type"]
PREDS = ["all", "any", "none", "one", "filter", "map", "count", "find", "findIndex"]


def gen(depth, in_closure=False):
    if depth <= 0 or random.random() < 0.25:
        leaf = random.choice(LEAVES)
        if leaf in ("#", ".a", "#index") and not in_closure:
            leaf = "result"
        return leaf
    k = random.random()
    if k < 0.40:
        return f"{gen(depth - 1, in_closure)} {random.choice(BINOPS)} {gen(depth - 1, in_closure)}"
    if k < 0.50:
        return f"({gen(depth - 1, in_closure)})"
    if k < 0.58:
        return f"{random.choice(['!', 'not ', '-'])}{gen(depth - 1, in_closure)}"
    if k < 0.70:
        return f"{random.choice(FUNCS1)}({gen(depth - 1, in_closure)})"
    if k < 0.72:
        return f"default({gen(depth - 1, in_closure)}, {gen(depth - 1, in_closure)})"
    if k < 0.84:
        body = gen(depth - 1, True)
        body = "{" + body + "}" if random.random() < 0.5 else body
        return f"{random.choice(PREDS)}({gen(depth - 1, in_closure)}, {body})"
    if k < 0.92:
        return f"{gen(depth - 1, in_closure)} ? {gen(depth - 1, in_closure)} : {gen(depth - 1, in_closure)}"
    return f"{gen(depth - 1, in_closure)}[{gen(depth - 1, in_closure)}]"


def run(binary, reqs):
    data = "".join(json.dumps(r) + "\n" for r in reqs)
    out = subprocess.run([binary], input=data, capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oracle", required=True)
    ap.add_argument("--ours", required=True)
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--messages", action="store_true")
    args = ap.parse_args()
    random.seed(args.seed)
    reqs = []
    for _ in range(args.n):
        rtype, result = random.choice(RESULTS)
        reqs.append({"expr": gen(random.randint(1, 4)), "rtype": rtype, "result": result})
    go, ours = run(args.oracle, reqs), run(args.ours, reqs)
    diffs = 0
    for req, g, o in zip(reqs, go, ours):
        g_err, o_err = "error" in g, "error" in o
        if "GO PANIC" in g.get("error", ""):
            continue
        same = (g_err and o_err and (not args.messages or g["error"] == o["error"])) or (
            not g_err and not o_err and g["value"] == o["value"])
        if not same:
            diffs += 1
            print(json.dumps({"expr": req["expr"], "result": req["result"], "go": g, "ours": o}))
    print(f"# {diffs} of {len(reqs)} differ")


if __name__ == "__main__":
    main()
