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
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use super::contract::{
    Action, Candle, Description, Fill, Market, OpenOrder, PluginView, Strategy, StrategyPre,
};
use super::error::{InitError, ParamIssue, PluginError};
use super::limits::{Limiter, PluginLimits};
use super::log::PluginLog;

/// Most actions one `on-candle` call may return.
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

/// What the host keeps per instance, reachable from host functions.
pub(crate) struct InstanceState {
    pub(crate) limiter: Limiter,
    pub(crate) log: PluginLog,
    /// The bot's open strategy orders during an `on-candle` call; empty
    /// otherwise.
    open_orders: Vec<OpenOrder>,
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

impl super::contract::stratbox::strategy::host::Host for InstanceState {
    fn open_orders(&mut self) -> Vec<OpenOrder> {
        self.open_orders.clone()
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
        let bindings = match pre.instantiate(&mut store) {
            Ok(bindings) => bindings,
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
        Ok(Self {
            store,
            bindings,
            limits,
            deadline_ticks,
            poisoned: None,
            call_observer,
        })
    }

    pub fn limits(&self) -> &PluginLimits {
        &self.limits
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
        state.ticks_left = self.deadline_ticks;
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
        self.call("describe", fuel, |bindings, store| {
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
        let answer = self.call("init", fuel, |bindings, store| {
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
        let actions = self.call("on-candle", fuel, |bindings, store| {
            bindings.call_on_candle(store, *candle, view.bot)
        });
        self.store.data_mut().open_orders.clear();
        if let (Some(observer), Some(started)) = (&self.call_observer, started) {
            (observer.0)(started.elapsed());
        }
        let actions = actions?;
        if actions.len() > MAX_ACTIONS_PER_CALL {
            let reason = format!(
                "returned {} actions, more than the {MAX_ACTIONS_PER_CALL} allowed per candle",
                actions.len()
            );
            return Err(self.violation("on-candle", reason));
        }
        Ok(actions)
    }

    /// Report a fill.
    pub fn on_fill(&mut self, fill: &Fill) -> Result<(), PluginError> {
        let fuel = self.limits.fuel_per_call;
        let started = self.call_observer.as_ref().map(|_| Instant::now());
        let outcome = self.call("on-fill", fuel, |bindings, store| {
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
