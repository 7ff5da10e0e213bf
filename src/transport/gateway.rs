//! What a gateway asks and what it is answered, whatever the transport (Envoy ext_authz over
//! gRPC, or forward-auth over HTTP): where the token is in the request, the route's own
//! requirements, and the decision with the headers for the upstream.
//!
//! Per route, a gateway can name the `tenant`, and add `required_scopes` (any of, separated by
//! spaces or commas, matched against `scp`/`scope` and `roles`) and `audiences` (any of); set
//! `allow_missing` (a request without any token passes, without claim headers); and set `mode`
//! (see [`crate::transport::report`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use tokengate_core::Reason;

use crate::clock;
use crate::config::{ExtAuthzSettings, GatewayMode};
use crate::runtime::Snapshot;
use crate::tenants::tenant::Tenant;
use crate::transport::report;
use crate::transport::status::{self, Denial};
use crate::validator::judgement::{Accepted, ClaimsMap, Judgement};

/// What a gateway request asks for.
#[derive(Debug, Default)]
pub(crate) struct GatewayRequest<'a> {
    /// The token the request presents.
    pub token: Presented,
    /// The tenant bound to the route (empty: by issuer).
    pub tenant: &'a str,
    /// Scopes or roles of which the route needs one.
    pub required_scopes: Vec<&'a str>,
    /// Audiences of which the route needs one.
    pub audiences: Vec<&'a str>,
    /// The route's mode, overriding the tenant's; `None` when the route sets none.
    pub mode: Option<GatewayMode>,
    /// The route lets a request that carries no token at all through, without claim headers.
    pub allow_missing: bool,
}

impl GatewayRequest<'_> {
    /// Reads the route settings `mode` and `allow_missing` (a context extension, or a query
    /// parameter of the auth URL). A `mode` that names no mode enforces: a typo never turns
    /// denials into allows.
    pub(crate) fn with_route_settings(
        mut self,
        mode: Option<&str>,
        allow_missing: Option<&str>,
    ) -> Self {
        self.mode = mode.map(|name| {
            GatewayMode::from_name(name).unwrap_or_else(|| {
                warn_at_most_once_a_second(
                    "a route's mode is neither enforce nor report; enforcing",
                );
                GatewayMode::Enforce
            })
        });
        self.allow_missing = allow_missing == Some("true");
        self
    }
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
        /// The tenant that accepted the token ("" when none did).
        tenant: String,
        /// What the token established (its claims become metadata); `None` for a request
        /// let through without a valid token (`allow_missing`, report-only mode).
        accepted: Option<Arc<Accepted>>,
        /// In report-only mode, the code of the denial this request would have got.
        would_deny: Option<String>,
    },
    /// tokengate cannot decide (the tenant has no usable keys): an error for the gateway, so
    /// that its failure policy (`failure_mode_allow`, `status_on_error`) applies.
    Unavailable,
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
        /// The hint code, or "".
        hint_code: &'static str,
        /// The tenant that judged the token, or "".
        tenant: String,
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
            hint_code: "",
            tenant: String::new(),
        }
    }

    /// The same refusal, saying which tenant judged the token and with which hint.
    fn judged_by(mut self, judge: &str, hint: &'static str) -> Self {
        if let Self::Deny {
            hint_code, tenant, ..
        } = &mut self
        {
            *hint_code = hint;
            judge.clone_into(tenant);
        }
        self
    }

    /// The HTTP status a gateway answers with.
    pub(crate) fn http_status(&self) -> http::StatusCode {
        match self {
            Self::Allow { .. } => http::StatusCode::OK,
            Self::Unavailable => status::UNAVAILABLE_HTTP,
            Self::Deny { denial, .. } => denial.http_status(),
        }
    }
}

/// Decides one gateway request on one snapshot: no token, a bad token, a valid token that misses
/// a route requirement, or an allow with the headers to set.
/// In report-only mode (the route's, else that of the tenant the route is bound to), a denial
/// becomes an allow that says what it would have been.
///
/// A tenant's own `mode` applies only on routes bound to it: on a route that chooses the tenant
/// by the token's issuer, a forged token would choose it, and with it the mode.
pub(crate) async fn authorize(
    snapshot: &Snapshot,
    request: &GatewayRequest<'_>,
    budget: Option<std::time::Duration>,
) -> Decision {
    let (decision, judge) = enforce(snapshot, request, budget).await;
    let settings = &snapshot.config.ext_authz;
    let bound = (!request.tenant.is_empty())
        .then(|| snapshot.registry().get(request.tenant).cloned())
        .flatten();
    let bound_mode = bound.as_ref().map(|tenant| tenant.spec().mode);
    match request.mode.or(bound_mode).unwrap_or_default() {
        GatewayMode::Enforce => decision,
        GatewayMode::Report => {
            let tenant = bound.or(judge);
            report::unless_allowed(settings, decision, tenant.as_deref())
        }
    }
}

/// The enforced decision, and the tenant that judged the token (if one did).
async fn enforce(
    snapshot: &Snapshot,
    request: &GatewayRequest<'_>,
    budget: Option<std::time::Duration>,
) -> (Decision, Option<Arc<Tenant>>) {
    let settings = &snapshot.config.ext_authz;
    let token = match &request.token {
        Presented::Token(token) => token,
        Presented::Absent if request.allow_missing => return (anonymous(settings), None),
        Presented::Absent => {
            let decision = Decision::deny(
                Denial::NoToken,
                "no bearer token in the request",
                "missing_token",
            );
            return (decision, None);
        }
        Presented::Refused(why) => {
            let decision = Decision::deny(Denial::InvalidRequest, why, "invalid_request");
            return (decision, None);
        }
    };
    let judgement = snapshot
        .validator
        .judge_within(token, request.tenant, budget)
        .await;
    let judge = judgement.tenant().cloned();
    (decide(settings, request, judgement), judge)
}

/// A request let through without a token (`allow_missing`): no claim headers, and every header
/// a client could spoof them with removed.
pub(crate) fn anonymous(settings: &ExtAuthzSettings) -> Decision {
    Decision::Allow {
        set: Vec::new(),
        remove: identity_headers(settings),
        tenant: String::new(),
        accepted: None,
        would_deny: None,
    }
}

/// The headers that carry tokengate's word to the upstream: a client's own values of them are
/// always replaced or removed.
pub(crate) fn identity_headers(settings: &ExtAuthzSettings) -> Vec<String> {
    let claims = settings
        .claims_to_headers
        .iter()
        .map(|(_, header)| header.clone());
    claims
        .chain(settings.payload_header.clone())
        .chain([
            TENANT_HEADER.to_owned(),
            report::WOULD_DENY_HEADER.to_owned(),
        ])
        .collect()
}

/// The header that names the tenant that accepted the token.
const TENANT_HEADER: &str = "x-tokengate-tenant";

fn decide(
    settings: &ExtAuthzSettings,
    request: &GatewayRequest<'_>,
    judgement: Judgement,
) -> Decision {
    let accepted = match judgement {
        Judgement::Valid(accepted) => accepted,
        Judgement::Rejected(refused) if refused.rejection.reason == Reason::KeysUnavailable => {
            return Decision::Unavailable;
        }
        Judgement::Rejected(refused) => {
            let reason = refused.rejection.reason;
            // Clients see a fixed sentence per reason; the full detail (which may name internal
            // URLs or allow-lists) is for operators, through ValidateToken and the logs.
            let description = status::public_description(reason);
            return Decision::deny(Denial::of(reason), description, reason.code())
                .judged_by(refused.tenant_id(), refused.hint_code());
        }
    };
    // The claims the core accepted, read once per token and shared through the cache. One
    // parse decides: claims that could not be read deny the request, never forward it bare.
    let Some(claims) = accepted.claims() else {
        let description = status::public_description(Reason::Malformed);
        return Decision::deny(
            Denial::of(Reason::Malformed),
            description,
            Reason::Malformed.code(),
        );
    };
    if let Some(detail) = route_requirements(request, claims) {
        return Decision::deny(Denial::InsufficientScope, &detail, "insufficient_scope")
            .judged_by(accepted.tenant.id(), "");
    }
    allow(settings, &accepted, claims)
}

/// The allow decision: claim headers set (or removed, so that a client cannot spoof them), the
/// payload header, and the tenant.
fn allow(settings: &ExtAuthzSettings, accepted: &Arc<Accepted>, claims: &ClaimsMap) -> Decision {
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
    set.push((TENANT_HEADER.to_owned(), tenant.clone()));
    remove.push(report::WOULD_DENY_HEADER.to_owned());
    Decision::Allow {
        set,
        remove,
        tenant,
        accepted: Some(accepted.clone()),
        would_deny: None,
    }
}

/// Logs that a gateway request got "unavailable", at most once a second whatever the request
/// rate (a provider outage would otherwise log every request), and without the fetch error,
/// which the refresh task logs once per attempt.
pub(crate) fn warn_unavailable(message: &'static str) {
    warn_at_most_once_a_second(message);
}

/// Logs a per-request warning at most once a second, whatever the request rate.
fn warn_at_most_once_a_second(message: &'static str) {
    static LAST_SECOND: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = clock::now();
    let last = LAST_SECOND.load(Ordering::Relaxed);
    if now != last
        && LAST_SECOND
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!("{message}");
    }
}

/// What a request presents as its token.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) enum Presented {
    /// No token anywhere the configuration looks.
    #[default]
    Absent,
    /// Exactly one token.
    Token(String),
    /// Not exactly one readable token: refused, never resolved by picking one, since the
    /// upstream may read another than tokengate would.
    Refused(&'static str),
}

/// Where a request may carry its token, as the transport read it.
#[derive(Debug, Default)]
pub(crate) struct TokenSources<'a> {
    /// Every value of the configured token header (`None`: a value that is not text).
    pub token_header: Vec<Option<&'a str>>,
    /// The `Cookie` header.
    pub cookie: Option<&'a str>,
    /// The original request path and query.
    pub path: &'a str,
}

/// Finds the one token of a request: in the configured header (a `Bearer ` prefix is optional
/// there, required in `Authorization`), the query parameter, or the cookie. Two token headers,
/// a header that is not text, a doubled scheme, or tokens in two places are refused.
pub(crate) fn find_token(settings: &ExtAuthzSettings, sources: &TokenSources<'_>) -> Presented {
    let mut found: Vec<&str> = Vec::new();
    match sources.token_header.as_slice() {
        [] => {}
        [Some(value)] => match header_token(settings, value) {
            Ok(Some(token)) => found.push(token),
            Ok(None) => {}
            Err(why) => return Presented::Refused(why),
        },
        [None] => return Presented::Refused("the token header is not valid text"),
        _ => return Presented::Refused("the request has more than one token header"),
    }
    if let Some(name) = &settings.token_query_parameter
        && let Some((_, query)) = sources.path.split_once('?')
    {
        found.extend(
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .filter_map(|(key, value)| (key == name).then_some(value)),
        );
    }
    if let Some(name) = &settings.token_cookie
        && let Some(cookies) = sources.cookie
    {
        found.extend(
            cookies
                .split(';')
                .filter_map(|pair| pair.trim().split_once('='))
                .filter_map(|(key, value)| (key == name).then_some(value)),
        );
    }
    match found.as_slice() {
        [] => Presented::Absent,
        [token] => Presented::Token((*token).to_owned()),
        _ => Presented::Refused("the request carries a token in more than one place"),
    }
}

/// The token in one token-header value: `Ok(None)` for another scheme (`Basic …`).
fn header_token<'v>(
    settings: &ExtAuthzSettings,
    value: &'v str,
) -> Result<Option<&'v str>, &'static str> {
    let value = value.trim();
    // In Authorization only the Bearer scheme carries a token (Basic and others do not); in a
    // custom header the prefix is optional.
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) if settings.token_header == "authorization" => return Ok(None),
        None if value.eq_ignore_ascii_case("bearer") => return Ok(None),
        _ => value,
    };
    if token.contains(char::is_whitespace) {
        return Err("the token header holds more than one credential");
    }
    Ok((!token.is_empty()).then_some(token))
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
fn route_requirements(ask: &GatewayRequest<'_>, claims: &ClaimsMap) -> Option<String> {
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

    /// The token of a request with these token-header values, cookie and path, under settings
    /// that also look in the `access_token` query parameter and the `session` cookie.
    fn find(header: &[Option<&str>], cookie: Option<&str>, path: &str) -> Presented {
        let settings = ExtAuthzSettings {
            token_query_parameter: Some("access_token".into()),
            token_cookie: Some("session".into()),
            ..ExtAuthzSettings::default()
        };
        let sources = TokenSources {
            token_header: header.to_vec(),
            cookie,
            path,
        };
        find_token(&settings, &sources)
    }

    #[test]
    fn tokens_are_found_in_header_query_and_cookie() {
        let token = |value: &str| Presented::Token(value.to_owned());
        assert_eq!(find(&[Some("Bearer abc")], None, "/"), token("abc"));
        assert_eq!(find(&[Some("bearer  abc ")], None, "/"), token("abc"));
        assert_eq!(find(&[Some("Basic abc")], None, "/"), Presented::Absent);
        assert_eq!(
            find(&[Some("Basic abc")], Some("session=c"), "/"),
            token("c"),
            "a Basic header does not hide a token in the cookie"
        );
        assert_eq!(find(&[], None, "/x?a=1&access_token=q"), token("q"));
        assert_eq!(find(&[], Some("a=1; session=c"), "/"), token("c"));
        assert_eq!(find(&[], None, "/"), Presented::Absent);
    }

    #[test]
    fn a_request_with_other_than_one_token_is_refused() {
        let refused = |presented: Presented| matches!(presented, Presented::Refused(_));
        assert!(refused(find(
            &[Some("Bearer a"), Some("Bearer b")],
            None,
            "/"
        )));
        assert!(
            refused(find(&[None], Some("session=c"), "/")),
            "not text: no fallback"
        );
        assert!(refused(find(&[Some("Bearer Bearer a")], None, "/")));
        assert!(refused(find(&[Some("Bearer a")], Some("session=c"), "/")));
        assert!(refused(find(&[Some("Bearer a")], None, "/?access_token=q")));
        assert!(refused(find(&[], None, "/?access_token=q&access_token=r")));
    }

    #[test]
    fn claims_that_cannot_be_read_deny_the_request() {
        // A token the core accepted always has readable claims; should that ever fail, the
        // gateway denies rather than forwards the request without its claim headers.
        let yaml = r#"tenants:
  - id: t
    issuers: ["https://t.example"]
    algorithms: [HS256]
    require_expiration: false
    jwks: {"keys": [{"kty": "oct", "kid": "k", "alg": "HS256", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}
"#;
        let config = crate::config::Config::parse(yaml, None, std::path::Path::new("."))
            .unwrap_or_else(|errors| panic!("{errors}"));
        let validator = crate::validator::Validator::for_config(&config, 0);
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("k".into());
        let key = jsonwebtoken::EncodingKey::from_secret(b"secret-secret-secret-secret-secret")
            .unwrap_or_else(|error| panic!("{error}"));
        let claims = json!({"iss": "https://t.example", "sub": "u"});
        let token =
            jsonwebtoken::encode(&header, &claims, &key).unwrap_or_else(|error| panic!("{error}"));
        let Judgement::Valid(accepted) = validator.judge_at(&token, "", 0) else {
            panic!("the token should be valid");
        };
        let unreadable = Accepted {
            tenant: accepted.tenant.clone(),
            issuer: None,
            subject: None,
            key_id: None,
            algorithm: accepted.algorithm,
            expires_at: None,
            claims_json: bytes::Bytes::from_static(br#"{"sub": "\ud800"}"#),
            claims: std::sync::OnceLock::new(),
        };
        let request = GatewayRequest {
            token: Presented::Token(token),
            tenant: "",
            ..GatewayRequest::default()
        };
        let settings = ExtAuthzSettings::default();
        let fine = decide(&settings, &request, Judgement::Valid(accepted));
        assert!(matches!(fine, Decision::Allow { .. }), "{fine:?}");
        let decision = decide(&settings, &request, Judgement::Valid(Arc::new(unreadable)));
        assert!(
            matches!(&decision, Decision::Deny { code, .. } if code == "malformed"),
            "{decision:?}"
        );
    }

    #[test]
    fn claims_with_control_characters_never_become_headers() {
        assert!(is_header_safe("user-1 é"));
        assert!(!is_header_safe("user\r\nx-admin: true"));
        assert!(!is_header_safe("tab\there"));
    }
}
