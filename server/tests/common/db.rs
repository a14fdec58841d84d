//! The SQLite database file of a data directory, seen from outside the server: every row for
//! before-and-after comparisons, the few counts the black-box tests check, and deliberate
//! damage (an expiry moved into the past, a tampered audit row). The one module of the
//! black-box tests that runs SQL.

#![expect(
    clippy::disallowed_methods,
    reason = "black-box tests look at the database file itself, without the server's store; this is the one module that does"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use sqlx::SqlitePool;

/// One row of `audit_events`, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub ts: i64,
    pub actor: String,
    pub action: String,
    pub message_id: Option<String>,
    pub recipient_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// Every row of every table, each row rendered with SQLite's `quote()`, sorted; keyed by
/// table name.
pub type Dump = BTreeMap<String, Vec<String>>;

/// A connection to a database file, with its own small runtime so tests stay synchronous.
#[derive(Debug)]
pub struct Db {
    runtime: tokio::runtime::Runtime,
    pool: SqlitePool,
}

impl Db {
    /// Open `path` read-only: for looking without touching (the server may be running).
    pub fn read_only(path: &Path) -> Self {
        Self::open(path, true)
    }

    /// Open `path` for writing: for damage done on purpose.
    pub fn writable(path: &Path) -> Self {
        Self::open(path, false)
    }

    fn open(path: &Path, read_only: bool) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .read_only(read_only)
            .busy_timeout(Duration::from_secs(30));
        let pool = runtime
            .block_on(
                sqlx::pool::PoolOptions::new()
                    .max_connections(1)
                    .connect_with(options),
            )
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        Self { runtime, pool }
    }

    fn count(&self, sql: &'static str, bind: Option<&str>) -> i64 {
        let mut query = sqlx::query_scalar(sql);
        if let Some(value) = bind {
            query = query.bind(value.to_owned());
        }
        self.runtime
            .block_on(query.fetch_one(&self.pool))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn texts(&self, sql: &'static str) -> Vec<String> {
        self.runtime
            .block_on(sqlx::query_scalar(sql).fetch_all(&self.pool))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Every row of every table (see [`Dump`]).
    pub fn dump(&self) -> Dump {
        self.runtime.block_on(async {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .fetch_all(&self.pool)
            .await
            .expect("list tables");
            let mut dump = BTreeMap::new();
            for table in tables {
                let columns: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
                        .bind(&table)
                        .fetch_all(&self.pool)
                        .await
                        .expect("list columns");
                let expr = columns
                    .iter()
                    .map(|c| format!("'{c}=' || quote(\"{c}\")"))
                    .collect::<Vec<_>>()
                    .join(" || ' ' || ");
                let sql = format!("SELECT {expr} FROM \"{table}\" ORDER BY 1");
                let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await
                    .unwrap_or_else(|e| panic!("dump {table}: {e}"));
                dump.insert(table, rows);
            }
            dump
        })
    }

    /// How many messages are stored, in any state.
    pub fn messages(&self) -> i64 {
        self.count("SELECT count(*) FROM messages", None)
    }

    /// Messages not (yet) `ready`.
    pub fn receiving_messages(&self) -> i64 {
        self.count("SELECT count(*) FROM messages WHERE state <> 'ready'", None)
    }

    /// Recipients stored without a notification time.
    pub fn unnotified_recipients(&self) -> i64 {
        self.count(
            "SELECT count(*) FROM recipients WHERE notified_at IS NULL",
            None,
        )
    }

    /// Every stored recipient address, lower-cased.
    pub fn recipient_addresses(&self) -> BTreeSet<String> {
        self.texts("SELECT address FROM recipients")
            .iter()
            .map(|a| a.to_lowercase())
            .collect()
    }

    /// Ciphertext chunks left for `message_id`.
    pub fn chunks_of(&self, message_id: &str) -> i64 {
        self.count(
            "SELECT count(*) FROM chunks WHERE message_id = ?",
            Some(message_id),
        )
    }

    /// Recipients of `message_id` that still have a wrapped data key.
    pub fn wrapped_keys_of(&self, message_id: &str) -> i64 {
        self.count(
            "SELECT count(*) FROM recipients WHERE message_id = ? AND wrapped_dek IS NOT NULL",
            Some(message_id),
        )
    }

    /// The highest audit sequence number (0 for an empty log).
    pub fn last_audit_seq(&self) -> i64 {
        self.count("SELECT coalesce(max(seq), 0) FROM audit_events", None)
    }

    /// Every audit row, in seq order.
    pub fn audit_rows(&self) -> Vec<AuditRow> {
        self.runtime
            .block_on(
                sqlx::query_as(
                    "SELECT seq, ts, actor, action, message_id, recipient_id, ip, user_agent, \
                            detail, prev_hash, hash FROM audit_events ORDER BY seq",
                )
                .fetch_all(&self.pool),
            )
            .expect("audit rows")
    }

    /// Overwrite the detail and both hashes of audit row `row.seq` with `row`'s, as an insider
    /// rewriting the chain would.
    pub fn rewrite_audit_row(&self, row: &AuditRow) {
        let done = self
            .runtime
            .block_on(
                sqlx::query(
                    "UPDATE audit_events SET detail = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                )
                .bind(&row.detail)
                .bind(&row.prev_hash)
                .bind(&row.hash)
                .bind(row.seq)
                .execute(&self.pool),
            )
            .expect("rewrite audit row");
        assert_eq!(done.rows_affected(), 1, "no audit row {}", row.seq);
    }

    /// Every stored API token digest.
    pub fn token_hashes(&self) -> Vec<Vec<u8>> {
        self.runtime
            .block_on(sqlx::query_scalar("SELECT token_hash FROM api_tokens").fetch_all(&self.pool))
            .expect("token hashes")
    }

    /// Move the expiry of `message_id` into the past, as if its time had run out.
    pub fn expire_message(&self, message_id: &str) {
        let done = self
            .runtime
            .block_on(
                sqlx::query("UPDATE messages SET expires_at = 0 WHERE id = ?")
                    .bind(message_id)
                    .execute(&self.pool),
            )
            .expect("move expiry");
        assert_eq!(done.rows_affected(), 1, "no message {message_id}");
    }

    /// The `detail` JSON of every audit event with `action`, oldest first.
    pub fn audit_details(&self, action: &str) -> Vec<String> {
        self.runtime
            .block_on(
                sqlx::query_scalar("SELECT detail FROM audit_events WHERE action = ? ORDER BY seq")
                    .bind(action.to_owned())
                    .fetch_all(&self.pool),
            )
            .unwrap_or_else(|e| panic!("audit details of {action}: {e}"))
    }

    /// The number of rows of `table` (one of the sign-in tables).
    pub fn rows_of(&self, table: &str) -> i64 {
        let sql = match table {
            "staff_signin_failures" => "SELECT count(*) FROM staff_signin_failures",
            "staff_recovery_codes" => "SELECT count(*) FROM staff_recovery_codes",
            "staff_totp" => "SELECT count(*) FROM staff_totp",
            "sessions" => "SELECT count(*) FROM sessions",
            other => panic!("rows_of: unexpected table {other}"),
        };
        self.count(sql, None)
    }

    /// Run `sql` (one or more statements) as an insider with write access would; returns the
    /// rows changed.
    pub fn tamper(&self, sql: &str) -> u64 {
        self.runtime
            .block_on(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&self.pool))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .rows_affected()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.runtime.block_on(self.pool.close());
    }
}

/// A readable difference between two dumps (empty when equal).
pub fn dump_diff(before: &Dump, after: &Dump) -> String {
    let mut out = String::new();
    let empty = Vec::new();
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for name in names {
        let b = before.get(name).unwrap_or(&empty);
        let a = after.get(name).unwrap_or(&empty);
        for row in b.iter().filter(|r| !a.contains(r)) {
            out.push_str(&format!("{name}: - {row}\n"));
        }
        for row in a.iter().filter(|r| !b.contains(r)) {
            out.push_str(&format!("{name}: + {row}\n"));
        }
    }
    out
}
