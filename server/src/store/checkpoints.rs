//! Rows of the `audit_checkpoints` table: the signed checkpoints, as signed, newest last. Only
//! [`crate::audit::checkpoint`] writes them, in the transaction that audits the signing.

use super::{Result, SqliteConnection};
use crate::clock::UnixMillis;

/// One stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredCheckpoint {
    /// The audit seq it covers.
    pub seq: i64,
    /// That row's hash.
    pub head_hash: Vec<u8>,
    pub signed_at: UnixMillis,
    /// The signed note's text.
    pub note: String,
}

/// Store a checkpoint.
pub async fn insert(conn: &mut SqliteConnection, checkpoint: &StoredCheckpoint) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_checkpoints (seq, head_hash, signed_at, note) VALUES (?, ?, ?, ?)",
    )
    .bind(checkpoint.seq)
    .bind(&checkpoint.head_hash)
    .bind(checkpoint.signed_at)
    .bind(&checkpoint.note)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The newest `limit` checkpoints, newest first.
pub async fn latest(conn: &mut SqliteConnection, limit: i64) -> Result<Vec<StoredCheckpoint>> {
    let rows: Vec<StoredCheckpoint> = sqlx::query_as(
        "SELECT seq, head_hash, signed_at, note FROM audit_checkpoints ORDER BY id DESC LIMIT ?",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::temp_store;

    #[tokio::test]
    async fn insert_and_list_newest_first() -> Result<()> {
        let (store, _dir) = temp_store().await?;
        let mut conn = store.acquire().await?;
        assert!(latest(&mut conn, 5).await?.is_empty());
        for seq in [3, 7, 9] {
            let row = StoredCheckpoint {
                seq,
                head_hash: vec![seq as u8; 32],
                signed_at: seq * 1000,
                note: format!("note {seq}\n"),
            };
            insert(&mut conn, &row).await?;
        }
        let rows = latest(&mut conn, 2).await?;
        assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), [9, 7]);
        assert_eq!(rows[0].note, "note 9\n");
        let bad = StoredCheckpoint {
            seq: 1,
            head_hash: vec![0; 31],
            signed_at: 0,
            note: String::new(),
        };
        assert!(insert(&mut conn, &bad).await.is_err(), "a head is 32 bytes");
        Ok(())
    }
}
