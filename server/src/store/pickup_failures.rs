//! The `pickup_failures` table: failed pickup guesses per recipient and client (IP address, or
//! IPv6 /64), with the time of the last one and the end of a block. Whether a row still
//! counts, and what it allows, is decided by `crate::messages` (the lockout rules).

use super::{Result, SqliteConnection};
use crate::clock::UnixMillis;
use crate::ids::RecipientId;

/// One client's failed guesses at one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct ClientFailures {
    pub failures: i64,
    pub last_failed_at: i64,
    pub blocked_until: Option<i64>,
}

/// The failures of `client` at `recipient_id`, if any are stored.
pub async fn get(
    conn: &mut SqliteConnection,
    recipient_id: RecipientId,
    client: &str,
) -> Result<Option<ClientFailures>> {
    Ok(sqlx::query_as(
        "SELECT failures, last_failed_at, blocked_until FROM pickup_failures \
         WHERE recipient_id = ? AND client = ?",
    )
    .bind(recipient_id)
    .bind(client)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Store `row` as the failures of `client` at `recipient_id`.
pub async fn set(
    conn: &mut SqliteConnection,
    recipient_id: RecipientId,
    client: &str,
    row: ClientFailures,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO pickup_failures (recipient_id, client, failures, last_failed_at, blocked_until) \
         VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (recipient_id, client) DO UPDATE SET failures = excluded.failures, \
         last_failed_at = excluded.last_failed_at, blocked_until = excluded.blocked_until",
    )
    .bind(recipient_id)
    .bind(client)
    .bind(row.failures)
    .bind(row.last_failed_at)
    .bind(row.blocked_until)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The failures of every client at `recipient_id` together.
pub async fn total(conn: &mut SqliteConnection, recipient_id: RecipientId) -> Result<u32> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(failures), 0) FROM pickup_failures WHERE recipient_id = ?",
    )
    .bind(recipient_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Forget the failures of `client` at `recipient_id`.
pub async fn clear(
    conn: &mut SqliteConnection,
    recipient_id: RecipientId,
    client: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM pickup_failures WHERE recipient_id = ? AND client = ?")
        .bind(recipient_id)
        .bind(client)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Forget the failures of every client at `recipient_id`; returns how many clients had some.
pub async fn clear_all(conn: &mut SqliteConnection, recipient_id: RecipientId) -> Result<u64> {
    let done = sqlx::query("DELETE FROM pickup_failures WHERE recipient_id = ?")
        .bind(recipient_id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// Delete the rows at `recipient_id` that no longer count: not blocked past `now`, and last
/// failed before `idle_before`. Keeps the table as small as the clients active recently.
pub async fn forget_idle(
    conn: &mut SqliteConnection,
    recipient_id: RecipientId,
    idle_before: UnixMillis,
    now: UnixMillis,
) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM pickup_failures WHERE recipient_id = ? AND \
         ((blocked_until IS NULL AND last_failed_at <= ?) OR blocked_until <= ?)",
    )
    .bind(recipient_id)
    .bind(idle_before)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}
