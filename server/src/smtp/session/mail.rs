//! MAIL FROM (RFC 5321 4.1.1.2): the relay policy is applied here, before any recipient or
//! content is accepted.

use std::borrow::Cow;

use serde_json::json;
use smtp_proto::{MAIL_BODY_BINARYMIME, MailFrom};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Flow, Session, Transaction};
use crate::messages::EmailAddress;
use crate::smtp::policy;
use crate::smtp::reply;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(crate) async fn mail(&mut self, from: MailFrom<Cow<'_, str>>) -> Flow {
        if self.st.helo.is_none() {
            self.error(reply::BAD_SEQUENCE.with_text("Send EHLO or HELO first"));
            return Flow::Continue;
        }
        if self.st.tx.is_some() {
            self.error(reply::BAD_SEQUENCE.with_text("Nested MAIL command"));
            return Flow::Continue;
        }
        let config = self.ctx.app.config.clone();
        if !policy::tls_satisfied(&config, &self.st) {
            self.error(reply::STARTTLS_FIRST);
            policy::refuse(&self.ctx.app, &self.st, "MAIL before STARTTLS", None).await;
            return Flow::Continue;
        }
        if self.st.auth.is_none() && !policy::allowed_network(&config, self.st.peer) {
            self.error(reply::AUTH_REQUIRED);
            let detail = json!({ "from": truncate(&from.address) });
            policy::refuse(
                &self.ctx.app,
                &self.st,
                "relay attempt without authentication",
                Some(detail),
            )
            .await;
            return Flow::Continue;
        }
        if from.flags & MAIL_BODY_BINARYMIME != 0 {
            // BINARYMIME (RFC 3030) is not advertised.
            self.error(
                reply::PARAMETERS_NOT_RECOGNIZED.with_text("BODY=BINARYMIME is not supported"),
            );
            return Flow::Continue;
        }
        if from.address.is_empty() {
            // A null reverse-path (bounces): Sealpost reports opens to the sender, so it needs one.
            self.error(reply::BAD_SENDER.with_text("A sender address is required"));
            return Flow::Continue;
        }
        let address = match EmailAddress::parse(&from.address) {
            Ok(a) => a,
            Err(e) => {
                self.error(
                    reply::BAD_SENDER.with_text(format!("Bad sender address: {}", e.reason)),
                );
                return Flow::Continue;
            }
        };
        if !policy::sender_domain_allowed(&config, &address) {
            self.error(reply::SENDER_NOT_ALLOWED);
            let detail = json!({ "from": address.as_str() });
            policy::refuse(
                &self.ctx.app,
                &self.st,
                "sender domain not allowed",
                Some(detail),
            )
            .await;
            return Flow::Continue;
        }
        let max = self.ctx.limits.max_message_bytes;
        if from.size as u64 > max {
            // RFC 1870 section 6.
            self.reply(reply::MESSAGE_TOO_BIG.with_text(format!(
                "Message size exceeds fixed maximum message size of {max} bytes"
            )));
            return Flow::Continue;
        }
        self.st.tx = Some(Transaction {
            from: address,
            rcpts: Vec::new(),
        });
        self.reply(reply::SENDER_OK);
        Flow::Continue
    }
}

/// At most 100 characters of client-supplied text for the audit log.
pub(super) fn truncate(text: &str) -> String {
    text.chars().take(100).collect()
}
