//! The control API over HTTP, against the real server on a free port:
//! status codes and shapes of every resource, auth and roles, bad input
//! that changes nothing, config changes in JSON and YAML, idempotent
//! retries, uploads, rate limits and the OpenAPI document.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use stratbox_tests::server::{Client, Options, Server, bot_yaml, send};

fn bot_json(id: &str) -> Value {
    json!({
        "id": id,
        "name": format!("Bot {id}"),
        "strategy": { "plugin": "ema-cross", "params": { "fast": 3, "slow": 8, "size": { "percent_of_equity": 50 } } },
        "market": { "symbol": "BTCUSDT", "timeframe": "1m", "feed": { "kind": "synthetic", "seed": 7, "interval_ms": 10 } },
        "capital": { "quote": "USDT", "initial": "10000" }
    })
}

async fn bot_ids(client: &Client, server: &Server) -> Vec<String> {
    let (status, body) = client.get(&server.url("/bots")).await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect()
}

/// A problem+json answer with `status`; its body.
fn assert_problem(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected, "{body}");
    assert!(
        body["type"].is_string() && body["detail"].is_string(),
        "{body}"
    );
}

fn pointers(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["pointer"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn tokens_roles_and_the_open_health_check() {
    let server = Server::start(Options::default());
    let anonymous = Client::new(None);
    let admin = Client::admin();

    let (status, health) = anonymous.get(&server.url("/health")).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["api_revision"], 1);
    assert!(health["checks"].as_array().unwrap().len() >= 2);

    let (status, body) = anonymous.get(&server.url("/bots")).await;
    assert_problem(status, &body, 401);
    let (status, body) = Client::new(Some("nope")).get(&server.url("/bots")).await;
    assert_problem(status, &body, 401);

    let viewer_token = admin.token(&server, "viewer", "dashboard").await;
    let viewer = Client::new(Some(&viewer_token));
    assert_eq!(viewer.get(&server.url("/bots")).await.0, 200);
    let (status, body) = viewer
        .post_json(&server.url("/bots"), &bot_json("from-viewer"))
        .await;
    assert_problem(status, &body, 403);
    let (status, body) = viewer.get(&server.url("/tokens")).await;
    assert_problem(status, &body, 403);

    // A token's name is one line of text.
    for name in ["", "a\nb", "tab\there"] {
        let (status, body) = admin
            .post_json(
                &server.url("/tokens"),
                &json!({ "role": "viewer", "name": name }),
            )
            .await;
        assert_problem(status, &body, 422);
        assert_eq!(pointers(&body), ["/name"], "{name:?}: {body}");
    }

    // Tokens are listed without their text; revoking takes effect at once.
    let (status, list) = admin.get(&server.url("/tokens")).await;
    assert_eq!(status, 200);
    let entry = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "dashboard")
        .unwrap()
        .clone();
    assert!(entry.get("token").is_none(), "{entry}");
    let id = entry["id"].as_str().unwrap();
    assert_eq!(
        admin.delete(&server.url(&format!("/tokens/{id}"))).await.0,
        204
    );
    let (status, body) = viewer.get(&server.url("/bots")).await;
    assert_problem(status, &body, 401);
    let (status, body) = admin.delete(&server.url(&format!("/tokens/{id}"))).await;
    assert_problem(status, &body, 404);

    // Every mutating call is audited, refused ones too, with who and the result.
    let (status, audit) = admin.get(&server.url("/audit?limit=100")).await;
    assert_eq!(status, 200, "{audit}");
    let entries = audit["items"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["action"] == "POST /api/v1/bots"
            && e["status"] == 403
            && e["actor"] == "dashboard"
            && e["detail"] == "this needs the operator role; the token has viewer"),
        "a refusal keeps its reason: {audit}"
    );
    assert!(
        entries.iter().any(|e| e["action"] == "POST /api/v1/tokens"
            && e["status"] == 201
            && e["target"] == id
            && e["detail"] == "dashboard (viewer)"),
        "a creation names what it made: {audit}"
    );
    assert!(
        entries.iter().any(|e| e["action"]
            .as_str()
            .unwrap()
            .starts_with("DELETE /api/v1/tokens/")
            && e["status"] == 204),
        "{audit}"
    );
}

/// Run `stratbox serve` on a terminal (a pseudo-terminal made by
/// `script`), with no token anywhere; what it printed until it said it
/// serves (the token, if any, comes before), or within a minute.
fn serve_on_a_terminal(data: &std::path::Path) -> String {
    use std::io::BufRead;
    let command = format!(
        "{} serve --listen 127.0.0.1:0 --data-dir {} --plugins-dir {}",
        stratbox_tests::binary().display(),
        data.display(),
        stratbox_tests::path_from_env("STRATBOX_PLUGIN_DIR", "target/plugins").display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .env_remove("STRATBOX_ADMIN_TOKEN")
        .env("STRATBOX_CACHE_DIR", data.join("cache"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("script runs");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, printed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut output = String::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let Ok(line) = printed.recv_timeout(left) else {
            break;
        };
        output.push_str(&line);
        output.push('\n');
        if line.contains("(Ctrl-C to stop)") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    output
}

#[tokio::test]
async fn a_development_token_is_offered_once_and_only_on_a_terminal() {
    // Not on a terminal (a service's log): no token, only how to make one.
    let server = Server::start(Options {
        admin_token: false,
        ..Options::default()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let printed = server.stdout.lock().unwrap().clone();
    assert!(
        !printed.iter().any(|l| l.contains("development_token")),
        "{printed:?}"
    );
    assert_eq!(Client::new(None).get(&server.url("/bots")).await.0, 401);
    drop(server);

    // On a terminal, on the first start of an empty store: once.
    let dir = tempfile::tempdir().unwrap();
    let first = serve_on_a_terminal(&dir.path().join("data"));
    assert!(first.contains("development_token"), "{first}");
    assert!(first.contains("(Ctrl-C to stop)"), "it started: {first}");
    let second = serve_on_a_terminal(&dir.path().join("data"));
    assert!(second.contains("(Ctrl-C to stop)"), "it started: {second}");
    assert!(
        !second.contains("development_token"),
        "shown once, never again: {second}"
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let server = Server::start(Options::default());
    let client = Client::admin();
    let url = server.url("/bots");
    let before = bot_ids(&client, &server).await;
    let raw = |body: &'static str, content_type: &'static str| {
        client
            .request(Method::POST, &url)
            .header("content-type", content_type)
            .body(body)
    };

    let (status, body) = send(raw("{\"id\": ", "application/json")).await;
    assert_problem(status, &body, 400);
    assert!(body["detail"].as_str().unwrap().contains("malformed JSON"));
    let (status, body) = send(raw("id: [unclosed", "application/yaml")).await;
    assert_problem(status, &body, 400);
    assert!(body["detail"].as_str().unwrap().contains("malformed YAML"));
    let (status, body) = send(raw("<bot/>", "application/xml")).await;
    assert_problem(status, &body, 415);
    // A key given twice says two things: refused, as YAML refuses it.
    let twice = bot_json("said-twice").to_string();
    let twice = twice.replacen('{', "{\"name\": \"first\", ", 1);
    let (status, body) = send(
        client
            .request(Method::POST, &url)
            .header("content-type", "application/json")
            .body(twice),
    )
    .await;
    assert_problem(status, &body, 400);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("duplicate key `name`"),
        "{body}"
    );
    assert_eq!(pointers(&body), ["/name"], "the refusal names the key");

    let mut wrong_type = bot_json("wrong-type");
    wrong_type["capital"]["initial"] = json!(["many"]);
    let (status, body) = client.post_json(&url, &wrong_type).await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/capital/initial"]);

    let mut unknown = bot_json("unknown-field");
    unknown["risk"] = json!({ "max_drawdwn": { "limit_pct": 5 } });
    let (status, body) = client.post_json(&url, &unknown).await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/risk/max_drawdwn"]);

    let mut out_of_range = bot_json("out-of-range");
    out_of_range["fees"] = json!({ "taker_bps": 5000 });
    let (status, body) = client.post_json(&url, &out_of_range).await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/fees/taker_bps"]);

    let mut slow_le_fast = bot_json("slow-le-fast");
    slow_le_fast["strategy"]["params"] = json!({ "fast": 20, "slow": 10 });
    let (status, body) = client.post_json(&url, &slow_le_fast).await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/strategy/params/slow"], "{body}");

    let mut schema_violation = bot_json("schema-violation");
    schema_violation["strategy"]["params"] = json!({ "fast": "twelve" });
    let (status, body) = client.post_json(&url, &schema_violation).await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/strategy/params/fast"], "{body}");

    let mut unknown_plugin = bot_json("unknown-plugin");
    unknown_plugin["strategy"]["plugin"] = json!("no-such-plugin");
    let (status, body) = client.post_json(&url, &unknown_plugin).await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/strategy/plugin"]);
    assert!(
        body["detail"].as_str().unwrap().contains("ema-cross"),
        "names what exists: {body}"
    );

    let huge = format!(
        "{{\"id\": \"huge\", \"name\": \"{}\"}}",
        "x".repeat(1024 * 1024)
    );
    // Its own connection: the server answers 413 before reading the body and
    // closes it.
    let (status, body) = send(
        Client::admin()
            .request(Method::POST, &url)
            .header("content-type", "application/json")
            .body(huge),
    )
    .await;
    assert_problem(status, &body, 413);

    let (status, body) = client.get(&server.url("/bots/no-such-bot")).await;
    assert_problem(status, &body, 404);
    let (status, body) = client.post(&server.url("/bots/no-such-bot/start")).await;
    assert_problem(status, &body, 404);
    // A query parameter that does not read, or is out of its range, is
    // named by its pointer.
    for (path, pointer) in [
        ("/audit?limit=-1", "/limit"),
        ("/logs?limit=x", "/limit"),
        ("/bots?limit=0", "/limit"),
        ("/logs?level=loud", "/level"),
        ("/audit?from=2030-01-01&to=2020-01-01", "/to"),
        ("/audit?from=garbage", "/from"),
    ] {
        let (status, body) = client.get(&server.url(path)).await;
        assert_problem(status, &body, 400);
        assert_eq!(pointers(&body), [pointer], "{path}: {body}");
    }

    assert_eq!(
        bot_ids(&client, &server).await,
        before,
        "nothing was created"
    );
}

#[tokio::test]
async fn bots_are_created_from_json_yaml_and_presets_and_commanded() {
    let preset = "strategy: { plugin: ema-cross, params: { fast: 3, slow: 8 } }
market: { symbol: BTCUSDT, timeframe: 1m, feed: { kind: synthetic, seed: 7, interval_ms: 10 } }
capital: { quote: USDT, initial: \"5000\" }
";
    let server = Server::start(Options {
        presets: vec![("fast-ema".into(), preset.into())],
        ..Options::default()
    });
    let client = Client::admin();

    let (status, created) = client
        .post_json(&server.url("/bots"), &bot_json("json-bot"))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["state"], "stopped");
    assert_eq!(created["equity"], "10000", "decimals are strings");
    assert_eq!(created["config"]["id"], "json-bot");
    let (status, body) = client
        .post_json(&server.url("/bots"), &bot_json("json-bot"))
        .await;
    assert_problem(status, &body, 409);
    // The audit log names the bot a refused creation was about, and why.
    let (_, audit) = client.get(&server.url("/audit?limit=100")).await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "POST /api/v1/bots"
                && e["status"] == 409
                && e["target"] == "json-bot"
                && e["detail"] == body["detail"]),
        "{audit}"
    );

    let yaml = bot_yaml("yaml-bot", false);
    let (status, created) = send(
        client
            .request(Method::POST, &server.url("/bots"))
            .header("content-type", "application/yaml")
            .body(yaml),
    )
    .await;
    assert_eq!(status, 201, "{created}");

    let (status, from_preset) = client
        .post_json(
            &server.url("/bots"),
            &json!({ "preset": "fast-ema", "overrides": { "id": "preset-bot", "name": "From a preset", "capital": { "initial": "7000" } } }),
        )
        .await;
    assert_eq!(status, 201, "{from_preset}");
    assert_eq!(from_preset["config"]["capital"]["initial"], "7000");
    assert_eq!(from_preset["config"]["capital"]["quote"], "USDT");
    let (status, body) = client
        .post_json(&server.url("/bots"), &json!({ "preset": "fast-ema", "overrides": { "id": "bad" , "name": "x", "fees": { "taker_bps": -1 } } }))
        .await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/overrides/fees/taker_bps"], "{body}");
    // A field neither gave is the request's to supply.
    let (status, body) = client
        .post_json(
            &server.url("/bots"),
            &json!({ "preset": "fast-ema", "overrides": { "id": "nameless" } }),
        )
        .await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/overrides/name"], "{body}");
    // A field the preset gave that no longer fits is named at `/preset`,
    // with the field: ema-cross wants slow > fast, and the override only
    // raised `fast` past the preset's `slow: 8`.
    let (status, body) = client
        .post_json(
            &server.url("/bots"),
            &json!({ "preset": "fast-ema", "overrides": { "id": "mixed", "name": "x", "strategy": { "params": { "fast": 10 } } } }),
        )
        .await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/preset"], "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message
            .starts_with("preset `fast-ema` at /strategy/params/slow: must be greater than fast"),
        "{body}"
    );
    // Overrides are an object to merge, not a document that replaces the preset.
    let (status, body) = client
        .post_json(
            &server.url("/bots"),
            &json!({ "preset": "fast-ema", "overrides": [1] }),
        )
        .await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/overrides"], "{body}");
    // A missing field is named by its own pointer.
    let mut nameless = bot_json("nameless");
    nameless.as_object_mut().unwrap().remove("strategy");
    let (status, body) = client.post_json(&server.url("/bots"), &nameless).await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/strategy"], "{body}");

    let (status, list) = client.get(&server.url("/bots?limit=2")).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let cursor = list["next_cursor"].as_str().unwrap();
    let (_, rest) = client
        .get(&server.url(&format!("/bots?limit=2&cursor={cursor}")))
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());

    // Commands answer the new status; idempotent; refused ones say what is allowed.
    let bot = |path: &str| server.url(&format!("/bots/json-bot{path}"));
    let (status, started) = client.post(&bot("/start")).await;
    assert_eq!(
        (status, started["state"].as_str()),
        (200, Some("running")),
        "{started}"
    );
    let (status, again) = client.post(&bot("/start")).await;
    assert_eq!((status, again["state"].as_str()), (200, Some("running")));
    let (status, refused) = client.post(&bot("/resume")).await;
    assert_problem(status, &refused, 409);
    assert!(
        refused["allowed_commands"]
            .as_array()
            .unwrap()
            .contains(&json!("pause"))
    );
    let (_, commands) = client.get(&bot("/commands")).await;
    assert_eq!(commands["state"], "running");
    let (status, body) = client.delete(&bot("")).await;
    assert_problem(status, &body, 409);

    server
        .wait_for("candles processed", Duration::from_secs(20), || async {
            client.get(&bot("/status")).await.1["candles_processed"]
                .as_u64()
                .unwrap_or(0)
                > 20
        })
        .await;
    let (status, status_body) = client.get(&bot("/status")).await;
    assert_eq!(status, 200);
    for field in [
        "balance",
        "equity",
        "realized_pnl",
        "unrealized_pnl",
        "positions",
        "open_orders",
        "last_candle_at",
        "decision_latency_us",
        "started_at",
        "mode",
        "trading_state",
    ] {
        assert!(
            status_body.get(field).is_some(),
            "{field} missing: {status_body}"
        );
    }
    assert!(
        status_body["last_candle_at"]
            .as_str()
            .unwrap()
            .ends_with('Z'),
        "RFC 3339 UTC"
    );

    for command in ["pause", "resume", "cancel-pending", "close-all"] {
        let (status, body) = client.post(&bot(&format!("/{command}"))).await;
        assert_eq!(status, 200, "{command}: {body}");
    }
    let (status, killed) = client.post(&bot("/kill")).await;
    assert_eq!(
        (status, killed["state"].as_str()),
        (200, Some("killed")),
        "{killed}"
    );
    assert_eq!(killed["position"], "0", "the kill-switch flattened");
    let (_, risk) = client.get(&bot("/risk")).await;
    assert_eq!(risk["kill_switch"]["engaged"], true, "{risk}");
    assert_eq!(risk["trading_state"], "HALTED");
    let (status, reset) = client.post(&bot("/reset")).await;
    assert_eq!(
        (status, reset["state"].as_str()),
        (200, Some("stopped")),
        "{reset}"
    );
    assert_eq!(client.delete(&bot("")).await.0, 204);
    assert_eq!(client.get(&bot("")).await.0, 404);

    // Bulk commands report each bot.
    let (status, bulk) = client.post(&server.url("/bots/start-all")).await;
    assert_eq!(status, 200);
    assert_eq!(bulk["results"].as_array().unwrap().len(), 2, "{bulk}");
    let (_, restarted) = client.post(&server.url("/bots/restart-all")).await;
    assert!(
        restarted["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["ok"] == true),
        "{restarted}"
    );
    let (_, stopped) = client.post(&server.url("/bots/stop-all")).await;
    assert!(
        stopped["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "stopped"),
        "{stopped}"
    );

    // A command for a selection: each named bot answers for itself.
    let ids = bot_ids(&client, &server).await;
    let mut selection: Vec<Value> = ids.iter().map(|id| json!(id)).collect();
    selection.push(json!("no-such-bot"));
    let (status, started) = client
        .post_json(
            &server.url("/bots/commands"),
            &json!({"command": "start", "bots": selection}),
        )
        .await;
    assert_eq!(status, 200, "{started}");
    let results = started["results"].as_array().unwrap();
    assert_eq!(results.len(), ids.len() + 1, "{started}");
    for result in results {
        if result["id"] == "no-such-bot" {
            assert_eq!(result["ok"], false, "{result}");
        } else {
            assert_eq!(
                (&result["ok"], &result["state"]),
                (&json!(true), &json!("running")),
                "{result}"
            );
        }
    }
    let (status, refused) = client
        .post_json(
            &server.url("/bots/commands"),
            &json!({"command": "start", "bots": []}),
        )
        .await;
    assert_problem(status, &refused, 422);
    assert_eq!(pointers(&refused), ["/bots"]);
    let (status, refused) = client
        .post_json(
            &server.url("/bots/commands"),
            &json!({"command": "explode", "bots": ["x"]}),
        )
        .await;
    assert_problem(status, &refused, 422);
    assert_eq!(pointers(&refused), ["/command"]);
}

#[tokio::test]
async fn config_changes_are_validated_versioned_and_conditional() {
    let server = Server::start(Options {
        bots: vec![("a.yaml".into(), bot_yaml("cfg-bot", true))],
        ..Options::default()
    });
    let client = Client::admin();
    let url = server.url("/bots/cfg-bot/config");

    let response = client.request(Method::GET, &url).send().await.unwrap();
    assert_eq!(response.headers()["etag"], "\"v1\"");
    let mut config: Value = response.json().await.unwrap();
    let response = client
        .request(Method::GET, &url)
        .header("accept", "application/yaml")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/yaml");
    assert!(response.text().await.unwrap().contains("plugin: ema-cross"));

    // Every problem in one answer: types and ranges at once (and what only
    // serde sees, an integer too large for its field, which the schema's
    // "integer" accepts), the config's rules with its plugin's parameters.
    let cases = [
        [
            ("/risk/max_open_orders", json!(-1)),
            ("/risk/cooldown_after_loss", json!("soon")),
        ],
        [
            ("/risk/max_open_orders", json!(1e30)),
            ("/capital/quote", json!("usdt")),
        ],
        [
            ("/strategy/params/fast", json!("a")),
            ("/capital/initial", json!("-1")),
        ],
        // Decimal text the schema's pattern refuses is refused by the
        // server too (rust_decimal alone would read these).
        [
            ("/risk/max_order_notional", json!("1e3")),
            ("/fees/taker_bps", json!("1_0")),
        ],
    ];
    for changes in cases {
        let mut broken = config.clone();
        for (pointer, value) in &changes {
            *broken.pointer_mut(pointer).unwrap() = value.clone();
        }
        let (status, body) = client.put_json(&url, &broken).await;
        assert_problem(status, &body, 422);
        let found = pointers(&body);
        for (pointer, _) in &changes {
            assert!(found.contains(&pointer.to_string()), "{pointer}: {body}");
        }
    }

    // JSON, hot-swapped while running.
    config["strategy"]["params"]["fast"] = json!(4);
    let (status, applied) = client.put_json(&url, &config).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["version"], 2);
    assert_eq!(applied["status"]["state"], "running");

    // YAML, conditional on the version in force.
    let yaml = bot_yaml("cfg-bot", true).replace("fast: 3", "fast: 5");
    let stale = send(
        client
            .request(Method::PUT, &url)
            .header("content-type", "application/yaml")
            .header("if-match", "\"v1\"")
            .body(yaml.clone()),
    )
    .await;
    assert_problem(stale.0, &stale.1, 412);
    let response = client
        .request(Method::PUT, &url)
        .header("content-type", "application/yaml")
        .header("if-match", "\"v2\"")
        .body(yaml)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"v3\"");

    // Refusals change nothing.
    let mut bad = config.clone();
    bad["strategy"]["params"]["slow"] = json!(2);
    let (status, body) = client.put_json(&url, &bad).await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/strategy/params/slow"]);
    let mut moved = config.clone();
    moved["market"]["symbol"] = json!("ETHUSDT");
    let (status, body) = client.put_json(&url, &moved).await;
    assert_problem(status, &body, 409);
    assert_eq!(pointers(&body), ["/market/symbol"]);
    let (status, body) = client
        .post_json(&server.url("/bots/cfg-bot/config/validate"), &bad)
        .await;
    assert_problem(status, &body, 422);
    let (status, body) = client
        .post_json(&server.url("/bots/cfg-bot/config/validate"), &config)
        .await;
    assert_eq!(
        (status, body["valid"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let (_, detail) = client.get(&server.url("/bots/cfg-bot")).await;
    assert_eq!(
        detail["config_version"], 3,
        "validate and refusals made no version"
    );
    assert_eq!(detail["config"]["strategy"]["params"]["fast"], 5);

    // History and rollback.
    let (status, versions) = client
        .get(&server.url("/bots/cfg-bot/config/versions"))
        .await;
    assert_eq!(status, 200);
    let numbers: Vec<u64> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2, 1]);
    let (status, rolled) = client
        .post_json(
            &server.url("/bots/cfg-bot/config/rollback"),
            &json!({ "version": 1 }),
        )
        .await;
    assert_eq!(status, 200, "{rolled}");
    assert_eq!(rolled["version"], 4);
    assert_eq!(rolled["config"]["strategy"]["params"]["fast"], 3);
    let (status, body) = client
        .post_json(
            &server.url("/bots/cfg-bot/config/rollback"),
            &json!({ "version": 99 }),
        )
        .await;
    assert_problem(status, &body, 404);

    // The history survives a restart, and the bot comes back at its version.
    let server = server.restart();
    let (_, detail) = client.get(&server.url("/bots/cfg-bot")).await;
    assert_eq!(detail["config_version"], 4, "{detail}");
    let (_, versions) = client
        .get(&server.url("/bots/cfg-bot/config/versions?limit=2"))
        .await;
    assert_eq!(versions["items"][0]["version"], 4);
    assert_eq!(versions["next_cursor"], "3");
}

#[tokio::test]
async fn orders_trades_equity_and_retries_with_an_idempotency_key() {
    let server = Server::start(Options {
        bots: vec![("a.yaml".into(), bot_yaml("trader", true))],
        ..Options::default()
    });
    let client = Client::admin();
    let bot = |path: &str| server.url(&format!("/bots/trader{path}"));
    server
        .wait_for("a closed trade", Duration::from_secs(60), || async {
            let (_, trades) = client.get(&bot("/trades")).await;
            !trades["items"].as_array().unwrap().is_empty()
        })
        .await;
    let (_, trades) = client.get(&bot("/trades?from=2000-01-01T00:00:00Z")).await;
    let trade = &trades["items"][0];
    for field in [
        "entry_at",
        "exit_at",
        "quantity",
        "entry_price",
        "exit_price",
        "pnl",
        "fees",
    ] {
        assert!(trade[field].is_string(), "{field}: {trade}");
    }
    let (_, none) = client.get(&bot("/trades?to=2000-01-01T00:00:00Z")).await;
    assert!(none["items"].as_array().unwrap().is_empty());
    let (status, body) = client.get(&bot("/trades?from=yesterday")).await;
    assert_problem(status, &body, 400);
    let (_, equity) = client.get(&bot("/equity?limit=5")).await;
    assert_eq!(equity["items"].as_array().unwrap().len(), 5);
    assert!(equity["next_cursor"].is_string());
    // Newest first (a chart of a long-running bot starts from now), and the
    // cursor goes back in time.
    let times = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["at"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, newest) = client.get(&bot("/equity?order=newest&limit=3")).await;
    let newest_times = times(&newest);
    assert_eq!(newest_times.len(), 3);
    assert!(
        newest_times.windows(2).all(|w| w[0] > w[1]),
        "{newest_times:?}"
    );
    assert!(newest_times[0] > times(&equity)[4], "the newest come first");
    let cursor = newest["next_cursor"].as_str().expect("older points");
    let (_, older) = client
        .get(&bot(&format!(
            "/equity?order=newest&limit=3&cursor={cursor}"
        )))
        .await;
    assert!(times(&older)[0] < newest_times[2], "the next page is older");
    // A window holds newest-first pages too: none after `to`.
    let to = &newest_times[1];
    let (_, until) = client
        .get(&bot(&format!("/equity?order=newest&limit=2&to={to}")))
        .await;
    assert_eq!(&times(&until)[0], to, "the newest point up to `to`");
    let (status, body) = client.get(&bot("/equity?order=sideways")).await;
    assert_problem(status, &body, 400);
    let (_, closed) = client.get(&bot("/orders?status=closed")).await;
    assert!(
        closed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["status"] != "open")
    );
    let (status, body) = client.get(&bot("/orders?status=weird")).await;
    assert_problem(status, &body, 400);
    let (_, fills) = client.get(&bot("/fills")).await;
    assert!(!fills["items"].as_array().unwrap().is_empty());
    // Real cursors: the second page starts after the first.
    let (_, first_page) = client.get(&bot("/fills?limit=1")).await;
    let cursor = first_page["next_cursor"].as_str().expect("more fills");
    let (_, second_page) = client
        .get(&bot(&format!("/fills?limit=1&cursor={cursor}")))
        .await;
    assert_eq!(
        second_page["items"][0], fills["items"][1],
        "{first_page} {second_page}"
    );
    // Newest first (a dashboard's order): the cursor goes back in time. The
    // bot keeps trading meanwhile, so each check is made against a list
    // read after it.
    let (_, newest) = client.get(&bot("/fills?order=newest&limit=1")).await;
    let cursor = newest["next_cursor"].as_str().expect("older fills");
    let (_, older) = client
        .get(&bot(&format!(
            "/fills?order=newest&limit=1&cursor={cursor}"
        )))
        .await;
    let (_, all_newest) = client.get(&bot("/fills?order=newest&limit=1000")).await;
    let all_newest = all_newest["items"].as_array().unwrap();
    let at = all_newest
        .iter()
        .position(|fill| *fill == newest["items"][0])
        .expect("the newest fill is listed");
    assert_eq!(older["items"][0], all_newest[at + 1], "{older}");
    let (_, oldest_trades) = client.get(&bot("/trades?limit=1000")).await;
    let (_, newest_trades) = client.get(&bot("/trades?order=newest&limit=1000")).await;
    let mut reversed = oldest_trades["items"].as_array().unwrap().clone();
    reversed.reverse();
    let newest_trades = newest_trades["items"].as_array().unwrap();
    assert!(newest_trades.len() >= reversed.len());
    assert_eq!(
        newest_trades[newest_trades.len() - reversed.len()..],
        reversed[..]
    );
    let (status, body) = client.get(&bot("/fills?order=sideways")).await;
    assert_problem(status, &body, 400);
    let (status, stats) = client.get(&bot("/stats")).await;
    assert_eq!(status, 200, "{stats}");
    assert!(stats["trades"].as_u64().unwrap() >= 1);

    // A manual limit order far below the market rests; a retry with the same
    // key returns the first answer and places nothing more.
    client.post(&bot("/pause")).await;
    let order = json!({ "side": "buy", "kind": "limit", "quantity": "10", "price": "1" });
    let place = || {
        client
            .request(Method::POST, &bot("/orders"))
            .header("idempotency-key", "order-1")
            .json(&order)
    };
    // Paused bots refuse orders that grow the position: resume first.
    client.post(&bot("/resume")).await;
    let (status, first) = send(place()).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["origin"], "manual");
    assert_eq!(first["status"], "open");
    let (status, second) = send(place()).await;
    assert_eq!((status, &second), (201, &first));
    let (_, open) = client.get(&bot("/orders?status=open")).await;
    let manual: Vec<&Value> = open["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["origin"] == "manual")
        .collect();
    assert_eq!(manual.len(), 1, "placed once: {open}");
    let changed = send(
        client
            .request(Method::POST, &bot("/orders"))
            .header("idempotency-key", "order-1")
            .json(&json!({ "side": "buy", "kind": "limit", "quantity": "20", "price": "1" })),
    )
    .await;
    assert_problem(changed.0, &changed.1, 422);

    let id = first["id"].as_str().unwrap();
    let (status, cancelled) = client.delete(&bot(&format!("/orders/{id}"))).await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (200, Some("cancelled")),
        "{cancelled}"
    );
    let (status, detail) = client.get(&bot(&format!("/orders/{id}"))).await;
    assert_eq!(status, 200, "{detail}");
    let states: Vec<&str> = detail["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["open", "cancelled"], "every state is kept");
    assert_eq!(client.get(&bot("/orders/999999")).await.0, 404);
    for (path, says) in [
        (
            "/orders/abc",
            "`abc` in the path is not an id (ids here are whole numbers)",
        ),
        ("/orders/99999999999999999999999", "is too large for an id"),
    ] {
        let (status, body) = client.get(&bot(path)).await;
        assert_problem(status, &body, 404);
        assert!(body["detail"].as_str().unwrap().contains(says), "{body}");
    }
    let (status, body) = client.delete(&bot(&format!("/orders/{id}"))).await;
    assert_problem(status, &body, 404);

    // Fields off the instrument's grid (step 0.00001, tick 0.01) are
    // refused at their pointers, never rounded; nothing is placed.
    // The operator's orders only: the running strategy places its own.
    let manual_orders = || async {
        let (_, orders) = client.get(&bot("/orders?limit=1000")).await;
        orders["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|order| order["origin"] == "manual")
            .cloned()
            .collect::<Vec<Value>>()
    };
    let before = manual_orders().await;
    for (order, pointer, says) in [
        (
            json!({ "side": "buy", "quantity": "0.00000001" }),
            "/quantity",
            "0.00000001 is less than the step size 0.00001, the smallest there is",
        ),
        (
            json!({ "side": "buy", "quantity": "0" }),
            "/quantity",
            "must be above 0",
        ),
        (
            json!({ "side": "buy", "kind": "limit", "quantity": "1", "price": "100000000000000000000" }),
            "/price",
            "must be at most 1000000000000",
        ),
        (
            json!({ "side": "buy", "kind": "limit", "quantity": "1", "price": "1.005" }),
            "/price",
            "1.005 is not a multiple of the tick size 0.01: 1 or 1.01 is",
        ),
        (
            json!({ "side": "buy", "quantity": "1", "price": "1" }),
            "/price",
            "a market order takes no price (a limit order does)",
        ),
        (
            json!({ "side": "buy", "kind": "limit", "quantity": "1" }),
            "/price",
            "limit and stop orders need a price",
        ),
        (
            json!({ "side": "buy", "quantity": "1e-3" }),
            "/quantity",
            "`1e-3` is not a plain decimal: write digits with an optional minus sign and fraction, such as \"0.001\"",
        ),
    ] {
        let (status, body) = client.post_json(&bot("/orders"), &order).await;
        assert_problem(status, &body, 422);
        assert_eq!(pointers(&body), [pointer], "{order}: {body}");
        assert_eq!(body["errors"][0]["message"], says, "{order}");
    }
    // A stop already through the market would fill at once at the market
    // (priced and checked as if at its stop): refused at its price, as an
    // exchange refuses it.
    let (status, body) = client
        .post_json(
            &bot("/orders"),
            &json!({ "side": "buy", "kind": "stop", "quantity": "1", "price": "1" }),
        )
        .await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/price"], "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("a buy stop at 1 would trigger at once: the last price is"),
        "{body}"
    );
    assert_eq!(before, manual_orders().await, "nothing was placed");
    // A tag an open order holds is refused at its field.
    let tagged = json!({ "side": "buy", "kind": "limit", "quantity": "10", "price": "1", "client_tag": "resting-1" });
    let (status, resting) = client.post_json(&bot("/orders"), &tagged).await;
    assert_eq!(status, 201, "{resting}");
    let (status, body) = client.post_json(&bot("/orders"), &tagged).await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/client_tag"], "{body}");
    let resting_id = resting["id"].as_str().unwrap();
    assert_eq!(
        client
            .delete(&bot(&format!("/orders/{resting_id}")))
            .await
            .0,
        200
    );
    // Refused by the risk engine / instrument rules: 422 with the reason.
    let (status, body) = client
        .post_json(
            &bot("/orders"),
            &json!({ "side": "buy", "kind": "limit", "quantity": "0.001", "price": "1" }),
        )
        .await;
    assert_problem(status, &body, 422);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("minimum notional"),
        "{body}"
    );
    // Too small an order is its quantity's fault: the form can say so there.
    assert_eq!(pointers(&body), ["/quantity"], "{body}");
    assert_eq!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .split(':')
            .next(),
        Some("min_notional"),
        "{body}"
    );

    // A retried create with the same key makes one bot.
    let create = || {
        client
            .request(Method::POST, &server.url("/bots"))
            .header("idempotency-key", "create-1")
            .json(&bot_json("once"))
    };
    let (status, first) = send(create()).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = send(create()).await;
    assert_eq!(status, 201, "the first answer, not a 409: {again}");
    assert_eq!(
        bot_ids(&client, &server)
            .await
            .iter()
            .filter(|id| *id == "once")
            .count(),
        1
    );
}

#[tokio::test]
async fn strategies_are_uploaded_validated_and_deleted() {
    let server = Server::start(Options::default());
    let client = Client::admin();
    let (status, list) = client.get(&server.url("/strategies")).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"ema-cross") && names.contains(&"rules"),
        "{names:?}"
    );
    let (_, one) = client.get(&server.url("/strategies/ema-cross")).await;
    assert!(one["params_schema"].is_object() && one["content_hash"].as_str().unwrap().len() == 64);

    let upload = |bytes: Vec<u8>, content_type: &'static str| {
        client
            .request(Method::POST, &server.url("/strategies"))
            .header("content-type", content_type)
            .body(bytes)
    };
    let (status, body) = send(upload(b"not wasm".to_vec(), "application/wasm")).await;
    assert_problem(status, &body, 422);
    let (status, body) = send(upload(
        std::fs::read(stratbox_tests::fixture("wasi-importer")).unwrap(),
        "application/wasm",
    ))
    .await;
    assert_problem(status, &body, 422);
    assert!(
        body["detail"].as_str().unwrap().contains("import"),
        "{body}"
    );
    let (status, body) = send(upload(vec![0; 10], "text/plain")).await;
    assert_problem(status, &body, 415);

    let panicker = std::fs::read(stratbox_tests::fixture("panicker")).unwrap();
    let (status, uploaded) = send(upload(panicker.clone(), "application/wasm")).await;
    assert_eq!(status, 201, "{uploaded}");
    let name = uploaded["name"].as_str().unwrap().to_string();
    // The same bytes again change nothing: 200, not a second creation.
    let (status, again) = send(upload(panicker.clone(), "application/wasm")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["content_hash"], uploaded["content_hash"]);
    let viewer = Client::new(Some(&client.token(&server, "viewer", "v").await));
    let (status, body) = send(
        viewer
            .request(Method::POST, &server.url("/strategies"))
            .header("content-type", "application/wasm")
            .body(panicker.clone()),
    )
    .await;
    assert_problem(status, &body, 403);

    // Uploads survive a restart (they are in the store), and a deleted
    // upload does not come back after one.
    let server = server.restart();
    let strategy = server.url(&format!("/strategies/{name}"));
    let (status, again) = client.get(&strategy).await;
    assert_eq!(status, 200);
    assert_eq!(again["content_hash"], uploaded["content_hash"]);
    let (status, body) = client.delete(&server.url("/strategies/ema-cross")).await;
    assert_eq!(status, 204, "unused: {body}");
    let (status, body) = client.delete(&server.url("/strategies/ema-cross")).await;
    assert_problem(status, &body, 404);
    let (status, body) = client.delete(&strategy).await;
    assert_eq!(status, 204, "{body}");
    let server = server.restart();
    let (status, body) = client
        .get(&server.url(&format!("/strategies/{name}")))
        .await;
    assert_problem(status, &body, 404);
}

#[tokio::test]
async fn a_failing_plugin_never_takes_the_api_down() {
    let server = Server::start(Options::default());
    let client = Client::admin();
    let panicker = std::fs::read(stratbox_tests::fixture("panicker")).unwrap();
    let (status, uploaded) = send(
        client
            .request(Method::POST, &server.url("/strategies"))
            .header("content-type", "application/wasm")
            .body(panicker),
    )
    .await;
    assert_eq!(status, 201, "{uploaded}");
    let mut config = bot_json("doomed");
    config["strategy"] = json!({ "plugin": uploaded["name"], "params": {} });
    config["autostart"] = json!(true);
    let (status, created) = client.post_json(&server.url("/bots"), &config).await;
    assert_eq!(status, 201, "{created}");
    server
        .wait_for("the bot to fail", Duration::from_secs(20), || async {
            client.get(&server.url("/bots/doomed/status")).await.1["state"] == "error"
        })
        .await;
    let (_, status_body) = client.get(&server.url("/bots/doomed/status")).await;
    assert!(
        status_body["error"].as_str().unwrap().contains("panic"),
        "{status_body}"
    );
    assert_eq!(client.get(&server.url("/health")).await.0, 200);
    let (status, body) = client
        .delete(&server.url(&format!(
            "/strategies/{}",
            uploaded["name"].as_str().unwrap()
        )))
        .await;
    assert_problem(status, &body, 409);
    let (status, reset) = client.post(&server.url("/bots/doomed/reset")).await;
    assert_eq!((status, reset["state"].as_str()), (200, Some("stopped")));
}

#[tokio::test]
async fn emergency_stop_and_reset_by_role() {
    let server = Server::start(Options {
        bots: vec![
            ("a.yaml".into(), bot_yaml("em-a", true)),
            ("b.yaml".into(), bot_yaml("em-b", false)),
        ],
        ..Options::default()
    });
    let admin = Client::admin();
    let operator = Client::new(Some(&admin.token(&server, "operator", "ops").await));
    let (status, stopped) = operator.post(&server.url("/emergency/stop-all")).await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["engaged"], true);
    assert_eq!(stopped["killing"], json!(["em-a"]), "{stopped}");
    assert_eq!(stopped["untouched"], json!(["em-b"]), "{stopped}");
    server
        .wait_for("em-a killed", Duration::from_secs(10), || async {
            operator.get(&server.url("/bots/em-a")).await.1["state"] == "killed"
        })
        .await;
    let (_, state) = operator.get(&server.url("/emergency")).await;
    assert_eq!(state["pending"], json!([]), "{state}");
    let (status, body) = operator.post(&server.url("/bots/em-b/start")).await;
    assert_problem(status, &body, 409);
    let (status, body) = operator
        .post_json(&server.url("/bots"), &bot_json("blocked"))
        .await;
    assert_problem(status, &body, 409);
    let (status, body) = operator.post(&server.url("/emergency/reset")).await;
    assert_problem(status, &body, 403);
    // An engaged emergency stays engaged across a restart.
    let server = server.restart();
    let (_, state) = admin.get(&server.url("/emergency")).await;
    assert_eq!(state["engaged"], true, "{state}");
    // A release with a body it cannot read releases nothing.
    let (status, body) = send(
        admin
            .request(Method::POST, &server.url("/emergency/reset"))
            .header("content-type", "application/json")
            .body("[1,2"),
    )
    .await;
    assert_problem(status, &body, 400);
    let (_, state) = admin.get(&server.url("/emergency")).await;
    assert_eq!(state["engaged"], true, "{state}");
    let (status, released) = admin.post(&server.url("/emergency/reset")).await;
    assert_eq!((status, released["engaged"].as_bool()), (200, Some(false)));
    // Releasing what is released changes nothing and records nothing.
    let (status, _) = admin.post(&server.url("/emergency/reset")).await;
    assert_eq!(status, 200);
    let (_, state) = admin.get(&server.url("/emergency")).await;
    let kinds: Vec<&str> = state["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["emergency.reset", "emergency.engaged"], "{state}");
    assert_eq!(state["events"][1]["data"]["by"], "ops");
    assert_eq!(operator.post(&server.url("/bots/em-b/start")).await.0, 200);
    // The audit log says what the stop did.
    let (_, audit) = admin
        .get(&server.url("/audit?action=POST%20/api/v1/emergency/stop-all"))
        .await;
    assert_eq!(
        audit["items"][0]["detail"], "killing 1 bot: em-a",
        "{audit}"
    );
    let (_, audit) = admin
        .get(&server.url("/audit?action=POST%20/api/v1/bots/stop-all"))
        .await;
    assert!(audit["items"].as_array().unwrap().is_empty(), "{audit}");
    admin.post(&server.url("/bots/stop-all")).await;
    let (_, audit) = admin
        .get(&server.url("/audit?action=POST%20/api/v1/bots/stop-all"))
        .await;
    // em-b stops; em-a, killed, refuses.
    assert_eq!(
        audit["items"][0]["detail"], "1 of 2 bots; refused: em-a",
        "{audit}"
    );
}

#[tokio::test]
async fn presets_market_global_system_logs_and_metrics() {
    let server = Server::start(Options {
        bots: vec![("a.yaml".into(), bot_yaml("watched", true))],
        ..Options::default()
    });
    let client = Client::admin();
    let preset = json!({ "strategy": { "plugin": "ema-cross" }, "market": { "symbol": "BTCUSDT", "timeframe": "1m" }, "capital": { "quote": "USDT", "initial": "100" } });
    let (status, put) = client
        .put_json(&server.url("/presets/small"), &preset)
        .await;
    assert_eq!(status, 200, "{put}");
    let (status, body) = client
        .put_json(
            &server.url("/presets/broken"),
            &json!({ "capital": { "initial": "-5" } }),
        )
        .await;
    assert_problem(status, &body, 422);
    // One that could never make a bot: its plugin is unknown, or its
    // parameters are not the plugin's.
    let mut unknown_plugin = preset.clone();
    unknown_plugin["strategy"]["plugin"] = json!("nope");
    let mut stray_param = preset.clone();
    stray_param["strategy"]["params"] = json!({ "zzz": 1 });
    for (document, pointer) in [
        (unknown_plugin, "/strategy/plugin"),
        (stray_param, "/strategy/params/zzz"),
    ] {
        let (status, body) = client
            .put_json(&server.url("/presets/broken"), &document)
            .await;
        assert_problem(status, &body, 422);
        assert_eq!(pointers(&body), [pointer], "{body}");
    }
    let (_, presets) = client.get(&server.url("/presets")).await;
    assert_eq!(
        presets["items"].as_array().unwrap().len(),
        1,
        "the broken ones were not stored"
    );
    assert_eq!(client.get(&server.url("/presets/small")).await.0, 200);
    assert_eq!(client.get(&server.url("/presets/none")).await.0, 404);
    let (status, body) = client.delete(&server.url("/presets/none")).await;
    assert_problem(status, &body, 404);
    assert_eq!(client.delete(&server.url("/presets/small")).await.0, 204);
    assert_eq!(client.get(&server.url("/presets/small")).await.0, 404);

    server
        .wait_for("candles", Duration::from_secs(20), || async {
            let (status, candles) = client
                .get(&server.url("/market/candles?symbol=BTCUSDT&timeframe=1m&limit=5"))
                .await;
            status == 200 && candles["items"].as_array().unwrap().len() == 5
        })
        .await;
    let (status, body) = client
        .get(&server.url("/market/candles?symbol=XYZ&timeframe=1m"))
        .await;
    assert_problem(status, &body, 404);
    let (status, body) = client.get(&server.url("/market/candles")).await;
    assert_problem(status, &body, 400);
    assert_eq!(body["errors"][0]["pointer"], "/symbol", "{body}");
    let (status, body) = client
        .get(&server.url("/market/candles?symbol=BTCUSDT&timeframe=7m"))
        .await;
    assert_problem(status, &body, 400);
    assert_eq!(body["errors"][0]["pointer"], "/timeframe", "{body}");

    let (status, global) = client.get(&server.url("/metrics/global")).await;
    assert_eq!(status, 200, "{global}");
    assert_eq!(global["bots"], 1);
    assert_eq!(global["bots_by_state"]["running"], 1);
    assert!(global["total_equity"].is_string());
    let (status, system) = client.get(&server.url("/system")).await;
    assert_eq!(status, 200);
    assert!(system["memory_bytes"].as_u64().unwrap() > 0, "{system}");
    assert!(system["threads"].as_u64().unwrap() > 1, "{system}");

    client.post(&server.url("/bots/watched/pause")).await;
    let (status, logs) = client
        .get(&server.url("/bots/watched/logs?level=info"))
        .await;
    assert_eq!(status, 200);
    assert!(
        logs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"].as_str().unwrap().contains("-> paused")),
        "{logs}"
    );
    let (status, body) = client.get(&server.url("/logs?level=loud")).await;
    assert_problem(status, &body, 400);

    let response = client
        .request(Method::GET, &format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for metric in [
        "stratbox_api_requests_total",
        "stratbox_bots{state=\"paused\"} 1",
        "stratbox_bot_equity{bot=\"watched\"}",
        "stratbox_orders_placed_total",
        "stratbox_decision_latency_seconds",
        "stratbox_plugin_call_seconds_bucket",
    ] {
        assert!(text.contains(metric), "{metric} missing from:\n{text}");
    }
    let calls: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("stratbox_plugin_call_seconds_count "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(calls > 0, "strategy calls are timed:\n{text}");

    // A kill is a warning in the log: a filter on warnings finds it.
    let (status, _) = client.post(&server.url("/bots/watched/kill")).await;
    assert_eq!(status, 200);
    let (status, warnings) = client
        .get(&server.url("/bots/watched/logs?level=warn"))
        .await;
    assert_eq!(status, 200);
    assert!(
        warnings["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["level"] == "warn" && l["message"].as_str().unwrap().contains("-> killed")),
        "{warnings}"
    );
}

#[tokio::test]
async fn rate_limits_answer_429_with_headers() {
    let server = Server::start(Options {
        settings: "rate_limits:\n  viewer: { per_second: 1, burst: 3 }\n".into(),
        ..Options::default()
    });
    let admin = Client::admin();
    let viewer = Client::new(Some(&admin.token(&server, "viewer", "limited").await));
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..4 {
        let response = viewer
            .request(Method::GET, &server.url("/bots"))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        last = Some(response);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    let refused = last.unwrap();
    assert_eq!(refused.headers()["x-ratelimit-limit"], "3");
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
    assert!(refused.headers().contains_key("retry-after"));
    assert!(refused.headers().contains_key("x-request-id"));
    assert!(refused.headers().contains_key("x-process-time"));
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_its_schemas_compile() {
    let server = Server::start(Options::default());
    let client = Client::admin();
    let (status, document) = client.get(&server.url("/openapi.json")).await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    let expected = [
        ("get", "/api/v1/health"),
        ("get", "/api/v1/bots"),
        ("post", "/api/v1/bots"),
        ("get", "/api/v1/bots/{id}"),
        ("delete", "/api/v1/bots/{id}"),
        ("post", "/api/v1/bots/{id}/start"),
        ("post", "/api/v1/bots/{id}/cancel-pending"),
        ("get", "/api/v1/bots/{id}/commands"),
        ("post", "/api/v1/bots/restart-all"),
        ("post", "/api/v1/emergency/stop-all"),
        ("post", "/api/v1/emergency/reset"),
        ("get", "/api/v1/bots/{id}/config"),
        ("put", "/api/v1/bots/{id}/config"),
        ("post", "/api/v1/bots/{id}/config/validate"),
        ("get", "/api/v1/bots/{id}/config/versions"),
        ("post", "/api/v1/bots/{id}/config/rollback"),
        ("get", "/api/v1/bots/{id}/status"),
        ("get", "/api/v1/bots/{id}/positions"),
        ("get", "/api/v1/bots/{id}/orders"),
        ("post", "/api/v1/bots/{id}/orders"),
        ("delete", "/api/v1/bots/{id}/orders/{order_id}"),
        ("get", "/api/v1/bots/{id}/orders/{order_id}"),
        ("get", "/api/v1/bots/{id}/trades"),
        ("get", "/api/v1/bots/{id}/equity"),
        ("get", "/api/v1/bots/{id}/risk"),
        ("get", "/api/v1/bots/{id}/logs"),
        ("get", "/api/v1/bots/{id}/stats"),
        ("get", "/api/v1/strategies"),
        ("get", "/api/v1/strategies/{name}"),
        ("post", "/api/v1/strategies"),
        ("delete", "/api/v1/strategies/{name}"),
        ("get", "/api/v1/presets"),
        ("get", "/api/v1/presets/{name}"),
        ("put", "/api/v1/presets/{name}"),
        ("delete", "/api/v1/presets/{name}"),
        ("get", "/api/v1/market/candles"),
        ("get", "/api/v1/metrics/global"),
        ("get", "/api/v1/system"),
        ("get", "/api/v1/logs"),
        ("get", "/api/v1/audit"),
        ("get", "/api/v1/tokens"),
        ("post", "/api/v1/tokens"),
        ("delete", "/api/v1/tokens/{id}"),
        ("get", "/api/v1/ws"),
        ("get", "/api/v1/events"),
        ("get", "/api/v1/openapi.json"),
    ];
    for (method, path) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    // Every $ref points at a component, and every operation answers something.
    let components = document["components"]["schemas"].as_object().unwrap();
    let text = document.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().unwrap();
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{target}"));
        assert!(components.contains_key(name), "dangling {target}");
    }
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            assert!(
                !operation["responses"].as_object().unwrap().is_empty(),
                "{method} {path}"
            );
        }
    }
    assert!(components.contains_key("BotConfig") && components.contains_key("Problem"));

    // Every component compiles as JSON Schema 2020-12, and real answers
    // match the schemas the document gives for them.
    let validator = |name: &str| {
        let root = json!({ "$ref": format!("#/components/schemas/{name}"), "components": document["components"] });
        jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    for name in components.keys() {
        validator(name);
    }
    let (_, health) = Client::new(None).get(&server.url("/health")).await;
    let (_, problem) = Client::new(None).get(&server.url("/bots")).await;
    let (_, tokens) = client.get(&server.url("/tokens")).await;
    for (name, answer) in [
        ("Health", &health),
        ("Problem", &problem),
        ("TokenViewPage", &tokens),
    ] {
        let errors: Vec<String> = validator(name)
            .iter_errors(answer)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?} in {answer}");
    }
}

#[tokio::test]
async fn tokens_from_the_command_line_cors_multipart_uploads_and_a_graceful_stop() {
    let mut server = Server::start(Options::default());
    let client = Client::admin();

    // `stratbox token create` on the server's data directory: the running
    // server accepts the token within its refresh period.
    let run = std::process::Command::new(stratbox_tests::binary())
        .args([
            "token",
            "create",
            "--role",
            "operator",
            "--name",
            "cli-made",
            "--data-dir",
        ])
        .arg(server.data_path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(
        said.contains(" in the store of the data directory "),
        "{said}"
    );
    // Made where no store was, it says the store is new.
    let elsewhere = std::process::Command::new(stratbox_tests::binary())
        .args(["token", "create", "--role", "viewer", "--name", "stray"])
        .arg("--data-dir")
        .arg(server.data_path().join("elsewhere"))
        .output()
        .unwrap();
    assert!(elsewhere.status.success());
    let said = String::from_utf8_lossy(&elsewhere.stderr);
    assert!(
        said.contains(" in a new store of the data directory "),
        "{said}"
    );
    let token = String::from_utf8(run.stdout).unwrap().trim().to_string();
    let operator = Client::new(Some(&token));
    server
        .wait_for(
            "the token to be picked up",
            Duration::from_secs(10),
            || async { operator.get(&server.url("/bots")).await.0 == 200 },
        )
        .await;
    let listed = std::process::Command::new(stratbox_tests::binary())
        .args(["token", "list", "--data-dir"])
        .arg(server.data_path())
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    let id = listed
        .lines()
        .find(|l| l.contains("cli-made"))
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_string();
    assert!(!listed.contains(&token), "never the token's text");
    let revoked = std::process::Command::new(stratbox_tests::binary())
        .args(["token", "revoke", &id, "--data-dir"])
        .arg(server.data_path())
        .output()
        .unwrap();
    assert!(revoked.status.success());
    // The name the API refuses the command line refuses; a data directory
    // that does not exist is a mistyped path, not an empty list.
    let token = |args: &[&str]| {
        std::process::Command::new(stratbox_tests::binary())
            .arg("token")
            .args(args)
            .output()
            .unwrap()
    };
    let data = server.data_path();
    let data = data.to_str().unwrap();
    let unnamed = token(&[
        "create",
        "--role",
        "viewer",
        "--name",
        " ",
        "--data-dir",
        data,
    ]);
    assert!(!unnamed.status.success());
    assert!(String::from_utf8_lossy(&unnamed.stderr).contains("1 to 100 characters"));
    let nowhere = server.data_path().join("no-such-dir");
    let mistyped = token(&["list", "--data-dir", nowhere.to_str().unwrap()]);
    assert!(!mistyped.status.success());
    assert!(String::from_utf8_lossy(&mistyped.stderr).contains("no data directory"));
    assert!(!nowhere.exists(), "nothing made there");
    server
        .wait_for(
            "the revocation to be picked up",
            Duration::from_secs(10),
            || async { operator.get(&server.url("/bots")).await.0 == 401 },
        )
        .await;

    // CORS: the React dev server's origin is allowed, others are not.
    let preflight = |origin: &'static str| {
        client
            .http
            .request(Method::OPTIONS, server.url("/bots"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight("http://localhost:5173").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let other = preflight("http://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // A multipart upload with a `file` part.
    let plugin = std::fs::read(stratbox_tests::fixture("looper")).unwrap();
    let boundary = "stratbox-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"looper.wasm\"\r\nContent-Type: application/wasm\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&plugin);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let (status, uploaded) = send(
        client
            .request(Method::POST, &server.url("/strategies"))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body),
    )
    .await;
    assert_eq!(status, 201, "{uploaded}");

    // SIGTERM: requests end, bots stop, the process exits cleanly.
    assert_eq!(server.terminate(), Some(0));
}

#[tokio::test]
async fn data_sets_are_uploaded_checked_listed_downloaded_and_deleted() {
    let server = Server::start(Options::default());
    let client = Client::admin();
    let upload = |query: &str, body: String| {
        client
            .request(Method::POST, &server.url(&format!("/data{query}")))
            .header("content-type", "text/csv")
            .body(body)
    };
    let row = |minute: i64, close: &str| {
        format!(
            "{},{close},{close},{close},{close},1.5\n",
            1_704_067_200_000 + minute * 60_000
        )
    };
    let mut good = String::from("ts,open,high,low,close,volume\n");
    for minute in [0, 1, 2, 5, 6] {
        good += &row(minute, &format!("{}.25", 100 + minute));
    }
    // A bad line: 422 naming it, and nothing stored.
    let mut bad = good.clone();
    bad += &row(7, "oops");
    let (status, body) = send(upload("?symbol=BTCUSDT&timeframe=1m", bad)).await;
    assert_problem(status, &body, 422);
    assert!(
        body["detail"].as_str().unwrap().contains("line 7"),
        "{body}"
    );
    assert_eq!(pointers(&body), ["/7"]);
    let (status, list) = client.get(&server.url("/data")).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"], json!([]));
    // Out of order: refused by row, nothing stored either.
    let mut unordered = good.clone();
    unordered += &row(3, "101");
    let (status, body) = send(upload("?symbol=BTCUSDT&timeframe=1m", unordered)).await;
    assert_problem(status, &body, 422);
    let (status, body) = send(upload("?symbol=btc/../x&timeframe=1m", good.clone())).await;
    assert_problem(status, &body, 400);
    let (status, body) = send(upload("?symbol=BTCUSDT", good.clone())).await;
    assert_problem(status, &body, 400);
    assert_eq!(pointers(&body), ["/timeframe"]);
    // Candles sent as something else: 415, naming what is accepted.
    let as_json = client
        .request(
            Method::POST,
            &server.url("/data?symbol=BTCUSDT&timeframe=1m"),
        )
        .header("content-type", "application/json")
        .body(good.clone());
    let (status, body) = send(as_json).await;
    assert_problem(status, &body, 415);
    assert!(
        body["detail"].as_str().unwrap().contains("text/csv"),
        "{body}"
    );
    let (_, list) = client.get(&server.url("/data")).await;
    assert_eq!(list["items"], json!([]));

    let (status, created) = send(upload("?symbol=BTCUSDT&timeframe=1m", good.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["count"], 5);
    assert_eq!(created["first"], "2024-01-01T00:00:00.000Z");
    assert_eq!(created["last"], "2024-01-01T00:06:00.000Z");
    assert_eq!(created["gaps"]["count"], 1);
    assert_eq!(created["gaps"]["missing"], 2);
    assert_eq!(
        created["gaps"]["first"][0]["after"],
        "2024-01-01T00:02:00.000Z"
    );
    assert_eq!(created["content_hash"].as_str().unwrap().len(), 64);
    let (_, list) = client.get(&server.url("/data")).await;
    assert_eq!(list["items"][0], created);

    // Download: the same candles, any range of them.
    let csv = |query: &str| {
        let url = server.url(&format!("/data/BTCUSDT/1m{query}"));
        let request = client.request(Method::GET, &url);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let (status, all) = csv("").await;
    assert_eq!(status, 200);
    assert_eq!(all, good);
    let (_, range) = csv("?from=2024-01-01T00:01:00Z&to=2024-01-01T00:05:00Z").await;
    assert_eq!(
        range,
        format!(
            "ts,open,high,low,close,volume\n{}{}{}",
            row(1, "101.25"),
            row(2, "102.25"),
            row(5, "105.25")
        )
    );
    // A date as `to` takes in that whole day; an instant is the last one.
    let (_, day) = csv("?to=2024-01-01").await;
    assert_eq!(day, good);
    let (_, first) = csv("?to=1704067200000").await;
    assert_eq!(
        first,
        format!("ts,open,high,low,close,volume\n{}", row(0, "100.25"))
    );
    let (status, _) = csv("?from=yesterday").await;
    assert_eq!(status, 400);

    // A viewer reads but cannot change data sets.
    let viewer_token = client.token(&server, "viewer", "reader").await;
    let viewer = Client::new(Some(&viewer_token));
    let (status, _) = viewer.get(&server.url("/data")).await;
    assert_eq!(status, 200);
    let (status, _) = viewer.delete(&server.url("/data/BTCUSDT/1m")).await;
    assert_eq!(status, 403);

    let (status, _) = client.delete(&server.url("/data/BTCUSDT/1m")).await;
    assert_eq!(status, 204);
    let (status, body) = client.delete(&server.url("/data/BTCUSDT/1m")).await;
    assert_problem(status, &body, 404);
    let (status, _) = csv("").await;
    assert_eq!(status, 404);
}

/// Poll a backtest job until `done` says so (within 120 s); its last view.
async fn job_until(
    client: &Client,
    server: &Server,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    kind_until(client, server, "backtests", id, done).await
}

/// Whether a backtest or optimisation job has ended (done, failed or
/// cancelled).
fn job_ended(job: &Value) -> bool {
    job["state"] != "queued" && job["state"] != "running"
}

/// Wait for the optimisation `job` to end, check that it failed, delete
/// it, and give its error.
async fn optimization_failed(client: &Client, server: &Server, job: &Value) -> String {
    let id = job["id"].as_str().unwrap();
    let failed = kind_until(client, server, "optimizations", id, job_ended).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    let (status, _) = client
        .delete(&server.url(&format!("/optimizations/{id}")))
        .await;
    assert_eq!(status, 204);
    failed["error"].as_str().unwrap().to_string()
}

async fn kind_until(
    client: &Client,
    server: &Server,
    kind: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..1_200 {
        let (status, job) = client.get(&server.url(&format!("/{kind}/{id}"))).await;
        assert_eq!(status, 200, "{job}");
        if done(&job) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("backtest {id} never got there");
}

#[tokio::test]
async fn backtest_jobs_give_the_clis_result_report_progress_and_cancel() {
    let server = Server::start(Options::default());
    let client = Client::admin();
    let data_set = stratbox_tests::server::synthetic_data_set(&server, "BTCUSDT", 20_000).await;
    let mut config = bot_json("bt-one");
    config["market"] = json!({ "symbol": "BTCUSDT", "timeframe": "1m" });

    // Refused before anything is queued, each at its field.
    let submit = |body: Value| {
        send(
            client
                .request(Method::POST, &server.url("/backtests"))
                .json(&body),
        )
    };
    let (status, body) = submit(json!({ "config": config, "data": "ETHUSDT/1m" })).await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/data"]);
    let mut bad_params = config.clone();
    bad_params["strategy"]["params"]["fast"] = json!("quick");
    let (status, body) = submit(json!({ "config": bad_params, "data": "BTCUSDT/1m" })).await;
    assert_problem(status, &body, 422);
    assert!(
        pointers(&body)[0].starts_with("/config/strategy/params"),
        "{body}"
    );
    let (status, body) = submit(json!({ "data": "BTCUSDT/1m" })).await;
    assert_problem(status, &body, 422);
    let (status, body) =
        submit(json!({ "config": config, "bot_id": "any", "data": "BTCUSDT/1m" })).await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/bot_id"], "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("not both"),
        "{body}"
    );
    let (status, body) = submit(json!({ "config": config })).await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/data"], "a missing field's own pointer");
    // Every problem of the request in one answer.
    let mut broken = config.clone();
    broken["strategy"]["params"]["fast"] = json!("a");
    broken["capital"]["initial"] = json!("-1");
    let (status, body) = submit(json!({ "config": broken, "data": "NOPE", "from": "x" })).await;
    assert_problem(status, &body, 422);
    let mut found = pointers(&body);
    found.sort();
    assert_eq!(
        found,
        [
            "/config/capital/initial",
            "/config/strategy/params/fast",
            "/data",
            "/from"
        ],
        "{body}"
    );
    // Times as the CLI reads them; a range the data set cannot serve, or
    // candles finer than the bot's timeframe, refused before queueing.
    let in_range = |from: &str, to: &str| json!({ "config": config, "data": "BTCUSDT/1m", "from": from, "to": to });
    for (body, pointer) in [
        (in_range("yesterday", "2024-01-02"), "/from"),
        (in_range("2024-01-02", "2024-01-01"), "/to"),
        (in_range("2030-01-01", "2030-02-01"), "/from"),
        (in_range("1000", "2000"), "/to"),
    ] {
        let (status, answer) = submit(body.clone()).await;
        assert_problem(status, &answer, 422);
        assert_eq!(pointers(&answer), [pointer], "{body}: {answer}");
    }
    let mut slower = config.clone();
    slower["market"]["timeframe"] = json!("15m");
    let (status, body) = submit(json!({ "config": slower, "data": "BTCUSDT/1m" })).await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/data"], "{body}");
    // Nor coarser ones: a 1m strategy on 5m candles.
    let five_minutes: String = (0..10_i64)
        .map(|i| format!("{},100,101,99,100,1\n", 1_704_067_200_000 + i * 300_000))
        .collect();
    let upload = client
        .request(
            Method::POST,
            &server.url("/data?symbol=BTCUSDT&timeframe=5m"),
        )
        .header("content-type", "text/csv")
        .body(format!("ts,open,high,low,close,volume\n{five_minutes}"));
    let (status, body) = send(upload).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = submit(json!({ "config": config, "data": "BTCUSDT/5m" })).await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/data"], "{body}");
    let (_, listed) = client.get(&server.url("/backtests")).await;
    assert_eq!(listed["items"], json!([]));

    // A job runs to the end and keeps what it was made from. A config of
    // another symbol is tried on the data set's market, and says so.
    config["market"]["symbol"] = json!("ETHUSDT");
    let (status, queued) = submit(json!({ "config": config, "data": "BTCUSDT/1m" })).await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_str().unwrap().to_string();
    let done = job_until(&client, &server, &id, job_ended).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["progress"], 1.0);
    assert_eq!(done["candles"], 20_000);
    assert_eq!(done["data_hash"], data_set["content_hash"]);
    assert_eq!(done["plugin"], "ema-cross");
    assert_eq!(done["plugin_hash"].as_str().unwrap().len(), 64);
    assert_eq!(done["config"]["market"]["symbol"], "BTCUSDT", "{done}");
    // What it ran on: the first candle's open to the last one's close.
    assert_eq!(done["ran_from"], "2024-01-01T00:00:00.000Z", "{done}");
    assert_eq!(done["ran_to"], "2024-01-14T21:20:00.000Z", "{done}");
    let (_, listed) = client.get(&server.url("/backtests")).await;
    assert_eq!(listed["items"][0]["id"], id.as_str());
    // A range past the data's end (a date: that whole day) runs on what
    // there is, and says so.
    let (status, past) = submit(json!({
        "config": config, "data": "BTCUSDT/1m", "from": "2024-01-14", "to": "2030-01-01"
    }))
    .await;
    assert_eq!(status, 202, "{past}");
    assert_eq!(past["to"], "2030-01-02T00:00:00.000Z", "{past}");
    let past_id = past["id"].as_str().unwrap().to_string();
    let past = job_until(&client, &server, &past_id, |job| job["state"] == "done").await;
    assert_eq!(past["ran_from"], "2024-01-14T00:00:00.000Z", "{past}");
    assert_eq!(past["ran_to"], "2024-01-14T21:20:00.000Z", "{past}");
    assert_eq!(past["candles"], 1_280, "{past}");

    // Its result is byte for byte what the command line writes.
    let response = client
        .request(Method::GET, &server.url(&format!("/backtests/{id}/result")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let from_api = response.text().await.unwrap();
    // Its report: HTML that may load nothing but its own inline styles.
    let report = client
        .request(Method::GET, &server.url(&format!("/backtests/{id}/report")))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 200);
    assert_eq!(report.headers()["content-type"], "text/html; charset=utf-8");
    assert!(
        report.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    assert!(report.text().await.unwrap().contains("Monthly returns"));
    let (status, _) = client
        .get(&server.url("/backtests/bt-0000000000000-0000/report"))
        .await;
    assert_eq!(status, 404);
    let dir = tempfile::tempdir().unwrap();
    let bot = dir.path().join("bot.json");
    std::fs::write(&bot, config.to_string()).unwrap();
    let out = dir.path().join("result.json");
    let plugins = stratbox_tests::plugin("ema-cross")
        .parent()
        .unwrap()
        .to_path_buf();
    let cli = stratbox_tests::stratbox(
        &[
            "backtest",
            "--bot",
            bot.to_str().unwrap(),
            "--data",
            "BTCUSDT/1m",
            "--data-dir",
            server.data_path().to_str().unwrap(),
            "--plugins-dir",
            plugins.to_str().unwrap(),
            "--json",
            out.to_str().unwrap(),
        ],
        &dir.path().join("cache"),
    );
    assert_eq!(cli.code, Some(0), "{}", cli.stderr);
    assert!(
        from_api == std::fs::read_to_string(&out).unwrap(),
        "the API's result differs from the CLI's"
    );

    // A long job is cancelled promptly; a finished one is deleted.
    stratbox_tests::server::synthetic_data_set(&server, "LONGUSDT", 400_000).await;
    let mut long = config.clone();
    long["market"]["symbol"] = json!("LONGUSDT");
    let (status, queued) = submit(json!({ "config": long, "data": "LONGUSDT/1m" })).await;
    assert_eq!(status, 202, "{queued}");
    let long_id = queued["id"].as_str().unwrap().to_string();
    let running = job_until(&client, &server, &long_id, |job| {
        job["progress"].as_f64().unwrap() > 0.0
    })
    .await;
    assert_eq!(running["state"], "running", "{running}");
    // One worker: a second job waits, and cancelling it ends it at once.
    let (status, waiting) = submit(json!({ "config": config, "data": "BTCUSDT/1m" })).await;
    assert_eq!(status, 202, "{waiting}");
    let waiting_id = waiting["id"].as_str().unwrap().to_string();
    let (status, _) = client
        .delete(&server.url(&format!("/backtests/{waiting_id}")))
        .await;
    assert_eq!(status, 204);
    let (status, ended) = client
        .get(&server.url(&format!("/backtests/{waiting_id}")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(ended["state"], "cancelled", "{ended}");
    let (status, _) = client
        .delete(&server.url(&format!("/backtests/{long_id}")))
        .await;
    assert_eq!(status, 204);
    let cancelled_at = std::time::Instant::now();
    let stopped = job_until(&client, &server, &long_id, |job| job["state"] != "running").await;
    assert_eq!(stopped["state"], "cancelled", "{stopped}");
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(1),
        "{:?}",
        cancelled_at.elapsed()
    );
    let reached = stopped["progress"].as_f64().unwrap();
    assert!(
        reached >= running["progress"].as_f64().unwrap() && reached < 1.0,
        "{stopped}"
    );
    let (status, _) = client
        .delete(&server.url(&format!("/backtests/{id}")))
        .await;
    assert_eq!(status, 204);
    let (status, body) = client.get(&server.url(&format!("/backtests/{id}"))).await;
    assert_problem(status, &body, 404);
    // A cancelled job keeps how far it got, once it is only a record.
    let (status, kept) = client
        .get(&server.url(&format!("/backtests/{long_id}")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(kept["progress"].as_f64(), Some(reached), "{kept}");
    // The worker passed over the cancelled job and still runs the next.
    let (status, next) = submit(json!({ "config": config, "data": "BTCUSDT/1m" })).await;
    assert_eq!(status, 202, "{next}");
    let next_id = next["id"].as_str().unwrap().to_string();
    let done = job_until(&client, &server, &next_id, job_ended).await;
    assert_eq!(done["state"], "done", "{done}");
    let (status, still) = client
        .get(&server.url(&format!("/backtests/{waiting_id}")))
        .await;
    assert_eq!((status, still["state"].as_str()), (200, Some("cancelled")));
}

/// A report page: 200, HTML, its text.
async fn report_text(client: &Client, server: &Server, path: &str) -> String {
    let response = client
        .request(Method::GET, &server.url(path))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn optimisations_rank_sets_walk_forward_and_become_a_bot_config() {
    let server = Server::start(Options::default());
    let client = Client::admin();
    stratbox_tests::server::synthetic_data_set(&server, "BTCUSDT", 30_000).await;
    let mut config = bot_json("opt-base");
    config["market"] = json!({ "symbol": "BTCUSDT", "timeframe": "1m" });
    let submit = |body: Value| {
        send(
            client
                .request(Method::POST, &server.url("/optimizations"))
                .json(&body),
        )
    };

    // Refused before anything is queued, each problem at its field.
    let (status, body) = submit(json!({
        "config": config, "data": "BTCUSDT/1m",
        "params": { "fast": "9..3", "colour": "1,2" },
        "objective": "luck",
        "walk_forward": { "scheme": "rolling", "train": "forever", "test": "9é" }
    }))
    .await;
    assert_problem(status, &body, 422);
    let mut found = pointers(&body);
    found.sort();
    assert_eq!(
        found,
        [
            "/objective",
            "/params/colour",
            "/params/fast",
            "/walk_forward/test",
            "/walk_forward/train"
        ],
        "{body}"
    );
    let (status, body) = submit(json!({
        "config": config, "data": "BTCUSDT/1m", "params": { "colour": "1,2" }
    }))
    .await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/params/colour"]);
    // Each sampler bounds the sets it draws.
    for (sampler, most) in [
        (
            json!({ "kind": "random", "trials": 100_001, "seed": 1 }),
            "100000",
        ),
        (
            json!({ "kind": "random", "trials": 0, "seed": 1 }),
            "100000",
        ),
        (json!({ "kind": "tpe", "trials": 2_001, "seed": 1 }), "2000"),
    ] {
        let (status, body) = submit(json!({
            "config": config, "data": "BTCUSDT/1m", "params": { "fast": "2,3" },
            "sampler": sampler
        }))
        .await;
        assert_problem(status, &body, 422);
        assert_eq!(pointers(&body), ["/sampler/trials"], "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert_eq!(message, format!("must be between 1 and {most}"), "{body}");
    }
    let (status, body) = submit(json!({
        "config": config, "data": "BTCUSDT/1m",
        "params": { "fast": "1..5000:1", "slow": "2..5000:1" }
    }))
    .await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/params"]);
    // Each range bounded before it is listed, and every value one the
    // plugin's schema takes (fast: an integer from 1 to 10,000).
    for (fast, refusal) in [
        ("0..4000000000", "more than the 10000"),
        ("abc", r#""abc" is refused"#),
        ("0..3", "0 is refused"),
        ("9990..10010:10", "10010 is refused"),
    ] {
        let (status, body) = submit(json!({
            "config": config, "data": "BTCUSDT/1m", "params": { "fast": fast }
        }))
        .await;
        assert_problem(status, &body, 422);
        assert_eq!(pointers(&body), ["/params/fast"], "{fast}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(refusal), "{fast}: {body}");
    }
    // The job's problems come with the search's: a range, values of a
    // range the plugin refuses, an objective weighed twice.
    let (status, body) = submit(json!({
        "config": config, "data": "BTCUSDT/1m", "from": "garbage",
        "params": { "fast": "21..2:1", "slow": "0..5" },
        "objective": "sharpe,sharpe"
    }))
    .await;
    assert_problem(status, &body, 422);
    let mut found = pointers(&body);
    found.sort();
    let expected = ["/from", "/objective", "/params/fast", "/params/slow"];
    assert_eq!(found, expected, "{body}");
    // A walk-forward needs one training and one test window in the range.
    let (status, body) = submit(json!({
        "config": config, "data": "BTCUSDT/1m", "params": { "fast": "2,3" },
        "walk_forward": { "scheme": "rolling", "train": "90d", "test": "30d" }
    }))
    .await;
    assert_problem(status, &body, 422);
    assert_eq!(pointers(&body), ["/walk_forward"], "{body}");
    let (_, listed) = client.get(&server.url("/optimizations")).await;
    assert_eq!(listed["items"], json!([]));

    // A grid of 9 sets, ranked by a weighted objective.
    let (status, queued) = submit(json!({
        "config": config, "data": "BTCUSDT/1m",
        "params": { "fast": "2..6:2", "slow": "10..30:10" },
        "objective": "total-return=1,max-drawdown=0.5",
        "min_trades": 1
    }))
    .await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_str().unwrap().to_string();
    assert_eq!(queued["optimization"]["sampler"]["kind"], "grid");
    let done = kind_until(&client, &server, "optimizations", &id, job_ended).await;
    assert_eq!(done["state"], "done", "{done}");

    // Given no ranges, the job searches the plugin's default search and
    // records it as ranges; each set it ran lies in them.
    let (status, defaulted) = submit(json!({
        "config": config, "data": "BTCUSDT/1m",
        "sampler": { "kind": "random", "trials": 3, "seed": 5 }
    }))
    .await;
    assert_eq!(status, 202, "{defaulted}");
    let searched = &defaulted["optimization"]["params"];
    assert_eq!(
        searched,
        &json!({ "fast": "3..21:2", "slow": "25..205:20" }),
        "{defaulted}"
    );
    let defaulted_id = defaulted["id"].as_str().unwrap();
    let finished = kind_until(&client, &server, "optimizations", defaulted_id, job_ended).await;
    assert_eq!(finished["optimization"]["params"], *searched, "{finished}");
    let (_, ran) = client
        .get(&server.url(&format!("/optimizations/{defaulted_id}/result")))
        .await;
    let sets = ran["trials"].as_array().unwrap();
    assert_eq!(sets.len(), 3, "{ran}");
    for set in sets {
        let fast = set["params"]["fast"].as_i64().unwrap();
        let slow = set["params"]["slow"].as_i64().unwrap();
        assert!((3..=21).contains(&fast) && fast % 2 == 1, "{set}");
        assert!((25..=205).contains(&slow) && slow % 20 == 5, "{set}");
    }
    let (status, _) = client
        .delete(&server.url(&format!("/optimizations/{defaulted_id}")))
        .await;
    assert_eq!(status, 204);

    // Sets the schema takes but the strategy refuses (slow must exceed
    // fast): every run fails, and so does the job.
    let (status, doomed) = submit(json!({
        "config": config, "data": "BTCUSDT/1m",
        "params": { "fast": "30,40", "slow": "10,20" }
    }))
    .await;
    assert_eq!(status, 202, "{doomed}");
    let error = optimization_failed(&client, &server, &doomed).await;
    assert!(error.contains("every run failed"), "{error}");
    // A walk-forward in which no window ranks a set (none makes the trades
    // asked for) fails too: no out-of-sample run, no return of 0 %.
    let (status, empty) = submit(json!({
        "config": config, "data": "BTCUSDT/1m",
        "params": { "fast": "2,4", "slow": "10,20" }, "min_trades": 100000,
        "walk_forward": { "scheme": "anchored", "train": "5d", "test": "2d" }
    }))
    .await;
    assert_eq!(status, 202, "{empty}");
    let error = optimization_failed(&client, &server, &empty).await;
    assert!(error.contains("no window ranked a set"), "{error}");
    let (status, result) = client
        .get(&server.url(&format!("/optimizations/{id}/result")))
        .await;
    assert_eq!(status, 200);
    let trials = result["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 9);
    let scores: Vec<f64> = trials.iter().filter_map(|t| t["score"].as_f64()).collect();
    assert!(!scores.is_empty());
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "ranked: {scores:?}"
    );
    assert_eq!(done["best_params"], trials[0]["params"]);
    // The job is not a backtest, and its id says so.
    assert!(id.starts_with("opt-"), "{id}");
    let (status, _) = client.get(&server.url(&format!("/backtests/{id}"))).await;
    assert_eq!(status, 404);
    // Its report: the parameter surface and the ranked runs.
    let html = report_text(&client, &server, &format!("/optimizations/{id}/report")).await;
    assert!(
        html.contains("Parameter surface") && html.contains("Ranked runs (9 of 9 ranked"),
        "{html}"
    );
    assert!(!html.contains("<script"));

    // The best set as a bot config, in one call; it makes a bot.
    let (status, best) = client
        .get(&server.url(&format!("/optimizations/{id}/config")))
        .await;
    assert_eq!(status, 200, "{best}");
    assert_eq!(best["strategy"]["params"], trials[0]["params"]);
    let (_, second) = client
        .get(&server.url(&format!("/optimizations/{id}/config?rank=2")))
        .await;
    assert_eq!(second["strategy"]["params"], trials[1]["params"]);
    let (status, body) = client
        .get(&server.url(&format!("/optimizations/{id}/config?rank=99")))
        .await;
    assert_problem(status, &body, 422);
    // Each ranked run's config is a bot of its own, not the one the job
    // came from: it can be posted as it is.
    let number = id.strip_prefix("opt-").unwrap();
    assert_eq!(best["id"], format!("ema-cross-{number}-1"));
    assert_eq!(second["id"], format!("ema-cross-{number}-2"));
    assert_eq!(
        best["name"],
        format!("ema-cross from optimisation {id} (rank 1)")
    );
    let mut bot = best.clone();
    bot["market"]["feed"] = json!({ "kind": "synthetic", "seed": 7, "interval_ms": 10 });
    let (status, created) = client.post_json(&server.url("/bots"), &bot).await;
    assert_eq!(status, 201, "{created}");

    // Walk forward: windows that follow each other, each with its best.
    let (status, queued) = submit(json!({
        "config": config, "data": "BTCUSDT/1m",
        "params": { "fast": "2,4", "slow": "10,20" },
        "walk_forward": { "scheme": "anchored", "train": "5d", "test": "2d" }
    }))
    .await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_str().unwrap().to_string();
    let done = kind_until(&client, &server, "optimizations", &id, job_ended).await;
    assert_eq!(done["state"], "done", "{done}");
    let (_, result) = client
        .get(&server.url(&format!("/optimizations/{id}/result")))
        .await;
    let windows = result["windows"].as_array().unwrap();
    let html = report_text(&client, &server, &format!("/optimizations/{id}/report")).await;
    assert!(html.contains("Walk-forward windows") && html.contains("compounded"));
    // 30,000 minutes is 20.8 days: 5 days of training, then 7 test windows
    // of 2 days.
    assert_eq!(windows.len(), 7, "{result}");
    for pair in windows.windows(2) {
        assert_eq!(pair[0]["window"]["test_to"], pair[1]["window"]["test_from"]);
    }
    for window in windows {
        assert_eq!(window["window"]["train_to"], window["window"]["test_from"]);
        assert_eq!(window["runs"], 4);
    }
    // Its headline is what the out-of-sample runs made one after another
    // (as the report compounds them), and the set the last training window
    // chose.
    let outside: Vec<&Value> = windows
        .iter()
        .map(|w| &w["out_of_sample"]["metrics"])
        .collect();
    let growth: f64 = outside
        .iter()
        .filter_map(|m| m["total_return_pct"].as_f64())
        .map(|pct| 1.0 + pct / 100.0)
        .product();
    let compounded = (growth - 1.0) * 100.0;
    let headline = done["total_return_pct"].as_f64().unwrap();
    assert!(
        (headline - compounded).abs() < 1e-9,
        "{headline} {compounded}"
    );
    assert!(html.contains(&format!("<b>{compounded:.2}%</b>")));
    let trades: u64 = outside.iter().filter_map(|m| m["trades"].as_u64()).sum();
    assert_eq!(done["trades"], trades, "{done}");
    assert!(done["sharpe"].is_null(), "{done}");
    assert_eq!(done["best_params"], windows[6]["in_sample"]["params"]);
    // Listed newest first, a page at a time.
    let (_, first) = client.get(&server.url("/optimizations?limit=1")).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    assert_eq!(first["items"][0]["id"], id.as_str());
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let (_, second) = client
        .get(&server.url(&format!("/optimizations?limit=1&cursor={cursor}")))
        .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_ne!(second["items"][0]["id"], id.as_str());
    assert!(second["next_cursor"].is_null());
    let (status, body) = client.get(&server.url("/optimizations?limit=0")).await;
    assert_problem(status, &body, 400);
    let (status, _) = client
        .delete(&server.url(&format!("/optimizations/{id}")))
        .await;
    assert_eq!(status, 204);
    let (status, _) = client
        .get(&server.url(&format!("/optimizations/{id}")))
        .await;
    assert_eq!(status, 404);
}
