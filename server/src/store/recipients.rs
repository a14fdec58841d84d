//! The `recipients` table: one row per recipient of a message, with its wrapped data key,
//! pickup id, total of failed attempts, lock and open times. (The failures of each client
//! are in `pickup_failures`.)

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
         r.failed_attempts, r.locked_at, m.sender_address, m.created_at, m.expires_at, \
         m.revoked_at, m.purged_at, m.part_count \
         FROM recipients r JOIN messages m ON m.id = r.message_id \
         WHERE r.pickup_id = ? AND m.state = 'ready'",
    )
    .bind(pickup_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Count one failed attempt toward the recipient's total; returns the new total.
pub async fn add_failure(conn: &mut SqliteConnection, recipient_id: RecipientId) -> Result<u32> {
    let count: i64 = sqlx::query_scalar(
        "UPDATE recipients SET failed_attempts = failed_attempts + 1 WHERE id = ? \
         RETURNING failed_attempts",
    )
    .bind(recipient_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// When the recipient was locked, if it is.
pub async fn locked_at(
    conn: &mut SqliteConnection,
    recipient_id: RecipientId,
) -> Result<Option<UnixMillis>> {
    Ok(
        sqlx::query_scalar("SELECT locked_at FROM recipients WHERE id = ?")
            .bind(recipient_id)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Lock the recipient for every client, unless it is locked already; returns whether this
/// call locked it.
pub async fn lock(
    conn: &mut SqliteConnection,
    recipient_id: RecipientId,
    now: UnixMillis,
) -> Result<bool> {
    let done =
        sqlx::query("UPDATE recipients SET locked_at = ? WHERE id = ? AND locked_at IS NULL")
            .bind(now)
            .bind(recipient_id)
            .execute(&mut *conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Lift the recipient's lock and set its total of failed attempts back to zero.
pub async fn unlock(conn: &mut SqliteConnection, recipient_id: RecipientId) -> Result<()> {
    sqlx::query("UPDATE recipients SET locked_at = NULL, failed_attempts = 0 WHERE id = ?")
        .bind(recipient_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A recipient as an unlock sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LockRow {
    pub id: RecipientId,
    pub address: String,
    pub failed_attempts: i64,
    pub locked_at: Option<i64>,
}

/// The recipients of ready message `message_id` (only if `owner` sent it, when given), all of
/// them or the one whose address is `address` (without regard to case).
pub async fn lock_rows(
    conn: &mut SqliteConnection,
    message_id: MessageId,
    owner: Option<&str>,
    address: Option<&str>,
) -> Result<Vec<LockRow>> {
    Ok(sqlx::query_as(
        "SELECT r.id, r.address, r.failed_attempts, r.locked_at \
         FROM recipients r JOIN messages m ON m.id = r.message_id \
         WHERE m.id = ? AND m.state = 'ready' AND (? IS NULL OR m.sender_user_id = ?) \
         AND (? IS NULL OR lower(r.address) = lower(?)) ORDER BY r.rowid",
    )
    .bind(message_id)
    .bind(owner)
    .bind(owner)
    .bind(address)
    .bind(address)
    .fetch_all(&mut *conn)
    .await?)
}

/// Record one open; returns the new open count.
pub async fn record_open(
    conn: &mut SqliteConnection,
    recipient_id: RecipientId,
    now: UnixMillis,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "UPDATE recipients SET open_count = open_count + 1, last_opened_at = ?, \
         first_opened_at = COALESCE(first_opened_at, ?) WHERE id = ? RETURNING open_count",
    )
    .bind(now)
    .bind(now)
    .bind(recipient_id)
    .fetch_one(&mut *conn)
    .await?)
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
