//! Compact JWS decoding: strict syntax first, then strict JSON, before any key or crypto work.
//!
//! [`DecodedToken::decode`] checks size and shape and base64url-decodes the three segments into one
//! buffer; [`DecodedToken::parse`] reads the header and the registered claims, borrowing from that
//! buffer. Neither looks at keys or policy: that is [`crate::verify`]'s job.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::json::{JsonError, JsonObject};
use crate::reason::Reason;
use crate::rejection::Rejection;
use crate::text::quote;

/// Default maximum size of a token, in bytes (16 KiB).
pub const DEFAULT_MAX_TOKEN_SIZE: usize = 16 * 1024;
/// Maximum nesting of objects and arrays in the header or the claims.
pub const MAX_JSON_DEPTH: usize = 16;
/// Longest signature accepted (an RSA-8192 signature is 1,024 bytes).
const MAX_SIGNATURE_LEN: usize = 1024;
/// Longest `kid` accepted, in bytes.
const MAX_KID_LEN: usize = 256;

/// Limits applied before a token is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of the compact token in bytes (after removing a `Bearer ` prefix).
    pub max_token_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_token_size: DEFAULT_MAX_TOKEN_SIZE,
        }
    }
}

/// Removes surrounding whitespace and a leading `Bearer ` (any case) from a token.
pub fn strip_bearer(token: &str) -> &str {
    let token = token.trim_matches(|c: char| c.is_ascii_whitespace());
    match token.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => {
            token[7..].trim_start_matches(' ')
        }
        _ => token,
    }
}

/// A token whose three segments were base64url-decoded; JSON not yet parsed.
#[derive(Debug)]
pub struct DecodedToken<'r> {
    signing_input: &'r str,
    /// Header bytes, then payload bytes, then signature bytes.
    buffer: Vec<u8>,
    header_end: usize,
    payload_end: usize,
}

impl<'r> DecodedToken<'r> {
    /// Checks size and shape and decodes the segments of a compact JWS.
    pub fn decode(token: &'r str, limits: &Limits) -> Result<Self, Rejection> {
        let token = strip_bearer(token);
        if token.len() > limits.max_token_size {
            return Err(Rejection::new(
                Reason::TokenTooLarge,
                format!(
                    "the token is {} bytes; the limit is {} bytes (max_token_size)",
                    token.len(),
                    limits.max_token_size
                ),
            ));
        }
        if token.is_empty() {
            return Err(Rejection::fixed(Reason::Malformed, "the token is empty"));
        }
        let dots = token.bytes().filter(|byte| *byte == b'.').count();
        match dots {
            2 => {}
            4 => {
                return Err(Rejection::fixed(
                    Reason::Malformed,
                    "the token has 5 segments: it is an encrypted JWE, but tokengate validates signed JWS access tokens",
                ));
            }
            _ => {
                return Err(Rejection::new(
                    Reason::Malformed,
                    format!(
                        "a compact JWS has 3 segments separated by '.', this token has {}",
                        dots + 1
                    ),
                ));
            }
        }
        let mut segments = token.splitn(3, '.');
        let (Some(header), Some(payload), Some(signature)) =
            (segments.next(), segments.next(), segments.next())
        else {
            return Err(Rejection::fixed(
                Reason::Malformed,
                "the token is not header.payload.signature",
            ));
        };
        let signing_input = &token[..header.len() + 1 + payload.len()];

        let mut buffer = Vec::with_capacity(token.len());
        decode_segment(header, "header", &mut buffer)?;
        let header_end = buffer.len();
        decode_segment(payload, "payload", &mut buffer)?;
        let payload_end = buffer.len();
        decode_segment(signature, "signature", &mut buffer)?;
        if buffer.len() - payload_end > MAX_SIGNATURE_LEN {
            return Err(Rejection::fixed(
                Reason::Malformed,
                "the signature is longer than any supported algorithm produces",
            ));
        }
        Ok(Self {
            signing_input,
            buffer,
            header_end,
            payload_end,
        })
    }

    /// The decoded payload: the claims JSON exactly as the issuer signed it.
    pub fn payload(&self) -> &[u8] {
        &self.buffer[self.header_end..self.payload_end]
    }

    /// Parses the header alone (for JWS-level checks; see [`crate::verify::verify_jws`]).
    pub fn parse_header(&self) -> Result<Header<'_>, Rejection> {
        Header::parse(&self.buffer[..self.header_end])
    }

    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, exactly as received.
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    /// The decoded signature.
    pub fn signature(&self) -> &[u8] {
        &self.buffer[self.payload_end..]
    }

    /// Parses the header and the registered claims.
    pub fn parse(&self) -> Result<ParsedToken<'_>, Rejection> {
        Ok(ParsedToken {
            header: self.parse_header()?,
            claims: Claims::parse(self.payload())?,
            signing_input: self.signing_input(),
            signature: self.signature(),
        })
    }
}

fn decode_segment(
    segment: &str,
    name: &'static str,
    buffer: &mut Vec<u8>,
) -> Result<(), Rejection> {
    URL_SAFE_NO_PAD.decode_vec(segment, buffer).map_err(|_| {
        Rejection::new(
            Reason::Malformed,
            format!(
                "the {name} is not canonical base64url (RFC 7515: alphabet A-Z a-z 0-9 - _, no padding, no whitespace)"
            ),
        )
    })
}

/// A decoded and parsed token, borrowing from its [`DecodedToken`].
#[derive(Debug)]
pub struct ParsedToken<'d> {
    /// The JOSE header.
    pub header: Header<'d>,
    /// The claim set.
    pub claims: Claims<'d>,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, exactly as received.
    pub signing_input: &'d [u8],
    /// The decoded signature.
    pub signature: &'d [u8],
}

/// The JOSE header of a token.
#[derive(Debug)]
pub struct Header<'d> {
    /// The `alg` value as written (not yet checked against anything).
    pub alg: Cow<'d, str>,
    /// The `kid`, if present.
    pub kid: Option<Cow<'d, str>>,
    /// The `typ`, if present.
    pub typ: Option<Cow<'d, str>>,
    members: JsonObject<'d>,
}

impl<'d> Header<'d> {
    fn parse(bytes: &'d [u8]) -> Result<Self, Rejection> {
        let members = JsonObject::parse(bytes, MAX_JSON_DEPTH)
            .map_err(|error| json_rejection("header", error))?;
        let alg = match members.get("alg") {
            Some(raw) => string_member(raw, "header", "alg")?,
            None => {
                return Err(Rejection::fixed(
                    Reason::Malformed,
                    "the header has no \"alg\"",
                ));
            }
        };
        let kid = members
            .get("kid")
            .map(|raw| string_member(raw, "header", "kid"))
            .transpose()?;
        if kid.as_ref().is_some_and(|kid| kid.len() > MAX_KID_LEN) {
            return Err(Rejection::fixed(
                Reason::Malformed,
                "the header \"kid\" is longer than 256 bytes",
            ));
        }
        let typ = members
            .get("typ")
            .map(|raw| string_member(raw, "header", "typ"))
            .transpose()?;
        Ok(Self {
            alg,
            kid,
            typ,
            members,
        })
    }

    /// Whether the header has member `name`.
    pub fn has(&self, name: &str) -> bool {
        self.members.contains(name)
    }

    /// The raw JSON of header member `name`.
    pub fn raw(&self, name: &str) -> Option<&'d RawValue> {
        self.members.get(name)
    }
}

/// The `aud` claim: one string or an array of strings.
#[derive(Debug, Default)]
pub enum Audience<'d> {
    /// No `aud` claim.
    #[default]
    Absent,
    /// `"aud": "x"`.
    One(Cow<'d, str>),
    /// `"aud": ["x", "y"]`.
    Many(Vec<Cow<'d, str>>),
}

impl Audience<'_> {
    /// Whether any audience equals `value` (exact, case-sensitive).
    pub fn contains(&self, value: &str) -> bool {
        match self {
            Self::Absent => false,
            Self::One(one) => one == value,
            Self::Many(many) => many.iter().any(|one| one == value),
        }
    }

    /// The audiences, in token order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let (one, many): (Option<&str>, &[Cow<'_, str>]) = match self {
            Self::Absent => (None, &[]),
            Self::One(one) => (Some(one.as_ref()), &[]),
            Self::Many(many) => (None, many.as_slice()),
        };
        one.into_iter().chain(many.iter().map(AsRef::as_ref))
    }
}

/// The claim set, with registered claims already type-checked.
#[derive(Debug)]
pub struct Claims<'d> {
    /// `iss`.
    pub iss: Option<Cow<'d, str>>,
    /// `sub`.
    pub sub: Option<Cow<'d, str>>,
    /// `aud`.
    pub aud: Audience<'d>,
    /// `exp` (NumericDate, may be fractional).
    pub exp: Option<f64>,
    /// `nbf`.
    pub nbf: Option<f64>,
    /// `iat`.
    pub iat: Option<f64>,
    members: JsonObject<'d>,
}

impl<'d> Claims<'d> {
    fn parse(bytes: &'d [u8]) -> Result<Self, Rejection> {
        let members = JsonObject::parse(bytes, MAX_JSON_DEPTH)
            .map_err(|error| json_rejection("payload", error))?;
        let mut claims = Self {
            iss: None,
            sub: None,
            aud: Audience::Absent,
            exp: None,
            nbf: None,
            iat: None,
            members,
        };
        // One pass over the members reads every registered claim.
        for (name, raw) in claims.members.members() {
            match name {
                "iss" => claims.iss = Some(string_member(raw, "payload", "iss")?),
                "sub" => claims.sub = Some(string_member(raw, "payload", "sub")?),
                "aud" => claims.aud = audience(raw)?,
                "exp" => claims.exp = Some(numeric_date(raw, "exp")?),
                "nbf" => claims.nbf = Some(numeric_date(raw, "nbf")?),
                "iat" => claims.iat = Some(numeric_date(raw, "iat")?),
                _ => {}
            }
        }
        Ok(claims)
    }

    /// The raw JSON of claim `name`.
    pub fn raw(&self, name: &str) -> Option<&'d RawValue> {
        self.members.get(name)
    }

    /// Claim `name` as a string, if present and a string.
    pub fn string(&self, name: &str) -> Option<Cow<'d, str>> {
        self.raw(name)
            .and_then(|raw| <Cow<'d, str>>::deserialize(raw).ok())
    }
}

fn json_rejection(part: &'static str, error: JsonError) -> Rejection {
    Rejection::new(Reason::Malformed, format!("the {part} {error}"))
}

fn string_member<'d>(
    raw: &'d RawValue,
    part: &'static str,
    name: &'static str,
) -> Result<Cow<'d, str>, Rejection> {
    <Cow<'d, str>>::deserialize(raw).map_err(|_| {
        Rejection::new(
            Reason::Malformed,
            format!("the {part} member \"{name}\" must be a string"),
        )
    })
}

fn numeric_date(raw: &RawValue, name: &'static str) -> Result<f64, Rejection> {
    let malformed = || {
        Rejection::new(
            Reason::Malformed,
            format!(
                "the claim \"{name}\" must be a NumericDate (a JSON number of seconds since 1970), got {}",
                quote(raw.get())
            ),
        )
    };
    if !raw
        .get()
        .starts_with(|c: char| c == '-' || c.is_ascii_digit())
    {
        return Err(malformed());
    }
    match serde_json::from_str::<f64>(raw.get()) {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(malformed()),
    }
}

fn audience<'d>(raw: &'d RawValue) -> Result<Audience<'d>, Rejection> {
    let malformed = || {
        Rejection::fixed(
            Reason::Malformed,
            "the claim \"aud\" must be a string or an array of strings",
        )
    };
    match raw.get().as_bytes().first() {
        Some(b'"') => <Cow<'d, str>>::deserialize(raw)
            .map(Audience::One)
            .map_err(|_| malformed()),
        Some(b'[') => {
            let items: Vec<&'d RawValue> =
                serde_json::from_str(raw.get()).map_err(|_| malformed())?;
            items
                .into_iter()
                .map(|item| <Cow<'d, str>>::deserialize(item).map_err(|_| malformed()))
                .collect::<Result<Vec<_>, _>>()
                .map(Audience::Many)
        }
        _ => Err(malformed()),
    }
}

#[cfg(test)]
mod tests;
