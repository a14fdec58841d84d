//! Wrong codes, link secrets and passphrases from outside: refused, audited, counted per client
//! (so a stranger blocks only itself, for a while) and per recipient (locked only by many
//! clients together), and a lock lifted by the sender or by the recipient's new code after the
//! cool-down. Clients are loopback addresses the requests are sent from: 127.0.0.2 and
//! 127.0.0.4 strangers, 127.0.0.3 the recipient. The counting rules themselves are proved in
//! `messages/tests/lockout.rs`.

use std::net::IpAddr;

use serde_json::json;

use crate::common::{App, AppBuilder, Db, PickupLink, Reply};
use crate::{SENDER, submit_ok, wrong_secret};

const STRANGER: [u8; 4] = [127, 0, 0, 2];
const HOME: [u8; 4] = [127, 0, 0, 3];
const OTHER: [u8; 4] = [127, 0, 0, 4];

fn post(app: &App, from: [u8; 4], path: &str, fields: &[(&str, &str)]) -> Reply {
    app.post_form_from(IpAddr::from(from), path, fields, None)
}

fn count(app: &App, action: &str, message_id: &str) -> usize {
    app.audit_events()
        .iter()
        .filter(|e| e["action"] == action && e["message_id"] == message_id)
        .count()
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Proof: a wrong link secret and a wrong passphrase are each refused with 403 and audited
/// `open_failed`; the stranger's `lockout_threshold`th wrong entry (3 here) blocks that
/// client with 429, `Retry-After` the block's length and a page saying until when, and its
/// further attempts — even with the right secret and passphrase — are 429 and not counted;
/// the recipient, from another address, opens the message all the while, and the sender
/// never sees it locked.
#[test]
fn a_stranger_blocks_only_itself() {
    let app = AppBuilder::default()
        .env("SEALPOST_LOCKOUT_THRESHOLD", "3")
        .spawn();
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

    let reply = post(
        &app,
        STRANGER,
        &open_path,
        &[("k", &bad_secret), ("passphrase", passphrase)],
    );
    assert_eq!(reply.status, 403, "wrong secret: {}", reply.page_text());
    assert!(
        reply.page_text().contains("not right"),
        "{}",
        reply.page_text()
    );
    assert_eq!(
        count(&app, "open_failed", &id),
        1,
        "the wrong secret was not audited"
    );

    let reply = post(
        &app,
        STRANGER,
        &open_path,
        &[("k", &link.secret), ("passphrase", "red desert 17")],
    );
    assert_eq!(reply.status, 403, "wrong passphrase: {}", reply.page_text());
    assert!(
        reply
            .page_text()
            .contains("After 1 more wrong entry from your network, it will be blocked"),
        "{}",
        reply.page_text()
    );
    assert_eq!(
        count(&app, "open_failed", &id),
        2,
        "the wrong passphrase was not audited"
    );

    let reply = post(
        &app,
        STRANGER,
        &open_path,
        &[("k", &bad_secret), ("passphrase", passphrase)],
    );
    assert_eq!(reply.status, 429, "3rd failure: {}", reply.page_text());
    assert!(
        (3590..=3600).contains(&retry_after(&reply)),
        "{:?}",
        reply.headers
    );
    assert!(
        reply
            .page_text()
            .contains("blocked from this message until"),
        "{}",
        reply.page_text()
    );
    for _ in 0..10 {
        let reply = post(
            &app,
            STRANGER,
            &open_path,
            &[("k", &link.secret), ("passphrase", passphrase)],
        );
        assert_eq!(reply.status, 429, "while blocked: {}", reply.page_text());
    }
    assert_eq!(
        count(&app, "open_failed", &id),
        3,
        "refusals while blocked were counted"
    );

    let reply = post(
        &app,
        HOME,
        &open_path,
        &[("k", &link.secret), ("passphrase", passphrase)],
    );
    assert_eq!(reply.status, 200, "the recipient: {}", reply.page_text());
    assert!(reply.page_text().contains("guarded"));
    assert_eq!(count(&app, "locked", &id), 0);
    let status = app.message_status(&token, &id).json();
    assert_eq!(status["recipients"][0]["locked"], false, "{status}");
    app.assert_audit_verifies();
}

/// One wrong one-time code from `from` (a code is asked for first when `ask`).
fn wrong_code(app: &App, from: [u8; 4], link: &PickupLink, address: &str, ask: bool) -> Reply {
    if ask {
        let reply = post(app, from, &format!("/p/{}/code", link.pickup_id), &[]);
        assert_eq!(reply.status, 200, "code: {}", reply.page_text());
    }
    let code = app.last_mail_to(address).code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    post(
        app,
        from,
        &format!("/p/{}/verify", link.pickup_id),
        &[("code", wrong)],
    )
}

/// The recipient's code from `from`, verified; returns the reply and its session cookie.
fn code_from(app: &App, from: [u8; 4], link: &PickupLink, address: &str) -> (Reply, String) {
    let reply = post(app, from, &format!("/p/{}/code", link.pickup_id), &[]);
    assert_eq!(reply.status, 200, "code: {}", reply.page_text());
    let code = app.last_mail_to(address).code();
    let reply = post(
        app,
        from,
        &format!("/p/{}/verify", link.pickup_id),
        &[("code", &code)],
    );
    assert_eq!(reply.status, 200, "verify: {}", reply.page_text());
    let cookie = reply.session_cookie().expect("a session cookie");
    (reply, cookie)
}

/// Proof: wrong codes from two strangers together reach `lockout_recipient_threshold` and
/// lock the recipient: the landing page is 423, says from when a new code can unlock it and
/// that the sender can, and offers no code yet. The sender's `POST …/unlock` (204) lifts it;
/// the recipient opens. Locked again, a new code asked for after the cool-down (moved into
/// the past in the database) lifts it too, and the message opens. Both are audited
/// `unlocked`, under the sender and under the recipient.
#[test]
fn a_lock_lifts_by_the_sender_and_by_a_new_code_after_the_cool_down() {
    let app = AppBuilder::default()
        .env("SEALPOST_LOCKOUT_THRESHOLD", "2")
        .env("SEALPOST_LOCKOUT_RECIPIENT_THRESHOLD", "3")
        .spawn();
    let token = app.create_sender(SENDER);
    let recipient = "ada@example.net";
    let id = submit_ok(&app.submit_json(
        &token,
        &json!({"to": [recipient], "subject": "s", "text": "for ada"}),
    ));
    let link = app.notification_link(recipient);
    let landing = format!("/p/{}", link.pickup_id);
    let lock_out = || {
        assert_eq!(
            wrong_code(&app, STRANGER, &link, recipient, true).status,
            403
        );
        assert_eq!(
            wrong_code(&app, STRANGER, &link, recipient, false).status,
            429
        );
        let reply = wrong_code(&app, OTHER, &link, recipient, true);
        assert_eq!(reply.status, 423, "3rd failure: {}", reply.page_text());
    };
    lock_out();
    let page = app.get(&landing);
    assert_eq!(page.status, 423, "{}", page.page_text());
    let text = page.page_text();
    assert!(
        text.contains("you can unlock it with a one-time code"),
        "{text}"
    );
    assert!(
        text.contains(&format!("The sender ({SENDER}) can also unlock it")),
        "{text}"
    );
    assert!(!page.text().contains("Email me a code"), "{text}");
    assert_eq!(count(&app, "locked", &id), 1);

    let reply = app.post_raw(
        &format!("/api/v1/messages/{id}/unlock"),
        Some(&token),
        "application/json",
        json!({"recipient": recipient}).to_string().as_bytes(),
    );
    assert_eq!(reply.status, 204, "unlock: {}", reply.text());
    assert_eq!(app.get(&landing).status, 200);
    let (_, cookie) = code_from(&app, HOME, &link, recipient);
    let opened = app.post_form(
        &format!("/p/{}/open", link.pickup_id),
        &[("k", &link.secret)],
        Some(&cookie),
    );
    assert_eq!(opened.status, 200, "{}", opened.page_text());

    lock_out();
    let db = Db::writable(&app.db_path());
    db.tamper("UPDATE recipients SET locked_at = locked_at - 16 * 60000");
    let page = app.get(&landing);
    assert_eq!(page.status, 423);
    assert!(
        page.text().contains("Email me a code"),
        "{}",
        page.page_text()
    );
    let (reply, cookie) = code_from(&app, HOME, &link, recipient);
    assert!(
        reply.page_text().contains("the message is unlocked"),
        "{}",
        reply.page_text()
    );
    let opened = app.post_form(
        &format!("/p/{}/open", link.pickup_id),
        &[("k", &link.secret)],
        Some(&cookie),
    );
    assert_eq!(opened.status, 200, "{}", opened.page_text());
    assert!(opened.page_text().contains("for ada"));

    let actors: Vec<String> = app
        .audit_events()
        .iter()
        .filter(|e| e["action"] == "unlocked")
        .map(|e| e["actor"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(actors.len(), 2, "{actors:?}");
    assert_eq!(actors[0], format!("token:{SENDER}"));
    assert!(actors[1].starts_with("recipient:"), "{actors:?}");
    app.assert_audit_verifies();
}
