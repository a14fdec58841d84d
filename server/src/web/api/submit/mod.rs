//! `POST /api/v1/messages`: a JSON body ([`json`]), or `multipart/form-data` ([`multipart`])
//! whose file fields stream straight into the encryptor (never buffered whole).
//!
//! Both formats are read into one [`Envelope`] and held to the domain's submission policy
//! ([`Limits`]) before a message is started, so a bad request costs nothing. Once a
//! [`Draft`] exists, any failure aborts it: nothing of a refused submission is kept.

mod json;
mod multipart;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sealpost_crypto::Passphrase;
use serde::Serialize;
use utoipa::ToSchema;
use zeroize::Zeroize;

pub use self::json::{AttachmentUpload, SubmitRequest};
use super::{ApiJson, ApiUser};
use crate::app::AppState;
use crate::messages::{
    Draft, EmailAddress, Limits, NewMessage, RecipientStatus, Refusal, Submitted,
};
use crate::store::users::Role;
use crate::web::AppError;

/// The answer to a successful submission.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmitResponse {
    /// Message id, for `GET`/`DELETE /api/v1/messages/{id}`.
    pub id: String,
    pub recipients: Vec<RecipientResult>,
}

/// What happened for one recipient.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientResult {
    pub address: String,
    /// `notified`: the notification email was accepted by the outbound relay.
    pub status: String,
}

/// The parts of a submission every body format shares, once read.
#[derive(Default)]
pub(super) struct Envelope {
    pub(super) to: Vec<String>,
    pub(super) subject: Option<String>,
    pub(super) text: Option<String>,
    pub(super) html: Option<String>,
    pub(super) passphrase: Option<String>,
    pub(super) expires_in_days: Option<u32>,
}

/// Never prints content or the passphrase.
impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("to", &self.to)
            .field("expires_in_days", &self.expires_in_days)
            .finish_non_exhaustive()
    }
}

impl Drop for Envelope {
    fn drop(&mut self) {
        if let Some(p) = &mut self.passphrase {
            p.zeroize();
        }
    }
}

/// Submit a message. Returns once it is durably stored and every recipient's notification
/// was accepted by the outbound relay; on any error nothing is kept.
#[utoipa::path(
    post,
    path = "/api/v1/messages",
    tag = "messages",
    request_body(
        description = "The message, as JSON (attachments in base64) or as multipart/form-data \
                       (fields to (repeatable or comma-separated), subject, text, html, \
                       passphrase, expires_in_days, and file fields named attachment)",
        content(
            (SubmitRequest = "application/json"),
            (crate::web::openapi::MultipartDoc = "multipart/form-data")
        )
    ),
    responses(
        (status = 201, description = "Stored and notified", body = SubmitResponse,
         headers(("Location" = String, description = "URL of the message's delivery state"))),
        (status = 400, description = "Malformed JSON (`invalid_json`) or multipart body", body = crate::web::openapi::ErrorDoc),
        (status = 401, description = "Missing, unknown or revoked token", body = crate::web::openapi::ErrorDoc),
        (status = 413, description = "Larger than the server's message limit", body = crate::web::openapi::ErrorDoc),
        (status = 415, description = "Neither JSON nor multipart/form-data", body = crate::web::openapi::ErrorDoc),
        (status = 422, description = "A missing field, an invalid address, too many recipients or attachments, an expiry over the maximum", body = crate::web::openapi::ErrorDoc),
        (status = 503, description = "Temporarily unavailable (e.g. the outbound relay); nothing was kept, retry later", body = crate::web::openapi::ErrorDoc),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn submit(
    State(app): State<AppState>,
    caller: ApiUser,
    request: Request,
) -> Result<Response, AppError> {
    if caller.user.role == Role::Auditor {
        return Err(AppError::Forbidden);
    }
    let ctype = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let submitted = if ctype.starts_with("multipart/form-data") {
        let multipart = Multipart::from_request(request, &app)
            .await
            .map_err(|e| AppError::BadRequest(e.body_text()))?;
        multipart::submit(&app, multipart, &caller).await?
    } else {
        let ApiJson(body) = ApiJson::<SubmitRequest>::from_request(request, &app).await?;
        json::submit(&app, body, &caller).await?
    };
    let id = submitted.id.to_string();
    let location = format!("{}/api/v1/messages/{id}", app.config.base_url);
    let body = SubmitResponse {
        id,
        recipients: submitted
            .recipients
            .into_iter()
            .map(|RecipientStatus { address, status }| RecipientResult {
                address,
                status: status.to_owned(),
            })
            .collect(),
    };
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// The checks every submission passes before a draft is started.
pub(super) fn check_envelope(limits: &Limits, e: &Envelope) -> Result<Vec<EmailAddress>, Refusal> {
    let recipients = limits.recipients(&e.to)?;
    if e.subject.is_none() {
        return Err(Refusal::missing(
            "subject",
            "the subject line (it may be empty)",
        ));
    }
    if e.text.is_none() && e.html.is_none() {
        return Err(Refusal::missing("text", "a plain-text body (or `html`)"));
    }
    limits.expiry_days(e.expires_in_days)?;
    Ok(recipients)
}

/// Add the bodies and commit. Aborts the draft on any error before commit (commit cleans up
/// after itself).
pub(super) async fn finish(
    mut draft: Draft,
    mut envelope: Envelope,
    recipients: Vec<EmailAddress>,
    caller: &ApiUser,
) -> Result<Submitted, AppError> {
    let bodies = draft
        .add_bodies(envelope.text.as_deref(), envelope.html.as_deref())
        .await;
    if let Err(e) = bodies {
        draft.abort().await;
        return Err(e.into());
    }
    let message = NewMessage {
        recipients,
        subject: envelope.subject.take().unwrap_or_default(),
        passphrase: envelope
            .passphrase
            .take()
            .filter(|p| !p.is_empty())
            .map(Passphrase::new),
        expires_in_days: envelope.expires_in_days,
    };
    Ok(draft.commit(message, &caller.ctx).await?)
}
