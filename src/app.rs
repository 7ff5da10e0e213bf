//! Wiring only: binds the listeners, builds the runtime and the services, spawns the background
//! tasks (key refresh, configuration watch, health), serves, and drains on shutdown.
//!
//! May import everything; nothing imports it but the CLI.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::ext_authz::v3::pb::AuthorizationServer;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::config::Config;
use crate::config::limits::LimitSettings;
use crate::keys::fetch::{FetchError, Fetcher};
use crate::net;
use crate::ops::grpc_metrics::{GrpcMetricsLayer, ServedService};
use crate::ops::health::{self, Readiness};
use crate::ops::{admin, metrics};
use crate::pb;
use crate::pb::token_validator_server::{self, TokenValidatorServer};
use crate::runtime::{self, Overrides, Runtime};
use crate::transport::ext_authz::{self, ExtAuthzService};
use crate::transport::forward_auth;
use crate::transport::grpc::ValidatorService;
use crate::transport::shed::{InFlight, ShedLayer};

/// How long in-flight requests may drain after shutdown begins before the server exits anyway
/// (idle HTTP/2 connections of gateways would otherwise hold it open).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 flow-control windows. Requests are small (a token, or a batch of up to
/// `max_batch_size` tokens); windows of a few MiB let a batch or a burst of streamed tokens
/// arrive without waiting for WINDOW_UPDATE round trips (the defaults are 64 KiB).
const STREAM_WINDOW: u32 = 1 << 20;
/// See [`STREAM_WINDOW`]; shared by all streams of one connection.
const CONNECTION_WINDOW: u32 = 4 << 20;
/// HTTP/2 PINGs on idle connections find dead peers (a gateway that vanished without a FIN).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a PING may go unanswered before the connection is closed.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
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
    Fetch(#[from] FetchError),
    /// The gRPC reflection service could not be built.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The metrics recorder could not be installed.
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    /// The gRPC server failed.
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Binds the gRPC listener; separate from [`serve`] so the caller can print the bound address.
pub async fn bind(config: &Config) -> Result<TcpListener, ServeError> {
    bind_to(config.listen).await
}

async fn bind_to(address: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Bind { address, source })
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
    let metrics_handle = config
        .metrics_listen
        .map(|_| metrics::install())
        .transpose()?;
    let metrics_listen = config.metrics_listen;
    let forward_auth_listen = config.ext_authz.forward_auth_listen;
    let limits = config.limits;
    let in_flight = InFlight::new(limits.max_in_flight);
    let grace = config.refresh.startup_grace;
    let runtime = Runtime::start(config, path, overrides, Fetcher::new()?);
    let readiness = Readiness::new(runtime.clone(), grace);
    if let (Some(address), Some(handle)) = (metrics_listen, metrics_handle) {
        spawn_admin(address, handle, readiness.clone(), limits).await?;
    }
    if let Some(address) = forward_auth_listen {
        let auth_listener = bind_to(address).await?;
        let bound = auth_listener.local_addr().unwrap_or(address);
        tracing::info!(address = %bound, "forward-auth listening");
        let auth = forward_auth::serve(auth_listener, runtime.clone(), in_flight.clone(), limits);
        tokio::spawn(auth);
    }
    let (health, health_service) = tonic_health::server::health_reporter();
    start_health(health, readiness.clone()).await;
    tokio::spawn(runtime::watch(runtime.clone()));
    let drained = Arc::new(tokio::sync::Notify::new());
    let stop_signal = drained.clone();
    let (stopping, stopping_streams) = tokio::sync::watch::channel(false);
    let graceful = async move {
        shutdown.await;
        readiness.stop();
        let _ = stopping.send(true);
        stop_signal.notify_one();
    };
    let server = http2_settings(tonic::transport::Server::builder(), &limits)
        .layer(GrpcMetricsLayer::new(&served_services()))
        .layer(ShedLayer::new(in_flight))
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(TokenValidatorServer::new(ValidatorService::new(
            runtime.clone(),
            limits.request_timeout,
            stopping_streams,
        )))
        .add_service(AuthorizationServer::new(ExtAuthzService::new(
            runtime,
            limits.request_timeout,
        )))
        .serve_with_incoming_shutdown(net::incoming_within(listener, limits), graceful);
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

/// The services on the gRPC port, by their own names, for the gRPC metrics.
fn served_services() -> [ServedService; 5] {
    use tonic_reflection::pb::{v1, v1alpha};
    [
        ServedService::described(
            token_validator_server::SERVICE_NAME,
            pb::FILE_DESCRIPTOR_SET,
        ),
        ServedService::with_methods(
            AuthorizationServer::<ExtAuthzService>::NAME,
            &ext_authz::METHODS,
        ),
        ServedService::described(
            tonic_health::pb::health_server::SERVICE_NAME,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ),
        ServedService::described(
            v1::server_reflection_server::SERVICE_NAME,
            v1::FILE_DESCRIPTOR_SET,
        ),
        ServedService::described(
            v1alpha::server_reflection_server::SERVICE_NAME,
            v1alpha::FILE_DESCRIPTOR_SET,
        ),
    ]
}

/// gRPC server reflection for tokengate's and health's protos.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Starts the admin listener (`/metrics`, `/healthz`, `/readyz`).
async fn spawn_admin(
    address: SocketAddr,
    handle: PrometheusHandle,
    readiness: Readiness,
    limits: LimitSettings,
) -> Result<(), ServeError> {
    let listener = bind_to(address).await?;
    let bound = listener.local_addr().unwrap_or(address);
    tracing::info!(address = %bound, "metrics and probes listening");
    tokio::spawn(admin::serve(listener, handle, readiness, limits));
    Ok(())
}

/// Health starts NOT_SERVING (the reporter's own default for "" is SERVING, which nothing may
/// see before keys are loaded), then follows readiness.
async fn start_health(health: HealthReporter, readiness: Readiness) {
    for service in ["", token_validator_server::SERVICE_NAME] {
        health
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    }
    tokio::spawn(health::keep_health(health, readiness));
}

/// The gRPC server's HTTP/2 settings, chosen deliberately rather than left to defaults (see the
/// constants). `TCP_NODELAY` is set on accepted sockets by [`net::incoming`], since
/// tonic ignores its own setting for a listener it is handed.
fn http2_settings(
    builder: tonic::transport::Server,
    limits: &LimitSettings,
) -> tonic::transport::Server {
    builder
        .timeout(limits.request_timeout)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .http2_adaptive_window(Some(false))
        .max_concurrent_streams(limits.max_streams_per_connection)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
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
