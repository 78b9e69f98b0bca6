//! Candle data: files in the formats people have (our CSV, Binance klines)
//! and reproducible synthetic series.

mod csv;
mod synth;

pub use self::csv::{CandleFileError, read_candles, read_candles_from, write_candles};
pub use synth::{SynthGenerator, SynthParams, synthesize};
