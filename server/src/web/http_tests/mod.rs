//! The HTTP layer through the real router (`oneshot`), over a [`TestApp`] (real SQLite store in
//! a temp dir, file outbox). These tests prove the mapping: which request reaches which domain
//! call, and how each outcome becomes a status, an error code, a page and its headers. The
//! domain's rules themselves (how failures count, when codes die) are proved in
//! `messages/tests.rs`.
//!
//! - `api.rs`: `/api/v1` (tokens, submissions and their refusals, the sender's view);
//! - `pickup.rs`: the recipient pages `/p/{id}`;
//! - `lockout.rs`: waits, blocks and the locked page, and the sender's unlock endpoint;
//! - `site.rs`: what every page shares (static files, the cross-site check, 404s).

mod api;
mod lockout;
mod pickup;
mod site;

use std::error::Error as StdError;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use tower::ServiceExt;

use crate::config::Config;
use crate::store::Store;
use crate::testing::{PickupLink, SENDER, TestApp, TestAppBuilder};

type TestResult = Result<(), Box<dyn StdError>>;

/// The base URL of the default configuration: the origin same-site form posts come from.
const BASE: &str = "http://127.0.0.1:8080";

/// The router over a [`TestApp`] with one sender holding an API token.
struct Test {
    router: Router,
    store: Store,
    token: String,
    config: Config,
    app: TestApp,
}

/// A migrated instance in a temp dir with one sender holding an API token, at most 3
/// recipients and 2 attachments, and `max_message_bytes`.
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

impl Test {
    async fn send(&self, request: Request<Body>) -> Result<Reply, Box<dyn StdError>> {
        send(&self.router, request).await
    }

    /// `POST /api/v1/messages` with this sender's token and a JSON body; asserts 201 and
    /// returns the message id and the pickup link of the (newest) notification.
    async fn submit(
        &self,
        body: serde_json::Value,
    ) -> Result<(String, PickupLink), Box<dyn StdError>> {
        let reply = self
            .send(api_post(
                Some(&self.token),
                "application/json",
                body.to_string(),
            ))
            .await?;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        let id = reply.json()?["id"].as_str().unwrap_or_default().to_owned();
        let link = self
            .app
            .outbox()?
            .iter()
            .rev()
            .find_map(|m| m.link())
            .ok_or("no notification with a link in the outbox")?;
        Ok((id, link))
    }

    /// `POST /p/{id}/code`, the code from the outbox, `POST /p/{id}/verify`: both must answer
    /// 200. Returns the verify page and the session cookie (`name=value`).
    async fn verify(
        &self,
        pickup: &str,
        address: &str,
    ) -> Result<(Reply, String), Box<dyn StdError>> {
        let reply = self
            .send(form_post(&format!("/p/{pickup}/code"), "", None))
            .await?;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let code = self.app.code_to(address)?;
        let reply = self
            .send(form_post(
                &format!("/p/{pickup}/verify"),
                &format!("code={code}"),
                None,
            ))
            .await?;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let cookie = cookie_of(&reply).ok_or("no session cookie after verification")?;
        Ok((reply, cookie))
    }
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

/// `method uri` with this bearer token and no body.
fn api_call(method: Method, uri: &str, token: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap_or_default()
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

/// The documented JSON error: `status`, `application/json`, `{"error": code, "message": …}`
/// with a message.
fn assert_json_error(reply: &Reply, status: StatusCode, code: &str) -> TestResult {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(reply.header(header::CONTENT_TYPE), "application/json");
    let json = reply.json()?;
    assert_eq!(json["error"], code, "{json}");
    assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
    Ok(())
}

/// The headers every HTML page carries.
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

/// The session cookie a reply sets, as `name=value`.
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
