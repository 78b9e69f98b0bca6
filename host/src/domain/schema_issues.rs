//! JSON Schema validation errors as config issues: a JSON Pointer to the
//! field at fault and a message. A missing field and an unknown one are
//! named by their own pointers (the validator reports them at the parent);
//! for `oneOf`/`anyOf` the branch the author meant is reported (in a
//! tagged union the one its tag names, otherwise the one that got
//! furthest), so a mistake deep in a rule tree is named where it is. Long
//! values are quoted short.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use super::config::{ConfigIssue, pointer_token};
use super::patterns::in_words;

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

/// Flatten one error: for `oneOf`/`anyOf` descend into the branch the
/// author meant (see [`best_branch`]).
fn collect(error: &ValidationError<'_>, found: &mut Vec<ConfigIssue>) {
    if let Some(branches) = branches(error) {
        if let Some(best) = best_branch(branches) {
            for inner in best {
                collect(inner, found);
            }
            return;
        }
        if let Some(message) = none_of(error.instance(), branches) {
            found.push(ConfigIssue {
                pointer: error.instance_path().to_string(),
                message,
            });
            return;
        }
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
            message: expected(error).map_or_else(
                || shortened(&error.to_string()),
                |wanted| format!("{} is not {wanted}", shown(error.instance())),
            ),
        }),
    }
}

/// What the value failing `error` should have been, in words, when the
/// error is one that can be said so: a type, or one of our patterns.
fn expected(error: &ValidationError<'_>) -> Option<String> {
    match error.kind() {
        ValidationErrorKind::Type {
            kind: TypeKind::Single(wanted),
        } => Some(match wanted.to_string().as_str() {
            "null" => "null".to_string(),
            name @ ("integer" | "array" | "object") => format!("an {name}"),
            name => format!("a {name}"),
        }),
        ValidationErrorKind::Pattern { pattern } => in_words(pattern).map(str::to_string),
        ValidationErrorKind::Constant { expected_value } => Some(expected_value.to_string()),
        _ => None,
    }
}

/// A value no branch of a `oneOf`/`anyOf` takes, when each branch failed
/// on one thing that can be said in words: "\"abc\" is not a number, or a
/// decimal in plain digits, ...".
fn none_of(instance: &Value, branches: &[Vec<ValidationError<'static>>]) -> Option<String> {
    let mut wanted = branches
        .iter()
        .map(|errors| match errors.as_slice() {
            [only] => expected(only),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    // Branches of one type (objects of different fields) are said once.
    let mut said = std::collections::HashSet::new();
    wanted.retain(|kind| said.insert(kind.clone()));
    Some(format!(
        "{} is not {}",
        shown(instance),
        wanted.join(", or ")
    ))
}

/// The longest value or message quoted whole in an issue.
const QUOTED_AT_MOST: usize = 80;

/// A value as an issue quotes it: its JSON, cut short when long (a whole
/// file given where a config was expected must not fill the answer).
fn shown(value: &Value) -> String {
    shortened(&value.to_string())
}

/// `text`, or its first [`QUOTED_AT_MOST`] characters and how long it was.
pub(super) fn shortened(text: &str) -> String {
    match text.char_indices().nth(QUOTED_AT_MOST) {
        None => text.to_string(),
        Some((end, _)) => format!("{}… ({} characters)", &text[..end], text.chars().count()),
    }
}

/// The branch the author meant. In a tagged union (a variant's `kind` is a
/// `const`, and a branch that fails on one is a variant the author did not
/// name), the one branch whose tag fits. Otherwise the single branch that
/// reaches deeper than the failure itself and than every other branch;
/// among branches that reach equally deep, the one whose tag fits. `None`
/// when that is not clear-cut.
fn best_branch<'e>(
    branches: &'e [Vec<ValidationError<'static>>],
) -> Option<&'e [ValidationError<'static>]> {
    let tag_fits = |errors: &&Vec<ValidationError<'static>>| {
        !errors
            .iter()
            .any(|e| matches!(e.kind(), ValidationErrorKind::Constant { .. }))
    };
    // A tagged union whose tag names one variant: that one was meant, even
    // when its errors (an unknown field) are shallower than the others'
    // (their tag, one level down).
    let tagged = branches.iter().any(|b| !tag_fits(&b));
    if let [named] = branches.iter().filter(tag_fits).collect::<Vec<_>>()[..]
        && tagged
        && !named.is_empty()
    {
        return Some(named.as_slice());
    }
    let depth = |errors: &[ValidationError<'_>]| errors.iter().map(reach).max().unwrap_or(0);
    let deepest = branches.iter().map(|b| depth(b)).max()?;
    let candidates: Vec<_> = branches
        .iter()
        .filter(|b| !b.is_empty() && depth(b) == deepest)
        .collect();
    match candidates.as_slice() {
        [only] => Some(only.as_slice()),
        several => match several.iter().filter(|b| tag_fits(b)).collect::<Vec<_>>()[..] {
            [named] => Some(named.as_slice()),
            _ => None,
        },
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

    #[test]
    fn our_patterns_and_plain_alternatives_are_said_in_words() {
        let schema = json!({
            "type": "object",
            "properties": {
                "id": { "type": "string", "pattern": crate::domain::patterns::BOT_ID },
                "fee": {
                    "anyOf": [
                        { "type": "number" },
                        { "type": "string", "pattern": crate::domain::patterns::DECIMAL },
                        { "type": "null" }
                    ]
                }
            }
        });
        let validator = jsonschema::validator_for(&schema).unwrap();
        let found = schema_issues(&validator, &json!({ "id": "Bad Id", "fee": "abc" }));
        let message = |pointer: &str| {
            found
                .iter()
                .find(|issue| issue.pointer == pointer)
                .map(|issue| issue.message.clone())
                .unwrap_or_else(|| panic!("{pointer}: {found:?}"))
        };
        assert_eq!(
            message("/id"),
            "\"Bad Id\" is not 1 to 64 lowercase letters, digits and '-', starting with a letter or digit"
        );
        assert_eq!(
            message("/fee"),
            "\"abc\" is not a number, or a decimal in plain digits, such as \"0.001\" or \"-2.5\", or null"
        );
        let found = schema_issues(&validator, &json!({ "fee": true }));
        assert_eq!(
            found[0].message,
            "true is not a number, or a string, or null"
        );
        // Objects of different fields: one kind, said once.
        let size = json!({ "oneOf": [
            { "type": "object", "required": ["percent_of_equity"] },
            { "type": "object", "required": ["quote"] },
            { "type": "object", "required": ["base"] }
        ]});
        let validator = jsonschema::validator_for(&size).unwrap();
        assert_eq!(
            schema_issues(&validator, &json!(1))[0].message,
            "1 is not an object"
        );
    }

    #[test]
    fn a_field_wrong_in_the_variant_its_tag_names_is_named_by_its_pointer() {
        let variant = |kind: &str, field: &str| {
            json!({
                "type": "object",
                "properties": { "kind": { "const": kind }, field: { "type": "integer" } },
                "required": ["kind", field],
                "additionalProperties": false
            })
        };
        let schema = json!({
            "type": "object",
            "properties": { "feed": { "oneOf": [variant("synthetic", "seed"), variant("replay", "file")] } }
        });
        let validator = jsonschema::validator_for(&schema).unwrap();
        let found = schema_issues(
            &validator,
            &json!({ "feed": { "kind": "synthetic", "sed": 1 } }),
        );
        let pointers: Vec<_> = found
            .iter()
            .map(|i| (i.pointer.as_str(), i.message.as_str()))
            .collect();
        assert!(
            pointers.contains(&("/feed/sed", "unknown field `sed`")),
            "{found:?}"
        );
        assert!(
            pointers.contains(&("/feed/seed", "missing field `seed`")),
            "{found:?}"
        );
        assert_eq!(found.len(), 2, "nothing of the other variant: {found:?}");
    }

    #[test]
    fn a_long_value_is_quoted_short() {
        let validator = jsonschema::validator_for(&json!({ "type": "object" })).unwrap();
        let file = "ts,open,high,low,close,volume\n".repeat(1_000);
        let found = schema_issues(&validator, &json!(file));
        assert!(found[0].message.len() < 200, "{}", found[0].message);
        assert!(
            found[0].message.contains("(31002 characters)"),
            "{}",
            found[0].message
        );
    }
}
