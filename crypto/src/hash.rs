//! SHA-256, re-exported so the server hashes (audit chain, token digests, certificate
//! fingerprints) through this crate.

pub use sha2::{Digest, Sha256};

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The SHA-256 fingerprint of a DER certificate as colon-separated upper-case hex: the form
/// `openssl x509 -fingerprint -sha256` prints and Postfix's `smtp_tls_fingerprint_cert_match`
/// takes.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = sha256(der);
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{b:02X}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_colon_separated_upper_hex() {
        // SHA-256 of the empty string.
        assert_eq!(
            fingerprint(b""),
            "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:\
             27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
        );
    }
}
