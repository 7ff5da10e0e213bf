//! `envoy.service.auth.v3.Authorization/Check` on the real binary, called by a gRPC client the
//! way Envoy calls it: decisions are OK RPCs carrying an allow (headers) or a deny (401/403 with
//! an RFC 6750 challenge).

use crate::support;

use std::collections::HashMap;

use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use serde_json::json;
use support::{Idp, InProcess, TestKey, Tokengate, check_request, claims, jwks, now};
use tonic::transport::Channel;

const AUDIENCE: &str = "api://orders";

async fn check(client: &mut AuthorizationClient<Channel>, request: CheckRequest) -> CheckResponse {
    client
        .check(request)
        .await
        .expect("a decision is always an OK RPC")
        .into_inner()
}

fn code(response: &CheckResponse) -> i32 {
    response.status.as_ref().map_or(-1, |status| status.code)
}

/// The denied response's HTTP status, headers and body.
fn denied(response: &CheckResponse) -> (i32, HashMap<String, String>, String) {
    let Some(HttpResponse::DeniedResponse(denied)) = &response.http_response else {
        panic!("not a denial: {response:?}");
    };
    let headers = denied
        .headers
        .iter()
        .filter_map(|option| option.header.as_ref())
        .map(|header| (header.key.clone(), header.value.clone()))
        .collect();
    (
        denied.status.as_ref().map_or(0, |status| status.code),
        headers,
        denied.body.clone(),
    )
}

#[tokio::test]
async fn check_allows_valid_tokens_and_denies_the_rest_with_rfc6750_challenges() {
    let key = TestKey::rsa_a();
    let idp = Idp::start(jwks(&[&key]), None).await;
    let config = format!(
        r#"
refresh:
  startup_grace: 1s   # the offline tenant never gets keys
ext_authz:
  token_query_parameter: access_token
  token_cookie: session
  claims_to_headers: {{ sub: x-jwt-sub, scp: x-jwt-scopes, missing: x-jwt-missing }}
  payload_header: x-jwt-payload
tenants:
  - id: orders
    discovery_url: "{}"
    audiences: ["{AUDIENCE}"]
  - id: billing
    issuers: ["https://billing.example"]
    jwks_uri: "{}"
  - id: offline
    issuers: ["https://offline.example"]
    jwks_uri: "http://127.0.0.1:9/jwks"
"#,
        idp.discovery_url(),
        idp.jwks_url()
    );
    let server = InProcess::start(&config).await;
    server.wait_serving().await;
    let channel = Channel::from_shared(server.endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut client = AuthorizationClient::new(channel);
    let good = key.sign(&claims(&idp.issuer(), AUDIENCE, now()));

    // No token: 401, a bare challenge, UNAUTHENTICATED.
    let response = check(&mut client, check_request(&[], "/orders", &[])).await;
    assert_eq!(code(&response), 16);
    let (status, headers, _) = denied(&response);
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], "Bearer");

    // A bad token: 401 invalid_token; the body has the reason, never the token.
    let response = check(
        &mut client,
        check_request(&[("authorization", "Bearer not.a.token")], "/", &[]),
    )
    .await;
    let (status, headers, body) = denied(&response);
    assert_eq!(status, 401);
    assert!(
        headers["www-authenticate"]
            .starts_with("Bearer error=\"invalid_token\", error_description=\""),
        "{headers:?}"
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("json")["error"],
        "malformed"
    );
    assert!(!body.contains("not.a.token"));

    // Expired.
    let expired = key.sign(&json!({"iss": idp.issuer(), "aud": AUDIENCE, "exp": now() - 3600}));
    let response = check(
        &mut client,
        check_request(&[("authorization", &format!("Bearer {expired}"))], "/", &[]),
    )
    .await;
    let (status, _, body) = denied(&response);
    assert_eq!(status, 401);
    assert!(body.contains("\"expired\""), "{body}");

    // Valid: OK, claim headers overwrite whatever the client sent, metadata for later filters.
    let response = check(
        &mut client,
        check_request(
            &[
                ("authorization", &format!("Bearer {good}")),
                ("x-jwt-sub", "spoofed"),
            ],
            "/",
            &[],
        ),
    )
    .await;
    assert_eq!(code(&response), 0, "{response:?}");
    let Some(HttpResponse::OkResponse(ok)) = &response.http_response else {
        panic!("not an allow: {response:?}");
    };
    let set: HashMap<&str, (&str, i32)> = ok
        .headers
        .iter()
        .filter_map(|option| {
            option.header.as_ref().map(|header| {
                (
                    header.key.as_str(),
                    (header.value.as_str(), option.append_action),
                )
            })
        })
        .collect();
    assert_eq!(set["x-jwt-sub"].0, "user-1");
    assert_eq!(set["x-jwt-sub"].1, 2, "OVERWRITE_IF_EXISTS_OR_ADD");
    assert_eq!(set["x-jwt-scopes"].0, "read write");
    assert_eq!(set["x-tokengate-tenant"].0, "orders");
    assert!(set.contains_key("x-jwt-payload"));
    assert!(
        ok.headers_to_remove.contains(&"x-jwt-missing".to_owned()),
        "a spoofed header for an absent claim is removed"
    );
    let metadata = response.dynamic_metadata.as_ref().expect("metadata");
    assert!(metadata.fields.contains_key("claims"));

    // The token from the query string or a cookie.
    for request in [
        check_request(&[], &format!("/orders?x=1&access_token={good}"), &[]),
        check_request(
            &[("cookie", &format!("theme=dark; session={good}"))],
            "/",
            &[],
        ),
    ] {
        assert_eq!(code(&check(&mut client, request).await), 0);
    }

    // The route binds a tenant: the same token, judged by billing, is refused.
    let bound = check_request(
        &[("authorization", &format!("Bearer {good}"))],
        "/",
        &[("tenant", "billing")],
    );
    let response = check(&mut client, bound).await;
    assert_eq!(denied(&response).0, 401);
    assert!(
        denied(&response).2.contains("invalid_issuer"),
        "{}",
        denied(&response).2
    );

    // A route that needs a scope the token lacks: 403 insufficient_scope, PERMISSION_DENIED.
    let needs_admin = check_request(
        &[("authorization", &format!("Bearer {good}"))],
        "/",
        &[("required_scopes", "admin, orders.admin")],
    );
    let response = check(&mut client, needs_admin).await;
    assert_eq!(code(&response), 7);
    let (status, headers, _) = denied(&response);
    assert_eq!(status, 403);
    assert!(
        headers["www-authenticate"].starts_with("Bearer error=\"insufficient_scope\""),
        "{headers:?}"
    );
    // A claim that would smuggle a header in is never copied into one.
    let mut injected = claims(&idp.issuer(), AUDIENCE, now());
    injected["sub"] = json!("user\r\nx-admin: true");
    let token = key.sign(&injected);
    let response = check(
        &mut client,
        check_request(&[("authorization", &format!("Bearer {token}"))], "/", &[]),
    )
    .await;
    let Some(HttpResponse::OkResponse(ok)) = &response.http_response else {
        panic!("not an allow: {response:?}");
    };
    assert!(ok.headers_to_remove.contains(&"x-jwt-sub".to_owned()));
    assert!(ok.headers.iter().all(|option| {
        option
            .header
            .as_ref()
            .is_none_or(|header| !header.value.contains('\n'))
    }));

    // A tenant without keys cannot decide: a gRPC error, so Envoy's failure policy applies.
    let offline = check_request(
        &[("authorization", &format!("Bearer {good}"))],
        "/",
        &[("tenant", "offline")],
    );
    let status = client.check(offline).await.expect_err("UNAVAILABLE");
    assert_eq!(status.code(), tonic::Code::Unavailable);

    let has_scope = check_request(
        &[("authorization", &format!("Bearer {good}"))],
        "/",
        &[("required_scopes", "write"), ("audiences", AUDIENCE)],
    );
    assert_eq!(code(&check(&mut client, has_scope).await), 0);
}

#[tokio::test]
async fn forward_auth_answers_nginx_and_traefik_sub_requests() {
    let key = TestKey::es256();
    let idp = Idp::start(jwks(&[&key]), None).await;
    let config = format!(
        "ext_authz:\n  forward_auth_listen: \"127.0.0.1:0\"\n  token_query_parameter: access_token\n  claims_to_headers: {{ sub: x-jwt-sub }}\ntenants:\n  - id: orders\n    discovery_url: \"{}\"\n    audiences: [\"{AUDIENCE}\"]\n",
        idp.discovery_url()
    );
    let server = Tokengate::start(&config);
    let address = server.logged_address("forward-auth listening");
    server.wait_serving().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let good = key.sign(&claims(&idp.issuer(), AUDIENCE, now()));

    let response = http
        .get(format!("http://{address}/auth"))
        .send()
        .await
        .expect("auth");
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");

    let response = http
        .get(format!("http://{address}/auth"))
        .header("authorization", format!("Bearer {good}"))
        .header("x-jwt-sub", "spoofed")
        .send()
        .await
        .expect("auth");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-jwt-sub"], "user-1");
    assert_eq!(response.headers()["x-tokengate-tenant"], "orders");

    let response = http
        .get(format!("http://{address}/auth?required_scopes=admin"))
        .header("authorization", format!("Bearer {good}"))
        .send()
        .await
        .expect("auth");
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\""),
        "{challenge}"
    );

    // Traefik passes the original URI; the token may be in its query string.
    let response = http
        .get(format!("http://{address}/auth"))
        .header("x-forwarded-uri", format!("/orders?access_token={good}"))
        .send()
        .await
        .expect("auth");
    assert_eq!(response.status(), 200);

    let expired = key.sign(&json!({"iss": idp.issuer(), "aud": AUDIENCE, "exp": now() - 3600}));
    let response = http
        .get(format!("http://{address}/auth"))
        .header("authorization", format!("Bearer {expired}"))
        .send()
        .await
        .expect("auth");
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let body = response.text().await.expect("body");
    assert!(
        body.contains("\"expired\"") && !body.contains(&expired),
        "{body}"
    );
}
