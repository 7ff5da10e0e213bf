//! Gateway route settings on the real binary, through ext_authz (a gRPC client that calls
//! `Check` as Envoy does) and forward-auth: report-only mode (per tenant and per route),
//! optional tokens (`allow_missing`), and denial reasons for access logs.

use crate::support;

use std::collections::HashMap;

use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use envoy_types::pb::google::protobuf::value::Kind;
use support::{TestKey, Tokengate, claims, jwks, now};
use tonic::transport::Channel;

const AUDIENCE: &str = "api://orders";

/// Two tenants with static keys: `orders` enforces, `trial` is in report-only mode; claims go
/// upstream as `x-jwt-sub`; forward-auth names the reason of its denials.
fn config(orders: &TestKey, trial: &TestKey) -> String {
    format!(
        "metrics_listen: \"127.0.0.1:0\"\next_authz:\n  forward_auth_listen: \"127.0.0.1:0\"\n  forward_auth_reason_header: true\n  claims_to_headers: {{ sub: x-jwt-sub }}\ntenants:\n  - id: orders\n    issuers: [\"https://orders.example\"]\n    audiences: [\"{AUDIENCE}\"]\n    jwks: {}\n  - id: trial\n    mode: report\n    issuers: [\"https://trial.example\"]\n    audiences: [\"{AUDIENCE}\"]\n    jwks: {}\n",
        jwks(&[orders]),
        jwks(&[trial])
    )
}

/// A request to `/orders` with a spoofed claim header, and the token when there is one.
fn check_request(token: Option<&str>, extensions: &[(&str, &str)]) -> CheckRequest {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let mut headers = vec![("x-jwt-sub", "spoofed")];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer));
    }
    support::check_request(&headers, "/orders", extensions)
}

/// What a `Check` answered: the gRPC status code, headers set upstream (or on the denial),
/// headers removed, and the dynamic metadata's string fields.
#[derive(Debug)]
struct Answer {
    code: i32,
    set: HashMap<String, String>,
    removed: Vec<String>,
    metadata: HashMap<String, String>,
}

async fn check(client: &mut AuthorizationClient<Channel>, request: CheckRequest) -> Answer {
    let response: CheckResponse = client
        .check(request)
        .await
        .expect("a decision is always an OK RPC")
        .into_inner();
    let (set, removed) = match &response.http_response {
        Some(HttpResponse::OkResponse(ok)) => (
            ok.headers
                .iter()
                .filter_map(|option| option.header.as_ref())
                .map(|h| (h.key.clone(), h.value.clone()))
                .collect(),
            ok.headers_to_remove.clone(),
        ),
        Some(HttpResponse::DeniedResponse(denied)) => (
            denied
                .headers
                .iter()
                .filter_map(|option| option.header.as_ref())
                .map(|h| (h.key.clone(), h.value.clone()))
                .collect(),
            Vec::new(),
        ),
        _ => (HashMap::new(), Vec::new()),
    };
    let metadata = response
        .dynamic_metadata
        .iter()
        .flat_map(|metadata| metadata.fields.iter())
        .filter_map(|(key, value)| match &value.kind {
            Some(Kind::StringValue(text)) => Some((key.clone(), text.clone())),
            _ => None,
        })
        .collect();
    Answer {
        code: response.status.as_ref().map_or(-1, |status| status.code),
        set,
        removed,
        metadata,
    }
}

#[tokio::test]
async fn report_only_mode_lets_denials_through_marked_and_counted() {
    let (orders_key, trial_key) = (TestKey::rsa_a(), TestKey::es256());
    let server = Tokengate::start(&config(&orders_key, &trial_key));
    server.wait_serving().await;
    let mut client = AuthorizationClient::connect(server.endpoint())
        .await
        .expect("connect");
    let expired = |key: &TestKey, issuer: &str| key.sign(&claims(issuer, AUDIENCE, now() - 7200));

    // A tenant in report mode, on a route bound to it: an expired token passes, marked,
    // without claim headers, and no tenant vouches for it in the metadata.
    let bound = [("tenant", "trial")];
    let answer = check(
        &mut client,
        check_request(Some(&expired(&trial_key, "https://trial.example")), &bound),
    )
    .await;
    assert_eq!(answer.code, 0, "{answer:?}");
    assert_eq!(
        answer.set["x-tokengate-would-deny"], "expired",
        "{answer:?}"
    );
    assert!(!answer.set.contains_key("x-jwt-sub"), "{answer:?}");
    assert!(
        answer.removed.contains(&"x-jwt-sub".to_owned()),
        "{answer:?}"
    );
    assert_eq!(answer.metadata["would_deny"], "expired");
    assert_eq!(answer.metadata["tenant"], "");
    // On a route that chooses the tenant by issuer, a forged token cannot choose report mode by
    // naming the report tenant's issuer: it is denied.
    let forged = orders_key.sign(&claims("https://trial.example", AUDIENCE, now()));
    let answer = check(&mut client, check_request(Some(&forged), &[])).await;
    assert_eq!(answer.code, 16, "{answer:?}");
    // Valid tokens behave as in enforce mode, and drop a client's own would-deny header.
    let valid = trial_key.sign(&claims("https://trial.example", AUDIENCE, now()));
    let answer = check(&mut client, check_request(Some(&valid), &[])).await;
    assert_eq!(answer.code, 0);
    assert_eq!(answer.set["x-jwt-sub"], "user-1", "{answer:?}");
    assert!(
        answer
            .removed
            .contains(&"x-tokengate-would-deny".to_owned()),
        "{answer:?}"
    );
    // The gRPC API always tells the truth.
    let mut validator = server.client().await;
    let verdict = support::judge(
        &mut validator,
        &expired(&trial_key, "https://trial.example"),
        "",
    )
    .await;
    assert!(!verdict.valid);

    // The enforcing tenant denies, with its reason in the metadata for access logs…
    let answer = check(
        &mut client,
        check_request(Some(&expired(&orders_key, "https://orders.example")), &[]),
    )
    .await;
    assert_eq!(answer.code, 16, "{answer:?}");
    assert_eq!(answer.metadata["reason"], "expired", "{answer:?}");
    assert_eq!(answer.metadata["tenant"], "orders");
    assert!(answer.metadata.contains_key("hint_code"));
    // …unless the route says report; and a route's enforce wins over the tenant's report.
    let report = [("mode", "report")];
    let answer = check(
        &mut client,
        check_request(
            Some(&expired(&orders_key, "https://orders.example")),
            &report,
        ),
    )
    .await;
    assert_eq!(answer.code, 0, "{answer:?}");
    assert_eq!(answer.set["x-tokengate-would-deny"], "expired");
    let answer = check(&mut client, check_request(None, &report)).await;
    assert_eq!(
        answer.set["x-tokengate-would-deny"], "missing_token",
        "{answer:?}"
    );
    let enforce = [("mode", "enforce"), ("tenant", "trial")];
    let answer = check(
        &mut client,
        check_request(
            Some(&expired(&trial_key, "https://trial.example")),
            &enforce,
        ),
    )
    .await;
    assert_eq!(answer.code, 16, "{answer:?}");
    // A mode that names no mode enforces.
    let typo = [("mode", "reprot"), ("tenant", "trial")];
    let answer = check(
        &mut client,
        check_request(Some(&expired(&trial_key, "https://trial.example")), &typo),
    )
    .await;
    assert_eq!(answer.code, 16, "{answer:?}");

    let _ = rustls::crypto::ring::default_provider().install_default();
    let metrics = server.scrape().await;
    assert!(
        metrics.contains("tokengate_report_only_total{tenant=\"trial\",reason=\"expired\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("tokengate_report_only_total{tenant=\"(none)\",reason=\"missing_token\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn optional_token_routes_and_forward_auth_settings() {
    let (orders_key, trial_key) = (TestKey::rsa_a(), TestKey::es256());
    let server = Tokengate::start(&config(&orders_key, &trial_key));
    let forward = server.logged_address("forward-auth listening");
    server.wait_serving().await;
    let mut client = AuthorizationClient::connect(server.endpoint())
        .await
        .expect("connect");
    let optional = [("allow_missing", "true"), ("tenant", "orders")];

    // No token: allowed, with the spoofed claim header removed.
    let answer = check(&mut client, check_request(None, &optional)).await;
    assert_eq!(answer.code, 0, "{answer:?}");
    assert!(
        answer.removed.contains(&"x-jwt-sub".to_owned()),
        "{answer:?}"
    );
    assert!(!answer.set.contains_key("x-tokengate-tenant"), "{answer:?}");
    // A token that fails is still denied; a valid one gets its claims.
    let bad = orders_key.sign(&claims("https://orders.example", "api://other", now()));
    let answer = check(&mut client, check_request(Some(&bad), &optional)).await;
    assert_eq!(answer.code, 16, "{answer:?}");
    let good = orders_key.sign(&claims("https://orders.example", AUDIENCE, now()));
    let answer = check(&mut client, check_request(Some(&good), &optional)).await;
    assert_eq!(answer.set["x-jwt-sub"], "user-1", "{answer:?}");

    // forward-auth: the same route settings as query parameters, and the reason header.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let auth = |query: &str| format!("http://{forward}/auth{query}");
    let response = http
        .get(auth("?allow_missing=true"))
        .header("x-jwt-sub", "spoofed")
        .send()
        .await
        .expect("auth");
    assert_eq!(response.status(), 200);
    let response = http
        .get(auth(""))
        .header("authorization", format!("Bearer {bad}"))
        .send()
        .await
        .expect("auth");
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["x-tokengate-reason"], "invalid_audience");
    let response = http
        .get(auth("?mode=report"))
        .header("authorization", format!("Bearer {bad}"))
        .send()
        .await
        .expect("auth");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-tokengate-would-deny"],
        "invalid_audience"
    );
    assert!(response.headers().get("x-jwt-sub").is_none());
}
