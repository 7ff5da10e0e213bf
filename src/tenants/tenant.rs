//! One configured tenant: its checked spec, the slot that holds its current keys, and the
//! handles of its validation metrics.

use std::sync::Arc;

use tokengate_core::issuer::IssuerPattern;

use crate::config::TenantSpec;
use crate::keys::slot::{ActiveKeys, KeySlot};
use crate::ops::metrics::ValidationMetrics;

/// One configured tenant and its current keys.
#[derive(Debug)]
pub struct Tenant {
    spec: Arc<TenantSpec>,
    keys: Arc<KeySlot>,
    validations: ValidationMetrics,
}

impl Tenant {
    /// A tenant from its spec; static keys are active at once, remote ones once loaded.
    pub fn new(spec: TenantSpec, now: i64) -> Self {
        let spec = Arc::new(spec);
        Self {
            keys: Arc::new(KeySlot::new(spec.clone(), now)),
            validations: ValidationMetrics::new(&spec.id),
            spec,
        }
    }

    /// The tenant id.
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// The tenant's configuration.
    pub fn spec(&self) -> &TenantSpec {
        &self.spec
    }

    /// The slot that holds the tenant's keys (written by its refresh task).
    pub fn keys(&self) -> &Arc<KeySlot> {
        &self.keys
    }

    /// The current keys, if any were loaded.
    pub fn active(&self) -> Option<Arc<ActiveKeys>> {
        self.keys.active()
    }

    /// Whether usable keys are loaded.
    pub fn has_keys(&self) -> bool {
        self.keys.has_keys()
    }

    /// Whether the keys are fetched (and refreshed) rather than configured.
    pub fn is_remote(&self) -> bool {
        self.keys.is_remote()
    }

    /// The handles that count this tenant's verdicts.
    pub fn validations(&self) -> &ValidationMetrics {
        &self.validations
    }

    /// Whether the tenant's issuer comes from a discovery document not loaded yet.
    pub fn awaits_discovery(&self) -> bool {
        self.spec.policy.issuers.is_empty() && !self.has_keys()
    }

    /// The issuers this tenant currently accepts.
    pub fn issuers(&self) -> Vec<IssuerPattern> {
        self.keys.issuers()
    }
}
