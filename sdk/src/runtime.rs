//! The glue between the generated bindings and a [`Strategy`]: one strategy
//! value per plugin instance, created by `init`, used by every later call.
//!
//! Used by [`crate::export_strategy!`]; not part of the authoring API.

use std::cell::RefCell;

use crate::params::pointer_from_serde_path;
use crate::{Action, BotView, Candle, Description, Fill, ParamError, Strategy, param_error};

/// Prefix of the log line the panic hook sends. The host recognises it and
/// attaches the message to the trap that follows.
pub const PANIC_PREFIX: &str = "panic: ";

thread_local! {
    /// The live strategy. A plugin instance serves one bot, and WebAssembly
    /// runs one thread, so a thread-local is the whole of the state.
    static STRATEGY: RefCell<Option<Box<dyn std::any::Any>>> = const { RefCell::new(None) };
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

pub fn init<S: Strategy>(params: &str) -> Result<u32, Vec<ParamError>> {
    install_panic_hook();
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

pub fn on_candle<S: Strategy>(candle: &Candle, bot: &BotView) -> Vec<Action> {
    with_strategy::<S, _>(|strategy| strategy.on_candle(candle, bot))
}

pub fn on_fill<S: Strategy>(fill: &Fill) {
    with_strategy::<S, _>(|strategy| strategy.on_fill(fill))
}
