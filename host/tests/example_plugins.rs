//! The example plugins through the real runtime: descriptions, parameter
//! checks with JSON Pointers, and decisions on small hand-worked series.

mod support;

use serde_json::json;
use stratbox_host::plugin::contract::{Action, OrderKind, Side};
use stratbox_host::plugin::{InitError, PluginLimits};
use support::{Harness, closes, hlc, load};

fn pointers(err: InitError) -> Vec<String> {
    match err {
        InitError::Params(issues) => issues.into_iter().map(|i| i.pointer).collect(),
        other => panic!("expected parameter errors, got {other}"),
    }
}

fn start(name: &str, params: serde_json::Value) -> Harness {
    let plugin = load(name);
    let (instance, _) = plugin
        .start(
            &params,
            &support::btc_1m(),
            PluginLimits::default(),
            "test-bot",
        )
        .expect("params accepted");
    Harness::new(instance, 1000.0)
}

/// (side, kind, quantity, price, reduce_only, tag) of a placement.
fn placed(action: &Action) -> (Side, OrderKind, f64, Option<f64>, bool, String) {
    match action {
        Action::Place(i) => (
            i.side,
            i.kind,
            i.quantity,
            i.price,
            i.reduce_only,
            i.client_tag.clone(),
        ),
        Action::Cancel(tag) => panic!("expected a placement, got cancel {tag}"),
    }
}

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn every_example_describes_itself_with_a_schema() {
    for (name, field) in [
        ("ema-cross", "fast"),
        ("rsi-reversion", "oversold"),
        ("breakout", "atr_multiplier"),
        ("rules", "entry"),
    ] {
        let plugin = load(name);
        let info = plugin.info();
        assert_eq!(info.name, name);
        assert_eq!(info.version.to_string(), "1.0.0");
        assert!(!info.description.is_empty());
        assert!(info.warmup > 0, "{name} reports a warm-up");
        assert!(
            info.params_schema["properties"][field].is_object(),
            "{name} schema lacks {field}: {}",
            info.params_schema
        );
    }
    let ema = load("ema-cross");
    assert_eq!(ema.info().warmup, 26);
    let fast = &ema.info().params_schema["properties"]["fast"];
    assert_eq!(fast["minimum"], json!(1));
    assert!(fast["description"].as_str().unwrap().contains("fast EMA"));
}

#[test]
fn out_of_range_and_cross_field_errors_name_the_field() {
    let cases = [
        ("ema-cross", json!({ "fast": 0 }), "/fast"),
        ("ema-cross", json!({ "fast": 30, "slow": 20 }), "/slow"),
        (
            "ema-cross",
            json!({ "size": { "percent_of_equity": 150 } }),
            "/size/percent_of_equity",
        ),
        ("ema-cross", json!({ "fsat": 3 }), "/fsat"),
        ("rsi-reversion", json!({ "oversold": -1 }), "/oversold"),
        (
            "rsi-reversion",
            json!({ "oversold": 60, "overbought": 40 }),
            "/overbought",
        ),
        (
            "breakout",
            json!({ "atr_multiplier": 0 }),
            "/atr_multiplier",
        ),
        (
            "breakout",
            json!({ "channel": 10, "exit_channel": 20 }),
            "/exit_channel",
        ),
    ];
    for (name, params, pointer) in cases {
        let err = load(name)
            .start(&params, &support::btc_1m(), PluginLimits::default(), "b")
            .err()
            .unwrap_or_else(|| panic!("{name} accepted {params}"));
        assert_eq!(pointers(err), [pointer], "{name} {params}");
    }
}

#[test]
fn bad_rules_are_refused_at_the_exact_path() {
    let rules = load("rules");
    let cross = |left: serde_json::Value| {
        json!({ "entry": { "all": [
        { "above": { "left": { "price": "close" }, "right": 1 } },
        { "crosses_above": { "left": left, "right": { "ema": 26 } } }
    ] } })
    };
    let cases = [
        (
            cross(json!({ "ema": 0 })),
            "/entry/all/1/crosses_above/left/ema",
        ),
        (
            cross(json!({ "macd": 12 })),
            "/entry/all/1/crosses_above/left",
        ),
        (
            json!({ "entry": { "above": { "left": { "price": "close" } } } }),
            "/entry/above/right",
        ),
        (
            json!({ "entry": { "above": { "left": { "price": "mid" }, "right": 1 } } }),
            "/entry/above/left/price",
        ),
        (json!({ "entry": { "all": [] } }), "/entry/all"),
        (
            json!({ "entry": { "above": { "left": 1, "right": 2 } } }),
            "/entry/above",
        ),
        (
            json!({ "exit": { "below": { "left": { "rsi": 14 }, "right": 30 } } }),
            "/entry",
        ),
        (
            json!({ "entry": { "above": { "left": { "rsi": 14 }, "right": 30 } }, "stop_loss_pct": 120 }),
            "/stop_loss_pct",
        ),
    ];
    for (params, pointer) in cases {
        let err = rules
            .start(&params, &support::btc_1m(), PluginLimits::default(), "b")
            .err()
            .unwrap_or_else(|| panic!("accepted {params}"));
        let found = pointers(err);
        assert!(
            found.iter().any(|p| p == pointer),
            "{params}: expected {pointer}, got {found:?}"
        );
    }
}

#[test]
fn ema_cross_decisions_match_the_hand_worked_series() {
    // fast EMA(2) (alpha 2/3) and slow EMA(3) (alpha 1/2), both seeded from
    // the first close; worked out in the comments.
    let mut bot = start(
        "ema-cross",
        json!({ "fast": 2, "slow": 3, "size": { "quantity": 0.5 } }),
    );
    let candles = closes(&[10.0, 10.0, 10.0, 13.0, 7.0, 7.0, 10.0]);
    let decisions: Vec<_> = candles.iter().map(|c| bot.step(c)).collect();
    // 1-3: warming up; at 3 both are 10, diff 0 becomes the first "previous".
    assert!(decisions[..3].iter().all(Vec::is_empty));
    // 4: fast 12, slow 11.5: diff +0.5 after 0 -> buy 0.5.
    assert_eq!(decisions[3].len(), 1);
    assert_eq!(
        placed(&decisions[3][0]),
        (
            Side::Buy,
            OrderKind::Market,
            0.5,
            None,
            false,
            "entry".into()
        )
    );
    // 5: fast 8.667, slow 9.25: diff < 0 after > 0, long -> sell the position.
    assert_eq!(
        placed(&decisions[4][0]),
        (
            Side::Sell,
            OrderKind::Market,
            0.5,
            None,
            true,
            "exit".into()
        )
    );
    // 6: fast 7.556, slow 8.125: still below, nothing.
    assert!(decisions[5].is_empty());
    // 7: fast 9.185, slow 9.0625: crosses above again -> buy.
    assert_eq!(placed(&decisions[6][0]).0, Side::Buy);
}

#[test]
fn ema_cross_sizes_by_percent_of_equity() {
    let mut bot = start(
        "ema-cross",
        json!({ "fast": 2, "slow": 3, "size": { "percent_of_equity": 50 } }),
    );
    let candles = closes(&[10.0, 10.0, 10.0, 13.0]);
    let last = candles.iter().map(|c| bot.step(c)).last().unwrap();
    // 50% of 1000 at 13.
    assert!(approx(placed(&last[0]).2, 500.0 / 13.0));
}

#[test]
fn rsi_reversion_decisions_match_the_hand_worked_series() {
    // RSI(2), Wilder: values 66.7, 88.9, 47.1, 24.2, 69.1, 77.9 from the third close on.
    let mut bot = start(
        "rsi-reversion",
        json!({ "period": 2, "oversold": 30, "overbought": 70, "size_pct": 50 }),
    );
    let candles = closes(&[10.0, 12.0, 11.0, 14.0, 12.0, 10.0, 13.0, 14.0]);
    let decisions: Vec<_> = candles.iter().map(|c| bot.step(c)).collect();
    let acted: Vec<usize> = decisions
        .iter()
        .enumerate()
        .filter(|(_, d)| !d.is_empty())
        .map(|(i, _)| i)
        .collect();
    // 88.9 while flat is no signal; 24.2 buys; 69.1 holds; 77.9 sells.
    assert_eq!(acted, [5, 7]);
    let buy = placed(&decisions[5][0]);
    assert_eq!((buy.0, buy.1), (Side::Buy, OrderKind::Market));
    assert!(approx(buy.2, 500.0 / 10.0));
    let sell = placed(&decisions[7][0]);
    assert_eq!((sell.0, sell.4), (Side::Sell, true));
    assert!(approx(sell.2, 50.0));
}

#[test]
fn breakout_decisions_match_the_hand_worked_series() {
    let mut bot = start(
        "breakout",
        json!({ "channel": 3, "exit_channel": 2, "atr_period": 2, "atr_multiplier": 2, "size_pct": 50 }),
    );
    let candles = [
        hlc(0, 11.0, 9.0, 10.0),
        hlc(1, 11.0, 9.0, 10.0),
        hlc(2, 11.0, 9.0, 10.0),
        // close 12.5 > channel high 11 -> buy (ATR (2+3)/2 = 2.5)
        hlc(3, 13.0, 10.0, 12.5),
        // long, no stop yet: ATR (2.5+1)/2 = 1.75 -> stop at 12.5 - 2*1.75 = 9
        hlc(4, 13.0, 12.0, 12.8),
        // exit channel low min(10, 12) = 10 < close 12: hold
        hlc(5, 12.9, 11.5, 12.0),
        // close 9.8 < exit channel low min(12, 11.5) -> cancel stop, sell
        hlc(6, 12.0, 9.5, 9.8),
    ];
    let decisions: Vec<_> = candles.iter().map(|c| bot.step(c)).collect();
    assert!(decisions[..3].iter().all(Vec::is_empty));
    let buy = placed(&decisions[3][0]);
    assert_eq!((buy.0, buy.1), (Side::Buy, OrderKind::Market));
    assert!(approx(buy.2, 500.0 / 12.5));
    let stop = placed(&decisions[4][0]);
    assert_eq!(
        (stop.0, stop.1, stop.4, stop.5.as_str()),
        (Side::Sell, OrderKind::Stop, true, "atr-stop")
    );
    assert!(approx(stop.3.unwrap(), 9.0), "stop at {:?}", stop.3);
    assert!(decisions[5].is_empty());
    assert_eq!(decisions[6][0], Action::Cancel("atr-stop".into()));
    assert_eq!(placed(&decisions[6][1]).0, Side::Sell);
}

#[test]
fn rules_decisions_match_the_hand_worked_series() {
    let params = json!({
        "entry": { "crosses_above": { "left": { "price": "close" }, "right": { "sma": 3 } } },
        "exit": { "below": { "left": { "price": "close" }, "right": { "sma": 3 } } },
        "size_pct": 50,
        "stop_loss_pct": 10,
        "take_profit_pct": 20
    });
    let mut bot = start("rules", params);
    // SMA(3): -, -, 10, 11, 11.667, 11.333
    let candles = closes(&[10.0, 10.0, 10.0, 13.0, 12.0, 9.0]);
    let decisions: Vec<_> = candles.iter().map(|c| bot.step(c)).collect();
    assert!(decisions[..3].iter().all(Vec::is_empty));
    // 13 crosses above 11 (was 10 <= 10) -> buy 50% of 1000 at 13.
    let buy = placed(&decisions[3][0]);
    assert_eq!(buy.0, Side::Buy);
    assert!(approx(buy.2, 500.0 / 13.0));
    // Long, 12 > 11.667: rest stop-loss at 11.7 and take-profit at 15.6.
    let stop = placed(&decisions[4][0]);
    let take = placed(&decisions[4][1]);
    assert_eq!((stop.1, stop.5.as_str()), (OrderKind::Stop, "stop-loss"));
    assert!(approx(stop.3.unwrap(), 11.7));
    assert_eq!((take.1, take.5.as_str()), (OrderKind::Limit, "take-profit"));
    assert!(approx(take.3.unwrap(), 15.6));
    // 9 < 11.333: cancel both, sell at market.
    assert_eq!(decisions[5][0], Action::Cancel("stop-loss".into()));
    assert_eq!(decisions[5][1], Action::Cancel("take-profit".into()));
    assert_eq!(placed(&decisions[5][2]).0, Side::Sell);
}

#[test]
fn rules_warmup_covers_the_longest_series() {
    let params = json!({ "entry": { "above": { "left": { "rsi": 14 }, "right": { "sma": 50 } } } });
    let (_, warmup) = load("rules")
        .start(&params, &support::btc_1m(), PluginLimits::default(), "b")
        .unwrap();
    // SMA(50) needs 50 candles, plus one for crosses.
    assert_eq!(warmup, 51);
}

#[test]
fn the_shipped_bot_configs_have_valid_strategy_params() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/bots");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let config: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        let plugin = config["strategy"]["plugin"].as_str().unwrap().to_string();
        let params = config["strategy"]["params"].clone();
        load(&plugin)
            .start(
                &params,
                &support::btc_1m(),
                PluginLimits::default(),
                "config",
            )
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        seen.push(plugin);
    }
    seen.sort();
    assert_eq!(seen, ["breakout", "ema-cross", "rsi-reversion", "rules"]);
}

/// The SDK's heap starts in the memory a plugin is instantiated with (2 MiB,
/// as the workspace links plugins), so trading never grows it: a hot swap
/// then reuses the freed instance slot without changing page protections.
/// Fails if the link flag or the SDK's allocator goes missing.
#[test]
fn an_example_plugin_trades_within_the_memory_it_starts_with() {
    const INITIAL: usize = 2 * 1024 * 1024;
    let mut bot = start(
        "ema-cross",
        json!({ "fast": 2, "slow": 3, "size": { "quantity": 0.5 } }),
    );
    assert_eq!(bot.instance.memory_bytes(), INITIAL);
    let zigzag: Vec<f64> = (0..5_000)
        .map(|i| 100.0 + ((i / 4) % 2) as f64 * 5.0)
        .collect();
    let placed: usize = closes(&zigzag).iter().map(|c| bot.step(c).len()).sum();
    assert!(placed > 1_000, "it traded: {placed} orders");
    assert_eq!(bot.instance.memory_bytes(), INITIAL, "the memory grew");
}
