//! Wiring: the tenant registry, key loading in the background, and the gRPC server with
//! health and reflection, until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::api::ValidatorService;
use crate::clock;
use crate::config::{Config, KeySource};
use crate::fetch::Fetcher;
use crate::pb;
use crate::pb::token_validator_server::TokenValidatorServer;
use crate::tenant::{Registry, Tenant};

/// How often loaded remote keys are fetched again.
const REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// First retry delay after a failed load; doubles up to [`MAX_RETRY_INTERVAL`].
const FIRST_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Longest delay between retries of a failing load.
const MAX_RETRY_INTERVAL: Duration = Duration::from_secs(60);
/// How long in-flight requests may drain after shutdown begins before the server exits anyway
/// (idle HTTP/2 connections of gateways would otherwise hold it open).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// The gRPC service name reported by health checks.
const SERVICE_NAME: &str = "tokengate.v1.TokenValidator";

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The HTTP client for key fetching could not be built.
    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),
    /// The gRPC reflection service could not be built.
    #[error("cannot build the reflection service: {0}")]
    Reflection(String),
    /// The metrics recorder could not be installed.
    #[error("cannot set up metrics: {0}")]
    Metrics(String),
    /// The gRPC server failed.
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Binds the gRPC listener; separate from [`serve`] so the caller can print the bound address.
pub async fn bind(config: &Config) -> Result<TcpListener, ServeError> {
    TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            address: config.listen,
            source,
        })
}

/// Serves `config` on `listener` until `shutdown` completes, loading remote keys in the background.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // The recorder must exist before tenants take their metric handles.
    let metrics_handle = match config.metrics_listen {
        Some(_) => Some(
            crate::metrics::install().map_err(|error| ServeError::Metrics(error.to_string()))?,
        ),
        None => None,
    };
    let registry = Arc::new(Registry::new(&config, clock::now()));
    let stopping = Arc::new(AtomicBool::new(false));
    if let (Some(address), Some(handle)) = (config.metrics_listen, metrics_handle) {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| ServeError::Bind { address, source })?;
        let bound = listener.local_addr().unwrap_or(address);
        tracing::info!(address = %bound, "metrics and probes listening");
        tokio::spawn(serve_http(
            listener,
            handle,
            registry.clone(),
            stopping.clone(),
        ));
    }
    let (health, health_service) = tonic_health::server::health_reporter();
    update_health(&health, &registry).await;
    let fetcher = Fetcher::new()?;
    for tenant in registry.tenants() {
        if !matches!(tenant.spec().key_source, KeySource::Static(_)) {
            tokio::spawn(keep_keys_fresh(
                tenant.clone(),
                registry.clone(),
                fetcher.clone(),
                health.clone(),
            ));
        }
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|error| ServeError::Reflection(error.to_string()))?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|error| ServeError::Reflection(error.to_string()))?;
    let validator = ValidatorService::new(registry.clone(), config.max_batch_size);
    let drained = Arc::new(tokio::sync::Notify::new());
    let stop_signal = drained.clone();
    let reporter = health.clone();
    let graceful = async move {
        shutdown.await;
        stopping.store(true, Ordering::SeqCst);
        // Readiness goes first, so that load balancers stop sending new work.
        reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
        reporter
            .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
            .await;
        stop_signal.notify_one();
    };
    let server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(TokenValidatorServer::new(validator))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), graceful);
    tokio::select! {
        result = server => result?,
        () = async {
            drained.notified().await;
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } => tracing::warn!("connections still open after the drain timeout; exiting"),
    }
    tracing::info!("tokengate stopped");
    Ok(())
}

/// SERVING once every tenant has keys; NOT_SERVING before.
async fn update_health(health: &HealthReporter, registry: &Registry) {
    let status = if registry.all_ready() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    health.set_service_status("", status).await;
    health.set_service_status(SERVICE_NAME, status).await;
}

/// Loads a remote tenant's keys, retries failures with backoff, and refreshes periodically.
/// A failed refresh keeps the keys already loaded.
async fn keep_keys_fresh(
    tenant: Arc<Tenant>,
    registry: Arc<Registry>,
    fetcher: Fetcher,
    health: HealthReporter,
) {
    let mut retry = FIRST_RETRY_INTERVAL;
    loop {
        match fetcher.load(tenant.spec()).await {
            Ok(loaded) => {
                tracing::info!(
                    tenant = tenant.id(),
                    keys = loaded.keys.len(),
                    skipped = loaded.keys.skipped().len(),
                    "keys loaded"
                );
                for skipped in loaded.keys.skipped() {
                    tracing::warn!(tenant = tenant.id(), kid = skipped.kid.as_deref(), reason = %skipped.reason, "key skipped");
                }
                tenant.install(
                    Arc::new(loaded.keys),
                    loaded.discovered_issuer,
                    clock::now(),
                );
                registry.reindex_issuers();
                update_health(&health, &registry).await;
                retry = FIRST_RETRY_INTERVAL;
                tokio::time::sleep(REFRESH_INTERVAL).await;
            }
            Err(error) => {
                tracing::warn!(tenant = tenant.id(), error = %error, retry_in = ?retry, "key load failed");
                tenant.record_error(error.to_string());
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY_INTERVAL);
            }
        }
    }
}

/// What the HTTP side listener needs.
#[derive(Clone)]
struct HttpState {
    metrics: PrometheusHandle,
    registry: Arc<Registry>,
    stopping: Arc<AtomicBool>,
}

/// Serves `/metrics`, `/healthz` (the process is up) and `/readyz` (every tenant has keys and
/// the server is not shutting down) for probes and scrapers that do not speak gRPC.
async fn serve_http(
    listener: TcpListener,
    metrics: PrometheusHandle,
    registry: Arc<Registry>,
    stopping: Arc<AtomicBool>,
) {
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(5));
        loop {
            interval.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(state): State<HttpState>| async move { state.metrics.render() }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readiness))
        .with_state(HttpState {
            metrics,
            registry,
            stopping,
        });
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "the metrics listener failed");
    }
}

async fn readiness(State(state): State<HttpState>) -> (StatusCode, String) {
    if state.stopping.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into());
    }
    let waiting: Vec<&str> = state
        .registry
        .tenants()
        .iter()
        .filter(|tenant| !tenant.has_keys())
        .map(|tenant| tenant.id())
        .collect();
    if waiting.is_empty() {
        (StatusCode::OK, "ready\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("waiting for keys of: {}\n", waiting.join(", ")),
        )
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}
