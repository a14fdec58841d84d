//! The HTTP listener over real sockets on `127.0.0.1:0`, plain and over TLS, through
//! [`App::serve_http`] with the real router and small timeouts and caps from the settings.
//! Other clients connect from other loopback addresses (`127.0.0.2`, `127.0.0.3`, …).
//!
//! "Closed by the server" is seen as end of input (or a reset) while waiting to read; [`GUARD`]
//! only stops a test that would otherwise hang, it is not a measured threshold.

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::app::App;
use crate::testing::{TestApp, TestAppBuilder};

type TestResult<T = ()> = Result<T, Box<dyn Error>>;

/// How long a test waits for the server to act before it fails instead of hanging.
const GUARD: Duration = Duration::from_secs(20);
/// A timeout that never fires during a test.
const NEVER: u32 = 3600;

/// A running listener.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
    /// With TLS: a client configuration that trusts the server's certificate.
    tls: Option<TlsConnector>,
    _app: Arc<App>,
    /// The data directory and the certificate files (read once the listener runs).
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Server {
    /// The listener with `settings` (and every timeout long unless set there).
    async fn start(settings: &[(&str, u32)], tls: bool) -> TestResult<Self> {
        let mut builder = long_timeouts(TestApp::builder());
        for (key, value) in settings {
            builder = builder.set(key, value);
        }
        Self::start_with(builder, tls).await
    }

    async fn start_with(builder: TestAppBuilder, tls: bool) -> TestResult<Self> {
        let certs = tempfile::tempdir()?;
        let mut builder = builder;
        let mut connector = None;
        if tls {
            let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
            let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
            std::fs::write(&cert, generated.cert.pem())?;
            std::fs::write(&key, generated.signing_key.serialize_pem())?;
            builder = builder.set("tls_cert", &cert).set("tls_key", &key);
            connector = Some(trusting(generated.cert.der().clone())?);
        }
        let (dir, config) = builder.config()?;
        let app = Arc::new(App::open(config).await?);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = Arc::clone(&app);
        let task = tokio::spawn(async move {
            serving
                .serve_http(listener, async {
                    stopped.await.ok();
                })
                .await
        });
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
            tls: connector,
            _app: app,
            _dirs: (dir, certs),
        })
    }

    /// A TCP connection from the loopback address `from`.
    async fn connect_from(&self, from: &str) -> TestResult<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(format!("{from}:0").parse()?)?;
        Ok(socket.connect(self.addr).await?)
    }

    /// A TLS connection from `from`, handshake done.
    async fn tls_from(&self, from: &str) -> TestResult<TlsStream<TcpStream>> {
        let connector = self.tls.clone().ok_or("not a TLS server")?;
        let tcp = self.connect_from(from).await?;
        Ok(connector.connect("localhost".try_into()?, tcp).await?)
    }

    /// Stop the listener and wait for it to drain.
    async fn stop(mut self) -> TestResult {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        tokio::time::timeout(GUARD, &mut self.task).await???;
        Ok(())
    }
}

fn trusting(cert: rustls_pki_types::CertificateDer<'static>) -> TestResult<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert)?;
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(client)))
}

/// Wait until the server closes `stream`; returns what it sent first. Fails after [`GUARD`].
async fn closed_by_server<S: AsyncRead + Unpin>(stream: &mut S) -> TestResult<Vec<u8>> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(GUARD, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    if read.is_err() {
        return Err("the server kept the connection open".into());
    }
    Ok(got)
}

/// Send `GET /healthz` and read one response (by its `Content-Length`); returns its status
/// line.
async fn healthz<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    close: bool,
) -> TestResult<String> {
    let connection = if close { "close" } else { "keep-alive" };
    let request =
        format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: {connection}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    rest_of_response(stream).await
}

/// Read one response whose request was already sent; returns its status line.
async fn rest_of_response<S: AsyncRead + Unpin>(stream: &mut S) -> TestResult<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(GUARD, async {
        loop {
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .ok_or("no Content-Length")?;
                if got.len() >= end + 4 + length {
                    return Ok::<_, Box<dyn Error>>(text.lines().next().unwrap_or("").to_owned());
                }
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(format!("closed before a whole response: {text:?}").into());
            }
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await?
}

/// A client that has sent the start of a request and is slow with the rest.
async fn slow(server: &Server, from: &str) -> TestResult<TcpStream> {
    let mut stream = server.connect_from(from).await?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\n").await?;
    Ok(stream)
}

/// Finish a [`slow`] client's request; returns the status line.
async fn finish(stream: &mut TcpStream) -> TestResult<String> {
    stream
        .write_all(b"Host: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    rest_of_response(stream).await
}

/// Proof: plain HTTP, a client that sends half a request line and then nothing is closed by
/// the server (`http_header_read_timeout_secs`), while the idle timeout is long; a normal
/// request is still answered.
#[tokio::test]
async fn plain_half_sent_request_line_is_closed() -> TestResult {
    let server = Server::start(&[("http_header_read_timeout_secs", 1)], false).await?;
    let mut half = server.connect_from("127.0.0.2").await?;
    half.write_all(b"GET /heal").await?;
    let sent = closed_by_server(&mut half).await?;
    assert!(
        !String::from_utf8_lossy(&sent).contains(" 200 "),
        "served half a request"
    );
    let mut normal = server.connect_from("127.0.0.3").await?;
    assert!(
        healthz(&mut normal, true)
            .await?
            .starts_with("HTTP/1.1 200")
    );
    server.stop().await
}

/// Proof: the same over TLS — the listener path is the same, the handshake one step more.
#[tokio::test]
async fn tls_half_sent_request_line_is_closed() -> TestResult {
    let server = Server::start(&[("http_header_read_timeout_secs", 1)], true).await?;
    let mut half = server.tls_from("127.0.0.2").await?;
    half.write_all(b"GET /heal").await?;
    half.flush().await?;
    let sent = closed_by_server(&mut half).await?;
    assert!(
        !String::from_utf8_lossy(&sent).contains(" 200 "),
        "served half a request"
    );
    let mut normal = server.tls_from("127.0.0.3").await?;
    assert!(
        healthz(&mut normal, true)
            .await?
            .starts_with("HTTP/1.1 200")
    );
    server.stop().await
}

/// Proof: a kept-alive connection that sends no next request is closed
/// (`http_idle_timeout_secs`), and so is one that never sends anything, while the header-read
/// timeout is long.
#[tokio::test]
async fn idle_keep_alive_connection_is_closed() -> TestResult {
    let server = Server::start(&[("http_idle_timeout_secs", 1)], false).await?;
    let mut kept = server.connect_from("127.0.0.2").await?;
    assert!(healthz(&mut kept, false).await?.starts_with("HTTP/1.1 200"));
    assert!(
        healthz(&mut kept, false).await?.starts_with("HTTP/1.1 200"),
        "kept alive"
    );
    assert!(closed_by_server(&mut kept).await?.is_empty());
    let mut silent = server.connect_from("127.0.0.2").await?;
    assert!(closed_by_server(&mut silent).await?.is_empty());
    server.stop().await
}

/// Proof: a request whose body stops arriving (a form post announcing 1,000 bytes that sends
/// 10) does not hold its handler and connection past `http_idle_timeout_secs`: the body read
/// fails, the request is refused without a `200`, and the connection is closed — while the
/// connection counted as busy all along, so only the body timeout ends it. (Before, it stayed
/// open.)
#[tokio::test]
async fn a_request_body_that_stops_arriving_is_cut_off() -> TestResult {
    let server = Server::start(&[("http_idle_timeout_secs", 1)], false).await?;
    let mut stalled = server.connect_from("127.0.0.2").await?;
    stalled
        .write_all(
            b"POST /p/AAAAAAAAAAAAAAAAAAAAAA/verify HTTP/1.1\r\nHost: localhost\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n\
              code=12345",
        )
        .await?;
    let answer = closed_by_server(&mut stalled).await?;
    assert!(
        !String::from_utf8_lossy(&answer).contains(" 200 "),
        "a stalled body was served: {}",
        String::from_utf8_lossy(&answer)
    );
    server.stop().await
}

/// Proof: over TLS, a client that connects and never starts the handshake is closed
/// (`http_tls_handshake_timeout_secs`); cleartext HTTP on the TLS port is never answered with
/// a page; HTTPS is served with TLS 1.3.
#[tokio::test]
async fn tls_handshake_timeout_and_https_served() -> TestResult {
    let server = Server::start(&[("http_tls_handshake_timeout_secs", 1)], true).await?;
    let mut silent = server.connect_from("127.0.0.2").await?;
    assert!(closed_by_server(&mut silent).await?.is_empty());

    let mut plain = server.connect_from("127.0.0.2").await?;
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await?;
    let answer = closed_by_server(&mut plain).await?;
    assert!(
        !String::from_utf8_lossy(&answer).contains("200"),
        "plain HTTP was served"
    );

    let mut tls = server.tls_from("127.0.0.3").await?;
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert!(healthz(&mut tls, true).await?.starts_with("HTTP/1.1 200"));
    server.stop().await
}

/// Proof: with `http_max_connections_per_ip` 3, a fourth connection from 127.0.0.2 is closed
/// at once without an answer while its three slow connections are held, a normal request from
/// 127.0.0.3 succeeds meanwhile, and the three held ones are served when they finish.
#[tokio::test]
async fn per_ip_cap_refuses_the_extra_connection_and_spares_others() -> TestResult {
    let server = Server::start(&[("http_max_connections_per_ip", 3)], false).await?;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(slow(&server, "127.0.0.2").await?);
    }
    let mut extra = server.connect_from("127.0.0.2").await?;
    assert!(
        closed_by_server(&mut extra).await?.is_empty(),
        "answered over the cap"
    );

    let mut other = server.connect_from("127.0.0.3").await?;
    assert!(healthz(&mut other, true).await?.starts_with("HTTP/1.1 200"));
    for stream in &mut held {
        assert!(finish(stream).await?.starts_with("HTTP/1.1 200"));
    }
    server.stop().await
}

/// Proof: with `http_max_connections` 3, three slow connections from three addresses fill
/// the listener; a fourth client, from a fourth address, is served all the same: the slow
/// connection that waited longest (the first) is closed to make room, and the other two are
/// served when they finish. (Before, the fourth was closed at once.)
#[tokio::test]
async fn a_full_listener_closes_the_stalest_connection_to_make_room() -> TestResult {
    let server = Server::start(&[("http_max_connections", 3)], false).await?;
    let mut held = Vec::new();
    for from in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        held.push(slow(&server, from).await?);
    }
    let mut extra = server.connect_from("127.0.0.5").await?;
    assert!(healthz(&mut extra, true).await?.starts_with("HTTP/1.1 200"));
    let mut held = held.into_iter();
    let mut stalest = held.next().ok_or("no connection")?;
    assert!(
        closed_by_server(&mut stalest).await?.is_empty(),
        "the stalest connection was answered"
    );
    for mut stream in held {
        assert!(finish(&mut stream).await?.starts_with("HTTP/1.1 200"));
    }
    server.stop().await
}

/// Proof: a peer in `trusted_proxies` is not held to the per-IP cap (its clients share its
/// address), but the total cap counts it: a fourth connection through it pushes out the
/// stalest of its three.
#[tokio::test]
async fn trusted_proxy_is_exempt_from_the_per_ip_cap_only() -> TestResult {
    let builder = long_timeouts(TestApp::builder())
        .set("trusted_proxies", ["127.0.0.2"])
        .set("http_max_connections_per_ip", 1)
        .set("http_max_connections", 3);
    let server = Server::start_with(builder, false).await?;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(slow(&server, "127.0.0.2").await?);
    }
    let mut extra = server.connect_from("127.0.0.2").await?;
    assert!(healthz(&mut extra, true).await?.starts_with("HTTP/1.1 200"));
    let mut held = held.into_iter();
    let mut stalest = held.next().ok_or("no connection")?;
    assert!(
        closed_by_server(&mut stalest).await?.is_empty(),
        "over the total cap"
    );
    for mut stream in held {
        assert!(finish(&mut stream).await?.starts_with("HTTP/1.1 200"));
    }
    server.stop().await
}

/// Every timeout long: a test sets short only the one it is about.
fn long_timeouts(mut builder: TestAppBuilder) -> TestAppBuilder {
    for key in [
        "http_header_read_timeout_secs",
        "http_idle_timeout_secs",
        "http_tls_handshake_timeout_secs",
    ] {
        builder = builder.set(key, NEVER);
    }
    builder
}
