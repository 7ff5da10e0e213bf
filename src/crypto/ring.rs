//! The `ring` backend (the default).
//!
//! ring parses RSA and EC public keys on every verification (it has no parsed-key type for
//! them), so keys keep their components.

use ring::{digest, hmac, rand, signature};

use super::Components;
use crate::algorithm::{Algorithm, AlgorithmSet};

/// The backend's name.
pub(super) const NAME: &str = "ring";

/// Key material in the form ring takes.
pub(super) enum Key {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec { point: Vec<u8> },
    Ed25519 { public: Vec<u8> },
    Hmac(Vec<(Algorithm, hmac::Key)>),
}

impl Key {
    pub(super) fn new(
        components: &Components<'_>,
        algorithms: AlgorithmSet,
    ) -> Result<Self, String> {
        Ok(match components {
            Components::Rsa { n, e } => Self::Rsa {
                n: n.to_vec(),
                e: e.to_vec(),
            },
            Components::Ec { point } => Self::Ec {
                point: point.to_vec(),
            },
            Components::Ed25519 { public } => Self::Ed25519 {
                public: public.to_vec(),
            },
            Components::Secret { secret } => Self::Hmac(
                algorithms
                    .iter()
                    .filter_map(|algorithm| {
                        let hmac_algorithm = match algorithm {
                            Algorithm::HS256 => hmac::HMAC_SHA256,
                            Algorithm::HS384 => hmac::HMAC_SHA384,
                            Algorithm::HS512 => hmac::HMAC_SHA512,
                            _ => return None,
                        };
                        Some((algorithm, hmac::Key::new(hmac_algorithm, secret)))
                    })
                    .collect(),
            ),
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
            // Constant-time comparison inside ring.
            Self::Hmac(keys) => keys
                .iter()
                .find(|(bound, _)| *bound == algorithm)
                .is_some_and(|(_, key)| hmac::verify(key, message, signature).is_ok()),
        }
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

pub(super) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut context = digest::Context::new(&digest::SHA256);
    for part in parts {
        context.update(part);
    }
    let mut out = [0; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

pub(super) fn fill_random(bytes: &mut [u8]) -> bool {
    rand::SecureRandom::fill(&rand::SystemRandom::new(), bytes).is_ok()
}
