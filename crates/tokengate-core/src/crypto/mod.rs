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

/// The encodings of the Ed25519 points of small order (orders 1, 2, 4 and 8), and the
/// non-canonical encodings of the same points, with the sign bit cleared (as libsodium lists
/// them). A public key that is one of them verifies forged signatures (`R` = identity, `S` = 0),
/// so such a key is never loaded. Each was checked with `[8]A = identity` on the curve.
const ED25519_SMALL_ORDER: [[u8; 32]; 7] = [
    // 0 (order 4)
    [0; 32],
    // 1, the identity (order 1)
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    // order 8
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    // order 8
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    // p - 1 (order 2)
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // p, a non-canonical 0 (order 4)
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // p + 1, a non-canonical 1 (order 1)
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

/// Whether a 32-byte Ed25519 public key encodes a point of small order (either sign).
pub fn is_small_order_ed25519(public: &[u8]) -> bool {
    let Ok(mut key) = <[u8; 32]>::try_from(public) else {
        return false;
    };
    key[31] &= 0x7f;
    ED25519_SMALL_ORDER.contains(&key)
}
