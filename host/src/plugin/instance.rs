//! One plugin instance: its store, its limits, and every call into it.
//!
//! Each call refills the fuel budget and re-arms the wall-clock deadline, so
//! the limits apply per call. The deadline is counted in epoch ticks by a
//! callback that also looks at the instance's [`Interrupt`]: the host can
//! stop a call that is still running (a kill, the emergency stop) within
//! one tick, from any thread. A call that fails for any reason is
//! classified into a [`PluginError`] and poisons the instance: the
//! component model does not allow re-entering an instance after a trap, and
//! a strategy whose state is half-updated must not trade anyway.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use wasmtime::component::{Linker, TypedFunc};
use wasmtime::{Engine, Store, StoreContextMut, Trap, UpdateDeadline};

use super::contract::{
    Action, BotView, Candle, Description, Fill, Market, OpenOrder, PluginView, Strategy,
    StrategyPre, Stretch, StretchFailure,
};
use super::error::{InitError, ParamIssue, PluginError};
use super::limits::{Limiter, PluginLimits};
use super::log::PluginLog;

/// Most actions one `on-candle` (or `on-stretch`) call may return.
pub const MAX_ACTIONS_PER_CALL: usize = 1_000;
/// Most parameter errors kept from one `init` call.
const MAX_PARAM_ERRORS: usize = 100;
/// Longest pointer or message kept from a plugin's parameter error.
const MAX_ISSUE_CHARS: usize = 1_000;

/// Asks the calls of an instance to stop. Cheap to clone and to check; the
/// flag is read by the epoch callback, so a running call stops within one
/// epoch tick, and a call that starts while it is set stops at once.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Stop the current call (and any later one until [`Interrupt::clear`]).
    pub fn request(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn clear(&self) {
        self.0.store(false, Ordering::Release);
    }

    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The `on-stretch` export of a plugin built for the `batched-strategy`
/// world: it takes the stretch's candles from `host.next-candle` and
/// returns the actions of the last one it took.
type OnStretch = TypedFunc<(BotView,), (Vec<Action>,)>;

/// Offer `host.next-candle` in `linker` as the limits need it: each candle
/// taken gets a full call's budget (fuel and wall clock), as if it were an
/// `on-candle` call of its own. (The bindings' version sees only the
/// instance's state, not the store the budget lives in.)
pub(crate) fn link_next_candle(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker
        .instance(super::contract::HOST_INTERFACE)?
        .func_wrap(
            "next-candle",
            |mut store: StoreContextMut<'_, InstanceState>, (): ()| {
                let next = store.data_mut().take_next_candle();
                if next.is_some() {
                    let (fuel, ticks) = store.data().candle_budget;
                    store.set_fuel(fuel)?;
                    store.data_mut().ticks_left = ticks;
                }
                Ok((next,))
            },
        )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// What the host keeps per instance, reachable from host functions.
pub(crate) struct InstanceState {
    pub(crate) limiter: Limiter,
    pub(crate) log: PluginLog,
    /// The bot's open strategy orders during an `on-candle` call; empty
    /// otherwise.
    open_orders: Vec<OpenOrder>,
    /// The candles of the current `on-stretch` call, each with the bot's
    /// equity at its close; empty otherwise.
    stretch: Vec<(Candle, f64)>,
    /// How many of them the plugin has taken.
    taken: usize,
    /// Whether it asked for a candle after the last one: its actions would
    /// then come after it learnt the stretch was over, which says
    /// something of the candle after it.
    exhausted: bool,
    /// The budget each candle taken gets: a call's fuel and epoch ticks.
    candle_budget: (u64, u64),
    /// Epoch ticks the current call may still run.
    ticks_left: u64,
    interrupt: Interrupt,
    /// Set when the interrupt stopped the current call.
    interrupted: bool,
}

impl InstanceState {
    /// Called by wasmtime at every epoch tick while a call runs.
    fn on_epoch_tick(&mut self) -> UpdateDeadline {
        if self.interrupt.is_requested() {
            self.interrupted = true;
            return UpdateDeadline::Interrupt;
        }
        self.ticks_left = self.ticks_left.saturating_sub(1);
        if self.ticks_left == 0 {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Continue(1)
        }
    }
}

impl InstanceState {
    /// The stretch's next candle, counted as taken; none after the last.
    fn take_next_candle(&mut self) -> Option<(Candle, f64)> {
        let Some(next) = self.stretch.get(self.taken).copied() else {
            self.exhausted = !self.stretch.is_empty();
            return None;
        };
        self.taken += 1;
        Some(next)
    }
}

impl super::contract::stratbox::strategy::host::Host for InstanceState {
    fn open_orders(&mut self) -> Vec<OpenOrder> {
        self.open_orders.clone()
    }

    /// What the bindings require; the linker offers [`link_next_candle`]'s
    /// version instead, which also renews the budget.
    fn next_candle(&mut self) -> Option<(Candle, f64)> {
        self.take_next_candle()
    }

    fn log(&mut self, level: super::contract::LogLevel, message: String) {
        self.log.write(level, message);
    }
}

impl super::contract::stratbox::strategy::types::Host for InstanceState {}

/// A live strategy instance for one bot. Not shared: one caller at a time.
pub struct PluginInstance {
    store: Store<InstanceState>,
    bindings: Strategy,
    /// `on-stretch`, when the plugin exports it.
    on_stretch: Option<OnStretch>,
    limits: PluginLimits,
    /// Epoch ticks per call: the wall-clock limit in units of the tick.
    deadline_ticks: u64,
    /// The failure that made this instance unusable, if any.
    poisoned: Option<PluginError>,
    /// Told how long each strategy call took, when someone measures.
    call_observer: Option<super::CallObserver>,
}

impl PluginInstance {
    pub(crate) fn new(
        engine: &Engine,
        pre: &StrategyPre<InstanceState>,
        limits: PluginLimits,
        epoch_tick: Duration,
        plugin: Arc<str>,
        bot: Arc<str>,
        call_observer: Option<super::CallObserver>,
    ) -> Result<Self, PluginError> {
        let tick_ms = epoch_tick.as_millis().max(1) as u64;
        // One tick more than the limit: the first tick may come at once.
        let deadline_ticks = limits.wall_clock_ms.div_ceil(tick_ms).saturating_add(1);
        let state = InstanceState {
            limiter: Limiter::new(limits),
            log: PluginLog::new(plugin, bot),
            open_orders: Vec::new(),
            stretch: Vec::new(),
            taken: 0,
            exhausted: false,
            candle_budget: (0, 0),
            ticks_left: deadline_ticks,
            interrupt: Interrupt::default(),
            interrupted: false,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limiter);
        store
            .set_fuel(limits.setup_fuel())
            .map_err(|err| PluginError::Instantiate(err.to_string()))?;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut context| Ok(context.data_mut().on_epoch_tick()));
        let instantiated = pre
            .instance_pre()
            .instantiate(&mut store)
            .and_then(|instance| {
                let bindings = Strategy::new(&mut store, &instance)?;
                Ok((instance, bindings))
            });
        let (instance, bindings) = match instantiated {
            Ok(instantiated) => instantiated,
            Err(err) => {
                if let Some((_, desired)) = store.data().limiter.memory_denied {
                    return Err(PluginError::MemoryExceeded {
                        call: "instantiate",
                        cap_bytes: limits.memory_bytes,
                        desired_bytes: desired as u64,
                    });
                }
                return Err(PluginError::Instantiate(format!("{err:#}")));
            }
        };
        let on_stretch = match instance.get_func(&mut store, "on-stretch") {
            None => None,
            Some(func) => Some(func.typed(&store).map_err(|err| {
                PluginError::Instantiate(format!(
                    "its export `on-stretch` does not match the contract: {err:#}"
                ))
            })?),
        };
        Ok(Self {
            store,
            bindings,
            on_stretch,
            limits,
            deadline_ticks,
            poisoned: None,
            call_observer,
        })
    }

    pub fn limits(&self) -> &PluginLimits {
        &self.limits
    }

    /// Linear memory this instance holds, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.store.data().limiter.memory_bytes
    }

    /// The failure that poisoned this instance, if any.
    pub fn poisoned(&self) -> Option<&PluginError> {
        self.poisoned.as_ref()
    }

    /// Let `interrupt` stop this instance's calls (one per bot, kept across
    /// the instances a bot runs).
    pub fn attach_interrupt(&mut self, interrupt: Interrupt) {
        self.store.data_mut().interrupt = interrupt;
    }

    /// Run one call under fresh limits and classify any failure.
    fn call<R>(
        &mut self,
        call: &'static str,
        fuel: u64,
        ticks: u64,
        body: impl FnOnce(&Strategy, &mut Store<InstanceState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        if let Some(cause) = &self.poisoned {
            return Err(PluginError::Poisoned(Box::new(cause.clone())));
        }
        let prepared = self.store.set_fuel(fuel);
        self.store.set_epoch_deadline(1);
        let state = self.store.data_mut();
        state.log.panic_message = None;
        state.limiter.memory_denied = None;
        state.ticks_left = ticks;
        state.interrupted = false;
        if state.interrupt.is_requested() {
            let error = PluginError::Interrupted { call };
            self.poisoned = Some(error.clone());
            return Err(error);
        }
        let outcome = prepared.and_then(|()| body(&self.bindings, &mut self.store));
        outcome.map_err(|err| {
            let error = self.classify(call, fuel, err);
            self.poisoned = Some(error.clone());
            error
        })
    }

    fn classify(&self, call: &'static str, fuel: u64, err: wasmtime::Error) -> PluginError {
        let state = self.store.data();
        if let Some((_, desired)) = state.limiter.memory_denied {
            return PluginError::MemoryExceeded {
                call,
                cap_bytes: self.limits.memory_bytes,
                desired_bytes: desired as u64,
            };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => PluginError::FuelExhausted { call, budget: fuel },
            Some(Trap::Interrupt) if state.interrupted => PluginError::Interrupted { call },
            Some(Trap::Interrupt) => PluginError::DeadlineExceeded {
                call,
                limit_ms: self.limits.wall_clock_ms,
            },
            Some(Trap::StackOverflow) => PluginError::StackOverflow { call },
            _ => match &state.log.panic_message {
                Some(message) => PluginError::Panicked {
                    call,
                    message: message.clone(),
                },
                // The root cause is the trap itself ("wasm trap: ..."),
                // without wasmtime's multi-line backtrace.
                None => PluginError::Trapped {
                    call,
                    reason: err.root_cause().to_string(),
                },
            },
        }
    }

    /// Poison the instance for a contract violation found after the call.
    fn violation(&mut self, call: &'static str, reason: String) -> PluginError {
        let error = PluginError::Contract { call, reason };
        self.poisoned = Some(error.clone());
        error
    }

    pub fn describe(&mut self) -> Result<Description, PluginError> {
        let fuel = self.limits.setup_fuel();
        self.call("describe", fuel, self.deadline_ticks, |bindings, store| {
            bindings.call_describe(store)
        })
    }

    /// Configure the strategy for the bot's market. Parameter errors from
    /// the plugin come back as [`InitError::Params`]; the instance must then
    /// be discarded.
    pub fn init(&mut self, params: &Value, market: &Market) -> Result<u32, InitError> {
        let text = params.to_string();
        let fuel = self.limits.setup_fuel();
        let markets = std::slice::from_ref(market);
        let answer = self.call("init", fuel, self.deadline_ticks, |bindings, store| {
            bindings.call_init(store, &text, markets)
        })?;
        answer.map_err(|errors| {
            let issues = errors
                .into_iter()
                .take(MAX_PARAM_ERRORS)
                .map(|error| ParamIssue {
                    pointer: normalise_pointer(error.path.chars().take(MAX_ISSUE_CHARS).collect()),
                    message: error.message.chars().take(MAX_ISSUE_CHARS).collect(),
                })
                .collect();
            self.poisoned = Some(PluginError::Contract {
                call: "init",
                reason: "parameters were refused".into(),
            });
            InitError::Params(issues)
        })
    }

    /// Decide on one candle.
    pub fn on_candle(
        &mut self,
        candle: &Candle,
        view: &PluginView,
    ) -> Result<Vec<Action>, PluginError> {
        let fuel = self.limits.fuel_per_call;
        let started = self.call_observer.as_ref().map(|_| Instant::now());
        self.store
            .data_mut()
            .open_orders
            .clone_from(&view.open_orders);
        let actions = self.call("on-candle", fuel, self.deadline_ticks, |bindings, store| {
            bindings.call_on_candle(store, *candle, view.bot)
        });
        self.store.data_mut().open_orders.clear();
        if let (Some(observer), Some(started)) = (&self.call_observer, started) {
            (observer.0)(started.elapsed());
        }
        let actions = actions?;
        self.check_action_count("on-candle", actions)
    }

    /// Whether the plugin decides on stretches of candles in one call
    /// ([`Self::on_candles`]).
    pub fn decides_stretches(&self) -> bool {
        self.on_stretch.is_some()
    }

    /// Decide on a stretch of candles (each with the bot as of its close)
    /// in one call, up to the first candle that yields an action: how many
    /// candles were decided and that candle's actions. The plugin takes the
    /// candles one by one (`host.next-candle`), so it decides on each
    /// before it sees the next, and may not act after it asked past the
    /// last. Each candle taken gets the budget of an `on-candle` call. A
    /// plugin without `on-stretch` is called one candle at a time.
    pub fn on_candles(
        &mut self,
        stretch: &Stretch,
    ) -> Result<(usize, Vec<Action>), StretchFailure> {
        let Some(on_stretch) = self.on_stretch else {
            return stretch.decide_one_at_a_time(|candle, view| self.on_candle(candle, view));
        };
        let fuel = self.limits.fuel_per_call;
        let ticks = self.deadline_ticks;
        let state = self.store.data_mut();
        state.stretch.clear();
        state.stretch.extend_from_slice(&stretch.candles);
        state.taken = 0;
        state.exhausted = false;
        state.candle_budget = (fuel, ticks);
        // Its failures are a candle's (each taken candle has the limits of
        // an `on-candle` call): named as the author wrote them, not after
        // the export that batches them.
        let answer = self.call("on-candle", fuel, ticks, |_, store| {
            on_stretch
                .call(store, (stretch.bot,))
                .map(|(actions,)| actions)
        });
        let state = self.store.data_mut();
        let taken = std::mem::take(&mut state.taken);
        let exhausted = std::mem::take(&mut state.exhausted);
        state.stretch.clear();
        // (Not told to the call observer: it measures one candle's call.)
        // A failure is at the last candle taken (the first if none was).
        let failed = |error| StretchFailure {
            candle: taken.max(1),
            error,
        };
        let actions = answer.map_err(failed)?;
        if taken == 0 && !stretch.is_empty() {
            let reason = "returned without taking a candle of its stretch".to_string();
            return Err(failed(self.violation("on-stretch", reason)));
        }
        if exhausted && !actions.is_empty() {
            let reason = "returned actions after asking for a candle past the stretch's last: \
                          a decision must come before the next candle is asked for"
                .to_string();
            return Err(failed(self.violation("on-stretch", reason)));
        }
        let actions = self
            .check_action_count("on-stretch", actions)
            .map_err(failed)?;
        Ok((taken, actions))
    }

    /// At most [`MAX_ACTIONS_PER_CALL`] actions a candle.
    fn check_action_count(
        &mut self,
        call: &'static str,
        actions: Vec<Action>,
    ) -> Result<Vec<Action>, PluginError> {
        if actions.len() > MAX_ACTIONS_PER_CALL {
            let reason = format!(
                "returned {} actions, more than the {MAX_ACTIONS_PER_CALL} allowed per candle",
                actions.len()
            );
            return Err(self.violation(call, reason));
        }
        Ok(actions)
    }

    /// Report a fill.
    pub fn on_fill(&mut self, fill: &Fill) -> Result<(), PluginError> {
        let fuel = self.limits.fuel_per_call;
        let started = self.call_observer.as_ref().map(|_| Instant::now());
        let outcome = self.call("on-fill", fuel, self.deadline_ticks, |bindings, store| {
            bindings.call_on_fill(store, fill)
        });
        if let (Some(observer), Some(started)) = (&self.call_observer, started) {
            (observer.0)(started.elapsed());
        }
        outcome
    }
}

/// Plugins report paths as JSON Pointers; accept `slow` for `/slow` too.
fn normalise_pointer(path: String) -> String {
    if path.is_empty() || path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    }
}
