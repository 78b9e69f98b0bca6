//! [`BotEngine`]: one bot's engine step, and the operator actions on it.

use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;
use serde::Serialize;

use std::sync::Arc;

use crate::domain::config::{BotConfig, FillTiming, Mode};
use crate::domain::{
    Candle, Fill, InstrumentRules, Order, OrderKind, OrderOrigin, OrderRequest, OrderStatus, Side,
    Timeframe,
};
use crate::plugin::contract::{self, Action};
use crate::plugin::{PluginError, PluginInstance};

use super::portfolio::{Portfolio, Trade};
use super::risk::{
    OrderContext, RiskEngine, RiskEvent, RiskOutcome, StateChange, TradingState, Violation,
};
use super::routing::{ExchangeReport, OrderCheck, Routing, VenueRequest};
use super::venue::{PaperVenue, VenueEvent};

mod stretch;
pub use stretch::{CandleClose, StretchError};

/// Largest quantity or price an intent may carry (10^12): products of such
/// values stay far inside a decimal's range.
pub const MAX_INTENT_VALUE: f64 = 1e12;

/// [`MAX_INTENT_VALUE`] as a decimal: the bound of an operator's quantities
/// and prices.
pub fn max_order_value() -> Decimal {
    Decimal::from_f64(MAX_INTENT_VALUE).unwrap_or(Decimal::MAX)
}

/// Longest client tag: a strategy's is clipped to it, a person's refused
/// beyond it.
pub(crate) const MAX_TAG_CHARS: usize = 64;

/// The check that refuses a stop already through the market (named as the
/// Binance filter check names it: paper and live refuse alike).
pub const STOP_PRICE_CHECK: &str = "stop price";

fn clip_tag(tag: &str) -> String {
    tag.chars().take(MAX_TAG_CHARS).collect()
}

/// How a live order whose cancel was sent (not yet confirmed) is marked.
const CANCEL_REQUESTED: &str = "cancel requested: ";

/// Wall time, epoch ms.
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// Whether this bot asked the exchange to cancel `order` (it stays open
/// until the exchange confirms).
fn cancel_requested(order: &Order) -> bool {
    order
        .reason
        .as_deref()
        .is_some_and(|reason| reason.starts_with(CANCEL_REQUESTED))
}

/// Actions recorded in one signal event.
const MAX_SIGNAL_ACTIONS: usize = 100;

/// A decision as event data: bounded, whatever the plugin returned.
fn signal_json(actions: &[Action]) -> serde_json::Value {
    actions
        .iter()
        .take(MAX_SIGNAL_ACTIONS)
        .map(|action| {
            let clipped = match action {
                Action::Place(intent) => Action::Place(contract::OrderIntent {
                    client_tag: clip_tag(&intent.client_tag),
                    ..intent.clone()
                }),
                Action::Cancel(tag) => Action::Cancel(clip_tag(tag)),
            };
            contract::action_to_json(&clipped)
        })
        .collect()
}

/// The field of an order that the check named `check` weighed: a JSON
/// Pointer into the order (`/quantity`, `/price`), or the whole order ("")
/// for checks of the bot's state or limits on its orders. The checks are
/// the paper venue's ([`VenueRejection`](super::venue::VenueRejection)),
/// the risk engine's and, for a live bot, the exchange's symbol filters.
pub fn refused_field(check: &str) -> &'static str {
    match check {
        "min_notional"
        | "step_size"
        | "position"
        | "max_position_notional"
        | "free_cash"
        | "max_order_notional"
        | "balance"
        | "LOT_SIZE"
        | "MARKET_LOT_SIZE"
        | "MIN_NOTIONAL"
        | "NOTIONAL" => "/quantity",
        "price" | "tick_size" | STOP_PRICE_CHECK | "PRICE_FILTER" | "PERCENT_PRICE_BY_SIDE" => {
            "/price"
        }
        "client_tag" => "/client_tag",
        _ => "",
    }
}

/// A refused order intent: never reached the venue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub ts: i64,
    pub client_tag: String,
    pub origin: OrderOrigin,
    /// The check that refused it (`max_order_notional`, `min_notional`, ...).
    pub check: String,
    pub message: String,
}

/// What happened during a step, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineEvent {
    /// The strategy's decision on a candle, when it decided anything.
    Signal {
        ts: i64,
        actions: serde_json::Value,
    },
    OrderPlaced {
        order: Order,
    },
    /// A fill, with the new state of the order it filled.
    OrderFilled {
        order: Order,
        fill: Fill,
    },
    OrderCancelled {
        order: Order,
    },
    OrderRejected {
        rejection: Rejection,
    },
    PositionOpened {
        ts: i64,
        quantity: Decimal,
        price: Decimal,
    },
    PositionClosed {
        ts: i64,
        trade: Trade,
    },
    RiskViolation {
        violation: Violation,
    },
    RiskStateChanged {
        change: StateChange,
    },
    KillSwitch {
        ts: i64,
        reason: String,
    },
}

/// What became of an order handed to [`BotEngine::place`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Accepted: resting or waiting for the next open, or already filled
    /// (immediate orders); the order in its state after the placement.
    Placed(Order),
    /// Refused by a check; it never reached the venue.
    Refused(Rejection),
}

/// How many records and exchange requests were queued at some point (see
/// [`BotEngine::undo_to`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueMarks {
    pub events: usize,
    pub outbox: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// An order filled at once, then the strategy failed hearing of it:
    /// the fill stands; `order` is the order as it stands.
    #[error("{error}")]
    FailedAfterFill {
        order: Box<Order>,
        error: PluginError,
    },
    #[error("timeframe `{0}` is not supported")]
    Timeframe(String),
}

impl EngineError {
    /// Whether a kill stopped the strategy mid-call (not a failure of its own).
    pub fn is_interrupt(&self) -> bool {
        matches!(
            self,
            Self::Plugin(PluginError::Interrupted { .. })
                | Self::FailedAfterFill {
                    error: PluginError::Interrupted { .. },
                    ..
                }
        )
    }
}

/// Whatever makes the decisions: a sandboxed plugin instance in the host;
/// the same strategy compiled natively in benchmarks (and, later, plugins of
/// other runtimes).
pub trait Decider {
    fn on_candle(
        &mut self,
        candle: &contract::Candle,
        view: &contract::PluginView,
    ) -> Result<Vec<Action>, PluginError>;
    fn on_fill(&mut self, fill: &contract::Fill) -> Result<(), PluginError>;

    /// Decide on a stretch of candles, each with the bot as of its close,
    /// up to the first candle that yields an action: how many candles were
    /// decided and that candle's actions (see [`BotEngine::on_candles`]).
    /// By default one `on_candle` call per candle.
    fn on_candles(
        &mut self,
        stretch: &contract::Stretch,
    ) -> Result<(usize, Vec<Action>), contract::StretchFailure> {
        stretch.decide_one_at_a_time(|candle, view| self.on_candle(candle, view))
    }

    /// Whether [`Decider::on_candles`] is cheaper than a call per candle
    /// (a call into the sandbox costs more than a candle's decision).
    fn decides_stretches(&self) -> bool {
        false
    }
}

/// A decider lent to an engine (a test counting its calls, say).
impl<D: Decider + ?Sized> Decider for &mut D {
    fn on_candle(
        &mut self,
        candle: &contract::Candle,
        view: &contract::PluginView,
    ) -> Result<Vec<Action>, PluginError> {
        (**self).on_candle(candle, view)
    }

    fn on_fill(&mut self, fill: &contract::Fill) -> Result<(), PluginError> {
        (**self).on_fill(fill)
    }

    fn on_candles(
        &mut self,
        stretch: &contract::Stretch,
    ) -> Result<(usize, Vec<Action>), contract::StretchFailure> {
        (**self).on_candles(stretch)
    }

    fn decides_stretches(&self) -> bool {
        (**self).decides_stretches()
    }
}

impl Decider for PluginInstance {
    fn on_candles(
        &mut self,
        stretch: &contract::Stretch,
    ) -> Result<(usize, Vec<Action>), contract::StretchFailure> {
        PluginInstance::on_candles(self, stretch)
    }

    fn decides_stretches(&self) -> bool {
        PluginInstance::decides_stretches(self)
    }

    fn on_candle(
        &mut self,
        candle: &contract::Candle,
        view: &contract::PluginView,
    ) -> Result<Vec<Action>, PluginError> {
        PluginInstance::on_candle(self, candle, view)
    }

    fn on_fill(&mut self, fill: &contract::Fill) -> Result<(), PluginError> {
        PluginInstance::on_fill(self, fill)
    }
}

/// Everything of a bot's engine but the strategy: what a restart restores.
/// The strategy's own state (its indicators) is rebuilt by warming a fresh
/// instance up on recent candles.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct EngineCheckpoint {
    portfolio: Portfolio,
    venue: PaperVenue,
    risk: RiskEngine,
    last_close: Option<Decimal>,
    now: i64,
    entries_paused: bool,
}

pub struct BotEngine<D = PluginInstance> {
    /// The strategy; called once per candle and after each fill.
    plugin: D,
    /// Cash, position, PnL: the money.
    portfolio: Portfolio,
    /// Where orders rest and (paper) fill: the book.
    venue: PaperVenue,
    /// Live bots: orders go to an exchange, which reports the fills.
    routing: Option<Routing>,
    /// Pre-trade checks, rules, trading state, kill-switch.
    risk: RiskEngine,
    fill_timing: FillTiming,
    timeframe_ms: i64,
    /// The candle as the plugin sees it; symbol and timeframe set once.
    plugin_candle: contract::Candle,
    last_close: Option<Decimal>,
    /// Engine time: the close time of the last candle.
    now: i64,
    /// What an operator's orders are timed by for the order rate limit:
    /// wall time in a running bot (its orders between two candles are
    /// seconds apart, not all at the candle's time); None in a simulation
    /// (a backtest must not depend on wall time). The strategy's orders
    /// are timed by engine time.
    rate_clock: Option<fn() -> i64>,
    events: Vec<EngineEvent>,
    /// Paused: the plugin still decides, but orders that grow the position
    /// are refused.
    entries_paused: bool,
    /// The position's average price as the plugin sees it; a division, so
    /// computed once per change of the position (cleared on every fill).
    avg_price_view: Option<f64>,
    /// Scratch buffer for venue events, reused across steps.
    venue_events: Vec<VenueEvent>,
    /// Scratch buffer for risk events, drained into `events` after each
    /// call into the risk engine.
    risk_events: Vec<RiskEvent>,
    /// Candles decided in one call, when nothing can happen between them.
    stretch: stretch::Stretches,
}

use crate::domain::decimal::to_f64;

impl<D: Decider> BotEngine<D> {
    /// The engine of a bot with this config: a live bot's routes its
    /// orders to an exchange, a paper bot's fills them on the paper venue.
    pub fn new(config: &BotConfig, plugin: D) -> Result<Self, EngineError> {
        let mut engine = Self::build(config, plugin, config.mode == Mode::Live)?;
        engine.rate_clock = Some(wall_clock_ms);
        Ok(engine)
    }

    /// The engine of a simulation of this config (a backtest): the paper
    /// venue, whatever the config's mode.
    pub fn simulated(config: &BotConfig, plugin: D) -> Result<Self, EngineError> {
        Self::build(config, plugin, false)
    }

    fn build(config: &BotConfig, plugin: D, routed: bool) -> Result<Self, EngineError> {
        let timeframe: Timeframe = config
            .market
            .timeframe
            .parse()
            .map_err(|_| EngineError::Timeframe(config.market.timeframe.clone()))?;
        Ok(Self {
            plugin,
            portfolio: Portfolio::new(config.capital.initial),
            venue: PaperVenue::new(config.instrument, config.fees, config.execution),
            routing: routed.then(Routing::default),
            risk: RiskEngine::new(config.risk.clone(), config.capital.initial),
            fill_timing: config.execution.fill_timing,
            timeframe_ms: timeframe.millis(),
            plugin_candle: contract::Candle::of_bot_market(),
            last_close: None,
            now: 0,
            rate_clock: None,
            events: Vec::new(),
            entries_paused: false,
            avg_price_view: None,
            venue_events: Vec::new(),
            risk_events: Vec::new(),
            stretch: stretch::Stretches::default(),
        })
    }

    pub fn portfolio(&self) -> &Portfolio {
        &self.portfolio
    }

    /// The engine's state, to be stored.
    pub fn checkpoint(&self) -> EngineCheckpoint {
        EngineCheckpoint {
            portfolio: self.portfolio.clone(),
            venue: self.venue.clone(),
            risk: self.risk.clone(),
            last_close: self.last_close,
            now: self.now,
            entries_paused: self.entries_paused,
        }
    }

    /// Continue from a stored state (same config version as when it was
    /// taken); the strategy is whatever `plugin` this engine was built with,
    /// and the terms (rules, fees, execution, risk limits) stay this
    /// engine's: they are the config's, not part of a checkpoint.
    pub fn restore(&mut self, checkpoint: EngineCheckpoint) {
        self.restore_books(checkpoint);
        // Requests of an undone step were never committed: never sent.
        if let Some(routing) = &mut self.routing {
            routing.outbox.clear();
        }
    }

    /// How much waits to be committed (records) and sent (requests), for
    /// [`Self::undo_to`].
    pub fn queue_marks(&self) -> QueueMarks {
        QueueMarks {
            events: self.events.len(),
            outbox: self
                .routing
                .as_ref()
                .map_or(0, |routing| routing.outbox.len()),
        }
    }

    /// Back to `checkpoint` after a step that was not committed: what the
    /// step queued (records and requests past `marks`) is dropped, never
    /// stored or sent; what was queued before it stays.
    pub fn undo_to(&mut self, checkpoint: EngineCheckpoint, marks: QueueMarks) {
        self.restore_books(checkpoint);
        self.events.truncate(marks.events);
        if let Some(routing) = &mut self.routing {
            routing.outbox.truncate(marks.outbox);
        }
    }

    /// The books, the risk state and the clock of `checkpoint`, with this
    /// engine's terms (rules, fees, execution, risk limits).
    fn restore_books(&mut self, checkpoint: EngineCheckpoint) {
        self.portfolio = checkpoint.portfolio;
        let (rules, fees, execution) = (
            *self.venue.rules(),
            *self.venue.fees(),
            *self.venue.execution(),
        );
        self.venue = checkpoint.venue;
        self.venue.set_terms(rules, fees, execution);
        let limits = self.risk.config().clone();
        self.risk = checkpoint.risk;
        self.risk.set_config(limits);
        self.last_close = checkpoint.last_close;
        self.now = checkpoint.now;
        self.entries_paused = checkpoint.entries_paused;
        self.avg_price_view = None;
    }

    /// Put back records drained for a commit that failed, ahead of any
    /// queued since, for the next commit.
    pub fn requeue_events(&mut self, events: Vec<EngineEvent>) {
        self.events.splice(0..0, events);
    }

    /// Whether an exchange executes this engine's orders (a live bot).
    pub fn is_routed(&self) -> bool {
        self.routing.is_some()
    }

    /// The exchange's rules, checked before an order enters the book. A
    /// routed engine refuses every new order until it has one.
    pub fn set_order_check(&mut self, check: Arc<dyn OrderCheck>) {
        if let Some(routing) = &mut self.routing {
            routing.check = Some(check);
        }
    }

    /// Ask again for the cancels requested but not confirmed (a restart
    /// may have come before they were sent; a second cancel is harmless).
    pub fn repeat_cancel_requests(&mut self) {
        let Some(routing) = &mut self.routing else {
            return;
        };
        for order in self.venue.open_orders() {
            if cancel_requested(order) {
                routing.outbox.push(VenueRequest::Cancel(order.clone()));
            }
        }
    }

    /// Number new orders from at least `first` (their client order ids on
    /// an exchange must never repeat an earlier book's).
    pub fn number_orders_from(&mut self, first: u64) {
        self.venue.number_from(first);
    }

    /// What to send to the exchange, taken once the step is committed.
    pub fn take_outbox(&mut self) -> Vec<VenueRequest> {
        self.routing
            .as_mut()
            .map(|routing| std::mem::take(&mut routing.outbox))
            .unwrap_or_default()
    }

    /// Refuse (or allow again) orders that grow the position. Pausing also
    /// cancels resting buys: they are entries too.
    pub fn set_entries_paused(&mut self, paused: bool) {
        self.entries_paused = paused;
        if paused {
            self.cancel_entries("bot paused");
        }
    }

    /// Cancel every resting or pending buy (an entry on a long-only book).
    fn cancel_entries(&mut self, reason: &str) {
        let buys: Vec<u64> = self
            .venue
            .open_orders()
            .iter()
            .filter(|o| o.side == Side::Buy)
            .map(|o| o.id)
            .collect();
        for id in buys {
            self.cancel_id(id, reason);
        }
    }

    /// Cancel one open order: at once on paper; on an exchange, the cancel
    /// is sent and the order stays open (marked) until the exchange
    /// confirms. The order as it is now, or None if no open order has `id`.
    fn cancel_id(&mut self, id: u64, reason: &str) -> Option<Order> {
        self.cancel(id, reason, false)
    }

    /// [`Self::cancel_id`]; `again`: send the cancel even if one was sent
    /// (an operator asking again).
    fn cancel(&mut self, id: u64, reason: &str, again: bool) -> Option<Order> {
        let Some(routing) = &mut self.routing else {
            let order = self.venue.cancel_id(id, self.now, reason)?;
            self.events.push(EngineEvent::OrderCancelled {
                order: order.clone(),
            });
            return Some(order);
        };
        let order = self.venue.open_order_mut(id)?;
        let requested = order.reason.is_some();
        if !requested {
            order.reason = Some(format!("{CANCEL_REQUESTED}{reason}"));
        }
        if !requested || again {
            routing.outbox.push(VenueRequest::Cancel(order.clone()));
        }
        Some(order.clone())
    }

    /// Whatever makes the decisions.
    pub fn decider(&self) -> &D {
        &self.plugin
    }

    /// Put a new decider in place (hot swap); the money, orders and risk
    /// state stay. Returns the old one.
    pub fn replace_decider(&mut self, decider: D) -> D {
        std::mem::replace(&mut self.plugin, decider)
    }

    /// Apply a new config's hot-swappable terms: risk limits (at once),
    /// fees, execution and instrument rules.
    pub fn apply_terms(&mut self, config: &BotConfig) {
        self.risk.set_config(config.risk.clone());
        self.venue
            .set_terms(config.instrument, config.fees, config.execution);
        self.fill_timing = config.execution.fill_timing;
    }

    /// The last candle's close, if any candle has been seen.
    pub fn last_close(&self) -> Option<Decimal> {
        self.last_close
    }

    /// The view the plugin gets, for warming up a replacement decider.
    pub fn plugin_view(&mut self) -> contract::PluginView {
        self.bot_view()
    }

    pub fn venue(&self) -> &PaperVenue {
        &self.venue
    }

    pub fn risk(&self) -> &RiskEngine {
        &self.risk
    }

    pub fn open_orders(&self) -> &[Order] {
        self.venue.open_orders()
    }

    /// Length of the bot's candles, in ms.
    pub fn timeframe_ms(&self) -> i64 {
        self.timeframe_ms
    }

    /// Engine time: the close time of the last candle processed.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Take the events recorded since the last call.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, EngineEvent> {
        self.events.drain(..)
    }

    /// One closed candle: fills of pending orders, mark-to-market, risk rules,
    /// then the strategy's decision (unless the kill-switch is engaged).
    /// A simulation takes quiet candles through `on_candles` instead
    /// (`bot/stretch.rs`), which must stay equal to this for them: a step
    /// added here needs its place there (a test compares the two over
    /// every example strategy).
    pub fn on_candle(&mut self, candle: &Candle) -> Result<(), EngineError> {
        // Orders waiting for this candle (an exchange fills its own).
        let mut venue_events = std::mem::take(&mut self.venue_events);
        if self.routing.is_none() {
            self.venue
                .on_candle(candle, &mut self.portfolio, &mut venue_events);
        }
        let result = self.absorb(&mut venue_events, candle.ts, true);
        self.venue_events = venue_events;
        result?;

        if let (_, RiskOutcome::Kill(reason)) = self.close_candle(candle) {
            self.kill(&reason);
        }
        self.record_risk();

        if self.risk.kill_switch().is_none() {
            self.plugin_candle.set_prices(candle);
            let view = self.bot_view();
            let actions = self.plugin.on_candle(&self.plugin_candle, &view)?;
            self.apply(actions)?;
        }
        self.risk.on_candle_closed();
        Ok(())
    }

    /// A candle's close: engine time, the position marked at the close,
    /// the risk rules on the new equity (their events in `risk_events`).
    /// The new equity, and what the rules ask for.
    fn close_candle(&mut self, candle: &Candle) -> (Decimal, RiskOutcome) {
        self.take_close(candle);
        let equity = self.portfolio.equity();
        let outcome = self.risk.on_equity(self.now, equity, &mut self.risk_events);
        (equity, outcome)
    }

    /// Carry out the strategy's decisions on the current candle.
    fn apply(&mut self, actions: Vec<Action>) -> Result<(), EngineError> {
        if !actions.is_empty() {
            self.events.push(EngineEvent::Signal {
                ts: self.now,
                actions: signal_json(&actions),
            });
        }
        for action in actions {
            self.act(action)?;
        }
        Ok(())
    }

    /// What the plugin sees of the bot.
    fn bot_view(&mut self) -> contract::PluginView {
        let avg_price = *self
            .avg_price_view
            .get_or_insert_with(|| to_f64(self.portfolio.avg_entry_price()));
        let open_orders = self
            .venue
            .open_orders()
            .iter()
            .filter(|o| o.origin == OrderOrigin::Strategy)
            .map(|o| contract::OpenOrder {
                client_tag: o.client_tag.clone(),
                side: o.side.into(),
                kind: o.kind.into(),
                quantity: to_f64(o.quantity),
                price: o.price.map(to_f64),
            })
            .collect();
        let bot = contract::BotView {
            position_qty: to_f64(self.portfolio.position()),
            position_avg_price: avg_price,
            free_cash: to_f64(self.portfolio.cash() - self.committed_buys()),
            equity: to_f64(self.portfolio.equity()),
            // Set from the list by PluginView::new.
            open_order_count: 0,
        };
        contract::PluginView::new(bot, open_orders)
    }

    /// Quote value reserved by resting and pending buy orders.
    fn committed_buys(&self) -> Decimal {
        let reference = self.last_close.unwrap_or_default();
        self.venue
            .open_orders()
            .iter()
            .filter(|o| o.side == Side::Buy)
            .map(|o| o.quantity * o.price.unwrap_or(reference))
            .sum()
    }

    fn act(&mut self, action: Action) -> Result<(), EngineError> {
        match action {
            Action::Cancel(tag) => {
                let strategy_order = self
                    .venue
                    .open_orders()
                    .iter()
                    .find(|o| o.client_tag == tag && o.origin == OrderOrigin::Strategy)
                    .map(|o| o.id);
                if let Some(id) = strategy_order {
                    self.cancel_id(id, "cancelled by the strategy");
                }
                Ok(())
            }
            Action::Place(intent) => {
                let request = match self.to_request(&intent) {
                    Ok(request) => request,
                    Err(message) => {
                        let tag = clip_tag(&intent.client_tag);
                        self.reject(tag, OrderOrigin::Strategy, "intent", message);
                        return Ok(());
                    }
                };
                let immediate = request.kind == OrderKind::Market
                    && self.fill_timing == FillTiming::SignalClose;
                self.place(request, immediate).map(drop)
            }
        }
    }

    /// An intent in decimals on the instrument's grid. Quantities and prices
    /// are bounded (see [`MAX_INTENT_VALUE`]) so that no product of them can
    /// overflow a decimal: a plugin cannot make the host panic.
    fn to_request(&self, intent: &contract::OrderIntent) -> Result<OrderRequest, String> {
        let rules = self.venue.rules();
        let in_range = |value: f64| value > 0.0 && value <= MAX_INTENT_VALUE;
        let quantity = Some(intent.quantity)
            .filter(|q| in_range(*q))
            .and_then(Decimal::from_f64)
            .ok_or_else(|| {
                format!(
                    "quantity {} is not a positive number up to {MAX_INTENT_VALUE:e}",
                    intent.quantity
                )
            })?;
        let price = match intent.price {
            None => None,
            Some(price) => Some(
                Some(price)
                    .filter(|p| in_range(*p))
                    .and_then(Decimal::from_f64)
                    .map(|p| rules.round_price(p))
                    .ok_or_else(|| {
                        format!("price {price} is not a positive number up to {MAX_INTENT_VALUE:e}")
                    })?,
            ),
        };
        Ok(OrderRequest {
            client_tag: clip_tag(&intent.client_tag),
            side: intent.side.into(),
            kind: intent.kind.into(),
            quantity: rules.round_quantity(quantity),
            price,
            reduce_only: intent.reduce_only,
            origin: OrderOrigin::Strategy,
        })
    }

    /// Record a refusal; what was refused.
    fn reject(
        &mut self,
        client_tag: String,
        origin: OrderOrigin,
        check: &str,
        message: String,
    ) -> Placement {
        let rejection = Rejection {
            ts: self.now,
            client_tag,
            origin,
            check: check.to_string(),
            message,
        };
        self.events.push(EngineEvent::OrderRejected {
            rejection: rejection.clone(),
        });
        Placement::Refused(rejection)
    }

    /// Check an order (instrument rules, then risk) and hand it to the venue:
    /// to rest, to wait for the next open, or (`immediate`) to fill at once at
    /// the last close.
    pub fn place(
        &mut self,
        request: OrderRequest,
        immediate: bool,
    ) -> Result<Placement, EngineError> {
        // Before its first candle a paper bot knows no price but a limit
        // order's own: enough to check it, and it rests until candles come.
        // Anything else needs the market's price (an exchange's checks too).
        let paper = self.routing.is_none();
        let own_price = match (request.kind, request.price) {
            (OrderKind::Limit, Some(price)) if paper => Some(price),
            _ => None,
        };
        let Some(reference) = self.last_close.or(own_price) else {
            let message = if paper {
                "no candle has closed yet: only a limit order can wait for one"
            } else {
                "no candle has closed yet: the exchange's checks need the market's price"
            };
            return Ok(self.reject(
                request.client_tag,
                request.origin,
                "no_price",
                message.into(),
            ));
        };
        if self.entries_paused && request.side == Side::Buy {
            let message =
                "the bot is paused: orders that grow the position are refused".to_string();
            return Ok(self.reject(request.client_tag, request.origin, "paused", message));
        }
        if let Err(rejection) = self.venue.validate(&request, reference) {
            return Ok(self.reject(
                request.client_tag,
                request.origin,
                rejection.check(),
                rejection.to_string(),
            ));
        }
        let context = OrderContext {
            ts: match (request.origin, self.rate_clock) {
                (OrderOrigin::Manual, Some(clock)) => clock(),
                _ => self.now,
            },
            price: request.price.unwrap_or(reference),
            position: self.portfolio.position(),
            cash: self.portfolio.cash(),
            committed_buys: self.committed_buys(),
            open_orders: self.venue.open_orders().len(),
            taker_fee_bps: self.taker_fee_bps(),
        };
        if let Err(refusal) = self.risk.check_order(&request, &context) {
            return Ok(self.reject(
                request.client_tag,
                request.origin,
                refusal.check,
                refusal.message,
            ));
        }
        if self.routing.is_some()
            && let Err(message) = self.sellable(&request)
        {
            return Ok(self.reject(request.client_tag, request.origin, "balance", message));
        }
        if let Some(routing) = &self.routing {
            let checked = match &routing.check {
                Some(check) => check
                    .check(&request, reference, self.venue.open_orders())
                    .map_err(|refusal| (refusal.check, refusal.message)),
                None => Err((
                    "venue".to_string(),
                    "the exchange link is not ready".to_string(),
                )),
            };
            if let Err((check, message)) = checked {
                return Ok(self.reject(request.client_tag, request.origin, &check, message));
            }
            if request.side == Side::Sell && request.kind == OrderKind::Market {
                self.release_resting_sells(false);
            }
            return Ok(Placement::Placed(self.route(request)));
        }
        let order = if immediate {
            self.fill_now(request, reference, true)?
        } else {
            let order = self.venue.accept(request, self.now);
            self.events.push(EngineEvent::OrderPlaced {
                order: order.clone(),
            });
            order
        };
        Ok(Placement::Placed(order))
    }

    /// Whether an exchange, which sets aside what a resting sell may sell,
    /// has the coins for `request`: a sell must fit in the position less
    /// what the resting sells hold (a market sell, an exit, first cancels
    /// the resting reduce-only sells: those do not count for it).
    fn sellable(&self, request: &OrderRequest) -> Result<(), String> {
        if request.side != Side::Sell {
            return Ok(());
        }
        let market = request.kind == OrderKind::Market;
        let held: Decimal = self
            .venue
            .open_orders()
            .iter()
            .filter(|o| o.side == Side::Sell && !cancel_requested(o))
            .filter(|o| !(market && o.reduce_only))
            .map(|o| o.quantity - o.filled)
            .sum();
        let free = self.portfolio.position() - held;
        if request.quantity > free && !held.is_zero() {
            return Err(format!(
                "resting sells hold {held} of the position and the exchange sets that aside: {free} is free to sell; cancel a resting sell first (a stop and a take-profit for the whole position cannot both rest on an exchange)"
            ));
        }
        Ok(())
    }

    /// Cancel the resting sells in the way of a market sell on an exchange
    /// (which holds their coins): the reduce-only ones (stops,
    /// take-profits), or `all` of them for a flatten. Their cancels go out
    /// before the sell.
    fn release_resting_sells(&mut self, all: bool) {
        let resting: Vec<u64> = self
            .venue
            .open_orders()
            .iter()
            .filter(|o| o.side == Side::Sell && !cancel_requested(o))
            .filter(|o| all || super::venue::is_reduce_only_sell(o))
            .map(|o| o.id)
            .collect();
        for id in resting {
            self.cancel_id(
                id,
                "cancelled for a market sell: the exchange holds a resting sell's coins",
            );
        }
    }

    /// Book an order as open and queue it for the exchange.
    fn route(&mut self, request: OrderRequest) -> Order {
        let order = self.venue.accept(request, self.now);
        self.events.push(EngineEvent::OrderPlaced {
            order: order.clone(),
        });
        if let Some(routing) = &mut self.routing {
            routing.outbox.push(VenueRequest::Send {
                order: order.clone(),
                reference: self.last_close.unwrap_or_default(),
            });
        }
        order
    }

    /// Apply what the exchange did with one of this bot's orders: a fill
    /// books the part of it not booked yet (see the module comment of
    /// `routing`) and the strategy hears of it; a close ends the order.
    /// False when the report changed nothing (a repeat, or an order the
    /// book does not hold).
    pub fn apply_report(&mut self, report: ExchangeReport) -> Result<bool, EngineError> {
        match report {
            ExchangeReport::Closed {
                order_id,
                ts,
                reason,
            } => {
                // A cancel this bot asked for keeps the reason it was asked with.
                let asked = self
                    .venue
                    .open_orders()
                    .iter()
                    .find(|o| o.id == order_id)
                    .and_then(|o| o.reason.as_deref()?.strip_prefix(CANCEL_REQUESTED))
                    .map(str::to_string);
                let reason = asked.unwrap_or(reason);
                let Some(order) = self.venue.cancel_id(order_id, ts, &reason) else {
                    return Ok(false);
                };
                self.events.push(EngineEvent::OrderCancelled { order });
                Ok(true)
            }
            ExchangeReport::Fill(report) => {
                let Some(order) = self.venue.open_order_mut(report.order_id) else {
                    tracing::warn!(
                        order = report.order_id,
                        trade = report.trade_id,
                        "a fill of an order the book does not hold open: not booked"
                    );
                    return Ok(false);
                };
                let new =
                    (report.cumulative.min(order.quantity) - order.filled).min(report.quantity);
                if new <= Decimal::ZERO || report.quantity <= Decimal::ZERO {
                    return Ok(false);
                }
                order.filled += new;
                order.updated_ts = report.ts;
                let done = order.filled >= order.quantity;
                // The part of the trade not booked before, and its share of
                // the fees; a fee taken in the base asset is not received.
                let share = |amount: Decimal| {
                    if new == report.quantity {
                        amount
                    } else {
                        amount * new / report.quantity
                    }
                };
                let (fee, base_fee) = (share(report.fee), share(report.base_fee));
                let mut quantity = (new - base_fee).max(Decimal::ZERO);
                if order.side == Side::Sell && quantity > self.portfolio.position() {
                    tracing::warn!(
                        order = order.id,
                        "the exchange sold more than the bot holds: booked up to its position"
                    );
                    quantity = self.portfolio.position();
                }
                let fill = Fill {
                    order_id: order.id,
                    client_tag: order.client_tag.clone(),
                    side: order.side,
                    quantity,
                    price: report.price,
                    fee,
                    liquidity: report.liquidity,
                    origin: order.origin,
                    ts: report.ts,
                };
                let order = if done {
                    self.venue
                        .remove_open(report.order_id, OrderStatus::Filled, report.ts)
                        .expect("the order was open above")
                } else {
                    order.clone()
                };
                let mut venue_events = std::mem::take(&mut self.venue_events);
                if quantity.is_zero() {
                    self.events.push(EngineEvent::OrderFilled { order, fill });
                } else {
                    let trade = self.portfolio.apply_fill(&fill);
                    let position_after = self.portfolio.position();
                    venue_events.push(VenueEvent::Filled {
                        order,
                        fill,
                        trade,
                        position_after,
                    });
                }
                let result = self.absorb(&mut venue_events, report.ts, true);
                self.venue_events = venue_events;
                result.map(|()| true)
            }
        }
    }

    fn taker_fee_bps(&self) -> Decimal {
        self.venue.fees().taker_bps
    }

    /// Turn venue events into engine events; tell the risk engine about
    /// closed trades and (if `notify`) the plugin about fills.
    fn absorb(
        &mut self,
        venue_events: &mut Vec<VenueEvent>,
        ts: i64,
        notify: bool,
    ) -> Result<(), EngineError> {
        let mut kill = None;
        let mut reports = Vec::new();
        for event in venue_events.drain(..) {
            match event {
                VenueEvent::Cancelled(order) => {
                    self.events.push(EngineEvent::OrderCancelled { order })
                }
                VenueEvent::Filled {
                    order,
                    fill,
                    trade,
                    position_after,
                } => {
                    self.avg_price_view = None;
                    if fill.side == Side::Buy && position_after == fill.quantity {
                        self.events.push(EngineEvent::PositionOpened {
                            ts: fill.ts,
                            quantity: fill.quantity,
                            price: fill.price,
                        });
                    }
                    reports.push(contract::Fill {
                        client_tag: fill.client_tag.clone(),
                        side: fill.side.into(),
                        quantity: to_f64(fill.quantity),
                        price: to_f64(fill.price),
                        fee: to_f64(fill.fee),
                        ts: fill.ts,
                    });
                    self.events.push(EngineEvent::OrderFilled { order, fill });
                    if let Some(trade) = trade {
                        if let RiskOutcome::Kill(reason) =
                            self.risk.on_trade(&trade, ts, &mut self.risk_events)
                        {
                            kill = Some(reason);
                        }
                        self.events.push(EngineEvent::PositionClosed { ts, trade });
                    }
                }
            }
        }
        // Everything is booked and recorded before the plugin hears of it,
        // so a plugin failure here loses nothing.
        if let Some(reason) = kill {
            self.kill(&reason);
        }
        self.record_risk();
        if notify && self.risk.kill_switch().is_none() {
            for report in &reports {
                self.plugin.on_fill(report)?;
            }
        }
        Ok(())
    }

    /// Turn what the risk engine just did into events.
    fn record_risk(&mut self) {
        let mut leaves_active = false;
        for event in self.risk_events.drain(..) {
            self.events.push(match event {
                RiskEvent::Violation(violation) => EngineEvent::RiskViolation { violation },
                RiskEvent::StateChanged(change) => {
                    leaves_active |= change.to != TradingState::Active;
                    EngineEvent::RiskStateChanged { change }
                }
            });
        }
        // REDUCING and HALTED allow no new exposure: resting entries go too.
        if leaves_active {
            self.cancel_entries("risk: trading state is no longer ACTIVE");
        }
    }

    /// Engage the kill-switch: cancel every pending order, flatten the
    /// position at the last close with a reduce-only market order, halt
    /// until [`BotEngine::reset`].
    pub fn kill(&mut self, reason: &str) {
        let first = self.risk.kill_switch().is_none();
        self.risk
            .engage_kill_switch(self.now, reason, &mut self.risk_events);
        if first {
            self.events.push(EngineEvent::KillSwitch {
                ts: self.now,
                reason: reason.to_string(),
            });
        }
        self.cancel_pending("kill-switch");
        let _ = self.flatten(OrderOrigin::KillSwitch, "kill-switch");
        self.record_risk();
    }

    /// An operator's order: refused unless it is on the instrument's grid
    /// as written ([`super::manual_order_issues`]), then checked like a
    /// strategy's intent (instrument rules, risk). A market order fills
    /// at once at the last close plus slippage; limits and stops rest. The
    /// outcome says which order came of it, or which check refused it (the
    /// refusal is an `OrderRejected` event too, like any other).
    pub fn place_manual(&mut self, mut request: OrderRequest) -> Result<Placement, EngineError> {
        let issues = super::manual_order_issues(&request, self.venue.rules());
        if !issues.is_empty() {
            let message = crate::domain::config::join_issues(&issues);
            let tag = clip_tag(&request.client_tag);
            return Ok(self.reject(tag, OrderOrigin::Manual, "intent", message));
        }
        // A stop already through the market would fill at once, at the
        // market, priced and checked as if at its stop: refused, as an
        // exchange refuses it.
        if let (OrderKind::Stop, Some(stop), Some(last)) =
            (request.kind, request.price, self.last_close)
        {
            let at_once = match request.side {
                Side::Buy => stop <= last,
                Side::Sell => stop >= last,
            };
            if at_once {
                let side = request.side.as_str();
                let message = format!(
                    "a {side} stop at {stop} would trigger at once: the last price is {last}"
                );
                let tag = clip_tag(&request.client_tag);
                return Ok(self.reject(tag, OrderOrigin::Manual, STOP_PRICE_CHECK, message));
            }
        }
        request.origin = OrderOrigin::Manual;
        let immediate = request.kind == OrderKind::Market;
        self.place(request, immediate)
    }

    /// The instrument rules orders are checked against.
    pub fn instrument_rules(&self) -> &InstrumentRules {
        self.venue.rules()
    }

    /// Cancel one open order by id (operator action); None if no open order
    /// has it. A live order is returned still open, its cancel requested.
    pub fn cancel_order(&mut self, id: u64, reason: &str) -> Option<Order> {
        self.cancel(id, reason, true)
    }

    /// Cancel every pending order (operator action).
    pub fn cancel_pending(&mut self, reason: &str) {
        let ids: Vec<u64> = self.venue.open_orders().iter().map(|o| o.id).collect();
        for id in ids {
            self.cancel_id(id, reason);
        }
    }

    /// Bring a bot that has not been reading its feed (a stopped one) up to
    /// `candle`, the feed's latest: the engine's clock and last close, and
    /// the position marked at it. Nothing is decided and no resting order
    /// fills: what an operator does next (a flatten) happens at today's
    /// price and time, not at the candle the bot stopped on. An older
    /// candle changes nothing.
    pub fn mark_to(&mut self, candle: &Candle) {
        if candle.ts + self.timeframe_ms > self.now {
            self.take_close(candle);
        }
    }

    /// `candle`'s close as the engine's time and price, the position
    /// marked at it.
    fn take_close(&mut self, candle: &Candle) {
        self.now = candle.ts + self.timeframe_ms;
        self.last_close = Some(candle.close);
        self.portfolio.mark(candle.close);
    }

    /// Sell the whole position at once at the last close plus slippage.
    /// Allowed in every trading state: it only reduces.
    pub fn flatten(&mut self, origin: OrderOrigin, tag: &str) -> Result<(), EngineError> {
        let (position, Some(reference)) = (self.portfolio.position(), self.last_close) else {
            return Ok(());
        };
        if position.is_zero() {
            return Ok(());
        }
        let request = OrderRequest {
            client_tag: tag.to_string(),
            side: Side::Sell,
            kind: OrderKind::Market,
            quantity: position,
            price: None,
            reduce_only: true,
            origin,
        };
        self.fill_now(request, reference, origin != OrderOrigin::KillSwitch)
            .map(drop)
    }

    /// Fill an order at once at `reference` plus slippage and book the
    /// consequences; `notify` tells the plugin about the fill. The order in
    /// its final state (filled, or cancelled when nothing could fill).
    fn fill_now(
        &mut self,
        request: OrderRequest,
        reference: Decimal,
        notify: bool,
    ) -> Result<Order, EngineError> {
        if self.routing.is_some() {
            // The exchange fills it; no check may hold back a flatten, and
            // no resting sell may hold its coins.
            if request.side == Side::Sell {
                self.release_resting_sells(true);
            }
            return Ok(self.route(request));
        }
        let mut venue_events = std::mem::take(&mut self.venue_events);
        let placed = self.venue.fill_now(
            request,
            reference,
            self.now,
            &mut self.portfolio,
            &mut venue_events,
        );
        let last = venue_events
            .iter()
            .find_map(|event| match event {
                VenueEvent::Filled { order, .. } | VenueEvent::Cancelled(order)
                    if order.id == placed.id =>
                {
                    Some(order.clone())
                }
                _ => None,
            })
            .unwrap_or_else(|| placed.clone());
        self.events.push(EngineEvent::OrderPlaced { order: placed });
        let result = self.absorb(&mut venue_events, self.now, notify);
        self.venue_events = venue_events;
        match result {
            Ok(()) => Ok(last),
            Err(EngineError::Plugin(error)) => Err(EngineError::FailedAfterFill {
                order: Box::new(last),
                error,
            }),
            Err(other) => Err(other),
        }
    }

    /// Clear the kill-switch and latched risk breaches.
    pub fn reset(&mut self) {
        let equity = self.portfolio.equity();
        self.risk.reset(self.now, equity, &mut self.risk_events);
        self.record_risk();
    }
}
