//! Real time: the event bus over a WebSocket (`/ws`) and as Server-Sent
//! Events (`/events`).
//!
//! Each connection follows the bus with one subscription and filters it by
//! the union of the client's subscriptions, so an event reaches a client
//! once, in sequence order, however its subscriptions overlap. A client that
//! reads too slowly is sent a `lagged` notice and dropped: the bus never
//! waits for anyone. `resume` replays the kept events after a sequence
//! number (and says so when the ring no longer holds some of them).
//!
//! Limits (see `ServerLimits`): streams per token, the size of a WebSocket
//! message before and after authentication, client messages per second.
//! Revoking a token ends its streams within a second or two, with a reason.
//!
//! WebSocket protocol (JSON text frames):
//! - auth: the `Authorization` header, or `{"op":"auth","token":"..."}` as
//!   the first message within 5 s (browsers cannot set headers here);
//! - `{"op":"subscribe","channels":[...],"bots":[...]}` (no bots = all;
//!   at most 10 subscriptions), answered `{"type":"subscribed","id":n}`;
//! - `{"op":"unsubscribe","id":n}` (no id: all);
//! - `{"op":"resume","after_seq":n}`;
//! - the server sends event envelopes `{seq, ts, type, channel, bot_id,
//!   data}`, `heartbeat`s, and `error`s for bad messages.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{Caller, Role};
use super::event_payload::{Envelope, encode};
use super::extract::ApiQuery;
use super::openapi::{Access, Endpoint};
use super::problem::ApiError;
use crate::live::{Channel, Event, Filter, Subscription};

/// Subscriptions one connection may hold.
pub const MAX_SUBSCRIPTIONS: usize = 10;
/// Time a browser has to send its token.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a frame may take to send before the client counts as too slow.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Close codes (4000-4999 are the application's).
const CLOSE_UNAUTHORIZED: u16 = 4401;
const CLOSE_TOO_SLOW: u16 = 4408;
const CLOSE_TOO_MANY: u16 = 4429;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/ws",
            "WebSocket: subscribe to channels of events (see the protocol in the README)",
            Role::Viewer,
            get(websocket),
        )
        .access(Access::Handshake(Role::Viewer))
        .status(101),
        Endpoint::get(
            "/events",
            "The event stream as Server-Sent Events; resumable with Last-Event-ID",
            Role::Viewer,
            get(server_sent_events),
        )
        .query(&[
            ("channels", "comma-separated channels (default: all)"),
            ("bots", "comma-separated bot ids (default: all)"),
        ])
        .returns::<Envelope>()
        .returns_media("text/event-stream"),
    ]
}

/// Open streams per token: a slot is held for a stream's life.
#[derive(Default)]
pub struct StreamSlots {
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream's slot, given back when dropped.
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    token: String,
}

impl StreamSlots {
    /// A slot for `token`, unless it already holds `limit` streams.
    pub fn take(self: &Arc<Self>, token: &str, limit: usize) -> Option<StreamSlot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(token.to_string()).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            slots: self.clone(),
            token: token.to_string(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .slots
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.token) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.token);
            }
        }
    }
}

fn too_many_streams(limit: usize) -> ApiError {
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-streams",
        format!("this token already holds {limit} open streams (close one first)"),
    );
    error.retry_after = Some(5);
    error
}

/// A message from a WebSocket client.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMessage {
    Auth {
        token: String,
    },
    Subscribe {
        #[serde(default)]
        channels: Vec<Channel>,
        #[serde(default)]
        bots: Vec<String>,
    },
    Unsubscribe {
        #[serde(default)]
        id: Option<u64>,
    },
    Resume {
        after_seq: u64,
    },
}

fn text(value: &Value) -> Message {
    Message::Text(value.to_string().into())
}

fn error_message(message: impl std::fmt::Display) -> Message {
    text(&json!({ "type": "error", "message": message.to_string() }))
}

async fn websocket(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // A plain GET (no upgrade asked) is told so as every other refusal is.
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return ApiError::new(
                rejection.status(),
                "malformed",
                format!("this is the WebSocket stream: {}", rejection.body_text()),
            )
            .into_response();
        }
    };
    let limits = app.settings.limits;
    // A client authenticated by its header may send up to the larger
    // size; one that still has to send its token gets the smaller one
    // until it has (checked per message below).
    let slot = match &caller {
        Some(Extension(caller)) => {
            match app.streams.take(&caller.token_id, limits.streams_per_token) {
                Some(slot) => Some(slot),
                None => return too_many_streams(limits.streams_per_token).into_response(),
            }
        }
        None => None,
    };
    upgrade
        .max_message_size(limits.ws_message_bytes)
        .max_frame_size(limits.ws_message_bytes)
        .on_upgrade(move |socket| connection(app, caller.map(|c| c.0), slot, socket))
        .into_response()
}

/// What a connection that did not authenticate is told.
const AUTHENTICATE_FIRST: &str = "authenticate first: {\"op\":\"auth\",\"token\":...}";

/// Wait for `{"op":"auth"}` as the first message (no larger than the
/// pre-authentication limit); why not, if it did not authenticate.
async fn first_message_auth(
    app: &AppState,
    socket: &mut WebSocket,
) -> Result<Caller, &'static str> {
    let message = tokio::time::timeout(AUTH_TIMEOUT, socket.recv())
        .await
        .ok()
        .flatten()
        .and_then(Result::ok);
    let Some(Message::Text(text)) = message else {
        return Err(AUTHENTICATE_FIRST);
    };
    if text.len() > app.settings.limits.ws_message_before_auth_bytes {
        return Err(AUTHENTICATE_FIRST);
    }
    match serde_json::from_str::<ClientMessage>(&text) {
        Ok(ClientMessage::Auth { token }) => {
            app.auth.verify(&token).ok_or("invalid or revoked token")
        }
        _ => Err(AUTHENTICATE_FIRST),
    }
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.to_string().into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// Messages per second a client may send, with bursts of twice that.
struct MessageBudget {
    per_second: f64,
    tokens: f64,
    at: Instant,
    /// Refusals in a row; a client that keeps pushing is disconnected.
    refused: u32,
}

impl MessageBudget {
    fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        Self {
            per_second,
            tokens: 2.0 * per_second,
            at: Instant::now(),
            refused: 0,
        }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(2.0 * self.per_second);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused = 0;
            true
        } else {
            self.refused += 1;
            false
        }
    }
}

/// One connection's subscriptions.
struct Subscriptions {
    filters: Vec<(u64, Filter)>,
    next_id: u64,
}

impl Subscriptions {
    fn matches(&self, event: &Event) -> bool {
        self.filters.iter().any(|(_, filter)| filter.matches(event))
    }

    fn handle(
        &mut self,
        message: ClientMessage,
        app: &AppState,
        events: &mut Subscription,
    ) -> Message {
        match message {
            ClientMessage::Auth { .. } => error_message("already authenticated"),
            ClientMessage::Subscribe { channels, bots } => {
                if self.filters.len() >= MAX_SUBSCRIPTIONS {
                    return error_message(format!(
                        "at most {MAX_SUBSCRIPTIONS} subscriptions per connection"
                    ));
                }
                let filter = Filter {
                    channels: channels.into_iter().collect(),
                    bots: bots.into_iter().collect(),
                };
                let id = self.next_id;
                self.next_id += 1;
                let reply = json!({ "type": "subscribed", "id": id, "channels": filter.channels, "bots": filter.bots });
                self.filters.push((id, filter));
                text(&reply)
            }
            ClientMessage::Unsubscribe { id } => {
                let before = self.filters.len();
                self.filters
                    .retain(|(own, _)| id.is_some_and(|id| *own != id));
                match id {
                    Some(id) if self.filters.len() == before => {
                        error_message(format!("no subscription {id}"))
                    }
                    _ => text(&json!({ "type": "unsubscribed", "id": id })),
                }
            }
            ClientMessage::Resume { after_seq } => {
                match app
                    .manager
                    .bus()
                    .subscribe(Filter::default(), Some(after_seq))
                {
                    Ok(resumed) => {
                        *events = resumed;
                        text(&json!({ "type": "resumed", "after_seq": after_seq }))
                    }
                    Err(error) => error_message(error),
                }
            }
        }
    }
}

async fn connection(
    app: AppState,
    caller: Option<Caller>,
    slot: Option<StreamSlot>,
    mut socket: WebSocket,
) {
    let (caller, _slot) = match caller {
        Some(caller) => (caller, slot),
        None => {
            let caller = match first_message_auth(&app, &mut socket).await {
                Ok(caller) => caller,
                Err(reason) => {
                    let _ = socket.send(error_message(reason)).await;
                    close(socket, CLOSE_UNAUTHORIZED, "unauthorized").await;
                    return;
                }
            };
            let limit = app.settings.limits.streams_per_token;
            match app.streams.take(&caller.token_id, limit) {
                Some(slot) => (caller, Some(slot)),
                None => {
                    close(
                        socket,
                        CLOSE_TOO_MANY,
                        "too many open streams for this token",
                    )
                    .await;
                    return;
                }
            }
        }
    };
    let Ok(mut events) = app.manager.bus().subscribe(Filter::default(), None) else {
        return;
    };
    let _ = socket
        .send(text(
            &json!({ "type": "authenticated", "next_seq": app.manager.bus().next_seq() }),
        ))
        .await;
    let mut subscriptions = Subscriptions {
        filters: Vec::new(),
        next_id: 1,
    };
    let mut budget = MessageBudget::new(app.settings.limits.ws_messages_per_second);
    let mut revocations = app.auth.revocations();
    // A revocation between the authentication and this subscription was
    // announced before it: look once more.
    if !app.auth.is_active(&caller.token_id) {
        close(socket, CLOSE_UNAUTHORIZED, "token revoked").await;
        return;
    }
    let mut heartbeat =
        tokio::time::interval(Duration::from_secs(app.settings.heartbeat_secs.max(1)));
    heartbeat.tick().await;
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { return };
                let text_in = match message {
                    Message::Text(text) => text,
                    Message::Close(_) => return,
                    _ => continue,
                };
                if !budget.allow() {
                    if budget.refused > 2 * app.settings.limits.ws_messages_per_second.max(1) {
                        close(socket, CLOSE_TOO_MANY, "too many messages").await;
                        return;
                    }
                    if socket.send(error_message("too many messages: slow down")).await.is_err() {
                        return;
                    }
                    continue;
                }
                let reply = match serde_json::from_str::<ClientMessage>(&text_in) {
                    Err(error) => error_message(format!("bad message: {error}")),
                    Ok(message) => subscriptions.handle(message, &app, &mut events),
                };
                if socket.send(reply).await.is_err() {
                    return;
                }
            }
            event = events.next() => {
                let Some(event) = event else { return };
                if event.is_notice() && matches!(event.data, crate::live::EventData::Lagged { reason: crate::live::LagReason::Slow, .. }) {
                    let _ = socket.send(Message::Text(encode(&event).to_string().into())).await;
                    close(socket, CLOSE_TOO_SLOW, "too slow: events were dropped").await;
                    return;
                }
                if !event.is_notice() && !subscriptions.matches(&event) {
                    continue;
                }
                let frame = Message::Text(encode(&event).to_string().into());
                match tokio::time::timeout(SEND_TIMEOUT, socket.send(frame)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    Err(_) => {
                        close(socket, CLOSE_TOO_SLOW, "too slow").await;
                        return;
                    }
                }
            }
            changed = revocations.changed() => {
                if changed.is_err() || !app.auth.is_active(&caller.token_id) {
                    close(socket, CLOSE_UNAUTHORIZED, "token revoked").await;
                    return;
                }
            }
            _ = heartbeat.tick() => {
                let beat = json!({ "type": "heartbeat", "ts": super::views::time(super::now_ms()), "last_seq": events.last_seq() });
                if socket.send(text(&beat)).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamQuery {
    channels: Option<String>,
    bots: Option<String>,
}

fn split_list(text: Option<&str>) -> Vec<String> {
    text.map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

/// Why an SSE stream stops.
enum Ending {
    Open,
    /// Send nothing more.
    Done,
}

async fn server_sent_events(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let mut channels = BTreeSet::new();
    for name in split_list(query.channels.as_deref()) {
        let channel: Channel =
            serde_json::from_value(Value::String(name.clone())).map_err(|_| {
                ApiError::malformed_at("/channels", format!("unknown channel `{name}`"))
            })?;
        channels.insert(channel);
    }
    let filter = Filter {
        channels,
        bots: split_list(query.bots.as_deref()).into_iter().collect(),
    };
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request("Last-Event-ID must be a sequence number"))
        })
        .transpose()?;
    let limit = app.settings.limits.streams_per_token;
    let slot = app
        .streams
        .take(&caller.token_id, limit)
        .ok_or_else(|| too_many_streams(limit))?;
    let events = app
        .manager
        .bus()
        .subscribe(filter, after)
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let revocations = app.auth.revocations();
    // A revocation announced before this subscription is not heard by it.
    if !app.auth.is_active(&caller.token_id) {
        return Err(ApiError::unauthorized("token revoked"));
    }
    let heartbeat = Duration::from_secs(app.settings.heartbeat_secs.max(1));
    let state = (events, revocations, app, caller, slot, Ending::Open);
    let stream = futures_util::stream::unfold(state, |state| async move {
        let (mut events, mut revocations, app, caller, slot, ending) = state;
        if matches!(ending, Ending::Done) {
            return None;
        }
        let event = tokio::select! {
            event = events.next() => event?,
            changed = revocations.changed() => {
                if changed.is_ok() && app.auth.is_active(&caller.token_id) {
                    let sse = SseEvent::default().comment("tokens changed");
                    return Some((Ok(sse), (events, revocations, app, caller, slot, Ending::Open)));
                }
                let sse = SseEvent::default().event("revoked").data("token revoked");
                return Some((Ok(sse), (events, revocations, app, caller, slot, Ending::Done)));
            }
        };
        let slow = matches!(
            event.data,
            crate::live::EventData::Lagged {
                reason: crate::live::LagReason::Slow,
                ..
            }
        );
        let sse = SseEvent::default()
            .id(event.seq.to_string())
            .event(event.kind())
            .data(&*encode(&event));
        // A client too slow to keep up gets the notice, then the end.
        let ending = if slow { Ending::Done } else { Ending::Open };
        Some((Ok(sse), (events, revocations, app, caller, slot, ending)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat")))
}
