//! Staff TOTP secrets at rest: sealed under a key derived from the server key, so that a copy
//! of the database alone does not hand out anyone's second factor.
//!
//! `key = HKDF-SHA256(salt = server key, ikm = "", info = "sealpost/v1/totp" ‖ user id)`;
//! `sealed = version ‖ BE32(key id) ‖ nonce ‖ AES-256-GCM(key, nonce, secret, aad = user id)`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::rng::random_bytes;
use crate::{CryptoError, ServerKey};

const LABEL: &[u8] = b"sealpost/v1/totp";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 5;
const NONCE_LEN: usize = 12;

fn cipher(server_key: &ServerKey, user_id: &[u8; 16]) -> Aes256Gcm {
    let hk = Hkdf::<Sha256>::new(Some(server_key.expose()), &[]);
    let mut okm = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's limit, so expansion cannot fail.
    let expanded = hk.expand_multi_info(&[LABEL, user_id], okm.as_mut_slice());
    debug_assert!(expanded.is_ok());
    Aes256Gcm::new((&*okm).into())
}

/// Seal a TOTP secret of user `user_id` under `server_key`.
///
/// ```
/// use sealpost_crypto::{ServerKey, totp_secret};
///
/// let key = ServerKey::generate();
/// let sealed = totp_secret::seal(&key, &[1u8; 16], b"twenty bytes secret!");
/// assert_eq!(totp_secret::open(&key, &[1u8; 16], &sealed)?.as_slice(), b"twenty bytes secret!");
/// assert!(totp_secret::open(&key, &[2u8; 16], &sealed).is_err());
/// # Ok::<(), sealpost_crypto::CryptoError>(())
/// ```
pub fn seal(server_key: &ServerKey, user_id: &[u8; 16], secret: &[u8]) -> Vec<u8> {
    let nonce: [u8; NONCE_LEN] = random_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + secret.len() + 16);
    out.push(VERSION);
    out.extend_from_slice(&server_key.key_id().to_be_bytes());
    out.extend_from_slice(&nonce);
    // AES-GCM fails only for messages over 64 GiB; a TOTP secret is a few dozen bytes.
    match cipher(server_key, user_id).encrypt(
        &Nonce::from(nonce),
        Payload {
            msg: secret,
            aad: user_id,
        },
    ) {
        Ok(ct) => out.extend_from_slice(&ct),
        Err(_) => unreachable!("AES-GCM refused a short message"),
    }
    out
}

/// Open a secret sealed by [`seal`] for the same user.
///
/// # Errors
///
/// [`CryptoError::Malformed`] for bytes not in the format; [`CryptoError::CouldNotOpen`] for
/// another server key, another user id, or altered bytes.
pub fn open(
    server_key: &ServerKey,
    user_id: &[u8; 16],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < HEADER_LEN + NONCE_LEN + 16 || sealed[0] != VERSION {
        return Err(CryptoError::Malformed("sealed TOTP secret"));
    }
    let nonce: [u8; NONCE_LEN] = sealed[HEADER_LEN..HEADER_LEN + NONCE_LEN]
        .try_into()
        .map_err(|_| CryptoError::Malformed("sealed TOTP secret"))?;
    cipher(server_key, user_id)
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &sealed[HEADER_LEN + NONCE_LEN..],
                aad: user_id,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::CouldNotOpen)
}
