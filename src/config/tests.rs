//! The configuration checks on their own: every mistake is reported, each with its line and
//! path, and none stops the others from being found.

use std::path::Path;

use super::*;

fn errors(yaml: &str) -> Vec<ConfigError> {
    match Config::parse(yaml, None, Path::new(".")) {
        Ok(_) => panic!("the configuration should be refused:\n{yaml}"),
        Err(errors) => errors.0,
    }
}

fn has(errors: &[ConfigError], path: &str, line: u64, words: &str) -> bool {
    errors.iter().any(|error| {
        error.path == path && error.line == Some(line) && error.message.contains(words)
    })
}

const KEYS: &str = r#"{"keys": [{"kty": "oct", "kid": "k", "alg": "HS256", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}"#;

#[test]
fn every_mistake_is_reported_with_its_line_and_path() {
    let yaml = format!(
        "listen: nowhere\ntenants:\n  - id: \"bad id\"\n    issuers: [\"https://a.example\"]\n    algorithms: [HS256]\n    clock_skew: 1h\n    jwks: {KEYS}\n"
    );
    let errors = errors(&yaml);
    assert!(has(&errors, "listen", 1, ""), "{errors:?}");
    assert!(
        has(&errors, "tenants[0].id", 3, "1 to 64 characters"),
        "{errors:?}"
    );
    assert!(
        has(&errors, "tenants[0].clock_skew", 6, "at most 10m"),
        "{errors:?}"
    );
}

#[test]
fn unknown_keys_are_errors_not_ignored() {
    let errors = errors("tenants: []\nlisten_address: \"127.0.0.1:1\"\n");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].line, Some(2), "{errors:?}");
}

#[test]
fn a_tenant_needs_exactly_one_key_source() {
    let yaml = "tenants:\n  - id: a\n    issuers: [\"https://a.example\"]\n    jwks_uri: \"https://a.example/jwks\"\n    discovery_url: \"https://a.example/.well-known/openid-configuration\"\n";
    assert!(
        has(&errors(yaml), "tenants[0]", 2, "exactly one key source"),
        "{:?}",
        errors(yaml)
    );
}

#[test]
fn an_open_tenant_template_needs_tenant_ids_and_audiences() {
    let yaml = format!(
        "tenants:\n  - id: a\n    issuers: [\"https://login.example/{{tenantid}}/v2.0\"]\n    algorithms: [HS256]\n    jwks: {KEYS}\n"
    );
    let errors = errors(&yaml);
    assert!(
        has(&errors, "tenants[0].tenant_ids", 2, "{tenantid}"),
        "{errors:?}"
    );
}

#[test]
fn a_valid_configuration_keeps_its_defaults() {
    let yaml = format!(
        "tenants:\n  - id: a\n    issuers: [\"https://a.example\"]\n    algorithms: [HS256]\n    jwks: {KEYS}\n"
    );
    let config = Config::parse(&yaml, None, Path::new(".")).expect("valid");
    assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(config.max_batch_size, DEFAULT_MAX_BATCH_SIZE);
    assert_eq!(config.tenants[0].policy.clock_skew, 60);
    assert!(config.tenants[0].policy.require_expiration);
}

#[test]
fn a_discovered_issuer_another_tenant_holds_is_marked_unless_both_share_it() {
    let discovering = |id: &str, share: bool| {
        format!(
            "  - id: {id}\n    discovery_url: \"https://idp.example/.well-known/openid-configuration\"\n    audiences: [{id}]\n    share_issuer: {share}\n"
        )
    };
    let listing = |share: bool| {
        format!(
            "  - id: lists\n    issuers: [\"https://idp.example/\"]\n    jwks_uri: \"https://idp.example/keys\"\n    audiences: [lists]\n    share_issuer: {share}\n"
        )
    };
    let taken = |tenants: String| -> Vec<(String, Option<String>)> {
        let config = Config::parse(&format!("tenants:\n{tenants}"), None, Path::new("."))
            .unwrap_or_else(|errors| panic!("{errors}"));
        config
            .tenants
            .into_iter()
            .map(|tenant| (tenant.id, tenant.issuer_taken_by))
            .collect()
    };
    let pair = |id: &str, owner: Option<&str>| (id.to_owned(), owner.map(str::to_owned));
    // A tenant that lists the issuer keeps it, wherever it is in the file.
    assert_eq!(
        taken(format!("{}{}", discovering("a", false), listing(false))),
        [pair("a", Some("lists")), pair("lists", None)]
    );
    // Between discovering tenants, the first keeps it.
    assert_eq!(
        taken(format!(
            "{}{}",
            discovering("a", false),
            discovering("b", false)
        )),
        [pair("a", None), pair("b", Some("a"))]
    );
    // Sharing needs both.
    assert_eq!(
        taken(format!(
            "{}{}",
            discovering("a", true),
            discovering("b", false)
        )),
        [pair("a", None), pair("b", Some("a"))]
    );
    assert_eq!(
        taken(format!("{}{}", discovering("a", true), listing(true))),
        [pair("a", None), pair("lists", None)]
    );
}

#[test]
fn required_claim_values_must_be_scalars() {
    let yaml = format!(
        "tenants:\n  - id: a\n    issuers: [\"https://a.example\"]\n    algorithms: [HS256]\n    jwks: {KEYS}\n    required_claims:\n      - {{claim: roles, values: [admin, 1, true, [x], null]}}\n"
    );
    let errors = errors(&yaml);
    let paths: Vec<&str> = errors.iter().map(|error| error.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "tenants[0].required_claims[0].values[3]",
            "tenants[0].required_claims[0].values[4]"
        ],
        "{errors:?}"
    );
}
