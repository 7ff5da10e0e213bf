//! Project Wycheproof's JSON Web Signature vectors, run through tokengate's JWS layer
//! (header rules, algorithm binding, key choice, signature). The payloads are not JWT claim sets,
//! so claims are not checked here; `tests/it/engine.rs` covers them.

use std::collections::HashMap;

use serde_json::{Value, json};
use tokengate_core::algorithm::Algorithm;
use tokengate_core::keyset::{KeyOptions, KeySet};
use tokengate_core::policy::Policy;
use tokengate_core::token::{DecodedToken, Limits};
use tokengate_core::verify::verify_jws;

/// Cases where tokengate must disagree with the upstream label, and why.
fn overrides() -> HashMap<u64, (&'static str, &'static str)> {
    HashMap::from([
        (
            367,
            (
                "valid",
                "byte-identical to tcId 357, which is labelled valid (C2SP/wycheproof#236)",
            ),
        ),
        (
            370,
            (
                "valid",
                "byte-identical to tcId 357, which is labelled valid (C2SP/wycheproof#236)",
            ),
        ),
        (
            372,
            (
                "invalid",
                "contains '?', not base64url; the MAC does not cover the received bytes",
            ),
        ),
        (
            373,
            (
                "invalid",
                "contains '?', not base64url; the MAC does not cover the received bytes",
            ),
        ),
        (
            346,
            (
                "invalid",
                "header PS384, key bound to PS256 by its alg (RFC 8725 §3.1)",
            ),
        ),
        (
            350,
            (
                "invalid",
                "header PS384, key bound to PS256 by its alg (RFC 8725 §3.1)",
            ),
        ),
        (
            347,
            (
                "invalid",
                "ES512 on P-521 is not supported (ring has no P-521)",
            ),
        ),
        (
            351,
            (
                "invalid",
                "ES512 on P-521 is not supported (ring has no P-521)",
            ),
        ),
    ])
}

#[test]
fn wycheproof_json_web_signature_vectors() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/wycheproof/json_web_signature_test.json"
    ))
    .expect("vectors");
    let vectors: Value = serde_json::from_str(&text).expect("json");
    let overrides = overrides();
    let options = KeyOptions {
        allowed: Algorithm::ALL.into_iter().collect(),
        allow_symmetric: true,
        ..KeyOptions::default()
    };
    let policy = Policy {
        algorithms: Algorithm::ALL.into_iter().collect(),
        ..Policy::default()
    };
    let mut checked = 0;
    let mut failures = Vec::new();
    for group in vectors["testGroups"].as_array().expect("groups") {
        // Asymmetric groups verify with the public key only; shared-secret groups need the secret.
        let key = group.get("public").unwrap_or(&group["private"]);
        let jwks = serde_json::to_vec(&json!({ "keys": [key] })).expect("jwks");
        let keys = KeySet::from_jwks(&jwks, &options).expect("a JWKS document");
        for case in group["tests"].as_array().expect("tests") {
            let id = case["tcId"].as_u64().expect("tcId");
            let jws = case["jws"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| case["jws"].to_string());
            let label = case["result"].as_str().expect("result");
            let expected = overrides.get(&id).map_or(label, |(result, _)| *result);
            let outcome = DecodedToken::decode(&jws, &Limits::default()).and_then(|decoded| {
                let header = decoded.parse_header()?;
                verify_jws(
                    &header,
                    decoded.signing_input(),
                    decoded.signature(),
                    &keys,
                    &policy,
                )
                .map(|_| ())
            });
            let accepted = outcome.is_ok();
            let ok = match expected {
                "valid" => accepted,
                "invalid" => !accepted,
                other => panic!("tcId {id}: unexpected result label {other}"),
            };
            if !ok {
                failures.push(format!(
                    "tcId {id} ({}): expected {expected}, got {outcome:?}",
                    case["comment"]
                ));
            }
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        vectors["numberOfTests"].as_u64().expect("count") as usize
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} cases disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_wycheproof_jwe_is_rejected_as_malformed() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/wycheproof/json_web_encryption_test.json"
    ))
    .expect("vectors");
    let vectors: Value = serde_json::from_str(&text).expect("json");
    let mut checked = 0;
    for group in vectors["testGroups"].as_array().expect("groups") {
        for case in group["tests"].as_array().expect("tests") {
            let jwe = case["jwe"].as_str().expect("compact JWE");
            let rejection = DecodedToken::decode(jwe, &Limits::default())
                .and_then(|decoded| decoded.parse().map(|_| ()))
                .expect_err("a JWE is never a valid JWS");
            assert_eq!(
                rejection.reason,
                tokengate::Reason::Malformed,
                "tcId {}",
                case["tcId"]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 139);
}
