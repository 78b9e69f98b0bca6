//! The embedded SQLite store (the default [`Store`]).
//!
//! WAL mode with `synchronous=NORMAL` by default (a committed write survives
//! the process being killed at any instant; [`Synchronous::Full`] survives
//! a power loss), a small pool of connections for the API's short calls
//! (readers never wait on each other in WAL mode, and a slow read never
//! holds up `/health`), schema migrations when it opens.

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    AuditEntry, AuditQuery, ConfigVersion, DATABASE_FILE, FEED_CANDLES_KEPT, KeptAnswer, LogFilter,
    PluginBlob, PresetRecord, PrunePolicy, RecordTable, RowOrder, Store, StoreError, StoreResult,
    StoredBot, StoredLogLine, Synchronous, TokenRecord, migrations, writer,
};

/// The page size of a new database, in bytes (one made before keeps its
/// own). A commit writes every page it touched to the WAL, and a batch of
/// fills from many bots touches a page of each per-bot index for each bot:
/// 1 KiB pages cut that from about 14 KB per fill to a quarter, and the
/// store benchmark's rate rose by half (14-15k to 20-22k fills/s).
pub(crate) const PAGE_SIZE: i64 = 1024;

/// Connections the API's calls share (the writer has its own).
const POOL_SIZE: u32 = 4;
/// How long a call waits for another's write lock, and for a free connection.
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// The store in an embedded SQLite database.
pub struct SqliteStore {
    pool: r2d2::Pool<SqliteConnectionManager>,
    path: PathBuf,
    synchronous: Synchronous,
}

/// What each connection sets for itself (WAL mode and the page size stay
/// with the file).
fn prepare(connection: &Connection, synchronous: Synchronous) -> rusqlite::Result<()> {
    connection.pragma_update(None, "synchronous", synchronous.pragma())?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.busy_timeout(BUSY_WAIT)
}

impl SqliteStore {
    /// Open (or create) the store in `data_dir`, and bring its schema up to
    /// date, with `synchronous=NORMAL`.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        Self::open_with(data_dir, Synchronous::Normal)
    }

    /// [`SqliteStore::open`] with a chosen durability.
    pub fn open_with(data_dir: &Path, synchronous: Synchronous) -> StoreResult<Self> {
        let data_error = |source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(data_error)?;
        let path = data_dir.join(DATABASE_FILE);
        let open_error = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let mut connection = Connection::open(&path).map_err(open_error)?;
        // Only a new database takes it (before its first table).
        connection
            .pragma_update(None, "page_size", PAGE_SIZE)
            .map_err(open_error)?;
        // A file that is not a database fails on its first read: do that here.
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        prepare(&connection, synchronous).map_err(open_error)?;
        migrations::migrate(&mut connection).map_err(|source| StoreError::Migrate {
            path: path.clone(),
            source,
        })?;
        drop(connection);
        let manager = SqliteConnectionManager::file(&path)
            .with_init(move |connection| prepare(connection, synchronous));
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(BUSY_WAIT)
            .build(manager)
            .map_err(|error| StoreError::Pool(error.to_string()))?;
        Ok(Self {
            pool,
            path,
            synchronous,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn synchronous(&self) -> Synchronous {
        self.synchronous
    }

    fn with<R>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<R>) -> StoreResult<R> {
        let mut connection = self
            .pool
            .get()
            .map_err(|error| StoreError::Pool(error.to_string()))?;
        f(&mut connection)
    }
}

impl Store for SqliteStore {
    fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        self.with(|c| {
            Ok(
                c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
    }

    // --- tokens ---------------------------------------------------------

    fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO tokens (id, name, role, hash, created_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    token.id,
                    token.name,
                    token.role,
                    token.hash,
                    token.created_at,
                    token.revoked_at
                ],
            )?;
            Ok(())
        })
    }

    fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT id, name, role, hash, created_at, revoked_at FROM tokens ORDER BY created_at, id",
            )?;
            let rows = statement.query_map([], |r| {
                Ok(TokenRecord {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    role: r.get(2)?,
                    hash: r.get(3)?,
                    created_at: r.get(4)?,
                    revoked_at: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn revoke_token(&self, id: &str, at: i64) -> StoreResult<bool> {
        self.with(|c| {
            let changed = c.execute(
                "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, at],
            )?;
            Ok(changed == 1)
        })
    }

    // --- audit ----------------------------------------------------------

    fn append_audit(&self, entry: &AuditEntry) -> StoreResult<i64> {
        self.with(|c| {
            writer::insert_audit(c, entry)?;
            Ok(c.last_insert_rowid())
        })
    }

    fn audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT id, ts, actor, role, action, target, status, remote, request_id, detail
                 FROM audit
                 WHERE (?1 IS NULL OR id < ?1)
                   AND (?2 IS NULL OR actor = ?2)
                   AND (?3 IS NULL OR action LIKE '%' || ?3 || '%')
                   AND (?4 IS NULL OR ts >= ?4)
                   AND (?5 IS NULL OR ts <= ?5)
                 ORDER BY id DESC LIMIT ?6",
            )?;
            let rows = statement.query_map(
                params![
                    query.before,
                    query.actor,
                    query.action,
                    query.from,
                    query.to,
                    query.limit as i64
                ],
                |r| {
                    Ok(AuditEntry {
                        id: r.get(0)?,
                        ts: r.get(1)?,
                        actor: r.get(2)?,
                        role: r.get(3)?,
                        action: r.get(4)?,
                        target: r.get(5)?,
                        status: r.get(6)?,
                        remote: r.get(7)?,
                        request_id: r.get(8)?,
                        detail: r.get(9)?,
                    })
                },
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    // --- bots and their config history ----------------------------------

    fn save_config_version(&self, version: &ConfigVersion) -> StoreResult<()> {
        let config = version.config.to_string();
        self.with(|c| {
            let tx = c.transaction()?;
            writer::insert_config_version(
                &tx,
                &version.bot_id,
                version.version,
                &config,
                version.created_at,
                &version.actor,
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn delete_bot(&self, id: &str) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            writer::delete_bot_rows(&tx, id)?;
            tx.commit()?;
            Ok(())
        })
    }

    // --- trading records (written by the [`Writer`]) ------------------------

    fn bot_state(&self, bot_id: &str) -> StoreResult<Option<String>> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT state FROM bot_state WHERE bot_id = ?1",
                [bot_id],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn recent_records(
        &self,
        table: RecordTable,
        bot_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let sql = match table {
            RecordTable::Orders => {
                "SELECT data FROM (SELECT order_id AS k, data FROM orders WHERE bot_id = ?1 ORDER BY order_id DESC LIMIT ?2) ORDER BY k"
            }
            RecordTable::Fills => {
                "SELECT data FROM (SELECT id, data FROM fills WHERE bot_id = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id"
            }
            RecordTable::Trades => {
                "SELECT data FROM (SELECT id, data FROM trades WHERE bot_id = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id"
            }
            RecordTable::Violations => {
                "SELECT data FROM (SELECT id, data FROM risk_events WHERE bot_id = ?1 AND kind = 'violation' ORDER BY id DESC LIMIT ?2) ORDER BY id"
            }
        };
        self.with(|c| {
            let mut statement = c.prepare(sql)?;
            let rows = statement.query_map(params![bot_id, limit as i64], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn recent_equity(&self, bot_id: &str, limit: usize) -> StoreResult<Vec<(i64, String, bool)>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT ts, equity, exposed FROM (SELECT ts, equity, exposed FROM equity WHERE bot_id = ?1 ORDER BY ts DESC LIMIT ?2) ORDER BY ts",
            )?;
            let rows = statement.query_map(params![bot_id, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn orders_page(
        &self,
        bot_id: &str,
        open: Option<bool>,
        before: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<(u64, String)>> {
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT order_id, data FROM orders
                 WHERE bot_id = ?1 AND (?2 IS NULL OR order_id < ?2)
                   AND (?3 IS NULL OR (status = 'open') = ?3)
                 ORDER BY order_id DESC LIMIT ?4",
            )?;
            let rows = statement.query_map(
                params![bot_id, before.map(|b| b as i64), open, limit as i64],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn records_page(
        &self,
        table: RecordTable,
        bot_id: &str,
        (from, to): (i64, i64),
        after: Option<i64>,
        order: RowOrder,
        limit: usize,
    ) -> StoreResult<Vec<(i64, String)>> {
        let sql = match (table, order) {
            (RecordTable::Fills, RowOrder::OldestFirst) => {
                "SELECT id, data FROM fills WHERE bot_id = ?1 AND ts BETWEEN ?2 AND ?3 AND id > ?4 ORDER BY id LIMIT ?5"
            }
            (RecordTable::Fills, RowOrder::NewestFirst) => {
                "SELECT id, data FROM fills WHERE bot_id = ?1 AND ts BETWEEN ?2 AND ?3 AND id < ?4 ORDER BY id DESC LIMIT ?5"
            }
            (RecordTable::Trades, RowOrder::OldestFirst) => {
                "SELECT id, data FROM trades WHERE bot_id = ?1 AND exit_ts BETWEEN ?2 AND ?3 AND id > ?4 ORDER BY id LIMIT ?5"
            }
            (RecordTable::Trades, RowOrder::NewestFirst) => {
                "SELECT id, data FROM trades WHERE bot_id = ?1 AND exit_ts BETWEEN ?2 AND ?3 AND id < ?4 ORDER BY id DESC LIMIT ?5"
            }
            (RecordTable::Orders | RecordTable::Violations, _) => {
                return Err(StoreError::Corrupt(format!(
                    "{table:?} are not paged by row"
                )));
            }
        };
        let cursor = after.unwrap_or(match order {
            RowOrder::OldestFirst => 0,
            RowOrder::NewestFirst => i64::MAX,
        });
        self.with(|c| {
            let mut statement = c.prepare_cached(sql)?;
            let rows = statement
                .query_map(params![bot_id, from, to, cursor, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn equity_page(
        &self,
        bot_id: &str,
        (from, to): (i64, i64),
        after: Option<i64>,
        order: RowOrder,
        limit: usize,
    ) -> StoreResult<Vec<(i64, String)>> {
        let (sql, cursor) = match order {
            RowOrder::OldestFirst => (
                "SELECT ts, equity FROM equity
                 WHERE bot_id = ?1 AND ts BETWEEN ?2 AND ?3 AND ts > ?4
                 ORDER BY ts LIMIT ?5",
                after.unwrap_or(i64::MIN),
            ),
            RowOrder::NewestFirst => (
                "SELECT ts, equity FROM equity
                 WHERE bot_id = ?1 AND ts BETWEEN ?2 AND ?3 AND ts < ?4
                 ORDER BY ts DESC LIMIT ?5",
                after.unwrap_or(i64::MAX),
            ),
        };
        self.with(|c| {
            let mut statement = c.prepare_cached(sql)?;
            let rows = statement
                .query_map(params![bot_id, from, to, cursor, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn recent_candles(&self, feed: &str, limit: usize) -> StoreResult<Vec<String>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT data FROM (SELECT ts, data FROM feed_candles WHERE feed = ?1 ORDER BY ts DESC LIMIT ?2) ORDER BY ts",
            )?;
            let rows = statement.query_map(params![feed, limit as i64], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn logs_page(&self, filter: &LogFilter) -> StoreResult<Vec<StoredLogLine>> {
        // Levels as one ",A,B," string matched with instr: one statement
        // for any set of levels.
        let levels = filter
            .levels
            .as_ref()
            .map(|levels| format!(",{},", levels.join(",")));
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT id, ts, level, component, bot_id, plugin, message FROM logs
                 WHERE (?1 IS NULL OR id < ?1)
                   AND (?2 IS NULL OR bot_id = ?2)
                   AND (?3 IS NULL OR component = ?3)
                   AND (?4 IS NULL OR ts >= ?4)
                   AND (?5 IS NULL OR instr(?5, ',' || level || ',') > 0)
                 ORDER BY id DESC LIMIT ?6",
            )?;
            let rows = statement.query_map(
                params![
                    filter.before_id.map(|id| id as i64),
                    filter.bot_id,
                    filter.component,
                    filter.since,
                    levels,
                    filter.limit as i64,
                ],
                |r| {
                    Ok(StoredLogLine {
                        id: r.get::<_, i64>(0)? as u64,
                        ts: r.get(1)?,
                        level: r.get(2)?,
                        component: r.get(3)?,
                        bot_id: r.get(4)?,
                        plugin: r.get(5)?,
                        message: r.get(6)?,
                    })
                },
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn prune(&self, policy: &PrunePolicy) -> StoreResult<usize> {
        let PrunePolicy {
            equity_full_ms,
            logs_ms,
            audit_ms,
            config_versions_kept,
            idempotency_ms,
            now,
        } = *policy;
        let others = self.with(|c| {
            let thinned = c.execute(
                "WITH latest AS (SELECT bot_id, MAX(ts) AS top FROM equity GROUP BY bot_id),
                      keep AS (
                        SELECT e.bot_id, MAX(e.ts) AS ts FROM equity e JOIN latest l ON e.bot_id = l.bot_id
                        WHERE e.ts < l.top - ?1 GROUP BY e.bot_id, e.ts / 3600000)
                 DELETE FROM equity
                 WHERE EXISTS (SELECT 1 FROM latest l WHERE l.bot_id = equity.bot_id AND equity.ts < l.top - ?1)
                   AND NOT EXISTS (SELECT 1 FROM keep k WHERE k.bot_id = equity.bot_id AND k.ts = equity.ts)",
                [equity_full_ms],
            )?;
            let logs = c.execute(
                "DELETE FROM logs WHERE ts < ?1",
                [now.saturating_sub(logs_ms)],
            )?;
            let audit = c.execute(
                "DELETE FROM audit WHERE ts < ?1",
                [now.saturating_sub(audit_ms)],
            )?;
            let answers = c.execute(
                "DELETE FROM idempotency WHERE created_at < ?1",
                [now.saturating_sub(idempotency_ms)],
            )?;
            Ok(thinned + logs + audit + answers)
        })?;
        Ok(others
            + self.prune_feed_candles()?
            + self.prune_config_versions(config_versions_kept)?)
    }

    fn order_changes(
        &self,
        bot_id: &str,
        order_id: u64,
    ) -> StoreResult<Vec<(String, i64, String)>> {
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT status, ts, data FROM order_changes
                 WHERE bot_id = ?1 AND order_id = ?2 ORDER BY id",
            )?;
            let rows = statement.query_map(params![bot_id, order_id as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn append_system_event(&self, ts: i64, kind: &str, data: &str) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO system_events (ts, kind, data) VALUES (?1, ?2, ?3)",
                params![ts, kind, data],
            )?;
            Ok(())
        })
    }

    fn system_events(&self, limit: usize) -> StoreResult<Vec<(i64, String, String)>> {
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT ts, kind, data FROM system_events ORDER BY id DESC LIMIT ?1",
            )?;
            let rows =
                statement.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn count_fills(&self) -> StoreResult<u64> {
        self.with(|c| {
            Ok(c.query_row("SELECT COUNT(*) FROM fills", [], |r| r.get::<_, i64>(0))? as u64)
        })
    }

    fn bots(&self) -> StoreResult<Vec<StoredBot>> {
        self.with(|c| {
            // The config in force is each bot's newest version.
            let mut statement = c.prepare(
                "SELECT b.id, v.version, v.config FROM bots b
                 JOIN config_versions v ON v.bot_id = b.id
                  AND v.version = (SELECT MAX(version) FROM config_versions WHERE bot_id = b.id)
                 ORDER BY b.id",
            )?;
            let rows = statement.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            let mut bots = Vec::new();
            for row in rows {
                let (id, version, config) = row?;
                let config = serde_json::from_str(&config)
                    .map_err(|e| StoreError::Corrupt(format!("config of bot {id}: {e}")))?;
                bots.push(StoredBot {
                    id,
                    version: version as u64,
                    config,
                });
            }
            Ok(bots)
        })
    }

    fn config_versions(
        &self,
        bot_id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<ConfigVersion>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT bot_id, version, config, created_at, actor FROM config_versions
                 WHERE bot_id = ?1 AND (?2 IS NULL OR version < ?2)
                 ORDER BY version DESC LIMIT ?3",
            )?;
            let rows = statement.query_map(
                params![bot_id, before.map(|b| b as i64), limit as i64],
                read_version,
            )?;
            collect_versions(rows)
        })
    }

    fn config_version(&self, bot_id: &str, version: u64) -> StoreResult<Option<ConfigVersion>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT bot_id, version, config, created_at, actor FROM config_versions
                 WHERE bot_id = ?1 AND version = ?2",
            )?;
            let rows = statement.query_map(params![bot_id, version as i64], read_version)?;
            Ok(collect_versions(rows)?.pop())
        })
    }

    // --- presets --------------------------------------------------------

    fn presets(&self) -> StoreResult<Vec<PresetRecord>> {
        self.with(|c| {
            let mut statement =
                c.prepare("SELECT name, config, updated_at FROM presets ORDER BY name")?;
            let rows = statement.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            let mut presets = Vec::new();
            for row in rows {
                let (name, config, updated_at) = row?;
                let config = serde_json::from_str(&config)
                    .map_err(|e| StoreError::Corrupt(format!("preset {name}: {e}")))?;
                presets.push(PresetRecord {
                    name,
                    config,
                    updated_at,
                });
            }
            Ok(presets)
        })
    }

    fn put_preset(&self, preset: &PresetRecord) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO presets (name, config, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at",
                params![preset.name, preset.config.to_string(), preset.updated_at],
            )?;
            Ok(())
        })
    }

    fn delete_preset(&self, name: &str) -> StoreResult<bool> {
        self.with(|c| Ok(c.execute("DELETE FROM presets WHERE name = ?1", params![name])? > 0))
    }

    fn put_plugin_blob(&self, blob: &PluginBlob) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO plugin_blobs (content_hash, name, version, bytes, uploaded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![blob.content_hash, blob.name, blob.version, blob.bytes, blob.uploaded_at],
            )?;
            Ok(())
        })
    }

    fn plugin_blobs(&self) -> StoreResult<Vec<PluginBlob>> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT content_hash, name, version, bytes, uploaded_at FROM plugin_blobs
                 ORDER BY uploaded_at, content_hash",
            )?;
            let rows = statement.query_map([], |r| {
                Ok(PluginBlob {
                    content_hash: r.get(0)?,
                    name: r.get(1)?,
                    version: r.get(2)?,
                    bytes: r.get(3)?,
                    uploaded_at: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn delete_plugin_blob(&self, content_hash: &str) -> StoreResult<bool> {
        self.with(|c| {
            let deleted = c.execute(
                "DELETE FROM plugin_blobs WHERE content_hash = ?1",
                params![content_hash],
            )?;
            Ok(deleted > 0)
        })
    }

    fn kept_answer(&self, scope: &[u8; 32]) -> StoreResult<Option<KeptAnswer>> {
        self.with(|c| {
            let row = c
                .query_row(
                    "SELECT body_hash, status, headers, body, created_at FROM idempotency WHERE scope = ?1",
                    [scope.as_slice()],
                    |r| {
                        Ok((
                            r.get::<_, Vec<u8>>(0)?,
                            r.get::<_, u16>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Vec<u8>>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    },
                )
                .optional()?;
            let Some((body_hash, status, headers, body, created_at)) = row else {
                return Ok(None);
            };
            let body_hash = <[u8; 32]>::try_from(body_hash.as_slice())
                .map_err(|_| StoreError::Corrupt("a kept answer has a bad body hash".into()))?;
            let headers = serde_json::from_str(&headers)
                .map_err(|e| StoreError::Corrupt(format!("a kept answer's headers: {e}")))?;
            Ok(Some(KeptAnswer {
                scope: *scope,
                body_hash,
                status,
                headers,
                body,
                created_at,
            }))
        })
    }

    fn keep_answer(
        &self,
        answer: &KeptAnswer,
        max_entries: usize,
        max_bytes: usize,
    ) -> StoreResult<()> {
        let headers = serde_json::to_string(&answer.headers)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT OR REPLACE INTO idempotency (scope, body_hash, status, headers, body, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    answer.scope.as_slice(),
                    answer.body_hash.as_slice(),
                    answer.status,
                    headers,
                    answer.body,
                    answer.created_at
                ],
            )?;
            loop {
                let (count, bytes): (i64, i64) = tx.query_row(
                    "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM idempotency",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                if count as usize <= max_entries && bytes as usize <= max_bytes {
                    break;
                }
                tx.execute(
                    "DELETE FROM idempotency WHERE scope =
                       (SELECT scope FROM idempotency ORDER BY created_at LIMIT 1)",
                    [],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }
}

fn read_version(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, i64, String, i64, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn collect_versions(
    rows: impl Iterator<Item = rusqlite::Result<(String, i64, String, i64, String)>>,
) -> StoreResult<Vec<ConfigVersion>> {
    let mut versions = Vec::new();
    for row in rows {
        let (bot_id, version, config, created_at, actor) = row?;
        let config = serde_json::from_str(&config).map_err(|e| {
            StoreError::Corrupt(format!("config version {version} of bot {bot_id}: {e}"))
        })?;
        versions.push(ConfigVersion {
            bot_id,
            version: version as u64,
            config,
            created_at,
            actor,
        });
    }
    Ok(versions)
}

/// Config versions one statement deletes at most: each statement is a
/// short transaction of its own, so the writer's commits (and readers)
/// interleave with the pruning of a long history instead of waiting for
/// all of it.
const VERSIONS_PER_DELETE: i64 = 1_000;
/// Feed candles removed per transaction when a feed's archive is pruned.
const CANDLES_PER_DELETE: i64 = 10_000;

impl SqliteStore {
    /// Keep each feed's newest [`FEED_CANDLES_KEPT`] candles. Each feed's
    /// cutoff is one lookup on the primary key, and the rows below it go
    /// [`CANDLES_PER_DELETE`] at a time, each chunk its own transaction:
    /// a feed that ran far ahead (millions of rows) never holds the write
    /// lock for long, so the writer's commits (the emergency stop's among
    /// them) get in between.
    fn prune_feed_candles(&self) -> StoreResult<usize> {
        let mut removed = 0;
        let mut previous = String::new();
        // Feed by feed, each found by one seek on the primary key (a scan
        // for the distinct feeds would read every row).
        while let Some(feed) = self.with(|c| {
            Ok(c.query_row(
                "SELECT feed FROM feed_candles WHERE feed > ?1 ORDER BY feed LIMIT 1",
                [&previous],
                |r| r.get::<_, String>(0),
            )
            .optional()?)
        })? {
            previous.clone_from(&feed);
            let cutoff: Option<i64> = self.with(|c| {
                Ok(c.query_row(
                    "SELECT ts FROM feed_candles WHERE feed = ?1
                     ORDER BY ts DESC LIMIT 1 OFFSET ?2",
                    params![feed, FEED_CANDLES_KEPT as i64 - 1],
                    |r| r.get(0),
                )
                .optional()?)
            })?;
            let Some(cutoff) = cutoff else { continue };
            loop {
                let deleted = self.with(|c| {
                    Ok(c.execute(
                        "DELETE FROM feed_candles WHERE feed = ?1 AND ts IN (
                           SELECT ts FROM feed_candles WHERE feed = ?1 AND ts < ?2
                           ORDER BY ts LIMIT ?3)",
                        params![feed, cutoff, CANDLES_PER_DELETE],
                    )?)
                })?;
                removed += deleted;
                if deleted < CANDLES_PER_DELETE as usize {
                    break;
                }
            }
        }
        Ok(removed)
    }

    /// Delete each bot's config versions but its newest `kept` (never
    /// fewer than one: the version in force is the newest), at most
    /// [`VERSIONS_PER_DELETE`] at a time.
    fn prune_config_versions(&self, kept: u32) -> StoreResult<usize> {
        let kept = i64::from(kept.max(1));
        let bots: Vec<String> = self.with(|c| {
            Ok(c.prepare("SELECT id FROM bots")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?)
        })?;
        let mut removed = 0;
        for bot in bots {
            loop {
                let deleted = self.with(|c| {
                    let (lowest, top): (Option<i64>, Option<i64>) = c.query_row(
                        "SELECT (SELECT MIN(version) FROM config_versions WHERE bot_id = ?1),
                                (SELECT MAX(version) FROM config_versions WHERE bot_id = ?1)",
                        [&bot],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )?;
                    let (Some(lowest), Some(top)) = (lowest, top) else {
                        return Ok(0);
                    };
                    let cutoff = top.saturating_sub(kept);
                    if lowest > cutoff {
                        return Ok(0);
                    }
                    let upper = cutoff.min(lowest.saturating_add(VERSIONS_PER_DELETE - 1));
                    Ok(c.execute(
                        "DELETE FROM config_versions WHERE bot_id = ?1 AND version <= ?2",
                        params![bot, upper],
                    )?)
                })?;
                if deleted == 0 {
                    break;
                }
                removed += deleted;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Record, store_with_writer};
    use serde_json::json;

    #[test]
    fn plugin_blobs_are_kept_once_by_hash_and_forgotten_on_delete() {
        let dir = tempfile::tempdir().unwrap();
        let blob = PluginBlob {
            content_hash: "ab".repeat(32),
            name: "p".into(),
            version: "1.0.0".into(),
            bytes: vec![0, 97, 115, 109, 255],
            uploaded_at: 5,
        };
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            store.put_plugin_blob(&blob).unwrap();
            // The same bytes again: still one, the first upload's time.
            store
                .put_plugin_blob(&PluginBlob {
                    uploaded_at: 9,
                    ..blob.clone()
                })
                .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.plugin_blobs().unwrap(), vec![blob.clone()]);
        assert!(store.delete_plugin_blob(&blob.content_hash).unwrap());
        assert!(!store.delete_plugin_blob(&blob.content_hash).unwrap());
        assert!(store.plugin_blobs().unwrap().is_empty());
    }

    #[test]
    fn a_call_in_progress_never_holds_up_another() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store.set_meta("k", "v").unwrap();
        // While one call holds its connection (a long read), another call
        // answers: with one shared connection it would wait for ever.
        let answered = store.with(|_held| {
            std::thread::scope(|scope| {
                let (sender, receiver) = std::sync::mpsc::channel();
                let store = &store;
                scope.spawn(move || sender.send(store.meta("k")));
                // A generous bound: a bug fails the test instead of hanging it.
                Ok(receiver.recv_timeout(Duration::from_secs(30)))
            })
        });
        let answer = answered.unwrap().expect("the second call answered");
        assert_eq!(answer.unwrap(), Some("v".to_string()));
    }

    #[test]
    fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            store
                .insert_token(&TokenRecord {
                    id: "t1".into(),
                    name: "ci".into(),
                    role: "operator".into(),
                    hash: vec![7; 32],
                    created_at: 1,
                    revoked_at: None,
                })
                .unwrap();
            for version in 1..=3 {
                store
                    .save_config_version(&ConfigVersion {
                        bot_id: "a".into(),
                        version,
                        config: json!({ "v": version }),
                        created_at: version as i64,
                        actor: "ci".into(),
                    })
                    .unwrap();
            }
            store
                .append_audit(&AuditEntry {
                    actor: "ci".into(),
                    action: "POST /api/v1/bots".into(),
                    status: 201,
                    ..AuditEntry::default()
                })
                .unwrap();
            assert!(store.revoke_token("t1", 5).unwrap());
            assert!(!store.revoke_token("t1", 6).unwrap(), "already revoked");
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.tokens().unwrap()[0].revoked_at, Some(5));
        let bots = store.bots().unwrap();
        assert_eq!((bots[0].version, &bots[0].config), (3, &json!({ "v": 3 })));
        let page = store.config_versions("a", Some(3), 10).unwrap();
        let versions: Vec<u64> = page.iter().map(|v| v.version).collect();
        assert_eq!(versions, [2, 1]);
        assert_eq!(
            store.config_version("a", 1).unwrap().unwrap().config,
            json!({ "v": 1 })
        );
        let audit = store
            .audit(&AuditQuery {
                actor: Some("ci".into()),
                limit: 10,
                ..AuditQuery::default()
            })
            .unwrap();
        assert_eq!(audit.len(), 1);
        store.delete_bot("a").unwrap();
        assert!(store.bots().unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pruning_thins_old_equity_and_drops_old_logs() {
        let (_dir, store, writer, thread) = store_with_writer();
        const HOUR: i64 = 3_600_000;
        let mut records = Vec::new();
        // Ten days of one sample a minute.
        for minute in 0..(10 * 24 * 60) {
            records.push(Record::Equity {
                bot_id: "a".into(),
                ts: minute * 60_000,
                equity: "1".into(),
                exposed: false,
            });
        }
        for (id, ts) in [(1, 0), (2, 9 * 24 * HOUR)] {
            records.push(Record::Log {
                id,
                ts,
                level: "INFO".into(),
                component: "test".into(),
                bot_id: None,
                plugin: None,
                message: "line".into(),
            });
        }
        for ts in [0, 9 * 24 * HOUR] {
            records.push(Record::Audit(AuditEntry {
                ts,
                actor: "anonymous".into(),
                action: "POST /api/v1/bots".into(),
                status: 401,
                ..AuditEntry::default()
            }));
        }
        writer.commit(records).await.unwrap();
        let removed = store
            .prune(&PrunePolicy {
                equity_full_ms: 7 * 24 * HOUR,
                logs_ms: 5 * 24 * HOUR,
                audit_ms: 5 * 24 * HOUR,
                config_versions_kept: 1_000,
                idempotency_ms: 24 * HOUR,
                now: 10 * 24 * HOUR,
            })
            .unwrap();
        let audit = store
            .audit(&AuditQuery {
                limit: 10,
                ..AuditQuery::default()
            })
            .unwrap();
        assert_eq!(audit.len(), 1, "the old audit entry is gone");
        assert_eq!(audit[0].ts, 9 * 24 * HOUR);
        let kept = store.recent_equity("a", 100_000).unwrap();
        let old: Vec<_> = kept
            .iter()
            .filter(|(ts, ..)| *ts < 3 * 24 * HOUR - 60_000)
            .collect();
        assert_eq!(old.len(), 3 * 24, "one sample per hour in the old part");
        let recent = kept.iter().filter(|(ts, ..)| *ts >= 3 * 24 * HOUR).count();
        assert_eq!(recent, 7 * 24 * 60, "the recent part untouched");
        let logs = store
            .logs_page(&LogFilter {
                limit: 10,
                ..LogFilter::default()
            })
            .unwrap();
        assert_eq!(logs.len(), 1, "the old line is gone");
        assert!(removed > 4_000);
        drop(writer);
        thread.shutdown();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn log_lines_page_back_by_id_with_filters() {
        let (_dir, store, writer, thread) = store_with_writer();
        let lines = [
            (1, "INFO", Some("a"), "started"),
            (2, "WARN", Some("a"), "slow"),
            (3, "DEBUG", Some("b"), "detail"),
            (4, "ERROR", Some("a"), "failed"),
            (5, "INFO", None, "listening"),
        ];
        let records = lines
            .iter()
            .map(|&(id, level, bot, message)| Record::Log {
                id,
                ts: id as i64 * 1_000,
                level: level.into(),
                component: "engine".into(),
                bot_id: bot.map(str::to_string),
                plugin: None,
                message: message.into(),
            })
            .collect();
        writer.commit(records).await.unwrap();
        let messages = |filter: LogFilter| -> Vec<String> {
            store
                .logs_page(&filter)
                .unwrap()
                .into_iter()
                .map(|line| line.message)
                .collect()
        };
        let all = LogFilter {
            limit: 10,
            ..LogFilter::default()
        };
        assert_eq!(
            messages(all.clone()),
            ["listening", "failed", "detail", "slow", "started"]
        );
        let of_a_warn_or_worse = LogFilter {
            bot_id: Some("a".into()),
            levels: Some(vec!["ERROR".into(), "WARN".into()]),
            ..all.clone()
        };
        assert_eq!(messages(of_a_warn_or_worse), ["failed", "slow"]);
        // A page of two, then the page before its last line.
        let first = LogFilter {
            limit: 2,
            ..all.clone()
        };
        assert_eq!(messages(first), ["listening", "failed"]);
        let next = LogFilter {
            limit: 2,
            before_id: Some(4),
            ..all.clone()
        };
        assert_eq!(messages(next), ["detail", "slow"]);
        let recent = LogFilter {
            since: Some(4_000),
            ..all
        };
        assert_eq!(messages(recent), ["listening", "failed"]);
        drop(writer);
        thread.shutdown();
    }

    #[test]
    fn a_new_database_takes_small_pages_and_an_old_one_keeps_its_own() {
        let page_size = |store: &SqliteStore| -> i64 {
            store
                .with(|c| Ok(c.pragma_query_value(None, "page_size", |r| r.get(0))?))
                .unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            page_size(&SqliteStore::open(dir.path()).unwrap()),
            PAGE_SIZE
        );
        let old = tempfile::tempdir().unwrap();
        Connection::open(old.path().join(DATABASE_FILE))
            .unwrap()
            .execute_batch(
                "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (x);",
            )
            .unwrap();
        let store = SqliteStore::open(old.path()).unwrap();
        assert_eq!(page_size(&store), 4096);
        store.set_meta("still", "works").unwrap();
        assert_eq!(store.meta("still").unwrap().as_deref(), Some("works"));
    }

    #[test]
    fn full_synchronous_is_a_setting() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_with(dir.path(), Synchronous::Full).unwrap();
        let level: i64 = store
            .with(|c| Ok(c.pragma_query_value(None, "synchronous", |r| r.get(0))?))
            .unwrap();
        assert_eq!(level, 2, "FULL");
        assert_eq!(store.synchronous(), Synchronous::Full);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DATABASE_FILE), vec![0x42u8; 8192]).unwrap();
        let error = SqliteStore::open(dir.path()).err().expect("refused");
        assert!(
            error.to_string().contains("cannot open the database"),
            "{error}"
        );
    }
    /// Each bot keeps its newest config versions only; the one in force
    /// (the newest) always stays, and other bots' histories are their own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pruning_keeps_each_bots_newest_config_versions() {
        let (_dir, store, writer, thread) = store_with_writer();
        let version = |bot_id: &str, version: u64| Record::ConfigVersion {
            bot_id: bot_id.into(),
            version,
            config: format!("{{\"v\":{version}}}"),
            created_at: version as i64,
            actor: "test".into(),
        };
        let mut records: Vec<Record> = (1..=5).map(|v| version("many", v)).collect();
        records.push(version("one", 1));
        writer.commit(records).await.unwrap();
        let policy = |kept| PrunePolicy {
            equity_full_ms: i64::MAX,
            logs_ms: i64::MAX,
            audit_ms: i64::MAX,
            config_versions_kept: kept,
            idempotency_ms: i64::MAX,
            now: 0,
        };
        let versions = |bot: &str| -> Vec<u64> {
            store
                .config_versions(bot, None, 100)
                .unwrap()
                .iter()
                .map(|v| v.version)
                .collect()
        };

        assert_eq!(store.prune(&policy(2)).unwrap(), 3);
        assert_eq!(versions("many"), [5, 4]);
        assert_eq!(versions("one"), [1]);
        assert_eq!(store.config_version("many", 3).unwrap(), None);

        // Zero keeps the version in force all the same.
        assert_eq!(store.prune(&policy(0)).unwrap(), 1);
        assert_eq!(versions("many"), [5]);
        assert_eq!(versions("one"), [1]);
        drop(writer);
        thread.shutdown();
    }

    /// A history longer than one deletion takes (several of them) ends
    /// with exactly the newest versions.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_history_longer_than_one_deletion_is_pruned_to_exactly_the_newest() {
        let (_dir, store, writer, thread) = store_with_writer();
        let records = (1..=2_500)
            .map(|version| Record::ConfigVersion {
                bot_id: "long".into(),
                version,
                config: "{}".into(),
                created_at: version as i64,
                actor: "test".into(),
            })
            .collect();
        writer.commit(records).await.unwrap();
        assert_eq!(store.prune_config_versions(10).unwrap(), 2_490);
        let kept: Vec<u64> = store
            .config_versions("long", None, 100)
            .unwrap()
            .iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(kept, (2_491..=2_500).rev().collect::<Vec<_>>());
        drop(writer);
        thread.shutdown();
    }

    /// A feed that ran far past the candles kept (more than two deletions'
    /// worth) keeps exactly its newest; a short one keeps everything.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_feed_keeps_exactly_its_newest_candles() {
        let (_dir, store, writer, thread) = store_with_writer();
        let long = FEED_CANDLES_KEPT as i64 + 2 * CANDLES_PER_DELETE + 7;
        let candle = |feed: &str, ts: i64| Record::Candle {
            feed: feed.into(),
            ts,
            data: ts.to_string(),
        };
        let mut records: Vec<Record> = (0..long).map(|ts| candle("fast", ts)).collect();
        records.extend((0..10).map(|ts| candle("slow", ts)));
        writer.commit(records).await.unwrap();

        let removed = store.prune_feed_candles().unwrap();
        assert_eq!(removed as i64, long - FEED_CANDLES_KEPT as i64);
        let fast = store
            .recent_candles("fast", FEED_CANDLES_KEPT + 100)
            .unwrap();
        let expected: Vec<String> = (long - FEED_CANDLES_KEPT as i64..long)
            .map(|ts| ts.to_string())
            .collect();
        assert_eq!(fast, expected);
        assert_eq!(store.recent_candles("slow", 100).unwrap().len(), 10);
        assert_eq!(
            store.prune_feed_candles().unwrap(),
            0,
            "nothing left to remove"
        );
        drop(writer);
        thread.shutdown();
    }
}
