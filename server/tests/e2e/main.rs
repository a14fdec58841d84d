//! End-to-end tests of the real `sealpost` binary over real sockets: submit through the API,
//! read the notification and the one-time code from the file outbox, pick the message up
//! through the recipient pages, and check the invariants of DESIGN.md section 3 from outside
//! (the data directory, the server log, the audit log). One module per subject:
//!
//! - `flow`: the whole pickup flow, the one black-box proof of it (and of invariant 9 for the
//!   API);
//! - `at_rest`: invariants 1 and 2 (no plaintext at rest, no secret in the log);
//! - `landing`: invariant 4 (GET changes nothing);
//! - `audit`: invariant 6 (`audit verify` finds tampering);
//! - `flood`: floods from one client add a bounded number of audit rows;
//! - `hangups`: clients that hang up mid-request leave every write path working;
//! - `lockout`: wrong codes, secrets and passphrases, counted per client (a stranger blocks
//!   only itself) and per recipient, and the ways a lock lifts;
//! - `refusals`: invariant 7 (clear refusals for bad API input, oversize bodies, dead pickups).

#[path = "../common/mod.rs"]
mod common;

mod at_rest;
mod audit;
mod flood;
mod flow;
mod hangups;
mod landing;
mod lockout;
mod refusals;

use common::{App, PickupLink, Reply};

/// The sender every test creates with the CLI.
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

/// The id of a submission that must have been accepted (`201`).
fn submit_ok(reply: &Reply) -> String {
    assert_eq!(reply.status, 201, "submit: {}", reply.text());
    let json = reply.json();
    json["id"].as_str().expect("id in the 201 body").to_owned()
}
