//! Idle connections: a connection on which no bytes moved in either direction and no request
//! was being handled for the idle timeout is closed. This covers a keep-alive connection
//! waiting for a next request that never comes, a client that opened a connection and sent
//! nothing, and one that stopped reading its response. hyper's header-read timeout covers the
//! other slow client: one that trickles a request head a byte at a time.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// When a connection last moved bytes, and how many of its requests are being handled.
#[derive(Debug, Clone)]
pub(super) struct Activity(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    opened: Instant,
    /// Milliseconds after `opened` of the last activity.
    last_ms: AtomicU64,
    /// Milliseconds after `opened` when the connection last began to wait for a request: its
    /// start, or the end of its last request.
    waiting_ms: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self(Arc::new(Inner {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
            waiting_ms: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
        }))
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.0.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.0.last_ms.store(self.elapsed_ms(), Ordering::Relaxed);
    }

    /// When the connection began to wait for its next request (since its start, or since
    /// its last request was done), or `None` while a request is being handled.
    pub(super) fn waiting_since(&self) -> Option<Instant> {
        if self.0.busy.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let ms = self.0.waiting_ms.load(Ordering::Relaxed);
        Some(self.0.opened + Duration::from_millis(ms))
    }

    /// A request is being handled until the returned guard is dropped; meanwhile the
    /// connection is not idle, however long the handler takes.
    pub(super) fn busy(&self) -> Busy {
        self.0.busy.fetch_add(1, Ordering::Relaxed);
        self.touch();
        Busy(self.clone())
    }

    /// Resolves once the connection has been idle for `timeout`.
    pub(super) async fn idle_for(&self, timeout: Duration) {
        loop {
            let last = self.0.last_ms.load(Ordering::Relaxed);
            tokio::time::sleep_until(self.0.opened + Duration::from_millis(last) + timeout).await;
            if self.0.last_ms.load(Ordering::Relaxed) != last {
                continue;
            }
            if self.0.busy.load(Ordering::Relaxed) == 0 {
                return;
            }
            // A handler is still running: look again one timeout from now.
            self.touch();
        }
    }
}

/// See [`Activity::busy`].
#[derive(Debug)]
pub(super) struct Busy(Activity);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.0.busy.fetch_sub(1, Ordering::Relaxed) == 1 {
            let now = self.0.elapsed_ms();
            self.0.0.waiting_ms.store(now, Ordering::Relaxed);
        }
        // The idle time starts when the last request is done.
        self.0.touch();
    }
}

/// A stream that records in its [`Activity`] every read or write that moved bytes.
#[derive(Debug)]
pub(super) struct Tracked<S> {
    inner: S,
    activity: Activity,
}

impl<S> Tracked<S> {
    pub(super) fn new(inner: S, activity: Activity) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
