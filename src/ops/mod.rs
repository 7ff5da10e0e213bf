//! How operators watch the service: Prometheus [`metrics`] (handles resolved in advance), the
//! standard [`grpc_metrics`] of every gRPC service on the port, readiness and gRPC [`health`],
//! and the [`admin`] HTTP listener (`/metrics`, `/healthz`, `/readyz`, and the [`debug`] view
//! of the tenants).
//!
//! May import: `runtime` (read-only) and `net`. `metrics` imports nothing of ours but the core,
//! so that every layer may record through it.

pub(crate) mod admin;
pub(crate) mod debug;
pub(crate) mod grpc_metrics;
pub(crate) mod health;
pub(crate) mod metrics;
