//! Staff and relay passwords: generated ones, and Argon2id PHC strings with the OWASP
//! parameters (19 MiB, t=2, p=1), which are the `argon2` crate's defaults.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use rand_core::Rng;
use zeroize::Zeroizing;

use crate::CryptoError;

/// Length of a generated password.
pub const GENERATED_LEN: usize = 24;

/// A random password for a new account or relay: 24 letters and digits (about 143 bits). No
/// punctuation, so it never starts with `-` (which command-line tools such as swaks take for
/// an option) and needs no quoting in shells or MTA configuration files.
pub fn generate() -> Zeroizing<String> {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = Zeroizing::new(String::with_capacity(GENERATED_LEN));
    while out.len() < GENERATED_LEN {
        let bytes = Zeroizing::new(crate::random_bytes::<32>());
        // Rejection sampling: 248 = 4 × 62, so every character is equally likely.
        for &b in bytes.iter().filter(|&&b| b < 248) {
            if out.len() < GENERATED_LEN {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    out
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Passwords are 24 letters and digits (never a leading `-`), and do not repeat.
    #[test]
    fn generated_passwords_are_alphanumeric() {
        let mut seen = std::collections::HashSet::new();
        let mut first_chars = std::collections::HashSet::new();
        for _ in 0..2_000 {
            let p = generate();
            assert_eq!(p.len(), 24, "{}", p.as_str());
            assert!(
                p.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{}",
                p.as_str()
            );
            first_chars.insert(p.as_bytes()[0]);
            assert!(seen.insert(p.to_string()), "a password repeated");
        }
        // Spread over the alphabet, not stuck on a few characters.
        assert!(
            first_chars.len() > 50,
            "{} first characters",
            first_chars.len()
        );
    }
}
