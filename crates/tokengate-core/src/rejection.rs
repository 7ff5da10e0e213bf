//! A rejected token: a stable [`Reason`] plus a human-readable detail.
//!
//! Diagnostics that name a provider-specific fix (Microsoft Entra's v1/v2 issuers, Graph tokens)
//! are added by the service after the core has rejected; the core states facts only.

use std::borrow::Cow;
use std::fmt;

use crate::reason::Reason;

/// Why one token was rejected. The detail never contains the token itself; it may quote
/// short claim or header values (truncated) so that an operator sees the cause at a glance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The machine-readable reason.
    pub reason: Reason,
    /// What was wrong and, where it helps, what to change.
    pub detail: Cow<'static, str>,
}

impl Rejection {
    /// A rejection with a fixed detail (no allocation).
    pub const fn fixed(reason: Reason, detail: &'static str) -> Self {
        Self {
            reason,
            detail: Cow::Borrowed(detail),
        }
    }

    /// A rejection with a formatted detail.
    pub fn new(reason: Reason, detail: String) -> Self {
        Self {
            reason,
            detail: Cow::Owned(detail),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.code(), self.detail)
    }
}

impl std::error::Error for Rejection {}
