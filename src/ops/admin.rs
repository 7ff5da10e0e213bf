//! The admin HTTP listener (`metrics_listen`): `/metrics` for Prometheus, `/healthz` (the
//! process is up) and `/readyz` (see [`Readiness`]) for probes that do not speak gRPC, and the
//! admin view `/debug/tenants` (see [`crate::ops::debug`]) unless `admin: false`.
//!
//! May import: `runtime` (read-only), `ops::health`, `net` (socket options).

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::clock;
use crate::config::limits::LimitSettings;
use crate::net;
use crate::ops::debug::{TenantView, TenantsView};
use crate::ops::health::Readiness;

/// Serves `/metrics`, `/healthz` (the process is up) and `/readyz` (see [`Readiness`]) for
/// probes and scrapers that do not speak gRPC.
pub(crate) async fn serve(
    listener: TcpListener,
    metrics: PrometheusHandle,
    readiness: Readiness,
    limits: LimitSettings,
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
        .route(
            "/debug/tenants",
            get(
                |State((_, readiness)): State<(PrometheusHandle, Readiness)>| async move {
                    let snapshot = readiness.runtime().snapshot();
                    if !snapshot.config.admin {
                        return admin_off();
                    }
                    Json(TenantsView::of(&snapshot, clock::now())).into_response()
                },
            ),
        )
        .route(
            "/debug/tenants/{id}",
            get(
                |State((_, readiness)): State<(PrometheusHandle, Readiness)>,
                 Path(id): Path<String>| async move {
                    let snapshot = readiness.runtime().snapshot();
                    if !snapshot.config.admin {
                        return admin_off();
                    }
                    match snapshot.registry().get(&id) {
                        Some(tenant) => Json(TenantView::of(tenant)).into_response(),
                        None => (
                            StatusCode::NOT_FOUND,
                            Json(serde_json::json!({"error": "no tenant has this id"})),
                        )
                            .into_response(),
                    }
                },
            ),
        )
        .with_state((metrics, readiness));
    net::serve_http(listener, "admin", &limits, app).await;
}

/// The answer of `/debug/…` with `admin: false`.
fn admin_off() -> Response {
    (
        StatusCode::NOT_FOUND,
        "the admin view is off (admin: false)\n",
    )
        .into_response()
}
