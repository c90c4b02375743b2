//! A job assignment as the coordinator (or anyone on the subject) sends it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = island::jobs::JobSpec::from_json(data);
});
