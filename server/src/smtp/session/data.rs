//! DATA (RFC 5321 4.1.1.4): read the message with dot-unstuffing (4.5.2), the text line limit
//! (4.5.3.1.6) and the size limit (RFC 1870) enforced while reading, then submit it through
//! the domain and answer `250` only once it is committed.

use std::io;

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Flow, Line, Session};
use crate::messages::SubmitError;
use crate::smtp::reply;
use crate::smtp::{DataBudget, DataReservation, MAX_DATA_LINE, mime};

/// Memory a transfer holds besides its message and decoded parts while it is stored, at most:
/// the batch of ciphertext waiting to be written (about 1 MiB, at most twice that, and never
/// more than the message) and the parsed structure.
const PER_TRANSFER: usize = 4 << 20;

/// How reading the message ended.
enum Body {
    /// The message, and the memory it holds from the shared budget.
    Message(Vec<u8>, DataReservation),
    TooBig,
    /// The memory for messages being received (all sessions together) is spent.
    NoMemory,
    LineTooLong,
    /// Timeout or end of input: there is nobody left to answer.
    Closed,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(crate) async fn data(&mut self) -> io::Result<Flow> {
        let Some(tx) = self.st.tx.as_ref() else {
            self.error(reply::BAD_SEQUENCE.with_text("Need MAIL and RCPT before DATA"));
            return Ok(Flow::Continue);
        };
        if tx.rcpts.is_empty() {
            self.error(reply::NO_VALID_RECIPIENTS);
            return Ok(Flow::Continue);
        }
        self.reply(reply::START_DATA);
        let body = self.read_body().await?;
        // The transaction is over whatever happens next (RFC 5321 4.1.1.4).
        let Some(tx) = self.st.tx.take() else {
            return Ok(Flow::Continue);
        };
        // Parsing holds the decoded parts beside the raw message (at most its size again), and
        // storing it a batch of ciphertext and the parser's bookkeeping (PER_TRANSFER).
        let body = match body {
            Body::Message(raw, mut reservation) => {
                let held = raw
                    .capacity()
                    .saturating_add(raw.len())
                    .saturating_add(raw.len().min(PER_TRANSFER));
                if self.ctx.data_budget.reserve(&mut reservation, held) {
                    Body::Message(raw, reservation)
                } else {
                    Body::NoMemory
                }
            }
            other => other,
        };
        let (raw, _reservation) = match body {
            Body::Message(raw, reservation) => (raw, reservation),
            Body::NoMemory => {
                tracing::warn!(peer = %self.st.peer, "SMTP DATA deferred: smtp_data_memory_bytes is spent");
                self.reply(reply::INSUFFICIENT_STORAGE);
                return Ok(Flow::Continue);
            }
            Body::TooBig => {
                let max = self.ctx.limits.max_message_bytes;
                self.reply(reply::MESSAGE_TOO_BIG.with_text(format!(
                    "Message size exceeds fixed maximum message size of {max} bytes"
                )));
                return Ok(Flow::Continue);
            }
            Body::LineTooLong => {
                self.reply(reply::DATA_LINE_TOO_LONG);
                return Ok(Flow::Continue);
            }
            Body::Closed => return Ok(Flow::Quit),
        };
        let ctx = self.st.request_ctx();
        let result = mime::submit(&self.ctx.app, &tx, raw, &ctx).await;
        let answer = match result {
            Ok(submitted) => reply::QUEUED.with_text(format!("{} queued", submitted.id)),
            Err(SubmitError::Refused(why)) => reply::CONTENT_REJECTED.with_text(why.to_string()),
            Err(SubmitError::TooLarge { what, limit }) => {
                reply::MESSAGE_TOO_BIG.with_text(format!("The {what} exceeds the limit of {limit}"))
            }
            Err(SubmitError::Unavailable(why)) => {
                tracing::warn!(peer = %self.st.peer, reason = %why, "SMTP submission deferred");
                reply::TEMPORARY_FAILURE
            }
            Err(SubmitError::Internal(e)) => {
                tracing::error!(peer = %self.st.peer, error = ?e, "SMTP submission failed");
                reply::TEMPORARY_FAILURE
            }
        };
        self.reply(answer);
        Ok(Flow::Continue)
    }

    async fn read_body(&mut self) -> io::Result<Body> {
        let max = self.ctx.limits.max_message_bytes;
        let timeout = self.ctx.limits.command_timeout;
        let mut raw = Vec::new();
        let mut total: u64 = 0;
        let (mut too_big, mut too_long, mut no_memory) = (false, false, false);
        let budget = self.ctx.data_budget.clone();
        let mut reservation = DataBudget::empty();
        // The end is CRLF "." CRLF, and only that: a "." line after a bare LF does not end the
        // message (SMTP smuggling).
        let mut after_crlf = true;
        loop {
            let line = match tokio::time::timeout(timeout, self.read_line(MAX_DATA_LINE)).await {
                Ok(line) => line?,
                Err(_) => {
                    self.reply(reply::TIMEOUT);
                    self.flush().await?;
                    return Ok(Body::Closed);
                }
            };
            let line = match line {
                Line::Complete(line) => line,
                Line::TooLong { crlf } => {
                    too_long = true;
                    raw = Vec::new();
                    after_crlf = crlf;
                    continue;
                }
                Line::Eof => return Ok(Body::Closed),
            };
            if after_crlf && line == b".\r\n" {
                break;
            }
            after_crlf = line.ends_with(b"\r\n");
            // RFC 5321 4.5.2: remove the first of leading dots.
            let content = line.strip_prefix(b".").unwrap_or(&line);
            total += content.len() as u64;
            if total > max {
                too_big = true;
                raw = Vec::new();
            } else if !too_long && !no_memory {
                // The budget covers the buffer's capacity, which is what is held: grown here
                // in doubling steps, never by the allocator behind the budget's back.
                let needed = raw.len() + content.len();
                let fits = needed <= raw.capacity() || {
                    let grown = needed
                        .max(raw.capacity().saturating_mul(2))
                        .max(64 * 1024)
                        .min(usize::try_from(max).unwrap_or(usize::MAX))
                        .max(needed);
                    budget.reserve(&mut reservation, grown)
                        && raw.try_reserve_exact(grown - raw.len()).is_ok()
                };
                if fits {
                    raw.extend_from_slice(content);
                } else {
                    // Read on to the end of the data, keeping nothing, then refuse for now.
                    no_memory = true;
                    raw = Vec::new();
                    reservation = DataBudget::empty();
                }
            }
        }
        Ok(if too_big {
            Body::TooBig
        } else if too_long {
            Body::LineTooLong
        } else if no_memory {
            Body::NoMemory
        } else {
            Body::Message(raw, reservation)
        })
    }
}
