//! The sandboxed strategy runtime.
//!
//! Strategies are WebAssembly components that implement the contract in
//! `sdk/wit/`. This module loads them (componentising core modules, refusing
//! anything that does not fit the contract or imports what the host does not
//! offer), compiles them once per content hash with an on-disk cache, and runs
//! instances under hard limits: fuel per call (deterministic CPU budget), an
//! epoch deadline (wall-clock backstop), a linear-memory cap and table and
//! instance caps. A failed call poisons its instance and nothing else.
//!
//! Files: `runtime` (the shared engine and loading), `contract` (generated
//! bindings), `limits` (per-instance limits), `instance` (calls and error
//! mapping), `cache` (compiled artefacts), `schema` (untrusted parameter
//! schemas; `schema_cost` bounds the work of validating against them), `log` (rate-limited plugin logs), `registry` (name + version
//! lookup), `error` (the error types).

mod cache;
pub mod contract;
mod error;
mod instance;
mod limits;
mod log;
mod registry;
mod runtime;
mod schema;
mod schema_cost;

pub use cache::CacheOutcome;

/// The content hash a plugin is known by (SHA-256 of its bytes, hex).
pub fn content_hash(bytes: &[u8]) -> String {
    cache::sha256_hex(bytes)
}
pub use error::{InitError, LoadError, ParamIssue, PluginError, in_bot_config};
pub use instance::{Interrupt, PluginInstance};
pub use limits::PluginLimits;
pub use registry::{PluginRegistry, RegistryError};
pub use runtime::{CallObserver, Plugin, PluginInfo, PluginRuntime, RuntimeConfig};
pub use schema::{MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH, SchemaError};
