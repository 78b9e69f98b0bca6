//! Candle data: files in the formats people have (our CSV, Binance klines,
//! Arrow IPC / Feather), stored data sets, and reproducible synthetic series.

mod arrow;
mod csv;
mod dataset;
mod import;
mod series;
mod synth;

pub use self::arrow::{
    ArrowCandleError, ArrowWriteError, CandleColumns, read_arrow, read_arrow_columns, write_arrow,
};
pub use dataset::{DataSetError, DataSetInfo, DataSetKey, DataSets, content_hash};
pub use import::{ImportError, parse_candles};
pub use series::{Gap, Gaps, check_next, check_series, closest_step};

pub use self::csv::{
    CandleFileError, append_candles, read_candles, read_candles_from, write_candles,
};
pub use synth::{SynthGenerator, SynthParams, synthesize};
