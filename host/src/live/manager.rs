//! [`BotManager`]: the set of bots. Creates and deletes them, routes commands
//! to their runners, reads their snapshots, runs bulk commands and the
//! emergency stop.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::domain::OrderRequest;
use crate::domain::config::{BotConfig, ConfigIssue};
use crate::plugin::PluginRegistry;

use super::bus::{Channel, EventBus};
use super::durable::{CommitLog, RunnerState};
use super::feed::{CandleArchive, FeedHub};
use super::journal::BotJournal;
use super::latency::LatencyHistogram;
use super::runner::{BotRunner, Command, CommandError, Request, init_issues};
use super::snapshot::BotSnapshot;
use super::state::{BotState, CommandKind};

/// Commands waiting for a runner; more than this and callers wait.
const COMMAND_QUEUE: usize = 64;
/// Longest a command may take. A runner handles commands between candles,
/// and a plugin call is bounded by its own wall-clock limit, so this is only
/// reached if something is badly wrong; the caller then gets an error
/// instead of waiting forever.
const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("no bot `{0}`")]
    NotFound(String),
    #[error("a bot `{0}` already exists")]
    Exists(String),
    #[error("the emergency stop is engaged; reset it before starting or creating bots")]
    EmergencyEngaged,
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// A running bot, as the manager holds it.
struct BotHandle {
    /// Commands go in here; the runner answers each on its oneshot.
    commands: mpsc::Sender<Request>,
    /// The runner's latest snapshot, readable without waiting on it.
    snapshot: watch::Receiver<Arc<BotSnapshot>>,
    /// The runner's history, for reads that snapshots do not carry.
    journal: Arc<BotJournal>,
    task: JoinHandle<()>,
}

pub struct BotManager {
    registry: Arc<RwLock<PluginRegistry>>,
    feeds: FeedHub,
    bus: Arc<EventBus>,
    /// Bots by id. Held only to clone a handle out, never across an await.
    bots: RwLock<BTreeMap<String, BotHandle>>,
    /// Set by the emergency stop; start and create are refused until reset.
    emergency: Mutex<bool>,
    /// Decision latencies of every runner.
    latency: Arc<LatencyHistogram>,
    /// Where runners commit their records before publishing (the store).
    commit_log: Option<Arc<dyn CommitLog>>,
}

impl BotManager {
    pub fn new(registry: Arc<RwLock<PluginRegistry>>, bus: Arc<EventBus>) -> Self {
        Self {
            registry,
            feeds: FeedHub::default(),
            bus,
            bots: RwLock::new(BTreeMap::new()),
            emergency: Mutex::new(false),
            latency: Arc::new(LatencyHistogram::default()),
            commit_log: None,
        }
    }

    /// Feeds keep their candles in `archive` and resume from it after a
    /// restart.
    pub fn with_candle_archive(mut self, archive: Arc<dyn CandleArchive>) -> Self {
        self.feeds.set_archive(archive);
        self
    }

    /// Every bot created from now on commits its records to `log` before
    /// publishing them.
    pub fn with_commit_log(mut self, log: Arc<dyn CommitLog>) -> Self {
        self.commit_log = Some(log);
        self
    }

    /// Latency from a feed publishing a candle to each bot's decision.
    pub fn latency(&self) -> &LatencyHistogram {
        &self.latency
    }

    pub fn registry(&self) -> &Arc<RwLock<PluginRegistry>> {
        &self.registry
    }

    pub fn bus(&self) -> &Arc<EventBus> {
        &self.bus
    }

    pub fn feeds(&self) -> &FeedHub {
        &self.feeds
    }

    pub fn emergency_engaged(&self) -> bool {
        *self.emergency.lock().expect("emergency lock")
    }

    /// Create a bot (stopped, or started if `autostart`). Validates the config
    /// and the plugin's parameters; nothing is created on any error.
    pub async fn create(&self, config: BotConfig) -> Result<Arc<BotSnapshot>, ManagerError> {
        self.create_at_version(config, 1).await
    }

    /// Every problem with a new bot's config (schema, plugin, parameters,
    /// plugin init, feed), without creating anything.
    pub fn check_new(&self, config: &BotConfig) -> Vec<ConfigIssue> {
        let issues = config.check();
        if !issues.is_empty() {
            return issues;
        }
        let plugin = match self
            .registry
            .read()
            .expect("registry lock")
            .resolve(&config.strategy.plugin, config.strategy.version.as_deref())
        {
            Ok(plugin) => plugin,
            Err(err) => {
                return vec![ConfigIssue {
                    pointer: "/strategy/plugin".into(),
                    message: err.to_string(),
                }];
            }
        };
        match plugin.start_bot(config) {
            Ok(_) => Vec::new(),
            Err(err) => init_issues(err),
        }
    }

    /// Create a bot whose config history is at `version` (a bot restored
    /// from the store); [`BotManager::create`] starts at 1.
    pub async fn create_at_version(
        &self,
        config: BotConfig,
        version: u64,
    ) -> Result<Arc<BotSnapshot>, ManagerError> {
        if self.emergency_engaged() {
            return Err(ManagerError::EmergencyEngaged);
        }
        let autostart = config.autostart;
        let id = config.id.clone();
        self.install(config, version, None)?;
        self.bus
            .publish(Channel::Bots, "bot.created", Some(&id), json!({}));
        if autostart {
            return self.control(&id, CommandKind::Start).await;
        }
        self.get(&id).ok_or(ManagerError::NotFound(id))
    }

    /// Bring back a bot after a restart of the host: its config at
    /// `version`, its stored state (books, orders, risk, bot state) and
    /// history. `resume`: a bot that was running runs again. Autostart and
    /// the emergency stop do not apply: the stored state decides.
    pub fn restore(
        &self,
        config: BotConfig,
        version: u64,
        state: RunnerState,
        resume: bool,
    ) -> Result<(Arc<BotSnapshot>, Arc<BotJournal>), ManagerError> {
        let id = config.id.clone();
        let journal = self.install(config, version, Some((state, resume)))?;
        let snapshot = self.get(&id).ok_or(ManagerError::NotFound(id))?;
        Ok((snapshot, journal))
    }

    /// Check a config, start its plugin and its runner task, and register it.
    fn install(
        &self,
        config: BotConfig,
        version: u64,
        restored: Option<(RunnerState, bool)>,
    ) -> Result<Arc<BotJournal>, ManagerError> {
        let issues = config.check();
        if !issues.is_empty() {
            return Err(CommandError::Invalid(issues).into());
        }
        if self
            .bots
            .read()
            .expect("bots lock")
            .contains_key(&config.id)
        {
            return Err(ManagerError::Exists(config.id));
        }
        let invalid = |pointer: &str, message: String| {
            ManagerError::Command(CommandError::Invalid(vec![ConfigIssue {
                pointer: pointer.into(),
                message,
            }]))
        };
        let plugin = self
            .registry
            .read()
            .expect("registry lock")
            .resolve(&config.strategy.plugin, config.strategy.version.as_deref())
            .map_err(|err| invalid("/strategy/plugin", err.to_string()))?;
        let (instance, _warmup) = plugin
            .start_bot(&config)
            .map_err(|err| CommandError::Invalid(init_issues(err)))?;
        let feed = self
            .feeds
            .feed_for(&config)
            .map_err(|err| invalid("/market/feed", err.to_string()))?;
        let id = config.id.clone();
        let (runner, snapshot) = BotRunner::new(
            config,
            plugin,
            instance,
            feed,
            self.bus.clone(),
            self.registry.clone(),
        )
        .map_err(CommandError::Invalid)?;
        let mut runner = runner
            .with_latency(self.latency.clone())
            .with_config_version(version)
            .with_commit_log(self.commit_log.clone());
        if let Some((state, resume)) = restored {
            runner.restore(state, resume);
        }
        let journal = runner.journal();
        let (commands, requests) = mpsc::channel(COMMAND_QUEUE);
        let task = tokio::spawn(runner.run(requests));
        {
            let mut bots = self.bots.write().expect("bots lock");
            if bots.contains_key(&id) {
                task.abort();
                return Err(ManagerError::Exists(id));
            }
            bots.insert(
                id.clone(),
                BotHandle {
                    commands,
                    snapshot,
                    journal: journal.clone(),
                    task,
                },
            );
        }
        Ok(journal)
    }

    /// The latest snapshot of a bot.
    pub fn get(&self, id: &str) -> Option<Arc<BotSnapshot>> {
        let bots = self.bots.read().expect("bots lock");
        bots.get(id).map(|bot| bot.snapshot.borrow().clone())
    }

    /// A receiver that sees every snapshot the bot publishes.
    pub fn watch(&self, id: &str) -> Option<watch::Receiver<Arc<BotSnapshot>>> {
        let bots = self.bots.read().expect("bots lock");
        bots.get(id).map(|bot| bot.snapshot.clone())
    }

    /// A bot's history (orders, fills, trades, equity, violations).
    pub fn journal(&self, id: &str) -> Option<Arc<BotJournal>> {
        let bots = self.bots.read().expect("bots lock");
        bots.get(id).map(|bot| bot.journal.clone())
    }

    /// Whether any bot's config names this plugin.
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
        let bots = self.bots.read().expect("bots lock");
        bots.values()
            .map(|bot| bot.snapshot.borrow().clone())
            .collect()
    }

    async fn send(&self, id: &str, command: Command) -> Result<Arc<BotSnapshot>, ManagerError> {
        let sender = {
            let bots = self.bots.read().expect("bots lock");
            bots.get(id)
                .map(|bot| bot.commands.clone())
                .ok_or_else(|| ManagerError::NotFound(id.into()))?
        };
        let (reply, answer) = oneshot::channel();
        let exchange = async {
            sender
                .send(Request { command, reply })
                .await
                .map_err(|_| CommandError::Gone)?;
            answer.await.map_err(|_| CommandError::Gone)?
        };
        let outcome = tokio::time::timeout(COMMAND_TIMEOUT, exchange)
            .await
            .map_err(|_| CommandError::Timeout(COMMAND_TIMEOUT.as_secs()))?;
        Ok(outcome?)
    }

    /// A control command (start, stop, pause, ...).
    pub async fn control(
        &self,
        id: &str,
        kind: CommandKind,
    ) -> Result<Arc<BotSnapshot>, ManagerError> {
        self.control_with(id, kind, false).await
    }

    /// A control command; `flatten` makes a stop also sell the position.
    pub async fn control_with(
        &self,
        id: &str,
        kind: CommandKind,
        flatten: bool,
    ) -> Result<Arc<BotSnapshot>, ManagerError> {
        if kind == CommandKind::Start && self.emergency_engaged() {
            return Err(ManagerError::EmergencyEngaged);
        }
        if kind == CommandKind::Delete {
            return self.delete(id).await;
        }
        self.send(id, Command::Control { kind, flatten }).await
    }

    /// Validate and hot-swap a new config.
    pub async fn reconfigure(
        &self,
        id: &str,
        config: BotConfig,
    ) -> Result<Arc<BotSnapshot>, ManagerError> {
        self.send(id, Command::Reconfigure(Box::new(config))).await
    }

    /// An operator's order through the bot's risk engine.
    pub async fn place_order(
        &self,
        id: &str,
        request: OrderRequest,
    ) -> Result<Arc<BotSnapshot>, ManagerError> {
        self.send(id, Command::PlaceOrder(request)).await
    }

    /// Cancel one of the bot's open orders.
    pub async fn cancel_order(
        &self,
        id: &str,
        order_id: u64,
    ) -> Result<Arc<BotSnapshot>, ManagerError> {
        self.send(id, Command::CancelOrder(order_id)).await
    }

    /// Every check of [`BotManager::reconfigure`]; nothing changes.
    pub async fn validate_config(
        &self,
        id: &str,
        config: BotConfig,
    ) -> Result<Arc<BotSnapshot>, ManagerError> {
        self.send(id, Command::Validate(Box::new(config))).await
    }

    /// Delete a stopped (or failed) bot.
    pub async fn delete(&self, id: &str) -> Result<Arc<BotSnapshot>, ManagerError> {
        let snapshot = self
            .get(id)
            .ok_or_else(|| ManagerError::NotFound(id.into()))?;
        if !matches!(snapshot.state, BotState::Stopped | BotState::Error) {
            return Err(CommandError::not_allowed("delete", snapshot.state).into());
        }
        let last = self.send(id, Command::Shutdown).await?;
        let removed = self.bots.write().expect("bots lock").remove(id);
        if let Some(bot) = removed {
            let _ = bot.task.await;
        }
        self.bus
            .publish(Channel::Bots, "bot.deleted", Some(id), json!({}));
        Ok(last)
    }

    fn ids(&self) -> Vec<String> {
        self.bots
            .read()
            .expect("bots lock")
            .keys()
            .cloned()
            .collect()
    }

    /// Run one command on every bot; each bot's outcome.
    async fn all(
        &self,
        kind: CommandKind,
        flatten: bool,
    ) -> Vec<(String, Result<Arc<BotSnapshot>, ManagerError>)> {
        let mut outcomes = Vec::new();
        for id in self.ids() {
            let outcome = self.control_with(&id, kind, flatten).await;
            outcomes.push((id, outcome));
        }
        outcomes
    }

    pub async fn start_all(&self) -> Vec<(String, Result<Arc<BotSnapshot>, ManagerError>)> {
        self.all(CommandKind::Start, false).await
    }

    /// Graceful: cancel pending orders; positions stay.
    pub async fn stop_all(&self) -> Vec<(String, Result<Arc<BotSnapshot>, ManagerError>)> {
        self.all(CommandKind::Stop, false).await
    }

    /// Stop then start the bots that were running.
    pub async fn restart_all(&self) -> Vec<(String, Result<Arc<BotSnapshot>, ManagerError>)> {
        let running: Vec<String> = self
            .list()
            .iter()
            .filter(|s| matches!(s.state, BotState::Running | BotState::Paused))
            .map(|s| s.id.to_string())
            .collect();
        let mut outcomes = Vec::new();
        for id in running {
            let outcome = match self.control(&id, CommandKind::Stop).await {
                Ok(_) => self.control(&id, CommandKind::Start).await,
                Err(err) => Err(err),
            };
            outcomes.push((id, outcome));
        }
        outcomes
    }

    /// Kill-switch on every bot at once; start and create are refused until
    /// [`BotManager::emergency_reset`].
    pub async fn emergency_stop_all(
        &self,
    ) -> Vec<(String, Result<Arc<BotSnapshot>, ManagerError>)> {
        *self.emergency.lock().expect("emergency lock") = true;
        self.bus
            .publish(Channel::System, "emergency.engaged", None, json!({}));
        let mut outcomes = Vec::new();
        for id in self.ids() {
            let state = self.get(&id).map(|s| s.state);
            let outcome = match state {
                // A stopped or failed bot trades nothing; it cannot start
                // while the emergency holds.
                Some(BotState::Stopped | BotState::Error) => {
                    self.get(&id).ok_or(ManagerError::NotFound(id.clone()))
                }
                _ => self.control(&id, CommandKind::Kill).await,
            };
            outcomes.push((id, outcome));
        }
        outcomes
    }

    pub fn emergency_reset(&self) {
        *self.emergency.lock().expect("emergency lock") = false;
        self.bus
            .publish(Channel::System, "emergency.reset", None, json!({}));
    }
}
