//! The secret values of envelope v1 and their text forms.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::CryptoError;
use crate::rng::os_rng;

/// `N` secret bytes: zeroized on drop, compared in constant time, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SecretBytes<const N: usize>([u8; N]);

impl<const N: usize> SecretBytes<N> {
    pub(crate) fn random(rng: &mut (impl CryptoRng + ?Sized)) -> Self {
        let mut bytes = [0u8; N];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub(crate) fn from_array(bytes: [u8; N]) -> Self {
        Self(bytes)
    }

    pub(crate) fn from_slice(bytes: &[u8], what: &'static str) -> Result<Self, CryptoError> {
        let array: [u8; N] = bytes.try_into().map_err(|_| CryptoError::Malformed(what))?;
        Ok(Self(array))
    }

    pub(crate) fn expose(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> PartialEq for SecretBytes<N> {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl<const N: usize> Eq for SecretBytes<N> {}

/// Decode unpadded base64url into exactly `N` bytes, refusing every other form.
fn decode_b64url<const N: usize>(
    text: &str,
    what: &'static str,
) -> Result<SecretBytes<N>, CryptoError> {
    let expected_len = (N * 8).div_ceil(6);
    if text.len() != expected_len {
        return Err(CryptoError::Malformed(what));
    }
    let mut buf = Zeroizing::new([0u8; 64]);
    let n = URL_SAFE_NO_PAD
        .decode_slice(text, &mut buf[..])
        .map_err(|_| CryptoError::Malformed(what))?;
    SecretBytes::from_slice(&buf[..n], what)
}

fn encode_b64url(bytes: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(bytes.len().div_ceil(3) * 4));
    URL_SAFE_NO_PAD.encode_string(bytes, &mut out);
    out
}

macro_rules! redacted_debug {
    ($ty:ident) => {
        impl ::core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(concat!(stringify!($ty), "(<redacted>)"))
            }
        }
    };
}
pub(crate) use redacted_debug;

/// The server's long-term key: the HKDF salt of every KEK (`SPEC.md` 3.3).
///
/// It lives in a file (mode 0600) or the environment, never in the database, so a stolen
/// database alone opens nothing. The key id lets a later key rotation tell keys apart.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerKey {
    key_id: u32,
    bytes: SecretBytes<32>,
}
redacted_debug!(ServerKey);

/// The text form of a server key begins with this, then `<key id>.<43 chars base64url>`.
const SERVER_KEY_PREFIX: &str = "sealpost-server-key-v1.";

impl ServerKey {
    /// A new random key with key id 1 (what `sealpost serve` writes on first start).
    pub fn generate() -> Self {
        Self::generate_with(&mut os_rng(), 1)
    }

    /// A new random key from `rng` with the given id (for test vectors and key rotation).
    pub fn generate_with(rng: &mut (impl CryptoRng + ?Sized), key_id: u32) -> Self {
        Self {
            key_id,
            bytes: SecretBytes::random(rng),
        }
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(key_id: u32, bytes: [u8; 32]) -> Self {
        Self {
            key_id,
            bytes: SecretBytes::from_array(bytes),
        }
    }

    /// Parse the text form written by [`ServerKey::encode`]
    /// (`sealpost-server-key-v1.<id>.<base64url>`, surrounding whitespace ignored), or a bare
    /// 32-byte key in standard or url-safe base64 (key id 1), as given in an environment variable.
    ///
    /// ```
    /// use sealpost_crypto::ServerKey;
    ///
    /// let key = ServerKey::generate();
    /// let text = key.encode(); // the key file's content
    /// assert!(text.starts_with("sealpost-server-key-v1.1."));
    /// assert_eq!(ServerKey::parse(&format!("{}\n", text.as_str()))?, key);
    /// assert!(ServerKey::parse("sealpost-server-key-v1.1.short").is_err());
    /// # Ok::<(), sealpost_crypto::CryptoError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`CryptoError::Malformed`] naming the field (never its value) for any other text.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix(SERVER_KEY_PREFIX) {
            let (id, key) = rest
                .split_once('.')
                .ok_or(CryptoError::Malformed("server key"))?;
            if id.is_empty() || id.len() > 10 || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(CryptoError::Malformed("server key id"));
            }
            let key_id = id
                .parse()
                .map_err(|_| CryptoError::Malformed("server key id"))?;
            let bytes = decode_b64url::<32>(key, "server key")?;
            return Ok(Self { key_id, bytes });
        }
        Self::from_base64(text)
    }

    /// A bare 32-byte key in standard (padded) or url-safe (unpadded) base64, key id 1.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        let bytes = if text.len() == 44 {
            let mut buf = Zeroizing::new([0u8; 33]);
            let n = STANDARD
                .decode_slice(text, &mut buf[..])
                .map_err(|_| CryptoError::Malformed("server key"))?;
            SecretBytes::from_slice(&buf[..n], "server key")?
        } else {
            decode_b64url::<32>(text, "server key")?
        };
        Ok(Self { key_id: 1, bytes })
    }

    /// The text form, for the key file (to be written with mode 0600, never to the database
    /// or a log).
    pub fn encode(&self) -> Zeroizing<String> {
        let key = encode_b64url(self.bytes.expose());
        Zeroizing::new(format!(
            "{SERVER_KEY_PREFIX}{}.{}",
            self.key_id,
            key.as_str()
        ))
    }

    /// The key id (not secret).
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        self.bytes.expose()
    }
}

/// The one-time secret in a recipient's link (`#k=...`): 16 random bytes, 22 characters of
/// unpadded base64url. The server hands it to the notification and then forgets it.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkSecret(SecretBytes<16>);
redacted_debug!(LinkSecret);

impl LinkSecret {
    /// Length of the text form.
    pub const ENCODED_LEN: usize = 22;

    /// A new random secret.
    pub fn generate() -> Self {
        Self::generate_with(&mut os_rng())
    }

    /// A new secret from `rng`.
    pub fn generate_with(rng: &mut (impl CryptoRng + ?Sized)) -> Self {
        Self(SecretBytes::random(rng))
    }

    /// Parse exactly 22 characters of unpadded base64url (the canonical encoding only).
    ///
    /// Padding, whitespace, the standard base64 alphabet and non-zero spare bits are refused,
    /// so each secret has exactly one text form:
    ///
    /// ```
    /// use sealpost_crypto::LinkSecret;
    ///
    /// let secret = LinkSecret::generate();
    /// let text = secret.encode();
    /// assert_eq!(text.len(), LinkSecret::ENCODED_LEN);
    /// assert_eq!(LinkSecret::parse(&text)?, secret);
    /// assert!(LinkSecret::parse(&format!("{}=", text.as_str())).is_err());
    /// assert!(LinkSecret::parse(&format!(" {}", &text[1..])).is_err());
    /// # Ok::<(), sealpost_crypto::CryptoError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`CryptoError::Malformed`] for anything else. A well-formed but wrong secret parses;
    /// it is refused later, by [`crate::Kek::unwrap`].
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let secret = decode_b64url::<16>(text, "link secret")?;
        // 22 characters carry 132 bits; the 4 spare bits must be zero so that each secret has
        // exactly one text form.
        if encode_b64url(secret.expose()).as_str() != text {
            return Err(CryptoError::Malformed("link secret"));
        }
        Ok(Self(secret))
    }

    /// The text form for the link (`#k=<text>`) and the notification email.
    pub fn encode(&self) -> Zeroizing<String> {
        encode_b64url(self.0.expose())
    }

    pub(crate) fn expose(&self) -> &[u8; 16] {
        self.0.expose()
    }
}

/// The key of one staff session (32 random bytes), held only in the session cookie: the
/// server stores the user's sender key wrapped under it ([`SessionKey::wrap`]) and forgets it,
/// so the stored session row alone opens nothing. Its text form for the cookie is 43 characters
/// of unpadded base64url.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey(SecretBytes<32>);
redacted_debug!(SessionKey);

impl SessionKey {
    /// Length of the text form.
    pub const ENCODED_LEN: usize = 43;

    /// A new random key (one per sign-in).
    pub fn generate() -> Self {
        Self::generate_with(&mut os_rng())
    }

    /// A new key from `rng`.
    pub fn generate_with(rng: &mut (impl CryptoRng + ?Sized)) -> Self {
        Self(SecretBytes::random(rng))
    }

    /// Parse exactly 43 characters of unpadded base64url (the canonical encoding only), as
    /// [`SessionKey::encode`] writes them for the cookie.
    ///
    /// Padding, whitespace, the standard base64 alphabet and non-zero spare bits are refused,
    /// so each key has exactly one text form:
    ///
    /// ```
    /// use sealpost_crypto::SessionKey;
    ///
    /// let key = SessionKey::generate();
    /// let cookie = key.encode();
    /// assert_eq!(cookie.len(), SessionKey::ENCODED_LEN);
    /// assert_eq!(SessionKey::parse(&cookie)?, key);
    /// assert!(SessionKey::parse(&format!("{}=", cookie.as_str())).is_err());
    /// # Ok::<(), sealpost_crypto::CryptoError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`CryptoError::Malformed`] for anything else. A well-formed but wrong key parses; it is
    /// refused later, by [`SessionKey::unwrap`].
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let key = decode_b64url::<32>(text, "session key")?;
        // 43 characters carry 258 bits; the 2 spare bits must be zero so that each key has
        // exactly one text form.
        if encode_b64url(key.expose()).as_str() != text {
            return Err(CryptoError::Malformed("session key"));
        }
        Ok(Self(key))
    }

    /// The text form for the session cookie (never for a log or the database).
    pub fn encode(&self) -> Zeroizing<String> {
        encode_b64url(self.0.expose())
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        self.0.expose()
    }
}

/// A passphrase the sender agreed with the recipient out of band. Any UTF-8 text; it is
/// stretched with Argon2id into a [`crate::PassphraseKey`] before use.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Passphrase(String);
redacted_debug!(Passphrase);

impl Passphrase {
    /// Wrap a passphrase typed by a person. Surrounding whitespace is kept: it is part of what
    /// was agreed. Its length is checked by [`crate::PassphraseKey::derive`]
    /// ([`crate::MAX_PASSPHRASE_LEN`]).
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// Whether it is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl PartialEq for Passphrase {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}
impl Eq for Passphrase {}

/// A random Argon2id salt (16 bytes). Not secret. One per recipient with a passphrase, stored
/// beside the wrapped DEK; and one per password wrap of a sender key
/// ([`crate::PasswordKey::derive`]), stored inside the wrap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassphraseSalt([u8; 16]);

impl PassphraseSalt {
    /// A new random salt.
    pub fn generate() -> Self {
        Self::generate_with(&mut os_rng())
    }

    /// A new salt from `rng`.
    pub fn generate_with(rng: &mut (impl CryptoRng + ?Sized)) -> Self {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        Self(salt)
    }

    /// A salt as stored. [`CryptoError::Malformed`] unless it is 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        bytes
            .try_into()
            .map(Self)
            .map_err(|_| CryptoError::Malformed("passphrase salt"))
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

/// The per-message data encryption key (32 random bytes). It exists in clear only for the
/// length of one request; at rest it exists only wrapped under each recipient's KEK
/// ([`crate::Kek::wrap`]). Its bytes never leave this crate: it is only ever handed to
/// [`crate::PartEncryptor`], [`crate::PartDecryptor`] and [`crate::Kek::wrap`].
#[derive(Clone, PartialEq, Eq)]
pub struct Dek(SecretBytes<32>);
redacted_debug!(Dek);

impl Dek {
    /// A new random DEK.
    pub fn generate() -> Self {
        Self::generate_with(&mut os_rng())
    }

    /// A new DEK from `rng`.
    pub fn generate_with(rng: &mut (impl CryptoRng + ?Sized)) -> Self {
        Self(SecretBytes::random(rng))
    }

    pub(crate) fn from_array(bytes: [u8; 32]) -> Self {
        Self(SecretBytes::from_array(bytes))
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        self.0.expose()
    }
}
