//! For tests only: a migrated store on a fresh temp-dir SQLite file, and the looks at rows and
//! deliberate changes to them that tests need beside the repository functions (counting what
//! is left, moving a time into the past, tampering as an insider would). Tests run their SQL
//! through here, so that it stays under `store/` with the rest.

use sqlx::Row as _;

use super::audit::AuditRow;
use super::{Result, Store, StoreError};
use crate::clock::UnixMillis;

/// Keep the `TempDir` alive as long as the store.
pub(crate) async fn temp_store() -> Result<(Store, tempfile::TempDir)> {
    let dir = tempfile::tempdir().map_err(|e| StoreError::Sqlx(sqlx::Error::Io(e)))?;
    let store = Store::open_path(&dir.path().join("test.db")).await?;
    store.migrate().await?;
    Ok((store, dir))
}

/// Run `sql` (one or more statements, as an insider with write access would); returns the
/// rows changed.
pub(crate) async fn exec(store: &Store, sql: &str) -> Result<u64> {
    let mut conn = store.acquire().await?;
    let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// The tables a test may count rows of.
const TABLES: &[&str] = &[
    "users",
    "api_tokens",
    "messages",
    "parts",
    "chunks",
    "recipients",
    "access_codes",
    "sessions",
    "audit_events",
    "relays",
    "pickup_failures",
    "audit_checkpoints",
];

/// How many rows `table` holds.
pub(crate) async fn count_rows(store: &Store, table: &str) -> Result<i64> {
    if !TABLES.contains(&table) {
        return Err(StoreError::Corrupt {
            table: "?",
            reason: format!("no table {table:?} to count"),
        });
    }
    let mut conn = store.acquire().await?;
    let sql = format!("SELECT count(*) FROM {table}");
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await?)
}

/// Ciphertext chunks stored for `message_id`.
pub(crate) async fn chunks_of(store: &Store, message_id: &str) -> Result<i64> {
    let mut conn = store.acquire().await?;
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM chunks WHERE message_id = ?")
            .bind(message_id)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// The wrapped data key of recipient `recipient_id` (`None` once shredded).
pub(crate) async fn wrapped_dek(store: &Store, recipient_id: &str) -> Result<Option<Vec<u8>>> {
    let mut conn = store.acquire().await?;
    Ok(
        sqlx::query_scalar("SELECT wrapped_dek FROM recipients WHERE id = ?")
            .bind(recipient_id)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// A message row as the state machine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageRow {
    pub id: String,
    pub state: String,
    pub source: String,
    pub sender_address: String,
}

/// Every message row, in any state, oldest first.
/// How many whole days a message is kept: its expiry less its creation.
pub(crate) async fn lifetime_days(store: &Store, id: &str) -> Result<i64> {
    let mut conn = store.acquire().await?;
    let (days,): (i64,) =
        sqlx::query_as("SELECT (expires_at - created_at) / 86400000 FROM messages WHERE id = ?")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    Ok(days)
}

pub(crate) async fn messages(store: &Store) -> Result<Vec<MessageRow>> {
    let mut conn = store.acquire().await?;
    let rows = sqlx::query(
        "SELECT id, state, source, sender_address FROM messages ORDER BY created_at, id",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(MessageRow {
                id: r.try_get("id")?,
                state: r.try_get("state")?,
                source: r.try_get("source")?,
                sender_address: r.try_get("sender_address")?,
            })
        })
        .collect()
}

/// Every audit row, in order.
pub(crate) async fn audit_rows(store: &Store) -> Result<Vec<AuditRow>> {
    let mut conn = store.acquire().await?;
    super::audit::page_after(&mut conn, 0, i64::MAX).await
}

/// The audit rows with `action`, in order.
pub(crate) async fn audited(store: &Store, action: &str) -> Result<Vec<AuditRow>> {
    let mut rows = audit_rows(store).await?;
    rows.retain(|r| r.action == action);
    Ok(rows)
}

/// Overwrite the actor and hash of audit row `seq`: an insider who recomputed its hash.
pub(crate) async fn forge_audit_row(
    store: &Store,
    seq: i64,
    actor: &str,
    hash: &[u8],
) -> Result<()> {
    let mut conn = store.acquire().await?;
    sqlx::query("UPDATE audit_events SET actor = ?, hash = ? WHERE seq = ?")
        .bind(actor)
        .bind(hash)
        .bind(seq)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Overwrite the detail, `prev_hash` and `hash` of audit row `row.seq` with `row`'s: an
/// insider rewriting the chain.
pub(crate) async fn rewrite_audit_row(store: &Store, row: &AuditRow) -> Result<()> {
    let mut conn = store.acquire().await?;
    sqlx::query("UPDATE audit_events SET detail = ?, prev_hash = ?, hash = ? WHERE seq = ?")
        .bind(&row.detail)
        .bind(&row.prev_hash)
        .bind(&row.hash)
        .bind(row.seq)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Move the expiry of every one-time code of the recipient with `pickup_id` to `at`.
pub(crate) async fn expire_codes(store: &Store, pickup_id: &str, at: UnixMillis) -> Result<u64> {
    let mut conn = store.acquire().await?;
    let done = sqlx::query(
        "UPDATE access_codes SET expires_at = ? \
         WHERE recipient_id = (SELECT id FROM recipients WHERE pickup_id = ?)",
    )
    .bind(at)
    .bind(pickup_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// Move the time `message_id` started `receiving` to `at`, as if its writer died then.
pub(crate) async fn set_receiving_since(
    store: &Store,
    message_id: &str,
    at: UnixMillis,
) -> Result<()> {
    let mut conn = store.acquire().await?;
    let done = sqlx::query("UPDATE messages SET receiving_since = ? WHERE id = ?")
        .bind(at)
        .bind(message_id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Corrupt {
            table: "messages",
            reason: format!("no message {message_id}"),
        });
    }
    Ok(())
}

/// Move the expiry of `message_id` to `at`.
pub(crate) async fn set_expires_at(store: &Store, message_id: &str, at: UnixMillis) -> Result<()> {
    let mut conn = store.acquire().await?;
    sqlx::query("UPDATE messages SET expires_at = ? WHERE id = ?")
        .bind(at)
        .bind(message_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Lock the recipient with `pickup_id` at `at`, as its last allowed failure would.
pub(crate) async fn lock_recipient(store: &Store, pickup_id: &str, at: UnixMillis) -> Result<()> {
    let mut conn = store.acquire().await?;
    sqlx::query("UPDATE recipients SET locked_at = ? WHERE pickup_id = ?")
        .bind(at)
        .bind(pickup_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// `failed_attempts` of the recipient with `pickup_id`, and whether it is locked.
pub(crate) async fn failures(store: &Store, pickup_id: &str) -> Result<(i64, bool)> {
    let mut conn = store.acquire().await?;
    let (failed, locked): (i64, Option<i64>) =
        sqlx::query_as("SELECT failed_attempts, locked_at FROM recipients WHERE pickup_id = ?")
            .bind(pickup_id)
            .fetch_one(&mut *conn)
            .await?;
    Ok((failed, locked.is_some()))
}

/// The wrapped data key of the recipient with `pickup_id` (`None` once shredded).
pub(crate) async fn wrapped_dek_of(store: &Store, pickup_id: &str) -> Result<Option<Vec<u8>>> {
    let mut conn = store.acquire().await?;
    Ok(
        sqlx::query_scalar("SELECT wrapped_dek FROM recipients WHERE pickup_id = ?")
            .bind(pickup_id)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// The bytes of the first ciphertext chunk of part `part_no` of `message_id`.
pub(crate) async fn chunk_bytes(store: &Store, message_id: &str, part_no: u32) -> Result<Vec<u8>> {
    let mut conn = store.acquire().await?;
    Ok(sqlx::query_scalar(
        "SELECT bytes FROM chunks WHERE message_id = ? AND part_no = ? ORDER BY seq LIMIT 1",
    )
    .bind(message_id)
    .bind(part_no)
    .fetch_one(&mut *conn)
    .await?)
}

/// Which of the SQLite database `db`'s files (the database, its WAL, shared-memory index and
/// rollback journal) hold `needle` anywhere, free pages and old WAL frames included.
pub(crate) fn files_holding(db: &std::path::Path, needle: &[u8]) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let bytes = match std::fs::read(&name) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::Sqlx(sqlx::Error::Io(e))),
        };
        if !needle.is_empty() && bytes.windows(needle.len()).any(|w| w == needle) {
            found.push(name.to_string_lossy().into_owned());
        }
    }
    Ok(found)
}

/// Let `ms` milliseconds pass for the recipient with `pickup_id`: every lockout time and
/// code time of theirs moves that far into the past (failures, blocks, the lock, codes).
pub(crate) async fn pass_time(store: &Store, pickup_id: &str, ms: i64) -> Result<()> {
    let mut conn = store.acquire().await?;
    let recipient = "(SELECT id FROM recipients WHERE pickup_id = ?2)";
    let statements = [
        format!(
            "UPDATE pickup_failures SET last_failed_at = last_failed_at - ?1, \
             blocked_until = blocked_until - ?1 WHERE recipient_id = {recipient}"
        ),
        format!("UPDATE recipients SET locked_at = locked_at - ?1 WHERE id = {recipient}"),
        format!(
            "UPDATE access_codes SET created_at = created_at - ?1, \
             expires_at = expires_at - ?1 WHERE recipient_id = {recipient}"
        ),
    ];
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ms)
            .bind(pickup_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The failures each client has on record at the recipient with `pickup_id`:
/// `(client, failures, blocked)`, by client.
pub(crate) async fn client_failures(
    store: &Store,
    pickup_id: &str,
) -> Result<Vec<(String, i64, bool)>> {
    let mut conn = store.acquire().await?;
    let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT client, failures, blocked_until FROM pickup_failures \
         WHERE recipient_id = (SELECT id FROM recipients WHERE pickup_id = ?) ORDER BY client",
    )
    .bind(pickup_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(client, n, blocked)| (client, n, blocked.is_some()))
        .collect())
}
