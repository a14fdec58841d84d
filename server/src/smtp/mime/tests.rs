//! The MIME mapping on hand-made messages.

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
