//! The `multipart/form-data` form of a submission: text fields are read whole (within their
//! limits), file fields stream into the draft, which is started at the first file after
//! checking whatever of the envelope has arrived by then.

use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartError};
use axum::http::StatusCode;
use zeroize::Zeroize;

use super::{ApiUser, Envelope, check_envelope, finish};
use crate::app::AppState;
use crate::messages::{
    Draft, Limits, PartKind, Refusal, Source, SubmitError, Submitted, clean_file_name,
    declared_content_type,
};
use crate::web::AppError;

fn multipart_error(e: &MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge("the request body is too large".to_owned())
    } else {
        AppError::BadRequest(format!("invalid multipart body: {}", e.body_text()))
    }
}

/// Longest value of a small text field (addresses, subject, passphrase, expiry).
const SMALL_FIELD: usize = 64 * 1024;

/// Read a text field of at most `limit` bytes; over it, a small field is refused and a body
/// is too large.
async fn text_field(
    field: &mut Field<'_>,
    name: &str,
    limit: usize,
    limits: &Limits,
) -> Result<String, AppError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
        if buf.len() + chunk.len() > limit {
            buf.zeroize();
            return Err(if limit == SMALL_FIELD {
                Refusal::invalid_field(name, "is too long").into()
            } else {
                SubmitError::TooLarge {
                    what: "message size",
                    limit: limits.max_bytes,
                }
                .into()
            });
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|e| {
        let mut bytes = e.into_bytes();
        bytes.zeroize();
        Refusal::invalid_field(name, "is not UTF-8 text").into()
    })
}

fn set_once(slot: &mut Option<String>, name: &str, value: String) -> Result<(), Refusal> {
    if slot.is_some() {
        return Err(Refusal::invalid_field(name, "was given more than once"));
    }
    *slot = Some(value);
    Ok(())
}

pub(super) async fn submit(
    app: &AppState,
    mut multipart: Multipart,
    caller: &ApiUser,
) -> Result<Submitted, AppError> {
    let limits = Limits::for_source(&app.config, Source::Api);
    let mut envelope = Envelope::default();
    let mut draft: Option<Draft> = None;
    let result = read_multipart(
        app,
        &limits,
        &mut multipart,
        &mut envelope,
        &mut draft,
        caller,
    )
    .await;
    let checked = result.and_then(|()| check_envelope(&limits, &envelope).map_err(AppError::from));
    let recipients = match checked {
        Ok(r) => r,
        Err(e) => {
            if let Some(d) = draft {
                d.abort().await;
            }
            return Err(e);
        }
    };
    let draft = draft.unwrap_or_else(|| Draft::begin(app, caller.sender(), Source::Api));
    finish(draft, envelope, recipients, caller).await
}

/// Read every field; file fields stream into `draft` (started at the first file, after
/// checking whatever of the envelope has arrived by then).
async fn read_multipart(
    app: &AppState,
    limits: &Limits,
    multipart: &mut Multipart,
    envelope: &mut Envelope,
    draft: &mut Option<Draft>,
    caller: &ApiUser,
) -> Result<(), AppError> {
    let body_limit = usize::try_from(limits.max_bytes).unwrap_or(usize::MAX);
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
                limits.attachment_count(attachments)?;
                let filename =
                    clean_file_name(field.file_name(), &format!("attachment-{attachments}"));
                let ctype = declared_content_type(field.content_type())?;
                let d = match draft {
                    Some(d) => d,
                    None => {
                        if !envelope.to.is_empty() {
                            limits.recipients(&envelope.to)?;
                        }
                        limits.expiry_days(envelope.expires_in_days)?;
                        draft.insert(Draft::begin(app, caller.sender(), Source::Api))
                    }
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
                let value = text_field(&mut field, &name, SMALL_FIELD, limits).await?;
                envelope.to.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                );
                limits.recipient_count(envelope.to.len())?;
            }
            "subject" => {
                let value = text_field(&mut field, &name, SMALL_FIELD, limits).await?;
                set_once(&mut envelope.subject, &name, value)?;
            }
            "text" => {
                let value = text_field(&mut field, &name, body_limit, limits).await?;
                set_once(&mut envelope.text, &name, value)?;
            }
            "html" => {
                let value = text_field(&mut field, &name, body_limit, limits).await?;
                set_once(&mut envelope.html, &name, value)?;
            }
            "passphrase" => {
                let value = text_field(&mut field, &name, SMALL_FIELD, limits).await?;
                set_once(&mut envelope.passphrase, &name, value)?;
            }
            "expires_in_days" => {
                let value = text_field(&mut field, &name, SMALL_FIELD, limits).await?;
                let days = value
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| Refusal::ExpiryNotANumber)?;
                limits.expiry_days(Some(days))?;
                envelope.expires_in_days = Some(days);
            }
            other => return Err(Refusal::UnknownField(other.chars().take(64).collect()).into()),
        }
    }
    Ok(())
}
