//! One JWK, read strictly and bound to the algorithms it may verify; or the reason it is
//! skipped (one bad key never takes the rest of the set down).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::{KeyOptions, VerifyingKey};
use crate::algorithm::{Algorithm, AlgorithmSet, KeyFamily};
use crate::crypto::{Components, PublicKey, is_small_order_ed25519};
use crate::json::JsonObject;
use crate::text::{quote, shorten};

/// Key material as read from a JWK, before it is bound to algorithms.
enum Decoded {
    /// Modulus and exponent, big-endian, without leading zero bytes.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// The uncompressed point `0x04 || x || y`.
    Ec { point: Vec<u8> },
    /// The 32-byte public key.
    Ed25519 { public: Vec<u8> },
    /// A shared secret.
    Secret(Vec<u8>),
}

impl Decoded {
    fn components(&self) -> Components<'_> {
        match self {
            Self::Rsa { n, e } => Components::Rsa { n, e },
            Self::Ec { point } => Components::Ec { point },
            Self::Ed25519 { public } => Components::Ed25519 { public },
            Self::Secret(secret) => Components::Secret { secret },
        }
    }
}

/// The members of a JWK that tokengate reads.
#[derive(Deserialize)]
struct Jwk<'a> {
    #[serde(borrow)]
    kty: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, rename = "use")]
    use_: Option<std::borrow::Cow<'a, str>>,
    key_ops: Option<Vec<String>>,
    #[serde(borrow)]
    alg: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    crv: Option<std::borrow::Cow<'a, str>>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    k: Option<String>,
}

type JwkFailure = (Option<String>, String);

/// Parses one JWK, or says why it is skipped.
pub fn parse_jwk(bytes: &[u8], options: &KeyOptions) -> Result<VerifyingKey, JwkFailure> {
    // Strictness first (duplicate members, depth); serde then reads the members we use.
    JsonObject::parse(bytes, 4).map_err(|error| (None, format!("the key {error}")))?;
    let jwk: Jwk<'_> = serde_json::from_slice(bytes).map_err(|error| {
        (
            None,
            format!("the key has a member of the wrong type: {error}"),
        )
    })?;
    let kid = jwk.kid.as_deref().map(shorten);
    let fail = |reason: String| (kid.clone(), reason);

    if let Some(use_) = jwk.use_.as_deref()
        && use_ != "sig"
    {
        return Err(fail(format!("\"use\" is {}, not \"sig\"", quote(use_))));
    }
    if let Some(ops) = &jwk.key_ops
        && !ops.iter().any(|op| op == "verify")
    {
        return Err(fail("\"key_ops\" does not include \"verify\"".into()));
    }
    let kty = jwk
        .kty
        .as_deref()
        .ok_or_else(|| fail("no \"kty\"".into()))?;
    let (family, decoded) = match kty {
        "RSA" => rsa_material(&jwk).map_err(&fail)?,
        "EC" => ec_material(&jwk).map_err(&fail)?,
        "OKP" => okp_material(&jwk).map_err(&fail)?,
        "oct" if options.allow_symmetric => hmac_material(&jwk).map_err(&fail)?,
        "oct" => {
            return Err(fail(
                "shared-secret (\"oct\") keys are accepted only from inline or file key sets, never from a remote JWKS".into(),
            ));
        }
        other => {
            return Err(fail(format!("unsupported \"kty\" {}", quote(other))));
        }
    };
    let bound = match jwk.alg.as_deref() {
        Some(name) => {
            let algorithm = Algorithm::from_name(name)
                .ok_or_else(|| fail(format!("unsupported \"alg\" {}", quote(name))))?;
            if algorithm.family() != family {
                return Err(fail(format!("\"alg\" {name} does not fit a {kty} key")));
            }
            AlgorithmSet::only(algorithm)
        }
        None if family == KeyFamily::Rsa => options.rsa_default,
        None => AlgorithmSet::family(family),
    };
    let algorithms = bound.intersection(options.allowed);
    if algorithms.is_empty() {
        let hint = if family == KeyFamily::Symmetric {
            " (list the HMAC algorithm, e.g. HS256, in the tenant's algorithms)"
        } else {
            ""
        };
        return Err(fail(format!(
            "the key is for {bound}, which the tenant's algorithms do not allow{hint}"
        )));
    }
    if let Decoded::Secret(secret) = &decoded {
        // HMAC keys must be at least as long as the hash output (RFC 7518 §3.2).
        let required_len = algorithms
            .iter()
            .filter_map(Algorithm::fixed_signature_len)
            .max()
            .unwrap_or(0);
        if secret.len() < required_len {
            return Err(fail(format!(
                "the shared secret is {} bytes; {algorithms} needs at least {required_len}",
                secret.len()
            )));
        }
    }
    let material = PublicKey::new(&decoded.components(), algorithms).map_err(&fail)?;
    Ok(VerifyingKey {
        kid: kid.map(String::into_boxed_str),
        algorithms,
        material,
    })
}

fn decode_field(jwk_field: Option<&String>, name: &str) -> Result<Vec<u8>, String> {
    let text = jwk_field.ok_or_else(|| format!("no \"{name}\""))?;
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| format!("\"{name}\" is not base64url"))
}

fn rsa_material(jwk: &Jwk<'_>) -> Result<(KeyFamily, Decoded), String> {
    let n = decode_field(jwk.n.as_ref(), "n")?;
    let e = decode_field(jwk.e.as_ref(), "e")?;
    let n_trimmed = trim_leading_zeros(&n);
    let bits = match n_trimmed.first() {
        Some(first) => n_trimmed.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    };
    if !(2048..=8192).contains(&bits) {
        return Err(format!(
            "the RSA modulus is {bits} bits; 2048 to 8192 are accepted"
        ));
    }
    if n_trimmed.last().is_some_and(|b| b & 1 == 0) {
        return Err("the RSA modulus is even, so it is not an RSA modulus".into());
    }
    let e_trimmed = trim_leading_zeros(&e);
    let odd = e_trimmed.last().is_some_and(|b| b & 1 == 1);
    let small = e_trimmed.len() == 1 && e_trimmed[0] < 3;
    if e_trimmed.is_empty() || e_trimmed.len() > 4 || !odd || small {
        return Err("the RSA exponent must be odd, at least 3 and at most 32 bits".into());
    }
    Ok((
        KeyFamily::Rsa,
        Decoded::Rsa {
            n: n_trimmed.to_vec(),
            e: e_trimmed.to_vec(),
        },
    ))
}

fn ec_material(jwk: &Jwk<'_>) -> Result<(KeyFamily, Decoded), String> {
    let (family, size) = match jwk.crv.as_deref() {
        Some("P-256") => (KeyFamily::EcP256, 32),
        Some("P-384") => (KeyFamily::EcP384, 48),
        Some(other) => {
            return Err(format!("unsupported EC curve {}", quote(other)));
        }
        None => return Err("no \"crv\"".into()),
    };
    let x = decode_field(jwk.x.as_ref(), "x")?;
    let y = decode_field(jwk.y.as_ref(), "y")?;
    if x.len() != size || y.len() != size {
        return Err(format!("EC coordinates must be {size} bytes each"));
    }
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok((family, Decoded::Ec { point }))
}

fn okp_material(jwk: &Jwk<'_>) -> Result<(KeyFamily, Decoded), String> {
    match jwk.crv.as_deref() {
        Some("Ed25519") => {}
        Some(other) => {
            return Err(format!("unsupported OKP curve {}", quote(other)));
        }
        None => return Err("no \"crv\"".into()),
    }
    let public = decode_field(jwk.x.as_ref(), "x")?;
    if public.len() != 32 {
        return Err("an Ed25519 public key is 32 bytes".into());
    }
    if is_small_order_ed25519(&public) {
        return Err(
            "the Ed25519 key is a point of small order, for which anyone can forge signatures"
                .into(),
        );
    }
    Ok((KeyFamily::Ed25519, Decoded::Ed25519 { public }))
}

fn hmac_material(jwk: &Jwk<'_>) -> Result<(KeyFamily, Decoded), String> {
    let secret = decode_field(jwk.k.as_ref(), "k")?;
    if secret.is_empty() {
        return Err("the shared secret is empty".into());
    }
    Ok((KeyFamily::Symmetric, Decoded::Secret(secret)))
}

fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}
