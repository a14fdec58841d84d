//! Floods of the entry points strangers reach without credentials (bad API tokens, pickup
//! codes and verifications, SMTP connections, SMTP AUTH), from one address: the audit log
//! grows by a small bounded number of rows, every refusal is still accounted for, and a real
//! recipient elsewhere picks up their message meanwhile.

use serde_json::{Value, json};

use crate::common::{self, AppBuilder, require_tool};
use crate::{SENDER, submit_ok};

/// `bench/audit_flood.py`: the same driver the benchmark uses.
const FLOOD: &str = include_str!("../../../bench/audit_flood.py");
/// The flooding client (loopback too, so the server sees another client than 127.0.0.1).
const FLOODER: &str = "127.0.0.2";
/// Seconds each source is flooded.
const SECONDS: &str = "2";

/// The most audit rows one client can add per window of `audit_refusal_window_seconds`
/// (default 60) by flooding every source at once, with the default settings: per kind of
/// refusal (`token_rejected`, `throttled`, `code_failed`, `verify_failed` for a dead code,
/// blocked pickup attempts, `smtp_refused`, `relay_auth_failed`) at most
/// `audit_refusals_per_window` (3) one by one and one `refusals_counted`; the one-time codes
/// really sent before the hourly limit (5 `code_sent`); and the wrong codes that count toward
/// the lockout, each audited (at most `lockout_threshold`, 10, and one `locked`).
const MAX_ROWS_PER_WINDOW: usize = 7 * (3 + 1) + 5 + 10 + 1;

/// Proof (issue: audit growth that strangers control): each source flooded for 2 s from
/// 127.0.0.2 adds at most [`MAX_ROWS_PER_WINDOW`] rows in all; the counted refusals add up to
/// the refused requests (none dropped unaccounted); a pickup from 127.0.0.1 during the flood
/// succeeds and is audited; the chain verifies.
#[test]
fn floods_from_one_client_add_a_bounded_number_of_audit_rows() {
    let Some(_) = require_tool("python3") else {
        return;
    };
    let mut app = AppBuilder::default().spawn();
    let token = app.create_sender(SENDER);
    let target = "target@example.net";
    let alice = "alice@example.net";
    for to in [target, alice] {
        submit_ok(&app.submit_json(&token, &json!({"to": [to], "subject": "s", "text": "hi"})));
    }
    let target_link = app.notification_link(target);
    let alice_link = app.notification_link(alice);
    common::add_relay(&app, "flood-relay");
    let before = app.audit_events().len();
    let http_addr = app.base_url.trim_start_matches("http://").to_owned();
    let smtp_addr = common::smtp_addr(&app);

    let (flood, opened) = std::thread::scope(|scope| {
        let flood = scope.spawn(|| {
            std::process::Command::new("python3")
                .args(["-c", FLOOD, &http_addr, &smtp_addr, &target_link.pickup_id])
                .args([SECONDS, FLOODER])
                .output()
                .expect("run python3")
        });
        let opened = app.open_link(&alice_link, alice);
        (flood.join().expect("flood thread"), opened)
    });
    let out = common::text(&flood.stdout);
    assert!(
        flood.status.success(),
        "flood: {out}\n{}",
        common::text(&flood.stderr)
    );
    println!("flood: {out}");
    let report: Value = serde_json::from_str(out.trim()).expect("flood report is JSON");
    assert!(opened.page.page_text().contains("hi"));

    // The counted refusals are written when their window ends, or at shutdown.
    app.stop();
    let events = app.audit_events();
    let added = &events[before..];
    let from_flooder: Vec<&Value> = added.iter().filter(|e| e["ip"] == FLOODER).collect();
    let mut by_action = std::collections::BTreeMap::<String, usize>::new();
    for e in &from_flooder {
        *by_action
            .entry(e["action"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    println!("audit rows from the flooding client: {by_action:?}");
    assert!(
        from_flooder.len() <= MAX_ROWS_PER_WINDOW,
        "{} rows from one flooding client (at most {MAX_ROWS_PER_WINDOW}): {by_action:?}",
        from_flooder.len()
    );

    // Nothing refused goes unaccounted: bad-token requests = their rows + their counts.
    let counted = |kind: &str| -> u64 {
        from_flooder
            .iter()
            .filter(|e| e["action"] == "refusals_counted" && e["detail"]["kind"] == kind)
            .filter_map(|e| e["detail"]["count"].as_u64())
            .sum()
    };
    let rows = |action: &str| {
        from_flooder
            .iter()
            .filter(|e| e["action"] == action)
            .count()
    };
    let token_requests = report["token"]["requests"].as_u64().unwrap_or(0);
    let token_throttled = rows("throttled") as u64 + counted("throttled");
    assert!(
        token_requests > 20,
        "the flood made too few requests: {report}"
    );
    assert!(
        rows("token_rejected") as u64 + counted("token_rejected") + token_throttled
            >= token_requests,
        "bad-token requests unaccounted for: {token_requests} requests, {by_action:?}"
    );
    let smtp_sessions = report["smtp"]["requests"].as_u64().unwrap_or(0);
    assert!(
        rows("smtp_refused") as u64 + counted("smtp_refused") >= smtp_sessions,
        "refused SMTP sessions unaccounted for: {smtp_sessions} sessions, {by_action:?}"
    );

    // The real recipient was served and audited as usual.
    let opened_events = added
        .iter()
        .filter(|e| e["action"] == "opened" && e["ip"] == "127.0.0.1")
        .count();
    assert_eq!(
        opened_events, 1,
        "the pickup during the flood was not audited"
    );
    app.assert_audit_verifies();
}
