//! The sender's copy (`SPEC.md` section 10): each staff user's X25519 key pair, the DEK of every
//! message they send sealed to their public key with HPKE (RFC 9180), and their private key
//! wrapped under their password (Argon2id) and, for the length of a sign-in, under a random
//! session key held only in the session cookie.
//!
//! What this module must never do: hand out a private key's bytes (it leaves only wrapped), or
//! tell a caller which check failed when something does not open.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use hpke::aead::{AeadTag, AesGcm256};
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::kdf::argon2id;
use crate::rng::os_rng;
use crate::secret::{SecretBytes, redacted_debug};
use crate::{CryptoError, Dek, FORMAT_VERSION, Id, PassphraseSalt, SessionKey};

/// The HPKE suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.
type Kem = X25519HkdfSha256;
type Kdf = HkdfSha256;
type Aead = AesGcm256;

/// HPKE `info` label of a sealed DEK, followed by the message id and the owner id.
pub(crate) const SENDER_COPY_LABEL: &[u8] = b"sealpost/v1/sender-copy";
/// AES-GCM associated data label of a password-wrapped sender key, followed by the user id; also
/// Argon2id's associated data when deriving its key.
pub(crate) const SENDER_KEY_LABEL: &[u8] = b"sealpost/v1/sender-key";
/// AES-GCM associated data label of a session-wrapped sender key, followed by the user id and the
/// session id.
pub(crate) const SESSION_KEY_LABEL: &[u8] = b"sealpost/v1/session-key";

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const SALT_LEN: usize = 16;

/// Length of a sealed DEK (81): version (1) ‖ HPKE encapsulated key (32) ‖ encrypted DEK (32) ‖
/// tag (16).
pub const SEALED_DEK_LEN: usize = 1 + KEY_LEN + KEY_LEN + TAG_LEN;
/// Length of a password-wrapped sender key (77): version (1) ‖ Argon2id salt (16) ‖ nonce (12) ‖
/// encrypted private key (32) ‖ tag (16).
pub const PASSWORD_WRAPPED_KEY_LEN: usize = 1 + SALT_LEN + NONCE_LEN + KEY_LEN + TAG_LEN;
/// Length of a session-wrapped sender key (61): version (1) ‖ nonce (12) ‖ encrypted private
/// key (32) ‖ tag (16).
pub const SESSION_WRAPPED_KEY_LEN: usize = 1 + NONCE_LEN + KEY_LEN + TAG_LEN;

/// A staff user's public key (32 bytes, X25519), stored in clear. Every message the user sends
/// has its DEK sealed to it ([`SenderPublicKey::seal_dek`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderPublicKey([u8; KEY_LEN]);

impl SenderPublicKey {
    /// Length of a public key.
    pub const LEN: usize = KEY_LEN;

    /// A public key as stored. [`CryptoError::Malformed`] unless it is 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        bytes
            .try_into()
            .map(Self)
            .map_err(|_| CryptoError::Malformed("sender public key"))
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Seal `dek` to this key for one message and its owner: returns the [`SEALED_DEK_LEN`]
    /// (81) bytes to store beside the message,
    /// `version ‖ enc ‖ HPKE-Seal(pk, info = "sealpost/v1/sender-copy" ‖ message id ‖ owner id,
    /// aad = "", DEK)`, with a fresh ephemeral key.
    ///
    /// Only the holder of the matching private key opens it ([`SenderPrivateKey::open_dek`]),
    /// and only for the same message id and owner id, so a copy moved to another message or
    /// user does not open.
    ///
    /// ```
    /// use sealpost_crypto::{CryptoError, Dek, SEALED_DEK_LEN, SenderKeyPair};
    ///
    /// let owner = SenderKeyPair::generate();
    /// let (message_id, owner_id) = ([1u8; 16], [2u8; 16]);
    /// let dek = Dek::generate();
    /// let sealed = owner.public_key().seal_dek(&dek, &message_id, &owner_id)?;
    /// assert_eq!(sealed.len(), SEALED_DEK_LEN);
    /// assert_eq!(owner.private_key().open_dek(&sealed, &message_id, &owner_id)?, dek);
    /// // Another message: refused.
    /// assert_eq!(
    ///     owner.private_key().open_dek(&sealed, &[3u8; 16], &owner_id),
    ///     Err(CryptoError::CouldNotOpen)
    /// );
    /// # Ok::<(), CryptoError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`CryptoError::Malformed`] if the stored public key is one of the few X25519 points of
    /// small order, with which the shared secret would be zero (RFC 9180 section 7.1.4). A key
    /// made by [`SenderKeyPair::generate`] never is; a stored key that is has been altered.
    pub fn seal_dek(
        &self,
        dek: &Dek,
        message_id: &Id,
        owner_id: &Id,
    ) -> Result<Vec<u8>, CryptoError> {
        self.seal_dek_with(&mut os_rng(), dek, message_id, owner_id)
    }

    /// [`SenderPublicKey::seal_dek`] with the ephemeral key derived from 32 bytes of `rng`
    /// (RFC 9180 `DeriveKeyPair`; for test vectors).
    pub fn seal_dek_with(
        &self,
        rng: &mut (impl CryptoRng + ?Sized),
        dek: &Dek,
        message_id: &Id,
        owner_id: &Id,
    ) -> Result<Vec<u8>, CryptoError> {
        let public = <Kem as hpke::Kem>::PublicKey::from_bytes(&self.0)
            .map_err(|_| CryptoError::Malformed("sender public key"))?;
        // Zeroizing: it holds the DEK in clear until the seal, or for good if the seal fails.
        let mut out = Zeroizing::new(Vec::with_capacity(SEALED_DEK_LEN));
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&[0u8; KEY_LEN]);
        out.extend_from_slice(dek.expose());
        let info = sender_copy_info(message_id, owner_id);
        let mut rng = rng;
        let (enc, tag) = hpke::single_shot_seal_inout_detached_with_rng::<Aead, Kdf, Kem>(
            &OpModeS::Base,
            &public,
            &info,
            (&mut out[1 + KEY_LEN..]).into(),
            &[],
            &mut rng,
        )
        // Encapsulation fails only when the shared secret is zero (a small-order public key);
        // sealing 32 bytes in a fresh context cannot fail.
        .map_err(|_| CryptoError::Malformed("sender public key"))?;
        enc.write_exact(&mut out[1..1 + KEY_LEN]);
        out.extend_from_slice(&tag.to_bytes());
        Ok(std::mem::take(&mut *out))
    }
}

/// A staff user's private key (an X25519 scalar, 32 bytes clamped as RFC 9180 section 7.1.2
/// serializes it). It never leaves this crate in clear: it is stored wrapped under the user's
/// password ([`PasswordKey::wrap`]) and, during a sign-in, under the session key
/// ([`SessionKey::wrap`]). Zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SenderPrivateKey(<Kem as hpke::Kem>::PrivateKey);
redacted_debug!(SenderPrivateKey);

impl SenderPrivateKey {
    /// The private key from its 32 bytes, clamped (RFC 9180 `DeserializePrivateKey`).
    fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        <Kem as hpke::Kem>::PrivateKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| CryptoError::Malformed("sender private key"))
    }

    /// Its 32 bytes (RFC 9180 `SerializePrivateKey`), only ever to be encrypted.
    fn to_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        self.0.write_exact(bytes.as_mut_slice());
        bytes
    }

    /// The matching public key.
    pub fn public_key(&self) -> SenderPublicKey {
        let mut public = [0u8; KEY_LEN];
        Kem::sk_to_pk(&self.0).write_exact(&mut public);
        SenderPublicKey(public)
    }

    /// Open a DEK sealed to this key by [`SenderPublicKey::seal_dek`] for the same message and
    /// owner.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Malformed`] if `sealed` is not [`SEALED_DEK_LEN`] bytes of format version 1
    /// (stored data is damaged). [`CryptoError::CouldNotOpen`] for everything else: another
    /// user's key (or a key pair made anew by an admin reset), another message id or owner id,
    /// or altered bytes.
    pub fn open_dek(
        &self,
        sealed: &[u8],
        message_id: &Id,
        owner_id: &Id,
    ) -> Result<Dek, CryptoError> {
        check_blob(sealed, SEALED_DEK_LEN, "sealed dek")?;
        let (enc, rest) = sealed[1..].split_at(KEY_LEN);
        let (ciphertext, tag) = rest.split_at(KEY_LEN);
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc)
            .map_err(|_| CryptoError::Malformed("sealed dek"))?;
        let tag =
            AeadTag::<Aead>::from_bytes(tag).map_err(|_| CryptoError::Malformed("sealed dek"))?;
        let mut dek = Zeroizing::new([0u8; KEY_LEN]);
        dek.copy_from_slice(ciphertext);
        let info = sender_copy_info(message_id, owner_id);
        hpke::single_shot_open_inout_detached::<Aead, Kdf, Kem>(
            &OpModeR::Base,
            &self.0,
            &enc,
            &info,
            dek.as_mut_slice().into(),
            &[],
            &tag,
        )
        // A small-order `enc` (zero shared secret) fails here too, like any altered byte.
        .map_err(|_| CryptoError::CouldNotOpen)?;
        Ok(Dek::from_array(*dek))
    }
}

/// A staff user's key pair, made once at enrolment (and anew by an admin reset, which loses the
/// copies sealed to the old one). Store [`SenderKeyPair::public_key`] in clear and the private
/// key only wrapped ([`PasswordKey::wrap`]).
#[derive(Clone, Debug)]
pub struct SenderKeyPair {
    public: SenderPublicKey,
    private: SenderPrivateKey,
}

impl SenderKeyPair {
    /// A new random key pair.
    pub fn generate() -> Self {
        Self::generate_with(&mut os_rng())
    }

    /// A new key pair derived from 32 bytes of `rng` (RFC 9180 `DeriveKeyPair`; for test vectors).
    pub fn generate_with(rng: &mut (impl CryptoRng + ?Sized)) -> Self {
        let mut rng = rng;
        let (private, public) = Kem::gen_keypair_with_rng(&mut rng);
        let mut public_bytes = [0u8; KEY_LEN];
        public.write_exact(&mut public_bytes);
        Self {
            public: SenderPublicKey(public_bytes),
            private: SenderPrivateKey(private),
        }
    }

    /// The public key, to store in clear.
    pub fn public_key(&self) -> SenderPublicKey {
        self.public
    }

    /// The private key, to wrap.
    pub fn private_key(&self) -> &SenderPrivateKey {
        &self.private
    }

    /// The private key alone.
    pub fn into_private_key(self) -> SenderPrivateKey {
        self.private
    }
}

/// A password (or recovery code) stretched by Argon2id under a salt, the key that wraps a
/// sender key at rest. It remembers its salt, which goes into every wrap it makes.
///
/// Deriving it is the expensive step (tens of milliseconds, 19 MiB): the server runs
/// [`PasswordKey::derive`] under its Argon2 semaphore, off the async executor, and then wraps
/// or unwraps with it at no cost. [`wrap_private_key`] and [`unwrap_private_key`] do both steps
/// at once.
pub struct PasswordKey {
    key: SecretBytes<KEY_LEN>,
    salt: PassphraseSalt,
}
redacted_debug!(PasswordKey);

impl PasswordKey {
    /// `Argon2id(password, salt, associated data = "sealpost/v1/sender-key")` with the
    /// parameters of passphrases (m = 19 MiB, t = 2, p = 1), 32 bytes.
    ///
    /// For a new wrap (enrolment, password change, a new recovery code) use a fresh
    /// [`PassphraseSalt::generate`]; to open a stored wrap, the salt it names
    /// ([`password_wrap_salt`]).
    ///
    /// # Errors
    ///
    /// [`CryptoError::Limit`] for a password longer than [`crate::MAX_PASSPHRASE_LEN`] bytes.
    pub fn derive(password: &str, salt: &PassphraseSalt) -> Result<Self, CryptoError> {
        Ok(Self {
            key: argon2id(password.as_bytes(), salt, SENDER_KEY_LABEL)?,
            salt: *salt,
        })
    }

    /// The salt this key was derived under.
    pub fn salt(&self) -> &PassphraseSalt {
        &self.salt
    }

    /// Wrap `private` for the user `user_id` with a random nonce: returns the
    /// [`PASSWORD_WRAPPED_KEY_LEN`] (77) bytes to store in the user's row,
    /// `version ‖ salt ‖ nonce ‖ AES-256-GCM(key, nonce, private key,
    /// aad = "sealpost/v1/sender-key" ‖ user id)`.
    ///
    /// ```
    /// use sealpost_crypto::{PassphraseSalt, PasswordKey, SenderKeyPair, password_wrap_salt};
    ///
    /// let user_id = [5u8; 16];
    /// let pair = SenderKeyPair::generate();
    /// let key = PasswordKey::derive("correct horse", &PassphraseSalt::generate())?;
    /// let wrapped = key.wrap(pair.private_key(), &user_id);
    ///
    /// // Sign-in: read the salt, derive (under the Argon2 semaphore), unwrap.
    /// let key = PasswordKey::derive("correct horse", &password_wrap_salt(&wrapped)?)?;
    /// assert_eq!(&key.unwrap(&wrapped, &user_id)?, pair.private_key());
    /// let guess = PasswordKey::derive("correct horse!", &password_wrap_salt(&wrapped)?)?;
    /// assert!(guess.unwrap(&wrapped, &user_id).is_err());
    /// # Ok::<(), sealpost_crypto::CryptoError>(())
    /// ```
    pub fn wrap(&self, private: &SenderPrivateKey, user_id: &Id) -> Vec<u8> {
        self.wrap_with(&mut os_rng(), private, user_id)
    }

    /// [`PasswordKey::wrap`] with the nonce drawn from `rng` (for test vectors).
    pub fn wrap_with(
        &self,
        rng: &mut (impl CryptoRng + ?Sized),
        private: &SenderPrivateKey,
        user_id: &Id,
    ) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(PASSWORD_WRAPPED_KEY_LEN);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(self.salt.as_bytes());
        out.extend_from_slice(&nonce);
        seal_private_key(
            self.key.expose(),
            nonce,
            private,
            &password_aad(user_id),
            &mut out,
        );
        out
    }

    /// Unwrap a sender key wrapped by [`PasswordKey::wrap`] for the same user.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Malformed`] if `wrapped` is not [`PASSWORD_WRAPPED_KEY_LEN`] bytes of
    /// format version 1. [`CryptoError::CouldNotOpen`] for everything else: a wrong password,
    /// a key derived under another salt than the one `wrapped` names, another user id, or
    /// altered bytes. The server counts that as a failed sign-in.
    pub fn unwrap(&self, wrapped: &[u8], user_id: &Id) -> Result<SenderPrivateKey, CryptoError> {
        let salt = password_wrap_salt(wrapped)?;
        // The salt is not authenticated by the tag: a key derived under another salt is
        // refused here, so that an altered salt never goes unnoticed.
        if salt != self.salt {
            return Err(CryptoError::CouldNotOpen);
        }
        let (nonce, body) = wrapped[1 + SALT_LEN..].split_at(NONCE_LEN);
        open_private_key(self.key.expose(), nonce, body, &password_aad(user_id))
    }
}

/// The Argon2id salt a password-wrapped sender key names, so that the server can derive its
/// [`PasswordKey`]. Checks the length and version only ([`CryptoError::Malformed`] otherwise);
/// authenticity is checked by [`PasswordKey::unwrap`].
pub fn password_wrap_salt(wrapped: &[u8]) -> Result<PassphraseSalt, CryptoError> {
    check_blob(wrapped, PASSWORD_WRAPPED_KEY_LEN, "password-wrapped key")?;
    PassphraseSalt::from_slice(&wrapped[1..1 + SALT_LEN])
}

/// Derive the [`PasswordKey`] of `password` under `salt` and wrap `private` with it
/// ([`PasswordKey::derive`] then [`PasswordKey::wrap`]). A recovery code is wrapped the same
/// way, as a second wrap beside the password's.
///
/// # Errors
///
/// [`CryptoError::Limit`] for a password longer than [`crate::MAX_PASSPHRASE_LEN`] bytes.
pub fn wrap_private_key(
    private: &SenderPrivateKey,
    password: &str,
    salt: &PassphraseSalt,
    user_id: &Id,
) -> Result<Vec<u8>, CryptoError> {
    wrap_private_key_with(&mut os_rng(), private, password, salt, user_id)
}

/// [`wrap_private_key`] with the nonce drawn from `rng` (for test vectors).
pub fn wrap_private_key_with(
    rng: &mut (impl CryptoRng + ?Sized),
    private: &SenderPrivateKey,
    password: &str,
    salt: &PassphraseSalt,
    user_id: &Id,
) -> Result<Vec<u8>, CryptoError> {
    Ok(PasswordKey::derive(password, salt)?.wrap_with(rng, private, user_id))
}

/// Unwrap a password-wrapped sender key with `password`: [`password_wrap_salt`],
/// [`PasswordKey::derive`] and [`PasswordKey::unwrap`] in one call.
///
/// # Errors
///
/// As [`password_wrap_salt`], [`PasswordKey::derive`] and [`PasswordKey::unwrap`]: a wrong
/// password is [`CryptoError::CouldNotOpen`].
pub fn unwrap_private_key(
    wrapped: &[u8],
    password: &str,
    user_id: &Id,
) -> Result<SenderPrivateKey, CryptoError> {
    let salt = password_wrap_salt(wrapped)?;
    PasswordKey::derive(password, &salt)?.unwrap(wrapped, user_id)
}

impl SessionKey {
    /// Wrap `private` for one session of the user `user_id` with a random nonce: returns the
    /// [`SESSION_WRAPPED_KEY_LEN`] (61) bytes to store in the session row,
    /// `version ‖ nonce ‖ AES-256-GCM(session key, nonce, private key,
    /// aad = "sealpost/v1/session-key" ‖ user id ‖ session id)`.
    ///
    /// `session_id` is the session's id as bytes (any length; it is the last field of the
    /// associated data), so a session's wrap does not open with another session's cookie even
    /// where the cookie's key would fit.
    ///
    /// ```
    /// use sealpost_crypto::{SenderKeyPair, SessionKey};
    ///
    /// let (user_id, session_id) = ([5u8; 16], [6u8; 16]);
    /// let pair = SenderKeyPair::generate();
    /// let session_key = SessionKey::generate();
    /// let wrapped = session_key.wrap(pair.private_key(), &user_id, &session_id);
    /// let cookie = session_key.encode(); // into the session cookie only
    ///
    /// let session_key = SessionKey::parse(&cookie)?;
    /// assert_eq!(&session_key.unwrap(&wrapped, &user_id, &session_id)?, pair.private_key());
    /// assert!(session_key.unwrap(&wrapped, &user_id, &[7u8; 16]).is_err());
    /// # Ok::<(), sealpost_crypto::CryptoError>(())
    /// ```
    pub fn wrap(&self, private: &SenderPrivateKey, user_id: &Id, session_id: &[u8]) -> Vec<u8> {
        self.wrap_with(&mut os_rng(), private, user_id, session_id)
    }

    /// [`SessionKey::wrap`] with the nonce drawn from `rng` (for test vectors).
    pub fn wrap_with(
        &self,
        rng: &mut (impl CryptoRng + ?Sized),
        private: &SenderPrivateKey,
        user_id: &Id,
        session_id: &[u8],
    ) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(SESSION_WRAPPED_KEY_LEN);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&nonce);
        seal_private_key(
            self.expose(),
            nonce,
            private,
            &session_aad(user_id, session_id),
            &mut out,
        );
        out
    }

    /// Unwrap a sender key wrapped by [`SessionKey::wrap`] for the same user and session.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Malformed`] if `wrapped` is not [`SESSION_WRAPPED_KEY_LEN`] bytes of
    /// format version 1. [`CryptoError::CouldNotOpen`] for everything else: another session's
    /// key, another user id or session id, or altered bytes.
    pub fn unwrap(
        &self,
        wrapped: &[u8],
        user_id: &Id,
        session_id: &[u8],
    ) -> Result<SenderPrivateKey, CryptoError> {
        check_blob(wrapped, SESSION_WRAPPED_KEY_LEN, "session-wrapped key")?;
        let (nonce, body) = wrapped[1..].split_at(NONCE_LEN);
        open_private_key(
            self.expose(),
            nonce,
            body,
            &session_aad(user_id, session_id),
        )
    }
}

/// `"sealpost/v1/sender-copy" ‖ message id ‖ owner id` (55 bytes).
fn sender_copy_info(message_id: &Id, owner_id: &Id) -> [u8; 55] {
    let mut info = [0u8; 55];
    let (label, ids) = info.split_at_mut(SENDER_COPY_LABEL.len());
    label.copy_from_slice(SENDER_COPY_LABEL);
    ids[..16].copy_from_slice(message_id);
    ids[16..].copy_from_slice(owner_id);
    info
}

/// `"sealpost/v1/sender-key" ‖ user id` (38 bytes).
fn password_aad(user_id: &Id) -> [u8; 38] {
    let mut aad = [0u8; 38];
    let (label, id) = aad.split_at_mut(SENDER_KEY_LABEL.len());
    label.copy_from_slice(SENDER_KEY_LABEL);
    id.copy_from_slice(user_id);
    aad
}

/// `"sealpost/v1/session-key" ‖ user id ‖ session id`.
fn session_aad(user_id: &Id, session_id: &[u8]) -> Vec<u8> {
    [SESSION_KEY_LABEL, user_id, session_id].concat()
}

/// Length and version of a stored structure; [`CryptoError::Malformed`] naming it otherwise.
fn check_blob(blob: &[u8], len: usize, what: &'static str) -> Result<(), CryptoError> {
    if blob.len() != len || blob[0] != FORMAT_VERSION {
        return Err(CryptoError::Malformed(what));
    }
    Ok(())
}

/// Append `AES-256-GCM(key, nonce, private key, aad)` (32 bytes) and its tag (16) to `out`.
fn seal_private_key(
    key: &[u8; KEY_LEN],
    nonce: [u8; NONCE_LEN],
    private: &SenderPrivateKey,
    aad: &[u8],
    out: &mut Vec<u8>,
) {
    let start = out.len();
    out.extend_from_slice(private.to_bytes().as_slice());
    let cipher = Aes256Gcm::new(key.into());
    // AES-GCM fails only for messages over 64 GiB; a private key is 32 bytes.
    match cipher.encrypt_inout_detached(&Nonce::from(nonce), aad, (&mut out[start..]).into()) {
        Ok(tag) => out.extend_from_slice(&tag),
        Err(_) => unreachable!("AES-GCM refused a 32-byte message"),
    }
}

/// Open `body` (encrypted private key ‖ tag, 48 bytes) sealed by [`seal_private_key`].
fn open_private_key(
    key: &[u8; KEY_LEN],
    nonce: &[u8],
    body: &[u8],
    aad: &[u8],
) -> Result<SenderPrivateKey, CryptoError> {
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| CryptoError::Malformed("wrapped sender key"))?;
    let (ciphertext, tag) = body
        .split_at_checked(KEY_LEN)
        .ok_or(CryptoError::Malformed("wrapped sender key"))?;
    let tag: [u8; TAG_LEN] = tag
        .try_into()
        .map_err(|_| CryptoError::Malformed("wrapped sender key"))?;
    let mut private = Zeroizing::new([0u8; KEY_LEN]);
    private.copy_from_slice(ciphertext);
    Aes256Gcm::new(key.into())
        .decrypt_inout_detached(
            &Nonce::from(nonce),
            aad,
            private.as_mut_slice().into(),
            &tag.into(),
        )
        .map_err(|_| CryptoError::CouldNotOpen)?;
    SenderPrivateKey::from_bytes(private.as_slice())
}
