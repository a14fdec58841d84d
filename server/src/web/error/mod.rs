//! The one error type every HTTP handler returns, and the one place errors become responses.
//!
//! Policy:
//! - Handlers return `Result<_, AppError>`. Domain and store errors convert with `?`.
//! - Client faults (4xx) carry a short message a person can act on; it is shown as is.
//! - Server faults (5xx) show only a generic message; the full cause chain is logged at
//!   `error` level, never sent to the client (it may name tables, paths or internals).
//! - Database constraint violations (unique, foreign key, check, not null) become
//!   `409 Conflict` here and nowhere else, so handlers never inspect database errors.
//! - Domain errors ([`SubmitError`], [`Refusal`], [`PickupError`]) convert with `?` and get
//!   their [`ErrorCode`] here, in [`AppError::parts`], and nowhere else; the code decides the
//!   status ([`ErrorCode::status`]) and the error page's title and text.
//! - A refusal that says when to come back (`Throttled`, and the pickup back-off's
//!   `PickupError::SlowDown` and `PickupError::Blocked`) carries `Retry-After` in seconds.
//! - Under `/api/` the body is JSON `{"error": code, "message": text}` (a 401 also carries
//!   `WWW-Authenticate: Bearer`); elsewhere it is an HTML page a person can read, with a way
//!   back to the start of the pickup when the path names one. The choice is made by
//!   [`error_format`], a middleware applied once in [`super::router`], because `IntoResponse`
//!   cannot see the request path.
//! - Messages never contain secrets (link secrets, codes, passphrases, tokens) or message
//!   content.

mod code;

use std::error::Error as StdError;

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use code::ErrorCode;

use crate::messages::{PickupError, Refusal, SubmitError};
use crate::store::StoreError;
use crate::throttle::RetryAfter;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed request (unparseable body, missing field). 400.
    #[error("{0}")]
    BadRequest(String),
    /// A JSON body that does not parse. 400 `invalid_json`.
    #[error("{0}")]
    InvalidJson(String),
    /// A JSON body of the wrong shape (a field of the wrong type, an unknown field). 422
    /// `invalid_field`.
    #[error("{0}")]
    JsonData(String),
    /// The body is not of a type this endpoint takes. 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request body is larger than this endpoint takes. 413.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A submission the domain refused.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// A pickup or sender request the domain refused.
    #[error(transparent)]
    Pickup(#[from] PickupError),
    /// Not signed in or bad token. 401.
    #[error("authentication required")]
    Unauthorized,
    /// Signed in but not allowed. 403.
    #[error("not allowed")]
    Forbidden,
    /// The client used up one of its rate budgets (`crate::throttle`). 429 with `Retry-After`.
    #[error("too many requests from your network; try again in {} seconds", .0.seconds())]
    Throttled(RetryAfter),
    /// No such resource (also used to hide resources the caller may not see). 404.
    #[error("not found")]
    NotFound,
    /// Store failure; constraint violations become 409, everything else 500.
    #[error("database error")]
    Store(#[from] StoreError),
    /// Any other server fault; the context says what was being done.
    #[error("{context}")]
    Internal {
        context: &'static str,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Sqlx(e))
    }
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> Self {
        Self::Submit(SubmitError::Refused(r))
    }
}

impl AppError {
    /// Wrap any error as a 500 with a short description of what failed.
    pub fn internal(context: &'static str, source: impl StdError + Send + Sync + 'static) -> Self {
        Self::Internal {
            context,
            source: Box::new(source),
        }
    }

    /// The error code, and the text shown to the client. The status is the code's.
    pub fn parts(&self) -> (ErrorCode, String) {
        let code = match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::InvalidJson(_) => ErrorCode::InvalidJson,
            Self::JsonData(_) => ErrorCode::InvalidField,
            Self::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            Self::PayloadTooLarge(_) => ErrorCode::TooLarge,
            Self::Submit(e) => submit_code(e),
            Self::Pickup(e) => pickup_code(e),
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::Throttled(_) => ErrorCode::TooManyRequests,
            Self::Forbidden => ErrorCode::Forbidden,
            Self::NotFound => ErrorCode::NotFound,
            Self::Store(e) if e.is_constraint_violation() => {
                return (
                    ErrorCode::Conflict,
                    "this conflicts with existing data".to_owned(),
                );
            }
            Self::Store(_) | Self::Internal { .. } => ErrorCode::Internal,
        };
        let message = match code {
            ErrorCode::Internal => INTERNAL_MESSAGE.to_owned(),
            ErrorCode::Unavailable => match self {
                Self::Submit(_) => {
                    "temporarily unavailable; nothing was kept, please retry later".to_owned()
                }
                _ => "temporarily unavailable; please try again in a few minutes".to_owned(),
            },
            _ => self.to_string(),
        };
        (code, message)
    }
}

const INTERNAL_MESSAGE: &str = "internal error; the incident was logged";

fn submit_code(e: &SubmitError) -> ErrorCode {
    match e {
        SubmitError::Refused(r) => refusal_code(r),
        SubmitError::TooLarge { .. } => ErrorCode::TooLarge,
        SubmitError::Unavailable(_) => ErrorCode::Unavailable,
        SubmitError::Internal(_) => ErrorCode::Internal,
    }
}

fn refusal_code(r: &Refusal) -> ErrorCode {
    match r {
        Refusal::MissingField { .. } => ErrorCode::MissingField,
        Refusal::TooManyRecipients { .. } => ErrorCode::TooManyRecipients,
        Refusal::InvalidAddress(_) => ErrorCode::InvalidAddress,
        Refusal::InvalidExpiry { .. } | Refusal::ExpiryNotANumber => ErrorCode::InvalidExpiry,
        Refusal::TooManyAttachments { .. } => ErrorCode::TooManyAttachments,
        Refusal::InvalidContentType => ErrorCode::InvalidContentType,
        Refusal::InvalidAttachment { .. } => ErrorCode::InvalidAttachment,
        Refusal::InvalidField { .. } => ErrorCode::InvalidField,
        Refusal::UnknownField(_) => ErrorCode::UnknownField,
        Refusal::DuplicateBody => ErrorCode::DuplicateBody,
        Refusal::EmptyPassphrase => ErrorCode::InvalidPassphrase,
        Refusal::NotAMessage => ErrorCode::NotAMessage,
    }
}

fn pickup_code(e: &PickupError) -> ErrorCode {
    match e {
        PickupError::NotFound => ErrorCode::NotFound,
        PickupError::Expired => ErrorCode::Expired,
        PickupError::Revoked => ErrorCode::Revoked,
        PickupError::Locked(_) => ErrorCode::Locked,
        PickupError::Blocked { .. } => ErrorCode::Blocked,
        PickupError::SlowDown { .. } => ErrorCode::SlowDown,
        PickupError::NotVerified => ErrorCode::NotVerified,
        PickupError::WrongSecret(_) => ErrorCode::WrongSecret,
        PickupError::PassphraseRequired => ErrorCode::PassphraseRequired,
        PickupError::WrongCode(_) => ErrorCode::WrongCode,
        PickupError::CodeExpired => ErrorCode::CodeExpired,
        PickupError::TooManyCodes { .. } => ErrorCode::TooManyRequests,
        PickupError::Unavailable(_) => ErrorCode::Unavailable,
        PickupError::Internal(_) => ErrorCode::Internal,
    }
}

/// `err: cause: cause…` for logs.
fn cause_chain(err: &dyn StdError) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The error attached to a response so [`error_format`] can re-render it as JSON.
#[derive(Debug, Clone)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (code, message) = self.parts();
        let status = code.status();
        let retry_after = match &self {
            Self::Throttled(wait) => Some(wait.seconds()),
            Self::Pickup(e) => e.retry_after().map(RetryAfter::seconds),
            _ => None,
        };
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), code = code.as_str(), error = %cause_chain(&self), "request failed");
        } else {
            tracing::info!(status = status.as_u16(), code = code.as_str(), error = %cause_chain(&self), "request refused");
        }
        let mut response = (status, message.clone()).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
            .extensions_mut()
            .insert(ErrorBody { code, message });
        response
    }
}

/// Middleware: turn an [`AppError`] response into its final form, keeping status and headers:
/// for `/api/…` the JSON body `{"error": code, "message": text}` (plus
/// `WWW-Authenticate: Bearer` on 401), for everything else an HTML page.
pub async fn error_format(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let is_api = path.starts_with("/api/") || path == "/api";
    let response = next.run(request).await;
    let Some(body) = response.extensions().get::<ErrorBody>().cloned() else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if !is_api {
        let page = super::page::error_page(parts.status, body.code, &body.message, &path);
        let (page_parts, page_body) = page.into_parts();
        parts.headers.insert(
            header::CONTENT_TYPE,
            page_parts
                .headers
                .get(header::CONTENT_TYPE)
                .cloned()
                .unwrap_or_else(|| HeaderValue::from_static("text/html; charset=utf-8")),
        );
        return Response::from_parts(parts, page_body);
    }
    let json = Json(serde_json::json!({ "error": body.code.as_str(), "message": body.message }));
    let (_, new_body) = json.into_response().into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if parts.status == StatusCode::UNAUTHORIZED {
        parts
            .headers
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    Response::from_parts(parts, new_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(AppError::NotFound.parts().0.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            AppError::Unauthorized.parts().0.status(),
            StatusCode::UNAUTHORIZED
        );
        let internal = AppError::internal("writing outbox", std::io::Error::other("disk full"));
        let (code, message) = internal.parts();
        assert_eq!(code.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(code.as_str(), "internal");
        assert!(
            !message.contains("disk full"),
            "internals leaked: {message}"
        );
        assert_eq!(cause_chain(&internal), "writing outbox: disk full");
    }
}

#[cfg(test)]
mod response_tests {
    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;
    use crate::store::testing::temp_store;
    use crate::store::users::{self, Role};

    async fn duplicate_user() -> Result<(), AppError> {
        let (store, _dir) = temp_store().await?;
        let mut conn = store.acquire().await?;
        users::insert(&mut conn, "a@example.org", Role::Sender, "h").await?;
        users::insert(&mut conn, "a@example.org", Role::Sender, "h").await?;
        Ok(())
    }

    fn app() -> Router {
        async fn gone() -> Result<(), AppError> {
            Err(AppError::Pickup(PickupError::CodeExpired))
        }
        Router::new()
            .route("/api/v1/gone", get(gone))
            .route("/p/gone", get(gone))
            .route("/api/v1/dup", get(duplicate_user))
            .layer(axum::middleware::from_fn(error_format))
    }

    async fn call(path: &str) -> Result<(StatusCode, String, String), Box<dyn StdError>> {
        let response = app()
            .oneshot(Request::get(path).body(Body::empty())?)
            .await?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = to_bytes(response.into_body(), 1 << 16).await?;
        Ok((status, content_type, String::from_utf8(body.to_vec())?))
    }

    #[tokio::test]
    async fn api_errors_are_json_pages_are_html() -> Result<(), Box<dyn StdError>> {
        let (status, ctype, body) = call("/api/v1/gone").await?;
        assert_eq!(status, StatusCode::GONE);
        assert_eq!(ctype, "application/json");
        let json: serde_json::Value = serde_json::from_str(&body)?;
        assert_eq!(json["error"], "code_expired");
        assert_eq!(json["message"], PickupError::CodeExpired.to_string());

        let (status, ctype, body) = call("/p/gone").await?;
        assert_eq!(status, StatusCode::GONE);
        assert!(ctype.starts_with("text/html"), "{ctype}");
        assert!(body.contains("the code has expired"), "{body}");
        assert!(body.contains("<html lang=\"en\">"), "{body}");
        Ok(())
    }

    #[tokio::test]
    async fn constraint_violation_is_409() -> Result<(), Box<dyn StdError>> {
        let (status, _, body) = call("/api/v1/dup").await?;
        assert_eq!(status, StatusCode::CONFLICT);
        let json: serde_json::Value = serde_json::from_str(&body)?;
        assert_eq!(json["error"], "conflict");
        assert!(
            !body.contains("UNIQUE"),
            "database internals leaked: {body}"
        );
        Ok(())
    }
}
