//! [`BotRunner`]: one task per bot, and the only writer of its bot.
//!
//! It owns the bot's engine, takes commands from a channel (and kills from
//! the urgent lane), drives the engine with the feed's candles, and is the
//! only one that changes the bot: every change (a candle's records, a
//! command, a config version, the bot's creation or deletion) is committed
//! through the [`CommitLog`] in one transaction with the runner's
//! checkpoint, and only then published and answered. Nothing else touches
//! the engine, so no lock is ever held across a plugin call and a reader
//! never waits on a running strategy.
//!
//! Strategy code never runs here: the engine goes to a strategy thread
//! ([`StrategyThreads`]) for anything that may call the plugin and comes
//! back with the results.
//!
//! Files: this one (the task, commits, publication, snapshots), `candles.rs`
//! (the step over a batch of candles), `commands.rs` (what each command does).

mod candles;
mod commands;

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use tokio::sync::{mpsc, watch};

use crate::domain::config::{BotConfig, ConfigIssue};
use crate::engine::{BotEngine, EngineEvent};
use crate::plugin::{InitError, Plugin, PluginInstance, PluginRegistry};

use super::bus::EventBus;
use super::durable::{CommitLog, EquitySample, KillSwitchRecord, RecordBatch, RunnerState};
use super::event::{ConfigRecord, EventData, StateChanged};
use super::exchange_link::{Book, ExchangeLink, LinkReport, LiveVenues};
use super::feed::FeedHandle;
use super::latency::LatencyHistogram;
use super::request::{CommandError, Request, Urgent};
use super::snapshot::{BotSnapshot, EQUITY_TRAIL, SnapshotLabels};
use super::state::BotState;
use super::strategy_threads::StrategyThreads;

/// The engine a runner owns, boxed so it moves to a strategy thread and
/// back for the price of a pointer.
pub(crate) type Engine = Box<BotEngine<PluginInstance>>;

/// What every runner of a manager shares.
pub(crate) struct RunnerContext {
    pub bus: Arc<EventBus>,
    pub registry: Arc<RwLock<PluginRegistry>>,
    /// Where records are committed before they are published (the store).
    pub commit_log: Option<Arc<dyn CommitLog>>,
    /// Decision latencies of every runner.
    pub latency: Arc<LatencyHistogram>,
    /// Where strategy code runs.
    pub threads: Arc<StrategyThreads>,
    /// The emergency stop: while set, nothing starts.
    pub emergency: Arc<AtomicBool>,
    /// Where live bots' exchange accounts are.
    pub venues: Arc<LiveVenues>,
}

/// A new bot's parts, checked and instantiated by the manager.
pub(crate) struct NewBot {
    pub config: Arc<BotConfig>,
    pub plugin: Arc<Plugin>,
    pub instance: PluginInstance,
    pub feed: FeedHandle,
    /// The config version it starts at (1, or the stored one on restore).
    pub version: u64,
}

/// Refuse `config`, read from `document`, unless the document as sent
/// meets the bot schema and the rules; the refusal names every problem,
/// its plugin's parameters too. Bot creation and a config change check
/// with this.
pub(crate) fn check_as_sent(
    registry: &RwLock<PluginRegistry>,
    config: &BotConfig,
    document: &serde_json::Value,
) -> Result<(), CommandError> {
    let issues = config.check_document(document);
    if issues.is_empty() {
        return Ok(());
    }
    let registry = registry.read().unwrap_or_else(PoisonError::into_inner);
    Err(CommandError::Invalid(registry.every_issue(config, issues)))
}

/// Plugin errors in init, as config issues under /strategy/params.
pub(crate) fn init_issues(error: InitError) -> Vec<ConfigIssue> {
    match error {
        InitError::Params(issues) => crate::plugin::in_bot_config(issues),
        InitError::Plugin(error) => vec![ConfigIssue {
            pointer: "/strategy".into(),
            message: error.to_string(),
        }],
    }
}

/// The next report of a live bot's exchange link (one whose commit failed
/// first, a second later); never for a paper bot. None: the link ended.
async fn next_report(
    link: &mut Option<ExchangeLink>,
    unapplied: &mut VecDeque<LinkReport>,
) -> Option<LinkReport> {
    if !unapplied.is_empty() {
        // Taken only once the wait is over: a branch that wins meanwhile
        // drops this future, and the report stays queued.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        return unapplied.pop_front();
    }
    match link {
        Some(link) => link.reports.recv().await,
        None => std::future::pending().await,
    }
}

/// How far back the runner can undo a command whose commit failed.
struct UndoPoint {
    engine: crate::engine::EngineCheckpoint,
    /// What was queued before the step (a refused kill's records and
    /// requests, held for the next commit): the undo keeps it.
    queues: crate::engine::QueueMarks,
    state: BotState,
    error: Option<String>,
    started_at: Option<i64>,
    next_candle: u64,
    last_candle_ts: Option<i64>,
    candles_processed: u64,
}

pub(crate) struct BotRunner {
    /// The config in force, shared with snapshots.
    config: Arc<BotConfig>,
    /// The names every snapshot shows; replaced with the config or plugin.
    labels: SnapshotLabels,
    config_version: u64,
    plugin: Arc<Plugin>,
    /// Money, orders, risk and the strategy instance. `None` only while a
    /// strategy thread works on it (the runner awaits it then).
    engine: Option<Engine>,
    state: BotState,
    error: Option<String>,
    started_at: Option<i64>,
    /// Where candles come from, and the sequence number of the next one to read.
    feed: FeedHandle,
    next_candle: u64,
    last_candle_ts: Option<i64>,
    /// The last candle a start passed over (published while the bot was
    /// stopped): candles up to it are no gap in the feed.
    passed_over_ts: Option<i64>,
    candles_processed: u64,
    decision_latency_us: Option<u64>,
    /// Equity readings taken with each `bot.updated`, oldest first.
    equity_trail: VecDeque<Arc<str>>,
    equity_trail_shared: Arc<[Arc<str>]>,
    /// The latest snapshot, for readers that never wait on the runner.
    snapshot: watch::Sender<Arc<BotSnapshot>>,
    /// When `bot.updated` last went out.
    last_update_at: Option<Instant>,
    /// State changes of the step being committed: published after it.
    pending_state_changes: Vec<(BotState, BotState, String)>,
    /// A live bot's link to its exchange account.
    link: Option<ExchangeLink>,
    /// Exchange reports whose commit failed, applied again first.
    unapplied: VecDeque<LinkReport>,
    context: Arc<RunnerContext>,
    urgent: Arc<Urgent>,
}

impl BotRunner {
    pub(crate) fn new(
        new: NewBot,
        context: Arc<RunnerContext>,
        urgent: Arc<Urgent>,
    ) -> Result<(Self, watch::Receiver<Arc<BotSnapshot>>), Vec<ConfigIssue>> {
        let NewBot {
            config,
            plugin,
            mut instance,
            feed,
            version,
        } = new;
        instance.attach_interrupt(urgent.interrupt.clone());
        let engine = BotEngine::new(&config, instance).map_err(|err| {
            vec![ConfigIssue {
                pointer: "/market/timeframe".into(),
                message: err.to_string(),
            }]
        })?;
        let mut runner = Self {
            labels: SnapshotLabels::new(&config, plugin.info()),
            config,
            config_version: version,
            plugin,
            engine: Some(Box::new(engine)),
            state: BotState::Stopped,
            error: None,
            started_at: None,
            next_candle: feed.published(),
            feed,
            last_candle_ts: None,
            passed_over_ts: None,
            candles_processed: 0,
            decision_latency_us: None,
            equity_trail: VecDeque::new(),
            equity_trail_shared: Arc::new([]),
            snapshot: watch::channel(Arc::new(BotSnapshot::default())).0,
            last_update_at: None,
            pending_state_changes: Vec::new(),
            link: None,
            unapplied: VecDeque::new(),
            context,
            urgent,
        };
        let (sender, receiver) = watch::channel(Arc::new(runner.build_snapshot()));
        runner.snapshot = sender;
        Ok((runner, receiver))
    }

    fn id(&self) -> &Arc<str> {
        &self.labels.id
    }

    fn engine(&self) -> &BotEngine<PluginInstance> {
        self.engine
            .as_deref()
            .expect("the engine is with its runner between strategy jobs")
    }

    fn engine_mut(&mut self) -> &mut BotEngine<PluginInstance> {
        self.engine
            .as_deref_mut()
            .expect("the engine is with its runner between strategy jobs")
    }

    /// Run `job` on the engine on a strategy thread; the engine comes back
    /// even if the job panics (then the answer is `None` and the bot is put
    /// in error).
    async fn with_engine<R: Send + 'static>(
        &mut self,
        job: impl FnOnce(&mut BotEngine<PluginInstance>) -> R + Send + 'static,
    ) -> Option<R> {
        let mut engine = self.engine.take().expect("the engine is home");
        let handed = self
            .context
            .threads
            .run(move || {
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut engine)));
                (engine, outcome)
            })
            .await;
        match handed {
            Ok((engine, outcome)) => {
                self.engine = Some(engine);
                match outcome {
                    Ok(result) => Some(result),
                    Err(_) => {
                        self.fail("internal error: the engine panicked");
                        None
                    }
                }
            }
            Err(error) => {
                // Only when the host shuts down: the engine is lost with the
                // thread; the task ends below (see `run`).
                tracing::error!(bot = %self.id(), %error, "strategy thread lost");
                None
            }
        }
    }

    /// Put the bot in error with `reason` (published with the next commit).
    fn fail(&mut self, reason: &str) {
        self.error = Some(reason.to_string());
        self.set_state(BotState::Error, reason);
    }

    /// Change the state; the change is published after the next commit.
    fn set_state(&mut self, state: BotState, reason: &str) {
        if self.state == state {
            return;
        }
        let from = self.state;
        self.state = state;
        // A failed bot is an error and a killed one a warning in the log,
        // so that a filter on either level finds them.
        let (id, from_name, to_name) = (self.id(), from.name(), state.name());
        match state {
            BotState::Error => tracing::error!(bot = %id, "{from_name} -> {to_name}: {reason}"),
            BotState::Killed => tracing::warn!(bot = %id, "{from_name} -> {to_name}: {reason}"),
            _ => tracing::info!(bot = %id, "{from_name} -> {to_name}: {reason}"),
        }
        if let Some(engine) = self.engine.as_deref_mut() {
            engine.set_entries_paused(state == BotState::Paused);
        }
        self.pending_state_changes
            .push((from, state, reason.to_string()));
    }

    /// The task: requests, urgent kills and candles, until the bot is
    /// deleted or its manager goes away. `announce`: publish the bot's
    /// creation first.
    pub(crate) async fn run(mut self, mut requests: mpsc::Receiver<Request>, announce: bool) {
        if announce {
            self.announce();
        }
        let mut candles = self.feed.watch();
        // Candles may have come before this task started: look at once.
        candles.mark_changed();
        let urgent = self.urgent.clone();
        loop {
            if self.engine.is_none() {
                break; // the strategy threads are gone: the host is stopping
            }
            tokio::select! {
                biased;
                () = urgent.wake.notified() => {
                    self.urgent_kill().await;
                    candles.mark_changed();
                }
                request = requests.recv() => {
                    let Some(request) = request else { break };
                    if self.answer(request).await {
                        break;
                    }
                    candles.mark_changed();
                }
                report = next_report(&mut self.link, &mut self.unapplied) => {
                    self.on_exchange(report).await;
                    candles.mark_changed();
                }
                changed = candles.changed(), if self.state.consumes_candles() => {
                    if changed.is_err() {
                        break;
                    }
                    if self.drain_feed().await {
                        // More is waiting: come back after any request.
                        candles.mark_changed();
                    }
                }
            }
        }
    }

    /// Answer one request (unless its caller gave up); true when the
    /// runner must end.
    async fn answer(&mut self, request: Request) -> bool {
        self.urgent.take_attention();
        if !request.claim.take() {
            return false; // the caller was told it timed out: not applied
        }
        self.handle(request.command).await
    }

    fn build_snapshot(&self) -> BotSnapshot {
        let engine = self.engine();
        let portfolio = engine.portfolio();
        let risk = engine.risk();
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
            open_orders: engine.open_orders().to_vec(),
            last_candle_ts: self.last_candle_ts,
            candles_processed: self.candles_processed,
            decision_latency_us: self.decision_latency_us,
            risk_rules: risk.rule_statuses(),
            equity_trail: self.equity_trail_shared.clone(),
            allowed_commands: self
                .state
                .allowed_commands()
                .iter()
                .map(|c| c.name())
                .collect(),
            config: Some(self.config.clone()),
            summary_json: Default::default(),
        }
    }

    /// Add the current equity to the trail snapshots carry.
    fn extend_equity_trail(&mut self) {
        if self.equity_trail.len() == EQUITY_TRAIL {
            self.equity_trail.pop_front();
        }
        let equity = self.engine().portfolio().equity();
        self.equity_trail
            .push_back(crate::domain::decimal::to_text(equity).into());
        self.equity_trail_shared = self.equity_trail.iter().cloned().collect();
    }

    fn publish_snapshot(&mut self) -> Arc<BotSnapshot> {
        let snapshot = Arc::new(self.build_snapshot());
        self.snapshot.send_replace(snapshot.clone());
        snapshot
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
            engine: Some(self.engine().checkpoint()),
        }
    }

    fn undo_point(&self) -> UndoPoint {
        UndoPoint {
            engine: self.engine().checkpoint(),
            queues: self.engine().queue_marks(),
            state: self.state,
            error: self.error.clone(),
            started_at: self.started_at,
            next_candle: self.next_candle,
            last_candle_ts: self.last_candle_ts,
            candles_processed: self.candles_processed,
        }
    }

    /// Back to `point` after a commit failed: nothing of the step stays.
    fn undo(&mut self, point: UndoPoint) {
        self.engine_mut().undo_to(point.engine, point.queues);
        self.state = point.state;
        self.engine_mut()
            .set_entries_paused(point.state == super::state::BotState::Paused);
        self.error = point.error;
        self.started_at = point.started_at;
        self.next_candle = point.next_candle;
        self.last_candle_ts = point.last_candle_ts;
        self.candles_processed = point.candles_processed;
        self.pending_state_changes.clear();
    }

    /// The records of `events` (and the rest of `batch`'s fields), with the
    /// runner's state after them.
    fn record_batch(&self, events: &[EngineEvent], equity: Vec<EquitySample>) -> RecordBatch {
        let mut batch = RecordBatch {
            bot_id: self.id().to_string(),
            equity,
            state: self.runner_state(),
            ..RecordBatch::default()
        };
        for event in events {
            match event {
                EngineEvent::OrderPlaced { order } | EngineEvent::OrderCancelled { order } => {
                    batch.orders.push(order.clone());
                }
                EngineEvent::OrderFilled { order, fill } => {
                    batch.orders.push(order.clone());
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
                    batch.kill_switches.push(KillSwitchRecord {
                        ts: *ts,
                        reason: reason.clone(),
                    });
                }
                EngineEvent::Signal { .. }
                | EngineEvent::OrderRejected { .. }
                | EngineEvent::PositionOpened { .. } => {}
            }
        }
        batch
    }

    /// Commit `batch`; Ok at once when no commit log is attached. Once
    /// committed, what the engine asked of the exchange goes out: an order
    /// is sent only after the book holding it is stored (a failed commit
    /// keeps the requests for the next commit that stores them).
    async fn commit(&mut self, batch: RecordBatch) -> Result<(), String> {
        if let Some(log) = &self.context.commit_log {
            log.commit(batch).await?;
        }
        self.send_to_exchange();
        Ok(())
    }

    /// Start the exchange link of a live bot for `config`, whose book will
    /// be the engine's now, or (`fresh`) a new one of the config's capital;
    /// none for a paper bot.
    fn connect(
        &self,
        config: &BotConfig,
        fresh: bool,
    ) -> Result<Option<ExchangeLink>, Vec<ConfigIssue>> {
        if config.mode != crate::domain::config::Mode::Live {
            return Ok(None);
        }
        let engine = self.engine();
        let book = if fresh {
            Book {
                open: Vec::new(),
                cash: config.capital.initial,
                position: rust_decimal::Decimal::ZERO,
            }
        } else {
            Book {
                open: engine.open_orders().to_vec(),
                cash: engine.portfolio().cash(),
                position: engine.portfolio().position(),
            }
        };
        self.context
            .venues
            .connect(self.id(), config, book)
            .map(Some)
    }

    /// Put `link` in place (dropping any other) and give the engine its
    /// check; cancels the book marks as requested are sent (again).
    fn attach(&mut self, link: Option<ExchangeLink>) {
        if let Some(link) = &link {
            let engine = self.engine_mut();
            engine.set_order_check(link.check.clone());
            engine.repeat_cancel_requests();
            // Client order ids derive from order numbers: a new book (a
            // capital change, paper to live, a bot deleted and made again)
            // must never number an order as an earlier one on the account.
            let first = u64::try_from(super::wall_ms())
                .unwrap_or(0)
                .saturating_mul(1_000);
            engine.number_orders_from(first);
        }
        self.link = link;
        self.send_to_exchange();
    }

    /// What the exchange did: applied on a strategy thread (the strategy
    /// hears of fills), committed, published. A report whose commit fails
    /// is kept and applied again (the link does not repeat it).
    async fn on_exchange(&mut self, report: Option<LinkReport>) {
        let Some(report) = report else {
            // The link's task ended (it never does on its own): the bot
            // cannot know what its orders do any more.
            self.link = None;
            let point = self.undo_point();
            self.fail("the exchange link ended: orders are not followed");
            let _ = self.commit_command(point, None).await;
            return;
        };
        let point = self.undo_point();
        let kept = report.clone();
        match report {
            LinkReport::Halt(reason) => {
                tracing::error!(bot = %self.id(), %reason, "the exchange account does not match");
                self.engine_mut()
                    .cancel_pending("the account does not match the bot");
                self.fail(&reason);
            }
            LinkReport::Exchange(report) => {
                let applied = self
                    .with_engine(move |engine| engine.apply_report(report))
                    .await;
                match applied {
                    Some(Ok(true)) => {}
                    Some(Ok(false)) | None => return,
                    Some(Err(error)) => self.fail(&format!("plugin failed: {error}")),
                }
                self.follow_kill_switch();
            }
        }
        if let Err(error) = self.commit_command(point, None).await {
            tracing::error!(bot = %self.id(), %error, "an exchange report was not stored; kept");
            self.unapplied.push_back(kept);
        }
    }

    /// A risk rule engaged the kill-switch: the bot is killed.
    pub(super) fn follow_kill_switch(&mut self) {
        if self.engine().risk().kill_switch().is_some() && self.state != BotState::Killed {
            self.set_state(BotState::Killed, "a risk rule engaged the kill-switch");
        }
    }

    /// Hand what the engine asked of the exchange to the link: called
    /// only once the step is committed.
    fn send_to_exchange(&mut self) {
        let Some(engine) = self.engine.as_deref_mut() else {
            return;
        };
        let requests = engine.take_outbox();
        if requests.is_empty() {
            return;
        }
        match &self.link {
            Some(link) => link.send(requests),
            None => tracing::error!(
                bot = %self.labels.id,
                "no exchange link: {} request(s) not sent",
                requests.len()
            ),
        }
    }

    /// After a commit: the new snapshot, the state changes, then `events`
    /// and `extra` in order. Returns the snapshot.
    fn publish(&mut self, events: Vec<EngineEvent>, extra: Vec<EventData>) -> Arc<BotSnapshot> {
        let snapshot = self.publish_snapshot();
        let bus = self.context.bus.clone();
        let id = self.id().clone();
        for (from, to, reason) in std::mem::take(&mut self.pending_state_changes) {
            let change = StateChanged {
                from,
                to,
                reason,
                bot: snapshot.clone(),
            };
            bus.publish(Some(&id), EventData::BotStateChanged(Box::new(change)));
        }
        for event in events {
            let trade = match &event {
                EngineEvent::PositionClosed { trade, .. } => Some(trade.clone()),
                _ => None,
            };
            bus.publish(Some(&id), EventData::from(event));
            if let Some(trade) = trade {
                bus.publish(Some(&id), EventData::Trade(Box::new(trade)));
            }
        }
        for data in extra {
            bus.publish(Some(&id), data);
        }
        snapshot
    }

    /// Commit the engine's undrained events with the runner's state; on
    /// success publish them and return the snapshot; on failure undo to
    /// `point` and say why.
    async fn commit_command(
        &mut self,
        point: UndoPoint,
        config: Option<ConfigRecord>,
    ) -> Result<Arc<BotSnapshot>, CommandError> {
        let mut events: Vec<EngineEvent> = self.engine_mut().drain_events().collect();
        let mut batch = self.record_batch(&events, Vec::new());
        batch.config = config.clone();
        if let Err(error) = self.commit(batch).await {
            tracing::error!(bot = %self.id(), %error, "command not committed; undone");
            let step = events.split_off(point.queues.events.min(events.len()));
            let heard_fills = step
                .iter()
                .any(|e| matches!(e, EngineEvent::OrderFilled { .. }));
            self.undo(point);
            // What was queued before the step waits for the next commit.
            self.engine_mut().requeue_events(events);
            if heard_fills {
                // The strategy heard of fills that are now undone: its own
                // state cannot be trusted to match the books.
                self.fail("the store failed after the strategy heard of a fill");
                self.publish(Vec::new(), Vec::new());
            }
            return Err(CommandError::NotStored(error));
        }
        super::crash_point::here("command-committed");
        let extra = config
            .map(|record| vec![EventData::ConfigUpdated(Box::new(record))])
            .unwrap_or_default();
        Ok(self.publish(events, extra))
    }

    /// Carry on from a stored state. `resume`: a bot that was running (or
    /// paused) runs again; otherwise it comes back stopped. Killed and
    /// failed bots stay so. The strategy warms up on the candles the feed
    /// kept from before the restart.
    pub(crate) async fn restore(&mut self, stored: RunnerState, resume: bool) {
        if let Some(engine) = stored.engine {
            self.engine_mut().restore(engine);
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
        let paused = self.state == BotState::Paused;
        self.engine_mut().set_entries_paused(paused);
        self.engine_mut().drain_events().for_each(drop);
        let config = self.config.clone();
        match self.connect(&config, false) {
            Ok(link) => self.attach(link),
            Err(issues) => {
                let reason = crate::domain::config::join_issues(&issues);
                self.error = Some(format!("no exchange link: {reason}"));
                self.state = BotState::Error;
            }
        }
        // A bot that runs on goes on after the last candle it processed:
        // candles its feed kept (and archived) before the restart are not
        // skipped.
        self.next_candle = match self.last_candle_ts {
            Some(ts) if self.state.consumes_candles() => self.feed.position_after(ts),
            _ => self.feed.published(),
        };
        let (config, plugin) = (self.config.clone(), self.plugin.clone());
        match self.fresh_instance(config, plugin).await {
            Ok(instance) => {
                self.engine_mut().replace_decider(instance);
            }
            Err(error) => {
                tracing::warn!(bot = %self.id(), "restored without a warm-up: {error}");
            }
        }
        self.publish_snapshot();
    }

    /// A new bot's first commit: version 1 of its config and its state
    /// (running at once with `autostart`). Nothing is published yet: the
    /// manager announces the bot once it is registered.
    pub(crate) async fn create(&mut self, actor: &str) -> Result<Arc<BotSnapshot>, CommandError> {
        let config = self.config.clone();
        let link = self
            .connect(&config, false)
            .map_err(CommandError::Invalid)?;
        self.attach(link);
        if self.config.autostart {
            if self.context.emergency.load(Ordering::Acquire) {
                return Err(CommandError::EmergencyEngaged);
            }
            self.next_candle = self.feed.published();
            self.started_at = Some(super::wall_ms());
            self.set_state(BotState::Running, "autostart");
        }
        let mut batch = self.record_batch(&[], Vec::new());
        batch.config = Some(self.config_record(actor));
        self.commit(batch).await.map_err(CommandError::NotStored)?;
        Ok(self.publish_snapshot())
    }

    /// Publish a created bot (the manager registered it).
    fn announce(&mut self) {
        let snapshot = self.snapshot.borrow().clone();
        let id = self.id().clone();
        self.context
            .bus
            .publish(Some(&id), EventData::BotCreated(snapshot));
        self.publish(Vec::new(), Vec::new());
    }

    fn config_record(&self, actor: &str) -> ConfigRecord {
        ConfigRecord {
            version: self.config_version,
            config: self.config.clone(),
            actor: actor.to_string(),
            at: super::wall_ms(),
        }
    }
}
