//! The patterns of the config's text fields (in its JSON Schema), each with
//! what it asks for in words: a refusal says the words, not the expression.

pub const BOT_ID: &str = r"^[a-z0-9][a-z0-9-]{0,63}$";
/// The longest bot id [`BOT_ID`] takes.
pub const MAX_BOT_ID_CHARS: usize = 64;
pub const PLUGIN_NAME: &str = r"^[a-z0-9-]{1,64}$";
pub const SYMBOL: &str = r"^[A-Z0-9]{2,20}$";
pub const TIMEFRAME: &str = r"^(1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w)$";
pub const HTTP_URL: &str = r"^https?://[^\s/?#]+(/[^\s?#]*)?$";
pub const WS_URL: &str = r"^wss?://[^\s/?#]+(/[^\s?#]*)?$";
pub const ASSET: &str = r"^[A-Z0-9]{2,10}$";
pub const DECIMAL: &str = r"^-?[0-9]+(\.[0-9]+)?$";
pub const ONE_LINE: &str = r"^[^\x00-\x1f\x7f]*$";

const WORDS: &[(&str, &str)] = &[
    (
        BOT_ID,
        "1 to 64 lowercase letters, digits and '-', starting with a letter or digit",
    ),
    (PLUGIN_NAME, "1 to 64 lowercase letters, digits and '-'"),
    (
        SYMBOL,
        "2 to 20 capital letters and digits, such as BTCUSDT",
    ),
    (
        TIMEFRAME,
        "one of 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d, 3d, 1w",
    ),
    (HTTP_URL, "an http:// or https:// address"),
    (WS_URL, "a ws:// or wss:// address"),
    (ASSET, "2 to 10 capital letters and digits, such as USDT"),
    (
        DECIMAL,
        "a decimal in plain digits, such as \"0.001\" or \"-2.5\"",
    ),
    (ONE_LINE, "one line of text, without control characters"),
];

/// What `pattern` asks for, in words, if it is one of ours.
pub fn in_words(pattern: &str) -> Option<&'static str> {
    WORDS
        .iter()
        .find(|(known, _)| *known == pattern)
        .map(|(_, words)| *words)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_pattern_compiles_and_has_its_words() {
        for (pattern, _) in super::WORDS {
            assert!(regex_lite_compiles(pattern), "{pattern}");
            assert!(super::in_words(pattern).is_some());
        }
        assert_eq!(super::in_words("^x$"), None);
    }

    fn regex_lite_compiles(pattern: &str) -> bool {
        jsonschema::validator_for(&serde_json::json!({ "pattern": pattern })).is_ok()
    }
}
