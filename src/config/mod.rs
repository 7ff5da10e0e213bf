//! The YAML configuration: strict parsing, then a check that reports every mistake with its
//! file, line and path, then typed specs that make invalid states unrepresentable.
//!
//! ```yaml
//! listen: "0.0.0.0:50051"
//! metrics_listen: "0.0.0.0:9090"
//! tenants:
//!   - id: contoso
//!     discovery_url: https://login.microsoftonline.com/<tid>/v2.0/.well-known/openid-configuration
//!     audiences: ["api://contoso-api"]
//! ```

use std::collections::HashSet;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use url::Url;

mod cache;
mod entra;
mod refresh;

pub use cache::CacheSettings;
use cache::RawCache;

pub use entra::{EntraKind, EntraSettings, endpoints as entra_endpoints};
use refresh::RawRefresh;
pub use refresh::RefreshSettings;

use crate::algorithm::{Algorithm, AlgorithmSet, KeyFamily};
use crate::keyset::{KeyOptions, KeySet};
use crate::policy::{DEFAULT_CLOCK_SKEW_SECS, MatchMode, Policy, RequiredClaim};
use crate::token::DEFAULT_MAX_TOKEN_SIZE;

/// Default gRPC listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default maximum number of tokens in one `ValidateBatch` call.
pub const DEFAULT_MAX_BATCH_SIZE: usize = 1000;
/// Largest clock skew a tenant may configure.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(600);

/// One configuration mistake, located as precisely as the YAML allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, if the configuration came from one.
    pub file: Option<PathBuf>,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// Where in the document, e.g. `tenants[1].audiences[0]`.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: ", file.display())?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            (None, Some(line)) => write!(f, "line {line}: ")?,
            (None, None) => {}
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every mistake found in one configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Where a tenant's keys come from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// OIDC discovery document; its `jwks_uri` is fetched next (and its `issuer` used if none is configured).
    Discovery(Url),
    /// A JWKS URL.
    JwksUri(Url),
    /// Keys given in the configuration (inline `jwks` or `jwks_file`), already parsed.
    Static(std::sync::Arc<KeySet>),
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
    /// Whether plain `http://` is allowed for non-loopback hosts.
    pub allow_insecure_http: bool,
    /// How remote keys are kept fresh (the top-level block with this tenant's overrides).
    pub refresh: RefreshSettings,
    /// A digest of everything configured for this tenant (static key documents included): a
    /// reload keeps a tenant, and its keys, when this is unchanged.
    pub fingerprint: u64,
}

impl TenantSpec {
    /// How keys of this tenant are bound to algorithms when a JWKS is loaded.
    pub fn key_options(&self) -> KeyOptions {
        key_options(
            self.algorithms,
            matches!(self.key_source, KeySource::Static(_)),
        )
    }
}

fn key_options(configured: Option<AlgorithmSet>, allow_symmetric: bool) -> KeyOptions {
    let defaults = KeyOptions::default();
    // Without a configured allow-list only asymmetric algorithms are allowed, so a shared secret
    // is skipped with a hint to list its HMAC algorithm.
    let allowed = configured.unwrap_or(defaults.allowed);
    let rsa = allowed.intersection(AlgorithmSet::family(KeyFamily::Rsa));
    KeyOptions {
        allowed,
        rsa_default: match configured {
            Some(_) if !rsa.is_empty() => rsa,
            _ => defaults.rsa_default,
        },
        allow_symmetric,
    }
}

/// The whole configuration, checked.
#[derive(Clone, Debug)]
pub struct Config {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Address of the HTTP listener for `/metrics`, `/healthz`, `/readyz`, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// Largest token accepted, in bytes.
    pub max_token_size: usize,
    /// Most tokens in one batch call.
    pub max_batch_size: usize,
    /// The top-level refresh settings (each tenant has its merged copy).
    pub refresh: RefreshSettings,
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
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExtAuthz {
    token_header: Option<Spanned<String>>,
    token_query_parameter: Option<Spanned<String>>,
    token_cookie: Option<Spanned<String>>,
    #[serde(default)]
    claims_to_headers: std::collections::BTreeMap<String, Spanned<String>>,
    payload_header: Option<Spanned<String>>,
    forward_auth_listen: Option<Spanned<String>>,
}

// === raw (as written) ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Spanned<String>>,
    metrics_listen: Option<Spanned<String>>,
    max_token_size: Option<Spanned<u64>>,
    max_batch_size: Option<Spanned<u64>>,
    #[serde(default)]
    refresh: RawRefresh,
    #[serde(default)]
    ext_authz: RawExtAuthz,
    #[serde(default)]
    cache: RawCache,
    #[serde(default)]
    tenants: Vec<Spanned<RawTenant>>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    id: Spanned<String>,
    #[serde(default)]
    issuers: Vec<Spanned<String>>,
    discovery_url: Option<Spanned<String>>,
    jwks_uri: Option<Spanned<String>>,
    jwks: Option<Spanned<serde_json::Value>>,
    jwks_file: Option<Spanned<String>>,
    #[serde(default)]
    audiences: Vec<Spanned<String>>,
    algorithms: Option<Vec<Spanned<String>>>,
    clock_skew: Option<Spanned<String>>,
    require_expiration: Option<bool>,
    max_lifetime: Option<Spanned<String>>,
    #[serde(default)]
    required_claims: Vec<Spanned<RawRequiredClaim>>,
    #[serde(default)]
    token_types: Vec<Spanned<String>>,
    #[serde(default)]
    client_application_ids: Vec<Spanned<String>>,
    #[serde(default)]
    allow_insecure_http: bool,
    #[serde(default)]
    refresh: RawRefresh,
    // Microsoft Entra preset and allow-lists.
    provider: Option<Spanned<String>>,
    tenant_id: Option<Spanned<String>>,
    kind: Option<Spanned<EntraKind>>,
    policy: Option<Spanned<String>>,
    domain: Option<Spanned<String>>,
    authority_host: Option<Spanned<String>>,
    #[serde(default)]
    accept_v1_tokens: bool,
    #[serde(default)]
    tenant_ids: Vec<Spanned<String>>,
    #[serde(default)]
    backend_application_ids: Vec<Spanned<String>>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawRequiredClaim {
    claim: String,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default, rename = "match")]
    match_mode: RawMatch,
    separator: Option<String>,
}

#[derive(Deserialize, Serialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawMatch {
    #[default]
    Any,
    All,
}

// === loading ===

impl Config {
    /// Reads and checks a configuration file; relative `jwks_file` paths are resolved against its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigErrors(vec![ConfigError {
                file: Some(path.to_owned()),
                line: None,
                path: String::new(),
                message: format!("cannot read the file: {error}"),
            }])
        })?;
        let base = path.parent().map(Path::to_owned).unwrap_or_default();
        Self::parse(&text, Some(path), &base)
    }

    /// Parses and checks configuration text. `file` is only used in error messages.
    pub fn parse(text: &str, file: Option<&Path>, base_dir: &Path) -> Result<Self, ConfigErrors> {
        // serde_path_to_error tracks where in the document a parse error happened.
        let mut error_path = String::new();
        let parsed = serde_saphyr::with_deserializer_from_str(text, |deserializer| {
            serde_path_to_error::deserialize::<_, RawConfig>(deserializer).map_err(|error| {
                // `Spanned` wrappers show up as `.value` segments; no configuration field has that name.
                error_path = error
                    .path()
                    .to_string()
                    .replace(".value", "")
                    .replace(".?", "");
                error.into_inner()
            })
        });
        let raw = parsed.map_err(|error| {
            let line = error
                .location()
                .map(|location| location.line())
                .filter(|line| *line > 0);
            ConfigErrors(vec![ConfigError {
                file: file.map(Path::to_owned),
                line,
                path: if error_path == "." {
                    String::new()
                } else {
                    error_path
                },
                message: parse_message(&error.to_string()),
            }])
        })?;
        let mut checker = Checker {
            file: file.map(Path::to_owned),
            errors: Vec::new(),
            files: Vec::new(),
        };
        let config = checker.config(raw, base_dir);
        if checker.errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(checker.errors))
        }
    }
}

/// The first line of a YAML parser message, without its own "error: line N column M:" prefix
/// (the line is reported separately).
fn parse_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message).trim();
    let without_error = first.strip_prefix("error: ").unwrap_or(first);
    match without_error
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((position, rest)) if position.contains("column") => rest.to_owned(),
        _ => without_error.to_owned(),
    }
}

/// Collects every error instead of stopping at the first.
struct Checker {
    file: Option<PathBuf>,
    errors: Vec<ConfigError>,
    files: Vec<PathBuf>,
}

impl Checker {
    fn error(&mut self, line: u64, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line: (line > 0).then_some(line),
            path: path.into(),
            message: message.into(),
        });
    }

    fn config(&mut self, raw: RawConfig, base_dir: &Path) -> Config {
        let fallback: SocketAddr = ([127, 0, 0, 1], 50051).into();
        let listen = match &raw.listen {
            Some(listen) => self.address(listen, "listen").unwrap_or(fallback),
            None => DEFAULT_LISTEN.parse().unwrap_or(fallback),
        };
        let metrics_listen = raw
            .metrics_listen
            .as_ref()
            .and_then(|address| self.address(address, "metrics_listen"));
        let max_token_size = match &raw.max_token_size {
            Some(size) if !(256..=1_048_576).contains(&size.value) => {
                self.error(
                    size.referenced.line(),
                    "max_token_size",
                    "must be between 256 and 1048576 bytes",
                );
                DEFAULT_MAX_TOKEN_SIZE
            }
            Some(size) => size.value as usize,
            None => DEFAULT_MAX_TOKEN_SIZE,
        };
        let max_batch_size = match &raw.max_batch_size {
            Some(size) if !(1..=100_000).contains(&size.value) => {
                self.error(
                    size.referenced.line(),
                    "max_batch_size",
                    "must be between 1 and 100000",
                );
                DEFAULT_MAX_BATCH_SIZE
            }
            Some(size) => size.value as usize,
            None => DEFAULT_MAX_BATCH_SIZE,
        };
        let refresh = self.refresh(&raw.refresh, RefreshSettings::default(), "refresh");
        let ext_authz = self.ext_authz(&raw.ext_authz);
        let cache = self.cache(&raw.cache);
        if raw.tenants.is_empty() {
            self.error(0, "tenants", "at least one tenant is needed");
        }
        let mut ids = HashSet::new();
        let mut tenants = Vec::new();
        for (index, tenant) in raw.tenants.into_iter().enumerate() {
            let line = tenant.referenced.line();
            let path = format!("tenants[{index}]");
            if !ids.insert(tenant.value.id.value.clone()) {
                self.error(
                    tenant.value.id.referenced.line(),
                    format!("{path}.id"),
                    format!("duplicate tenant id {:?}", tenant.value.id.value),
                );
            }
            if let Some(spec) = self.tenant(tenant.value, &path, line, base_dir, refresh) {
                tenants.push(spec);
            }
        }
        Config {
            listen,
            metrics_listen,
            max_token_size,
            max_batch_size,
            refresh,
            ext_authz,
            cache,
            files: std::mem::take(&mut self.files),
            tenants,
        }
    }

    /// Checks the `ext_authz:` block; header names must be valid and are lower-cased.
    fn ext_authz(&mut self, raw: &RawExtAuthz) -> ExtAuthzSettings {
        let mut settings = ExtAuthzSettings::default();
        let header = |checker: &mut Self, value: &Spanned<String>, path: &str| -> Option<String> {
            let name = value.value.trim().to_ascii_lowercase();
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() || name.is_empty() {
                checker.error(
                    value.referenced.line(),
                    path,
                    format!("{:?} is not a valid HTTP header name", value.value),
                );
                return None;
            }
            Some(name)
        };
        if let Some(value) = &raw.token_header
            && let Some(name) = header(self, value, "ext_authz.token_header")
        {
            settings.token_header = name;
        }
        settings.token_query_parameter = raw
            .token_query_parameter
            .as_ref()
            .map(|value| value.value.clone());
        settings.token_cookie = raw.token_cookie.as_ref().map(|value| value.value.clone());
        if let Some(value) = &raw.payload_header {
            settings.payload_header = header(self, value, "ext_authz.payload_header");
        }
        settings.forward_auth_listen = raw
            .forward_auth_listen
            .as_ref()
            .and_then(|address| self.address(address, "ext_authz.forward_auth_listen"));
        for (claim, value) in &raw.claims_to_headers {
            if let Some(name) = header(self, value, &format!("ext_authz.claims_to_headers.{claim}"))
            {
                settings.claims_to_headers.push((claim.clone(), name));
            }
        }
        settings
    }

    /// Checks the `cache:` block.
    fn cache(&mut self, raw: &RawCache) -> CacheSettings {
        let mut settings = CacheSettings::default();
        if let Some(enabled) = &raw.enabled {
            settings.enabled = enabled.value;
        }
        if let Some(entries) = &raw.max_entries {
            if (1..=cache::MAX_ENTRIES_LIMIT).contains(&entries.value) {
                settings.max_entries = entries.value as usize;
            } else {
                self.error(
                    entries.referenced.line(),
                    "cache.max_entries",
                    format!("must be between 1 and {}", cache::MAX_ENTRIES_LIMIT),
                );
            }
        }
        if let Some(size) = &raw.max_bytes {
            match cache::parse_size(&size.value) {
                Some(bytes) if bytes >= 1 << 16 => settings.max_bytes = bytes,
                Some(_) => self.error(
                    size.referenced.line(),
                    "cache.max_bytes",
                    "must be at least 64KiB",
                ),
                None => self.error(
                    size.referenced.line(),
                    "cache.max_bytes",
                    format!(
                        "{:?} is not a size like 65536, 512KiB, 64MiB or 1GiB",
                        size.value
                    ),
                ),
            }
        }
        if let Some(ttl) = &raw.max_ttl
            && let Some(duration) = self.duration(ttl, "cache.max_ttl")
        {
            if duration.is_zero() {
                self.error(
                    ttl.referenced.line(),
                    "cache.max_ttl",
                    "must be at least 1s (set enabled: false to turn the cache off)",
                );
            } else {
                settings.max_ttl = duration;
            }
        }
        settings
    }

    /// Applies a `refresh:` block on top of `base` and checks the result.
    fn refresh(&mut self, raw: &RawRefresh, base: RefreshSettings, path: &str) -> RefreshSettings {
        let settings = raw.apply(base, path, |value, field| self.duration(value, field));
        for (field, message) in refresh::problems(&settings) {
            self.error(raw.line(), format!("{path}.{field}"), message);
        }
        settings
    }

    fn address(&mut self, value: &Spanned<String>, path: &str) -> Option<SocketAddr> {
        match value.value.parse() {
            Ok(address) => Some(address),
            Err(_) => {
                self.error(
                    value.referenced.line(),
                    path,
                    format!(
                        "{:?} is not an address like \"127.0.0.1:50051\" or \"[::]:50051\"",
                        value.value
                    ),
                );
                None
            }
        }
    }

    fn tenant(
        &mut self,
        raw: RawTenant,
        path: &str,
        line: u64,
        base_dir: &Path,
        refresh_defaults: RefreshSettings,
    ) -> Option<TenantSpec> {
        let errors_before = self.errors.len();
        let mut fingerprint = DefaultHasher::new();
        serde_json::to_string(&raw)
            .unwrap_or_default()
            .hash(&mut fingerprint);
        if let Some(grace) = &raw.refresh.startup_grace {
            self.error(
                grace.referenced.line(),
                format!("{path}.refresh.startup_grace"),
                "applies to the whole server: set it in the top-level refresh block",
            );
        }
        let refresh = self.refresh(&raw.refresh, refresh_defaults, &format!("{path}.refresh"));
        // startup_grace concerns the whole server, not this tenant's keys.
        RefreshSettings {
            startup_grace: Duration::ZERO,
            ..refresh
        }
        .hash(&mut fingerprint);
        let id = raw.id.value.clone();
        if id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            self.error(
                raw.id.referenced.line(),
                format!("{path}.id"),
                "must be 1 to 64 characters of A-Z a-z 0-9 - _ .",
            );
        }
        let algorithms = raw
            .algorithms
            .as_ref()
            .map(|names| self.algorithms(names, path, line));
        let entra = self.entra(&raw, path, line);
        let sources = [
            raw.discovery_url.is_some() || entra.is_some(),
            raw.jwks_uri.is_some(),
            raw.jwks.is_some(),
            raw.jwks_file.is_some(),
        ];
        let source_count = sources.iter().filter(|present| **present).count();
        if entra.is_some() && source_count != 1 {
            self.error(
                line,
                path,
                "provider: entra finds the keys through discovery; leave out jwks_uri, jwks and jwks_file",
            );
        } else if source_count != 1 {
            self.error(
                line,
                path,
                format!(
                    "exactly one key source is needed (discovery_url, jwks_uri, jwks or jwks_file); found {source_count}"
                ),
            );
        }
        let options = key_options(algorithms, true);
        let key_source = if let Some(url) = &raw.discovery_url {
            self.url(
                url,
                &format!("{path}.discovery_url"),
                raw.allow_insecure_http,
            )
            .map(KeySource::Discovery)
        } else if let Some(endpoints) = &entra {
            let line = raw
                .tenant_id
                .as_ref()
                .map_or(line, |id| id.referenced.line());
            match Url::parse(&endpoints.discovery_url) {
                Ok(url) => Some(KeySource::Discovery(url)),
                Err(error) => {
                    self.error(
                        line,
                        format!("{path}.tenant_id"),
                        format!(
                            "the discovery URL {:?} is not a URL: {error}",
                            endpoints.discovery_url
                        ),
                    );
                    None
                }
            }
        } else if let Some(url) = &raw.jwks_uri {
            self.url(url, &format!("{path}.jwks_uri"), raw.allow_insecure_http)
                .map(KeySource::JwksUri)
        } else if let Some(jwks) = &raw.jwks {
            let document = serde_json::to_vec(&jwks.value).unwrap_or_default();
            self.static_keys(
                &document,
                &options,
                &format!("{path}.jwks"),
                jwks.referenced.line(),
            )
        } else if let Some(file) = &raw.jwks_file {
            let full = base_dir.join(&file.value);
            self.files.push(full.clone());
            match std::fs::read(&full) {
                Ok(document) => {
                    document.hash(&mut fingerprint);
                    self.static_keys(
                        &document,
                        &options,
                        &format!("{path}.jwks_file"),
                        file.referenced.line(),
                    )
                }
                Err(error) => {
                    self.error(
                        file.referenced.line(),
                        format!("{path}.jwks_file"),
                        format!("cannot read {}: {error}", full.display()),
                    );
                    None
                }
            }
        } else {
            None
        };
        if raw.issuers.is_empty() && raw.discovery_url.is_none() && entra.is_none() {
            self.error(
                line,
                format!("{path}.issuers"),
                "at least one issuer is needed (or a discovery_url, whose document names the issuer)",
            );
        }
        let mut issuers = self.strings(&raw.issuers, &format!("{path}.issuers"));
        if issuers.is_empty()
            && let Some(endpoints) = &entra
        {
            issuers.clone_from(&endpoints.issuers);
        }
        let mut audiences = self.strings(&raw.audiences, &format!("{path}.audiences"));
        // backend_application_ids: each id as itself and as its api:// App ID URI.
        for id in self.strings(
            &raw.backend_application_ids,
            &format!("{path}.backend_application_ids"),
        ) {
            audiences.push(format!("api://{id}"));
            audiences.push(id);
        }
        let tenant_ids = self.strings(&raw.tenant_ids, &format!("{path}.tenant_ids"));
        if issuers
            .iter()
            .any(|issuer| issuer.contains(crate::issuer::TENANT_PLACEHOLDER))
            && (tenant_ids.is_empty() || audiences.is_empty())
        {
            self.error(
                line,
                format!("{path}.tenant_ids"),
                "a {tenantid} issuer accepts tokens of every Entra tenant (they share signing keys): list the organisations in tenant_ids and your API in audiences (or backend_application_ids)",
            );
        }
        for (index, tid) in raw.tenant_ids.iter().enumerate() {
            if !crate::issuer::is_guid(&tid.value) {
                self.error(
                    tid.referenced.line(),
                    format!("{path}.tenant_ids[{index}]"),
                    format!("{:?} is not a tenant GUID", tid.value),
                );
            }
        }
        let token_types = self.strings(&raw.token_types, &format!("{path}.token_types"));
        let client_application_ids = self.strings(
            &raw.client_application_ids,
            &format!("{path}.client_application_ids"),
        );
        let clock_skew = match &raw.clock_skew {
            Some(skew) => match self.duration(skew, &format!("{path}.clock_skew")) {
                Some(skew) if skew > MAX_CLOCK_SKEW => {
                    self.error(
                        skew_line(&raw),
                        format!("{path}.clock_skew"),
                        "must be at most 10m",
                    );
                    DEFAULT_CLOCK_SKEW_SECS
                }
                Some(skew) => skew.as_secs(),
                None => DEFAULT_CLOCK_SKEW_SECS,
            },
            None => DEFAULT_CLOCK_SKEW_SECS,
        };
        let max_lifetime = match &raw.max_lifetime {
            Some(lifetime) => match self.duration(lifetime, &format!("{path}.max_lifetime")) {
                Some(lifetime) if lifetime.is_zero() => {
                    self.error(
                        lifetime_line(&raw),
                        format!("{path}.max_lifetime"),
                        "must be longer than 0s",
                    );
                    None
                }
                other => other.map(|lifetime| lifetime.as_secs()),
            },
            None => None,
        };
        let required_claims = raw
            .required_claims
            .iter()
            .enumerate()
            .filter_map(|(index, claim)| {
                self.required_claim(claim, &format!("{path}.required_claims[{index}]"))
            })
            .collect();
        if self.errors.len() > errors_before {
            return None;
        }
        let policy = Policy {
            issuers: issuers
                .iter()
                .map(crate::issuer::IssuerPattern::new)
                .collect(),
            tenant_ids,
            audiences,
            algorithms: algorithms.unwrap_or(options.allowed),
            clock_skew,
            require_expiration: raw.require_expiration.unwrap_or(true),
            max_lifetime,
            required_claims,
            token_types,
            client_application_ids,
        };
        Some(TenantSpec {
            id,
            issuers,
            key_source: key_source?,
            algorithms,
            policy,
            allow_insecure_http: raw.allow_insecure_http,
            refresh,
            fingerprint: fingerprint.finish(),
        })
    }

    /// The `provider: entra` preset's endpoints, or None without a provider. Entra-only fields
    /// without `provider: entra` are errors.
    fn entra(&mut self, raw: &RawTenant, path: &str, line: u64) -> Option<entra::EntraEndpoints> {
        let provider = match &raw.provider {
            Some(provider) if provider.value == "entra" => provider,
            Some(provider) => {
                self.error(
                    provider.referenced.line(),
                    format!("{path}.provider"),
                    format!(
                        "{:?} is not a known provider; the only one is \"entra\"",
                        provider.value
                    ),
                );
                return None;
            }
            None => {
                let stray = [
                    (
                        "tenant_id",
                        raw.tenant_id.as_ref().map(|v| v.referenced.line()),
                    ),
                    ("kind", raw.kind.as_ref().map(|v| v.referenced.line())),
                    ("policy", raw.policy.as_ref().map(|v| v.referenced.line())),
                    ("domain", raw.domain.as_ref().map(|v| v.referenced.line())),
                    (
                        "authority_host",
                        raw.authority_host.as_ref().map(|v| v.referenced.line()),
                    ),
                    ("accept_v1_tokens", raw.accept_v1_tokens.then_some(line)),
                ];
                for (field, field_line) in stray {
                    if let Some(field_line) = field_line {
                        self.error(
                            field_line,
                            format!("{path}.{field}"),
                            "applies only with provider: entra",
                        );
                    }
                }
                return None;
            }
        };
        let Some(tenant_id) = &raw.tenant_id else {
            self.error(
                provider.referenced.line(),
                format!("{path}.tenant_id"),
                "provider: entra needs the tenant id",
            );
            return None;
        };
        let settings = EntraSettings {
            tenant_id: &tenant_id.value,
            kind: raw
                .kind
                .as_ref()
                .map_or_else(EntraKind::default, |kind| kind.value),
            policy: raw.policy.as_ref().map(|value| value.value.as_str()),
            domain: raw.domain.as_ref().map(|value| value.value.as_str()),
            authority_host: raw
                .authority_host
                .as_ref()
                .map(|value| value.value.as_str()),
            accept_v1_tokens: raw.accept_v1_tokens,
        };
        match entra::endpoints(&settings) {
            Ok(endpoints) => Some(endpoints),
            Err((field, message)) => {
                self.error(
                    tenant_id.referenced.line(),
                    format!("{path}.{field}"),
                    message,
                );
                None
            }
        }
    }

    fn algorithms(&mut self, names: &[Spanned<String>], path: &str, line: u64) -> AlgorithmSet {
        if names.is_empty() {
            self.error(
                line,
                format!("{path}.algorithms"),
                "must list at least one algorithm (or be left out)",
            );
        }
        let mut set = AlgorithmSet::EMPTY;
        for (index, name) in names.iter().enumerate() {
            match Algorithm::from_name(&name.value) {
                Some(algorithm) => set.insert(algorithm),
                None => self.error(
                    name.referenced.line(),
                    format!("{path}.algorithms[{index}]"),
                    format!(
                        "{:?} is not supported; use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA (or Ed25519), HS256, HS384 or HS512",
                        name.value
                    ),
                ),
            }
        }
        set
    }

    fn strings(&mut self, values: &[Spanned<String>], path: &str) -> Vec<String> {
        let mut out = Vec::with_capacity(values.len());
        for (index, value) in values.iter().enumerate() {
            if value.value.trim().is_empty() {
                self.error(
                    value.referenced.line(),
                    format!("{path}[{index}]"),
                    "must not be empty",
                );
            } else {
                out.push(value.value.clone());
            }
        }
        out
    }

    fn duration(&mut self, value: &Spanned<String>, path: &str) -> Option<Duration> {
        match humantime::parse_duration(&value.value) {
            Ok(duration) if duration.subsec_nanos() != 0 => {
                self.error(
                    value.referenced.line(),
                    path,
                    format!("{:?} is not a whole number of seconds", value.value),
                );
                None
            }
            Ok(duration) => Some(duration),
            Err(_) => {
                self.error(
                    value.referenced.line(),
                    path,
                    format!(
                        "{:?} is not a duration like \"30s\", \"5m\" or \"1h\"",
                        value.value
                    ),
                );
                None
            }
        }
    }

    fn url(
        &mut self,
        value: &Spanned<String>,
        path: &str,
        allow_insecure_http: bool,
    ) -> Option<Url> {
        let line = value.referenced.line();
        let url = match Url::parse(&value.value) {
            Ok(url) => url,
            Err(error) => {
                self.error(
                    line,
                    path,
                    format!("{:?} is not a URL: {error}", value.value),
                );
                return None;
            }
        };
        match url.scheme() {
            "https" => Some(url),
            "http" if allow_insecure_http || is_loopback(&url) => Some(url),
            "http" => {
                self.error(
                    line,
                    path,
                    "plain http:// is accepted only for loopback hosts; use https:// (or set allow_insecure_http: true)",
                );
                None
            }
            other => {
                self.error(
                    line,
                    path,
                    format!("the scheme {other:?} is not supported; use https://"),
                );
                None
            }
        }
    }

    fn static_keys(
        &mut self,
        document: &[u8],
        options: &KeyOptions,
        path: &str,
        line: u64,
    ) -> Option<KeySource> {
        match KeySet::from_jwks(document, options) {
            Ok(set) if set.is_empty() => {
                self.error(
                    line,
                    path,
                    format!("no usable key ({})", set.skipped_summary()),
                );
                None
            }
            Ok(set) => Some(KeySource::Static(std::sync::Arc::new(set))),
            Err(error) => {
                self.error(line, path, error.to_string());
                None
            }
        }
    }

    fn required_claim(
        &mut self,
        raw: &Spanned<RawRequiredClaim>,
        path: &str,
    ) -> Option<RequiredClaim> {
        let line = raw.referenced.line();
        let claim = &raw.value;
        let mut ok = true;
        if claim.claim.trim().is_empty() {
            self.error(line, format!("{path}.claim"), "must name a claim");
            ok = false;
        }
        if claim.separator.as_deref() == Some("") {
            self.error(
                line,
                format!("{path}.separator"),
                "must not be empty (leave it out to compare whole strings)",
            );
            ok = false;
        }
        ok.then(|| RequiredClaim {
            claim: claim.claim.clone(),
            values: claim.values.clone(),
            mode: match claim.match_mode {
                RawMatch::Any => MatchMode::Any,
                RawMatch::All => MatchMode::All,
            },
            separator: claim.separator.clone(),
        })
    }
}

fn skew_line(raw: &RawTenant) -> u64 {
    raw.clock_skew
        .as_ref()
        .map_or(0, |skew| skew.referenced.line())
}

fn lifetime_line(raw: &RawTenant) -> u64 {
    raw.max_lifetime
        .as_ref()
        .map_or(0, |lifetime| lifetime.referenced.line())
}

/// Whether a URL's host is a loopback address (or `localhost`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}
