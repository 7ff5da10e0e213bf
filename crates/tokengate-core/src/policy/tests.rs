//! The claim rules on their own: times with the clock skew, issuers with templates, the
//! tenant-id allow-list, audiences, clients, required claims and token types.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::*;
use crate::token::{DecodedToken, Limits};

const NOW: i64 = 1_800_000_000;
const TID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Checks `payload` (the signature is not looked at here) against `policy` at `NOW`.
fn check(policy: &Policy, payload: &Value) -> Result<(), Reason> {
    let token = format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let decoded = DecodedToken::decode(&token, &Limits::default()).map_err(|r| r.reason)?;
    let parsed = decoded.parse().map_err(|r| r.reason)?;
    policy
        .check_claims(&parsed.claims, NOW)
        .map_err(|rejection| rejection.reason)
}

fn policy() -> Policy {
    Policy {
        issuers: vec![IssuerPattern::new("https://issuer.example")],
        audiences: vec!["api://orders".to_owned()],
        ..Policy::default()
    }
}

fn valid() -> Value {
    json!({ "iss": "https://issuer.example", "aud": "api://orders", "exp": NOW + 60 })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

#[test]
fn times_allow_exactly_the_clock_skew() {
    let policy = policy();
    let skew = DEFAULT_CLOCK_SKEW_SECS as i64;
    assert_eq!(check(&policy, &valid()), Ok(()));
    let expired = |exp: i64| check(&policy, &with(valid(), "exp", json!(exp)));
    assert_eq!(expired(NOW - skew + 1), Ok(()));
    assert_eq!(expired(NOW - skew), Err(Reason::Expired));
    let early = |name: &str, at: i64| check(&policy, &with(valid(), name, json!(at)));
    assert_eq!(early("nbf", NOW + skew), Ok(()));
    assert_eq!(early("nbf", NOW + skew + 1), Err(Reason::NotYetValid));
    assert_eq!(early("iat", NOW + skew + 1), Err(Reason::NotYetValid));
    let mut no_exp = valid();
    no_exp.as_object_mut().map(|claims| claims.remove("exp"));
    assert_eq!(check(&policy, &no_exp), Err(Reason::MissingClaim));
    let lenient = Policy {
        require_expiration: false,
        ..policy.clone()
    };
    assert_eq!(check(&lenient, &no_exp), Ok(()));
}

#[test]
fn lifetimes_are_bounded_from_iat() {
    let policy = Policy {
        max_lifetime: Some(3600),
        ..policy()
    };
    let token = |iat: i64, exp: i64| with(with(valid(), "iat", json!(iat)), "exp", json!(exp));
    assert_eq!(check(&policy, &token(NOW - 10, NOW + 3590)), Ok(()));
    assert_eq!(
        check(&policy, &token(NOW - 10, NOW + 3600)),
        Err(Reason::LifetimeTooLong)
    );
}

#[test]
fn issuers_match_exactly_and_templates_only_their_own_tenant() {
    let policy = policy();
    let other = with(valid(), "iss", json!("https://issuer.example/"));
    assert_eq!(check(&policy, &other), Err(Reason::InvalidIssuer));
    let mut no_iss = valid();
    no_iss.as_object_mut().map(|claims| claims.remove("iss"));
    assert_eq!(check(&policy, &no_iss), Err(Reason::MissingClaim));
    let template = Policy {
        issuers: vec![IssuerPattern::new("https://login.example/{tenantid}/v2.0")],
        ..policy.clone()
    };
    let own = with(
        with(
            valid(),
            "iss",
            json!(format!("https://login.example/{TID}/v2.0")),
        ),
        "tid",
        json!(TID),
    );
    assert_eq!(check(&template, &own), Ok(()));
    let foreign = with(
        own.clone(),
        "tid",
        json!("72f988bf-86f1-41af-91ab-2d7cd011db47"),
    );
    assert_eq!(check(&template, &foreign), Err(Reason::InvalidIssuer));
}

#[test]
fn the_tenant_id_allow_list_refuses_other_and_absent_tids() {
    let policy = Policy {
        tenant_ids: vec![TID.to_uppercase()],
        ..policy()
    };
    assert!(policy.allows_tenant_id(Some(TID)), "case-insensitive");
    assert!(!policy.allows_tenant_id(None));
    assert_eq!(check(&policy, &with(valid(), "tid", json!(TID))), Ok(()));
    assert_eq!(check(&policy, &valid()), Err(Reason::InvalidIssuer));
    assert!(Policy::default().allows_tenant_id(None), "no list: any");
}

#[test]
fn audiences_match_any_member() {
    let policy = policy();
    let many = with(valid(), "aud", json!(["api://billing", "api://orders"]));
    assert_eq!(check(&policy, &many), Ok(()));
    let wrong = with(valid(), "aud", json!(["api://billing"]));
    assert_eq!(check(&policy, &wrong), Err(Reason::InvalidAudience));
    let mut none = valid();
    none.as_object_mut().map(|claims| claims.remove("aud"));
    assert_eq!(check(&policy, &none), Err(Reason::MissingClaim));
}

#[test]
fn clients_come_from_azp_or_appid() {
    let policy = Policy {
        client_application_ids: vec!["web".to_owned()],
        ..policy()
    };
    assert_eq!(check(&policy, &with(valid(), "azp", json!("web"))), Ok(()));
    assert_eq!(
        check(&policy, &with(valid(), "appid", json!("web"))),
        Ok(())
    );
    assert_eq!(
        check(&policy, &with(valid(), "azp", json!("cli"))),
        Err(Reason::ClientNotAllowed)
    );
    assert_eq!(check(&policy, &valid()), Err(Reason::MissingClaim));
    assert_eq!(
        check(&policy, &with(valid(), "azp", json!(7))),
        Err(Reason::Malformed)
    );
}

#[test]
fn required_claims_match_any_or_all_values() {
    let scope = |mode| RequiredClaim {
        claim: "scp".to_owned(),
        values: vec![
            ClaimValue::String("orders.read".to_owned()),
            ClaimValue::String("orders.write".to_owned()),
        ],
        mode,
        separator: Some(" ".to_owned()),
    };
    let any = Policy {
        required_claims: vec![scope(MatchMode::Any)],
        ..policy()
    };
    let all = Policy {
        required_claims: vec![scope(MatchMode::All)],
        ..policy()
    };
    let read = with(valid(), "scp", json!("profile orders.read"));
    assert_eq!(check(&any, &read), Ok(()));
    assert_eq!(check(&all, &read), Err(Reason::ClaimMismatch));
    let both = with(valid(), "scp", json!("orders.write orders.read"));
    assert_eq!(check(&all, &both), Ok(()));
    assert_eq!(check(&any, &valid()), Err(Reason::MissingClaim));
}

#[test]
fn required_claim_values_match_only_their_own_json_type() {
    let requiring = |value: ClaimValue| Policy {
        required_claims: vec![RequiredClaim {
            claim: "flag".to_owned(),
            values: vec![value],
            mode: MatchMode::Any,
            separator: None,
        }],
        ..policy()
    };
    let boolean = requiring(ClaimValue::Bool(true));
    let text = requiring(ClaimValue::String("true".to_owned()));
    let one = requiring(ClaimValue::Number(1.into()));
    let cases = [
        (json!(true), Ok(()), Err(Reason::ClaimMismatch)),
        (json!([true]), Ok(()), Err(Reason::ClaimMismatch)),
        (json!("true"), Err(Reason::ClaimMismatch), Ok(())),
        (json!(["true"]), Err(Reason::ClaimMismatch), Ok(())),
        (
            json!("TRUE"),
            Err(Reason::ClaimMismatch),
            Err(Reason::ClaimMismatch),
        ),
    ];
    for (claim, for_bool, for_text) in cases {
        let token = with(valid(), "flag", claim.clone());
        assert_eq!(check(&boolean, &token), for_bool, "true against {claim}");
        assert_eq!(check(&text, &token), for_text, "\"true\" against {claim}");
    }
    assert_eq!(check(&one, &with(valid(), "flag", json!(1))), Ok(()));
    assert_eq!(check(&one, &with(valid(), "flag", json!(1.0))), Ok(()));
    assert_eq!(check(&one, &with(valid(), "flag", json!([2, 1]))), Ok(()));
    assert_eq!(
        check(&one, &with(valid(), "flag", json!("1"))),
        Err(Reason::ClaimMismatch)
    );
    assert_eq!(
        check(&one, &with(valid(), "flag", json!(true))),
        Err(Reason::ClaimMismatch)
    );
}

#[test]
fn token_types_compare_media_types_case_insensitively() {
    let policy = Policy {
        token_types: vec!["at+jwt".to_owned()],
        ..policy()
    };
    assert_eq!(
        policy.check_type(Some("AT+JWT")).map_err(|r| r.reason),
        Ok(())
    );
    assert_eq!(
        policy.check_type(Some("JWT")).map_err(|r| r.reason),
        Err(Reason::InvalidType)
    );
    assert_eq!(
        policy.check_type(None).map_err(|r| r.reason),
        Err(Reason::InvalidType)
    );
    assert_eq!(
        Policy::default().check_type(None).map_err(|r| r.reason),
        Ok(())
    );
}

#[test]
fn numbers_outside_the_double_range_are_malformed_at_every_depth() {
    let policy = Policy {
        require_expiration: false,
        ..policy()
    };
    for payload in [
        r#"{"iss":"https://issuer.example","aud":"api://orders","big":1e400}"#.to_owned(),
        format!(
            r#"{{"iss":"https://issuer.example","aud":"api://orders","big":{}}}"#,
            "9".repeat(400)
        ),
        r#"{"iss":"https://issuer.example","aud":"api://orders","big":[1e400]}"#.to_owned(),
        r#"{"iss":"https://issuer.example","aud":"api://orders","big":-1E+309}"#.to_owned(),
    ] {
        let value: Result<Value, _> = serde_json::from_str(&payload);
        assert!(value.is_err(), "serde_json refuses it too: {payload}");
        assert_eq!(
            check_raw(&policy, &payload),
            Err(Reason::Malformed),
            "{payload}"
        );
    }
    let fine =
        r#"{"iss":"https://issuer.example","aud":"api://orders","small":1e300,"n":-0.5e-400}"#;
    assert_eq!(check_raw(&policy, fine), Ok(()));
}

/// Like [`check`], for a payload given as JSON text.
fn check_raw(policy: &Policy, payload: &str) -> Result<(), Reason> {
    let token = format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let decoded = DecodedToken::decode(&token, &Limits::default()).map_err(|r| r.reason)?;
    let parsed = decoded.parse().map_err(|r| r.reason)?;
    policy
        .check_claims(&parsed.claims, NOW)
        .map_err(|rejection| rejection.reason)
}
