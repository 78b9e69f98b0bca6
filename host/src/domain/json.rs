//! JSON text read as a document, refusing an object that names a key twice.
//! serde_json keeps the last of them, so `{"name": "a", "name": "b"}` would
//! pass for `b` unnoticed; YAML documents are refused for it already, and a
//! config that says two things is ambiguous, not a choice.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// `bytes` as one JSON document; an error (with its line and column) for
/// malformed text, trailing characters or a key given twice in an object.
pub fn parse_json(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = UniqueKeys.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Where [`parse_json`] found `bytes` wrong, as a JSON Pointer: the value
/// it was reading (a key given twice, a number out of range, a misspelt
/// literal), or `""` for the document as a whole. The text is read again
/// with its path tracked, which only a refused document pays for.
pub fn pointer_of_json_refusal(bytes: &[u8]) -> String {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(&mut deserializer, &mut track);
    match UniqueKeys.deserialize(tracked) {
        Ok(_) => String::new(),
        Err(_) => super::config::pointer_of(&track.path()),
    }
}

/// Builds a `Value` as serde_json's own visitor does, checking keys.
struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
        let mut array = Vec::new();
        while let Some(item) = items.next_element_seed(UniqueKeys)? {
            array.push(item);
        }
        Ok(Value::Array(array))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = entries.next_key::<String>()? {
            let value = if object.contains_key(&key) {
                // Refused as the repeated key's value, so that the
                // refusal's pointer names the key.
                entries.next_value_seed(Repeated(&key))?
            } else {
                entries.next_value_seed(UniqueKeys)?
            };
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// The value of a key given a second time: refused.
struct Repeated<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for Repeated<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, _: D) -> Result<Value, D::Error> {
        Err(de::Error::custom(format_args!(
            "duplicate key `{}`",
            self.0
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_read_as_serde_json_reads_them() {
        let text = r#"{"a": [1, -2, 3.5, 18446744073709551615, 1e400, null, true],
            "b": {"c": "\u00e9\n", "d": {}}, "e": []}"#;
        let expected: Value = serde_json::from_str(&text.replace("1e400", "null")).unwrap();
        assert_eq!(
            parse_json(text.replace("1e400", "null").as_bytes()).unwrap(),
            expected
        );
        assert!(
            parse_json(b"1e400").is_err(),
            "out of range, as serde_json says"
        );
    }

    #[test]
    fn a_refusal_points_at_the_value_that_was_wrong() {
        for (text, pointer) in [
            (r#"{"a": [1, 2, 1e400]}"#, "/a/2"),
            (r#"{"risk": {"max": 1, "max": 2}}"#, "/risk/max"),
            (r#"{"name": "a", "name": "b"}"#, "/name"),
            (r#"{"a": {"b~/c": [tru]}}"#, "/a/b~0~1c/0"),
            (r#"{"a": 1} x"#, ""),
        ] {
            assert!(parse_json(text.as_bytes()).is_err(), "{text}");
            assert_eq!(pointer_of_json_refusal(text.as_bytes()), pointer, "{text}");
        }
    }

    #[test]
    fn a_key_given_twice_is_refused_wherever_it_is() {
        for text in [
            r#"{"name": "a", "name": "b"}"#,
            r#"{"risk": {"max": 1, "x": 2, "max": 3}}"#,
            r#"[{"ok": 1}, {"k": 1, "k": 1}]"#,
        ] {
            let refused = parse_json(text.as_bytes()).unwrap_err().to_string();
            assert!(refused.contains("duplicate key"), "{text}: {refused}");
        }
        assert!(parse_json(br#"{"a": {"k": 1}, "b": {"k": 2}}"#).is_ok());
    }

    #[test]
    fn trailing_text_and_deep_nesting_are_refused() {
        assert!(parse_json(br#"{"a": 1} x"#).is_err());
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let refused = parse_json(deep.as_bytes()).unwrap_err().to_string();
        assert!(refused.contains("recursion limit"), "{refused}");
    }
}
