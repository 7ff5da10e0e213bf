//! The flat report form of a [`Judgement`]: one JSON object per token, as `tokengate validate`
//! prints it (and as tests compare judgements field for field).

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use tokengate_core::Reason;

use crate::validator::judgement::Judgement;

/// A judgement as the CLI reports it; absent values are empty.
#[derive(Debug, Default, Serialize)]
pub struct Verdict {
    /// Whether the token is valid.
    pub valid: bool,
    /// The reason code when rejected.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_reason"
    )]
    pub reason: Option<Reason>,
    /// Human-readable detail (empty when valid).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The tenant that judged the token.
    pub tenant: String,
    /// `iss`, when decodable.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub issuer: String,
    /// `sub`, only when valid.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subject: String,
    /// `exp` in seconds (0 when absent).
    pub expires_at: i64,
    /// The key id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key_id: String,
    /// The header `alg`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub algorithm: String,
    /// The stable code of a recognised cause (see `diagnose::Hint`).
    #[serde(skip_serializing_if = "str::is_empty")]
    pub hint_code: &'static str,
    /// The payload JSON exactly as in the token; only when valid.
    #[serde(skip)]
    pub claims_json: Bytes,
}

fn serialize_reason<S: serde::Serializer>(
    reason: &Option<Reason>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match reason {
        Some(reason) => serializer.serialize_str(reason.code()),
        None => serializer.serialize_none(),
    }
}

fn text(value: Option<&str>) -> String {
    value.map(str::to_owned).unwrap_or_default()
}

impl From<&Judgement> for Verdict {
    fn from(judgement: &Judgement) -> Self {
        match judgement {
            Judgement::Valid(accepted) => Self {
                valid: true,
                tenant: accepted.tenant.id().to_owned(),
                issuer: text(accepted.issuer.as_deref()),
                subject: text(accepted.subject.as_deref()),
                expires_at: accepted.expires_at.unwrap_or(0),
                key_id: text(accepted.key_id.as_deref()),
                algorithm: accepted.algorithm.name().to_owned(),
                claims_json: accepted.claims_json.clone(),
                ..Self::default()
            },
            Judgement::Rejected(refused) => Self {
                reason: Some(refused.rejection.reason),
                detail: refused.rejection.detail.to_string(),
                tenant: refused.tenant_id().to_owned(),
                issuer: text(refused.token.issuer.as_deref()),
                expires_at: refused.token.expires_at.unwrap_or(0),
                key_id: text(refused.token.key_id.as_deref()),
                algorithm: text(refused.token.algorithm.as_deref()),
                hint_code: refused.hint_code(),
                ..Self::default()
            },
        }
    }
}

impl From<Judgement> for Verdict {
    fn from(judgement: Judgement) -> Self {
        Self::from(&judgement)
    }
}

impl Verdict {
    /// One verdict as a JSON line (claims included when valid).
    pub fn to_json(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_else(|_| json!({"valid": self.valid}));
        if let Some(object) = value.as_object_mut()
            && !self.claims_json.is_empty()
        {
            let claims: Value = serde_json::from_slice(&self.claims_json).unwrap_or(Value::Null);
            object.insert("claims".into(), claims);
        }
        value.to_string()
    }
}
