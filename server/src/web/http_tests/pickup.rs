//! The recipient pages `/p/{id}` through the router: each step's page, form actions, headers
//! and cookie, and the status and page each domain refusal gets. How failures count toward
//! the lockout, and when codes die, is the domain's (`messages/tests.rs`); here a locked
//! recipient is made by setting the row.

use axum::http::{Method, StatusCode, header};
use base64::Engine as _;

use super::{
    Test, TestResult, api_call, assert_page_headers, form_post, get, test_app, test_app_with,
};
use crate::clock::now_ms;
use crate::store::testing as rows;
use crate::testing::{PickupLink, SENDER, TestApp};

const RECIPIENT: &str = "patient@example.org";

/// The page holds a form posting to `action`.
fn assert_form(reply: &super::Reply, action: &str) {
    let text = reply.text();
    assert!(
        text.contains(&format!("action=\"{action}\"")),
        "no form for {action}: {text}"
    );
}

/// A message to [`RECIPIENT`]: text that must be escaped, HTML with a remote image and a link,
/// and one attachment with a non-ASCII name (`Befund März.pdf`, 70,000 bytes).
async fn message(t: &Test) -> Result<(String, PickupLink, Vec<u8>), Box<dyn std::error::Error>> {
    let attachment: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let (id, link) = t
        .submit(serde_json::json!({
            "to": [RECIPIENT],
            "subject": "Your results",
            "text": "Hello,\nall is well.\n<b>not bold</b>",
            "html": "<p>Hello <img src=\"https://tracker.example/x.gif\"> <a href=\"https://example.org\">link</a></p>",
            "attachments": [{
                "filename": "Befund März.pdf",
                "content_type": "application/pdf",
                "content_base64": base64::engine::general_purpose::STANDARD.encode(&attachment),
            }],
        }))
        .await?;
    Ok((id, link, attachment))
}

/// Proof: the landing page is `200` with the strict page headers, sets no cookie, names the
/// sender and offers the code step.
#[tokio::test]
async fn landing_offers_the_code_step_and_sets_no_cookie() -> TestResult {
    let t = test_app(1 << 20).await?;
    let (_, PickupLink { pickup_id, .. }, _) = message(&t).await?;
    let reply = t.send(get(&format!("/p/{pickup_id}"))).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_page_headers(&reply);
    assert!(
        reply.headers.get(header::SET_COOKIE).is_none(),
        "landing set a cookie"
    );
    assert!(reply.text().contains(SENDER));
    assert_form(&reply, &format!("/p/{pickup_id}/code"));
    Ok(())
}

/// Proof: `POST /code` shows the verify form; a wrong code is `403` with the code's tries
/// left and what comes next on the form again; the right one is `200` with the open form and an `HttpOnly`,
/// `SameSite=Strict` session cookie.
#[tokio::test]
async fn code_pages_map_a_wrong_code_to_403() -> TestResult {
    let t = test_app(1 << 20).await?;
    let (_, PickupLink { pickup_id, .. }, _) = message(&t).await?;
    let reply = t
        .send(form_post(&format!("/p/{pickup_id}/code"), "", None))
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_form(&reply, &format!("/p/{pickup_id}/verify"));
    let code = t.app.code_to(RECIPIENT)?;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let reply = t
        .send(form_post(
            &format!("/p/{pickup_id}/verify"),
            &format!("code={wrong}"),
            None,
        ))
        .await?;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert!(
        reply
            .text()
            .contains("This code stops working after 4 more wrong entries."),
        "{}",
        reply.text()
    );

    let reply = t
        .send(form_post(
            &format!("/p/{pickup_id}/verify"),
            &format!("code={code}"),
            None,
        ))
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(super::cookie_of(&reply).is_some(), "no session cookie");
    let set_cookie = reply.header(header::SET_COOKIE).to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    assert_form(&reply, &format!("/p/{pickup_id}/open"));
    Ok(())
}

/// Proof: opening without a verified session is `401`; a wrong secret is `403` saying what
/// comes next; the right one is `200` with the page headers, the subject, the text escaped,
/// the HTML in a sandboxed frame without its remote image, and the attachment listed.
#[tokio::test]
async fn open_page_maps_refusals_and_renders_the_message() -> TestResult {
    let t = test_app(1 << 20).await?;
    let (_, PickupLink { pickup_id, secret }, _) = message(&t).await?;
    let open = format!("/p/{pickup_id}/open");
    let reply = t
        .send(form_post(&open, &format!("k={secret}"), None))
        .await?;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());

    let (_, cookie) = t.verify(&pickup_id, RECIPIENT).await?;
    let wrong_secret = sealpost_crypto::LinkSecret::generate().encode();
    let reply = t
        .send(form_post(
            &open,
            &format!("k={}", wrong_secret.as_str()),
            Some(&cookie),
        ))
        .await?;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert!(
        reply.text().contains("After 2 more wrong entries"),
        "{}",
        reply.text()
    );

    let reply = t
        .send(form_post(&open, &format!("k={secret}"), Some(&cookie)))
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_page_headers(&reply);
    let page = reply.text();
    assert!(page.contains("Your results"), "{page}");
    assert!(
        page.contains("Hello,\nall is well.\n&#60;b&#62;not bold&#60;/b&#62;")
            || page.contains("&lt;b&gt;not bold"),
        "{page}"
    );
    assert!(
        page.contains("<iframe") && page.contains("sandbox=\""),
        "{page}"
    );
    assert!(
        !page.contains("tracker.example"),
        "remote image kept: {page}"
    );
    assert!(page.contains("Befund März.pdf"), "{page}");
    assert!(
        page.contains(&format!("/p/{pickup_id}/attachments/")),
        "no download form"
    );
    Ok(())
}

/// Proof: a download streams the attachment's bytes with its content type, `nosniff`, and a
/// `Content-Disposition` that carries the non-ASCII name both as ASCII and as RFC 5987.
#[tokio::test]
async fn download_carries_the_bytes_and_a_safe_disposition() -> TestResult {
    let t = test_app(1 << 20).await?;
    let (_, PickupLink { pickup_id, secret }, attachment) = message(&t).await?;
    let (_, cookie) = t.verify(&pickup_id, RECIPIENT).await?;
    let page = t
        .send(form_post(
            &format!("/p/{pickup_id}/open"),
            &format!("k={secret}"),
            Some(&cookie),
        ))
        .await?
        .text();
    let action_start = page
        .find(&format!("/p/{pickup_id}/attachments/"))
        .ok_or("no download form")?;
    let part_no: String = page[action_start..]
        .trim_start_matches(&format!("/p/{pickup_id}/attachments/"))
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();

    let reply = t
        .send(form_post(
            &format!("/p/{pickup_id}/attachments/{part_no}"),
            &format!("k={secret}"),
            Some(&cookie),
        ))
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, attachment);
    assert_eq!(reply.header(header::CONTENT_TYPE), "application/pdf");
    assert_eq!(
        reply.header(header::CONTENT_DISPOSITION),
        "attachment; filename=\"Befund M_rz.pdf\"; filename*=UTF-8''Befund%20M%C3%A4rz.pdf"
    );
    assert_eq!(reply.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    Ok(())
}

/// Proof: once the sender revoked the message, its landing page is `410` with the page
/// headers.
#[tokio::test]
async fn a_revoked_message_is_a_410_page() -> TestResult {
    let t = test_app(1 << 20).await?;
    let (id, PickupLink { pickup_id, .. }, _) = message(&t).await?;
    let reply = t
        .send(api_call(
            Method::DELETE,
            &format!("/api/v1/messages/{id}"),
            &t.token,
        ))
        .await?;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    let reply = t.send(get(&format!("/p/{pickup_id}"))).await?;
    assert_eq!(reply.status, StatusCode::GONE, "{}", reply.text());
    assert_page_headers(&reply);
    Ok(())
}

/// Proof: for a passphrase message the landing page asks for the passphrase at once; a
/// malformed secret is `422`, a missing passphrase `400` asking for it, the right one (with a
/// pasted whole link as the secret) opens without a code, a wrong one is `403`; a locked
/// recipient gets the `423` page on open and on landing.
#[tokio::test]
async fn passphrase_pages_map_each_outcome() -> TestResult {
    let t = test_app_with(TestApp::builder().set("lockout_threshold", 3)).await?;
    let (_, PickupLink { pickup_id, secret }) = t
        .submit(serde_json::json!({
            "to": ["client@example.org"],
            "subject": "Contract",
            "text": "See attached.",
            "passphrase": "correct horse",
        }))
        .await?;

    let reply = t.send(get(&format!("/p/{pickup_id}"))).await?;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.text().contains("name=\"passphrase\""),
        "{}",
        reply.text()
    );

    let open = format!("/p/{pickup_id}/open");
    let reply = t.send(form_post(&open, "k=short", None)).await?;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text()
    );
    let reply = t
        .send(form_post(&open, &format!("k={secret}"), None))
        .await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert!(reply.text().contains("passphrase"), "{}", reply.text());

    let form = format!(
        "k=https%3A%2F%2Fx.example%2Fp%2F{pickup_id}%23k%3D{secret}&passphrase=correct+horse"
    );
    let reply = t.send(form_post(&open, &form, None)).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.text().contains("See attached."));

    let reply = t
        .send(form_post(
            &open,
            &format!("k={secret}&passphrase=wrong"),
            None,
        ))
        .await?;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());

    rows::lock_recipient(&t.store, &pickup_id, now_ms()).await?;
    let reply = t
        .send(form_post(
            &open,
            &format!("k={secret}&passphrase=correct+horse"),
            None,
        ))
        .await?;
    assert_eq!(reply.status, StatusCode::LOCKED, "{}", reply.text());
    assert_page_headers(&reply);
    assert!(reply.text().contains("locked"), "{}", reply.text());
    let reply = t.send(get(&format!("/p/{pickup_id}"))).await?;
    assert_eq!(reply.status, StatusCode::LOCKED, "{}", reply.text());
    Ok(())
}
