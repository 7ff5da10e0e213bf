//! Accepted connections, prepared and bounded the same way on every listener (gRPC,
//! forward-auth, metrics).
//!
//! Each accepted socket gets `TCP_NODELAY`: an answer is one small write, and with Nagle's
//! algorithm it would wait for the client's delayed ACK (about 40 ms on Linux). tonic ignores its
//! own `tcp_nodelay` setting when it is handed a listener, so the option is set here.
//!
//! Each listener holds at most `limits.max_connections` open connections: one more is closed as
//! soon as it is accepted (and counted in `tokengate_shed_total{reason="connections"}`). A
//! connection that sends nothing for `limits.idle_timeout` is closed, and an HTTP request's
//! headers must arrive within `limits.header_read_timeout`, so half-sent connections do not
//! pile up.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_stream::Stream;

use crate::config::limits::LimitSettings;
use crate::ops::metrics::shed;

/// How long a listener waits after a failed accept before it tries again.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Sets the options every accepted connection gets. A failure is logged, never fatal: the
/// connection still works, only slower.
pub(crate) fn prepare(stream: &TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY on an accepted connection");
    }
}

/// The open connections of one listener, against its bound.
#[derive(Clone, Debug)]
pub(crate) struct ConnectionCount {
    open: Arc<AtomicUsize>,
    max: usize,
    idle_timeout: Duration,
    gauge: Gauge,
}

impl ConnectionCount {
    /// The count of listener `name` (a metric label), under `limits`.
    pub(crate) fn new(name: &'static str, limits: &LimitSettings) -> Self {
        Self {
            open: Arc::default(),
            max: limits.max_connections,
            idle_timeout: limits.idle_timeout,
            gauge: metrics::gauge!("tokengate_connections_open", "listener" => name),
        }
    }

    /// The accepted `stream`, prepared and counted; `None` (the stream is closed) when the
    /// listener is full.
    pub(crate) fn admit(&self, stream: TcpStream) -> Option<Guarded> {
        let open = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        if open > self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            shed("connections");
            return None;
        }
        self.gauge.increment(1.0);
        prepare(&stream);
        Some(Guarded {
            stream,
            _slot: Slot(self.clone()),
            idle: Box::pin(tokio::time::sleep(self.idle_timeout)),
            idle_timeout: self.idle_timeout,
            last_active: Instant::now(),
        })
    }
}

/// Gives the connection's place back when it closes.
#[derive(Debug)]
struct Slot(ConnectionCount);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.gauge.decrement(1.0);
    }
}

/// An accepted connection: counted while open, closed when idle for too long.
///
/// Traffic only notes the time; the idle timer is re-armed when it fires and finds traffic
/// since, so a busy connection costs a clock read per read or write, not a timer update.
#[derive(Debug)]
pub struct Guarded {
    stream: TcpStream,
    _slot: Slot,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    last_active: Instant,
}

impl Guarded {
    /// The socket.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Traffic: the connection is not idle.
    fn active(&mut self) {
        self.last_active = Instant::now();
    }

    /// Whether the connection has been idle for `idle_timeout` (registers the wake-up if not).
    fn idle_expired(&mut self, context: &mut Context<'_>) -> bool {
        loop {
            if self.idle.as_mut().poll(context).is_pending() {
                return false;
            }
            let deadline = self.last_active + self.idle_timeout;
            if deadline <= Instant::now() {
                return true;
            }
            // Traffic since the timer was armed: arm it for the new deadline, and poll again
            // to register the wake-up.
            self.idle.as_mut().reset(deadline);
        }
    }
}

fn idle_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the connection was idle for too long",
    )
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_read(context, buf) {
            Poll::Ready(result) => {
                this.active();
                Poll::Ready(result)
            }
            Poll::Pending if this.idle_expired(context) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write(context, buf);
        if written.is_ready() {
            this.active();
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(context)
    }
}

impl tonic::transport::server::Connected for Guarded {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

/// The accepted connections of a gRPC listener with the default limits (for tonic's
/// `serve_with_incoming`).
pub fn incoming(listener: TcpListener) -> impl Stream<Item = io::Result<Guarded>> {
    incoming_within(listener, LimitSettings::default())
}

/// The accepted connections of a gRPC listener, prepared and bounded by `limits`.
/// A failed accept (out of file descriptors, say) is logged and retried after a pause rather
/// than in a busy loop.
pub(crate) fn incoming_within(
    listener: TcpListener,
    limits: LimitSettings,
) -> impl Stream<Item = io::Result<Guarded>> {
    let count = ConnectionCount::new("grpc", &limits);
    futures_util::stream::unfold((listener, count), |(listener, count)| async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    if let Some(connection) = count.admit(stream) {
                        return Some((Ok(connection), (listener, count)));
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, listener = "grpc", "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            }
        }
    })
}

/// Serves `app` over HTTP/1.1 on `listener` (named `name` in metrics) until the process ends:
/// connections bounded and prepared as above, request headers within
/// `limits.header_read_timeout`.
pub(crate) async fn serve_http(
    listener: TcpListener,
    name: &'static str,
    limits: &LimitSettings,
    app: Router,
) {
    let count = ConnectionCount::new(name, limits);
    let header_read_timeout = limits.header_read_timeout;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, say: wait a little rather than spin.
                tracing::warn!(%error, listener = name, "cannot accept a connection");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let Some(connection) = count.admit(stream) else {
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let served = builder.serve_connection(TokioIo::new(connection), service);
            if let Err(error) = served.await {
                tracing::debug!(%error, "an HTTP connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;
    use tokio_stream::StreamExt as _;

    async fn bound() -> (TcpListener, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        (listener, address)
    }

    fn limits(max_connections: usize, idle_timeout: Duration) -> LimitSettings {
        LimitSettings {
            max_connections,
            idle_timeout,
            ..LimitSettings::default()
        }
    }

    #[tokio::test]
    async fn grpc_connections_are_accepted_with_nodelay() {
        let (listener, address) = bound().await;
        let mut accepted = Box::pin(incoming(listener));
        let _client = TcpStream::connect(address).await.expect("connect");
        let stream = accepted
            .next()
            .await
            .expect("a connection")
            .expect("accepted");
        assert!(stream.stream().nodelay().expect("read TCP_NODELAY"));
    }

    #[tokio::test]
    async fn a_plain_tokio_accept_has_no_nodelay() {
        // The baseline the test above differs from: without `prepare`, Nagle is on.
        let (listener, address) = bound().await;
        let _client = TcpStream::connect(address).await.expect("connect");
        let (stream, _) = listener.accept().await.expect("accepted");
        assert!(!stream.nodelay().expect("read TCP_NODELAY"));
    }

    #[tokio::test]
    async fn a_full_listener_closes_the_next_connection_and_frees_a_place_on_close() {
        let (listener, address) = bound().await;
        let count = ConnectionCount::new("test", &limits(2, Duration::from_secs(60)));
        let mut admitted = Vec::new();
        for _ in 0..3 {
            let _client = TcpStream::connect(address).await.expect("connect");
            let (stream, _) = listener.accept().await.expect("accepted");
            admitted.push(count.admit(stream));
        }
        assert!(admitted[0].is_some() && admitted[1].is_some());
        assert!(
            admitted[2].is_none(),
            "a third connection over a bound of 2"
        );
        admitted.remove(0);
        let _client = TcpStream::connect(address).await.expect("connect");
        let (stream, _) = listener.accept().await.expect("accepted");
        assert!(
            count.admit(stream).is_some(),
            "a closed connection frees its place"
        );
    }

    #[tokio::test]
    async fn traffic_keeps_a_connection_open_past_the_idle_timeout() {
        use tokio::io::AsyncWriteExt as _;
        let (listener, address) = bound().await;
        let count = ConnectionCount::new("test", &limits(8, Duration::from_millis(300)));
        let mut client = TcpStream::connect(address).await.expect("connect");
        let (stream, _) = listener.accept().await.expect("accepted");
        let mut connection = count.admit(stream).expect("admitted");
        let writer = tokio::spawn(async move {
            for _ in 0..10 {
                client.write_all(b"x").await.expect("write");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            client
        });
        let mut buf = [0; 16];
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(900) {
            let read = connection.read(&mut buf).await;
            assert!(
                read.is_ok_and(|n| n > 0),
                "closed while the peer was sending"
            );
        }
        let _client = writer.await.expect("writer");
        // What was sent is read; then, with the peer silent but connected, the idle timeout.
        loop {
            match connection.read(&mut buf).await {
                Ok(0) => panic!("an end of stream instead of the idle timeout"),
                Ok(_) => {}
                Err(error) => {
                    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
                    break;
                }
            }
        }
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_closed_after_the_idle_timeout() {
        let (listener, address) = bound().await;
        let count = ConnectionCount::new("test", &limits(8, Duration::from_millis(200)));
        let _client = TcpStream::connect(address).await.expect("connect");
        let (stream, _) = listener.accept().await.expect("accepted");
        let mut connection = count.admit(stream).expect("admitted");
        let started = Instant::now();
        let mut buf = [0; 16];
        let read = connection.read(&mut buf).await;
        let error = read.expect_err("an idle connection ends with an error");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(200),
            "closed after {waited:?}"
        );
    }
}
