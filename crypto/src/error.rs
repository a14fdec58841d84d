use thiserror::Error;

/// Every failure this crate reports.
///
/// Opening (unwrapping a DEK, decrypting a chunk) fails only with [`CryptoError::CouldNotOpen`]:
/// a caller, and therefore an attacker probing the server, never learns *which* check failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// Input that is not in the documented format (wrong length, alphabet, version...).
    /// The text names the field, never its value.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// Authentication failed: wrong key, secret, passphrase, id, or altered/missing/reordered data.
    #[error("could not open")]
    CouldNotOpen,
    /// A size limit of the format was reached (a STREAM of more than 2^32 - 1 chunks,
    /// a passphrase longer than Argon2 accepts).
    #[error("limit exceeded: {0}")]
    Limit(&'static str),
    /// Misuse of a streaming object: data after `finish`, or use after an earlier error.
    #[error("stream state: {0}")]
    State(&'static str),
}
