//! The `access_codes` table: one-time codes emailed to recipients, stored only as hashes, with
//! their expiry, attempts and use, and the client that asked for each (the only one that may
//! enter it).

use super::{Result, SqliteConnection};
use crate::clock::UnixMillis;
use crate::ids::RecipientId;

/// A stored one-time code.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CodeRow {
    pub id: String,
    pub code_hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: i64,
    pub attempts: i64,
    pub used_at: Option<i64>,
}

pub async fn insert_code(
    conn: &mut SqliteConnection,
    id: &str,
    (recipient_id, client): (RecipientId, &str),
    code_hash: &[u8],
    now: UnixMillis,
    expires_at: UnixMillis,
) -> Result<()> {
    sqlx::query("INSERT INTO access_codes (id, recipient_id, client, code_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(id)
        .bind(recipient_id)
        .bind(client)
        .bind(code_hash)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A code issued since some time: when, and to which client.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Issued {
    pub created_at: i64,
    pub client: String,
}

/// The codes issued to the recipient since `since`, oldest first.
pub async fn issued_since(
    conn: &mut SqliteConnection,
    recipient_id: RecipientId,
    since: UnixMillis,
) -> Result<Vec<Issued>> {
    Ok(sqlx::query_as(
        "SELECT created_at, client FROM access_codes WHERE recipient_id = ? AND created_at >= ? \
         ORDER BY created_at",
    )
    .bind(recipient_id)
    .bind(since)
    .fetch_all(&mut *conn)
    .await?)
}

/// The newest code issued to the recipient at the request of `client`.
pub async fn latest_code(
    conn: &mut SqliteConnection,
    recipient_id: RecipientId,
    client: &str,
) -> Result<Option<CodeRow>> {
    Ok(sqlx::query_as(
        "SELECT id, code_hash, created_at, expires_at, attempts, used_at FROM access_codes \
         WHERE recipient_id = ? AND client = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
    )
    .bind(recipient_id)
    .bind(client)
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
