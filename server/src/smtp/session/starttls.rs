//! STARTTLS (RFC 3207): answer `220`, then hand the stream back for the handshake.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Flow, Session};
use crate::smtp::reply;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(crate) fn starttls(&mut self) -> Flow {
        if self.st.tls {
            // RFC 3207 section 4: STARTTLS once only.
            self.error(reply::BAD_SEQUENCE.with_text("TLS already active"));
            return Flow::Continue;
        }
        if self.ctx.tls.is_none() {
            self.reply(reply::TLS_NOT_AVAILABLE);
            return Flow::Continue;
        }
        if self.st.tx.is_some() {
            self.error(
                reply::BAD_SEQUENCE.with_text("STARTTLS is not allowed inside a mail transaction"),
            );
            return Flow::Continue;
        }
        self.reply(reply::READY_FOR_TLS);
        Flow::StartTls
    }
}
