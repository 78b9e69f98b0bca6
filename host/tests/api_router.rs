//! The control API as a library: `api::router` over a real manager, store
//! and plugins, driven in-process with tower's `oneshot`, one request at a
//! time, per resource. (What only a process shows, the black-box suites in
//! the top-level `tests/` cover.)

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use rust_decimal_macros::dec;
use serde_json::{Value, json};
use stratbox_host::api::{self, App, AppState, Auth, ServerSettings};
use stratbox_host::domain::Candle;
use stratbox_host::domain::config::BotConfig;
use stratbox_host::live::{BotManager, BotState, LogBook};
use stratbox_host::persist::{self, StoreCommitLog};
use stratbox_host::plugin::{PluginRegistry, PluginRuntime, RuntimeConfig};
use stratbox_host::store::{SqliteStore, Store, Writer, WriterThread};
use tower::ServiceExt;

const ADMIN: &str = "router-test-admin-token-0123456789abcdef";

static PLUGINS: LazyLock<Arc<PluginRuntime>> = LazyLock::new(|| {
    Arc::new(
        PluginRuntime::new(RuntimeConfig {
            max_instances: 64,
            ..RuntimeConfig::default()
        })
        .unwrap(),
    )
});

struct TestApi {
    router: Router,
    state: AppState,
    store: Arc<dyn Store>,
    _writer: WriterThread,
    dir: tempfile::TempDir,
}

/// A bot on a stepped feed (the test pushes its candles).
fn bot(id: &str) -> Value {
    json!({
        "id": id,
        "name": format!("Bot {id}"),
        "strategy": { "plugin": "ema-cross", "params": { "fast": 2, "slow": 3, "size": { "quantity": 1 } } },
        "market": { "symbol": "BTCUSDT", "timeframe": "1m", "feed": { "kind": "stepped" } },
        "capital": { "quote": "USDT", "initial": "10000" },
        "instrument": { "min_notional": "0" }
    })
}

async fn test_api(mut settings: ServerSettings) -> TestApi {
    let dir = tempfile::tempdir().unwrap();
    // Data sets and backtest results go where the test cleans up.
    settings.data_dir = dir.path().join("data");
    let sqlite = SqliteStore::open(dir.path()).unwrap();
    let (writer, thread) =
        Writer::start(&sqlite, stratbox_host::live::strategy_jobs_in_flight).unwrap();
    let store: Arc<dyn Store> = Arc::new(sqlite);
    let mut registry = PluginRegistry::default();
    for path in [
        support::plugin_path("ema-cross"),
        support::fixture_path("panicker"),
    ] {
        registry
            .insert(Arc::new(PLUGINS.load_file(&path).unwrap()))
            .unwrap();
    }
    let bus = Arc::new(persist::event_bus(&store, writer.clone()).unwrap());
    let feeds = dir.path().join("feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    let manager = Arc::new(
        BotManager::new(Arc::new(RwLock::new(registry)), bus)
            .with_commit_log(Arc::new(StoreCommitLog::new(writer.clone())))
            .with_replay_dir(feeds),
    );
    let auth = Auth::load(store.clone(), Some(ADMIN)).unwrap();
    let state = AppState::new(App::new(
        manager,
        store.clone(),
        PLUGINS.clone(),
        auth,
        LogBook::default(),
        api::ApiMetrics::default(),
        settings,
        writer,
    ));
    TestApi {
        router: api::router(state.clone()),
        state,
        store,
        _writer: thread,
        dir,
    }
}

fn unlimited() -> ServerSettings {
    let mut settings = ServerSettings::default();
    let off = api::RateLimit {
        per_second: 0,
        burst: 0,
    };
    settings.rate_limits = api::RateLimits {
        viewer: off,
        operator: off,
        admin: off,
    };
    settings
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
    text: String,
}

impl TestApi {
    async fn call(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    fn request(method: &str, path: &str) -> axum::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(format!("/api/v1{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Self::request("GET", path).body(Body::empty()).unwrap())
            .await
    }

    async fn send_json(&self, method: &str, path: &str, body: &Value) -> Answer {
        let request = Self::request(method, path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.call(request).await
    }

    async fn post(&self, path: &str) -> Answer {
        self.call(Self::request("POST", path).body(Body::empty()).unwrap())
            .await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.call(Self::request("DELETE", path).body(Body::empty()).unwrap())
            .await
    }

    /// Push closes through the bot's stepped feed and wait until it saw them.
    async fn push(&self, id: &str, closes: &[i64]) {
        let manager = &self.state.manager;
        let config: BotConfig = (*manager.get(id).unwrap().config.clone().unwrap()).clone();
        let feed = manager.feeds().feed_for(&config).await.unwrap();
        let mut watch = manager.watch(id).unwrap();
        let start = 1_704_067_200_000 + 60_000 * feed.published() as i64;
        let mut last = 0;
        for (n, close) in closes.iter().enumerate() {
            let price = rust_decimal::Decimal::from(*close);
            last = start + 60_000 * n as i64;
            feed.publish(Candle {
                ts: last,
                open: price,
                high: price,
                low: price,
                close: price,
                volume: dec!(1),
            })
            .unwrap();
        }
        tokio::time::timeout(
            Duration::from_secs(20),
            watch.wait_for(|s| s.last_candle_ts >= Some(last) || s.state != BotState::Running),
        )
        .await
        .expect("the bot takes the candles")
        .unwrap();
    }
}

/// The details of the audit entries for `action`, newest first, once there
/// are `count` of them (entries reach the trail through the writer's queue).
async fn audit_details(api: &TestApi, action: &str, count: usize) -> Vec<Value> {
    let mut details = Vec::new();
    for _ in 0..50 {
        let audit = api.get("/audit?limit=100").await;
        details = audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|entry| entry["action"] == action)
            .map(|entry| entry["detail"].clone())
            .collect();
        if details.len() >= count {
            return details;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{count} audit entries for {action} never came: {details:?}");
}

fn assert_problem(answer: &Answer, status: u16) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.text);
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert_eq!(answer.body["status"], status);
}

fn pointers(answer: &Answer) -> Vec<String> {
    answer.body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["pointer"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_health_documents_and_auth() {
    let api = test_api(unlimited()).await;
    let open = Request::get("/api/v1/health").body(Body::empty()).unwrap();
    assert_eq!(api.call(open).await.status, StatusCode::OK);
    let anonymous = Request::get("/api/v1/bots").body(Body::empty()).unwrap();
    let anonymous = api.call(anonymous).await;
    assert_problem(&anonymous, 401);
    assert!(anonymous.text.contains("a bearer token is required"));
    // A token that is not (or no longer) valid is told apart from none.
    let wrong = Request::get("/api/v1/bots")
        .header(header::AUTHORIZATION, format!("Bearer {}", "x".repeat(40)))
        .body(Body::empty())
        .unwrap();
    let wrong = api.call(wrong).await;
    assert_problem(&wrong, 401);
    assert!(wrong.text.contains("not valid"), "{}", wrong.text);
    let document = api.get("/openapi.json").await;
    assert_eq!(document.status, StatusCode::OK);
    // Every event type is in the document, with its own payload schema.
    let text = document.body["components"]["schemas"].to_string();
    for kind in [
        "bot.created",
        "bot.state_changed",
        "bot.updated",
        "config.updated",
        "order.filled",
        "order.rejected",
        "trade",
        "risk.kill_switch",
        "log",
        "lagged",
        "emergency.engaged",
    ] {
        assert!(
            text.contains(&format!("\"{kind}\"")),
            "{kind} is documented"
        );
    }
    let unknown = api.get("/no-such-route").await;
    assert_problem(&unknown, 404);
    assert_eq!(unknown.body["detail"], "no route /api/v1/no-such-route");
    // The stream's path asked without an upgrade says so as a problem.
    let plain = api.get("/ws").await;
    assert_problem(&plain, 400);
    assert!(
        plain.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("this is the WebSocket stream:"),
        "{}",
        plain.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_answers_its_pages_and_the_api_its_paths() {
    let ui = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ui.path().join("assets")).unwrap();
    std::fs::write(ui.path().join("index.html"), "<!doctype html><p>app").unwrap();
    std::fs::write(ui.path().join("assets/app.js"), "let app;").unwrap();
    let mut settings = unlimited();
    settings.ui_dir = Some(ui.path().to_path_buf());
    let api = test_api(settings).await;
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    // A deep link opens the app at its page.
    let page = api.call(get("/bots/ema/config")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("<p>app"), "{}", page.text);
    assert_eq!(api.call(get("/assets/app.js")).await.text, "let app;");
    // A missing script fails as one, not as the app's HTML.
    let missing = api.call(get("/assets/gone-1234.js")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(!missing.text.contains("<p>app"));
    // A path under /api that no route takes is the API's 404, behind its
    // authentication like every API path.
    for path in ["/api", "/api/", "/api/v2/bots", "/api/v1/", "/api/v1/nope"] {
        assert_problem(&api.call(get(path)).await, 401);
        let signed = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
            .body(Body::empty())
            .unwrap();
        let answer = api.call(signed).await;
        assert_problem(&answer, 404);
        assert_eq!(answer.body["detail"], format!("no route {path}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_are_created_once_committed_and_deleted() {
    let api = test_api(unlimited()).await;
    let created = api.send_json("POST", "/bots", &bot("r1")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["state"], "stopped");
    assert_eq!(created.body["config_version"], 1);
    // The runner committed version 1 before the answer.
    let stored = api.store.config_version("r1", 1).unwrap().unwrap();
    assert_eq!(stored.actor, "STRATBOX_ADMIN_TOKEN");
    let taken = api.send_json("POST", "/bots", &bot("r1")).await;
    assert_problem(&taken, 409);
    assert_eq!(pointers(&taken), ["/id"], "the field to change");
    // Taken whatever else is wrong: fixing the rest would not help.
    let mut taken_and_bad = bot("r1");
    taken_and_bad["capital"]["initial"] = json!("-5");
    let taken = api.send_json("POST", "/bots", &taken_and_bad).await;
    assert_problem(&taken, 409);
    assert_eq!(pointers(&taken), ["/id"]);
    let mut bad = bot("r2");
    bad["capital"]["initial"] = json!("-5");
    bad["strategy"]["params"]["fast"] = json!(0);
    let refused = api.send_json("POST", "/bots", &bad).await;
    assert_problem(&refused, 422);
    assert!(
        pointers(&refused).contains(&"/capital/initial".to_string()),
        "{}",
        refused.text
    );
    assert!(
        api.store.config_version("r2", 1).unwrap().is_none(),
        "nothing created"
    );
    // A form serde reads but the schema forbids (a mapping given as a list)
    // is refused when a bot is created, as in a config PUT.
    let mut listed = bot("r3");
    listed["capital"] = json!(["USDT", "10000"]);
    let created_from_list = api.send_json("POST", "/bots", &listed).await;
    assert_problem(&created_from_list, 422);
    assert_eq!(pointers(&created_from_list), ["/capital"]);
    assert_problem(&api.get("/bots/r3").await, 404);
    listed["id"] = json!("r1");
    let put_from_list = api.send_json("PUT", "/bots/r1/config", &listed).await;
    assert_problem(&put_from_list, 422);
    assert_eq!(pointers(&put_from_list), ["/capital"]);
    let deleted = api.delete("/bots/r1").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(
        api.store.config_version("r1", 1).unwrap().is_none(),
        "removed with it"
    );
    assert_problem(&api.get("/bots/r1").await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_commands_follow_the_state_machine() {
    let api = test_api(unlimited()).await;
    api.send_json("POST", "/bots", &bot("c1")).await;
    let listed_state = || async {
        let list = api.get("/bots").await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text);
        list.body["items"][0]["state"].clone()
    };
    assert_eq!(listed_state().await, "stopped");
    // `flatten` belongs to stop alone: elsewhere it is refused, not ignored.
    let flat_start = api
        .send_json("POST", "/bots/c1/start", &json!({ "flatten": true }))
        .await;
    assert_problem(&flat_start, 422);
    assert_eq!(pointers(&flat_start), ["/flatten"]);
    let flat_bulk = json!({ "command": "pause", "bots": ["c1"], "flatten": true });
    let refused_bulk = api.send_json("POST", "/bots/commands", &flat_bulk).await;
    assert_problem(&refused_bulk, 422);
    assert_eq!(pointers(&refused_bulk), ["/flatten"]);
    assert_eq!(listed_state().await, "stopped");
    // Options sent as anything but JSON are refused for their type.
    let as_text = TestApi::request("POST", "/bots/c1/start")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    assert_problem(&api.call(as_text).await, 415);
    let started = api.post("/bots/c1/start").await;
    assert_eq!(started.body["state"], "running", "{}", started.text);
    // The list renders each snapshot once: it must follow every change.
    assert_eq!(listed_state().await, "running");
    let again = api.post("/bots/c1/start").await;
    assert_eq!(again.status, StatusCode::OK, "a no-op succeeds");
    // The audit trail tells the start that did nothing from the one that
    // started the bot.
    let details = audit_details(&api, "POST /api/v1/bots/c1/start", 2).await;
    assert_eq!(details[0], "nothing to do: the bot is already running");
    assert_ne!(details[1], details[0]);
    let killed = api.post("/bots/c1/kill").await;
    assert_eq!(killed.body["state"], "killed");
    assert_eq!(listed_state().await, "killed");
    let refused = api.post("/bots/c1/start").await;
    assert_problem(&refused, 409);
    assert_eq!(refused.body["allowed_commands"], json!(["reset"]));
    assert_eq!(api.post("/bots/c1/reset").await.body["state"], "stopped");
    let flat_stop = api
        .send_json("POST", "/bots/c1/stop", &json!({ "flatten": true }))
        .await;
    assert_eq!(flat_stop.status, StatusCode::OK, "{}", flat_stop.text);
    let commands = api.get("/bots/c1/commands").await;
    assert_eq!(commands.body["allowed_commands"][0], "start");
}

/// `PUT /bots/{id}/config` of `config` with `If-Match: tag`.
async fn put_config_if_match(api: &TestApi, config: &Value, tag: &str) -> Answer {
    let path = format!("/bots/{}/config", config["id"].as_str().unwrap());
    api.call(
        TestApi::request("PUT", &path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::IF_MATCH, tag)
            .body(Body::from(config.to_string()))
            .unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_changes_are_conditional_versioned_and_rolled_back() {
    let api = test_api(unlimited()).await;
    api.send_json("POST", "/bots", &bot("k1")).await;
    let read = api.get("/bots/k1/config").await;
    assert_eq!(read.headers[header::ETAG], "\"v1\"");
    let mut changed = bot("k1");
    changed["strategy"]["params"]["size"]["quantity"] = json!(2);
    let stale = put_config_if_match(&api, &changed, "\"v9\"").await;
    assert_problem(&stale, 412);
    // A tag without its quotes is a malformed header, not a stale version.
    let unquoted = put_config_if_match(&api, &changed, "v1").await;
    assert_problem(&unquoted, 400);
    assert!(
        unquoted.text.contains("is not an entity tag"),
        "{}",
        unquoted.text
    );
    let applied = put_config_if_match(&api, &changed, "\"v1\"").await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.text);
    assert_eq!(applied.body["version"], 2);
    assert_eq!(applied.headers[header::ETAG], "\"v2\"");
    assert_eq!(
        api.store.config_version("k1", 2).unwrap().unwrap().config["strategy"]["params"]["size"],
        json!({ "quantity": 2 })
    );
    let mut invalid = bot("k1");
    invalid["strategy"]["params"]["slow"] = json!(1);
    let refused = api
        .send_json("POST", "/bots/k1/config/validate", &invalid)
        .await;
    assert_problem(&refused, 422);
    assert!(
        pointers(&refused)
            .iter()
            .any(|p| p.starts_with("/strategy/params"))
    );
    let versions = api.get("/bots/k1/config/versions").await;
    assert_eq!(versions.body["items"][0]["version"], 2);
    let rolled = api
        .send_json("POST", "/bots/k1/config/rollback", &json!({ "version": 1 }))
        .await;
    assert_eq!(rolled.body["version"], 3, "{}", rolled.text);
    assert_eq!(
        rolled.body["config"]["strategy"]["params"]["size"],
        json!({ "quantity": 1 })
    );
    // The config in force sent again changes nothing: no new version.
    let same = api.send_json("PUT", "/bots/k1/config", &bot("k1")).await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.text);
    assert_eq!(same.body["version"], 3);
    assert_eq!(same.headers[header::ETAG], "\"v3\"");
    let versions = api.get("/bots/k1/config/versions").await;
    assert_eq!(versions.body["items"][0]["version"], 3);
    assert_eq!(api.store.config_version("k1", 4).unwrap(), None);
    let details = audit_details(&api, "PUT /api/v1/bots/k1/config", 3).await;
    assert_eq!(
        details[0], "nothing to do: config v3 is already in force",
        "{details:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_put_the_store_refuses_leaves_the_old_config_in_force_and_stored() {
    let api = test_api(unlimited()).await;
    api.send_json("POST", "/bots", &bot("refused")).await;
    api.post("/bots/refused/start").await;
    api.push("refused", &[10, 10, 10]).await;
    // The real store refuses every new config version, as a full disk would.
    let database =
        rusqlite::Connection::open(api.dir.path().join(stratbox_host::store::DATABASE_FILE))
            .unwrap();
    database
        .execute_batch(
            "CREATE TRIGGER refuse_configs BEFORE INSERT ON config_versions
             BEGIN SELECT RAISE(ABORT, 'the disk is full'); END;",
        )
        .unwrap();
    let mut changed = bot("refused");
    changed["name"] = json!("never in force");
    changed["strategy"]["params"]["size"]["quantity"] = json!(3);
    let refused = api.send_json("PUT", "/bots/refused/config", &changed).await;
    assert_problem(&refused, 503);
    let in_force = api.get("/bots/refused/config").await;
    assert_eq!(in_force.body["name"], "Bot refused", "{}", in_force.text);
    assert_eq!(in_force.headers[header::ETAG], "\"v1\"");
    let status = api.get("/bots/refused").await;
    assert_eq!(status.body["state"], "running", "{}", status.text);
    assert_eq!(status.body["config_version"], 1);
    assert!(api.store.config_version("refused", 2).unwrap().is_none());
    // Once the store takes it again, the same change gets the next version.
    database
        .execute_batch("DROP TRIGGER refuse_configs")
        .unwrap();
    let applied = api.send_json("PUT", "/bots/refused/config", &changed).await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.text);
    assert_eq!(applied.body["version"], 2);
    let stored = api.store.config_version("refused", 2).unwrap().unwrap();
    assert_eq!(stored.config["name"], "never in force");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_order_the_strategy_fails_on_answers_409_with_the_order() {
    let api = test_api(unlimited()).await;
    let mut config = bot("pf");
    config["strategy"] = json!({ "plugin": "panicker", "params": { "on": "fill" } });
    config["autostart"] = json!(true);
    api.send_json("POST", "/bots", &config).await;
    api.push("pf", &[100]).await;
    let buy = json!({ "side": "buy", "kind": "market", "quantity": "1" });
    let failed = api.send_json("POST", "/bots/pf/orders", &buy).await;
    assert_problem(&failed, 409);
    assert_eq!(
        failed.body["type"],
        "https://stratbox.dev/problems/strategy-failed"
    );
    assert_eq!(failed.body["order"]["status"], "filled", "{}", failed.text);
    assert_eq!(failed.body["order"]["filled_quantity"], "1");
    // The fill stands and is stored; the bot is in error.
    let status = api.get("/bots/pf").await;
    assert_eq!(
        (&status.body["state"], &status.body["position"]),
        (&json!("error"), &json!("1"))
    );
    let fills = api.get("/bots/pf/fills").await;
    assert_eq!(
        fills.body["items"][0]["order_id"],
        failed.body["order"]["id"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_orders_risk_and_stats_come_from_the_runner_and_the_store() {
    let api = test_api(unlimited()).await;
    let mut config = bot("m1");
    config["autostart"] = json!(true);
    config["risk"] = json!({ "max_order_notional": "100" });
    api.send_json("POST", "/bots", &config).await;
    api.push("m1", &[10, 10, 10, 13, 14]).await;
    let sell = json!({ "side": "sell", "quantity": "1", "client_tag": "by-hand" });
    let placed = api.send_json("POST", "/bots/m1/orders", &sell).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    assert_eq!(placed.body["client_tag"], "by-hand");
    assert_eq!(placed.body["status"], "filled");
    let refused = api.send_json("POST", "/bots/m1/orders", &sell).await;
    assert_problem(&refused, 422);
    assert!(
        refused.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("position")
    );
    // Selling more than is held is the quantity's fault: the pointer says
    // so. The detail leads with what happened and says the error once more
    // as the list does, so a client can show the lead and the list.
    assert_eq!(refused.body["errors"][0]["pointer"], "/quantity");
    assert_eq!(
        refused.body["detail"],
        format!(
            "the order was refused: /quantity: {}",
            refused.body["errors"][0]["message"].as_str().unwrap()
        )
    );
    let orders = api.get("/bots/m1/orders?status=closed").await;
    assert_eq!(orders.body["items"].as_array().unwrap().len(), 2);
    let risk = api.get("/bots/m1/risk").await;
    assert_eq!(risk.body["trading_state"], "ACTIVE");
    let stats = api.get("/bots/m1/stats").await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.text);
    assert_eq!(stats.body["trades"], 1, "{}", stats.text);
    assert_problem(&api.delete("/bots/m1/orders/999").await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategies_presets_market_and_tokens() {
    let api = test_api(unlimited()).await;
    let strategies = api.get("/strategies").await;
    assert_eq!(strategies.body["items"][0]["name"], "ema-cross");
    // What an optimisation of it searches when given no ranges.
    assert_eq!(
        strategies.body["items"][0]["default_search"],
        json!({ "fast": "3..21:2", "slow": "25..205:20" })
    );
    assert_eq!(strategies.body["items"][0]["search_problems"], json!({}));
    let garbage = api
        .call(
            TestApi::request("POST", "/strategies")
                .header(header::CONTENT_TYPE, "application/wasm")
                .body(Body::from(vec![0u8; 64]))
                .unwrap(),
        )
        .await;
    assert_problem(&garbage, 422);
    assert!(
        api.store.plugin_blobs().unwrap().is_empty(),
        "a refused upload is not kept"
    );
    // A plugin whose search keyword cannot be read: its view says why, and
    // what is searched instead.
    let uploaded = api
        .call(
            TestApi::request("POST", "/strategies")
                .header(header::CONTENT_TYPE, "application/wasm")
                .body(Body::from(
                    std::fs::read(support::fixture_path("stretch-skipper")).unwrap(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.text);
    assert_eq!(
        uploaded.body["default_search"],
        json!({ "mode": "skip,peek" })
    );
    let problem = uploaded.body["search_problems"]["mode"].as_str().unwrap();
    assert!(problem.contains("peek..skip"), "{problem}");
    let preset = api
        .send_json("PUT", "/presets/fast", &bot("template"))
        .await;
    assert!(preset.status.is_success(), "{}", preset.text);
    assert_eq!(api.get("/presets/fast").await.body["name"], "fast");
    // A name no preset can have is a malformed request, and stores nothing.
    let misnamed = api
        .send_json("PUT", "/presets/Fast%20One", &bot("template"))
        .await;
    assert_problem(&misnamed, 400);
    assert!(
        misnamed.body["detail"]
            .as_str()
            .unwrap()
            .contains("1 to 64 lowercase")
    );
    assert_problem(&api.get("/presets/Fast%20One").await, 404);
    let from_preset = api
        .send_json(
            "POST",
            "/bots",
            &json!({ "preset": "fast", "overrides": { "id": "p1", "name": "From preset" } }),
        )
        .await;
    assert_eq!(
        from_preset.status,
        StatusCode::CREATED,
        "{}",
        from_preset.text
    );
    let candles = api
        .get("/market/candles?symbol=BTCUSDT&timeframe=1m&limit=5")
        .await;
    assert_eq!(candles.status, StatusCode::OK, "{}", candles.text);
    let token = api
        .send_json(
            "POST",
            "/tokens",
            &json!({ "role": "viewer", "name": "watcher" }),
        )
        .await;
    assert_eq!(token.status, StatusCode::CREATED);
    let viewer = token.body["token"].as_str().unwrap().to_string();
    let as_viewer = |method: &str, path: &str| {
        Request::builder()
            .method(method)
            .uri(format!("/api/v1{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {viewer}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        api.call(as_viewer("GET", "/bots")).await.status,
        StatusCode::OK
    );
    assert_problem(&api.call(as_viewer("POST", "/bots/p1/start")).await, 403);
    let id = token.body["id"].as_str().unwrap();
    let revoked = api.delete(&format!("/tokens/{id}")).await;
    assert!(revoked.status.is_success());
    assert_problem(&api.call(as_viewer("GET", "/bots")).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_bounded_answers() {
    let mut settings = unlimited();
    settings.limits.failed_auth_per_minute = 3;
    let api = test_api(settings).await;
    // A made-up method counts as `other`; nothing of it is kept.
    let odd = Request::builder()
        .method("FROBNICATE")
        .uri("/api/v1/bots")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(api.call(odd).await.status, StatusCode::METHOD_NOT_ALLOWED);
    let metrics = api
        .call(
            Request::get("/metrics")
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(!metrics.text.contains("FROBNICATE") && metrics.text.contains("method=\"other\""));
    // Bytes that are no text in an id are a malformed request.
    let not_text = api.get("/bots/%ff%fe").await;
    assert_problem(&not_text, 400);
    assert_eq!(
        not_text.body["detail"],
        "the path's `id` is not UTF-8 text once percent-decoded"
    );
    // A long id is not echoed back whole.
    let unknown = api.get(&format!("/bots/{}", "y".repeat(20_000))).await;
    assert_problem(&unknown, 404);
    let detail = unknown.body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("no bot `yyy") && detail.ends_with('…'),
        "{detail:.40}"
    );
    assert_eq!(
        detail.chars().count(),
        1_000,
        "a problem's texts end at 1,000 characters"
    );
    // A long or odd client request id is replaced by one of the server's.
    let long_id = "x".repeat(30_000);
    let answer = api
        .call(
            TestApi::request("GET", "/health")
                .header("x-request-id", &long_id)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let echoed = answer.headers["x-request-id"].to_str().unwrap();
    assert!(echoed.len() <= 64 && echoed != long_id);
    // Failed authentications from one address: after the quota, 429 with
    // Retry-After, whatever the token.
    let from = |token: &str| {
        let mut request = Request::post("/api/v1/bots")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 9], 4000))));
        request
    };
    for _ in 0..3 {
        assert_problem(&api.call(from("guess")).await, 401);
    }
    let blocked = api.call(from("guess")).await;
    assert_problem(&blocked, 429);
    assert!(blocked.headers.contains_key(header::RETRY_AFTER));
    assert_problem(&api.call(from("another guess")).await, 429);
    // An operator behind the same address is not locked out.
    assert_eq!(
        api.call(from(ADMIN)).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    // A YAML alias bomb is refused at once, with the reason.
    let mut bomb = String::from("a: &a [");
    bomb.push_str(&"0,".repeat(20_000));
    bomb.push_str("0]\nb: [");
    bomb.push_str(&"*a,".repeat(20_000));
    bomb.push_str("*a]\n");
    let started = std::time::Instant::now();
    let refused = api
        .call(
            TestApi::request("POST", "/bots")
                .header(header::CONTENT_TYPE, "application/yaml")
                .body(Body::from(bomb))
                .unwrap(),
        )
        .await;
    assert_problem(&refused, 400);
    assert!(
        refused.body["detail"].as_str().unwrap().contains("aliases"),
        "{}",
        refused.text
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // A replay file outside the feeds folder: one message, whatever the file.
    let mut answers = Vec::new();
    for file in [
        "/etc/shadow",
        "/proc/self/environ",
        "/etc/no-such-file",
        "../../etc/passwd",
    ] {
        let mut config = bot("replayer");
        config["market"]["feed"] = json!({ "kind": "replay", "file": file });
        let answer = api.send_json("POST", "/bots", &config).await;
        assert_problem(&answer, 422);
        let message = answer.body["errors"][0]["message"].as_str().unwrap();
        answers.push(message.replace(file, "FILE"));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert!(answers[0].contains("feeds folder"), "{answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_commands_and_the_emergency_stop() {
    let api = test_api(unlimited()).await;
    for id in ["e1", "e2"] {
        api.send_json("POST", "/bots", &bot(id)).await;
    }
    let started = api
        .send_json(
            "POST",
            "/bots/commands",
            &json!({ "command": "start", "bots": ["e1", "nope"] }),
        )
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.text);
    let results = started.body["results"].as_array().unwrap();
    assert_eq!(
        (&results[0]["ok"], &results[0]["state"]),
        (&json!(true), &json!("running"))
    );
    assert_eq!(results[1]["ok"], false, "{}", started.text);
    let stopped = api
        .send_json("POST", "/emergency/stop-all", &json!({}))
        .await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    assert_eq!(stopped.body["killing"], json!(["e1"]));
    assert_eq!(stopped.body["untouched"], json!(["e2"]));
    let mut watch = api.state.manager.watch("e1").unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        watch.wait_for(|s| s.state == BotState::Killed),
    )
    .await
    .expect("killed")
    .unwrap();
    assert_eq!(api.get("/emergency").await.body["engaged"], true);
    assert_problem(&api.post("/bots/e2/start").await, 409);
    let all = api.post("/bots/start-all").await;
    assert!(
        all.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["ok"] == false),
        "nothing starts while engaged: {}",
        all.text
    );
    assert_eq!(api.post("/emergency/reset").await.status, StatusCode::OK);
    assert_eq!(api.get("/emergency").await.body["engaged"], false);
    assert_eq!(api.post("/bots/e2/start").await.body["state"], "running");
    // One command for both: e2 runs already, e1 (killed) may not start;
    // the audit entry names each.
    let again = api
        .send_json(
            "POST",
            "/bots/commands",
            &json!({ "command": "start", "bots": ["e2", "e1"] }),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    let details = audit_details(&api, "POST /api/v1/bots/commands", 2).await;
    assert_eq!(
        details[0],
        "1 of 2 bots; nothing to do for: e2; refused: e1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bots_records_and_the_hosts_reads() {
    let api = test_api(unlimited()).await;
    api.send_json("POST", "/bots", &bot("t1")).await;
    api.post("/bots/t1/start").await;
    // EMA(2)/EMA(3): the cross at 13 buys one at the next open (14).
    api.push("t1", &[10, 10, 10, 13, 14]).await;
    let status = api.get("/bots/t1/status").await;
    assert_eq!(status.body["position"], "1", "{}", status.text);
    let positions = api.get("/bots/t1/positions").await;
    assert_eq!(positions.status, StatusCode::OK, "{}", positions.text);
    let fills = api.get("/bots/t1/fills").await;
    let fill = &fills.body["items"][0];
    assert_eq!(
        (&fill["side"], &fill["price"]),
        (&json!("buy"), &json!("14"))
    );
    let equity = api.get("/bots/t1/equity").await;
    assert!(
        equity.body["items"].as_array().unwrap().len() >= 5,
        "{}",
        equity.text
    );
    let trades = api.get("/bots/t1/trades").await;
    assert_eq!(trades.body["items"], json!([]), "no round trip yet");
    api.post("/bots/t1/close-all").await;
    let trades = api.get("/bots/t1/trades").await;
    assert_eq!(
        trades.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        trades.text
    );
    let logs = api.get("/bots/t1/logs").await;
    assert_eq!(logs.status, StatusCode::OK, "{}", logs.text);
    // Host-wide: the audit trail of the calls above, the system, metrics.
    let audit = api.get("/audit?limit=100").await;
    assert!(
        audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|entry| entry["action"] == "POST /api/v1/bots/t1/close-all"),
        "{}",
        audit.text
    );
    let global = api.get("/metrics/global").await;
    assert_eq!(global.body["bots"], 1, "{}", global.text);
    assert_eq!(global.body["bots_by_state"]["running"], 1);
    let system = api.get("/system").await;
    assert!(
        system.body["threads"].as_u64().unwrap() > 1,
        "{}",
        system.text
    );
    assert_eq!(api.get("/logs").await.status, StatusCode::OK);
    assert_eq!(api.get("/me").await.body["role"], "admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_sets_and_backtests() {
    let api = test_api(unlimited()).await;
    let candles = stratbox_host::data::synthesize(&stratbox_host::data::SynthParams::new(2_000, 3));
    let mut csv = Vec::new();
    stratbox_host::data::write_candles(&mut csv, &candles).unwrap();
    let upload = TestApi::request("POST", "/data?symbol=BTCUSDT&timeframe=1m")
        .header(header::CONTENT_TYPE, "text/csv")
        .body(Body::from(csv))
        .unwrap();
    let created = api.call(upload).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["count"], 2_000);
    // Prices finer than 18 places are stored exactly; a column whose
    // finest value leaves too few digits for its largest is the upload's
    // fault, at its line, not the server's.
    for (volume, status) in [
        ("0.0000000000000000001", StatusCode::CREATED),
        (
            "0.0000000000000000000000000001",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let text = format!(
            "ts,open,high,low,close,volume\n\
             1704067200000,100,101,99,100,10000000000\n\
             1704067260000,100,101,99,100,{volume}\n"
        );
        let upload = TestApi::request("POST", "/data?symbol=FINEUSDT&timeframe=1m")
            .header(header::CONTENT_TYPE, "text/csv")
            .body(Body::from(text))
            .unwrap();
        let answer = api.call(upload).await;
        assert_eq!(answer.status, status, "{volume}: {}", answer.text);
    }
    let fine = api.get("/data/FINEUSDT/1m").await;
    assert_eq!(fine.status, StatusCode::OK, "{}", fine.text);
    assert!(
        fine.text.contains(",0.0000000000000000001\n"),
        "{}",
        fine.text
    );
    let deleted = api.delete("/data/FINEUSDT/1m").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let listed = api.get("/data").await;
    assert_eq!(
        listed.body["items"][0]["symbol"], "BTCUSDT",
        "{}",
        listed.text
    );
    let mut config = bot("bt");
    config["market"] = json!({ "symbol": "BTCUSDT", "timeframe": "1m" });
    let queued = api
        .send_json(
            "POST",
            "/backtests",
            &json!({ "config": config, "data": "BTCUSDT/1m" }),
        )
        .await;
    assert_eq!(queued.status, StatusCode::ACCEPTED, "{}", queued.text);
    let job = format!("/backtests/{}", queued.body["id"].as_str().unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let done = loop {
        let job = api.get(&job).await;
        if job.body["state"] != "queued" && job.body["state"] != "running" {
            break job;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", job.text);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done.body["state"], "done", "{}", done.text);
    assert_eq!(done.body["candles"], 2_000);
    let result = api.get(&format!("{job}/result")).await;
    assert_eq!(result.status, StatusCode::OK, "{}", result.text);
    let deleted = api.delete("/data/BTCUSDT/1m").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert_eq!(api.get("/data").await.body["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_over_sse() {
    let api = test_api(unlimited()).await;
    let request = TestApi::request("GET", "/events?channels=bots")
        .body(Body::empty())
        .unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    api.send_json("POST", "/bots", &bot("s1")).await;
    let mut body = response.into_body();
    let mut text = String::new();
    while !text.contains("bot.created") {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("an event arrives")
            .expect("the stream goes on")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    let data = text
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .unwrap();
    let event: Value = serde_json::from_str(data).unwrap();
    assert_eq!(event["type"], "bot.created", "{text}");
    assert_eq!(event["data"]["id"], "s1");
    assert_eq!(event["data"]["config_version"], 1);
}
