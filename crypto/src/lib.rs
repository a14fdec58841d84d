//! Sealpost envelope v1: the whole cryptographic core of Sealpost.
//!
//! This crate turns keys, secrets and plaintext into the bytes Sealpost stores, and back. It
//! does no I/O and no async, holds no global state, and never decides policy (lockouts, expiry,
//! who may open what): the server does that. The byte format is specified in `SPEC.md` beside
//! this crate, with test vectors that `tests/vectors.rs` checks byte for byte against an
//! independent implementation (`vectors/reference.py`).
//!
//! # Rules this crate keeps
//!
//! - Every secret type ([`ServerKey`], [`LinkSecret`], [`Passphrase`], [`PassphraseKey`],
//!   [`Dek`], [`Kek`], [`SenderPrivateKey`], [`PasswordKey`], [`SessionKey`]) zeroizes on drop,
//!   redacts its `Debug`, has no `Display` or `Serialize`, and compares in constant time where
//!   it can be compared at all. Secret bytes never leave the crate: only text forms meant for a
//!   link, a key file or a cookie do ([`LinkSecret::encode`], [`ServerKey::encode`],
//!   [`SessionKey::encode`]), as [`zeroize::Zeroizing`] strings, and a sender's private key
//!   leaves only wrapped.
//! - Every envelope value that needs randomness (keys, secrets, salts, nonces) has a `*_with`
//!   form taking a [`CryptoRng`], so the test vectors are deterministic; the plain form uses the
//!   operating system's generator ([`OsRng`]).
//! - Opening anything (unwrapping a DEK, decrypting a chunk) fails with the single
//!   [`CryptoError::CouldNotOpen`], whatever check failed, so a caller (and an attacker probing
//!   the server) never learns which one.
//! - Ids ([`Id`]) are the 16 bytes of a UUID. They are not secret; they bind every key and
//!   every chunk to one message and one recipient (or owner, or staff user), so ciphertext
//!   cannot be moved between them.
//!
//! # What the server calls
//!
//! | task | items |
//! |---|---|
//! | the server key (key file or environment) | [`ServerKey::generate`], [`ServerKey::parse`], [`ServerKey::from_base64`], [`ServerKey::from_bytes`], [`ServerKey::encode`], [`ServerKey::key_id`] |
//! | a recipient's link secret (`#k=…`, 22 characters) | [`LinkSecret::generate`], [`LinkSecret::parse`], [`LinkSecret::encode`], [`LinkSecret::ENCODED_LEN`] |
//! | the sender's optional passphrase | [`Passphrase::new`], [`PassphraseSalt::generate`], [`PassphraseSalt::from_slice`], [`PassphraseKey::derive`] (Argon2id, CPU and memory heavy), [`MAX_PASSPHRASE_LEN`] |
//! | the data key and its wrapping per recipient | [`Dek::generate`], [`Kek::derive`], [`Kek::wrap`], [`Kek::unwrap`], [`wrapped_key_id`], [`WRAPPED_DEK_LEN`] |
//! | encrypting and decrypting a part, chunk by chunk | [`PartEncryptor`], [`PartDecryptor`], [`CHUNK_LEN`], [`SEALED_CHUNK_LEN`], [`TAG_LEN`], [`PART_HEADER_LEN`] |
//! | a staff user's key pair for the sender's copy (`SPEC.md` section 10) | [`SenderKeyPair::generate`], [`SenderKeyPair::public_key`], [`SenderKeyPair::private_key`], [`SenderPublicKey::from_slice`], [`SenderPublicKey::as_bytes`], [`SenderPrivateKey::public_key`] (sign-in check against the stored key) |
//! | sealing a message's DEK to its owner, and reopening it | [`SenderPublicKey::seal_dek`], [`SenderPrivateKey::open_dek`], [`SEALED_DEK_LEN`] |
//! | the private key under the password or a recovery code | [`PassphraseSalt::generate`], [`PasswordKey::derive`] (Argon2id, CPU and memory heavy), [`PasswordKey::wrap`], [`PasswordKey::unwrap`], [`password_wrap_salt`], or in one call [`wrap_private_key`], [`unwrap_private_key`]; [`PASSWORD_WRAPPED_KEY_LEN`] |
//! | the private key for one sign-in (key in the session cookie) | [`SessionKey::generate`], [`SessionKey::encode`], [`SessionKey::parse`], [`SessionKey::wrap`], [`SessionKey::unwrap`], [`SessionKey::ENCODED_LEN`], [`SESSION_WRAPPED_KEY_LEN`] |
//! | staff and relay passwords | [`password::hash`], [`password::verify`] |
//! | API bearer tokens | [`token::generate`], [`token::digest`], [`token::PREFIX`] |
//! | SHA-256 (audit chain, code and token digests) | [`hash::sha256`], [`hash::Sha256`], [`hash::Digest`] |
//! | randomness | [`random_bytes`], [`OsRng`], [`CryptoRng`] |
//! | every failure | [`CryptoError`] |
//!
//! # One message, one recipient, end to end
//!
//! Submission makes a DEK, encrypts each part under it, and wraps it for each recipient under
//! a KEK derived from the server key and that recipient's fresh link secret. The link secret
//! goes into the notification and is then forgotten. At pickup the recipient brings the link
//! secret back, the server derives the same KEK, unwraps the DEK and decrypts:
//!
//! ```
//! use sealpost_crypto::{
//!     CryptoError, Dek, Kek, LinkSecret, PartDecryptor, PartEncryptor, ServerKey,
//!     wrapped_key_id,
//! };
//!
//! let server_key = ServerKey::generate();
//! let message_id = [1u8; 16];
//! let recipient_id = [2u8; 16];
//!
//! // Submission: encrypt part 1 (a body), wrap the DEK for the recipient.
//! let dek = Dek::generate();
//! let mut encryptor = PartEncryptor::new(&dek, &message_id, 1);
//! let part_header = encryptor.header(); // stored beside the part
//! let mut sealed = encryptor.push(b"Hello Bob, all fine.")?;
//! sealed.push(encryptor.finish()?);
//!
//! let secret = LinkSecret::generate();
//! let kek = Kek::derive(&server_key, &secret, None, &message_id, &recipient_id);
//! let wrapped = kek.wrap(&dek, server_key.key_id(), &message_id, &recipient_id);
//! let link_text = secret.encode(); // only into the notification email
//! drop((dek, kek, secret));
//!
//! // Pickup: the recipient's browser posts the link secret back.
//! let secret = LinkSecret::parse(&link_text)?;
//! assert_eq!(wrapped_key_id(&wrapped)?, server_key.key_id());
//! let kek = Kek::derive(&server_key, &secret, None, &message_id, &recipient_id);
//! let dek = kek.unwrap(&wrapped, &message_id, &recipient_id)?;
//! let mut decryptor = PartDecryptor::new(&dek, &message_id, 1, &part_header)?;
//! let mut plaintext = Vec::new();
//! for chunk in sealed {
//!     if let Some(piece) = decryptor.push(chunk)? {
//!         plaintext.extend_from_slice(&piece);
//!     }
//! }
//! plaintext.extend_from_slice(&decryptor.finish()?);
//! assert_eq!(plaintext, b"Hello Bob, all fine.");
//!
//! // Any other link secret fails with the one indistinguishable error.
//! let guess = Kek::derive(&server_key, &LinkSecret::generate(), None, &message_id, &recipient_id);
//! assert_eq!(
//!     guess.unwrap(&wrapped, &message_id, &recipient_id).err(),
//!     Some(CryptoError::CouldNotOpen)
//! );
//! # Ok::<(), CryptoError>(())
//! ```
//!
//! # The sender's copy, end to end
//!
//! Each staff user's X25519 key pair lets them reread what they sent (`SPEC.md` section 10):
//! the DEK is also sealed to the owner's public key, and the private key is stored only wrapped,
//! under the password and, during a sign-in, under a key held only in the session cookie:
//!
//! ```
//! use sealpost_crypto::{
//!     CryptoError, Dek, PassphraseSalt, PasswordKey, SenderKeyPair, SessionKey,
//!     password_wrap_salt,
//! };
//!
//! let user_id = [3u8; 16];
//! // Enrol: store the public key and the password wrap.
//! let pair = SenderKeyPair::generate();
//! let public_key = pair.public_key();
//! let password_key = PasswordKey::derive("staff password", &PassphraseSalt::generate())?;
//! let password_wrap = password_key.wrap(pair.private_key(), &user_id);
//! drop((pair, password_key));
//!
//! // Submission (no session needed): seal the DEK to the owner.
//! let message_id = [1u8; 16];
//! let dek = Dek::generate();
//! let sender_copy = public_key.seal_dek(&dek, &message_id, &user_id)?;
//!
//! // Sign-in: unwrap with the password (Argon2id, under the semaphore), check the stored public
//! // key, re-wrap for the session, put the session key in the cookie.
//! let key = PasswordKey::derive("staff password", &password_wrap_salt(&password_wrap)?)?;
//! let private = key.unwrap(&password_wrap, &user_id)?;
//! assert_eq!(private.public_key(), public_key);
//! let session_id = [9u8; 16];
//! let session_key = SessionKey::generate();
//! let session_wrap = session_key.wrap(&private, &user_id, &session_id);
//! let cookie = session_key.encode();
//! drop((private, session_key));
//!
//! // Reading one's own sent message: cookie + session row + sealed copy give the DEK.
//! let private = SessionKey::parse(&cookie)?.unwrap(&session_wrap, &user_id, &session_id)?;
//! assert_eq!(private.open_dek(&sender_copy, &message_id, &user_id)?, dek);
//!
//! // Another user's id, or another message's copy: the one indistinguishable error.
//! assert_eq!(
//!     private.open_dek(&sender_copy, &message_id, &[4u8; 16]).err(),
//!     Some(CryptoError::CouldNotOpen)
//! );
//! # Ok::<(), CryptoError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod code;
mod error;
pub mod hash;
mod kdf;
pub mod password;
mod rng;
mod secret;
mod sender;
mod stream;
pub mod token;
pub mod totp_secret;

pub use error::CryptoError;
pub use kdf::{Kek, MAX_PASSPHRASE_LEN, PassphraseKey, WRAPPED_DEK_LEN, wrapped_key_id};
pub use rand_core::CryptoRng;
pub use rng::{OsRng, random_bytes};
pub use secret::{Dek, LinkSecret, Passphrase, PassphraseSalt, ServerKey, SessionKey};
pub use sender::{
    PASSWORD_WRAPPED_KEY_LEN, PasswordKey, SEALED_DEK_LEN, SESSION_WRAPPED_KEY_LEN, SenderKeyPair,
    SenderPrivateKey, SenderPublicKey, password_wrap_salt, unwrap_private_key, wrap_private_key,
    wrap_private_key_with,
};
pub use stream::{
    CHUNK_LEN, PART_HEADER_LEN, PartDecryptor, PartEncryptor, SEALED_CHUNK_LEN, TAG_LEN,
};

/// A message or recipient id: the 16 bytes of its UUID. Ids are not secret; they bind keys and
/// ciphertext to one message and one recipient.
pub type Id = [u8; 16];

/// The format version written into every versioned structure (`SPEC.md` section 1).
pub const FORMAT_VERSION: u8 = 1;
