//! Hand-written JSON schemas for the few fields whose shape the derive cannot express the way
//! Argo declares it: free-form JSON objects and trimmed object metadata.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A JSON object the API server keeps as written (`x-kubernetes-preserve-unknown-fields`).
///
/// Used for plugin configuration and other opaque JSON (`trafficRouting.plugins`,
/// `steps[].plugin.config`, `provider.plugin`, `web.jsonBody`, step plugin status).
pub fn preserve_unknown_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Object metadata reduced to `labels` and `annotations`, the only metadata fields Argo's
/// schema keeps for embedded templates (everything else is pruned by the API server).
pub fn labels_and_annotations(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "properties": {
            "labels": {
                "type": "object",
                "additionalProperties": { "type": "string" },
            },
            "annotations": {
                "type": "object",
                "additionalProperties": { "type": "string" },
            },
        },
    })
}
