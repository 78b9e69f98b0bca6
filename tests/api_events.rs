//! Real-time events over the WebSocket and Server-Sent Events: both ways of
//! authenticating, sequence order, subscription filters and limits,
//! resuming after a reconnect, heartbeats.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use stratbox_tests::server::{ADMIN_TOKEN, Client, Options, Server, bot_yaml};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_url(server: &Server) -> String {
    format!("{}/api/v1/ws", server.base.replace("http://", "ws://"))
}

async fn connect_with_header(server: &Server) -> Socket {
    let mut request = ws_url(server).into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_TOKEN}").parse().unwrap(),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connects");
    socket
}

async fn connect_browser_style(server: &Server, token: &str) -> Socket {
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url(server))
        .await
        .expect("connects");
    send(&mut socket, json!({ "op": "auth", "token": token })).await;
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON message, or None when the socket closes (or 15 s pass).
async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(15), socket.next())
            .await
            .ok()??
            .ok()?;
        match message {
            Message::Text(text) => return Some(serde_json::from_str(&text).unwrap()),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// Messages until one of `type` arrives; that one.
async fn until_type(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let message = next(socket)
            .await
            .unwrap_or_else(|| panic!("closed before {kind}"));
        if message["type"] == kind {
            return message;
        }
    }
}

#[tokio::test]
async fn websocket_delivers_order_and_trade_events_in_sequence_and_resumes() {
    let server = Server::start(Options {
        bots: vec![
            ("a.yaml".into(), bot_yaml("ws-a", true)),
            ("b.yaml".into(), bot_yaml("ws-b", true)),
        ],
        ..Options::default()
    });
    let mut socket = connect_with_header(&server).await;
    let hello = next(&mut socket).await.unwrap();
    assert_eq!(hello["type"], "authenticated", "{hello}");
    send(
        &mut socket,
        json!({ "op": "subscribe", "channels": ["orders", "trades"], "bots": ["ws-a"] }),
    )
    .await;
    let subscribed = until_type(&mut socket, "subscribed").await;
    assert_eq!(subscribed["id"], 1);

    let mut seqs = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    while !(kinds.contains("trade") && kinds.contains("order.filled")) {
        let event = next(&mut socket).await.expect("events keep coming");
        if event["type"] == "heartbeat" {
            continue;
        }
        assert_eq!(event["bot_id"], "ws-a", "the bot filter holds: {event}");
        let channel = event["channel"].as_str().unwrap();
        assert!(channel == "orders" || channel == "trades", "{event}");
        assert!(event["ts"].as_str().unwrap().ends_with('Z'));
        seqs.push(event["seq"].as_u64().unwrap());
        kinds.insert(event["type"].as_str().unwrap().to_string());
        assert!(seqs.len() < 5_000, "no trade after {} events", seqs.len());
    }
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequence order: {seqs:?}"
    );
    let last_seen = *seqs.last().unwrap();
    drop(socket);

    // Reconnect (browser-style auth), resume after the last event seen, on
    // an unfiltered subscription: exactly `last_seen + 1` onwards arrives,
    // every number once, in order.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut socket = connect_browser_style(&server, ADMIN_TOKEN).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "authenticated");
    send(&mut socket, json!({ "op": "subscribe" })).await;
    until_type(&mut socket, "subscribed").await;
    send(
        &mut socket,
        json!({ "op": "resume", "after_seq": last_seen }),
    )
    .await;
    until_type(&mut socket, "resumed").await;
    let mut resumed = Vec::new();
    while resumed.len() < 200 {
        let event = next(&mut socket).await.expect("replayed and live events");
        if event.get("seq").is_none() {
            continue; // heartbeats and other control messages
        }
        resumed.push(event["seq"].as_u64().unwrap());
    }
    let expected: Vec<u64> = (last_seen + 1..).take(resumed.len()).collect();
    assert_eq!(resumed, expected, "gap-free from last_seen + 1");

    // A resume point beyond the last event is refused; the socket goes on.
    send(
        &mut socket,
        json!({ "op": "resume", "after_seq": u64::MAX }),
    )
    .await;
    let refused = until_type(&mut socket, "error").await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("not been reached"),
        "{refused}"
    );

    // Unsubscribing what does not exist is an error; without an id, every
    // subscription goes, and heartbeats come while nothing is subscribed.
    send(&mut socket, json!({ "op": "unsubscribe", "id": 999 })).await;
    let refused = until_type(&mut socket, "error").await;
    assert_eq!(refused["message"], "no subscription 999", "{refused}");
    send(&mut socket, json!({ "op": "unsubscribe" })).await;
    let beat = until_type(&mut socket, "heartbeat").await;
    assert!(beat["last_seq"].as_u64().unwrap() >= last_seen);
}

#[tokio::test]
async fn websocket_refuses_bad_auth_bad_messages_and_too_many_subscriptions() {
    let server = Server::start(Options::default());

    let mut socket = connect_browser_style(&server, "wrong-token").await;
    let refused = next(&mut socket).await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["message"], "invalid or revoked token", "{refused}");
    assert!(next(&mut socket).await.is_none(), "closed");

    // No auth message at all: closed after the auth timeout.
    let (mut silent, _) = tokio_tungstenite::connect_async(ws_url(&server))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let first = next(&mut silent).await.unwrap();
    assert_eq!(first["type"], "error");
    assert!(next(&mut silent).await.is_none());
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "waited for the token"
    );

    let mut socket = connect_with_header(&server).await;
    until_type(&mut socket, "authenticated").await;
    send(
        &mut socket,
        json!({ "op": "subscribe", "channels": ["nonsense"] }),
    )
    .await;
    let error = until_type(&mut socket, "error").await;
    assert!(
        error["message"].as_str().unwrap().contains("bad message"),
        "{error}"
    );
    for _ in 0..10 {
        send(
            &mut socket,
            json!({ "op": "subscribe", "channels": ["bots"] }),
        )
        .await;
        until_type(&mut socket, "subscribed").await;
    }
    send(
        &mut socket,
        json!({ "op": "subscribe", "channels": ["bots"] }),
    )
    .await;
    let error = until_type(&mut socket, "error").await;
    assert!(
        error["message"].as_str().unwrap().contains("at most 10"),
        "{error}"
    );
}

#[tokio::test]
async fn server_sent_events_stream_and_resume_with_last_event_id() {
    let server = Server::start(Options {
        bots: vec![("a.yaml".into(), bot_yaml("sse-a", true))],
        ..Options::default()
    });
    let client = Client::admin();
    let read_events = |last_event_id: Option<u64>| {
        let client = client.clone();
        let url = server.url("/events?channels=orders&bots=sse-a");
        async move {
            let mut request = client.request(reqwest::Method::GET, &url);
            if let Some(id) = last_event_id {
                request = request.header("last-event-id", id.to_string());
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert!(
                response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/event-stream")
            );
            let mut response = response;
            let mut buffer = String::new();
            let mut ids = Vec::new();
            while ids.len() < 5 {
                let chunk = tokio::time::timeout(Duration::from_secs(15), response.chunk())
                    .await
                    .expect("events arrive")
                    .unwrap()
                    .expect("the stream goes on");
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    if let Some(id) = block.lines().find_map(|l| l.strip_prefix("id: ")) {
                        let data = block
                            .lines()
                            .find_map(|l| l.strip_prefix("data: "))
                            .unwrap();
                        let event: Value = serde_json::from_str(data).unwrap();
                        assert_eq!(event["channel"], "orders");
                        ids.push(id.parse::<u64>().unwrap());
                    }
                }
            }
            ids
        }
    };
    let first = read_events(None).await;
    assert!(first.windows(2).all(|w| w[0] < w[1]), "{first:?}");
    let resumed = read_events(Some(first[1])).await;
    assert_eq!(resumed[0], first[2], "resumes right after the given id");

    // Unfiltered, resuming gives exactly every number after the given one.
    let everything = server.url("/events");
    let ids = |after: Option<u64>| {
        let client = client.clone();
        let url = everything.clone();
        async move {
            let mut request = client.request(reqwest::Method::GET, &url);
            if let Some(id) = after {
                request = request.header("last-event-id", id.to_string());
            }
            let mut response = request.send().await.unwrap();
            let mut buffer = String::new();
            let mut ids = Vec::new();
            while ids.len() < 100 {
                let chunk = tokio::time::timeout(Duration::from_secs(15), response.chunk())
                    .await
                    .expect("events arrive")
                    .unwrap()
                    .expect("the stream goes on");
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    if let Some(id) = block.lines().find_map(|l| l.strip_prefix("id: ")) {
                        ids.push(id.parse::<u64>().unwrap());
                    }
                }
            }
            ids
        }
    };
    let seen = ids(None).await;
    let last_seen = seen[10];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resumed = ids(Some(last_seen)).await;
    let expected: Vec<u64> = (last_seen + 1..).take(resumed.len()).collect();
    assert_eq!(resumed, expected, "gap-free from last_seen + 1");

    // A client-supplied number cannot hurt the server: it is refused, and
    // the bots go on.
    let (status, body) = stratbox_tests::server::send(
        client
            .request(reqwest::Method::GET, &everything)
            .header("last-event-id", u64::MAX.to_string()),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let before = client.get(&server.url("/bots/sse-a/status")).await.1["candles_processed"]
        .as_u64()
        .unwrap();
    server
        .wait_for(
            "candles after the attempt",
            Duration::from_secs(10),
            || async {
                client.get(&server.url("/bots/sse-a/status")).await.1["candles_processed"]
                    .as_u64()
                    .unwrap()
                    > before
            },
        )
        .await;
}

#[tokio::test]
async fn every_event_type_carries_the_rest_view_of_its_thing() {
    let server = Server::start(Options {
        bots: vec![("a.yaml".into(), bot_yaml("views", true))],
        ..Options::default()
    });
    let mut socket = connect_with_header(&server).await;
    until_type(&mut socket, "authenticated").await;
    send(&mut socket, json!({ "op": "subscribe" })).await;
    until_type(&mut socket, "subscribed").await;
    let mut seen = std::collections::BTreeMap::new();
    while !seen.contains_key("order.filled") || !seen.contains_key("trade") {
        let event = next(&mut socket).await.expect("events");
        if let Some(kind) = event["type"]
            .as_str()
            .filter(|_| event.get("seq").is_some())
        {
            seen.insert(kind.to_string(), event.clone());
        }
        assert!(seen.len() < 100);
    }
    let filled = &seen["order.filled"]["data"];
    // The order view and the fill view, as REST answers them.
    assert!(filled["order"]["id"].is_string(), "{filled}");
    assert_eq!(filled["order"]["status"], "filled");
    assert!(
        filled["order"]["created_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(filled["fill"]["price"].is_string());
    assert_eq!(filled["fill"]["order_id"], filled["order"]["id"]);
    let trade = &seen["trade"]["data"];
    assert!(
        trade["pnl"].is_string() && trade["exit_at"].is_string(),
        "{trade}"
    );
    // The same order as GET /bots/{id}/orders/{order_id} answers it.
    let client = Client::admin();
    let id = filled["order"]["id"].as_str().unwrap();
    let (_, detail) = client
        .get(&server.url(&format!("/bots/views/orders/{id}")))
        .await;
    for field in [
        "id",
        "client_tag",
        "side",
        "kind",
        "quantity",
        "status",
        "created_at",
    ] {
        assert_eq!(detail[field], filled["order"][field], "{field}");
    }
    // No engine enum leaks into the payload.
    assert!(filled.get("type").is_none() && filled["order"].get("created_ts").is_none());
}

#[tokio::test]
async fn backtest_jobs_report_progress_and_completion_on_their_channel() {
    let server = Server::start(Options::default());
    stratbox_tests::server::synthetic_data_set(&server, "BTCUSDT", 200_000).await;
    let mut socket = connect_with_header(&server).await;
    until_type(&mut socket, "authenticated").await;
    send(
        &mut socket,
        json!({ "op": "subscribe", "channels": ["backtests"] }),
    )
    .await;
    until_type(&mut socket, "subscribed").await;
    let client = Client::admin();
    let config = json!({
        "id": "bt", "name": "bt",
        "strategy": { "plugin": "ema-cross", "params": { "fast": 3, "slow": 8, "size": { "percent_of_equity": 50 } } },
        "market": { "symbol": "BTCUSDT", "timeframe": "1m" },
        "capital": { "quote": "USDT", "initial": "10000" }
    });
    let (status, job) = client
        .post_json(
            &server.url("/backtests"),
            &json!({ "config": config, "data": "BTCUSDT/1m" }),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap();
    let mut progress = Vec::new();
    let finished = loop {
        let event = next(&mut socket).await.expect("backtest events");
        if event.get("seq").is_none() {
            continue;
        }
        assert_eq!(event["channel"], "backtests", "{event}");
        assert_eq!(event["data"]["id"], id, "{event}");
        match event["type"].as_str().unwrap() {
            "backtest.progress" => {
                assert_eq!(event["data"]["state"], "running");
                progress.push(event["data"]["progress"].as_f64().unwrap());
            }
            "backtest.finished" => break event,
            other => panic!("unexpected {other}"),
        }
    };
    assert!(!progress.is_empty() && progress.len() <= 9, "{progress:?}");
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
    assert!(
        progress.iter().all(|p| *p > 0.0 && *p < 1.0),
        "{progress:?}"
    );
    // The finished event carries the job as GET /backtests/{id} answers it.
    let (_, rest) = client.get(&server.url(&format!("/backtests/{id}"))).await;
    assert_eq!(finished["data"], rest);
    assert_eq!(rest["state"], "done");
}
