//! Live runtime benchmark (`make bench`).
//!
//! 1. 1,000 paper bots running ema-cross share one synthetic feed at one
//!    candle per second, in one process, for STRATBOX_BENCH_SECONDS (default
//!    300): latency from the feed publishing a candle to each bot's decision
//!    (p50/p99 over all bots and candles, from the runners' latency
//!    histogram, 25 µs buckets), CPU used as a share of the
//!    machine's cores over the run, and resident memory per bot at the end.
//!    Targets: p99 < 10 ms, CPU < 10%, < 2 MiB per bot. The window opens
//!    once the bots have processed WARMUP_CANDLES candles (the first ones
//!    after 1,000 bots start pay one-off costs: strategy threads starting,
//!    instance memory touched for the first time); the p99 including them is
//!    printed too. Run twice: in
//!    memory, then with persistence on (every candle's records and each
//!    bot's checkpoint committed to SQLite through the group-committing
//!    writer before anything is published). STRATBOX_BENCH_STRATEGY_THREADS
//!    overrides the number of strategy threads (one per core plus one take
//!    the calls; the rest only while those stall).
//!    With STRATBOX_BENCH_BACKTEST_JOBS=1, backtest jobs (ema-cross over a
//!    500,000-candle data set, one after another on the default single
//!    backtest worker) run through the whole phase, to measure what they
//!    cost the bots' latency.
//! 2. The most candles per second 1,000 bots absorb: 2,000 candles pushed at
//!    once into a stepped feed, timed until every bot has processed them.
//! 3. The emergency stop: 1,000 bots each holding a position, persistence
//!    on; from `emergency_stop_all` to every bot killed and flat (target
//!    < 1 s).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use stratbox_host::data::{SynthParams, synthesize};
use stratbox_host::domain::config::BotConfig;
use stratbox_host::live::{BotManager, CommandKind, EventBus};
use stratbox_host::persist::StoreCommitLog;
use stratbox_host::plugin::{PluginRegistry, PluginRuntime, RuntimeConfig};
use stratbox_host::store::{SqliteStore, Writer};

mod common;
use common::registry;

const BOTS: usize = 1_000;
const BURST: usize = 2_000;
/// Candles each bot processes before the latency window opens.
const WARMUP_CANDLES: u64 = 5;

fn config(id: usize, feed: &str) -> BotConfig {
    let text = format!(
        "id: bot-{id}\nname: bot {id}\nstrategy: {{ plugin: ema-cross, params: {{ fast: 12, slow: 26 }} }}\nmarket: {{ symbol: BTCUSDT, timeframe: 1m, feed: {feed} }}\ncapital: {{ quote: USDT, initial: 10000 }}\nautostart: true\n"
    );
    BotConfig::from_yaml(&text).expect("bench config")
}

fn proc_field(file: &str, key: &str) -> u64 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resident memory of this process, bytes.
fn rss_bytes() -> u64 {
    proc_field("/proc/self/status", "VmRSS:") * 1024
}

/// CPU time of this process (user + system), seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // The kernel reports in clock ticks, 100 per second on Linux.
    ticks as f64 / 100.0
}

async fn latency_phase(runtime: &PluginRuntime, seconds: u64, persist: bool) {
    let rss_before = rss_bytes();
    let data = tempfile::tempdir().expect("temp dir");
    let mut manager = BotManager::new(registry(runtime), Arc::new(EventBus::new(1)));
    if let Some(threads) = std::env::var("STRATBOX_BENCH_STRATEGY_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        manager = manager
            .with_strategy_threads(threads)
            .expect("strategy threads");
    }
    let mut writer_thread = None;
    if persist {
        let store = SqliteStore::open(data.path()).expect("store");
        let (writer, thread) =
            Writer::start(&store, stratbox_host::live::strategy_jobs_in_flight).expect("writer");
        manager = manager.with_commit_log(Arc::new(StoreCommitLog::new(writer)));
        writer_thread = Some(thread);
    }
    let manager = Arc::new(manager);
    let feed = "{ kind: synthetic, seed: 42, interval_ms: 1000 }";
    for id in 0..BOTS {
        manager
            .create(config(id, feed), "bench")
            .await
            .expect("create");
    }
    let backtests = std::env::var("STRATBOX_BENCH_BACKTEST_JOBS").is_ok_and(|v| v == "1");
    let jobs_done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop_jobs = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let job_loop = backtests.then(|| {
        let (done, stop) = (jobs_done.clone(), stop_jobs.clone());
        let (dir, plugin) = (data.path().to_path_buf(), registry(runtime));
        std::thread::spawn(move || backtest_jobs_until(&dir, &plugin, &done, &stop))
    });
    // The first candles after 1,000 bots start pay one-off costs (strategy
    // threads starting, each instance's memory touched for the first time):
    // measured, reported, and left out of the steady-state figures.
    let mut first = manager.watch("bot-0").expect("bot");
    first
        .wait_for(|s| s.candles_processed >= WARMUP_CANDLES)
        .await
        .expect("bot runs");
    tokio::time::sleep(Duration::from_millis(300)).await; // the wave ends
    let warm_mark = manager.latency().counts();
    let (cpu_start, wall_start) = (cpu_seconds(), Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop_jobs.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(job_loop) = job_loop {
        job_loop.join().expect("backtest job loop");
        println!(
            "  backtest jobs alongside: {} finished (ema-cross, 500,000 candles each)",
            jobs_done.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    let cpu = (cpu_seconds() - cpu_start) / wall_start.elapsed().as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let rss_per_bot = rss_bytes().saturating_sub(rss_before) as f64 / BOTS as f64;
    let histogram = manager.latency();
    let candles = manager.get("bot-0").map_or(0, |s| s.candles_processed);
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    let p50 = histogram.percentile_since(&warm_mark, 0.50).unwrap_or(0);
    let p99 = histogram.percentile_since(&warm_mark, 0.99).unwrap_or(0);
    let p99_with_start = histogram.percentile(0.99).unwrap_or(0);
    let measured = histogram.count_since(&warm_mark);
    println!(
        "live benchmark: {BOTS} paper bots (ema-cross), one shared synthetic feed at 1 candle/s, {seconds} s, {}",
        if persist {
            "persistence on (SQLite, group commit)"
        } else {
            "in memory"
        }
    );
    println!(
        "  decisions measured:      {measured} ({candles} candles per bot, the first {WARMUP_CANDLES} left out)"
    );
    println!("  latency p50:             {:>8.3} ms", p50 as f64 / 1e3);
    println!(
        "  latency p99:             {:>8.3} ms   target < 10 ms   {}",
        p99 as f64 / 1e3,
        verdict(p99 < 10_000)
    );
    println!(
        "  p99 with the first {WARMUP_CANDLES} candles: {:>6.3} ms",
        p99_with_start as f64 / 1e3
    );
    println!(
        "  CPU:                     {:>8.2} %    of {cores} cores, target < 10%   {}",
        cpu / cores * 100.0,
        verdict(cpu / cores < 0.10)
    );
    println!(
        "  resident memory per bot: {:>8.2} MiB  target < 2 MiB   {}",
        rss_per_bot / 1_048_576.0,
        verdict(rss_per_bot < 2.0 * 1_048_576.0)
    );
    for id in 0..BOTS {
        let id = format!("bot-{id}");
        let _ = manager.control(&id, CommandKind::Stop, false).await;
        let _ = manager.delete(&id).await;
    }
    drop(manager);
    if let Some(thread) = writer_thread {
        thread.shutdown();
    }
}

async fn throughput_phase(runtime: &PluginRuntime) {
    let manager = BotManager::new(registry(runtime), Arc::new(EventBus::new(1)));
    for id in 0..BOTS {
        manager
            .create(config(id, "{ kind: stepped }"), "bench")
            .await
            .expect("create");
    }
    let feed = manager
        .feeds()
        .feed_for(&config(0, "{ kind: stepped }"))
        .await
        .expect("feed");
    let candles = synthesize(&SynthParams::new(BURST, 7));
    let last = candles.last().expect("candles").ts;
    let started = Instant::now();
    for candle in candles {
        feed.publish(candle).expect("publish");
    }
    for id in 0..BOTS {
        let mut watch = manager.watch(&format!("bot-{id}")).expect("bot");
        watch
            .wait_for(|s| s.last_candle_ts == Some(last))
            .await
            .expect("bot runs");
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "  absorb {BURST} candles x {BOTS} bots: {:.2} s = {:.0} candles/s for all bots ({:.0} bot-candles/s)",
        elapsed,
        BURST as f64 / elapsed,
        (BURST * BOTS) as f64 / elapsed
    );
}

async fn emergency_phase(runtime: &PluginRuntime) {
    let data = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(data.path()).expect("store");
    let (writer, thread) =
        Writer::start(&store, stratbox_host::live::strategy_jobs_in_flight).expect("writer");
    let manager = BotManager::new(registry(runtime), Arc::new(EventBus::new(1)))
        .with_commit_log(Arc::new(StoreCommitLog::new(writer)));
    let always_long = "{ plugin: rules, params: { entry: { above: { left: { price: close }, right: 0 } }, size_pct: 50 } }";
    let config = |id: usize| {
        let text = format!(
            "id: bot-{id}\nname: bot {id}\nstrategy: {always_long}\nmarket: {{ symbol: BTCUSDT, timeframe: 1m, feed: {{ kind: stepped }} }}\ncapital: {{ quote: USDT, initial: 10000 }}\nautostart: true\n"
        );
        BotConfig::from_yaml(&text).expect("bench config")
    };
    for id in 0..BOTS {
        manager.create(config(id), "bench").await.expect("create");
    }
    let feed = manager.feeds().feed_for(&config(0)).await.expect("feed");
    for candle in synthesize(&SynthParams::new(3, 11)) {
        feed.publish(candle).expect("publish");
    }
    for id in 0..BOTS {
        let mut watch = manager.watch(&format!("bot-{id}")).expect("bot");
        watch
            .wait_for(|s| !s.position.is_zero())
            .await
            .expect("every bot holds a position");
    }
    let started = Instant::now();
    let dispatch = manager.emergency_stop_all("bench").await.expect("engaged");
    assert_eq!(dispatch.killing.len(), BOTS);
    for id in 0..BOTS {
        let mut watch = manager.watch(&format!("bot-{id}")).expect("bot");
        watch
            .wait_for(|s| s.state == stratbox_host::live::BotState::Killed && s.position.is_zero())
            .await
            .expect("killed");
    }
    let elapsed = started.elapsed();
    println!(
        "  emergency stop, {BOTS} bots with positions, persistence on: all killed and flat in {:.1} ms   target < 1000 ms   {}",
        elapsed.as_secs_f64() * 1e3,
        if elapsed < Duration::from_secs(1) {
            "ok"
        } else {
            "MISSED"
        }
    );
    drop(manager);
    thread.shutdown();
}

/// Backtest jobs one after another until `stop`, counting those done.
fn backtest_jobs_until(
    dir: &std::path::Path,
    registry: &Arc<RwLock<PluginRegistry>>,
    done: &std::sync::atomic::AtomicU64,
    stop: &std::sync::atomic::AtomicBool,
) {
    use std::sync::atomic::Ordering;
    use stratbox_host::data::{DataSetKey, DataSets};
    use stratbox_host::research::{BacktestJobs, JobRequest, JobState};
    let key = DataSetKey::parse("BTCUSDT/1m").expect("key");
    DataSets::new(dir)
        .save(&key, &synthesize(&SynthParams::new(500_000, 42)))
        .expect("data set");
    let jobs = BacktestJobs::start(dir, 1, None);
    let bot = config(0, "{ kind: synthetic, seed: 42 }");
    let plugin = registry
        .read()
        .expect("registry")
        .resolve("ema-cross", None)
        .expect("ema-cross");
    while !stop.load(Ordering::Relaxed) {
        let job = jobs
            .submit(JobRequest {
                config: bot.clone(),
                plugin: plugin.clone(),
                data: key.clone(),
                from: None,
                to: None,
                end_of_run: Default::default(),
                optimization: None,
            })
            .expect("submit");
        loop {
            std::thread::sleep(Duration::from_millis(20));
            let (record, _) = jobs.get(&job.id).expect("job");
            if record.state == JobState::Done {
                done.fetch_add(1, Ordering::Relaxed);
                break;
            }
            assert!(
                record.state == JobState::Running || record.state == JobState::Queued,
                "{:?}",
                record.error
            );
            if stop.load(Ordering::Relaxed) {
                let _ = jobs.cancel_or_delete(&job.id);
                return;
            }
        }
    }
}

fn main() {
    // As `stratbox` runs (main.rs): before any thread starts.
    stratbox_host::scheduling::throughput_first().unwrap_or_else(|error| eprintln!("{error}"));
    let seconds = std::env::var("STRATBOX_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    // The runtime `stratbox serve` runs bots on.
    let runtime = stratbox_host::live::runtime().expect("tokio");
    let plugins = PluginRuntime::new(RuntimeConfig::default()).expect("plugin runtime");
    runtime.block_on(async {
        latency_phase(&plugins, seconds, false).await;
        latency_phase(&plugins, seconds, true).await;
        throughput_phase(&plugins).await;
        emergency_phase(&plugins).await;
    });
}
