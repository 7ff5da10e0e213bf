//! tokengate validates JWT access tokens for API gateways, per tenant, over gRPC.
//!
//! A gateway (or any client) sends a compact JWS; tokengate answers "valid, with these claims"
//! or "rejected, for this [`Reason`], with this hint". Keys come from each tenant's OIDC discovery
//! document, JWKS URL, or configuration, and are parsed once when they are loaded.
//!
//! # Layers
//! - The core is pure and synchronous: [`token`] (strict compact-JWS decoding), [`json`] (strict
//!   JSON), [`algorithm`], [`keyset`] (JWKS → ready keys), [`policy`] (claims) and [`verify`].
//! - [`config`] reads and checks the YAML configuration; [`tenant`] holds the live tenants and
//!   their keys, hot-swappable without locks; [`fetch`] loads remote keys.
//! - [`api`] serves `tokengate.v1.TokenValidator`; [`server`] wires gRPC, health and reflection;
//!   [`cli`] is the command line; [`demo`] is the embedded default configuration.
//!
//! # What tokengate does not do
//! It does not issue, refresh, introspect or revoke tokens, and it does not decrypt JWE.

pub mod algorithm;
pub mod api;
pub mod bench;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod ext_authz;
pub mod fetch;
pub mod forward_auth;
pub mod grpc_metrics;
pub mod hints;
pub mod issuer;
pub mod json;
pub mod keyset;
pub mod live;
pub mod metrics;
pub mod net;
pub mod pb;
pub mod policy;
pub mod reason;
pub mod refresh;
pub mod rejection;
pub mod server;
pub mod tenant;
pub mod token;
pub mod verify;

pub use reason::Reason;
pub use rejection::Rejection;
