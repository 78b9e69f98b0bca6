//! /market/candles: recent candles of a running feed, for charts.

use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;

use super::AppState;
use super::auth::Role;
use super::extract::ApiQuery;
use super::openapi::Endpoint;
use super::problem::ApiError;
use super::views::{CandleView, Page};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/market/candles",
            "Recent candles of a feed that a bot uses, oldest first",
            Role::Viewer,
            get(candles),
        )
        .query(&[
            ("symbol", "e.g. BTCUSDT (required)"),
            ("timeframe", "e.g. 1m (required)"),
            ("limit", "candles (1 to 5000, default 500)"),
        ])
        .returns::<Page<CandleView>>(),
    ]
}

#[derive(Debug, Clone, Deserialize)]
pub struct CandlesQuery {
    symbol: String,
    /// A name the host knows, or a 400 at `/timeframe`.
    timeframe: crate::domain::Timeframe,
    limit: Option<usize>,
}

async fn candles(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<CandlesQuery>,
) -> Result<axum::Json<Page<CandleView>>, ApiError> {
    let limit = match query.limit {
        None => 500,
        Some(limit @ 1..=5000) => limit,
        Some(_) => {
            return Err(ApiError::malformed_at(
                "/limit",
                "limit must be between 1 and 5000",
            ));
        }
    };
    let candles = app
        .manager
        .feeds()
        .recent(&query.symbol, query.timeframe.name(), limit)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no bot trades {} on {}: no feed to read",
                query.symbol,
                query.timeframe.name()
            ))
        })?;
    Ok(axum::Json(Page {
        items: candles.iter().map(CandleView::from).collect(),
        next_cursor: None,
    }))
}
