//! The glue between the generated bindings and a [`Strategy`]: one strategy
//! value per plugin instance, created by `init`, used by every later call.
//!
//! Used by [`crate::export_strategy!`]; not part of the authoring API.

use std::cell::RefCell;

use crate::params::pointer_from_serde_path;
use crate::{Action, BotView, Candle, Description, Fill, ParamError, Strategy, param_error};

/// The contract's own shapes of what crosses the boundary.
pub mod wire {
    pub use crate::bindings::stratbox::strategy::types::{BotView, Candle, Market};
}

/// Prefix of the log line the panic hook sends. The host recognises it and
/// attaches the message to the trap that follows.
pub const PANIC_PREFIX: &str = "panic: ";

thread_local! {
    /// The live strategy. A plugin instance serves one bot, and WebAssembly
    /// runs one thread, so a thread-local is the whole of the state.
    static STRATEGY: RefCell<Option<Box<dyn std::any::Any>>> = const { RefCell::new(None) };
    /// The markets `init` named; wire candles refer to them by index. Each
    /// holds a candle whose prices are overwritten per call, so the names
    /// are not copied on every candle.
    static MARKETS: RefCell<Vec<Candle>> = const { RefCell::new(Vec::new()) };
}

/// Send panic messages to the host before the trap ends the call, as one
/// line: the message, then where it was raised.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload_as_str()
            .unwrap_or("panic with a non-string payload");
        let line = match info.location() {
            Some(at) => format!("{PANIC_PREFIX}{message} (at {}:{})", at.file(), at.line()),
            None => format!("{PANIC_PREFIX}{message}"),
        };
        crate::log::error(&line.replace('\n', " "));
    }));
}

pub fn describe<S: Strategy>() -> Description {
    install_panic_hook();
    let schema = schemars::schema_for!(S::Params);
    let warmup = S::new(S::Params::default())
        .map(|strategy| strategy.warmup())
        .unwrap_or(0);
    Description {
        name: S::NAME.to_string(),
        version: S::VERSION.to_string(),
        description: S::DESCRIPTION.to_string(),
        params_schema: serde_json::to_string(&schema).expect("a derived schema is valid JSON"),
        warmup,
    }
}

pub fn init<S: Strategy>(params: &str, markets: &[wire::Market]) -> Result<u32, Vec<ParamError>> {
    install_panic_hook();
    let markets = markets
        .iter()
        .map(|market| Candle::new(&market.symbol, &market.timeframe))
        .collect();
    MARKETS.with(|cell| *cell.borrow_mut() = markets);
    let mut deserializer = serde_json::Deserializer::from_str(params);
    let params: S::Params = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        vec![param_error(
            pointer_from_serde_path(err.path()),
            err.inner().to_string(),
        )]
    })?;
    let strategy = S::new(params)?;
    let warmup = strategy.warmup();
    STRATEGY.with(|cell| *cell.borrow_mut() = Some(Box::new(strategy)));
    Ok(warmup)
}

fn with_strategy<S: Strategy, R>(f: impl FnOnce(&mut S) -> R) -> R {
    STRATEGY.with(|cell| {
        let mut slot = cell.borrow_mut();
        let strategy = slot
            .as_mut()
            .and_then(|boxed| boxed.downcast_mut::<S>())
            .expect("the host calls init before on-candle and on-fill");
        f(strategy)
    })
}

pub fn on_candle<S: Strategy>(candle: &wire::Candle, bot: &wire::BotView) -> Vec<Action> {
    with_strategy::<S, _>(|strategy| decide(strategy, candle, bot))
}

/// `on-stretch`: [`on_candle`] on each candle `host.next-candle` hands
/// out (with `bot` at that candle's equity), up to the first that yields an
/// action; that candle's actions.
pub fn on_stretch<S: Strategy>(mut bot: wire::BotView) -> Vec<Action> {
    with_strategy::<S, _>(|strategy| {
        while let Some((candle, equity)) = crate::bindings::stratbox::strategy::host::next_candle()
        {
            bot.equity = equity;
            let actions = decide(strategy, &candle, &bot);
            if !actions.is_empty() {
                return actions;
            }
        }
        Vec::new()
    })
}

/// One decision: the wire candle written into its market's candle (the
/// names are not copied per call), then the strategy's `on_candle`.
fn decide<S: Strategy>(
    strategy: &mut S,
    candle: &wire::Candle,
    bot: &wire::BotView,
) -> Vec<Action> {
    let bot = BotView::from_wire(bot);
    MARKETS.with(|cell| {
        let mut markets = cell.borrow_mut();
        let mut unnamed;
        let current = match markets.get_mut(candle.market as usize) {
            Some(market) => market,
            // The host names only markets it gave init; any other index gets
            // empty names rather than a trap.
            None => {
                unnamed = Candle::new("", "");
                &mut unnamed
            }
        };
        current.ts = candle.ts;
        current.open = candle.open;
        current.high = candle.high;
        current.low = candle.low;
        current.close = candle.close;
        current.volume = candle.volume;
        strategy.on_candle(current, &bot)
    })
}

pub fn on_fill<S: Strategy>(fill: &Fill) {
    with_strategy::<S, _>(|strategy| strategy.on_fill(fill))
}
