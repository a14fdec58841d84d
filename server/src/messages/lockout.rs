//! The lockout rules: how failed guesses (wrong one-time codes, link secrets, passphrases) are
//! counted, what a guessing client is made to do, and how a locked recipient gets back in.
//!
//! Failures are counted twice, in the database (so a restart forgets nothing):
//!
//! - **per recipient and client** (`pickup_failures`; the client is the IP address, an IPv6
//!   address by its /64, as [`ClientKey`] groups them). From the [`SLOW_DOWN_AFTER`]th failure
//!   on, the client must wait before its next attempt counts: 1 s after the 3rd, 2 s after the
//!   4th, doubling up to [`MAX_WAIT_SECONDS`]. An attempt during the wait is refused
//!   ([`PickupError::SlowDown`]) and not counted. At `lockout_threshold` failures the client is
//!   blocked from this recipient for `lockout_minutes` ([`PickupError::Blocked`]); the block
//!   lifts by itself and the client starts again from zero. A client's failures are also
//!   forgotten `lockout_minutes` after its last one, and when it succeeds (a right code, or a
//!   message that opens).
//! - **per recipient, from all clients together**: the failures that still count, of every
//!   client. At `lockout_recipient_threshold` (more than `lockout_threshold`, and one client
//!   never holds more than that, so one client alone never gets there however long it tries)
//!   the recipient is locked for every client ([`PickupError::Locked`]). After
//!   `lockout_cooldown_minutes` the recipient may ask for a new one-time code; a right code
//!   sent after the lock lifts it, as does [`unlock`] by the sender or an admin. Lifting a lock
//!   forgets every client's failures. (`recipients.failed_attempts` keeps the number of
//!   failures since the last unlock, for the audit trail.)
//!
//! What a wrong entry reports ([`Attempts`]) is exact for the client that made it: the tries
//! its code has left, and the next thing that happens to this client (a wait, a block, or the
//! lock for everyone), after how many more wrong entries.
//!
//! Refusals a stranger can repeat at will (attempts while waiting or blocked) are noted in the
//! refusal log ([`crate::throttle::RefusalLog`]): the first few of each window are audited as
//! `throttled`, the rest counted into one `refusals_counted` event. Counted failures are
//! always audited one by one.

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{PickupError, RequestCtx};
use crate::app::AppState;
use crate::audit::{self, Action};
use crate::clock::{UnixMillis, format_rfc3339, from_ms, now_ms};
use crate::config::Config;
use crate::ids::{MessageId, RecipientId};
use crate::net::ClientKey;
use crate::store::SqliteConnection;
use crate::store::pickup_failures::{self, ClientFailures};
use crate::store::recipients::{self, PickupRow};
use crate::throttle::{Disposition, Refused};

/// Failures of one client after which it must wait before each further attempt.
pub const SLOW_DOWN_AFTER: u32 = 3;
/// The longest wait between two attempts of one client.
pub const MAX_WAIT_SECONDS: i64 = 300;

/// What happens to a client once its remaining wrong entries are used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// It must wait between attempts (a few seconds at first, doubling each time).
    Wait,
    /// It is blocked from this message for `minutes`.
    Blocked { minutes: u32 },
    /// The message is locked for everyone until the recipient or the sender unlocks it.
    Locked,
}

/// What a wrong entry leaves the client that made it. Every number is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    /// For a one-time code: how many more wrong entries the code takes before it stops working
    /// (0: it no longer works; a new code is needed).
    pub code_left: Option<u32>,
    /// Wrong entries this client may still make before `then` happens.
    pub remaining: u32,
    /// What happens after `remaining` more wrong entries.
    pub then: Limit,
    /// When set, this client's next attempt counts only from this time on; an earlier one is
    /// refused with [`PickupError::SlowDown`].
    pub wait_until: Option<OffsetDateTime>,
}

/// A recipient locked for every client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    /// From this time on, a new one-time code lifts the lock.
    pub code_from: OffsetDateTime,
    /// Whether that time has come (a code may be asked for now).
    pub code_now: bool,
}

/// The settings the rules read.
#[derive(Debug, Clone, Copy)]
struct Rules {
    threshold: u32,
    block_ms: i64,
    block_minutes: u32,
    recipient_threshold: u32,
    cooldown_ms: i64,
}

impl Rules {
    fn of(config: &Config) -> Self {
        Self {
            threshold: config.lockout_threshold,
            block_ms: i64::from(config.lockout_minutes) * 60_000,
            block_minutes: config.lockout_minutes,
            recipient_threshold: config.lockout_recipient_threshold,
            cooldown_ms: i64::from(config.lockout_cooldown_minutes) * 60_000,
        }
    }
}

fn time_of(ms: UnixMillis) -> OffsetDateTime {
    from_ms(ms).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The client an attempt comes from, as failures are counted.
pub(super) fn client_of(ctx: &RequestCtx) -> String {
    ctx.ip
        .map_or_else(|| "unknown".to_owned(), |ip| ClientKey::of(ip).label())
}

/// The wait after a client's `failures`th failure, if it must wait.
fn wait_ms(failures: u32) -> Option<i64> {
    let over = failures.checked_sub(SLOW_DOWN_AFTER)?;
    let seconds = 1_i64
        .checked_shl(over)
        .filter(|s| *s > 0 && *s <= MAX_WAIT_SECONDS)
        .unwrap_or(MAX_WAIT_SECONDS);
    Some(seconds * 1000)
}

/// The lock of a recipient locked at `locked_at`.
pub(super) fn lock_of(config: &Config, locked_at: UnixMillis, now: UnixMillis) -> Lock {
    let from = locked_at.saturating_add(Rules::of(config).cooldown_ms);
    Lock {
        code_from: time_of(from),
        code_now: now >= from,
    }
}

/// A client's failures at a recipient as they count at `now`: none once a block ended or
/// `lockout_minutes` passed since the last one.
fn standing(row: Option<ClientFailures>, rules: Rules, now: UnixMillis) -> ClientFailures {
    let none = ClientFailures {
        failures: 0,
        last_failed_at: 0,
        blocked_until: None,
    };
    match row {
        Some(r) if r.blocked_until.is_some_and(|until| until > now) => r,
        Some(r) if r.blocked_until.is_none() && r.last_failed_at + rules.block_ms > now => r,
        _ => none,
    }
}

fn failures_of(row: &ClientFailures) -> u32 {
    u32::try_from(row.failures).unwrap_or(u32::MAX)
}

/// Refuse an attempt of this client that must not count yet: it is blocked, or it has not
/// waited since its last failure. The refusal is not counted; it goes through the refusal
/// log. Returns whether the client has failures on record (a success then forgets them).
pub(super) async fn admit(
    app: &AppState,
    row: &PickupRow,
    ctx: &RequestCtx,
) -> Result<bool, PickupError> {
    let now = now_ms();
    let client = client_of(ctx);
    let stored = {
        let mut conn = app.store.acquire().await?;
        pickup_failures::get(&mut conn, row.recipient_id, &client).await?
    };
    let standing = standing(stored, Rules::of(&app.config), now);
    let refusal = if let Some(until) = standing.blocked_until {
        Some(("blocked", until))
    } else {
        wait_ms(failures_of(&standing))
            .map(|wait| standing.last_failed_at + wait)
            .filter(|until| *until > now)
            .map(|until| ("slow_down", until))
    };
    let Some((reason, until)) = refusal else {
        return Ok(standing.failures > 0);
    };
    if app.throttle.refusals.note(Refused::PickupBlocked, ctx.ip) == Disposition::Audit {
        let event = ctx
            .event(Action::Throttled)
            .with_message(row.message_id)
            .with_recipient(row.recipient_id)
            .with_detail(json!({
                "gate": "pickup_attempts",
                "reason": reason,
                "client": client,
                "until": format_rfc3339(until),
            }));
        audit::append(&app.store, event).await?;
    }
    let until = time_of(until);
    Err(if reason == "blocked" {
        PickupError::Blocked { until }
    } else {
        PickupError::SlowDown { until }
    })
}

/// Count a wrong guess of this client in the caller's write transaction, audit it (and the
/// lock, if it locks), and return the error to answer with: what is left ([`Attempts`], as
/// `WrongCode` when `code_left` is given, else `WrongSecret`), or the block or lock it caused.
pub(super) async fn count_failure(
    app: &AppState,
    tx: &mut SqliteConnection,
    row: &PickupRow,
    ctx: &RequestCtx,
    (action, reason): (Action, &str),
    code_left: Option<u32>,
) -> Result<PickupError, PickupError> {
    let rules = Rules::of(&app.config);
    let now = now_ms();
    let client = client_of(ctx);
    let before = standing(
        pickup_failures::get(tx, row.recipient_id, &client).await?,
        rules,
        now,
    );
    let failures = failures_of(&before).saturating_add(1);
    let blocked_until = (failures >= rules.threshold).then(|| now + rules.block_ms);
    pickup_failures::set(
        tx,
        row.recipient_id,
        &client,
        ClientFailures {
            failures: i64::from(failures),
            last_failed_at: now,
            blocked_until,
        },
    )
    .await?;
    pickup_failures::forget_idle(tx, row.recipient_id, now - rules.block_ms, now).await?;
    recipients::add_failure(tx, row.recipient_id).await?;
    let total = pickup_failures::total(tx, row.recipient_id).await?;
    // Read under the write lock: `row` may be older than another request's lock.
    let locked_at = recipients::locked_at(tx, row.recipient_id).await?;
    let already_locked = locked_at.is_some();
    let locks = !already_locked
        && total >= rules.recipient_threshold
        && recipients::lock(tx, row.recipient_id, now).await?;

    let mut detail = json!({
        "reason": reason,
        "client": client,
        "failures": failures,
        "recipient_failures": total,
    });
    if let Some(until) = blocked_until {
        detail["blocked_until"] = json!(format_rfc3339(until));
    }
    let event = ctx
        .event(action)
        .with_message(row.message_id)
        .with_recipient(row.recipient_id)
        .with_detail(detail);
    audit::record(tx, event).await?;
    if locks {
        let event = ctx
            .event(Action::Locked)
            .with_message(row.message_id)
            .with_recipient(row.recipient_id)
            .with_detail(json!({ "failures": total }));
        audit::record(tx, event).await?;
        return Ok(PickupError::Locked(lock_of(&app.config, now, now)));
    }
    if let Some(until) = blocked_until {
        return Ok(PickupError::Blocked {
            until: time_of(until),
        });
    }
    if let (Some(at), None) = (locked_at, row.locked_at) {
        // Locked by another client since this attempt began: that is what comes next.
        return Ok(PickupError::Locked(lock_of(&app.config, at, now)));
    }

    // The next thing this client meets; on a tie the graver one, which is what happens then.
    let mut remaining = rules.threshold - failures;
    let mut then = Limit::Blocked {
        minutes: rules.block_minutes,
    };
    if let Some(to_wait) = SLOW_DOWN_AFTER.checked_sub(failures).filter(|n| *n > 0)
        && to_wait < remaining
    {
        (remaining, then) = (to_wait, Limit::Wait);
    }
    if !already_locked {
        let to_lock = rules.recipient_threshold.saturating_sub(total);
        if to_lock <= remaining {
            (remaining, then) = (to_lock, Limit::Locked);
        }
    }
    let attempts = Attempts {
        code_left,
        remaining,
        then,
        wait_until: wait_ms(failures).map(|wait| time_of(now + wait)),
    };
    Ok(match code_left {
        Some(_) => PickupError::WrongCode(attempts),
        None => PickupError::WrongSecret(attempts),
    })
}

/// Forget this client's failures at the recipient, after it succeeded.
pub(super) async fn forget_client(
    tx: &mut SqliteConnection,
    recipient_id: RecipientId,
    ctx: &RequestCtx,
) -> Result<(), PickupError> {
    pickup_failures::clear(tx, recipient_id, &client_of(ctx)).await?;
    Ok(())
}

/// Who unlocks through [`unlock`] (the recipient does it with a code, in `verify_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockBy {
    /// The sender of the message (the API): only their own messages.
    Sender(Uuid),
    /// An admin (the command line): any message.
    Admin,
}

/// Lift one recipient's lock and clear its failures, audited `unlocked` in the caller's
/// write transaction.
pub(super) async fn lift(
    tx: &mut SqliteConnection,
    (message_id, recipient): (MessageId, &recipients::LockRow),
    by: &'static str,
    ctx: &RequestCtx,
) -> Result<(), PickupError> {
    recipients::unlock(tx, recipient.id).await?;
    let clients = pickup_failures::clear_all(tx, recipient.id).await?;
    let event = ctx
        .event(Action::Unlocked)
        .with_message(message_id)
        .with_recipient(recipient.id)
        .with_detail(json!({
            "address": recipient.address,
            "by": by,
            "was_locked": recipient.locked_at.is_some(),
            "failures": recipient.failed_attempts,
            "clients": clients,
        }));
    audit::record(tx, event).await?;
    Ok(())
}

/// Unlock the recipients of a message: the one at `address`, or all of them. Each one's lock
/// is lifted and every failure of every client forgotten, audited `unlocked` (actor: `ctx`).
/// [`UnlockBy::Sender`] sees only that sender's messages: anyone else's, like one that does
/// not exist or an address that is not among its recipients, is [`PickupError::NotFound`].
/// Returns the addresses unlocked.
pub async fn unlock(
    app: &AppState,
    by: UnlockBy,
    message_id: MessageId,
    address: Option<&str>,
    ctx: &RequestCtx,
) -> Result<Vec<String>, PickupError> {
    let (owner, name) = match by {
        UnlockBy::Sender(user) => (Some(user.to_string()), "sender"),
        UnlockBy::Admin => (None, "admin"),
    };
    let mut tx = app.store.begin_write().await?;
    let targets = recipients::lock_rows(&mut tx, message_id, owner.as_deref(), address).await?;
    if targets.is_empty() {
        return Err(PickupError::NotFound);
    }
    for recipient in &targets {
        lift(&mut tx, (message_id, recipient), name, ctx).await?;
    }
    tx.commit().await?;
    Ok(targets.into_iter().map(|r| r.address).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_the_third_failure_and_are_capped() {
        let waits: Vec<_> = (0..=12).map(wait_ms).collect();
        assert_eq!(waits[..3], [None, None, None]);
        assert_eq!(waits[3], Some(1000));
        assert_eq!(waits[4], Some(2000));
        assert_eq!(waits[9], Some(64_000));
        assert_eq!(wait_ms(12), Some(MAX_WAIT_SECONDS * 1000));
        assert_eq!(wait_ms(200), Some(MAX_WAIT_SECONDS * 1000));
    }
}
