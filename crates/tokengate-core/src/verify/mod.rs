//! The verification core: a pure, synchronous function of (token, keys, policy, now).
//!
//! It knows nothing of tokio, gRPC, metrics or the network, so it can be tested and fuzzed on
//! its own. It does not choose the tenant (the service does) and does not decode the token
//! (see [`crate::token`]).

use crate::algorithm::Algorithm;
use crate::keyset::{KeySet, VerifyingKey};
use crate::policy::Policy;
use crate::reason::Reason;
use crate::rejection::Rejection;
use crate::text::quote;
use crate::token::{Header, ParsedToken};

/// Header members tokengate refuses, and why.
const REFUSED_HEADERS: [(&str, &str); 7] = [
    (
        "crit",
        "critical extensions (\"crit\") are not supported, so the token must be refused (RFC 7515 §4.1.11)",
    ),
    (
        "b64",
        "unencoded payloads (\"b64\", RFC 7797) are not accepted for access tokens",
    ),
    (
        "zip",
        "compressed payloads (\"zip\") belong to JWE and are not accepted",
    ),
    (
        "enc",
        "the header has \"enc\": it is an encrypted JWE, not a signed JWS",
    ),
    (
        "jku",
        "the header names a key URL (\"jku\"); tokengate never fetches keys a token points to",
    ),
    (
        "x5u",
        "the header names a certificate URL (\"x5u\"); tokengate never fetches keys a token points to",
    ),
    (
        "jwk",
        "the header embeds a key (\"jwk\"); tokengate never trusts keys a token carries",
    ),
];

/// Most keys a token without `kid` is tried against.
const MAX_KIDLESS_CANDIDATES: usize = 4;

/// What a successful verification established.
#[derive(Debug)]
pub struct Verified<'k> {
    /// The key that verified the signature.
    pub key: &'k VerifyingKey,
    /// The algorithm it was verified with.
    pub algorithm: Algorithm,
}

/// Verifies a parsed token: header rules, algorithm, key, signature, then claims.
///
/// Claims are only looked at once the signature is valid, so a forged token never learns which
/// claim would have failed. This does not check revocation and does not introspect tokens.
pub fn verify<'k>(
    token: &ParsedToken<'_>,
    keys: &'k KeySet,
    policy: &Policy,
    now: i64,
) -> Result<Verified<'k>, Rejection> {
    let verified = verify_jws(
        &token.header,
        token.signing_input,
        token.signature,
        keys,
        policy,
    )?;
    policy.check_claims(&token.claims, now)?;
    Ok(verified)
}

/// Verifies the JWS layer alone: header rules, algorithm, `typ`, key and signature. The payload
/// is not looked at (it need not even be JSON), so this is also the entry point for JWS
/// conformance vectors.
pub fn verify_jws<'k>(
    header: &Header<'_>,
    signing_input: &[u8],
    signature: &[u8],
    keys: &'k KeySet,
    policy: &Policy,
) -> Result<Verified<'k>, Rejection> {
    check_header(header)?;
    let algorithm = algorithm_of(header, policy)?;
    policy.check_type(header.typ.as_deref())?;
    let key = verify_signature(header, signing_input, signature, algorithm, keys)?;
    Ok(Verified { key, algorithm })
}

/// Refuses header members that would change how the token must be processed.
pub fn check_header(header: &Header<'_>) -> Result<(), Rejection> {
    for (name, detail) in REFUSED_HEADERS {
        if header.has(name) {
            return Err(Rejection::fixed(Reason::UnsupportedHeader, detail));
        }
    }
    // Compared decoded: "\u004aWT" is "JWT" too.
    let cty = header
        .raw("cty")
        .and_then(|raw| serde_json::from_str::<std::borrow::Cow<'_, str>>(raw.get()).ok());
    if cty.is_some_and(|cty| cty.to_ascii_lowercase().contains("jwt")) {
        return Err(Rejection::fixed(
            Reason::UnsupportedHeader,
            "nested JWTs (\"cty\": \"JWT\") are not accepted; send the inner token",
        ));
    }
    Ok(())
}

/// The checks that need no tenant: refused headers and an unknown or `none` algorithm. Run
/// before anything tenant-specific, so such tokens get the same answer whatever the tenant's state.
pub fn precheck(header: &Header<'_>) -> Result<Algorithm, Rejection> {
    check_header(header)?;
    known_algorithm(header)
}

/// The token's algorithm, if it is known and allowed for the tenant.
fn algorithm_of(header: &Header<'_>, policy: &Policy) -> Result<Algorithm, Rejection> {
    let algorithm = known_algorithm(header)?;
    if !policy.algorithms.contains(algorithm) {
        return Err(Rejection::new(
            Reason::UnsupportedAlgorithm,
            format!(
                "the algorithm {algorithm} is not allowed for this tenant (allowed: {})",
                policy.algorithms
            ),
        ));
    }
    Ok(algorithm)
}

/// The token's algorithm, if tokengate knows it; `none` in any spelling never is.
fn known_algorithm(header: &Header<'_>) -> Result<Algorithm, Rejection> {
    let name = header.alg.as_ref();
    let Some(algorithm) = Algorithm::from_name(name) else {
        if name.eq_ignore_ascii_case("none") {
            return Err(Rejection::fixed(
                Reason::UnsupportedAlgorithm,
                "the token is unsigned (\"alg\": \"none\"); unsigned tokens are never accepted",
            ));
        }
        return Err(Rejection::new(
            Reason::UnsupportedAlgorithm,
            format!(
                "the algorithm {} is not supported (names are case-sensitive)",
                quote(name)
            ),
        ));
    };
    Ok(algorithm)
}

fn verify_signature<'k>(
    header: &Header<'_>,
    message: &[u8],
    signature: &[u8],
    algorithm: Algorithm,
    keys: &'k KeySet,
) -> Result<&'k VerifyingKey, Rejection> {
    match header.kid.as_deref() {
        Some(kid) => {
            let Some(key) = keys.get(kid) else {
                return Err(Rejection::new(
                    Reason::UnknownKey,
                    format!(
                        "no key with kid {} among the tenant's {} keys; the issuer may have rotated its keys, or the token comes from another issuer or tenant",
                        quote(kid),
                        keys.len()
                    ),
                ));
            };
            if !key.algorithms().contains(algorithm) {
                return Err(Rejection::new(
                    Reason::UnsupportedAlgorithm,
                    format!(
                        "the key {} is for {}, but the token says {algorithm}",
                        quote(kid),
                        key.algorithms()
                    ),
                ));
            }
            if key.verify(algorithm, message, signature) {
                Ok(key)
            } else {
                Err(invalid_signature(algorithm))
            }
        }
        None => {
            // Without a kid every key of the algorithm is a candidate. The number tried is
            // bounded, so a token without kid costs at most a few signature checks.
            let candidates = || {
                keys.keys()
                    .iter()
                    .filter(|key| key.algorithms().contains(algorithm))
            };
            match candidates().count() {
                0 => Err(Rejection::new(
                    Reason::UnknownKey,
                    format!("the token has no kid, and no key of the tenant is for {algorithm}"),
                )),
                count if count > MAX_KIDLESS_CANDIDATES => Err(Rejection::new(
                    Reason::UnknownKey,
                    format!(
                        "the token has no kid, and the tenant has {count} keys for {algorithm}; tokens without a kid are tried against at most {MAX_KIDLESS_CANDIDATES}"
                    ),
                )),
                _ => candidates()
                    .find(|key| key.verify(algorithm, message, signature))
                    .ok_or_else(|| invalid_signature(algorithm)),
            }
        }
    }
}

fn invalid_signature(algorithm: Algorithm) -> Rejection {
    Rejection::new(
        Reason::InvalidSignature,
        format!(
            "the {algorithm} signature does not verify: the token was altered, or signed by a key this tenant does not trust"
        ),
    )
}

#[cfg(test)]
mod tests;
