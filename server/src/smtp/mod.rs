//! The inbound SMTP listener: organisations' MTAs relay mail that cannot travel under forced
//! TLS to Sealpost as a smarthost (DESIGN.md flow 1).
//!
//! Layout: [`session`] is the protocol state machine, generic over any
//! `AsyncRead + AsyncWrite` stream (one file per verb group, tested over
//! `tokio::io::duplex`); [`reply`] holds every reply as a typed constant; [`policy`] decides
//! who may relay; [`mime`] turns the DATA into parts and submits them through
//! [`crate::messages::Draft`] — the same domain function the HTTPS API uses;
//! [`crate::tls::certificate`] loads or generates the STARTTLS certificate; [`listener`] accepts connections, caps them and shuts
//! down gracefully.
//!
//! What this module must never do: relay for a client that neither authenticated nor comes
//! from an allowed network (no open relay, ever); accept credentials or content before TLS
//! unless the client is on loopback and the admin relaxed that; answer `250` to DATA before
//! the domain commit returned; log or audit a password or message content.

pub mod budget;
pub mod listener;
pub mod mime;
pub mod options;
pub mod policy;
pub mod reply;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::app::AppState;

pub use budget::{DataBudget, DataReservation};
pub use listener::{SmtpServer, serve};
pub use reply::Reply;
pub use session::{Outcome, Session, State};

/// Lines of a message may be at most this long, CRLF included (RFC 5321 4.5.3.1.6).
pub const MAX_DATA_LINE: usize = 1000;
/// Command lines may be at most this long. RFC 5321 4.5.3.1.4 asks for at least 512; AUTH
/// initial responses and SMTPUTF8 addresses need more.
pub const MAX_COMMAND_LINE: usize = 4096;
/// RFC 4954 section 4: AUTH exchange lines up to 12288 octets.
pub const MAX_AUTH_LINE: usize = 12288;
/// The server timeout while waiting for a command or a line of data (RFC 5321 4.5.3.2.7).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Errors (unknown commands, syntax, bad sequence, failed AUTH) before the session is closed.
pub const MAX_BAD_COMMANDS: u32 = 10;

/// Per-session limits, from the configuration (tests shorten the timeouts).
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest raw message (the DATA, after dot-unstuffing), advertised as SIZE.
    pub max_message_bytes: u64,
    pub max_recipients: usize,
    pub command_timeout: Duration,
    pub max_bad_commands: u32,
    /// Our name in the greeting and the EHLO reply.
    pub hostname: String,
    /// Memory all sessions together may hold for messages being received.
    pub data_memory_bytes: u64,
    /// How long a session may last before it authenticates.
    pub unauthenticated_timeout: Duration,
    /// Commands a session may send before it authenticates.
    pub unauthenticated_max_commands: u32,
}

impl Limits {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            max_message_bytes: config.max_message_bytes,
            max_recipients: config.max_recipients as usize,
            command_timeout: COMMAND_TIMEOUT,
            max_bad_commands: MAX_BAD_COMMANDS,
            hostname: config.base_url.host_name(),
            data_memory_bytes: config.smtp_data_memory_bytes,
            unauthenticated_timeout: Duration::from_secs(
                config.smtp_unauthenticated_timeout_secs.into(),
            ),
            unauthenticated_max_commands: config.smtp_unauthenticated_max_commands,
        }
    }
}

/// What every session of one server shares. Cheap to clone.
#[derive(Clone)]
pub struct SmtpContext {
    pub app: AppState,
    /// `None`: STARTTLS is not offered (no certificate could be loaded).
    pub tls: Option<TlsAcceptor>,
    pub limits: Arc<Limits>,
    /// Becomes `true` when the server shuts down: idle sessions close with `421`, sessions in
    /// the middle of a DATA transfer finish it first.
    pub shutdown: watch::Receiver<bool>,
    /// Memory for messages being received, shared by all sessions: see [`DataBudget`].
    pub data_budget: DataBudget,
}

impl std::fmt::Debug for SmtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpContext")
            .field("tls", &self.tls.is_some())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl SmtpContext {
    /// A context that never shuts down, for tests and one-off sessions.
    pub fn new(app: AppState, tls: Option<TlsAcceptor>, limits: Limits) -> Self {
        // The sender is dropped at once: sessions read that as "no shutdown will ever come".
        let (_, shutdown) = watch::channel(false);
        Self::with_shutdown(app, tls, limits, shutdown)
    }

    /// A context whose sessions close when `shutdown` becomes `true`.
    pub fn with_shutdown(
        app: AppState,
        tls: Option<TlsAcceptor>,
        limits: Limits,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            app,
            tls,
            data_budget: DataBudget::new(limits.data_memory_bytes),
            limits: Arc::new(limits),
            shutdown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Limits;
    use crate::config::{Config, ConfigError};

    fn hostname_of(base_url: &str) -> Result<String, ConfigError> {
        let config = Config::builder().set("base_url", base_url).build()?;
        Ok(Limits::from_config(&config).hostname)
    }

    #[test]
    fn hostname_from_base_url() -> Result<(), ConfigError> {
        assert_eq!(
            hostname_of("https://pickup.example.org")?,
            "pickup.example.org"
        );
        assert_eq!(hostname_of("http://127.0.0.1:8080/x")?, "127.0.0.1");
        assert_eq!(hostname_of("https://[::1]:8443")?, "::1");
        // A base URL without a host is refused, so there is always one.
        assert!(hostname_of("https://").is_err());
        Ok(())
    }
}
