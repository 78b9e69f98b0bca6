//! The backtester with real plugins: deterministic output, the kill-switch,
//! pre-trade refusals, resting stops, and the end-of-run option.

mod support;

use rust_decimal::Decimal;
use serde_json::json;
use stratbox_host::backtest::{self, BacktestOptions, EndOfRun};
use stratbox_host::data::{SynthParams, synthesize};
use stratbox_host::domain::config::BotConfig;
use stratbox_host::domain::{Candle, OrderKind, OrderOrigin, OrderStatus};
use stratbox_host::engine::Decider;
use stratbox_host::plugin::contract;
use stratbox_host::plugin::{PluginError, PluginInstance};
use support::load;

fn config(plugin: &str, params: serde_json::Value, extra: &str) -> BotConfig {
    let text = format!(
        "id: test-bot\nname: Test\nstrategy:\n  plugin: {plugin}\n  params: {params}\nmarket: {{ symbol: BTCUSDT, timeframe: 1m }}\ncapital: {{ quote: USDT, initial: 10000 }}\n{extra}"
    );
    BotConfig::from_yaml(&text).unwrap_or_else(|issues| panic!("{issues:?}"))
}

fn candles(count: usize, seed: u64) -> Vec<Candle> {
    synthesize(&SynthParams::new(count, seed))
}

#[test]
fn same_input_gives_byte_identical_json() {
    let plugin = load("ema-cross");
    let config = config(
        "ema-cross",
        json!({ "fast": 5, "slow": 20 }),
        "fees: { taker_bps: 7.5 }\n",
    );
    let data = candles(20_000, 3);
    let run = || {
        serde_json::to_vec(
            &backtest::run(&config, &plugin, &data, &BacktestOptions::default()).unwrap(),
        )
        .unwrap()
    };
    let first = run();
    assert_eq!(first, run());
    let result: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert!(result["metrics"]["trades"].as_u64().unwrap() > 50);
    assert!(result["equity_curve"].as_array().unwrap().len() <= 2_000);
    // Money is written as strings.
    assert!(result["portfolio"]["equity"].is_string());
}

#[test]
fn accounting_adds_up_over_a_whole_run() {
    let plugin = load("rules");
    let params = json!({
        "entry": { "crosses_above": { "left": { "ema": 9 }, "right": { "ema": 21 } } },
        "exit": { "crosses_below": { "left": { "ema": 9 }, "right": { "ema": 21 } } },
        "size_pct": 50, "stop_loss_pct": 0.5, "take_profit_pct": 1
    });
    let result = backtest::run(
        &config("rules", params, ""),
        &plugin,
        &candles(20_000, 5),
        &BacktestOptions::default(),
    )
    .unwrap();
    let p = &result.portfolio;
    assert_eq!(
        p.equity,
        Decimal::from(10_000) + p.realized_pnl - p.fees_paid + p.unrealized_pnl
    );
    let fees: Decimal = result.fills.iter().map(|f| f.fee).sum();
    assert_eq!(fees, p.fees_paid);
    // Stop-losses and take-profits rested at the venue and filled.
    let kinds: Vec<OrderKind> = result
        .orders
        .iter()
        .filter(|o| o.status == OrderStatus::Filled)
        .map(|o| o.kind)
        .collect();
    assert!(
        kinds.contains(&OrderKind::Stop) && kinds.contains(&OrderKind::Limit),
        "{kinds:?}"
    );
    // Closed round trips add up to the realized PnL net of their fees.
    let trade_pnl: Decimal = result.trades.iter().map(|t| t.pnl).sum();
    let open_fees: Decimal = if p.position.is_zero() {
        Decimal::ZERO
    } else {
        // Fees of the still-open position's buys are not in any trade yet.
        let last_flat = result.trades.last().map_or(i64::MIN, |t| t.exit_ts);
        result
            .fills
            .iter()
            .filter(|f| f.ts > last_flat)
            .map(|f| f.fee)
            .sum()
    };
    assert_eq!(trade_pnl, p.realized_pnl - p.fees_paid + open_fees);
}

#[test]
fn a_drawdown_rule_set_to_kill_flattens_and_halts() {
    // Always long: enter on the first candle, never exit. Only the
    // kill-switch can flatten it.
    let plugin = load("rules");
    let always = json!({ "entry": { "above": { "left": { "price": "close" }, "right": 0 } }, "size_pct": 95 });
    let risk = "risk:\n  max_drawdown: { limit_pct: 1, action: kill }\n";
    let result = backtest::run(
        &config("rules", always, risk),
        &plugin,
        &candles(20_000, 11),
        &BacktestOptions::default(),
    )
    .unwrap();
    let reason = result
        .risk
        .kill_switch
        .as_deref()
        .expect("kill-switch engaged");
    assert!(reason.contains("MaxDrawdown"), "{reason}");
    assert_eq!(result.risk.violations.len(), 1);
    assert!(result.risk.violations[0].observed >= Decimal::ONE);
    assert!(result.portfolio.position.is_zero());
    assert!(result.orders.iter().all(|o| o.status != OrderStatus::Open));
    let kill_ts = result.risk.violations[0].ts;
    // The flattening order came from the kill-switch, and nothing was placed after it.
    let flatten = result
        .orders
        .iter()
        .find(|o| o.origin == OrderOrigin::KillSwitch)
        .expect("flattened");
    assert_eq!(
        (flatten.status, flatten.created_ts),
        (OrderStatus::Filled, kill_ts)
    );
    assert_eq!(result.trades.len(), 1);
    assert!(result.orders.iter().all(|o| o.created_ts <= kill_ts));
    assert!(result.risk.rules[0].breached);
}

#[test]
fn refused_intents_are_recorded_and_never_reach_the_venue() {
    let plugin = load("ema-cross");
    let result = backtest::run(
        &config(
            "ema-cross",
            json!({ "fast": 3, "slow": 10 }),
            "risk: { max_order_notional: 100 }\n",
        ),
        &plugin,
        &candles(5_000, 2),
        &BacktestOptions::default(),
    )
    .unwrap();
    assert!(result.orders.is_empty());
    assert!(!result.rejections.is_empty());
    let first = &result.rejections[0];
    assert_eq!(first.check, "max_order_notional");
    assert!(
        first.message.contains("above the limit 100"),
        "{}",
        first.message
    );
}

#[test]
fn end_of_run_can_close_the_position() {
    let plugin = load("ema-cross");
    let config = config("ema-cross", json!({ "fast": 3, "slow": 10 }), "");
    // Find a range that ends with a position open.
    let data = candles(3_000, 4);
    let valued = (500..3_000)
        .step_by(97)
        .find_map(|n| {
            let r =
                backtest::run(&config, &plugin, &data[..n], &BacktestOptions::default()).unwrap();
            (!r.portfolio.position.is_zero()).then_some((n, r))
        })
        .expect("some range ends long");
    let (n, valued) = valued;
    let options = BacktestOptions {
        end_of_run: EndOfRun::CloseAtMarket,
        ..BacktestOptions::default()
    };
    let closed = backtest::run(&config, &plugin, &data[..n], &options).unwrap();
    assert!(closed.portfolio.position.is_zero());
    assert_eq!(closed.trades.len(), valued.trades.len() + 1);
    assert_eq!(closed.fills.last().unwrap().client_tag, "end-of-run");
    // Closing at the last close costs exactly the fee of that sale.
    let fee = closed.fills.last().unwrap().fee;
    assert_eq!(closed.portfolio.equity, valued.portfolio.equity - fee);
}

#[test]
fn from_and_to_select_candles() {
    let plugin = load("ema-cross");
    let data = candles(1_000, 1);
    let options = BacktestOptions {
        from: Some(data[100].ts),
        to: Some(data[300].ts),
        ..BacktestOptions::default()
    };
    let result = backtest::run(
        &config("ema-cross", json!({}), ""),
        &plugin,
        &data,
        &options,
    )
    .unwrap();
    assert_eq!(result.candles, 200);
    assert_eq!(result.start_ts, data[100].ts);
    let empty = BacktestOptions {
        from: Some(i64::MAX - 1),
        ..BacktestOptions::default()
    };
    assert!(backtest::run(&config("ema-cross", json!({}), ""), &plugin, &data, &empty).is_err());
}

#[test]
fn candles_of_a_shorter_timeframe_are_refused() {
    let plugin = load("ema-cross");
    let text = "id: t\nname: t\nstrategy: { plugin: ema-cross }\nmarket: { symbol: BTCUSDT, timeframe: 5m }\ncapital: { quote: USDT, initial: 1000 }\n";
    let config = BotConfig::from_yaml(text).unwrap();
    let err = backtest::run(
        &config,
        &plugin,
        &candles(100, 1),
        &BacktestOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("60000 ms apart"), "{err}");
}

#[test]
fn a_checkpoint_restores_the_books_and_the_run_continues_identically() {
    use stratbox_host::engine::{BotEngine, EngineCheckpoint};
    // SMA rules have a finite memory: a fresh instance warmed up on the
    // declared warm-up decides exactly as the one that saw everything.
    let params = json!({
        "entry": { "crosses_above": { "left": { "sma": 5 }, "right": { "sma": 20 } } },
        "exit": { "crosses_below": { "left": { "sma": 5 }, "right": { "sma": 20 } } },
        "size_pct": 50
    });
    let config = config("rules", params, "");
    let plugin = load("rules");
    let candles = candles(3_000, 9);
    let start = |config: &BotConfig| {
        let (instance, warmup) = plugin
            .start(
                &config.strategy.params,
                &support::btc_1m(),
                config.limits,
                "test-bot",
            )
            .unwrap();
        (BotEngine::new(config, instance).unwrap(), warmup as usize)
    };
    let (mut straight, _) = start(&config);
    for candle in &candles {
        straight.on_candle(candle).unwrap();
    }

    let (mut first, _) = start(&config);
    for candle in &candles[..1_500] {
        first.on_candle(candle).unwrap();
    }
    let stored = serde_json::to_string(&first.checkpoint()).unwrap();
    let checkpoint: EngineCheckpoint = serde_json::from_str(&stored).unwrap();
    let (mut resumed, warmup) = start(&config);
    assert!(warmup >= 20, "declares its warm-up: {warmup}");
    // Warm up on the candles before the restart point (decisions discarded),
    // then put the stored books back.
    for candle in &candles[1_500 - warmup - 1..1_500] {
        resumed.on_candle(candle).unwrap();
    }
    resumed.restore(checkpoint);
    assert_eq!(
        serde_json::to_string(&resumed.checkpoint()).unwrap(),
        stored,
        "restored exactly"
    );
    resumed.drain_events().for_each(drop);
    for candle in &candles[1_500..] {
        resumed.on_candle(candle).unwrap();
    }
    let (a, b) = (straight.portfolio(), resumed.portfolio());
    assert_eq!(
        (a.cash(), a.position(), a.realized_pnl(), a.fees_paid()),
        (b.cash(), b.position(), b.realized_pnl(), b.fees_paid())
    );
    assert!(a.fees_paid() > Decimal::ZERO, "it traded");
}

/// The plugin, its calls counted; deciding stretches in one call (as a
/// backtest calls it) or one candle at a time.
struct Counted {
    instance: PluginInstance,
    stretches: bool,
    calls: usize,
}

impl Counted {
    fn new(instance: PluginInstance, stretches: bool) -> Self {
        Self {
            instance,
            stretches,
            calls: 0,
        }
    }
}

impl Decider for Counted {
    fn on_candle(
        &mut self,
        candle: &contract::Candle,
        view: &contract::PluginView,
    ) -> Result<Vec<contract::Action>, PluginError> {
        self.calls += 1;
        self.instance.on_candle(candle, view)
    }

    fn on_fill(&mut self, fill: &contract::Fill) -> Result<(), PluginError> {
        self.instance.on_fill(fill)
    }

    fn on_candles(
        &mut self,
        stretch: &contract::Stretch,
    ) -> Result<(usize, Vec<contract::Action>), contract::StretchFailure> {
        self.calls += 1;
        self.instance.on_candles(stretch)
    }

    fn decides_stretches(&self) -> bool {
        self.stretches && self.instance.decides_stretches()
    }
}

#[test]
fn deciding_quiet_stretches_in_one_call_changes_nothing_but_the_number_of_calls() {
    let rules_params = json!({
        "entry": { "crosses_above": { "left": { "ema": 9 }, "right": { "ema": 21 } } },
        "exit": { "crosses_below": { "left": { "ema": 9 }, "right": { "ema": 21 } } },
        "size_pct": 50, "stop_loss_pct": 0.5, "take_profit_pct": 1
    });
    let cases = [
        (
            "ema-cross",
            json!({ "fast": 5, "slow": 20 }),
            "fees: { taker_bps: 7.5 }\n",
        ),
        (
            "ema-cross",
            json!({ "fast": 3, "slow": 10 }),
            "risk:\n  max_drawdown: { limit_pct: 3, action: kill }\n",
        ),
        (
            "ema-cross",
            json!({ "fast": 3, "slow": 10 }),
            "risk:\n  daily_loss: { limit_pct: 0.5, action: reduce }\n  max_consecutive_losses: { limit: 3, action: halt }\n  cooldown_after_loss: 30\n",
        ),
        ("rsi-reversion", json!({}), ""),
        (
            "breakout",
            json!({}),
            "execution: { fill_timing: signal_close }\n",
        ),
        ("rules", rules_params, ""),
    ];
    let data = candles(30_000, 21);
    for (name, params, extra) in cases {
        let plugin = load(name);
        let config = config(name, params.clone(), extra);
        let summary = || backtest::PluginSummary {
            name: name.into(),
            version: plugin.info().version.to_string(),
            content_hash: plugin.info().content_hash.clone(),
        };
        let instance = || plugin.start_bot(&config).unwrap().0;
        let options = BacktestOptions::default();
        let mut single = Counted::new(instance(), false);
        let one_at_a_time =
            backtest::run_with(&config, &mut single, summary(), &data, &options).unwrap();
        let mut stretches = Counted::new(instance(), true);
        assert!(stretches.decides_stretches(), "{name} exports on-candles");
        let stretched =
            backtest::run_with(&config, &mut stretches, summary(), &data, &options).unwrap();
        assert_eq!(
            serde_json::to_value(&one_at_a_time).unwrap(),
            serde_json::to_value(&stretched).unwrap(),
            "{name} {params} {extra}"
        );
        eprintln!(
            "{name} {extra}: {} calls, {} in stretches",
            single.calls, stretches.calls
        );
        assert!(
            stretches.calls * 2 < single.calls,
            "{name}: {} calls in stretches, {} one at a time",
            stretches.calls,
            single.calls
        );
        assert!(stretched.metrics.trades > 0, "{name} traded");
    }
}
