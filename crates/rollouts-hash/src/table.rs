//! The shape of the generated Go type table ([`crate::gotypes`]).
//!
//! Each Go type that `encoding/json` can visit from a root is one [`TypeDef`]; composite types
//! refer to their parts by index into [`crate::gotypes::TYPES`]. Named Go types with a plain
//! kind (`type Protocol string`) are listed under their kind; types whose JSON form comes from
//! their own `MarshalJSON`/`UnmarshalJSON` have a variant of their own.

/// One Go type, as `encoding/json` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeDef {
    /// A struct: its JSON fields in declaration order (embedded structs already spliced in).
    Struct {
        /// Go package path and type name, for error messages and the table's readers.
        name: &'static str,
        /// JSON fields, in the order `encoding/json` writes them.
        fields: &'static [Field],
    },
    /// `*T`.
    Ptr(usize),
    /// `[]T` (never `[]byte`).
    Slice(usize),
    /// `map[K]T` with a string-kinded key.
    Map(usize),
    /// A string-kinded type.
    String,
    /// A bool-kinded type.
    Bool,
    /// A signed integer of the given bit size.
    Int(u32),
    /// An unsigned integer of the given bit size (none reachable from today's roots; kept so a
    /// regenerated table that needs it works).
    #[allow(dead_code)]
    Uint(u32),
    /// A float of the given bit size (none reachable from today's roots, see `Uint`).
    #[allow(dead_code)]
    Float(u32),
    /// `k8s.io/apimachinery/pkg/api/resource.Quantity`.
    Quantity,
    /// `k8s.io/apimachinery/pkg/util/intstr.IntOrString`.
    IntOrString,
    /// `k8s.io/apimachinery/pkg/apis/meta/v1.Time`.
    Time,
    /// `k8s.io/apimachinery/pkg/apis/meta/v1.FieldsV1` (raw JSON; `null` leaves it unset).
    FieldsV1,
    /// `encoding/json.RawMessage` (raw JSON; `null` is kept as the bytes `null`).
    RawMessage,
}

/// One JSON field of a Go struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    /// The JSON name (from the `json` tag, or the Go field name).
    pub(crate) name: &'static str,
    /// Index of the field's type in the table.
    pub(crate) ty: usize,
    /// `omitempty`: skip false, 0, "", nil pointers and empty slices/maps (never a struct).
    pub(crate) omit_empty: bool,
    /// `omitzero`: skip the Go zero value (or a value whose `IsZero()` method says so).
    pub(crate) omit_zero: bool,
}
