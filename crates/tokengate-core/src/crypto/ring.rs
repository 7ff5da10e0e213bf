//! The `ring` backend (the default).
//!
//! ring parses RSA and EC public keys on every verification (it has no parsed-key type for
//! them), so keys keep their components. EC points are checked to be on their curve here, at
//! load, so that a bad key never counts as loaded.

use ring::signature;

use super::Components;
use crate::algorithm::{Algorithm, AlgorithmSet};

/// The backend's name.
pub(super) const NAME: &str = "ring";

/// Key material in the form ring takes.
pub(super) enum Key {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec { point: Vec<u8> },
    Ed25519 { public: Vec<u8> },
}

impl Key {
    /// The key's material; `super` binds it to its algorithms.
    pub(super) fn new(components: &Components<'_>, _: AlgorithmSet) -> Result<Self, String> {
        Ok(match components {
            Components::Rsa { n, e } => Self::Rsa {
                n: n.to_vec(),
                e: e.to_vec(),
            },
            Components::Ec { point } => {
                if !on_its_curve(point) {
                    return Err("the EC public key is not a point on its curve".into());
                }
                Self::Ec {
                    point: point.to_vec(),
                }
            }
            Components::Ed25519 { public } => Self::Ed25519 {
                public: public.to_vec(),
            },
            // Shared secrets are keyed in `super`, never here.
            Components::Secret { .. } => return Err("not a public key".into()),
        })
    }

    pub(super) fn verify(&self, algorithm: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Rsa { n, e } => {
                let Some(parameters) = rsa_parameters(algorithm) else {
                    return false;
                };
                signature::RsaPublicKeyComponents { n, e }
                    .verify(parameters, message, signature)
                    .is_ok()
            }
            Self::Ec { point } => {
                let algorithm: &'static dyn signature::VerificationAlgorithm = match algorithm {
                    Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
                    Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
                    _ => return false,
                };
                signature::UnparsedPublicKey::new(algorithm, point)
                    .verify(message, signature)
                    .is_ok()
            }
            Self::Ed25519 { public } => {
                algorithm == Algorithm::EdDSA
                    && signature::UnparsedPublicKey::new(&signature::ED25519, public)
                        .verify(message, signature)
                        .is_ok()
            }
        }
    }
}

/// Whether an uncompressed P-256 (65 bytes) or P-384 (97 bytes) point is on its curve.
fn on_its_curve(point: &[u8]) -> bool {
    match point.len() {
        65 => p256::PublicKey::from_sec1_bytes(point).is_ok(),
        97 => p384::PublicKey::from_sec1_bytes(point).is_ok(),
        _ => false,
    }
}

fn rsa_parameters(algorithm: Algorithm) -> Option<&'static signature::RsaParameters> {
    Some(match algorithm {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}
