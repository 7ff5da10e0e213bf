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
//! (any of, comma-separated). What to decide is [`crate::transport::gateway`]'s; this module
//! only reads the `CheckRequest` and writes the `CheckResponse`.

use std::collections::HashMap;
use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, HeaderAppendAction, HttpStatusCode,
};
use envoy_types::ext_authz::v3::{
    CheckRequestExt, CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder,
};
use envoy_types::pb::google::protobuf::{ListValue, Struct, Value, value::Kind};
use tonic::{Request, Response, Status};

use crate::runtime::Runtime;
use crate::transport::deadline;
use crate::transport::gateway::{
    Decision, GatewayRequest, TokenSources, authorize, find_token, split_list, warn_unavailable,
};
use crate::transport::status::Denial;
use crate::validator::judgement::Accepted;

/// The methods of `envoy.service.auth.v3.Authorization` and their gRPC types, for the gRPC
/// metrics: envoy-types ships no descriptor set to read them from.
pub(crate) const METHODS: [(&str, &str); 1] = [("Check", "unary")];

/// Serves `envoy.service.auth.v3.Authorization`.
#[derive(Clone)]
pub(crate) struct ExtAuthzService {
    runtime: Arc<Runtime>,
    /// `limits.request_timeout`, fixed at start-up (reloads do not change limits).
    request_timeout: std::time::Duration,
}

impl ExtAuthzService {
    /// A service over the running configuration, with the server's `request_timeout`.
    pub(crate) fn new(runtime: Arc<Runtime>, request_timeout: std::time::Duration) -> Self {
        Self {
            runtime,
            request_timeout,
        }
    }
}

#[tonic::async_trait]
impl Authorization for ExtAuthzService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        // One snapshot: the settings and the tenants of the same configuration.
        let snapshot = self.runtime.snapshot();
        let budget = Some(deadline::within(request.metadata(), self.request_timeout));
        let request = request.into_inner();
        let empty = HashMap::new();
        let headers = request.get_client_headers().unwrap_or(&empty);
        let attributes = request.attributes.as_ref();
        let path = attributes
            .and_then(|attributes| attributes.request.as_ref())
            .and_then(|request| request.http.as_ref())
            .map_or("", |http| http.path.as_str());
        let extensions = attributes.map_or(&empty, |attributes| &attributes.context_extensions);
        let settings = &snapshot.config.ext_authz;
        // Envoy joins repeated headers into one value, so a second credential shows up as
        // a doubled scheme in it, which find_token refuses.
        let sources = TokenSources {
            token_header: headers
                .get(&settings.token_header)
                .map(|value| vec![Some(value.as_str())])
                .unwrap_or_default(),
            cookie: headers.get("cookie").map(String::as_str),
            path,
        };
        let ask = GatewayRequest {
            token: find_token(settings, &sources),
            tenant: extensions.get("tenant").map_or("", String::as_str),
            required_scopes: split_list(extensions.get("required_scopes").map(String::as_str)),
            audiences: split_list(extensions.get("audiences").map(String::as_str)),
            ..GatewayRequest::default()
        };
        let ask = ask.with_route_settings(
            extensions.get("mode").map(String::as_str),
            extensions.get("allow_missing").map(String::as_str),
        );
        match authorize(&snapshot, &ask, budget).await {
            Decision::Unavailable => {
                warn_unavailable("ext_authz: no usable keys; answering UNAVAILABLE");
                Err(Status::unavailable(
                    "tokengate has no usable keys for this tenant",
                ))
            }
            Decision::Allow {
                set,
                remove,
                tenant,
                accepted,
                would_deny,
            } => {
                let metadata = allow_metadata(&tenant, accepted.as_deref(), would_deny);
                Ok(Response::new(allowed(set, remove, metadata)))
            }
            Decision::Deny {
                denial,
                challenge,
                body,
                code,
                hint_code,
                tenant,
            } => {
                let metadata = deny_metadata(&code, hint_code, &tenant);
                let mut response = denied(denial, challenge, body, code);
                response.set_dynamic_metadata(Some(metadata));
                Ok(Response::new(response))
            }
        }
    }
}

/// The dynamic metadata of an allow: the tenant, the claims of a valid token, and in report-only
/// mode the denial the request would have got (`would_deny`).
fn allow_metadata(tenant: &str, accepted: Option<&Accepted>, would_deny: Option<String>) -> Struct {
    let mut fields = HashMap::from([("tenant".to_owned(), string_value(tenant))]);
    if let Some(accepted) = accepted {
        fields.insert("claims".to_owned(), claims_to_value(accepted));
    }
    if let Some(code) = would_deny {
        fields.insert("would_deny".to_owned(), string_value(&code));
    }
    Struct { fields }
}

/// The dynamic metadata of a denial, for access logs: the reason code, the hint code and the
/// tenant that judged the token ("" when none did).
fn deny_metadata(code: &str, hint_code: &str, tenant: &str) -> Struct {
    Struct {
        fields: HashMap::from([
            ("reason".to_owned(), string_value(code)),
            ("hint_code".to_owned(), string_value(hint_code)),
            ("tenant".to_owned(), string_value(tenant)),
        ]),
    }
}

/// An allow: the headers for the upstream, and the dynamic metadata.
fn allowed(set: Vec<(String, String)>, remove: Vec<String>, metadata: Struct) -> CheckResponse {
    let overwrite = Some(HeaderAppendAction::OverwriteIfExistsOrAdd);
    let mut ok = OkHttpResponseBuilder::new();
    for (header, value) in set {
        ok.add_header(header, value, overwrite, false);
    }
    for header in remove {
        ok.remove_header(header);
    }
    let mut response = CheckResponse::with_status(Status::ok("token valid"));
    response.set_http_response(ok);
    response.set_dynamic_metadata(Some(metadata));
    response
}

/// A refusal: the gRPC status, and the HTTP answer Envoy sends the client.
fn denied(denial: Denial, challenge: String, body: String, code: String) -> CheckResponse {
    let overwrite = Some(HeaderAppendAction::OverwriteIfExistsOrAdd);
    let message = match denial {
        Denial::NoToken => "no token".to_owned(),
        Denial::InvalidToken | Denial::InsufficientScope | Denial::InvalidRequest => code,
    };
    let http = i32::from(denial.http_status().as_u16());
    let mut refusal = DeniedHttpResponseBuilder::new();
    refusal.set_http_status(HttpStatusCode::try_from(http).unwrap_or(HttpStatusCode::Unauthorized));
    refusal.add_header("www-authenticate", challenge, overwrite, false);
    refusal.add_header("content-type", "application/json", overwrite, false);
    refusal.set_body(body);
    let mut response = CheckResponse::with_status(Status::new(denial.grpc_code(), message));
    response.set_http_response(refusal);
    response
}

fn string_value(text: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(text.to_owned())),
    }
}

/// The claims the core accepted, as a `google.protobuf.Struct` value.
fn claims_to_value(accepted: &Accepted) -> Value {
    let fields = accepted.claims().map_or_else(HashMap::new, |claims| {
        claims
            .iter()
            .map(|(key, value)| (key.clone(), json_to_value(value)))
            .collect()
    });
    Value {
        kind: Some(Kind::StructValue(Struct { fields })),
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
