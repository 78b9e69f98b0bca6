//! Plugin parameter schemas: untrusted input.
//!
//! A plugin reports its parameter schema as JSON text. Before it is used the
//! host caps its size and nesting and compiles it with every external `$ref`
//! refused: no network, no file system. What does not compile is refused
//! with the reason. Validation errors become JSON Pointers into the
//! parameters; for `oneOf`/`anyOf` the branch that got furthest is reported,
//! so a mistake deep in a rule tree is named where it is.

use jsonschema::{Retrieve, Validator};
use serde_json::Value;

/// Largest schema text accepted.
pub const MAX_SCHEMA_BYTES: usize = 256 * 1024;
/// Deepest nesting of arrays and objects accepted in a schema.
pub const MAX_SCHEMA_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("schema is {size} bytes, more than the {MAX_SCHEMA_BYTES} allowed")]
    TooLarge { size: usize },
    #[error("schema nests deeper than {MAX_SCHEMA_DEPTH} levels")]
    TooDeep,
    #[error("schema is not JSON: {0}")]
    NotJson(String),
    #[error("schema does not compile: {0}")]
    Invalid(String),
    #[error(
        "validating against this schema could check one value against more than {} subschemas (nested anyOf/oneOf/allOf/$ref, {} levels into the parameters); simplify it",
        super::schema_cost::MAX_SCHEMAS_AT_ONE_PLACE,
        .depth
    )]
    TooCostly { depth: usize },
}

/// Refuses every external reference.
struct NoExternalRefs;

impl Retrieve for NoExternalRefs {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!(
            "external reference `{uri}` is not allowed (plugin schemas must be self-contained)"
        )
        .into())
    }
}

/// Parse, cap and compile a plugin's parameter schema.
pub fn compile(text: &str) -> Result<(Value, Validator), SchemaError> {
    if text.len() > MAX_SCHEMA_BYTES {
        return Err(SchemaError::TooLarge { size: text.len() });
    }
    let schema: Value =
        serde_json::from_str(text).map_err(|err| SchemaError::NotJson(err.to_string()))?;
    if super::schema_cost::depth(&schema) > MAX_SCHEMA_DEPTH {
        return Err(SchemaError::TooDeep);
    }
    super::schema_cost::check(&schema).map_err(|costly| SchemaError::TooCostly {
        depth: costly.depth,
    })?;
    let validator = jsonschema::options()
        .with_retriever(NoExternalRefs)
        .build(&schema)
        .map_err(|err| SchemaError::Invalid(err.to_string()))?;
    Ok((schema, validator))
}

/// Every way `instance` breaks the schema, as JSON Pointers and messages.
pub use crate::domain::schema_issues as issues;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn remote_and_file_refs_are_refused() {
        for target in ["https://schemas.example.com/x.json", "file:///etc/passwd"] {
            let text = json!({ "$ref": target }).to_string();
            let err = compile(&text).unwrap_err();
            assert!(matches!(err, SchemaError::Invalid(_)), "{err}");
        }
    }

    #[test]
    fn size_and_depth_are_capped() {
        let big = format!(r#"{{"description": "{}"}}"#, "x".repeat(MAX_SCHEMA_BYTES));
        assert!(matches!(compile(&big), Err(SchemaError::TooLarge { .. })));
        let mut deep = json!({});
        for _ in 0..MAX_SCHEMA_DEPTH + 1 {
            deep = json!({ "not": deep });
        }
        assert_eq!(
            compile(&deep.to_string()).unwrap_err(),
            SchemaError::TooDeep
        );
        assert!(matches!(compile("{"), Err(SchemaError::NotJson(_))));
    }

    #[test]
    fn local_refs_work_and_issues_have_pointers() {
        let schema = json!({
            "type": "object",
            "properties": { "items": { "type": "array", "items": { "$ref": "#/$defs/leaf" } } },
            "additionalProperties": false,
            "$defs": { "leaf": { "type": "integer", "minimum": 1 } }
        });
        let (_, validator) = compile(&schema.to_string()).unwrap();
        let found = issues(&validator, &json!({ "items": [1, 0], "extra": true }));
        let pointers: Vec<_> = found.iter().map(|i| i.pointer.as_str()).collect();
        assert!(pointers.contains(&"/items/1"), "{found:?}");
        assert!(pointers.contains(&"/extra"), "{found:?}");
    }

    #[test]
    fn one_of_failures_point_into_the_intended_branch() {
        let schema = json!({
            "oneOf": [
                { "type": "object", "properties": { "ema": { "type": "integer", "minimum": 1 } }, "required": ["ema"], "additionalProperties": false },
                { "type": "object", "properties": { "sma": { "type": "integer", "minimum": 1 } }, "required": ["sma"], "additionalProperties": false }
            ]
        });
        let (_, validator) = compile(&schema.to_string()).unwrap();
        let found = issues(&validator, &json!({ "ema": 0 }));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].pointer, "/ema");
    }
}
