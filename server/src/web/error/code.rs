//! [`ErrorCode`]: every machine-readable error code the HTTP layer answers with, and for each
//! the status, the title of its error page, and the page text that replaces the short message
//! where a person needs more (what happened, what to do next).

use axum::http::StatusCode;

/// A stable error code: `{"error": "<code>"}` in API bodies, the choice of title and text on
/// error pages. The string forms are part of the API; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum ErrorCode {
    // Malformed requests.
    BadRequest,
    InvalidJson,
    UnsupportedMediaType,
    TooLarge,
    // Submission refusals (see `messages::Refusal`).
    MissingField,
    TooManyRecipients,
    InvalidAddress,
    InvalidExpiry,
    TooManyAttachments,
    InvalidContentType,
    InvalidAttachment,
    InvalidField,
    UnknownField,
    DuplicateBody,
    InvalidPassphrase,
    NotAMessage,
    // Who is asking.
    Unauthorized,
    Forbidden,
    // Pickup refusals (see `messages::PickupError`).
    NotFound,
    Expired,
    Revoked,
    Locked,
    Blocked,
    SlowDown,
    NotVerified,
    WrongSecret,
    PassphraseRequired,
    WrongCode,
    CodeExpired,
    TooManyRequests,
    // Our side.
    Conflict,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The code as sent in API bodies.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The HTTP status this code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest | Self::InvalidJson | Self::PassphraseRequired => {
                StatusCode::BAD_REQUEST
            }
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MissingField
            | Self::TooManyRecipients
            | Self::InvalidAddress
            | Self::InvalidExpiry
            | Self::TooManyAttachments
            | Self::InvalidContentType
            | Self::InvalidAttachment
            | Self::InvalidField
            | Self::UnknownField
            | Self::DuplicateBody
            | Self::InvalidPassphrase
            | Self::NotAMessage => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized | Self::NotVerified => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::WrongSecret | Self::WrongCode => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Expired | Self::Revoked | Self::CodeExpired => StatusCode::GONE,
            Self::Locked => StatusCode::LOCKED,
            Self::TooManyRequests | Self::Blocked | Self::SlowDown => StatusCode::TOO_MANY_REQUESTS,
            Self::Conflict => StatusCode::CONFLICT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The heading of the error page.
    pub fn title(self) -> &'static str {
        match self {
            Self::NotFound => "Message not found",
            Self::Expired => "This message has expired",
            Self::Revoked => "This message was withdrawn",
            Self::Locked => "This message is locked",
            Self::Blocked => "Too many wrong entries from your network",
            Self::SlowDown => "Please wait a moment",
            Self::NotVerified => "Confirm your email address first",
            Self::CodeExpired => "This code can no longer be used",
            Self::TooManyRequests => "Please wait a moment",
            Self::Unavailable => "Temporarily unavailable",
            Self::Internal => "Something went wrong",
            _ => "Request refused",
        }
    }

    /// The text of the error page when it says more than the error's own message; `path` is
    /// the request path (a missing pickup is explained differently from a missing API object).
    pub fn page_text(self, path: &str) -> Option<&'static str> {
        match self {
            Self::NotFound if path.starts_with("/p/") => Some(
                "There is no message at this address. Check that you opened the whole link from \
                 your email; it may also have been deleted.",
            ),
            Self::Locked => Some(
                "There were too many failed attempts, so this message is locked to protect it. \
                 After a short wait you can unlock it yourself: open the link from your email \
                 again and ask for a one-time code. The sender can also unlock it for you.",
            ),
            Self::Expired => Some(
                "Messages are kept only for a limited time and this one has been deleted. \
                 Please ask the sender to send it again.",
            ),
            Self::Revoked => Some(
                "The sender withdrew this message. Please contact the sender if you still need \
                 it.",
            ),
            _ => None,
        }
    }

    /// Whether the error page offers to start the pickup again: for refusals the recipient can
    /// get past by going back (a new code, the right passphrase, a moment's wait).
    pub fn offers_restart(self) -> bool {
        matches!(
            self,
            Self::NotVerified
                | Self::CodeExpired
                | Self::TooManyRequests
                | Self::Blocked
                | Self::SlowDown
                | Self::BadRequest
                | Self::Forbidden
                | Self::Unavailable
                | Self::PassphraseRequired
        )
    }
}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator;

    use super::*;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::iter() {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
        }
        assert_eq!(ErrorCode::TooManyRequests.as_str(), "too_many_requests");
        assert_eq!(ErrorCode::MissingField.as_str(), "missing_field");
    }

    #[test]
    fn client_faults_are_4xx_and_ours_5xx() {
        for code in ErrorCode::iter() {
            let ours = matches!(code, ErrorCode::Unavailable | ErrorCode::Internal);
            assert_eq!(code.status().is_server_error(), ours, "{code:?}");
        }
    }
}
