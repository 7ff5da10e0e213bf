//! Properties that must hold for any input: no panic, and no accepted forgery.

use crate::support;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use proptest::prelude::*;
use serde_json::json;
use support::{NOW, TestKey, VerdictAt as _};
use tokengate::Config;
use tokengate::Validator;
use tokengate_core::json::JsonObject;
use tokengate_core::keyset::{KeyOptions, KeySet};
use tokengate_core::token::{DecodedToken, Limits};

const ISSUER: &str = "https://issuer.example";

fn registry(key: &TestKey) -> Validator {
    let yaml = format!(
        "tenants:\n  - id: t\n    issuers: [\"{ISSUER}\"]\n    jwks: {}\n",
        support::jwks(&[key])
    );
    Validator::for_config(
        &Config::parse(&yaml, None, std::path::Path::new(".")).expect("config"),
        NOW,
    )
}

/// Strings built from the characters tokens are made of, plus a few that must never appear.
fn token_like() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[A-Za-z0-9_\\-.=+/ ]{0,300}").expect("regex")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoding_arbitrary_text_never_panics(text in any::<String>()) {
        if let Ok(decoded) = DecodedToken::decode(&text, &Limits::default()) {
            let _ = decoded.parse();
        }
    }

    #[test]
    fn decoding_token_shaped_text_never_panics(text in token_like()) {
        if let Ok(decoded) = DecodedToken::decode(&text, &Limits::default()) {
            let _ = decoded.parse();
        }
    }

    #[test]
    fn strict_json_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = JsonObject::parse(&bytes, 8);
    }

    #[test]
    fn jwks_parsing_never_panics(keys in proptest::collection::vec(any::<String>(), 0..4)) {
        let document = json!({ "keys": keys.iter().map(|text| json!({"kty": "RSA", "n": text, "e": text, "kid": text})).collect::<Vec<_>>() });
        let _ = KeySet::from_jwks(document.to_string().as_bytes(), &KeyOptions::default());
    }

    #[test]
    fn headers_and_payloads_of_any_json_never_panic(header in any::<String>(), payload in any::<String>()) {
        let token = format!("{}.{}.{}", B64.encode(&header), B64.encode(&payload), B64.encode("sig"));
        if let Ok(decoded) = DecodedToken::decode(&token, &Limits::default()) {
            let _ = decoded.parse();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Changing any single character of a valid token never yields another valid token,
    /// except where base64url's last character carries unused bits (decoders reject those).
    #[test]
    fn any_single_character_change_is_rejected(position in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9_\\-.]") {
        let key = TestKey::es256();
        let registry = registry(&key);
        let token = key.sign(&json!({"iss": ISSUER, "sub": "s", "exp": NOW + 60}));
        prop_assert!(registry.validate(&token, "", NOW).valid);
        let index = position.index(token.len());
        let mut changed = token.clone();
        changed.replace_range(index..=index, &replacement);
        prop_assume!(changed != token);
        let verdict = registry.validate(&changed, "", NOW);
        prop_assert!(!verdict.valid, "accepted a modified token at {index}: {verdict:?}");
    }
}
