//! What each command does to a bot, as its runner carries it out.
//!
//! Every command follows the same path: check it against the state machine
//! (and the config policy), change the engine (on a strategy thread when
//! the strategy may be called), commit the records and the runner's state
//! in one transaction, then publish and answer with what was done. If the
//! commit fails, the bot is put back as it was and the caller is told that
//! nothing changed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::domain::config::{BotConfig, ConfigIssue, ConfigRefusal};
use crate::domain::{OrderKind, OrderOrigin, OrderRequest};
use crate::engine::{BotEngine, EngineError, Placement};
use crate::plugin::{Plugin, PluginError, PluginInstance};

use super::super::durable::Lifecycle;
use super::super::event::EventData;
use super::super::request::{
    Command, CommandError, CommandReply, ConfigChange, OrderReply, Outcome,
};
use super::super::snapshot::SnapshotLabels;
use super::super::state::{BotState, CommandKind, Transition};
use super::candles::warm_up;
use super::{BotRunner, init_issues};

/// Candles a strategy warms up on per strategy-thread job: between two
/// jobs the runner looks for a kill.
const WARMUP_CHUNK: usize = 2_000;

/// What a config change took out of the bot, kept until the change is
/// committed.
enum Replaced {
    /// The whole engine (a new capital restarts the books).
    Engine(super::Engine),
    /// The strategy instance.
    Decider(Box<PluginInstance>),
    /// Nothing: only the terms changed.
    Nothing,
}

fn reply(outcome: Outcome, snapshot: Arc<super::BotSnapshot>) -> CommandReply {
    CommandReply { outcome, snapshot }
}

impl BotRunner {
    /// Carry out `command` and answer its caller; true when the runner
    /// must end (the bot was deleted).
    pub(super) async fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::Control {
                kind,
                flatten,
                answer,
            } => {
                let _ = answer.send(self.control(kind, flatten).await);
            }
            Command::Reconfigure { change, answer } => {
                let _ = answer.send(self.reconfigure(*change).await);
            }
            Command::PlaceOrder { request, answer } => {
                let _ = answer.send(self.place_order(request).await);
            }
            Command::CancelOrder { id, answer } => {
                let _ = answer.send(self.cancel_order(id).await);
            }
            Command::Delete { answer } => {
                let deleted = self.delete().await;
                let ended = deleted.is_ok();
                let _ = answer.send(deleted);
                return ended;
            }
        }
        false
    }

    async fn control(
        &mut self,
        kind: CommandKind,
        flatten: bool,
    ) -> Result<CommandReply, CommandError> {
        if kind == CommandKind::Kill {
            // The kill lane may have interrupted a strategy call for this.
            self.urgent.interrupt.clear();
        }
        if kind == CommandKind::Delete {
            return self.delete().await;
        }
        let target = match self.state.transition(kind) {
            Transition::NoOp => return Ok(reply(Outcome::NoOp, self.publish_snapshot())),
            Transition::Refused => return Err(CommandError::not_allowed(kind.name(), self.state)),
            Transition::To(target) => target,
        };
        if kind == CommandKind::Start && self.context.emergency.load(Ordering::Acquire) {
            return Err(CommandError::EmergencyEngaged);
        }
        let point = self.undo_point();
        match kind {
            CommandKind::Start => {
                // Start from the next candle the feed publishes; the ones
                // published while the bot was stopped are passed over.
                self.next_candle = self.feed.published();
                self.passed_over_ts = self
                    .feed
                    .recent_before(self.next_candle, 1)
                    .last()
                    .map(|candle| candle.ts);
                self.started_at = Some(super::super::wall_ms());
            }
            CommandKind::Stop => {
                self.engine_mut().cancel_pending("bot stopped");
                if flatten {
                    let flattened = self
                        .with_engine(|engine| engine.flatten(OrderOrigin::Manual, "stop"))
                        .await;
                    if let Some(Err(error)) = flattened {
                        self.strategy_failed("stop", &error);
                    }
                }
            }
            CommandKind::Kill => self.engine_mut().kill("manual kill"),
            CommandKind::Reset => {
                let poisoned = self.engine().decider().poisoned().is_some();
                if self.state == BotState::Error || poisoned {
                    // Orders of the failed instance must not fill after a restart.
                    self.engine_mut().cancel_pending("reset after an error");
                    // A poisoned instance cannot run again: start a fresh one.
                    let (config, plugin) = (self.config.clone(), self.plugin.clone());
                    match self.fresh_instance(config, plugin).await {
                        Ok(instance) => {
                            self.engine_mut().replace_decider(instance);
                            self.error = None;
                        }
                        Err(error) => {
                            self.undo(point);
                            return Err(error);
                        }
                    }
                }
                self.engine_mut().reset();
            }
            CommandKind::CloseAll => {
                if !self.state.consumes_candles() {
                    // A stopped bot last read its feed when it stopped: it
                    // closes at the feed's latest close, not at that one.
                    let published = self.feed.published();
                    if let Some(latest) = self.feed.recent_before(published, 1).last() {
                        self.engine_mut().mark_to(latest);
                    }
                }
                let flattened = self
                    .with_engine(|engine| engine.flatten(OrderOrigin::Manual, "close-all"))
                    .await;
                if let Some(Err(error)) = flattened {
                    self.strategy_failed("close-all", &error);
                }
            }
            CommandKind::CancelPending => {
                self.engine_mut()
                    .cancel_pending("cancelled by the operator");
            }
            CommandKind::Pause | CommandKind::Resume | CommandKind::Delete => {}
        }
        if self.state != BotState::Error || kind == CommandKind::Reset {
            self.set_state(target, kind.name());
        }
        let committed = self.commit_command(point, None).await;
        if kind == CommandKind::Kill && committed.is_err() {
            self.stay_killed("manual kill");
        }
        Ok(reply(Outcome::Applied, committed?))
    }

    /// The strategy failed while a command ran: the bot goes to error,
    /// unless a kill interrupted the call (the kill comes next).
    fn strategy_failed(&mut self, command: &str, error: &EngineError) {
        if !error.is_interrupt() {
            self.fail(&format!("plugin failed during {command}: {error}"));
        }
    }

    /// A kill whose commit failed is undone like any command, but the bot
    /// must not trade: killed again, in memory only, and published (the
    /// caller is told the kill was not stored). Its records and requests
    /// (cancels, the flatten) stay queued, kept by any undo after it, and
    /// go out with the next commit that stores them.
    fn stay_killed(&mut self, reason: &str) {
        self.engine_mut().kill(reason);
        self.set_state(BotState::Killed, reason);
        self.publish(Vec::new(), Vec::new());
    }

    /// A kill from the urgent lane (the emergency stop): running and paused
    /// bots are killed; stopped and failed ones trade nothing and cannot
    /// start while the emergency holds.
    pub(super) async fn urgent_kill(&mut self) {
        let Some(reason) = self.urgent.take_kill() else {
            return;
        };
        self.urgent.interrupt.clear();
        self.urgent.take_attention();
        if !matches!(self.state, BotState::Running | BotState::Paused) {
            return;
        }
        let point = self.undo_point();
        self.engine_mut().kill(&reason);
        self.set_state(BotState::Killed, &reason);
        if let Err(error) = self.commit_command(point, None).await {
            tracing::error!(bot = %self.id(), %error, "kill not committed");
            self.stay_killed(&reason);
        }
    }

    async fn reconfigure(&mut self, change: ConfigChange) -> Result<CommandReply, CommandError> {
        let ConfigChange {
            document,
            expected_versions,
            actor,
            dry_run,
        } = change;
        let config = BotConfig::parse(&document).map_err(CommandError::Invalid)?;
        if let Some(expected) = expected_versions
            && !expected.contains(&self.config_version)
        {
            return Err(CommandError::VersionMismatch {
                expected,
                current: self.config_version,
            });
        }
        super::check_as_sent(&self.context.registry, &config, &document)?;
        let bot = crate::domain::config::BotCondition {
            stopped: self.state == BotState::Stopped,
            flat: self.engine().portfolio().position().is_zero()
                && self.engine().open_orders().is_empty(),
        };
        let diff = self
            .config
            .change_to(&config, bot)
            .map_err(|refusal| match refusal {
                ConfigRefusal::Invalid(issues) => CommandError::Invalid(issues),
                ConfigRefusal::NotHotSwappable(issues) => CommandError::NotHotSwappable(issues),
            })?;
        let plugin = self.resolve(&config)?;
        // The instance stays unless the change needs a new one, the name
        // now resolves to another build (an upload) or it cannot run again.
        let keeps_strategy = !diff.needs_new_instance()
            && Arc::ptr_eq(&plugin, &self.plugin)
            && self.engine().decider().poisoned().is_none();
        // The config in force sent again, on the same build of a strategy
        // that can still run: nothing to swap, nothing to store.
        if keeps_strategy && !dry_run && *self.config == config {
            return Ok(reply(Outcome::NoOp, self.publish_snapshot()));
        }
        // A new exchange link is checked here, attached once the change is
        // committed.
        let new_link = if diff.changes_venue() {
            Some(
                self.connect(&config, diff.restarts_books())
                    .map_err(CommandError::Invalid)?,
            )
        } else {
            None
        };
        let config = Arc::new(config);
        let instance = if keeps_strategy {
            None
        } else {
            Some(self.fresh_instance(config.clone(), plugin.clone()).await?)
        };
        if dry_run {
            // Dropped off the async threads, as every disposed instance.
            self.context.threads.dispose(instance);
            return Ok(reply(Outcome::ConfigValid, self.publish_snapshot()));
        }
        // Swap between two candles (this runs between candles), commit, and
        // put everything back as it was if the commit fails.
        let point = self.undo_point();
        let previous_config = self.config.clone();
        let previous = (
            self.plugin.clone(),
            self.labels.clone(),
            self.config_version,
        );
        let replaced = match instance {
            Some(instance) if diff.restarts_books() => {
                // Capital changes only while stopped and flat, and restarts
                // the books.
                let engine = BotEngine::new(&config, instance).map_err(|err| {
                    CommandError::Invalid(vec![ConfigIssue {
                        pointer: "/market/timeframe".into(),
                        message: err.to_string(),
                    }])
                })?;
                Replaced::Engine(
                    self.engine
                        .replace(Box::new(engine))
                        .expect("engine at home"),
                )
            }
            Some(instance) => {
                Replaced::Decider(Box::new(self.engine_mut().replace_decider(instance)))
            }
            None => Replaced::Nothing,
        };
        self.engine_mut().apply_terms(&config);
        self.labels = SnapshotLabels::new(&config, plugin.info());
        self.plugin = plugin;
        self.config = config;
        self.config_version = self.config_version.saturating_add(1);
        super::super::crash_point::here("config-swapped");
        let record = self.config_record(&actor);
        match self.commit_command(point, Some(record)).await {
            Ok(snapshot) => {
                self.context.threads.dispose(replaced);
                match new_link {
                    Some(link) => self.attach(link),
                    // A rebuilt engine gets the link's check again.
                    None => {
                        let link = self.link.take();
                        self.attach(link);
                    }
                }
                Ok(reply(
                    Outcome::ConfigApplied {
                        version: self.config_version,
                    },
                    snapshot,
                ))
            }
            Err(error) => {
                // The undo put the books back; the strategy and terms too.
                match replaced {
                    Replaced::Engine(engine) => {
                        let new = self.engine.replace(engine);
                        self.context.threads.dispose(new);
                    }
                    Replaced::Decider(old) => {
                        let new = self.engine_mut().replace_decider(*old);
                        self.context.threads.dispose(new);
                    }
                    Replaced::Nothing => {}
                }
                self.engine_mut().apply_terms(&previous_config);
                (self.plugin, self.labels, self.config_version) = previous;
                self.config = previous_config;
                self.publish_snapshot();
                Err(error)
            }
        }
    }

    /// The plugin a config names.
    fn resolve(&self, config: &BotConfig) -> Result<Arc<Plugin>, CommandError> {
        self.context
            .registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .resolve_for(config)
            .map_err(|issue| CommandError::Invalid(vec![issue]))
    }

    /// A new instance of `plugin` initialised with `config` and warmed up on
    /// the candles this bot has already processed (the ones still waiting
    /// reach it through the feed), on strategy threads, in chunks; a kill
    /// arriving meanwhile abandons it.
    pub(super) async fn fresh_instance(
        &mut self,
        config: Arc<BotConfig>,
        plugin: Arc<Plugin>,
    ) -> Result<PluginInstance, CommandError> {
        let view = Arc::new(self.engine_mut().plugin_view());
        let interrupt = self.urgent.interrupt.clone();
        let (feed, next_candle, job_view) = (self.feed.clone(), self.next_candle, view.clone());
        // One trip to a strategy thread starts the instance, picks the
        // candles its init asked for, and warms it up on the first chunk
        // (for most strategies, all of them).
        let started = self
            .context
            .threads
            .run(move || {
                let (mut instance, wanted) = plugin.start_bot(&config)?;
                instance.attach_interrupt(interrupt);
                let candles: Arc<[crate::domain::Candle]> =
                    feed.recent_before(next_candle, wanted as usize).into();
                let end = WARMUP_CHUNK.min(candles.len());
                let warmed = warm_up(&mut instance, &job_view, &candles[..end]);
                Ok::<_, crate::plugin::InitError>((instance, warmed, candles, end))
            })
            .await
            .map_err(|error| CommandError::NotStored(error.to_string()))?;
        let (mut instance, warmed, candles, mut start) =
            started.map_err(|error| CommandError::Invalid(init_issues(error)))?;
        Self::warm_up_outcome(warmed)?;
        while start < candles.len() {
            if self.urgent.kill_pending() {
                return Err(CommandError::Interrupted);
            }
            let end = (start + WARMUP_CHUNK).min(candles.len());
            let (chunk, view) = (candles.clone(), view.clone());
            let warmed = self
                .context
                .threads
                .run(move || {
                    let outcome = warm_up(&mut instance, &view, &chunk[start..end]);
                    (instance, outcome)
                })
                .await
                .map_err(|error| CommandError::NotStored(error.to_string()))?;
            instance = warmed.0;
            Self::warm_up_outcome(warmed.1)?;
            start = end;
        }
        Ok(instance)
    }

    /// A warm-up chunk's outcome as a command's.
    fn warm_up_outcome(outcome: Result<(), PluginError>) -> Result<(), CommandError> {
        match outcome {
            Ok(()) => Ok(()),
            Err(PluginError::Interrupted { .. }) => Err(CommandError::Interrupted),
            Err(error) => Err(CommandError::Invalid(vec![ConfigIssue {
                pointer: "/strategy".into(),
                message: format!("failed while warming up: {error}"),
            }])),
        }
    }

    /// An operator's order. Refused in the states that trade nothing new
    /// (killed, error) and, for orders that grow the position, while paused
    /// or not ACTIVE (the engine's own checks).
    async fn place_order(&mut self, request: OrderRequest) -> Result<OrderReply, CommandError> {
        if matches!(self.state, BotState::Killed | BotState::Error) {
            return Err(CommandError::not_allowed("place-order", self.state));
        }
        // A stopped bot reads no candles: its last price may be long past,
        // and a market order fills at once, at that price. Limit and stop
        // orders rest until the bot runs again (before its first candle the
        // engine takes only a paper bot's limit order: `no_price`).
        if self.state == BotState::Stopped && request.kind == OrderKind::Market {
            return Err(CommandError::Invalid(vec![ConfigIssue {
                pointer: "/kind".into(),
                message: "a stopped bot has no current price for a market order: start it, \
                          or place a limit order (it rests until the bot runs)"
                    .into(),
            }]));
        }
        let issues = crate::engine::manual_order_issues(&request, self.engine().instrument_rules());
        if !issues.is_empty() {
            return Err(CommandError::Invalid(issues));
        }
        let tag = &request.client_tag;
        if self
            .engine()
            .open_orders()
            .iter()
            .any(|open| &open.client_tag == tag)
        {
            return Err(CommandError::Invalid(vec![ConfigIssue {
                pointer: "/client_tag".into(),
                message: format!("an open order already has the tag `{tag}`"),
            }]));
        }
        let point = self.undo_point();
        let Some(placed) = self
            .with_engine(move |engine| engine.place_manual(request))
            .await
        else {
            let snapshot = self.publish(Vec::new(), Vec::new());
            return Err(CommandError::NotStored(
                snapshot.error.clone().unwrap_or_default(),
            ));
        };
        let placement = match placed {
            Ok(placement) => placement,
            Err(error) => {
                // The fill stands; the bot is in error, unless a kill
                // interrupted the strategy (the kill comes next).
                let interrupted = error.is_interrupt();
                self.strategy_failed("place-order", &error);
                let snapshot = self.commit_command(point, None).await?;
                return match error {
                    EngineError::FailedAfterFill { order, .. } if interrupted => Ok(OrderReply {
                        order: *order,
                        snapshot,
                    }),
                    EngineError::FailedAfterFill { order, error } => {
                        Err(CommandError::StrategyFailed {
                            message: format!(
                                "it failed hearing of order {}'s fill: {error}",
                                order.id
                            ),
                            order: Some(order),
                        })
                    }
                    _ if interrupted => Err(CommandError::Interrupted),
                    other => Err(CommandError::StrategyFailed {
                        message: other.to_string(),
                        order: None,
                    }),
                };
            }
        };
        let snapshot = self.commit_command(point, None).await?;
        match placement {
            Placement::Placed(order) => Ok(OrderReply { order, snapshot }),
            Placement::Refused(rejection) => Err(CommandError::OrderRefused(rejection)),
        }
    }

    async fn cancel_order(&mut self, id: u64) -> Result<OrderReply, CommandError> {
        let point = self.undo_point();
        let Some(order) = self
            .engine_mut()
            .cancel_order(id, "cancelled by the operator")
        else {
            return Err(CommandError::NoSuchOrder(id));
        };
        let snapshot = self.commit_command(point, None).await?;
        Ok(OrderReply { order, snapshot })
    }

    /// Remove the bot: committed first, then announced; the runner ends.
    async fn delete(&mut self) -> Result<CommandReply, CommandError> {
        if !matches!(self.state, BotState::Stopped | BotState::Error) {
            return Err(CommandError::not_allowed("delete", self.state));
        }
        if self.link.is_some() && !self.engine().open_orders().is_empty() {
            // Its link is what follows them: they would be left unwatched.
            return Err(CommandError::Invalid(vec![ConfigIssue {
                pointer: String::new(),
                message: "the bot has orders open on the exchange: cancel them (cancel-pending) before deleting it".into(),
            }]));
        }
        let mut batch = self.record_batch(&[], Vec::new());
        batch.lifecycle = Lifecycle::Deleted;
        self.commit(batch).await.map_err(CommandError::NotStored)?;
        let snapshot = self.publish_snapshot();
        let id = self.id().clone();
        self.context.bus.publish(Some(&id), EventData::BotDeleted);
        Ok(reply(Outcome::Deleted, snapshot))
    }
}
