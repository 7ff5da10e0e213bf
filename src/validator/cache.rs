//! The verified-token cache: valid verdicts, keyed by a SHA-256 digest of the tenant asked for
//! and the token bytes, so a gateway that sends the same token on every request of a signed-in
//! user pays for its signature once.
//!
//! An entry is only ever a shortcut to the verdict the core would give now:
//! - it remembers the exact key set and policy it was verified with (the tenant's
//!   [`ActiveKeys`]) and, for tokens routed by issuer, the issuer index; a reload, refresh or
//!   rotation replaces those, and the entry no longer matches;
//! - `exp`, `nbf`, `iat` and `max_lifetime` are checked again on every hit, and so is the age of
//!   the tenant's keys (`max_stale`);
//! - it lives until the earlier of the token's `exp` and `max_ttl`;
//! - only valid verdicts are cached, so a key that appears is seen at once.
//!
//! Entries are bounded by count and by bytes (one weight covers both), sharded so that
//! concurrent hits do not serialise ([`quick_cache`], chosen by measurement: see
//! `PERFORMANCE.md`).

use std::sync::{Arc, Weak};

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, Weighter};
use tokengate_core::policy::TokenTimes;

use crate::config::CacheSettings;
use crate::keys::slot::ActiveKeys;
use crate::validator::judgement::Accepted;

/// The cache key: SHA-256 over the requested tenant id (length-prefixed) and the token.
pub(crate) type CacheKey = [u8; 32];

/// The key for one request.
pub(crate) fn key(tenant: &str, token: &str) -> CacheKey {
    tokengate_core::crypto::sha256(&[
        &(tenant.len() as u64).to_le_bytes(),
        tenant.as_bytes(),
        token.as_bytes(),
    ])
}

/// A valid verdict and what it was established with.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The verdict, shared with every answer built from it.
    pub accepted: Arc<Accepted>,
    /// The key set and policy the signature and claims were checked with.
    keys: Weak<ActiveKeys>,
    /// For a token routed by its issuer: the issuer index that chose the tenant.
    routing: Option<Weak<()>>,
    /// The token's time claims, checked again on every hit.
    times: TokenTimes,
    /// The entry is not used at or after this time (seconds since the epoch).
    until: i64,
}

impl Entry {
    /// The entry for a verdict reached with `keys` (and, when routed by issuer, `routing`).
    pub(crate) fn new(
        accepted: Arc<Accepted>,
        keys: &Arc<ActiveKeys>,
        routing: Option<Weak<()>>,
        times: TokenTimes,
    ) -> Self {
        Self {
            accepted,
            keys: Arc::downgrade(keys),
            routing,
            times,
            until: 0,
        }
    }

    /// Whether the verdict is still the one the core would give now: the tenant verifies with
    /// the same keys and policy, they are not stale, the routing by issuer is unchanged, and
    /// the token's times still pass.
    pub(crate) fn still_holds(&self, routing: &Arc<()>, now: i64) -> bool {
        let same_routing = self
            .routing
            .as_ref()
            .is_none_or(|cached| std::ptr::eq(cached.as_ptr(), Arc::as_ptr(routing)));
        let slot = self.accepted.tenant.keys();
        // One load of the tenant's keys: the identity check and the checks after it see the
        // same set.
        let current = slot.current();
        let Some(active) = current
            .as_ref()
            .filter(|active| std::ptr::eq(Arc::as_ptr(active), self.keys.as_ptr()))
        else {
            return false;
        };
        same_routing
            && slot.stale(active, now).is_none()
            && active.policy.check_times(self.times, now).is_ok()
    }

    /// An estimate of the memory the entry holds, for the byte bound.
    fn weight(&self) -> u64 {
        const OVERHEAD: usize = std::mem::size_of::<Entry>()
            + std::mem::size_of::<Accepted>()
            + std::mem::size_of::<CacheKey>()
            // two Arc headers, and the cache's own slot
            + 3 * std::mem::size_of::<usize>()
            + 32;
        let accepted = &self.accepted;
        let text = |value: &Option<Box<str>>| value.as_ref().map_or(0, |value| value.len());
        (OVERHEAD
            + text(&accepted.subject)
            + text(&accepted.issuer)
            + text(&accepted.key_id)
            + accepted.claims_json.len()) as u64
    }
}

/// Weighs an entry so that one weight bounds both bytes and count: each entry weighs at least
/// `max_bytes / max_entries`, so no more than `max_entries` fit.
#[derive(Clone, Copy, Debug)]
struct Weight {
    least: u64,
}

impl Weighter<CacheKey, Arc<Entry>> for Weight {
    fn weight(&self, _key: &CacheKey, entry: &Arc<Entry>) -> u64 {
        entry.weight().max(self.least)
    }
}

/// Counts capacity evictions (not invalidations, which are removals).
#[derive(Clone, Debug)]
struct CountEvictions {
    evictions: metrics::Counter,
}

impl Lifecycle<CacheKey, Arc<Entry>> for CountEvictions {
    type RequestState = ();

    fn on_evict(&self, _state: &mut Self::RequestState, _key: CacheKey, _entry: Arc<Entry>) {
        self.evictions.increment(1);
    }
}

/// Least weight one shard holds: each shard is bounded by its share of `max_bytes`, and an
/// entry heavier than a shard's share is never admitted, so a shard must hold several of the
/// largest tokens (16 KiB by default).
const MIN_SHARD_BYTES: u64 = 256 << 10;

/// More shards than quick_cache's default (4 per core), so that hits from all cores rarely meet
/// on one shard's lock (benches/cache.rs), but never so many that a shard's share of
/// `max_bytes` is under [`MIN_SHARD_BYTES`].
fn shard_count(max_bytes: u64) -> usize {
    let wanted = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .saturating_mul(16)
        .max(64);
    let affordable = usize::try_from(max_bytes / MIN_SHARD_BYTES).unwrap_or(usize::MAX);
    // A power of two (quick_cache picks a shard by the hash's low bits), rounded down.
    let shards = wanted.min(affordable).max(1);
    1 << shards.ilog2()
}

/// The bounded, sharded cache of valid verdicts.
pub(crate) struct TokenCache {
    entries: Cache<CacheKey, Arc<Entry>, Weight, DefaultHashBuilder, CountEvictions>,
    max_ttl: i64,
    hits: metrics::Counter,
    misses: metrics::Counter,
    size: metrics::Gauge,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.entries.len())
            .field("max_ttl", &self.max_ttl)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache for these settings, or none when it is disabled.
    pub(crate) fn new(settings: &CacheSettings) -> Option<Self> {
        if !settings.enabled || settings.max_entries == 0 {
            return None;
        }
        let max_entries = settings.max_entries as u64;
        let weight = Weight {
            least: (settings.max_bytes / max_entries).max(1),
        };
        let lifecycle = CountEvictions {
            evictions: metrics::counter!("tokengate_cache_evictions_total"),
        };
        let shards = shard_count(settings.max_bytes);
        let options = quick_cache::OptionsBuilder::new()
            .estimated_items_capacity(settings.max_entries)
            .weight_capacity(settings.max_bytes)
            .shards(shards)
            .build()
            .inspect_err(|error| tracing::warn!(%error, "the token cache is off"))
            .ok()?;
        Some(Self {
            entries: Cache::with_options(options, weight, DefaultHashBuilder::default(), lifecycle),
            max_ttl: i64::try_from(settings.max_ttl.as_secs()).unwrap_or(i64::MAX),
            hits: metrics::counter!("tokengate_cache_requests_total", "result" => "hit"),
            misses: metrics::counter!("tokengate_cache_requests_total", "result" => "miss"),
            size: metrics::gauge!("tokengate_cache_entries"),
        })
    }

    /// The entry for `key` if `holds` says it is still good and it is not past its time; an
    /// entry that no longer holds is removed. Counts a hit or a miss.
    pub(crate) fn lookup(
        &self,
        key: &CacheKey,
        now: i64,
        holds: impl FnOnce(&Entry) -> bool,
    ) -> Option<Arc<Entry>> {
        let Some(entry) = self.entries.get(key) else {
            self.misses.increment(1);
            return None;
        };
        if now < entry.until && holds(&entry) {
            self.hits.increment(1);
            return Some(entry);
        }
        self.misses.increment(1);
        self.entries.remove(key);
        None
    }

    /// Remembers a valid verdict until the earlier of `exp` and `max_ttl` from now.
    pub(crate) fn insert(&self, key: CacheKey, mut entry: Entry, now: i64) {
        let ttl_end = now.saturating_add(self.max_ttl);
        entry.until = match entry.times.exp {
            // exp is a float NumericDate; the time check on each hit is exact, this only bounds
            // how long the entry is kept.
            Some(exp) if exp.is_finite() => ttl_end.min(exp.ceil() as i64),
            _ => ttl_end,
        };
        if entry.until > now {
            self.entries.insert(key, Arc::new(entry));
        }
    }

    /// Sets the entries gauge (before a scrape).
    pub(crate) fn update_gauges(&self) {
        self.size.set(self.entries.len() as f64);
    }

    /// How many entries are held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_caches_get_few_shards_so_that_large_tokens_fit() {
        assert_eq!(shard_count(64 << 10), 1);
        assert_eq!(shard_count(1 << 20), 4);
        assert!(shard_count(64 << 20) >= 64);
        for max_bytes in [64 << 10, 1 << 20, 10 << 20, 64 << 20, 1 << 30] {
            let shards = shard_count(max_bytes) as u64;
            assert!(
                shards == 1 || max_bytes / shards >= MIN_SHARD_BYTES,
                "{max_bytes}"
            );
        }
    }
}
