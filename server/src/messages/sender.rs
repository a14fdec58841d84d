//! The sender's side: what happened to a message they sent, and withdrawing it.

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::{PickupError, RequestCtx};
use crate::app::AppState;
use crate::audit::{self, Action};
use crate::clock::{format_rfc3339, now_ms};
use crate::store::{messages as rows, recipients};

#[derive(Debug, Clone, Serialize)]
pub struct RecipientView {
    pub address: String,
    pub notified_at: Option<String>,
    pub first_opened_at: Option<String>,
    pub last_opened_at: Option<String>,
    pub open_count: i64,
    pub locked: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SenderView {
    pub id: String,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    pub purged_at: Option<String>,
    pub size: i64,
    pub recipients: Vec<RecipientView>,
}

/// One of the sender's own messages; anyone else's is `NotFound`.
pub async fn sender_view(
    app: &AppState,
    user_id: Uuid,
    message_id: Uuid,
) -> Result<SenderView, PickupError> {
    let mut tx = app.store.begin_read().await?;
    let m = rows::sender_message(&mut tx, &user_id.to_string(), &message_id.to_string())
        .await?
        .ok_or(PickupError::NotFound)?;
    let recipients = recipients::recipients_of(&mut tx, &m.id).await?;
    let fmt = |t: Option<i64>| t.map(format_rfc3339);
    Ok(SenderView {
        created_at: format_rfc3339(m.created_at),
        expires_at: format_rfc3339(m.expires_at),
        revoked_at: fmt(m.revoked_at),
        purged_at: fmt(m.purged_at),
        size: m.total_bytes,
        recipients: recipients
            .into_iter()
            .map(|r| RecipientView {
                address: r.address,
                notified_at: fmt(r.notified_at),
                first_opened_at: fmt(r.first_opened_at),
                last_opened_at: fmt(r.last_opened_at),
                open_count: r.open_count,
                locked: r.locked_at.is_some(),
            })
            .collect(),
        id: m.id,
    })
}

/// Withdraw a message: it stops opening at once, and its keys and ciphertext are shredded in
/// the same transaction; the WAL is then checkpointed, so no copy of them stays on disk.
pub async fn revoke(
    app: &AppState,
    user_id: Uuid,
    message_id: Uuid,
    ctx: &RequestCtx,
) -> Result<(), PickupError> {
    let id = message_id.to_string();
    let now = now_ms();
    let mut tx = app.store.begin_write().await?;
    rows::sender_message(&mut tx, &user_id.to_string(), &id)
        .await?
        .ok_or(PickupError::NotFound)?;
    if rows::revoke(&mut tx, &id, now).await? {
        audit::record(&mut tx, ctx.event(Action::Revoked).with_message(&id)).await?;
    }
    if crate::store::purge::shred(&mut tx, &id, now).await? {
        audit::record(
            &mut tx,
            ctx.event(Action::Purged)
                .with_message(&id)
                .with_detail(json!({ "reason": "revoked" })),
        )
        .await?;
    }
    tx.commit().await?;
    // Outside the transaction: the pages the shredding zeroed replace every older copy.
    let mut conn = app.store.acquire().await?;
    if !crate::store::purge::checkpoint(&mut conn).await? {
        tracing::warn!(
            message_id = %id,
            "the WAL could not be checkpointed after a revocation; the purge job tries again"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{chunk_bytes, files_holding, wrapped_dek_of};
    use crate::testing::{SENDER, TestApp};

    #[tokio::test]
    async fn revoking_leaves_no_copy_of_the_key_or_the_ciphertext_on_disk() -> anyhow::Result<()> {
        let t = TestApp::new().await?;
        let sender = t.add_sender(SENDER).await?;
        let submitted = t
            .submit(
                &sender,
                &["bob@example.org"],
                &"a confidential line\n".repeat(5000),
                None,
            )
            .await?;
        let id = submitted.id.to_string();
        let link = t.notification_to("bob@example.org")?;
        let wrapped = wrapped_dek_of(t.store(), &link.pickup_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no wrapped key"))?;
        // The key's ciphertext and tag (its first bytes, version and key id, are shared), and
        // a stretch from the middle of the body's first chunk.
        let key = &wrapped[wrapped.len() - 48..];
        let chunk = chunk_bytes(t.store(), &id, 1).await?;
        let chunk = &chunk[chunk.len() / 2..chunk.len() / 2 + 64];
        let db = crate::store::Store::sqlite_file(&t.config().database_url)
            .ok_or_else(|| anyhow::anyhow!("no database file"))?;
        assert!(!files_holding(&db, key)?.is_empty(), "the key is stored");
        assert!(
            !files_holding(&db, chunk)?.is_empty(),
            "the chunk is stored"
        );

        revoke(
            t.state(),
            sender.user_id,
            submitted.id,
            &RequestCtx::default(),
        )
        .await?;
        assert_eq!(
            files_holding(&db, key)?,
            Vec::<String>::new(),
            "wrapped key"
        );
        assert_eq!(
            files_holding(&db, chunk)?,
            Vec::<String>::new(),
            "ciphertext"
        );
        Ok(())
    }
}
