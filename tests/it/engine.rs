//! The validation engine end to end in-process: YAML config → registry → verdict, with tokens
//! signed by jsonwebtoken (an encoder tokengate did not write) and a pinned clock.

use crate::support;

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};
use support::{NOW, TestKey, VerdictAt as _, claims};
use tokengate::Config;
use tokengate::Reason;
use tokengate::Validator;

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "api://orders";
const HMAC_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Fixture {
    rsa: TestKey,
    es256: TestKey,
    es384: TestKey,
    ed: TestKey,
    registry: Validator,
}

/// Every algorithm family under one tenant "main" (plus an HMAC tenant), inline JWKS.
fn fixture(extra_policy: &str) -> Fixture {
    let rsa = TestKey::rsa_a();
    let es256 = TestKey::es256();
    let es384 = TestKey::es384();
    let ed = TestKey::ed25519();
    let mut keys = vec![rsa.jwk(), es256.jwk(), es384.jwk(), ed.jwk()];
    for alg in [
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ] {
        let mut jwk = rsa.with_alg(alg).jwk();
        jwk["kid"] = json!(format!("rsa-a-{alg:?}"));
        keys.push(jwk);
    }
    let hmac: Vec<Value> = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
        .into_iter()
        .map(|alg| TestKey::hmac(HMAC_SECRET, alg, &format!("hmac-{alg:?}")).jwk())
        .collect();
    let yaml = format!(
        r#"
tenants:
  - id: main
    issuers: ["{ISSUER}"]
    audiences: ["{AUDIENCE}"]
    jwks: {keys}
{extra_policy}
  - id: shared
    issuers: ["https://hmac.example"]
    algorithms: [HS256, HS384, HS512]
    jwks: {hmac}
"#,
        keys = json!({ "keys": keys }),
        hmac = json!({ "keys": hmac }),
    );
    let config = Config::parse(&yaml, None, Path::new("."))
        .unwrap_or_else(|errors| panic!("{errors}\n{yaml}"));
    Fixture {
        rsa,
        es256,
        es384,
        ed,
        registry: Validator::for_config(&config, NOW),
    }
}

fn good_claims() -> Value {
    claims(ISSUER, AUDIENCE, NOW)
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    if let Some(object) = claims.as_object_mut() {
        object.remove(name);
    }
    claims
}

/// Builds a token from raw header and payload JSON with an arbitrary signature.
fn raw_token(header: &str, payload: &str, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        B64.encode(header),
        B64.encode(payload),
        B64.encode(signature)
    )
}

fn reason(fixture: &Fixture, token: &str, tenant: &str) -> Option<Reason> {
    let verdict = fixture.registry.validate(token, tenant, NOW);
    assert_eq!(verdict.valid, verdict.reason.is_none(), "{verdict:?}");
    if !verdict.valid {
        assert!(
            !verdict.detail.is_empty(),
            "every rejection explains itself"
        );
        assert!(
            verdict.claims_json.is_empty(),
            "no claims from a rejected token"
        );
    }
    verdict.reason
}

#[test]
fn every_algorithm_verifies_tokens_signed_by_jsonwebtoken() {
    let f = fixture("");
    let mut tokens = vec![
        ("RS256", f.rsa.sign(&good_claims())),
        ("ES256", f.es256.sign(&good_claims())),
        ("ES384", f.es384.sign(&good_claims())),
        ("EdDSA", f.ed.sign(&good_claims())),
    ];
    for alg in [
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ] {
        let mut key = f.rsa.with_alg(alg);
        key.kid = format!("rsa-a-{alg:?}");
        tokens.push(("RSA", key.sign(&good_claims())));
    }
    for (name, token) in &tokens {
        let verdict = f.registry.validate(token, "", NOW);
        assert!(verdict.valid, "{name}: {verdict:?}");
        assert_eq!(verdict.tenant, "main");
        assert_eq!(verdict.subject, "user-1");
        assert_eq!(verdict.expires_at, NOW + 3600);
        // The claims are the payload exactly as signed.
        let payload = B64
            .decode(token.split('.').nth(1).unwrap_or_default())
            .expect("payload");
        assert_eq!(verdict.claims_json, payload, "{name}");
    }
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let key = TestKey::hmac(HMAC_SECRET, alg, &format!("hmac-{alg:?}"));
        let token = key.sign(&json!({"iss": "https://hmac.example", "exp": NOW + 60}));
        assert_eq!(reason(&f, &token, ""), None, "{alg:?}");
    }
}

#[test]
fn the_fully_specified_ed25519_name_is_accepted() {
    let f = fixture("");
    let pkcs8 = std::fs::read_to_string(support::data("ed25519.pem")).expect("pem");
    let der = B64
        .decode(
            pkcs8
                .lines()
                .filter(|line| !line.starts_with("-----"))
                .collect::<String>()
                .replace('+', "-")
                .replace('/', "_")
                .trim_end_matches('='),
        )
        .expect("der");
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).expect("ed25519");
    let signing_input = format!(
        "{}.{}",
        B64.encode(r#"{"alg":"Ed25519","kid":"ed-1"}"#),
        B64.encode(good_claims().to_string())
    );
    let token = format!(
        "{signing_input}.{}",
        B64.encode(pair.sign(signing_input.as_bytes()))
    );
    assert_eq!(reason(&f, &token, ""), None);
}

#[test]
fn bearer_prefix_is_accepted() {
    let f = fixture("");
    let token = f.rsa.sign(&good_claims());
    assert_eq!(reason(&f, &format!("Bearer {token}"), ""), None);
}

#[test]
fn every_reason_is_reachable() {
    let f = fixture(
        r#"    required_claims:
      - { claim: scp, values: [read], separator: " " }
    client_application_ids: [app-1]
    max_lifetime: 2h
    token_types: [at+jwt, JWT]"#,
    );
    let ok = with(good_claims(), "azp", json!("app-1"));
    let rsa = &f.rsa;
    let cases: Vec<(&str, String, &str, Option<Reason>)> = vec![
        ("valid", rsa.sign(&ok), "", None),
        (
            "malformed",
            "not-a-token".into(),
            "",
            Some(Reason::Malformed),
        ),
        (
            "too large",
            rsa.sign(&with(ok.clone(), "pad", json!("x".repeat(20_000)))),
            "",
            Some(Reason::TokenTooLarge),
        ),
        (
            "alg none",
            raw_token(r#"{"alg":"none"}"#, &ok.to_string(), b""),
            "",
            Some(Reason::UnsupportedAlgorithm),
        ),
        (
            "crit",
            raw_token(
                r#"{"alg":"RS256","kid":"rsa-a","crit":["exp"]}"#,
                &ok.to_string(),
                b"x",
            ),
            "",
            Some(Reason::UnsupportedHeader),
        ),
        (
            "unknown tenant id",
            rsa.sign(&ok),
            "nope",
            Some(Reason::UnknownTenant),
        ),
        (
            "unknown issuer",
            rsa.sign(&with(ok.clone(), "iss", json!("https://other.example"))),
            "",
            Some(Reason::UnknownTenant),
        ),
        (
            "unknown kid",
            {
                let mut key = rsa.clone();
                key.kid = "rotated-away".into();
                key.sign(&ok)
            },
            "",
            Some(Reason::UnknownKey),
        ),
        (
            "wrong key",
            {
                let mut key = TestKey::rsa_b();
                key.kid = "rsa-a".into();
                key.sign(&ok)
            },
            "",
            Some(Reason::InvalidSignature),
        ),
        (
            "expired",
            rsa.sign(&with(ok.clone(), "exp", json!(NOW - 61))),
            "",
            Some(Reason::Expired),
        ),
        (
            "not yet valid",
            rsa.sign(&with(ok.clone(), "nbf", json!(NOW + 61))),
            "",
            Some(Reason::NotYetValid),
        ),
        (
            "lifetime",
            rsa.sign(&with(ok.clone(), "exp", json!(NOW + 3 * 3600))),
            "",
            Some(Reason::LifetimeTooLong),
        ),
        (
            "issuer",
            rsa.sign(&with(ok.clone(), "iss", json!("https://other.example"))),
            "main",
            Some(Reason::InvalidIssuer),
        ),
        (
            "audience",
            rsa.sign(&with(ok.clone(), "aud", json!("api://billing"))),
            "",
            Some(Reason::InvalidAudience),
        ),
        (
            "missing exp",
            rsa.sign(&without(ok.clone(), "exp")),
            "",
            Some(Reason::MissingClaim),
        ),
        (
            "missing scp",
            rsa.sign(&without(ok.clone(), "scp")),
            "",
            Some(Reason::MissingClaim),
        ),
        (
            "scope",
            rsa.sign(&with(ok.clone(), "scp", json!("write admin"))),
            "",
            Some(Reason::ClaimMismatch),
        ),
        (
            "client",
            rsa.sign(&with(ok.clone(), "azp", json!("app-2"))),
            "",
            Some(Reason::ClientNotAllowed),
        ),
        (
            "type",
            {
                let mut header = Header::new(Algorithm::RS256);
                header.kid = Some("rsa-a".into());
                header.typ = Some("id_token+jwt".into());
                rsa.sign_with(header, &ok)
            },
            "",
            Some(Reason::InvalidType),
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    for (name, token, tenant, expected) in cases {
        assert_eq!(reason(&f, &token, tenant), expected, "{name}");
        if let Some(reason) = expected {
            seen.insert(reason);
        }
    }
    // KEYS_UNAVAILABLE needs a remote tenant whose keys never loaded.
    let config = Config::parse(
        r#"
tenants:
  - id: remote
    issuers: ["https://remote.example"]
    jwks_uri: "http://127.0.0.1:9/jwks"
"#,
        None,
        Path::new("."),
    )
    .expect("config");
    let registry = Validator::for_config(&config, NOW);
    let token = rsa.sign(&claims("https://remote.example", AUDIENCE, NOW));
    let verdict = registry.validate(&token, "", NOW);
    assert_eq!(verdict.reason, Some(Reason::KeysUnavailable), "{verdict:?}");
    assert_eq!(verdict.tenant, "remote");
    seen.insert(Reason::KeysUnavailable);
    let missing: Vec<_> = Reason::ALL
        .iter()
        .filter(|reason| !seen.contains(reason))
        .collect();
    assert!(missing.is_empty(), "reasons never produced: {missing:?}");
}

#[test]
fn time_checks_respect_the_clock_skew_to_the_second() {
    let f = fixture("");
    let at = |claim: &str, value: i64| f.rsa.sign(&with(good_claims(), claim, json!(value)));
    // exp: rejected once now >= exp + 60.
    assert_eq!(reason(&f, &at("exp", NOW - 59), ""), None);
    assert_eq!(reason(&f, &at("exp", NOW - 60), ""), Some(Reason::Expired));
    // nbf and iat: rejected once they are more than 60 s ahead.
    assert_eq!(reason(&f, &at("nbf", NOW + 60), ""), None);
    assert_eq!(
        reason(&f, &at("nbf", NOW + 61), ""),
        Some(Reason::NotYetValid)
    );
    assert_eq!(reason(&f, &at("iat", NOW + 60), ""), None);
    assert_eq!(
        reason(&f, &at("iat", NOW + 61), ""),
        Some(Reason::NotYetValid)
    );
    // Fractional NumericDates are numbers too.
    let fractional = f
        .rsa
        .sign(&with(good_claims(), "exp", json!(NOW as f64 - 59.5)));
    assert_eq!(reason(&f, &fractional, ""), None);
    // Wrong types are never treated as absent (CVE-2026-25537).
    for value in [
        json!("99999999999"),
        json!(null),
        json!([NOW + 10]),
        json!(true),
    ] {
        let token = f.rsa.sign(&with(good_claims(), "nbf", value.clone()));
        assert_eq!(
            reason(&f, &token, ""),
            Some(Reason::Malformed),
            "nbf {value}"
        );
    }
    // Huge and negative values do not overflow.
    assert_eq!(reason(&f, &at("exp", i64::MIN), ""), Some(Reason::Expired));
    assert_eq!(reason(&f, &at("exp", i64::MAX), ""), None);
}

#[test]
fn audience_may_be_a_string_or_an_array() {
    let f = fixture("");
    let aud = |value: Value| f.rsa.sign(&with(good_claims(), "aud", value));
    assert_eq!(reason(&f, &aud(json!(AUDIENCE)), ""), None);
    assert_eq!(reason(&f, &aud(json!(["x", AUDIENCE])), ""), None);
    assert_eq!(
        reason(&f, &aud(json!([])), ""),
        Some(Reason::InvalidAudience)
    );
    assert_eq!(
        reason(&f, &aud(json!("API://ORDERS")), ""),
        Some(Reason::InvalidAudience)
    );
    assert_eq!(reason(&f, &aud(json!([1])), ""), Some(Reason::Malformed));
    assert_eq!(
        reason(&f, &aud(json!({"a": AUDIENCE})), ""),
        Some(Reason::Malformed)
    );
    let missing = f.rsa.sign(&without(good_claims(), "aud"));
    assert_eq!(reason(&f, &missing, ""), Some(Reason::MissingClaim));
    // The api:// form of the same app gets a hint.
    let verdict = f.registry.validate(&aud(json!("orders")), "", NOW);
    assert!(verdict.detail.contains("api://"), "{}", verdict.detail);
}

#[test]
fn issuers_match_exactly() {
    let f = fixture("");
    for iss in [
        "https://issuer.example/",
        "https://ISSUER.example",
        "https://issuer.exampl",
        "",
    ] {
        let token = f.rsa.sign(&with(good_claims(), "iss", json!(iss)));
        assert_eq!(
            reason(&f, &token, "main"),
            Some(Reason::InvalidIssuer),
            "{iss:?}"
        );
    }
    let slash = f.registry.validate(
        &f.rsa.sign(&with(
            good_claims(),
            "iss",
            json!("https://issuer.example/"),
        )),
        "main",
        NOW,
    );
    assert!(slash.detail.contains("trailing '/'"), "{}", slash.detail);
    let missing = f.rsa.sign(&without(good_claims(), "iss"));
    assert_eq!(reason(&f, &missing, ""), Some(Reason::UnknownTenant));
    assert_eq!(reason(&f, &missing, "main"), Some(Reason::MissingClaim));
}

#[test]
fn classic_attacks_are_rejected() {
    let f = fixture("");
    let payload = good_claims().to_string();
    let rsa_token = f.rsa.sign(&good_claims());
    let (rsa_signing_input, _) = rsa_token.rsplit_once('.').expect("token");

    // alg: none in every spelling, with and without a signature.
    for alg in ["none", "None", "NONE", "nOnE"] {
        for signature in [&b""[..], b"sig"] {
            let token = raw_token(
                &format!(r#"{{"alg":"{alg}","kid":"rsa-a"}}"#),
                &payload,
                signature,
            );
            assert_eq!(
                reason(&f, &token, ""),
                Some(Reason::UnsupportedAlgorithm),
                "{alg}"
            );
        }
    }

    // HS256 signed with the RSA public key (as JWK JSON, as modulus bytes) as the HMAC secret.
    let jwk = f.rsa.jwk();
    let modulus = B64
        .decode(jwk["n"].as_str().unwrap_or_default())
        .expect("n");
    for secret in [jwk.to_string().into_bytes(), modulus] {
        let token = TestKey::hmac(&secret, Algorithm::HS256, "rsa-a").sign(&good_claims());
        assert_eq!(reason(&f, &token, ""), Some(Reason::UnsupportedAlgorithm));
    }
    // Even where HS256 is allowed, an RSA kid never verifies HMAC.
    let hs_with_rsa_kid =
        TestKey::hmac(HMAC_SECRET, Algorithm::HS256, "rsa-a").sign(&good_claims());
    assert_eq!(
        reason(&f, &hs_with_rsa_kid, "shared"),
        Some(Reason::UnknownKey)
    );

    // ES256 header on the P-384 key, RS256 header on the EC key.
    let mismatched = raw_token(r#"{"alg":"ES256","kid":"ec-384"}"#, &payload, &[1; 64]);
    assert_eq!(
        reason(&f, &mismatched, ""),
        Some(Reason::UnsupportedAlgorithm)
    );

    // ECDSA psychic signature: r = s = 0, and DER-encoded or truncated signatures.
    let es_token = f.es256.sign(&good_claims());
    let (es_signing_input, es_signature) = es_token.rsplit_once('.').expect("token");
    let zero = format!("{es_signing_input}.{}", B64.encode([0u8; 64]));
    assert_eq!(reason(&f, &zero, ""), Some(Reason::InvalidSignature));
    let raw_signature = B64.decode(es_signature).expect("sig");
    let mut der = vec![0x30, 0x44, 0x02, 0x20];
    der.extend_from_slice(&raw_signature[..32]);
    der.extend_from_slice(&[0x02, 0x20]);
    der.extend_from_slice(&raw_signature[32..]);
    for signature in [
        der,
        raw_signature[..63].to_vec(),
        [raw_signature.clone(), vec![0]].concat(),
    ] {
        let token = format!("{es_signing_input}.{}", B64.encode(signature));
        assert_eq!(reason(&f, &token, ""), Some(Reason::InvalidSignature));
    }

    // Tampered payload: an admin claim slipped into a correctly signed token.
    let tampered = format!(
        "{}.{}.{}",
        rsa_signing_input.split('.').next().unwrap_or_default(),
        B64.encode(with(good_claims(), "role", json!("admin")).to_string()),
        rsa_token.rsplit('.').next().unwrap_or_default()
    );
    assert_eq!(reason(&f, &tampered, ""), Some(Reason::InvalidSignature));

    // Embedded keys and key URLs are never followed.
    for header in [
        json!({"alg": "RS256", "kid": "rsa-a", "jwk": TestKey::rsa_b().jwk()}),
        json!({"alg": "RS256", "kid": "rsa-a", "jku": "https://attacker.example/jwks"}),
        json!({"alg": "RS256", "kid": "rsa-a", "x5u": "https://attacker.example/cert"}),
        json!({"alg": "RS256", "kid": "rsa-a", "b64": false, "crit": ["b64"]}),
        json!({"alg": "RS256", "kid": "rsa-a", "cty": "JWT"}),
        json!({"alg": "RS256", "kid": "rsa-a", "enc": "A256GCM"}),
    ] {
        let token = raw_token(&header.to_string(), &payload, b"sig");
        assert_eq!(
            reason(&f, &token, ""),
            Some(Reason::UnsupportedHeader),
            "{header}"
        );
    }

    // JWE: five segments.
    let jwe = format!(
        "{}.a.b.c.d",
        B64.encode(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#)
    );
    assert_eq!(reason(&f, &jwe, ""), Some(Reason::Malformed));

    // Huge, deeply nested and many-dotted input gets an answer, never a crash or a hang.
    let deep = format!(
        r#"{{"iss":"{ISSUER}","x":{}1{}}}"#,
        "[".repeat(8000),
        "]".repeat(8000)
    );
    let nested = raw_token(r#"{"alg":"RS256","kid":"rsa-a"}"#, &deep, b"s");
    assert_eq!(reason(&f, &nested, ""), Some(Reason::TokenTooLarge));
    let deep_small = format!(
        r#"{{"iss":"{ISSUER}","x":{}1{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    let nested_small = raw_token(r#"{"alg":"RS256","kid":"rsa-a"}"#, &deep_small, b"s");
    assert_eq!(reason(&f, &nested_small, ""), Some(Reason::Malformed));
    assert_eq!(reason(&f, &".".repeat(10_000), ""), Some(Reason::Malformed));
    assert_eq!(
        reason(&f, &".".repeat(20_000), ""),
        Some(Reason::TokenTooLarge)
    );
    assert_eq!(
        reason(&f, &"a".repeat(1 << 20), ""),
        Some(Reason::TokenTooLarge)
    );

    // Duplicate claims: the signature is valid, the token still is not.
    let header = r#"{"alg":"ES256","kid":"ec-256"}"#;
    let duplicate = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{},"sub":"a","sub":"admin"}}"#,
        NOW + 60
    );
    let signing_input = format!("{}.{}", B64.encode(header), B64.encode(duplicate));
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &f.es256.encoding,
        Algorithm::ES256,
    )
    .expect("sign");
    let token = format!("{signing_input}.{signature}");
    assert_eq!(reason(&f, &token, ""), Some(Reason::Malformed));
}

#[test]
fn tokens_without_kid_try_the_keys_of_their_algorithm() {
    let f = fixture("");
    let header = Header::new(Algorithm::ES256);
    let token = f.es256.sign_with(header, &good_claims());
    assert_eq!(reason(&f, &token, ""), None);
    let header = Header::new(Algorithm::ES256);
    let tampered = {
        let token = f.es256.sign_with(header, &good_claims());
        let (input, _) = token.rsplit_once('.').expect("token");
        format!("{input}.{}", B64.encode([7u8; 64]))
    };
    assert_eq!(reason(&f, &tampered, ""), Some(Reason::InvalidSignature));
}

#[test]
fn tenant_selection_by_issuer_and_by_id() {
    let f = fixture("");
    let hmac = TestKey::hmac(HMAC_SECRET, Algorithm::HS256, "hmac-HS256");
    let token = hmac.sign(&json!({"iss": "https://hmac.example", "exp": NOW + 60}));
    let verdict = f.registry.validate(&token, "", NOW);
    assert_eq!(verdict.tenant, "shared");
    assert!(verdict.valid);
    // Asked for the wrong tenant explicitly, the token is judged by that tenant's policy.
    let verdict = f.registry.validate(&token, "main", NOW);
    assert_eq!(verdict.tenant, "main");
    assert_eq!(verdict.reason, Some(Reason::UnsupportedAlgorithm));
}

#[test]
fn tenant_independent_checks_come_before_keys_unavailable() {
    let config = Config::parse(
        "tenants:\n  - id: remote\n    issuers: [\"https://remote.example\"]\n    jwks_uri: \"http://127.0.0.1:9/jwks\"\n",
        None,
        Path::new("."),
    )
    .expect("config");
    let registry = Validator::for_config(&config, NOW);
    let payload = claims("https://remote.example", AUDIENCE, NOW).to_string();
    let none = raw_token(r#"{"alg":"none"}"#, &payload, b"");
    assert_eq!(
        registry.validate(&none, "", NOW).reason,
        Some(Reason::UnsupportedAlgorithm)
    );
    let jku = raw_token(r#"{"alg":"RS256","jku":"https://x"}"#, &payload, b"s");
    assert_eq!(
        registry.validate(&jku, "", NOW).reason,
        Some(Reason::UnsupportedHeader)
    );
    let fine = raw_token(r#"{"alg":"RS256","kid":"k"}"#, &payload, b"s");
    assert_eq!(
        registry.validate(&fine, "", NOW).reason,
        Some(Reason::KeysUnavailable)
    );
}

#[test]
fn tokens_without_kid_try_a_bounded_number_of_keys() {
    let keys: Vec<Value> = (0..5)
        .map(|index| {
            let mut jwk = TestKey::es256().jwk();
            jwk["kid"] = json!(format!("k{index}"));
            jwk
        })
        .collect();
    let yaml = format!(
        "tenants:\n  - id: many\n    issuers: [\"{ISSUER}\"]\n    jwks: {}\n",
        json!({ "keys": keys })
    );
    let registry = Validator::for_config(
        &Config::parse(&yaml, None, Path::new(".")).expect("config"),
        NOW,
    );
    let token = TestKey::es256().sign_with(Header::new(Algorithm::ES256), &good_claims());
    let verdict = registry.validate(&token, "", NOW);
    assert_eq!(verdict.reason, Some(Reason::UnknownKey), "{verdict:?}");
    assert!(verdict.detail.contains("at most 4"), "{}", verdict.detail);
}

#[test]
fn client_claims_must_be_strings() {
    let f = fixture("    client_application_ids: [app-1]");
    let token = f.rsa.sign(&with(good_claims(), "azp", json!(["app-1"])));
    assert_eq!(reason(&f, &token, ""), Some(Reason::Malformed));
    let v1 = f.rsa.sign(&with(good_claims(), "appid", json!("app-1")));
    assert_eq!(reason(&f, &v1, ""), None);
    let missing = f.rsa.sign(&good_claims());
    assert_eq!(reason(&f, &missing, ""), Some(Reason::MissingClaim));
}
