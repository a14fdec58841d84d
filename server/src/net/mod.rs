//! Accepting TCP connections, the same way for every listener: the one accept loop with back-off
//! ([`accept`]), the connection caps overall and per client ([`caps`]; a client is an IP
//! address, or an IPv6 /64: [`ClientKey`]), and the HTTP listener, plain or over TLS
//! ([`http`]). The SMTP listener (`crate::smtp::listener`) uses the first two.
//!
//! What this module must never do: spin on a failing `accept`, or spend more on a refused
//! connection than closing it (SMTP adds its one-line `421`).

pub mod caps;
mod client;
pub mod http;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

pub use caps::{Admitted, ConnCaps, IpCounts, IpSlot, RefusalLog, Refused};
pub use client::ClientKey;

/// How long to wait after a failed `accept` before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The next connection on `listener`. A failed accept (out of file descriptors and the like) is
/// logged and retried after a short back-off instead of spinning. Cancel-safe: a `select!`
/// that drops this future loses no connection.
pub async fn accept(listener: &TcpListener, name: &'static str) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(conn) => return conn,
            Err(e) => {
                tracing::warn!(listener = name, error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}
