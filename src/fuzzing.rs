//! Entry points for the fuzz targets in `fuzz/` (not an API): the parsers of untrusted input that
//! are private to the service. Each returns normally for any input; a panic is a bug.

use crate::config::pem::{PemEntry, jwks_of};
use crate::keys::fetch::{DiscoveryDocument, jwks_uri_allowed};

/// Reads `bytes` as an OpenID discovery document served for a loopback discovery URL, and
/// applies the `jwks_uri` rule to it. Returns whether the `jwks_uri` would be fetched.
pub fn discovery_document(bytes: &[u8]) -> bool {
    let Ok(document) = serde_json::from_slice::<DiscoveryDocument>(bytes) else {
        return false;
    };
    let (Ok(discovery), Ok(jwks)) = (
        url::Url::parse("http://127.0.0.1:8080/.well-known/openid-configuration"),
        url::Url::parse(&document.jwks_uri),
    ) else {
        return false;
    };
    let _ = document.issuer.len();
    jwks_uri_allowed(false, &discovery, &jwks)
}

/// Reads `text` as the PEM of a `pem:` key source: the JWKS it becomes, or why not.
pub fn pem_keys(text: &str) -> Result<Vec<u8>, String> {
    jwks_of(&[PemEntry {
        pem: text,
        kid: None,
        alg: None,
    }])
}
