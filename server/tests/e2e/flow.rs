//! The whole pickup flow, once, black-box: API submission, notification, code, verification,
//! the message page, the attachments byte for byte, the sender's view and the audit trail.
//! Every other black-box test that needs an opened message goes through
//! `common::pickup` instead of repeating these steps.

use serde_json::json;

use crate::common::{Multipart, attachments, contains, pseudo_random_bytes, spawn_app};
use crate::{SENDER, download, submit_ok};

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

    app.assert_audited(
        Some(&id),
        &[
            "message_submitted",
            "notification_sent",
            "code_sent",
            "verified",
            "opened",
            "attachment_downloaded",
        ],
    );
}
