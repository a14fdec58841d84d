//! From the DATA of an SMTP transaction to a submitted message.
//!
//! `mail-parser` reads the MIME structure: the subject (encoded words and charsets decoded),
//! the text and HTML bodies, and every attachment — nested multiparts flattened, a
//! `message/rfc822` part kept whole as one `.eml` attachment. The envelope (MAIL FROM,
//! RCPT TO) decides sender and recipients, never the headers. The original message is stored
//! as one more attachment, `original.eml`, so that nothing the parser did not understand is
//! lost and the original headers stay inside the ciphertext.
//!
//! Everything goes through [`Draft`], the same domain function the HTTPS API uses; this
//! module only maps MIME to parts.

use std::sync::Arc;

use mail_parser::{MessageParser, MimeHeaders, PartType};

use super::session::Transaction;
use crate::app::AppState;
use crate::messages::{
    Draft, NewMessage, PartKind, Refusal, RequestCtx, Sender, Source, SubmitError, Submitted,
    clean_file_name,
};

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
    let message = MessageParser::default().parse(raw)?;
    if message.headers().is_empty() {
        return None;
    }
    let subject = message
        .subject()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(998)
        .collect();
    let from_name = message.from().and_then(|from| {
        let first = from.first()?;
        Some((first.name()?.to_owned(), first.address()?.to_owned()))
    });
    let join = |ids: &[u32], html: bool| -> Option<String> {
        let texts: Vec<&str> = ids
            .iter()
            .filter_map(|&id| message.parts.get(id as usize))
            .filter_map(|part| match (&part.body, html) {
                (PartType::Text(t), false) | (PartType::Html(t), true) => Some(t.as_ref()),
                _ => None,
            })
            .collect();
        (!texts.is_empty()).then(|| texts.join(if html { "\n<hr>\n" } else { "\n\n" }))
    };
    let text = join(&message.text_body, false);
    let html = join(&message.html_body, true);
    let mut attachments = Vec::new();
    for (index, &id) in message.attachments.iter().enumerate() {
        let Some(part) = message.parts.get(id as usize) else {
            continue;
        };
        let (default_name, content_type) = match &part.body {
            PartType::Message(inner) => {
                let name = inner
                    .subject()
                    .map(|s| format!("{s}.eml"))
                    .unwrap_or_else(|| format!("message-{}.eml", index + 1));
                (name, "message/rfc822".to_owned())
            }
            _ => {
                let ct = part.content_type().map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_owned(),
                });
                (
                    format!("attachment-{}", index + 1),
                    ct.unwrap_or_else(|| "application/octet-stream".to_owned()),
                )
            }
        };
        let filename = clean_file_name(part.attachment_name(), &default_name);
        attachments.push(Attachment {
            filename,
            content_type: content_type_of(&content_type),
            bytes: part.contents().to_vec(),
        });
    }
    Some(Parsed {
        subject,
        from_name,
        text,
        html,
        attachments,
    })
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
    let sender = Sender {
        user_id: None,
        address: tx.from.to_string(),
        display_name,
    };
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
                &raw,
            )
            .await
    };
    if let Err(e) = fill(&mut draft).await {
        draft.abort().await;
        return Err(e);
    }
    let message = NewMessage {
        recipients: tx.rcpts.clone(),
        subject: parsed.subject.clone(),
        passphrase: None,
        expires_in_days: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bodies_attachments_and_encoded_words() -> Result<(), String> {
        let raw = concat!(
            "From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\n",
            "To: r@example.net\r\n",
            "Subject: =?utf-8?b?R3LDvMOfZSDinJM=?=\r\n",
            "MIME-Version: 1.0\r\n",
            "Content-Type: multipart/mixed; boundary=\"outer\"\r\n",
            "\r\n",
            "--outer\r\n",
            "Content-Type: multipart/alternative; boundary=\"alt\"\r\n",
            "\r\n",
            "--alt\r\n",
            "Content-Type: text/plain; charset=iso-8859-1\r\n",
            "Content-Transfer-Encoding: quoted-printable\r\n",
            "\r\n",
            "Sch=F6ne Gr=FC=DFe\r\n",
            "--alt\r\n",
            "Content-Type: text/html; charset=utf-8\r\n",
            "\r\n",
            "<p>Sch\u{f6}ne</p>\r\n",
            "--alt--\r\n",
            "--outer\r\n",
            "Content-Type: application/pdf; name=\"a.pdf\"\r\n",
            "Content-Disposition: attachment; filename=\"../../etc/r\u{e9}sum\u{e9}.pdf\"\r\n",
            "Content-Transfer-Encoding: base64\r\n",
            "\r\n",
            "JVBERi0xLjQK\r\n",
            "--outer\r\n",
            "Content-Type: message/rfc822\r\n",
            "\r\n",
            "Subject: inner\r\n",
            "\r\n",
            "inner body\r\n",
            "--outer--\r\n",
        );
        let p = parse(raw.as_bytes()).ok_or("not parsed")?;
        assert_eq!(p.subject, "Grüße ✓");
        assert_eq!(
            p.from_name,
            Some(("Jürgen".to_owned(), "j@example.org".to_owned()))
        );
        assert_eq!(p.text.as_deref().map(str::trim), Some("Schöne Grüße"));
        assert!(
            p.html
                .as_deref()
                .is_some_and(|h| h.contains("<p>Schöne</p>"))
        );
        assert_eq!(p.attachments.len(), 2, "{:?}", p.attachments);
        assert_eq!(p.attachments[0].filename, "résumé.pdf");
        assert_eq!(p.attachments[0].content_type, "application/pdf");
        assert_eq!(p.attachments[0].bytes, b"%PDF-1.4\n");
        assert_eq!(p.attachments[1].filename, "inner.eml");
        assert_eq!(p.attachments[1].content_type, "message/rfc822");
        assert!(
            String::from_utf8_lossy(&p.attachments[1].bytes).contains("inner body"),
            "the nested message is kept whole"
        );
        Ok(())
    }

    #[test]
    fn plain_message_and_garbage() {
        let p = parse(b"Subject: hi\r\n\r\nhello\r\n");
        assert_eq!(p.as_ref().map(|p| p.subject.as_str()), Some("hi"));
        assert_eq!(
            p.as_ref().and_then(|p| p.text.as_deref()).map(str::trim),
            Some("hello")
        );
        assert!(p.is_some_and(|p| p.html.is_none() && p.attachments.is_empty()));
        assert!(parse(b"").is_none());
    }

    #[test]
    fn names_and_types_are_cleaned() {
        assert_eq!(content_type_of("Image/PNG"), "image/png");
        assert_eq!(
            content_type_of("text/html\r\nX: y"),
            "application/octet-stream"
        );
        assert_eq!(content_type_of("nonsense"), "application/octet-stream");
    }
}
