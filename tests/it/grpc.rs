//! The real binary on loopback, keys from a real HTTP identity provider (discovery + JWKS), called
//! by a real gRPC client.

use crate::support;

use std::sync::atomic::Ordering;

use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use serde_json::json;
use support::{Idp, InProcess, TestKey, Tokengate, claims, jwks, now, request};
use tokengate::pb;

const AUDIENCE: &str = "api://orders";

fn discovery_config(idp: &Idp) -> String {
    format!(
        r#"
max_batch_size: 3
tenants:
  - id: orders
    discovery_url: "{}"
    audiences: ["{AUDIENCE}"]
"#,
        idp.discovery_url()
    )
}

#[tokio::test]
async fn validates_with_keys_and_issuer_from_discovery() {
    let key = TestKey::rsa_a();
    let idp = Idp::start(jwks(&[&key, &TestKey::es256()]), None).await;
    let server = InProcess::start(&discovery_config(&idp)).await;
    server.wait_serving().await;
    let mut client = server.client().await;

    let token = key.sign(&claims(&idp.issuer(), AUDIENCE, now()));
    let mut valid = request(&token, "");
    valid.correlation_id = "req-42".into();
    let response = client
        .validate_token(valid)
        .await
        .expect("rpc")
        .into_inner();
    assert!(response.valid, "{response:?}");
    assert_eq!(response.reason, pb::Reason::Unspecified as i32);
    assert_eq!(response.tenant, "orders");
    assert_eq!(response.subject, "user-1");
    assert_eq!(response.issuer, idp.issuer());
    assert_eq!(response.key_id, "rsa-a");
    assert_eq!(response.algorithm, "RS256");
    assert_eq!(response.correlation_id, "req-42");
    let claims_json: serde_json::Value =
        serde_json::from_slice(&response.claims_json).expect("claims");
    assert_eq!(claims_json["aud"], AUDIENCE);

    // A rejected token is an OK response with a reason and a detail.
    let expired = key.sign(&json!({"iss": idp.issuer(), "aud": AUDIENCE, "exp": now() - 3600}));
    let response = client
        .validate_token(request(&expired, "orders"))
        .await
        .expect("rpc")
        .into_inner();
    assert!(!response.valid);
    assert_eq!(response.reason, pb::Reason::Expired as i32);
    assert_eq!(response.reason_code, "expired");
    assert!(response.detail.contains("expired"), "{}", response.detail);
    assert!(response.claims_json.is_empty());

    // A wrong issuer for that tenant.
    let foreign = key.sign(&claims("https://evil.example", AUDIENCE, now()));
    let response = client
        .validate_token(request(&foreign, "orders"))
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(
        response.reason,
        pb::Reason::InvalidIssuer as i32,
        "{response:?}"
    );
    // Keys were fetched once at start-up, not per request.
    assert_eq!(idp.state.jwks_requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn batch_keeps_order_and_refuses_oversized_batches() {
    let key = TestKey::es256();
    let idp = Idp::start(jwks(&[&key]), None).await;
    let server = InProcess::start(&discovery_config(&idp)).await;
    server.wait_serving().await;
    let mut client = server.client().await;
    let good = key.sign(&claims(&idp.issuer(), AUDIENCE, now()));
    let requests = vec![
        request(&good, ""),
        request("garbage", ""),
        request(&good, "no-such-tenant"),
    ];
    let responses = client
        .validate_batch(pb::ValidateBatchRequest { requests })
        .await
        .expect("rpc")
        .into_inner()
        .responses;
    let reasons: Vec<i32> = responses.iter().map(|response| response.reason).collect();
    assert_eq!(
        reasons,
        [
            pb::Reason::Unspecified as i32,
            pb::Reason::Malformed as i32,
            pb::Reason::UnknownTenant as i32
        ]
    );
    let too_many = vec![request(&good, ""); 4];
    let status = client
        .validate_batch(pb::ValidateBatchRequest { requests: too_many })
        .await
        .expect_err("over max_batch_size");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("max_batch_size"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn stream_answers_each_request_in_order() {
    let key = TestKey::ed25519();
    let idp = Idp::start(jwks(&[&key]), None).await;
    let server = InProcess::start(&discovery_config(&idp)).await;
    server.wait_serving().await;
    let mut client = server.client().await;
    let good = key.sign(&claims(&idp.issuer(), AUDIENCE, now()));
    let bad_audience = key.sign(&claims(&idp.issuer(), "api://billing", now()));
    let outbound: Vec<pb::ValidateTokenRequest> = (0..50)
        .map(|index| {
            let mut item = request(if index % 2 == 0 { &good } else { &bad_audience }, "");
            item.correlation_id = index.to_string();
            item
        })
        .collect();
    let mut inbound = client
        .validate_stream(tokio_stream::iter(outbound))
        .await
        .expect("rpc")
        .into_inner();
    let mut index = 0;
    while let Some(response) = inbound.message().await.expect("message") {
        assert_eq!(response.correlation_id, index.to_string());
        assert_eq!(response.valid, index % 2 == 0, "{response:?}");
        if index % 2 == 1 {
            assert_eq!(response.reason, pb::Reason::InvalidAudience as i32);
        }
        index += 1;
    }
    assert_eq!(index, 50);
}

#[tokio::test]
async fn a_tenant_whose_provider_is_down_answers_keys_unavailable_and_others_keep_serving() {
    let key = TestKey::rsa_a();
    let healthy = Idp::start(jwks(&[&key]), None).await;
    let broken = Idp::start(jwks(&[&key]), None).await;
    broken.state.down.store(true, Ordering::SeqCst);
    let config = format!(
        r#"
tenants:
  - id: healthy
    discovery_url: "{}"
  - id: broken
    issuers: ["{}"]
    jwks_uri: "{}"
"#,
        healthy.discovery_url(),
        broken.issuer(),
        broken.jwks_url()
    );
    let server = InProcess::start(&config).await;
    let mut client = server.client().await;
    // Health stays NOT_SERVING while a tenant has no keys; the port still answers.
    let token = key.sign(&claims(&broken.issuer(), AUDIENCE, now()));
    for _ in 0..100 {
        if server
            .last_error("broken")
            .await
            .contains("HTTP status 503")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let response = client
        .validate_token(request(&token, ""))
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(
        response.reason,
        pb::Reason::KeysUnavailable as i32,
        "{response:?}"
    );
    assert_eq!(response.tenant, "broken");
    // The token's answer says since when, not why: the cause is for the operator.
    assert!(
        response.detail.contains("unavailable since") && !response.detail.contains("503"),
        "{}",
        response.detail
    );
    let view = server.debug_tenant("broken").await;
    assert!(
        view["last_error"]["error"]
            .as_str()
            .is_some_and(|error| error.contains("HTTP status 503")),
        "{view}"
    );
    assert_eq!(view["has_keys"], false, "{view}");

    let good = key.sign(&claims(&healthy.issuer(), AUDIENCE, now()));
    let mut answer = client
        .validate_token(request(&good, ""))
        .await
        .expect("rpc")
        .into_inner();
    for _ in 0..100 {
        if answer.valid {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        answer = client
            .validate_token(request(&good, ""))
            .await
            .expect("rpc")
            .into_inner();
    }
    assert!(answer.valid, "{answer:?}");

    // The provider comes back: the retry loads the keys and the server becomes SERVING.
    broken.state.down.store(false, Ordering::SeqCst);
    server.wait_serving().await;
    let response = client
        .validate_token(request(&token, ""))
        .await
        .expect("rpc")
        .into_inner();
    assert!(response.valid, "{response:?}");
}

#[tokio::test]
async fn reflection_lists_the_services_and_sigterm_stops_cleanly() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let key = TestKey::rsa_a();
    let idp = Idp::start(jwks(&[&key]), None).await;
    let server = Tokengate::start(&discovery_config(&idp));
    server.wait_serving().await;
    let channel = tonic::transport::Channel::from_shared(server.endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut reflection = ServerReflectionClient::new(channel);
    let ask = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter(vec![ask]))
        .await
        .expect("reflection")
        .into_inner();
    let reply = replies.message().await.expect("reply").expect("one reply");
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("unexpected reflection reply");
    };
    let names: Vec<String> = list
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    assert!(
        names.contains(&"tokengate.v1.TokenValidator".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
    drop(replies);
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn metrics_and_probes_report_validations_by_tenant_and_reason() {
    let key = TestKey::rsa_a();
    let idp = Idp::start(jwks(&[&key]), None).await;
    let config = format!(
        "metrics_listen: \"127.0.0.1:0\"\n{}",
        discovery_config(&idp)
    );
    let server = Tokengate::start(&config);
    let metrics_address = server.logged_address("metrics and probes listening");
    server.wait_serving().await;
    let mut client = server.client().await;
    let good = key.sign(&claims(&idp.issuer(), AUDIENCE, now()));
    let expired = key.sign(&json!({"iss": idp.issuer(), "aud": AUDIENCE, "exp": now() - 3600}));
    for token in [&good, &good, &expired] {
        client
            .validate_token(request(token, ""))
            .await
            .expect("rpc");
    }
    client
        .validate_token(request("x.y", ""))
        .await
        .expect("rpc");
    let too_many = pb::ValidateBatchRequest {
        requests: vec![request(&good, ""); 4],
    };
    assert!(client.validate_batch(too_many).await.is_err());

    // Envoy's ext_authz Check on the same port, and a path that no service serves.
    let mut authz = AuthorizationClient::connect(server.endpoint())
        .await
        .expect("connect");
    let check = authz.check(CheckRequest::default()).await.expect("check");
    assert_eq!(
        check.into_inner().status.map(|status| status.code),
        Some(16)
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let grpc_client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let unserved = grpc_client
        .post(format!("{}/nope.v1.Nothing/Call", server.endpoint()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(vec![0u8; 5])
        .send()
        .await
        .expect("unserved call");
    assert_eq!(unserved.headers()["grpc-status"], "12", "Unimplemented");

    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("http://{metrics_address}{path}")).send();
    assert_eq!(get("/healthz").await.expect("healthz").status(), 200);
    assert_eq!(get("/readyz").await.expect("readyz").status(), 200);
    let body = get("/metrics")
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let value = |labels: &str| support::series_value(&body, "tokengate_validations_total", labels);
    assert_eq!(value(r#"tenant="orders",result="valid""#), 2.0);
    assert_eq!(
        value(r#"tenant="orders",result="invalid",reason="expired""#),
        1.0
    );
    assert_eq!(
        value(r#"tenant="(none)",result="invalid",reason="malformed""#),
        1.0
    );
    assert!(
        body.contains("tokengate_validation_duration_seconds_bucket"),
        "{body}"
    );
    assert!(
        body.contains(r#"tokengate_tenant_keys{tenant="orders"} 1"#),
        "{body}"
    );
    // Standard gRPC server metrics, by method and code.
    let grpc = |labels: &str| support::series_value(&body, "grpc_server_handled_total", labels);
    assert_eq!(grpc(r#"grpc_method="ValidateToken",grpc_code="OK""#), 4.0);
    assert_eq!(
        grpc(r#"grpc_method="ValidateBatch",grpc_code="InvalidArgument""#),
        1.0
    );
    assert!(
        grpc(r#"grpc_service="grpc.health.v1.Health",grpc_method="Check",grpc_code="OK""#) >= 1.0
    );
    // Every service on the port is counted: Envoy's Check too, with its type from the service.
    assert_eq!(
        grpc(
            r#"grpc_type="unary",grpc_service="envoy.service.auth.v3.Authorization",grpc_method="Check",grpc_code="OK""#
        ),
        1.0
    );
    assert_eq!(
        grpc(
            r#"grpc_type="unknown",grpc_service="unknown",grpc_method="unknown",grpc_code="Unimplemented""#
        ),
        1.0
    );
    assert!(body.contains("grpc_server_handling_seconds"), "{body}");
}
