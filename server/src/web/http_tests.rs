//! The HTTP layer through the real router (`oneshot`), over a real SQLite store in a temp dir.

use std::error::Error as StdError;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use base64::Engine as _;
use tower::ServiceExt;

use crate::audit;
use crate::config::Config;
use crate::store::testing as rows;
use crate::testing::{PickupLink, SENDER, TestApp, TestAppBuilder};

type TestResult = Result<(), Box<dyn StdError>>;

const BASE: &str = "http://127.0.0.1:8080";

struct Test {
    router: Router,
    store: crate::store::Store,
    token: String,
    config: Config,
    app: TestApp,
}

impl Test {
    /// The pickup link of the newest notification in the outbox.
    fn link(&self) -> Result<PickupLink, Box<dyn StdError>> {
        self.app
            .outbox()?
            .iter()
            .rev()
            .find_map(|m| m.link())
            .ok_or_else(|| "no notification with a link in the outbox".into())
    }
}

/// A migrated instance in a temp dir with one sender holding an API token.
async fn test_app(max_message_bytes: u64) -> Result<Test, Box<dyn StdError>> {
    test_app_with(TestApp::builder().set("max_message_bytes", max_message_bytes)).await
}

async fn test_app_with(settings: TestAppBuilder) -> Result<Test, Box<dyn StdError>> {
    let app = settings
        .set("max_recipients", 3)
        .set("max_attachments", 2)
        .build()
        .await?;
    let sender = app.add_sender(SENDER).await?;
    Ok(Test {
        router: super::router(app.state().clone()),
        store: app.store().clone(),
        token: sender.token,
        config: app.config().clone(),
        app,
    })
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Result<serde_json::Value, Box<dyn StdError>> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    fn header(&self, name: impl header::AsHeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

async fn send(router: &Router, request: Request<Body>) -> Result<Reply, Box<dyn StdError>> {
    let response = router.clone().oneshot(request).await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), 64 << 20).await?.to_vec();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn api_post(token: Option<&str>, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/messages")
        .header(header::CONTENT_TYPE, content_type);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(body.into()).unwrap_or_default()
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap_or_default()
}

/// A same-origin form post, as a browser sends it from our own page.
fn form_post(uri: &str, body: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, BASE);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(body.to_owned())).unwrap_or_default()
}

fn assert_json_error(reply: &Reply, status: StatusCode, code: &str) -> TestResult {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(reply.header(header::CONTENT_TYPE), "application/json");
    let json = reply.json()?;
    assert_eq!(json["error"], code, "{json}");
    assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
    Ok(())
}

#[tokio::test]
async fn api_needs_a_valid_token() -> TestResult {
    let t = test_app(1 << 20).await?;
    let body = r#"{"to":["a@example.org"],"subject":"s","text":"t"}"#;
    let reply = send(&t.router, api_post(None, "application/json", body)).await?;
    assert_json_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized")?;
    assert_eq!(reply.header(header::WWW_AUTHENTICATE), "Bearer");

    let reply = send(
        &t.router,
        api_post(Some("sp_wrong"), "application/json", body),
    )
    .await?;
    assert_json_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized")?;
    assert_eq!(reply.header(header::WWW_AUTHENTICATE), "Bearer");

    let reply = send(
        &t.router,
        get("/api/v1/messages/0192f0e8-0000-7000-8000-000000000000"),
    )
    .await?;
    assert_json_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized")?;
    Ok(())
}

#[tokio::test]
async fn api_refuses_bad_submissions_clearly() -> TestResult {
    let t = test_app(1000).await?;
    let token = Some(t.token.as_str());
    let json = "application/json";

    let reply = send(
        &t.router,
        api_post(token, json, r#"{"to": ["a@example.org"], "#),
    )
    .await?;
    assert_json_error(&reply, StatusCode::BAD_REQUEST, "invalid_json")?;

    let reply = send(
        &t.router,
        api_post(token, json, r#"{"subject":"s","text":"t"}"#),
    )
    .await?;
    assert_json_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "missing_field")?;
    assert!(reply.text().contains("`to`"), "{}", reply.text());

    let body = r#"{"to":["ok@example.org","not an address"],"subject":"s","text":"t"}"#;
    let reply = send(&t.router, api_post(token, json, body)).await?;
    assert_json_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_address")?;
    assert!(reply.text().contains("not an address"), "{}", reply.text());

    let body = r#"{"to":["a@x.org","b@x.org","c@x.org","d@x.org"],"subject":"s","text":"t"}"#;
    let reply = send(&t.router, api_post(token, json, body)).await?;
    assert_json_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too_many_recipients",
    )?;

    let body = r#"{"to":["a@x.org"],"subject":"s","text":"t","expires_in_days":9999}"#;
    let reply = send(&t.router, api_post(token, json, body)).await?;
    assert_json_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_expiry")?;

    let body = r#"{"to":["a@x.org"],"subject":"s","text":"t","bcc":["x@y.org"]}"#;
    let reply = send(&t.router, api_post(token, json, body)).await?;
    assert_json_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")?;

    // over max_message_bytes once decoded
    let big = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 1200]);
    let body = format!(
        r#"{{"to":["a@x.org"],"subject":"s","text":"t","attachments":[{{"filename":"a.bin","content_base64":"{big}"}}]}}"#
    );
    let reply = send(&t.router, api_post(token, json, body)).await?;
    assert_json_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "too_large")?;

    // over the body limit itself
    let huge = "x".repeat(super::api::body_limit(&t.config) + 10);
    let body = format!(r#"{{"to":["a@x.org"],"subject":"s","text":"{huge}"}}"#);
    let reply = send(&t.router, api_post(token, json, body)).await?;
    assert_json_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "too_large")?;

    let reply = send(&t.router, api_post(token, "text/plain", "hello")).await?;
    assert_json_error(
        &reply,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )?;
    Ok(())
}

#[tokio::test]
async fn api_unknown_message_is_404() -> TestResult {
    let t = test_app(1 << 20).await?;
    for id in ["0192f0e8-0000-7000-8000-000000000000", "not-a-uuid"] {
        let request = Request::get(format!("/api/v1/messages/{id}"))
            .header(header::AUTHORIZATION, format!("Bearer {}", t.token))
            .body(Body::empty())?;
        let reply = send(&t.router, request).await?;
        assert_json_error(&reply, StatusCode::NOT_FOUND, "not_found")?;
    }
    let request = Request::delete("/api/v1/messages/0192f0e8-0000-7000-8000-000000000000")
        .header(header::AUTHORIZATION, format!("Bearer {}", t.token))
        .body(Body::empty())?;
    let reply = send(&t.router, request).await?;
    assert_json_error(&reply, StatusCode::NOT_FOUND, "not_found")?;
    Ok(())
}

#[tokio::test]
async fn openapi_describes_the_api() -> TestResult {
    let t = test_app(1 << 20).await?;
    let reply = send(&t.router, get("/api/openapi.json")).await?;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json()?;
    assert!(
        json["paths"]["/api/v1/messages"]["post"].is_object(),
        "{json}"
    );
    assert!(
        json["paths"]["/api/v1/messages/{id}"]["delete"].is_object(),
        "{json}"
    );
    assert!(
        json["components"]["securitySchemes"]["bearer"].is_object(),
        "{json}"
    );
    Ok(())
}

fn assert_page_headers(reply: &Reply) {
    assert_eq!(
        reply.header(header::CONTENT_SECURITY_POLICY),
        super::security::CSP
    );
    assert_eq!(reply.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(reply.header(header::REFERRER_POLICY), "same-origin");
    assert_eq!(reply.header(header::CACHE_CONTROL), "no-store");
    assert!(reply.header(header::CONTENT_TYPE).starts_with("text/html"));
}

#[tokio::test]
async fn unknown_pickup_is_a_404_page() -> TestResult {
    let t = test_app(1 << 20).await?;
    for uri in ["/p/AAAAAAAAAAAAAAAAAAAAAA", "/p/not%20valid", "/nowhere"] {
        let reply = send(&t.router, get(uri)).await?;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert_page_headers(&reply);
        assert!(reply.text().contains("<h1>"), "{}", reply.text());
        assert!(reply.headers.get(header::SET_COOKIE).is_none());
    }
    Ok(())
}

#[tokio::test]
async fn static_assets_are_served_hashed_and_cached() -> TestResult {
    let t = test_app(1 << 20).await?;
    for (name, ctype) in [
        ("style.css", "text/css"),
        ("pickup.js", "text/javascript"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let reply = send(&t.router, get(super::assets::url(name))).await?;
        assert_eq!(reply.status, StatusCode::OK, "{name}");
        assert!(
            reply.header(header::CONTENT_TYPE).starts_with(ctype),
            "{name}"
        );
        assert!(reply.header(header::CACHE_CONTROL).contains("immutable"));
        assert_eq!(reply.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert!(!reply.body.is_empty());
    }
    let reply = send(&t.router, get("/static/style.css")).await?;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn cross_site_form_posts_are_refused() -> TestResult {
    let t = test_app(1 << 20).await?;
    let request = Request::post("/p/AAAAAAAAAAAAAAAAAAAAAA/code")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::empty())?;
    let reply = send(&t.router, request).await?;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_page_headers(&reply);
    // same origin gets through to the (unknown) message
    let reply = send(
        &t.router,
        form_post("/p/AAAAAAAAAAAAAAAAAAAAAA/code", "", None),
    )
    .await?;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    Ok(())
}

// ---- the full round trip -------------------------------------------------------------------

fn cookie_of(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("sealpost="))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

#[tokio::test]
async fn submit_notify_verify_open_download() -> TestResult {
    let t = test_app(1 << 20).await?;
    let attachment: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let body = serde_json::json!({
        "to": ["patient@example.org"],
        "subject": "Your results",
        "text": "Hello,\nall is well.\n<b>not bold</b>",
        "html": "<p>Hello <img src=\"https://tracker.example/x.gif\"> <a href=\"https://example.org\">link</a></p>",
        "attachments": [{
            "filename": "Befund März.pdf",
            "content_type": "application/pdf",
            "content_base64": base64::engine::general_purpose::STANDARD.encode(&attachment),
        }],
    });
    let reply = send(
        &t.router,
        api_post(Some(&t.token), "application/json", body.to_string()),
    )
    .await?;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let created = reply.json()?;
    let message_id = created["id"].as_str().unwrap_or_default().to_owned();
    assert!(
        reply
            .header(header::LOCATION)
            .ends_with(&format!("/api/v1/messages/{message_id}"))
    );
    assert_eq!(created["recipients"][0]["address"], "patient@example.org");

    let PickupLink {
        pickup_id: pickup,
        secret,
    } = t.link()?;

    // Landing: 200, strict headers, no cookie.
    let reply = send(&t.router, get(&format!("/p/{pickup}"))).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_page_headers(&reply);
    assert!(
        reply.headers.get(header::SET_COOKIE).is_none(),
        "landing set a cookie"
    );
    assert!(reply.text().contains("sender@example.org"));
    assert!(
        reply
            .text()
            .contains(&format!("action=\"/p/{pickup}/code\""))
    );

    // Opening without verification is refused with the code step.
    let reply = send(
        &t.router,
        form_post(&format!("/p/{pickup}/open"), &format!("k={secret}"), None),
    )
    .await?;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());

    // Ask for a code; read it from the outbox.
    let reply = send(&t.router, form_post(&format!("/p/{pickup}/code"), "", None)).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(
        reply
            .text()
            .contains(&format!("action=\"/p/{pickup}/verify\""))
    );
    let code = t.app.code_to("patient@example.org")?;

    // A wrong code re-shows the form with the attempts left.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let reply = send(
        &t.router,
        form_post(
            &format!("/p/{pickup}/verify"),
            &format!("code={wrong}"),
            None,
        ),
    )
    .await?;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert!(
        reply.text().contains("attempts are left"),
        "{}",
        reply.text()
    );

    let reply = send(
        &t.router,
        form_post(
            &format!("/p/{pickup}/verify"),
            &format!("code={code}"),
            None,
        ),
    )
    .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let cookie = cookie_of(&reply).ok_or("no session cookie after verification")?;
    let set_cookie = reply.header(header::SET_COOKIE).to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    assert!(
        reply
            .text()
            .contains(&format!("action=\"/p/{pickup}/open\""))
    );

    // A wrong secret is counted and re-shows the form.
    let wrong_secret = sealpost_crypto::LinkSecret::generate().encode();
    let reply = send(
        &t.router,
        form_post(
            &format!("/p/{pickup}/open"),
            &format!("k={}", wrong_secret.as_str()),
            Some(&cookie),
        ),
    )
    .await?;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert!(
        reply.text().contains("attempts are left"),
        "{}",
        reply.text()
    );

    // Open.
    let reply = send(
        &t.router,
        form_post(
            &format!("/p/{pickup}/open"),
            &format!("k={secret}"),
            Some(&cookie),
        ),
    )
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
    let action_start = page
        .find(&format!("/p/{pickup}/attachments/"))
        .ok_or("no download form")?;
    let part_no: String = page[action_start..]
        .trim_start_matches(&format!("/p/{pickup}/attachments/"))
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();

    // Download and compare.
    let reply = send(
        &t.router,
        form_post(
            &format!("/p/{pickup}/attachments/{part_no}"),
            &format!("k={secret}"),
            Some(&cookie),
        ),
    )
    .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, attachment);
    assert_eq!(reply.header(header::CONTENT_TYPE), "application/pdf");
    assert_eq!(
        reply.header(header::CONTENT_DISPOSITION),
        "attachment; filename=\"Befund M_rz.pdf\"; filename*=UTF-8''Befund%20M%C3%A4rz.pdf"
    );
    assert_eq!(reply.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");

    // The sender sees the open, then revokes.
    let auth = format!("Bearer {}", t.token);
    let request = Request::get(format!("/api/v1/messages/{message_id}"))
        .header(header::AUTHORIZATION, &auth)
        .body(Body::empty())?;
    let reply = send(&t.router, request).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let view = reply.json()?;
    assert_eq!(view["recipients"][0]["open_count"], 1, "{view}");

    let request = Request::delete(format!("/api/v1/messages/{message_id}"))
        .header(header::AUTHORIZATION, &auth)
        .body(Body::empty())?;
    let reply = send(&t.router, request).await?;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());

    let reply = send(&t.router, get(&format!("/p/{pickup}"))).await?;
    assert_eq!(reply.status, StatusCode::GONE, "{}", reply.text());
    assert_page_headers(&reply);
    assert!(audit::verify(&t.store).await?.ok());
    Ok(())
}

#[tokio::test]
async fn multipart_submission_streams_attachments() -> TestResult {
    let t = test_app(1 << 20).await?;
    let boundary = "XyZboundary";
    let file: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
    let mut body = Vec::new();
    let mut text_field = |name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    text_field("to", "a@example.org, b@example.org");
    text_field("subject", "Multipart");
    text_field("text", "Body");
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"data.bin\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ctype = format!("multipart/form-data; boundary={boundary}");
    let reply = send(&t.router, api_post(Some(&t.token), &ctype, body)).await?;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let json = reply.json()?;
    assert_eq!(
        json["recipients"].as_array().map(Vec::len),
        Some(2),
        "{json}"
    );

    // Missing `to` in multipart is a 422 naming the field, and keeps nothing.
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\nx\r\n--{boundary}--\r\n"
    );
    let reply = send(&t.router, api_post(Some(&t.token), &ctype, body)).await?;
    assert_json_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "missing_field")?;
    assert!(reply.text().contains("`to`"));
    Ok(())
}

#[tokio::test]
async fn passphrase_message_opens_without_code_and_locks_after_failures() -> TestResult {
    let t = test_app_with(TestApp::builder().set("lockout_threshold", 3)).await?;
    let body = serde_json::json!({
        "to": ["client@example.org"],
        "subject": "Contract",
        "text": "See attached.",
        "passphrase": "correct horse",
    });
    let reply = send(
        &t.router,
        api_post(Some(&t.token), "application/json", body.to_string()),
    )
    .await?;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let PickupLink {
        pickup_id: pickup,
        secret,
    } = t.link()?;

    // The landing page asks for the passphrase right away.
    let reply = send(&t.router, get(&format!("/p/{pickup}"))).await?;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.text().contains("name=\"passphrase\""),
        "{}",
        reply.text()
    );

    // A malformed secret is refused without counting; a missing passphrase asks for it.
    let open = format!("/p/{pickup}/open");
    let reply = send(&t.router, form_post(&open, "k=short", None)).await?;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text()
    );
    let reply = send(&t.router, form_post(&open, &format!("k={secret}"), None)).await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert!(reply.text().contains("passphrase"), "{}", reply.text());

    // The right passphrase opens it, no code needed; a pasted whole link works too.
    let form =
        format!("k=https%3A%2F%2Fx.example%2Fp%2F{pickup}%23k%3D{secret}&passphrase=correct+horse");
    let reply = send(&t.router, form_post(&open, &form, None)).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.text().contains("See attached."));

    // Wrong passphrases count toward the lockout.
    let wrong = format!("k={secret}&passphrase=wrong");
    let mut last = StatusCode::OK;
    for _ in 0..3 {
        let reply = send(&t.router, form_post(&open, &wrong, None)).await?;
        last = reply.status;
        if last == StatusCode::LOCKED {
            break;
        }
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    }
    let reply = send(
        &t.router,
        form_post(&open, &format!("k={secret}&passphrase=correct+horse"), None),
    )
    .await?;
    assert_eq!(
        reply.status,
        StatusCode::LOCKED,
        "after {last}: {}",
        reply.text()
    );
    assert_page_headers(&reply);
    assert!(reply.text().contains("locked"), "{}", reply.text());
    let reply = send(&t.router, get(&format!("/p/{pickup}"))).await?;
    assert_eq!(reply.status, StatusCode::LOCKED, "{}", reply.text());
    Ok(())
}

#[tokio::test]
async fn multipart_over_the_limit_is_413_and_keeps_nothing() -> TestResult {
    let t = test_app(2000).await?;
    let boundary = "b0undary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\na@example.org\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\ns\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nt\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"big.bin\"\r\n\r\n"
    )
    .into_bytes();
    body.extend(std::iter::repeat_n(b'z', 5000));
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ctype = format!("multipart/form-data; boundary={boundary}");
    let reply = send(&t.router, api_post(Some(&t.token), &ctype, body)).await?;
    assert_json_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "too_large")?;
    assert!(
        t.app.outbox()?.is_empty(),
        "a refused message notified someone"
    );
    Ok(())
}

#[tokio::test]
async fn each_api_request_audits_one_token_use_with_the_peer_ip() -> TestResult {
    let t = test_app(1 << 20).await?;
    for _ in 0..2 {
        let mut request = Request::get("/api/v1/messages/0192f0e8-0000-7000-8000-000000000000")
            .header(header::AUTHORIZATION, format!("Bearer {}", t.token))
            // not a trusted proxy: the header is ignored
            .header("x-forwarded-for", "203.0.113.9")
            .header(header::USER_AGENT, "curl/8")
            .body(Body::empty())?;
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [192, 0, 2, 7],
                40000,
            ))));
        let reply = send(&t.router, request).await?;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
    }
    let request = Request::get("/api/v1/messages/0192f0e8-0000-7000-8000-000000000000")
        .header(header::AUTHORIZATION, "Bearer sp_nope")
        .body(Body::empty())?;
    assert_eq!(
        send(&t.router, request).await?.status,
        StatusCode::UNAUTHORIZED
    );

    let rows = rows::audit_rows(&t.store).await?;
    let used: Vec<_> = rows.iter().filter(|r| r.action == "token_used").collect();
    assert_eq!(used.len(), 2);
    assert!(used.iter().all(|r| r.ip.as_deref() == Some("192.0.2.7")));
    assert!(used.iter().all(|r| r.actor == "token:sender@example.org"));
    assert!(
        used.iter()
            .all(|r| r.user_agent.as_deref() == Some("curl/8"))
    );
    assert_eq!(
        rows.iter().filter(|r| r.action == "token_rejected").count(),
        1
    );
    assert!(
        rows.iter().all(|r| !r.detail.contains("sp_")),
        "a token reached the log"
    );
    assert!(audit::verify(&t.store).await?.ok());
    Ok(())
}

/// Invariant 3 and flow 2: when the outbound relay cannot take the notification, the API
/// answers 503 and keeps nothing — no message, part, chunk or recipient row — but audits why.
#[tokio::test]
async fn relay_failure_gives_503_and_keeps_nothing() -> TestResult {
    // A port with nobody listening: the handoff fails with a temporary error.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await?
        .local_addr()?
        .port();
    let t = test_app_with(TestApp::builder().set("outbound", format!("smtp://127.0.0.1:{closed}")))
        .await?;
    let body = serde_json::json!({
        "to": ["bob@example.org"], "subject": "s", "text": "t",
        "attachments": [{"filename": "a.bin", "content_type": "application/octet-stream",
                         "content_base64": base64::engine::general_purpose::STANDARD.encode([7u8; 100_000])}]
    });
    let reply = send(
        &t.router,
        api_post(Some(&t.token), "application/json", body.to_string()),
    )
    .await?;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text()
    );
    assert!(
        reply.json()?["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    for table in ["messages", "parts", "chunks", "recipients"] {
        let n = rows::count_rows(&t.store, table).await?;
        assert_eq!(n, 0, "{table} must be empty after a refused submission");
    }
    let audit_rows = rows::audit_rows(&t.store).await?;
    let failed = audit_rows
        .iter()
        .filter(|r| r.action == "notification_failed" || r.action == "submit_rejected")
        .count();
    assert_eq!(failed, 2);
    assert!(audit::verify(&t.store).await?.ok());
    Ok(())
}
