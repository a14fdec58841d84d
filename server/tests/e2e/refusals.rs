//! Invariant 7 from outside: bad API input, oversize bodies and dead pickup links each get a
//! clear refusal — a status with a JSON error or an HTML page a person can read — and leave
//! nothing behind. The tables of refusals are inline snapshots: one named line per case.

use insta::assert_snapshot;
use serde_json::json;

use crate::common::{AppBuilder, Db, Multipart, Reply, pseudo_random_bytes, spawn_app};
use crate::{SENDER, submit_ok};

/// One line per case: `<what>: <status> <error code>`, and the `WWW-Authenticate` challenge
/// where there is one. Each reply must be the documented JSON error (`Reply::json_error`).
fn refusals(cases: &[(&str, Reply)]) -> String {
    let mut lines = Vec::new();
    for (what, reply) in cases {
        let (error, message) = reply.json_error();
        println!("{what}: {} {error}: {message}", reply.status);
        let challenge = reply
            .header("www-authenticate")
            .map_or_else(String::new, |c| format!(" (WWW-Authenticate: {c})"));
        lines.push(format!("{what}: {} {error}{challenge}", reply.status));
    }
    lines.join("\n")
}

/// Proof of invariant 7 for the API: malformed JSON 400, missing fields and invalid addresses
/// 422, no or a bad token 401 with `WWW-Authenticate: Bearer`, unknown ids 404 — each with a
/// JSON `{"error","message"}` a person can read (the table of statuses and codes is the
/// snapshot); and a rejected submission leaves no message and sends no mail.
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

    let cases: Vec<(&str, Reply)> = vec![
        (
            "malformed JSON",
            app.post_raw("/api/v1/messages", Some(&token), "application/json", b"{\"to\": [\"a@example.net\""),
        ),
        (
            "missing to",
            app.submit_json(&token, &json!({"subject": "s", "text": "t"})),
        ),
        (
            "empty to",
            app.submit_json(&token, &json!({"to": [], "subject": "s", "text": "t"})),
        ),
        (
            "invalid address",
            app.submit_json(&token, &json!({"to": ["not-an-address"], "subject": "s", "text": "t"})),
        ),
        (
            "address with a header injection",
            app.submit_json(
                &token,
                &json!({"to": ["a@example.net\r\nBcc: evil@example.com"], "subject": "s", "text": "t"}),
            ),
        ),
        (
            "wrong field type",
            app.submit_json(&token, &json!({"to": "a@example.net", "subject": 5, "text": "t"})),
        ),
        (
            "bad base64 attachment",
            app.submit_json(
                &token,
                &json!({"to": ["a@example.net"], "subject": "s", "text": "t",
                        "attachments": [{"filename": "x", "content_type": "text/plain", "content_base64": "***"}]}),
            ),
        ),
        (
            "expiry over the maximum",
            app.submit_json(
                &token,
                &json!({"to": ["a@example.net"], "subject": "s", "text": "t", "expires_in_days": 100000}),
            ),
        ),
        (
            "multipart without to",
            app.submit_multipart(&token, &Multipart::new().text("subject", "s").text("text", "t")),
        ),
        (
            "no token",
            app.post_raw("/api/v1/messages", None, "application/json", b"{}"),
        ),
        (
            "bad token",
            app.post_raw("/api/v1/messages", Some("sp_not-a-real-token"), "application/json", b"{}"),
        ),
        (
            "unknown message id",
            app.message_status(&token, "0190a0b0-0000-7000-8000-000000000000"),
        ),
        (
            "revoke unknown message id",
            app.revoke(&token, "0190a0b0-0000-7000-8000-000000000000"),
        ),
    ];
    assert_snapshot!(refusals(&cases), @r"
    malformed JSON: 400 invalid_json
    missing to: 422 missing_field
    empty to: 422 missing_field
    invalid address: 422 invalid_address
    address with a header injection: 422 invalid_address
    wrong field type: 422 invalid_field
    bad base64 attachment: 422 invalid_attachment
    expiry over the maximum: 422 invalid_expiry
    multipart without to: 422 missing_field
    no token: 401 unauthorized (WWW-Authenticate: Bearer)
    bad token: 401 unauthorized (WWW-Authenticate: Bearer)
    unknown message id: 404 not_found
    revoke unknown message id: 404 not_found
    ");

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
    assert_snapshot!(refusals(&cases), @r"
    JSON message over the message limit: 413 too_large
    multipart attachment over the message limit: 413 too_large
    JSON body over the request limit, with Expect: 100-continue: 413 too_large
    JSON body over the request limit, sent at once: 413 too_large
    ");

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
