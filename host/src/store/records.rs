//! The rows the store reads and writes. Times are epoch milliseconds.

use serde_json::Value;

/// An API token: only its SHA-256 hash is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    /// viewer, operator or admin.
    pub role: String,
    pub hash: Vec<u8>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// Which log lines a reader wants, newest first.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Only lines at these levels (as stored: `ERROR`, `WARN`, ...); all
    /// levels when `None`.
    pub levels: Option<Vec<String>>,
    pub component: Option<String>,
    pub bot_id: Option<String>,
    /// Lines written at or after this time.
    pub since: Option<i64>,
    /// Lines with an id below this (paging back).
    pub before_id: Option<u64>,
    pub limit: usize,
}

/// A log line as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogLine {
    /// The log book's number for it.
    pub id: u64,
    /// Wall time, epoch ms.
    pub ts: i64,
    /// As `tracing` names it: `ERROR`, `WARN`, `INFO`, ...
    pub level: String,
    pub component: String,
    pub bot_id: Option<String>,
    pub plugin: Option<String>,
    pub message: String,
}

/// An uploaded strategy plugin: its bytes, by content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginBlob {
    /// SHA-256 of `bytes`, hex.
    pub content_hash: String,
    /// What the plugin's `describe` said when it was uploaded.
    pub name: String,
    pub version: String,
    pub bytes: Vec<u8>,
    pub uploaded_at: i64,
}

/// Who did what, when, from where, with what result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditEntry {
    /// Assigned by the store.
    pub id: i64,
    pub ts: i64,
    /// Token name (or `anonymous` when no valid token came with the call).
    pub actor: String,
    pub role: String,
    /// Method and path, e.g. `POST /api/v1/bots/a/stop`.
    pub action: String,
    /// The bot, strategy, preset or token acted on, when there is one.
    pub target: String,
    /// The HTTP status answered.
    pub status: u16,
    /// Peer address.
    pub remote: String,
    pub request_id: String,
    pub detail: String,
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    /// Substring of the action.
    pub action: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Entries with an id below this (the cursor).
    pub before: Option<i64>,
    pub limit: usize,
}

/// One accepted config of a bot.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigVersion {
    pub bot_id: String,
    pub version: u64,
    pub config: Value,
    pub created_at: i64,
    pub actor: String,
}

/// A bot as stored: its current config and version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBot {
    pub id: String,
    pub version: u64,
    pub config: Value,
}

/// A named partial bot config that new bots can start from.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetRecord {
    pub name: String,
    pub config: Value,
    pub updated_at: i64,
}

/// The first answer to a request sent with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptAnswer {
    /// SHA-256 of the token, method, path, query and key.
    pub scope: [u8; 32],
    /// SHA-256 of the first request's body.
    pub body_hash: [u8; 32],
    pub status: u16,
    /// Response headers, as (name, value) pairs.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub created_at: i64,
}
