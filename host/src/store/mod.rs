//! The store: the system of record for what operators configure and do and
//! what bots trade.
//!
//! [`Store`] is what the rest of the host reads and writes through: API
//! tokens (hashed), the audit log, every bot's config history and state,
//! presets, plugin files, trading records, equity, logs, feed candles.
//! [`SqliteStore`] keeps it in an embedded SQLite database in the data
//! directory (`sqlite.rs`); the engine's per-candle records go through the
//! group-committing [`Writer`] (`writer.rs`). Calls are short and
//! synchronous; the API makes them between awaits, never while holding
//! another lock.

mod migrations;
mod records;
mod sqlite;
mod writer;

use std::path::PathBuf;

pub use records::{
    AuditEntry, AuditQuery, ConfigVersion, KeptAnswer, LogFilter, PluginBlob, PresetRecord,
    StoredBot, StoredLogLine, TokenRecord,
};
pub use sqlite::SqliteStore;
pub use writer::{DecisionsInFlight, Record, Writer, WriterThread, no_decisions};

/// For the store's tests: a new store in a folder of its own (gone when
/// the first value is dropped), and its writer (no bots deciding).
#[cfg(test)]
fn store_with_writer() -> (tempfile::TempDir, SqliteStore, Writer, WriterThread) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let (writer, thread) = Writer::start(&store, no_decisions).unwrap();
    (dir, store, writer, thread)
}

/// What a commit survives: SQLite's `synchronous` setting in WAL mode.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// A committed write survives the process being killed at any instant
    /// (not a power loss or an OS crash). The default: fast group commits.
    #[default]
    Normal,
    /// A committed write also survives a power loss: every commit waits for
    /// the disk (fsync), so commits are slower.
    Full,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// Candles kept per feed by [`Store::prune`].
pub const FEED_CANDLES_KEPT: usize = 5_000;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "stratbox.sqlite3";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot migrate the database {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: rusqlite_migration::Error,
    },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// No connection came free in time, or none could be opened.
    #[error("no database connection: {0}")]
    Pool(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What [`Store::prune`] removes. Ages are milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrunePolicy {
    /// Equity samples older than this (measured back from each bot's newest
    /// sample, so accelerated and replayed clocks age the same way) are
    /// thinned to the last sample of each hour.
    pub equity_full_ms: i64,
    /// Log lines older than this (wall time, from `now`) are deleted.
    pub logs_ms: i64,
    /// Audit entries older than this are deleted.
    pub audit_ms: i64,
    /// Each bot's config versions but the newest this many are deleted
    /// (at least the one in force is kept).
    pub config_versions_kept: u32,
    /// Kept answers to idempotent requests older than this are deleted.
    pub idempotency_ms: i64,
    /// Wall time, epoch ms.
    pub now: i64,
}

/// Tables of trading records a bot's history is read back from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordTable {
    Orders,
    Fills,
    Trades,
    Violations,
}

/// Which end of a bot's records a page starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RowOrder {
    /// Oldest first; a cursor continues with newer rows.
    #[default]
    OldestFirst,
    /// Newest first (what a dashboard shows); a cursor continues with older rows.
    NewestFirst,
}

/// The system of record, whatever keeps it: what the API, recovery and
/// retention read and write outside the engine's hot path (which commits
/// through [`Writer`] as a [`crate::live::CommitLog`]). [`SqliteStore`] is
/// the embedded default.
pub trait Store: Send + Sync {
    /// A value of the key/value table.
    fn meta(&self, key: &str) -> StoreResult<Option<String>>;

    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()>;

    fn insert_token(&self, token: &TokenRecord) -> StoreResult<()>;

    /// Every token, revoked ones included, oldest first.
    fn tokens(&self) -> StoreResult<Vec<TokenRecord>>;

    /// Revoke a token; false if there is no such unrevoked token.
    fn revoke_token(&self, id: &str, at: i64) -> StoreResult<bool>;

    /// Append an entry; its id.
    fn append_audit(&self, entry: &AuditEntry) -> StoreResult<i64>;

    /// Entries matching `query`, newest first; `query.before` pages back.
    fn audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>>;

    /// Record a new config version of a bot (version 1 creates it).
    fn save_config_version(&self, version: &ConfigVersion) -> StoreResult<()>;

    /// Forget a bot, its config history and its records (the audit log
    /// keeps its trace).
    fn delete_bot(&self, id: &str) -> StoreResult<()>;

    /// A bot's stored runtime state (JSON), if it ever ran.
    fn bot_state(&self, bot_id: &str) -> StoreResult<Option<String>>;

    /// The payloads of a bot's last `limit` rows of `table` (orders, fills,
    /// trades or risk events), oldest first.
    fn recent_records(
        &self,
        table: RecordTable,
        bot_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<String>>;

    /// A bot's last `limit` equity samples (ts, equity, exposed), oldest first.
    fn recent_equity(&self, bot_id: &str, limit: usize) -> StoreResult<Vec<(i64, String, bool)>>;

    /// A page of a bot's orders, newest first: (order id, payload), those
    /// with an id below `before`, optionally only `open` or only closed ones.
    fn orders_page(
        &self,
        bot_id: &str,
        open: Option<bool>,
        before: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<(u64, String)>>;

    /// A page of a bot's fills or trades in `order`: (row id, payload), rows
    /// past the cursor row `after` whose time lies in `window` (inclusive).
    fn records_page(
        &self,
        table: RecordTable,
        bot_id: &str,
        window: (i64, i64),
        after: Option<i64>,
        order: RowOrder,
        limit: usize,
    ) -> StoreResult<Vec<(i64, String)>>;

    /// A page of a bot's equity samples in `window` (inclusive) in `order`,
    /// past the cursor time `after`: (time, equity).
    fn equity_page(
        &self,
        bot_id: &str,
        window: (i64, i64),
        after: Option<i64>,
        order: RowOrder,
        limit: usize,
    ) -> StoreResult<Vec<(i64, String)>>;

    /// The payloads of a feed's last `limit` candles, oldest first.
    fn recent_candles(&self, feed: &str, limit: usize) -> StoreResult<Vec<String>>;

    /// The log lines `filter` asks for, newest first.
    fn logs_page(&self, filter: &LogFilter) -> StoreResult<Vec<StoredLogLine>>;

    /// Keep the database bounded (see [`PrunePolicy`]); each feed keeps its
    /// last [`FEED_CANDLES_KEPT`] candles. Returns the rows removed.
    fn prune(&self, policy: &PrunePolicy) -> StoreResult<usize>;

    /// The states an order went through, oldest first: (status, time, payload).
    fn order_changes(&self, bot_id: &str, order_id: u64)
    -> StoreResult<Vec<(String, i64, String)>>;

    /// Record a host-wide event (the emergency stop, its release).
    fn append_system_event(&self, ts: i64, kind: &str, data: &str) -> StoreResult<()>;

    /// The last `limit` host-wide events, newest first: (time, kind, payload).
    fn system_events(&self, limit: usize) -> StoreResult<Vec<(i64, String, String)>>;

    /// Fills stored, all bots.
    fn count_fills(&self) -> StoreResult<u64>;

    /// Every stored bot with its current config, by id.
    fn bots(&self) -> StoreResult<Vec<StoredBot>>;

    /// A bot's config versions, newest first, below `before` if given.
    fn config_versions(
        &self,
        bot_id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<ConfigVersion>>;

    fn config_version(&self, bot_id: &str, version: u64) -> StoreResult<Option<ConfigVersion>>;

    fn presets(&self) -> StoreResult<Vec<PresetRecord>>;

    fn put_preset(&self, preset: &PresetRecord) -> StoreResult<()>;

    /// Remove a preset; false when there was none of that name.
    fn delete_preset(&self, name: &str) -> StoreResult<bool>;

    /// Keep an uploaded plugin (a second upload of the same bytes changes
    /// nothing).
    fn put_plugin_blob(&self, blob: &PluginBlob) -> StoreResult<()>;

    /// Every uploaded plugin, oldest first.
    fn plugin_blobs(&self) -> StoreResult<Vec<PluginBlob>>;

    /// Forget an uploaded plugin; false when there was none with this hash.
    fn delete_plugin_blob(&self, content_hash: &str) -> StoreResult<bool>;

    /// The kept answer of an idempotent request, by scope.
    fn kept_answer(&self, scope: &[u8; 32]) -> StoreResult<Option<KeptAnswer>>;

    /// Keep an answer; then drop the oldest ones until at most
    /// `max_entries` answers of at most `max_bytes` bodies in all remain.
    fn keep_answer(
        &self,
        answer: &KeptAnswer,
        max_entries: usize,
        max_bytes: usize,
    ) -> StoreResult<()>;
}
