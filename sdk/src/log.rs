//! Logging to the host.
//!
//! Lines go to the host's log, tagged with the plugin and the bot. The host
//! rate-limits them, so log decisions, not every candle. Outside WebAssembly
//! (native tests and benchmarks) lines are discarded.

use crate::LogLevel;

/// Send one line to the host.
pub fn write(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::stratbox::strategy::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (level, message);
}

pub fn debug(message: &str) {
    write(LogLevel::Debug, message);
}

pub fn info(message: &str) {
    write(LogLevel::Info, message);
}

pub fn warn(message: &str) {
    write(LogLevel::Warn, message);
}

pub fn error(message: &str) {
    write(LogLevel::Error, message);
}
