//! Keeping a tenant's remote keys fresh, off the request path.
//!
//! One task per remote tenant fetches its keys, then sleeps for the response's `max-age`
//! (clamped) or the configured interval, with jitter so tenants do not refresh in lock-step.
//! Failures are retried with jittered exponential backoff, and the keys already loaded keep
//! serving. A token with an unknown `kid` can wake the task early (single-flight, at most once
//! per `unknown_kid_cooldown`); the request that woke it may wait for that one fetch, briefly.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokengate_core::keyset::KeySet;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use url::Url;

use crate::clock;
use crate::keys::fetch::Fetcher;
use crate::keys::slot::KeySlot;

/// First retry delay after a failed fetch; it doubles up to `max_retry_interval`.
const FIRST_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Called after each successful load (to rebuild the issuer index and update health).
pub(crate) type OnLoaded = Arc<dyn Fn() + Send + Sync>;

/// The coordination between a tenant, its refresh task and requests that miss a `kid`.
#[derive(Debug)]
pub struct RefreshState {
    /// Wakes the task before its timer (a `kid` miss).
    wake: Notify,
    /// Fetch attempts started so far.
    started: AtomicU64,
    /// Fetch attempts finished so far; waiters watch it grow.
    finished: watch::Sender<u64>,
    /// The attempt (by number) that the last `kid` miss is waiting for; 0 when none.
    kid_target: AtomicU64,
    /// When a `kid` miss last woke the task (milliseconds since `origin`).
    last_kid_trigger_ms: AtomicI64,
    /// The time `last_kid_trigger_ms` counts from: tokio's clock, which tests can pause.
    origin: Instant,
    /// Set when the tenant is dropped (removed or replaced by a reload): the task ends.
    cancelled: watch::Sender<bool>,
    /// The JWKS URL and issuer of the last discovery, so a `kid` refetch skips discovery.
    discovered: ArcSwapOption<(Url, Option<String>)>,
}

impl Default for RefreshState {
    fn default() -> Self {
        Self {
            wake: Notify::new(),
            started: AtomicU64::new(0),
            finished: watch::Sender::new(0),
            kid_target: AtomicU64::new(0),
            last_kid_trigger_ms: AtomicI64::new(i64::MIN),
            origin: Instant::now(),
            cancelled: watch::Sender::new(false),
            discovered: ArcSwapOption::empty(),
        }
    }
}

impl RefreshState {
    /// The JWKS URL and issuer of the last successful discovery.
    pub fn discovered(&self) -> Option<Arc<(Url, Option<String>)>> {
        self.discovered.load_full()
    }

    /// Takes over what another tenant's discovery found (on a reload).
    pub fn remember_discovery(&self, discovered: Option<Arc<(Url, Option<String>)>>) {
        self.discovered.store(discovered);
    }

    /// Ends the refresh task.
    pub fn cancel(&self) {
        self.cancelled.send_replace(true);
    }

    /// For a token whose `kid` the tenant does not know: wakes the refresh task unless it was
    /// woken less than `cooldown` ago, and waits (at most `wait`) for a fetch attempt to finish.
    /// Returns whether one finished, i.e. whether validating again can give another answer.
    pub async fn refetch_for_unknown_kid(&self, cooldown: Duration, wait: Duration) -> bool {
        let mut finished = self.finished.subscribe();
        let now_ms = i64::try_from(self.origin.elapsed().as_millis()).unwrap_or(i64::MAX);
        let cooldown_ms = i64::try_from(cooldown.as_millis()).unwrap_or(i64::MAX);
        let last = self.last_kid_trigger_ms.load(Ordering::Acquire);
        let due = now_ms.saturating_sub(last) >= cooldown_ms;
        let triggered = due
            && self
                .last_kid_trigger_ms
                .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        // Waiters need an attempt that starts after the trigger: one already running may have
        // fetched before the new key was published.
        let target = if triggered {
            let target = self.started.load(Ordering::Acquire) + 1;
            self.kid_target.store(target, Ordering::Release);
            self.wake.notify_one();
            target
        } else {
            // Within the cooldown: share the triggered fetch if it has not finished yet.
            let target = self.kid_target.load(Ordering::Acquire);
            if target == 0 || *finished.borrow() >= target {
                return false;
            }
            target
        };
        tokio::time::timeout(wait, finished.wait_for(|count| *count >= target))
            .await
            .is_ok_and(|reached| reached.is_ok())
    }
}

/// Starts the refresh task of a tenant's remote keys. It holds only a weak reference, so the
/// slot of a tenant that a reload removed is dropped, which cancels the task.
pub(crate) fn spawn(slot: &Arc<KeySlot>, fetcher: Fetcher, on_loaded: OnLoaded) {
    let state = slot.refresh_state().clone();
    let slot = Arc::downgrade(slot);
    tokio::spawn(run(slot, state, fetcher, on_loaded));
}

/// Loads a slot's remote keys once, without a task (the CLI's offline validation): installs
/// them, or records why they could not be loaded.
pub(crate) async fn load_once(slot: &KeySlot, fetcher: &Fetcher) {
    match fetcher.load(slot.spec(), None).await {
        Ok(loaded) => slot.install(
            Arc::new(loaded.keys),
            loaded.discovered_issuer,
            clock::now(),
        ),
        Err(error) => slot.record_error(error.to_string()),
    }
}

async fn run(slot: Weak<KeySlot>, state: Arc<RefreshState>, fetcher: Fetcher, on_loaded: OnLoaded) {
    let mut cancelled = state.cancelled.subscribe();
    let mut retry = FIRST_RETRY_INTERVAL;
    let mut woken_by_kid = false;
    let mut last_discovery: Option<Instant> = None;
    loop {
        let Some(strong) = slot.upgrade() else {
            return;
        };
        let settings = strong.spec().refresh;
        let attempt = state.started.fetch_add(1, Ordering::AcqRel) + 1;
        // A kid miss only needs the key set; periodic refreshes re-read discovery too, and so
        // does a kid miss once discovery is older than the refresh interval.
        let discovery_fresh = last_discovery.is_some_and(|at| at.elapsed() < settings.interval);
        let known = if woken_by_kid && discovery_fresh {
            state.discovered.load_full()
        } else {
            None
        };
        if known.is_none() {
            last_discovery = Some(Instant::now());
        }
        let result = fetcher
            .load(
                strong.spec(),
                known
                    .as_deref()
                    .map(|(url, issuer)| (url, issuer.as_deref())),
            )
            .await;
        let delay = match result {
            Ok(loaded) => {
                if loaded.discovered_issuer.is_some() {
                    state.discovered.store(Some(Arc::new((
                        loaded.jwks_url.clone(),
                        loaded.discovered_issuer.clone(),
                    ))));
                }
                log_change(&strong, &loaded.keys);
                let next = settings.next_refresh(loaded.max_age);
                strong.install(
                    Arc::new(loaded.keys),
                    loaded.discovered_issuer,
                    clock::now(),
                );
                on_loaded();
                retry = FIRST_RETRY_INTERVAL;
                jitter(next, 0.1)
            }
            Err(error) => {
                tracing::warn!(tenant = %strong.spec().id, error = %error, retry_in = ?retry, "key refresh failed");
                strong.record_error(error.to_string());
                let delay = jitter(retry, 0.5);
                retry = retry.saturating_mul(2).min(settings.max_retry_interval);
                delay
            }
        };
        state.finished.send_replace(attempt);
        drop(strong);
        woken_by_kid = tokio::select! {
            () = tokio::time::sleep(delay) => false,
            () = state.wake.notified() => true,
            _ = cancelled.changed() => return,
        };
        if *cancelled.borrow() {
            return;
        }
    }
}

/// Logs a key-set change: which kids were added and removed, and skipped keys.
fn log_change(slot: &KeySlot, keys: &KeySet) {
    let tenant = slot.spec().id.as_str();
    let kids = |set: &KeySet| -> BTreeSet<String> {
        set.keys()
            .iter()
            .filter_map(|key| key.kid().map(str::to_owned))
            .collect()
    };
    let new = kids(keys);
    let old = slot
        .active()
        .map(|active| kids(&active.keys))
        .unwrap_or_default();
    let added: Vec<&String> = new.difference(&old).collect();
    let removed: Vec<&String> = old.difference(&new).collect();
    if slot.active().is_none() || !added.is_empty() || !removed.is_empty() {
        tracing::info!(
            tenant,
            keys = keys.len(),
            ?added,
            ?removed,
            "key set changed"
        );
    }
    for skipped in keys.skipped() {
        tracing::warn!(tenant, kid = skipped.kid.as_deref(), reason = %skipped.reason, "key skipped");
    }
}

/// `duration` shortened by a random fraction of up to `spread` (0.1 = up to 10 % earlier).
fn jitter(duration: Duration, spread: f64) -> Duration {
    let mut bytes = [0u8; 4];
    let random = if tokengate_core::crypto::fill_random(&mut bytes) {
        f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
    } else {
        0.5
    };
    duration.mul_f64(1.0 - spread * random)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stands in for the refresh task: each wake is one fetch attempt that takes `took`.
    fn fake_task(state: Arc<RefreshState>, took: Duration) {
        tokio::spawn(async move {
            loop {
                state.wake.notified().await;
                let attempt = state.started.fetch_add(1, Ordering::AcqRel) + 1;
                tokio::time::sleep(took).await;
                state.finished.send_replace(attempt);
            }
        });
    }

    #[tokio::test(start_paused = true)]
    async fn kid_misses_share_one_fetch_and_respect_the_cooldown() {
        let state = Arc::new(RefreshState::default());
        fake_task(state.clone(), Duration::from_millis(200));
        let (cooldown, wait) = (Duration::from_secs(10), Duration::from_secs(1));
        let first = state.refetch_for_unknown_kid(cooldown, wait);
        let second = state.refetch_for_unknown_kid(cooldown, wait);
        let (first, second) = tokio::join!(first, second);
        assert!(first && second, "both waited for the one triggered fetch");
        assert_eq!(state.started.load(Ordering::Acquire), 1);
        // Within the cooldown, with the fetch done: no new fetch, no wait.
        let started = Instant::now();
        assert!(!state.refetch_for_unknown_kid(cooldown, wait).await);
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(state.started.load(Ordering::Acquire), 1);
        // After the cooldown a miss triggers a fetch again.
        tokio::time::advance(cooldown).await;
        assert!(state.refetch_for_unknown_kid(cooldown, wait).await);
        assert_eq!(state.started.load(Ordering::Acquire), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_kid_miss_waits_at_most_unknown_kid_wait() {
        let state = Arc::new(RefreshState::default());
        fake_task(state.clone(), Duration::from_secs(30));
        let started = Instant::now();
        let wait = Duration::from_millis(500);
        assert!(
            !state
                .refetch_for_unknown_kid(Duration::from_secs(10), wait)
                .await
        );
        assert_eq!(started.elapsed(), wait);
    }

    #[test]
    fn jitter_stays_within_its_spread() {
        for _ in 0..100 {
            let delay = jitter(Duration::from_secs(100), 0.1);
            assert!(
                delay <= Duration::from_secs(100) && delay >= Duration::from_secs(90),
                "{delay:?}"
            );
        }
    }
}
