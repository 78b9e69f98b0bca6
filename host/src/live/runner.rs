//! [`BotRunner`]: one task per bot. It owns the bot's engine, takes
//! commands from a channel, drives the engine with the feed's candles, and
//! publishes snapshots and events. Nothing else touches the engine, so no
//! lock is ever held across a plugin call, and a reader never waits on a
//! running strategy.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch};

use crate::domain::config::{BotConfig, ConfigIssue, join_issues};
use crate::domain::{OrderOrigin, OrderRequest};
use crate::engine::{BotEngine, EngineEvent, Rejection, Trade};
use crate::plugin::{InitError, Plugin, PluginInstance, PluginRegistry};

use super::bus::{Channel, EventBus};
use super::durable::{CommitLog, RecordBatch, RunnerState};
use super::feed::{FeedCandle, FeedHandle};
use super::journal::BotJournal;
use super::latency::LatencyHistogram;
use super::snapshot::{BotSnapshot, RECENT_TRADES, SnapshotLabels};
use super::state::{BotState, CommandKind, Transition};

/// Candles processed before the runner yields to other tasks.
const BATCH_YIELD: usize = 256;

/// What a caller asks of a bot.
#[derive(Debug, Clone)]
pub enum Command {
    Control {
        kind: CommandKind,
        /// For stop: also sell the position.
        flatten: bool,
    },
    /// Validate and hot-swap a new config.
    Reconfigure(Box<BotConfig>),
    /// Run every check of a reconfigure, including the new instance's init
    /// and warm-up, and change nothing.
    Validate(Box<BotConfig>),
    /// An operator's order, checked by the risk engine like a strategy's.
    PlaceOrder(OrderRequest),
    /// Cancel one open order by id.
    CancelOrder(u64),
    /// The runner ends (the manager checked the state allows it).
    Shutdown,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CommandError {
    #[error("`{command}` is not allowed while the bot is {state:?}")]
    NotAllowed {
        command: &'static str,
        state: BotState,
        allowed: Vec<&'static str>,
    },
    #[error("invalid config: {}", join_issues(.0))]
    Invalid(Vec<ConfigIssue>),
    /// The config changes fields that can only change while the bot is stopped.
    #[error("not hot-swappable while the bot runs: {}", join_issues(.0))]
    NotHotSwappable(Vec<ConfigIssue>),
    #[error("the order was refused ({}): {}", .0.check, .0.message)]
    OrderRefused(Rejection),
    #[error("no open order {0}")]
    NoSuchOrder(u64),
    #[error("the bot is gone")]
    Gone,
    #[error("the bot did not answer within {0} s")]
    Timeout(u64),
}

impl CommandError {
    /// `command` refused in `state`, with what that state allows.
    pub fn not_allowed(command: &'static str, state: BotState) -> Self {
        CommandError::NotAllowed {
            command,
            state,
            allowed: state.allowed_commands().iter().map(|c| c.name()).collect(),
        }
    }
}

pub(crate) struct Request {
    pub command: Command,
    pub reply: oneshot::Sender<Result<Arc<BotSnapshot>, CommandError>>,
}

pub(crate) struct BotRunner {
    config: BotConfig,
    /// The same config, shared with snapshots; replaced on reconfigure.
    config_shared: Arc<BotConfig>,
    /// The names every snapshot shows; replaced with the config or plugin.
    labels: SnapshotLabels,
    config_version: u64,
    plugin: Arc<Plugin>,
    /// The bot's engine: money, orders, risk, and the plugin instance.
    engine: BotEngine<PluginInstance>,
    state: BotState,
    error: Option<String>,
    started_at: Option<i64>,
    /// Where candles come from, and the sequence number of the next one to read.
    feed: FeedHandle,
    next_candle: u64,
    batch: Vec<FeedCandle>,
    recent_trades: VecDeque<Trade>,
    last_candle_ts: Option<i64>,
    candles_processed: u64,
    decision_latency_us: Option<u64>,
    snapshot: watch::Sender<Arc<BotSnapshot>>,
    /// Recent round trips as published; rebuilt only when one closes.
    recent_trades_shared: Arc<Vec<Trade>>,
    latency: Option<Arc<LatencyHistogram>>,
    /// History the API reads: orders, fills, trades, equity, violations.
    journal: Arc<BotJournal>,
    /// Where records are committed before they are published (the store).
    commit_log: Option<Arc<dyn CommitLog>>,
    bus: Arc<EventBus>,
    registry: Arc<RwLock<PluginRegistry>>,
}

/// Plugin errors in init, as config issues under /strategy/params.
pub(crate) fn init_issues(error: InitError) -> Vec<ConfigIssue> {
    match error {
        InitError::Params(issues) => issues
            .into_iter()
            .map(|issue| ConfigIssue {
                pointer: format!("/strategy/params{}", issue.pointer),
                message: issue.message,
            })
            .collect(),
        InitError::Plugin(error) => vec![ConfigIssue {
            pointer: "/strategy".into(),
            message: error.to_string(),
        }],
    }
}

impl BotRunner {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: BotConfig,
        plugin: Arc<Plugin>,
        instance: PluginInstance,
        feed: FeedHandle,
        bus: Arc<EventBus>,
        registry: Arc<RwLock<PluginRegistry>>,
    ) -> Result<(Self, watch::Receiver<Arc<BotSnapshot>>), Vec<ConfigIssue>> {
        let engine = BotEngine::new(&config, instance).map_err(|err| {
            vec![ConfigIssue {
                pointer: "/market/timeframe".into(),
                message: err.to_string(),
            }]
        })?;
        let mut runner = Self {
            config_shared: Arc::new(config.clone()),
            labels: SnapshotLabels::new(&config, plugin.info()),
            config,
            config_version: 1,
            plugin,
            engine,
            state: BotState::Stopped,
            error: None,
            started_at: None,
            next_candle: feed.published(),
            feed,
            batch: Vec::new(),
            recent_trades: VecDeque::new(),
            last_candle_ts: None,
            candles_processed: 0,
            decision_latency_us: None,
            snapshot: watch::channel(Arc::new(BotSnapshot::default())).0,
            recent_trades_shared: Arc::new(Vec::new()),
            latency: None,
            journal: Arc::new(BotJournal::default()),
            commit_log: None,
            bus,
            registry,
        };
        let snapshot = Arc::new(runner.build_snapshot());
        let (sender, receiver) = watch::channel(snapshot);
        runner.snapshot = sender;
        Ok((runner, receiver))
    }

    /// Continue a bot's config history at `version` (a restored bot).
    pub(crate) fn with_config_version(mut self, version: u64) -> Self {
        self.config_version = version;
        self.publish_snapshot();
        self
    }

    /// Commit every step's records to `log` before publishing them.
    pub(crate) fn with_commit_log(mut self, log: Option<Arc<dyn CommitLog>>) -> Self {
        self.commit_log = log;
        self
    }

    pub(crate) fn journal(&self) -> Arc<BotJournal> {
        self.journal.clone()
    }

    /// Record decision latencies into `histogram`.
    pub(crate) fn with_latency(mut self, histogram: Arc<LatencyHistogram>) -> Self {
        self.latency = Some(histogram);
        self
    }

    pub(crate) async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut candles = self.feed.watch();
        loop {
            tokio::select! {
                biased;
                request = requests.recv() => {
                    let Some(request) = request else { break };
                    if self.answer(request).await {
                        break;
                    }
                    candles.mark_changed();
                }
                changed = candles.changed(), if self.state.consumes_candles() => {
                    if changed.is_err() {
                        break;
                    }
                    if self.drain_feed(&mut requests).await {
                        break;
                    }
                }
            }
        }
    }

    fn publish_snapshot(&mut self) -> Arc<BotSnapshot> {
        let snapshot = Arc::new(self.build_snapshot());
        self.snapshot.send_replace(snapshot.clone());
        snapshot
    }

    fn build_snapshot(&self) -> BotSnapshot {
        let portfolio = self.engine.portfolio();
        let risk = self.engine.risk();
        let labels = &self.labels;
        BotSnapshot {
            id: labels.id.clone(),
            name: labels.name.clone(),
            state: self.state,
            trading_state: risk.state(),
            kill_switch: risk.kill_switch().map(str::to_string),
            error: self.error.clone(),
            mode: self.config.mode,
            symbol: labels.symbol.clone(),
            timeframe: labels.timeframe.clone(),
            plugin: labels.plugin.clone(),
            config_version: self.config_version,
            started_at: self.started_at,
            cash: portfolio.cash(),
            equity: portfolio.equity(),
            position: portfolio.position(),
            avg_entry_price: portfolio.avg_entry_price(),
            realized_pnl: portfolio.realized_pnl(),
            unrealized_pnl: portfolio.unrealized_pnl(),
            fees_paid: portfolio.fees_paid(),
            open_orders: self.engine.open_orders().to_vec(),
            last_candle_ts: self.last_candle_ts,
            candles_processed: self.candles_processed,
            decision_latency_us: self.decision_latency_us,
            risk_rules: risk.rule_statuses(),
            recent_trades: self.recent_trades_shared.clone(),
            allowed_commands: self
                .state
                .allowed_commands()
                .iter()
                .map(|c| c.name())
                .collect(),
            config: Some(self.config_shared.clone()),
        }
    }

    /// Answer one request; true when the runner must end.
    async fn answer(&mut self, request: Request) -> bool {
        let shutdown = matches!(request.command, Command::Shutdown);
        let outcome = self.handle(request.command).await;
        let ended = shutdown && outcome.is_ok();
        let _ = request.reply.send(outcome);
        ended
    }

    /// Read and process every candle published since the last read, in
    /// order. Commands that arrive meanwhile are answered between two
    /// candles, so a kill never waits for a backlog. True when the runner
    /// must end.
    async fn drain_feed(&mut self, requests: &mut mpsc::Receiver<Request>) -> bool {
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        let outcome = self.feed.read_from(self.next_candle, &mut batch);
        // Sequence number of batch[0]; next_candle advances one candle at a
        // time, so a command answered mid-batch sees exactly what was processed.
        let first = self.next_candle + outcome.skipped;
        self.next_candle = first;
        if outcome.skipped > 0 || batch.len() > 1 {
            let data = json!({ "behind": batch.len(), "skipped": outcome.skipped });
            self.bus
                .publish(Channel::System, "lagged", Some(&self.config.id), data);
        }
        for (index, item) in batch.iter().enumerate() {
            // Before the first candle the run loop has just looked for
            // requests (it polls them first).
            if index > 0
                && let Ok(request) = requests.try_recv()
                && self.answer(request).await
            {
                return true;
            }
            if !self.state.consumes_candles() {
                // Stopped, killed or failed mid-batch: the rest is not ours.
                break;
            }
            let latest = index + 1 == batch.len();
            self.process(item, latest).await;
            self.next_candle = first + index as u64 + 1;
            if index % BATCH_YIELD == BATCH_YIELD - 1 {
                self.publish_snapshot();
                tokio::task::yield_now().await;
            }
        }
        self.batch = batch;
        self.publish_snapshot();
        false
    }

    /// One candle: the decision, then its records, events and snapshot.
    /// `latest`: nothing newer is waiting. Every bot on the feed was woken by
    /// the same candle, so the runner then yields between its decision and
    /// its bookkeeping: the other bots decide first and no decision waits
    /// for another bot's commit and publication. (Catching up, it does not
    /// yield per candle; see [`super::runtime`] for how the scheduler
    /// orders the two halves.)
    async fn process(&mut self, item: &FeedCandle, latest: bool) {
        let result = self.engine.on_candle(&item.candle);
        self.last_candle_ts = Some(item.candle.ts);
        self.candles_processed += 1;
        let latency_us = item.published_at.elapsed().as_micros() as u64;
        self.decision_latency_us = Some(latency_us);
        if let Some(histogram) = &self.latency {
            histogram.record(latency_us);
        }
        if latest {
            tokio::task::yield_now().await;
        }
        if let Err(error) = result {
            self.error = Some(error.to_string());
            self.set_state(BotState::Error, &format!("plugin failed: {error}"));
        } else if self.engine.risk().kill_switch().is_some() && self.state != BotState::Killed {
            self.set_state(BotState::Killed, "a risk rule engaged the kill-switch");
        }
        let portfolio = self.engine.portfolio();
        let equity = (
            self.engine.now(),
            portfolio.equity(),
            !portfolio.position().is_zero(),
        );
        self.commit_and_publish(Some(equity)).await;
    }

    /// What a restart needs to carry this bot on.
    fn runner_state(&self) -> RunnerState {
        RunnerState {
            state: self.state,
            error: self.error.clone(),
            started_at: self.started_at,
            last_candle_ts: self.last_candle_ts,
            candles_processed: self.candles_processed,
            config_version: self.config_version,
            engine: Some(self.engine.checkpoint()),
        }
    }

    /// Carry on from a stored state. `resume`: a bot that was running (or
    /// paused) runs again; otherwise it comes back stopped. Killed and
    /// failed bots stay so.
    pub(crate) fn restore(&mut self, stored: RunnerState, resume: bool) {
        if let Some(engine) = stored.engine {
            self.engine.restore(engine);
        }
        self.started_at = stored.started_at;
        self.last_candle_ts = stored.last_candle_ts;
        self.candles_processed = stored.candles_processed;
        self.error = stored.error;
        self.state = match stored.state {
            BotState::Running if resume => BotState::Running,
            BotState::Paused if resume => BotState::Paused,
            BotState::Killed => BotState::Killed,
            BotState::Error => BotState::Error,
            _ => BotState::Stopped,
        };
        self.engine
            .set_entries_paused(self.state == BotState::Paused);
        self.next_candle = self.feed.published();
        // The strategy's indicators: warmed up on the candles the feed kept
        // from before the restart.
        match self.fresh_instance(&self.config.clone(), self.plugin.clone()) {
            Ok(instance) => {
                self.engine.replace_decider(instance);
            }
            Err(issues) => {
                tracing::warn!(bot = %self.config.id, "restored without a warm-up: {}", join_issues(&issues));
            }
        }
        self.publish_snapshot();
    }

    /// The records of the events just drained, for the commit log.
    fn record_batch(
        &self,
        events: &[EngineEvent],
        equity: Option<(i64, rust_decimal::Decimal, bool)>,
    ) -> RecordBatch {
        let mut batch = RecordBatch {
            bot_id: self.config.id.clone(),
            equity,
            state: self.runner_state(),
            ..RecordBatch::default()
        };
        for event in events {
            match event {
                EngineEvent::OrderPlaced { order } | EngineEvent::OrderCancelled { order } => {
                    batch.orders.push(order.clone());
                }
                EngineEvent::OrderFilled { fill } => {
                    // The fill closes its order: record the order's new state.
                    let known = batch
                        .orders
                        .iter()
                        .rev()
                        .find(|o| o.id == fill.order_id)
                        .cloned()
                        .or_else(|| self.journal.order(fill.order_id));
                    if let Some(mut order) = known {
                        order.status = crate::domain::OrderStatus::Filled;
                        order.updated_ts = fill.ts;
                        batch.orders.push(order);
                    }
                    batch.fills.push(fill.clone());
                }
                EngineEvent::PositionClosed { trade, .. } => batch.trades.push(trade.clone()),
                EngineEvent::RiskViolation { violation } => {
                    batch.violations.push(violation.clone());
                }
                EngineEvent::RiskStateChanged { change } => {
                    batch.state_changes.push(change.clone());
                }
                EngineEvent::KillSwitch { ts, reason } => {
                    batch.kill_switches.push((*ts, reason.clone()));
                }
                EngineEvent::Signal { .. }
                | EngineEvent::OrderRejected { .. }
                | EngineEvent::PositionOpened { .. } => {}
            }
        }
        batch
    }

    fn set_state(&mut self, state: BotState, reason: &str) {
        if self.state == state {
            return;
        }
        let from = self.state;
        self.state = state;
        tracing::info!(bot = %self.config.id, "{from:?} -> {state:?}: {reason}");
        self.engine.set_entries_paused(state == BotState::Paused);
        let data = json!({ "from": from, "to": state, "reason": reason });
        self.bus.publish(
            Channel::Bots,
            "bot.state_changed",
            Some(&self.config.id),
            data,
        );
    }

    /// Drain the engine's events; commit their records (and the runner's
    /// state) when a commit log is attached; only then record them in the
    /// journal and publish them. A failed commit publishes nothing and puts
    /// the bot in error: what is not durable must not be acknowledged.
    async fn commit_and_publish(&mut self, equity: Option<(i64, rust_decimal::Decimal, bool)>) {
        let id = self.config.id.clone();
        let events: Vec<EngineEvent> = self.engine.drain_events().collect();
        if let Some(log) = self.commit_log.clone() {
            let batch = self.record_batch(&events, equity);
            if let Err(error) = log.commit(batch).await {
                tracing::error!(bot = %id, %error, "records not committed");
                self.error = Some(format!("the store failed: {error}"));
                self.set_state(BotState::Error, "the store failed");
                return;
            }
        }
        if let Some((ts, value, exposed)) = equity {
            self.journal.record_equity(ts, value, exposed);
        }
        for event in events {
            let (channel, kind) = match &event {
                EngineEvent::Signal { .. } => (Channel::Signals, "signal"),
                EngineEvent::OrderPlaced { order } => {
                    self.journal.record_order(order);
                    (Channel::Orders, "order.placed")
                }
                EngineEvent::OrderFilled { fill } => {
                    self.journal.record_fill(fill);
                    (Channel::Orders, "order.filled")
                }
                EngineEvent::OrderCancelled { order } => {
                    self.journal.record_order(order);
                    (Channel::Orders, "order.cancelled")
                }
                EngineEvent::OrderRejected { .. } => (Channel::Orders, "order.rejected"),
                EngineEvent::PositionOpened { .. } => (Channel::Positions, "position.opened"),
                EngineEvent::PositionClosed { trade, .. } => {
                    if self.recent_trades.len() == RECENT_TRADES {
                        self.recent_trades.pop_front();
                    }
                    self.recent_trades.push_back(trade.clone());
                    self.journal.record_trade(trade);
                    self.recent_trades_shared =
                        Arc::new(self.recent_trades.iter().cloned().collect());
                    let data = serde_json::to_value(trade).unwrap_or_default();
                    self.bus.publish(Channel::Trades, "trade", Some(&id), data);
                    (Channel::Positions, "position.closed")
                }
                EngineEvent::RiskViolation { violation } => {
                    self.journal.record_violation(violation);
                    (Channel::Risk, "risk.violation")
                }
                EngineEvent::RiskStateChanged { .. } => (Channel::Risk, "risk.state_changed"),
                EngineEvent::KillSwitch { .. } => (Channel::Risk, "risk.kill_switch"),
            };
            let data = serde_json::to_value(&event).unwrap_or_default();
            self.bus.publish(channel, kind, Some(&id), data);
        }
    }

    async fn handle(&mut self, command: Command) -> Result<Arc<BotSnapshot>, CommandError> {
        match command {
            Command::Shutdown => {
                // Checked here, not only by the manager: a start may have
                // arrived in between.
                if !matches!(self.state, BotState::Stopped | BotState::Error) {
                    return Err(CommandError::not_allowed("delete", self.state));
                }
                Ok(self.publish_snapshot())
            }
            Command::Reconfigure(config) => {
                self.reconfigure(*config)?;
                self.commit_and_publish(None).await;
                Ok(self.publish_snapshot())
            }
            Command::Validate(config) => {
                self.prepare_swap(&config)?;
                Ok(self.publish_snapshot())
            }
            Command::PlaceOrder(request) => {
                self.place_manual(request).await?;
                Ok(self.publish_snapshot())
            }
            Command::CancelOrder(id) => {
                let cancelled = self.engine.cancel_order(id, "cancelled by the operator");
                self.commit_and_publish(None).await;
                match cancelled {
                    Some(_) => Ok(self.publish_snapshot()),
                    None => Err(CommandError::NoSuchOrder(id)),
                }
            }
            Command::Control { kind, flatten } => {
                let target = match self.state.transition(kind) {
                    Transition::NoOp => return Ok(self.publish_snapshot()),
                    Transition::Refused => {
                        return Err(CommandError::not_allowed(kind.name(), self.state));
                    }
                    Transition::To(target) => target,
                };
                self.control(kind, target, flatten);
                self.commit_and_publish(None).await;
                Ok(self.publish_snapshot())
            }
        }
    }

    fn control(&mut self, kind: CommandKind, target: BotState, flatten: bool) {
        match kind {
            CommandKind::Start => {
                // Start from the next candle the feed publishes.
                self.next_candle = self.feed.published();
                self.started_at = Some(super::wall_ms());
            }
            CommandKind::Stop => {
                self.engine.cancel_pending("bot stopped");
                if flatten && let Err(error) = self.engine.flatten(OrderOrigin::Manual, "stop") {
                    self.error = Some(error.to_string());
                }
            }
            CommandKind::Kill => self.engine.kill("manual kill"),
            CommandKind::Reset => {
                if self.state == BotState::Error {
                    // Orders of the failed instance must not fill after a restart.
                    self.engine.cancel_pending("reset after an error");
                    // A poisoned instance cannot run again: start a fresh one.
                    match self.fresh_instance(&self.config.clone(), self.plugin.clone()) {
                        Ok(instance) => {
                            self.engine.replace_decider(instance);
                            self.error = None;
                        }
                        Err(issues) => {
                            self.error = Some(join_issues(&issues));
                            return;
                        }
                    }
                }
                self.engine.reset();
            }
            CommandKind::CloseAll => {
                if let Err(error) = self.engine.flatten(OrderOrigin::Manual, "close-all") {
                    self.error = Some(error.to_string());
                    self.set_state(BotState::Error, "plugin failed during close-all");
                    return;
                }
            }
            CommandKind::CancelPending => self.engine.cancel_pending("cancelled by the operator"),
            CommandKind::Pause | CommandKind::Resume | CommandKind::Delete => {}
        }
        self.set_state(target, kind.name());
    }

    /// Place an operator's order. Refused in the states that trade nothing
    /// new (killed, error) and, for orders that grow the position, while
    /// paused or not ACTIVE (the engine's own checks).
    async fn place_manual(&mut self, request: OrderRequest) -> Result<(), CommandError> {
        if matches!(self.state, BotState::Killed | BotState::Error) {
            return Err(CommandError::not_allowed("place-order", self.state));
        }
        let tag = request.client_tag.clone();
        let outcome = self.engine.place_manual(request);
        let refusal = self.engine.pending_rejection(&tag);
        if let Err(error) = outcome {
            // The plugin trapped while hearing of the fill: the fill stands.
            self.error = Some(error.to_string());
            self.set_state(BotState::Error, &format!("plugin failed: {error}"));
        }
        self.commit_and_publish(None).await;
        match refusal {
            Some(rejection) => Err(CommandError::OrderRefused(rejection)),
            None => Ok(()),
        }
    }

    /// A new, initialised plugin instance warmed up on the feed's recent candles.
    fn fresh_instance(
        &mut self,
        config: &BotConfig,
        plugin: Arc<Plugin>,
    ) -> Result<PluginInstance, Vec<ConfigIssue>> {
        let (mut instance, warmup) = plugin.start_bot(config).map_err(init_issues)?;
        let view = self.engine.plugin_view();
        let mut candle = crate::plugin::contract::Candle::of_bot_market();
        // Only candles this bot has already processed: the ones still
        // waiting will reach the new instance through the feed.
        for recent in self.feed.recent_before(self.next_candle, warmup as usize) {
            candle.set_prices(&recent);
            // Warm-up decisions are discarded: only the indicators matter.
            instance.on_candle(&candle, &view).map_err(|error| {
                vec![ConfigIssue {
                    pointer: "/strategy".into(),
                    message: format!("failed while warming up: {error}"),
                }]
            })?;
        }
        Ok(instance)
    }

    /// Every check of a config change, and the new plugin instance,
    /// initialised and warmed up on the bot's recent candles; nothing of
    /// the bot changes.
    fn prepare_swap(
        &mut self,
        config: &BotConfig,
    ) -> Result<(Arc<Plugin>, PluginInstance), CommandError> {
        let mut issues = config.check();
        if config.id != self.config.id {
            issues.push(ConfigIssue {
                pointer: "/id".into(),
                message: format!("a bot's id cannot change (it is `{}`)", self.config.id),
            });
        }
        let old = &self.config;
        let market_changed = old.market.symbol != config.market.symbol
            || old.market.timeframe != config.market.timeframe
            || old.market.feed != config.market.feed;
        if self.state == BotState::Stopped && market_changed {
            issues.push(ConfigIssue {
                pointer: "/market".into(),
                message: "moving an existing bot to another market is not supported yet; create a new bot".into(),
            });
        }
        if self.state == BotState::Stopped
            && old.capital != config.capital
            && (!self.engine.portfolio().position().is_zero()
                || !self.engine.open_orders().is_empty())
        {
            issues.push(ConfigIssue {
                pointer: "/capital".into(),
                message: "close the position and cancel pending orders before changing the capital"
                    .into(),
            });
        }
        let mut fixed_changes = Vec::new();
        if self.state != BotState::Stopped {
            let fixed = [
                ("/market/symbol", old.market.symbol != config.market.symbol),
                (
                    "/market/timeframe",
                    old.market.timeframe != config.market.timeframe,
                ),
                ("/market/feed", old.market.feed != config.market.feed),
                ("/mode", old.mode != config.mode),
                ("/capital", old.capital != config.capital),
            ];
            for (pointer, changed) in fixed {
                if changed {
                    fixed_changes.push(ConfigIssue {
                        pointer: pointer.into(),
                        message: "can only change while the bot is stopped".into(),
                    });
                }
            }
        }
        if !issues.is_empty() {
            return Err(CommandError::Invalid(issues));
        }
        if !fixed_changes.is_empty() {
            return Err(CommandError::NotHotSwappable(fixed_changes));
        }
        let plugin = self
            .registry
            .read()
            .expect("registry lock")
            .resolve(&config.strategy.plugin, config.strategy.version.as_deref())
            .map_err(|err| {
                CommandError::Invalid(vec![ConfigIssue {
                    pointer: "/strategy/plugin".into(),
                    message: err.to_string(),
                }])
            })?;
        let instance = self
            .fresh_instance(config, plugin.clone())
            .map_err(CommandError::Invalid)?;
        Ok((plugin, instance))
    }

    /// Hot swap: validate everything first; change nothing unless all of it
    /// is good; swap between two candles (this runs between candles).
    fn reconfigure(&mut self, config: BotConfig) -> Result<(), CommandError> {
        let (plugin, instance) = self.prepare_swap(&config)?;
        if self.state == BotState::Stopped && config.capital != self.config.capital {
            // Capital can change only while stopped, and then restarts the books.
            let engine = BotEngine::new(&config, instance).map_err(|err| {
                CommandError::Invalid(vec![ConfigIssue {
                    pointer: "/market/timeframe".into(),
                    message: err.to_string(),
                }])
            })?;
            self.engine = engine;
        } else {
            self.engine.replace_decider(instance);
            self.engine.apply_terms(&config);
        }
        self.labels = SnapshotLabels::new(&config, plugin.info());
        self.plugin = plugin;
        self.config_shared = Arc::new(config.clone());
        self.config = config;
        self.config_version += 1;
        let data = json!({ "version": self.config_version });
        self.bus
            .publish(Channel::Bots, "config.updated", Some(&self.config.id), data);
        Ok(())
    }
}
