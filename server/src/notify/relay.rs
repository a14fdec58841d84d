//! The outbound SMTP relay: lettre's SMTP client over a small pool of reused connections.
//!
//! lettre's own transport writes the message and the final `CRLF . CRLF` in two writes. The
//! relay answers only after the second, which Nagle's algorithm holds back until the first is
//! acknowledged, and the relay delays that acknowledgement (about 40 ms on Linux): every
//! notification would wait for a delayed ACK. Here the dot-stuffed message and its terminator
//! go out in one write, through lettre's public `command`.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use zeroize::Zeroizing;

use super::NotifyError;

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 8;
const TIMEOUT: Duration = Duration::from_secs(60);

/// How the connection to the relay is secured.
pub(super) enum RelayTls {
    /// Loopback only: plain SMTP.
    None,
    /// STARTTLS, required: a relay that does not offer it is refused.
    StartTls(TlsParameters),
    /// TLS from the first byte (port 465).
    Implicit(TlsParameters),
}

pub(super) struct Relay {
    host: String,
    port: u16,
    tls: RelayTls,
    credentials: Option<Credentials>,
    hello: ClientId,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
}

impl Relay {
    pub(super) fn new(
        host: String,
        port: u16,
        tls: RelayTls,
        credentials: Option<Credentials>,
    ) -> Self {
        Self {
            host,
            port,
            tls,
            credentials,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Send `message` (a whole RFC 5322 message) and return once the relay accepted it.
    pub(super) async fn send(
        &self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<(), NotifyError> {
        let mut conn = self.checkout().await?;
        match transact(&mut conn, envelope, message).await {
            Ok(()) => {
                self.checkin(conn);
                Ok(())
            }
            Err(e) => {
                conn.abort().await;
                Err(e)
            }
        }
    }

    /// An idle connection that still answers `NOOP`, or a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, NotifyError> {
        loop {
            let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            match idle {
                Some(mut conn) => {
                    if conn.test_connected().await {
                        return Ok(conn);
                    }
                    conn.abort().await;
                }
                None => return self.connect().await,
            }
        }
    }

    fn checkin(&self, conn: AsyncSmtpConnection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, NotifyError> {
        let implicit = match &self.tls {
            RelayTls::Implicit(params) => Some(params.clone()),
            RelayTls::None | RelayTls::StartTls(_) => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(TIMEOUT),
            &self.hello,
            implicit,
            None,
        )
        .await
        .map_err(failure)?;
        if let RelayTls::StartTls(params) = &self.tls {
            if !conn.can_starttls() {
                conn.abort().await;
                return Err(NotifyError::Transport {
                    message: "the relay does not offer STARTTLS".into(),
                    temporary: true,
                });
            }
            conn.starttls(params.clone(), &self.hello)
                .await
                .map_err(failure)?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(failure)?;
        }
        Ok(conn)
    }
}

/// MAIL, RCPT, DATA, then the message and its terminator in one write.
async fn transact(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    message: &[u8],
) -> Result<(), NotifyError> {
    let mut params = Vec::new();
    let non_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(NotifyError::Transport {
                message: "the relay does not support SMTPUTF8 for this address".into(),
                temporary: false,
            });
        }
        params.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() {
        params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    conn.command(Mail::new(envelope.from().cloned(), params))
        .await
        .map_err(failure)?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), vec![]))
            .await
            .map_err(failure)?;
    }
    conn.command(Data).await.map_err(failure)?;
    let content = DotStuffed::new(message)?;
    conn.command(&content).await.map_err(failure)?;
    Ok(())
}

/// A message as sent after DATA: lines starting with "." get another, and it ends with
/// `CRLF . CRLF` (RFC 5321 4.5.2). Holds the content, so it is wiped when dropped.
struct DotStuffed(Zeroizing<String>);

impl DotStuffed {
    fn new(message: &[u8]) -> Result<Self, NotifyError> {
        let text = std::str::from_utf8(message)
            .map_err(|_| NotifyError::Build("the message is not UTF-8".into()))?;
        let mut out = Zeroizing::new(String::with_capacity(text.len() + 64));
        for line in text.split_inclusive('\n') {
            if line.starts_with('.') {
                out.push('.');
            }
            out.push_str(line);
        }
        if !out.ends_with("\r\n") {
            out.push_str("\r\n");
        }
        out.push_str(".\r\n");
        Ok(Self(out))
    }
}

impl fmt::Display for DotStuffed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A lettre error as a [`NotifyError`], naming the relay's reply code but nothing it said.
fn failure(e: lettre::transport::smtp::Error) -> NotifyError {
    NotifyError::Transport {
        temporary: !e.is_permanent(),
        message: e.status().map_or_else(
            || "connection or TLS failure".to_owned(),
            |code| format!("relay answered {code}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::DotStuffed;

    #[test]
    fn dot_stuffing_and_terminator() {
        let cases: [(&str, &str); 4] = [
            ("a\r\nb\r\n", "a\r\nb\r\n.\r\n"),
            ("a\r\n.b\r\n..\r\n", "a\r\n..b\r\n...\r\n.\r\n"),
            (".start", "..start\r\n.\r\n"),
            ("", "\r\n.\r\n"),
        ];
        for (input, expected) in cases {
            let stuffed = DotStuffed::new(input.as_bytes()).map(|d| d.to_string());
            assert_eq!(stuffed.ok().as_deref(), Some(expected), "{input:?}");
        }
    }
}
