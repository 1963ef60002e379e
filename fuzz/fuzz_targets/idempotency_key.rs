//! libFuzzer entry point for the property of the same name in `fuzz/src/lib.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    edgecart_fuzz::idempotency_key(&String::from_utf8_lossy(data));
});
