//! The checkpoint key: an Ed25519 key with a name, in the text forms of C2SP signed notes
//! (`docs/AUDIT.md`, "Checkpoints"), so that any signed-note tool can read them:
//!
//! - signing key (the key file): `PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ 32-byte seed)>`;
//! - verifier key (published): `<name>+<key id>+<base64(0x01 ‖ 32-byte public key)>`;
//! - key id: the first 4 bytes, big-endian, of `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)`,
//!   written as 8 hex digits.
//!
//! The signing key is never printed: its `Debug` shows the name and key id only, its text form
//! is [`Zeroizing`], and no error repeats the key file's text.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sealpost_crypto::hash::sha256;
use zeroize::Zeroizing;

/// The signature type byte of Ed25519 in signed notes.
const ALG_ED25519: u8 = 0x01;
/// The prefix of a signing key's text form.
const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Why a key's text form was refused. Never holds key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a key name must be non-empty, without spaces or '+'")]
    BadName,
    #[error("expected {0}")]
    Shape(&'static str),
    #[error("the key id must be 8 hex digits")]
    BadKeyId,
    #[error("the key is not base64 of 33 bytes")]
    BadKeyBytes,
    #[error("the key is not an Ed25519 key (its first byte must be 01)")]
    NotEd25519,
    #[error("not a valid Ed25519 public key")]
    BadPublicKey,
    #[error("the key id does not match the name and key (was the key edited?)")]
    KeyIdMismatch,
}

/// Whether `name` may name a key (and so be the origin of a checkpoint): non-empty, no
/// Unicode white space, no `+`, no control characters.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+')
}

/// The key id of an Ed25519 `public` key named `name`.
pub fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut input = Vec::with_capacity(name.len() + 2 + public.len());
    input.extend_from_slice(name.as_bytes());
    input.push(b'\n');
    input.push(ALG_ED25519);
    input.extend_from_slice(public);
    let digest = sha256(&input);
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// `name`, key id and key bytes of a `<name>+<hex id>+<base64(0x01 ‖ 32 bytes)>` text.
fn split_key(text: &str) -> Result<(&str, u32, Zeroizing<[u8; 32]>), KeyError> {
    // The name has no '+', the key id neither; base64 may.
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(KeyError::Shape("<name>+<key id>+<base64 key>"));
    };
    if !valid_name(name) {
        return Err(KeyError::BadName);
    }
    if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyError::BadKeyId);
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| KeyError::BadKeyId)?;
    let mut buf = Zeroizing::new([0u8; 48]);
    let n = STANDARD
        .decode_slice(key, &mut buf[..])
        .map_err(|_| KeyError::BadKeyBytes)?;
    if n != 33 {
        return Err(KeyError::BadKeyBytes);
    }
    if buf[0] != ALG_ED25519 {
        return Err(KeyError::NotEd25519);
    }
    let mut bytes = Zeroizing::new([0u8; 32]);
    bytes.copy_from_slice(&buf[1..33]);
    Ok((name, id, bytes))
}

fn encode_key(name: &str, id: u32, bytes: &[u8; 32]) -> Zeroizing<String> {
    let mut raw = Zeroizing::new([0u8; 33]);
    raw[0] = ALG_ED25519;
    raw[1..].copy_from_slice(bytes);
    let mut out = Zeroizing::new(format!("{name}+{id:08x}+"));
    STANDARD.encode_string(&raw[..], &mut out);
    out
}

/// The key that signs checkpoints. Zeroized on drop; `Debug` shows only its name and key id.
pub struct CheckpointKey {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointKey")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id()))
            .finish_non_exhaustive()
    }
}

impl CheckpointKey {
    /// A new random key named `name`.
    pub fn generate(name: &str) -> Result<Self, KeyError> {
        let seed = Zeroizing::new(sealpost_crypto::random_bytes::<32>());
        Self::from_seed(name, &seed)
    }

    /// The key with this 32-byte seed (the Ed25519 secret key), named `name`.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, KeyError> {
        if !valid_name(name) {
            return Err(KeyError::BadName);
        }
        Ok(Self {
            name: name.to_owned(),
            key: SigningKey::from_bytes(seed),
        })
    }

    /// Parse the key file's text: `PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ seed)>`
    /// (surrounding white space ignored). The key id must match.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let rest = text
            .trim()
            .strip_prefix(PRIVATE_PREFIX)
            .ok_or(KeyError::Shape("PRIVATE+KEY+<name>+<key id>+<base64 key>"))?;
        let (name, id, seed) = split_key(rest)?;
        let key = Self::from_seed(name, &seed)?;
        if key.key_id() != id {
            return Err(KeyError::KeyIdMismatch);
        }
        Ok(key)
    }

    /// The key file's text (secret).
    pub fn encode(&self) -> Zeroizing<String> {
        let seed = Zeroizing::new(self.key.to_bytes());
        let key = encode_key(&self.name, self.key_id(), &seed);
        Zeroizing::new(format!("{PRIVATE_PREFIX}{}", key.as_str()))
    }

    /// The key's name, on every signature line it makes.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id, on every signature line it makes.
    pub fn key_id(&self) -> u32 {
        key_id(&self.name, self.key.verifying_key().as_bytes())
    }

    /// The public half, to publish.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key_id: self.key_id(),
            key: self.key.verifying_key(),
        }
    }

    /// The Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.key.sign(message).to_bytes()
    }
}

/// A published checkpoint key: what verifies checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl VerifierKey {
    /// Parse `<name>+<key id>+<base64(0x01 ‖ public key)>` (surrounding white space ignored).
    /// The key id must match.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.starts_with(PRIVATE_PREFIX) {
            return Err(KeyError::Shape(
                "the public key (`sealpost audit public-key`), not the private one",
            ));
        }
        let (name, id, public) = split_key(text)?;
        let key = VerifyingKey::from_bytes(&public).map_err(|_| KeyError::BadPublicKey)?;
        if key_id(name, key.as_bytes()) != id {
            return Err(KeyError::KeyIdMismatch);
        }
        Ok(Self {
            name: name.to_owned(),
            key_id: id,
            key,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// `<name>+<key id>`: how messages name the key.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.key_id)
    }

    /// Whether `signature` is this key's Ed25519 signature of `message` (strict verification:
    /// no small-order keys or non-canonical signatures).
    pub fn verifies(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.key.verify_strict(message, &signature).is_ok()
    }
}

/// The text form, `<name>+<key id>+<base64(0x01 ‖ public key)>`.
impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&encode_key(&self.name, self.key_id, self.key.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [7; 32];

    #[test]
    fn text_forms_round_trip() -> Result<(), KeyError> {
        let key = CheckpointKey::from_seed("sealpost.example.org/audit", &SEED)?;
        let text = key.encode();
        assert!(text.starts_with("PRIVATE+KEY+sealpost.example.org/audit+"));
        let again = CheckpointKey::parse(&format!("  {}\n", text.as_str()))?;
        assert_eq!(again.verifier(), key.verifier());

        let vkey = key.verifier().to_string();
        assert!(vkey.starts_with(&format!("sealpost.example.org/audit+{:08x}+", key.key_id())));
        assert_eq!(VerifierKey::parse(&vkey)?, key.verifier());
        let sig = key.sign(b"text\n");
        assert!(key.verifier().verifies(b"text\n", &sig));
        assert!(!key.verifier().verifies(b"text!\n", &sig));
        Ok(())
    }

    /// Base64 may hold '+', the separator of the text forms: every key reads back.
    #[test]
    fn random_keys_round_trip() -> Result<(), KeyError> {
        for _ in 0..64 {
            let key = CheckpointKey::generate("n.example/audit")?;
            assert_eq!(
                CheckpointKey::parse(&key.encode())?.verifier(),
                key.verifier()
            );
            assert_eq!(
                VerifierKey::parse(&key.verifier().to_string())?,
                key.verifier()
            );
        }
        Ok(())
    }

    #[test]
    fn debug_hides_the_seed() -> Result<(), KeyError> {
        let key = CheckpointKey::from_seed("n", &SEED)?;
        let shown = format!("{key:?}");
        let seed_b64 = STANDARD.encode(SEED);
        assert!(!shown.contains(&seed_b64[..20]), "{shown}");
        assert!(shown.contains("key_id"), "{shown}");
        Ok(())
    }

    /// The key id is SHA-256(name ‖ LF ‖ 0x01 ‖ public key), first 4 bytes: the same for the
    /// same key under the same name, different under another name.
    #[test]
    fn key_id_binds_the_name() -> Result<(), KeyError> {
        let a = CheckpointKey::from_seed("a.example/audit", &SEED)?;
        let b = CheckpointKey::from_seed("b.example/audit", &SEED)?;
        assert_ne!(a.key_id(), b.key_id());
        let public = *a.verifier().key.as_bytes();
        let mut input = b"a.example/audit\n\x01".to_vec();
        input.extend_from_slice(&public);
        let digest = sha256(&input);
        assert_eq!(a.key_id().to_be_bytes(), digest[..4]);
        Ok(())
    }

    #[test]
    fn malformed_keys_are_refused() -> Result<(), KeyError> {
        let key = CheckpointKey::from_seed("n.example/audit", &SEED)?;
        let vkey = key.verifier().to_string();
        let skey = key.encode().as_str().to_owned();
        let parts: Vec<&str> = vkey.split('+').collect();
        let other_id = format!("{:08x}", key.key_id() ^ 1);
        let cases: Vec<(String, KeyError)> = vec![
            (
                String::new(),
                KeyError::Shape("<name>+<key id>+<base64 key>"),
            ),
            (
                "name+1234".into(),
                KeyError::Shape("<name>+<key id>+<base64 key>"),
            ),
            (format!("+{}+{}", parts[1], parts[2]), KeyError::BadName),
            (format!("a b+{}+{}", parts[1], parts[2]), KeyError::BadName),
            (format!("{}+123+{}", parts[0], parts[2]), KeyError::BadKeyId),
            (
                format!("{}+1234567g+{}", parts[0], parts[2]),
                KeyError::BadKeyId,
            ),
            (
                format!("{}+{}+AAAA", parts[0], parts[1]),
                KeyError::BadKeyBytes,
            ),
            (
                format!("{}+{}+{}!", parts[0], parts[1], parts[2]),
                KeyError::BadKeyBytes,
            ),
            (
                format!("{}+{}+{}", parts[0], parts[1], STANDARD.encode([2u8; 33])),
                KeyError::NotEd25519,
            ),
            (
                format!("{}+{other_id}+{}", parts[0], parts[2]),
                KeyError::KeyIdMismatch,
            ),
            (
                format!("other.example/audit+{}+{}", parts[1], parts[2]),
                KeyError::KeyIdMismatch,
            ),
            (
                skey.clone(),
                KeyError::Shape(
                    "the public key (`sealpost audit public-key`), not the private one",
                ),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(VerifierKey::parse(&text), Err(expected), "{text:?}");
        }
        let tampered = skey.replacen(&format!("{:08x}", key.key_id()), &other_id, 1);
        assert!(matches!(
            CheckpointKey::parse(&tampered),
            Err(KeyError::KeyIdMismatch)
        ));
        assert!(matches!(
            CheckpointKey::parse(&vkey),
            Err(KeyError::Shape(_))
        ));
        Ok(())
    }
}
