//! The append-only, hash-chained audit log (invariant 6: every access is audited).
//!
//! Each row carries `hash = SHA-256(prev_hash ‖ canonical fields)` and the previous row's hash,
//! so changing, deleting or reordering any row breaks the chain at that row; [`verify`] walks
//! the whole log and names the first bad `seq`. The canonical encoding is specified in
//! `docs/AUDIT.md` and implemented once, in [`chain::row_hash`].
//!
//! Writing: call [`record`] inside the same `BEGIN IMMEDIATE` transaction
//! ([`crate::store::Store::begin_write`]) as the change being audited, so the event commits if
//! and only if the change does, and two writers cannot both read the same "last hash". Use
//! [`append`] for an event that stands alone.
//!
//! The chain alone cannot show that its newest rows are still there, or that it was not
//! recomputed wholesale: [`checkpoint`] signs its head, to be kept elsewhere.
//!
//! Never put a secret (link secret, passphrase, code, password, token, key) or message content
//! (subject, body, file names) into an event: the log is exported to SIEMs in clear.

mod chain;
pub mod checkpoint;
mod export;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use chain::{
    Break, BreakKind, GENESIS_HASH, VerifyReport, row_hash, verify, verify_from_anchor,
};
pub use export::{ExportError, ExportFormat, export};

use crate::clock::now_ms;
use crate::store::audit::{self as rows, AuditRow};
use crate::store::{Result, SqliteConnection, Store};

/// What happened. Stored as its snake_case name; the names are part of the export format, so
/// never rename a variant (add new ones instead).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(
    serialize_all = "snake_case",
    parse_err_ty = UnknownAction,
    parse_err_fn = UnknownAction::new
)]
pub enum Action {
    MessageSubmitted,
    SubmitRejected,
    NotificationSent,
    NotificationFailed,
    CodeSent,
    CodeFailed,
    Verified,
    VerifyFailed,
    Opened,
    OpenFailed,
    AttachmentDownloaded,
    ReplySent,
    ReplyFailed,
    Locked,
    Unlocked,
    Revoked,
    Expired,
    Purged,
    StaffLogin,
    StaffLoginFailed,
    StaffLogout,
    TokenUsed,
    TokenRejected,
    TokenCreated,
    TokenRevoked,
    UserAdded,
    UserDisabled,
    UserEnabled,
    PasswordChanged,
    AuditExported,
    /// An SMTP relay credential was created (`sealpost relay add`).
    RelayAdded,
    /// An SMTP relay credential was deleted (`sealpost relay remove`).
    RelayRemoved,
    /// An SMTP client authenticated with relay credentials.
    RelayAuthenticated,
    /// An SMTP client failed to authenticate.
    RelayAuthFailed,
    /// The SMTP listener refused a client by policy (no TLS, no authentication, sender
    /// domain, connection limits, too many errors).
    SmtpRefused,
    /// A client over one of its rate budgets was refused (`crate::throttle`).
    Throttled,
    /// Repeated refusals of one kind from one client, counted over a window.
    RefusalsCounted,
    /// A checkpoint of the log was signed (`sealpost audit checkpoint`, or the periodic job).
    CheckpointSigned,
}

impl Action {
    /// Every action, for documentation and tests.
    pub const ALL: &'static [Action] = <Self as strum::VariantArray>::VARIANTS;

    /// The stored snake_case name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An action name this version does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown audit action {0:?}")]
pub struct UnknownAction(pub String);

impl UnknownAction {
    fn new(s: &str) -> Self {
        Self(s.chars().take(64).collect())
    }
}

/// Well-known actor names. Staff actors are `user:<uuid>`, recipients `recipient:<uuid>`.
pub mod actor {
    /// The administrative command line.
    pub const CLI: &str = "cli";
    /// Background jobs (expiry, purge).
    pub const SYSTEM: &str = "system";
    /// An anonymous web visitor (e.g. a failed pickup attempt before verification).
    pub const ANONYMOUS: &str = "anonymous";

    /// The actor name for a staff user.
    pub fn user(id: uuid::Uuid) -> String {
        format!("user:{id}")
    }

    /// The actor name for a recipient.
    pub fn recipient(id: crate::ids::RecipientId) -> String {
        format!("recipient:{id}")
    }
}

/// An event to append. Build with [`Event::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
pub struct Event {
    pub actor: String,
    pub action: Action,
    pub message_id: Option<String>,
    pub recipient_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Extra facts (JSON object). Never secrets or message content.
    pub detail: serde_json::Value,
}

/// Longest user agent kept (it is attacker-controlled).
const MAX_USER_AGENT: usize = 512;
/// Longest string kept anywhere in an event's detail, and in its actor, ids and IP: all may
/// carry text a client chose (a path, an address tried, a relay name).
const MAX_FIELD: usize = 512;

fn cut(text: String) -> String {
    if text.chars().count() <= MAX_FIELD {
        text
    } else {
        text.chars().take(MAX_FIELD).collect()
    }
}

/// `value` with every string in it cut to [`MAX_FIELD`] characters.
fn bounded(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(cut(s)),
        Value::Array(items) => Value::Array(items.into_iter().map(bounded).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (cut(k), bounded(v))).collect())
        }
        other => other,
    }
}

impl Event {
    /// An event with no ids, no client and an empty detail object.
    pub fn new(actor: impl Into<String>, action: Action) -> Self {
        Self {
            actor: actor.into(),
            action,
            message_id: None,
            recipient_id: None,
            ip: None,
            user_agent: None,
            detail: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    pub fn with_message(mut self, id: impl fmt::Display) -> Self {
        self.message_id = Some(id.to_string());
        self
    }

    pub fn with_recipient(mut self, id: impl fmt::Display) -> Self {
        self.recipient_id = Some(id.to_string());
        self
    }

    pub fn with_ip(mut self, ip: impl fmt::Display) -> Self {
        self.ip = Some(ip.to_string());
        self
    }

    /// The client's user agent, cut to 512 characters.
    pub fn with_user_agent(mut self, ua: &str) -> Self {
        self.user_agent = Some(ua.chars().take(MAX_USER_AGENT).collect());
        self
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// Append `event` within the caller's transaction, which must have been started with
/// [`Store::begin_write`] (`BEGIN IMMEDIATE`). Returns the new `seq`.
pub async fn record(conn: &mut SqliteConnection, event: Event) -> Result<i64> {
    record_all(conn, vec![event]).await
}

/// Append `events` in order within the caller's transaction (see [`record`]): one read of the
/// chain's head, one insert. Returns the `seq` of the last (the head's, if `events` is empty).
pub async fn record_all(conn: &mut SqliteConnection, events: Vec<Event>) -> Result<i64> {
    let (mut seq, mut prev_hash) = match rows::last(conn).await? {
        Some((seq, hash)) => (seq, hash),
        None => (0, GENESIS_HASH.to_vec()),
    };
    let ts = now_ms();
    let mut chained = Vec::with_capacity(events.len());
    for event in events {
        seq += 1;
        // The hash covers the stored text, so verification never depends on how JSON is
        // re-serialized.
        let detail = bounded(event.detail).to_string();
        let mut row = AuditRow {
            seq,
            ts,
            actor: cut(event.actor),
            action: event.action.as_str().to_owned(),
            message_id: event.message_id.map(cut),
            recipient_id: event.recipient_id.map(cut),
            ip: event.ip.map(cut),
            user_agent: event
                .user_agent
                .map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
            detail,
            prev_hash,
            hash: Vec::new(),
        };
        row.hash = row_hash(&row).to_vec();
        prev_hash = row.hash.clone();
        chained.push(row);
    }
    rows::insert_many(conn, &chained).await?;
    Ok(seq)
}

/// Append one event in its own write transaction. Returns the new `seq`.
pub async fn append(store: &Store, event: Event) -> Result<i64> {
    let mut tx = store.begin_write().await?;
    let seq = record(&mut tx, event).await?;
    tx.commit().await?;
    Ok(seq)
}

#[cfg(test)]
mod tests;
