//! `config.toml` as an owner (or an installer) may have written it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let _ = island::config::parse(data, std::path::Path::new("fuzz.toml"));
});
