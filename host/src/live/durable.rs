//! What a runner commits before it publishes: [`CommitLog`] is the door to
//! the durable store, [`RecordBatch`] one candle's or one command's records,
//! and [`RunnerState`] what a restart needs to carry a bot on.
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

use super::state::BotState;

/// A bot's records of one step, committed together.
#[derive(Debug, Clone, Default)]
pub struct RecordBatch {
    pub bot_id: String,
    /// New orders and new states of known ones.
    pub orders: Vec<Order>,
    pub fills: Vec<Fill>,
    pub trades: Vec<Trade>,
    /// Equity at a candle's close: (close time, equity, position held).
    pub equity: Option<(i64, Decimal, bool)>,
    pub violations: Vec<Violation>,
    pub state_changes: Vec<StateChange>,
    /// Kill-switch engagements: (engine time, reason).
    pub kill_switches: Vec<(i64, String)>,
    /// The runner's state after the step.
    pub state: RunnerState,
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

pub type CommitFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Commits a batch durably; resolves once it is committed.
pub trait CommitLog: Send + Sync + 'static {
    fn commit(&self, batch: RecordBatch) -> CommitFuture<'_>;
}
