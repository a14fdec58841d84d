//! Recipient pickup pages: `/p/{id}` and the forms it leads to.
//!
//! The flow: the landing page (GET, changes nothing: link scanners fetch it) → "email me a
//! code" → enter the code (success cycles the session id and remembers the verified recipient
//! in the session) → post the link secret (read from the URL fragment by `static/pickup.js`,
//! or typed in) and, if the sender set one, the passphrase → the message. Attachment downloads
//! are form posts carrying the secret again, so it never appears in a URL.
//!
//! This module never keeps a link secret, passphrase or code beyond the request: they arrive
//! in a form body, are handed to [`crate::messages`], and (for the message page's download
//! forms) written back into a `no-store` page. The session holds only the verified recipient
//! id. Every decision (lockout, counting attempts, auditing) is the domain's.

mod download;
mod texts;
mod views;

use crate::ids::{PickupId, RecipientId};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use sealpost_crypto::{LinkSecret, Passphrase};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;
use zeroize::{Zeroize, ZeroizeOnDrop};

use self::views::{
    AttachmentRow, CodePage, LandingPage, LockedPage, MessagePage, Notice, OpenPage, format_size,
    format_time, sanitize_html,
};
use super::page::{Layout, PageForm, render};
use super::{AppError, AppState};
use crate::audit::{self, Action, actor};
use crate::messages::{self, Landing, Lock, PickupError, RequestCtx};
use crate::throttle::{Disposition, Gate, Refused};

/// The pickup routes. Every form post first spends one unit of the client's
/// `pickup_posts_per_minute` budget (`throttled`); the landing page (a GET) does not.
pub fn router(state: &AppState) -> Router<AppState> {
    let posts = Router::new()
        .route("/p/{id}/code", post(request_code))
        .route("/p/{id}/verify", post(verify))
        .route("/p/{id}/open", post(open))
        .route("/p/{id}/attachments/{part_no}", post(download::download))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            throttled,
        ));
    Router::new()
        .route("/p/{id}", get(landing))
        .route("/p/{id}/code", get(back_to_start))
        .route("/p/{id}/verify", get(back_to_start))
        .route("/p/{id}/open", get(back_to_start))
        .merge(posts)
}

/// Refuse a client over its pickup budget with `429` before any work; the first few such
/// refusals of each window are audited as `throttled`, the rest counted (`crate::throttle`).
async fn throttled(
    State(app): State<AppState>,
    ctx: RequestCtx,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<Response, AppError> {
    let Some(ip) = ctx.ip else {
        return Ok(next.run(request).await);
    };
    let Err(wait) = app.throttle.check(Gate::PickupPost, ip) else {
        return Ok(next.run(request).await);
    };
    if app.throttle.refusals.note(Refused::Throttled, ctx.ip) == Disposition::Audit {
        let path: String = request.uri().path().chars().take(256).collect();
        let event = ctx
            .event(Action::Throttled)
            .with_detail(json!({ "gate": "pickup_post", "path": path }));
        audit::append(&app.store, event).await?;
    }
    Err(AppError::Throttled(wait))
}

/// The session key under which the recipient verified for pickup `id` is kept.
fn verified_key(id: &PickupId) -> String {
    format!("verified:{id}")
}

/// The pickup id in the URL; text that cannot be one names a message that does not exist.
fn pickup_id(text: &str) -> Result<PickupId, AppError> {
    text.parse().map_err(|_| PickupError::NotFound.into())
}

fn session_error(e: tower_sessions::session::Error) -> AppError {
    AppError::internal("session store", e)
}

/// The recipient this browser session has verified for pickup `id`, if any.
async fn verified_recipient(
    session: &Session,
    id: &PickupId,
) -> Result<Option<RecipientId>, AppError> {
    session
        .get::<RecipientId>(&verified_key(id))
        .await
        .map_err(session_error)
}

/// A reload or bookmark of a form target goes back to the start instead of a 405.
async fn back_to_start(Path(id): Path<String>) -> Result<Redirect, AppError> {
    let id = pickup_id(&id)?;
    Ok(Redirect::to(&format!("/p/{id}")))
}

/// The page of a recipient locked for every client (`423`): when and how it can be unlocked.
fn locked_page(id: &PickupId, info: &Landing, lock: Lock) -> Response {
    render(
        StatusCode::LOCKED,
        &LockedPage {
            layout: Layout::pickup(id.as_str()),
            pickup_id: id.as_str(),
            sender: &info.sender_address,
            masked_recipient: &info.masked_recipient,
            expires: format_time(info.expires_at),
            code_from: messages::clock_text(lock.code_from),
            code_now: lock.code_now,
        },
    )
}

/// A domain refusal as a response: a locked recipient gets its own page, everything else
/// goes to [`AppError`].
async fn refused(app: &AppState, id: &PickupId, err: PickupError) -> Result<Response, AppError> {
    let PickupError::Locked(lock) = err else {
        return Err(err.into());
    };
    let info = messages::landing(app, id).await?;
    Ok(locked_page(id, &info, lock))
}

/// `response` with `Retry-After` for a refusal that says when to come back.
fn retry_after(mut response: Response, err: &PickupError) -> Response {
    if let Some(wait) = err.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait.seconds()));
    }
    response
}

/// `GET /p/{id}`: who sent it, to whom, until when, and the next step. Reads only; starts no
/// session.
async fn landing(
    State(app): State<AppState>,
    Path(id): Path<String>,
    session: Session,
) -> Result<Response, AppError> {
    let id = pickup_id(&id)?;
    let info = messages::landing(&app, &id).await?;
    if let Some(lock) = info.lock {
        return Ok(locked_page(&id, &info, lock));
    }
    let verified = verified_recipient(&session, &id).await?.is_some();
    Ok(render(
        StatusCode::OK,
        &LandingPage {
            layout: Layout::pickup(id.as_str()),
            pickup_id: id.as_str(),
            sender: &info.sender_address,
            masked_recipient: &info.masked_recipient,
            expires: format_time(info.expires_at),
            passphrase_required: info.passphrase_required,
            show_open_form: info.passphrase_required || verified,
            notice: None,
        },
    ))
}

/// `POST /p/{id}/code`: email a one-time code, then ask for it.
async fn request_code(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ctx: RequestCtx,
) -> Result<Response, AppError> {
    let id = pickup_id(&id)?;
    let info = messages::landing(&app, &id).await?;
    let sent = match messages::request_code(&app, &id, &ctx).await {
        Ok(sent) => sent,
        Err(e) => return refused(&app, &id, e).await,
    };
    Ok(render(
        StatusCode::OK,
        &CodePage {
            layout: Layout::pickup(id.as_str()),
            pickup_id: id.as_str(),
            masked_recipient: &info.masked_recipient,
            valid_minutes: Some(sent.valid_minutes),
            notice: info.lock.map(|_| Notice {
                kind: "warn",
                text: "When you enter the code, the message will be unlocked.".to_owned(),
            }),
        },
    ))
}

#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

/// `POST /p/{id}/verify`: check the code; on success start a fresh session for the recipient
/// and show the open form.
async fn verify(
    State(app): State<AppState>,
    Path(id): Path<String>,
    session: Session,
    ctx: RequestCtx,
    PageForm(form): PageForm<CodeForm>,
) -> Result<Response, AppError> {
    let id = pickup_id(&id)?;
    let info = messages::landing(&app, &id).await?;
    let code_page = |status, notice| {
        render(
            status,
            &CodePage {
                layout: Layout::pickup(id.as_str()),
                pickup_id: id.as_str(),
                masked_recipient: &info.masked_recipient,
                valid_minutes: None,
                notice,
            },
        )
    };
    if form.code.trim().is_empty() {
        return Ok(code_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            Notice::error("Please enter the code from the email we sent you."),
        ));
    }
    match messages::verify_code(&app, &id, &form.code, &ctx).await {
        Ok(verified) => {
            // A new id on privilege change: a session id planted before verification is useless.
            session.cycle_id().await.map_err(session_error)?;
            session
                .insert(&verified_key(&id), verified.recipient_id)
                .await
                .map_err(session_error)?;
            let text = if verified.unlocked {
                "Thank you: your email address is confirmed and the message is unlocked."
            } else {
                "Thank you: your email address is confirmed."
            };
            Ok(render(
                StatusCode::OK,
                &OpenPage {
                    layout: Layout::pickup(id.as_str()),
                    pickup_id: id.as_str(),
                    passphrase_required: info.passphrase_required,
                    notice: Some(Notice {
                        kind: "ok",
                        text: text.to_owned(),
                    }),
                },
            ))
        }
        Err(PickupError::WrongCode(attempts)) => Ok(code_page(
            StatusCode::FORBIDDEN,
            Notice::error(format!(
                "That code is not right. {}",
                texts::after_wrong_entry(&attempts)
            )),
        )),
        Err(e @ PickupError::SlowDown { until }) => Ok(retry_after(
            code_page(
                StatusCode::TOO_MANY_REQUESTS,
                Notice::error(texts::too_soon(until)),
            ),
            &e,
        )),
        Err(e) => refused(&app, &id, e).await,
    }
}

/// The open and download forms: the link secret and, if the sender set one, the passphrase.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct SecretForm {
    #[serde(default)]
    k: String,
    #[serde(default)]
    passphrase: String,
}

impl SecretForm {
    /// The link secret, accepting the bare 22 characters or a pasted whole link (`…#k=…`).
    fn secret(&self) -> Option<LinkSecret> {
        let raw = self.k.trim();
        let candidate = raw.rfind("k=").map_or(raw, |i| &raw[i + 2..]);
        let candidate = candidate.split('&').next().unwrap_or(candidate).trim();
        LinkSecret::parse(candidate).ok()
    }

    fn passphrase(&self) -> Option<Passphrase> {
        (!self.passphrase.is_empty()).then(|| Passphrase::new(self.passphrase.clone()))
    }
}

/// The audit context, naming the recipient once the session has verified them.
fn with_actor(mut ctx: RequestCtx, verified: Option<RecipientId>) -> RequestCtx {
    if let Some(recipient) = verified {
        ctx.actor = actor::recipient(recipient);
    }
    ctx
}

/// `POST /p/{id}/open`: decrypt and show the message.
async fn open(
    State(app): State<AppState>,
    Path(id): Path<String>,
    session: Session,
    ctx: RequestCtx,
    PageForm(form): PageForm<SecretForm>,
) -> Result<Response, AppError> {
    let id = pickup_id(&id)?;
    let verified = verified_recipient(&session, &id).await?;
    let ctx = with_actor(ctx, verified);
    let Some(secret) = form.secret() else {
        return open_form_again(
            &app,
            &id,
            StatusCode::UNPROCESSABLE_ENTITY,
            "That access code is not complete. It is the 22 letters and digits after #k= at \
             the end of the link in your notification email.",
        )
        .await;
    };
    let opened = match messages::open(&app, &id, &secret, form.passphrase(), verified, &ctx).await {
        Ok(opened) => opened,
        Err(PickupError::WrongSecret(attempts)) => {
            let text = format!(
                "The access code or passphrase is not right. {}",
                texts::after_wrong_entry(&attempts)
            );
            return open_form_again(&app, &id, StatusCode::FORBIDDEN, &text).await;
        }
        Err(e @ PickupError::SlowDown { until }) => {
            let page = open_form_again(
                &app,
                &id,
                StatusCode::TOO_MANY_REQUESTS,
                &texts::too_soon(until),
            )
            .await?;
            return Ok(retry_after(page, &e));
        }
        Err(PickupError::PassphraseRequired) => {
            return open_form_again(
                &app,
                &id,
                StatusCode::BAD_REQUEST,
                "Please enter the passphrase the sender gave you.",
            )
            .await;
        }
        Err(PickupError::NotVerified) => {
            let info = messages::landing(&app, &id).await?;
            return Ok(render(
                StatusCode::UNAUTHORIZED,
                &LandingPage {
                    layout: Layout::pickup(id.as_str()),
                    pickup_id: id.as_str(),
                    sender: &info.sender_address,
                    masked_recipient: &info.masked_recipient,
                    expires: format_time(info.expires_at),
                    passphrase_required: info.passphrase_required,
                    show_open_form: false,
                    notice: Notice::error(
                        "Please confirm your email address first (your session may have \
                         ended after some time without activity).",
                    ),
                },
            ));
        }
        Err(e) => return refused(&app, &id, e).await,
    };
    let k = secret.encode();
    let sender = match &opened.sender_name {
        Some(name) if !name.trim().is_empty() => format!("{name} <{}>", opened.sender_address),
        _ => opened.sender_address.clone(),
    };
    let page = MessagePage {
        layout: Layout::pickup(id.as_str()),
        pickup_id: id.as_str(),
        subject: &opened.subject,
        sender,
        sent: format_time(opened.sent_at),
        expires: format_time(opened.expires_at),
        text: opened.text.as_deref(),
        html: opened.html.as_deref().map(sanitize_html),
        attachments: opened
            .attachments
            .iter()
            .map(|a| AttachmentRow {
                part_no: a.part_no,
                filename: a.filename.clone(),
                size: format_size(a.size),
            })
            .collect(),
        k: k.as_str(),
        passphrase: (!form.passphrase.is_empty()).then_some(form.passphrase.as_str()),
    };
    Ok(render(StatusCode::OK, &page))
}

/// The open form again, with `text` above it.
async fn open_form_again(
    app: &AppState,
    id: &PickupId,
    status: StatusCode,
    text: &str,
) -> Result<Response, AppError> {
    let info = messages::landing(app, id).await?;
    Ok(render(
        status,
        &OpenPage {
            layout: Layout::pickup(id.as_str()),
            pickup_id: id.as_str(),
            passphrase_required: info.passphrase_required,
            notice: Notice::error(text),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_from_pasted_link() {
        let secret = LinkSecret::generate();
        let text = secret.encode();
        for typed in [
            text.to_string(),
            format!("  {}  ", text.as_str()),
            format!("https://x.example/p/abc#k={}", text.as_str()),
        ] {
            let form = SecretForm {
                k: typed,
                passphrase: String::new(),
            };
            assert!(form.secret().is_some_and(|s| s == secret));
        }
        let form = SecretForm {
            k: "short".to_owned(),
            passphrase: String::new(),
        };
        assert!(form.secret().is_none());
    }
}
