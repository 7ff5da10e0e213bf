//! The provider preset fields of a tenant (`provider: entra` with `tenant_id`, `kind`, `policy`,
//! `domain`, `authority_host`, `accept_v1_tokens`): checked here, turned into endpoints by
//! [`super::entra`]. Without a provider, these fields are errors.

use super::check::Checker;
use super::entra::{EntraEndpoints, EntraKind, EntraSettings, endpoints};
use super::raw::RawTenant;

impl Checker {
    /// The `provider: entra` preset's endpoints, or None without a provider. Entra-only fields
    /// without `provider: entra` are errors.
    pub(super) fn entra(
        &mut self,
        raw: &RawTenant,
        path: &str,
        line: u64,
    ) -> Option<EntraEndpoints> {
        let provider = match &raw.provider {
            Some(provider) if provider.value == "entra" => provider,
            Some(provider) => {
                self.error(
                    provider.referenced.line(),
                    format!("{path}.provider"),
                    format!(
                        "{:?} is not a known provider; the only one is \"entra\"",
                        provider.value
                    ),
                );
                return None;
            }
            None => {
                let stray = [
                    (
                        "tenant_id",
                        raw.tenant_id.as_ref().map(|v| v.referenced.line()),
                    ),
                    ("kind", raw.kind.as_ref().map(|v| v.referenced.line())),
                    ("policy", raw.policy.as_ref().map(|v| v.referenced.line())),
                    ("domain", raw.domain.as_ref().map(|v| v.referenced.line())),
                    (
                        "authority_host",
                        raw.authority_host.as_ref().map(|v| v.referenced.line()),
                    ),
                    ("accept_v1_tokens", raw.accept_v1_tokens.then_some(line)),
                ];
                for (field, field_line) in stray {
                    if let Some(field_line) = field_line {
                        self.error(
                            field_line,
                            format!("{path}.{field}"),
                            "applies only with provider: entra",
                        );
                    }
                }
                return None;
            }
        };
        let Some(tenant_id) = &raw.tenant_id else {
            self.error(
                provider.referenced.line(),
                format!("{path}.tenant_id"),
                "provider: entra needs the tenant id",
            );
            return None;
        };
        let settings = EntraSettings {
            tenant_id: &tenant_id.value,
            kind: raw
                .kind
                .as_ref()
                .map_or_else(EntraKind::default, |kind| kind.value),
            policy: raw.policy.as_ref().map(|value| value.value.as_str()),
            domain: raw.domain.as_ref().map(|value| value.value.as_str()),
            authority_host: raw
                .authority_host
                .as_ref()
                .map(|value| value.value.as_str()),
            accept_v1_tokens: raw.accept_v1_tokens,
        };
        match endpoints(&settings) {
            Ok(endpoints) => Some(endpoints),
            Err((field, message)) => {
                self.error(
                    tenant_id.referenced.line(),
                    format!("{path}.{field}"),
                    message,
                );
                None
            }
        }
    }
}
