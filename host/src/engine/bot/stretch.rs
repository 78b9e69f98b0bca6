//! Candles in a row, decided in stretches: what makes a backtest of a
//! sandboxed strategy fast.
//!
//! A call into a plugin costs more than the engine's work on a candle. Most
//! candles are quiet: no order is open, so nothing fills, and the risk rules
//! only take the new equity. Between quiet candles nothing the strategy is
//! shown depends on its own decisions, unless it decides to act. So the
//! engine steps ahead over a stretch of quiet candles, keeping a checkpoint,
//! and lets the strategy decide the stretch in one call (`on-stretch`): it
//! takes the candles one at a time from the host, so it decides on each
//! before it sees the next (no look-ahead, as with one call per candle),
//! and stops at the first candle it acts on. If it
//! stopped before the end, or the stretch ended at a candle that was not
//! quiet, the engine goes back to the checkpoint and steps again up to the
//! candle decided last, then carries out its actions. The outcome is exactly
//! that of one call per candle (a test compares them); only the number of
//! calls differs.
//!
//! The length of a stretch adapts: it doubles while the strategy takes
//! whole stretches, and becomes the number of candles it took when it stops
//! short (at an action), so a strategy that acts often wastes few steps.

use rust_decimal::Decimal;

use super::{BotEngine, Decider, EngineError};
use crate::domain::Candle;
use crate::domain::decimal::to_f64;
use crate::engine::risk::RiskOutcome;
use crate::plugin::contract;

/// Longest stretch decided in one call.
const MAX_STRETCH: usize = 256;
/// The first stretch's length.
const FIRST_STRETCH: usize = 16;

/// The state of the bot at a candle's close, after the strategy's
/// decisions on it: what a backtest records per candle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandleClose {
    /// Engine time: the candle's close time.
    pub ts: i64,
    pub equity: Decimal,
    /// Whether the bot held a position.
    pub in_position: bool,
}

/// A call of [`BotEngine::on_candles`] that failed, and at which of the
/// candles it was given (counted from 1).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct StretchError {
    pub candle: usize,
    #[source]
    pub error: EngineError,
}

/// The engine's buffers and the length of the next stretch.
#[derive(Debug)]
pub(super) struct Stretches {
    /// The stretch as the plugin sees it.
    decisions: contract::Stretch,
    /// Engine time and equity at each candle's close.
    closes: Vec<(i64, Decimal)>,
    /// Candles the next stretch may hold.
    length: usize,
}

impl Default for Stretches {
    fn default() -> Self {
        Self {
            decisions: contract::Stretch::default(),
            closes: Vec::new(),
            length: FIRST_STRETCH,
        }
    }
}

impl<D: Decider> BotEngine<D> {
    /// Some of `candles` (at least one, unless there are none), each as
    /// [`BotEngine::on_candle`] would take it, telling `closed` the bot's
    /// state after each. Returns how many were taken. A simulation's loop:
    /// a routed (live) engine takes one candle at a time.
    pub fn on_candles(
        &mut self,
        candles: &[Candle],
        closed: &mut impl FnMut(CandleClose),
    ) -> Result<usize, StretchError> {
        let Some(first) = candles.first() else {
            return Ok(0);
        };
        let length = candles.len().min(self.stretch.length);
        if length < 2 || !self.is_quiet() {
            self.stretch.length = self.stretch.length.max(2);
            return self.one_candle(first, closed);
        }
        let start = self.checkpoint();
        self.stretch.decisions.bot = self.bot_view().bot;
        let stepped_past = self.step_quietly(&candles[..length]);
        if self.stretch.decisions.is_empty() {
            self.rewind(start);
            return self.one_candle(first, closed);
        }
        let decisions = std::mem::take(&mut self.stretch.decisions);
        let answer = self.plugin.on_candles(&decisions);
        let stretch_len = decisions.len();
        self.stretch.decisions = decisions;
        let (decided, actions) = match answer {
            // (A plugin's answer is checked to be in range; a native
            // decider's is trusted only as far as the slices go.)
            Ok((decided, actions)) => (decided.clamp(1, stretch_len), actions),
            Err(failure) => {
                self.rewind(start);
                return Err(StretchError {
                    candle: failure.candle.clamp(1, stretch_len),
                    error: failure.error.into(),
                });
            }
        };
        if decided < stretch_len || stepped_past {
            self.rewind(start);
            // Stepping is deterministic: the same candles are quiet again.
            self.step_quietly(&candles[..decided]);
        }
        let in_position = !self.portfolio.position().is_zero();
        for &(ts, equity) in &self.stretch.closes[..decided - 1] {
            closed(CandleClose {
                ts,
                equity,
                in_position,
            });
        }
        self.apply(actions).map_err(|error| StretchError {
            candle: decided,
            error,
        })?;
        self.risk.on_candle_closed();
        closed(self.candle_close());
        // Shorter after a stretch the strategy cut short (by acting, or by
        // returning early); longer after one it took whole.
        self.stretch.length = if decided < stretch_len {
            decided
        } else {
            (self.stretch.length * 2).min(MAX_STRETCH)
        };
        Ok(decided)
    }

    /// The bot's state now, as of the last candle's close.
    pub fn candle_close(&self) -> CandleClose {
        CandleClose {
            ts: self.now,
            equity: self.portfolio.equity(),
            in_position: !self.portfolio.position().is_zero(),
        }
    }

    fn one_candle(
        &mut self,
        candle: &Candle,
        closed: &mut impl FnMut(CandleClose),
    ) -> Result<usize, StretchError> {
        self.on_candle(candle)
            .map_err(|error| StretchError { candle: 1, error })?;
        closed(self.candle_close());
        Ok(1)
    }

    /// Whether nothing but the strategy's own decisions can happen at the
    /// next candles: no order open or pending, nothing reported by an
    /// exchange, no kill-switch, and a strategy that saves by deciding
    /// stretches.
    fn is_quiet(&self) -> bool {
        self.routing.is_none()
            && self.venue.open_orders().is_empty()
            && self.venue_events.is_empty()
            && self.risk_events.is_empty()
            && self.risk.kill_switch().is_none()
            && self.plugin.decides_stretches()
    }

    /// Close `candles` in turn while they stay quiet (no risk event),
    /// recording each one's candle, equity and close time; without the
    /// strategy's decisions, so each candle's last step (the risk's
    /// end-of-candle count) waits for the next candle or the caller.
    /// Whether it stepped past the recorded candles (into one that was not
    /// quiet: the state is then not theirs).
    fn step_quietly(&mut self, candles: &[Candle]) -> bool {
        self.stretch.decisions.candles.clear();
        self.stretch.closes.clear();
        for candle in candles {
            if !self.stretch.closes.is_empty() {
                self.risk.on_candle_closed();
            }
            let (equity, outcome) = self.close_candle(candle);
            if matches!(outcome, RiskOutcome::Kill(_)) || !self.risk_events.is_empty() {
                return true;
            }
            self.plugin_candle.set_prices(candle);
            self.stretch
                .decisions
                .candles
                .push((self.plugin_candle, to_f64(equity)));
            self.stretch.closes.push((self.now, equity));
        }
        false
    }

    /// Back to the state of `start`, with nothing of the steps since.
    fn rewind(&mut self, start: super::EngineCheckpoint) {
        self.restore(start);
        self.risk_events.clear();
    }
}
