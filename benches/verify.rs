//! Full tokengate validation beside the raw `ring` verification of the same signature, and beside
//! jsonwebtoken's `decode` (another library doing the same job), measured in the same run.
//!
//! The printed "overhead" is everything that is not cryptography: decoding, strict JSON, tenant
//! choice, key lookup, claim checks and building the verdict. Run with
//! `cargo bench --bench verify` (add `-- --quick` for a faster, noisier run).

use std::hint::black_box;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use criterion::Criterion;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature;
use serde_json::{Value, json};
use tokengate::config::Config;
use tokengate::tenant::Registry;

const NOW: i64 = 1_800_000_000;
const ISSUER: &str = "https://login.example.com/tenant/v2.0";
const AUDIENCE: &str = "api://orders";

struct Case {
    name: &'static str,
    alg: Algorithm,
    token: String,
    jwk: Value,
    decoding: DecodingKey,
}

fn case(name: &'static str, file: &str, alg: Algorithm) -> Case {
    let pem = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(file),
    )
    .expect("fixture");
    let (encoding, decoding) = match alg {
        Algorithm::RS256 => (
            EncodingKey::from_rsa_pem(&pem).expect("rsa"),
            None::<DecodingKey>,
        ),
        _ => (EncodingKey::from_ec_pem(&pem).expect("ec"), None),
    };
    let _ = decoding;
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&encoding, alg).expect("jwk")).expect("json");
    jwk["kid"] = json!(name);
    jwk["use"] = json!("sig");
    let decoding = DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).expect("jwk"))
        .expect("decoding key");
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

fn registry(cases: &[Case]) -> Registry {
    let keys: Vec<&Value> = cases.iter().map(|case| &case.jwk).collect();
    let yaml = format!(
        "tenants:\n  - id: bench\n    issuers: [\"{ISSUER}\"]\n    audiences: [\"{AUDIENCE}\"]\n    algorithms: [RS256, ES256]\n    required_claims:\n      - {{ claim: scp, values: [orders.read], separator: \" \" }}\n    jwks: {}\n",
        json!({ "keys": keys })
    );
    let config = Config::parse(&yaml, None, Path::new(".")).expect("config");
    Registry::new(&config, NOW)
}

/// The raw ring verification tokengate performs for this token, and nothing else.
fn ring_verify(case: &Case, message: &[u8], signature_bytes: &[u8]) -> bool {
    let field = |name: &str| {
        B64.decode(case.jwk[name].as_str().unwrap_or_default())
            .unwrap_or_default()
    };
    match case.alg {
        Algorithm::RS256 => {
            let (n, e) = (field("n"), field("e"));
            signature::RsaPublicKeyComponents { n: &n, e: &e }
                .verify(
                    &signature::RSA_PKCS1_2048_8192_SHA256,
                    message,
                    signature_bytes,
                )
                .is_ok()
        }
        _ => {
            let mut point = vec![4u8];
            point.extend(field("x"));
            point.extend(field("y"));
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point)
                .verify(message, signature_bytes)
                .is_ok()
        }
    }
}

fn main() {
    let cases = [
        case("rs256", "rsa2048-a.pem", Algorithm::RS256),
        case("es256", "ec-p256.pem", Algorithm::ES256),
    ];
    let registry = registry(&cases);
    let mut criterion = Criterion::default().configure_from_args();
    for case in &cases {
        assert!(
            registry.validate(&case.token, "", NOW).valid,
            "the bench token must be valid"
        );
        let (message, signature_b64) = case.token.rsplit_once('.').expect("token");
        let signature_bytes = B64.decode(signature_b64).expect("signature");
        // Decoded key material, prepared once like tokengate's key set does at load time.
        assert!(ring_verify(case, message.as_bytes(), &signature_bytes));
        let field = |name: &str| {
            B64.decode(case.jwk[name].as_str().unwrap_or_default())
                .unwrap_or_default()
        };
        let (n, e, point) = (field("n"), field("e"), {
            let mut point = vec![4u8];
            point.extend(field("x"));
            point.extend(field("y"));
            point
        });
        let mut validation = Validation::new(case.alg);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.validate_exp = false; // its clock is the real one; the token's dates are pinned
        validation.validate_nbf = false;
        let mut group = criterion.benchmark_group(case.name);
        group.bench_function("ring_verify", |b| {
            b.iter(|| match case.alg {
                Algorithm::RS256 => signature::RsaPublicKeyComponents { n: &n, e: &e }
                    .verify(
                        &signature::RSA_PKCS1_2048_8192_SHA256,
                        black_box(message.as_bytes()),
                        black_box(&signature_bytes),
                    )
                    .is_ok(),
                _ => signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point)
                    .verify(black_box(message.as_bytes()), black_box(&signature_bytes))
                    .is_ok(),
            })
        });
        group.bench_function("tokengate_decode_parse", |b| {
            b.iter(|| {
                let decoded = tokengate::token::DecodedToken::decode(
                    black_box(&case.token),
                    &tokengate::token::Limits::default(),
                )
                .expect("decode");
                decoded.parse().map(|parsed| parsed.claims.exp).ok()
            })
        });
        group.bench_function("tokengate_validate", |b| {
            b.iter(|| registry.validate(black_box(&case.token), "", NOW).valid)
        });
        group.bench_function("jsonwebtoken_decode", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<Value>(black_box(&case.token), &case.decoding, &validation)
                    .is_ok()
            })
        });
        group.finish();
    }
    criterion.final_summary();
    // In smoke mode (`cargo test --benches`) nothing was measured, so there is nothing to compare.
    if std::env::args().any(|arg| arg == "--bench") {
        print_ratios(&cases);
    }
}

/// Reads criterion's estimates of this run and prints tokengate against its baselines.
fn print_ratios(cases: &[Case]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/criterion");
    let mean = |group: &str, bench: &str| -> Option<f64> {
        let text = std::fs::read_to_string(root.join(group).join(bench).join("new/estimates.json"))
            .ok()?;
        let value: Value = serde_json::from_str(&text).ok()?;
        value["median"]["point_estimate"].as_f64()
    };
    println!("\n== tokengate vs baselines (same run, median time per token)");
    for case in cases {
        let (Some(ring), Some(full), Some(jwt)) = (
            mean(case.name, "ring_verify"),
            mean(case.name, "tokengate_validate"),
            mean(case.name, "jsonwebtoken_decode"),
        ) else {
            println!("{}: no estimates (was the group filtered out?)", case.name);
            continue;
        };
        println!(
            "{}: ring {:.2} µs | tokengate {:.2} µs (x{:.3} of ring, overhead {:.2} µs) | jsonwebtoken {:.2} µs (tokengate is x{:.2} faster)",
            case.name,
            ring / 1000.0,
            full / 1000.0,
            full / ring,
            (full - ring) / 1000.0,
            jwt / 1000.0,
            jwt / full
        );
    }
}
