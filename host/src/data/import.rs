//! Candles from uploaded or imported bytes, whatever format they are in:
//! Arrow IPC / Feather files (told apart by their `ARROW1` magic) or CSV
//! (ours or Binance klines).

use super::arrow::{ArrowCandleError, read_arrow};
use super::csv::{CandleFileError, read_candles_from};
use crate::domain::Candle;

/// The magic an Arrow IPC file starts with.
const ARROW_MAGIC: &[u8] = b"ARROW1";

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Csv(#[from] CandleFileError),
    #[error("{0}")]
    Arrow(#[from] ArrowCandleError),
}

impl ImportError {
    /// The line (CSV) or row (Arrow) at fault, if one is.
    pub fn line(&self) -> Option<u64> {
        match self {
            ImportError::Csv(CandleFileError::Row { line, .. }) => Some(*line),
            ImportError::Arrow(ArrowCandleError::Row { row, .. }) => Some(*row),
            _ => None,
        }
    }
}

/// Every candle in `bytes`; rows that are not candles are refused with
/// their line (CSV) or row (Arrow). Order and spacing are checked when the
/// candles are saved as a data set.
pub fn parse_candles(bytes: Vec<u8>) -> Result<Vec<Candle>, ImportError> {
    if bytes.starts_with(ARROW_MAGIC) {
        let candles = read_arrow(arrow_buffer::Buffer::from_vec(bytes))?;
        for (index, candle) in candles.iter().enumerate() {
            candle.validate().map_err(|error| ArrowCandleError::Row {
                row: index as u64 + 1,
                reason: error.to_string(),
            })?;
        }
        Ok(candles)
    } else {
        Ok(read_candles_from(bytes.as_slice())?)
    }
}
