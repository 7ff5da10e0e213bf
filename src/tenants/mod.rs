//! Who a token belongs to: each configured [`tenant::Tenant`] (its spec, its key slot, its
//! validation metrics), the [`registry::Registry`] of all of them (rebuilt on reload), the
//! issuer [`index`], and [`routing`], which chooses the tenant for a token by the request or by
//! its issuer.
//!
//! May import: the core, `config`, `keys`, `ops::metrics`. Never the validator or a transport.

pub(crate) mod index;
pub(crate) mod registry;
pub(crate) mod routing;
pub(crate) mod tenant;
