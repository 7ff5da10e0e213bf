//! Any bytes as a JWKS document: keys are loaded or skipped, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokengate_core::keyset::{KeyOptions, KeySet};

fuzz_target!(|data: &[u8]| {
    let _ = KeySet::from_jwks(data, &KeyOptions::default());
});
