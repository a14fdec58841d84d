//! Invariants 1 and 2 from outside: canaries in every field of two messages, searched for in
//! every file of the data directory (while running and after a clean stop), in the database
//! read back, in the server log at debug level and in the audit log.

use serde_json::json;

use crate::common::{
    Db, Multipart, attachments, canary, contains, files_under, log_mentions_code,
    pseudo_random_bytes, spawn_app,
};
use crate::{SENDER, download, submit_ok};

/// Proof of invariants 1 and 2: with unique canaries in subject, text, HTML, attachment name
/// and bytes (one message as JSON with a passphrase, one as multipart), no file under the data
/// directory except the outbox's `.eml` files contains any canary, a link secret (as text or
/// raw bytes) or a passphrase — checked while the server runs and after it stopped — and the
/// server log (at debug level) has no link secret, code or passphrase. The notifications carry
/// no content either.
#[test]
fn no_plaintext_at_rest_and_no_secrets_in_the_log() {
    let mut app = spawn_app();
    let token = app.create_sender(SENDER);

    // Message A: JSON, with a passphrase.
    let a = [
        canary("SUBJECT-A"),
        canary("TEXT-A"),
        canary("HTML-A"),
        canary("FILENAME-A"),
        canary("BYTES-A"),
    ];
    let passphrase = canary("PASSPHRASE");
    let wrong_passphrase = canary("WRONG-PASSPHRASE");
    let attachment_a = format!("begin {} end", a[4]).repeat(100).into_bytes();
    let attachment_a_b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&attachment_a)
    };
    let to_a = "carol@example.net";
    let reply = app.submit_json(
        &token,
        &json!({
            "to": [to_a],
            "subject": a[0],
            "text": format!("Body {}", a[1]),
            "html": format!("<p>Body <i>{}</i></p>", a[2]),
            "attachments": [{
                "filename": format!("{}.txt", a[3]),
                "content_type": "text/plain",
                "content_base64": attachment_a_b64,
            }],
            "passphrase": passphrase,
        }),
    );
    submit_ok(&reply);

    // Message B: multipart, opened with a code.
    let b = [
        canary("SUBJECT-B"),
        canary("TEXT-B"),
        canary("HTML-B"),
        canary("FILENAME-B"),
        canary("BYTES-B"),
    ];
    let mut attachment_b = pseudo_random_bytes(300 * 1024, 7);
    attachment_b.extend_from_slice(b[4].as_bytes());
    attachment_b.extend_from_slice(&pseudo_random_bytes(100 * 1024, 8));
    let to_b = "dave@example.net";
    let reply = app.submit_multipart(
        &token,
        &Multipart::new()
            .text("to", to_b)
            .text("subject", &b[0])
            .text("text", &format!("Body {}", b[1]))
            .text("html", &format!("<p>Body <i>{}</i></p>", b[2]))
            .file(
                "attachment",
                &format!("{}.bin", b[3]),
                "application/octet-stream",
                attachment_b.clone(),
            ),
    );
    submit_ok(&reply);

    let link_a = app.notification_link(to_a);
    let link_b = app.notification_link(to_b);

    // The notifications carry no content (only the link and who sent it).
    for mail in app.outbox() {
        for c in a.iter().chain(&b).chain([&passphrase]) {
            assert!(
                !contains(&mail.raw, c.as_bytes())
                    && !mail.text.contains(c.as_str())
                    && !mail.subject.contains(c.as_str()),
                "the mail {} carries {c}",
                mail.path.display()
            );
        }
    }

    // Pick both up: A with its passphrase (one wrong try first), B with a code.
    let reply = app.post_form(
        &format!("/p/{}/open", link_a.pickup_id),
        &[("k", &link_a.secret), ("passphrase", &wrong_passphrase)],
        None,
    );
    assert_eq!(reply.status, 403, "wrong passphrase: {}", reply.page_text());
    let reply = app.post_form(
        &format!("/p/{}/open", link_a.pickup_id),
        &[("k", &link_a.secret), ("passphrase", &passphrase)],
        None,
    );
    assert_eq!(reply.status, 200, "open A: {}", reply.page_text());
    assert!(reply.page_text().contains(&a[1]), "A's text not shown");
    let (part_a, _) = attachments(&reply)[0].clone();
    let file = download(&app, &link_a, part_a, &[("passphrase", &passphrase)], None);
    assert_eq!(file.status, 200);
    assert!(file.body == attachment_a, "A's attachment differs");

    let got = app.pick_up(&link_b, to_b);
    // The last mail to B is the code that opened the session.
    let code = app.last_mail_to(to_b).code();
    assert!(got.text.contains(&b[1]), "B's text not shown");
    assert!(
        got.file(&format!("{}.bin", b[3])) == attachment_b,
        "B's attachment differs"
    );

    // What must never be at rest: every canary, the A attachment's base64 as sent, the
    // passphrases, and both link secrets as text and as raw bytes.
    let mut needles: Vec<(String, Vec<u8>)> = a
        .iter()
        .chain(&b)
        .map(|c| (c.clone(), c.as_bytes().to_vec()))
        .collect();
    needles.push((
        "attachment A as base64".into(),
        attachment_a_b64.as_bytes().to_vec(),
    ));
    needles.push(("passphrase".into(), passphrase.as_bytes().to_vec()));
    needles.push((
        "wrong passphrase".into(),
        wrong_passphrase.as_bytes().to_vec(),
    ));
    for (name, link) in [("A", &link_a), ("B", &link_b)] {
        use base64::Engine as _;
        needles.push((
            format!("link secret {name}"),
            link.secret.as_bytes().to_vec(),
        ));
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&link.secret)
            .expect("the link secret is base64url");
        assert_eq!(raw.len(), 16);
        needles.push((format!("link secret {name} (raw bytes)"), raw));
    }

    let data_dir = app.data_dir.clone();
    let scan = |when: &str| {
        let files = files_under(&data_dir);
        assert!(
            files.iter().any(|f| f.ends_with("sealpost.db")),
            "no database file under {}",
            data_dir.display()
        );
        let mut found = Vec::new();
        for file in &files {
            let in_outbox = file.parent().is_some_and(|p| p == data_dir.join("outbox"));
            if in_outbox && file.extension().is_some_and(|e| e == "eml") {
                continue;
            }
            let bytes = std::fs::read(file).expect("read data file");
            for (name, needle) in &needles {
                if contains(&bytes, needle) {
                    found.push(format!("{name} in {}", file.display()));
                }
            }
        }
        assert!(
            found.is_empty(),
            "plaintext or secrets at rest ({when}):\n{}\nfiles scanned: {files:?}",
            found.join("\n")
        );
        // Control: metadata kept in clear on purpose is found, so the scan does see the data.
        assert!(
            files
                .iter()
                .any(
                    |f| std::fs::read(f).is_ok_and(|bytes| contains(&bytes, to_b.as_bytes())
                        && !f.starts_with(data_dir.join("outbox")))
                ),
            "the scan found not even the recipient address ({when}): it reads nothing useful"
        );
    };
    let check_log = |log: &str, when: &str| {
        for (name, secret) in [
            ("link secret A", link_a.secret.as_str()),
            ("link secret B", link_b.secret.as_str()),
            ("passphrase", passphrase.as_str()),
            ("wrong passphrase", wrong_passphrase.as_str()),
        ] {
            assert!(
                !log.contains(secret),
                "the server log ({when}) contains the {name}"
            );
        }
        assert!(
            !log_mentions_code(log, &code),
            "the server log ({when}) contains the one-time code {code}"
        );
        for c in a.iter().chain(&b) {
            assert!(
                !log.contains(c.as_str()),
                "the server log ({when}) contains {c}"
            );
        }
    };

    scan("while running");
    // Control: the log does record the pickup requests (their URIs carry the pickup id).
    assert!(
        app.log().contains(&link_b.pickup_id),
        "the captured log has no request lines; nothing to check"
    );
    check_log(&app.log(), "while running");
    // Nothing got into the audit log either.
    let audit = serde_json::to_string(&app.audit_events()).expect("audit JSON");
    check_log(&audit, "audit log");

    app.stop();
    scan("after a clean stop");
    check_log(&app.log(), "after stop");
    // Also nothing in the database after a checkpoint into the main file, when read back.
    let dump = format!("{:?}", Db::read_only(&app.db_path()).dump());
    for (name, needle) in &needles {
        if let Ok(s) = std::str::from_utf8(needle) {
            assert!(!dump.contains(s), "{name} readable from the database");
        }
    }
}
