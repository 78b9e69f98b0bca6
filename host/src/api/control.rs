//! Bot commands: start, stop, pause, resume, kill, reset, close-all,
//! cancel-pending; what a bot allows now; bulk and emergency commands.
//!
//! A command answers the bot's new status, as its runner left it. One that
//! is not allowed in the bot's state is a 409 with `allowed_commands`; one
//! that would change nothing (start on a running bot) succeeds without side
//! effects, and its audit entry says so. The emergency stop answers once it
//! is durable and every kill is dispatched; each bot's `bot.state_changed`
//! event tells when it is killed.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use schemars::JsonSchema;
use serde::Deserialize;

use axum::Extension;

use super::AppState;
use super::auth::{Caller, Role};
use super::extract::{ApiPath, JsonBody, OptionalJson};
use super::middleware::AuditNote;
use super::openapi::Endpoint;
use super::problem::ApiError;
use super::views::{
    BotStatus, BulkItem, BulkOutcome, CommandsView, EmergencyView, SystemEventView,
};
use crate::domain::config::ConfigIssue;
use crate::live::{BotState, CommandKind, CommandReply, ManagerError, Outcome};

/// Options of a command; only `stop` has one.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandOptions {
    /// For stop: also sell the position (reduce-only market order).
    #[serde(default)]
    pub flatten: bool,
}

/// What the commands other than stop, and the emergency release, take:
/// nothing, or an empty object.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

/// A command for many bots at once (a selection in the fleet view).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkCommand {
    pub command: BulkCommandKind,
    /// The bots, 1 to 1,000 ids; each answers for itself.
    #[schemars(length(min = 1, max = 1000))]
    pub bots: Vec<String>,
    /// For stop: also sell the position (reduce-only market order).
    #[serde(default)]
    pub flatten: bool,
}

/// The commands a selection can be given.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BulkCommandKind {
    Start,
    Stop,
    Pause,
    Resume,
    Kill,
    Reset,
    CloseAll,
    CancelPending,
}

impl From<BulkCommandKind> for CommandKind {
    fn from(kind: BulkCommandKind) -> Self {
        match kind {
            BulkCommandKind::Start => CommandKind::Start,
            BulkCommandKind::Stop => CommandKind::Stop,
            BulkCommandKind::Pause => CommandKind::Pause,
            BulkCommandKind::Resume => CommandKind::Resume,
            BulkCommandKind::Kill => CommandKind::Kill,
            BulkCommandKind::Reset => CommandKind::Reset,
            BulkCommandKind::CloseAll => CommandKind::CloseAll,
            BulkCommandKind::CancelPending => CommandKind::CancelPending,
        }
    }
}

/// `flatten` asked of a command that does not take it is refused, not
/// ignored: an operator who asked for a flat bot must not be told "done"
/// by a pause that left the position open.
fn flatten_only_on_stop(kind: CommandKind, flatten: bool) -> Result<(), ApiError> {
    if flatten && kind != CommandKind::Stop {
        return Err(ApiError::invalid(vec![ConfigIssue {
            pointer: "/flatten".into(),
            message: format!("only stop takes `flatten`, {} does not", kind.name()),
        }]));
    }
    Ok(())
}

/// The most bots one bulk command names.
const MAX_BULK_BOTS: usize = 1000;

fn command_endpoint(path: &'static str, summary: &'static str, kind: CommandKind) -> Endpoint {
    let handler = post(
        move |State(app): State<AppState>,
              ApiPath(id): ApiPath<String>,
              OptionalJson(options): OptionalJson<CommandOptions>| async move {
            flatten_only_on_stop(kind, options.flatten)?;
            let reply = app.manager.control(&id, kind, options.flatten).await?;
            let answer = axum::Json(BotStatus::from(&*reply.snapshot)).into_response();
            Ok::<_, ApiError>(match reply.outcome {
                Outcome::NoOp => AuditNote::detail(format!(
                    "nothing to do: the bot is already {}",
                    reply.snapshot.state.name()
                ))
                .on(answer),
                _ => answer,
            })
        },
    );
    let endpoint = Endpoint::post(path, summary, Role::Operator, handler);
    // Documented as each command takes it; read as one type, so that a
    // `flatten` sent elsewhere is refused by name.
    let endpoint = if kind == CommandKind::Stop {
        endpoint.optional_json_body::<CommandOptions>()
    } else {
        endpoint.optional_json_body::<NoOptions>()
    };
    endpoint.returns::<BotStatus>()
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        command_endpoint("/bots/{id}/start", "Start the bot", CommandKind::Start),
        command_endpoint(
            "/bots/{id}/stop",
            "Stop gracefully: cancel pending orders, optionally flatten",
            CommandKind::Stop,
        ),
        command_endpoint(
            "/bots/{id}/pause",
            "Pause new entries; exits and indicators go on",
            CommandKind::Pause,
        ),
        command_endpoint(
            "/bots/{id}/resume",
            "Resume after a pause",
            CommandKind::Resume,
        ),
        command_endpoint(
            "/bots/{id}/kill",
            "Kill-switch: cancel everything, flatten, halt until reset",
            CommandKind::Kill,
        ),
        command_endpoint(
            "/bots/{id}/reset",
            "Clear a kill or an error (the bot becomes stopped)",
            CommandKind::Reset,
        ),
        command_endpoint(
            "/bots/{id}/close-all",
            "Sell the whole position at once",
            CommandKind::CloseAll,
        ),
        command_endpoint(
            "/bots/{id}/cancel-pending",
            "Cancel every pending order",
            CommandKind::CancelPending,
        ),
        Endpoint::get(
            "/bots/{id}/commands",
            "The commands the bot's state allows now",
            Role::Viewer,
            get(commands),
        )
        .returns::<CommandsView>(),
        Endpoint::post(
            "/bots/commands",
            "One command for each of a list of bots; each bot answers for itself",
            Role::Operator,
            post(bulk_command),
        )
        .json_body::<BulkCommand>()
        .returns::<BulkOutcome>(),
        Endpoint::post(
            "/bots/start-all",
            "Start every bot",
            Role::Operator,
            post(start_all),
        )
        .returns::<BulkOutcome>(),
        Endpoint::post(
            "/bots/stop-all",
            "Stop every bot gracefully",
            Role::Operator,
            post(stop_all),
        )
        .returns::<BulkOutcome>(),
        Endpoint::post(
            "/bots/restart-all",
            "Stop and start every running bot",
            Role::Operator,
            post(restart_all),
        )
        .returns::<BulkOutcome>(),
        Endpoint::get(
            "/emergency",
            "Whether the emergency stop is engaged",
            Role::Viewer,
            get(emergency_state),
        )
        .returns::<EmergencyView>(),
        Endpoint::post(
            "/emergency/stop-all",
            "Kill-switch on every running bot at once; starting and creating bots is refused until reset. Answers once the kills are dispatched",
            Role::Operator,
            post(emergency_stop),
        )
        .returns::<EmergencyView>(),
        Endpoint::post(
            "/emergency/reset",
            "Release the emergency stop (bots stay killed until each is reset)",
            Role::Admin,
            post(emergency_reset),
        )
        .returns::<EmergencyView>(),
    ]
}

async fn commands(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<CommandsView>, ApiError> {
    let snapshot = app
        .manager
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no bot `{id}`")))?;
    let status = BotStatus::from(&*snapshot);
    Ok(axum::Json(CommandsView {
        state: status.summary.state,
        allowed_commands: status.summary.allowed_commands,
    }))
}

/// The answer to a command sent to many bots; its audit entry says how
/// many took it, which had nothing to do and which refused.
fn bulk(outcomes: Vec<(String, Result<CommandReply, ManagerError>)>) -> Response {
    let unchanged: Vec<String> = outcomes
        .iter()
        .filter(|(_, outcome)| matches!(outcome, Ok(reply) if reply.outcome == Outcome::NoOp))
        .map(|(id, _)| id.clone())
        .collect();
    let results = bulk_items(outcomes);
    let refused: Vec<&str> = results
        .iter()
        .filter(|item| !item.ok)
        .map(|item| item.id.as_str())
        .collect();
    let mut detail = format!(
        "{} of {}",
        results.len() - refused.len(),
        bots(results.len())
    );
    if !unchanged.is_empty() {
        let unchanged: Vec<&str> = unchanged.iter().map(String::as_str).collect();
        detail.push_str(&format!("; nothing to do for: {}", listed(&unchanged)));
    }
    if !refused.is_empty() {
        detail.push_str(&format!("; refused: {}", listed(&refused)));
    }
    AuditNote::detail(detail).on(axum::Json(BulkOutcome { results }).into_response())
}

/// "1 bot", "3 bots".
fn bots(count: usize) -> String {
    if count == 1 {
        "1 bot".into()
    } else {
        format!("{count} bots")
    }
}

/// Ids for an audit entry: the first ten, and how many more.
fn listed(ids: &[&str]) -> String {
    const SHOWN: usize = 10;
    let mut text = ids
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        text.push_str(&format!(" and {} more", ids.len() - SHOWN));
    }
    text
}

fn bulk_items(outcomes: Vec<(String, Result<CommandReply, ManagerError>)>) -> Vec<BulkItem> {
    outcomes
        .into_iter()
        .map(|(id, outcome)| match outcome {
            Ok(reply) => BulkItem {
                id,
                ok: true,
                state: Some(reply.snapshot.state.name().to_string()),
                error: None,
            },
            Err(error) => BulkItem {
                id,
                ok: false,
                state: None,
                error: Some(error.to_string()),
            },
        })
        .collect()
}

async fn bulk_command(
    State(app): State<AppState>,
    JsonBody(request): JsonBody<BulkCommand>,
) -> Result<Response, ApiError> {
    if request.bots.is_empty() || request.bots.len() > MAX_BULK_BOTS {
        return Err(ApiError::invalid(vec![ConfigIssue {
            pointer: "/bots".into(),
            message: format!("name 1 to {MAX_BULK_BOTS} bots"),
        }]));
    }
    flatten_only_on_stop(request.command.into(), request.flatten)?;
    let mut ids = request.bots;
    ids.sort();
    ids.dedup();
    let outcomes = app
        .manager
        .control_each(ids, request.command.into(), request.flatten)
        .await;
    Ok(bulk(outcomes))
}

async fn start_all(State(app): State<AppState>) -> Response {
    bulk(app.manager.start_all().await)
}

async fn stop_all(State(app): State<AppState>) -> Response {
    bulk(app.manager.stop_all().await)
}

async fn restart_all(State(app): State<AppState>) -> Response {
    bulk(app.manager.restart_all().await)
}

/// Bots the engaged emergency stop has not killed yet.
fn pending(app: &AppState) -> Vec<String> {
    if !app.manager.emergency_engaged() {
        return Vec::new();
    }
    app.manager
        .list()
        .iter()
        .filter(|s| matches!(s.state, BotState::Running | BotState::Paused))
        .map(|s| s.id.to_string())
        .collect()
}

async fn emergency_state(
    State(app): State<AppState>,
) -> Result<axum::Json<EmergencyView>, ApiError> {
    let events = app
        .with_store(|store| store.system_events(20))
        .await?
        .into_iter()
        .map(|(ts, kind, data)| SystemEventView {
            at: super::views::time(ts),
            kind,
            data: serde_json::from_str(&data).unwrap_or_default(),
        })
        .collect();
    Ok(axum::Json(EmergencyView {
        engaged: app.manager.emergency_engaged(),
        killing: Vec::new(),
        untouched: Vec::new(),
        pending: pending(&app),
        events,
    }))
}

async fn emergency_stop(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let dispatch = app.manager.emergency_stop_all(&caller.name).await?;
    let killing: Vec<&str> = dispatch.killing.iter().map(String::as_str).collect();
    let detail = format!("killing {}: {}", bots(killing.len()), listed(&killing));
    let view = EmergencyView {
        engaged: true,
        killing: dispatch.killing,
        untouched: dispatch.untouched,
        pending: pending(&app),
        events: Vec::new(),
    };
    Ok(AuditNote::detail(detail).on(axum::Json(view).into_response()))
}

async fn emergency_reset(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    OptionalJson(NoOptions {}): OptionalJson<NoOptions>,
) -> Result<axum::Json<EmergencyView>, ApiError> {
    app.manager.emergency_reset(&caller.name).await?;
    Ok(axum::Json(EmergencyView {
        engaged: false,
        killing: Vec::new(),
        untouched: Vec::new(),
        pending: Vec::new(),
        events: Vec::new(),
    }))
}
