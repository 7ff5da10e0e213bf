//! Diagnostics that name the fix, run after the core (or routing) has rejected a token. Each
//! hint has a stable code (`ValidateTokenResponse.hint_code`) so tools can act on it, and a
//! sentence appended to the rejection's detail.
//!
//! Most hints are about Microsoft Entra ID, where the same provider issues tokens in several
//! shapes (v1 and v2, workforce and CIAM) and the wrong one is the most common cause of a 401.
//! The core states facts only; what a provider's tokens look like is known here.
//!
//! May import: the core only.

use tokengate_core::issuer::{self, IssuerPattern};
use tokengate_core::policy::Policy;
use tokengate_core::text::quote;
use tokengate_core::token::ParsedToken;
use tokengate_core::{Reason, Rejection};

/// Microsoft Graph's application id, the `aud` of Graph access tokens.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// A known cause of a rejection, with a stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hint {
    /// The issuer differs from an accepted one only by a trailing `/`.
    IssuerTrailingSlash,
    /// An Entra v1 token where a v2 token is expected.
    EntraV1Token,
    /// A token from the right Entra authority, but another tenant.
    EntraOtherTenant,
    /// The token's Entra tenant id is not in `tenant_ids`.
    EntraTenantNotAllowed,
    /// `aud` is the `api://` form of an accepted client id, or the reverse.
    AudienceAppIdUri,
    /// A Microsoft Graph access token sent to an API.
    EntraGraphToken,
}

impl Hint {
    /// The stable code.
    pub const fn code(self) -> &'static str {
        match self {
            Self::IssuerTrailingSlash => "issuer_trailing_slash",
            Self::EntraV1Token => "entra_v1_token",
            Self::EntraOtherTenant => "entra_other_tenant",
            Self::EntraTenantNotAllowed => "entra_tenant_not_allowed",
            Self::AudienceAppIdUri => "audience_app_id_uri",
            Self::EntraGraphToken => "entra_graph_token",
        }
    }
}

/// A known cause of a rejection by the core, for the policy the token was checked against.
pub(crate) fn rejected(
    rejection: &Rejection,
    token: &ParsedToken<'_>,
    policy: &Policy,
) -> Option<(Hint, String)> {
    match rejection.reason {
        Reason::InvalidSignature => signature_failure(token.header.has("nonce")),
        Reason::InvalidIssuer => issuer_not_accepted(token, policy),
        Reason::InvalidAudience => {
            let found: Vec<&str> = token.claims.aud.iter().collect();
            audience_mismatch(&found, &policy.audiences)
        }
        _ => None,
    }
}

/// A known cause for a token that no tenant accepts, from every issuer any tenant accepts. Only
/// the v1 hint applies here: the others would quote another tenant's issuer.
pub(crate) fn unrouted(
    token: &ParsedToken<'_>,
    accepted: &[IssuerPattern],
) -> Option<(Hint, String)> {
    let iss = token.claims.iss.as_deref()?;
    let tid = token.claims.string("tid");
    let version = token.claims.string("ver");
    issuer_mismatch(iss, tid.as_deref(), version.as_deref(), accepted)
        .filter(|(hint, _)| *hint == Hint::EntraV1Token)
}

/// Why the policy refused the token's issuer: either the issuer is accepted and the tenant-id
/// allow-list refused the token's `tid`, or the issuer itself is not accepted.
fn issuer_not_accepted(token: &ParsedToken<'_>, policy: &Policy) -> Option<(Hint, String)> {
    let iss = token.claims.iss.as_deref()?;
    let tid = token.claims.string("tid");
    if policy
        .issuers
        .iter()
        .any(|pattern| pattern.matches(iss, tid.as_deref()))
    {
        return Some((
            Hint::EntraTenantNotAllowed,
            "add the tenant id to tenant_ids if this organisation should be let in".to_owned(),
        ));
    }
    let version = token.claims.string("ver");
    issuer_mismatch(iss, tid.as_deref(), version.as_deref(), &policy.issuers)
}

/// The v2 issuer an Entra v1 issuer corresponds to, if `iss` is one.
pub(crate) fn entra_v2_issuer(iss: &str) -> Option<String> {
    let tid = issuer::first_guid(iss)?;
    if iss == format!("https://sts.windows.net/{tid}/") {
        return Some(format!("https://login.microsoftonline.com/{tid}/v2.0"));
    }
    if iss == format!("https://{tid}.ciamlogin.com/{tid}/")
        || iss == format!("https://{tid}.ciamlogin.com/{tid}")
    {
        return Some(format!("https://{tid}.ciamlogin.com/{tid}/v2.0"));
    }
    None
}

const V1_FIX: &str = "it is an Entra v1 token, but this tenant expects v2 tokens: set \"accessTokenAcceptedVersion\": 2 in the API's app registration manifest (or accept the v1 issuer)";

/// Why `iss` (with the token's `tid` and `ver`) matched none of `accepted`, if a known cause fits.
fn issuer_mismatch(
    iss: &str,
    tid: Option<&str>,
    version: Option<&str>,
    accepted: &[IssuerPattern],
) -> Option<(Hint, String)> {
    if let Some(near) = accepted
        .iter()
        .find(|pattern| pattern.as_str().trim_end_matches('/') == iss.trim_end_matches('/'))
    {
        return Some((
            Hint::IssuerTrailingSlash,
            format!(
                "it differs from {} only by a trailing '/', and issuers are compared exactly",
                quote(near.as_str())
            ),
        ));
    }
    let expects_v2 = accepted
        .iter()
        .any(|pattern| pattern.as_str().ends_with("/v2.0"));
    if expects_v2 {
        let v1_issuer = entra_v2_issuer(iss)
            .is_some_and(|v2| accepted.iter().any(|pattern| pattern.matches(&v2, tid)));
        let entra_v1 = version == Some("1.0") && iss.starts_with("https://sts.windows.net/");
        if v1_issuer || entra_v1 {
            return Some((Hint::EntraV1Token, V1_FIX.to_owned()));
        }
    }
    let token_tenant = issuer::first_guid(iss)?;
    let shape = issuer::shape(iss);
    let same_authority = accepted
        .iter()
        .find(|pattern| issuer::shape(pattern.as_str()) == shape && !pattern.is_template())?;
    let configured = issuer::first_guid(same_authority.as_str()).unwrap_or("?");
    Some((
        Hint::EntraOtherTenant,
        format!(
            "the token comes from the right authority but from tenant {token_tenant}, while this tenant accepts tenant {configured}: the client signed in to another directory, or tenant_id is wrong"
        ),
    ))
}

/// Why no audience matched, if a known cause fits.
fn audience_mismatch(found: &[&str], accepted: &[String]) -> Option<(Hint, String)> {
    if found.iter().any(|aud| {
        *aud == GRAPH_APP_ID || aud.trim_end_matches('/') == "https://graph.microsoft.com"
    }) {
        return Some((Hint::EntraGraphToken, GRAPH_FIX.to_owned()));
    }
    let stripped = |value: &str| value.strip_prefix("api://").unwrap_or(value).to_owned();
    let near = found.iter().find(|aud| {
        accepted
            .iter()
            .any(|allowed| stripped(allowed) == stripped(aud))
    })?;
    Some((
        Hint::AudienceAppIdUri,
        format!(
            "{} is the same application in the other form (client id vs api:// App ID URI): Entra v2 tokens carry the client id, v1 tokens the App ID URI; add it to audiences (or use backend_application_ids, which accepts both)",
            quote(near)
        ),
    ))
}

const GRAPH_FIX: &str = "this looks like an access token for Microsoft Graph (Graph's audience, or a \"nonce\" header that only Graph can verify), not for your API: request the token with your API's scope (e.g. api://<api-client-id>/.default) instead of Graph's";

/// A hint for a signature that does not verify, from the header alone.
fn signature_failure(header_has_nonce: bool) -> Option<(Hint, String)> {
    // Graph access tokens carry a `nonce` header and are only verifiable by Graph itself.
    header_has_nonce.then(|| (Hint::EntraGraphToken, GRAPH_FIX.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
    const OTHER: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    fn accepted(issuers: &[String]) -> Vec<IssuerPattern> {
        issuers.iter().map(IssuerPattern::new).collect()
    }

    #[test]
    fn v1_tokens_get_the_manifest_hint() {
        let v2 = accepted(&[format!("https://login.microsoftonline.com/{TID}/v2.0")]);
        let hint = issuer_mismatch(
            &format!("https://sts.windows.net/{TID}/"),
            Some(TID),
            Some("1.0"),
            &v2,
        );
        assert_eq!(hint.map(|(hint, _)| hint), Some(Hint::EntraV1Token));
        let ciam = accepted(&[format!("https://{TID}.ciamlogin.com/{TID}/v2.0")]);
        let hint = issuer_mismatch(
            &format!("https://{TID}.ciamlogin.com/{TID}/"),
            Some(TID),
            None,
            &ciam,
        );
        let (hint, text) = hint.expect("hint");
        assert_eq!(hint, Hint::EntraV1Token);
        assert!(text.contains("accessTokenAcceptedVersion"));
    }

    #[test]
    fn other_tenants_and_trailing_slashes_are_named() {
        let v2 = accepted(&[format!("https://login.microsoftonline.com/{TID}/v2.0")]);
        let (hint, text) = issuer_mismatch(
            &format!("https://login.microsoftonline.com/{OTHER}/v2.0"),
            Some(OTHER),
            Some("2.0"),
            &v2,
        )
        .expect("hint");
        assert_eq!(hint, Hint::EntraOtherTenant);
        assert!(text.contains(OTHER) && text.contains(TID), "{text}");
        let slash = accepted(&["https://idp.example".to_owned()]);
        let hint = issuer_mismatch("https://idp.example/", None, None, &slash);
        assert_eq!(hint.map(|(hint, _)| hint), Some(Hint::IssuerTrailingSlash));
        assert_eq!(
            issuer_mismatch("https://evil.example", None, None, &slash),
            None
        );
    }

    #[test]
    fn audience_forms_and_graph() {
        let accepted = vec!["api://orders".to_owned()];
        assert_eq!(
            audience_mismatch(&["orders"], &accepted).map(|(hint, _)| hint),
            Some(Hint::AudienceAppIdUri)
        );
        assert_eq!(
            audience_mismatch(&["https://graph.microsoft.com"], &accepted).map(|(hint, _)| hint),
            Some(Hint::EntraGraphToken)
        );
        assert_eq!(audience_mismatch(&["billing"], &accepted), None);
    }
}
