//! A bot's checkpoint (written with every commit) holds only current
//! readings: its size does not grow with the bot's history, however long
//! it runs and however many risk events it has had.

mod support;

use stratbox_host::data::{SynthParams, synthesize};
use stratbox_host::domain::config::BotConfig;
use stratbox_host::engine::{BotEngine, EngineEvent};

#[test]
fn a_checkpoint_stays_the_same_size_over_months_of_candles() {
    // A daily-loss rule that breaches again and again (it clears every UTC
    // day), and a strategy that trades all the time.
    let config = BotConfig::from_yaml(
        "id: months\nname: months\nstrategy: { plugin: ema-cross, params: { fast: 3, slow: 8, size: { percent_of_equity: 50 } } }\nmarket: { symbol: BTCUSDT, timeframe: 1m, feed: { kind: stepped } }\ncapital: { quote: USDT, initial: 10000 }\nrisk: { daily_loss: { limit_pct: 0.2, action: reduce } }\n",
    )
    .unwrap();
    let plugin = support::load("ema-cross");
    let (instance, _) = plugin.start_bot(&config).unwrap();
    let mut engine = BotEngine::new(&config, instance).unwrap();
    // 90 days of 1m candles.
    let candles = synthesize(&SynthParams::new(90 * 1_440, 17));
    let (mut violations, mut fills) = (0, 0);
    let mut size_after_a_week = 0;
    for (index, candle) in candles.iter().enumerate() {
        engine.on_candle(candle).unwrap();
        for event in engine.drain_events() {
            match event {
                EngineEvent::RiskViolation { .. } => violations += 1,
                EngineEvent::OrderFilled { .. } => fills += 1,
                _ => {}
            }
        }
        if index == 7 * 1_440 {
            size_after_a_week = serde_json::to_vec(&engine.checkpoint()).unwrap().len();
        }
    }
    let size_at_the_end = serde_json::to_vec(&engine.checkpoint()).unwrap().len();
    assert!(violations > 30, "the rule breached often: {violations}");
    assert!(fills > 200, "the bot traded: {fills}");
    assert!(
        size_at_the_end <= size_after_a_week + 256,
        "{size_after_a_week} bytes after a week, {size_at_the_end} after three months"
    );
}

#[test]
fn a_checkpoint_holds_no_terms_and_a_restored_engine_keeps_its_configs() {
    let yaml = |extra: &str| {
        BotConfig::from_yaml(&format!(
            "id: terms\nname: terms\nstrategy: {{ plugin: ema-cross, params: {{ fast: 3, slow: 8, size: {{ percent_of_equity: 50 }} }} }}\nmarket: {{ symbol: BTCUSDT, timeframe: 1m, feed: {{ kind: stepped }} }}\ncapital: {{ quote: USDT, initial: 10000 }}\n{extra}"
        ))
        .unwrap()
    };
    let before = yaml("fees: { maker_bps: 10, taker_bps: 10 }\nrisk: { max_open_orders: 20 }\n");
    let after = yaml(
        "fees: { maker_bps: 25, taker_bps: 30 }\nrisk: { max_open_orders: 3 }\nexecution: { slippage_bps: 5, fill_timing: next_open }\ninstrument: { tick_size: \"0.1\", step_size: \"0.001\", min_notional: \"10\" }\n",
    );
    let plugin = support::load("ema-cross");
    let (instance, _) = plugin.start_bot(&before).unwrap();
    let mut engine = BotEngine::new(&before, instance).unwrap();
    for candle in &synthesize(&SynthParams::new(500, 3)) {
        engine.on_candle(candle).unwrap();
    }
    let stored = serde_json::to_value(engine.checkpoint()).unwrap();
    for term in ["rules", "fees", "execution", "config"] {
        assert!(
            stored["venue"].get(term).is_none() && stored["risk"].get(term).is_none(),
            "`{term}` is the config's, not a reading: {stored}"
        );
    }

    // Restored under the next config version: its terms, the stored books.
    let (instance, _) = plugin.start_bot(&after).unwrap();
    let mut restored = BotEngine::new(&after, instance).unwrap();
    restored.restore(serde_json::from_value(stored.clone()).unwrap());
    assert_eq!(restored.risk().config(), &after.risk);
    assert_eq!(restored.venue().fees(), &after.fees);
    assert_eq!(restored.venue().execution(), &after.execution);
    assert_eq!(restored.venue().rules(), &after.instrument);
    assert_ne!(after.instrument, before.instrument, "the versions differ");
    assert_eq!(serde_json::to_value(restored.checkpoint()).unwrap(), stored);
}
