//! Binance connector benchmark (`make bench`), against the fake Binance
//! server on 127.0.0.1 in the same process (it shares the cores).
//!
//! 1. Kline to decision: 100 paper bots (ema-cross), each on its own
//!    symbol, all 100 streams on one connection. Every 250 ms each market
//!    closes a candle (a burst of 100 closed klines and 100 open ones, as at
//!    a real minute boundary). Latency from the closed kline read off the
//!    socket to the bot's decision, p50 and p99 over all bots and candles
//!    (the runners' histogram, 25 µs buckets), for STRATBOX_BENCH_SECONDS
//!    (default 30). Target: p99 < 2 ms.
//! 2. History download: 200,000 1m candles paged from `/api/v3/klines`
//!    through the weight-paced client, candles per second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use stratbox_host::domain::config::BotConfig;
use stratbox_host::exchange::binance::{RestClient, download};
use stratbox_host::live::{BotManager, EventBus};
use stratbox_host::plugin::{PluginRuntime, RuntimeConfig};
use stratbox_tests::fake_binance::{FakeBinance, START_TS};

mod common;

const BOTS: usize = 100;
const HISTORY: u64 = 200_000;

fn symbol(index: usize) -> String {
    format!("S{index:03}USDT")
}

async fn latency_phase(plugins: &PluginRuntime, seconds: u64) {
    let fake = FakeBinance::start().await;
    let manager = Arc::new(BotManager::new(
        common::registry(plugins),
        Arc::new(EventBus::new(1)),
    ));
    for index in 0..BOTS {
        fake.add_market(&symbol(index), "1m", 100);
        let text = format!(
            "id: bot-{index}\nname: bot {index}\nstrategy: {{ plugin: ema-cross, params: {{ fast: 12, slow: 26 }} }}\nmarket: {{ symbol: {}, timeframe: 1m, feed: {{ kind: binance, rest_url: '{}', stream_url: '{}' }} }}\ncapital: {{ quote: USDT, initial: 10000 }}\nautostart: true\n",
            symbol(index),
            fake.rest_url(),
            fake.stream_url()
        );
        let config = BotConfig::from_yaml(&text).expect("bench config");
        manager.create(config, "bench").await.expect("create");
    }
    while fake.connections_open() != 1 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // subscriptions paced
    let started = Instant::now();
    let mut rounds = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        for index in 0..BOTS {
            fake.close(&symbol(index), "1m", true);
        }
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let histogram = manager.latency();
    let processed: u64 = (0..BOTS)
        .filter_map(|index| manager.get(&format!("bot-{index}")))
        .map(|snapshot| snapshot.candles_processed)
        .sum();
    let p50 = histogram.percentile(0.50).unwrap_or(0);
    let p99 = histogram.percentile(0.99).unwrap_or(0);
    println!(
        "binance feed benchmark: {BOTS} paper bots (ema-cross) on {BOTS} kline streams over {} connection(s), {rounds} candles each, {seconds} s",
        fake.connections_opened()
    );
    println!(
        "  decisions measured:      {} ({processed} candles processed, {} expected)",
        histogram.count(),
        rounds * BOTS
    );
    println!("  latency p50:             {:>8.3} ms", p50 as f64 / 1e3);
    println!(
        "  latency p99:             {:>8.3} ms   target < 2 ms   {}",
        p99 as f64 / 1e3,
        if p99 < 2_000 { "ok" } else { "MISSED" }
    );
}

async fn download_phase() {
    let fake = FakeBinance::start().await;
    fake.add_market("BTCUSDT", "1m", HISTORY);
    let client = RestClient::new(&fake.rest_url());
    let timeframe = "1m".parse().expect("timeframe");
    let started = Instant::now();
    let mut kept = 0usize;
    let fetched = download(
        &client,
        "BTCUSDT",
        timeframe,
        START_TS,
        i64::MAX / 2,
        |page| {
            kept += page.len();
            Ok(())
        },
        |_| {},
    )
    .await
    .expect("download");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(fetched, HISTORY);
    assert_eq!(kept as u64, HISTORY);
    println!(
        "binance history download: {fetched} candles in {} requests, {seconds:.2} s, {:.0} candles/s",
        fake.kline_requests().len(),
        fetched as f64 / seconds
    );
}

fn main() {
    // As `stratbox` runs (main.rs): before any thread starts.
    stratbox_host::scheduling::throughput_first().unwrap_or_else(|error| eprintln!("{error}"));
    let seconds = std::env::var("STRATBOX_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let runtime = stratbox_host::live::runtime().expect("tokio");
    let plugins = PluginRuntime::new(RuntimeConfig::default()).expect("plugin runtime");
    runtime.block_on(async {
        latency_phase(&plugins, seconds).await;
        download_phase().await;
    });
}
