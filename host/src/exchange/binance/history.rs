//! Kline history in pages: `GET /api/v3/klines` from a start time on, a
//! thousand at a time, each page handed over as it arrives so that a
//! caller can keep it and resume an interrupted download after it. Only
//! closed klines are taken (open time plus timeframe not after Binance's
//! clock). Pacing and back-off are the [`RestClient`]'s.

use super::rest::{MAX_KLINES, RestClient, RestError};
use crate::domain::{Candle, CandleError, Timeframe};

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    Rest(#[from] RestError),
    #[error("Binance sent an invalid kline at {ts}: {reason}")]
    Invalid { ts: i64, reason: CandleError },
    #[error("cannot keep the downloaded candles: {0}")]
    Keep(String),
}

/// How far a download is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadProgress {
    /// Candles fetched by this call.
    pub fetched: u64,
    /// Candles between the start and the end, as if none were missing.
    pub expected: u64,
}

/// Fetch the closed klines of `symbol` with open times in `[from, to]`,
/// calling `keep` with each page in order and `progress` after it. Returns
/// the number of candles fetched.
pub async fn download(
    client: &RestClient,
    symbol: &str,
    timeframe: Timeframe,
    from: i64,
    to: i64,
    mut keep: impl FnMut(&[Candle]) -> Result<(), String>,
    mut progress: impl FnMut(DownloadProgress),
) -> Result<u64, DownloadError> {
    let step = timeframe.millis();
    let now = client.server_time().await?;
    let end = to.min(now - step);
    let expected = if end >= from {
        ((end - from) / step + 1) as u64
    } else {
        0
    };
    let mut fetched = 0;
    let mut start = from;
    while start <= end {
        let rows = client
            .klines(symbol, timeframe, Some(start), Some(end), MAX_KLINES)
            .await?;
        let mut page = Vec::with_capacity(rows.len());
        for row in rows {
            let candle = row.candle();
            if candle.ts < start || candle.ts > end {
                continue;
            }
            candle.validate().map_err(|reason| DownloadError::Invalid {
                ts: candle.ts,
                reason,
            })?;
            if page
                .last()
                .is_some_and(|last: &Candle| last.ts >= candle.ts)
            {
                continue; // never twice, never backwards
            }
            page.push(candle);
        }
        let Some(last) = page.last() else { break };
        start = last.ts + step;
        keep(&page).map_err(DownloadError::Keep)?;
        fetched += page.len() as u64;
        progress(DownloadProgress { fetched, expected });
    }
    Ok(fetched)
}
