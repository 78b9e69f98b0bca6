//! The risk engine: pre-trade checks on every order, rules evaluated after
//! fills and on each candle, the trading state and the kill-switch.
//!
//! It reads time only from the engine clock it is given (candle time in a
//! backtest), so its decisions are deterministic. It keeps only current
//! readings (each rule's limit, latest observed value and status, the
//! trading state): every state change and violation (on the transition into
//! breach, not once per candle) goes out as a [`RiskEvent`] into the output
//! the caller passes, as the venue's fills do, and the engine turns them into
//! records. So a checkpoint of a bot that has run for months is as small as
//! one of a bot that just started.
//!
//! Breaches latch: a rule that moved the bot to REDUCING or HALTED keeps it
//! there until an explicit reset, except the daily-loss rule, which clears at
//! the next UTC day. The kill-switch also stays engaged until reset.

use std::collections::VecDeque;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::config::{RiskAction, RiskConfig};
use crate::domain::{OrderOrigin, OrderRequest, Side};

use super::portfolio::Trade;

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TradingState {
    /// All orders.
    #[default]
    Active,
    /// Only orders that shrink the position.
    Reducing,
    /// Nothing new; cancels still pass.
    Halted,
}

impl From<RiskAction> for TradingState {
    fn from(action: RiskAction) -> Self {
        match action {
            RiskAction::Reduce => TradingState::Reducing,
            RiskAction::Halt | RiskAction::Kill => TradingState::Halted,
        }
    }
}

/// Rules evaluated after fills and candles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    MaxDrawdown,
    DailyLoss,
    MaxConsecutiveLosses,
}

impl Rule {
    /// What the rule's limit and reading count: `percent` of equity, or a
    /// `count` (of losing trades).
    pub fn unit(self) -> &'static str {
        match self {
            Rule::MaxDrawdown | Rule::DailyLoss => "percent",
            Rule::MaxConsecutiveLosses => "count",
        }
    }
}

/// A refused order: the check, and the numbers behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub check: &'static str,
    pub message: String,
}

/// A rule breach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub ts: i64,
    pub rule: Rule,
    pub limit: Decimal,
    pub observed: Decimal,
    pub action: RiskAction,
}

/// A change of trading state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    pub ts: i64,
    pub from: TradingState,
    pub to: TradingState,
    pub reason: String,
}

/// Something the risk engine did: the records it leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RiskEvent {
    Violation(Violation),
    StateChanged(StateChange),
}

/// What the risk engine asks the engine to do after evaluating its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RiskOutcome {
    Nothing,
    /// Engage the kill-switch with this reason.
    Kill(String),
}

/// A rule's current reading, for the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleStatus {
    pub rule: Rule,
    pub limit: Decimal,
    pub observed: Decimal,
    pub breached: bool,
    pub action: RiskAction,
}

/// What the engine knows when an order is checked.
#[derive(Debug, Clone, Copy)]
pub struct OrderContext {
    /// When the order is asked for: engine time for the strategy's orders,
    /// wall time for an operator's in a running bot.
    pub ts: i64,
    /// Price used to value the order (its limit/stop price, else the last close).
    pub price: Decimal,
    pub position: Decimal,
    pub cash: Decimal,
    /// Value of the buy orders already resting or pending (quote).
    pub committed_buys: Decimal,
    pub open_orders: usize,
    pub taker_fee_bps: Decimal,
}

/// Serialisable so that a bot's risk state (peaks, streaks, latched
/// breaches, the kill-switch) survives a restart. The rules are the
/// config's, not readings: a checkpoint leaves them out, and a restored
/// engine keeps the ones it was built with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RiskEngine {
    #[serde(skip)]
    config: RiskConfig,
    state: TradingState,
    kill_switch: Option<String>,
    peak_equity: Decimal,
    day: i64,
    day_start_equity: Decimal,
    consecutive_losses: u32,
    cooldown_left: u32,
    /// Engine times of recently accepted strategy orders (last second).
    recent_orders: VecDeque<i64>,
    /// Wall times of recently accepted operator orders (last second): an
    /// operator's orders between two candles are seconds apart, not all
    /// at the candle's time.
    #[serde(default)]
    recent_manual_orders: VecDeque<i64>,
    drawdown_breached: bool,
    daily_breached: bool,
    losses_breached: bool,
    last_equity: Decimal,
}

impl RiskEngine {
    pub fn new(config: RiskConfig, initial_equity: Decimal) -> Self {
        Self {
            config,
            state: TradingState::Active,
            kill_switch: None,
            peak_equity: initial_equity,
            day: i64::MIN,
            day_start_equity: initial_equity,
            consecutive_losses: 0,
            cooldown_left: 0,
            recent_orders: VecDeque::new(),
            recent_manual_orders: VecDeque::new(),
            drawdown_breached: false,
            daily_breached: false,
            losses_breached: false,
            last_equity: initial_equity,
        }
    }

    pub fn state(&self) -> TradingState {
        self.state
    }

    pub fn kill_switch(&self) -> Option<&str> {
        self.kill_switch.as_deref()
    }

    /// The limits in force.
    pub fn config(&self) -> &RiskConfig {
        &self.config
    }

    /// Apply new limits at once (hot swap); breaches and state are kept.
    pub fn set_config(&mut self, config: RiskConfig) {
        self.config = config;
    }

    fn change_state(
        &mut self,
        ts: i64,
        to: TradingState,
        reason: String,
        out: &mut Vec<RiskEvent>,
    ) {
        if self.state != to {
            out.push(RiskEvent::StateChanged(StateChange {
                ts,
                from: self.state,
                to,
                reason,
            }));
            self.state = to;
        }
    }

    /// Move to at least `to` (never back towards ACTIVE).
    fn escalate(&mut self, ts: i64, to: TradingState, reason: String, out: &mut Vec<RiskEvent>) {
        if to > self.state {
            self.change_state(ts, to, reason, out);
        }
    }

    /// Engage the kill-switch: HALTED until reset. The engine cancels and
    /// flattens.
    pub fn engage_kill_switch(&mut self, ts: i64, reason: &str, out: &mut Vec<RiskEvent>) {
        if self.kill_switch.is_none() {
            self.kill_switch = Some(reason.to_string());
        }
        self.escalate(
            ts,
            TradingState::Halted,
            format!("kill-switch: {reason}"),
            out,
        );
    }

    /// Clear the kill-switch and every latched breach: back to ACTIVE.
    pub fn reset(&mut self, ts: i64, equity: Decimal, out: &mut Vec<RiskEvent>) {
        self.kill_switch = None;
        self.drawdown_breached = false;
        self.daily_breached = false;
        self.losses_breached = false;
        self.consecutive_losses = 0;
        self.cooldown_left = 0;
        self.peak_equity = equity;
        self.day_start_equity = equity;
        self.last_equity = equity;
        self.change_state(ts, TradingState::Active, "reset".into(), out);
    }

    /// The trading state the latched breaches and the kill-switch still impose.
    fn latched_state(&self) -> TradingState {
        if self.kill_switch.is_some() {
            return TradingState::Halted;
        }
        let action = |breached: bool, action: Option<RiskAction>| {
            action
                .filter(|_| breached)
                .map_or(TradingState::Active, TradingState::from)
        };
        let drawdown = action(
            self.drawdown_breached,
            self.config.max_drawdown.map(|r| r.action),
        );
        let losses = action(
            self.losses_breached,
            self.config.max_consecutive_losses.map(|r| r.action),
        );
        let daily = action(
            self.daily_breached,
            self.config.daily_loss.map(|r| r.action),
        );
        drawdown.max(losses).max(daily)
    }

    /// Pre-trade checks. Accepting counts towards the orders-per-second limit.
    pub fn check_order(&mut self, order: &OrderRequest, ctx: &OrderContext) -> Result<(), Refusal> {
        let refuse = |check, message: String| Err(Refusal { check, message });
        let reduces = order.side == Side::Sell && order.quantity <= ctx.position;
        match self.state {
            TradingState::Halted => {
                let why = match &self.kill_switch {
                    Some(reason) => format!("trading is halted by the kill-switch ({reason})"),
                    None => "trading is halted by a risk rule".to_string(),
                };
                return refuse("trading_state", why);
            }
            TradingState::Reducing if !reduces => {
                return refuse(
                    "trading_state",
                    "only orders that reduce the position are allowed (REDUCING)".into(),
                );
            }
            _ => {}
        }
        if order.side == Side::Sell && order.quantity > ctx.position {
            return refuse(
                "position",
                format!(
                    "cannot sell {} with a position of {} (spot, no short selling)",
                    order.quantity, ctx.position
                ),
            );
        }
        let notional = order.quantity * ctx.price;
        if order.side == Side::Buy {
            if self.cooldown_left > 0 {
                return refuse(
                    "cooldown_after_loss",
                    format!(
                        "{} more candle(s) of cooldown after a losing trade",
                        self.cooldown_left
                    ),
                );
            }
            if let Some(limit) = self.config.max_position_notional {
                let after = (ctx.position + order.quantity) * ctx.price;
                if after > limit {
                    return refuse(
                        "max_position_notional",
                        format!("position value would be {after}, above the limit {limit}"),
                    );
                }
            }
            let cost = notional * (Decimal::ONE + ctx.taker_fee_bps / Decimal::from(10_000));
            let free = ctx.cash - ctx.committed_buys;
            if cost > free {
                return refuse(
                    "free_cash",
                    format!("order needs {cost} (fee included) but only {free} is free"),
                );
            }
        }
        if let Some(limit) = self.config.max_order_notional
            && notional > limit
        {
            return refuse(
                "max_order_notional",
                format!("order value {notional} is above the limit {limit}"),
            );
        }
        let open_limit = self.config.max_open_orders as usize;
        if ctx.open_orders >= open_limit {
            return refuse(
                "max_open_orders",
                format!(
                    "{} orders are open, the limit is {open_limit}",
                    ctx.open_orders
                ),
            );
        }
        let recent = if order.origin == OrderOrigin::Manual {
            &mut self.recent_manual_orders
        } else {
            &mut self.recent_orders
        };
        while recent.front().is_some_and(|&t| t <= ctx.ts - 1000) {
            recent.pop_front();
        }
        let rate_limit = self.config.max_orders_per_second as usize;
        if recent.len() >= rate_limit {
            return refuse(
                "max_orders_per_second",
                format!(
                    "{} orders in the last second, the limit is {rate_limit}",
                    recent.len()
                ),
            );
        }
        recent.push_back(ctx.ts);
        Ok(())
    }

    /// A round trip closed: count losses, start the cooldown.
    pub fn on_trade(&mut self, trade: &Trade, ts: i64, out: &mut Vec<RiskEvent>) -> RiskOutcome {
        if trade.pnl.is_sign_negative() && !trade.pnl.is_zero() {
            self.consecutive_losses += 1;
            self.cooldown_left = self.config.cooldown_after_loss;
        } else {
            self.consecutive_losses = 0;
        }
        let Some(rule) = self.config.max_consecutive_losses else {
            return RiskOutcome::Nothing;
        };
        if self.consecutive_losses >= rule.limit && !self.losses_breached {
            self.losses_breached = true;
            return self.breach(
                ts,
                Rule::MaxConsecutiveLosses,
                Decimal::from(rule.limit),
                Decimal::from(self.consecutive_losses),
                rule.action,
                out,
            );
        }
        RiskOutcome::Nothing
    }

    /// Evaluate the equity rules at the engine time `ts` (after a candle's
    /// fills and mark-to-market).
    pub fn on_equity(&mut self, ts: i64, equity: Decimal, out: &mut Vec<RiskEvent>) -> RiskOutcome {
        self.last_equity = equity;
        let day = ts.div_euclid(DAY_MS);
        if day != self.day {
            self.day = day;
            self.day_start_equity = equity;
            if self.daily_breached {
                self.daily_breached = false;
                let held = self.latched_state();
                if held < self.state {
                    let reason = "new UTC day: daily loss limit cleared".into();
                    self.change_state(ts, held, reason, out);
                }
            }
        }
        if equity > self.peak_equity {
            self.peak_equity = equity;
        }
        let mut outcome = RiskOutcome::Nothing;
        if let Some(rule) = self.config.max_drawdown
            && !self.drawdown_breached
            && equity * Decimal::ONE_HUNDRED
                < self.peak_equity * (Decimal::ONE_HUNDRED - rule.limit_pct)
        {
            self.drawdown_breached = true;
            let observed = self.drawdown_pct();
            outcome = self.breach(
                ts,
                Rule::MaxDrawdown,
                rule.limit_pct,
                observed,
                rule.action,
                out,
            );
        }
        if let Some(rule) = self.config.daily_loss
            && !self.daily_breached
            && equity * Decimal::ONE_HUNDRED
                < self.day_start_equity * (Decimal::ONE_HUNDRED - rule.limit_pct)
        {
            self.daily_breached = true;
            let observed = self.daily_loss_pct();
            let daily = self.breach(
                ts,
                Rule::DailyLoss,
                rule.limit_pct,
                observed,
                rule.action,
                out,
            );
            if daily != RiskOutcome::Nothing {
                outcome = daily;
            }
        }
        outcome
    }

    /// One candle passed: count down the cooldown.
    pub fn on_candle_closed(&mut self) {
        self.cooldown_left = self.cooldown_left.saturating_sub(1);
    }

    fn breach(
        &mut self,
        ts: i64,
        rule: Rule,
        limit: Decimal,
        observed: Decimal,
        action: RiskAction,
        out: &mut Vec<RiskEvent>,
    ) -> RiskOutcome {
        out.push(RiskEvent::Violation(Violation {
            ts,
            rule,
            limit,
            observed,
            action,
        }));
        let reason = format!("{rule:?} breached: {observed} against a limit of {limit}");
        match action {
            RiskAction::Kill => RiskOutcome::Kill(reason),
            other => {
                self.escalate(ts, other.into(), reason, out);
                RiskOutcome::Nothing
            }
        }
    }

    fn drawdown_pct(&self) -> Decimal {
        if self.peak_equity.is_zero() {
            return Decimal::ZERO;
        }
        ((self.peak_equity - self.last_equity) / self.peak_equity * Decimal::ONE_HUNDRED)
            .round_dp(4)
    }

    fn daily_loss_pct(&self) -> Decimal {
        if self.day_start_equity.is_zero() {
            return Decimal::ZERO;
        }
        ((self.day_start_equity - self.last_equity) / self.day_start_equity * Decimal::ONE_HUNDRED)
            .max(Decimal::ZERO)
            .round_dp(4)
    }

    /// Each configured rule with its limit, latest observed value and status.
    pub fn rule_statuses(&self) -> Vec<RuleStatus> {
        let mut statuses = Vec::new();
        if let Some(rule) = self.config.max_drawdown {
            statuses.push(RuleStatus {
                rule: Rule::MaxDrawdown,
                limit: rule.limit_pct,
                observed: self.drawdown_pct(),
                breached: self.drawdown_breached,
                action: rule.action,
            });
        }
        if let Some(rule) = self.config.daily_loss {
            statuses.push(RuleStatus {
                rule: Rule::DailyLoss,
                limit: rule.limit_pct,
                observed: self.daily_loss_pct(),
                breached: self.daily_breached,
                action: rule.action,
            });
        }
        if let Some(rule) = self.config.max_consecutive_losses {
            statuses.push(RuleStatus {
                rule: Rule::MaxConsecutiveLosses,
                limit: Decimal::from(rule.limit),
                observed: Decimal::from(self.consecutive_losses),
                breached: self.losses_breached,
                action: rule.action,
            });
        }
        statuses
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::config::{CountRule, PercentRule};
    use crate::domain::{OrderKind, OrderOrigin};
    use rust_decimal_macros::dec;

    fn buy(quantity: Decimal) -> OrderRequest {
        OrderRequest {
            client_tag: String::new(),
            side: Side::Buy,
            kind: OrderKind::Market,
            quantity,
            price: None,
            reduce_only: false,
            origin: OrderOrigin::Strategy,
        }
    }

    fn sell(quantity: Decimal) -> OrderRequest {
        OrderRequest {
            side: Side::Sell,
            ..buy(quantity)
        }
    }

    fn ctx(ts: i64) -> OrderContext {
        OrderContext {
            ts,
            price: dec!(100),
            position: dec!(1),
            cash: dec!(1000),
            committed_buys: dec!(0),
            open_orders: 0,
            taker_fee_bps: dec!(10),
        }
    }

    #[test]
    fn pre_trade_checks_refuse_with_the_numbers() {
        let config = RiskConfig {
            max_order_notional: Some(dec!(500)),
            max_position_notional: Some(dec!(800)),
            max_open_orders: 2,
            max_orders_per_second: 3,
            ..RiskConfig::default()
        };
        let mut risk = RiskEngine::new(config, dec!(1000));
        let err = risk.check_order(&buy(dec!(6)), &ctx(0)).unwrap_err();
        assert_eq!(err.check, "max_order_notional");
        assert!(err.message.contains("600"), "{}", err.message);
        let err = risk.check_order(&buy(dec!(8)), &ctx(0)).unwrap_err();
        assert_eq!(err.check, "max_position_notional");
        assert!(err.message.contains("900"), "{}", err.message);
        let poor = OrderContext {
            cash: dec!(300),
            ..ctx(0)
        };
        let err = risk.check_order(&buy(dec!(3)), &poor).unwrap_err();
        assert_eq!(err.check, "free_cash");
        assert!(err.message.contains("300.3"), "{}", err.message);
        let err = risk.check_order(&sell(dec!(2)), &ctx(0)).unwrap_err();
        assert_eq!(err.check, "position");
        let busy = OrderContext {
            open_orders: 2,
            ..ctx(0)
        };
        assert_eq!(
            risk.check_order(&buy(dec!(1)), &busy).unwrap_err().check,
            "max_open_orders"
        );
        // Three per second pass, the fourth in the same second is refused,
        // and a second later there is room again.
        for _ in 0..3 {
            risk.check_order(&buy(dec!(1)), &ctx(10_000)).unwrap();
        }
        assert_eq!(
            risk.check_order(&buy(dec!(1)), &ctx(10_500))
                .unwrap_err()
                .check,
            "max_orders_per_second"
        );
        risk.check_order(&buy(dec!(1)), &ctx(11_000)).unwrap();
        // An operator's orders are counted apart from the strategy's, by
        // their own clock (wall time in a running bot).
        let manual = OrderRequest {
            origin: OrderOrigin::Manual,
            ..buy(dec!(1))
        };
        for second in [1_700_000_000_000_i64, 1_700_000_001_000] {
            for _ in 0..3 {
                risk.check_order(&manual, &ctx(second)).unwrap();
            }
            assert_eq!(
                risk.check_order(&manual, &ctx(second + 500))
                    .unwrap_err()
                    .check,
                "max_orders_per_second"
            );
        }
    }

    #[test]
    fn drawdown_breach_latches_and_records_once() {
        let config = RiskConfig {
            max_drawdown: Some(PercentRule {
                limit_pct: dec!(10),
                action: RiskAction::Halt,
            }),
            ..RiskConfig::default()
        };
        let mut risk = RiskEngine::new(config, dec!(1000));
        let mut out = Vec::new();
        assert_eq!(
            risk.on_equity(0, dec!(1200), &mut out),
            RiskOutcome::Nothing
        );
        assert_eq!(
            risk.on_equity(1, dec!(1081), &mut out),
            RiskOutcome::Nothing
        ); // 9.9%
        assert_eq!(risk.state(), TradingState::Active);
        assert!(out.is_empty());
        risk.on_equity(2, dec!(1079), &mut out); // 10.08%
        risk.on_equity(3, dec!(1000), &mut out);
        assert_eq!(risk.state(), TradingState::Halted);
        let violations: Vec<&Violation> = out
            .iter()
            .filter_map(|e| match e {
                RiskEvent::Violation(v) => Some(v),
                RiskEvent::StateChanged(_) => None,
            })
            .collect();
        assert_eq!(violations.len(), 1, "recorded once, on the transition");
        assert_eq!(violations[0].observed, dec!(10.0833));
        assert_eq!(
            risk.check_order(&sell(dec!(1)), &ctx(4)).unwrap_err().check,
            "trading_state"
        );
        // Recovery does not unlatch; a reset does.
        risk.on_equity(5, dec!(1300), &mut out);
        assert_eq!(risk.state(), TradingState::Halted);
        risk.reset(6, dec!(1300), &mut out);
        assert_eq!(risk.state(), TradingState::Active);
        let changes: Vec<(TradingState, TradingState)> = out
            .iter()
            .filter_map(|e| match e {
                RiskEvent::StateChanged(c) => Some((c.from, c.to)),
                RiskEvent::Violation(_) => None,
            })
            .collect();
        assert_eq!(
            changes,
            [
                (TradingState::Active, TradingState::Halted),
                (TradingState::Halted, TradingState::Active)
            ]
        );
    }

    #[test]
    fn reducing_allows_only_reductions_and_daily_loss_clears_next_day() {
        let config = RiskConfig {
            daily_loss: Some(PercentRule {
                limit_pct: dec!(5),
                action: RiskAction::Reduce,
            }),
            ..RiskConfig::default()
        };
        let mut risk = RiskEngine::new(config, dec!(1000));
        let mut out = Vec::new();
        risk.on_equity(1000, dec!(1000), &mut out);
        risk.on_equity(2000, dec!(940), &mut out);
        assert_eq!(risk.state(), TradingState::Reducing);
        assert!(risk.check_order(&buy(dec!(1)), &ctx(3000)).is_err());
        assert!(risk.check_order(&sell(dec!(1)), &ctx(3000)).is_ok());
        risk.on_equity(DAY_MS + 1, dec!(940), &mut out);
        assert_eq!(risk.state(), TradingState::Active);
    }

    #[test]
    fn consecutive_losses_can_kill_and_cooldown_blocks_entries() {
        let config = RiskConfig {
            max_consecutive_losses: Some(CountRule {
                limit: 2,
                action: RiskAction::Kill,
            }),
            cooldown_after_loss: 2,
            ..RiskConfig::default()
        };
        let mut risk = RiskEngine::new(config, dec!(1000));
        let loss = Trade {
            entry_ts: 0,
            exit_ts: 1,
            quantity: dec!(1),
            entry_price: dec!(100),
            exit_price: dec!(99),
            pnl: dec!(-1.2),
            fees: dec!(0.2),
        };
        let mut out = Vec::new();
        assert_eq!(risk.on_trade(&loss, 1, &mut out), RiskOutcome::Nothing);
        assert_eq!(
            risk.check_order(&buy(dec!(1)), &ctx(2)).unwrap_err().check,
            "cooldown_after_loss"
        );
        risk.on_candle_closed();
        risk.on_candle_closed();
        assert!(risk.check_order(&buy(dec!(1)), &ctx(3)).is_ok());
        assert!(matches!(
            risk.on_trade(&loss, 4, &mut out),
            RiskOutcome::Kill(_)
        ));
        risk.engage_kill_switch(4, "rule", &mut out);
        assert_eq!(risk.state(), TradingState::Halted);
        assert!(risk.kill_switch().is_some());
    }
}
