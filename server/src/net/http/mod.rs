//! The HTTP listener, plain or over TLS, as one path: one accept loop ([`crate::net::accept`])
//! with the connection caps, then for HTTPS the TLS handshake with its timeout, then HTTP/1.1
//! with a header-read timeout, a request body that stops arriving for the idle timeout failed,
//! and idle connections closed (`idle.rs`). Each request sees the
//! peer address as `ConnectInfo<SocketAddr>`. At shutdown the listener stops accepting and
//! lets in-flight requests finish (at most 30 s).
//!
//! A connection over the per-IP cap is closed at once, before anything is read or a handshake
//! is started, and logged at a bounded rate ([`RefusalLog`]). On a listener at its total cap,
//! the connection that has waited longest without a request being handled is closed to make
//! room for the new one (`room.rs`); only when every connection has a request being handled
//! is the new one refused. The per-IP cap counts the TCP peer,
//! so peers in `trusted_proxies` are exempt from it (all their clients share the proxy's
//! address; the proxy is where per-client limits belong); the total cap applies to them too.
//!
//! What this module must never do: serve plain HTTP where `web::check_listener_policy`
//! refuses it (that is checked before [`serve`] is called), or hold a connection that neither
//! moves bytes nor has a request being handled beyond the idle timeout.

mod idle;
mod room;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use ipnet::IpNet;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;
use tower_http::timeout::TimeoutBody;

use super::{ConnCaps, RefusalLog, Refused};
use crate::config::Config;
use idle::{Activity, Tracked};
use room::{Registration, Room};

/// How long in-flight requests get to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The listener's timeouts and caps (`http_*` settings).
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// From the end of the previous response (or the connection's start, or the handshake's
    /// end) to the end of the next request head.
    pub header_read_timeout: Duration,
    /// No bytes moved and no request being handled.
    pub idle_timeout: Duration,
    pub handshake_timeout: Duration,
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
    /// Peers exempt from the per-IP cap: the trusted proxies.
    pub exempt: Vec<IpNet>,
}

impl HttpLimits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(config.http_header_read_timeout_secs.into()),
            idle_timeout: Duration::from_secs(config.http_idle_timeout_secs.into()),
            handshake_timeout: Duration::from_secs(config.http_tls_handshake_timeout_secs.into()),
            max_connections: config.http_max_connections,
            max_connections_per_ip: config.http_max_connections_per_ip,
            exempt: config.trusted_proxies.clone(),
        }
    }

    fn counts_per_ip(&self, ip: IpAddr) -> bool {
        !self.exempt.iter().any(|net| net.contains(&ip))
    }
}

/// Serve `router` on `listener` until `shutdown` resolves — over TLS with `tls`, else plain —
/// then let in-flight requests finish (at most 30 s).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<ServerConfig>>,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let name = if tls.is_some() { "https" } else { "http" };
    let acceptor = tls.map(TlsAcceptor::from);
    let caps = Arc::new(ConnCaps::new(
        limits.max_connections,
        limits.max_connections_per_ip,
    ));
    let room = Arc::new(Room::default());
    let refusals = RefusalLog::new(name);
    let limits = Arc::new(limits);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            conn = super::accept(&listener, name) => conn,
            () = &mut shutdown => break,
        };
        let ip = peer.ip().to_canonical();
        let counts_per_ip = limits.counts_per_ip(ip);
        let admitted = match caps.admit(ip, counts_per_ip) {
            Err(Refused::Total) => match room.push_out_stalest() {
                Some(place) => caps.admit_into(place, ip, counts_per_ip),
                None => Err(Refused::Total),
            },
            admitted => admitted,
        };
        let (place, ip_slot) = match admitted {
            Ok(admitted) => {
                refusals.accepted();
                admitted.into_parts()
            }
            Err(refused) => {
                refusals.refused(peer, refused.reason());
                drop(tcp);
                continue;
            }
        };
        let conn = Connection {
            peer,
            router: router.clone(),
            limits: Arc::clone(&limits),
            watcher: graceful.watcher(),
            registration: room.enter(Activity::new(), place),
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _ip_slot = ip_slot;
            conn.run(tcp, acceptor).await;
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            "connections still open after the drain timeout; closing them"
        );
    }
    Ok(())
}

/// One accepted connection.
struct Connection {
    peer: SocketAddr,
    router: Router,
    limits: Arc<HttpLimits>,
    watcher: Watcher,
    /// The connection's place in the room, and how it learns it must make room.
    registration: Registration,
}

impl Connection {
    /// The TLS handshake when there is an acceptor, then HTTP until the connection ends.
    async fn run(self, tcp: TcpStream, acceptor: Option<TlsAcceptor>) {
        let activity = self.registration.activity().clone();
        let tcp = Tracked::new(tcp, activity.clone());
        let Some(acceptor) = acceptor else {
            return self.http(tcp, activity).await;
        };
        let peer = self.peer;
        let handshake = tokio::time::timeout(self.limits.handshake_timeout, acceptor.accept(tcp));
        let handshake = tokio::select! {
            done = handshake => done,
            () = self.registration.pushed_out() => {
                return tracing::debug!(%peer, "closing a connection in its TLS handshake to make room");
            }
        };
        match handshake {
            Ok(Ok(tls)) => self.http(tls, activity).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    }

    async fn http<S>(self, stream: S, activity: Activity)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            peer,
            router,
            limits,
            watcher,
            registration,
        } = self;
        let busy = activity.clone();
        let body_timeout = limits.idle_timeout;
        let service = hyper::service::service_fn(move |req: axum::http::Request<Incoming>| {
            // A body that stops arriving fails after the idle timeout instead of holding its
            // handler (the connection counts as busy while a request is handled).
            let mut req =
                req.map(|body| axum::body::Body::new(TimeoutBody::new(body_timeout, body)));
            req.extensions_mut().insert(ConnectInfo(peer));
            let guard = busy.busy();
            let response = router.clone().oneshot(req);
            async move {
                let response = response.await;
                drop(guard);
                response
            }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        let conn = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::select! {
            result = conn => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
                }
            }
            () = activity.idle_for(limits.idle_timeout) => {
                tracing::debug!(%peer, "closing an idle HTTP connection");
            }
            () = registration.pushed_out() => {
                tracing::debug!(%peer, "closing a connection without a request to make room");
            }
        }
    }
}
