//! Keys from PEM (`pem`, `pem_file`): X.509 certificates and public keys (SPKI, or PKCS#1 RSA),
//! as a gateway team holds them (APIM's `issuer-signing-keys`, a mounted Kubernetes Secret).
//!
//! Each entry becomes the JWK its key would have (`kty` with `n`/`e`, `crv` with `x`/`y`, or
//! Ed25519's `x`), with the `kid` written beside it, or for a certificate its SHA-256 thumbprint
//! (`x5t#S256`), and then goes through the same checks and algorithm binding as any JWK.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pkcs1::der::{Decode, Encode};
use serde_json::{Map, Value, json};
use x509_cert::Certificate;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// One PEM text (one or more blocks) and what is written beside it.
#[derive(Debug)]
pub(crate) struct PemEntry<'a> {
    /// The PEM text.
    pub pem: &'a str,
    /// The `kid` of its key (of every key, if it holds several); a certificate's default is
    /// its thumbprint.
    pub kid: Option<&'a str>,
    /// The JWK `alg` to bind its keys to; default as for a JWK without one.
    pub alg: Option<&'a str>,
}

/// The JWKS document of the keys in `entries`, or why a block could not be read.
pub(crate) fn jwks_of(entries: &[PemEntry<'_>]) -> Result<Vec<u8>, String> {
    let mut keys = Vec::new();
    for entry in entries {
        let blocks = pem::parse_many(entry.pem).map_err(|error| format!("not PEM: {error}"))?;
        if blocks.is_empty() {
            return Err("holds no PEM block".to_owned());
        }
        if entry.kid.is_some() && blocks.len() > 1 {
            return Err(format!(
                "a kid names one key, but this entry holds {} PEM blocks: give each key an entry of its own",
                blocks.len()
            ));
        }
        for block in blocks {
            let mut jwk = jwk_of(block.tag(), block.contents())?;
            if let Some(kid) = entry.kid {
                jwk.insert("kid".into(), json!(kid));
            }
            if let Some(alg) = entry.alg {
                jwk.insert("alg".into(), json!(alg));
            }
            keys.push(Value::Object(jwk));
        }
    }
    serde_json::to_vec(&json!({ "keys": keys })).map_err(|error| error.to_string())
}

/// The JWK of one PEM block.
fn jwk_of(tag: &str, der: &[u8]) -> Result<Map<String, Value>, String> {
    match tag {
        "CERTIFICATE" => {
            let certificate = Certificate::from_der(der)
                .map_err(|error| format!("a CERTIFICATE block is not X.509: {error}"))?;
            let mut jwk = spki_jwk(
                &certificate
                    .tbs_certificate()
                    .subject_public_key_info()
                    .clone(),
            )?;
            let thumbprint = ring::digest::digest(&ring::digest::SHA256, der);
            let thumbprint = URL_SAFE_NO_PAD.encode(thumbprint.as_ref());
            jwk.insert("kid".into(), json!(thumbprint));
            jwk.insert("x5t#S256".into(), json!(thumbprint));
            Ok(jwk)
        }
        "PUBLIC KEY" => {
            let spki = SubjectPublicKeyInfoOwned::from_der(der)
                .map_err(|error| format!("a PUBLIC KEY block is not SPKI: {error}"))?;
            spki_jwk(&spki)
        }
        "RSA PUBLIC KEY" => rsa_jwk(der),
        other => Err(format!(
            "a {other:?} block is neither a CERTIFICATE nor a PUBLIC KEY (private keys do not belong here)"
        )),
    }
}

/// The JWK of a subject public key.
fn spki_jwk(spki: &SubjectPublicKeyInfoOwned) -> Result<Map<String, Value>, String> {
    let bits = spki.subject_public_key.raw_bytes();
    let algorithm = spki.algorithm.oid;
    if algorithm == RSA {
        return rsa_jwk(bits);
    }
    if algorithm == ED25519 {
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(bits)});
        return Ok(object(jwk));
    }
    if algorithm != EC {
        return Err(format!(
            "the key algorithm {algorithm} is not RSA, EC or Ed25519"
        ));
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|parameters| parameters.to_der().ok())
        .and_then(|parameters| ObjectIdentifier::from_der(&parameters).ok());
    let (crv, size) = match curve {
        Some(curve) if curve == P256 => ("P-256", 32),
        Some(curve) if curve == P384 => ("P-384", 48),
        _ => return Err("the EC key is not on P-256 or P-384".to_owned()),
    };
    match bits.split_first() {
        Some((0x04, point)) if point.len() == 2 * size => {
            let (x, y) = point.split_at(size);
            let jwk = json!({"kty": "EC", "crv": crv, "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)});
            Ok(object(jwk))
        }
        _ => Err(format!("the {crv} key is not an uncompressed point")),
    }
}

/// The JWK of a PKCS#1 `RSAPublicKey`.
fn rsa_jwk(der: &[u8]) -> Result<Map<String, Value>, String> {
    let key = pkcs1::RsaPublicKey::<pkcs1::UintRef<'_>>::from_der(der)
        .map_err(|error| format!("the RSA key is not PKCS#1: {error}"))?;
    let jwk = json!({
        "kty": "RSA",
        "n": URL_SAFE_NO_PAD.encode(key.modulus.as_bytes()),
        "e": URL_SAFE_NO_PAD.encode(key.public_exponent.as_bytes()),
    });
    Ok(object(jwk))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
