//! The crypto seam: every signature check, HMAC and digest tokengate makes goes through this
//! module, so the backend can be swapped in one place.
//!
//! - Default: [`ring`].
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
pub struct PublicKey(backend::Key);

impl PublicKey {
    /// Builds the key for `algorithms` (all of one family), or says why the backend refuses it.
    pub fn new(components: &Components<'_>, algorithms: AlgorithmSet) -> Result<Self, String> {
        backend::Key::new(components, algorithms).map(Self)
    }

    /// Whether `signature` is a valid signature of `message` under `algorithm`. An algorithm
    /// the key was not built for is never valid.
    pub fn verify(&self, algorithm: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        self.0.verify(algorithm, message, signature)
    }
}

/// SHA-256 over the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    backend::sha256(parts)
}

/// Fills `bytes` from the operating system's secure random source; false if it failed.
pub fn fill_random(bytes: &mut [u8]) -> bool {
    backend::fill_random(bytes)
}
