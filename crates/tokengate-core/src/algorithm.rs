//! JWS signature algorithms tokengate verifies, and sets of them.

use std::fmt;

/// A JWS `alg` that tokengate can verify (RFC 7518, RFC 8037, RFC 9864).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256 and MGF1 with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384 and MGF1 with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512 and MGF1 with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519 (`EdDSA` with an OKP Ed25519 key, or the fully specified `Ed25519`).
    EdDSA,
    /// HMAC with SHA-256 (shared secrets only).
    HS256,
    /// HMAC with SHA-384 (shared secrets only).
    HS384,
    /// HMAC with SHA-512 (shared secrets only).
    HS512,
}

/// The key type an algorithm needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFamily {
    /// `kty: RSA`.
    Rsa,
    /// `kty: EC` on P-256.
    EcP256,
    /// `kty: EC` on P-384.
    EcP384,
    /// `kty: OKP`, `crv: Ed25519`.
    Ed25519,
    /// `kty: oct` (a shared secret).
    Symmetric,
}

impl KeyFamily {
    /// The family as a JWK names it (`kty`, with the curve where there is one).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rsa => "RSA",
            Self::EcP256 => "EC P-256",
            Self::EcP384 => "EC P-384",
            Self::Ed25519 => "OKP Ed25519",
            Self::Symmetric => "oct",
        }
    }
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Self; 12] = [
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
        Self::HS256,
        Self::HS384,
        Self::HS512,
    ];

    /// Parses a JWS `alg` value, case-sensitively. `Ed25519` (RFC 9864) is accepted as EdDSA.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "EdDSA" | "Ed25519" => Self::EdDSA,
            "HS256" => Self::HS256,
            "HS384" => Self::HS384,
            "HS512" => Self::HS512,
            _ => return None,
        })
    }

    /// The canonical JWS name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
        }
    }

    /// The key family this algorithm needs.
    pub const fn family(self) -> KeyFamily {
        match self {
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                KeyFamily::Rsa
            }
            Self::ES256 => KeyFamily::EcP256,
            Self::ES384 => KeyFamily::EcP384,
            Self::EdDSA => KeyFamily::Ed25519,
            Self::HS256 | Self::HS384 | Self::HS512 => KeyFamily::Symmetric,
        }
    }

    /// Whether this is an HMAC (shared-secret) algorithm.
    pub const fn is_symmetric(self) -> bool {
        matches!(self.family(), KeyFamily::Symmetric)
    }

    /// The exact signature length in bytes, where the algorithm fixes it.
    pub const fn fixed_signature_len(self) -> Option<usize> {
        match self {
            Self::ES256 | Self::EdDSA => Some(64),
            Self::ES384 => Some(96),
            Self::HS256 => Some(32),
            Self::HS384 => Some(48),
            Self::HS512 => Some(64),
            _ => None,
        }
    }

    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of algorithms, as a bit set (copyable, allocation-free).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AlgorithmSet(u16);

impl AlgorithmSet {
    /// The empty set.
    pub const EMPTY: Self = Self(0);

    /// A set with one algorithm.
    pub const fn only(algorithm: Algorithm) -> Self {
        Self(algorithm.bit())
    }

    /// Every public-key algorithm: the default allow-list of a tenant (shared secrets are only
    /// for keys from the operator's own configuration).
    pub fn asymmetric() -> Self {
        Algorithm::ALL
            .into_iter()
            .filter(|algorithm| !algorithm.is_symmetric())
            .collect()
    }

    /// All algorithms of a key family.
    pub fn family(family: KeyFamily) -> Self {
        Algorithm::ALL
            .into_iter()
            .filter(|algorithm| algorithm.family() == family)
            .collect()
    }

    /// Whether `algorithm` is in the set.
    pub const fn contains(self, algorithm: Algorithm) -> bool {
        self.0 & algorithm.bit() != 0
    }

    /// Adds `algorithm`.
    pub fn insert(&mut self, algorithm: Algorithm) {
        self.0 |= algorithm.bit();
    }

    /// Algorithms in both sets.
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// Algorithms in either set.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The algorithms in the set, in [`Algorithm::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(move |algorithm| self.contains(*algorithm))
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        let mut set = Self::EMPTY;
        for algorithm in iter {
            set.insert(algorithm);
        }
        set
    }
}

impl fmt::Debug for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, algorithm) in self.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            f.write_str(algorithm.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for algorithm in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(algorithm.name()), Some(algorithm));
        }
        assert_eq!(Algorithm::from_name("Ed25519"), Some(Algorithm::EdDSA));
        for name in [
            "none", "None", "NONE", "nOnE", "rs256", "ES512", "", "HS256 ",
        ] {
            assert_eq!(Algorithm::from_name(name), None, "{name}");
        }
    }

    #[test]
    fn sets_behave_like_sets() {
        let rsa = AlgorithmSet::family(KeyFamily::Rsa);
        assert!(rsa.contains(Algorithm::PS384));
        assert!(!rsa.contains(Algorithm::ES256));
        let only = AlgorithmSet::only(Algorithm::RS256);
        assert_eq!(rsa.intersection(only), only);
        assert_eq!(only.to_string(), "RS256");
        assert_eq!(
            only.union(AlgorithmSet::only(Algorithm::ES256)).to_string(),
            "RS256, ES256"
        );
    }
}
