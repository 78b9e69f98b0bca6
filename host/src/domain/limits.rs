//! Per-instance plugin limits, as a bot configures them.
//!
//! Why each limit:
//! - fuel per call: a deterministic CPU budget. The same plugin on the same
//!   candles stops at the same instruction on every machine, so a backtest
//!   that runs out of budget does so reproducibly;
//! - wall-clock deadline (epoch interruption): a backstop for anything fuel
//!   does not count, such as a slow host call; never the primary limit;
//! - memory cap: linear memory may not grow past it, so one plugin cannot
//!   eat the machine;
//! - table and instance caps: bound the other resources a component can ask for.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Limits of one plugin instance. Every field has a safe default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimits {
    /// Fuel (roughly, WebAssembly instructions) per `on-candle` or `on-fill`
    /// call, and per candle of an `on-stretch` call. `describe` and `init`
    /// get ten times as much.
    #[schemars(range(min = 10_000, max = 10_000_000_000u64))]
    pub fuel_per_call: u64,
    /// Wall-clock backstop per call, in milliseconds.
    #[schemars(range(min = 1, max = 60_000))]
    pub wall_clock_ms: u64,
    /// Linear-memory cap in bytes. At least 2 MiB: a plugin built with
    /// the SDK starts with that much (its stack and heap) and never grows.
    #[schemars(range(min = 2_097_152, max = 1_073_741_824))]
    pub memory_bytes: u64,
    /// Maximum elements of any table.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub table_elements: u32,
    /// Maximum core instances (a componentised plugin needs a few).
    #[schemars(range(min = 1, max = 100))]
    pub instances: u32,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            fuel_per_call: 20_000_000,
            wall_clock_ms: 1_000,
            memory_bytes: 64 * 1024 * 1024,
            table_elements: 100_000,
            instances: 16,
        }
    }
}

impl PluginLimits {
    /// Fuel for one-off calls (`describe`, `init`), which may build schemas
    /// and tables.
    pub fn setup_fuel(&self) -> u64 {
        self.fuel_per_call.saturating_mul(10)
    }
}
