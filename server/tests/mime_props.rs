//! Property test of `smtp::mime::parse`: random MIME trees, written out as a mail client
//! would, must parse back to the bodies and attachments they were made from.
//!
//! The generator knows the ground truth: the bytes of every attachment and the text of every
//! body part before it encoded them. It varies what the differential corpora show going
//! wrong: nesting (multiparts in multiparts, `message/rfc822` with multiparts inside, parts
//! after nested messages), every transfer encoding (7bit/8bit/binary, base64 padded or not,
//! in lines of any length, quoted-printable in text or binary style, ending in a soft line
//! break or not, uuencode), body charsets (UTF-8, ISO-8859-1, none), text attachments in
//! charsets (bytes must not change), file names as plain, RFC 2231 (with continuations) and
//! encoded-word parameters, and `boundary=` folded onto the next line.
//!
//! Expected results follow the reader's rules of `smtp::mime` (its module doc), the same
//! rules that `mime_oracle.rs` holds to Python's `email`.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use proptest::prelude::*;
use sealpost_server::messages::clean_file_name;
use sealpost_server::smtp::mime::parse;

#[derive(Debug, Clone)]
enum Node {
    /// Body text: `text/plain` or `text/html`, inline, unnamed.
    Body {
        html: bool,
        text: String,
        charset: Charset,
        enc: Enc,
    },
    /// An attachment (or a named inline text part, which is both).
    File(File),
    Multipart {
        subtype: &'static str,
        fold: bool,
        parts: Vec<Node>,
    },
    /// `message/rfc822` holding a whole message with this subject and body.
    Message {
        subject: String,
        encoded_subject: bool,
        body: Box<Node>,
    },
}

#[derive(Debug, Clone)]
struct File {
    content_type: &'static str,
    bytes: Vec<u8>,
    enc: Enc,
    name: Option<String>,
    style: NameStyle,
    /// `Content-Disposition: inline` (only for a named `text/plain` part: body and file).
    inline_text: bool,
}

#[derive(Debug, Clone, Copy)]
enum Charset {
    Utf8,
    Latin1,
    None,
}

#[derive(Debug, Clone, Copy)]
enum Enc {
    Identity(&'static str),
    Base64 { padded: bool, line: usize },
    Qp { binary: bool, soft_end: bool },
    Uu,
}

#[derive(Debug, Clone, Copy)]
enum NameStyle {
    Quoted,
    Rfc2231,
    Rfc2231Continued,
    EncodedWord,
    FoldedDisposition,
}

fn text_strategy(charset: Charset) -> BoxedStrategy<String> {
    match charset {
        Charset::Utf8 => "[a-zA-Z0-9 .,;:!?éüßñ中文ß€\r\n-]{0,120}".boxed(),
        Charset::Latin1 => "[a-zA-Z0-9 .,;:!?éüßñÅæø\r\n-]{0,120}".boxed(),
        Charset::None => "[a-zA-Z0-9 .,;:!?\r\n-]{0,120}".boxed(),
    }
}

fn enc_strategy() -> impl Strategy<Value = Enc> {
    prop_oneof![
        prop_oneof![Just("7bit"), Just("8bit"), Just("binary")].prop_map(Enc::Identity),
        (
            any::<bool>(),
            prop_oneof![Just(76usize), Just(64), 1usize..200]
        )
            .prop_map(|(padded, line)| Enc::Base64 { padded, line }),
        (any::<bool>(), any::<bool>()).prop_map(|(binary, soft_end)| Enc::Qp { binary, soft_end }),
        Just(Enc::Uu),
    ]
}

fn body_strategy() -> impl Strategy<Value = Node> {
    (
        any::<bool>(),
        prop_oneof![
            Just(Charset::Utf8),
            Just(Charset::Latin1),
            Just(Charset::None)
        ],
        enc_strategy().prop_filter("uuencode is for files", |e| !matches!(e, Enc::Uu)),
    )
        .prop_flat_map(|(html, charset, enc)| {
            text_strategy(charset).prop_map(move |text| Node::Body {
                html,
                text,
                charset,
                enc,
            })
        })
}

fn file_strategy() -> impl Strategy<Value = Node> {
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400),
        proptest::collection::vec(any::<u8>(), 2000..5000),
    ];
    let name = proptest::option::weighted(0.8, "[a-zA-Z0-9éü中 _.-]{1,30}");
    let style = prop_oneof![
        Just(NameStyle::Quoted),
        Just(NameStyle::Rfc2231),
        Just(NameStyle::Rfc2231Continued),
        Just(NameStyle::EncodedWord),
        Just(NameStyle::FoldedDisposition),
    ];
    let content_type = prop_oneof![
        Just("application/octet-stream"),
        Just("image/jpeg"),
        Just("application/pdf"),
        Just("text/plain; charset=iso-8859-1"),
        Just("text/csv; charset=utf-16"),
        Just("text/plain"),
    ];
    (
        content_type,
        bytes,
        enc_strategy(),
        name,
        style,
        any::<bool>(),
    )
        .prop_map(|(content_type, bytes, enc, name, style, inline)| {
            let inline_text = inline && content_type == "text/plain" && name.is_some();
            let bytes = if inline_text {
                // Shown as body text too: make it text that decodes as UTF-8 unchanged.
                String::from_utf8_lossy(&bytes).into_owned().into_bytes()
            } else {
                bytes
            };
            Node::File(File {
                content_type,
                bytes,
                enc,
                name,
                style,
                inline_text,
            })
        })
}

fn leaf_strategy() -> impl Strategy<Value = Node> {
    prop_oneof![body_strategy(), file_strategy()]
}

fn tree_strategy() -> impl Strategy<Value = Node> {
    leaf_strategy().prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            3 => (
                prop_oneof![Just("mixed"), Just("alternative"), Just("related"), Just("parallel")],
                any::<bool>(),
                proptest::collection::vec(inner.clone(), 1..5),
            )
                .prop_map(|(subtype, fold, parts)| Node::Multipart { subtype, fold, parts }),
            1 => ("[a-zA-Z0-9/:é]{1,12}( [a-zA-Z0-9/:é]{1,12}){0,4}", any::<bool>(), inner)
                .prop_map(|(subject, encoded, body)| Node::Message {
                    encoded_subject: encoded || !subject.is_ascii(),
                    subject,
                    body: Box::new(body),
                }),
        ]
    })
}

/// What `parse` must return for a tree, recorded while the tree is written out.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    text: Vec<String>,
    html: Vec<String>,
    attachments: Vec<(String, Vec<u8>)>,
}

/// Boundaries that never occur in content: `=_` cannot start a base64, quoted-printable or
/// uuencoded line, and the generated texts have no `=`.
struct Boundaries(usize);

impl Boundaries {
    fn next(&mut self) -> String {
        self.0 += 1;
        format!("=_part.{:04}_{}", self.0, self.0 * 7919 % 10007)
    }
}

fn encode_charset(text: &str, charset: Charset) -> Vec<u8> {
    match charset {
        Charset::Latin1 => text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect(),
        Charset::Utf8 | Charset::None => text.as_bytes().to_vec(),
    }
}

fn qp(bytes: &[u8], binary: bool, soft_end: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut col = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !binary && b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            out.extend_from_slice(b"\r\n");
            col = 0;
            i += 2;
            continue;
        }
        let next_is_eol = !binary && (bytes.get(i + 1) == Some(&b'\r') || i + 1 == bytes.len())
            || binary && i + 1 == bytes.len();
        let literal = (33..=126).contains(&b) && b != b'=' || (b == b' ' && !next_is_eol);
        let piece = if literal {
            vec![b]
        } else {
            format!("={b:02X}").into_bytes()
        };
        if col + piece.len() > 75 {
            out.extend_from_slice(b"=\r\n");
            col = 0;
        }
        col += piece.len();
        out.extend_from_slice(&piece);
        i += 1;
    }
    if soft_end {
        out.push(b'=');
    }
    out
}

fn uuencode(bytes: &[u8], name: &str) -> Vec<u8> {
    let ch = |v: u8| if v == 0 { b'`' } else { v + 32 };
    let mut out = format!("begin 644 {name}\r\n").into_bytes();
    for line in bytes.chunks(45) {
        out.push(ch(u8::try_from(line.len()).unwrap_or(0)));
        for group in line.chunks(3) {
            let g = [
                group[0],
                *group.get(1).unwrap_or(&0),
                *group.get(2).unwrap_or(&0),
            ];
            out.extend_from_slice(&[
                ch(g[0] >> 2),
                ch(((g[0] & 3) << 4) | (g[1] >> 4)),
                ch(((g[1] & 15) << 2) | (g[2] >> 6)),
                ch(g[2] & 63),
            ]);
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"`\r\nend\r\n");
    out
}

/// The header lines (without the empty line) and the encoded body of `bytes`.
fn encode(bytes: &[u8], enc: Enc, uu_name: &str) -> (String, Vec<u8>) {
    match enc {
        Enc::Identity(name) => (
            format!("Content-Transfer-Encoding: {name}\r\n"),
            bytes.to_vec(),
        ),
        Enc::Base64 { padded, line } => {
            let text = if padded {
                STANDARD.encode(bytes)
            } else {
                STANDARD_NO_PAD.encode(bytes)
            };
            let mut body = Vec::new();
            for chunk in text.as_bytes().chunks(line.max(1)) {
                body.extend_from_slice(chunk);
                body.extend_from_slice(b"\r\n");
            }
            ("Content-Transfer-Encoding: base64\r\n".to_owned(), body)
        }
        Enc::Qp { binary, soft_end } => (
            "Content-Transfer-Encoding: quoted-printable\r\n".to_owned(),
            qp(bytes, binary, soft_end),
        ),
        Enc::Uu => (
            "Content-Transfer-Encoding: x-uuencode\r\n".to_owned(),
            uuencode(bytes, uu_name),
        ),
    }
}

fn pct(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn name_params(name: &str, style: NameStyle, disposition: &str) -> (String, String) {
    let style = match style {
        NameStyle::Quoted | NameStyle::FoldedDisposition if !name.is_ascii() => NameStyle::Rfc2231,
        s => s,
    };
    match style {
        NameStyle::Quoted => (String::new(), format!("{disposition}; filename=\"{name}\"")),
        NameStyle::FoldedDisposition => (
            String::new(),
            format!("{disposition};\r\n\tfilename=\"{name}\""),
        ),
        NameStyle::Rfc2231 => (
            String::new(),
            format!("{disposition}; filename*=utf-8''{}", pct(name)),
        ),
        NameStyle::Rfc2231Continued => {
            let p = pct(name);
            let mut cut = p.len() / 2;
            while cut > 0
                && (p.as_bytes()[cut - 1] == b'%' || cut >= 2 && p.as_bytes()[cut - 2] == b'%')
            {
                cut -= 1;
            }
            (
                String::new(),
                format!(
                    "{disposition};\r\n filename*0*=utf-8''{};\r\n filename*1*={}",
                    &p[..cut],
                    &p[cut..]
                ),
            )
        }
        NameStyle::EncodedWord => (
            format!("; name=\"=?utf-8?B?{}?=\"", STANDARD.encode(name)),
            disposition.to_owned(),
        ),
    }
}

/// One entity (header lines, an empty line, the body); what it must parse to goes to `want`.
fn entity(node: &Node, b: &mut Boundaries, want: &mut Expected) -> Vec<u8> {
    match node {
        Node::Body {
            html,
            text,
            charset,
            enc,
        } => {
            if *html {
                &mut want.html
            } else {
                &mut want.text
            }
            .push(text.clone());
            let subtype = if *html { "html" } else { "plain" };
            let charset_param = match charset {
                Charset::Utf8 => "; charset=UTF-8",
                Charset::Latin1 => "; charset=\"iso-8859-1\"",
                Charset::None => "",
            };
            let (cte, body) = encode(&encode_charset(text, *charset), *enc, "");
            let mut out =
                format!("Content-Type: text/{subtype}{charset_param}\r\n{cte}\r\n").into_bytes();
            out.extend_from_slice(&body);
            out
        }
        Node::File(f) => {
            if f.inline_text {
                want.text
                    .push(String::from_utf8_lossy(&f.bytes).into_owned());
            }
            let n = want.attachments.len() + 1;
            let uu_name = format!("uu-{n}.bin");
            let name = f
                .name
                .clone()
                .or_else(|| matches!(f.enc, Enc::Uu).then(|| uu_name.clone()));
            let name = clean_file_name(name.as_deref(), &format!("attachment-{n}"));
            want.attachments.push((name, f.bytes.clone()));
            let disposition = if f.inline_text {
                "inline"
            } else {
                "attachment"
            };
            let (ct_param, cd) = match &f.name {
                Some(name) => name_params(name, f.style, disposition),
                None => (String::new(), disposition.to_owned()),
            };
            let (cte, body) = encode(&f.bytes, f.enc, &uu_name);
            let mut out = format!(
                "Content-Type: {}{ct_param}\r\nContent-Disposition: {cd}\r\n{cte}\r\n",
                f.content_type
            )
            .into_bytes();
            out.extend_from_slice(&body);
            out
        }
        Node::Multipart {
            subtype,
            fold,
            parts,
        } => {
            let boundary = b.next();
            let param = if *fold {
                format!(";\r\n\tboundary=\r\n \"{boundary}\"")
            } else {
                format!("; boundary=\"{boundary}\"")
            };
            let mut out =
                format!("Content-Type: multipart/{subtype}{param}\r\n\r\nA preamble.\r\n")
                    .into_bytes();
            for part in parts {
                out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
                out.extend_from_slice(&entity(part, b, want));
            }
            out.extend_from_slice(format!("\r\n--{boundary}--\r\nAn epilogue.\r\n").as_bytes());
            out
        }
        Node::Message {
            subject,
            encoded_subject,
            body,
        } => {
            // The nested message is one attachment: its own parts are not the outer's.
            let inner = message_bytes(subject, *encoded_subject, body, b, &mut Expected::default());
            let fallback = format!("{}.eml", subject.replace('/', "_"));
            want.attachments
                .push((clean_file_name(None, &fallback), inner.clone()));
            let mut out = b"Content-Type: message/rfc822\r\n\r\n".to_vec();
            out.extend_from_slice(&inner);
            out
        }
    }
}

fn message_bytes(
    subject: &str,
    encoded: bool,
    body: &Node,
    b: &mut Boundaries,
    want: &mut Expected,
) -> Vec<u8> {
    let subject = if encoded {
        format!("=?utf-8?B?{}?=", STANDARD.encode(subject))
    } else {
        subject.to_owned()
    };
    let mut out =
        format!("From: x@example.org\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n").into_bytes();
    out.extend_from_slice(&entity(body, b, want));
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Proof: every body text and every attachment (bytes and name) of a random MIME tree
    /// comes back from `parse` as it was before it was encoded.
    #[test]
    fn random_mime_trees_parse_to_what_they_were_made_of(root in tree_strategy()) {
        let mut want = Expected::default();
        let raw = message_bytes("test", false, &root, &mut Boundaries(0), &mut want);
        let parsed = parse(&raw).expect("a message with headers");
        let join = |v: &[String], sep: &str| (!v.is_empty()).then(|| v.join(sep));
        let raw_text = String::from_utf8_lossy(&raw);
        prop_assert_eq!(parsed.text, join(&want.text, "\n\n"), "{}", raw_text);
        prop_assert_eq!(parsed.html, join(&want.html, "\n<hr>\n"), "{}", raw_text);
        let got: Vec<(String, Vec<u8>)> =
            parsed.attachments.into_iter().map(|a| (a.filename, a.bytes)).collect();
        prop_assert_eq!(got, want.attachments, "{}", raw_text);
    }
}
