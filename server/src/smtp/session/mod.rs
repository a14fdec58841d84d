//! The SMTP session: a state machine over any `AsyncRead + AsyncWrite` stream.
//!
//! [`Session::run`] reads command lines, parses them with `smtp-proto` and hands each verb to
//! its own file (`ehlo.rs`, `starttls.rs`, `auth.rs`, `mail.rs`, `rcpt.rs`, `data.rs`,
//! `misc.rs`). STARTTLS changes the stream's type, so the session returns
//! [`Outcome::StartTls`] with the raw stream and its [`State`]; the caller runs the handshake
//! and a new session over the TLS stream (see [`crate::smtp::listener`]).
//!
//! A session that has not authenticated (and is not from `smtp_allowed_networks`) is bounded
//! ([`Unauthenticated`]): a lifetime and a number of commands, then `421 4.7.0` and close;
//! keeping a connection alive with NOOP does not extend either.
//!
//! Replies are queued and written when the session is about to wait for input, which batches
//! the replies to a pipelined group of commands (RFC 2920) and never delays a reply the client
//! waits for.

mod auth;
mod data;
mod ehlo;
mod mail;
mod misc;
mod rcpt;
mod starttls;

#[cfg(test)]
mod tests;

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use smtp_proto::{Error as ProtoError, Request};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::time::Instant;
use uuid::Uuid;

use super::reply::{self, Reply};
use super::{MAX_COMMAND_LINE, SmtpContext, policy};
use crate::messages::{EmailAddress, RequestCtx};
use crate::net::IpSlot;

/// What the client said in EHLO/HELO.
#[derive(Debug, Clone)]
pub struct Helo {
    pub name: String,
    /// EHLO (true) or HELO (false).
    pub esmtp: bool,
}

/// Who the client proved to be with SMTP AUTH.
#[derive(Debug, Clone)]
pub struct Identity {
    pub relay_id: Uuid,
    pub name: String,
}

/// A mail transaction in progress (RFC 5321 section 3.3).
#[derive(Debug, Clone)]
pub struct Transaction {
    pub from: EmailAddress,
    pub rcpts: Vec<EmailAddress>,
}

/// The bounds on a session that has not authenticated yet: by when it must have, the
/// commands it may still send, and its place in the listener's per-IP count of such sessions
/// (given back when it authenticates or ends).
#[derive(Debug)]
pub struct Unauthenticated {
    deadline: Instant,
    commands_left: u32,
    _slot: Option<IpSlot>,
}

impl Unauthenticated {
    fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// Everything a session knows; survives the switch to TLS in part ([`State::after_tls`]).
#[derive(Debug)]
pub struct State {
    pub peer: IpAddr,
    pub tls: bool,
    pub helo: Option<Helo>,
    pub auth: Option<Identity>,
    pub tx: Option<Transaction>,
    /// Errors so far; the session closes at `limits.max_bad_commands`.
    pub bad_commands: u32,
    /// `Some` until the session authenticates; `None` from the start for clients of
    /// `smtp_allowed_networks`, which relay without AUTH.
    pub unauthenticated: Option<Unauthenticated>,
}

impl State {
    /// A new connection's state. Unless `peer` is in `smtp_allowed_networks`, the session is
    /// bounded until it authenticates (`smtp_unauthenticated_timeout_secs` from now,
    /// `smtp_unauthenticated_max_commands`); `slot` is its place in the listener's per-IP
    /// count of unauthenticated sessions.
    pub fn new(peer: IpAddr, tls: bool, ctx: &SmtpContext, slot: Option<IpSlot>) -> Self {
        let peer = peer.to_canonical();
        let unauthenticated =
            (!policy::allowed_network(&ctx.app.config, peer)).then(|| Unauthenticated {
                deadline: Instant::now() + ctx.limits.unauthenticated_timeout,
                commands_left: ctx.limits.unauthenticated_max_commands,
                _slot: slot,
            });
        Self {
            peer,
            tls,
            helo: None,
            auth: None,
            tx: None,
            bad_commands: 0,
            unauthenticated,
        }
    }

    /// By when an unauthenticated session must have authenticated; `None` once it has.
    pub fn unauthenticated_deadline(&self) -> Option<Instant> {
        self.unauthenticated.as_ref().map(|bounds| bounds.deadline)
    }

    /// RFC 3207 section 4.2: after the handshake the server discards all knowledge obtained
    /// from the client (EHLO, AUTH, transaction). The error count and the bounds on an
    /// unauthenticated session stay.
    pub fn after_tls(self) -> Self {
        Self {
            tls: true,
            helo: None,
            auth: None,
            tx: None,
            ..self
        }
    }

    /// Who is asking, for the audit log and the domain.
    pub fn request_ctx(&self) -> RequestCtx {
        let actor = match &self.auth {
            Some(id) => format!("relay:{}", id.name),
            None => "smtp:allowed-network".to_owned(),
        };
        let helo = self.helo.as_ref().map_or("", |h| h.name.as_str());
        RequestCtx {
            ip: Some(self.peer),
            user_agent: Some(format!(
                "smtp helo={helo} tls={}",
                if self.tls { "yes" } else { "no" }
            )),
            actor,
        }
    }
}

/// How a session ended.
#[derive(Debug)]
pub enum Outcome<S> {
    /// QUIT, end of input, timeout, shutdown or too many errors: the connection is done.
    Closed,
    /// The client asked for STARTTLS and got `220`: run the handshake on the stream, then a
    /// new session with [`State::after_tls`].
    StartTls(S, State),
}

/// What a verb handler tells the loop.
pub(crate) enum Flow {
    Continue,
    Quit,
    StartTls,
}

/// One line read from the client.
pub(crate) enum Line {
    /// A whole line, with its line ending.
    Complete(Vec<u8>),
    /// Longer than allowed; it was read to its end and dropped. `crlf`: it ended in CRLF.
    TooLong { crlf: bool },
    /// The client closed the connection (possibly in the middle of a line).
    Eof,
}

/// What waiting for the next command gave.
enum Next {
    Line(Line),
    Timeout,
    Shutdown,
}

/// An SMTP session over `S`.
pub struct Session<S> {
    io: BufReader<S>,
    out: Vec<u8>,
    pub(crate) ctx: SmtpContext,
    pub(crate) st: State,
}

impl<S> std::fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.st)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub fn new(stream: S, ctx: SmtpContext, state: State) -> Self {
        Self {
            io: BufReader::with_capacity(16 * 1024, stream),
            out: Vec::with_capacity(1024),
            ctx,
            st: state,
        }
    }

    /// Serve the session until it ends. `greet`: send the `220` greeting first (not after
    /// STARTTLS, where the client speaks first with EHLO).
    pub async fn run(mut self, greet: bool) -> io::Result<Outcome<S>> {
        if greet {
            let greeting = format!("{} ESMTP Sealpost", self.ctx.limits.hostname);
            // RFC 5321 4.3.1: the greeting, 220.
            self.reply(Reply::plain(220, greeting));
        }
        loop {
            if self.st.bad_commands >= self.ctx.limits.max_bad_commands {
                self.reply(reply::TOO_MANY_ERRORS);
                self.flush().await?;
                policy::refuse(&self.ctx.app, &self.st, "too many errors", None).await;
                return Ok(Outcome::Closed);
            }
            if self
                .st
                .unauthenticated
                .as_ref()
                .is_some_and(Unauthenticated::expired)
            {
                return self
                    .close_unauthenticated(reply::UNAUTHENTICATED_TIMEOUT)
                    .await;
            }
            let line = match self.next_command().await? {
                Next::Line(Line::Complete(line)) => Some(line),
                Next::Line(Line::TooLong { .. }) => None,
                Next::Line(Line::Eof) => return Ok(Outcome::Closed),
                Next::Timeout => {
                    if self
                        .st
                        .unauthenticated
                        .as_ref()
                        .is_some_and(Unauthenticated::expired)
                    {
                        return self
                            .close_unauthenticated(reply::UNAUTHENTICATED_TIMEOUT)
                            .await;
                    }
                    self.reply(reply::TIMEOUT);
                    self.flush().await?;
                    return Ok(Outcome::Closed);
                }
                Next::Shutdown => {
                    self.reply(reply::SHUTTING_DOWN);
                    self.flush().await?;
                    return Ok(Outcome::Closed);
                }
            };
            if let Some(bounds) = &mut self.st.unauthenticated {
                if bounds.commands_left == 0 {
                    return self
                        .close_unauthenticated(reply::UNAUTHENTICATED_TOO_MANY_COMMANDS)
                        .await;
                }
                bounds.commands_left -= 1;
            }
            let flow = match line {
                Some(line) => self.dispatch(&line).await?,
                None => {
                    self.error(reply::COMMAND_TOO_LONG);
                    Flow::Continue
                }
            };
            if self.st.auth.is_some() {
                // Authenticated: no longer bounded, and its per-IP place is given back.
                self.st.unauthenticated = None;
            }
            match flow {
                Flow::Continue => {}
                Flow::Quit => {
                    self.flush().await?;
                    return Ok(Outcome::Closed);
                }
                Flow::StartTls => {
                    self.flush().await?;
                    if !self.io.buffer().is_empty() {
                        // RFC 3207 section 5: anything pipelined after STARTTLS arrived in
                        // clear and must not be acted upon after the handshake.
                        tracing::info!(peer = %self.st.peer, "discarding input pipelined after STARTTLS");
                    }
                    return Ok(Outcome::StartTls(self.io.into_inner(), self.st));
                }
            }
        }
    }

    async fn dispatch(&mut self, line: &[u8]) -> io::Result<Flow> {
        let request = match Request::parse(&mut line.iter()) {
            Ok(request) => request,
            Err(e) => {
                self.error(parse_error_reply(&e));
                return Ok(Flow::Continue);
            }
        };
        Ok(match request {
            Request::Ehlo { host } => self.ehlo(&host, true),
            Request::Helo { host } => self.ehlo(&host, false),
            Request::StartTls => self.starttls(),
            Request::Auth {
                mechanism,
                initial_response,
            } => {
                let initial = initial_response.into_owned();
                self.auth(mechanism, initial).await?
            }
            Request::Mail { from } => self.mail(from).await,
            Request::Rcpt { to } => self.rcpt(to),
            Request::Data => self.data().await?,
            Request::Rset => self.rset(),
            Request::Noop { .. } => self.noop(),
            Request::Quit => self.quit(),
            Request::Vrfy { .. } => self.vrfy(),
            Request::Help { .. } => self.help(),
            Request::Lhlo { .. } => {
                // LMTP's greeting is not SMTP (RFC 2033).
                self.error(reply::UNKNOWN_COMMAND);
                Flow::Continue
            }
            Request::Bdat { .. }
            | Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => {
                self.error(reply::NOT_IMPLEMENTED);
                Flow::Continue
            }
        })
    }

    /// End an unauthenticated session that went beyond its bounds. Logged, not audited: a
    /// stranger must not be able to grow the audit trail by idling.
    async fn close_unauthenticated(&mut self, reply: Reply) -> io::Result<Outcome<S>> {
        tracing::info!(peer = %self.st.peer, reason = %reply.text, "closing an unauthenticated SMTP session");
        self.reply(reply);
        self.flush().await?;
        Ok(Outcome::Closed)
    }

    /// How long to wait for the client's next line: the command timeout, or less when an
    /// unauthenticated session's time runs out sooner.
    pub(crate) fn read_timeout(&self) -> Duration {
        let timeout = self.ctx.limits.command_timeout;
        match &self.st.unauthenticated {
            Some(bounds) => timeout.min(bounds.deadline.saturating_duration_since(Instant::now())),
            None => timeout,
        }
    }

    /// Queue a reply.
    pub(crate) fn reply(&mut self, reply: Reply) {
        self.out.extend_from_slice(reply.to_wire().as_bytes());
    }

    /// Queue a raw, already formatted reply (multi-line EHLO).
    pub(crate) fn reply_raw(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    /// Queue an error reply that counts toward the session's error limit.
    pub(crate) fn error(&mut self, reply: Reply) {
        self.st.bad_commands += 1;
        self.reply(reply);
    }

    /// Write every queued reply.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            let stream = self.io.get_mut();
            stream.write_all(&self.out).await?;
            stream.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    async fn next_command(&mut self) -> io::Result<Next> {
        let timeout = self.read_timeout();
        let mut shutdown = self.ctx.shutdown.clone();
        if *shutdown.borrow() {
            return Ok(Next::Shutdown);
        }
        tokio::select! {
            read = tokio::time::timeout(timeout, self.read_line(MAX_COMMAND_LINE)) => match read {
                Ok(line) => Ok(Next::Line(line?)),
                Err(_) => Ok(Next::Timeout),
            },
            () = shutdown_signalled(&mut shutdown) => Ok(Next::Shutdown),
        }
    }

    /// Read one line of at most `max` octets (line ending included), flushing queued replies
    /// first whenever the read would wait for the client.
    pub(crate) async fn read_line(&mut self, max: usize) -> io::Result<Line> {
        let mut line = Vec::new();
        let mut too_long = false;
        let mut last = 0u8;
        loop {
            if self.io.buffer().is_empty() {
                self.flush().await?;
            }
            let available = self.io.fill_buf().await?;
            if available.is_empty() {
                return Ok(Line::Eof);
            }
            let (chunk, done) = match memchr_lf(available) {
                Some(i) => (&available[..=i], true),
                None => (available, false),
            };
            let used = chunk.len();
            if !too_long {
                if line.len() + used > max {
                    too_long = true;
                    line = Vec::new();
                } else {
                    line.extend_from_slice(chunk);
                }
            }
            let crlf = if used >= 2 {
                chunk[used - 2] == b'\r'
            } else {
                last == b'\r'
            };
            last = chunk[used - 1];
            self.io.consume(used);
            if done {
                return Ok(if too_long {
                    Line::TooLong { crlf }
                } else {
                    Line::Complete(line)
                });
            }
        }
    }
}

fn memchr_lf(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

async fn shutdown_signalled(rx: &mut tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|down| *down).await.is_err() {
        // No sender: this context never shuts down.
        std::future::pending::<()>().await;
    }
}

/// The reply to a command line `smtp-proto` could not parse.
fn parse_error_reply(e: &ProtoError) -> Reply {
    match e {
        ProtoError::UnknownCommand => reply::UNKNOWN_COMMAND,
        ProtoError::InvalidSenderAddress => reply::BAD_SENDER,
        ProtoError::InvalidRecipientAddress => reply::BAD_RECIPIENT,
        ProtoError::SyntaxError { syntax } => {
            reply::SYNTAX_ERROR.with_text(format!("Syntax: {syntax}"))
        }
        ProtoError::InvalidParameter { param } => {
            reply::SYNTAX_ERROR.with_text(format!("Invalid value for parameter {param}"))
        }
        ProtoError::UnsupportedParameter { param } => {
            let param: String = param
                .chars()
                .filter(char::is_ascii_graphic)
                .take(40)
                .collect();
            reply::PARAMETERS_NOT_RECOGNIZED.with_text(format!("Unsupported parameter {param}"))
        }
        ProtoError::NeedsMoreData { .. }
        | ProtoError::ResponseTooLong
        | ProtoError::InvalidResponse { .. } => reply::SYNTAX_ERROR,
    }
}
