//! The typed outcome of judging one token: valid with what the token established, or rejected
//! with its reason, detail and hint. Every front end builds its own form from it (the gRPC
//! response, the gateway decision, the CLI's JSON line).

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use tokengate_core::algorithm::Algorithm;
use tokengate_core::token::ParsedToken;
use tokengate_core::{Reason, Rejection};

use crate::diagnose::Hint;
use crate::keys::slot::KeySlot;
use crate::tenants::tenant::Tenant;

/// The verdict on one token.
#[derive(Debug)]
pub enum Judgement {
    /// The token is valid. Shared with the token cache: a hit copies nothing.
    Valid(Arc<Accepted>),
    /// The token is rejected.
    Rejected(Box<Refused>),
}

/// What a valid token established.
#[derive(Debug)]
pub struct Accepted {
    /// The tenant that accepted it.
    pub tenant: Arc<Tenant>,
    /// `iss`.
    pub issuer: Option<Box<str>>,
    /// `sub`.
    pub subject: Option<Box<str>>,
    /// The id of the key that verified it (or the header's `kid`).
    pub key_id: Option<Box<str>>,
    /// The algorithm it was verified with.
    pub algorithm: Algorithm,
    /// `exp`, in whole seconds.
    pub expires_at: Option<i64>,
    /// The payload JSON exactly as in the token.
    pub claims_json: Bytes,
    /// The claims as JSON values, read once from `claims_json` by the first front end that
    /// needs them (the gateways, the CLI) and shared through the cache after that.
    pub(crate) claims: OnceLock<Option<ClaimsMap>>,
}

/// The members of a payload, as JSON values.
pub(crate) type ClaimsMap = serde_json::Map<String, serde_json::Value>;

impl Accepted {
    /// The claims as JSON values. The core's strict parser accepted these bytes, and it refuses
    /// everything serde_json would (numbers out of range and lone surrogates at every depth,
    /// nesting past 16), so this never fails for an accepted token; if it ever did, the
    /// front ends deny the request rather than forward it without claims.
    pub fn claims(&self) -> Option<&ClaimsMap> {
        self.claims
            .get_or_init(|| serde_json::from_slice(&self.claims_json).ok())
            .as_ref()
    }
}

/// Why a token was rejected, and what could be told about it.
#[derive(Debug)]
pub struct Refused {
    /// The tenant that judged it, when one was chosen.
    pub tenant: Option<Arc<Tenant>>,
    /// The reason and the detail (with the hint's sentence, when there is one).
    pub rejection: Rejection,
    /// A recognised cause, with a stable code.
    pub hint: Option<Hint>,
    /// What the token says of itself, when it could be decoded.
    pub token: TokenFacts,
}

/// What an unverified token says of itself (for operators; never trusted).
#[derive(Debug, Default)]
pub struct TokenFacts {
    /// The header `alg`.
    pub algorithm: Option<String>,
    /// The header `kid`.
    pub key_id: Option<String>,
    /// `iss`.
    pub issuer: Option<String>,
    /// `exp`, in whole seconds.
    pub expires_at: Option<i64>,
}

impl TokenFacts {
    /// The facts of a decoded token.
    pub fn of(token: &ParsedToken<'_>) -> Self {
        Self {
            algorithm: Some(token.header.alg.to_string()),
            key_id: token.header.kid.as_deref().map(str::to_owned),
            issuer: token.claims.iss.as_deref().map(str::to_owned),
            expires_at: token.claims.exp.map(|exp| exp as i64),
        }
    }
}

impl Judgement {
    /// A rejection; a diagnosis appends its sentence to the detail and sets the hint.
    pub fn rejected(
        tenant: Option<Arc<Tenant>>,
        mut rejection: Rejection,
        diagnosis: Option<(Hint, String)>,
        token: TokenFacts,
    ) -> Self {
        let hint = diagnosis.map(|(hint, sentence)| {
            rejection.detail = format!("{}; {sentence}", rejection.detail).into();
            hint
        });
        Self::Rejected(Box::new(Refused {
            tenant,
            rejection,
            hint,
            token,
        }))
    }

    /// Whether the token is valid.
    pub fn is_valid(&self) -> bool {
        matches!(self, Self::Valid(_))
    }

    /// The reason, when rejected.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Self::Valid(_) => None,
            Self::Rejected(refused) => Some(refused.rejection.reason),
        }
    }

    /// The tenant that judged the token, if one was chosen.
    pub fn tenant(&self) -> Option<&Arc<Tenant>> {
        match self {
            Self::Valid(accepted) => Some(&accepted.tenant),
            Self::Rejected(refused) => refused.tenant.as_ref(),
        }
    }

    /// The key slot to refetch when a refetch could change this verdict: the token names a
    /// `kid` the chosen tenant does not know (yet).
    pub fn key_refetch(&self) -> Option<&Arc<KeySlot>> {
        match self {
            Self::Rejected(refused)
                if refused.rejection.reason == Reason::UnknownKey
                    && refused.token.key_id.is_some() =>
            {
                refused.tenant.as_ref().map(|tenant| tenant.keys())
            }
            _ => None,
        }
    }
}

impl Refused {
    /// The stable code of the hint, or "".
    pub fn hint_code(&self) -> &'static str {
        self.hint.map_or("", Hint::code)
    }

    /// The id of the tenant that judged the token, or "".
    pub fn tenant_id(&self) -> &str {
        self.tenant.as_ref().map_or("", |tenant| tenant.id())
    }
}
