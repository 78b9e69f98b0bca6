//! serde's messages about a document of the wrong shape, said as the schema
//! check says them ("1.5 is not an integer from 0 to 4294967295" rather
//! than "invalid type: floating point `1.5`, expected u32"), so that a client reads one voice
//! whichever check caught its mistake.

/// `message` (serde's, about a JSON document) in plain words; a message of
/// another form is kept as it is.
pub fn plain(message: &str) -> String {
    let wrong = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "));
    if let Some((found, expected)) = wrong.and_then(|rest| rest.rsplit_once(", expected ")) {
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

/// What serde expected, in words: Rust's integer types become the range
/// they hold (serde says a value too large for its type in the same words
/// as a value of the wrong type), a struct or map an object, a sequence a
/// list.
fn expected_kind(expected: &str) -> String {
    let range = |min: i128, max: u128| format!("an integer from {min} to {max}");
    match expected {
        "u8" => range(0, u8::MAX.into()),
        "u16" => range(0, u16::MAX.into()),
        "u32" => range(0, u32::MAX.into()),
        // Their bounds are too long to read in digits.
        "u64" | "usize" => "an integer from 0 to 2^64 - 1".into(),
        "i8" => range(i8::MIN.into(), i8::MAX as u128),
        "i16" => range(i16::MIN.into(), i16::MAX as u128),
        "i32" => range(i32::MIN.into(), i32::MAX as u128),
        "i64" | "isize" => "an integer from -2^63 to 2^63 - 1".into(),
        "u128" | "i128" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "a sequence" => "a list".into(),
        "a map" => "an object".into(),
        // serde_json's words for any enum; those of our documents are
        // named by strings (a tagged one is a struct, said above).
        "a borrowed string" | "string or map" => "a string".into(),
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
            "1.5 is not an integer from 0 to 4294967295"
        );
        assert_eq!(
            plain("invalid type: integer `5`, expected a string"),
            "5 is not a string"
        );
        assert_eq!(
            plain("invalid type: string \"x\", expected i64"),
            "\"x\" is not an integer from -2^63 to 2^63 - 1"
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
            plain("invalid type: null, expected string or map"),
            "null is not a string"
        );
        assert_eq!(
            plain("invalid value: integer `-1`, expected u64"),
            "-1 is not an integer from 0 to 2^64 - 1"
        );
        // Too large for its type: said as truly as too small.
        assert_eq!(
            plain("invalid value: integer `5000000000`, expected u32"),
            "5000000000 is not an integer from 0 to 4294967295"
        );
        // A string holding the separator is not cut inside.
        assert_eq!(
            plain("invalid type: string \"a, expected b\", expected u8"),
            "\"a, expected b\" is not an integer from 0 to 255"
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
