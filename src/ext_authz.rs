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

/// What a gateway request asks for, read from the `CheckRequest`.
#[derive(Debug, Default)]
struct Ask<'a> {
    token: Option<String>,
    tenant: &'a str,
    required_scopes: Vec<&'a str>,
    audiences: Vec<&'a str>,
}

#[tonic::async_trait]
impl Authorization for ExtAuthzService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let request = request.into_inner();
        let settings = self.live.config().ext_authz.clone();
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
            token: find_token(&settings, headers, path),
            tenant: extensions.get("tenant").map_or("", String::as_str),
            required_scopes: split_list(extensions.get("required_scopes")),
            audiences: split_list(extensions.get("audiences")),
        };
        let Some(token) = &ask.token else {
            return Ok(Response::new(deny(
                Denial::NoToken,
                "no bearer token in the request",
                "missing_token",
            )));
        };
        let verdict = judge(&self.live, token, ask.tenant).await;
        Ok(Response::new(decide(&settings, &ask, verdict)))
    }
}

/// Finds the token: the configured header (a `Bearer ` prefix is optional), then the query
/// parameter, then the cookie.
fn find_token(
    settings: &ExtAuthzSettings,
    headers: &HashMap<String, String>,
    path: &str,
) -> Option<String> {
    if let Some(value) = headers.get(&settings.token_header) {
        let value = value.trim();
        let token = match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            Some(_) if settings.token_header == "authorization" => return None,
            _ => value,
        };
        if !token.is_empty() {
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

fn split_list(value: Option<&String>) -> Vec<&str> {
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
enum Denial {
    /// No token: 401 with a bare challenge (RFC 6750 §3.1).
    NoToken,
    /// A bad token: 401 `invalid_token`.
    InvalidToken,
    /// A valid token without the required scope, role, audience or client: 403 `insufficient_scope`.
    InsufficientScope,
}

fn decide(settings: &ExtAuthzSettings, ask: &Ask<'_>, verdict: Verdict) -> CheckResponse {
    if let Some(reason) = verdict.reason {
        let denial = match reason {
            Reason::ClaimMismatch | Reason::ClientNotAllowed => Denial::InsufficientScope,
            _ => Denial::InvalidToken,
        };
        return deny(denial, &verdict.detail, reason.code());
    }
    let claims: serde_json::Value =
        serde_json::from_slice(&verdict.claims_json).unwrap_or(serde_json::Value::Null);
    if let Some(detail) = route_requirements(ask, &claims) {
        return deny(Denial::InsufficientScope, &detail, "insufficient_scope");
    }
    let mut ok = OkHttpResponseBuilder::new();
    for (claim, header) in &settings.claims_to_headers {
        // Overwrite what the client may have sent under the same name; a claim the token does
        // not carry removes the header entirely.
        match claims.get(claim).map(header_value) {
            Some(value) => {
                ok.add_header(
                    header.clone(),
                    value,
                    Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                    false,
                );
            }
            None => {
                ok.remove_header(header.clone());
            }
        }
    }
    if let Some(header) = &settings.payload_header {
        ok.add_header(
            header.clone(),
            URL_SAFE_NO_PAD.encode(&verdict.claims_json),
            Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
            false,
        );
    }
    ok.add_header(
        "x-tokengate-tenant",
        verdict.tenant.clone(),
        Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
        false,
    );
    let mut response = CheckResponse::with_status(Status::ok("token valid"));
    response.set_http_response(ok);
    response.set_dynamic_metadata(Some(Struct {
        fields: HashMap::from([
            ("tenant".to_owned(), string_value(&verdict.tenant)),
            ("claims".to_owned(), json_to_value(&claims)),
        ]),
    }));
    response
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

fn deny(denial: Denial, detail: &str, code: &str) -> CheckResponse {
    let description = challenge_text(detail);
    let (status, http, challenge) = match denial {
        Denial::NoToken => (
            Status::unauthenticated("no token"),
            HttpStatusCode::Unauthorized,
            "Bearer".to_owned(),
        ),
        Denial::InvalidToken => (
            Status::unauthenticated(code.to_owned()),
            HttpStatusCode::Unauthorized,
            format!("Bearer error=\"invalid_token\", error_description=\"{description}\""),
        ),
        Denial::InsufficientScope => (
            Status::permission_denied(code.to_owned()),
            HttpStatusCode::Forbidden,
            format!("Bearer error=\"insufficient_scope\", error_description=\"{description}\""),
        ),
    };
    let mut denied = DeniedHttpResponseBuilder::new();
    denied.set_http_status(http);
    denied.add_header(
        "www-authenticate",
        challenge,
        Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
        false,
    );
    denied.add_header(
        "content-type",
        "application/json",
        Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
        false,
    );
    denied.set_body(json!({ "error": code, "detail": detail }).to_string());
    let mut response = CheckResponse::with_status(status);
    response.set_http_response(denied);
    response
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
    fn challenges_never_carry_quotes_or_control_characters() {
        assert_eq!(challenge_text("a \"b\"\n\\c"), "a 'b'''c");
    }
}
