//! Typed SMTP replies: a basic code (RFC 5321 section 4.2), an enhanced status code
//! (RFC 3463, registry in RFC 5248) and a text. Every reply the listener sends is one of the
//! constants below or built from one with [`Reply::with_text`], so codes are chosen in one
//! place and each names the RFC section that asks for it.

use std::borrow::Cow;
use std::fmt;

/// An enhanced status code `class.subject.detail` (RFC 3463 section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enhanced(pub u8, pub u16, pub u16);

impl fmt::Display for Enhanced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// One SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// `None` only for replies sent before a client could have asked for ENHANCEDSTATUSCODES
    /// (the greeting) and for the AUTH challenges (`334`), which carry base64 text.
    pub enhanced: Option<Enhanced>,
    pub text: Cow<'static, str>,
}

impl Reply {
    const fn new(code: u16, enhanced: Enhanced, text: &'static str) -> Self {
        Self {
            code,
            enhanced: Some(enhanced),
            text: Cow::Borrowed(text),
        }
    }

    /// The same code with another text (line breaks are removed: one reply, one line).
    pub fn with_text(&self, text: impl Into<String>) -> Self {
        let text: String = text.into().replace(['\r', '\n'], " ");
        Self {
            code: self.code,
            enhanced: self.enhanced,
            text: Cow::Owned(text),
        }
    }

    /// A reply without an enhanced code (greeting, `334` challenges).
    pub fn plain(code: u16, text: impl Into<String>) -> Self {
        Self {
            code,
            enhanced: None,
            text: Cow::Owned(text.into().replace(['\r', '\n'], " ")),
        }
    }

    /// 4xx: the client should try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 4xx or 5xx.
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// The wire form, CRLF-terminated.
    pub fn to_wire(&self) -> String {
        match self.enhanced {
            Some(e) => format!("{} {} {}\r\n", self.code, e, self.text),
            None => format!("{} {}\r\n", self.code, self.text),
        }
    }

    /// A multi-line reply (RFC 5321 section 4.2.1): `250-first`, ..., `250 last`.
    pub fn multiline(code: u16, lines: &[String]) -> String {
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            out.push_str(&format!("{code}{sep}{line}\r\n"));
        }
        out
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_wire().trim_end())
    }
}

// 2xx and 3xx -------------------------------------------------------------------------------

/// RFC 5321 4.1.1.10: QUIT.
pub const CLOSING: Reply = Reply::new(221, Enhanced(2, 0, 0), "Bye");
/// RFC 4954 section 6: authentication succeeded.
pub const AUTH_OK: Reply = Reply::new(235, Enhanced(2, 7, 0), "Authentication succeeded");
/// RFC 5321 4.1.1.9: NOOP.
pub const OK: Reply = Reply::new(250, Enhanced(2, 0, 0), "OK");
/// RFC 5321 4.1.1.5: RSET.
pub const RESET_OK: Reply = Reply::new(250, Enhanced(2, 0, 0), "Reset state");
/// RFC 5321 4.1.1.2 with RFC 3463 X.1.0: sender accepted.
pub const SENDER_OK: Reply = Reply::new(250, Enhanced(2, 1, 0), "Sender OK");
/// RFC 5321 4.1.1.3 with RFC 3463 X.1.5: recipient accepted.
pub const RECIPIENT_OK: Reply = Reply::new(250, Enhanced(2, 1, 5), "Recipient OK");
/// RFC 5321 4.1.1.4: message accepted (after the durable commit).
pub const QUEUED: Reply = Reply::new(250, Enhanced(2, 0, 0), "queued");
/// RFC 5321 4.1.1.6 and 3.5.3: VRFY is not answered, but delivery will be attempted.
pub const CANNOT_VRFY: Reply = Reply::new(
    252,
    Enhanced(2, 5, 0),
    "Cannot VRFY user, but will accept message and attempt delivery",
);
/// RFC 5321 4.1.1.8: HELP.
pub const HELP: Reply = Reply::new(
    214,
    Enhanced(2, 0, 0),
    "Sealpost: EHLO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT VRFY HELP",
);
/// RFC 3207 section 4: ready to start TLS.
pub const READY_FOR_TLS: Reply = Reply::new(220, Enhanced(2, 0, 0), "Ready to start TLS");
/// RFC 5321 4.1.1.4: start mail input.
pub const START_DATA: Reply = Reply::new(354, Enhanced(2, 0, 0), "End data with <CR><LF>.<CR><LF>");

// 4xx ---------------------------------------------------------------------------------------

/// RFC 5321 3.8 and 4.5.3.2: closing after the server timeout.
pub const TIMEOUT: Reply = Reply::new(421, Enhanced(4, 4, 2), "Timeout waiting for input, closing");
/// RFC 5321 3.8: shutting down; the client should retry later.
pub const SHUTTING_DOWN: Reply =
    Reply::new(421, Enhanced(4, 3, 2), "Shutting down, try again later");
/// RFC 5321 3.8 with RFC 3463 X.7.0: too many connections (overall or from this address).
pub const TOO_MANY_SESSIONS: Reply = Reply::new(
    421,
    Enhanced(4, 7, 0),
    "Too many connections, try again later",
);
/// RFC 5321 3.8: too many errors in this session.
pub const TOO_MANY_ERRORS: Reply = Reply::new(
    421,
    Enhanced(4, 7, 0),
    "Too many errors, closing connection",
);
/// RFC 5321 3.8 with RFC 3463 X.7.0: this address opened more connections in the last minute
/// than `smtp_connections_per_minute` allows.
pub const TOO_MANY_CONNECTIONS: Reply = Reply::new(
    421,
    Enhanced(4, 7, 0),
    "Too many connections from this address per minute, try again later",
);
/// RFC 5321 3.8 with RFC 3463 X.7.0 (RFC 4954 section 4 leaves the server free to close
/// after failed attempts): too many failed AUTH attempts from this client or for this name.
pub const TOO_MANY_AUTH_FAILURES: Reply = Reply::new(
    421,
    Enhanced(4, 7, 0),
    "Too many failed authentications, try again later",
);
/// RFC 5321 3.8 with RFC 3463 X.7.0 (security or policy status): too many sessions from this
/// address that have not authenticated yet.
pub const TOO_MANY_UNAUTHENTICATED: Reply = Reply::new(
    421,
    Enhanced(4, 7, 0),
    "Too many unauthenticated connections from this address, try again later",
);
/// RFC 5321 3.8 with RFC 3463 X.7.0: the session did not authenticate within the time an
/// unauthenticated session is allowed (`smtp_unauthenticated_timeout_secs`).
pub const UNAUTHENTICATED_TIMEOUT: Reply = Reply::new(
    421,
    Enhanced(4, 7, 0),
    "Authentication not completed in time, closing connection",
);
/// RFC 5321 3.8 with RFC 3463 X.7.0: the session sent more commands than an unauthenticated
/// session may (`smtp_unauthenticated_max_commands`).
pub const UNAUTHENTICATED_TOO_MANY_COMMANDS: Reply = Reply::new(
    421,
    Enhanced(4, 7, 0),
    "Too many commands without authentication, closing connection",
);
/// RFC 5321 4.2.2 with RFC 3463 X.3.0: a temporary failure of ours (database, outbound relay).
pub const TEMPORARY_FAILURE: Reply =
    Reply::new(451, Enhanced(4, 3, 0), "Temporary failure, try again later");
/// RFC 5321 4.2.2 (452, insufficient system storage) with RFC 3463 X.3.1 (mail system full):
/// the memory for messages being received is spent.
pub const INSUFFICIENT_STORAGE: Reply = Reply::new(
    452,
    Enhanced(4, 3, 1),
    "Insufficient system resources, try again later",
);
/// RFC 5321 4.5.3.1.10 with RFC 3463 X.5.3: too many recipients.
pub const TOO_MANY_RECIPIENTS: Reply = Reply::new(452, Enhanced(4, 5, 3), "Too many recipients");
/// RFC 3207 section 4: TLS not available (no certificate could be loaded).
pub const TLS_NOT_AVAILABLE: Reply = Reply::new(
    454,
    Enhanced(4, 7, 0),
    "TLS not available due to temporary reason",
);
/// RFC 4954 section 6: temporary authentication failure (credential store unavailable).
pub const AUTH_TEMPORARY: Reply =
    Reply::new(454, Enhanced(4, 7, 0), "Temporary authentication failure");

// 5xx ---------------------------------------------------------------------------------------

/// RFC 5321 4.2.4 with RFC 3463 X.5.1: unrecognised command.
pub const UNKNOWN_COMMAND: Reply = Reply::new(500, Enhanced(5, 5, 1), "Command unrecognized");
/// RFC 5321 4.5.3.1.4: a command line longer than 512 octets.
pub const COMMAND_TOO_LONG: Reply = Reply::new(500, Enhanced(5, 5, 2), "Line too long");
/// RFC 5321 4.5.3.1.6: a text line longer than 1000 octets (the message was read and
/// dropped). X.5.2 rather than X.5.6, which RFC 4954 reserves for AUTH exchange lines.
pub const DATA_LINE_TOO_LONG: Reply = Reply::new(
    500,
    Enhanced(5, 5, 2),
    "Line too long: lines of the message must be at most 1000 octets (RFC 5321 4.5.3.1.6)",
);
/// RFC 4954 section 4 with X.5.6: an AUTH response line that is too long.
pub const AUTH_LINE_TOO_LONG: Reply = Reply::new(
    500,
    Enhanced(5, 5, 6),
    "Authentication exchange line is too long",
);
/// RFC 5321 4.3.2 with RFC 3463 X.5.4: syntax error in parameters or arguments.
pub const SYNTAX_ERROR: Reply = Reply::new(501, Enhanced(5, 5, 4), "Syntax error in parameters");
/// RFC 4954 section 4: the client cancelled the AUTH exchange with `*`.
pub const AUTH_CANCELLED: Reply = Reply::new(501, Enhanced(5, 0, 0), "Authentication cancelled");
/// RFC 4954 section 4 with X.5.2: the AUTH response is not valid base64.
pub const AUTH_BAD_BASE64: Reply =
    Reply::new(501, Enhanced(5, 5, 2), "Cannot decode the base64 response");
/// RFC 5321 4.1.4 with RFC 3463 X.5.1: bad sequence of commands.
pub const BAD_SEQUENCE: Reply = Reply::new(503, Enhanced(5, 5, 1), "Bad sequence of commands");
/// RFC 5321 4.2.4 with X.5.1: a command we recognise but do not implement (EXPN, ETRN...).
pub const NOT_IMPLEMENTED: Reply = Reply::new(502, Enhanced(5, 5, 1), "Command not implemented");
/// RFC 4954 section 4 with X.5.4: unsupported SASL mechanism.
pub const UNSUPPORTED_MECHANISM: Reply =
    Reply::new(504, Enhanced(5, 5, 4), "Unrecognized authentication type");
/// RFC 3207 section 4 / RFC 4954 section 4: TLS first (policy: no credentials or content over
/// cleartext).
pub const STARTTLS_FIRST: Reply = Reply::new(
    530,
    Enhanced(5, 7, 0),
    "Must issue a STARTTLS command first",
);
/// RFC 4954 section 6: authentication required before MAIL (no open relay).
pub const AUTH_REQUIRED: Reply = Reply::new(530, Enhanced(5, 7, 0), "Authentication required");
/// RFC 4954 section 6 with RFC 3463 X.7.8: bad credentials.
pub const AUTH_FAILED: Reply =
    Reply::new(535, Enhanced(5, 7, 8), "Authentication credentials invalid");
/// RFC 5321 4.2.2 with RFC 3463 X.7.1: sender not allowed by policy.
pub const SENDER_NOT_ALLOWED: Reply = Reply::new(
    550,
    Enhanced(5, 7, 1),
    "Sender domain not allowed to relay through Sealpost",
);
/// RFC 5321 4.2.2 with RFC 3463 X.6.0: the message content could not be accepted.
pub const CONTENT_REJECTED: Reply = Reply::new(554, Enhanced(5, 6, 0), "Message content rejected");
/// RFC 5321 4.5.3.1.10 / RFC 1870 with RFC 3463 X.3.4: message too big.
pub const MESSAGE_TOO_BIG: Reply = Reply::new(
    552,
    Enhanced(5, 3, 4),
    "Message size exceeds fixed maximum message size",
);
/// RFC 5321 4.2.2 with RFC 3463 X.1.7: bad sender address syntax.
pub const BAD_SENDER: Reply = Reply::new(553, Enhanced(5, 1, 7), "Bad sender address syntax");
/// RFC 5321 4.2.2 with RFC 3463 X.1.3: bad recipient address syntax.
pub const BAD_RECIPIENT: Reply = Reply::new(501, Enhanced(5, 1, 3), "Bad recipient address syntax");
/// RFC 5321 3.3: DATA without any accepted recipient.
pub const NO_VALID_RECIPIENTS: Reply = Reply::new(554, Enhanced(5, 5, 1), "No valid recipients");
/// RFC 5321 4.1.1.11 / 4.2.4 with X.5.4: MAIL or RCPT parameters not recognised.
pub const PARAMETERS_NOT_RECOGNIZED: Reply = Reply::new(
    555,
    Enhanced(5, 5, 4),
    "MAIL FROM/RCPT TO parameters not recognized",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms() {
        assert_eq!(OK.to_wire(), "250 2.0.0 OK\r\n");
        assert_eq!(
            AUTH_FAILED.with_text("no\r\nway").to_wire(),
            "535 5.7.8 no  way\r\n"
        );
        assert_eq!(
            Reply::plain(334, "VXNlcm5hbWU6").to_wire(),
            "334 VXNlcm5hbWU6\r\n"
        );
        assert_eq!(
            Reply::multiline(250, &["a".into(), "b".into()]),
            "250-a\r\n250 b\r\n"
        );
        assert!(TOO_MANY_RECIPIENTS.is_transient());
        assert!(!MESSAGE_TOO_BIG.is_transient() && MESSAGE_TOO_BIG.is_error());
    }
}
