//! tokengate-core: what a valid JWT access token is, as a pure, synchronous function of
//! (token, keys, policy, now).
//!
//! It decodes compact JWS strictly ([`token`], with [`json`] rejecting duplicate members),
//! turns a JWKS into ready keys bound to their algorithms ([`keyset`], through the one crypto
//! seam [`crypto`]), checks claims against a tenant's [`policy`] and verifies signatures
//! ([`verify`]). Every rejection is a [`Rejection`]: a stable [`Reason`] and a detail for
//! operators.
//!
//! # What this crate does not do
//! It does no I/O: it does not fetch keys, read files or clocks, log, or count metrics, and it
//! depends on no async runtime or network crate (the compiler enforces this: they are not
//! dependencies). It does not choose a tenant, cache verdicts, or know any identity provider:
//! provider-specific diagnostics are added by the service after a rejection. It does not
//! issue, refresh, introspect or revoke tokens, and it does not decrypt JWE.

pub mod algorithm;
pub mod crypto;
pub mod issuer;
pub mod json;
pub mod keyset;
pub mod policy;
pub mod reason;
pub mod rejection;
pub mod text;
pub mod token;
pub mod verify;

pub use reason::Reason;
pub use rejection::Rejection;
