//! Plugin runtime benchmark (`make bench`).
//!
//! - ema-cross on 1,000,000 synthetic one-minute candles (seed 42) through
//!   the wasm runtime with the full on-candle signature (the candle, naming
//!   its market, and the bot view), against the same strategy compiled natively;
//! - instantiation of a compiled plugin;
//! - load of a cached plugin (compile cache hit), and a cold compile.
//!
//! Candles are converted to the contract's f64 form before timing: the
//! engine holds them that way. Each figure is the best of a few rounds, to
//! keep a busy machine's noise out. Targets: <= 300 ns per candle through
//! wasm, instantiation < 1 ms, cached load < 10 ms.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use stratbox_host::data::{SynthParams, synthesize};
use stratbox_host::plugin::contract::{self, Action, Market, PluginView, Side};
use stratbox_host::plugin::{CacheOutcome, PluginLimits, PluginRuntime, RuntimeConfig};
use stratbox_sdk::Strategy;

mod common;

const CANDLES: usize = 1_000_000;
const ROUNDS: usize = 3;

fn plugin_path() -> PathBuf {
    let dir = std::env::var_os("STRATBOX_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    let path = dir.join("ema-cross.wasm");
    assert!(
        path.exists(),
        "{} missing: run `make plugins`",
        path.display()
    );
    path
}

/// Apply a market decision to a position at the candle's close, so both
/// branches of the strategy (entries and exits) are exercised.
fn apply(position: &mut f64, side: Side, quantity: f64) {
    match side {
        Side::Buy => *position += quantity,
        Side::Sell => *position = (*position - quantity).max(0.0),
    }
}

fn best<T>(rounds: usize, mut run: impl FnMut() -> (Duration, T)) -> (Duration, T) {
    let mut best = run();
    for _ in 1..rounds {
        let next = run();
        if next.0 < best.0 {
            best = next;
        }
    }
    best
}

fn main() {
    // As `stratbox` runs (main.rs): before any thread starts.
    stratbox_host::scheduling::throughput_first().unwrap_or_else(|error| eprintln!("{error}"));
    let candles = synthesize(&SynthParams::new(CANDLES, 42));
    let wasm_candles: Vec<contract::Candle> =
        candles.iter().map(contract::Candle::from_domain).collect();
    let native_candles: Vec<stratbox_sdk::Candle> = wasm_candles
        .iter()
        .map(|c| stratbox_sdk::Candle {
            ts: c.ts,
            open: c.open,
            high: c.high,
            low: c.low,
            close: c.close,
            volume: c.volume,
            ..stratbox_sdk::Candle::new("BTCUSDT", "1m")
        })
        .collect();

    let cache = tempfile::tempdir().expect("temp dir");
    let runtime = PluginRuntime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        max_instances: 64,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let path = plugin_path();

    // Cold compile, then cached loads.
    let started = Instant::now();
    let plugin = runtime.load_file(&path).expect("load");
    let cold = started.elapsed();
    assert_eq!(plugin.cache_outcome(), &CacheOutcome::Compiled);
    let (cached, _) = best(20, || {
        let started = Instant::now();
        let again = runtime.load_file(&path).expect("cached load");
        let took = started.elapsed();
        assert_eq!(again.cache_outcome(), &CacheOutcome::Hit);
        (took, ())
    });

    // Instantiation from the compiled plugin.
    let instantiations = 1_000u32;
    let (instantiate_total, _) = best(ROUNDS, || {
        let started = Instant::now();
        for _ in 0..instantiations {
            let instance = plugin
                .instantiate(PluginLimits::default(), "bench")
                .expect("instantiate");
            drop(instance);
        }
        (started.elapsed(), ())
    });
    let instantiate = instantiate_total / instantiations;

    // ema-cross through wasm.
    let params = json!({});
    let market = Market::new("BTCUSDT", "1m");
    let run_wasm = |candles: &[contract::Candle]| {
        let (mut instance, _) = plugin
            .start(&params, &market, PluginLimits::default(), "bench")
            .expect("start");
        let mut view = PluginView::flat(10_000.0);
        let mut trades = 0u64;
        let started = Instant::now();
        for candle in candles {
            for action in instance.on_candle(candle, &view).expect("on-candle") {
                if let Action::Place(intent) = action {
                    apply(&mut view.bot.position_qty, intent.side, intent.quantity);
                    trades += 1;
                }
            }
        }
        (started.elapsed(), trades)
    };
    let (wasm_time, wasm_trades) = best(ROUNDS, || run_wasm(&wasm_candles));
    // The same strategy compiled natively.
    let (native_time, native_trades) = best(ROUNDS, || {
        let mut strategy = ema_cross::EmaCross::new(Default::default()).expect("native");
        let mut bot = stratbox_sdk::BotView::flat(10_000.0);
        let mut trades = 0u64;
        let started = Instant::now();
        for candle in &native_candles {
            for action in strategy.on_candle(candle, &bot) {
                if let stratbox_sdk::Action::Place(intent) = action {
                    let side = match intent.side {
                        stratbox_sdk::Side::Buy => Side::Buy,
                        stratbox_sdk::Side::Sell => Side::Sell,
                    };
                    apply(&mut bot.position_qty, side, intent.quantity);
                    trades += 1;
                }
            }
        }
        (started.elapsed(), trades)
    });
    assert_eq!(
        wasm_trades, native_trades,
        "wasm and native must decide the same"
    );

    let per = |d: Duration| d.as_nanos() as f64 / CANDLES as f64;
    let (wasm_ns, native_ns) = (per(wasm_time), per(native_time));
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    println!("plugin runtime benchmark (ema-cross, {CANDLES} candles, seed 42, best of {ROUNDS})");
    println!("  trades decided:          {wasm_trades} (wasm) = {native_trades} (native)");
    println!(
        "  wasm on-candle:          {wasm_ns:8.1} ns/candle   target <= 300 ns   {}",
        verdict(wasm_ns <= 300.0)
    );
    println!("  native on-candle:        {native_ns:8.1} ns/candle");
    println!("  wasm / native:           {:8.1}x", wasm_ns / native_ns);
    println!(
        "  instantiate:             {:8.1} us           target < 1 ms      {}",
        instantiate.as_secs_f64() * 1e6,
        verdict(instantiate < Duration::from_millis(1))
    );
    println!(
        "  load, cache hit:         {:8.2} ms           target < 10 ms     {}",
        cached.as_secs_f64() * 1e3,
        verdict(cached < Duration::from_millis(10))
    );
    println!(
        "  load, cold compile:      {:8.2} ms",
        cold.as_secs_f64() * 1e3
    );
}
