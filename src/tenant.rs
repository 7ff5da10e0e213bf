//! Live tenants: their key sets and policies, swapped atomically, and the choice of tenant for
//! a token. The request path takes lock-free snapshots (`arc-swap`) and never waits on I/O.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::cache::{self, TokenCache};
use crate::config::{Config, KeySource, TenantSpec};
use crate::hints;
use crate::issuer::IssuerPattern;
use crate::keyset::KeySet;
use crate::metrics::{KeyMetrics, NO_TENANT, ValidationMetrics};
use crate::policy::{Policy, TokenTimes};
use crate::reason::Reason;
use crate::refresh::RefreshState;
use crate::rejection::{Rejection, quote};
use crate::token::{DecodedToken, Limits, ParsedToken};
use crate::verify;

/// The keys a tenant verifies with, and the policy completed for them.
#[derive(Debug)]
pub struct ActiveKeys {
    /// The key set.
    pub keys: Arc<KeySet>,
    /// The policy, with issuers from discovery and algorithms from the keys filled in.
    pub policy: Policy,
    /// When the keys were last loaded successfully (seconds since the epoch).
    pub loaded_at: i64,
}

/// One configured tenant and its current keys.
#[derive(Debug)]
pub struct Tenant {
    spec: TenantSpec,
    active: ArcSwapOption<ActiveKeys>,
    last_error: ArcSwapOption<String>,
    validations: ValidationMetrics,
    key_metrics: KeyMetrics,
    refresh: Arc<RefreshState>,
}

impl Drop for Tenant {
    fn drop(&mut self) {
        // Removed or replaced by a reload, and no request holds it any more.
        self.refresh.cancel();
    }
}

impl Tenant {
    /// A tenant from its spec; static keys are active at once, remote ones once loaded.
    pub fn new(spec: TenantSpec, now: i64) -> Self {
        let tenant = Self {
            active: ArcSwapOption::empty(),
            last_error: ArcSwapOption::empty(),
            validations: ValidationMetrics::new(&spec.id),
            key_metrics: KeyMetrics::new(
                &spec.id,
                !matches!(spec.key_source, KeySource::Static(_)),
            ),
            refresh: Arc::new(RefreshState::default()),
            spec,
        };
        if let KeySource::Static(keys) = &tenant.spec.key_source {
            let keys = keys.clone();
            tenant.install(keys, None, now);
        }
        tenant
    }

    /// The tenant id.
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// The tenant's configuration.
    pub fn spec(&self) -> &TenantSpec {
        &self.spec
    }

    /// Whether the keys are fetched (and refreshed) rather than configured.
    pub fn is_remote(&self) -> bool {
        !matches!(self.spec.key_source, KeySource::Static(_))
    }

    /// The state shared with this tenant's refresh task.
    pub fn refresh_state(&self) -> &Arc<RefreshState> {
        &self.refresh
    }

    /// For a token with an unknown `kid`: wakes a refetch (single-flight, rate-limited) and
    /// waits briefly for it. Returns whether a fetch finished, so that validating again may help.
    pub async fn refetch_for_unknown_kid(&self) -> bool {
        if !self.is_remote() {
            return false;
        }
        let settings = self.spec.refresh;
        self.refresh
            .refetch_for_unknown_kid(settings.unknown_kid_cooldown, settings.unknown_kid_wait)
            .await
    }

    /// The current keys, if any were loaded.
    pub fn active(&self) -> Option<Arc<ActiveKeys>> {
        self.active.load_full()
    }

    /// Whether the tenant's issuer comes from a discovery document not loaded yet.
    fn awaits_discovery(&self) -> bool {
        self.spec.policy.issuers.is_empty() && !self.has_keys()
    }

    /// Whether usable keys are loaded.
    pub fn has_keys(&self) -> bool {
        self.active.load().is_some()
    }

    /// Replaces the keys atomically; readers keep the set they already hold.
    pub fn install(&self, keys: Arc<KeySet>, discovered_issuer: Option<String>, now: i64) {
        let mut policy = self.spec.policy.clone();
        if policy.issuers.is_empty()
            && let Some(issuer) = discovered_issuer
        {
            policy.issuers.push(IssuerPattern::new(issuer));
        }
        if self.spec.algorithms.is_none() {
            policy.algorithms = keys.algorithms();
        }
        self.key_metrics
            .loaded(keys.len(), keys.skipped().len(), now);
        self.active.store(Some(Arc::new(ActiveKeys {
            keys,
            policy,
            loaded_at: now,
        })));
        self.last_error.store(None);
    }

    /// Takes over the keys of the tenant this one replaces in a reload, when both fetch from the
    /// same place, so that a policy change does not leave the tenant without keys until the
    /// next fetch completes.
    pub fn inherit_keys(&self, old: &Self) {
        let same_source = match (&self.spec.key_source, &old.spec.key_source) {
            (KeySource::Discovery(new), KeySource::Discovery(old)) => new == old,
            (KeySource::JwksUri(new), KeySource::JwksUri(old)) => new == old,
            _ => false,
        };
        if !same_source || self.spec.algorithms != old.spec.algorithms {
            return;
        }
        let Some(active) = old.active() else {
            return;
        };
        let discovered = old.refresh.discovered();
        let issuer = discovered.as_ref().and_then(|found| found.1.clone());
        self.refresh.remember_discovery(discovered);
        self.install(active.keys.clone(), issuer, active.loaded_at);
    }

    /// Records why the last load failed (the current keys, if any, stay).
    pub fn record_error(&self, error: String) {
        self.key_metrics.failed();
        self.last_error.store(Some(Arc::new(error)));
    }

    /// The reason to refuse every token when the keys are older than `max_stale`.
    fn stale(&self, active: &ActiveKeys, now: i64) -> Option<Rejection> {
        let max_stale = i64::try_from(self.spec.refresh.max_stale.as_secs()).unwrap_or(i64::MAX);
        let age = now.saturating_sub(active.loaded_at);
        if !self.is_remote() || age <= max_stale {
            return None;
        }
        let cause = self
            .last_error
            .load_full()
            .map_or_else(String::new, |error| {
                format!("; the last refresh failed: {error}")
            });
        Some(Rejection::new(
            Reason::KeysUnavailable,
            format!(
                "the tenant's keys were last refreshed {}s ago, longer than max_stale ({}s){cause}",
                age, max_stale
            ),
        ))
    }

    /// Why keys are missing, for the `KEYS_UNAVAILABLE` detail.
    fn unavailable_detail(&self) -> String {
        match self.last_error.load_full() {
            Some(error) => format!("the tenant's keys could not be loaded: {error}"),
            None => "the tenant's keys are still loading; retry shortly".to_owned(),
        }
    }

    /// The issuers this tenant currently accepts.
    fn issuers(&self) -> Vec<IssuerPattern> {
        match self.active.load().as_ref() {
            Some(active) => active.policy.issuers.clone(),
            None => self.spec.policy.issuers.clone(),
        }
    }
}

/// The verdict on one token, as every front end (gRPC, CLI) reports it.
#[derive(Debug, Default, Serialize)]
pub struct Verdict {
    /// Whether the token is valid.
    pub valid: bool,
    /// The reason code when rejected.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_reason"
    )]
    pub reason: Option<Reason>,
    /// Human-readable detail (empty when valid).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The tenant that judged the token.
    pub tenant: String,
    /// `iss`, when decodable.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub issuer: String,
    /// `sub`, only when valid.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subject: String,
    /// `exp` in seconds (0 when absent).
    pub expires_at: i64,
    /// The key id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key_id: String,
    /// The header `alg`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub algorithm: String,
    /// The stable code of a recognised cause (see [`crate::hints::Hint`]).
    #[serde(skip_serializing_if = "str::is_empty")]
    pub hint_code: &'static str,
    /// The payload JSON exactly as in the token; only when valid. Shared, not copied, between
    /// the token cache and answers.
    #[serde(skip)]
    pub claims_json: Bytes,
}

fn serialize_reason<S: serde::Serializer>(
    reason: &Option<Reason>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match reason {
        Some(reason) => serializer.serialize_str(reason.code()),
        None => serializer.serialize_none(),
    }
}

impl Verdict {
    /// Whether a refetch of the tenant's keys could change this verdict: the token names a
    /// `kid` the tenant does not know (yet).
    pub fn wants_key_refetch(&self) -> bool {
        self.reason == Some(Reason::UnknownKey)
            && !self.key_id.is_empty()
            && !self.tenant.is_empty()
    }

    fn reject(&mut self, rejection: Rejection) {
        self.valid = false;
        self.reason = Some(rejection.reason);
        self.hint_code = rejection.hint.map_or("", hints::Hint::code);
        self.detail = rejection.detail.into_owned();
        self.claims_json.clear();
    }

    /// The claims as a JSON value (for JSON output), when valid.
    pub fn claims(&self) -> Option<Box<RawValue>> {
        if self.claims_json.is_empty() {
            return None;
        }
        let text = String::from_utf8(self.claims_json.to_vec()).ok()?;
        RawValue::from_string(text).ok()
    }
}

/// Which tenants accept which issuer: exact issuers by hash, templates by scan.
#[derive(Debug, Default)]
struct IssuerIndex {
    exact: HashMap<String, Vec<Arc<Tenant>>>,
    templates: Vec<(IssuerPattern, Arc<Tenant>)>,
    /// What the index was built from: each tenant's issuers and whether it had keys (which
    /// decides between tenants that share an issuer).
    built_from: Vec<(bool, Vec<String>)>,
    /// Identifies this routing: replaced only when `built_from` changes, so cached verdicts
    /// of tokens routed by issuer stay valid exactly as long as the routing does.
    generation: Arc<()>,
}

impl IssuerIndex {
    /// The tenants that accept `iss` (a template only for the token's own `tid`).
    /// Borrows the exact matches (the usual case, no allocation); copies only when a template
    /// adds a tenant.
    fn candidates(&self, iss: &str, tid: Option<&str>) -> std::borrow::Cow<'_, [Arc<Tenant>]> {
        let exact: &[Arc<Tenant>] = self.exact.get(iss).map_or(&[], Vec::as_slice);
        let mut found = std::borrow::Cow::Borrowed(exact);
        for (pattern, tenant) in &self.templates {
            if pattern.matches(iss, tid) && !found.iter().any(|known| Arc::ptr_eq(known, tenant)) {
                found.to_mut().push(tenant.clone());
            }
        }
        found
    }

    /// Every accepted issuer, for diagnostics.
    fn patterns(&self) -> Vec<IssuerPattern> {
        self.exact
            .keys()
            .map(IssuerPattern::new)
            .chain(self.templates.iter().map(|(pattern, _)| pattern.clone()))
            .collect()
    }
}

/// All tenants, with an index from issuer to tenant.
#[derive(Debug)]
pub struct Registry {
    tenants: HashMap<String, Arc<Tenant>>,
    order: Vec<Arc<Tenant>>,
    by_issuer: ArcSwap<IssuerIndex>,
    /// Serialises rebuilds of `by_issuer` (off the request path), so that two tenants loading
    /// keys at once cannot overwrite each other's issuers.
    reindexing: std::sync::Mutex<()>,
    limits: Limits,
    max_batch_size: usize,
    unmatched: ValidationMetrics,
    cache: Option<TokenCache>,
}

/// The outcome of [`Registry::judge`] beyond the verdict: who judged, and for a valid token
/// what the verdict rests on (for the cache).
struct Judgement {
    tenant: Arc<Tenant>,
    valid: Option<(Arc<ActiveKeys>, TokenTimes)>,
}

impl Judgement {
    fn by(tenant: Arc<Tenant>) -> Option<Self> {
        Some(Self {
            tenant,
            valid: None,
        })
    }
}

impl Registry {
    /// Builds the registry for a configuration; static keys are active at once.
    pub fn new(config: &Config, now: i64) -> Self {
        Self::rebuild(config, None, now).0
    }

    /// Builds the registry for a new configuration, keeping each tenant of `previous` whose
    /// configuration is unchanged (with its keys and refresh task). Returns the registry and the
    /// tenants that are new or changed, which need their keys loaded.
    pub fn rebuild(config: &Config, previous: Option<&Self>, now: i64) -> (Self, Vec<Arc<Tenant>>) {
        let mut fresh = Vec::new();
        let order: Vec<Arc<Tenant>> = config
            .tenants
            .iter()
            .map(|spec| {
                let kept = previous
                    .and_then(|previous| previous.get(&spec.id))
                    .filter(|tenant| tenant.spec.fingerprint == spec.fingerprint);
                kept.cloned().unwrap_or_else(|| {
                    let tenant = Arc::new(Tenant::new(spec.clone(), now));
                    if let Some(old) = previous.and_then(|previous| previous.get(&spec.id)) {
                        tenant.inherit_keys(old);
                    }
                    fresh.push(tenant.clone());
                    tenant
                })
            })
            .collect();
        let registry = Self {
            tenants: order
                .iter()
                .map(|tenant| (tenant.id().to_owned(), tenant.clone()))
                .collect(),
            order,
            by_issuer: ArcSwap::from_pointee(IssuerIndex::default()),
            reindexing: std::sync::Mutex::new(()),
            limits: Limits {
                max_token_size: config.max_token_size,
            },
            max_batch_size: config.max_batch_size,
            unmatched: ValidationMetrics::new(NO_TENANT),
            cache: TokenCache::new(&config.cache),
        };
        registry.reindex_issuers();
        (registry, fresh)
    }

    /// How many verdicts the token cache holds (0 when it is off).
    pub fn cache_len(&self) -> usize {
        self.cache.as_ref().map_or(0, TokenCache::len)
    }

    /// Most tokens in one batch call.
    pub fn max_batch_size(&self) -> usize {
        self.max_batch_size
    }

    /// Tenants in configuration order.
    pub fn tenants(&self) -> &[Arc<Tenant>] {
        &self.order
    }

    /// The tenant with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<Tenant>> {
        self.tenants.get(id)
    }

    /// Whether every tenant has keys.
    pub fn all_ready(&self) -> bool {
        self.order.iter().all(|tenant| tenant.has_keys())
    }

    /// Rebuilds the issuer index (after discovery named a tenant's issuer).
    pub fn reindex_issuers(&self) {
        let _serialised = self
            .reindexing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let built_from: Vec<(bool, Vec<String>)> = self
            .order
            .iter()
            .map(|tenant| {
                let issuers = tenant.issuers();
                let issuers = issuers.iter().map(|issuer| issuer.as_str().to_owned());
                (tenant.has_keys(), issuers.collect())
            })
            .collect();
        if !self.order.is_empty() && self.by_issuer.load().built_from == built_from {
            return;
        }
        let mut index = IssuerIndex {
            built_from,
            ..IssuerIndex::default()
        };
        for tenant in &self.order {
            for issuer in tenant.issuers() {
                if issuer.is_template() {
                    index.templates.push((issuer, tenant.clone()));
                } else {
                    let tenants = index.exact.entry(issuer.as_str().to_owned()).or_default();
                    if !tenants.iter().any(|known| Arc::ptr_eq(known, tenant)) {
                        tenants.push(tenant.clone());
                    }
                }
            }
        }
        self.by_issuer.store(Arc::new(index));
    }

    /// Validates one token. `tenant` may be empty to choose the tenant by the token's `iss`.
    pub fn validate(&self, token: &str, tenant: &str, now: i64) -> Verdict {
        let started = std::time::Instant::now();
        let (verdict, judged_by) = self.evaluate(token, tenant, now);
        self.record(judged_by.as_ref(), &verdict, started.elapsed());
        verdict
    }

    /// Judges one token without recording metrics; returns the verdict and the tenant that
    /// judged it. Callers that may judge a token twice (after a key refetch) record once.
    /// A valid verdict still cached (see [`crate::cache`]) is returned without verifying again.
    pub fn evaluate(&self, token: &str, tenant: &str, now: i64) -> (Verdict, Option<Arc<Tenant>>) {
        let Some(cache) = &self.cache else {
            let mut verdict = Verdict::default();
            let judged = self.judge(token, tenant, now, &mut verdict);
            return (verdict, judged.map(|judged| judged.tenant));
        };
        let key = cache::key(tenant, token);
        let index = self.by_issuer.load();
        let routing = &index.generation;
        if let Some(entry) = cache.lookup(&key, now, |entry| still_holds(entry, routing, now)) {
            return (cached_verdict(&entry), Some(entry.tenant.clone()));
        }
        let mut verdict = Verdict::default();
        let judged = self.judge(token, tenant, now, &mut verdict);
        let judged_by = judged.map(|judged| {
            if let Some((keys, times)) = judged.valid.filter(|_| verdict.valid) {
                let routed = tenant.is_empty().then(|| Arc::downgrade(routing));
                cache.insert(
                    key,
                    cache_entry(&judged.tenant, &keys, routed, times, &verdict),
                    now,
                );
            }
            judged.tenant
        });
        (verdict, judged_by)
    }

    /// Counts a final verdict in the metrics of the tenant that judged it.
    pub fn record(
        &self,
        judged_by: Option<&Arc<Tenant>>,
        verdict: &Verdict,
        elapsed: std::time::Duration,
    ) {
        let metrics = judged_by.map_or(&self.unmatched, |tenant| &tenant.validations);
        metrics.record(verdict.reason, elapsed);
        if let Some(reason) = verdict.reason {
            // Reason and tenant only: never the token or its claims.
            tracing::debug!(tenant = %verdict.tenant, reason = reason.code(), hint = verdict.hint_code, "token rejected");
        }
    }

    /// Updates each remote tenant's "seconds until its keys go stale" gauge (before a scrape).
    pub fn update_staleness(&self, now: i64) {
        for tenant in &self.order {
            if !tenant.is_remote() {
                continue;
            }
            let max_stale =
                i64::try_from(tenant.spec.refresh.max_stale.as_secs()).unwrap_or(i64::MAX);
            let left = tenant.active().map_or(0, |active| {
                max_stale
                    .saturating_sub(now.saturating_sub(active.loaded_at))
                    .max(0)
            });
            tenant.key_metrics.seconds_until_stale(left);
        }
        if let Some(cache) = &self.cache {
            cache.update_gauges();
        }
    }

    /// Fills `verdict`; returns the tenant that judged the token, if one was chosen.
    fn judge(
        &self,
        token: &str,
        tenant: &str,
        now: i64,
        verdict: &mut Verdict,
    ) -> Option<Judgement> {
        let decoded = match DecodedToken::decode(token, &self.limits) {
            Ok(decoded) => decoded,
            Err(rejection) => {
                verdict.reject(rejection);
                return None;
            }
        };
        let parsed = match decoded.parse() {
            Ok(parsed) => parsed,
            Err(rejection) => {
                verdict.reject(rejection);
                return None;
            }
        };
        describe(&parsed, verdict);
        let chosen = match self.choose(tenant, &parsed) {
            Ok(chosen) => chosen,
            Err(rejection) => {
                verdict.reject(rejection);
                return None;
            }
        };
        verdict.tenant = chosen.id().to_owned();
        let Some(active) = chosen.active.load_full() else {
            // Tokens that no tenant could accept get that answer, keys or no keys.
            let rejection = match verify::precheck(&parsed.header) {
                Err(rejection) => rejection,
                Ok(_) => Rejection::new(Reason::KeysUnavailable, chosen.unavailable_detail()),
            };
            verdict.reject(rejection);
            return Judgement::by(chosen);
        };
        if let Some(rejection) = chosen.stale(&active, now) {
            verdict.reject(rejection);
            return Judgement::by(chosen);
        }
        match verify::verify(&parsed, &active.keys, &active.policy, now) {
            Ok(verified) => {
                verdict.valid = true;
                if let Some(sub) = &parsed.claims.sub {
                    verdict.subject = sub.to_string();
                }
                if let Some(kid) = verified.key.kid() {
                    verdict.key_id = kid.to_owned();
                }
                verdict.claims_json = Bytes::copy_from_slice(decoded.payload());
                let times = TokenTimes::of(&parsed.claims);
                return Some(Judgement {
                    tenant: chosen,
                    valid: Some((active, times)),
                });
            }
            Err(rejection) => verdict.reject(rejection),
        }
        Judgement::by(chosen)
    }

    fn choose(&self, requested: &str, token: &ParsedToken<'_>) -> Result<Arc<Tenant>, Rejection> {
        if !requested.is_empty() {
            return self.tenants.get(requested).cloned().ok_or_else(|| {
                Rejection::new(
                    Reason::UnknownTenant,
                    format!("no tenant has the id {}", quote(requested)),
                )
            });
        }
        let Some(iss) = token.claims.iss.as_deref() else {
            return Err(Rejection::fixed(
                Reason::UnknownTenant,
                "the token has no \"iss\" claim, so no tenant can be chosen; pass the tenant id in the request",
            ));
        };
        let index = self.by_issuer.load();
        let tid = token.claims.string("tid");
        let candidates = index.candidates(iss, tid.as_deref());
        match candidates.as_ref() {
            [] if self.order.iter().any(|tenant| tenant.awaits_discovery()) => {
                // The token may belong to a tenant whose issuer is not known yet.
                let waiting: Vec<&str> = self
                    .order
                    .iter()
                    .filter(|tenant| tenant.awaits_discovery())
                    .map(|tenant| tenant.id())
                    .collect();
                Err(Rejection::new(
                    Reason::KeysUnavailable,
                    format!(
                        "no loaded tenant accepts the issuer {}, and tenants {} have not loaded their discovery documents yet (which name their issuers); retry shortly, or pass the tenant id",
                        quote(iss),
                        waiting.join(", ")
                    ),
                ))
            }
            [] => {
                let version = token.claims.string("ver");
                // Only the v1 hint here: the others would quote another tenant's issuer.
                let hint = hints::issuer_mismatch(
                    iss,
                    tid.as_deref(),
                    version.as_deref(),
                    &index.patterns(),
                )
                .filter(|(hint, _)| *hint == hints::Hint::EntraV1Token);
                Err(Rejection::new(
                    Reason::UnknownTenant,
                    format!(
                        "no tenant accepts the issuer {}; check the token's issuer or pass the tenant id",
                        quote(iss)
                    ),
                )
                .with_hint(hint))
            }
            [only] => Ok(only.clone()),
            several => {
                // Several tenants share the issuer (one identity provider, several APIs): the
                // audience and the tenant-id allow-list decide, and must decide uniquely.
                let matching: Vec<&Arc<Tenant>> = several
                    .iter()
                    .filter(|tenant| {
                        tenant.active().is_some_and(|active| {
                            let audience = active
                                .policy
                                .audiences
                                .iter()
                                .any(|audience| token.claims.aud.contains(audience));
                            let tenant_ids = &active.policy.tenant_ids;
                            let tenant_allowed = tenant_ids.is_empty()
                                || tid.as_deref().is_some_and(|tid| {
                                    tenant_ids
                                        .iter()
                                        .any(|allowed| allowed.eq_ignore_ascii_case(tid))
                                });
                            audience && tenant_allowed
                        })
                    })
                    .collect();
                match matching.as_slice() {
                    [only] => Ok((*only).clone()),
                    _ => Err(Rejection::new(
                        Reason::UnknownTenant,
                        format!(
                            "{} tenants accept the issuer {} and the token's audience does not single one out; pass the tenant id",
                            several.len(),
                            quote(iss)
                        ),
                    )),
                }
            }
        }
    }
}

/// Copies what can be told about a token before it is verified into the verdict.
fn describe(token: &ParsedToken<'_>, verdict: &mut Verdict) {
    verdict.algorithm = token.header.alg.to_string();
    if let Some(kid) = &token.header.kid {
        verdict.key_id = kid.to_string();
    }
    if let Some(iss) = &token.claims.iss {
        verdict.issuer = iss.to_string();
    }
    if let Some(exp) = token.claims.exp {
        verdict.expires_at = exp as i64;
    }
}

/// Whether a cached verdict is still the one the core would give now: the tenant verifies
/// with the same keys and policy, they are not stale, the routing by issuer is unchanged, and
/// the token's times still pass.
fn still_holds(entry: &cache::Entry, routing: &Arc<()>, now: i64) -> bool {
    let same_routing = entry
        .routing
        .as_ref()
        .is_none_or(|cached| std::ptr::eq(cached.as_ptr(), Arc::as_ptr(routing)));
    // One load of the tenant's keys: the identity check and the checks after it see the same set.
    let active = entry.tenant.active.load();
    let Some(active) = active
        .as_ref()
        .filter(|active| std::ptr::eq(Arc::as_ptr(active), entry.keys.as_ptr()))
    else {
        return false;
    };
    same_routing
        && entry.tenant.stale(active, now).is_none()
        && active.policy.check_times(entry.times, now).is_ok()
}

/// What the cache keeps of a valid verdict.
fn cache_entry(
    tenant: &Arc<Tenant>,
    keys: &Arc<ActiveKeys>,
    routing: Option<std::sync::Weak<()>>,
    times: TokenTimes,
    verdict: &Verdict,
) -> cache::Entry {
    cache::Entry {
        tenant: tenant.clone(),
        keys: Arc::downgrade(keys),
        routing,
        times,
        until: 0,
        subject: verdict.subject.as_str().into(),
        issuer: verdict.issuer.as_str().into(),
        key_id: verdict.key_id.as_str().into(),
        algorithm: verdict.algorithm.as_str().into(),
        expires_at: verdict.expires_at,
        claims_json: verdict.claims_json.clone(),
    }
}

/// The verdict a cache entry stands for: field for field what [`Registry::judge`] gave.
fn cached_verdict(entry: &cache::Entry) -> Verdict {
    Verdict {
        valid: true,
        tenant: entry.tenant.id().to_owned(),
        issuer: entry.issuer.to_string(),
        subject: entry.subject.to_string(),
        expires_at: entry.expires_at,
        key_id: entry.key_id.to_string(),
        algorithm: entry.algorithm.to_string(),
        claims_json: entry.claims_json.clone(),
        ..Verdict::default()
    }
}
