//! Recipient pickup: landing (read-only), one-time codes, opening, attachment downloads.
//!
//! Every attempt that could be a guess (code, link secret, passphrase) is counted toward the
//! recipient's lockout and audited, success and failure alike (invariant 6). `landing` writes
//! nothing, so scanners and previewers may fetch links freely (invariant 4).

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use sealpost_crypto::{
    CryptoError, Dek, Kek, LinkSecret, PartDecryptor, Passphrase, PassphraseSalt, wrapped_key_id,
};
use serde_json::json;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::commit::derive_passphrase_key;
use super::header::HeaderBlock;
use super::{AttachmentInfo, EmailAddress, PartKind, PickupError, RequestCtx};
use crate::app::AppState;
use crate::audit::{self, Action, actor};
use crate::clock::{from_ms, now_ms};
use crate::ids::{MessageId, PickupId, RecipientId};
use crate::notify::CodeMail;
use crate::store::recipients::PickupRow;
use crate::store::{Store, new_id};
use crate::store::{codes, parts, recipients};
use crate::throttle::{Disposition, Refused};

/// How long a one-time code is valid.
pub const CODE_VALID_MINUTES: u32 = 10;
/// Wrong entries allowed per code.
pub const CODE_MAX_ATTEMPTS: i64 = 5;
/// Codes a recipient may request per hour.
const CODES_PER_HOUR: u32 = 5;

/// What the landing page shows. Nothing secret, nothing from the ciphertext.
#[derive(Debug, Clone)]
pub struct Landing {
    pub sender_address: String,
    pub masked_recipient: String,
    pub expires_at: OffsetDateTime,
    pub passphrase_required: bool,
}

#[derive(Debug, Clone)]
pub struct CodeSent {
    pub valid_minutes: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct Verified {
    pub recipient_id: RecipientId,
}

/// A decrypted message. `html` is raw: the web layer sanitises it before showing it.
#[derive(Debug)]
pub struct Opened {
    pub subject: String,
    pub sender_address: String,
    pub sender_name: Option<String>,
    pub sent_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub text: Option<String>,
    pub html: Option<String>,
    pub attachments: Vec<AttachmentInfo>,
}

/// Load the recipient for a pickup id and refuse dead messages. Reads only.
async fn live(store: &Store, pickup_id: &PickupId) -> Result<PickupRow, PickupError> {
    let mut conn = store.acquire().await?;
    let row = recipients::pickup(&mut conn, pickup_id)
        .await?
        .ok_or(PickupError::NotFound)?;
    if row.revoked_at.is_some() {
        return Err(PickupError::Revoked);
    }
    if row.purged_at.is_some() || row.expires_at <= now_ms() || row.wrapped_dek.is_none() {
        return Err(PickupError::Expired);
    }
    if row.locked_at.is_some() {
        return Err(PickupError::Locked);
    }
    Ok(row)
}

/// An audit event by this requester about this recipient of this message.
fn event_for(ctx: &RequestCtx, row: &PickupRow, action: Action) -> crate::audit::Event {
    ctx.event(action)
        .with_message(row.message_id)
        .with_recipient(row.recipient_id)
}

fn time_of(ms: i64) -> OffsetDateTime {
    from_ms(ms).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The landing page's facts. Writes nothing and audits nothing.
pub async fn landing(app: &AppState, pickup_id: &PickupId) -> Result<Landing, PickupError> {
    let row = live(&app.store, pickup_id).await?;
    let masked = EmailAddress::parse(&row.address)
        .map(|a| a.masked())
        .unwrap_or_else(|_| "***".into());
    Ok(Landing {
        sender_address: row.sender_address,
        masked_recipient: masked,
        expires_at: time_of(row.expires_at),
        passphrase_required: row.passphrase_salt.is_some(),
    })
}

/// Email a fresh one-time code to the recipient.
pub async fn request_code(
    app: &AppState,
    pickup_id: &PickupId,
    ctx: &RequestCtx,
) -> Result<CodeSent, PickupError> {
    let row = live(&app.store, pickup_id).await?;
    let now = now_ms();
    let code = sealpost_crypto::code::generate();
    {
        let mut tx = app.store.begin_write().await?;
        if codes::codes_since(&mut tx, row.recipient_id, now - 3_600_000).await? >= CODES_PER_HOUR {
            // Anyone with the link can ask again and again: counted, not audited each time.
            if app.throttle.refusals.note(Refused::CodeRateLimited, ctx.ip) == Disposition::Audit {
                let event = event_for(ctx, &row, Action::CodeFailed)
                    .with_detail(json!({ "reason": "rate_limited" }));
                audit::record(&mut tx, event).await?;
                tx.commit().await?;
            }
            return Err(PickupError::TooManyRequests);
        }
        let expires = now + i64::from(CODE_VALID_MINUTES) * 60_000;
        codes::insert_code(
            &mut tx,
            &new_id().to_string(),
            row.recipient_id,
            &sealpost_crypto::code::digest(&row.recipient_id.to_string(), &code),
            now,
            expires,
        )
        .await?;
        tx.commit().await?;
    }
    let pickup_url = format!(
        "{}/p/{pickup_id}",
        app.config.base_url.trim_end_matches('/')
    );
    let mail = CodeMail {
        to: &row.address,
        code: &code,
        pickup_url: &pickup_url,
        valid_minutes: CODE_VALID_MINUTES,
    };
    let sent = app.mailer.send_code(&mail).await;
    let (action, detail) = match &sent {
        Ok(()) => (Action::CodeSent, json!({ "to": row.address })),
        Err(e) => (
            Action::CodeFailed,
            json!({ "to": row.address, "error": e.to_string() }),
        ),
    };
    audit::append(&app.store, event_for(ctx, &row, action).with_detail(detail)).await?;
    match sent {
        Ok(()) => Ok(CodeSent {
            valid_minutes: CODE_VALID_MINUTES,
        }),
        Err(_) => Err(PickupError::Unavailable(
            "the code could not be sent; try again in a few minutes".into(),
        )),
    }
}

/// Check a one-time code; on success the caller starts a recipient session.
pub async fn verify_code(
    app: &AppState,
    pickup_id: &PickupId,
    code: &str,
    ctx: &RequestCtx,
) -> Result<Verified, PickupError> {
    let row = live(&app.store, pickup_id).await?;
    let code: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let now = now_ms();
    let mut tx = app.store.begin_write().await?;
    let Some(stored) = codes::latest_code(&mut tx, row.recipient_id).await? else {
        return Err(PickupError::CodeExpired);
    };
    if stored.used_at.is_some() || stored.expires_at <= now || stored.attempts >= CODE_MAX_ATTEMPTS
    {
        let event = event_for(ctx, &row, Action::VerifyFailed)
            .with_detail(json!({ "reason": "code_expired" }));
        audit::record(&mut tx, event).await?;
        tx.commit().await?;
        return Err(PickupError::CodeExpired);
    }
    let recipient_id = row.recipient_id;
    if code.len() == 6
        && sealpost_crypto::code::digest(&recipient_id.to_string(), &code)[..]
            == stored.code_hash[..]
    {
        codes::code_used(&mut tx, &stored.id, now).await?;
        let event = ctx
            .event_as(actor::recipient(recipient_id), Action::Verified)
            .with_message(row.message_id)
            .with_recipient(recipient_id);
        audit::record(&mut tx, event).await?;
        tx.commit().await?;
        return Ok(Verified { recipient_id });
    }
    codes::code_attempt(&mut tx, &stored.id).await?;
    let code_left = u32::try_from(CODE_MAX_ATTEMPTS - stored.attempts - 1).unwrap_or(0);
    let err = count_failure(app, &mut tx, &row, ctx, Action::VerifyFailed, "wrong_code").await?;
    tx.commit().await?;
    Err(match err {
        PickupError::WrongSecret { remaining } => PickupError::WrongCode {
            remaining: remaining.min(code_left),
        },
        other => other,
    })
}

/// Count a failed guess toward the lockout and audit it (and the lockout, if this locks).
async fn count_failure(
    app: &AppState,
    tx: &mut crate::store::SqliteConnection,
    row: &PickupRow,
    ctx: &RequestCtx,
    action: Action,
    reason: &str,
) -> Result<PickupError, PickupError> {
    let threshold = app.config.lockout_threshold;
    let (count, locked_now) =
        recipients::record_failure(tx, row.recipient_id, threshold, now_ms()).await?;
    let event =
        event_for(ctx, row, action).with_detail(json!({ "reason": reason, "failures": count }));
    audit::record(tx, event).await?;
    if locked_now {
        let event = event_for(ctx, row, Action::Locked).with_detail(json!({ "failures": count }));
        audit::record(tx, event).await?;
    }
    if count >= threshold {
        return Ok(PickupError::Locked);
    }
    Ok(PickupError::WrongSecret {
        remaining: threshold - count,
    })
}

/// Check access and unwrap the DEK; counts and audits a wrong secret or passphrase.
async fn unlock(
    app: &AppState,
    pickup_id: &PickupId,
    secret: &LinkSecret,
    passphrase: Option<Passphrase>,
    verified: Option<RecipientId>,
    ctx: &RequestCtx,
) -> Result<(PickupRow, Dek), PickupError> {
    let row = live(&app.store, pickup_id).await?;
    let recipient_bytes = row.recipient_id.as_bytes();
    let message_bytes = row.message_id.as_bytes();
    let passphrase_key = match (&row.passphrase_salt, passphrase) {
        (Some(salt), Some(p)) if !p.is_empty() => {
            let salt =
                PassphraseSalt::from_slice(salt).map_err(|e| PickupError::Internal(e.into()))?;
            Some(
                derive_passphrase_key(app, p, salt)
                    .await
                    .map_err(PickupError::Internal)?,
            )
        }
        (Some(_), _) => return Err(PickupError::PassphraseRequired),
        (None, _) => {
            // Without a passphrase, possession of the mailbox (a one-time code) is the second factor.
            if verified != Some(row.recipient_id) {
                return Err(PickupError::NotVerified);
            }
            None
        }
    };
    let wrapped = row.wrapped_dek.as_deref().ok_or(PickupError::Expired)?;
    let key_id = wrapped_key_id(wrapped).map_err(|e| PickupError::Internal(e.into()))?;
    if key_id != app.server_key.key_id() {
        return Err(PickupError::Internal(anyhow::anyhow!(
            "message was wrapped under server key id {key_id}, which is not loaded"
        )));
    }
    let kek = Kek::derive(
        &app.server_key,
        secret,
        passphrase_key.as_ref(),
        message_bytes,
        recipient_bytes,
    );
    match kek.unwrap(wrapped, message_bytes, recipient_bytes) {
        Ok(dek) => Ok((row, dek)),
        Err(CryptoError::CouldNotOpen) => {
            let mut tx = app.store.begin_write().await?;
            let reason = if passphrase_key.is_some() {
                "wrong_secret_or_passphrase"
            } else {
                "wrong_secret"
            };
            let err = count_failure(app, &mut tx, &row, ctx, Action::OpenFailed, reason).await?;
            tx.commit().await?;
            Err(err)
        }
        Err(e) => Err(PickupError::Internal(e.into())),
    }
}

/// Decrypt a whole (small) part.
async fn read_part(
    store: &Store,
    dek: &Dek,
    message_id: MessageId,
    part_no: u32,
) -> Result<Zeroizing<Vec<u8>>, PickupError> {
    let mut conn = store.acquire().await?;
    let (header, len) = parts::part(&mut conn, message_id, part_no)
        .await?
        .ok_or(PickupError::Expired)?;
    let mut dec = PartDecryptor::new(dek, message_id.as_bytes(), part_no, &header)
        .map_err(|e| PickupError::Internal(e.into()))?;
    let mut out = Zeroizing::new(Vec::with_capacity(
        usize::try_from(len).unwrap_or(0).min(64 << 20),
    ));
    let mut seq = 0;
    while let Some(chunk) = parts::chunk(&mut conn, message_id, part_no, seq).await? {
        if let Some(plain) = dec.push(chunk).map_err(corrupt)? {
            out.extend_from_slice(&plain);
        }
        seq += 1;
    }
    out.extend_from_slice(&dec.finish().map_err(corrupt)?);
    Ok(out)
}

/// Stored ciphertext that does not open under a key that did unwrap: damage or tampering.
fn corrupt(e: CryptoError) -> PickupError {
    PickupError::Internal(anyhow::anyhow!(
        "stored ciphertext failed authentication: {e}"
    ))
}

fn utf8(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn header_block(
    store: &Store,
    dek: &Dek,
    message_id: MessageId,
) -> Result<HeaderBlock, PickupError> {
    let json = read_part(store, dek, message_id, 0).await?;
    serde_json::from_slice(&json).map_err(|e| PickupError::Internal(e.into()))
}

/// Decrypt the message for the recipient and record the view.
pub async fn open(
    app: &AppState,
    pickup_id: &PickupId,
    secret: &LinkSecret,
    passphrase: Option<Passphrase>,
    verified: Option<RecipientId>,
    ctx: &RequestCtx,
) -> Result<Opened, PickupError> {
    let (row, dek) = unlock(app, pickup_id, secret, passphrase, verified, ctx).await?;
    let header = header_block(&app.store, &dek, row.message_id).await?;
    let body = |kind| {
        let part = header.first(kind).map(|p| p.part_no);
        let (store, dek, id) = (&app.store, &dek, row.message_id);
        async move {
            match part {
                Some(n) => read_part(store, dek, id, n).await.map(|b| Some(utf8(&b))),
                None => Ok(None),
            }
        }
    };
    let text = body(PartKind::Text).await?;
    let html = body(PartKind::Html).await?;
    let now = now_ms();
    let mut tx = app.store.begin_write().await?;
    recipients::record_open(&mut tx, row.recipient_id, now).await?;
    let recipient_id = row.recipient_id;
    let event = ctx
        .event_as(actor::recipient(recipient_id), Action::Opened)
        .with_message(row.message_id)
        .with_recipient(recipient_id)
        .with_detail(json!({ "address": row.address, "open_count": row.open_count + 1 }));
    audit::record(&mut tx, event).await?;
    tx.commit().await?;
    Ok(Opened {
        attachments: header.attachments(),
        subject: header.subject,
        sender_name: header
            .sender_name
            .as_deref()
            .and_then(super::clean_display_name),
        sender_address: row.sender_address,
        sent_at: time_of(row.created_at),
        expires_at: time_of(row.expires_at),
        text,
        html,
    })
}

/// Check access, audit the download, and stream one attachment's plaintext, decrypting one
/// chunk at a time.
pub async fn open_attachment(
    app: &AppState,
    pickup_id: &PickupId,
    secret: &LinkSecret,
    passphrase: Option<Passphrase>,
    verified: Option<RecipientId>,
    part_no: u32,
    ctx: &RequestCtx,
) -> Result<
    (
        AttachmentInfo,
        BoxStream<'static, Result<Bytes, PickupError>>,
    ),
    PickupError,
> {
    let (row, dek) = unlock(app, pickup_id, secret, passphrase, verified, ctx).await?;
    let header = header_block(&app.store, &dek, row.message_id).await?;
    let info = header
        .attachments()
        .into_iter()
        .find(|a| a.part_no == part_no)
        .ok_or(PickupError::NotFound)?;
    let (part_header, _) = {
        let mut conn = app.store.acquire().await?;
        parts::part(&mut conn, row.message_id, part_no)
            .await?
            .ok_or(PickupError::Expired)?
    };
    let decryptor = PartDecryptor::new(&dek, row.message_id.as_bytes(), part_no, &part_header)
        .map_err(|e| PickupError::Internal(e.into()))?;
    let recipient_id = row.recipient_id;
    let event = ctx
        .event_as(actor::recipient(recipient_id), Action::AttachmentDownloaded)
        .with_message(row.message_id)
        .with_recipient(recipient_id)
        .with_detail(json!({ "part_no": part_no, "size": info.size }));
    audit::append(&app.store, event).await?;

    struct State {
        store: Store,
        message_id: MessageId,
        part_no: u32,
        seq: u32,
        decryptor: Option<PartDecryptor>,
    }
    let state = State {
        store: app.store.clone(),
        message_id: row.message_id,
        part_no,
        seq: 0,
        decryptor: Some(decryptor),
    };
    let body = stream::try_unfold(state, |mut st| async move {
        loop {
            let Some(dec) = st.decryptor.as_mut() else {
                return Ok(None);
            };
            let mut conn = st.store.acquire().await?;
            match parts::chunk(&mut conn, st.message_id, st.part_no, st.seq).await? {
                Some(chunk) => {
                    st.seq += 1;
                    if let Some(plain) = dec.push(chunk).map_err(corrupt)? {
                        return Ok(Some((Bytes::from(plain), st)));
                    }
                }
                None => {
                    let last = st
                        .decryptor
                        .take()
                        .ok_or(PickupError::Expired)?
                        .finish()
                        .map_err(corrupt)?;
                    return Ok(Some((Bytes::from(last), st)));
                }
            }
        }
    })
    .boxed();
    Ok((info, body))
}
