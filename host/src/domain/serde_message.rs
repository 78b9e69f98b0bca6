//! serde's messages about a document of the wrong shape, said as the schema
//! check says them ("1.5 is not an integer" rather than "invalid type:
//! floating point `1.5`, expected u32"), so that a client reads one voice
//! whichever check caught its mistake.

/// `message` (serde's, about a JSON document) in plain words; a message of
/// another form is kept as it is.
pub fn plain(message: &str) -> String {
    let wrong = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "));
    if let Some((found, expected)) = wrong.and_then(|rest| rest.split_once(", expected ")) {
        return format!("{} is not {}", found_value(found), expected_kind(expected));
    }
    // "missing field `x`" and "unknown field `x`" are the schema check's
    // words too.
    message.to_string()
}

/// What serde found, as the value itself where it names one: "integer
/// `5`" is 5, "string \"x\"" is "x", "map" an object.
fn found_value(found: &str) -> String {
    for kind in ["integer ", "floating point ", "boolean ", "character "] {
        if let Some(value) = found.strip_prefix(kind) {
            return value.trim_matches('`').to_string();
        }
    }
    match found {
        "map" => "an object".into(),
        "sequence" => "a list".into(),
        "unit value" | "null" => "null".into(),
        other => super::schema_issues::shortened(other.strip_prefix("string ").unwrap_or(other)),
    }
}

/// What serde expected, in words: Rust's number types become the kind of
/// number they hold, a struct or map an object, a sequence a list.
fn expected_kind(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "an integer of at least 0".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "a sequence" => "a list".into(),
        "a map" => "an object".into(),
        "a borrowed string" => "a string".into(),
        other if other.starts_with("struct ") || other.starts_with("internally tagged enum") => {
            "an object".into()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn a_wrong_type_reads_as_the_schema_check_says_it() {
        assert_eq!(
            plain("invalid type: floating point `1.5`, expected u32"),
            "1.5 is not an integer of at least 0"
        );
        assert_eq!(
            plain("invalid type: integer `5`, expected a string"),
            "5 is not a string"
        );
        assert_eq!(
            plain("invalid type: string \"x\", expected i64"),
            "\"x\" is not an integer"
        );
        assert_eq!(
            plain("invalid type: map, expected a sequence"),
            "an object is not a list"
        );
        assert_eq!(
            plain("invalid type: sequence, expected struct BacktestRequest"),
            "a list is not an object"
        );
        assert_eq!(
            plain("invalid value: integer `-1`, expected u64"),
            "-1 is not an integer of at least 0"
        );
        assert_eq!(
            plain("invalid type: boolean `true`, expected f64"),
            "true is not a number"
        );
    }

    #[test]
    fn other_messages_stay() {
        assert_eq!(plain("missing field `data`"), "missing field `data`");
        let unknown = "unknown field `bogus`, expected one of `data`, `from`";
        assert_eq!(plain(unknown), unknown);
        let variant = "unknown variant `yolo`, expected `paper` or `live`";
        assert_eq!(plain(variant), variant);
    }
}
