//! From the DATA of an SMTP transaction to a submitted message.
//!
//! The envelope (MAIL FROM, RCPT TO) decides sender and recipients, never the headers. The
//! original message is stored as one more attachment, `original.eml`, so that nothing the
//! parser did not understand is lost and the original headers stay inside the ciphertext.
//! Everything goes through [`Draft`], the same domain function the HTTPS API uses; this
//! module only maps MIME to parts.
//!
//! # How the message is read
//!
//! `tree` finds the structure (header blocks, boundaries, nesting) by the rules of RFC 2046
//! as Python's `email` package applies them; `mail-parser` reads the header fields (the
//! subject, `From:`, parameters and their encoded words, charsets); `decode` undoes the
//! transfer encodings, with the `base64` crate for base64.
//!
//! Why: mail-parser 0.11 (1.x needs a newer rustc than this workspace has) is kept for what
//! it reads right, the header fields and the charsets, but not for the structure or the
//! bodies: it converted text attachments to UTF-8, destroyed binary data labelled `text/*`,
//! left uuencode encoded, let a nested `message/rfc822` swallow the parts after it, cut text
//! at a boundary in mid-line, lost the last bytes of quoted-printable ending in a soft line
//! break and of base64 without padding, and served base64 followed by a list footer still
//! encoded. Those are rules about lines and bytes, small enough to own; patching its output
//! could not fix the structure, and the other maintained parser, `mailparse`, has no
//! uuencode and refuses damaged base64 instead of reading what it can. Two header faults are worked around
//! where its input is made: fields are unfolded before it reads them (it missed `boundary=`
//! with its value on the next line), and RFC 2231 continuations are joined as octets before
//! their charset applies (it decoded each piece alone). `server/tests/mime_oracle.rs` holds
//! the whole to Python's `email` as an oracle, `server/tests/mime_props.rs` to random MIME
//! trees.
//!
//! The reader's rules, from the parsed tree (depth first):
//! - a multipart is walked into; one that cannot be split (no boundary, or no boundary line)
//!   is read as `text/plain`;
//! - a `message/*` part is one attachment, kept whole (transfer-decoded if it was encoded);
//!   a `message/rfc822` or `message/global` without a file name is named after its subject
//!   (path separators made `_`) plus `.eml`, else `message-N.eml`;
//! - a `text/plain` or `text/html` part whose disposition is not `attachment` is body text,
//!   decoded from its charset (none, ASCII or unknown: UTF-8, replacement characters for
//!   what does not decode); several are joined;
//! - every other part, and every body part that declares a file name, is an attachment: the
//!   transfer-decoded bytes, unchanged, named by its `filename`, else `name`, else the
//!   `begin` line of uuencode, else `attachment-N`.

use std::sync::Arc;

use mail_parser::decoders::charsets::map::charset_decoder;

use super::session::Transaction;
use crate::app::AppState;
use crate::messages::{
    Draft, NewMessage, PartKind, Refusal, RequestCtx, Sender, Source, SubmitError, Submitted,
    clean_file_name,
};

mod decode;
mod tree;

#[cfg(test)]
mod tests;

use decode::Encoding;
use tree::Entity;

/// The name under which the whole message is kept.
pub const ORIGINAL_NAME: &str = "original.eml";

/// One attachment taken out of the MIME structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// What the pickup page shows of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub subject: String,
    /// The display name of the `From:` header, when its address is the envelope sender.
    pub from_name: Option<(String, String)>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
}

/// Parse a raw RFC 5322 message. `None` when it has no header at all (not a message).
pub fn parse(raw: &[u8]) -> Option<Parsed> {
    let root = tree::parse(raw);
    if !root.fields.has_headers {
        return None;
    }
    let subject = root
        .fields
        .subject
        .as_deref()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(998)
        .collect();
    let mut reader = Reader::default();
    reader.walk(&root);
    let join =
        |texts: Vec<String>, separator: &str| (!texts.is_empty()).then(|| texts.join(separator));
    Some(Parsed {
        subject,
        from_name: root.fields.from.clone(),
        text: join(reader.text, "\n\n"),
        html: join(reader.html, "\n<hr>\n"),
        attachments: reader.attachments,
    })
}

/// The reader's rules (module doc), applied while walking the tree.
#[derive(Default)]
struct Reader {
    text: Vec<String>,
    html: Vec<String>,
    attachments: Vec<Attachment>,
}

impl Reader {
    fn walk(&mut self, entity: &Entity<'_>) {
        if let Some(parts) = &entity.parts {
            for part in parts {
                self.walk(part);
            }
            return;
        }
        let fields = &entity.fields;
        let bytes = fields.encoding.decode(entity.body);
        let mime_type = match fields.mime_type.as_str() {
            t if t.starts_with("multipart/") => "text/plain",
            t => t,
        };
        if mime_type.starts_with("message/") {
            let fallback = match mime_type {
                "message/rfc822" | "message/global" => {
                    match tree::header_fields(&bytes)
                        .subject
                        .as_deref()
                        .map(str::trim)
                    {
                        Some(s) if !s.is_empty() => format!("{}.eml", s.replace(['/', '\\'], "_")),
                        _ => format!("message-{}.eml", self.attachments.len() + 1),
                    }
                }
                _ => format!("attachment-{}", self.attachments.len() + 1),
            };
            self.attach(fields.file_name.as_deref(), &fallback, mime_type, bytes);
            return;
        }
        let is_body = !fields.is_attachment && matches!(mime_type, "text/plain" | "text/html");
        if is_body {
            let text = text_of(&bytes, fields.charset.as_deref());
            if mime_type == "text/html" {
                self.html.push(text);
            } else {
                self.text.push(text);
            }
        }
        let uu_name = (fields.encoding == Encoding::Uuencode && fields.file_name.is_none())
            .then(|| decode::uudecode(entity.body).and_then(|(name, _)| name))
            .flatten();
        let name = fields.file_name.clone().or(uu_name);
        if !is_body || name.is_some() {
            let fallback = format!("attachment-{}", self.attachments.len() + 1);
            self.attach(name.as_deref(), &fallback, mime_type, bytes);
        }
    }

    fn attach(&mut self, name: Option<&str>, fallback: &str, mime_type: &str, bytes: Vec<u8>) {
        self.attachments.push(Attachment {
            filename: clean_file_name(name, fallback),
            content_type: content_type_of(mime_type),
            bytes,
        });
    }
}

/// Body text from its charset; none, ASCII or unknown: UTF-8, with replacement characters.
fn text_of(bytes: &[u8], charset: Option<&str>) -> String {
    let ascii = ["ascii", "us-ascii", "ansi_x3.4-1968", "646", "us"];
    match charset.map(str::trim) {
        Some(c) if !ascii.iter().any(|a| a.eq_ignore_ascii_case(c)) => {
            match charset_decoder(c.as_bytes()) {
                Some(decode) => decode(bytes),
                None => String::from_utf8_lossy(bytes).into_owned(),
            }
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Submit one received message through the domain. Returns once it is committed and every
/// recipient was notified; on any error nothing is kept (the draft is aborted).
pub async fn submit(
    app: &AppState,
    tx: &Transaction,
    raw: Vec<u8>,
    ctx: &RequestCtx,
) -> Result<Submitted, SubmitError> {
    let raw = Arc::new(raw);
    let parsed = {
        let raw = Arc::clone(&raw);
        tokio::task::spawn_blocking(move || parse(&raw))
            .await
            .map_err(|e| SubmitError::Internal(e.into()))?
    };
    let Some(parsed) = parsed else {
        return Err(Refusal::NotAMessage.into());
    };
    let display_name = parsed
        .from_name
        .as_ref()
        .filter(|(_, address)| address.eq_ignore_ascii_case(tx.from.as_str()))
        .map(|(name, _)| name.chars().filter(|c| !c.is_control()).take(200).collect());
    let sender = Sender::relayed(app, tx.from.as_str(), display_name).await?;
    let options = super::options::read(&raw, &parsed.subject)?;
    let original = options.stripped.as_deref().unwrap_or(&raw);
    let mut draft = Draft::begin(app, sender, Source::Smtp);
    let fill = async |draft: &mut Draft| -> Result<(), SubmitError> {
        draft
            .add_bodies(parsed.text.as_deref(), parsed.html.as_deref())
            .await?;
        for a in &parsed.attachments {
            draft
                .add_part(
                    PartKind::Attachment,
                    Some(a.filename.clone()),
                    a.content_type.clone(),
                    &a.bytes,
                )
                .await?;
        }
        draft
            .add_part(
                PartKind::Attachment,
                Some(ORIGINAL_NAME.to_owned()),
                "message/rfc822".into(),
                original,
            )
            .await
    };
    if let Err(e) = fill(&mut draft).await {
        draft.abort().await;
        return Err(e);
    }
    let message = NewMessage {
        recipients: tx.rcpts.clone(),
        subject: options.subject,
        passphrase: None,
        expires_in_days: options.expires_in_days,
    };
    draft.commit(message, ctx).await
}

/// A plausible `type/subtype`, else `application/octet-stream`.
fn content_type_of(ct: &str) -> String {
    let ct = ct.trim().to_ascii_lowercase();
    let plausible = ct.len() <= 127
        && ct
            .split_once('/')
            .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty())
        && ct
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/+-.!#$&^_".contains(c));
    if plausible {
        ct
    } else {
        "application/octet-stream".to_owned()
    }
}
