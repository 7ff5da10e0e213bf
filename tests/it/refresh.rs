//! Keys that stay fresh: rotation, provider outages and slowness, bad documents, unknown-kid
//! floods, and configuration reloads, against a real loopback identity provider that the test
//! controls and the real binary.

use crate::support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use serde_json::json;
use support::{Idp, InProcess, TestKey, Tokengate, claims, jwks, now};
use tokengate::pb;
use tokengate::pb::token_validator_client::TokenValidatorClient;
use tonic::transport::Channel;

const AUDIENCE: &str = "api://orders";

fn config(idp: &Idp, refresh: &str) -> String {
    format!(
        r#"
refresh:
  min_interval: 1s
  max_interval: 1h
  max_retry_interval: 1s
{refresh}
tenants:
  - id: orders
    discovery_url: "{}"
    audiences: ["{AUDIENCE}"]
"#,
        idp.discovery_url()
    )
}

async fn judge(
    client: &mut TokenValidatorClient<Channel>,
    token: &str,
) -> pb::ValidateTokenResponse {
    support::judge(client, token, "").await
}

/// Polls until `check` holds, for at most `limit`.
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn a_rotated_in_key_is_accepted_on_first_sight_and_a_retired_key_goes() {
    let old = TestKey::rsa_a();
    let mut new = TestKey::rsa_b();
    new.kid = "rsa-new".into();
    let idp = Idp::start(jwks(&[&old]), None).await;
    let server =
        InProcess::start(&config(&idp, "  interval: 1h\n  unknown_kid_cooldown: 2s")).await;
    server.wait_serving().await;
    let mut client = server.client().await;
    assert!(
        judge(
            &mut client,
            &old.sign(&claims(&idp.issuer(), AUDIENCE, now()))
        )
        .await
        .valid
    );

    // The provider publishes a new key and starts signing with it.
    idp.set_jwks(jwks(&[&old, &new]));
    let before = idp.jwks_requests();
    let discovery_before = idp.state.discovery_requests.load(Ordering::SeqCst);
    let response = judge(
        &mut client,
        &new.sign(&claims(&idp.issuer(), AUDIENCE, now())),
    )
    .await;
    assert!(response.valid, "{response:?}");
    assert_eq!(
        idp.jwks_requests(),
        before + 1,
        "one refetch for the unknown kid"
    );
    assert_eq!(
        idp.state.discovery_requests.load(Ordering::SeqCst),
        discovery_before,
        "a kid refetch reads the JWKS only"
    );

    // The old key is retired: once the set is refetched, its tokens are refused.
    idp.set_jwks(jwks(&[&new]));
    tokio::time::sleep(Duration::from_millis(2100)).await; // past the unknown-kid cooldown
    let mut stranger = TestKey::rsa_a();
    stranger.kid = "never-published".into();
    let probe = judge(
        &mut client,
        &stranger.sign(&claims(&idp.issuer(), AUDIENCE, now())),
    )
    .await;
    assert_eq!(probe.reason, pb::Reason::UnknownKey as i32);
    let retired = judge(
        &mut client,
        &old.sign(&claims(&idp.issuer(), AUDIENCE, now())),
    )
    .await;
    assert_eq!(retired.reason, pb::Reason::UnknownKey as i32, "{retired:?}");
    assert!(
        judge(
            &mut client,
            &new.sign(&claims(&idp.issuer(), AUDIENCE, now()))
        )
        .await
        .valid
    );
}

#[tokio::test]
async fn an_unknown_kid_flood_costs_the_provider_at_most_a_handful_of_requests() {
    let key = TestKey::es256();
    let idp = Idp::start(jwks(&[&key]), None).await;
    let server = InProcess::start(&config(&idp, "  interval: 1h")).await;
    server.wait_serving().await;
    let before = idp.jwks_requests();
    // Known keys keep flowing, fast, while the flood runs.
    let mut known_client = server.client().await;
    let known_token = key.sign(&claims(&idp.issuer(), AUDIENCE, now()));
    let known = tokio::spawn(async move {
        let mut slowest = Duration::ZERO;
        for _ in 0..50 {
            let started = Instant::now();
            assert!(judge(&mut known_client, &known_token).await.valid);
            slowest = slowest.max(started.elapsed());
        }
        slowest
    });
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..20 {
        let mut client = server.client().await;
        let mut attacker = key.clone();
        let issuer = idp.issuer();
        tasks.spawn(async move {
            let mut answers = Vec::new();
            for index in 0..50 {
                attacker.kid = format!("random-{worker}-{index}");
                let token = attacker.sign(&claims(&issuer, AUDIENCE, now()));
                answers.push(judge(&mut client, &token).await.reason);
            }
            answers
        });
    }
    let mut answered = 0;
    while let Some(answers) = tasks.join_next().await {
        for reason in answers.expect("worker") {
            assert_eq!(reason, pb::Reason::UnknownKey as i32);
            answered += 1;
        }
    }
    assert_eq!(answered, 1000);
    let slowest = known.await.expect("known-key task");
    assert!(
        slowest < Duration::from_millis(800),
        "a known-key validation took {slowest:?}"
    );
    let requests = idp.jwks_requests() - before;
    eprintln!("JWKS requests caused by 1000 unknown kids: {requests}");
    assert!(
        requests <= 2,
        "{requests} JWKS requests for 1000 unknown kids"
    );
    // Known keys were never slowed or refused meanwhile.
    let mut client = server.client().await;
    assert!(
        judge(
            &mut client,
            &key.sign(&claims(&idp.issuer(), AUDIENCE, now()))
        )
        .await
        .valid
    );
}

#[tokio::test]
async fn outages_keep_the_last_good_keys_until_max_stale() {
    let key = TestKey::ed25519();
    let mut idp = Idp::start(jwks(&[&key]), None).await;
    let server = InProcess::start(&config(&idp, "  interval: 1s\n  max_stale: 8s")).await;
    server.wait_serving().await;
    let mut client = server.client().await;
    let token = key.sign(&claims(&idp.issuer(), AUDIENCE, now()));
    assert!(judge(&mut client, &token).await.valid);

    // 503s, then bad JSON, then connection refused: the loaded keys keep serving.
    idp.state.down.store(true, Ordering::SeqCst);
    let failing = idp.requests();
    assert!(eventually(Duration::from_secs(5), async || idp.requests() > failing).await);
    assert!(judge(&mut client, &token).await.valid);
    idp.state.down.store(false, Ordering::SeqCst);
    idp.state.bad_json.store(true, Ordering::SeqCst);
    let bad = idp.jwks_requests();
    assert!(
        eventually(Duration::from_secs(5), async || idp.jwks_requests()
            > bad + 1)
        .await
    );
    assert!(judge(&mut client, &token).await.valid);
    idp.stop().await;

    // Past max_stale without a successful refresh, the tenant refuses to vouch for anything.
    let stale = eventually(Duration::from_secs(10), async || {
        judge(&mut client, &token).await.reason == pb::Reason::KeysUnavailable as i32
    })
    .await;
    assert!(stale, "keys never went stale");
    let response = judge(&mut client, &token).await;
    assert!(response.detail.contains("max_stale"), "{}", response.detail);
    assert!(
        response.detail.contains("refreshing has failed since")
            && !response.detail.contains("cannot connect"),
        "since when, not why: {}",
        response.detail
    );
    let id = response.tenant.clone();
    assert!(
        server.last_error(&id).await.contains("cannot connect"),
        "{}",
        server.debug_tenant(&id).await
    );

    // The provider comes back: keys are fresh again.
    idp.state.bad_json.store(false, Ordering::SeqCst);
    idp.restart().await;
    assert!(
        eventually(Duration::from_secs(10), async || judge(&mut client, &token)
            .await
            .valid)
        .await
    );
}

#[tokio::test]
async fn a_slow_provider_does_not_slow_validations_of_known_keys() {
    let key = TestKey::rsa_a();
    let idp = Idp::start(jwks(&[&key]), None).await;
    let server = InProcess::start(&config(&idp, "  interval: 1h\n  unknown_kid_wait: 1s")).await;
    server.wait_serving().await;
    let mut client = server.client().await;
    *idp.state.delay.lock().expect("lock") = Duration::from_secs(4);

    // A token with a new kid waits for the slow refetch, but only up to unknown_kid_wait.
    let mut newcomer = TestKey::rsa_b();
    newcomer.kid = "not-yet-published".into();
    let mut waiting_client = server.client().await;
    let newcomer_token = newcomer.sign(&claims(&idp.issuer(), AUDIENCE, now()));
    let started = Instant::now();
    let waiting = tokio::spawn(async move {
        let response = judge(&mut waiting_client, &newcomer_token).await;
        (response, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Meanwhile, known keys answer at once.
    let token = key.sign(&claims(&idp.issuer(), AUDIENCE, now()));
    for _ in 0..20 {
        let started = Instant::now();
        assert!(judge(&mut client, &token).await.valid);
        // Well under unknown_kid_wait (1 s): known keys never wait for the refetch.
        assert!(
            started.elapsed() < Duration::from_millis(800),
            "{:?}",
            started.elapsed()
        );
    }
    let (response, waited) = waiting.await.expect("task");
    assert_eq!(response.reason, pb::Reason::UnknownKey as i32);
    assert!(waited < Duration::from_millis(3000), "waited {waited:?}");
}

#[tokio::test]
async fn a_broken_key_among_good_ones_is_skipped_and_cache_control_sets_the_pace() {
    let good = TestKey::es256();
    let mut broken = TestKey::rsa_b().jwk();
    broken["kid"] = json!("broken");
    broken["n"] = json!("AAAA");
    let idp = Idp::start(json!({"keys": [broken, good.jwk()]}), None).await;
    *idp.state.cache_control.lock().expect("lock") = Some("public, max-age=1".into());
    let server = Tokengate::start(&config(&idp, "  interval: 1h"));
    server.wait_serving().await;
    let mut client = server.client().await;
    assert!(
        judge(
            &mut client,
            &good.sign(&claims(&idp.issuer(), AUDIENCE, now()))
        )
        .await
        .valid
    );
    let skipped = server.wait_log("key skipped");
    assert_eq!(skipped["kid"], "broken");

    // max-age=1 (clamped to min_interval 1s) wins over interval 1h: the set is refetched.
    let before = idp.jwks_requests();
    assert!(
        eventually(Duration::from_secs(6), async || idp.jwks_requests()
            >= before + 2)
        .await,
        "max-age was not honoured"
    );
}

#[tokio::test]
async fn reloads_add_change_and_remove_tenants_under_load_and_a_bad_reload_changes_nothing() {
    let a_key = TestKey::rsa_a();
    let b_key = TestKey::es256();
    let c_key = TestKey::ed25519();
    let idp_a = Idp::start(jwks(&[&a_key]), None).await;
    let idp_b = Idp::start(jwks(&[&b_key]), None).await;
    let idp_c = Idp::start(jwks(&[&c_key]), None).await;
    let tenant = |id: &str, idp: &Idp, audience: &str| {
        format!(
            "  - id: {id}\n    discovery_url: \"{}\"\n    audiences: [\"{audience}\"]\n",
            idp.discovery_url()
        )
    };
    let head = "refresh:\n  interval: 1h\n  min_interval: 1s\ntenants:\n";
    let first = format!(
        "{head}{}{}",
        tenant("a", &idp_a, AUDIENCE),
        tenant("b", &idp_b, AUDIENCE)
    );
    let server = Tokengate::start(&first);
    server.wait_serving().await;
    let a_token = a_key.sign(&claims(&idp_a.issuer(), AUDIENCE, now()));
    let b_token = b_key.sign(&claims(&idp_b.issuer(), AUDIENCE, now()));

    // Load on tenant a for the whole test: not one answer may be anything but valid.
    let mut load_client = server.client().await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_load = stop.clone();
    let load_token = a_token.clone();
    let load = tokio::spawn(async move {
        let mut count = 0;
        while !stop_load.load(Ordering::SeqCst) {
            let response = judge(&mut load_client, &load_token).await;
            assert!(
                response.valid,
                "a request failed during a reload: {response:?}"
            );
            count += 1;
        }
        count
    });

    // a unchanged, b's audience changed, c added.
    let a_requests = idp_a.jwks_requests();
    let second = format!(
        "{head}{}{}{}",
        tenant("a", &idp_a, AUDIENCE),
        tenant("b", &idp_b, "api://billing"),
        tenant("c", &idp_c, AUDIENCE)
    );
    std::fs::write(server.config_path(), &second).expect("write");
    let mut client = server.client().await;
    let c_token = c_key.sign(&claims(&idp_c.issuer(), AUDIENCE, now()));
    assert!(
        eventually(Duration::from_secs(10), async || judge(
            &mut client,
            &c_token
        )
        .await
        .valid)
        .await
    );
    // b was changed: it loads its keys afresh (or keeps them), then enforces the new audience.
    assert!(
        eventually(Duration::from_secs(10), async || {
            judge(&mut client, &b_token).await.reason == pb::Reason::InvalidAudience as i32
        })
        .await,
        "{:?}",
        judge(&mut client, &b_token).await
    );
    assert_eq!(
        idp_a.jwks_requests(),
        a_requests,
        "an unchanged tenant keeps its keys"
    );

    // A broken configuration is refused whole.
    std::fs::write(
        server.config_path(),
        format!("{second}    bogus_field: 1\n"),
    )
    .expect("write");
    assert!(
        eventually(Duration::from_secs(10), async || server
            .count_log("configuration error")
            > 0)
        .await
    );
    assert!(judge(&mut client, &c_token).await.valid);

    // b removed (SIGHUP also reloads).
    let third = format!(
        "{head}{}{}",
        tenant("a", &idp_a, AUDIENCE),
        tenant("c", &idp_c, AUDIENCE)
    );
    std::fs::write(server.config_path(), &third).expect("write");
    server.signal("HUP");
    assert!(
        eventually(Duration::from_secs(10), async || {
            judge(&mut client, &b_token).await.reason == pb::Reason::UnknownTenant as i32
        })
        .await
    );
    stop.store(true, Ordering::SeqCst);
    let served = load.await.expect("load");
    assert!(served > 10, "only {served} requests under load");
    assert_eq!(idp_a.jwks_requests(), a_requests, "no refetch storm");
}

#[tokio::test]
async fn health_turns_serving_after_the_startup_grace_even_if_a_tenant_has_no_keys() {
    let key = TestKey::rsa_a();
    let healthy = Idp::start(jwks(&[&key]), None).await;
    let config = format!(
        "refresh:\n  startup_grace: 2s\ntenants:\n  - id: healthy\n    discovery_url: \"{}\"\n  - id: unreachable\n    issuers: [\"https://unreachable.example\"]\n    jwks_uri: \"http://127.0.0.1:9/jwks\"\n",
        healthy.discovery_url()
    );
    let started = Instant::now();
    let server = InProcess::start(&config).await;
    server.wait_serving().await;
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "SERVING before the grace ended"
    );
    let mut client = server.client().await;
    let token = key.sign(&claims("https://unreachable.example", AUDIENCE, now()));
    let response = judge(&mut client, &token).await;
    assert_eq!(response.reason, pb::Reason::KeysUnavailable as i32);
    assert!(
        !response.detail.contains("cannot connect"),
        "{}",
        response.detail
    );
    assert!(
        server
            .last_error("unreachable")
            .await
            .contains("cannot connect"),
        "{}",
        server.debug_tenant("unreachable").await
    );
}
