//! The `parts` and `chunks` tables: each part's STREAM header and plaintext length, and its
//! sealed 64 KiB chunks in order. Only ciphertext ever reaches these tables.

use super::{Result, SqliteConnection, to_i64};
use crate::ids::MessageId;

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
    message_id: MessageId,
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
    message_id: MessageId,
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
    message_id: MessageId,
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

/// The part header and length, if the part exists.
pub async fn part(
    conn: &mut SqliteConnection,
    message_id: MessageId,
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
    message_id: MessageId,
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
