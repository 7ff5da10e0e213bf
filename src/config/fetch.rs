//! How remote keys are fetched: the top-level `fetch:` block, which a tenant's own `fetch:`
//! block overrides field by field.
//!
//! ```yaml
//! fetch:
//!   ca_file: /etc/tokengate/ca.pem   # PEM bundle added to the platform's trust roots
//!   ca_only: false                   # true: trust ca_file alone
//!   proxy: http://proxy.internal:3128  # default: HTTPS_PROXY / HTTP_PROXY / NO_PROXY
//!   timeout: 10s                     # per request, connection included
//!   max_bytes: 512KiB                # per document, at most 512KiB
//! ```

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use tokengate_core::keyset::MAX_JWKS_SIZE;
use url::Url;

use super::cache::parse_size;
use super::check::Checker;

/// The longest `fetch.timeout`.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// How one tenant's keys are fetched.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FetchSettings {
    /// Extra trust roots (the PEM text of `ca_file`, read when the configuration is loaded).
    pub ca: Option<TrustRoots>,
    /// Trust `ca` alone, not the platform's roots.
    pub ca_only: bool,
    /// The proxy for every fetch; `None` follows `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`.
    pub proxy: Option<Url>,
    /// Time allowed for one request, connection included.
    pub timeout: Duration,
    /// Largest document accepted, in bytes.
    pub max_bytes: usize,
}

impl Default for FetchSettings {
    fn default() -> Self {
        Self {
            ca: None,
            ca_only: false,
            proxy: None,
            timeout: Duration::from_secs(10),
            max_bytes: MAX_JWKS_SIZE,
        }
    }
}

/// A PEM bundle of CA certificates, and where it was read from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TrustRoots {
    /// The file.
    pub path: PathBuf,
    /// Its PEM text.
    pub pem: Arc<Vec<u8>>,
}

/// A `fetch:` block as written.
#[derive(Deserialize, Serialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFetch {
    ca_file: Option<Spanned<String>>,
    ca_only: Option<bool>,
    proxy: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    max_bytes: Option<Spanned<String>>,
}

impl Checker {
    /// Applies `raw` on top of `base`; `path` is the block's path, e.g. `tenants[0].fetch`.
    /// The CA file's content joins `fingerprint`, and the file is watched for changes.
    pub(super) fn fetch(
        &mut self,
        raw: &RawFetch,
        base: &FetchSettings,
        path: &str,
        base_dir: &Path,
        fingerprint: &mut impl Hasher,
    ) -> FetchSettings {
        let mut settings = base.clone();
        if let Some(file) = &raw.ca_file {
            settings.ca = self.trust_roots(file, &format!("{path}.ca_file"), base_dir);
        }
        if let Some(ca_only) = raw.ca_only {
            settings.ca_only = ca_only;
        }
        if let Some(proxy) = &raw.proxy {
            settings.proxy = self.proxy(proxy, &format!("{path}.proxy"));
        }
        if let Some(timeout) = &raw.timeout {
            let field = format!("{path}.timeout");
            match self.duration(timeout, &field) {
                Some(value) if value.is_zero() || value > MAX_TIMEOUT => {
                    let line = timeout.referenced.line();
                    self.error(line, field, "must be longer than 0s and at most 60s");
                }
                Some(value) => settings.timeout = value,
                None => {}
            }
        }
        if let Some(size) = &raw.max_bytes {
            match parse_size(&size.value) {
                Some(bytes) if (1024..=MAX_JWKS_SIZE as u64).contains(&bytes) => {
                    settings.max_bytes = bytes as usize;
                }
                _ => self.error(
                    size.referenced.line(),
                    format!("{path}.max_bytes"),
                    "must be a size from 1KiB to 512KiB, e.g. 256KiB",
                ),
            }
        }
        if settings.ca_only && settings.ca.is_none() {
            let line = raw
                .ca_file
                .as_ref()
                .map_or(0, |file| file.referenced.line());
            self.error(line, format!("{path}.ca_only"), "needs a ca_file to trust");
        }
        settings.hash(fingerprint);
        settings
    }

    fn trust_roots(
        &mut self,
        file: &Spanned<String>,
        path: &str,
        base_dir: &Path,
    ) -> Option<TrustRoots> {
        let full = base_dir.join(&file.value);
        let line = file.referenced.line();
        let pem = self.read_watched(&full, line, path)?;
        let certificates_only = pem::parse_many(&pem).is_ok_and(|blocks| {
            !blocks.is_empty() && blocks.iter().all(|block| block.tag() == "CERTIFICATE")
        });
        if !certificates_only {
            let message = format!(
                "{} must hold PEM CERTIFICATE blocks, and only those",
                full.display()
            );
            self.error(line, path, message);
            return None;
        }
        Some(TrustRoots {
            path: full,
            pem: Arc::new(pem),
        })
    }

    fn proxy(&mut self, proxy: &Spanned<String>, path: &str) -> Option<Url> {
        match Url::parse(&proxy.value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Some(url)
            }
            _ => {
                let message = format!("{:?} is not an http:// or https:// proxy URL", proxy.value);
                self.error(proxy.referenced.line(), path, message);
                None
            }
        }
    }
}
