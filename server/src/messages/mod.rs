//! Messages: the one place where submissions become ciphertext and ciphertext becomes a
//! message again. The HTTPS API, the compose page and the SMTP listener all submit through
//! [`Draft`]; the pickup pages open through [`open`] and [`open_attachment`].
//!
//! This module decides policy (limits, expiry, lockout, who may open what) and calls
//! `sealpost_crypto` for every cryptographic step and `store::messages` for every row. It must
//! never write plaintext content or a secret anywhere but into the encryptor or the outbound
//! notification, and it must never acknowledge a message that is not durably committed.

mod address;
mod commit;
mod draft;
mod header;
mod pickup;
mod policy;
mod sender;

use std::net::IpAddr;

pub use address::{AddressError, EmailAddress};
pub use draft::{
    Draft, NewMessage, PartWriter, RecipientStatus, STALE_AFTER_MS, Sender, Source, Submitted,
    cleanup_stale,
};
pub use header::{AttachmentInfo, PartKind, clean_file_name};
pub use pickup::{
    CodeSent, Landing, Opened, Verified, landing, open, open_attachment, request_code, verify_code,
};
pub use policy::{Limits, Refusal, declared_content_type};
pub use sender::{RecipientView, SenderView, revoke, sender_view};

use crate::audit::Event;
use crate::store::StoreError;

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
    #[error("too many failed attempts: this message is locked")]
    Locked,
    #[error("confirm your email address with a one-time code first")]
    NotVerified,
    #[error("the access code or passphrase is not right")]
    WrongSecret { remaining: u32 },
    #[error("this message needs the passphrase the sender gave you")]
    PassphraseRequired,
    #[error("the code is not right")]
    WrongCode { remaining: u32 },
    #[error("the code has expired or was already used; ask for a new one")]
    CodeExpired,
    #[error("too many codes requested; wait a few minutes")]
    TooManyRequests,
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<StoreError> for PickupError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// The 16 bytes of a stored UUID text id.
pub(crate) fn id_bytes(id: &str) -> Result<[u8; 16], StoreError> {
    uuid::Uuid::parse_str(id)
        .map(|u| *u.as_bytes())
        .map_err(|_| StoreError::Corrupt {
            table: "messages",
            reason: "id is not a UUID".into(),
        })
}
