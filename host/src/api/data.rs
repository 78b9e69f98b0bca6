//! /data: stored candle data sets (see `data::DataSets`). Upload candles
//! as CSV (ours or Binance klines) or an Arrow IPC / Feather file; they are
//! checked whole before anything is stored (a bad row is refused with its
//! line), and replace what the data set held. Download any range as CSV.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;

use super::AppState;
use super::auth::Role;
use super::extract::{ApiPath, ApiQuery, CandleBody};
use super::middleware::AuditNote;
use super::openapi::Endpoint;
use super::problem::ApiError;
use super::system::query_range;
use super::views::{DataSetView, Page};
use crate::data::{DataSetError, DataSetKey, DataSets, ImportError, parse_candles, write_candles};
use crate::domain::Timeframe;
use crate::domain::config::ConfigIssue;

const UPLOAD_QUERY: &[(&str, &str)] = &[
    (
        "symbol",
        "The data set's symbol, e.g. BTCUSDT (A-Z, 0-9, `.`, `-`)",
    ),
    ("timeframe", "The candles' timeframe, e.g. 1m"),
];
const RANGE_QUERY: &[(&str, &str)] = &[
    (
        "from",
        "First candle's open time (RFC 3339 time, YYYY-MM-DD date or epoch ms), inclusive",
    ),
    (
        "to",
        "Last candle's open time (RFC 3339 time, YYYY-MM-DD date or epoch ms), inclusive: a date takes in that whole day",
    ),
];

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get("/data", "Stored data sets: symbol, timeframe, first and last candle, count, gaps, size, content hash", Role::Viewer, get(list))
            .returns::<Page<DataSetView>>(),
        Endpoint::post("/data", "Store candles (CSV, Binance kline CSV, or Arrow IPC / Feather) as the data set symbol/timeframe, replacing it; 422 names the bad line and stores nothing", Role::Operator, post(upload))
            .query(UPLOAD_QUERY)
            .candle_body()
            .status(201)
            .returns::<DataSetView>(),
        Endpoint::get("/data/{symbol}/{timeframe}", "A data set's candles as CSV (ts,open,high,low,close,volume), optionally a range", Role::Viewer, get(download))
            .query(RANGE_QUERY)
            .returns_media("text/csv"),
        Endpoint::delete("/data/{symbol}/{timeframe}", "Delete a data set", Role::Operator, delete(remove))
            .status(204),
    ]
}

fn data_sets(app: &AppState) -> DataSets {
    DataSets::new(&app.settings.data_dir)
}

fn key_of(symbol: &str, timeframe: &str) -> Result<DataSetKey, ApiError> {
    let timeframe: Timeframe = timeframe
        .parse()
        .map_err(|e: crate::domain::TimeframeError| {
            ApiError::malformed_at("/timeframe", e.to_string())
        })?;
    DataSetKey::new(symbol, timeframe).map_err(|e| ApiError::malformed_at("/symbol", e.to_string()))
}

/// A refused import as 422 with the line (or row) at fault.
fn refused(line: Option<u64>, message: String) -> ApiError {
    ApiError::invalid(vec![ConfigIssue {
        pointer: line.map_or_else(String::new, |line| format!("/{line}")),
        message,
    }])
}

impl From<DataSetError> for ApiError {
    fn from(error: DataSetError) -> Self {
        match error {
            DataSetError::NotFound(_) => ApiError::not_found(error.to_string()),
            DataSetError::Row { row, .. } => refused(Some(row), error.to_string()),
            DataSetError::Empty => refused(None, error.to_string()),
            DataSetError::BadSymbol(_)
            | DataSetError::BadName(_)
            | DataSetError::BadTimeframe(_) => ApiError::bad_request(error.to_string()),
            DataSetError::Unreadable { .. } | DataSetError::Io(_) => {
                ApiError::internal(error.to_string())
            }
        }
    }
}

/// Blocking data set work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ApiError::bad_request("the candles could not be read"))?
}

async fn list(State(app): State<AppState>) -> Result<axum::Json<Page<DataSetView>>, ApiError> {
    let sets = data_sets(&app);
    let infos = blocking(move || Ok(sets.list()?)).await?;
    Ok(axum::Json(Page {
        items: infos.iter().map(DataSetView::from).collect(),
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    symbol: Option<String>,
    timeframe: Option<String>,
}

async fn upload(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    CandleBody(body): CandleBody,
) -> Result<Response, ApiError> {
    let symbol = query.symbol.ok_or_else(|| {
        ApiError::malformed_at("/symbol", "the symbol query parameter is required")
    })?;
    let timeframe = query.timeframe.ok_or_else(|| {
        ApiError::malformed_at("/timeframe", "the timeframe query parameter is required")
    })?;
    let key = key_of(&symbol, &timeframe)?;
    let sets = data_sets(&app);
    let info = blocking(move || {
        let candles = parse_candles(body.to_vec(), key.timeframe)
            .map_err(|error: ImportError| refused(error.line(), error.to_string()))?;
        Ok(sets.save(&key, &candles)?)
    })
    .await?;
    let note = AuditNote::made(
        info.key().to_string(),
        format!("{} candles, sha256 {}", info.count, info.content_hash),
    );
    Ok(note.on((StatusCode::CREATED, axum::Json(DataSetView::from(&info))).into_response()))
}

#[derive(Debug, Deserialize)]
struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

async fn download(
    State(app): State<AppState>,
    ApiPath((symbol, timeframe)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> Result<Response, ApiError> {
    let key = key_of(&symbol, &timeframe)?;
    let (from, to) = query_range(query.from.as_deref(), query.to.as_deref())?;
    let sets = data_sets(&app);
    let file_name = format!("{}_{}.csv", key.symbol, key.timeframe);
    let csv = blocking(move || {
        let candles = sets.load_range(&key, from, to)?;
        let mut csv = Vec::with_capacity(candles.len() * 64);
        write_candles(&mut csv, &candles).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(csv)
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        csv,
    )
        .into_response())
}

async fn remove(
    State(app): State<AppState>,
    ApiPath((symbol, timeframe)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let key = key_of(&symbol, &timeframe)?;
    let sets = data_sets(&app);
    blocking(move || Ok(sets.delete(&key)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
