//! Prometheus metrics. Handles are resolved once, when a tenant is built, so that recording on
//! the request path is an atomic add: no lookup, no lock, no allocation. Labels come only from
//! closed sets: configured tenant ids, reason codes, outcomes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Unit};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

use tokengate_core::reason::Reason;

/// The `tenant` label of validations that no tenant judged (unknown tenant, malformed token).
pub(crate) const NO_TENANT: &str = "(none)";

/// Latency buckets in seconds, from 10 µs to 100 ms.
const LATENCY_BUCKETS: [f64; 13] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,
];
/// RPC duration buckets in seconds: unary calls, but also batches, streams and kid waits.
const RPC_BUCKETS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
];
/// Batch-size buckets.
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 500.0, 1000.0];

/// Installs the global Prometheus recorder. Call it before any tenant is built: handles taken
/// before it are no-ops. The recorder is process-wide: a second server in the same process
/// (tests serve several) shares the first one's.
pub(crate) fn install() -> Result<PrometheusHandle, BuildError> {
    static INSTALLED: std::sync::Mutex<Option<PrometheusHandle>> = std::sync::Mutex::new(None);
    let mut installed = INSTALLED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(
                "tokengate_validation_duration_seconds".into(),
            ),
            &LATENCY_BUCKETS,
        )?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("grpc_server_handling_seconds".into()),
            &RPC_BUCKETS,
        )?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("tokengate_batch_size".into()),
            &BATCH_BUCKETS,
        )?
        .install_recorder()?;
    describe();
    metrics::gauge!("tokengate_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    *installed = Some(handle.clone());
    Ok(handle)
}

/// Counts a request or connection refused by a limit (`connections`, `in_flight`).
pub(crate) fn shed(reason: &'static str) {
    metrics::counter!("tokengate_shed_total", "reason" => reason).increment(1);
}

fn describe() {
    metrics::describe_counter!(
        "tokengate_shed_total",
        Unit::Count,
        "Requests answered at once with RESOURCE_EXHAUSTED or 503 (reason in_flight), and connections closed when accepted (reason connections), by the limits block."
    );
    metrics::describe_gauge!(
        "tokengate_requests_in_flight",
        Unit::Count,
        "Requests being handled now, gRPC and forward-auth (health checks excepted)."
    );
    metrics::describe_gauge!(
        "tokengate_connections_open",
        Unit::Count,
        "Open connections, by listener (grpc, forward_auth, admin)."
    );
    metrics::describe_counter!(
        "tokengate_issuer_conflicts_total",
        Unit::Count,
        "Key loads refused because the tenant would discover another tenant's issuer (share_issuer not set on both)."
    );
    metrics::describe_counter!(
        "tokengate_validations_total",
        Unit::Count,
        "Tokens validated, by tenant, result (valid or invalid) and reason code."
    );
    metrics::describe_histogram!(
        "tokengate_validation_duration_seconds",
        Unit::Seconds,
        "Time to validate one token, signature included."
    );
    metrics::describe_histogram!(
        "tokengate_batch_size",
        Unit::Count,
        "Tokens per ValidateBatch call."
    );
    metrics::describe_gauge!(
        "tokengate_tenant_keys",
        Unit::Count,
        "Usable keys loaded per tenant."
    );
    metrics::describe_gauge!(
        "tokengate_tenant_keys_skipped",
        Unit::Count,
        "Keys of the last loaded key set that were skipped as unusable, per tenant."
    );
    metrics::describe_gauge!(
        "tokengate_keys_stale_in_seconds",
        Unit::Seconds,
        "Seconds until a remote tenant's keys go stale (max_stale) unless a refresh succeeds; 0 when stale or never loaded."
    );
    metrics::describe_counter!(
        "tokengate_config_reloads_total",
        Unit::Count,
        "Configuration reloads, by outcome (success or failure)."
    );
    metrics::describe_gauge!(
        "tokengate_keys_last_success_timestamp_seconds",
        Unit::Seconds,
        "When each tenant's keys were last loaded successfully (Unix time)."
    );
    metrics::describe_counter!(
        "tokengate_key_refresh_total",
        Unit::Count,
        "Key loads per tenant, by outcome (success or failure)."
    );
    metrics::describe_gauge!(
        "tokengate_build_info",
        "Build information; the value is always 1."
    );
    metrics::describe_counter!(
        "tokengate_cache_requests_total",
        Unit::Count,
        "Verified-token cache lookups, by result (hit or miss)."
    );
    metrics::describe_gauge!(
        "tokengate_cache_entries",
        "Verified tokens held in the cache."
    );
    metrics::describe_counter!(
        "tokengate_cache_evictions_total",
        Unit::Count,
        "Cache entries evicted to stay within max_entries and max_bytes."
    );
}

/// Pre-resolved handles for one tenant's validations, and the counts the admin view shows.
#[derive(Clone)]
pub struct ValidationMetrics {
    valid: Counter,
    /// Indexed by [`Reason::index`].
    invalid: Vec<Counter>,
    duration: Histogram,
    counts: Arc<VerdictCounts>,
}

/// Verdicts counted since the tenant was built (a reload that changes it starts again).
#[derive(Debug, Default)]
pub struct VerdictCounts {
    /// Valid tokens.
    pub valid: AtomicU64,
    /// Rejected tokens.
    pub rejected: AtomicU64,
}

impl ValidationMetrics {
    /// Handles for `tenant` (a configured id, or [`NO_TENANT`]).
    pub fn new(tenant: &str) -> Self {
        let tenant = tenant.to_owned();
        Self {
            valid: metrics::counter!("tokengate_validations_total", "tenant" => tenant.clone(), "result" => "valid", "reason" => "none"),
            invalid: Reason::ALL
                .iter()
                .map(|reason| {
                    metrics::counter!("tokengate_validations_total", "tenant" => tenant.clone(), "result" => "invalid", "reason" => reason.code())
                })
                .collect(),
            duration: metrics::histogram!("tokengate_validation_duration_seconds", "tenant" => tenant),
            counts: Arc::default(),
        }
    }

    /// The verdicts counted so far.
    pub fn counts(&self) -> &VerdictCounts {
        &self.counts
    }

    /// Records one verdict.
    pub fn record(&self, reason: Option<Reason>, elapsed: Duration) {
        match reason {
            None => {
                self.valid.increment(1);
                self.counts.valid.fetch_add(1, Ordering::Relaxed);
            }
            Some(reason) => {
                self.counts.rejected.fetch_add(1, Ordering::Relaxed);
                if let Some(counter) = self.invalid.get(reason.index()) {
                    counter.increment(1);
                }
            }
        }
        self.duration.record(elapsed.as_secs_f64());
    }
}

impl std::fmt::Debug for ValidationMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValidationMetrics")
    }
}

/// Pre-resolved handles for one tenant's key loading.
#[derive(Clone)]
pub(crate) struct KeyMetrics {
    keys: Gauge,
    skipped: Gauge,
    last_success: Gauge,
    /// Only for tenants with remote keys: static keys never go stale.
    until_stale: Option<Gauge>,
    success: Counter,
    failure: Counter,
}

impl KeyMetrics {
    /// Handles for `tenant`; `remote` when its keys are fetched (and so can go stale).
    pub(crate) fn new(tenant: &str, remote: bool) -> Self {
        let tenant = tenant.to_owned();
        Self {
            until_stale: remote.then(
                || metrics::gauge!("tokengate_keys_stale_in_seconds", "tenant" => tenant.clone()),
            ),
            keys: metrics::gauge!("tokengate_tenant_keys", "tenant" => tenant.clone()),
            skipped: metrics::gauge!("tokengate_tenant_keys_skipped", "tenant" => tenant.clone()),
            last_success: metrics::gauge!("tokengate_keys_last_success_timestamp_seconds", "tenant" => tenant.clone()),
            success: metrics::counter!("tokengate_key_refresh_total", "tenant" => tenant.clone(), "outcome" => "success"),
            failure: metrics::counter!("tokengate_key_refresh_total", "tenant" => tenant, "outcome" => "failure"),
        }
    }

    /// Records keys installed at `now`, and how many keys of the document were unusable.
    pub(crate) fn loaded(&self, keys: usize, skipped: usize, now: i64) {
        self.keys.set(keys as f64);
        self.skipped.set(skipped as f64);
        self.last_success.set(now as f64);
        self.success.increment(1);
    }

    /// Records how long the current keys may still serve without a successful refresh.
    pub(crate) fn seconds_until_stale(&self, seconds: i64) {
        if let Some(gauge) = &self.until_stale {
            gauge.set(seconds as f64);
        }
    }

    /// Records a failed load.
    pub(crate) fn failed(&self) {
        self.failure.increment(1);
    }
}

impl std::fmt::Debug for KeyMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyMetrics")
    }
}
