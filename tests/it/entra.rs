//! Microsoft Entra ID token shapes (v1 and v2, workforce, multi-tenant, CIAM, B2C) against a
//! loopback provider whose discovery documents mirror Entra's, through the `provider: entra`
//! preset, with the hints that name the fix.

use crate::support;

use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};
use support::{Idp, InProcess, TestKey, judge, now};
use tokengate::pb;

const TID: &str = "00044076-1234-4a5b-8c9d-00ee0c08e825";
const OTHER_TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const API_CLIENT_ID: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
const WEB_CLIENT_ID: &str = "2a1c3d4e-0000-4000-8000-0000000000aa";
const GRAPH: &str = "00000003-0000-0000-c000-000000000000";

/// An Entra-style JWKS: RSA keys without `alg`, with `x5t` and an `issuer` member.
fn entra_jwks(key: &TestKey, issuer: &str) -> Value {
    let mut jwk = key.jwk();
    if let Some(object) = jwk.as_object_mut() {
        object.remove("alg");
        object.insert("x5t".into(), json!(key.kid));
        object.insert("issuer".into(), json!(issuer));
    }
    json!({ "keys": [jwk] })
}

/// A v2 access token for our API, as Entra issues it.
fn v2_claims(issuer: &str, tid: &str) -> Value {
    json!({
        "aud": API_CLIENT_ID, "iss": issuer, "iat": now(), "nbf": now(), "exp": now() + 3600,
        "azp": WEB_CLIENT_ID, "azpacr": "0", "name": "Abe Lincoln",
        "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474", "preferred_username": "abeli@example.com",
        "rh": "0.AAAA", "scp": "orders.read orders.write", "roles": ["Orders.Admin"],
        "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ", "tid": tid,
        "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "2.0"
    })
}

/// A v1 access token: App ID URI audience, `appid` instead of `azp`, issuer without `/v2.0`.
fn v1_claims(issuer: &str, tid: &str) -> Value {
    json!({
        "aud": format!("api://{API_CLIENT_ID}"), "iss": issuer, "iat": now(), "nbf": now(),
        "exp": now() + 3600, "appid": WEB_CLIENT_ID, "appidacr": "0",
        "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474", "scp": "orders.read", "sub": "s",
        "tid": tid, "ver": "1.0"
    })
}

fn sign(key: &TestKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    header.typ = Some("JWT".into());
    header.x5t = Some(key.kid.clone());
    key.sign_with(header, claims)
}

#[tokio::test]
async fn ciam_tokens_validate_with_the_preset_and_v1_tokens_get_the_manifest_hint() {
    let key = TestKey::rsa_a();
    let issuer = format!("https://{TID}.ciamlogin.com/{TID}/v2.0");
    let idp = Idp::start(entra_jwks(&key, &issuer), Some(&issuer)).await;
    let config = format!(
        r#"
tenants:
  - id: contoso-ciam
    provider: entra
    tenant_id: {TID}
    kind: ciam
    discovery_url: "{}"    # the loopback stand-in for https://{TID}.ciamlogin.com/...
    backend_application_ids: [{API_CLIENT_ID}]
    client_application_ids: [{WEB_CLIENT_ID}]
"#,
        idp.discovery_url()
    );
    let server = InProcess::start(&config).await;
    server.wait_serving().await;
    let mut client = server.client().await;

    let v2 = judge(&mut client, &sign(&key, &v2_claims(&issuer, TID)), "").await;
    assert!(v2.valid, "{v2:?}");
    assert_eq!(v2.tenant, "contoso-ciam");

    // The motivating failure: a v1 CIAM token (issuer without /v2.0).
    let v1_issuer = format!("https://{TID}.ciamlogin.com/{TID}/");
    let v1 = sign(&key, &v1_claims(&v1_issuer, TID));
    let by_issuer = judge(&mut client, &v1, "").await;
    assert_eq!(
        by_issuer.reason,
        pb::Reason::UnknownTenant as i32,
        "{by_issuer:?}"
    );
    assert_eq!(by_issuer.hint_code, "entra_v1_token");
    assert!(
        by_issuer.detail.contains("accessTokenAcceptedVersion"),
        "{}",
        by_issuer.detail
    );
    let by_id = judge(&mut client, &v1, "contoso-ciam").await;
    assert_eq!(by_id.reason, pb::Reason::InvalidIssuer as i32);
    assert_eq!(by_id.hint_code, "entra_v1_token");

    // A client application that is not allowed.
    let mut stranger = v2_claims(&issuer, TID);
    stranger["azp"] = json!("99999999-0000-4000-8000-000000000000");
    let response = judge(&mut client, &sign(&key, &stranger), "").await;
    assert_eq!(response.reason, pb::Reason::ClientNotAllowed as i32);
}

#[tokio::test]
async fn ciam_v1_tokens_validate_when_accepted_explicitly() {
    let key = TestKey::rsa_a();
    let issuer = format!("https://{TID}.ciamlogin.com/{TID}/v2.0");
    let idp = Idp::start(entra_jwks(&key, &issuer), Some(&issuer)).await;
    let config = format!(
        "tenants:\n  - id: c\n    provider: entra\n    tenant_id: {TID}\n    kind: ciam\n    accept_v1_tokens: true\n    discovery_url: \"{}\"\n    backend_application_ids: [{API_CLIENT_ID}]\n    client_application_ids: [{WEB_CLIENT_ID}]\n",
        idp.discovery_url()
    );
    let server = InProcess::start(&config).await;
    server.wait_serving().await;
    let mut client = server.client().await;
    let v1 = sign(
        &key,
        &v1_claims(&format!("https://{TID}.ciamlogin.com/{TID}/"), TID),
    );
    let response = judge(&mut client, &v1, "").await;
    assert!(response.valid, "{response:?}");
}

#[tokio::test]
async fn multi_tenant_templates_bind_the_issuer_to_tid_and_tenant_ids() {
    let key = TestKey::rsa_a();
    let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
    let idp = Idp::start(entra_jwks(&key, template), Some(template)).await;
    let config = format!(
        "tenants:\n  - id: saas\n    provider: entra\n    tenant_id: organizations\n    discovery_url: \"{}\"\n    backend_application_ids: [{API_CLIENT_ID}]\n    tenant_ids: [{TID}]\n",
        idp.discovery_url()
    );
    let server = InProcess::start(&config).await;
    server.wait_serving().await;
    let mut client = server.client().await;
    let issuer_of = |tid: &str| format!("https://login.microsoftonline.com/{tid}/v2.0");

    let ok = judge(
        &mut client,
        &sign(&key, &v2_claims(&issuer_of(TID), TID)),
        "",
    )
    .await;
    assert!(ok.valid, "{ok:?}");

    // Another organisation, correctly signed: not in tenant_ids.
    let other = judge(
        &mut client,
        &sign(&key, &v2_claims(&issuer_of(OTHER_TID), OTHER_TID)),
        "",
    )
    .await;
    assert_eq!(other.reason, pb::Reason::InvalidIssuer as i32, "{other:?}");
    assert_eq!(other.hint_code, "entra_tenant_not_allowed");

    // The template never accepts a tid that differs from the issuer's, another host, or no tid.
    let mut mismatched = v2_claims(&issuer_of(TID), OTHER_TID);
    let response = judge(&mut client, &sign(&key, &mismatched), "saas").await;
    assert_eq!(
        response.reason,
        pb::Reason::InvalidIssuer as i32,
        "{response:?}"
    );
    mismatched["tid"] = json!(TID);
    mismatched["iss"] = json!(format!(
        "https://login.microsoftonline.com.evil.example/{TID}/v2.0"
    ));
    let response = judge(&mut client, &sign(&key, &mismatched), "").await;
    assert_eq!(
        response.reason,
        pb::Reason::UnknownTenant as i32,
        "{response:?}"
    );
    let mut no_tid = v2_claims(&issuer_of(TID), TID);
    no_tid.as_object_mut().map(|claims| claims.remove("tid"));
    let response = judge(&mut client, &sign(&key, &no_tid), "saas").await;
    assert_eq!(
        response.reason,
        pb::Reason::InvalidIssuer as i32,
        "{response:?}"
    );
}

#[tokio::test]
async fn workforce_and_b2c_shapes_and_the_classic_misconfigurations() {
    let key = TestKey::rsa_a();
    let workforce_issuer = format!("https://login.microsoftonline.com/{TID}/v2.0");
    let b2c_issuer = format!("https://contoso.b2clogin.com/{TID}/v2.0/");
    let workforce = Idp::start(entra_jwks(&key, &workforce_issuer), Some(&workforce_issuer)).await;
    let b2c = Idp::start(entra_jwks(&key, &b2c_issuer), Some(&b2c_issuer)).await;
    let config = format!(
        r#"
tenants:
  - id: workforce
    provider: entra
    tenant_id: {TID}
    discovery_url: "{}"
    audiences: [{API_CLIENT_ID}]
  - id: shop
    provider: entra
    tenant_id: {TID}
    kind: b2c
    domain: contoso.b2clogin.com
    policy: B2C_1_signin
    discovery_url: "{}"
    audiences: [{API_CLIENT_ID}]
"#,
        workforce.discovery_url(),
        b2c.discovery_url()
    );
    let server = InProcess::start(&config).await;
    server.wait_serving().await;
    let mut client = server.client().await;

    assert!(
        judge(
            &mut client,
            &sign(&key, &v2_claims(&workforce_issuer, TID)),
            ""
        )
        .await
        .valid
    );
    let mut b2c_claims = v2_claims(&b2c_issuer, TID);
    b2c_claims["tfp"] = json!("B2C_1_signin");
    let shop = judge(&mut client, &sign(&key, &b2c_claims), "").await;
    assert!(shop.valid, "{shop:?}");
    assert_eq!(shop.tenant, "shop");

    // A workforce v1 token (sts.windows.net).
    let v1 = judge(
        &mut client,
        &sign(
            &key,
            &v1_claims(&format!("https://sts.windows.net/{TID}/"), TID),
        ),
        "workforce",
    )
    .await;
    assert_eq!(v1.reason, pb::Reason::InvalidIssuer as i32);
    assert_eq!(v1.hint_code, "entra_v1_token");

    // The api:// form of the client id where only the client id is configured.
    let mut uri_audience = v2_claims(&workforce_issuer, TID);
    uri_audience["aud"] = json!(format!("api://{API_CLIENT_ID}"));
    let response = judge(&mut client, &sign(&key, &uri_audience), "").await;
    assert_eq!(response.reason, pb::Reason::InvalidAudience as i32);
    assert_eq!(response.hint_code, "audience_app_id_uri");

    // The right authority, another directory.
    let other_issuer = format!("https://login.microsoftonline.com/{OTHER_TID}/v2.0");
    let response = judge(
        &mut client,
        &sign(&key, &v2_claims(&other_issuer, OTHER_TID)),
        "workforce",
    )
    .await;
    assert_eq!(response.reason, pb::Reason::InvalidIssuer as i32);
    assert_eq!(response.hint_code, "entra_other_tenant");
    assert!(response.detail.contains(OTHER_TID), "{}", response.detail);

    // A Microsoft Graph token sent to the API: by audience, and by its nonce header.
    let mut graph = v2_claims(&workforce_issuer, TID);
    graph["aud"] = json!(GRAPH);
    let response = judge(&mut client, &sign(&key, &graph), "").await;
    assert_eq!(response.reason, pb::Reason::InvalidAudience as i32);
    assert_eq!(response.hint_code, "entra_graph_token");
    let graph_token = sign(&key, &graph);
    let (signing_input, signature) = graph_token.rsplit_once('.').expect("token");
    let (_, payload) = signing_input.split_once('.').expect("token");
    use base64::Engine as _;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"typ": "JWT", "alg": "RS256", "kid": "rsa-a", "nonce": "abc"}).to_string());
    let response = judge(&mut client, &format!("{header}.{payload}.{signature}"), "").await;
    assert_eq!(response.reason, pb::Reason::InvalidSignature as i32);
    assert_eq!(response.hint_code, "entra_graph_token");
}

#[test]
fn presets_build_the_discovery_url_and_issuers() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("entra.yaml");
    std::fs::write(
        &path,
        format!(
            "tenants:\n  - {{id: ciam, provider: entra, tenant_id: {TID}, kind: ciam, audiences: [x]}}\n  - {{id: wf, provider: entra, tenant_id: {TID}, accept_v1_tokens: true, audiences: any}}\n  - {{id: b2c, provider: entra, tenant_id: {TID}, kind: b2c, domain: contoso.b2clogin.com, policy: B2C_1_signin, audiences: [x]}}\n  - {{id: common, provider: entra, tenant_id: organizations, tenant_ids: [{TID}], audiences: [api://x]}}\n"
        ),
    )
    .expect("write");
    let output = std::process::Command::new(support::binary())
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        format!(
            "discovery https://{TID}.ciamlogin.com/{TID}/v2.0/.well-known/openid-configuration"
        ),
        format!("issuers: https://{TID}.ciamlogin.com/{TID}/v2.0"),
        format!(
            "issuers: https://login.microsoftonline.com/{TID}/v2.0, https://sts.windows.net/{TID}/"
        ),
        format!(
            "discovery https://contoso.b2clogin.com/{TID}/B2C_1_signin/v2.0/.well-known/openid-configuration"
        ),
        format!("issuers: https://contoso.b2clogin.com/{TID}/v2.0/"),
        "issuers: https://login.microsoftonline.com/{tenantid}/v2.0".to_owned(),
        "audiences: any (on purpose)".to_owned(),
    ] {
        assert!(
            stdout.contains(&expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }

    support::assert_config_refused(
        dir.path(),
        "tenants:\n  - {id: a, provider: entra, tenant_id: contoso, kind: ciam}\n  - {id: b, provider: okta, issuers: [x], jwks_uri: \"https://x\"}\n  - {id: c, issuers: [x], jwks_uri: \"https://x\", tenant_id: abc}\n  - {id: d, provider: entra, tenant_id: organizations, tenant_ids: [nope], jwks_uri: \"https://x\"}\n  - {id: e, provider: entra, tenant_id: common}\n  - {id: f, provider: entra, tenant_id: 9188040d-6c67-4c5b-b112-36a304b66dad}\n  - {id: g, issuers: [x], jwks_uri: \"https://x\", audiences: all}\n",
        &[
            "tenants[0].tenant_id: must be the tenant's guid",
            "tenants[1].provider: \"okta\" is not a known provider",
            "tenants[2].tenant_id: applies only with provider: entra",
            "tenants[3]: provider: entra finds the keys through discovery",
            "tenants[3].tenant_ids[0]: \"nope\" is not a tenant GUID",
            "tenants[4].tenant_ids: a {tenantid} issuer accepts tokens of every Entra tenant",
            "tenants[5].audiences: provider: entra needs audiences",
            "tenants[6].audiences: \"all\" is neither a list of audiences nor `any`",
        ],
    );
}
