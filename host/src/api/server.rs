//! [`serve`]: accepts connections and runs HTTP/1.1 on each, within limits
//! nobody can push past.
//!
//! - At most `max_connections` connections are open; one more is closed as
//!   it arrives (a permit of a semaphore is held for each connection's life).
//! - A client has `header_read_timeout_secs` to send a request's headers;
//!   the same timer closes a kept-alive connection that sits idle (hyper
//!   starts it whenever it waits for a request).
//! - A request body must arrive within `body_read_timeout_secs` (a layer
//!   of the router, see `api::router`).
//! - On shutdown the listener closes, requests in flight finish (for up to
//!   [`DRAIN`]), streams end.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::{Service, ServiceExt};

use super::AppState;

/// How long requests in flight may take to finish after a shutdown began.
const DRAIN: Duration = Duration::from_secs(10);
/// Largest request head (start line and headers) read before refusing it.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Serve until `shutdown` resolves; then stop accepting and finish what is
/// in flight.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.settings.limits;
    let mut make_service = super::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let max_connections = limits.max_connections.max(1);
    let connections = Arc::new(Semaphore::new(max_connections));
    // Tells every connection to finish its request in flight and close.
    let (stopping, stop) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs.max(1)))
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, go on.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            // Full: the newcomer is closed at once.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let tower_service = match make_service.call(peer).await {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let hyper_service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            tower_service.clone().oneshot(request)
        });
        let connection = http
            .serve_connection(TokioIo::new(stream), hyper_service)
            .with_upgrades();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = async { let _ = stop.wait_for(|stopping| *stopping).await; } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    // Every connection gives its permit back when it is done.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN, connections.acquire_many(all)).await;
    Ok(())
}
