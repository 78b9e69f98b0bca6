//! How much work validating against a plugin's parameter schema can take,
//! found before the schema is accepted.
//!
//! A validator checks an instance value against every subschema that
//! applies at its place: `allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/
//! `else` and `$ref` all apply more subschemas at the same place. A schema
//! that nests them (`anyOf` of two `$ref`s to a schema that is itself an
//! `anyOf` of two `$ref`s ..., 40 deep) makes a single value be checked
//! 2^40 times. This module walks the schema the way a validator would, one
//! instance depth at a time (properties and items move one level down, and
//! at each level only the subschemas of one property name apply), and
//! counts the subschemas that can apply at one place of the instance. A
//! schema whose count passes [`MAX_SCHEMAS_AT_ONE_PLACE`] at any depth up
//! to [`MAX_PARAMS_DEPTH`] is refused; the walk itself stops as soon as its
//! total work passes a budget, so the check is cheap whatever it is given.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

/// Deepest parameters document accepted (and looked at here).
pub const MAX_PARAMS_DEPTH: usize = 32;
/// Most subschemas that may apply at one place of a parameters document.
pub const MAX_SCHEMAS_AT_ONE_PLACE: usize = 1_000;
/// Work the check may do before it gives up on the schema.
const WALK_BUDGET: usize = 200_000;
/// Keywords whose subschema applies at the same place of the instance.
const IN_PLACE_ONE: [&str; 4] = ["not", "if", "then", "else"];
const IN_PLACE_MANY: [&str; 3] = ["allOf", "anyOf", "oneOf"];
/// Keywords whose subschemas apply to every member (one level down).
const EVERY_MEMBER: [&str; 6] = [
    "additionalProperties",
    "unevaluatedProperties",
    "propertyNames",
    "items",
    "additionalItems",
    "unevaluatedItems",
];

/// Why a schema is too costly to validate against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooCostly {
    /// Instance depth at which the count passed the limit.
    pub depth: usize,
}

struct Walk<'a> {
    root: &'a Value,
    budget: usize,
    /// Places already found fine: the subschemas that apply there (by
    /// address) and the depth. Recursive schemas meet the same place again
    /// and again.
    checked: HashSet<(Vec<usize>, usize)>,
}

impl<'a> Walk<'a> {
    fn spend(&mut self, depth: usize) -> Result<(), TooCostly> {
        self.budget = self.budget.checked_sub(1).ok_or(TooCostly { depth })?;
        Ok(())
    }

    /// The subschema a local `$ref` names (`#`, `#/$defs/x`, ...); None for
    /// anything else (external references are refused when compiling).
    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        self.root.pointer(pointer)
    }

    /// Every subschema that applies where `schemas` apply, in-place
    /// applicators followed.
    fn expand(
        &mut self,
        schemas: Vec<&'a Value>,
        depth: usize,
    ) -> Result<Vec<&'a Value>, TooCostly> {
        let mut applying = Vec::new();
        let mut pending = schemas;
        while let Some(schema) = pending.pop() {
            self.spend(depth)?;
            applying.push(schema);
            if applying.len() > MAX_SCHEMAS_AT_ONE_PLACE {
                return Err(TooCostly { depth });
            }
            let Value::Object(keywords) = schema else {
                continue;
            };
            if let Some(target) = keywords
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| self.resolve(r))
            {
                pending.push(target);
            }
            for keyword in IN_PLACE_ONE {
                if let Some(sub) = keywords.get(keyword) {
                    pending.push(sub);
                }
            }
            for keyword in IN_PLACE_MANY {
                if let Some(Value::Array(subs)) = keywords.get(keyword) {
                    pending.extend(subs);
                }
            }
            if let Some(Value::Object(dependent)) = keywords.get("dependentSchemas") {
                pending.extend(dependent.values());
            }
        }
        Ok(applying)
    }

    /// Check the places below one where `schemas` apply, `depth` levels
    /// into the instance.
    fn check(&mut self, schemas: Vec<&'a Value>, depth: usize) -> Result<(), TooCostly> {
        if depth >= MAX_PARAMS_DEPTH {
            return Ok(());
        }
        let mut place: Vec<usize> = schemas
            .iter()
            .map(|s| *s as *const Value as usize)
            .collect();
        place.sort_unstable();
        if !self.checked.insert((place, depth)) {
            return Ok(());
        }
        let applying = self.expand(schemas, depth)?;
        // One level down: a member named `n` meets the subschemas of
        // `properties.n` plus every member-wide one; array items meet the
        // item subschemas.
        let mut by_name: BTreeMap<&'a str, Vec<&'a Value>> = BTreeMap::new();
        let mut every = Vec::new();
        for schema in &applying {
            let Value::Object(keywords) = schema else {
                continue;
            };
            if let Some(Value::Object(properties)) = keywords.get("properties") {
                for (name, sub) in properties {
                    by_name.entry(name).or_default().push(sub);
                }
            }
            if let Some(Value::Object(patterns)) = keywords.get("patternProperties") {
                every.extend(patterns.values());
            }
            if let Some(Value::Array(prefix)) = keywords.get("prefixItems") {
                every.extend(prefix);
            }
            if let Some(sub) = keywords.get("contains") {
                every.push(sub);
            }
            for keyword in EVERY_MEMBER {
                match keywords.get(keyword) {
                    Some(Value::Array(subs)) => every.extend(subs),
                    Some(sub) => every.push(sub),
                    None => {}
                }
            }
        }
        for named in by_name.into_values() {
            let mut below = named;
            below.extend(every.iter().copied());
            self.check(below, depth + 1)?;
        }
        if !every.is_empty() {
            self.check(every, depth + 1)?;
        }
        Ok(())
    }
}

/// Whether validating against `schema` stays within the limits.
pub fn check(schema: &Value) -> Result<(), TooCostly> {
    let mut walk = Walk {
        root: schema,
        budget: WALK_BUDGET,
        checked: HashSet::new(),
    };
    walk.check(vec![schema], 0)
}

/// Nesting depth of a JSON value (a scalar is depth 0).
pub fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ordinary_and_recursive_schemas_pass() {
        let plain = json!({
            "type": "object",
            "properties": {
                "fast": { "type": "integer" },
                "size": { "oneOf": [{ "$ref": "#/$defs/qty" }, { "$ref": "#/$defs/pct" }] }
            },
            "$defs": { "qty": { "type": "number" }, "pct": { "type": "number" } }
        });
        assert_eq!(check(&plain), Ok(()));
        // A rule tree: recursive through properties, each name its own branch.
        let tree = json!({
            "$defs": {
                "rule": { "anyOf": [
                    { "type": "object", "properties": { "all": { "type": "array", "items": { "$ref": "#/$defs/rule" } } } },
                    { "type": "object", "properties": { "any": { "type": "array", "items": { "$ref": "#/$defs/rule" } } } },
                    { "type": "object", "properties": { "not": { "$ref": "#/$defs/rule" } } },
                    { "type": "object", "properties": { "above": { "type": "number" } } }
                ] }
            },
            "$ref": "#/$defs/rule"
        });
        assert_eq!(check(&tree), Ok(()));
    }

    #[test]
    fn nested_any_of_refs_are_refused_quickly() {
        // Level i is anyOf [ref level i+1, ref level i+1]: 2^40 at one place.
        let mut defs = serde_json::Map::new();
        for level in 0..40 {
            let next = format!("#/$defs/l{}", level + 1);
            defs.insert(
                format!("l{level}"),
                json!({ "anyOf": [{ "$ref": next }, { "$ref": next }] }),
            );
        }
        defs.insert("l40".into(), json!({ "type": "integer" }));
        let schema = json!({ "$ref": "#/$defs/l0", "$defs": defs });
        let started = std::time::Instant::now();
        assert!(check(&schema).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // The same through properties: doubling at every level down.
        let doubling = json!({
            "$defs": { "n": { "anyOf": [
                { "properties": { "a": { "$ref": "#/$defs/n" } } },
                { "properties": { "a": { "$ref": "#/$defs/n" } } }
            ] } },
            "$ref": "#/$defs/n"
        });
        assert!(check(&doubling).is_err());
        // A reference cycle at one place never ends: refused too.
        let cycle = json!({ "$defs": { "a": { "$ref": "#/$defs/b" }, "b": { "$ref": "#/$defs/a" } }, "$ref": "#/$defs/a" });
        assert!(check(&cycle).is_err());
    }
}
