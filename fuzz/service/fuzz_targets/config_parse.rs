//! The configuration loader: any text as a YAML configuration is a configuration or a list of
//! errors with lines, never a panic. Key files are looked up in a folder that does not exist.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let base = std::path::Path::new("/nonexistent-tokengate-fuzz");
        if let Err(errors) = tokengate::Config::parse(text, None, base) {
            assert!(!errors.0.is_empty());
        }
    }
});
