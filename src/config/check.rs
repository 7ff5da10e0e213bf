//! The checks every part of the configuration shares: addresses, durations, URLs, lists,
//! algorithm names, static keys and required claims, and the top-level blocks. The tenant
//! checks are in `tenant.rs`, the Entra preset's in `entra.rs`.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;
use tokengate_core::algorithm::{Algorithm, AlgorithmSet};
use tokengate_core::keyset::{KeyOptions, KeySet};
use tokengate_core::policy::{ClaimValue, MatchMode, RequiredClaim};
use tokengate_core::token::DEFAULT_MAX_TOKEN_SIZE;
use url::Url;

use super::cache::{self, CacheSettings, RawCache};
use super::error::ConfigError;
use super::fetch::FetchSettings;
use super::issuers;
use super::raw::{RawConfig, RawExtAuthz, RawMatch, RawRequiredClaim};
use super::refresh::{self, RawRefresh, RefreshSettings};
use super::spec::{Config, ExtAuthzSettings, KeySource};
use super::{DEFAULT_LISTEN, DEFAULT_MAX_BATCH_SIZE};

/// Collects every error instead of stopping at the first.
pub(super) struct Checker {
    pub(super) file: Option<PathBuf>,
    pub(super) errors: Vec<ConfigError>,
    pub(super) files: Vec<PathBuf>,
}

impl Checker {
    pub(super) fn error(&mut self, line: u64, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line: (line > 0).then_some(line),
            path: path.into(),
            message: message.into(),
        });
    }

    /// Reads a file the configuration names (`full`) and watches it for reloads; a file that
    /// cannot be read is an error at `line` under `path`.
    pub(super) fn read_watched(&mut self, full: &Path, line: u64, path: &str) -> Option<Vec<u8>> {
        self.files.push(full.to_path_buf());
        match std::fs::read(full) {
            Ok(bytes) => Some(bytes),
            Err(error) => {
                self.error(
                    line,
                    path,
                    format!("cannot read {}: {error}", full.display()),
                );
                None
            }
        }
    }

    pub(super) fn config(&mut self, raw: RawConfig, base_dir: &Path) -> Config {
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
        let mut ignored = std::hash::DefaultHasher::new();
        let fetch = self.fetch(
            &raw.fetch,
            &FetchSettings::default(),
            "fetch",
            base_dir,
            &mut ignored,
        );
        let ext_authz = self.ext_authz(&raw.ext_authz);
        let limits = self.limits(&raw.limits);
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
            let defaults = (refresh, &fetch);
            if let Some(spec) = self.tenant(tenant.value, &path, line, base_dir, defaults) {
                tenants.push(spec);
            }
        }
        issuers::mark_taken(&mut tenants);
        Config {
            listen,
            metrics_listen,
            admin: raw.admin.unwrap_or(true),
            max_token_size,
            max_batch_size,
            refresh,
            fetch,
            limits,
            ext_authz,
            cache,
            files: std::mem::take(&mut self.files),
            tenants,
        }
    }

    /// Checks the `ext_authz:` block; header names must be valid and are lower-cased.
    pub(super) fn ext_authz(&mut self, raw: &RawExtAuthz) -> ExtAuthzSettings {
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
        if let Some(value) = &raw.forward_auth_uri_header
            && let Some(name) = header(self, value, "ext_authz.forward_auth_uri_header")
        {
            settings.forward_auth_uri_header = name;
        }
        settings.token_query_parameter = raw
            .token_query_parameter
            .as_ref()
            .map(|value| value.value.clone());
        settings.token_cookie = raw.token_cookie.as_ref().map(|value| value.value.clone());
        settings.forward_auth_reason_header = raw.forward_auth_reason_header;
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
    pub(super) fn cache(&mut self, raw: &RawCache) -> CacheSettings {
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
    pub(super) fn refresh(
        &mut self,
        raw: &RawRefresh,
        base: RefreshSettings,
        path: &str,
    ) -> RefreshSettings {
        let settings = raw.apply(base, path, |value, field| self.duration(value, field));
        for (field, message) in refresh::problems(&settings) {
            self.error(raw.line(), format!("{path}.{field}"), message);
        }
        settings
    }

    pub(super) fn address(&mut self, value: &Spanned<String>, path: &str) -> Option<SocketAddr> {
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

    pub(super) fn algorithms(
        &mut self,
        names: &[Spanned<String>],
        path: &str,
        line: u64,
    ) -> AlgorithmSet {
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

    pub(super) fn strings(&mut self, values: &[Spanned<String>], path: &str) -> Vec<String> {
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

    pub(super) fn duration(&mut self, value: &Spanned<String>, path: &str) -> Option<Duration> {
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

    pub(super) fn url(
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

    pub(super) fn static_keys(
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

    pub(super) fn required_claim(
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
        let mut values = Vec::with_capacity(claim.values.len());
        for (index, value) in claim.values.iter().enumerate() {
            match ClaimValue::of_json(value) {
                Some(value) => values.push(value),
                None => {
                    self.error(
                        line,
                        format!("{path}.values[{index}]"),
                        "must be a string, a number or true/false (it matches claim values of the same JSON type)",
                    );
                    ok = false;
                }
            }
        }
        ok.then(|| RequiredClaim {
            claim: claim.claim.clone(),
            values,
            mode: match claim.match_mode {
                RawMatch::Any => MatchMode::Any,
                RawMatch::All => MatchMode::All,
            },
            separator: claim.separator.clone(),
        })
    }
}

/// Whether a URL's host is a loopback address (or `localhost`).
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}
