//! SHA-256, re-exported so the server hashes (audit chain, token digests) through this crate.

pub use sha2::{Digest, Sha256};

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}
