//! What a gateway asks and what it is answered, whatever the transport (Envoy ext_authz over
//! gRPC, or forward-auth over HTTP): where the token is in the request, the route's own
//! requirements, and the decision with the headers for the upstream.
//!
//! Per route, a gateway can name the `tenant`, and add `required_scopes` (any of, separated by
//! spaces or commas, matched against `scp`/`scope` and `roles`) and `audiences` (any of).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use tokengate_core::Reason;

use crate::config::ExtAuthzSettings;
use crate::runtime::Snapshot;
use crate::transport::status::{self, Denial};
use crate::validator::judgement::{Accepted, Judgement};

/// What a gateway request asks for.
#[derive(Debug, Default)]
pub(crate) struct GatewayRequest<'a> {
    /// The token found in the request, if any.
    pub token: Option<String>,
    /// The tenant bound to the route (empty: by issuer).
    pub tenant: &'a str,
    /// Scopes or roles of which the route needs one.
    pub required_scopes: Vec<&'a str>,
    /// Audiences of which the route needs one.
    pub audiences: Vec<&'a str>,
}

/// A gateway decision, independent of the transport.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Let the request through.
    Allow {
        /// Headers to set on the upstream request (overwriting the client's).
        set: Vec<(String, String)>,
        /// Headers to remove from the upstream request.
        remove: Vec<String>,
        /// The tenant that accepted the token.
        tenant: String,
        /// The claims.
        claims: serde_json::Value,
    },
    /// tokengate cannot decide (the tenant has no usable keys): an error for the gateway, so
    /// that its failure policy (`failure_mode_allow`, `status_on_error`) applies.
    Unavailable {
        /// What is missing (for logs; not sent to clients).
        detail: String,
    },
    /// Refuse it.
    Deny {
        /// Which refusal.
        denial: Denial,
        /// The `WWW-Authenticate` value.
        challenge: String,
        /// The JSON body.
        body: String,
        /// The reason code.
        code: String,
    },
}

impl Decision {
    /// A refusal with its RFC 6750 challenge and JSON body.
    pub(crate) fn deny(denial: Denial, detail: &str, code: &str) -> Self {
        Self::Deny {
            denial,
            challenge: denial.challenge(detail),
            body: json!({ "error": code, "detail": detail }).to_string(),
            code: code.to_owned(),
        }
    }

    /// The HTTP status a gateway answers with.
    pub(crate) fn http_status(&self) -> http::StatusCode {
        match self {
            Self::Allow { .. } => http::StatusCode::OK,
            Self::Unavailable { .. } => status::UNAVAILABLE_HTTP,
            Self::Deny { denial, .. } => denial.http_status(),
        }
    }
}

/// Decides one gateway request on one snapshot: no token, a bad token, a valid token that misses
/// a route requirement, or an allow with the headers to set.
pub(crate) async fn authorize(
    snapshot: &Snapshot,
    request: &GatewayRequest<'_>,
    budget: Option<std::time::Duration>,
) -> Decision {
    let Some(token) = &request.token else {
        return Decision::deny(
            Denial::NoToken,
            "no bearer token in the request",
            "missing_token",
        );
    };
    let judgement = snapshot
        .validator
        .judge_within(token, request.tenant, budget)
        .await;
    decide(&snapshot.config.ext_authz, request, judgement)
}

fn decide(
    settings: &ExtAuthzSettings,
    request: &GatewayRequest<'_>,
    judgement: Judgement,
) -> Decision {
    let accepted = match judgement {
        Judgement::Valid(accepted) => accepted,
        Judgement::Rejected(refused) if refused.rejection.reason == Reason::KeysUnavailable => {
            return Decision::Unavailable {
                detail: refused.rejection.detail.into_owned(),
            };
        }
        Judgement::Rejected(refused) => {
            let reason = refused.rejection.reason;
            // Clients see a fixed sentence per reason; the full detail (which may name internal
            // URLs or allow-lists) is for operators, through ValidateToken and the logs.
            let description = status::public_description(reason);
            return Decision::deny(Denial::of(reason), description, reason.code());
        }
    };
    let claims: serde_json::Value =
        serde_json::from_slice(&accepted.claims_json).unwrap_or(serde_json::Value::Null);
    if let Some(detail) = route_requirements(request, &claims) {
        return Decision::deny(Denial::InsufficientScope, &detail, "insufficient_scope");
    }
    allow(settings, &accepted, claims)
}

/// The allow decision: claim headers set (or removed, so that a client cannot spoof them), the
/// payload header, and the tenant.
fn allow(settings: &ExtAuthzSettings, accepted: &Accepted, claims: serde_json::Value) -> Decision {
    let mut set = Vec::new();
    let mut remove = Vec::new();
    for (claim, header) in &settings.claims_to_headers {
        // A claim the token does not carry, or one that cannot be a header value (control
        // characters, which would let a claim smuggle another header in), removes the header.
        match claims
            .get(claim)
            .map(header_value)
            .filter(|value| is_header_safe(value))
        {
            Some(value) => set.push((header.clone(), value)),
            None => remove.push(header.clone()),
        }
    }
    if let Some(header) = &settings.payload_header {
        set.push((
            header.clone(),
            URL_SAFE_NO_PAD.encode(&accepted.claims_json),
        ));
    }
    let tenant = accepted.tenant.id().to_owned();
    set.push(("x-tokengate-tenant".to_owned(), tenant.clone()));
    Decision::Allow {
        set,
        remove,
        tenant,
        claims,
    }
}

/// Finds the token: the configured header (a `Bearer ` prefix is optional), then the query
/// parameter, then the cookie.
pub(crate) fn find_token(
    settings: &ExtAuthzSettings,
    headers: &HashMap<String, String>,
    path: &str,
) -> Option<String> {
    if let Some(value) = headers.get(&settings.token_header) {
        let value = value.trim();
        // In Authorization only the Bearer scheme carries a token (Basic and others do not);
        // in a custom header the prefix is optional.
        let token = match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => Some(rest.trim()),
            Some(_) if settings.token_header == "authorization" => None,
            None if value.eq_ignore_ascii_case("bearer") => None,
            _ => Some(value),
        };
        if let Some(token) = token.filter(|token| !token.is_empty()) {
            return Some(token.to_owned());
        }
    }
    if let Some(name) = &settings.token_query_parameter
        && let Some((_, query)) = path.split_once('?')
        && let Some(value) = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find_map(|(key, value)| (key == name).then_some(value))
    {
        return Some(value.to_owned());
    }
    if let Some(name) = &settings.token_cookie
        && let Some(cookies) = headers.get("cookie")
        && let Some(value) = cookies
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find_map(|(key, value)| (key == name).then_some(value))
    {
        return Some(value.to_owned());
    }
    None
}

/// Splits a list written with spaces or commas.
pub(crate) fn split_list(value: Option<&str>) -> Vec<&str> {
    value.map_or_else(Vec::new, |value| {
        value
            .split([' ', ','])
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .collect()
    })
}

/// The per-route requirements of `context_extensions`, or why they are not met.
fn route_requirements(ask: &GatewayRequest<'_>, claims: &serde_json::Value) -> Option<String> {
    if !ask.audiences.is_empty() {
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(serde_json::Value::String(one)) => vec![one.as_str()],
            Some(serde_json::Value::Array(many)) => {
                many.iter().filter_map(serde_json::Value::as_str).collect()
            }
            _ => Vec::new(),
        };
        if !ask
            .audiences
            .iter()
            .any(|wanted| audiences.contains(wanted))
        {
            return Some(format!(
                "this route needs one of the audiences {:?}",
                ask.audiences
            ));
        }
    }
    if !ask.required_scopes.is_empty() {
        let mut granted: Vec<&str> = Vec::new();
        for name in ["scp", "scope"] {
            if let Some(serde_json::Value::String(scopes)) = claims.get(name) {
                granted.extend(scopes.split(' ').filter(|scope| !scope.is_empty()));
            }
        }
        for name in ["scp", "roles"] {
            if let Some(serde_json::Value::Array(values)) = claims.get(name) {
                granted.extend(values.iter().filter_map(serde_json::Value::as_str));
            }
        }
        if !ask
            .required_scopes
            .iter()
            .any(|wanted| granted.contains(wanted))
        {
            return Some(format!(
                "this route needs one of the scopes or roles {:?}",
                ask.required_scopes
            ));
        }
    }
    None
}

/// Whether a value can go into an HTTP header as it is: no control characters (CR and LF
/// above all), which would let a claim smuggle another header in.
fn is_header_safe(value: &str) -> bool {
    !value.chars().any(|c| c.is_control())
}

/// A claim as a header value: strings as they are, other JSON as compact JSON.
fn header_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_in_header_query_and_cookie() {
        let settings = ExtAuthzSettings {
            token_query_parameter: Some("access_token".into()),
            token_cookie: Some("session".into()),
            ..ExtAuthzSettings::default()
        };
        let headers = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            find_token(&settings, &headers(&[("authorization", "Bearer abc")]), "/"),
            Some("abc".into())
        );
        assert_eq!(
            find_token(
                &settings,
                &headers(&[("authorization", "bearer  abc ")]),
                "/"
            ),
            Some("abc".into())
        );
        assert_eq!(
            find_token(&settings, &headers(&[("authorization", "Basic abc")]), "/"),
            None
        );
        assert_eq!(
            find_token(
                &settings,
                &headers(&[("authorization", "Basic abc"), ("cookie", "session=c")]),
                "/"
            ),
            Some("c".into()),
            "a Basic header does not hide a token in the cookie"
        );
        assert_eq!(
            find_token(&settings, &headers(&[]), "/x?a=1&access_token=q"),
            Some("q".into())
        );
        assert_eq!(
            find_token(&settings, &headers(&[("cookie", "a=1; session=c")]), "/"),
            Some("c".into())
        );
        assert_eq!(find_token(&settings, &headers(&[]), "/"), None);
    }

    #[test]
    fn claims_with_control_characters_never_become_headers() {
        assert!(is_header_safe("user-1 é"));
        assert!(!is_header_safe("user\r\nx-admin: true"));
        assert!(!is_header_safe("tab\there"));
    }
}
