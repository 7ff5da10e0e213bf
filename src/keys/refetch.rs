//! The coordination between a tenant's key slot, its refresh task and requests whose token
//! names a `kid` the tenant does not know: a miss wakes the task (single-flight, at most once per
//! `unknown_kid_cooldown`), and the request may wait briefly for that one fetch. Time is tokio's,
//! so tests can pause it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use url::Url;

/// The coordination between a tenant, its refresh task and requests that miss a `kid`.
#[derive(Debug)]
pub(crate) struct RefreshState {
    /// Wakes the task before its timer (a `kid` miss).
    pub(super) wake: Notify,
    /// Fetch attempts started so far.
    pub(super) started: AtomicU64,
    /// Fetch attempts finished so far; waiters watch it grow.
    pub(super) finished: watch::Sender<u64>,
    /// The attempt (by number) that the last `kid` miss is waiting for; 0 when none.
    pub(super) kid_target: AtomicU64,
    /// When a `kid` miss last woke the task (milliseconds since `origin`).
    pub(super) last_kid_trigger_ms: AtomicI64,
    /// The time `last_kid_trigger_ms` counts from: tokio's clock, which tests can pause.
    pub(super) origin: Instant,
    /// Set when the tenant is dropped (removed or replaced by a reload): the task ends.
    pub(super) cancelled: watch::Sender<bool>,
    /// The JWKS URL and issuer of the last discovery, so a `kid` refetch skips discovery.
    pub(super) discovered: ArcSwapOption<(Url, Option<String>)>,
    /// When the task plans its next fetch (seconds since the epoch; `i64::MIN` before the first).
    pub(super) next_fetch_at: AtomicI64,
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
            next_fetch_at: AtomicI64::new(i64::MIN),
        }
    }
}

impl RefreshState {
    /// The JWKS URL and issuer of the last successful discovery.
    pub(crate) fn discovered(&self) -> Option<Arc<(Url, Option<String>)>> {
        self.discovered.load_full()
    }

    /// Takes over what another tenant's discovery found (on a reload).
    pub(crate) fn remember_discovery(&self, discovered: Option<Arc<(Url, Option<String>)>>) {
        self.discovered.store(discovered);
    }

    /// When the refresh task plans its next fetch (seconds since the epoch), if it has one.
    pub(crate) fn next_fetch_at(&self) -> Option<i64> {
        Some(self.next_fetch_at.load(Ordering::Acquire)).filter(|at| *at != i64::MIN)
    }

    /// Ends the refresh task.
    pub(crate) fn cancel(&self) {
        self.cancelled.send_replace(true);
    }

    /// For a token whose `kid` the tenant does not know: wakes the refresh task unless it was
    /// woken less than `cooldown` ago, and waits (at most `wait`) for a fetch attempt to finish.
    /// Returns whether one finished, i.e. whether validating again can give another answer.
    pub(crate) async fn refetch_for_unknown_kid(&self, cooldown: Duration, wait: Duration) -> bool {
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
}
