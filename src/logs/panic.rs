//! Panics reported through the same redaction as every log line. The default hook prints
//! the panic message as it is, and a message may quote a value that carries a secret (an
//! `expect` on a connect error naming the URL). Island sends no crash reports anywhere: this
//! report, on standard error and in the log file, is the only record of a panic.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::io::Write;
use std::panic::PanicHookInfo;

/// The log target of panic reports. The terminal already has the report on standard error,
/// so the standard-output log layer leaves these lines out; the file and the UIs' ring keep them.
pub const PANIC_TARGET: &str = "island::panic";

/// Replaces the default panic hook with one that redacts; the binaries call it once, after
/// logging is set up.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| report(info, &mut std::io::stderr().lock())));
}

/// Writes the redacted report to `out` and to the log. Write errors are ignored: a panic
/// inside a panic hook would abort the process.
fn report(info: &PanicHookInfo<'_>, out: &mut dyn Write) {
    let text = redacted(&describe(info));
    let _ = writeln!(out, "{text}");
    tracing::error!(target: PANIC_TARGET, "{text}");
}

/// The report as the default hook words it: thread, place, message, and the backtrace when
/// `RUST_BACKTRACE` asks for one.
fn describe(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>");
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("<unnamed>");
    let place = info.location().map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column())).unwrap_or_default();
    let mut text = format!("thread '{name}' panicked{place}:\n{message}");
    let trace = Backtrace::capture();
    if trace.status() == BacktraceStatus::Captured {
        text.push_str(&format!("\nstack backtrace:\n{trace}"));
    }
    text
}

/// `text` redacted; withheld whole when the secrets cannot be read now (the panic happened
/// while they were being registered), since an unchecked message may carry one.
fn redacted(text: &str) -> String {
    match super::try_redact(text) {
        Some(clean) => clean,
        None => "a panic happened while secrets were being registered; its message is withheld".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn a_panic_message_carrying_a_secret_is_reported_redacted() {
        static OUT: Mutex<Vec<u8>> = Mutex::new(Vec::new());
        let secret = "Pw\"panic\\%41é-unit";
        super::super::redact_secrets([secret.to_string()]);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|info| report(info, &mut *OUT.lock().unwrap_or_else(|e| e.into_inner()))));
        let quoted = format!("{secret:?}");
        let joined = std::thread::Builder::new()
            .name("leaky".into())
            .spawn(move || panic!("cannot connect with {quoted} and {}", "Pw%22panic%5C%2541%C3%A9-unit"))
            .unwrap()
            .join();
        std::panic::set_hook(previous);
        assert!(joined.is_err(), "the thread panicked");
        let text = String::from_utf8(OUT.lock().unwrap().clone()).unwrap();
        let report = text.lines().skip_while(|l| !l.starts_with("thread 'leaky' panicked at ")).nth(1).unwrap_or("");
        assert_eq!(report, "cannot connect with \"***\" and ***", "{text}");
        assert!(!text.contains("panic\\") && !text.contains("%2541"), "{text}");
    }
}
