//! Key sets: JWKS documents parsed once, at load time, into ready-to-verify keys.
//!
//! Every key is bound to the algorithms it may verify when it is loaded (from its `alg`, its
//! curve, or the tenant's allow-list), so a token's `alg` is only ever compared with that binding.
//! A bad key is skipped with a reason and never takes the rest of the set down.

use std::collections::HashMap;
use std::fmt;

use serde_json::value::RawValue;

use crate::algorithm::{Algorithm, AlgorithmSet, KeyFamily};
use crate::crypto::PublicKey;
use crate::json::JsonObject;

mod jwk;

pub use jwk::parse_jwk;

/// Largest JWKS document accepted, in bytes.
pub const MAX_JWKS_SIZE: usize = 512 * 1024;
/// Most keys kept from one document.
const MAX_KEYS: usize = 100;
/// Most entries one document may hold, usable or not: skipped entries cost work and log lines
/// too, and a real provider publishes a handful.
pub const MAX_JWKS_ENTRIES: usize = 1000;
/// Reasons and kids a summary of skipped keys names; the rest are counted.
const SUMMARY_ITEMS: usize = 5;

/// How keys without an `alg` are bound, and whether shared secrets are acceptable.
#[derive(Clone, Copy, Debug)]
pub struct KeyOptions {
    /// Algorithms a key may be bound to (the tenant's allow-list, or every algorithm).
    pub allowed: AlgorithmSet,
    /// Algorithms for an RSA key that names no `alg`.
    pub rsa_default: AlgorithmSet,
    /// Whether `kty: oct` keys are accepted (only for keys from the operator's own configuration).
    pub allow_symmetric: bool,
}

impl Default for KeyOptions {
    fn default() -> Self {
        Self {
            allowed: AlgorithmSet::asymmetric(),
            rsa_default: AlgorithmSet::only(Algorithm::RS256),
            allow_symmetric: false,
        }
    }
}

impl KeyOptions {
    /// The options for a tenant's allow-list (`None`: every public-key algorithm, so that a
    /// shared secret is skipped with a hint to list its HMAC algorithm). An RSA key without
    /// `alg` is bound to the allow-list's RSA algorithms, or RS256 without a list.
    pub fn for_allow_list(configured: Option<AlgorithmSet>, allow_symmetric: bool) -> Self {
        let defaults = Self::default();
        let allowed = configured.unwrap_or(defaults.allowed);
        let rsa = allowed.intersection(AlgorithmSet::family(KeyFamily::Rsa));
        Self {
            allowed,
            rsa_default: match configured {
                Some(_) if !rsa.is_empty() => rsa,
                _ => defaults.rsa_default,
            },
            allow_symmetric,
        }
    }
}

/// One key, ready to verify signatures.
pub struct VerifyingKey {
    kid: Option<Box<str>>,
    algorithms: AlgorithmSet,
    material: PublicKey,
}

impl VerifyingKey {
    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithms this key may verify.
    pub fn algorithms(&self) -> AlgorithmSet {
        self.algorithms
    }

    /// Verifies `signature` over `message` with `algorithm`; false if the key is not bound to it.
    pub fn verify(&self, algorithm: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        if !self.algorithms.contains(algorithm) {
            return false;
        }
        if algorithm
            .fixed_signature_len()
            .is_some_and(|len| len != signature.len())
        {
            return false;
        }
        self.material.verify(algorithm, message, signature)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// A key that was left out of a set, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedKey {
    /// The key's `kid`, if it had one.
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: String,
}

/// Why a whole JWKS document was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Larger than [`MAX_JWKS_SIZE`].
    #[error("the JWKS document is {0} bytes, more than the 512 KiB limit")]
    TooLarge(usize),
    /// Not a strict JSON object.
    #[error("the JWKS document {0}")]
    Json(crate::json::JsonError),
    /// No `keys` array.
    #[error("the JWKS document has no \"keys\" array")]
    NoKeys,
    /// More than [`MAX_JWKS_ENTRIES`] entries.
    #[error("the JWKS document has {0} entries, more than the limit of 1000")]
    TooManyEntries(usize),
}

/// The usable keys of one tenant, looked up by `kid`.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
    by_kid: HashMap<Box<str>, usize>,
    skipped: Vec<SkippedKey>,
}

impl KeySet {
    /// Parses a JWKS document (`{"keys": [...]}`), skipping keys that cannot be used.
    pub fn from_jwks(document: &[u8], options: &KeyOptions) -> Result<Self, JwksError> {
        if document.len() > MAX_JWKS_SIZE {
            return Err(JwksError::TooLarge(document.len()));
        }
        let object = JsonObject::parse(document, 8).map_err(JwksError::Json)?;
        let keys_raw = object.get("keys").ok_or(JwksError::NoKeys)?;
        let entries: Vec<&RawValue> =
            serde_json::from_str(keys_raw.get()).map_err(|_| JwksError::NoKeys)?;
        if entries.len() > MAX_JWKS_ENTRIES {
            return Err(JwksError::TooManyEntries(entries.len()));
        }
        let mut set = Self::default();
        for entry in entries {
            if set.keys.len() >= MAX_KEYS {
                set.skipped.push(SkippedKey {
                    kid: None,
                    reason: format!("more than {MAX_KEYS} keys in one set"),
                });
                break;
            }
            match parse_jwk(entry.get().as_bytes(), options) {
                Ok(key) => set.keys.push(key),
                Err((kid, reason)) => set.skipped.push(SkippedKey { kid, reason }),
            }
        }
        set.index_and_drop_ambiguous_kids();
        Ok(set)
    }

    fn index_and_drop_ambiguous_kids(&mut self) {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for kid in self.keys.iter().filter_map(VerifyingKey::kid) {
            *counts.entry(kid).or_default() += 1;
        }
        let duplicated: Vec<String> = counts
            .into_iter()
            .filter(|(_, count)| *count > 1)
            .map(|(kid, _)| kid.to_owned())
            .collect();
        if !duplicated.is_empty() {
            self.keys.retain(|key| {
                key.kid()
                    .is_none_or(|kid| !duplicated.iter().any(|d| d == kid))
            });
            for kid in duplicated {
                self.skipped.push(SkippedKey {
                    kid: Some(kid),
                    reason: "several keys share this kid, so none of them is used (ambiguous)"
                        .into(),
                });
            }
        }
        self.by_kid = self
            .keys
            .iter()
            .enumerate()
            .filter_map(|(index, key)| key.kid.clone().map(|kid| (kid, index)))
            .collect();
    }

    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.by_kid.get(kid).map(|index| &self.keys[*index])
    }

    /// Every usable key.
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// Keys that were left out, with reasons.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// The skipped keys in one bounded line: each distinct reason with its count (the first
    /// few), and the first few kids.
    pub fn skipped_summary(&self) -> String {
        if self.skipped.is_empty() {
            return "the set is empty".to_owned();
        }
        let mut reasons: Vec<(&str, usize)> = Vec::new();
        for skipped in &self.skipped {
            match reasons
                .iter_mut()
                .find(|(reason, _)| *reason == skipped.reason)
            {
                Some((_, count)) => *count += 1,
                None => reasons.push((&skipped.reason, 1)),
            }
        }
        let mut parts: Vec<String> = reasons
            .iter()
            .take(SUMMARY_ITEMS)
            .map(|(reason, count)| format!("{count} × {reason}"))
            .collect();
        if reasons.len() > SUMMARY_ITEMS {
            parts.push(format!("{} other reasons", reasons.len() - SUMMARY_ITEMS));
        }
        let kids: Vec<&str> = self
            .skipped
            .iter()
            .filter_map(|skipped| skipped.kid.as_deref())
            .take(SUMMARY_ITEMS)
            .collect();
        let more = if kids.len() < self.skipped.len() {
            ", …"
        } else {
            ""
        };
        format!(
            "{} skipped: {} (kids: {}{more})",
            self.skipped.len(),
            parts.join("; "),
            kids.join(", ")
        )
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The union of the algorithms the keys are bound to.
    pub fn algorithms(&self) -> AlgorithmSet {
        self.keys
            .iter()
            .fold(AlgorithmSet::EMPTY, |set, key| set.union(key.algorithms))
    }
}

#[cfg(test)]
mod tests;
