//! Recipient pickup: landing (read-only), one-time codes, opening, attachment downloads.
//!
//! Every attempt that could be a guess (code, link secret, passphrase) first passes the
//! client's back-off ([`lockout::admit`]); a wrong one is counted per client and per recipient
//! and audited ([`lockout::count_failure`]), success and failure alike (invariant 6). `landing`
//! writes nothing, so scanners and previewers may fetch links freely (invariant 4).

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
use super::lockout::{self, Lock, lock_of};
use super::{AttachmentInfo, EmailAddress, PartKind, PickupError, RequestCtx};
use crate::app::AppState;
use crate::audit::{self, Action, actor};
use crate::clock::{from_ms, now_ms};
use crate::config::Config;
use crate::ids::{MessageId, PickupId, RecipientId};
use crate::notify::CodeMail;
use crate::store::recipients::{LockRow, PickupRow};
use crate::store::{Store, new_id};
use crate::store::{codes, parts, recipients};
use crate::throttle::{Disposition, Refused};

/// How long a one-time code is valid.
pub const CODE_VALID_MINUTES: u32 = 10;
/// Wrong entries allowed per code.
pub const CODE_MAX_ATTEMPTS: i64 = 5;
/// The window in which codes are counted.
const CODE_WINDOW_MS: i64 = 3_600_000;

/// What the landing page shows. Nothing secret, nothing from the ciphertext.
#[derive(Debug, Clone)]
pub struct Landing {
    pub sender_address: String,
    pub masked_recipient: String,
    pub expires_at: OffsetDateTime,
    pub passphrase_required: bool,
    /// Set when the recipient is locked for every client.
    pub lock: Option<Lock>,
}

#[derive(Debug, Clone)]
pub struct CodeSent {
    pub valid_minutes: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct Verified {
    pub recipient_id: RecipientId,
    /// The code also lifted the recipient's lock.
    pub unlocked: bool,
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

/// Load the recipient for a pickup id and refuse dead messages (but not a locked recipient).
/// Reads only.
async fn load(store: &Store, pickup_id: &PickupId) -> Result<PickupRow, PickupError> {
    let mut conn = store.acquire().await?;
    checked(recipients::pickup(&mut conn, pickup_id).await?)
}

/// Refuse a missing row, a revoked message, an expired or shredded one.
fn checked(row: Option<PickupRow>) -> Result<PickupRow, PickupError> {
    let row = row.ok_or(PickupError::NotFound)?;
    if row.revoked_at.is_some() {
        return Err(PickupError::Revoked);
    }
    if row.purged_at.is_some() || row.expires_at <= now_ms() || row.wrapped_dek.is_none() {
        return Err(PickupError::Expired);
    }
    Ok(row)
}

/// The recipient's lock, if it is locked.
fn lock(app: &AppState, row: &PickupRow) -> Option<Lock> {
    row.locked_at.map(|at| lock_of(&app.config, at, now_ms()))
}

/// [`load`], refusing a locked recipient too.
async fn live(app: &AppState, pickup_id: &PickupId) -> Result<PickupRow, PickupError> {
    let row = load(&app.store, pickup_id).await?;
    match lock(app, &row) {
        Some(lock) => Err(PickupError::Locked(lock)),
        None => Ok(row),
    }
}

/// [`load`], refusing a locked recipient whose cool-down is not over: a new code may then
/// be asked for and lifts the lock.
async fn live_for_code(app: &AppState, pickup_id: &PickupId) -> Result<PickupRow, PickupError> {
    let row = load(&app.store, pickup_id).await?;
    match lock(app, &row) {
        Some(lock) if !lock.code_now => Err(PickupError::Locked(lock)),
        _ => Ok(row),
    }
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

/// The landing page's facts, and the recipient's lock if it is locked. Writes nothing and
/// audits nothing.
pub async fn landing(app: &AppState, pickup_id: &PickupId) -> Result<Landing, PickupError> {
    let row = load(&app.store, pickup_id).await?;
    let lock = lock(app, &row);
    let masked = EmailAddress::parse(&row.address)
        .map(|a| a.masked())
        .unwrap_or_else(|_| "***".into());
    Ok(Landing {
        sender_address: row.sender_address,
        masked_recipient: masked,
        expires_at: time_of(row.expires_at),
        passphrase_required: row.passphrase_salt.is_some(),
        lock,
    })
}

/// Email a fresh one-time code to the recipient. The code is stored, and counts toward the
/// hourly limit, only once the outbound relay took its mail.
pub async fn request_code(
    app: &AppState,
    pickup_id: &PickupId,
    ctx: &RequestCtx,
) -> Result<CodeSent, PickupError> {
    let row = live_for_code(app, pickup_id).await?;
    let client = lockout::client_of(ctx);
    let issued = {
        let mut conn = app.store.acquire().await?;
        codes::issued_since(&mut conn, row.recipient_id, now_ms() - CODE_WINDOW_MS).await?
    };
    if let Some(until) = next_code_at(&app.config, &issued, &client) {
        // Anyone with the link can ask again and again: counted, not audited each time.
        if app.throttle.refusals.note(Refused::CodeRateLimited, ctx.ip) == Disposition::Audit {
            let event = event_for(ctx, &row, Action::CodeFailed)
                .with_detail(json!({ "reason": "rate_limited" }));
            audit::append(&app.store, event).await?;
        }
        return Err(PickupError::TooManyCodes {
            until: time_of(until),
        });
    }
    let code = sealpost_crypto::code::generate();
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
    if let Err(e) = app.mailer.send_code(&mail).await {
        let event = event_for(ctx, &row, Action::CodeFailed)
            .with_detail(json!({ "to": row.address, "error": e.to_string() }));
        audit::append(&app.store, event).await?;
        return Err(PickupError::Unavailable(
            "the code could not be sent; try again in a few minutes".into(),
        ));
    }
    let now = now_ms();
    let mut tx = app.store.begin_write().await?;
    codes::insert_code(
        &mut tx,
        &new_id().to_string(),
        (row.recipient_id, &client),
        &sealpost_crypto::code::digest(&row.recipient_id.to_string(), &code),
        now,
        now + i64::from(CODE_VALID_MINUTES) * 60_000,
    )
    .await?;
    let event = event_for(ctx, &row, Action::CodeSent).with_detail(json!({ "to": row.address }));
    audit::record(&mut tx, event).await?;
    tx.commit().await?;
    Ok(CodeSent {
        valid_minutes: CODE_VALID_MINUTES,
    })
}

/// When `client` may be sent its next code, if the codes `issued` in the last hour (oldest
/// first) already hold the most for it or for the recipient: when the code that must leave
/// the window does.
fn next_code_at(config: &Config, issued: &[codes::Issued], client: &str) -> Option<i64> {
    let leaving = |times: Vec<i64>, limit: u32| {
        let excess = times.len().checked_sub(usize::try_from(limit).ok()?)?;
        times.get(excess).map(|at| at + CODE_WINDOW_MS)
    };
    let mine = issued
        .iter()
        .filter(|c| c.client == client)
        .map(|c| c.created_at)
        .collect();
    let all = issued.iter().map(|c| c.created_at).collect();
    let per_client = leaving(mine, config.codes_per_client_per_hour);
    let per_recipient = leaving(all, config.codes_per_recipient_per_hour);
    per_client.max(per_recipient)
}

/// Why `code` cannot be checked any more, if it cannot: none was sent, it was used, expired
/// or took its wrong entries, or (for a locked recipient) it was sent before the lock.
fn dead_code(code: Option<&codes::CodeRow>, row: &PickupRow, now: i64) -> Option<&'static str> {
    let Some(code) = code else {
        return Some("no_code");
    };
    let dead = code.used_at.is_some()
        || code.expires_at <= now
        || code.attempts >= CODE_MAX_ATTEMPTS
        || row.locked_at.is_some_and(|at| code.created_at < at);
    dead.then_some("code_expired")
}

/// Refuse a code that cannot be checked (`CodeExpired`); a stranger can repeat this at will,
/// so it goes through the refusal log.
async fn refuse_dead_code(
    app: &AppState,
    row: &PickupRow,
    ctx: &RequestCtx,
    reason: &str,
) -> Result<Verified, PickupError> {
    if app.throttle.refusals.note(Refused::CodeExpired, ctx.ip) == Disposition::Audit {
        let event =
            event_for(ctx, row, Action::VerifyFailed).with_detail(json!({ "reason": reason }));
        audit::append(&app.store, event).await?;
    }
    Err(PickupError::CodeExpired)
}

/// Check a one-time code; on success the caller starts a recipient session. For a locked
/// recipient whose cool-down is over, a right code sent after the lock also lifts it.
pub async fn verify_code(
    app: &AppState,
    pickup_id: &PickupId,
    code: &str,
    ctx: &RequestCtx,
) -> Result<Verified, PickupError> {
    let row = live_for_code(app, pickup_id).await?;
    let had_failures = lockout::admit(app, &row, ctx).await?;
    let code: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let latest = {
        let mut conn = app.store.acquire().await?;
        codes::latest_code(&mut conn, row.recipient_id, &lockout::client_of(ctx)).await?
    };
    if let Some(reason) = dead_code(latest.as_ref(), &row, now_ms()) {
        return refuse_dead_code(app, &row, ctx, reason).await;
    }
    let mut tx = app.store.begin_write().await?;
    // Read again under the write lock: another request may have used the code or locked the
    // recipient since.
    let row = checked(recipients::pickup(&mut tx, pickup_id).await?)?;
    if let Some(lock) = lock(app, &row).filter(|l| !l.code_now) {
        return Err(PickupError::Locked(lock));
    }
    let now = now_ms();
    let latest = codes::latest_code(&mut tx, row.recipient_id, &lockout::client_of(ctx)).await?;
    let stored = match (dead_code(latest.as_ref(), &row, now), latest) {
        (None, Some(stored)) => stored,
        (reason, _) => {
            drop(tx);
            return refuse_dead_code(app, &row, ctx, reason.unwrap_or("no_code")).await;
        }
    };
    let recipient_id = row.recipient_id;
    if code.len() == 6
        && sealpost_crypto::code::digest(&recipient_id.to_string(), &code)[..]
            == stored.code_hash[..]
    {
        codes::code_used(&mut tx, &stored.id, now).await?;
        let as_recipient = RequestCtx {
            actor: actor::recipient(recipient_id),
            ..ctx.clone()
        };
        let unlocked = row.locked_at.is_some();
        if unlocked {
            let target = LockRow {
                id: recipient_id,
                address: row.address.clone(),
                failed_attempts: row.failed_attempts,
                locked_at: row.locked_at,
            };
            lockout::lift(&mut tx, (row.message_id, &target), "code", &as_recipient).await?;
        } else if had_failures {
            lockout::forget_client(&mut tx, recipient_id, ctx).await?;
        }
        let event = event_for(&as_recipient, &row, Action::Verified);
        audit::record(&mut tx, event).await?;
        tx.commit().await?;
        return Ok(Verified {
            recipient_id,
            unlocked,
        });
    }
    codes::code_attempt(&mut tx, &stored.id).await?;
    let code_left = u32::try_from(CODE_MAX_ATTEMPTS - stored.attempts - 1).unwrap_or(0);
    let err = lockout::count_failure(
        app,
        &mut tx,
        &row,
        ctx,
        (Action::VerifyFailed, "wrong_code"),
        Some(code_left),
    )
    .await?;
    tx.commit().await?;
    Err(err)
}

/// Check access and unwrap the DEK; counts and audits a wrong secret or passphrase.
async fn check_access(
    app: &AppState,
    pickup_id: &PickupId,
    secret: &LinkSecret,
    passphrase: Option<Passphrase>,
    verified: Option<RecipientId>,
    ctx: &RequestCtx,
) -> Result<(PickupRow, Dek), PickupError> {
    let row = live(app, pickup_id).await?;
    let recipient_bytes = row.recipient_id.as_bytes();
    let message_bytes = row.message_id.as_bytes();
    let passphrase = match (row.passphrase_salt.as_deref(), passphrase) {
        (Some(salt), Some(p)) if !p.is_empty() => Some((salt, p)),
        (Some(_), _) => return Err(PickupError::PassphraseRequired),
        (None, _) => {
            // Without a passphrase, possession of the mailbox (a one-time code) is the second factor.
            if verified != Some(row.recipient_id) {
                return Err(PickupError::NotVerified);
            }
            None
        }
    };
    // Before the costly part: a client that must wait or is blocked gets no Argon2 run.
    let had_failures = lockout::admit(app, &row, ctx).await?;
    let passphrase_key = match passphrase {
        Some((salt, p)) => {
            let salt =
                PassphraseSalt::from_slice(salt).map_err(|e| PickupError::Internal(e.into()))?;
            Some(
                derive_passphrase_key(app, p, salt)
                    .await
                    .map_err(PickupError::Internal)?,
            )
        }
        None => None,
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
        Ok(dek) => {
            if had_failures {
                let mut tx = app.store.begin_write().await?;
                lockout::forget_client(&mut tx, row.recipient_id, ctx).await?;
                tx.commit().await?;
            }
            Ok((row, dek))
        }
        Err(CryptoError::CouldNotOpen) => {
            let mut tx = app.store.begin_write().await?;
            let reason = if passphrase_key.is_some() {
                "wrong_secret_or_passphrase"
            } else {
                "wrong_secret"
            };
            let err =
                lockout::count_failure(app, &mut tx, &row, ctx, (Action::OpenFailed, reason), None)
                    .await?;
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
    let (row, dek) = check_access(app, pickup_id, secret, passphrase, verified, ctx).await?;
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
    let open_count = recipients::record_open(&mut tx, row.recipient_id, now).await?;
    let recipient_id = row.recipient_id;
    let event = ctx
        .event_as(actor::recipient(recipient_id), Action::Opened)
        .with_message(row.message_id)
        .with_recipient(recipient_id)
        .with_detail(json!({ "address": row.address, "open_count": open_count }));
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
    let (row, dek) = check_access(app, pickup_id, secret, passphrase, verified, ctx).await?;
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
