//! Readiness, and `grpc.health.v1` kept in step with it: not serving until every tenant has
//! keys (or the start-up grace has passed), and not serving once shutdown begins.
//!
//! May import: `runtime` (read-only), `pb`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::pb;
use crate::runtime::Runtime;

/// Whether the service should receive traffic: every tenant has keys (or the start-up grace
/// has passed), and it is not shutting down.
#[derive(Clone, Debug)]
pub(crate) struct Readiness {
    runtime: Arc<Runtime>,
    started: Instant,
    grace: Duration,
    stopping: Arc<AtomicBool>,
}

impl Readiness {
    /// Readiness of `runtime`, which may wait `grace` for keys after start-up.
    pub(crate) fn new(runtime: Arc<Runtime>, grace: Duration) -> Self {
        Self {
            runtime,
            started: Instant::now(),
            grace,
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Marks the service as stopping (readiness goes first, so that load balancers stop
    /// sending new work).
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.runtime.changed().notify_waiters();
    }

    /// The running configuration.
    pub(crate) fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Ready or not, with a line saying why.
    pub(crate) fn check(&self) -> (bool, String) {
        if self.stopping.load(Ordering::SeqCst) {
            return (false, "shutting down".into());
        }
        let snapshot = self.runtime.snapshot();
        let waiting: Vec<&str> = snapshot
            .registry()
            .tenants()
            .iter()
            .filter(|tenant| !tenant.has_keys())
            .map(|tenant| tenant.id())
            .collect();
        if waiting.is_empty() {
            (true, "ready".into())
        } else if self.started.elapsed() >= self.grace {
            (
                true,
                format!("ready; still no keys for: {}", waiting.join(", ")),
            )
        } else {
            (
                false,
                format!("waiting for keys of: {}", waiting.join(", ")),
            )
        }
    }
}

/// Keeps `grpc.health.v1` in step with readiness: on every key load, reload, the end of the
/// start-up grace, and shutdown.
pub(crate) async fn keep_health(health: HealthReporter, readiness: Readiness) {
    let changed = readiness.runtime.changed().clone();
    let mut last = Some(false);
    loop {
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (ready, why) = readiness.check();
        if last != Some(ready) {
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            health.set_service_status("", status).await;
            health
                .set_service_status(pb::token_validator_server::SERVICE_NAME, status)
                .await;
            tracing::info!(ready, why = %why, "health");
            last = Some(ready);
        }
        let until_grace = readiness.grace.saturating_sub(readiness.started.elapsed());
        tokio::select! {
            () = notified => {}
            () = tokio::time::sleep(until_grace), if !until_grace.is_zero() => {}
        }
    }
}
