//! The `aws-lc-rs` backend (feature `aws-lc`): public keys are parsed once, when the key set
//! loads, into one `ParsedPublicKey` per bound algorithm.

use aws_lc_rs::signature;

use super::Components;
use crate::algorithm::{Algorithm, AlgorithmSet};

/// The backend's name.
pub(super) const NAME: &str = "aws-lc";

/// Parsed public keys, one per algorithm the key is bound to.
pub(super) struct Key(Vec<(Algorithm, signature::ParsedPublicKey)>);

impl Key {
    pub(super) fn new(
        components: &Components<'_>,
        algorithms: AlgorithmSet,
    ) -> Result<Self, String> {
        let bytes = match components {
            Components::Rsa { n, e } => rsa_public_key_der(n, e),
            Components::Ec { point } => point.to_vec(),
            Components::Ed25519 { public } => public.to_vec(),
            // Shared secrets are keyed in `super`, never here.
            Components::Secret { .. } => return Err("not a public key".into()),
        };
        let mut keys = Vec::new();
        for algorithm in algorithms.iter() {
            let Some(verification) = verification_algorithm(algorithm) else {
                continue;
            };
            let parsed =
                signature::ParsedPublicKey::new(verification, &bytes).map_err(|error| {
                    format!("the key is not a valid {algorithm} public key ({error})")
                })?;
            keys.push((algorithm, parsed));
        }
        Ok(Self(keys))
    }

    pub(super) fn verify(&self, algorithm: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        self.0
            .iter()
            .find(|(bound, _)| *bound == algorithm)
            .is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok())
    }
}

fn verification_algorithm(
    algorithm: Algorithm,
) -> Option<&'static dyn signature::VerificationAlgorithm> {
    Some(match algorithm {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &signature::ED25519,
        _ => return None,
    })
}

/// The DER `RSAPublicKey` (RFC 8017 A.1.1) of a modulus and exponent.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut body = der_integer(n);
    body.extend(der_integer(e));
    der(0x30, &body)
}

/// A DER INTEGER of an unsigned big-endian number (a 0 byte first when the top bit is set).
fn der_integer(number: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(number.len() + 1);
    if number.first().is_none_or(|first| first & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(number);
    der(0x02, &content)
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|byte| **byte == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_and_sign_bytes() {
        assert_eq!(der_integer(&[0x01]), [0x02, 0x01, 0x01]);
        assert_eq!(der_integer(&[0x80]), [0x02, 0x02, 0x00, 0x80]);
        let long = der(0x30, &[0; 300]);
        assert_eq!(&long[..4], &[0x30, 0x82, 0x01, 0x2c]);
    }
}
