//! Backtest throughput (`make bench`).
//!
//! ema-cross over 1,000,000 synthetic one-minute candles (seed 42) on one
//! core, end to end: plugin + risk + venue + portfolio + equity curve.
//! Measured with the candles already in memory and, separately, including
//! reading them from a CSV file; with the plugin called once per candle
//! instead of once per quiet stretch; and against the same backtest with the
//! strategy compiled natively (the engine is generic over its decider).
//! Targets: >= 2,000,000 candles/s, and within 3x of native.
//!
//! Then the same candles as a stored data set: opening it, the file mapped
//! and its columns read where they lie, which is how a backtest reads it
//! (target < 20 ms); loading it whole into memory, for comparison; the
//! backtest run over the opened data set (candles built as it goes); and
//! `stratbox backtest --data BTCUSDT/1m` as one process, end to end
//! (target < 0.5 s; the plugin's compile cache warmed first). Every round
//! of the timings of a data set is printed, not only the best.
//!
//! Last, an optimisation: 200 ema-cross parameter sets (fast 2..21 x slow
//! 30..210 by 20) over 500,000 candles on 2 threads (target < 25 s), and on
//! 1 thread for the speed-up (target >= 1.8x).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use stratbox_host::backtest::{self, BacktestOptions, PluginSummary};
use stratbox_host::data::{
    DataSetKey, DataSets, SynthParams, read_candles, synthesize, write_candles,
};
use stratbox_host::domain::config::BotConfig;
use stratbox_host::domain::{Candle, CandleSeries};
use stratbox_host::engine::Decider;
use stratbox_host::plugin::contract::{self, Action};
use stratbox_host::plugin::{PluginError, PluginInstance, PluginRuntime, RuntimeConfig};
use stratbox_sdk::Strategy;

mod common;

const CANDLES: usize = 1_000_000;
const ROUNDS: usize = 3;

const CONFIG: &str = "
id: bench
name: bench
strategy: { plugin: ema-cross, params: { fast: 12, slow: 26, size: { percent_of_equity: 50 } } }
market: { symbol: BTCUSDT, timeframe: 1m }
capital: { quote: USDT, initial: 10000 }
";

/// ema-cross compiled natively, behind the engine's decider interface.
struct NativeEmaCross {
    strategy: ema_cross::EmaCross,
    candle: stratbox_sdk::Candle,
}

impl Decider for NativeEmaCross {
    fn on_candle(
        &mut self,
        candle: &contract::Candle,
        view: &contract::PluginView,
    ) -> Result<Vec<Action>, PluginError> {
        let c = &mut self.candle;
        (c.ts, c.open, c.high, c.low, c.close, c.volume) = (
            candle.ts,
            candle.open,
            candle.high,
            candle.low,
            candle.close,
            candle.volume,
        );
        let bot = &view.bot;
        let mut view = stratbox_sdk::BotView::flat(bot.free_cash)
            .with_position(bot.position_qty, bot.position_avg_price);
        view.equity = bot.equity;
        Ok(self
            .strategy
            .on_candle(&self.candle, &view)
            .into_iter()
            .map(|action| match action {
                stratbox_sdk::Action::Place(i) => Action::Place(contract::OrderIntent {
                    side: match i.side {
                        stratbox_sdk::Side::Buy => contract::Side::Buy,
                        stratbox_sdk::Side::Sell => contract::Side::Sell,
                    },
                    kind: contract::OrderKind::Market,
                    quantity: i.quantity,
                    price: i.price,
                    reduce_only: i.reduce_only,
                    client_tag: i.client_tag,
                }),
                stratbox_sdk::Action::Cancel(tag) => Action::Cancel(tag),
            })
            .collect())
    }

    fn on_fill(&mut self, _fill: &contract::Fill) -> Result<(), PluginError> {
        Ok(())
    }
}

/// The plugin instance, called once per candle whatever it could do.
struct OneCallPerCandle(PluginInstance);

impl Decider for OneCallPerCandle {
    fn on_candle(
        &mut self,
        candle: &contract::Candle,
        view: &contract::PluginView,
    ) -> Result<Vec<Action>, PluginError> {
        self.0.on_candle(candle, view)
    }

    fn on_fill(&mut self, fill: &contract::Fill) -> Result<(), PluginError> {
        self.0.on_fill(fill)
    }
}

fn plugin_path() -> PathBuf {
    let dir = std::env::var_os("STRATBOX_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    dir.join("ema-cross.wasm")
}

fn best(mut run: impl FnMut() -> Duration) -> Duration {
    (0..ROUNDS)
        .map(|_| run())
        .min()
        .expect("at least one round")
}

/// The same backtest with the strategy compiled natively.
fn native_run(
    config: &BotConfig,
    candles: &[Candle],
    options: &BacktestOptions,
) -> (Duration, usize) {
    let params: ema_cross::Params =
        serde_json::from_value(config.strategy.params.clone()).expect("ema-cross params");
    let decider = NativeEmaCross {
        strategy: ema_cross::EmaCross::new(params).expect("native strategy"),
        candle: stratbox_sdk::Candle::new("BTCUSDT", "1m"),
    };
    let summary = PluginSummary {
        name: "ema-cross".into(),
        version: "native".into(),
        content_hash: String::new(),
    };
    let started = Instant::now();
    let result =
        backtest::run_with(config, decider, summary, candles, options).expect("native backtest");
    (started.elapsed(), result.trades.len())
}

fn main() {
    // As `stratbox` runs (main.rs): before any thread starts.
    stratbox_host::scheduling::throughput_first().unwrap_or_else(|error| eprintln!("{error}"));
    let config = BotConfig::from_yaml(CONFIG).expect("config");
    let runtime = PluginRuntime::new(RuntimeConfig {
        max_instances: 16,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let plugin = runtime
        .load_file(&plugin_path())
        .expect("run `make plugins` first");
    let candles = synthesize(&SynthParams::new(CANDLES, 42));

    let options = BacktestOptions::default();
    let mut trades = 0;
    let in_memory = best(|| {
        let started = Instant::now();
        let result = backtest::run(&config, &plugin, &candles, &options).expect("backtest");
        trades = result.trades.len();
        started.elapsed()
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("candles.csv");
    write_candles(
        std::io::BufWriter::new(std::fs::File::create(&csv).expect("csv")),
        &candles,
    )
    .expect("write");
    // The same run with the plugin called once per candle (no quiet
    // stretches): what deciding stretches in one call saves.
    let per_candle = best(|| {
        let (instance, _) = plugin.start_bot(&config).expect("instance");
        let summary = PluginSummary {
            name: "ema-cross".into(),
            version: "per-candle".into(),
            content_hash: String::new(),
        };
        let started = Instant::now();
        let result = backtest::run_with(
            &config,
            OneCallPerCandle(instance),
            summary,
            &candles,
            &options,
        )
        .expect("backtest");
        assert_eq!(result.trades.len(), trades, "the same trades either way");
        started.elapsed()
    });

    let with_csv = best(|| {
        let started = Instant::now();
        let loaded = read_candles(&csv).expect("read");
        backtest::run(&config, &plugin, &loaded, &options).expect("backtest");
        started.elapsed()
    });

    let mut native_trades = 0;
    let native = best(|| {
        let (took, trades) = native_run(&config, &candles, &options);
        native_trades = trades;
        took
    });
    assert_eq!(trades, native_trades, "wasm and native must trade the same");

    let rounds = data_set_rounds(&candles, dir.path());
    let opened = DataSets::new(dir.path())
        .open(&DataSetKey::parse("BTCUSDT/1m").expect("key"))
        .expect("open");
    let from_data_set = best(|| {
        let started = Instant::now();
        backtest::run(&config, &plugin, &opened, &options).expect("backtest");
        started.elapsed()
    });
    let (on_two, on_one) = optimisation(&config, &plugin, &candles[..500_000]);

    let rate = |d: Duration| CANDLES as f64 / d.as_secs_f64();
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    println!(
        "backtest benchmark (ema-cross, {CANDLES} 1m candles, seed 42, one core, best of {ROUNDS})"
    );
    println!("  round trips:               {trades}");
    println!(
        "  in memory, wasm plugin:    {:>12.0} candles/s  ({:.0} ms)   target >= 2,000,000   {}",
        rate(in_memory),
        in_memory.as_secs_f64() * 1e3,
        verdict(rate(in_memory) >= 2_000_000.0)
    );
    println!(
        "  same, one call per candle: {:>12.0} candles/s  ({:.0} ms)",
        rate(per_candle),
        per_candle.as_secs_f64() * 1e3
    );
    println!(
        "  over the opened data set:  {:>12.0} candles/s  ({:.0} ms)",
        rate(from_data_set),
        from_data_set.as_secs_f64() * 1e3
    );
    println!(
        "  with CSV loading:          {:>12.0} candles/s  ({:.0} ms)",
        rate(with_csv),
        with_csv.as_secs_f64() * 1e3
    );
    println!(
        "  native strategy (engine):  {:>12.0} candles/s  ({:.0} ms)",
        rate(native),
        native.as_secs_f64() * 1e3
    );
    let ratio = in_memory.as_secs_f64() / native.as_secs_f64();
    println!(
        "  wasm / native:             {ratio:>12.2}x   target <= 3x   {}",
        verdict(ratio <= 3.0)
    );
    let ms = |rounds: &[Duration]| {
        rounds
            .iter()
            .map(|d| format!("{:.1}", d.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let median = |rounds: &[Duration]| {
        let mut sorted = rounds.to_vec();
        sorted.sort();
        sorted[sorted.len() / 2]
    };
    println!(
        "  data set open (1M candles, mapped): {} ms   target < 20 ms   {}",
        ms(&rounds.opens),
        verdict(median(&rounds.opens) < Duration::from_millis(20))
    );
    println!(
        "  data set loaded whole into memory:  {} ms",
        ms(&rounds.loads)
    );
    println!(
        "  `stratbox backtest --data`, one process: {} ms   target < 500 ms   {}",
        ms(&rounds.processes),
        verdict(median(&rounds.processes) < Duration::from_millis(500))
    );
    println!(
        "  optimisation, 200 sets x 500,000 candles: 2 threads {:.1} s (target < 25 s, {}), 1 thread {:.1} s, speed-up {:.2}x (target >= 1.8x, {})",
        on_two.as_secs_f64(),
        verdict(on_two < Duration::from_secs(25)),
        on_one.as_secs_f64(),
        on_one.as_secs_f64() / on_two.as_secs_f64(),
        verdict(on_one.as_secs_f64() / on_two.as_secs_f64() >= 1.8)
    );
}

/// 200 parameter sets over `candles` on 2 threads, then on 1.
fn optimisation(
    config: &BotConfig,
    plugin: &stratbox_host::plugin::Plugin,
    candles: &[Candle],
) -> (Duration, Duration) {
    use stratbox_host::research::optimize::{
        Objective, ParamRange, Ranking, Sets, Study, grid, optimize,
    };
    let space = [
        (
            "fast".to_string(),
            ParamRange::parse("2..21:1").expect("range"),
        ),
        (
            "slow".to_string(),
            ParamRange::parse("30..210:20").expect("range"),
        ),
    ]
    .into_iter()
    .collect();
    let sets = Sets::Fixed(grid(&space));
    assert_eq!(sets.len(), 200);
    let timed = |threads| {
        let study = Study {
            config,
            plugin,
            candles,
            options: BacktestOptions::default(),
            ranking: Ranking::single(Objective::Sharpe),
            min_trades: 1,
            threads,
        };
        let started = Instant::now();
        let trials = optimize(
            &study,
            &sets,
            &std::sync::atomic::AtomicUsize::new(0),
            &std::sync::atomic::AtomicBool::new(false),
        );
        assert!(trials.iter().all(|t| t.error.is_none()));
        started.elapsed()
    };
    (timed(2), timed(1))
}

/// How long `read` took in each of `ROUNDS + 2` rounds (what it read
/// checked by `check`, untimed).
fn every_round<T>(read: impl Fn() -> T, check: impl Fn(&T)) -> Vec<Duration> {
    (0..ROUNDS + 2)
        .map(|_| {
            let started = Instant::now();
            let read = read();
            let took = started.elapsed();
            check(&read);
            took
        })
        .collect()
}

/// How long each round of reading a data set took.
struct DataSetRounds {
    opens: Vec<Duration>,
    loads: Vec<Duration>,
    processes: Vec<Duration>,
}

/// The candles stored as a data set in `dir`: how long each open and each
/// whole load takes, and how long each `stratbox backtest --data` process
/// takes, end to end.
fn data_set_rounds(candles: &[Candle], dir: &std::path::Path) -> DataSetRounds {
    let key = DataSetKey::parse("BTCUSDT/1m").expect("key");
    let sets = DataSets::new(dir);
    sets.save(&key, candles).expect("save the data set");
    let last = candles.len() - 1;
    let opens = every_round(
        || sets.open(&key).expect("open"),
        |opened| {
            assert_eq!(opened.len(), candles.len());
            assert_eq!(opened.candle(last), candles[last]);
        },
    );
    let loads = every_round(
        || sets.load(&key).expect("load"),
        |loaded| {
            assert!(*loaded == candles);
        },
    );
    let bot = dir.join("bot.yaml");
    std::fs::write(&bot, CONFIG).expect("bot config");
    let plugins = plugin_path().parent().expect("plugin dir").to_path_buf();
    let process = || {
        let started = Instant::now();
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_stratbox"))
            .args(["backtest", "--data", "BTCUSDT/1m", "--bot"])
            .arg(&bot)
            .arg("--data-dir")
            .arg(dir)
            .arg("--plugins-dir")
            .arg(&plugins)
            .env("STRATBOX_CACHE_DIR", dir.join("cache"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("stratbox runs");
        assert!(status.success(), "stratbox backtest failed");
        started.elapsed()
    };
    process(); // warms the compile cache
    let processes = (0..ROUNDS + 2).map(|_| process()).collect();
    DataSetRounds {
        opens,
        loads,
        processes,
    }
}
