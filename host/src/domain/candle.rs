//! One OHLCV candle with exact decimal prices.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A closed candle. `ts` is the open time in epoch milliseconds. The symbol
/// and timeframe belong to the series, not to each candle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candle {
    pub ts: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
}

/// A series of candles by index, rising in open time, wherever they lie:
/// a slice in memory, or a data set's columns read from its file as they
/// are asked for (no copy of a million candles before the first is used).
pub trait CandleSeries: Sync {
    /// How many candles.
    fn len(&self) -> usize;

    /// The candle at `index` (below [`Self::len`]).
    fn candle(&self, index: usize) -> Candle;

    /// The open time of the candle at `index`, without the rest of it.
    fn open_time(&self, index: usize) -> i64 {
        self.candle(index).ts
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index of the first candle opening at or after `ts` (`len` when
    /// none does).
    fn first_from(&self, ts: i64) -> usize {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = low + (high - low) / 2;
            if self.open_time(middle) < ts {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low
    }

    /// Every candle, in memory.
    fn to_vec(&self) -> Vec<Candle> {
        (0..self.len()).map(|index| self.candle(index)).collect()
    }

    /// The candles of `range` into `out` (emptied first): how a backtest
    /// walks a series, a block at a time, so that a series read from
    /// columns builds its candles in one tight loop per block.
    fn copy_into(&self, range: std::ops::Range<usize>, out: &mut Vec<Candle>) {
        out.clear();
        out.extend(range.map(|index| self.candle(index)));
    }
}

impl CandleSeries for [Candle] {
    fn len(&self) -> usize {
        <[Candle]>::len(self)
    }

    fn candle(&self, index: usize) -> Candle {
        self[index]
    }

    fn open_time(&self, index: usize) -> i64 {
        self[index].ts
    }

    fn to_vec(&self) -> Vec<Candle> {
        <[Candle]>::to_vec(self)
    }

    fn copy_into(&self, range: std::ops::Range<usize>, out: &mut Vec<Candle>) {
        out.clear();
        out.extend_from_slice(&self[range]);
    }
}

impl CandleSeries for Vec<Candle> {
    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn candle(&self, index: usize) -> Candle {
        self.as_slice().candle(index)
    }

    fn open_time(&self, index: usize) -> i64 {
        self.as_slice().open_time(index)
    }

    fn to_vec(&self) -> Vec<Candle> {
        self.clone()
    }

    fn copy_into(&self, range: std::ops::Range<usize>, out: &mut Vec<Candle>) {
        self.as_slice().copy_into(range, out);
    }
}

/// Why a candle is not a candle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CandleError {
    #[error("high {high} is below max(open, close)")]
    HighTooLow { high: Decimal },
    #[error("low {low} is above min(open, close)")]
    LowTooHigh { low: Decimal },
    #[error("prices must be positive")]
    NonPositivePrice,
    #[error("volume {volume} is negative")]
    NegativeVolume { volume: Decimal },
    #[error("prices and volume must be at most {MAX_CANDLE_VALUE}")]
    OutOfRange,
    #[error("the open time {ts} is not between 1970 and 9999 (epoch milliseconds)")]
    TimeOutOfRange { ts: i64 },
}

/// Latest open time accepted (the last millisecond of 9999): times then
/// stay far from overflowing when a timeframe is added.
pub const MAX_CANDLE_TS: i64 = 253_402_300_799_999;

/// Largest price or volume accepted (10^15): arithmetic on candles then
/// stays far inside a decimal's range.
pub const MAX_CANDLE_VALUE: Decimal = Decimal::from_parts(2_764_472_320, 232_830, 0, false, 0);

impl Candle {
    /// Check the OHLC relations every data source must satisfy.
    pub fn validate(&self) -> Result<(), CandleError> {
        if !(0..=MAX_CANDLE_TS).contains(&self.ts) {
            return Err(CandleError::TimeOutOfRange { ts: self.ts });
        }
        if self.low <= Decimal::ZERO || self.open <= Decimal::ZERO || self.close <= Decimal::ZERO {
            return Err(CandleError::NonPositivePrice);
        }
        if self.high < self.open.max(self.close) {
            return Err(CandleError::HighTooLow { high: self.high });
        }
        if self.low > self.open.min(self.close) {
            return Err(CandleError::LowTooHigh { low: self.low });
        }
        if self.high > MAX_CANDLE_VALUE || self.volume > MAX_CANDLE_VALUE {
            return Err(CandleError::OutOfRange);
        }
        if self.volume.is_sign_negative() {
            return Err(CandleError::NegativeVolume {
                volume: self.volume,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn candle(open: Decimal, high: Decimal, low: Decimal, close: Decimal) -> Candle {
        Candle {
            ts: 0,
            open,
            high,
            low,
            close,
            volume: dec!(1),
        }
    }

    #[test]
    fn ohlc_relations_are_checked() {
        assert!(
            candle(dec!(10), dec!(12), dec!(9), dec!(11))
                .validate()
                .is_ok()
        );
        assert_eq!(
            candle(dec!(10), dec!(10.5), dec!(9), dec!(11)).validate(),
            Err(CandleError::HighTooLow { high: dec!(10.5) })
        );
        assert_eq!(
            candle(dec!(10), dec!(12), dec!(10.5), dec!(11)).validate(),
            Err(CandleError::LowTooHigh { low: dec!(10.5) })
        );
        assert_eq!(
            candle(dec!(0), dec!(12), dec!(0), dec!(11)).validate(),
            Err(CandleError::NonPositivePrice)
        );
        assert_eq!(MAX_CANDLE_VALUE, dec!(1_000_000_000_000_000));
        assert_eq!(
            candle(dec!(10), dec!(1e16), dec!(9), dec!(11)).validate(),
            Err(CandleError::OutOfRange)
        );
    }
}
