//! The `recipients` table: one row per recipient of a message, with its wrapped data key,
//! pickup id, failed-attempt count and open times.

use super::{Result, SqliteConnection};
use crate::clock::UnixMillis;
use crate::ids::{MessageId, PickupId, RecipientId};

/// A recipient row as inserted when the message is committed.
#[derive(Debug, Clone)]
pub struct NewRecipient<'a> {
    pub id: RecipientId,
    pub message_id: MessageId,
    pub address: &'a str,
    pub pickup_id: &'a PickupId,
    pub wrapped_dek: &'a [u8],
    pub passphrase_salt: Option<&'a [u8]>,
}

pub async fn insert_recipient(conn: &mut SqliteConnection, r: &NewRecipient<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO recipients (id, message_id, address, pickup_id, wrapped_dek, passphrase_salt) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(r.id)
    .bind(r.message_id)
    .bind(r.address)
    .bind(r.pickup_id)
    .bind(r.wrapped_dek)
    .bind(r.passphrase_salt)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Everything a pickup request needs about one recipient and its message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PickupRow {
    pub recipient_id: RecipientId,
    pub message_id: MessageId,
    pub address: String,
    pub wrapped_dek: Option<Vec<u8>>,
    pub passphrase_salt: Option<Vec<u8>>,
    pub failed_attempts: i64,
    pub locked_at: Option<i64>,
    pub open_count: i64,
    pub sender_address: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub purged_at: Option<i64>,
    pub part_count: i64,
}

/// The recipient with this pickup id, if its message is ready.
pub async fn pickup(
    conn: &mut SqliteConnection,
    pickup_id: &PickupId,
) -> Result<Option<PickupRow>> {
    Ok(sqlx::query_as(
        "SELECT r.id AS recipient_id, r.message_id, r.address, r.wrapped_dek, r.passphrase_salt, \
         r.failed_attempts, r.locked_at, r.open_count, m.sender_address, m.created_at, m.expires_at, \
         m.revoked_at, m.purged_at, m.part_count \
         FROM recipients r JOIN messages m ON m.id = r.message_id \
         WHERE r.pickup_id = ? AND m.state = 'ready'",
    )
    .bind(pickup_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Count one failed attempt; lock the recipient when the count reaches `threshold`.
/// Returns the new count and whether this call locked it.
pub async fn record_failure(
    conn: &mut SqliteConnection,
    recipient_id: RecipientId,
    threshold: u32,
    now: UnixMillis,
) -> Result<(u32, bool)> {
    let (count, locked_at): (i64, Option<i64>) = sqlx::query_as(
        "UPDATE recipients SET failed_attempts = failed_attempts + 1, \
         locked_at = CASE WHEN locked_at IS NULL AND failed_attempts + 1 >= ? THEN ? ELSE locked_at END \
         WHERE id = ? RETURNING failed_attempts, locked_at",
    )
    .bind(i64::from(threshold))
    .bind(now)
    .bind(recipient_id)
    .fetch_one(&mut *conn)
    .await?;
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    Ok((count, locked_at == Some(now) && count == threshold))
}

pub async fn record_open(
    conn: &mut SqliteConnection,
    recipient_id: RecipientId,
    now: UnixMillis,
) -> Result<()> {
    sqlx::query(
        "UPDATE recipients SET open_count = open_count + 1, last_opened_at = ?, \
         first_opened_at = COALESCE(first_opened_at, ?) WHERE id = ?",
    )
    .bind(now)
    .bind(now)
    .bind(recipient_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SenderRecipientRow {
    pub address: String,
    pub notified_at: Option<i64>,
    pub first_opened_at: Option<i64>,
    pub last_opened_at: Option<i64>,
    pub open_count: i64,
    pub locked_at: Option<i64>,
}

pub async fn recipients_of(
    conn: &mut SqliteConnection,
    message_id: MessageId,
) -> Result<Vec<SenderRecipientRow>> {
    Ok(sqlx::query_as(
        "SELECT address, notified_at, first_opened_at, last_opened_at, open_count, locked_at \
         FROM recipients WHERE message_id = ? ORDER BY rowid",
    )
    .bind(message_id)
    .fetch_all(&mut *conn)
    .await?)
}
