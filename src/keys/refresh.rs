//! Keeping a tenant's remote keys fresh, off the request path.
//!
//! One task per remote tenant fetches its keys, then sleeps for the response's `max-age`
//! (clamped) or the configured interval, with jitter so tenants do not refresh in lock-step.
//! Failures are retried with jittered exponential backoff, and the keys already loaded keep
//! serving. A token with an unknown `kid` can wake the task early (single-flight, at most once
//! per `unknown_kid_cooldown`); the request that woke it may wait for that one fetch, briefly.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokengate_core::keyset::KeySet;
use tokio::time::Instant;

use crate::clock;
use crate::keys::fetch::Fetcher;
use crate::keys::refetch::RefreshState;
use crate::keys::slot::KeySlot;

/// Skipped keys logged one by one per load; more are summarised in one line.
const SKIPPED_LOGGED: usize = 5;
/// First retry delay after a failed fetch; it doubles up to `max_retry_interval`.
const FIRST_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Called after each successful load, and after keys were dropped (to rebuild the issuer index
/// and update health).
pub(crate) type OnLoaded = Arc<dyn Fn() + Send + Sync>;

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
                if error.is_policy_refusal() {
                    // The provider answered with an issuer the policy refuses: the keys that
                    // came with the old answer must not keep serving until max_stale.
                    strong.drop_keys(error.to_string());
                    // The tenant's issuer and readiness changed: re-index, update health.
                    on_loaded();
                } else {
                    strong.record_error(error.to_string());
                }
                let delay = jitter(retry, 0.5);
                retry = retry.saturating_mul(2).min(settings.max_retry_interval);
                delay
            }
        };
        state.finished.send_replace(attempt);
        let next = clock::now().saturating_add(i64::try_from(delay.as_secs()).unwrap_or(i64::MAX));
        state.next_fetch_at.store(next, Ordering::Release);
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
    // The first few skipped keys each; the rest in one summary line, so that a document of
    // junk entries costs a bounded number of log lines per load.
    let skipped = keys.skipped();
    for skipped in skipped.iter().take(SKIPPED_LOGGED) {
        tracing::warn!(tenant, kid = skipped.kid.as_deref(), reason = %skipped.reason, "key skipped");
    }
    if skipped.len() > SKIPPED_LOGGED {
        tracing::warn!(tenant, skipped = skipped.len(), summary = %keys.skipped_summary(), "keys skipped");
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
