//! Staff sign-in: passwords, the TOTP second factor with recovery codes, per-account lockout,
//! password change and the rules that end a staff session.
//!
//! The web layer (`crate::web::staff`) parses forms and keeps a [`StaffSession`] in the
//! session store; every decision is made here: whether a password or code is right, whether
//! an account is locked, whether a session is still valid, and what is audited.
//!
//! - Passwords are checked with Argon2id on [`AppState::password_limit`], off the runtime.
//!   An unknown email costs the same Argon2id work as a known one, and every refusal reads
//!   the same ([`SigninError::Refused`]), so the page does not tell whether an account exists.
//! - Failed sign-ins count per client IP (the `staff_signin_failure` gate of
//!   [`crate::throttle`], in memory) and per account (`staff_signin_failures`, in the
//!   database, so a restart does not reset them): after `staff_lockout_threshold` failures
//!   the account is locked for `staff_lockout_minutes`, and the lock lifts by itself.
//! - Failures are audited through the [`crate::throttle::RefusalLog`], so a flood adds a
//!   bounded number of rows per window.
//! - TOTP secrets are sealed under a key derived from the server key
//!   (`sealpost_crypto::totp_secret`); the newest accepted time step is stored, so a code
//!   cannot be used twice. Recovery codes are 80 random bits, stored as SHA-256 digests: with
//!   that much entropy a fast hash is enough.
//!
//! This module never logs or stores a password, TOTP secret in clear, or code.

mod totp;

use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::app::AppState;
use crate::audit::{self, Action, actor};
use crate::clock::{UnixMillis, now_ms};
use crate::messages::RequestCtx;
use crate::store::users::{self, User};
use crate::store::{StoreError, staff_auth};
use crate::throttle::{Disposition, Gate, Refused, RetryAfter};

pub use totp::{Enrolment, RECOVERY_CODES};

/// Shortest password a staff user may choose.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Longest password or code read from a form (Argon2 accepts far more; nobody types more).
const MAX_INPUT_LEN: usize = 1024;

/// What the session store keeps about a staff sign-in: ids, times and a CSRF token only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffSession {
    pub user_id: Uuid,
    /// `users.session_generation` at sign-in; an older one means "signed out everywhere".
    pub generation: i64,
    /// Password accepted, second factor still missing.
    pub pending_second_factor: bool,
    pub signed_in_at: UnixMillis,
    pub last_seen: UnixMillis,
    /// The token every staff form posts back (`csrf` field).
    pub csrf: String,
}

/// A valid staff session and its user, as a page needs them.
#[derive(Debug, Clone)]
pub struct Staff {
    pub user: User,
    pub session: StaffSession,
    pub must_change_password: bool,
    /// The user's role requires TOTP and none is confirmed yet.
    pub must_enrol: bool,
    pub has_totp: bool,
}

/// Why a sign-in step was refused.
#[derive(Debug, thiserror::Error)]
pub enum SigninError {
    /// Wrong email, password, code, disabled or temporarily locked account: one message, so
    /// the page does not tell which (or whether the account exists).
    #[error(
        "The email address, password or code is not right, or the account is locked for a \
         while after too many failed sign-ins. Check them and try again."
    )]
    Refused,
    /// This client made too many failed sign-ins; try again after the wait.
    #[error("Too many failed sign-ins from this network. Try again in {} seconds.", .0.seconds())]
    Throttled(RetryAfter),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(&'static str),
}

/// Why a session is no longer accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Ended {
    /// Idle longer than `session_idle_minutes`.
    Idle,
    /// Older than `staff_session_max_hours`.
    Absolute,
    /// Signed out everywhere, password changed, user disabled or deleted.
    Revoked,
}

/// The next step after a correct password.
#[derive(Debug)]
pub enum AfterPassword {
    /// The user has TOTP: ask for a code.
    SecondFactor(StaffSession),
    /// Signed in (perhaps with a password change or TOTP enrolment still to do).
    SignedIn(StaffSession),
}

fn new_session(user_id: Uuid, generation: i64, pending: bool) -> StaffSession {
    let now = now_ms();
    StaffSession {
        user_id,
        generation,
        pending_second_factor: pending,
        signed_in_at: now,
        last_seen: now,
        csrf: hex::encode(sealpost_crypto::random_bytes::<16>()),
    }
}

/// Check `password` against `phc` on the password semaphore, off the runtime.
async fn verify_password(app: &AppState, password: Zeroizing<String>, phc: String) -> bool {
    let Ok(_permit) = app.password_limit.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || sealpost_crypto::password::verify(&password, &phc))
        .await
        .unwrap_or(false)
}

/// A hash to check unknown emails against, so they cost the same as known ones.
async fn dummy_hash() -> String {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_init(|| async {
            let password = sealpost_crypto::password::generate();
            tokio::task::spawn_blocking(move || {
                sealpost_crypto::password::hash(&password).unwrap_or_default()
            })
            .await
            .unwrap_or_default()
        })
        .await
        .clone()
}

/// Whether the account is locked now.
fn locked(row: Option<staff_auth::Failures>, now: UnixMillis) -> bool {
    row.and_then(|r| r.locked_until)
        .is_some_and(|until| until > now)
}

/// Refuse a client whose failure budget ran out, before any work; the first few such
/// refusals of each window are audited as `throttled`, the rest counted.
async fn check_client(app: &AppState, ctx: &RequestCtx) -> Result<(), SigninError> {
    let Some(ip) = ctx.ip else {
        return Ok(());
    };
    let Err(wait) = app.throttle.failures_allowed(Gate::StaffSigninFailure, ip) else {
        return Ok(());
    };
    if app.throttle.refusals.note(Refused::Throttled, ctx.ip) == Disposition::Audit {
        let event = ctx
            .event(Action::Throttled)
            .with_detail(json!({ "gate": "staff_signin_failure" }));
        audit::append(&app.store, event).await?;
    }
    Err(SigninError::Throttled(wait))
}

/// Count one failed sign-in (per client, and per account when `user` is known) and audit it
/// through the refusal log. Returns the refusal to show.
async fn failed(
    app: &AppState,
    ctx: &RequestCtx,
    user: Option<&User>,
    reason: &'static str,
) -> Result<SigninError, SigninError> {
    let throttled = ctx
        .ip
        .map(|ip| app.throttle.failed(Gate::StaffSigninFailure, ip));
    let audit_it = app
        .throttle
        .refusals
        .note(Refused::StaffSigninFailed, ctx.ip)
        == Disposition::Audit;
    let mut tx = app.store.begin_write().await?;
    let mut locked_now = false;
    if let Some(user) = user {
        let now = now_ms();
        let window = i64::from(app.config.staff_lockout_minutes) * 60_000;
        let before = staff_auth::failures(&mut tx, user.id).await?;
        // Failures older than the lockout window are forgotten.
        let count = before
            .filter(|r| now - r.last_failed_at < window)
            .map_or(0, |r| r.failures)
            + 1;
        let lock = count >= i64::from(app.config.staff_lockout_threshold);
        let still_locked = before.and_then(|r| r.locked_until).filter(|&u| u > now);
        let locked_until = if lock {
            Some(still_locked.unwrap_or(now + window))
        } else {
            still_locked
        };
        locked_now = lock && still_locked.is_none();
        staff_auth::set_failures(
            &mut tx,
            user.id,
            staff_auth::Failures {
                failures: count,
                last_failed_at: now,
                locked_until,
            },
        )
        .await?;
    }
    if audit_it || locked_now {
        let mut detail = json!({ "reason": reason });
        if let Some(user) = user {
            detail["user_id"] = json!(user.id);
            if locked_now {
                detail["account_locked"] = json!(true);
            }
        }
        audit::record(
            &mut tx,
            ctx.event(Action::StaffLoginFailed).with_detail(detail),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(match throttled {
        Some(Err(wait)) => SigninError::Throttled(wait),
        _ => SigninError::Refused,
    })
}

fn bounded(text: &str) -> Result<(), SigninError> {
    if text.is_empty() || text.len() > MAX_INPUT_LEN {
        return Err(SigninError::Refused);
    }
    Ok(())
}

/// The first step: `email` and `password`.
pub async fn sign_in_password(
    app: &AppState,
    email: &str,
    password: Zeroizing<String>,
    ctx: &RequestCtx,
) -> Result<AfterPassword, SigninError> {
    check_client(app, ctx).await?;
    if bounded(email).is_err() || bounded(&password).is_err() {
        return Err(failed(app, ctx, None, "malformed").await?);
    }
    let found = {
        let mut conn = app.store.acquire().await?;
        match users::find_by_email(&mut conn, email.trim()).await? {
            Some(user) => {
                let fails = staff_auth::failures(&mut conn, user.id).await?;
                Some((user, fails))
            }
            None => None,
        }
    };
    let Some((user, fails)) = found else {
        verify_password(app, password, dummy_hash().await).await;
        return Err(failed(app, ctx, None, "unknown_email").await?);
    };
    if locked(fails, now_ms()) {
        // No Argon2id work for a locked account, and the failure still counts.
        return Err(failed(app, ctx, Some(&user), "account_locked").await?);
    }
    if !verify_password(app, password, user.password_hash.clone()).await {
        return Err(failed(app, ctx, Some(&user), "wrong_password").await?);
    }
    if user.disabled {
        return Err(failed(app, ctx, Some(&user), "disabled").await?);
    }
    let mut conn = app.store.acquire().await?;
    let flags = staff_auth::flags(&mut conn, user.id)
        .await?
        .ok_or(SigninError::Refused)?;
    let totp = staff_auth::totp(&mut conn, user.id).await?;
    drop(conn);
    if totp.is_some_and(|t| t.confirmed_at.is_some()) {
        return Ok(AfterPassword::SecondFactor(new_session(
            user.id,
            flags.session_generation,
            true,
        )));
    }
    let session = new_session(user.id, flags.session_generation, false);
    signed_in(app, ctx, &user, "password").await?;
    Ok(AfterPassword::SignedIn(session))
}

/// A complete sign-in: forget the account's failures and audit it.
async fn signed_in(
    app: &AppState,
    ctx: &RequestCtx,
    user: &User,
    factors: &'static str,
) -> Result<(), SigninError> {
    let mut tx = app.store.begin_write().await?;
    staff_auth::clear_failures(&mut tx, user.id).await?;
    audit::record(
        &mut tx,
        ctx.event_as(actor::user(user.id), Action::StaffLogin)
            .with_detail(json!({ "user_id": user.id, "factors": factors })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The second step: a TOTP code (6 digits) or a recovery code, for a session whose password
/// was accepted. Returns the signed-in session.
pub async fn sign_in_second_factor(
    app: &AppState,
    pending: &StaffSession,
    code: &str,
    ctx: &RequestCtx,
) -> Result<StaffSession, SigninError> {
    check_client(app, ctx).await?;
    let (user, fails, row) = {
        let mut conn = app.store.acquire().await?;
        let user = users::find_by_id(&mut conn, pending.user_id)
            .await?
            .ok_or(SigninError::Refused)?;
        let fails = staff_auth::failures(&mut conn, user.id).await?;
        let row = staff_auth::totp(&mut conn, user.id).await?;
        (user, fails, row)
    };
    if locked(fails, now_ms()) {
        return Err(failed(app, ctx, Some(&user), "account_locked").await?);
    }
    let Some(row) = row.filter(|r| r.confirmed_at.is_some()) else {
        return Err(SigninError::Refused);
    };
    if bounded(code).is_err() {
        return Err(failed(app, ctx, Some(&user), "malformed_code").await?);
    }
    let code = code.trim();
    let factors = if totp::looks_like_totp(code) {
        let step = totp::check(app, user.id, &row.sealed_secret, code)?;
        let Some(step) = step else {
            return Err(failed(app, ctx, Some(&user), "wrong_totp").await?);
        };
        let mut tx = app.store.begin_write().await?;
        let fresh = staff_auth::accept_step(&mut tx, user.id, step, now_ms()).await?;
        tx.commit().await?;
        if !fresh {
            return Err(failed(app, ctx, Some(&user), "totp_replayed").await?);
        }
        "password+totp"
    } else {
        let hash = totp::recovery_hash(code);
        let mut tx = app.store.begin_write().await?;
        let used = staff_auth::use_recovery_code(&mut tx, user.id, &hash, now_ms()).await?;
        tx.commit().await?;
        if !used {
            return Err(failed(app, ctx, Some(&user), "wrong_recovery_code").await?);
        }
        "password+recovery_code"
    };
    signed_in(app, ctx, &user, factors).await?;
    let mut session = pending.clone();
    session.pending_second_factor = false;
    Ok(session)
}

/// Whether `session` is still valid now: not idle too long, not too old, not revoked, its
/// user still enabled. Returns the staff user with what they must still do.
///
/// An ended session is audited (`staff_logout` with the reason); the caller deletes it.
pub async fn check_session(
    app: &AppState,
    session: &StaffSession,
    ctx: &RequestCtx,
) -> Result<Result<Staff, Ended>, StoreError> {
    let now = now_ms();
    let idle = i64::from(app.config.session_idle_minutes) * 60_000;
    let max = i64::from(app.config.staff_session_max_hours) * 3_600_000;
    let mut conn = app.store.acquire().await?;
    let user = users::find_by_id(&mut conn, session.user_id).await?;
    let flags = staff_auth::flags(&mut conn, session.user_id).await?;
    let ended = match (&user, flags) {
        (Some(user), Some(flags))
            if !user.disabled && flags.session_generation == session.generation =>
        {
            if now - session.last_seen > idle {
                Some(Ended::Idle)
            } else if now - session.signed_in_at > max {
                Some(Ended::Absolute)
            } else {
                None
            }
        }
        _ => Some(Ended::Revoked),
    };
    if let Some(reason) = ended {
        drop(conn);
        if !session.pending_second_factor {
            let reason: &'static str = reason.into();
            audit::append(
                &app.store,
                ctx.event_as(actor::user(session.user_id), Action::StaffLogout)
                    .with_detail(json!({ "user_id": session.user_id, "reason": reason })),
            )
            .await?;
        }
        return Ok(Err(reason));
    }
    let (Some(user), Some(flags)) = (user, flags) else {
        return Ok(Err(Ended::Revoked));
    };
    let totp = staff_auth::totp(&mut conn, user.id).await?;
    let has_totp = totp.is_some_and(|t| t.confirmed_at.is_some());
    let must_enrol = !has_totp && app.config.staff_totp_required_roles.contains(&user.role);
    let mut session = session.clone();
    session.last_seen = now;
    Ok(Ok(Staff {
        user,
        session,
        must_change_password: flags.must_change_password,
        must_enrol,
        has_totp,
    }))
}

/// Sign out: audit it (the caller deletes the session). With `everywhere`, every other
/// session of the user ends too (the session generation moves on).
pub async fn sign_out(
    app: &AppState,
    staff: &Staff,
    everywhere: bool,
    ctx: &RequestCtx,
) -> Result<(), StoreError> {
    let mut tx = app.store.begin_write().await?;
    if everywhere {
        staff_auth::bump_generation(&mut tx, staff.user.id).await?;
    }
    let reason = if everywhere {
        "everywhere"
    } else {
        "signed_out"
    };
    audit::record(
        &mut tx,
        ctx.event_as(actor::user(staff.user.id), Action::StaffLogout)
            .with_detail(json!({ "user_id": staff.user.id, "reason": reason })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Why a password change was refused.
#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("The current password is not right.")]
    WrongCurrent,
    #[error("The new password must be at least {MIN_PASSWORD_LEN} characters long.")]
    TooShort,
    #[error("The new password is too long.")]
    TooLong,
    #[error("The two new passwords are not the same.")]
    Mismatch,
    #[error("The new password must differ from the current one.")]
    Unchanged,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(&'static str),
}

/// Change the password of a signed-in user: checks the current one, the length and the
/// confirmation; clears `must_change_password`; ends the user's other sessions. Returns the
/// new session generation for the caller's session.
pub async fn change_password(
    app: &AppState,
    staff: &Staff,
    current: Zeroizing<String>,
    new: Zeroizing<String>,
    confirm: Zeroizing<String>,
    ctx: &RequestCtx,
) -> Result<i64, PasswordChangeError> {
    if new.chars().count() < MIN_PASSWORD_LEN {
        return Err(PasswordChangeError::TooShort);
    }
    if new.len() > MAX_INPUT_LEN || current.len() > MAX_INPUT_LEN {
        return Err(PasswordChangeError::TooLong);
    }
    if *new != *confirm {
        return Err(PasswordChangeError::Mismatch);
    }
    if *new == *current {
        return Err(PasswordChangeError::Unchanged);
    }
    if !verify_password(app, current, staff.user.password_hash.clone()).await {
        return Err(PasswordChangeError::WrongCurrent);
    }
    let hash = {
        let Ok(_permit) = app.password_limit.acquire().await else {
            return Err(PasswordChangeError::Internal("password check unavailable"));
        };
        crate::app::hash_password(new)
            .await
            .map_err(|_| PasswordChangeError::Internal("password hashing failed"))?
    };
    let mut tx = app.store.begin_write().await?;
    users::set_password_hash(&mut tx, staff.user.id, &hash).await?;
    staff_auth::set_must_change_password(&mut tx, staff.user.id, false).await?;
    let generation = staff_auth::bump_generation(&mut tx, staff.user.id).await?;
    audit::record(
        &mut tx,
        ctx.event_as(actor::user(staff.user.id), Action::PasswordChanged)
            .with_detail(
                json!({ "user_id": staff.user.id, "credential": "password", "by": "self" }),
            ),
    )
    .await?;
    tx.commit().await?;
    Ok(generation)
}

/// TOTP enrolment for a user without a confirmed TOTP: the pending secret as text,
/// `otpauth://` URI and QR code. With `start`, a pending secret is made when there is none
/// (a POST); without it nothing is written (a GET), and `not_started` says there is none yet.
pub async fn enrolment(app: &AppState, user: &User, start: bool) -> Result<Enrolment, SigninError> {
    totp::enrolment(app, user, start).await
}

/// Confirm enrolment with a first code: returns the ten recovery codes, to be shown once.
pub async fn confirm_enrolment(
    app: &AppState,
    user: &User,
    code: &str,
    ctx: &RequestCtx,
) -> Result<Option<Vec<String>>, SigninError> {
    totp::confirm(app, user, code, ctx).await
}
