//! RCPT TO (RFC 5321 4.1.1.3): collect recipients, up to the configured maximum.

use std::borrow::Cow;

use smtp_proto::RcptTo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Flow, Session};
use crate::messages::EmailAddress;
use crate::smtp::reply;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(crate) fn rcpt(&mut self, to: RcptTo<Cow<'_, str>>) -> Flow {
        let max = self.ctx.limits.max_recipients;
        let Some(tx) = self.st.tx.as_mut() else {
            self.error(reply::BAD_SEQUENCE.with_text("Need MAIL before RCPT"));
            return Flow::Continue;
        };
        if tx.rcpts.len() >= max {
            // RFC 5321 4.5.3.1.10: 452, so the client sends the rest in another transaction.
            self.reply(
                reply::TOO_MANY_RECIPIENTS
                    .with_text(format!("Too many recipients (at most {max} per message)")),
            );
            return Flow::Continue;
        }
        match EmailAddress::parse(&to.address) {
            Ok(address) => {
                tx.rcpts.push(address);
                self.reply(reply::RECIPIENT_OK);
            }
            Err(e) => {
                self.error(
                    reply::BAD_RECIPIENT.with_text(format!("Bad recipient address: {}", e.reason)),
                );
            }
        }
        Flow::Continue
    }
}
