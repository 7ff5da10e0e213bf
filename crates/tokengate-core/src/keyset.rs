//! Key sets: JWKS documents parsed once, at load time, into ready-to-verify keys.
//!
//! Every key is bound to the algorithms it may verify when it is loaded (from its `alg`, its
//! curve, or the tenant's allow-list), so a token's `alg` is only ever compared with that binding.
//! A bad key is skipped with a reason and never takes the rest of the set down.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::algorithm::{Algorithm, AlgorithmSet, KeyFamily};
use crate::crypto::{Components, PublicKey};
use crate::json::JsonObject;

/// Largest JWKS document accepted, in bytes.
pub const MAX_JWKS_SIZE: usize = 512 * 1024;
/// Most keys kept from one document.
const MAX_KEYS: usize = 100;

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

/// Key material as read from a JWK, before it is bound to algorithms.
enum Decoded {
    /// Modulus and exponent, big-endian, without leading zero bytes.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// The uncompressed point `0x04 || x || y`.
    Ec { point: Vec<u8> },
    /// The 32-byte public key.
    Ed25519 { public: Vec<u8> },
    /// A shared secret.
    Secret(Vec<u8>),
}

impl Decoded {
    fn components(&self) -> Components<'_> {
        match self {
            Self::Rsa { n, e } => Components::Rsa { n, e },
            Self::Ec { point } => Components::Ec { point },
            Self::Ed25519 { public } => Components::Ed25519 { public },
            Self::Secret(secret) => Components::Secret { secret },
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

    /// Why the set has no usable key, in one line: each skipped key and its reason.
    pub fn skipped_summary(&self) -> String {
        if self.skipped.is_empty() {
            return "the set is empty".to_owned();
        }
        let reasons: Vec<String> = self
            .skipped
            .iter()
            .map(|skipped| {
                format!(
                    "{}: {}",
                    skipped.kid.as_deref().unwrap_or("(no kid)"),
                    skipped.reason
                )
            })
            .collect();
        reasons.join("; ")
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

/// The members of a JWK that tokengate reads.
#[derive(Deserialize)]
struct Jwk<'a> {
    #[serde(borrow)]
    kty: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, rename = "use")]
    use_: Option<std::borrow::Cow<'a, str>>,
    key_ops: Option<Vec<String>>,
    #[serde(borrow)]
    alg: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    crv: Option<std::borrow::Cow<'a, str>>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    k: Option<String>,
}

type JwkFailure = (Option<String>, String);

/// Parses one JWK, or says why it is skipped.
pub fn parse_jwk(bytes: &[u8], options: &KeyOptions) -> Result<VerifyingKey, JwkFailure> {
    // Strictness first (duplicate members, depth); serde then reads the members we use.
    JsonObject::parse(bytes, 4).map_err(|error| (None, format!("the key {error}")))?;
    let jwk: Jwk<'_> = serde_json::from_slice(bytes).map_err(|error| {
        (
            None,
            format!("the key has a member of the wrong type: {error}"),
        )
    })?;
    let kid = jwk.kid.as_deref().map(str::to_owned);
    let fail = |reason: String| (kid.clone(), reason);

    if let Some(use_) = jwk.use_.as_deref()
        && use_ != "sig"
    {
        return Err(fail(format!("\"use\" is \"{use_}\", not \"sig\"")));
    }
    if let Some(ops) = &jwk.key_ops
        && !ops.iter().any(|op| op == "verify")
    {
        return Err(fail("\"key_ops\" does not include \"verify\"".into()));
    }
    let kty = jwk
        .kty
        .as_deref()
        .ok_or_else(|| fail("no \"kty\"".into()))?;
    let (family, decoded) = match kty {
        "RSA" => rsa_material(&jwk).map_err(&fail)?,
        "EC" => ec_material(&jwk).map_err(&fail)?,
        "OKP" => okp_material(&jwk).map_err(&fail)?,
        "oct" if options.allow_symmetric => hmac_material(&jwk).map_err(&fail)?,
        "oct" => {
            return Err(fail(
                "shared-secret (\"oct\") keys are accepted only from inline or file key sets, never from a remote JWKS".into(),
            ));
        }
        other => {
            return Err(fail(format!(
                "unsupported \"kty\" {}",
                crate::text::quote(other)
            )));
        }
    };
    let bound = match jwk.alg.as_deref() {
        Some(name) => {
            let algorithm = Algorithm::from_name(name)
                .ok_or_else(|| fail(format!("unsupported \"alg\" {}", crate::text::quote(name))))?;
            if algorithm.family() != family {
                return Err(fail(format!("\"alg\" {name} does not fit a {kty} key")));
            }
            AlgorithmSet::only(algorithm)
        }
        None if family == KeyFamily::Rsa => options.rsa_default,
        None => AlgorithmSet::family(family),
    };
    let algorithms = bound.intersection(options.allowed);
    if algorithms.is_empty() {
        let hint = if family == KeyFamily::Symmetric {
            " (list the HMAC algorithm, e.g. HS256, in the tenant's algorithms)"
        } else {
            ""
        };
        return Err(fail(format!(
            "the key is for {bound}, which the tenant's algorithms do not allow{hint}"
        )));
    }
    if let Decoded::Secret(secret) = &decoded {
        // HMAC keys must be at least as long as the hash output (RFC 7518 §3.2).
        let required_len = algorithms
            .iter()
            .filter_map(Algorithm::fixed_signature_len)
            .max()
            .unwrap_or(0);
        if secret.len() < required_len {
            return Err(fail(format!(
                "the shared secret is {} bytes; {algorithms} needs at least {required_len}",
                secret.len()
            )));
        }
    }
    let material = PublicKey::new(&decoded.components(), algorithms).map_err(&fail)?;
    Ok(VerifyingKey {
        kid: kid.map(String::into_boxed_str),
        algorithms,
        material,
    })
}

fn decode_field(jwk_field: Option<&String>, name: &str) -> Result<Vec<u8>, String> {
    let text = jwk_field.ok_or_else(|| format!("no \"{name}\""))?;
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| format!("\"{name}\" is not base64url"))
}

fn rsa_material(jwk: &Jwk<'_>) -> Result<(KeyFamily, Decoded), String> {
    let n = decode_field(jwk.n.as_ref(), "n")?;
    let e = decode_field(jwk.e.as_ref(), "e")?;
    let n_trimmed = trim_leading_zeros(&n);
    let bits = match n_trimmed.first() {
        Some(first) => n_trimmed.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    };
    if !(2048..=8192).contains(&bits) {
        return Err(format!(
            "the RSA modulus is {bits} bits; 2048 to 8192 are accepted"
        ));
    }
    if n_trimmed.last().is_some_and(|b| b & 1 == 0) {
        return Err("the RSA modulus is even, so it is not an RSA modulus".into());
    }
    let e_trimmed = trim_leading_zeros(&e);
    let odd = e_trimmed.last().is_some_and(|b| b & 1 == 1);
    let small = e_trimmed.len() == 1 && e_trimmed[0] < 3;
    if e_trimmed.is_empty() || e_trimmed.len() > 4 || !odd || small {
        return Err("the RSA exponent must be odd, at least 3 and at most 32 bits".into());
    }
    Ok((
        KeyFamily::Rsa,
        Decoded::Rsa {
            n: n_trimmed.to_vec(),
            e: e_trimmed.to_vec(),
        },
    ))
}

fn ec_material(jwk: &Jwk<'_>) -> Result<(KeyFamily, Decoded), String> {
    let (family, size) = match jwk.crv.as_deref() {
        Some("P-256") => (KeyFamily::EcP256, 32),
        Some("P-384") => (KeyFamily::EcP384, 48),
        Some(other) => {
            return Err(format!(
                "unsupported EC curve {}",
                crate::text::quote(other)
            ));
        }
        None => return Err("no \"crv\"".into()),
    };
    let x = decode_field(jwk.x.as_ref(), "x")?;
    let y = decode_field(jwk.y.as_ref(), "y")?;
    if x.len() != size || y.len() != size {
        return Err(format!("EC coordinates must be {size} bytes each"));
    }
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok((family, Decoded::Ec { point }))
}

fn okp_material(jwk: &Jwk<'_>) -> Result<(KeyFamily, Decoded), String> {
    match jwk.crv.as_deref() {
        Some("Ed25519") => {}
        Some(other) => {
            return Err(format!(
                "unsupported OKP curve {}",
                crate::text::quote(other)
            ));
        }
        None => return Err("no \"crv\"".into()),
    }
    let public = decode_field(jwk.x.as_ref(), "x")?;
    if public.len() != 32 {
        return Err("an Ed25519 public key is 32 bytes".into());
    }
    Ok((KeyFamily::Ed25519, Decoded::Ed25519 { public }))
}

fn hmac_material(jwk: &Jwk<'_>) -> Result<(KeyFamily, Decoded), String> {
    let secret = decode_field(jwk.k.as_ref(), "k")?;
    if secret.is_empty() {
        return Err("the shared secret is empty".into());
    }
    Ok((KeyFamily::Symmetric, Decoded::Secret(secret)))
}

fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}
