//! The checked configuration: typed specs that make invalid states unrepresentable. Everything
//! past `config` reads these, never the raw YAML types.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokengate_core::algorithm::AlgorithmSet;
use tokengate_core::keyset::{KeyOptions, KeySet};
use tokengate_core::policy::Policy;
use url::Url;

use super::cache::CacheSettings;
use super::fetch::FetchSettings;
use super::limits::LimitSettings;
use super::refresh::RefreshSettings;

/// Where a tenant's keys come from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// OIDC discovery document; its `jwks_uri` is fetched next (and its `issuer` used if none is configured).
    Discovery(Url),
    /// A JWKS URL.
    JwksUri(Url),
    /// Keys given in the configuration (inline `jwks` or `jwks_file`), already parsed.
    Static(Arc<KeySet>),
}

/// What a gateway does with a request that would be denied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayMode {
    /// Deny it.
    #[default]
    Enforce,
    /// Allow it, marked `x-tokengate-would-deny: <reason>`, counted and logged: for trying
    /// tokengate on live traffic before it enforces.
    Report,
}

impl GatewayMode {
    /// The mode a route setting names (`enforce` or `report`), if it names one.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "enforce" => Some(Self::Enforce),
            "report" => Some(Self::Report),
            _ => None,
        }
    }
}

/// One tenant, checked.
#[derive(Clone, Debug)]
pub struct TenantSpec {
    /// The tenant id (also a metric label).
    pub id: String,
    /// Configured issuers (empty: taken from the discovery document).
    pub issuers: Vec<String>,
    /// Where the keys come from.
    pub key_source: KeySource,
    /// The configured algorithm allow-list, if any.
    pub algorithms: Option<AlgorithmSet>,
    /// The claim policy (its `issuers` and `algorithms` are completed when keys load).
    pub policy: Policy,
    /// The operator wrote `audiences: any`: no audience is required, on purpose.
    pub any_audience: bool,
    /// The operator wrote `share_issuer: true`: this tenant may take a discovered issuer that
    /// another tenant (which opts in too) also accepts.
    pub share_issuer: bool,
    /// What gateways (ext_authz, forward-auth) do with this tenant's denials, unless the route
    /// says otherwise.
    pub mode: GatewayMode,
    /// The tenant that already holds the issuer this tenant would discover (and does not share
    /// it): this tenant loads no keys. Set by the configuration check (`config::issuers`).
    pub issuer_taken_by: Option<String>,
    /// Whether plain `http://` is allowed for non-loopback hosts.
    pub allow_insecure_http: bool,
    /// How remote keys are kept fresh (the top-level block with this tenant's overrides).
    pub refresh: RefreshSettings,
    /// How remote keys are fetched (the top-level block with this tenant's overrides).
    pub fetch: FetchSettings,
    /// A digest of everything configured for this tenant (static key documents included): a
    /// reload keeps a tenant, and its keys, when this is unchanged.
    pub fingerprint: u64,
}

impl TenantSpec {
    /// How keys of this tenant are bound to algorithms when a JWKS is loaded.
    pub fn key_options(&self) -> KeyOptions {
        KeyOptions::for_allow_list(
            self.algorithms,
            matches!(self.key_source, KeySource::Static(_)),
        )
    }
}

/// The whole configuration, checked.
#[derive(Clone, Debug)]
pub struct Config {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Address of the HTTP listener for `/metrics`, `/healthz`, `/readyz`, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// Whether that listener serves the admin view `/debug/tenants` (default true).
    pub admin: bool,
    /// Largest token accepted, in bytes.
    pub max_token_size: usize,
    /// Most tokens in one batch call.
    pub max_batch_size: usize,
    /// The top-level refresh settings (each tenant has its merged copy).
    pub refresh: RefreshSettings,
    /// The top-level fetch settings (each tenant has its merged copy).
    pub fetch: FetchSettings,
    /// Bounds on requests, connections and time (read at start-up).
    pub limits: LimitSettings,
    /// How the Envoy `ext_authz` service finds tokens and passes claims on.
    pub ext_authz: ExtAuthzSettings,
    /// The verified-token cache.
    pub cache: CacheSettings,
    /// Key files (`jwks_file`) the configuration read; a change of one triggers a reload.
    pub files: Vec<PathBuf>,
    /// The tenants.
    pub tenants: Vec<TenantSpec>,
}

/// The `ext_authz:` block: where gateway requests carry the token, and which claims go upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtAuthzSettings {
    /// Request header holding the token (`Bearer ` optional). Default `authorization`.
    pub token_header: String,
    /// Query parameter holding the token, tried when the header is absent.
    pub token_query_parameter: Option<String>,
    /// Cookie holding the token, tried last.
    pub token_cookie: Option<String>,
    /// Claim name → request header set for the upstream (overwriting what the client sent).
    pub claims_to_headers: Vec<(String, String)>,
    /// Header carrying the whole claims JSON (base64url) to the upstream, if set.
    pub payload_header: Option<String>,
    /// HTTP address of the forward-auth endpoint (`GET /auth`) for nginx and Traefik, if any.
    pub forward_auth_listen: Option<SocketAddr>,
    /// The header that carries the original request URI to forward-auth (for a token in the
    /// query string). Default `x-forwarded-uri`, as Traefik sends it; nginx sets it explicitly.
    pub forward_auth_uri_header: String,
    /// Whether forward-auth adds `x-tokengate-reason: <code>` to its denials.
    pub forward_auth_reason_header: bool,
}

impl Default for ExtAuthzSettings {
    fn default() -> Self {
        Self {
            token_header: "authorization".into(),
            token_query_parameter: None,
            token_cookie: None,
            claims_to_headers: Vec::new(),
            payload_header: None,
            forward_auth_listen: None,
            forward_auth_uri_header: "x-forwarded-uri".into(),
            forward_auth_reason_header: false,
        }
    }
}
