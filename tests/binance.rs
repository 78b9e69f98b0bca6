//! The Binance connector from outside, against the fake Binance server on
//! 127.0.0.1: `stratbox data download` (paging, Retry-After on 429 and 418,
//! resuming an interrupted download into a data set) and a paper bot on a
//! Binance feed in a running server (every closed candle once, through a
//! dropped connection; an exchange outage announced as `feed.gap`).

use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use stratbox_tests::fake_binance::{FakeBinance, START_TS, Scripted, candle_values};
use stratbox_tests::server::{ADMIN_TOKEN, Client, Options, Server};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const STEP: i64 = 60_000;

fn download(fake: &FakeBinance, data_dir: &std::path::Path) -> std::process::Output {
    Command::new(stratbox_tests::binary())
        .args([
            "data",
            "download",
            "--symbol",
            "BTCUSDT",
            "--timeframe",
            "1m",
            "--from",
            &START_TS.to_string(),
            "--base-url",
            &fake.rest_url(),
            "--data-dir",
        ])
        .arg(data_dir)
        .output()
        .expect("stratbox runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_waits_out_429_and_418_and_resumes_after_an_interruption() {
    let fake = FakeBinance::start().await;
    fake.add_market("BTCUSDT", "1m", 2_500);
    for answer in [
        Scripted::normal(),
        Scripted::too_many_requests(1),
        Scripted::banned(1),
        Scripted::normal(),
        Scripted::refused(),
    ] {
        fake.script(answer);
    }
    let data_dir = tempfile::tempdir().unwrap();
    let first = tokio::task::block_in_place(|| download(&fake, data_dir.path()));
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(!first.status.success(), "the refusal stops it: {stderr}");
    assert!(
        stderr.contains("run the same command again to resume (2000 candles kept)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("-1100"),
        "Binance's code is shown: {stderr}"
    );
    let requests = fake.kline_requests();
    // After each 429 / 418 the next request waited its Retry-After.
    for (i, request) in requests.iter().enumerate() {
        if request.status == 429 || request.status == 418 {
            let waited = requests[i + 1].at - request.at;
            assert!(
                waited >= Duration::from_millis(990),
                "{waited:?} after {}",
                request.status
            );
            assert_eq!(requests[i + 1].start, request.start, "the same page again");
        }
    }
    assert!(requests.iter().all(|request| request.limit == 1_000));

    let second = tokio::task::block_in_place(|| download(&fake, data_dir.path()));
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(
        stdout.contains("2000 resumed from the part file"),
        "{stdout}"
    );
    let resumed = &fake.kline_requests()[requests.len()];
    assert_eq!(
        resumed.start,
        Some(START_TS + 2_000 * STEP),
        "no page twice"
    );
    assert!(
        stdout.contains("stored BTCUSDT/1m: 2500 candles, 0 gaps"),
        "{stdout}"
    );
    assert!(
        !data_dir
            .path()
            .join("downloads")
            .read_dir()
            .unwrap()
            .any(|_| true),
        "the part file is gone"
    );

    // The data set holds exactly Binance's candles.
    let csv = data_dir.path().join("out.csv");
    let export = Command::new(stratbox_tests::binary())
        .args(["data", "export", "BTCUSDT/1m", "--out"])
        .arg(&csv)
        .arg("--data-dir")
        .arg(data_dir.path())
        .output()
        .unwrap();
    assert!(export.status.success());
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 2_500);
    for (index, row) in rows.iter().enumerate() {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(
            fields[0].parse::<i64>().unwrap(),
            START_TS + index as i64 * STEP
        );
        let expected = candle_values(index as u64);
        for (got, want) in fields[1..].iter().zip(&expected) {
            assert_eq!(
                got.parse::<f64>().unwrap(),
                want.parse::<f64>().unwrap(),
                "{row}"
            );
        }
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn events(server: &Server) -> Socket {
    let url = format!("{}/api/v1/ws", server.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_TOKEN}").parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let subscribe = json!({ "op": "subscribe", "channels": ["system"] });
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    socket
}

async fn next_of_type(socket: &mut Socket, kind: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, socket.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} event"))
            .expect("open")
            .unwrap();
        if let Message::Text(text) = message {
            let event: Value = serde_json::from_str(&text).unwrap();
            if event["type"] == kind {
                return event;
            }
        }
    }
}

async fn wait_for_candles(server: &Server, count: u64) -> Value {
    let client = Client::admin();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, bot) = client.get(&server.url("/bots/live-btc")).await;
        if bot["candles_processed"].as_u64() == Some(count) {
            return bot;
        }
        assert!(
            bot["candles_processed"].as_u64().unwrap_or(0) <= count,
            "more candles than Binance closed: {bot}"
        );
        assert!(Instant::now() < deadline, "{bot}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn open_time(bot: &Value) -> i64 {
    let text = bot["last_candle_at"].as_str().expect("a candle");
    chrono_free_parse(text)
}

/// RFC 3339 UTC (`2026-01-01T00:05:00Z`) to epoch ms, for whole minutes.
fn chrono_free_parse(text: &str) -> i64 {
    let minutes_into_2026 = {
        let (date, time) = text.split_once('T').unwrap();
        let day: i64 = date[8..10].parse().unwrap();
        let hour: i64 = time[0..2].parse().unwrap();
        let minute: i64 = time[3..5].parse().unwrap();
        assert!(date.starts_with("2026-01-"), "{text}");
        ((day - 1) * 24 + hour) * 60 + minute
    };
    START_TS + minutes_into_2026 * STEP
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paper_bot_on_binance_sees_every_closed_candle_once_and_hears_of_outages() {
    let fake = FakeBinance::start().await;
    fake.add_market("BTCUSDT", "1m", 200);
    let bot = format!(
        "id: live-btc
name: Paper on Binance
strategy:
  plugin: ema-cross
  params: {{ fast: 3, slow: 8, size: {{ percent_of_equity: 50 }} }}
market:
  symbol: BTCUSDT
  timeframe: 1m
  feed: {{ kind: binance, rest_url: '{}', stream_url: '{}' }}
capital: {{ quote: USDT, initial: \"10000\" }}
autostart: true
",
        fake.rest_url(),
        fake.stream_url()
    );
    let defaults = Options::default();
    let server = Server::start(Options {
        settings: format!(
            "{}binance_urls: ['{}', '{}']\n",
            defaults.settings,
            fake.rest_url(),
            fake.stream_url()
        ),
        bots: vec![("live-btc.yaml".into(), bot)],
        ..defaults
    });
    let mut socket = events(&server).await;
    let client = Client::admin();
    // Running on the REST warm-up, waiting for the first closed kline.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, bot) = client.get(&server.url("/bots/live-btc")).await;
        if bot["state"] == "running" && fake.connections_open() == 1 {
            assert_eq!(bot["candles_processed"], 0, "history is warm-up only");
            break;
        }
        assert!(Instant::now() < deadline, "{bot}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        fake.close("BTCUSDT", "1m", true);
    }
    wait_for_candles(&server, 3).await;

    fake.refuse_connections(true);
    fake.drop_connections();
    fake.close("BTCUSDT", "1m", false);
    fake.close("BTCUSDT", "1m", false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    fake.refuse_connections(false);
    let deadline = Instant::now() + Duration::from_secs(20);
    while fake.connections_open() == 0 {
        assert!(Instant::now() < deadline, "no reconnect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let last = fake.close("BTCUSDT", "1m", true);
    let bot = wait_for_candles(&server, 6).await;
    assert_eq!(open_time(&bot), last);

    fake.outage("BTCUSDT", "1m");
    let after_outage = fake.close("BTCUSDT", "1m", true);
    let gap = next_of_type(&mut socket, "feed.gap").await;
    assert_eq!(gap["bot_id"], "live-btc");
    assert_eq!(gap["data"]["missing"], 1, "{gap}");
    assert_eq!(
        chrono_free_parse(gap["data"]["before"].as_str().unwrap()),
        after_outage
    );
    assert_eq!(
        chrono_free_parse(gap["data"]["after"].as_str().unwrap()),
        last
    );
    let bot = wait_for_candles(&server, 7).await;
    assert_eq!(open_time(&bot), after_outage);

    // A URL the server's settings do not list is refused: a client cannot
    // make the server connect wherever it likes.
    let elsewhere = json!({
        "id": "elsewhere", "name": "elsewhere",
        "strategy": { "plugin": "ema-cross", "params": {} },
        "market": { "symbol": "BTCUSDT", "timeframe": "1m",
                    "feed": { "kind": "binance", "rest_url": "http://127.0.0.1:9" } },
        "capital": { "quote": "USDT", "initial": "10000" },
        "autostart": true
    });
    let (status, problem) = client.post_json(&server.url("/bots"), &elsewhere).await;
    assert_eq!(status, 422, "{problem}");
    let text = problem.to_string();
    assert!(
        text.contains("/market/feed") && text.contains("binance_urls"),
        "{text}"
    );
    let (status, _) = client.get(&server.url("/bots/elsewhere")).await;
    assert_eq!(status, 404, "nothing was created");
}
