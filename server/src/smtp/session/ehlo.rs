//! EHLO and HELO (RFC 5321 4.1.1.1): greet, reset any transaction, list the extensions.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Flow, Helo, Session};
use crate::smtp::policy;
use crate::smtp::reply::{self, Reply};

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(crate) fn ehlo(&mut self, host: &str, esmtp: bool) -> Flow {
        let name: String = host
            .chars()
            .filter(|c| c.is_ascii_graphic() || !c.is_ascii())
            .take(255)
            .collect();
        if name.is_empty() {
            self.error(reply::SYNTAX_ERROR.with_text("Syntax: EHLO domain"));
            return Flow::Continue;
        }
        // RFC 5321 4.1.4: EHLO/HELO in a session resets it as RSET does.
        self.st.tx = None;
        self.st.helo = Some(Helo { name, esmtp });
        let hostname = self.ctx.limits.hostname.clone();
        if !esmtp {
            self.reply(Reply::plain(250, hostname));
            return Flow::Continue;
        }
        let mut lines = vec![
            hostname,
            // RFC 2920
            "PIPELINING".to_owned(),
            // RFC 1870
            format!("SIZE {}", self.ctx.limits.max_message_bytes),
            // RFC 6152
            "8BITMIME".to_owned(),
            // RFC 6531
            "SMTPUTF8".to_owned(),
            // RFC 2034
            "ENHANCEDSTATUSCODES".to_owned(),
        ];
        if !self.st.tls && self.ctx.tls.is_some() {
            // RFC 3207
            lines.push("STARTTLS".to_owned());
        }
        if policy::tls_satisfied(&self.ctx.app.config, &self.st) {
            // RFC 4954: offered only where credentials cannot be read off the wire.
            lines.push("AUTH PLAIN LOGIN".to_owned());
        }
        lines.push("HELP".to_owned());
        self.reply_raw(&Reply::multiline(250, &lines));
        Flow::Continue
    }
}
