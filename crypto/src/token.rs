//! Bearer tokens for the API: random, shown once, stored only as their SHA-256.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

/// Every token starts with this, so it is recognisable in a secret scanner.
pub const PREFIX: &str = "sp_";

/// A new token: `sp_` followed by 32 random bytes in unpadded base64url (46 characters).
pub fn generate() -> Zeroizing<String> {
    let bytes = Zeroizing::new(crate::random_bytes::<32>());
    let mut out = Zeroizing::new(String::with_capacity(PREFIX.len() + 43));
    out.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string(bytes.as_slice(), &mut out);
    out
}

/// The digest under which a token is stored and looked up: SHA-256 of its text. Tokens carry
/// 256 random bits, so an unsalted fast hash is enough; the token itself is never stored.
pub fn digest(token: &str) -> [u8; 32] {
    crate::hash::sha256(token.as_bytes())
}
