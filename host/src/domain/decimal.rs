//! How decimals look in configs and their schemas: a number or a string on
//! input (strings keep every digit), always a string on output.

use schemars::{Schema, SchemaGenerator, json_schema};

/// JSON Schema of a decimal field: a number, or a string holding one.
pub fn decimal_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "A decimal: a number, or a string such as \"0.001\" to keep every digit.",
        "anyOf": [
            { "type": "number" },
            { "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$" }
        ]
    })
}

/// Like [`decimal_schema`], for optional fields.
pub fn optional_decimal_schema(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = decimal_schema(generator);
    if let Some(any_of) = schema.get_mut("anyOf").and_then(|v| v.as_array_mut()) {
        any_of.push(serde_json::json!({ "type": "null" }));
    }
    schema
}
