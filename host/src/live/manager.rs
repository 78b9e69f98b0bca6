//! [`BotManager`]: the set of bots. It checks and instantiates new bots,
//! hands every command to the bot's runner (the bot's only writer) and
//! returns the runner's typed reply, reads snapshots, and runs the bulk
//! commands and the emergency stop.
//!
//! The manager writes nothing of a bot itself: creation, deletion and
//! every change are committed by the bot's runner. What it owns is the
//! host-wide emergency flag, committed before it is acted on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::domain::config::{BotConfig, ConfigIssue};
use crate::domain::{Order, OrderRequest};
use crate::plugin::PluginRegistry;

use super::bus::EventBus;
use super::durable::{CommitLog, HostRecord, RunnerState};
use super::event::EventData;
use super::exchange_link::LiveVenues;
use super::feed::{CandleArchive, FeedHub};
use super::latency::LatencyHistogram;
use super::request::{
    AbandonOnDrop, Answer, Claim, Command, CommandError, CommandReply, ConfigChange, Request,
    Urgent,
};
use super::runner::{BotRunner, NewBot, RunnerContext, check_as_sent, init_issues};
use super::snapshot::BotSnapshot;
use super::state::{BotState, CommandKind};
use super::strategy_threads::{StrategyThreads, default_max_threads};

/// Commands waiting for a runner; more than this and callers wait.
const COMMAND_QUEUE: usize = 64;
/// The reason of every kill the emergency stop makes.
const EMERGENCY_KILL: &str = "emergency stop";

/// The emergency stop's kill for a bot in `state`: a running (or paused)
/// bot's strategy call in flight is interrupted; any other bot is killed
/// once its runner is free (it ignores the kill unless its start was being
/// committed meanwhile).
fn kill_for_the_emergency(urgent: &Urgent, state: BotState) {
    if matches!(state, BotState::Running | BotState::Paused) {
        urgent.request_kill(EMERGENCY_KILL);
    } else {
        urgent.request_kill_between_calls(EMERGENCY_KILL);
    }
}
/// How long a runner has to take a command. A runner handles commands
/// between candles (a strategy call is bounded by its own limits), so this
/// is only reached when something is badly wrong; the caller is then told
/// the command was not applied, and it never will be.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("no bot `{0}`")]
    NotFound(String),
    #[error("a bot `{0}` already exists")]
    Exists(String),
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// A running bot, as the manager holds it.
struct BotHandle {
    /// Commands go in here; the runner answers each on its oneshot.
    commands: mpsc::Sender<Request>,
    /// The lane that overtakes the queue (kills).
    urgent: Arc<Urgent>,
    /// The runner's latest snapshot, readable without waiting on it.
    snapshot: watch::Receiver<Arc<BotSnapshot>>,
    task: JoinHandle<()>,
}

/// What the emergency stop did, bot by bot.
#[derive(Debug, Clone)]
pub struct EmergencyDispatch {
    /// Bots the kill was sent to (running or paused).
    pub killing: Vec<String>,
    /// Bots that trade nothing (stopped, killed, failed): left as they are;
    /// none can start while the emergency holds.
    pub untouched: Vec<String>,
}

pub struct BotManager {
    feeds: FeedHub,
    /// How long a runner has to take a command.
    command_timeout: Duration,
    /// Bots by id. Held only to clone a handle out, never across an await.
    bots: RwLock<BTreeMap<String, BotHandle>>,
    /// Ids of bots being created (checked, not yet committed).
    creating: Mutex<BTreeSet<String>>,
    context: Arc<RunnerContext>,
}

impl BotManager {
    pub fn new(registry: Arc<RwLock<PluginRegistry>>, bus: Arc<EventBus>) -> Self {
        let threads = StrategyThreads::new(default_max_threads())
            .expect("the strategy threads start (an OS thread limit was hit otherwise)");
        Self {
            feeds: FeedHub::default(),
            command_timeout: COMMAND_TIMEOUT,
            bots: RwLock::new(BTreeMap::new()),
            creating: Mutex::new(BTreeSet::new()),
            context: Arc::new(RunnerContext {
                bus,
                registry,
                commit_log: None,
                latency: Arc::new(LatencyHistogram::default()),
                threads: Arc::new(threads),
                emergency: Arc::new(AtomicBool::new(false)),
                venues: Arc::new(LiveVenues::default()),
            }),
        }
    }

    fn context_mut(&mut self) -> &mut RunnerContext {
        Arc::get_mut(&mut self.context).expect("configured before any bot exists")
    }

    /// Feeds keep their candles in `archive` and resume from it after a
    /// restart.
    pub fn with_candle_archive(mut self, archive: Arc<dyn CandleArchive>) -> Self {
        self.feeds.set_archive(archive);
        self
    }

    /// Replay files must lie under `dir` (the server's data folder).
    pub fn with_replay_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.feeds.set_replay_dir(dir);
        self
    }

    /// Binance feeds may point only at Binance or at these base URLs.
    pub fn with_binance_urls(mut self, urls: Vec<String>) -> Self {
        self.feeds.set_binance_urls(urls);
        self
    }

    /// Where live bots' accounts are and what the server allows them.
    pub fn with_live_venues(mut self, venues: LiveVenues) -> Self {
        self.context_mut().venues = Arc::new(venues);
        self
    }

    /// Every change of every bot is committed to `log` before it is
    /// published or answered.
    pub fn with_commit_log(mut self, log: Arc<dyn CommitLog>) -> Self {
        self.context_mut().commit_log = Some(log);
        self
    }

    /// Strategy code runs on at most `threads` threads.
    pub fn with_strategy_threads(mut self, threads: usize) -> std::io::Result<Self> {
        self.context_mut().threads = Arc::new(StrategyThreads::new(threads)?);
        Ok(self)
    }

    /// Runners must take a command within `timeout` (default 30 s).
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Start with the emergency stop engaged (it was when the host stopped).
    pub fn with_emergency_engaged(self, engaged: bool) -> Self {
        self.context.emergency.store(engaged, Ordering::Release);
        self
    }

    /// Latency from a feed publishing a candle to each bot's decision.
    pub fn latency(&self) -> &LatencyHistogram {
        &self.context.latency
    }

    pub fn registry(&self) -> &Arc<RwLock<PluginRegistry>> {
        &self.context.registry
    }

    pub fn bus(&self) -> &Arc<EventBus> {
        &self.context.bus
    }

    pub fn feeds(&self) -> &FeedHub {
        &self.feeds
    }

    pub fn strategy_threads(&self) -> usize {
        self.context.threads.max_threads()
    }

    pub fn emergency_engaged(&self) -> bool {
        self.context.emergency.load(Ordering::Acquire)
    }

    fn bots(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, BotHandle>> {
        self.bots.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Create a bot from a config document as a client sent it: an id
    /// already taken is refused first, then the document is read and
    /// checked once, as a config PUT is (it must meet the bot schema as
    /// sent), every problem named at once, then [`Self::create`].
    pub async fn create_from_document(
        &self,
        document: &serde_json::Value,
        actor: &str,
    ) -> Result<Arc<BotSnapshot>, ManagerError> {
        // A bot that exists is the answer whatever else the document says:
        // fixing its fields would only lead to the same refusal.
        if let Some(id) = document.get("id").and_then(serde_json::Value::as_str)
            && self.taken(id, &self.creating())
        {
            return Err(ManagerError::Exists(id.to_string()));
        }
        let config = BotConfig::parse(document).map_err(CommandError::Invalid)?;
        check_as_sent(&self.context.registry, &config, document)?;
        self.create(config, actor).await
    }

    /// Create a bot (stopped, or running with `autostart`) from a checked
    /// config (read by [`BotConfig::from_yaml`] or [`BotConfig::from_value`],
    /// or by [`Self::create_from_document`]): the plugin is resolved and
    /// instantiated once, and the bot's runner commits it before anything
    /// is answered or published. Nothing is created on any error, nor while
    /// the emergency stop is engaged.
    pub async fn create(
        &self,
        config: BotConfig,
        actor: &str,
    ) -> Result<Arc<BotSnapshot>, ManagerError> {
        if self.emergency_engaged() {
            return Err(CommandError::EmergencyEngaged.into());
        }
        let id = config.id.clone();
        let _reservation = self.reserve(&id)?;
        let (mut runner, snapshot, urgent) = self.prepare(config, 1).await?;
        let created = runner.create(actor).await?;
        self.register(id, runner, snapshot, urgent, true);
        Ok(created)
    }

    /// Bring back a bot after a restart of the host: its config at
    /// `version`, its stored state (books, orders, risk, bot state).
    /// `resume`: a bot that was running runs again. Autostart does not
    /// apply: the stored state decides; but with the emergency stop
    /// engaged, a bot that comes back running is killed at once (the host
    /// stopped between the stop's commit and the bot's kill).
    pub async fn restore(
        &self,
        config: BotConfig,
        version: u64,
        state: RunnerState,
        resume: bool,
    ) -> Result<Arc<BotSnapshot>, ManagerError> {
        let id = config.id.clone();
        let _reservation = self.reserve(&id)?;
        let (mut runner, snapshot, urgent) = self.prepare(config, version).await?;
        runner.restore(state, resume).await;
        let restored = snapshot.borrow().clone();
        self.register(id, runner, snapshot, urgent, false);
        Ok(restored)
    }

    fn creating(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.creating.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `id` names a bot, or one being created (`creating`, the
    /// locked set of those).
    fn taken(&self, id: &str, creating: &BTreeSet<String>) -> bool {
        self.bots().contains_key(id) || creating.contains(id)
    }

    /// Keep `id` from being created twice while it is being created.
    fn reserve(&self, id: &str) -> Result<Reservation<'_>, ManagerError> {
        let mut creating = self.creating();
        if self.taken(id, &creating) {
            return Err(ManagerError::Exists(id.to_string()));
        }
        creating.insert(id.to_string());
        Ok(Reservation {
            manager: self,
            id: id.to_string(),
        })
    }

    /// Resolve and instantiate a checked config's plugin (on a strategy
    /// thread), attach its feed: a runner ready to commit or restore.
    async fn prepare(
        &self,
        config: BotConfig,
        version: u64,
    ) -> Result<(BotRunner, watch::Receiver<Arc<BotSnapshot>>, Arc<Urgent>), ManagerError> {
        let plugin = self
            .context
            .registry
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .resolve_for(&config)
            .map_err(|issue| CommandError::Invalid(vec![issue]))?;
        let config = Arc::new(config);
        let feed = self.feeds.feed_for(&config).await.map_err(|err| {
            CommandError::Invalid(vec![ConfigIssue {
                pointer: "/market/feed".into(),
                message: err.to_string(),
            }])
        })?;
        let (starting, plugin_for_job) = (config.clone(), plugin.clone());
        let (instance, _warmup) = self
            .context
            .threads
            .run(move || plugin_for_job.start_bot(&starting))
            .await
            .map_err(|error| CommandError::NotStored(error.to_string()))?
            .map_err(|error| CommandError::Invalid(init_issues(error)))?;
        let urgent = Arc::new(Urgent::default());
        let new = NewBot {
            config,
            plugin,
            instance,
            feed,
            version,
        };
        let (runner, snapshot) = BotRunner::new(new, self.context.clone(), urgent.clone())
            .map_err(CommandError::Invalid)?;
        Ok((runner, snapshot, urgent))
    }

    /// Make a prepared runner reachable and start its task.
    fn register(
        &self,
        id: String,
        runner: BotRunner,
        snapshot: watch::Receiver<Arc<BotSnapshot>>,
        urgent: Arc<Urgent>,
        announce: bool,
    ) {
        let (commands, requests) = mpsc::channel(COMMAND_QUEUE);
        // Registered under the lock the task's first announcement may race
        // with: a reader reacting to `bot.created` waits for it and finds
        // the bot.
        let mut bots = self.bots.write().unwrap_or_else(PoisonError::into_inner);
        // Engaged while the bot was being created (its start committed
        // after the stop went round), or before a crash that came before
        // its kill was committed: it must not trade.
        if self.emergency_engaged() {
            kill_for_the_emergency(&urgent, snapshot.borrow().state);
        }
        let task = tokio::spawn(runner.run(requests, announce));
        bots.insert(
            id,
            BotHandle {
                commands,
                urgent,
                snapshot,
                task,
            },
        );
    }

    /// The latest snapshot of a bot.
    pub fn get(&self, id: &str) -> Option<Arc<BotSnapshot>> {
        self.bots().get(id).map(|bot| bot.snapshot.borrow().clone())
    }

    /// A receiver that sees every snapshot the bot publishes.
    pub fn watch(&self, id: &str) -> Option<watch::Receiver<Arc<BotSnapshot>>> {
        self.bots().get(id).map(|bot| bot.snapshot.clone())
    }

    /// Ids of the bots whose config names this plugin.
    pub fn bots_using(&self, plugin: &str) -> Vec<String> {
        self.list()
            .iter()
            .filter(|s| {
                s.config
                    .as_ref()
                    .is_some_and(|c| c.strategy.plugin == plugin)
            })
            .map(|s| s.id.to_string())
            .collect()
    }

    /// Every bot's latest snapshot, by id.
    pub fn list(&self) -> Vec<Arc<BotSnapshot>> {
        self.bots()
            .values()
            .map(|bot| bot.snapshot.borrow().clone())
            .collect()
    }

    /// Hand `command` to the bot's runner and wait for what it did. The
    /// runner must take it within the command timeout; once taken, it is
    /// carried out and answered (strategy calls are bounded by their limits).
    async fn send<T>(
        &self,
        id: &str,
        command: impl FnOnce(Answer<T>) -> Command,
    ) -> Result<T, ManagerError> {
        let (sender, urgent) = {
            let bots = self.bots();
            let bot = bots
                .get(id)
                .ok_or_else(|| ManagerError::NotFound(id.into()))?;
            (bot.commands.clone(), bot.urgent.clone())
        };
        let deadline = tokio::time::Instant::now() + self.command_timeout;
        let timed_out = || CommandError::Timeout(self.command_timeout.as_secs().max(1));
        let claim = Claim::default();
        let (reply, mut answer) = oneshot::channel();
        let command = command(reply);
        // A kill stops a strategy call in flight: it is next.
        let kill = matches!(
            command,
            Command::Control {
                kind: CommandKind::Kill,
                ..
            }
        );
        let abandon_if_dropped = if kill {
            AbandonOnDrop::interrupting(claim.clone(), urgent.clone())
        } else {
            AbandonOnDrop::new(claim.clone())
        };
        urgent.call_attention();
        let request = Request {
            command,
            claim: claim.clone(),
        };
        let sent = tokio::time::timeout_at(deadline, sender.send(request)).await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(CommandError::Gone.into()),
            Err(_) => {
                claim.abandon();
                return Err(timed_out().into());
            }
        }
        let received = match tokio::time::timeout_at(deadline, &mut answer).await {
            Ok(received) => received,
            Err(_) if claim.abandon() => return Err(timed_out().into()),
            // Taken just in time: it is being carried out; wait for it.
            Err(_) => answer.await,
        };
        drop(abandon_if_dropped);
        let outcome = received.map_err(|_| CommandError::Gone)?;
        Ok(outcome?)
    }

    /// A control command (start, stop, pause, ...); `flatten` makes a stop
    /// also sell the position.
    pub async fn control(
        &self,
        id: &str,
        kind: CommandKind,
        flatten: bool,
    ) -> Result<CommandReply, ManagerError> {
        if kind == CommandKind::Start && self.emergency_engaged() {
            return Err(CommandError::EmergencyEngaged.into());
        }
        if kind == CommandKind::Delete {
            return self.delete(id).await;
        }
        self.send(id, |answer| Command::Control {
            kind,
            flatten,
            answer,
        })
        .await
    }

    /// Validate and hot-swap a new config (or, `dry_run`, only validate it).
    pub async fn reconfigure(
        &self,
        id: &str,
        change: ConfigChange,
    ) -> Result<CommandReply, ManagerError> {
        self.send(id, |answer| Command::Reconfigure {
            change: Box::new(change),
            answer,
        })
        .await
    }

    /// An operator's order through the bot's risk engine: the order in its
    /// state after placement, or the refusal with its check.
    pub async fn place_order(
        &self,
        id: &str,
        request: OrderRequest,
    ) -> Result<(Order, Arc<BotSnapshot>), ManagerError> {
        let placed = self
            .send(id, |answer| Command::PlaceOrder { request, answer })
            .await?;
        Ok((placed.order, placed.snapshot))
    }

    /// Cancel one of the bot's open orders: the order as cancelled.
    pub async fn cancel_order(&self, id: &str, order_id: u64) -> Result<Order, ManagerError> {
        let cancelled = self
            .send(id, |answer| Command::CancelOrder {
                id: order_id,
                answer,
            })
            .await?;
        Ok(cancelled.order)
    }

    /// Delete a stopped (or failed) bot: its runner commits the removal and
    /// ends.
    pub async fn delete(&self, id: &str) -> Result<CommandReply, ManagerError> {
        let reply = self.send(id, |answer| Command::Delete { answer }).await?;
        let removed = self
            .bots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        if let Some(bot) = removed {
            let _ = bot.task.await;
        }
        Ok(reply)
    }

    fn ids(&self) -> Vec<String> {
        self.bots().keys().cloned().collect()
    }

    /// Run one command on every bot (all at once); each bot's outcome.
    async fn all(
        &self,
        ids: Vec<String>,
        kind: CommandKind,
    ) -> Vec<(String, Result<CommandReply, ManagerError>)> {
        self.control_each(ids, kind, false).await
    }

    /// One command for each bot, all at once; each answers for itself
    /// (an unknown id answers `NotFound`).
    pub async fn control_each(
        &self,
        ids: Vec<String>,
        kind: CommandKind,
        flatten: bool,
    ) -> Vec<(String, Result<CommandReply, ManagerError>)> {
        let outcomes =
            futures_util::future::join_all(ids.iter().map(|id| self.control(id, kind, flatten)))
                .await;
        ids.into_iter().zip(outcomes).collect()
    }

    pub async fn start_all(&self) -> Vec<(String, Result<CommandReply, ManagerError>)> {
        self.all(self.ids(), CommandKind::Start).await
    }

    /// Graceful: cancel pending orders; positions stay.
    pub async fn stop_all(&self) -> Vec<(String, Result<CommandReply, ManagerError>)> {
        self.all(self.ids(), CommandKind::Stop).await
    }

    /// Stop then start the bots that were running.
    pub async fn restart_all(&self) -> Vec<(String, Result<CommandReply, ManagerError>)> {
        let running: Vec<String> = self
            .list()
            .iter()
            .filter(|s| matches!(s.state, BotState::Running | BotState::Paused))
            .map(|s| s.id.to_string())
            .collect();
        let stopped = self.all(running, CommandKind::Stop).await;
        let (ok, mut failed): (Vec<_>, Vec<_>) = stopped
            .into_iter()
            .partition(|(_, outcome)| outcome.is_ok());
        let ids = ok.into_iter().map(|(id, _)| id).collect();
        let mut outcomes = self.all(ids, CommandKind::Start).await;
        outcomes.append(&mut failed);
        outcomes
    }

    /// The emergency stop: committed first (a crash in the middle comes
    /// back engaged, and kills at restart what it had not killed yet), then
    /// every bot is told to kill at once through its urgent lane (a running
    /// bot's strategy call in flight is interrupted; a bot that is not
    /// running ignores it, but one whose start is being committed is
    /// killed right after). The answer lists the bots that were running or paused.
    /// Returns without waiting for the kills: each bot's
    /// `bot.state_changed` event tells when it is killed. Start and create
    /// are refused until [`BotManager::emergency_reset`].
    pub async fn emergency_stop_all(&self, by: &str) -> Result<EmergencyDispatch, ManagerError> {
        let record = HostRecord::Emergency {
            engaged: true,
            by: by.to_string(),
            at: super::wall_ms(),
        };
        if let Some(log) = &self.context.commit_log {
            log.commit_host(record)
                .await
                .map_err(CommandError::NotStored)?;
        }
        self.context.emergency.store(true, Ordering::Release);
        let mut dispatch = EmergencyDispatch {
            killing: Vec::new(),
            untouched: Vec::new(),
        };
        for (id, bot) in self.bots().iter() {
            // Read before the kill, which may be done at once.
            let state = bot.snapshot.borrow().state;
            kill_for_the_emergency(&bot.urgent, state);
            if matches!(state, BotState::Running | BotState::Paused) {
                dispatch.killing.push(id.clone());
            } else {
                dispatch.untouched.push(id.clone());
            }
        }
        let bots = dispatch.killing.len();
        self.context.bus.publish(
            None,
            EventData::EmergencyEngaged {
                by: by.to_string(),
                bots,
            },
        );
        Ok(dispatch)
    }

    /// Release the emergency stop (killed bots stay killed until each is reset).
    pub async fn emergency_reset(&self, by: &str) -> Result<(), ManagerError> {
        // Nothing to release: no record, no event.
        if !self.emergency_engaged() {
            return Ok(());
        }
        let record = HostRecord::Emergency {
            engaged: false,
            by: by.to_string(),
            at: super::wall_ms(),
        };
        if let Some(log) = &self.context.commit_log {
            log.commit_host(record)
                .await
                .map_err(CommandError::NotStored)?;
        }
        self.context.emergency.store(false, Ordering::Release);
        self.context
            .bus
            .publish(None, EventData::EmergencyReset { by: by.to_string() });
        Ok(())
    }
}

/// An id held while its bot is being created; released when dropped.
struct Reservation<'a> {
    manager: &'a BotManager,
    id: String,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.manager.creating().remove(&self.id);
    }
}
