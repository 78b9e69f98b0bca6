//! Binance feeds against the fake Binance server (REST and kline streams on
//! 127.0.0.1): every closed candle reaches the feed once and in order
//! through dropped, refused and frozen connections (missing candles come
//! from REST), across planned rollovers and `serverShutdown` without asking
//! REST at all (not even for a candle the replaced connection carries
//! late), and a real outage shows as a jump, never papered over; a
//! feed that ran before comes back while REST is down.

use std::time::{Duration, Instant};

use stratbox_host::domain::config::BotConfig;
use stratbox_host::exchange::binance::StreamSettings;
use stratbox_host::live::{FeedHandle, FeedHub};
use stratbox_tests::fake_binance::{FakeBinance, FakeOptions};

const STEP: i64 = 60_000;

fn config(fake: &FakeBinance, symbol: &str) -> BotConfig {
    let text = format!(
        "id: b-{}\nname: b\nstrategy: {{ plugin: ema-cross, params: {{}} }}\nmarket: {{ symbol: {symbol}, timeframe: 1m, feed: {{ kind: binance, rest_url: '{}', stream_url: '{}' }} }}\ncapital: {{ quote: USDT, initial: 10000 }}\n",
        symbol.to_ascii_lowercase(),
        fake.rest_url(),
        fake.stream_url()
    );
    BotConfig::from_yaml(&text).unwrap_or_else(|issues| panic!("{issues:?}"))
}

fn quick_settings() -> StreamSettings {
    StreamSettings {
        silence: Duration::from_millis(1_500),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        ..StreamSettings::default()
    }
}

fn hub(settings: StreamSettings) -> FeedHub {
    let mut hub = FeedHub::default();
    hub.set_binance_settings(settings);
    hub
}

/// Open times of everything the feed has, oldest first.
fn feed_ts(feed: &FeedHandle) -> Vec<i64> {
    feed.recent_before(feed.published(), usize::MAX)
        .iter()
        .map(|c| c.ts)
        .collect()
}

async fn wait_for_count(feed: &FeedHandle, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while feed.published() < count {
        assert!(
            Instant::now() < deadline,
            "the feed has {} candles, expected {count}",
            feed.published()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_refusals_and_silence_lose_no_candle_and_repeat_none() {
    let fake = FakeBinance::start().await;
    fake.add_market("BTCUSDT", "1m", 50);
    let hub = hub(quick_settings());
    let feed = hub.feed_for(&config(&fake, "BTCUSDT")).await.unwrap();
    // Warm-up from REST: the closed candles only, not the open one.
    assert_eq!(feed_ts(&feed), fake.closed_ts("BTCUSDT", "1m"));
    wait_until("the subscription", || fake.connections_opened() == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        fake.close("BTCUSDT", "1m", true);
    }
    wait_for_count(&feed, 53).await;
    let requests_before = fake.kline_requests().len();

    // Dropped, then refused while four candles close unseen.
    fake.refuse_connections(true);
    fake.drop_connections();
    for _ in 0..4 {
        fake.close("BTCUSDT", "1m", false);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    fake.refuse_connections(false);
    wait_until("a new connection", || fake.connections_opened() >= 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    fake.close("BTCUSDT", "1m", true);
    wait_for_count(&feed, 58).await;
    assert_eq!(feed_ts(&feed), fake.closed_ts("BTCUSDT", "1m"));
    assert!(
        fake.kline_requests().len() > requests_before,
        "the missing candles came from REST"
    );

    // Frozen: no data and no pings; the silence is noticed.
    let opened = fake.connections_opened();
    fake.freeze_connections();
    fake.close("BTCUSDT", "1m", false);
    wait_until("a reconnect after silence", || {
        fake.connections_opened() > opened
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    fake.close("BTCUSDT", "1m", true);
    wait_for_count(&feed, 60).await;
    let got = feed_ts(&feed);
    assert_eq!(got, fake.closed_ts("BTCUSDT", "1m"));
    assert!(got.windows(2).all(|pair| pair[1] - pair[0] == STEP));
    // Pings are answered with their payload, and that keeps the
    // connection (the fake drops one that leaves a ping unanswered).
    let opened = fake.connections_opened();
    wait_until("three answered pings", || fake.pongs() >= 3).await;
    assert_eq!(fake.connections_opened(), opened);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollovers_and_server_shutdowns_switch_connections_without_a_gap() {
    let fake = FakeBinance::start().await;
    fake.add_market("ETHUSDT", "1m", 10);
    let settings = StreamSettings {
        max_age: Duration::from_millis(700),
        ..quick_settings()
    };
    let hub = hub(settings);
    let feed = hub.feed_for(&config(&fake, "ETHUSDT")).await.unwrap();
    let warm_up_requests = fake.kline_requests().len();
    wait_until("the subscription", || fake.connections_opened() == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut closed = 10;
    let started = Instant::now();
    let mut shutdown_sent = false;
    // At least 3 s, and on until rollovers by age have happened (a busy
    // machine may delay them); a generous bound fails instead of hanging.
    while (started.elapsed() < Duration::from_millis(3_000) || fake.connections_opened() < 4)
        && started.elapsed() < Duration::from_secs(30)
    {
        fake.close("ETHUSDT", "1m", true);
        closed += 1;
        if !shutdown_sent && started.elapsed() > Duration::from_millis(1_200) {
            fake.server_shutdown();
            shutdown_sent = true;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    wait_for_count(&feed, closed).await;
    let got = feed_ts(&feed);
    assert_eq!(got, fake.closed_ts("ETHUSDT", "1m"));
    assert!(
        fake.connections_opened() >= 4,
        "rolled over by age and on serverShutdown ({} connections)",
        fake.connections_opened()
    );
    assert_eq!(
        fake.kline_requests().len(),
        warm_up_requests,
        "nothing was missed, so REST was never asked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candle_still_on_its_way_over_the_replaced_connection_is_not_lost() {
    let fake = FakeBinance::start_with(FakeOptions {
        first_connection_lag: Duration::from_millis(800),
        shutdown_grace: Duration::from_secs(2),
        ..FakeOptions::default()
    })
    .await;
    fake.add_market("SOLUSDT", "1m", 10);
    let hub = hub(quick_settings());
    let feed = hub.feed_for(&config(&fake, "SOLUSDT")).await.unwrap();
    let warm_up_requests = fake.kline_requests().len();
    wait_until("the subscription", || fake.stream_subscriptions() == 1).await;
    // The candle closes on the old connection only, which carries it late:
    // by then the replacement has subscribed and taken over.
    fake.server_shutdown();
    fake.close("SOLUSDT", "1m", true);
    wait_until("the replacement", || fake.stream_subscriptions() == 2).await;
    wait_for_count(&feed, 11).await;
    fake.close("SOLUSDT", "1m", true);
    wait_for_count(&feed, 12).await;
    assert_eq!(feed_ts(&feed), fake.closed_ts("SOLUSDT", "1m"));
    assert_eq!(
        fake.kline_requests().len(),
        warm_up_requests,
        "the late candle came over the old connection, not from REST"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchange_outage_is_a_jump_not_an_invention() {
    let fake = FakeBinance::start().await;
    fake.add_market("BNBUSDT", "1m", 5);
    let hub = hub(quick_settings());
    let feed = hub.feed_for(&config(&fake, "BNBUSDT")).await.unwrap();
    wait_until("the subscription", || fake.connections_opened() == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    fake.outage("BNBUSDT", "1m");
    fake.outage("BNBUSDT", "1m");
    let after = fake.close("BNBUSDT", "1m", true);
    wait_for_count(&feed, 6).await;
    let got = feed_ts(&feed);
    assert_eq!(got, fake.closed_ts("BNBUSDT", "1m"));
    assert_eq!(got[5] - got[4], 3 * STEP, "two candles never existed");
    assert_eq!(got[5], after);
    // REST was asked about the hole before the jump was accepted.
    assert!(
        fake.kline_requests()
            .iter()
            .any(|request| request.start == Some(got[4] + STEP))
    );
    // The next candle follows normally.
    fake.close("BNBUSDT", "1m", true);
    wait_for_count(&feed, 7).await;
    assert_eq!(feed_ts(&feed), fake.closed_ts("BNBUSDT", "1m"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_feeds_share_one_connection_and_a_feed_let_go_is_unsubscribed() {
    let fake = FakeBinance::start().await;
    let symbols = ["AAAUSDT", "BBBUSDT", "CCCUSDT"];
    for symbol in symbols {
        fake.add_market(symbol, "1m", 3);
    }
    let hub = hub(quick_settings());
    let mut feeds = Vec::new();
    for symbol in symbols {
        feeds.push(hub.feed_for(&config(&fake, symbol)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for symbol in symbols {
        fake.close(symbol, "1m", true);
    }
    for feed in &feeds {
        wait_for_count(feed, 4).await;
    }
    assert_eq!(
        fake.connections_opened(),
        1,
        "one connection for all streams"
    );
    let streams = hub.binance_streams(&stratbox_host::exchange::binance::Endpoints::of(
        Default::default(),
        Some(&fake.rest_url()),
        Some(&fake.stream_url()),
    ));
    assert_eq!(streams.connections(), 1);
    drop(feeds);
    // The next update of each stream finds no reader: all are dropped and
    // the connection closes.
    for symbol in symbols {
        fake.close(symbol, "1m", true);
    }
    wait_until("the idle connection to close", || {
        fake.connections_open() == 0
    })
    .await;
    // The multiplexer stays, idle, and opens again for a new feed.
    assert_eq!(streams.connections(), 1);
    let again = hub.feed_for(&config(&fake, "AAAUSDT")).await.unwrap();
    wait_until("a connection for the new feed", || {
        fake.connections_open() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    fake.close("AAAUSDT", "1m", true);
    wait_for_count(&again, 6).await;
    assert_eq!(feed_ts(&again), fake.closed_ts("AAAUSDT", "1m"));
}

/// Candles kept across a restart, in memory.
#[derive(Default)]
struct MemoryArchive(std::sync::Mutex<Vec<stratbox_host::domain::Candle>>);

impl stratbox_host::live::CandleArchive for MemoryArchive {
    fn recent(&self, _feed: &str, limit: usize) -> Vec<stratbox_host::domain::Candle> {
        let kept = self.0.lock().unwrap();
        kept[kept.len().saturating_sub(limit)..].to_vec()
    }

    fn keep(&self, _feed: &str, candle: &stratbox_host::domain::Candle) {
        self.0.lock().unwrap().push(*candle);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_that_ran_before_resumes_while_rest_is_down_and_fills_the_gap_later() {
    let fake = FakeBinance::start().await;
    fake.add_market("BTCUSDT", "1m", 30);
    let config = config(&fake, "BTCUSDT");
    let archive = std::sync::Arc::new(MemoryArchive::default());
    let closed = fake.closed_ts("BTCUSDT", "1m");
    // Archive the first 20 as a previous run would have.
    let rest = stratbox_host::exchange::binance::RestClient::new(&fake.rest_url());
    let rows = rest
        .klines("BTCUSDT", "1m".parse().unwrap(), Some(closed[0]), None, 20)
        .await
        .unwrap();
    for row in rows {
        archive.0.lock().unwrap().push(row.valid_candle().unwrap());
    }
    assert_eq!(archive.0.lock().unwrap().len(), 20);

    // Restart while REST refuses: the feed comes up from its archive and
    // its stream.
    fake.script(stratbox_tests::fake_binance::Scripted::refused());
    let mut restarted = hub(quick_settings());
    restarted.set_archive(archive.clone());
    let feed = restarted
        .feed_for(&config)
        .await
        .expect("a feed that ran before does not wait for REST");
    wait_until("the stream", || fake.connections_open() == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let newest = fake.close("BTCUSDT", "1m", true);
    wait_until("the gap filled", || feed_ts(&feed).last() == Some(&newest)).await;
    let mut expected = fake.closed_ts("BTCUSDT", "1m");
    expected.retain(|ts| *ts <= newest);
    assert_eq!(feed_ts(&feed), expected, "every candle once, in order");
}
