//! Any bytes as a token: decoding and parsing must answer, never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokengate_core::token::{DecodedToken, Limits};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(decoded) = DecodedToken::decode(text, &Limits::default())
    {
        let _ = decoded.parse();
    }
});
