//! Where a tenant's keys come from and how they stay fresh: [`fetch`] loads a discovery document
//! and a JWKS over HTTPS (with the URL policy and size caps), [`refresh`] keeps them fresh off
//! the request path, [`refetch`] lets a request with an unknown `kid` wake that refresh, and
//! [`slot`] holds the keys a tenant verifies with now.
//!
//! May import: the core, `config`, `ops::metrics`. Never tenants, the validator or a transport:
//! the refresh task writes a [`slot::KeySlot`] and knows nothing of who reads it.

pub(crate) mod fetch;
pub(crate) mod refetch;
pub(crate) mod refresh;
pub(crate) mod slot;
