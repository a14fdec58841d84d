//! Invariant 4 from outside: link scanners may fetch a pickup link as often as they like.

use serde_json::json;

use crate::common::{Db, dump_diff, spawn_app};
use crate::{SENDER, submit_ok};

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
    app.open_link(&link, recipient);
    // Control: a real step does show up in the dump.
    let changed = dump_diff(&after, &db.dump());
    assert!(
        changed.contains("access_codes") && changed.contains("audit_events"),
        "the dump did not see the code being sent:\n{changed}"
    );
}
