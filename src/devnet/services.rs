//! What the devnet and the test suite run besides Island (nats-server, a Docker engine, a
//! C compiler, the WebDriver tools, a display, a session bus, gdbus), how to tell whether
//! each is here, and what installs it. It is the one place that words the message a person
//! sees when one is missing, so `island devnet`, every test and the README's two commands
//! (`./dev run`, `./dev test`) say the same thing.
//!
//! Tests call [`present_or_skip`]: on a developer's machine a missing service skips the
//! test loudly, naming the service and the command that installs it; in CI (`CI=true`)
//! the same test fails, because CI must run everything.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// Something outside Island that the devnet or a test needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// `nats-server` with JetStream (from `$NATS_SERVER_BIN` or `PATH`).
    NatsServer,
    /// The Docker engine, `dockerd` (run privately by the tests, as root).
    DockerEngine,
    /// A C compiler (`$CC` or `cc`), to build the NVML test double.
    CCompiler,
    /// `tauri-driver`, the WebDriver server for Tauri apps.
    TauriDriver,
    /// `WebKitWebDriver`, which `tauri-driver` runs for WebKitGTK.
    WebKitWebDriver,
    /// `gdbus`, to drive the tray's D-Bus menu.
    Gdbus,
    /// `gnome-keyring-daemon`, a Secret Service for the keyring tests.
    GnomeKeyring,
    /// `dbus-run-session`, a private session bus for a test.
    DbusRunSession,
    /// An X display (`$DISPLAY`), such as Xvfb's.
    Display,
    /// A D-Bus session bus (`$DBUS_SESSION_BUS_ADDRESS`).
    SessionBus,
    /// A statically linked busybox, the one program in the container test images.
    BusyboxStatic,
    /// `docker-registry`, a private image registry for the pull tests.
    DockerRegistry,
    /// Python's X11 library, with which a test closes the window as a window manager would.
    PythonXlib,
}

/// Where Debian's python3-xlib puts the library.
const PYTHON_XLIB: &str = "/usr/lib/python3/dist-packages/Xlib";

/// Where Debian's busybox-static puts its static busybox (the dynamic busybox package uses
/// the same path, so the package's documentation folder tells them apart).
pub const STATIC_BUSYBOX: &str = "/bin/busybox";
const STATIC_BUSYBOX_MARK: &str = "/usr/share/doc/busybox-static";

impl Service {
    /// The program looked for on `PATH`, if the service is a program.
    fn program(self) -> Option<OsString> {
        let env_or = |var: &str, default: &str| std::env::var_os(var).unwrap_or_else(|| default.into());
        Some(match self {
            Service::NatsServer => env_or("NATS_SERVER_BIN", "nats-server"),
            Service::DockerEngine => "dockerd".into(),
            Service::CCompiler => env_or("CC", "cc"),
            Service::TauriDriver => "tauri-driver".into(),
            Service::WebKitWebDriver => "WebKitWebDriver".into(),
            Service::Gdbus => "gdbus".into(),
            Service::GnomeKeyring => "gnome-keyring-daemon".into(),
            Service::DockerRegistry => "docker-registry".into(),
            Service::DbusRunSession => "dbus-run-session".into(),
            Service::Display | Service::SessionBus | Service::BusyboxStatic | Service::PythonXlib => return None,
        })
    }

    /// What a person calls it.
    pub fn name(self) -> &'static str {
        match self {
            Service::NatsServer => "nats-server",
            Service::DockerEngine => "the Docker engine (dockerd)",
            Service::CCompiler => "a C compiler (cc)",
            Service::TauriDriver => "tauri-driver",
            Service::WebKitWebDriver => "WebKitWebDriver",
            Service::Gdbus => "gdbus",
            Service::GnomeKeyring => "gnome-keyring-daemon",
            Service::DbusRunSession => "dbus-run-session",
            Service::Display => "an X display",
            Service::SessionBus => "a D-Bus session bus",
            Service::BusyboxStatic => "a static busybox",
            Service::DockerRegistry => "docker-registry",
            Service::PythonXlib => "python3-xlib",
        }
    }

    /// Where it comes from.
    pub fn source(self) -> &'static str {
        match self {
            Service::NatsServer => "Debian package nats-server",
            Service::DockerEngine => "Debian package docker.io",
            Service::CCompiler => "Debian package gcc",
            Service::TauriDriver => "cargo install tauri-driver --locked",
            Service::WebKitWebDriver => "Debian package webkit2gtk-driver",
            Service::Gdbus => "Debian package libglib2.0-bin",
            Service::GnomeKeyring => "Debian package gnome-keyring",
            Service::DbusRunSession => "Debian package dbus",
            Service::Display => "run under xvfb-run, Debian package xvfb",
            Service::SessionBus => "run inside dbus-run-session, Debian package dbus",
            Service::BusyboxStatic => "Debian package busybox-static",
            Service::DockerRegistry => "Debian package docker-registry",
            Service::PythonXlib => "Debian package python3-xlib",
        }
    }

    /// Whether it is here.
    ///
    /// # Errors
    /// [`Missing`] when it is not.
    pub fn check(self) -> Result<(), Missing> {
        let present = match self {
            Service::Display => std::env::var_os("DISPLAY").is_some(),
            Service::SessionBus => std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
            Service::BusyboxStatic => {
                std::path::Path::new(STATIC_BUSYBOX_MARK).is_dir() && std::path::Path::new(STATIC_BUSYBOX).is_file()
            }
            Service::PythonXlib => std::path::Path::new(PYTHON_XLIB).is_dir(),
            _ => self.program().is_some_and(|p| find_program(&p).is_some()),
        };
        if present { Ok(()) } else { Err(Missing(self)) }
    }
}

/// A service that is not here; its message says what installs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Missing(pub Service);

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let verb = if matches!(s, Service::Display | Service::SessionBus) { "There is no" } else { "Not installed:" };
        let name = s.name().trim_start_matches("an ").trim_start_matches("a ");
        write!(f, "{verb} {name} ({}); `./dev test` sets it up", s.source())
    }
}

/// `program` as `PATH` finds it (a path with a slash is taken as it is).
pub fn find_program(program: &std::ffi::OsStr) -> Option<PathBuf> {
    let p = PathBuf::from(program);
    if p.components().count() > 1 {
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(&p)).find(|c| c.is_file())
}

/// Whether this run is CI's (`CI` set to anything but `false` or `0`), where every test
/// must run.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// For tests: `true` when every service in `needs` is here. Otherwise prints a loud
/// `SKIPPED` line naming the test, the missing services and what installs them, and
/// returns `false` so the test can return; in CI it panics with the same words instead.
pub fn present_or_skip(needs: &[Service]) -> bool {
    let missing: Vec<String> = needs.iter().filter_map(|s| s.check().err()).map(|m| m.to_string()).collect();
    if missing.is_empty() {
        return true;
    }
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    let why = missing.join("; ");
    assert!(!in_ci(), "{test} cannot run in CI: {why}");
    say_skipped(&format!("{test}: {why}"));
    false
}

/// Prints `*** SKIPPED what` where a person sees it: straight to standard error, because
/// the test harness captures `eprintln!` of tests that pass.
pub fn say_skipped(what: &str) {
    use std::io::Write;
    let _ = write!(std::io::stderr(), "\n*** SKIPPED {what}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_named_with_what_installs_it() {
        let m = Missing(Service::NatsServer).to_string();
        assert_eq!(m, "Not installed: nats-server (Debian package nats-server); `./dev test` sets it up");
        let m = Missing(Service::Display).to_string();
        assert!(m.starts_with("There is no X display (run under xvfb-run"), "{m}");
    }

    #[test]
    fn programs_are_found_on_path_or_by_path() {
        assert!(find_program("sh".as_ref()).is_some());
        assert!(find_program("/bin/sh".as_ref()).is_some());
        assert!(find_program("island-no-such-program".as_ref()).is_none());
    }
}
