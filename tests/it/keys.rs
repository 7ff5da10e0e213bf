//! Key sets: every unusable key is skipped with a reason, and never takes the others down.

use crate::support;

use jsonwebtoken::Algorithm as JwtAlgorithm;
use serde_json::{Value, json};
use support::TestKey;
use tokengate_core::algorithm::{Algorithm, AlgorithmSet};
use tokengate_core::keyset::{JwksError, KeyOptions, KeySet};

fn load(keys: Vec<Value>, options: &KeyOptions) -> KeySet {
    KeySet::from_jwks(json!({ "keys": keys }).to_string().as_bytes(), options).expect("a JWKS")
}

fn edited(mut jwk: Value, name: &str, value: Value) -> Value {
    jwk[name] = value;
    jwk
}

#[test]
fn bad_keys_are_skipped_with_a_reason_and_good_ones_kept() {
    let rsa = TestKey::rsa_a().jwk();
    let ec = TestKey::es256().jwk();
    let weak = TestKey::load("rsa1024.pem", JwtAlgorithm::RS256, "weak").jwk();
    let cases: Vec<(Value, &str)> = vec![
        (weak, "1024 bits"),
        (edited(rsa.clone(), "e", json!("AQ")), "exponent"),
        (edited(rsa.clone(), "e", json!("AQAA")), "exponent"),
        (edited(rsa.clone(), "n", json!("")), "0 bits"),
        (edited(rsa.clone(), "n", json!("not base64!")), "base64url"),
        (
            edited(rsa.clone(), "use", json!("enc")),
            "\"use\" is \"enc\"",
        ),
        (
            edited(rsa.clone(), "key_ops", json!(["encrypt"])),
            "key_ops",
        ),
        (edited(rsa.clone(), "alg", json!("ES256")), "does not fit"),
        (
            edited(rsa.clone(), "alg", json!("RSA-OAEP")),
            "unsupported \"alg\"",
        ),
        (edited(ec.clone(), "crv", json!("P-521")), "curve"),
        (edited(ec.clone(), "x", json!("AAAA")), "32 bytes"),
        (
            edited(ec.clone(), "kty", json!("XYZ")),
            "unsupported \"kty\"",
        ),
        (
            json!({"kty": "oct", "k": "c2VjcmV0", "kid": "s"}),
            "shared-secret",
        ),
        (json!({"kid": "nokty"}), "no \"kty\""),
        (json!({"kty": "RSA", "kid": 7}), "wrong type"),
        (
            json!({"kty": "EC", "crv": "P-256", "kid": "dup", "kid ": 1, "x": 1}),
            "wrong type",
        ),
    ];
    for (index, (bad, reason)) in cases.into_iter().enumerate() {
        let mut bad = bad;
        if bad.get("kid").is_some_and(Value::is_string) {
            bad["kid"] = json!(format!("bad-{index}"));
        }
        let set = load(
            vec![bad.clone(), TestKey::ed25519().jwk()],
            &KeyOptions::default(),
        );
        assert_eq!(set.len(), 1, "the good key stays: {bad}");
        assert!(set.get("ed-1").is_some());
        assert_eq!(set.skipped().len(), 1, "{bad}");
        let skipped = &set.skipped()[0].reason;
        assert!(
            skipped.contains(reason),
            "{bad}: expected {reason:?} in {skipped:?}"
        );
    }
}

#[test]
fn keys_are_bound_to_algorithms_at_load_time() {
    let options = KeyOptions::default();
    let mut no_alg = TestKey::rsa_a().jwk();
    no_alg.as_object_mut().expect("object").remove("alg");
    let mut ec_no_alg = TestKey::es384().jwk();
    ec_no_alg.as_object_mut().expect("object").remove("alg");
    let set = load(vec![no_alg, ec_no_alg, TestKey::ed25519().jwk()], &options);
    assert_eq!(
        set.get("rsa-a").map(|k| k.algorithms()),
        Some(AlgorithmSet::only(Algorithm::RS256))
    );
    assert_eq!(
        set.get("ec-384").map(|k| k.algorithms()),
        Some(AlgorithmSet::only(Algorithm::ES384))
    );
    assert_eq!(
        set.get("ed-1").map(|k| k.algorithms()),
        Some(AlgorithmSet::only(Algorithm::EdDSA))
    );

    // A tenant allowing only PS256 binds an alg-less RSA key to PS256.
    let ps_only = KeyOptions {
        allowed: AlgorithmSet::only(Algorithm::PS256),
        rsa_default: AlgorithmSet::only(Algorithm::PS256),
        allow_symmetric: false,
    };
    let mut no_alg = TestKey::rsa_a().jwk();
    no_alg.as_object_mut().expect("object").remove("alg");
    let set = load(vec![no_alg, TestKey::rsa_b().jwk()], &ps_only);
    assert_eq!(
        set.get("rsa-a").map(|k| k.algorithms()),
        Some(AlgorithmSet::only(Algorithm::PS256))
    );
    assert!(
        set.get("rsa-b").is_none(),
        "an RS256 key is not usable where only PS256 is allowed"
    );
}

#[test]
fn ambiguous_kids_and_short_secrets_are_refused() {
    let a = TestKey::rsa_a().jwk();
    let mut b = TestKey::rsa_b().jwk();
    b["kid"] = a["kid"].clone();
    let set = load(vec![a, b, TestKey::es256().jwk()], &KeyOptions::default());
    assert!(
        set.get("rsa-a").is_none(),
        "two keys share the kid: neither is trusted"
    );
    assert_eq!(set.len(), 1);
    assert!(
        set.skipped()
            .iter()
            .any(|skipped| skipped.reason.contains("share this kid"))
    );

    let symmetric = KeyOptions {
        allowed: AlgorithmSet::only(Algorithm::HS256),
        allow_symmetric: true,
        ..KeyOptions::default()
    };
    let short = json!({"kty": "oct", "kid": "short", "alg": "HS256", "k": "c2hvcnQ"});
    let empty = json!({"kty": "oct", "kid": "empty", "alg": "HS256", "k": ""});
    let set = load(vec![short, empty], &symmetric);
    assert!(set.is_empty());
    assert!(
        set.skipped()[0].reason.contains("at least 32"),
        "{:?}",
        set.skipped()
    );
    assert!(
        set.skipped()[1].reason.contains("empty"),
        "{:?}",
        set.skipped()
    );
}

#[test]
fn documents_that_are_not_key_sets_are_refused_whole() {
    let options = KeyOptions::default();
    assert!(matches!(
        KeySet::from_jwks(b"[]", &options),
        Err(JwksError::Json(_))
    ));
    assert!(matches!(
        KeySet::from_jwks(b"{}", &options),
        Err(JwksError::NoKeys)
    ));
    assert!(matches!(
        KeySet::from_jwks(br#"{"keys":{}}"#, &options),
        Err(JwksError::NoKeys)
    ));
    assert!(matches!(
        KeySet::from_jwks(br#"{"keys":[],"keys":[]}"#, &options),
        Err(JwksError::Json(_))
    ));
    let huge = vec![b' '; 600 * 1024];
    assert!(matches!(
        KeySet::from_jwks(&huge, &options),
        Err(JwksError::TooLarge(_))
    ));
}

#[test]
fn rsa_members_with_leading_zero_bytes_still_verify() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let key = TestKey::rsa_a();
    let mut jwk = key.jwk();
    for member in ["n", "e"] {
        let mut bytes = vec![0u8];
        bytes.extend(
            B64.decode(jwk[member].as_str().expect("member"))
                .expect("base64"),
        );
        jwk[member] = json!(B64.encode(bytes));
    }
    let set = load(vec![jwk.clone()], &KeyOptions::default());
    let loaded = set.get("rsa-a").expect("the padded key loads");
    let token = key.sign(&json!({"sub": "s"}));
    let (input, signature) = token.rsplit_once('.').expect("token");
    let signature = B64.decode(signature).expect("signature");
    assert!(loaded.verify(Algorithm::RS256, input.as_bytes(), &signature));

    let mut even = jwk;
    let mut n = B64.decode(even["n"].as_str().expect("n")).expect("n");
    if let Some(last) = n.last_mut() {
        *last &= 0xfe;
    }
    even["n"] = json!(B64.encode(n));
    let set = load(vec![even], &KeyOptions::default());
    assert!(set.is_empty());
    assert!(
        set.skipped()[0].reason.contains("even"),
        "{:?}",
        set.skipped()
    );
}
