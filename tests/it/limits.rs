//! The `limits:` block on the real binary: requests over `max_in_flight` are shed at once
//! (gRPC `RESOURCE_EXHAUSTED`, forward-auth 503 with `Retry-After`) while health checks still
//! answer; connections over `max_connections` are closed; half-sent and idle connections are
//! closed by `header_read_timeout` and `idle_timeout`; a request without `grpc-timeout` ends
//! within `request_timeout` with an answer, not a cancellation.

use crate::support;

use std::time::Duration;

use support::{Idp, TestKey, Tokengate, claims, judge, jwks, now};
use tokengate::pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const ISSUER_AUDIENCE: &str = "api://orders";

/// A server whose one tenant's provider answers JWKS requests after `delay`, with `limits`.
async fn slow_server(limits: &str, delay: Duration) -> (Tokengate, Idp, TestKey) {
    let key = TestKey::rsa_a();
    let idp = Idp::start(jwks(&[&key]), None).await;
    let config = format!(
        "metrics_listen: \"127.0.0.1:0\"\nlimits: {{ {limits} }}\next_authz:\n  forward_auth_listen: \"127.0.0.1:0\"\ntenants:\n  - id: slow\n    issuers: [\"{}\"]\n    audiences: [\"{ISSUER_AUDIENCE}\"]\n    jwks_uri: \"{}\"\n    refresh: {{ unknown_kid_wait: 5s, unknown_kid_cooldown: 1s }}\n",
        idp.issuer(),
        idp.jwks_url()
    );
    let server = Tokengate::start(&config);
    server.wait_serving().await;
    *idp.state.delay.lock().expect("lock") = delay;
    (server, idp, key)
}

/// A token whose `kid` the tenant does not know: judging it waits for a (slow) refetch.
fn unknown_kid(idp: &Idp) -> String {
    let stranger = TestKey::rsa_b();
    stranger.sign(&claims(&idp.issuer(), ISSUER_AUDIENCE, now()))
}

#[tokio::test]
async fn requests_over_max_in_flight_are_shed_at_once_and_health_still_answers() {
    let (server, idp, key) = slow_server("max_in_flight: 2", Duration::from_secs(2)).await;
    let forward = server.logged_address("forward-auth listening");
    // Two requests wait for the slow refetch and hold both places.
    let mut waiting = Vec::new();
    for _ in 0..2 {
        let mut client = server.client().await;
        let token = unknown_kid(&idp);
        waiting.push(tokio::spawn(
            async move { judge(&mut client, &token, "").await },
        ));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut client = server.client().await;
    let good = key.sign(&claims(&idp.issuer(), ISSUER_AUDIENCE, now()));
    let started = Instant::now();
    let shed = client
        .validate_token(support::request(&good, ""))
        .await
        .expect_err("a third request is shed");
    assert_eq!(shed.code(), tonic::Code::ResourceExhausted, "{shed:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "shed at once, not queued"
    );
    // Health checks are never shed.
    server.wait_serving().await;
    // forward-auth shares the bound: 503 with Retry-After.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new()
        .get(format!("http://{forward}/auth"))
        .header("authorization", format!("Bearer {good}"))
        .send()
        .await
        .expect("auth");
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");

    // When the slow ones are done, the server serves normally again.
    for request in waiting {
        let answer = request.await.expect("an answer");
        assert!(!answer.valid);
    }
    assert!(judge(&mut client, &good, "").await.valid);
    let metrics = server.scrape().await;
    assert!(
        metrics.contains("tokengate_shed_total{reason=\"in_flight\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tokengate_requests_in_flight 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_request_without_a_deadline_is_answered_within_request_timeout() {
    let (server, idp, _) = slow_server("request_timeout: 1s", Duration::from_secs(3)).await;
    let mut client = server.client().await;
    let started = Instant::now();
    let answer = judge(&mut client, &unknown_kid(&idp), "").await;
    assert_eq!(answer.reason, pb::Reason::UnknownKey as i32, "{answer:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

/// Whether the server closes `stream` within `limit` (reads end, or fail).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0; 512];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn connections_over_the_bound_half_sent_and_idle_ones_are_closed() {
    let limits =
        "max_connections: 2, idle_timeout: 2s, header_read_timeout: 1s, request_timeout: 1s";
    let (server, _idp, _) = slow_server(limits, Duration::ZERO).await;
    let forward = server.logged_address("forward-auth listening");

    // Two connections fit; the third is closed at once.
    let mut first = TcpStream::connect(&forward).await.expect("connect");
    let mut second = TcpStream::connect(&forward).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(&forward).await.expect("connect");
    assert!(
        closed_within(&mut third, Duration::from_millis(500)).await,
        "over max_connections"
    );

    // A half-sent request is closed by the header-read time-out, an idle one by idle_timeout.
    first
        .write_all(b"GET /auth HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("write");
    assert!(
        closed_within(&mut first, Duration::from_secs(3)).await,
        "half-sent request"
    );
    assert!(
        closed_within(&mut second, Duration::from_secs(4)).await,
        "idle connection"
    );
    // So is an idle gRPC connection that never sends its preface.
    let mut grpc = TcpStream::connect(server.address).await.expect("connect");
    assert!(
        closed_within(&mut grpc, Duration::from_secs(4)).await,
        "idle gRPC connection"
    );
    // The places are free again: the server still answers.
    let mut client = server.client().await;
    let answer = client
        .validate_token(support::request("not.a.token", ""))
        .await
        .expect("rpc");
    assert_eq!(answer.into_inner().reason, pb::Reason::Malformed as i32);
}

#[test]
fn limits_are_checked_with_their_line() {
    let dir = tempfile::tempdir().expect("dir");
    support::assert_config_refused(
        dir.path(),
        "limits:\n  max_in_flight: 0\n  request_timeout: 0s\n  idle_timeout: soon\n  header_read_timeout: 2h\ntenants:\n  - id: a\n    issuers: [x]\n    audiences: [x]\n    jwks_uri: \"https://x\"\n",
        &[
            ":2: limits.max_in_flight: must be between 1 and",
            ":3: limits.request_timeout: must be longer than 0s",
            ":4: limits.idle_timeout:",
            ":5: limits.header_read_timeout: must be longer than 0s and at most 1h",
        ],
    );
}

#[tokio::test]
async fn an_open_stream_holds_its_place_until_it_closes() {
    let (server, idp, key) = slow_server("max_in_flight: 1", Duration::ZERO).await;
    let good = key.sign(&claims(&idp.issuer(), ISSUER_AUDIENCE, now()));
    let mut streaming = server.client().await;
    let ((sender, mut answers), first) = support::open_stream(&mut streaming, &good).await;
    assert!(first.valid);
    // While the stream is open, it holds the one place.
    let mut client = server.client().await;
    let shed = client
        .validate_token(support::request(&good, ""))
        .await
        .expect_err("shed while the stream is open");
    assert_eq!(shed.code(), tonic::Code::ResourceExhausted);
    drop(sender);
    assert!(answers.message().await.expect("end").is_none());
    let mut served = false;
    for _ in 0..50 {
        if client
            .validate_token(support::request(&good, ""))
            .await
            .is_ok()
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        served,
        "the place was not given back when the stream closed"
    );
}
