//! Key derivation and DEK wrapping (`SPEC.md` sections 3 and 4).

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::{Algorithm, Argon2, AssociatedData, ParamsBuilder, Version};
use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::rng::os_rng;
use crate::secret::{SecretBytes, redacted_debug};
use crate::{
    CryptoError, Dek, FORMAT_VERSION, Id, LinkSecret, Passphrase, PassphraseSalt, ServerKey,
};

/// HKDF info label of the KEK.
pub(crate) const KEK_LABEL: &[u8] = b"sealpost/v1/kek";

/// Argon2id memory in KiB (19 MiB), iterations and lanes: OWASP's recommendation.
pub(crate) const ARGON2_M_KIB: u32 = 19 * 1024;
pub(crate) const ARGON2_T: u32 = 2;
pub(crate) const ARGON2_P: u32 = 1;

/// Longest passphrase accepted by [`PassphraseKey::derive`], in bytes of UTF-8.
pub const MAX_PASSPHRASE_LEN: usize = 1024;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 4;

/// Length of a wrapped DEK (65): version (1) ‖ key id (4) ‖ nonce (12) ‖ encrypted DEK (32) ‖
/// tag (16).
pub const WRAPPED_DEK_LEN: usize = HEADER_LEN + NONCE_LEN + 32 + TAG_LEN;

/// A passphrase stretched by Argon2id (32 bytes), the second half of a KEK's input when the
/// sender set a passphrase. Made only by [`PassphraseKey::derive`]; never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct PassphraseKey(SecretBytes<32>);
redacted_debug!(PassphraseKey);

impl PassphraseKey {
    /// Stretch `passphrase` with Argon2id (m = 19 MiB, t = 2, p = 1) under `salt`.
    ///
    /// This costs tens of milliseconds of CPU and 19 MiB of memory: callers bound how many run
    /// at once, and run it off the async executor (`spawn_blocking`).
    ///
    /// # Errors
    ///
    /// [`CryptoError::Limit`] for a passphrase longer than [`MAX_PASSPHRASE_LEN`] bytes (or if
    /// Argon2 refuses its parameters, which the fixed parameters never cause).
    pub fn derive(passphrase: &Passphrase, salt: &PassphraseSalt) -> Result<Self, CryptoError> {
        argon2id(passphrase.expose(), salt, &[]).map(Self)
    }
}

/// Argon2id (version 0x13, m = 19 MiB, t = 2, p = 1, 32-byte output) of `secret` under `salt`,
/// with Argon2's associated data `ad` (empty for a passphrase; a label that keeps a sender key's
/// wrap key apart from every other Argon2 output, `SPEC.md` section 10.3).
///
/// [`CryptoError::Limit`] for a `secret` longer than [`MAX_PASSPHRASE_LEN`] bytes.
pub(crate) fn argon2id(
    secret: &[u8],
    salt: &PassphraseSalt,
    ad: &[u8],
) -> Result<SecretBytes<32>, CryptoError> {
    if secret.len() > MAX_PASSPHRASE_LEN {
        return Err(CryptoError::Limit("passphrase length"));
    }
    let mut builder = ParamsBuilder::new();
    builder
        .m_cost(ARGON2_M_KIB)
        .t_cost(ARGON2_T)
        .p_cost(ARGON2_P)
        .output_len(32);
    if !ad.is_empty() {
        let data =
            AssociatedData::new(ad).map_err(|_| CryptoError::Limit("argon2 associated data"))?;
        builder.data(data);
    }
    let params = builder
        .build()
        .map_err(|_| CryptoError::Limit("argon2 parameters"))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(secret, salt.as_bytes(), out.as_mut_slice())
        .map_err(|_| CryptoError::Limit("argon2"))?;
    Ok(SecretBytes::from_array(*out))
}

/// A key-encryption key: binds one recipient's link secret (and passphrase) to one message.
///
/// It is derived afresh for every request that needs it and wraps or unwraps exactly one
/// recipient's copy of the [`Dek`] (`SPEC.md` sections 3 and 4). Without the server key *and*
/// the link secret (and the passphrase, if one was set) it cannot be derived, which is why a
/// stolen database plus the server key opens nothing.
pub struct Kek(SecretBytes<32>);
redacted_debug!(Kek);

impl Kek {
    /// `HKDF-SHA256(salt = server key, ikm = link secret ‖ passphrase key?,
    /// info = "sealpost/v1/kek" ‖ message id ‖ recipient id)`, 32 bytes.
    ///
    /// Derivation cannot fail and checks nothing: a wrong secret gives a different KEK, which
    /// [`Kek::unwrap`] then refuses.
    pub fn derive(
        server_key: &ServerKey,
        link_secret: &LinkSecret,
        passphrase_key: Option<&PassphraseKey>,
        message_id: &Id,
        recipient_id: &Id,
    ) -> Self {
        let mut ikm = Zeroizing::new([0u8; 48]);
        ikm[..16].copy_from_slice(link_secret.expose());
        let ikm_len = match passphrase_key {
            Some(pk) => {
                ikm[16..].copy_from_slice(pk.0.expose());
                48
            }
            None => 16,
        };
        let hk = Hkdf::<Sha256>::new(Some(server_key.expose()), &ikm[..ikm_len]);
        let mut okm = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32, so expansion cannot fail.
        let expanded =
            hk.expand_multi_info(&[KEK_LABEL, message_id, recipient_id], okm.as_mut_slice());
        debug_assert!(expanded.is_ok());
        Self(SecretBytes::from_array(*okm))
    }

    /// Wrap `dek` for one recipient with a random nonce: returns the [`WRAPPED_DEK_LEN`]
    /// (65) bytes to store in the recipient's row,
    /// `version ‖ BE32(key_id) ‖ nonce ‖ AES-256-GCM(KEK, nonce, DEK, aad = message id ‖ recipient id)`.
    ///
    /// `key_id` names the server key this KEK was derived from ([`ServerKey::key_id`]), so that
    /// [`wrapped_key_id`] can tell a later reader which key to derive with. `message_id` and
    /// `recipient_id` must be the ids given to [`Kek::derive`]; they are authenticated again
    /// here, so a wrapped DEK copied to another row does not open.
    ///
    /// ```
    /// use sealpost_crypto::{Dek, Kek, LinkSecret, ServerKey, WRAPPED_DEK_LEN, wrapped_key_id};
    ///
    /// let server_key = ServerKey::generate();
    /// let (message_id, recipient_id) = ([7u8; 16], [8u8; 16]);
    /// let kek = Kek::derive(&server_key, &LinkSecret::generate(), None, &message_id, &recipient_id);
    /// let dek = Dek::generate();
    /// let wrapped = kek.wrap(&dek, server_key.key_id(), &message_id, &recipient_id);
    /// assert_eq!(wrapped.len(), WRAPPED_DEK_LEN);
    /// assert_eq!(wrapped_key_id(&wrapped), Ok(server_key.key_id()));
    /// assert_eq!(kek.unwrap(&wrapped, &message_id, &recipient_id), Ok(dek));
    /// // Another recipient's row: refused.
    /// assert!(kek.unwrap(&wrapped, &message_id, &[9u8; 16]).is_err());
    /// ```
    pub fn wrap(&self, dek: &Dek, key_id: u32, message_id: &Id, recipient_id: &Id) -> Vec<u8> {
        self.wrap_with(&mut os_rng(), dek, key_id, message_id, recipient_id)
    }

    /// [`Kek::wrap`] with the nonce drawn from `rng` (for test vectors).
    pub fn wrap_with(
        &self,
        rng: &mut (impl CryptoRng + ?Sized),
        dek: &Dek,
        key_id: u32,
        message_id: &Id,
        recipient_id: &Id,
    ) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(WRAPPED_DEK_LEN);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&key_id.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(dek.expose());
        let aad = wrap_aad(message_id, recipient_id);
        let cipher = Aes256Gcm::new(self.0.expose().into());
        let (_, body) = out.split_at_mut(HEADER_LEN + NONCE_LEN);
        // AES-GCM fails only for messages over 64 GiB; a DEK is 32 bytes.
        match cipher.encrypt_inout_detached(&Nonce::from(nonce), &aad, body.into()) {
            Ok(tag) => out.extend_from_slice(&tag),
            Err(_) => unreachable!("AES-GCM refused a 32-byte message"),
        }
        out
    }

    /// Unwrap a DEK wrapped by [`Kek::wrap`] for the same message and recipient.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Malformed`] if `wrapped` is not [`WRAPPED_DEK_LEN`] bytes of format
    /// version 1 (stored data is damaged: not a guess). [`CryptoError::CouldNotOpen`] if the tag
    /// does not verify: a wrong link secret, passphrase, server key, message id or recipient
    /// id, or altered bytes. The server counts that as a failed attempt.
    pub fn unwrap(
        &self,
        wrapped: &[u8],
        message_id: &Id,
        recipient_id: &Id,
    ) -> Result<Dek, CryptoError> {
        wrapped_key_id(wrapped)?;
        let (header_nonce, rest) = wrapped.split_at(HEADER_LEN + NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(32);
        let nonce: [u8; NONCE_LEN] = header_nonce[HEADER_LEN..]
            .try_into()
            .map_err(|_| CryptoError::Malformed("wrapped key"))?;
        let tag: [u8; TAG_LEN] = tag
            .try_into()
            .map_err(|_| CryptoError::Malformed("wrapped key"))?;
        let mut dek = Zeroizing::new([0u8; 32]);
        dek.copy_from_slice(ciphertext);
        let aad = wrap_aad(message_id, recipient_id);
        Aes256Gcm::new(self.0.expose().into())
            .decrypt_inout_detached(
                &Nonce::from(nonce),
                &aad,
                dek.as_mut_slice().into(),
                &tag.into(),
            )
            .map_err(|_| CryptoError::CouldNotOpen)?;
        Ok(Dek::from_array(*dek))
    }
}

/// The server key id a wrapped DEK was made under, so the server can pick the key to derive
/// the KEK with. Checks the length and version only ([`CryptoError::Malformed`] otherwise);
/// authenticity is checked by [`Kek::unwrap`].
pub fn wrapped_key_id(wrapped: &[u8]) -> Result<u32, CryptoError> {
    if wrapped.len() != WRAPPED_DEK_LEN {
        return Err(CryptoError::Malformed("wrapped key"));
    }
    if wrapped[0] != FORMAT_VERSION {
        return Err(CryptoError::Malformed("wrapped key version"));
    }
    let id: [u8; 4] = wrapped[1..5]
        .try_into()
        .map_err(|_| CryptoError::Malformed("wrapped key"))?;
    Ok(u32::from_be_bytes(id))
}

fn wrap_aad(message_id: &Id, recipient_id: &Id) -> [u8; 32] {
    let mut aad = [0u8; 32];
    aad[..16].copy_from_slice(message_id);
    aad[16..].copy_from_slice(recipient_id);
    aad
}
