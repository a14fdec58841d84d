//! `GET /api/openapi.json`: the API description, generated from the handler annotations in
//! [`super::api`] so it cannot drift from the code.
//!
//! The response types the domain owns ([`crate::messages::SenderView`]) are described by
//! mirror types here, so the domain module stays free of documentation derives; a test checks
//! the mirror against a serialised value.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::AppState;
use super::api;

/// The API description.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Sealpost API",
        description = "Submit messages for secure pickup, follow their delivery, revoke them, \
                       unlock their recipients. \
                       Authenticate with `Authorization: Bearer <token>` (tokens are created \
                       with `sealpost user token`). Errors are `{\"error\": code, \"message\": text}`."
    ),
    paths(
        api::submit::submit,
        api::get_message,
        api::revoke_message,
        api::unlock_message
    ),
    components(schemas(
        api::SubmitRequest,
        api::AttachmentUpload,
        api::SubmitResponse,
        api::RecipientResult,
        api::UnlockRequest,
        SenderViewDoc,
        RecipientViewDoc,
        MultipartDoc,
        ErrorDoc
    )),
    modifiers(&BearerAuth),
    tags((name = "messages", description = "Messages sent for secure pickup"))
)]
pub struct ApiDoc;

#[derive(Debug)]
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// An error body.
#[derive(Debug, ToSchema)]
#[schema(as = Error)]
pub struct ErrorDoc {
    /// Stable machine-readable code, e.g. `invalid_json`, `missing_field`, `invalid_address`,
    /// `too_many_recipients`, `too_large`, `unauthorized`, `not_found`.
    pub error: String,
    /// Text for a person.
    pub message: String,
}

/// A message's delivery state (`GET /api/v1/messages/{id}`). Times are RFC 3339 UTC.
#[derive(Debug, ToSchema)]
#[schema(as = SenderView)]
pub struct SenderViewDoc {
    pub id: String,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    pub purged_at: Option<String>,
    /// Total size of the message's parts in bytes.
    pub size: i64,
    pub recipients: Vec<RecipientViewDoc>,
}

/// One recipient's delivery state.
#[derive(Debug, ToSchema)]
#[schema(as = RecipientView)]
pub struct RecipientViewDoc {
    pub address: String,
    pub notified_at: Option<String>,
    pub first_opened_at: Option<String>,
    pub last_opened_at: Option<String>,
    pub open_count: i64,
    /// Too many failed attempts from all clients together: the message is locked for this
    /// recipient until they unlock it with a new one-time code (after
    /// `lockout_cooldown_minutes`) or the sender unlocks it
    /// (`POST /api/v1/messages/{id}/unlock`).
    pub locked: bool,
}

/// The multipart form of `POST /api/v1/messages`.
#[derive(Debug, ToSchema)]
#[schema(as = MultipartSubmission)]
pub struct MultipartDoc {
    /// Recipient address; repeat the field or separate addresses with commas.
    pub to: Vec<String>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub passphrase: Option<String>,
    pub expires_in_days: Option<u32>,
    /// File fields; each is streamed into the encrypted store as it arrives.
    #[schema(value_type = Vec<String>, format = Binary)]
    pub attachment: Vec<String>,
}

/// `GET /api/openapi.json`.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(openapi_json))
}

async fn openapi_json() -> Response {
    match ApiDoc::openapi().to_pretty_json() {
        Ok(json) => {
            let mut response = (StatusCode::OK, json).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise the OpenAPI description");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
