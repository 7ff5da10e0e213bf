//! tokengate validates JWT access tokens for API gateways, per tenant, over gRPC.
//!
//! A gateway (or any client) sends a compact JWS; tokengate answers "valid, with these claims"
//! or "rejected, for this [`Reason`], with this hint". Keys come from each tenant's OIDC discovery
//! document, JWKS URL, or configuration, and are parsed once when they are loaded.
//!
//! # Layers (see `ARCHITECTURE.md`)
//! Dependencies point one way, from the bottom up:
//! - `tokengate-core` (its own crate): what a valid token is, pure and synchronous.
//! - `config`: the YAML configuration, read and checked into specs.
//! - `keys`: fetching, refreshing and holding each tenant's keys.
//! - `tenants`: the tenants of one configuration, and the choice of tenant for a token.
//! - `diagnose`: provider-specific hints, after a rejection.
//! - `validator`: the one use-case, "judge this token", with the token cache.
//! - `runtime`: one snapshot of configuration and validator, swapped on reload.
//! - `transport`: the gRPC API, Envoy ext_authz and forward-auth, and the one mapping to the wire.
//! - `ops`: metrics, gRPC metrics, health and the admin listener.
//! - `app` (wiring) and `cli` (the command line) on top; `bench` is the load generator.
//!
//! Modules are private; what tests, benches, examples and the fuzzers use is re-exported here.
//!
//! # What tokengate does not do
//! It does not issue, refresh, introspect or revoke tokens, and it does not decrypt JWE.

mod app;
mod bench;
mod cli;
mod clock;
mod config;
mod demo;
mod diagnose;
#[doc(hidden)]
pub mod fuzzing;
mod keys;
mod net;
mod ops;
pub mod pb;
mod runtime;
mod tenants;
mod transport;
mod validator;

pub use app::{ServeError, bind, serve, shutdown_signal};
pub use cli::main;
pub use config::{Config, ConfigError, ConfigErrors};
pub use demo::config as demo_config;
pub use net::incoming;
pub use runtime::Overrides;
pub use tokengate_core::{Reason, Rejection};
pub use validator::Validator;
pub use validator::judgement::Judgement;
pub use validator::verdict::Verdict;
