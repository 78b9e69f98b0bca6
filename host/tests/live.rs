//! The live runtime with stepped feeds: candles are pushed by the test and
//! the test waits for the bot's snapshot to show each one. No sleeps.

mod support;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use stratbox_host::backtest::{self, BacktestOptions};
use stratbox_host::data::{SynthParams, synthesize};
use stratbox_host::domain::Candle;
use stratbox_host::domain::config::BotConfig;
use stratbox_host::engine::TradingState;
use stratbox_host::live::{
    BotManager, BotSnapshot, BotState, Channel, CommandError, CommandKind, EventBus, FeedHandle,
    Filter, ManagerError,
};
use stratbox_host::plugin::PluginRegistry;
use support::{RUNTIME, fixture_path, load};

fn registry() -> Arc<RwLock<PluginRegistry>> {
    let mut registry = PluginRegistry::default();
    for name in ["ema-cross", "rules"] {
        registry.insert(load(name)).unwrap();
    }
    registry
        .insert(Arc::new(
            RUNTIME.load_file(&fixture_path("panicker")).unwrap(),
        ))
        .unwrap();
    Arc::new(RwLock::new(registry))
}

fn config(id: &str, strategy: &str, extra: &str) -> BotConfig {
    let text = format!(
        "id: {id}\nname: {id}\nstrategy: {strategy}\nmarket: {{ symbol: BTCUSDT, timeframe: 1m, feed: {{ kind: stepped }} }}\ncapital: {{ quote: USDT, initial: 10000 }}\ninstrument: {{ min_notional: 0 }}\n{extra}"
    );
    BotConfig::from_yaml(&text).unwrap_or_else(|issues| panic!("{issues:?}"))
}

const EMA_2_3: &str = "{ plugin: ema-cross, params: { fast: 2, slow: 3, size: { quantity: 1 } } }";

struct Fixture {
    manager: BotManager,
    feed: FeedHandle,
    next_ts: i64,
}

impl Fixture {
    async fn new(bots: &[BotConfig]) -> Self {
        let manager = BotManager::new(registry(), Arc::new(EventBus::new(1)));
        for bot in bots {
            manager.create(bot.clone()).await.unwrap();
        }
        let feed = manager.feeds().feed_for(&bots[0]).unwrap();
        Self {
            manager,
            feed,
            next_ts: 1_704_067_200_000,
        }
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
        tokio::time::timeout(Duration::from_secs(30), watch.wait_for(|s| condition(s)))
            .await
            .expect("the bot should get there")
            .unwrap()
            .clone()
    }

    fn get(&self, id: &str) -> Arc<BotSnapshot> {
        self.manager.get(id).unwrap()
    }
}

async fn go_long(f: &mut Fixture) {
    // EMA(2)/EMA(3): 10, 10, 10, 13 crosses above -> buy at the next open.
    for close in [dec!(10), dec!(10), dec!(10), dec!(13), dec!(14)] {
        f.push(close).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paper_bot_trades_and_events_are_published_in_sequence() {
    let bot = config("ema", EMA_2_3, "autostart: true\n");
    let mut f = Fixture::new(&[bot]).await;
    let mut orders = f.manager.bus().subscribe(
        Filter {
            channels: [Channel::Orders].into(),
            bot_id: Some("ema".into()),
        },
        None,
    );
    let mut signals = f.manager.bus().subscribe(
        Filter {
            channels: [Channel::Signals].into(),
            bot_id: None,
        },
        None,
    );
    go_long(&mut f).await;
    let snapshot = f.get("ema");
    assert_eq!(snapshot.state, BotState::Running);
    assert_eq!(snapshot.position, dec!(1));
    assert_eq!(snapshot.candles_processed, 5);
    let placed = orders.next().await.unwrap();
    let filled = orders.next().await.unwrap();
    assert_eq!((placed.kind, filled.kind), ("order.placed", "order.filled"));
    assert!(filled.seq > placed.seq);
    let signal = signals.next().await.unwrap();
    assert_eq!(signal.kind, "signal");
    assert_eq!(signal.data["actions"][0]["place"]["side"], "buy");
    assert!(signal.seq < placed.seq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_keeps_deciding_refuses_entries_and_lets_exits_fill() {
    let mut f = Fixture::new(&[config("ema", EMA_2_3, "autostart: true\n")]).await;
    go_long(&mut f).await;
    f.manager.control("ema", CommandKind::Pause).await.unwrap();
    let mut rejected = f.manager.bus().subscribe(
        Filter {
            channels: [Channel::Orders].into(),
            bot_id: None,
        },
        None,
    );
    // 7 crosses below: the exit is placed and fills at the next open.
    f.push(dec!(7)).await;
    f.push(dec!(7)).await;
    assert_eq!(f.get("ema").position, dec!(0));
    // 10 crosses above again: the entry is refused because the bot is paused.
    f.push(dec!(10)).await;
    let snapshot = f.get("ema");
    assert_eq!(snapshot.state, BotState::Paused);
    assert_eq!(snapshot.candles_processed, 8);
    let mut kinds = Vec::new();
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(200), rejected.next()).await
    {
        kinds.push((
            event.kind,
            event.data["rejection"]["check"]
                .as_str()
                .map(str::to_string),
        ));
    }
    assert!(
        kinds.contains(&("order.rejected", Some("paused".into()))),
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|(k, _)| *k == "order.filled"), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_flattens_halts_and_start_waits_for_reset() {
    let mut f = Fixture::new(&[config("ema", EMA_2_3, "autostart: true\n")]).await;
    go_long(&mut f).await;
    let killed = f.manager.control("ema", CommandKind::Kill).await.unwrap();
    assert_eq!(
        (killed.state, killed.trading_state),
        (BotState::Killed, TradingState::Halted)
    );
    assert_eq!(killed.position, dec!(0));
    assert!(killed.kill_switch.is_some());
    // Killing again is a no-op; starting is refused with the allowed commands.
    f.manager.control("ema", CommandKind::Kill).await.unwrap();
    match f.manager.control("ema", CommandKind::Start).await {
        Err(ManagerError::Command(CommandError::NotAllowed { allowed, .. })) => {
            assert_eq!(allowed, ["reset"])
        }
        other => panic!("start should be refused: {other:?}"),
    }
    let reset = f.manager.control("ema", CommandKind::Reset).await.unwrap();
    assert_eq!(
        (reset.state, reset.trading_state),
        (BotState::Stopped, TradingState::Active)
    );
    assert_eq!(
        f.manager
            .control("ema", CommandKind::Start)
            .await
            .unwrap()
            .state,
        BotState::Running
    );
    // Start on a running bot succeeds and changes nothing.
    assert_eq!(
        f.manager
            .control("ema", CommandKind::Start)
            .await
            .unwrap()
            .state,
        BotState::Running
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
    let after = f.manager.reconfigure("ema", swapped).await.unwrap();
    assert_eq!(after.config_version, 2);
    assert_eq!((after.position, after.cash), (before.position, before.cash));
    assert_eq!(after.state, BotState::Running);
    for candle in &candles[50..] {
        f.push_candle(*candle).await;
    }
    // 5 + 100 candles, each processed exactly once across the swap.
    assert_eq!(f.get("ema").candles_processed, 105);
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
        match f.manager.reconfigure("ema", candidate).await {
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
async fn a_trapping_plugin_puts_only_its_own_bot_in_error() {
    let bots = [
        config("ema", EMA_2_3, "autostart: true\n"),
        config("bad", "{ plugin: panicker }", "autostart: true\n"),
    ];
    let mut f = Fixture::new(&bots).await;
    f.push(dec!(10)).await;
    let bad = f.wait_for("bad", |s| s.state == BotState::Error).await;
    assert!(
        bad.error
            .as_deref()
            .unwrap()
            .contains("boom: indicator state corrupted"),
        "{:?}",
        bad.error
    );
    for close in [dec!(10), dec!(10), dec!(13), dec!(14)] {
        f.push(close).await;
    }
    let ema = f.get("ema");
    assert_eq!(
        (ema.state, ema.candles_processed, ema.position),
        (BotState::Running, 5, dec!(1))
    );
    // The failed bot can be deleted; the running one cannot.
    f.manager.delete("bad").await.unwrap();
    assert!(f.manager.get("bad").is_none());
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
    let outcomes = f.manager.emergency_stop_all().await;
    assert_eq!(outcomes.len(), 2);
    for id in ["a", "b"] {
        let s = f.get(id);
        assert_eq!((s.state, s.position), (BotState::Killed, dec!(0)));
    }
    f.manager.control("a", CommandKind::Reset).await.unwrap();
    assert!(matches!(
        f.manager.control("a", CommandKind::Start).await,
        Err(ManagerError::EmergencyEngaged)
    ));
    assert!(matches!(
        f.manager.create(config("c", EMA_2_3, "")).await,
        Err(ManagerError::EmergencyEngaged)
    ));
    f.manager.emergency_reset();
    assert_eq!(
        f.manager
            .control("a", CommandKind::Start)
            .await
            .unwrap()
            .state,
        BotState::Running
    );
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
    let mut system = f.manager.bus().subscribe(
        Filter {
            channels: [Channel::System].into(),
            bot_id: Some("parity".into()),
        },
        None,
    );
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
    let recent = &expected.trades[expected.trades.len() - snapshot.recent_trades.len()..];
    assert_eq!(snapshot.recent_trades.as_slice(), recent);
    // It was told it was behind, and skipped nothing.
    let lagged = system.next().await.unwrap();
    assert_eq!(lagged.kind, "lagged");
    assert_eq!(lagged.data["skipped"], 0);
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
    assert!(
        f.manager
            .feeds()
            .feed_for(&a)
            .unwrap()
            .same_feed(&f.manager.feeds().feed_for(&b).unwrap())
    );
    let mut other_seed = a.clone();
    other_seed.market.feed = stratbox_host::domain::config::FeedConfig::Synthetic {
        seed: 6,
        interval_ms: Some(2),
    };
    assert!(
        !f.manager
            .feeds()
            .feed_for(&a)
            .unwrap()
            .same_feed(&f.manager.feeds().feed_for(&other_seed).unwrap())
    );
    // Two milliseconds a candle: both bots see candles flowing.
    for id in ["a", "b"] {
        f.wait_for(id, |s| s.candles_processed >= 20).await;
    }
    // Bulk commands reach every bot.
    let stopped = f.manager.stop_all().await;
    assert!(
        stopped
            .iter()
            .all(|(_, outcome)| outcome.as_ref().is_ok_and(|s| s.state == BotState::Stopped))
    );
    let started = f.manager.start_all().await;
    assert!(
        started
            .iter()
            .all(|(_, outcome)| outcome.as_ref().is_ok_and(|s| s.state == BotState::Running))
    );
    let restarted = f.manager.restart_all().await;
    assert_eq!(restarted.len(), 2);
}
