//! What `tokengate bench` sends and how it checks what comes back: requests built once per
//! token, and each answer held against the verdict the token file expects (a wrong verdict is
//! counted, never ignored).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BufMut as _;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};

use super::tokens::{Expect, Sample};
use super::wire::{self, Encoded};
use crate::pb;

/// A token with its requests encoded once.
pub(super) struct Prepared {
    /// The token and its expected verdict.
    pub sample: Sample,
    /// `ValidateTokenRequest` (the correlation id is the token's index).
    pub validate: Encoded,
    /// Envoy `CheckRequest` with the token in `authorization`.
    pub check: Encoded,
}

/// Encodes each token's requests once.
pub(super) fn prepare(samples: &[Sample], tenant: &str) -> Arc<[Prepared]> {
    samples
        .iter()
        .enumerate()
        .map(|(index, sample)| Prepared {
            sample: sample.clone(),
            validate: Encoded::of(&request(sample, tenant, index)),
            check: Encoded::of(&check_request(&sample.token, tenant)),
        })
        .collect()
}

/// A `ValidateBatchRequest` from pre-encoded requests: each is field 1, length-delimited.
pub(super) fn batch_request(picked: &[&Prepared]) -> Encoded {
    let len: usize = picked.iter().map(|p| p.validate.0.len() + 6).sum();
    let mut buf = bytes::BytesMut::with_capacity(len);
    for prepared in picked {
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut buf);
        prost::encoding::encode_varint(prepared.validate.0.len() as u64, &mut buf);
        buf.put_slice(&prepared.validate.0);
    }
    Encoded(buf.freeze())
}

pub(super) fn request(sample: &Sample, tenant: &str, index: usize) -> pb::ValidateTokenRequest {
    pb::ValidateTokenRequest {
        token: sample.token.to_string(),
        tenant: tenant.to_owned(),
        correlation_id: index.to_string(),
    }
}

/// Why a `ValidateToken` answer is wrong, if it is.
pub(super) fn check_validation(sample: &Sample, response: &wire::Answer) -> Option<String> {
    let right = match sample.expect {
        Expect::Valid => response.valid,
        Expect::Rejected(reason) => !response.valid && response.reason_code == reason.code(),
    };
    (!right).then(|| {
        format!(
            "expected {}, got {} {} ({})",
            expected(sample.expect),
            if response.valid { "valid" } else { "rejected" },
            response.reason_code,
            response.detail
        )
    })
}

pub(super) fn expected(expect: Expect) -> String {
    match expect {
        Expect::Valid => "valid".into(),
        Expect::Rejected(reason) => format!("rejected {}", reason.code()),
    }
}

pub(super) fn check_request(token: &str, tenant: &str) -> CheckRequest {
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
    let mut context_extensions = HashMap::new();
    if !tenant.is_empty() {
        context_extensions.insert("tenant".to_owned(), tenant.to_owned());
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "GET".into(),
                    path: "/bench".into(),
                    headers: HashMap::from([(
                        "authorization".to_owned(),
                        format!("Bearer {token}"),
                    )]),
                    ..HttpRequest::default()
                }),
                ..Request::default()
            }),
            context_extensions,
            ..AttributeContext::default()
        }),
    }
}

/// Why a `Check` answer is wrong: an allow for a valid token, a denial naming the expected
/// reason for the others.
pub(super) fn check_decision(sample: &Sample, response: &wire::Decision) -> Option<String> {
    let allowed = response
        .status
        .as_ref()
        .is_some_and(|status| status.code == 0);
    let denied_code = response
        .denied_response
        .as_ref()
        .and_then(|denied| error_code(&denied.body));
    judge_gateway(sample.expect, allowed, denied_code)
}

pub(super) fn error_code(body: &str) -> Option<String> {
    let body: serde_json::Value = serde_json::from_str(body).ok()?;
    body.get("error")?.as_str().map(str::to_owned)
}

pub(super) fn judge_gateway(
    expect: Expect,
    allowed: bool,
    denied_code: Option<String>,
) -> Option<String> {
    let right = match expect {
        Expect::Valid => allowed,
        Expect::Rejected(reason) => !allowed && denied_code.as_deref() == Some(reason.code()),
    };
    (!right).then(|| {
        format!(
            "expected {}, got {}",
            expected(expect),
            if allowed {
                "allowed".to_owned()
            } else {
                format!("denied {}", denied_code.unwrap_or_default())
            }
        )
    })
}
