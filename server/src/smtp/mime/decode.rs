//! Content-Transfer-Encodings undone: a part's body bytes as they stand in the message, turned
//! into the bytes the sender's client encoded. Nothing here knows about charsets: a text
//! part comes out as the bytes it was written in.
//!
//! Where the encoded text is damaged, each decoder keeps what it can read and never fails:
//! base64 ends at its padding or at the first line that is not base64 (a mailing-list footer
//! appended after the part), and a missing `=` padding or a dangling last character is
//! forgiven; quoted-printable keeps a malformed `=` escape as it stands and 8-bit bytes as
//! they are; uuencode without a `begin` line is kept undecoded.
//!
//! Base64 is the `base64` crate's. Quoted-printable and uuencode are written here: the
//! `quoted_printable` crate drops 8-bit bytes and rewrites every line ending as CRLF, which
//! changes what the sender attached, and no maintained crate decodes uuencode.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// A part's Content-Transfer-Encoding, as far as decoding goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Encoding {
    /// `7bit`, `8bit`, `binary`, absent or unknown: the bytes are the content.
    #[default]
    Identity,
    Base64,
    QuotedPrintable,
    /// `x-uuencode`, `uuencode`, `x-uue`, `uue`.
    Uuencode,
}

impl Encoding {
    pub(super) fn from_header(value: Option<&str>) -> Self {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("base64") => Self::Base64,
            Some("quoted-printable") => Self::QuotedPrintable,
            Some("x-uuencode" | "uuencode" | "x-uue" | "uue") => Self::Uuencode,
            _ => Self::Identity,
        }
    }

    pub(super) fn decode(self, body: &[u8]) -> Vec<u8> {
        match self {
            Self::Identity => body.to_vec(),
            Self::Base64 => base64(body),
            Self::QuotedPrintable => quoted_printable(body),
            Self::Uuencode => uudecode(body).map_or_else(|| body.to_vec(), |(_, bytes)| bytes),
        }
    }
}

/// Lines of `data` without their line ending (`\n` or `\r\n`).
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// The standard alphabet, padding optional, stray bits of the last character ignored.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn base64(body: &[u8]) -> Vec<u8> {
    // Symbols are gathered a block at a time and decoded as each block fills (a multiple of 4
    // symbols decodes on its own), so decoding holds the output and one small block, never a
    // second copy of the whole body.
    const BLOCK: usize = 64 * 1024;
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 3);
    let mut symbols = Vec::with_capacity(BLOCK);
    let mut seen_data = false;
    'lines: for line in lines(body) {
        let is_data = line
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"+/= \t".contains(&b));
        if !is_data {
            if !seen_data {
                continue; // text before the data (some encoders write a note)
            }
            break; // a footer after the data
        }
        for &b in line {
            match b {
                b'=' => break 'lines,
                b' ' | b'\t' => {}
                _ => {
                    seen_data = true;
                    symbols.push(b);
                    if symbols.len() == BLOCK {
                        if LENIENT.decode_vec(&symbols, &mut out).is_err() {
                            return out;
                        }
                        symbols.clear();
                    }
                }
            }
        }
    }
    // A last group of one character carries no whole byte.
    if symbols.len() % 4 == 1 {
        symbols.pop();
    }
    let _ = LENIENT.decode_vec(&symbols, &mut out);
    out
}

fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        let (line, eol, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) if i > 0 && rest[i - 1] == b'\r' => {
                (&rest[..i - 1], &rest[i - 1..=i], &rest[i + 1..])
            }
            Some(i) => (&rest[..i], &rest[i..=i], &rest[i + 1..]),
            None => (rest, &b""[..], &b""[..]),
        };
        rest = next;
        // `=` at the end of a line (transport may have added whitespace after it) is a soft
        // line break. Other trailing whitespace is kept: RFC 2045 (6.7, rule 3) has decoders
        // delete it as added in transport, but it is far more often text the sender's client
        // failed to encode, and Python's `email` keeps it too.
        let (line, soft) = match line.trim_ascii_end().strip_suffix(b"=") {
            Some(l) => (l, true),
            None => (line, false),
        };
        let mut i = 0;
        while i < line.len() {
            let b = line[i];
            if b == b'=' {
                let hex = line.get(i + 1..i + 3).and_then(|h| {
                    let h = std::str::from_utf8(h).ok()?;
                    u8::from_str_radix(h, 16)
                        .ok()
                        .filter(|_| !h.starts_with('+'))
                });
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 3;
                    continue;
                }
            }
            out.push(b);
            i += 1;
        }
        if !soft {
            out.extend_from_slice(eol);
        }
    }
    out
}

/// The file name on the `begin` line and the decoded bytes; `None` without a `begin` line.
pub(super) fn uudecode(body: &[u8]) -> Option<(Option<String>, Vec<u8>)> {
    let mut lines = lines(body);
    let name = lines.by_ref().find_map(|line| {
        let rest = line.strip_prefix(b"begin ")?;
        let (mode, name) =
            rest.split_at(rest.iter().position(|&b| b == b' ').unwrap_or(rest.len()));
        if mode.is_empty() || !mode.iter().all(|b| (b'0'..=b'7').contains(b)) {
            return None;
        }
        let name = String::from_utf8_lossy(name).trim().to_owned();
        Some((!name.is_empty()).then_some(name))
    })?;
    let mut out = Vec::new();
    for line in lines {
        if line.trim_ascii() == b"end" {
            break;
        }
        let Some((&count, data)) = line.split_first() else {
            continue;
        };
        let count = usize::from(count.wrapping_sub(b' ') & 63);
        // Trailing spaces may have been stripped in transport: missing characters are zeros.
        let sextet = |i: usize| u32::from(data.get(i).map_or(0, |&c| c.wrapping_sub(b' ') & 63));
        let mut line_out = Vec::with_capacity(count + 2);
        let mut i = 0;
        while line_out.len() < count {
            let group =
                (sextet(i) << 18) | (sextet(i + 1) << 12) | (sextet(i + 2) << 6) | sextet(i + 3);
            line_out.extend_from_slice(&group.to_be_bytes()[1..]);
            i += 4;
        }
        line_out.truncate(count);
        out.extend_from_slice(&line_out);
    }
    Some((name, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_without_padding_keeps_its_last_bytes() {
        assert_eq!(Encoding::Base64.decode(b"aGVsbG8\r\n"), b"hello");
        assert_eq!(Encoding::Base64.decode(b"aGVsbA\r\n"), b"hell");
        assert_eq!(Encoding::Base64.decode(b"aGVsbG8=\r\n"), b"hello");
    }

    #[test]
    fn base64_stops_at_a_footer() {
        let body = b"aGVs\r\nbG8=\r\n\r\n_______________\r\nList mailing list\r\nhttp://x/\r\n";
        assert_eq!(Encoding::Base64.decode(body), b"hello");
        let unpadded = b"aGVs\r\nbG8h\r\n-- \r\nThe list footer.\r\n";
        assert_eq!(Encoding::Base64.decode(unpadded), b"hello!");
    }

    #[test]
    fn quoted_printable_keeps_line_endings_and_soft_breaks() {
        assert_eq!(
            Encoding::QuotedPrintable.decode(b"a=3Db=\r\nc\r\nd="),
            b"a=bc\r\nd"
        );
        assert_eq!(
            Encoding::QuotedPrintable.decode(b"x \t\nyz=zz=4"),
            b"x \t\nyz=zz=4"
        );
        assert_eq!(
            Encoding::QuotedPrintable.decode(b"soft= \r\nbreak"),
            b"softbreak"
        );
        assert_eq!(
            Encoding::QuotedPrintable.decode(b"caf\xe9=e9"),
            b"caf\xe9\xe9"
        );
    }

    #[test]
    fn uuencode_is_decoded() {
        let body = b"begin 644 hi.txt\n&:&5L;&\\*\n`\nend\n";
        assert_eq!(
            uudecode(body),
            Some((Some("hi.txt".to_owned()), b"hello\n".to_vec()))
        );
        assert_eq!(Encoding::Uuencode.decode(b"no begin"), b"no begin");
    }
}
