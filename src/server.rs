//! Wiring: the live configuration, key refresh in the background, configuration reloads, the
//! gRPC server with health and reflection, the HTTP side listener, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::api::ValidatorService;
use crate::config::Config;
use crate::fetch::Fetcher;
use crate::live::{self, Live, Overrides};
use crate::pb;
use crate::pb::token_validator_server::TokenValidatorServer;

/// How long in-flight requests may drain after shutdown begins before the server exits anyway
/// (idle HTTP/2 connections of gateways would otherwise hold it open).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 flow-control windows. Requests are small (a token, or a batch of up to
/// `max_batch_size` tokens); windows of a few MiB let a batch or a burst of streamed tokens
/// arrive without waiting for WINDOW_UPDATE round trips (the defaults are 64 KiB).
const STREAM_WINDOW: u32 = 1 << 20;
/// See [`STREAM_WINDOW`]; shared by all streams of one connection.
const CONNECTION_WINDOW: u32 = 4 << 20;
/// Concurrent streams one client connection may open: a gateway multiplexes many requests on a
/// few connections, so this is well above any in-flight count it needs, but bounded.
const MAX_CONCURRENT_STREAMS: u32 = 1024;
/// HTTP/2 PINGs on idle connections find dead peers (a gateway that vanished without a FIN).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a PING may go unanswered before the connection is closed.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
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

/// Whether the service should receive traffic: every tenant has keys (or the start-up grace
/// has passed), and it is not shutting down.
#[derive(Clone)]
struct Readiness {
    live: Arc<Live>,
    started: Instant,
    grace: Duration,
    stopping: Arc<AtomicBool>,
}

impl Readiness {
    /// Ready or not, with a line saying why.
    fn check(&self) -> (bool, String) {
        if self.stopping.load(Ordering::SeqCst) {
            return (false, "shutting down".into());
        }
        let registry = self.live.registry();
        let waiting: Vec<&str> = registry
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

/// Serves until `shutdown` completes. `path` is the configuration file that reloads read.
pub async fn serve(
    config: Config,
    path: Option<PathBuf>,
    overrides: Overrides,
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
    let metrics_listen = config.metrics_listen;
    let grace = config.refresh.startup_grace;
    let live = Live::start(config, path, overrides, Fetcher::new()?);
    let readiness = Readiness {
        live: live.clone(),
        started: Instant::now(),
        grace,
        stopping: Arc::new(AtomicBool::new(false)),
    };
    if let (Some(address), Some(handle)) = (metrics_listen, metrics_handle) {
        let http_listener = TcpListener::bind(address)
            .await
            .map_err(|source| ServeError::Bind { address, source })?;
        let bound = http_listener.local_addr().unwrap_or(address);
        tracing::info!(address = %bound, "metrics and probes listening");
        tokio::spawn(serve_http(http_listener, handle, readiness.clone()));
    }
    if let Some(address) = live.config().ext_authz.forward_auth_listen {
        let auth_listener = TcpListener::bind(address)
            .await
            .map_err(|source| ServeError::Bind { address, source })?;
        let bound = auth_listener.local_addr().unwrap_or(address);
        tracing::info!(address = %bound, "forward-auth listening");
        tokio::spawn(crate::forward_auth::serve(auth_listener, live.clone()));
    }
    let (health, health_service) = tonic_health::server::health_reporter();
    // The reporter starts with "" SERVING; nothing may see that before keys are loaded.
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    health
        .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
        .await;
    tokio::spawn(keep_health(health, readiness.clone()));
    tokio::spawn(live::watch(live.clone()));

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
    let drained = Arc::new(tokio::sync::Notify::new());
    let stop_signal = drained.clone();
    let stopping = readiness.clone();
    let graceful = async move {
        shutdown.await;
        // Readiness goes first, so that load balancers stop sending new work.
        stopping.stopping.store(true, Ordering::SeqCst);
        stopping.live.changed().notify_waiters();
        stop_signal.notify_one();
    };
    let server = http2_settings(tonic::transport::Server::builder())
        .layer(crate::grpc_metrics::GrpcMetricsLayer)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(TokenValidatorServer::new(ValidatorService::new(
            live.clone(),
        )))
        .add_service(envoy_types::ext_authz::v3::pb::AuthorizationServer::new(
            crate::ext_authz::ExtAuthzService::new(live),
        ))
        .serve_with_incoming_shutdown(crate::net::incoming(listener), graceful);
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

/// The gRPC server's HTTP/2 settings, chosen deliberately rather than left to defaults (see the
/// constants). `TCP_NODELAY` is set on accepted sockets by [`crate::net::incoming`], since
/// tonic ignores its own setting for a listener it is handed.
fn http2_settings(builder: tonic::transport::Server) -> tonic::transport::Server {
    builder
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .http2_adaptive_window(Some(false))
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
}

/// Keeps `grpc.health.v1` in step with readiness: on every key load, reload, the end of the
/// start-up grace, and shutdown.
async fn keep_health(health: HealthReporter, readiness: Readiness) {
    let changed = readiness.live.changed().clone();
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
            health.set_service_status(SERVICE_NAME, status).await;
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

/// Serves `/metrics`, `/healthz` (the process is up) and `/readyz` (see [`Readiness`]) for
/// probes and scrapers that do not speak gRPC.
async fn serve_http(listener: TcpListener, metrics: PrometheusHandle, readiness: Readiness) {
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
            get(
                |State((metrics, readiness)): State<(PrometheusHandle, Readiness)>| async move {
                    readiness
                        .live
                        .registry()
                        .update_staleness(crate::clock::now());
                    metrics.render()
                },
            ),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(
                |State((_, readiness)): State<(PrometheusHandle, Readiness)>| async move {
                    let (ready, why) = readiness.check();
                    let status = if ready {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    (status, format!("{why}\n"))
                },
            ),
        )
        .with_state((metrics, readiness));
    if let Err(error) = axum::serve(crate::net::http_listener(listener), app).await {
        tracing::error!(%error, "the metrics listener failed");
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
