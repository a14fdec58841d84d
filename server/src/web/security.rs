//! Response headers every page gets, the cross-site request check for form posts, and the
//! request context (client IP, user agent) the audit log needs.
//!
//! - Every response carries a strict Content-Security-Policy (no inline script or style, no
//!   framing, no remote anything), `nosniff`, `Referrer-Policy: same-origin` (nothing leaks to other sites, and same-origin
//!   form posts keep a real `Origin`), and `Cache-Control: no-store`
//!   unless the handler chose a cache policy itself (hashed static files do).
//! - Form posts outside `/api/` must come from our own pages: the first post of a pickup has
//!   no session yet, so `SameSite` cookies cannot protect it. When the browser says where the
//!   request comes from (`Origin`, or `Sec-Fetch-Site`), it must be this site; otherwise 403.
//!   The API authenticates with bearer tokens, which browsers never attach on their own.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use url::Url;

use super::{AppError, AppState, client_ip};
use crate::audit::actor;
use crate::messages::RequestCtx;

/// The Content-Security-Policy of every page.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; \
                       base-uri 'none'";

/// Middleware: security headers on every response (see the module doc).
pub async fn headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    if state.config.base_url_is_https() {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// Whether a state-changing request may proceed: `Origin` (when sent) equals our origin, else
/// `Sec-Fetch-Site` (when sent) is `same-origin` or `none` (typed into the address bar).
pub fn same_origin(headers: &axum::http::HeaderMap, base_url: &Url) -> bool {
    // Sec-Fetch-Site comes first: browsers set it themselves and page script cannot, and it
    // stays meaningful where a referrer policy makes the browser send `Origin: null`.
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        return origin
            .to_str()
            .is_ok_and(|o| o.eq_ignore_ascii_case(&base_url.origin().ascii_serialization()));
    }
    // Neither header: not a current browser's cross-site form post (those send Origin).
    true
}

/// Middleware: refuse cross-site form posts outside `/api/` with 403.
pub async fn csrf(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let path = request.uri().path();
    let exempt = path.starts_with("/api/") || path == "/api";
    if safe || exempt || same_origin(request.headers(), state.config.base_url.url()) {
        return next.run(request).await;
    }
    tracing::info!(path, "refused a cross-site form post");
    AppError::Forbidden.into_response()
}

/// The audit context of a request: client IP (the socket peer, or the `X-Forwarded-For` hop
/// a trusted proxy vouches for; see [`client_ip`]), user agent, and `anonymous` as the actor
/// until a handler knows better.
impl FromRequestParts<AppState> for RequestCtx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| client_ip(*peer, &parts.headers, &state.config));
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(RequestCtx {
            ip,
            user_agent,
            actor: actor::ANONYMOUS.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;
    use crate::config::BaseUrl;

    /// `scheme://host[:port]` of the base URL, as browsers send it in `Origin`.
    fn origin_of(base_url: &str) -> Result<String, Box<dyn std::error::Error>> {
        Ok(BaseUrl::parse(base_url)?
            .url()
            .origin()
            .ascii_serialization())
    }

    #[test]
    fn origin_of_base_url() -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(
            origin_of("https://mail.example.org")?,
            "https://mail.example.org"
        );
        assert_eq!(
            origin_of("https://example.org:8443/sealpost")?,
            "https://example.org:8443"
        );
        Ok(())
    }

    #[test]
    fn cross_site_posts_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let base = BaseUrl::parse("https://sealpost.example.org/pickup")?;
        let base = base.url();
        let mut h = HeaderMap::new();
        assert!(same_origin(&h, base));
        h.insert(header::ORIGIN, "https://sealpost.example.org".parse()?);
        assert!(same_origin(&h, base));
        h.insert(header::ORIGIN, "https://evil.example".parse()?);
        assert!(!same_origin(&h, base));
        h.insert(header::ORIGIN, "null".parse()?);
        assert!(!same_origin(&h, base));
        let mut h = HeaderMap::new();
        h.insert("sec-fetch-site", "cross-site".parse()?);
        assert!(!same_origin(&h, base));
        h.insert("sec-fetch-site", "same-origin".parse()?);
        assert!(same_origin(&h, base));
        Ok(())
    }
}
