//! stratbox-host: the trading-bot host.
//!
//! Layers, lowest first (a module imports only from its own layer or below):
//! - [`domain`]: candles, timeframes and other plain market types;
//! - [`data`]: candle files and synthetic candles;
//! - [`plugin`]: the sandboxed WebAssembly strategy runtime;
//! - [`engine`]: paper venue, portfolio, risk engine and the engine step;
//! - [`backtest`]: the engine driven synchronously over candles;
//! - [`exchange`]: exchanges over the network (Binance market data);
//! - [`live`]: feeds, bot runners, the bot manager and the event bus on tokio;
//! - [`store`]: the SQLite system of record (tokens, audit, config history);
//! - [`persist`]: runners' records into the store, and bots back out of it;
//! - [`api`]: the axum control API over `live` and `store`;
//! - [`scheduling`]: the operating system's policy for the host's threads.
//!
//! See ARCHITECTURE.md at the repository root for the map and the invariants.

pub mod api;
pub mod backtest;
pub mod data;
pub mod domain;
pub mod engine;
pub mod exchange;
pub mod live;
pub mod persist;
pub mod plugin;
pub mod research;
pub mod scheduling;
pub mod store;
