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

/// Until the fake has answered `count` SUBSCRIBE requests (a candle pushed
/// before would reach no one).
async fn wait_for_subscriptions(fake: &FakeBinance, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while fake.stream_subscriptions() < count {
        assert!(Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
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
    wait_for_subscriptions(&fake, 1).await;
    for _ in 0..3 {
        fake.close("BTCUSDT", "1m", true);
    }
    wait_for_candles(&server, 3).await;

    let subscribed = fake.stream_subscriptions();
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
    wait_for_subscriptions(&fake, subscribed + 1).await;
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

const API_KEY: &str = "fake-api-key-abcdefghijklmnopqrstuvwxyz0123";
const API_SECRET: &str = "fake-secret-ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210";

/// The bot `live-spot` as its operator writes it: paper first, on the
/// testnet (here the fake), its credentials in a file of the server's
/// secrets folder. Its rules buy 10 % of equity at market whenever flat.
fn live_spot_bot(fake: &FakeBinance, mode: &str) -> Value {
    json!({
        "id": "live-spot", "name": "Spot on the testnet",
        "strategy": { "plugin": "rules", "params": {
            "entry": { "above": { "left": { "price": "close" }, "right": 0 } },
            "size_pct": 10
        } },
        "market": { "symbol": "BTCUSDT", "timeframe": "1m", "feed": {
            "kind": "binance", "network": "testnet", "rest_url": fake.rest_url(),
            "stream_url": fake.stream_url(), "ws_api_url": fake.ws_api_url()
        } },
        "mode": mode,
        "account": { "credentials_file": "testnet.yaml" },
        "capital": { "quote": "USDT", "initial": "1000" }
    })
}

/// The fake Binance (a market, an account holding 5,000 USDT) and a server
/// allowed to reach it, logging at `log`, with the account's credentials
/// in its secrets folder.
async fn live_setup(log: &str) -> (FakeBinance, Server) {
    let fake = FakeBinance::start().await;
    fake.add_market("BTCUSDT", "1m", 60);
    fake.add_account(API_KEY, API_SECRET, "BTCUSDT");
    fake.set_balance("USDT", 5_000.0);
    let defaults = Options::default();
    let server = Server::start(Options {
        settings: format!(
            "{}binance_urls: ['{}', '{}', '{}']\n",
            defaults.settings,
            fake.rest_url(),
            fake.stream_url(),
            fake.ws_api_url()
        ),
        log: log.into(),
        ..defaults
    });
    std::fs::write(
        server.data_path().join("secrets").join("testnet.yaml"),
        format!("api_key: {API_KEY}\napi_secret: {API_SECRET}\n"),
    )
    .unwrap();
    (fake, server)
}

/// Bot `id` once `check` holds (within 20 s).
async fn bot_state(server: &Server, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, bot) = Client::admin()
            .get(&server.url(&format!("/bots/{id}")))
            .await;
        if check(&bot) {
            return bot;
        }
        assert!(Instant::now() < deadline, "{what}: {bot}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The client order id of the order resting on the fake (once it got there).
async fn resting_order(fake: &FakeBinance) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((cid, _)) = fake
            .orders()
            .into_iter()
            .find(|(_, status)| status == "NEW")
        {
            return cid;
        }
        assert!(Instant::now() < deadline, "the order never reached Binance");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Everything a client can read of the bot, as text.
async fn everything_shown(server: &Server) -> String {
    let client = Client::admin();
    let mut shown = String::new();
    for path in [
        "/bots/live-spot",
        "/bots/live-spot/config",
        "/bots/live-spot/config/versions",
        "/bots/live-spot/orders",
        "/bots/live-spot/fills",
        "/bots/live-spot/logs",
        "/bots",
    ] {
        let (status, body) = client.get(&server.url(path)).await;
        assert_eq!(status, 200, "{path}: {body}");
        shown.push_str(&body.to_string());
    }
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_bot_trades_on_the_testnet_once_per_order_reconciles_and_never_shows_its_secret() {
    let (fake, server) = live_setup("info").await;
    // Every event of every channel, kept.
    let mut socket = events(&server).await;
    let all = json!({ "op": "subscribe", "channels": ["bots", "signals", "orders", "positions", "trades", "risk", "logs", "system"] });
    socket
        .send(Message::Text(all.to_string().into()))
        .await
        .unwrap();
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let sink = heard.clone();
    let listener = tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_str(&text).unwrap());
            }
        }
    });
    let client = Client::admin();

    // Paper first; live is one field, changed while stopped.
    let (status, created) = client
        .post_json(&server.url("/bots"), &live_spot_bot(&fake, "paper"))
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, changed) = client
        .put_json(
            &server.url("/bots/live-spot/config"),
            &live_spot_bot(&fake, "live"),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    let (status, started) = client.post(&server.url("/bots/live-spot/start")).await;
    assert_eq!(status, 200, "{started}");
    let bot = bot_state(&server, "live-spot", "connected", |_| {
        fake.account_subscriptions() >= 1 && fake.connections_open() >= 1
    })
    .await;
    assert_eq!(bot["mode"], "live", "{bot}");

    // The strategy buys on the first closed candle: sent once, filled in
    // two trades from the placement's answer and the account stream, each
    // booked once.
    fake.close("BTCUSDT", "1m", true);
    let bot = bot_state(&server, "live-spot", "bought", |bot| {
        bot["position"].as_str().is_some_and(|p| p != "0") && bot["open_orders"] == json!([])
    })
    .await;
    // (The fake's clock follows its candles, so the first POST after a
    // close may meet -1021: refused before matching, resynced, sent again.)
    let taken: Vec<_> = fake
        .order_posts()
        .into_iter()
        .filter(|(_, status)| *status == 200)
        .collect();
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(fake.orders().len(), 1);
    let bought: f64 = bot["position"].as_str().unwrap().parse().unwrap();
    assert!(
        (0.9..1.0).contains(&bought),
        "10 % of 1,000 USDT at ~100: {bot}"
    );
    let (_, fills) = client.get(&server.url("/bots/live-spot/fills")).await;
    let fills = fills["items"].as_array().expect("fills").clone();
    assert_eq!(fills.len(), 2, "two trades, each once: {fills:?}");
    assert!(fills.iter().all(|fill| fill["price"] == "100"), "{fills:?}");
    // Cash: 1,000 - notional - the fake's 0.1 % commission in USDT.
    let spent = bought * 100.0 * 1.001;
    let cash: f64 = bot["balance"].as_str().unwrap().parse().unwrap();
    assert!((cash - (1_000.0 - spent)).abs() < 1e-6, "{bot}");

    // A resting limit sell filled in parts by the exchange; a repeated
    // stream event books nothing.
    let quantity = bot["position"].as_str().unwrap().to_string();
    let (status, placed) = client
        .post_json(
            &server.url("/bots/live-spot/orders"),
            &json!({ "side": "sell", "kind": "limit", "quantity": quantity, "price": "150" }),
        )
        .await;
    assert_eq!(status, 201, "{placed}");
    let order_id = placed["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an order: {placed}"))
        .to_string();
    let resting = resting_order(&fake).await;
    fake.fill_order(&resting, "0.40000000");
    fake.repeat_last_account_event();
    let bot = bot_state(&server, "live-spot", "partly sold", |bot| {
        bot["open_orders"][0]["filled_quantity"] == "0.4"
    })
    .await;
    let left: f64 = bot["position"].as_str().unwrap().parse().unwrap();
    assert!((left - (bought - 0.4)).abs() < 1e-9, "{bot}");
    // (The event is published when the book is, but reaches this test's
    // listener through the server's socket task and its own.)
    let deadline = Instant::now() + Duration::from_secs(10);
    while !heard.lock().unwrap().iter().any(|event| {
        event["type"] == "order.filled"
            && event["data"]["order"]["status"] == "open"
            && event["data"]["order"]["filled_quantity"] == "0.4"
    }) {
        assert!(
            Instant::now() < deadline,
            "a partial fill is an order.filled of an open order"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Cancelled by the operator: the order stays open until Binance
    // confirms, then closes with its partial fill.
    let (status, cancelled) = client
        .delete(&server.url(&format!("/bots/live-spot/orders/{order_id}")))
        .await;
    assert!(status == 200 || status == 202, "{status} {cancelled}");
    bot_state(&server, "live-spot", "cancelled", |bot| {
        bot["open_orders"] == json!([])
    })
    .await;
    let (_, order) = client
        .get(&server.url(&format!("/bots/live-spot/orders/{order_id}")))
        .await;
    assert_eq!(order["status"], "cancelled", "{order}");
    assert_eq!(order["filled_quantity"], "0.4", "{order}");
    assert_eq!(order["reason"], "cancelled by the operator", "{order}");

    // Another limit sell rests; the host dies; Binance fills it meanwhile.
    // After the restart the link reconciles the order (queried by its
    // client order id, trades from myTrades) before the bot trades again.
    let rest = bot["position"].as_str().unwrap().to_string();
    let (status, placed) = client
        .post_json(
            &server.url("/bots/live-spot/orders"),
            &json!({ "side": "sell", "kind": "limit", "quantity": rest, "price": "120" }),
        )
        .await;
    assert_eq!(status, 201, "{placed}");
    let resting = resting_order(&fake).await;
    listener.abort();
    let mut shown = everything_shown(&server).await;
    for event in heard.lock().unwrap().iter() {
        shown.push_str(&event.to_string());
    }
    let mut logged = server.stderr.lock().unwrap().join("\n");
    let server = server.restart();
    fake.fill_order(&resting, &format!("{rest}0"));
    let bot = bot_state(
        &server,
        "live-spot",
        "reconciled after the restart",
        |bot| bot["open_orders"] == json!([]) && bot["position"] == "0",
    )
    .await;
    assert_eq!(
        bot["state"], "stopped",
        "live bots come back stopped: {bot}"
    );
    let orders = fake.orders();
    assert_eq!(orders.len(), 3, "no order was ever taken twice: {orders:?}");
    let (_, trades) = client.get(&server.url("/bots/live-spot/trades")).await;
    assert_eq!(
        trades["items"].as_array().map(Vec::len),
        Some(1),
        "{trades}"
    );

    // The secret and the key: never in an answer, an event or a log line.
    shown.push_str(&everything_shown(&server).await);
    logged.push_str(&server.stderr.lock().unwrap().join("\n"));
    assert!(
        logged.contains("live-spot") && logged.contains("key=***0123"),
        "the logs were captured, the key shown masked: {logged}"
    );
    for (what, text) in [("answers and events", &shown), ("logs", &logged)] {
        assert!(!text.contains(API_SECRET), "the secret is in the {what}");
        assert!(!text.contains(API_KEY), "the API key is in the {what}");
    }
}

/// A running live bot whose strategy never trades (manual orders only),
/// after one closed candle (a price to size market orders by).
async fn quiet_live_bot(fake: &FakeBinance, server: &Server, id: &str, capital: &str) -> Value {
    let mut config = live_spot_bot(fake, "live");
    config["id"] = json!(id);
    config["strategy"]["params"]["entry"] =
        json!({ "below": { "left": { "price": "close" }, "right": 0 } });
    config["capital"]["initial"] = json!(capital);
    config["autostart"] = json!(true);
    let (status, created) = Client::admin()
        .post_json(&server.url("/bots"), &config)
        .await;
    assert_eq!(status, 201, "{created}");
    created
}

async fn order(server: &Server, id: &str, body: Value) -> (u16, Value) {
    Client::admin()
        .post_json(&server.url(&format!("/bots/{id}/orders")), &body)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_bot_refuses_by_filter_resolves_unknown_orders_and_stops_on_429_and_418() {
    use stratbox_tests::fake_binance_trading::OrderScript;
    let (fake, server) = live_setup("warn").await;

    // A bot whose capital the account cannot cover stops before trading.
    quiet_live_bot(&fake, &server, "too-rich", "100000").await;
    let failed = bot_state(&server, "too-rich", "error", |bot| bot["state"] == "error").await;
    let reason = failed["error"].as_str().unwrap_or_default();
    assert!(reason.contains("less than the bot's cash"), "{failed}");

    quiet_live_bot(&fake, &server, "manual", "1000").await;
    bot_state(&server, "manual", "ready", |_| {
        fake.account_subscriptions() >= 2
    })
    .await;
    fake.close("BTCUSDT", "1m", true);
    bot_state(&server, "manual", "a candle", |bot| {
        bot["candles_processed"] == 1
    })
    .await;

    // Every filter is checked before sending: a limit buy far above the
    // price breaks PERCENT_PRICE_BY_SIDE and is refused by name.
    let posts = fake.order_posts().len();
    let (status, problem) = order(
        &server,
        "manual",
        json!({ "side": "buy", "kind": "limit", "quantity": "0.1", "price": "1000" }),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem.to_string().contains("PERCENT_PRICE_BY_SIDE"),
        "{problem}"
    );
    assert_eq!(fake.order_posts().len(), posts, "nothing was sent");

    // -1007: the exchange took the order but the answer says "unknown".
    // Never sent again: found by its client order id, its fills booked.
    fake.script_order(OrderScript::UnknownStatus);
    let (status, placed) = order(
        &server,
        "manual",
        json!({ "side": "buy", "quantity": "0.5" }),
    )
    .await;
    assert_eq!(status, 201, "{placed}");
    bot_state(&server, "manual", "resolved by query", |bot| {
        bot["position"] == "0.5" && bot["open_orders"] == json!([])
    })
    .await;
    let taken = fake.orders().len();
    assert_eq!(taken, 1, "sent once: {:?}", fake.order_posts());

    // 429, then 418: nothing sent, the order closes saying until when, and
    // new orders are refused (check `rate_limit`) until Retry-After.
    for (banned, code) in [(false, 429), (true, 418)] {
        // (Long enough for the checks below on a busy machine.)
        fake.script_order(OrderScript::RateLimited {
            banned,
            retry_after: 5,
        });
        let (status, placed) = order(
            &server,
            "manual",
            json!({ "side": "buy", "quantity": "0.1" }),
        )
        .await;
        assert_eq!(status, 201, "{placed}");
        let id = placed["id"].as_str().unwrap().to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        let closed = loop {
            let (_, detail) = Client::admin()
                .get(&server.url(&format!("/bots/manual/orders/{id}")))
                .await;
            if detail["status"] == "cancelled" {
                break detail;
            }
            assert!(Instant::now() < deadline, "{code}: {detail}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let reason = closed["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("until"), "{code}: {closed}");
        let (status, problem) = order(
            &server,
            "manual",
            json!({ "side": "buy", "quantity": "0.1" }),
        )
        .await;
        assert_eq!(status, 422, "{code}: {problem}");
        let text = problem.to_string();
        assert!(
            text.contains("rate_limit") && text.contains("until"),
            "{text}"
        );
        assert_eq!(fake.orders().len(), taken, "{code}: nothing was taken");
        tokio::time::sleep(Duration::from_millis(5_100)).await;
    }
    let (status, placed) = order(
        &server,
        "manual",
        json!({ "side": "buy", "quantity": "0.1" }),
    )
    .await;
    assert_eq!(status, 201, "orders go again after Retry-After: {placed}");
    bot_state(&server, "manual", "bought again", |bot| {
        bot["position"] == "0.6"
    })
    .await;

    // A protective stop goes to Binance as a STOP_LOSS order. One that
    // would trigger at once (above the last price, about 100) is refused
    // first, as Binance would.
    let posts = fake.order_posts().len();
    let (status, problem) = order(
        &server,
        "manual",
        json!({ "side": "sell", "kind": "stop", "quantity": "0.6", "price": "200" }),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem.to_string().contains("stop price"), "{problem}");
    assert_eq!(fake.order_posts().len(), posts, "nothing was sent");
    let (status, placed) = order(
        &server,
        "manual",
        json!({ "side": "sell", "kind": "stop", "quantity": "0.6", "price": "90", "reduce_only": true }),
    )
    .await;
    assert_eq!(status, 201, "{placed}");
    let stop = resting_order(&fake).await;
    let sent = fake.order(&stop).expect("the stop on the exchange");
    assert_eq!(sent["type"], "STOP_LOSS", "{sent}");
    assert_eq!(sent["stopPrice"], "90", "{sent}");
    assert_eq!(sent["side"], "SELL", "{sent}");
    bot_state(&server, "manual", "the stop resting", |bot| {
        bot["open_orders"][0]["kind"] == "stop" && bot["position"] == "0.6"
    })
    .await;
    // Binance holds the stop's coins: a take-profit for them too is
    // refused here, before Binance would refuse it.
    let posts = fake.order_posts().len();
    let (status, problem) = order(
        &server,
        "manual",
        json!({ "side": "sell", "kind": "limit", "quantity": "0.6", "price": "150" }),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem.to_string().contains("balance"), "{problem}");
    assert_eq!(fake.order_posts().len(), posts, "nothing was sent");
    // The price falls through it: Binance fills part of it at its stop
    // price.
    fake.fill_order(&stop, "0.2");
    bot_state(&server, "manual", "partly stopped out", |bot| {
        bot["position"] == "0.4" && bot["open_orders"][0]["filled_quantity"] == "0.2"
    })
    .await;
    // An exit at market: the stop's cancel goes first (Binance would
    // refuse the sell while the stop holds the coins), then the sell.
    let (status, placed) = order(
        &server,
        "manual",
        json!({ "side": "sell", "quantity": "0.4" }),
    )
    .await;
    assert_eq!(status, 201, "{placed}");
    bot_state(&server, "manual", "out", |bot| {
        bot["position"] == "0" && bot["open_orders"] == json!([])
    })
    .await;
    let cancelled = fake.order(&stop).expect("the stop");
    assert_eq!(cancelled["status"], "CANCELED", "{cancelled}");
    // No order reached Binance only to be refused (-2010 and the like;
    // "?" marks a request refused at its signature or timestamp, which
    // the fake's candle clock causes after a close).
    let posts = fake.order_posts();
    assert!(
        !posts.iter().any(|(id, status)| *status == 400 && id != "?"),
        "{posts:?}"
    );
}
