//! Issuers are unique unless the operator says otherwise: a tenant that takes its issuer from
//! discovery may not take an issuer another tenant accepts, unless both write
//! `share_issuer: true` (one identity provider, several APIs).
//!
//! A discovered issuer must be the issuer its discovery URL was derived from (see
//! `keys::fetch::check_discovered_issuer`), so the issuer each such tenant will discover is known
//! from the configuration alone, and the rule is decided here, once, for fresh starts and reloads
//! alike. A tenant that lists the issuer keeps it; between tenants that discover it, the first in
//! the file keeps it. The tenant that yields loads no keys, and says why.

use std::hash::{Hash, Hasher};

use super::spec::{KeySource, TenantSpec};

/// The path every discovery URL ends with (OpenID Connect Discovery §4).
const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// The issuer a discovery URL belongs to (the URL without the well-known path), if it has the
/// standard form.
pub(crate) fn issuer_of_discovery_url(url: &url::Url) -> Option<&str> {
    url.as_str()
        .strip_suffix(WELL_KNOWN)
        .filter(|issuer| !issuer.is_empty())
}

/// The tenant that already holds the issuer `tenants[index]` will discover, if that tenant may
/// not share it.
fn taken_by(tenants: &[TenantSpec], index: usize) -> Option<String> {
    let tenant = &tenants[index];
    let issuer = discovered_issuer(tenant)?;
    let same = |other: &str| other.trim_end_matches('/') == issuer.trim_end_matches('/');
    tenants
        .iter()
        .enumerate()
        .filter(|(other, _)| *other != index)
        .find(|(other, claimant)| {
            let claims = if claimant.issuers.is_empty() {
                // Another discovering tenant: the first in the file keeps the issuer.
                *other < index && discovered_issuer(claimant).is_some_and(same)
            } else {
                claimant.issuers.iter().any(|listed| same(listed))
            };
            claims && !(tenant.share_issuer && claimant.share_issuer)
        })
        .map(|(_, claimant)| claimant.id.clone())
}

/// The issuer a tenant without configured issuers will take from its discovery document.
fn discovered_issuer(tenant: &TenantSpec) -> Option<&str> {
    match &tenant.key_source {
        KeySource::Discovery(url) if tenant.issuers.is_empty() => issuer_of_discovery_url(url),
        _ => None,
    }
}

/// Marks every tenant whose discovered issuer another tenant holds (`issuer_taken_by`), and
/// folds the mark into its fingerprint, so that a reload that changes it rebuilds the tenant.
pub(super) fn mark_taken(tenants: &mut [TenantSpec]) {
    let taken: Vec<Option<String>> = (0..tenants.len())
        .map(|index| taken_by(tenants, index))
        .collect();
    for (tenant, taken) in tenants.iter_mut().zip(taken) {
        if taken.is_some() {
            let mut hasher = std::hash::DefaultHasher::new();
            (tenant.fingerprint, &taken).hash(&mut hasher);
            tenant.fingerprint = hasher.finish();
        }
        tenant.issuer_taken_by = taken;
    }
}
