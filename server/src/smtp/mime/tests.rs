//! The MIME mapping on hand-made messages.

use base64::Engine;

use super::*;

#[test]
fn parses_bodies_attachments_and_encoded_words() -> Result<(), String> {
    let raw = concat!(
        "From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\n",
        "To: r@example.net\r\n",
        "Subject: =?utf-8?b?R3LDvMOfZSDinJM=?=\r\n",
        "MIME-Version: 1.0\r\n",
        "Content-Type: multipart/mixed; boundary=\"outer\"\r\n",
        "\r\n",
        "--outer\r\n",
        "Content-Type: multipart/alternative; boundary=\"alt\"\r\n",
        "\r\n",
        "--alt\r\n",
        "Content-Type: text/plain; charset=iso-8859-1\r\n",
        "Content-Transfer-Encoding: quoted-printable\r\n",
        "\r\n",
        "Sch=F6ne Gr=FC=DFe\r\n",
        "--alt\r\n",
        "Content-Type: text/html; charset=utf-8\r\n",
        "\r\n",
        "<p>Sch\u{f6}ne</p>\r\n",
        "--alt--\r\n",
        "--outer\r\n",
        "Content-Type: application/pdf; name=\"a.pdf\"\r\n",
        "Content-Disposition: attachment; filename=\"../../etc/r\u{e9}sum\u{e9}.pdf\"\r\n",
        "Content-Transfer-Encoding: base64\r\n",
        "\r\n",
        "JVBERi0xLjQK\r\n",
        "--outer\r\n",
        "Content-Type: message/rfc822\r\n",
        "\r\n",
        "Subject: inner\r\n",
        "\r\n",
        "inner body\r\n",
        "--outer--\r\n",
    );
    let p = parse(raw.as_bytes()).ok_or("not parsed")?;
    assert_eq!(p.subject, "Grüße ✓");
    assert_eq!(
        p.from_name,
        Some(("Jürgen".to_owned(), "j@example.org".to_owned()))
    );
    assert_eq!(p.text.as_deref().map(str::trim), Some("Schöne Grüße"));
    assert!(
        p.html
            .as_deref()
            .is_some_and(|h| h.contains("<p>Schöne</p>"))
    );
    assert_eq!(p.attachments.len(), 2, "{:?}", p.attachments);
    assert_eq!(p.attachments[0].filename, "résumé.pdf");
    assert_eq!(p.attachments[0].content_type, "application/pdf");
    assert_eq!(p.attachments[0].bytes, b"%PDF-1.4\n");
    assert_eq!(p.attachments[1].filename, "inner.eml");
    assert_eq!(p.attachments[1].content_type, "message/rfc822");
    assert!(
        String::from_utf8_lossy(&p.attachments[1].bytes).contains("inner body"),
        "the nested message is kept whole"
    );
    Ok(())
}

#[test]
fn plain_message_and_garbage() {
    let p = parse(b"Subject: hi\r\n\r\nhello\r\n");
    assert_eq!(p.as_ref().map(|p| p.subject.as_str()), Some("hi"));
    assert_eq!(
        p.as_ref().and_then(|p| p.text.as_deref()).map(str::trim),
        Some("hello")
    );
    assert!(p.is_some_and(|p| p.html.is_none() && p.attachments.is_empty()));
    assert!(parse(b"").is_none());
}

#[test]
fn names_and_types_are_cleaned() {
    assert_eq!(content_type_of("Image/PNG"), "image/png");
    assert_eq!(
        content_type_of("text/html\r\nX: y"),
        "application/octet-stream"
    );
    assert_eq!(content_type_of("nonsense"), "application/octet-stream");
}

// One test per fault class that a differential run against Python's `email` found in the
// mapping through mail-parser alone (issue 11, "Faithful attachments").

/// A multipart/mixed message (boundary `b`) with a short text body and `parts`, each given as
/// its header lines, an empty line and its body.
fn mixed(parts: &[&[u8]]) -> Vec<u8> {
    let mut raw = b"From: a@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
        Content-Type: text/plain\r\n\r\nbody\r\n"
        .to_vec();
    for part in parts {
        raw.extend_from_slice(b"--b\r\n");
        raw.extend_from_slice(part);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"--b--\r\n");
    raw
}

fn parsed(raw: &[u8]) -> Parsed {
    parse(raw).unwrap_or_else(|| panic!("not parsed: {}", String::from_utf8_lossy(raw)))
}

fn names(p: &Parsed) -> Vec<&str> {
    p.attachments.iter().map(|a| a.filename.as_str()).collect()
}

/// Fault 1: a text attachment is the bytes that were sent, in their own charset.
#[test]
fn text_attachments_keep_their_charset_bytes() {
    let latin1 = b"Name;Ort\r\nM\xfcller;K\xf6ln\r\nP\xe9rez;M\xe1laga\r\n";
    let mut part = b"Content-Type: text/plain; charset=iso-8859-1; name=\"list.txt\"\r\n\
        Content-Disposition: attachment; filename=\"list.txt\"\r\n\
        Content-Transfer-Encoding: 8bit\r\n\r\n"
        .to_vec();
    part.extend_from_slice(latin1);
    let utf16: Vec<u8> = "\u{feff}a;b\r\n1;2\r\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let csv = format!(
        "Content-Type: text/csv; charset=utf-16; name=\"t.csv\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}",
        base64::engine::general_purpose::STANDARD.encode(&utf16)
    );
    let p = parsed(&mixed(&[&part, csv.as_bytes()]));
    assert_eq!(names(&p), ["list.txt", "t.csv"]);
    assert_eq!(
        p.attachments[0].bytes, latin1,
        "latin-1 text, byte for byte"
    );
    assert_eq!(p.attachments[1].bytes, utf16, "UTF-16 text, byte for byte");
}

/// Fault 2: binary data labelled `text/*` comes out unchanged.
#[test]
fn binary_labelled_text_is_not_destroyed() {
    let jpeg: Vec<u8> = [
        0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 0x80,
    ]
    .into_iter()
    .chain((0..=255).map(|b: u8| b.wrapping_mul(7)))
    .collect();
    let part = format!(
        "Content-Type: text/plain; name=\"photo.jpg\"\r\n\
         Content-Disposition: attachment; filename=\"photo.jpg\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}",
        base64::engine::general_purpose::STANDARD.encode(&jpeg)
    );
    let p = parsed(&mixed(&[part.as_bytes()]));
    assert_eq!(names(&p), ["photo.jpg"]);
    assert_eq!(p.attachments[0].bytes, jpeg);
}

/// Fault 3: a uuencoded attachment is decoded, and named by its `begin` line.
#[test]
fn uuencoded_attachments_are_decoded() {
    let part = b"Content-Type: application/octet-stream\r\n\
        Content-Transfer-Encoding: x-uuencode\r\n\r\n\
        begin 644 hello.txt\r\n&:&5L;&\\*\r\n`\r\nend\r\n";
    let p = parsed(&mixed(&[part]));
    assert_eq!(names(&p), ["hello.txt"]);
    assert_eq!(p.attachments[0].bytes, b"hello\n");
}

/// Fault 4: a forward of three messages lists three, and the part after them too.
#[test]
fn nested_messages_do_not_swallow_the_parts_after_them() {
    let inner = |n: u32| {
        format!(
            "Content-Type: message/rfc822\r\n\r\n\
             Subject: forwarded {n}\r\nContent-Type: multipart/alternative; boundary=\"i{n}\"\r\n\r\n\
             --i{n}\r\nContent-Type: text/plain\r\n\r\ninner {n}\r\n"
        )
    };
    let (a, b, c) = (inner(1), inner(2), inner(3));
    let last = b"Content-Type: application/pdf; name=\"x.pdf\"\r\n\r\n%PDF";
    let p = parsed(&mixed(&[a.as_bytes(), b.as_bytes(), c.as_bytes(), last]));
    assert_eq!(
        names(&p),
        [
            "forwarded 1.eml",
            "forwarded 2.eml",
            "forwarded 3.eml",
            "x.pdf"
        ]
    );
    assert!(p.attachments[1].bytes.ends_with(b"inner 2\r\n"));
    assert_eq!(p.attachments[3].bytes, b"%PDF");
    assert_eq!(p.text.as_deref(), Some("body"));
}

/// Fault 5: `boundary=` on a folded line of the header is found.
#[test]
fn a_boundary_on_a_folded_line_is_found() {
    let raw = b"Subject: s\r\nContent-Type: multipart/mixed;\r\n\
        \tboundary=\r\n \"folded\"\r\n\r\n\
        --folded\r\nContent-Type: text/plain\r\n\r\nthe body\r\n\
        --folded\r\nContent-Type: application/zip; name=\"a.zip\"\r\n\r\nPK\r\n--folded--\r\n";
    let p = parsed(raw);
    assert_eq!(p.text.as_deref(), Some("the body"));
    assert_eq!(names(&p), ["a.zip"]);
    assert_eq!(p.attachments[0].bytes, b"PK");
}

/// Fault 6: quoted-printable that ends in a soft line break keeps its last bytes.
#[test]
fn quoted_printable_ending_in_a_soft_break_keeps_its_end() {
    let part = b"Content-Type: application/octet-stream; name=\"q.bin\"\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\r\n\
        first line=0D=0A=\r\nlast bytes=FF=";
    let p = parsed(&mixed(&[part]));
    assert_eq!(p.attachments[0].bytes, b"first line\r\nlast bytes\xff");
}

/// Fault 7: base64 without padding keeps its last byte; base64 followed by a list footer is
/// decoded, without the footer.
#[test]
fn base64_without_padding_or_with_a_footer_is_decoded() {
    let unpadded = b"Content-Type: application/octet-stream; name=\"u.bin\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\naGVsbG8";
    let footer = b"Content-Type: application/octet-stream; name=\"f.bin\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n\r\n\
        _______________________________________________\r\n\
        List mailing list -- list@example.org\r\n";
    let p = parsed(&mixed(&[unpadded, footer]));
    assert_eq!(names(&p), ["u.bin", "f.bin"]);
    assert_eq!(p.attachments[0].bytes, b"hello");
    assert_eq!(p.attachments[1].bytes, b"hello world");
}

/// Fault 8: a nested message is named after its whole subject, `/` included; text that
/// merely contains the boundary in mid-line is text.
#[test]
fn nested_names_keep_slashes_and_mid_line_boundaries_are_text() {
    let nested = b"Content-Type: message/rfc822\r\n\r\nSubject: Re: 34Mbit/s and w/o\r\n\r\nhi";
    let p = parsed(&mixed(&[nested]));
    assert_eq!(names(&p), ["Re: 34Mbit_s and w_o.eml"]);

    let raw = b"Subject: s\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\n\
        This text mentions --b in mid-line\r\nand goes on.\r\n--b--\r\n";
    let p = parsed(raw);
    assert_eq!(
        p.text.as_deref(),
        Some("This text mentions --b in mid-line\r\nand goes on.")
    );
}

/// RFC 2231 continuations are joined as octets before the charset applies (section 4.1):
/// a character split between pieces, and pieces in ISO-8859-1, come out whole. (Found by
/// `tests/mime_props.rs`; mail-parser decodes each piece on its own.)
#[test]
fn rfc2231_continuations_join_octets_first() {
    let split = b"Content-Type: application/pdf\r\n\
        Content-Disposition: attachment;\r\n filename*0*=utf-8''%E4%B8;\r\n filename*1*=%AD.pdf\r\n\r\nx";
    let latin1 = b"Content-Type: application/pdf;\r\n name*0*=iso-8859-1''M%FC;\r\n name*1*=ller%E9\r\n\r\ny";
    let p = parsed(&mixed(&[split, latin1]));
    assert_eq!(names(&p), ["\u{4e2d}.pdf", "M\u{fc}ller\u{e9}"]);
}
