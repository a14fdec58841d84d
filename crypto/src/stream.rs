//! Streaming part encryption: STREAM (big-endian 32-bit counter + last-chunk flag) over
//! AES-256-GCM with 64 KiB plaintext chunks (`SPEC.md` section 5).
//!
//! Memory use is one chunk on each side, whatever the size of the part.

use aead_stream::{DecryptorBE32, EncryptorBE32};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::KeyInit;
use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::rng::os_rng;
use crate::{CryptoError, Dek, FORMAT_VERSION, Id};

/// Plaintext bytes per chunk; every chunk but the last holds exactly this many.
pub const CHUNK_LEN: usize = 64 * 1024;
/// Bytes the AEAD tag adds to each chunk.
pub const TAG_LEN: usize = 16;
/// Length of a sealed chunk that is not the last.
pub const SEALED_CHUNK_LEN: usize = CHUNK_LEN + TAG_LEN;
/// Length of the part header: version ‖ 7-byte STREAM nonce prefix.
pub const PART_HEADER_LEN: usize = 8;

/// HKDF info label of a part key.
pub(crate) const PART_LABEL: &[u8] = b"sealpost/v1/part";

type Cipher = Aes256Gcm;

/// `HKDF-SHA256(salt = none, ikm = DEK, info = "sealpost/v1/part" ‖ message id ‖ part_no BE32)`.
fn part_cipher(dek: &Dek, message_id: &Id, part_no: u32) -> Cipher {
    let hk = Hkdf::<Sha256>::new(None, dek.expose());
    let mut key = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's output limit, so expansion cannot fail.
    let expanded = hk.expand_multi_info(
        &[PART_LABEL, message_id, &part_no.to_be_bytes()],
        key.as_mut_slice(),
    );
    debug_assert!(expanded.is_ok());
    let key: &[u8; 32] = &key;
    Cipher::new(key.into())
}

/// The STREAM nonce prefix: the header's last 7 bytes.
fn nonce_prefix(header: &[u8; PART_HEADER_LEN]) -> [u8; PART_HEADER_LEN - 1] {
    let mut prefix = [0u8; PART_HEADER_LEN - 1];
    prefix.copy_from_slice(&header[1..]);
    prefix
}

/// Encrypts one part: feed plaintext in pieces of any size, collect sealed chunks in order.
///
/// The part key is `HKDF-SHA256(ikm = DEK, info = "sealpost/v1/part" ‖ message id ‖ part_no)`,
/// so a part opens only as part `part_no` of its own message. Store [`PartEncryptor::header`]
/// beside the part and the sealed chunks in the order they are returned (chunk 0, 1, …): every
/// chunk but the last is exactly [`SEALED_CHUNK_LEN`] bytes, the last one holds the remaining
/// 0..=[`CHUNK_LEN`] bytes of plaintext plus [`TAG_LEN`].
///
/// ```
/// use sealpost_crypto::{CHUNK_LEN, Dek, PartEncryptor, SEALED_CHUNK_LEN, TAG_LEN};
///
/// let dek = Dek::generate();
/// let mut encryptor = PartEncryptor::new(&dek, &[1u8; 16], 3);
/// // A full chunk is held back until more data shows it is not the last.
/// assert!(encryptor.push(&vec![0u8; CHUNK_LEN])?.is_empty());
/// let sealed = encryptor.push(b"tail")?;
/// assert_eq!(sealed.len(), 1);
/// assert_eq!(sealed[0].len(), SEALED_CHUNK_LEN);
/// assert_eq!(encryptor.finish()?.len(), 4 + TAG_LEN);
/// # Ok::<(), sealpost_crypto::CryptoError>(())
/// ```
pub struct PartEncryptor {
    header: [u8; PART_HEADER_LEN],
    stream: EncryptorBE32<Cipher>,
    /// Plaintext not yet sealed; at most [`CHUNK_LEN`] bytes. A full chunk is sealed only once
    /// more data arrives, so that the last chunk may be full.
    pending: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for PartEncryptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PartEncryptor")
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl PartEncryptor {
    /// A new encryptor for part `part_no` of message `message_id` with a random nonce prefix.
    pub fn new(dek: &Dek, message_id: &Id, part_no: u32) -> Self {
        Self::new_with(&mut os_rng(), dek, message_id, part_no)
    }

    /// [`PartEncryptor::new`] with the nonce prefix drawn from `rng` (for test vectors).
    pub fn new_with(
        rng: &mut (impl CryptoRng + ?Sized),
        dek: &Dek,
        message_id: &Id,
        part_no: u32,
    ) -> Self {
        let mut header = [0u8; PART_HEADER_LEN];
        header[0] = FORMAT_VERSION;
        rng.fill_bytes(&mut header[1..]);
        let stream = EncryptorBE32::from_aead(
            part_cipher(dek, message_id, part_no),
            &nonce_prefix(&header).into(),
        );
        Self {
            header,
            stream,
            pending: Zeroizing::new(Vec::with_capacity(SEALED_CHUNK_LEN)),
        }
    }

    /// The part header, to be stored with the part and given to [`PartDecryptor::new`].
    pub fn header(&self) -> [u8; PART_HEADER_LEN] {
        self.header
    }

    /// Add plaintext; returns the chunks sealed by it (possibly none), in order. At most one
    /// chunk of plaintext is held in memory, however large the part.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Limit`] once the part would need more than 2^32 - 1 chunks (about
    /// 256 TiB). The encryptor must not be used after an error.
    pub fn push(&mut self, mut data: &[u8]) -> Result<Vec<Vec<u8>>, CryptoError> {
        let mut sealed = Vec::new();
        while !data.is_empty() {
            if self.pending.len() == CHUNK_LEN {
                let mut chunk =
                    core::mem::replace(&mut *self.pending, Vec::with_capacity(SEALED_CHUNK_LEN));
                // Sealing overwrites the plaintext in place, so nothing is left to wipe.
                self.stream
                    .encrypt_next_in_place(&self.header, &mut chunk)
                    .map_err(|_| CryptoError::Limit("chunks in one part"))?;
                sealed.push(chunk);
            }
            let take = (CHUNK_LEN - self.pending.len()).min(data.len());
            let (head, rest) = data.split_at(take);
            self.pending.extend_from_slice(head);
            data = rest;
        }
        Ok(sealed)
    }

    /// Seal what remains as the last chunk (an empty part yields one chunk holding only a tag).
    /// The last chunk is sealed with STREAM's last-chunk flag, so a reader can tell a complete
    /// part from a truncated one.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Limit`], as for [`PartEncryptor::push`].
    pub fn finish(mut self) -> Result<Vec<u8>, CryptoError> {
        let mut chunk = core::mem::take(&mut *self.pending);
        self.stream
            .encrypt_last_in_place(&self.header, &mut chunk)
            .map_err(|_| CryptoError::Limit("chunks in one part"))?;
        Ok(chunk)
    }
}

/// Decrypts one part: feed sealed chunks in order; each push yields the plaintext of the
/// chunk before it, and [`PartDecryptor::finish`] checks and yields the last.
///
/// Holding one chunk back is what makes a dropped last chunk detectable without the caller
/// having to say which chunk is last. Plaintext handed out by [`PartDecryptor::push`] is
/// authentic but the part is known to be complete only once [`PartDecryptor::finish`]
/// succeeds: a streaming reader (an attachment download) must treat an error at the end as a
/// failed transfer, not as a short file.
///
/// After any error the decryptor stays failed: every later call returns an error.
///
/// Plaintext is returned as a plain `Vec<u8>`: it is message content on its way to the
/// recipient, not key material, and wiping every 64 KiB chunk on drop would cost about as
/// much as decrypting it (measured: decrypt fell from ~0.5 to ~0.37 of OpenSSL's rate).
/// Keys and secrets, by contrast, are always wiped.
pub struct PartDecryptor {
    header: [u8; PART_HEADER_LEN],
    stream: Option<DecryptorBE32<Cipher>>,
    held: Option<Vec<u8>>,
}

impl core::fmt::Debug for PartDecryptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PartDecryptor")
            .field("failed", &self.stream.is_none())
            .finish_non_exhaustive()
    }
}

impl PartDecryptor {
    /// A decryptor for part `part_no` of message `message_id`, given the stored part header.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Malformed`] if `header` is not [`PART_HEADER_LEN`] bytes of format
    /// version 1. A wrong DEK, message id or part number is not detected here but by the
    /// first chunk.
    pub fn new(
        dek: &Dek,
        message_id: &Id,
        part_no: u32,
        header: &[u8],
    ) -> Result<Self, CryptoError> {
        let header: [u8; PART_HEADER_LEN] = header
            .try_into()
            .map_err(|_| CryptoError::Malformed("part header"))?;
        if header[0] != FORMAT_VERSION {
            return Err(CryptoError::Malformed("part header version"));
        }
        let stream = DecryptorBE32::from_aead(
            part_cipher(dek, message_id, part_no),
            &nonce_prefix(&header).into(),
        );
        Ok(Self {
            header,
            stream: Some(stream),
            held: None,
        })
    }

    /// Give the next sealed chunk; returns the plaintext of the previous one, if any.
    ///
    /// # Errors
    ///
    /// [`CryptoError::CouldNotOpen`] if a chunk has an impossible length or the previous chunk
    /// does not authenticate (wrong key, altered, reordered, from another part or message, or
    /// short but not last); [`CryptoError::State`] after an earlier error.
    pub fn push(&mut self, sealed: impl Into<Vec<u8>>) -> Result<Option<Vec<u8>>, CryptoError> {
        let sealed = sealed.into();
        if sealed.len() < TAG_LEN || sealed.len() > SEALED_CHUNK_LEN {
            self.stream = None;
            return Err(CryptoError::CouldNotOpen);
        }
        let Some(mut previous) = self.held.replace(sealed) else {
            return if self.stream.is_some() {
                Ok(None)
            } else {
                Err(CryptoError::State("failed earlier"))
            };
        };
        let stream = self
            .stream
            .as_mut()
            .ok_or(CryptoError::State("failed earlier"))?;
        // Every chunk but the last is full; a short one followed by more is a truncation splice.
        let opened = previous.len() == SEALED_CHUNK_LEN
            && stream
                .decrypt_next_in_place(&self.header, &mut previous)
                .is_ok();
        if !opened {
            self.stream = None;
            self.held = None;
            return Err(CryptoError::CouldNotOpen);
        }
        Ok(Some(previous))
    }

    /// Check the last chunk and return its plaintext.
    ///
    /// # Errors
    ///
    /// [`CryptoError::CouldNotOpen`] if no chunk was given, or if the chunk given last does
    /// not authenticate as the last one (the stream was truncated or altered);
    /// [`CryptoError::State`] after an earlier error.
    pub fn finish(mut self) -> Result<Vec<u8>, CryptoError> {
        let stream = self
            .stream
            .take()
            .ok_or(CryptoError::State("failed earlier"))?;
        let mut last = self.held.take().ok_or(CryptoError::CouldNotOpen)?;
        stream
            .decrypt_last_in_place(&self.header, &mut last)
            .map_err(|_| CryptoError::CouldNotOpen)?;
        Ok(last)
    }
}
