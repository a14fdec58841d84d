//! HTTP: the axum router, shared middleware and the listener policy.
//!
//! Handlers stay thin: parse the request, call one domain function, render. They never run
//! SQL (that is [`crate::store`]) or cryptography (that is `sealpost-crypto`), and they return
//! [`AppError`] for every failure. The routers of `api/` and `pickup/`, the OpenAPI
//! description, the staff sign-in pages (`staff/`) and the static files are merged in
//! [`router`] (the rest of the staff console and the admin pages are planned, not built).
//!
//! GET handlers must not change state (invariant 4): link scanners fetch them.

pub mod api;
pub mod assets;
pub mod error;
#[cfg(test)]
mod http_tests;
pub mod openapi;
pub mod page;
pub mod pickup;
pub mod security;
pub mod staff;

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

pub use crate::app::AppState;
use crate::config::Config;
use crate::store::Store;
use crate::store::sessions::SqliteSessionStore;
pub use error::AppError;

/// The complete HTTP application.
///
/// Layers, outermost first: tracing; each request in a task of its own
/// ([`run_to_completion`]); security headers (CSP, nosniff, same-origin referrer, no-store
/// unless the handler set a cache policy); error rendering (JSON under `/api/`, HTML pages
/// elsewhere); the cross-site check for form posts; sessions.
pub fn router(state: AppState) -> Router {
    let sessions = session_layer(&state.store, &state.config);
    Router::new()
        .route("/healthz", get(healthz))
        .merge(api::router(&state.config))
        .merge(openapi::router())
        .merge(pickup::router(&state))
        .merge(staff::router())
        .merge(assets::router())
        .fallback(not_found)
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::csrf,
        ))
        .layer(axum::middleware::from_fn(error::error_format))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::headers,
        ))
        .layer(axum::middleware::from_fn(run_to_completion))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Run every request to its end in a task of its own, even when the client hangs up.
///
/// A connection drops its request's future when the client disconnects, at whatever `.await`
/// it had reached. A domain operation of several steps cut between two of them (a code
/// stored but not mailed or audited, a message notified but never marked ready, a verified
/// session not saved) would leave a change without its audit event or a half-finished state;
/// run in its own task, it finishes and only the response is lost. Reading the body of a gone
/// client still fails, as it should, and ends the request the normal way.
async fn run_to_completion(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(e) => {
            axum::response::IntoResponse::into_response(AppError::internal("request task", e))
        }
    }
}

async fn not_found() -> AppError {
    AppError::NotFound
}

async fn healthz() -> &'static str {
    "ok"
}

/// Session cookies: `HttpOnly`, `SameSite=Strict`, `Secure` and the `__Host-` prefix when the
/// base URL is https, expiring after `session_idle_minutes` without activity. Strict: a
/// session is only ever needed by posts from our own pages, never on arrival from a link.
pub fn session_layer(store: &Store, config: &Config) -> SessionManagerLayer<SqliteSessionStore> {
    let secure = config.base_url_is_https();
    let idle = time::Duration::minutes(i64::from(config.session_idle_minutes));
    SessionManagerLayer::new(SqliteSessionStore::new(store))
        .with_name(if secure {
            "__Host-sealpost"
        } else {
            "sealpost"
        })
        .with_secure(secure)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(idle))
}

/// Why a listener may not serve.
#[derive(Debug, thiserror::Error)]
pub enum ListenerPolicyError {
    #[error(
        "refusing to serve plain HTTP on non-loopback address {0}: set tls_cert and tls_key, \
         or run behind a TLS-terminating proxy listed in trusted_proxies"
    )]
    PlainHttpOnPublicAddress(SocketAddr),
}

/// How a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// With a certificate configured the listener serves HTTPS, wherever it is. Plain HTTP is
/// allowed only on a loopback address, or behind a TLS-terminating proxy (`trusted_proxies`
/// non-empty). Anything else is refused (invariant 5: never cleartext).
pub fn check_listener_policy(
    addr: SocketAddr,
    config: &Config,
) -> Result<Scheme, ListenerPolicyError> {
    if config.tls_cert.is_some() && config.tls_key.is_some() {
        return Ok(Scheme::Https);
    }
    if addr.ip().is_loopback() || !config.trusted_proxies.is_empty() {
        return Ok(Scheme::Http);
    }
    Err(ListenerPolicyError::PlainHttpOnPublicAddress(addr))
}

/// The client's IP for auditing and rate limits. `X-Forwarded-For` is believed only when the
/// peer is a trusted proxy, and then read right to left, skipping trusted proxies, so a
/// client cannot spoof its address by sending its own header.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, config: &Config) -> IpAddr {
    let peer_ip = peer.ip().to_canonical();
    if !config.is_trusted_proxy(peer_ip) {
        return peer_ip;
    }
    let hops: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("garbage").split(','))
        .map(|s| s.trim().parse::<IpAddr>().ok().map(|ip| ip.to_canonical()))
        .collect();
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if config.is_trusted_proxy(*ip) => continue,
            Some(ip) => return *ip,
            // Unparseable entries can only come from the client side of the chain.
            None => break,
        }
    }
    peer_ip
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    /// Settings only: the policy reads no file, so the temporary data directory can go.
    fn config(proxies: &[&str], tls: bool) -> anyhow::Result<Config> {
        let (_dir, config) = crate::testing::TestApp::builder()
            .set("trusted_proxies", proxies)
            .set("tls_cert", tls.then_some("/c.pem"))
            .set("tls_key", tls.then_some("/k.pem"))
            .config()?;
        Ok(config)
    }

    fn addr(s: &str) -> SocketAddr {
        match s.parse() {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn listener_policy() -> anyhow::Result<()> {
        let policy = |a: &str, proxies: &[&str], tls: bool| -> anyhow::Result<Option<Scheme>> {
            Ok(check_listener_policy(addr(a), &config(proxies, tls)?).ok())
        };
        assert_eq!(policy("127.0.0.1:8080", &[], false)?, Some(Scheme::Http));
        assert_eq!(policy("[::1]:8080", &[], false)?, Some(Scheme::Http));
        assert!(matches!(
            check_listener_policy(addr("0.0.0.0:8080"), &config(&[], false)?),
            Err(ListenerPolicyError::PlainHttpOnPublicAddress(_))
        ));
        assert_eq!(policy("0.0.0.0:8080", &[], true)?, Some(Scheme::Https));
        assert_eq!(policy("127.0.0.1:8080", &[], true)?, Some(Scheme::Https));
        assert_eq!(
            policy("0.0.0.0:8080", &["10.0.0.1"], false)?,
            Some(Scheme::Http)
        );
        Ok(())
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() -> anyhow::Result<()> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.66, 198.51.100.7, 10.0.0.2"),
        );
        let direct = config(&[], false)?;
        assert_eq!(
            client_ip(addr("192.0.2.1:5000"), &headers, &direct).to_string(),
            "192.0.2.1"
        );
        let proxied = config(&["10.0.0.0/8"], false)?;
        // peer is the proxy; rightmost untrusted hop is the client
        assert_eq!(
            client_ip(addr("10.0.0.1:5000"), &headers, &proxied).to_string(),
            "198.51.100.7"
        );
        // an untrusted peer's header is ignored
        assert_eq!(
            client_ip(addr("192.0.2.1:5000"), &headers, &proxied).to_string(),
            "192.0.2.1"
        );
        Ok(())
    }
}
