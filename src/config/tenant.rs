//! The checks of one tenant: its id, key source, issuers and audiences, time rules and
//! claims, into a [`TenantSpec`] with a fingerprint that tells a reload whether it changed.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::time::Duration;

use tokengate_core::issuer::{IssuerPattern, is_guid, template_left_open};
use tokengate_core::keyset::KeyOptions;
use tokengate_core::policy::{DEFAULT_CLOCK_SKEW_SECS, Policy};
use url::Url;

use super::MAX_CLOCK_SKEW;
use super::check::Checker;
use super::entra::EntraEndpoints;
use super::fetch::FetchSettings;
use super::pem::{self, PemEntry};
use super::raw::{RawAudiences, RawPem, RawPemFiles, RawTenant};
use super::refresh::RefreshSettings;
use super::spec::{KeySource, TenantSpec};

impl Checker {
    /// Checks one tenant; `None` when any of its checks failed (each error is recorded).
    pub(super) fn tenant(
        &mut self,
        raw: RawTenant,
        path: &str,
        line: u64,
        base_dir: &Path,
        (refresh_defaults, fetch_defaults): (RefreshSettings, &FetchSettings),
    ) -> Option<TenantSpec> {
        let errors_before = self.errors.len();
        let mut fingerprint = DefaultHasher::new();
        // Everything written for the tenant: a reload keeps the tenant when this is unchanged.
        serde_json::to_string(&raw)
            .unwrap_or_default()
            .hash(&mut fingerprint);
        let refresh = self.tenant_refresh(&raw, path, refresh_defaults, &mut fingerprint);
        let fetch_path = format!("{path}.fetch");
        let fetch = self.fetch(
            &raw.fetch,
            fetch_defaults,
            &fetch_path,
            base_dir,
            &mut fingerprint,
        );
        let id = self.tenant_id(&raw, path);
        let algorithms = raw
            .algorithms
            .as_ref()
            .map(|names| self.algorithms(names, path, line));
        let entra = self.entra(&raw, path, line);
        let options = KeyOptions::for_allow_list(algorithms, true);
        let source = Source {
            raw: &raw,
            entra: entra.as_ref(),
            options: &options,
            path,
            line,
        };
        let key_source = self.key_source(&source, base_dir, &mut fingerprint);
        let Accepted {
            issuers,
            audiences,
            any_audience,
            tenant_ids,
        } = self.issuers_and_audiences(&source);
        let token_types = self.strings(&raw.token_types, &format!("{path}.token_types"));
        let client_application_ids = self.strings(
            &raw.client_application_ids,
            &format!("{path}.client_application_ids"),
        );
        let (clock_skew, max_lifetime) = self.time_rules(&raw, path);
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
            issuers: issuers.iter().map(IssuerPattern::new).collect(),
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
            any_audience,
            share_issuer: raw.share_issuer,
            mode: raw
                .mode
                .as_ref()
                .map_or_else(Default::default, |mode| mode.value),
            issuer_taken_by: None,
            allow_insecure_http: raw.allow_insecure_http,
            refresh,
            fetch,
            fingerprint: fingerprint.finish(),
        })
    }

    /// The tenant's refresh settings (the top-level block with its overrides).
    fn tenant_refresh(
        &mut self,
        raw: &RawTenant,
        path: &str,
        defaults: RefreshSettings,
        fingerprint: &mut DefaultHasher,
    ) -> RefreshSettings {
        if let Some(grace) = &raw.refresh.startup_grace {
            self.error(
                grace.referenced.line(),
                format!("{path}.refresh.startup_grace"),
                "applies to the whole server: set it in the top-level refresh block",
            );
        }
        let refresh = self.refresh(&raw.refresh, defaults, &format!("{path}.refresh"));
        // startup_grace concerns the whole server, not this tenant's keys.
        RefreshSettings {
            startup_grace: Duration::ZERO,
            ..refresh
        }
        .hash(fingerprint);
        refresh
    }

    /// The tenant id: also a metric label, so short and plain.
    fn tenant_id(&mut self, raw: &RawTenant, path: &str) -> String {
        let id = raw.id.value.clone();
        let plain = id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if id.is_empty() || id.len() > 64 || !plain {
            self.error(
                raw.id.referenced.line(),
                format!("{path}.id"),
                "must be 1 to 64 characters of A-Z a-z 0-9 - _ .",
            );
        }
        id
    }

    /// Where the keys come from: exactly one of discovery (or the Entra preset), a JWKS URL,
    /// an inline JWKS or a JWKS file.
    fn key_source(
        &mut self,
        source: &Source<'_>,
        base_dir: &Path,
        fingerprint: &mut DefaultHasher,
    ) -> Option<KeySource> {
        let Source {
            raw, entra, path, ..
        } = *source;
        let count = [
            raw.discovery_url.is_some() || entra.is_some(),
            raw.jwks_uri.is_some(),
            raw.jwks.is_some(),
            raw.jwks_file.is_some(),
            raw.pem.is_some(),
            raw.pem_file.is_some(),
        ]
        .iter()
        .filter(|present| **present)
        .count();
        if entra.is_some() && count != 1 {
            self.error(
                source.line,
                path,
                "provider: entra finds the keys through discovery; leave out jwks_uri, jwks, jwks_file, pem and pem_file",
            );
        } else if count != 1 {
            self.error(
                source.line,
                path,
                format!(
                    "exactly one key source is needed (discovery_url, jwks_uri, jwks, jwks_file, pem or pem_file); found {count}"
                ),
            );
        }
        if let Some(url) = &raw.discovery_url {
            let url = self.url(
                url,
                &format!("{path}.discovery_url"),
                raw.allow_insecure_http,
            );
            url.map(KeySource::Discovery)
        } else if let Some(endpoints) = entra {
            self.entra_discovery(raw, endpoints, path, source.line)
        } else if let Some(url) = &raw.jwks_uri {
            self.url(url, &format!("{path}.jwks_uri"), raw.allow_insecure_http)
                .map(KeySource::JwksUri)
        } else if let Some(jwks) = &raw.jwks {
            let document = serde_json::to_vec(&jwks.value).unwrap_or_default();
            let line = jwks.referenced.line();
            self.static_keys(&document, source.options, &format!("{path}.jwks"), line)
        } else if let Some(file) = &raw.jwks_file {
            self.jwks_file(
                &file.value,
                file.referenced.line(),
                source,
                base_dir,
                fingerprint,
            )
        } else if let Some(pem) = &raw.pem {
            let entries = match &pem.value {
                RawPem::Bundle(text) => vec![PemEntry {
                    pem: text,
                    kid: None,
                    alg: None,
                }],
                RawPem::Entries(entries) => entries
                    .iter()
                    .map(|entry| PemEntry {
                        pem: &entry.key,
                        kid: entry.kid.as_deref(),
                        alg: entry.alg.as_deref(),
                    })
                    .collect(),
            };
            self.pem_keys(&entries, pem.referenced.line(), source, "pem")
        } else if let Some(files) = &raw.pem_file {
            self.pem_files(
                &files.value,
                files.referenced.line(),
                source,
                base_dir,
                fingerprint,
            )
        } else {
            None
        }
    }

    /// The Entra preset's discovery document.
    fn entra_discovery(
        &mut self,
        raw: &RawTenant,
        endpoints: &EntraEndpoints,
        path: &str,
        line: u64,
    ) -> Option<KeySource> {
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
    }

    /// Keys from a JWKS file (relative to the configuration's folder); its content is part of the
    /// fingerprint, and a change of it triggers a reload.
    fn jwks_file(
        &mut self,
        file: &str,
        line: u64,
        source: &Source<'_>,
        base_dir: &Path,
        fingerprint: &mut DefaultHasher,
    ) -> Option<KeySource> {
        let path = format!("{}.jwks_file", source.path);
        let document = self.read_watched(&base_dir.join(file), line, &path)?;
        document.hash(fingerprint);
        self.static_keys(&document, source.options, &path, line)
    }

    /// Keys from PEM entries, read into a JWKS and checked like one.
    fn pem_keys(
        &mut self,
        entries: &[PemEntry<'_>],
        line: u64,
        source: &Source<'_>,
        field: &str,
    ) -> Option<KeySource> {
        let path = format!("{}.{field}", source.path);
        match pem::jwks_of(entries) {
            Ok(document) => self.static_keys(&document, source.options, &path, line),
            Err(error) => {
                self.error(line, path, error);
                None
            }
        }
    }

    /// Keys from PEM files (relative to the configuration's folder); like `jwks_file`, their
    /// content is part of the fingerprint, and a change of one triggers a reload.
    fn pem_files(
        &mut self,
        files: &RawPemFiles,
        line: u64,
        source: &Source<'_>,
        base_dir: &Path,
        fingerprint: &mut DefaultHasher,
    ) -> Option<KeySource> {
        let listed: Vec<(&str, Option<&str>, Option<&str>)> = match files {
            RawPemFiles::One(file) => vec![(file.as_str(), None, None)],
            RawPemFiles::Entries(entries) => entries
                .iter()
                .map(|entry| {
                    (
                        entry.file.as_str(),
                        entry.kid.as_deref(),
                        entry.alg.as_deref(),
                    )
                })
                .collect(),
        };
        let mut texts = Vec::with_capacity(listed.len());
        let path = format!("{}.pem_file", source.path);
        for (file, _, _) in &listed {
            let full = base_dir.join(file);
            let bytes = self.read_watched(&full, line, &path)?;
            let Ok(text) = String::from_utf8(bytes) else {
                let message = format!("cannot read {}: it is not UTF-8 text", full.display());
                self.error(line, path, message);
                return None;
            };
            text.hash(fingerprint);
            texts.push(text);
        }
        let entries: Vec<PemEntry<'_>> = listed
            .iter()
            .zip(&texts)
            .map(|((_, kid, alg), text)| PemEntry {
                pem: text,
                kid: *kid,
                alg: *alg,
            })
            .collect();
        self.pem_keys(&entries, line, source, "pem_file")
    }

    /// Issuers (configured, or the Entra preset's), audiences (with backend application ids in
    /// both forms) and the tenant-id allow-list, and the rule that binds them for `{tenantid}`.
    fn issuers_and_audiences(&mut self, source: &Source<'_>) -> Accepted {
        let Source {
            raw, entra, path, ..
        } = *source;
        if raw.issuers.is_empty() && raw.discovery_url.is_none() && entra.is_none() {
            self.error(
                source.line,
                format!("{path}.issuers"),
                "at least one issuer is needed (or a discovery_url, whose document names the issuer)",
            );
        }
        let mut issuers = self.strings(&raw.issuers, &format!("{path}.issuers"));
        if issuers.is_empty()
            && let Some(endpoints) = entra
        {
            issuers.clone_from(&endpoints.issuers);
        }
        let (mut audiences, any_audience) = self.audiences(source);
        // backend_application_ids: each id as itself and as its api:// App ID URI.
        for id in self.strings(
            &raw.backend_application_ids,
            &format!("{path}.backend_application_ids"),
        ) {
            audiences.push(format!("api://{id}"));
            audiences.push(id);
        }
        let tenant_ids = self.strings(&raw.tenant_ids, &format!("{path}.tenant_ids"));
        let templates = issuers.iter().map(String::as_str);
        if template_left_open(templates, &tenant_ids, &audiences, any_audience) {
            self.error(
                source.line,
                format!("{path}.tenant_ids"),
                "a {tenantid} issuer accepts tokens of every Entra tenant (they share signing keys): list the organisations in tenant_ids and your API in audiences (or backend_application_ids)",
            );
        } else if entra.is_some() && audiences.is_empty() && !any_audience {
            self.error(
                source.line,
                format!("{path}.audiences"),
                "provider: entra needs audiences (or backend_application_ids): without them, a token the directory issued for any application is accepted; write `audiences: any` to accept every audience on purpose",
            );
        }
        for (index, tid) in raw.tenant_ids.iter().enumerate() {
            if !is_guid(&tid.value) {
                self.error(
                    tid.referenced.line(),
                    format!("{path}.tenant_ids[{index}]"),
                    format!("{:?} is not a tenant GUID", tid.value),
                );
            }
        }
        Accepted {
            issuers,
            audiences,
            any_audience,
            tenant_ids,
        }
    }

    /// `audiences` as written: a list, or `any` (every audience, on purpose). Returns the
    /// audiences and whether `any` was written.
    fn audiences(&mut self, source: &Source<'_>) -> (Vec<String>, bool) {
        let path = format!("{}.audiences", source.path);
        let Some(written) = &source.raw.audiences else {
            return (Vec::new(), false);
        };
        let line = written.referenced.line();
        match &written.value {
            RawAudiences::Word(word) if word == "any" => (Vec::new(), true),
            RawAudiences::Word(word) => {
                self.error(
                    line,
                    path,
                    format!("{word:?} is neither a list of audiences nor `any`"),
                );
                (Vec::new(), false)
            }
            RawAudiences::List(list) => {
                let mut audiences = Vec::with_capacity(list.len());
                for (index, audience) in list.iter().enumerate() {
                    if audience.trim().is_empty() {
                        self.error(line, format!("{path}[{index}]"), "must not be empty");
                    } else {
                        audiences.push(audience.clone());
                    }
                }
                (audiences, false)
            }
        }
    }

    /// `clock_skew` (at most 10m) and `max_lifetime` (longer than 0s), in seconds.
    fn time_rules(&mut self, raw: &RawTenant, path: &str) -> (u64, Option<u64>) {
        let clock_skew = match &raw.clock_skew {
            Some(skew) => match self.duration(skew, &format!("{path}.clock_skew")) {
                Some(value) if value > MAX_CLOCK_SKEW => {
                    let line = skew.referenced.line();
                    self.error(line, format!("{path}.clock_skew"), "must be at most 10m");
                    DEFAULT_CLOCK_SKEW_SECS
                }
                Some(value) => value.as_secs(),
                None => DEFAULT_CLOCK_SKEW_SECS,
            },
            None => DEFAULT_CLOCK_SKEW_SECS,
        };
        let max_lifetime = match &raw.max_lifetime {
            Some(lifetime) => match self.duration(lifetime, &format!("{path}.max_lifetime")) {
                Some(value) if value.is_zero() => {
                    let line = lifetime.referenced.line();
                    self.error(
                        line,
                        format!("{path}.max_lifetime"),
                        "must be longer than 0s",
                    );
                    None
                }
                other => other.map(|value| value.as_secs()),
            },
            None => None,
        };
        (clock_skew, max_lifetime)
    }
}

/// What a tenant accepts: its issuers, audiences and tenant ids.
struct Accepted {
    issuers: Vec<String>,
    audiences: Vec<String>,
    /// `audiences: any` was written.
    any_audience: bool,
    tenant_ids: Vec<String>,
}

/// What the key-source and issuer checks of one tenant share.
#[derive(Clone, Copy)]
struct Source<'a> {
    raw: &'a RawTenant,
    entra: Option<&'a EntraEndpoints>,
    options: &'a KeyOptions,
    path: &'a str,
    line: u64,
}
