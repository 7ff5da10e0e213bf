//! The verified-token cache, through the real server (hits, rotation, expiry, off switch) and
//! in-process against a registry without a cache (a hit never differs from the core's verdict).

use crate::support;

use std::time::Duration;

use serde_json::json;
use support::{Idp, TestKey, Tokengate, VerdictAt as _, claims, judge, jwks, now};
use tokengate::Config;
use tokengate::Validator;

const AUDIENCE: &str = "api://orders";

fn config(idp: &Idp, extra: &str) -> String {
    format!(
        r#"
metrics_listen: "127.0.0.1:0"
{extra}
tenants:
  - id: orders
    discovery_url: "{}"
    audiences: ["{AUDIENCE}"]
    clock_skew: 0s
    refresh: {{ interval: 1s, min_interval: 1s, unknown_kid_cooldown: 1s }}
"#,
        idp.discovery_url()
    )
}

fn cache_requests(scrape: &str, result: &str) -> f64 {
    support::series_value(
        scrape,
        "tokengate_cache_requests_total",
        &format!("result=\"{result}\""),
    )
}

#[tokio::test]
async fn a_repeated_token_is_answered_from_the_cache_with_the_same_verdict() {
    let key = TestKey::rsa_a();
    let idp = Idp::start(jwks(&[&key]), None).await;
    let server = Tokengate::start(&config(&idp, ""));
    server.wait_serving().await;
    let mut client = server.client().await;
    let token = key.sign(&claims(&idp.issuer(), AUDIENCE, now()));

    let first = judge(&mut client, &token, "").await;
    let second = judge(&mut client, &token, "").await;
    let third = judge(&mut client, &token, "").await;
    assert!(first.valid, "{first:?}");
    assert_eq!(
        first, second,
        "a hit answers exactly what the core answered"
    );
    assert_eq!(first, third);
    // Asking for the tenant by id is another key: judged once more, then cached too.
    let by_id = judge(&mut client, &token, "orders").await;
    assert_eq!(by_id, first);

    let body = server.scrape().await;
    assert_eq!(cache_requests(&body, "hit"), 2.0, "{body}");
    assert_eq!(cache_requests(&body, "miss"), 2.0, "{body}");
    assert!(body.contains("tokengate_cache_entries 2"), "{body}");
    // Every lookup still counts as a validation.
    let valid = support::series_value(
        &body,
        "tokengate_validations_total",
        r#"tenant="orders",result="valid""#,
    );
    assert_eq!(valid, 4.0);
}

#[tokio::test]
async fn a_cached_token_is_refused_once_its_key_is_rotated_out() {
    let old = TestKey::rsa_a();
    let new = TestKey::rsa_b();
    let idp = Idp::start(jwks(&[&old]), None).await;
    let server = Tokengate::start(&config(&idp, ""));
    server.wait_serving().await;
    let mut client = server.client().await;
    let token = old.sign(&claims(&idp.issuer(), AUDIENCE, now()));
    assert!(judge(&mut client, &token, "").await.valid);
    assert!(judge(&mut client, &token, "").await.valid, "cached");

    idp.set_jwks(jwks(&[&new]));
    let fetched = idp.jwks_requests();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while idp.jwks_requests() < fetched + 2 {
        assert!(tokio::time::Instant::now() < deadline, "no refresh");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = judge(&mut client, &token, "").await;
    assert!(
        !after.valid,
        "a rotated-out key's token must not be served from the cache"
    );
    assert_eq!(after.reason_code, "unknown_key", "{after:?}");
    let fresh = new.sign(&claims(&idp.issuer(), AUDIENCE, now()));
    assert!(judge(&mut client, &fresh, "").await.valid);
}

#[tokio::test]
async fn a_cached_token_still_expires_on_time() {
    let key = TestKey::rsa_a();
    let idp = Idp::start(jwks(&[&key]), None).await;
    let server = Tokengate::start(&config(&idp, ""));
    server.wait_serving().await;
    let mut client = server.client().await;
    let issued = now();
    let mut short = claims(&idp.issuer(), AUDIENCE, issued);
    short["exp"] = json!(issued + 2);
    let token = key.sign(&short);
    assert!(judge(&mut client, &token, "").await.valid);
    assert!(judge(&mut client, &token, "").await.valid, "cached");
    while now() < issued + 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let later = judge(&mut client, &token, "").await;
    assert_eq!(later.reason_code, "expired", "{later:?}");
}

#[tokio::test]
async fn the_cache_can_be_turned_off() {
    let key = TestKey::rsa_a();
    let idp = Idp::start(jwks(&[&key]), None).await;
    let server = Tokengate::start(&config(&idp, "cache: { enabled: false }"));
    server.wait_serving().await;
    let mut client = server.client().await;
    let token = key.sign(&claims(&idp.issuer(), AUDIENCE, now()));
    for _ in 0..3 {
        assert!(judge(&mut client, &token, "").await.valid);
    }
    let body = server.scrape().await;
    assert!(!body.contains("tokengate_cache_requests_total{"), "{body}");
}

/// One static-key registry with the cache and one without, for side-by-side verdicts.
fn registries(cache: &str) -> (Validator, Validator, TestKey) {
    let key = TestKey::rsa_a();
    let yaml = |cache: &str| {
        format!(
            "{cache}\ntenants:\n  - id: orders\n    issuers: [\"https://issuer.example\"]\n    audiences: [\"{AUDIENCE}\"]\n    max_lifetime: 2h\n    jwks: {}\n",
            jwks(&[&key])
        )
    };
    let parse =
        |text: String| Config::parse(&text, None, std::path::Path::new(".")).expect("config");
    let cached = Validator::for_config(&parse(yaml(cache)), support::NOW);
    let plain = Validator::for_config(&parse(yaml("cache: { enabled: false }")), support::NOW);
    (cached, plain, key)
}

#[test]
fn a_hit_never_differs_from_what_the_core_answers_at_that_time() {
    let (cached, plain, key) = registries("cache: { max_entries: 8 }");
    let base = support::NOW;
    let mut tokens = Vec::new();
    for offset in [-120, -30, 0, 30, 90, 3000] {
        // exp at base + offset + 60, nbf at base + offset: some expire, some are not valid yet.
        let mut body = claims("https://issuer.example", AUDIENCE, base + offset);
        body["exp"] = json!(base + offset + 60);
        tokens.push(key.sign(&body));
    }
    // A token with a lifetime over max_lifetime and one for another audience stay refused.
    let mut long = claims("https://issuer.example", AUDIENCE, base);
    long["exp"] = json!(base + 3 * 3600);
    tokens.push(key.sign(&long));
    tokens.push(key.sign(&claims("https://issuer.example", "api://other", base)));
    for now in (base - 200..base + 3200).step_by(7) {
        for token in &tokens {
            for tenant in ["", "orders"] {
                let hit = cached.validate(token, tenant, now);
                let core = plain.validate(token, tenant, now);
                assert_eq!(
                    hit.to_json(),
                    core.to_json(),
                    "at {now} for tenant {tenant:?}"
                );
            }
        }
    }
}

#[test]
fn the_cache_is_bounded_by_entries() {
    let (cached, _, key) = registries("cache: { max_entries: 16 }");
    for n in 0..200 {
        let mut body = claims("https://issuer.example", AUDIENCE, support::NOW);
        body["sub"] = json!(format!("user-{n}"));
        assert!(cached.validate(&key.sign(&body), "", support::NOW).valid);
    }
    let held = cached.cache_len();
    assert!((1..=16).contains(&held), "{held} entries held");
}

#[test]
fn the_cache_is_bounded_by_bytes() {
    let (cached, _, key) = registries("cache: { max_entries: 100000, max_bytes: 64KiB }");
    for n in 0..400 {
        let mut body = claims("https://issuer.example", AUDIENCE, support::NOW);
        body["pad"] = json!("x".repeat(1000));
        body["sub"] = json!(format!("user-{n}"));
        assert!(cached.validate(&key.sign(&body), "", support::NOW).valid);
    }
    let held = cached.cache_len();
    assert!(
        held > 0 && held * 1000 <= 64 * 1024,
        "{held} entries of over 1000 bytes held under a 64 KiB bound"
    );
}

#[test]
fn bad_cache_settings_name_their_line() {
    let yaml = "cache:\n  max_entries: 0\n  max_bytes: 64MB\n  max_ttl: 0s\ntenants:\n  - id: t\n    issuers: [\"https://i\"]\n    jwks: { keys: [] }\n";
    let errors = Config::parse(yaml, None, std::path::Path::new("."))
        .expect_err("three bad values")
        .to_string();
    for expected in [
        "line 2: cache.max_entries",
        "line 3: cache.max_bytes",
        "line 4: cache.max_ttl",
    ] {
        assert!(errors.contains(expected), "{expected:?} in {errors}");
    }
}
