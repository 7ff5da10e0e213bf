//! The embedded default: a demo tenant with an Ed25519 key derived from a fixed, public seed, so
//! that `tokengate serve` and `tokengate mint` agree without any set-up.
//!
//! The demo key is public knowledge: never use the embedded default in front of a real API.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Map, Value, json};

use crate::config::{Config, ConfigErrors};

/// The demo tenant id.
pub(crate) const DEMO_TENANT: &str = "demo";
/// The demo issuer.
pub(crate) const DEMO_ISSUER: &str = "https://demo.tokengate.invalid";
/// The demo audience.
pub(crate) const DEMO_AUDIENCE: &str = "tokengate-demo";
/// The demo key id.
pub(crate) const DEMO_KID: &str = "demo-ed25519";
/// The fixed seed of the demo key (deliberately not secret).
const DEMO_SEED: [u8; 32] = *b"tokengate-demo-key-not-a-secret!";

fn key_pair() -> Ed25519KeyPair {
    // The seed is a constant of the right length, so this cannot fail at run time.
    match Ed25519KeyPair::from_seed_unchecked(&DEMO_SEED) {
        Ok(pair) => pair,
        Err(_) => unreachable!("a 32-byte Ed25519 seed is always valid"),
    }
}

/// The embedded default configuration as YAML (what `tokengate serve` runs without `--config`).
pub(crate) fn config_yaml() -> String {
    let public = URL_SAFE_NO_PAD.encode(key_pair().public_key().as_ref());
    format!(
        r#"# tokengate embedded default: one demo tenant whose key is PUBLIC. Demo use only.
listen: "127.0.0.1:50051"
tenants:
  - id: {DEMO_TENANT}
    issuers: ["{DEMO_ISSUER}"]
    audiences: ["{DEMO_AUDIENCE}"]
    jwks:
      keys:
        - {{ kty: OKP, crv: Ed25519, kid: {DEMO_KID}, use: sig, alg: EdDSA, x: "{public}" }}
    required_claims:
      - claim: scp
        values: ["read"]
        separator: " "
"#
    )
}

/// The embedded default configuration, checked.
pub fn config() -> Result<Config, ConfigErrors> {
    Config::parse(&config_yaml(), None, Path::new("."))
}

/// What to put in a demo token.
#[derive(Clone, Debug)]
pub(crate) struct MintOptions {
    /// `sub`.
    pub subject: String,
    /// `aud`.
    pub audience: String,
    /// `scp` (space-separated scopes).
    pub scope: String,
    /// Lifetime in seconds; negative makes a token that has already expired.
    pub lifetime: i64,
    /// Extra claims (override the defaults).
    pub extra: Map<String, Value>,
}

impl Default for MintOptions {
    fn default() -> Self {
        Self {
            subject: "demo-user".into(),
            audience: DEMO_AUDIENCE.into(),
            scope: "read".into(),
            lifetime: 3600,
            extra: Map::new(),
        }
    }
}

/// Signs a demo token with the demo key, issued at `now`.
pub(crate) fn mint(options: &MintOptions, now: i64) -> String {
    let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": DEMO_KID});
    let (iat, exp) = if options.lifetime >= 0 {
        (now, now.saturating_add(options.lifetime))
    } else {
        (
            now.saturating_add(options.lifetime).saturating_sub(3600),
            now.saturating_add(options.lifetime),
        )
    };
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(DEMO_ISSUER));
    claims.insert("sub".into(), json!(options.subject));
    claims.insert("aud".into(), json!(options.audience));
    claims.insert("scp".into(), json!(options.scope));
    claims.insert("iat".into(), json!(iat));
    claims.insert("exp".into(), json!(exp));
    for (name, value) in &options.extra {
        claims.insert(name.clone(), value.clone());
    }
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string())
    );
    let signature = key_pair().sign(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    )
}
