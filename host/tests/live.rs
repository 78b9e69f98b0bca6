//! The live runtime (the manager and its runners) with stepped feeds:
//! candles are pushed by the test and the test waits for the bot's snapshot
//! to show each one. No sleeps.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use stratbox_host::backtest::{self, BacktestOptions};
use stratbox_host::data::{SynthParams, synthesize};
use stratbox_host::domain::Candle;
use stratbox_host::domain::config::BotConfig;
use stratbox_host::engine::TradingState;
use stratbox_host::live::{
    BotManager, BotSnapshot, BotState, Channel, CommandError, CommandKind, CommitFuture, CommitLog,
    ConfigChange, EventBus, EventData, FeedHandle, Filter, HostRecord, LagReason, Lifecycle,
    ManagerError, Outcome, RecordBatch,
};
use stratbox_host::plugin::PluginRegistry;
use support::{RUNTIME, fixture_path, load};

fn registry() -> Arc<RwLock<PluginRegistry>> {
    let mut registry = PluginRegistry::default();
    for name in ["ema-cross", "rules"] {
        registry.insert(load(name)).unwrap();
    }
    for fixture in ["panicker", "looper", "slow-warmup"] {
        registry
            .insert(Arc::new(RUNTIME.load_file(&fixture_path(fixture)).unwrap()))
            .unwrap();
    }
    Arc::new(RwLock::new(registry))
}

fn config(id: &str, strategy: &str, extra: &str) -> BotConfig {
    let text = format!(
        "id: {id}\nname: {id}\nstrategy: {strategy}\nmarket: {{ symbol: BTCUSDT, timeframe: 1m, feed: {{ kind: stepped }} }}\ncapital: {{ quote: USDT, initial: 10000 }}\ninstrument: {{ min_notional: 0 }}\n{extra}"
    );
    BotConfig::from_yaml(&text).unwrap_or_else(|issues| panic!("{issues:?}"))
}

const EMA_2_3: &str = "{ plugin: ema-cross, params: { fast: 2, slow: 3, size: { quantity: 1 } } }";

/// A commit log that keeps what it commits and refuses while told to.
#[derive(Default)]
struct TestLog {
    refuse: AtomicBool,
    batches: Mutex<Vec<RecordBatch>>,
    host: Mutex<Vec<HostRecord>>,
}

impl CommitLog for TestLog {
    fn commit(&self, batch: RecordBatch) -> CommitFuture<'_> {
        let refused = self.refuse.load(Ordering::SeqCst);
        if !refused {
            self.batches.lock().unwrap().push(batch);
        }
        Box::pin(async move {
            if refused {
                Err("the disk is full".to_string())
            } else {
                Ok(())
            }
        })
    }

    fn commit_host(&self, record: HostRecord) -> CommitFuture<'_> {
        self.host.lock().unwrap().push(record);
        Box::pin(async { Ok(()) })
    }
}

impl TestLog {
    /// The config versions committed for `bot`, in order.
    fn versions(&self, bot: &str) -> Vec<u64> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b.bot_id == bot)
            .filter_map(|b| b.config.as_ref().map(|c| c.version))
            .collect()
    }

    /// The config version of the last checkpoint committed for `bot`.
    fn checkpoint_version(&self, bot: &str) -> Option<u64> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|b| b.bot_id == bot)
            .map(|b| b.state.config_version)
    }
}

struct Fixture {
    manager: BotManager,
    feed: FeedHandle,
    next_ts: i64,
    log: Arc<TestLog>,
}

fn change(config: BotConfig) -> ConfigChange {
    ConfigChange {
        document: serde_json::to_value(&config).unwrap(),
        expected_versions: None,
        actor: "test".into(),
        dry_run: false,
    }
}

impl Fixture {
    async fn new(bots: &[BotConfig]) -> Self {
        Self::with(bots, |manager| manager).await
    }

    async fn with(bots: &[BotConfig], setup: impl FnOnce(BotManager) -> BotManager) -> Self {
        let log = Arc::new(TestLog::default());
        let manager = setup(
            BotManager::new(registry(), Arc::new(EventBus::new(1))).with_commit_log(log.clone()),
        );
        for bot in bots {
            manager.create(bot.clone(), "test").await.unwrap();
        }
        let feed = manager.feeds().feed_for(&bots[0]).await.unwrap();
        Self {
            manager,
            feed,
            next_ts: 1_704_067_200_000,
            log,
        }
    }

    async fn control(&self, id: &str, kind: CommandKind) -> Arc<BotSnapshot> {
        self.manager
            .control(id, kind, false)
            .await
            .unwrap_or_else(|e| panic!("{} on {id}: {e}", kind.name()))
            .snapshot
    }

    /// Push one candle (open = close) and wait until every running bot has
    /// processed it.
    async fn push(&mut self, close: Decimal) {
        let candle = Candle {
            ts: self.next_ts,
            open: close,
            high: close,
            low: close,
            close,
            volume: dec!(1),
        };
        self.push_candle(candle).await;
    }

    async fn push_candle(&mut self, candle: Candle) {
        self.next_ts = candle.ts + 60_000;
        self.feed.publish(candle).unwrap();
        for snapshot in self.manager.list() {
            if matches!(snapshot.state, BotState::Running | BotState::Paused) {
                self.wait_for(&snapshot.id, |s| {
                    s.last_candle_ts >= Some(candle.ts)
                        || !matches!(s.state, BotState::Running | BotState::Paused)
                })
                .await;
            }
        }
    }

    async fn wait_for(
        &self,
        id: &str,
        condition: impl Fn(&BotSnapshot) -> bool,
    ) -> Arc<BotSnapshot> {
        let mut watch = self.manager.watch(id).unwrap();
        // A generous bound so a bug fails the test instead of hanging it.
        match tokio::time::timeout(Duration::from_secs(30), watch.wait_for(|s| condition(s))).await
        {
            Ok(snapshot) => snapshot.unwrap().clone(),
            Err(_) => panic!(
                "bot {id} did not get there; it is at {:?}",
                self.manager.get(id)
            ),
        }
    }

    fn get(&self, id: &str) -> Arc<BotSnapshot> {
        self.manager.get(id).unwrap()
    }
}

/// An operator's market order tagged `by-hand`.
fn market_by_hand(
    side: stratbox_host::domain::Side,
    quantity: Decimal,
) -> stratbox_host::domain::OrderRequest {
    stratbox_host::domain::OrderRequest {
        client_tag: "by-hand".into(),
        side,
        kind: stratbox_host::domain::OrderKind::Market,
        quantity,
        price: None,
        reduce_only: false,
        origin: stratbox_host::domain::OrderOrigin::Manual,
    }
}

async fn go_long(f: &mut Fixture) {
    // EMA(2)/EMA(3): 10, 10, 10, 13 crosses above -> buy at the next open.
    for close in [dec!(10), dec!(10), dec!(10), dec!(13), dec!(14)] {
        f.push(close).await;
    }
}

fn all_of(channels: &[Channel], bot: Option<&str>) -> Filter {
    Filter {
        channels: channels.iter().copied().collect(),
        bots: bot.map(str::to_string).into_iter().collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paper_bot_trades_and_events_are_published_in_sequence() {
    let bot = config("ema", EMA_2_3, "autostart: true\n");
    let mut f = Fixture::new(&[bot]).await;
    let bus = f.manager.bus().clone();
    let mut orders = bus
        .subscribe(all_of(&[Channel::Orders], Some("ema")), None)
        .unwrap();
    let mut signals = bus
        .subscribe(all_of(&[Channel::Signals], None), None)
        .unwrap();
    go_long(&mut f).await;
    let snapshot = f.get("ema");
    assert_eq!(snapshot.state, BotState::Running);
    assert_eq!(snapshot.position, dec!(1));
    assert_eq!(snapshot.candles_processed, 5);
    let placed = orders.next().await.unwrap();
    let filled = orders.next().await.unwrap();
    assert_eq!(
        (placed.kind(), filled.kind()),
        ("order.placed", "order.filled")
    );
    assert!(filled.seq > placed.seq);
    // The fill carries its order's new state: nobody has to look it up.
    let EventData::OrderFilled(filled) = &filled.data else {
        panic!("{filled:?}")
    };
    assert_eq!(filled.0.id, filled.1.order_id);
    assert_eq!(filled.0.status, stratbox_host::domain::OrderStatus::Filled);
    let signal = signals.next().await.unwrap();
    let EventData::Signal { actions, .. } = &signal.data else {
        panic!("{signal:?}")
    };
    assert_eq!(actions[0]["place"]["side"], "buy");
    assert!(signal.seq < placed.seq);
    // Everything it published was committed first, with the checkpoint.
    let committed_fills: usize = f
        .log
        .batches
        .lock()
        .unwrap()
        .iter()
        .map(|b| b.fills.len())
        .sum();
    assert_eq!(committed_fills, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_quiet_candles_bookkeeping_may_wait_for_the_store() {
    let mut f = Fixture::new(&[config("q", EMA_2_3, "autostart: true\n")]).await;
    go_long(&mut f).await;
    let batches = f.log.batches.lock().unwrap().clone();
    let creation = &batches[0];
    assert!(
        creation.config.is_some() && !creation.quiet,
        "a command is never quiet"
    );
    let trading: Vec<_> = batches
        .iter()
        .filter(|b| !b.orders.is_empty() || !b.fills.is_empty())
        .collect();
    assert!(!trading.is_empty(), "the bot bought");
    assert!(
        trading.iter().all(|b| !b.quiet),
        "orders and fills go at once"
    );
    let readings: Vec<_> = batches
        .iter()
        .filter(|b| b.orders.is_empty() && b.config.is_none() && !b.equity.is_empty())
        .collect();
    assert!(readings.len() >= 3, "{} quiet candles", readings.len());
    assert!(readings.iter().all(|b| b.quiet), "readings alone may wait");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_keeps_deciding_refuses_entries_and_lets_exits_fill() {
    let mut f = Fixture::new(&[config("ema", EMA_2_3, "autostart: true\n")]).await;
    go_long(&mut f).await;
    f.control("ema", CommandKind::Pause).await;
    let mut events = f
        .manager
        .bus()
        .subscribe(all_of(&[Channel::Orders], None), None)
        .unwrap();
    // 7 crosses below: the exit is placed and fills at the next open.
    f.push(dec!(7)).await;
    f.push(dec!(7)).await;
    assert_eq!(f.get("ema").position, dec!(0));
    // 10 crosses above again: the entry is refused because the bot is paused.
    f.push(dec!(10)).await;
    let snapshot = f.get("ema");
    assert_eq!(snapshot.state, BotState::Paused);
    assert_eq!(snapshot.candles_processed, 8);
    let mut seen = Vec::new();
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(200), events.next()).await
    {
        let check = match &event.data {
            EventData::OrderRejected(rejection) => Some(rejection.check.clone()),
            _ => None,
        };
        seen.push((event.kind(), check));
    }
    assert!(
        seen.contains(&("order.rejected", Some("paused".into()))),
        "{seen:?}"
    );
    assert!(seen.iter().any(|(k, _)| *k == "order.filled"), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_flattens_halts_and_start_waits_for_reset() {
    let mut f = Fixture::new(&[config("ema", EMA_2_3, "autostart: true\n")]).await;
    go_long(&mut f).await;
    let reply = f
        .manager
        .control("ema", CommandKind::Kill, false)
        .await
        .unwrap();
    assert_eq!(reply.outcome, Outcome::Applied);
    let killed = reply.snapshot;
    assert_eq!(
        (killed.state, killed.trading_state),
        (BotState::Killed, TradingState::Halted)
    );
    assert_eq!(killed.position, dec!(0));
    assert!(killed.kill_switch.is_some());
    // Killing again is a no-op; starting is refused with the allowed commands.
    let again = f
        .manager
        .control("ema", CommandKind::Kill, false)
        .await
        .unwrap();
    assert_eq!(again.outcome, Outcome::NoOp);
    match f.manager.control("ema", CommandKind::Start, false).await {
        Err(ManagerError::Command(CommandError::NotAllowed { allowed, .. })) => {
            assert_eq!(allowed, ["reset"])
        }
        other => panic!("start should be refused: {other:?}"),
    }
    let reset = f.control("ema", CommandKind::Reset).await;
    assert_eq!(
        (reset.state, reset.trading_state),
        (BotState::Stopped, TradingState::Active)
    );
    assert_eq!(
        f.control("ema", CommandKind::Start).await.state,
        BotState::Running
    );
    // Start on a running bot succeeds and changes nothing.
    let noop = f
        .manager
        .control("ema", CommandKind::Start, false)
        .await
        .unwrap();
    assert_eq!(
        (noop.outcome, noop.snapshot.state),
        (Outcome::NoOp, BotState::Running)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_all_on_a_stopped_bot_fills_at_the_feeds_latest_close() {
    let mut f = Fixture::new(&[config("ema", EMA_2_3, "autostart: true\n")]).await;
    go_long(&mut f).await;
    let stopped = f.control("ema", CommandKind::Stop).await;
    // The market moves on while the bot is stopped.
    f.push(dec!(20)).await;
    f.push(dec!(30)).await;
    let last_ts = f.next_ts - 60_000;
    let closed = f.control("ema", CommandKind::CloseAll).await;
    assert_eq!(closed.position, dec!(0));
    let fills: Vec<_> = f
        .log
        .batches
        .lock()
        .unwrap()
        .iter()
        .flat_map(|b| b.fills.clone())
        .collect();
    let exit = fills.last().expect("the close-all's fill");
    assert_eq!(exit.side, stratbox_host::domain::Side::Sell);
    assert_eq!(
        (exit.price, exit.ts),
        (dec!(30), last_ts + 60_000),
        "at the latest close and time, not the candle the bot stopped on"
    );
    // Starting again does not replay the candles passed over: the next
    // candle is the first it reads.
    f.control("ema", CommandKind::Start).await;
    f.push(dec!(30)).await;
    assert_eq!(
        f.get("ema").candles_processed,
        stopped.candles_processed + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drawdown_rule_set_to_kill_engages_by_itself() {
    let always_long = "{ plugin: rules, params: { entry: { above: { left: { price: close }, right: 0 } }, size_pct: 90 } }";
    let risk = "autostart: true\nrisk: { max_drawdown: { limit_pct: 5, action: kill } }\n";
    let mut f = Fixture::new(&[config("dd", always_long, risk)]).await;
    for close in [dec!(100), dec!(100), dec!(98), dec!(95), dec!(92), dec!(90)] {
        f.push(close).await;
    }
    let snapshot = f.wait_for("dd", |s| s.state == BotState::Killed).await;
    assert_eq!(snapshot.position, dec!(0));
    assert!(
        snapshot
            .kill_switch
            .as_deref()
            .unwrap()
            .contains("MaxDrawdown")
    );
    assert!(snapshot.risk_rules[0].breached);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_swap_keeps_every_candle_and_the_position() {
    let mut f = Fixture::new(&[config("ema", EMA_2_3, "autostart: true\n")]).await;
    go_long(&mut f).await;
    let candles = synthesize(&SynthParams {
        start_ts: f.next_ts,
        ..SynthParams::new(100, 9)
    });
    for candle in &candles[..50] {
        f.push_candle(*candle).await;
    }
    let before = f.get("ema");
    let swapped = config(
        "ema",
        "{ plugin: ema-cross, params: { fast: 3, slow: 5, size: { quantity: 1 } } }",
        "autostart: true\nrisk: { max_open_orders: 5 }\n",
    );
    let reply = f.manager.reconfigure("ema", change(swapped)).await.unwrap();
    assert_eq!(reply.outcome, Outcome::ConfigApplied { version: 2 });
    let after = reply.snapshot;
    assert_eq!(after.config_version, 2);
    assert_eq!((after.position, after.cash), (before.position, before.cash));
    assert_eq!(after.state, BotState::Running);
    for candle in &candles[50..] {
        f.push_candle(*candle).await;
    }
    // 5 + 100 candles, each processed exactly once across the swap.
    assert_eq!(f.get("ema").candles_processed, 105);
    // The version was committed by the runner, with a checkpoint of it.
    assert_eq!(f.log.versions("ema"), [1, 2]);
    assert_eq!(f.log.checkpoint_version("ema"), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_hot_swap_decisions_follow_the_new_parameters() {
    let mut f = Fixture::new(&[config("ema", EMA_2_3, "autostart: true\n")]).await;
    go_long(&mut f).await;
    assert_eq!(
        f.get("ema").position,
        dec!(1),
        "bought one with the old size"
    );
    let three = "{ plugin: ema-cross, params: { fast: 2, slow: 3, size: { quantity: 3 } } }";
    let swapped = config("ema", three, "autostart: true\n");
    f.manager.reconfigure("ema", change(swapped)).await.unwrap();
    // Cross below: the exit sells what is held; cross above: the entry now
    // buys three.
    for close in [dec!(7), dec!(7), dec!(7)] {
        f.push(close).await;
    }
    assert_eq!(f.get("ema").position, dec!(0));
    for close in [dec!(10), dec!(13), dec!(14)] {
        f.push(close).await;
    }
    assert_eq!(f.get("ema").position, dec!(3), "the new size decides");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_change_the_store_refuses_changes_nothing() {
    let mut f = Fixture::new(&[config("ema", EMA_2_3, "autostart: true\n")]).await;
    go_long(&mut f).await;
    let before = f.get("ema");
    f.log.refuse.store(true, Ordering::SeqCst);
    let three = "{ plugin: ema-cross, params: { fast: 2, slow: 3, size: { quantity: 3 } } }";
    match f
        .manager
        .reconfigure("ema", change(config("ema", three, "autostart: true\n")))
        .await
    {
        Err(ManagerError::Command(CommandError::NotStored(reason))) => {
            assert!(reason.contains("disk is full"), "{reason}")
        }
        other => panic!("the change must fail: {other:?}"),
    }
    f.log.refuse.store(false, Ordering::SeqCst);
    let after = f.get("ema");
    assert_eq!(after.config_version, 1);
    assert_eq!(after.config, before.config, "the old config is in force");
    assert_eq!(after.state, BotState::Running);
    assert_eq!(f.log.versions("ema"), [1], "and it is the one stored");
    // The old strategy still decides: the next entry buys one, not three.
    for close in [dec!(7), dec!(7), dec!(7), dec!(10), dec!(13), dec!(14)] {
        f.push(close).await;
    }
    assert_eq!(f.get("ema").position, dec!(1));
    // A command the store refuses is undone too.
    f.log.refuse.store(true, Ordering::SeqCst);
    assert!(matches!(
        f.manager.control("ema", CommandKind::Pause, false).await,
        Err(ManagerError::Command(CommandError::NotStored(_)))
    ));
    assert_eq!(f.get("ema").state, BotState::Running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_store_refuses_is_not_done_but_a_kill_still_stops_the_bot() {
    let bots = [
        config("ema", EMA_2_3, "autostart: true\n"),
        config("idle", EMA_2_3, ""),
    ];
    let mut f = Fixture::new(&bots).await;
    go_long(&mut f).await;
    f.log.refuse.store(true, Ordering::SeqCst);
    let not_stored = |result: Result<_, ManagerError>| {
        matches!(
            result,
            Err(ManagerError::Command(CommandError::NotStored(_)))
        )
    };
    // Creating: nothing is registered.
    assert!(not_stored(
        f.manager
            .create(config("new", EMA_2_3, ""), "test")
            .await
            .map(|_| ())
    ));
    assert!(f.manager.get("new").is_none());
    // Deleting: the bot stays.
    assert!(not_stored(f.manager.delete("idle").await.map(|_| ())));
    assert_eq!(f.get("idle").state, BotState::Stopped);
    // A new capital (stopped and flat): the books stay as they were.
    let mut richer = bots[1].clone();
    richer.capital.initial = dec!(20000);
    assert!(not_stored(
        f.manager
            .reconfigure("idle", change(richer))
            .await
            .map(|_| ())
    ));
    let idle = f.get("idle");
    assert_eq!((idle.equity, idle.config_version), (dec!(10000), 1));
    // A kill is not stored either, but the bot must not trade: it is
    // killed in memory, and flat.
    assert!(not_stored(
        f.manager
            .control("ema", CommandKind::Kill, false)
            .await
            .map(|_| ())
    ));
    let ema = f.get("ema");
    assert_eq!((ema.state, ema.position), (BotState::Killed, dec!(0)));
    // A later command the store refuses is undone without taking the
    // kill's records with it: they go with the next commit that is stored.
    assert!(not_stored(
        f.manager
            .control("ema", CommandKind::Reset, false)
            .await
            .map(|_| ())
    ));
    assert_eq!(f.get("ema").state, BotState::Killed);
    f.log.refuse.store(false, Ordering::SeqCst);
    f.control("ema", CommandKind::Reset).await;
    let batches = f.log.batches.lock().unwrap();
    let stored = batches.iter().rev().find(|b| b.bot_id == "ema").unwrap();
    assert_eq!(
        (stored.kill_switches.len(), stored.fills.len()),
        (1, 1),
        "the kill and its flatten are stored with the reset"
    );
    assert_eq!(stored.state.state, BotState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_match_is_checked_by_the_runner_and_dry_runs_change_nothing() {
    let mut f = Fixture::new(&[config("ema", EMA_2_3, "autostart: true\n")]).await;
    go_long(&mut f).await;
    let three = "{ plugin: ema-cross, params: { fast: 2, slow: 3, size: { quantity: 3 } } }";
    let dry = ConfigChange {
        dry_run: true,
        ..change(config("ema", three, "autostart: true\n"))
    };
    let reply = f.manager.reconfigure("ema", dry).await.unwrap();
    assert_eq!(reply.outcome, Outcome::ConfigValid);
    assert_eq!(f.get("ema").config_version, 1);
    let stale = ConfigChange {
        expected_versions: Some(vec![7]),
        ..change(config("ema", three, "autostart: true\n"))
    };
    match f.manager.reconfigure("ema", stale).await {
        Err(ManagerError::Command(CommandError::VersionMismatch { expected, current })) => {
            assert_eq!((expected, current), (vec![7], 1))
        }
        other => panic!("a stale If-Match must be refused: {other:?}"),
    }
    let current = ConfigChange {
        expected_versions: Some(vec![1]),
        ..change(config("ema", three, "autostart: true\n"))
    };
    let reply = f.manager.reconfigure("ema", current).await.unwrap();
    assert_eq!(reply.outcome, Outcome::ConfigApplied { version: 2 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_reconfigure_changes_nothing() {
    let mut f = Fixture::new(&[config("ema", EMA_2_3, "autostart: true\n")]).await;
    go_long(&mut f).await;
    let before = f.get("ema");
    let bad_params = config(
        "ema",
        "{ plugin: ema-cross, params: { fast: 30, slow: 10 } }",
        "",
    );
    let mut moved = config("ema", EMA_2_3, "");
    moved.market.symbol = "ETHUSDT".into();
    for (candidate, pointer) in [
        (bad_params, "/strategy/params/slow"),
        (moved, "/market/symbol"),
    ] {
        // Bad values are invalid; a market change while running is not
        // hot-swappable (the API answers 422 and 409).
        match f.manager.reconfigure("ema", change(candidate)).await {
            Err(ManagerError::Command(
                CommandError::Invalid(issues) | CommandError::NotHotSwappable(issues),
            )) => {
                assert!(issues.iter().any(|i| i.pointer == pointer), "{issues:?}");
            }
            other => panic!("should be refused: {other:?}"),
        }
    }
    let after = f.get("ema");
    assert_eq!(
        (after.config_version, after.position, after.plugin.clone()),
        (1, before.position, before.plugin.clone())
    );
    f.push(dec!(14)).await;
    assert_eq!(f.get("ema").candles_processed, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_orders_answer_with_the_order_or_the_check_that_refused_it() {
    let mut f = Fixture::new(&[config(
        "ema",
        EMA_2_3,
        "autostart: true\nrisk: { max_order_notional: 100 }\n",
    )])
    .await;
    go_long(&mut f).await;
    let request = |quantity: Decimal| market_by_hand(stratbox_host::domain::Side::Sell, quantity);
    let (order, snapshot) = f
        .manager
        .place_order("ema", request(dec!(1)))
        .await
        .unwrap();
    assert_eq!(order.status, stratbox_host::domain::OrderStatus::Filled);
    assert_eq!(order.client_tag, "by-hand");
    assert_eq!(snapshot.position, dec!(0));
    match f.manager.place_order("ema", request(dec!(1))).await {
        Err(ManagerError::Command(CommandError::OrderRefused(rejection))) => {
            assert_eq!(rejection.check, "position")
        }
        other => panic!("selling what is not held must be refused: {other:?}"),
    }
    // A tag names one open order: the runner, which knows them, says so.
    let resting = stratbox_host::domain::OrderRequest {
        client_tag: "resting".into(),
        side: stratbox_host::domain::Side::Buy,
        kind: stratbox_host::domain::OrderKind::Limit,
        price: Some(dec!(1)),
        ..request(dec!(1))
    };
    let (open, _) = f.manager.place_order("ema", resting.clone()).await.unwrap();
    assert_eq!(open.status, stratbox_host::domain::OrderStatus::Open);
    match f.manager.place_order("ema", resting).await {
        Err(ManagerError::Command(CommandError::Invalid(issues))) => {
            assert_eq!(issues[0].pointer, "/client_tag")
        }
        other => panic!("a tag in use must be refused: {other:?}"),
    }
    assert_eq!(f.get("ema").open_orders.len(), 1);
    assert!(matches!(
        f.manager.cancel_order("ema", 999).await,
        Err(ManagerError::Command(CommandError::NoSuchOrder(999)))
    ));
    // A stopped bot reads no candles: no market order fills at its last
    // price; a limit order rests until it runs.
    f.control("ema", CommandKind::Stop).await;
    match f.manager.place_order("ema", request(dec!(1))).await {
        Err(ManagerError::Command(CommandError::Invalid(issues))) => {
            assert_eq!(issues[0].pointer, "/kind")
        }
        other => panic!("a stopped bot takes no market order: {other:?}"),
    }
    let limit = stratbox_host::domain::OrderRequest {
        client_tag: "while-stopped".into(),
        side: stratbox_host::domain::Side::Buy,
        kind: stratbox_host::domain::OrderKind::Limit,
        price: Some(dec!(1)),
        ..request(dec!(1))
    };
    let (rests, _) = f.manager.place_order("ema", limit).await.unwrap();
    assert_eq!(rests.status, stratbox_host::domain::OrderStatus::Open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_that_never_ran_takes_a_limit_order_and_no_other() {
    let f = Fixture::new(&[config("new", EMA_2_3, "")]).await;
    let limit = stratbox_host::domain::OrderRequest {
        client_tag: "first".into(),
        kind: stratbox_host::domain::OrderKind::Limit,
        price: Some(dec!(9)),
        ..market_by_hand(stratbox_host::domain::Side::Buy, dec!(1))
    };
    let (rests, _) = f.manager.place_order("new", limit.clone()).await.unwrap();
    assert_eq!(rests.status, stratbox_host::domain::OrderStatus::Open);
    assert_eq!(rests.price, Some(dec!(9)));
    // A stop's trigger means nothing before the market has a price.
    let stop = stratbox_host::domain::OrderRequest {
        client_tag: "stop".into(),
        kind: stratbox_host::domain::OrderKind::Stop,
        side: stratbox_host::domain::Side::Sell,
        ..limit
    };
    match f.manager.place_order("new", stop).await {
        Err(ManagerError::Command(CommandError::OrderRefused(rejection))) => {
            assert_eq!(rejection.check, "no_price")
        }
        other => panic!("a stop before any price must be refused: {other:?}"),
    }
    assert_eq!(f.get("new").open_orders.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_filled_before_the_strategy_failed_is_answered_with_the_order() {
    let mut f = Fixture::new(&[config(
        "bad",
        "{ plugin: panicker, params: { on: fill } }",
        "autostart: true\n",
    )])
    .await;
    f.push(dec!(10)).await;
    let request = market_by_hand(stratbox_host::domain::Side::Buy, dec!(1));
    match f.manager.place_order("bad", request).await {
        Err(ManagerError::Command(CommandError::StrategyFailed {
            message,
            order: Some(order),
        })) => {
            assert_eq!(order.status, stratbox_host::domain::OrderStatus::Filled);
            assert_eq!(order.client_tag, "by-hand");
            assert!(
                message.contains("a fill of 1 was not expected"),
                "{message}"
            );
        }
        other => panic!("the filled order must come back with the failure: {other:?}"),
    }
    let bad = f.get("bad");
    assert_eq!((bad.state, bad.position), (BotState::Error, dec!(1)));
    let stored = f
        .log
        .batches
        .lock()
        .unwrap()
        .iter()
        .any(|b| b.bot_id == "bad" && b.fills.len() == 1 && b.state.state == BotState::Error);
    assert!(stored, "the fill and the error are committed together");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_plugin_puts_only_its_own_bot_in_error() {
    let bots = [
        config("ema", EMA_2_3, "autostart: true\n"),
        config("bad", "{ plugin: panicker }", "autostart: true\n"),
    ];
    let mut f = Fixture::new(&bots).await;
    f.push(dec!(10)).await;
    let bad = f.wait_for("bad", |s| s.state == BotState::Error).await;
    let error = bad.error.as_deref().unwrap();
    assert!(error.contains("boom: indicator state corrupted"), "{error}");
    // Naming the candle it failed on, as a time.
    assert!(
        error.starts_with("plugin failed at the candle of ") && error.contains("Z: "),
        "{error}"
    );
    for close in [dec!(10), dec!(10), dec!(13), dec!(14)] {
        f.push(close).await;
    }
    let ema = f.get("ema");
    assert_eq!(
        (ema.state, ema.candles_processed, ema.position),
        (BotState::Running, 5, dec!(1))
    );
    // The failed bot can be deleted (its removal is committed); the running
    // one cannot.
    f.manager.delete("bad").await.unwrap();
    assert!(f.manager.get("bad").is_none());
    let deleted = f
        .log
        .batches
        .lock()
        .unwrap()
        .iter()
        .any(|b| b.bot_id == "bad" && matches!(b.lifecycle, Lifecycle::Deleted));
    assert!(deleted);
    assert!(matches!(
        f.manager.delete("ema").await,
        Err(ManagerError::Command(CommandError::NotAllowed { .. }))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_stop_kills_everything_and_blocks_start_until_reset() {
    let bots = [
        config("a", EMA_2_3, "autostart: true\n"),
        config("b", EMA_2_3, "autostart: true\n"),
    ];
    let mut f = Fixture::new(&bots).await;
    go_long(&mut f).await;
    let dispatch = f.manager.emergency_stop_all("ops").await.unwrap();
    assert_eq!(dispatch.killing, ["a", "b"]);
    assert!(matches!(
        f.log.host.lock().unwrap()[..],
        [HostRecord::Emergency { engaged: true, .. }]
    ));
    for id in ["a", "b"] {
        let s = f.wait_for(id, |s| s.state == BotState::Killed).await;
        assert_eq!(s.position, dec!(0));
    }
    f.control("a", CommandKind::Reset).await;
    assert!(matches!(
        f.manager.control("a", CommandKind::Start, false).await,
        Err(ManagerError::Command(CommandError::EmergencyEngaged))
    ));
    assert!(matches!(
        f.manager
            .create(config("c", EMA_2_3, "autostart: true\n"), "test")
            .await,
        Err(ManagerError::Command(CommandError::EmergencyEngaged))
    ));
    f.manager.emergency_reset("ops").await.unwrap();
    assert_eq!(
        f.control("a", CommandKind::Start).await.state,
        BotState::Running
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_stored_running_comes_back_killed_while_the_emergency_stop_is_engaged() {
    // The host stopped after the emergency stop was committed but before
    // this bot's kill was: its stored state says running, with a position.
    let bot = config("a", EMA_2_3, "autostart: true\n");
    let mut f = Fixture::new(std::slice::from_ref(&bot)).await;
    go_long(&mut f).await;
    let stored = f
        .log
        .batches
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|b| b.bot_id == "a")
        .map(|b| b.state.clone())
        .unwrap();
    assert_eq!(stored.state, BotState::Running);
    let log = Arc::new(TestLog::default());
    let restarted = BotManager::new(registry(), Arc::new(EventBus::new(1)))
        .with_commit_log(log.clone())
        .with_emergency_engaged(true);
    restarted.restore(bot, 1, stored, true).await.unwrap();
    let mut watch = restarted.watch("a").unwrap();
    let killed = tokio::time::timeout(
        Duration::from_secs(30),
        watch.wait_for(|s| s.state == BotState::Killed),
    )
    .await
    .expect("killed at once")
    .unwrap()
    .clone();
    assert_eq!(killed.position, dec!(0), "and flat");
    assert!(
        log.batches
            .lock()
            .unwrap()
            .iter()
            .any(|b| b.bot_id == "a" && b.state.state == BotState::Killed),
        "the kill is committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candle_the_store_refuses_is_undone_and_stops_the_bot() {
    let mut f = Fixture::new(&[config("ema", EMA_2_3, "autostart: true\n")]).await;
    // 10, 10, 10, 13: the strategy buys; the fill comes at the next open.
    for close in [dec!(10), dec!(10), dec!(10), dec!(13)] {
        f.push(close).await;
    }
    let before = f.get("ema");
    assert_eq!(before.position, dec!(0));
    f.log.refuse.store(true, Ordering::SeqCst);
    f.push(dec!(14)).await;
    let after = f.get("ema");
    assert_eq!(after.state, BotState::Error);
    assert!(after.error.as_deref().unwrap().contains("disk is full"));
    assert_eq!(
        after.position,
        dec!(0),
        "the fill the store refused is undone"
    );
    assert_eq!(after.cash, before.cash);
    assert_eq!(after.candles_processed, before.candles_processed);
    // What runs from here is what the store holds: a reset starts a fresh
    // strategy on the books of the last commit.
    f.log.refuse.store(false, Ordering::SeqCst);
    f.control("ema", CommandKind::Reset).await;
    let restarted = f.control("ema", CommandKind::Start).await;
    assert_eq!(restarted.state, BotState::Running);
    assert_eq!(restarted.position, dec!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_interrupts_a_strategy_stuck_in_its_call() {
    let looping = "{ plugin: looper }";
    let limits = "autostart: true\nlimits: { wall_clock_ms: 60000, fuel_per_call: 10000000000 }\n";
    let mut f = Fixture::new(&[config("loop", looping, limits)]).await;
    f.feed
        .publish(Candle {
            ts: f.next_ts,
            open: dec!(1),
            high: dec!(1),
            low: dec!(1),
            close: dec!(1),
            volume: dec!(1),
        })
        .unwrap();
    f.next_ts += 60_000;
    // The strategy spins for up to a minute; the kill stops it at once.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let killed = f.control("loop", CommandKind::Kill).await;
    assert_eq!(killed.state, BotState::Killed);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // A reset starts a fresh instance (the interrupted one is poisoned).
    let reset = f.control("loop", CommandKind::Reset).await;
    assert_eq!(reset.state, BotState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_is_answered_during_a_long_warm_up_which_is_abandoned() {
    const HISTORY: i64 = 50_000;
    let limits = "autostart: true\nlimits: { wall_clock_ms: 60000, fuel_per_call: 10000000000 }\n";
    let quick = "{ plugin: slow-warmup, params: { warmup: 50000, spin: 0 } }";
    let mut f = Fixture::new(&[config("slow", quick, limits)]).await;
    for i in 0..HISTORY {
        let close = Decimal::from(100 + i % 7);
        f.feed
            .publish(Candle {
                ts: f.next_ts + i * 60_000,
                open: close,
                high: close,
                low: close,
                close,
                volume: dec!(1),
            })
            .unwrap();
    }
    let last = f.next_ts + (HISTORY - 1) * 60_000;
    f.next_ts = last + 60_000;
    f.wait_for("slow", |s| s.last_candle_ts == Some(last)).await;
    // New parameters: a fresh instance warming up on 50,000 candles that
    // each cost it about 100,000 steps (seconds in all, in chunks).
    let slow = "{ plugin: slow-warmup, params: { warmup: 50000, spin: 100000 } }";
    let warm_up_started = std::time::Instant::now();
    let reconfigure = f
        .manager
        .reconfigure("slow", change(config("slow", slow, limits)));
    let kill = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = std::time::Instant::now();
        let killed = f.manager.control("slow", CommandKind::Kill, false).await;
        (killed, sent.elapsed())
    };
    let (changed, (killed, kill_took)) = tokio::join!(reconfigure, kill);
    let changed_after = warm_up_started.elapsed();
    assert!(
        matches!(
            changed,
            Err(ManagerError::Command(CommandError::Interrupted))
        ),
        "{changed:?}"
    );
    assert_eq!(killed.unwrap().snapshot.state, BotState::Killed);
    assert!(kill_took < Duration::from_secs(1), "{kill_took:?}");
    assert!(changed_after < Duration::from_secs(2), "{changed_after:?}");
    // The abandoned change left the running config as it was.
    assert_eq!(f.get("slow").config_version, 1);
    assert_eq!(f.log.versions("slow"), [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_not_taken_in_time_is_never_applied() {
    let looping = "{ plugin: looper }";
    let limits = "autostart: true\nlimits: { wall_clock_ms: 1500, fuel_per_call: 10000000000 }\n";
    let f = Fixture::with(&[config("loop", looping, limits)], |manager| {
        manager.with_command_timeout(Duration::from_millis(200))
    })
    .await;
    f.feed
        .publish(Candle {
            ts: f.next_ts,
            open: dec!(1),
            high: dec!(1),
            low: dec!(1),
            close: dec!(1),
            volume: dec!(1),
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The runner is inside the strategy's call: it cannot take this in time.
    let renamed = {
        let mut c = config("loop", looping, limits);
        c.name = "renamed".into();
        c
    };
    assert!(matches!(
        f.manager.reconfigure("loop", change(renamed)).await,
        Err(ManagerError::Command(CommandError::Timeout(_)))
    ));
    // The call ends at its deadline; the bot fails; the abandoned change
    // is skipped, so the config is still version 1.
    f.wait_for("loop", |s| s.state == BotState::Error).await;
    let probe = ConfigChange {
        dry_run: true,
        ..change(config("loop", looping, limits))
    };
    let mut answered = None;
    for _ in 0..50 {
        if let Ok(reply) = f.manager.reconfigure("loop", probe.clone()).await {
            answered = Some(reply);
            break;
        }
    }
    let reply = answered.expect("the runner answers once the call has ended");
    assert_eq!(reply.snapshot.config_version, 1);
    assert_eq!(&*reply.snapshot.name, "loop");
    assert_eq!(f.log.versions("loop"), [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paper_bot_makes_exactly_the_backtests_trades() {
    // The candles go through a CSV file, as `stratbox backtest` reads them.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("candles.csv");
    let generated = synthesize(&SynthParams::new(3_000, 21));
    stratbox_host::data::write_candles(std::fs::File::create(&path).unwrap(), &generated).unwrap();
    let candles = stratbox_host::data::read_candles(&path).unwrap();

    let strategy =
        "{ plugin: ema-cross, params: { fast: 5, slow: 20, size: { percent_of_equity: 50 } } }";
    let bot = config(
        "parity",
        strategy,
        "autostart: true\nrisk: { max_drawdown: { limit_pct: 50, action: halt } }\n",
    );
    let expected = backtest::run(
        &bot,
        &load("ema-cross"),
        &candles,
        &BacktestOptions::default(),
    )
    .unwrap();
    assert!(expected.trades.len() > 20);

    let f = Fixture::new(std::slice::from_ref(&bot)).await;
    let mut system = f
        .manager
        .bus()
        .subscribe(all_of(&[Channel::System], Some("parity")), None)
        .unwrap();
    // Publish everything at once: the bot falls behind and catches up in order.
    for candle in &candles {
        f.feed.publish(*candle).unwrap();
    }
    let last = candles.last().unwrap().ts;
    let snapshot = f
        .wait_for("parity", |s| s.last_candle_ts == Some(last))
        .await;
    assert_eq!(snapshot.candles_processed, candles.len() as u64);
    assert_eq!(snapshot.equity, expected.portfolio.equity);
    assert_eq!(snapshot.realized_pnl, expected.portfolio.realized_pnl);
    // Every round trip, as committed, is the backtest's.
    let committed: Vec<_> = f
        .log
        .batches
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b.bot_id == "parity")
        .flat_map(|b| b.trades.clone())
        .collect();
    assert_eq!(committed, expected.trades);
    // It was told it was behind, and skipped nothing.
    let lagged = system.next().await.unwrap();
    assert!(
        matches!(
            lagged.data,
            EventData::Lagged {
                missed: 0,
                reason: LagReason::Backlog
            }
        ),
        "{lagged:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_synthetic_feeds_are_shared_and_run_accelerated() {
    let feed = "autostart: true\n";
    let mut a = config("a", EMA_2_3, feed);
    let mut b = config("b", EMA_2_3, feed);
    for bot in [&mut a, &mut b] {
        bot.market.feed = stratbox_host::domain::config::FeedConfig::Synthetic {
            seed: 5,
            interval_ms: Some(2),
        };
    }
    let f = Fixture::new(&[a.clone(), b.clone()]).await;
    let feeds = f.manager.feeds();
    assert!(
        feeds
            .feed_for(&a)
            .await
            .unwrap()
            .same_feed(&feeds.feed_for(&b).await.unwrap())
    );
    let mut other_seed = a.clone();
    other_seed.market.feed = stratbox_host::domain::config::FeedConfig::Synthetic {
        seed: 6,
        interval_ms: Some(2),
    };
    assert!(
        !feeds
            .feed_for(&a)
            .await
            .unwrap()
            .same_feed(&feeds.feed_for(&other_seed).await.unwrap())
    );
    // Two milliseconds a candle: both bots see candles flowing.
    for id in ["a", "b"] {
        f.wait_for(id, |s| s.candles_processed >= 20).await;
    }
    // Bulk commands reach every bot.
    let stopped = f.manager.stop_all().await;
    assert!(stopped.iter().all(|(_, outcome)| {
        outcome
            .as_ref()
            .is_ok_and(|r| r.snapshot.state == BotState::Stopped)
    }));
    let started = f.manager.start_all().await;
    assert!(started.iter().all(|(_, outcome)| {
        outcome
            .as_ref()
            .is_ok_and(|r| r.snapshot.state == BotState::Running)
    }));
    let restarted = f.manager.restart_all().await;
    assert_eq!(restarted.len(), 2);
}

/// Candles published while a bot was stopped are passed over at its start,
/// not announced as a gap in the feed; a real hole in the feed is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_after_a_stop_is_no_feed_gap_but_a_hole_in_the_feed_is() {
    let mut f = Fixture::new(&[config("g", EMA_2_3, "autostart: true\n")]).await;
    let mut system = f
        .manager
        .bus()
        .subscribe(all_of(&[Channel::System], Some("g")), None)
        .unwrap();
    f.push(dec!(100)).await;
    f.control("g", CommandKind::Stop).await;
    for _ in 0..3 {
        f.push(dec!(101)).await;
    }
    f.control("g", CommandKind::Start).await;
    f.push(dec!(102)).await;
    let before_hole = f.get("g").last_candle_ts.unwrap();
    // The feed skips two candles.
    f.next_ts += 2 * 60_000;
    f.push(dec!(103)).await;
    let gap = tokio::time::timeout(Duration::from_secs(5), system.next())
        .await
        .expect("the hole is announced")
        .unwrap();
    assert!(
        matches!(
            gap.data,
            EventData::FeedGap { after, missing: 2, .. } if after == before_hole
        ),
        "the first system event is the hole, not the start: {gap:?}"
    );
}
