//! Invariant 6 from outside: after real activity `sealpost audit verify` passes, and on copies
//! of the data directory it names the row an insider changed, deleted or swapped.

use serde_json::json;

use crate::common::{Db, copy_dir, spawn_app, text};
use crate::{SENDER, submit_ok, wrong_secret};

fn verify_output(data_dir: &std::path::Path) -> (Option<i32>, String) {
    let out = crate::common::cli(data_dir, &["audit", "verify"]);
    (
        out.status.code(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
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
    app.open_link(&link, recipient);
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
