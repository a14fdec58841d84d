//! `POST /p/{id}/attachments/{part_no}`: one attachment, decrypted chunk by chunk as it
//! streams, with a content type and `Content-Disposition` a browser saves rather than shows.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tower_sessions::Session;

use super::{SecretForm, pickup_id, refused, verified_recipient, with_actor};
use crate::messages::{self, PickupError, RequestCtx};
use crate::web::page::PageForm;
use crate::web::{AppError, AppState};

/// `POST /p/{id}/attachments/{part_no}`: stream one attachment, decrypting as it goes.
pub(super) async fn download(
    State(app): State<AppState>,
    Path((id, part_no)): Path<(String, String)>,
    session: Session,
    ctx: RequestCtx,
    PageForm(form): PageForm<SecretForm>,
) -> Result<Response, AppError> {
    let id = pickup_id(&id)?;
    let part_no: u32 = part_no.parse().map_err(|_| PickupError::NotFound)?;
    let verified = verified_recipient(&session, &id).await?;
    let ctx = with_actor(ctx, verified);
    let secret = form.secret().ok_or_else(|| {
        AppError::BadRequest("the access code in the download form is not complete".to_owned())
    })?;
    let (info, stream) = match messages::open_attachment(
        &app,
        &id,
        &secret,
        form.passphrase(),
        verified,
        part_no,
        &ctx,
    )
    .await
    {
        Ok(found) => found,
        Err(e) => return refused(&app, &id, e).await,
    };
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(download_type(&info.content_type)),
    );
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&info.filename)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(info.size));
    // Should a browser render it anyway, it runs sandboxed with nothing allowed.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    Ok(response)
}

/// Content types passed through for downloads (the browser saves rather than shows them, as
/// the response is `Content-Disposition: attachment` with `nosniff`); anything else is
/// `application/octet-stream`.
fn download_type(declared: &str) -> &'static str {
    const SAFE: &[&str] = &[
        "application/pdf",
        "application/zip",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "text/plain",
        "text/csv",
        "audio/mpeg",
        "video/mp4",
    ];
    let essence = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    SAFE.iter()
        .find(|t| **t == essence)
        .copied()
        .unwrap_or("application/octet-stream")
}

/// RFC 5987 `attr-char`: everything else is percent-encoded in `filename*`.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<encoded>` (RFC 6266), with
/// path separators and control characters replaced.
fn content_disposition(filename: &str) -> String {
    let mut name: String = filename
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\') {
                '_'
            } else {
                c
            }
        })
        .collect();
    name = name.trim().trim_start_matches('.').to_owned();
    if name.is_empty() {
        name = "attachment".to_owned();
    }
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = utf8_percent_encode(&name, ATTR_CHAR);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disposition() {
        assert_eq!(
            content_disposition("Befund März.pdf"),
            "attachment; filename=\"Befund M_rz.pdf\"; filename*=UTF-8''Befund%20M%C3%A4rz.pdf"
        );
        assert_eq!(
            content_disposition("../../etc/pa\"ss\r\n"),
            "attachment; filename=\"_.._etc_pa_ss__\"; filename*=UTF-8''_.._etc_pa%22ss__"
        );
        assert_eq!(
            content_disposition(""),
            "attachment; filename=\"attachment\"; filename*=UTF-8''attachment"
        );
    }

    #[test]
    fn download_types() {
        assert_eq!(download_type("application/PDF; name=x"), "application/pdf");
        assert_eq!(download_type("text/html"), "application/octet-stream");
        assert_eq!(download_type("image/svg+xml"), "application/octet-stream");
    }
}
