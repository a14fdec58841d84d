//! `POST /api/v1/messages`: a JSON body, or `multipart/form-data` whose file fields stream
//! straight into the encryptor (never buffered whole).
//!
//! Everything that can be checked before the message is started is checked first (required
//! fields, addresses, counts, expiry, size), so a bad request costs nothing. Once a
//! [`Draft`] exists, any failure aborts it: nothing of a refused submission is kept.

use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use sealpost_crypto::Passphrase;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroize;

use super::{ApiJson, ApiUser};
use crate::app::AppState;
use crate::config::Config;
use crate::messages::{
    Draft, EmailAddress, NewMessage, PartKind, RecipientStatus, Sender, Source, Submitted,
    clean_file_name,
};
use crate::store::users::Role;
use crate::web::AppError;

/// A message to submit as JSON.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// Recipient addresses (at least one).
    #[schema(example = json!(["patient@example.org"]))]
    pub to: Option<Vec<String>>,
    /// Subject line (stored encrypted).
    pub subject: Option<String>,
    /// Plain-text body. `text` or `html` is required.
    pub text: Option<String>,
    /// HTML body; shown sanitised, without remote images.
    pub html: Option<String>,
    #[serde(default)]
    pub attachments: Vec<AttachmentUpload>,
    /// A passphrase agreed with the recipients out of band; needed to open the message.
    pub passphrase: Option<String>,
    /// Days until the message is deleted (default and maximum are set by the server).
    #[schema(minimum = 1)]
    pub expires_in_days: Option<u32>,
}

/// Never prints content or the passphrase.
impl std::fmt::Debug for SubmitRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubmitRequest")
            .field("to", &self.to)
            .field("attachments", &self.attachments.len())
            .field("expires_in_days", &self.expires_in_days)
            .finish_non_exhaustive()
    }
}

impl Drop for SubmitRequest {
    fn drop(&mut self) {
        if let Some(p) = &mut self.passphrase {
            p.zeroize();
        }
    }
}

/// One attachment of a JSON submission.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentUpload {
    pub filename: Option<String>,
    /// Defaults to `application/octet-stream`.
    pub content_type: Option<String>,
    /// The file's bytes in standard base64 (padding optional).
    pub content_base64: Option<String>,
}

/// Never prints content.
impl std::fmt::Debug for AttachmentUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentUpload")
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

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

fn missing(field: &str, what: &str) -> AppError {
    AppError::Invalid {
        code: "missing_field",
        message: format!("`{field}` is required: {what}"),
    }
}

/// The parts of a submission every body format shares, once read.
#[derive(Default)]
struct Envelope {
    to: Vec<String>,
    subject: Option<String>,
    text: Option<String>,
    html: Option<String>,
    passphrase: Option<String>,
    expires_in_days: Option<u32>,
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

/// Parse and check the recipient list against the limits.
fn recipients(config: &Config, to: &[String]) -> Result<Vec<EmailAddress>, AppError> {
    if to.iter().all(|a| a.trim().is_empty()) {
        return Err(missing("to", "at least one recipient address"));
    }
    let max = config.max_recipients as usize;
    if to.len() > max {
        return Err(AppError::Invalid {
            code: "too_many_recipients",
            message: format!("at most {max} recipients are allowed, got {}", to.len()),
        });
    }
    to.iter()
        .filter(|a| !a.trim().is_empty())
        .map(|a| {
            EmailAddress::parse(a).map_err(|e| AppError::Invalid {
                code: "invalid_address",
                message: e.to_string(),
            })
        })
        .collect()
}

fn check_expiry(config: &Config, days: Option<u32>) -> Result<(), AppError> {
    match days {
        Some(0) => Err(AppError::Invalid {
            code: "invalid_expiry",
            message: "`expires_in_days` must be at least 1".to_owned(),
        }),
        Some(d) if d > config.max_expiry_days => Err(AppError::Invalid {
            code: "invalid_expiry",
            message: format!(
                "`expires_in_days` is {d}, more than the maximum of {}",
                config.max_expiry_days
            ),
        }),
        _ => Ok(()),
    }
}

fn too_many_attachments(config: &Config) -> AppError {
    AppError::Invalid {
        code: "too_many_attachments",
        message: format!("at most {} attachments are allowed", config.max_attachments),
    }
}

fn too_large(config: &Config) -> AppError {
    AppError::PayloadTooLarge(format!(
        "the message is larger than the limit of {} bytes",
        config.max_message_bytes
    ))
}

/// A content type from the client, checked to be a plain `type/subtype[; params]` value.
fn content_type(declared: Option<&str>) -> Result<String, AppError> {
    let Some(ct) = declared.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok("application/octet-stream".to_owned());
    };
    let plausible =
        ct.len() <= 255 && ct.contains('/') && ct.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    if plausible {
        Ok(ct.to_owned())
    } else {
        Err(AppError::Invalid {
            code: "invalid_content_type",
            message: "an attachment's content type is not a valid MIME type".to_owned(),
        })
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
    let sender = Sender {
        user_id: Some(caller.user.id),
        address: caller.user.email.clone(),
        display_name: None,
    };
    let submitted = if ctype.starts_with("multipart/form-data") {
        let multipart = Multipart::from_request(request, &app)
            .await
            .map_err(|e| AppError::BadRequest(e.body_text()))?;
        submit_multipart(&app, sender, multipart, &caller).await?
    } else {
        let ApiJson(body) = ApiJson::<SubmitRequest>::from_request(request, &app).await?;
        submit_json(&app, sender, body, &caller).await?
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

/// Standard base64, padding optional, line breaks allowed.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

async fn submit_json(
    app: &AppState,
    sender: Sender,
    mut body: SubmitRequest,
    caller: &ApiUser,
) -> Result<Submitted, AppError> {
    let config = &app.config;
    let envelope = Envelope {
        to: body
            .to
            .take()
            .ok_or_else(|| missing("to", "a list of recipient addresses"))?,
        subject: body.subject.take(),
        text: body.text.take(),
        html: body.html.take(),
        passphrase: body.passphrase.take(),
        expires_in_days: body.expires_in_days,
    };
    let recipients = check_envelope(config, &envelope)?;
    if body.attachments.len() > config.max_attachments as usize {
        return Err(too_many_attachments(config));
    }
    // Decode every attachment before starting: a bad one must cost nothing.
    let mut total = envelope.text.as_ref().map_or(0, String::len)
        + envelope.html.as_ref().map_or(0, String::len);
    let mut files = Vec::with_capacity(body.attachments.len());
    for (i, a) in body.attachments.iter().enumerate() {
        let field = |f: &str| format!("attachments[{i}].{f}");
        let name = a
            .filename
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| missing(&field("filename"), "the attachment's file name"))?;
        let data = a
            .content_base64
            .as_deref()
            .ok_or_else(|| missing(&field("content_base64"), "the file's bytes in base64"))?;
        let clean: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let bytes = BASE64.decode(clean).map_err(|_| AppError::Invalid {
            code: "invalid_attachment",
            message: format!("`{}` is not valid base64", field("content_base64")),
        })?;
        total = total.saturating_add(bytes.len());
        if total as u64 > config.max_message_bytes {
            return Err(too_large(config));
        }
        files.push((
            clean_file_name(Some(name), &format!("attachment-{}", i + 1)),
            content_type(a.content_type.as_deref())?,
            bytes,
        ));
    }
    if total as u64 > config.max_message_bytes {
        return Err(too_large(config));
    }
    let mut draft = Draft::begin(app, sender, Source::Api);
    let fill = async |draft: &mut Draft| -> Result<(), AppError> {
        for (name, ctype, bytes) in &files {
            draft
                .add_part(
                    PartKind::Attachment,
                    Some(name.clone()),
                    ctype.clone(),
                    bytes,
                )
                .await?;
        }
        Ok(())
    };
    if let Err(e) = fill(&mut draft).await {
        draft.abort().await;
        return Err(e);
    }
    finish(draft, envelope, recipients, caller).await
}

/// The checks every submission passes before a draft is started.
fn check_envelope(config: &Config, e: &Envelope) -> Result<Vec<EmailAddress>, AppError> {
    let recipients = recipients(config, &e.to)?;
    if e.subject.is_none() {
        return Err(missing("subject", "the subject line (it may be empty)"));
    }
    if e.text.is_none() && e.html.is_none() {
        return Err(missing("text", "a plain-text body (or `html`)"));
    }
    check_expiry(config, e.expires_in_days)?;
    Ok(recipients)
}

/// Add the bodies and commit. Aborts the draft on any error before commit (commit cleans up
/// after itself).
async fn finish(
    mut draft: Draft,
    mut envelope: Envelope,
    recipients: Vec<EmailAddress>,
    caller: &ApiUser,
) -> Result<Submitted, AppError> {
    let bodies = async |draft: &mut Draft| -> Result<(), AppError> {
        if let Some(text) = &envelope.text {
            draft
                .add_part(
                    PartKind::Text,
                    None,
                    "text/plain; charset=utf-8".to_owned(),
                    text.as_bytes(),
                )
                .await?;
        }
        if let Some(html) = &envelope.html {
            draft
                .add_part(
                    PartKind::Html,
                    None,
                    "text/html; charset=utf-8".to_owned(),
                    html.as_bytes(),
                )
                .await?;
        }
        Ok(())
    };
    if let Err(e) = bodies(&mut draft).await {
        draft.abort().await;
        return Err(e);
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

fn multipart_error(e: &MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge("the request body is too large".to_owned())
    } else {
        AppError::BadRequest(format!("invalid multipart body: {}", e.body_text()))
    }
}

/// Longest value of a small text field (addresses, subject, passphrase, expiry).
const SMALL_FIELD: usize = 64 * 1024;

/// Read a text field of at most `limit` bytes.
async fn text_field(
    field: &mut Field<'_>,
    name: &str,
    limit: usize,
    config: &Config,
) -> Result<String, AppError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
        if buf.len() + chunk.len() > limit {
            buf.zeroize();
            return Err(if limit == SMALL_FIELD {
                AppError::Invalid {
                    code: "invalid_field",
                    message: format!("`{name}` is too long"),
                }
            } else {
                too_large(config)
            });
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|e| {
        let mut bytes = e.into_bytes();
        bytes.zeroize();
        AppError::Invalid {
            code: "invalid_field",
            message: format!("`{name}` is not UTF-8 text"),
        }
    })
}

fn set_once(slot: &mut Option<String>, name: &str, value: String) -> Result<(), AppError> {
    if slot.is_some() {
        return Err(AppError::Invalid {
            code: "invalid_field",
            message: format!("`{name}` was given more than once"),
        });
    }
    *slot = Some(value);
    Ok(())
}

async fn submit_multipart(
    app: &AppState,
    sender: Sender,
    mut multipart: Multipart,
    caller: &ApiUser,
) -> Result<Submitted, AppError> {
    let mut envelope = Envelope::default();
    let mut draft: Option<Draft> = None;
    let result = read_multipart(app, sender, &mut multipart, &mut envelope, &mut draft).await;
    let checked = result.and_then(|()| check_envelope(&app.config, &envelope));
    let recipients = match checked {
        Ok(r) => r,
        Err(e) => {
            if let Some(d) = draft {
                d.abort().await;
            }
            return Err(e);
        }
    };
    let draft = match draft {
        Some(d) => d,
        None => {
            let sender = Sender {
                user_id: Some(caller.user.id),
                address: caller.user.email.clone(),
                display_name: None,
            };
            Draft::begin(app, sender, Source::Api)
        }
    };
    finish(draft, envelope, recipients, caller).await
}

/// Read every field; file fields stream into `draft` (started at the first file, after
/// checking whatever of the envelope has arrived by then).
async fn read_multipart(
    app: &AppState,
    sender: Sender,
    multipart: &mut Multipart,
    envelope: &mut Envelope,
    draft: &mut Option<Draft>,
) -> Result<(), AppError> {
    let config = &app.config;
    let body_limit = usize::try_from(config.max_message_bytes).unwrap_or(usize::MAX);
    let mut sender = Some(sender);
    let mut attachments = 0usize;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "attachment" | "attachments" | "attachment[]" | "attachments[]" => {
                attachments += 1;
                if attachments > config.max_attachments as usize {
                    return Err(too_many_attachments(config));
                }
                let filename =
                    clean_file_name(field.file_name(), &format!("attachment-{attachments}"));
                let ctype = content_type(field.content_type())?;
                if draft.is_none() {
                    if !envelope.to.is_empty() {
                        recipients(config, &envelope.to)?;
                    }
                    check_expiry(config, envelope.expires_in_days)?;
                    let Some(sender) = sender.take() else {
                        return Err(AppError::internal(
                            "multipart submission",
                            std::io::Error::other("sender already used"),
                        ));
                    };
                    *draft = Some(Draft::begin(app, sender, Source::Api));
                }
                let Some(d) = draft.as_mut() else {
                    continue;
                };
                let mut writer = d
                    .start_part(PartKind::Attachment, Some(filename), ctype)
                    .await?;
                while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
                    writer.write(&chunk).await?;
                }
                writer.finish().await?;
            }
            "to" | "to[]" => {
                let value = text_field(&mut field, &name, SMALL_FIELD, config).await?;
                envelope.to.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                );
                if envelope.to.len() > config.max_recipients as usize {
                    recipients(config, &envelope.to)?;
                }
            }
            "subject" => {
                let value = text_field(&mut field, &name, SMALL_FIELD, config).await?;
                set_once(&mut envelope.subject, &name, value)?;
            }
            "text" => {
                let value = text_field(&mut field, &name, body_limit, config).await?;
                set_once(&mut envelope.text, &name, value)?;
            }
            "html" => {
                let value = text_field(&mut field, &name, body_limit, config).await?;
                set_once(&mut envelope.html, &name, value)?;
            }
            "passphrase" => {
                let value = text_field(&mut field, &name, SMALL_FIELD, config).await?;
                set_once(&mut envelope.passphrase, &name, value)?;
            }
            "expires_in_days" => {
                let value = text_field(&mut field, &name, SMALL_FIELD, config).await?;
                let days = value.trim().parse::<u32>().map_err(|_| AppError::Invalid {
                    code: "invalid_expiry",
                    message: "`expires_in_days` must be a whole number of days".to_owned(),
                })?;
                check_expiry(config, Some(days))?;
                envelope.expires_in_days = Some(days);
            }
            other => {
                return Err(AppError::Invalid {
                    code: "unknown_field",
                    message: format!(
                        "unknown form field `{}`",
                        other.chars().take(64).collect::<String>()
                    ),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert!(content_type(Some("application/pdf")).is_ok());
        assert_eq!(
            content_type(None).ok().as_deref(),
            Some("application/octet-stream")
        );
        assert!(content_type(Some("text/plain\r\nX: y")).is_err());
        assert!(content_type(Some("nonsense")).is_err());
    }
}
