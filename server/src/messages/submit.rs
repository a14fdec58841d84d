//! Submission: stream parts into ciphertext, then wrap the key for each recipient, notify,
//! and only then make the message visible and acknowledge it (DESIGN.md flow 2, invariant 3).

use sealpost_crypto::{
    Dek, Kek, LinkSecret, PartEncryptor, Passphrase, PassphraseKey, PassphraseSalt,
};
use serde_json::json;
use sqlx::SqliteConnection;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::header::{HeaderBlock, PartEntry};
use super::{EmailAddress, PartKind, RequestCtx, SubmitError};
use crate::app::AppState;
use crate::audit::{self, Action};
use crate::clock::{UnixMillis, now_ms};
use crate::notify::Notification;
use crate::store::messages as rows;
use crate::store::new_id;

/// Sealed chunks are written in transactions of about this many bytes, so a large upload
/// neither holds SQLite's write lock for its whole duration nor pays one fsync per chunk.
const FLUSH_BYTES: usize = 1 << 20;

/// A message left `receiving` this long is taken to belong to a writer that died.
pub const STALE_AFTER_MS: i64 = 60 * 60 * 1000;

/// Who submits.
#[derive(Debug, Clone)]
pub struct Sender {
    pub user_id: Option<Uuid>,
    pub address: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Api,
    Smtp,
    Web,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Smtp => "smtp",
            Self::Web => "web",
        }
    }
}

/// The envelope of a submission: given at commit, when every part has streamed in.
#[derive(Debug)]
pub struct NewMessage {
    pub recipients: Vec<EmailAddress>,
    pub subject: String,
    pub passphrase: Option<Passphrase>,
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RecipientStatus {
    pub address: String,
    pub status: &'static str,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Submitted {
    pub id: Uuid,
    pub recipients: Vec<RecipientStatus>,
}

/// Size and count limits of one draft: the configured ones for the API, wider ones where the
/// source also keeps an archival copy (SMTP stores the original message beside its parts).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_attachments: u32,
}

impl Limits {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            max_bytes: config.max_message_bytes,
            max_attachments: config.max_attachments,
        }
    }
}

/// A row waiting for the next flush.
enum Pending {
    Part {
        part_no: u32,
        header: [u8; 8],
    },
    Chunk {
        part_no: u32,
        seq: u32,
        bytes: Vec<u8>,
    },
    PartLen {
        part_no: u32,
        len: u64,
    },
}

/// A message being received. Parts are encrypted as they arrive and written in batches while
/// the message is `receiving`, invisible to every reader. [`Draft::commit`] finishes it;
/// [`Draft::abort`] (or the cleanup job, if the process dies) removes it.
pub struct Draft {
    app: AppState,
    id: Uuid,
    id_bytes: [u8; 16],
    sender: Sender,
    source: Source,
    limits: Limits,
    dek: Dek,
    parts: Vec<PartEntry>,
    pending: Vec<Pending>,
    pending_bytes: usize,
    total: u64,
    created_at: UnixMillis,
    /// Whether the (invisible, `receiving`) message row has been written: with the first
    /// batch of ciphertext, or at commit.
    stored: bool,
    /// Set once committed or discarded; otherwise dropping the draft discards it.
    finished: bool,
}

impl std::fmt::Debug for Draft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Draft")
            .field("id", &self.id)
            .field("parts", &self.parts.len())
            .finish_non_exhaustive()
    }
}

impl Draft {
    /// Start receiving a message under the configured limits. Nothing is written until the
    /// first batch of ciphertext (or the commit), which also writes the invisible message row.
    pub fn begin(app: &AppState, sender: Sender, source: Source) -> Self {
        Self::begin_with_limits(app, sender, source, Limits::from_config(&app.config))
    }

    /// [`Draft::begin`] with explicit limits.
    pub fn begin_with_limits(
        app: &AppState,
        sender: Sender,
        source: Source,
        limits: Limits,
    ) -> Self {
        let id = new_id();
        Self {
            app: app.clone(),
            id,
            id_bytes: *id.as_bytes(),
            sender,
            source,
            limits,
            dek: Dek::generate(),
            parts: Vec::new(),
            pending: Vec::new(),
            pending_bytes: 0,
            total: 0,
            created_at: now_ms(),
            stored: false,
            finished: false,
        }
    }

    /// The message id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Start a part whose bytes will be given piece by piece.
    pub async fn start_part(
        &mut self,
        kind: PartKind,
        filename: Option<String>,
        content_type: String,
    ) -> Result<PartWriter<'_>, SubmitError> {
        let max_attachments = self.limits.max_attachments;
        if kind == PartKind::Attachment
            && self
                .parts
                .iter()
                .filter(|p| p.kind == PartKind::Attachment)
                .count()
                >= max_attachments as usize
        {
            return Err(SubmitError::Invalid(format!(
                "at most {max_attachments} attachments are allowed"
            )));
        }
        if kind != PartKind::Attachment && self.parts.iter().any(|p| p.kind == kind) {
            return Err(SubmitError::Invalid(
                "only one body of each kind is allowed".into(),
            ));
        }
        let part_no = u32::try_from(self.parts.len() + 1)
            .map_err(|_| SubmitError::Invalid("too many parts".into()))?;
        let encryptor = PartEncryptor::new(&self.dek, &self.id_bytes, part_no);
        self.pending.push(Pending::Part {
            part_no,
            header: encryptor.header(),
        });
        self.parts.push(PartEntry {
            part_no,
            kind,
            filename,
            content_type,
            size: 0,
        });
        Ok(PartWriter {
            draft: self,
            part_no,
            encryptor: Some(encryptor),
            seq: 0,
            len: 0,
        })
    }

    /// Add a whole part at once.
    pub async fn add_part(
        &mut self,
        kind: PartKind,
        filename: Option<String>,
        content_type: String,
        data: &[u8],
    ) -> Result<(), SubmitError> {
        let mut writer = self.start_part(kind, filename, content_type).await?;
        writer.write(data).await?;
        writer.finish().await
    }

    fn queue_chunks(&mut self, part_no: u32, seq: &mut u32, chunks: Vec<Vec<u8>>) {
        for bytes in chunks {
            self.pending_bytes += bytes.len();
            self.pending.push(Pending::Chunk {
                part_no,
                seq: *seq,
                bytes,
            });
            *seq += 1;
        }
    }

    fn count_bytes(&mut self, n: usize) -> Result<(), SubmitError> {
        self.total += n as u64;
        let limit = self.limits.max_bytes;
        if self.total > limit {
            return Err(SubmitError::TooLarge {
                what: "message size",
                limit,
            });
        }
        Ok(())
    }

    /// Write the queued rows in a transaction of their own.
    async fn flush(&mut self) -> Result<(), SubmitError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut tx = self.app.store.begin_write().await?;
        self.write_pending(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Write the message row (the first time) and the queued parts and chunks in `tx`.
    async fn write_pending(&mut self, tx: &mut SqliteConnection) -> Result<(), SubmitError> {
        let id = self.id.to_string();
        if !self.stored {
            let user_id = self.sender.user_id.map(|u| u.to_string());
            rows::insert_message(
                tx,
                &rows::NewMessage {
                    id: &id,
                    sender_user_id: user_id.as_deref(),
                    sender_address: &self.sender.address,
                    source: self.source.as_str(),
                    created_at: self.created_at,
                    // Replaced at commit, when the requested expiry is known.
                    expires_at: self.created_at
                        + i64::from(self.app.config.max_expiry_days) * 86_400_000,
                },
            )
            .await?;
        }
        // Parts whose length is known in this batch get it on insert; the rest (parts
        // written by an earlier batch) are updated.
        let mut parts: Vec<rows::NewPart<'_>> = Vec::new();
        let mut chunks: Vec<rows::NewChunk<'_>> = Vec::new();
        let mut late_lens: Vec<(u32, u64)> = Vec::new();
        for row in &self.pending {
            match row {
                Pending::Part { part_no, header } => parts.push(rows::NewPart {
                    part_no: *part_no,
                    header,
                    plain_len: 0,
                }),
                Pending::Chunk {
                    part_no,
                    seq,
                    bytes,
                } => chunks.push(rows::NewChunk {
                    part_no: *part_no,
                    seq: *seq,
                    bytes,
                }),
                Pending::PartLen { part_no, len } => {
                    match parts.iter_mut().find(|p| p.part_no == *part_no) {
                        Some(part) => part.plain_len = *len,
                        None => late_lens.push((*part_no, *len)),
                    }
                }
            }
        }
        rows::insert_parts(tx, &id, &parts).await?;
        rows::insert_chunks(tx, &id, &chunks).await?;
        for (part_no, len) in late_lens {
            rows::set_part_len(tx, &id, part_no, len).await?;
        }
        self.pending.clear();
        self.pending_bytes = 0;
        self.stored = true;
        Ok(())
    }

    /// Remove everything written so far. Dropping an unfinished draft does the same in the
    /// background, so an early `?` in a handler never leaves rows behind.
    pub async fn abort(mut self) {
        self.finished = true;
        if self.stored {
            discard(&self.app, self.id).await;
        }
    }

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
        let config = self.app.config.clone();
        let recipients = dedupe(msg.recipients);
        if recipients.is_empty() {
            return Err(SubmitError::Invalid(
                "at least one recipient is required".into(),
            ));
        }
        if recipients.len() > config.max_recipients as usize {
            return Err(SubmitError::Invalid(format!(
                "at most {} recipients are allowed",
                config.max_recipients
            )));
        }
        let days = msg.expires_in_days.unwrap_or(config.default_expiry_days);
        if days == 0 || days > config.max_expiry_days {
            return Err(SubmitError::Invalid(format!(
                "expires_in_days must be between 1 and {}",
                config.max_expiry_days
            )));
        }
        let expires_at = self.created_at + i64::from(days) * 86_400_000;
        if msg.passphrase.as_ref().is_some_and(Passphrase::is_empty) {
            return Err(SubmitError::Invalid(
                "the passphrase must not be empty".into(),
            ));
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
        let mut enc = PartEncryptor::new(&self.dek, &self.id_bytes, 0);
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
        let id = self.id.to_string();
        let mut wrapped = Vec::with_capacity(recipients.len());
        for address in &recipients {
            let recipient_id = new_id();
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
                &self.id_bytes,
                recipient_id.as_bytes(),
            );
            let wrapped_dek = kek.wrap(
                &self.dek,
                self.app.server_key.key_id(),
                &self.id_bytes,
                recipient_id.as_bytes(),
            );
            let pickup_id = pickup_id();
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
            rows::insert_recipient(
                &mut tx,
                &rows::NewRecipient {
                    id: &recipient_id.to_string(),
                    message_id: &id,
                    address: address.as_str(),
                    pickup_id,
                    wrapped_dek,
                    passphrase_salt: salt.as_ref().map(|s| &s.as_bytes()[..]),
                },
            )
            .await?;
        }
        let part_count = u32::try_from(self.parts.len() + 1).unwrap_or(u32::MAX);
        rows::set_totals(&mut tx, &id, self.total, part_count, expires_at).await?;
        tx.commit().await?;

        // Hand every notification to the relay. The secrets are dropped (and zeroized) with
        // `wrapped` as this function returns, whatever happens.
        let expires =
            crate::clock::from_ms(expires_at).unwrap_or_else(time::OffsetDateTime::now_utc);
        let base = config.base_url.trim_end_matches('/');
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
        rows::mark_ready(&mut tx, &id, now).await?;
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

impl Drop for Draft {
    fn drop(&mut self) {
        if self.finished || !self.stored {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (app, id) = (self.app.clone(), self.id);
            runtime.spawn(async move { discard(&app, id).await });
        }
        // Without a runtime the cleanup job removes it.
    }
}

/// Writes one part; get it from [`Draft::start_part`].
pub struct PartWriter<'a> {
    draft: &'a mut Draft,
    part_no: u32,
    encryptor: Option<PartEncryptor>,
    seq: u32,
    len: u64,
}

impl std::fmt::Debug for PartWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartWriter")
            .field("part_no", &self.part_no)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl PartWriter<'_> {
    /// Encrypt and queue the next piece; flushes to the database every ~1 MiB.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), SubmitError> {
        self.draft.count_bytes(data.len())?;
        self.len += data.len() as u64;
        let encryptor = self
            .encryptor
            .as_mut()
            .ok_or_else(|| SubmitError::Internal(anyhow::anyhow!("part already finished")))?;
        let chunks = encryptor
            .push(data)
            .map_err(|e| SubmitError::Internal(e.into()))?;
        self.draft.queue_chunks(self.part_no, &mut self.seq, chunks);
        if self.draft.pending_bytes >= FLUSH_BYTES {
            self.draft.flush().await?;
        }
        Ok(())
    }

    /// Seal the last chunk of the part.
    pub async fn finish(mut self) -> Result<(), SubmitError> {
        let encryptor = self
            .encryptor
            .take()
            .ok_or_else(|| SubmitError::Internal(anyhow::anyhow!("part already finished")))?;
        let last = encryptor
            .finish()
            .map_err(|e| SubmitError::Internal(e.into()))?;
        let (part_no, len) = (self.part_no, self.len);
        self.draft.queue_chunks(part_no, &mut self.seq, vec![last]);
        self.draft.pending.push(Pending::PartLen { part_no, len });
        if let Some(entry) = self.draft.parts.iter_mut().find(|p| p.part_no == part_no) {
            entry.size = len;
        }
        if self.draft.pending_bytes >= FLUSH_BYTES {
            self.draft.flush().await?;
        }
        Ok(())
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

fn pickup_id() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealpost_crypto::random_bytes::<16>())
}

fn dedupe(addresses: Vec<EmailAddress>) -> Vec<EmailAddress> {
    let mut seen = std::collections::HashSet::new();
    addresses
        .into_iter()
        .filter(|a| seen.insert(a.as_str().to_lowercase()))
        .collect()
}

async fn discard(app: &AppState, id: Uuid) {
    let result = async {
        let mut tx = app.store.begin_write().await?;
        rows::delete_receiving(&mut tx, &id.to_string()).await?;
        tx.commit().await?;
        Ok::<_, crate::store::StoreError>(())
    }
    .await;
    if let Err(e) = result {
        // The cleanup job will remove it later.
        tracing::warn!(message_id = %id, error = %e, "could not discard an unfinished message");
    }
}

/// Delete messages that have been `receiving` for longer than `older_than_ms`: their writer
/// died. At start-up, before any listener runs, every such message qualifies (pass 0);
/// periodically, pass [`STALE_AFTER_MS`].
pub async fn cleanup_stale(
    store: &crate::store::Store,
    older_than_ms: i64,
) -> Result<usize, crate::store::StoreError> {
    let before = now_ms() - older_than_ms + 1;
    let mut conn = store.acquire().await?;
    let stale = rows::stale_receiving(&mut conn, before).await?;
    drop(conn);
    for id in &stale {
        let mut tx = store.begin_write().await?;
        rows::delete_receiving(&mut tx, id).await?;
        tx.commit().await?;
    }
    Ok(stale.len())
}
