//! How callers talk to a bot's runner: a [`Command`] goes in with a
//! deadline, its answer comes back in the command's own type (a
//! [`CommandReply`]: what the runner did; an [`OrderReply`]: the order) or
//! as a [`CommandError`].
//!
//! A request and its caller agree on who owns it through a [`Claim`]: the
//! runner takes it before acting, the caller abandons it when its deadline
//! passes (or it goes away). Exactly one of them wins, so a runner never
//! applies a request whose caller was already told it timed out, and a
//! caller that was told nothing happened can trust it.
//!
//! [`Urgent`] is the lane that overtakes the queue: a kill (or the
//! emergency stop) interrupts a running strategy call and is handled
//! before any queued request.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, oneshot};

use crate::domain::Order;
use crate::domain::OrderRequest;
use crate::domain::config::{ConfigIssue, join_issues};
use crate::engine::Rejection;
use crate::plugin::Interrupt;

use super::snapshot::BotSnapshot;
use super::state::{BotState, CommandKind};

/// Where a command's answer goes: each command answers in its own type.
pub(crate) type Answer<T> = oneshot::Sender<Result<T, CommandError>>;

/// What a caller asks of a bot, and where the runner answers.
#[derive(Debug)]
pub(crate) enum Command {
    Control {
        kind: CommandKind,
        /// For stop: also sell the position.
        flatten: bool,
        answer: Answer<CommandReply>,
    },
    /// Validate and hot-swap a new config (or only validate it).
    Reconfigure {
        change: Box<ConfigChange>,
        answer: Answer<CommandReply>,
    },
    /// An operator's order, checked by the risk engine like a strategy's:
    /// the order as placed, or the refusal.
    PlaceOrder {
        request: OrderRequest,
        answer: Answer<OrderReply>,
    },
    /// Cancel one open order by id: the order as cancelled.
    CancelOrder { id: u64, answer: Answer<OrderReply> },
    /// Remove the bot (stopped or failed bots only): its runner commits the
    /// removal and ends.
    Delete { answer: Answer<CommandReply> },
}

/// A new config for a bot.
#[derive(Debug, Clone)]
pub struct ConfigChange {
    /// The config as sent (JSON or YAML, read into a value): the runner
    /// checks it whole, its shape, the bot schema and the rules, on this
    /// document itself, then the change against the config in force.
    pub document: serde_json::Value,
    /// Apply only if the version in force is one of these (`If-Match`);
    /// the runner compares them with its own.
    pub expected_versions: Option<Vec<u64>>,
    /// Who asks: kept with the version.
    pub actor: String,
    /// Run every check, the new instance's init and its warm-up; change
    /// nothing.
    pub dry_run: bool,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A control command moved the bot, or acted on it (close-all,
    /// cancel-pending).
    Applied,
    /// Nothing to do in this state (start on a running bot).
    NoOp,
    ConfigApplied {
        version: u64,
    },
    ConfigValid,
    Deleted,
}

/// A runner's answer: what it did, and the bot as it is afterwards.
#[derive(Debug, Clone)]
pub struct CommandReply {
    pub outcome: Outcome,
    pub snapshot: Arc<BotSnapshot>,
}

/// A runner's answer to an order command: the order in its state after
/// placement (market orders are filled) or cancellation, and the bot as it
/// is afterwards.
#[derive(Debug, Clone)]
pub struct OrderReply {
    pub order: Order,
    pub snapshot: Arc<BotSnapshot>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CommandError {
    #[error("`{command}` is not allowed while the bot is {}", state.phrase())]
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
    #[error(
        "If-Match {} does not match the config in force (\"v{current}\")",
        version_tags(.expected)
    )]
    VersionMismatch { expected: Vec<u64>, current: u64 },
    #[error("the order was refused: {}: {}", .0.check, .0.message)]
    OrderRefused(Rejection),
    /// The strategy failed while the command ran: the bot is in error. With
    /// an `order`, the order filled first and its fill stands.
    #[error("the strategy failed (the bot is in error): {message}")]
    StrategyFailed {
        message: String,
        order: Option<Box<Order>>,
    },
    #[error("no open order {0}")]
    NoSuchOrder(u64),
    #[error("the emergency stop is engaged; release it before starting or creating bots")]
    EmergencyEngaged,
    /// The store refused the commit: nothing changed.
    #[error("the change was not stored, so it was not made: {0}")]
    NotStored(String),
    /// A kill arrived while the command ran (a long warm-up): nothing changed.
    #[error("interrupted by a kill; nothing changed")]
    Interrupted,
    #[error("the bot is gone")]
    Gone,
    /// The runner did not take the request in time; it will never apply it.
    #[error("the bot did not take the command within {0} s; it was not applied")]
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

const WAITING: u8 = 0;
const TAKEN: u8 = 1;
const ABANDONED: u8 = 2;

/// Who owns a request: the runner (taken) or nobody any more (abandoned).
#[derive(Debug, Clone, Default)]
pub(crate) struct Claim(Arc<AtomicU8>);

impl Claim {
    /// The runner takes the request; false when the caller gave up first.
    pub(crate) fn take(&self) -> bool {
        self.0
            .compare_exchange(WAITING, TAKEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The caller gives up; false when the runner took it first (the caller
    /// must then wait for the answer).
    pub(crate) fn abandon(&self) -> bool {
        self.0
            .compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn abandoned(&self) -> bool {
        self.0.load(Ordering::Acquire) == ABANDONED
    }
}

/// Abandons its claim when dropped: a caller that goes away before the
/// runner took its request (a client that hung up, a deadline that passed)
/// leaves nothing behind, not even the interrupt a kill raised to stop the
/// strategy call in flight (left raised, it would stop every later call).
pub(crate) struct AbandonOnDrop {
    claim: Claim,
    /// The bot's urgent lane, when the request raised its interrupt.
    interrupted: Option<Arc<Urgent>>,
}

impl AbandonOnDrop {
    pub(crate) fn new(claim: Claim) -> Self {
        Self {
            claim,
            interrupted: None,
        }
    }

    /// For a kill: raise the bot's interrupt now, so that a strategy call
    /// in flight stops and the runner takes the kill next.
    pub(crate) fn interrupting(claim: Claim, urgent: Arc<Urgent>) -> Self {
        urgent.interrupt.request();
        Self {
            claim,
            interrupted: Some(urgent),
        }
    }
}

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.claim.abandon();
        if self.claim.abandoned()
            && let Some(urgent) = &self.interrupted
        {
            urgent.withdraw_interrupt();
        }
    }
}

pub(crate) struct Request {
    pub command: Command,
    /// Taken by the runner before it acts, or abandoned by the caller
    /// (whose deadline passed): never both.
    pub claim: Claim,
}

/// The lane that overtakes a bot's queue, shared by the manager and the
/// runner.
#[derive(Debug, Default)]
pub(crate) struct Urgent {
    /// A kill the runner must make before anything else, with its reason.
    kill: Mutex<Option<String>>,
    /// Wakes the runner for `kill`.
    pub(crate) wake: Notify,
    /// Stops a running strategy call (see [`Interrupt`]).
    pub(crate) interrupt: Interrupt,
    /// A request is waiting: a runner working through a backlog of candles
    /// stops after the current one to answer it.
    attention: AtomicBool,
}

/// Versions as the ETags that name them (`"v3", "v4"`).
fn version_tags(versions: &[u64]) -> String {
    if versions.is_empty() {
        return "(no config version tag)".into();
    }
    let tags: Vec<String> = versions.iter().map(|v| format!("\"v{v}\"")).collect();
    tags.join(", ")
}

impl Urgent {
    /// Kill the bot as soon as possible (the emergency stop): a strategy
    /// call in flight stops.
    pub(crate) fn request_kill(&self, reason: &str) {
        self.request_kill_between_calls(reason);
        self.interrupt.request();
    }

    /// Kill the bot once its runner is free, without stopping a strategy
    /// call (for a bot that is not running: a call it makes then, hearing
    /// of a manual order's fill, say, must not fail for a kill that will
    /// not apply to it; one whose start is being committed is killed right
    /// after).
    pub(crate) fn request_kill_between_calls(&self, reason: &str) {
        *self.kill.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason.to_string());
        self.attention.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// The kill requested, if any (taking it).
    pub(crate) fn take_kill(&self) -> Option<String> {
        self.kill
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Lower the interrupt a request raised and no longer needs, unless
    /// an urgent kill still wants it (raised again if one came meanwhile).
    fn withdraw_interrupt(&self) {
        self.interrupt.clear();
        if self.kill_pending() {
            self.interrupt.request();
        }
    }

    pub(crate) fn kill_pending(&self) -> bool {
        self.kill
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// A request is on its way.
    pub(crate) fn call_attention(&self) {
        self.attention.store(true, Ordering::Release);
    }

    /// Whether something waits; clears the flag.
    pub(crate) fn take_attention(&self) -> bool {
        self.attention.swap(false, Ordering::AcqRel)
    }

    /// Whether something waits (read by the strategy thread between candles).
    pub(crate) fn needs_attention(&self) -> bool {
        self.attention.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_side_wins_a_claim() {
        let claim = Claim::default();
        assert!(claim.take());
        assert!(!claim.abandon(), "taken: the caller must wait");
        let claim = Claim::default();
        assert!(claim.abandon());
        assert!(!claim.take(), "abandoned: the runner must not apply it");
        let claim = Claim::default();
        drop(AbandonOnDrop::new(claim.clone()));
        assert!(!claim.take(), "a caller that went away abandoned it");
    }

    #[test]
    fn a_kill_nobody_takes_lowers_its_interrupt_but_never_the_emergency_one() {
        let urgent = Arc::new(Urgent::default());
        let claim = Claim::default();
        let kill = AbandonOnDrop::interrupting(claim.clone(), urgent.clone());
        assert!(urgent.interrupt.is_requested(), "a call in flight stops");
        drop(kill);
        assert!(!claim.take());
        assert!(
            !urgent.interrupt.is_requested(),
            "the caller went away first: later calls run"
        );
        // Taken by the runner: the runner lowers it when it kills.
        let claim = Claim::default();
        let kill = AbandonOnDrop::interrupting(claim.clone(), urgent.clone());
        assert!(claim.take());
        drop(kill);
        assert!(urgent.interrupt.is_requested());
        urgent.interrupt.clear();
        // An emergency kill waits: its interrupt stays.
        let claim = Claim::default();
        let kill = AbandonOnDrop::interrupting(claim.clone(), urgent.clone());
        urgent.request_kill("emergency stop");
        assert!(claim.abandon());
        drop(kill);
        assert!(urgent.interrupt.is_requested());
    }

    #[test]
    fn the_urgent_lane_interrupts_and_is_taken_once() {
        let urgent = Urgent::default();
        urgent.request_kill("emergency stop");
        assert!(urgent.interrupt.is_requested());
        assert!(urgent.needs_attention());
        assert_eq!(urgent.take_kill().as_deref(), Some("emergency stop"));
        assert_eq!(urgent.take_kill(), None);
    }
}
