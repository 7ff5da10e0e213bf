//! The configuration as written: serde types that mirror the YAML exactly (unknown fields are
//! errors), with the line of every value kept for error messages. Nothing here is checked.

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::cache::RawCache;
use super::entra::EntraKind;
use super::fetch::RawFetch;
use super::limits::RawLimits;
use super::refresh::RawRefresh;
use super::spec::GatewayMode;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExtAuthz {
    pub(super) token_header: Option<Spanned<String>>,
    pub(super) token_query_parameter: Option<Spanned<String>>,
    pub(super) token_cookie: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) claims_to_headers: std::collections::BTreeMap<String, Spanned<String>>,
    pub(super) payload_header: Option<Spanned<String>>,
    pub(super) forward_auth_listen: Option<Spanned<String>>,
    pub(super) forward_auth_uri_header: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) forward_auth_reason_header: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) metrics_listen: Option<Spanned<String>>,
    pub(super) admin: Option<bool>,
    pub(super) max_token_size: Option<Spanned<u64>>,
    pub(super) max_batch_size: Option<Spanned<u64>>,
    #[serde(default)]
    pub(super) refresh: RawRefresh,
    #[serde(default)]
    pub(super) fetch: RawFetch,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) ext_authz: RawExtAuthz,
    #[serde(default)]
    pub(super) cache: RawCache,
    #[serde(default)]
    pub(super) tenants: Vec<Spanned<RawTenant>>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTenant {
    pub(super) id: Spanned<String>,
    #[serde(default)]
    pub(super) issuers: Vec<Spanned<String>>,
    pub(super) discovery_url: Option<Spanned<String>>,
    pub(super) jwks_uri: Option<Spanned<String>>,
    pub(super) jwks: Option<Spanned<serde_json::Value>>,
    pub(super) jwks_file: Option<Spanned<String>>,
    pub(super) pem: Option<Spanned<RawPem>>,
    pub(super) pem_file: Option<Spanned<RawPemFiles>>,
    pub(super) audiences: Option<Spanned<RawAudiences>>,
    #[serde(default)]
    pub(super) share_issuer: bool,
    pub(super) mode: Option<Spanned<GatewayMode>>,
    pub(super) algorithms: Option<Vec<Spanned<String>>>,
    pub(super) clock_skew: Option<Spanned<String>>,
    pub(super) require_expiration: Option<bool>,
    pub(super) max_lifetime: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) required_claims: Vec<Spanned<RawRequiredClaim>>,
    #[serde(default)]
    pub(super) token_types: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) client_application_ids: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) allow_insecure_http: bool,
    #[serde(default)]
    pub(super) refresh: RawRefresh,
    #[serde(default)]
    pub(super) fetch: RawFetch,
    // Microsoft Entra preset and allow-lists.
    pub(super) provider: Option<Spanned<String>>,
    pub(super) tenant_id: Option<Spanned<String>>,
    pub(super) kind: Option<Spanned<EntraKind>>,
    pub(super) policy: Option<Spanned<String>>,
    pub(super) domain: Option<Spanned<String>>,
    pub(super) authority_host: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) accept_v1_tokens: bool,
    #[serde(default)]
    pub(super) tenant_ids: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) backend_application_ids: Vec<Spanned<String>>,
}

/// `pem`: one PEM bundle, or entries with their own `kid` and `alg`.
#[derive(Deserialize, Serialize)]
#[serde(untagged)]
pub(super) enum RawPem {
    /// Certificates and public keys, one after the other.
    Bundle(String),
    /// One key (or bundle) per entry.
    Entries(Vec<RawPemEntry>),
}

/// One entry of `pem`.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPemEntry {
    pub(super) key: String,
    pub(super) kid: Option<String>,
    pub(super) alg: Option<String>,
}

/// `pem_file`: one file, or entries with their own `kid` and `alg`.
#[derive(Deserialize, Serialize)]
#[serde(untagged)]
pub(super) enum RawPemFiles {
    /// One file of certificates and public keys.
    One(String),
    /// One file per entry.
    Entries(Vec<RawPemFileEntry>),
}

/// One entry of `pem_file`.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPemFileEntry {
    pub(super) file: String,
    pub(super) kid: Option<String>,
    pub(super) alg: Option<String>,
}

/// `audiences`: a list, or the word `any` (every audience, on purpose).
#[derive(Deserialize, Serialize)]
#[serde(untagged)]
pub(super) enum RawAudiences {
    /// A single word; only `any` is valid.
    Word(String),
    /// The accepted audiences.
    List(Vec<String>),
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequiredClaim {
    pub(super) claim: String,
    #[serde(default)]
    pub(super) values: Vec<serde_json::Value>,
    #[serde(default, rename = "match")]
    pub(super) match_mode: RawMatch,
    pub(super) separator: Option<String>,
}

#[derive(Deserialize, Serialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawMatch {
    #[default]
    Any,
    All,
}
