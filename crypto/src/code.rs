//! One-time codes emailed to recipients: six uniformly random digits, stored only as a
//! domain-separated SHA-256 bound to the recipient (`SPEC.md` section 9).

use zeroize::Zeroizing;

/// Digits in a code.
pub const DIGITS: usize = 6;

/// A uniformly random 6-digit code.
pub fn generate() -> Zeroizing<String> {
    loop {
        let n = u32::from_le_bytes(crate::random_bytes::<4>());
        // Reject the top sliver so every code is equally likely.
        if n < u32::MAX - (u32::MAX % 1_000_000) {
            return Zeroizing::new(format!("{:06}", n % 1_000_000));
        }
    }
}

/// The digest under which `code` is stored for the recipient whose id has the text form
/// `recipient_id`: `SHA-256("sealpost/v1/code" ‖ 0x00 ‖ recipient_id ‖ 0x00 ‖ code)`. Binding
/// the recipient means a code issued to one recipient never matches another's row.
pub fn digest(recipient_id: &str, code: &str) -> [u8; 32] {
    let input = Zeroizing::new(format!("sealpost/v1/code\0{recipient_id}\0{code}"));
    crate::hash::sha256(input.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_spread() {
        let mut leading = std::collections::HashSet::new();
        for _ in 0..2_000 {
            let c = generate();
            assert_eq!(c.len(), DIGITS);
            assert!(c.bytes().all(|b| b.is_ascii_digit()), "{}", c.as_str());
            leading.insert(c.as_bytes()[0]);
        }
        assert_eq!(leading.len(), 10, "every leading digit occurs");
    }

    #[test]
    fn digest_is_bound_to_the_recipient() {
        assert_ne!(digest("a", "123456"), digest("b", "123456"));
        assert_ne!(digest("a", "123456"), digest("a", "123457"));
        // No ambiguity from concatenation: the separator keeps the fields apart.
        assert_ne!(digest("a1", "23456"), digest("a", "123456"));
    }
}
