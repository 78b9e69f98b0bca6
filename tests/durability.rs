//! Crash recovery, black-box: paper bots trade, the process is killed with
//! SIGKILL mid-run, and a restart on the same data directory brings back
//! every acknowledged trade, position, open order, config version, audit
//! entry and the risk state, with event sequence numbers still rising.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use stratbox_tests::server::{ADMIN_TOKEN, Client, Options, Server, bot_yaml};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The last sequence number a WebSocket client sees within `window` of
/// its first numbered event.
async fn last_seq(server: &Server, window: Duration) -> u64 {
    let mut request = format!("{}/api/v1/ws", server.base.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_TOKEN}").parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
        .send(Message::Text(r#"{"op":"subscribe"}"#.into()))
        .await
        .unwrap();
    // Until the first numbered event (however busy the machine), then
    // for `window` more.
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut last = 0;
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, socket.next()).await {
        if let Message::Text(text) = message {
            let event: Value = serde_json::from_str(&text).unwrap();
            let seq = event["seq"].as_u64().unwrap_or(0);
            if last == 0 && seq > 0 {
                deadline = tokio::time::Instant::now() + window;
            }
            last = last.max(seq);
        }
    }
    last
}

fn items(body: &Value) -> Vec<Value> {
    body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn nothing_acknowledged_is_lost_after_kill_9() {
    let stays = bot_yaml("stays", true) + "on_restart: stop\n";
    let server = Server::start(Options {
        bots: vec![
            ("stays.yaml".into(), stays),
            ("resumes.yaml".into(), bot_yaml("resumes", true)),
        ],
        ..Options::default()
    });
    let client = Client::admin();
    let url = |path: &str| server.url(path);
    for bot in ["stays", "resumes"] {
        server
            .wait_for("two closed trades", Duration::from_secs(60), || async {
                items(&client.get(&url(&format!("/bots/{bot}/trades"))).await.1).len() >= 2
            })
            .await;
    }

    // Freeze `stays`: stopped, a config change, a resting manual order.
    let (status, _) = client.post(&url("/bots/stays/stop")).await;
    assert_eq!(status, 200);
    let (_, config) = client.get(&url("/bots/stays/config")).await;
    let mut changed = config.clone();
    changed["risk"]["max_open_orders"] = json!(7);
    assert_eq!(
        client
            .put_json(&url("/bots/stays/config"), &changed)
            .await
            .0,
        200
    );
    let (status, order) = client
        .post_json(
            &url("/bots/stays/orders"),
            &json!({ "side": "buy", "kind": "limit", "quantity": "10", "price": "1" }),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let (_, before) = client.get(&url("/bots/stays/status")).await;
    let (_, trades_before) = client.get(&url("/bots/stays/trades?limit=1000")).await;
    let (_, resumes_trades_before) = client.get(&url("/bots/resumes/trades?limit=1000")).await;
    let (_, resumes_before) = client.get(&url("/bots/resumes/status")).await;
    let (_, audit_before) = client.get(&url("/audit?limit=1000")).await;
    let (_, candles_before) = client
        .get(&url("/market/candles?symbol=BTCUSDT&timeframe=1m&limit=50"))
        .await;
    let seq_before = last_seq(&server, Duration::from_millis(500)).await;
    assert!(seq_before > 0);

    // SIGKILL while `resumes` trades, then start again on the same data.
    let server = server.restart();
    let url = |path: &str| server.url(path);

    let (_, after) = client.get(&url("/bots/stays/status")).await;
    assert_eq!(after["state"], "stopped");
    for field in [
        "balance",
        "equity",
        "position",
        "realized_pnl",
        "fees_paid",
        "config_version",
        "candles_processed",
    ] {
        assert_eq!(after[field], before[field], "{field}: {before} / {after}");
    }
    assert_eq!(
        after["open_orders"], before["open_orders"],
        "the resting order, same id, not sent twice"
    );
    assert_eq!(after["open_orders"][0]["id"], order["id"]);
    let (_, trades_after) = client.get(&url("/bots/stays/trades?limit=1000")).await;
    assert_eq!(trades_after["items"], trades_before["items"]);
    let (_, versions) = client.get(&url("/bots/stays/config/versions")).await;
    assert_eq!(items(&versions).len(), 2);

    // `resumes` runs again; every trade it had acknowledged is still there, once.
    let (_, resumes_after) = client.get(&url("/bots/resumes/status")).await;
    assert_eq!(resumes_after["state"], "running", "{resumes_after}");
    assert!(
        resumes_after["candles_processed"].as_u64() >= resumes_before["candles_processed"].as_u64()
    );
    let (_, resumes_trades_after) = client.get(&url("/bots/resumes/trades?limit=1000")).await;
    let before_items = items(&resumes_trades_before);
    let after_items = items(&resumes_trades_after);
    assert!(after_items.len() >= before_items.len());
    assert_eq!(
        &after_items[..before_items.len()],
        &before_items[..],
        "a prefix: nothing lost or duplicated"
    );

    let (_, audit_after) = client.get(&url("/audit?limit=1000")).await;
    let audit_after = items(&audit_after);
    for entry in items(&audit_before) {
        assert!(audit_after.contains(&entry), "audit entry lost: {entry}");
    }
    // The feed resumes after its last stored candle (no jump back in time
    // or price), and restored bots warmed up on the stored candles.
    let (_, candles_after) = client
        .get(&url(
            "/market/candles?symbol=BTCUSDT&timeframe=1m&limit=5000",
        ))
        .await;
    let after_items = items(&candles_after);
    let times: Vec<&str> = after_items
        .iter()
        .map(|c| c["at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
    let last_before = items(&candles_before).last().cloned().unwrap();
    assert!(
        after_items.contains(&last_before),
        "history kept across the restart"
    );
    // `resumes` went on after the last candle it processed, through the
    // candles its feed kept before the crash: no jump in what it saw.
    server
        .wait_for(
            "candles after the restart",
            Duration::from_secs(30),
            || async {
                let (_, now) = client.get(&url("/bots/resumes/status")).await;
                now["candles_processed"].as_u64() > resumes_after["candles_processed"].as_u64()
            },
        )
        .await;
    let (_, warnings) = client.get(&url("/bots/resumes/logs?level=warn")).await;
    assert!(
        !items(&warnings).iter().any(|l| l["message"]
            .as_str()
            .unwrap_or_default()
            .contains("feed gap")),
        "{warnings}"
    );
    // Log lines survive too.
    let (_, logs) = client.get(&url("/bots/stays/logs?level=info")).await;
    assert!(
        items(&logs).iter().any(|l| l["message"]
            .as_str()
            .unwrap_or_default()
            .contains("running -> stopped")),
        "{logs}"
    );
    let seq_after = last_seq(&server, Duration::from_millis(800)).await;
    assert!(
        seq_after > seq_before,
        "sequence numbers keep rising: {seq_before} then {seq_after}"
    );
}

#[tokio::test]
async fn killed_bots_stay_killed_across_a_crash() {
    let server = Server::start(Options {
        bots: vec![("k.yaml".into(), bot_yaml("killed-bot", true))],
        ..Options::default()
    });
    let client = Client::admin();
    server
        .wait_for("candles", Duration::from_secs(30), || async {
            client.get(&server.url("/bots/killed-bot/status")).await.1["candles_processed"]
                .as_u64()
                .unwrap_or(0)
                > 30
        })
        .await;
    let (status, killed) = client.post(&server.url("/bots/killed-bot/kill")).await;
    assert_eq!((status, killed["state"].as_str()), (200, Some("killed")));
    let server = server.restart();
    let (_, risk) = client.get(&server.url("/bots/killed-bot/risk")).await;
    assert_eq!(risk["kill_switch"]["engaged"], true, "{risk}");
    assert_eq!(risk["trading_state"], "HALTED");
    let (_, status_body) = client.get(&server.url("/bots/killed-bot/status")).await;
    assert_eq!(status_body["state"], "killed");
    assert_eq!(status_body["position"], "0");
}

#[tokio::test]
async fn an_unusable_data_directory_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("stratbox.sqlite3"), vec![0x5a; 4096]).unwrap();
    let run = std::process::Command::new(stratbox_tests::binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("STRATBOX_CACHE_DIR", dir.path().join("cache"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error: cannot start"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let run = std::process::Command::new(stratbox_tests::binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(file.join("data"))
        .env("STRATBOX_CACHE_DIR", dir.path().join("cache"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot use data directory"), "{stderr}");
    // The file itself given as the data directory: said as what it is.
    let run = std::process::Command::new(stratbox_tests::binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("it is a file, not a folder"), "{stderr}");
}

#[tokio::test]
async fn a_crash_during_config_changes_restores_a_config_and_a_checkpoint_of_one_version() {
    let mut server = Server::start(Options {
        bots: vec![("a.yaml".into(), bot_yaml("swapped", true))],
        ..Options::default()
    });
    let client = Client::admin();
    let mut acknowledged = 0u64;
    for round in 0..4u64 {
        // Config changes as fast as they are answered, while the bot trades.
        let url = server.url("/bots/swapped/config");
        let putter = {
            let client = client.clone();
            tokio::spawn(async move {
                let mut highest = 0u64;
                for n in 0.. {
                    let slow = 8 + (n % 5);
                    let body = json!({
                        "name": format!("swap {round}.{n}"),
                        "strategy": { "plugin": "ema-cross", "params": { "fast": 3, "slow": slow } },
                        "market": { "symbol": "BTCUSDT", "timeframe": "1m", "feed": { "kind": "synthetic", "seed": 7, "interval_ms": 10 } },
                        "capital": { "quote": "USDT", "initial": "10000" },
                        "autostart": true
                    });
                    let Ok(response) = client
                        .request(reqwest::Method::PUT, &url)
                        .json(&body)
                        .send()
                        .await
                    else {
                        break;
                    };
                    if response.status() != 200 {
                        break;
                    }
                    let answer: Value = response.json().await.unwrap_or_default();
                    highest = highest.max(answer["version"].as_u64().unwrap_or(0));
                }
                highest
            })
        };
        // Kill at some instant of the stream of changes.
        tokio::time::sleep(Duration::from_millis(150 + 173 * round)).await;
        server = server.restart(); // SIGKILL, then the same data directory
        acknowledged = acknowledged.max(putter.await.unwrap_or(0));
        // The bot came back (its stored state and config are of one
        // version, or it would have been refused), at a version at least
        // as new as every acknowledged change, and its config history ends
        // with the version in force.
        let (status, bot) = client.get(&server.url("/bots/swapped")).await;
        assert_eq!(status, 200, "restored after round {round}: {bot}");
        let version = bot["config_version"].as_u64().unwrap();
        assert!(version >= acknowledged, "{version} < {acknowledged}");
        let (_, versions) = client
            .get(&server.url("/bots/swapped/config/versions?limit=1"))
            .await;
        assert_eq!(versions["items"][0]["version"], version, "{versions}");
        assert_eq!(
            versions["items"][0]["config"]["name"], bot["config"]["name"],
            "the config in force is the stored one"
        );
    }
    assert!(acknowledged > 4, "changes were made: {acknowledged}");
}

/// A config change for `swapped`, named `name`.
fn renamed(name: &str) -> Value {
    json!({
        "name": name,
        "strategy": { "plugin": "ema-cross", "params": { "fast": 3, "slow": 9 } },
        "market": { "symbol": "BTCUSDT", "timeframe": "1m", "feed": { "kind": "synthetic", "seed": 7, "interval_ms": 10 } },
        "capital": { "quote": "USDT", "initial": "10000" },
        "autostart": true
    })
}

/// PUT a config change to a server set to crash on the way: no answer
/// comes, and the process ends.
async fn put_into_a_crash(server: &mut Server, client: &Client, name: &str) {
    let answer = client
        .request(reqwest::Method::PUT, &server.url("/bots/swapped/config"))
        .json(&renamed(name))
        .send()
        .await;
    assert!(answer.is_err(), "no answer from a crashed host: {answer:?}");
    assert!(server.exited_within(Duration::from_secs(10)), "it crashed");
}

/// The running bot `swapped` has config `version` (named `name`) in force,
/// and it is the newest version stored.
async fn in_force_and_newest_stored(server: &Server, client: &Client, version: u64, name: &str) {
    let (_, bot) = client.get(&server.url("/bots/swapped")).await;
    assert_eq!(bot["config_version"], version, "{bot}");
    assert_eq!(bot["config"]["name"], name);
    assert_eq!(bot["state"], "running");
    let (_, versions) = client
        .get(&server.url("/bots/swapped/config/versions"))
        .await;
    assert_eq!(versions["items"][0]["version"], version, "{versions}");
    assert_eq!(items(&versions).len() as u64, version, "{versions}");
}

#[tokio::test]
async fn a_crash_at_either_side_of_a_config_commit_restores_one_version() {
    let crash_at = |point: &str| vec![("STRATBOX_CRASH_AT".to_string(), point.to_string())];
    let mut server = Server::start(Options {
        bots: vec![("a.yaml".into(), bot_yaml("swapped", true))],
        env: crash_at("config-swapped"),
        ..Options::default()
    });
    let client = Client::admin();
    // Swapped in memory, not committed: the old config comes back, with
    // the checkpoint it was committed with, and the version is not spent.
    put_into_a_crash(&mut server, &client, "never stored").await;
    let mut server = server.restart_with(&crash_at("command-committed"));
    in_force_and_newest_stored(&server, &client, 1, "Test bot swapped").await;
    // Committed, never answered: the new config comes back, stored with
    // its checkpoint.
    put_into_a_crash(&mut server, &client, "stored, not answered").await;
    let server = server.restart();
    in_force_and_newest_stored(&server, &client, 2, "stored, not answered").await;
    // And it goes on from there.
    let answer = client
        .request(reqwest::Method::PUT, &server.url("/bots/swapped/config"))
        .json(&renamed("after the crashes"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["version"], 3, "{answer}");
}
