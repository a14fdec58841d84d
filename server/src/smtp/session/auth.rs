//! AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms, against the relay
//! credentials made by `sealpost relay add`. Offered and accepted only over TLS (or from
//! loopback when the admin relaxed that), so passwords never cross the network in clear.

use std::io;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN};
use tokio::io::{AsyncRead, AsyncWrite};
use zeroize::Zeroizing;

use super::{Flow, Line, Session};
use crate::smtp::MAX_AUTH_LINE;
use crate::smtp::policy::{self, AuthResult};
use crate::smtp::reply::{self, Reply};

/// A SASL step's outcome.
enum Step {
    Data(Zeroizing<Vec<u8>>),
    /// Refused with this reply (cancelled, bad base64, line too long).
    Refused(Reply),
    /// The client went away or timed out.
    Closed,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(crate) async fn auth(&mut self, mechanism: u64, initial: String) -> io::Result<Flow> {
        let initial = Zeroizing::new(initial);
        if !self.st.helo.as_ref().is_some_and(|h| h.esmtp) {
            self.error(reply::BAD_SEQUENCE.with_text("Send EHLO first"));
            return Ok(Flow::Continue);
        }
        if self.st.auth.is_some() {
            // RFC 4954 section 4: AUTH once per session.
            self.error(reply::BAD_SEQUENCE.with_text("Already authenticated"));
            return Ok(Flow::Continue);
        }
        if self.st.tx.is_some() {
            self.error(
                reply::BAD_SEQUENCE.with_text("AUTH is not allowed during a mail transaction"),
            );
            return Ok(Flow::Continue);
        }
        if !policy::tls_satisfied(&self.ctx.app.config, &self.st) {
            self.error(reply::STARTTLS_FIRST);
            policy::refuse(&self.ctx.app, &self.st, "AUTH before STARTTLS", None).await;
            return Ok(Flow::Continue);
        }
        let credentials = match mechanism {
            AUTH_PLAIN => self.sasl_plain(&initial).await?,
            AUTH_LOGIN => self.sasl_login(&initial).await?,
            _ => {
                self.error(reply::UNSUPPORTED_MECHANISM);
                return Ok(Flow::Continue);
            }
        };
        let (name, password) = match credentials {
            Ok(c) => c,
            Err(Step::Refused(r)) => {
                self.error(r);
                return Ok(Flow::Continue);
            }
            Err(Step::Closed | Step::Data(_)) => return Ok(Flow::Quit),
        };
        match policy::authenticate(&self.ctx.app, &self.st, &name, password).await {
            AuthResult::Ok(identity) => {
                self.st.auth = Some(identity);
                self.reply(reply::AUTH_OK);
            }
            AuthResult::Failed => self.error(reply::AUTH_FAILED),
            AuthResult::Throttled(_) => {
                self.reply(reply::TOO_MANY_AUTH_FAILURES);
                return Ok(Flow::Quit);
            }
            AuthResult::Unavailable => self.reply(reply::AUTH_TEMPORARY),
        }
        Ok(Flow::Continue)
    }

    /// RFC 4616: `[authzid] NUL authcid NUL passwd`, as the initial response or after `334 `.
    async fn sasl_plain(
        &mut self,
        initial: &str,
    ) -> io::Result<Result<(String, Zeroizing<String>), Step>> {
        let data = if initial.is_empty() {
            match self.sasl_step("").await? {
                Step::Data(d) => d,
                other => return Ok(Err(other)),
            }
        } else {
            match decode(initial.as_bytes()) {
                Step::Data(d) => d,
                other => return Ok(Err(other)),
            }
        };
        let mut fields = data.split(|&b| b == 0);
        let (Some(authzid), Some(authcid), Some(passwd), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Ok(Err(Step::Refused(
                reply::SYNTAX_ERROR.with_text("Malformed PLAIN response"),
            )));
        };
        let (Ok(authzid), Ok(authcid), Ok(passwd)) = (
            std::str::from_utf8(authzid),
            std::str::from_utf8(authcid),
            std::str::from_utf8(passwd),
        ) else {
            return Ok(Err(Step::Refused(
                reply::SYNTAX_ERROR.with_text("Malformed PLAIN response"),
            )));
        };
        if !authzid.is_empty() && authzid != authcid {
            // Acting as another identity is not supported.
            return Ok(Err(Step::Refused(reply::AUTH_FAILED)));
        }
        Ok(Ok((authcid.to_owned(), Zeroizing::new(passwd.to_owned()))))
    }

    /// The LOGIN mechanism: user name and password, each base64 after a `334` prompt (the user
    /// name may come as the initial response).
    async fn sasl_login(
        &mut self,
        initial: &str,
    ) -> io::Result<Result<(String, Zeroizing<String>), Step>> {
        let user = if initial.is_empty() {
            // "Username:"
            self.sasl_step("VXNlcm5hbWU6").await?
        } else {
            decode(initial.as_bytes())
        };
        let user = match user {
            Step::Data(d) => d,
            other => return Ok(Err(other)),
        };
        // "Password:"
        let password = match self.sasl_step("UGFzc3dvcmQ6").await? {
            Step::Data(d) => d,
            other => return Ok(Err(other)),
        };
        let (Ok(user), Ok(password)) = (
            String::from_utf8(user.to_vec()),
            std::str::from_utf8(&password).map(|p| Zeroizing::new(p.to_owned())),
        ) else {
            return Ok(Err(Step::Refused(
                reply::SYNTAX_ERROR.with_text("Malformed LOGIN response"),
            )));
        };
        Ok(Ok((user, password)))
    }

    /// Send a `334` challenge and read the client's base64 answer.
    async fn sasl_step(&mut self, challenge: &str) -> io::Result<Step> {
        self.reply(Reply::plain(334, challenge));
        let timeout = self.read_timeout();
        let line = match tokio::time::timeout(timeout, self.read_line(MAX_AUTH_LINE)).await {
            Ok(line) => line?,
            Err(_) => {
                self.reply(reply::TIMEOUT);
                self.flush().await?;
                return Ok(Step::Closed);
            }
        };
        Ok(match line {
            Line::Complete(bytes) => {
                let bytes = Zeroizing::new(bytes);
                decode(&bytes)
            }
            Line::TooLong { .. } => Step::Refused(reply::AUTH_LINE_TOO_LONG),
            Line::Eof => Step::Closed,
        })
    }
}

/// A base64 SASL response; `=` is the empty response, `*` cancels (RFC 4954 section 4).
fn decode(line: &[u8]) -> Step {
    let text = line.trim_ascii();
    if text == b"*" {
        return Step::Refused(reply::AUTH_CANCELLED);
    }
    if text == b"=" {
        return Step::Data(Zeroizing::new(Vec::new()));
    }
    match STANDARD.decode(text) {
        Ok(data) => Step::Data(Zeroizing::new(data)),
        Err(_) => Step::Refused(reply::AUTH_BAD_BASE64),
    }
}
