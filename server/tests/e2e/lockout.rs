//! Wrong link secrets and passphrases from outside: refused, audited, and counted until the
//! recipient is locked (the counting rules themselves are proved in `messages/tests.rs`).

use serde_json::json;

use crate::common::{App, spawn_app};
use crate::{SENDER, submit_ok, wrong_secret};

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
