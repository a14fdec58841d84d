//! Accepting SMTP connections: caps on concurrent sessions overall and per client IP (`421
//! 4.7.0` beyond them), the STARTTLS / implicit-TLS handshake, and graceful shutdown (idle
//! sessions get `421 4.3.2`, a session in the middle of DATA finishes its transaction first).
//!
//! Listeners take an already-bound `TcpListener` and a shutdown future, so tests bind
//! `127.0.0.1:0` and never sleep waiting for readiness.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::reply;
use super::session::{Outcome, Session, State};
use super::{Limits, SmtpContext, policy};
use crate::app::AppState;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight transactions get to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// One SMTP server: its sessions share the caps and the shutdown signal, whether they came in
/// on the STARTTLS listener or the implicit-TLS one.
#[derive(Debug)]
pub struct SmtpServer {
    ctx: SmtpContext,
    shutdown: watch::Sender<bool>,
    sessions: Arc<Semaphore>,
    max_sessions: u32,
    per_ip: Arc<Mutex<HashMap<IpAddr, u32>>>,
    max_per_ip: u32,
}

impl SmtpServer {
    /// A server with the limits of `app.config`. `tls`: `None` disables STARTTLS.
    pub fn new(app: AppState, tls: Option<TlsAcceptor>) -> Self {
        let limits = Limits::from_config(&app.config);
        Self::with_limits(app, tls, limits)
    }

    pub fn with_limits(app: AppState, tls: Option<TlsAcceptor>, limits: Limits) -> Self {
        let max_sessions = app.config.smtp_max_sessions;
        let max_per_ip = app.config.smtp_max_sessions_per_ip;
        let (shutdown, rx) = watch::channel(false);
        Self {
            ctx: SmtpContext::with_shutdown(app, tls, limits, rx),
            shutdown,
            sessions: Arc::new(Semaphore::new(max_sessions as usize)),
            max_sessions,
            per_ip: Arc::new(Mutex::new(HashMap::new())),
            max_per_ip,
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
        let drained =
            tokio::time::timeout(DRAIN_TIMEOUT, self.sessions.acquire_many(self.max_sessions))
                .await;
        match drained {
            Ok(Ok(_all)) => tracing::info!(%addr, "SMTP stopped"),
            _ => tracing::warn!(%addr, "SMTP sessions still open after the drain timeout"),
        }
        Ok(())
    }

    fn spawn_session(&self, mut tcp: tokio::net::TcpStream, peer: SocketAddr, implicit_tls: bool) {
        let ip = peer.ip().to_canonical();
        let app = self.ctx.app.clone();
        let (permit, ip_slot) = match self.admit(ip) {
            Ok(admitted) => admitted,
            Err(reason) => {
                tokio::spawn(async move {
                    // Audited before the reply, so a client that saw the 421 can find the event.
                    tracing::info!(%peer, reason, "SMTP connection refused");
                    policy::refuse_connection(&app, ip, reason).await;
                    if !implicit_tls {
                        let bye = reply::TOO_MANY_SESSIONS.to_wire();
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
            let _permit = permit;
            let _ip_slot = ip_slot;
            handle(tcp, ctx, ip, implicit_tls).await;
        });
    }

    fn admit(&self, ip: IpAddr) -> Result<(OwnedSemaphorePermit, IpSlot), &'static str> {
        let permit = Arc::clone(&self.sessions)
            .try_acquire_owned()
            .map_err(|_| "too many SMTP sessions")?;
        let mut per_ip = self.per_ip.lock().map_err(|_| "too many SMTP sessions")?;
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return Err("too many SMTP sessions from this address");
        }
        *count += 1;
        Ok((
            permit,
            IpSlot {
                ip,
                map: Arc::clone(&self.per_ip),
            },
        ))
    }
}

/// A session's place in the per-IP count, given back on drop.
struct IpSlot {
    ip: IpAddr,
    map: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.lock()
            && let Some(count) = map.get_mut(&self.ip)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
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
/// or, with `implicit_tls`, the handshake first.
pub async fn handle<S>(stream: S, ctx: SmtpContext, peer: IpAddr, implicit_tls: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Some(acceptor) = ctx.tls.clone() else {
        if !implicit_tls {
            run_plain(stream, ctx, peer).await;
        }
        return;
    };
    if implicit_tls {
        if let Some(tls) = handshake(&acceptor, stream, peer).await {
            let session = Session::new(tls, ctx, State::new(peer, true));
            log_end(session.run(true).await, peer);
        }
        return;
    }
    let session = Session::new(stream, ctx.clone(), State::new(peer, false));
    match session.run(true).await {
        Ok(Outcome::StartTls(stream, state)) => {
            if let Some(tls) = handshake(&acceptor, stream, peer).await {
                let session = Session::new(tls, ctx, state.after_tls());
                log_end(session.run(false).await, peer);
            }
        }
        other => log_end(other, peer),
    }
}

async fn run_plain<S>(stream: S, ctx: SmtpContext, peer: IpAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let session = Session::new(stream, ctx, State::new(peer, false));
    log_end(session.run(true).await, peer);
}

async fn handshake<S>(
    acceptor: &TlsAcceptor,
    stream: S,
    peer: IpAddr,
) -> Option<tokio_rustls::server::TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
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

    /// Proof: a second session from the same IP over `smtp_max_sessions_per_ip` gets `421
    /// 4.7.0` (audited); at shutdown an idle session gets `421 4.3.2` and `serve` returns.
    #[tokio::test]
    async fn per_ip_cap_and_graceful_shutdown() -> Result<(), Box<dyn StdError>> {
        let app = TestApp::builder()
            .set("smtp_max_sessions_per_ip", 1)
            .build()
            .await?;
        let state = app.state().clone();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = SmtpServer::new(state.clone(), None);
        let serving = tokio::spawn(async move {
            server
                .serve(listener, false, async {
                    stopped.await.ok();
                })
                .await
        });

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
}
