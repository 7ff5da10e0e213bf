//! The one validation use-case: judge this token, for this tenant (or by its issuer), now.
//!
//! Every front end calls [`Validator`]: the gRPC unary, batch and stream calls, Envoy ext_authz,
//! forward-auth and the CLI. It decodes the token, chooses the tenant, verifies with the
//! tenant's current keys, diagnoses a rejection, refetches once on an unknown `kid`, records
//! the metrics once, and returns a typed [`Judgement`]. A valid verdict still in the
//! [`cache`] is returned without verifying again.
//!
//! May import: the core, `config`, `keys`, `tenants`, `diagnose`, `ops::metrics`. Never a
//! transport.

pub(crate) mod cache;
pub(crate) mod judgement;
pub(crate) mod verdict;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use tokengate_core::Reason;
use tokengate_core::policy::TokenTimes;
use tokengate_core::token::{DecodedToken, Limits, ParsedToken};
use tokengate_core::verify;
use tokio::time::Instant;

use crate::clock;
use crate::config::Config;
use crate::diagnose;
use crate::keys::slot::{ActiveKeys, KeySlot};
use crate::ops::metrics::{NO_TENANT, ValidationMetrics};
use crate::tenants::registry::Registry;
use crate::tenants::routing::{self, Route};
use crate::tenants::tenant::Tenant;
use crate::validator::cache::TokenCache;
use crate::validator::judgement::{Accepted, Judgement, TokenFacts};

/// Batches up to this size are judged on the calling task; larger ones are spread over the
/// blocking pool, one slice per core, so that a batch uses every core and never holds an async
/// worker for long.
const INLINE_BATCH_LIMIT: usize = 16;

/// Most signatures checked for one token whose issuer several tenants share: the cost of a
/// forged token stays bounded however many tenants share an issuer.
const MAX_SHARED_SIGNATURE_CHECKS: usize = 4;

/// One token of a batch: what to judge, whatever the transport's message.
pub trait TokenRequest: Send + Sync + 'static {
    /// The token (a `Bearer ` prefix is accepted).
    fn token(&self) -> &str;
    /// The tenant id asked for; empty to choose by the token's issuer.
    fn tenant(&self) -> &str;
}

/// A batch whose work could not be finished (a worker thread failed).
#[derive(Debug, thiserror::Error)]
#[error("the batch could not be validated: {0}")]
pub struct BatchFailed(#[from] tokio::task::JoinError);

/// Judges tokens against one configuration's tenants.
#[derive(Debug)]
pub struct Validator {
    registry: Arc<Registry>,
    cache: Option<TokenCache>,
    limits: Limits,
    max_batch_size: usize,
    unmatched: ValidationMetrics,
    /// Until this time (seconds since the epoch) the server is within its start-up grace.
    grace_until: i64,
}

/// What a valid verdict rests on, for the cache.
struct Basis {
    keys: Arc<ActiveKeys>,
    times: TokenTimes,
}

impl Validator {
    /// A validator over `registry`, with the limits and cache of `config`.
    pub fn new(config: &Config, registry: Arc<Registry>) -> Self {
        Self {
            registry,
            cache: TokenCache::new(&config.cache),
            limits: Limits {
                max_token_size: config.max_token_size,
            },
            max_batch_size: config.max_batch_size,
            unmatched: ValidationMetrics::new(NO_TENANT),
            grace_until: i64::MIN,
        }
    }

    /// The same validator, within the server's start-up grace until `until` (seconds since the
    /// epoch): only then may a token whose issuer no loaded tenant accepts be "unavailable".
    pub(crate) fn with_startup_grace_until(mut self, until: i64) -> Self {
        self.grace_until = until;
        self
    }

    /// A validator with a registry of its own, built for `config` at `now` (static keys are
    /// active at once; remote ones need `keys::refresh`).
    pub fn for_config(config: &Config, now: i64) -> Self {
        Self::new(config, Arc::new(Registry::new(config, now)))
    }

    /// The tenants.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Most tokens in one batch call.
    pub fn max_batch_size(&self) -> usize {
        self.max_batch_size
    }

    /// How many verdicts the token cache holds (0 when it is off).
    pub fn cache_len(&self) -> usize {
        self.cache.as_ref().map_or(0, TokenCache::len)
    }

    /// Updates the gauges of keys and cache (before a scrape).
    pub fn update_gauges(&self, now: i64) {
        self.registry.update_staleness(now);
        if let Some(cache) = &self.cache {
            cache.update_gauges();
        }
    }

    /// Judges one token now. A `kid` the tenant does not know triggers one (rate-limited,
    /// shared) refetch of its keys and a brief wait, then a second look. Records metrics once.
    pub async fn judge(&self, token: &str, tenant: &str) -> Judgement {
        self.judge_within(token, tenant, None).await
    }

    /// Like [`Validator::judge`], for a caller that waits `budget` at most (its gRPC deadline):
    /// an unknown-`kid` wait ends in time for the answer (`UNKNOWN_KEY`) to reach it, so the
    /// caller never times out and falls back to its failure policy.
    pub async fn judge_within(
        &self,
        token: &str,
        tenant: &str,
        budget: Option<std::time::Duration>,
    ) -> Judgement {
        let started = Instant::now();
        let mut judgement = self.evaluate(token, tenant, clock::now());
        if let Some(slot) = judgement.key_refetch()
            && slot.refetch_for_unknown_kid(budget.map(wait_within)).await
        {
            judgement = self.evaluate(token, tenant, clock::now());
        }
        self.record(&judgement, started.elapsed());
        judgement
    }

    /// Judges one token at `now`, with the keys loaded so far (no refetch). Records metrics.
    pub fn judge_at(&self, token: &str, tenant: &str, now: i64) -> Judgement {
        let started = Instant::now();
        let judgement = self.evaluate(token, tenant, now);
        self.record(&judgement, started.elapsed());
        judgement
    }

    /// Judges a batch, in order, on every core; each tenant whose keys miss a `kid` is
    /// refetched once, and its tokens judged again. Records metrics once per token.
    pub async fn judge_many<R: TokenRequest>(
        self: &Arc<Self>,
        requests: &Arc<Vec<R>>,
        budget: Option<std::time::Duration>,
    ) -> Result<Vec<Judgement>, BatchFailed> {
        let started = Instant::now();
        let mut judged = if requests.len() <= INLINE_BATCH_LIMIT {
            self.evaluate_all(requests)
        } else {
            self.evaluate_spread(requests).await?
        };
        let budget = budget.map(|budget| wait_within(budget.saturating_sub(started.elapsed())));
        self.refetch_unknown_kids(requests, &mut judged, budget)
            .await;
        let elapsed = started.elapsed() / u32::try_from(judged.len().max(1)).unwrap_or(1);
        for judgement in &judged {
            self.record(judgement, elapsed);
        }
        Ok(judged)
    }

    fn evaluate_all<R: TokenRequest>(&self, requests: &[R]) -> Vec<Judgement> {
        let now = clock::now();
        requests
            .iter()
            .map(|request| self.evaluate(request.token(), request.tenant(), now))
            .collect()
    }

    /// Judges a large batch on the blocking pool, one contiguous slice per core, in order.
    async fn evaluate_spread<R: TokenRequest>(
        self: &Arc<Self>,
        requests: &Arc<Vec<R>>,
    ) -> Result<Vec<Judgement>, BatchFailed> {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let slice = requests.len().div_ceil(cores).max(INLINE_BATCH_LIMIT);
        let mut slices = Vec::new();
        for start in (0..requests.len()).step_by(slice) {
            let end = (start + slice).min(requests.len());
            let (validator, requests) = (self.clone(), requests.clone());
            slices.push(tokio::task::spawn_blocking(move || {
                validator.evaluate_all(&requests[start..end])
            }));
        }
        let mut judged = Vec::with_capacity(requests.len());
        for slice in slices {
            judged.extend(slice.await?);
        }
        Ok(judged)
    }

    /// Unknown kids in a batch: one refetch per tenant (concurrently), then those tokens again.
    async fn refetch_unknown_kids<R: TokenRequest>(
        &self,
        requests: &[R],
        judged: &mut [Judgement],
        budget: Option<std::time::Duration>,
    ) {
        let mut asked: Vec<Arc<KeySlot>> = Vec::new();
        for slot in judged.iter().filter_map(Judgement::key_refetch) {
            if !asked.iter().any(|known| Arc::ptr_eq(known, slot)) {
                asked.push(slot.clone());
            }
        }
        let mut refetches = tokio::task::JoinSet::new();
        for slot in asked {
            refetches.spawn(async move { (slot.refetch_for_unknown_kid(budget).await, slot) });
        }
        let mut refreshed: Vec<Arc<KeySlot>> = Vec::new();
        while let Some(outcome) = refetches.join_next().await {
            if let Ok((true, slot)) = outcome {
                refreshed.push(slot);
            }
        }
        for (judgement, request) in judged.iter_mut().zip(requests) {
            let retry = judgement
                .key_refetch()
                .is_some_and(|slot| refreshed.iter().any(|done| Arc::ptr_eq(done, slot)));
            if retry {
                *judgement = self.evaluate(request.token(), request.tenant(), clock::now());
            }
        }
    }

    /// Counts a final judgement in the metrics of the tenant that judged it.
    fn record(&self, judgement: &Judgement, elapsed: std::time::Duration) {
        let metrics = judgement
            .tenant()
            .map_or(&self.unmatched, |tenant| tenant.validations());
        metrics.record(judgement.reason(), elapsed);
        if let Judgement::Rejected(refused) = judgement {
            // Reason and tenant only: never the token or its claims.
            tracing::debug!(
                tenant = refused.tenant_id(),
                reason = refused.rejection.reason.code(),
                hint = refused.hint_code(),
                "token rejected"
            );
        }
    }

    /// Judges one token without recording metrics: from the cache when a valid verdict there
    /// still holds, else by verifying (and caching a valid verdict).
    fn evaluate(&self, token: &str, tenant: &str, now: i64) -> Judgement {
        let Some(cache) = &self.cache else {
            return self.verify(token, tenant, now).0;
        };
        let key = cache::key(tenant, token);
        let index = self.registry.routing();
        let routing = index.generation();
        if let Some(entry) = cache.lookup(&key, now, |entry| entry.still_holds(routing, now)) {
            return Judgement::Valid(entry.accepted.clone());
        }
        let (judgement, basis) = self.verify(token, tenant, now);
        if let (Judgement::Valid(accepted), Some(basis)) = (&judgement, basis) {
            let routed = tenant.is_empty().then(|| Arc::downgrade(routing));
            let entry = cache::Entry::new(accepted.clone(), &basis.keys, routed, basis.times);
            cache.insert(key, entry, now);
        }
        judgement
    }

    /// Decodes the token, chooses the tenant and verifies it with the tenant's keys.
    fn verify(&self, token: &str, tenant: &str, now: i64) -> (Judgement, Option<Basis>) {
        let decoded = match DecodedToken::decode(token, &self.limits) {
            Ok(decoded) => decoded,
            Err(rejection) => {
                return (
                    Judgement::rejected(None, rejection, None, TokenFacts::default()),
                    None,
                );
            }
        };
        let parsed = match decoded.parse() {
            Ok(parsed) => parsed,
            Err(rejection) => {
                return (
                    Judgement::rejected(None, rejection, None, TokenFacts::default()),
                    None,
                );
            }
        };
        let chosen = match routing::choose(&self.registry, tenant, &parsed, now < self.grace_until)
        {
            Ok(Route::One(chosen)) => chosen,
            Ok(Route::Shared(candidates)) => match by_signature(&candidates, &parsed) {
                Ok(chosen) => chosen,
                Err(rejection) => {
                    let facts = TokenFacts::of(&parsed);
                    return (Judgement::rejected(None, rejection, None, facts), None);
                }
            },
            Err(unrouted) if unrouted.rejection.reason == Reason::KeysUnavailable => {
                // Tokens that no tenant could accept get that answer, never "unavailable".
                let rejection = verify::precheck(&parsed.header)
                    .err()
                    .unwrap_or(unrouted.rejection);
                return (
                    Judgement::rejected(None, rejection, None, TokenFacts::of(&parsed)),
                    None,
                );
            }
            Err(unrouted) => {
                let diagnosis = unrouted
                    .no_issuer_match
                    .then(|| diagnose::unrouted(&parsed, &self.registry.routing().patterns()))
                    .flatten();
                let facts = TokenFacts::of(&parsed);
                return (
                    Judgement::rejected(None, unrouted.rejection, diagnosis, facts),
                    None,
                );
            }
        };
        let Some(active) = chosen.active() else {
            // Tokens that no tenant could accept get that answer, keys or no keys.
            let rejection = verify::precheck(&parsed.header)
                .err()
                .unwrap_or_else(|| chosen.keys().unavailable());
            return (
                Judgement::rejected(Some(chosen), rejection, None, TokenFacts::of(&parsed)),
                None,
            );
        };
        if let Some(rejection) = chosen.keys().stale(&active, now) {
            return (
                Judgement::rejected(Some(chosen), rejection, None, TokenFacts::of(&parsed)),
                None,
            );
        }
        match verify::verify(&parsed, &active.keys, &active.policy, now) {
            Ok(verified) => {
                let key_id = verified.key.kid().or(parsed.header.kid.as_deref());
                let accepted = accepted(
                    chosen,
                    &parsed,
                    key_id,
                    verified.algorithm,
                    decoded.payload(),
                );
                let times = TokenTimes::of(&parsed.claims);
                (
                    Judgement::Valid(Arc::new(accepted)),
                    Some(Basis {
                        keys: active,
                        times,
                    }),
                )
            }
            Err(rejection) => {
                let diagnosis = diagnose::rejected(&rejection, &parsed, &active.policy);
                let facts = TokenFacts::of(&parsed);
                (
                    Judgement::rejected(Some(chosen), rejection, diagnosis, facts),
                    None,
                )
            }
        }
    }
}

/// Several tenants share the token's issuer: the signature decides first. Of the first
/// [`MAX_SHARED_SIGNATURE_CHECKS`] candidates whose keys know the token's key, the one whose keys
/// verify its signature judges it; several are told apart by audience and tenant id. When none verifies it, the
/// first candidate with keys judges it (and refuses its signature), so that a token nobody
/// signed gets the same answer whichever `aud` and `tid` it names.
fn by_signature(
    candidates: &[Arc<Tenant>],
    token: &ParsedToken<'_>,
) -> Result<Arc<Tenant>, tokengate_core::Rejection> {
    let mut signed = Vec::new();
    let mut checks = 0;
    for tenant in candidates {
        let Some(active) = tenant.active() else {
            continue;
        };
        let knows_key = token
            .header
            .kid
            .as_deref()
            .is_none_or(|kid| active.keys.get(kid).is_some());
        if !knows_key || checks == MAX_SHARED_SIGNATURE_CHECKS {
            continue;
        }
        checks += 1;
        let header = &token.header;
        let (input, signature) = (token.signing_input, token.signature);
        if verify::verify_jws(header, input, signature, &active.keys, &active.policy).is_ok() {
            signed.push(tenant.clone());
        }
    }
    if signed.is_empty() {
        let judge = candidates.iter().find(|tenant| tenant.has_keys());
        return judge.or(candidates.first()).cloned().ok_or_else(|| {
            tokengate_core::Rejection::fixed(Reason::UnknownTenant, "no tenant accepts the issuer")
        });
    }
    match signed.as_slice() {
        // One signer: its policy judges the rest (a wrong audience is its refusal).
        [only] => Ok(only.clone()),
        several => routing::single_out_signed(several, token),
    }
}

/// How long a key refetch may wait within a caller's `budget`: most of it, leaving the rest for
/// the second look and the answer's way back.
fn wait_within(budget: std::time::Duration) -> std::time::Duration {
    budget.mul_f64(0.8)
}

/// What a verified token established.
fn accepted(
    tenant: Arc<Tenant>,
    token: &ParsedToken<'_>,
    key_id: Option<&str>,
    algorithm: tokengate_core::algorithm::Algorithm,
    payload: &[u8],
) -> Accepted {
    Accepted {
        tenant,
        issuer: token.claims.iss.as_deref().map(Into::into),
        subject: token.claims.sub.as_deref().map(Into::into),
        key_id: key_id.map(Into::into),
        algorithm,
        expires_at: token.claims.exp.map(|exp| exp as i64),
        claims_json: Bytes::copy_from_slice(payload),
        claims: OnceLock::new(),
    }
}
