//! The issuer index: which tenants accept which issuer, exact issuers by hash and `{tenantid}`
//! templates by scan. Rebuilt off the request path; read without locks.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use tokengate_core::issuer::IssuerPattern;

use crate::tenants::tenant::Tenant;

/// Which tenants accept which issuer.
#[derive(Debug, Default)]
pub struct IssuerIndex {
    exact: HashMap<String, Vec<Arc<Tenant>>>,
    templates: Vec<(IssuerPattern, Arc<Tenant>)>,
    /// What the index was built from: each tenant's issuers and whether it had keys (which
    /// decides between tenants that share an issuer).
    built_from: Vec<(bool, Vec<String>)>,
    /// Identifies this routing: replaced only when `built_from` changes, so cached verdicts
    /// of tokens routed by issuer stay valid exactly as long as the routing does.
    generation: Arc<()>,
}

impl IssuerIndex {
    /// What an index of `tenants` would be built from, to tell whether it must be rebuilt.
    pub fn sources(tenants: &[Arc<Tenant>]) -> Vec<(bool, Vec<String>)> {
        tenants
            .iter()
            .map(|tenant| {
                let issuers = tenant.issuers();
                let issuers = issuers.iter().map(|issuer| issuer.as_str().to_owned());
                (tenant.has_keys(), issuers.collect())
            })
            .collect()
    }

    /// The index of `tenants`, from what [`IssuerIndex::sources`] gave for them.
    pub fn build(tenants: &[Arc<Tenant>], built_from: Vec<(bool, Vec<String>)>) -> Self {
        let mut index = Self {
            built_from,
            ..Self::default()
        };
        for tenant in tenants {
            for issuer in tenant.issuers() {
                if issuer.is_template() {
                    index.templates.push((issuer, tenant.clone()));
                } else {
                    let tenants = index.exact.entry(issuer.as_str().to_owned()).or_default();
                    if !tenants.iter().any(|known| Arc::ptr_eq(known, tenant)) {
                        tenants.push(tenant.clone());
                    }
                }
            }
        }
        index
    }

    /// What this index was built from.
    pub fn built_from(&self) -> &[(bool, Vec<String>)] {
        &self.built_from
    }

    /// The identity of this routing (see the field's doc).
    pub fn generation(&self) -> &Arc<()> {
        &self.generation
    }

    /// The tenants that accept `iss` (a template only for the token's own `tid`).
    /// Borrows the exact matches (the usual case, no allocation); copies only when a template
    /// adds a tenant.
    pub(crate) fn candidates(&self, iss: &str, tid: Option<&str>) -> Cow<'_, [Arc<Tenant>]> {
        let exact: &[Arc<Tenant>] = self.exact.get(iss).map_or(&[], Vec::as_slice);
        let mut found = Cow::Borrowed(exact);
        for (pattern, tenant) in &self.templates {
            if pattern.matches(iss, tid) && !found.iter().any(|known| Arc::ptr_eq(known, tenant)) {
                found.to_mut().push(tenant.clone());
            }
        }
        found
    }

    /// Every accepted issuer, for diagnostics.
    pub fn patterns(&self) -> Vec<IssuerPattern> {
        self.exact
            .keys()
            .map(IssuerPattern::new)
            .chain(self.templates.iter().map(|(pattern, _)| pattern.clone()))
            .collect()
    }
}
