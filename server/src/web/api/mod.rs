//! The JSON API, `/api/v1`: submit a message, see its delivery state, revoke it.
//!
//! Every route needs a bearer token ([`auth::ApiUser`]). Errors are JSON
//! `{"error": "<code>", "message": "<text>"}` (see [`crate::web::error`]); the OpenAPI
//! description at `/api/openapi.json` is generated from the annotations here.

pub mod auth;
pub(crate) mod submit;

use crate::ids::MessageId;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

pub use self::auth::ApiUser;
pub use self::submit::{AttachmentUpload, RecipientResult, SubmitRequest, SubmitResponse};
use super::{AppError, AppState};
use crate::config::Config;
use crate::messages::{self, PickupError, SenderView};

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
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
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
