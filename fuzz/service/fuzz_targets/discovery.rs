//! Discovery documents as a provider (possibly hostile) serves them: read, and the `jwks_uri`
//! rule applied; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tokengate::fuzzing::discovery_document(data);
});
