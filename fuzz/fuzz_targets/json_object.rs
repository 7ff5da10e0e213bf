//! The strict JSON layer that every header, payload and JWK goes through. Besides never
//! panicking: what it accepts, serde_json reads too (one parse decides: the gateways read the
//! claims the core accepted, and must never fail to).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokengate_core::json::JsonObject;

fuzz_target!(|data: &[u8]| {
    if JsonObject::parse(data, 16).is_ok() {
        let value: Result<serde_json::Value, _> = serde_json::from_slice(data);
        assert!(value.is_ok(), "accepted by the core, refused by serde_json: {value:?}");
    }
});
