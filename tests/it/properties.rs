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
    tenant_with(key, "")
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

/// A validator for one tenant of `key` with the given extra tenant fields (e.g. `clock_skew`).
fn tenant_with(key: &TestKey, fields: &str) -> Validator {
    let yaml = format!(
        "tenants:\n  - id: t\n    issuers: [\"{ISSUER}\"]\n{fields}    jwks: {}\n",
        support::jwks(&[key])
    );
    Validator::for_config(
        &Config::parse(&yaml, None, std::path::Path::new(".")).expect("config"),
        NOW,
    )
}

/// The documented time rules (README, tenant fields `clock_skew` and `max_lifetime`), written
/// from the documentation rather than from the code: the reason code a token must get.
fn time_rule(
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    now: i64,
    skew: i64,
    max_lifetime: Option<i64>,
) -> &'static str {
    let Some(exp) = exp else {
        return "missing_claim";
    };
    if now >= exp + skew {
        return "expired";
    }
    if nbf.is_some_and(|nbf| nbf > now + skew) || iat.is_some_and(|iat| iat > now + skew) {
        return "not_yet_valid";
    }
    if max_lifetime.is_some_and(|max| exp - iat.unwrap_or(now) > max) {
        return "lifetime_too_long";
    }
    "valid"
}

/// A GUID in the 8-4-4-4-12 form, from 16 bytes.
fn guid(bytes: [u8; 16]) -> String {
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The reason of a payload checked by `policy` (the signature is not looked at).
fn policy_verdict(
    policy: &tokengate_core::policy::Policy,
    payload: &serde_json::Value,
) -> Result<(), tokengate_core::Reason> {
    let token = format!(
        "{}.{}.c2ln",
        B64.encode(br#"{"alg":"ES256"}"#),
        B64.encode(payload.to_string())
    );
    let decoded = DecodedToken::decode(&token, &Limits::default()).map_err(|r| r.reason)?;
    let parsed = decoded.parse().map_err(|r| r.reason)?;
    policy
        .check_claims(&parsed.claims, NOW)
        .map_err(|rejection| rejection.reason)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `exp`, `nbf`, `iat`, the clock skew and `max_lifetime` give exactly the documented
    /// verdict, for signed tokens through the whole validator.
    #[test]
    fn time_windows_follow_the_documented_rules(
        exp in proptest::option::weighted(0.9, -4000i64..8000),
        nbf in proptest::option::of(-4000i64..4000),
        iat in proptest::option::of(-4000i64..4000),
        skew in 0i64..600,
        max_lifetime in proptest::option::of(60i64..7200),
        near in proptest::collection::vec(any::<bool>(), 4),
    ) {
        // Half the time a value sits within 2 s of the boundary it is judged against.
        let close = |raw: i64| raw % 3;
        let iat = iat.map(|raw| if near[2] { skew + close(raw) } else { raw });
        let nbf = nbf.map(|raw| if near[1] { skew + close(raw) } else { raw });
        let exp = exp.map(|raw| match max_lifetime {
            Some(max) if near[3] => iat.unwrap_or(0) + max + close(raw),
            _ if near[0] => close(raw) - skew,
            _ => raw,
        });
        let key = TestKey::es256();
        let mut fields = format!("    audiences: [\"api\"]\n    clock_skew: {skew}s\n");
        if let Some(max) = max_lifetime {
            fields.push_str(&format!("    max_lifetime: {max}s\n"));
        }
        let validator = tenant_with(&key, &fields);
        let mut claims = json!({"iss": ISSUER, "aud": "api", "sub": "s"});
        for (name, offset) in [("exp", exp), ("nbf", nbf), ("iat", iat)] {
            if let Some(offset) = offset {
                claims[name] = json!(NOW + offset);
            }
        }
        let verdict = validator.validate(&key.sign(&claims), "", NOW);
        let expected = time_rule(
            exp.map(|e| NOW + e), nbf.map(|n| NOW + n), iat.map(|i| NOW + i), NOW, skew,
            max_lifetime,
        );
        let got = verdict.reason.map_or("valid", |reason| reason.code());
        prop_assert_eq!(got, expected, "{:?}", verdict.to_json());
    }

    /// A `{tenantid}` issuer matches exactly the issuer built from the token's own GUID `tid`
    /// (in any letter case), and nothing built from another tenant id or without a GUID.
    #[test]
    fn issuer_templates_match_only_their_own_tenant_id(
        own in any::<[u8; 16]>(),
        other in any::<[u8; 16]>(),
        upper in any::<bool>(),
        suffix in "[a-z0-9/]{0,6}",
    ) {
        use tokengate_core::issuer::IssuerPattern;
        let template = IssuerPattern::new("https://login.microsoftonline.com/{tenantid}/v2.0");
        let tid = guid(own);
        let written = if upper { tid.to_uppercase() } else { tid.clone() };
        let issuer = format!("https://login.microsoftonline.com/{written}/v2.0");
        prop_assert!(template.matches(&issuer, Some(&tid)));
        prop_assert!(!template.matches(&issuer, None));
        let longer = format!("{issuer}{suffix}x");
        prop_assert!(!template.matches(&longer, Some(&tid)));
        if own != other {
            prop_assert!(!template.matches(&issuer, Some(&guid(other))));
        }
        // A tid that is not a GUID never matches, even when the issuer is built from it.
        let short = &tid[..35];
        let built = format!("https://login.microsoftonline.com/{short}/v2.0");
        prop_assert!(!template.matches(&built, Some(short)));
    }

    /// A required claim matches by set rules: with `any`, some wanted value is among the
    /// token's (split string parts or array items, compared by JSON type); with `all`, every one.
    #[test]
    fn required_claims_match_parts_and_items_as_sets(
        held in proptest::collection::vec(0usize..6, 0..6),
        wanted in proptest::collection::vec(0usize..6, 1..4),
        all in any::<bool>(),
        as_array in any::<bool>(),
        separator in prop::sample::select(vec![" ", ",", ";"]),
        doubled in any::<bool>(),
    ) {
        use tokengate_core::policy::{ClaimValue, MatchMode, Policy, RequiredClaim};
        let words = ["read", "write", "admin", "orders.read", "1", "true"];
        let claim = if as_array {
            json!(held.iter().map(|&index| words[index]).collect::<Vec<_>>())
        } else {
            let glue = if doubled { separator.repeat(2) } else { separator.to_owned() };
            json!(held.iter().map(|&index| words[index]).collect::<Vec<_>>().join(&glue))
        };
        let policy = Policy {
            required_claims: vec![RequiredClaim {
                claim: "scp".to_owned(),
                values: wanted.iter().map(|&index| ClaimValue::String(words[index].to_owned())).collect(),
                mode: if all { MatchMode::All } else { MatchMode::Any },
                separator: Some(separator.to_owned()),
            }],
            ..Policy::default()
        };
        let mut payload = json!({"exp": NOW + 60});
        payload["scp"] = claim;
        let has = |index: &usize| held.contains(index);
        let expected = if all { wanted.iter().all(has) } else { wanted.iter().any(has) };
        let got = policy_verdict(&policy, &payload);
        if expected {
            prop_assert_eq!(got, Ok(()));
        } else {
            prop_assert_eq!(got, Err(tokengate_core::Reason::ClaimMismatch));
        }
        // Typed: the number 1 and the boolean true never match the strings "1" and "true".
        let typed = Policy {
            required_claims: vec![RequiredClaim {
                claim: "scp".to_owned(),
                values: vec![ClaimValue::Number(1.into()), ClaimValue::Bool(true)],
                mode: MatchMode::Any,
                separator: Some(separator.to_owned()),
            }],
            ..Policy::default()
        };
        prop_assert_eq!(policy_verdict(&typed, &payload), Err(tokengate_core::Reason::ClaimMismatch));
    }

    /// Segments round-trip through base64url; a segment with padding, with the standard
    /// alphabet's `+` or `/`, or with unused trailing bits set is malformed.
    #[test]
    fn base64url_round_trips_and_only_the_canonical_form_is_accepted(
        value in any::<String>(),
        bit in 0u8..4,
    ) {
        let payload = json!({"exp": NOW + 60, "x": value}).to_string();
        let segment = B64.encode(&payload);
        let token = format!("{}.{segment}.c2ln", B64.encode(br#"{"alg":"ES256"}"#));
        let decoded = DecodedToken::decode(&token, &Limits::default()).expect("canonical");
        let parsed = decoded.parse().expect("parses");
        let raw = parsed.claims.raw("x").expect("x").get();
        prop_assert_eq!(serde_json::from_str::<String>(raw).expect("a string"), value);

        let malformed = |segment: &str| {
            let token = format!("{}.{segment}.c2ln", B64.encode(br#"{"alg":"ES256"}"#));
            DecodedToken::decode(&token, &Limits::default()).map(|_| ()).map_err(|r| r.reason)
        };
        let bad = Err(tokengate_core::Reason::Malformed);
        if !segment.len().is_multiple_of(4) {
            prop_assert_eq!(malformed(&format!("{segment}=")), bad);
            // The last character carries 2 (length % 4 == 3) or 4 (== 2) unused bits.
            let unused = if segment.len() % 4 == 3 { 2 } else { 4 };
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let last = segment.as_bytes()[segment.len() - 1];
            let position = alphabet.iter().position(|&c| c == last).expect("base64url");
            let flipped = alphabet[position ^ (1 << (bit % unused))] as char;
            let changed = format!("{}{flipped}", &segment[..segment.len() - 1]);
            prop_assert_eq!(malformed(&changed), bad, "{} -> {}", segment, changed);
        }
        if segment.contains('-') {
            prop_assert_eq!(malformed(&segment.replace('-', "+")), bad);
        }
        if segment.contains('_') {
            prop_assert_eq!(malformed(&segment.replace('_', "/")), bad);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The verified-token cache never answers what the core would not answer now: random
    /// tokens (some expiring, some not valid yet, some too long-lived) asked in a random order
    /// at random, increasing times, with and without the tenant named.
    #[test]
    fn a_cache_hit_never_differs_from_the_core_now(
        windows in proptest::collection::vec((-300i64..300, 1i64..400, any::<bool>()), 1..6),
        asks in proptest::collection::vec((any::<prop::sample::Index>(), 0i64..120, any::<bool>()), 1..60),
    ) {
        let key = TestKey::es256();
        let fields = "    max_lifetime: 300s\n    clock_skew: 10s\n";
        let yaml = |cache: &str| format!(
            "{cache}\ntenants:\n  - id: t\n    issuers: [\"{ISSUER}\"]\n    audiences: [\"api\"]\n{fields}    jwks: {}\n",
            support::jwks(&[&key])
        );
        let parse = |text: String| Config::parse(&text, None, std::path::Path::new(".")).expect("config");
        let cached = Validator::for_config(&parse(yaml("cache: { max_entries: 4 }")), NOW);
        let plain = Validator::for_config(&parse(yaml("cache: { enabled: false }")), NOW);
        let tokens: Vec<String> = windows
            .iter()
            .map(|&(start, lifetime, with_nbf)| {
                let mut claims = json!({"iss": ISSUER, "aud": "api", "sub": "s",
                                        "iat": NOW + start, "exp": NOW + start + lifetime});
                if with_nbf {
                    claims["nbf"] = json!(NOW + start);
                }
                key.sign(&claims)
            })
            .collect();
        let mut now = NOW - 300;
        for (pick, step, named) in asks {
            now += step;
            let token = &tokens[pick.index(tokens.len())];
            let tenant = if named { "t" } else { "" };
            let hit = cached.validate(token, tenant, now);
            let core = plain.validate(token, tenant, now);
            prop_assert_eq!(hit.to_json(), core.to_json(), "at {}", now);
        }
    }
}
