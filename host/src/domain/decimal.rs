//! How decimals look in configs and their schemas: a number or a string on
//! input (strings keep every digit), always a string on output.

use rust_decimal::Decimal;
use schemars::{Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};

/// A decimal as it travels out in JSON: a string, trailing zeros dropped.
pub fn to_text(value: Decimal) -> String {
    value.normalize().to_string()
}

/// `value` rounded to `places` and written with exactly that many (`3000`
/// with 2 is `3000.00`): figures in a column read alike. (`{:.2}` alone
/// cuts digits off instead of rounding.)
pub fn to_fixed(value: Decimal, places: u32) -> String {
    format!("{:.*}", places as usize, value.round_dp(places))
}

/// JSON Schema of a decimal field: a number, or a string holding one.
pub fn decimal_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "A decimal: a number, or a string such as \"0.001\" to keep every digit.",
        "anyOf": [
            { "type": "number" },
            { "type": "string", "pattern": super::patterns::DECIMAL }
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

/// A decimal as [`decimal_schema`] describes it, for `deserialize_with`: a
/// JSON number, or a string of digits with an optional minus sign and
/// fraction. rust_decimal's own parser also reads "1e3", "+3", ".5", "3."
/// and "1_000", which the published schema refuses: a client that checks
/// its config against the schema and the server must agree.
pub fn plain<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    match PlainDecimal::deserialize(deserializer)? {
        PlainDecimal::Number(value) => Ok(value),
        PlainDecimal::Text(text) => parse_plain(&text).map_err(serde::de::Error::custom),
    }
}

/// [`plain`] for an optional field (`null` or absent is `None`).
pub fn plain_option<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    match Option::<PlainDecimal>::deserialize(deserializer)? {
        None => Ok(None),
        Some(PlainDecimal::Number(value)) => Ok(Some(value)),
        Some(PlainDecimal::Text(text)) => parse_plain(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// What a decimal field holds before it is read: its text, or a JSON
/// number (read by rust_decimal).
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "a decimal: a number, or a string such as \"0.001\""
)]
enum PlainDecimal {
    Text(String),
    Number(Decimal),
}

/// `text` as a decimal if it is plain digits: `-?[0-9]+(\.[0-9]+)?`.
pub fn parse_plain(text: &str) -> Result<Decimal, String> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || fraction.is_some_and(|part| !all_digits(part)) {
        return Err(format!(
            "`{text}` is not a plain decimal: write digits with an optional minus sign and fraction, such as \"0.001\""
        ));
    }
    text.parse::<Decimal>()
        .map_err(|error| format!("`{text}`: {error}"))
}

/// Powers of ten up to the largest decimal scale; exact in f64 up to 1e22.
const POW10: [f64; 29] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28,
];

/// A decimal as an f64, fast: what crosses to plugins on every candle and
/// what the metrics compute with.
///
/// When the mantissa fits in 53 bits and the scale is at most 22 (prices and
/// quantities in practice), both operands of the division are exact in f64
/// and IEEE division rounds correctly, so this is the correctly rounded
/// value. Otherwise (balances after fees carry many digits) the 96-bit
/// mantissa is assembled in f64 and divided by the scale's power of ten:
/// a relative error of a few parts in 1e16, without the 128-bit divisions
/// of a general conversion.
pub fn to_f64(value: Decimal) -> f64 {
    let parts = value.unpack();
    let low = (u64::from(parts.mid) << 32) | u64::from(parts.lo);
    let scale = POW10[(parts.scale as usize).min(POW10.len() - 1)];
    let magnitude = if parts.hi == 0 && low < (1 << 53) {
        low as f64 / scale
    } else {
        (f64::from(parts.hi) * 18_446_744_073_709_551_616.0 + low as f64) / scale
    };
    if parts.negative {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;
    use rust_decimal_macros::dec;

    /// The correctly rounded f64 of a decimal: Rust's float parsing rounds
    /// correctly.
    fn exact(value: Decimal) -> f64 {
        value.to_string().parse().unwrap()
    }

    #[test]
    fn fixed_places_round_and_pad() {
        assert_eq!(super::to_fixed(dec!(3000), 2), "3000.00");
        assert_eq!(super::to_fixed(dec!(9781.926), 2), "9781.93");
        assert_eq!(super::to_fixed(dec!(-0.00004), 4), "0.0000");
        assert_eq!(super::to_fixed(dec!(19.96697), 4), "19.9670");
    }

    #[test]
    fn prices_and_quantities_convert_correctly_rounded() {
        for value in [
            dec!(0),
            dec!(1),
            dec!(-2.5),
            dec!(42283.58),
            dec!(0.00001),
            dec!(93610.93),
            dec!(1e-20),
            dec!(100.10),
            dec!(-0.3),
        ] {
            assert_eq!(super::to_f64(value), exact(value), "{value}");
        }
    }

    #[test]
    fn only_plain_decimal_text_is_read() {
        for (text, value) in [
            ("0", dec!(0)),
            ("-2.5", dec!(-2.5)),
            ("0.001", dec!(0.001)),
            ("42283.58", dec!(42283.58)),
        ] {
            assert_eq!(super::parse_plain(text), Ok(value), "{text}");
        }
        // What rust_decimal reads but the schema's pattern refuses.
        for text in [
            "1e3", "+3", ".5", "3.", "1_000", " 3", "", "-", "0x10", "1.2.3",
        ] {
            let error = super::parse_plain(text).unwrap_err();
            assert!(error.contains("not a plain decimal"), "{text}: {error}");
        }
    }

    #[test]
    fn fields_take_numbers_and_plain_strings_alike() {
        #[derive(serde::Deserialize)]
        struct Fields {
            #[serde(deserialize_with = "super::plain")]
            value: Decimal,
            #[serde(default, deserialize_with = "super::plain_option")]
            limit: Option<Decimal>,
        }
        let read = |json: &str| serde_json::from_str::<Fields>(json).map(|f| (f.value, f.limit));
        assert_eq!(read(r#"{"value": 2.5}"#).unwrap(), (dec!(2.5), None));
        assert_eq!(
            read(r#"{"value": "0.1", "limit": "7"}"#).unwrap(),
            (dec!(0.1), Some(dec!(7)))
        );
        assert_eq!(
            read(r#"{"value": 1, "limit": null}"#).unwrap(),
            (dec!(1), None)
        );
        let refused = read(r#"{"value": "1e3"}"#).err().unwrap().to_string();
        assert!(
            refused.contains("`1e3` is not a plain decimal"),
            "{refused}"
        );
        assert!(read(r#"{"value": 1, "limit": ".5"}"#).is_err());
        assert!(read(r#"{"value": true}"#).is_err());
    }

    #[test]
    fn long_mantissas_convert_within_a_few_parts_in_1e16() {
        let mut values = vec![
            Decimal::MAX,
            Decimal::MIN,
            dec!(10012.345678901234567890123),
            dec!(-9999.9999999999999999999999),
            dec!(0.0000000000000000000000000001),
        ];
        // Balances after fees: many digits at every scale.
        let mut mantissa: i128 = 7_922_816_251_426_433_759_354_395_033;
        for scale in 0..=28 {
            values.push(Decimal::from_i128_with_scale(mantissa, scale));
            mantissa = mantissa / 3 + 1;
        }
        for value in values {
            let (fast, exact) = (super::to_f64(value), exact(value));
            let relative = ((fast - exact) / exact).abs();
            assert!(relative < 5e-16, "{value}: {fast} vs {exact}");
        }
        assert_eq!(super::to_f64(Decimal::ZERO), 0.0);
    }
}
