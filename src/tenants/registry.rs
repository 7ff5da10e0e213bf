//! All tenants of one configuration, and the issuer index that routes tokens to them.
//!
//! A reload builds a new registry that keeps every tenant whose configuration is unchanged
//! (keys and refresh task included), so it causes no refetch storm. The index is rebuilt off
//! the request path whenever a tenant's keys (or discovered issuer) change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::{ArcSwap, Guard};

use crate::config::Config;
use crate::tenants::index::IssuerIndex;
use crate::tenants::tenant::Tenant;

/// All tenants, with an index from issuer to tenant.
#[derive(Debug)]
pub struct Registry {
    tenants: HashMap<String, Arc<Tenant>>,
    order: Vec<Arc<Tenant>>,
    by_issuer: ArcSwap<IssuerIndex>,
    /// Serialises rebuilds of `by_issuer` (off the request path), so that two tenants loading
    /// keys at once cannot overwrite each other's issuers.
    reindexing: Mutex<()>,
}

impl Registry {
    /// Builds the registry for a configuration; static keys are active at once.
    pub fn new(config: &Config, now: i64) -> Self {
        Self::rebuild(config, None, now).0
    }

    /// Builds the registry for a new configuration, keeping each tenant of `previous` whose
    /// configuration is unchanged (with its keys and refresh task). Returns the registry and the
    /// tenants that are new or changed, which need their keys loaded.
    pub fn rebuild(config: &Config, previous: Option<&Self>, now: i64) -> (Self, Vec<Arc<Tenant>>) {
        let mut fresh = Vec::new();
        let order: Vec<Arc<Tenant>> = config
            .tenants
            .iter()
            .map(|spec| {
                let old = previous.and_then(|previous| previous.get(&spec.id));
                if let Some(kept) = old.filter(|old| old.spec().fingerprint == spec.fingerprint) {
                    return kept.clone();
                }
                let tenant = Arc::new(Tenant::new(spec.clone(), now));
                if let Some(old) = old {
                    tenant.keys().inherit(old.keys());
                }
                fresh.push(tenant.clone());
                tenant
            })
            .collect();
        let registry = Self {
            tenants: order
                .iter()
                .map(|tenant| (tenant.id().to_owned(), tenant.clone()))
                .collect(),
            order,
            by_issuer: ArcSwap::from_pointee(IssuerIndex::default()),
            reindexing: Mutex::new(()),
        };
        registry.reindex_issuers();
        (registry, fresh)
    }

    /// Tenants in configuration order.
    pub fn tenants(&self) -> &[Arc<Tenant>] {
        &self.order
    }

    /// The tenant with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<Tenant>> {
        self.tenants.get(id)
    }

    /// Whether every tenant has keys.
    pub fn all_ready(&self) -> bool {
        self.order.iter().all(|tenant| tenant.has_keys())
    }

    /// The current issuer index (a lock-free snapshot).
    pub fn routing(&self) -> Guard<Arc<IssuerIndex>> {
        self.by_issuer.load()
    }

    /// Rebuilds the issuer index (after discovery named a tenant's issuer, or keys loaded).
    pub fn reindex_issuers(&self) {
        let _serialised = self
            .reindexing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let built_from = IssuerIndex::sources(&self.order);
        if !self.order.is_empty() && self.by_issuer.load().built_from() == built_from.as_slice() {
            return;
        }
        let index = IssuerIndex::build(&self.order, built_from);
        self.by_issuer.store(Arc::new(index));
    }

    /// Updates each remote tenant's "seconds until its keys go stale" gauge (before a scrape).
    pub fn update_staleness(&self, now: i64) {
        for tenant in &self.order {
            tenant.keys().update_staleness(now);
        }
    }
}
