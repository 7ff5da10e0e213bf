//! Keys from PEM, through the real server: X.509 certificates (kid = the certificate's
//! SHA-256 thumbprint, `x5t#S256`), SPKI public keys with a kid written beside them or none,
//! a file reloaded on change, and blocks that are not keys refused with their path. The
//! certificates and public-key PEM come from rcgen, not from tokengate.

use crate::support;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Header;
use support::{TestKey, Tokengate, claims, data, judge, now};
use tokengate::pb;

const ISSUER: &str = "https://pem.example";
const AUDIENCE: &str = "api://orders";

/// The private key of a fixture, for rcgen.
fn key_pair(file: &str) -> rcgen::KeyPair {
    let pem = std::fs::read_to_string(data(file)).expect("fixture");
    rcgen::KeyPair::from_pem(&pem).expect("rcgen reads the fixture key")
}

/// A self-signed certificate of a fixture key, and its `x5t#S256` thumbprint.
fn certificate(file: &str) -> (String, String) {
    let keys = key_pair(file);
    let params = rcgen::CertificateParams::new(vec!["signer.example".to_owned()]).expect("params");
    let certificate = params.self_signed(&keys).expect("self-signed");
    let thumbprint = ring::digest::digest(&ring::digest::SHA256, certificate.der());
    (
        certificate.pem(),
        URL_SAFE_NO_PAD.encode(thumbprint.as_ref()),
    )
}

fn with_kid(key: &TestKey, kid: Option<&str>) -> String {
    let mut header = Header::new(key.alg);
    header.kid = kid.map(str::to_owned);
    key.sign_with(header, &claims(ISSUER, AUDIENCE, now()))
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|line| format!("{pad}{line}\n")).collect()
}

#[tokio::test]
async fn certificates_and_public_keys_from_pem_verify_tokens() {
    let (rsa, ec, ed) = (TestKey::rsa_a(), TestKey::es256(), TestKey::ed25519());
    let (rsa_certificate, thumbprint) = certificate("rsa2048-a.pem");
    let ec_public = key_pair("ec-p256.pem").public_key_pem();
    let ed_public = key_pair("ed25519.pem").public_key_pem();
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("signer.pem"), &rsa_certificate).expect("write");
    let config = format!(
        "tenants:\n  - id: certs\n    issuers: [\"{ISSUER}\"]\n    audiences: [\"{AUDIENCE}\"]\n    pem_file: signer.pem\n  - id: keys\n    issuers: [\"{ISSUER}\"]\n    audiences: [\"{AUDIENCE}\"]\n    pem:\n      - kid: ec-1\n        key: |\n{}      - key: |\n{}",
        indent(&ec_public, 10),
        indent(&ed_public, 10)
    );
    let server = Tokengate::start_in(dir, &config);
    server.wait_serving().await;
    let mut client = server.client().await;

    // A certificate's key is known by its thumbprint.
    let answer = judge(&mut client, &with_kid(&rsa, Some(&thumbprint)), "certs").await;
    assert!(answer.valid, "{answer:?}");
    assert_eq!(answer.key_id, thumbprint);
    let answer = judge(&mut client, &with_kid(&rsa, Some("other")), "certs").await;
    assert_eq!(answer.reason, pb::Reason::UnknownKey as i32);
    // A public key with the kid written beside it, and one without a kid.
    assert!(
        judge(&mut client, &with_kid(&ec, Some("ec-1")), "keys")
            .await
            .valid
    );
    assert!(judge(&mut client, &with_kid(&ed, None), "keys").await.valid);
    // Bound to their algorithms as JWKs are: the RSA certificate never verifies an EC token.
    assert!(
        !judge(&mut client, &with_kid(&ec, Some(&thumbprint)), "certs")
            .await
            .valid
    );

    // The PEM file is reloaded on change, as a mounted Secret is.
    let (other_certificate, other_thumbprint) = certificate("rsa2048-b.pem");
    std::fs::write(
        server.config_path().with_file_name("signer.pem"),
        other_certificate,
    )
    .expect("rewrite");
    let rotated = with_kid(&TestKey::rsa_b(), Some(&other_thumbprint));
    let mut picked_up = false;
    for _ in 0..100 {
        if judge(&mut client, &rotated, "certs").await.valid {
            picked_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(picked_up, "the new certificate was not loaded");
}

#[test]
fn pem_blocks_that_are_not_public_keys_are_configuration_errors() {
    let private = std::fs::read_to_string(data("ec-p256.pem")).expect("fixture");
    let public = key_pair("ec-p256.pem").public_key_pem();
    let dir = tempfile::tempdir().expect("dir");
    let config = format!(
        "tenants:\n  - id: a\n    issuers: [\"{ISSUER}\"]\n    audiences: [x]\n    pem: |\n{}  - id: b\n    issuers: [\"{ISSUER}\"]\n    audiences: [x]\n    pem: not pem at all\n  - id: c\n    issuers: [\"{ISSUER}\"]\n    audiences: [x]\n    pem_file: missing.pem\n  - id: d\n    issuers: [\"{ISSUER}\"]\n    audiences: [x]\n    pem:\n      - kid: one\n        key: |\n{}",
        indent(&private, 6),
        indent(&format!("{public}{public}"), 10)
    );
    support::assert_config_refused(
        dir.path(),
        &config,
        &[
            "tenants[0].pem: a \"PRIVATE KEY\" block is neither a CERTIFICATE nor a PUBLIC KEY",
            "tenants[1].pem:",
            "tenants[2].pem_file: cannot read",
            "tenants[3].pem: a kid names one key, but this entry holds 2 PEM blocks",
        ],
    );
}
