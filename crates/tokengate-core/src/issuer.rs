//! Accepted issuers: exact strings, or templates with a `{tenantid}` placeholder (Microsoft
//! Entra's multi-tenant endpoints publish `https://login.microsoftonline.com/{tenantid}/v2.0`).
//!
//! A template matches only an issuer whose placeholder positions all hold the token's own `tid`,
//! and that `tid` must be a GUID. Everything outside the placeholders matches exactly, so a
//! template can never accept another host or path.

use std::fmt;

/// The placeholder Entra uses in multi-tenant issuers.
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// Whether issuers with a `{tenantid}` template are left open: such an issuer accepts tokens of
/// every tenant of the provider (they share signing keys), so it needs a `tenant_ids`
/// allow-list, and audiences unless the operator accepts `any_audience` on purpose.
pub fn template_left_open<'a>(
    issuers: impl IntoIterator<Item = &'a str>,
    tenant_ids: &[String],
    audiences: &[String],
    any_audience: bool,
) -> bool {
    issuers
        .into_iter()
        .any(|issuer| issuer.contains(TENANT_PLACEHOLDER))
        && (tenant_ids.is_empty() || (audiences.is_empty() && !any_audience))
}

/// One accepted issuer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IssuerPattern {
    text: String,
    template: bool,
}

impl IssuerPattern {
    /// An issuer as configured or discovered; `{tenantid}` makes it a template.
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        let template = text.contains(TENANT_PLACEHOLDER);
        Self { text, template }
    }

    /// The issuer as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the issuer has a `{tenantid}` placeholder.
    pub fn is_template(&self) -> bool {
        self.template
    }

    /// Whether `iss` is this issuer. For a template, every placeholder must hold `tid`, the
    /// token's tenant id, which must be a GUID.
    pub fn matches(&self, iss: &str, tid: Option<&str>) -> bool {
        if !self.template {
            return self.text == iss;
        }
        let Some(tid) = tid.filter(|tid| is_guid(tid)) else {
            return false;
        };
        let mut rest = iss;
        for (index, part) in self.text.split(TENANT_PLACEHOLDER).enumerate() {
            if index > 0 {
                match rest.get(..tid.len()) {
                    Some(candidate) if candidate.eq_ignore_ascii_case(tid) => {
                        rest = &rest[tid.len()..]
                    }
                    _ => return false,
                }
            }
            match rest.strip_prefix(part) {
                Some(after) => rest = after,
                None => return false,
            }
        }
        rest.is_empty()
    }
}

impl fmt::Display for IssuerPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether `text` is a GUID in the 8-4-4-4-12 hexadecimal form.
pub fn is_guid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => *byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        })
}

/// `text` with every GUID replaced by `{tenantid}`: the shape of an Entra issuer.
pub fn shape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    while index < text.len() {
        match text.get(index..index + 36) {
            Some(candidate) if is_guid(candidate) => {
                out.push_str(TENANT_PLACEHOLDER);
                index += 36;
            }
            _ => {
                let Some(character) = text[index..].chars().next() else {
                    break;
                };
                out.push(character);
                index += character.len_utf8();
            }
        }
    }
    out
}

/// The first GUID in `text`, if any (the tenant id of an Entra issuer).
pub fn first_guid(text: &str) -> Option<&str> {
    (0..text.len().saturating_sub(35)).find_map(|start| {
        text.get(start..start + 36)
            .filter(|candidate| is_guid(candidate))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
    const OTHER: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    #[test]
    fn exact_issuers_match_exactly() {
        let issuer = IssuerPattern::new("https://idp.example/");
        assert!(issuer.matches("https://idp.example/", None));
        assert!(!issuer.matches("https://idp.example", None));
        assert!(!issuer.is_template());
    }

    #[test]
    fn templates_match_only_the_tokens_own_tenant() {
        let common = IssuerPattern::new("https://login.microsoftonline.com/{tenantid}/v2.0");
        let iss = format!("https://login.microsoftonline.com/{TID}/v2.0");
        assert!(common.matches(&iss, Some(TID)));
        assert!(
            !common.matches(&iss, Some(OTHER)),
            "tid must be the GUID in the issuer"
        );
        assert!(!common.matches(&iss, None), "no tid, no template match");
        for forged in [
            format!("https://login.microsoftonline.com/{TID}/v2.0/"),
            format!("https://login.microsoftonline.com.evil.example/{TID}/v2.0"),
            format!("https://evil.example/{TID}/v2.0"),
            format!("https://login.microsoftonline.com/{TID}x/v2.0"),
            "https://login.microsoftonline.com/not-a-guid/v2.0".to_owned(),
        ] {
            assert!(!common.matches(&forged, Some(TID)), "{forged}");
        }
        assert!(!common.matches("https://login.microsoftonline.com/evil/v2.0", Some("evil")));
        let ciam = IssuerPattern::new("https://{tenantid}.ciamlogin.com/{tenantid}/v2.0");
        assert!(ciam.matches(
            &format!("https://{TID}.ciamlogin.com/{TID}/v2.0"),
            Some(TID)
        ));
        assert!(!ciam.matches(
            &format!("https://{OTHER}.ciamlogin.com/{TID}/v2.0"),
            Some(TID)
        ));
    }

    #[test]
    fn shapes_and_guids() {
        assert!(is_guid(TID));
        assert!(!is_guid("9188040d6c674c5bb11236a304b66dad"));
        assert_eq!(
            shape(&format!("https://{TID}.ciamlogin.com/{TID}/")),
            "https://{tenantid}.ciamlogin.com/{tenantid}/"
        );
        assert_eq!(
            first_guid(&format!("https://sts.windows.net/{TID}/")),
            Some(TID)
        );
        assert_eq!(first_guid("https://sts.windows.net/"), None);
    }
}
