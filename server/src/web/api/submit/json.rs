//! The JSON form of a submission: attachments in base64, all decoded and checked before the
//! message is started.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use utoipa::ToSchema;
use zeroize::Zeroize;

use super::{ApiUser, Envelope, check_envelope, finish};
use crate::app::AppState;
use crate::messages::{
    Draft, Limits, PartKind, Refusal, Source, SubmitError, Submitted, clean_file_name,
    declared_content_type,
};
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

/// Standard base64, padding optional, line breaks allowed.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(super) async fn submit(
    app: &AppState,
    mut body: SubmitRequest,
    caller: &ApiUser,
) -> Result<Submitted, AppError> {
    let limits = Limits::for_source(&app.config, Source::Api);
    let envelope = Envelope {
        to: body
            .to
            .take()
            .ok_or_else(|| Refusal::missing("to", "a list of recipient addresses"))?,
        subject: body.subject.take(),
        text: body.text.take(),
        html: body.html.take(),
        passphrase: body.passphrase.take(),
        expires_in_days: body.expires_in_days,
    };
    let recipients = check_envelope(&limits, &envelope)?;
    limits.attachment_count(body.attachments.len())?;
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
            .ok_or_else(|| Refusal::missing(field("filename"), "the attachment's file name"))?;
        let data = a.content_base64.as_deref().ok_or_else(|| {
            Refusal::missing(field("content_base64"), "the file's bytes in base64")
        })?;
        let clean: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let bytes = BASE64
            .decode(clean)
            .map_err(|_| Refusal::InvalidAttachment {
                field: field("content_base64"),
            })?;
        total = total.saturating_add(bytes.len());
        too_large(&limits, total)?;
        files.push((
            clean_file_name(Some(name), &format!("attachment-{}", i + 1)),
            declared_content_type(a.content_type.as_deref())?,
            bytes,
        ));
    }
    too_large(&limits, total)?;
    let mut draft = Draft::begin(app, caller.sender(), Source::Api);
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

/// The bodies and attachments of a JSON submission together, held to the message limit before
/// anything is encrypted.
fn too_large(limits: &Limits, total: usize) -> Result<(), SubmitError> {
    if total as u64 > limits.max_bytes {
        return Err(SubmitError::TooLarge {
            what: "message size",
            limit: limits.max_bytes,
        });
    }
    Ok(())
}
