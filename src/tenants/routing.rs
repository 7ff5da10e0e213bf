//! Choosing the tenant for a token: the one the request names, or the one that accepts the
//! token's issuer (through the registry's [`IssuerIndex`](crate::tenants::index::IssuerIndex)).
//! Between tenants that share an issuer the signature decides first (see
//! [`Route::Shared`]), then the audience and the tenant-id allow-list.

use std::sync::Arc;

use tokengate_core::text::quote;
use tokengate_core::token::ParsedToken;
use tokengate_core::{Reason, Rejection};

use crate::tenants::registry::Registry;
use crate::tenants::tenant::Tenant;

/// Why no tenant was chosen.
#[derive(Debug)]
pub(crate) struct Unrouted {
    /// The answer for the token.
    pub rejection: Rejection,
    /// No tenant at all accepts the token's issuer (diagnostics may say why).
    pub no_issuer_match: bool,
}

impl From<Rejection> for Unrouted {
    fn from(rejection: Rejection) -> Self {
        Self {
            rejection,
            no_issuer_match: false,
        }
    }
}

/// Where a token goes.
#[derive(Debug)]
pub(crate) enum Route {
    /// The tenant the request named, or the only one that accepts the token's issuer.
    One(Arc<Tenant>),
    /// Several tenants accept the issuer (in configuration order). The validator tries their
    /// keys on the signature first and tells the signers apart with [`single_out`], so that a
    /// token nobody signed gets the same answer whatever its `aud` and `tid` say.
    Shared(Vec<Arc<Tenant>>),
}

/// The route for a token: `requested` when it is not empty, else by the token's issuer.
/// `in_grace`: the server is within its start-up grace, when a tenant still waiting for its
/// discovery document may yet turn out to accept the issuer.
pub(crate) fn choose(
    registry: &Registry,
    requested: &str,
    token: &ParsedToken<'_>,
    in_grace: bool,
) -> Result<Route, Unrouted> {
    if !requested.is_empty() {
        return registry
            .get(requested)
            .cloned()
            .map(Route::One)
            .ok_or_else(|| {
                Rejection::new(
                    Reason::UnknownTenant,
                    format!("no tenant has the id {}", quote(requested)),
                )
                .into()
            });
    }
    let Some(iss) = token.claims.iss.as_deref() else {
        return Err(Rejection::fixed(
            Reason::UnknownTenant,
            "the token has no \"iss\" claim, so no tenant can be chosen; pass the tenant id in the request",
        )
        .into());
    };
    let index = registry.routing();
    let tid = token.claims.string("tid");
    let candidates = index.candidates(iss, tid.as_deref());
    match candidates.as_ref() {
        [] => Err(no_candidate(registry.tenants(), iss, in_grace)),
        [only] => Ok(Route::One(only.clone())),
        several => Ok(Route::Shared(several.to_vec())),
    }
}

/// Among tenants that share the token's issuer and whose keys verified its signature, the one
/// its audience and tenant id single out; the refusal when none or several do.
pub(crate) fn single_out_signed(
    signed: &[Arc<Tenant>],
    token: &ParsedToken<'_>,
) -> Result<Arc<Tenant>, Rejection> {
    let tid = token.claims.string("tid");
    single_out(signed, token, tid.as_deref()).ok_or_else(|| {
        Rejection::new(
            Reason::UnknownTenant,
            format!(
                "{} tenants that share the issuer {} verify the token's signature, and its audience does not single one out; pass the tenant id",
                signed.len(),
                quote(token.claims.iss.as_deref().unwrap_or_default())
            ),
        )
    })
}

/// The answer when no loaded tenant accepts `iss`: "unknown tenant", except during the start-up
/// grace while a tenant's issuer is not known yet. That answer names no tenant, and it never
/// outlives the grace: after it, a forged token always gets a denial, never "unavailable".
fn no_candidate(tenants: &[Arc<Tenant>], iss: &str, in_grace: bool) -> Unrouted {
    if in_grace && tenants.iter().any(|tenant| tenant.awaits_discovery()) {
        return Rejection::new(
            Reason::KeysUnavailable,
            format!(
                "no loaded tenant accepts the issuer {}, and tokengate is still loading the discovery documents that name some tenants' issuers; retry shortly, or pass the tenant id",
                quote(iss),
            ),
        )
        .into();
    }
    Unrouted {
        rejection: Rejection::new(
            Reason::UnknownTenant,
            format!(
                "no tenant accepts the issuer {}; check the token's issuer or pass the tenant id",
                quote(iss)
            ),
        ),
        no_issuer_match: true,
    }
}

/// Several tenants share the issuer (one identity provider, several APIs): the audience and the
/// tenant-id allow-list decide, and must decide uniquely.
fn single_out(
    several: &[Arc<Tenant>],
    token: &ParsedToken<'_>,
    tid: Option<&str>,
) -> Option<Arc<Tenant>> {
    let mut matching = several.iter().filter(|tenant| {
        tenant.active().is_some_and(|active| {
            let policy = &active.policy;
            let audience = policy
                .audiences
                .iter()
                .any(|audience| token.claims.aud.contains(audience));
            audience && policy.allows_tenant_id(tid)
        })
    });
    match (matching.next(), matching.next()) {
        (Some(only), None) => Some(only.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};
    use tokengate_core::token::{DecodedToken, Limits};

    use super::*;
    use crate::config::Config;

    const TID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
    const OTHER: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const KEY: &str = r#"{"keys": [{"kty": "oct", "kid": "k", "alg": "HS256", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}"#;

    fn registry(tenants: &str) -> Registry {
        let yaml = format!("tenants:\n{tenants}");
        match Config::parse(&yaml, None, Path::new(".")) {
            Ok(config) => Registry::new(&config, 0),
            Err(errors) => panic!("{errors}\n{yaml}"),
        }
    }

    fn tenant(id: &str, issuer: &str, extra: &str) -> String {
        format!(
            "  - id: {id}\n    issuers: [\"{issuer}\"]\n    algorithms: [HS256]\n    jwks: {KEY}\n{extra}"
        )
    }

    /// The tenant chosen for a token with `claims`, by issuer, as if every tenant that shares
    /// its issuer had verified its signature; its id, or the reason.
    fn chosen(registry: &Registry, claims: &Value) -> Result<String, (Reason, bool)> {
        let token = format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let decoded = DecodedToken::decode(&token, &Limits::default()).expect("decodes");
        let parsed = decoded.parse().expect("parses");
        match choose(registry, "", &parsed, false) {
            Ok(Route::One(tenant)) => Ok(tenant.id().to_owned()),
            Ok(Route::Shared(signed)) => single_out_signed(&signed, &parsed)
                .map(|tenant| tenant.id().to_owned())
                .map_err(|rejection| (rejection.reason, false)),
            Err(unrouted) => Err((unrouted.rejection.reason, unrouted.no_issuer_match)),
        }
    }

    #[test]
    fn exact_issuers_and_templates_route_to_their_tenant() {
        let registry = registry(&format!(
            "{}{}",
            tenant("a", "https://a.example", ""),
            tenant(
                "entra",
                "https://login.example/{tenantid}/v2.0",
                &format!("    tenant_ids: [\"{TID}\"]\n    audiences: [api]\n")
            )
        ));
        assert_eq!(
            chosen(&registry, &json!({"iss": "https://a.example"})),
            Ok("a".into())
        );
        let own = json!({"iss": format!("https://login.example/{TID}/v2.0"), "tid": TID});
        assert_eq!(chosen(&registry, &own), Ok("entra".into()));
        let mismatched = json!({"iss": format!("https://login.example/{TID}/v2.0"), "tid": OTHER});
        assert_eq!(
            chosen(&registry, &mismatched),
            Err((Reason::UnknownTenant, true)),
            "a template matches only the token's own tid"
        );
        assert_eq!(
            chosen(&registry, &json!({"sub": "x"})),
            Err((Reason::UnknownTenant, false)),
            "no iss: no routing"
        );
    }

    #[test]
    fn tenants_sharing_an_issuer_are_told_apart_by_audience() {
        let registry = registry(&format!(
            "{}{}",
            tenant("orders", "https://idp.example", "    audiences: [orders]\n"),
            tenant(
                "billing",
                "https://idp.example",
                "    audiences: [billing]\n"
            )
        ));
        let token = |aud: &str| json!({"iss": "https://idp.example", "aud": aud});
        assert_eq!(chosen(&registry, &token("billing")), Ok("billing".into()));
        assert_eq!(chosen(&registry, &token("orders")), Ok("orders".into()));
        assert_eq!(
            chosen(&registry, &token("shipping")),
            Err((Reason::UnknownTenant, false)),
            "no audience singles one out"
        );
    }
}
