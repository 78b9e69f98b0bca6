//! The control UI: the built React app (`ui/dist`), served at `/` with the
//! API under `/api/v1`. Any path that is not a file of the build answers
//! `index.html`, so deep links (`/bots/ema-btc/config`) open the app at that
//! page, except paths under `/api` and `/assets`. Without a build, `/` says
//! how to make one.

use std::path::Path;

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use tower_http::services::{ServeDir, ServeFile};

/// The service for every path outside the API (paths under `/api` are the
/// API's, answered there, unknown ones included). A missing file of the
/// build's `assets/` is a 404, not the app's page: a script an old page
/// asks for after an upgrade must fail as a script, not load as HTML.
pub fn service<S: Clone + Send + Sync + 'static>(dir: &Path) -> Router<S> {
    let index = dir.join("index.html");
    if !index.is_file() {
        return Router::new().fallback(not_built);
    }
    let files = ServeDir::new(dir).fallback(ServeFile::new(index));
    Router::new()
        .route_service("/assets/{*file}", ServeDir::new(dir))
        .fallback_service(files)
}

async fn not_built() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(
            "<!doctype html><title>stratbox</title><p>The control UI is not built: run <code>make ui</code> \
             (or <code>make run</code>). The API is at <a href=\"/api/v1/health\">/api/v1</a>.</p>",
        ),
    )
}
