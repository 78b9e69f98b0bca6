//! Store writer benchmark (`make bench`): committed fills per second
//! through the group-committing writer, with 200 bots (tasks) each
//! committing fills as fast as it can: every batch is what a real fill
//! writes (the order's new state, the fill, the bot's state), and a task
//! sends its next batch only once the last one is committed. SQLite in WAL
//! mode with synchronous=NORMAL. Target: >= 20,000 fills/s.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stratbox_host::store::{Record, SqliteStore, Store, Writer};

mod common;

const BOTS: usize = 200;

fn batch(bot: usize, n: u64) -> Vec<Record> {
    let bot_id = format!("bot-{bot:03}");
    vec![
        Record::Order {
            bot_id: bot_id.clone(),
            order_id: n,
            status: "filled".into(),
            created_ts: n as i64,
            updated_ts: n as i64,
            data: format!(
                "{{\"id\":{n},\"client_tag\":\"entry\",\"side\":\"buy\",\"kind\":\"market\",\"quantity\":\"0.01\",\"price\":null,\"status\":\"filled\"}}"
            ),
        },
        Record::Fill {
            bot_id: bot_id.clone(),
            ts: n as i64,
            data: format!(
                "{{\"order_id\":{n},\"client_tag\":\"entry\",\"side\":\"buy\",\"quantity\":\"0.01\",\"price\":\"101.25\",\"fee\":\"0.00101\",\"liquidity\":\"taker\",\"origin\":\"strategy\",\"ts\":{n}}}"
            ),
        },
        Record::BotState {
            bot_id,
            updated_at: n as i64,
            state: checkpoint(n),
        },
    ]
}

/// A bot's state as a running ema-cross bot stores it (about 830 bytes:
/// readings only, its terms come from its config).
fn checkpoint(n: u64) -> String {
    format!(
        r#"{{"state":"running","error":null,"started_at":1796301978153,"last_candle_ts":{n},"candles_processed":{n},"config_version":1,"engine":{{"portfolio":{{"initial":"10000","cash":"9571.6040810437","position":"0.00000","cost_basis":"0","realized_pnl":"-154.6912803","fees_paid":"273.7046386563","last_price":"98.98","trip":null}},"venue":{{"next_id":{n},"open":[]}},"risk":{{"state":"ACTIVE","kill_switch":null,"peak_equity":"10001.9923084434","day":20791,"day_start_equity":"9809.0846166830","consecutive_losses":3,"cooldown_left":0,"recent_orders":[{n}],"drawdown_breached":false,"daily_breached":false,"losses_breached":false,"last_equity":"9571.6040810437"}},"last_close":"98.98","now":{n},"entries_paused":false}}}}"#
    )
}

fn main() {
    // As `stratbox` runs (main.rs): before any thread starts.
    stratbox_host::scheduling::throughput_first().unwrap_or_else(|error| eprintln!("{error}"));
    let seconds: u64 = std::env::var("STRATBOX_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15)
        .min(30);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("store");
    let (writer, thread) =
        Writer::start(&store, stratbox_host::store::no_decisions).expect("writer");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let committed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..BOTS)
            .map(|bot| {
                let writer = writer.clone();
                let committed = committed.clone();
                tokio::spawn(async move {
                    let mut n = 0;
                    while tokio::time::Instant::now() < deadline {
                        n += 1;
                        writer.commit(batch(bot, n)).await.expect("committed");
                        committed.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    drop(writer);
    thread.shutdown();
    let fills = committed.load(Ordering::Relaxed);
    let stored = store.count_fills().expect("count");
    assert_eq!(stored, fills, "every acknowledged fill is in the database");
    let rate = fills as f64 / elapsed;
    println!(
        "store writer: {BOTS} bots committing fills as fast as they can for {seconds} s: {fills} fills committed = {rate:.0} fills/s (target >= 20,000: {})",
        if rate >= 20_000.0 { "ok" } else { "MISSED" }
    );
}
