//! Accepting SMTP connections: caps on concurrent sessions overall and per client IP, and a
//! lower per-IP cap on sessions that have not authenticated yet (`421 4.7.0` beyond them; the
//! caps are [`crate::net::caps`], shared with HTTP), the STARTTLS / implicit-TLS handshake,
//! and graceful shutdown (idle sessions get `421 4.3.2`, a session in the middle of DATA
//! finishes its transaction first).
//!
//! Listeners take an already-bound `TcpListener` and a shutdown future, so tests bind
//! `127.0.0.1:0` and never sleep waiting for readiness.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::reply::{self, Reply};
use super::session::{Outcome, Session, State};
use super::{Limits, SmtpContext, policy};
use crate::app::AppState;
use crate::net::{Admitted, ConnCaps, IpCounts, IpSlot, RefusalLog, Refused};

/// How long a client may take to finish the TLS handshake (less when an unauthenticated
/// session's time runs out sooner).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight transactions get to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// One SMTP server: its sessions share the caps and the shutdown signal, whether they came in
/// on the STARTTLS listener or the implicit-TLS one.
#[derive(Debug)]
pub struct SmtpServer {
    ctx: SmtpContext,
    shutdown: watch::Sender<bool>,
    caps: ConnCaps,
    unauthenticated: IpCounts,
    refusals: RefusalLog,
}

/// Why a connection was refused: the reply, and the reason audited.
struct Refusal {
    reply: Reply,
    reason: &'static str,
}

impl SmtpServer {
    /// A server with the limits of `app.config`. `tls`: `None` disables STARTTLS.
    pub fn new(app: AppState, tls: Option<TlsAcceptor>) -> Self {
        let limits = Limits::from_config(&app.config);
        Self::with_limits(app, tls, limits)
    }

    pub fn with_limits(app: AppState, tls: Option<TlsAcceptor>, limits: Limits) -> Self {
        let config = &app.config;
        let caps = ConnCaps::new(config.smtp_max_sessions, config.smtp_max_sessions_per_ip);
        let unauthenticated = IpCounts::new(config.smtp_max_unauthenticated_per_ip);
        let (shutdown, rx) = watch::channel(false);
        Self {
            ctx: SmtpContext::with_shutdown(app, tls, limits, rx),
            shutdown,
            caps,
            unauthenticated,
            refusals: RefusalLog::new("smtp"),
        }
    }

    /// Accept connections on `listener` until `shutdown` resolves, then let sessions finish
    /// (at most 120 s). `implicit_tls`: TLS from the first byte (port 465 style).
    pub async fn serve(
        &self,
        listener: TcpListener,
        implicit_tls: bool,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let addr = listener.local_addr()?;
        if implicit_tls && self.ctx.tls.is_none() {
            anyhow::bail!("the implicit-TLS SMTP listener needs a certificate");
        }
        tracing::info!(%addr, implicit_tls, "SMTP listening");
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                conn = crate::net::accept(&listener, "smtp") => conn,
                () = &mut shutdown => break,
            };
            tcp.set_nodelay(true).ok();
            self.spawn_session(tcp, peer, implicit_tls);
        }
        drop(listener);
        self.shutdown.send_replace(true);
        match tokio::time::timeout(DRAIN_TIMEOUT, self.caps.all_closed()).await {
            Ok(()) => tracing::info!(%addr, "SMTP stopped"),
            Err(_) => tracing::warn!(%addr, "SMTP sessions still open after the drain timeout"),
        }
        Ok(())
    }

    fn spawn_session(&self, mut tcp: tokio::net::TcpStream, peer: SocketAddr, implicit_tls: bool) {
        let ip = peer.ip().to_canonical();
        let (admitted, slot) = match self.admit(ip) {
            Ok(admitted) => {
                self.refusals.accepted();
                admitted
            }
            Err(refusal) => {
                self.refusals.refused(peer, refusal.reason);
                let app = self.ctx.app.clone();
                tokio::spawn(async move {
                    // Audited before the reply, so a client that saw the 421 can find the event.
                    policy::refuse_connection(&app, ip, refusal.reason).await;
                    if !implicit_tls {
                        let bye = refusal.reply.to_wire();
                        let _ = tokio::time::timeout(
                            Duration::from_secs(5),
                            tcp.write_all(bye.as_bytes()),
                        )
                        .await;
                    }
                });
                return;
            }
        };
        let ctx = self.ctx.clone();
        tokio::spawn(async move {
            let _admitted = admitted;
            let state = State::new(ip, implicit_tls, &ctx, slot);
            handle(tcp, ctx, state).await;
        });
    }

    /// A place in the session caps, and for a client that will have to authenticate, one in
    /// the per-IP count of unauthenticated sessions.
    fn admit(&self, ip: IpAddr) -> Result<(Admitted, Option<IpSlot>), Refusal> {
        // The client's connection budget (`smtp_connections_per_minute`) first: a client that
        // reconnects in a loop is refused before it takes a session slot.
        if self
            .ctx
            .app
            .throttle
            .check(crate::throttle::Gate::SmtpConnect, ip)
            .is_err()
        {
            return Err(Refusal {
                reply: reply::TOO_MANY_CONNECTIONS,
                reason: "too many connections per minute from this address",
            });
        }
        let admitted = self.caps.admit(ip, true).map_err(|refused| Refusal {
            reply: reply::TOO_MANY_SESSIONS,
            reason: match refused {
                Refused::Total => "too many SMTP sessions",
                Refused::PerIp => "too many SMTP sessions from this address",
            },
        })?;
        if policy::allowed_network(&self.ctx.app.config, ip) {
            return Ok((admitted, None));
        }
        let slot = self.unauthenticated.take(ip).ok_or(Refusal {
            reply: reply::TOO_MANY_UNAUTHENTICATED,
            reason: "too many unauthenticated SMTP sessions from this address",
        })?;
        Ok((admitted, Some(slot)))
    }
}

/// Serve SMTP with STARTTLS on `listener` until `shutdown` resolves, with the limits of
/// `app.config`.
pub async fn serve(
    app: AppState,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    SmtpServer::new(app, tls)
        .serve(listener, false, shutdown)
        .await
}

/// Run one connection to its end: the plain session, then (after STARTTLS) the TLS session;
/// or, when `state` says TLS (the implicit-TLS listener), the handshake first.
pub async fn handle<S>(stream: S, ctx: SmtpContext, state: State)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let peer = state.peer;
    let Some(acceptor) = ctx.tls.clone() else {
        if !state.tls {
            let session = Session::new(stream, ctx, state);
            log_end(session.run(true).await, peer);
        }
        return;
    };
    if state.tls {
        if let Some(tls) = handshake(&acceptor, stream, &state).await {
            let session = Session::new(tls, ctx, state);
            log_end(session.run(true).await, peer);
        }
        return;
    }
    let session = Session::new(stream, ctx.clone(), state);
    match session.run(true).await {
        Ok(Outcome::StartTls(stream, state)) => {
            if let Some(tls) = handshake(&acceptor, stream, &state).await {
                let session = Session::new(tls, ctx, state.after_tls());
                log_end(session.run(false).await, peer);
            }
        }
        other => log_end(other, peer),
    }
}

async fn handshake<S>(
    acceptor: &TlsAcceptor,
    stream: S,
    state: &State,
) -> Option<tokio_rustls::server::TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let peer = state.peer;
    let deadline = match state.unauthenticated_deadline() {
        Some(deadline) => deadline.min(Instant::now() + HANDSHAKE_TIMEOUT),
        None => Instant::now() + HANDSHAKE_TIMEOUT,
    };
    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "SMTP TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(%peer, "SMTP TLS handshake timed out");
            None
        }
    }
}

fn log_end<S>(result: std::io::Result<Outcome<S>>, peer: IpAddr) {
    match result {
        Ok(Outcome::Closed) => tracing::debug!(%peer, "SMTP session closed"),
        Ok(Outcome::StartTls(..)) => {
            // A session already under TLS never asks for STARTTLS again.
            tracing::warn!(%peer, "SMTP session asked for STARTTLS twice");
        }
        Err(e) => tracing::debug!(%peer, error = %e, "SMTP session ended with an I/O error"),
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as StdError;

    use std::sync::Arc;

    use base64::Engine as _;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::net::TcpStream;

    use super::*;
    use crate::store::testing::audited;
    use crate::testing::TestApp;

    async fn reply_line(stream: &mut BufReader<TcpStream>) -> Result<String, Box<dyn StdError>> {
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_line(&mut line)).await??;
        Ok(line)
    }

    /// A listener on `127.0.0.1:0` serving `state` until `stop` is sent: its address, the
    /// stop switch and the serving task.
    async fn serve(
        state: AppState,
        tls: Option<TlsAcceptor>,
    ) -> Result<
        (
            SocketAddr,
            tokio::sync::oneshot::Sender<()>,
            tokio::task::JoinHandle<anyhow::Result<()>>,
        ),
        Box<dyn StdError>,
    > {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = SmtpServer::new(state, tls);
        let serving = tokio::spawn(async move {
            server
                .serve(listener, false, async {
                    stopped.await.ok();
                })
                .await
        });
        Ok((addr, stop, serving))
    }

    /// Proof: a second session from the same IP over `smtp_max_sessions_per_ip` gets `421
    /// 4.7.0` (audited); at shutdown an idle session gets `421 4.3.2` and `serve` returns.
    #[tokio::test]
    async fn per_ip_cap_and_graceful_shutdown() -> Result<(), Box<dyn StdError>> {
        let app = TestApp::builder()
            .set("smtp_max_sessions_per_ip", 1)
            .build()
            .await?;
        let state = app.state().clone();
        let (addr, stop, serving) = serve(state.clone(), None).await?;

        let mut first = BufReader::new(TcpStream::connect(addr).await?);
        assert!(reply_line(&mut first).await?.starts_with("220 "));
        let mut second = BufReader::new(TcpStream::connect(addr).await?);
        let refused = reply_line(&mut second).await?;
        assert!(refused.starts_with("421 4.7.0"), "{refused}");

        stop.send(()).ok();
        let bye = reply_line(&mut first).await?;
        assert!(bye.starts_with("421 4.3.2"), "{bye}");
        tokio::time::timeout(Duration::from_secs(10), serving).await???;

        let refused = audited(&state.store, "smtp_refused").await?;
        let n = refused
            .iter()
            .filter(|r| r.ip.as_deref() == Some("127.0.0.1"))
            .count();
        assert_eq!(n, 1);
        Ok(())
    }

    /// Proof: with `smtp_connections_per_minute` = 2, the third connection of a minute from
    /// one address is refused with `421 4.7.0` at once, while another address still connects.
    #[tokio::test]
    async fn connections_per_minute_are_limited_per_address() -> Result<(), Box<dyn StdError>> {
        let app = TestApp::builder()
            .set("smtp_connections_per_minute", 2)
            .build()
            .await?;
        let state = app.state().clone();
        let (addr, stop, serving) = serve(state.clone(), None).await?;
        for _ in 0..2 {
            let mut ok = BufReader::new(TcpStream::connect(addr).await?);
            assert!(reply_line(&mut ok).await?.starts_with("220 "));
        }
        let mut third = BufReader::new(TcpStream::connect(addr).await?);
        let refused = reply_line(&mut third).await?;
        assert!(
            refused.starts_with("421 4.7.0") && refused.contains("per minute"),
            "{refused}"
        );
        let other = tokio::net::TcpSocket::new_v4()?;
        other.bind("127.0.0.2:0".parse()?)?;
        let mut other = BufReader::new(other.connect(addr).await?);
        assert!(reply_line(&mut other).await?.starts_with("220 "));
        stop.send(()).ok();
        tokio::time::timeout(Duration::from_secs(10), serving).await???;
        Ok(())
    }

    /// An SMTP client over any stream: one reply (multi-line ones whole) per command.
    struct Smtp<S>(BufReader<S>);

    impl<S: AsyncRead + AsyncWrite + Unpin> Smtp<S> {
        async fn reply(&mut self) -> Result<String, Box<dyn StdError>> {
            let mut reply = String::new();
            loop {
                let mut line = String::new();
                let n = tokio::time::timeout(Duration::from_secs(10), self.0.read_line(&mut line))
                    .await??;
                if n == 0 {
                    return Err(format!("closed after {reply:?}").into());
                }
                reply.push_str(&line);
                if line.as_bytes().get(3) != Some(&b'-') {
                    return Ok(reply);
                }
            }
        }

        async fn cmd(&mut self, line: &str, code: &str) -> Result<String, Box<dyn StdError>> {
            self.0
                .get_mut()
                .write_all(format!("{line}\r\n").as_bytes())
                .await?;
            let reply = self.reply().await?;
            assert!(reply.starts_with(code), "{line:?} answered {reply}");
            Ok(reply)
        }
    }

    async fn connect_from(from: &str, addr: SocketAddr) -> Result<TcpStream, Box<dyn StdError>> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(format!("{from}:0").parse()?)?;
        Ok(socket.connect(addr).await?)
    }

    /// Proof: with `smtp_max_unauthenticated_per_ip` 2, a third unauthenticated session from
    /// 127.0.0.2 gets `421 4.7.0` naming unauthenticated connections (audited), while
    /// 127.0.0.3 still connects; a relay that authenticates over STARTTLS delivers, and its
    /// place is given back at once, so 127.0.0.2 can connect again.
    #[tokio::test]
    async fn unauthenticated_sessions_are_capped_per_ip() -> Result<(), Box<dyn StdError>> {
        let certs = tempfile::tempdir()?;
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
        let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
        std::fs::write(&cert, generated.cert.pem())?;
        std::fs::write(&key, generated.signing_key.serialize_pem())?;
        let app = TestApp::builder()
            .set("smtp_max_unauthenticated_per_ip", 2)
            .set("smtp_tls_cert", &cert)
            .set("smtp_tls_key", &key)
            .build()
            .await?;
        app.add_relay("relay-1", "correct horse battery staple")
            .await?;
        let state = app.state().clone();
        let (acceptor, _) = crate::tls::smtp_acceptor(&state.config)?;
        let (addr, stop, serving) = serve(state.clone(), Some(acceptor)).await?;

        let mut first = Smtp(BufReader::new(connect_from("127.0.0.2", addr).await?));
        assert!(first.reply().await?.starts_with("220 "));
        let mut second = Smtp(BufReader::new(connect_from("127.0.0.2", addr).await?));
        assert!(second.reply().await?.starts_with("220 "));
        let mut third = Smtp(BufReader::new(connect_from("127.0.0.2", addr).await?));
        let refused = third.reply().await?;
        assert!(
            refused.starts_with("421 4.7.0 Too many unauthenticated connections"),
            "{refused}"
        );
        let mut other = Smtp(BufReader::new(connect_from("127.0.0.3", addr).await?));
        assert!(other.reply().await?.starts_with("220 "));

        // The first one authenticates over STARTTLS and delivers.
        first.cmd("EHLO relay.example.org", "250").await?;
        first.cmd("STARTTLS", "220").await?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(generated.cert.der().clone())?;
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect("localhost".try_into()?, first.0.into_inner())
            .await?;
        let mut relay = Smtp(BufReader::new(tls));
        relay.cmd("EHLO relay.example.org", "250").await?;
        let plain = base64::engine::general_purpose::STANDARD
            .encode("\0relay-1\0correct horse battery staple");
        relay.cmd(&format!("AUTH PLAIN {plain}"), "235").await?;
        // Its place among the unauthenticated is free again.
        let mut again = Smtp(BufReader::new(connect_from("127.0.0.2", addr).await?));
        assert!(again.reply().await?.starts_with("220 "));
        relay.cmd("MAIL FROM:<ann@clinic.example>", "250").await?;
        relay.cmd("RCPT TO:<bob@example.net>", "250").await?;
        relay.cmd("DATA", "354").await?;
        let queued = relay
            .cmd("Subject: hi\r\n\r\nHello Bob\r\n.", "250")
            .await?;
        assert!(queued.contains("queued"), "{queued}");
        relay.cmd("QUIT", "221").await?;

        stop.send(()).ok();
        tokio::time::timeout(Duration::from_secs(10), serving).await???;
        let refused = audited(&state.store, "smtp_refused").await?;
        assert!(
            refused
                .iter()
                .any(|r| r.ip.as_deref() == Some("127.0.0.2")
                    && r.detail.contains("unauthenticated")),
            "{refused:?}"
        );
        Ok(())
    }
}
