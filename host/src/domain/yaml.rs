//! YAML with a budget: every YAML document the host reads (bot configs from
//! clients and files, presets, the settings file) goes through [`parse`].
//!
//! YAML aliases repeat an anchored node wherever they appear, so a few
//! hundred bytes can stand for billions of nodes ("billion laughs"). The
//! parser here counts every node it builds, aliases expanded included, and
//! stops with an error as soon as the count passes [`MAX_NODES`]: a hostile
//! document costs milliseconds and a bounded amount of memory, never the
//! machine.

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Largest YAML text accepted.
pub const MAX_BYTES: usize = 1024 * 1024;
/// Most nodes (scalars, sequences, mappings, with aliases expanded) one
/// document may stand for. A bot config has a few hundred.
pub const MAX_NODES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlError {
    #[error("the YAML text is {0} bytes, more than the {MAX_BYTES} allowed")]
    TooLarge(usize),
    #[error(
        "the YAML document stands for more than {MAX_NODES} values once its aliases are expanded"
    )]
    TooManyNodes,
    /// "malformed YAML: ...", or "malformed JSON: ..." for a text in
    /// JSON's syntax (which YAML reads too).
    #[error("{0}")]
    Malformed(String),
}

/// Parse one YAML document into a JSON value, within the budget.
pub fn parse(text: &str) -> Result<Value, YamlError> {
    if text.len() > MAX_BYTES {
        return Err(YamlError::TooLarge(text.len()));
    }
    match within_budget(text) {
        Ok(value) => Ok(value),
        Err(Refusal::Exceeded) => Err(YamlError::TooManyNodes),
        Err(Refusal::Failed { error, duplicate }) => {
            let message = match duplicate {
                Some(key) => duplicate_message(text, &key, &error),
                // serde_yaml's own guard against aliases repeated too often.
                None if error.to_string().contains("repetition limit") => {
                    return Err(YamlError::TooManyNodes);
                }
                None => error.to_string(),
            };
            let syntax = if text.trim_start().starts_with(['{', '[']) {
                "JSON"
            } else {
                "YAML"
            };
            Err(YamlError::Malformed(format!(
                "malformed {syntax}: {message}"
            )))
        }
    }
}

/// Why [`within_budget`] gave no value.
enum Refusal {
    /// The document stands for more than [`MAX_NODES`] values.
    Exceeded,
    /// serde_yaml's error, and the key a mapping named twice if that was it.
    Failed {
        error: serde_yaml::Error,
        duplicate: Option<String>,
    },
}

/// `text` as a JSON value, counting every node against [`MAX_NODES`].
fn within_budget(text: &str) -> Result<Value, Refusal> {
    let remaining = Cell::new(MAX_NODES);
    let exceeded = Cell::new(false);
    let duplicate = Cell::new(None);
    let seed = Budgeted {
        remaining: &remaining,
        exceeded: &exceeded,
        duplicate: &duplicate,
    };
    seed.deserialize(serde_yaml::Deserializer::from_str(text))
        .map_err(|error| {
            if exceeded.get() {
                Refusal::Exceeded
            } else {
                Refusal::Failed {
                    error,
                    duplicate: duplicate.take(),
                }
            }
        })
}

/// serde_yaml's error for a key named twice (its path, then where the
/// mapping starts), told where the key comes again when that can be found
/// in block style; else, in the mapping at its start.
fn duplicate_message(text: &str, key: &str, error: &serde_yaml::Error) -> String {
    let said = error.to_string();
    let Some(at) = error.location() else {
        return said;
    };
    let (line, column) = (at.line(), at.column());
    let lead = said
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&said);
    match second_key(text, key, line, column) {
        Some(again) => format!("{lead} at line {again} column {column}"),
        None => format!("{lead} in the mapping at line {line} column {column}"),
    }
}

/// Whether the text before line `index` (from 0) is a whole document: a
/// line that only looks like a key, inside a quoted string or a flow
/// collection that runs on over lines, leaves it unfinished.
fn ends_before(text: &str, index: usize) -> bool {
    let end: usize = text.split_inclusive('\n').take(index).map(str::len).sum();
    within_budget(&text[..end]).is_ok()
}

/// The line where `key` is named a second time in the block mapping whose
/// keys start at `line` and `column`: the second line at the mapping's
/// indentation that starts with it, and that follows a whole document
/// (not a line inside a string). `None` for a flow mapping (`{...}`), or
/// when no such line is found.
fn second_key(text: &str, key: &str, line: usize, column: usize) -> Option<usize> {
    let indent = column.checked_sub(1)?;
    let first = text.lines().nth(line.checked_sub(1)?)?;
    if first.get(indent..)?.starts_with('{') {
        return None;
    }
    // `key:` then a space or the line's end (`fast:er` is another key).
    let names_key = |rest: &str| {
        [key.to_string(), format!("\"{key}\""), format!("'{key}'")]
            .iter()
            .any(|name| {
                rest.strip_prefix(name.as_str())
                    .and_then(|after| after.trim_start_matches(' ').strip_prefix(':'))
                    .is_some_and(|value| value.is_empty() || value.starts_with([' ', '\t']))
            })
    };
    let (mut seen, mut checks) = (0, 0);
    for (index, content) in text.lines().enumerate().skip(line - 1) {
        let (margin, rest) = if index == line - 1 {
            (indent, content.get(indent..)?)
        } else {
            let rest = content.trim_start_matches(' ');
            (content.len() - rest.len(), rest)
        };
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        // A line left of the mapping's keys ends it.
        if margin < indent {
            return None;
        }
        if margin == indent && names_key(rest) {
            // Each check parses the text before the line: a few, not one
            // per line of a long string written to look like keys.
            checks += 1;
            if checks > MAX_KEY_CHECKS {
                return None;
            }
            if ends_before(text, index) {
                seen += 1;
                if seen == 2 {
                    return Some(index + 1);
                }
            }
        }
    }
    None
}

/// Lines that look like the duplicated key checked by [`second_key`] at
/// most, each with a parse of the text before it.
const MAX_KEY_CHECKS: usize = 8;

/// Builds a JSON value, counting each node against the shared budget.
#[derive(Clone, Copy)]
struct Budgeted<'a> {
    remaining: &'a Cell<usize>,
    exceeded: &'a Cell<bool>,
    /// The key a mapping named twice, once one did.
    duplicate: &'a Cell<Option<String>>,
}

impl Budgeted<'_> {
    fn spend<E: serde::de::Error>(&self) -> Result<(), E> {
        match self.remaining.get().checked_sub(1) {
            Some(left) => {
                self.remaining.set(left);
                Ok(())
            }
            None => {
                self.exceeded.set(true);
                Err(E::custom("node budget exhausted"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Budgeted<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Budgeted<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.spend()?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.spend()?;
            // A document that says two things is ambiguous, not a choice (as
            // JSON documents: `domain::json`).
            if object.contains_key(&key) {
                let message = format!("duplicate key `{key}`");
                self.duplicate.set(Some(key));
                return Err(A::Error::custom(message));
            }
            let value = map.next_value_seed(self)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, _data: A) -> Result<Value, A::Error> {
        Err(A::Error::custom("YAML tags are not supported"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_documents_parse_as_before() {
        let text = "id: a\nlist: [1, 2.5, true, null, x]\nnested: { k: v }\n";
        assert_eq!(
            parse(text).unwrap(),
            serde_json::json!({"id": "a", "list": [1, 2.5, true, null, "x"], "nested": {"k": "v"}})
        );
        assert_eq!(parse("").unwrap(), Value::Null);
        let aliased = "base: &b { x: 1 }\ncopy: *b\n";
        assert_eq!(parse(aliased).unwrap()["copy"]["x"], 1);
    }

    #[test]
    fn a_key_named_twice_is_malformed() {
        for text in [
            "name: First\nname: Second\n",
            "params: { fast: 5, slow: 30, fast: 7 }\n",
        ] {
            match parse(text) {
                Err(YamlError::Malformed(message)) => {
                    assert!(message.contains("duplicate key"), "{text}: {message}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(parse("a: { k: 1 }\nb: { k: 2 }\n").is_ok());
    }

    #[test]
    fn a_key_named_twice_is_found_where_it_is_named_again() {
        for (text, said) in [
            (
                "name: First\nid: a\nname: Second\n",
                "duplicate key `name` at line 3 column 1",
            ),
            (
                "# a bot\nid: a\nparams:\n  fast: 5\n\n  slow: 30\n  fast: 7\nname: x\n",
                "params: duplicate key `fast` at line 7 column 3",
            ),
            (
                "params:\n  'fast': 5\n  \"fast\" : 7\n",
                "params: duplicate key `fast` at line 3 column 3",
            ),
            // `fast:er` is a key of its own; a line in a string only looks
            // like one.
            (
                "params:\n  fast: 5\n  fast:er: 6\n  note: \"keep\n  fast: 9 here\"\n  fast: 7\n",
                "params: duplicate key `fast` at line 6 column 3",
            ),
            (
                "- a: 1\n  a: 2\n",
                ".[0]: duplicate key `a` at line 2 column 3",
            ),
            // In flow style, the mapping.
            (
                "params: { fast: 5, slow: 30, fast: 7 }\n",
                "params: duplicate key `fast` in the mapping at line 1 column 9",
            ),
        ] {
            assert_eq!(
                parse(text),
                Err(YamlError::Malformed(format!("malformed YAML: {said}"))),
                "{text:?}"
            );
        }
        // Past a few lines that only look like the key, the mapping.
        let mut looks_alike = String::from("params:\n  fast: 5\n  note: \"\n");
        looks_alike.push_str(&"  fast: 9\n".repeat(20));
        looks_alike.push_str("  \"\n  fast: 7\n");
        assert_eq!(
            parse(&looks_alike),
            Err(YamlError::Malformed(
                "malformed YAML: params: duplicate key `fast` in the mapping at line 2 column 3"
                    .into()
            ))
        );
        // A key named `repetition limit` twice is a duplicate, not a bomb.
        assert!(matches!(
            parse("repetition limit: 1\nrepetition limit: 2\n"),
            Err(YamlError::Malformed(_))
        ));
    }

    #[test]
    fn an_alias_bomb_is_refused_at_once() {
        // One anchor of 20,000 items and 20,000 aliases of it: 400 million
        // nodes in about 200 KB of text.
        let mut text = String::from("a: &a [");
        text.push_str(&"0,".repeat(20_000));
        text.push_str("0]\nb: [");
        text.push_str(&"*a,".repeat(20_000));
        text.push_str("*a]\n");
        let started = std::time::Instant::now();
        assert_eq!(parse(&text), Err(YamlError::TooManyNodes));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // The classic nested form too.
        let laughs = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n";
        assert_eq!(parse(laughs), Err(YamlError::TooManyNodes));
    }

    #[test]
    fn malformed_and_oversized_text_is_refused_with_a_reason() {
        assert!(matches!(parse("a: [1, 2"), Err(YamlError::Malformed(_))));
        // Named by the syntax it is written in.
        let said = |text: &str| parse(text).unwrap_err().to_string();
        assert!(said("a: [1, 2").starts_with("malformed YAML: "));
        assert!(said(" {\"a\": 1,").starts_with("malformed JSON: "));
        assert!(matches!(
            parse(&"#".repeat(MAX_BYTES + 1)),
            Err(YamlError::TooLarge(_))
        ));
        assert!(matches!(
            parse("a: 1\n---\nb: 2\n"),
            Err(YamlError::Malformed(_))
        ));
    }
}
