//! The lockout outcomes through the router: a client that must wait or is blocked gets `429`
//! with `Retry-After` and a page saying until when; a locked recipient gets the `423` page that
//! explains the cool-down and, once it is over, offers the code that unlocks; the sender's
//! `POST /api/v1/messages/{id}/unlock`. The rules themselves are proved in
//! `messages/tests/lockout.rs`; time passes by moving the stored times.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};

use super::{
    BASE, Reply, Test, TestResult, api_call, assert_json_error, assert_page_headers, form_post,
    get, test_app, test_app_with,
};
use crate::clock::now_ms;
use crate::store::testing as rows;
use crate::testing::{PickupLink, TestApp};

const RECIPIENT: &str = "client@example.org";

/// A same-origin form post from the client at `ip`.
fn post_from(ip: [u8; 4], uri: &str, body: &str) -> Request<Body> {
    let mut request = form_post(uri, body, None);
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
    request
}

/// A passphrase message to [`RECIPIENT`].
async fn passphrase_message(t: &Test) -> Result<(String, PickupLink), Box<dyn std::error::Error>> {
    t.submit(serde_json::json!({
        "to": [RECIPIENT], "subject": "Contract", "text": "See attached.",
        "passphrase": "correct horse",
    }))
    .await
}

fn retry_after(reply: &Reply) -> u64 {
    reply.header(header::RETRY_AFTER).parse().unwrap_or(0)
}

/// Proof: wrong passphrases from one client are `403` pages saying truly what comes next
/// (the wait, then the block, after how many); an attempt during the wait is `429` with
/// `Retry-After` and the open form again, saying it was not counted; the wrong entry that
/// reaches `lockout_threshold` is `429` with a `Retry-After` of the block and a page naming
/// its end; another client opens meanwhile.
#[tokio::test]
async fn waits_and_blocks_are_429_with_retry_after() -> TestResult {
    let t = test_app_with(TestApp::builder().set("lockout_threshold", 4)).await?;
    let (_, PickupLink { pickup_id, secret }) = passphrase_message(&t).await?;
    let open = format!("/p/{pickup_id}/open");
    let wrong = format!("k={secret}&passphrase=wrong");
    let stranger = [127, 0, 0, 2];

    let reply = t.send(post_from(stranger, &open, &wrong)).await?;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert!(
        reply.text().contains(
            "After 2 more wrong entries from your network, it will have to wait before each new \
             try"
        ),
        "{}",
        reply.text()
    );
    t.send(post_from(stranger, &open, &wrong)).await?;
    let reply = t.send(post_from(stranger, &open, &wrong)).await?;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    let text = reply.text();
    assert!(
        text.contains(
            "After 1 more wrong entry from your network, it will be blocked from this message \
             for 60 minutes."
        ) && text.contains("Please wait 1 second"),
        "{text}"
    );

    let reply = t.send(post_from(stranger, &open, &wrong)).await?;
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.text()
    );
    assert_eq!(retry_after(&reply), 1);
    assert_page_headers(&reply);
    assert!(reply.text().contains("not counted"), "{}", reply.text());
    assert!(reply.text().contains(&format!("action=\"{open}\"")));

    rows::pass_time(&t.store, &pickup_id, 1000).await?;
    let reply = t.send(post_from(stranger, &open, &wrong)).await?;
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.text()
    );
    assert!(
        (3590..=3600).contains(&retry_after(&reply)),
        "{:?}",
        reply.headers
    );
    assert_page_headers(&reply);
    let text = reply.text();
    assert!(
        text.contains("Too many wrong entries from your network")
            && text.contains("blocked from this message until"),
        "{text}"
    );
    // Blocked: even the right passphrase is refused from there, but not from elsewhere.
    let right = format!("k={secret}&passphrase=correct+horse");
    let reply = t.send(post_from(stranger, &open, &right)).await?;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    let reply = t.send(post_from([127, 0, 0, 3], &open, &right)).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.text().contains("See attached."));
    Ok(())
}

/// Proof: a locked recipient's landing page is `423` and says when a code can unlock it, with
/// no code form yet, and that the sender can unlock it; after `lockout_cooldown_minutes` it
/// offers "Email me a code", whose page says the code will unlock, and the right code answers
/// with the open form and "unlocked"; the landing page is `200` again.
#[tokio::test]
async fn the_locked_page_offers_the_code_after_the_cool_down() -> TestResult {
    let t = test_app(1 << 20).await?;
    let (_, PickupLink { pickup_id, .. }) = t
        .submit(serde_json::json!({"to": [RECIPIENT], "subject": "s", "text": "t"}))
        .await?;
    rows::lock_recipient(&t.store, &pickup_id, now_ms()).await?;
    let code_form = format!("action=\"/p/{pickup_id}/code\"");

    let reply = t.send(get(&format!("/p/{pickup_id}"))).await?;
    assert_eq!(reply.status, StatusCode::LOCKED, "{}", reply.text());
    assert_page_headers(&reply);
    let text = reply.text();
    assert!(
        text.contains("you can unlock it with a one-time code"),
        "{text}"
    );
    assert!(text.contains("can also unlock it for you"), "{text}");
    assert!(!text.contains(&code_form), "{text}");
    let reply = t
        .send(form_post(&format!("/p/{pickup_id}/code"), "", None))
        .await?;
    assert_eq!(reply.status, StatusCode::LOCKED, "{}", reply.text());
    assert!(
        t.app.outbox()?.iter().all(|m| m.link().is_some()),
        "a code was sent"
    );

    rows::pass_time(&t.store, &pickup_id, 15 * 60_000).await?;
    let reply = t.send(get(&format!("/p/{pickup_id}"))).await?;
    assert_eq!(reply.status, StatusCode::LOCKED);
    assert!(reply.text().contains(&code_form), "{}", reply.text());

    let reply = t
        .send(form_post(&format!("/p/{pickup_id}/code"), "", None))
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(
        reply.text().contains("the message will be unlocked"),
        "{}",
        reply.text()
    );
    let code = t.app.code_to(RECIPIENT)?;
    let reply = t
        .send(form_post(
            &format!("/p/{pickup_id}/verify"),
            &format!("code={code}"),
            None,
        ))
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(
        reply.text().contains("the message is unlocked"),
        "{}",
        reply.text()
    );
    let reply = t.send(get(&format!("/p/{pickup_id}"))).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    Ok(())
}

/// `POST /api/v1/messages/{id}/unlock` with this sender's token and an optional JSON body.
fn unlock_call(id: &str, token: &str, body: Option<&str>) -> Request<Body> {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/messages/{id}/unlock"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::ORIGIN, BASE);
    if body.is_some() {
        b = b.header(header::CONTENT_TYPE, "application/json");
    }
    b.body(Body::from(body.unwrap_or_default().to_owned()))
        .unwrap_or_default()
}

/// Proof: the sender's unlock is `204` without a body (every recipient) or with
/// `{"recipient": …}` (case aside), and the locked recipient's page opens again; an address
/// that is not a recipient, another sender's message and an unknown one are `404`; a bad body
/// is `400`/`422`; no token `401`. The view no longer shows the recipient locked.
#[tokio::test]
async fn the_unlock_endpoint_unlocks_the_senders_recipients_only() -> TestResult {
    let t = test_app(1 << 20).await?;
    let (id, PickupLink { pickup_id, .. }) = t
        .submit(serde_json::json!({"to": [RECIPIENT], "subject": "s", "text": "t"}))
        .await?;
    let landing = format!("/p/{pickup_id}");

    rows::lock_recipient(&t.store, &pickup_id, now_ms()).await?;
    let reply = t.send(unlock_call(&id, &t.token, None)).await?;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    assert_eq!(t.send(get(&landing)).await?.status, StatusCode::OK);

    rows::lock_recipient(&t.store, &pickup_id, now_ms()).await?;
    let other = t.app.add_sender("other@example.org").await?;
    let reply = t.send(unlock_call(&id, &other.token, None)).await?;
    assert_json_error(&reply, StatusCode::NOT_FOUND, "not_found")?;
    let reply = t
        .send(unlock_call(
            "0192f0e8-0000-7000-8000-000000000000",
            &t.token,
            None,
        ))
        .await?;
    assert_json_error(&reply, StatusCode::NOT_FOUND, "not_found")?;
    let reply = t
        .send(unlock_call(
            &id,
            &t.token,
            Some(r#"{"recipient": "nobody@example.org"}"#),
        ))
        .await?;
    assert_json_error(&reply, StatusCode::NOT_FOUND, "not_found")?;
    let reply = t.send(unlock_call(&id, &t.token, Some("{"))).await?;
    assert_json_error(&reply, StatusCode::BAD_REQUEST, "invalid_json")?;
    let reply = t
        .send(unlock_call(
            &id,
            &t.token,
            Some(r#"{"address": "x@example.org"}"#),
        ))
        .await?;
    assert_json_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")?;
    let reply = t
        .send(unlock_call(
            &id,
            &t.token,
            Some(r#"{"recipient": "not an address"}"#),
        ))
        .await?;
    assert_json_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_address")?;
    let reply = t
        .send(
            Request::post(format!("/api/v1/messages/{id}/unlock"))
                .body(Body::empty())
                .unwrap_or_default(),
        )
        .await?;
    assert_json_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized")?;
    assert_eq!(t.send(get(&landing)).await?.status, StatusCode::LOCKED);

    let reply = t
        .send(unlock_call(
            &id,
            &t.token,
            Some(r#"{"recipient": "Client@Example.org"}"#),
        ))
        .await?;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    assert_eq!(t.send(get(&landing)).await?.status, StatusCode::OK);
    let view = t
        .send(api_call(
            Method::GET,
            &format!("/api/v1/messages/{id}"),
            &t.token,
        ))
        .await?
        .json()?;
    assert_eq!(view["recipients"][0]["locked"], false, "{view}");
    let unlocked = rows::audited(&t.store, "unlocked").await?;
    assert_eq!(unlocked.len(), 2);
    assert!(
        unlocked
            .iter()
            .all(|r| r.actor == "token:sender@example.org")
    );
    Ok(())
}
