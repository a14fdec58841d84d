//! Finishing a draft: seal the header block, wrap the data key for every recipient, commit,
//! hand every notification to the outbound relay, and only then make the message visible and
//! acknowledge it (flow 2 and invariant 3 in docs/DESIGN.md). On any failure nothing is kept.

use sealpost_crypto::{Kek, LinkSecret, PartEncryptor, Passphrase, PassphraseKey, PassphraseSalt};
use serde_json::json;
use zeroize::Zeroizing;

use super::draft::{Draft, NewMessage, Pending, RecipientStatus, Submitted, discard};
use super::header::HeaderBlock;
use super::policy::Refusal;
use super::{EmailAddress, PartKind, RequestCtx, SubmitError};
use crate::app::AppState;
use crate::audit::{self, Action};
use crate::clock::now_ms;
use crate::ids::{PickupId, RecipientId};
use crate::notify::Notification;
use crate::store::{messages as rows, recipients};

impl Draft {
    /// Finish the message: seal the header block, wrap the DEK for every recipient, commit,
    /// hand every notification to the outbound relay, then make the message visible. Returns
    /// only after all of that; on any failure nothing is kept.
    pub async fn commit(
        mut self,
        msg: NewMessage,
        ctx: &RequestCtx,
    ) -> Result<Submitted, SubmitError> {
        let result = self.commit_inner(msg, ctx).await;
        self.finished = true;
        if let Err(e) = &result {
            let mut event = ctx.event(Action::SubmitRejected).with_message(self.id);
            event = event
                .with_detail(json!({ "reason": e.to_string(), "source": self.source.as_str() }));
            if self.stored {
                discard(&self.app, self.id).await;
            }
            if let Err(audit_err) = audit::append(&self.app.store, event).await {
                tracing::error!(error = %audit_err, "could not audit a rejected submission");
            }
        }
        result
    }

    async fn commit_inner(
        &mut self,
        msg: NewMessage,
        ctx: &RequestCtx,
    ) -> Result<Submitted, SubmitError> {
        let recipients = dedupe(msg.recipients);
        if recipients.is_empty() {
            return Err(Refusal::missing("to", "at least one recipient address").into());
        }
        self.limits.recipient_count(recipients.len())?;
        let days = self.limits.expiry_days(msg.expires_in_days)?;
        let expires_at = self.created_at + i64::from(days) * 86_400_000;
        if msg.passphrase.as_ref().is_some_and(Passphrase::is_empty) {
            return Err(Refusal::EmptyPassphrase.into());
        }

        // Part 0: the header block, sealed last because it lists the others.
        let header = HeaderBlock {
            subject: msg.subject,
            sender_name: self.sender.display_name.clone(),
            parts: self.parts.clone(),
        };
        let header_json = Zeroizing::new(
            serde_json::to_vec(&header).map_err(|e| SubmitError::Internal(e.into()))?,
        );
        drop(header);
        let mut enc = PartEncryptor::new(&self.dek, self.id.as_bytes(), 0);
        self.pending.push(Pending::Part {
            part_no: 0,
            header: enc.header(),
        });
        let mut seq = 0;
        let chunks = enc
            .push(&header_json)
            .map_err(|e| SubmitError::Internal(e.into()))?;
        self.queue_chunks(0, &mut seq, chunks);
        let last = enc.finish().map_err(|e| SubmitError::Internal(e.into()))?;
        self.queue_chunks(0, &mut seq, vec![last]);
        self.pending.push(Pending::PartLen {
            part_no: 0,
            len: header_json.len() as u64,
        });

        // One link secret per recipient; the DEK wrapped under each recipient's KEK.
        let mut wrapped = Vec::with_capacity(recipients.len());
        for address in &recipients {
            let recipient_id = RecipientId::generate();
            let secret = LinkSecret::generate();
            let salt = msg.passphrase.as_ref().map(|_| PassphraseSalt::generate());
            let passphrase_key = match (&msg.passphrase, &salt) {
                (Some(p), Some(s)) => Some(
                    derive_passphrase_key(&self.app, p.clone(), *s)
                        .await
                        .map_err(SubmitError::Internal)?,
                ),
                _ => None,
            };
            let kek = Kek::derive(
                &self.app.server_key,
                &secret,
                passphrase_key.as_ref(),
                self.id.as_bytes(),
                recipient_id.as_bytes(),
            );
            let wrapped_dek = kek.wrap(
                &self.dek,
                self.app.server_key.key_id(),
                self.id.as_bytes(),
                recipient_id.as_bytes(),
            );
            let pickup_id = PickupId::generate();
            wrapped.push((
                address.clone(),
                recipient_id,
                pickup_id,
                wrapped_dek,
                salt,
                secret,
            ));
        }
        // The rest of the ciphertext, the recipients and the totals in one transaction.
        let mut tx = self.app.store.begin_write().await?;
        self.write_pending(&mut tx).await?;
        for (address, recipient_id, pickup_id, wrapped_dek, salt, _) in &wrapped {
            recipients::insert_recipient(
                &mut tx,
                &recipients::NewRecipient {
                    id: *recipient_id,
                    message_id: self.id,
                    address: address.as_str(),
                    pickup_id,
                    wrapped_dek,
                    passphrase_salt: salt.as_ref().map(|s| &s.as_bytes()[..]),
                },
            )
            .await?;
        }
        let part_count = u32::try_from(self.parts.len() + 1).unwrap_or(u32::MAX);
        rows::set_totals(&mut tx, self.id, self.total, part_count, expires_at).await?;
        tx.commit().await?;

        // Hand every notification to the relay. The secrets are dropped (and zeroized) with
        // `wrapped` as this function returns, whatever happens.
        let expires =
            crate::clock::from_ms(expires_at).unwrap_or_else(time::OffsetDateTime::now_utc);
        let base = self.app.config.base_url.trim_end_matches('/');
        for (address, recipient_id, pickup_id, _, _, secret) in &wrapped {
            let link_secret = secret.encode();
            let pickup_url = format!("{base}/p/{pickup_id}");
            let notification = Notification {
                to: address.as_str(),
                sender_name: self.sender.display_name.as_deref(),
                sender_address: &self.sender.address,
                pickup_url: &pickup_url,
                link_secret: &link_secret,
                expires_at: expires,
                passphrase_required: msg.passphrase.is_some(),
            };
            if let Err(e) = self.app.mailer.send_notification(&notification).await {
                let event = ctx
                    .event(Action::NotificationFailed)
                    .with_message(self.id)
                    .with_recipient(recipient_id)
                    .with_detail(json!({ "to": address.as_str(), "error": e.to_string() }));
                if let Err(audit_err) = audit::append(&self.app.store, event).await {
                    tracing::error!(error = %audit_err, "could not audit a failed notification");
                }
                return Err(SubmitError::Unavailable(format!(
                    "the notification to {address} could not be handed to the outbound relay"
                )));
            }
        }

        let now = now_ms();
        let mut tx = self.app.store.begin_write().await?;
        rows::mark_ready(&mut tx, self.id, now).await?;
        let detail = json!({
            "source": self.source.as_str(),
            "sender": self.sender.address,
            "recipients": recipients.len(),
            "bytes": self.total,
            "attachments": self.parts.iter().filter(|p| p.kind == PartKind::Attachment).count(),
            "passphrase": msg.passphrase.is_some(),
            "expires_at": crate::clock::format_rfc3339(expires_at),
        });
        let mut events = vec![
            ctx.event(Action::MessageSubmitted)
                .with_message(self.id)
                .with_detail(detail),
        ];
        for (address, recipient_id, ..) in &wrapped {
            events.push(
                ctx.event(Action::NotificationSent)
                    .with_message(self.id)
                    .with_recipient(recipient_id)
                    .with_detail(json!({ "to": address.as_str() })),
            );
        }
        audit::record_all(&mut tx, events).await?;
        tx.commit().await?;
        Ok(Submitted {
            id: self.id,
            recipients: recipients
                .iter()
                .map(|a| RecipientStatus {
                    address: a.to_string(),
                    status: "notified",
                })
                .collect(),
        })
    }
}

/// Argon2id off the async executor, bounded by the app's KDF semaphore.
pub(crate) async fn derive_passphrase_key(
    app: &AppState,
    passphrase: Passphrase,
    salt: PassphraseSalt,
) -> anyhow::Result<PassphraseKey> {
    let _permit = app.kdf_limit.acquire().await?;
    let key =
        tokio::task::spawn_blocking(move || PassphraseKey::derive(&passphrase, &salt)).await??;
    Ok(key)
}

fn dedupe(addresses: Vec<EmailAddress>) -> Vec<EmailAddress> {
    let mut seen = std::collections::HashSet::new();
    addresses
        .into_iter()
        .filter(|a| seen.insert(a.as_str().to_lowercase()))
        .collect()
}
