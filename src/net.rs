//! Accepted connections, prepared the same way on every listener (gRPC, forward-auth, metrics).
//!
//! Each accepted socket gets `TCP_NODELAY`: an answer is one small write, and with Nagle's
//! algorithm it would wait for the client's delayed ACK (about 40 ms on Linux). tonic ignores its
//! own `tcp_nodelay` setting when it is handed a listener, so the option is set here.

use std::io;

use axum::serve::{Listener, ListenerExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::Stream;
use tokio_stream::wrappers::TcpListenerStream;

/// Sets the options every accepted connection gets. A failure is logged, never fatal: the
/// connection still works, only slower.
pub(crate) fn prepare(stream: &TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY on an accepted connection");
    }
}

/// The accepted connections of a gRPC listener, each prepared (for tonic's
/// `serve_with_incoming_shutdown`).
pub fn incoming(listener: TcpListener) -> impl Stream<Item = io::Result<TcpStream>> {
    use tokio_stream::StreamExt as _;
    TcpListenerStream::new(listener).map(|accepted| accepted.inspect(prepare))
}

/// An HTTP listener whose accepted connections are prepared (for `axum::serve`).
pub(crate) fn http_listener(
    listener: TcpListener,
) -> impl Listener<Io = TcpStream, Addr = std::net::SocketAddr> {
    listener.tap_io(|stream: &mut TcpStream| prepare(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt as _;

    async fn bound() -> (TcpListener, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        (listener, address)
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
        assert!(stream.nodelay().expect("read TCP_NODELAY"));
    }

    #[tokio::test]
    async fn http_connections_are_accepted_with_nodelay() {
        let (listener, address) = bound().await;
        let mut listener = http_listener(listener);
        let _client = TcpStream::connect(address).await.expect("connect");
        let (stream, _) = listener.accept().await;
        assert!(stream.nodelay().expect("read TCP_NODELAY"));
    }

    #[tokio::test]
    async fn a_plain_tokio_accept_has_no_nodelay() {
        // The baseline the two tests above differ from: without `prepare`, Nagle is on.
        let (listener, address) = bound().await;
        let _client = TcpStream::connect(address).await.expect("connect");
        let (stream, _) = listener.accept().await.expect("accepted");
        assert!(!stream.nodelay().expect("read TCP_NODELAY"));
    }
}
