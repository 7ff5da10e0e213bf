//! Wycheproof's raw signature vectors through `tokengate_core::crypto::PublicKey`, the one place
//! tokengate checks signatures. The test command runs this file with each backend (ring by
//! default, aws-lc-rs with `--features aws-lc`), so both must give Wycheproof's answer on every
//! case. See `tests/data/wycheproof/README.md` for where the files come from.

use serde_json::Value;
use tokengate_core::algorithm::{Algorithm, AlgorithmSet};
use tokengate_core::crypto::{BACKEND, Components, PublicKey};

fn vectors(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/wycheproof")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(path).expect("vector file")).expect("JSON")
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
        .collect()
}

fn trimmed(bytes: Vec<u8>) -> Vec<u8> {
    let start = bytes
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(bytes.len());
    bytes[start..].to_vec()
}

/// Runs every case of `file` with the key each group's `key` builds; returns the number run.
fn run(file: &str, algorithm: Algorithm, key: impl Fn(&Value) -> Option<PublicKey>) -> usize {
    let document = vectors(file);
    let mut checked = 0;
    let mut wrong = Vec::new();
    for group in document["testGroups"].as_array().expect("groups") {
        let Some(key) = key(group) else {
            // The backend refused the key: then every signature under it must be invalid.
            for case in group["tests"].as_array().expect("tests") {
                if case["result"] == "valid" {
                    wrong.push(format!("tcId {}: key refused", case["tcId"]));
                }
                checked += 1;
            }
            continue;
        };
        for case in group["tests"].as_array().expect("tests") {
            let message = hex(case["msg"].as_str().expect("msg"));
            let signature = hex(case["sig"].as_str().expect("sig"));
            let verified = key.verify(algorithm, &message, &signature);
            let expected = match case["result"].as_str() {
                Some("valid") => true,
                Some("invalid") => false,
                _ => continue, // "acceptable": either answer is right
            };
            if verified != expected {
                wrong.push(format!(
                    "tcId {} ({}): expected {expected}",
                    case["tcId"], case["comment"]
                ));
            }
            checked += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{BACKEND}: {file}: {} wrong: {wrong:?}",
        wrong.len()
    );
    checked
}

fn only(algorithm: Algorithm) -> AlgorithmSet {
    AlgorithmSet::only(algorithm)
}

fn rsa(algorithm: Algorithm) -> impl Fn(&Value) -> Option<PublicKey> {
    move |group| {
        let n = trimmed(hex(group["publicKey"]["modulus"].as_str()?));
        let e = trimmed(hex(group["publicKey"]["publicExponent"].as_str()?));
        PublicKey::new(&Components::Rsa { n: &n, e: &e }, only(algorithm)).ok()
    }
}

fn ec(algorithm: Algorithm) -> impl Fn(&Value) -> Option<PublicKey> {
    move |group| {
        let point = hex(group["publicKey"]["uncompressed"].as_str()?);
        PublicKey::new(&Components::Ec { point: &point }, only(algorithm)).ok()
    }
}

#[test]
fn rs256_vectors() {
    let checked = run(
        "rsa_signature_2048_sha256_test.json",
        Algorithm::RS256,
        rsa(Algorithm::RS256),
    );
    assert!(checked > 200, "{checked}");
}

#[test]
fn ps256_vectors() {
    let checked = run(
        "rsa_pss_2048_sha256_mgf1_32_test.json",
        Algorithm::PS256,
        rsa(Algorithm::PS256),
    );
    assert!(checked > 100, "{checked}");
}

#[test]
fn es256_vectors() {
    let checked = run(
        "ecdsa_secp256r1_sha256_p1363_test.json",
        Algorithm::ES256,
        ec(Algorithm::ES256),
    );
    assert!(checked > 250, "{checked}");
}

#[test]
fn es384_vectors() {
    let checked = run(
        "ecdsa_secp384r1_sha384_p1363_test.json",
        Algorithm::ES384,
        ec(Algorithm::ES384),
    );
    assert!(checked > 250, "{checked}");
}

#[test]
fn eddsa_vectors() {
    let checked = run("ed25519_test.json", Algorithm::EdDSA, |group| {
        let public = hex(group["publicKey"]["pk"].as_str()?);
        PublicKey::new(
            &Components::Ed25519 { public: &public },
            only(Algorithm::EdDSA),
        )
        .ok()
    });
    assert!(checked > 100, "{checked}");
}

#[test]
fn a_key_never_verifies_for_an_algorithm_it_was_not_built_for() {
    let document = vectors("ecdsa_secp256r1_sha256_p1363_test.json");
    let group = &document["testGroups"][0];
    let case = &group["tests"][0];
    assert_eq!(case["result"], "valid");
    let key = ec(Algorithm::ES256)(group).expect("key");
    let (message, signature) = (
        hex(case["msg"].as_str().unwrap_or_default()),
        hex(case["sig"].as_str().unwrap_or_default()),
    );
    assert!(key.verify(Algorithm::ES256, &message, &signature));
    assert!(!key.verify(Algorithm::ES384, &message, &signature));
    assert!(!key.verify(Algorithm::HS256, &message, &signature));
}
