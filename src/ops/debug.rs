//! The admin view (`GET /debug/tenants`, `GET /debug/tenants/{id}` on `metrics_listen`): what
//! each tenant has loaded and what went wrong, in one place. Per-token details say only that
//! keys are unavailable and since when; the cause is here and in the log.
//!
//! It shows key ids, types and algorithms, never key material, and never a token.
//!
//! May import: `runtime` (read-only), `tenants`, `keys`, `config`.

use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::clock;
use crate::config::KeySource;
use crate::runtime::Snapshot;
use crate::tenants::tenant::Tenant;

/// Most skipped keys listed per tenant (their count is always shown).
const SKIPPED_SHOWN: usize = 20;

/// `GET /debug/tenants`: every tenant, in configuration order.
#[derive(Debug, Serialize)]
pub(crate) struct TenantsView {
    /// When this view was taken (RFC 3339).
    generated_at: String,
    /// Verified tokens the cache holds now (0 when it is off).
    cache_entries: usize,
    /// The tenants.
    tenants: Vec<TenantView>,
}

/// One tenant, as `GET /debug/tenants/{id}` shows it.
#[derive(Debug, Serialize)]
pub(crate) struct TenantView {
    id: String,
    key_source: KeySourceView,
    /// Issuers as configured (empty: taken from discovery).
    configured_issuers: Vec<String>,
    /// The issuer the discovery document named, if any.
    discovered_issuer: Option<String>,
    /// The issuers the tenant accepts now.
    accepted_issuers: Vec<String>,
    /// The accepted audiences (empty: any).
    audiences: Vec<String>,
    /// `audiences: any` was written.
    any_audience: bool,
    tenant_ids: Vec<String>,
    /// Whether usable keys are loaded.
    has_keys: bool,
    keys: Vec<KeyView>,
    skipped_keys: usize,
    skipped: Vec<SkippedView>,
    /// When the current keys were loaded.
    keys_loaded_at: Option<String>,
    /// When they go stale without a successful refresh (remote keys only).
    keys_stale_at: Option<String>,
    /// When the refresh task fetches next.
    next_refresh_at: Option<String>,
    /// Why loading fails, since when; absent after a success.
    last_error: Option<ErrorView>,
    /// Verdicts since the tenant was built (a reload that changes it starts again).
    validations: CountsView,
}

#[derive(Debug, Serialize)]
struct KeySourceView {
    /// `discovery`, `jwks_uri` or `static`.
    kind: &'static str,
    url: Option<String>,
}

#[derive(Debug, Serialize)]
struct KeyView {
    kid: Option<String>,
    /// `RSA`, `EC P-256`, `EC P-384`, `OKP Ed25519` or `oct`.
    key_type: &'static str,
    algorithms: Vec<String>,
}

#[derive(Debug, Serialize)]
struct SkippedView {
    kid: Option<String>,
    reason: String,
}

#[derive(Debug, Serialize)]
struct ErrorView {
    error: String,
    since: String,
    last_at: String,
}

#[derive(Debug, Serialize)]
struct CountsView {
    valid: u64,
    rejected: u64,
}

impl TenantsView {
    /// The view of every tenant of `snapshot` at `now`.
    pub(crate) fn of(snapshot: &Snapshot, now: i64) -> Self {
        Self {
            generated_at: clock::rfc3339(now),
            cache_entries: snapshot.validator.cache_len(),
            tenants: snapshot
                .registry()
                .tenants()
                .iter()
                .map(|tenant| TenantView::of(tenant))
                .collect(),
        }
    }
}

impl TenantView {
    /// The view of one tenant.
    pub(crate) fn of(tenant: &Tenant) -> Self {
        let spec = tenant.spec();
        let slot = tenant.keys();
        let active = tenant.active();
        let keys = active.as_ref().map(|active| active.keys.clone());
        let counts = tenant.validations().counts();
        Self {
            id: spec.id.clone(),
            key_source: KeySourceView::of(&spec.key_source),
            configured_issuers: spec.issuers.clone(),
            discovered_issuer: slot.discovered_issuer(),
            accepted_issuers: tenant
                .issuers()
                .iter()
                .map(|issuer| issuer.as_str().to_owned())
                .collect(),
            audiences: spec.policy.audiences.clone(),
            any_audience: spec.any_audience,
            tenant_ids: spec.policy.tenant_ids.clone(),
            has_keys: keys.is_some(),
            keys: keys.as_ref().map_or_else(Vec::new, |keys| {
                keys.keys().iter().map(KeyView::of).collect()
            }),
            skipped_keys: keys.as_ref().map_or(0, |keys| keys.skipped().len()),
            skipped: keys.as_ref().map_or_else(Vec::new, |keys| {
                keys.skipped()
                    .iter()
                    .take(SKIPPED_SHOWN)
                    .map(|skipped| SkippedView {
                        kid: skipped.kid.clone(),
                        reason: skipped.reason.clone(),
                    })
                    .collect()
            }),
            keys_loaded_at: active
                .as_ref()
                .map(|active| clock::rfc3339(active.loaded_at)),
            keys_stale_at: slot.stale_at().map(clock::rfc3339),
            next_refresh_at: slot.next_fetch_at().map(clock::rfc3339),
            last_error: slot.failure().map(|failure| ErrorView {
                error: failure.error.clone(),
                since: clock::rfc3339(failure.since),
                last_at: clock::rfc3339(failure.last_at),
            }),
            validations: CountsView {
                valid: counts.valid.load(Ordering::Relaxed),
                rejected: counts.rejected.load(Ordering::Relaxed),
            },
        }
    }
}

impl KeySourceView {
    fn of(source: &KeySource) -> Self {
        let (kind, url) = match source {
            KeySource::Discovery(url) => ("discovery", Some(url.to_string())),
            KeySource::JwksUri(url) => ("jwks_uri", Some(url.to_string())),
            KeySource::Static(_) => ("static", None),
        };
        Self { kind, url }
    }
}

impl KeyView {
    fn of(key: &tokengate_core::keyset::VerifyingKey) -> Self {
        let algorithms = key.algorithms();
        Self {
            kid: key.kid().map(str::to_owned),
            key_type: algorithms
                .iter()
                .next()
                .map_or("unknown", |algorithm| algorithm.family().name()),
            algorithms: algorithms
                .iter()
                .map(|algorithm| algorithm.to_string())
                .collect(),
        }
    }
}
