//! Sealpost envelope v1: the whole cryptographic core of Sealpost.
//!
//! This crate turns keys, secrets and plaintext into the bytes Sealpost stores, and back. It
//! does no I/O and no async, holds no global state, and never decides policy (lockouts, expiry,
//! who may open what): the server does that. The byte format is specified in `SPEC.md` beside
//! this crate, with test vectors that `tests/vectors.rs` checks byte for byte.
//!
//! Rules this crate keeps:
//! - every secret type zeroizes on drop, redacts its `Debug`, has no `Display` or `Serialize`,
//!   and compares in constant time;
//! - every function that needs randomness has a `*_with` form taking a [`rand_core::CryptoRng`],
//!   so the test vectors are deterministic; the plain form uses the operating system's generator;
//! - opening anything fails with the single [`CryptoError::CouldNotOpen`], whatever check failed.
#![forbid(unsafe_code)]

pub mod code;
mod error;
pub mod hash;
mod kdf;
pub mod password;
mod rng;
mod secret;
mod stream;
pub mod token;

pub use error::CryptoError;
pub use kdf::{Kek, MAX_PASSPHRASE_LEN, PassphraseKey, WRAPPED_DEK_LEN, wrapped_key_id};
pub use rand_core::CryptoRng;
pub use rng::{OsRng, random_bytes};
pub use secret::{Dek, LinkSecret, Passphrase, PassphraseSalt, ServerKey};
pub use stream::{
    CHUNK_LEN, PART_HEADER_LEN, PartDecryptor, PartEncryptor, SEALED_CHUNK_LEN, TAG_LEN,
};

/// A message or recipient id: the 16 bytes of its UUID. Ids are not secret; they bind keys and
/// ciphertext to one message and one recipient.
pub type Id = [u8; 16];

/// The format version written into every versioned structure (`SPEC.md` section 1).
pub const FORMAT_VERSION: u8 = 1;
