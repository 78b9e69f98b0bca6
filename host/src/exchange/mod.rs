//! Exchanges over the network: their public market data today, their order
//! APIs next. Each exchange lives in its own folder and speaks its own
//! protocol; what the rest of the host sees are candles (`domain`) and the
//! [`binance::KlineSink`]-style traits the live feeds implement.
//!
//! Must not: know about bots, plugins, the engine or the store.

pub mod binance;
