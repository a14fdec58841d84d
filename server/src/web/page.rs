//! What every HTML page shares: the layout data (hashed asset URLs), rendering a template into
//! a response, and the error page.
//!
//! Templates live in `templates/pages/` and are compiled in (askama); they escape every value
//! by default. Nothing here may put a secret or message content into an error page.

use askama::Template;
use axum::extract::{Form, FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::error::ErrorCode;
use super::{AppError, assets};

/// A URL-encoded form body; a malformed one becomes an [`AppError`] (and so an HTML page)
/// instead of axum's plain-text rejection.
#[derive(Debug)]
pub struct PageForm<T>(pub T);

impl<S, T> FromRequest<S> for PageForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Form::<T>::from_request(req, state).await {
            Ok(Form(value)) => Ok(Self(value)),
            Err(rejection) => Err(AppError::BadRequest(format!(
                "the form could not be read: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// Data the base layout (`templates/pages/base.html`) needs.
#[derive(Debug, Clone)]
pub struct Layout {
    pub css: &'static str,
    pub js: &'static str,
    pub icon: &'static str,
    /// The staff pages' script (the idle warning).
    pub staff_js: &'static str,
    /// The pickup id on pickup pages (`data-pickup` for the script); `None` elsewhere.
    pub pickup: Option<String>,
}

impl Layout {
    pub fn new() -> Self {
        Self {
            css: assets::url("style.css"),
            js: assets::url("pickup.js"),
            icon: assets::url("icon.svg"),
            staff_js: assets::url("staff.js"),
            pickup: None,
        }
    }

    /// The layout of a page about pickup `id`.
    pub fn pickup(id: &str) -> Self {
        Self {
            pickup: Some(id.to_owned()),
            ..Self::new()
        }
    }
}

impl Default for Layout {
    fn default() -> Self {
        Self::new()
    }
}

/// Render `template` with `status`. A template that fails to render (it cannot, short of a bug)
/// becomes a bare 500 rather than a panic.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, html).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error; the incident was logged",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "pages/error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    title: &'static str,
    message: &'a str,
    /// Where "start again" goes: the pickup landing page when the path names one.
    back: Option<String>,
}

/// The page for an error response (see [`super::error::error_format`]).
pub fn error_page(status: StatusCode, code: ErrorCode, message: &str, path: &str) -> Response {
    let back = pickup_start(path).filter(|_| code.offers_restart());
    render(
        status,
        &ErrorPage {
            layout: Layout::new(),
            title: code.title(),
            message: code.page_text(path).unwrap_or(message),
            back,
        },
    )
}

/// `/p/<id>` for any path under `/p/<id>/…`, if `<id>` looks like a pickup id.
fn pickup_start(path: &str) -> Option<String> {
    let id = path.strip_prefix("/p/")?.split('/').next()?;
    let plausible = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    plausible.then(|| format!("/p/{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_link_only_for_plausible_ids() {
        assert_eq!(
            pickup_start("/p/abc_DEF-1/code").as_deref(),
            Some("/p/abc_DEF-1")
        );
        assert_eq!(pickup_start("/p/a\"b/code"), None);
        assert_eq!(pickup_start("/api/v1/x"), None);
    }
}
