//! The stable, machine-readable reasons a token is rejected.

use std::fmt;

/// Why a token was rejected. Mirrors `tokengate.v1.Reason` one to one; the [`Reason::code`]
/// strings (and the proto's numbers, mapped in the service) are a contract that tools and
/// dashboards rely on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Not a compact JWS, bad base64url or JSON, a claim of the wrong type, or a JWE.
    Malformed,
    /// Larger than the configured maximum token size.
    TokenTooLarge,
    /// `alg` is `none`, unknown, not allowed for the tenant, or not the key's algorithm.
    UnsupportedAlgorithm,
    /// A header member tokengate refuses to honour (`crit`, `b64`, `jku`, `jwk`, …).
    UnsupportedHeader,
    /// No tenant matches the request's tenant id or the token's issuer.
    UnknownTenant,
    /// The token's `kid` is not in the tenant's key set.
    UnknownKey,
    /// The tenant has no usable keys.
    KeysUnavailable,
    /// The signature does not verify.
    InvalidSignature,
    /// `exp` is in the past beyond the clock skew.
    Expired,
    /// `nbf` or `iat` is in the future beyond the clock skew.
    NotYetValid,
    /// The token lives longer than the tenant allows.
    LifetimeTooLong,
    /// `iss` is not one of the tenant's issuers.
    InvalidIssuer,
    /// `aud` holds none of the tenant's audiences.
    InvalidAudience,
    /// A claim the policy requires is absent.
    MissingClaim,
    /// A required claim does not hold the required values.
    ClaimMismatch,
    /// The client application is not in the tenant's allow-list.
    ClientNotAllowed,
    /// The `typ` header is not one of the tenant's token types.
    InvalidType,
}

impl Reason {
    /// Every reason, in wire order.
    pub const ALL: [Self; 17] = [
        Self::Malformed,
        Self::TokenTooLarge,
        Self::UnsupportedAlgorithm,
        Self::UnsupportedHeader,
        Self::UnknownTenant,
        Self::UnknownKey,
        Self::KeysUnavailable,
        Self::InvalidSignature,
        Self::Expired,
        Self::NotYetValid,
        Self::LifetimeTooLong,
        Self::InvalidIssuer,
        Self::InvalidAudience,
        Self::MissingClaim,
        Self::ClaimMismatch,
        Self::ClientNotAllowed,
        Self::InvalidType,
    ];

    /// A short snake_case code, stable across releases; used in JSON output, logs and metric labels.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::TokenTooLarge => "token_too_large",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::UnsupportedHeader => "unsupported_header",
            Self::UnknownTenant => "unknown_tenant",
            Self::UnknownKey => "unknown_key",
            Self::KeysUnavailable => "keys_unavailable",
            Self::InvalidSignature => "invalid_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::InvalidIssuer => "invalid_issuer",
            Self::InvalidAudience => "invalid_audience",
            Self::MissingClaim => "missing_claim",
            Self::ClaimMismatch => "claim_mismatch",
            Self::ClientNotAllowed => "client_not_allowed",
            Self::InvalidType => "invalid_type",
        }
    }

    /// The position in [`Reason::ALL`]: a dense index for tables (metrics handles). The wire
    /// value of `tokengate.v1.Reason` is mapped in the service, by name, not by this number.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_dense_and_codes_unique() {
        let mut codes = std::collections::HashSet::new();
        for (index, reason) in Reason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), index);
            assert!(
                codes.insert(reason.code()),
                "duplicate code {}",
                reason.code()
            );
        }
    }
}
