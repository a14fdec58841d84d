//! The `messages` table: one row per message, `receiving` while its parts stream in, then
//! `ready`; revoked and expired messages are shredded by [`super::purge`]. Only metadata that
//! auditing needs is stored in clear (sender address, sizes, times); content is in [`super::parts`].

use super::{Result, SqliteConnection, StoreError, to_i64};
use crate::clock::UnixMillis;
use crate::ids::MessageId;

/// A new message row, inserted in state `receiving`.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub id: MessageId,
    pub sender_user_id: Option<&'a str>,
    pub sender_address: &'a str,
    pub source: &'a str,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
}

pub async fn insert_message(conn: &mut SqliteConnection, m: &NewMessage<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO messages (id, sender_user_id, sender_address, source, created_at, expires_at, \
         state, receiving_since) VALUES (?, ?, ?, ?, ?, ?, 'receiving', ?)",
    )
    .bind(m.id)
    .bind(m.sender_user_id)
    .bind(m.sender_address)
    .bind(m.source)
    .bind(m.created_at)
    .bind(m.expires_at)
    .bind(m.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Record the message's size, part count and expiry (while still `receiving`).
pub async fn set_totals(
    conn: &mut SqliteConnection,
    message_id: MessageId,
    total_bytes: u64,
    part_count: u32,
    expires_at: UnixMillis,
) -> Result<()> {
    sqlx::query("UPDATE messages SET total_bytes = ?, part_count = ?, expires_at = ? WHERE id = ?")
        .bind(to_i64(total_bytes)?)
        .bind(i64::from(part_count))
        .bind(expires_at)
        .bind(message_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Make a `receiving` message visible and stamp its recipients as notified.
pub async fn mark_ready(
    conn: &mut SqliteConnection,
    message_id: MessageId,
    now: UnixMillis,
) -> Result<()> {
    let done = sqlx::query("UPDATE messages SET state = 'ready', receiving_since = NULL WHERE id = ? AND state = 'receiving'")
        .bind(message_id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Corrupt {
            table: "messages",
            reason: "message to mark ready is not receiving".into(),
        });
    }
    sqlx::query("UPDATE recipients SET notified_at = ? WHERE message_id = ?")
        .bind(now)
        .bind(message_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Delete a message that never became ready, with everything under it.
pub async fn delete_receiving(conn: &mut SqliteConnection, message_id: MessageId) -> Result<bool> {
    let done = sqlx::query("DELETE FROM messages WHERE id = ? AND state = 'receiving'")
        .bind(message_id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Messages still `receiving` since before `before` (their writer died).
pub async fn stale_receiving(
    conn: &mut SqliteConnection,
    before: UnixMillis,
) -> Result<Vec<MessageId>> {
    let rows: Vec<(MessageId,)> = sqlx::query_as(
        "SELECT id FROM messages WHERE state = 'receiving' AND receiving_since < ? LIMIT 1000",
    )
    .bind(before)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The sender's view of one of their messages.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SenderMessageRow {
    pub id: MessageId,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub purged_at: Option<i64>,
    pub total_bytes: i64,
}

pub async fn sender_message(
    conn: &mut SqliteConnection,
    user_id: &str,
    message_id: MessageId,
) -> Result<Option<SenderMessageRow>> {
    Ok(sqlx::query_as(
        "SELECT id, created_at, expires_at, revoked_at, purged_at, total_bytes FROM messages \
         WHERE id = ? AND sender_user_id = ? AND state = 'ready'",
    )
    .bind(message_id)
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Mark revoked (the purge then shreds it). Returns false if already revoked.
pub async fn revoke(
    conn: &mut SqliteConnection,
    message_id: MessageId,
    now: UnixMillis,
) -> Result<bool> {
    let done =
        sqlx::query("UPDATE messages SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(message_id)
            .execute(&mut *conn)
            .await?;
    Ok(done.rows_affected() == 1)
}
