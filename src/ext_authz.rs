//! Envoy external authorization: `envoy.service.auth.v3.Authorization/Check` on the same port as
//! `TokenValidator`, for Envoy, Istio, Envoy Gateway, Contour and Emissary.
//!
//! A decision is always a successful RPC: allowed is `status: OK` with headers for the upstream;
//! denied is `UNAUTHENTICATED` with a 401 (or `PERMISSION_DENIED` with a 403) and an RFC 6750
//! challenge. Only an internal failure is a gRPC error, so Envoy's `failure_mode_allow` applies
//! to failures and never to decisions.
//!
//! Per route, `context_extensions` can name the `tenant`, and add `required_scopes` (any of,
//! separated by spaces or commas, matched against `scp`/`scope` and `roles`) and `audiences`
//! (any of, comma-separated).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, HeaderAppendAction, HttpStatusCode,
};
use envoy_types::ext_authz::v3::{
    CheckRequestExt, CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder,
};
use envoy_types::pb::google::protobuf::{ListValue, Struct, Value, value::Kind};
use serde_json::json;
use tonic::{Request, Response, Status};

use crate::api::judge;
use crate::config::ExtAuthzSettings;
use crate::live::Live;
use crate::reason::Reason;
use crate::tenant::Verdict;

/// Serves `envoy.service.auth.v3.Authorization`.
#[derive(Clone)]
pub struct ExtAuthzService {
    live: Arc<Live>,
}

impl ExtAuthzService {
    /// A service over the live configuration.
    pub fn new(live: Arc<Live>) -> Self {
        Self { live }
    }
}

/// What a gateway request asks for.
#[derive(Debug, Default)]
pub struct Ask<'a> {
    /// The token found in the request, if any.
    pub token: Option<String>,
    /// The tenant bound to the route (empty: by issuer).
    pub tenant: &'a str,
    /// Scopes or roles of which the route needs one.
    pub required_scopes: Vec<&'a str>,
    /// Audiences of which the route needs one.
    pub audiences: Vec<&'a str>,
}

#[tonic::async_trait]
impl Authorization for ExtAuthzService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let request = request.into_inner();
        let config = self.live.config();
        let settings = &config.ext_authz;
        let empty = HashMap::new();
        let headers = request.get_client_headers().unwrap_or(&empty);
        let path = request
            .attributes
            .as_ref()
            .and_then(|attributes| attributes.request.as_ref())
            .and_then(|request| request.http.as_ref())
            .map_or("", |http| http.path.as_str());
        let extensions = request
            .attributes
            .as_ref()
            .map(|attributes| &attributes.context_extensions)
            .unwrap_or(&empty);
        let ask = Ask {
            token: find_token(settings, headers, path),
            tenant: extensions.get("tenant").map_or("", String::as_str),
            required_scopes: split_list(extensions.get("required_scopes").map(String::as_str)),
            audiences: split_list(extensions.get("audiences").map(String::as_str)),
        };
        match authorize(&self.live, settings, &ask).await {
            Decision::Unavailable { detail } => {
                tracing::warn!(%detail, "ext_authz: no usable keys; answering UNAVAILABLE");
                Err(Status::unavailable(
                    "tokengate has no usable keys for this tenant",
                ))
            }
            decision => Ok(Response::new(check_response(decision))),
        }
    }
}

/// Decides one gateway request: no token, a bad token, a valid token that misses a route
/// requirement, or an allow with the headers to set.
pub async fn authorize(live: &Live, settings: &ExtAuthzSettings, ask: &Ask<'_>) -> Decision {
    let Some(token) = &ask.token else {
        return Decision::deny(
            Denial::NoToken,
            "no bearer token in the request",
            "missing_token",
        );
    };
    let verdict = judge(live, token, ask.tenant).await;
    decide(settings, ask, verdict)
}

/// Finds the token: the configured header (a `Bearer ` prefix is optional), then the query
/// parameter, then the cookie.
pub fn find_token(
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
pub fn split_list(value: Option<&str>) -> Vec<&str> {
    value.map_or_else(Vec::new, |value| {
        value
            .split([' ', ','])
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .collect()
    })
}

/// How a request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// No token: 401 with a bare challenge (RFC 6750 §3.1).
    NoToken,
    /// A bad token: 401 `invalid_token`.
    InvalidToken,
    /// A valid token without the required scope, role, audience or client: 403 `insufficient_scope`.
    InsufficientScope,
}

/// A gateway decision, independent of the transport (ext_authz gRPC or forward-auth HTTP).
#[derive(Debug)]
pub enum Decision {
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
    pub fn deny(denial: Denial, detail: &str, code: &str) -> Self {
        let description = challenge_text(detail);
        let challenge = match denial {
            Denial::NoToken => "Bearer".to_owned(),
            Denial::InvalidToken => {
                format!("Bearer error=\"invalid_token\", error_description=\"{description}\"")
            }
            Denial::InsufficientScope => {
                format!("Bearer error=\"insufficient_scope\", error_description=\"{description}\"")
            }
        };
        Self::Deny {
            denial,
            challenge,
            body: json!({ "error": code, "detail": detail }).to_string(),
            code: code.to_owned(),
        }
    }

    /// The HTTP status a gateway answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Allow { .. } => 200,
            Self::Unavailable { .. } => 503,
            Self::Deny {
                denial: Denial::InsufficientScope,
                ..
            } => 403,
            Self::Deny { .. } => 401,
        }
    }
}

fn decide(settings: &ExtAuthzSettings, ask: &Ask<'_>, verdict: Verdict) -> Decision {
    if verdict.reason == Some(Reason::KeysUnavailable) {
        return Decision::Unavailable {
            detail: verdict.detail,
        };
    }
    if let Some(reason) = verdict.reason {
        let denial = match reason {
            Reason::ClaimMismatch | Reason::ClientNotAllowed => Denial::InsufficientScope,
            _ => Denial::InvalidToken,
        };
        // Clients see a fixed sentence per reason; the full detail (which may name internal
        // URLs or allow-lists) is for operators, through ValidateToken and the logs.
        return Decision::deny(denial, public_description(reason), reason.code());
    }
    let claims: serde_json::Value =
        serde_json::from_slice(&verdict.claims_json).unwrap_or(serde_json::Value::Null);
    if let Some(detail) = route_requirements(ask, &claims) {
        return Decision::deny(Denial::InsufficientScope, &detail, "insufficient_scope");
    }
    let mut set = Vec::new();
    let mut remove = Vec::new();
    for (claim, header) in &settings.claims_to_headers {
        // A claim the token does not carry, or one that cannot be a header value (control
        // characters), removes the header, so a client cannot spoof it.
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
        set.push((header.clone(), URL_SAFE_NO_PAD.encode(&verdict.claims_json)));
    }
    set.push(("x-tokengate-tenant".to_owned(), verdict.tenant.clone()));
    Decision::Allow {
        set,
        remove,
        tenant: verdict.tenant,
        claims,
    }
}

/// The ext_authz form of a decision.
fn check_response(decision: Decision) -> CheckResponse {
    let overwrite = Some(HeaderAppendAction::OverwriteIfExistsOrAdd);
    match decision {
        Decision::Allow {
            set,
            remove,
            tenant,
            claims,
        } => {
            let mut ok = OkHttpResponseBuilder::new();
            for (header, value) in set {
                ok.add_header(header, value, overwrite, false);
            }
            for header in remove {
                ok.remove_header(header);
            }
            let mut response = CheckResponse::with_status(Status::ok("token valid"));
            response.set_http_response(ok);
            response.set_dynamic_metadata(Some(Struct {
                fields: HashMap::from([
                    ("tenant".to_owned(), string_value(&tenant)),
                    ("claims".to_owned(), json_to_value(&claims)),
                ]),
            }));
            response
        }
        Decision::Unavailable { .. } => {
            CheckResponse::with_status(Status::unavailable("no usable keys"))
        }
        Decision::Deny {
            denial,
            challenge,
            body,
            code,
        } => {
            let (status, http) = match denial {
                Denial::NoToken => (
                    Status::unauthenticated("no token"),
                    HttpStatusCode::Unauthorized,
                ),
                Denial::InvalidToken => {
                    (Status::unauthenticated(code), HttpStatusCode::Unauthorized)
                }
                Denial::InsufficientScope => {
                    (Status::permission_denied(code), HttpStatusCode::Forbidden)
                }
            };
            let mut denied = DeniedHttpResponseBuilder::new();
            denied.set_http_status(http);
            denied.add_header("www-authenticate", challenge, overwrite, false);
            denied.add_header("content-type", "application/json", overwrite, false);
            denied.set_body(body);
            let mut response = CheckResponse::with_status(status);
            response.set_http_response(denied);
            response
        }
    }
}

/// The per-route requirements of `context_extensions`, or why they are not met.
fn route_requirements(ask: &Ask<'_>, claims: &serde_json::Value) -> Option<String> {
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

/// What a gateway tells the client about a rejected token.
fn public_description(reason: Reason) -> &'static str {
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

fn string_value(text: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(text.to_owned())),
    }
}

/// JSON as a `google.protobuf.Value`, for dynamic metadata.
fn json_to_value(json: &serde_json::Value) -> Value {
    let kind = match json {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(flag) => Kind::BoolValue(*flag),
        serde_json::Value::Number(number) => Kind::NumberValue(number.as_f64().unwrap_or_default()),
        serde_json::Value::String(text) => Kind::StringValue(text.clone()),
        serde_json::Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(members) => Kind::StructValue(Struct {
            fields: members
                .iter()
                .map(|(key, value)| (key.clone(), json_to_value(value)))
                .collect(),
        }),
    };
    Value { kind: Some(kind) }
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

    #[test]
    fn challenges_never_carry_quotes_or_control_characters() {
        assert_eq!(challenge_text("a \"b\"\n\\c"), "a 'b'''c");
    }
}
