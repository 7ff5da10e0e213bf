//! The crypto seam: every signature check, HMAC and digest tokengate makes goes through this
//! module, so the backend can be swapped in one place.
//!
//! - Default: `ring`.
//! - Feature `aws-lc`: `aws-lc-rs`, with public keys parsed once at load (`ParsedPublicKey`),
//!   which makes RSA and ECDSA verification faster and is the route to a FIPS build.
//!
//! A key is built from its JWK components once, bound to the algorithms it may verify; its
//! construction refuses material the backend cannot use (so a bad key never counts as loaded).

#[cfg(feature = "aws-lc")]
mod aws_lc;
#[cfg(not(feature = "aws-lc"))]
mod ring;

#[cfg(feature = "aws-lc")]
use aws_lc as backend;
#[cfg(not(feature = "aws-lc"))]
use ring as backend;

// HMAC, digests and randomness have the same API in both libraries; only public keys differ.
#[cfg(not(feature = "aws-lc"))]
use ::ring as provider;
#[cfg(feature = "aws-lc")]
use aws_lc_rs as provider;

use crate::algorithm::{Algorithm, AlgorithmSet};

/// The name of the backend this build verifies with: `ring` or `aws-lc`.
pub const BACKEND: &str = backend::NAME;

/// Public (or shared-secret) key material as read from a JWK.
#[derive(Debug)]
pub enum Components<'a> {
    /// Modulus and exponent, big-endian, without leading zero bytes.
    Rsa {
        /// The modulus.
        n: &'a [u8],
        /// The public exponent.
        e: &'a [u8],
    },
    /// The uncompressed point `0x04 || x || y` of a P-256 or P-384 key.
    Ec {
        /// The point.
        point: &'a [u8],
    },
    /// The 32-byte Ed25519 public key.
    Ed25519 {
        /// The key.
        public: &'a [u8],
    },
    /// A shared secret.
    Secret {
        /// The secret.
        secret: &'a [u8],
    },
}

/// A key ready to verify, for the algorithms it was built for.
pub struct PublicKey {
    key: Key,
    algorithms: AlgorithmSet,
}

/// A signature key of the backend, or a shared secret keyed once per bound algorithm.
enum Key {
    Signature(backend::Key),
    Hmac(Vec<(Algorithm, provider::hmac::Key)>),
}

impl PublicKey {
    /// Builds the key for `algorithms` (all of one family), or says why the backend refuses it.
    pub fn new(components: &Components<'_>, algorithms: AlgorithmSet) -> Result<Self, String> {
        let key = match components {
            Components::Secret { secret } => Key::Hmac(
                algorithms
                    .iter()
                    .filter_map(|algorithm| {
                        let hmac = hmac_algorithm(algorithm)?;
                        Some((algorithm, provider::hmac::Key::new(hmac, secret)))
                    })
                    .collect(),
            ),
            public => Key::Signature(backend::Key::new(public, algorithms)?),
        };
        Ok(Self { key, algorithms })
    }

    /// Whether `signature` is a valid signature of `message` under `algorithm`. An algorithm
    /// the key was not built for is never valid.
    pub fn verify(&self, algorithm: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        if !self.algorithms.contains(algorithm) {
            return false;
        }
        match &self.key {
            Key::Signature(key) => key.verify(algorithm, message, signature),
            // Constant-time comparison inside the library.
            Key::Hmac(keys) => keys
                .iter()
                .find(|(bound, _)| *bound == algorithm)
                .is_some_and(|(_, key)| provider::hmac::verify(key, message, signature).is_ok()),
        }
    }
}

fn hmac_algorithm(algorithm: Algorithm) -> Option<provider::hmac::Algorithm> {
    Some(match algorithm {
        Algorithm::HS256 => provider::hmac::HMAC_SHA256,
        Algorithm::HS384 => provider::hmac::HMAC_SHA384,
        Algorithm::HS512 => provider::hmac::HMAC_SHA512,
        _ => return None,
    })
}

/// SHA-256 over the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut context = provider::digest::Context::new(&provider::digest::SHA256);
    for part in parts {
        context.update(part);
    }
    let mut out = [0; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// Fills `bytes` from the operating system's secure random source; false if it failed.
pub fn fill_random(bytes: &mut [u8]) -> bool {
    provider::rand::SecureRandom::fill(&provider::rand::SystemRandom::new(), bytes).is_ok()
}
