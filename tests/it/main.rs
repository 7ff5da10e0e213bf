//! The integration tests, in one binary (one link of tonic, axum, reqwest and jsonwebtoken
//! instead of one per file). Each module is one concern; `support` has the shared harness: fixture
//! keys, the independent token encoder, a loopback identity provider, and the real binary.
//!
//! Run one module with `cargo test --test it engine::` (or any test-name filter).

mod admin;
mod bench;
mod cache;
mod cli;
mod crypto_vectors;
mod engine;
mod entra;
mod ext_authz;
mod features;
mod fetch;
mod grpc;
mod keys;
mod limits;
mod pem;
mod properties;
mod refresh;
mod routes;
mod security;
mod support;
mod wycheproof;
