//! The admin HTTP listener (`metrics_listen`): `/metrics` for Prometheus, `/healthz` (the
//! process is up) and `/readyz` (see [`Readiness`]) for probes that do not speak gRPC.
//!
//! May import: `runtime` (read-only), `ops::health`, `net` (socket options).

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::clock;
use crate::net;
use crate::ops::health::Readiness;

/// Serves `/metrics`, `/healthz` (the process is up) and `/readyz` (see [`Readiness`]) for
/// probes and scrapers that do not speak gRPC.
pub(crate) async fn serve(listener: TcpListener, metrics: PrometheusHandle, readiness: Readiness) {
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
                    let snapshot = readiness.runtime().snapshot();
                    snapshot.validator.update_gauges(clock::now());
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
    if let Err(error) = axum::serve(net::http_listener(listener), app).await {
        tracing::error!(%error, "the metrics listener failed");
    }
}
