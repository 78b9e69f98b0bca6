//! Conformance: stratbox reproduces an independent reference backtest.
//!
//! The reference below is plain floating-point code written from the
//! strategy's description, sharing nothing with the engine: EMA(12) and
//! EMA(26) of the close, both seeded from the first close; long only;
//! signals evaluated from the candle on which the slow EMA has seen 26
//! candles; with diff = fast - slow and prev = the previous evaluated diff,
//! buy a fixed 0.01 when diff > 0 and prev <= 0 and flat, sell it when
//! diff < 0 and prev >= 0 and long; fills at the signal candle's close; fee
//! 0.1% of notional; 10,000 USDT start; an open position at the end valued
//! at the last close. stratbox runs ema-cross with the matching conventions
//! (signal-close fills, first-value seeding, fixed quantity, no slippage, no
//! minimum notional) on 100,000 synthetic candles.

use std::path::Path;

use serde_json::Value;
use stratbox_tests::{plugin, stratbox};

const BOT: &str = "
id: conformance
name: Conformance with a float reference
strategy:
  plugin: ema-cross
  params: { fast: 12, slow: 26, size: { quantity: 0.01 }, ema_seed: first_value }
market: { symbol: BTCUSDT, timeframe: 1m }
capital: { quote: USDT, initial: 10000 }
fees: { maker_bps: 10, taker_bps: 10 }
execution: { slippage_bps: 0, fill_timing: signal_close }
instrument: { tick_size: 0.01, step_size: 0.00001, min_notional: 0 }
";

struct Reference {
    fills: usize,
    final_equity: f64,
}

/// The reference backtest over the closes of a candle CSV.
fn reference(csv: &str) -> Reference {
    let closes: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(4).unwrap().parse().unwrap())
        .collect();
    let (fast_alpha, slow_alpha) = (2.0 / 13.0, 2.0 / 27.0);
    let (mut fast, mut slow) = (closes[0], closes[0]);
    let (mut cash, mut long, mut fills) = (10_000.0f64, false, 0usize);
    let mut prev: Option<f64> = None;
    for (i, &close) in closes.iter().enumerate() {
        if i > 0 {
            fast += fast_alpha * (close - fast);
            slow += slow_alpha * (close - slow);
        }
        if i + 1 < 26 {
            continue;
        }
        let diff = fast - slow;
        if let Some(p) = prev {
            if !long && diff > 0.0 && p <= 0.0 {
                cash -= 0.01 * close * 1.001;
                long = true;
                fills += 1;
            } else if long && diff < 0.0 && p >= 0.0 {
                cash += 0.01 * close * 0.999;
                long = false;
                fills += 1;
            }
        }
        prev = Some(diff);
    }
    let last = *closes.last().unwrap();
    Reference {
        fills,
        final_equity: cash + if long { 0.01 * last } else { 0.0 },
    }
}

#[test]
fn ema_cross_matches_the_float_reference() {
    let dir = tempfile::tempdir().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let candles = dir.path().join("candles.csv");
    let run = stratbox(
        &[
            "data",
            "synth",
            "--count",
            "100000",
            "--seed",
            "42",
            "--out",
            &s(&candles),
        ],
        dir.path(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let bot = dir.path().join("bot.yaml");
    std::fs::write(&bot, BOT).unwrap();
    let out = dir.path().join("result.json");
    let run = stratbox(
        &[
            "backtest",
            "--bot",
            &s(&bot),
            "--candles",
            &s(&candles),
            "--plugin",
            &s(&plugin("ema-cross")),
            "--json",
            &s(&out),
        ],
        dir.path(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let result: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();

    let expected = reference(&std::fs::read_to_string(&candles).unwrap());
    let fills = result["fills"].as_array().unwrap().len();
    let equity: f64 = result["portfolio"]["equity"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        expected.fills > 1_000,
        "the reference should trade a lot: {}",
        expected.fills
    );
    assert_eq!(fills, expected.fills);
    assert!(
        (equity - expected.final_equity).abs() < 1e-6,
        "stratbox {equity} vs reference {}",
        expected.final_equity
    );
}
