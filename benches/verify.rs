//! Full tokengate validation of one token beside its baselines, measured in the same run, for
//! every algorithm tokengate supports (RS256, PS256, ES256, ES384, EdDSA, HS256):
//! - `backend_verify`: the signature check alone, through tokengate's crypto seam with the key
//!   prepared once (ring by default; aws-lc-rs with `--features aws-lc`);
//! - `ring_verify`: raw `ring` on the same signature, as a user of ring would call it;
//! - `tokengate_validate`: the whole core (decode, strict JSON, tenant, key, signature, claims,
//!   verdict), cache off; `tokengate_validate_cached`: the same token answered by the cache;
//! - `jsonwebtoken_aws_lc_rs` and `jsonwebtoken_rust_crypto`: another library's `decode` with
//!   each of its backends (each process can use one, so the second runs in a child process).
//!
//! Run with `cargo bench --bench verify` (add `-- --quick` for a faster, noisier run); with
//! `--features aws-lc` for the aws-lc backend. The ratios at the end use medians of this run.

use std::hint::black_box;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use criterion::Criterion;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::{hmac, signature};
use serde_json::{Value, json};
use tokengate::Config;
use tokengate::Validator;

const NOW: i64 = 1_800_000_000;
const ISSUER: &str = "https://login.example.com/tenant/v2.0";
const AUDIENCE: &str = "api://orders";
const SECRET: &[u8] = b"a 32-byte benchmark HMAC secret!";
/// Set in the child process that measures jsonwebtoken's RustCrypto backend.
const CHILD_BACKEND: &str = "TOKENGATE_BENCH_JWT_BACKEND";

struct Case {
    name: &'static str,
    alg: Algorithm,
    token: String,
    jwk: Value,
    decoding: DecodingKey,
}

fn case(name: &'static str, file: Option<&str>, alg: Algorithm) -> Case {
    let encoding = match file {
        Some(file) => {
            let pem = std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/data")
                    .join(file),
            )
            .expect("fixture");
            match alg {
                Algorithm::RS256 | Algorithm::PS256 => EncodingKey::from_rsa_pem(&pem),
                Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
                _ => EncodingKey::from_ec_pem(&pem),
            }
            .expect("fixture key")
        }
        None => EncodingKey::from_secret(SECRET).expect("secret"),
    };
    let mut jwk = match file {
        Some(_) => serde_json::to_value(Jwk::from_encoding_key(&encoding, alg).expect("jwk"))
            .expect("json"),
        None => json!({"kty": "oct", "k": B64.encode(SECRET)}),
    };
    jwk["kid"] = json!(name);
    jwk["alg"] = json!(format!("{alg:?}"));
    jwk["use"] = json!("sig");
    let decoding = match file {
        Some(_) => DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).expect("jwk"))
            .expect("decoding key"),
        None => DecodingKey::from_secret(SECRET).expect("secret"),
    };
    // A realistic access token: Entra-like v2 claims.
    let claims = json!({
        "aud": AUDIENCE, "iss": ISSUER, "iat": NOW, "nbf": NOW, "exp": NOW + 3600,
        "aio": "AWQAm/8TAAAA", "azp": "6e74172b-be56-4843-9ff4-e66a39bb12e3", "azpacr": "0",
        "name": "Abe Lincoln", "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
        "preferred_username": "abeli@example.com", "rh": "I", "scp": "orders.read orders.write",
        "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ", "tid": "9188040d-6c67-4c5b-b112-36a304b66dad",
        "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "2.0"
    });
    let mut header = Header::new(alg);
    header.kid = Some(name.into());
    header.typ = Some("JWT".into());
    let token = jsonwebtoken::encode(&header, &claims, &encoding).expect("sign");
    Case {
        name,
        alg,
        token,
        jwk,
        decoding,
    }
}

fn cases() -> Vec<Case> {
    vec![
        case("rs256", Some("rsa2048-a.pem"), Algorithm::RS256),
        case("ps256", Some("rsa2048-a.pem"), Algorithm::PS256),
        case("es256", Some("ec-p256.pem"), Algorithm::ES256),
        case("es384", Some("ec-p384.pem"), Algorithm::ES384),
        case("eddsa", Some("ed25519.pem"), Algorithm::EdDSA),
        case("hs256", None, Algorithm::HS256),
    ]
}

/// The benchmark tenant; `cache` on or off (off: every call verifies the signature).
fn tenant_validator(cases: &[Case], cache: bool) -> Validator {
    let keys: Vec<&Value> = cases.iter().map(|case| &case.jwk).collect();
    let yaml = format!(
        "cache: {{ enabled: {cache} }}\ntenants:\n  - id: bench\n    issuers: [\"{ISSUER}\"]\n    audiences: [\"{AUDIENCE}\"]\n    algorithms: [RS256, PS256, ES256, ES384, EdDSA, HS256]\n    required_claims:\n      - {{ claim: scp, values: [orders.read], separator: \" \" }}\n    jwks: {}\n",
        json!({ "keys": keys })
    );
    let config = Config::parse(&yaml, None, Path::new(".")).expect("config");
    Validator::for_config(&config, NOW)
}

/// The key of a case in the form raw ring takes, prepared once.
enum RingKey {
    Rsa(Vec<u8>, Vec<u8>, &'static signature::RsaParameters),
    Unparsed(Vec<u8>, &'static dyn signature::VerificationAlgorithm),
    Hmac(hmac::Key),
}

fn field(jwk: &Value, name: &str) -> Vec<u8> {
    B64.decode(jwk[name].as_str().unwrap_or_default())
        .unwrap_or_default()
}

fn ring_key(case: &Case) -> RingKey {
    let point = || [vec![4u8], field(&case.jwk, "x"), field(&case.jwk, "y")].concat();
    match case.alg {
        Algorithm::RS256 => RingKey::Rsa(
            field(&case.jwk, "n"),
            field(&case.jwk, "e"),
            &signature::RSA_PKCS1_2048_8192_SHA256,
        ),
        Algorithm::PS256 => RingKey::Rsa(
            field(&case.jwk, "n"),
            field(&case.jwk, "e"),
            &signature::RSA_PSS_2048_8192_SHA256,
        ),
        Algorithm::ES256 => RingKey::Unparsed(point(), &signature::ECDSA_P256_SHA256_FIXED),
        Algorithm::ES384 => RingKey::Unparsed(point(), &signature::ECDSA_P384_SHA384_FIXED),
        Algorithm::EdDSA => RingKey::Unparsed(field(&case.jwk, "x"), &signature::ED25519),
        _ => RingKey::Hmac(hmac::Key::new(hmac::HMAC_SHA256, SECRET)),
    }
}

fn ring_verify(key: &RingKey, message: &[u8], signature_bytes: &[u8]) -> bool {
    match key {
        RingKey::Rsa(n, e, parameters) => signature::RsaPublicKeyComponents { n, e }
            .verify(parameters, message, signature_bytes)
            .is_ok(),
        RingKey::Unparsed(bytes, algorithm) => signature::UnparsedPublicKey::new(*algorithm, bytes)
            .verify(message, signature_bytes)
            .is_ok(),
        RingKey::Hmac(key) => hmac::verify(key, message, signature_bytes).is_ok(),
    }
}

/// The same key through tokengate's crypto seam (the backend this build verifies with).
fn backend_key(
    case: &Case,
) -> (
    tokengate_core::crypto::PublicKey,
    tokengate_core::algorithm::Algorithm,
) {
    use tokengate_core::crypto::{Components, PublicKey};
    let algorithm = tokengate_core::algorithm::Algorithm::from_name(&format!("{:?}", case.alg))
        .expect("algorithm");
    let (n, e, x) = (
        field(&case.jwk, "n"),
        field(&case.jwk, "e"),
        field(&case.jwk, "x"),
    );
    let point = [vec![4u8], x.clone(), field(&case.jwk, "y")].concat();
    let components = match case.alg {
        Algorithm::RS256 | Algorithm::PS256 => Components::Rsa { n: &n, e: &e },
        Algorithm::ES256 | Algorithm::ES384 => Components::Ec { point: &point },
        Algorithm::EdDSA => Components::Ed25519 { public: &x },
        _ => Components::Secret { secret: SECRET },
    };
    let key = PublicKey::new(
        &components,
        tokengate_core::algorithm::AlgorithmSet::only(algorithm),
    )
    .expect("backend key");
    (key, algorithm)
}

fn validation(case: &Case) -> Validation {
    let mut validation = Validation::new(case.alg);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    validation.validate_exp = false; // its clock is the real one; the token's dates are pinned
    validation.validate_nbf = false;
    validation
}

fn main() {
    let child = std::env::var(CHILD_BACKEND).is_ok();
    let provider = if child {
        &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER
    } else {
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER
    };
    let _ = provider.install_default();
    let jwt_name = if child {
        "jsonwebtoken_rust_crypto"
    } else {
        "jsonwebtoken_aws_lc_rs"
    };
    let cases = cases();
    let validator = tenant_validator(&cases, false);
    let cached = tenant_validator(&cases, true);
    let mut criterion = Criterion::default().configure_from_args();
    for case in &cases {
        assert!(
            validator.judge_at(&case.token, "", NOW).is_valid(),
            "the {} bench token must be valid",
            case.name
        );
        assert!(cached.judge_at(&case.token, "", NOW).is_valid());
        let (message, signature_b64) = case.token.rsplit_once('.').expect("token");
        let signature_bytes = B64.decode(signature_b64).expect("signature");
        let ring = ring_key(case);
        assert!(ring_verify(&ring, message.as_bytes(), &signature_bytes));
        let (backend, algorithm) = backend_key(case);
        assert!(backend.verify(algorithm, message.as_bytes(), &signature_bytes));
        let validation = validation(case);
        let mut group = criterion.benchmark_group(case.name);
        if !child {
            group.bench_function("backend_verify", |b| {
                b.iter(|| {
                    backend.verify(
                        algorithm,
                        black_box(message.as_bytes()),
                        black_box(&signature_bytes),
                    )
                })
            });
            group.bench_function("ring_verify", |b| {
                b.iter(|| {
                    ring_verify(
                        &ring,
                        black_box(message.as_bytes()),
                        black_box(&signature_bytes),
                    )
                })
            });
            group.bench_function("tokengate_validate", |b| {
                b.iter(|| {
                    validator
                        .judge_at(black_box(&case.token), "", NOW)
                        .is_valid()
                })
            });
            group.bench_function("tokengate_validate_cached", |b| {
                b.iter(|| cached.judge_at(black_box(&case.token), "", NOW).is_valid())
            });
        }
        group.bench_function(jwt_name, |b| {
            b.iter(|| {
                jsonwebtoken::decode::<Value>(black_box(&case.token), &case.decoding, &validation)
                    .is_ok()
            })
        });
        group.finish();
    }
    criterion.final_summary();
    // In smoke mode (`cargo test --benches`) nothing was measured, so there is nothing to compare.
    if std::env::args().any(|arg| arg == "--bench") && !child {
        measure_rust_crypto_in_a_child();
        print_ratios(&cases);
    }
}

/// jsonwebtoken picks one backend per process: measure the other one in a child process with
/// the same criterion arguments, restricted to its benchmarks.
fn measure_rust_crypto_in_a_child() {
    let Ok(me) = std::env::current_exe() else {
        return;
    };
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    args.push("jsonwebtoken_rust_crypto".into());
    let status = std::process::Command::new(me)
        .args(args)
        .env(CHILD_BACKEND, "rust_crypto")
        .status();
    if !status.is_ok_and(|status| status.success()) {
        eprintln!("the jsonwebtoken rust_crypto measurement failed");
    }
}

/// Reads criterion's estimates of this run and prints tokengate against its baselines.
fn print_ratios(cases: &[Case]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/criterion");
    let median = |group: &str, bench: &str| -> Option<f64> {
        let text = std::fs::read_to_string(root.join(group).join(bench).join("new/estimates.json"))
            .ok()?;
        let value: Value = serde_json::from_str(&text).ok()?;
        value["median"]["point_estimate"].as_f64()
    };
    let us =
        |ns: Option<f64>| ns.map_or_else(|| "-".to_owned(), |ns| format!("{:.2} µs", ns / 1000.0));
    println!(
        "\n== tokengate ({} backend) vs baselines, same run, median time per token",
        tokengate_core::crypto::BACKEND
    );
    println!(
        "{:<7}{:>11}{:>11}{:>12}{:>10}{:>11}{:>12}{:>12}{:>13}",
        "",
        "backend",
        "ring",
        "tokengate",
        "× backend",
        "overhead",
        "cached",
        "jwt aws-lc",
        "jwt rustcr."
    );
    for case in cases {
        let (Some(backend), Some(full)) = (
            median(case.name, "backend_verify"),
            median(case.name, "tokengate_validate"),
        ) else {
            println!("{}: no estimates (was the group filtered out?)", case.name);
            continue;
        };
        println!(
            "{:<7}{:>11}{:>11}{:>12}{:>10.3}{:>11}{:>12}{:>12}{:>13}",
            case.name,
            us(Some(backend)),
            us(median(case.name, "ring_verify")),
            us(Some(full)),
            full / backend,
            us(Some(full - backend)),
            us(median(case.name, "tokengate_validate_cached")),
            us(median(case.name, "jsonwebtoken_aws_lc_rs")),
            us(median(case.name, "jsonwebtoken_rust_crypto")),
        );
    }
}
