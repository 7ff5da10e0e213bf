//! The findings of the security review, each through the real server over real sockets: a forged
//! token is always denied (never "unavailable"), a discovered issuer cannot claim another's,
//! key-set input is bounded, one parse decides, weak keys never load, header strings are
//! compared decoded, and a reload runs every check a fresh start runs. Attack tokens are signed
//! by jsonwebtoken, not by tokengate.

use crate::support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Request as AttributeRequest,
};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use serde_json::{Value, json};
use support::{Client, Idp, InProcess, TestKey, claims, judge, jwks, now};
use tokengate::pb;

const AUDIENCE: &str = "api://orders";
const ISSUER: &str = "https://orders.example";

/// One tenant with a static key, plus `extra` YAML (more tenants, top-level blocks).
fn config(key: &TestKey, top: &str, more_tenants: &str) -> String {
    format!(
        "{top}\ntenants:\n  - id: orders\n    issuers: [\"{ISSUER}\"]\n    audiences: [\"{AUDIENCE}\"]\n    jwks: {}\n{more_tenants}",
        jwks(&[key])
    )
}

/// A token whose `alg` is `none`: unsigned, as an attacker sends it.
fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(claims.to_string())
    )
}

/// The answer for `token`, polled until `done` holds (a tenant's keys load in the background).
async fn eventually(
    client: &mut Client,
    token: &str,
    tenant: &str,
    done: impl Fn(&pb::ValidateTokenResponse) -> bool,
) -> pb::ValidateTokenResponse {
    let mut answer = judge(client, token, tenant).await;
    for _ in 0..100 {
        if done(&answer) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        answer = judge(client, token, tenant).await;
    }
    answer
}

/// A tenant's last key-load error (from the admin view), polled until it contains `words`.
async fn until_error(server: &InProcess, tenant: &str, words: &str) -> String {
    let mut error = server.last_error(tenant).await;
    for _ in 0..100 {
        if error.contains(words) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        error = server.last_error(tenant).await;
    }
    error
}

fn check_request(token: &str) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(AttributeRequest {
                http: Some(HttpRequest {
                    method: "GET".into(),
                    path: "/orders".into(),
                    headers: [("authorization".to_owned(), format!("Bearer {token}"))].into(),
                    ..HttpRequest::default()
                }),
                ..AttributeRequest::default()
            }),
            ..AttributeContext::default()
        }),
    }
}

#[tokio::test]
async fn a_forged_token_is_denied_never_unavailable_while_a_tenant_waits_for_discovery() {
    let key = TestKey::rsa_a();
    let down = Idp::start(jwks(&[&key]), None).await;
    down.state.down.store(true, Ordering::SeqCst);
    let waiting = format!(
        "  - id: waiting\n    discovery_url: \"{}\"\n",
        down.discovery_url()
    );
    let stranger = key.sign(&claims("https://stranger.example", AUDIENCE, now()));
    let none = unsigned(&claims("https://stranger.example", AUDIENCE, now()));

    // Within the start-up grace: "unavailable" only for a token that could still belong to
    // the waiting tenant, and it names no tenant; tenant-independent refusals come first.
    let early = InProcess::start(&config(&key, "refresh: { startup_grace: 1m }", &waiting)).await;
    let mut client = early.client().await;
    let answer = judge(&mut client, &none, "").await;
    assert_eq!(
        answer.reason,
        pb::Reason::UnsupportedAlgorithm as i32,
        "{answer:?}"
    );
    let answer = judge(&mut client, &stranger, "").await;
    assert_eq!(
        answer.reason,
        pb::Reason::KeysUnavailable as i32,
        "{answer:?}"
    );
    assert!(!answer.detail.contains("waiting"), "{}", answer.detail);

    // After the grace: a token whose issuer no loaded tenant accepts is an unknown tenant,
    // through ValidateToken and through Envoy's Check alike (a denial, not UNAVAILABLE).
    let late = InProcess::start(&config(&key, "refresh: { startup_grace: 1s }", &waiting)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut client = late.client().await;
    for token in [&stranger, &none] {
        let answer = judge(&mut client, token, "").await;
        assert_ne!(
            answer.reason,
            pb::Reason::KeysUnavailable as i32,
            "{answer:?}"
        );
        assert!(!answer.valid);
    }
    let answer = judge(&mut client, &stranger, "").await;
    assert_eq!(
        answer.reason,
        pb::Reason::UnknownTenant as i32,
        "{answer:?}"
    );
    let mut authz = AuthorizationClient::connect(late.endpoint())
        .await
        .expect("connect");
    let decision = authz
        .check(check_request(&stranger))
        .await
        .expect("a denial is an OK RPC, never UNAVAILABLE")
        .into_inner();
    assert_eq!(decision.status.map(|status| status.code), Some(16));
}

#[tokio::test]
async fn a_discovered_issuer_must_be_the_issuer_of_its_discovery_url() {
    let victim_key = TestKey::rsa_a();
    let impostor_key = TestKey::rsa_b();
    let impostor = Idp::start(jwks(&[&impostor_key]), Some(ISSUER)).await;
    let more = format!(
        "  - id: impostor\n    discovery_url: \"{}\"\n",
        impostor.discovery_url()
    );
    let server = InProcess::start(&config(&victim_key, "", &more)).await;
    let mut client = server.client().await;
    let forged = impostor_key.sign(&claims(ISSUER, AUDIENCE, now()));
    let refused = "is not the issuer this URL belongs to";
    let error = until_error(&server, "impostor", refused).await;
    assert!(error.contains(refused), "{error}");
    let answer = judge(&mut client, &forged, "impostor").await;
    assert_eq!(
        answer.reason,
        pb::Reason::KeysUnavailable as i32,
        "{answer:?}"
    );
    // Routed by issuer, the victim's tenant judges it, and its keys do not know the impostor's.
    let answer = judge(&mut client, &forged, "").await;
    assert!(!answer.valid, "{answer:?}");
    assert_eq!(answer.tenant, "orders");
    let genuine = victim_key.sign(&claims(ISSUER, AUDIENCE, now()));
    assert!(judge(&mut client, &genuine, "").await.valid);
}

#[tokio::test]
async fn a_jwks_of_junk_entries_is_refused_whole() {
    let key = TestKey::rsa_a();
    let junk: Vec<Value> = (0..2000)
        .map(|n| json!({"kty": "junk", "kid": n}))
        .collect();
    let idp = Idp::start(json!({ "keys": junk }), None).await;
    let more = format!(
        "  - id: junk\n    issuers: [\"https://junk.example\"]\n    jwks_uri: \"{}\"\n",
        idp.jwks_url()
    );
    let server = InProcess::start(&config(&key, "", &more)).await;
    let mut client = server.client().await;
    let token = key.sign(&claims("https://junk.example", AUDIENCE, now()));
    let error = until_error(&server, "junk", "entries").await;
    assert!(error.contains("more than the limit of 1000"), "{error}");
    assert!(error.len() < 600, "a bounded error: {}", error.len());
    let answer = judge(&mut client, &token, "junk").await;
    assert_eq!(
        answer.reason,
        pb::Reason::KeysUnavailable as i32,
        "{answer:?}"
    );
    assert!(
        answer.detail.len() < 300,
        "a bounded detail: {}",
        answer.detail
    );
}

#[tokio::test]
async fn a_number_outside_the_double_range_is_malformed_through_every_transport() {
    let key = TestKey::rsa_a();
    let server = InProcess::start(&config(&key, "", "")).await;
    let mut client = server.client().await;
    let header = format!(r#"{{"alg":"RS256","kid":"{}"}}"#, key.kid);
    let payload = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{},"big":1e400}}"#,
        now() + 600
    );
    let token = key.sign_raw(&header, &payload);
    let answer = judge(&mut client, &token, "").await;
    assert_eq!(answer.reason, pb::Reason::Malformed as i32, "{answer:?}");
    let mut authz = AuthorizationClient::connect(server.endpoint())
        .await
        .expect("connect");
    let decision = authz
        .check(check_request(&token))
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(
        decision.status.map(|status| status.code),
        Some(16),
        "denied"
    );
}

#[tokio::test]
async fn an_ed25519_key_of_small_order_never_verifies() {
    let key = TestKey::rsa_a();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "weak", "alg": "EdDSA", "x": B64.encode(identity)}]});
    let more = format!(
        "  - id: weak\n    issuers: [\"https://weak.example\"]\n    algorithms: [EdDSA]\n    jwks: {weak}\n"
    );
    // The only key of the tenant is skipped at load, so check-config refuses the file; the
    // server refuses it the same way.
    let yaml = config(&key, "", &more);
    let refused = tokengate::Config::parse(&yaml, None, std::path::Path::new("."));
    let errors = refused.expect_err("a tenant whose only key is weak");
    assert!(errors.to_string().contains("small order"), "{errors}");

    // Beside a good key, the weak one is skipped and a forgery for it (R = identity, S = 0)
    // is refused.
    let good = TestKey::ed25519();
    let mut keys = weak["keys"].as_array().cloned().unwrap_or_default();
    keys.push(good.jwk());
    let more = format!(
        "  - id: weak\n    issuers: [\"https://weak.example\"]\n    algorithms: [EdDSA]\n    jwks: {}\n",
        json!({ "keys": keys })
    );
    let server = InProcess::start(&config(&key, "", &more)).await;
    let mut client = server.client().await;
    let mut signature = identity.to_vec();
    signature.extend([0u8; 32]);
    let forged = format!(
        "{}.{}.{}",
        B64.encode(br#"{"alg":"EdDSA","kid":"weak"}"#),
        B64.encode(claims("https://weak.example", AUDIENCE, now()).to_string()),
        B64.encode(signature)
    );
    let answer = judge(&mut client, &forged, "").await;
    assert!(!answer.valid, "{answer:?}");
    assert_eq!(answer.reason, pb::Reason::UnknownKey as i32, "{answer:?}");
    let genuine = good.sign(&claims("https://weak.example", AUDIENCE, now()));
    assert!(judge(&mut client, &genuine, "").await.valid);
}

#[tokio::test]
async fn header_strings_are_compared_decoded() {
    let key = TestKey::rsa_a();
    let server = InProcess::start(&config(&key, "", "")).await;
    let mut client = server.client().await;
    let payload = claims(ISSUER, AUDIENCE, now()).to_string();
    let nested = key.sign_raw(
        &format!(r#"{{"alg":"RS256","kid":"{}","cty":"\u004aWT"}}"#, key.kid),
        &payload,
    );
    let answer = judge(&mut client, &nested, "").await;
    assert_eq!(
        answer.reason,
        pb::Reason::UnsupportedHeader as i32,
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_reload_runs_every_check_a_fresh_start_runs() {
    // The review's case: a tenant that takes a `{tenantid}` issuer from discovery, narrowed by
    // tenant_ids and audiences; a reload then drops tenant_ids. A fresh start refuses such a
    // document; the reload used to inherit the keys and the issuer without the check, and let
    // in every organisation.
    let key = TestKey::rsa_a();
    let tid = "9188040d-6c67-4c5b-b112-36a304b66dad";
    let other = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let idp = Idp::start(jwks(&[&key]), Some("https://login.example/{tenantid}/v2.0")).await;
    let tenant = |tenant_ids: &str| {
        format!(
            "tenants:\n  - id: saas\n    discovery_url: \"{}\"\n    audiences: [api]\n{tenant_ids}",
            idp.discovery_url()
        )
    };
    let server = InProcess::start(&tenant(&format!("    tenant_ids: [{tid}]\n"))).await;
    let mut client = server.client().await;
    let token = |tid: &str| {
        let mut body = claims(&format!("https://login.example/{tid}/v2.0"), "api", now());
        body["tid"] = json!(tid);
        key.sign(&body)
    };
    // Let the first load finish (or be refused).
    for _ in 0..100 {
        let view = server.debug_tenant("saas").await;
        if view["has_keys"] == true || view["last_error"].is_object() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::write(server.config_path(), tenant("")).expect("rewrite");
    tokio::time::sleep(Duration::from_secs(3)).await;
    for _ in 0..10 {
        let answer = judge(&mut client, &token(other), "saas").await;
        assert!(
            !answer.valid,
            "another organisation let in after the reload: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_unknown_kid_wait_ends_before_the_callers_deadline() {
    let key = TestKey::rsa_a();
    let idp = Idp::start(jwks(&[&key]), None).await;
    let config = format!(
        "tenants:\n  - id: slow\n    issuers: [\"{}\"]\n    jwks_uri: \"{}\"\n    refresh: {{ unknown_kid_wait: 2s }}\n",
        idp.issuer(),
        idp.jwks_url()
    );
    let server = InProcess::start(&config).await;
    server.wait_serving().await;
    let mut client = server.client().await;
    // The provider now takes 3 s to answer; the caller (as an Envoy with `timeout: 0.25s`) waits
    // 300 ms. The answer must come in time, and it is a denial.
    *idp.state.delay.lock().expect("lock") = Duration::from_secs(3);
    let rotated = TestKey::rsa_b().sign(&claims(&idp.issuer(), AUDIENCE, now()));
    let mut request = tonic::Request::new(support::request(&rotated, ""));
    request.set_timeout(Duration::from_millis(300));
    let started = tokio::time::Instant::now();
    let answer = client
        .validate_token(request)
        .await
        .expect("an answer before the deadline, not DEADLINE_EXCEEDED")
        .into_inner();
    assert_eq!(answer.reason, pb::Reason::UnknownKey as i32, "{answer:?}");
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn forward_auth_reads_exactly_one_token_the_way_the_gateway_set_it() {
    let key = TestKey::rsa_a();
    let config = config(
        &key,
        "ext_authz:\n  forward_auth_listen: \"127.0.0.1:0\"\n  token_query_parameter: access_token\n  token_cookie: session\n",
        "",
    );
    let server = support::Tokengate::start(&config);
    let address = server.logged_address("forward-auth listening");
    server.wait_serving().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let good = key.sign(&claims(ISSUER, AUDIENCE, now()));
    let other = key.sign(&claims(ISSUER, AUDIENCE, now() - 10));
    let auth = || http.get(format!("http://{address}/auth"));
    let invalid_request = |response: reqwest::Response| {
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        (
            response.status().as_u16(),
            challenge.contains("invalid_request"),
        )
    };
    assert_eq!(
        auth()
            .header("authorization", format!("Bearer {good}"))
            .send()
            .await
            .expect("auth")
            .status(),
        200
    );

    let mut two = reqwest::header::HeaderMap::new();
    two.append(
        "authorization",
        format!("Bearer {good}").parse().expect("value"),
    );
    two.append(
        "authorization",
        format!("Bearer {other}").parse().expect("value"),
    );
    let response = auth().headers(two).send().await.expect("auth");
    assert_eq!(
        invalid_request(response),
        (401, true),
        "two Authorization headers"
    );

    let doubled = auth()
        .header("authorization", format!("Bearer Bearer {good}"))
        .send()
        .await
        .expect("auth");
    assert_eq!(invalid_request(doubled), (401, true), "a doubled scheme");

    let both = auth()
        .header("authorization", format!("Bearer {good}"))
        .header("cookie", format!("session={other}"))
        .send()
        .await
        .expect("auth");
    assert_eq!(invalid_request(both), (401, true), "a token in two places");

    let not_text = reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").expect("obs-text");
    let fallback = auth()
        .header("authorization", not_text)
        .header("cookie", format!("session={good}"))
        .send()
        .await
        .expect("auth");
    assert_eq!(
        invalid_request(fallback),
        (401, true),
        "no fallback to the cookie"
    );

    // The original URI comes from X-Forwarded-Uri (the configured header), never from a
    // header the client picked.
    let spoofed = auth()
        .header("x-original-uri", format!("/orders?access_token={good}"))
        .send()
        .await
        .expect("auth");
    assert_eq!(spoofed.status(), 401);
    let forwarded = auth()
        .header("x-forwarded-uri", format!("/orders?access_token={good}"))
        .send()
        .await
        .expect("auth");
    assert_eq!(forwarded.status(), 200);
}

#[tokio::test]
async fn a_discovered_issuer_another_tenant_holds_is_refused_unless_both_share_it() {
    let key = TestKey::rsa_a();
    let idp = Idp::start(jwks(&[&key]), None).await;
    let discovering = |share: &str| {
        format!(
            "  - id: later\n    discovery_url: \"{}\"\n    audiences: [billing]\n{share}",
            idp.discovery_url()
        )
    };
    let owner = |share: &str| {
        format!(
            "tenants:\n  - id: owner\n    issuers: [\"{}\"]\n    jwks_uri: \"{}\"\n    audiences: [orders]\n{share}",
            idp.issuer(),
            idp.jwks_url()
        )
    };
    // First only the discovering tenant: it loads its keys.
    let server = InProcess::start(&format!("tenants:\n{}", discovering(""))).await;
    server.wait_serving().await;
    let mut client = server.client().await;
    let billing = key.sign(&claims(&idp.issuer(), "billing", now()));
    assert!(judge(&mut client, &billing, "later").await.valid);

    // A reload adds a tenant that lists the same issuer: the discovering tenant yields, keys
    // and all, whether the token names it or is routed by issuer.
    std::fs::write(
        server.config_path(),
        format!("{}{}", owner(""), discovering("")),
    )
    .expect("rewrite");
    let error = until_error(&server, "later", "owner").await;
    assert!(error.contains("is tenant \"owner\"'s"), "{error}");
    let answer = judge(&mut client, &billing, "later").await;
    assert_eq!(
        answer.reason,
        pb::Reason::KeysUnavailable as i32,
        "{answer:?}"
    );
    let routed = judge(&mut client, &billing, "").await;
    assert_eq!(routed.tenant, "owner", "{routed:?}");
    assert_eq!(routed.reason, pb::Reason::InvalidAudience as i32);

    // Both opt in: one provider, two APIs, told apart by audience.
    let share = "    share_issuer: true\n";
    std::fs::write(
        server.config_path(),
        format!("{}{}", owner(share), discovering(share)),
    )
    .expect("rewrite");
    let shared = eventually(&mut client, &billing, "", |answer| answer.valid).await;
    assert!(shared.valid, "{shared:?}");
    assert_eq!(shared.tenant, "later");
    let orders = key.sign(&claims(&idp.issuer(), "orders", now()));
    let answer = judge(&mut client, &orders, "").await;
    assert!(answer.valid, "{answer:?}");
    assert_eq!(answer.tenant, "owner");
}

#[tokio::test]
async fn unsigned_probes_learn_nothing_of_tenants_sharing_an_issuer() {
    let orders_key = TestKey::rsa_a();
    let billing_key = TestKey::rsa_b();
    let shared = "https://shared.example";
    let config = format!(
        "tenants:\n  - id: orders\n    issuers: [\"{shared}\"]\n    audiences: [orders]\n    jwks: {}\n  - id: billing\n    issuers: [\"{shared}\"]\n    audiences: [billing]\n    jwks: {}\n",
        jwks(&[&orders_key]),
        jwks(&[&billing_key])
    );
    let server = InProcess::start(&config).await;
    let mut client = server.client().await;
    // A probe carries a real header and a signature that is not the payload's.
    let donor = orders_key.sign(&claims(shared, "nobody", now()));
    let stolen_signature = donor.rsplit('.').next().unwrap_or_default().to_owned();
    let probe = |aud: &str| {
        let genuine = orders_key.sign(&claims(shared, aud, now()));
        let signed_part = genuine.rsplit_once('.').map_or("", |(head, _)| head);
        format!("{signed_part}.{stolen_signature}")
    };
    let answers: Vec<(i32, String, String)> = {
        let mut answers = Vec::new();
        for aud in ["orders", "billing", "shipping"] {
            let answer = judge(&mut client, &probe(aud), "").await;
            assert!(!answer.valid, "{answer:?}");
            answers.push((answer.reason, answer.detail, answer.tenant));
        }
        answers
    };
    assert_eq!(
        answers[0].0,
        pb::Reason::InvalidSignature as i32,
        "{answers:?}"
    );
    assert!(
        answers.iter().all(|answer| *answer == answers[0]),
        "the answer depends on the audience: {answers:?}"
    );

    // Genuine tokens go to the tenant whose key signed them.
    let billing = billing_key.sign(&claims(shared, "billing", now()));
    let answer = judge(&mut client, &billing, "").await;
    assert!(answer.valid && answer.tenant == "billing", "{answer:?}");
    let orders = orders_key.sign(&claims(shared, "orders", now()));
    let answer = judge(&mut client, &orders, "").await;
    assert!(answer.valid && answer.tenant == "orders", "{answer:?}");
    // Signed by orders' key for billing's audience: orders judges it, and refuses the audience.
    let crossed = orders_key.sign(&claims(shared, "billing", now()));
    let answer = judge(&mut client, &crossed, "").await;
    assert_eq!(answer.tenant, "orders", "{answer:?}");
    assert_eq!(answer.reason, pb::Reason::InvalidAudience as i32);
}

#[tokio::test]
async fn required_claim_values_match_only_their_own_json_type() {
    let key = TestKey::rsa_a();
    let top = "";
    let config = config(&key, top, "")
        .replace(
            "    jwks:",
            "    required_claims:\n      - { claim: admin, values: [true] }\n      - { claim: level, values: [\"2\"] }\n    jwks:",
        );
    let server = InProcess::start(&config).await;
    let mut client = server.client().await;
    let token = |admin: Value, level: Value| {
        let mut body = claims(ISSUER, AUDIENCE, now());
        body["admin"] = admin;
        body["level"] = level;
        key.sign(&body)
    };
    assert!(
        judge(&mut client, &token(json!(true), json!("2")), "")
            .await
            .valid
    );
    assert!(
        judge(&mut client, &token(json!([true]), json!(["1", "2"])), "")
            .await
            .valid
    );
    for (admin, level) in [
        (json!("true"), json!("2")),
        (json!(["true"]), json!("2")),
        (json!(true), json!(2)),
        (json!(1), json!("2")),
    ] {
        let answer = judge(&mut client, &token(admin.clone(), level.clone()), "").await;
        assert_eq!(
            answer.reason,
            pb::Reason::ClaimMismatch as i32,
            "admin {admin}, level {level}: {answer:?}"
        );
    }
}
