//! The JWS rules on their own, with HMAC keys and tokens signed by `ring` (not by tokengate):
//! refused headers, `none`, algorithms per tenant and per key, `kid` lookup and the bound on
//! tokens without a `kid`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde_json::{Value, json};

use super::*;
use crate::algorithm::AlgorithmSet;
use crate::keyset::KeyOptions;
use crate::token::{DecodedToken, Limits};

const NOW: i64 = 1_800_000_000;

fn secret(n: u8) -> Vec<u8> {
    vec![n; 32]
}

/// A key set of HMAC keys: `(kid, secret byte, alg)`.
fn keys(entries: &[(Option<&str>, u8, &str)]) -> KeySet {
    let keys: Vec<Value> = entries
        .iter()
        .map(|(kid, n, alg)| {
            let mut jwk =
                json!({"kty": "oct", "alg": alg, "k": URL_SAFE_NO_PAD.encode(secret(*n))});
            if let Some(kid) = kid {
                jwk["kid"] = json!(kid);
            }
            jwk
        })
        .collect();
    let options = KeyOptions::for_allow_list(
        Some(AlgorithmSet::family(crate::algorithm::KeyFamily::Symmetric)),
        true,
    );
    KeySet::from_jwks(json!({ "keys": keys }).to_string().as_bytes(), &options).expect("keys")
}

/// A token with `header`, signed with HMAC-SHA256 over secret byte `n` by ring.
fn token(header: &Value, n: u8) -> String {
    let payload = json!({"iss": "https://issuer.example", "exp": NOW + 60});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &secret(n));
    let tag = hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

fn policy() -> Policy {
    Policy {
        algorithms: AlgorithmSet::family(crate::algorithm::KeyFamily::Symmetric),
        ..Policy::default()
    }
}

fn judge(token: &str, keys: &KeySet, policy: &Policy) -> Result<Option<String>, Reason> {
    let decoded = DecodedToken::decode(token, &Limits::default()).map_err(|r| r.reason)?;
    let parsed = decoded.parse().map_err(|r| r.reason)?;
    verify(&parsed, keys, policy, NOW)
        .map(|verified| verified.key.kid().map(str::to_owned))
        .map_err(|rejection| rejection.reason)
}

#[test]
fn the_key_named_by_kid_verifies() {
    let keys = keys(&[(Some("a"), 1, "HS256"), (Some("b"), 2, "HS256")]);
    let header = json!({"alg": "HS256", "kid": "b"});
    assert_eq!(
        judge(&token(&header, 2), &keys, &policy()),
        Ok(Some("b".into()))
    );
    assert_eq!(
        judge(&token(&header, 1), &keys, &policy()),
        Err(Reason::InvalidSignature)
    );
    let unknown = json!({"alg": "HS256", "kid": "c"});
    assert_eq!(
        judge(&token(&unknown, 1), &keys, &policy()),
        Err(Reason::UnknownKey)
    );
}

#[test]
fn algorithms_are_bound_to_the_tenant_and_to_the_key() {
    let keys = keys(&[(Some("a"), 1, "HS256")]);
    let header = json!({"alg": "HS384", "kid": "a"});
    assert_eq!(
        judge(&token(&header, 1), &keys, &policy()),
        Err(Reason::UnsupportedAlgorithm),
        "the key is for HS256 only"
    );
    let rsa_only = Policy {
        algorithms: AlgorithmSet::only(crate::algorithm::Algorithm::RS256),
        ..Policy::default()
    };
    let header = json!({"alg": "HS256", "kid": "a"});
    assert_eq!(
        judge(&token(&header, 1), &keys, &rsa_only),
        Err(Reason::UnsupportedAlgorithm),
        "the tenant allows RS256 only"
    );
    for none in ["none", "None", "NONE"] {
        let header = json!({"alg": none, "kid": "a"});
        assert_eq!(
            judge(&token(&header, 1), &keys, &policy()),
            Err(Reason::UnsupportedAlgorithm)
        );
    }
}

#[test]
fn headers_that_change_processing_are_refused() {
    let keys = keys(&[(Some("a"), 1, "HS256")]);
    for (name, value) in [
        ("crit", json!(["exp"])),
        ("jku", json!("https://evil.example/jwks")),
        ("jwk", json!({"kty": "oct", "k": "AAAA"})),
        ("x5u", json!("https://evil.example/cert")),
        ("b64", json!(false)),
        ("zip", json!("DEF")),
        ("enc", json!("A256GCM")),
        ("cty", json!("JWT")),
    ] {
        let mut header = json!({"alg": "HS256", "kid": "a"});
        header[name] = value;
        assert_eq!(
            judge(&token(&header, 1), &keys, &policy()),
            Err(Reason::UnsupportedHeader),
            "{name}"
        );
    }
}

#[test]
fn tokens_without_kid_try_a_bounded_number_of_keys() {
    let header = json!({"alg": "HS256"});
    let few = keys(&[(Some("a"), 1, "HS256"), (Some("b"), 2, "HS256")]);
    assert_eq!(
        judge(&token(&header, 2), &few, &policy()),
        Ok(Some("b".into()))
    );
    let entries: Vec<(Option<&str>, u8, &str)> =
        [Some("a"), Some("b"), Some("c"), Some("d"), Some("e")]
            .into_iter()
            .zip(1..)
            .map(|(kid, n)| (kid, n, "HS256"))
            .collect();
    let many = keys(&entries);
    assert_eq!(
        judge(&token(&header, 1), &many, &policy()),
        Err(Reason::UnknownKey),
        "more candidates than MAX_KIDLESS_CANDIDATES"
    );
    let other = keys(&[(None, 1, "HS384")]);
    assert_eq!(
        judge(&token(&header, 1), &other, &policy()),
        Err(Reason::UnknownKey),
        "no key for the algorithm"
    );
}

#[test]
fn precheck_refuses_what_no_tenant_accepts() {
    let decode = |header: &Value| {
        let token = token(header, 1);
        let decoded = DecodedToken::decode(&token, &Limits::default()).expect("decodes");
        decoded
            .parse_header()
            .map(|header| precheck(&header).map_err(|r| r.reason))
            .expect("header")
    };
    assert_eq!(
        decode(&json!({"alg": "HS256"})),
        Ok(crate::algorithm::Algorithm::HS256)
    );
    assert_eq!(
        decode(&json!({"alg": "none"})),
        Err(Reason::UnsupportedAlgorithm)
    );
    assert_eq!(
        decode(&json!({"alg": "HS256", "jku": "https://x"})),
        Err(Reason::UnsupportedHeader)
    );
}

#[test]
fn header_strings_are_compared_decoded() {
    let keys = keys(&[(Some("a"), 1, "HS256")]);
    // "\u004aWT" is "JWT": a nested token however its header spells it.
    let escaped = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"a","cty":"\u004aWT"}"#),
        URL_SAFE_NO_PAD.encode(r#"{"exp":1800000060}"#)
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &secret(1));
    let tag = hmac::sign(&key, escaped.as_bytes());
    let token = format!("{escaped}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    assert_eq!(
        judge(&token, &keys, &policy()),
        Err(Reason::UnsupportedHeader)
    );
}
