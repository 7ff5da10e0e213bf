//! The `provider: entra` preset: a Microsoft Entra tenant in a few lines of YAML. It builds the
//! discovery URL and the issuers from the tenant id and the kind of tenant.
//!
//! ```yaml
//! - id: contoso
//!   provider: entra
//!   tenant_id: 00000000-0000-0000-0000-000000000000
//!   kind: ciam                    # workforce (default) | ciam | b2c
//!   backend_application_ids: [11111111-1111-1111-1111-111111111111]
//! ```

use serde::{Deserialize, Serialize};

use tokengate_core::issuer::{TENANT_PLACEHOLDER, is_guid};

/// The consumer (personal Microsoft account) tenant.
const CONSUMERS_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
/// The public-cloud authority host.
const PUBLIC_AUTHORITY: &str = "login.microsoftonline.com";

/// Which kind of Entra tenant.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum EntraKind {
    /// Microsoft Entra ID (workforce), including the `common` and `organizations` endpoints.
    #[default]
    Workforce,
    /// Microsoft Entra External ID for customers (`*.ciamlogin.com`).
    Ciam,
    /// Azure AD B2C (`*.b2clogin.com` or a custom domain, with a user flow).
    B2c,
}

/// What the preset needs.
#[derive(Debug)]
pub(super) struct EntraSettings<'a> {
    /// Tenant GUID; for workforce also a domain name, `common`, `organizations` or `consumers`.
    pub tenant_id: &'a str,
    /// The kind of tenant.
    pub kind: EntraKind,
    /// B2C user flow (policy), e.g. `B2C_1_signin`.
    pub policy: Option<&'a str>,
    /// Host for B2C (required) or CIAM (default `<tenant-id>.ciamlogin.com`).
    pub domain: Option<&'a str>,
    /// Workforce authority host (default `login.microsoftonline.com`; sovereign clouds differ).
    pub authority_host: Option<&'a str>,
    /// Whether v1 tokens (issuer without `/v2.0`) are accepted too.
    pub accept_v1_tokens: bool,
}

/// The discovery URL and issuers the preset stands for.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct EntraEndpoints {
    /// OIDC discovery document.
    pub discovery_url: String,
    /// Accepted issuers; empty means "the discovery document's issuer".
    pub issuers: Vec<String>,
}

/// Builds the endpoints, or says which setting is missing or wrong (as (field, message)).
pub(super) fn endpoints(
    settings: &EntraSettings<'_>,
) -> Result<EntraEndpoints, (&'static str, String)> {
    // Entra writes tenant GUIDs in lower case in its issuers.
    let lowered = settings.tenant_id.trim().to_ascii_lowercase();
    let tenant = if is_guid(&lowered) {
        lowered.as_str()
    } else {
        settings.tenant_id.trim()
    };
    if tenant.is_empty() {
        return Err(("tenant_id", "must name the Entra tenant".into()));
    }
    let needs_guid = || {
        if is_guid(tenant) {
            Ok(())
        } else {
            Err((
                "tenant_id",
                format!("must be the tenant's GUID for kind {:?}", settings.kind).to_lowercase(),
            ))
        }
    };
    match settings.kind {
        EntraKind::Workforce => {
            if settings.domain.is_some() || settings.policy.is_some() {
                return Err((
                    "domain",
                    "domain and policy apply to kind ciam or b2c only".into(),
                ));
            }
            let host = settings.authority_host.unwrap_or(PUBLIC_AUTHORITY);
            let discovery_url =
                format!("https://{host}/{tenant}/v2.0/.well-known/openid-configuration");
            let public = host == PUBLIC_AUTHORITY;
            let issuer_tenant = match tenant {
                "common" | "organizations" => Some(TENANT_PLACEHOLDER),
                "consumers" => Some(CONSUMERS_TENANT),
                guid if is_guid(guid) => Some(guid),
                // A domain name: the discovery document names the GUID issuer.
                _ => None,
            };
            let mut issuers = Vec::new();
            if let Some(issuer_tenant) = issuer_tenant {
                issuers.push(format!("https://{host}/{issuer_tenant}/v2.0"));
                if settings.accept_v1_tokens && public {
                    issuers.push(format!("https://sts.windows.net/{issuer_tenant}/"));
                }
            }
            if settings.accept_v1_tokens && (!public || issuer_tenant.is_none()) {
                return Err((
                    "accept_v1_tokens",
                    "needs a tenant GUID (or common/organizations) on the public cloud; list the v1 issuer in issuers instead".into(),
                ));
            }
            Ok(EntraEndpoints {
                discovery_url,
                issuers,
            })
        }
        EntraKind::Ciam => {
            needs_guid()?;
            if settings.policy.is_some() || settings.authority_host.is_some() {
                return Err((
                    "policy",
                    "policy and authority_host do not apply to kind ciam".into(),
                ));
            }
            let default_host = format!("{tenant}.ciamlogin.com");
            let host = settings.domain.unwrap_or(&default_host);
            let mut issuers = vec![format!("https://{tenant}.ciamlogin.com/{tenant}/v2.0")];
            if settings.accept_v1_tokens {
                issuers.push(format!("https://{tenant}.ciamlogin.com/{tenant}/"));
            }
            Ok(EntraEndpoints {
                discovery_url: format!(
                    "https://{host}/{tenant}/v2.0/.well-known/openid-configuration"
                ),
                issuers,
            })
        }
        EntraKind::B2c => {
            needs_guid()?;
            let Some(domain) = settings.domain else {
                return Err((
                    "domain",
                    "kind b2c needs the B2C domain, e.g. contoso.b2clogin.com".into(),
                ));
            };
            let Some(policy) = settings.policy else {
                return Err((
                    "policy",
                    "kind b2c needs the user flow, e.g. B2C_1_signin".into(),
                ));
            };
            if settings.accept_v1_tokens || settings.authority_host.is_some() {
                return Err((
                    "accept_v1_tokens",
                    "accept_v1_tokens and authority_host do not apply to kind b2c".into(),
                ));
            }
            Ok(EntraEndpoints {
                discovery_url: format!(
                    "https://{domain}/{tenant}/{policy}/v2.0/.well-known/openid-configuration"
                ),
                issuers: vec![format!("https://{domain}/{tenant}/v2.0/")],
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: &str = "00044076-1234-4a5b-8c9d-00ee0c08e825";

    fn settings(tenant_id: &str, kind: EntraKind) -> EntraSettings<'_> {
        EntraSettings {
            tenant_id,
            kind,
            policy: None,
            domain: None,
            authority_host: None,
            accept_v1_tokens: false,
        }
    }

    #[test]
    fn each_kind_builds_its_endpoints() {
        let workforce = endpoints(&settings(TID, EntraKind::Workforce)).expect("workforce");
        assert_eq!(
            workforce.discovery_url,
            format!(
                "https://login.microsoftonline.com/{TID}/v2.0/.well-known/openid-configuration"
            )
        );
        assert_eq!(
            workforce.issuers,
            [format!("https://login.microsoftonline.com/{TID}/v2.0")]
        );
        let ciam = endpoints(&EntraSettings {
            accept_v1_tokens: true,
            ..settings(TID, EntraKind::Ciam)
        })
        .expect("ciam");
        assert_eq!(
            ciam.discovery_url,
            format!("https://{TID}.ciamlogin.com/{TID}/v2.0/.well-known/openid-configuration")
        );
        assert_eq!(
            ciam.issuers,
            [
                format!("https://{TID}.ciamlogin.com/{TID}/v2.0"),
                format!("https://{TID}.ciamlogin.com/{TID}/")
            ]
        );
        let b2c = endpoints(&EntraSettings {
            domain: Some("contoso.b2clogin.com"),
            policy: Some("B2C_1_signin"),
            ..settings(TID, EntraKind::B2c)
        })
        .expect("b2c");
        assert_eq!(
            b2c.discovery_url,
            format!(
                "https://contoso.b2clogin.com/{TID}/B2C_1_signin/v2.0/.well-known/openid-configuration"
            )
        );
        assert_eq!(
            b2c.issuers,
            [format!("https://contoso.b2clogin.com/{TID}/v2.0/")]
        );
        let common =
            endpoints(&settings("organizations", EntraKind::Workforce)).expect("organizations");
        assert_eq!(
            common.issuers,
            ["https://login.microsoftonline.com/{tenantid}/v2.0"]
        );
        let by_name =
            endpoints(&settings("contoso.onmicrosoft.com", EntraKind::Workforce)).expect("name");
        assert!(
            by_name.issuers.is_empty(),
            "the discovery document names the issuer"
        );
    }

    #[test]
    fn upper_case_tenant_guids_are_written_as_entra_writes_them() {
        let upper = TID.to_ascii_uppercase();
        let endpoints = endpoints(&settings(&upper, EntraKind::Workforce)).expect("workforce");
        assert_eq!(
            endpoints.issuers,
            [format!("https://login.microsoftonline.com/{TID}/v2.0")]
        );
    }

    #[test]
    fn wrong_combinations_are_refused() {
        assert!(endpoints(&settings("contoso", EntraKind::Ciam)).is_err());
        assert!(endpoints(&settings(TID, EntraKind::B2c)).is_err());
        assert!(
            endpoints(&EntraSettings {
                policy: Some("p"),
                ..settings(TID, EntraKind::Workforce)
            })
            .is_err()
        );
        assert!(endpoints(&settings("", EntraKind::Workforce)).is_err());
    }
}
