//! HTTP forward-auth for gateways that authorize with a sub-request: nginx `auth_request` and
//! Traefik `ForwardAuth`. `GET /auth` answers 200 with the claim headers, or 401/403 with an
//! RFC 6750 `WWW-Authenticate` challenge and a JSON body; the same decisions as ext_authz.
//!
//! The route's tenant and requirements are query parameters of the auth URL the gateway is
//! configured with (`/auth?tenant=orders&required_scopes=orders.read`), never client headers.
//! The original URI (for a token in the query string) comes from the header named by
//! `ext_authz.forward_auth_uri_header` (default `X-Forwarded-Uri`, as Traefik sends it; the
//! nginx example sets it too).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::config::limits::LimitSettings;
use crate::net;
use crate::runtime::Runtime;
use crate::transport::gateway::{
    Decision, GatewayRequest, TokenSources, authorize, find_token, split_list, warn_unavailable,
};
use crate::transport::shed::{InFlight, SHED_MESSAGE};

/// The header of a denial that names its reason code, with `forward_auth_reason_header: true`.
const REASON_HEADER: HeaderName = HeaderName::from_static("x-tokengate-reason");

/// Serves `/auth` on `listener` until the process ends; a request over `in_flight`'s bound is
/// answered 503 with `Retry-After` at once.
pub(crate) async fn serve(
    listener: TcpListener,
    runtime: Arc<Runtime>,
    in_flight: InFlight,
    limits: LimitSettings,
) {
    let app = Router::new()
        .route("/auth", get(auth))
        .with_state((runtime, in_flight));
    net::serve_http(listener, "forward_auth", &limits, app).await;
}

async fn auth(
    State((runtime, in_flight)): State<(Arc<Runtime>, InFlight)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(_entered) = in_flight.try_enter() else {
        let mut response =
            (StatusCode::SERVICE_UNAVAILABLE, format!("{SHED_MESSAGE}\n")).into_response();
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from_static("1"),
        );
        return response;
    };
    // One snapshot: the settings and the tenants of the same configuration.
    let snapshot = runtime.snapshot();
    let settings = &snapshot.config.ext_authz;
    // The original URI comes from the one header the configuration names (the gateway sets
    // it, overriding a client's), never from whichever header a client happened to send.
    let original_uri = headers
        .get(settings.forward_auth_uri_header.as_str())
        .and_then(|value| value.to_str().ok())
        .unwrap_or("/");
    let sources = TokenSources {
        token_header: headers
            .get_all(settings.token_header.as_str())
            .iter()
            .map(|value| value.to_str().ok())
            .collect(),
        cookie: headers.get("cookie").and_then(|value| value.to_str().ok()),
        path: original_uri,
    };
    let ask = GatewayRequest {
        token: find_token(settings, &sources),
        tenant: query.get("tenant").map_or("", String::as_str),
        required_scopes: split_list(query.get("required_scopes").map(String::as_str)),
        audiences: split_list(query.get("audiences").map(String::as_str)),
        ..GatewayRequest::default()
    }
    .with_route_settings(
        query.get("mode").map(String::as_str),
        query.get("allow_missing").map(String::as_str),
    );
    // nginx and Traefik send no deadline; the unknown-kid wait is bounded by unknown_kid_wait.
    let decision = authorize(&snapshot, &ask, None).await;
    let status = decision.http_status();
    let mut response = match decision {
        Decision::Allow { set, .. } => {
            let mut response = StatusCode::OK.into_response();
            for (name, value) in set {
                if let (Ok(name), Ok(value)) =
                    (HeaderName::try_from(name), HeaderValue::try_from(value))
                {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        Decision::Unavailable => {
            warn_unavailable("forward-auth: no usable keys; answering 503");
            (
                status,
                "tokengate cannot check tokens of this tenant right now\n",
            )
                .into_response()
        }
        Decision::Deny {
            challenge,
            body,
            code,
            ..
        } => {
            let mut response = (status, body).into_response();
            if settings.forward_auth_reason_header
                && let Ok(value) = HeaderValue::try_from(code)
            {
                response.headers_mut().insert(REASON_HEADER, value);
            }
            if let Ok(value) = HeaderValue::try_from(challenge) {
                response
                    .headers_mut()
                    .insert(axum::http::header::WWW_AUTHENTICATE, value);
            }
            response.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
    };
    *response.status_mut() = status;
    response
}
