//! Loading remote keys: OIDC discovery and JWKS over HTTPS (rustls with ring; no OpenSSL).

use std::collections::HashMap;
use std::error::Error as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use tokengate_core::issuer::template_left_open;

use crate::config::fetch::FetchSettings;
use crate::config::{KeySource, TenantSpec, is_loopback};
use tokengate_core::keyset::KeySet;

/// Keys (and, from discovery, the issuer) loaded for one tenant.
#[derive(Debug)]
pub(crate) struct LoadedKeys {
    /// The parsed key set.
    pub keys: KeySet,
    /// The `issuer` of the discovery document, when keys came through discovery.
    pub discovered_issuer: Option<String>,
    /// The JWKS URL the keys came from (from discovery, or configured).
    pub jwks_url: Url,
    /// The JWKS response's `Cache-Control: max-age` (`no-cache`/`no-store` count as 0).
    pub max_age: Option<Duration>,
}

/// Why keys could not be loaded. The message names the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// DNS, connection, TLS or time-out.
    #[error("{what} {url}: {cause}")]
    Request {
        /// discovery or JWKS.
        what: &'static str,
        /// The URL.
        url: String,
        /// The error chain, most specific last.
        cause: String,
    },
    /// The server answered with a non-success status.
    #[error("{what} {url}: HTTP status {status}")]
    Status {
        /// discovery or JWKS.
        what: &'static str,
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The body was larger than allowed.
    #[error("{what} {url}: the response is larger than {limit} bytes")]
    TooLarge {
        /// discovery or JWKS.
        what: &'static str,
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The document could not be parsed.
    #[error("{what} {url}: {cause}")]
    Parse {
        /// discovery or JWKS.
        what: &'static str,
        /// The URL.
        url: String,
        /// What was wrong.
        cause: String,
    },
    /// The discovery document names an issuer the tenant does not accept.
    #[error(
        "discovery {url}: the document's issuer {found:?} is not among the configured issuers {configured:?}"
    )]
    IssuerMismatch {
        /// The discovery URL.
        url: String,
        /// The issuer in the document.
        found: String,
        /// The tenant's issuers.
        configured: Vec<String>,
    },
    /// The discovery document names a `{tenantid}` issuer, but nothing restricts tenants.
    #[error(
        "discovery {url}: the issuer {issuer:?} accepts tokens of every Entra tenant; list the organisations in tenant_ids and your API in audiences"
    )]
    OpenTemplate {
        /// The discovery URL.
        url: String,
        /// The template issuer.
        issuer: String,
    },
    /// The discovery document names an issuer that its URL was not derived from.
    #[error(
        "discovery {url}: the document's issuer {issuer:?} is not the issuer this URL belongs to (OpenID Connect Discovery §4.3: the URL is the issuer followed by /.well-known/openid-configuration); list the tenant's issuers to accept it"
    )]
    IssuerNotDerived {
        /// The discovery URL.
        url: String,
        /// The issuer in the document.
        issuer: String,
    },
    /// The issuer this tenant would discover is another tenant's, which does not share it.
    #[error(
        "discovery {url}: the issuer {issuer:?} is tenant {owner:?}'s; a tenant that takes its issuer from discovery may not take another tenant's (write share_issuer: true on both to share it)"
    )]
    IssuerTaken {
        /// The discovery URL.
        url: String,
        /// The issuer.
        issuer: String,
        /// The tenant that holds it.
        owner: String,
    },
    /// A URL in the discovery document is not acceptable.
    #[error(
        "discovery {url}: jwks_uri {jwks_uri:?} must be https:// (http:// only on a loopback host, from a loopback discovery URL)"
    )]
    InsecureJwksUri {
        /// The discovery URL.
        url: String,
        /// The offending jwks_uri.
        jwks_uri: String,
    },
    /// The JWKS had no usable key.
    #[error("JWKS {url}: no usable key ({skipped})")]
    NoUsableKey {
        /// The URL.
        url: String,
        /// The skipped keys and why.
        skipped: String,
    },
}

impl FetchError {
    /// Whether the provider answered, but with keys or an issuer the tenant's policy refuses
    /// (rather than failing to answer): such keys must not keep serving.
    pub(crate) fn is_policy_refusal(&self) -> bool {
        matches!(
            self,
            Self::IssuerMismatch { .. }
                | Self::OpenTemplate { .. }
                | Self::IssuerNotDerived { .. }
                | Self::IssuerTaken { .. }
        )
    }
}

/// Whether a discovered `jwks_uri` may be fetched: https, or plain http when the tenant allows
/// it, or between loopback URLs when the discovery URL itself is loopback (a remote document
/// never points the fetcher at a local port).
pub(crate) fn jwks_uri_allowed(allow_insecure_http: bool, discovery: &Url, jwks: &Url) -> bool {
    match jwks.scheme() {
        "https" => true,
        "http" => allow_insecure_http || (is_loopback(jwks) && is_loopback(discovery)),
        _ => false,
    }
}

/// The rules a discovered issuer must pass, whether it was just fetched, refreshed, or is
/// inherited by a reload: a tenant that lists its issuers (the Entra preset lists them) accepts
/// only those; a tenant that takes its issuer from discovery accepts only the issuer its
/// discovery URL was derived from, and never a `{tenantid}` template left open.
pub(crate) fn check_discovered_issuer(
    spec: &TenantSpec,
    discovery_url: &Url,
    issuer: &str,
) -> Result<(), FetchError> {
    let url = || discovery_url.to_string();
    if !spec.issuers.is_empty() {
        if spec.issuers.iter().any(|configured| configured == issuer) {
            return Ok(());
        }
        return Err(FetchError::IssuerMismatch {
            url: url(),
            found: issuer.to_owned(),
            configured: spec.issuers.clone(),
        });
    }
    let policy = &spec.policy;
    if template_left_open(
        [issuer],
        &policy.tenant_ids,
        &policy.audiences,
        spec.any_audience,
    ) {
        return Err(FetchError::OpenTemplate {
            url: url(),
            issuer: issuer.to_owned(),
        });
    }
    let derived = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    if Url::parse(&derived).ok().as_ref() != Some(discovery_url) {
        return Err(FetchError::IssuerNotDerived {
            url: url(),
            issuer: issuer.to_owned(),
        });
    }
    if let Some(owner) = &spec.issuer_taken_by {
        metrics::counter!("tokengate_issuer_conflicts_total", "tenant" => spec.id.clone())
            .increment(1);
        return Err(FetchError::IssuerTaken {
            url: url(),
            issuer: issuer.to_owned(),
            owner: owner.clone(),
        });
    }
    Ok(())
}

/// What a discovery document must hold for tokengate.
#[derive(Deserialize)]
pub(crate) struct DiscoveryDocument {
    pub(crate) issuer: String,
    pub(crate) jwks_uri: String,
}

/// Fetches discovery documents and key sets, with one HTTP client per set of fetch settings
/// (trust roots, proxy, time-out), built when first needed and shared after that.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fetcher {
    clients: Arc<Mutex<HashMap<FetchSettings, reqwest::Client>>>,
}

impl Fetcher {
    /// A fetcher whose TLS uses rustls with the ring provider and the platform's roots (plus a
    /// tenant's `fetch.ca_file`); fails if not even the default client can be built.
    pub(crate) fn new() -> Result<Self, FetchError> {
        // Installing twice is harmless; the first provider stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let fetcher = Self::default();
        fetcher.client(&FetchSettings::default())?;
        Ok(fetcher)
    }

    /// The client for `settings`.
    fn client(&self, settings: &FetchSettings) -> Result<reqwest::Client, FetchError> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(settings) {
            return Ok(client.clone());
        }
        let client = build_client(settings)?;
        clients.insert(settings.clone(), client.clone());
        Ok(client)
    }
}

/// An HTTP client for `settings`: its time-out, trust roots and proxy, a user agent, and the
/// redirect policy.
fn build_client(settings: &FetchSettings) -> Result<reqwest::Client, FetchError> {
    let client_error = |error: reqwest::Error| FetchError::Client(chain(&error));
    let mut builder = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .user_agent(concat!("tokengate/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = &settings.ca {
        let roots = reqwest::Certificate::from_pem_bundle(&ca.pem).map_err(client_error)?;
        builder = if settings.ca_only {
            builder.tls_certs_only(roots)
        } else {
            builder.tls_certs_merge(roots)
        };
    }
    if let Some(proxy) = &settings.proxy {
        builder = builder.proxy(reqwest::Proxy::all(proxy.as_str()).map_err(client_error)?);
    }
    builder
        // A redirect may not downgrade to plain http, or loop. Plain http stays allowed
        // between loopback URLs only when the configured URL is loopback itself, so that a
        // remote document cannot point the fetcher at local ports.
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let from_loopback = attempt.previous().first().is_some_and(is_loopback);
            if attempt.previous().len() >= 5 {
                attempt.error("more than 5 redirects")
            } else if attempt.url().scheme() != "https"
                && !(from_loopback && is_loopback(attempt.url()))
            {
                attempt.error("a redirect to a non-https URL")
            } else {
                attempt.follow()
            }
        }))
        .build()
        .map_err(client_error)
}

impl Fetcher {
    /// Loads a tenant's keys from its source. With `known` (the JWKS URL and issuer of an
    /// earlier discovery), the discovery document is not fetched again: that is how a refetch for
    /// an unknown `kid` costs the provider one request.
    pub(crate) async fn load(
        &self,
        spec: &TenantSpec,
        known: Option<(&Url, Option<&str>)>,
    ) -> Result<LoadedKeys, FetchError> {
        let options = spec.key_options();
        let (jwks_url, discovered_issuer) = match (&spec.key_source, known) {
            (KeySource::Static(_), _) => {
                return Err(FetchError::Client("static keys are not fetched".into()));
            }
            (KeySource::JwksUri(url), _) => (url.clone(), None),
            (KeySource::Discovery(_), Some((jwks_url, issuer))) => {
                (jwks_url.clone(), issuer.map(str::to_owned))
            }
            (KeySource::Discovery(url), None) => {
                let (body, _) = self.get(&spec.fetch, url, "discovery").await?;
                let document: DiscoveryDocument = serde_json::from_slice(&body).map_err(|error| FetchError::Parse {
                    what: "discovery",
                    url: url.to_string(),
                    cause: format!("not an OpenID discovery document with \"issuer\" and \"jwks_uri\": {error}"),
                })?;
                check_discovered_issuer(spec, url, &document.issuer)?;
                let jwks_url = Url::parse(&document.jwks_uri)
                    .ok()
                    .filter(|jwks| jwks_uri_allowed(spec.allow_insecure_http, url, jwks))
                    .ok_or_else(|| FetchError::InsecureJwksUri {
                        url: url.to_string(),
                        jwks_uri: document.jwks_uri.clone(),
                    })?;
                (jwks_url, Some(document.issuer))
            }
        };
        let (body, max_age) = self.get(&spec.fetch, &jwks_url, "JWKS").await?;
        let keys = KeySet::from_jwks(&body, &options).map_err(|error| FetchError::Parse {
            what: "JWKS",
            url: jwks_url.to_string(),
            cause: error.to_string(),
        })?;
        if keys.is_empty() {
            return Err(FetchError::NoUsableKey {
                url: jwks_url.to_string(),
                skipped: keys.skipped_summary(),
            });
        }
        Ok(LoadedKeys {
            keys,
            discovered_issuer,
            jwks_url,
            max_age,
        })
    }

    /// GETs a JSON document (size-capped) and its `Cache-Control: max-age`.
    async fn get(
        &self,
        settings: &FetchSettings,
        url: &Url,
        what: &'static str,
    ) -> Result<(Vec<u8>, Option<Duration>), FetchError> {
        let limit = settings.max_bytes;
        let request_error = |error: reqwest::Error| FetchError::Request {
            what,
            url: url.to_string(),
            cause: chain(&error),
        };
        let mut response = self
            .client(settings)?
            .get(url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(request_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                what,
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        let too_large = || FetchError::TooLarge {
            what,
            url: url.to_string(),
            limit,
        };
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(too_large());
        }
        let max_age = response
            .headers()
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, max_age))
    }
}

/// The freshness lifetime a `Cache-Control` value gives: `max-age=N`, or 0 for `no-cache` and
/// `no-store` (then the refresh interval's lower clamp applies).
pub(crate) fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let directive = directive.trim();
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "max-age" => value
                .trim()
                .trim_matches('"')
                .parse()
                .ok()
                .map(Duration::from_secs),
            "no-cache" | "no-store" => Some(Duration::ZERO),
            _ => None,
        }
    })
}

/// An error and its sources, e.g. "error sending request: connection refused".
fn chain(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        String::from("timed out")
    } else if error.is_connect() {
        String::from("cannot connect")
    } else {
        error.to_string()
    };
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_document_never_points_the_fetch_at_plain_http_on_loopback() {
        let url = |text: &str| Url::parse(text).expect("url");
        let remote = url("https://idp.example/.well-known/openid-configuration");
        let local = url("http://127.0.0.1:8080/.well-known/openid-configuration");
        assert!(jwks_uri_allowed(
            false,
            &remote,
            &url("https://idp.example/jwks")
        ));
        assert!(!jwks_uri_allowed(
            false,
            &remote,
            &url("http://127.0.0.1:6379/")
        ));
        assert!(!jwks_uri_allowed(
            false,
            &remote,
            &url("http://localhost:9090/")
        ));
        assert!(jwks_uri_allowed(
            false,
            &local,
            &url("http://127.0.0.1:8080/jwks")
        ));
        assert!(!jwks_uri_allowed(
            false,
            &local,
            &url("http://idp.example/jwks")
        ));
        assert!(jwks_uri_allowed(
            true,
            &remote,
            &url("http://idp.example/jwks")
        ));
        assert!(!jwks_uri_allowed(true, &remote, &url("file:///etc/passwd")));
    }

    #[test]
    fn cache_control_max_age() {
        assert_eq!(
            max_age("public, max-age=3600"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            max_age("Max-Age = 60 , must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("private"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }
}
