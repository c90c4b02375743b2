//! Model URIs (`hf://…`, https) and container image references from job messages.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let _ = data.parse::<island::config::ModelUri>();
    let _ = island::runtimes::container::policy::ImageRef::parse(data);
    let _ = island::runtimes::container::policy::check(data, &island::config::Config::default().registry);
});
