//! PEM key sources (certificates, SPKI and PKCS#1 public keys): any text becomes a JWKS or an
//! error, never a panic; a JWKS it produces is JSON the key-set loader then judges.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokengate_core::keyset::{KeyOptions, KeySet};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(document) = tokengate::fuzzing::pem_keys(text)
    {
        assert!(serde_json::from_slice::<serde_json::Value>(&document).is_ok());
        let options = KeyOptions::for_allow_list(None, true);
        let _ = KeySet::from_jwks(&document, &options);
    }
});
