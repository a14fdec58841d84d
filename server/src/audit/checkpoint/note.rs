//! The text of a checkpoint: a C2SP signed note (`docs/AUDIT.md`, "Checkpoints") whose body is
//! four lines, origin, sequence number, head hash and time.
//!
//! Parsing is strict and total: every input, however broken, gets a [`NoteError`] that says
//! what is wrong and where, never a panic. Nothing here does I/O or checks a signature; that is
//! [`super::open`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::key::{self, CheckpointKey, SIGNATURE_LEN, VerifierKey};
use crate::clock::{self, UnixMillis};

/// The start of a signature line: an em dash (U+2014) and a space.
pub const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// The longest note accepted, in bytes.
pub const MAX_NOTE_BYTES: usize = 16 * 1024;
/// The most signature lines accepted.
pub const MAX_SIGNATURES: usize = 32;
/// Lines in a checkpoint's body.
const BODY_LINES: usize = 4;

/// Why a text is not a checkpoint. The messages say what is wrong and where (lines count
/// from 1), without repeating the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("the checkpoint is longer than {MAX_NOTE_BYTES} bytes")]
    TooLong,
    #[error("the checkpoint is not UTF-8 text")]
    NotUtf8,
    #[error(
        "line {line} ends with CR LF: a checkpoint's lines end with LF alone (convert the file with `tr -d '\\r'`)"
    )]
    CarriageReturn { line: usize },
    #[error("line {line} holds a control character")]
    ControlCharacter { line: usize },
    #[error("the checkpoint does not end with a newline: it was cut short")]
    NoFinalNewline,
    #[error(
        "no blank line followed by signature lines: the checkpoint was cut short, or is no signed note"
    )]
    NoSignatures,
    #[error("more than {MAX_SIGNATURES} signature lines")]
    TooManySignatures,
    #[error("line {line} is not a signature line (`— <key name> <base64 signature>`): {reason}")]
    BadSignatureLine { line: usize, reason: &'static str },
    #[error(
        "the checkpoint's body has {found} lines; it must have exactly 4 (origin, sequence number, head hash, time){}",
        if *found > BODY_LINES { ": extra lines" } else { ": it was cut short" }
    )]
    BodyLines { found: usize },
    #[error("line {line} ({what}) {reason}")]
    BadBodyLine {
        line: usize,
        what: &'static str,
        reason: &'static str,
    },
}

/// What a checkpoint says: this log (`origin`) held rows 1 to `seq`, the last with hash
/// `head`, at `time`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name (`checkpoint_origin`).
    pub origin: String,
    /// The newest row's `seq` when it was signed (0 for an empty log).
    pub seq: i64,
    /// That row's `hash` (32 zero bytes for an empty log).
    pub head: [u8; 32],
    /// When it was signed, Unix milliseconds.
    pub time: UnixMillis,
}

impl Checkpoint {
    /// The body that is signed: `<origin>\n<seq>\n<base64 head>\n<RFC 3339 time>\n`.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n",
            self.origin,
            self.seq,
            STANDARD.encode(self.head),
            clock::format_rfc3339(self.time)
        )
    }

    /// Parse a body made by [`Checkpoint::body`] (the note text up to and including the
    /// newline before the blank line).
    pub fn parse_body(body: &str) -> Result<Self, NoteError> {
        let lines: Vec<&str> = body
            .strip_suffix('\n')
            .unwrap_or(body)
            .split('\n')
            .collect();
        let [origin, seq, head, time] = lines[..] else {
            return Err(NoteError::BodyLines { found: lines.len() });
        };
        let bad = |line, what, reason| NoteError::BadBodyLine { line, what, reason };
        if !key::valid_name(origin) {
            return Err(bad(1, "origin", "must be non-empty, without spaces or '+'"));
        }
        let canonical = !seq.is_empty()
            && seq.bytes().all(|b| b.is_ascii_digit())
            && (seq == "0" || !seq.starts_with('0'));
        let seq = match seq.parse::<i64>() {
            Ok(n) if canonical => n,
            _ => {
                return Err(bad(
                    2,
                    "sequence number",
                    "must be a decimal number without sign or leading zeros",
                ));
            }
        };
        let mut buf = [0u8; 48];
        let head = match STANDARD.decode_slice(head, &mut buf) {
            Ok(32) => {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(&buf[..32]);
                hash
            }
            _ => return Err(bad(3, "head hash", "must be 32 bytes in base64")),
        };
        let time = clock::parse_rfc3339(time)
            .map_err(|_| bad(4, "time", "must be an RFC 3339 date-time"))?;
        Ok(Self {
            origin: origin.to_owned(),
            seq,
            head,
            time,
        })
    }
}

/// One signature line: the key's name and the signature bytes after the 4-byte key id (for
/// Ed25519, 64 bytes; other kinds of signature are kept as they are, to be ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: u32,
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// `<name>+<key id>`, as messages name a key.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.key_id)
    }

    /// `— <name> <base64(key id ‖ signature)>\n`.
    fn line(&self) -> String {
        let mut raw = self.key_id.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.signature);
        format!("{SIGNATURE_PREFIX}{} {}\n", self.name, STANDARD.encode(raw))
    }

    fn parse(line: &str, number: usize) -> Result<Self, NoteError> {
        let bad = |reason| NoteError::BadSignatureLine {
            line: number,
            reason,
        };
        let rest = line
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or_else(|| bad("it does not start with an em dash and a space"))?;
        let (name, encoded) = rest
            .split_once(' ')
            .ok_or_else(|| bad("no space between key name and signature"))?;
        if !key::valid_name(name) {
            return Err(bad("the key name must be non-empty, without '+'"));
        }
        let raw = STANDARD
            .decode(encoded)
            .map_err(|_| bad("the signature is not base64"))?;
        let Some((id, signature)) = raw.split_first_chunk::<4>() else {
            return Err(bad("the signature is shorter than its 4-byte key id"));
        };
        if signature.is_empty() {
            return Err(bad("the signature is shorter than its 4-byte key id"));
        }
        Ok(Self {
            name: name.to_owned(),
            key_id: u32::from_be_bytes(*id),
            signature: signature.to_vec(),
        })
    }
}

/// A signed note: its text (the body) and its signature lines, none checked yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// The signed text, ending with a newline.
    pub body: String,
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// `body` signed with `key`.
    pub fn sign(body: String, key: &CheckpointKey) -> Self {
        let signature = key.sign(body.as_bytes()).to_vec();
        Self {
            signatures: vec![NoteSignature {
                name: key.name().to_owned(),
                key_id: key.key_id(),
                signature,
            }],
            body,
        }
    }

    /// The note as text: the body, a blank line, the signature lines.
    pub fn encode(&self) -> String {
        let mut out = self.body.clone();
        out.push('\n');
        for signature in &self.signatures {
            out.push_str(&signature.line());
        }
        out
    }

    /// Parse a note: UTF-8 text of at most [`MAX_NOTE_BYTES`] without control characters but
    /// LF, ending in a newline; the text up to the last blank line is the body, each line
    /// after it a signature line.
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLong);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| NoteError::NotUtf8)?;
        for (i, line) in text.split('\n').enumerate() {
            let line_no = i + 1;
            if line.ends_with('\r') {
                return Err(NoteError::CarriageReturn { line: line_no });
            }
            if line.chars().any(char::is_control) {
                return Err(NoteError::ControlCharacter { line: line_no });
            }
        }
        if !text.ends_with('\n') {
            return Err(NoteError::NoFinalNewline);
        }
        let Some(split) = text.rfind("\n\n") else {
            return Err(NoteError::NoSignatures);
        };
        let body = &text[..=split];
        let lines = &text[split + 2..];
        if lines.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        let first_line = body.matches('\n').count() + 2;
        let mut signatures = Vec::new();
        for (i, line) in lines.trim_end_matches('\n').split('\n').enumerate() {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            signatures.push(NoteSignature::parse(line, first_line + i)?);
        }
        Ok(Self {
            body: body.to_owned(),
            signatures,
        })
    }

    /// The one signature of `key` (by name and key id), checked. Signatures by other keys
    /// (witnesses' cosignatures, say) are ignored, as signed notes allow.
    pub fn verify(&self, key: &VerifierKey) -> Result<(), SignatureError> {
        let mut by_key = self
            .signatures
            .iter()
            .filter(|s| s.name == key.name() && s.key_id == key.key_id());
        let Some(signature) = by_key.next() else {
            return Err(SignatureError::NotSignedBy {
                expected: key.label(),
                found: self.signatures.iter().map(NoteSignature::label).collect(),
            });
        };
        if by_key.next().is_some() {
            return Err(SignatureError::Duplicate { key: key.label() });
        }
        let valid = <&[u8; SIGNATURE_LEN]>::try_from(signature.signature.as_slice())
            .is_ok_and(|bytes| key.verifies(self.body.as_bytes(), bytes));
        if valid {
            Ok(())
        } else {
            Err(SignatureError::Bad { key: key.label() })
        }
    }
}

/// Why a well-formed note's signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "not signed by the key {expected}: the note's signatures are by {}",
        found.join(", ")
    )]
    NotSignedBy {
        expected: String,
        found: Vec<String>,
    },
    #[error("more than one signature by {key}")]
    Duplicate { key: String },
    #[error(
        "bad signature by {key}: the checkpoint was changed after it was signed, or signed by another key"
    )]
    Bad { key: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [9; 32];

    fn key() -> CheckpointKey {
        match CheckpointKey::from_seed("sealpost.example.org/audit", &SEED) {
            Ok(key) => key,
            Err(e) => panic!("test key: {e}"),
        }
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "sealpost.example.org/audit".to_owned(),
            seq: 1244,
            head: [0xAB; 32],
            time: 1_767_323_045_678,
        }
    }

    fn signed(body: &str) -> String {
        SignedNote::sign(body.to_owned(), &key()).encode()
    }

    #[test]
    fn a_signed_checkpoint_reads_back() -> Result<(), Box<dyn std::error::Error>> {
        let text = signed(&checkpoint().body());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..5],
            [
                "sealpost.example.org/audit",
                "1244",
                "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=",
                "2026-01-02T03:04:05.678Z",
                "",
            ]
        );
        assert!(lines[5].starts_with("\u{2014} sealpost.example.org/audit "));
        assert_eq!(lines.len(), 6);
        let note = SignedNote::parse(text.as_bytes())?;
        note.verify(&key().verifier())?;
        assert_eq!(Checkpoint::parse_body(&note.body)?, checkpoint());
        assert_eq!(note.encode(), text);
        Ok(())
    }

    /// Refused with a clear error, never a panic: every way of breaking the text.
    #[test]
    fn broken_notes_are_refused() {
        let good = signed(&checkpoint().body());
        let sig_line = good.lines().nth(5).unwrap_or_default().to_owned();
        let (sig_head, sig_b64) = sig_line.rsplit_once(' ').unwrap_or_default();
        let cases: Vec<(String, NoteError)> = vec![
            (String::new(), NoteError::NoFinalNewline),
            (good[..good.len() - 1].to_owned(), NoteError::NoFinalNewline),
            (checkpoint().body(), NoteError::NoSignatures),
            (
                format!("{}\n", checkpoint().body()),
                NoteError::NoSignatures,
            ),
            (
                good.replace('\n', "\r\n"),
                NoteError::CarriageReturn { line: 1 },
            ),
            (
                good.replacen("1244", "12\t44", 1),
                NoteError::ControlCharacter { line: 2 },
            ),
            (
                good.replace(sig_b64, "not base64!"),
                NoteError::BadSignatureLine {
                    line: 6,
                    reason: "the signature is not base64",
                },
            ),
            (
                good.replace(sig_b64, "AAAA"),
                NoteError::BadSignatureLine {
                    line: 6,
                    reason: "the signature is shorter than its 4-byte key id",
                },
            ),
            (
                good.replace('\u{2014}', "-"),
                NoteError::BadSignatureLine {
                    line: 6,
                    reason: "it does not start with an em dash and a space",
                },
            ),
            (
                format!("{good}trailing words\n"),
                NoteError::BadSignatureLine {
                    line: 7,
                    reason: "it does not start with an em dash and a space",
                },
            ),
            (
                good.replace(&format!("{sig_head} "), "\u{2014} "),
                NoteError::BadSignatureLine {
                    line: 6,
                    reason: "no space between key name and signature",
                },
            ),
            (
                format!("{good}{}", format!("{sig_line}\n").repeat(MAX_SIGNATURES)),
                NoteError::TooManySignatures,
            ),
            ("x".repeat(MAX_NOTE_BYTES + 1), NoteError::TooLong),
            // Cut inside the signature, the newline kept.
            (
                format!("{}\n", &good[..good.len() - 11]),
                NoteError::BadSignatureLine {
                    line: 6,
                    reason: "the signature is not base64",
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                SignedNote::parse(text.as_bytes()),
                Err(expected),
                "{text:?}"
            );
        }
        assert_eq!(SignedNote::parse(b"\xff\xfe\n\n"), Err(NoteError::NotUtf8));
    }

    #[test]
    fn bodies_that_are_not_checkpoints_are_refused() {
        let body = checkpoint().body();
        let lines: Vec<&str> = body.lines().collect();
        let with = |i: usize, line: &str| {
            let mut lines = lines.clone();
            lines[i] = line;
            format!("{}\n", lines.join("\n"))
        };
        let cases: Vec<(String, &str)> = vec![
            (
                format!("{body}extra line\n"),
                "5 lines; it must have exactly 4 (origin, sequence number, head hash, time): extra lines",
            ),
            (
                format!("{}\n", lines[..3].join("\n")),
                "3 lines; it must have exactly 4 (origin, sequence number, head hash, time): it was cut short",
            ),
            (with(0, ""), "line 1 (origin)"),
            (with(0, "two words"), "line 1 (origin)"),
            (with(1, "-5"), "line 2 (sequence number)"),
            (with(1, "01244"), "line 2 (sequence number)"),
            (with(1, "99999999999999999999"), "line 2 (sequence number)"),
            (with(1, ""), "line 2 (sequence number)"),
            (
                with(2, "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s"),
                "line 3 (head hash)",
            ),
            (with(2, "AAAA"), "line 3 (head hash)"),
            (with(2, "%%%%"), "line 3 (head hash)"),
            (with(3, "yesterday"), "line 4 (time)"),
        ];
        for (body, expected) in cases {
            // Signed, so that only the body's shape is wrong.
            let note = match SignedNote::parse(signed(&body).as_bytes()) {
                Ok(note) => note,
                Err(e) => panic!("{body:?}: {e}"),
            };
            assert!(note.verify(&key().verifier()).is_ok());
            match Checkpoint::parse_body(&note.body) {
                Ok(c) => panic!("accepted {body:?} as {c:?}"),
                Err(e) => assert!(e.to_string().contains(expected), "{body:?}: {e}"),
            }
        }
    }

    #[test]
    fn signatures_by_other_keys_and_wrong_key_ids_do_not_count()
    -> Result<(), Box<dyn std::error::Error>> {
        let other = CheckpointKey::from_seed("witness.example", &[3; 32])?;
        let body = checkpoint().body();
        let mut note = SignedNote::sign(body.clone(), &key());
        // A witness's cosignature beside the log's own is ignored.
        note.signatures
            .extend(SignedNote::sign(body.clone(), &other).signatures);
        let parsed = SignedNote::parse(note.encode().as_bytes())?;
        assert_eq!(parsed.verify(&key().verifier()), Ok(()));

        // Signed by another key only.
        let parsed = SignedNote::parse(signed_by(&body, &other).as_bytes())?;
        let err = parsed.verify(&key().verifier());
        assert!(
            matches!(&err, Err(SignatureError::NotSignedBy { found, .. }) if found[0].starts_with("witness.example+")),
            "{err:?}"
        );

        // The right name with a wrong key id.
        let mut wrong_id = SignedNote::sign(body.clone(), &key());
        wrong_id.signatures[0].key_id ^= 1;
        let parsed = SignedNote::parse(wrong_id.encode().as_bytes())?;
        match parsed.verify(&key().verifier()) {
            Err(e @ SignatureError::NotSignedBy { .. }) => {
                assert!(
                    e.to_string()
                        .starts_with("not signed by the key sealpost.example.org/audit+"),
                    "{e}"
                );
            }
            other => panic!("{other:?}"),
        }

        // The same key twice.
        let mut twice = SignedNote::sign(body.clone(), &key());
        twice.signatures.push(twice.signatures[0].clone());
        let parsed = SignedNote::parse(twice.encode().as_bytes())?;
        assert!(matches!(
            parsed.verify(&key().verifier()),
            Err(SignatureError::Duplicate { .. })
        ));

        // A changed body, and a signature of the wrong length.
        let changed = signed(&body).replacen("1244", "1245", 1);
        let parsed = SignedNote::parse(changed.as_bytes())?;
        let err = parsed.verify(&key().verifier());
        assert!(matches!(&err, Err(SignatureError::Bad { .. })), "{err:?}");
        assert!(err.is_err_and(|e| e.to_string().starts_with("bad signature by ")));
        let mut short = SignedNote::sign(body, &key());
        short.signatures[0].signature.truncate(63);
        let parsed = SignedNote::parse(short.encode().as_bytes())?;
        assert!(matches!(
            parsed.verify(&key().verifier()),
            Err(SignatureError::Bad { .. })
        ));
        Ok(())
    }

    fn signed_by(body: &str, key: &CheckpointKey) -> String {
        SignedNote::sign(body.to_owned(), key).encode()
    }
}
