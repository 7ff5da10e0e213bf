//! A tenant's claim policy: what a token with a valid signature must also satisfy.
//!
//! Secure choices are the defaults: a configured issuer or audience makes that claim required,
//! and `exp` is required unless the tenant opts out with `require_expiration: false`.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::value::RawValue;

use crate::algorithm::AlgorithmSet;
use crate::issuer::IssuerPattern;
use crate::reason::Reason;
use crate::rejection::Rejection;
use crate::text::quote;
use crate::token::{Audience, Claims};

/// Default clock skew, in seconds (Envoy's default; Microsoft's is 300).
pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 60;

/// How a required claim's values are matched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatchMode {
    /// At least one of the configured values must be present.
    #[default]
    Any,
    /// Every configured value must be present.
    All,
}

/// A configured claim value. It matches a claim value of the same JSON type only: `true`
/// matches `true` (or an array holding `true`), never `"true"`; `"1"` never matches `1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimValue {
    /// A JSON string; with a separator, one of the parts of a string claim.
    String(String),
    /// A JSON number; numbers match when their values are equal (`1` matches `1.0`).
    Number(serde_json::Number),
    /// `true` or `false`.
    Bool(bool),
}

impl ClaimValue {
    /// The value of a JSON scalar; `None` for `null`, arrays and objects.
    pub fn of_json(value: &serde_json::Value) -> Option<Self> {
        match value {
            serde_json::Value::String(text) => Some(Self::String(text.clone())),
            serde_json::Value::Number(number) => Some(Self::Number(number.clone())),
            serde_json::Value::Bool(flag) => Some(Self::Bool(*flag)),
            _ => None,
        }
    }

    /// Whether `other` is the same value of the same type.
    fn matches(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::String(a), Self::String(b)) => a == b,
            (Self::Bool(a), Self::Bool(b)) => a == b,
            (Self::Number(a), Self::Number(b)) => same_number(a, b),
            _ => false,
        }
    }

    /// The value as JSON text, for details: strings quoted, so `"true"` and `true` differ.
    fn shown(&self) -> String {
        match self {
            Self::String(text) => quote(text),
            Self::Number(number) => crate::text::shorten(&number.to_string()),
            Self::Bool(flag) => flag.to_string(),
        }
    }
}

/// Whether two JSON numbers have the same value: integers exactly, others as doubles.
fn same_number(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
        return a == b;
    }
    a.as_f64() == b.as_f64()
}

/// A claim that must be present, optionally with given values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequiredClaim {
    /// The claim name, e.g. `scp` or `roles`.
    pub claim: String,
    /// Values to look for (each matches only a claim value of its own JSON type); empty means
    /// presence is enough.
    pub values: Vec<ClaimValue>,
    /// Whether any or all of `values` must be present.
    pub mode: MatchMode,
    /// Splits a string claim into values (e.g. `" "` for `scp`); `None` compares the whole string.
    pub separator: Option<String>,
}

/// Everything a tenant requires of a token beyond its signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Accepted issuers (exact, or `{tenantid}` templates); empty accepts any issuer.
    pub issuers: Vec<IssuerPattern>,
    /// Accepted Entra tenant ids (`tid`); empty accepts any.
    pub tenant_ids: Vec<String>,
    /// Accepted `aud` values; empty accepts any audience.
    pub audiences: Vec<String>,
    /// The algorithm allow-list.
    pub algorithms: AlgorithmSet,
    /// Tolerance for `exp`, `nbf` and `iat`, in seconds.
    pub clock_skew: u64,
    /// Whether `exp` must be present.
    pub require_expiration: bool,
    /// Longest accepted lifetime (`exp - iat`), in seconds.
    pub max_lifetime: Option<u64>,
    /// Claims that must be present (with values).
    pub required_claims: Vec<RequiredClaim>,
    /// Accepted `typ` header values (media types, case-insensitive); empty accepts any.
    pub token_types: Vec<String>,
    /// Accepted client applications (`azp`, or `appid` in Entra v1 tokens); empty accepts any.
    pub client_application_ids: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            tenant_ids: Vec::new(),
            audiences: Vec::new(),
            algorithms: AlgorithmSet::asymmetric(),
            clock_skew: DEFAULT_CLOCK_SKEW_SECS,
            require_expiration: true,
            max_lifetime: None,
            required_claims: Vec::new(),
            token_types: Vec::new(),
            client_application_ids: Vec::new(),
        }
    }
}

impl Policy {
    /// Checks the `typ` header against `token_types` (RFC 7515 §4.1.9 media-type comparison).
    pub fn check_type(&self, typ: Option<&str>) -> Result<(), Rejection> {
        if self.token_types.is_empty() {
            return Ok(());
        }
        let accepted = typ.is_some_and(|typ| {
            self.token_types
                .iter()
                .any(|allowed| same_media_type(allowed, typ))
        });
        if accepted {
            return Ok(());
        }
        Err(Rejection::new(
            Reason::InvalidType,
            format!(
                "the header \"typ\" is {}; this tenant accepts {} (an ID token or another kind of JWT was probably sent where an access token belongs)",
                typ.map_or_else(|| "absent".to_owned(), quote),
                list(&self.token_types)
            ),
        ))
    }

    /// Checks time, issuer, audience, client and required claims, in that order.
    pub fn check_claims(&self, claims: &Claims<'_>, now: i64) -> Result<(), Rejection> {
        self.check_times(TokenTimes::of(claims), now)?;
        self.check_issuer(claims)?;
        self.check_audience(claims)?;
        self.check_client(claims)?;
        for required in &self.required_claims {
            check_required(required, claims.raw(&required.claim))?;
        }
        Ok(())
    }

    /// Checks `exp`, `nbf`, `iat` and the lifetime against `now`, with the clock skew. Also
    /// run on every hit of the verified-token cache, so a cached token expires on time.
    pub fn check_times(&self, claims: TokenTimes, now: i64) -> Result<(), Rejection> {
        let now_f = now as f64;
        let skew = self.clock_skew as f64;
        match claims.exp {
            None if self.require_expiration || self.max_lifetime.is_some() => {
                return Err(Rejection::fixed(
                    Reason::MissingClaim,
                    "the token has no \"exp\" claim; access tokens must expire (set require_expiration: false to accept such tokens)",
                ));
            }
            Some(exp) if now_f >= exp + skew => {
                return Err(Rejection::new(
                    Reason::Expired,
                    format!(
                        "the token expired at {} ({} ago, beyond the {}s clock skew); get a new token",
                        timestamp(exp),
                        span(now_f - exp),
                        self.clock_skew
                    ),
                ));
            }
            _ => {}
        }
        if let Some(nbf) = claims.nbf
            && nbf > now_f + skew
        {
            return Err(Rejection::new(
                Reason::NotYetValid,
                format!(
                    "the token is not valid before {} (\"nbf\", {} from now, beyond the {}s clock skew); check the clocks of issuer and gateway",
                    timestamp(nbf),
                    span(nbf - now_f),
                    self.clock_skew
                ),
            ));
        }
        if let Some(iat) = claims.iat
            && iat > now_f + skew
        {
            return Err(Rejection::new(
                Reason::NotYetValid,
                format!(
                    "the token was issued in the future, at {} (\"iat\", {} from now, beyond the {}s clock skew); check the clocks of issuer and gateway",
                    timestamp(iat),
                    span(iat - now_f),
                    self.clock_skew
                ),
            ));
        }
        if let (Some(max), Some(exp)) = (self.max_lifetime, claims.exp) {
            let start = claims.iat.unwrap_or(now_f);
            let lifetime = exp - start;
            if lifetime > max as f64 {
                return Err(Rejection::new(
                    Reason::LifetimeTooLong,
                    format!(
                        "the token lives {} (from {} to {}); this tenant accepts at most {} (max_lifetime)",
                        span(lifetime),
                        if claims.iat.is_some() {
                            "\"iat\""
                        } else {
                            "now"
                        },
                        "\"exp\"",
                        span(max as f64)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_issuer(&self, claims: &Claims<'_>) -> Result<(), Rejection> {
        if self.issuers.is_empty() {
            return Ok(());
        }
        let Some(iss) = claims.iss.as_deref() else {
            return Err(Rejection::fixed(
                Reason::MissingClaim,
                "the token has no \"iss\" claim, and this tenant requires one",
            ));
        };
        let tid = claims.string("tid");
        let tid = tid.as_deref();
        if self.issuers.iter().any(|issuer| issuer.matches(iss, tid)) {
            return self.check_tenant_id(tid);
        }
        let accepted: Vec<&str> = self.issuers.iter().map(IssuerPattern::as_str).collect();
        Err(Rejection::new(
            Reason::InvalidIssuer,
            format!(
                "the issuer {} is not one of this tenant's issuers {}",
                quote(iss),
                list(&accepted)
            ),
        ))
    }

    /// Whether the token's tenant id (`tid`) passes the `tenant_ids` allow-list (an empty list
    /// allows any, and no `tid`).
    pub fn allows_tenant_id(&self, tid: Option<&str>) -> bool {
        self.tenant_ids.is_empty()
            || tid.is_some_and(|tid| {
                self.tenant_ids
                    .iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(tid))
            })
    }

    fn check_tenant_id(&self, tid: Option<&str>) -> Result<(), Rejection> {
        if self.allows_tenant_id(tid) {
            return Ok(());
        }
        Err(Rejection::new(
            Reason::InvalidIssuer,
            format!(
                "the token's tenant id (\"tid\") {} is not among this tenant's tenant_ids",
                tid.map_or_else(|| "is absent, and".to_owned(), quote),
            ),
        ))
    }

    fn check_audience(&self, claims: &Claims<'_>) -> Result<(), Rejection> {
        if self.audiences.is_empty() {
            return Ok(());
        }
        if matches!(claims.aud, Audience::Absent) {
            return Err(Rejection::fixed(
                Reason::MissingClaim,
                "the token has no \"aud\" claim, and this tenant requires one",
            ));
        }
        if self
            .audiences
            .iter()
            .any(|audience| claims.aud.contains(audience))
        {
            return Ok(());
        }
        let found: Vec<&str> = claims.aud.iter().collect();
        let detail = format!(
            "the token is for audience {}; this tenant accepts {}",
            list(&found),
            list(&self.audiences)
        );
        Err(Rejection::new(Reason::InvalidAudience, detail))
    }

    fn check_client(&self, claims: &Claims<'_>) -> Result<(), Rejection> {
        if self.client_application_ids.is_empty() {
            return Ok(());
        }
        for name in ["azp", "appid"] {
            if claims.raw(name).is_some() && claims.string(name).is_none() {
                return Err(Rejection::new(
                    Reason::Malformed,
                    format!("the claim \"{name}\" must be a string"),
                ));
            }
        }
        let Some(client) = claims.string("azp").or_else(|| claims.string("appid")) else {
            return Err(Rejection::fixed(
                Reason::MissingClaim,
                "the token names no client application (\"azp\", or \"appid\" in v1 tokens), and this tenant allows only listed clients",
            ));
        };
        if self
            .client_application_ids
            .iter()
            .any(|allowed| *allowed == client)
        {
            return Ok(());
        }
        Err(Rejection::new(
            Reason::ClientNotAllowed,
            format!(
                "the client application {} is not in client_application_ids {}",
                quote(&client),
                list(&self.client_application_ids)
            ),
        ))
    }
}

fn check_required(required: &RequiredClaim, raw: Option<&RawValue>) -> Result<(), Rejection> {
    let Some(raw) = raw else {
        return Err(Rejection::new(
            Reason::MissingClaim,
            format!("the required claim {} is absent", quote(&required.claim)),
        ));
    };
    if required.values.is_empty() {
        return Ok(());
    }
    let found = claim_values(raw, required.separator.as_deref());
    let has = |value: &ClaimValue| found.iter().any(|candidate| candidate.matches(value));
    let satisfied = match required.mode {
        MatchMode::Any => required.values.iter().any(has),
        MatchMode::All => required.values.iter().all(has),
    };
    if satisfied {
        return Ok(());
    }
    Err(Rejection::new(
        Reason::ClaimMismatch,
        format!(
            "the claim {} holds {}; this tenant requires {} of {}",
            quote(&required.claim),
            shown(&found),
            match required.mode {
                MatchMode::Any => "any",
                MatchMode::All => "all",
            },
            shown(&required.values)
        ),
    ))
}

/// The values of a claim: a (split) string, the scalar items of an array, or a scalar.
fn claim_values(raw: &RawValue, separator: Option<&str>) -> Vec<ClaimValue> {
    let value: serde_json::Value = match serde_json::from_str(raw.get()) {
        Ok(value) => value,
        Err(_) => return Vec::new(),
    };
    match &value {
        serde_json::Value::String(text) => match separator {
            Some(separator) if !separator.is_empty() => text
                .split(separator)
                .filter(|part| !part.is_empty())
                .map(|part| ClaimValue::String(part.to_owned()))
                .collect(),
            _ => vec![ClaimValue::String(text.clone())],
        },
        serde_json::Value::Array(items) => items.iter().filter_map(ClaimValue::of_json).collect(),
        other => ClaimValue::of_json(other).into_iter().collect(),
    }
}

/// Claim values as a JSON-like list, for details (shortened: claim values come from tokens).
fn shown(values: &[ClaimValue]) -> String {
    let shown: Vec<String> = values.iter().take(20).map(ClaimValue::shown).collect();
    let more = if values.len() > 20 { ", …" } else { "" };
    format!("[{}{more}]", shown.join(", "))
}

/// Compares two `typ` media types case-insensitively, with `application/` implied when absent
/// (RFC 7515 §4.1.9). Nothing is trimmed: `" at+jwt"` is not `at+jwt`.
fn same_media_type(a: &str, b: &str) -> bool {
    let normalise = |value: &str| {
        let lower = value.to_ascii_lowercase();
        match lower.strip_prefix("application/") {
            Some(rest) => rest.to_owned(),
            None => lower,
        }
    };
    normalise(a) == normalise(b)
}

fn list<S: AsRef<str>>(values: &[S]) -> String {
    let quoted: Vec<String> = values.iter().map(|value| quote(value.as_ref())).collect();
    format!("[{}]", quoted.join(", "))
}

fn timestamp(seconds: f64) -> String {
    if !(0.0..=253_402_300_799.0).contains(&seconds) {
        return format!("{seconds} (seconds since 1970)");
    }
    let time = UNIX_EPOCH + Duration::from_secs(seconds as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

fn span(seconds: f64) -> String {
    let seconds = seconds.abs().min(1e12) as u64;
    humantime::format_duration(Duration::from_secs(seconds)).to_string()
}

/// The time claims of a token: what the time checks read, and all a cached verdict keeps of them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TokenTimes {
    /// `exp`.
    pub exp: Option<f64>,
    /// `nbf`.
    pub nbf: Option<f64>,
    /// `iat`.
    pub iat: Option<f64>,
}

impl TokenTimes {
    /// The time claims of parsed claims.
    pub fn of(claims: &Claims<'_>) -> Self {
        Self {
            exp: claims.exp,
            nbf: claims.nbf,
            iat: claims.iat,
        }
    }
}

#[cfg(test)]
mod tests;
