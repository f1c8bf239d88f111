// Command golden writes the golden fixtures of crates/rollouts-hash from the reference
// implementation: Argo Rollouts' own hash functions over the real Go types.
//
// Dev tool only (not run by tests or CI):
//
//	cd xtask/go/gotypes && go run ./golden -out ../../../crates/rollouts-hash/tests/fixtures
//
// For every input it does what a running Argo controller does with a Rollout it reads:
//
//  1. normalise the input the way the API server does before Argo ever sees it: decode into
//     untyped JSON (integers that fit int64 stay integers, other numbers become float64) and
//     encode again (sorted object keys, Go string escaping, Go number formatting);
//  2. decode that into the typed Go value with client-go's decoder (sigs.k8s.io/json,
//     case-sensitive field names, unknown fields dropped);
//  3. json.Marshal the typed value, and hash it with utils/hash.ComputePodTemplateHash (pod
//     templates) or utils/conditions.ComputeStepHash (canary steps).
//
// A decoding error is recorded as the expected outcome ("error"); the Rust encoder must then
// fail as well.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/utils/conditions"
	"github.com/argoproj/argo-rollouts/utils/hash"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
)

type inputCase struct {
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

type podCase struct {
	Name            string            `json:"name"`
	Input           json.RawMessage   `json:"input"`
	GoJSON          *string           `json:"goJson"`
	Hash            string            `json:"hash,omitempty"`
	CollisionHashes map[string]string `json:"collisionHashes,omitempty"`
	Error           string            `json:"error,omitempty"`
}

type stepCase struct {
	Name   string          `json:"name"`
	Input  json.RawMessage `json:"input"`
	GoJSON *string         `json:"goJson"`
	Hash   string          `json:"hash,omitempty"`
	Error  string          `json:"error,omitempty"`
}

type diffInput struct {
	Kind  string          `json:"kind"`
	Input json.RawMessage `json:"input"`
}

type diffCase struct {
	Kind   string          `json:"kind"`
	Input  json.RawMessage `json:"input"`
	GoJSON *string         `json:"goJson"`
	Hash   string          `json:"hash,omitempty"`
}

type fixture[T any] struct {
	Comment []string `json:"comment"`
	Cases   []T      `json:"cases"`
}

var collisionCounts = []int32{0, 1, 2, 7, 2147483647, -1}

// normalise re-encodes data the way the API server serves a custom resource.
func normalise(data []byte) ([]byte, error) {
	var v interface{}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(data, &v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func readCases(path string) []inputCase {
	raw, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	var cases []inputCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		panic(fmt.Sprintf("%s: %v", path, err))
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.Name] {
			panic("duplicate case name " + c.Name)
		}
		seen[c.Name] = true
	}
	return cases
}

func podTemplateCase(in inputCase) podCase {
	out := podCase{Name: in.Name, Input: in.Input}
	norm, err := normalise(in.Input)
	if err != nil {
		panic(fmt.Sprintf("%s: input is not JSON: %v", in.Name, err))
	}
	var tmpl corev1.PodTemplateSpec
	if err := kjson.UnmarshalCaseSensitivePreserveInts(norm, &tmpl); err != nil {
		out.Error = err.Error()
		return out
	}
	b, err := json.Marshal(&tmpl)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	s := string(b)
	out.GoJSON = &s
	out.Hash = hash.ComputePodTemplateHash(&tmpl, nil)
	out.CollisionHashes = map[string]string{}
	for _, c := range collisionCounts {
		c := c
		out.CollisionHashes[strconv.Itoa(int(c))] = hash.ComputePodTemplateHash(&tmpl, &c)
	}
	return out
}

func stepCaseOf(in inputCase) stepCase {
	out := stepCase{Name: in.Name, Input: in.Input}
	norm, err := normalise(in.Input)
	if err != nil {
		panic(fmt.Sprintf("%s: input is not JSON: %v", in.Name, err))
	}
	var steps []v1alpha1.CanaryStep
	if err := kjson.UnmarshalCaseSensitivePreserveInts(norm, &steps); err != nil {
		out.Error = err.Error()
		return out
	}
	b, err := json.Marshal(steps)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	s := string(b)
	out.GoJSON = &s
	ro := &v1alpha1.Rollout{}
	ro.Spec.Strategy.Canary = &v1alpha1.CanaryStrategy{Steps: steps}
	out.Hash = conditions.ComputeStepHash(ro)
	return out
}

func write(path string, v interface{}) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		panic(err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", path)
}

// writeCompact writes a fixture with one compact line per case (the machine-made cases are
// large; indentation would triple the file).
func writeCompact[T any](path string, f fixture[T]) {
	var buf bytes.Buffer
	comment, err := json.Marshal(f.Comment)
	if err != nil {
		panic(err)
	}
	buf.WriteString("{\"comment\": ")
	buf.Write(comment)
	buf.WriteString(",\n\"cases\": [\n")
	for i, c := range f.Cases {
		line, err := json.Marshal(c)
		if err != nil {
			panic(err)
		}
		buf.Write(line)
		if i+1 < len(f.Cases) {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("]}\n")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		panic(err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", path)
}

func main() {
	out := flag.String("out", "", "fixture directory (crates/rollouts-hash/tests/fixtures)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: golden -out DIR")
		os.Exit(2)
	}

	pods := fixture[podCase]{Comment: []string{
		"Generated by xtask/go/gotypes/golden from golden/pod-templates.json: DO NOT EDIT.",
		"Reference: k8s.io/api v0.34.5 core/v1.PodTemplateSpec decoded with sigs.k8s.io/json",
		"(case-sensitive, after API-server-style normalisation), json.Marshal, and Argo Rollouts",
		"v1.10.1 utils/hash.ComputePodTemplateHash.",
		"Each case: name; input (the template as a user writes it); goJson (the bytes Argo hashes,",
		"null when Go fails to decode the input); hash (collisionCount nil); collisionHashes",
		"(collisionCount -> hash); error (Go's decode error, when it fails).",
	}}
	for _, c := range readCases("golden/pod-templates.json") {
		pods.Cases = append(pods.Cases, podTemplateCase(c))
	}
	write(filepath.Join(*out, "pod-template-hashes.json"), pods)

	steps := fixture[stepCase]{Comment: []string{
		"Generated by xtask/go/gotypes/golden from golden/steps.json: DO NOT EDIT.",
		"Reference: Argo Rollouts v1.10.1 []v1alpha1.CanaryStep decoded with sigs.k8s.io/json",
		"(case-sensitive, after API-server-style normalisation), json.Marshal, and",
		"utils/conditions.ComputeStepHash (status.currentStepHash).",
		"Each case: name; input (spec.strategy.canary.steps as a user writes it); goJson (the bytes",
		"Argo hashes, null when Go fails to decode the input); hash; error (Go's decode error).",
	}}
	for _, c := range readCases("golden/steps.json") {
		steps.Cases = append(steps.Cases, stepCaseOf(c))
	}
	write(filepath.Join(*out, "step-hashes.json"), steps)

	diff := fixture[diffCase]{Comment: []string{
		"Generated by xtask/go/gotypes/golden from golden/differential-inputs.json: DO NOT EDIT.",
		"Machine-made inputs (golden inputs with random parts replaced by random JSON, kept from a",
		"30,000-case differential run against Go) for the same reference as the two other fixtures.",
		"Each case: kind (pod: a PodTemplateSpec, steps: a canary step list); input; goJson (null",
		"when Go fails to decode the input); hash (collisionCount nil for pods).",
	}}
	raw, err := os.ReadFile("golden/differential-inputs.json")
	if err != nil {
		panic(err)
	}
	var inputs []diffInput
	if err := json.Unmarshal(raw, &inputs); err != nil {
		panic(err)
	}
	for _, in := range inputs {
		c := diffCase{Kind: in.Kind, Input: in.Input}
		switch in.Kind {
		case "pod":
			r := podTemplateCase(inputCase{Name: "diff", Input: in.Input})
			c.GoJSON, c.Hash = r.GoJSON, r.Hash
		case "steps":
			r := stepCaseOf(inputCase{Name: "diff", Input: in.Input})
			c.GoJSON, c.Hash = r.GoJSON, r.Hash
		default:
			panic("unknown kind " + in.Kind)
		}
		diff.Cases = append(diff.Cases, c)
	}
	writeCompact(filepath.Join(*out, "differential.json"), diff)
}
