// Oracle: evaluates conditions with Go expr-lang/expr v1.17.8 in an environment that behaves like
// Argo Rollouts' condition evaluator (written from its documented behaviour), so that rows of the
// Rust table can be checked against the Go library. Reads JSON lines on stdin, writes JSON lines.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strconv"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
)

type request struct {
	Mode    string          `json:"mode"` // cond | decide | time
	Expr    string          `json:"expr"`
	Success string          `json:"success"`
	Failure string          `json:"failure"`
	RType   string          `json:"rtype"` // json | float | floats | nil | nilptr
	Result  json.RawMessage `json:"result"`
}

type response struct {
	Value any    `json:"value,omitempty"`
	Error string `json:"error,omitempty"`
	Type  string `json:"type,omitempty"`
}

func parseFloat(raw json.RawMessage) float64 {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "NaN":
			return math.NaN()
		case "+Inf", "Inf":
			return math.Inf(1)
		case "-Inf":
			return math.Inf(-1)
		}
		f, _ := strconv.ParseFloat(s, 64)
		return f
	}
	var f float64
	_ = json.Unmarshal(raw, &f)
	return f
}

func decodeResult(r request) any {
	switch r.RType {
	case "nil":
		return nil
	case "nilptr":
		var p *float64
		return p
	case "float":
		return parseFloat(r.Result)
	case "floats":
		var raws []json.RawMessage
		_ = json.Unmarshal(r.Result, &raws)
		out := []float64{}
		for _, x := range raws {
			out = append(out, parseFloat(x))
		}
		return out
	default:
		var v any
		_ = json.Unmarshal(r.Result, &v)
		return v
	}
}

func isNil(in any) bool {
	if in == nil {
		return true
	}
	switch reflect.TypeOf(in).Kind() {
	case reflect.Ptr, reflect.Map, reflect.Array, reflect.Chan, reflect.Slice:
		return reflect.ValueOf(in).IsNil()
	}
	return false
}

func deref(in any) any {
	if isNil(in) {
		return nil
	}
	if reflect.TypeOf(in).Kind() != reflect.Ptr {
		return in
	}
	return reflect.ValueOf(in).Elem().Interface()
}

func toInt(in any) int64 {
	switch i := in.(type) {
	case float64:
		return int64(i)
	case int:
		return int64(i)
	case int64:
		return i
	case string:
		v, err := strconv.ParseInt(i, 10, 64)
		if err != nil {
			panic(err)
		}
		return v
	}
	panic(fmt.Sprintf("asInt() not supported on %v %v", reflect.TypeOf(in), in))
}

func toFloat(in any) float64 {
	switch i := in.(type) {
	case float64:
		return i
	case int:
		return float64(i)
	case int64:
		return float64(i)
	case string:
		v, err := strconv.ParseFloat(i, 64)
		if err != nil {
			panic(err)
		}
		return v
	}
	panic(fmt.Sprintf("asFloat() not supported on %v %v", reflect.TypeOf(in), in))
}

var fixedNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func bare(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return errors.New(fe.Message)
	}
	return err
}

func evalCond(result any, cond string) (bool, error) {
	env := map[string]any{
		"result":  deref(result),
		"asInt":   toInt,
		"asFloat": toFloat,
		"isNaN":   math.IsNaN,
		"isInf":   func(f float64) bool { return math.IsInf(f, 0) },
		"isNil":   func(_ any) bool { return isNil(result) },
		"default": func(_ any, d any) any {
			if isNil(result) {
				return d
			}
			return deref(result)
		},
		// Argo's now() reads the clock; here it is fixed so that answers can be compared.
		"now": func() time.Time { return fixedNow },
	}
	program, err := expr.Compile(cond, expr.Env(env))
	if err != nil {
		return false, bare(err)
	}
	out, err := expr.Run(program, env)
	if err != nil {
		return false, bare(err)
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("expected bool, but got %T", out)
	}
	return b, nil
}

func nilOrEmpty(result any) bool {
	if isNil(result) {
		return true
	}
	v := reflect.ValueOf(result)
	switch v.Kind() {
	case reflect.Slice, reflect.Array:
		return v.Len() == 0
	}
	return false
}

func wrap(err error, kind, e string, result any) error {
	if nilOrEmpty(result) {
		return fmt.Errorf("could not evaluate %s \"%s\": metric result is nil or empty: no data returned from the metric provider", kind, e)
	}
	return fmt.Errorf("could not evaluate %s \"%s\": %w", kind, e, err)
}

func decide(result any, success, failure string) (string, error) {
	s, f := false, false
	var err error
	if success != "" {
		s, err = evalCond(result, success)
		if err != nil {
			return "Error", wrap(err, "successCondition", success, result)
		}
	}
	if failure != "" {
		f, err = evalCond(result, failure)
		if err != nil {
			return "Error", wrap(err, "failureCondition", failure, result)
		}
	}
	switch {
	case success == "" && failure == "":
		return "Successful", nil
	case success != "" && failure == "":
		f = !s
	case success == "" && failure != "":
		s = !f
	}
	if f {
		return "Failed", nil
	}
	if !s {
		return "Inconclusive", nil
	}
	return "Successful", nil
}

func evalTime(e string) (time.Time, error) {
	env := map[string]any{
		"isNaN": math.IsNaN,
		"isInf": func(f float64) bool { return math.IsInf(f, 0) },
		"now":   func() time.Time { return fixedNow },
	}
	program, err := expr.Compile(e, expr.Env(env))
	if err != nil {
		return time.Time{}, bare(err)
	}
	out, err := expr.Run(program, env)
	if err != nil {
		return time.Time{}, bare(err)
	}
	t, ok := out.(time.Time)
	if !ok {
		return time.Time{}, fmt.Errorf("expected time.Time, but got %T", out)
	}
	return t, nil
}

func handle(r request) (resp response) {
	defer func() {
		if p := recover(); p != nil {
			resp = response{Error: fmt.Sprintf("GO PANIC: %v", p)}
		}
	}()
	switch r.Mode {
	case "decide":
		phase, err := decide(decodeResult(r), r.Success, r.Failure)
		if err != nil {
			return response{Value: phase, Error: err.Error()}
		}
		return response{Value: phase}
	case "time":
		t, err := evalTime(r.Expr)
		if err != nil {
			return response{Error: err.Error()}
		}
		return response{Value: t.UTC().Format(time.RFC3339Nano)}
	default:
		b, err := evalCond(decodeResult(r), r.Expr)
		if err != nil {
			return response{Error: err.Error()}
		}
		return response{Value: b}
	}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var r request
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			_ = out.Encode(response{Error: "bad request: " + err.Error()})
			continue
		}
		_ = out.Encode(handle(r))
	}
}
