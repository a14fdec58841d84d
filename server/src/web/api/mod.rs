//! The JSON API, `/api/v1`: submit a message, see its delivery state, revoke it, unlock its
//! recipients.
//!
//! Every route needs a bearer token ([`auth::ApiUser`]). Errors are JSON
//! `{"error": "<code>", "message": "<text>"}` (see [`crate::web::error`]); the OpenAPI
//! description at `/api/openapi.json` is generated from the annotations here.

pub mod auth;
pub(crate) mod submit;

use crate::ids::MessageId;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, OptionalFromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

pub use self::auth::ApiUser;
pub use self::submit::{AttachmentUpload, RecipientResult, SubmitRequest, SubmitResponse};
use super::{AppError, AppState};
use crate::config::Config;
use crate::messages::{self, EmailAddress, PickupError, SenderView, UnlockBy};

/// Room for multipart boundaries and part headers, and JSON punctuation, beyond the message.
const ENVELOPE_SLACK: u64 = 1024 * 1024;

/// The largest request body `POST /api/v1/messages` reads: the message limit with base64's
/// 4/3 overhead (JSON carries attachments in base64) plus slack. Multipart bodies are held to
/// the exact message limit as they stream (by the domain's `SubmitError::TooLarge`).
pub fn body_limit(config: &Config) -> usize {
    let limit = config
        .max_message_bytes
        .saturating_mul(4)
        .div_ceil(3)
        .saturating_add(ENVELOPE_SLACK);
    usize::try_from(limit).unwrap_or(usize::MAX)
}

/// The `/api/v1` routes.
pub fn router(config: &Config) -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/messages",
            post(submit::submit).layer(DefaultBodyLimit::max(body_limit(config))),
        )
        .route(
            "/api/v1/messages/{id}",
            get(get_message).delete(revoke_message),
        )
        .route("/api/v1/messages/{id}/unlock", post(unlock_message))
}

/// A JSON body whose rejections are [`AppError`]s: malformed JSON is 400 `invalid_json`, a
/// wrong field type or an unknown field 422, too large 413, a missing content type 415.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match <axum::Json<T> as FromRequest<S>>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

/// An optional JSON body: an empty body is `None`; anything else must be JSON, with the
/// rejections of [`ApiJson`].
impl<S, T> OptionalFromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let essence = v.trim().to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            });
        let bytes = <Bytes as FromRequest<S>>::from_request(req, state)
            .await
            .map_err(|e| AppError::BadRequest(e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        if !is_json {
            return Err(AppError::UnsupportedMediaType(
                "expected Content-Type: application/json".to_owned(),
            ));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Some(Self(value))),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> AppError {
    match rejection {
        JsonRejection::JsonSyntaxError(_) => AppError::InvalidJson(rejection.body_text()),
        JsonRejection::JsonDataError(_) => AppError::JsonData(rejection.body_text()),
        JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType(
            "expected Content-Type: application/json or multipart/form-data".to_owned(),
        ),
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            AppError::PayloadTooLarge("the request body is too large".to_owned())
        }
        _ => AppError::BadRequest(rejection.body_text()),
    }
}

/// A message id in a path; anything that is not a UUID names no message.
fn message_id(text: &str) -> Result<MessageId, AppError> {
    text.parse()
        .map_err(|_| AppError::Pickup(PickupError::NotFound))
}

/// Delivery state of one of the caller's messages.
#[utoipa::path(
    get,
    path = "/api/v1/messages/{id}",
    tag = "messages",
    params(("id" = String, Path, description = "Message id returned by POST /api/v1/messages")),
    responses(
        (status = 200, description = "The message's delivery state", body = crate::web::openapi::SenderViewDoc),
        (status = 401, description = "Missing, unknown or revoked token", body = crate::web::openapi::ErrorDoc),
        (status = 404, description = "No such message among the caller's", body = crate::web::openapi::ErrorDoc),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_message(
    State(app): State<AppState>,
    caller: ApiUser,
    Path(id): Path<String>,
) -> Result<axum::Json<SenderView>, AppError> {
    let id = message_id(&id)?;
    let view = messages::sender_view(&app, caller.user.id, id).await?;
    Ok(axum::Json(view))
}

/// Revoke one of the caller's messages: its keys and ciphertext are deleted.
#[utoipa::path(
    delete,
    path = "/api/v1/messages/{id}",
    tag = "messages",
    params(("id" = String, Path, description = "Message id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing, unknown or revoked token", body = crate::web::openapi::ErrorDoc),
        (status = 404, description = "No such message among the caller's", body = crate::web::openapi::ErrorDoc),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn revoke_message(
    State(app): State<AppState>,
    caller: ApiUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = message_id(&id)?;
    messages::revoke(&app, caller.user.id, id, &caller.ctx).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Which recipients to unlock.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlockRequest {
    /// The address of the recipient to unlock, as the message was sent to it (case does not
    /// matter). Without it, every recipient of the message is unlocked.
    #[schema(example = "patient@example.org")]
    pub recipient: Option<String>,
}

/// Unlock the recipients of one of the caller's messages: each one's lock (after too many
/// failed attempts from all clients together) is lifted, and every client's failed attempts
/// are forgotten, so blocked clients may try again at once. Audited `unlocked`.
#[utoipa::path(
    post,
    path = "/api/v1/messages/{id}/unlock",
    tag = "messages",
    params(("id" = String, Path, description = "Message id")),
    request_body(
        content = Option<UnlockRequest>,
        description = "Optional: `{\"recipient\": \"<address>\"}` to unlock one recipient; \
                       without a body, every recipient of the message is unlocked.",
        content_type = "application/json"
    ),
    responses(
        (status = 204, description = "Unlocked (also when it was not locked)"),
        (status = 401, description = "Missing, unknown or revoked token", body = crate::web::openapi::ErrorDoc),
        (status = 404, description = "No such message among the caller's, or no such recipient of it", body = crate::web::openapi::ErrorDoc),
        (status = 422, description = "`recipient` is not an email address, or an unknown field", body = crate::web::openapi::ErrorDoc),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn unlock_message(
    State(app): State<AppState>,
    caller: ApiUser,
    Path(id): Path<String>,
    body: Option<ApiJson<UnlockRequest>>,
) -> Result<Response, AppError> {
    let id = message_id(&id)?;
    let address = match body.and_then(|ApiJson(b)| b.recipient) {
        Some(text) => Some(EmailAddress::parse(text.trim()).map_err(messages::Refusal::from)?),
        None => None,
    };
    messages::unlock(
        &app,
        UnlockBy::Sender(caller.user.id),
        id,
        address.as_ref().map(EmailAddress::as_str),
        &caller.ctx,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
