//! A message being received: parts are encrypted as they stream in and written in batches
//! while the message is `receiving`, invisible to every reader (see [`super::commit`] for how
//! it becomes visible). Nothing of a draft that is aborted, dropped or left behind by a dead
//! process survives: [`Draft::abort`], `Drop`, and [`cleanup_stale`] remove it.

use sealpost_crypto::{Dek, PartEncryptor, Passphrase};
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::header::PartEntry;
use super::policy::{Limits, Refusal};
use super::sender::clean_display_name;
use super::{EmailAddress, PartKind, SubmitError};
use crate::app::AppState;
use crate::clock::{UnixMillis, now_ms};
use crate::ids::MessageId;
use crate::store::{messages as rows, parts, users};

/// Sealed chunks are written in transactions of about this many bytes, so a large upload
/// neither holds SQLite's write lock for its whole duration nor pays one fsync per chunk.
const FLUSH_BYTES: usize = 1 << 20;

/// A message left `receiving` this long is taken to belong to a writer that died.
pub const STALE_AFTER_MS: i64 = 60 * 60 * 1000;

/// Who submits.
#[derive(Debug, Clone)]
pub struct Sender {
    pub user_id: Option<Uuid>,
    /// What Sealpost checked: the staff user's address, or the SMTP envelope sender.
    pub address: String,
    /// Taken from the message, unchecked; [`Draft::begin`] cleans it
    /// ([`super::clean_display_name`]).
    pub display_name: Option<String>,
}

impl Sender {
    /// The sender of mail that a relay (or an allowed network) handed over with `envelope`
    /// as its envelope sender. The message belongs to the staff user with that address, if
    /// there is one and it is not disabled, so it is in that user's messages (status,
    /// revocation); otherwise it belongs to nobody (visible to admins).
    ///
    /// The envelope sender, not the `From:` header: the relay authenticated to Sealpost is
    /// what vouches for the envelope (an MTA that checks its own users' sender addresses,
    /// such as Postfix with `reject_sender_login_mismatch`, enforces it), while `From:` is
    /// whatever the author's client wrote.
    pub async fn relayed(
        app: &AppState,
        envelope: &str,
        display_name: Option<String>,
    ) -> Result<Self, SubmitError> {
        let user = {
            let mut conn = app.store.acquire().await?;
            users::find_by_email(&mut conn, envelope).await?
        };
        Ok(Self {
            user_id: user.filter(|u| !u.disabled).map(|u| u.id),
            address: envelope.to_owned(),
            display_name,
        })
    }
}

/// How a message arrived; stored, and named in audit events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Source {
    Api,
    Smtp,
    Web,
}

impl Source {
    pub(super) fn as_str(self) -> &'static str {
        self.into()
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
    pub id: MessageId,
    pub recipients: Vec<RecipientStatus>,
}

/// A row waiting for the next flush.
pub(super) enum Pending {
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
    pub(super) app: AppState,
    pub(super) id: MessageId,
    pub(super) sender: Sender,
    pub(super) source: Source,
    pub(super) limits: Limits,
    pub(super) dek: Dek,
    pub(super) parts: Vec<PartEntry>,
    pub(super) pending: Vec<Pending>,
    pending_bytes: usize,
    pub(super) total: u64,
    pub(super) created_at: UnixMillis,
    /// Whether the (invisible, `receiving`) message row has been written: with the first
    /// batch of ciphertext, or at commit.
    pub(super) stored: bool,
    /// Set once committed or discarded; otherwise dropping the draft discards it.
    pub(super) finished: bool,
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
    /// Start receiving a message from `source`, under that source's [`Limits`]. Nothing is
    /// written until the first batch of ciphertext (or the commit), which also writes the
    /// invisible message row.
    pub fn begin(app: &AppState, mut sender: Sender, source: Source) -> Self {
        sender.display_name = sender.display_name.as_deref().and_then(clean_display_name);
        Self {
            app: app.clone(),
            id: MessageId::generate(),
            sender,
            source,
            limits: Limits::for_source(&app.config, source),
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
    pub fn id(&self) -> MessageId {
        self.id
    }

    /// Start a part whose bytes will be given piece by piece.
    pub async fn start_part(
        &mut self,
        kind: PartKind,
        filename: Option<String>,
        content_type: String,
    ) -> Result<PartWriter<'_>, SubmitError> {
        if kind == PartKind::Attachment {
            let attachments = self.parts.iter().filter(|p| p.kind == kind).count();
            self.limits.attachment_count(attachments + 1)?;
        } else if self.parts.iter().any(|p| p.kind == kind) {
            return Err(Refusal::DuplicateBody.into());
        }
        let part_no =
            u32::try_from(self.parts.len() + 1).map_err(|_| Refusal::TooManyAttachments {
                max: self.limits.max_attachments,
            })?;
        let encryptor = PartEncryptor::new(&self.dek, self.id.as_bytes(), part_no);
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

    /// Add the plain-text and HTML bodies, whichever are given.
    pub async fn add_bodies(
        &mut self,
        text: Option<&str>,
        html: Option<&str>,
    ) -> Result<(), SubmitError> {
        if let Some(text) = text {
            self.add_part(
                PartKind::Text,
                None,
                "text/plain; charset=utf-8".to_owned(),
                text.as_bytes(),
            )
            .await?;
        }
        if let Some(html) = html {
            self.add_part(
                PartKind::Html,
                None,
                "text/html; charset=utf-8".to_owned(),
                html.as_bytes(),
            )
            .await?;
        }
        Ok(())
    }

    pub(super) fn queue_chunks(&mut self, part_no: u32, seq: &mut u32, chunks: Vec<Vec<u8>>) {
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
    pub(super) async fn write_pending(
        &mut self,
        tx: &mut SqliteConnection,
    ) -> Result<(), SubmitError> {
        if !self.stored {
            let user_id = self.sender.user_id.map(|u| u.to_string());
            rows::insert_message(
                tx,
                &rows::NewMessage {
                    id: self.id,
                    sender_user_id: user_id.as_deref(),
                    sender_address: &self.sender.address,
                    source: self.source.as_str(),
                    created_at: self.created_at,
                    // Replaced at commit, when the requested expiry is known.
                    expires_at: self.created_at
                        + i64::from(self.limits.max_expiry_days) * 86_400_000,
                },
            )
            .await?;
        }
        // Parts whose length is known in this batch get it on insert; the rest (parts
        // written by an earlier batch) are updated.
        let mut parts: Vec<parts::NewPart<'_>> = Vec::new();
        let mut chunks: Vec<parts::NewChunk<'_>> = Vec::new();
        let mut late_lens: Vec<(u32, u64)> = Vec::new();
        for row in &self.pending {
            match row {
                Pending::Part { part_no, header } => parts.push(parts::NewPart {
                    part_no: *part_no,
                    header,
                    plain_len: 0,
                }),
                Pending::Chunk {
                    part_no,
                    seq,
                    bytes,
                } => chunks.push(parts::NewChunk {
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
        parts::insert_parts(tx, self.id, &parts).await?;
        parts::insert_chunks(tx, self.id, &chunks).await?;
        for (part_no, len) in late_lens {
            parts::set_part_len(tx, self.id, part_no, len).await?;
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
    ///
    /// A large `data` is encrypted and written a batch at a time, so the ciphertext waiting to
    /// be written never exceeds about one batch, whatever the size of the piece.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), SubmitError> {
        self.draft.count_bytes(data.len())?;
        self.len += data.len() as u64;
        for piece in data.chunks(FLUSH_BYTES) {
            let encryptor = self
                .encryptor
                .as_mut()
                .ok_or_else(|| SubmitError::Internal(anyhow::anyhow!("part already finished")))?;
            let chunks = encryptor
                .push(piece)
                .map_err(|e| SubmitError::Internal(e.into()))?;
            self.draft.queue_chunks(self.part_no, &mut self.seq, chunks);
            if self.draft.pending_bytes >= FLUSH_BYTES {
                self.draft.flush().await?;
            }
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

pub(super) async fn discard(app: &AppState, id: MessageId) {
    let result = async {
        let mut tx = app.store.begin_write().await?;
        rows::delete_receiving(&mut tx, id).await?;
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
        rows::delete_receiving(&mut tx, *id).await?;
        tx.commit().await?;
    }
    Ok(stale.len())
}
