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
