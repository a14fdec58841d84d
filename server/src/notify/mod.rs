//! Outbound mail: recipient notifications, one-time codes, and audit checkpoints for a witness.
//!
//! A mail is "sent" only when the transport has taken responsibility for it: the file is
//! fsync'd into the outbox, or the relay answered 250 to the end of DATA. Callers acknowledge
//! a submission only after that (invariant 3).
//!
//! Link secrets and codes appear only inside the mail handed to the transport: never in a log
//! line, an error or a `Debug` output (invariant 2). Relays are reached over TLS, verified,
//! except on loopback (invariant 5). The file transport, for development, keeps them on disk
//! in a private outbox for a bounded time (`outbox.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use askama::Template;
use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::TlsParameters;
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::config::{Config, Outbound};
use relay::{Relay, RelayTls};

pub mod outbox;
mod relay;

/// Why a mail was not sent. The text never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("outbound mail is misconfigured: {0}")]
    Config(String),
    #[error("could not build the email: {0}")]
    Build(String),
    #[error("the outbound relay refused or failed: {message}")]
    Transport { message: String, temporary: bool },
}

impl NotifyError {
    /// Whether trying again later may succeed (a 4xx reply, a lost connection, a full disk).
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Transport { temporary, .. } => *temporary,
            Self::Config(_) | Self::Build(_) => false,
        }
    }
}

enum Transport {
    /// `.eml` files, fsync'd, in this directory.
    File(PathBuf),
    Smtp(Relay),
}

struct Inner {
    transport: Transport,
    from: Mailbox,
}

/// Sends Sealpost's own mail. Cheap to clone.
#[derive(Clone)]
pub struct Mailer(Arc<Inner>);

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.0.transport {
            Transport::File(ref dir) => format!("file:{}", dir.display()),
            Transport::Smtp(_) => "smtp".to_owned(),
        };
        f.debug_struct("Mailer")
            .field("transport", &kind)
            .field("from", &self.0.from.email.to_string())
            .finish()
    }
}

/// A notification that a message is waiting. Its `Debug` hides the secret.
pub struct Notification<'a> {
    pub to: &'a str,
    pub sender_name: Option<&'a str>,
    pub sender_address: &'a str,
    /// `<base>/p/<pickup id>`, without the fragment.
    pub pickup_url: &'a str,
    pub link_secret: &'a str,
    pub expires_at: OffsetDateTime,
    pub passphrase_required: bool,
}

impl std::fmt::Debug for Notification<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notification")
            .field("to", &self.to)
            .field("pickup_url", &self.pickup_url)
            .finish_non_exhaustive()
    }
}

/// A one-time code. Its `Debug` hides the code.
pub struct CodeMail<'a> {
    pub to: &'a str,
    pub code: &'a str,
    pub pickup_url: &'a str,
    pub valid_minutes: u32,
}

impl std::fmt::Debug for CodeMail<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeMail")
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

#[derive(Template)]
#[template(path = "email/notification.txt", escape = "none")]
struct NotificationText<'a> {
    sender: &'a str,
    link: &'a str,
    secret: &'a str,
    expires: &'a str,
    passphrase_required: bool,
}

#[derive(Template)]
#[template(path = "email/notification.html")]
struct NotificationHtml<'a> {
    sender: &'a str,
    link: &'a str,
    secret: &'a str,
    expires: &'a str,
    passphrase_required: bool,
}

#[derive(Template)]
#[template(path = "email/code.txt", escape = "none")]
struct CodeText<'a> {
    code: &'a str,
    valid_minutes: u32,
}

#[derive(Template)]
#[template(path = "email/code.html")]
struct CodeHtml<'a> {
    code: &'a str,
    valid_minutes: u32,
}

/// Whether `host` is on this machine, where a relay may be reached without TLS.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// "25 December 2026, 14:00 UTC".
fn human_date(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[day padding:none] [month repr:long] [year], [hour]:[minute] UTC"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| t.to_string())
}

impl Mailer {
    /// The mailer the configuration names. The sender address is `sealpost@<base_url host>`.
    pub fn from_config(config: &Config) -> Result<Self, NotifyError> {
        // An IP address is no mail domain.
        let host = config.base_url.url().domain().unwrap_or("localhost");
        let from = format!("Sealpost <sealpost@{host}>");
        Self::new(&config.outbound, &config.outbox_dir(), &from)
    }

    pub fn new(outbound: &Outbound, outbox: &Path, from: &str) -> Result<Self, NotifyError> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| NotifyError::Config(format!("invalid sender address: {e}")))?;
        let transport = match outbound {
            Outbound::File => Transport::File(outbox.to_path_buf()),
            Outbound::Smtp {
                implicit_tls,
                host,
                port,
                username,
                password,
            } => {
                let tls = if is_loopback(host) {
                    RelayTls::None
                } else {
                    let params = TlsParameters::new(host.clone())
                        .map_err(|e| NotifyError::Config(format!("TLS: {e}")))?;
                    if *implicit_tls {
                        RelayTls::Implicit(params)
                    } else {
                        RelayTls::StartTls(params)
                    }
                };
                let credentials = username.as_ref().map(|user| {
                    let pass = password
                        .as_ref()
                        .map(|p| p.expose_secret().to_owned())
                        .unwrap_or_default();
                    Credentials::new(user.clone(), pass)
                });
                Transport::Smtp(Relay::new(host.clone(), *port, tls, credentials))
            }
        };
        Ok(Self(Arc::new(Inner { transport, from })))
    }

    /// Tell a recipient that a message is waiting, with their link and access code.
    pub async fn send_notification(&self, n: &Notification<'_>) -> Result<(), NotifyError> {
        let sender = match n.sender_name {
            Some(name) if !name.trim().is_empty() => {
                format!("{} <{}>", name.trim(), n.sender_address)
            }
            _ => n.sender_address.to_owned(),
        };
        let link = Zeroizing::new(format!("{}#k={}", n.pickup_url, n.link_secret));
        let expires = human_date(n.expires_at);
        let render = |e: askama::Error| NotifyError::Build(e.to_string());
        let text = Zeroizing::new(
            NotificationText {
                sender: &sender,
                link: &link,
                secret: n.link_secret,
                expires: &expires,
                passphrase_required: n.passphrase_required,
            }
            .render()
            .map_err(render)?,
        );
        let html = Zeroizing::new(
            NotificationHtml {
                sender: &sender,
                link: &link,
                secret: n.link_secret,
                expires: &expires,
                passphrase_required: n.passphrase_required,
            }
            .render()
            .map_err(render)?,
        );
        // Generic on purpose: the original subject may itself carry protected information.
        let subject = format!("A secure message from {sender} is waiting for you");
        self.send(n.to, &subject, &text, &html).await
    }

    /// Send a one-time verification code.
    pub async fn send_code(&self, c: &CodeMail<'_>) -> Result<(), NotifyError> {
        let render = |e: askama::Error| NotifyError::Build(e.to_string());
        let text = Zeroizing::new(
            CodeText {
                code: c.code,
                valid_minutes: c.valid_minutes,
            }
            .render()
            .map_err(render)?,
        );
        let html = Zeroizing::new(
            CodeHtml {
                code: c.code,
                valid_minutes: c.valid_minutes,
            }
            .render()
            .map_err(render)?,
        );
        self.send(c.to, "Your Sealpost verification code", &text, &html)
            .await
    }

    /// Mail a signed audit checkpoint to a witness (`checkpoint_mail_to`): the note is the
    /// whole plain-text body, base64-encoded on the wire, so that the body as decoded is the
    /// checkpoint byte for byte, LF line ends and all.
    pub async fn send_checkpoint(
        &self,
        to: &str,
        origin: &str,
        seq: i64,
        note: &str,
    ) -> Result<(), NotifyError> {
        // Bytes, not a `String`: lettre would turn LF into CR LF in a text body.
        let body =
            Body::new_with_encoding(note.as_bytes().to_vec(), ContentTransferEncoding::Base64)
                .map_err(|_| NotifyError::Build("cannot encode the checkpoint".to_owned()))?;
        let body = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(body);
        let message = self
            .builder(to, &format!("Audit checkpoint: {origin} at seq {seq}"))?
            .singlepart(body)
            .map_err(|e| NotifyError::Build(e.to_string()))?;
        self.deliver(message).await
    }

    /// A message from Sealpost to `to`, marked as sent automatically.
    fn builder(
        &self,
        to: &str,
        subject: &str,
    ) -> Result<lettre::message::MessageBuilder, NotifyError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| NotifyError::Build(format!("invalid recipient address: {e}")))?;
        Ok(Message::builder()
            .from(self.0.from.clone())
            .to(to)
            .subject(subject)
            .date_now()
            .message_id(None)
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            )))
    }

    async fn send(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        html: &str,
    ) -> Result<(), NotifyError> {
        let message = self
            .builder(to, subject)?
            .multipart(MultiPart::alternative_plain_html(
                text.to_owned(),
                html.to_owned(),
            ))
            .map_err(|e| NotifyError::Build(e.to_string()))?;
        self.deliver(message).await
    }

    /// Hand `message` to the transport; `Ok` once it took responsibility for it.
    async fn deliver(&self, message: Message) -> Result<(), NotifyError> {
        match &self.0.transport {
            Transport::File(dir) => {
                let bytes = Zeroizing::new(message.formatted());
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || outbox::write(&dir, &bytes))
                    .await
                    .map_err(|e| NotifyError::Transport {
                        message: e.to_string(),
                        temporary: true,
                    })?
                    .map_err(|e| NotifyError::Transport {
                        message: format!("cannot write to the outbox: {e}"),
                        temporary: true,
                    })
            }
            Transport::Smtp(relay) => {
                let bytes = Zeroizing::new(message.formatted());
                relay.send(message.envelope(), &bytes).await
            }
        }
    }
}

#[cfg(test)]
mod tests;
