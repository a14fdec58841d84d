//! The sender's side: what happened to a message they sent, and withdrawing it.

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::{PickupError, RequestCtx};
use crate::app::AppState;
use crate::audit::{self, Action};
use crate::clock::{format_rfc3339, now_ms};
use crate::ids::MessageId;
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
    pub id: MessageId,
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
    message_id: MessageId,
) -> Result<SenderView, PickupError> {
    let mut tx = app.store.begin_read().await?;
    let m = rows::sender_message(&mut tx, &user_id.to_string(), message_id)
        .await?
        .ok_or(PickupError::NotFound)?;
    let recipients = recipients::recipients_of(&mut tx, m.id).await?;
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
/// the same transaction.
pub async fn revoke(
    app: &AppState,
    user_id: Uuid,
    message_id: MessageId,
    ctx: &RequestCtx,
) -> Result<(), PickupError> {
    let id = message_id;
    let now = now_ms();
    let mut tx = app.store.begin_write().await?;
    rows::sender_message(&mut tx, &user_id.to_string(), id)
        .await?
        .ok_or(PickupError::NotFound)?;
    if rows::revoke(&mut tx, id, now).await? {
        audit::record(&mut tx, ctx.event(Action::Revoked).with_message(id)).await?;
    }
    if crate::store::purge::shred(&mut tx, id, now).await? {
        audit::record(
            &mut tx,
            ctx.event(Action::Purged)
                .with_message(id)
                .with_detail(json!({ "reason": "revoked" })),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
