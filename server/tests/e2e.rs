//! End-to-end tests of the real `sealpost` binary over real sockets: submit through the API,
//! read the notification and the one-time code from the file outbox, pick the message up
//! through the recipient pages, and check the invariants of DESIGN.md section 3 from outside
//! (the data directory, the server log, the audit log).

mod common;

use common::{
    App, AppBuilder, Db, Multipart, PickupLink, Reply, attachments, canary, contains, copy_dir,
    dump_diff, files_under, log_mentions_code, pseudo_random_bytes, spawn_app,
};
use serde_json::json;

const SENDER: &str = "sender@example.org";

/// Download attachment `part_no` by form post.
fn download(
    app: &App,
    link: &PickupLink,
    part_no: u32,
    extra: &[(&str, &str)],
    cookie: Option<&str>,
) -> Reply {
    let mut fields = vec![("k", link.secret.as_str())];
    fields.extend_from_slice(extra);
    app.post_form(
        &format!("/p/{}/attachments/{part_no}", link.pickup_id),
        &fields,
        cookie,
    )
}

/// The same secret with its first character changed: well-formed, but wrong.
fn wrong_secret(secret: &str) -> String {
    let first = if secret.starts_with('A') { 'B' } else { 'A' };
    format!("{first}{}", &secret[1..])
}

fn submit_ok(reply: &Reply) -> String {
    assert_eq!(reply.status, 201, "submit: {}", reply.text());
    let json = reply.json();
    json["id"].as_str().expect("id in the 201 body").to_owned()
}

/// Proof: a sender and token made with the CLI submit a message (text, HTML, a 20 MiB and a
/// small attachment) as multipart; the notification in the outbox has a generic subject and the
/// link; a one-time code is emailed and verified; the opened page shows the text and the
/// sanitised HTML; both attachments download byte for byte; the sender sees the first open.
#[test]
fn full_flow_submit_notify_code_verify_open_download() {
    let app = spawn_app();
    let token = app.create_sender(SENDER);
    let recipient = "alice@example.net";
    let subject = "Quarterly results for Alice (confidential)";
    let body_text = "Dear Alice, here are the quarterly results we discussed. Regards, Sam.";
    let big = pseudo_random_bytes(20 * 1024 * 1024, 0x5EA1_9057);
    let small = b"a small second attachment\n".repeat(40);

    let reply = app.submit_multipart(
        &token,
        &Multipart::new()
            .text("to", recipient)
            .text("subject", subject)
            .text("text", body_text)
            .text(
                "html",
                "<p>Dear Alice, the <b>HtmlBodyMarker</b> results.</p><script>alert(1)</script>",
            )
            .file(
                "attachment",
                "results.bin",
                "application/octet-stream",
                big.clone(),
            )
            .file("attachment", "notes.txt", "text/plain", small.clone()),
    );
    let id = submit_ok(&reply);
    let json = reply.json();
    assert_eq!(
        json["recipients"],
        json!([{"address": recipient, "status": "notified"}]),
        "{json}"
    );

    // The notification: generic subject, the link with the secret.
    let notification = app.last_mail_to(recipient);
    assert!(
        !notification.subject.contains("Quarterly") && !notification.subject.contains(subject),
        "the notification subject leaks the original subject: {:?}",
        notification.subject
    );
    assert!(
        !contains(&notification.raw, b"Quarterly")
            && !contains(&notification.raw, b"HtmlBodyMarker"),
        "the notification carries message content"
    );
    let link = notification.link(&app.base_url);
    assert!(
        notification.html.contains(&link.pickup_id),
        "HTML part lacks the link"
    );

    // Landing page: changes nothing, starts no session.
    let landing = app.get(&format!("/p/{}", link.pickup_id));
    assert_eq!(landing.status, 200, "{}", landing.text());
    assert!(
        landing.header("set-cookie").is_none(),
        "landing set a cookie"
    );
    assert!(
        landing.page_text().contains(SENDER),
        "landing names the sender"
    );

    // Code by email, verify, open.
    let cookie = app.verify_by_code(&link, recipient);
    let page = app.post_form(
        &format!("/p/{}/open", link.pickup_id),
        &[("k", &link.secret)],
        Some(&cookie),
    );
    assert_eq!(page.status, 200, "open: {}", page.page_text());
    let page_text = page.page_text();
    assert!(page_text.contains(subject), "subject missing: {page_text}");
    assert!(
        page_text.contains(body_text),
        "text body missing: {page_text}"
    );
    let html = page.text();
    assert!(
        html.contains("srcdoc=") && html.contains("HtmlBodyMarker"),
        "HTML body missing from the iframe"
    );
    assert!(!html.contains("alert(1)"), "script survived sanitising");
    assert!(
        page.header("content-security-policy").is_some(),
        "no CSP on the message page"
    );
    assert!(
        page.header("cache-control")
            .unwrap_or_default()
            .contains("no-store"),
        "message page may be cached: {:?}",
        page.header("cache-control")
    );

    let listed = attachments(&page);
    let names: Vec<&str> = listed.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["results.bin", "notes.txt"], "attachment list");
    for ((part_no, name), expected) in listed.iter().zip([&big, &small]) {
        let file = download(&app, &link, *part_no, &[], Some(&cookie));
        assert_eq!(file.status, 200, "download {name}: {}", file.text());
        assert!(
            file.header("content-disposition")
                .is_some_and(|d| d.starts_with("attachment") && d.contains(name.as_str())),
            "content-disposition {:?}",
            file.header("content-disposition")
        );
        assert_eq!(file.body.len(), expected.len(), "{name}: length");
        assert!(file.body == **expected, "{name}: bytes differ");
    }

    // The sender sees it opened.
    let status = app.message_status(&token, &id);
    assert_eq!(status.status, 200, "{}", status.text());
    let status = status.json();
    let r = &status["recipients"][0];
    assert_eq!(r["address"], recipient, "{status}");
    assert!(r["notified_at"].is_string(), "notified_at: {status}");
    assert!(
        r["first_opened_at"].is_string(),
        "first_opened_at: {status}"
    );
    assert!(r["open_count"].as_u64() >= Some(1), "open_count: {status}");

    let actions: Vec<String> = app
        .audit_events()
        .iter()
        .filter(|e| e["message_id"] == id.as_str())
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect();
    for expected in [
        "message_submitted",
        "notification_sent",
        "code_sent",
        "verified",
        "opened",
        "attachment_downloaded",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "no {expected} audit event for the message: {actions:?}"
        );
    }
}

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

    let code_mails_before = app.outbox().len();
    let cookie = app.verify_by_code(&link_b, to_b);
    let code = app.outbox()[code_mails_before].code();
    let reply = app.post_form(
        &format!("/p/{}/open", link_b.pickup_id),
        &[("k", &link_b.secret)],
        Some(&cookie),
    );
    assert_eq!(reply.status, 200, "open B: {}", reply.page_text());
    assert!(reply.page_text().contains(&b[1]), "B's text not shown");
    let (part_b, _) = attachments(&reply)[0].clone();
    let file = download(&app, &link_b, part_b, &[], Some(&cookie));
    assert_eq!(file.status, 200);
    assert!(file.body == attachment_b, "B's attachment differs");

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

/// Proof of invariant 4: twenty `GET /p/{id}` (and GETs of the form URLs, which redirect back)
/// change no row of any table and set no cookie; the recipient can still go on afterwards.
#[test]
fn landing_gets_change_nothing() {
    let app = spawn_app();
    let token = app.create_sender(SENDER);
    let recipient = "erin@example.net";
    let reply = app.submit_json(
        &token,
        &json!({"to": [recipient], "subject": "s", "text": "hello"}),
    );
    submit_ok(&reply);
    let link = app.notification_link(recipient);

    let db = Db::read_only(&app.db_path());
    let before = db.dump();
    assert!(
        before.get("recipients").is_some_and(|r| r.len() == 1),
        "unexpected dump: {before:?}"
    );
    let outbox_before = app.outbox().len();

    for i in 0..20 {
        let reply = app.get_with(
            &format!("/p/{}", link.pickup_id),
            &[("User-Agent", "LinkScanner/1.0")],
        );
        assert_eq!(reply.status, 200, "GET #{i}: {}", reply.text());
        assert!(
            reply.header_all("set-cookie").is_empty(),
            "GET /p/{{id}} set a cookie: {:?}",
            reply.header_all("set-cookie")
        );
    }
    for form in ["code", "verify", "open"] {
        let reply = app.get(&format!("/p/{}/{form}", link.pickup_id));
        assert!(
            (300..400).contains(&reply.status) || reply.status == 200 || reply.status == 405,
            "GET /p/{{id}}/{form}: {}",
            reply.status
        );
        assert!(
            reply.header_all("set-cookie").is_empty(),
            "GET /{form} set a cookie"
        );
    }

    let after = db.dump();
    let diff = dump_diff(&before, &after);
    assert!(diff.is_empty(), "GETs changed the database:\n{diff}");
    assert_eq!(app.outbox().len(), outbox_before, "GETs sent mail");

    // Nothing burnt: a code can still be had and the message opened.
    let cookie = app.verify_by_code(&link, recipient);
    // Control: a real step does show up in the dump.
    let changed = dump_diff(&after, &db.dump());
    drop(db);
    assert!(
        changed.contains("access_codes") && changed.contains("audit_events"),
        "the dump did not see the code being sent:\n{changed}"
    );
    let page = app.post_form(
        &format!("/p/{}/open", link.pickup_id),
        &[("k", &link.secret)],
        Some(&cookie),
    );
    assert_eq!(page.status, 200, "{}", page.page_text());
}

fn verify_output(data_dir: &std::path::Path) -> (Option<i32>, String) {
    let out = common::cli(data_dir, &["audit", "verify"]);
    (
        out.status.code(),
        format!("{}{}", common::text(&out.stdout), common::text(&out.stderr)),
    )
}

/// The seq named in `audit chain broken at seq N`.
fn broken_seq(output: &str) -> i64 {
    let rest = output
        .split("audit chain broken at seq ")
        .nth(1)
        .unwrap_or_else(|| panic!("no `audit chain broken at seq` in: {output}"));
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a seq number")
}

/// Proof: after real activity the audit chain verifies; on fresh copies of the stopped
/// server's data, updating one row's detail, deleting one row, or swapping two rows each make
/// `sealpost audit verify` exit 1 naming the tampered seq.
#[test]
fn audit_verify_detects_update_delete_and_swap() {
    let mut app = spawn_app();
    let token = app.create_sender(SENDER);
    let recipient = "frank@example.net";
    submit_ok(&app.submit_json(
        &token,
        &json!({"to": [recipient], "subject": "s", "text": "hello"}),
    ));
    let link = app.notification_link(recipient);
    let reply = app.post_form(
        &format!("/p/{}/open", link.pickup_id),
        &[("k", &wrong_secret(&link.secret))],
        None,
    );
    assert!(
        reply.status >= 400,
        "unverified wrong-secret open succeeded"
    );
    let cookie = app.verify_by_code(&link, recipient);
    let page = app.post_form(
        &format!("/p/{}/open", link.pickup_id),
        &[("k", &link.secret)],
        Some(&cookie),
    );
    assert_eq!(page.status, 200);
    app.stop();

    let (code, output) = verify_output(&app.data_dir);
    assert_eq!(code, Some(0), "untampered chain: {output}");
    assert!(output.contains("audit chain ok"), "{output}");

    let last = Db::read_only(&app.db_path()).last_audit_seq();
    assert!(
        last >= 8,
        "expected some activity in the audit log, got {last} events"
    );
    let k = last / 2;

    let cases: [(&str, String, &[i64]); 3] = [
        (
            "update one row's detail",
            format!("UPDATE audit_events SET detail = '{{\"tampered\":true}}' WHERE seq = {k}"),
            &[k],
        ),
        (
            "delete one row",
            format!("DELETE FROM audit_events WHERE seq = {k}"),
            &[k, k + 1],
        ),
        (
            "swap two rows' contents",
            format!(
                "CREATE TEMP TABLE pair AS SELECT * FROM audit_events WHERE seq IN ({k}, {k1});
                 UPDATE audit_events SET
                   (ts, actor, action, message_id, recipient_id, ip, user_agent, detail, prev_hash, hash) =
                   (SELECT ts, actor, action, message_id, recipient_id, ip, user_agent, detail, prev_hash, hash
                      FROM pair WHERE pair.seq = CASE audit_events.seq WHEN {k} THEN {k1} ELSE {k} END)
                 WHERE seq IN ({k}, {k1});",
                k1 = k + 1
            ),
            &[k],
        ),
    ];
    for (what, sql, expected) in cases {
        let copy = tempfile::tempdir().expect("tempdir");
        let data = copy.path().join("data");
        copy_dir(&app.data_dir, &data);
        let changed = Db::writable(&data.join("sealpost.db")).tamper(&sql);
        assert!(changed >= 1, "{what}: no row changed");

        let (code, output) = verify_output(&data);
        assert_eq!(code, Some(1), "{what}: verify should fail: {output}");
        let seq = broken_seq(&output);
        assert!(
            expected.contains(&seq),
            "{what} at seq {k}: verify named seq {seq} ({output})"
        );
    }
}

/// Proof: a wrong link secret and a wrong passphrase are each refused with 403 and written to
/// the audit log as `open_failed`; after 10 failures the recipient is locked, and the 11th
/// attempt — even with the right secret and passphrase — gets the 423 locked page.
#[test]
fn wrong_secret_and_passphrase_are_refused_audited_and_lock_out() {
    let app = spawn_app();
    let token = app.create_sender(SENDER);
    let recipient = "grace@example.net";
    let passphrase = "blue ocean 42";
    let id = submit_ok(&app.submit_json(
        &token,
        &json!({"to": [recipient], "subject": "s", "text": "guarded", "passphrase": passphrase}),
    ));
    let link = app.notification_link(recipient);
    let open_path = format!("/p/{}/open", link.pickup_id);
    let bad_secret = wrong_secret(&link.secret);
    let open_failed = |app: &App| {
        app.audit_events()
            .iter()
            .filter(|e| e["action"] == "open_failed" && e["message_id"] == id.as_str())
            .count()
    };

    let reply = app.post_form(
        &open_path,
        &[("k", &bad_secret), ("passphrase", passphrase)],
        None,
    );
    assert_eq!(reply.status, 403, "wrong secret: {}", reply.page_text());
    assert!(
        reply.page_text().contains("not right"),
        "{}",
        reply.page_text()
    );
    assert_eq!(open_failed(&app), 1, "the wrong secret was not audited");

    let reply = app.post_form(
        &open_path,
        &[("k", &link.secret), ("passphrase", "red desert 17")],
        None,
    );
    assert_eq!(reply.status, 403, "wrong passphrase: {}", reply.page_text());
    assert_eq!(open_failed(&app), 2, "the wrong passphrase was not audited");

    // Failures 3 to 9 are refused; the 10th locks (it may answer 403 or already 423).
    for attempt in 3..=10 {
        let reply = app.post_form(
            &open_path,
            &[("k", &bad_secret), ("passphrase", passphrase)],
            None,
        );
        if attempt < 10 {
            assert_eq!(
                reply.status,
                403,
                "failure {attempt}: {}",
                reply.page_text()
            );
        } else {
            println!("failure 10 answered {}", reply.status);
            assert!(
                reply.status == 403 || reply.status == 423,
                "failure 10: {} {}",
                reply.status,
                reply.page_text()
            );
        }
    }
    let reply = app.post_form(
        &open_path,
        &[("k", &link.secret), ("passphrase", passphrase)],
        None,
    );
    assert_eq!(reply.status, 423, "11th attempt: {}", reply.page_text());
    assert!(
        reply.html_error().to_lowercase().contains("locked"),
        "{}",
        reply.page_text()
    );
    let landing = app.get(&format!("/p/{}", link.pickup_id));
    assert_eq!(landing.status, 423, "landing of a locked message");

    let events = app.audit_events();
    assert_eq!(open_failed(&app), 10, "every failure audited");
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "locked" && e["message_id"] == id.as_str()),
        "no `locked` audit event"
    );
    let status = app.message_status(&token, &id).json();
    assert_eq!(status["recipients"][0]["locked"], true, "{status}");
}

/// Proof of invariant 7 for the API: malformed JSON 400, missing fields and invalid addresses
/// 422, no or a bad token 401, unknown ids 404 — each with a JSON `{"error","message"}` a
/// person can read; and a rejected submission leaves no message and sends no mail.
#[test]
fn api_bad_input_gets_clear_refusals() {
    let app = spawn_app();
    let token = app.create_sender(SENDER);

    let health = app.get("/healthz");
    assert_eq!(health.status, 200);
    let openapi = app.get("/api/openapi.json");
    assert_eq!(openapi.status, 200);
    assert!(
        openapi.json()["paths"]["/api/v1/messages"].is_object(),
        "OpenAPI lacks /api/v1/messages"
    );

    let cases: Vec<(&str, Reply, u16)> = vec![
        (
            "malformed JSON",
            app.post_raw("/api/v1/messages", Some(&token), "application/json", b"{\"to\": [\"a@example.net\""),
            400,
        ),
        (
            "missing to",
            app.submit_json(&token, &json!({"subject": "s", "text": "t"})),
            422,
        ),
        (
            "empty to",
            app.submit_json(&token, &json!({"to": [], "subject": "s", "text": "t"})),
            422,
        ),
        (
            "invalid address",
            app.submit_json(&token, &json!({"to": ["not-an-address"], "subject": "s", "text": "t"})),
            422,
        ),
        (
            "address with a header injection",
            app.submit_json(
                &token,
                &json!({"to": ["a@example.net\r\nBcc: evil@example.com"], "subject": "s", "text": "t"}),
            ),
            422,
        ),
        (
            "wrong field type",
            app.submit_json(&token, &json!({"to": "a@example.net", "subject": 5, "text": "t"})),
            422,
        ),
        (
            "bad base64 attachment",
            app.submit_json(
                &token,
                &json!({"to": ["a@example.net"], "subject": "s", "text": "t",
                        "attachments": [{"filename": "x", "content_type": "text/plain", "content_base64": "***"}]}),
            ),
            422,
        ),
        (
            "expiry over the maximum",
            app.submit_json(
                &token,
                &json!({"to": ["a@example.net"], "subject": "s", "text": "t", "expires_in_days": 100000}),
            ),
            422,
        ),
        (
            "multipart without to",
            app.submit_multipart(&token, &Multipart::new().text("subject", "s").text("text", "t")),
            422,
        ),
        (
            "no token",
            app.post_raw("/api/v1/messages", None, "application/json", b"{}"),
            401,
        ),
        (
            "bad token",
            app.post_raw("/api/v1/messages", Some("sp_not-a-real-token"), "application/json", b"{}"),
            401,
        ),
        (
            "unknown message id",
            app.message_status(&token, "0190a0b0-0000-7000-8000-000000000000"),
            404,
        ),
        (
            "revoke unknown message id",
            app.revoke(&token, "0190a0b0-0000-7000-8000-000000000000"),
            404,
        ),
    ];
    let mut failures = Vec::new();
    for (what, reply, status) in &cases {
        if reply.status != *status {
            failures.push(format!(
                "{what}: expected {status}, got {} {}",
                reply.status,
                reply.text()
            ));
            continue;
        }
        let (error, message) = reply.json_error();
        println!("{what}: {status} {error}: {message}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let unauthorized = &cases[9].1;
    assert!(
        unauthorized
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer")),
        "401 without WWW-Authenticate: Bearer"
    );

    let messages = Db::read_only(&app.db_path()).messages();
    assert_eq!(messages, 0, "a refused submission left a message behind");
    assert!(app.outbox().is_empty(), "a refused submission sent mail");
}

/// Proof of invariant 7 for sizes: with a 64 KiB message limit, a JSON body over the request
/// limit, a JSON message over the message limit, and a multipart upload over it each get 413
/// with a readable JSON error, and nothing is kept or sent.
#[test]
fn oversize_bodies_get_413() {
    let app = AppBuilder::default()
        .env("SEALPOST_MAX_MESSAGE_BYTES", "65536")
        .spawn();
    let token = app.create_sender(SENDER);

    let big_text = "x".repeat(100_000);
    let over_message_limit =
        serde_json::to_vec(&json!({"to": ["a@example.net"], "subject": "s", "text": big_text}))
            .expect("JSON");
    let over_request_limit = serde_json::to_vec(
        &json!({"to": ["a@example.net"], "subject": "s", "text": "y".repeat(3 * 1024 * 1024)}),
    )
    .expect("JSON");
    let (multipart_type, multipart_body) = Multipart::new()
        .text("to", "a@example.net")
        .text("subject", "s")
        .text("text", "t")
        .file(
            "attachment",
            "big.bin",
            "application/octet-stream",
            pseudo_random_bytes(200 * 1024, 3),
        )
        .encode();
    let path = "/api/v1/messages";
    let json_type = "application/json";
    let cases = [
        (
            "JSON message over the message limit",
            app.post_raw_socket(path, &token, json_type, &over_message_limit, false),
        ),
        (
            "multipart attachment over the message limit",
            app.post_raw_socket(path, &token, &multipart_type, &multipart_body, false),
        ),
        (
            "JSON body over the request limit, with Expect: 100-continue",
            app.post_raw_socket(path, &token, json_type, &over_request_limit, true),
        ),
        (
            "JSON body over the request limit, sent at once",
            app.post_raw_socket(path, &token, json_type, &over_request_limit, false),
        ),
    ];
    for (what, (_, cut_short)) in &cases {
        if *cut_short {
            println!("{what}: the server closed the connection before reading the whole body");
        }
    }
    let cases = cases.map(|(what, (reply, _))| (what, reply));
    let mut failures = Vec::new();
    for (what, reply) in &cases {
        if reply.status != 413 {
            failures.push(format!(
                "{what}: expected 413, got {} {}",
                reply.status,
                reply.text()
            ));
            continue;
        }
        let (error, message) = reply.json_error();
        println!("{what}: 413 {error}: {message}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Under the limit still works.
    submit_ok(&app.submit_json(
        &token,
        &json!({"to": ["a@example.net"], "subject": "s", "text": "small"}),
    ));
    let messages = Db::read_only(&app.db_path()).messages();
    assert_eq!(
        messages, 1,
        "a refused oversize submission left a message behind"
    );
    assert_eq!(
        app.outbox().len(),
        1,
        "only the accepted message was notified"
    );
}

/// Proof of invariant 7 for the pickup pages: an unknown or malformed pickup id gets a 404 page,
/// an expired message 410 with its own page, a revoked one 410 with its own page (and the
/// sender's view shows it revoked) — each an HTML page with a heading a person can read.
#[test]
fn unknown_expired_and_revoked_pickups_get_their_pages() {
    let app = spawn_app();
    let token = app.create_sender(SENDER);

    for path in [
        "/p/AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        "/p/no$such%20id".to_owned(),
        format!("/p/{}", "Z".repeat(200)),
    ] {
        let reply = app.get(&path);
        assert_eq!(reply.status, 404, "GET {path}: {}", reply.text());
        let text = reply.html_error();
        assert!(
            text.to_lowercase().contains("not found"),
            "GET {path}: {text}"
        );
    }
    let reply = app.post_form(
        "/p/AAAAAAAAAAAAAAAAAAAAAA/open",
        &[("k", "AAAAAAAAAAAAAAAAAAAAAA")],
        None,
    );
    assert_eq!(reply.status, 404, "POST open unknown: {}", reply.text());
    reply.html_error();
    let reply = app.post_form("/p/AAAAAAAAAAAAAAAAAAAAAA/code", &[], None);
    assert_eq!(reply.status, 404, "POST code unknown: {}", reply.text());
    assert!(app.outbox().is_empty(), "a code was sent for an unknown id");

    // Expired: a message whose expiry is moved into the past.
    let expiring = "heidi@example.net";
    let id = submit_ok(&app.submit_json(
        &token,
        &json!({"to": [expiring], "subject": "s", "text": "t", "expires_in_days": 1}),
    ));
    let link = app.notification_link(expiring);
    Db::writable(&app.db_path()).expire_message(&id);
    let reply = app.get(&format!("/p/{}", link.pickup_id));
    assert_eq!(reply.status, 410, "expired landing: {}", reply.text());
    let text = reply.html_error();
    assert!(text.to_lowercase().contains("expired"), "{text}");
    let reply = app.post_form(
        &format!("/p/{}/open", link.pickup_id),
        &[("k", &link.secret)],
        None,
    );
    assert_eq!(reply.status, 410, "expired open: {}", reply.text());

    // Revoked by the sender.
    let revoked = "ivan@example.net";
    let id = submit_ok(&app.submit_json(
        &token,
        &json!({"to": [revoked], "subject": "s", "text": "t"}),
    ));
    let link = app.notification_link(revoked);
    let reply = app.revoke(&token, &id);
    assert_eq!(reply.status, 204, "revoke: {}", reply.text());
    let reply = app.get(&format!("/p/{}", link.pickup_id));
    assert_eq!(reply.status, 410, "revoked landing: {}", reply.text());
    let text = reply.html_error().to_lowercase();
    assert!(
        text.contains("withdrew") || text.contains("withdrawn") || text.contains("revoked"),
        "{text}"
    );
    let reply = app.post_form(
        &format!("/p/{}/open", link.pickup_id),
        &[("k", &link.secret)],
        None,
    );
    assert_eq!(reply.status, 410, "revoked open: {}", reply.text());
    let status = app.message_status(&token, &id);
    assert_eq!(status.status, 200, "{}", status.text());
    assert!(status.json()["revoked_at"].is_string(), "{}", status.text());

    // Revoking shreds: no wrapped key and no ciphertext left for it.
    let db = Db::read_only(&app.db_path());
    let (chunks, keys) = (db.chunks_of(&id), db.wrapped_keys_of(&id));
    assert_eq!(
        (chunks, keys),
        (0, 0),
        "revoke left ciphertext or wrapped keys"
    );
}
