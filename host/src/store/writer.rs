//! [`Writer`]: the engine's records reach the database through here.
//!
//! Runners hand it a batch (one candle's or one command's records) and wait
//! for the commit before they publish anything, which is the durability
//! rule: nothing is acknowledged or published before it is committed. A
//! dedicated thread with its own connection takes every batch waiting and
//! writes them in one transaction (group commit), so many bots share one
//! commit. The queue is bounded: when it is full, runners wait (back
//! pressure); nothing is ever dropped.

use std::path::Path;
use std::thread::JoinHandle;

use rusqlite::{Connection, params};
use tokio::sync::{mpsc, oneshot};

use super::{StoreError, StoreResult};

/// Batches waiting before senders wait.
pub const QUEUE: usize = 4_096;
/// Most batches folded into one transaction.
pub const MAX_GROUP: usize = 1_024;

/// One row to write. Payloads are JSON text (the runtime's own types); the
/// other fields are what the store indexes and filters on.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// An order's new state: replaces the latest, and is added to its
    /// history of changes.
    Order {
        bot_id: String,
        order_id: u64,
        status: String,
        created_ts: i64,
        updated_ts: i64,
        data: String,
    },
    Fill {
        bot_id: String,
        ts: i64,
        data: String,
    },
    Trade {
        bot_id: String,
        exit_ts: i64,
        data: String,
    },
    Equity {
        bot_id: String,
        ts: i64,
        equity: String,
        exposed: bool,
    },
    Risk {
        bot_id: String,
        ts: i64,
        kind: String,
        data: String,
    },
    /// The bot's runtime state and engine checkpoint (replaces the last).
    BotState {
        bot_id: String,
        updated_at: i64,
        state: String,
    },
    /// A candle a feed published (kept once per feed and time).
    Candle { feed: String, ts: i64, data: String },
    /// A new config version of a bot (version 1 creates the bot).
    ConfigVersion {
        bot_id: String,
        version: u64,
        config: String,
        created_at: i64,
        actor: String,
    },
    /// A bot is gone: its config history, state and records go with it
    /// (the audit log keeps its trace).
    BotDeleted { bot_id: String },
    /// A value of the key/value table.
    Meta { key: String, value: String },
    /// A host-wide event (the emergency stop, its release).
    SystemEvent { ts: i64, kind: String, data: String },
    /// An entry of the audit log.
    Audit(super::AuditEntry),
    /// A log line, under the log book's id.
    Log {
        id: u64,
        ts: i64,
        level: String,
        component: String,
        bot_id: Option<String>,
        plugin: Option<String>,
        message: String,
    },
}

/// One caller's records: committed all together or not at all, whatever
/// happens to the other commits of its group.
struct Commit {
    records: Vec<Record>,
    done: oneshot::Sender<Result<(), String>>,
}

enum Message {
    Commit(Commit),
    /// Write what is queued before this, then end.
    Shutdown,
}

/// A handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    commits: mpsc::Sender<Message>,
}

/// The thread itself: [`WriterThread::shutdown`] ends it.
pub struct WriterThread {
    handle: JoinHandle<()>,
    commits: mpsc::Sender<Message>,
    checkpointer: Checkpointer,
}

/// WAL bytes after which a commit copies the WAL into the database file
/// (SQLite's automatic checkpoint, which also lets the WAL start over).
/// Kept small: a commit that checkpoints makes every batch queued behind it
/// wait, so a large WAL made rare but long stalls (tens of milliseconds at
/// 40 MB). Given in bytes, so that databases of either page size (see
/// [`super::sqlite::PAGE_SIZE`]) checkpoint as often.
const WAL_CHECKPOINT_BYTES: i64 = 4 << 20;
/// How often the checkpointer copies committed WAL pages into the database
/// file, on a thread and connection of its own and in PASSIVE mode (it
/// never waits for the writer): most of the copying then happens off the
/// writer's path, and the checkpoint inside a commit has little left to do.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Copies the WAL into the database now and then, off the writer's path.
struct Checkpointer {
    stop: std::sync::mpsc::Sender<()>,
    handle: JoinHandle<()>,
}

impl Checkpointer {
    fn start(path: &Path) -> StoreResult<Self> {
        let connection = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("stratbox-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    let copied =
                        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    if let Err(error) = copied {
                        tracing::warn!(%error, "WAL checkpoint failed");
                    }
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the checkpointer: {e}")))?;
        Ok(Self { stop, handle })
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.join();
    }
}

impl WriterThread {
    /// Write every batch queued so far, then end the thread (handles still
    /// alive then fail their commits). Blocks the caller until it is done.
    pub fn shutdown(self) {
        let Self {
            handle,
            commits,
            checkpointer,
        } = self;
        // A plain thread, so that this may be called from async code too.
        let stopper = std::thread::spawn(move || {
            let _ = commits.blocking_send(Message::Shutdown);
            let _ = handle.join();
            checkpointer.stop();
        });
        let _ = stopper.join();
    }
}

impl Writer {
    /// Start the writer on `store`'s database, with its durability.
    pub fn start(store: &super::SqliteStore) -> StoreResult<(Writer, WriterThread)> {
        Self::start_at(store.path(), store.synchronous())
    }

    fn start_at(
        path: &Path,
        synchronous: super::Synchronous,
    ) -> StoreResult<(Writer, WriterThread)> {
        let connection = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        connection.pragma_update(None, "synchronous", synchronous.pragma())?;
        connection.busy_timeout(std::time::Duration::from_secs(30))?;
        let page_size: i64 = connection.query_row("PRAGMA page_size", [], |row| row.get(0))?;
        connection.pragma_update(
            None,
            "wal_autocheckpoint",
            WAL_CHECKPOINT_BYTES / page_size.max(512),
        )?;
        let checkpointer = Checkpointer::start(path)?;
        let (commits, queue) = mpsc::channel(QUEUE);
        let handle = std::thread::Builder::new()
            .name("stratbox-writer".into())
            .spawn(move || run(connection, queue))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer: {e}")))?;
        let thread = WriterThread {
            handle,
            commits: commits.clone(),
            checkpointer,
        };
        Ok((Writer { commits }, thread))
    }

    /// Queue `records` without waiting for the commit; false (and nothing
    /// queued) when the queue is full. For what may be lost under overload
    /// (log lines), never for trading records.
    pub fn try_submit(&self, records: Vec<Record>) -> bool {
        let (done, _) = oneshot::channel();
        self.commits
            .try_send(Message::Commit(Commit { records, done }))
            .is_ok()
    }

    /// Queue `records`, waiting for room in the queue but not for the
    /// commit (what must not be lost but need not hold its caller up: audit
    /// entries of authenticated calls). False when the writer has stopped.
    pub async fn submit(&self, records: Vec<Record>) -> bool {
        let (done, _) = oneshot::channel();
        self.commits
            .send(Message::Commit(Commit { records, done }))
            .await
            .is_ok()
    }

    /// Wait until every batch queued before this call is committed (the
    /// queue is first in, first out): a reader then sees what was submitted
    /// without waiting, e.g. the audit entries of calls already answered.
    pub async fn flush(&self) -> Result<(), String> {
        self.send_and_wait(Vec::new()).await
    }

    /// Write `records` in one transaction (shared with other batches);
    /// returns once they are committed.
    pub async fn commit(&self, records: Vec<Record>) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        self.send_and_wait(records).await
    }

    async fn send_and_wait(&self, records: Vec<Record>) -> Result<(), String> {
        let (done, committed) = oneshot::channel();
        self.commits
            .send(Message::Commit(Commit { records, done }))
            .await
            .map_err(|_| "the writer has stopped".to_string())?;
        committed
            .await
            .map_err(|_| "the writer has stopped".to_string())?
    }
}

fn run(mut connection: Connection, mut queue: mpsc::Receiver<Message>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut ending = false;
    while !ending {
        match queue.blocking_recv() {
            Some(Message::Commit(first)) => group.push(first),
            Some(Message::Shutdown) | None => break,
        }
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(Message::Commit(commit)) => group.push(commit),
                Ok(Message::Shutdown) => {
                    ending = true;
                    break;
                }
                Err(_) => break,
            }
        }
        match write(&mut connection, &group) {
            Ok(outcomes) => {
                for (commit, outcome) in group.drain(..).zip(outcomes) {
                    if let Err(error) = &outcome {
                        tracing::error!(%error, "a batch was refused by the database");
                    }
                    let _ = commit.done.send(outcome);
                }
            }
            Err(error) => {
                let error = error.to_string();
                tracing::error!(%error, batches = group.len(), "records not committed");
                for commit in group.drain(..) {
                    let _ = commit.done.send(Err(error.clone()));
                }
            }
        }
    }
}

/// Every commit of `group` in one transaction, each inside a savepoint: a
/// commit the database refuses (its outcome says why) is rolled back alone.
fn write(
    connection: &mut Connection,
    group: &[Commit],
) -> rusqlite::Result<Vec<Result<(), String>>> {
    let mut tx = connection.transaction()?;
    let mut outcomes = Vec::with_capacity(group.len());
    for commit in group {
        let mut savepoint = tx.savepoint()?;
        match write_records(&savepoint, &commit.records) {
            Ok(()) => {
                savepoint.commit()?;
                outcomes.push(Ok(()));
            }
            Err(error) => {
                savepoint.rollback()?;
                outcomes.push(Err(error.to_string()));
            }
        }
    }
    tx.commit()?;
    Ok(outcomes)
}

fn write_records(tx: &rusqlite::Connection, records: &[Record]) -> rusqlite::Result<()> {
    {
        let mut order = tx.prepare_cached(
            "INSERT INTO orders (bot_id, order_id, status, created_ts, updated_ts, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (bot_id, order_id) DO UPDATE SET
               status = excluded.status, updated_ts = excluded.updated_ts, data = excluded.data",
        )?;
        let mut order_change = tx.prepare_cached(
            "INSERT INTO order_changes (bot_id, order_id, status, ts, data)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut fill =
            tx.prepare_cached("INSERT INTO fills (bot_id, ts, data) VALUES (?1, ?2, ?3)")?;
        let mut trade =
            tx.prepare_cached("INSERT INTO trades (bot_id, exit_ts, data) VALUES (?1, ?2, ?3)")?;
        let mut equity = tx.prepare_cached(
            "INSERT OR REPLACE INTO equity (bot_id, ts, equity, exposed) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut risk = tx.prepare_cached(
            "INSERT INTO risk_events (bot_id, ts, kind, data) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut log = tx.prepare_cached(
            "INSERT OR REPLACE INTO logs (id, ts, level, component, bot_id, plugin, message)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut candle = tx.prepare_cached(
            "INSERT OR IGNORE INTO feed_candles (feed, ts, data) VALUES (?1, ?2, ?3)",
        )?;
        let mut state = tx.prepare_cached(
            "INSERT INTO bot_state (bot_id, state, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (bot_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )?;
        for record in records {
            match record {
                Record::Order {
                    bot_id,
                    order_id,
                    status,
                    created_ts,
                    updated_ts,
                    data,
                } => {
                    order.execute(params![
                        bot_id,
                        *order_id as i64,
                        status,
                        created_ts,
                        updated_ts,
                        data
                    ])?;
                    order_change.execute(params![
                        bot_id,
                        *order_id as i64,
                        status,
                        updated_ts,
                        data
                    ])?;
                }
                Record::Fill { bot_id, ts, data } => {
                    fill.execute(params![bot_id, ts, data])?;
                }
                Record::Trade {
                    bot_id,
                    exit_ts,
                    data,
                } => {
                    trade.execute(params![bot_id, exit_ts, data])?;
                }
                Record::Equity {
                    bot_id,
                    ts,
                    equity: value,
                    exposed,
                } => {
                    equity.execute(params![bot_id, ts, value, exposed])?;
                }
                Record::Risk {
                    bot_id,
                    ts,
                    kind,
                    data,
                } => {
                    risk.execute(params![bot_id, ts, kind, data])?;
                }
                Record::BotState {
                    bot_id,
                    updated_at,
                    state: value,
                } => {
                    state.execute(params![bot_id, value, updated_at])?;
                }
                Record::Candle { feed, ts, data } => {
                    candle.execute(params![feed, ts, data])?;
                }
                Record::ConfigVersion {
                    bot_id,
                    version,
                    config,
                    created_at,
                    actor,
                } => {
                    tx.prepare_cached(
                        "INSERT INTO bots (id, version, config, created_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (id) DO UPDATE SET version = excluded.version, config = excluded.config",
                    )?
                    .execute(params![bot_id, *version as i64, config, created_at])?;
                    tx.prepare_cached(
                        "INSERT INTO config_versions (bot_id, version, config, created_at, actor)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        bot_id,
                        *version as i64,
                        config,
                        created_at,
                        actor
                    ])?;
                }
                Record::BotDeleted { bot_id } => {
                    for table in [
                        "config_versions",
                        "orders",
                        "order_changes",
                        "fills",
                        "trades",
                        "equity",
                        "risk_events",
                        "bot_state",
                    ] {
                        tx.prepare_cached(&format!("DELETE FROM {table} WHERE bot_id = ?1"))?
                            .execute([bot_id])?;
                    }
                    tx.prepare_cached("DELETE FROM bots WHERE id = ?1")?
                        .execute([bot_id])?;
                }
                Record::Meta { key, value } => {
                    tx.prepare_cached(
                        "INSERT INTO meta (key, value) VALUES (?1, ?2)
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    )?
                    .execute(params![key, value])?;
                }
                Record::Audit(entry) => {
                    tx.prepare_cached(
                        "INSERT INTO audit (ts, actor, role, action, target, status, remote, request_id, detail)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )?
                    .execute(params![
                        entry.ts,
                        entry.actor,
                        entry.role,
                        entry.action,
                        entry.target,
                        entry.status,
                        entry.remote,
                        entry.request_id,
                        entry.detail
                    ])?;
                }
                Record::SystemEvent { ts, kind, data } => {
                    tx.prepare_cached(
                        "INSERT INTO system_events (ts, kind, data) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![ts, kind, data])?;
                }
                Record::Log {
                    id,
                    ts,
                    level,
                    component,
                    bot_id,
                    plugin,
                    message,
                } => {
                    log.execute(params![
                        *id as i64, ts, level, component, bot_id, plugin, message
                    ])?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SqliteStore, Store};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_from_many_tasks_are_committed_before_the_answer() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let (writer, thread) = Writer::start(&store).unwrap();
        let mut tasks = Vec::new();
        for bot in 0..20 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..50 {
                    let bot_id = format!("bot-{bot}");
                    writer
                        .commit(vec![
                            Record::Fill {
                                bot_id: bot_id.clone(),
                                ts: n,
                                data: "{}".into(),
                            },
                            Record::BotState {
                                bot_id,
                                updated_at: n,
                                state: format!("{{\"n\":{n}}}"),
                            },
                        ])
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        // Committed means visible to another connection at once.
        assert_eq!(store.count_fills().unwrap(), 1_000);
        assert_eq!(
            store.bot_state("bot-7").unwrap().as_deref(),
            Some("{\"n\":49}")
        );
        drop(writer);
        thread.shutdown();
    }

    #[tokio::test]
    async fn a_flush_waits_for_what_was_queued_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let (writer, thread) = Writer::start(&store).unwrap();
        for n in 0..100 {
            assert!(writer.try_submit(vec![Record::Fill {
                bot_id: "queued".into(),
                ts: n,
                data: "{}".into(),
            }]));
        }
        writer.flush().await.unwrap();
        assert_eq!(store.count_fills().unwrap(), 100);
        drop(writer);
        thread.shutdown();
    }
}
