// Command gotypes prints crates/rollouts-hash/src/gotypes.rs: a table of every Go type that
// encoding/json visits when it marshals a k8s.io/api core/v1 PodTemplateSpec or a list of Argo
// Rollouts CanaryStep, reflected from the real Go types at the versions Argo Rollouts vendors.
//
// Dev tool only (not run by tests or CI). Regenerate after Argo Rollouts bumps Kubernetes:
//
//	cd xtask/go/gotypes && go run . > ../../../crates/rollouts-hash/src/gotypes.rs
//
// The program refuses (panics) on anything the Rust encoder does not model: unknown types with
// their own JSON/text marshalling, interfaces, arrays, `,string` options, ambiguous embedded
// fields. Extend the Rust side first, then the list of special types below.
package main

import (
	"encoding"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	corev1 "k8s.io/api/core/v1"
)

var (
	jsonMarshaler   = reflect.TypeFor[json.Marshaler]()
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	isZeroer        = reflect.TypeFor[interface{ IsZero() bool }]()
)

// Types whose JSON form comes from their own MarshalJSON/UnmarshalJSON; the Rust encoder
// implements each of them by hand (crates/rollouts-hash/src/encoder.rs and TypeDef in
// src/table.rs). Anything else with a custom codec makes the generator panic.
var special = map[string]string{
	"k8s.io/apimachinery/pkg/api/resource.Quantity":   "Quantity",
	"k8s.io/apimachinery/pkg/util/intstr.IntOrString": "IntOrString",
	"k8s.io/apimachinery/pkg/apis/meta/v1.Time":       "Time",
	"k8s.io/apimachinery/pkg/apis/meta/v1.FieldsV1":   "FieldsV1",
	"encoding/json.RawMessage":                        "RawMessage",
}

type field struct {
	name      string
	goName    string
	ty        int
	omitEmpty bool
	omitZero  bool
}

type entry struct {
	goName string
	rust   string // the TypeDef expression, filled once the type is described
	fields []field
}

type gen struct {
	types []entry
	index map[reflect.Type]int
}

func typeName(t reflect.Type) string {
	if t.Name() != "" && t.PkgPath() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	return t.String()
}

func (g *gen) typeIndex(t reflect.Type) int {
	if i, ok := g.index[t]; ok {
		return i
	}
	i := len(g.types)
	g.index[t] = i
	g.types = append(g.types, entry{goName: typeName(t)})
	rust, fields := g.describe(t)
	g.types[i].rust = rust
	g.types[i].fields = fields
	return i
}

func customCodec(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	for _, i := range []reflect.Type{jsonMarshaler, jsonUnmarshaler, textMarshaler, textUnmarshaler} {
		if t.Implements(i) || p.Implements(i) {
			return true
		}
	}
	return false
}

func (g *gen) describe(t reflect.Type) (string, []field) {
	if s, ok := special[typeName(t)]; ok {
		return s, nil
	}
	if t.Kind() != reflect.Pointer && customCodec(t) {
		panic(fmt.Sprintf("type %s has its own JSON or text codec; model it in Rust and add it to `special`", typeName(t)))
	}
	switch t.Kind() {
	case reflect.Pointer:
		return fmt.Sprintf("Ptr(%d)", g.typeIndex(t.Elem())), nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			panic(fmt.Sprintf("[]byte type %s (base64) is not modelled", typeName(t)))
		}
		return fmt.Sprintf("Slice(%d)", g.typeIndex(t.Elem())), nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String || customCodec(t.Key()) {
			panic(fmt.Sprintf("map %s without plain string keys", typeName(t)))
		}
		return fmt.Sprintf("Map(%d)", g.typeIndex(t.Elem())), nil
	case reflect.String:
		return "String", nil
	case reflect.Bool:
		return "Bool", nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("Int(%d)", t.Bits()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("Uint(%d)", t.Bits()), nil
	case reflect.Float32, reflect.Float64:
		return fmt.Sprintf("Float(%d)", t.Bits()), nil
	case reflect.Struct:
		var fields []field
		g.structFields(t, &fields, map[reflect.Type]bool{})
		seen := map[string]string{}
		for _, f := range fields {
			if other, dup := seen[f.name]; dup {
				panic(fmt.Sprintf("%s: JSON name %q used by %s and %s", typeName(t), f.name, other, f.goName))
			}
			seen[f.name] = f.goName
		}
		return "Struct", fields
	default:
		panic(fmt.Sprintf("unsupported kind %s for %s", t.Kind(), typeName(t)))
	}
}

// structFields lists the JSON fields of t in encoding/json order: declaration order, with the
// fields of untagged embedded structs spliced in where the embedded field is declared.
func (g *gen) structFields(t reflect.Type, out *[]field, visiting map[reflect.Type]bool) {
	if visiting[t] {
		panic(fmt.Sprintf("recursive embedding of %s", typeName(t)))
	}
	visiting[t] = true
	defer delete(visiting, t)
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if sf.Anonymous {
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				panic(fmt.Sprintf("%s embeds pointer %s: not modelled", typeName(t), ft))
			}
			if !sf.IsExported() && ft.Kind() != reflect.Struct {
				continue
			}
			if name == "" && ft.Kind() == reflect.Struct {
				if customCodec(ft) {
					panic(fmt.Sprintf("%s embeds %s, which has its own codec", typeName(t), ft))
				}
				g.structFields(ft, out, visiting)
				continue
			}
		} else if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f := field{name: name, goName: typeName(t) + "." + sf.Name}
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "":
			case "omitempty":
				f.omitEmpty = true
			case "omitzero":
				f.omitZero = true
				ft := sf.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				_, known := special[typeName(ft)]
				hasMethod := ft.Implements(isZeroer) || reflect.PointerTo(ft).Implements(isZeroer)
				if hasMethod && !known {
					panic(fmt.Sprintf("%s: omitzero on %s, whose IsZero method is not modelled", f.goName, ft))
				}
				if !hasMethod && ft.Kind() == reflect.Struct {
					panic(fmt.Sprintf("%s: omitzero on plain struct %s is not modelled", f.goName, ft))
				}
			case "inline":
				// Only meaningful to Kubernetes' code generators; encoding/json ignores it.
			default:
				panic(fmt.Sprintf("%s: unsupported json tag option %q", f.goName, o))
			}
		}
		f.ty = g.typeIndex(sf.Type)
		*out = append(*out, f)
	}
}

func rustString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func main() {
	g := &gen{index: map[reflect.Type]int{}}
	podTemplate := g.typeIndex(reflect.TypeFor[corev1.PodTemplateSpec]())
	steps := g.typeIndex(reflect.TypeFor[[]v1alpha1.CanaryStep]())

	var specials []string
	for _, e := range g.types {
		if _, ok := special[e.goName]; ok {
			specials = append(specials, e.goName)
		}
	}
	sort.Strings(specials)

	w := os.Stdout
	fmt.Fprintln(w, "// @generated by xtask/go/gotypes (go run .): DO NOT EDIT.")
	fmt.Fprintln(w, "//")
	fmt.Fprintln(w, "// Sources: k8s.io/api v0.34.5, k8s.io/apimachinery v0.34.5,")
	fmt.Fprintln(w, "// github.com/argoproj/argo-rollouts v1.10.1 (pkg/apis/rollouts/v1alpha1).")
	fmt.Fprintln(w, "// Types with hand-written JSON codecs reached from the roots:")
	for _, s := range specials {
		fmt.Fprintf(w, "//   %s\n", s)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "//! Go type table (generated): every type encoding/json visits from the two roots, in")
	fmt.Fprintln(w, "//! the order the generator met them. Indices in `Ptr`, `Slice`, `Map` and `Field::ty` point")
	fmt.Fprintln(w, "//! into [`TYPES`].")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "use crate::table::{Field, TypeDef, TypeDef::*};")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "/// Index of `k8s.io/api/core/v1.PodTemplateSpec` in [`TYPES`].")
	fmt.Fprintf(w, "pub(crate) const POD_TEMPLATE_SPEC: usize = %d;\n", podTemplate)
	fmt.Fprintln(w, "/// Index of `[]github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1.CanaryStep` in [`TYPES`].")
	fmt.Fprintf(w, "pub(crate) const CANARY_STEPS: usize = %d;\n", steps)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "/// The Go types, indexed by the numbers used in the table itself.")
	fmt.Fprintln(w, "pub(crate) static TYPES: &[TypeDef] = &[")
	for i, e := range g.types {
		if e.rust != "Struct" {
			fmt.Fprintf(w, "    // %d: %s\n    %s,\n", i, e.goName, e.rust)
			continue
		}
		fmt.Fprintf(w, "    // %d\n    Struct {\n        name: %s,\n        fields: &[\n", i, rustString(e.goName))
		for _, f := range e.fields {
			fmt.Fprintf(w, "            Field { name: %s, ty: %d, omit_empty: %t, omit_zero: %t },\n",
				rustString(f.name), f.ty, f.omitEmpty, f.omitZero)
		}
		fmt.Fprintln(w, "        ],\n    },")
	}
	fmt.Fprintln(w, "];")
}
