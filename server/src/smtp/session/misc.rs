//! RSET, NOOP, QUIT, VRFY and HELP (RFC 5321 4.1.1.5 to 4.1.1.10).

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Flow, Session};
use crate::smtp::reply;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// RFC 5321 4.1.1.5: abort the transaction; EHLO and AUTH stay.
    pub(crate) fn rset(&mut self) -> Flow {
        self.st.tx = None;
        self.reply(reply::RESET_OK);
        Flow::Continue
    }

    /// RFC 5321 4.1.1.9.
    pub(crate) fn noop(&mut self) -> Flow {
        self.reply(reply::OK);
        Flow::Continue
    }

    /// RFC 5321 4.1.1.10.
    pub(crate) fn quit(&mut self) -> Flow {
        self.reply(reply::CLOSING);
        Flow::Quit
    }

    /// RFC 5321 3.5.3: 252, never confirming or denying an address (no harvesting).
    pub(crate) fn vrfy(&mut self) -> Flow {
        self.reply(reply::CANNOT_VRFY);
        Flow::Continue
    }

    /// RFC 5321 4.1.1.8.
    pub(crate) fn help(&mut self) -> Flow {
        self.reply(reply::HELP);
        Flow::Continue
    }
}
