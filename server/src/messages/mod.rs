//! Messages: the one place where submissions become ciphertext and ciphertext becomes a
//! message again. The HTTPS API, the compose page and the SMTP listener all submit through
//! [`Draft`]; the pickup pages open through [`open`] and [`open_attachment`].
//!
//! This module decides policy (limits, expiry, lockout, who may open what) and calls
//! `sealpost_crypto` for every cryptographic step and `store::messages` for every row. It must
//! never write plaintext content or a secret anywhere but into the encryptor or the outbound
//! notification, and it must never acknowledge a message that is not durably committed.
//!
//! # The contract with the web and SMTP layers
//!
//! Callers parse their input, call **one** function of this module, and render the result.
//! They run no SQL and no cryptography of their own, and they never inspect a database error:
//! every failure arrives as a [`SubmitError`] or a [`PickupError`], whose HTTP status is chosen
//! in one place (`crate::web::error`) and whose SMTP reply is chosen by `crate::smtp`.
//!
//! Every call that may write an audit event takes a [`RequestCtx`]: the client's IP and user
//! agent, and the actor the event is recorded under. The actors in use are:
//!
//! | actor | who | set by |
//! |---|---|---|
//! | `anonymous` | any web visitor not yet known, and SMTP clients refused before AUTH | the `RequestCtx` extractor in `crate::web::security`; `crate::smtp::policy` |
//! | `recipient:<recipient id>` | a recipient whose session holds a verified one-time code; always the actor of `verified`, `opened` and `attachment_downloaded` | `crate::web::pickup`, and [`verify_code`], [`open`], [`open_attachment`] themselves |
//! | `token:<user email>` | a sender calling the JSON API with a bearer token | `crate::web::api::auth` |
//! | `relay:<relay name>` | an MTA that authenticated with relay credentials | `crate::smtp::session` |
//! | `smtp:allowed-network` | an MTA submitting without AUTH from `smtp_allowed_networks` | `crate::smtp::session` |
//! | `cli`, `system` | the command line, and the background jobs | `crate::audit::actor` |
//!
//! (`user:<user id>` is reserved in `crate::audit::actor` for signed-in staff; no staff
//! sign-in exists yet.)
//!
//! ## Submitting: [`Draft`]
//!
//! ```text
//! let mut draft = Draft::begin(&app, sender, Source::Api);       // configured Limits
//! // or Draft::begin_with_limits(&app, sender, Source::Smtp, limits) where the source keeps an
//! // archival copy (SMTP stores the original message as one more attachment, original.eml)
//! draft.add_part(PartKind::Text, None, "text/plain; charset=utf-8".into(), &bytes).await?;
//! let mut part = draft.start_part(PartKind::Attachment, Some(name), content_type).await?;
//! part.write(&piece).await?;  /* as often as pieces arrive */  part.finish().await?;
//! let submitted: Submitted = draft.commit(new_message, &ctx).await?;
//! // on a failure of the caller's own before commit: draft.abort().await
//! ```
//!
//! - [`Draft::begin`] writes nothing. Parts are encrypted as they arrive and written in
//!   batches of about 1 MiB while the message is in state `receiving`, invisible to every
//!   reader; the message row itself is written with the first batch.
//! - At most one text and one HTML body, and at most `max_attachments` attachments; the whole
//!   message at most `max_bytes` ([`Limits`]). A file name given by a client goes through
//!   [`clean_file_name`], the one cleaner for every source.
//! - [`Draft::commit`] takes the [`NewMessage`] (recipients as parsed [`EmailAddress`]es,
//!   subject, optional passphrase, optional expiry in days), seals the header block (part 0:
//!   subject, display name, file names), wraps the DEK for each recipient under a fresh link
//!   secret, commits, hands every notification to the outbound relay, and only then makes the
//!   message `ready` and audits `message_submitted` and one `notification_sent` per recipient,
//!   in one transaction. It returns [`Submitted`] (each recipient `notified`) only after all
//!   of that is durable (invariant 3); the link secrets are wiped as it returns.
//! - Any error, from any step, leaves nothing: [`Draft::commit`] deletes what was written and
//!   audits `submit_rejected`; [`Draft::abort`], or dropping the draft, deletes it too; and a
//!   process that dies mid-upload leaves a `receiving` message that [`cleanup_stale`] removes
//!   (at start-up, and periodically after [`STALE_AFTER_MS`]).
//! - [`SubmitError::Refused`] and [`SubmitError::TooLarge`] are the client's fault and final;
//!   [`SubmitError::Unavailable`] (a notification the outbound relay did not take) is
//!   temporary: nothing was kept and the client should retry.
//!
//! ## The sender's side: [`sender_view`], [`revoke`], [`unlock`]
//!
//! All take the sender's user id and see only that sender's own messages; anyone else's
//! message is [`PickupError::NotFound`], the same as one that does not exist. [`SenderView`]
//! lists each recipient's notification and open times, open count and whether it is locked
//! (times as RFC 3339 strings). [`revoke`] stops the message opening at once and shreds its
//! keys and ciphertext in the same transaction (audited `revoked`, then `purged`); revoking
//! twice is not an error. [`unlock`] ([`UnlockBy::Sender`], or [`UnlockBy::Admin`] for the
//! command line, which sees every message) lifts the lock of one recipient (by address,
//! without regard to case) or of all of them, and forgets every client's failures at them,
//! audited `unlocked` per recipient; an address that is not a recipient is
//! [`PickupError::NotFound`]. Unlocking one that is not locked is not an error.
//!
//! ## Pickup: [`landing`], [`request_code`], [`verify_code`], [`open`], [`open_attachment`]
//!
//! All take the pickup id from the link. An unknown or malformed id is
//! [`PickupError::NotFound`]; a revoked message [`PickupError::Revoked`]; an expired or
//! shredded one [`PickupError::Expired`]; a locked recipient [`PickupError::Locked`] (except
//! for [`landing`], and for [`request_code`] and [`verify_code`] once the cool-down is over).
//! These checks come first, in that order, for every call.
//!
//! - [`landing`] reads only: no write, no audit event, no attempt counted, so link scanners
//!   may fetch the page freely (invariant 4). [`Landing`] holds the sender's address, the
//!   masked recipient (`j***@example.org`), the expiry, whether a passphrase is needed, and
//!   the [`Lock`] when the recipient is locked (from when a new code lifts it).
//! - [`request_code`] emails a fresh 6-digit code, valid for 10 minutes, at most
//!   `codes_per_client_per_hour` per client and `codes_per_recipient_per_hour` per recipient
//!   from all clients together ([`PickupError::TooManyCodes`] beyond that, saying when the
//!   next may be asked for), and audits `code_sent` or `code_failed`. The code belongs to the
//!   client that asked for it; it is stored, and counts, only once the outbound relay took
//!   its mail ([`PickupError::Unavailable`] otherwise).
//! - [`verify_code`] checks the newest code this client asked for, so a stranger cannot spend
//!   the recipient's code with wrong entries; [`Verified`] names the recipient, whom the caller
//!   then keeps in its session. A wrong code is [`PickupError::WrongCode`] and is counted; a
//!   used, expired or exhausted code (5 wrong entries), or none at all, is
//!   [`PickupError::CodeExpired`]. For a locked recipient whose cool-down is over, a right
//!   code sent after the lock also lifts it ([`Verified::unlocked`]; audited `unlocked`).
//! - [`open`] and [`open_attachment`] take the link secret and, when the sender set one, the
//!   passphrase, plus the verified recipient id from the session. Without a passphrase the
//!   verified code is required ([`PickupError::NotVerified`] otherwise); with a passphrase it
//!   takes the code's place ([`PickupError::PassphraseRequired`] if it is missing). A wrong
//!   link secret or passphrase is [`PickupError::WrongSecret`] and is counted.
//!   [`Opened`] carries the subject, sender, times, bodies and the attachment list; its
//!   `html` is raw and must be sanitised before it is shown. [`open_attachment`] audits the
//!   download and returns the attachment's [`AttachmentInfo`] with a stream that decrypts one
//!   chunk at a time; an error in the stream means the download failed and must not be
//!   presented as a complete file.
//!
//! ## Lockout (`lockout.rs`)
//!
//! Every guess ([`verify_code`], [`open`], [`open_attachment`]) first passes its client's
//! back-off: the client (IP, IPv6 /64) must wait after its 3rd failure at this recipient
//! ([`PickupError::SlowDown`]: 1 s, doubling, at most [`MAX_WAIT_SECONDS`]) and is blocked
//! for `lockout_minutes` at `lockout_threshold` failures ([`PickupError::Blocked`]); both
//! carry the time to come back ([`PickupError::retry_after`]) and are not counted. The
//! recipient is locked for everyone ([`PickupError::Locked`]) when the failures that still
//! count, of all clients together, reach `lockout_recipient_threshold`. Every counted failure
//! is audited with its reason, the client, its failures and the recipient's, and the one
//! that locks also audits `locked`; the refusals a stranger can repeat at will (waits and
//! blocks, dead codes, codes beyond the hourly limit) go through the refusal log
//! (`crate::throttle`). [`PickupError::WrongSecret`] and [`PickupError::WrongCode`] carry
//! [`Attempts`]: the code's tries left, and the next [`Limit`] this client meets after
//! exactly `remaining` more wrong entries, and the wait before its next try; every number is
//! the one the person then meets (from their client, as long as no other client fails too).
//! A success forgets its client's failures.
//!
//! Link secrets, passphrases and codes arrive as arguments and live only for the call; they
//! are never stored, logged, audited or put into an error (invariant 2).

mod address;
mod commit;
mod draft;
mod header;
mod lockout;
mod pickup;
mod policy;
mod sender;

use std::net::IpAddr;

pub use address::{AddressError, EmailAddress, is_host_name};
pub use draft::{
    Draft, NewMessage, PartWriter, RecipientStatus, STALE_AFTER_MS, Sender, Source, Submitted,
    cleanup_stale,
};
pub use header::{AttachmentInfo, PartKind, clean_file_name};
pub use lockout::{Attempts, Limit, Lock, MAX_WAIT_SECONDS, SLOW_DOWN_AFTER, UnlockBy, unlock};
pub use pickup::{
    CodeSent, Landing, Opened, Verified, landing, open, open_attachment, request_code, verify_code,
};
pub use policy::{Limits, Refusal, declared_content_type};
pub use sender::{RecipientView, SenderView, clean_display_name, revoke, sender_view};

use time::OffsetDateTime;

use crate::audit::Event;
use crate::store::StoreError;
use crate::throttle::RetryAfter;

/// Who is asking, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct RequestCtx {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// `user:<id>`, `recipient:<id>`, `anonymous`, `cli`...
    pub actor: String,
}

impl RequestCtx {
    /// An audit event by this requester.
    pub(crate) fn event(&self, action: crate::audit::Action) -> Event {
        self.event_as(self.actor.clone(), action)
    }

    /// An audit event with this requester's client details but another actor.
    pub(crate) fn event_as(&self, actor: String, action: crate::audit::Action) -> Event {
        let mut event = Event::new(actor, action);
        if let Some(ip) = self.ip {
            event = event.with_ip(ip);
        }
        if let Some(ua) = &self.user_agent {
            event = event.with_user_agent(ua);
        }
        event
    }
}

/// Why a submission was refused. Nothing of a refused submission is kept.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The request is wrong and retrying it will not help (HTTP 422, SMTP 554).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A size or count limit (HTTP 413, SMTP 552).
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge { what: &'static str, limit: u64 },
    /// A temporary failure (outbound relay, database busy): retry later (HTTP 503, SMTP 451).
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A fault of ours (HTTP 500, SMTP 451).
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<StoreError> for SubmitError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// Why a pickup or sender request was refused.
#[derive(Debug, thiserror::Error)]
pub enum PickupError {
    #[error("no such message")]
    NotFound,
    #[error("this message has expired")]
    Expired,
    #[error("the sender withdrew this message")]
    Revoked,
    /// Too many failed attempts from all clients together: locked for everyone until a new
    /// code (after the cool-down), the sender or an admin unlocks it.
    #[error("too many failed attempts: this message is locked")]
    Locked(Lock),
    /// This client made too many failed attempts at this message: it is blocked until
    /// `until` (other clients are not). Not counted.
    #[error("too many wrong entries came from your network, so it is blocked from this message until {} (the block lifts by itself)", clock_text(*.until))]
    Blocked { until: OffsetDateTime },
    /// This client must wait until `until` before its next attempt counts. Not counted.
    #[error("you tried again too soon after wrong entries, so this try was not counted; please wait until {}", clock_text(*.until))]
    SlowDown { until: OffsetDateTime },
    #[error("confirm your email address with a one-time code first")]
    NotVerified,
    #[error("the access code or passphrase is not right")]
    WrongSecret(Attempts),
    #[error("this message needs the passphrase the sender gave you")]
    PassphraseRequired,
    #[error("the code is not right")]
    WrongCode(Attempts),
    #[error("the code has expired or was already used; ask for a new one")]
    CodeExpired,
    /// The hourly number of codes for this client, or for the recipient from all clients
    /// together, was sent; a new one can be asked for from `until`.
    #[error("the most codes allowed for an hour were sent; you can ask for a new one from {}", clock_text(*.until))]
    TooManyCodes { until: OffsetDateTime },
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl PickupError {
    /// How long the client must wait before trying again, for the refusals that say so
    /// (`Retry-After`).
    pub fn retry_after(&self) -> Option<RetryAfter> {
        let until = match self {
            Self::Blocked { until } | Self::SlowDown { until } | Self::TooManyCodes { until } => {
                *until
            }
            _ => return None,
        };
        let wait = until - OffsetDateTime::now_utc();
        Some(RetryAfter(
            wait.try_into().unwrap_or(std::time::Duration::ZERO),
        ))
    }
}

/// `12 March 2026, 14:05:09 UTC`: a time to the second, as refusals name it.
pub fn clock_text(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{} {} {}, {:02}:{:02}:{:02} UTC",
        t.day(),
        t.month(),
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl From<StoreError> for PickupError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

#[cfg(test)]
mod tests;
