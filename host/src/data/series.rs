//! What makes a list of candles a series: every candle valid, open times
//! strictly rising, and (for a series of one timeframe) whole timeframes
//! apart, with the gaps counted.

use serde::{Deserialize, Serialize};

use crate::domain::{Candle, Timeframe};

/// Why the candle after `previous_ts` cannot follow it; the candle itself
/// is checked too.
pub fn check_next(previous_ts: Option<i64>, candle: &Candle) -> Result<(), String> {
    candle.validate().map_err(|error| error.to_string())?;
    match previous_ts {
        Some(previous) if candle.ts <= previous => Err(format!(
            "time {} is not after the previous candle's {previous}",
            candle.ts
        )),
        _ => Ok(()),
    }
}

/// How many `timeframe` candles are missing between one opening at
/// `previous` and the next at `ts` (later), or why `ts` is not a whole
/// number of candles after it.
pub fn missing_between(previous: i64, ts: i64, timeframe: Timeframe) -> Result<u64, String> {
    let apart = ts - previous;
    let step = timeframe.millis();
    if apart % step != 0 {
        return Err(format!(
            "time {ts} is {apart} ms after the previous candle, not a whole number of {timeframe} candles"
        ));
    }
    Ok((apart / step - 1) as u64)
}

/// Missing candles in a series: where they are and how many in all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Gaps {
    /// Stretches with candles missing.
    pub count: u64,
    /// Candles missing in all.
    pub missing: u64,
    /// The first few stretches: the open time of the candle before each
    /// and how many are missing after it.
    pub first: Vec<Gap>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Gap {
    pub after_ts: i64,
    pub missing: u64,
}

/// Gaps listed in [`Gaps::first`].
const LISTED_GAPS: usize = 20;

/// A series' rows checked as one timeframe's candles; the first bad row is
/// reported by its index (0-based) and why.
pub fn check_series(candles: &[Candle], timeframe: Timeframe) -> Result<Gaps, (usize, String)> {
    let mut gaps = Gaps::default();
    let mut previous: Option<i64> = None;
    for (index, candle) in candles.iter().enumerate() {
        check_next(previous, candle).map_err(|reason| (index, reason))?;
        if let Some(previous) = previous {
            let missing = missing_between(previous, candle.ts, timeframe)
                .map_err(|reason| (index, reason))?;
            if missing > 0 {
                gaps.count += 1;
                gaps.missing += missing;
                if gaps.first.len() < LISTED_GAPS {
                    gaps.first.push(Gap {
                        after_ts: previous,
                        missing,
                    });
                }
            }
        }
        previous = Some(candle.ts);
    }
    if candles.len() >= 2 && gaps.count == candles.len() as u64 - 1 {
        return Err((1, never_adjacent(candles, timeframe)));
    }
    Ok(gaps)
}

/// Milliseconds between the two closest candles of a series in time
/// order; None for fewer than two.
pub fn closest_step(candles: &[Candle]) -> Option<i64> {
    candles.windows(2).map(|pair| pair[1].ts - pair[0].ts).min()
}

/// Why a series none of whose candles follows the one before directly is
/// not one of `timeframe` (5m candles imported as 1m: all gaps, no data),
/// naming the timeframe its closest two candles are apart.
fn never_adjacent(candles: &[Candle], timeframe: Timeframe) -> String {
    let closest = closest_step(candles).unwrap_or_default();
    let apart = Timeframe::from_millis(closest)
        .map_or_else(|| format!("{closest} ms"), |found| found.to_string());
    format!(
        "no two candles are one {timeframe} apart (the closest two are {apart} apart): these are not {timeframe} candles"
    )
}
