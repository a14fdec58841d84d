//! Rows of the `audit_events` table. Only [`crate::audit`] should call these: it computes the
//! hash chain. Nothing here updates or deletes a row; the log is append-only.

use super::{Result, SqliteConnection};
use crate::clock::UnixMillis;

/// One stored audit event, exactly as in the table (ids and detail as stored text).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub ts: UnixMillis,
    pub actor: String,
    pub action: String,
    pub message_id: Option<String>,
    pub recipient_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// JSON text.
    pub detail: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The highest `seq` and its hash, or `None` for an empty log.
pub async fn last(conn: &mut SqliteConnection) -> Result<Option<(i64, Vec<u8>)>> {
    let row: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row)
}

/// Insert a fully computed row.
pub async fn insert(conn: &mut SqliteConnection, row: &AuditRow) -> Result<()> {
    insert_many(conn, std::slice::from_ref(row)).await
}

/// Insert consecutive rows in one statement.
pub async fn insert_many(conn: &mut SqliteConnection, rows: &[AuditRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO audit_events \
         (seq, ts, actor, action, message_id, recipient_id, ip, user_agent, detail, prev_hash, hash) ",
    );
    q.push_values(rows, |mut b, row| {
        b.push_bind(row.seq)
            .push_bind(row.ts)
            .push_bind(&row.actor)
            .push_bind(&row.action)
            .push_bind(&row.message_id)
            .push_bind(&row.recipient_id)
            .push_bind(&row.ip)
            .push_bind(&row.user_agent)
            .push_bind(&row.detail)
            .push_bind(&row.prev_hash)
            .push_bind(&row.hash);
    });
    q.build().execute(&mut *conn).await?;
    Ok(())
}

/// Up to `limit` rows with `seq > after_seq`, in seq order (for paging through the log).
pub async fn page_after(
    conn: &mut SqliteConnection,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<AuditRow>> {
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT seq, ts, actor, action, message_id, recipient_id, ip, user_agent, detail, \
                prev_hash, hash \
         FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?",
    )
    .bind(after_seq)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows)
}

/// Up to `limit` rows with `seq > after_seq` and `ts >= since`, in seq order.
pub async fn page_after_since(
    conn: &mut SqliteConnection,
    after_seq: i64,
    since: UnixMillis,
    limit: i64,
) -> Result<Vec<AuditRow>> {
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT seq, ts, actor, action, message_id, recipient_id, ip, user_agent, detail, \
                prev_hash, hash \
         FROM audit_events WHERE seq > ? AND ts >= ? ORDER BY seq LIMIT ?",
    )
    .bind(after_seq)
    .bind(since)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows)
}

/// Events about one message, in seq order (for the sender's and admin's views).
pub async fn for_message(conn: &mut SqliteConnection, message_id: &str) -> Result<Vec<AuditRow>> {
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT seq, ts, actor, action, message_id, recipient_id, ip, user_agent, detail, \
                prev_hash, hash \
         FROM audit_events WHERE message_id = ? ORDER BY seq",
    )
    .bind(message_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::temp_store;

    fn row(seq: i64, ts: i64) -> AuditRow {
        AuditRow {
            seq,
            ts,
            actor: "cli".into(),
            action: "user_added".into(),
            message_id: (seq == 2).then(|| "m-1".to_owned()),
            recipient_id: None,
            ip: None,
            user_agent: None,
            detail: "{}".into(),
            prev_hash: vec![0; 32],
            hash: vec![seq as u8; 32],
        }
    }

    #[tokio::test]
    async fn insert_last_and_pages() -> Result<()> {
        let (store, _dir) = temp_store().await?;
        let mut conn = store.acquire().await?;
        assert!(last(&mut conn).await?.is_none());
        for seq in 1..=5 {
            insert(&mut conn, &row(seq, seq * 1000)).await?;
        }
        assert_eq!(last(&mut conn).await?, Some((5, vec![5u8; 32])));
        let page = page_after(&mut conn, 1, 2).await?;
        assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(page[0], row(2, 2000));
        let since = page_after_since(&mut conn, 0, 4000, 10).await?;
        assert_eq!(since.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(for_message(&mut conn, "m-1").await?.len(), 1);
        // seq is the primary key: a second writer cannot reuse it
        assert!(insert(&mut conn, &row(5, 0)).await.is_err());
        Ok(())
    }
}
