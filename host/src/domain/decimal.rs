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

/// Powers of ten that f64 holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A decimal as the nearest f64, fast.
///
/// When the mantissa fits in 53 bits and the scale is at most 22 (every
/// price and quantity in practice), both operands of the division are exact
/// in f64 and IEEE division rounds correctly, so this is the correctly
/// rounded value, without the 128-bit divisions of the general conversion,
/// which it falls back to otherwise. Used for what crosses to plugins on
/// every candle.
pub fn to_f64(value: rust_decimal::Decimal) -> f64 {
    let scale = value.scale() as usize;
    let mantissa = value.mantissa();
    if scale < POW10.len() && mantissa.unsigned_abs() < (1u128 << 53) {
        mantissa as f64 / POW10[scale]
    } else {
        rust_decimal::prelude::ToPrimitive::to_f64(&value).unwrap_or(f64::NAN)
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;
    use rust_decimal::prelude::ToPrimitive;
    use rust_decimal_macros::dec;

    #[test]
    fn fast_conversion_matches_the_general_one() {
        for value in [
            dec!(0),
            dec!(1),
            dec!(-2.5),
            dec!(42283.58),
            dec!(0.00001),
            dec!(93610.93),
            dec!(1e-20),
        ] {
            assert_eq!(super::to_f64(value), value.to_f64().unwrap(), "{value}");
        }
        let huge = Decimal::MAX;
        assert_eq!(super::to_f64(huge), huge.to_f64().unwrap());
        assert_eq!(super::to_f64(dec!(100.10)), 100.1);
    }
}
