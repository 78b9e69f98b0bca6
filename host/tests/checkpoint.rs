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
