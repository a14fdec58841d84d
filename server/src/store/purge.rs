//! Crypto-shredding of finished messages: the SQL behind [`crate::jobs::purge_expired`].
//!
//! Shredding deletes every ciphertext chunk and part header and nulls every recipient's
//! wrapped DEK and passphrase salt, then stamps `messages.purged_at`. Metadata (addresses,
//! sizes, times) stays for the audit trail. With the wrapped DEKs gone, no key material that
//! could open the message remains anywhere, even in backups taken afterwards.
//!
//! Deleted is not yet gone from the disk: SQLite keeps old page versions in the WAL until a
//! checkpoint, and deleted cells in free space. Connections run with `secure_delete` (see
//! [`super::Store`]), so the pages a shredding writes hold zeros where the rows were, and
//! [`checkpoint`], run once the shredding committed, copies them into the database file and
//! truncates the WAL.

use super::{Result, SqliteConnection};
use crate::clock::UnixMillis;
use crate::ids::MessageId;

/// Why a message is due for shredding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeReason {
    /// `expires_at` has passed.
    Expired,
    /// The sender revoked it.
    Revoked,
}

/// A message due for shredding.
#[derive(Debug, Clone)]
pub struct Due {
    pub message_id: MessageId,
    pub reason: PurgeReason,
}

/// Unpurged messages that have expired at `now` or were revoked, oldest first.
pub async fn due(conn: &mut SqliteConnection, now: UnixMillis, limit: i64) -> Result<Vec<Due>> {
    let rows: Vec<(MessageId, Option<i64>)> = sqlx::query_as(
        "SELECT id, revoked_at FROM messages \
         WHERE purged_at IS NULL AND (expires_at <= ? OR revoked_at IS NOT NULL) \
         ORDER BY expires_at, id LIMIT ?",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(message_id, revoked_at)| Due {
            message_id,
            reason: if revoked_at.is_some() {
                PurgeReason::Revoked
            } else {
                PurgeReason::Expired
            },
        })
        .collect())
}

/// Shred one message (see the module doc). Returns `false` if it was already purged or does
/// not exist, so concurrent purgers do not double-audit.
pub async fn shred(
    conn: &mut SqliteConnection,
    message_id: MessageId,
    now: UnixMillis,
) -> Result<bool> {
    let done = sqlx::query("UPDATE messages SET purged_at = ? WHERE id = ? AND purged_at IS NULL")
        .bind(now)
        .bind(message_id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM chunks WHERE message_id = ?")
        .bind(message_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM parts WHERE message_id = ?")
        .bind(message_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE recipients SET wrapped_dek = NULL, passphrase_salt = NULL WHERE message_id = ?",
    )
    .bind(message_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM access_codes WHERE recipient_id IN \
         (SELECT id FROM recipients WHERE message_id = ?)",
    )
    .bind(message_id)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Copy every page in the WAL into the database file and truncate the WAL to nothing
/// (`PRAGMA wal_checkpoint(TRUNCATE)`), so that no older version of a shredded page remains.
/// Call it on a connection outside any transaction, after the shredding committed. It waits
/// (up to the busy timeout) for readers and the writer to finish; returns `false` if they did
/// not, and the WAL then still holds frames until the next checkpoint.
pub async fn checkpoint(conn: &mut SqliteConnection) -> Result<bool> {
    let (busy, _frames, _copied): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut *conn)
            .await?;
    Ok(busy == 0)
}
