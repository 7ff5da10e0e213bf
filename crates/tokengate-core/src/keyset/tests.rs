//! Key sets on their own: a bad key is skipped with a reason and never takes the others down;
//! a bad document is refused as a whole; algorithms are bound at load.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::*;

fn secret(kid: &str, alg: &str) -> Value {
    json!({"kty": "oct", "kid": kid, "alg": alg, "k": URL_SAFE_NO_PAD.encode([7u8; 32])})
}

fn hmac_options() -> KeyOptions {
    KeyOptions::for_allow_list(Some(AlgorithmSet::family(KeyFamily::Symmetric)), true)
}

fn load(keys: &[Value], options: &KeyOptions) -> KeySet {
    KeySet::from_jwks(json!({ "keys": keys }).to_string().as_bytes(), options).expect("a JWKS")
}

#[test]
fn a_bad_key_is_skipped_with_its_reason_and_the_rest_load() {
    let broken = json!({"kty": "oct", "kid": "broken", "alg": "HS256"});
    let encryption = json!({
        "kty": "oct", "kid": "enc", "alg": "HS256", "use": "enc",
        "k": URL_SAFE_NO_PAD.encode([7u8; 32])
    });
    let set = load(
        &[secret("good", "HS256"), broken, encryption],
        &hmac_options(),
    );
    assert_eq!(set.len(), 1);
    assert!(set.get("good").is_some());
    let skipped: Vec<&str> = set
        .skipped()
        .iter()
        .filter_map(|s| s.kid.as_deref())
        .collect();
    assert_eq!(skipped, ["broken", "enc"]);
    assert!(
        set.skipped()
            .iter()
            .all(|skipped| !skipped.reason.is_empty()),
        "{:?}",
        set.skipped()
    );
}

#[test]
fn shared_secrets_load_only_from_the_operators_own_configuration() {
    let remote = KeyOptions::for_allow_list(None, false);
    let set = load(&[secret("s", "HS256")], &remote);
    assert!(set.is_empty());
    assert_eq!(set.skipped().len(), 1);
    assert_eq!(load(&[secret("s", "HS256")], &hmac_options()).len(), 1);
}

#[test]
fn keys_are_bound_to_their_alg_and_the_allow_list() {
    let set = load(
        &[secret("a", "HS256"), secret("b", "HS512")],
        &hmac_options(),
    );
    assert_eq!(
        set.get("a").map(VerifyingKey::algorithms),
        Some(AlgorithmSet::only(Algorithm::HS256))
    );
    let only_256 = KeyOptions::for_allow_list(Some(AlgorithmSet::only(Algorithm::HS256)), true);
    let set = load(&[secret("a", "HS256"), secret("b", "HS512")], &only_256);
    assert!(set.get("a").is_some() && set.get("b").is_none());
    assert_eq!(set.algorithms(), AlgorithmSet::only(Algorithm::HS256));
}

#[test]
fn documents_that_are_not_a_key_set_are_refused_whole() {
    let options = hmac_options();
    assert_eq!(
        KeySet::from_jwks(br#"{"keys": 1}"#, &options).err(),
        Some(JwksError::NoKeys)
    );
    assert_eq!(
        KeySet::from_jwks(br#"{"other": []}"#, &options).err(),
        Some(JwksError::NoKeys)
    );
    assert!(matches!(
        KeySet::from_jwks(br#"{"keys": [], "keys": []}"#, &options),
        Err(JwksError::Json(_))
    ));
    let huge = vec![b' '; MAX_JWKS_SIZE + 1];
    assert!(matches!(
        KeySet::from_jwks(&huge, &options),
        Err(JwksError::TooLarge(_))
    ));
}

#[test]
fn rsa_keys_without_alg_take_the_allow_lists_rsa_algorithms() {
    let listed = KeyOptions::for_allow_list(
        Some([Algorithm::PS256, Algorithm::ES256].into_iter().collect()),
        false,
    );
    assert_eq!(listed.rsa_default, AlgorithmSet::only(Algorithm::PS256));
    let default = KeyOptions::for_allow_list(None, false);
    assert_eq!(default.rsa_default, AlgorithmSet::only(Algorithm::RS256));
    assert!(!default.allowed.contains(Algorithm::HS256));
}

#[test]
fn ed25519_keys_of_small_order_are_skipped() {
    let okp = |x: &[u8]| json!({"kty": "OKP", "crv": "Ed25519", "kid": "weak", "x": URL_SAFE_NO_PAD.encode(x)});
    let options = KeyOptions::for_allow_list(None, false);
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut order_two = [0xffu8; 32];
    order_two[0] = 0xec;
    order_two[31] = 0x7f;
    for weak in [identity, [0u8; 32], order_two] {
        let set = load(&[okp(&weak)], &options);
        assert!(set.is_empty(), "{weak:?} loaded");
        assert!(set.skipped()[0].reason.contains("small order"));
    }
    // The same points with the sign bit set are caught too.
    let mut signed = identity;
    signed[31] |= 0x80;
    assert!(crate::crypto::is_small_order_ed25519(&signed));
    // RFC 8037 A.2's public key loads.
    let rfc = URL_SAFE_NO_PAD
        .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
        .expect("base64");
    assert!(!crate::crypto::is_small_order_ed25519(&rfc));
    assert_eq!(load(&[okp(&rfc)], &options).len(), 1);
}

#[test]
fn ec_points_off_their_curve_are_skipped() {
    // x = 1, y = 1 is not on P-256 (nor is any point whose y is off by one).
    let mut x = [0u8; 32];
    x[31] = 1;
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": "off", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(x)
    });
    let set = load(&[jwk], &KeyOptions::for_allow_list(None, false));
    assert!(set.is_empty(), "an off-curve key loaded");
    assert_eq!(set.skipped().len(), 1);
}
