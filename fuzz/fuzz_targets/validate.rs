//! A whole validation against the embedded demo tenant (whose key is public), so that inputs the
//! fuzzer derives from a valid demo token reach the signature and claim checks.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tokengate::tenant::Registry;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| match tokengate::demo::config() {
        Ok(config) => Registry::new(&config, 1_800_000_000),
        Err(errors) => panic!("the embedded configuration is invalid: {errors}"),
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let verdict = registry().validate(token, "", 1_800_000_000);
        assert_eq!(verdict.valid, verdict.reason.is_none());
    }
});
