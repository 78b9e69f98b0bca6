//! Candles from uploaded or imported bytes, whatever format they are in:
//! Arrow IPC / Feather files (told apart by their `ARROW1` magic) or CSV
//! (ours or Binance klines).

use super::arrow::{ArrowCandleError, read_arrow};
use super::csv::{CandleFileError, read_series_from};
use crate::domain::{Candle, Timeframe};

/// The magic an Arrow IPC file starts with.
const ARROW_MAGIC: &[u8] = b"ARROW1";

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Csv(#[from] CandleFileError),
    #[error(transparent)]
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

/// Every candle in `bytes`, as `timeframe`'s series: the first that is not
/// a candle, is out of order or is not whole candles after the one before
/// is refused with its line (CSV) or row (Arrow). (Saving the data set
/// checks the series again.)
pub fn parse_candles(bytes: Vec<u8>, timeframe: Timeframe) -> Result<Vec<Candle>, ImportError> {
    if !bytes.starts_with(ARROW_MAGIC) {
        return Ok(read_series_from(bytes.as_slice(), Some(timeframe))?);
    }
    let candles = read_arrow(arrow_buffer::Buffer::from_vec(bytes))?;
    super::series::check_series(&candles, timeframe).map_err(|(index, reason)| {
        ArrowCandleError::Row {
            row: index as u64 + 1,
            reason,
        }
    })?;
    Ok(candles)
}
