//! Starting Island at login: an XDG autostart entry on Linux, a launch agent on macOS, the
//! `Run` key on Windows (through the auto-launch crate). The desktop app and the headless
//! agent have entries of their own ([`Entry`]), so turning one on never overwrites the
//! other, and each can tell whether the other is on (only one Island can run per home).

use std::path::Path;

/// Which program starts at login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// The desktop app, hidden in the tray.
    Desktop,
    /// The headless agent (`island autostart on`).
    Agent,
}

impl Entry {
    /// The name the entry is registered under (the autostart file's, the launch agent's or
    /// the `Run` value's name).
    pub fn name(self) -> &'static str {
        match self {
            Entry::Desktop => "Island",
            Entry::Agent => "Island Agent",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Entry::Desktop => &["--hidden"],
            Entry::Agent => &["--agent"],
        }
    }
}

/// Why the login entry could not be read or changed.
#[derive(Debug, thiserror::Error)]
#[error("cannot change starting at login: {0}")]
pub struct AutoStartError(#[source] auto_launch::Error);

/// The login entry for one program and its arguments.
pub struct AutoStart(auto_launch::AutoLaunch);

impl AutoStart {
    /// The `entry` that starts `exe`. Whether an entry is on does not depend on `exe`, so the
    /// desktop can look at the agent's with its own path.
    ///
    /// # Errors
    /// When the platform's entry cannot be described (a path that is not UTF-8).
    pub fn new(entry: Entry, exe: &Path) -> Result<AutoStart, AutoStartError> {
        let path = exe.to_string_lossy();
        let launch = auto_launch::AutoLaunchBuilder::new()
            .set_app_name(entry.name())
            .set_app_path(&path)
            .set_args(entry.args())
            .build();
        launch.map(AutoStart).map_err(AutoStartError)
    }

    /// Turns starting at login on or off.
    ///
    /// # Errors
    /// When the entry cannot be written or removed.
    pub fn set(&self, on: bool) -> Result<(), AutoStartError> {
        if on { self.0.enable() } else { self.0.disable() }.map_err(AutoStartError)
    }

    /// Whether the entry is in place.
    ///
    /// # Errors
    /// When it cannot be read.
    pub fn is_enabled(&self) -> Result<bool, AutoStartError> {
        self.0.is_enabled().map_err(AutoStartError)
    }
}
