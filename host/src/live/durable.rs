//! What a runner commits before it publishes or answers: [`CommitLog`] is
//! the door to the durable store, [`RecordBatch`] one step's records (a
//! candle's, a command's, a bot's creation or deletion), and
//! [`RunnerState`] what a restart needs to carry a bot on.
//!
//! A batch is committed in one transaction: the records, the config version
//! it introduces and the runner's checkpoint, so a restart after a crash at
//! any instant finds a config and a checkpoint of the same version.
//!
//! The live runtime does not know the store; whoever wires the host (the
//! `persist` module) implements the trait. Without one (tests, `stratbox
//! live`) runners keep everything in memory.

use std::future::Future;
use std::pin::Pin;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::{Fill, Order};
use crate::engine::{EngineCheckpoint, StateChange, Trade, Violation};

use super::event::ConfigRecord;
use super::state::BotState;

/// Equity at a candle's close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EquitySample {
    /// The candle's close time.
    pub ts: i64,
    pub equity: Decimal,
    /// Whether a position was held.
    pub exposed: bool,
}

/// A kill-switch engagement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillSwitchRecord {
    /// Engine time.
    pub ts: i64,
    pub reason: String,
}

/// What a batch does to the bot's existence.
#[derive(Debug, Clone, Default)]
pub enum Lifecycle {
    /// The bot goes on.
    #[default]
    Continues,
    /// The bot is gone: its config history, state and records are removed
    /// (the audit log keeps its trace).
    Deleted,
}

/// A bot's records of one step, committed together.
#[derive(Debug, Clone, Default)]
pub struct RecordBatch {
    pub bot_id: String,
    /// New orders and new states of known ones.
    pub orders: Vec<Order>,
    pub fills: Vec<Fill>,
    pub trades: Vec<Trade>,
    pub equity: Vec<EquitySample>,
    pub violations: Vec<Violation>,
    pub state_changes: Vec<StateChange>,
    pub kill_switches: Vec<KillSwitchRecord>,
    /// A config version this step introduces (creation, a change).
    pub config: Option<ConfigRecord>,
    pub lifecycle: Lifecycle,
    /// The runner's state after the step.
    pub state: RunnerState,
    /// A quiet candle's bookkeeping only (equity readings and the
    /// checkpoint: no order, fill or event), which the store may hold back
    /// a few milliseconds while other bots' decisions are being made.
    pub quiet: bool,
}

/// What survives a restart of the host: the bot's state and its engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunnerState {
    pub state: BotState,
    pub error: Option<String>,
    pub started_at: Option<i64>,
    pub last_candle_ts: Option<i64>,
    pub candles_processed: u64,
    pub config_version: u64,
    pub engine: Option<EngineCheckpoint>,
}

impl Default for RunnerState {
    fn default() -> Self {
        Self {
            state: BotState::Stopped,
            error: None,
            started_at: None,
            last_candle_ts: None,
            candles_processed: 0,
            config_version: 1,
            engine: None,
        }
    }
}

/// A host-wide fact that must be durable before it is acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRecord {
    /// The emergency stop was engaged (`engaged`) or released, by whom.
    Emergency { engaged: bool, by: String, at: i64 },
}

pub type CommitFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Commits records durably; each future resolves once they are committed.
pub trait CommitLog: Send + Sync + 'static {
    fn commit(&self, batch: RecordBatch) -> CommitFuture<'_>;

    fn commit_host(&self, record: HostRecord) -> CommitFuture<'_>;
}
