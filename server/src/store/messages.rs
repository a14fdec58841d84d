//! Messages, their encrypted parts and chunks, recipients and one-time codes: the SQL behind
//! [`crate::messages`]. Only ciphertext and the metadata auditing needs ever reach these tables.

use super::{Result, SqliteConnection, StoreError};
use crate::clock::UnixMillis;

/// A new message row, inserted in state `receiving`.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub id: &'a str,
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

/// A part row: its STREAM header and plaintext length (0 until known).
#[derive(Debug, Clone, Copy)]
pub struct NewPart<'a> {
    pub part_no: u32,
    pub header: &'a [u8],
    pub plain_len: u64,
}

/// One sealed STREAM chunk of a part.
#[derive(Debug, Clone, Copy)]
pub struct NewChunk<'a> {
    pub part_no: u32,
    pub seq: u32,
    pub bytes: &'a [u8],
}

/// Rows per multi-row INSERT: far below SQLite's limit of 32,766 bound values.
const ROWS_PER_INSERT: usize = 256;

/// Insert parts, several rows per statement.
pub async fn insert_parts(
    conn: &mut SqliteConnection,
    message_id: &str,
    parts: &[NewPart<'_>],
) -> Result<()> {
    for batch in parts.chunks(ROWS_PER_INSERT) {
        let mut lens = Vec::with_capacity(batch.len());
        for p in batch {
            lens.push(to_i64(p.plain_len)?);
        }
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO parts (message_id, part_no, header, plain_len) ",
        );
        q.push_values(batch.iter().zip(lens), |mut row, (p, len)| {
            row.push_bind(message_id)
                .push_bind(i64::from(p.part_no))
                .push_bind(p.header)
                .push_bind(len);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Insert chunks, several rows per statement.
pub async fn insert_chunks(
    conn: &mut SqliteConnection,
    message_id: &str,
    chunks: &[NewChunk<'_>],
) -> Result<()> {
    for batch in chunks.chunks(ROWS_PER_INSERT) {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO chunks (message_id, part_no, seq, bytes) ",
        );
        q.push_values(batch, |mut row, c| {
            row.push_bind(message_id)
                .push_bind(i64::from(c.part_no))
                .push_bind(i64::from(c.seq))
                .push_bind(c.bytes);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Set a part's final plaintext length (known once it has streamed in).
pub async fn set_part_len(
    conn: &mut SqliteConnection,
    message_id: &str,
    part_no: u32,
    plain_len: u64,
) -> Result<()> {
    sqlx::query("UPDATE parts SET plain_len = ? WHERE message_id = ? AND part_no = ?")
        .bind(to_i64(plain_len)?)
        .bind(message_id)
        .bind(i64::from(part_no))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn insert_chunk(
    conn: &mut SqliteConnection,
    message_id: &str,
    part_no: u32,
    seq: u32,
    bytes: &[u8],
) -> Result<()> {
    sqlx::query("INSERT INTO chunks (message_id, part_no, seq, bytes) VALUES (?, ?, ?, ?)")
        .bind(message_id)
        .bind(i64::from(part_no))
        .bind(i64::from(seq))
        .bind(bytes)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The part header and length, if the part exists.
pub async fn part(
    conn: &mut SqliteConnection,
    message_id: &str,
    part_no: u32,
) -> Result<Option<(Vec<u8>, u64)>> {
    let row: Option<(Vec<u8>, i64)> =
        sqlx::query_as("SELECT header, plain_len FROM parts WHERE message_id = ? AND part_no = ?")
            .bind(message_id)
            .bind(i64::from(part_no))
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|(h, len)| (h, u64::try_from(len).unwrap_or(0))))
}

/// One sealed chunk, or `None` past the last.
pub async fn chunk(
    conn: &mut SqliteConnection,
    message_id: &str,
    part_no: u32,
    seq: u32,
) -> Result<Option<Vec<u8>>> {
    let row: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT bytes FROM chunks WHERE message_id = ? AND part_no = ? AND seq = ?")
            .bind(message_id)
            .bind(i64::from(part_no))
            .bind(i64::from(seq))
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|(b,)| b))
}

/// A recipient row as inserted when the message is committed.
#[derive(Debug, Clone)]
pub struct NewRecipient<'a> {
    pub id: &'a str,
    pub message_id: &'a str,
    pub address: &'a str,
    pub pickup_id: &'a str,
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

/// Record the message's size, part count and expiry (while still `receiving`).
pub async fn set_totals(
    conn: &mut SqliteConnection,
    message_id: &str,
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
    message_id: &str,
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
pub async fn delete_receiving(conn: &mut SqliteConnection, message_id: &str) -> Result<bool> {
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
) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM messages WHERE state = 'receiving' AND receiving_since < ? LIMIT 1000",
    )
    .bind(before)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Everything a pickup request needs about one recipient and its message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PickupRow {
    pub recipient_id: String,
    pub message_id: String,
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
pub async fn pickup(conn: &mut SqliteConnection, pickup_id: &str) -> Result<Option<PickupRow>> {
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
    recipient_id: &str,
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
    recipient_id: &str,
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

/// The sender's view of one of their messages.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SenderMessageRow {
    pub id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub purged_at: Option<i64>,
    pub total_bytes: i64,
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

pub async fn sender_message(
    conn: &mut SqliteConnection,
    user_id: &str,
    message_id: &str,
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

pub async fn recipients_of(
    conn: &mut SqliteConnection,
    message_id: &str,
) -> Result<Vec<SenderRecipientRow>> {
    Ok(sqlx::query_as(
        "SELECT address, notified_at, first_opened_at, last_opened_at, open_count, locked_at \
         FROM recipients WHERE message_id = ? ORDER BY rowid",
    )
    .bind(message_id)
    .fetch_all(&mut *conn)
    .await?)
}

/// Mark revoked (the purge then shreds it). Returns false if already revoked.
pub async fn revoke(
    conn: &mut SqliteConnection,
    message_id: &str,
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

/// A stored one-time code.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CodeRow {
    pub id: String,
    pub code_hash: Vec<u8>,
    pub expires_at: i64,
    pub attempts: i64,
    pub used_at: Option<i64>,
}

pub async fn insert_code(
    conn: &mut SqliteConnection,
    id: &str,
    recipient_id: &str,
    code_hash: &[u8],
    now: UnixMillis,
    expires_at: UnixMillis,
) -> Result<()> {
    sqlx::query("INSERT INTO access_codes (id, recipient_id, code_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
        .bind(id)
        .bind(recipient_id)
        .bind(code_hash)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// How many codes were issued to the recipient since `since`.
pub async fn codes_since(
    conn: &mut SqliteConnection,
    recipient_id: &str,
    since: UnixMillis,
) -> Result<u32> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM access_codes WHERE recipient_id = ? AND created_at >= ?",
    )
    .bind(recipient_id)
    .bind(since)
    .fetch_one(&mut *conn)
    .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// The newest code issued to the recipient.
pub async fn latest_code(
    conn: &mut SqliteConnection,
    recipient_id: &str,
) -> Result<Option<CodeRow>> {
    Ok(sqlx::query_as(
        "SELECT id, code_hash, expires_at, attempts, used_at FROM access_codes \
         WHERE recipient_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
    )
    .bind(recipient_id)
    .fetch_optional(&mut *conn)
    .await?)
}

pub async fn code_attempt(conn: &mut SqliteConnection, code_id: &str) -> Result<()> {
    sqlx::query("UPDATE access_codes SET attempts = attempts + 1 WHERE id = ?")
        .bind(code_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn code_used(conn: &mut SqliteConnection, code_id: &str, now: UnixMillis) -> Result<()> {
    sqlx::query("UPDATE access_codes SET used_at = ?, attempts = attempts + 1 WHERE id = ?")
        .bind(now)
        .bind(code_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn to_i64(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt {
        table: "messages",
        reason: "size out of range".into(),
    })
}
