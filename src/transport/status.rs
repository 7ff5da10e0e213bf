//! The one mapping from verdicts to the wire: [`Reason`] to `tokengate.v1.Reason`, and a
//! gateway refusal to its gRPC code, HTTP status, RFC 6750 challenge and the sentence a client
//! is shown. ext_authz and forward-auth both answer through it, so they cannot drift apart.
//!
//! Adding a [`Reason`] makes the matches here fail to compile until it is mapped.

use tokengate_core::Reason;

use crate::pb;

impl From<Reason> for pb::Reason {
    fn from(reason: Reason) -> Self {
        match reason {
            Reason::Malformed => Self::Malformed,
            Reason::TokenTooLarge => Self::TokenTooLarge,
            Reason::UnsupportedAlgorithm => Self::UnsupportedAlgorithm,
            Reason::UnsupportedHeader => Self::UnsupportedHeader,
            Reason::UnknownTenant => Self::UnknownTenant,
            Reason::UnknownKey => Self::UnknownKey,
            Reason::KeysUnavailable => Self::KeysUnavailable,
            Reason::InvalidSignature => Self::InvalidSignature,
            Reason::Expired => Self::Expired,
            Reason::NotYetValid => Self::NotYetValid,
            Reason::LifetimeTooLong => Self::LifetimeTooLong,
            Reason::InvalidIssuer => Self::InvalidIssuer,
            Reason::InvalidAudience => Self::InvalidAudience,
            Reason::MissingClaim => Self::MissingClaim,
            Reason::ClaimMismatch => Self::ClaimMismatch,
            Reason::ClientNotAllowed => Self::ClientNotAllowed,
            Reason::InvalidType => Self::InvalidType,
        }
    }
}

/// The `reason` field of a response: 0 (`REASON_UNSPECIFIED`) when valid.
pub(crate) fn wire_reason(reason: Option<Reason>) -> i32 {
    reason.map_or(pb::Reason::Unspecified, pb::Reason::from) as i32
}

/// How a gateway request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Denial {
    /// No token: 401 with a bare challenge (RFC 6750 §3.1).
    NoToken,
    /// A bad token: 401 `invalid_token`.
    InvalidToken,
    /// Not exactly one readable token in the request (two `Authorization` headers, a token in
    /// two places, a doubled scheme): 401 `invalid_request`, never a fallback to another one.
    InvalidRequest,
    /// A valid token without the required scope, role, audience or client: 403 `insufficient_scope`.
    InsufficientScope,
}

impl Denial {
    /// The refusal for a token the validator rejected.
    pub(crate) fn of(reason: Reason) -> Self {
        match reason {
            Reason::ClaimMismatch | Reason::ClientNotAllowed => Self::InsufficientScope,
            _ => Self::InvalidToken,
        }
    }

    /// The gRPC code of the ext_authz answer.
    pub(crate) fn grpc_code(self) -> tonic::Code {
        match self {
            Self::NoToken | Self::InvalidToken | Self::InvalidRequest => {
                tonic::Code::Unauthenticated
            }
            Self::InsufficientScope => tonic::Code::PermissionDenied,
        }
    }

    /// The HTTP status the gateway answers the client with.
    pub(crate) fn http_status(self) -> http::StatusCode {
        match self {
            Self::NoToken | Self::InvalidToken | Self::InvalidRequest => {
                http::StatusCode::UNAUTHORIZED
            }
            Self::InsufficientScope => http::StatusCode::FORBIDDEN,
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3), with `description` made safe to quote.
    pub(crate) fn challenge(self, description: &str) -> String {
        let description = challenge_text(description);
        match self {
            Self::NoToken => "Bearer".to_owned(),
            Self::InvalidToken => {
                format!("Bearer error=\"invalid_token\", error_description=\"{description}\"")
            }
            Self::InsufficientScope => {
                format!("Bearer error=\"insufficient_scope\", error_description=\"{description}\"")
            }
            Self::InvalidRequest => {
                format!("Bearer error=\"invalid_request\", error_description=\"{description}\"")
            }
        }
    }
}

/// The HTTP status when tokengate cannot decide (the tenant has no usable keys).
pub(crate) const UNAVAILABLE_HTTP: http::StatusCode = http::StatusCode::SERVICE_UNAVAILABLE;

/// What a gateway tells the client about a rejected token: a fixed sentence per reason (the
/// full detail, which may name internal URLs or allow-lists, is for operators).
pub(crate) fn public_description(reason: Reason) -> &'static str {
    match reason {
        Reason::Malformed => "the token is malformed",
        Reason::TokenTooLarge => "the token is too large",
        Reason::UnsupportedAlgorithm => "the token's algorithm is not accepted",
        Reason::UnsupportedHeader => "the token's header is not accepted",
        Reason::UnknownTenant => "the token's issuer is not accepted",
        Reason::UnknownKey => "the token was signed by an unknown key",
        Reason::KeysUnavailable => "the token cannot be checked right now",
        Reason::InvalidSignature => "the token's signature is invalid",
        Reason::Expired => "the token has expired",
        Reason::NotYetValid => "the token is not valid yet",
        Reason::LifetimeTooLong => "the token lives too long",
        Reason::InvalidIssuer => "the token's issuer is not accepted",
        Reason::InvalidAudience => "the token is not for this API",
        Reason::MissingClaim => "the token lacks a required claim",
        Reason::ClaimMismatch => "the token lacks a required scope or claim value",
        Reason::ClientNotAllowed => "the client application is not allowed",
        Reason::InvalidType => "the token's type is not accepted",
    }
}

/// Text safe inside a quoted RFC 6750 `error_description` (printable ASCII, no `"` or `\`).
fn challenge_text(detail: &str) -> String {
    detail
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || !(' '..='~').contains(&c) {
                '\''
            } else {
                c
            }
        })
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_maps_to_the_proto_value_of_its_name() {
        for (index, reason) in Reason::ALL.into_iter().enumerate() {
            let wire = pb::Reason::from(reason);
            assert_eq!(wire as i32, index as i32 + 1, "{reason}");
            assert_eq!(
                wire.as_str_name(),
                format!("REASON_{}", reason.code().to_ascii_uppercase()),
            );
        }
        assert_eq!(wire_reason(None), 0);
    }

    #[test]
    fn refusals_map_to_matching_grpc_and_http_answers() {
        assert_eq!(Denial::of(Reason::Expired), Denial::InvalidToken);
        assert_eq!(Denial::of(Reason::ClaimMismatch), Denial::InsufficientScope);
        for denial in [
            Denial::NoToken,
            Denial::InvalidToken,
            Denial::InvalidRequest,
        ] {
            assert_eq!(denial.grpc_code(), tonic::Code::Unauthenticated);
            assert_eq!(denial.http_status(), http::StatusCode::UNAUTHORIZED);
        }
        let scope = Denial::InsufficientScope;
        assert_eq!(scope.grpc_code(), tonic::Code::PermissionDenied);
        assert_eq!(scope.http_status(), http::StatusCode::FORBIDDEN);
        assert_eq!(Denial::NoToken.challenge("x"), "Bearer");
    }

    #[test]
    fn challenges_never_carry_quotes_or_control_characters() {
        assert_eq!(challenge_text("a \"b\"\n\\c"), "a 'b'''c");
    }
}
