//! The database schema, as a list of migrations applied in order when the
//! store opens (`PRAGMA user_version` records how far a database got).
//! Append new migrations; never edit one that has shipped.

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

const SCHEMA_V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    hash       BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    ts         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    role       TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    status     INTEGER NOT NULL,
    remote     TEXT NOT NULL,
    request_id TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_by_actor ON audit (actor, id);
CREATE INDEX audit_by_time ON audit (ts);
CREATE TABLE bots (
    id         TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    config     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE config_versions (
    bot_id     TEXT NOT NULL,
    version    INTEGER NOT NULL,
    config     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    PRIMARY KEY (bot_id, version)
);
CREATE TABLE presets (
    name       TEXT PRIMARY KEY,
    config     TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
";

/// Trading records, written by the group-committing writer: orders (their
/// latest state), fills, round trips, equity samples, risk events, and each
/// bot's runtime state (bot state and engine checkpoint) for recovery.
const SCHEMA_V2: &str = "
CREATE TABLE orders (
    bot_id     TEXT NOT NULL,
    order_id   INTEGER NOT NULL,
    status     TEXT NOT NULL,
    created_ts INTEGER NOT NULL,
    updated_ts INTEGER NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (bot_id, order_id)
);
CREATE TABLE fills (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    bot_id TEXT NOT NULL,
    ts     INTEGER NOT NULL,
    data   TEXT NOT NULL
);
CREATE INDEX fills_by_bot ON fills (bot_id, id);
CREATE TABLE trades (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    bot_id  TEXT NOT NULL,
    exit_ts INTEGER NOT NULL,
    data    TEXT NOT NULL
);
CREATE INDEX trades_by_bot ON trades (bot_id, id);
CREATE TABLE equity (
    bot_id  TEXT NOT NULL,
    ts      INTEGER NOT NULL,
    equity  TEXT NOT NULL,
    exposed INTEGER NOT NULL,
    PRIMARY KEY (bot_id, ts)
) WITHOUT ROWID;
CREATE TABLE risk_events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    bot_id TEXT NOT NULL,
    ts     INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    data   TEXT NOT NULL
);
CREATE INDEX risk_events_by_bot ON risk_events (bot_id, id);
CREATE TABLE bot_state (
    bot_id     TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
";

/// Engine and plugin log lines, under the log book's own ids.
const SCHEMA_V3: &str = "
CREATE TABLE logs (
    id        INTEGER PRIMARY KEY,
    ts        INTEGER NOT NULL,
    level     TEXT NOT NULL,
    component TEXT NOT NULL,
    bot_id    TEXT,
    plugin    TEXT,
    message   TEXT NOT NULL
);
CREATE INDEX logs_by_time ON logs (ts);
";

/// Each feed's recent candles: where it resumes after a restart, and what
/// restored bots warm up on.
const SCHEMA_V4: &str = "
CREATE TABLE feed_candles (
    feed TEXT NOT NULL,
    ts   INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (feed, ts)
) WITHOUT ROWID;
";

/// Every state an order went through (the `orders` table keeps the
/// latest), and host-wide events (the emergency stop and its release).
const SCHEMA_V5: &str = "
CREATE TABLE order_changes (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    bot_id   TEXT NOT NULL,
    order_id INTEGER NOT NULL,
    status   TEXT NOT NULL,
    ts       INTEGER NOT NULL,
    data     TEXT NOT NULL
);
CREATE INDEX order_changes_by_order ON order_changes (bot_id, order_id, id);
CREATE TABLE system_events (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    ts   INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
";

/// Uploaded strategy plugins, by the SHA-256 of their bytes; a bot's log
/// lines found without a scan.
const SCHEMA_V6: &str = "
CREATE INDEX logs_by_bot ON logs (bot_id, id);
CREATE TABLE plugin_blobs (
    content_hash TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    bytes        BLOB NOT NULL,
    uploaded_at  INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Answers to requests sent with an `Idempotency-Key`, so that a retry
/// after a restart still gets the first answer; and audit entries found by
/// age for retention.
const SCHEMA_V7: &str = "
CREATE TABLE idempotency (
    scope      BLOB PRIMARY KEY,
    body_hash  BLOB NOT NULL,
    status     INTEGER NOT NULL,
    headers    TEXT NOT NULL,
    body       BLOB NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX idempotency_by_time ON idempotency (created_at);
";

/// A bot's config in force is its newest config version, stored once: a
/// config change writes one row, not the version and a copy in `bots`.
/// A bot whose copy in `bots` has no version row keeps it as one.
const SCHEMA_V8: &str = "
INSERT OR IGNORE INTO config_versions (bot_id, version, config, created_at, actor)
    SELECT id, version, config, created_at, 'host' FROM bots;
CREATE TABLE bots_v8 (
    id         TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);
INSERT INTO bots_v8 (id, created_at) SELECT id, created_at FROM bots;
DROP TABLE bots;
ALTER TABLE bots_v8 RENAME TO bots;
";

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(SCHEMA_V1),
        M::up(SCHEMA_V2),
        M::up(SCHEMA_V3),
        M::up(SCHEMA_V4),
        M::up(SCHEMA_V5),
        M::up(SCHEMA_V6),
        M::up(SCHEMA_V7),
        M::up(SCHEMA_V8),
    ])
}

pub(super) fn migrate(connection: &mut Connection) -> Result<(), rusqlite_migration::Error> {
    migrations().to_latest(connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid_and_apply_to_an_empty_database() {
        migrations().validate().unwrap();
        let mut connection = Connection::open_in_memory().unwrap();
        migrate(&mut connection).unwrap();
        let version: i64 = connection
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 8);
        // Applying again is a no-op.
        migrate(&mut connection).unwrap();
    }

    #[test]
    fn a_version_7_database_keeps_each_bots_config_in_force() {
        let mut connection = Connection::open_in_memory().unwrap();
        Migrations::new(
            [
                SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7,
            ]
            .into_iter()
            .map(M::up)
            .collect(),
        )
        .to_latest(&mut connection)
        .unwrap();
        for version in 1..=3 {
            connection
                .execute(
                    "INSERT INTO config_versions (bot_id, version, config, created_at, actor)
                     VALUES ('a', ?1, ?2, ?1, 'ci')",
                    rusqlite::params![version, format!("{{\"v\":{version}}}")],
                )
                .unwrap();
        }
        connection
            .execute(
                "INSERT INTO bots (id, version, config, created_at) VALUES ('a', 3, '{\"v\":3}', 1)",
                [],
            )
            .unwrap();
        migrate(&mut connection).unwrap();
        let history: Vec<(i64, String, String)> = connection
            .prepare("SELECT version, config, actor FROM config_versions WHERE bot_id = 'a' ORDER BY version")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            history,
            [1, 2, 3].map(|v| (v, format!("{{\"v\":{v}}}"), "ci".to_string())),
            "the history as it was, nothing added"
        );
        let created: i64 = connection
            .query_row("SELECT created_at FROM bots WHERE id = 'a'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(created, 1);
    }

    #[test]
    fn a_version_1_database_keeps_its_data_through_the_upgrade() {
        let mut connection = Connection::open_in_memory().unwrap();
        Migrations::new(vec![M::up(SCHEMA_V1)])
            .to_latest(&mut connection)
            .unwrap();
        connection
            .execute(
                "INSERT INTO bots (id, version, config, created_at) VALUES ('a', 3, '{}', 1)",
                [],
            )
            .unwrap();
        migrate(&mut connection).unwrap();
        let (version, config): (i64, String) = connection
            .query_row(
                "SELECT version, config FROM config_versions WHERE bot_id = 'a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (version, config.as_str()),
            (3, "{}"),
            "the bot's config in force is kept as its newest version"
        );
        let bots: i64 = connection
            .query_row("SELECT COUNT(*) FROM bots WHERE id = 'a'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(bots, 1);
        let schema: i64 = connection
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(schema, 8);
        connection
            .execute(
                "INSERT INTO fills (bot_id, ts, data) VALUES ('a', 1, '{}')",
                [],
            )
            .unwrap();
    }
}
