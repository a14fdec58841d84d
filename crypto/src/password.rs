//! Staff and relay passwords: Argon2id PHC strings with the OWASP parameters
//! (19 MiB, t=2, p=1), which are the `argon2` crate's defaults.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use rand_core::Rng;

use crate::CryptoError;

/// Hash `password` with a fresh random 16-byte salt into a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$…`), the only form in which it is stored.
///
/// Like [`verify`], this costs tens of milliseconds of CPU and 19 MiB of memory: run it off
/// the async executor, with the number of concurrent runs bounded.
///
/// # Errors
///
/// [`CryptoError::Limit`] if Argon2 refuses the input (a password longer than it accepts).
pub fn hash(password: &str) -> Result<String, CryptoError> {
    let mut salt = [0u8; 16];
    crate::rng::os_rng().fill_bytes(&mut salt);
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|phc| phc.to_string())
        .map_err(|_| CryptoError::Limit("password"))
}

/// Whether `password` matches the PHC string `phc`. A malformed `phc` never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}
