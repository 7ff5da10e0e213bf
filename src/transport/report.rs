//! Report-only mode for gateways (`mode: report` on a tenant, for routes bound to it, or as a
//! route setting): a request
//! that would be denied is let through, marked `x-tokengate-would-deny: <code>` for the
//! upstream, counted (`tokengate_report_only_total{tenant,reason}`) and logged at info. Valid
//! tokens behave as in enforce mode, and the gRPC `TokenValidator` API always tells the truth.
//!
//! For a team that moves its gateway to tokengate and wants to see what would be refused before
//! anything is. A request let through this way carries no claim headers (a client's own values
//! of them are removed), so an upstream never mistakes it for an authenticated one.

use crate::config::ExtAuthzSettings;
use crate::ops::metrics::NO_TENANT;
use crate::tenants::tenant::Tenant;
use crate::transport::gateway::{Decision, identity_headers};

/// The header that tells the upstream what the denial would have been.
pub(crate) const WOULD_DENY_HEADER: &str = "x-tokengate-would-deny";

/// The code of an "unavailable" answer, when report mode lets its request through.
const UNAVAILABLE_CODE: &str = "keys_unavailable";

/// `decision` under report-only mode: an allow stays as it is; a denial, or "unavailable"
/// (report mode never blocks traffic), becomes an allow that says what it would have been.
pub(crate) fn unless_allowed(
    settings: &ExtAuthzSettings,
    decision: Decision,
    tenant: Option<&Tenant>,
) -> Decision {
    let code = match &decision {
        Decision::Allow { .. } => return decision,
        Decision::Deny { code, .. } => code.clone(),
        Decision::Unavailable => UNAVAILABLE_CODE.to_owned(),
    };
    let tenant_id = tenant.map_or("", Tenant::id);
    // Labels from closed sets: a configured tenant id, and a reason or gateway denial code.
    let label = if tenant_id.is_empty() {
        NO_TENANT
    } else {
        tenant_id
    };
    metrics::counter!("tokengate_report_only_total", "tenant" => label.to_owned(), "reason" => code.clone())
        .increment(1);
    tracing::info!(tenant = label, reason = %code, "report-only: a request that would be denied was let through");
    Decision::Allow {
        set: vec![(WOULD_DENY_HEADER.to_owned(), code.clone())],
        remove: identity_headers(settings)
            .into_iter()
            .filter(|header| header != WOULD_DENY_HEADER)
            .collect(),
        // No tenant vouched for this request: nothing downstream may read one.
        tenant: String::new(),
        accepted: None,
        would_deny: Some(code),
    }
}
