//! A whole validation against the embedded demo tenant (whose key is public), so that inputs the
//! fuzzer derives from a valid demo token reach the signature and claim checks.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tokengate::Validator;

fn validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| match tokengate::demo_config() {
        Ok(config) => Validator::for_config(&config, 1_800_000_000),
        Err(errors) => panic!("the embedded configuration is invalid: {errors}"),
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        // A judgement is valid or rejected by construction; what is fuzzed is that judging
        // answers, never panics or hangs.
        let judgement = validator().judge_at(token, "", 1_800_000_000);
        assert_eq!(judgement.is_valid(), judgement.reason().is_none());
    }
});
