//! What a Cargo prints: each line alone, and the bytes as container frames (split in two at
//! every position the input's first byte picks).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = island::runtimes::cargo_io::parse_line(&String::from_utf8_lossy(data));
    let cut = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    let mut out = island::runtimes::container::stdout::Stdout::default();
    let _ = out.push(&data[..cut]);
    let _ = out.push(&data[cut..]);
    let _ = out.finish();
});
