//! The submission policy: every rule a submission must meet, whichever way it arrives (the
//! HTTPS API, the compose page, SMTP). Each rule is written once, here, and refuses with a
//! [`Refusal`] that names what is wrong; the web and SMTP layers only translate a refusal into
//! their reply (an HTTP status and machine code, an SMTP code).
//!
//! Callers run the cheap checks before they start a [`super::Draft`], so a bad request costs
//! nothing; the draft applies the same rules again while parts stream in and at commit, so no
//! path can skip one.

use std::borrow::Cow;

use super::{AddressError, EmailAddress, Source};
use crate::config::Config;

/// Why a submission is refused: the request is wrong and retrying it unchanged will not help
/// (HTTP 422, SMTP 554). The text is for the person or program that sent it; it never holds
/// message content or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A required field is missing.
    #[error("`{field}` is required: {what}")]
    MissingField {
        field: Cow<'static, str>,
        what: &'static str,
    },
    /// More recipients than the limit.
    #[error("at most {max} recipients are allowed, got {got}")]
    TooManyRecipients { max: u32, got: usize },
    /// A recipient address that is not a valid mailbox.
    #[error(transparent)]
    InvalidAddress(#[from] AddressError),
    /// An expiry of zero days or over the maximum.
    #[error("`expires_in_days` must be between 1 and {max}, got {got}")]
    InvalidExpiry { got: u32, max: u32 },
    /// An expiry that is not a whole number of days.
    #[error("`expires_in_days` must be a whole number of days")]
    ExpiryNotANumber,
    /// More attachments than the limit.
    #[error("at most {max} attachments are allowed")]
    TooManyAttachments { max: u32 },
    /// An attachment's declared content type is not a plain MIME type.
    #[error("an attachment's content type is not a valid MIME type")]
    InvalidContentType,
    /// An attachment's bytes could not be decoded.
    #[error("`{field}` is not valid base64")]
    InvalidAttachment { field: String },
    /// A field whose value cannot be used (too long, not UTF-8, given twice, not a number).
    #[error("`{field}` {reason}")]
    InvalidField {
        field: String,
        reason: Cow<'static, str>,
    },
    /// A form field this endpoint does not take.
    #[error("unknown form field `{0}`")]
    UnknownField(String),
    /// A second text or HTML body.
    #[error("only one body of each kind is allowed")]
    DuplicateBody,
    /// A passphrase was asked for but is empty.
    #[error("the passphrase must not be empty")]
    EmptyPassphrase,
    /// Data relayed over SMTP that has no header at all.
    #[error("the message has no header: not an RFC 5322 message")]
    NotAMessage,
}

impl Refusal {
    /// A required field is missing.
    pub fn missing(field: impl Into<Cow<'static, str>>, what: &'static str) -> Self {
        Self::MissingField {
            field: field.into(),
            what,
        }
    }

    /// A field whose value cannot be used; `field` is cut to a readable length.
    pub fn invalid_field(field: &str, reason: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidField {
            field: field.chars().take(64).collect(),
            reason: reason.into(),
        }
    }
}

/// The size, count and expiry limits one submission is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of all parts together.
    pub max_bytes: u64,
    pub max_attachments: u32,
    pub max_recipients: u32,
    /// Expiry when the sender names none.
    pub default_expiry_days: u32,
    pub max_expiry_days: u32,
}

impl Limits {
    /// The configured limits, as the HTTPS API and compose page apply them.
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_bytes: config.max_message_bytes,
            max_attachments: config.max_attachments,
            max_recipients: config.max_recipients,
            default_expiry_days: config.default_expiry_days,
            max_expiry_days: config.max_expiry_days,
        }
    }

    /// The limits of a draft from `source`. The SMTP listener enforces `max_message_bytes` on
    /// the raw message while reading it; its draft then stores the decoded parts *and* the
    /// original message, so the byte budget is widened to hold both (decoded parts are never
    /// larger than their encoded form, but charset conversion to UTF-8 can up to double text),
    /// and the attachment count to hold the extra original.
    pub fn for_source(config: &Config, source: Source) -> Self {
        let limits = Self::from_config(config);
        match source {
            Source::Api | Source::Web => limits,
            Source::Smtp => Self {
                max_bytes: limits.max_bytes.saturating_mul(3),
                max_attachments: limits.max_attachments.saturating_add(1),
                ..limits
            },
        }
    }

    /// Parse the recipient list: at least one address, at most `max_recipients`, each valid.
    /// Blank entries are ignored.
    pub fn recipients(&self, to: &[impl AsRef<str>]) -> Result<Vec<EmailAddress>, Refusal> {
        let given: Vec<&str> = to
            .iter()
            .map(AsRef::as_ref)
            .filter(|a| !a.trim().is_empty())
            .collect();
        if given.is_empty() {
            return Err(Refusal::missing("to", "at least one recipient address"));
        }
        self.recipient_count(to.len())?;
        given
            .into_iter()
            .map(|a| EmailAddress::parse(a).map_err(Refusal::from))
            .collect()
    }

    /// Refuse a list of `count` recipients when it is over the limit.
    pub fn recipient_count(&self, count: usize) -> Result<(), Refusal> {
        if count > self.max_recipients as usize {
            return Err(Refusal::TooManyRecipients {
                max: self.max_recipients,
                got: count,
            });
        }
        Ok(())
    }

    /// The expiry in days: the requested one if it is in range, else the default.
    pub fn expiry_days(&self, requested: Option<u32>) -> Result<u32, Refusal> {
        match requested {
            None => Ok(self.default_expiry_days),
            Some(days) if (1..=self.max_expiry_days).contains(&days) => Ok(days),
            Some(days) => Err(Refusal::InvalidExpiry {
                got: days,
                max: self.max_expiry_days,
            }),
        }
    }

    /// Refuse `count` attachments when it is over the limit.
    pub fn attachment_count(&self, count: usize) -> Result<(), Refusal> {
        if count > self.max_attachments as usize {
            return Err(Refusal::TooManyAttachments {
                max: self.max_attachments,
            });
        }
        Ok(())
    }
}

/// The content type a client declared for an attachment, checked to be a plain
/// `type/subtype[; params]` value; none declared is `application/octet-stream`.
pub fn declared_content_type(declared: Option<&str>) -> Result<String, Refusal> {
    let Some(ct) = declared.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok("application/octet-stream".to_owned());
    };
    let plausible =
        ct.len() <= 255 && ct.contains('/') && ct.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    if plausible {
        Ok(ct.to_owned())
    } else {
        Err(Refusal::InvalidContentType)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_bytes: 1000,
            max_attachments: 2,
            max_recipients: 3,
            default_expiry_days: 30,
            max_expiry_days: 90,
        }
    }

    #[test]
    fn recipients_need_at_least_one_valid_address() {
        assert!(matches!(
            limits().recipients(&["", "  "]),
            Err(Refusal::MissingField { .. })
        ));
        assert!(matches!(
            limits().recipients(&["not-an-address"]),
            Err(Refusal::InvalidAddress(_))
        ));
        assert_eq!(
            limits().recipients(&["a@example.org", ""]).map(|r| r.len()),
            Ok(1)
        );
    }

    #[test]
    fn recipients_over_the_limit_are_refused() {
        let four = ["a@x.org", "b@x.org", "c@x.org", "d@x.org"];
        assert_eq!(
            limits().recipients(&four),
            Err(Refusal::TooManyRecipients { max: 3, got: 4 })
        );
        assert_eq!(limits().recipients(&four[..3]).map(|r| r.len()), Ok(3));
    }

    #[test]
    fn expiry_defaults_and_stays_in_range() {
        assert_eq!(limits().expiry_days(None), Ok(30));
        assert_eq!(limits().expiry_days(Some(1)), Ok(1));
        assert_eq!(limits().expiry_days(Some(90)), Ok(90));
        assert_eq!(
            limits().expiry_days(Some(0)),
            Err(Refusal::InvalidExpiry { got: 0, max: 90 })
        );
        assert_eq!(
            limits().expiry_days(Some(91)),
            Err(Refusal::InvalidExpiry { got: 91, max: 90 })
        );
    }

    #[test]
    fn attachment_count() {
        assert_eq!(limits().attachment_count(2), Ok(()));
        assert_eq!(
            limits().attachment_count(3),
            Err(Refusal::TooManyAttachments { max: 2 })
        );
    }

    #[test]
    fn content_types() {
        assert!(declared_content_type(Some("application/pdf")).is_ok());
        assert_eq!(
            declared_content_type(None).ok().as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(
            declared_content_type(Some("text/plain\r\nX: y")),
            Err(Refusal::InvalidContentType)
        );
        assert_eq!(
            declared_content_type(Some("nonsense")),
            Err(Refusal::InvalidContentType)
        );
    }
}
