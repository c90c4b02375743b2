//! A downloaded model's GGUF header (counts and lengths come from the file).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = island::models::gguf::inspect_bytes(data);
});
