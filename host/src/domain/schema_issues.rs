//! JSON Schema validation errors as config issues: a JSON Pointer to the
//! field at fault and a message. A missing field and an unknown one are
//! named by their own pointers (the validator reports them at the parent);
//! for `oneOf`/`anyOf` the branch that got furthest is reported, so a
//! mistake deep in a rule tree is named where it is.

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use super::config::{ConfigIssue, pointer_token};

/// Every way `instance` breaks the schema `validator` checks.
pub fn schema_issues(validator: &Validator, instance: &Value) -> Vec<ConfigIssue> {
    // The common case answers without collecting errors.
    if validator.is_valid(instance) {
        return Vec::new();
    }
    let mut found = Vec::new();
    for error in validator.iter_errors(instance) {
        collect(&error, &mut found);
    }
    found.dedup();
    found
}

/// The nested branches of a `oneOf`/`anyOf` failure, if it is one.
fn branches<'e>(error: &'e ValidationError<'_>) -> Option<&'e [Vec<ValidationError<'static>>]> {
    match error.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            Some(context)
        }
        _ => None,
    }
}

/// How deep into the instance an error (or any error nested in it) reaches.
fn reach(error: &ValidationError<'_>) -> usize {
    let own = error.instance_path().into_iter().count();
    let nested = branches(error)
        .into_iter()
        .flatten()
        .flatten()
        .map(reach)
        .max()
        .unwrap_or(0);
    own.max(nested)
}

/// Flatten one error: for `oneOf`/`anyOf` descend into the branch whose
/// errors reach deepest into the instance (the branch the author meant).
fn collect(error: &ValidationError<'_>, found: &mut Vec<ConfigIssue>) {
    if let Some(best) = branches(error).and_then(best_branch) {
        for inner in best {
            collect(inner, found);
        }
        return;
    }
    let at = |field: &str| format!("{}/{}", error.instance_path(), pointer_token(field));
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let field = property.as_str().unwrap_or_default();
            found.push(ConfigIssue {
                pointer: at(field),
                message: format!("missing field `{field}`"),
            })
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            found.extend(unexpected.iter().map(|field| ConfigIssue {
                pointer: at(field),
                message: format!("unknown field `{field}`"),
            }))
        }
        _ => found.push(ConfigIssue {
            pointer: error.instance_path().to_string(),
            message: error.to_string(),
        }),
    }
}

/// The single branch that reaches deeper than the failure itself and than
/// every other branch; `None` when that is not clear-cut.
fn best_branch<'e>(
    branches: &'e [Vec<ValidationError<'static>>],
) -> Option<&'e [ValidationError<'static>]> {
    let depth = |errors: &[ValidationError<'_>]| errors.iter().map(reach).max().unwrap_or(0);
    let deepest = branches.iter().map(|b| depth(b)).max()?;
    let mut candidates = branches.iter().filter(|b| depth(b) == deepest);
    match (candidates.next(), candidates.next()) {
        (Some(only), None) if !only.is_empty() => Some(only.as_slice()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_and_unknown_fields_are_named_by_their_own_pointers() {
        let schema = json!({
            "type": "object",
            "properties": {
                "risk": {
                    "type": "object",
                    "properties": { "max_drawdown": { "type": "number" } },
                    "additionalProperties": false
                },
                "name": { "type": "string" }
            },
            "required": ["name"]
        });
        let validator = jsonschema::validator_for(&schema).unwrap();
        let found = schema_issues(
            &validator,
            &json!({ "risk": { "max_drawdwn": 1, "a/b": 2 } }),
        );
        let mut pointers: Vec<_> = found.iter().map(|i| i.pointer.as_str()).collect();
        pointers.sort();
        assert_eq!(
            pointers,
            ["/name", "/risk/a~1b", "/risk/max_drawdwn"],
            "{found:?}"
        );
        assert!(
            found.iter().any(|i| i.message == "missing field `name`"),
            "{found:?}"
        );
        assert!(schema_issues(&validator, &json!({ "name": "x" })).is_empty());
    }
}
