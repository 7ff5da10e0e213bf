//! One tenant's live keys: the set it verifies with now, why the last load failed, the key
//! metrics, and the coordination with its refresh task.
//!
//! The refresh task (or the CLI's one-off load) is the only writer; requests read a snapshot
//! without locks. The slot knows nothing of tenants, routing or verdicts, which is what keeps the
//! refresh task from depending on the tenant that owns it.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwapOption, Guard};
use tokengate_core::issuer::IssuerPattern;
use tokengate_core::keyset::KeySet;
use tokengate_core::policy::Policy;
use tokengate_core::{Reason, Rejection};

use crate::clock;
use crate::config::{KeySource, TenantSpec};
use crate::keys::fetch::check_discovered_issuer;
use crate::keys::refetch::RefreshState;
use crate::ops::metrics::KeyMetrics;

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

/// Why loading keys fails, since when: for logs and the admin view, never for a per-token
/// detail (which says only since when).
#[derive(Debug)]
pub struct Failure {
    /// The last error, naming the step that failed.
    pub error: String,
    /// When loads started failing (seconds since the epoch); a success ends the run.
    pub since: i64,
    /// When the last failure happened.
    pub last_at: i64,
}

/// A tenant's current keys and their bookkeeping.
#[derive(Debug)]
pub struct KeySlot {
    spec: Arc<TenantSpec>,
    active: ArcSwapOption<ActiveKeys>,
    failure: ArcSwapOption<Failure>,
    metrics: KeyMetrics,
    refresh: Arc<RefreshState>,
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        // The tenant was removed or replaced by a reload, and no request holds it any more.
        self.refresh.cancel();
    }
}

impl KeySlot {
    /// The slot for a tenant's spec; static keys are active at once, remote ones once loaded.
    pub fn new(spec: Arc<TenantSpec>, now: i64) -> Self {
        let slot = Self {
            active: ArcSwapOption::empty(),
            failure: ArcSwapOption::empty(),
            metrics: KeyMetrics::new(&spec.id, !matches!(spec.key_source, KeySource::Static(_))),
            refresh: Arc::new(RefreshState::default()),
            spec,
        };
        if let KeySource::Static(keys) = &slot.spec.key_source {
            slot.install(keys.clone(), None, now);
        }
        slot
    }

    /// The tenant's configuration.
    pub fn spec(&self) -> &TenantSpec {
        &self.spec
    }

    /// Whether the keys are fetched (and refreshed) rather than configured.
    pub fn is_remote(&self) -> bool {
        !matches!(self.spec.key_source, KeySource::Static(_))
    }

    /// When the refresh task plans its next fetch (seconds since the epoch), if it runs.
    pub fn next_fetch_at(&self) -> Option<i64> {
        self.refresh.next_fetch_at()
    }

    /// The discovered issuer, if discovery named one.
    pub fn discovered_issuer(&self) -> Option<String> {
        self.refresh.discovered().and_then(|found| found.1.clone())
    }

    /// When the current keys go stale without a successful refresh (seconds since the epoch).
    pub fn stale_at(&self) -> Option<i64> {
        let active = self.active.load();
        let active = active.as_ref()?;
        self.is_remote()
            .then(|| active.loaded_at.saturating_add(self.max_stale()))
    }

    /// The state shared with the refresh task.
    pub(crate) fn refresh_state(&self) -> &Arc<RefreshState> {
        &self.refresh
    }

    /// The current keys, if any were loaded.
    pub fn active(&self) -> Option<Arc<ActiveKeys>> {
        self.active.load_full()
    }

    /// The current keys without taking a reference count (for the request path: hold the
    /// guard briefly).
    pub fn current(&self) -> Guard<Option<Arc<ActiveKeys>>> {
        self.active.load()
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
        self.metrics.loaded(keys.len(), keys.skipped().len(), now);
        self.active.store(Some(Arc::new(ActiveKeys {
            keys,
            policy,
            loaded_at: now,
        })));
        self.failure.store(None);
    }

    /// Takes over the keys of the slot this one replaces in a reload, when both fetch from the
    /// same place, so that a policy change does not leave the tenant without keys until the
    /// next fetch completes.
    pub fn inherit(&self, old: &Self) {
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
        // The new policy gets the checks a fresh start would run: a discovered issuer that it
        // refuses is not inherited, and neither are the keys that came with it.
        if let (KeySource::Discovery(url), Some(issuer)) = (&self.spec.key_source, &issuer)
            && let Err(refused) = check_discovered_issuer(&self.spec, url, issuer)
        {
            tracing::warn!(tenant = %self.spec.id, error = %refused, "reload: the keys are not inherited");
            self.record_error(refused.to_string());
            return;
        }
        self.refresh.remember_discovery(discovered);
        self.install(active.keys.clone(), issuer, active.loaded_at);
    }

    /// Drops the keys (after a load the policy refuses): every token is `KEYS_UNAVAILABLE`
    /// until keys the policy accepts load.
    pub(crate) fn drop_keys(&self, error: String) {
        self.active.store(None);
        self.refresh.remember_discovery(None);
        self.record_error(error);
    }

    /// Records why the last load failed (the current keys, if any, stay).
    pub fn record_error(&self, error: String) {
        self.metrics.failed();
        let now = clock::now();
        let since = self
            .failure
            .load()
            .as_ref()
            .map_or(now, |failure| failure.since);
        self.failure.store(Some(Arc::new(Failure {
            error,
            since,
            last_at: now,
        })));
    }

    /// Why loading the keys fails, if the last load failed.
    pub fn failure(&self) -> Option<Arc<Failure>> {
        self.failure.load_full()
    }

    /// For a token with an unknown `kid`: wakes a refetch (single-flight, rate-limited) and
    /// waits briefly for it: at most `unknown_kid_wait`, and at most `limit` (what is left of the
    /// caller's deadline). Returns whether a fetch finished, so that validating again may help.
    pub async fn refetch_for_unknown_kid(&self, limit: Option<Duration>) -> bool {
        if !self.is_remote() {
            return false;
        }
        let settings = self.spec.refresh;
        let wait = limit.map_or(settings.unknown_kid_wait, |limit| {
            limit.min(settings.unknown_kid_wait)
        });
        self.refresh
            .refetch_for_unknown_kid(settings.unknown_kid_cooldown, wait)
            .await
    }

    /// How long keys may serve without a successful refresh, in seconds.
    fn max_stale(&self) -> i64 {
        i64::try_from(self.spec.refresh.max_stale.as_secs()).unwrap_or(i64::MAX)
    }

    /// The reason to refuse every token when the keys are older than `max_stale`.
    pub fn stale(&self, active: &ActiveKeys, now: i64) -> Option<Rejection> {
        let max_stale = self.max_stale();
        let age = now.saturating_sub(active.loaded_at);
        if !self.is_remote() || age <= max_stale {
            return None;
        }
        // Since when, not why: the cause (an HTTP status, a refused connection) would tell a
        // prober about the provider's network; it is in the log and the admin view.
        let cause = self
            .failure
            .load()
            .as_ref()
            .map_or_else(String::new, |failure| {
                format!(
                    "; refreshing has failed since {}",
                    clock::rfc3339(failure.since)
                )
            });
        Some(Rejection::new(
            Reason::KeysUnavailable,
            format!(
                "the tenant's keys were last refreshed {age}s ago, longer than max_stale ({max_stale}s){cause}"
            ),
        ))
    }

    /// Why keys are missing, for the `KEYS_UNAVAILABLE` detail: since when loading fails, not
    /// why (that is in the log and the admin view).
    pub fn unavailable(&self) -> Rejection {
        let detail = match self.failure.load().as_ref() {
            Some(failure) => format!(
                "the tenant's keys are unavailable since {}: loading them failed (the cause is in tokengate's log and admin view)",
                clock::rfc3339(failure.since)
            ),
            None => "the tenant's keys are still loading; retry shortly".to_owned(),
        };
        Rejection::new(Reason::KeysUnavailable, detail)
    }

    /// The issuers the tenant currently accepts (discovery may have added one).
    pub fn issuers(&self) -> Vec<IssuerPattern> {
        match self.active.load().as_ref() {
            Some(active) => active.policy.issuers.clone(),
            None => self.spec.policy.issuers.clone(),
        }
    }

    /// Updates the "seconds until the keys go stale" gauge (before a scrape).
    pub fn update_staleness(&self, now: i64) {
        if !self.is_remote() {
            return;
        }
        let max_stale = self.max_stale();
        let left = self.active().map_or(0, |active| {
            max_stale
                .saturating_sub(now.saturating_sub(active.loaded_at))
                .max(0)
        });
        self.metrics.seconds_until_stale(left);
    }
}
