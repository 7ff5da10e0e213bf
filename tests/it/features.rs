//! Features that had no test of their own, each through the real server: keys from a JWKS file
//! (relative path, unreadable file, reload on change), route audiences on the deny path (ext_authz
//! and forward-auth), `required_claims` with `match: all` and array claims, `require_expiration:
//! false` and a non-default `clock_skew`, array claims as headers, and the drain of in-flight
//! requests on SIGTERM, and open streams ended on SIGTERM.

use crate::support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use serde_json::{Value, json};
use support::{Idp, InProcess, TestKey, Tokengate, claims, judge, jwks, now};
use tokengate::pb;

const ISSUER: &str = "https://features.example";
const AUDIENCE: &str = "api://orders";

/// Polls `done` every 50 ms for up to `limit`.
async fn within(limit: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn keys_from_a_jwks_file_load_relative_to_the_config_and_reload_on_change() {
    let (old, new) = (TestKey::rsa_a(), TestKey::es256());
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir(dir.path().join("keys")).expect("mkdir");
    let file = dir.path().join("keys/tenant.json");
    std::fs::write(&file, jwks(&[&old]).to_string()).expect("write keys");
    let config = format!(
        "tenants:\n  - id: files\n    issuers: [\"{ISSUER}\"]\n    audiences: [\"{AUDIENCE}\"]\n    jwks_file: keys/tenant.json\n"
    );
    let server = Tokengate::start_in(dir, &config);
    server.wait_serving().await;
    let mut client = server.client().await;
    let signed_by = |key: &TestKey| key.sign(&claims(ISSUER, AUDIENCE, now()));
    assert!(judge(&mut client, &signed_by(&old), "").await.valid);
    assert!(!judge(&mut client, &signed_by(&new), "").await.valid);

    // A new key file (as a mounted Secret changes): the server reloads it by itself.
    std::fs::write(&file, jwks(&[&new]).to_string()).expect("rewrite keys");
    let mut client_for_poll = client.clone();
    let reloaded = within(Duration::from_secs(10), async || {
        judge(&mut client_for_poll, &signed_by(&new), "")
            .await
            .valid
    })
    .await;
    assert!(reloaded, "the new key file was not picked up");
    assert!(!judge(&mut client, &signed_by(&old), "").await.valid);

    // An unreadable file is a configuration error with its file, line and path.
    std::fs::write(
        server.config_path(),
        config.replace("tenant.json", "missing.json"),
    )
    .expect("rewrite config");
    let output = std::process::Command::new(support::binary())
        .arg("check-config")
        .arg(server.config_path())
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(":5: tenants[0].jwks_file: cannot read") && stderr.contains("missing.json"),
        "{stderr}"
    );
    // The running server keeps its keys through the bad reload.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(judge(&mut client, &signed_by(&new), "").await.valid);
}

fn check_request(token: &str, extensions: &[(&str, &str)]) -> CheckRequest {
    let bearer = format!("Bearer {token}");
    support::check_request(&[("authorization", &bearer)], "/", extensions)
}

#[tokio::test]
async fn route_audiences_and_array_claims_through_ext_authz_and_forward_auth() {
    let key = TestKey::rsa_a();
    let config = format!(
        "ext_authz:\n  forward_auth_listen: \"127.0.0.1:0\"\n  claims_to_headers: {{ roles: x-jwt-roles, sub: x-jwt-sub }}\ntenants:\n  - id: orders\n    issuers: [\"{ISSUER}\"]\n    audiences: [\"{AUDIENCE}\", \"api://billing\"]\n    jwks: {}\n",
        jwks(&[&key])
    );
    let server = Tokengate::start(&config);
    let forward = server.logged_address("forward-auth listening");
    let mut body = claims(ISSUER, AUDIENCE, now());
    body["roles"] = json!(["reader", "writer"]);
    let token = key.sign(&body);

    let mut authz = AuthorizationClient::connect(server.endpoint())
        .await
        .expect("connect");
    let answer = |response: envoy_types::pb::envoy::service::auth::v3::CheckResponse| {
        let code = response.status.as_ref().map_or(-1, |status| status.code);
        let headers: Vec<(String, String)> = match response.http_response {
            Some(HttpResponse::OkResponse(ok)) => ok.headers,
            Some(HttpResponse::DeniedResponse(denied)) => denied.headers,
            _ => Vec::new(),
        }
        .into_iter()
        .filter_map(|option| option.header)
        .map(|header| (header.key, header.value))
        .collect();
        (code, headers)
    };
    let billing_route = [("audiences", "api://billing")];
    let (code, headers) = answer(
        authz
            .check(check_request(&token, &billing_route))
            .await
            .expect("rpc")
            .into_inner(),
    );
    assert_eq!(
        code, 7,
        "a valid token for another audience: PERMISSION_DENIED"
    );
    let challenge = headers
        .iter()
        .find(|(name, _)| name == "www-authenticate")
        .map(|(_, value)| value.as_str())
        .unwrap_or_default();
    assert!(challenge.contains("insufficient_scope"), "{headers:?}");
    let (code, headers) = answer(
        authz
            .check(check_request(
                &token,
                &[("audiences", "api://billing, api://orders")],
            ))
            .await
            .expect("rpc")
            .into_inner(),
    );
    assert_eq!(code, 0);
    // An array claim goes upstream as compact JSON.
    assert!(
        headers.contains(&(
            "x-jwt-roles".to_owned(),
            r#"["reader","writer"]"#.to_owned()
        )),
        "{headers:?}"
    );

    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let get = |query: &str| {
        http.get(format!("http://{forward}/auth{query}"))
            .header("authorization", format!("Bearer {token}"))
            .send()
    };
    let response = get("?audiences=api://billing").await.expect("auth");
    assert_eq!(response.status(), 403);
    let response = get(&format!("?audiences={AUDIENCE}")).await.expect("auth");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-jwt-roles"], r#"["reader","writer"]"#);
}

#[tokio::test]
async fn match_all_array_claims_optional_expiry_and_a_wide_clock_skew() {
    let key = TestKey::rsa_a();
    let config = format!(
        "tenants:\n  - id: strict\n    issuers: [\"{ISSUER}\"]\n    audiences: [\"{AUDIENCE}\"]\n    required_claims:\n      - {{ claim: roles, values: [reader, writer], match: all }}\n    jwks: {keys}\n  - id: lenient\n    issuers: [\"https://lenient.example\"]\n    audiences: [\"{AUDIENCE}\"]\n    require_expiration: false\n    clock_skew: 5m\n    jwks: {keys}\n",
        keys = jwks(&[&key])
    );
    let server = InProcess::start(&config).await;
    let mut client = server.client().await;
    let with_roles = |roles: Value| {
        let mut body = claims(ISSUER, AUDIENCE, now());
        body["roles"] = roles;
        key.sign(&body)
    };
    assert!(
        judge(
            &mut client,
            &with_roles(json!(["writer", "x", "reader"])),
            ""
        )
        .await
        .valid
    );
    for roles in [json!(["reader"]), json!("reader writer"), json!([])] {
        let answer = judge(&mut client, &with_roles(roles.clone()), "").await;
        assert_eq!(
            answer.reason,
            pb::Reason::ClaimMismatch as i32,
            "{roles}: {answer:?}"
        );
    }
    let answer = judge(&mut client, &key.sign(&claims(ISSUER, AUDIENCE, now())), "").await;
    assert_eq!(answer.reason, pb::Reason::MissingClaim as i32);

    // No exp at all is fine for the lenient tenant, not for the strict one.
    let lenient = "https://lenient.example";
    let mut without_exp = claims(lenient, AUDIENCE, now());
    without_exp.as_object_mut().expect("object").remove("exp");
    assert!(judge(&mut client, &key.sign(&without_exp), "").await.valid);
    let mut body = claims(ISSUER, AUDIENCE, now());
    body["roles"] = json!(["reader", "writer"]);
    body.as_object_mut().expect("object").remove("exp");
    let answer = judge(&mut client, &key.sign(&body), "").await;
    assert_eq!(answer.reason, pb::Reason::MissingClaim as i32, "{answer:?}");

    // A 5 minute skew: expired 4 minutes ago passes, 6 minutes ago does not.
    let expired_ago = |seconds: i64| {
        let mut body = claims(lenient, AUDIENCE, now() - 3600 - seconds);
        body["exp"] = json!(now() - seconds);
        key.sign(&body)
    };
    assert!(judge(&mut client, &expired_ago(240), "").await.valid);
    let answer = judge(&mut client, &expired_ago(360), "").await;
    assert_eq!(answer.reason, pb::Reason::Expired as i32, "{answer:?}");
}

#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish() {
    let (old, rotated) = (TestKey::rsa_a(), TestKey::rsa_b());
    let idp = Idp::start(jwks(&[&old]), None).await;
    let config = format!(
        "tenants:\n  - id: slow\n    issuers: [\"{ISSUER}\"]\n    audiences: [\"{AUDIENCE}\"]\n    jwks_uri: \"{}\"\n    refresh: {{ unknown_kid_wait: 5s }}\n",
        idp.jwks_url()
    );
    let server = Tokengate::start(&config);
    server.wait_serving().await;
    // The provider rotates and turns slow: a token of the new key waits for its refetch.
    idp.set_jwks(jwks(&[&old, &rotated]));
    *idp.state.delay.lock().expect("lock") = Duration::from_millis(1500);
    let mut client = server.client().await;
    let token = rotated.sign(&claims(ISSUER, AUDIENCE, now()));
    let fetched = idp.jwks_requests();
    let in_flight = tokio::spawn(async move { judge(&mut client, &token, "").await });
    let refetching = within(Duration::from_secs(5), async || {
        idp.state.jwks_requests.load(Ordering::SeqCst) > fetched
    })
    .await;
    assert!(refetching, "the unknown kid did not trigger a refetch");
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal("TERM");
    let answer = in_flight
        .await
        .expect("the request in flight gets its answer");
    assert!(answer.valid, "{answer:?}");
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}

/// On SIGTERM an open stream answers every token it read (here one still waiting for its
/// key's refetch), then ends with UNAVAILABLE so the caller resends the rest elsewhere, and the
/// server stops without waiting out its drain.
#[tokio::test]
async fn sigterm_ends_open_streams_after_answering_what_they_sent() {
    let (old, rotated) = (TestKey::rsa_a(), TestKey::rsa_b());
    let idp = Idp::start(jwks(&[&old]), None).await;
    let config = format!(
        "tenants:\n  - id: t\n    issuers: [\"{ISSUER}\"]\n    audiences: [\"{AUDIENCE}\"]\n    jwks_uri: \"{}\"\n    refresh: {{ unknown_kid_wait: 5s }}\n",
        idp.jwks_url()
    );
    let server = Tokengate::start(&config);
    server.wait_serving().await;
    let mut client = server.client().await;
    let (sender, receiver) = tokio::sync::mpsc::channel(8);
    let mut answers = client
        .validate_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .expect("stream opens")
        .into_inner();
    let request = |token: &str, n: usize| pb::ValidateTokenRequest {
        token: token.to_owned(),
        correlation_id: n.to_string(),
        ..Default::default()
    };
    let token = old.sign(&claims(ISSUER, AUDIENCE, now()));
    sender.send(request(&token, 0)).await.expect("send");
    let first = answers.message().await.expect("answer").expect("one");
    assert!(first.valid, "{first:?}");
    // The provider rotates and turns slow: a token of the new key waits for its refetch.
    idp.set_jwks(jwks(&[&old, &rotated]));
    *idp.state.delay.lock().expect("lock") = Duration::from_millis(1500);
    let fetched = idp.jwks_requests();
    let waiting = rotated.sign(&claims(ISSUER, AUDIENCE, now()));
    sender.send(request(&waiting, 1)).await.expect("send");
    let refetching = within(Duration::from_secs(5), async || {
        idp.state.jwks_requests.load(Ordering::SeqCst) > fetched
    })
    .await;
    assert!(refetching, "the unknown kid did not trigger a refetch");
    let stopping = tokio::time::Instant::now();
    server.signal("TERM");
    // The token read before SIGTERM is answered, then the stream ends with UNAVAILABLE while
    // the client's side is still open.
    let second = tokio::time::timeout(Duration::from_secs(4), answers.message())
        .await
        .expect("answered well before the 5 s drain limit")
        .expect("an answer, not an error")
        .expect("one");
    assert!(second.valid && second.correlation_id == "1", "{second:?}");
    let end = tokio::time::timeout(Duration::from_secs(4), answers.message())
        .await
        .expect("the stream ends well before the drain limit");
    let status = end.expect_err("the stream ends with a status, not silently");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("shutting down"), "{status:?}");
    let exit = server.terminate();
    assert!(exit.success(), "{exit:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
    drop(sender);
}
