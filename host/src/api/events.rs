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
//! WebSocket protocol (JSON text frames):
//! - auth: the `Authorization` header, or `{"op":"auth","token":"..."}` as
//!   the first message within 5 s (browsers cannot set headers here);
//! - `{"op":"subscribe","channels":[...],"bots":[...]}` (no bots = all;
//!   at most 10 subscriptions), answered `{"type":"subscribed","id":n}`;
//! - `{"op":"unsubscribe","id":n}` (no id: all);
//! - `{"op":"resume","after_seq":n}`;
//! - the server sends event envelopes `{seq, ts, type, channel, bot_id,
//!   data}`, `heartbeat`s, and `error`s for bad messages.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::Stream;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::auth::{Caller, Role};
use super::extract::ApiQuery;
use super::openapi::{Access, Endpoint};
use super::problem::ApiError;
use crate::live::{Channel, Event, Filter, LagReason, Subscription};

/// Subscriptions one connection may hold.
pub const MAX_SUBSCRIPTIONS: usize = 10;
/// Time a browser has to send its token.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a frame may take to send before the client counts as too slow.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

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

/// An event as clients receive it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Envelope {
    pub seq: u64,
    /// RFC 3339 UTC.
    pub ts: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub channel: String,
    pub bot_id: Option<String>,
    pub data: Value,
}

impl From<&Event> for Envelope {
    fn from(event: &Event) -> Self {
        Self {
            seq: event.seq,
            ts: super::views::time(event.ts),
            kind: event.kind.to_string(),
            channel: super::views::state_name(&event.channel),
            bot_id: event.bot_id.clone(),
            data: event.data.clone(),
        }
    }
}

/// One subscription: channels (empty = all) and bots (empty = all).
#[derive(Debug, Clone)]
struct Interest {
    id: u64,
    channels: BTreeSet<Channel>,
    bots: BTreeSet<String>,
}

impl Interest {
    fn matches(&self, event: &Event) -> bool {
        (self.channels.is_empty() || self.channels.contains(&event.channel))
            && (self.bots.is_empty()
                || event
                    .bot_id
                    .as_ref()
                    .is_none_or(|bot| self.bots.contains(bot)))
    }
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
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .on_upgrade(move |socket| connection(app, caller.map(|c| c.0), socket))
        .into_response()
}

/// Wait for `{"op":"auth"}` as the first message.
async fn first_message_auth(app: &AppState, socket: &mut WebSocket) -> Option<Caller> {
    let message = tokio::time::timeout(AUTH_TIMEOUT, socket.recv())
        .await
        .ok()??
        .ok()?;
    let Message::Text(text) = message else {
        return None;
    };
    match serde_json::from_str::<ClientMessage>(&text) {
        Ok(ClientMessage::Auth { token }) => app.auth.verify(&token),
        _ => None,
    }
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.to_string().into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

async fn connection(app: AppState, caller: Option<Caller>, mut socket: WebSocket) {
    let caller = match caller {
        Some(caller) => Some(caller),
        None => first_message_auth(&app, &mut socket).await,
    };
    let Some(_caller) = caller else {
        let _ = socket
            .send(error_message(
                "authenticate first: {\"op\":\"auth\",\"token\":...}",
            ))
            .await;
        close(socket, 4401, "unauthorized").await;
        return;
    };
    let _ = socket
        .send(text(
            &json!({ "type": "authenticated", "next_seq": app.manager.bus().next_seq() }),
        ))
        .await;
    let mut interests: Vec<Interest> = Vec::new();
    let mut next_id = 1;
    let mut events: Subscription = app.manager.bus().subscribe(Filter::default(), None);
    let mut heartbeat =
        tokio::time::interval(Duration::from_secs(app.settings.heartbeat_secs.max(1)));
    heartbeat.tick().await;
    let mut last_seq = app.manager.bus().next_seq().saturating_sub(1);
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { return };
                let text_in = match message {
                    Message::Text(text) => text,
                    Message::Close(_) => return,
                    _ => continue,
                };
                let reply = match serde_json::from_str::<ClientMessage>(&text_in) {
                    Err(error) => error_message(format!("bad message: {error}")),
                    Ok(ClientMessage::Auth { .. }) => error_message("already authenticated"),
                    Ok(ClientMessage::Subscribe { channels, bots }) => {
                        if interests.len() >= MAX_SUBSCRIPTIONS {
                            error_message(format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection"))
                        } else {
                            let interest = Interest {
                                id: next_id,
                                channels: channels.into_iter().collect(),
                                bots: bots.into_iter().collect(),
                            };
                            next_id += 1;
                            let reply = json!({ "type": "subscribed", "id": interest.id, "channels": interest.channels, "bots": interest.bots });
                            interests.push(interest);
                            text(&reply)
                        }
                    }
                    Ok(ClientMessage::Unsubscribe { id }) => {
                        interests.retain(|i| id.is_some_and(|id| i.id != id));
                        text(&json!({ "type": "unsubscribed", "id": id }))
                    }
                    Ok(ClientMessage::Resume { after_seq }) => {
                        events = app.manager.bus().subscribe(Filter::default(), Some(after_seq));
                        text(&json!({ "type": "resumed", "after_seq": after_seq }))
                    }
                };
                if socket.send(reply).await.is_err() {
                    return;
                }
            }
            event = events.next() => {
                let Some(event) = event else { return };
                let slow = event.kind == "lagged"
                    && event.bot_id.is_none()
                    && event.data["reason"] == json!(LagReason::Slow);
                if slow {
                    let _ = socket.send(text(&json!({ "type": "lagged", "data": event.data }))).await;
                    close(socket, 4408, "too slow: events were dropped").await;
                    return;
                }
                last_seq = last_seq.max(event.seq);
                let resume_notice = event.kind == "lagged" && event.bot_id.is_none();
                if !resume_notice && !interests.iter().any(|i| i.matches(&event)) {
                    continue;
                }
                let envelope = serde_json::to_value(Envelope::from(&*event)).unwrap_or_default();
                match tokio::time::timeout(SEND_TIMEOUT, socket.send(text(&envelope))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    Err(_) => {
                        close(socket, 4408, "too slow").await;
                        return;
                    }
                }
            }
            _ = heartbeat.tick() => {
                let beat = json!({ "type": "heartbeat", "ts": super::views::time(super::now_ms()), "last_seq": last_seq });
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

async fn server_sent_events(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let mut channels = BTreeSet::new();
    for name in split_list(query.channels.as_deref()) {
        let channel: Channel = serde_json::from_value(Value::String(name.clone()))
            .map_err(|_| ApiError::bad_request(format!("unknown channel `{name}`")))?;
        channels.insert(channel);
    }
    let interest = Interest {
        id: 1,
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
    let events = app.manager.bus().subscribe(Filter::default(), after);
    let stream = futures_util::stream::unfold(
        (events, interest, false),
        |(mut events, interest, ended)| async move {
            if ended {
                return None;
            }
            loop {
                let event = events.next().await?;
                let notice = event.kind == "lagged" && event.bot_id.is_none();
                if !notice && !interest.matches(&event) {
                    continue;
                }
                let slow = notice && event.data["reason"] == json!(LagReason::Slow);
                let envelope = serde_json::to_string(&Envelope::from(&*event)).unwrap_or_default();
                let sse = SseEvent::default()
                    .id(event.seq.to_string())
                    .event(event.kind)
                    .data(envelope);
                // A client too slow to keep up gets the notice, then the end.
                return Some((Ok(sse), (events, interest, slow)));
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(app.settings.heartbeat_secs.max(1)))
            .text("heartbeat"),
    ))
}
