//! Property-based fuzzing of the parsers every stranger reaches: YAML (with
//! its node budget), bot configs (YAML and JSON documents of any shape),
//! and candle CSV. None may panic, hang or answer without a reason; config
//! errors point into the document; CSV errors name their line.

use proptest::prelude::*;
use serde_json::{Value, json};
use stratbox_host::data::read_candles_from;
use stratbox_host::domain::config::BotConfig;
use stratbox_host::domain::yaml;

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9 _./-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid bot config as JSON.
fn valid_config() -> Value {
    json!({
        "id": "fuzz",
        "name": "Fuzz",
        "strategy": { "plugin": "ema-cross", "params": { "fast": 3, "slow": 8 } },
        "market": { "symbol": "BTCUSDT", "timeframe": "1m", "feed": { "kind": "synthetic", "seed": 1 } },
        "capital": { "quote": "USDT", "initial": "10000" },
        "risk": { "max_drawdown": { "limit_pct": 10, "action": "halt" } }
    })
}

/// Every place of a JSON value, as JSON Pointers.
fn places(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                places(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                places(child, format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn yaml_text_of_any_kind_parses_or_is_refused(text in "\\PC{0,300}") {
        let _ = yaml::parse(&text);
    }

    #[test]
    fn yaml_with_anchors_and_aliases_stays_within_its_budget(
        items in 1usize..200,
        copies in 1usize..200,
        depth in 1usize..6,
    ) {
        let mut text = format!("a0: &a0 [{}]\n", vec!["x"; items].join(","));
        for level in 1..depth {
            let previous = format!("*a{}", level - 1);
            text.push_str(&format!("a{level}: &a{level} [{}]\n", vec![previous.as_str(); copies].join(",")));
        }
        let started = std::time::Instant::now();
        match yaml::parse(&text) {
            Ok(value) => prop_assert!(value.to_string().len() < 64 * 1024 * 1024),
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
        prop_assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn any_document_is_a_config_or_errors_with_pointers(document in any_json()) {
        if let Err(issues) = BotConfig::from_value(document) {
            prop_assert!(!issues.is_empty());
            for issue in issues {
                prop_assert!(issue.pointer.is_empty() || issue.pointer.starts_with('/'));
                prop_assert!(!issue.message.is_empty());
            }
        }
    }

    #[test]
    fn a_config_with_one_value_replaced_is_refused_at_a_place_of_it(
        pick in any::<prop::sample::Index>(),
        replacement in any_json(),
    ) {
        let mut config = valid_config();
        let mut all = Vec::new();
        places(&config, String::new(), &mut all);
        let target = pick.get(&all[1..]).clone();
        *config.pointer_mut(&target).unwrap() = replacement;
        let text = serde_yaml::to_string(&config).unwrap();
        if let Err(issues) = BotConfig::from_yaml(&text) {
            for issue in &issues {
                // The pointer names a place of the document, or a field it lacks.
                let parent = issue.pointer.rsplit_once('/').map_or("", |(p, _)| p);
                prop_assert!(
                    config.pointer(&issue.pointer).is_some() || config.pointer(parent).is_some()
                        || issue.pointer.is_empty(),
                    "{} for {target}", issue.pointer
                );
            }
        }
    }

    #[test]
    fn candle_csv_of_any_kind_is_read_or_refused_with_its_line(
        lines in prop::collection::vec("[0-9a-z,.+-]{0,60}", 0..20),
        header in any::<bool>(),
    ) {
        let mut text = String::new();
        if header {
            text.push_str("ts,open,high,low,close,volume\n");
        }
        text.push_str(&lines.join("\n"));
        match read_candles_from(text.as_bytes()) {
            Ok(candles) => prop_assert!(candles.windows(2).all(|w| w[0].ts < w[1].ts)),
            Err(error) => {
                let message = error.to_string();
                prop_assert!(message.starts_with("line ") || message.contains("no candles"), "{message}");
            }
        }
    }
}
