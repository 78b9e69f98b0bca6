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
use std::time::Instant;

use rusqlite::{Connection, params};
use tokio::sync::{mpsc, oneshot};

use super::{StoreError, StoreResult};

/// Batches waiting before senders wait.
pub const QUEUE: usize = 4_096;
/// Most batches folded into one transaction.
pub const MAX_GROUP: usize = 1_024;
/// The longest a group of quiet batches waits for the wave of decisions
/// it comes from to end (see [`Writer::commit_quiet`]).
pub const QUIET_WAITS_AT_MOST: std::time::Duration = std::time::Duration::from_millis(10);
/// A wave has ended when no strategy job is in flight and no batch has
/// come for this long (the runners build their batches after the jobs).
const QUIET_GAP: std::time::Duration = std::time::Duration::from_micros(500);
/// How often a waiting group looks again.
const QUIET_POLL: std::time::Duration = std::time::Duration::from_micros(100);

/// How many decisions are being made right now (strategy jobs queued or
/// running): a group of quiet batches waits while there are any (see
/// [`Writer::commit_quiet`]). Whoever starts the writer says where that
/// count comes from: the live runtime's `strategy_jobs_in_flight` in the
/// server, [`no_decisions`] where no bot runs. The store knows nothing of
/// strategies.
pub type DecisionsInFlight = fn() -> usize;

/// For a writer that serves no running bots: no wave to wait for.
pub fn no_decisions() -> usize {
    0
}

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
    /// May wait while decisions are being made (see [`Writer::commit_quiet`]).
    quiet: bool,
}

enum Message {
    Commit(Commit),
    /// Copy what is left of the WAL back, between two transactions (see
    /// [`Checkpointer`]).
    Checkpoint,
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

/// WAL size past which the WAL should start over (SQLite restarts it at
/// the first transaction after a checkpoint that copied every frame back).
/// Under the API benchmark the writer finishes a checkpoint about twice a
/// second, a 2-12 ms stall each; with 128 MB it did so a tenth as often
/// and the config PUT's p99 stayed where it was (11.7-11.9 ms against
/// 11.6-12.7 ms): those stalls are not what sets the tail.
const WAL_RESTART_BYTES: i64 = 32 << 20;
/// How often the checkpointer copies committed WAL pages into the database
/// file, on a thread and connection of its own and in PASSIVE mode (it
/// never waits for the writer). Each pass syncs both files, and the writer's
/// appends wait behind a sync: short passes keep those waits short. Config
/// PUTs under load (the API benchmark) had a p99 of 19.6-20.5 ms with a pass
/// every 250 ms, 12.8-13.6 ms every 20 ms, 11.0-11.2 ms every 5 ms and
/// 11.7-11.8 ms every 2 ms (where the passes cost more CPU than they save).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(5);
/// The longest wait between two passes: on a store with nothing new to
/// copy the wait doubles after each pass, up to this.
const CHECKPOINT_IDLE_EVERY: std::time::Duration = std::time::Duration::from_millis(160);
/// Frames a checkpointer pass may leave behind for the writer to finish.
const FINISH_AT_MOST_FRAMES: i64 = 1_024;
/// How long the checkpointer waits for the writer to finish a checkpoint
/// it asked for before it asks again (a WAL that is still long then: the
/// writer's checkpoint failed, or could not copy every frame).
const ASK_AGAIN_AFTER: std::time::Duration = std::time::Duration::from_millis(250);

/// Copies the WAL into the database file off the writer's path.
///
/// A checkpoint inside a commit holds every batch queued behind it. With
/// SQLite's automatic checkpoint every 4 MB of WAL, commits stalled for
/// 7-10 ms about five times a second under a stream of config changes. So
/// the writer never checkpoints on its own (`wal_autocheckpoint` off).
/// This thread copies continuously instead; but under a steady stream of
/// commits its passes never catch the last frame, and only a checkpoint
/// that copies every frame lets the WAL start over. So once the WAL is past
/// [`WAL_RESTART_BYTES`] and a pass has left little behind, it asks the
/// writer for a checkpoint between two transactions, which copies the last
/// few milliseconds' frames and syncs both files: a stall of a few
/// milliseconds, about once per 32 MB written instead of once per 4 MB.
struct Checkpointer {
    stop: std::sync::mpsc::Sender<()>,
    handle: JoinHandle<()>,
}

impl Checkpointer {
    fn start(
        path: &Path,
        writer: mpsc::Sender<Message>,
        wal_restart_bytes: i64,
    ) -> StoreResult<Self> {
        let connection = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let page_size: i64 = connection.query_row("PRAGMA page_size", [], |row| row.get(0))?;
        let restart_frames = wal_restart_bytes / page_size.max(512);
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("stratbox-checkpoint".into())
            .spawn(move || {
                let mut wait = CHECKPOINT_EVERY;
                let mut last = None;
                let mut asks = Asks::default();
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(wait)
                {
                    match checkpoint(&connection) {
                        Ok(pass) => {
                            // Full queue: the next pass asks again.
                            if asks.should_ask(pass, restart_frames, Instant::now())
                                && writer.try_send(Message::Checkpoint).is_ok()
                            {
                                asks.asked(Instant::now());
                            }
                            wait = pass.next_wait(last, wait);
                            last = Some(pass);
                        }
                        Err(error) => {
                            tracing::warn!(%error, "WAL checkpoint failed");
                            wait = longer(wait);
                        }
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

/// What a PASSIVE checkpoint did: frames in the WAL, frames copied back.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CheckpointPass {
    wal_frames: i64,
    copied_frames: i64,
}

impl CheckpointPass {
    /// The WAL is long enough to start over, and what is left to copy is
    /// short enough for the writer to copy between two transactions (or
    /// the WAL has grown so long that it must start over anyway: commits
    /// faster than the passes keep up with).
    fn needs_finishing(self, restart_frames: i64) -> bool {
        let left = self.wal_frames - self.copied_frames;
        self.wal_frames >= restart_frames
            && (left <= FINISH_AT_MOST_FRAMES || self.wal_frames >= 4 * restart_frames)
    }

    /// How long to wait after this pass, given the one before and the wait
    /// before it: [`CHECKPOINT_EVERY`] while commits add frames, twice as
    /// long each time nothing changed, at most [`CHECKPOINT_IDLE_EVERY`].
    fn next_wait(self, previous: Option<Self>, wait: std::time::Duration) -> std::time::Duration {
        if previous == Some(self) {
            longer(wait)
        } else {
            CHECKPOINT_EVERY
        }
    }
}

/// When the checkpointer last asked the writer to finish a checkpoint.
/// The writer may not have come to an ask by the next pass: a second ask
/// would stall its commits again for a WAL that has just started over.
#[derive(Debug, Default)]
struct Asks {
    last: Option<Instant>,
}

impl Asks {
    /// Whether to ask the writer after `pass`: the WAL needs finishing and
    /// no ask is pending (a WAL shorter than the restart length shows the
    /// last one was done).
    fn should_ask(&mut self, pass: CheckpointPass, restart_frames: i64, now: Instant) -> bool {
        if pass.wal_frames < restart_frames {
            self.last = None;
        }
        let pending = self
            .last
            .is_some_and(|at| now.saturating_duration_since(at) < ASK_AGAIN_AFTER);
        pass.needs_finishing(restart_frames) && !pending
    }

    fn asked(&mut self, at: Instant) {
        self.last = Some(at);
    }
}

/// The checkpointer's wait after `wait` led nowhere new: twice as long, at
/// most [`CHECKPOINT_IDLE_EVERY`].
fn longer(wait: std::time::Duration) -> std::time::Duration {
    (wait * 2).min(CHECKPOINT_IDLE_EVERY)
}

fn checkpoint(connection: &Connection) -> rusqlite::Result<CheckpointPass> {
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok(CheckpointPass {
            wal_frames: row.get(1)?,
            copied_frames: row.get(2)?,
        })
    })
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
    /// Start the writer on `store`'s database, with its durability; quiet
    /// batches wait while `decisions` counts any in flight.
    pub fn start(
        store: &super::SqliteStore,
        decisions: DecisionsInFlight,
    ) -> StoreResult<(Writer, WriterThread)> {
        Self::start_at(
            store.path(),
            store.synchronous(),
            WAL_RESTART_BYTES,
            decisions,
        )
    }

    fn start_at(
        path: &Path,
        synchronous: super::Synchronous,
        wal_restart_bytes: i64,
        decisions: DecisionsInFlight,
    ) -> StoreResult<(Writer, WriterThread)> {
        let connection = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        connection.pragma_update(None, "synchronous", synchronous.pragma())?;
        connection.busy_timeout(std::time::Duration::from_secs(30))?;
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        // Every statement a group can run stays prepared (rusqlite keeps 16).
        connection.set_prepared_statement_cache_capacity(64);
        let (commits, queue) = mpsc::channel(QUEUE);
        let checkpointer = Checkpointer::start(path, commits.clone(), wal_restart_bytes)?;
        let handle = std::thread::Builder::new()
            .name("stratbox-writer".into())
            .spawn(move || run(connection, queue, decisions))
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
            .try_send(Message::Commit(Commit {
                records,
                done,
                quiet: false,
            }))
            .is_ok()
    }

    /// Queue `records`, waiting for room in the queue but not for the
    /// commit (what must not be lost but need not hold its caller up: audit
    /// entries of authenticated calls). False when the writer has stopped.
    pub async fn submit(&self, records: Vec<Record>) -> bool {
        let (done, _) = oneshot::channel();
        self.commits
            .send(Message::Commit(Commit {
                records,
                done,
                quiet: false,
            }))
            .await
            .is_ok()
    }

    /// Wait until every batch queued before this call is committed (the
    /// queue is first in, first out): a reader then sees what was submitted
    /// without waiting, e.g. the audit entries of calls already answered.
    pub async fn flush(&self) -> Result<(), String> {
        self.send_and_wait(Vec::new(), false).await
    }

    /// Write `records` in one transaction (shared with other batches);
    /// returns once they are committed.
    pub async fn commit(&self, records: Vec<Record>) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        self.send_and_wait(records, false).await
    }

    /// As [`Writer::commit`], for a quiet candle's bookkeeping (its equity
    /// reading and the checkpoint after it: no order, no fill, no event),
    /// which may wait for the wave of decisions it belongs to to end
    /// (strategy jobs in flight, batches still arriving), for at most
    /// [`QUIET_WAITS_AT_MOST`]; a batch that may not wait takes it along.
    /// When 1,000 bots take the same candle, commits of the first ones'
    /// readings took the cores from the decisions of the last ones, and
    /// one group for the whole wave is cheaper than several (in the live
    /// benchmark the writer's work per wave fell from about 11 to 7 ms).
    pub async fn commit_quiet(&self, records: Vec<Record>) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        self.send_and_wait(records, true).await
    }

    async fn send_and_wait(&self, records: Vec<Record>, quiet: bool) -> Result<(), String> {
        let (done, committed) = oneshot::channel();
        self.commits
            .send(Message::Commit(Commit {
                records,
                done,
                quiet,
            }))
            .await
            .map_err(|_| "the writer has stopped".to_string())?;
        committed
            .await
            .map_err(|_| "the writer has stopped".to_string())?
    }
}

fn run(
    mut connection: Connection,
    mut queue: mpsc::Receiver<Message>,
    decisions: DecisionsInFlight,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut ending = false;
    while !ending {
        let mut finish_checkpoint = false;
        match queue.blocking_recv() {
            Some(Message::Commit(first)) => group.push(first),
            Some(Message::Checkpoint) => finish_checkpoint = true,
            Some(Message::Shutdown) | None => break,
        }
        ending = take_waiting(&mut queue, &mut group, &mut finish_checkpoint);
        // A group of quiet batches waits for the wave of decisions they
        // come from to end: while strategy jobs are in flight or batches
        // still arrive, up to a limit.
        let since = Instant::now();
        let mut last_arrival = since;
        // Kept up to date as batches arrive, not recounted at every look.
        let mut all_quiet = group.iter().all(|commit| commit.quiet);
        while !ending
            && !group.is_empty()
            && group.len() < MAX_GROUP
            && all_quiet
            && (decisions() > 0 || last_arrival.elapsed() < QUIET_GAP)
            && since.elapsed() < QUIET_WAITS_AT_MOST
        {
            std::thread::sleep(QUIET_POLL);
            let before = group.len();
            ending = take_waiting(&mut queue, &mut group, &mut finish_checkpoint);
            if group.len() > before {
                last_arrival = Instant::now();
                all_quiet = group[before..].iter().all(|commit| commit.quiet);
            }
        }
        if !group.is_empty() {
            commit_group(&mut connection, &mut group);
        }
        // After the group: its callers are answered first.
        if finish_checkpoint && let Err(error) = checkpoint(&connection) {
            tracing::warn!(%error, "WAL checkpoint failed");
        }
    }
}

/// Add what is queued to `group` (up to [`MAX_GROUP`]); true when the
/// writer is told to end.
fn take_waiting(
    queue: &mut mpsc::Receiver<Message>,
    group: &mut Vec<Commit>,
    finish_checkpoint: &mut bool,
) -> bool {
    while group.len() < MAX_GROUP {
        match queue.try_recv() {
            Ok(Message::Commit(commit)) => group.push(commit),
            Ok(Message::Checkpoint) => *finish_checkpoint = true,
            Ok(Message::Shutdown) => return true,
            Err(_) => break,
        }
    }
    false
}

/// Write `group` in one transaction and answer each of its callers.
fn commit_group(connection: &mut Connection, group: &mut Vec<Commit>) {
    match write(connection, group) {
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

/// Every commit of `group` in one transaction, each inside a savepoint: a
/// commit the database refuses (its outcome says why) is rolled back alone.
fn write(
    connection: &mut Connection,
    group: &[Commit],
) -> rusqlite::Result<Vec<Result<(), String>>> {
    let tx = connection.transaction()?;
    let mut outcomes = Vec::with_capacity(group.len());
    {
        let mut statements = Statements::new(&tx);
        for commit in group {
            // Prepared statements: rusqlite's `Savepoint` parses its
            // statements on every call, two parses per batch that cost the
            // writer a third of its time under config PUTs.
            statements.get(Sql::Savepoint)?.execute([])?;
            match write_records(&tx, &mut statements, &commit.records) {
                Ok(()) => outcomes.push(Ok(())),
                Err(error) => {
                    statements.get(Sql::Rollback)?.execute([])?;
                    outcomes.push(Err(error.to_string()));
                }
            }
            statements.get(Sql::Release)?.execute([])?;
        }
    }
    tx.commit()?;
    Ok(outcomes)
}

/// The statements a group runs, one per kind of write.
#[derive(Debug, Clone, Copy)]
enum Sql {
    Savepoint,
    Rollback,
    Release,
    Order,
    OrderChange,
    Fill,
    Trade,
    Equity,
    Risk,
    Log,
    Candle,
    State,
    Meta,
    SystemEvent,
}

impl Sql {
    const COUNT: usize = Sql::SystemEvent as usize + 1;

    fn text(self) -> &'static str {
        match self {
            Sql::Savepoint => "SAVEPOINT batch",
            Sql::Rollback => "ROLLBACK TO batch",
            Sql::Release => "RELEASE batch",
            Sql::Order => {
                "INSERT INTO orders (bot_id, order_id, status, created_ts, updated_ts, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (bot_id, order_id) DO UPDATE SET
                   status = excluded.status, updated_ts = excluded.updated_ts, data = excluded.data"
            }
            Sql::OrderChange => {
                "INSERT INTO order_changes (bot_id, order_id, status, ts, data)
                 VALUES (?1, ?2, ?3, ?4, ?5)"
            }
            Sql::Fill => "INSERT INTO fills (bot_id, ts, data) VALUES (?1, ?2, ?3)",
            Sql::Trade => "INSERT INTO trades (bot_id, exit_ts, data) VALUES (?1, ?2, ?3)",
            Sql::Equity => {
                "INSERT OR REPLACE INTO equity (bot_id, ts, equity, exposed) VALUES (?1, ?2, ?3, ?4)"
            }
            Sql::Risk => "INSERT INTO risk_events (bot_id, ts, kind, data) VALUES (?1, ?2, ?3, ?4)",
            Sql::Log => {
                "INSERT OR REPLACE INTO logs (id, ts, level, component, bot_id, plugin, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            }
            Sql::Candle => "INSERT OR IGNORE INTO feed_candles (feed, ts, data) VALUES (?1, ?2, ?3)",
            Sql::State => {
                "INSERT INTO bot_state (bot_id, state, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (bot_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at"
            }
            Sql::Meta => {
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            }
            Sql::SystemEvent => "INSERT INTO system_events (ts, kind, data) VALUES (?1, ?2, ?3)",
        }
    }
}

/// A group's statements, each taken from the connection's cache the first
/// time a record needs it and kept for the rest of the group: a candle's
/// batch (equity and checkpoint) looks up two statements, not every kind.
struct Statements<'c> {
    connection: &'c Connection,
    prepared: [Option<rusqlite::CachedStatement<'c>>; Sql::COUNT],
}

impl<'c> Statements<'c> {
    fn new(connection: &'c Connection) -> Self {
        Self {
            connection,
            prepared: std::array::from_fn(|_| None),
        }
    }

    fn get(&mut self, sql: Sql) -> rusqlite::Result<&mut rusqlite::CachedStatement<'c>> {
        let slot = &mut self.prepared[sql as usize];
        if slot.is_none() {
            *slot = Some(self.connection.prepare_cached(sql.text())?);
        }
        Ok(slot.as_mut().expect("prepared just above"))
    }
}

fn write_records(
    tx: &Connection,
    statements: &mut Statements<'_>,
    records: &[Record],
) -> rusqlite::Result<()> {
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
                statements.get(Sql::Order)?.execute(params![
                    bot_id,
                    *order_id as i64,
                    status,
                    created_ts,
                    updated_ts,
                    data
                ])?;
                statements.get(Sql::OrderChange)?.execute(params![
                    bot_id,
                    *order_id as i64,
                    status,
                    updated_ts,
                    data
                ])?;
            }
            Record::Fill { bot_id, ts, data } => {
                statements
                    .get(Sql::Fill)?
                    .execute(params![bot_id, ts, data])?;
            }
            Record::Trade {
                bot_id,
                exit_ts,
                data,
            } => {
                statements
                    .get(Sql::Trade)?
                    .execute(params![bot_id, exit_ts, data])?;
            }
            Record::Equity {
                bot_id,
                ts,
                equity,
                exposed,
            } => {
                statements
                    .get(Sql::Equity)?
                    .execute(params![bot_id, ts, equity, exposed])?;
            }
            Record::Risk {
                bot_id,
                ts,
                kind,
                data,
            } => {
                statements
                    .get(Sql::Risk)?
                    .execute(params![bot_id, ts, kind, data])?;
            }
            Record::BotState {
                bot_id,
                updated_at,
                state,
            } => {
                statements
                    .get(Sql::State)?
                    .execute(params![bot_id, state, updated_at])?;
            }
            Record::Candle { feed, ts, data } => {
                statements
                    .get(Sql::Candle)?
                    .execute(params![feed, ts, data])?;
            }
            Record::ConfigVersion {
                bot_id,
                version,
                config,
                created_at,
                actor,
            } => insert_config_version(tx, bot_id, *version, config, *created_at, actor)?,
            Record::BotDeleted { bot_id } => delete_bot_rows(tx, bot_id)?,
            Record::Meta { key, value } => {
                statements.get(Sql::Meta)?.execute(params![key, value])?;
            }
            Record::Audit(entry) => insert_audit(tx, entry)?,
            Record::SystemEvent { ts, kind, data } => {
                statements
                    .get(Sql::SystemEvent)?
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
                statements.get(Sql::Log)?.execute(params![
                    *id as i64, ts, level, component, bot_id, plugin, message
                ])?;
            }
        }
    }
    Ok(())
}

/// An entry of the audit log (through the writer, or straight from the
/// store).
pub(super) fn insert_audit(
    connection: &Connection,
    entry: &super::AuditEntry,
) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
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
    Ok(())
}

/// A new config version of a bot; the first one creates the bot. The config
/// in force is the newest version: it is stored once, here.
pub(super) fn insert_config_version(
    tx: &rusqlite::Connection,
    bot_id: &str,
    version: u64,
    config: &str,
    created_at: i64,
    actor: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO bots (id, created_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
    )?
    .execute(params![bot_id, created_at])?;
    tx.prepare_cached(
        "INSERT INTO config_versions (bot_id, version, config, created_at, actor)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![bot_id, version as i64, config, created_at, actor])?;
    Ok(())
}

/// Forget a bot, its config history and its records (the audit log keeps
/// its trace).
pub(super) fn delete_bot_rows(tx: &rusqlite::Connection, bot_id: &str) -> rusqlite::Result<()> {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SqliteStore, Store};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_from_many_tasks_are_committed_before_the_answer() {
        let (_dir, store, writer, thread) = crate::store::store_with_writer();
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

    #[test]
    fn a_batch_the_database_refuses_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut connection = Connection::open(store.path()).unwrap();
        let fill = |ts| Record::Fill {
            bot_id: "bot-1".into(),
            ts,
            data: "{}".into(),
        };
        let version = || Record::ConfigVersion {
            bot_id: "bot-1".into(),
            version: 1,
            config: "{}".into(),
            created_at: 0,
            actor: "test".into(),
        };
        let commit = |records| Commit {
            records,
            done: oneshot::channel().0,
            quiet: false,
        };
        // The third batch stores version 1 again: the database refuses it.
        let group = [
            commit(vec![fill(1), version()]),
            commit(vec![fill(2)]),
            commit(vec![fill(3), version()]),
            commit(vec![fill(4)]),
        ];
        let outcomes = write(&mut connection, &group).unwrap();
        let refused: Vec<bool> = outcomes.iter().map(Result::is_err).collect();
        assert_eq!(refused, [false, false, true, false]);
        assert_eq!(
            store.count_fills().unwrap(),
            3,
            "fill 3 went with its batch"
        );
        // The next group starts clean.
        let outcomes = write(&mut connection, &[commit(vec![fill(5)])]).unwrap();
        assert!(outcomes[0].is_ok());
        assert_eq!(store.count_fills().unwrap(), 4);
    }

    #[tokio::test]
    async fn a_flush_waits_for_what_was_queued_without_waiting() {
        let (_dir, store, writer, thread) = crate::store::store_with_writer();
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

    fn pass(wal_frames: i64, copied_frames: i64) -> CheckpointPass {
        CheckpointPass {
            wal_frames,
            copied_frames,
        }
    }

    #[test]
    fn the_writer_finishes_a_checkpoint_only_when_little_is_left() {
        let restart = 2_000;
        assert!(!pass(100, 100).needs_finishing(restart), "WAL still short");
        assert!(pass(restart, restart).needs_finishing(restart));
        assert!(pass(5_000, 5_000 - FINISH_AT_MOST_FRAMES).needs_finishing(restart));
        assert!(
            !pass(5_000, 4_000 - FINISH_AT_MOST_FRAMES).needs_finishing(restart),
            "too much left to copy between two transactions"
        );
        assert!(
            pass(4 * restart, 0).needs_finishing(restart),
            "a WAL four times too long starts over whatever is left"
        );
    }

    #[test]
    fn the_checkpointer_asks_once_until_the_wal_starts_over_or_the_ask_is_old() {
        let restart = 2_000;
        let start = Instant::now();
        let mut asks = Asks::default();
        assert!(asks.should_ask(pass(restart, restart), restart, start));
        asks.asked(start);
        let soon = start + CHECKPOINT_EVERY;
        assert!(
            !asks.should_ask(pass(restart + 50, restart + 50), restart, soon),
            "the writer has not come to the ask yet"
        );
        assert!(
            !asks.should_ask(pass(200, 200), restart, soon),
            "the WAL started over: nothing to finish"
        );
        assert!(
            asks.should_ask(pass(restart, restart), restart, soon),
            "the WAL that started over is long again"
        );
        asks.asked(soon);
        let late = soon + ASK_AGAIN_AFTER;
        assert!(
            asks.should_ask(pass(3 * restart, 3 * restart), restart, late),
            "an ask that led nowhere is made again"
        );
    }

    #[test]
    fn the_checkpointer_passes_often_while_commits_arrive_and_backs_off_when_idle() {
        let every = CHECKPOINT_EVERY;
        assert_eq!(pass(10, 10).next_wait(None, every), every);
        assert_eq!(pass(10, 10).next_wait(Some(pass(10, 10)), every), 2 * every);
        assert_eq!(
            pass(10, 10).next_wait(Some(pass(10, 10)), CHECKPOINT_IDLE_EVERY),
            CHECKPOINT_IDLE_EVERY,
            "the wait stops growing"
        );
        assert_eq!(
            pass(30, 10).next_wait(Some(pass(10, 10)), CHECKPOINT_IDLE_EVERY),
            every,
            "new frames: back to short passes"
        );
        assert_eq!(
            pass(3, 3).next_wait(Some(pass(30, 30)), 8 * every),
            every,
            "the WAL started over"
        );
    }

    /// Decisions in flight as the quiet-batch test sets them.
    static DECIDING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    fn deciding() -> usize {
        DECIDING.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A quiet batch waits while decisions are in flight: while they never
    /// end, for [`QUIET_WAITS_AT_MOST`] (then it goes anyway).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_quiet_batch_waits_for_decisions_but_not_for_longer() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let (writer, thread) = Writer::start(&store, deciding).unwrap();
        DECIDING.store(1, std::sync::atomic::Ordering::SeqCst);
        let reading = |ts| {
            vec![Record::Equity {
                bot_id: "quiet".into(),
                ts,
                equity: "1".into(),
                exposed: false,
            }]
        };
        let started = Instant::now();
        writer.commit_quiet(reading(1)).await.unwrap();
        DECIDING.store(0, std::sync::atomic::Ordering::SeqCst);
        assert!(
            started.elapsed() >= QUIET_WAITS_AT_MOST,
            "committed after {:?} with a decision in flight",
            started.elapsed()
        );
        drop(writer);
        thread.shutdown();
    }

    /// Under commits that never pause, the checkpointer's passes never
    /// copy the last frame; the WAL still starts over, so it stays short.
    /// The tasks write a fixed amount, not for a fixed time, so a slow
    /// machine takes longer rather than proving less.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_a_steady_stream_of_commits() {
        const RESTART_BYTES: u64 = 1 << 20;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let (writer, thread) = Writer::start_at(
            store.path(),
            store.synchronous(),
            RESTART_BYTES as i64,
            no_decisions,
        )
        .unwrap();
        let wal = std::path::PathBuf::from(format!("{}-wal", store.path().display()));
        const TASKS: u64 = 8;
        const PER_TASK_BYTES: u64 = 48 * RESTART_BYTES / TASKS;
        let state = "x".repeat(2_000);
        let mut tasks = Vec::new();
        for bot in 0..TASKS {
            let (writer, state) = (writer.clone(), state.clone());
            tasks.push(tokio::spawn(async move {
                let mut written = 0;
                while written < PER_TASK_BYTES {
                    let record = Record::BotState {
                        bot_id: format!("bot-{bot}"),
                        updated_at: written as i64,
                        state: state.clone(),
                    };
                    writer.commit(vec![record]).await.unwrap();
                    written += state.len() as u64;
                }
                written
            }));
        }
        // The WAL file keeps its largest size when it starts over.
        let mut written = 0;
        for task in tasks {
            written += task.await.unwrap();
        }
        // A WAL that never started over would hold at least what was
        // written (48 MiB and page overhead); one that does stays at a
        // fraction of it (on a busy two-core machine, a starved
        // checkpointer let it reach about 13 MiB, a quarter).
        let largest = std::fs::metadata(&wal).map_or(0, |m| m.len());
        assert!(
            largest < written / 2,
            "the WAL grew to {largest} bytes while {written} were written"
        );
        drop(writer);
        thread.shutdown();
    }
}
